//! Union-find: connected components, the threshold sweep and the
//! per-cluster bridge similarity (single linkage).
//!
//! Graphs are edge lists: `src[e]`, `dst[e]` (and `sim[e]` where weights
//! matter) over nodes `0..n`. Edges may come in any order and either
//! direction; duplicates are allowed and self-loops are ignored.
//!
//! * [`connected_components`] links every edge into a union-find forest
//!   whose root is always the smallest index of its tree (every parent is
//!   smaller than its child), using Rem's algorithm: both paths are climbed
//!   together and the walk stops as soon as they meet. Sequentially it
//!   compresses by splicing; on the pool it is lock-free (`AtomicU32`
//!   parents, compare-and-swap on roots, path halving; see
//!   `rem_union_atomic`). Since roots are the component minima, the
//!   canonical labels follow from the roots alone (numbering the roots in
//!   ascending order), so the output does not depend on the thread count or
//!   on the order in which the unions ran.
//! * [`threshold_sweep`] buckets the edges by the thresholds they pass and
//!   feeds the buckets, highest threshold first, to a [`UnionFind`] (union
//!   by size, path halving), which tracks the component count and the
//!   largest size.
//! * [`bridge_similarity`] is Kruskal's algorithm on the radix-sorted
//!   internal edges of the clusters.
//! * [`spanning_forest`] is Kruskal's algorithm on all the edges: the
//!   maximum spanning forest, which has the graph's components at every
//!   threshold (what a distributed run merges instead of the edges).
//!
//! On large graphs nearly every find starts with a cache miss, so the union
//! loops prefetch the entries of the edges a few positions ahead (and, in the
//! sweep, their parents too); that matters more than anything else once the
//! forest outgrows the caches.

mod bridge;
mod components;
mod forest;
mod keys;
mod spanning;
mod sweep;
#[cfg(test)]
mod tests;

pub use bridge::bridge_similarity;
pub use components::connected_components;
pub use forest::UnionFind;
pub use spanning::{spanning_forest, SpanningForest};
pub use sweep::{threshold_sweep, SweepRow};

use rayon::prelude::*;

use crate::error::{Error, Result};

/// Largest supported node count: node ids are `u32`.
const MAX_NODES: u64 = 1 << 32;

/// Below this many edges [`connected_components`] stays sequential.
const PAR_MIN_EDGES: usize = 1 << 16;

/// Edges handed to one rayon task at a time.
const EDGE_CHUNK: usize = 1 << 14;

/// Marks a root not yet given a label.
const UNSET: u32 = u32::MAX;

/// Union loops prefetch the parents of the edge this many positions ahead:
/// on large graphs every find starts with a cache miss, and the prefetches
/// let those misses overlap.
const PREFETCH_AHEAD: usize = 16;

/// Hints the CPU to bring `slice[i]` into cache. Never faults, even out of
/// bounds, and has no observable effect.
#[inline(always)]
fn prefetch<T>(slice: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let ptr = slice.as_ptr().wrapping_add(i).cast::<i8>();
        // SAFETY: a prefetch is only a hint: it does not access memory in the
        // sense of the memory model and cannot fault on any address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(ptr) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (slice, i);
    }
}

/// Prefetches the entries of `p` for both endpoints of edge
/// `e + PREFETCH_AHEAD`, if there is one.
#[inline(always)]
fn prefetch_edge<T>(p: &[T], src: &[u32], dst: &[u32], e: usize) {
    if let (Some(&s), Some(&d)) = (src.get(e + PREFETCH_AHEAD), dst.get(e + PREFETCH_AHEAD)) {
        prefetch(p, s as usize);
        prefetch(p, d as usize);
    }
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

/// Bytes per node the union-find kernels hold at their peak (parents, the
/// ranks or sizes, the output labels).
const BYTES_PER_NODE: usize = 24;

fn check_n(n: usize) -> Result<()> {
    if n as u64 > MAX_NODES {
        return Err(Error::Parameter(format!(
            "n = {n} nodes is more than the supported maximum of {MAX_NODES} (node ids are u32)"
        )));
    }
    crate::memory::ensure_allocatable(
        n.saturating_mul(BYTES_PER_NODE),
        &format!("the union-find state of {n} nodes"),
    )
}

fn check_lengths(src: &[u32], dst: &[u32]) -> Result<()> {
    if src.len() != dst.len() {
        return Err(Error::Shape(format!(
            "src and dst must have the same length, got src.len() = {} and dst.len() = {}",
            src.len(),
            dst.len()
        )));
    }
    Ok(())
}

fn check_weighted_edges(n: usize, src: &[u32], dst: &[u32], sim: &[f32]) -> Result<()> {
    if src.len() != dst.len() || src.len() != sim.len() {
        return Err(Error::Shape(format!(
            "src, dst and sim must have the same length, got src.len() = {}, dst.len() = {} and sim.len() = {}",
            src.len(),
            dst.len(),
            sim.len()
        )));
    }
    check_endpoints(n, src, dst, None)?;
    if sim.iter().any(|s| s.is_nan()) {
        let rows = sim
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_nan())
            .map(|(i, _)| i)
            .collect();
        return Err(Error::NonFinite {
            what: "similarity",
            rows,
        });
    }
    Ok(())
}

/// Every endpoint must be `< n`. A vectorised max first (on `pool` if
/// given); the offending edge is only searched for when there is one.
fn check_endpoints(
    n: usize,
    src: &[u32],
    dst: &[u32],
    pool: Option<&rayon::ThreadPool>,
) -> Result<()> {
    if n as u64 == MAX_NODES {
        return Ok(());
    }
    let max = |v: &[u32]| v.iter().copied().fold(0u32, u32::max);
    let top = match pool {
        Some(pool) => pool.install(|| {
            src.par_chunks(EDGE_CHUNK)
                .chain(dst.par_chunks(EDGE_CHUNK))
                .map(max)
                .max()
                .unwrap_or(0)
        }),
        None => max(src).max(max(dst)),
    };
    if src.is_empty() || (top as usize) < n {
        return Ok(());
    }
    for (e, (&s, &d)) in src.iter().zip(dst).enumerate() {
        for (name, v) in [("src", s), ("dst", d)] {
            if v as usize >= n {
                return Err(Error::Parameter(format!(
                    "edge {e} has endpoint {name}[{e}] = {v}, but node ids must be < n = {n}"
                )));
            }
        }
    }
    Ok(())
}

fn check_thresholds(thresholds: &[f32]) -> Result<()> {
    if let Some(i) = thresholds.iter().position(|t| t.is_nan()) {
        return Err(Error::Parameter(format!("thresholds[{i}] is NaN")));
    }
    Ok(())
}

/// Checks `labels` and returns the number of cluster ids (`max + 1`, or 0).
/// Ids are bounded by `n` (so the output is `O(n)`) and by `u32::MAX`
/// (the noise marker of the compact ids).
fn check_labels(n: usize, labels: &[i64]) -> Result<usize> {
    let limit = n.min(crate::NO_SLOT as usize) as u64;
    if labels.len() != n {
        return Err(Error::Shape(format!(
            "labels must have one entry per node, got labels.len() = {} and n = {n}",
            labels.len()
        )));
    }
    let mut max = -1i64;
    for (i, &l) in labels.iter().enumerate() {
        if l < -1 {
            return Err(Error::Parameter(format!(
                "labels[{i}] = {l}: labels must be -1 (noise) or a cluster id >= 0"
            )));
        }
        if l >= 0 && l as u64 >= limit {
            return Err(Error::Parameter(format!(
                "labels[{i}] = {l}: cluster ids must be < {limit} (n = {n})"
            )));
        }
        max = max.max(l);
    }
    Ok((max + 1) as usize)
}
