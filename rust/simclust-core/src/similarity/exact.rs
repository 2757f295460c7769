//! Similarities at the ends of `[-1, 1]`, made exact.
//!
//! A float32 dot product of two unit rows is off by up to about `d` units
//! of roundoff, so identical rows come out as `0.9999992` or `1.0000012`.
//! Every kernel therefore passes each similarity through [`refine`]: a value
//! within [`margin`] of 1 or of -1 is recomputed in f64 as
//! `<u, v> / (|u| |v|)` and rounded (identical directions give exactly
//! `1.0`, rows that differ by a positive scale round to `1.0`, opposite ones
//! to `-1.0`), and every value is clamped to `[-1, 1]`. Values that close to
//! ±1 are rare (duplicates), so this costs a comparison per similarity.

/// Columns checked per vectorised step of [`refine_tile`].
const LANES: usize = 16;

/// The largest error of a float32 similarity of two unit rows of length
/// `d` (twice the forward bound `(d + 2) u` of a dot product of rows whose
/// norms are 1 to within one rounding).
pub(crate) fn margin(d: usize) -> f32 {
    (d as f32 + 2.0) * f32::EPSILON
}

/// The cosine similarity of `u` and `v` computed in f64, rounded to f32 and
/// clamped to `[-1, 1]`. Exactly `1.0` when `u == v`.
pub(crate) fn exact_cosine(u: &[f32], v: &[f32]) -> f32 {
    let (mut uv, mut uu, mut vv) = (0.0_f64, 0.0_f64, 0.0_f64);
    for (&a, &b) in u.iter().zip(v) {
        let (a, b) = (f64::from(a), f64::from(b));
        uv += a * b;
        uu += a * a;
        vv += b * b;
    }
    let den = (uu * vv).sqrt();
    if den > 0.0 {
        ((uv / den) as f32).clamp(-1.0, 1.0)
    } else {
        f32::NAN
    }
}

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
