//! `simclust._native`: the PyO3 layer over `simclust-core`.
//!
//! This crate only converts arrays, runs the core outside the GIL through
//! [`detach::run_detached`] and maps errors; no algorithm lives here.

use pyo3::prelude::*;

mod arrays;
mod detach;
mod errors;
mod kmeans;
mod metrics;
mod similarity;
mod unionfind;

/// The thread count used when `n_threads` is not given
/// (`SIMCLUST_NUM_THREADS`, else the number of cores).
#[pyfunction]
fn default_num_threads() -> usize {
    simclust_core::parallel::default_num_threads()
}

#[pymodule(gil_used = false)]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(default_num_threads, m)?)?;
    similarity::register(m)?;
    unionfind::register(m)?;
    metrics::register(m)?;
    kmeans::register(m)?;
    Ok(())
}
