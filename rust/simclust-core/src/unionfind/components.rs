//! Canonical connected-component labels of an edge list.

use std::sync::atomic::AtomicU32;

use rayon::prelude::*;

use super::forest::{
    labels_from_min_forest, labels_from_min_forest_par, rem_union, rem_union_atomic,
};
use super::*;
use crate::parallel;

/// Canonical connected-component labels: components numbered 0..C-1 in order
/// of their smallest member index.
///
/// `src[e]`–`dst[e]` are undirected edges over nodes `0..n`, in any order and
/// direction; duplicates are allowed and self-loops ignored. The labels do
/// not depend on `n_threads` (`None` = the default pool size; small inputs
/// run sequentially).
///
/// # Errors
/// [`Error::Shape`] if `src` and `dst` differ in length;
/// [`Error::Parameter`] if an endpoint is `>= n`, if `n > u32::MAX + 1` or if
/// `n_threads == Some(0)`; [`Error::ThreadPool`] if the pool cannot start.
pub fn connected_components(
    n: usize,
    src: &[u32],
    dst: &[u32],
    n_threads: Option<usize>,
) -> Result<Vec<i64>> {
    check_n(n)?;
    check_lengths(src, dst)?;
    let threads = parallel::resolve_threads(n_threads)?;
    // Small inputs, or one thread: sequential, without touching the pool.
    let pool = if threads == 1 || src.len() < PAR_MIN_EDGES {
        None
    } else {
        Some(parallel::pool(Some(threads))?)
    };
    check_endpoints(n, src, dst, pool.as_deref())?;
    if let Some(pool) = pool {
        let p: Vec<AtomicU32> = pool.install(|| {
            let p: Vec<AtomicU32> = (0..n)
                .into_par_iter()
                .map(|i| AtomicU32::new(i as u32))
                .collect();
            src.par_chunks(EDGE_CHUNK)
                .zip(dst.par_chunks(EDGE_CHUNK))
                .for_each(|(src, dst)| {
                    for (e, (&s, &d)) in src.iter().zip(dst).enumerate() {
                        prefetch_edge(&p, src, dst, e);
                        rem_union_atomic(&p, s, d);
                    }
                });
            p
        });
        return Ok(labels_from_min_forest_par(p, &pool));
    }
    let mut p: Vec<u32> = (0..n).map(|i| i as u32).collect();
    for (e, (&s, &d)) in src.iter().zip(dst).enumerate() {
        prefetch_edge(&p, src, dst, e);
        rem_union(&mut p, s, d);
    }
    Ok(labels_from_min_forest(p))
}
