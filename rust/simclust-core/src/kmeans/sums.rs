//! Exact per-cluster sums of rows.
//!
//! Each coordinate is accumulated as a 64-bit fixed-point integer with a
//! per-column power-of-two scale chosen so that no sum of up to `N` rows can
//! overflow. Integer addition is associative, so the sums are bit-identical
//! whatever the partition of the rows into blocks and whatever the order in
//! which blocks (or threads, or machines) are merged: the "per-block partial
//! sums reduced in a fixed order" property holds for any order. It also
//! makes incremental updates (subtract a row from its old cluster, add it to
//! the new one) exactly equal to a sum from scratch.
//!
//! The fixed-point resolution is `max|x_j| · 2^-(62 - ceil(log2(N + 1)))`
//! for column `j`: finer than `f32` for every value within a factor 2^18 of
//! the column's largest magnitude (at N = 10^6).

use rayon::prelude::*;
use rayon::ThreadPool;

use super::Metric;

/// Rows per parallel chunk when scanning the data.
const CHUNK_ROWS: usize = 4096;

/// The largest magnitude of each column of the rows `x` (`d` columns).
pub(crate) fn column_max(x: &[f32], d: usize, pool: &ThreadPool) -> Vec<f32> {
    pool.install(|| {
        x.par_chunks(CHUNK_ROWS * d)
            .map(|chunk| {
                let mut m = vec![0.0_f32; d];
                for row in chunk.chunks_exact(d) {
                    for (mj, v) in m.iter_mut().zip(row) {
                        *mj = mj.max(v.abs());
                    }
                }
                m
            })
            .reduce(
                || vec![0.0_f32; d],
                |mut a, b| {
                    for (x, y) in a.iter_mut().zip(&b) {
                        *x = x.max(*y);
                    }
                    a
                },
            )
    })
}

/// Per-column power-of-two scales of the fixed-point representation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Quant {
    scale: Vec<f64>,
    unscale: Vec<f64>,
}

/// Exponent `e` with `2^(e-1) <= v < 2^e` for a finite `v > 0`.
fn exponent(v: f64) -> i32 {
    (((v.to_bits() >> 52) & 0x7ff) as i32) - 1022
}

impl Quant {
    /// Scales for the `n x d` matrix `x`, from its column maxima (an
    /// order-independent reduction).
    pub(crate) fn new(x: &[f32], n: usize, d: usize, pool: &ThreadPool) -> Self {
        Self::from_colmax(&column_max(x, d, pool), n)
    }

    /// Scales for `n` rows whose columns' largest magnitudes are `colmax`
    /// (the maximum over blocks of each block's [`column_max`]: the same
    /// scales whatever the blocks).
    pub(crate) fn from_colmax(colmax: &[f32], n: usize) -> Self {
        // Magnitudes below 2^bits, so a sum of n of them stays below 2^62.
        let bits = 62 - (usize::BITS - n.max(1).leading_zeros()) as i32;
        let (scale, unscale) = colmax
            .iter()
            .map(|&m| {
                if m > 0.0 && m.is_finite() {
                    let s = bits - exponent(f64::from(m));
                    (2.0_f64.powi(s), 2.0_f64.powi(-s))
                } else {
                    (1.0, 1.0)
                }
            })
            .unzip();
        Self { scale, unscale }
    }

    /// `v` of column `j` in fixed point.
    #[inline(always)]
    fn q(&self, v: f32, j: usize) -> i64 {
        (f64::from(v) * self.scale[j]) as i64
    }
}

/// One row moving between clusters: `old < 0` means it had no cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Move {
    /// Row index.
    pub row: u32,
    /// Previous cluster (`-1`: none).
    pub old: i64,
    /// New cluster.
    pub new: u32,
}

impl Move {
    /// The rows whose label changed from `prev` to `labels` (same length;
    /// every label assigned, `prev` `-1` where a row had none), in row order.
    pub(crate) fn between(labels: &[i64], prev: &[i64]) -> Vec<Move> {
        labels
            .iter()
            .zip(prev)
            .enumerate()
            .filter(|(_, (new, old))| new != old)
            .map(|(i, (&new, &old))| Move {
                row: i as u32,
                old,
                new: new as u32,
            })
            .collect()
    }
}

/// Exact sums and counts of the rows of each of `k` clusters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClusterSums {
    k: usize,
    d: usize,
    sums: Vec<i64>,
    counts: Vec<i64>,
}

impl ClusterSums {
    /// All clusters empty.
    pub(crate) fn new(k: usize, d: usize) -> Self {
        Self {
            k,
            d,
            sums: vec![0; k * d],
            counts: vec![0; k],
        }
    }

    /// Sums (`k x d`, fixed point) and counts from their parts, as
    /// [`ClusterSums::into_parts`] gives them (the caller checks the lengths).
    pub(crate) fn from_parts(k: usize, d: usize, sums: Vec<i64>, counts: Vec<i64>) -> Self {
        Self { k, d, sums, counts }
    }

    /// The sums (`k x d`, fixed point) and the counts.
    pub(crate) fn into_parts(self) -> (Vec<i64>, Vec<i64>) {
        (self.sums, self.counts)
    }

    /// Number of rows in cluster `c`.
    pub(crate) fn count(&self, c: usize) -> i64 {
        self.counts[c]
    }

    /// Applies `moves` (rows of `x`, `n x d`). Work is split by cluster: each
    /// cluster's row of sums is updated by one task.
    pub(crate) fn apply(&mut self, x: &[f32], moves: &[Move], quant: &Quant, pool: &ThreadPool) {
        let (k, d) = (self.k, self.d);
        // Events bucketed by cluster (counting sort): (row, +1 / -1).
        let mut start = vec![0_usize; k + 1];
        for m in moves {
            if m.old >= 0 {
                start[m.old as usize + 1] += 1;
            }
            start[m.new as usize + 1] += 1;
        }
        for c in 0..k {
            start[c + 1] += start[c];
        }
        let mut fill = start.clone();
        let mut events = vec![(0_u32, false); start[k]];
        for m in moves {
            if m.old >= 0 {
                let c = m.old as usize;
                events[fill[c]] = (m.row, false);
                fill[c] += 1;
                self.counts[c] -= 1;
            }
            let c = m.new as usize;
            events[fill[c]] = (m.row, true);
            fill[c] += 1;
            self.counts[c] += 1;
        }
        pool.install(|| {
            self.sums
                .par_chunks_mut(d)
                .enumerate()
                .with_min_len(4)
                .for_each(|(c, sum)| {
                    for &(row, add) in &events[start[c]..start[c + 1]] {
                        let r = row as usize;
                        let xr = &x[r * d..(r + 1) * d];
                        if add {
                            for (j, (s, &v)) in sum.iter_mut().zip(xr).enumerate() {
                                *s = s.wrapping_add(quant.q(v, j));
                            }
                        } else {
                            for (j, (s, &v)) in sum.iter_mut().zip(xr).enumerate() {
                                *s = s.wrapping_sub(quant.q(v, j));
                            }
                        }
                    }
                });
        });
    }

    /// Adds the sums of `other` (e.g. the partial sums of another block of
    /// rows): exact, so the merge order never matters.
    #[cfg(test)]
    pub(crate) fn merge(&mut self, other: &ClusterSums) {
        for (a, b) in self.sums.iter_mut().zip(&other.sums) {
            *a = a.wrapping_add(*b);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// The centroid of cluster `c` into `out`: the mean (Euclidean) or the
    /// unit-normalised sum (cosine). Returns `false`, leaving `out`
    /// untouched, when the cluster is empty or (cosine) its sum is zero.
    pub(crate) fn centroid(
        &self,
        c: usize,
        quant: &Quant,
        metric: Metric,
        out: &mut [f32],
    ) -> bool {
        let n = self.counts[c];
        if n <= 0 {
            return false;
        }
        let d = self.d;
        let sum = &self.sums[c * d..(c + 1) * d];
        let v = sum.iter().zip(&quant.unscale).map(|(&s, &u)| s as f64 * u);
        match metric {
            Metric::Euclidean => {
                let inv = 1.0 / n as f64;
                for (o, x) in out.iter_mut().zip(v) {
                    *o = (x * inv) as f32;
                }
            }
            Metric::Cosine => {
                let norm = v.clone().map(|x| x * x).sum::<f64>().sqrt();
                if norm == 0.0 || !norm.is_finite() {
                    return false;
                }
                let inv = 1.0 / norm;
                for (o, x) in out.iter_mut().zip(v) {
                    *o = (x * inv) as f32;
                }
            }
        }
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::parallel;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// Any split of the rows into blocks, merged in any order, and any
        /// sequence of incremental moves give bit-identical sums.
        #[test]
        fn sums_are_partition_and_order_independent(
            vals in proptest::collection::vec(-1000i32..1000, 6..120),
            split in 0usize..40,
            seed in 0u64..100,
        ) {
            let d = 3;
            let n = vals.len() / d;
            let x: Vec<f32> = vals[..n * d].iter().map(|&v| v as f32 * 0.013 + 1e-3).collect();
            let k = 4;
            let labels: Vec<u32> = (0..n).map(|i| ((i as u64 * 7 + seed) % k as u64) as u32).collect();
            let pool = parallel::pool(Some(2)).unwrap();
            let quant = Quant::new(&x, n, d, &pool);
            let all: Vec<Move> = (0..n).map(|i| Move { row: i as u32, old: -1, new: labels[i] }).collect();
            let mut whole = ClusterSums::new(k, d);
            whole.apply(&x, &all, &quant, &pool);
            let s = split.min(n);
            let mut a = ClusterSums::new(k, d);
            a.apply(&x, &all[s..], &quant, &pool);
            let mut b = ClusterSums::new(k, d);
            b.apply(&x, &all[..s], &quant, &pool);
            a.merge(&b);
            prop_assert_eq!(&a, &whole);
            // Move every row to cluster 0 and back: exactly the original sums.
            let mut inc = whole.clone();
            let to0: Vec<Move> = (0..n).map(|i| Move { row: i as u32, old: i64::from(labels[i]), new: 0 }).collect();
            inc.apply(&x, &to0, &quant, &pool);
            let back: Vec<Move> = (0..n).map(|i| Move { row: i as u32, old: 0, new: labels[i] }).collect();
            inc.apply(&x, &back, &quant, &pool);
            prop_assert_eq!(&inc, &whole);
            // The means are those of an f64 reference.
            let mut out = vec![0.0_f32; d];
            for c in 0..k {
                let members: Vec<usize> = (0..n).filter(|&i| labels[i] as usize == c).collect();
                let ok = whole.centroid(c, &quant, Metric::Euclidean, &mut out);
                prop_assert_eq!(ok, !members.is_empty());
                for j in 0..d {
                    if members.is_empty() { break; }
                    let want = members.iter().map(|&i| f64::from(x[i * d + j])).sum::<f64>() / members.len() as f64;
                    prop_assert!((f64::from(out[j]) - want).abs() <= 1e-6 * (1.0 + want.abs()));
                }
            }
        }
    }
}
