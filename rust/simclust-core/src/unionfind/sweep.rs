//! Components and the largest component at each of many thresholds.

use super::forest::UnionFind;
use super::*;

// ---------------------------------------------------------------------------
// Threshold sweep
// ---------------------------------------------------------------------------

/// One row of a threshold sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepRow {
    /// Number of connected components (singletons included).
    pub n_components: u64,
    /// Number of nodes in the largest component (0 when `n == 0`).
    pub largest_component: u64,
}

/// For each threshold (in the given order): components and largest component
/// size of the graph made of the edges with sim >= threshold. One pass: edges
/// sorted by descending similarity fed to a union-find, thresholds visited in
/// descending order.
///
/// The "sort" is a counting sort of the edges into the intervals between
/// consecutive distinct thresholds (edges below the smallest threshold are
/// dropped): the same rows as a full sort, in two linear passes over the
/// edges plus one union per kept edge.
/// Thresholds may repeat and may be `±inf`; `-0.0` and `0.0` are the same
/// threshold. Self-loops are ignored, duplicate edges allowed.
///
/// # Errors
/// [`Error::Shape`] if `src`, `dst` and `sim` differ in length;
/// [`Error::Parameter`] if an endpoint is `>= n`, `n > u32::MAX + 1` or a
/// threshold is NaN; [`Error::NonFinite`] listing the positions of NaN
/// similarities.
pub fn threshold_sweep(
    n: usize,
    src: &[u32],
    dst: &[u32],
    sim: &[f32],
    thresholds: &[f32],
) -> Result<Vec<SweepRow>> {
    check_n(n)?;
    check_weighted_edges(n, src, dst, sim)?;
    check_thresholds(thresholds)?;
    if thresholds.is_empty() {
        return Ok(Vec::new());
    }
    // Distinct thresholds, descending.
    let mut levels: Vec<f32> = thresholds.to_vec();
    levels.sort_unstable_by(|a, b| b.total_cmp(a));
    levels.dedup_by(|a, b| a == b);
    let n_levels = levels.len();

    // Bucket of an edge: the first (largest) level it passes, i.e. the number
    // of levels above it; n_levels = none. Branch-free for few levels.
    let bucket = |s: f32| {
        if n_levels <= 64 {
            levels.iter().map(|&t| usize::from(s < t)).sum()
        } else {
            levels.partition_point(|&t| s < t)
        }
    };
    let mut start = vec![0usize; n_levels + 1];
    for ((&s, &d), &w) in src.iter().zip(dst).zip(sim) {
        if s != d {
            let b = bucket(w);
            if b < n_levels {
                start[b + 1] += 1;
            }
        }
    }
    for b in 0..n_levels {
        start[b + 1] += start[b];
    }
    let mut fill = start.clone();
    let mut edges = vec![(0u32, 0u32); start[n_levels]];
    for ((&s, &d), &w) in src.iter().zip(dst).zip(sim) {
        if s != d {
            let b = bucket(w);
            if b < n_levels {
                edges[fill[b]] = (s, d);
                fill[b] += 1;
            }
        }
    }

    let mut uf = UnionFind::new(n)?;
    let mut rows = Vec::with_capacity(n_levels);
    for b in 0..n_levels {
        for e in start[b]..start[b + 1] {
            if let Some(&(s2, d2)) = edges.get(e + 2 * PREFETCH_AHEAD) {
                uf.prefetch(s2);
                uf.prefetch(d2);
            }
            if let Some(&(s2, d2)) = edges.get(e + PREFETCH_AHEAD) {
                uf.prefetch_parent(s2);
                uf.prefetch_parent(d2);
            }
            let (s, d) = edges[e];
            uf.union(s, d);
        }
        rows.push(SweepRow {
            n_components: uf.n_components(),
            largest_component: uf.largest_component(),
        });
    }
    Ok(thresholds
        .iter()
        .map(|&t| rows[levels.partition_point(|&l| t < l)])
        .collect())
}
