//! ε-graphs over pairs of row lists, in one call: a distributed partitioned
//! search hands a task some lists of a partition (each with the position of
//! its first row) and the pairs of lists to compare. Each pair is computed
//! by the kernels of the whole-matrix graph ([`threshold_edges`] of a list
//! with itself, [`threshold_edges_between`] of two lists), all on the calling
//! pool's threads: one hand-off to the pool for the batch, not one per pair
//! (a per-pair call costs a thread hand-off each, milliseconds on busy cores).

use crate::error::{Error, Result};
use crate::matrix::MatRef;
use crate::parallel::{self, Control};

use super::graph::{threshold_edges, threshold_edges_between, EdgeList};

/// Checks the lists, their start positions and the pairs: every pair names
/// two lists, and every list's positions fit in `u32`.
fn check(lists: &[MatRef<'_>], starts: &[u32], pairs: &[(u32, u32)]) -> Result<()> {
    if starts.len() != lists.len() {
        return Err(Error::Shape(format!(
            "one start position a list: {} lists, {} starts",
            lists.len(),
            starts.len()
        )));
    }
    for (l, (x, &s)) in lists.iter().zip(starts).enumerate() {
        if s as usize + x.n_rows() > u32::MAX as usize {
            return Err(Error::Shape(format!(
                "list {l} ({} rows from position {s}) has positions beyond {}",
                x.n_rows(),
                u32::MAX
            )));
        }
    }
    if let Some(&(i, j)) = pairs
        .iter()
        .find(|&&(i, j)| i as usize >= lists.len() || j as usize >= lists.len())
    {
        return Err(Error::Parameter(format!(
            "the pair ({i}, {j}) names a list beyond the {} given",
            lists.len()
        )));
    }
    Ok(())
}

/// The ε-graph edges (similarity `>= threshold`) of the given list pairs,
/// in positions: for a pair `(i, i)` the pairs within list `i`, for `(i, j)`
/// every row of list `i` with every row of list `j` (`src` in list `i`,
/// `dst` in list `j`, so `src < dst` does not hold in general). Pairs in the
/// order given, each pair's edges sorted; a pair given twice gives its edges
/// twice.
///
/// ```
/// use simclust_core::{similarity::list_pair_edges, Control, MatRef};
/// let a = [1.0_f32, 0.0, 0.99, 0.1];
/// let b = [0.98_f32, 0.15];
/// let lists = [MatRef::new(&a, 2, 2)?, MatRef::new(&b, 1, 2)?];
/// let e = list_pair_edges(&lists, &[10, 20], &[(0, 0), (0, 1)], 0.9, None, &Control::new())?;
/// assert_eq!((e.src, e.dst), (vec![10, 10, 11], vec![11, 20, 20]));
/// # Ok::<(), simclust_core::Error>(())
/// ```
pub fn list_pair_edges(
    lists: &[MatRef<'_>],
    starts: &[u32],
    pairs: &[(u32, u32)],
    threshold: f32,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<EdgeList> {
    check(lists, starts, pairs)?;
    let pool = parallel::pool(n_threads)?;
    pool.install(|| {
        let mut out = EdgeList::default();
        for &(i, j) in pairs {
            let (i, j) = (i as usize, j as usize);
            let e = if i == j {
                threshold_edges(lists[i], threshold, n_threads, ctl)?
            } else {
                threshold_edges_between(lists[i], lists[j], threshold, n_threads, ctl)?
            };
            out.src.extend(e.src.iter().map(|&a| a + starts[i]));
            out.dst.extend(e.dst.iter().map(|&b| b + starts[j]));
            out.similarity.extend_from_slice(&e.similarity);
        }
        Ok(out)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testdata::clustered;
    use crate::tiles::BLOCK;

    /// `x` (`d` columns) cut into lists at `cuts`, and every pair of them.
    fn cut<'a>(x: &'a [f32], d: usize, cuts: &[usize]) -> Result<Lists<'a>> {
        let lists = cuts
            .windows(2)
            .map(|w| MatRef::new(&x[w[0] * d..w[1] * d], w[1] - w[0], d))
            .collect::<Result<Vec<_>>>()?;
        let m = lists.len() as u32;
        let starts = cuts[..cuts.len() - 1].iter().map(|&c| c as u32).collect();
        let pairs = (0..m).flat_map(|i| (i..m).map(move |j| (i, j))).collect();
        Ok((lists, starts, pairs))
    }

    type Lists<'a> = (Vec<MatRef<'a>>, Vec<u32>, Vec<(u32, u32)>);

    /// Lists on tile boundaries, every pair compared: the whole matrix's
    /// ε-graph, bit for bit (the same tiles).
    #[test]
    fn all_pairs_of_aligned_lists_give_the_whole_threshold_graph() -> Result<()> {
        let (n, d) = (2 * BLOCK + 300, 12);
        let x = clustered(n, d, 12, 0.5, 21);
        let (lists, starts, pairs) = cut(&x, d, &[0, BLOCK, 2 * BLOCK, n])?;
        let ctl = Control::new();
        for threads in [1, 2] {
            let e = list_pair_edges(&lists, &starts, &pairs, 0.8, Some(threads), &ctl)?;
            let mut got: Vec<(u32, u32, u32)> = (0..e.src.len())
                .map(|t| {
                    let (a, b) = (e.src[t].min(e.dst[t]), e.src[t].max(e.dst[t]));
                    (a, b, e.similarity[t].to_bits())
                })
                .collect();
            got.sort_unstable();
            let want = threshold_edges(MatRef::new(&x, n, d)?, 0.8, Some(threads), &ctl)?;
            let want: Vec<(u32, u32, u32)> = (0..want.src.len())
                .map(|t| (want.src[t], want.dst[t], want.similarity[t].to_bits()))
                .collect();
            assert!(!want.is_empty() && got == want);
        }
        Ok(())
    }

    #[test]
    fn bad_lists_and_pairs_are_errors() -> Result<()> {
        let x = clustered(10, 4, 2, 0.5, 23);
        let lists = [MatRef::new(&x, 10, 4)?];
        let ctl = Control::new();
        assert!(matches!(
            list_pair_edges(&lists, &[0], &[(0, 1)], 0.5, None, &ctl),
            Err(Error::Parameter(_))
        ));
        assert!(matches!(
            list_pair_edges(&lists, &[0, 1], &[(0, 0)], 0.5, None, &ctl),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            list_pair_edges(&lists, &[u32::MAX - 3], &[(0, 0)], 0.5, None, &ctl),
            Err(Error::Shape(_))
        ));
        Ok(())
    }
}
