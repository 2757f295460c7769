//! L2 normalisation with validation of every row.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::matrix::MatRef;
use crate::parallel;

/// Rows per parallel chunk when normalising.
const CHUNK_ROWS: usize = 4096;

/// Checks that `x` is non-empty (N >= 1, D >= 1).
pub(crate) fn check_non_empty(x: &MatRef<'_>, what: &str) -> Result<()> {
    if x.n_rows() == 0 {
        return Err(Error::Shape(format!("{what} is empty: it has 0 rows")));
    }
    if x.n_cols() == 0 {
        return Err(Error::Shape(format!(
            "{what} has 0 columns: embeddings need at least one dimension"
        )));
    }
    Ok(())
}

/// Returns a copy of `x` with every row scaled to unit L2 norm.
///
/// Norms are accumulated in `f64`. Rows holding NaN or ±Inf give
/// [`Error::NonFinite`], rows of zero norm [`Error::ZeroNorm`]; each error
/// lists every offending row index (`what` names the array in the message).
///
/// ```
/// use simclust_core::{similarity::normalize_rows, MatRef};
/// let x = [3.0_f32, 4.0, 0.0, 2.0];
/// let y = normalize_rows(MatRef::new(&x, 2, 2)?, "X", None)?;
/// assert_eq!(y, vec![0.6, 0.8, 0.0, 1.0]);
/// # Ok::<(), simclust_core::Error>(())
/// ```
pub fn normalize_rows(
    x: MatRef<'_>,
    what: &'static str,
    n_threads: Option<usize>,
) -> Result<Vec<f32>> {
    check_non_empty(&x, what)?;
    let d = x.n_cols();
    let pool = parallel::pool(n_threads)?;
    let mut out = vec![0.0_f32; x.as_slice().len()];
    // Per chunk: (non-finite rows, zero rows), merged in chunk order.
    let bad: Vec<(Vec<usize>, Vec<usize>)> = pool.install(|| {
        out.par_chunks_mut(CHUNK_ROWS * d)
            .enumerate()
            .map(|(c, dst)| {
                let first = c * CHUNK_ROWS;
                let mut non_finite = Vec::new();
                let mut zero = Vec::new();
                for (r, drow) in dst.chunks_exact_mut(d).enumerate() {
                    let row = x.row(first + r);
                    let mut sq = 0.0_f64;
                    let mut finite = true;
                    for &v in row {
                        finite &= v.is_finite();
                        sq += f64::from(v) * f64::from(v);
                    }
                    if !finite {
                        non_finite.push(first + r);
                    } else if sq == 0.0 {
                        zero.push(first + r);
                    } else {
                        let inv = 1.0 / sq.sqrt();
                        for (o, &v) in drow.iter_mut().zip(row) {
                            *o = (f64::from(v) * inv) as f32;
                        }
                    }
                }
                (non_finite, zero)
            })
            .collect()
    });
    let non_finite: Vec<usize> = bad.iter().flat_map(|b| b.0.iter().copied()).collect();
    if !non_finite.is_empty() {
        return Err(Error::NonFinite {
            what,
            rows: non_finite,
        });
    }
    let zero: Vec<usize> = bad.iter().flat_map(|b| b.1.iter().copied()).collect();
    if !zero.is_empty() {
        return Err(Error::ZeroNorm { what, rows: zero });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_rows_by_index() -> Result<()> {
        let x = [1.0, 0.0, f32::NAN, 1.0, 0.0, 0.0, 1.0, f32::INFINITY];
        let e = normalize_rows(MatRef::new(&x, 4, 2)?, "X", Some(1));
        assert_eq!(
            e,
            Err(Error::NonFinite {
                what: "X",
                rows: vec![1, 3]
            })
        );
        let x = [1.0, 0.0, 0.0, 0.0];
        let e = normalize_rows(MatRef::new(&x, 2, 2)?, "Y", Some(1));
        assert_eq!(
            e,
            Err(Error::ZeroNorm {
                what: "Y",
                rows: vec![1]
            })
        );
        assert!(matches!(
            normalize_rows(MatRef::new(&[], 0, 3)?, "X", None),
            Err(Error::Shape(_))
        ));
        Ok(())
    }

    #[test]
    fn unit_norm_and_thread_independent() -> Result<()> {
        let n = 10_000;
        let d = 7;
        let x: Vec<f32> = (0..n * d)
            .map(|i| ((i * 7919) % 113) as f32 - 50.5)
            .collect();
        let a = normalize_rows(MatRef::new(&x, n, d)?, "X", Some(1))?;
        let b = normalize_rows(MatRef::new(&x, n, d)?, "X", Some(2))?;
        assert_eq!(a, b);
        for row in a.chunks_exact(d) {
            let norm: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-6);
        }
        Ok(())
    }
}
