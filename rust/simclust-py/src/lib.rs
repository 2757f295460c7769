//! `simclust._native`: the PyO3 layer over `simclust-core`.
//!
//! This crate only converts arrays, runs the core outside the GIL through
//! [`detach::run_detached`] and maps errors; no algorithm lives here.

use pyo3::prelude::*;

mod arrays;
mod detach;
mod errors;
mod kmeans;
mod knn_parts;
mod metrics;
mod pages;
mod similarity;
mod unionfind;

/// The thread count a kernel uses for `n_threads` (`None`:
/// `SIMCLUST_NUM_THREADS`, else the number of cores); an invalid or too large
/// count raises `ParameterError`.
#[pyfunction]
#[pyo3(signature = (n_threads=None))]
fn resolve_threads(n_threads: Option<i64>) -> PyResult<usize> {
    let n = match n_threads {
        None => None,
        Some(n) if n < 1 => {
            return Err(errors::to_pyerr(simclust_core::Error::Parameter(format!(
                "n_threads must be a positive integer, got {n}"
            ))))
        }
        Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
    };
    simclust_core::parallel::resolve_threads(n).map_err(errors::to_pyerr)
}

/// Whether `auto` searches `n` vectors of dimension `d` by brute force
/// (`simclust_core::search::auto_exact`), and the brute force's
/// multiply-adds.
#[pyfunction]
fn auto_exact(n: usize, d: usize) -> (bool, f64) {
    (
        simclust_core::search::auto_exact(n, d),
        simclust_core::search::exact_work(n, d),
    )
}

/// The default number of lists of a partition of `n` rows.
#[pyfunction]
fn default_n_lists(n: usize) -> usize {
    simclust_core::ivf::default_n_lists(n)
}

#[pymodule(gil_used = false)]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(resolve_threads, m)?)?;
    m.add_function(wrap_pyfunction!(auto_exact, m)?)?;
    m.add_function(wrap_pyfunction!(default_n_lists, m)?)?;
    similarity::register(m)?;
    unionfind::register(m)?;
    metrics::register(m)?;
    kmeans::register(m)?;
    knn_parts::register(m)?;
    Ok(())
}
