//! Array conversion at the boundary: strict float32/uint32/... C-contiguous
//! views in, owned vectors handed to numpy without a copy out.

use numpy::ndarray::Array2;
use numpy::{
    Element, IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use simclust_core::MatRef;

use crate::errors::ShapeError;

/// A borrowed C-contiguous 2-D array as a [`MatRef`].
pub(crate) fn mat<'a>(a: &'a PyReadonlyArray2<'_, f32>, what: &str) -> PyResult<MatRef<'a>> {
    let shape = a.shape();
    let (n, d) = (shape[0], shape[1]);
    let data = a.as_slice().map_err(|_| {
        ShapeError::new_err(format!(
            "{what} must be C-contiguous float32 (convert it with np.ascontiguousarray)"
        ))
    })?;
    MatRef::new(data, n, d).map_err(crate::errors::to_pyerr)
}

/// A borrowed C-contiguous 1-D array as a slice.
pub(crate) fn vec1<'a, T: Element>(
    a: &'a PyReadonlyArray1<'_, T>,
    what: &str,
) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|_| ShapeError::new_err(format!("{what} must be a C-contiguous 1-D array")))
}

/// A borrowed C-contiguous 1-D `u64` array (offsets, boundaries) as `usize`s.
pub(crate) fn usizes(a: &PyReadonlyArray1<'_, u64>, what: &str) -> PyResult<Vec<usize>> {
    vec1(a, what)?
        .iter()
        .map(|&o| usize::try_from(o))
        .collect::<Result<Vec<usize>, _>>()
        .map_err(|_| ShapeError::new_err(format!("{what}: offsets out of range")))
}

/// An owned vector as a 1-D numpy array (no copy).
pub(crate) fn to_py1<T: Element>(py: Python<'_>, v: Vec<T>) -> Bound<'_, PyArray1<T>> {
    v.into_pyarray(py)
}

/// A borrowed C-contiguous 2-D array's values, row-major.
pub(crate) fn slice2<'a, T: Element>(
    a: &'a PyReadonlyArray2<'_, T>,
    what: &str,
) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|_| ShapeError::new_err(format!("{what} must be a C-contiguous 2-D array")))
}

/// An owned row-major vector as an `n x k` numpy array (no copy).
pub(crate) fn to_py2<T: Element>(
    py: Python<'_>,
    v: Vec<T>,
    n: usize,
    k: usize,
) -> PyResult<Bound<'_, PyArray2<T>>> {
    let a =
        Array2::from_shape_vec((n, k), v).map_err(|e| crate::errors::internal(&e.to_string()))?;
    Ok(a.into_pyarray(py))
}
