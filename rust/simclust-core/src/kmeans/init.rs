//! Seeding: greedy k-means++ (on a uniform sample of the rows when there are
//! many) and uniformly random rows.

use std::borrow::Cow;

use rayon::prelude::*;
use rayon::ThreadPool;

use crate::error::Result;
use crate::parallel::Control;
use crate::tiles::gemm_abt;

use super::kernels::{kpp_eval, sq_norms, KppIn};
use super::rng::SplitMix64;
use super::Data;

/// k-means++ runs on a uniform sample of `KPP_SAMPLE_PER_CLUSTER * k` rows
/// (at least [`KPP_SAMPLE_MIN`]) when the data has more rows than that.
pub const KPP_SAMPLE_PER_CLUSTER: usize = 32;
/// Smallest k-means++ sample.
pub const KPP_SAMPLE_MIN: usize = 8192;
/// Sample rows per parallel chunk of a k-means++ step.
const KPP_CHUNK: usize = 1024;

/// Number of rows k-means++ looks at for `k` clusters among `n` rows.
pub(crate) fn kpp_sample_size(n: usize, k: usize) -> usize {
    n.min(KPP_SAMPLE_MIN.max(KPP_SAMPLE_PER_CLUSTER.saturating_mul(k)))
}

/// `k` distinct rows chosen uniformly at random, as a `k x d` matrix.
pub(crate) fn random_rows(data: &Data, k: usize, rng: &mut SplitMix64) -> Vec<f32> {
    let d = data.d;
    let mut out = Vec::with_capacity(k * d);
    for i in rng.sample_distinct(data.n, k) {
        out.extend_from_slice(data.row(i));
    }
    out
}

/// Greedy k-means++ (Arthur and Vassilvitskii 2007, with `2 + ln k` local
/// trials per step as in scikit-learn): the first center is a uniform row;
/// each next one is the best, by resulting potential, of `2 + ln k`
/// candidates drawn with probability proportional to the squared distance
/// to the closest center so far. Runs on a uniform sample of
/// [`kpp_sample_size`] rows. Candidates that the triangle inequality proves
/// useless for a row are not computed for it. When every sampled row
/// already coincides with a center (fewer distinct rows than `k`), the next
/// center is a uniform sampled row (a duplicate).
pub(crate) fn kmeans_plus_plus(
    data: &Data,
    k: usize,
    rng: &mut SplitMix64,
    pool: &ThreadPool,
    ctl: &Control,
) -> Result<Vec<f32>> {
    let d = data.d;
    // The sample, contiguous, rows in ascending order (for locality).
    let (xs, nx2): (Cow<'_, [f32]>, Cow<'_, [f32]>) = match kpp_sample(data.n, k, rng) {
        None => (Cow::Borrowed(&data.x), Cow::Borrowed(&data.nx2)),
        Some(rows) => {
            let mut xs = Vec::with_capacity(rows.len() * d);
            let mut nx2 = Vec::with_capacity(rows.len());
            for &i in &rows {
                xs.extend_from_slice(data.row(i));
                nx2.push(data.nx2[i]);
            }
            (Cow::Owned(xs), Cow::Owned(nx2))
        }
    };
    kmeans_plus_plus_on(&xs, &nx2, d, k, rng, pool, ctl)
}

/// The rows k-means++ runs on among `n` (ascending), drawn from `rng`;
/// `None`: all of them.
pub(crate) fn kpp_sample(n: usize, k: usize, rng: &mut SplitMix64) -> Option<Vec<usize>> {
    let m = kpp_sample_size(n, k);
    if m == n {
        return None;
    }
    let mut rows = rng.sample_distinct(n, m);
    rows.sort_unstable();
    Some(rows)
}

/// Greedy k-means++ on the `m` sampled rows `xs` (`m x d`, with their
/// squared norms `nx2`), `rng` just past the sample's draw.
pub(crate) fn kmeans_plus_plus_on(
    xs: &[f32],
    nx2: &[f32],
    d: usize,
    k: usize,
    rng: &mut SplitMix64,
    pool: &ThreadPool,
    ctl: &Control,
) -> Result<Vec<f32>> {
    let m = nx2.len();
    let trials = 2 + (k as f64).ln().floor() as usize;

    let mut centers = vec![0.0_f32; k * d];
    let mut cn2 = vec![0.0_f32; k];
    let first = rng.below(m);
    centers[..d].copy_from_slice(&xs[first * d..(first + 1) * d]);
    cn2[0] = nx2[first];
    let mut owner = vec![0_u32; m];
    let mut d2 = vec![0.0_f32; m];
    {
        let c0 = &centers[..d];
        pool.install(|| {
            d2.par_chunks_mut(KPP_CHUNK)
                .enumerate()
                .for_each(|(ci, out)| {
                    let i0 = ci * KPP_CHUNK;
                    for (r, o) in out.iter_mut().enumerate() {
                        let i = i0 + r;
                        *o = super::kernels::sq_dist(&xs[i * d..(i + 1) * d], c0);
                    }
                });
        });
    }

    let mut prefix = vec![0.0_f64; m];
    let mut cand_idx = vec![0_usize; trials];
    let mut cands = vec![0.0_f32; trials * d];
    let mut ccn2 = vec![0.0_f32; trials];
    let mut cc2 = vec![0.0_f32; trials * k];
    let mut cache = vec![0.0_f32; m * trials];
    for step in 1..k {
        ctl.check()?;
        // Draw the candidates with probability proportional to d2.
        let mut pot = 0.0_f64;
        for (p, &v) in prefix.iter_mut().zip(&d2) {
            pot += f64::from(v);
            *p = pot;
        }
        for c in cand_idx.iter_mut() {
            *c = if pot > 0.0 {
                let u = rng.next_f64() * pot;
                prefix.partition_point(|&p| p <= u).min(m - 1)
            } else {
                rng.below(m)
            };
        }
        for (t, &i) in cand_idx.iter().enumerate() {
            cands[t * d..(t + 1) * d].copy_from_slice(&xs[i * d..(i + 1) * d]);
        }
        sq_norms(&cands, d, &mut ccn2);
        // Candidate-to-center squared distances, for the pruning test.
        let nc = step;
        gemm_abt(&cands, trials, &centers[..nc * d], nc, d, &mut cc2);
        for t in 0..trials {
            for j in 0..nc {
                let v = &mut cc2[t * nc + j];
                *v = (ccn2[t] + cn2[j] - 2.0 * *v).max(0.0);
            }
        }
        // Gains of each candidate, per chunk, summed in chunk order.
        let inp = |i0: usize, i1: usize| KppIn {
            x: &xs[i0 * d..i1 * d],
            d,
            nx2: &nx2[i0..i1],
            d2: &d2[i0..i1],
            owner: &owner[i0..i1],
            cands: &cands,
            cn2: &ccn2,
            cc2: &cc2[..trials * nc],
            nc,
        };
        let partial: Vec<Vec<f64>> = pool.install(|| {
            cache
                .par_chunks_mut(KPP_CHUNK * trials)
                .enumerate()
                .map(|(ci, slots)| {
                    let i0 = ci * KPP_CHUNK;
                    let i1 = (i0 + KPP_CHUNK).min(m);
                    let mut gains = vec![0.0_f64; trials];
                    kpp_eval(inp(i0, i1), slots, &mut gains);
                    gains
                })
                .collect()
        });
        let mut gains = vec![0.0_f64; trials];
        for g in &partial {
            for (a, b) in gains.iter_mut().zip(g) {
                *a += b;
            }
        }
        // Best candidate: largest decrease of the potential, first on ties.
        let mut best = 0;
        for (t, &g) in gains.iter().enumerate() {
            if g > gains[best] {
                best = t;
            }
        }
        centers[step * d..(step + 1) * d].copy_from_slice(&cands[best * d..(best + 1) * d]);
        cn2[step] = ccn2[best];
        for (i, (dd, own)) in d2.iter_mut().zip(owner.iter_mut()).enumerate() {
            let v = cache[i * trials + best];
            if v < *dd {
                *dd = v;
                *own = step as u32;
            }
        }
    }
    Ok(centers)
}
