//! The approximate kNN search ([`knn`]) in parts that a distributed run can
//! hand to tasks: the lists' own pairs for some consecutive lists
//! ([`own_lists_part`]), rows probing some consecutive lists
//! ([`probe_part`]), the merge of the parts' lists ([`KnnMerge`]), and the
//! driver's share over the whole partition (which rows probe which lists,
//! [`Partition::knn_probes`]; NN-descent and the last refinement,
//! [`Partition::knn_finish`]).
//!
//! [`knn`] is these parts over the whole partition as one part each. The
//! parts' lists are top-k lists under the total order of [`TopK`] (higher
//! similarity, then the lower position), each index once with the largest
//! value offered: the merge of any split of the same pairs is the same, so
//! tasks over any chunks give [`knn`]'s lists bit for bit (the pairs are
//! computed in the same GEMM tiles: a list's blocks of [`BLOCK`] rows from
//! its start, a list's probing rows in ascending position in blocks of
//! [`BLOCK`]).

use super::{descent, to_input_order, Partition, SearchStats};
use super::{MIN_SEARCH_K, WEAK_MIN_PROBES, WEAK_SHARE};
use crate::error::{Error, Result};
use crate::parallel::{self, Control};
use crate::similarity::{Neighbors, TopK};
use crate::tiles::{gemm_abt, run_dynamic, BLOCK};

/// The unit rows of consecutive lists, as a task holds them (a chunk of a
/// distributed run) or the whole partition.
#[derive(Debug, Clone, Copy)]
pub struct ListRows<'a> {
    /// Position of the first row.
    pub start: usize,
    /// List `i` (of these) is rows `bounds[i]..bounds[i + 1]` of `xs`
    /// (from 0, ascending, the last the number of rows).
    pub bounds: &'a [usize],
    /// The rows, `bounds[last] x d`, in position order.
    pub xs: &'a [f32],
    /// Dimension.
    pub d: usize,
}

impl ListRows<'_> {
    /// Number of rows.
    fn n_rows(&self) -> usize {
        self.bounds.last().copied().unwrap_or(0)
    }

    fn check(&self) -> Result<()> {
        let ok = self.d > 0
            && self.bounds.first() == Some(&0)
            && self.bounds.windows(2).all(|w| w[0] <= w[1])
            && self.n_rows().checked_mul(self.d) == Some(self.xs.len())
            && self
                .start
                .checked_add(self.n_rows())
                .is_some_and(|end| u32::try_from(end).is_ok());
        if ok {
            Ok(())
        } else {
            Err(Error::Shape(format!(
                "list rows: bounds must ascend from 0 to the rows of xs ({} values, d = {}), \
                 positions below 2^32, got {} bounds",
                self.xs.len(),
                self.d,
                self.bounds.len()
            )))
        }
    }

    fn list(&self, i: usize) -> (usize, usize) {
        (self.bounds[i], self.bounds[i + 1])
    }

    fn rows(&self, r0: usize, r1: usize) -> &[f32] {
        &self.xs[r0 * self.d..r1 * self.d]
    }
}

/// Rows (positions) that probe the lists of a [`ListRows`], with their unit
/// rows: list `i`'s are `members[offsets[i]..offsets[i + 1]]`, indices into
/// `positions` (ascending within a list).
#[derive(Debug, Clone, Copy)]
pub struct QueryRows<'a> {
    /// The rows' positions, ascending and distinct.
    pub positions: &'a [u32],
    /// Their unit rows, `positions.len() x d`.
    pub xs: &'a [f32],
    /// Per list, where its probing rows start in `members` (one more than
    /// the lists).
    pub offsets: &'a [usize],
    /// Indices into `positions`.
    pub members: &'a [u32],
}

/// Per row, the `k`-th entry of the lists a part's candidates will be merged
/// into (`(u32::MAX, -inf)` where they have fewer): a candidate that does not
/// rank before it is dropped, as it could not enter them.
#[derive(Debug, Clone, Copy)]
pub struct Floors<'a> {
    /// Similarities of the `k`-th entries.
    pub sims: &'a [f32],
    /// Their positions.
    pub idx: &'a [u32],
}

/// The `k` best candidates a part of the search found for some rows:
/// `rows[i]`'s are `idx[i k..(i + 1) k]` (positions) and `sims[..]`, best
/// first, padded with `(u32::MAX, -inf)`; rows without a candidate are left
/// out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnnPart {
    /// Neighbours per row.
    pub k: usize,
    /// The rows (positions), ascending within the part's lists.
    pub rows: Vec<u32>,
    /// `rows.len() x k` neighbour positions.
    pub idx: Vec<u32>,
    /// `rows.len() x k` similarities (float32, as computed).
    pub sims: Vec<f32>,
    /// Row pairs whose similarity the part computed.
    pub pairs_computed: u64,
}

impl KnnPart {
    /// The rows with candidates of lists over slots, slot `i` standing for
    /// position `id(i)`.
    fn from_lists(k: usize, lists: TopK, id: impl Fn(usize) -> u32, pairs: u64) -> Self {
        let (idx, sims) = lists.into_parts();
        let mut out = Self {
            k,
            pairs_computed: pairs,
            ..Self::default()
        };
        for (slot, (i, s)) in idx.chunks_exact(k).zip(sims.chunks_exact(k)).enumerate() {
            if i[0] != u32::MAX {
                out.rows.push(id(slot));
                out.idx.extend_from_slice(i);
                out.sims.extend_from_slice(s);
            }
        }
        out
    }
}

/// Checks `k >= 1`.
fn check_k(k: usize) -> Result<()> {
    if k == 0 {
        return Err(Error::Parameter("k must be at least 1".into()));
    }
    Ok(())
}

/// Every pair within each of `lists` (a list's blocks of [`BLOCK`] rows from
/// its start, the diagonal blocks above the diagonal), offered to both rows:
/// the first part of [`knn`] for these lists.
///
/// Errors: [`Error::Shape`] for inconsistent rows, [`Error::Parameter`] for
/// `k == 0`; cancellation.
pub fn own_lists_part(
    lists: &ListRows<'_>,
    k: usize,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<KnnPart> {
    lists.check()?;
    check_k(k)?;
    let pool = parallel::pool(n_threads)?;
    own_lists(lists, k, &pool, ctl)
}

fn own_lists(
    lists: &ListRows<'_>,
    k: usize,
    pool: &rayon::ThreadPool,
    ctl: &Control,
) -> Result<KnnPart> {
    let (m, d) = (lists.n_rows(), lists.d);
    // (list, bi, bj) with bi <= bj
    let mut tiles = Vec::new();
    let mut pairs = 0_u64;
    for i in 0..lists.bounds.len().saturating_sub(1) {
        let (a, b) = lists.list(i);
        let nb = (b - a).div_ceil(BLOCK);
        for bi in 0..nb {
            for bj in bi..nb {
                let ra = (a + (bi + 1) * BLOCK).min(b) - (a + bi * BLOCK);
                let rb = (a + (bj + 1) * BLOCK).min(b) - (a + bj * BLOCK);
                pairs += if bi == bj {
                    (ra * (ra - 1) / 2) as u64
                } else {
                    (ra * rb) as u64
                };
                tiles.push((i, bi, bj));
            }
        }
    }
    let states = run_dynamic(
        pool,
        tiles.len(),
        ctl,
        || (TopK::new(m, k), vec![0.0_f32; BLOCK * BLOCK]),
        |(acc, buf), t| {
            let (i, bi, bj) = tiles[t];
            let (a, b) = lists.list(i);
            let (a0, b0) = (a + bi * BLOCK, a + bj * BLOCK);
            let (a1, b1) = ((a0 + BLOCK).min(b), (b0 + BLOCK).min(b));
            let (ra, rb) = (a1 - a0, b1 - b0);
            gemm_abt(lists.rows(a0, a1), ra, lists.rows(b0, b1), rb, d, buf);
            let first = |r: usize| if bi == bj { r + 1 } else { 0 };
            acc.offer_tile_unique(
                buf,
                (ra, rb),
                |r| a0 + r,
                b0,
                first,
                |s| (lists.start + s) as u32,
            );
        },
    )?;
    let mut total = TopK::new(m, k);
    for (s, _) in &states {
        total.merge_unique(s);
    }
    Ok(KnnPart::from_lists(
        k,
        total,
        |s| (lists.start + s) as u32,
        pairs,
    ))
}

/// Rows probing lists: each list's probing rows (ascending, in blocks of
/// [`BLOCK`]) against each of its blocks, every pair offered to both rows,
/// candidates kept only when they rank before the rows' floors
/// (`list_floors` per row of `lists`, `query_floors` per query row): the
/// second and third parts of [`knn`] for these lists.
///
/// Errors: [`Error::Shape`] for inconsistent rows, queries or floors,
/// [`Error::Parameter`] for `k == 0`; cancellation.
pub fn probe_part(
    lists: &ListRows<'_>,
    list_floors: Floors<'_>,
    queries: &QueryRows<'_>,
    query_floors: Floors<'_>,
    k: usize,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<KnnPart> {
    lists.check()?;
    check_k(k)?;
    let (m, nq, d) = (lists.n_rows(), queries.positions.len(), lists.d);
    let n_lists = lists.bounds.len() - 1;
    let offsets_ok = queries.offsets.len() == n_lists + 1
        && queries.offsets.first() == Some(&0)
        && queries.offsets.windows(2).all(|w| w[0] <= w[1])
        && queries.offsets.last() == Some(&queries.members.len());
    if !offsets_ok
        || queries.xs.len() != nq * d
        || queries.members.iter().any(|&q| q as usize >= nq)
        || !queries.positions.windows(2).all(|w| w[0] < w[1])
        || list_floors.sims.len() != m
        || list_floors.idx.len() != m
        || query_floors.sims.len() != nq
        || query_floors.idx.len() != nq
    {
        return Err(Error::Shape(format!(
            "probes: {n_lists} lists need {} offsets ending at the members, members in \
             0..{nq}, ascending distinct positions with {nq} x {d} rows, and a floor \
             per row ({m} of the lists, {nq} queries)",
            n_lists + 1
        )));
    }
    let pool = parallel::pool(n_threads)?;
    probe_rows(lists, list_floors, queries, query_floors, k, &pool, ctl)
}

fn probe_rows(
    lists: &ListRows<'_>,
    list_floors: Floors<'_>,
    queries: &QueryRows<'_>,
    query_floors: Floors<'_>,
    k: usize,
    pool: &rayon::ThreadPool,
    ctl: &Control,
) -> Result<KnnPart> {
    let (m, d) = (lists.n_rows(), lists.d);
    let (start, end) = (lists.start, lists.start + m);
    // slots: the lists' rows, then the queries outside them
    let outside: Vec<u32> = queries
        .positions
        .iter()
        .copied()
        .filter(|&p| !(start..end).contains(&(p as usize)))
        .collect();
    let mut slot_of = Vec::with_capacity(queries.positions.len());
    let mut next = m;
    for &p in queries.positions {
        if (start..end).contains(&(p as usize)) {
            slot_of.push(p as usize - start);
        } else {
            slot_of.push(next);
            next += 1;
        }
    }
    let id = |slot: usize| -> u32 {
        if slot < m {
            (start + slot) as u32
        } else {
            outside[slot - m]
        }
    };
    let mut f_sims = list_floors.sims.to_vec();
    let mut f_idx = list_floors.idx.to_vec();
    for (q, &p) in queries.positions.iter().enumerate() {
        if !(start..end).contains(&(p as usize)) {
            f_sims.push(query_floors.sims[q]);
            f_idx.push(query_floors.idx[q]);
        }
    }
    let floors = TopK::floors_of(1, &f_idx, &f_sims);
    // (list, first member, block of the list)
    let mut tasks = Vec::new();
    let mut pairs = 0_u64;
    for i in 0..lists.bounds.len() - 1 {
        let (a, b) = lists.list(i);
        let (q0, q1) = (queries.offsets[i], queries.offsets[i + 1]);
        pairs += ((q1 - q0) * (b - a)) as u64;
        for c in (q0..q1).step_by(BLOCK) {
            for block in 0..(b - a).div_ceil(BLOCK) {
                tasks.push((i, c, (c + BLOCK).min(q1), block));
            }
        }
    }
    let states = run_dynamic(
        pool,
        tasks.len(),
        ctl,
        || {
            (
                TopK::with_floors(k, &floors),
                vec![0.0_f32; BLOCK * d],
                vec![0.0_f32; BLOCK * BLOCK],
            )
        },
        |(acc, q, buf), t| {
            let (i, c0, c1, block) = tasks[t];
            let rows = &queries.members[c0..c1];
            let (l0, l1) = lists.list(i);
            let b0 = l0 + block * BLOCK;
            let rb = (b0 + BLOCK).min(l1) - b0;
            for (dst, &r) in q.chunks_exact_mut(d).zip(rows) {
                let r = r as usize;
                dst.copy_from_slice(&queries.xs[r * d..(r + 1) * d]);
            }
            let ra = rows.len();
            gemm_abt(&q[..ra * d], ra, lists.rows(b0, b0 + rb), rb, d, buf);
            acc.offer_tile_unique(buf, (ra, rb), |r| slot_of[rows[r] as usize], b0, |_| 0, id);
        },
    )?;
    let mut total = TopK::with_floors(k, &floors);
    for (s, _, _) in &states {
        total.merge_unique(s);
    }
    Ok(KnnPart::from_lists(k, total, id, pairs))
}

/// The union of parts' lists over `n` rows: per row the `k` best distinct
/// candidates (each with the largest similarity offered), as the whole
/// search keeps them.
#[derive(Debug, Clone)]
pub struct KnnMerge {
    lists: TopK,
    n: usize,
    k: usize,
}

impl KnnMerge {
    /// Empty lists.
    pub fn new(n: usize, k: usize) -> Result<Self> {
        check_k(k)?;
        Ok(Self {
            lists: TopK::new(n, k),
            n,
            k,
        })
    }

    /// Adds lists: row `rows[i]`'s candidates `idx[i k..]`, `sims[i k..]`
    /// (`u32::MAX` entries skipped).
    ///
    /// Errors: [`Error::Shape`] for lists not `rows.len() x k` or rows out of
    /// range.
    pub fn add(&mut self, rows: &[u32], idx: &[u32], sims: &[f32]) -> Result<()> {
        let k = self.k;
        if idx.len() != rows.len() * k
            || sims.len() != idx.len()
            || rows.iter().any(|&r| r as usize >= self.n)
        {
            return Err(Error::Shape(format!(
                "lists must be {} x {k} for rows in 0..{}",
                rows.len(),
                self.n
            )));
        }
        for ((&r, i), s) in rows
            .iter()
            .zip(idx.chunks_exact(k))
            .zip(sims.chunks_exact(k))
        {
            for (&j, &v) in i.iter().zip(s) {
                if j != u32::MAX {
                    self.lists.push_unique(r as usize, v, j);
                }
            }
        }
        Ok(())
    }

    /// Adds a part's lists.
    pub fn add_part(&mut self, part: &KnnPart) -> Result<()> {
        self.add(&part.rows, &part.idx, &part.sims)
    }

    /// `(idx, sims)`, `n x k`, each row best first, padded with
    /// `(u32::MAX, -inf)`.
    pub fn into_lists(self) -> (Vec<u32>, Vec<f32>) {
        self.lists.into_parts()
    }
}

/// Which rows probe which lists in a part of [`knn`]: list `l`'s probing
/// rows are `members[offsets[l]..offsets[l + 1]]` (positions, ascending).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probes {
    /// One more than the lists.
    pub offsets: Vec<usize>,
    /// Positions.
    pub members: Vec<u32>,
}

impl Partition {
    /// The neighbours an approximate kNN search for `k` looks for
    /// ([`MIN_SEARCH_K`] at least, at most `N - 1`).
    ///
    /// Errors: [`Error::Parameter`] unless `1 <= k <= N - 1`.
    pub fn knn_search_k(&self, k: usize) -> Result<usize> {
        let n = self.n_rows();
        if k == 0 || k >= n {
            return Err(Error::Parameter(format!(
                "k must satisfy 1 <= k <= N - 1 = {} for a self-search over N = {n} rows, got k = {k}",
                n.saturating_sub(1)
            )));
        }
        Ok(k.max(MIN_SEARCH_K).min(n - 1))
    }

    /// The whole partition as [`ListRows`].
    pub fn list_rows(&self) -> ListRows<'_> {
        ListRows {
            start: 0,
            bounds: &self.offsets,
            xs: &self.xs,
            d: self.d,
        }
    }

    /// The row probes of [`knn`] with `nprobe`: without `sims`, every row with
    /// its next `nprobe - 1` nearest lists; with the `N x k` similarities of
    /// the lists after those (positions), the [`WEAK_SHARE`] of rows with the
    /// least similar `k`-th neighbour with their next
    /// `max(32, 4 nprobe) - nprobe` lists (none when that is none).
    ///
    /// Errors: [`Error::Shape`] for `sims` not `N x k`.
    pub fn knn_probes(
        &self,
        nprobe: usize,
        weak_of: Option<(&[f32], usize)>,
        n_threads: Option<usize>,
        ctl: &Control,
    ) -> Result<Probes> {
        let pool = parallel::pool(n_threads)?;
        self.probes(nprobe, weak_of, &pool, ctl)
    }

    fn probes(
        &self,
        nprobe: usize,
        weak_of: Option<(&[f32], usize)>,
        pool: &rayon::ThreadPool,
        ctl: &Control,
    ) -> Result<Probes> {
        let (n, l) = (self.n_rows(), self.n_lists);
        let nprobe = nprobe.clamp(1, l);
        let all: Vec<u32> = (0..n as u32).collect();
        let groups = match weak_of {
            None => self.probe_groups(&all, nprobe, 1, pool, ctl)?,
            Some((sims, k)) => {
                if k == 0 || sims.len() != n * k {
                    return Err(Error::Shape(format!(
                        "the lists' similarities must be {n} x k, k >= 1, got {} values",
                        sims.len()
                    )));
                }
                let wide = (4 * nprobe).max(WEAK_MIN_PROBES).min(l);
                let n_weak = ((n as f64) * WEAK_SHARE).round() as usize;
                if n_weak == 0 || wide <= nprobe {
                    vec![Vec::new(); l]
                } else {
                    let kth = |p: u32| sims[p as usize * k + k - 1];
                    let mut weak = all;
                    weak.select_nth_unstable_by(n_weak - 1, |&a, &b| {
                        kth(a).total_cmp(&kth(b)).then(a.cmp(&b))
                    });
                    weak.truncate(n_weak);
                    weak.sort_unstable();
                    self.probe_groups(&weak, wide, nprobe, pool, ctl)?
                }
            }
        };
        let mut out = Probes {
            offsets: Vec::with_capacity(l + 1),
            members: Vec::new(),
        };
        out.offsets.push(0);
        for mut rows in groups {
            rows.sort_unstable();
            out.members.extend_from_slice(&rows);
            out.offsets.push(out.members.len());
        }
        Ok(out)
    }

    /// The end of [`knn`] from the merged lists of its parts (`N x k`
    /// positions and similarities): NN-descent's local joins, the
    /// similarities recomputed in f64, the lists in input row order; with the
    /// stats, `pairs_computed` the parts' plus NN-descent's.
    ///
    /// Errors: [`Error::Shape`] for lists not `N x k`; cancellation.
    pub fn knn_finish(
        &self,
        k: usize,
        idx: Vec<u32>,
        sims: Vec<f32>,
        pairs_computed: u64,
        n_threads: Option<usize>,
        ctl: &Control,
    ) -> Result<(Neighbors, SearchStats)> {
        let pool = parallel::pool(n_threads)?;
        self.finish(k, idx, sims, pairs_computed, &pool, ctl)
    }

    fn finish(
        &self,
        k: usize,
        idx: Vec<u32>,
        sims: Vec<f32>,
        pairs_computed: u64,
        pool: &rayon::ThreadPool,
        ctl: &Control,
    ) -> Result<(Neighbors, SearchStats)> {
        let n = self.n_rows();
        if k == 0
            || idx.len() != n * k
            || sims.len() != n * k
            || idx.iter().any(|&j| j != u32::MAX && j as usize >= n)
        {
            return Err(Error::Shape(format!(
                "the lists must be {n} x k, k >= 1, of positions in 0..{n}"
            )));
        }
        let mut lists = descent::Lists::new(k, idx, sims);
        let refined = descent::refine(self, &mut lists, pool, ctl)?;
        let mut nn = Neighbors {
            k,
            indices: lists.idx,
            similarities: lists.sim,
        };
        crate::similarity::refine_lists(&mut nn, &self.xs, &self.xs, self.d, pool);
        let non_empty = self.offsets.windows(2).filter(|w| w[0] < w[1]).count();
        let stats = SearchStats {
            pairs_computed: pairs_computed + refined.pairs_computed,
            pairs_total: (n as u64) * (n as u64 - 1) / 2,
            list_pairs: non_empty as u64,
        };
        Ok((to_input_order(self, nn), stats))
    }
}

/// Approximate self-kNN over the partition (`1 <= k <= N - 1`): per row
/// its `k` most similar rows among those compared, sorted by similarity
/// (ties: the lower row), in input row order.
///
/// Compared are: every pair within a list; every row with its `nprobe - 1`
/// next nearest lists (by its own direction), both ways; the [`WEAK_SHARE`]
/// of rows whose `k`-th neighbour is then least similar (outliers, rows of
/// small clusters: their neighbours are spread over many lists) with their
/// next `max(WEAK_MIN_PROBES, 4 nprobe) - nprobe` lists; then the lists are
/// refined by NN-descent's local joins (the `descent` module).
/// `nprobe >= n_lists` compares every pair: the exact kNN.
///
/// The parts of this module over the whole partition, one part each.
pub fn knn(
    part: &Partition,
    k: usize,
    nprobe: usize,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<(Neighbors, SearchStats)> {
    let n = part.n_rows();
    if k == 0 || k >= n {
        return Err(Error::Parameter(format!(
            "k must satisfy 1 <= k <= N - 1 = {} for a self-search over N = {n} rows, got k = {k}",
            n.saturating_sub(1)
        )));
    }
    let pool = parallel::pool(n_threads)?;
    let rows = part.list_rows();
    let all: Vec<u32> = (0..n as u32).collect();
    // every list with itself
    let own = own_lists(&rows, k, &pool, ctl)?;
    let mut computed = own.pairs_computed;
    let mut merged = KnnMerge::new(n, k)?;
    merged.add_part(&own)?;
    drop(own);
    let (mut idx, mut sims) = merged.into_lists();
    // every row with its next nearest lists, then the weakest rows with more
    for weak in [false, true] {
        let probes = part.probes(nprobe, weak.then_some((sims.as_slice(), k)), &pool, ctl)?;
        let (fs, fi) = kth_entries(k, &idx, &sims);
        let floors = Floors {
            sims: &fs,
            idx: &fi,
        };
        let queries = QueryRows {
            positions: &all,
            xs: &part.xs,
            offsets: &probes.offsets,
            members: &probes.members,
        };
        let found = probe_rows(&rows, floors, &queries, floors, k, &pool, ctl)?;
        computed += found.pairs_computed;
        let mut merged = KnnMerge::new(n, k)?;
        merged.add(&all, &idx, &sims)?;
        merged.add_part(&found)?;
        (idx, sims) = merged.into_lists();
    }
    part.finish(k, idx, sims, computed, &pool, ctl)
}

/// Per row of `n x k` lists its `k`-th entry, `(similarities, positions)`:
/// the floors of the next part of the search.
pub fn kth_entries(k: usize, idx: &[u32], sims: &[f32]) -> (Vec<f32>, Vec<u32>) {
    (
        sims.chunks_exact(k).map(|r| r[k - 1]).collect(),
        idx.chunks_exact(k).map(|r| r[k - 1]).collect(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ivf::PartitionParams;
    use crate::matrix::MatRef;
    use crate::testdata::clustered;

    /// The search as a distributed run does it: consecutive lists cut into
    /// chunks of at most `chunk_rows` rows (a bigger list alone), a part per
    /// chunk for the own lists and for each round of probes (its probing
    /// rows gathered by position, its floors from the merged lists), merged
    /// after each round, then finished.
    fn by_chunks(
        part: &Partition,
        k: usize,
        nprobe: usize,
        chunk_rows: usize,
    ) -> Result<(Neighbors, SearchStats)> {
        let (n, d, ctl) = (part.n_rows(), part.d, Control::new());
        let mut chunks = vec![0_usize];
        for l in 0..part.n_lists {
            let rows = part.offsets[l + 1] - part.offsets[*chunks.last().unwrap()];
            if rows > chunk_rows && part.offsets[l] > part.offsets[*chunks.last().unwrap()] {
                chunks.push(l);
            }
        }
        chunks.push(part.n_lists);
        let rows_of = |c: usize| -> (Vec<usize>, usize) {
            let (a, b) = (chunks[c], chunks[c + 1]);
            let start = part.offsets[a];
            let bounds = part.offsets[a..=b].iter().map(|o| o - start).collect();
            (bounds, start)
        };
        let all: Vec<u32> = (0..n as u32).collect();
        let mut computed = 0;
        let mut merged = KnnMerge::new(n, k)?;
        for c in 0..chunks.len() - 1 {
            let (bounds, start) = rows_of(c);
            let xs = &part.xs[start * d..(start + bounds[bounds.len() - 1]) * d];
            let lists = ListRows {
                start,
                bounds: &bounds,
                xs,
                d,
            };
            let found = own_lists_part(&lists, k, Some(2), &ctl)?;
            computed += found.pairs_computed;
            merged.add_part(&found)?;
        }
        let (mut idx, mut sims) = merged.into_lists();
        for weak in [false, true] {
            let probes =
                part.knn_probes(nprobe, weak.then_some((sims.as_slice(), k)), Some(2), &ctl)?;
            let (fs, fi) = kth_entries(k, &idx, &sims);
            let mut merged = KnnMerge::new(n, k)?;
            merged.add(&all, &idx, &sims)?;
            for c in 0..chunks.len() - 1 {
                let (bounds, start) = rows_of(c);
                let m = bounds[bounds.len() - 1];
                let xs = &part.xs[start * d..(start + m) * d];
                let lists = ListRows {
                    start,
                    bounds: &bounds,
                    xs,
                    d,
                };
                let (a, b) = (chunks[c], chunks[c + 1]);
                let mine = &probes.members[probes.offsets[a]..probes.offsets[b]];
                let mut positions = mine.to_vec();
                positions.sort_unstable();
                positions.dedup();
                let members: Vec<u32> = mine
                    .iter()
                    .map(|p| positions.binary_search(p).unwrap() as u32)
                    .collect();
                let offsets: Vec<usize> = probes.offsets[a..=b]
                    .iter()
                    .map(|o| o - probes.offsets[a])
                    .collect();
                let qxs: Vec<f32> = positions
                    .iter()
                    .flat_map(|&p| part.row(p as usize).iter().copied())
                    .collect();
                let queries = QueryRows {
                    positions: &positions,
                    xs: &qxs,
                    offsets: &offsets,
                    members: &members,
                };
                let pick =
                    |v: &[u32]| -> Vec<u32> { positions.iter().map(|&p| v[p as usize]).collect() };
                let qs: Vec<f32> = positions.iter().map(|&p| fs[p as usize]).collect();
                let qi = pick(&fi);
                let found = probe_part(
                    &lists,
                    Floors {
                        sims: &fs[start..start + m],
                        idx: &fi[start..start + m],
                    },
                    &queries,
                    Floors {
                        sims: &qs,
                        idx: &qi,
                    },
                    k,
                    Some(1),
                    &ctl,
                )?;
                computed += found.pairs_computed;
                merged.add_part(&found)?;
            }
            (idx, sims) = merged.into_lists();
        }
        part.knn_finish(k, idx, sims, computed, Some(2), &ctl)
    }

    /// The union of the parts over chunks of several sizes (one list per
    /// chunk, a few, one chunk) is the whole search, bit for bit: lists,
    /// similarities and stats; on clustered rows with exact duplicates and
    /// lists both smaller and larger than a block.
    #[test]
    fn parts_over_any_chunks_are_the_whole_search() -> Result<()> {
        for (n, d, lists, seed) in [(3001, 12, 40, 3), (5003, 37, 3, 4)] {
            let mut x = clustered(n, d, 25, 0.3, seed);
            // exact duplicates: rows 0..50 again at 100..150
            let dup: Vec<f32> = x[..50 * d].to_vec();
            x[100 * d..150 * d].copy_from_slice(&dup);
            let mut p = PartitionParams::for_rows(n);
            p.n_lists = lists;
            p.n_threads = Some(2);
            p.cells = false;
            let part = Partition::build(MatRef::new(&x, n, d)?, &p, &Control::new())?;
            for (k, nprobe) in [(10, 2), (4, 3)] {
                let want = knn(&part, k, nprobe, Some(2), &Control::new())?;
                for chunk_rows in [1, 700, 2500, n] {
                    let got = by_chunks(&part, k, nprobe, chunk_rows)?;
                    assert!(got == want, "n {n}, k {k}, chunks of {chunk_rows} rows");
                    let bits = |nn: &Neighbors| -> Vec<u32> {
                        nn.similarities.iter().map(|s| s.to_bits()).collect()
                    };
                    assert_eq!(bits(&got.0), bits(&want.0));
                }
            }
        }
        Ok(())
    }

    #[test]
    fn parts_reject_inconsistent_input() {
        let (xs, ctl) = (vec![1.0_f32; 12], Control::new());
        let rows = |bounds| ListRows {
            start: 0,
            bounds,
            xs: &xs,
            d: 3,
        };
        let err = |r: Result<KnnPart>| r.err().map(|e| std::mem::discriminant(&e));
        let shape = Some(std::mem::discriminant(&Error::Shape(String::new())));
        let param = Some(std::mem::discriminant(&Error::Parameter(String::new())));
        assert_eq!(
            err(own_lists_part(&rows(&[0, 2, 5]), 2, Some(1), &ctl)),
            shape
        );
        assert_eq!(
            err(own_lists_part(&rows(&[0, 2, 4]), 0, Some(1), &ctl)),
            param
        );
        let floors = |n: usize| Floors {
            sims: &[0.0; 4][..n],
            idx: &[0; 4][..n],
        };
        // a member out of range of the one query
        let q = QueryRows {
            positions: &[9],
            xs: &xs[..3],
            offsets: &[0, 1, 1],
            members: &[1],
        };
        let lists = rows(&[0, 2, 4]);
        let found = probe_part(&lists, floors(4), &q, floors(1), 2, Some(1), &ctl);
        assert_eq!(err(found), shape);
        let mut m = KnnMerge::new(3, 2).unwrap();
        assert!(m.add(&[3], &[0, 1], &[0.5, 0.4]).is_err());
    }
}
