//! Inter-cluster geometry from the centroids: the dense `K x K` matrix and
//! each cluster's nearest clusters, by cosine similarity of the unit
//! centroids or in another [`Measure`] (inner product or Euclidean distance
//! of the mean rows).

use std::borrow::Cow;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::matrix::MatRef;
use crate::parallel::{self, Control};
use crate::search::{self, Plan, Record};
use crate::similarity::BLOCK;

use super::kernel::run_indexed;
use super::measure::{Measure, Tile};
use crate::similarity::topk::TopK;

/// The dense `K x K` matrix of cosine similarities between the unit
/// centroids (`k x d`, row-major, as [`super::CentroidStats::centroids`]).
/// Rows and columns of an undefined (NaN) centroid are NaN.
pub fn centroid_similarity_matrix(
    centroids: &[f32],
    k: usize,
    d: usize,
    n_threads: Option<usize>,
) -> Result<Vec<f32>> {
    centroid_matrix(centroids, k, d, Measure::Cosine, n_threads)
}

/// The dense `K x K` matrix of `measure` between the centroids (`k x d`,
/// row-major, as [`super::CentroidStats::centroids`] of a grouping in that
/// measure): cosine similarities, inner products or Euclidean distances.
/// Rows and columns of an undefined (NaN) centroid are NaN.
///
/// ```
/// use simclust_core::metrics::{centroid_matrix, Measure};
/// let m = centroid_matrix(&[0.0, 0.0, 3.0, 4.0], 2, 2, Measure::Euclidean, None)?;
/// assert_eq!(m, vec![0.0, 5.0, 5.0, 0.0]);
/// # Ok::<(), simclust_core::Error>(())
/// ```
pub fn centroid_matrix(
    centroids: &[f32],
    k: usize,
    d: usize,
    measure: Measure,
    n_threads: Option<usize>,
) -> Result<Vec<f32>> {
    if centroids.len() != k * d {
        return Err(Error::Shape(format!(
            "centroids hold {} values, expected {k} x {d}",
            centroids.len()
        )));
    }
    let mut out = vec![0.0_f32; k * k];
    if k == 0 {
        return Ok(out);
    }
    let pool = parallel::pool(n_threads)?;
    pool.install(|| {
        out.par_chunks_mut(BLOCK * k)
            .enumerate()
            .for_each(|(b, dst)| {
                let ra = dst.len() / k;
                let a = &centroids[b * BLOCK * d..(b * BLOCK + ra) * d];
                Tile::new(measure, d).values(a, ra, centroids, k, dst);
            })
    });
    Ok(out)
}

/// Each cluster's nearest clusters by a [`Measure`] between centroids.
#[derive(Debug, Clone, PartialEq)]
pub struct NearestClusters {
    /// Slot of the cluster the row is about.
    pub from: Vec<u32>,
    /// Slot of a neighbouring cluster.
    pub to: Vec<u32>,
    /// The measure between the two centroids (cosine similarity, inner
    /// product or Euclidean distance).
    pub value: Vec<f32>,
}

/// For every cluster, its `m` nearest other clusters (all of them when `m`
/// is `None` or larger), by centroid cosine similarity: rows grouped by
/// `from` in slot order, each group sorted by similarity descending, ties
/// by the lower slot. Clusters with an undefined (NaN) centroid are neither
/// sources nor neighbours.
///
/// The search over the centroids follows `plan` ([`search::self_knn`]):
/// exact by brute force, or over a partition of the centroids with its
/// recall@m measured and returned in the [`Record`]. A partitioned search
/// may list fewer than `m` clusters for a cluster.
pub fn nearest_clusters(
    centroids: &[f32],
    k: usize,
    d: usize,
    m: Option<usize>,
    plan: &Plan,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<(NearestClusters, Option<Record>)> {
    if centroids.len() != k * d {
        return Err(Error::Shape(format!(
            "centroids hold {} values, expected {k} x {d}",
            centroids.len()
        )));
    }
    nearest_centroids(
        MatRef::new(centroids, k, d)?,
        Measure::Cosine,
        m,
        plan,
        n_threads,
        ctl,
    )
}

/// [`nearest_clusters`] in any [`Measure`]: the centroids (`K x D`, as
/// [`super::CentroidStats::centroids`] of a grouping in that measure) sorted
/// closest first (highest similarity, or lowest Euclidean distance), ties
/// by the lower slot. Cosine searches as `plan` says; the other measures
/// always search exactly (brute force over blocks of centroids: the
/// partitioned search is a cosine one), and say so in the [`Record`].
///
/// ```
/// use simclust_core::{metrics::{nearest_centroids, Measure}, search::Plan, Control, MatRef};
/// let c = [0.0_f32, 0.0, 3.0, 4.0, 0.0, 1.0];
/// let (nn, _) = nearest_centroids(MatRef::new(&c, 3, 2)?, Measure::Euclidean, Some(1),
///                                 &Plan::default(), None, &Control::new())?;
/// assert_eq!((nn.to, nn.value), (vec![2, 2, 0], vec![1.0, 4.2426405, 1.0]));
/// # Ok::<(), simclust_core::Error>(())
/// ```
pub fn nearest_centroids(
    x: MatRef<'_>,
    measure: Measure,
    m: Option<usize>,
    plan: &Plan,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<(NearestClusters, Option<Record>)> {
    let (k, d) = (x.n_rows(), x.n_cols());
    let centroids = x.as_slice();
    if centroids.len() != k * d {
        return Err(Error::Shape(format!(
            "centroids hold {} values, expected {k} x {d}",
            centroids.len()
        )));
    }
    if m == Some(0) {
        return Err(Error::Parameter(
            "the number of nearest clusters must be >= 1, got 0".into(),
        ));
    }
    let valid: Vec<u32> = (0..k)
        .filter(|&c| centroids[c * d..(c + 1) * d].iter().all(|v| v.is_finite()))
        .map(|c| c as u32)
        .collect();
    let v = valid.len();
    let mut out = NearestClusters {
        from: Vec::new(),
        to: Vec::new(),
        value: Vec::new(),
    };
    if v < 2 {
        return Ok((out, None));
    }
    let mm = m.unwrap_or(v - 1).min(v - 1);
    let packed: Cow<'_, [f32]> = if v == k {
        Cow::Borrowed(centroids)
    } else {
        Cow::Owned(
            valid
                .iter()
                .flat_map(|&c| {
                    centroids[c as usize * d..(c as usize + 1) * d]
                        .iter()
                        .copied()
                })
                .collect(),
        )
    };
    let packed = MatRef::new(&packed, v, d)?;
    let (indices, values, record) = if measure == Measure::Cosine {
        let (nn, record) = search::self_knn(packed, mm, plan, n_threads, ctl)?;
        (nn.indices, nn.similarities, record)
    } else {
        exact_nearest(packed, measure, mm, n_threads, ctl)?
    };
    let total = indices.len();
    out.from.reserve(total);
    out.to.reserve(total);
    out.value.reserve(total);
    for (i, &from) in valid.iter().enumerate() {
        for slot in i * mm..(i + 1) * mm {
            let j = indices[slot];
            if j != u32::MAX {
                out.from.push(from);
                out.to.push(valid[j as usize]);
                out.value.push(values[slot]);
            }
        }
    }
    Ok((out, Some(record)))
}

/// Centroids per task of [`exact_nearest`].
const NEAREST_ROWS: usize = 256;

/// Each row's `m` closest other rows of `x` in `measure`, by brute force:
/// `(indices, values, record)`, `n x m` row-major, closest first, ties by
/// the lower row. Distances are ranked by their negation, so one top-k
/// order (higher first) serves both kinds of measure. The GEMM tiles find
/// the candidates; the values kept are recomputed exactly (f64 sums), so
/// they do not carry the tiles' cancellation error.
fn exact_nearest(
    x: MatRef<'_>,
    measure: Measure,
    m: usize,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<(Vec<u32>, Vec<f32>, Record)> {
    let (n, d) = (x.n_rows(), x.n_cols());
    let rows = x.as_slice();
    let sign = if measure.higher_is_closer() {
        1.0
    } else {
        -1.0
    };
    let pool = parallel::pool(n_threads)?;
    let parts = run_indexed(
        &pool,
        n.div_ceil(NEAREST_ROWS),
        ctl,
        || (Tile::new(measure, d), vec![0.0_f32; NEAREST_ROWS * BLOCK]),
        |(tile, buf), t| {
            let (r0, r1) = (t * NEAREST_ROWS, ((t + 1) * NEAREST_ROWS).min(n));
            let ra = r1 - r0;
            let mut top = TopK::new(ra, m);
            for c0 in (0..n).step_by(BLOCK) {
                let c1 = (c0 + BLOCK).min(n);
                let rb = c1 - c0;
                tile.values(&rows[r0 * d..r1 * d], ra, &rows[c0 * d..c1 * d], rb, buf);
                for r in 0..ra {
                    for (c, &v) in buf[r * rb..(r + 1) * rb].iter().enumerate() {
                        if c0 + c != r0 + r {
                            top.push(r, sign * v, (c0 + c) as u32);
                        }
                    }
                }
            }
            // the kept values recomputed exactly (f64 sums), re-sorted closest first
            let (idx, vals) = top.into_parts();
            let mut row: Vec<(f32, u32)> = Vec::with_capacity(m);
            let (mut out_i, mut out_v) = (Vec::with_capacity(idx.len()), Vec::new());
            for (r, (ri, _)) in idx.chunks_exact(m).zip(vals.chunks_exact(m)).enumerate() {
                let u = &rows[(r0 + r) * d..(r0 + r + 1) * d];
                row.clear();
                row.extend(ri.iter().filter(|&&j| j != u32::MAX).map(|&j| {
                    let v = &rows[j as usize * d..(j as usize + 1) * d];
                    (sign * measure.pair(u, v), j)
                }));
                row.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                row.resize(m, (f32::NEG_INFINITY, u32::MAX));
                out_i.extend(row.iter().map(|e| e.1));
                out_v.extend(row.iter().map(|e| e.0));
            }
            (out_i, out_v)
        },
    )?;
    let (mut indices, mut values) = (Vec::with_capacity(n * m), Vec::with_capacity(n * m));
    for (i, v) in parts {
        indices.extend(i);
        values.extend(v.into_iter().map(|s| sign * s));
    }
    let work = crate::search::exact_work(n, d);
    let pairs = (n as u64) * (n as u64).saturating_sub(1) / 2;
    Ok((indices, values, Record::exact(false, work, pairs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_and_nearest() -> Result<()> {
        let h = std::f32::consts::FRAC_1_SQRT_2;
        let c = [1.0, 0.0, f32::NAN, f32::NAN, h, h, 0.0, 1.0];
        let mat = centroid_similarity_matrix(&c, 4, 2, Some(2))?;
        assert!((mat[2] - h).abs() < 1e-6 && (mat[3]).abs() < 1e-6);
        assert!(mat[1].is_nan() && mat[4].is_nan());
        let exact = Plan {
            method: crate::search::Method::Exact,
            ..Plan::default()
        };
        let (nn, rec) = nearest_clusters(&c, 4, 2, Some(1), &exact, Some(2), &Control::new())?;
        assert_eq!(rec.map(|r| r.recall), Some(1.0));
        assert_eq!(nn.from, vec![0, 2, 3]);
        // Cluster 2 is equally close to 0 and 3: the lower slot wins.
        assert_eq!(nn.to, vec![2, 0, 2]);
        assert!((nn.value[0] - h).abs() < 1e-6);
        let (all, _) = nearest_clusters(&c, 4, 2, None, &exact, None, &Control::new())?;
        assert_eq!(all.from, vec![0, 0, 2, 2, 3, 3]);
        assert_eq!(all.to, vec![2, 3, 0, 3, 2, 0]);
        assert!(nearest_clusters(&c, 4, 2, Some(0), &exact, None, &Control::new()).is_err());
        Ok(())
    }
}
