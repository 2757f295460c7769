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

/// How far a row's squared norm may be from 1 for the row to count as unit
/// already: `8 eps` (`eps = 2^-23`). Rounding an exact unit vector to float32
/// moves it by at most `eps + eps²/4`, and rows normalised in float32 (as
/// embedding models emit them) land within a few `eps`; rescaling such a row
/// would move each coordinate by at most `4 eps` relative, the size of that
/// rounding itself. Kept as they are, they are used in place (no copy).
const UNIT_TOLERANCE: f64 = 8.0 * f32::EPSILON as f64;

/// The factor that scales `row` to unit norm: `1 / |row|` (norm in f64),
/// or exactly `1.0` when the row is unit to within float32 rounding, so that
/// normalising twice gives the same bits as normalising once. `None` for a
/// row with NaN/Inf or of zero norm.
pub(crate) fn unit_factor(row: &[f32]) -> Option<f64> {
    if !row.iter().all(|v| v.is_finite()) {
        return None;
    }
    let sq = sum_sq(row);
    if sq == 0.0 {
        None
    } else if (sq - 1.0).abs() <= UNIT_TOLERANCE {
        Some(1.0)
    } else {
        Some(1.0 / sq.sqrt())
    }
}

/// `sum v^2` in f64 with independent lanes (not one long dependency chain).
pub(crate) fn sum_sq(row: &[f32]) -> f64 {
    const L: usize = 4;
    let mut acc = [0.0_f64; L];
    let mut chunks = row.chunks_exact(L);
    for ch in &mut chunks {
        for l in 0..L {
            acc[l] += f64::from(ch[l]) * f64::from(ch[l]);
        }
    }
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Validates every row of `x` and returns the factor that makes each a unit
/// row (see [`unit_factor`]).
///
/// Rows holding NaN or ±Inf give [`Error::NonFinite`], rows of zero norm
/// [`Error::ZeroNorm`]; each error lists every offending row index (`what`
/// names the array in the message). The one validation and normalisation
/// rule of the crate: [`normalize_rows`] and the metrics' gathered rows both
/// use it.
pub(crate) fn unit_factors(
    x: MatRef<'_>,
    what: &'static str,
    pool: &rayon::ThreadPool,
) -> Result<Vec<f64>> {
    check_non_empty(&x, what)?;
    let n = x.n_rows();
    let chunks: Vec<Vec<Option<f64>>> = pool.install(|| {
        (0..n.div_ceil(CHUNK_ROWS))
            .into_par_iter()
            .map(|c| {
                (c * CHUNK_ROWS..((c + 1) * CHUNK_ROWS).min(n))
                    .map(|r| unit_factor(x.row(r)))
                    .collect()
            })
            .collect()
    });
    let factors: Vec<Option<f64>> = chunks.into_iter().flatten().collect();
    let bad: Vec<usize> = (0..n).filter(|&r| factors[r].is_none()).collect();
    if !bad.is_empty() {
        let (non_finite, zero): (Vec<usize>, Vec<usize>) = bad
            .into_iter()
            .partition(|&r| x.row(r).iter().any(|v| !v.is_finite()));
        if !non_finite.is_empty() {
            return Err(Error::NonFinite {
                what,
                rows: non_finite,
            });
        }
        return Err(Error::ZeroNorm { what, rows: zero });
    }
    Ok(factors.into_iter().map(|f| f.unwrap_or(1.0)).collect())
}

/// Validates every row of `x` for the measures that take rows as they are
/// (no normalisation): rows holding NaN or ±Inf give [`Error::NonFinite`]
/// listing every one; zero rows are fine.
pub(crate) fn check_finite(
    x: MatRef<'_>,
    what: &'static str,
    pool: &rayon::ThreadPool,
) -> Result<()> {
    check_non_empty(&x, what)?;
    let n = x.n_rows();
    let bad: Vec<usize> = pool.install(|| {
        (0..n.div_ceil(CHUNK_ROWS))
            .into_par_iter()
            .flat_map_iter(|c| {
                (c * CHUNK_ROWS..((c + 1) * CHUNK_ROWS).min(n))
                    .filter(|&r| !x.row(r).iter().all(|v| v.is_finite()))
            })
            .collect()
    });
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Error::NonFinite { what, rows: bad })
    }
}

/// Returns a copy of `x` with every row scaled to unit L2 norm.
///
/// Norms are accumulated in `f64`; a row that is unit already (to float32
/// rounding) is copied unchanged, so normalising is idempotent. Rows holding
/// NaN or ±Inf give [`Error::NonFinite`], rows of zero norm
/// [`Error::ZeroNorm`]; each error lists every offending row index (`what`
/// names the array in the message).
///
/// ```
/// use simclust_core::{similarity::normalize_rows, MatRef};
/// let x = [3.0_f32, 4.0, 0.0, 2.0];
/// let y = normalize_rows(MatRef::new(&x, 2, 2)?, "X", None)?;
/// assert_eq!(y, vec![0.6, 0.8, 0.0, 1.0]);
/// assert_eq!(normalize_rows(MatRef::new(&y, 2, 2)?, "X", None)?, y);
/// # Ok::<(), simclust_core::Error>(())
/// ```
pub fn normalize_rows(
    x: MatRef<'_>,
    what: &'static str,
    n_threads: Option<usize>,
) -> Result<Vec<f32>> {
    let pool = parallel::pool(n_threads)?;
    let factors = unit_factors(x, what, &pool)?;
    let d = x.n_cols();
    let mut out = vec![0.0_f32; x.as_slice().len()];
    pool.install(|| {
        out.par_chunks_mut(CHUNK_ROWS * d)
            .enumerate()
            .for_each(|(c, dst)| {
                for (r, drow) in dst.chunks_exact_mut(d).enumerate() {
                    let row = c * CHUNK_ROWS + r;
                    scale_row(x.row(row), factors[row], drow);
                }
            })
    });
    Ok(out)
}

/// Whether every row of `x` is a unit row already (to float32 rounding), so
/// that [`normalize_rows`] would return `x` unchanged, bit for bit. Validates
/// as [`normalize_rows`] does.
///
/// ```
/// use simclust_core::{similarity::rows_are_unit, MatRef};
/// assert!(rows_are_unit(MatRef::new(&[0.6_f32, 0.8], 1, 2)?, "X", None)?);
/// assert!(!rows_are_unit(MatRef::new(&[3.0_f32, 4.0], 1, 2)?, "X", None)?);
/// # Ok::<(), simclust_core::Error>(())
/// ```
pub fn rows_are_unit(x: MatRef<'_>, what: &'static str, n_threads: Option<usize>) -> Result<bool> {
    let pool = parallel::pool(n_threads)?;
    Ok(unit_factors(x, what, &pool)?.iter().all(|&f| f == 1.0))
}

/// `out = row * factor`, each product in f64 rounded once to f32.
pub(crate) fn scale_row(row: &[f32], factor: f64, out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(row) {
        *o = (f64::from(v) * factor) as f32;
    }
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
        let again = normalize_rows(MatRef::new(&a, n, d)?, "X", Some(2))?;
        assert_eq!(again, a, "normalising twice changed bits");
        Ok(())
    }
}
