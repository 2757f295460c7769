//! The one error type of the core. The binding maps each variant to an
//! exception class of `simclust.exceptions`.

use std::fmt::Write as _;

/// Result alias used by every fallible function of the core.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in the core. No function of the core panics
/// on user input: it returns one of these.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum Error {
    /// An array has the wrong number of rows/columns or lengths disagree.
    #[error("{0}")]
    Shape(String),
    /// Rows contain NaN or ±Inf.
    #[error("{what} contains NaN or Inf in {} row(s): {}", rows.len(), list_rows(rows))]
    NonFinite {
        /// Which array (`"X"`, `"Y"`, `"similarity"`).
        what: &'static str,
        /// Offending row indices, ascending.
        rows: Vec<usize>,
    },
    /// Rows of zero norm cannot be normalised for cosine similarity.
    #[error("{what} has {} row(s) of zero norm (cosine similarity is undefined for them): {}", rows.len(), list_rows(rows))]
    ZeroNorm {
        /// Which array.
        what: &'static str,
        /// Offending row indices, ascending.
        rows: Vec<usize>,
    },
    /// A scalar parameter is out of its allowed range.
    #[error("{0}")]
    Parameter(String),
    /// The thread pool could not be built.
    #[error("could not start the thread pool: {0}")]
    ThreadPool(String),
    /// Memory for a result could not be allocated (checked before the work).
    #[error("cannot allocate {} for {what}: not enough memory", crate::memory::human_bytes(*bytes))]
    OutOfMemory {
        /// What the memory was for.
        what: String,
        /// The size of the request.
        bytes: u64,
    },
    /// The caller asked the computation to stop (Ctrl-C).
    #[error("interrupted")]
    Interrupted,
}

/// `"3, 17, 42"`, or the first ten and a count of the rest.
pub(crate) fn list_rows(rows: &[usize]) -> String {
    const SHOWN: usize = 10;
    let mut s = String::new();
    for (i, r) in rows.iter().take(SHOWN).enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{r}");
    }
    if rows.len() > SHOWN {
        let _ = write!(s, ", ... ({} more)", rows.len() - SHOWN);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_rows() {
        let e = Error::NonFinite {
            what: "X",
            rows: vec![3, 17],
        };
        assert_eq!(e.to_string(), "X contains NaN or Inf in 2 row(s): 3, 17");
        let e = Error::ZeroNorm {
            what: "Y",
            rows: (0..12).collect(),
        };
        assert!(e.to_string().ends_with("8, 9, ... (2 more)"), "{e}");
    }
}
