//! Exact cosine k-nearest neighbours.

use crate::error::{Error, Result};
use crate::matrix::{check_same_cols, MatRef};
use crate::parallel::{self, Control};

use super::amx::Bf16Rows;
use super::exact::{dot64, exact_cosines};
use super::int16::{Avx2, Int16Isa, Quantized};
use super::normalize::{check_non_empty, normalize_rows};
use super::screen::{finish, ExactRows, Path, Shortlist};
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
/// computed, and each similarity updates the lists of both rows. The tiles
/// are *screened* (see `screen`): with int16 dot products on CPUs with
/// AVX-512 VNNI, else with the fp32 GEMM; every pair that could be among a
/// row's `k` best is then recomputed exactly in f64 and the lists are
/// chosen from those values. The result (indices and similarities) is the
/// same, bit for bit, on either path and for any thread count. Requires
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
    knn_on(x, k, n_threads, ctl, Path::detect())
}

/// [`knn`] on an explicit screening path ([`Path::Int16`] falls back to
/// [`Path::Fp32`] where the CPU lacks AVX-512 VNNI).
pub(crate) fn knn_on(
    x: MatRef<'_>,
    k: usize,
    n_threads: Option<usize>,
    ctl: &Control,
    path: Path,
) -> Result<Neighbors> {
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
    Shortlist::ensure_fits(n, k, pool.current_num_threads())?;
    let xn = normalize_rows(x, "X", n_threads)?;
    let tiles: Vec<ScreenTile> = upper_tiles(n_blocks(n))
        .into_iter()
        .map(|(bi, bj)| ScreenTile {
            rows: block_range(bi, n),
            cols: block_range(bj, n),
            diagonal: bi == bj,
        })
        .collect();
    let rows = ExactRows::new(&xn, x.n_cols(), &pool);
    let lists = screen_tiles(&xn, n, x.n_cols(), k, &tiles, &rows, &pool, ctl, path, &[])?;
    Ok(finish(&lists, &rows, n, k, &pool))
}

/// Exact cosine kNN between two row sets, both ways: each row of `a`'s `k`
/// nearest rows of `b`, and each row of `b`'s `k` nearest rows of `a`
/// (indices into the other set; a row of a set with fewer than `k` rows
/// lists them all, padded with `u32::MAX` and `-inf`).
///
/// Every pair of `a x b` is screened once, for both of its rows, with the
/// screens and the exact re-check of [`knn`], and every listed similarity is
/// the crate's one exact per-pair value (`exact_cosine` of the two unit
/// rows): the same bits [`knn`] lists for the pair, whatever matrix the rows
/// come from. So when `a` and `b` are row blocks of one matrix, merging the
/// lists of [`knn`] over each block with these over each pair of blocks
/// (similarity descending, ties to the lower row) gives [`knn`] of the whole
/// matrix, bit for bit: how a distributed run splits a kNN graph into
/// block-pair tasks. Requires `k >= 1`.
///
/// `floors`, when given, holds a similarity per row of `a` and of `b` (`-inf`
/// for none; not NaN) below which the row's pairs are not listed: a row's
/// current `k`-th best from the blocks already searched, below which no pair
/// can be among its `k` nearest overall. A row then lists only its pairs at
/// or above its floor (padded as above), and rows whose floor is high are
/// screened against a high bar from the start, not from nothing.
///
/// ```
/// use simclust_core::{similarity::knn_between, Control, MatRef};
/// let a = [1.0_f32, 0.0, 0.0, 1.0];
/// let b = [0.9_f32, 0.1, 0.1, 0.9, -1.0, 0.0];
/// let (a, b) = (MatRef::new(&a, 2, 2)?, MatRef::new(&b, 3, 2)?);
/// let (ab, ba) = knn_between(a, b, 1, None, None, &Control::new())?;
/// assert_eq!((ab.indices, ba.indices), (vec![0, 1], vec![0, 1, 1]));
/// // row 2 of b (-1, 0) already has a neighbour at 0.5 elsewhere: none here reaches it
/// let floors = [f32::NEG_INFINITY; 2];
/// let fb = [f32::NEG_INFINITY, f32::NEG_INFINITY, 0.5];
/// let (_, ba) = knn_between(a, b, 1, Some((&floors, &fb)), None, &Control::new())?;
/// assert_eq!(ba.indices, vec![0, 1, u32::MAX]);
/// # Ok::<(), simclust_core::Error>(())
/// ```
pub fn knn_between(
    a: MatRef<'_>,
    b: MatRef<'_>,
    k: usize,
    floors: Option<(&[f32], &[f32])>,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<(Neighbors, Neighbors)> {
    knn_between_on(a, b, k, floors, n_threads, ctl, Path::detect())
}

/// [`knn_between`] on an explicit screening path.
pub(crate) fn knn_between_on(
    a: MatRef<'_>,
    b: MatRef<'_>,
    k: usize,
    floors: Option<(&[f32], &[f32])>,
    n_threads: Option<usize>,
    ctl: &Control,
    path: Path,
) -> Result<(Neighbors, Neighbors)> {
    check_non_empty(&a, "A")?;
    check_non_empty(&b, "B")?;
    check_rows_fit_u32(&a, "A")?;
    check_rows_fit_u32(&b, "B")?;
    check_same_cols(&a, "A", &b, "B")?;
    if k == 0 {
        return Err(Error::Parameter("k must be at least 1, got 0".into()));
    }
    let (na, nb, d) = (a.n_rows(), b.n_rows(), a.n_cols());
    // One buffer: the rows of `a`, then from a multiple of 32 rows (where the
    // int16 kernel's column panels start) the rows of `b`. The gap holds
    // copies of `a`'s first row (unit rows, so the screens' error bounds are
    // those of `a` and `b`); no tile covers it.
    let off = na.next_multiple_of(32);
    let n = off + nb;
    if n > u32::MAX as usize {
        return Err(Error::Shape(format!(
            "A and B have {na} + {nb} rows; at most {} together are supported",
            u32::MAX - 31
        )));
    }
    let pool = parallel::pool(n_threads)?;
    Shortlist::ensure_fits(n, k, pool.current_num_threads())?;
    let mut xn = normalize_rows(a, "A", n_threads)?;
    xn.reserve_exact((n - na) * d);
    for _ in na..off {
        xn.extend_from_within(..d);
    }
    xn.extend_from_slice(&normalize_rows(b, "B", n_threads)?);
    let mut tiles = Vec::with_capacity(n_blocks(na) * n_blocks(nb));
    for bi in 0..n_blocks(na) {
        for bj in 0..n_blocks(nb) {
            let (j0, j1) = block_range(bj, nb);
            tiles.push(ScreenTile {
                rows: block_range(bi, na),
                cols: (off + j0, off + j1),
                diagonal: false,
            });
        }
    }
    let mut floor = vec![];
    if let Some((fa, fb)) = floors {
        for (f, side, rows) in [(fa, "A", na), (fb, "B", nb)] {
            if f.len() != rows {
                return Err(Error::Shape(format!(
                    "floors of {side} must have one value per row ({rows}), got {}",
                    f.len()
                )));
            }
            if let Some(i) = f.iter().position(|v| v.is_nan()) {
                return Err(Error::Parameter(format!("floor {i} of {side} is NaN")));
            }
        }
        floor.extend_from_slice(fa);
        floor.resize(off, f32::NEG_INFINITY);
        floor.extend_from_slice(fb);
    }
    let rows = ExactRows::new(&xn, d, &pool);
    let lists = screen_tiles(&xn, n, d, k, &tiles, &rows, &pool, ctl, path, &floor)?;
    let all = finish(&lists, &rows, n, k, &pool);
    let side = |r0: usize, r1: usize, shift: u32| Neighbors {
        k,
        indices: all.indices[r0 * k..r1 * k]
            .iter()
            .map(|&j| if j == u32::MAX { j } else { j - shift })
            .collect(),
        similarities: all.similarities[r0 * k..r1 * k].to_vec(),
    };
    Ok((side(0, na, off as u32), side(off, n, 0)))
}

/// A tile of the screening pass: rows `rows.0..rows.1` against columns
/// `cols.0..cols.1` of the unit rows; a `diagonal` tile (the same block
/// twice) counts its pairs above the diagonal only.
#[derive(Debug, Clone, Copy)]
struct ScreenTile {
    rows: (usize, usize),
    cols: (usize, usize),
    diagonal: bool,
}

/// The rounded rows of a fast screening path, with their error bound.
enum Screener {
    Bf16(Bf16Rows),
    Int16(Quantized),
}

impl Screener {
    /// The rows for `path`, falling back to the next path down (bf16 to
    /// int16 with VNNI, then with AVX2) where the CPU lacks the kernel or the
    /// bound is too loose; `None` for the fp32 GEMM.
    fn new(
        path: Path,
        xn: &[f32],
        n: usize,
        d: usize,
        rows: &ExactRows<'_>,
        pool: &rayon::ThreadPool,
    ) -> Option<Self> {
        let int16 = |isa: Option<Int16Isa>| {
            isa.and_then(|isa| Quantized::new(isa, xn, n, d, rows, pool))
                .map(Screener::Int16)
        };
        match path {
            Path::Amx => Bf16Rows::new(xn, n, d, rows, pool)
                .map(Screener::Bf16)
                .or_else(|| int16(Int16Isa::detect())),
            Path::Int16 => int16(Int16Isa::detect()),
            Path::Int16Avx2 => int16(Avx2::detect().map(Int16Isa::Avx2)),
            Path::Fp32 => None,
        }
    }

    fn eps(&self) -> f64 {
        match self {
            Screener::Bf16(q) => q.eps(),
            Screener::Int16(q) => q.eps(),
        }
    }

    fn n_pad(&self) -> usize {
        match self {
            Screener::Bf16(q) => q.n_pad(),
            Screener::Int16(q) => q.n_pad(),
        }
    }

    fn screen_tile(&self, tile: ScreenTile, sl: &mut Shortlist, rows: &ExactRows<'_>) {
        match self {
            Screener::Bf16(q) => q.screen_tile(tile.rows, tile.cols, tile.diagonal, sl, rows),
            Screener::Int16(q) => q.screen_tile(tile.rows, tile.cols, tile.diagonal, sl, rows),
        }
    }
}

/// The screening pass of the exact kNN searches over the `n` unit rows
/// `xn`: every pair of the given tiles offered to both rows' shortlists, on
/// `path` (bf16 AMX or int16 VNNI where the CPU runs it, else fp32).
/// Returns the per-thread shortlists, for [`finish`].
#[allow(clippy::too_many_arguments)]
fn screen_tiles(
    xn: &[f32],
    n: usize,
    d: usize,
    k: usize,
    tiles: &[ScreenTile],
    rows: &ExactRows<'_>,
    pool: &rayon::ThreadPool,
    ctl: &Control,
    path: Path,
    floors: &[f32],
) -> Result<Vec<Shortlist>> {
    let lists = |n_pad: usize, eps: f64| {
        let mut sl = Shortlist::new(n, n_pad, k, eps);
        sl.set_floors(floors);
        sl
    };
    match Screener::new(path, xn, n, d, rows, pool) {
        Some(q) => run_dynamic(
            pool,
            tiles.len(),
            ctl,
            || lists(q.n_pad(), q.eps()),
            |sl, t| q.screen_tile(tiles[t], sl, rows),
        ),
        None => {
            let eps = rows.fp32_eps();
            screen_fp32(xn, d, tiles, rows, pool, ctl, || lists(n, eps))
        }
    }
}

/// The fp32 screening pass of [`screen_tiles`]: one GEMM per tile, then a
/// scan offering each pair that passes a row's threshold to that row's
/// shortlist. Returns the per-thread shortlists.
fn screen_fp32(
    xn: &[f32],
    d: usize,
    tiles: &[ScreenTile],
    rows: &ExactRows<'_>,
    pool: &rayon::ThreadPool,
    ctl: &Control,
    lists: impl Fn() -> Shortlist + Sync,
) -> Result<Vec<Shortlist>> {
    let states = run_dynamic(
        pool,
        tiles.len(),
        ctl,
        || (lists(), vec![0.0_f32; BLOCK * BLOCK], vec![0.0_f32; BLOCK]),
        |(sl, buf, tcol), t| {
            let ScreenTile {
                rows: (i0, i1),
                cols: (j0, j1),
                diagonal,
            } = tiles[t];
            let (ra, rb) = (i1 - i0, j1 - j0);
            gemm_abt(&xn[i0 * d..i1 * d], ra, &xn[j0 * d..j1 * d], rb, d, buf);
            for (c, tc) in tcol[..rb].iter_mut().enumerate() {
                *tc = sl.thr(j0 + c);
            }
            for r in 0..ra {
                let a = i0 + r;
                let row = &buf[r * rb..(r + 1) * rb];
                let mut ta = sl.thr(a);
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
                                sl.push(a, s, b as u32, rows);
                                ta = sl.thr(a);
                            }
                            if s >= tcol[cc] {
                                sl.push(b, s, a as u32, rows);
                                tcol[cc] = sl.thr(b);
                            }
                        }
                    }
                    c = end;
                }
            }
        },
    )?;
    Ok(states.into_iter().map(|s| s.0).collect())
}

/// Cosine kNN of each row of `x` among the rows of `y` (no exclusion), by
/// brute force: the lists are chosen by the float32 GEMM (a pair within
/// float32 rounding of a row's `k`-th may stand in for it), their
/// similarities the exact ones (computed in f64, as every kNN list). Requires
/// `1 <= k <= m` where `m` is the number of rows of `y`.
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
    refine_lists(&mut nn, &xn, &yn, d, &pool);
    Ok(nn)
}

/// Replaces every listed similarity by the exact one (the value of
/// [`super::exact::exact_cosine`], bit for bit, from squared norms computed
/// once per row) and re-sorts each row (similarity descending, ties by the
/// lower index). Rows of `xn` query rows of `yn`. The self-kNN searches
/// that choose their lists by float32 similarities (the partitioned one,
/// [`knn_query`]) thus report the same value for a pair as the screened
/// exact self-kNN, which lists only exact values.
pub(crate) fn refine_lists(
    nn: &mut Neighbors,
    xn: &[f32],
    yn: &[f32],
    d: usize,
    pool: &rayon::ThreadPool,
) {
    use rayon::prelude::*;
    let k = nn.k;
    let sq =
        |m: &[f32]| -> Vec<f64> { pool.install(|| m.par_chunks(d).map(|r| dot64(r, r)).collect()) };
    let sx = sq(xn);
    let sy = if std::ptr::eq(xn, yn) {
        None
    } else {
        Some(sq(yn))
    };
    let sy = sy.as_deref().unwrap_or(&sx);
    pool.install(|| {
        nn.indices
            .par_chunks_mut(REFINE_ROWS * k)
            .zip(nn.similarities.par_chunks_mut(REFINE_ROWS * k))
            .enumerate()
            .for_each(|(block, (idx, sims))| {
                let (mut js, mut vals) = (Vec::with_capacity(k), vec![0.0_f32; k]);
                let mut row: Vec<(f32, u32)> = Vec::with_capacity(k);
                for (r, (idx, sims)) in idx
                    .chunks_exact_mut(k)
                    .zip(sims.chunks_exact_mut(k))
                    .enumerate()
                {
                    let a = block * REFINE_ROWS + r;
                    // missing entries (u32::MAX, -inf) stay, at the end
                    js.clear();
                    js.extend(idx.iter().copied().filter(|&b| b != u32::MAX));
                    let found = js.len();
                    exact_cosines(
                        &xn[a * d..(a + 1) * d],
                        sx[a],
                        yn,
                        sy,
                        &js,
                        &mut vals[..found],
                    );
                    row.clear();
                    row.extend(vals[..found].iter().copied().zip(js.iter().copied()));
                    row.sort_unstable_by(|p, q| q.0.total_cmp(&p.0).then(p.1.cmp(&q.1)));
                    for (slot, &(v, b)) in row.iter().enumerate() {
                        sims[slot] = v;
                        idx[slot] = b;
                    }
                    for slot in found..k {
                        sims[slot] = f32::NEG_INFINITY;
                        idx[slot] = u32::MAX;
                    }
                }
            })
    });
}

/// Rows per task of [`refine_lists`].
const REFINE_ROWS: usize = 1024;

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

    /// Per row of the unit rows `xn`, its `k` best rows of `yn` by brute
    /// force with the final similarity function of the screened searches,
    /// `exact_cosine` (similarity desc, index asc; `exclude_self` skips the
    /// row's own index), padded with `(u32::MAX, -inf)` as they pad.
    fn brute_lists(xn: &[f32], yn: &[f32], d: usize, k: usize, exclude_self: bool) -> Neighbors {
        let (mut indices, mut similarities) = (vec![], vec![]);
        for (a, xa) in xn.chunks_exact(d).enumerate() {
            let mut all: Vec<(f32, u32)> = yn
                .chunks_exact(d)
                .enumerate()
                .filter(|&(b, _)| !(exclude_self && b == a))
                .map(|(b, yb)| (super::super::exact::exact_cosine(xa, yb), b as u32))
                .collect();
            all.sort_by(|p, q| q.0.total_cmp(&p.0).then(p.1.cmp(&q.1)));
            for slot in 0..k {
                let (s, j) = all
                    .get(slot)
                    .copied()
                    .unwrap_or((f32::NEG_INFINITY, u32::MAX));
                indices.push(j);
                similarities.push(s);
            }
        }
        Neighbors {
            k,
            indices,
            similarities,
        }
    }

    /// The exact self-kNN by brute force ([`brute_lists`]).
    fn brute_force(x: &[f32], n: usize, d: usize, k: usize) -> Result<Neighbors> {
        let xn = normalize_rows(MatRef::new(x, n, d)?, "X", None)?;
        Ok(brute_lists(&xn, &xn, d, k, true))
    }

    /// Asserts that `run(path, threads)` gives `want` on every path (bf16
    /// where the CPU has AMX, int16 where it has AVX-512 VNNI, int16 with
    /// AVX2 where it has AVX2, fp32, and under
    /// `SIMCLUST_SIMD=portable` the portable GEMM) and thread count.
    fn assert_every_path<T: PartialEq>(
        name: &str,
        want: &T,
        run: impl Fn(Path, usize) -> Result<T>,
    ) -> Result<()> {
        for path in [Path::Amx, Path::Int16, Path::Int16Avx2, Path::Fp32] {
            for threads in [1, 2] {
                assert!(
                    run(path, threads)? == *want,
                    "{name}: {path:?} with {threads} threads differs from brute force"
                );
            }
        }
        Ok(())
    }

    /// The self-kNN on every path and thread count is the brute force, bit
    /// for bit.
    fn check_paths(name: &str, x: &[f32], n: usize, d: usize, k: usize) -> Result<()> {
        let want = brute_force(x, n, d, k)?;
        assert_every_path(name, &want, |path, threads| {
            knn_on(
                MatRef::new(x, n, d)?,
                k,
                Some(threads),
                &Control::new(),
                path,
            )
        })
    }

    #[test]
    fn screening_paths_are_exact_and_identical() -> Result<()> {
        use crate::testdata::{clustered, uniform};
        let big = 2 * BLOCK + 77;
        check_paths("clustered", &clustered(big, 37, 40, 0.5, 1), big, 37, 10)?;
        check_paths(
            "clustered k=50",
            &clustered(big, 24, 30, 0.3, 2),
            big,
            24,
            50,
        )?;
        check_paths("uniform k=1", &uniform(big * 33, 3, -0.5), big, 33, 1)?;
        check_paths("uniform d=1", &uniform(300, 4, -0.5), 300, 1, 5)?;
        check_paths("small n", &clustered(50, 65, 4, 0.4, 5), 50, 65, 49)?;
        check_paths("n = 2", &uniform(6, 6, -0.5), 2, 3, 1)?;
        check_paths("d = 384", &clustered(1500, 384, 60, 0.6, 7), 1500, 384, 10)?;
        Ok(())
    }

    /// [`knn_between`] on every path and thread count is the brute force
    /// both ways, bit for bit.
    fn check_between(name: &str, a: &[f32], b: &[f32], d: usize, k: usize) -> Result<()> {
        let (na, nb) = (a.len() / d, b.len() / d);
        let an = normalize_rows(MatRef::new(a, na, d)?, "A", None)?;
        let bn = normalize_rows(MatRef::new(b, nb, d)?, "B", None)?;
        let want = (
            brute_lists(&an, &bn, d, k, false),
            brute_lists(&bn, &an, d, k, false),
        );
        assert_every_path(name, &want, |path, threads| {
            let (am, bm) = (MatRef::new(a, na, d)?, MatRef::new(b, nb, d)?);
            knn_between_on(am, bm, k, None, Some(threads), &Control::new(), path)
        })
    }

    #[test]
    fn between_is_exact_on_every_path() -> Result<()> {
        use crate::testdata::{clustered, uniform};
        let d = 29;
        let x = clustered(2 * BLOCK + 500, d, 30, 0.5, 11);
        let (a, b) = x.split_at((BLOCK + 77) * d);
        check_between("clustered, A not a multiple of 32", a, b, d, 10)?;
        check_between("clustered, B first", b, a, d, 10)?;
        let (a, b) = x.split_at(BLOCK * d);
        check_between("clustered, whole tiles", a, b, d, 7)?;
        let y = uniform(60 * 5, 12, -0.5);
        check_between("k above both sides", &y[..20 * 5], &y[20 * 5..], 5, 50)?;
        check_between("one row each", &y[..5], &y[5..10], 5, 1)?;
        let z = clustered(900, 384, 40, 0.6, 13);
        check_between("d = 384", &z[..300 * 384], &z[300 * 384..], 384, 10)?;
        Ok(())
    }

    #[test]
    fn between_handles_duplicates_across_the_sides() -> Result<()> {
        // copies of one row on both sides, and scaled copies: ties at 1.0
        let (n, d) = (700, 17);
        let mut x = crate::testdata::clustered(n, d, 9, 0.4, 14);
        let row: Vec<f32> = x[2 * d..3 * d].to_vec();
        for c in (0..n).step_by(9) {
            let s = 0.5 + (c % 5) as f32;
            for p in 0..d {
                x[c * d + p] = s * row[p];
            }
        }
        let (a, b) = x.split_at(333 * d);
        check_between("duplicates k=1", a, b, d, 1)?;
        check_between("duplicates k=40", a, b, d, 40)?;
        Ok(())
    }

    /// The self-kNN of a matrix is the merge of the self-kNN of each block
    /// and [`knn_between`] of each pair of blocks: the distributed plan;
    /// with floors (each row's true `k`-th, the highest a driver could
    /// know), on every path, too.
    #[test]
    fn blocks_and_block_pairs_merge_to_the_self_knn() -> Result<()> {
        let (n, d, k) = (3 * BLOCK + 100, 12, 8);
        let x = crate::testdata::clustered(n, d, 20, 0.5, 15);
        let want = knn(MatRef::new(&x, n, d)?, k, Some(2), &Control::new())?;
        merge_blocks(&x, n, d, k, &want, None, Path::detect())?;
        let kth: Vec<f32> = want.similarities.chunks(k).map(|s| s[k - 1]).collect();
        for path in [Path::Amx, Path::Int16, Path::Int16Avx2, Path::Fp32] {
            merge_blocks(&x, n, d, k, &want, Some(&kth), path)?;
        }
        Ok(())
    }

    fn merge_blocks(
        x: &[f32],
        n: usize,
        d: usize,
        k: usize,
        want: &Neighbors,
        floors: Option<&[f32]>,
        path: Path,
    ) -> Result<()> {
        let bounds: Vec<(usize, usize)> = (0..n_blocks(n)).map(|b| block_range(b, n)).collect();
        let mut total = TopK::new(n, k);
        let mut offer = |r0: usize, c0: usize, nn: &Neighbors| {
            for (r, (idx, sims)) in nn
                .indices
                .chunks(k)
                .zip(nn.similarities.chunks(k))
                .enumerate()
            {
                for (&j, &s) in idx.iter().zip(sims) {
                    if j != u32::MAX {
                        total.push(r0 + r, s, c0 as u32 + j);
                    }
                }
            }
        };
        let ctl = Control::new();
        for (i, &(a0, a1)) in bounds.iter().enumerate() {
            let a = MatRef::new(&x[a0 * d..a1 * d], a1 - a0, d)?;
            offer(a0, a0, &knn(a, k, Some(1), &ctl)?);
            for &(b0, b1) in &bounds[i + 1..] {
                let b = MatRef::new(&x[b0 * d..b1 * d], b1 - b0, d)?;
                let fl = floors.map(|f| (&f[a0..a1], &f[b0..b1]));
                let (ab, ba) = knn_between_on(a, b, k, fl, Some(1), &ctl, path)?;
                offer(a0, b0, &ab);
                offer(b0, a0, &ba);
            }
        }
        let (indices, similarities) = total.into_parts();
        assert!(
            *want
                == Neighbors {
                    k,
                    indices,
                    similarities
                },
            "{path:?}, floors {}",
            floors.is_some()
        );
        Ok(())
    }

    #[test]
    fn floors_drop_only_pairs_below_them() -> Result<()> {
        let d = 16;
        let x = crate::testdata::clustered(900, d, 12, 0.5, 21);
        let (a, b) = x.split_at(400 * d);
        let (am, bm) = (MatRef::new(a, 400, d)?, MatRef::new(b, 500, d)?);
        let k = 12;
        let (ab, ba) = knn_between(am, bm, k, None, Some(2), &Control::new())?;
        // each row's floor: its 5th best here (ties to it are kept), or -inf
        let floor = |nn: &Neighbors| -> Vec<f32> {
            nn.similarities
                .chunks(k)
                .enumerate()
                .map(|(r, s)| if r % 3 == 0 { f32::NEG_INFINITY } else { s[4] })
                .collect()
        };
        let (fa, fb) = (floor(&ab), floor(&ba));
        let cut = |nn: &Neighbors, f: &[f32]| -> Vec<(u32, f32)> {
            nn.indices
                .iter()
                .zip(&nn.similarities)
                .enumerate()
                .map(|(i, (&j, &s))| {
                    if s >= f[i / k] {
                        (j, s)
                    } else {
                        (u32::MAX, f32::NEG_INFINITY)
                    }
                })
                .collect()
        };
        let (want_a, want_b) = (cut(&ab, &fa), cut(&ba, &fb));
        for path in [Path::Amx, Path::Int16, Path::Int16Avx2, Path::Fp32] {
            let (got_a, got_b) =
                knn_between_on(am, bm, k, Some((&fa, &fb)), Some(2), &Control::new(), path)?;
            let pairs = |nn: &Neighbors| -> Vec<(u32, f32)> {
                nn.indices
                    .iter()
                    .copied()
                    .zip(nn.similarities.iter().copied())
                    .collect()
            };
            assert!(
                pairs(&got_a) == want_a && pairs(&got_b) == want_b,
                "{path:?}"
            );
        }
        let short = knn_between(am, bm, k, Some((&fa[1..], &fb)), None, &Control::new());
        assert!(matches!(short, Err(Error::Shape(_))));
        let mut nan = fa.clone();
        nan[7] = f32::NAN;
        let bad = knn_between(am, bm, k, Some((&nan, &fb)), None, &Control::new());
        assert!(matches!(bad, Err(Error::Parameter(m)) if m.contains("floor 7 of A")));
        Ok(())
    }

    #[test]
    fn screening_handles_duplicates_and_near_ties() -> Result<()> {
        // A cloud of 300 rows far closer together than the int16 error
        // bound, 120 exact copies of one row and 80 scaled copies of another.
        let (n, d) = (1200, 19);
        let base = crate::testdata::clustered(n, d, 12, 0.5, 8);
        let mut x = base.clone();
        x[..300 * d].copy_from_slice(&crate::testdata::clustered(300, d, 3, 1e-5, 9));
        let copies: Vec<usize> = (0..120).map(|i| 300 + 4 * i).collect();
        for &c in &copies {
            x[c * d..(c + 1) * d].copy_from_slice(&base[3 * d..4 * d]);
        }
        for i in 0..80 {
            let s = 0.5 + i as f32 * 0.25;
            for p in 0..d {
                x[(780 + 5 * i) * d + p] = s * base[5 * d + p];
            }
        }
        check_paths("duplicates k=1", &x, n, d, 1)?;
        check_paths("duplicates k=50", &x, n, d, 50)?;
        // A row with more than k exact copies lists the lowest other copies
        // at similarity exactly 1.
        let k = 50;
        let nn = knn(MatRef::new(&x, n, d)?, k, None, &Control::new())?;
        let copies: Vec<u32> = copies.iter().map(|&c| c as u32).collect();
        crate::testdata::assert_lists_copies(&nn, copies[7] as usize, &copies);
        Ok(())
    }

    #[test]
    fn each_path_runs_where_the_cpu_has_it() {
        let int16 = Int16Isa::detect();
        let amx = super::super::amx::Amx::detect().is_some();
        assert_eq!(Path::detect() == Path::Amx, amx);
        assert_eq!(Path::detect() == Path::Int16, int16.is_some() && !amx);
        assert_eq!(Path::detect() == Path::Fp32, int16.is_none() && !amx);
        #[cfg(target_arch = "x86_64")]
        if !crate::simd::forced_portable() {
            let vnni = std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512vnni");
            assert_eq!(matches!(int16, Some(Int16Isa::Vnni(_))), vnni);
            assert_eq!(
                int16.is_some(),
                vnni || std::is_x86_feature_detected!("avx2")
            );
        }
        if crate::simd::forced_portable() {
            assert!(int16.is_none() && !amx && Path::detect() == Path::Fp32);
        }
    }

    /// CPU seconds this process has used (user + system, from
    /// /proc/self/stat; 0 where that is missing).
    fn cpu_seconds() -> f64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
        let tick = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (tick(11) + tick(12)) / 100.0 // utime, stime in clock ticks (USER_HZ = 100)
    }

    /// `cargo test --release -p simclust-core knn_timing -- --ignored
    /// --nocapture`: self-kNN k = 10 of 100k x 384 clustered rows on each
    /// path (`KNN_TIMING_PATHS`, default `amx,int16,avx2,fp32`), round-robin, 2
    /// threads, 3 runs; wall and CPU seconds (CPU time is steadier on a
    /// shared machine). Writes the unit rows to /tmp/x100k.f32.
    #[test]
    #[ignore]
    fn knn_timing() -> Result<()> {
        let (n, d, k) = (100_000, 384, 10);
        let x = crate::testdata::clustered(n, d, 2000, 0.6, 1);
        let xn = normalize_rows(MatRef::new(&x, n, d)?, "X", None)?;
        let bytes: Vec<u8> = xn.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write("/tmp/x100k.f32", bytes).map_err(|e| Error::Parameter(e.to_string()))?;
        let wanted =
            std::env::var("KNN_TIMING_PATHS").unwrap_or_else(|_| "amx,int16,avx2,fp32".into());
        let paths: Vec<Path> = [
            ("amx", Path::Amx),
            ("int16", Path::Int16),
            ("avx2", Path::Int16Avx2),
            ("fp32", Path::Fp32),
        ]
        .into_iter()
        .filter(|(name, _)| wanted.split(',').any(|w| w.trim() == *name))
        .map(|(_, p)| p)
        .collect();
        let mut times = vec![(vec![], vec![]); paths.len()];
        let mut results = vec![];
        for _ in 0..3 {
            for (path, (wall, cpu)) in paths.iter().zip(&mut times) {
                let (t, c) = (std::time::Instant::now(), cpu_seconds());
                let nn = knn_on(MatRef::new(&xn, n, d)?, k, Some(2), &Control::new(), *path)?;
                wall.push(t.elapsed().as_secs_f64());
                cpu.push(cpu_seconds() - c);
                results.push(nn);
            }
        }
        for (path, (wall, cpu)) in paths.iter().zip(&mut times) {
            wall.sort_by(f64::total_cmp);
            cpu.sort_by(f64::total_cmp);
            println!(
                "{path:?}: wall {wall:.2?} s (median {:.2}), cpu {cpu:.2?} s (median {:.2})",
                wall[1], cpu[1]
            );
        }
        assert!(results.windows(2).all(|w| w[0] == w[1]));
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
