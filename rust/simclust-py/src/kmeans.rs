//! Bindings of `simclust_core::kmeans`.

use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use simclust_core::kmeans::blocks::{self, BlockState, Scales, StepInput, TRACKED};
use simclust_core::kmeans::{self as core, Init, KMeansParams, Metric};

use crate::arrays::{mat, slice2, to_py1, to_py2, vec1};
use crate::detach::run_detached;
use crate::errors::to_pyerr;

/// `(labels, centroids, objective, n_iter, converged, n_reseeded, n_empty)`.
type PyKMeans<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray2<f32>>,
    f64,
    usize,
    bool,
    usize,
    usize,
);

/// K-means of the rows of `x`; `init` is "k-means++" or "random" unless
/// `init_centroids` (n_clusters x D) is given.
#[pyfunction]
#[pyo3(signature = (
    x, n_clusters, *, metric="cosine", init="k-means++", init_centroids=None, n_init=1,
    max_iter=100, tol=1e-6, random_state=0, n_threads=None, progress=None
))]
#[allow(clippy::too_many_arguments)]
fn kmeans<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    n_clusters: usize,
    metric: &str,
    init: &str,
    init_centroids: Option<PyReadonlyArray2<'py, f32>>,
    n_init: usize,
    max_iter: usize,
    tol: f64,
    random_state: u64,
    n_threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<PyKMeans<'py>> {
    let xm = mat(&x, "X")?;
    let init = match &init_centroids {
        Some(c) => Init::Centroids(mat(c, "init")?),
        None => Init::from_name(init).map_err(to_pyerr)?,
    };
    let params = KMeansParams {
        n_clusters,
        metric: metric.parse::<Metric>().map_err(to_pyerr)?,
        init,
        n_init,
        max_iter,
        tol,
        random_state,
        n_threads,
    };
    let r = run_detached(py, "kmeans", progress.as_ref(), |ctl| {
        core::kmeans(xm, &params, ctl)
    })?;
    Ok((
        to_py1(py, r.labels),
        to_py2(py, r.centroids, r.n_clusters, r.dim)?,
        r.objective,
        r.n_iter,
        r.converged,
        r.n_reseeded,
        r.n_empty,
    ))
}

/// `(labels, objective)`: the closest centroid of each row of `x`.
#[pyfunction]
#[pyo3(signature = (x, centroids, *, metric="cosine", n_threads=None))]
fn kmeans_assign<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    centroids: PyReadonlyArray2<'py, f32>,
    metric: &str,
    n_threads: Option<usize>,
) -> PyResult<(Bound<'py, PyArray1<i64>>, f64)> {
    let xm = mat(&x, "X")?;
    let cm = mat(&centroids, "centroids")?;
    let metric = metric.parse::<Metric>().map_err(to_pyerr)?;
    let a = run_detached(py, "kmeans_assign", None, |ctl| {
        core::assign(xm, cm, metric, n_threads, ctl)
    })?;
    Ok((to_py1(py, a.labels), a.objective))
}

// ----------------------------------------------------------------- blocks
// The distributed k-means (`simclust_core::kmeans::blocks`): a block's Lloyd
// step runs in a task, the merge on the driver.

/// A block's state between steps: `(labels, prev, d2, lb_rest, cand,
/// lb_cand)`, the last two `n x TRACKED`.
type PyState<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray2<u32>>,
    Bound<'py, PyArray2<f32>>,
);

/// The same, borrowed from Python.
type PyStateIn<'py> = (
    PyReadonlyArray1<'py, i64>,
    PyReadonlyArray1<'py, i64>,
    PyReadonlyArray1<'py, f32>,
    PyReadonlyArray1<'py, f32>,
    PyReadonlyArray2<'py, u32>,
    PyReadonlyArray2<'py, f32>,
);

fn state_to_py(py: Python<'_>, s: BlockState) -> PyResult<PyState<'_>> {
    let n = s.labels.len();
    Ok((
        to_py1(py, s.labels),
        to_py1(py, s.prev),
        to_py1(py, s.d2),
        to_py1(py, s.lb_rest),
        to_py2(py, s.cand, n, TRACKED)?,
        to_py2(py, s.lb_cand, n, TRACKED)?,
    ))
}

fn state_from_py(s: &PyStateIn<'_>) -> PyResult<BlockState> {
    Ok(BlockState {
        labels: vec1(&s.0, "labels")?.to_vec(),
        prev: vec1(&s.1, "prev")?.to_vec(),
        d2: vec1(&s.2, "d2")?.to_vec(),
        lb_rest: vec1(&s.3, "lb_rest")?.to_vec(),
        cand: slice2(&s.4, "cand")?.to_vec(),
        lb_cand: slice2(&s.5, "lb_cand")?.to_vec(),
    })
}

/// The state of a block of `n` rows before its first Lloyd step.
#[pyfunction]
fn kmeans_block_state(py: Python<'_>, n: usize) -> PyResult<PyState<'_>> {
    state_to_py(py, BlockState::new(n))
}

/// The largest magnitude of each column of the block's unit rows.
#[pyfunction]
#[pyo3(signature = (x, *, n_threads=None))]
fn kmeans_block_colmax<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let xm = mat(&x, "X")?;
    let v = run_detached(py, "kmeans_block_colmax", None, |_| {
        blocks::block_column_max(xm, n_threads)
    })?;
    Ok(to_py1(py, v))
}

fn init_of(init: &str) -> PyResult<Init<'static>> {
    Init::from_name(init).map_err(to_pyerr)
}

/// The rows (of `n`) the seeding of run `run` reads, in the order
/// `kmeans_init_from_rows` wants them.
#[pyfunction]
#[pyo3(signature = (n, n_clusters, *, init="k-means++", random_state=0, run=0))]
fn kmeans_init_rows<'py>(
    py: Python<'py>,
    n: usize,
    n_clusters: usize,
    init: &str,
    random_state: u64,
    run: u64,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let rows =
        blocks::init_rows(n, n_clusters, init_of(init)?, random_state, run).map_err(to_pyerr)?;
    Ok(to_py1(py, rows.into_iter().map(|r| r as i64).collect()))
}

/// The initial unit centroids of run `run` from the rows `kmeans_init_rows` named.
#[pyfunction]
#[pyo3(signature = (rows, n, n_clusters, *, init="k-means++", random_state=0, run=0, n_threads=None))]
#[allow(clippy::too_many_arguments)]
fn kmeans_init_from_rows<'py>(
    py: Python<'py>,
    rows: PyReadonlyArray2<'py, f32>,
    n: usize,
    n_clusters: usize,
    init: &str,
    random_state: u64,
    run: u64,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let rm = mat(&rows, "rows")?;
    let init = init_of(init)?;
    let c = run_detached(py, "kmeans_init_from_rows", None, |ctl| {
        blocks::init_from_rows(rm, n, n_clusters, init, random_state, run, n_threads, ctl)
    })?;
    to_py2(py, c, n_clusters, rm.n_cols())
}

/// `(state, n_changed, d2_sums, touched, counts, sums)`: one Lloyd step of a
/// block; the last three are the change of its partial sums (clusters touched).
/// `rows_are_unit`: `x` holds unit rows (as `normalize` returns them), used as
/// they are.
#[pyfunction]
#[pyo3(signature = (
    x, state, centroids, colmax, n_total, *, drift=None, reseed_rows=None, reseed_labels=None,
    full=false, rows_are_unit=false, n_threads=None
))]
#[allow(clippy::too_many_arguments)]
#[allow(clippy::type_complexity)]
fn kmeans_block_step<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    state: PyStateIn<'py>,
    centroids: PyReadonlyArray2<'py, f32>,
    colmax: PyReadonlyArray1<'py, f32>,
    n_total: usize,
    drift: Option<PyReadonlyArray1<'py, f32>>,
    reseed_rows: Option<PyReadonlyArray1<'py, u32>>,
    reseed_labels: Option<PyReadonlyArray1<'py, u32>>,
    full: bool,
    rows_are_unit: bool,
    n_threads: Option<usize>,
) -> PyResult<(
    PyState<'py>,
    usize,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray2<i64>>,
)> {
    let xm = mat(&x, "X")?;
    let cm = mat(&centroids, "centroids")?;
    let mut st = state_from_py(&state)?;
    let rr = match &reseed_rows {
        Some(a) => vec1(a, "reseed_rows")?,
        None => &[],
    };
    let rl = match &reseed_labels {
        Some(a) => vec1(a, "reseed_labels")?,
        None => &[],
    };
    if rr.len() != rl.len() {
        return Err(crate::errors::ShapeError::new_err(
            "reseed_rows and reseed_labels must have the same length",
        ));
    }
    let reseeds: Vec<(u32, u32)> = rr.iter().copied().zip(rl.iter().copied()).collect();
    let drift = match &drift {
        Some(a) => Some(vec1(a, "drift")?),
        None => None,
    };
    let inp = StepInput {
        centroids: cm,
        drift,
        reseeds: &reseeds,
        scales: Scales {
            colmax: vec1(&colmax, "colmax")?,
            n_total,
        },
        full,
        rows_are_unit,
    };
    let step = run_detached(py, "kmeans_block_step", None, |ctl| {
        blocks::block_step(xm, &mut st, &inp, n_threads, ctl)
    })?;
    let (t, d) = (step.touched.len(), cm.n_cols());
    Ok((
        state_to_py(py, st)?,
        step.n_changed,
        to_py1(py, step.d2_sums),
        to_py1(py, step.touched),
        to_py1(py, step.counts),
        to_py2(py, step.sums, t, d)?,
    ))
}

/// `(rows, d2, labels, prev, x)`: the `m` rows of a block farthest from their
/// centroids (block-local rows, farthest first; `x` their unit rows).
#[pyfunction]
#[pyo3(signature = (x, labels, prev, d2, m, *, n_threads=None))]
#[allow(clippy::type_complexity)]
fn kmeans_block_farthest<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    labels: PyReadonlyArray1<'py, i64>,
    prev: PyReadonlyArray1<'py, i64>,
    d2: PyReadonlyArray1<'py, f32>,
    m: usize,
    n_threads: Option<usize>,
) -> PyResult<(
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray2<f32>>,
)> {
    let xm = mat(&x, "X")?;
    let f = blocks::block_farthest(
        xm,
        vec1(&labels, "labels")?,
        vec1(&prev, "prev")?,
        vec1(&d2, "d2")?,
        m,
        n_threads,
    )
    .map_err(to_pyerr)?;
    let len = f.rows.len();
    Ok((
        to_py1(py, f.rows),
        to_py1(py, f.d2),
        to_py1(py, f.labels),
        to_py1(py, f.prev),
        to_py2(py, f.x, len, xm.n_cols())?,
    ))
}

/// `(positions, new_labels, n_left_empty)`: the native re-seeding walk over
/// candidate rows, given the merged cluster sizes `counts`.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn kmeans_reseed<'py>(
    py: Python<'py>,
    d2: PyReadonlyArray1<'py, f32>,
    rows: PyReadonlyArray1<'py, u64>,
    labels: PyReadonlyArray1<'py, i64>,
    counts: PyReadonlyArray1<'py, i64>,
) -> PyResult<(Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<u32>>, usize)> {
    let mut counts = vec1(&counts, "counts")?.to_vec();
    let (plan, left) = blocks::reseed(
        vec1(&d2, "d2")?,
        vec1(&rows, "rows")?,
        vec1(&labels, "labels")?,
        &mut counts,
    )
    .map_err(to_pyerr)?;
    Ok((
        to_py1(py, plan.iter().map(|p| p.0 as i64).collect()),
        to_py1(py, plan.iter().map(|p| p.1).collect()),
        left,
    ))
}

/// `(centroids, drift, sums, counts)`: the centroids from the running sums
/// and counts with the re-seeded rows moved, and those sums and counts.
#[pyfunction]
#[pyo3(signature = (sums, counts, centroids, colmax, n_total, moved, moved_old, moved_new, *, n_threads=None))]
#[allow(clippy::too_many_arguments)]
#[allow(clippy::type_complexity)]
fn kmeans_update<'py>(
    py: Python<'py>,
    sums: PyReadonlyArray2<'py, i64>,
    counts: PyReadonlyArray1<'py, i64>,
    centroids: PyReadonlyArray2<'py, f32>,
    colmax: PyReadonlyArray1<'py, f32>,
    n_total: usize,
    moved: PyReadonlyArray2<'py, f32>,
    moved_old: PyReadonlyArray1<'py, i64>,
    moved_new: PyReadonlyArray1<'py, u32>,
    n_threads: Option<usize>,
) -> PyResult<(
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray2<i64>>,
    Bound<'py, PyArray1<i64>>,
)> {
    let cm = mat(&centroids, "centroids")?;
    let mm = mat(&moved, "moved")?;
    let u = blocks::update_centroids(
        slice2(&sums, "sums")?.to_vec(),
        vec1(&counts, "counts")?.to_vec(),
        cm,
        Scales {
            colmax: vec1(&colmax, "colmax")?,
            n_total,
        },
        mm,
        vec1(&moved_old, "moved_old")?,
        vec1(&moved_new, "moved_new")?,
        n_threads,
    )
    .map_err(to_pyerr)?;
    let (k, d) = (cm.n_rows(), cm.n_cols());
    Ok((
        to_py2(py, u.centroids, k, d)?,
        to_py1(py, u.drift),
        to_py2(py, u.sums, k, d)?,
        to_py1(py, u.counts),
    ))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(kmeans, m)?)?;
    m.add_function(wrap_pyfunction!(kmeans_assign, m)?)?;
    m.add_function(wrap_pyfunction!(kmeans_block_state, m)?)?;
    m.add_function(wrap_pyfunction!(kmeans_block_colmax, m)?)?;
    m.add_function(wrap_pyfunction!(kmeans_init_rows, m)?)?;
    m.add_function(wrap_pyfunction!(kmeans_init_from_rows, m)?)?;
    m.add_function(wrap_pyfunction!(kmeans_block_step, m)?)?;
    m.add_function(wrap_pyfunction!(kmeans_block_farthest, m)?)?;
    m.add_function(wrap_pyfunction!(kmeans_reseed, m)?)?;
    m.add_function(wrap_pyfunction!(kmeans_update, m)?)?;
    m.add("KMEANS_BLOCK_ALIGN", blocks::BLOCK_ALIGN)?;
    Ok(())
}
