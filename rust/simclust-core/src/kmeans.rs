//! K-means clustering: spherical (cosine) and Euclidean, seeded, and
//! bit-identical for any thread count.
//!
//! * **Metrics.** [`Metric::Cosine`] is spherical k-means: rows and
//!   centroids are unit-normalised and a row goes to the centroid of highest
//!   cosine similarity; a centroid is the normalised sum of its rows.
//!   [`Metric::Euclidean`] is classic k-means on squared L2 distances; a
//!   centroid is the mean of its rows. Euclidean data is centred (the column
//!   means are subtracted, then added back to the centroids) so that the
//!   GEMM expansion `|x|² - 2 x·c + |c|²` keeps its precision.
//! * **Objective** (what [`KMeansResult::objective`] holds): Euclidean, the
//!   sum of squared distances of the rows to their centroids (scikit-learn's
//!   `inertia_`); cosine, the sum of cosine distances `1 - cos(x, c)` (equal
//!   to half the sum of squared distances between the unit vectors). Lower is
//!   better for both.
//! * **Initialisation.** Greedy k-means++ ([`Init::KMeansPlusPlus`], `2 + ln
//!   k` candidates per step, on a uniform sample of `32 k` rows when there
//!   are more), `k` distinct uniformly random rows ([`Init::Random`]), or
//!   explicit centroids ([`Init::Centroids`]; `n_init` is then 1).
//! * **Lloyd iterations.** The assignment step is a blocked GEMM of rows
//!   against all centroids with the arg-max fused into the tile scan. After
//!   the first iteration most rows skip it: each row keeps lower bounds on
//!   its distance to its 8 runner-up centroids and one on its distance to
//!   all the others, lowered by the centroids' drifts after each update
//!   (the few centroids that jumped farthest are measured exactly instead,
//!   so that they do not ruin every row's bound). A row whose exact distance
//!   to its centroid is below every bound keeps its label; one that can
//!   only move to a runner-up is settled by 8 exact distances; only the
//!   others are gathered into GEMM tiles. The update step keeps exact
//!   fixed-point cluster sums (see `sums`), updated from the rows whose
//!   label changed.
//! * **Stopping.** When no label changes (converged), when the objective's
//!   relative decrease `(prev - cur) / prev` is at most `tol` (if `tol > 0`),
//!   or after `max_iter` iterations. Unless converged, a last assignment step
//!   makes the labels those of the final centroids (as scikit-learn does).
//! * **Empty clusters** are re-seeded after an assignment step: each takes
//!   the row farthest from its centroid (ties: lowest index) among rows whose
//!   cluster keeps at least one other member and whose distance is positive.
//!   [`KMeansResult::n_reseeded`] counts them. With fewer distinct rows (or
//!   directions, under cosine) than clusters there are not enough such rows:
//!   some clusters stay empty (no row has their label; their centroid stays
//!   where seeding put it, a duplicate of another centroid) and
//!   [`KMeansResult::n_empty`] reports how many.
//! * **Determinism.** Blocks have fixed sizes, every floating-point
//!   reduction runs in a fixed order and the cluster sums are exact, so the
//!   same input, parameters and `random_state` give bit-identical labels and
//!   centroids for any thread count.
//!
//! ```
//! use simclust_core::kmeans::{kmeans, KMeansParams, Metric};
//! use simclust_core::{Control, MatRef};
//! let x = [1.0_f32, 0.1, 0.9, 0.0, 0.0, 1.0, 0.1, 0.8];
//! let mut p = KMeansParams::new(2);
//! p.metric = Metric::Euclidean;
//! let fit = kmeans(MatRef::new(&x, 4, 2)?, &p, &Control::new())?;
//! assert_eq!(fit.labels[0], fit.labels[1]);
//! assert_ne!(fit.labels[0], fit.labels[2]);
//! # Ok::<(), simclust_core::Error>(())
//! ```

pub mod blocks;
mod init;
mod kernels;
pub(crate) mod rng;
mod sums;

use std::str::FromStr;

use rayon::prelude::*;
use rayon::ThreadPool;

use crate::error::{Error, Result};
use crate::matrix::{check_same_cols, MatRef};
use crate::parallel::{self, Control};
use crate::similarity::{check_non_empty, check_rows_fit_u32, normalize_rows};
use crate::tiles::gemm_abt;

use kernels::{
    screen, sq_dist, sq_norms, top_tile, RowsMut, ScreenIn, TopScores, EMPTY_TOP, KEEP, TRACK,
};
use rng::SplitMix64;
use sums::{ClusterSums, Move, Quant};

pub use init::{KPP_SAMPLE_MIN, KPP_SAMPLE_PER_CLUSTER};

/// Rows per block of the screening pass.
const SCREEN_ROWS: usize = 2048;
/// Most gathered rows per GEMM tile of the assignment step.
const GATHER_ROWS: usize = 256;
/// Centroids per GEMM tile of the assignment step.
const COL_BLOCK: usize = 512;
/// Rows per parallel chunk of the element-wise passes.
const CHUNK_ROWS: usize = 4096;

/// The geometry k-means works in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Spherical k-means on unit-normalised rows (cosine similarity).
    Cosine,
    /// Classic k-means on squared Euclidean distances.
    Euclidean,
}

impl Metric {
    /// The name accepted by [`FromStr`].
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Euclidean => "euclidean",
        }
    }
}

impl FromStr for Metric {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cosine" => Ok(Metric::Cosine),
            "euclidean" => Ok(Metric::Euclidean),
            _ => Err(Error::Parameter(format!(
                "metric must be \"cosine\" or \"euclidean\", got {s:?}"
            ))),
        }
    }
}

/// How the first centroids are chosen.
#[derive(Debug, Clone, Copy)]
pub enum Init<'a> {
    /// Greedy k-means++ (the default).
    KMeansPlusPlus,
    /// `k` distinct rows chosen uniformly at random.
    Random,
    /// These `k x D` centroids (in the input's coordinates; normalised under
    /// cosine).
    Centroids(MatRef<'a>),
}

impl Init<'static> {
    /// `"k-means++"` or `"random"`.
    pub fn from_name(s: &str) -> Result<Self> {
        match s {
            "k-means++" => Ok(Init::KMeansPlusPlus),
            "random" => Ok(Init::Random),
            _ => Err(Error::Parameter(format!(
                "init must be \"k-means++\", \"random\" or a (n_clusters, D) array of centroids, got {s:?}"
            ))),
        }
    }
}

/// Default relative objective decrease at which Lloyd iterations stop:
/// `1e-6`. At `1e-4` a fit stopped after about a third of the iterations
/// scikit-learn runs, 0.2-1 % above its objective; at `1e-6` it matches or
/// beats it (30k x 128, K = 300: 3032.5 vs 3033.3, 33 iterations, 0.5 s vs
/// 36 s).
pub const DEFAULT_TOL: f64 = 1e-6;

/// Parameters of [`kmeans`]; [`KMeansParams::new`] gives the defaults.
#[derive(Debug, Clone, Copy)]
pub struct KMeansParams<'a> {
    /// Number of clusters `k`, `1 <= k <= N`.
    pub n_clusters: usize,
    /// Cosine (default) or Euclidean.
    pub metric: Metric,
    /// Seeding method (default k-means++).
    pub init: Init<'a>,
    /// Independent seedings; the run with the lowest objective wins
    /// (default 1; ignored with explicit centroids).
    pub n_init: usize,
    /// Maximum Lloyd iterations per run (default 100).
    pub max_iter: usize,
    /// Stop when the objective's relative decrease is at most `tol`
    /// (default [`DEFAULT_TOL`]; 0 iterates until no label changes or
    /// `max_iter`).
    pub tol: f64,
    /// Seed of the random number generator (default 0).
    pub random_state: u64,
    /// Threads (`None`: `SIMCLUST_NUM_THREADS`, else all cores).
    pub n_threads: Option<usize>,
}

impl KMeansParams<'static> {
    /// The defaults for `n_clusters` clusters.
    pub fn new(n_clusters: usize) -> Self {
        Self {
            n_clusters,
            metric: Metric::Cosine,
            init: Init::KMeansPlusPlus,
            n_init: 1,
            max_iter: 100,
            tol: DEFAULT_TOL,
            random_state: 0,
            n_threads: None,
        }
    }
}

/// The result of [`kmeans`].
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansResult {
    /// Cluster of each row, `0..k`.
    pub labels: Vec<i64>,
    /// Centroids, `k x D` row-major, in the input's coordinates (unit norm
    /// under cosine).
    pub centroids: Vec<f32>,
    /// Number of clusters `k`.
    pub n_clusters: usize,
    /// Dimension `D`.
    pub dim: usize,
    /// The objective of the returned labels and centroids (see the module
    /// documentation: squared distances, or cosine distances `1 - cos`).
    pub objective: f64,
    /// Lloyd iterations of the winning run.
    pub n_iter: usize,
    /// Whether the winning run stopped because no label changed.
    pub converged: bool,
    /// Empty clusters re-seeded during the winning run.
    pub n_reseeded: usize,
    /// Clusters with no row in the final labels.
    pub n_empty: usize,
}

/// The result of [`assign`].
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// Closest centroid of each row (lowest index on ties).
    pub labels: Vec<i64>,
    /// The objective of these labels (as in [`KMeansResult::objective`]).
    pub objective: f64,
}

/// The rows as k-means sees them: unit-normalised (cosine) or centred
/// (Euclidean), with their squared norms.
#[derive(Debug)]
pub(crate) struct Data {
    pub(crate) x: Vec<f32>,
    pub(crate) n: usize,
    pub(crate) d: usize,
    pub(crate) nx2: Vec<f32>,
    metric: Metric,
    /// Column means subtracted from the rows (Euclidean); empty for cosine.
    offset: Vec<f64>,
    /// Power of two the centred rows are multiplied by (Euclidean), so that
    /// squared distances stay far from float32 overflow and underflow; 1
    /// for data of ordinary magnitude. Exact: it changes no bit of the
    /// result beyond the scale, which outputs undo.
    scale: f64,
}

impl Data {
    fn prepare(
        x: MatRef<'_>,
        metric: Metric,
        n_threads: Option<usize>,
        pool: &ThreadPool,
    ) -> Result<Self> {
        check_shape(&x, "X")?;
        let (n, d) = (x.n_rows(), x.n_cols());
        let (xs, offset, scale) = match metric {
            Metric::Cosine => (normalize_rows(x, "X", n_threads)?, Vec::new(), 1.0),
            Metric::Euclidean => {
                check_finite(&x, "X", pool)?;
                let mean = column_means(&x, pool);
                let scale = magnitude_scale(&x, &mean, pool);
                let mut xs = vec![0.0_f32; n * d];
                pool.install(|| {
                    xs.par_chunks_mut(CHUNK_ROWS * d)
                        .zip(x.as_slice().par_chunks(CHUNK_ROWS * d))
                        .for_each(|(o, src)| {
                            for (orow, srow) in o.chunks_exact_mut(d).zip(src.chunks_exact(d)) {
                                for ((ov, &sv), &m) in orow.iter_mut().zip(srow).zip(&mean) {
                                    *ov = ((f64::from(sv) - m) * scale) as f32;
                                }
                            }
                        });
                });
                (xs, mean, scale)
            }
        };
        Ok(Self::with_norms(xs, d, metric, offset, scale, pool))
    }

    /// The rows `xs` (`d` columns, as k-means sees them) with their squared norms.
    fn with_norms(
        xs: Vec<f32>,
        d: usize,
        metric: Metric,
        offset: Vec<f64>,
        scale: f64,
        pool: &ThreadPool,
    ) -> Self {
        let n = xs.len() / d.max(1);
        let mut nx2 = vec![0.0_f32; n];
        pool.install(|| {
            nx2.par_chunks_mut(CHUNK_ROWS)
                .zip(xs.par_chunks(CHUNK_ROWS * d))
                .for_each(|(o, rows)| sq_norms(rows, d, o));
        });
        Self {
            x: xs,
            n,
            d,
            nx2,
            metric,
            offset,
            scale,
        }
    }

    /// Rows that are unit rows already (the output of `normalize_rows`, which
    /// returns unit rows unchanged): what [`Data::prepare`] gives for them
    /// under cosine, without the normalising pass. Not validated.
    pub(crate) fn from_unit(x: MatRef<'_>, pool: &ThreadPool) -> Result<Self> {
        check_shape(&x, "X")?;
        let xs = x.as_slice().to_vec();
        Ok(Self::with_norms(
            xs,
            x.n_cols(),
            Metric::Cosine,
            Vec::new(),
            1.0,
            pool,
        ))
    }

    pub(crate) fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.d..(i + 1) * self.d]
    }

    /// User centroids in this data's coordinates (validated).
    fn prepare_centroids(
        &self,
        c: MatRef<'_>,
        what: &'static str,
        n_threads: Option<usize>,
        pool: &ThreadPool,
    ) -> Result<Vec<f32>> {
        match self.metric {
            Metric::Cosine => normalize_rows(c, what, n_threads),
            Metric::Euclidean => {
                check_finite(&c, what, pool)?;
                Ok(c.as_slice()
                    .chunks_exact(self.d)
                    .flat_map(|row| {
                        row.iter()
                            .zip(&self.offset)
                            .map(|(&v, &m)| ((f64::from(v) - m) * self.scale) as f32)
                    })
                    .collect())
            }
        }
    }

    /// Centroids back in the input's coordinates.
    fn output_centroids(&self, c: &[f32]) -> Vec<f32> {
        match self.metric {
            Metric::Cosine => c.to_vec(),
            Metric::Euclidean => c
                .chunks_exact(self.d)
                .flat_map(|row| {
                    row.iter()
                        .zip(&self.offset)
                        .map(|(&v, &m)| (f64::from(v) / self.scale + m) as f32)
                })
                .collect(),
        }
    }

    /// The reported objective from a sum of squared distances.
    fn objective(&self, sum_d2: f64) -> f64 {
        match self.metric {
            Metric::Cosine => 0.5 * sum_d2,
            Metric::Euclidean => sum_d2 / (self.scale * self.scale),
        }
    }
}

/// The largest centred magnitude kept as it is; beyond it (or below its
/// inverse) the rows are rescaled by a power of two. `2^40` squared and
/// summed over thousands of dimensions stays far below `f32::MAX`.
const MAX_MAGNITUDE: f64 = (1u64 << 40) as f64;

/// The power of two that brings the largest `|x - mean|` to about 1 when it
/// is above [`MAX_MAGNITUDE`] or below its inverse (else 1).
fn magnitude_scale(x: &MatRef<'_>, mean: &[f64], pool: &ThreadPool) -> f64 {
    let d = x.n_cols();
    let peak = pool.install(|| {
        x.as_slice()
            .par_chunks(CHUNK_ROWS * d)
            .map(|chunk| {
                chunk.chunks_exact(d).fold(0.0_f64, |acc, row| {
                    row.iter()
                        .zip(mean)
                        .fold(acc, |a, (&v, &m)| a.max((f64::from(v) - m).abs()))
                })
            })
            .reduce(|| 0.0, f64::max)
    });
    if peak == 0.0 || (1.0 / MAX_MAGNITUDE..=MAX_MAGNITUDE).contains(&peak) {
        return 1.0;
    }
    2.0_f64.powi(-peak.log2().ceil() as i32)
}

fn check_shape(x: &MatRef<'_>, what: &str) -> Result<()> {
    check_non_empty(x, what)?;
    check_rows_fit_u32(x, what)
}

/// [`Error::NonFinite`] listing every row of `x` with NaN or ±Inf.
fn check_finite(x: &MatRef<'_>, what: &'static str, pool: &ThreadPool) -> Result<()> {
    let d = x.n_cols();
    let bad: Vec<Vec<usize>> = pool.install(|| {
        x.as_slice()
            .par_chunks(CHUNK_ROWS * d)
            .enumerate()
            .map(|(c, chunk)| {
                chunk
                    .chunks_exact(d)
                    .enumerate()
                    .filter(|(_, row)| !row.iter().all(|v| v.is_finite()))
                    .map(|(r, _)| c * CHUNK_ROWS + r)
                    .collect()
            })
            .collect()
    });
    let rows: Vec<usize> = bad.into_iter().flatten().collect();
    if rows.is_empty() {
        Ok(())
    } else {
        Err(Error::NonFinite { what, rows })
    }
}

/// Column means in `f64`, from per-chunk partial sums added in chunk order.
fn column_means(x: &MatRef<'_>, pool: &ThreadPool) -> Vec<f64> {
    let d = x.n_cols();
    let partial: Vec<Vec<f64>> = pool.install(|| {
        x.as_slice()
            .par_chunks(CHUNK_ROWS * d)
            .map(|chunk| {
                let mut s = vec![0.0_f64; d];
                for row in chunk.chunks_exact(d) {
                    for (a, &v) in s.iter_mut().zip(row) {
                        *a += f64::from(v);
                    }
                }
                s
            })
            .collect()
    });
    let mut mean = vec![0.0_f64; d];
    for p in &partial {
        for (a, b) in mean.iter_mut().zip(p) {
            *a += b;
        }
    }
    let inv = 1.0 / x.n_rows() as f64;
    mean.iter_mut().for_each(|m| *m *= inv);
    mean
}

/// Centroids with their GEMM offsets `h = |c|² / 2` and the largest `|c|²`.
#[derive(Debug, Clone)]
struct Model {
    c: Vec<f32>,
    h: Vec<f32>,
    cmax2: f32,
}

impl Model {
    fn new(c: Vec<f32>, d: usize) -> Self {
        let mut m = Self {
            h: vec![0.0; c.len() / d],
            c,
            cmax2: 0.0,
        };
        m.refresh_norms(d);
        m
    }

    fn refresh_norms(&mut self, d: usize) {
        let mut cmax2 = 0.0_f32;
        for (h, row) in self.h.iter_mut().zip(self.c.chunks_exact(d)) {
            let n2: f64 = row.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
            *h = (0.5 * n2) as f32;
            cmax2 = cmax2.max(n2 as f32);
        }
        self.cmax2 = cmax2;
    }
}

/// Rows of a span: the assignment step's gathered rows share GEMM tiles only
/// within a span, the bounds update runs a span at a time and the objective
/// is summed a span at a time, so a block of rows that starts on a span
/// boundary gets bit for bit the values it gets inside a larger run (the
/// distributed k-means, `blocks`).
pub(crate) const SPAN: usize = CHUNK_ROWS;

/// The squared distances summed per [`SPAN`] of rows, each in row order.
pub(crate) fn d2_chunk_sums(d2: &[f32]) -> Vec<f64> {
    d2.chunks(SPAN)
        .map(|c| c.iter().fold(0.0_f64, |a, &v| a + f64::from(v)))
        .collect()
}

/// The span sums of [`d2_chunk_sums`] added in order: the objective's sum of
/// squared distances.
pub(crate) fn sum_chunks(chunks: &[f64]) -> f64 {
    chunks.iter().fold(0.0_f64, |a, &v| a + v)
}

/// Per-row state of the assignment step.
#[derive(Debug, Clone)]
struct Assign {
    labels: Vec<i64>,
    /// Exact squared distance of each row to its centroid.
    d2: Vec<f32>,
    /// Lower bound on each row's distance to every centroid that is neither
    /// its own nor tracked.
    lb_rest: Vec<f32>,
    /// The [`TRACK`] runner-up centroids of each row (`u32::MAX`: none).
    cand: Vec<u32>,
    /// Lower bound on each row's distance to each tracked centroid.
    lb_cand: Vec<f32>,
}

impl Assign {
    fn new(n: usize) -> Self {
        Self {
            labels: vec![-1; n],
            d2: vec![0.0; n],
            lb_rest: vec![0.0; n],
            cand: vec![u32::MAX; n * TRACK],
            lb_cand: vec![0.0; n * TRACK],
        }
    }

    /// Sum of the squared distances: see [`d2_chunk_sums`] and [`sum_chunks`].
    fn sum_d2(&self) -> f64 {
        sum_chunks(&d2_chunk_sums(&self.d2))
    }

    /// Forgets row `i`'s bounds (it will be searched in full).
    fn reset_bounds(&mut self, i: usize) {
        self.lb_rest[i] = 0.0;
        self.lb_cand[i * TRACK..(i + 1) * TRACK].fill(0.0);
    }
}

/// One assignment step: every row's closest centroid, its exact squared
/// distance and its bounds. With `full`, every row is searched; otherwise
/// the screening pass settles the rows whose bounds prove their label.
/// Returns the number of rows searched against all centroids.
fn assign_step(
    data: &Data,
    model: &Model,
    st: &mut Assign,
    full: bool,
    pool: &ThreadPool,
    ctl: &Control,
) -> Result<usize> {
    let (n, d) = (data.n, data.d);
    let k = model.h.len();
    // The rows to search in full, per span of SPAN rows.
    let spans: Vec<Vec<u32>> = if full {
        (0..n)
            .step_by(SPAN)
            .map(|s| (s as u32..(s + SPAN).min(n) as u32).collect())
            .collect()
    } else {
        let lists: Vec<Vec<u32>> = pool.install(|| {
            st.labels
                .par_chunks_mut(SCREEN_ROWS)
                .zip(st.d2.par_chunks_mut(SCREEN_ROWS))
                .zip(st.lb_rest.par_chunks_mut(SCREEN_ROWS))
                .zip(st.cand.par_chunks_mut(SCREEN_ROWS * TRACK))
                .zip(st.lb_cand.par_chunks_mut(SCREEN_ROWS * TRACK))
                .enumerate()
                .map(|(b, ((((labels, d2), lb_rest), cand), lb_cand))| {
                    let i0 = b * SCREEN_ROWS;
                    let i1 = i0 + labels.len();
                    let mut g = Vec::new();
                    screen(
                        ScreenIn {
                            x: &data.x[i0 * d..i1 * d],
                            d,
                            nx2: &data.nx2[i0..i1],
                            c: &model.c,
                            cmax2: model.cmax2,
                            first: i0,
                        },
                        RowsMut {
                            labels,
                            d2,
                            lb_rest,
                            cand,
                            lb_cand,
                        },
                        &mut g,
                    );
                    g
                })
                .collect()
        });
        lists
            .chunks(SPAN / SCREEN_ROWS)
            .map(|c| c.concat())
            .collect()
    };
    // Full search of the gathered rows, in tiles of at most GATHER_ROWS rows
    // of one span: a row's tile depends only on its span's rows.
    let tiles: Vec<&[u32]> = spans.iter().flat_map(|g| g.chunks(GATHER_ROWS)).collect();
    let rows = GATHER_ROWS;
    let found: Vec<Vec<(TopScores, f32)>> = pool.install(|| {
        tiles
            .par_iter()
            .map_init(
                || {
                    (
                        vec![0.0_f32; rows * d],
                        vec![0.0_f32; rows * COL_BLOCK.min(k)],
                        vec![EMPTY_TOP; rows],
                    )
                },
                |(abuf, tile, tops), &idx| {
                    if ctl.is_cancelled() {
                        return Vec::new();
                    }
                    let m = idx.len();
                    let first = idx[0] as usize;
                    let a: &[f32] = if idx[m - 1] as usize == first + m - 1 {
                        &data.x[first * d..(first + m) * d]
                    } else {
                        for (dst, &i) in abuf.chunks_exact_mut(d).zip(idx) {
                            dst.copy_from_slice(data.row(i as usize));
                        }
                        &abuf[..m * d]
                    };
                    tops[..m].fill(EMPTY_TOP);
                    let mut j0 = 0;
                    while j0 < k {
                        let cb = COL_BLOCK.min(k - j0);
                        gemm_abt(a, m, &model.c[j0 * d..(j0 + cb) * d], cb, d, tile);
                        top_tile(tile, m, cb, &model.h[j0..j0 + cb], j0, &mut tops[..m]);
                        j0 += cb;
                    }
                    idx.iter()
                        .zip(tops.iter())
                        .map(|(&i, top)| {
                            let c = top[0].j as usize;
                            (
                                *top,
                                sq_dist(data.row(i as usize), &model.c[c * d..(c + 1) * d]),
                            )
                        })
                        .collect()
                },
            )
            .collect()
    });
    ctl.check()?;
    let gathered = tiles.iter().map(|t| t.len()).sum();
    for (&i, (top, dd)) in tiles.iter().copied().flatten().zip(found.iter().flatten()) {
        let i = i as usize;
        let nx2 = data.nx2[i];
        // Distance from a score: |x - c|² = |x|² - 2 (x·c - |c|²/2).
        let dist = |s: f32| (nx2 - 2.0 * s).max(0.0).sqrt();
        st.labels[i] = i64::from(top[0].j);
        st.d2[i] = *dd;
        for t in 0..TRACK {
            st.cand[i * TRACK + t] = top[1 + t].j;
            st.lb_cand[i * TRACK + t] = dist(top[1 + t].s);
        }
        st.lb_rest[i] = dist(top[KEEP - 1].s);
    }
    Ok(gathered)
}

/// Re-seeds empty clusters (see the module documentation). `counts` are the
/// cluster sizes under `st.labels`. Returns how many were re-seeded.
fn reseed_empty(st: &mut Assign, counts: &mut [i64]) -> usize {
    if !counts.contains(&0) {
        return 0;
    }
    let far: Vec<(f32, u64, i64)> = st
        .d2
        .iter()
        .zip(&st.labels)
        .enumerate()
        .map(|(i, (&v, &l))| (v, i as u64, l))
        .collect();
    let (plan, _) = reseed_plan(far, counts);
    for &(i, e) in &plan {
        let i = i as usize;
        st.labels[i] = i64::from(e);
        st.reset_bounds(i);
    }
    plan.len()
}

/// The re-seeding walk shared by [`lloyd`] and the distributed k-means:
/// among the candidate rows `(squared distance to its centroid, row, its
/// cluster)`, those of positive distance from the farthest down (ties:
/// lowest row) go, one each, to the empty clusters in ascending order, when
/// their own cluster keeps another member. Updates `counts`; returns the
/// `(row, new cluster)` moves and the number of clusters left empty.
pub(crate) fn reseed_plan(
    mut far: Vec<(f32, u64, i64)>,
    counts: &mut [i64],
) -> (Vec<(u64, u32)>, usize) {
    let mut empty: Vec<usize> = (0..counts.len()).filter(|&c| counts[c] == 0).collect();
    let mut plan = Vec::new();
    if empty.is_empty() {
        return (plan, 0);
    }
    empty.reverse(); // pop() hands them out in ascending order
    far.retain(|t| t.0 > 0.0);
    far.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i, own) in far {
        let Some(&e) = empty.last() else { break };
        let Ok(own) = usize::try_from(own) else {
            continue;
        };
        if own < counts.len() && counts[own] > 1 {
            counts[own] -= 1;
            counts[e] += 1;
            plan.push((i, e as u32));
            empty.pop();
        }
    }
    (plan, empty.len())
}

/// New centroids from the cluster sums: a copy of `c` (`k x d`) with the
/// `dirty` clusters' centroids recomputed (an empty cluster, or a zero sum
/// under cosine, keeps its centroid), and each centroid's drift (its
/// distance moved, rounded up; 0 when it kept its place).
pub(crate) fn updated_centroids(
    sums: &ClusterSums,
    quant: &Quant,
    metric: Metric,
    c: &[f32],
    dirty: &[bool],
    d: usize,
    pool: &ThreadPool,
) -> (Vec<f32>, Vec<f32>) {
    let mut newc = c.to_vec();
    let drift: Vec<f32> = pool.install(|| {
        newc.par_chunks_mut(d)
            .zip(c.par_chunks(d))
            .enumerate()
            .map(|(j, (nc, oc))| {
                if !dirty[j] || !sums.centroid(j, quant, metric, nc) {
                    return 0.0;
                }
                let dr: f64 = nc
                    .iter()
                    .zip(oc)
                    .map(|(&a, &b)| {
                        let t = f64::from(a) - f64::from(b);
                        t * t
                    })
                    .sum::<f64>()
                    .sqrt();
                (dr as f32) * (1.0 + 4.0 * f32::EPSILON)
            })
            .collect()
    });
    (newc, drift)
}

/// The outcome of one seeded Lloyd run.
#[derive(Debug)]
struct Run {
    labels: Vec<i64>,
    centroids: Vec<f32>,
    sum_d2: f64,
    n_iter: usize,
    converged: bool,
    n_reseeded: usize,
}

/// Options of a Lloyd run that are not user parameters.
#[derive(Debug, Clone, Copy)]
struct LloydOpts {
    k: usize,
    max_iter: usize,
    tol: f64,
    /// Use the bounds (false: search every row every iteration; for tests).
    bounds: bool,
}

fn lloyd(
    data: &Data,
    quant: &Quant,
    c0: Vec<f32>,
    o: LloydOpts,
    pool: &ThreadPool,
    ctl: &Control,
) -> Result<Run> {
    let (n, d, k) = (data.n, data.d, o.k);
    let mut model = Model::new(c0, d);
    let mut st = Assign::new(n);
    let mut prev = vec![-1_i64; n];
    let mut sums = ClusterSums::new(k, d);
    let mut prev_obj = f64::INFINITY;
    let mut n_iter = 0;
    let mut converged = false;
    let mut n_reseeded = 0;
    for it in 1..=o.max_iter {
        ctl.check()?;
        assign_step(data, &model, &mut st, it == 1 || !o.bounds, pool, ctl)?;
        let obj = st.sum_d2();
        n_iter = it;
        ctl.advance(1);
        // Cluster sizes under the new labels; re-seed the empty ones.
        let mut counts: Vec<i64> = (0..k).map(|c| sums.count(c)).collect();
        for (&new, &old) in st.labels.iter().zip(&prev) {
            if new != old {
                if old >= 0 {
                    counts[old as usize] -= 1;
                }
                counts[new as usize] += 1;
            }
        }
        n_reseeded += reseed_empty(&mut st, &mut counts);
        let moves = Move::between(&st.labels, &prev);
        if moves.is_empty() {
            converged = true;
            break;
        }
        // Update step: exact sums, then the centroids of the touched clusters.
        sums.apply(&data.x, &moves, quant, pool);
        let mut dirty = vec![false; k];
        for m in &moves {
            if m.old >= 0 {
                dirty[m.old as usize] = true;
            }
            dirty[m.new as usize] = true;
        }
        let (newc, drift) = updated_centroids(&sums, quant, data.metric, &model.c, &dirty, d, pool);
        model.c = newc;
        model.refresh_norms(d);
        update_bounds(data, &model, &mut st, &drift, pool);
        prev.copy_from_slice(&st.labels);
        if o.tol > 0.0 && prev_obj.is_finite() && prev_obj - obj <= o.tol * prev_obj {
            break;
        }
        prev_obj = obj;
    }
    if !converged {
        assign_step(data, &model, &mut st, !o.bounds, pool, ctl)?;
    }
    Ok(Run {
        sum_d2: st.sum_d2(),
        labels: st.labels,
        centroids: model.c,
        n_iter,
        converged,
        n_reseeded,
    })
}

/// `lb` lowered by a drift `dm` of the centroid it bounds: by the triangle
/// inequality (`lb - dm`) and, for unit rows (cosine), by `|x·c' - x·c| <=
/// |c' - c|` (`sqrt(lb² - 2 dm)`), whichever is tighter.
#[inline(always)]
fn lower(lb: f32, dm: f32, cosine: bool) -> f32 {
    let mut v = lb - dm;
    if cosine {
        v = v.max((lb * lb - 2.0 * dm).max(0.0).sqrt());
    }
    v.max(0.0)
}

/// Lowers every bound by the drift of the centroid(s) it covers. The few
/// centroids that moved most (the "jumpers": at most `k / 64`, 1 to 64)
/// would ruin the bound on the untracked centroids for every row, so the
/// exact distance of every row to them is computed instead (one thin GEMM).
/// Then: a tracked runner-up's bound drops by its own drift (or becomes
/// exact for a jumper); the bound on the rest drops by the largest drift
/// among the rest minus the jumpers, and is capped by the exact distances
/// to the untracked jumpers.
fn update_bounds(data: &Data, model: &Model, st: &mut Assign, drift: &[f32], pool: &ThreadPool) {
    let (d, k) = (data.d, drift.len());
    let n_jump = (k / 64).clamp(1, 64);
    let mut top: Vec<(f32, u32)> = drift
        .iter()
        .enumerate()
        .map(|(c, &v)| (v, c as u32))
        .collect();
    let keep = (KEEP + n_jump).min(k);
    if keep < k {
        top.select_nth_unstable_by(keep - 1, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        top.truncate(keep);
    }
    top.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    if top.first().is_none_or(|t| t.0 == 0.0) {
        return;
    }
    let n_jump = top.iter().take(n_jump).take_while(|t| t.0 > 0.0).count();
    let (jumpers, rest_top) = top.split_at(n_jump);
    let jump_idx: Vec<u32> = jumpers.iter().map(|t| t.1).collect();
    let jump_c: Vec<f32> = jump_idx
        .iter()
        .flat_map(|&j| {
            model.c[j as usize * d..(j as usize + 1) * d]
                .iter()
                .copied()
        })
        .collect();
    let jump_h: Vec<f32> = jump_idx.iter().map(|&j| model.h[j as usize]).collect();
    let cosine = data.metric == Metric::Cosine;
    pool.install(|| {
        st.lb_rest
            .par_chunks_mut(CHUNK_ROWS)
            .zip(st.labels.par_chunks(CHUNK_ROWS))
            .zip(st.cand.par_chunks(CHUNK_ROWS * TRACK))
            .zip(st.lb_cand.par_chunks_mut(CHUNK_ROWS * TRACK))
            .enumerate()
            .for_each(|(ci, (((rest, labels), cand), lbc))| {
                let i0 = ci * CHUNK_ROWS;
                let rows = rest.len();
                let mut dots = vec![0.0_f32; rows * n_jump];
                gemm_abt(
                    &data.x[i0 * d..(i0 + rows) * d],
                    rows,
                    &jump_c,
                    n_jump,
                    d,
                    &mut dots,
                );
                for (r, (b, &lab)) in rest.iter_mut().zip(labels).enumerate() {
                    let cr = &cand[r * TRACK..(r + 1) * TRACK];
                    let lr = &mut lbc[r * TRACK..(r + 1) * TRACK];
                    for (l, &j) in lr.iter_mut().zip(cr) {
                        if j != u32::MAX {
                            *l = lower(*l, drift[j as usize], cosine);
                        }
                    }
                    let dm = rest_top
                        .iter()
                        .find(|&&(_, c)| i64::from(c) != lab && !cr.contains(&c))
                        .map_or(0.0, |t| t.0);
                    *b = lower(*b, dm, cosine);
                    let nx2 = data.nx2[i0 + r];
                    for ((&j, &h), &dot) in jump_idx
                        .iter()
                        .zip(&jump_h)
                        .zip(&dots[r * n_jump..(r + 1) * n_jump])
                    {
                        if i64::from(j) == lab {
                            continue;
                        }
                        let dist = (nx2 - 2.0 * (dot - h)).max(0.0).sqrt();
                        match cr.iter().position(|&c| c == j) {
                            Some(t) => lr[t] = dist,
                            None => *b = b.min(dist),
                        }
                    }
                }
            });
    });
}

fn check_params(n: usize, p: &KMeansParams<'_>) -> Result<()> {
    let k = p.n_clusters;
    if k == 0 || k > n {
        return Err(Error::Parameter(format!(
            "n_clusters must satisfy 1 <= n_clusters <= N = {n} (the rows of X), got {k}"
        )));
    }
    if p.n_init == 0 {
        return Err(Error::Parameter("n_init must be >= 1, got 0".into()));
    }
    if p.max_iter == 0 {
        return Err(Error::Parameter("max_iter must be >= 1, got 0".into()));
    }
    if !(p.tol >= 0.0 && p.tol.is_finite()) {
        return Err(Error::Parameter(format!(
            "tol must be a finite number >= 0, got {}",
            p.tol
        )));
    }
    parallel::resolve_threads(p.n_threads)?;
    Ok(())
}

/// K-means of the rows of `x` (see the module documentation).
///
/// Errors: [`Error::Shape`] for an empty `x` or explicit centroids that are
/// not `n_clusters x D`; [`Error::Parameter`] for `n_clusters` outside
/// `1..=N`, `n_init` or `max_iter` of 0, a negative or non-finite `tol`;
/// [`Error::NonFinite`] for rows (of `X` or of the explicit centroids,
/// named `"init"`) with NaN/Inf; [`Error::ZeroNorm`] for zero rows under
/// cosine; [`Error::Interrupted`] once `ctl` is cancelled (checked between
/// iterations and tiles). Progress counts Lloyd iterations.
pub fn kmeans(x: MatRef<'_>, params: &KMeansParams<'_>, ctl: &Control) -> Result<KMeansResult> {
    kmeans_impl(x, params, ctl, true)
}

fn kmeans_impl(
    x: MatRef<'_>,
    p: &KMeansParams<'_>,
    ctl: &Control,
    bounds: bool,
) -> Result<KMeansResult> {
    check_shape(&x, "X")?;
    check_params(x.n_rows(), p)?;
    let (n, d, k) = (x.n_rows(), x.n_cols(), p.n_clusters);
    if let Init::Centroids(c) = p.init {
        if c.n_rows() != k || c.n_cols() != d {
            return Err(Error::Shape(format!(
                "init must have shape (n_clusters, D) = ({k}, {d}), got ({}, {})",
                c.n_rows(),
                c.n_cols()
            )));
        }
    }
    let pool = parallel::pool(p.n_threads)?;
    let data = Data::prepare(x, p.metric, p.n_threads, &pool)?;
    let explicit = match p.init {
        Init::Centroids(c) => Some(data.prepare_centroids(c, "init", p.n_threads, &pool)?),
        _ => None,
    };
    let quant = Quant::new(&data.x, n, d, &pool);
    let runs = if explicit.is_some() { 1 } else { p.n_init };
    ctl.set_total((runs * p.max_iter) as u64);
    let opts = LloydOpts {
        k,
        max_iter: p.max_iter,
        tol: p.tol,
        bounds,
    };
    let mut best: Option<Run> = None;
    for r in 0..runs {
        ctl.check()?;
        let mut rng = SplitMix64::stream(p.random_state, r as u64);
        let c0 = match (&explicit, p.init) {
            (Some(c), _) => c.clone(),
            (None, Init::Random) => init::random_rows(&data, k, &mut rng),
            (None, _) => init::kmeans_plus_plus(&data, k, &mut rng, &pool, ctl)?,
        };
        let run = lloyd(&data, &quant, c0, opts, &pool, ctl)?;
        ctl.advance((p.max_iter - run.n_iter) as u64);
        if best.as_ref().is_none_or(|b| run.sum_d2 < b.sum_d2) {
            best = Some(run);
        }
    }
    let best = best.ok_or_else(|| Error::Parameter("n_init must be >= 1".into()))?;
    let mut sizes = vec![0_usize; k];
    for &l in &best.labels {
        sizes[l as usize] += 1;
    }
    Ok(KMeansResult {
        n_empty: sizes.iter().filter(|&&s| s == 0).count(),
        objective: data.objective(best.sum_d2),
        centroids: data.output_centroids(&best.centroids),
        labels: best.labels,
        n_clusters: k,
        dim: d,
        n_iter: best.n_iter,
        converged: best.converged,
        n_reseeded: best.n_reseeded,
    })
}

/// The closest of `centroids` (`k x D`) for each row of `x`, and the
/// objective of that assignment (see [`KMeansResult::objective`]).
///
/// Errors as [`kmeans`] (the centroids are named `"centroids"`), plus
/// [`Error::Shape`] when the dimensions differ.
pub fn assign(
    x: MatRef<'_>,
    centroids: MatRef<'_>,
    metric: Metric,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<Assignment> {
    check_shape(&x, "X")?;
    check_shape(&centroids, "centroids")?;
    check_same_cols(&x, "X", &centroids, "centroids")?;
    let pool = parallel::pool(n_threads)?;
    let data = Data::prepare(x, metric, n_threads, &pool)?;
    let c = data.prepare_centroids(centroids, "centroids", n_threads, &pool)?;
    let model = Model::new(c, data.d);
    let mut st = Assign::new(data.n);
    ctl.set_total(1);
    assign_step(&data, &model, &mut st, true, &pool, ctl)?;
    ctl.advance(1);
    Ok(Assignment {
        objective: data.objective(st.sum_d2()),
        labels: st.labels,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
