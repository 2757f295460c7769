//! A borrowed row-major `f32` matrix: the one input type of the kernels.

use crate::error::{Error, Result};

/// A borrowed, C-contiguous (row-major) matrix of `f32`.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    data: &'a [f32],
    n_rows: usize,
    n_cols: usize,
}

impl<'a> MatRef<'a> {
    /// Wraps `data` as an `n_rows x n_cols` row-major matrix.
    ///
    /// Errors with [`Error::Shape`] when the length does not match.
    pub fn new(data: &'a [f32], n_rows: usize, n_cols: usize) -> Result<Self> {
        match n_rows.checked_mul(n_cols) {
            Some(len) if len == data.len() => Ok(Self {
                data,
                n_rows,
                n_cols,
            }),
            _ => Err(Error::Shape(format!(
                "buffer of {} values cannot be a {n_rows} x {n_cols} matrix",
                data.len()
            ))),
        }
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Number of columns (the embedding dimension).
    pub fn n_cols(&self) -> usize {
        self.n_cols
    }

    /// The whole buffer, row-major.
    pub fn as_slice(&self) -> &'a [f32] {
        self.data
    }

    /// Row `i`.
    ///
    /// # Panics
    /// When `i >= n_rows` (an internal bug, never user input).
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.n_cols..(i + 1) * self.n_cols]
    }

    /// Rows `start..end` as a contiguous slice.
    pub fn rows(&self, start: usize, end: usize) -> &'a [f32] {
        &self.data[start * self.n_cols..end * self.n_cols]
    }
}

/// [`Error::Shape`] unless `a` and `b` have the same number of columns (dimension).
pub(crate) fn check_same_cols(
    a: &MatRef<'_>,
    a_name: &str,
    b: &MatRef<'_>,
    b_name: &str,
) -> Result<()> {
    if a.n_cols() != b.n_cols() {
        return Err(Error::Shape(format!(
            "{a_name} and {b_name} must have the same number of columns, got {} and {}",
            a.n_cols(),
            b.n_cols()
        )));
    }
    Ok(())
}
