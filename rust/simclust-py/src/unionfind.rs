//! Bindings of `simclust_core::unionfind`.

use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use simclust_core::unionfind;

use crate::arrays::{to_py1, vec1};
use crate::detach::run_detached;

/// Canonical connected-component labels (int64) of an edge list on `n` nodes.
#[pyfunction]
#[pyo3(signature = (n, src, dst, *, n_threads=None))]
fn connected_components<'py>(
    py: Python<'py>,
    n: usize,
    src: PyReadonlyArray1<'py, u32>,
    dst: PyReadonlyArray1<'py, u32>,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let (s, d) = (vec1(&src, "src")?, vec1(&dst, "dst")?);
    let labels = run_detached(py, "connected_components", None, |_| {
        unionfind::connected_components(n, s, d, n_threads)
    })?;
    Ok(to_py1(py, labels))
}

/// `(n_components, largest_component)` per threshold.
type SweepArrays<'py> = (Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<u64>>);

/// `(n_components, largest_component)` (uint64 arrays) at each threshold.
#[pyfunction]
fn threshold_sweep<'py>(
    py: Python<'py>,
    n: usize,
    src: PyReadonlyArray1<'py, u32>,
    dst: PyReadonlyArray1<'py, u32>,
    similarity: PyReadonlyArray1<'py, f32>,
    thresholds: PyReadonlyArray1<'py, f32>,
) -> PyResult<SweepArrays<'py>> {
    let (s, d) = (vec1(&src, "src")?, vec1(&dst, "dst")?);
    let (w, t) = (
        vec1(&similarity, "similarity")?,
        vec1(&thresholds, "thresholds")?,
    );
    let rows = run_detached(py, "threshold_sweep", None, |_| {
        unionfind::threshold_sweep(n, s, d, w, t)
    })?;
    let comps = rows.iter().map(|r| r.n_components).collect();
    let largest = rows.iter().map(|r| r.largest_component).collect();
    Ok((to_py1(py, comps), to_py1(py, largest)))
}

/// Per cluster, the weakest edge of its maximum spanning forest (NaN where undefined).
#[pyfunction]
fn bridge_similarity<'py>(
    py: Python<'py>,
    n: usize,
    src: PyReadonlyArray1<'py, u32>,
    dst: PyReadonlyArray1<'py, u32>,
    similarity: PyReadonlyArray1<'py, f32>,
    labels: PyReadonlyArray1<'py, i64>,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let (s, d) = (vec1(&src, "src")?, vec1(&dst, "dst")?);
    let (w, l) = (vec1(&similarity, "similarity")?, vec1(&labels, "labels")?);
    let out = run_detached(py, "bridge_similarity", None, |_| {
        unionfind::bridge_similarity(n, s, d, w, l)
    })?;
    Ok(to_py1(py, out))
}

/// `(src, dst, similarity)` of the maximum spanning forest, in descending similarity.
type ForestArrays<'py> = (
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<f32>>,
);

/// The maximum spanning forest of an edge list (Kruskal), as `(src, dst, similarity)`.
#[pyfunction]
fn spanning_forest<'py>(
    py: Python<'py>,
    src: PyReadonlyArray1<'py, u32>,
    dst: PyReadonlyArray1<'py, u32>,
    similarity: PyReadonlyArray1<'py, f32>,
) -> PyResult<ForestArrays<'py>> {
    let (s, d) = (vec1(&src, "src")?, vec1(&dst, "dst")?);
    let w = vec1(&similarity, "similarity")?;
    let f = run_detached(py, "spanning_forest", None, |_| {
        unionfind::spanning_forest(s, d, w)
    })?;
    Ok((to_py1(py, f.src), to_py1(py, f.dst), to_py1(py, f.sim)))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(connected_components, m)?)?;
    m.add_function(wrap_pyfunction!(threshold_sweep, m)?)?;
    m.add_function(wrap_pyfunction!(bridge_similarity, m)?)?;
    m.add_function(wrap_pyfunction!(spanning_forest, m)?)?;
    Ok(())
}
