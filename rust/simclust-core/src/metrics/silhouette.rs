//! Exact cosine silhouette.
//!
//! The silhouette of row `i` in cluster `A` uses cosine *distances*
//! `1 - cos` (as scikit-learn's `metric="cosine"`): `a(i)` is the mean
//! distance to the other members of `A`, `b(i)` the smallest mean distance
//! to the members of another cluster, and `s(i) = (b - a) / max(a, b)`.
//!
//! Every mean distance is exact without visiting the `N^2` pairs: for unit
//! rows, `sum_{j in C} cos(x_i, x_j) = <x_i, sum_{j in C} x_j>`, so the mean
//! similarity of row `i` to cluster `C` is `<x_i, m_C>` with `m_C` the
//! (unnormalised) mean of `C`'s unit members, and for its own cluster
//! `(n_A <x_i, m_A> - |x_i|^2) / (n_A - 1)`. The kernel is therefore one
//! blocked `N x K x D` GEMM against the cluster means with a fused running
//! maximum per row: `O(N K D)` work instead of `O(N^2 D)`, and
//! `O(N + K D)` memory (a `ROWS x KB` tile per thread, no `N x K` matrix).

use rayon::prelude::*;

use crate::error::Result;
use crate::parallel::{self, Control};

use super::centroid::check_score_labels;
use super::clusters::Gathered;
use super::kernel::{gemm_abt, run_indexed};

/// Rows per task.
const ROWS: usize = 256;
/// Cluster means per GEMM within a task.
const KB: usize = 1024;

/// Silhouette values: per row, per cluster and overall.
#[derive(Debug, Clone, PartialEq)]
pub struct Silhouette {
    /// Per input row; NaN for noise rows. Members of a singleton cluster get
    /// 0 (as scikit-learn).
    pub row: Vec<f32>,
    /// Per cluster (slot order), the mean silhouette of its members.
    pub cluster_mean: Vec<f64>,
    /// The mean silhouette over all clustered rows (noise excluded): what
    /// scikit-learn's `silhouette_score` gives on the clustered rows.
    pub mean: f64,
}

/// Computes the exact cosine [`Silhouette`] of the clustering in `g`.
///
/// Noise rows are neither scored nor used as a cluster: the score is that
/// of the clustered rows alone. Requires `2 <= K <= n - 1` clusters over the
/// `n` clustered rows ([`crate::Error::Parameter`] otherwise).
///
/// ```
/// use simclust_core::{metrics::{silhouette, Gathered}, Control, MatRef};
/// let x = [1.0_f32, 0.0, 1.0, 0.1, 0.0, 1.0, 0.1, 1.0];
/// let g = Gathered::new(MatRef::new(&x, 4, 2)?, &[0, 0, 1, 1], None)?;
/// let s = silhouette(&g, None, &Control::new())?;
/// assert!(s.mean > 0.9);
/// # Ok::<(), simclust_core::Error>(())
/// ```
pub fn silhouette(g: &Gathered, n_threads: Option<usize>, ctl: &Control) -> Result<Silhouette> {
    check_score_labels(g, "the silhouette")?;
    let cl = &g.clusters;
    let (k, d, m) = (cl.k(), g.d, cl.n_clustered());
    let pool = parallel::pool(n_threads)?;
    let means: Vec<f32> = pool.install(|| {
        (0..k)
            .into_par_iter()
            .flat_map_iter(|c| {
                let n = cl.size(c) as f64;
                g.cluster_sum(c).into_iter().map(move |v| (v / n) as f32)
            })
            .collect()
    });
    let mut slot_of_pos = vec![0_u32; m];
    for c in 0..k {
        let o = cl.offset(c);
        slot_of_pos[o..o + cl.size(c)].fill(c as u32);
    }
    let per_task = run_indexed(
        &pool,
        m.div_ceil(ROWS),
        ctl,
        || (vec![0.0_f32; ROWS * KB], Vec::new()),
        |(buf, xs), t| {
            let (p0, p1) = (t * ROWS, ((t + 1) * ROWS).min(m));
            let ra = p1 - p0;
            g.rows_into(p0, p1, xs);
            let mut own = vec![0.0_f32; ra];
            let mut best = vec![f32::NEG_INFINITY; ra];
            for c0 in (0..k).step_by(KB) {
                let c1 = (c0 + KB).min(k);
                let kc = c1 - c0;
                gemm_abt(xs, ra, &means[c0 * d..c1 * d], kc, d, buf);
                for r in 0..ra {
                    let row = &buf[r * kc..(r + 1) * kc];
                    let s = slot_of_pos[p0 + r] as usize;
                    let mut mx = best[r];
                    if (c0..c1).contains(&s) {
                        own[r] = row[s - c0];
                        for &v in row[..s - c0].iter().chain(&row[s - c0 + 1..]) {
                            mx = if v > mx { v } else { mx };
                        }
                    } else {
                        for &v in row {
                            mx = if v > mx { v } else { mx };
                        }
                    }
                    best[r] = mx;
                }
            }
            (0..ra)
                .map(|r| {
                    let p = p0 + r;
                    let n = cl.size(slot_of_pos[p] as usize);
                    if n < 2 {
                        return 0.0_f32;
                    }
                    let x = &xs[r * d..(r + 1) * d];
                    let sq: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
                    let n = n as f64;
                    let own_mean = (n * f64::from(own[r]) - sq) / (n - 1.0);
                    let a = (1.0 - own_mean).max(0.0);
                    let b = (1.0 - f64::from(best[r])).max(0.0);
                    let den = a.max(b);
                    if den > 0.0 {
                        ((b - a) / den) as f32
                    } else {
                        0.0
                    }
                })
                .collect::<Vec<f32>>()
        },
    )?;
    let gathered: Vec<f32> = per_task.into_iter().flatten().collect();
    let mut row = vec![f32::NAN; cl.n_rows()];
    for (&r, &v) in cl.gathered_rows().iter().zip(&gathered) {
        row[r as usize] = v;
    }
    let mut cluster_mean = Vec::with_capacity(k);
    let mut total = 0.0_f64;
    for c in 0..k {
        let o = cl.offset(c);
        let sum: f64 = gathered[o..o + cl.size(c)]
            .iter()
            .map(|&v| f64::from(v))
            .sum();
        total += sum;
        cluster_mean.push(sum / cl.size(c) as f64);
    }
    Ok(Silhouette {
        row,
        cluster_mean,
        mean: total / m as f64,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::matrix::MatRef;
    use proptest::prelude::*;

    /// Naive O(N^2) reference with cosine distances, scikit-learn's rules.
    fn naive(xs: &[f32], d: usize, lab: &[usize], k: usize) -> Vec<f64> {
        let n = lab.len();
        let cos = |i: usize, j: usize| -> f64 {
            (0..d)
                .map(|p| f64::from(xs[i * d + p]) * f64::from(xs[j * d + p]))
                .sum()
        };
        let sizes: Vec<usize> = (0..k)
            .map(|c| lab.iter().filter(|&&l| l == c).count())
            .collect();
        (0..n)
            .map(|i| {
                if sizes[lab[i]] < 2 {
                    return 0.0;
                }
                let mut sums = vec![0.0; k];
                for j in 0..n {
                    if j != i {
                        sums[lab[j]] += (1.0 - cos(i, j)).max(0.0);
                    }
                }
                let a = sums[lab[i]] / (sizes[lab[i]] - 1) as f64;
                let b = (0..k)
                    .filter(|&c| c != lab[i] && sizes[c] > 0)
                    .map(|c| sums[c] / sizes[c] as f64)
                    .fold(f64::INFINITY, f64::min);
                if a.max(b) > 0.0 {
                    (b - a) / a.max(b)
                } else {
                    0.0
                }
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn matches_naive(seed in 0_u64..1000, n in 3_usize..200, d in 1_usize..12, k in 2_usize..9) {
            let x = crate::testdata::uniform(n * d, seed, -0.4);
            let labels: Vec<i64> = (0..n).map(|i| (i % k) as i64).collect();
            let g = match Gathered::new(MatRef::new(&x, n, d).unwrap(), &labels, Some(2)) {
                Ok(g) => g,
                Err(_) => return Ok(()),
            };
            if g.clusters.k() >= n {
                return Ok(());
            }
            let got = silhouette(&g, Some(2), &Control::new()).unwrap();
            // The naive reference on the gathered rows, in gathered order.
            let lab: Vec<usize> = (0..g.clusters.k()).flat_map(|c| std::iter::repeat_n(c, g.clusters.size(c))).collect();
            let want = naive(&g.rows(0, g.clusters.n_clustered()), d, &lab, g.clusters.k());
            for (p, &r) in g.clusters.gathered_rows().iter().enumerate() {
                prop_assert!((f64::from(got.row[r as usize]) - want[p]).abs() < 1e-5,
                    "row {} got {} want {}", r, got.row[r as usize], want[p]);
            }
            let one = silhouette(&g, Some(1), &Control::new()).unwrap();
            prop_assert_eq!(one.row.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                            got.row.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn noise_rows_are_not_scored() -> Result<()> {
        let x = [1.0, 0.0, 1.0, 0.1, 0.0, 1.0, 0.1, 1.0, -1.0, -1.0];
        let g = Gathered::new(MatRef::new(&x, 5, 2)?, &[0, 0, 4, 4, -1], None)?;
        let s = silhouette(&g, None, &Control::new())?;
        assert!(s.row[4].is_nan());
        assert!(s.row[..4].iter().all(|&v| v > 0.9));
        assert_eq!(s.cluster_mean.len(), 2);
        Ok(())
    }
}
