//! Union-find forests: [`UnionFind`] (union by size) and Rem's algorithm
//! with minimum roots, sequential and lock-free.

use std::sync::atomic::{AtomicU32, Ordering};

use rayon::prelude::*;

use super::*;

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
    pub(super) fn prefetch_parent(&self, x: u32) {
        let e = self.node[x as usize];
        if e & ROOT == 0 {
            prefetch(&self.node, e as u32 as usize);
        }
    }

    /// Cache hint for the entry of `x` (see [`PREFETCH_AHEAD`]).
    #[inline(always)]
    pub(super) fn prefetch(&self, x: u32) {
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
pub(super) fn rem_union(p: &mut [u32], x: u32, y: u32) -> bool {
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
pub(super) fn rem_union_atomic(p: &[AtomicU32], x: u32, y: u32) {
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
pub(super) fn labels_from_min_forest(mut p: Vec<u32>) -> Vec<i64> {
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
pub(super) fn find_atomic(p: &[AtomicU32], mut x: u32) -> u32 {
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
pub(super) fn labels_from_min_forest_par(p: Vec<AtomicU32>, pool: &rayon::ThreadPool) -> Vec<i64> {
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
