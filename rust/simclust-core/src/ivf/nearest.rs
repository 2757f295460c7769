//! The lists nearest to a row: the most similar of a partition's centroids,
//! found for batches of unit rows with the int16 `vpdpwssd` kernel where the
//! CPU has AVX-512 VNNI (twice the multiply-adds of fp32; only the order of
//! the lists is used, never the value), else with the fp32 GEMM.

use crate::similarity::int16::{TopScratch, UnitPanels};
use crate::tiles::gemm_abt;

/// The `m` most similar lists of a row (`m <= sims.len()`), best first,
/// ties to the lower list.
fn top_lists(sims: &[f32], m: usize) -> Vec<u32> {
    let mut top: Vec<(f32, u32)> = Vec::with_capacity(m + 1);
    for (c, &s) in sims.iter().enumerate() {
        if top.len() < m || s > top[top.len() - 1].0 {
            let at = top.partition_point(|&(v, _)| v >= s);
            top.insert(at, (s, c as u32));
            top.truncate(m);
        }
    }
    top.into_iter().map(|(_, c)| c).collect()
}

/// A partition's `l x d` unit centroids, ready to rank them for rows.
#[derive(Debug)]
pub(crate) struct Centroids<'a> {
    centroids: &'a [f32],
    l: usize,
    d: usize,
    int16: Option<UnitPanels>,
}

/// Per-thread buffers of [`Centroids::nearest`].
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    sims: Vec<f32>,
    int16: TopScratch,
}

impl<'a> Centroids<'a> {
    /// The `l x d` unit `centroids`.
    pub(crate) fn new(centroids: &'a [f32], l: usize, d: usize) -> Self {
        Self {
            centroids,
            l,
            d,
            int16: UnitPanels::new(centroids, l, d),
        }
    }

    /// For each of the `ra` unit rows `xs` (row-major), its `m` most similar
    /// centroids (`1 <= m <= l`), best first, ties to the lower list,
    /// appended to `out`.
    pub(crate) fn nearest(
        &self,
        xs: &[f32],
        ra: usize,
        m: usize,
        scratch: &mut Scratch,
        out: &mut Vec<u32>,
    ) {
        if ra == 0 {
            return;
        }
        let (l, d) = (self.l, self.d);
        match &self.int16 {
            Some(panels) => panels.top(&xs[..ra * d], ra, m, &mut scratch.int16, out),
            None => {
                scratch.sims.resize(ra * l, 0.0);
                gemm_abt(&xs[..ra * d], ra, self.centroids, l, d, &mut scratch.sims);
                for r in 0..ra {
                    out.extend(top_lists(&scratch.sims[r * l..(r + 1) * l], m));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::uniform;

    /// `n` seeded rows of length `d` scaled to unit norm.
    fn unit_rows(n: usize, d: usize, seed: u64) -> Vec<f32> {
        let mut x = uniform(n * d, seed, -0.5);
        for row in x.chunks_exact_mut(d) {
            let norm = row
                .iter()
                .map(|&v| f64::from(v) * f64::from(v))
                .sum::<f64>()
                .sqrt();
            row.iter_mut()
                .for_each(|v| *v = (f64::from(*v) / norm) as f32);
        }
        x
    }

    /// The int16 ranking (where the CPU runs it) agrees with the exact one
    /// wherever the exact similarities are not within the int16 error of
    /// each other, and both agree with the fp32 `top_lists`.
    #[test]
    fn nearest_matches_exact_ranking() {
        let (n, l, d, m) = (300, 70, 37, 5);
        let xs = unit_rows(n, d, 1);
        let cs = unit_rows(l, d, 2);
        let index = Centroids::new(&cs, l, d);
        let mut scratch = Scratch::default();
        let mut got = Vec::new();
        index.nearest(&xs, n, m, &mut scratch, &mut got);
        assert_eq!(got.len(), n * m);
        let tol = 2.0 * (d as f64).sqrt() / 32_000.0;
        for r in 0..n {
            let x = &xs[r * d..(r + 1) * d];
            let mut exact: Vec<(f64, u32)> = (0..l)
                .map(|j| {
                    let c = &cs[j * d..(j + 1) * d];
                    (
                        x.iter()
                            .zip(c)
                            .map(|(&a, &b)| f64::from(a) * f64::from(b))
                            .sum(),
                        j as u32,
                    )
                })
                .collect();
            exact.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let exact_of = |j: u32| exact.iter().find(|e| e.1 == j).map_or(f64::NAN, |e| e.0);
            for (slot, &j) in got[r * m..(r + 1) * m].iter().enumerate() {
                // a listed centroid is within the error of the exact one at its slot
                assert!(
                    (exact_of(j) - exact[slot].0).abs() <= tol,
                    "row {r} slot {slot}"
                );
            }
            // no two slots hold the same centroid
            let mut seen = got[r * m..(r + 1) * m].to_vec();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), m);
        }
    }

    #[test]
    fn nearest_keeps_ties_to_the_lower_list() {
        let d = 4;
        // lists 0 and 2 identical, 1 and 3 identical
        let cs = [
            1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0,
        ];
        let xs = [0.8, 0.6, 0.0, 0.0, 0.6, 0.8, 0.0, 0.0];
        let index = Centroids::new(&cs, 4, d);
        let mut got = Vec::new();
        index.nearest(&xs, 2, 3, &mut Scratch::default(), &mut got);
        assert_eq!(got, vec![0, 2, 1, 1, 3, 0]);
    }
}
