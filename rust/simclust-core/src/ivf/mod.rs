//! Partitioned similarity graphs: the rows split into lists by spherical
//! k-means (an inverted file, as faiss' IVF), and the pairwise work done
//! only between lists that can hold neighbours.
//!
//! * [`Partition::build`] trains k-means (random seeding) on a seeded sample, assigns every
//!   row to its nearest centroid (blocked, without a full normalised copy;
//!   the centroids are ranked in int16 where the CPU has AVX-512 VNNI, see
//!   the `nearest` module),
//!   and keeps each list as one contiguous block of unit rows (the only copy
//!   of the data), with each list's radius (the smallest cosine of a member
//!   to its centroid). With [`PartitionParams::cells`], each list is further split into *cells* of about
//!   32 rows (k-means inside the list), each a contiguous block sorted by
//!   angle to its cell centroid: the certified search prunes with them.
//! * **Approximate ε-graph** ([`Probe::Nearest`]): each list is compared
//!   with the `nprobe` lists whose centroids are most similar to its own
//!   (itself included). Every unordered pair of lists is computed once, as
//!   one or more GEMM tiles, so a pair is found when either list probes the
//!   other.
//! * **Approximate kNN** ([`knn`]): every list with itself; every row with
//!   its next `nprobe - 1` nearest lists by its own direction (rows grouped
//!   by the list they probe, one GEMM per group); the rows whose `k`-th
//!   neighbour is then least similar (outliers, members of small clusters:
//!   their neighbours are spread over many lists) with many more lists; and
//!   last NN-descent's local joins (the `descent` module), which reach
//!   neighbours in lists a row did not probe through rows that did.
//!
//! * **Certified** ([`Probe::Certified`], threshold graphs only): angles on
//!   the sphere obey the triangle inequality, so rows `a`, `b` and any
//!   centroid `c` satisfy `angle(a, b) >= |angle(a, c) - angle(b, c)|`.
//!   Pairs of cells, then rows of a cell pair, that this bound places
//!   farther apart than `arccos t` (plus a safety margin for float32
//!   rounding) cannot hold an edge and are skipped; every other pair is
//!   computed, so the ε-graph is exact (see the `certified` module).
//!
//! Every similarity between two rows is computed in fp32, and a kNN list's similarities
//! are then recomputed in f64, the value the exact search lists for the
//! same pair (see `similarity::exact`); what is approximate is which pairs
//! are computed, and [`knn_recall`] / [`edge_recall`] measure what that
//! cost on a seeded sample of rows.
//!
//! Results do not depend on the thread count: tasks are fixed, top-k lists
//! are order-independent, edge lists are sorted.

use std::borrow::Cow;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::kmeans::{self, rng::SplitMix64, Init, KMeansParams, Metric};
use crate::matrix::MatRef;
use crate::parallel::{self, Control};
use crate::similarity::exact::{exact_cosine, refine};
use crate::similarity::normalize::{check_non_empty, scale_row, unit_factors};
use crate::similarity::{check_rows_fit_u32, finish, EdgeList, ExactRows, Neighbors, Shortlist};
use crate::tiles::{gemm_abt, run_dynamic, run_indexed, BLOCK};

mod certified;
pub use certified::{group_pair_edges, CellGroup, GroupEdges};
mod descent;
mod knn;
pub use knn::{
    knn, kth_entries, own_lists_part, probe_part, Floors, KnnMerge, KnnPart, ListRows, Probes,
    QueryRows,
};
mod nearest;

pub(crate) use nearest::{Centroids, Scratch as NearestScratch};

/// Rows per block when assigning rows to lists.
const ASSIGN_ROWS: usize = 1024;

/// Share of rows, those whose `k`-th neighbour is least similar after the
/// first probes, that an approximate kNN search compares with many more
/// lists: a row far from every centroid (an outlier) has neighbours
/// scattered over many lists, which probing a few nearest lists misses.
/// (1M x 384, nprobe 2: recall@10 0.971 without this pass, 0.982 with it.)
const WEAK_SHARE: f64 = 0.05;

/// Lists each of those rows probes: `max(WEAK_MIN_PROBES, 4 nprobe)`.
const WEAK_MIN_PROBES: usize = 32;

/// Nearest lists kept per row by [`Partition::build`]: an approximate kNN
/// search with `nprobe` up to this compares each row with its `nprobe`
/// nearest lists by its own direction (larger `nprobe` also compares
/// whole lists with their nearest lists).
const NEAR_LISTS: usize = 8;

/// Training rows per list in the default [`PartitionParams`].
pub const TRAIN_ROWS_PER_LIST: usize = 32;

/// The default number of lists for `n` rows: `2 sqrt(N)`, within `1..=N`.
///
/// ```
/// assert_eq!(simclust_core::ivf::default_n_lists(1_000_000), 2000);
/// ```
pub fn default_n_lists(n: usize) -> usize {
    ((2.0 * (n as f64).sqrt()).round() as usize).clamp(1, n.max(1))
}

/// Relative objective decrease at which the lists' training stops: coarser
/// than a k-means fit's default, since lists only need to be good enough
/// for probing and the training is most of a partition's build time.
const PARTITION_TOL: f64 = 1e-4;

/// Parameters of [`Partition::build`].
#[derive(Debug, Clone, Copy)]
pub struct PartitionParams {
    /// Number of lists (k-means clusters), `1 <= n_lists <= N`.
    pub n_lists: usize,
    /// Rows k-means is trained on (a seeded uniform sample; all when larger
    /// than N).
    pub train_size: usize,
    /// Lloyd iterations of the training.
    pub max_iter: usize,
    /// Seed of the sample and of k-means.
    pub seed: u64,
    /// Threads (`None`: the default pool).
    pub n_threads: Option<usize>,
    /// Split the lists into the cells a certified search prunes with (about
    /// a tenth of the build); without them only approximate searches run.
    pub cells: bool,
}

impl PartitionParams {
    /// Defaults for `n` rows: [`default_n_lists`] lists (about
    /// `sqrt(N) / 2` rows each), trained on 32 rows per list, 20
    /// iterations, seed 0.
    pub fn for_rows(n: usize) -> Self {
        let n_lists = default_n_lists(n);
        Self {
            n_lists,
            train_size: TRAIN_ROWS_PER_LIST * n_lists,
            max_iter: 20,
            seed: 0,
            n_threads: None,
            cells: true,
        }
    }
}

/// The rows split into lists, each a contiguous block of unit rows.
#[derive(Debug, Clone)]
pub struct Partition {
    /// Number of lists.
    pub n_lists: usize,
    /// Dimension.
    pub d: usize,
    /// `n_lists x d` unit centroids.
    pub centroids: Vec<f32>,
    /// List `l` is positions `offsets[l]..offsets[l + 1]`.
    pub offsets: Vec<usize>,
    /// The input row at each position (grouped by list, then by cell).
    pub order: Vec<u32>,
    /// The unit rows in position order (`n x d`).
    pub xs: Vec<f32>,
    /// Per list, the smallest cosine of a member to its centroid (1 when
    /// empty): its angular radius is `arccos` of it.
    pub min_cos: Vec<f32>,
    /// Per position, the cosine of the row to its list's centroid.
    pub cos: Vec<f32>,
    /// Per input row, its [`near_lists`] nearest lists, best (its own)
    /// first.
    near: Vec<u32>,
    /// The lists split into cells, for the certified search (`None` when
    /// built without, see [`PartitionParams::cells`]).
    cells: Option<certified::Cells>,
}

impl Partition {
    /// Trains the lists on a sample and assigns every row.
    ///
    /// Errors: [`Error::Shape`] on empty input, [`Error::NonFinite`] /
    /// [`Error::ZeroNorm`] naming bad rows, [`Error::Parameter`] for
    /// `n_lists` outside `1..=N`.
    pub fn build(x: MatRef<'_>, params: &PartitionParams, ctl: &Control) -> Result<Self> {
        Self::build_with(x, params, ctl, &|_: &[f32]| {})
    }

    /// [`Partition::build`], calling `done_with(rows)` on consecutive blocks
    /// of `x`'s rows as the build reads them for the last time in a pass
    /// (the assignment, then the copy into the lists; each streams `x` in
    /// order), so that a caller can give the pages of a memory-mapped input
    /// back while the copy grows.
    pub fn build_with(
        x: MatRef<'_>,
        params: &PartitionParams,
        ctl: &Control,
        done_with: &(dyn Fn(&[f32]) + Sync),
    ) -> Result<Self> {
        check_non_empty(&x, "X")?;
        check_rows_fit_u32(&x, "X")?;
        let n = x.n_rows();
        let l = params.n_lists;
        if l == 0 || l > n {
            return Err(Error::Parameter(format!(
                "n_lists must be in 1..=N = 1..={n}, got {l}"
            )));
        }
        let pool = parallel::pool(params.n_threads)?;
        let factors = unit_factors(x, "X", &pool)?;
        let centroids = train(x, &factors, params, ctl)?;
        let (near, cos) = assign(x, &factors, &centroids, l, &pool, ctl, done_with)?;
        Self::from_parts(
            x, &factors, params, centroids, near, cos, &pool, ctl, done_with,
        )
    }

    /// The partition of `x` into the lists of the given unit `centroids`
    /// (`n_lists x D`), each row's [`near_lists`] nearest lists `near`
    /// (`N x min(n_lists, 8)`, best first) and its cosine `cos` to the
    /// nearest: what [`Partition::build`] builds when its training gave
    /// these centroids and its assignment these lists, as a distributed run
    /// computes them ([`train_rows`], the k-means over row blocks,
    /// [`assign_rows`] per block).
    ///
    /// Errors: as [`Partition::build`] for `x`; [`Error::Shape`] for parts
    /// of the wrong sizes; [`Error::Parameter`] for lists outside
    /// `0..n_lists` or non-finite centroids or cosines.
    pub fn from_assignment(
        x: MatRef<'_>,
        params: &PartitionParams,
        centroids: Vec<f32>,
        near: Vec<u32>,
        cos: Vec<f32>,
        ctl: &Control,
    ) -> Result<Self> {
        check_non_empty(&x, "X")?;
        check_rows_fit_u32(&x, "X")?;
        let (n, d) = (x.n_rows(), x.n_cols());
        let l = params.n_lists;
        if l == 0 || l > n {
            return Err(Error::Parameter(format!(
                "n_lists must be in 1..=N = 1..={n}, got {l}"
            )));
        }
        let m = near_lists(l);
        if centroids.len() != l * d || near.len() != n * m || cos.len() != n {
            return Err(Error::Shape(format!(
                "centroids must be ({l}, {d}), near ({n}, {m}) and cos ({n},)"
            )));
        }
        if near.iter().any(|&j| j as usize >= l)
            || !centroids.iter().chain(&cos).all(|v| v.is_finite())
        {
            return Err(Error::Parameter(format!(
                "near must hold lists in 0..{l}; centroids and cos must be finite"
            )));
        }
        let pool = parallel::pool(params.n_threads)?;
        let factors = unit_factors(x, "X", &pool)?;
        Self::from_parts(
            x,
            &factors,
            params,
            centroids,
            near,
            cos,
            &pool,
            ctl,
            &|_: &[f32]| {},
        )
    }

    /// The lists from the trained centroids and the assignment.
    #[allow(clippy::too_many_arguments)]
    fn from_parts(
        x: MatRef<'_>,
        factors: &[f64],
        params: &PartitionParams,
        centroids: Vec<f32>,
        near: Vec<u32>,
        cos: Vec<f32>,
        pool: &rayon::ThreadPool,
        ctl: &Control,
        done_with: &(dyn Fn(&[f32]) + Sync),
    ) -> Result<Self> {
        let (n, d) = (x.n_rows(), x.n_cols());
        let l = params.n_lists;
        let m = near_lists(l);

        let mut offsets = vec![0_usize; l + 1];
        for r in 0..n {
            offsets[near[r * m] as usize + 1] += 1;
        }
        for i in 0..l {
            offsets[i + 1] += offsets[i];
        }
        let mut next = offsets.clone();
        let mut order = vec![0_u32; n];
        let mut min_cos = vec![1.0_f32; l];
        let mut pos_cos = vec![0.0_f32; n];
        for (r, &s) in cos.iter().enumerate() {
            let c = near[r * m] as usize;
            order[next[c]] = r as u32;
            pos_cos[next[c]] = s;
            next[c] += 1;
            min_cos[c] = min_cos[c].min(s);
        }
        // split every list into cells, which reorders the rows within it
        let cells = if params.cells {
            Some(certified::Cells::build(
                x,
                factors,
                &offsets,
                &mut order,
                &mut pos_cos,
                pool,
                ctl,
            )?)
        } else {
            None
        };
        let xs = copy_in_order(x, factors, &order, pool, done_with);
        Ok(Self {
            n_lists: l,
            d,
            centroids,
            offsets,
            order,
            xs,
            min_cos,
            cos: pos_cos,
            near,
            cells,
        })
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.order.len()
    }

    /// The unordered list pairs `(i, j)`, `i <= j`, an approximate search
    /// with [`Probe::Nearest`]`(nprobe)` compares (each list with the
    /// `nprobe` lists of nearest centroid, itself first; empty lists left
    /// out), sorted. A distributed run hands them to tasks: the tiles of a
    /// pair are those of [`threshold_edges`] of its two lists' rows
    /// (`similarity::threshold_edges` of one list,
    /// `similarity::threshold_edges_between` of two), so the tasks find the
    /// same edges.
    pub fn probed_list_pairs(
        &self,
        nprobe: usize,
        n_threads: Option<usize>,
    ) -> Result<Vec<(u32, u32)>> {
        let pool = parallel::pool(n_threads)?;
        Ok(self.list_pairs(nprobe, &pool))
    }

    fn list(&self, l: usize) -> (usize, usize) {
        (self.offsets[l], self.offsets[l + 1])
    }

    fn row(&self, p: usize) -> &[f32] {
        &self.xs[p * self.d..(p + 1) * self.d]
    }

    /// The edge between positions `p` and `q` whose float32 similarity `s`
    /// passed the screen, if its refined similarity reaches `threshold`.
    fn edge(&self, p: usize, q: usize, s: f32, lo: f32, threshold: f32) -> Option<Edge> {
        let v = refine(self.row(p), self.row(q), s, lo);
        let (u, w) = (self.order[p], self.order[q]);
        (v >= threshold).then_some((u.min(w), u.max(w), v))
    }

    /// `n_lists x n_lists` centroid cosine similarities.
    fn centroid_sims(&self, pool: &rayon::ThreadPool) -> Vec<f32> {
        let (l, d) = (self.n_lists, self.d);
        let mut out = vec![0.0_f32; l * l];
        pool.install(|| {
            out.par_chunks_mut(BLOCK * l)
                .enumerate()
                .for_each(|(b, dst)| {
                    let ra = dst.len() / l;
                    let a = &self.centroids[b * BLOCK * d..(b * BLOCK + ra) * d];
                    gemm_abt(a, ra, &self.centroids, l, d, dst);
                })
        });
        out
    }

    /// The unordered list pairs `(i, j)`, `i <= j`, compared by an
    /// approximate search: each list with the `nprobe` lists of nearest
    /// centroid (itself first).
    fn list_pairs(&self, nprobe: usize, pool: &rayon::ThreadPool) -> Vec<(u32, u32)> {
        let l = self.n_lists;
        let sims = self.centroid_sims(pool);
        let m = nprobe.clamp(1, l);
        let mut pairs: Vec<(u32, u32)> = (0..l)
            .into_par_iter()
            .flat_map_iter(|i| {
                let row = &sims[i * l..(i + 1) * l];
                let mut idx: Vec<u32> = (0..l as u32).collect();
                // itself first, then by similarity (ties: lower index)
                let key = |j: u32| {
                    if j as usize == i {
                        f32::INFINITY
                    } else {
                        row[j as usize]
                    }
                };
                idx.sort_unstable_by(|&a, &b| key(b).total_cmp(&key(a)).then(a.cmp(&b)));
                idx.truncate(m);
                idx.into_iter()
                    .map(move |j| ((i as u32).min(j), (i as u32).max(j)))
            })
            .collect();
        pairs.retain(|&(i, j)| {
            self.offsets[i as usize] < self.offsets[i as usize + 1]
                && self.offsets[j as usize] < self.offsets[j as usize + 1]
        });
        pairs.par_sort_unstable();
        pairs.dedup();
        pairs
    }

    /// The GEMM tiles of the given list pairs: `(i, j, bi, bj)`, blocks of at
    /// most [`BLOCK`] rows; for `i == j` only `bi <= bj`.
    fn tiles(&self, pairs: &[(u32, u32)]) -> Vec<Tile> {
        let nb = |l: u32| {
            let (a, b) = self.list(l as usize);
            (b - a).div_ceil(BLOCK)
        };
        let mut out = Vec::new();
        for &(i, j) in pairs {
            for bi in 0..nb(i) {
                let start = if i == j { bi } else { 0 };
                for bj in start..nb(j) {
                    out.push(Tile {
                        i,
                        j,
                        bi: bi as u32,
                        bj: bj as u32,
                    });
                }
            }
        }
        out
    }

    /// Position ranges `(a0, a1, b0, b1)` of a tile.
    fn tile_ranges(&self, t: &Tile) -> (usize, usize, usize, usize) {
        let (ai, aj) = self.list(t.i as usize);
        let (bi, bj) = self.list(t.j as usize);
        let a0 = ai + t.bi as usize * BLOCK;
        let b0 = bi + t.bj as usize * BLOCK;
        (a0, (a0 + BLOCK).min(aj), b0, (b0 + BLOCK).min(bj))
    }

    /// Computes a tile's similarities into `buf` (`ra x rb`, row-major).
    fn similarities(&self, t: &Tile, buf: &mut [f32]) -> TileBlock {
        let (a0, a1, b0, b1) = self.tile_ranges(t);
        let (ra, rb, d) = (a1 - a0, b1 - b0, self.d);
        gemm_abt(
            &self.xs[a0 * d..a1 * d],
            ra,
            &self.xs[b0 * d..b1 * d],
            rb,
            d,
            buf,
        );
        TileBlock {
            a0,
            b0,
            ra,
            rb,
            diagonal: t.i == t.j && t.bi == t.bj,
        }
    }

    /// The rows at `positions` grouped by the lists they probe: each row
    /// under its nearest lists `skip..m` (best first, so 0 is its own list),
    /// kept from [`Partition::build`] up to [`NEAR_LISTS`], computed against
    /// the centroids beyond.
    fn probe_groups(
        &self,
        positions: &[u32],
        m: usize,
        skip: usize,
        pool: &rayon::ThreadPool,
        ctl: &Control,
    ) -> Result<Vec<Vec<u32>>> {
        let (l, d) = (self.n_lists, self.d);
        let kept = near_lists(l);
        let m = m.min(l);
        let skip = skip.min(m);
        let mut groups: Vec<Vec<u32>> = vec![Vec::new(); l];
        if m <= kept {
            for &p in positions {
                let r = self.order[p as usize] as usize;
                for &j in &self.near[r * kept + skip..r * kept + m] {
                    groups[j as usize].push(p);
                }
            }
            return Ok(groups);
        }
        let index = Centroids::new(&self.centroids, l, d);
        let tops = run_indexed(
            pool,
            positions.len().div_ceil(ASSIGN_ROWS),
            ctl,
            || {
                (
                    Vec::with_capacity(ASSIGN_ROWS * d),
                    NearestScratch::default(),
                )
            },
            |(q, scratch), b| {
                let rows =
                    &positions[b * ASSIGN_ROWS..((b + 1) * ASSIGN_ROWS).min(positions.len())];
                q.clear();
                for &p in rows {
                    q.extend_from_slice(self.row(p as usize));
                }
                let mut top = Vec::with_capacity(rows.len() * m);
                index.nearest(q, rows.len(), m, scratch, &mut top);
                top
            },
        )?;
        for (&p, top) in positions.iter().zip(tops.concat().chunks_exact(m)) {
            for &j in &top[skip..] {
                groups[j as usize].push(p);
            }
        }
        Ok(groups)
    }

    /// Number of row pairs the given tiles compute.
    fn pairs_in(&self, tiles: &[Tile]) -> u64 {
        tiles
            .iter()
            .map(|t| {
                let (a0, a1, b0, b1) = self.tile_ranges(t);
                let (ra, rb) = ((a1 - a0) as u64, (b1 - b0) as u64);
                if t.i == t.j && t.bi == t.bj {
                    ra * (ra - 1) / 2
                } else {
                    ra * rb
                }
            })
            .sum()
    }
}

/// Which list pairs are compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Probe {
    /// Each list with the `nprobe` lists of nearest centroid (itself first).
    Nearest(usize),
    /// Every pair of rows that can have similarity `>= t` (the exact
    /// ε-graph; pairs are pruned by the triangle bound over cells).
    Certified(f32),
}

/// What a partitioned search computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchStats {
    /// Row pairs whose similarity was computed.
    pub pairs_computed: u64,
    /// All row pairs, `N (N - 1) / 2`.
    pub pairs_total: u64,
    /// List pairs compared as wholes (a kNN search: each list with itself;
    /// its row probes are counted in `pairs_computed` only).
    pub list_pairs: u64,
}

/// Where a computed tile's rows and columns start, its shape, and whether it
/// lies on a list's diagonal (then only pairs above it count).
#[derive(Debug, Clone, Copy)]
struct TileBlock {
    a0: usize,
    b0: usize,
    ra: usize,
    rb: usize,
    diagonal: bool,
}

impl TileBlock {
    /// Calls `visit(p, q, s)` for every pair of positions the tile's
    /// similarities `buf` hold, each pair once.
    #[inline]
    fn for_each_pair(&self, buf: &[f32], mut visit: impl FnMut(usize, usize, f32)) {
        for r in 0..self.ra {
            let row = &buf[r * self.rb..(r + 1) * self.rb];
            let first = if self.diagonal { r + 1 } else { 0 };
            for (c, &s) in row.iter().enumerate().skip(first) {
                visit(self.a0 + r, self.b0 + c, s);
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Tile {
    i: u32,
    j: u32,
    bi: u32,
    bj: u32,
}

/// k-means on a seeded sample of unit rows, seeded with random rows: the
/// unit centroids. (Greedy k-means++ seeding costs more than all the Lloyd
/// iterations together at thousands of lists, and measured recall at equal
/// `nprobe` is within half a point either way.)
fn train(
    x: MatRef<'_>,
    factors: &[f64],
    params: &PartitionParams,
    ctl: &Control,
) -> Result<Vec<f32>> {
    let (n, d) = (x.n_rows(), x.n_cols());
    let rows = train_rows(n, params);
    let m = rows.len();
    let mut sample = vec![0.0_f32; m * d];
    for (dst, &r) in sample.chunks_exact_mut(d).zip(&rows) {
        scale_row(x.row(r), factors[r], dst);
    }
    let kp = train_params(params);
    Ok(kmeans::kmeans(MatRef::new(&sample, m, d)?, &kp, ctl)?.centroids)
}

/// The rows (of `n`, ascending) the lists are trained on: a seeded uniform
/// sample of `train_size` rows (clamped to `n_lists..=n`; all when larger).
pub fn train_rows(n: usize, params: &PartitionParams) -> Vec<usize> {
    let m = params.train_size.clamp(params.n_lists.min(n), n);
    let mut rows = if m < n {
        SplitMix64::new(params.seed).sample_distinct(n, m)
    } else {
        (0..n).collect()
    };
    rows.sort_unstable();
    rows
}

/// The training of [`Partition::build`] as k-means parameters (on the unit
/// rows [`train_rows`] names): random seeding, the partition's tolerance.
pub fn train_params(params: &PartitionParams) -> KMeansParams<'static> {
    let mut kp = KMeansParams::new(params.n_lists);
    kp.metric = Metric::Cosine;
    kp.init = Init::Random;
    kp.max_iter = params.max_iter;
    kp.tol = PARTITION_TOL;
    kp.random_state = params.seed;
    kp.n_threads = params.n_threads;
    kp
}

/// Each row of `x` (a block starting on a multiple of 1,024 rows, or all
/// rows) with its nearest lists among the unit `centroids` (`l x D`) and
/// its cosine to the nearest, as [`Partition::build`] assigns them:
/// `(near, cos)`, `near` holding `min(l, 8)` lists per row.
///
/// Errors: as [`Partition::build`] for `x`; [`Error::Shape`] for centroids
/// that are not `l x D`.
pub fn assign_rows(
    x: MatRef<'_>,
    centroids: &[f32],
    l: usize,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<(Vec<u32>, Vec<f32>)> {
    check_non_empty(&x, "X")?;
    if l == 0 || centroids.len() != l * x.n_cols() {
        return Err(Error::Shape(format!(
            "centroids must be ({l}, {}) with l >= 1",
            x.n_cols()
        )));
    }
    let pool = parallel::pool(n_threads)?;
    let factors = unit_factors(x, "X", &pool)?;
    assign(x, &factors, centroids, l, &pool, ctl, &|_: &[f32]| {})
}

/// Each row's [`near_lists`]`(l)` nearest lists (best first, ties: the
/// lower list, ranked by [`Centroids::nearest`]) and its exact cosine to
/// the nearest, block by block (the unit rows of one block at a time).
fn assign(
    x: MatRef<'_>,
    factors: &[f64],
    centroids: &[f32],
    l: usize,
    pool: &rayon::ThreadPool,
    ctl: &Control,
    done_with: &(dyn Fn(&[f32]) + Sync),
) -> Result<(Vec<u32>, Vec<f32>)> {
    let (n, d) = (x.n_rows(), x.n_cols());
    let m = near_lists(l);
    let index = Centroids::new(centroids, l, d);
    let per_block = run_indexed(
        pool,
        n.div_ceil(ASSIGN_ROWS),
        ctl,
        || (vec![0.0_f32; ASSIGN_ROWS * d], NearestScratch::default()),
        |(rows, scratch), b| {
            let (r0, r1) = (b * ASSIGN_ROWS, ((b + 1) * ASSIGN_ROWS).min(n));
            let ra = r1 - r0;
            for (dst, r) in rows.chunks_exact_mut(d).zip(r0..r1) {
                scale_row(x.row(r), factors[r], dst);
            }
            done_with(&x.as_slice()[r0 * d..r1 * d]);
            let mut near = Vec::with_capacity(ra * m);
            index.nearest(rows, ra, m, scratch, &mut near);
            let cos: Vec<f32> = (0..ra)
                .map(|p| {
                    let best = near[p * m] as usize;
                    exact_cosine(
                        &rows[p * d..(p + 1) * d],
                        &centroids[best * d..(best + 1) * d],
                    )
                })
                .collect();
            (near, cos)
        },
    )?;
    let mut near = Vec::with_capacity(n * m);
    let mut cos = Vec::with_capacity(n);
    for (bn, bc) in per_block {
        near.extend_from_slice(&bn);
        cos.extend_from_slice(&bc);
    }
    Ok((near, cos))
}

/// The unit rows of `x` at their positions (`order[p]` is the input row at
/// position `p`), read in input order block by block, each block then given
/// to `done_with`: the copy streams the input once, and every row is written
/// to one position.
fn copy_in_order(
    x: MatRef<'_>,
    factors: &[f64],
    order: &[u32],
    pool: &rayon::ThreadPool,
    done_with: &(dyn Fn(&[f32]) + Sync),
) -> Vec<f32> {
    let (n, d) = (x.n_rows(), x.n_cols());
    let mut pos = vec![0_u32; n];
    for (p, &r) in order.iter().enumerate() {
        pos[r as usize] = p as u32;
    }
    let mut xs = vec![0.0_f32; n * d];
    let out = SharedRows(xs.as_mut_ptr());
    pool.install(|| {
        (0..n.div_ceil(ASSIGN_ROWS)).into_par_iter().for_each(|b| {
            let (r0, r1) = (b * ASSIGN_ROWS, ((b + 1) * ASSIGN_ROWS).min(n));
            for r in r0..r1 {
                let p = pos[r] as usize;
                // SAFETY: `order` is a permutation of `0..n` (every row is
                // placed once), so `pos` is too and each position `p < n`
                // is written by exactly one task; `xs` holds `n * d` values
                // and outlives the pool's work.
                let dst = unsafe { out.row(p, d) };
                scale_row(x.row(r), factors[r], dst);
            }
            done_with(&x.as_slice()[r0 * d..r1 * d]);
        })
    });
    xs
}

/// The base of an `n x d` row buffer that parallel tasks write disjoint
/// rows of ([`copy_in_order`]).
#[derive(Clone, Copy)]
struct SharedRows(*mut f32);

impl SharedRows {
    /// Row `p` (of `d` values) of the buffer.
    ///
    /// # Safety
    ///
    /// `p` is a row of the buffer and no other live reference covers it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn row(&self, p: usize, d: usize) -> &mut [f32] {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(p * d), d) }
    }
}

// SAFETY: the tasks that share it write disjoint rows (see `copy_in_order`).
unsafe impl Send for SharedRows {}
// SAFETY: as above; no task reads through it.
unsafe impl Sync for SharedRows {}

/// Lists each row keeps as its nearest (own list first), for the
/// approximate kNN's row probes: [`NEAR_LISTS`] or all `l` when fewer.
fn near_lists(l: usize) -> usize {
    NEAR_LISTS.min(l)
}

/// An approximate kNN search ([`knn`]) with what it cost and its recall@k.
#[derive(Debug, Clone)]
pub struct MeasuredKnn {
    /// The lists, in input row order.
    pub nn: Neighbors,
    /// What the search computed.
    pub stats: SearchStats,
    /// Recall@k on the sampled rows ([`knn_recall`]; `None` when none were).
    pub recall: Option<f64>,
    /// Rows the recall was measured on.
    pub recall_rows: usize,
}

/// [`knn`] for at least [`MIN_SEARCH_K`] neighbours, cut to the `k` best,
/// then its recall@k measured on `recall_rows` rows sampled with `seed`
/// ([`recall_sample`], [`knn_recall`]; not measured when 0).
#[allow(clippy::too_many_arguments)]
pub fn knn_measured(
    part: &Partition,
    k: usize,
    nprobe: usize,
    recall_rows: usize,
    seed: u64,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<MeasuredKnn> {
    let search_k = part.knn_search_k(k)?;
    let (nn, stats) = knn(part, search_k, nprobe, n_threads, ctl)?;
    measured(part, nn, stats, k, recall_rows, seed, n_threads, ctl)
}

/// The lists of a search for [`Partition::knn_search_k`] neighbours cut to
/// the `k` best, with their recall@k as [`knn_measured`] measures it.
#[allow(clippy::too_many_arguments)]
fn measured(
    part: &Partition,
    nn: Neighbors,
    stats: SearchStats,
    k: usize,
    recall_rows: usize,
    seed: u64,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<MeasuredKnn> {
    if k == 0 || k > nn.k {
        return Err(Error::Parameter(format!(
            "k must be in 1..={} (the lists' width), got {k}",
            nn.k
        )));
    }
    let nn = first_neighbours(nn, k);
    let (recall, recall_rows) = measured_knn_recall(part, &nn, recall_rows, seed, n_threads, ctl)?;
    Ok(MeasuredKnn {
        nn,
        stats,
        recall,
        recall_rows,
    })
}

/// Recall@k of the kNN lists `nn` (input row order) over the partition's
/// rows, on `recall_rows` rows sampled with `seed` ([`recall_sample`],
/// [`knn_recall`]): `(None, 0)` when none are. The value [`knn_measured`]
/// records.
pub fn measured_knn_recall(
    part: &Partition,
    nn: &Neighbors,
    recall_rows: usize,
    seed: u64,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<(Option<f64>, usize)> {
    let n = part.n_rows();
    if nn.k == 0 || nn.indices.len() != n * nn.k || nn.similarities.len() != n * nn.k {
        return Err(Error::Shape(format!(
            "the kNN lists must be {n} x k with k >= 1 (the partition's rows), got {} values for k = {}",
            nn.indices.len(),
            nn.k
        )));
    }
    let rows = recall_sample(n, recall_rows, seed);
    if rows.is_empty() {
        return Ok((None, 0));
    }
    Ok((
        Some(knn_recall(part, nn, &rows, n_threads, ctl)?),
        rows.len(),
    ))
}

/// Neighbours an approximate kNN search looks for at least: with fewer,
/// its probes and NN-descent's joins see too few candidates (the nearest
/// cluster of 500k centroids, `k = 1`, had recall 0.63 at 1M rows).
pub const MIN_SEARCH_K: usize = 10;

/// The first `k` of each row's lists (sorted best first).
fn first_neighbours(nn: Neighbors, k: usize) -> Neighbors {
    fn first<T: Copy>(rows: &[T], width: usize, k: usize) -> Vec<T> {
        rows.chunks_exact(width)
            .flat_map(|r| r[..k].iter().copied())
            .collect()
    }
    if nn.k == k {
        return nn;
    }
    Neighbors {
        k,
        indices: first(&nn.indices, nn.k, k),
        similarities: first(&nn.similarities, nn.k, k),
    }
}

/// The undirected kNN graph over the partition: [`knn_measured`], then
/// every listed pair with similarity `>= threshold` once, `(src < dst)`
/// sorted.
#[allow(clippy::too_many_arguments)]
pub fn knn_edges(
    part: &Partition,
    k: usize,
    threshold: f32,
    nprobe: usize,
    recall_rows: usize,
    seed: u64,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<(EdgeList, MeasuredKnn)> {
    crate::similarity::check_threshold(threshold)?;
    let found = knn(part, part.knn_search_k(k)?, nprobe, n_threads, ctl)?;
    knn_graph(part, found, k, threshold, recall_rows, seed, n_threads, ctl)
}

/// The undirected kNN graph of [`knn_edges`] from what a search for
/// [`Partition::knn_search_k`] neighbours found (its lists and stats: [`knn`],
/// or [`Partition::knn_finish`] of its parts), with its recall@k.
#[allow(clippy::too_many_arguments)]
pub fn knn_graph(
    part: &Partition,
    (nn, stats): (Neighbors, SearchStats),
    k: usize,
    threshold: f32,
    recall_rows: usize,
    seed: u64,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<(EdgeList, MeasuredKnn)> {
    crate::similarity::check_threshold(threshold)?;
    let m = measured(part, nn, stats, k, recall_rows, seed, n_threads, ctl)?;
    Ok((crate::similarity::edges_from_neighbors(&m.nn, threshold), m))
}

/// Lists over positions mapped to input rows: row `order[p]` gets position
/// `p`'s list, each neighbour `q` becomes `order[q]`, re-sorted with ties by
/// the lower input row.
fn to_input_order(part: &Partition, nn: Neighbors) -> Neighbors {
    let (n, k) = (part.n_rows(), nn.k);
    let mut indices = vec![u32::MAX; n * k];
    let mut similarities = vec![f32::NEG_INFINITY; n * k];
    for p in 0..n {
        let r = part.order[p] as usize;
        let mut row: Vec<(f32, u32)> = nn.similarities[p * k..(p + 1) * k]
            .iter()
            .zip(&nn.indices[p * k..(p + 1) * k])
            .map(|(&s, &q)| {
                (
                    s,
                    if q == u32::MAX {
                        u32::MAX
                    } else {
                        part.order[q as usize]
                    },
                )
            })
            .collect();
        row.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for (slot, (s, q)) in row.into_iter().enumerate() {
            similarities[r * k + slot] = s;
            indices[r * k + slot] = q;
        }
    }
    Neighbors {
        k,
        indices,
        similarities,
    }
}

/// The ε-graph over the partition: every computed pair with similarity
/// `>= threshold`, as `(src < dst)` input rows sorted by `(src, dst)`.
/// With [`Probe::Certified`] (its threshold must be `threshold`) it is the
/// exact ε-graph.
pub fn threshold_edges(
    part: &Partition,
    threshold: f32,
    probe: Probe,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<(EdgeList, SearchStats)> {
    crate::similarity::check_threshold(threshold)?;
    let pool = parallel::pool(n_threads)?;
    let found = search_threshold(part, threshold, probe, &pool, ctl)?;
    let stats = found.stats(part.n_rows());
    Ok((sorted_edge_list(found.edges, part.n_rows(), &pool), stats))
}

/// The unsorted ε-graph edges of [`threshold_edges`].
fn search_threshold(
    part: &Partition,
    threshold: f32,
    probe: Probe,
    pool: &rayon::ThreadPool,
    ctl: &Control,
) -> Result<Found> {
    Ok(match probe {
        Probe::Certified(t) if t != threshold => {
            return Err(Error::Parameter(format!(
                "a certified search must use the graph's threshold {threshold}, got {t}"
            )))
        }
        Probe::Certified(_) => match &part.cells {
            Some(cells) => certified::edges(part, cells, threshold, pool, ctl)?,
            None => {
                return Err(Error::Parameter(
                    "a certified search needs a partition built with cells \
                     (PartitionParams::cells)"
                        .into(),
                ))
            }
        },
        Probe::Nearest(nprobe) => probed_edges(part, threshold, nprobe, pool, ctl)?,
    })
}

/// An ε-graph searched over a partition ([`threshold_graph`]), with what
/// the search did.
#[derive(Debug, Clone)]
pub struct PartitionedGraph {
    /// The edges, `(src < dst)` input rows sorted by `(src, dst)`.
    pub edges: EdgeList,
    /// What the search computed.
    pub stats: SearchStats,
    /// Pair recall: 1 when certified, measured on `recall_rows` seeded rows
    /// when approximate (`None` when `recall_rows` is 0).
    pub recall: Option<f64>,
    /// Rows the recall was measured on.
    pub recall_rows: usize,
    /// Lists of the partition.
    pub n_lists: usize,
}

/// The ε-graph at `threshold` over a partition (see [`threshold_edges`]),
/// with the pair recall of an approximate search measured on `recall_rows`
/// rows sampled with `seed`. A partition passed owned (`Cow::Owned`) is
/// dropped before the edges are sorted: its unit-row copy is the size of
/// the input, and is then never held together with the sort's buffers.
pub fn threshold_graph(
    part: Cow<'_, Partition>,
    threshold: f32,
    probe: Probe,
    recall_rows: usize,
    seed: u64,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<PartitionedGraph> {
    crate::similarity::check_threshold(threshold)?;
    let pool = parallel::pool(n_threads)?;
    let found = search_measured(&part, threshold, probe, recall_rows, seed, &pool, ctl)?;
    let n = part.n_rows();
    drop(part);
    Ok(found.sorted(n, &pool))
}

/// The unsorted edges of a threshold search with its pair recall: 1 when
/// certified, else measured on `recall_rows` rows sampled with `seed`
/// (`None` when 0), from the unsorted edges' degrees.
struct Measured {
    found: Found,
    stats: SearchStats,
    recall: Option<f64>,
    recall_rows: usize,
    n_lists: usize,
}

impl Measured {
    fn sorted(self, n: usize, pool: &rayon::ThreadPool) -> PartitionedGraph {
        PartitionedGraph {
            edges: sorted_edge_list(self.found.edges, n, pool),
            stats: self.stats,
            recall: self.recall,
            recall_rows: self.recall_rows,
            n_lists: self.n_lists,
        }
    }
}

fn search_measured(
    part: &Partition,
    threshold: f32,
    probe: Probe,
    recall_rows: usize,
    seed: u64,
    pool: &rayon::ThreadPool,
    ctl: &Control,
) -> Result<Measured> {
    let found = search_threshold(part, threshold, probe, pool, ctl)?;
    let n = part.n_rows();
    let (recall, rows) = match probe {
        Probe::Certified(_) => (Some(1.0), 0),
        Probe::Nearest(_) => {
            let edges = found.edges.iter().flatten().map(|&(a, b, _)| (a, b));
            measured_pair_recall(part, edges, threshold, recall_rows, seed, pool, ctl)?
        }
    };
    Ok(Measured {
        stats: found.stats(n),
        found,
        recall,
        recall_rows: rows,
        n_lists: part.n_lists,
    })
}

/// Distinct edges over `n` rows, given in chunks, sorted by `(src, dst)`:
/// counted per `src`, scattered straight into the final arrays (each chunk
/// freed once scattered, so the edges are held about once and a half at
/// the peak, not three times), then each row's edges sorted by `dst` in
/// parallel.
fn sorted_edge_list(chunks: Vec<Vec<Edge>>, n: usize, pool: &rayon::ThreadPool) -> EdgeList {
    let mut start = vec![0_usize; n + 1];
    for e in chunks.iter().flatten() {
        start[e.0 as usize + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let m = start[n];
    let mut next = start.clone();
    let mut dst = vec![0_u32; m];
    let mut similarity = vec![0.0_f32; m];
    for chunk in chunks {
        for (u, w, v) in chunk {
            let at = next[u as usize];
            dst[at] = w;
            similarity[at] = v;
            next[u as usize] += 1;
        }
    }
    drop(next);
    let mut runs: Vec<(&mut [u32], &mut [f32])> = Vec::with_capacity(n);
    let (mut rest_d, mut rest_s) = (dst.as_mut_slice(), similarity.as_mut_slice());
    for i in 0..n {
        let len = start[i + 1] - start[i];
        let (run_d, tail_d) = rest_d.split_at_mut(len);
        let (run_s, tail_s) = rest_s.split_at_mut(len);
        runs.push((run_d, run_s));
        (rest_d, rest_s) = (tail_d, tail_s);
    }
    pool.install(|| {
        runs.par_iter_mut().for_each(|(d, s)| {
            if d.len() > 1 && d.windows(2).any(|w| w[0] > w[1]) {
                let mut run: Vec<(u32, f32)> = d.iter().copied().zip(s.iter().copied()).collect();
                run.sort_unstable_by_key(|e| e.0);
                for ((dd, ss), (w, v)) in d.iter_mut().zip(s.iter_mut()).zip(run) {
                    *dd = w;
                    *ss = v;
                }
            }
        })
    });
    drop(runs);
    EdgeList {
        src: (0..n)
            .flat_map(|i| std::iter::repeat_n(i as u32, start[i + 1] - start[i]))
            .collect(),
        dst,
        similarity,
    }
}

/// An edge `(src < dst, similarity)` in input rows.
type Edge = (u32, u32, f32);

/// The unsorted edges of a threshold search and what it computed.
struct Found {
    /// In chunks (one per task), as the tasks found them.
    edges: Vec<Vec<Edge>>,
    pairs_computed: u64,
    list_pairs: u64,
}

impl Found {
    fn stats(&self, n: usize) -> SearchStats {
        SearchStats {
            pairs_computed: self.pairs_computed,
            pairs_total: (n as u64) * (n as u64).saturating_sub(1) / 2,
            list_pairs: self.list_pairs,
        }
    }
}

/// The ε-graph edges among the list pairs of [`Probe::Nearest`]`(nprobe)`.
fn probed_edges(
    part: &Partition,
    threshold: f32,
    nprobe: usize,
    pool: &rayon::ThreadPool,
    ctl: &Control,
) -> Result<Found> {
    let pairs = part.list_pairs(nprobe, pool);
    let tiles = part.tiles(&pairs);
    let (screen, lo) = crate::similarity::exact::screen(threshold, part.d);
    let per_tile = run_indexed(
        pool,
        tiles.len(),
        ctl,
        || vec![0.0_f32; BLOCK * BLOCK],
        |buf, t| {
            let mut edges = Vec::new();
            part.similarities(&tiles[t], buf)
                .for_each_pair(buf, |p, q, s| {
                    if s >= screen {
                        edges.extend(part.edge(p, q, s, lo, threshold));
                    }
                });
            edges
        },
    )?;
    Ok(Found {
        edges: per_tile,
        pairs_computed: part.pairs_in(&tiles),
        list_pairs: pairs.len() as u64,
    })
}

/// `sample` distinct input rows chosen with `seed` (all rows when fewer),
/// ascending.
pub fn recall_sample(n: usize, sample: usize, seed: u64) -> Vec<u32> {
    let mut rows: Vec<u32> = if sample >= n {
        (0..n as u32).collect()
    } else {
        SplitMix64::new(seed)
            .sample_distinct(n, sample)
            .into_iter()
            .map(|r| r as u32)
            .collect()
    };
    rows.sort_unstable();
    rows
}

/// The float32 similarities of the sampled positions `qs` to every other
/// position, one GEMM per block of [`BLOCK`] positions, handed to
/// `visit(state, i, position, similarity)` for the `i`-th sampled row.
fn scan_exact<S: Send>(
    part: &Partition,
    qs: &[u32],
    pool: &rayon::ThreadPool,
    ctl: &Control,
    init: impl Fn() -> S + Sync,
    visit: impl Fn(&mut S, usize, usize, f32) + Sync,
) -> Result<Vec<S>> {
    let (n, d) = (part.n_rows(), part.d);
    let q: Vec<f32> = qs
        .iter()
        .flat_map(|&p| part.row(p as usize).iter().copied())
        .collect();
    let m = qs.len();
    run_dynamic(
        pool,
        n.div_ceil(BLOCK),
        ctl,
        || (init(), vec![0.0_f32; m.max(1) * BLOCK]),
        |(state, buf), b| {
            let (b0, b1) = (b * BLOCK, ((b + 1) * BLOCK).min(n));
            let rb = b1 - b0;
            gemm_abt(&q, m, &part.xs[b0 * d..b1 * d], rb, d, buf);
            for (i, &own) in qs.iter().enumerate() {
                for (c, &s) in buf[i * rb..(i + 1) * rb].iter().enumerate() {
                    if b0 + c != own as usize {
                        visit(state, i, b0 + c, s);
                    }
                }
            }
        },
    )
    .map(|states| states.into_iter().map(|(s, _)| s).collect())
}

/// The positions of the input `rows`.
fn positions(part: &Partition, rows: &[u32]) -> Vec<u32> {
    let mut pos = vec![0_u32; part.n_rows()];
    for (p, &r) in part.order.iter().enumerate() {
        pos[r as usize] = p as u32;
    }
    rows.iter().map(|&r| pos[r as usize]).collect()
}

/// Recall@k of `nn` (in input row order) on the sampled `rows`: the mean
/// fraction of each row's exact `k` nearest neighbours that `nn` lists.
///
/// The exact lists are those of the exact self-kNN
/// ([`crate::similarity::knn`]):
/// the float32 similarities of the sampled rows screen every pair, and the
/// pairs that could be among a row's `k` best are ranked by the crate's one
/// exact per-pair similarity, the value every search lists (see
/// `similarity::exact`). So a listed neighbour is one of the true `k`
/// nearest (or tied with the `k`-th, equal in value) exactly when its
/// similarity reaches the exact `k`-th, and the exact search has recall 1.
pub fn knn_recall(
    part: &Partition,
    nn: &Neighbors,
    rows: &[u32],
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<f64> {
    let k = nn.k;
    let m = rows.len();
    if m == 0 {
        return Ok(1.0);
    }
    let pool = parallel::pool(n_threads)?;
    Shortlist::ensure_fits(m, k, pool.current_num_threads())?;
    let qs = positions(part, rows);
    let exact_rows = ExactRows::new(&part.xs, part.d, &pool);
    let eps = exact_rows.fp32_eps();
    let lists = scan_exact(
        part,
        &qs,
        &pool,
        ctl,
        || Shortlist::for_rows(&qs, k, eps),
        |sl, i, p, s| sl.push(i, s, p as u32, &exact_rows),
    )?;
    let exact = finish(&lists, &exact_rows, m, k, &pool);
    let mut found = 0_usize;
    for (i, &r) in rows.iter().enumerate() {
        let kth = exact.similarities[i * k + k - 1];
        let got = &nn.similarities[r as usize * k..(r as usize + 1) * k];
        found += got.iter().filter(|&&s| s >= kth).count();
    }
    Ok(found as f64 / (m * k) as f64)
}

/// Pair recall of an approximate ε-graph at `threshold` over the
/// partition's rows, given by its `edges` (input rows, each edge once), on
/// `recall_rows` rows sampled with `seed` ([`recall_sample`]): `(None, 0)`
/// when none are. The value [`threshold_graph`] records; a distributed run
/// that found the same edges measures the same recall with it.
pub fn pair_recall(
    part: &Partition,
    edges: impl Iterator<Item = (u32, u32)>,
    threshold: f32,
    recall_rows: usize,
    seed: u64,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<(Option<f64>, usize)> {
    crate::similarity::check_threshold(threshold)?;
    let pool = parallel::pool(n_threads)?;
    measured_pair_recall(part, edges, threshold, recall_rows, seed, &pool, ctl)
}

/// [`pair_recall`] on a pool.
fn measured_pair_recall(
    part: &Partition,
    edges: impl Iterator<Item = (u32, u32)>,
    threshold: f32,
    recall_rows: usize,
    seed: u64,
    pool: &rayon::ThreadPool,
    ctl: &Control,
) -> Result<(Option<f64>, usize)> {
    let n = part.n_rows();
    let rows = recall_sample(n, recall_rows, seed);
    if rows.is_empty() {
        return Ok((None, 0));
    }
    let mut degree = vec![0_u64; n];
    for (a, b) in edges {
        for r in [a, b] {
            let r = r as usize;
            if r >= n {
                return Err(Error::Parameter(format!(
                    "an edge names row {r}, but the partition has {n} rows"
                )));
            }
            degree[r] += 1;
        }
    }
    let recall = edge_recall(part, &degree, threshold, &rows, pool, ctl)?;
    Ok((Some(recall), rows.len()))
}

/// Pair recall of an ε-graph, given by each row's `degree`, on the sampled
/// `rows`: of the exact pairs with similarity `>= threshold` that touch a
/// sampled row, the fraction the graph holds (1 when there are none).
fn edge_recall(
    part: &Partition,
    degree: &[u64],
    threshold: f32,
    rows: &[u32],
    pool: &rayon::ThreadPool,
    ctl: &Control,
) -> Result<f64> {
    let qs = positions(part, rows);
    // the similarities of the threshold graphs: float32, exact near ±1
    let (screen, lo) = crate::similarity::exact::screen(threshold, part.d);
    let counts = scan_exact(
        part,
        &qs,
        pool,
        ctl,
        || vec![0_u64; rows.len()],
        |acc, i, p, s| {
            if s >= screen && refine(part.row(qs[i] as usize), part.row(p), s, lo) >= threshold {
                acc[i] += 1;
            }
        },
    )?;
    let mut want = 0_u64;
    for c in &counts {
        want += c.iter().sum::<u64>();
    }
    if want == 0 {
        return Ok(1.0);
    }
    let got: u64 = rows.iter().map(|&r| degree[r as usize]).sum();
    Ok((got as f64 / want as f64).min(1.0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::similarity;
    use crate::testdata::clustered;

    /// `build_with` hands over every row twice (once per pass, in blocks
    /// that tile the input) and builds the same partition as `build`.
    #[test]
    fn build_with_hands_over_each_row_once_per_pass() {
        let (n, d) = (3000, 12);
        let x = clustered(n, d, 30, 0.3, 5);
        let mut p = PartitionParams::for_rows(n);
        p.n_threads = Some(2);
        let seen = std::sync::Mutex::new(vec![0_u8; n]);
        let base = x.as_ptr() as usize;
        let xm = MatRef::new(&x, n, d).unwrap();
        let got = Partition::build_with(xm, &p, &Control::new(), &|rows: &[f32]| {
            let r0 = (rows.as_ptr() as usize - base) / (4 * d);
            let mut seen = seen.lock().unwrap();
            for r in r0..r0 + rows.len() / d {
                seen[r] += 1;
            }
        })
        .unwrap();
        assert!(seen.into_inner().unwrap().iter().all(|&c| c == 2));
        let want = Partition::build(xm, &p, &Control::new()).unwrap();
        assert_eq!(
            (got.order, got.xs, got.offsets),
            (want.order, want.xs, want.offsets)
        );
    }

    fn part(x: &[f32], n: usize, d: usize, lists: usize) -> Partition {
        let mut p = PartitionParams::for_rows(n);
        p.n_lists = lists;
        p.n_threads = Some(2);
        Partition::build(MatRef::new(x, n, d).unwrap(), &p, &Control::new()).unwrap()
    }

    #[test]
    fn partition_is_a_permutation_of_unit_rows() -> Result<()> {
        let (n, d) = (3000, 8);
        let x = clustered(n, d, 20, 0.3, 1);
        let p = part(&x, n, d, 40);
        let mut seen = p.order.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..n as u32).collect::<Vec<_>>());
        let xn = similarity::normalize_rows(MatRef::new(&x, n, d)?, "X", None)?;
        for (pos, &r) in p.order.iter().enumerate() {
            assert_eq!(p.row(pos), &xn[r as usize * d..(r as usize + 1) * d]);
        }
        assert_eq!(*p.offsets.last().unwrap(), n);
        Ok(())
    }

    #[test]
    fn certified_threshold_graph_is_exact() -> Result<()> {
        let (n, d) = (4000, 12);
        let x = clustered(n, d, 30, 0.25, 2);
        let p = part(&x, n, d, 60);
        for t in [0.95_f32, 0.9, 0.5] {
            let want =
                similarity::threshold_edges(MatRef::new(&x, n, d)?, t, Some(2), &Control::new())?;
            let (got, stats) =
                threshold_edges(&p, t, Probe::Certified(t), Some(1), &Control::new())?;
            let key = |g: &EdgeList| -> Vec<(u32, u32)> {
                g.src.iter().copied().zip(g.dst.iter().copied()).collect()
            };
            assert_eq!(key(&got), key(&want), "t = {t}");
            assert!(stats.pairs_computed <= stats.pairs_total);
        }
        Ok(())
    }

    #[test]
    fn approximate_knn_recall_is_measured_and_threads_agree() -> Result<()> {
        let (n, d, k) = (3000, 16, 10);
        let x = clustered(n, d, 25, 0.3, 3);
        let p = part(&x, n, d, 50);
        let (a, stats) = knn(&p, k, 8, Some(1), &Control::new())?;
        let (b, _) = knn(&p, k, 8, Some(2), &Control::new())?;
        assert_eq!(a, b);
        let rows = recall_sample(n, 500, 7);
        let r = knn_recall(&p, &a, &rows, Some(2), &Control::new())?;
        let exact = similarity::knn(MatRef::new(&x, n, d)?, k, Some(2), &Control::new())?;
        let mut hits = 0;
        for &row in &rows {
            let r0 = row as usize * k;
            let want: std::collections::HashSet<u32> =
                exact.indices[r0..r0 + k].iter().copied().collect();
            hits += a.indices[r0..r0 + k]
                .iter()
                .filter(|i| want.contains(i))
                .count();
        }
        let naive = hits as f64 / (rows.len() * k) as f64;
        assert!((r - naive).abs() < 0.01, "measured {r} vs counted {naive}");
        assert!(stats.pairs_computed < stats.pairs_total);
        // probing every list is the exact search
        let (full, _) = knn(&p, k, p.n_lists, Some(2), &Control::new())?;
        assert!((knn_recall(&p, &full, &rows, None, &Control::new())? - 1.0).abs() < 1e-12);
        Ok(())
    }
}
