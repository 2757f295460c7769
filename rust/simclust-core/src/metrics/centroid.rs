//! Centroids, each row's similarity to its centroid, the medoid, and the
//! Euclidean dispersion scores (Davies–Bouldin, Calinski–Harabasz) of the
//! normalised rows.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::parallel::{self, Control};

use super::clusters::{Gathered, SEGMENT};
use super::kernel::{dot, gemm_abt, run_indexed};
use super::measure::Measure;
use crate::similarity::exact::{margin, refine};

/// Centroid geometry of every cluster (slot order) and of every row, in the
/// grouping's [`Measure`]: the `sim_*` and `row_similarity` fields hold
/// cosine similarities, inner products or Euclidean distances as it says.
#[derive(Debug, Clone, PartialEq)]
pub struct CentroidStats {
    /// `K x D` centroids. Cosine: the unit centroids, the normalised mean
    /// of the normalised members, a row of NaN where the members cancel out
    /// exactly (zero mean). Dot and Euclidean: the plain mean of the rows.
    pub centroids: Vec<f32>,
    /// Per cluster, the length of the mean of its members as the kernels
    /// read them (cosine: of its unit members, in `[0, 1]`, 0 where they
    /// cancel out; the mean itself is `mean_length[c]` times the centroid,
    /// and `mean_length^2` the mean cosine similarity over all ordered pairs
    /// of members, each member with itself included).
    pub mean_length: Vec<f64>,
    /// Per input row, the cosine similarity to its cluster's centroid (the
    /// inner product with it, or the Euclidean distance to it); NaN for
    /// noise rows.
    pub row_similarity: Vec<f32>,
    /// Per cluster, the mean of its members' centroid similarities.
    pub sim_mean: Vec<f64>,
    /// Per cluster, the smallest centroid similarity of a member.
    pub sim_min: Vec<f32>,
    /// Per cluster, the largest centroid similarity of a member.
    pub sim_max: Vec<f32>,
    /// Per cluster, the member closest to the centroid (ties: lowest row
    /// index). Since `<x_i, c>` is proportional to `sum_j <x_i, x_j>`, this
    /// is also the exact cosine (inner product) medoid: the member with the
    /// largest total similarity to the cluster. Euclidean: the member
    /// nearest the mean, which has the least total *squared* distance to the
    /// members. `u32::MAX` where the centroid is undefined.
    pub medoid: Vec<u32>,
}

/// Computes [`CentroidStats`] for every cluster of `g`.
///
/// ```
/// use simclust_core::{metrics::{centroid_stats, Gathered}, MatRef};
/// let x = [1.0_f32, 0.0, 0.0, 1.0, 1.0, 1.0];
/// let g = Gathered::new(MatRef::new(&x, 3, 2)?, &[0, 0, 0], None)?;
/// let s = centroid_stats(&g, None)?;
/// assert_eq!(s.medoid, vec![2]);
/// assert!((s.row_similarity[2] - 1.0).abs() < 1e-6);
/// # Ok::<(), simclust_core::Error>(())
/// ```
pub fn centroid_stats(g: &Gathered, n_threads: Option<usize>) -> Result<CentroidStats> {
    centroid_stats_with(g, None, n_threads)
}

/// [`centroid_stats`] with each cluster's centroid formed from given totals
/// `(sums, sizes)`: `sums` the `K x D` (slot order) sums of the members as
/// the kernels read them (f64, as [`Gathered::cluster_moments`] returns
/// them), `sizes` the members counted. A distributed plan passes a whole
/// cluster's totals to the tasks that each hold a part of its rows: every
/// part's rows are then measured against the cluster's centroid, by the
/// same code as on one machine. The per-cluster statistics (`sim_*`,
/// `medoid`, `mean_length`) are over the rows of `g` only. `None`: the
/// clusters of `g` are whole ([`centroid_stats`]).
///
/// Errors: [`Error::Shape`] when `sums` is not `K x D` or `sizes` not `K`.
///
/// ```
/// use simclust_core::{metrics::{centroid_stats_with, Gathered}, MatRef};
/// // one row of a cluster whose other members sum to (0, 1): centroid (1, 1) / sqrt 2
/// let g = Gathered::new(MatRef::new(&[1.0_f32, 0.0], 1, 2)?, &[0], None)?;
/// let s = centroid_stats_with(&g, Some((&[1.0, 1.0], &[2])), None)?;
/// assert!((s.row_similarity[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
/// # Ok::<(), simclust_core::Error>(())
/// ```
pub fn centroid_stats_with(
    g: &Gathered,
    totals: Option<(&[f64], &[u64])>,
    n_threads: Option<usize>,
) -> Result<CentroidStats> {
    let cl = &g.clusters;
    let (k, d) = (cl.k(), g.d);
    if let Some((sums, sizes)) = totals {
        if sums.len() != k * d || sizes.len() != k {
            return Err(Error::Shape(format!(
                "the cluster totals hold {} sums and {} sizes, expected {k} x {d} and {k}",
                sums.len(),
                sizes.len()
            )));
        }
    }
    let lo = 1.0 - margin(d);
    let measure = g.measure;
    let pool = parallel::pool(n_threads)?;
    // Disjoint per-cluster slices of the gathered-order similarities.
    let mut sims_gathered = vec![f32::NAN; cl.n_clustered()];
    let mut parts: Vec<&mut [f32]> = Vec::with_capacity(k);
    let mut rest = sims_gathered.as_mut_slice();
    for c in 0..k {
        let (head, tail) = rest.split_at_mut(cl.size(c));
        parts.push(head);
        rest = tail;
    }
    // the centroids are written in place: collecting one vector per cluster
    // would hold the K x D centroids twice at the peak
    let mut centroids = vec![0.0_f32; k * d];
    type PerCluster = (f64, f64, f32, f32, u32);
    let per: Vec<PerCluster> = pool.install(|| {
        parts
            .into_par_iter()
            .zip(centroids.par_chunks_mut(d))
            .enumerate()
            .map(|(c, (sims, centroid))| {
                let (s, n) = match totals {
                    Some((sums, sizes)) => (sums[c * d..(c + 1) * d].to_vec(), sizes[c] as f64),
                    None => (g.cluster_sum(c), cl.size(c) as f64),
                };
                let norm = s.iter().map(|v| v * v).sum::<f64>().sqrt();
                // cosine: the normalised sum (undefined when the members cancel
                // out); the other measures: the plain mean
                let defined = norm > 0.0 || !measure.normalizes();
                let scale = if measure.normalizes() { norm } else { n };
                if defined {
                    for (o, v) in centroid.iter_mut().zip(&s) {
                        *o = (v / scale) as f32;
                    }
                } else {
                    centroid.fill(f32::NAN);
                }
                let centroid = &*centroid;
                let segments = g.map_segments(c, |rows| {
                    rows.chunks_exact(d)
                        .map(|row| {
                            if measure == Measure::Cosine {
                                refine(row, centroid, dot(row, centroid), lo)
                            } else {
                                measure.pair(row, centroid)
                            }
                        })
                        .collect::<Vec<f32>>()
                });
                for (out, seg) in sims.chunks_mut(SEGMENT).zip(&segments) {
                    out.copy_from_slice(seg);
                }
                let members = cl.members(c);
                let length = norm / members.len() as f64;
                let (mut sum, mut mn, mut mx, mut best) =
                    (0.0_f64, f32::INFINITY, f32::NEG_INFINITY, 0);
                let mut closest = if measure.higher_is_closer() {
                    f32::NEG_INFINITY
                } else {
                    f32::INFINITY
                };
                for (p, &v) in sims.iter().enumerate() {
                    sum += f64::from(v);
                    mn = if v < mn { v } else { mn };
                    mx = if v > mx { v } else { mx };
                    if measure.closer(v, closest) {
                        closest = v;
                        best = p;
                    }
                }
                if !defined {
                    // Undefined centroid: no statistic and no medoid.
                    return (length, f64::NAN, f32::NAN, f32::NAN, u32::MAX);
                }
                (length, sum / members.len() as f64, mn, mx, members[best])
            })
            .collect()
    });
    let mut row_similarity = vec![f32::NAN; cl.n_rows()];
    for (&r, &v) in cl.gathered_rows().iter().zip(&sims_gathered) {
        row_similarity[r as usize] = v;
    }
    let mut out = CentroidStats {
        centroids,
        mean_length: Vec::with_capacity(k),
        row_similarity,
        sim_mean: Vec::with_capacity(k),
        sim_min: Vec::with_capacity(k),
        sim_max: Vec::with_capacity(k),
        medoid: Vec::with_capacity(k),
    };
    for (length, mean, mn, mx, medoid) in per {
        out.mean_length.push(length);
        out.sim_mean.push(mean);
        out.sim_min.push(mn);
        out.sim_max.push(mx);
        out.medoid.push(medoid);
    }
    Ok(out)
}

/// Checks `2 <= K <= n_clustered - 1`, the range in which the dispersion
/// and silhouette scores are defined (as in scikit-learn).
pub(crate) fn check_score_labels(g: &Gathered, what: &str) -> Result<()> {
    let (k, m) = (g.clusters.k(), g.clusters.n_clustered());
    if k < 2 || k >= m {
        return Err(Error::Parameter(format!(
            "{what} needs 2 <= K <= n - 1 clusters, where K = {k} clusters (noise excluded) over n = {m} clustered rows"
        )));
    }
    Ok(())
}

/// Per cluster: the mean (f64, `K x D`), the mean Euclidean distance of the
/// members to it and the sum of their squared distances to it.
struct Dispersion {
    means: Vec<f64>,
    mean_distance: Vec<f64>,
    sq_distance_sum: Vec<f64>,
}

fn dispersion(g: &Gathered, pool: &rayon::ThreadPool) -> Dispersion {
    let cl = &g.clusters;
    let d = g.d;
    let per: Vec<(Vec<f64>, f64, f64)> = pool.install(|| {
        (0..cl.k())
            .into_par_iter()
            .map(|c| {
                let n = cl.size(c) as f64;
                let mean: Vec<f64> = g.cluster_sum(c).iter().map(|v| v / n).collect();
                let seg = |rows: &[f32]| {
                    let (mut dist, mut sq) = (0.0_f64, 0.0_f64);
                    for row in rows.chunks_exact(d) {
                        let e: f64 = row
                            .iter()
                            .zip(&mean)
                            .map(|(&v, m)| (f64::from(v) - m) * (f64::from(v) - m))
                            .sum();
                        dist += e.sqrt();
                        sq += e;
                    }
                    (dist, sq)
                };
                let parts: Vec<(f64, f64)> = g.map_segments(c, seg);
                let (dist, sq) = parts.iter().fold((0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1));
                (mean, dist / n, sq)
            })
            .collect()
    });
    let mut out = Dispersion {
        means: Vec::with_capacity(cl.k() * d),
        mean_distance: Vec::with_capacity(cl.k()),
        sq_distance_sum: Vec::with_capacity(cl.k()),
    };
    for (mean, dist, sq) in per {
        out.means.extend_from_slice(&mean);
        out.mean_distance.push(dist);
        out.sq_distance_sum.push(sq);
    }
    out
}

/// Calinski–Harabasz score of the normalised rows (noise excluded):
/// `[B / (K - 1)] / [W / (n - K)]` with `B` the between-cluster and `W` the
/// within-cluster sum of squared Euclidean distances to the means. Defined
/// as scikit-learn's `calinski_harabasz_score` (1.0 when `W = 0`).
pub fn calinski_harabasz(g: &Gathered, n_threads: Option<usize>) -> Result<f64> {
    check_score_labels(g, "the Calinski-Harabasz score")?;
    let pool = parallel::pool(n_threads)?;
    let disp = dispersion(g, &pool);
    let cl = &g.clusters;
    let (k, d, m) = (cl.k(), g.d, cl.n_clustered() as f64);
    let mut total = vec![0.0_f64; d];
    for c in 0..k {
        let n = cl.size(c) as f64;
        for (t, v) in total.iter_mut().zip(&disp.means[c * d..(c + 1) * d]) {
            *t += v * n;
        }
    }
    let global: Vec<f64> = total.iter().map(|v| v / m).collect();
    let mut between = 0.0_f64;
    for c in 0..k {
        let e: f64 = disp.means[c * d..(c + 1) * d]
            .iter()
            .zip(&global)
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        between += cl.size(c) as f64 * e;
    }
    let within: f64 = disp.sq_distance_sum.iter().sum();
    if within == 0.0 {
        return Ok(1.0);
    }
    Ok(between * (m - k as f64) / (within * (k as f64 - 1.0)))
}

/// Centroids per task row block when computing Davies–Bouldin.
const DB_ROWS: usize = 256;
/// Centroids per GEMM within a Davies–Bouldin task (an 8 MiB f64 tile).
const DB_COLS: usize = 4096;

/// Davies–Bouldin score of the normalised rows (noise excluded): the mean
/// over clusters of `max_{j != i} (s_i + s_j) / |m_i - m_j|`, with `m` the
/// Euclidean means and `s` the mean distance of the members to their mean.
/// Defined as scikit-learn's `davies_bouldin_score` (coinciding means are
/// skipped; 0 when all dispersions or all mean distances are ~0). Lower is
/// better.
pub fn davies_bouldin(g: &Gathered, n_threads: Option<usize>, ctl: &Control) -> Result<f64> {
    check_score_labels(g, "the Davies-Bouldin score")?;
    let pool = parallel::pool(n_threads)?;
    let disp = dispersion(g, &pool);
    let (k, d) = (g.clusters.k(), g.d);
    if disp.mean_distance.iter().all(|&s| s.abs() <= 1e-8) {
        return Ok(0.0);
    }
    let norms: Vec<f64> = disp
        .means
        .chunks_exact(d)
        .map(|m| m.iter().map(|v| v * v).sum())
        .collect();
    let means = &disp.means;
    let s = &disp.mean_distance;
    // Per row block of means: (max ratio per row, max distance seen).
    let n_tasks = k.div_ceil(DB_ROWS);
    let per = run_indexed(
        &pool,
        n_tasks,
        ctl,
        || vec![0.0_f64; DB_ROWS * DB_COLS],
        |buf, t| {
            let (i0, i1) = (t * DB_ROWS, ((t + 1) * DB_ROWS).min(k));
            let ra = i1 - i0;
            let mut best = vec![0.0_f64; ra];
            let mut max_dist = 0.0_f64;
            for j0 in (0..k).step_by(DB_COLS) {
                let j1 = (j0 + DB_COLS).min(k);
                let kc = j1 - j0;
                gemm_abt(
                    &means[i0 * d..i1 * d],
                    ra,
                    &means[j0 * d..j1 * d],
                    kc,
                    d,
                    buf,
                );
                for (r, b) in best.iter_mut().enumerate() {
                    let i = i0 + r;
                    for (c, &dot) in buf[r * kc..(r + 1) * kc].iter().enumerate() {
                        let j = j0 + c;
                        if j == i {
                            continue;
                        }
                        let dist = (norms[i] + norms[j] - 2.0 * dot).max(0.0).sqrt();
                        max_dist = max_dist.max(dist);
                        if dist > 0.0 {
                            let ratio = (s[i] + s[j]) / dist;
                            *b = if ratio > *b { ratio } else { *b };
                        }
                    }
                }
            }
            (best, max_dist)
        },
    )?;
    if per.iter().all(|p| p.1 <= 1e-8) {
        return Ok(0.0);
    }
    let total: f64 = per.iter().flat_map(|p| p.0.iter()).sum();
    Ok(total / k as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::MatRef;

    #[test]
    fn centroid_and_medoid() -> Result<()> {
        let x = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, -1.0, -1.0, 1.0, 2.0, 2.0];
        // cluster 0: rows 0, 1, 2; cluster 5: rows 3, 4 (antipodal: no centroid); noise: 5
        let g = Gathered::new(MatRef::new(&x, 6, 2)?, &[0, 0, 0, 5, 5, -1], Some(2))?;
        let s = centroid_stats(&g, Some(2))?;
        let h = std::f32::consts::FRAC_1_SQRT_2;
        assert!((s.centroids[0] - h).abs() < 1e-6 && (s.centroids[1] - h).abs() < 1e-6);
        assert!(s.centroids[2].is_nan());
        assert_eq!(s.medoid, vec![2, u32::MAX]);
        assert!((s.row_similarity[0] - h).abs() < 1e-6);
        assert!(s.row_similarity[5].is_nan());
        assert!(s.sim_mean[1].is_nan());
        assert!((s.sim_min[0] - h).abs() < 1e-6 && (s.sim_max[0] - 1.0).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn euclidean_centroid_is_the_mean_and_medoid_the_nearest_member() -> Result<()> {
        // cluster 0: (0,0), (4,0), (1,0); mean (5/3, 0); cluster 2: a zero row and (0, 2)
        let x = [0.0, 0.0, 4.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 2.0];
        let g = Gathered::with_measure(
            MatRef::new(&x, 5, 2)?,
            &[0, 0, 0, 2, 2],
            Measure::Euclidean,
            None,
        )?;
        let s = centroid_stats(&g, Some(2))?;
        assert_eq!(s.centroids, vec![5.0 / 3.0, 0.0, 0.0, 1.0]);
        let want = [5.0 / 3.0, 7.0 / 3.0, 2.0 / 3.0, 1.0, 1.0];
        for (got, want) in s.row_similarity.iter().zip(want) {
            assert!((f64::from(*got) - want).abs() < 1e-6, "{got} vs {want}");
        }
        assert_eq!(s.medoid, vec![2, 3]);
        assert!((s.sim_mean[0] - 14.0 / 9.0).abs() < 1e-6);
        assert_eq!((s.sim_min[1], s.sim_max[1]), (1.0, 1.0));
        // a zero row is an error for cosine only
        assert!(Gathered::new(MatRef::new(&x, 5, 2)?, &[0, 0, 0, 2, 2], None).is_err());
        Ok(())
    }

    #[test]
    fn parts_with_the_totals_measure_as_the_whole() -> Result<()> {
        let (n, d) = (300, 4);
        let x: Vec<f32> = (0..n * d).map(|i| ((i * 37) % 23) as f32 - 9.5).collect();
        let labels: Vec<i64> = (0..n).map(|i| (i % 3) as i64).collect();
        for m in [Measure::Cosine, Measure::Dot, Measure::Euclidean] {
            let g = Gathered::with_measure(MatRef::new(&x, n, d)?, &labels, m, None)?;
            let whole = centroid_stats(&g, Some(1))?;
            let mut sums = Vec::new();
            let sizes: Vec<u64> = (0..3).map(|c| g.clusters.size(c) as u64).collect();
            for c in 0..3 {
                sums.extend(g.cluster_moments(c).0);
            }
            // the second half of the rows, with the whole clusters' totals
            let half = &x[n / 2 * d..];
            let gh =
                Gathered::with_measure(MatRef::new(half, n / 2, d)?, &labels[n / 2..], m, None)?;
            let part = centroid_stats_with(&gh, Some((&sums, &sizes)), Some(2))?;
            assert_eq!(part.centroids, whole.centroids, "{m:?}");
            assert_eq!(
                part.row_similarity[..],
                whole.row_similarity[n / 2..],
                "{m:?}"
            );
            assert!(centroid_stats_with(&gh, Some((&sums[1..], &sizes)), None).is_err());
        }
        Ok(())
    }

    #[test]
    fn big_cluster_sum_is_thread_independent() -> Result<()> {
        let n = 3 * SEGMENT + 17;
        let d = 3;
        let x: Vec<f32> = (0..n * d).map(|i| ((i * 31) % 17) as f32 + 0.5).collect();
        let labels = vec![0_i64; n];
        let g = Gathered::new(MatRef::new(&x, n, d)?, &labels, None)?;
        let a = centroid_stats(&g, Some(1))?;
        let b = centroid_stats(&g, Some(2))?;
        assert_eq!(a, b);
        Ok(())
    }

    /// Naive Davies–Bouldin and Calinski–Harabasz (scikit-learn's formulas)
    /// on the gathered unit rows.
    fn naive_scores(g: &Gathered) -> (f64, f64) {
        let (cl, d) = (&g.clusters, g.d);
        let k = cl.k();
        let xs = g.rows(0, cl.n_clustered());
        let row = |p: usize| xs[p * d..(p + 1) * d].iter().map(|&v| f64::from(v));
        let mut means = vec![vec![0.0; d]; k];
        let mut total = vec![0.0; d];
        for (c, m) in means.iter_mut().enumerate() {
            for p in cl.offset(c)..cl.offset(c) + cl.size(c) {
                for ((a, t), v) in m.iter_mut().zip(total.iter_mut()).zip(row(p)) {
                    *a += v / cl.size(c) as f64;
                    *t += v / cl.n_clustered() as f64;
                }
            }
        }
        let dist2 =
            |a: &[f64], b: &[f64]| -> f64 { a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum() };
        let (mut s, mut within, mut between) = (vec![0.0; k], 0.0, 0.0);
        for c in 0..k {
            for p in cl.offset(c)..cl.offset(c) + cl.size(c) {
                let e = dist2(&row(p).collect::<Vec<_>>(), &means[c]);
                s[c] += e.sqrt() / cl.size(c) as f64;
                within += e;
            }
            between += cl.size(c) as f64 * dist2(&means[c], &total);
        }
        let db: f64 = (0..k)
            .map(|i| {
                (0..k)
                    .filter(|&j| j != i)
                    .map(|j| (s[i] + s[j]) / dist2(&means[i], &means[j]).sqrt())
                    .fold(0.0, f64::max)
            })
            .sum::<f64>()
            / k as f64;
        let m = cl.n_clustered() as f64;
        (db, between * (m - k as f64) / (within * (k as f64 - 1.0)))
    }

    #[test]
    fn davies_bouldin_and_calinski_harabasz_match_naive() -> Result<()> {
        // More clusters than one Davies–Bouldin column block.
        let (n, d) = (2 * DB_COLS + 500, 5);
        let x: Vec<f32> = (0..n * d)
            .map(|i| (((i * 2654435761) % 1000) as f32) / 500.0 - 0.9)
            .collect();
        let labels: Vec<i64> = (0..n)
            .map(|i| (i / 2) as i64 % (DB_COLS as i64 + 100))
            .collect();
        let g = Gathered::new(MatRef::new(&x, n, d)?, &labels, Some(2))?;
        let (db, ch) = naive_scores(&g);
        let got_db = davies_bouldin(&g, Some(2), &Control::new())?;
        let got_ch = calinski_harabasz(&g, Some(2))?;
        assert!((got_db - db).abs() <= 1e-9 * db, "{got_db} vs {db}");
        assert!((got_ch - ch).abs() <= 1e-9 * ch, "{got_ch} vs {ch}");
        assert_eq!(
            got_db.to_bits(),
            davies_bouldin(&g, Some(1), &Control::new())?.to_bits()
        );
        Ok(())
    }

    #[test]
    fn scores_need_two_clusters() -> Result<()> {
        let x = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let g = Gathered::new(MatRef::new(&x, 3, 2)?, &[0, 0, -1], None)?;
        assert!(calinski_harabasz(&g, None).is_err());
        assert!(davies_bouldin(&g, None, &Control::new()).is_err());
        Ok(())
    }
}
