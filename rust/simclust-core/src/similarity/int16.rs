//! Int16 screening of the exact self-kNN with AVX-512 VNNI (`vpdpwssd`).
//!
//! The unit rows are quantised once to 16-bit integers, `q = round(S x)`
//! with one scale `S` for all rows, and every tile of dot products `<q_a,
//! q_b>` is computed in exact 32-bit integer arithmetic by a register-blocked
//! kernel (8 rows x 32 columns of accumulators, two int16 products per lane
//! and instruction). `vpdpwssd` retires two of those per cycle on the CPUs
//! that have it, twice the multiply-adds of the fp32 FMA; a BF16 screen
//! (`vdpbf16ps`) was measured at *below* fp32 speed on an AVX-512-BF16 Xeon
//! and is not used.
//!
//! # Error bound
//!
//! Let `x` be a row (its norm within `nu` of 1) and `q_i = round(S x_i)`,
//! so `|q_i - S x_i| <= 1/2` (plus `2^-30` for the f64 product rounded
//! before it), and `e = (1/2 + 2^-30) sqrt(d) / S >= |q/S - x|`. With
//! `dx = q_a/S - x_a`, `dy = q_b/S - x_b`:
//!
//! `|<q_a, q_b>/S^2 - <x_a, x_b>| = |<dx, x_b> + <x_a, dy> + <dx, dy>|
//!  <= e (1 + nu) + (1 + nu) e + e^2 = e (2 + 2 nu + e)`.
//!
//! The integer dot product is exact: `|<q_a, q_b>| <= |q_a||q_b| < 2^31` is
//! checked for the largest `|q|` when quantising (32-bit lanes wrap, so no
//! partial sum needs to fit, only the result). The screened similarity is
//! `v = f32(<q_a, q_b>) * f32(1/S^2)`: three roundings of relative size
//! `2^-24` of a value of magnitude at most `(1 + nu + e)^2 < 1.3` (as
//! `eps <= 0.01` is required), so within `conv = 2^-22` of `<q_a, q_b>/S^2`. [`ExactRows::quantized_eps`] adds the error of the final
//! similarity and a safety factor. For `d = 384` and typical embeddings
//! `S` is about 46,000 and `eps` about `5e-4`.

use rayon::prelude::*;

use super::screen::{ExactRows, Shortlist};

/// Rows per microkernel block (a divisor of 16: one half panel).
const ROWS: usize = 8;
/// Columns per microkernel block: two panels of 16.
const COLS: usize = 32;
/// The largest `|q|^2` for which `<q_a, q_b>` fits in an i32.
const MAX_SQ: i64 = (1 << 31) - 1;
/// Screening is not worth it beyond this error bound (only reached for
/// `d` in the millions).
const MAX_EPS: f64 = 1e-2;

/// Proof that the CPU runs AVX-512F and AVX-512 VNNI, and that the portable
/// paths are not forced: the only way to reach the kernel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Vnni(());

impl Vnni {
    /// `Some` when the int16 kernel may run here.
    pub(crate) fn detect() -> Option<Self> {
        if crate::simd::forced_portable() {
            return None;
        }
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512vnni")
            {
                return Some(Vnni(()));
            }
        }
        None
    }
}

/// The instructions the int16 screen multiplies with: AVX-512 VNNI
/// (`vpdpwssd`), or AVX2 (`vpmaddwd` then `vpaddd`, for CPUs without
/// AVX-512). Both compute the same exact integer dot products, so the
/// screened values are the same bits.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Int16Isa {
    /// AVX-512 VNNI, proven by [`Vnni`].
    Vnni(Vnni),
    /// AVX2, proven by [`Avx2`].
    Avx2(Avx2),
}

impl Int16Isa {
    /// The fastest of the two this CPU runs; `None` under
    /// `SIMCLUST_SIMD=portable` or without AVX2.
    pub(crate) fn detect() -> Option<Self> {
        Vnni::detect()
            .map(Int16Isa::Vnni)
            .or_else(|| Avx2::detect().map(Int16Isa::Avx2))
    }
}

/// Proof that the CPU runs AVX2 and that the portable paths are not forced:
/// the only way to reach the AVX2 int16 kernel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx2(());

impl Avx2 {
    /// `Some` when the AVX2 int16 kernel may run here.
    pub(crate) fn detect() -> Option<Self> {
        if crate::simd::forced_portable() {
            return None;
        }
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") {
                return Some(Avx2(()));
            }
        }
        None
    }
}

/// Sixteen i32 lanes, aligned for a full-width load.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Lanes([i32; 16]);

/// The quantised rows in panels of 16: panel `g` holds rows `16g..16g+16`,
/// and `panels[g * pairs + p].0[r]` packs coordinates `2p` (low half) and
/// `2p + 1` (high half) of row `16g + r` as two i16. Rows `n..n_pad` and a
/// last odd coordinate are zero.
#[derive(Debug)]
pub(crate) struct Quantized {
    isa: Int16Isa,
    n: usize,
    n_pad: usize,
    pairs: usize,
    panels: Vec<Lanes>,
    /// `1/S^2` in f32: the screened similarity is `f32(dot) * inv_s2`.
    inv_s2: f32,
    /// The proven bound on `|screened - exact|`.
    eps: f64,
}

impl Quantized {
    /// Quantises the `n x d` unit rows `xn` for the kernel `isa`; `None`
    /// when the bound would be too loose to help.
    pub(crate) fn new(
        isa: Int16Isa,
        xn: &[f32],
        n: usize,
        d: usize,
        rows: &ExactRows<'_>,
        pool: &rayon::ThreadPool,
    ) -> Option<Self> {
        let max_abs = pool.install(|| {
            xn.par_chunks(1 << 16)
                .map(|c| c.iter().fold(0.0_f32, |m, &v| m.max(v.abs())))
                .reduce(|| 0.0, f32::max)
        });
        if max_abs.is_nan() || max_abs <= 0.0 {
            return None;
        }
        // |q_i| <= 32767 and |q| <= S |x| + sqrt(d)/2 below sqrt(2^31).
        let room = (MAX_SQ as f64).sqrt() - 0.5 * (d as f64).sqrt() - 2.0;
        let scale = (32767.0 / f64::from(max_abs)).min(room / rows.max_norm());
        if scale.is_nan() || scale < 1.0 {
            return None;
        }
        let pairs = d.div_ceil(2);
        let n_pad = n.div_ceil(COLS) * COLS;
        let mut panels = vec![Lanes([0; 16]); (n_pad / 16) * pairs];
        let max_sq = pool.install(|| {
            panels
                .par_chunks_mut(pairs)
                .enumerate()
                .map(|(g, panel)| {
                    quantise_panel(&xn[(16 * g * d).min(xn.len())..], d, scale, panel)
                })
                .reduce(|| 0, i64::max)
        });
        if max_sq > MAX_SQ {
            return None;
        }
        let e = (0.5 + 2f64.powi(-30)) * (d as f64).sqrt() / scale;
        let eps = rows.quantized_eps(e, 2f64.powi(-22));
        if eps > MAX_EPS {
            return None;
        }
        Some(Self {
            isa,
            n,
            n_pad,
            pairs,
            panels,
            inv_s2: (1.0 / (scale * scale)) as f32,
            eps,
        })
    }

    /// The proven bound on `|screened - exact|`.
    pub(crate) fn eps(&self) -> f64 {
        self.eps
    }

    /// The rows covered by the padded panels (a multiple of 32).
    pub(crate) fn n_pad(&self) -> usize {
        self.n_pad
    }

    /// Screens the tile of rows `i0..i1` against columns `j0..j1` (both
    /// block-aligned, so multiples of 32; only pairs `a < b` when
    /// `diagonal`), offering every pair that passes a row's threshold to
    /// `sl`.
    pub(crate) fn screen_tile(
        &self,
        (i0, i1): (usize, usize),
        (j0, j1): (usize, usize),
        diagonal: bool,
        sl: &mut Shortlist,
        rows: &ExactRows<'_>,
    ) {
        let mut out = [0.0_f32; ROWS * COLS];
        for c0 in (j0..j1).step_by(COLS) {
            for r0 in (i0..i1).step_by(ROWS) {
                if diagonal && c0 + COLS <= r0 + 1 {
                    continue; // every pair of the block has b <= a
                }
                let masks = self.block(r0, c0, i1 - r0, sl.thresholds(), &mut out);
                sl.offer_block(&masks, &out, COLS, (r0, c0), (i1, j1), diagonal, rows);
            }
        }
    }

    /// The screened similarities of rows `r0..r0+8` and columns
    /// `c0..c0+32` into `out` (row-major), and per row the bit mask of the
    /// columns where the value reaches the row's or the column's threshold
    /// in `thr`. Rows from `valid` on are never flagged by their own
    /// threshold.
    fn block(
        &self,
        r0: usize,
        c0: usize,
        valid: usize,
        thr: &[f32],
        out: &mut [f32; ROWS * COLS],
    ) -> [u32; ROWS] {
        assert!(r0.is_multiple_of(ROWS) && c0.is_multiple_of(COLS) && c0 + COLS <= self.n_pad);
        assert!(r0 + ROWS <= self.n_pad && thr.len() >= self.n_pad);
        assert!(self.panels.len() == (self.n_pad / 16) * self.pairs && self.n <= self.n_pad);
        let mut ta = [f32::INFINITY; ROWS];
        for (r, t) in ta.iter_mut().enumerate().take(valid) {
            *t = thr[r0 + r];
        }
        let a = &self.panels[(r0 / 16) * self.pairs..(r0 / 16 + 1) * self.pairs];
        let b0 = &self.panels[(c0 / 16) * self.pairs..(c0 / 16 + 1) * self.pairs];
        let b1 = &self.panels[(c0 / 16 + 1) * self.pairs..(c0 / 16 + 2) * self.pairs];
        let tc = &thr[c0..c0 + COLS];
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: a `Vnni` exists only where `avx512f` and `avx512vnni`
            // were detected at run time, an `Avx2` only where `avx2` was; the
            // slices have `pairs` panels each and the lane offset `r0 % 16 +
            // 7` is below 16.
            match self.isa {
                Int16Isa::Vnni(_) => unsafe {
                    kernel(a, r0 % 16, b0, b1, ta, tc, self.inv_s2, out)
                },
                Int16Isa::Avx2(_) => unsafe {
                    kernel_avx2(a, r0 % 16, b0, b1, ta, tc, self.inv_s2, out)
                },
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (a, b0, b1, ta, tc, out, self.isa);
            [0; ROWS]
        }
    }
}

/// `round(v * scale)` as i16 (`|v * scale| <= 32767` by the choice of scale).
fn quantise(v: f32, scale: f64) -> i16 {
    (f64::from(v) * scale).round().clamp(-32767.0, 32767.0) as i16
}

/// Quantises the first (up to) 16 rows of the row-major `rows` (`d`
/// columns) into one panel (`panel.len() = ceil(d / 2)` pairs, see
/// [`Quantized`]); lanes of missing rows are zeroed. Returns the largest
/// `|q|^2` of the rows.
fn quantise_panel(rows: &[f32], d: usize, scale: f64, panel: &mut [Lanes]) -> i64 {
    let present = 16.min(rows.len() / d.max(1));
    let mut max_sq = 0_i64;
    for r in 0..16 {
        if r >= present {
            for lanes in panel.iter_mut() {
                lanes.0[r] = 0;
            }
            continue;
        }
        let row = &rows[r * d..(r + 1) * d];
        let mut sq = 0_i64;
        for (p, lanes) in panel.iter_mut().enumerate() {
            let lo = quantise(row[2 * p], scale);
            let hi = row.get(2 * p + 1).map_or(0, |&v| quantise(v, scale));
            sq += i64::from(lo) * i64::from(lo) + i64::from(hi) * i64::from(hi);
            lanes.0[r] = i32::from(lo as u16) | (i32::from(hi) << 16);
        }
        max_sq = max_sq.max(sq);
    }
    max_sq
}

/// The quantisation scale of [`UnitPanels`]: every coordinate of a unit row
/// times it fits in an i16 (`|x_i| <= |x| < 1.02`), and `|q| < 33,000`
/// keeps every dot product within an i32 for any `d` below 10^8.
const UNIT_SCALE: f64 = 32_000.0;

/// Unit rows (a partition's centroids) quantised to int16 with the fixed
/// [`UNIT_SCALE`], to find the most similar of them for batches of other
/// unit rows with the `vpdpwssd` kernel. A similarity is then within
/// `sqrt(d) / 32,000` (6e-4 at `d = 384`) of the exact one: good for
/// ranking a partition's lists, never for a reported value.
#[derive(Debug)]
pub(crate) struct UnitPanels {
    vnni: Vnni,
    n: usize,
    pairs: usize,
    panels: Vec<Lanes>,
}

/// Reusable buffers of [`UnitPanels::top`].
#[derive(Debug, Default)]
pub(crate) struct TopScratch {
    panels: Vec<Lanes>,
    vals: Vec<f32>,
    idx: Vec<u32>,
    len: Vec<usize>,
}

impl UnitPanels {
    /// The `n` unit rows `xn` (`d` columns) quantised; `None` when the
    /// kernel cannot run here.
    pub(crate) fn new(xn: &[f32], n: usize, d: usize) -> Option<Self> {
        let vnni = Vnni::detect()?;
        let pairs = d.div_ceil(2);
        let n_pad = n.div_ceil(COLS) * COLS;
        let mut panels = vec![Lanes([0; 16]); (n_pad / 16) * pairs];
        for (g, panel) in panels.chunks_exact_mut(pairs).enumerate() {
            quantise_panel(&xn[(16 * g * d).min(n * d)..n * d], d, UNIT_SCALE, panel);
        }
        Some(Self {
            vnni,
            n,
            pairs,
            panels,
        })
    }

    /// For each of the `ra` unit rows `xn`, the `m` rows of `self` with the
    /// largest int16 similarities (`1 <= m <= n`), best first, ties to the
    /// lower row, appended to `out`.
    pub(crate) fn top(
        &self,
        xn: &[f32],
        ra: usize,
        m: usize,
        scratch: &mut TopScratch,
        out: &mut Vec<u32>,
    ) {
        let (pairs, d) = (self.pairs, xn.len() / ra.max(1));
        assert!(m >= 1 && m <= self.n && d.div_ceil(2) == pairs);
        let ra_pad = ra.div_ceil(16) * 16;
        let TopScratch {
            panels,
            vals,
            idx,
            len,
        } = scratch;
        panels.resize((ra_pad / 16) * pairs, Lanes([0; 16]));
        for (g, panel) in panels.chunks_exact_mut(pairs).enumerate() {
            quantise_panel(&xn[16 * g * d..], d, UNIT_SCALE, panel);
        }
        vals.clear();
        vals.resize(ra * m, f32::NEG_INFINITY);
        idx.clear();
        idx.resize(ra * m, u32::MAX);
        len.clear();
        len.resize(ra, 0);
        let inv_s2 = (1.0 / (UNIT_SCALE * UNIT_SCALE)) as f32;
        let tc = [f32::INFINITY; COLS];
        let mut block = [0.0_f32; ROWS * COLS];
        for c0 in (0..self.n).step_by(COLS) {
            let b0 = &self.panels[(c0 / 16) * pairs..(c0 / 16 + 1) * pairs];
            let b1 = &self.panels[(c0 / 16 + 1) * pairs..(c0 / 16 + 2) * pairs];
            for r0 in (0..ra).step_by(ROWS) {
                let mut ta = [f32::INFINITY; ROWS];
                for (r, t) in ta.iter_mut().enumerate().take(ra - r0) {
                    let a = r0 + r;
                    *t = if len[a] < m {
                        f32::NEG_INFINITY
                    } else {
                        vals[a * m + m - 1]
                    };
                }
                let a = &panels[(r0 / 16) * pairs..(r0 / 16 + 1) * pairs];
                #[cfg(target_arch = "x86_64")]
                let masks = {
                    let _ = self.vnni;
                    // SAFETY: a `Vnni` exists only where `avx512f` and
                    // `avx512vnni` were detected at run time; the slices have
                    // `pairs` panels each, the lane offset `r0 % 16 + 7` is
                    // below 16 and `tc` has COLS entries.
                    unsafe { kernel(a, r0 % 16, b0, b1, ta, &tc, inv_s2, &mut block) }
                };
                #[cfg(not(target_arch = "x86_64"))]
                let masks = {
                    let _ = (a, b0, b1, ta, &tc, inv_s2, &mut block);
                    [0_u32; ROWS]
                };
                for (r, &mask) in masks.iter().enumerate() {
                    let mut mask = mask;
                    while mask != 0 {
                        let c = mask.trailing_zeros() as usize;
                        mask &= mask - 1;
                        if c0 + c < self.n {
                            let a = r0 + r;
                            let row_vals = &mut vals[a * m..(a + 1) * m];
                            let row_idx = &mut idx[a * m..(a + 1) * m];
                            insert_top(
                                row_vals,
                                row_idx,
                                &mut len[a],
                                block[r * COLS + c],
                                (c0 + c) as u32,
                            );
                        }
                    }
                }
            }
        }
        out.extend_from_slice(idx);
    }
}

/// Offers `(v, j)` to a best-first top list (`vals`, `idx`, `len` filled):
/// kept when the list is not full or `v` beats its last value, after every
/// equal value (so ties keep the row offered first).
fn insert_top(vals: &mut [f32], idx: &mut [u32], len: &mut usize, v: f32, j: u32) {
    let m = vals.len();
    if *len == m && v <= vals[m - 1] {
        return;
    }
    let at = vals[..*len].partition_point(|&x| x >= v);
    let end = (*len).min(m - 1);
    vals.copy_within(at..end, at + 1);
    idx.copy_within(at..end, at + 1);
    vals[at] = v;
    idx[at] = j;
    *len = (*len + 1).min(m);
}

/// The microkernel: 8 x 32 int16 dot products over `a.len()` pairs with
/// `vpdpwssd` (row `r`'s pair `p` is lane `lane + r` of `a[p]`, the 32
/// columns' are `b0[p]` and `b1[p]`), turned into f32 similarities
/// (`* inv_s2`), stored to `out` and compared with the row thresholds `ta`
/// and the column thresholds `tc`.
///
/// # Safety
///
/// The CPU must support AVX-512F and AVX-512 VNNI; `a`, `b0` and `b1` must
/// have the same length and `lane + ROWS <= 16`, `tc.len() >= 32`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel(
    a: &[Lanes],
    lane: usize,
    b0: &[Lanes],
    b1: &[Lanes],
    ta: [f32; ROWS],
    tc: &[f32],
    inv_s2: f32,
    out: &mut [f32; ROWS * COLS],
) -> [u32; ROWS] {
    use std::arch::x86_64::*;
    debug_assert!(a.len() == b0.len() && a.len() == b1.len() && lane + ROWS <= 16);
    debug_assert!(tc.len() >= COLS);
    let mut acc = [[_mm512_setzero_si512(); 2]; ROWS];
    for p in 0..a.len() {
        // SAFETY: `p < a.len() == b0.len() == b1.len()`; `Lanes` is 64-byte
        // aligned, so the full-width loads are aligned; `lane + r < 16`.
        unsafe {
            let v0 = _mm512_load_si512(b0.as_ptr().add(p).cast());
            let v1 = _mm512_load_si512(b1.as_ptr().add(p).cast());
            let ap = a.as_ptr().add(p).cast::<i32>().add(lane);
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_epi32(*ap.add(r));
                acc_r[0] = _mm512_dpwssd_epi32(acc_r[0], x, v0);
                acc_r[1] = _mm512_dpwssd_epi32(acc_r[1], x, v1);
            }
        }
    }
    let scale = _mm512_set1_ps(inv_s2);
    let mut masks = [0_u32; ROWS];
    for (r, acc_r) in acc.iter().enumerate() {
        let t = _mm512_set1_ps(ta[r]);
        for (h, &acc_rh) in acc_r.iter().enumerate() {
            let v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc_rh), scale);
            // SAFETY: `out` has ROWS * COLS slots and `tc` at least COLS.
            let tcol = unsafe {
                _mm512_storeu_ps(out.as_mut_ptr().add(r * COLS + 16 * h), v);
                _mm512_loadu_ps(tc.as_ptr().add(16 * h))
            };
            let hit =
                _mm512_cmp_ps_mask::<_CMP_GE_OQ>(v, t) | _mm512_cmp_ps_mask::<_CMP_GE_OQ>(v, tcol);
            masks[r] |= u32::from(hit) << (16 * h);
        }
    }
    masks
}

/// [`kernel`] with AVX2: the same 8 x 32 block, as four passes of 4 rows x
/// 16 columns (eight 8-lane accumulators each), `vpmaddwd` multiplying the
/// int16 pairs and adding each pair's two products, `vpaddd` accumulating.
/// The integer sums are those of `vpdpwssd` (no pair sum overflows: `|q|
/// <= 32767`, so `2 * 32767^2 < 2^31`; the accumulation wraps like
/// `vpdpwssd`'s and the result fits), so the values and masks are the same.
///
/// # Safety
///
/// The CPU must support AVX2; as [`kernel`] otherwise.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_avx2(
    a: &[Lanes],
    lane: usize,
    b0: &[Lanes],
    b1: &[Lanes],
    ta: [f32; ROWS],
    tc: &[f32],
    inv_s2: f32,
    out: &mut [f32; ROWS * COLS],
) -> [u32; ROWS] {
    use std::arch::x86_64::*;
    debug_assert!(a.len() == b0.len() && a.len() == b1.len() && lane + ROWS <= 16);
    debug_assert!(tc.len() >= COLS);
    let scale = _mm256_set1_ps(inv_s2);
    let mut masks = [0_u32; ROWS];
    for r0 in [0, 4] {
        for (h, b) in [b0, b1].into_iter().enumerate() {
            let mut acc = [[_mm256_setzero_si256(); 2]; 4];
            for p in 0..a.len() {
                // SAFETY: `p < a.len() == b.len()`; `Lanes` is 64-byte
                // aligned, so both 32-byte halves are aligned; `lane + r0 +
                // r < 16`.
                unsafe {
                    let bp = b.as_ptr().add(p).cast::<__m256i>();
                    let v = [_mm256_load_si256(bp), _mm256_load_si256(bp.add(1))];
                    let ap = a.as_ptr().add(p).cast::<i32>().add(lane + r0);
                    for (r, acc_r) in acc.iter_mut().enumerate() {
                        let x = _mm256_set1_epi32(*ap.add(r));
                        for (acc_rq, &vq) in acc_r.iter_mut().zip(&v) {
                            *acc_rq = _mm256_add_epi32(*acc_rq, _mm256_madd_epi16(x, vq));
                        }
                    }
                }
            }
            for (r, acc_r) in acc.iter().enumerate() {
                let row = r0 + r;
                let t = _mm256_set1_ps(ta[row]);
                for (q, &acc_rq) in acc_r.iter().enumerate() {
                    let col = 16 * h + 8 * q;
                    let v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc_rq), scale);
                    // SAFETY: `out` has ROWS * COLS slots and `tc` at least
                    // COLS; `col + 8 <= COLS`.
                    let tcol = unsafe {
                        _mm256_storeu_ps(out.as_mut_ptr().add(row * COLS + col), v);
                        _mm256_loadu_ps(tc.as_ptr().add(col))
                    };
                    let hit = _mm256_or_ps(
                        _mm256_cmp_ps::<_CMP_GE_OQ>(v, t),
                        _mm256_cmp_ps::<_CMP_GE_OQ>(v, tcol),
                    );
                    masks[row] |= (_mm256_movemask_ps(hit) as u32) << col;
                }
            }
        }
    }
    masks
}
