//! Building blocks shared by the metric kernels: one single-threaded GEMM
//! per tile, an indexed task runner on an owned pool, a lane-wise scan of
//! similarity rows and a deterministic dot product.
//!
//! The GEMM wrapper and the indexed task runner come from
//! the crate's `tiles` module: every task returns a value stored at its index, so
//! reductions run afterwards in a fixed order whatever thread ran the task.

/// Lanes of the vectorised scans: independent accumulators the compiler
/// keeps in SIMD registers.
pub(crate) const LANES: usize = 8;

pub(crate) use crate::tiles::{gemm_abt, run_indexed};

/// Running statistics of a set of values (similarities or distances), kept
/// as sums of the deviations `v - shift` (f64) so the variance does not
/// cancel: the partial aggregate of some tiles of pairs. Partials taken
/// around the same shift add up ([`Acc::merge`], in a fixed order for a
/// deterministic result); re-exported as [`super::PairSums`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Acc {
    /// Number of values.
    pub n: u64,
    /// Sum of the deviations `v - shift`.
    pub s1: f64,
    /// Sum of the squared deviations.
    pub s2: f64,
    /// Smallest value (`+inf` when empty).
    pub min: f32,
    /// Largest value (`-inf` when empty).
    pub max: f32,
}

impl Acc {
    /// No values.
    pub const EMPTY: Acc = Acc {
        n: 0,
        s1: 0.0,
        s2: 0.0,
        min: f32::INFINITY,
        max: f32::NEG_INFINITY,
    };

    /// Adds `o` to `self` (callers merge in a fixed order).
    pub fn merge(&mut self, o: &Acc) {
        self.n += o.n;
        self.s1 += o.s1;
        self.s2 += o.s2;
        self.min = if o.min < self.min { o.min } else { self.min };
        self.max = if o.max > self.max { o.max } else { self.max };
    }

    /// Adds the similarities of `row` (deviations from `shift`).
    ///
    /// `LANES` f32 accumulators per row (a row is at most a tile wide, so each
    /// lane sums a few hundred values), flushed to the f64 totals per row.
    pub(crate) fn scan(&mut self, row: &[f32], shift: f32) {
        let mut s1 = [0.0_f32; LANES];
        let mut s2 = [0.0_f32; LANES];
        let mut mn = [f32::INFINITY; LANES];
        let mut mx = [f32::NEG_INFINITY; LANES];
        let mut chunks = row.chunks_exact(LANES);
        for ch in &mut chunks {
            for l in 0..LANES {
                let v = ch[l];
                let dv = v - shift;
                s1[l] += dv;
                s2[l] += dv * dv;
                mn[l] = if v < mn[l] { v } else { mn[l] };
                mx[l] = if v > mx[l] { v } else { mx[l] };
            }
        }
        for (l, &v) in chunks.remainder().iter().enumerate() {
            let dv = v - shift;
            s1[l] += dv;
            s2[l] += dv * dv;
            mn[l] = if v < mn[l] { v } else { mn[l] };
            mx[l] = if v > mx[l] { v } else { mx[l] };
        }
        for l in 0..LANES {
            self.s1 += f64::from(s1[l]);
            self.s2 += f64::from(s2[l]);
            self.min = if mn[l] < self.min { mn[l] } else { self.min };
            self.max = if mx[l] > self.max { mx[l] } else { self.max };
        }
        self.n += row.len() as u64;
    }

    /// Adds a single similarity.
    pub(crate) fn push(&mut self, v: f32, shift: f64) {
        let dv = f64::from(v) - shift;
        self.n += 1;
        self.s1 += dv;
        self.s2 += dv * dv;
        self.min = if v < self.min { v } else { self.min };
        self.max = if v > self.max { v } else { self.max };
    }

    /// `(mean, population std)` given the shift the sums were taken around;
    /// NaN when empty.
    pub(crate) fn mean_std(&self, shift: f64) -> (f64, f64) {
        if self.n == 0 {
            return (f64::NAN, f64::NAN);
        }
        let n = self.n as f64;
        let m1 = self.s1 / n;
        let var = (self.s2 / n - m1 * m1).max(0.0);
        (shift + m1, var.sqrt())
    }

    /// `(min, max)`, NaN when empty.
    pub(crate) fn min_max(&self) -> (f32, f32) {
        if self.n == 0 {
            (f32::NAN, f32::NAN)
        } else {
            (self.min, self.max)
        }
    }
}

/// `sum v` with `LANES` f32 accumulators summed in f64 (fixed order).
pub(crate) fn sum(v: &[f32]) -> f64 {
    let mut acc = [0.0_f32; LANES];
    let mut cv = v.chunks_exact(LANES);
    for x in &mut cv {
        for l in 0..LANES {
            acc[l] += x[l];
        }
    }
    let mut total: f64 = acc.iter().map(|&v| f64::from(v)).sum();
    for &x in cv.remainder() {
        total += f64::from(x);
    }
    total
}

/// `<a, b>` with `LANES` f32 accumulators summed in f64 (fixed order).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_f64(a, b) as f32
}

/// `<a, b>` as f64 ([`dot`] before the final rounding).
pub(crate) fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = [0.0_f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let mut total: f64 = acc.iter().map(|&v| f64::from(v)).sum();
    for (&x, &y) in ca.remainder().iter().zip(cb.remainder()) {
        total += f64::from(x) * f64::from(y);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_matches_naive() {
        let row: Vec<f32> = (0..1021)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let mut acc = Acc::EMPTY;
        acc.scan(&row[..500], 0.1);
        acc.scan(&row[500..], 0.1);
        let n = row.len() as f64;
        let mean: f64 = row.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var: f64 = row
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        let (m, s) = acc.mean_std(0.1);
        assert!((m - mean).abs() < 1e-6, "{m} {mean}");
        assert!((s - var.sqrt()).abs() < 1e-6);
        let mn = row.iter().copied().fold(f32::INFINITY, f32::min);
        let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(acc.min_max(), (mn, mx));
        assert_eq!(acc.n, 1021);
        assert!(Acc::EMPTY.mean_std(0.0).0.is_nan());
    }

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.1).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.05).collect();
        let want: f64 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum();
        assert!((dot_f64(&a, &b) - want).abs() < 1e-5);
    }
}
