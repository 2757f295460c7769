//! Exact statistics over every pair of members: within a cluster (all
//! unordered pairs) and between two clusters (all cross pairs, the exact
//! single / complete / average linkage).
//!
//! Every value is in the grouping's [`Measure`] (cosine similarity, inner
//! product or Euclidean distance: `measure::Tile` turns each GEMM
//! tile into it). The members of a cluster are contiguous rows, so its pairs
//! are the tiles of a blocked self-product: `BLOCK x BLOCK` tiles on and above
//! the block diagonal, each one single-threaded GEMM followed by a fused scan
//! (count, sum and sum of squares of the deviations from a shift, min, max)
//! while the tile is hot in cache. Diagonal tiles are computed in strips so
//! that little more than their upper triangle is multiplied. Tiles of all
//! clusters form one task list (largest clusters first, for load balance);
//! a giant cluster is just many tiles, so it is spread over all threads and
//! its `n^2` matrix never exists. Each tile's partial statistics are stored
//! at the tile's index and merged per cluster in tile order, so the result
//! is bit-identical for any thread count.
//!
//! The shift is the mean similarity from the identity
//! `sum_{i<j} <x_i, x_j> = (|sum_i x_i|^2 - sum_i |x_i|^2) / 2` (with
//! `|x_i| = 1`; the inner product uses the sum of the squared norms, and
//! Euclidean the root of the mean squared distance `(n sum_i |x_i|^2 -
//! |sum_i x_i|^2) * 2 / (n (n - 1))`), computed in f64 beforehand: the tiles then only accumulate
//! small deviations, which keeps the f32 lane sums accurate and the variance
//! free of cancellation. The reported mean is `shift + mean deviation`, so
//! it does not depend on the shift being exact.

use crate::error::{Error, Result};
use crate::parallel::{self, Control};
use crate::similarity::BLOCK;

use super::clusters::Gathered;
use super::kernel::{run_indexed, Acc};
use super::measure::{Measure, Tile};

/// Rows per strip of a diagonal tile of `w` rows: a strip is multiplied
/// only with the columns from its own first row on, so a diagonal tile costs
/// about `(1 + strip / w) / 2` of a full one: a quarter of the tile, at
/// least 16 rows (smaller GEMMs lose more to packing than they save), at
/// most 256.
fn strip_rows(w: usize) -> usize {
    (w / 4).next_multiple_of(16).clamp(16, 256)
}

/// Exact statistics of the values (cosine similarities, inner products or
/// Euclidean distances: the grouping's measure) of a set of pairs. Every
/// field but `n_pairs` is NaN when there are no pairs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairStats {
    /// Number of pairs.
    pub n_pairs: u64,
    /// Mean similarity.
    pub mean: f64,
    /// Population standard deviation (ddof = 0) of the similarities.
    pub std: f64,
    /// Smallest similarity.
    pub min: f32,
    /// Largest similarity.
    pub max: f32,
}

impl PairStats {
    /// The statistics of a merged partial aggregate whose deviations were
    /// taken around `shift` (as [`pair_sums`] takes them).
    pub fn from_sums(acc: &Acc, shift: f64) -> Self {
        let (mean, std) = acc.mean_std(shift);
        let (min, max) = acc.min_max();
        Self {
            n_pairs: acc.n,
            mean,
            std,
            min,
            max,
        }
    }
}

/// One set of pairs: all unordered pairs of slot `a` (when `a == b`) or all
/// cross pairs of slots `a` and `b`.
#[derive(Debug, Clone, Copy)]
struct Job {
    a: usize,
    b: usize,
    shift: f32,
}

fn n_blocks(n: usize) -> usize {
    n.div_ceil(BLOCK)
}

fn block_range(b: usize, n: usize) -> (usize, usize) {
    (b * BLOCK, ((b + 1) * BLOCK).min(n))
}

/// Runs every job's tiles and returns one merged [`Acc`] per job.
fn run_jobs(
    g: &Gathered,
    jobs: &[Job],
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<Vec<Acc>> {
    let pool = parallel::pool(n_threads)?;
    let cl = &g.clusters;
    let d = g.d;
    // Tasks job by job, so each job's tiles are a contiguous, ordered run.
    let mut tasks: Vec<(u32, u32, u32)> = Vec::new();
    let mut first_task = Vec::with_capacity(jobs.len() + 1);
    for (j, job) in jobs.iter().enumerate() {
        first_task.push(tasks.len());
        let (na, nb) = (n_blocks(cl.size(job.a)), n_blocks(cl.size(job.b)));
        for bi in 0..na {
            let start = if job.a == job.b { bi } else { 0 };
            for bj in start..nb {
                tasks.push((j as u32, bi as u32, bj as u32));
            }
        }
    }
    first_task.push(tasks.len());
    let partials = run_indexed(
        &pool,
        tasks.len(),
        ctl,
        || {
            let tile = Tile::new(g.measure, d);
            (vec![0.0_f32; BLOCK * BLOCK], Vec::new(), Vec::new(), tile)
        },
        |(buf, xa, xb, tile), t| {
            let (j, bi, bj) = tasks[t];
            let job = jobs[j as usize];
            let (i0, i1) = block_range(bi as usize, cl.size(job.a));
            let (j0, j1) = block_range(bj as usize, cl.size(job.b));
            // this tile's rows, gathered (i0..i1 of slot a, j0..j1 of slot b)
            let (oa, ob) = (cl.offset(job.a), cl.offset(job.b));
            g.rows_into(oa + i0, oa + i1, xa);
            let mut acc = Acc::EMPTY;
            if job.a == job.b && bi == bj {
                let strip = strip_rows(i1 - i0);
                for s0 in (0..i1 - i0).step_by(strip) {
                    let s1 = (s0 + strip).min(i1 - i0);
                    let w = i1 - i0 - s0;
                    let (sa, sb) = (&xa[s0 * d..s1 * d], &xa[s0 * d..]);
                    tile.values(sa, s1 - s0, sb, w, buf);
                    for r in 0..s1 - s0 {
                        acc.scan(&buf[r * w + r + 1..(r + 1) * w], job.shift);
                    }
                }
            } else {
                g.rows_into(ob + j0, ob + j1, xb);
                let (ra, rb) = (i1 - i0, j1 - j0);
                tile.values(xa, ra, xb, rb, buf);
                for row in buf[..ra * rb].chunks_exact(rb) {
                    acc.scan(row, job.shift);
                }
            }
            acc
        },
    )?;
    Ok(first_task
        .windows(2)
        .map(|w| {
            let mut total = Acc::EMPTY;
            for p in &partials[w[0]..w[1]] {
                total.merge(p);
            }
            total
        })
        .collect())
}

/// The shift [`intra_stats`] takes a cluster's deviations around: about the
/// mean value of its `n (n - 1) / 2` pairs, from the cluster's sum of rows
/// `sum` (f64, as the kernels read them) and, for the dot and Euclidean
/// measures, the sum of their squared norms `sq` (cosine: unit rows, `sq =
/// n` is used whatever is passed). 0 for fewer than two members. Only the
/// accuracy of the sums depends on it, never the statistics' values.
///
/// ```
/// use simclust_core::metrics::{intra_shift, Measure};
/// // two unit rows at cosine 0.6: |sum|^2 = 2 + 2 * 0.6
/// assert!((intra_shift(Measure::Cosine, 2, &[1.6, 0.8], 0.0) - 0.6).abs() < 1e-6);
/// ```
pub fn intra_shift(measure: Measure, n: u64, sum: &[f64], sq: f64) -> f32 {
    if n < 2 {
        return 0.0;
    }
    let s2: f64 = sum.iter().map(|v| v * v).sum();
    let (n, pairs) = (n as f64, n as f64 * (n as f64 - 1.0));
    match measure {
        // Rows are unit vectors: sum_i |x_i|^2 = n up to rounding, which only
        // moves the shift, never the statistics.
        Measure::Cosine => ((s2 - n) / pairs) as f32,
        // sum_{i<j} <x_i, x_j> = (|sum|^2 - sum |x_i|^2) / 2
        Measure::Dot => ((s2 - sq) / pairs) as f32,
        // sum_{i<j} |x_i - x_j|^2 = n sum |x_i|^2 - |sum|^2; the root of the
        // mean square, an upper bound of the mean distance
        Measure::Euclidean => ((2.0 * (n * sq - s2) / pairs).max(0.0).sqrt()) as f32,
    }
}

/// The partial aggregates of chosen sets of pairs of `g`: for each `(a, b,
/// shift)`, all unordered pairs of slot `a`'s members (`a == b`) or all
/// cross pairs of slots `a` and `b`, their values' deviations summed around
/// `shift`. The very tiles and scans of [`intra_stats`] and [`linkage`]
/// (blocks of `BLOCK` members from each slot's first, diagonal tiles in
/// strips): a distributed plan that cuts a cluster into pieces of whole
/// blocks computes exactly the values of the native run's tiles, and the
/// pieces' partials merge ([`PairSums::merge`](super::PairSums)) into the
/// cluster's aggregate ([`PairStats::from_sums`]). Errors on a slot out of
/// range.
///
/// ```
/// use simclust_core::{metrics::{pair_sums, Gathered, PairStats}, Control, MatRef};
/// let x = [1.0_f32, 0.0, 0.0, 1.0, 1.0, 1.0];
/// let g = Gathered::new(MatRef::new(&x, 3, 2)?, &[0, 0, 1], None)?;
/// let p = pair_sums(&g, &[(0, 0, 0.0), (0, 1, 0.5)], None, &Control::new())?;
/// assert_eq!((p[0].n, p[1].n), (1, 2));
/// assert!((PairStats::from_sums(&p[1], 0.5).mean - 0.70710677).abs() < 1e-6);
/// # Ok::<(), simclust_core::Error>(())
/// ```
pub fn pair_sums(
    g: &Gathered,
    jobs: &[(usize, usize, f32)],
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<Vec<Acc>> {
    let k = g.clusters.k();
    if let Some(&(a, b, _)) = jobs.iter().find(|j| j.0 >= k || j.1 >= k) {
        return Err(Error::Parameter(format!(
            "pair set ({a}, {b}) refers to slot {} but there are only {k} clusters",
            a.max(b)
        )));
    }
    let jobs: Vec<Job> = jobs
        .iter()
        .map(|&(a, b, shift)| Job { a, b, shift })
        .collect();
    run_jobs(g, &jobs, n_threads, ctl)
}

/// Exact all-pairs statistics of every cluster of `g`, in slot order: for
/// slot `c`, the values (in the grouping's measure) of all `n(n-1)/2` unordered pairs of
/// its members. Singletons get `n_pairs = 0` and NaN statistics.
///
/// ```
/// use simclust_core::{metrics::{intra_stats, Gathered}, Control, MatRef};
/// let x = [1.0_f32, 0.0, 0.0, 1.0, 1.0, 1.0, 5.0, 5.0];
/// let g = Gathered::new(MatRef::new(&x, 4, 2)?, &[0, 0, 0, 3], None)?;
/// let s = intra_stats(&g, None, &Control::new())?;
/// assert_eq!(s[0].n_pairs, 3);
/// assert!((s[0].min - 0.0).abs() < 1e-6 && (s[0].max - 0.70710677).abs() < 1e-6);
/// assert_eq!(s[1].n_pairs, 0);
/// # Ok::<(), simclust_core::Error>(())
/// ```
pub fn intra_stats(
    g: &Gathered,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<Vec<PairStats>> {
    let cl = &g.clusters;
    let k = cl.k();
    let pool = parallel::pool(n_threads)?;
    // Exact mean similarity per cluster (the shift), in parallel over clusters.
    let shifts: Vec<f32> = pool.install(|| {
        use rayon::prelude::*;
        (0..k)
            .into_par_iter()
            .map(|c| {
                let n = cl.size(c);
                if n < 2 {
                    return 0.0;
                }
                if g.measure == Measure::Cosine {
                    // unit rows: the squared norms are not needed
                    return intra_shift(g.measure, n as u64, &g.cluster_sum(c), 0.0);
                }
                let (sum, sq) = g.cluster_moments(c);
                intra_shift(g.measure, n as u64, &sum, sq)
            })
            .collect()
    });
    // Largest clusters first (ties by slot) so that the tail of the task
    // list holds only small tiles.
    let mut order: Vec<usize> = (0..k).filter(|&c| cl.size(c) >= 2).collect();
    order.sort_by_key(|&c| std::cmp::Reverse(cl.size(c)));
    let jobs: Vec<Job> = order
        .iter()
        .map(|&c| Job {
            a: c,
            b: c,
            shift: shifts[c],
        })
        .collect();
    let accs = run_jobs(g, &jobs, n_threads, ctl)?;
    let mut out = vec![PairStats::from_sums(&Acc::EMPTY, 0.0); k];
    for (job, acc) in jobs.iter().zip(&accs) {
        out[job.a] = PairStats::from_sums(acc, f64::from(job.shift));
    }
    Ok(out)
}

/// Exact linkage between pairs of clusters: for each `(a, b)` of slots,
/// the statistics of the values (in the grouping's measure) of all `size(a) * size(b)`
/// cross pairs. `max` is the single-linkage, `min` the complete-linkage and
/// `mean` the average-linkage similarity. Errors when a slot is out of
/// range or `a == b` (use [`intra_stats`] for the pairs within a cluster).
pub fn linkage(
    g: &Gathered,
    pairs: &[(usize, usize)],
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<Vec<PairStats>> {
    let cl = &g.clusters;
    let k = cl.k();
    let mut jobs = Vec::with_capacity(pairs.len());
    for (p, &(a, b)) in pairs.iter().enumerate() {
        if a >= k || b >= k {
            return Err(Error::Parameter(format!(
                "cluster pair {p} refers to slot {} but there are only {k} clusters",
                a.max(b)
            )));
        }
        if a == b {
            return Err(Error::Parameter(format!(
                "cluster pair {p} is cluster {} with itself; the pairs within a cluster are intra-cluster statistics",
                cl.ids()[a]
            )));
        }
        let (na, nb) = (cl.size(a) as f64, cl.size(b) as f64);
        let shift = if g.measure == Measure::Cosine {
            let sa = g.cluster_sum(a);
            let sb = g.cluster_sum(b);
            let cross: f64 = sa.iter().zip(&sb).map(|(x, y)| x * y).sum();
            (cross / (na * nb)) as f32
        } else {
            let ((sa, qa), (sb, qb)) = (g.cluster_moments(a), g.cluster_moments(b));
            let cross = sa.iter().zip(&sb).map(|(x, y)| x * y).sum::<f64>() / (na * nb);
            match g.measure {
                Measure::Dot => cross as f32,
                // the root of the mean squared cross distance
                _ => ((qa / na + qb / nb - 2.0 * cross).max(0.0).sqrt()) as f32,
            }
        };
        jobs.push(Job { a, b, shift });
    }
    let accs = run_jobs(g, &jobs, n_threads, ctl)?;
    Ok(jobs
        .iter()
        .zip(&accs)
        .map(|(job, acc)| PairStats::from_sums(acc, f64::from(job.shift)))
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::matrix::MatRef;
    use proptest::prelude::*;

    fn data(n: usize, d: usize, seed: u64) -> Vec<f32> {
        crate::testdata::uniform(n * d, seed, -0.3)
    }

    fn naive(
        xs: &[f32],
        d: usize,
        pairs: impl Iterator<Item = (usize, usize)>,
    ) -> (u64, f64, f64, f64, f64) {
        naive_stats(pairs.map(|(i, j)| {
            (0..d)
                .map(|p| f64::from(xs[i * d + p]) * f64::from(xs[j * d + p]))
                .sum()
        }))
    }

    /// `(n, mean, std, min, max)` of `values`.
    fn naive_stats(values: impl Iterator<Item = f64>) -> (u64, f64, f64, f64, f64) {
        let sims: Vec<f64> = values.collect();
        let n = sims.len() as f64;
        let mean = sims.iter().sum::<f64>() / n;
        let var = sims.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n;
        let mn = sims.iter().copied().fold(f64::INFINITY, f64::min);
        let mx = sims.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (sims.len() as u64, mean, var.sqrt(), mn, mx)
    }

    fn check(st: &PairStats, want: (u64, f64, f64, f64, f64)) {
        assert_eq!(st.n_pairs, want.0);
        assert!(
            (st.mean - want.1).abs() < 2e-6,
            "mean {} vs {}",
            st.mean,
            want.1
        );
        assert!(
            (st.std - want.2).abs() < 2e-6,
            "std {} vs {}",
            st.std,
            want.2
        );
        assert!((f64::from(st.min) - want.3).abs() < 2e-6);
        assert!((f64::from(st.max) - want.4).abs() < 2e-6);
    }

    #[test]
    fn giant_cluster_matches_naive_and_threads_agree() -> Result<()> {
        // One cluster spanning three blocks (diagonal strips and a ragged
        // last block), a few small ones, a singleton and noise.
        let n = 2 * BLOCK + 300 + 40;
        let d = 9;
        let x = data(n, d, 7);
        let mut labels = vec![4_i64; n];
        for (i, l) in labels.iter_mut().enumerate().skip(2 * BLOCK + 300) {
            *l = match i % 4 {
                0 => 10,
                1 => 12,
                2 => -1,
                _ => 7,
            };
        }
        labels[n - 1] = 99;
        let g = Gathered::new(MatRef::new(&x, n, d)?, &labels, Some(2))?;
        let s1 = intra_stats(&g, Some(1), &Control::new())?;
        let s2 = intra_stats(&g, Some(2), &Control::new())?;
        for (a, b) in s1.iter().zip(&s2) {
            assert_eq!(a.n_pairs, b.n_pairs);
            assert_eq!(a.mean.to_bits(), b.mean.to_bits());
            assert_eq!(a.std.to_bits(), b.std.to_bits());
            assert_eq!(a.min.to_bits(), b.min.to_bits());
            assert_eq!(a.max.to_bits(), b.max.to_bits());
        }
        for (c, st) in s1.iter().enumerate() {
            let m = g.clusters.size(c);
            let o = g.clusters.offset(c);
            if m < 2 {
                assert_eq!(st.n_pairs, 0);
                assert!(st.mean.is_nan() && st.min.is_nan());
                continue;
            }
            let want = naive(
                &g.rows(0, g.clusters.n_clustered()),
                d,
                (o..o + m).flat_map(|i| (i + 1..o + m).map(move |j| (i, j))),
            );
            check(st, want);
        }
        Ok(())
    }

    /// `(n, mean, std, min, max)` of the Euclidean distances of `pairs`.
    fn naive_euclidean(
        xs: &[f32],
        d: usize,
        pairs: impl Iterator<Item = (usize, usize)>,
    ) -> (u64, f64, f64, f64, f64) {
        naive_stats(pairs.map(|(i, j)| {
            (0..d)
                .map(|p| (f64::from(xs[i * d + p]) - f64::from(xs[j * d + p])).powi(2))
                .sum::<f64>()
                .sqrt()
        }))
    }

    #[test]
    fn euclidean_giant_cluster_and_linkage_match_naive_and_threads_agree() -> Result<()> {
        // raw rows far from the origin (no normalisation), a duplicated row,
        // a cluster spanning three blocks, small ones, a singleton and noise
        let n = 2 * BLOCK + 300 + 40;
        let d = 11;
        let mut x: Vec<f32> = data(n, d, 9).iter().map(|v| 3.0 * v + 20.0).collect();
        x.copy_within(5 * d..6 * d, 7 * d);
        let mut labels = vec![4_i64; n];
        for (i, l) in labels.iter_mut().enumerate().skip(2 * BLOCK + 300) {
            *l = [10, 12, -1, 7][i % 4];
        }
        labels[n - 1] = 99;
        let g = Gathered::with_measure(MatRef::new(&x, n, d)?, &labels, Measure::Euclidean, None)?;
        let s1 = intra_stats(&g, Some(1), &Control::new())?;
        let s2 = intra_stats(&g, Some(2), &Control::new())?;
        // (Debug prints every float exactly, NaN included)
        assert_eq!(format!("{s1:?}"), format!("{s2:?}"), "thread count changed");
        let xs = g.rows(0, g.clusters.n_clustered());
        assert_eq!(xs[..d], x[..d], "Euclidean rows are not normalised");
        for (c, st) in s1.iter().enumerate() {
            let (o, m) = (g.clusters.offset(c), g.clusters.size(c));
            if m < 2 {
                assert_eq!(st.n_pairs, 0);
                continue;
            }
            let want = naive_euclidean(
                &xs,
                d,
                (o..o + m).flat_map(|i| (i + 1..o + m).map(move |j| (i, j))),
            );
            check(st, want);
        }
        assert_eq!(s1[0].min, 0.0, "the duplicated row is at distance 0");
        let pairs = [(0, 1), (2, 1)];
        let got = linkage(&g, &pairs, Some(2), &Control::new())?;
        assert_eq!(got, linkage(&g, &pairs, Some(1), &Control::new())?);
        let cl = &g.clusters;
        for (st, &(a, b)) in got.iter().zip(&pairs) {
            let (oa, ob, na, nb) = (cl.offset(a), cl.offset(b), cl.size(a), cl.size(b));
            let want = naive_euclidean(
                &xs,
                d,
                (oa..oa + na).flat_map(|i| (ob..ob + nb).map(move |j| (i, j))),
            );
            check(st, want);
        }
        Ok(())
    }

    #[test]
    fn pieces_merge_into_the_native_statistics() -> Result<()> {
        // a cluster of three blocks and a ragged end, cut into pieces of two
        // blocks: the pieces' pair sets (each piece, each pair of pieces)
        // merged in a fixed order give the cluster's statistics
        let (n, d) = (3 * BLOCK + 77, 6);
        let x = data(n, d, 5);
        let g = Gathered::new(MatRef::new(&x, n, d)?, &vec![0_i64; n], None)?;
        let want = intra_stats(&g, Some(2), &Control::new())?[0];
        let (sum, sq) = g.cluster_moments(0);
        let shift = intra_shift(g.measure, n as u64, &sum, sq);
        let xs = g.rows(0, n);
        let piece = 2 * BLOCK;
        let mut total = Acc::EMPTY;
        for (a0, b0) in [(0, 0), (0, piece), (piece, piece)] {
            let (a1, b1) = ((a0 + piece).min(n), (b0 + piece).min(n));
            let rows: Vec<f32> = if a0 == b0 {
                xs[a0 * d..a1 * d].to_vec()
            } else {
                [&xs[a0 * d..a1 * d], &xs[b0 * d..b1 * d]].concat()
            };
            let m = rows.len() / d;
            let labels: Vec<i64> = (0..m).map(|i| i64::from(i >= a1 - a0)).collect();
            let gp = Gathered::new(MatRef::new(&rows, m, d)?, &labels, None)?;
            let job = if a0 == b0 {
                (0, 0, shift)
            } else {
                (0, 1, shift)
            };
            total.merge(&pair_sums(&gp, &[job], Some(1), &Control::new())?[0]);
        }
        let got = PairStats::from_sums(&total, f64::from(shift));
        assert_eq!(got.n_pairs, want.n_pairs);
        assert_eq!((got.min, got.max), (want.min, want.max));
        assert!((got.mean - want.mean).abs() < 1e-12, "{got:?} {want:?}");
        assert!((got.std - want.std).abs() < 1e-9, "{got:?} {want:?}");
        assert!(pair_sums(&g, &[(0, 1, 0.0)], None, &Control::new()).is_err());
        Ok(())
    }

    #[test]
    fn linkage_matches_naive() -> Result<()> {
        let n = BLOCK + 200;
        let d = 5;
        let x = data(n, d, 3);
        let labels: Vec<i64> = (0..n)
            .map(|i| {
                if i < BLOCK + 50 {
                    0
                } else {
                    2 + (i % 2) as i64
                }
            })
            .collect();
        let g = Gathered::new(MatRef::new(&x, n, d)?, &labels, None)?;
        let out = linkage(&g, &[(0, 1), (2, 1)], Some(2), &Control::new())?;
        let cl = &g.clusters;
        for (st, &(a, b)) in out.iter().zip(&[(0, 1), (2, 1)]) {
            let (oa, ob) = (cl.offset(a), cl.offset(b));
            let (na, nb) = (cl.size(a), cl.size(b));
            check(
                st,
                naive(
                    &g.rows(0, cl.n_clustered()),
                    d,
                    (oa..oa + na).flat_map(|i| (ob..ob + nb).map(move |j| (i, j))),
                ),
            );
        }
        assert!(linkage(&g, &[(1, 1)], None, &Control::new()).is_err());
        assert!(linkage(&g, &[(0, 3)], None, &Control::new()).is_err());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn random_labellings_match_naive(
            seed in 0_u64..1000,
            n in 1_usize..300,
            d in 1_usize..20,
            k in 1_i64..12,
        ) {
            let x = data(n, d, seed);
            let labels: Vec<i64> = (0..n).map(|i| ((i as u64 * 2654435761 + seed) % (k as u64 + 1)) as i64 - 1).collect();
            let g = match Gathered::new(MatRef::new(&x, n, d).unwrap(), &labels, Some(2)) {
                Ok(g) => g,
                Err(Error::ZeroNorm { .. }) => return Ok(()),
                Err(e) => panic!("{e}"),
            };
            let s = intra_stats(&g, Some(2), &Control::new()).unwrap();
            for (c, st) in s.iter().enumerate() {
                let m = g.clusters.size(c);
                let o = g.clusters.offset(c);
                if m >= 2 {
                    check(st, naive(&g.rows(0, g.clusters.n_clustered()), d, (o..o + m).flat_map(|i| (i + 1..o + m).map(move |j| (i, j)))));
                } else {
                    prop_assert_eq!(st.n_pairs, 0);
                }
            }
        }
    }
}
