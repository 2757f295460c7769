//! Statistics over the graph edges inside each cluster (fastdup's view of
//! cluster tightness, made exact and explicit).

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::parallel;

use super::clusters::{list_rows, Gathered, NO_SLOT};
use super::kernel::Acc;

/// Edges per parallel chunk when computing similarities.
const CHUNK: usize = 16_384;

/// Statistics of the values (cosine similarities, or the grouping's
/// [`Measure`](super::Measure)) of the edges inside one cluster;
/// `mean`, `min` and `max` are NaN when it has no internal edge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EdgeStats {
    /// Number of distinct undirected internal edges.
    pub n_edges: u64,
    /// Mean similarity over those edges.
    pub mean: f64,
    /// Smallest edge similarity.
    pub min: f32,
    /// Largest edge similarity.
    pub max: f32,
}

/// Per cluster (slot order), the statistics of the edges `(src[e], dst[e])`
/// whose two ends are distinct members of that cluster.
///
/// Edges are undirected: `(i, j)` and `(j, i)` are the same edge, and each
/// distinct pair is counted once however often it is listed (fastdup counts
/// a mutual kNN pair twice). Self-loops and edges touching noise or joining
/// two clusters are ignored. The value of an edge is recomputed from the
/// rows in the grouping's measure (the exact cosine of the normalised rows,
/// the inner product or the Euclidean distance of the raw ones), so it
/// agrees with the all-pairs statistics whatever weights the graph was
/// built with.
///
/// Errors: [`Error::Shape`] when `src` and `dst` differ in length,
/// [`Error::Parameter`] listing edges whose node id is `>= n`.
pub fn edge_stats(
    g: &Gathered,
    src: &[u32],
    dst: &[u32],
    n_threads: Option<usize>,
) -> Result<Vec<EdgeStats>> {
    if src.len() != dst.len() {
        return Err(Error::Shape(format!(
            "src and dst must have the same length, got {} and {}",
            src.len(),
            dst.len()
        )));
    }
    let cl = &g.clusters;
    let n = cl.n_rows();
    let bad: Vec<usize> = src
        .iter()
        .zip(dst)
        .enumerate()
        .filter(|(_, (&a, &b))| a as usize >= n || b as usize >= n)
        .map(|(e, _)| e)
        .collect();
    if !bad.is_empty() {
        return Err(Error::Parameter(format!(
            "{} edge(s) have a node id >= N = {n} (the rows of X): edges {}",
            bad.len(),
            list_rows(&bad)
        )));
    }
    let slots = cl.slots();
    let pool = parallel::pool(n_threads)?;
    let pos = g.positions();
    let (keys, sims) = pool.install(|| {
        let mut keys: Vec<u64> = src
            .par_iter()
            .zip(dst.par_iter())
            .filter_map(|(&a, &b)| {
                let (lo, hi) = (a.min(b), a.max(b));
                let s = slots[lo as usize];
                (lo != hi && s != NO_SLOT && s == slots[hi as usize])
                    .then_some((u64::from(lo) << 32) | u64::from(hi))
            })
            .collect();
        keys.par_sort_unstable();
        keys.dedup();
        let sims: Vec<f32> = keys
            .par_chunks(CHUNK)
            .flat_map_iter(|ch| {
                let (mut u, mut v) = (Vec::new(), Vec::new());
                ch.iter()
                    .map(|&key| {
                        let (a, b) = (
                            pos[(key >> 32) as usize] as usize,
                            pos[(key & 0xFFFF_FFFF) as usize] as usize,
                        );
                        g.rows_into(a, a + 1, &mut u);
                        g.rows_into(b, b + 1, &mut v);
                        g.measure.pair(&u, &v)
                    })
                    .collect::<Vec<f32>>()
            })
            .collect();
        (keys, sims)
    });
    let mut accs = vec![Acc::EMPTY; cl.k()];
    for (&key, &s) in keys.iter().zip(&sims) {
        accs[slots[(key >> 32) as usize] as usize].push(s, 0.0);
    }
    Ok(accs
        .iter()
        .map(|a| {
            let (min, max) = a.min_max();
            EdgeStats {
                n_edges: a.n,
                mean: a.mean_std(0.0).0,
                min,
                max,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::MatRef;

    #[test]
    fn counts_each_undirected_edge_once() -> Result<()> {
        let x = [1.0, 0.0, 0.6, 0.8, 0.0, 1.0, 1.0, 1.0, -1.0, 0.0];
        let g = Gathered::new(MatRef::new(&x, 5, 2)?, &[3, 3, 3, -1, 8], None)?;
        // (0,1) twice (both directions), (1,2), a self-loop, an edge to noise,
        // an edge between clusters.
        let src = [0, 1, 1, 2, 3, 0];
        let dst = [1, 0, 2, 2, 2, 4];
        let st = edge_stats(&g, &src, &dst, Some(2))?;
        assert_eq!(st[0].n_edges, 2);
        assert!((st[0].mean - 0.7).abs() < 1e-6);
        assert!((st[0].min - 0.6).abs() < 1e-6 && (st[0].max - 0.8).abs() < 1e-6);
        assert_eq!(st[1].n_edges, 0);
        assert!(st[1].mean.is_nan());
        assert!(matches!(
            edge_stats(&g, &[0], &[], None),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            edge_stats(&g, &[0, 5], &[1, 1], None),
            Err(Error::Parameter(_))
        ));
        Ok(())
    }
}
