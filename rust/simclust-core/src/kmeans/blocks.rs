//! Spherical k-means over row blocks: the pieces of [`super::kmeans`]'s
//! Lloyd iterations that a distributed run does per block of rows (a task)
//! and on the driver, so that it gets the native centroids and labels, bit
//! for bit, for any number of blocks.
//!
//! * Each block starts on a multiple of [`BLOCK_ALIGN`] rows (the span of
//!   rows whose gathered rows share GEMM tiles, whose bounds are updated
//!   together and whose squared distances are summed together: see `SPAN`),
//!   so every value a block computes is the one the native run computes for
//!   those rows.
//! * The fixed-point scales come from the column maxima of the unit rows
//!   ([`block_column_max`], merged by maximum) and `N`.
//! * Seeding: [`init_rows`] draws the rows the native seeding reads (the
//!   k-means++ sample, or the random rows) and [`init_from_rows`] seeds from
//!   them with the same random stream.
//! * A Lloyd step of a block ([`block_step`]): the previous step's
//!   re-seeded rows, the bounds lowered by the centroids' drifts, then the
//!   assignment step with the bounds, and the change of the block's exact
//!   partial sums and counts (its moved rows, as the native incremental
//!   update), its span sums of squared distances and changed labels. The
//!   driver adds the changes to its running sums (integers: any order, the
//!   same sums as from scratch), re-seeds empty clusters
//!   from the blocks' farthest rows ([`block_farthest`], [`reseed`]) and
//!   forms the centroids ([`update_centroids`]), as [`super::kmeans`] does.
//!
//! Cosine only: Euclidean k-means centres the data on its column means
//! first, a reduction this module does not distribute.

use super::init::{kmeans_plus_plus_on, kpp_sample};
use super::rng::SplitMix64;
use super::sums::{column_max, ClusterSums, Move, Quant};
use super::{
    assign_step, check_shape, d2_chunk_sums, reseed_plan, update_bounds, updated_centroids, Assign,
    Data, Init, Metric, Model, SPAN,
};
use std::sync::Arc;

use rayon::ThreadPool;

use crate::error::{Error, Result};
use crate::matrix::MatRef;
use crate::parallel::{self, Control};
use crate::similarity::normalize_rows;

/// Blocks start on multiples of this many rows (4,096).
pub const BLOCK_ALIGN: usize = SPAN;

/// Runner-up centroids each row tracks (the `cand` and `lb_cand` columns of
/// a [`BlockState`]).
pub const TRACKED: usize = super::kernels::TRACK;

/// The per-row state of a block between Lloyd steps.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockState {
    /// Cluster of each row (`-1` before the first step).
    pub labels: Vec<i64>,
    /// The labels before the last step's assignment.
    pub prev: Vec<i64>,
    /// Squared distance of each row to its centroid.
    pub d2: Vec<f32>,
    /// Lower bound on each row's distance to the untracked centroids.
    pub lb_rest: Vec<f32>,
    /// Tracked runner-up centroids, [`TRACKED`] per row (`u32::MAX`: none).
    pub cand: Vec<u32>,
    /// Lower bounds on the distances to the tracked centroids.
    pub lb_cand: Vec<f32>,
}

impl BlockState {
    /// The state of `n` rows before the first step.
    pub fn new(n: usize) -> Self {
        Self {
            labels: vec![-1; n],
            prev: vec![-1; n],
            d2: vec![0.0; n],
            lb_rest: vec![0.0; n],
            cand: vec![u32::MAX; n * TRACKED],
            lb_cand: vec![0.0; n * TRACKED],
        }
    }

    fn check(&self, n: usize, k: usize) -> Result<()> {
        let rows = [
            self.labels.len(),
            self.prev.len(),
            self.d2.len(),
            self.lb_rest.len(),
        ];
        if rows.iter().any(|&r| r != n)
            || self.cand.len() != n * TRACKED
            || self.lb_cand.len() != n * TRACKED
        {
            return Err(Error::Shape(format!(
                "the block state must have {n} rows ({TRACKED} tracked centroids each), \
                 the block's rows"
            )));
        }
        let bad_label = |&l: &i64| l < -1 || l >= k as i64;
        let bad_cand = |&j: &u32| j != u32::MAX && j as usize >= k;
        if self.labels.iter().any(bad_label)
            || self.prev.iter().any(bad_label)
            || self.cand.iter().any(bad_cand)
        {
            return Err(Error::Parameter(format!(
                "the block state holds a cluster outside 0..{k}"
            )));
        }
        Ok(())
    }
}

/// What a block's Lloyd step returns to the driver.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockStep {
    /// Rows whose label differs from the one before the step.
    pub n_changed: usize,
    /// Squared distances summed per span of [`BLOCK_ALIGN`] rows.
    pub d2_sums: Vec<f64>,
    /// The clusters a row of the block moved into or out of, ascending.
    pub touched: Vec<u32>,
    /// The change of their row counts.
    pub counts: Vec<i64>,
    /// The change of their fixed-point sums of unit rows, `touched x D`
    /// (wrapping: added to the running sums, the exact new sums).
    pub sums: Vec<i64>,
}

/// The fixed-point scales of a run: the column maxima of its unit rows and
/// its number of rows.
#[derive(Debug, Clone, Copy)]
pub struct Scales<'a> {
    /// Largest magnitude of each column of the unit rows (all blocks).
    pub colmax: &'a [f32],
    /// Rows of the whole run.
    pub n_total: usize,
}

impl Scales<'_> {
    fn quant(&self, d: usize) -> Result<Quant> {
        if self.colmax.len() != d {
            return Err(Error::Shape(format!(
                "colmax must have one value per column ({d}), got {}",
                self.colmax.len()
            )));
        }
        if self.colmax.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(Error::Parameter(
                "colmax must hold finite magnitudes >= 0".into(),
            ));
        }
        check_rows_total(self.n_total)?;
        Ok(Quant::from_colmax(self.colmax, self.n_total))
    }
}

fn check_rows_total(n: usize) -> Result<()> {
    if n == 0 || n > u32::MAX as usize {
        return Err(Error::Parameter(format!(
            "n_total must be in 1..=2^32-1, got {n}"
        )));
    }
    Ok(())
}

/// The unit rows of a block (validated as [`super::kmeans`] validates `X`).
fn unit_block(x: MatRef<'_>, n_threads: Option<usize>) -> Result<(Data, Arc<ThreadPool>)> {
    check_shape(&x, "X")?;
    let pool = parallel::pool(n_threads)?;
    let data = Data::prepare(x, Metric::Cosine, n_threads, &pool)?;
    Ok((data, pool))
}

/// The largest magnitude of each column of the block's unit rows.
///
/// Errors as [`super::kmeans`] for `X`: empty, NaN/Inf, zero rows.
pub fn block_column_max(x: MatRef<'_>, n_threads: Option<usize>) -> Result<Vec<f32>> {
    let (data, pool) = unit_block(x, n_threads)?;
    Ok(column_max(&data.x, data.d, &pool))
}

/// The rows the native seeding of run `run` (`0..n_init`) reads among `n`,
/// in the order [`init_from_rows`] wants them: the k-means++ sample
/// (ascending; every row when it is all of them) or the `k` random rows.
///
/// Errors: [`Error::Parameter`] for `k` outside `1..=n` or explicit
/// centroids (they need no rows).
pub fn init_rows(
    n: usize,
    k: usize,
    init: Init<'_>,
    random_state: u64,
    run: u64,
) -> Result<Vec<usize>> {
    check_rows_total(n)?;
    check_k(n, k)?;
    let mut rng = SplitMix64::stream(random_state, run);
    match init {
        Init::Random => Ok(rng.sample_distinct(n, k)),
        Init::KMeansPlusPlus => Ok(kpp_sample(n, k, &mut rng).unwrap_or_else(|| (0..n).collect())),
        Init::Centroids(_) => Err(Error::Parameter(
            "explicit initial centroids need no rows".into(),
        )),
    }
}

fn check_k(n: usize, k: usize) -> Result<()> {
    if k == 0 || k > n {
        return Err(Error::Parameter(format!(
            "n_clusters must satisfy 1 <= n_clusters <= N = {n} (the rows of X), got {k}"
        )));
    }
    Ok(())
}

/// The initial unit centroids (`k x D`) of run `run`, from `rows`: the rows
/// [`init_rows`] named, in its order, as given (not normalised). The same
/// centroids as [`super::kmeans`] seeds with (same `n`, `k`, seed, run).
///
/// Errors: [`Error::Shape`] when `rows` is not as many rows as
/// [`init_rows`] names; the errors of `X` for bad rows;
/// [`Error::Interrupted`] once `ctl` is cancelled.
#[allow(clippy::too_many_arguments)]
pub fn init_from_rows(
    rows: MatRef<'_>,
    n: usize,
    k: usize,
    init: Init<'_>,
    random_state: u64,
    run: u64,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<Vec<f32>> {
    let want = init_rows(n, k, init, random_state, run)?.len();
    if rows.n_rows() != want {
        return Err(Error::Shape(format!(
            "rows must be the {want} rows init_rows names, got {}",
            rows.n_rows()
        )));
    }
    let (data, pool) = unit_block(rows, n_threads)?;
    let mut rng = SplitMix64::stream(random_state, run);
    match init {
        Init::Random => {
            let _ = rng.sample_distinct(n, k); // the draw init_rows replayed
            Ok(data.x)
        }
        _ => {
            let _ = kpp_sample(n, k, &mut rng);
            kmeans_plus_plus_on(&data.x, &data.nx2, data.d, k, &mut rng, &pool, ctl)
        }
    }
}

/// The inputs of one Lloyd step of a block besides its rows and state.
#[derive(Debug, Clone, Copy)]
pub struct StepInput<'a> {
    /// The current unit centroids, `k x D`.
    pub centroids: MatRef<'a>,
    /// How far each centroid moved in the last update (`None`: the first
    /// step, or the bounds are not used).
    pub drift: Option<&'a [f32]>,
    /// The rows of this block (block-local) the driver re-seeded after the
    /// last step, with their new clusters.
    pub reseeds: &'a [(u32, u32)],
    /// The run's fixed-point scales.
    pub scales: Scales<'a>,
    /// Search every row against every centroid (the first step).
    pub full: bool,
    /// The rows are unit rows already (normalised by
    /// [`crate::similarity::normalize_rows`], which keeps unit rows bit for
    /// bit): they are used as they are, not normalised again. Not checked:
    /// other rows give a wrong fit (never a panic).
    pub rows_are_unit: bool,
}

/// One Lloyd step of a block (see the module documentation): `state` is
/// updated in place; returns the change of the block's partial sums and
/// counts (its moved rows), which the driver adds to the running sums.
///
/// Errors: [`Error::Shape`] for a state, centroids, drift or scales of the
/// wrong size; [`Error::Parameter`] for re-seeds outside the block or the
/// clusters; the errors of `X`; [`Error::Interrupted`] once `ctl` is
/// cancelled.
pub fn block_step(
    x: MatRef<'_>,
    state: &mut BlockState,
    inp: &StepInput<'_>,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<BlockStep> {
    let (n, d) = (x.n_rows(), x.n_cols());
    let c = inp.centroids;
    check_shape(&c, "centroids")?;
    let k = c.n_rows();
    if c.n_cols() != d {
        return Err(Error::Shape(format!(
            "centroids must have D = {d} columns, got {}",
            c.n_cols()
        )));
    }
    state.check(n, k)?;
    if let Some(dr) = inp.drift {
        if dr.len() != k || dr.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(Error::Shape(format!(
                "drift must hold one finite value >= 0 per centroid ({k})"
            )));
        }
    }
    if inp
        .reseeds
        .iter()
        .any(|&(r, e)| r as usize >= n || e as usize >= k)
    {
        return Err(Error::Parameter(format!(
            "re-seeds must name rows in 0..{n} and clusters in 0..{k}"
        )));
    }
    let quant = inp.scales.quant(d)?;
    let (data, pool) = if inp.rows_are_unit {
        let pool = parallel::pool(n_threads)?;
        (Data::from_unit(x, &pool)?, pool)
    } else {
        unit_block(x, n_threads)?
    };
    let model = Model::new(c.as_slice().to_vec(), d);
    let mut st = Assign {
        labels: std::mem::take(&mut state.labels),
        d2: std::mem::take(&mut state.d2),
        lb_rest: std::mem::take(&mut state.lb_rest),
        cand: std::mem::take(&mut state.cand),
        lb_cand: std::mem::take(&mut state.lb_cand),
    };
    for &(r, e) in inp.reseeds {
        st.labels[r as usize] = i64::from(e);
        st.reset_bounds(r as usize);
    }
    if let Some(dr) = inp.drift {
        update_bounds(&data, &model, &mut st, dr, &pool);
    }
    state.prev.copy_from_slice(&st.labels);
    let searched = assign_step(&data, &model, &mut st, inp.full, &pool, ctl);
    state.labels = st.labels;
    state.d2 = st.d2;
    state.lb_rest = st.lb_rest;
    state.cand = st.cand;
    state.lb_cand = st.lb_cand;
    searched?;
    let n_changed = state
        .labels
        .iter()
        .zip(&state.prev)
        .filter(|(a, b)| a != b)
        .count();
    // The change of the block's sums: its moved rows out of their old
    // clusters and into their new ones (the native incremental update).
    let moves = Move::between(&state.labels, &state.prev);
    let mut touched = vec![false; k];
    for m in &moves {
        if m.old >= 0 {
            touched[m.old as usize] = true;
        }
        touched[m.new as usize] = true;
    }
    let mut delta = ClusterSums::new(k, d);
    delta.apply(&data.x, &moves, &quant, &pool);
    let (all_sums, all_counts) = delta.into_parts();
    let touched: Vec<u32> = (0..k as u32).filter(|&c| touched[c as usize]).collect();
    let mut sums = Vec::with_capacity(touched.len() * d);
    for &c in &touched {
        sums.extend_from_slice(&all_sums[c as usize * d..(c as usize + 1) * d]);
    }
    Ok(BlockStep {
        n_changed,
        d2_sums: d2_chunk_sums(&state.d2),
        counts: touched.iter().map(|&c| all_counts[c as usize]).collect(),
        touched,
        sums,
    })
}

/// The rows of a block farthest from their centroids, for re-seeding.
#[derive(Debug, Clone, PartialEq)]
pub struct Farthest {
    /// Block-local rows, farthest first (ties: lowest row); positive
    /// distances only.
    pub rows: Vec<u32>,
    /// Their squared distances.
    pub d2: Vec<f32>,
    /// Their clusters (after the step).
    pub labels: Vec<i64>,
    /// Their clusters before the step.
    pub prev: Vec<i64>,
    /// Their unit rows, `len x D`.
    pub x: Vec<f32>,
}

/// The `m` rows of the block farthest from their centroids after a step
/// (what [`reseed`] walks).
///
/// Errors: [`Error::Shape`] for `labels`, `prev` (the state's) or `d2` of
/// another length; the errors of `X`.
pub fn block_farthest(
    x: MatRef<'_>,
    labels: &[i64],
    prev: &[i64],
    d2: &[f32],
    m: usize,
    n_threads: Option<usize>,
) -> Result<Farthest> {
    let (n, d) = (x.n_rows(), x.n_cols());
    if labels.len() != n || prev.len() != n || d2.len() != n {
        return Err(Error::Shape(format!(
            "labels, prev and d2 must have the block's {n} rows"
        )));
    }
    let mut far: Vec<(f32, u32)> = d2
        .iter()
        .enumerate()
        .filter(|(_, &v)| v > 0.0)
        .map(|(i, &v)| (v, i as u32))
        .collect();
    let order = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if m < far.len() {
        if m > 0 {
            far.select_nth_unstable_by(m - 1, order);
        }
        far.truncate(m);
    }
    far.sort_unstable_by(order);
    let mut raw = Vec::with_capacity(far.len() * d);
    for &(_, i) in &far {
        raw.extend_from_slice(x.row(i as usize));
    }
    let unit = if far.is_empty() {
        Vec::new()
    } else {
        normalize_rows(MatRef::new(&raw, far.len(), d)?, "X", n_threads)?
    };
    Ok(Farthest {
        rows: far.iter().map(|t| t.1).collect(),
        d2: far.iter().map(|t| t.0).collect(),
        labels: far.iter().map(|t| labels[t.1 as usize]).collect(),
        prev: far.iter().map(|t| prev[t.1 as usize]).collect(),
        x: unit,
    })
}

/// The native re-seeding walk over candidate rows `(squared distance, global
/// row, cluster)` given in any order: the `(position in the input, new
/// cluster)` of each re-seeded row, and how many clusters stay empty.
/// `counts` (the merged cluster sizes) are updated.
///
/// Exact when the candidates hold every row of positive distance that the
/// walk reaches: the caller asks the blocks for more while a block that may
/// hold more rows was cut before the walk ended.
pub fn reseed(
    d2: &[f32],
    rows: &[u64],
    labels: &[i64],
    counts: &mut [i64],
) -> Result<(Vec<(usize, u32)>, usize)> {
    if d2.len() != rows.len() || labels.len() != rows.len() {
        return Err(Error::Shape(
            "d2, rows and labels must have the same length".into(),
        ));
    }
    let pos: std::collections::HashMap<u64, usize> =
        rows.iter().enumerate().map(|(p, &r)| (r, p)).collect();
    if pos.len() != rows.len() {
        return Err(Error::Parameter("candidate rows must be distinct".into()));
    }
    let far = d2
        .iter()
        .zip(rows)
        .zip(labels)
        .map(|((&v, &r), &l)| (v, r, l))
        .collect();
    let (plan, left) = reseed_plan(far, counts);
    Ok((
        plan.iter()
            .filter_map(|&(r, e)| pos.get(&r).map(|&p| (p, e)))
            .collect(),
        left,
    ))
}

/// The driver's update: the running sums and counts after a step, with the
/// re-seeded rows (`moved`: their unit rows; `moved_old`: the cluster a
/// block counted them in; `moved_new`: their new one) moved, give the new
/// centroids and each centroid's drift, as [`super::kmeans`] forms them;
/// the sums and counts with the moves are returned for the next step.
///
/// Errors: [`Error::Shape`] for parts of the wrong sizes.
#[allow(clippy::too_many_arguments)]
pub fn update_centroids(
    sums: Vec<i64>,
    counts: Vec<i64>,
    centroids: MatRef<'_>,
    scales: Scales<'_>,
    moved: MatRef<'_>,
    moved_old: &[i64],
    moved_new: &[u32],
    n_threads: Option<usize>,
) -> Result<Updated> {
    let (k, d) = (centroids.n_rows(), centroids.n_cols());
    if sums.len() != k * d || counts.len() != k {
        return Err(Error::Shape(format!(
            "sums must be ({k}, {d}) and counts ({k},), as the centroids"
        )));
    }
    let m = moved_old.len();
    if moved_new.len() != m || (m > 0 && (moved.n_rows() != m || moved.n_cols() != d)) {
        return Err(Error::Shape(format!(
            "moved must be ({m}, {d}) with moved_old and moved_new of length {m}"
        )));
    }
    if moved_old.iter().any(|&o| o < 0 || o >= k as i64)
        || moved_new.iter().any(|&e| e as usize >= k)
    {
        return Err(Error::Parameter(format!(
            "moved_old and moved_new must be clusters in 0..{k}"
        )));
    }
    let quant = scales.quant(d)?;
    let pool = parallel::pool(n_threads)?;
    let mut cs = ClusterSums::from_parts(k, d, sums, counts);
    if m > 0 {
        let moves: Vec<Move> = (0..m)
            .map(|r| Move {
                row: r as u32,
                old: moved_old[r],
                new: moved_new[r],
            })
            .collect();
        cs.apply(moved.as_slice(), &moves, &quant, &pool);
    }
    let dirty = vec![true; k];
    let (c, drift) = updated_centroids(
        &cs,
        &quant,
        Metric::Cosine,
        centroids.as_slice(),
        &dirty,
        d,
        &pool,
    );
    let (sums, counts) = cs.into_parts();
    Ok(Updated {
        centroids: c,
        drift,
        sums,
        counts,
    })
}

/// What [`update_centroids`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Updated {
    /// The new unit centroids, `k x D`.
    pub centroids: Vec<f32>,
    /// How far each centroid moved (rounded up; 0 when it stayed).
    pub drift: Vec<f32>,
    /// The running sums with the re-seeded rows moved, `k x D`.
    pub sums: Vec<i64>,
    /// The running counts with the re-seeded rows moved.
    pub counts: Vec<i64>,
}
