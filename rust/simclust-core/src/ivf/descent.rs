//! Neighbourhood refinement of an approximate kNN graph: NN-descent's
//! *local join* (Dong, Moses & Li, WWW 2011), as pynndescent runs it.
//!
//! Two rows that are both neighbours of a third are likely neighbours of
//! each other. Each round takes every row `u`'s neighbourhood `S(u)`, its
//! `k` listed neighbours and up to `k` of the rows that list it (the most
//! similar), computes the similarity of every pair in `S(u)` of which at
//! least one member is *new* (entered a list in the previous round) as one
//! small GEMM, and offers each pair to both rows' lists. Rounds stop when
//! fewer than [`DELTA`] of all list entries change, or after
//! [`MAX_ROUNDS`].
//!
//! The list search leaves a row's neighbours in lists its own list did not
//! compare with unfound; the local join reaches them through rows that
//! compared with both. Every similarity is exact fp32 as in the list
//! search: what is approximate is still only which pairs are computed.
//!
//! Determinism: tasks are fixed ranges of rows; the per-thread candidate
//! lists hold distinct rows with the largest value offered
//! ([`TopK::push_unique`]), and the merge keeps, per row, the `k` best
//! distinct rows, which does not depend on which thread offered what.

use rayon::prelude::*;

use super::Partition;
use crate::error::Result;
use crate::parallel::Control;
use crate::similarity::TopK;
use crate::tiles::{gemm_abt, run_dynamic};

/// Rounds stop when fewer than this share of the `N k` list entries
/// changed in the last one (pynndescent's default `delta`).
pub(super) const DELTA: f64 = 0.001;

/// At most this many rounds.
pub(super) const MAX_ROUNDS: usize = 10;

/// Rows per task of a round.
const TASK_ROWS: usize = 2048;

/// `k` neighbours per row over positions, with per entry whether it entered
/// the list in the last round.
pub(super) struct Lists {
    pub(super) k: usize,
    /// `n x k` neighbour positions (`u32::MAX` for none), sorted best first.
    pub(super) idx: Vec<u32>,
    /// `n x k` similarities.
    pub(super) sim: Vec<f32>,
    /// `n x k`: whether the entry is new.
    new: Vec<bool>,
}

impl Lists {
    /// Lists from a search, every entry new.
    pub(super) fn new(k: usize, idx: Vec<u32>, sim: Vec<f32>) -> Self {
        let new = vec![true; idx.len()];
        Self { k, idx, sim, new }
    }

    fn n_rows(&self) -> usize {
        self.idx.len() / self.k
    }

    /// The similarity a candidate must beat to enter `row`'s list.
    fn worst(&self, row: usize) -> f32 {
        self.sim[row * self.k + self.k - 1]
    }
}

/// What the refinement did.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Refined {
    /// Row pairs whose similarity was computed.
    pub(super) pairs_computed: u64,
    /// Rounds run.
    pub(super) rounds: usize,
}

/// Refines `lists` in place by local joins over the partition's unit rows.
pub(super) fn refine(
    part: &Partition,
    lists: &mut Lists,
    pool: &rayon::ThreadPool,
    ctl: &Control,
) -> Result<Refined> {
    let n = lists.n_rows();
    let mut done = Refined::default();
    while done.rounds < MAX_ROUNDS {
        let reverse = reverse_lists(lists, pool);
        let (offers, pairs) = local_joins(part, lists, &reverse, pool, ctl)?;
        let changed = merge(lists, &offers, pool);
        done.pairs_computed += pairs;
        done.rounds += 1;
        if (changed as f64) < DELTA * (n * lists.k) as f64 {
            break;
        }
    }
    Ok(done)
}

/// Per row, up to `k` of the rows that list it (the most similar, ties by
/// the lower row), each with whether that entry is new: row `q`'s are
/// `entries[offsets[q]..offsets[q] + kept[q]]`.
struct Reverse {
    offsets: Vec<usize>,
    kept: Vec<u32>,
    entries: Vec<(u32, bool)>,
}

impl Reverse {
    fn of(&self, q: usize) -> &[(u32, bool)] {
        &self.entries[self.offsets[q]..self.offsets[q] + self.kept[q] as usize]
    }
}

/// The [`Reverse`] lists: every listed entry `p -> q` grouped under `q`
/// (counting sort), then each group ranked and cut to `k` in parallel.
fn reverse_lists(lists: &Lists, pool: &rayon::ThreadPool) -> Reverse {
    let (n, k) = (lists.n_rows(), lists.k);
    let mut offsets = vec![0_usize; n + 1];
    for &q in &lists.idx {
        if q != u32::MAX {
            offsets[q as usize + 1] += 1;
        }
    }
    for q in 0..n {
        offsets[q + 1] += offsets[q];
    }
    let mut next = offsets.clone();
    let mut all = vec![(0.0_f32, 0_u32, false); offsets[n]];
    for p in 0..n {
        for slot in p * k..(p + 1) * k {
            let q = lists.idx[slot];
            if q != u32::MAX {
                all[next[q as usize]] = (lists.sim[slot], p as u32, lists.new[slot]);
                next[q as usize] += 1;
            }
        }
    }
    drop(next);
    let mut groups: Vec<&mut [(f32, u32, bool)]> = Vec::with_capacity(n);
    let mut rest = all.as_mut_slice();
    for q in 0..n {
        let (group, tail) = rest.split_at_mut(offsets[q + 1] - offsets[q]);
        groups.push(group);
        rest = tail;
    }
    let kept: Vec<u32> = pool.install(|| {
        groups
            .par_iter_mut()
            .map(|group| {
                group.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                group.len().min(k) as u32
            })
            .collect()
    });
    drop(groups);
    Reverse {
        offsets,
        kept,
        entries: all.into_iter().map(|(_, p, new)| (p, new)).collect(),
    }
}

/// One round of local joins: per thread, the candidates offered to each
/// row (those that beat its current `k`-th), and the pairs computed.
fn local_joins(
    part: &Partition,
    lists: &Lists,
    reverse: &Reverse,
    pool: &rayon::ThreadPool,
    ctl: &Control,
) -> Result<(Vec<TopK>, u64)> {
    let (n, k, d) = (lists.n_rows(), lists.k, part.d);
    let cap = 2 * k;
    let states = run_dynamic(
        pool,
        n.div_ceil(TASK_ROWS),
        ctl,
        || {
            (
                TopK::new(n, k),
                0_u64,
                Vec::<(u32, bool)>::with_capacity(cap),
                vec![0.0_f32; cap * d],
                vec![0.0_f32; cap * cap],
            )
        },
        |(offers, pairs, hood, rows, sims), t| {
            for u in t * TASK_ROWS..((t + 1) * TASK_ROWS).min(n) {
                let fresh = lists.new[u * k..(u + 1) * k].iter().any(|&f| f)
                    || reverse.of(u).iter().any(|e| e.1);
                if !fresh {
                    continue; // every pair of its neighbourhood was joined before
                }
                neighbourhood(lists, reverse, u, hood);
                let n_new = hood.iter().filter(|e| e.1).count();
                if n_new == 0 {
                    continue;
                }
                let m = hood.len();
                for (dst, &(p, _)) in rows.chunks_exact_mut(d).zip(hood.iter()) {
                    dst.copy_from_slice(part.row(p as usize));
                }
                // new members first: rows 0..n_new against all m
                gemm_abt(&rows[..n_new * d], n_new, &rows[..m * d], m, d, sims);
                for i in 0..n_new {
                    let a = hood[i].0 as usize;
                    for j in i + 1..m {
                        let b = hood[j].0 as usize;
                        let s = sims[i * m + j];
                        if s > lists.worst(a) {
                            offers.push_unique(a, s, b as u32);
                        }
                        if s > lists.worst(b) {
                            offers.push_unique(b, s, a as u32);
                        }
                    }
                }
                *pairs += (n_new * (n_new - 1) / 2 + n_new * (m - n_new)) as u64;
            }
        },
    )?;
    let pairs = states.iter().map(|s| s.1).sum();
    Ok((states.into_iter().map(|s| s.0).collect(), pairs))
}

/// `u`'s neighbourhood into `hood`: its listed and reverse neighbours, each
/// once (new if either entry is), the new ones first, each part by row.
fn neighbourhood(lists: &Lists, reverse: &Reverse, u: usize, hood: &mut Vec<(u32, bool)>) {
    let k = lists.k;
    hood.clear();
    for slot in 0..k {
        let q = lists.idx[u * k + slot];
        if q != u32::MAX {
            hood.push((q, lists.new[u * k + slot]));
        }
    }
    hood.extend(reverse.of(u).iter().copied());
    // by row, new before old within a row, then one entry per row
    hood.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    hood.dedup_by_key(|e| e.0);
    hood.sort_by_key(|e| !e.1);
}

/// Merges the offers into the lists: per row the `k` best distinct rows of
/// its list and every thread's offers, new where they were not listed
/// before. Returns the number of entries that changed.
fn merge(lists: &mut Lists, offers: &[TopK], pool: &rayon::ThreadPool) -> u64 {
    let k = lists.k;
    pool.install(|| {
        lists
            .idx
            .par_chunks_mut(k)
            .zip(lists.sim.par_chunks_mut(k))
            .zip(lists.new.par_chunks_mut(k))
            .enumerate()
            .map(|(row, ((idx, sim), new))| {
                let mut cand: Vec<(f32, u32, bool)> = idx
                    .iter()
                    .zip(sim.iter())
                    .filter(|(&j, _)| j != u32::MAX)
                    .map(|(&j, &s)| (s, j, false))
                    .collect();
                let before = cand.len();
                for o in offers {
                    cand.extend(o.row_candidates(row).map(|(s, j)| (s, j, true)));
                }
                if cand.len() == before {
                    new.fill(false);
                    return 0;
                }
                // by row, largest value first; keep one entry per row, old
                // if it was listed (an offer of a listed row is no change)
                cand.sort_unstable_by(|a, b| a.1.cmp(&b.1).then(b.0.total_cmp(&a.0)));
                let mut best: Vec<(f32, u32, bool)> = Vec::with_capacity(cand.len());
                for c in cand {
                    match best.last_mut() {
                        Some(last) if last.1 == c.1 => last.2 &= c.2,
                        _ => best.push(c),
                    }
                }
                best.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                best.truncate(k);
                let mut changed = 0_u64;
                for slot in 0..k {
                    let (s, j, fresh) =
                        best.get(slot)
                            .copied()
                            .unwrap_or((f32::NEG_INFINITY, u32::MAX, false));
                    idx[slot] = j;
                    sim[slot] = s;
                    new[slot] = fresh;
                    changed += u64::from(fresh);
                }
                changed
            })
            .sum()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ivf::PartitionParams;
    use crate::matrix::MatRef;
    use crate::parallel;
    use crate::similarity;
    use crate::testdata::clustered;

    /// Lists of `k` random rows (a poor start), with their similarities.
    fn poor_start(part: &Partition, k: usize) -> Lists {
        let n = part.n_rows();
        let mut rng = crate::kmeans::rng::SplitMix64::new(5);
        let mut idx = Vec::new();
        let mut sim = Vec::new();
        for p in 0..n {
            let mut row: Vec<(f32, u32)> = rng
                .sample_distinct(n - 1, k)
                .into_iter()
                .map(|q| {
                    let q = if q >= p { q + 1 } else { q };
                    let v: f32 = part
                        .row(p)
                        .iter()
                        .zip(part.row(q))
                        .map(|(a, b)| a * b)
                        .sum();
                    (v, q as u32)
                })
                .collect();
            row.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            idx.extend(row.iter().map(|r| r.1));
            sim.extend(row.iter().map(|r| r.0));
        }
        Lists::new(k, idx, sim)
    }

    #[test]
    fn local_joins_find_the_neighbours_and_do_not_depend_on_threads() -> Result<()> {
        let (n, d, k) = (2000, 16, 8);
        let x = clustered(n, d, 40, 0.3, 11);
        let mut p = PartitionParams::for_rows(n);
        p.n_lists = 20;
        p.cells = false;
        let part = Partition::build(MatRef::new(&x, n, d)?, &p, &Control::new())?;
        let mut results = Vec::new();
        for threads in [1, 2] {
            let mut lists = poor_start(&part, k);
            let pool = parallel::pool(Some(threads))?;
            let done = refine(&part, &mut lists, &pool, &Control::new())?;
            assert!(done.rounds >= 2 && done.pairs_computed > 0);
            results.push((lists.idx, lists.sim));
        }
        assert_eq!(results[0], results[1]);
        let (idx, sim) = &results[0];
        // valid lists: sorted, distinct, no self, each value the fp32 dot
        for pos in 0..n {
            let row = &idx[pos * k..(pos + 1) * k];
            let vals = &sim[pos * k..(pos + 1) * k];
            assert!(row.iter().all(|&q| q as usize != pos && q != u32::MAX));
            let mut uniq = row.to_vec();
            uniq.sort_unstable();
            uniq.dedup();
            assert_eq!(uniq.len(), k);
            assert!(vals.windows(2).all(|w| w[0] >= w[1]));
            for (&q, &v) in row.iter().zip(vals) {
                let want: f64 = part
                    .row(pos)
                    .iter()
                    .zip(part.row(q as usize))
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum();
                assert!((f64::from(v) - want).abs() < 1e-5);
            }
        }
        // recall against brute force over positions
        let exact = similarity::knn(MatRef::new(&part.xs, n, d)?, k, Some(2), &Control::new())?;
        let mut hits = 0;
        for pos in 0..n {
            let kth = exact.similarities[pos * k + k - 1];
            hits += sim[pos * k..(pos + 1) * k]
                .iter()
                .filter(|&&v| v >= kth - 1e-5)
                .count();
        }
        let recall = hits as f64 / (n * k) as f64;
        assert!(recall > 0.97, "recall {recall}");
        Ok(())
    }
}
