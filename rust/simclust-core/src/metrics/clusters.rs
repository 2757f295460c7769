//! A validated labelling, and the members of each cluster addressed as one
//! contiguous range of L2-normalised rows (gathered on demand, never copied
//! as a whole).

use std::borrow::Cow;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::matrix::MatRef;
use crate::parallel;
use crate::similarity::normalize::{check_finite, check_non_empty, scale_row, unit_factors};

use super::measure::Measure;
use crate::similarity::exact::dot64;

pub use crate::NOISE;
pub(crate) use crate::NO_SLOT;

pub(crate) use crate::error::list_rows;

/// Members per segment of a cluster's sums and scans: a cluster larger than
/// this is processed in fixed segments in parallel, reduced in order.
pub(crate) const SEGMENT: usize = 8192;

/// A labelling of `n` rows: the distinct cluster ids in ascending order
/// (gaps allowed: ids need not be `0..K`), and each cluster's members in
/// ascending row order. Rows labelled [`NOISE`] (`-1`) are in no cluster.
///
/// A cluster is addressed by its *slot* `0..K`, its position in
/// [`ids`](Self::ids).
#[derive(Debug, Clone, PartialEq)]
pub struct Clusters {
    ids: Vec<i64>,
    offsets: Vec<usize>,
    rows: Vec<u32>,
    slot: Vec<u32>,
}

impl Clusters {
    /// Validates `labels` for `n` rows and groups the rows by cluster.
    ///
    /// Errors: [`Error::Shape`] when `labels.len() != n` or `n` does not fit
    /// in `u32`; [`Error::Parameter`] listing the rows whose label is below
    /// `-1`.
    ///
    /// ```
    /// use simclust_core::metrics::Clusters;
    /// let c = Clusters::new(&[7, -1, 2, 7], 4)?;
    /// assert_eq!(c.ids(), &[2, 7]);
    /// assert_eq!(c.members(1), &[0, 3]);
    /// # Ok::<(), simclust_core::Error>(())
    /// ```
    pub fn new(labels: &[i64], n: usize) -> Result<Self> {
        if labels.len() != n {
            return Err(Error::Shape(format!(
                "labels has {} entries but X has {n} rows: one label per row is needed",
                labels.len()
            )));
        }
        if n >= NO_SLOT as usize {
            return Err(Error::Shape(format!(
                "{n} rows; at most {} are supported",
                NO_SLOT - 1
            )));
        }
        let bad: Vec<usize> = labels
            .iter()
            .enumerate()
            .filter(|&(_, &l)| l < NOISE)
            .map(|(i, _)| i)
            .collect();
        if !bad.is_empty() {
            return Err(Error::Parameter(format!(
                "labels must be cluster ids >= 0, or -1 for noise; {} row(s) have another negative label: {}",
                bad.len(),
                list_rows(&bad)
            )));
        }
        let max = labels.iter().copied().max().unwrap_or(NOISE);
        // Cluster id -> slot: a dense table when ids are small, else a sorted list.
        let mut slot = vec![NO_SLOT; n];
        let ids: Vec<i64>;
        if max < 0 {
            ids = Vec::new();
        } else if (max as u64) <= 2 * n as u64 + 1024 {
            let mut table = vec![NO_SLOT; max as usize + 1];
            for &l in labels.iter().filter(|&&l| l >= 0) {
                table[l as usize] = 0;
            }
            let mut k = 0_u32;
            let mut dense_ids = Vec::new();
            for (id, t) in table.iter_mut().enumerate() {
                if *t == 0 {
                    *t = k;
                    k += 1;
                    dense_ids.push(id as i64);
                }
            }
            for (s, &l) in slot.iter_mut().zip(labels) {
                if l >= 0 {
                    *s = table[l as usize];
                }
            }
            ids = dense_ids;
        } else {
            let mut sorted: Vec<i64> = labels.iter().copied().filter(|&l| l >= 0).collect();
            sorted.sort_unstable();
            sorted.dedup();
            for (s, &l) in slot.iter_mut().zip(labels) {
                if l >= 0 {
                    *s = sorted.binary_search(&l).unwrap_or(0) as u32;
                }
            }
            ids = sorted;
        }
        let k = ids.len();
        let mut offsets = vec![0_usize; k + 1];
        for &s in slot.iter().filter(|&&s| s != NO_SLOT) {
            offsets[s as usize + 1] += 1;
        }
        for c in 0..k {
            offsets[c + 1] += offsets[c];
        }
        let mut fill = offsets[..k].to_vec();
        let mut rows = vec![0_u32; offsets[k]];
        for (i, &s) in slot.iter().enumerate() {
            if s != NO_SLOT {
                rows[fill[s as usize]] = i as u32;
                fill[s as usize] += 1;
            }
        }
        Ok(Self {
            ids,
            offsets,
            rows,
            slot,
        })
    }

    /// Number of clusters `K` (noise excluded).
    pub fn k(&self) -> usize {
        self.ids.len()
    }

    /// Number of rows labelled.
    pub fn n_rows(&self) -> usize {
        self.slot.len()
    }

    /// Number of rows in some cluster (not noise).
    pub fn n_clustered(&self) -> usize {
        self.rows.len()
    }

    /// The cluster ids, ascending; slot `c` is cluster `ids()[c]`.
    pub fn ids(&self) -> &[i64] {
        &self.ids
    }

    /// Size of the cluster in slot `c`.
    pub fn size(&self, c: usize) -> usize {
        self.offsets[c + 1] - self.offsets[c]
    }

    /// The member rows of slot `c`, ascending.
    pub fn members(&self, c: usize) -> &[u32] {
        &self.rows[self.offsets[c]..self.offsets[c + 1]]
    }

    /// Position of slot `c`'s first member in the gathered order.
    pub fn offset(&self, c: usize) -> usize {
        self.offsets[c]
    }

    /// All clustered rows, cluster by cluster (the gathered order).
    pub fn gathered_rows(&self) -> &[u32] {
        &self.rows
    }

    /// The slot of row `i`, `None` for noise.
    pub fn slot_of(&self, i: usize) -> Option<usize> {
        match self.slot[i] {
            NO_SLOT => None,
            s => Some(s as usize),
        }
    }

    /// The slot of cluster id `id`, `None` if no row has that label.
    pub fn slot_of_id(&self, id: i64) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }

    pub(crate) fn slots(&self) -> &[u32] {
        &self.slot
    }
}

/// A validated labelling of the rows of `x`, the [`Measure`] they are seen
/// in and, for cosine, each row's unit factor: what a [`Gathered`] view
/// needs besides the rows themselves. Built once per labelling (one pass
/// over the rows); no copy of the rows.
#[derive(Debug, Clone)]
pub struct Grouping {
    /// The labelling.
    pub clusters: Clusters,
    /// Per input row, the factor that makes it a unit row (1 when it is
    /// one); empty when the measure takes the rows as they are.
    factors: Vec<f64>,
    /// Embedding dimension.
    d: usize,
    /// What the metrics measure.
    measure: Measure,
}

impl Grouping {
    /// Validates `x` (every row, noise rows included: NaN/Inf and zero norm
    /// are errors naming the rows) and `labels`, and groups the rows for
    /// the cosine measure.
    pub fn new(x: MatRef<'_>, labels: &[i64], n_threads: Option<usize>) -> Result<Self> {
        Self::with_measure(x, labels, Measure::Cosine, n_threads)
    }

    /// [`Grouping::new`] for any [`Measure`]: cosine normalises the rows (a
    /// zero row is an error), the others take them as they are (only
    /// NaN/Inf rows are errors).
    pub fn with_measure(
        x: MatRef<'_>,
        labels: &[i64],
        measure: Measure,
        n_threads: Option<usize>,
    ) -> Result<Self> {
        check_non_empty(&x, "X")?;
        let clusters = Clusters::new(labels, x.n_rows())?;
        let pool = parallel::pool(n_threads)?;
        let factors = if measure.normalizes() {
            unit_factors(x, "X", &pool)?
        } else {
            check_finite(x, "X", &pool)?;
            Vec::new()
        };
        Ok(Self {
            clusters,
            factors,
            d: x.n_cols(),
            measure,
        })
    }

    /// What the metrics of this grouping measure.
    pub fn measure(&self) -> Measure {
        self.measure
    }
}

/// The clustered rows of `x` (L2-normalised for the cosine measure, as they
/// are for the others), addressed cluster by cluster:
/// position `p` of the *gathered order* is row `clusters.gathered_rows()[p]`,
/// and cluster `c` holds positions `offset(c)..offset(c) + size(c)`.
///
/// The rows are not copied: the kernels gather the positions they work on
/// into a small per-task buffer ([`Gathered::rows_into`]), scaling each row
/// by its unit factor (a unit row is copied bit for bit). So the metrics
/// of a run need no second copy of the data, whatever its size.
#[derive(Debug, Clone)]
pub struct Gathered<'a> {
    /// The labelling.
    pub clusters: Cow<'a, Clusters>,
    factors: Cow<'a, [f64]>,
    x: MatRef<'a>,
    /// Embedding dimension.
    pub d: usize,
    /// What the metrics measure.
    pub measure: Measure,
    release: Release<'a>,
}

/// How the owner of the rows takes back the memory that reading them
/// brought in (see [`Gathered::with_release`]).
#[derive(Clone, Copy, Default)]
struct Release<'a>(Option<&'a (dyn Fn() + Sync)>);

impl std::fmt::Debug for Release<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Release(set)"
        } else {
            "Release(none)"
        })
    }
}

impl<'a> Gathered<'a> {
    /// Validates `x` and `labels` ([`Grouping::new`]) and views `x` through
    /// the labelling.
    pub fn new(x: MatRef<'a>, labels: &[i64], n_threads: Option<usize>) -> Result<Self> {
        Self::with_measure(x, labels, Measure::Cosine, n_threads)
    }

    /// [`Gathered::new`] for any [`Measure`] ([`Grouping::with_measure`]).
    pub fn with_measure(
        x: MatRef<'a>,
        labels: &[i64],
        measure: Measure,
        n_threads: Option<usize>,
    ) -> Result<Self> {
        let Grouping {
            clusters,
            factors,
            d,
            measure,
        } = Grouping::with_measure(x, labels, measure, n_threads)?;
        Ok(Self {
            clusters: Cow::Owned(clusters),
            factors: Cow::Owned(factors),
            x,
            d,
            measure,
            release: Release::default(),
        })
    }

    /// Views `x` through a [`Grouping`] built from it earlier.
    ///
    /// Errors: [`Error::Shape`] when `x` is not the shape the grouping was
    /// built for.
    pub fn view(x: MatRef<'a>, grouping: &'a Grouping) -> Result<Self> {
        let (n, d) = (grouping.clusters.n_rows(), grouping.d);
        if x.n_rows() != n || x.n_cols() != d {
            return Err(Error::Shape(format!(
                "X is {} x {}, but the labelling was built for {n} x {d}",
                x.n_rows(),
                x.n_cols()
            )));
        }
        Ok(Self {
            clusters: Cow::Borrowed(&grouping.clusters),
            factors: Cow::Borrowed(&grouping.factors),
            x,
            d,
            measure: grouping.measure,
            release: Release::default(),
        })
    }

    /// Sets what [`Gathered::release_rows`] calls: for rows memory-mapped
    /// from a file, a function that gives their resident pages back to the
    /// kernel (they read back unchanged), so that a metric reading every row
    /// in a scattered order does not hold the whole input in memory.
    #[must_use]
    pub fn with_release(mut self, release: &'a (dyn Fn() + Sync)) -> Self {
        self.release = Release(Some(release));
        self
    }

    /// Tells the owner of the rows that the rows read so far are not needed
    /// in memory any more (they may be read again); does nothing unless
    /// [`Gathered::with_release`] set a function. Metrics that stream over
    /// all rows call it every few thousand rows.
    pub fn release_rows(&self) {
        if let Some(f) = self.release.0 {
            f();
        }
    }

    /// The rows at gathered positions `p0..p1` (normalised for the cosine
    /// measure), into `out` (resized to `(p1 - p0) x d`).
    pub fn rows_into(&self, p0: usize, p1: usize, out: &mut Vec<f32>) {
        let d = self.d;
        out.resize((p1 - p0) * d, 0.0);
        let rows = &self.clusters.gathered_rows()[p0..p1];
        for (dst, &r) in out.chunks_exact_mut(d).zip(rows) {
            let r = r as usize;
            match self.factors.get(r) {
                Some(&f) => scale_row(self.x.row(r), f, dst),
                None => dst.copy_from_slice(self.x.row(r)),
            }
        }
    }

    /// The normalised rows at gathered positions `p0..p1`, as a new vector.
    pub fn rows(&self, p0: usize, p1: usize) -> Vec<f32> {
        let mut out = Vec::new();
        self.rows_into(p0, p1, &mut out);
        out
    }

    /// The normalised rows of slot `c`, contiguous (a copy: for the largest
    /// clusters, prefer [`Gathered::rows_into`] over segments).
    pub fn block(&self, c: usize) -> Vec<f32> {
        let o = self.clusters.offset(c);
        self.rows(o, o + self.clusters.size(c))
    }

    /// `f(rows)` on slot `c`'s members in fixed segments of [`SEGMENT`]
    /// rows (`rows`: the segment's normalised rows, gathered), in parallel
    /// when there is more than one segment; the results in segment order. The segments do not
    /// depend on the thread count, so neither does any reduction of the
    /// results in this order.
    pub(crate) fn map_segments<T: Send>(&self, c: usize, f: impl Fn(&[f32]) -> T + Sync) -> Vec<T> {
        let (o, n) = (self.clusters.offset(c), self.clusters.size(c));
        let seg = |s: usize| {
            let (a, b) = (s * SEGMENT, ((s + 1) * SEGMENT).min(n));
            f(&self.rows(o + a, o + b))
        };
        if n <= SEGMENT {
            return vec![seg(0)];
        }
        (0..n.div_ceil(SEGMENT)).into_par_iter().map(seg).collect()
    }

    /// `(sum_i x_i, sum_i |x_i|^2)` in f64 of slot `c`'s members as the
    /// kernels read them, reduced as [`Gathered::cluster_sum`] is.
    pub fn cluster_moments(&self, c: usize) -> (Vec<f64>, f64) {
        let d = self.d;
        let parts = self.map_segments(c, |rows| {
            let (mut s, mut sq) = (vec![0.0_f64; d], 0.0_f64);
            for row in rows.chunks_exact(d) {
                for (a, &v) in s.iter_mut().zip(row) {
                    *a += f64::from(v);
                }
                sq += dot64(row, row);
            }
            (s, sq)
        });
        let mut parts = parts.into_iter();
        let (mut total, mut total_sq) = parts.next().unwrap_or_else(|| (vec![0.0; d], 0.0));
        for (p, sq) in parts {
            for (a, v) in total.iter_mut().zip(&p) {
                *a += v;
            }
            total_sq += sq;
        }
        (total, total_sq)
    }

    /// `sum_i x_i` in f64 of slot `c`'s normalised members: per segment
    /// ([`Gathered::map_segments`]) in row order, the segments added in
    /// order, so it is the same for any thread count.
    pub fn cluster_sum(&self, c: usize) -> Vec<f64> {
        let d = self.d;
        let parts = self.map_segments(c, |rows| {
            let mut s = vec![0.0_f64; d];
            for row in rows.chunks_exact(d) {
                for (a, &v) in s.iter_mut().zip(row) {
                    *a += f64::from(v);
                }
            }
            s
        });
        let mut parts = parts.into_iter();
        let mut total = parts.next().unwrap_or_else(|| vec![0.0; d]);
        for p in parts {
            for (a, v) in total.iter_mut().zip(&p) {
                *a += v;
            }
        }
        total
    }

    /// Position of each input row in the gathered order (`NO_SLOT` for noise).
    pub(crate) fn positions(&self) -> Vec<u32> {
        let mut pos = vec![NO_SLOT; self.clusters.n_rows()];
        for (p, &r) in self.clusters.gathered_rows().iter().enumerate() {
            pos[r as usize] = p as u32;
        }
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_rows_with_gaps_and_noise() -> Result<()> {
        let c = Clusters::new(&[5, -1, 0, 5, 9, 0], 6)?;
        assert_eq!(c.ids(), &[0, 5, 9]);
        assert_eq!(c.members(0), &[2, 5]);
        assert_eq!(c.members(1), &[0, 3]);
        assert_eq!(c.members(2), &[4]);
        assert_eq!(c.slot_of(1), None);
        assert_eq!(c.slot_of(4), Some(2));
        assert_eq!(c.n_clustered(), 5);
        assert_eq!(c.slot_of_id(9), Some(2));
        assert_eq!(c.slot_of_id(3), None);
        // Huge ids take the sorted path and give the same grouping.
        let big = Clusters::new(&[5_000_000_000, -1, 0, 5_000_000_000], 4)?;
        assert_eq!(big.ids(), &[0, 5_000_000_000]);
        assert_eq!(big.members(1), &[0, 3]);
        Ok(())
    }

    #[test]
    fn rejects_bad_labels() {
        assert!(matches!(Clusters::new(&[0, 1], 3), Err(Error::Shape(_))));
        let e = Clusters::new(&[0, -2, 1, -7], 4);
        match e {
            Err(Error::Parameter(m)) => assert!(m.ends_with(": 1, 3"), "{m}"),
            other => panic!("unexpected {other:?}"),
        }
        let all_noise = Clusters::new(&[-1, -1], 2);
        assert!(matches!(all_noise, Ok(ref c) if c.k() == 0));
    }

    #[test]
    fn gathers_normalised_rows_and_validates_noise_rows() -> Result<()> {
        let x = [3.0, 4.0, 0.0, 2.0, 1.0, 0.0];
        let g = Gathered::new(MatRef::new(&x, 3, 2)?, &[1, -1, 0], Some(2))?;
        assert_eq!(g.rows(0, 2), vec![1.0, 0.0, 0.6, 0.8]);
        assert_eq!(g.block(1), vec![0.6, 0.8]);
        assert_eq!(g.positions(), vec![1, NO_SLOT, 0]);
        let grouping = Grouping::new(MatRef::new(&x, 3, 2)?, &[1, -1, 0], None)?;
        let v = Gathered::view(MatRef::new(&x, 3, 2)?, &grouping)?;
        assert_eq!(v.rows(0, 2), g.rows(0, 2));
        assert!(Gathered::view(MatRef::new(&x[..4], 2, 2)?, &grouping).is_err());
        let x = [3.0, 4.0, f32::NAN, 2.0, 0.0, 0.0];
        let e = Gathered::new(MatRef::new(&x, 3, 2)?, &[1, -1, 0], Some(1));
        assert_eq!(
            e.err(),
            Some(Error::NonFinite {
                what: "X",
                rows: vec![1]
            })
        );
        let x = [3.0, 4.0, 1.0, 2.0, 0.0, 0.0];
        let e = Gathered::new(MatRef::new(&x, 3, 2)?, &[1, -1, -1], Some(1));
        assert_eq!(
            e.err(),
            Some(Error::ZeroNorm {
                what: "X",
                rows: vec![2]
            })
        );
        Ok(())
    }
}
