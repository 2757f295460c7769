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
//!
//! On large graphs nearly every find starts with a cache miss, so the union
//! loops prefetch the entries of the edges a few positions ahead (and, in the
//! sweep, their parents too); that matters more than anything else once the
//! forest outgrows the caches.

use std::sync::atomic::{AtomicU32, Ordering};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::parallel;

/// Largest supported node count: node ids are `u32`.
const MAX_NODES: u64 = 1 << 32;

/// Below this many edges [`connected_components`] stays sequential.
const PAR_MIN_EDGES: usize = 1 << 16;

/// Edges handed to one rayon task at a time.
const EDGE_CHUNK: usize = 1 << 14;

/// Marks a root not yet given a label.
const UNSET: u32 = u32::MAX;

/// Compact cluster id of a noise node.
const NOISE: u32 = u32::MAX;

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
    let limit = n.min(NOISE as usize) as u64;
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

// ---------------------------------------------------------------------------
// Sort keys
// ---------------------------------------------------------------------------

/// Order-preserving map of `f32` to `u32`: `a.total_cmp(&b)` equals
/// `key(a).cmp(&key(b))`.
#[inline]
fn f32_key(x: f32) -> u32 {
    let b = x.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// Inverse of [`f32_key`].
#[inline]
fn key_f32(k: u32) -> f32 {
    f32::from_bits(if k & 0x8000_0000 != 0 {
        k & 0x7fff_ffff
    } else {
        !k
    })
}

/// Stable LSD radix sort of `v` by the first field, in 11-bit digits; a
/// digit that is the same for every element costs no pass.
fn radix_sort_by_first(v: &mut Vec<(u32, u32, u32)>) {
    const BITS: u32 = 11;
    const RADIX: usize = 1 << BITS;
    const PASSES: usize = 3;
    let digit = |k: u32, p: usize| ((k >> (BITS as usize * p)) as usize) & (RADIX - 1);
    let Some(&(k0, _, _)) = v.first() else {
        return;
    };
    let mut hist = vec![[0usize; RADIX]; PASSES];
    for &(k, _, _) in v.iter() {
        for (p, h) in hist.iter_mut().enumerate() {
            h[digit(k, p)] += 1;
        }
    }
    let mut buf = Vec::new();
    for (p, h) in hist.iter_mut().enumerate() {
        if h[digit(k0, p)] == v.len() {
            continue;
        }
        let mut sum = 0;
        for c in h.iter_mut() {
            (*c, sum) = (sum, sum + *c);
        }
        buf.resize(v.len(), (0, 0, 0));
        for &x in v.iter() {
            let slot = &mut h[digit(x.0, p)];
            buf[*slot] = x;
            *slot += 1;
        }
        std::mem::swap(v, &mut buf);
    }
}

// ---------------------------------------------------------------------------
// UnionFind
// ---------------------------------------------------------------------------

/// Disjoint sets over `0..n` with union by size and path halving; keeps the
/// number of components and the size of the largest one up to date.
///
/// Methods taking a node id panic if it is `>= len()`, like slice indexing;
/// the public functions of this module validate their input first.
#[derive(Debug, Clone)]
pub struct UnionFind {
    /// Per node, its parent's id, or [`ROOT`] plus its set's size for a
    /// root: the size shares the root's cache line, which halves the misses
    /// of a union on a large, cold forest.
    node: Vec<u64>,
    n_components: u64,
    largest: u64,
}

/// Flag of a root entry of [`UnionFind::node`]; the low bits hold the size.
const ROOT: u64 = 1 << 63;

impl UnionFind {
    /// `n` singletons. Errors if `n > u32::MAX + 1`.
    pub fn new(n: usize) -> Result<Self> {
        check_n(n)?;
        Ok(Self {
            node: vec![ROOT | 1; n],
            n_components: n as u64,
            largest: u64::from(n > 0),
        })
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.node.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.node.is_empty()
    }

    /// The root of `x`'s set (halving the path on the way).
    #[inline]
    pub fn find(&mut self, x: u32) -> u32 {
        self.find_entry(x).0
    }

    /// The root of `x` and its entry (`ROOT | size`).
    #[inline]
    fn find_entry(&mut self, mut x: u32) -> (u32, u64) {
        let a = &mut self.node;
        loop {
            let e = a[x as usize];
            if e & ROOT != 0 {
                return (x, e);
            }
            let px = e as u32;
            let g = a[px as usize];
            if g & ROOT != 0 {
                return (px, g);
            }
            a[x as usize] = g;
            x = g as u32;
        }
    }

    /// Merges the sets of `a` and `b`; `true` if they were different.
    #[inline]
    pub fn union(&mut self, a: u32, b: u32) -> bool {
        let (ra, ea) = self.find_entry(a);
        let (rb, eb) = self.find_entry(b);
        if ra == rb {
            return false;
        }
        let (sa, sb) = (ea & !ROOT, eb & !ROOT);
        // The larger set keeps its root; ties go to the smaller root id.
        let (keep, gone) = if sa > sb || (sa == sb && ra < rb) {
            (ra, rb)
        } else {
            (rb, ra)
        };
        let merged = sa + sb;
        self.node[gone as usize] = u64::from(keep);
        self.node[keep as usize] = ROOT | merged;
        self.n_components -= 1;
        self.largest = self.largest.max(merged);
        true
    }

    /// Cache hint for the entry of `x`'s parent; `x`'s own entry should be
    /// in cache already.
    #[inline(always)]
    fn prefetch_parent(&self, x: u32) {
        let e = self.node[x as usize];
        if e & ROOT == 0 {
            prefetch(&self.node, e as u32 as usize);
        }
    }

    /// Cache hint for the entry of `x` (see [`PREFETCH_AHEAD`]).
    #[inline(always)]
    fn prefetch(&self, x: u32) {
        prefetch(&self.node, x as usize);
    }

    /// Whether `a` and `b` are in the same set.
    pub fn same(&mut self, a: u32, b: u32) -> bool {
        self.find(a) == self.find(b)
    }

    /// Size of `x`'s set.
    pub fn component_size(&mut self, x: u32) -> u64 {
        self.find_entry(x).1 & !ROOT
    }

    /// Current number of sets.
    pub fn n_components(&self) -> u64 {
        self.n_components
    }

    /// Size of the largest set (0 when there are no nodes).
    pub fn largest_component(&self) -> u64 {
        self.largest
    }

    /// Canonical labels: sets numbered `0..C-1` in order of their smallest
    /// member.
    pub fn labels(&mut self) -> Vec<i64> {
        let n = self.len();
        let mut label_of_root = vec![UNSET; n];
        let mut next = 0u32;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let r = self.find(i as u32) as usize;
            if label_of_root[r] == UNSET {
                label_of_root[r] = next;
                next = next.wrapping_add(1);
            }
            out.push(i64::from(label_of_root[r]));
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Connected components
// ---------------------------------------------------------------------------

/// Sequential union with links from the larger root to the smaller (Rem's
/// algorithm with splicing): `p[x] <= x` always, so roots are tree minima.
/// `true` if `x` and `y` were in different trees.
///
/// The two paths are climbed together; a node whose parent is larger than the
/// other side's parent is re-hung under that smaller parent (which keeps
/// `p[x] <= x`). A root can only be re-hung under a node of the other tree,
/// because a tree's root is its minimum.
#[inline]
fn rem_union(p: &mut [u32], x: u32, y: u32) -> bool {
    let (mut rx, mut ry) = (x, y);
    loop {
        let px = p[rx as usize];
        let py = p[ry as usize];
        if px == py {
            return false;
        }
        if px > py {
            p[rx as usize] = py;
            if rx == px {
                return true;
            }
            rx = px;
        } else {
            p[ry as usize] = px;
            if ry == py {
                return true;
            }
            ry = py;
        }
    }
}

/// Lock-free version of [`rem_union`] for the pool, over `AtomicU32`
/// parents. The two paths are climbed together as in Rem's algorithm, but
/// compressed by halving instead of splicing, so a node never leaves its
/// tree: trees only ever merge, and a node's ancestors stay its ancestors.
///
/// * Equal parents mean one tree, for good: return.
/// * A root on the higher side is linked under the other side's parent by
///   a compare-and-swap that fails if it stopped being a root meanwhile
///   (then the step is retried). That parent is smaller than the root, so it
///   is in another tree (a root is the minimum of its tree): no cycle.
/// * Otherwise the higher side moves up, first halving its path with a
///   plain store of its grandparent. Every value ever stored in `p[x]` is an
///   ancestor of `x`, so a store that races with another only loses
///   compression, never correctness.
///
/// Relaxed ordering suffices: the argument uses no order between different
/// locations, and the pool's join publishes the final forest.
#[inline]
fn rem_union_atomic(p: &[AtomicU32], x: u32, y: u32) {
    let (mut rx, mut ry) = (x, y);
    loop {
        let mut px = p[rx as usize].load(Ordering::Relaxed);
        let mut py = p[ry as usize].load(Ordering::Relaxed);
        if px == py {
            return;
        }
        if px < py {
            (rx, ry, px, py) = (ry, rx, py, px);
        }
        if rx == px {
            if p[rx as usize]
                .compare_exchange(rx, py, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        } else {
            let gx = p[px as usize].load(Ordering::Relaxed);
            if gx != px {
                p[rx as usize].store(gx, Ordering::Relaxed);
            }
            rx = px;
        }
    }
}

/// Labels from a forest whose roots are the minima of their trees
/// (`p[x] <= x`). Ascending, so when `x` is reached its parent already
/// points at its root.
fn labels_from_min_forest(mut p: Vec<u32>) -> Vec<i64> {
    let mut labels = vec![0i64; p.len()];
    let mut next = 0i64;
    for i in 0..p.len() {
        let pi = p[i] as usize;
        if pi == i {
            labels[i] = next;
            next += 1;
        } else {
            let r = p[pi];
            p[i] = r;
            labels[i] = labels[r as usize];
        }
    }
    labels
}

/// Root of `x` in a forest that is no longer being linked, halving the path
/// on the way (concurrent halving only ever stores an ancestor).
#[inline]
fn find_atomic(p: &[AtomicU32], mut x: u32) -> u32 {
    loop {
        let px = p[x as usize].load(Ordering::Relaxed);
        if px == x {
            return x;
        }
        let gx = p[px as usize].load(Ordering::Relaxed);
        if gx != px {
            p[x as usize].store(gx, Ordering::Relaxed);
        }
        x = gx;
    }
}

/// [`labels_from_min_forest`] on the pool: every node's root (finds with
/// path halving, so that deep trees cost `O(n log n)`, not `O(n * depth)`),
/// then the ranks of the roots (per-chunk counts and offsets, written over
/// the parents, which are no longer needed), then a gather.
fn labels_from_min_forest_par(p: Vec<AtomicU32>, pool: &rayon::ThreadPool) -> Vec<i64> {
    const CHUNK: usize = 1 << 16;
    pool.install(|| {
        let mut labels: Vec<i64> = (0..p.len())
            .into_par_iter()
            .map(|i| i64::from(find_atomic(&p, i as u32)))
            .collect();
        let mut p: Vec<u32> = p.into_iter().map(AtomicU32::into_inner).collect();
        let is_root = |i: usize, l: i64| l == i as i64;
        let counts: Vec<i64> = labels
            .par_chunks(CHUNK)
            .enumerate()
            .map(|(c, ls)| {
                let base = c * CHUNK;
                ls.iter()
                    .enumerate()
                    .filter(|&(j, &l)| is_root(base + j, l))
                    .count() as i64
            })
            .collect();
        let offsets: Vec<i64> = counts
            .iter()
            .scan(0i64, |acc, &c| {
                let o = *acc;
                *acc += c;
                Some(o)
            })
            .collect();
        p.par_chunks_mut(CHUNK)
            .zip(labels.par_chunks(CHUNK))
            .zip(offsets.par_iter())
            .enumerate()
            .for_each(|(c, ((ps, ls), &off))| {
                let base = c * CHUNK;
                let mut next = off;
                for (j, (pj, &l)) in ps.iter_mut().zip(ls).enumerate() {
                    if is_root(base + j, l) {
                        *pj = next as u32;
                        next += 1;
                    }
                }
            });
        labels
            .par_iter_mut()
            .for_each(|l| *l = i64::from(p[*l as usize]));
        labels
    })
}

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

// ---------------------------------------------------------------------------
// Bridge similarity
// ---------------------------------------------------------------------------

/// Per cluster c in 0..=max(labels) (labels -1 = noise, ignored): the weakest
/// edge of the maximum spanning forest of the edges with both endpoints in c,
/// i.e. the largest t such that c's members are connected using only internal
/// edges with sim >= t (single linkage: the threshold at which the cluster
/// would first split). NaN for singletons, for cluster ids with no members,
/// and for clusters whose internal edges do not connect them.
///
/// Kruskal: the internal edges, sorted by descending similarity
/// (`f32::total_cmp`; a stable radix sort, so ties keep their input order,
/// which cannot change the result), are fed to one union-find (clusters are
/// disjoint, so one forest serves them all); the edge that brings a cluster
/// down to one component gives its value. Self-loops are ignored, duplicate
/// edges allowed.
///
/// # Errors
/// [`Error::Shape`] if `src`, `dst` and `sim` differ in length or
/// `labels.len() != n`; [`Error::Parameter`] if an endpoint is `>= n`,
/// `n > u32::MAX + 1`, or a label is `< -1` or `>= n`;
/// [`Error::NonFinite`] listing the positions of NaN similarities.
pub fn bridge_similarity(
    n: usize,
    src: &[u32],
    dst: &[u32],
    sim: &[f32],
    labels: &[i64],
) -> Result<Vec<f32>> {
    check_n(n)?;
    check_weighted_edges(n, src, dst, sim)?;
    let n_clusters = check_labels(n, labels)?;
    let mut out = vec![f32::NAN; n_clusters];
    // Components left inside each cluster; its value is set when it hits 1.
    let mut remaining = vec![0u64; n_clusters];
    for &l in labels {
        if l >= 0 {
            remaining[l as usize] += 1;
        }
    }
    let mut open = remaining.iter().filter(|&&r| r > 1).count();
    if open == 0 {
        return Ok(out);
    }

    // Compact ids for the random lookups of the filter.
    let cid: Vec<u32> = labels
        .iter()
        .map(|&l| if l >= 0 { l as u32 } else { NOISE })
        .collect();
    // (descending key, src, dst) of the internal edges.
    // Reserved for all edges: untouched capacity costs no memory.
    let mut edges: Vec<(u32, u32, u32)> = Vec::with_capacity(src.len());
    for (e, ((&s, &d), &w)) in src.iter().zip(dst).zip(sim).enumerate() {
        prefetch_edge(&cid, src, dst, e);
        let c = cid[s as usize];
        if s != d && c != NOISE && c == cid[d as usize] {
            edges.push((!f32_key(w), s, d));
        }
    }
    radix_sort_by_first(&mut edges);

    let mut parent: Vec<u32> = (0..n).map(|i| i as u32).collect();
    for (e, &(k, s, d)) in edges.iter().enumerate() {
        if let Some(&(_, s2, d2)) = edges.get(e + PREFETCH_AHEAD) {
            prefetch(&parent, s2 as usize);
            prefetch(&parent, d2 as usize);
            prefetch(&cid, s2 as usize);
        }

        if rem_union(&mut parent, s, d) {
            let c = cid[s as usize] as usize;
            remaining[c] -= 1;
            if remaining[c] == 1 {
                out[c] = key_f32(!k);
                open -= 1;
                if open == 0 {
                    break;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    // ----- naive references -------------------------------------------------

    fn adjacency(n: usize, edges: &[(u32, u32)]) -> Vec<Vec<usize>> {
        let mut adj = vec![Vec::new(); n];
        for &(s, d) in edges {
            adj[s as usize].push(d as usize);
            adj[d as usize].push(s as usize);
        }
        adj
    }

    /// BFS from each unvisited node in ascending order: canonical labels.
    fn naive_components(n: usize, edges: &[(u32, u32)]) -> Vec<i64> {
        let adj = adjacency(n, edges);
        let mut lab = vec![-1i64; n];
        let mut next = 0;
        for start in 0..n {
            if lab[start] >= 0 {
                continue;
            }
            lab[start] = next;
            let mut q = VecDeque::from([start]);
            while let Some(u) = q.pop_front() {
                for &v in &adj[u] {
                    if lab[v] < 0 {
                        lab[v] = next;
                        q.push_back(v);
                    }
                }
            }
            next += 1;
        }
        lab
    }

    fn naive_sweep(n: usize, edges: &[(u32, u32, f32)], thresholds: &[f32]) -> Vec<SweepRow> {
        thresholds
            .iter()
            .map(|&t| {
                let kept: Vec<(u32, u32)> = edges
                    .iter()
                    .filter(|e| e.2 >= t)
                    .map(|e| (e.0, e.1))
                    .collect();
                let lab = naive_components(n, &kept);
                let c = lab.iter().map(|&l| l + 1).max().unwrap_or(0) as usize;
                let mut sizes = vec![0u64; c];
                for &l in &lab {
                    sizes[l as usize] += 1;
                }
                SweepRow {
                    n_components: c as u64,
                    largest_component: sizes.into_iter().max().unwrap_or(0),
                }
            })
            .collect()
    }

    /// For each cluster, scan the distinct internal similarities from the top
    /// and return the first at which BFS over internal edges connects it.
    fn naive_bridge(n: usize, edges: &[(u32, u32, f32)], labels: &[i64]) -> Vec<f32> {
        let n_clusters = labels.iter().map(|&l| l + 1).max().unwrap_or(0).max(0) as usize;
        (0..n_clusters as i64)
            .map(|c| {
                let members: Vec<usize> = (0..n).filter(|&i| labels[i] == c).collect();
                if members.len() < 2 {
                    return f32::NAN;
                }
                let internal: Vec<&(u32, u32, f32)> = edges
                    .iter()
                    .filter(|e| labels[e.0 as usize] == c && labels[e.1 as usize] == c)
                    .collect();
                let mut cands: Vec<f32> = internal.iter().map(|e| e.2).collect();
                cands.sort_by(|a, b| b.total_cmp(a));
                for t in cands {
                    let kept: Vec<(u32, u32)> = internal
                        .iter()
                        .filter(|e| e.2 >= t)
                        .map(|e| (e.0, e.1))
                        .collect();
                    let lab = naive_components(n, &kept);
                    if members.iter().all(|&m| lab[m] == lab[members[0]]) {
                        return t;
                    }
                }
                f32::NAN
            })
            .collect()
    }

    fn split(edges: &[(u32, u32)]) -> (Vec<u32>, Vec<u32>) {
        edges.iter().copied().unzip()
    }

    fn split3(edges: &[(u32, u32, f32)]) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
        let mut s = Vec::new();
        let mut d = Vec::new();
        let mut w = Vec::new();
        for &(a, b, c) in edges {
            s.push(a);
            d.push(b);
            w.push(c);
        }
        (s, d, w)
    }

    fn same_f32(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x.is_nan() && y.is_nan()) || x == y)
    }

    /// Components with 1 thread, 2 threads and the default, all equal.
    fn cc_all(n: usize, src: &[u32], dst: &[u32]) -> Result<Vec<i64>> {
        let a = connected_components(n, src, dst, Some(1))?;
        let b = connected_components(n, src, dst, Some(2))?;
        let c = connected_components(n, src, dst, None)?;
        assert_eq!(a, b);
        assert_eq!(a, c);
        Ok(a)
    }

    /// Deterministic xorshift for the larger tests.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> u32 {
            ((self.next() >> 11) % n as u64) as u32
        }
    }

    fn random_edges(rng: &mut Rng, n: usize, m: usize) -> (Vec<u32>, Vec<u32>) {
        (0..m).map(|_| (rng.below(n), rng.below(n))).unzip()
    }

    // ----- connected_components ----------------------------------------------

    #[test]
    fn cc_chain() -> Result<()> {
        // 4-3-2-1-0 given backwards, plus separate 5-6.
        let (s, d) = split(&[(4, 3), (2, 3), (1, 2), (0, 1), (6, 5)]);
        assert_eq!(cc_all(8, &s, &d)?, vec![0, 0, 0, 0, 0, 1, 1, 2]);
        Ok(())
    }

    #[test]
    fn cc_star_and_order() -> Result<()> {
        // Star centred on 9; isolated 0, 5.
        let (s, d) = split(&[(9, 1), (9, 3), (2, 9), (9, 8)]);
        assert_eq!(
            cc_all(10, &s, &d)?,
            vec![0, 1, 1, 1, 2, 3, 4, 5, 1, 1] //
        );
        Ok(())
    }

    #[test]
    fn cc_singletons_loops_duplicates_empty() -> Result<()> {
        assert_eq!(cc_all(4, &[], &[])?, vec![0, 1, 2, 3]);
        assert_eq!(cc_all(0, &[], &[])?, Vec::<i64>::new());
        let (s, d) = split(&[(2, 2), (1, 1), (3, 0), (0, 3), (3, 0), (2, 2)]);
        assert_eq!(cc_all(4, &s, &d)?, vec![0, 1, 2, 0]);
        Ok(())
    }

    #[test]
    fn cc_giant_component_parallel_path() -> Result<()> {
        // A random spanning structure over 50k nodes with 300k edges: one
        // giant component plus leftovers; large enough for the parallel path.
        let n = 50_000;
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (s, d) = random_edges(&mut rng, n, 300_000);
        let edges: Vec<(u32, u32)> = s.iter().copied().zip(d.iter().copied()).collect();
        let got = cc_all(n, &s, &d)?;
        assert_eq!(got, naive_components(n, &edges));
        let mut uf = UnionFind::new(n)?;
        for (&a, &b) in s.iter().zip(&d) {
            uf.union(a, b);
        }
        assert_eq!(got, uf.labels());
        // A path through all nodes in shuffled order: exactly one component.
        let mut perm: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            perm.swap(i, rng.below(i + 1) as usize);
        }
        let (s, d): (Vec<u32>, Vec<u32>) = perm.windows(2).map(|w| (w[0], w[1])).unzip();
        assert!(cc_all(n, &s, &d)?.iter().all(|&l| l == 0));
        // Repeat with many threads for good measure.
        assert_eq!(
            connected_components(n, &s, &d, Some(4))?,
            connected_components(n, &s, &d, Some(1))?
        );
        Ok(())
    }

    #[test]
    fn cc_parallel_matches_union_by_size() -> Result<()> {
        // Dense graphs (heavy contention on a few roots) and sparse ones (many
        // links, many components), each checked against the sequential
        // union-by-size forest for several thread counts.
        let mut rng = Rng(0x5851_f42d_4c95_7f2d);
        for (n, m) in [(500, 200_000), (20_000, 150_000), (400_000, 200_000)] {
            let (s, d) = random_edges(&mut rng, n, m);
            let mut uf = UnionFind::new(n)?;
            for (&a, &b) in s.iter().zip(&d) {
                uf.union(a, b);
            }
            let want = uf.labels();
            for threads in [1, 2, 3, 4] {
                assert_eq!(connected_components(n, &s, &d, Some(threads))?, want);
            }
        }
        Ok(())
    }

    #[test]
    fn cc_deep_trees_stay_linear() -> Result<()> {
        // A path fed from its far end, (n-2, n-1), (n-3, n-2), ...: each link
        // hangs the previous root under the next node, so the forest is one
        // chain of depth n. Label passes that climbed without compressing
        // would take O(n^2) here.
        let n = 300_000usize;
        let s: Vec<u32> = (0..n as u32 - 1).rev().collect();
        let d: Vec<u32> = s.iter().map(|&x| x + 1).collect();
        assert!(cc_all(n, &s, &d)?.iter().all(|&l| l == 0));
        // Two interleaved chains: even and odd nodes.
        let (s, d): (Vec<u32>, Vec<u32>) = (0..n as u32 - 2).rev().map(|x| (x, x + 2)).unzip();
        let got = cc_all(n, &s, &d)?;
        assert!(got.iter().enumerate().all(|(i, &l)| l == (i % 2) as i64));
        Ok(())
    }

    #[test]
    fn cc_errors() {
        assert!(matches!(
            connected_components(3, &[0, 1], &[1], None),
            Err(Error::Shape(m)) if m.contains("src.len() = 2") && m.contains("dst.len() = 1")
        ));
        assert!(matches!(
            connected_components(3, &[0, 1, 2], &[1, 2, 3], None),
            Err(Error::Parameter(m)) if m.contains("edge 2") && m.contains("= 3") && m.contains("n = 3")
        ));
        assert!(matches!(
            connected_components(3, &[0, 7], &[1, 2], None),
            Err(Error::Parameter(m)) if m.contains("edge 1") && m.contains("src[1] = 7")
        ));
        assert!(matches!(
            connected_components(0, &[0], &[0], None),
            Err(Error::Parameter(m)) if m.contains("edge 0")
        ));
        assert!(matches!(
            connected_components(3, &[0], &[1], Some(0)),
            Err(Error::Parameter(m)) if m.contains("n_threads")
        ));
        if let Ok(too_many) = usize::try_from(MAX_NODES + 1) {
            assert!(matches!(
                connected_components(too_many, &[], &[], None),
                Err(Error::Parameter(m)) if m.contains("maximum")
            ));
            assert!(matches!(UnionFind::new(too_many), Err(Error::Parameter(_))));
        }
    }

    // ----- UnionFind -----------------------------------------------------------

    #[test]
    fn union_find_bookkeeping() -> Result<()> {
        let mut uf = UnionFind::new(6)?;
        assert_eq!(
            (uf.len(), uf.n_components(), uf.largest_component()),
            (6, 6, 1)
        );
        assert!(uf.union(5, 4));
        assert!(uf.union(3, 4));
        assert!(!uf.union(5, 3));
        assert!(uf.union(0, 1));
        assert!(uf.same(3, 5) && !uf.same(0, 5));
        assert_eq!(uf.component_size(4), 3);
        assert_eq!((uf.n_components(), uf.largest_component()), (3, 3));
        assert_eq!(uf.labels(), vec![0, 0, 1, 2, 2, 2]);
        let mut empty = UnionFind::new(0)?;
        assert!(empty.is_empty());
        assert_eq!((empty.n_components(), empty.largest_component()), (0, 0));
        assert!(empty.labels().is_empty());
        Ok(())
    }

    #[test]
    fn f32_keys_follow_total_cmp() {
        let xs = [
            f32::NEG_INFINITY,
            -1.5,
            -f32::MIN_POSITIVE,
            -0.0,
            0.0,
            1e-40,
            0.5,
            1.0,
            f32::MAX,
            f32::INFINITY,
        ];
        for a in xs {
            assert_eq!(key_f32(f32_key(a)).to_bits(), a.to_bits());
            for b in xs {
                assert_eq!(a.total_cmp(&b), f32_key(a).cmp(&f32_key(b)));
            }
        }
    }

    #[test]
    fn radix_sort_is_a_stable_sort_by_key() {
        let mut rng = Rng(12345);
        for (len, mask) in [
            (0usize, u32::MAX),
            (1, u32::MAX),
            (5000, u32::MAX),
            (5000, 0xff),
            (5000, 0xf0_0f00),
            (3000, 0),
        ] {
            let v: Vec<(u32, u32, u32)> = (0..len)
                .map(|i| ((rng.next() as u32) & mask, i as u32, rng.next() as u32))
                .collect();
            let mut want = v.clone();
            want.sort_by_key(|x| x.0);
            let mut got = v;
            radix_sort_by_first(&mut got);
            assert_eq!(got, want);
        }
    }

    // ----- threshold_sweep ------------------------------------------------------

    #[test]
    fn sweep_chain() -> Result<()> {
        // 0 -0.9- 1 -0.5- 2 -0.7- 3, node 4 isolated, a self-loop at 0.99.
        let (s, d, w) = split3(&[(0, 1, 0.9), (2, 1, 0.5), (3, 2, 0.7), (4, 4, 0.99)]);
        let rows = threshold_sweep(5, &s, &d, &w, &[0.5, 1.0, 0.8, 0.7, 0.0, 0.8])?;
        let r = |c, l| SweepRow {
            n_components: c,
            largest_component: l,
        };
        assert_eq!(
            rows,
            vec![r(2, 4), r(5, 1), r(4, 2), r(3, 2), r(2, 4), r(4, 2)]
        );
        assert!(threshold_sweep(5, &s, &d, &w, &[])?.is_empty());
        assert_eq!(threshold_sweep(0, &[], &[], &[], &[0.3])?, vec![r(0, 0)]);
        // Infinite thresholds and signed zeros.
        let (s, d, w) = split3(&[(0, 1, -0.0), (1, 2, f32::INFINITY)]);
        let rows = threshold_sweep(
            3,
            &s,
            &d,
            &w,
            &[0.0, f32::INFINITY, -0.0, f32::NEG_INFINITY],
        )?;
        assert_eq!(rows, vec![r(1, 3), r(2, 2), r(1, 3), r(1, 3)]);
        Ok(())
    }

    #[test]
    fn sweep_errors() {
        let e = threshold_sweep(3, &[0, 1], &[1, 2], &[0.5], &[0.1]);
        assert!(matches!(e, Err(Error::Shape(m)) if m.contains("sim.len() = 1")));
        let e = threshold_sweep(3, &[0, 1], &[1], &[0.5, 0.5], &[0.1]);
        assert!(matches!(e, Err(Error::Shape(_))));
        let e = threshold_sweep(2, &[0, 1], &[1, 2], &[0.5, 0.5], &[0.1]);
        assert!(matches!(e, Err(Error::Parameter(m)) if m.contains("dst[1] = 2")));
        let e = threshold_sweep(
            3,
            &[0, 1, 0],
            &[1, 2, 2],
            &[f32::NAN, 0.5, f32::NAN],
            &[0.1],
        );
        assert_eq!(
            e,
            Err(Error::NonFinite {
                what: "similarity",
                rows: vec![0, 2]
            })
        );
        let e = threshold_sweep(3, &[0], &[1], &[0.5], &[0.1, f32::NAN]);
        assert!(matches!(e, Err(Error::Parameter(m)) if m.contains("thresholds[1]")));
        if let Ok(too_many) = usize::try_from(MAX_NODES + 1) {
            let e = threshold_sweep(too_many, &[], &[], &[], &[0.1]);
            assert!(matches!(e, Err(Error::Parameter(_))));
            let e = bridge_similarity(too_many, &[], &[], &[], &[]);
            assert!(matches!(e, Err(Error::Parameter(_))));
        }
    }

    // ----- bridge_similarity ----------------------------------------------------

    #[test]
    fn bridge_examples() -> Result<()> {
        // Cluster 0 = {0,1,2}: path 0-1 (0.9), 1-2 (0.6) and a weaker cycle
        // edge 0-2 (0.3): bridge 0.6. Cluster 1 = {3} singleton. Cluster 2 has
        // no members. Cluster 3 = {4,5} connected only via noise node 6.
        // The 0.95 edge 2-3 crosses clusters and is ignored.
        let (s, d, w) = split3(&[
            (1, 0, 0.9),
            (2, 1, 0.6),
            (0, 2, 0.3),
            (2, 3, 0.95),
            (4, 6, 0.9),
            (6, 5, 0.9),
            (4, 4, 0.1),
            (0, 1, 0.2),
        ]);
        let labels = [0, 0, 0, 1, 3, 3, -1];
        let got = bridge_similarity(7, &s, &d, &w, &labels)?;
        assert!(
            same_f32(&got, &[0.6, f32::NAN, f32::NAN, f32::NAN]),
            "{got:?}"
        );
        // All noise, and no nodes at all.
        assert!(bridge_similarity(2, &[0], &[1], &[0.5], &[-1, -1])?.is_empty());
        assert!(bridge_similarity(0, &[], &[], &[], &[])?.is_empty());
        // Duplicates: the stronger copy wins.
        let got = bridge_similarity(2, &[0, 1], &[1, 0], &[0.2, 0.8], &[0, 0])?;
        assert_eq!(got, vec![0.8]);
        Ok(())
    }

    #[test]
    fn bridge_errors() {
        let e = bridge_similarity(3, &[0], &[1], &[0.5], &[0, 0]);
        assert!(matches!(e, Err(Error::Shape(m)) if m.contains("labels.len() = 2")));
        let e = bridge_similarity(3, &[0], &[1], &[0.5], &[0, -2, 0]);
        assert!(matches!(e, Err(Error::Parameter(m)) if m.contains("labels[1] = -2")));
        let e = bridge_similarity(3, &[0], &[1], &[0.5], &[0, 0, 3]);
        assert!(matches!(e, Err(Error::Parameter(m)) if m.contains("labels[2] = 3")));
        let e = bridge_similarity(3, &[0], &[1], &[0.5, 0.1], &[0, 0, 0]);
        assert!(matches!(e, Err(Error::Shape(_))));
        let e = bridge_similarity(3, &[0], &[5], &[0.5], &[0, 0, 0]);
        assert!(matches!(e, Err(Error::Parameter(m)) if m.contains("edge 0")));
        let e = bridge_similarity(3, &[0, 1], &[1, 2], &[0.5, f32::NAN], &[0, 0, 0]);
        assert_eq!(
            e,
            Err(Error::NonFinite {
                what: "similarity",
                rows: vec![1]
            })
        );
    }

    // ----- property tests against the naive references -------------------------

    fn graph(max_n: usize, max_m: usize) -> impl Strategy<Value = (usize, Vec<(u32, u32, f32)>)> {
        (1..=max_n).prop_flat_map(move |n| {
            let edge = (0..n as u32, 0..n as u32, -4i8..=10).prop_map(|(a, b, w)| {
                // Coarse weights so that ties are common; -0.0 and 0.0 both occur.
                let w = if w == -4 { -0.0 } else { f32::from(w) / 10.0 };
                (a, b, w)
            });
            (Just(n), proptest::collection::vec(edge, 0..=max_m))
        })
    }

    proptest! {
        #[test]
        fn prop_components((n, edges) in graph(200, 300)) {
            let (s, d, _) = split3(&edges);
            let pairs: Vec<(u32, u32)> = s.iter().copied().zip(d.iter().copied()).collect();
            let want = naive_components(n, &pairs);
            prop_assert_eq!(connected_components(n, &s, &d, Some(1))?, want.clone());
            prop_assert_eq!(connected_components(n, &s, &d, Some(2))?, want.clone());
            let mut uf = UnionFind::new(n)?;
            for &(a, b) in &pairs {
                uf.union(a, b);
            }
            prop_assert_eq!(uf.labels(), want.clone());
            // The parallel kernel directly, whatever the input size.
            let p: Vec<AtomicU32> = (0..n as u32).map(AtomicU32::new).collect();
            let pool = parallel::pool(Some(2))?;
            pool.install(|| {
                s.par_chunks(7).zip(d.par_chunks(7)).for_each(|(s, d)| {
                    for (&a, &b) in s.iter().zip(d) {
                        rem_union_atomic(&p, a, b);
                    }
                })
            });
            let p: Vec<u32> = p.into_iter().map(AtomicU32::into_inner).collect();
            let p2: Vec<AtomicU32> = p.iter().map(|&x| AtomicU32::new(x)).collect();
            prop_assert_eq!(labels_from_min_forest_par(p2, &pool), want.clone());
            prop_assert_eq!(labels_from_min_forest(p), want);
        }

        #[test]
        fn prop_sweep(
            (n, edges) in graph(120, 250),
            thresholds in proptest::collection::vec(-5i8..=12, 0..8),
        ) {
            let thresholds: Vec<f32> = thresholds
                .into_iter()
                .map(|t| if t == -5 { -0.0 } else { f32::from(t) / 10.0 })
                .collect();
            let (s, d, w) = split3(&edges);
            let got = threshold_sweep(n, &s, &d, &w, &thresholds)?;
            prop_assert_eq!(got, naive_sweep(n, &edges, &thresholds));
        }

        #[test]
        fn prop_bridge(
            (n, edges) in graph(80, 200),
            label_seed in proptest::collection::vec(-1i64..6, 80),
        ) {
            // Cluster ids must be < n; wrap the seed (keeps empty ids and gaps).
            let labels: Vec<i64> = label_seed[..n]
                .iter()
                .map(|&l| if l < 0 { l } else { l % n as i64 })
                .collect();
            let labels = &labels[..];
            let (s, d, w) = split3(&edges);
            let got = bridge_similarity(n, &s, &d, &w, labels)?;
            let want = naive_bridge(n, &edges, labels);
            prop_assert!(same_f32(&got, &want), "got {:?} want {:?}", got, want);
        }

        #[test]
        fn prop_bridge_components_as_clusters((n, edges) in graph(100, 250)) {
            // Clusters = connected components: every cluster is connected, so
            // singletons are the only NaNs.
            let (s, d, w) = split3(&edges);
            let labels = connected_components(n, &s, &d, Some(2))?;
            let got = bridge_similarity(n, &s, &d, &w, &labels)?;
            let want = naive_bridge(n, &edges, &labels);
            prop_assert!(same_f32(&got, &want), "got {:?} want {:?}", got, want);
            let mut sizes = vec![0usize; got.len()];
            for &l in &labels {
                sizes[l as usize] += 1;
            }
            for (c, v) in got.iter().enumerate() {
                prop_assert_eq!(v.is_nan(), sizes[c] == 1);
            }
        }
    }

    // ----- timing (cargo test -p simclust-core --release unionfind -- --ignored --nocapture)

    #[test]
    #[ignore]
    fn timing_10m_edges() -> Result<()> {
        use std::time::Instant;
        /// Best of three runs, in seconds, and the last result.
        fn best<T>(mut f: impl FnMut() -> Result<T>) -> Result<(f64, T)> {
            let mut t_best = f64::INFINITY;
            let mut out = None;
            for _ in 0..3 {
                let t = Instant::now();
                out = Some(f()?);
                t_best = t_best.min(t.elapsed().as_secs_f64());
            }
            Ok((t_best, out.unwrap()))
        }
        let m = 10_000_000;
        for n in [1_000_000usize, 2_000_000, 5_000_000] {
            let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ n as u64);
            let (s, d) = random_edges(&mut rng, n, m);
            let w: Vec<f32> = (0..m)
                .map(|_| (rng.next() >> 40) as f32 / (1u64 << 24) as f32)
                .collect();
            let mut labels = Vec::new();
            for threads in [1, 2] {
                let (t, lab) = best(|| connected_components(n, &s, &d, Some(threads)))?;
                let c = lab.iter().max().map_or(0, |&l| l + 1);
                eprintln!(
                    "n={n} m={m} connected_components threads={threads}: {t:.3} s ({c} components)"
                );
                labels = lab;
            }
            let th = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1];
            let (t, rows) = best(|| threshold_sweep(n, &s, &d, &w, &th))?;
            eprintln!(
                "n={n} m={m} threshold_sweep (9 thresholds): {t:.3} s (at 0.1: {:?})",
                rows[8]
            );
            let (t, b) = best(|| bridge_similarity(n, &s, &d, &w, &labels))?;
            eprintln!(
                "n={n} m={m} bridge_similarity: {t:.3} s ({} clusters)",
                b.len()
            );
        }
        Ok(())
    }
}
