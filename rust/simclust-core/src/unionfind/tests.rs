//! Tests of the union-find kernels against naive references.
#![allow(clippy::unwrap_used)]

use super::forest::{labels_from_min_forest, labels_from_min_forest_par, rem_union_atomic};
use super::keys::{f32_key, key_f32, radix_sort_by_first};
use super::*;
use crate::parallel;
use proptest::prelude::*;
use rayon::prelude::*;
use std::collections::VecDeque;
use std::sync::atomic::AtomicU32;

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

fn at_all(s: &[u32], d: &[u32]) -> Vec<(u32, u32)> {
    s.iter().copied().zip(d.iter().copied()).collect()
}

#[test]
fn spanning_forest_keeps_the_strongest_edges_and_names_bad_input() {
    // Two triangles joined by a weak edge; node ids far apart (no O(max id) state).
    let big = 4_000_000_000u32;
    let (s, d, w) = (
        vec![0, 1, 0, big, big + 1, big, 2],
        vec![1, 2, 2, big + 1, big + 2, big + 2, big],
        vec![0.9, 0.8, 0.85, 0.7, 0.95, 0.6, 0.1],
    );
    let f = spanning_forest(&s, &d, &w).unwrap();
    assert_eq!(f.sim, vec![0.95, 0.9, 0.85, 0.7, 0.1]);
    assert_eq!(f.src, vec![big + 1, 0, 0, big, 2]);
    assert_eq!(f.dst, vec![big + 2, 1, 2, big + 1, big]);
    assert_eq!(
        spanning_forest(&[], &[], &[]).unwrap(),
        SpanningForest::default()
    );
    assert_eq!(
        spanning_forest(&[3], &[3], &[1.0]).unwrap(),
        SpanningForest::default()
    );
    assert!(matches!(
        spanning_forest(&[0], &[1, 2], &[0.5]),
        Err(Error::Shape(_))
    ));
    assert_eq!(
        spanning_forest(&[0, 1], &[1, 2], &[0.5, f32::NAN]),
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
    /// The forest has the graph's components at every threshold (against BFS
    /// over all the edges), is a forest (one edge fewer than its nodes per
    /// tree), and the forest of two halves' forests has them too.
    #[test]
    fn prop_spanning_forest((n, edges) in graph(120, 300), cut in 0usize..=300) {
        let (s, d, w) = split3(&edges);
        let f = spanning_forest(&s, &d, &w)?;
        prop_assert!(f.src.iter().zip(&f.dst).all(|(a, b)| a < b));
        prop_assert!(f.sim.windows(2).all(|p| p[0].total_cmp(&p[1]).is_ge()));
        let cut = cut.min(edges.len());
        let (h1, h2) = (split3(&edges[..cut]), split3(&edges[cut..]));
        let (f1, f2) = (spanning_forest(&h1.0, &h1.1, &h1.2)?, spanning_forest(&h2.0, &h2.1, &h2.2)?);
        let cat = |a: &[u32], b: &[u32]| [a, b].concat();
        let merged = spanning_forest(
            &cat(&f1.src, &f2.src), &cat(&f1.dst, &f2.dst), &[f1.sim.clone(), f2.sim.clone()].concat(),
        )?;
        let mut levels: Vec<f32> = w.clone();
        levels.push(f32::NEG_INFINITY);
        for t in levels {
            let at = |s: &[u32], d: &[u32], w: &[f32]| -> Vec<(u32, u32)> {
                s.iter().zip(d).zip(w).filter(|(_, &x)| x >= t).map(|((&a, &b), _)| (a, b)).collect()
            };
            let want = naive_components(n, &at(&s, &d, &w));
            prop_assert_eq!(naive_components(n, &at(&f.src, &f.dst, &f.sim)), want.clone());
            prop_assert_eq!(naive_components(n, &at(&merged.src, &merged.dst, &merged.sim)), want);
        }
        let all = naive_components(n, &at_all(&s, &d));
        let touched = {
            let mut v: Vec<u32> = s.iter().chain(&d).copied().collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let trees: std::collections::BTreeSet<i64> = touched.iter().map(|&v| all[v as usize]).collect();
        prop_assert_eq!(f.src.len(), touched.len() - trees.len());
    }

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
