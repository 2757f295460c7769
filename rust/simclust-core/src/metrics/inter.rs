//! Inter-cluster geometry from the unit centroids: the dense `K x K` cosine
//! matrix and each cluster's nearest clusters.

use std::borrow::Cow;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::matrix::MatRef;
use crate::parallel::{self, Control};
use crate::search::{self, Plan, Record};
use crate::similarity::BLOCK;

use super::kernel::gemm_abt;
use crate::similarity::exact::refine_tile;

/// The dense `K x K` matrix of cosine similarities between the unit
/// centroids (`k x d`, row-major, as [`super::CentroidStats::centroids`]).
/// Rows and columns of an undefined (NaN) centroid are NaN.
pub fn centroid_similarity_matrix(
    centroids: &[f32],
    k: usize,
    d: usize,
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
                gemm_abt(a, ra, centroids, k, d, dst);
                refine_tile(dst, ra, k, a, centroids, d);
            })
    });
    Ok(out)
}

/// Each cluster's nearest clusters by centroid cosine similarity.
#[derive(Debug, Clone, PartialEq)]
pub struct NearestClusters {
    /// Slot of the cluster the row is about.
    pub from: Vec<u32>,
    /// Slot of a neighbouring cluster.
    pub to: Vec<u32>,
    /// Cosine similarity of the two centroids.
    pub similarity: Vec<f32>,
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
        similarity: Vec::new(),
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
    let (nn, record) = search::self_knn(MatRef::new(&packed, v, d)?, mm, plan, n_threads, ctl)?;
    drop(packed);
    let total = nn.indices.len();
    out.from.reserve(total);
    out.to.reserve(total);
    out.similarity.reserve(total);
    for (i, &from) in valid.iter().enumerate() {
        for slot in i * mm..(i + 1) * mm {
            let j = nn.indices[slot];
            if j != u32::MAX {
                out.from.push(from);
                out.to.push(valid[j as usize]);
                out.similarity.push(nn.similarities[slot]);
            }
        }
    }
    Ok((out, Some(record)))
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
        let (all, _) = nearest_clusters(&c, 4, 2, None, &exact, None, &Control::new())?;
        assert_eq!(all.from, vec![0, 0, 2, 2, 3, 3]);
        assert_eq!(all.to, vec![2, 3, 0, 3, 2, 0]);
        assert!(nearest_clusters(&c, 4, 2, Some(0), &exact, None, &Control::new()).is_err());
        Ok(())
    }
}
