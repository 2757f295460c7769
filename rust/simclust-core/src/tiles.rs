//! The tile machinery shared by the kernels: one GEMM per tile, and a
//! dynamic scheduler that hands tiles to the pool's threads.

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::ThreadPool;

use crate::error::{Error, Result};
use crate::parallel::Control;

/// Rows per block: a tile is the `BLOCK x BLOCK` similarity matrix of two
/// row blocks (4 MiB of `f32`). Fixed, so results never depend on threads.
pub const BLOCK: usize = 1024;

/// Number of blocks covering `n` rows.
pub(crate) fn n_blocks(n: usize) -> usize {
    n.div_ceil(BLOCK)
}

/// Row range `start..end` of block `b` among `n` rows.
pub(crate) fn block_range(b: usize, n: usize) -> (usize, usize) {
    let start = b * BLOCK;
    (start, (start + BLOCK).min(n))
}

/// The tiles `(i, j)` with `i <= j` of a symmetric self-product, row-major.
pub(crate) fn upper_tiles(nb: usize) -> Vec<(usize, usize)> {
    (0..nb).flat_map(|i| (i..nb).map(move |j| (i, j))).collect()
}

/// The tiles `(i, j)` of a rectangular product with `nq x nd` blocks.
pub(crate) fn all_tiles(nq: usize, nd: usize) -> Vec<(usize, usize)> {
    (0..nq).flat_map(|i| (0..nd).map(move |j| (i, j))).collect()
}

/// `out[r * rb + c] = <a_r, b_c>` for the `ra` rows of `a` and `rb` rows of
/// `b` (both row-major with `d` columns): `out = a · bᵀ`, single-threaded.
///
/// The `gemm` crate's kernel, dispatched on the CPU, unless
/// `SIMCLUST_SIMD=portable` forces [`gemm_abt_portable`].
pub(crate) fn gemm_abt<T: Real>(a: &[T], ra: usize, b: &[T], rb: usize, d: usize, out: &mut [T]) {
    assert!(a.len() >= ra * d && b.len() >= rb * d && out.len() >= ra * rb);
    if ra == 0 || rb == 0 {
        return;
    }
    if crate::simd::forced_portable() {
        gemm_abt_portable(a, ra, b, rb, d, out);
        return;
    }
    // SAFETY: the asserts above bound every access the strides below allow:
    // dst is ra x rb row-major (rs = rb, cs = 1); lhs is ra x d row-major
    // (rs = d, cs = 1); rhs is bᵀ, d x rb, read from b with rs = 1, cs = d.
    // read_dst = false, so `out` need not be initialised to anything special.
    unsafe {
        gemm::gemm(
            ra,
            rb,
            d,
            out.as_mut_ptr(),
            1,
            rb as isize,
            false,
            a.as_ptr(),
            1,
            d as isize,
            b.as_ptr(),
            d as isize,
            1,
            T::ZERO,
            T::ONE,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Accumulators per dot product in [`gemm_abt_portable`]: enough
/// independent sums for the compiler to vectorise without reassociating.
const PORTABLE_LANES: usize = 8;

/// [`gemm_abt`] in plain Rust: one dot product per output, summed in
/// [`PORTABLE_LANES`] interleaved partial sums.
pub(crate) fn gemm_abt_portable<T: Real>(
    a: &[T],
    ra: usize,
    b: &[T],
    rb: usize,
    d: usize,
    out: &mut [T],
) {
    for (r, orow) in out[..ra * rb].chunks_exact_mut(rb).enumerate() {
        let ar = &a[r * d..(r + 1) * d];
        for (c, o) in orow.iter_mut().enumerate() {
            let bc = &b[c * d..(c + 1) * d];
            let mut acc = [T::ZERO; PORTABLE_LANES];
            let mut ca = ar.chunks_exact(PORTABLE_LANES);
            let mut cb = bc.chunks_exact(PORTABLE_LANES);
            for (x, y) in (&mut ca).zip(&mut cb) {
                for l in 0..PORTABLE_LANES {
                    acc[l] = acc[l].add(x[l].mul(y[l]));
                }
            }
            let mut tail = T::ZERO;
            for (&x, &y) in ca.remainder().iter().zip(cb.remainder()) {
                tail = tail.add(x.mul(y));
            }
            *o = acc.iter().fold(T::ZERO, |s, &v| s.add(v)).add(tail);
        }
    }
}

/// The element types the tile GEMM runs on (`f32` for similarities, `f64`
/// where a kernel needs the extra precision).
pub(crate) trait Real: Copy + 'static {
    const ZERO: Self;
    const ONE: Self;
    fn add(self, other: Self) -> Self;
    fn mul(self, other: Self) -> Self;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        self + other
    }
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        self * other
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        self + other
    }
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        self * other
    }
}

/// Runs `work(state, tile)` for every tile index in `0..n_tiles` on every
/// thread of `pool`, each thread pulling the next index from a shared counter
/// and keeping its own `state` (built by `init`). Returns the states in
/// thread order. Stops early, with `Err(Interrupted)`, once `ctl` is
/// cancelled; advances `ctl`'s progress by one per tile.
pub(crate) fn run_dynamic<S, I, W>(
    pool: &ThreadPool,
    n_tiles: usize,
    ctl: &Control,
    init: I,
    work: W,
) -> Result<Vec<S>>
where
    S: Send,
    I: Fn() -> S + Sync,
    W: Fn(&mut S, usize) + Sync,
{
    ctl.set_total(n_tiles as u64);
    let next = AtomicUsize::new(0);
    let states = pool.broadcast(|_| {
        let mut state = init();
        while !ctl.is_cancelled() {
            let t = next.fetch_add(1, Ordering::Relaxed);
            if t >= n_tiles {
                break;
            }
            work(&mut state, t);
            ctl.advance(1);
        }
        state
    });
    ctl.check()?;
    Ok(states)
}

/// Runs `work(state, t)` for every task `t` in `0..n_tasks` on every thread
/// of `pool` (each thread pulls the next index from a shared counter and
/// keeps its own `state`, built by `init`) and returns the task results in
/// task order, so that any later reduction is independent of the threads.
/// Stops with `Err(Interrupted)` once `ctl` is cancelled; advances `ctl` by
/// one per task.
pub(crate) fn run_indexed<S, T, I, W>(
    pool: &ThreadPool,
    n_tasks: usize,
    ctl: &Control,
    init: I,
    work: W,
) -> Result<Vec<T>>
where
    S: Send,
    T: Send,
    I: Fn() -> S + Sync,
    W: Fn(&mut S, usize) -> T + Sync,
{
    let per_thread = run_dynamic(
        pool,
        n_tasks,
        ctl,
        || (init(), Vec::new()),
        |(state, done): &mut (S, Vec<(usize, T)>), t| done.push((t, work(state, t))),
    )?;
    let mut slots: Vec<Option<T>> = (0..n_tasks).map(|_| None).collect();
    for (t, v) in per_thread.into_iter().flat_map(|(_, done)| done) {
        slots[t] = Some(v);
    }
    slots
        .into_iter()
        .collect::<Option<Vec<T>>>()
        .ok_or_else(|| Error::ThreadPool("a task of a tiled kernel did not run".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_gemm_paths_match_naive() {
        // float32 (the similarity kernels) and float64, dispatched and portable
        let (ra, rb, d) = (5, 7, 19);
        let a: Vec<f64> = (0..ra * d).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..rb * d).map(|i| (i as f64 * 0.11).cos()).collect();
        let naive = |r: usize, c: usize| (0..d).map(|p| a[r * d + p] * b[c * d + p]).sum::<f64>();
        let (a32, b32): (Vec<f32>, Vec<f32>) = (
            a.iter().map(|&v| v as f32).collect(),
            b.iter().map(|&v| v as f32).collect(),
        );
        type G<T> = fn(&[T], usize, &[T], usize, usize, &mut [T]);
        for gemm in [gemm_abt::<f32> as G<f32>, gemm_abt_portable::<f32>] {
            let mut out = vec![f32::NAN; ra * rb];
            gemm(&a32, ra, &b32, rb, d, &mut out);
            for (i, &o) in out.iter().enumerate() {
                assert!((f64::from(o) - naive(i / rb, i % rb)).abs() < 1e-5);
            }
        }
        for gemm in [gemm_abt::<f64> as G<f64>, gemm_abt_portable::<f64>] {
            let mut out = vec![f64::NAN; ra * rb];
            gemm(&a, ra, &b, rb, d, &mut out);
            for (i, &o) in out.iter().enumerate() {
                assert!((o - naive(i / rb, i % rb)).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn run_indexed_returns_in_task_order() -> Result<()> {
        let pool = crate::parallel::pool(Some(2))?;
        let out = run_indexed(&pool, 100, &Control::new(), || (), |_, t| t * 2)?;
        assert_eq!(out, (0..100).map(|t| t * 2).collect::<Vec<_>>());
        Ok(())
    }

    #[test]
    fn tiles_cover_the_upper_triangle() {
        assert_eq!(
            upper_tiles(3),
            vec![(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
        );
        assert_eq!(n_blocks(BLOCK + 1), 2);
        assert_eq!(block_range(1, BLOCK + 1), (BLOCK, BLOCK + 1));
    }
}
