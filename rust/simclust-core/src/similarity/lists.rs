//! ε-graphs over pairs of row lists, in one call: a distributed partitioned
//! search hands a task some lists of a partition (each with the position of
//! its first row) and the pairs of lists to compare. Each pair's tiles are
//! those of the whole-matrix graph ([`threshold_edges`] of a list with
//! itself, [`threshold_edges_between`] of two lists), computed by its tile
//! body (`tile_pairs`), all tiles of all pairs in one pass over the pool:
//! a call per pair costs a thread hand-off and a set-up each.
//!
//! [`threshold_edges`]: super::graph::threshold_edges
//! [`threshold_edges_between`]: super::graph::threshold_edges_between

use crate::error::{Error, Result};
use crate::matrix::MatRef;
use crate::parallel::{self, Control};

use super::exact::screen;
use super::graph::{check_threshold, tile_pairs, EdgeList, Tile};
use super::normalize::{check_non_empty, normalize_rows};
use crate::matrix::check_same_cols;
use crate::tiles::{all_tiles, block_range, n_blocks, run_indexed, upper_tiles, BLOCK};

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
/// `dst` in list `j`, so `src < dst` does not hold in general), in tile
/// order (pairs in the order given); a pair given twice gives its edges
/// twice. The tiles, screen and re-check are those of [`threshold_edges`]
/// of one list and [`threshold_edges_between`] of two (every tile of every
/// pair, one GEMM buffer a thread: no per-pair set-up), so the edges and
/// their similarities are theirs, bit for bit.
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
    check_threshold(threshold)?;
    let Some(first) = lists.first() else {
        return Ok(EdgeList::default());
    };
    for x in lists {
        check_non_empty(x, "a list")?;
        check_same_cols(first, "the first list", x, "a list")?;
    }
    let d = first.n_cols();
    // each list's unit rows once (the kernels' normalisation: unit rows as they are)
    let unit = lists
        .iter()
        .map(|x| normalize_rows(*x, "a list", n_threads))
        .collect::<Result<Vec<_>>>()?;
    let tiles: Vec<(usize, Tile)> = pairs
        .iter()
        .enumerate()
        .flat_map(|(p, &(i, j))| {
            let (ni, nj) = (lists[i as usize].n_rows(), lists[j as usize].n_rows());
            let blocks = if i == j {
                upper_tiles(n_blocks(ni))
            } else {
                all_tiles(n_blocks(ni), n_blocks(nj))
            };
            blocks.into_iter().map(move |(bi, bj)| {
                let tile = Tile {
                    rows: block_range(bi, ni),
                    cols: block_range(bj, nj),
                    diagonal: i == j && bi == bj,
                };
                (p, tile)
            })
        })
        .collect();
    let (screen, lo) = screen(threshold, d);
    let longest = lists
        .iter()
        .map(|x| x.n_rows().min(BLOCK))
        .max()
        .unwrap_or(0);
    let pool = parallel::pool(n_threads)?;
    let per_tile = run_indexed(
        &pool,
        tiles.len(),
        ctl,
        || vec![0.0_f32; longest * longest],
        |buf, t| {
            let (p, tile) = tiles[t];
            let (i, j) = (pairs[p].0 as usize, pairs[p].1 as usize);
            let mut edges = Vec::new();
            let shift = (starts[i], starts[j]);
            let limits = (threshold, screen, lo);
            tile_pairs(&unit[i], &unit[j], d, tile, limits, buf, shift, &mut edges);
            edges
        },
    )?;
    let mut out = EdgeList::default();
    for (a, b, v) in per_tile.into_iter().flatten() {
        out.src.push(a);
        out.dst.push(b);
        out.similarity.push(v);
    }
    Ok(out)
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
            let whole = MatRef::new(&x, n, d)?;
            let want = super::super::graph::threshold_edges(whole, 0.8, Some(threads), &ctl)?;
            let want: Vec<(u32, u32, u32)> = (0..want.src.len())
                .map(|t| (want.src[t], want.dst[t], want.similarity[t].to_bits()))
                .collect();
            assert!(!want.is_empty() && got == want);
        }
        Ok(())
    }

    /// Lists cut anywhere: each pair's edges are those of the per-pair
    /// kernels on the two lists, bit for bit.
    #[test]
    fn each_pair_gives_the_per_pair_kernels_edges() -> Result<()> {
        use super::super::graph::{threshold_edges, threshold_edges_between};
        let (n, d) = (BLOCK + 900, 16);
        let x = clustered(n, d, 8, 0.4, 24);
        let (lists, starts, pairs) = cut(&x, d, &[0, 1, 300, BLOCK + 333, n])?;
        let ctl = Control::new();
        let got = list_pair_edges(&lists, &starts, &pairs, 0.7, Some(2), &ctl)?;
        let mut want: Vec<(u32, u32, u32)> = vec![];
        for &(i, j) in &pairs {
            let (i, j) = (i as usize, j as usize);
            let e = if i == j {
                threshold_edges(lists[i], 0.7, Some(1), &ctl)?
            } else {
                threshold_edges_between(lists[i], lists[j], 0.7, Some(1), &ctl)?
            };
            for t in 0..e.src.len() {
                want.push((
                    e.src[t] + starts[i],
                    e.dst[t] + starts[j],
                    e.similarity[t].to_bits(),
                ));
            }
        }
        let mut got: Vec<(u32, u32, u32)> = (0..got.src.len())
            .map(|t| (got.src[t], got.dst[t], got.similarity[t].to_bits()))
            .collect();
        got.sort_unstable();
        want.sort_unstable();
        assert!(!want.is_empty() && got == want);
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
