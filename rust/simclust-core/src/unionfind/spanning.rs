//! The maximum spanning forest of a weighted edge list: Kruskal.

use super::forest::rem_union;
use super::keys::{f32_key, key_f32, radix_sort_by_first};
use super::*;

// ---------------------------------------------------------------------------
// Maximum spanning forest
// ---------------------------------------------------------------------------

/// The maximum spanning forest of a similarity graph, as an edge list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanningForest {
    /// Lower endpoint of each forest edge.
    pub src: Vec<u32>,
    /// Higher endpoint of each forest edge.
    pub dst: Vec<u32>,
    /// Its similarity, the edges in descending similarity (`f32::total_cmp`).
    pub sim: Vec<f32>,
}

/// The maximum spanning forest of the edges `(src, dst, sim)`: Kruskal on the
/// edges sorted by descending similarity (`f32::total_cmp`; a stable radix
/// sort, ties keep their input order), each edge kept when it joins two
/// trees. The forest is returned as `(lo, hi)` pairs in the order Kruskal
/// kept them.
///
/// What makes it useful: for **every** threshold `t`, the forest's edges
/// `>= t` connect exactly the nodes the graph's edges `>= t` connect (an edge
/// Kruskal drops closes a cycle of edges at least as similar). So the
/// components at any threshold, the threshold sweep and the bridge
/// similarity of those components are the graph's; and the forest of a
/// union of graphs is the forest of the union of their forests, which is how
/// a distributed run merges per-task forests (at most `nodes - 1` edges a
/// task) instead of shipping every edge. Ties may pick different edges for
/// different input orders; the components at every threshold are the same.
///
/// Node ids are any `u32`; the state is `O(edges)`, not `O(max id)`: ids
/// index the union-find directly while the largest is within a few times
/// the edge count (a block pair's rows, a list chunk's positions), else the
/// endpoints that occur are ranked first (a task's rows out of billions).
/// Self-loops are ignored, duplicate edges allowed.
///
/// # Errors
/// [`Error::Shape`] if `src`, `dst` and `sim` differ in length;
/// [`Error::NonFinite`] listing the positions of NaN similarities.
///
/// # Example
/// ```
/// use simclust_core::unionfind::spanning_forest;
/// // A triangle: the weakest edge closes the cycle and is dropped.
/// let f = spanning_forest(&[0, 1, 0], &[1, 2, 2], &[0.9, 0.8, 0.7]).unwrap();
/// assert_eq!((f.src, f.dst, f.sim), (vec![0, 1], vec![1, 2], vec![0.9, 0.8]));
/// ```
pub fn spanning_forest(src: &[u32], dst: &[u32], sim: &[f32]) -> Result<SpanningForest> {
    check_weighted_edges(MAX_NODES as usize, src, dst, sim)?;
    let top = src
        .iter()
        .chain(dst)
        .copied()
        .max()
        .map_or(0, |t| t as usize + 1);
    // Dense: ids index the forest (`nodes` empty). Sparse: the ids that occur,
    // ascending, a node's index its rank.
    let nodes: Vec<u32> = if top <= DENSE_IDS_PER_EDGE * src.len() + DENSE_MIN_IDS {
        Vec::new()
    } else {
        let mut v: Vec<u32> = src.iter().chain(dst).copied().collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let local = |v: u32| {
        if nodes.is_empty() {
            v
        } else {
            nodes.partition_point(|&x| x < v) as u32
        }
    };
    let id = |i: u32| {
        if nodes.is_empty() {
            i
        } else {
            nodes[i as usize]
        }
    };
    let mut edges: Vec<(u32, u32, u32)> = src
        .iter()
        .zip(dst)
        .zip(sim)
        .filter(|((s, d), _)| s != d)
        .map(|((&s, &d), &w)| (!f32_key(w), local(s), local(d)))
        .collect();
    radix_sort_by_first(&mut edges);

    let size = if nodes.is_empty() { top } else { nodes.len() };
    let mut parent: Vec<u32> = (0..size as u32).collect();
    let mut out = SpanningForest::default();
    for &(k, s, d) in &edges {
        if rem_union(&mut parent, s, d) {
            let (a, b) = (id(s), id(d));
            out.src.push(a.min(b));
            out.dst.push(a.max(b));
            out.sim.push(key_f32(!k));
        }
    }
    Ok(out)
}

/// [`spanning_forest`] indexes the forest by node id while the largest id is
/// at most this many times the edge count (plus [`DENSE_MIN_IDS`]): 4 bytes
/// of parent per id, against 12 bytes a sorted edge.
const DENSE_IDS_PER_EDGE: usize = 4;

/// Ids always indexed directly, however few the edges (a 256 KB forest).
const DENSE_MIN_IDS: usize = 1 << 16;
