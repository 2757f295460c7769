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

use std::ops::Range;

use super::{Edge, Found, Partition, ASSIGN_ROWS};
use crate::error::Result;
use crate::matrix::MatRef;
use crate::parallel::Control;
use crate::similarity::exact::{margin, refine, screen};
use crate::similarity::normalize::scale_row;
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

/// The `rows` of a cell (sorted by `angles`) whose angle lies in
/// `[lo, hi]`: a subrange.
fn narrow(angles: &[f64], rows: Range<usize>, lo: f64, hi: f64) -> Range<usize> {
    let a = &angles[rows.clone()];
    rows.start + a.partition_point(|&v| v < lo)..rows.start + a.partition_point(|&v| v <= hi)
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

/// The row blocks the search pairs, as ranges of cells: consecutive cells
/// of at most [`BLOCK`] rows together (no cell is larger).
fn panels(cells: &Cells) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for k in 0..cells.len() {
        if cells.offsets[k + 1] - cells.offsets[start] > BLOCK {
            out.push(start..k);
            start = k;
        }
    }
    if start < cells.len() {
        out.push(start..cells.len());
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

/// The certified search over one partition at one threshold.
struct Search<'a> {
    part: &'a Partition,
    cells: &'a Cells,
    threshold: f32,
    /// [`reach`] of the threshold.
    reach: f64,
    /// Screening value and `lo` of [`refine`] (see [`screen`]).
    screen: f32,
    lo: f32,
    /// Per position, the angle of the row to its cell's centroid.
    angles: Vec<f64>,
    /// Per cell, its largest such angle (its last row's).
    radius: Vec<f64>,
    /// Per cell, its list.
    list_of: Vec<u32>,
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

/// The certified ε-graph edges (unsorted) and what the search computed:
/// one task per pair of panels.
pub(super) fn edges(
    part: &Partition,
    cells: &Cells,
    threshold: f32,
    pool: &rayon::ThreadPool,
    ctl: &Control,
) -> Result<Found> {
    let d = part.d;
    let (screen, lo) = screen(threshold, d);
    let angles: Vec<f64> = cells.cos.iter().map(|&c| angle(c)).collect();
    let search = Search {
        part,
        cells,
        threshold,
        reach: reach(threshold, d),
        screen,
        lo,
        radius: (0..cells.len())
            .map(|k| angles[cells.offsets[k + 1] - 1])
            .collect(),
        list_of: (0..cells.len())
            .map(|k| (part.offsets.partition_point(|&o| o <= cells.offsets[k]) - 1) as u32)
            .collect(),
        angles,
    };
    let panels = panels(cells);
    let tasks: Vec<(usize, usize)> = (0..panels.len())
        .flat_map(|i| (i..panels.len()).map(move |j| (i, j)))
        .collect();
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
            search.panel_pair(panels[i].clone(), panels[j].clone(), scratch)
        },
    )?;
    let mut list_pairs: Vec<(u32, u32)> = Vec::new();
    let mut found = Found {
        edges: Vec::new(),
        pairs_computed: 0,
        list_pairs: 0,
    };
    for f in per_task {
        found.edges.push(f.edges);
        found.pairs_computed += f.pairs;
        list_pairs.extend(f.lists);
    }
    list_pairs.sort_unstable();
    list_pairs.dedup();
    found.list_pairs = list_pairs.len() as u64;
    Ok(found)
}

impl Search<'_> {
    /// The pairs between the cells `ci` of one panel and `cj` of a later
    /// one or the same (then only pairs of cells `r < s`, and each cell
    /// with itself in full).
    fn panel_pair(&self, ci: Range<usize>, cj: Range<usize>, sc: &mut Scratch) -> PanelFound {
        let (cells, d) = (self.cells, self.part.d);
        let mut out = PanelFound::default();
        if ci == cj {
            for r in ci.clone() {
                let rows = cells.range(r);
                if rows.len() > 1 {
                    self.tile(rows.clone(), rows, true, &mut sc.tile, &mut out);
                    out.lists.push((self.list_of[r], self.list_of[r]));
                }
            }
        }
        // 1. the cell bound with the radii
        let (ni, nj) = (ci.len(), cj.len());
        sc.centroid_cos.resize(ni * nj, 0.0);
        gemm_abt(
            &cells.centroids[ci.start * d..ci.end * d],
            ni,
            &cells.centroids[cj.start * d..cj.end * d],
            nj,
            d,
            &mut sc.centroid_cos,
        );
        sc.pairs.clear();
        for s in cj.clone() {
            for r in ci.start..ci.end.min(s) {
                let cos = sc.centroid_cos[(r - ci.start) * nj + s - cj.start];
                if angle(cos) - self.radius[r] - self.radius[s] <= self.reach {
                    sc.pairs.push((s, r));
                }
            }
        }
        if sc.pairs.is_empty() {
            return out;
        }
        // 2. the angles of each panel's rows to the other's centroids
        let a_rows = cells.offsets[ci.start]..cells.offsets[ci.end];
        let b_rows = cells.offsets[cj.start]..cells.offsets[cj.end];
        let x_cells = sc.pairs.iter().map(|p| p.0);
        self.cos_to(
            x_cells,
            cj.clone(),
            a_rows.clone(),
            &mut sc.gathered,
            &mut sc.x_slot,
            &mut sc.x,
        );
        let y_cells = sc.pairs.iter().map(|p| p.1);
        self.cos_to(
            y_cells,
            ci.clone(),
            b_rows.clone(),
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
                let rows = (cells.range(r), a_rows.start, cells.range(s), b_rows.start);
                if let Some(w) = self.windows(rows, x, y) {
                    out.lists.push((self.list_of[r], self.list_of[s]));
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
            self.tile(a.clone(), b.clone(), false, &mut sc.tile, &mut out);
        }
        out
    }

    /// The cosines of the rows at `rows` to the centroids of the distinct
    /// `cells` (within `panel`), one row of `out` per cell in order of first
    /// appearance, recorded in `slot` (by cell - first cell of the panel).
    fn cos_to(
        &self,
        cells: impl Iterator<Item = usize>,
        panel: Range<usize>,
        rows: Range<usize>,
        gathered: &mut Vec<f32>,
        slot: &mut Vec<usize>,
        out: &mut Vec<f32>,
    ) {
        let (part, d) = (self.part, self.part.d);
        slot.clear();
        slot.resize(panel.len(), usize::MAX);
        gathered.clear();
        let mut m = 0;
        for k in cells {
            if slot[k - panel.start] == usize::MAX {
                slot[k - panel.start] = m;
                m += 1;
                gathered.extend_from_slice(&self.cells.centroids[k * d..(k + 1) * d]);
            }
        }
        out.resize(m * rows.len(), 0.0);
        gemm_abt(
            gathered,
            m,
            &part.xs[rows.start * d..rows.end * d],
            rows.len(),
            d,
            out,
        );
    }

    /// The rows of cells `r` and `s` left by the row bound on both sides:
    /// `a` in `r` with `|angle(a, c_r) - angle(b, c_r)| <= reach` for some
    /// `b` left in `s`, and `b` in `s` with `|angle(b, c_s) - angle(a, c_s)|
    /// <= reach` for some `a` left in `r`, as sorted ranges, each narrowed
    /// by the other's extremes until neither changes (`None` when either is
    /// empty). `rows` holds both cells' rows and the first positions of
    /// `x` (cosines to `c_s` of rows from that position on) and `y` (to
    /// `c_r`).
    fn windows(
        &self,
        rows: (Range<usize>, usize, Range<usize>, usize),
        x: &[f32],
        y: &[f32],
    ) -> Option<(Range<usize>, Range<usize>)> {
        let (mut a, x0, mut b, y0) = rows;
        loop {
            let (lo, hi) = angle_hull(&x[a.start - x0..a.end - x0]);
            let nb = narrow(&self.angles, b.clone(), lo - self.reach, hi + self.reach);
            if nb.is_empty() {
                return None;
            }
            let (lo, hi) = angle_hull(&y[nb.start - y0..nb.end - y0]);
            let na = narrow(&self.angles, a.clone(), lo - self.reach, hi + self.reach);
            if na.is_empty() {
                return None;
            }
            if na == a && nb == b {
                return Some((a, b));
            }
            (a, b) = (na, nb);
        }
    }

    /// Computes the tile of rows `a` x rows `b` (at most [`BLOCK`] each; if
    /// `upper`, only pairs `p < q`), keeping its edges and counting its
    /// pairs.
    fn tile(
        &self,
        a: Range<usize>,
        b: Range<usize>,
        upper: bool,
        buf: &mut [f32],
        out: &mut PanelFound,
    ) {
        let (part, d) = (self.part, self.part.d);
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
        gemm_abt(
            &part.xs[a.start * d..a.end * d],
            ra,
            &part.xs[b.start * d..b.end * d],
            rb,
            d,
            buf,
        );
        for (p, row) in a.zip(buf.chunks_exact(rb)) {
            let c0 = first(p);
            for (k, lane) in row[c0..].chunks(LANES).enumerate() {
                // most similarities fail the screen: test a lane at once
                if lane.iter().fold(false, |h, &s| h | (s >= self.screen)) {
                    for (c, &s) in lane.iter().enumerate() {
                        if s >= self.screen {
                            let q = b.start + c0 + k * LANES + c;
                            out.edges
                                .extend(part.edge(p, q, s, self.lo, self.threshold));
                        }
                    }
                }
            }
        }
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
