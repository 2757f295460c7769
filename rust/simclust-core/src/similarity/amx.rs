//! Bf16 screening of the exact self-kNN with AMX (`tdpbf16ps`).
//!
//! Intel's Advanced Matrix Extensions multiply 16 x 32 bf16 tiles by 32 x 16
//! ones into 16 x 16 f32 accumulators: 512 multiply-adds per cycle and core,
//! eight times the int16 VNNI kernel of [`super::int16`]. The unit rows are
//! rounded once to bf16 (`q = bf16(x)`, row-major, zero-padded to a multiple
//! of 32 rows and columns) and kept in two layouts: row-major, and as column
//! tiles (pairs of coordinates of 16 rows interleaved, as `tdpbf16ps` reads
//! its second operand). A block of 32 x 32 screened similarities is four
//! accumulator tiles fed by two tiles of rows and two of columns per 32
//! coordinates.
//!
//! # Error bound
//!
//! Rounding to nearest bf16 (8 significant bits) moves each coordinate by
//! at most `2^-8 |x_i|`;
//! coordinates below `2^-100` are set to 0 (so no bf16 input or product is
//! subnormal). With `e >= |q - x|` for every row (the largest per-row norm of
//! the rounding errors, computed in f64 and enlarged by `2^-30` of itself),
//! `|<q_a, q_b> - <x_a, x_b>| <= e (2 + 2 nu + e)` as for int16. The products
//! of two bf16 are exact in f32; the accumulation of the `d` products in f32
//! (any order, at most one rounding per addition, round to nearest) is within
//! `gamma_d sum |q_a,i q_b,i| <= gamma_d (1 + nu + e)^2` (Higham 3.1,
//! `gamma_d = d u / (1 - d u)`, `u = 2^-24`), and flushing subnormal
//! products and partial sums to zero (the instruction does) moves each by
//! less than `2^-126`, `2 d 2^-126` in all.
//! [`ExactRows::quantized_eps`] adds the error of the final similarity and a
//! safety factor. For `d = 384` and typical embeddings `e` is about `1.9e-3`
//! and `eps` about `4.8e-3`: ten times int16's margin, paid for by more
//! exact re-checks, never by a different result (see [`super::screen`]).
//!
//! # Where it runs
//!
//! On x86-64 Linux CPUs with AMX-TILE and AMX-BF16 (and AVX-512F, which the
//! mask scan uses), once the kernel has granted this process the tile state
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`); anywhere else, or
//! under `SIMCLUST_SIMD=portable`, [`Amx::detect`] is `None` and the search
//! takes the next path. The instructions are written as inline assembly (the
//! AMX intrinsics are not stable Rust); the tile registers are not the
//! compiler's, so they keep their values between the blocks of one call.

use std::sync::OnceLock;

use super::screen::{ExactRows, Shortlist};

/// Rows and columns of a block: two accumulator tiles each way.
const SIDE: usize = 32;
/// Coordinates per tile load: 16 pairs of bf16, 64 bytes.
const CHUNK: usize = 32;
/// Coordinates below this magnitude are rounded to 0 (no subnormal bf16).
const TINY: f32 = 7.888_609e-31; // 2^-100
/// Screening is not worth it beyond this error bound.
const MAX_EPS: f64 = 1e-2;

/// Proof that the CPU runs AMX-TILE, AMX-BF16 and AVX-512F, that the kernel
/// granted this process the tile state, and that the portable paths are not
/// forced: the only way to reach the kernel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Amx(());

impl Amx {
    /// `Some` when the bf16 tile kernel may run here.
    pub(crate) fn detect() -> Option<Self> {
        if crate::simd::forced_portable() || !usable() {
            return None;
        }
        Some(Amx(()))
    }
}

/// Whether AMX bf16 is present and enabled for this process (asked once).
fn usable() -> bool {
    static USABLE: OnceLock<bool> = OnceLock::new();
    *USABLE.get_or_init(|| {
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        {
            use std::arch::x86_64::{__cpuid_count, __get_cpuid_max};
            if !std::is_x86_feature_detected!("avx512f") || __get_cpuid_max(0).0 < 7 {
                return false;
            }
            // CPUID.(EAX=7, ECX=0):EDX bit 22 AMX-BF16, bit 24 AMX-TILE.
            let edx = __cpuid_count(7, 0).edx;
            if (edx >> 22) & 1 == 0 || (edx >> 24) & 1 == 0 {
                return false;
            }
            request_tile_state()
        }
        #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
        {
            false
        }
    })
}

/// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`: Linux hands the
/// tile data state to a process only on request (since 5.16); `false` when
/// it refuses (an older kernel, or a signal stack too small for the state).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn request_tile_state() -> bool {
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let ret: i64;
    // SAFETY: the arch_prctl system call reads its two integer arguments and
    // touches no memory of ours; `syscall` clobbers rcx and r11 only.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret == 0
}

/// `x` rounded to the nearest bf16 (ties to even), as its 16 bits; 0 for
/// `|x| < 2^-100`. `x` is finite.
fn bf16(x: f32) -> u16 {
    if x.abs() < TINY {
        return 0;
    }
    let b = x.to_bits();
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// The value of the bf16 bits `h`.
fn from_bf16(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// 64-byte aligned storage for tile loads of 16 lanes of 32 bits.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Lanes([u32; 16]);

/// The unit rows rounded to bf16 for the AMX screen, in the two layouts the
/// tiles read, each tile 1 KB in one piece: as row tiles (`rows[(g *
/// chunks + t) * 16 + r].0[p]` holds row `16g + r`'s coordinates `2(16t +
/// p)`, low half, and `2(16t + p) + 1`, high half), and as column tiles
/// (`cols[(g * chunks + t) * 16 + p].0[r]`, the same pair of the same row).
/// Rows `n..n_pad` and coordinates `d..` are zero.
#[derive(Debug)]
pub(crate) struct Bf16Rows {
    amx: Amx,
    n_pad: usize,
    /// `u32` pairs per row: `d` rounded up to a multiple of 32, halved.
    half: usize,
    rows: Vec<Lanes>,
    cols: Vec<Lanes>,
    /// The proven bound on `|screened - exact|`.
    eps: f64,
}

impl Bf16Rows {
    /// Rounds the `n x d` unit rows `xn`; `None` when the kernel cannot run
    /// here, the two copies do not fit in memory or the bound would be too
    /// loose to help.
    pub(crate) fn new(
        xn: &[f32],
        n: usize,
        d: usize,
        rows: &ExactRows<'_>,
        pool: &rayon::ThreadPool,
    ) -> Option<Self> {
        use rayon::prelude::*;
        let amx = Amx::detect()?;
        let half = d.div_ceil(CHUNK) * CHUNK / 2;
        let n_pad = n.div_ceil(SIDE) * SIDE;
        let bytes = n_pad.checked_mul(half)?.checked_mul(8)?;
        crate::memory::ensure_allocatable(bytes, "the bf16 rows").ok()?;
        // Row tiles, then column tiles: a 16 x 16 transpose of each.
        let mut row_tiles = vec![Lanes([0; 16]); n_pad * half / 16];
        let e = pool.install(|| {
            row_tiles
                .par_chunks_mut(half)
                .zip(xn.par_chunks(16 * d.max(1)))
                .map(|(panel, x)| {
                    let mut worst = 0.0_f64;
                    for (r, x) in x.chunks_exact(d).enumerate() {
                        let mut sq = 0.0_f64;
                        for (i, two) in x.chunks(2).enumerate() {
                            let lo = bf16(two[0]);
                            let hi = two.get(1).map_or(0, |&v| bf16(v));
                            panel[(i / 16) * 16 + r].0[i % 16] =
                                u32::from(lo) | (u32::from(hi) << 16);
                            for (&v, h) in two.iter().zip([lo, hi]) {
                                let dv = f64::from(v) - f64::from(from_bf16(h));
                                sq += dv * dv;
                            }
                        }
                        worst = worst.max(sq.sqrt());
                    }
                    worst
                })
                .reduce(|| 0.0, f64::max)
        });
        if !e.is_finite() {
            return None;
        }
        let e = e * (1.0 + 2f64.powi(-30));
        let bound = rows.max_norm() + e;
        let du = d as f64 * 2f64.powi(-24);
        let conv = du / (1.0 - du) * bound * bound + 2.0 * d as f64 * 2f64.powi(-126);
        let eps = rows.quantized_eps(e, conv);
        if eps > MAX_EPS {
            return None;
        }
        let mut cols = vec![Lanes([0; 16]); n_pad * half / 16];
        pool.install(|| {
            cols.par_chunks_mut(16)
                .zip(row_tiles.par_chunks(16))
                .for_each(|(col, row)| {
                    for (r, lanes) in row.iter().enumerate() {
                        for (p, &v) in lanes.0.iter().enumerate() {
                            col[p].0[r] = v;
                        }
                    }
                })
        });
        Some(Self {
            amx,
            n_pad,
            half,
            rows: row_tiles,
            cols,
            eps,
        })
    }

    /// The proven bound on `|screened - exact|`.
    pub(crate) fn eps(&self) -> f64 {
        self.eps
    }

    /// The rows covered by the padding (a multiple of 32).
    pub(crate) fn n_pad(&self) -> usize {
        self.n_pad
    }

    /// Screens the tile of rows `i0..i1` against columns `j0..j1` (both
    /// starting at multiples of 32; only pairs `a < b` when `diagonal`),
    /// offering every pair that passes a row's threshold to `sl`.
    pub(crate) fn screen_tile(
        &self,
        (i0, i1): (usize, usize),
        (j0, j1): (usize, usize),
        diagonal: bool,
        sl: &mut Shortlist,
        rows: &ExactRows<'_>,
    ) {
        assert!(i0.is_multiple_of(SIDE) && j0.is_multiple_of(SIDE));
        assert!(i1 <= self.n_pad && j1 <= self.n_pad && sl.thresholds().len() >= self.n_pad);
        let half = self.half;
        let mut out = [0.0_f32; SIDE * SIDE];
        let _tiles = TileConfig::load(self.amx);
        for c0 in (j0..j1).step_by(SIDE) {
            let b = &self.cols[c0 * half / 16..(c0 + SIDE) * half / 16];
            for r0 in (i0..i1).step_by(SIDE) {
                if diagonal && c0 + SIDE <= r0 + 1 {
                    continue; // every pair of the block has b <= a
                }
                let a = &self.rows[r0 * half / 16..(r0 + SIDE) * half / 16];
                // SAFETY: `TileConfig::load` configured the tiles on this
                // thread; `a` and `b` hold two panels of `half` lanes each.
                unsafe { block(a, b, half, &mut out) };
                let thr = sl.thresholds();
                let mut ta = [f32::INFINITY; SIDE];
                for (r, t) in ta.iter_mut().enumerate().take(i1.saturating_sub(r0)) {
                    *t = thr[r0 + r];
                }
                // SAFETY: `Amx` implies AVX-512F; `thr` reaches `n_pad`.
                let masks = unsafe { hits(&out, &ta, &thr[c0..c0 + SIDE]) };
                sl.offer_block(&masks, &out, SIDE, (r0, c0), (i1, j1), diagonal, rows);
            }
        }
    }
}

/// The tile shapes of [`block`], configured on this thread while alive
/// (`ldtilecfg`), released (`tilerelease`) when dropped.
struct TileConfig(());

impl TileConfig {
    /// Tiles 0-3: 16 x 16 f32 accumulators; 4-5: 16 rows x 32 bf16; 6-7: 16
    /// pair rows x 16 columns: every tile 16 rows of 64 bytes.
    fn load(_amx: Amx) -> Self {
        #[repr(C, align(64))]
        struct Palette([u8; 64]);
        let mut cfg = Palette([0; 64]);
        cfg.0[0] = 1; // palette 1
        for t in 0..8 {
            cfg.0[16 + 2 * t] = 64; // bytes per row (u16, little-endian)
            cfg.0[48 + t] = 16; // rows
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Amx` proves the CPU has AMX-TILE and the process holds the
        // tile state; the palette is 64 readable bytes.
        unsafe {
            std::arch::asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
        }
        TileConfig(())
    }
}

impl Drop for TileConfig {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: only built by `load`, on a CPU with AMX-TILE.
        unsafe {
            std::arch::asm!("tilerelease", options(nostack, nomem));
        }
    }
}

/// The 32 x 32 bf16 dot products of the rows `a` with the columns `b` (two
/// panels of `half` lanes each, row and column tiles of [`Bf16Rows`]) into
/// `out` (row-major f32).
///
/// # Safety
///
/// The tiles must be configured by [`TileConfig::load`] on this thread;
/// `half` a multiple of 16, `a.len() >= 2 * half`, `b.len() >= 2 * half`.
#[cfg(target_arch = "x86_64")]
unsafe fn block(a: &[Lanes], b: &[Lanes], half: usize, out: &mut [f32; SIDE * SIDE]) {
    use std::arch::asm;
    debug_assert!(half.is_multiple_of(16) && a.len() >= 2 * half && b.len() >= 2 * half);
    // SAFETY (all blocks): the caller's contract; every tile load reads 16
    // rows of 64 bytes inside `a` or `b`, every store writes 16 rows of 64
    // bytes inside `out` (row stride 128 bytes).
    unsafe {
        asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            options(nostack, nomem)
        );
        for t in 0..half / 16 {
            let a0 = a.as_ptr().add(16 * t);
            let a1 = a0.add(half);
            let b0 = b.as_ptr().add(16 * t);
            let b1 = b0.add(half);
            asm!(
                "tileloadd tmm4, [{a0} + {ld}*1]",
                "tileloadd tmm5, [{a1} + {ld}*1]",
                "tileloadd tmm6, [{b0} + {ld}*1]",
                "tileloadd tmm7, [{b1} + {ld}*1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "tdpbf16ps tmm2, tmm5, tmm6",
                "tdpbf16ps tmm3, tmm5, tmm7",
                a0 = in(reg) a0,
                a1 = in(reg) a1,
                b0 = in(reg) b0,
                b1 = in(reg) b1,
                ld = in(reg) 64_usize,
                options(nostack, readonly, preserves_flags)
            );
        }
        let o = out.as_mut_ptr();
        asm!(
            "tilestored [{o0} + {ldc}*1], tmm0",
            "tilestored [{o1} + {ldc}*1], tmm1",
            "tilestored [{o2} + {ldc}*1], tmm2",
            "tilestored [{o3} + {ldc}*1], tmm3",
            o0 = in(reg) o,
            o1 = in(reg) o.add(16),
            o2 = in(reg) o.add(16 * SIDE),
            o3 = in(reg) o.add(16 * SIDE + 16),
            ldc = in(reg) 4 * SIDE,
            options(nostack, preserves_flags)
        );
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn block(_: &[Lanes], _: &[Lanes], _: usize, _: &mut [f32; SIDE * SIDE]) {}

/// Per row of the 32 x 32 block `out`, the bit mask of the columns whose
/// value reaches the row's threshold `ta` or the column's `tc`.
///
/// # Safety
///
/// The CPU must support AVX-512F; `tc.len() >= 32`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn hits(out: &[f32; SIDE * SIDE], ta: &[f32; SIDE], tc: &[f32]) -> [u32; SIDE] {
    use std::arch::x86_64::*;
    debug_assert!(tc.len() >= SIDE);
    let mut masks = [0_u32; SIDE];
    // SAFETY: every load reads 16 floats inside `out` or `tc`.
    unsafe {
        let tcol = [
            _mm512_loadu_ps(tc.as_ptr()),
            _mm512_loadu_ps(tc.as_ptr().add(16)),
        ];
        for (r, m) in masks.iter_mut().enumerate() {
            let t = _mm512_set1_ps(ta[r]);
            for (h, &tch) in tcol.iter().enumerate() {
                let v = _mm512_loadu_ps(out.as_ptr().add(r * SIDE + 16 * h));
                let hit = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(v, t)
                    | _mm512_cmp_ps_mask::<_CMP_GE_OQ>(v, tch);
                *m |= u32::from(hit) << (16 * h);
            }
        }
    }
    masks
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn hits(_: &[f32; SIDE * SIDE], _: &[f32; SIDE], _: &[f32]) -> [u32; SIDE] {
    [0; SIDE]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_to_nearest_even_and_within_half_a_unit() {
        for &x in &[1.0_f32, -0.7, 0.123_456_79, 1.0e-20, -3.0e-35, 0.0] {
            let q = from_bf16(bf16(x));
            if x.abs() < TINY {
                assert_eq!(q, 0.0);
            } else {
                assert!((f64::from(q) - f64::from(x)).abs() <= 2f64.powi(-8) * f64::from(x.abs()));
            }
        }
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even 1.
        assert_eq!(from_bf16(bf16(1.0 + 2f32.powi(-8))), 1.0);
        assert_eq!(
            from_bf16(bf16(1.0 + 3.0 * 2f32.powi(-8))),
            1.0 + 2f32.powi(-6)
        );
    }

    #[test]
    fn tiles_equal_the_bf16_dot_products_within_the_f32_sum_bound() -> crate::Result<()> {
        let Some(amx) = Amx::detect() else {
            return Ok(()); // no AMX here: the kNN tests cover the other paths
        };
        let (n, d) = (70, 100);
        let x = crate::testdata::uniform(n * d, 5, -0.5);
        let xn = super::super::normalize_rows(crate::MatRef::new(&x, n, d)?, "X", None)?;
        let pool = crate::parallel::pool(Some(1))?;
        let rows = ExactRows::new(&xn, d, &pool);
        let q = Bf16Rows::new(&xn, n, d, &rows, &pool).expect("AMX rows");
        assert!(q.eps() > 0.0 && q.eps() < 6e-3, "eps {}", q.eps());
        let mut out = [0.0_f32; SIDE * SIDE];
        let _tiles = TileConfig::load(amx);
        for (r0, c0) in [(0, 0), (32, 0), (64, 32)] {
            let a = &q.rows[r0 * q.half / 16..(r0 + SIDE) * q.half / 16];
            let b = &q.cols[c0 * q.half / 16..(c0 + SIDE) * q.half / 16];
            // SAFETY: the tiles are configured; `a` and `b` have the sizes
            // `block` requires.
            unsafe { block(a, b, q.half, &mut out) };
            for r in 0..SIDE {
                for c in 0..SIDE {
                    let (ra, cb) = (r0 + r, c0 + c);
                    let want: f64 = if ra < n && cb < n {
                        (0..d)
                            .map(|i| {
                                f64::from(from_bf16(bf16(xn[ra * d + i])))
                                    * f64::from(from_bf16(bf16(xn[cb * d + i])))
                            })
                            .sum()
                    } else {
                        0.0
                    };
                    let got = f64::from(out[r * SIDE + c]);
                    assert!(
                        (got - want).abs() <= d as f64 * 2f64.powi(-24) * 1.1,
                        "{ra} {cb}"
                    );
                    if ra < n && cb < n {
                        let exact = f64::from(super::super::exact::exact_cosine(
                            &xn[ra * d..(ra + 1) * d],
                            &xn[cb * d..(cb + 1) * d],
                        ));
                        assert!((got - exact).abs() <= q.eps(), "{ra} {cb}");
                    }
                }
            }
        }
        Ok(())
    }
}
