//! The measure a run's geometry is taken in, and the tile kernel that turns
//! one GEMM of two row blocks into that measure's values.
//!
//! * [`Measure::Cosine`]: cosine similarity of the L2-normalised rows
//!   (higher = closer), the default; its tiles are the GEMM refined near
//!   ±1 exactly as the similarity searches refine them.
//! * [`Measure::Dot`]: the inner product of the raw rows (higher = closer).
//! * [`Measure::Euclidean`]: the Euclidean distance of the raw rows (lower =
//!   closer), through the same GEMM tiles: `|x - y|^2 = |x|^2 + |y|^2 -
//!   2 <x, y>`, clamped at 0, square-rooted. Both blocks of a tile are
//!   first centred on the mean of the first block (distances do not move),
//!   so the cancellation in that identity is relative to the block's spread,
//!   not to how far the data sit from the origin; pairs whose squared
//!   distance is within rounding of 0 are recomputed exactly in f64.
//!
//! No tile is ever larger than the blocks it multiplies: an `n x n` matrix
//! of distances never exists.

use crate::error::{Error, Result};
use crate::similarity::exact::{dot64, margin, refine, refine_tile};

use super::kernel::{dot, gemm_abt};

/// What the cluster geometry measures: see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Measure {
    /// Cosine similarity of the unit rows (higher = closer).
    #[default]
    Cosine,
    /// Inner product of the raw rows (higher = closer).
    Dot,
    /// Euclidean distance of the raw rows (lower = closer).
    Euclidean,
}

/// How far below `margin(d)` times the two squared norms a Euclidean squared
/// distance must lie to be recomputed exactly: the float32 identity loses
/// about `(d + 2) eps (|x|^2 + |y|^2)` to rounding, and below 64 times that
/// the distance would keep fewer than ~6 significant bits of its square.
const EUCLIDEAN_REFINE: f32 = 64.0;

impl Measure {
    /// The measure named `name`: `"cosine"`, `"dot"` or `"euclidean"`.
    ///
    /// ```
    /// use simclust_core::metrics::Measure;
    /// assert_eq!(Measure::parse("euclidean")?, Measure::Euclidean);
    /// assert!(Measure::parse("manhattan").is_err());
    /// # Ok::<(), simclust_core::Error>(())
    /// ```
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "cosine" => Ok(Self::Cosine),
            "dot" => Ok(Self::Dot),
            "euclidean" => Ok(Self::Euclidean),
            _ => Err(Error::Parameter(format!(
                "unknown distance kernel {name:?}: expected 'cosine', 'dot' or 'euclidean'"
            ))),
        }
    }

    /// The measure's name, as [`Measure::parse`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cosine => "cosine",
            Self::Dot => "dot",
            Self::Euclidean => "euclidean",
        }
    }

    /// Whether rows are L2-normalised before they are measured (cosine only).
    pub fn normalizes(self) -> bool {
        self == Self::Cosine
    }

    /// Whether a higher value means closer (a similarity), not lower (a distance).
    pub fn higher_is_closer(self) -> bool {
        self != Self::Euclidean
    }

    /// Whether value `a` is closer than value `b`.
    #[inline]
    pub(crate) fn closer(self, a: f32, b: f32) -> bool {
        if self.higher_is_closer() {
            a > b
        } else {
            a < b
        }
    }

    /// The value of one pair of rows (as the kernels gather them), computed
    /// with f64 sums: the cosine refined as the tiles refine it, the inner
    /// product, or the Euclidean distance from the coordinate differences.
    pub(crate) fn pair(self, u: &[f32], v: &[f32]) -> f32 {
        match self {
            Self::Cosine => refine(u, v, dot(u, v), 1.0 - margin(u.len())),
            Self::Dot => dot64(u, v) as f32,
            Self::Euclidean => sq_distance64(u, v).sqrt() as f32,
        }
    }
}

/// `|u - v|^2` in f64, in a fixed order (8 interleaved partial sums).
pub(crate) fn sq_distance64(u: &[f32], v: &[f32]) -> f64 {
    const L: usize = 8;
    let mut acc = [0.0_f64; L];
    let mut cu = u.chunks_exact(L);
    let mut cv = v.chunks_exact(L);
    for (a, b) in (&mut cu).zip(&mut cv) {
        for l in 0..L {
            let e = f64::from(a[l]) - f64::from(b[l]);
            acc[l] += e * e;
        }
    }
    let mut tail = 0.0_f64;
    for (&a, &b) in cu.remainder().iter().zip(cv.remainder()) {
        let e = f64::from(a) - f64::from(b);
        tail += e * e;
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail
}

/// The values of a measure between two blocks of rows, one GEMM per call;
/// a task keeps one and reuses its buffers.
///
/// Cosine: `a · bᵀ` refined near ±1 (the very operations of every cosine
/// kernel, on the caller's rows, so the same bits). Dot: `a · bᵀ`.
/// Euclidean: copies of both blocks centred on `a`'s mean, then distances
/// from the squared norms (see the module documentation).
pub(crate) struct Tile {
    measure: Measure,
    d: usize,
    a: Vec<f32>,
    a_sq: Vec<f32>,
    centre: Vec<f64>,
    b: Vec<f32>,
    b_sq: Vec<f32>,
}

impl Tile {
    pub(crate) fn new(measure: Measure, d: usize) -> Self {
        Self {
            measure,
            d,
            a: Vec::new(),
            a_sq: Vec::new(),
            centre: Vec::new(),
            b: Vec::new(),
            b_sq: Vec::new(),
        }
    }

    /// `out[r * rb + c]` = the value of row `r` of `a` (`ra` rows) and row
    /// `c` of `b` (`rb` rows), both row-major with `d` columns.
    pub(crate) fn values(&mut self, a: &[f32], ra: usize, b: &[f32], rb: usize, out: &mut [f32]) {
        let d = self.d;
        let (a, b) = (&a[..ra * d], &b[..rb * d]);
        match self.measure {
            Measure::Cosine => {
                gemm_abt(a, ra, b, rb, d, out);
                refine_tile(out, ra, rb, a, b, d);
            }
            Measure::Dot => gemm_abt(a, ra, b, rb, d, out),
            Measure::Euclidean => {
                self.centre.clear();
                self.centre.resize(d, 0.0);
                for row in a.chunks_exact(d) {
                    for (m, &v) in self.centre.iter_mut().zip(row) {
                        *m += f64::from(v);
                    }
                }
                let centre: Vec<f32> = self
                    .centre
                    .iter()
                    .map(|&m| (m / ra.max(1) as f64) as f32)
                    .collect();
                centred(a, &centre, &mut self.a, &mut self.a_sq);
                centred(b, &centre, &mut self.b, &mut self.b_sq);
                gemm_abt(&self.a, ra, &self.b, rb, d, out);
                distances_from_dots(
                    out,
                    (&self.a, &self.a_sq),
                    (&self.b, &self.b_sq),
                    d,
                    EUCLIDEAN_REFINE * margin(d),
                );
            }
        }
    }
}

/// `out = rows - centre` row by row, and each centred row's squared norm
/// (f64 sums rounded to f32) in `sq`.
fn centred(rows: &[f32], centre: &[f32], out: &mut Vec<f32>, sq: &mut Vec<f32>) {
    out.clear();
    out.extend_from_slice(rows);
    for row in out.chunks_exact_mut(centre.len()) {
        for (v, &c) in row.iter_mut().zip(centre) {
            *v -= c;
        }
    }
    sq.clear();
    sq.extend(out.chunks_exact(centre.len()).map(|r| dot64(r, r) as f32));
}

/// Turns the dot products `buf` (`a · bᵀ`, row-major) into Euclidean
/// distances `sqrt(max(0, |a|^2 + |b|^2 - 2 <a, b>))`; a pair whose squared
/// distance is below `tol` times its squared norms' sum is recomputed
/// exactly ([`sq_distance64`]).
fn distances_from_dots(
    buf: &mut [f32],
    (a, a_sq): (&[f32], &[f32]),
    (b, b_sq): (&[f32], &[f32]),
    d: usize,
    tol: f32,
) {
    let rb = b_sq.len();
    for ((row, &na), u) in buf.chunks_exact_mut(rb).zip(a_sq).zip(a.chunks_exact(d)) {
        let mut near = false;
        for (s, &nb) in row.iter_mut().zip(b_sq) {
            let sum = na + nb;
            let sq = sum - 2.0 * *s;
            near |= sq <= tol * sum;
            *s = sq;
        }
        if near {
            for (c, (s, &nb)) in row.iter_mut().zip(b_sq).enumerate() {
                if *s <= tol * (na + nb) {
                    *s = sq_distance64(u, &b[c * d..(c + 1) * d]) as f32;
                }
            }
        }
        for s in row.iter_mut() {
            *s = s.max(0.0).sqrt();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: Measure, u: &[f32], v: &[f32]) -> f64 {
        let (uv, uu, vv) = u.iter().zip(v).fold((0.0, 0.0, 0.0), |s, (&x, &y)| {
            let (x, y) = (f64::from(x), f64::from(y));
            (s.0 + x * y, s.1 + x * x, s.2 + y * y)
        });
        match m {
            Measure::Cosine => uv / (uu * vv).sqrt(),
            Measure::Dot => uv,
            Measure::Euclidean => (uu + vv - 2.0 * uv).max(0.0).sqrt(),
        }
    }

    #[test]
    fn tiles_and_pairs_match_naive() {
        // rows far from the origin, some of them repeated (distance exactly 0)
        let (ra, rb, d) = (7, 11, 21);
        let mut a = crate::testdata::uniform(ra * d, 3, 40.0);
        let b = crate::testdata::uniform(rb * d, 4, 40.0);
        a[2 * d..3 * d].copy_from_slice(&b[5 * d..6 * d]);
        for m in [Measure::Cosine, Measure::Dot, Measure::Euclidean] {
            let unit = |x: &[f32]| -> Vec<f32> {
                if !m.normalizes() {
                    return x.to_vec();
                }
                x.chunks_exact(d)
                    .flat_map(|r| {
                        let n = dot64(r, r).sqrt();
                        r.iter().map(move |&v| (f64::from(v) / n) as f32)
                    })
                    .collect()
            };
            let (ua, ub) = (unit(&a), unit(&b));
            let mut tile = Tile::new(m, d);
            let mut out = vec![f32::NAN; ra * rb];
            tile.values(&ua, ra, &ub, rb, &mut out);
            for r in 0..ra {
                for c in 0..rb {
                    let (u, v) = (&ua[r * d..(r + 1) * d], &ub[c * d..(c + 1) * d]);
                    let want = naive(m, u, v);
                    let tol = 1e-5 * want.abs().max(1.0);
                    let got = f64::from(out[r * rb + c]);
                    assert!((got - want).abs() < tol, "{m:?} {r} {c}: {got} vs {want}");
                    assert!((f64::from(m.pair(u, v)) - want).abs() < tol);
                }
            }
            if m == Measure::Euclidean {
                assert_eq!(out[2 * rb + 5], 0.0, "a repeated row is at distance 0");
            }
        }
    }

    #[test]
    fn names_round_trip() -> Result<()> {
        for m in [Measure::Cosine, Measure::Dot, Measure::Euclidean] {
            assert_eq!(Measure::parse(m.name())?, m);
        }
        assert!(Measure::Euclidean.closer(1.0, 2.0) && Measure::Cosine.closer(2.0, 1.0));
        Ok(())
    }
}
