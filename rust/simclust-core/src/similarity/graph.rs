//! Edge lists: the ε-graph (every pair with similarity >= t) and the
//! thresholded, undirected kNN graph. Memory grows with the number of edges,
//! never with N².

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::matrix::{check_same_cols, MatRef};
use crate::parallel::{self, Control};

use super::exact::{refine, screen};
use super::knn::{check_rows_fit_u32, knn, Neighbors};
use super::normalize::{check_non_empty, normalize_rows};
use crate::tiles::{all_tiles, block_range, gemm_abt, n_blocks, run_indexed, upper_tiles, BLOCK};

/// Columns screened per vectorised step.
const LANES: usize = 16;

/// An undirected edge list with `src < dst`, sorted by `(src, dst)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EdgeList {
    /// Smaller endpoint of each edge.
    pub src: Vec<u32>,
    /// Larger endpoint of each edge.
    pub dst: Vec<u32>,
    /// Cosine similarity of each edge.
    pub similarity: Vec<f32>,
}

impl EdgeList {
    /// Number of edges.
    pub fn len(&self) -> usize {
        self.src.len()
    }

    /// Whether there are no edges.
    pub fn is_empty(&self) -> bool {
        self.src.is_empty()
    }

    fn from_sorted(edges: &[(u32, u32, f32)]) -> Self {
        Self {
            src: edges.iter().map(|e| e.0).collect(),
            dst: edges.iter().map(|e| e.1).collect(),
            similarity: edges.iter().map(|e| e.2).collect(),
        }
    }
}

/// Validates a cosine threshold: finite and within `[-1, 1]`.
pub(crate) fn check_threshold(threshold: f32) -> Result<()> {
    if !(-1.0..=1.0).contains(&threshold) {
        return Err(Error::Parameter(format!(
            "threshold must be a cosine similarity in [-1, 1], got {threshold}"
        )));
    }
    Ok(())
}

/// Every pair `i < j` with cosine similarity `>= threshold`.
///
/// The upper-triangle tiles are computed in parallel; each keeps the pairs
/// that pass, then each row block's pairs are sorted and appended in block
/// order, so the list comes out sorted by `(src, dst)`.
///
/// ```
/// use simclust_core::{similarity::threshold_edges, Control, MatRef};
/// let x = [1.0_f32, 0.0, 0.99, 0.1, 0.0, 1.0];
/// let g = threshold_edges(MatRef::new(&x, 3, 2)?, 0.9, None, &Control::new())?;
/// assert_eq!((g.src, g.dst), (vec![0], vec![1]));
/// # Ok::<(), simclust_core::Error>(())
/// ```
pub fn threshold_edges(
    x: MatRef<'_>,
    threshold: f32,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<EdgeList> {
    check_non_empty(&x, "X")?;
    check_rows_fit_u32(&x, "X")?;
    check_threshold(threshold)?;
    let xn = normalize_rows(x, "X", n_threads)?;
    let n = x.n_rows();
    let tiles = upper_tiles(n_blocks(n));
    tile_edges(&xn, n, None, x.n_cols(), &tiles, threshold, n_threads, ctl)
}

/// Every pair of a row of `a` and a row of `b` with cosine similarity
/// `>= threshold`: `src` indexes the rows of `a`, `dst` those of `b`, sorted
/// by `(src, dst)` (so `src < dst` does not hold in general).
///
/// The tiles are those of [`threshold_edges`] (`BLOCK` rows of `a` by
/// `BLOCK` rows of `b`), with the same screen and exact re-check: when `a`
/// and `b` are two row ranges of one matrix, each starting at a multiple of
/// `BLOCK`, every pair's similarity is the one [`threshold_edges`] of the
/// whole matrix gives, bit for bit, and the union over the ranges' pairs is
/// its edge list. This is how a distributed run splits an ε-graph into
/// block-pair tasks.
///
/// ```
/// use simclust_core::{similarity::threshold_edges_between, Control, MatRef};
/// let a = [1.0_f32, 0.0, 0.0, 1.0];
/// let b = [0.99_f32, 0.1];
/// let g = threshold_edges_between(MatRef::new(&a, 2, 2)?, MatRef::new(&b, 1, 2)?, 0.9, None, &Control::new())?;
/// assert_eq!((g.src, g.dst), (vec![0], vec![0]));
/// # Ok::<(), simclust_core::Error>(())
/// ```
pub fn threshold_edges_between(
    a: MatRef<'_>,
    b: MatRef<'_>,
    threshold: f32,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<EdgeList> {
    check_non_empty(&a, "A")?;
    check_non_empty(&b, "B")?;
    check_rows_fit_u32(&a, "A")?;
    check_rows_fit_u32(&b, "B")?;
    check_same_cols(&a, "A", &b, "B")?;
    check_threshold(threshold)?;
    let an = normalize_rows(a, "A", n_threads)?;
    let bn = normalize_rows(b, "B", n_threads)?;
    let (na, nb) = (a.n_rows(), b.n_rows());
    let tiles = all_tiles(n_blocks(na), n_blocks(nb));
    tile_edges(
        &an,
        na,
        Some((&bn, nb)),
        a.n_cols(),
        &tiles,
        threshold,
        n_threads,
        ctl,
    )
}

/// The pairs `>= threshold` of the given tiles of `xa · xbᵀ` (`xb = None`:
/// `xa · xaᵀ`, upper tiles, diagonal tiles above their diagonal), screened
/// in float32 and made exact near ±1, sorted by `(src, dst)`: each tile's
/// pairs are kept, then each row block's pairs are sorted and appended in
/// block order.
#[allow(clippy::too_many_arguments)]
fn tile_edges(
    xa: &[f32],
    na: usize,
    xb: Option<(&[f32], usize)>,
    d: usize,
    tiles: &[(usize, usize)],
    threshold: f32,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<EdgeList> {
    let pool = parallel::pool(n_threads)?;
    let same = xb.is_none();
    let (xb, nb_rows) = xb.unwrap_or((xa, na));
    // Pairs within rounding of ±1 are re-checked exactly (see `exact`).
    let (screen, lo) = screen(threshold, d);
    // One edge list per tile, in tile order (row-major, so the tiles of row
    // block i are contiguous); then per row block, sort. A thread's tile
    // buffer holds the largest tile (a small list pair's, not 4 MiB zeroed
    // per call, when a distributed task runs many of them).
    let tile_len = na.min(BLOCK) * nb_rows.min(BLOCK);
    let per_tile = run_indexed(
        &pool,
        tiles.len(),
        ctl,
        || vec![0.0_f32; tile_len],
        |buf, t| {
            let (bi, bj) = tiles[t];
            let mut edges = Vec::new();
            let tile = Tile {
                rows: block_range(bi, na),
                cols: block_range(bj, nb_rows),
                diagonal: same && bi == bj,
            };
            tile_pairs(
                xa,
                xb,
                d,
                tile,
                (threshold, screen, lo),
                buf,
                (0, 0),
                &mut edges,
            );
            edges
        },
    )?;
    let mut per_block: Vec<Vec<Vec<(u32, u32, f32)>>> =
        (0..n_blocks(na)).map(|_| Vec::new()).collect();
    for (t, e) in per_tile.into_iter().enumerate() {
        per_block[tiles[t].0].push(e);
    }
    let sorted: Vec<Vec<(u32, u32, f32)>> = pool.install(|| {
        per_block
            .into_par_iter()
            .map(|parts| {
                let mut all: Vec<(u32, u32, f32)> = parts.concat();
                all.sort_unstable_by_key(|e| (e.0, e.1));
                all
            })
            .collect()
    });
    let total: usize = sorted.iter().map(Vec::len).sum();
    let mut out = EdgeList {
        src: Vec::with_capacity(total),
        dst: Vec::with_capacity(total),
        similarity: Vec::with_capacity(total),
    };
    for block in sorted {
        for (s, t, v) in block {
            out.src.push(s);
            out.dst.push(t);
            out.similarity.push(v);
        }
    }
    Ok(out)
}

/// A tile of an ε-graph: rows `rows.0..rows.1` of one matrix against rows
/// `cols.0..cols.1` of another (or the same); a `diagonal` tile (a block
/// with itself) keeps the pairs above its diagonal only.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tile {
    pub(crate) rows: (usize, usize),
    pub(crate) cols: (usize, usize),
    pub(crate) diagonal: bool,
}

/// Appends to `edges` the pairs of one tile of `xa · xbᵀ` (unit rows, `d`
/// columns) whose similarity is `>= threshold`: one GEMM into `buf`, a
/// float32 screen at `screen`, the exact re-check near ±1 below `lo` (see
/// `exact`); rows and columns are shifted by `shift` in the edges. The one
/// tile body of every exact ε-graph ([`threshold_edges`],
/// [`threshold_edges_between`], `list_pair_edges`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn tile_pairs(
    xa: &[f32],
    xb: &[f32],
    d: usize,
    tile: Tile,
    (threshold, screen, lo): (f32, f32, f32),
    buf: &mut [f32],
    shift: (u32, u32),
    edges: &mut Vec<(u32, u32, f32)>,
) {
    let ((i0, i1), (j0, j1)) = (tile.rows, tile.cols);
    let (ra, rb) = (i1 - i0, j1 - j0);
    gemm_abt(&xa[i0 * d..i1 * d], ra, &xb[j0 * d..j1 * d], rb, d, buf);
    for r in 0..ra {
        let row = &buf[r * rb..(r + 1) * rb];
        let mut c = if tile.diagonal { r + 1 } else { 0 };
        while c < rb {
            let end = (c + LANES).min(rb);
            if row[c..end].iter().fold(false, |h, &s| h | (s >= screen)) {
                for (cc, &s) in row[c..end].iter().enumerate() {
                    if s >= screen {
                        let (a, b) = (i0 + r, j0 + c + cc);
                        let v = refine(&xa[a * d..(a + 1) * d], &xb[b * d..(b + 1) * d], s, lo);
                        if v >= threshold {
                            edges.push((a as u32 + shift.0, b as u32 + shift.1, v));
                        }
                    }
                }
            }
            c = end;
        }
    }
}

/// The self-kNN edges (`k` neighbours per row) whose similarity is
/// `>= threshold`, made undirected as `(min, max)` and deduplicated (a
/// mutual pair appears once), sorted by `(src, dst)`.
pub fn knn_edges(
    x: MatRef<'_>,
    k: usize,
    threshold: f32,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<EdgeList> {
    check_threshold(threshold)?;
    let nn = knn(x, k, n_threads, ctl)?;
    Ok(edges_from_neighbors(&nn, threshold))
}

/// The undirected edges `(min, max)` of kNN lists with similarity
/// `>= threshold`, deduplicated (a mutual pair once), sorted by `(src, dst)`.
pub(crate) fn edges_from_neighbors(nn: &Neighbors, threshold: f32) -> EdgeList {
    let k = nn.k;
    let mut edges: Vec<(u32, u32, f32)> = nn
        .indices
        .chunks_exact(k)
        .zip(nn.similarities.chunks_exact(k))
        .enumerate()
        .flat_map(|(a, (idx, sims))| {
            idx.iter()
                .zip(sims)
                .filter(|(&b, &s)| b != u32::MAX && s >= threshold)
                .map(move |(&b, &s)| {
                    let a = a as u32;
                    (a.min(b), a.max(b), s)
                })
        })
        .collect();
    edges.sort_unstable_by(|p, q| (p.0, p.1).cmp(&(q.0, q.1)).then(q.2.total_cmp(&p.2)));
    edges.dedup_by_key(|e| (e.0, e.1));
    EdgeList::from_sorted(&edges)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn data(n: usize, d: usize, seed: u64) -> Vec<f32> {
        crate::testdata::uniform(n * d, seed, -0.5)
    }

    #[test]
    fn threshold_edges_match_naive() -> Result<()> {
        let (n, d, t) = (BLOCK + 123, 3, 0.95_f32);
        let x = data(n, d, 7);
        let g1 = threshold_edges(MatRef::new(&x, n, d)?, t, Some(1), &Control::new())?;
        let g2 = threshold_edges(MatRef::new(&x, n, d)?, t, Some(2), &Control::new())?;
        assert_eq!(g1, g2);
        let xn = normalize_rows(MatRef::new(&x, n, d)?, "X", None)?;
        let dot = |a: usize, b: usize| (0..d).map(|p| xn[a * d + p] * xn[b * d + p]).sum::<f32>();
        let mut want = vec![];
        let mut unsure = 0;
        for a in 0..n {
            for b in a + 1..n {
                let s = dot(a, b);
                if (s - t).abs() < 1e-5 {
                    unsure += 1;
                } else if s >= t {
                    want.push((a as u32, b as u32));
                }
            }
        }
        let got: Vec<(u32, u32)> = g1.src.iter().copied().zip(g1.dst.iter().copied()).collect();
        let mut got_sure = got.clone();
        got_sure.retain(|&(a, b)| (dot(a as usize, b as usize) - t).abs() >= 1e-5);
        assert_eq!(got_sure, want);
        assert!(got.len() <= want.len() + unsure);
        assert!(got.windows(2).all(|w| w[0] < w[1]));
        Ok(())
    }

    #[test]
    fn block_pairs_give_the_whole_graph_bit_for_bit() -> Result<()> {
        // three row ranges starting at multiples of BLOCK, the last one short
        let (n, d, t) = (2 * BLOCK + 300, 5, 0.9_f32);
        let mut x = data(n, d, 11);
        // exact duplicates across ranges: similarity 1 exactly, on both sides
        let row: Vec<f32> = x[3 * d..4 * d].to_vec();
        x[(2 * BLOCK + 7) * d..(2 * BLOCK + 8) * d].copy_from_slice(&row);
        let whole = threshold_edges(MatRef::new(&x, n, d)?, t, Some(2), &Control::new())?;
        let starts = [0, BLOCK, 2 * BLOCK, n];
        let mut got: Vec<(u32, u32, f32)> = Vec::new();
        for i in 0..3 {
            let (a0, a1) = (starts[i], starts[i + 1]);
            let a = MatRef::new(&x[a0 * d..a1 * d], a1 - a0, d)?;
            let own = threshold_edges(a, t, Some(1), &Control::new())?;
            got.extend((0..own.len()).map(|e| {
                (
                    own.src[e] + a0 as u32,
                    own.dst[e] + a0 as u32,
                    own.similarity[e],
                )
            }));
            for j in i + 1..3 {
                let (b0, b1) = (starts[j], starts[j + 1]);
                let b = MatRef::new(&x[b0 * d..b1 * d], b1 - b0, d)?;
                let g = threshold_edges_between(a, b, t, Some(2), &Control::new())?;
                assert!(g.src.windows(2).all(|w| w[0] <= w[1]));
                got.extend(
                    (0..g.len())
                        .map(|e| (g.src[e] + a0 as u32, g.dst[e] + b0 as u32, g.similarity[e])),
                );
            }
        }
        got.sort_unstable_by_key(|e| (e.0, e.1));
        let want: Vec<(u32, u32, f32)> = (0..whole.len())
            .map(|e| (whole.src[e], whole.dst[e], whole.similarity[e]))
            .collect();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!((g.0, g.1, g.2.to_bits()), (w.0, w.1, w.2.to_bits()));
        }
        assert!(want
            .iter()
            .any(|e| (e.0, e.1, e.2) == (3, (2 * BLOCK + 7) as u32, 1.0)));
        Ok(())
    }

    #[test]
    fn between_checks_its_inputs() -> Result<()> {
        let x = data(6, 3, 12);
        let a = MatRef::new(&x[..9], 3, 3)?;
        let b = MatRef::new(&x[..6], 3, 2)?;
        assert!(matches!(
            threshold_edges_between(a, b, 0.5, None, &Control::new()),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            threshold_edges_between(a, a, 1.5, None, &Control::new()),
            Err(Error::Parameter(_))
        ));
        Ok(())
    }

    #[test]
    fn knn_edges_are_undirected_and_unique() -> Result<()> {
        let (n, d, k) = (300, 4, 3);
        let x = data(n, d, 8);
        let g = knn_edges(MatRef::new(&x, n, d)?, k, -1.0, None, &Control::new())?;
        let nn = knn(MatRef::new(&x, n, d)?, k, None, &Control::new())?;
        let mut want: Vec<(u32, u32)> = nn
            .indices
            .chunks(k)
            .enumerate()
            .flat_map(|(a, r)| {
                r.iter()
                    .map(move |&b| ((a as u32).min(b), (a as u32).max(b)))
            })
            .collect();
        want.sort_unstable();
        want.dedup();
        let got: Vec<(u32, u32)> = g.src.iter().copied().zip(g.dst.iter().copied()).collect();
        assert_eq!(got, want);
        Ok(())
    }

    #[test]
    fn threshold_is_validated() -> Result<()> {
        let x = data(5, 2, 9);
        for t in [1.5, -1.01, f32::NAN] {
            assert!(matches!(
                threshold_edges(MatRef::new(&x, 5, 2)?, t, None, &Control::new()),
                Err(Error::Parameter(_))
            ));
        }
        let single = threshold_edges(MatRef::new(&x[..2], 1, 2)?, 0.5, None, &Control::new())?;
        assert!(single.is_empty());
        Ok(())
    }
}
