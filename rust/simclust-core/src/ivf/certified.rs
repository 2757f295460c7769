//! The certified (exact) ε-graph over a [`Partition`], pruned with the
//! triangle inequality on angles.
//!
//! Angles between nonzero vectors are a metric on the sphere, so for rows
//! `a`, `b` and any vector `c`:
//!
//! ```text
//! angle(a, b) >= |angle(a, c) - angle(b, c)|                      (row bound)
//! angle(a, b) >= angle(c_r, c_s) - angle(a, c_r) - angle(b, c_s)  (cell bound)
//! ```
//!
//! A pair can have cosine `>= t` only if its angle is at most `arccos t`.
//! One outlier gives a list a huge radius, and a list of the default
//! partition holds several clusters, so bounds over whole lists prune almost
//! nothing on clustered data. Each list is therefore split into *cells* of
//! about [`CELL_ROWS`] rows by a small spherical k-means inside the list
//! ([`Cells::build`], at partition time), and every cell is a contiguous
//! block of positions sorted by the angle of its rows to the cell centroid.
//! The search pairs *panels* (runs of whole cells, at most [`BLOCK`] rows
//! together: the row blocks of a brute-force search), one task per pair of
//! panels, and within a task each pair of cells `r < s`:
//!
//! 1. the cell pair is skipped when its cell bound, with the cells' largest
//!    member angles (radii), exceeds the reach;
//! 2. otherwise, from the angles of the rows of `r` to `c_s` and of the
//!    rows of `s` to `c_r` (two small GEMMs per task, against the centroids
//!    involved), each side keeps only the sorted range of rows whose own
//!    angle lies within the reach of the other side's angles to its
//!    centroid (the row bound with `c_s` and with `c_r`), the two ranges
//!    narrowed in turn until neither changes;
//! 3. the ranges left are computed as GEMM tiles: per cell `s`, the hull of
//!    its ranges with the cells `r` when that at most doubles the work, and
//!    tiles that adjoin are merged, so that where little can be pruned the
//!    tiles are as large as a brute-force search's. A cell with itself is
//!    computed in full.
//!
//! **Float32 safety.** Every cosine the bounds use (row to centroid,
//! centroid to centroid, the cell radii) and every similarity the graph
//! keeps is a float32 dot product of unit float32 vectors (or its refined
//! value), off from the true cosine of those vectors by at most
//! `δ = margin(D) = (D + 2) eps` (twice the forward error bound). `arccos`
//! is steepest at ±1, so an error `δ` in a cosine moves its angle by at
//! most `ω = arccos(1 - δ) ≈ sqrt(2 δ)` (0.0096 rad at D = 384). A pair the
//! graph keeps has refined similarity `>= t`, so its true angle is at most
//! `arccos t + ω`; each bound above subtracts or adds at most three
//! computed angles, each within `ω` of the true one, so for any pair the
//! graph could keep the computed bound is at most `arccos t + 4ω`. The
//! search prunes only pairs whose computed bound exceeds the reach
//! `arccos t + max(4ω, ANGLE_MARGIN)`, hence never a pair of the graph.
//! Pruning decides only which similarities are computed; the ones computed
//! are exactly those of a brute-force search (up to GEMM rounding).
//!
//! Results do not depend on the thread count: cells are built per list in
//! a fixed order, tiles and windows depend only on the data, and the edges
//! are sorted.

use std::borrow::Cow;
use std::ops::Range;

use super::{Edge, Found, Partition, ASSIGN_ROWS};
use crate::error::{Error, Result};
use crate::matrix::MatRef;
use crate::parallel::{self, Control};
use crate::similarity::exact::{margin, refine, screen};
use crate::similarity::normalize::scale_row;
use crate::similarity::EdgeList;
use crate::tiles::{gemm_abt, run_indexed, BLOCK};

/// Rows per cell the split of a list aims at: small enough that a cell
/// rarely mixes clusters, large enough that the cells' own pairwise work
/// (one centroid cosine per cell pair) stays small next to the row pairs.
const CELL_ROWS: usize = 32;

/// Most cells per list, which bounds the cost of splitting a huge list.
const MAX_CELLS: usize = 64;

/// Similarities screened at once when a tile is scanned for edges.
const LANES: usize = 16;

/// Lloyd iterations of the k-means inside a list.
const CELL_ITERS: usize = 3;

/// Smallest slack (radians) added to `arccos t`: the derived float32 bound
/// `4 arccos(1 - margin(D))` is below it for D up to about 650 (0.038 at
/// D = 384), and the extra covers the f64 rounding of `arccos` and any
/// rounding the model of `margin` leaves out, at a negligible loss of
/// pruning.
const ANGLE_MARGIN: f64 = 0.05;

/// The lists of a partition split into cells: each cell a contiguous block
/// of positions inside one list, its rows sorted by angle to the cell's
/// centroid.
#[derive(Debug, Clone, Default)]
pub(super) struct Cells {
    /// Cell `k` is positions `offsets[k]..offsets[k + 1]` (never empty, at
    /// most [`BLOCK`] rows); the cells of a list are consecutive.
    offsets: Vec<usize>,
    /// `n_cells x d` unit centroids.
    centroids: Vec<f32>,
    /// Per position, the cosine of the row to its cell's centroid:
    /// descending within a cell (ties: the lower input row).
    cos: Vec<f32>,
}

/// One list split into cells, in the list's local row indices.
#[derive(Debug, Default)]
struct ListCells {
    /// The list's rows (local indices) in their new order.
    perm: Vec<u32>,
    /// Rows per cell, in order (none empty or larger than [`BLOCK`]).
    sizes: Vec<usize>,
    /// `sizes.len() x d` unit centroids.
    centroids: Vec<f32>,
    /// Per row in the new order, its cosine to its cell's centroid.
    cos: Vec<f32>,
}

impl Cells {
    /// Splits every list (`offsets`, members `order` ascending by input
    /// row within a list, with cosines `list_cos` to the list centroid)
    /// into cells, and reorders `order` and `list_cos` within each list to
    /// the cells' order.
    pub(super) fn build(
        x: MatRef<'_>,
        factors: &[f64],
        offsets: &[usize],
        order: &mut [u32],
        list_cos: &mut [f32],
        pool: &rayon::ThreadPool,
        ctl: &Control,
    ) -> Result<Self> {
        let n = order.len();
        let per_list = {
            let (order, list_cos) = (&*order, &*list_cos);
            run_indexed(
                pool,
                offsets.len() - 1,
                ctl,
                || (),
                |_, l| {
                    let (p0, p1) = (offsets[l], offsets[l + 1]);
                    split_list(x, factors, &order[p0..p1], &list_cos[p0..p1])
                },
            )?
        };
        let mut cells = Self {
            offsets: vec![0],
            centroids: Vec::new(),
            cos: vec![0.0; n],
        };
        for (l, split) in per_list.into_iter().enumerate() {
            let (p0, p1) = (offsets[l], offsets[l + 1]);
            let old_order = order[p0..p1].to_vec();
            let old_cos = list_cos[p0..p1].to_vec();
            for (k, &i) in split.perm.iter().enumerate() {
                order[p0 + k] = old_order[i as usize];
                list_cos[p0 + k] = old_cos[i as usize];
            }
            cells.cos[p0..p1].copy_from_slice(&split.cos);
            for size in split.sizes {
                let end = cells.offsets[cells.offsets.len() - 1] + size;
                cells.offsets.push(end);
            }
            cells.centroids.extend(split.centroids);
        }
        Ok(cells)
    }

    /// Number of cells.
    fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// The positions of cell `k`.
    #[cfg(test)]
    fn range(&self, k: usize) -> Range<usize> {
        self.offsets[k]..self.offsets[k + 1]
    }
}

/// Splits one list (its input `rows`, ascending, with cosines `list_cos` to
/// the list centroid) into `round(m / CELL_ROWS)` cells (within
/// `1..=MAX_CELLS`): farthest-point seeding from the row farthest from the
/// list centroid, then [`CELL_ITERS`] Lloyd iterations of spherical
/// k-means. Cells left empty are dropped, and one of more than [`BLOCK`]
/// rows is cut into blocks. Deterministic (ties: the lower row or cell).
fn split_list(x: MatRef<'_>, factors: &[f64], rows: &[u32], list_cos: &[f32]) -> ListCells {
    let (m, d) = (rows.len(), x.n_cols());
    if m == 0 {
        return ListCells::default();
    }
    let mut unit = vec![0.0_f32; m * d];
    for (dst, &r) in unit.chunks_exact_mut(d).zip(rows) {
        scale_row(x.row(r as usize), factors[r as usize], dst);
    }
    let k = ((m as f64 / CELL_ROWS as f64).round() as usize).clamp(1, MAX_CELLS);
    let mut centroids = farthest_seeds(&unit, d, k, list_cos);
    let mut cell = vec![0_u32; m];
    let mut best = vec![0.0_f32; m];
    for it in 0..=CELL_ITERS {
        nearest(&unit, d, &centroids, &mut cell, &mut best);
        if it < CELL_ITERS {
            update(&unit, d, &cell, &mut centroids);
        }
    }
    let lo = 1.0 - margin(d);
    let cos: Vec<f32> = (0..m)
        .map(|i| {
            let c = cell[i] as usize;
            let (u, v) = (&unit[i * d..(i + 1) * d], &centroids[c * d..(c + 1) * d]);
            refine(u, v, best[i], lo)
        })
        .collect();
    let mut perm: Vec<u32> = (0..m as u32).collect();
    perm.sort_unstable_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        cell[a]
            .cmp(&cell[b])
            .then(cos[b].total_cmp(&cos[a]))
            .then(a.cmp(&b))
    });
    let mut counts = vec![0_usize; k];
    for &c in &cell {
        counts[c as usize] += 1;
    }
    let mut out = ListCells {
        cos: perm.iter().map(|&i| cos[i as usize]).collect(),
        perm,
        ..ListCells::default()
    };
    // a cell of more than BLOCK rows is cut into blocks that share its
    // centroid (still sorted, and any vector serves the bounds), so that a
    // cell always fits a tile
    for (c, &size) in counts.iter().enumerate() {
        for start in (0..size).step_by(BLOCK) {
            out.sizes.push((size - start).min(BLOCK));
            out.centroids
                .extend_from_slice(&centroids[c * d..(c + 1) * d]);
        }
    }
    out
}

/// `k` seeds among the unit rows: first the row least similar to the list
/// centroid, then each time the row least similar to every seed so far.
fn farthest_seeds(unit: &[f32], d: usize, k: usize, list_cos: &[f32]) -> Vec<f32> {
    let m = list_cos.len();
    let mut seeds = Vec::with_capacity(k * d);
    let mut closest = vec![f32::NEG_INFINITY; m];
    let mut sims = vec![0.0_f32; m];
    let mut next = argmin(list_cos);
    for _ in 0..k {
        let seed = &unit[next * d..(next + 1) * d];
        seeds.extend_from_slice(seed);
        gemm_abt(unit, m, seed, 1, d, &mut sims);
        for (c, &s) in closest.iter_mut().zip(&sims) {
            *c = c.max(s);
        }
        next = argmin(&closest);
    }
    seeds
}

/// The index of the smallest value (ties: the lowest index).
fn argmin(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x < v[best] {
            best = i;
        }
    }
    best
}

/// Each unit row's most similar centroid (ties: the lower one) into `cell`,
/// and the float32 similarity to it into `best`, block by block.
fn nearest(unit: &[f32], d: usize, centroids: &[f32], cell: &mut [u32], best: &mut [f32]) {
    let (m, k) = (cell.len(), centroids.len() / d);
    let mut sims = vec![0.0_f32; ASSIGN_ROWS.min(m) * k];
    for r0 in (0..m).step_by(ASSIGN_ROWS) {
        let ra = ASSIGN_ROWS.min(m - r0);
        gemm_abt(&unit[r0 * d..(r0 + ra) * d], ra, centroids, k, d, &mut sims);
        for (i, row) in sims[..ra * k].chunks_exact(k).enumerate() {
            let mut c = 0;
            for (j, &s) in row.iter().enumerate() {
                if s > row[c] {
                    c = j;
                }
            }
            cell[r0 + i] = c as u32;
            best[r0 + i] = row[c];
        }
    }
}

/// Each centroid becomes the normalised sum (in f64) of its rows; a cell
/// without rows, or whose rows sum to zero, keeps its centroid.
fn update(unit: &[f32], d: usize, cell: &[u32], centroids: &mut [f32]) {
    let mut sums = vec![0.0_f64; centroids.len()];
    for (row, &c) in unit.chunks_exact(d).zip(cell) {
        let c = c as usize;
        for (s, &v) in sums[c * d..(c + 1) * d].iter_mut().zip(row) {
            *s += f64::from(v);
        }
    }
    for (dst, sum) in centroids.chunks_exact_mut(d).zip(sums.chunks_exact(d)) {
        let norm = sum.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm > 0.0 {
            for (o, &v) in dst.iter_mut().zip(sum) {
                *o = (v / norm) as f32;
            }
        }
    }
}

/// The angle (radians) of a cosine, clamped into `[-1, 1]` first.
fn angle(cos: f32) -> f64 {
    f64::from(cos).clamp(-1.0, 1.0).acos()
}

/// How far (radians) a computed bound may fall below the true one by
/// float32 rounding over rows of length `d`: `4 arccos(1 - margin(d))`, at
/// least [`ANGLE_MARGIN`] (see the module docs).
fn slack(d: usize) -> f64 {
    let omega = (1.0 - f64::from(margin(d))).max(-1.0).acos();
    (4.0 * omega).max(ANGLE_MARGIN)
}

/// The largest computed bound a pair with similarity `>= threshold` can
/// show: `arccos threshold + slack(d)`.
fn reach(threshold: f32, d: usize) -> f64 {
    angle(threshold) + slack(d)
}

/// The smallest and the largest angle of some (non-empty) cosines.
fn angle_hull(cos: &[f32]) -> (f64, f64) {
    let (lo, hi) = cos
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &c| {
            (lo.min(c), hi.max(c))
        });
    (angle(hi), angle(lo))
}

/// The row blocks the search pairs, as ranges of cells (the cells of
/// `offsets`, the first numbered `first`): consecutive cells of at most
/// [`BLOCK`] rows together (no cell is larger). A panel is cut only where
/// the cells so far no longer fit, so the panels of a run of whole panels
/// (a [`CellGroup`]) are the partition's own.
fn panels(offsets: &[usize], first: usize) -> Vec<Range<usize>> {
    let n_cells = offsets.len().saturating_sub(1);
    let mut out = Vec::new();
    let mut start = 0;
    for k in 0..n_cells {
        if offsets[k + 1] - offsets[start] > BLOCK {
            out.push(first + start..first + k);
            start = k;
        }
    }
    if start < n_cells {
        out.push(first + start..first + n_cells);
    }
    out
}

/// Appends the tile `a x b`, merged into the last one when that has the
/// same rows `a` and its rows `b` end where these begin.
fn push_tile(tiles: &mut Vec<(Range<usize>, Range<usize>)>, a: Range<usize>, b: Range<usize>) {
    if let Some((la, lb)) = tiles.last_mut() {
        if *la == a && lb.end == b.start {
            lb.end = b.end;
            return;
        }
    }
    tiles.push((a, b));
}

/// A run of whole panels of a partition with cells, and what the certified
/// search reads of them: a contiguous range of positions and of cells, in
/// the partition's numbering. The whole partition is one
/// ([`CellGroup::whole`]); a distributed run cuts the panels into groups
/// ([`Partition::certified_group_bounds`], [`Partition::certified_group`])
/// and searches each pair of groups as a task ([`group_pair_edges`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CellGroup<'a> {
    /// Dimension.
    pub d: usize,
    /// The partition's index of the group's first cell.
    pub first_cell: usize,
    /// Cell `first_cell + k` is positions `offsets[k]..offsets[k + 1]`
    /// (never empty, at most [`BLOCK`] rows); the group's rows are the
    /// positions `offsets[0]..offsets[n_cells]`.
    pub offsets: Cow<'a, [usize]>,
    /// The unit rows at those positions, `m x d`.
    pub xs: Cow<'a, [f32]>,
    /// The input row at each position.
    pub order: Cow<'a, [u32]>,
    /// Per position, the cosine of its row to its cell's centroid
    /// (descending within a cell).
    pub cos: Cow<'a, [f32]>,
    /// `n_cells x d` unit cell centroids.
    pub centroids: Cow<'a, [f32]>,
    /// Per cell, its list.
    pub lists: Cow<'a, [u32]>,
}

impl<'a> CellGroup<'a> {
    /// The whole partition as one group (borrowed; the cells' lists found
    /// from the list offsets).
    fn whole(part: &'a Partition, cells: &'a Cells) -> Self {
        Self::borrowed(part, cells, 0..cells.len())
    }

    /// The cells `ks` of a partition (borrowed).
    fn borrowed(part: &'a Partition, cells: &'a Cells, ks: Range<usize>) -> Self {
        let (d, offsets) = (part.d, &cells.offsets[ks.start..=ks.end]);
        let (p0, p1) = (offsets[0], offsets[offsets.len() - 1]);
        CellGroup {
            d,
            first_cell: ks.start,
            offsets: Cow::Borrowed(offsets),
            xs: Cow::Borrowed(&part.xs[p0 * d..p1 * d]),
            order: Cow::Borrowed(&part.order[p0..p1]),
            cos: Cow::Borrowed(&cells.cos[p0..p1]),
            centroids: Cow::Borrowed(&cells.centroids[ks.start * d..ks.end * d]),
            lists: Cow::Owned(
                ks.map(|k| (part.offsets.partition_point(|&o| o <= cells.offsets[k]) - 1) as u32)
                    .collect(),
            ),
        }
    }

    /// Number of cells.
    pub fn n_cells(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Its positions.
    pub fn positions(&self) -> Range<usize> {
        match (self.offsets.first(), self.offsets.last()) {
            (Some(&a), Some(&b)) => a..b,
            _ => 0..0,
        }
    }

    /// Checks that the parts fit together (sizes, cells of `1..=BLOCK`
    /// rows, finite cosines and centroids), so that a search over a group
    /// given from outside reads only within it.
    ///
    /// Errors: [`Error::Shape`] or [`Error::Parameter`] naming the part.
    pub fn check(&self, what: &str) -> Result<()> {
        let (d, c) = (self.d, self.n_cells());
        if d == 0 || c == 0 {
            return Err(Error::Shape(format!(
                "{what} must have D >= 1 and at least one cell"
            )));
        }
        if self
            .offsets
            .windows(2)
            .any(|w| w[1] <= w[0] || w[1] - w[0] > BLOCK)
        {
            return Err(Error::Parameter(format!(
                "{what}: offsets must increase by 1..={BLOCK} rows a cell"
            )));
        }
        let m = self.positions().len();
        let sizes = (m.checked_mul(d), c.checked_mul(d));
        let fits = sizes == (Some(self.xs.len()), Some(self.centroids.len()))
            && self.order.len() == m
            && self.cos.len() == m
            && self.lists.len() == c
            && self.first_cell.checked_add(c).is_some();
        if !fits {
            return Err(Error::Shape(format!(
                "{what}: xs must be ({m}, {d}), order and cos ({m},), centroids ({c}, {d}) \
                 and lists ({c},) for its {c} cells of {m} rows"
            )));
        }
        if !self
            .cos
            .iter()
            .chain(self.centroids.iter())
            .all(|v| v.is_finite())
        {
            return Err(Error::Parameter(format!(
                "{what}: cos and centroids must be finite"
            )));
        }
        Ok(())
    }
}

/// What a certified search over some pairs of panels found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupEdges {
    /// The edges `(src < dst)` in input rows, in the order found (not
    /// sorted; each pair at most once).
    pub edges: EdgeList,
    /// Row pairs whose similarity was computed.
    pub pairs_computed: u64,
    /// The list pairs `(i, j)` it computed row pairs of, sorted, distinct
    /// (the searches' union is the whole search's `list_pairs`).
    pub list_pairs: Vec<(u32, u32)>,
}

/// The certified ε-graph edges between two groups of the same partition
/// (`b` after `a`, no position or cell in both), or within `a` when `b` is
/// `None`: exactly the panel pairs `(i, j)`, `i <= j`, of the whole
/// search ([`threshold_edges`](super::threshold_edges) with
/// [`Probe::Certified`](super::Probe::Certified)) with `i` in `a` and `j`
/// in `b` (or both in `a`), through the same code, so the union over all
/// pairs of groups `a <= b` holds the whole search's edges, bit for bit,
/// its `pairs_computed` summed and its `list_pairs` as a union.
///
/// Errors: [`Error::Parameter`] for a threshold outside `[-1, 1]`, groups
/// that overlap or are out of order; as [`CellGroup::check`].
pub fn group_pair_edges(
    a: &CellGroup<'_>,
    b: Option<&CellGroup<'_>>,
    threshold: f32,
    n_threads: Option<usize>,
    ctl: &Control,
) -> Result<GroupEdges> {
    crate::similarity::check_threshold(threshold)?;
    a.check("group a")?;
    if let Some(b) = b {
        b.check("group b")?;
        if b.d != a.d {
            return Err(Error::Shape(format!(
                "the groups' rows must have one dimension, got {} and {}",
                a.d, b.d
            )));
        }
        if a.positions().end > b.positions().start || a.first_cell + a.n_cells() > b.first_cell {
            return Err(Error::Parameter(
                "group b must come after group a: no position or cell in both \
                 (a group with itself is searched with b = None)"
                    .into(),
            ));
        }
    }
    let pool = parallel::pool(n_threads)?;
    let found = search_groups(a, b, threshold, &pool, ctl)?;
    let n_edges = found.edges.iter().map(Vec::len).sum();
    let mut edges = EdgeList {
        src: Vec::with_capacity(n_edges),
        dst: Vec::with_capacity(n_edges),
        similarity: Vec::with_capacity(n_edges),
    };
    for (u, v, s) in found.edges.into_iter().flatten() {
        edges.src.push(u);
        edges.dst.push(v);
        edges.similarity.push(s);
    }
    Ok(GroupEdges {
        edges,
        pairs_computed: found.pairs_computed,
        list_pairs: found.list_pairs,
    })
}

/// The certified ε-graph edges (unsorted) and what the search computed:
/// one task per pair of panels.
pub(super) fn edges(
    part: &Partition,
    cells: &Cells,
    threshold: f32,
    pool: &rayon::ThreadPool,
    ctl: &Control,
) -> Result<Found> {
    let found = search_groups(&CellGroup::whole(part, cells), None, threshold, pool, ctl)?;
    Ok(Found {
        edges: found.edges,
        pairs_computed: found.pairs_computed,
        list_pairs: found.list_pairs.len() as u64,
    })
}

/// The panel pairs of the group `a` with `b` (or with itself), one rayon
/// task each: the edges per task, the pairs computed, the distinct list
/// pairs. The one search of [`edges`] (the whole partition, one group) and
/// of [`group_pair_edges`].
struct Searched {
    edges: Vec<Vec<Edge>>,
    pairs_computed: u64,
    list_pairs: Vec<(u32, u32)>,
}

fn search_groups(
    a: &CellGroup<'_>,
    b: Option<&CellGroup<'_>>,
    threshold: f32,
    pool: &rayon::ThreadPool,
    ctl: &Control,
) -> Result<Searched> {
    let d = a.d;
    let (screen, lo) = screen(threshold, d);
    let search = Search {
        d,
        threshold,
        reach: reach(threshold, d),
        screen,
        lo,
    };
    let sa = Side::new(a);
    let sb = b.map(Side::new);
    let sb = sb.as_ref().unwrap_or(&sa);
    let (pa, pb) = (
        panels(sa.offsets, sa.first_cell),
        panels(sb.offsets, sb.first_cell),
    );
    let tasks: Vec<(usize, usize)> = if b.is_none() {
        (0..pa.len())
            .flat_map(|i| (i..pa.len()).map(move |j| (i, j)))
            .collect()
    } else {
        (0..pa.len())
            .flat_map(|i| (0..pb.len()).map(move |j| (i, j)))
            .collect()
    };
    let per_task = run_indexed(
        pool,
        tasks.len(),
        ctl,
        || Scratch {
            tile: vec![0.0; BLOCK * BLOCK],
            ..Scratch::default()
        },
        |scratch, t| {
            let (i, j) = tasks[t];
            search.panel_pair(&sa, pa[i].clone(), sb, pb[j].clone(), scratch)
        },
    )?;
    let mut found = Searched {
        edges: Vec::with_capacity(per_task.len()),
        pairs_computed: 0,
        list_pairs: Vec::new(),
    };
    for f in per_task {
        found.edges.push(f.edges);
        found.pairs_computed += f.pairs;
        found.list_pairs.extend(f.lists);
    }
    found.list_pairs.sort_unstable();
    found.list_pairs.dedup();
    Ok(found)
}

/// The certified search's settings at one threshold.
struct Search {
    d: usize,
    threshold: f32,
    /// [`reach`] of the threshold.
    reach: f64,
    /// Screening value and `lo` of [`refine`] (see [`screen`]).
    screen: f32,
    lo: f32,
}

/// One group as the search reads it, in the partition's positions and
/// cells.
struct Side<'a> {
    d: usize,
    /// The first position and cell.
    start: usize,
    first_cell: usize,
    offsets: &'a [usize],
    xs: &'a [f32],
    order: &'a [u32],
    centroids: &'a [f32],
    lists: &'a [u32],
    /// Per position, the angle of the row to its cell's centroid.
    angles: Vec<f64>,
    /// Per cell, its largest such angle (its last row's).
    radius: Vec<f64>,
}

impl<'a> Side<'a> {
    fn new(g: &'a CellGroup<'_>) -> Self {
        let angles: Vec<f64> = g.cos.iter().map(|&c| angle(c)).collect();
        let start = g.positions().start;
        Side {
            d: g.d,
            start,
            first_cell: g.first_cell,
            offsets: &g.offsets,
            xs: &g.xs,
            order: &g.order,
            centroids: &g.centroids,
            lists: &g.lists,
            radius: g.offsets[1..]
                .iter()
                .map(|&e| angles[e - 1 - start])
                .collect(),
            angles,
        }
    }

    /// The positions of cell `k`.
    fn range(&self, k: usize) -> Range<usize> {
        let k = k - self.first_cell;
        self.offsets[k]..self.offsets[k + 1]
    }

    /// The first position of cell `k` (or the end, for one past the last).
    fn offset(&self, k: usize) -> usize {
        self.offsets[k - self.first_cell]
    }

    /// The unit rows at positions `p`.
    fn rows(&self, p: Range<usize>) -> &[f32] {
        &self.xs[(p.start - self.start) * self.d..(p.end - self.start) * self.d]
    }

    /// The centroids of cells `ks`.
    fn centroids(&self, ks: Range<usize>) -> &[f32] {
        let (a, b) = (ks.start - self.first_cell, ks.end - self.first_cell);
        &self.centroids[a * self.d..b * self.d]
    }

    fn radius(&self, k: usize) -> f64 {
        self.radius[k - self.first_cell]
    }

    fn list(&self, k: usize) -> u32 {
        self.lists[k - self.first_cell]
    }

    /// The `rows` of a cell (sorted by angle) whose angle lies in
    /// `[lo, hi]`: a subrange.
    fn narrow(&self, rows: Range<usize>, lo: f64, hi: f64) -> Range<usize> {
        let a = &self.angles[rows.start - self.start..rows.end - self.start];
        rows.start + a.partition_point(|&v| v < lo)..rows.start + a.partition_point(|&v| v <= hi)
    }
}

/// Per-thread buffers of a [`Search`].
#[derive(Default)]
struct Scratch {
    /// A tile's similarities.
    tile: Vec<f32>,
    /// Cosines of one panel's cell centroids to the other's.
    centroid_cos: Vec<f32>,
    /// The cell pairs `(s, r)` the cell bound leaves, by `s`.
    pairs: Vec<(usize, usize)>,
    /// Centroids gathered for a GEMM.
    gathered: Vec<f32>,
    /// Cosines of the first panel's rows to the centroids of cells `s`
    /// (row `x_slot[s - first cell]`), and of the second panel's rows to
    /// those of cells `r` (row `y_slot[r - first cell]`).
    x: Vec<f32>,
    x_slot: Vec<usize>,
    y: Vec<f32>,
    y_slot: Vec<usize>,
    /// The windows of one cell `s`, and the tiles to compute.
    windows: Vec<(Range<usize>, Range<usize>)>,
    tiles: Vec<(Range<usize>, Range<usize>)>,
}

/// What one task found.
#[derive(Default)]
struct PanelFound {
    edges: Vec<Edge>,
    pairs: u64,
    /// The list pairs it computed row pairs of (repeats allowed).
    lists: Vec<(u32, u32)>,
}

impl Search {
    /// The pairs between the cells `ci` of one panel (of side `sa`) and
    /// `cj` of a later one or the same (of side `sb`; when the same panel,
    /// only pairs of cells `r < s`, and each cell with itself in full).
    fn panel_pair(
        &self,
        sa: &Side<'_>,
        ci: Range<usize>,
        sb: &Side<'_>,
        cj: Range<usize>,
        sc: &mut Scratch,
    ) -> PanelFound {
        let d = self.d;
        let mut out = PanelFound::default();
        if ci == cj {
            for r in ci.clone() {
                let rows = sa.range(r);
                if rows.len() > 1 {
                    self.tile((sa, rows.clone()), (sa, rows), true, &mut sc.tile, &mut out);
                    out.lists.push((sa.list(r), sa.list(r)));
                }
            }
        }
        // 1. the cell bound with the radii
        let (ni, nj) = (ci.len(), cj.len());
        sc.centroid_cos.resize(ni * nj, 0.0);
        gemm_abt(
            sa.centroids(ci.clone()),
            ni,
            sb.centroids(cj.clone()),
            nj,
            d,
            &mut sc.centroid_cos,
        );
        sc.pairs.clear();
        for s in cj.clone() {
            for r in ci.start..ci.end.min(s) {
                let cos = sc.centroid_cos[(r - ci.start) * nj + s - cj.start];
                if angle(cos) - sa.radius(r) - sb.radius(s) <= self.reach {
                    sc.pairs.push((s, r));
                }
            }
        }
        if sc.pairs.is_empty() {
            return out;
        }
        // 2. the angles of each panel's rows to the other's centroids
        let a_rows = sa.offset(ci.start)..sa.offset(ci.end);
        let b_rows = sb.offset(cj.start)..sb.offset(cj.end);
        let x_cells = sc.pairs.iter().map(|p| p.0);
        Self::cos_to(
            (sb, x_cells, cj.clone()),
            (sa, a_rows.clone()),
            &mut sc.gathered,
            &mut sc.x_slot,
            &mut sc.x,
        );
        let y_cells = sc.pairs.iter().map(|p| p.1);
        Self::cos_to(
            (sa, y_cells, ci.clone()),
            (sb, b_rows.clone()),
            &mut sc.gathered,
            &mut sc.y_slot,
            &mut sc.y,
        );
        // 3. per cell s, the windows of the cells r; their hull when it
        // doubles the work at most (a larger GEMM), else each
        let (na, nb) = (a_rows.len(), b_rows.len());
        sc.tiles.clear();
        for group in sc.pairs.chunk_by(|p, q| p.0 == q.0) {
            let s = group[0].0;
            let x = &sc.x[sc.x_slot[s - cj.start] * na..][..na];
            sc.windows.clear();
            for &(_, r) in group {
                let y = &sc.y[sc.y_slot[r - ci.start] * nb..][..nb];
                let rows = (sa.range(r), a_rows.start, sb.range(s), b_rows.start);
                if let Some(w) = self.windows((sa, sb), rows, x, y) {
                    out.lists.push((sa.list(r), sb.list(s)));
                    sc.windows.push(w);
                }
            }
            let Some(first) = sc.windows.first() else {
                continue;
            };
            let area: usize = sc.windows.iter().map(|(a, b)| a.len() * b.len()).sum();
            let (mut ha, mut hb) = first.clone();
            for (a, b) in &sc.windows {
                (ha.start, ha.end) = (ha.start.min(a.start), ha.end.max(a.end));
                (hb.start, hb.end) = (hb.start.min(b.start), hb.end.max(b.end));
            }
            if ha.len() * hb.len() <= 2 * area {
                push_tile(&mut sc.tiles, ha, hb);
            } else {
                for (a, b) in sc.windows.drain(..) {
                    push_tile(&mut sc.tiles, a, b);
                }
            }
        }
        // 4. the tiles
        for (a, b) in &sc.tiles {
            self.tile(
                (sa, a.clone()),
                (sb, b.clone()),
                false,
                &mut sc.tile,
                &mut out,
            );
        }
        out
    }

    /// The cosines of the rows at `rows` (of their side) to the centroids
    /// of the distinct `cells` (within `panel`, of their side), one row of
    /// `out` per cell in order of first appearance, recorded in `slot` (by
    /// cell - first cell of the panel).
    fn cos_to(
        (cside, cells, panel): (&Side<'_>, impl Iterator<Item = usize>, Range<usize>),
        (rside, rows): (&Side<'_>, Range<usize>),
        gathered: &mut Vec<f32>,
        slot: &mut Vec<usize>,
        out: &mut Vec<f32>,
    ) {
        let d = rside.d;
        slot.clear();
        slot.resize(panel.len(), usize::MAX);
        gathered.clear();
        let mut m = 0;
        for k in cells {
            if slot[k - panel.start] == usize::MAX {
                slot[k - panel.start] = m;
                m += 1;
                gathered.extend_from_slice(cside.centroids(k..k + 1));
            }
        }
        out.resize(m * rows.len(), 0.0);
        gemm_abt(gathered, m, rside.rows(rows.clone()), rows.len(), d, out);
    }

    /// The rows of cells `r` (of side `sa`) and `s` (of `sb`) left by the
    /// row bound on both sides: `a` in `r` with `|angle(a, c_r) - angle(b,
    /// c_r)| <= reach` for some `b` left in `s`, and `b` in `s` with
    /// `|angle(b, c_s) - angle(a, c_s)| <= reach` for some `a` left in
    /// `r`, as sorted ranges, each narrowed by the other's extremes until
    /// neither changes (`None` when either is empty). `rows` holds both
    /// cells' rows and the first positions of `x` (cosines to `c_s` of rows
    /// from that position on) and `y` (to `c_r`).
    fn windows(
        &self,
        (sa, sb): (&Side<'_>, &Side<'_>),
        rows: (Range<usize>, usize, Range<usize>, usize),
        x: &[f32],
        y: &[f32],
    ) -> Option<(Range<usize>, Range<usize>)> {
        let (mut a, x0, mut b, y0) = rows;
        loop {
            let (lo, hi) = angle_hull(&x[a.start - x0..a.end - x0]);
            let nb = sb.narrow(b.clone(), lo - self.reach, hi + self.reach);
            if nb.is_empty() {
                return None;
            }
            let (lo, hi) = angle_hull(&y[nb.start - y0..nb.end - y0]);
            let na = sa.narrow(a.clone(), lo - self.reach, hi + self.reach);
            if na.is_empty() {
                return None;
            }
            if na == a && nb == b {
                return Some((a, b));
            }
            (a, b) = (na, nb);
        }
    }

    /// Computes the tile of rows `a` x rows `b` (each of its side, at most
    /// [`BLOCK`] each; if `upper`, only pairs `p < q`), keeping its edges
    /// and counting its pairs.
    fn tile(
        &self,
        (sa, a): (&Side<'_>, Range<usize>),
        (sb, b): (&Side<'_>, Range<usize>),
        upper: bool,
        buf: &mut [f32],
        out: &mut PanelFound,
    ) {
        let d = self.d;
        let (ra, rb) = (a.len(), b.len());
        let first = |p: usize| {
            if upper {
                (p + 1).saturating_sub(b.start).min(rb)
            } else {
                0
            }
        };
        let pairs: usize = a.clone().map(|p| rb - first(p)).sum();
        if pairs == 0 {
            return;
        }
        out.pairs += pairs as u64;
        gemm_abt(sa.rows(a.clone()), ra, sb.rows(b.clone()), rb, d, buf);
        for (p, row) in a.zip(buf.chunks_exact(rb)) {
            let c0 = first(p);
            for (k, lane) in row[c0..].chunks(LANES).enumerate() {
                // most similarities fail the screen: test a lane at once
                if lane.iter().fold(false, |h, &s| h | (s >= self.screen)) {
                    for (c, &s) in lane.iter().enumerate() {
                        if s >= self.screen {
                            let q = b.start + c0 + k * LANES + c;
                            let (u, w) = (sa.order[p - sa.start], sb.order[q - sb.start]);
                            let v = refine(sa.rows(p..p + 1), sb.rows(q..q + 1), s, self.lo);
                            if v >= self.threshold {
                                out.edges.push((u.min(w), u.max(w), v));
                            }
                        }
                    }
                }
            }
        }
    }
}

impl Partition {
    /// The boundaries (positions, from 0 to `N`) of the groups a
    /// distributed certified search cuts the panels into: consecutive
    /// panels while they hold at most `max_rows` rows together (a panel
    /// alone when larger; panels hold at most [`BLOCK`] rows).
    ///
    /// Errors: [`Error::Parameter`] without cells or for `max_rows` 0.
    pub fn certified_group_bounds(&self, max_rows: usize) -> Result<Vec<usize>> {
        let cells = self.cells_or_err()?;
        if max_rows == 0 {
            return Err(Error::Parameter("max_rows must be at least 1".into()));
        }
        let mut bounds = vec![0];
        for p in panels(&cells.offsets, 0) {
            let (start, end) = (cells.offsets[p.start], cells.offsets[p.end]);
            let first = bounds[bounds.len() - 1];
            if start > first && end - first > max_rows {
                bounds.push(start);
            }
        }
        if cells.offsets[cells.len()] > 0 {
            bounds.push(cells.offsets[cells.len()]);
        }
        Ok(bounds)
    }

    /// The group of the panels at positions `start..end` (both panel
    /// boundaries, e.g. from [`Partition::certified_group_bounds`]), for
    /// [`group_pair_edges`] (borrowed).
    ///
    /// Errors: [`Error::Parameter`] without cells, or when `start..end` is
    /// empty or does not start and end where panels do.
    pub fn certified_group(&self, start: usize, end: usize) -> Result<CellGroup<'_>> {
        let cells = self.cells_or_err()?;
        let edges: Vec<usize> = panels(&cells.offsets, 0)
            .iter()
            .map(|p| p.start)
            .chain([cells.len()])
            .collect();
        let at = |pos: usize| {
            edges
                .iter()
                .copied()
                .find(|&k| cells.offsets[k] == pos)
                .ok_or_else(|| {
                    Error::Parameter(format!(
                        "position {pos} is not where a panel starts or ends"
                    ))
                })
        };
        if start >= end {
            return Err(Error::Parameter(format!(
                "a group holds positions start..end, start < end, got {start}..{end}"
            )));
        }
        let (k0, k1) = (at(start)?, at(end)?);
        Ok(CellGroup::borrowed(self, cells, k0..k1))
    }

    fn cells_or_err(&self) -> Result<&Cells> {
        self.cells.as_ref().ok_or_else(|| {
            Error::Parameter(
                "a certified search needs a partition built with cells \
                 (PartitionParams::cells)"
                    .into(),
            )
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ivf::{threshold_edges, PartitionParams, Probe, SearchStats};
    use crate::similarity::{self, exact::exact_cosine, EdgeList};
    use crate::testdata::{clustered, uniform};

    const THRESHOLDS: [f32; 7] = [1.0, 0.999, 0.99, 0.9, 0.5, 0.05, -0.2];

    fn partition(x: &[f32], n: usize, d: usize, lists: Option<usize>) -> Result<Partition> {
        let mut p = PartitionParams::for_rows(n);
        if let Some(l) = lists {
            p.n_lists = l;
        }
        p.n_threads = Some(2);
        Partition::build(MatRef::new(x, n, d)?, &p, &Control::new())
    }

    /// The certified graph at `t` equals brute force, except pairs whose
    /// exact similarity is within 1e-5 of `t` (float32 rounding decides
    /// those either way).
    fn assert_exact(
        x: &[f32],
        n: usize,
        d: usize,
        part: &Partition,
        t: f32,
    ) -> Result<SearchStats> {
        let ctl = Control::new();
        let want = similarity::threshold_edges(MatRef::new(x, n, d)?, t, Some(2), &ctl)?;
        let (got, stats) = threshold_edges(part, t, Probe::Certified(t), Some(2), &ctl)?;
        let keys = |g: &EdgeList| -> std::collections::BTreeSet<(u32, u32)> {
            g.src.iter().copied().zip(g.dst.iter().copied()).collect()
        };
        let (kg, kw) = (keys(&got), keys(&want));
        for &(u, v) in kg.symmetric_difference(&kw) {
            let row = |r: u32| &x[r as usize * d..(r as usize + 1) * d];
            let c = exact_cosine(row(u), row(v));
            assert!(
                (c - t).abs() <= 1e-5,
                "t = {t}: pair ({u}, {v}) of similarity {c} is in one graph only"
            );
        }
        assert!(got.similarity.iter().all(|&s| s >= t));
        assert!(stats.pairs_computed <= stats.pairs_total);
        Ok(stats)
    }

    /// `n` rows: a giant cluster (two thirds of the rows) and rows in
    /// random directions.
    fn giant_and_scattered(n: usize, d: usize, seed: u64) -> Vec<f32> {
        let giant = clustered(n, d, 1, 0.25, seed);
        let scattered = uniform(n * d, seed + 7, -0.5);
        (0..n * d)
            .map(|i| {
                if i / d < 2 * n / 3 {
                    giant[i]
                } else {
                    scattered[i]
                }
            })
            .collect()
    }

    /// `n` rows, each of a few clustered rows repeated, some scaled.
    fn duplicates(n: usize, d: usize, seed: u64) -> Vec<f32> {
        let base = clustered(n / 4 + 1, d, 10, 0.3, seed);
        (0..n * d)
            .map(|i| {
                let (r, c) = (i / d, i % d);
                let scale = if r % 3 == 1 { 2.5 } else { 1.0 };
                scale * base[(r % (n / 4 + 1)) * d + c]
            })
            .collect()
    }

    #[test]
    fn certified_graph_equals_brute_force_on_varied_data() -> Result<()> {
        let (n, d) = (1500, 24);
        for seed in [1, 2] {
            let shapes: [(&str, Vec<f32>); 4] = [
                ("clustered", clustered(n, d, 40, 0.3, seed)),
                ("giant", giant_and_scattered(n, d, seed)),
                ("singletons", uniform(n * d, seed, -0.5)),
                ("duplicates", duplicates(n, d, seed)),
            ];
            for (name, x) in &shapes {
                // default lists (about one cell each) and few big lists
                for lists in [None, Some(6)] {
                    let part = partition(x, n, d, lists)?;
                    for t in THRESHOLDS {
                        let stats = assert_exact(x, n, d, &part, t)?;
                        if t == -0.2 && *name == "clustered" {
                            assert!(stats.pairs_computed > 0, "{name} {lists:?}");
                        }
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn certified_graph_is_exact_in_low_and_high_dimension() -> Result<()> {
        // random directions in 3 dimensions have pairs at every angle; 300
        // dimensions make the float32 margin matter
        for (n, d) in [(2000, 3), (800, 300)] {
            let x = clustered(n, d, 25, 0.5, 5);
            let part = partition(&x, n, d, Some(8))?;
            for t in THRESHOLDS {
                assert_exact(&x, n, d, &part, t)?;
            }
        }
        Ok(())
    }

    #[test]
    fn cells_larger_than_a_tile_are_cut_into_blocks() -> Result<()> {
        // 1100 identical rows fall into one cell of one list
        let (n, d) = (1400, 8);
        let base = clustered(n, d, 20, 0.3, 8);
        let x: Vec<f32> = (0..n * d)
            .map(|i| if i / d < 1100 { base[i % d] } else { base[i] })
            .collect();
        let part = partition(&x, n, d, Some(1))?;
        let cells = part.cells.as_ref().unwrap();
        assert!((0..cells.len()).all(|k| cells.range(k).len() <= BLOCK));
        assert!((0..cells.len()).any(|k| cells.range(k).len() == BLOCK));
        for t in [1.0, 0.9, 0.3] {
            assert_exact(&x, n, d, &part, t)?;
        }
        Ok(())
    }

    #[test]
    fn certified_graph_does_not_depend_on_threads() -> Result<()> {
        let (n, d) = (3000, 32);
        let x = clustered(n, d, 60, 0.35, 4);
        let part = partition(&x, n, d, Some(20))?;
        let ctl = Control::new();
        for t in [0.9_f32, 0.5] {
            let one = threshold_edges(&part, t, Probe::Certified(t), Some(1), &ctl)?;
            let two = threshold_edges(&part, t, Probe::Certified(t), Some(2), &ctl)?;
            assert_eq!(one, two, "t = {t}");
        }
        Ok(())
    }

    #[test]
    fn certified_search_prunes_clustered_data() -> Result<()> {
        // 80 groups of 50 rows, within-group similarity about 0.92: the
        // search computes 1.2 % of the pairs (the within-group ones)
        let (n, d) = (4000, 64);
        let x = clustered(n, d, 80, 0.3, 6);
        for lists in [None, Some(30)] {
            let part = partition(&x, n, d, lists)?;
            let stats = assert_exact(&x, n, d, &part, 0.9)?;
            let share = stats.pairs_computed as f64 / stats.pairs_total as f64;
            assert!(
                share < 0.05,
                "lists {lists:?}: computed {share} of the pairs"
            );
            assert!(stats.list_pairs > 0);
        }
        Ok(())
    }

    #[test]
    fn cells_split_lists_into_sorted_blocks() -> Result<()> {
        let (n, d) = (3000, 16);
        let x = clustered(n, d, 30, 0.4, 3);
        let part = partition(&x, n, d, Some(7))?;
        let cells = part.cells.as_ref().unwrap();
        assert_eq!((cells.offsets[0], cells.offsets[cells.len()]), (0, n));
        let tol = 2.0 * margin(d);
        for k in 0..cells.len() {
            let r = cells.range(k);
            assert!(!r.is_empty());
            // inside one list
            let l = part.offsets.partition_point(|&o| o <= r.start) - 1;
            assert!(r.end <= part.offsets[l + 1]);
            let c = &cells.centroids[k * d..(k + 1) * d];
            assert!((exact_cosine(c, c) - 1.0).abs() < 1e-6);
            for p in r.clone() {
                assert!((cells.cos[p] - exact_cosine(part.row(p), c)).abs() <= tol);
                if p + 1 < r.end {
                    assert!(cells.cos[p] >= cells.cos[p + 1]);
                }
            }
        }
        // about CELL_ROWS rows per cell
        assert!(cells.len() >= n / (2 * CELL_ROWS) && cells.len() <= 2 * n / CELL_ROWS);
        // the list cosines moved with their rows
        for (p, &r) in part.order.iter().enumerate() {
            let l = part.offsets.partition_point(|&o| o <= p) - 1;
            let c = &part.centroids[l * d..(l + 1) * d];
            let row = &x[r as usize * d..(r as usize + 1) * d];
            assert!((part.cos[p] - exact_cosine(row, c)).abs() <= tol);
        }
        Ok(())
    }

    /// The search split into groups of panels, one call per pair of groups
    /// (as a distributed run's tasks), over every pair: the whole search's
    /// edges bit for bit, its pairs computed and list pairs.
    #[test]
    fn group_pairs_together_are_the_whole_search() -> Result<()> {
        let (n, d) = (5000, 24);
        let x = clustered(n, d, 60, 0.35, 9);
        let giant = giant_and_scattered(3000, 17, 4);
        let cases: [(&[f32], usize, usize, Option<usize>); 3] = [
            (&x, n, d, Some(12)),
            (&x, n, d, None),
            (&giant, 3000, 17, Some(3)),
        ];
        let ctl = Control::new();
        for (x, n, d, lists) in cases {
            let part = partition(x, n, d, lists)?;
            for t in [0.9_f32, 0.5] {
                let pool = crate::parallel::pool(Some(2))?;
                let whole = edges(&part, part.cells.as_ref().unwrap(), t, &pool, &ctl)?;
                let (want, stats) = threshold_edges(&part, t, Probe::Certified(t), Some(2), &ctl)?;
                for max_rows in [1, 2048, 3000, n] {
                    let bounds = part.certified_group_bounds(max_rows)?;
                    assert_eq!((bounds[0], bounds[bounds.len() - 1]), (0, n));
                    let groups = bounds
                        .windows(2)
                        .map(|w| part.certified_group(w[0], w[1]))
                        .collect::<Result<Vec<_>>>()?;
                    if max_rows == n {
                        assert_eq!(groups.len(), 1);
                    } else {
                        assert!(groups.len() > 1);
                    }
                    let mut got: Vec<(u32, u32, u32)> = Vec::new();
                    let (mut pairs, mut lists) = (0, Vec::new());
                    for (i, a) in groups.iter().enumerate() {
                        a.check("a")?;
                        for (j, b) in groups.iter().enumerate().skip(i) {
                            let b = (j > i).then_some(b);
                            let g = group_pair_edges(a, b, t, Some(1), &ctl)?;
                            let e = &g.edges;
                            got.extend(
                                (0..e.len())
                                    .map(|k| (e.src[k], e.dst[k], e.similarity[k].to_bits())),
                            );
                            pairs += g.pairs_computed;
                            lists.extend(g.list_pairs);
                        }
                    }
                    got.sort_unstable();
                    let want: Vec<(u32, u32, u32)> = (0..want.len())
                        .map(|k| (want.src[k], want.dst[k], want.similarity[k].to_bits()))
                        .collect();
                    assert_eq!(got, want, "t = {t}, max_rows = {max_rows}");
                    lists.sort_unstable();
                    lists.dedup();
                    assert_eq!(pairs, stats.pairs_computed);
                    assert_eq!(pairs, whole.pairs_computed);
                    assert_eq!(lists.len() as u64, stats.list_pairs);
                }
            }
        }
        Ok(())
    }

    #[test]
    fn groups_from_outside_are_checked() -> Result<()> {
        let (n, d) = (3000, 8);
        let x = clustered(n, d, 20, 0.3, 2);
        let part = partition(&x, n, d, Some(4))?;
        let bounds = part.certified_group_bounds(1024)?;
        assert!(part.certified_group(bounds[0], bounds[1] + 1).is_err());
        assert!(part.certified_group(bounds[1], bounds[1]).is_err());
        let (a, b) = (
            part.certified_group(bounds[0], bounds[1])?,
            part.certified_group(bounds[1], bounds[2])?,
        );
        let ctl = Control::new();
        // out of order, the same group twice, a bad threshold
        assert!(group_pair_edges(&b, Some(&a), 0.9, Some(1), &ctl).is_err());
        assert!(group_pair_edges(&a, Some(&a), 0.9, Some(1), &ctl).is_err());
        assert!(group_pair_edges(&a, None, 1.5, Some(1), &ctl).is_err());
        // parts that do not fit
        let mut bad = a.clone();
        bad.order.to_mut().pop();
        assert!(matches!(bad.check("a"), Err(Error::Shape(_))));
        let mut bad = a.clone();
        bad.cos.to_mut()[0] = f32::NAN;
        assert!(matches!(bad.check("a"), Err(Error::Parameter(_))));
        let mut bad = a.clone();
        bad.offsets.to_mut()[1] = bad.offsets[0];
        assert!(group_pair_edges(&bad, None, 0.9, Some(1), &ctl).is_err());
        let mut bad = a.clone();
        bad.offsets = Cow::Owned(vec![bad.offsets[0]]);
        assert!(group_pair_edges(&bad, None, 0.9, Some(1), &ctl).is_err());
        let unsplit = {
            let mut p = PartitionParams::for_rows(n);
            p.cells = false;
            Partition::build(MatRef::new(&x, n, d)?, &p, &ctl)?
        };
        assert!(unsplit.certified_group_bounds(1024).is_err());
        assert!(part.certified_group_bounds(0).is_err());
        Ok(())
    }

    #[test]
    fn slack_covers_the_float32_angle_error() {
        for d in [2, 384, 1000, 100_000] {
            let omega = (1.0 - f64::from(margin(d))).acos();
            assert!(slack(d) >= 4.0 * omega && slack(d) >= ANGLE_MARGIN);
        }
        assert_eq!(slack(384), ANGLE_MARGIN);
        assert!(reach(1.0, 384) > 0.0 && reach(-1.0, 384) > std::f64::consts::PI);
    }

    /// Certified vs brute force on 100,000 clustered rows of 384 dimensions
    /// (2000 groups of 50, within-group similarity about 0.92) at t = 0.9:
    /// `cargo test --release -p simclust-core certified_speed -- --ignored
    /// --nocapture`.
    #[test]
    #[ignore]
    fn certified_speed_on_clustered_rows() -> Result<()> {
        let (n, d, t) = (100_000, 384, 0.9_f32);
        let x = clustered(n, d, 2000, 0.3, 1);
        let ctl = Control::new();
        let clock = std::time::Instant::now();
        let part = partition(&x, n, d, None)?;
        let built = clock.elapsed();
        let clock = std::time::Instant::now();
        let (got, stats) = threshold_edges(&part, t, Probe::Certified(t), None, &ctl)?;
        let certified = clock.elapsed();
        let clock = std::time::Instant::now();
        let want = similarity::threshold_edges(MatRef::new(&x, n, d)?, t, None, &ctl)?;
        let brute = clock.elapsed();
        eprintln!(
            "partition {built:?} ({} lists, {} cells); certified {certified:?} vs brute force \
             {brute:?} (ratio {:.3}); pairs computed {:.5} of all; list pairs {}; edges {} vs {}",
            part.n_lists,
            part.cells.as_ref().map_or(0, Cells::len),
            certified.as_secs_f64() / brute.as_secs_f64(),
            stats.pairs_computed as f64 / stats.pairs_total as f64,
            stats.list_pairs,
            got.src.len(),
            want.src.len(),
        );
        assert_eq!(got.src, want.src);
        assert_eq!(got.dst, want.dst);
        Ok(())
    }
}
