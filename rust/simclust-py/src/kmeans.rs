//! Bindings of `simclust_core::kmeans`.

use numpy::{PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;
use simclust_core::kmeans::{self as core, Init, KMeansParams, Metric};

use crate::arrays::{mat, to_py1, to_py2};
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

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(kmeans, m)?)?;
    m.add_function(wrap_pyfunction!(kmeans_assign, m)?)?;
    Ok(())
}
