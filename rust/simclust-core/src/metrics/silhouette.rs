//! Cosine silhouette: exact, or with the nearest-cluster search partitioned
//! (and its recall measured) when the clusters are too many; and the exact
//! Euclidean silhouette.
//!
//! Euclidean distances do not add up through the cluster means, so the
//! Euclidean silhouette visits every pair (`O(N^2 D)`, as scikit-learn's
//! `silhouette_samples`): each task takes a block of rows and streams every
//! clustered row past it in the gathered (cluster by cluster) order through
//! the Euclidean GEMM tiles (`measure::Tile`), summing each row's distances per
//! cluster as the cluster's columns pass. Memory is one tile per thread; no
//! `N x N` or `N x K` matrix exists.
//!
//! The silhouette of row `i` in cluster `A` uses cosine *distances*
//! `1 - cos` (as scikit-learn's `metric="cosine"`): `a(i)` is the mean
//! distance to the other members of `A`, `b(i)` the smallest mean distance
//! to the members of another cluster, and `s(i) = (b - a) / max(a, b)`.
//!
//! Every mean distance is exact without visiting the `N^2` pairs: for unit
//! rows, `sum_{j in C} cos(x_i, x_j) = <x_i, sum_{j in C} x_j>`, so the mean
//! similarity of row `i` to cluster `C` is `<x_i, m_C>` with `m_C` the
//! (unnormalised) mean of `C`'s unit members, and for its own cluster
//! `(n_A <x_i, m_A> - |x_i|^2) / (n_A - 1)`. The kernel is therefore one
//! blocked `N x K x D` GEMM against the cluster means with a fused running
//! maximum per row: `O(N K D)` work instead of `O(N^2 D)`, and
//! `O(N + K D)` memory (a `ROWS x KB` tile per thread, no `N x K` matrix).
//!
//! The means are not stored again: `m_C` is the unit centroid of
//! [`CentroidStats`] times the mean's length (`mean_length`), so the
//! silhouette reads the same `K x D` centroids the centroid metrics use
//! (at a million rows and half a million clusters, a second copy is 0.8 GB).

use std::borrow::Cow;

use rayon::prelude::*;

use crate::error::Result;
use crate::ivf::{self, Centroids, NearestScratch, Partition, PartitionParams};
use crate::matrix::MatRef;
use crate::parallel::{self, Control};
use crate::search::{self, Method, Plan, Record};
use crate::similarity::exact::{dot64, margin};

use super::centroid::{check_score_labels, CentroidStats};
use super::clusters::Gathered;
use super::kernel::{gemm_abt, run_indexed, sum};
use super::measure::{Measure, Tile};

/// Rows per task.
const ROWS: usize = 256;
/// Cluster means per GEMM within a task.
const KB: usize = 1024;

/// Silhouette values: per row, per cluster and overall.
#[derive(Debug, Clone, PartialEq)]
pub struct Silhouette {
    /// Per input row; NaN for noise rows. Members of a singleton cluster get
    /// 0 (as scikit-learn).
    pub row: Vec<f32>,
    /// Per cluster (slot order), the mean silhouette of its members.
    pub cluster_mean: Vec<f64>,
    /// The mean silhouette over all clustered rows (noise excluded): what
    /// scikit-learn's `silhouette_score` gives on the clustered rows.
    pub mean: f64,
    /// With the partitioned search: how much the silhouette of the rows its
    /// recall was measured on came out above their exact value (`None` when
    /// every row was searched exactly).
    pub overestimate: Option<Overestimate>,
}

/// How much a partitioned search raised the silhouette of the rows its recall
/// was measured on (a missed nearest cluster can only raise it): the mean
/// over those rows estimates how much the mean silhouette is too high.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Overestimate {
    /// Mean over the sampled rows of `s_found - s_exact`.
    pub mean: f64,
    /// The largest.
    pub max: f64,
}

/// Per gathered position: the similarity to its own cluster's mean, the
/// squared norm of the unit row as the kernels read it, and the largest
/// similarity to another cluster's mean (rows of singletons: unused).
struct Scores {
    own: Vec<f64>,
    sq: Vec<f64>,
    best: Vec<f32>,
}

/// Rows read between two [`Gathered::release_rows`] calls while the rows
/// are streamed (scattered over a memory-mapped input: up to 128 MB of its
/// pages).
const RELEASE_ROWS: usize = 16_384;

/// Rows read between two [`Gathered::release_rows`] calls where the rows
/// are few and scattered (the exact search of single rows).
const SCATTERED_ROWS: usize = 16;

/// Query rows scored per block of the partitioned search (in input-row
/// order: one stretch of a memory-mapped input at a time).
const QUERY_BLOCK: usize = 65_536;

/// Nearest means of each cluster mean the partitioned search also compares
/// a cluster's rows with. A row's nearest other mean is almost always among
/// the ~20 means nearest to its own cluster's mean (0.96 of rows at 200k
/// rows, 119k clusters), while the lists nearest to the row alone held it
/// for 0.61 (`nprobe` 8; 0.82 with 128). At 1M rows (418,576 clusters,
/// `nprobe` 8) the silhouette of the sampled rows came out too high by
/// 0.024 on average (at most 0.97) without them, 0.0014 (0.48) with 10 and
/// 0.0008 (0.012) with 16, for about twice the silhouette's time.
const MEAN_NEIGHBOURS: usize = 16;

/// Calls [`Gathered::release_rows`] before every task `t` (of `per_task`
/// rows each) that starts a new [`RELEASE_ROWS`] stretch.
fn release_before(g: &Gathered, t: usize, per_task: usize) {
    let every = (RELEASE_ROWS / per_task).max(1);
    if t > 0 && t.is_multiple_of(every) {
        g.release_rows();
    }
}

/// `<x, x>` in f64.
fn sq_norm(x: &[f32]) -> f64 {
    dot64(x, x)
}

/// The cluster means as unit directions (the centroids; a NaN row where
/// the members cancel out) and lengths (0 there).
struct Means<'a> {
    unit: &'a [f32],
    length: Vec<f32>,
    length64: &'a [f64],
    d: usize,
}

impl<'a> Means<'a> {
    fn new(st: &'a CentroidStats, d: usize) -> Self {
        let length = st.mean_length.iter().map(|&l| l as f32).collect();
        Self {
            unit: &st.centroids,
            length,
            length64: &st.mean_length,
            d,
        }
    }

    /// Cluster means `c0..c1` as unit rows, for a GEMM.
    fn rows(&self, c0: usize, c1: usize) -> &[f32] {
        &self.unit[c0 * self.d..c1 * self.d]
    }

    /// The similarity `<x, m_c>` to mean `c` from `<x, u_c>`, the GEMM's
    /// value against its unit direction (0 for a zero mean).
    #[inline]
    fn scale(&self, c: usize, unit_sim: f32) -> f32 {
        let l = self.length[c];
        if l > 0.0 {
            unit_sim * l
        } else {
            0.0
        }
    }

    /// `<x, m_c>` for one unit row `x`, in f64: `a` depends on it through
    /// `n / (n - 1)`, which doubles a small cluster's float32 error.
    fn sim64(&self, x: &[f32], c: usize) -> f64 {
        let l = self.length64[c];
        if l > 0.0 {
            dot64(x, &self.unit[c * self.d..(c + 1) * self.d]) * l
        } else {
            0.0
        }
    }
}

/// Computes the cosine [`Silhouette`] of the clustering in `g`, with the
/// search for each row's nearest other cluster (`b`) as `plan` says:
/// exact (every row against every cluster mean, `N K D` work), or over a
/// partition of the cluster means (each cluster's rows against the means in
/// the `nprobe` lists nearest to its own mean) with the share of sampled
/// rows whose `b` is exact measured and returned in the [`Record`]. `a` is
/// exact either way; a missed nearest cluster can only make `b`, and the
/// silhouette, larger.
///
/// Noise rows are neither scored nor used as a cluster: the score is that
/// of the clustered rows alone. Requires `2 <= K <= n - 1` clusters over the
/// `n` clustered rows ([`crate::Error::Parameter`] otherwise). `centroids`
/// are `g`'s [`centroid_stats`](super::centroid_stats) (a
/// [`crate::Error::Shape`] when they are another labelling's).
///
/// ```
/// use simclust_core::{metrics::{centroid_stats, silhouette, Gathered}, search::Plan, Control, MatRef};
/// let x = [1.0_f32, 0.0, 1.0, 0.1, 0.0, 1.0, 0.1, 1.0];
/// let g = Gathered::new(MatRef::new(&x, 4, 2)?, &[0, 0, 1, 1], None)?;
/// let st = centroid_stats(&g, None)?;
/// let (s, record) = silhouette(&g, &st, &Plan::default(), None, &Control::new())?;
/// assert!(s.mean > 0.9 && record.recall == 1.0);
/// # Ok::<(), simclust_core::Error>(())
/// ```
pub fn silhouette(
    g: &Gathered,
    centroids: &CentroidStats,
    plan: &Plan,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<(Silhouette, Record)> {
    check_score_labels(g, "the silhouette")?;
    let cl = &g.clusters;
    let (k, d) = (cl.k(), g.d);
    if centroids.mean_length.len() != k || centroids.centroids.len() != k * d {
        return Err(crate::error::Error::Shape(format!(
            "the centroid statistics hold {} clusters of {} values, the labelling {k} clusters of {d}",
            centroids.mean_length.len(),
            centroids.centroids.len() / centroids.mean_length.len().max(1)
        )));
    }
    let pool = parallel::pool(n_threads)?;
    match g.measure {
        Measure::Cosine => {}
        Measure::Dot => {
            return Err(crate::error::Error::Parameter(
                "the silhouette needs distances; the inner product ('dot') is a similarity \
                 with no distance to take it from"
                    .into(),
            ))
        }
        Measure::Euclidean => {
            let m = cl.n_clustered();
            let (a, b) = euclidean_means(g, &pool, ctl)?;
            let pairs = m as u64 * m as u64;
            let record = Record::exact(false, pairs as f64 * d as f64, pairs);
            return Ok((finish(g, |p, _| (a[p], b[p]), None), record));
        }
    }
    let means = Means::new(centroids, d);
    let queries = (0..k)
        .filter(|&c| cl.size(c) >= 2)
        .map(|c| cl.size(c))
        .sum::<usize>();
    let work = queries as f64 * k as f64 * d as f64;
    let pairs_total = queries as u64 * k as u64;
    let (method, auto) = search::resolve(plan.method, k, work);
    let (scores, record, overestimate) = if method == Method::Ivf {
        let (scores, record, over) =
            probed_scores(g, &means, plan, &pool, ctl, (auto, work, pairs_total))?;
        (scores, record, Some(over))
    } else {
        let record = Record::exact(auto, work, pairs_total);
        (exact_scores(g, &means, &pool, ctl)?, record, None)
    };
    let a_b = |p, n| cosine_a_b(&scores, p, n, scores.best[p]);
    Ok((finish(g, a_b, overestimate), record))
}

/// Per gathered position, the mean Euclidean distance to the other members
/// of its own cluster (`a`, 0 for a singleton) and the smallest mean
/// distance to the members of another cluster (`b`): every row against
/// every clustered row, in fixed tiles summed in a fixed order.
fn euclidean_means(
    g: &Gathered,
    pool: &rayon::ThreadPool,
    ctl: &Control,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let cl = &g.clusters;
    let (d, m) = (g.d, cl.n_clustered());
    let slot_of_pos = slot_of_positions(g);
    let end_of = |c: usize| cl.offset(c) + cl.size(c);
    let per_task = run_indexed(
        pool,
        m.div_ceil(ROWS),
        ctl,
        || {
            let buf = vec![0.0_f32; ROWS * KB];
            (
                buf,
                Vec::new(),
                Vec::new(),
                Tile::new(Measure::Euclidean, d),
            )
        },
        |(buf, xs, ys, tile), t| {
            let (p0, p1) = (t * ROWS, ((t + 1) * ROWS).min(m));
            let ra = p1 - p0;
            release_before(g, t, ROWS);
            g.rows_into(p0, p1, xs);
            let own: Vec<usize> = (p0..p1).map(|p| slot_of_pos[p] as usize).collect();
            let (mut a, mut b) = (vec![0.0_f64; ra], vec![f64::INFINITY; ra]);
            let mut acc = vec![0.0_f64; ra];
            // per column block: its runs of one cluster (start, end, slot, last run)
            let mut runs: Vec<(usize, usize, usize, bool)> = Vec::new();
            for c0 in (0..m).step_by(KB) {
                let c1 = (c0 + KB).min(m);
                let rb = c1 - c0;
                g.rows_into(c0, c1, ys);
                tile.values(xs, ra, ys, rb, buf);
                runs.clear();
                let mut q = c0;
                while q < c1 {
                    let c = slot_of_pos[q] as usize;
                    let end = end_of(c).min(c1);
                    runs.push((q - c0, end - c0, c, end == end_of(c)));
                    q = end;
                }
                for (r, row) in buf[..ra * rb].chunks_exact(rb).enumerate() {
                    for &(s0, s1, c, last) in &runs {
                        acc[r] += sum(&row[s0..s1]);
                        if last {
                            let n = cl.size(c);
                            if c == own[r] {
                                a[r] = if n > 1 { acc[r] / (n - 1) as f64 } else { 0.0 };
                            } else {
                                let mean = acc[r] / n as f64;
                                b[r] = if mean < b[r] { mean } else { b[r] };
                            }
                            acc[r] = 0.0;
                        }
                    }
                }
            }
            (a, b)
        },
    )?;
    let (mut a, mut b) = (Vec::with_capacity(m), Vec::with_capacity(m));
    for (ta, tb) in per_task {
        a.extend(ta);
        b.extend(tb);
    }
    Ok((a, b))
}

/// The cosine silhouette's `(a, b)` distances of gathered position `p` (in
/// a cluster of `n >= 2`) from its own and best other mean similarity.
fn cosine_a_b(scores: &Scores, p: usize, n: usize, best: f32) -> (f64, f64) {
    // |x|^2 of the unit row, as the kernels see it
    let n = n as f64;
    let own_mean = (n * scores.own[p] - scores.sq[p]) / (n - 1.0);
    let a = (1.0 - own_mean).max(0.0);
    let b = (1.0 - f64::from(best)).max(0.0);
    (a, b)
}

/// The cluster slot of every gathered position.
fn slot_of_positions(g: &Gathered) -> Vec<u32> {
    let cl = &g.clusters;
    let mut slot = vec![0_u32; cl.n_clustered()];
    for c in 0..cl.k() {
        let o = cl.offset(c);
        slot[o..o + cl.size(c)].fill(c as u32);
    }
    slot
}

/// Every row against every cluster mean: one blocked `N x K x D` GEMM with
/// a fused running maximum per row.
fn exact_scores(
    g: &Gathered,
    means: &Means<'_>,
    pool: &rayon::ThreadPool,
    ctl: &Control,
) -> Result<Scores> {
    let cl = &g.clusters;
    let (k, d, m) = (cl.k(), g.d, cl.n_clustered());
    let slot_of_pos = slot_of_positions(g);
    let per_task = run_indexed(
        pool,
        m.div_ceil(ROWS),
        ctl,
        || (vec![0.0_f32; ROWS * KB], Vec::new()),
        |(buf, xs), t| {
            let (p0, p1) = (t * ROWS, ((t + 1) * ROWS).min(m));
            let ra = p1 - p0;
            release_before(g, t, ROWS);
            g.rows_into(p0, p1, xs);
            let own: Vec<f64> = xs
                .chunks_exact(d)
                .enumerate()
                .map(|(r, x)| means.sim64(x, slot_of_pos[p0 + r] as usize))
                .collect();
            let sq: Vec<f64> = xs.chunks_exact(d).map(sq_norm).collect();
            // the nearest other mean by the GEMM, then its similarity in f64
            // (b, like a, is then exact to f64 rounding for that mean)
            let mut best = vec![(f32::NEG_INFINITY, usize::MAX); ra];
            for c0 in (0..k).step_by(KB) {
                let c1 = (c0 + KB).min(k);
                let kc = c1 - c0;
                gemm_abt(xs, ra, means.rows(c0, c1), kc, d, buf);
                for (r, top) in best.iter_mut().enumerate() {
                    let row = &buf[r * kc..(r + 1) * kc];
                    let s = slot_of_pos[p0 + r] as usize;
                    for (j, &v) in row.iter().enumerate() {
                        let v = means.scale(c0 + j, v);
                        if v > top.0 && c0 + j != s {
                            *top = (v, c0 + j);
                        }
                    }
                }
            }
            let best: Vec<f32> = best
                .iter()
                .zip(xs.chunks_exact(d))
                .map(|(&(v, c), x)| {
                    if c == usize::MAX {
                        v
                    } else {
                        means.sim64(x, c) as f32
                    }
                })
                .collect();
            (own, sq, best)
        },
    )?;
    let mut scores = Scores {
        own: Vec::with_capacity(m),
        sq: Vec::with_capacity(m),
        best: Vec::with_capacity(m),
    };
    for (own, sq, best) in per_task {
        scores.own.extend(own);
        scores.sq.extend(sq);
        scores.best.extend(best);
    }
    Ok(scores)
}

/// `b` searched over a partition of the cluster means (as an inverted file):
/// each row of a multi-member cluster is compared with the means in the
/// `nprobe` lists whose centroids are nearest to the row itself. Rows are
/// batched by list, so every GEMM multiplies up to [`ROWS`] rows by a list.
fn probed_scores(
    g: &Gathered,
    means: &Means<'_>,
    plan: &Plan,
    pool: &rayon::ThreadPool,
    ctl: &Control,
    (auto, work, pairs_total): (bool, f64, u64),
) -> Result<(Scores, Record, Overestimate)> {
    let cl = &g.clusters;
    let (k, d, m) = (cl.k(), g.d, cl.n_clustered());
    // clusters whose members cancel out exactly have a zero mean: every row's
    // similarity to it is 0, and the partition (of directions) leaves it out
    let live: Vec<u32> = (0..k as u32)
        .filter(|&c| means.length[c as usize] > 0.0)
        .collect();
    let zero_means = k - live.len();
    // the live directions, packed (borrowed as they are when every mean is live)
    let packed: Cow<'_, [f32]> = if zero_means == 0 {
        Cow::Borrowed(means.rows(0, k))
    } else {
        Cow::Owned(
            live.iter()
                .flat_map(|&c| means.rows(c as usize, c as usize + 1).iter().copied())
                .collect(),
        )
    };
    let params = PartitionParams {
        seed: plan.seed,
        n_threads: Some(pool.current_num_threads()),
        cells: false, // only the certified ε-graph searches cells
        ..PartitionParams::for_rows(live.len())
    };
    let part = Partition::build(MatRef::new(&packed, live.len(), d)?, &params, ctl)?;
    drop(packed);
    let nprobe = plan.nprobe.clamp(1, part.n_lists);
    let near = NearMeans::new(&part, &live, k, nprobe, pool, ctl)?;
    // per partition position: its cluster and the length of its mean
    let slot_at: Vec<u32> = part.order.iter().map(|&i| live[i as usize]).collect();
    let weight: Vec<f32> = slot_at.iter().map(|&c| means.length[c as usize]).collect();
    let mut pos_of_slot = vec![u32::MAX; k];
    for (p, &c) in slot_at.iter().enumerate() {
        pos_of_slot[c as usize] = p as u32;
    }
    // the rows scored: members of clusters with two or more, in input-row
    // order, so that each block of them reads one stretch of the input
    let rows_of = cl.gathered_rows();
    let mut query: Vec<u32> = (0..k)
        .filter(|&c| cl.size(c) >= 2)
        .flat_map(|c| (cl.offset(c)..cl.offset(c) + cl.size(c)).map(|p| p as u32))
        .collect();
    query.sort_unstable_by_key(|&p| rows_of[p as usize]);
    let slot_of_pos = slot_of_positions(g);
    let index = Centroids::new(&part.centroids, part.n_lists, d);
    let mut scores = Scores {
        own: vec![0.0; m],
        sq: vec![0.0; m],
        best: vec![f32::NEG_INFINITY; m],
    };
    let mut pairs_computed = near.pairs_computed;
    for block in query.chunks(QUERY_BLOCK) {
        pairs_computed += probe_block(
            g,
            means,
            block,
            &part,
            (&index, nprobe, &near),
            (&slot_of_pos, &pos_of_slot, &weight),
            &mut scores,
            pool,
            ctl,
        )?;
        // the block's stretch of a memory-mapped input is not read again
        g.release_rows();
    }
    if zero_means > 0 {
        // a zero mean is at similarity 0 from every row (unless it is the row's own)
        for &p in &query {
            let own_zero = means.length[slot_of_pos[p as usize] as usize] == 0.0;
            if zero_means > usize::from(own_zero) {
                scores.best[p as usize] = scores.best[p as usize].max(0.0);
            }
        }
    }
    // a row whose probed lists held only its own cluster: searched exactly
    let unmatched: Vec<usize> = query
        .iter()
        .map(|&p| p as usize)
        .filter(|&p| scores.best[p] == f32::NEG_INFINITY)
        .collect();
    for (&p, v) in unmatched.iter().zip(exact_best_of(
        g,
        means,
        &slot_of_pos,
        &unmatched,
        pool,
        ctl,
    )?) {
        scores.best[p] = v;
    }
    let check = probed_recall(g, means, &slot_of_pos, &query, &scores, plan, pool, ctl)?;
    let record = Record {
        method: Method::Ivf,
        auto,
        exact_work: work,
        recall: check.recall,
        recall_rows: check.rows,
        n_lists: part.n_lists,
        nprobe,
        pairs_computed,
        pairs_total,
    };
    Ok((scores, record, check.overestimate))
}

/// Each live cluster mean's [`MEAN_NEIGHBOURS`] nearest live means, found
/// over the partition of the means ([`ivf::knn`], NN-descent refined).
struct NearMeans {
    /// Neighbours per mean.
    m: usize,
    /// Per cluster slot, the slots of its mean's nearest means (`m` each;
    /// `u32::MAX` where fewer were found or the mean is zero).
    slots: Vec<u32>,
    /// Similarities the search computed.
    pairs_computed: u64,
}

impl NearMeans {
    fn new(
        part: &Partition,
        live: &[u32],
        k: usize,
        nprobe: usize,
        pool: &rayon::ThreadPool,
        ctl: &Control,
    ) -> Result<Self> {
        let m = MEAN_NEIGHBOURS.min(live.len().saturating_sub(1));
        let mut slots = vec![u32::MAX; k * m];
        if m == 0 {
            return Ok(Self {
                m,
                slots,
                pairs_computed: 0,
            });
        }
        let (nn, stats) = ivf::knn(part, m, nprobe, Some(pool.current_num_threads()), ctl)?;
        for (i, near) in nn.indices.chunks_exact(m).enumerate() {
            let c = live[i] as usize;
            for (out, &j) in slots[c * m..(c + 1) * m].iter_mut().zip(near) {
                if j != u32::MAX {
                    *out = live[j as usize];
                }
            }
        }
        Ok(Self {
            m,
            slots,
            pairs_computed: stats.pairs_computed,
        })
    }

    /// The slots of the means nearest to cluster `c`'s.
    fn of(&self, c: usize) -> &[u32] {
        &self.slots[c * self.m..(c + 1) * self.m]
    }
}

/// Scores the query rows of one `block` (gathered positions) in
/// [`probed_scores`]: each row's own-mean similarity, `|x|^2`, best over the
/// means nearest to its own mean and nearest `nprobe` lists, then per list a
/// GEMM of the rows probing it against its means, keeping each row's best.
/// Returns the pairs computed.
#[allow(clippy::too_many_arguments)]
fn probe_block(
    g: &Gathered,
    means: &Means<'_>,
    block: &[u32],
    part: &Partition,
    (index, nprobe, near): (&Centroids<'_>, usize, &NearMeans),
    (slot_of_pos, pos_of_slot, weight): (&[u32], &[u32], &[f32]),
    scores: &mut Scores,
    pool: &rayon::ThreadPool,
    ctl: &Control,
) -> Result<u64> {
    let d = g.d;
    let firsts = run_indexed(
        pool,
        block.len().div_ceil(KB),
        ctl,
        || (Vec::new(), Vec::new(), NearestScratch::default()),
        |(xs, one, scratch), t| {
            let qs = &block[t * KB..((t + 1) * KB).min(block.len())];
            xs.clear();
            for &p in qs {
                g.rows_into(p as usize, p as usize + 1, one);
                xs.extend_from_slice(one);
            }
            let own: Vec<f64> = qs
                .iter()
                .zip(xs.chunks_exact(d))
                .map(|(&p, x)| means.sim64(x, slot_of_pos[p as usize] as usize))
                .collect();
            let sq: Vec<f64> = xs.chunks_exact(d).map(sq_norm).collect();
            let near_best: Vec<f32> = qs
                .iter()
                .zip(xs.chunks_exact(d))
                .map(|(&p, x)| {
                    let s = slot_of_pos[p as usize];
                    near.of(s as usize)
                        .iter()
                        .filter(|&&c| c != u32::MAX && c != s)
                        .map(|&c| means.sim64(x, c as usize) as f32)
                        .fold(f32::NEG_INFINITY, f32::max)
                })
                .collect();
            let mut lists = Vec::with_capacity(qs.len() * nprobe);
            index.nearest(xs, qs.len(), nprobe, scratch, &mut lists);
            (own, sq, near_best, lists)
        },
    )?;
    // the rows probing each list (indices into the block, ascending)
    let mut by_list: Vec<Vec<u32>> = vec![Vec::new(); part.n_lists];
    let mut q = 0_usize;
    let mut near_pairs = 0_u64;
    for (own, sq, near_best, lists) in &firsts {
        for (i, &v) in own.iter().enumerate() {
            let p = block[q + i] as usize;
            scores.own[p] = v;
            scores.sq[p] = sq[i];
            scores.best[p] = scores.best[p].max(near_best[i]);
            near_pairs += near.m as u64;
            for &l in &lists[i * nprobe..(i + 1) * nprobe] {
                by_list[l as usize].push((q + i) as u32);
            }
        }
        q += own.len();
    }
    drop(firsts);
    let mut tasks: Vec<(u32, u32)> = Vec::new();
    for (l, rows) in by_list.iter().enumerate() {
        for r0 in (0..rows.len()).step_by(ROWS) {
            tasks.push((l as u32, r0 as u32));
        }
    }
    let per_task = run_indexed(
        pool,
        tasks.len(),
        ctl,
        || (vec![0.0_f32; ROWS * KB], Vec::new(), Vec::new()),
        |(buf, xs, one), t| {
            let (l, r0) = (tasks[t].0 as usize, tasks[t].1 as usize);
            let qs = &by_list[l][r0..(r0 + ROWS).min(by_list[l].len())];
            xs.clear();
            for &qi in qs {
                let p = block[qi as usize] as usize;
                g.rows_into(p, p + 1, one);
                xs.extend_from_slice(one);
            }
            let ra = qs.len();
            let (l0, l1) = (part.offsets[l], part.offsets[l + 1]);
            let mut best = vec![f32::NEG_INFINITY; ra];
            for b0 in (l0..l1).step_by(KB) {
                let b1 = (b0 + KB).min(l1);
                let kc = b1 - b0;
                gemm_abt(xs, ra, &part.xs[b0 * d..b1 * d], kc, d, buf);
                let w = &weight[b0..b1];
                for (r, (&qi, mx)) in qs.iter().zip(best.iter_mut()).enumerate() {
                    let row = &mut buf[r * kc..(r + 1) * kc];
                    // a row's own cluster is not a candidate
                    let own =
                        pos_of_slot[slot_of_pos[block[qi as usize] as usize] as usize] as usize;
                    if (b0..b1).contains(&own) {
                        row[own - b0] = f32::NEG_INFINITY;
                    }
                    let mut top = *mx;
                    for (&s, &wt) in row.iter().zip(w) {
                        let v = s * wt;
                        top = if v > top { v } else { top };
                    }
                    *mx = top;
                }
            }
            (best, (ra * (l1 - l0)) as u64)
        },
    )?;
    let mut pairs = near_pairs;
    for (&(l, r0), (best, n)) in tasks.iter().zip(per_task) {
        let qs = &by_list[l as usize][r0 as usize..];
        for (&qi, &v) in qs.iter().zip(&best) {
            let p = block[qi as usize] as usize;
            scores.best[p] = scores.best[p].max(v);
        }
        pairs += n;
    }
    Ok(pairs)
}

/// What the probed search's misses cost, measured on the recall sample.
struct SampleCheck {
    /// Share of the sampled rows whose nearest other cluster mean was found
    /// (to float32 rounding).
    recall: f64,
    /// Rows sampled.
    rows: usize,
    /// Mean and largest overestimate of a sampled row's silhouette.
    overestimate: Overestimate,
}

/// Checks `plan.recall_rows` seeded rows among the scored ones (`query`,
/// gathered positions) against their exact `b` by brute force over every
/// mean: whether the probed search found their nearest other cluster mean,
/// and by how much their silhouette came out too high where it did not.
#[allow(clippy::too_many_arguments)]
fn probed_recall(
    g: &Gathered,
    means: &Means<'_>,
    slot_of_pos: &[u32],
    query: &[u32],
    scores: &Scores,
    plan: &Plan,
    pool: &rayon::ThreadPool,
    ctl: &Control,
) -> Result<SampleCheck> {
    let sample: Vec<usize> = crate::ivf::recall_sample(query.len(), plan.recall_rows, plan.seed)
        .into_iter()
        .map(|i| query[i as usize] as usize)
        .collect();
    if sample.is_empty() {
        return Ok(SampleCheck {
            recall: 1.0,
            rows: 0,
            overestimate: Overestimate::default(),
        });
    }
    let exact = exact_best_of(g, means, slot_of_pos, &sample, pool, ctl)?;
    let tie = margin(g.d);
    let (mut found, mut sum, mut max) = (0_usize, 0.0_f64, 0.0_f64);
    for (&p, &e) in sample.iter().zip(&exact) {
        if scores.best[p] >= e - tie {
            found += 1;
        }
        // a scored row's cluster has n >= 2 members
        let n = g.clusters.size(slot_of_pos[p] as usize);
        let value = |best| {
            let (a, b) = cosine_a_b(scores, p, n, best);
            f64::from(silhouette_value(a, b))
        };
        // a miss only lowers `best`, raising the value (below 0: rounding)
        let over = (value(scores.best[p]) - value(e)).max(0.0);
        sum += over;
        max = max.max(over);
    }
    let rows = sample.len();
    Ok(SampleCheck {
        recall: found as f64 / rows as f64,
        rows,
        overestimate: Overestimate {
            mean: sum / rows as f64,
            max,
        },
    })
}

/// The exact largest similarity of the rows at `positions` to another
/// cluster's mean (`slot_of_pos`: each gathered position's cluster).
fn exact_best_of(
    g: &Gathered,
    means: &Means<'_>,
    slot_of_pos: &[u32],
    positions: &[usize],
    pool: &rayon::ThreadPool,
    ctl: &Control,
) -> Result<Vec<f32>> {
    let (k, d) = (g.clusters.k(), g.d);
    let per_task = run_indexed(
        pool,
        positions.len().div_ceil(ROWS),
        ctl,
        || (vec![0.0_f32; ROWS * KB], Vec::new(), Vec::new()),
        |(buf, xs, one), t| {
            let ps = &positions[t * ROWS..((t + 1) * ROWS).min(positions.len())];
            xs.clear();
            for (i, &p) in ps.iter().enumerate() {
                g.rows_into(p, p + 1, one);
                xs.extend_from_slice(one);
                // scattered rows of a mapped file bring in whole page-cache
                // folios (up to 2 MB each): given back every few rows
                if i % SCATTERED_ROWS == SCATTERED_ROWS - 1 {
                    g.release_rows();
                }
            }
            g.release_rows();
            let mut best = vec![f32::NEG_INFINITY; ps.len()];
            for c0 in (0..k).step_by(KB) {
                let c1 = (c0 + KB).min(k);
                let kc = c1 - c0;
                gemm_abt(xs, ps.len(), means.rows(c0, c1), kc, d, buf);
                for (r, &p) in ps.iter().enumerate() {
                    let own = slot_of_pos[p] as usize;
                    for (j, &v) in buf[r * kc..(r + 1) * kc].iter().enumerate() {
                        let v = means.scale(c0 + j, v);
                        if c0 + j != own && v > best[r] {
                            best[r] = v;
                        }
                    }
                }
            }
            best
        },
    )?;
    Ok(per_task.into_iter().flatten().collect())
}

/// `s = (b - a) / max(a, b)` (0 when both are 0).
fn silhouette_value(a: f64, b: f64) -> f32 {
    let den = a.max(b);
    if den > 0.0 {
        ((b - a) / den) as f32
    } else {
        0.0
    }
}

/// The silhouette of every row from its `(a, b)` distances (`a_b(p, n)` of
/// gathered position `p` in a cluster of `n >= 2` members); `overestimate`
/// is what a partitioned search measured.
fn finish(
    g: &Gathered,
    a_b: impl Fn(usize, usize) -> (f64, f64) + Sync,
    overestimate: Option<Overestimate>,
) -> Silhouette {
    let cl = &g.clusters;
    let (k, m) = (cl.k(), cl.n_clustered());
    let slot_of_pos = slot_of_positions(g);
    let gathered: Vec<f32> = (0..m)
        .into_par_iter()
        .with_min_len(4096)
        .map(|p| {
            let n = cl.size(slot_of_pos[p] as usize);
            if n < 2 {
                return 0.0_f32;
            }
            let (a, b) = a_b(p, n);
            silhouette_value(a, b)
        })
        .collect();
    let mut row = vec![f32::NAN; cl.n_rows()];
    for (&r, &v) in cl.gathered_rows().iter().zip(&gathered) {
        row[r as usize] = v;
    }
    let mut cluster_mean = Vec::with_capacity(k);
    let mut total = 0.0_f64;
    for c in 0..k {
        let o = cl.offset(c);
        let sum: f64 = gathered[o..o + cl.size(c)]
            .iter()
            .map(|&v| f64::from(v))
            .sum();
        total += sum;
        cluster_mean.push(sum / cl.size(c) as f64);
    }
    Silhouette {
        row,
        cluster_mean,
        mean: total / m as f64,
        overestimate,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::matrix::MatRef;
    use proptest::prelude::*;

    fn stats(g: &Gathered) -> CentroidStats {
        super::super::centroid_stats(g, Some(2)).unwrap()
    }

    fn exact() -> Plan {
        Plan {
            method: Method::Exact,
            ..Plan::default()
        }
    }

    /// Naive O(N^2) reference with cosine distances, scikit-learn's rules.
    fn naive(xs: &[f32], d: usize, lab: &[usize], k: usize) -> Vec<f64> {
        naive_with_scale(xs, d, lab, k)
            .into_iter()
            .map(|(s, _)| s)
            .collect()
    }

    /// [`naive`]'s values with each row's `max(a, b)`, the denominator that scales
    /// the inputs' rounding errors into the silhouette's.
    fn naive_with_scale(xs: &[f32], d: usize, lab: &[usize], k: usize) -> Vec<(f64, f64)> {
        naive_with(xs, d, lab, k, |u, v| {
            let cos: f64 = u
                .iter()
                .zip(v)
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum();
            (1.0 - cos).max(0.0)
        })
    }

    /// Naive O(N^2) Euclidean silhouette, scikit-learn's rules.
    fn naive_euclidean(xs: &[f32], d: usize, lab: &[usize], k: usize) -> Vec<f64> {
        naive_with(xs, d, lab, k, |u, v| {
            u.iter()
                .zip(v)
                .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .into_iter()
        .map(|(s, _)| s)
        .collect()
    }

    /// Naive O(N^2) silhouette of the gathered rows `xs` (cluster `lab[i]` of
    /// `k`) under the distance `dist`, scikit-learn's rules: per row its value
    /// and `max(a, b)`.
    fn naive_with(
        xs: &[f32],
        d: usize,
        lab: &[usize],
        k: usize,
        dist: impl Fn(&[f32], &[f32]) -> f64,
    ) -> Vec<(f64, f64)> {
        let n = lab.len();
        let row = |i: usize| &xs[i * d..(i + 1) * d];
        let sizes: Vec<usize> = (0..k)
            .map(|c| lab.iter().filter(|&&l| l == c).count())
            .collect();
        (0..n)
            .map(|i| {
                if sizes[lab[i]] < 2 {
                    return (0.0, 0.0);
                }
                let mut sums = vec![0.0; k];
                for j in 0..n {
                    if j != i {
                        sums[lab[j]] += dist(row(i), row(j));
                    }
                }
                let a = sums[lab[i]] / (sizes[lab[i]] - 1) as f64;
                let b = (0..k)
                    .filter(|&c| c != lab[i] && sizes[c] > 0)
                    .map(|c| sums[c] / sizes[c] as f64)
                    .fold(f64::INFINITY, f64::min);
                let den = a.max(b);
                (if den > 0.0 { (b - a) / den } else { 0.0 }, den)
            })
            .collect()
    }

    /// Silhouette of `n` uniform rows in `d` dimensions, labels `i % k`, against
    /// [`naive_with_scale`], and bit-equal for 1 and 2 threads.
    fn check_against_naive(
        seed: u64,
        n: usize,
        d: usize,
        k: usize,
    ) -> std::result::Result<(), TestCaseError> {
        let x = crate::testdata::uniform(n * d, seed, -0.4);
        let labels: Vec<i64> = (0..n).map(|i| (i % k) as i64).collect();
        let g = match Gathered::new(MatRef::new(&x, n, d).unwrap(), &labels, Some(2)) {
            Ok(g) => g,
            Err(_) => return Ok(()),
        };
        if g.clusters.k() >= n {
            return Ok(());
        }
        let got = silhouette(&g, &stats(&g), &exact(), Some(2), &Control::new())
            .unwrap()
            .0;
        // The naive reference on the gathered rows, in gathered order.
        let lab: Vec<usize> = (0..g.clusters.k())
            .flat_map(|c| std::iter::repeat_n(c, g.clusters.size(c)))
            .collect();
        let want = naive_with_scale(
            &g.rows(0, g.clusters.n_clustered()),
            d,
            &lab,
            g.clusters.k(),
        );
        for (p, &r) in g.clusters.gathered_rows().iter().enumerate() {
            // a and b come from f32 rows and means (absolute error below 5e-7 each);
            // s = (b - a) / max(a, b) divides that error by max(a, b)
            let (s, den) = want[p];
            let tol = 1e-5 + 5e-7 / den.max(1e-6);
            let v = f64::from(got.row[r as usize]);
            prop_assert!(
                (v - s).abs() < tol,
                "row {r} got {v} want {s} (max(a, b) = {den})"
            );
        }
        let one = silhouette(&g, &stats(&g), &exact(), Some(1), &Control::new())
            .unwrap()
            .0;
        prop_assert_eq!(
            one.row.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            got.row.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn matches_naive(seed in 0_u64..1000, n in 3_usize..200, d in 1_usize..12, k in 2_usize..9) {
            check_against_naive(seed, n, d, k)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn euclidean_matches_naive(seed in 0_u64..1000, n in 3_usize..1500, d in 1_usize..12, k in 2_usize..40) {
            // rows far from the origin; cluster 0 is a giant one, the rest small or singletons
            let x: Vec<f32> = crate::testdata::uniform(n * d, seed, -0.5).iter().map(|v| 4.0 * v + 10.0).collect();
            let labels: Vec<i64> = (0..n).map(|i| if i % 3 == 0 { ((i / 3) % k) as i64 } else if i % 7 == 1 { -1 } else { 0 }).collect();
            let g = Gathered::with_measure(MatRef::new(&x, n, d).unwrap(), &labels, Measure::Euclidean, Some(2)).unwrap();
            if g.clusters.k() < 2 || g.clusters.k() >= g.clusters.n_clustered() {
                return Ok(());
            }
            let got = silhouette(&g, &stats(&g), &exact(), Some(2), &Control::new()).unwrap().0;
            let lab: Vec<usize> = (0..g.clusters.k()).flat_map(|c| std::iter::repeat_n(c, g.clusters.size(c))).collect();
            let want = naive_euclidean(&g.rows(0, g.clusters.n_clustered()), d, &lab, g.clusters.k());
            for (p, &r) in g.clusters.gathered_rows().iter().enumerate() {
                prop_assert!((f64::from(got.row[r as usize]) - want[p]).abs() < 1e-5,
                    "row {} got {} want {}", r, got.row[r as usize], want[p]);
            }
            let one = silhouette(&g, &stats(&g), &exact(), Some(1), &Control::new()).unwrap().0;
            prop_assert_eq!(format!("{one:?}"), format!("{got:?}"));
        }
    }

    #[test]
    fn the_inner_product_has_no_silhouette() -> Result<()> {
        let x = [1.0, 0.0, 1.0, 0.1, 0.0, 1.0, 0.1, 1.0];
        let g = Gathered::with_measure(MatRef::new(&x, 4, 2)?, &[0, 0, 1, 1], Measure::Dot, None)?;
        let e = silhouette(&g, &stats(&g), &exact(), None, &Control::new());
        assert!(matches!(e, Err(crate::Error::Parameter(ref m)) if m.contains("dot")));
        Ok(())
    }

    #[test]
    fn matches_naive_when_badly_conditioned() -> std::result::Result<(), TestCaseError> {
        // d = 2: rows whose max(a, b) is small, where f32 means' rounding is magnified
        // (this case missed a fixed 1e-5 tolerance by 1e-5)
        check_against_naive(934, 9, 2, 5)
    }

    #[test]
    fn a_zero_mean_is_at_similarity_zero() -> Result<()> {
        // cluster 0 cancels out exactly: its mean is 0, at cosine distance 1 from every row
        let x = [
            1.0_f32, 0.0, -1.0, 0.0, 0.0, 1.0, 0.1, 1.0, 1.0, 0.1, 1.0, 0.2, -0.2, -1.0,
        ];
        let (n, d) = (7, 2);
        let labels = [0_i64, 0, 1, 1, 2, 2, 3];
        let g = Gathered::new(MatRef::new(&x, n, d)?, &labels, None)?;
        let lab: Vec<usize> = (0..g.clusters.k())
            .flat_map(|c| std::iter::repeat_n(c, g.clusters.size(c)))
            .collect();
        let want = naive(&g.rows(0, n), d, &lab, g.clusters.k());
        // every list probed: the partitioned search finds every mean
        let ivf = Plan {
            method: Method::Ivf,
            nprobe: n,
            recall_rows: n,
            ..Plan::default()
        };
        for plan in [exact(), ivf] {
            let (got, _) = silhouette(&g, &stats(&g), &plan, Some(2), &Control::new())?;
            for (p, &r) in g.clusters.gathered_rows().iter().enumerate() {
                let v = f64::from(got.row[r as usize]);
                assert!(
                    (v - want[p]).abs() < 1e-6,
                    "{:?} row {r}: {v} vs {}",
                    plan.method,
                    want[p]
                );
            }
        }
        Ok(())
    }

    #[test]
    fn streaming_rows_asks_their_owner_to_release_them() -> Result<()> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (n, d) = (QUERY_BLOCK + RELEASE_ROWS, 4);
        let x = crate::testdata::clustered(n, d, 50, 0.3, 5);
        let labels: Vec<i64> = (0..n).map(|i| (i % 50) as i64).collect();
        let g = Gathered::new(MatRef::new(&x, n, d)?, &labels, None)?;
        let calls = AtomicUsize::new(0);
        let count = || {
            calls.fetch_add(1, Ordering::Relaxed);
        };
        let counted = g.clone().with_release(&count);
        let st = stats(&g);
        for plan in [
            exact(),
            Plan {
                method: Method::Ivf,
                ..Plan::default()
            },
        ] {
            calls.store(0, Ordering::Relaxed);
            let (want, _) = silhouette(&g, &st, &plan, Some(2), &Control::new())?;
            let (got, _) = silhouette(&counted, &st, &plan, Some(2), &Control::new())?;
            let diff = (0..n)
                .filter(|&r| got.row[r].to_bits() != want.row[r].to_bits())
                .count();
            let (want2, _) = silhouette(&g, &st, &plan, Some(2), &Control::new())?;
            let self_diff = (0..n)
                .filter(|&r| want2.row[r].to_bits() != want.row[r].to_bits())
                .count();
            assert_eq!(
                got, want,
                "{:?} {diff} rows differ; rerun differs in {self_diff}",
                plan.method
            );
            assert!(calls.load(Ordering::Relaxed) >= 2, "{:?}", plan.method);
        }
        Ok(())
    }

    #[test]
    fn noise_rows_are_not_scored() -> Result<()> {
        let x = [1.0, 0.0, 1.0, 0.1, 0.0, 1.0, 0.1, 1.0, -1.0, -1.0];
        let g = Gathered::new(MatRef::new(&x, 5, 2)?, &[0, 0, 4, 4, -1], None)?;
        let (s, _) = silhouette(&g, &stats(&g), &exact(), None, &Control::new())?;
        assert!(s.row[4].is_nan());
        assert!(s.row[..4].iter().all(|&v| v > 0.9));
        assert_eq!(s.cluster_mean.len(), 2);
        Ok(())
    }

    #[test]
    fn partitioned_search_measures_its_recall_and_only_overestimates() -> Result<()> {
        // 300 groups in 16-d plus singletons: many clusters, as a threshold run at scale
        let (n, d) = (6000, 16);
        let x = crate::testdata::clustered(n, d, 300, 0.5, 3);
        let labels: Vec<i64> = (0..n)
            .map(|i| {
                if i % 7 == 0 {
                    (300 + i) as i64
                } else {
                    (i % 300) as i64
                }
            })
            .collect();
        let g = Gathered::new(MatRef::new(&x, n, d)?, &labels, None)?;
        let ivf = Plan {
            method: Method::Ivf,
            nprobe: 4,
            recall_rows: n,
            ..Plan::default()
        };
        let (want, er) = silhouette(&g, &stats(&g), &exact(), Some(2), &Control::new())?;
        let (got, rec) = silhouette(&g, &stats(&g), &ivf, Some(2), &Control::new())?;
        let (one, _) = silhouette(&g, &stats(&g), &ivf, Some(1), &Control::new())?;
        assert_eq!(got, one, "thread count changed the partitioned silhouette");
        assert_eq!((er.method, er.recall), (Method::Exact, 1.0));
        assert_eq!(rec.method, Method::Ivf);
        assert!(rec.pairs_computed < rec.pairs_total);
        // a missed nearest cluster only raises b and s; a found one gives the exact s
        let (mut same, mut scored) = (0, 0);
        for r in 0..n {
            let (a, b) = (want.row[r], got.row[r]);
            assert!(b >= a - 1e-5, "row {r}: {b} < exact {a}");
            if g.clusters.size(g.clusters.slot_of(r).unwrap_or(0)) >= 2 {
                scored += 1;
                same += usize::from((b - a).abs() <= 1e-5);
            }
        }
        // the recall measured on every scored row is the share whose s is exact
        assert_eq!(rec.recall_rows, scored);
        let direct = same as f64 / scored as f64;
        assert!(
            (rec.recall - direct).abs() < 0.02,
            "{} vs {direct}",
            rec.recall
        );
        assert!(rec.recall > 0.5, "recall {}", rec.recall);
        // the overestimate measured on every scored row is the direct one
        let over: Vec<f64> = (0..n)
            .filter(|&r| g.clusters.size(g.clusters.slot_of(r).unwrap_or(0)) >= 2)
            .map(|r| f64::from(got.row[r] - want.row[r]).max(0.0))
            .collect();
        let (mean, max) = (
            over.iter().sum::<f64>() / over.len() as f64,
            over.iter().copied().fold(0.0, f64::max),
        );
        let o = got.overestimate.expect("a partitioned search measures it");
        assert!(max > 1e-3, "the test should have misses: max {max}");
        assert!((o.mean - mean).abs() < 1e-5, "{} vs {mean}", o.mean);
        assert!((o.max - max).abs() < 1e-5, "{} vs {max}", o.max);
        assert_eq!(want.overestimate, None);
        Ok(())
    }
}
