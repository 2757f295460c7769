//! Bindings of `simclust_core::similarity`.

use numpy::{PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;
use simclust_core::similarity::{self, EdgeList, Neighbors};

use crate::arrays::{mat, to_py1, to_py2};
use crate::detach::run_detached;

type PyNeighbors<'py> = (Bound<'py, PyArray2<u32>>, Bound<'py, PyArray2<f32>>);
type PyEdges<'py> = (
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<f32>>,
);

fn neighbors_out(py: Python<'_>, nn: Neighbors, n: usize) -> PyResult<PyNeighbors<'_>> {
    let k = nn.k;
    Ok((
        to_py2(py, nn.indices, n, k)?,
        to_py2(py, nn.similarities, n, k)?,
    ))
}

fn edges_out(py: Python<'_>, e: EdgeList) -> PyEdges<'_> {
    (
        to_py1(py, e.src),
        to_py1(py, e.dst),
        to_py1(py, e.similarity),
    )
}

/// Unit-L2-normalised copy of `x` (float32, C-contiguous, 2-D).
#[pyfunction]
#[pyo3(signature = (x, *, n_threads=None))]
fn normalize<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let xm = mat(&x, "X")?;
    let (n, d) = (xm.n_rows(), xm.n_cols());
    let out = run_detached(py, "normalize", None, |_| {
        similarity::normalize_rows(xm, "X", n_threads)
    })?;
    to_py2(py, out, n, d)
}

/// Exact cosine self-kNN, self excluded.
#[pyfunction]
#[pyo3(signature = (x, k, *, n_threads=None, progress=None))]
fn knn<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    k: usize,
    n_threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<PyNeighbors<'py>> {
    let xm = mat(&x, "X")?;
    let nn = run_detached(py, "knn", progress.as_ref(), |ctl| {
        similarity::knn(xm, k, n_threads, ctl)
    })?;
    neighbors_out(py, nn, xm.n_rows())
}

/// Exact cosine kNN of the rows of `x` among the rows of `y`.
#[pyfunction]
#[pyo3(signature = (x, y, k, *, n_threads=None, progress=None))]
fn knn_query<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    y: PyReadonlyArray2<'py, f32>,
    k: usize,
    n_threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<PyNeighbors<'py>> {
    let xm = mat(&x, "X")?;
    let ym = mat(&y, "Y")?;
    let nn = run_detached(py, "knn_query", progress.as_ref(), |ctl| {
        similarity::knn_query(xm, ym, k, n_threads, ctl)
    })?;
    neighbors_out(py, nn, xm.n_rows())
}

/// Every pair `i < j` with cosine similarity `>= threshold`.
#[pyfunction]
#[pyo3(signature = (x, threshold, *, n_threads=None, progress=None))]
fn threshold_edges<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    threshold: f32,
    n_threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<PyEdges<'py>> {
    let xm = mat(&x, "X")?;
    let e = run_detached(py, "threshold_edges", progress.as_ref(), |ctl| {
        similarity::threshold_edges(xm, threshold, n_threads, ctl)
    })?;
    Ok(edges_out(py, e))
}

/// The undirected self-kNN edges with similarity `>= threshold`.
#[pyfunction]
#[pyo3(signature = (x, k, threshold, *, n_threads=None, progress=None))]
fn knn_edges<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    k: usize,
    threshold: f32,
    n_threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<PyEdges<'py>> {
    let xm = mat(&x, "X")?;
    let e = run_detached(py, "knn_edges", progress.as_ref(), |ctl| {
        similarity::knn_edges(xm, k, threshold, n_threads, ctl)
    })?;
    Ok(edges_out(py, e))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(normalize, m)?)?;
    m.add_function(wrap_pyfunction!(knn, m)?)?;
    m.add_function(wrap_pyfunction!(knn_query, m)?)?;
    m.add_function(wrap_pyfunction!(threshold_edges, m)?)?;
    m.add_function(wrap_pyfunction!(knn_edges, m)?)?;
    Ok(())
}
