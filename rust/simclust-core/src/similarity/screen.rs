//! Exact self-kNN by screening: a fast, approximate similarity for every
//! pair, then an exact value for every pair that could still be listed.
//!
//! The tile kernels (the fp32 GEMM, the int16 VNNI or AVX2 kernel of
//! [`super::int16`] or the bf16 AMX kernel of [`super::amx`]) produce for
//! each pair `(a, b)` a *screened* similarity `v` with a proven error bound
//! `|v - f(a, b)| <= eps`, where `f` is the one
//! function the final similarity of every listed pair is computed with,
//! [`super::exact::exact_cosine`] ([`ExactRows::cosines`]). A per-row
//! [`Shortlist`] keeps every pair that could still be among the row's `k`
//! best by `f`, evaluating `f` itself only where the bound cannot decide; [`finish`] picks the `k` best by `f` (ties by the
//! lower index) from the union of the per-thread shortlists.
//!
//! # Why the result is exact and does not depend on the path
//!
//! Every pair `p` of a row has a lower and an upper bound on `f(p)`:
//! `L = U = f(p)` once evaluated, else `L = v - eps` and
//! `U = min(v + eps, 1)` (`f` is a clamped cosine, never above 1). A pair is
//! dropped only when `k` other pairs of the same row certainly rank before
//! it: `L_q > U_p`, or `L_q >= U_p` with a lower index (the order is
//! similarity descending, then index ascending). Such a pair is not in the
//! row's true top-`k`, so every pair of the true top-`k` reaches [`finish`],
//! is evaluated there (if it was not before) and is selected from exact
//! values. The output is therefore the top-`k` by `f` over *all* pairs,
//! whatever `eps`, the screening kernel, the thread count or the order the
//! pairs arrived in: the fp32, the portable, the int16 (VNNI or AVX2) and
//! the bf16 paths return the same lists, bit for bit.

use rayon::prelude::*;

use crate::error::Result;
use crate::memory::ensure_allocatable;

use super::exact::{dot64, exact_cosines};
use super::knn::Neighbors;

/// Safety factor applied to the derived error bounds.
const SAFETY: f64 = 1.25;

/// Slots per row of a [`Shortlist`] for `k` neighbours. Twice what the
/// int16 screen needs: the bf16 screen's wider bound keeps more pairs
/// undecided, and a fuller buffer is compacted (and its pairs evaluated
/// exactly) later, with a higher `k`-th bound that rules more of them out
/// (measured at 100k x 384, k = 10: 16% less CPU time for the bf16 path
/// than `2k + 16` slots, the int16 path unchanged; `8k + 64` was no better).
fn capacity(k: usize) -> usize {
    4 * k + 32
}

/// The screening path of the exact self-kNN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    /// Tiles from the fp32 GEMM ([`crate::tiles::gemm_abt`]; portable under
    /// `SIMCLUST_SIMD=portable`).
    Fp32,
    /// Tiles from the int16 kernel of [`super::int16`] with AVX2, where the
    /// CPU has it (a CPU with AVX-512 VNNI takes it only when asked: the
    /// tests do, so every kernel runs on any machine that has it).
    #[cfg_attr(not(test), allow(dead_code))]
    Int16Avx2,
    /// Tiles from the int16 kernel with AVX-512 VNNI where the CPU has it,
    /// else with AVX2.
    Int16,
    /// Tiles from the bf16 AMX kernel ([`super::amx`]), where the CPU has it.
    Amx,
}

impl Path {
    /// The fastest path this CPU runs, unless the portable paths are forced:
    /// [`Path::Amx`] with AMX-BF16, else [`Path::Int16`] with AVX-512 VNNI or
    /// AVX2, else [`Path::Fp32`].
    pub(crate) fn detect() -> Self {
        if super::amx::Amx::detect().is_some() {
            Path::Amx
        } else if super::int16::Int16Isa::detect().is_some() {
            Path::Int16
        } else {
            Path::Fp32
        }
    }
}

/// The unit rows with their squared norms, and the one exact similarity
/// function every listed pair gets.
#[derive(Debug)]
pub(crate) struct ExactRows<'a> {
    xn: &'a [f32],
    d: usize,
    /// `dot64(x_a, x_a)` per row.
    sq: Vec<f64>,
    /// A bound on `| |x_a| - 1 |` over all rows.
    nu: f64,
}

impl<'a> ExactRows<'a> {
    /// The `n x d` unit rows `xn` (from `normalize_rows`).
    pub(crate) fn new(xn: &'a [f32], d: usize, pool: &rayon::ThreadPool) -> Self {
        let sq: Vec<f64> = pool.install(|| xn.par_chunks_exact(d).map(|r| dot64(r, r)).collect());
        // | |x| - 1 | <= | |x|^2 - 1 | for |x| >= 0; plus the rounding of the
        // f64 sum (at most d + 1 units of 2^-53 of a value near 1).
        let dev = sq.iter().fold(0.0_f64, |m, &s| m.max((s - 1.0).abs()));
        let nu = dev + (d as f64 + 2.0) * f64::EPSILON;
        Self { xn, d, sq, nu }
    }

    /// A bound on the norm of every row, `1 + nu`.
    pub(crate) fn max_norm(&self) -> f64 {
        1.0 + self.nu
    }

    fn row(&self, a: usize) -> &[f32] {
        &self.xn[a * self.d..(a + 1) * self.d]
    }

    /// The final similarity of row `a` with each row in `js`, into `out`:
    /// the crate's one exact similarity, [`super::exact::exact_cosine`] of
    /// the two rows, bit for bit (the squared norms are cached): exactly
    /// `1.0` for identical rows and for rows that differ by a positive
    /// scale, `-1.0` for opposite rows.
    pub(crate) fn cosines(&self, a: usize, js: &[u32], out: &mut [f32]) {
        exact_cosines(self.row(a), self.sq[a], self.xn, &self.sq, js, out);
    }

    /// The bound on `|f(a, b) - <x_a, x_b>|`, `f` being [`Self::cosines`]:
    /// with `nu >= | |x| - 1 |` for every row, the true cosine `c` differs
    /// from `<x_a, x_b>` by `|c| | |x_a||x_b| - 1 | <= 2 nu + nu^2`; `f`
    /// differs from `c` by the f64 error of the dot product and the division
    /// (`<= (d + 4) 2^-53` relative, taken as `(d + 4) 2^-52`) plus the final
    /// rounding to f32 (`<= 2^-24` in `[-1, 1]`); the clamp only moves `f`
    /// towards `c`, which lies in `[-1, 1]`.
    fn final_error(&self) -> f64 {
        let nu = self.nu;
        2.0 * nu + nu * nu + 2f64.powi(-24) + (self.d as f64 + 4.0) * 2f64.powi(-52)
    }

    /// The bound `eps` for the fp32 GEMM similarities of unit rows.
    ///
    /// A float32 dot product of length `d`, summed in any order, with or
    /// without fused multiply-adds, is within `gamma_d sum |x_i y_i|` of the
    /// exact `<x, y>` (Higham, *Accuracy and Stability of Numerical
    /// Algorithms*, 3.1), `gamma_d = d u / (1 - d u)`, `u = 2^-24`; and
    /// `sum |x_i y_i| <= |x||y| <= (1 + nu)^2`. Adding [`Self::final_error`]
    /// bounds `|v - f|`; the sum is multiplied by a safety factor of 1.25.
    pub(crate) fn fp32_eps(&self) -> f64 {
        let du = self.d as f64 * 2f64.powi(-24);
        let gamma = du / (1.0 - du);
        SAFETY * (gamma * (1.0 + self.nu).powi(2) + self.final_error())
    }

    /// The bound `eps` for screening with rounded rows `q` (the int16 rows
    /// of [`super::int16`], scaled back, or the bf16 rows of
    /// [`super::amx`]): with `e >= |q - x|` for every row, `| <q_a, q_b> -
    /// <x_a, x_b> | <= e (2 + 2 nu + e)`; `conv` bounds the error of the
    /// screened f32 `v` against the exact `<q_a, q_b>`. Adding
    /// [`Self::final_error`] bounds `|v - f|`; the sum is multiplied by a
    /// safety factor of 1.25.
    pub(crate) fn quantized_eps(&self, e: f64, conv: f64) -> f64 {
        let nu = self.nu;
        SAFETY * (e * (2.0 + 2.0 * nu + e) + conv + self.final_error())
    }
}

/// One listed pair: the screened similarity, or the exact one once
/// evaluated (see [`Shortlist`]), and the other row.
#[derive(Debug, Clone, Copy)]
struct Entry {
    v: f32,
    j: u32,
}

/// Ranks `(l, j)` keys: higher `l` first, then the lower index.
fn by_rank(p: &(f64, u32), q: &(f64, u32)) -> std::cmp::Ordering {
    q.0.total_cmp(&p.0).then(p.1.cmp(&q.1))
}

/// Whether a pair `(u, j)` with upper bound `u` certainly ranks after the
/// `k`-th best lower bound `(lk, jk)` of its row (see the module docs).
#[inline]
fn beaten(u: f64, j: u32, lk: f64, jk: u32) -> bool {
    u < lk || (u == lk && j > jk)
}

/// Per row, every pair that could still be among the row's `k` best (see
/// the module docs), in a buffer of `cap` slots: the first `exact[row]`
/// entries hold evaluated similarities, the rest screened ones. List row
/// `a` holds the pairs of data row `a` ([`Shortlist::new`]) or of data row
/// `ids[a]` ([`Shortlist::for_rows`]).
#[derive(Debug)]
pub(crate) struct Shortlist {
    ids: Option<Vec<u32>>,
    k: usize,
    cap: usize,
    eps: f64,
    entries: Vec<Entry>,
    len: Vec<u32>,
    exact: Vec<u32>,
    /// Per row, the `k`-th best `(lower bound, index)` after the last
    /// compaction, never below the row's floor; `(floor, u32::MAX)` before
    /// the first.
    kth: Vec<(f64, u32)>,
    /// Per row, a similarity below which no pair is kept (`-inf` unless set
    /// by [`Shortlist::set_floors`]).
    floor: Vec<f64>,
    /// Per row, a screened value below which a pair is certainly beaten
    /// (`<= L_k - eps`, in f32); `-inf` before the first compaction, `+inf`
    /// for the padding rows `n..`.
    thr: Vec<f32>,
    scratch: Vec<(f64, u32)>,
    js: Vec<u32>,
    vals: Vec<f32>,
}

impl Shortlist {
    /// Bytes [`Shortlist::new`] allocates for `n` rows.
    pub(crate) fn bytes(n: usize, k: usize) -> usize {
        let cap = capacity(k);
        n.saturating_mul(cap.saturating_mul(8).saturating_add(40))
    }

    /// Checks that `threads` shortlists of `n` rows fit in memory.
    pub(crate) fn ensure_fits(n: usize, k: usize, threads: usize) -> Result<()> {
        ensure_allocatable(
            Self::bytes(n, k).saturating_mul(threads),
            "the per-thread kNN candidate lists",
        )
    }

    /// Empty lists for `n` rows, `k` neighbours, screened values within
    /// `eps` of the exact ones; `thr` is padded to `n_pad >= n` rows.
    pub(crate) fn new(n: usize, n_pad: usize, k: usize, eps: f64) -> Self {
        let cap = capacity(k);
        let mut thr = vec![f32::NEG_INFINITY; n_pad.max(n)];
        thr[n..].fill(f32::INFINITY);
        Self {
            ids: None,
            k,
            cap,
            eps,
            entries: vec![Entry { v: 0.0, j: 0 }; n * cap],
            len: vec![0; n],
            exact: vec![0; n],
            kth: vec![(f64::NEG_INFINITY, u32::MAX); n],
            floor: vec![f64::NEG_INFINITY; n],
            thr,
            scratch: Vec::with_capacity(cap),
            js: Vec::with_capacity(cap),
            vals: Vec::with_capacity(cap),
        }
    }

    /// Empty lists for the data rows `ids` (list row `i` holds the pairs of
    /// data row `ids[i]`), else as [`Shortlist::new`].
    pub(crate) fn for_rows(ids: &[u32], k: usize, eps: f64) -> Self {
        Self {
            ids: Some(ids.to_vec()),
            ..Self::new(ids.len(), ids.len(), k, eps)
        }
    }

    /// Per row, a similarity its pairs must reach to be kept: the row's
    /// current `k`-th best from elsewhere (other blocks of a distributed
    /// search), below which a pair cannot be among its `k` nearest overall.
    /// A pair equal to the floor is kept (it may win the tie by index).
    /// Rows past `floors.len()` keep `-inf`.
    pub(crate) fn set_floors(&mut self, floors: &[f32]) {
        for (row, &f) in floors.iter().enumerate().take(self.floor.len()) {
            let f = f64::from(f);
            if f > self.floor[row] {
                self.floor[row] = f;
                self.kth[row] = (f, u32::MAX);
                self.thr[row] = below(f - self.eps);
            }
        }
    }

    /// The data row whose pairs list row `row` holds.
    #[inline]
    fn data_row(&self, row: usize) -> usize {
        self.ids.as_ref().map_or(row, |ids| ids[row] as usize)
    }

    /// The screened value below which pairs of `row` are skipped.
    #[inline(always)]
    pub(crate) fn thr(&self, row: usize) -> f32 {
        self.thr[row]
    }

    /// The thresholds of all rows (padded), for vector compares.
    #[inline(always)]
    pub(crate) fn thresholds(&self) -> &[f32] {
        &self.thr
    }

    /// Offers the pair `(row, j)` with screened similarity `v`.
    #[inline]
    pub(crate) fn push(&mut self, row: usize, v: f32, j: u32, rows: &ExactRows<'_>) {
        if v.is_nan() || v < self.thr[row] {
            return;
        }
        let u = (f64::from(v) + self.eps).min(1.0);
        let (lk, jk) = self.kth[row];
        if beaten(u, j, lk, jk) {
            return;
        }
        let len = self.len[row] as usize;
        self.entries[row * self.cap + len] = Entry { v, j };
        self.len[row] += 1;
        if len + 1 == self.cap {
            self.compact(row, rows);
        }
    }

    /// Offers the pairs a screening kernel flagged in a block to both of
    /// their rows: bit `c` of `masks[r]` is the pair of row `r0 + r` and
    /// column `c0 + c`, with screened value `vals[r * stride + c]`. Pairs
    /// outside the tile (`a >= i1` or `b >= j1`) and, on a `diagonal` tile,
    /// pairs with `b <= a` are skipped.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn offer_block(
        &mut self,
        masks: &[u32],
        vals: &[f32],
        stride: usize,
        (r0, c0): (usize, usize),
        (i1, j1): (usize, usize),
        diagonal: bool,
        rows: &ExactRows<'_>,
    ) {
        for (r, &m) in masks.iter().enumerate() {
            let a = r0 + r;
            let mut m = m;
            while m != 0 {
                let c = m.trailing_zeros() as usize;
                m &= m - 1;
                let b = c0 + c;
                if a >= i1 || b >= j1 || (diagonal && b <= a) {
                    continue;
                }
                let v = vals[r * stride + c];
                self.push(a, v, b as u32, rows);
                self.push(b, v, a as u32, rows);
            }
        }
    }

    /// Frees slots of a full row: drops the pairs the bounds decide; if that
    /// leaves more than half the buffer (many pairs within `2 eps`),
    /// evaluates the screened ones exactly and drops again, which leaves `k`.
    fn compact(&mut self, row: usize, rows: &ExactRows<'_>) {
        self.prune(row);
        if self.len[row] as usize > self.cap / 2 {
            let (base, a) = (row * self.cap, self.data_row(row));
            let todo =
                &mut self.entries[base + self.exact[row] as usize..base + self.len[row] as usize];
            self.js.clear();
            self.js.extend(todo.iter().map(|e| e.j));
            self.vals.resize(todo.len(), 0.0);
            rows.cosines(a, &self.js, &mut self.vals);
            for (e, &v) in todo.iter_mut().zip(&self.vals) {
                e.v = v;
            }
            self.exact[row] = self.len[row];
            self.prune(row);
        }
    }

    /// Drops every pair of `row` that `k` others certainly beat, and raises
    /// the row's thresholds.
    fn prune(&mut self, row: usize) {
        let (k, eps) = (self.k, self.eps);
        let (len, n_ex) = (self.len[row] as usize, self.exact[row] as usize);
        if len < k {
            return;
        }
        let buf = &mut self.entries[row * self.cap..row * self.cap + len];
        self.scratch.clear();
        self.scratch.extend(buf.iter().enumerate().map(|(i, e)| {
            let l = if i < n_ex {
                f64::from(e.v)
            } else {
                f64::from(e.v) - eps
            };
            (l, e.j)
        }));
        self.scratch.select_nth_unstable_by(k - 1, by_rank);
        let (mut lk, mut jk) = self.scratch[k - 1];
        if lk < self.floor[row] {
            (lk, jk) = (self.floor[row], u32::MAX);
        }
        let (mut w, mut w_ex) = (0, 0);
        for i in 0..len {
            let e = buf[i];
            let u = if i < n_ex {
                f64::from(e.v)
            } else {
                (f64::from(e.v) + eps).min(1.0)
            };
            if !beaten(u, e.j, lk, jk) {
                buf[w] = e;
                w += 1;
                w_ex += usize::from(i < n_ex);
            }
        }
        self.len[row] = w as u32;
        self.exact[row] = w_ex as u32;
        self.kth[row] = (lk, jk);
        self.thr[row] = below(lk - eps);
    }
}

/// An f32 `<= t` for `t` in `[-4, 4]`: `t - 2^-21` rounded (the rounding
/// moves it by at most half an ulp, `2^-22`, there).
fn below(t: f64) -> f32 {
    (t - 2f64.powi(-21)) as f32
}

/// The `k` best pairs of every list row by exact similarity (ties by the
/// lower index) from the union of the per-thread shortlists (see the module
/// docs), none below the row's floor, as `n x k` [`Neighbors`].
pub(crate) fn finish(
    lists: &[Shortlist],
    rows: &ExactRows<'_>,
    n: usize,
    k: usize,
    pool: &rayon::ThreadPool,
) -> Neighbors {
    let eps = lists.first().map_or(0.0, |s| s.eps);
    let mut indices = vec![u32::MAX; n * k];
    let mut similarities = vec![f32::NEG_INFINITY; n * k];
    pool.install(|| {
        indices
            .par_chunks_mut(k)
            .zip(similarities.par_chunks_mut(k))
            .enumerate()
            .for_each(|(a, (idx, sims))| {
                // (lower bound, upper bound, screened or exact value, index, exact)
                let mut all: Vec<(f64, f64, f32, u32, bool)> = Vec::new();
                for s in lists {
                    let base = a * s.cap;
                    let n_ex = s.exact[a] as usize;
                    for (i, e) in s.entries[base..base + s.len[a] as usize].iter().enumerate() {
                        let v = f64::from(e.v);
                        all.push(if i < n_ex {
                            (v, v, e.v, e.j, true)
                        } else {
                            (v - eps, (v + eps).min(1.0), e.v, e.j, false)
                        });
                    }
                }
                let mut keys: Vec<(f64, u32)> = all.iter().map(|p| (p.0, p.3)).collect();
                let kk = k.min(keys.len());
                let mut best: Vec<(f64, u32)> = Vec::new();
                if kk > 0 {
                    keys.select_nth_unstable_by(kk - 1, by_rank);
                    let (lk, jk) = keys[kk - 1];
                    all.retain(|p| kk < k || !beaten(p.1, p.3, lk, jk));
                    let js: Vec<u32> = all.iter().filter(|p| !p.4).map(|p| p.3).collect();
                    let mut vals = vec![0.0_f32; js.len()];
                    rows.cosines(lists[0].data_row(a), &js, &mut vals);
                    best.extend(all.iter().filter(|p| p.4).map(|p| (f64::from(p.2), p.3)));
                    best.extend(vals.iter().zip(&js).map(|(&f, &j)| (f64::from(f), j)));
                    // a screened pair may have passed a floor its exact value misses
                    let floor = lists[0].floor[a];
                    best.retain(|p| p.0 >= floor);
                    best.sort_unstable_by(by_rank);
                }
                for (slot, &(f, j)) in best.iter().take(k).enumerate() {
                    idx[slot] = j;
                    sims[slot] = f as f32;
                }
            })
    });
    Neighbors {
        k,
        indices,
        similarities,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortlist_keeps_the_exact_top_k_under_screening_noise() -> Result<()> {
        // One row against 300 others; screened values are off by up to eps.
        let (n, d, k) = (301, 8, 5);
        let x = crate::testdata::uniform(n * d, 3, -0.5);
        let xn = super::super::normalize_rows(crate::MatRef::new(&x, n, d)?, "X", None)?;
        let pool = crate::parallel::pool(Some(1))?;
        let rows = ExactRows::new(&xn, d, &pool);
        let cos = |b: usize| super::super::exact::exact_cosine(&xn[..d], &xn[b * d..(b + 1) * d]);
        let eps = 0.05;
        let mut sl = Shortlist::new(n, n, k, eps);
        for b in 1..n {
            let noise = ((b * 7919) % 201) as f64 / 100.0 - 1.0; // [-1, 1]
            let v = f64::from(cos(b)) + 0.999 * eps * noise;
            sl.push(0, v as f32, b as u32, &rows);
        }
        let got = finish(&[sl], &rows, n, k, &pool);
        let mut want: Vec<(f32, u32)> = (1..n).map(|b| (cos(b), b as u32)).collect();
        want.sort_by(|p, q| q.0.total_cmp(&p.0).then(p.1.cmp(&q.1)));
        assert_eq!(
            got.indices[..k].to_vec(),
            want[..k].iter().map(|p| p.1).collect::<Vec<_>>()
        );
        assert_eq!(
            got.similarities[..k].to_vec(),
            want[..k].iter().map(|p| p.0).collect::<Vec<_>>()
        );
        Ok(())
    }
}
