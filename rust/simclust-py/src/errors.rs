//! Maps core errors to the exception classes of `simclust.exceptions`
//! (defined in Python so that they can also subclass `ValueError`).

use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError};
use pyo3::PyErr;
use simclust_core::Error;

pyo3::import_exception!(simclust.exceptions, ShapeError);
pyo3::import_exception!(simclust.exceptions, InvalidInputError);
pyo3::import_exception!(simclust.exceptions, ParameterError);
pyo3::import_exception!(simclust.exceptions, SimclustError);
pyo3::import_exception!(simclust.exceptions, OutOfMemoryError);

/// Converts a core error into the matching Python exception.
pub(crate) fn to_pyerr(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Shape(_) => ShapeError::new_err(msg),
        Error::NonFinite { .. } | Error::ZeroNorm { .. } => InvalidInputError::new_err(msg),
        Error::Parameter(_) => ParameterError::new_err(msg),
        Error::ThreadPool(_) => SimclustError::new_err(msg),
        Error::OutOfMemory { .. } => OutOfMemoryError::new_err(msg),
        Error::Interrupted => PyKeyboardInterrupt::new_err("simclust computation interrupted"),
    }
}

/// An internal failure (a panic in a worker thread): never a crash.
pub(crate) fn internal(what: &str) -> PyErr {
    PyRuntimeError::new_err(format!(
        "simclust internal error in {what}; please report it with the input shape"
    ))
}
