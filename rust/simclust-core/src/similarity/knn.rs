//! Exact cosine k-nearest neighbours.

use crate::error::{Error, Result};
use crate::matrix::{check_same_cols, MatRef};
use crate::parallel::{self, Control};

use super::exact::{margin, refine};
use super::normalize::{check_non_empty, normalize_rows};
use super::topk::TopK;
use crate::tiles::{all_tiles, block_range, gemm_abt, n_blocks, run_dynamic, upper_tiles, BLOCK};

/// Columns scanned per vectorised screening step of a tile row.
const LANES: usize = 16;

/// The result of a kNN search: `n x k` row-major neighbour indices and
/// their cosine similarities, each row sorted by similarity descending,
/// ties by the lower index.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbors {
    /// Number of neighbours per row.
    pub k: usize,
    /// Neighbour row indices, `n x k`.
    pub indices: Vec<u32>,
    /// Cosine similarities, `n x k`.
    pub similarities: Vec<f32>,
}

pub(crate) fn check_rows_fit_u32(x: &MatRef<'_>, what: &str) -> Result<()> {
    if x.n_rows() > u32::MAX as usize {
        return Err(Error::Shape(format!(
            "{what} has {} rows; at most {} are supported",
            x.n_rows(),
            u32::MAX
        )));
    }
    Ok(())
}

/// Exact cosine self-kNN of the rows of `x`, each row's own index excluded.
///
/// Exploits symmetry: only the tiles on and above the block diagonal are
/// computed, and each similarity updates the lists of both rows. Requires
/// `1 <= k <= n - 1`.
///
/// ```
/// use simclust_core::{similarity::knn, Control, MatRef};
/// let x = [1.0_f32, 0.0, 0.9, 0.1, 0.0, 1.0];
/// let nn = knn(MatRef::new(&x, 3, 2)?, 1, None, &Control::new())?;
/// assert_eq!(nn.indices, vec![1, 0, 1]);
/// # Ok::<(), simclust_core::Error>(())
/// ```
pub fn knn(x: MatRef<'_>, k: usize, n_threads: Option<usize>, ctl: &Control) -> Result<Neighbors> {
    check_non_empty(&x, "X")?;
    check_rows_fit_u32(&x, "X")?;
    let n = x.n_rows();
    if k == 0 || k >= n {
        return Err(Error::Parameter(format!(
            "k must satisfy 1 <= k <= N - 1 = {} for a self-search over N = {n} rows (self excluded), got k = {k}",
            n - 1
        )));
    }
    let pool = parallel::pool(n_threads)?;
    let xn = normalize_rows(x, "X", n_threads)?;
    let d = x.n_cols();
    let tiles = upper_tiles(n_blocks(n));
    let states = run_dynamic(
        &pool,
        tiles.len(),
        ctl,
        || {
            (
                TopK::new(n, k),
                vec![0.0_f32; BLOCK * BLOCK],
                vec![0.0_f32; BLOCK],
            )
        },
        |(acc, buf, tcol), t| {
            let (bi, bj) = tiles[t];
            let (i0, i1) = block_range(bi, n);
            let (j0, j1) = block_range(bj, n);
            let (ra, rb) = (i1 - i0, j1 - j0);
            gemm_abt(&xn[i0 * d..i1 * d], ra, &xn[j0 * d..j1 * d], rb, d, buf);
            for (c, tc) in tcol[..rb].iter_mut().enumerate() {
                *tc = acc.worst(j0 + c);
            }
            let diagonal = bi == bj;
            for r in 0..ra {
                let a = i0 + r;
                let row = &buf[r * rb..(r + 1) * rb];
                let mut ta = acc.worst(a);
                let mut c = if diagonal { r + 1 } else { 0 };
                while c < rb {
                    let end = (c + LANES).min(rb);
                    let hit = row[c..end]
                        .iter()
                        .zip(&tcol[c..end])
                        .fold(false, |h, (&s, &tc)| h | (s >= ta) | (s >= tc));
                    if hit {
                        for cc in c..end {
                            let s = row[cc];
                            let b = j0 + cc;
                            if s >= ta {
                                acc.push(a, s, b as u32);
                                ta = acc.worst(a);
                            }
                            if s >= tcol[cc] {
                                acc.push(b, s, a as u32);
                                tcol[cc] = acc.worst(b);
                            }
                        }
                    }
                    c = end;
                }
            }
        },
    )?;
    let mut nn = merge_states(states.into_iter().map(|s| s.0), n, k);
    refine_lists(&mut nn, &xn, &xn, d);
    Ok(nn)
}

/// Exact cosine kNN of each row of `x` among the rows of `y` (no
/// exclusion). Requires `1 <= k <= m` where `m` is the number of rows of `y`.
pub fn knn_query(
    x: MatRef<'_>,
    y: MatRef<'_>,
    k: usize,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<Neighbors> {
    check_non_empty(&x, "X")?;
    check_non_empty(&y, "Y")?;
    check_rows_fit_u32(&y, "Y")?;
    check_same_cols(&x, "X", &y, "Y")?;
    let (n, m) = (x.n_rows(), y.n_rows());
    if k == 0 || k > m {
        return Err(Error::Parameter(format!(
            "k must satisfy 1 <= k <= M = {m} (the rows of Y), got k = {k}"
        )));
    }
    let pool = parallel::pool(n_threads)?;
    let xn = normalize_rows(x, "X", n_threads)?;
    let yn = normalize_rows(y, "Y", n_threads)?;
    let d = x.n_cols();
    let tiles = all_tiles(n_blocks(n), n_blocks(m));
    let states = run_dynamic(
        &pool,
        tiles.len(),
        ctl,
        || (TopK::new(n, k), vec![0.0_f32; BLOCK * BLOCK]),
        |(acc, buf), t| {
            let (bi, bj) = tiles[t];
            let (i0, i1) = block_range(bi, n);
            let (j0, j1) = block_range(bj, m);
            let (ra, rb) = (i1 - i0, j1 - j0);
            gemm_abt(&xn[i0 * d..i1 * d], ra, &yn[j0 * d..j1 * d], rb, d, buf);
            for r in 0..ra {
                let a = i0 + r;
                let row = &buf[r * rb..(r + 1) * rb];
                let mut ta = acc.worst(a);
                for (c0, chunk) in row.chunks(LANES).enumerate() {
                    if chunk.iter().fold(false, |h, &s| h | (s >= ta)) {
                        for (cc, &s) in chunk.iter().enumerate() {
                            if s >= ta {
                                acc.push(a, s, (j0 + c0 * LANES + cc) as u32);
                                ta = acc.worst(a);
                            }
                        }
                    }
                }
            }
        },
    )?;
    let mut nn = merge_states(states.into_iter().map(|s| s.0), n, k);
    refine_lists(&mut nn, &xn, &yn, d);
    Ok(nn)
}

/// Makes the listed similarities exact near ±1 (so within `[-1, 1]`)
/// (see `exact`); a row whose values changed is re-sorted (similarity
/// descending, ties by the lower index). Rows of `xn` query rows of `yn`.
pub(crate) fn refine_lists(nn: &mut Neighbors, xn: &[f32], yn: &[f32], d: usize) {
    let (k, lo) = (nn.k, 1.0 - margin(d));
    for (a, (idx, sims)) in nn
        .indices
        .chunks_exact_mut(k)
        .zip(nn.similarities.chunks_exact_mut(k))
        .enumerate()
    {
        let mut changed = false;
        for (&b, s) in idx.iter().zip(sims.iter_mut()) {
            if b != u32::MAX && (*s >= lo || *s <= -lo) {
                let b = b as usize;
                let v = refine(&xn[a * d..(a + 1) * d], &yn[b * d..(b + 1) * d], *s, lo);
                changed |= v != *s;
                *s = v;
            }
        }
        if changed {
            let mut row: Vec<(f32, u32)> = sims.iter().copied().zip(idx.iter().copied()).collect();
            row.sort_unstable_by(|p, q| q.0.total_cmp(&p.0).then(p.1.cmp(&q.1)));
            for (slot, (v, b)) in row.into_iter().enumerate() {
                sims[slot] = v;
                idx[slot] = b;
            }
        }
    }
}

/// Merges the per-thread lists; the result does not depend on their order.
fn merge_states(states: impl Iterator<Item = TopK>, n: usize, k: usize) -> Neighbors {
    let mut total = TopK::new(n, k);
    for s in states {
        total.merge(&s);
    }
    let (indices, similarities) = total.into_parts();
    Neighbors {
        k,
        indices,
        similarities,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Naive reference: full similarity rows, sorted by (sim desc, idx asc).
    fn naive(
        xn: &[f32],
        y: &[f32],
        d: usize,
        k: usize,
        exclude_self: bool,
    ) -> (Vec<u32>, Vec<f32>) {
        let n = xn.len() / d;
        let m = y.len() / d;
        let (mut idx, mut sims) = (vec![], vec![]);
        for a in 0..n {
            let mut cands: Vec<(f32, u32)> = (0..m)
                .filter(|&b| !(exclude_self && a == b))
                .map(|b| {
                    let s = (0..d).map(|p| xn[a * d + p] * y[b * d + p]).sum::<f32>();
                    (s, b as u32)
                })
                .collect();
            cands.sort_by(|p, q| q.0.total_cmp(&p.0).then(p.1.cmp(&q.1)));
            for &(s, b) in cands.iter().take(k) {
                idx.push(b);
                sims.push(s);
            }
        }
        (idx, sims)
    }

    fn data(n: usize, d: usize, seed: u64) -> Vec<f32> {
        crate::testdata::uniform(n * d, seed, -0.5)
    }

    fn check(nn: &Neighbors, want: &(Vec<u32>, Vec<f32>), k: usize) {
        for (row, (gs, ws)) in nn.similarities.chunks(k).zip(want.1.chunks(k)).enumerate() {
            for (g, w) in gs.iter().zip(ws) {
                assert!((g - w).abs() < 1e-5, "row {row}: {gs:?} vs {ws:?}");
            }
        }
    }

    #[test]
    fn self_knn_matches_naive_across_blocks() -> Result<()> {
        let (n, d, k) = (BLOCK + 300, 9, 5);
        let x = data(n, d, 1);
        let nn1 = knn(MatRef::new(&x, n, d)?, k, Some(1), &Control::new())?;
        let nn2 = knn(MatRef::new(&x, n, d)?, k, Some(2), &Control::new())?;
        assert_eq!(nn1, nn2, "thread count changed the result");
        let xn = normalize_rows(MatRef::new(&x, n, d)?, "X", None)?;
        check(&nn1, &naive(&xn, &xn, d, k, true), k);
        for (a, row) in nn1.indices.chunks(k).enumerate() {
            assert!(!row.contains(&(a as u32)));
        }
        Ok(())
    }

    #[test]
    fn query_knn_matches_naive() -> Result<()> {
        let (n, m, d, k) = (50, BLOCK + 17, 4, 7);
        let x = data(n, d, 2);
        let y = data(m, d, 3);
        let nn = knn_query(
            MatRef::new(&x, n, d)?,
            MatRef::new(&y, m, d)?,
            k,
            Some(2),
            &Control::new(),
        )?;
        let xn = normalize_rows(MatRef::new(&x, n, d)?, "X", None)?;
        let yn = normalize_rows(MatRef::new(&y, m, d)?, "Y", None)?;
        check(&nn, &naive(&xn, &yn, d, k, false), k);
        Ok(())
    }

    #[test]
    fn bad_k_and_shapes() -> Result<()> {
        let x = data(4, 2, 4);
        let ctl = Control::new();
        assert!(matches!(
            knn(MatRef::new(&x, 4, 2)?, 4, None, &ctl),
            Err(Error::Parameter(_))
        ));
        assert!(matches!(
            knn(MatRef::new(&x, 4, 2)?, 0, None, &ctl),
            Err(Error::Parameter(_))
        ));
        assert!(matches!(
            knn(MatRef::new(&x[..2], 1, 2)?, 1, None, &ctl),
            Err(Error::Parameter(_))
        ));
        let y = data(3, 4, 5);
        assert!(matches!(
            knn_query(
                MatRef::new(&x, 4, 2)?,
                MatRef::new(&y, 3, 4)?,
                1,
                None,
                &ctl
            ),
            Err(Error::Shape(_))
        ));
        Ok(())
    }

    #[test]
    fn cancelled_search_stops() -> Result<()> {
        let x = data(100, 3, 6);
        let ctl = Control::new();
        ctl.cancel();
        assert_eq!(
            knn(MatRef::new(&x, 100, 3)?, 3, None, &ctl),
            Err(Error::Interrupted)
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn self_knn_equals_naive(n in 2usize..60, d in 1usize..6, seed in 0u64..1000, kf in 0.0f64..1.0) {
            let k = 1 + ((n - 2) as f64 * kf) as usize;
            let x = data(n, d, seed);
            let nn = knn(MatRef::new(&x, n, d).unwrap(), k, Some(2), &Control::new()).unwrap();
            let xn = normalize_rows(MatRef::new(&x, n, d).unwrap(), "X", None).unwrap();
            check(&nn, &naive(&xn, &xn, d, k, true), k);
        }
    }
}
