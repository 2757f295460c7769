//! Similarities at the ends of `[-1, 1]`, made exact.
//!
//! A float32 dot product of two unit rows is off by up to about `d` units
//! of roundoff, so identical rows come out as `0.9999992` or `1.0000012`.
//! Every kernel therefore passes each similarity through [`refine`]: a value
//! within [`margin`] of 1 or of -1 is recomputed by [`exact_cosine`]
//! (identical directions give exactly `1.0`, rows that differ by a positive
//! scale round to `1.0`, opposite ones to `-1.0`), and every value is clamped
//! to `[-1, 1]`. Values that close to ±1 are rare (duplicates), so this costs
//! a comparison per similarity.
//!
//! [`exact_cosine`] is the one exact per-pair similarity of the crate: the
//! self-kNN lists (the screened exact search, the partitioned search and
//! the recall measured against brute force) hold its value for every listed
//! pair, so every search reports the same similarity for the same pair,
//! bit for bit. It is computed from [`dot64`] products in a fixed order and
//! [`cosine_from`], wherever a kernel caches the squared norms.
//! [`pair_similarities`] gives it for any list of pairs.

use rayon::prelude::*;

use super::normalize::{scale_row, unit_factor};
use crate::error::{Error, Result};
use crate::matrix::MatRef;
use crate::parallel;

/// Columns checked per vectorised step of [`refine_tile`].
const LANES: usize = 16;

/// The largest error of a float32 similarity of two unit rows of length
/// `d` (twice the forward bound `(d + 2) u` of a dot product of rows whose
/// norms are 1 to within one rounding).
pub(crate) fn margin(d: usize) -> f32 {
    (d as f32 + 2.0) * f32::EPSILON
}

/// Partial sums per dot product in [`dot64`].
const LANES64: usize = 8;

/// `sum u_i v_i` in f64, in a fixed order: 8 interleaved partial sums, then
/// a fixed pairwise combination. Each product of two f32 is exact in f64,
/// so the value is the same on every CPU and for every instruction set the
/// compiler picks (fused or not).
#[inline]
pub(crate) fn dot64(u: &[f32], v: &[f32]) -> f64 {
    let mut acc = [0.0_f64; LANES64];
    let mut cu = u.chunks_exact(LANES64);
    let mut cv = v.chunks_exact(LANES64);
    for (a, b) in (&mut cu).zip(&mut cv) {
        for l in 0..LANES64 {
            acc[l] += f64::from(a[l]) * f64::from(b[l]);
        }
    }
    combine(&acc, cu.remainder(), cv.remainder())
}

/// [`dot64`] of `u` with four rows at once, each value bit for bit the one
/// [`dot64`] gives (the same operations per row, interleaved so that the
/// four rows' memory loads overlap).
#[inline(always)]
fn dot64_x4(u: &[f32], v: [&[f32]; 4]) -> [f64; 4] {
    let full = u.len() / LANES64 * LANES64;
    let mut acc = [[0.0_f64; LANES64]; 4];
    for (i, a) in u[..full].chunks_exact(LANES64).enumerate() {
        for (acc_q, vq) in acc.iter_mut().zip(&v) {
            let b = &vq[i * LANES64..(i + 1) * LANES64];
            for l in 0..LANES64 {
                acc_q[l] += f64::from(a[l]) * f64::from(b[l]);
            }
        }
    }
    let mut out = [0.0; 4];
    for (o, (acc_q, vq)) in out.iter_mut().zip(acc.iter().zip(&v)) {
        *o = combine(acc_q, &u[full..], &vq[full.min(vq.len())..]);
    }
    out
}

/// The end of [`dot64`]: the partial sums combined pairwise, plus the
/// products of the remaining `< 8` coordinates summed in order.
#[inline]
fn combine(acc: &[f64; LANES64], u: &[f32], v: &[f32]) -> f64 {
    let mut tail = 0.0_f64;
    for (&a, &b) in u.iter().zip(v) {
        tail += f64::from(a) * f64::from(b);
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail
}

/// [`exact_cosine`] from its three [`dot64`] products: `uv / sqrt(uu vv)`
/// rounded to f32 and clamped to `[-1, 1]` (NaN for a zero row). Kernels
/// that cache the squared norms `uu`, `vv` call this, and get the value of
/// [`exact_cosine`] bit for bit.
#[inline]
pub(crate) fn cosine_from(uv: f64, uu: f64, vv: f64) -> f32 {
    let den = (uu * vv).sqrt();
    if den > 0.0 {
        ((uv / den) as f32).clamp(-1.0, 1.0)
    } else {
        f32::NAN
    }
}

/// [`exact_cosine`] of `u` (squared norm `su`, from [`dot64`]) with each
/// row `j` in `js` of the row-major `rows` (`u.len()` columns, squared norms
/// `sq`), into `out`: bit for bit the same values, four rows at a time
/// ([`dot64_x4`]) so that their memory loads overlap.
///
/// Where the CPU has AVX-512F (and the portable paths are not forced) the
/// same code runs compiled for it: eight f64 lanes a register instead of
/// two. The operations and their order are the same (each product of two
/// f32 is exact in f64, so fused or not makes no difference), so are the
/// values, bit for bit (tested).
pub(crate) fn exact_cosines(
    u: &[f32],
    su: f64,
    rows: &[f32],
    sq: &[f64],
    js: &[u32],
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if wide_f64() {
        // SAFETY: `wide_f64` checked that the CPU has AVX-512F.
        return unsafe { exact_cosines_avx512(u, su, rows, sq, js, out) };
    }
    exact_cosines_body(u, su, rows, sq, js, out);
}

/// Whether [`exact_cosines`] may run its AVX-512F copy.
#[cfg(target_arch = "x86_64")]
fn wide_f64() -> bool {
    !crate::simd::forced_portable() && std::is_x86_feature_detected!("avx512f")
}

/// [`exact_cosines`] compiled for AVX-512F.
///
/// # Safety
///
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn exact_cosines_avx512(
    u: &[f32],
    su: f64,
    rows: &[f32],
    sq: &[f64],
    js: &[u32],
    out: &mut [f32],
) {
    exact_cosines_body(u, su, rows, sq, js, out);
}

/// The code of [`exact_cosines`], inlined into each of its copies.
#[inline(always)]
fn exact_cosines_body(u: &[f32], su: f64, rows: &[f32], sq: &[f64], js: &[u32], out: &mut [f32]) {
    let d = u.len();
    let row = |j: u32| &rows[j as usize * d..(j as usize + 1) * d];
    let mut cj = js.chunks_exact(4);
    let mut co = out.chunks_exact_mut(4);
    for (j, o) in (&mut cj).zip(&mut co) {
        let dots = dot64_x4(u, [row(j[0]), row(j[1]), row(j[2]), row(j[3])]);
        for q in 0..4 {
            o[q] = cosine_from(dots[q], su, sq[j[q] as usize]);
        }
    }
    for (&j, o) in cj.remainder().iter().zip(co.into_remainder()) {
        *o = cosine_from(dot64(u, row(j)), su, sq[j as usize]);
    }
}

/// The exact similarity of `u` and `v`: their cosine computed in f64 from
/// [`dot64`] products, rounded to f32 and clamped to `[-1, 1]`. Exactly
/// `1.0` when `u == v` (`sqrt(s * s) == s`) and for rows that differ by a
/// positive scale, `-1.0` for opposite rows.
pub(crate) fn exact_cosine(u: &[f32], v: &[f32]) -> f32 {
    cosine_from(dot64(u, v), dot64(u, u), dot64(v, v))
}

/// The similarity of each pair of rows `(a[i], b[i])` of `x`: both rows
/// scaled to unit norm as every search scales them, then [`exact_cosine`],
/// so a pair's value is the one the kNN searches list for it, bit for bit.
/// Only the rows named are read.
///
/// ```
/// use simclust_core::{similarity::pair_similarities, MatRef};
/// let x = [1.0_f32, 0.0, 3.0, 4.0, -2.0, 0.0];
/// let s = pair_similarities(MatRef::new(&x, 3, 2)?, &[0, 0, 1], &[1, 2, 1], None)?;
/// assert_eq!(s, vec![0.6, -1.0, 1.0]);
/// # Ok::<(), simclust_core::Error>(())
/// ```
pub fn pair_similarities(
    x: MatRef<'_>,
    a: &[u32],
    b: &[u32],
    n_threads: Option<usize>,
) -> Result<Vec<f32>> {
    if a.len() != b.len() {
        return Err(Error::Shape(format!(
            "a and b must have the same length, got {} and {}",
            a.len(),
            b.len()
        )));
    }
    let n = x.n_rows();
    for (name, idx) in [("a", a), ("b", b)] {
        if let Some(i) = idx.iter().position(|&r| r as usize >= n) {
            return Err(Error::Parameter(format!(
                "{name}[{i}] = {} is not a row of X ({n} rows)",
                idx[i]
            )));
        }
    }
    let unit = |r: u32, out: &mut [f32]| -> Result<()> {
        let row = x.row(r as usize);
        match unit_factor(row) {
            Some(f) => {
                scale_row(row, f, out);
                Ok(())
            }
            None if row.iter().all(|v| v.is_finite()) => Err(Error::ZeroNorm {
                what: "X",
                rows: vec![r as usize],
            }),
            None => Err(Error::NonFinite {
                what: "X",
                rows: vec![r as usize],
            }),
        }
    };
    let pool = parallel::pool(n_threads)?;
    let d = x.n_cols();
    let mut out = vec![0.0_f32; a.len()];
    pool.install(|| {
        out.par_chunks_mut(PAIR_CHUNK)
            .enumerate()
            .try_for_each(|(c, dst)| -> Result<()> {
                let (mut u, mut v) = (vec![0.0_f32; d], vec![0.0_f32; d]);
                for (i, o) in dst.iter_mut().enumerate() {
                    let p = c * PAIR_CHUNK + i;
                    unit(a[p], &mut u)?;
                    unit(b[p], &mut v)?;
                    *o = exact_cosine(&u, &v);
                }
                Ok(())
            })
    })?;
    Ok(out)
}

/// Pairs per task of [`pair_similarities`].
const PAIR_CHUNK: usize = 4096;

/// The screening value of a threshold graph at `threshold` over rows of
/// length `d`, and the `lo` of [`refine`]: pairs with a float32 similarity
/// `>= screen` are refined and then kept if the refined value reaches the
/// threshold. A threshold within rounding of 1 screens at `lo` (the exact
/// value decides), and one within rounding of -1 keeps every pair (opposite
/// rows can round below -1).
pub(crate) fn screen(threshold: f32, d: usize) -> (f32, f32) {
    let lo = 1.0 - margin(d);
    let screen = if threshold <= -lo {
        f32::NEG_INFINITY
    } else {
        threshold.min(lo)
    };
    (screen, lo)
}

/// `s`, the float32 similarity of unit rows `u` and `v`, made exact near ±1
/// ([`exact_cosine`] when `|s| >= lo`, with `lo = 1 - margin(d)`), so also
/// within `[-1, 1]`.
#[inline]
pub(crate) fn refine(u: &[f32], v: &[f32], s: f32, lo: f32) -> f32 {
    if s >= lo || s <= -lo {
        exact_cosine(u, v)
    } else {
        s
    }
}

/// [`refine`] over a tile `buf = a · bᵀ` of `ra x rb` similarities (`a`,
/// `b` row-major with `d` columns).
pub(crate) fn refine_tile(buf: &mut [f32], ra: usize, rb: usize, a: &[f32], b: &[f32], d: usize) {
    let lo = 1.0 - margin(d);
    for (r, row) in buf[..ra * rb].chunks_exact_mut(rb).enumerate() {
        let u = &a[r * d..(r + 1) * d];
        for (c0, chunk) in row.chunks_mut(LANES).enumerate() {
            if chunk.iter().fold(false, |h, &s| h | (s >= lo) | (s <= -lo)) {
                for (cc, s) in chunk.iter_mut().enumerate() {
                    let c = c0 * LANES + cc;
                    *s = refine(u, &b[c * d..(c + 1) * d], *s, lo);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_and_scaled_rows_give_one() {
        let d = 384;
        let x: Vec<f32> = (0..d).map(|i| ((i * 7919) % 113) as f32 - 50.5).collect();
        let norm = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
        let u: Vec<f32> = x.iter().map(|&v| (f64::from(v) / norm) as f32).collect();
        assert_eq!(exact_cosine(&u, &u), 1.0);
        let y: Vec<f32> = x.iter().map(|&v| v * 3.7).collect();
        let ny = y.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
        let w: Vec<f32> = y.iter().map(|&v| (f64::from(v) / ny) as f32).collect();
        assert_eq!(exact_cosine(&u, &w), 1.0);
        let neg: Vec<f32> = u.iter().map(|&v| -v).collect();
        assert_eq!(exact_cosine(&u, &neg), -1.0);
    }

    #[test]
    fn every_compiled_copy_gives_the_same_bits() {
        // The AVX-512F copy of `exact_cosines` runs the same operations in the
        // same order as the baseline one; the lists' exactness relies on it.
        for (n, d) in [(41, 384), (9, 37), (13, 5)] {
            let x = crate::testdata::uniform(n * d, 11, -0.5);
            let sq: Vec<f64> = x.chunks_exact(d).map(|r| dot64(r, r)).collect();
            let js: Vec<u32> = (0..n as u32).rev().collect();
            let mut base = vec![0.0_f32; n];
            exact_cosines_body(&x[..d], sq[0], &x, &sq, &js, &mut base);
            for (&j, &v) in js.iter().zip(&base) {
                let want = exact_cosine(&x[..d], &x[j as usize * d..(j as usize + 1) * d]);
                assert_eq!(v.to_bits(), want.to_bits());
            }
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx512f") {
                let mut wide = vec![0.0_f32; n];
                // SAFETY: AVX-512F was detected.
                unsafe { exact_cosines_avx512(&x[..d], sq[0], &x, &sq, &js, &mut wide) };
                assert_eq!(
                    wide.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    base.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                );
            }
        }
    }

    #[test]
    fn dot64_is_exact_on_small_integers() {
        let u: Vec<f32> = (0..37).map(|i| i as f32 - 18.0).collect();
        let v: Vec<f32> = (0..37).map(|i| (i * 7 % 11) as f32).collect();
        let want: f64 = u.iter().zip(&v).map(|(&a, &b)| f64::from(a * b)).sum();
        assert_eq!(dot64(&u, &v), want);
    }

    #[test]
    fn batched_dot_products_are_bit_identical() {
        for d in [1, 5, 8, 13, 384, 389] {
            let x = crate::testdata::uniform(5 * d, d as u64, -0.5);
            let row = |i: usize| &x[i * d..(i + 1) * d];
            let got = dot64_x4(row(0), [row(1), row(2), row(3), row(4)]);
            for (q, g) in got.iter().enumerate() {
                assert_eq!(g.to_bits(), dot64(row(0), row(q + 1)).to_bits(), "d = {d}");
            }
        }
    }

    #[test]
    fn batched_cosines_are_exact_cosine_bit_for_bit() {
        for d in [1, 9, 384] {
            let x = crate::testdata::uniform(12 * d, 5 + d as u64, -0.5);
            let row = |j: usize| &x[j * d..(j + 1) * d];
            let sq: Vec<f64> = (0..12).map(|j| dot64(row(j), row(j))).collect();
            let js: Vec<u32> = vec![3, 0, 11, 3, 7, 2, 9];
            let mut out = vec![0.0_f32; js.len()];
            exact_cosines(row(4), sq[4], &x, &sq, &js, &mut out);
            for (&j, o) in js.iter().zip(&out) {
                assert_eq!(o.to_bits(), exact_cosine(row(4), row(j as usize)).to_bits());
            }
        }
    }

    #[test]
    fn exact_cosine_matches_a_float64_reference() {
        for d in [1, 7, 384] {
            let x = crate::testdata::uniform(2 * d, 11 + d as u64, -0.5);
            let (u, v) = (&x[..d], &x[d..]);
            let f = |w: &[f32], z: &[f32]| -> f64 {
                w.iter()
                    .zip(z)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum()
            };
            let want = f(u, v) / (f(u, u) * f(v, v)).sqrt();
            assert!((f64::from(exact_cosine(u, v)) - want).abs() <= 2f64.powi(-24));
        }
        assert!(exact_cosine(&[0.0, 0.0], &[1.0, 0.0]).is_nan());
    }

    #[test]
    fn refine_clamps_and_keeps_the_rest() {
        let u = [0.6_f32, 0.8];
        let v = [0.8_f32, 0.6];
        let lo = 1.0 - margin(2);
        assert_eq!(refine(&u, &v, 0.96, lo), 0.96);
        let w = [-0.6_f32, -0.8];
        assert_eq!(refine(&u, &w, -1.000_001, lo), -1.0);
        assert_eq!(refine(&u, &u, 1.000_001, lo), 1.0);
    }
}
