//! The per-cluster bridge similarity: Kruskal on the internal edges.

use super::forest::rem_union;
use super::keys::{f32_key, key_f32, radix_sort_by_first};
use super::*;
use crate::NO_SLOT;

// ---------------------------------------------------------------------------
// Bridge similarity
// ---------------------------------------------------------------------------

/// Per cluster c in 0..=max(labels) (labels -1 = noise, ignored): the weakest
/// edge of the maximum spanning forest of the edges with both endpoints in c,
/// i.e. the largest t such that c's members are connected using only internal
/// edges with sim >= t (single linkage: the threshold at which the cluster
/// would first split). NaN for singletons, for cluster ids with no members,
/// and for clusters whose internal edges do not connect them.
///
/// Kruskal: the internal edges, sorted by descending similarity
/// (`f32::total_cmp`; a stable radix sort, so ties keep their input order,
/// which cannot change the result), are fed to one union-find (clusters are
/// disjoint, so one forest serves them all); the edge that brings a cluster
/// down to one component gives its value. Self-loops are ignored, duplicate
/// edges allowed.
///
/// # Errors
/// [`Error::Shape`] if `src`, `dst` and `sim` differ in length or
/// `labels.len() != n`; [`Error::Parameter`] if an endpoint is `>= n`,
/// `n > u32::MAX + 1`, or a label is `< -1` or `>= n`;
/// [`Error::NonFinite`] listing the positions of NaN similarities.
pub fn bridge_similarity(
    n: usize,
    src: &[u32],
    dst: &[u32],
    sim: &[f32],
    labels: &[i64],
) -> Result<Vec<f32>> {
    check_n(n)?;
    check_weighted_edges(n, src, dst, sim)?;
    let n_clusters = check_labels(n, labels)?;
    let mut out = vec![f32::NAN; n_clusters];
    // Components left inside each cluster; its value is set when it hits 1.
    let mut remaining = vec![0u64; n_clusters];
    for &l in labels {
        if l >= 0 {
            remaining[l as usize] += 1;
        }
    }
    let mut open = remaining.iter().filter(|&&r| r > 1).count();
    if open == 0 {
        return Ok(out);
    }

    // Compact ids for the random lookups of the filter.
    let cid: Vec<u32> = labels
        .iter()
        .map(|&l| if l >= 0 { l as u32 } else { NO_SLOT })
        .collect();
    // (descending key, src, dst) of the internal edges.
    // Reserved for all edges: untouched capacity costs no memory.
    let mut edges: Vec<(u32, u32, u32)> = Vec::with_capacity(src.len());
    for (e, ((&s, &d), &w)) in src.iter().zip(dst).zip(sim).enumerate() {
        prefetch_edge(&cid, src, dst, e);
        let c = cid[s as usize];
        if s != d && c != NO_SLOT && c == cid[d as usize] {
            edges.push((!f32_key(w), s, d));
        }
    }
    radix_sort_by_first(&mut edges);

    let mut parent: Vec<u32> = (0..n).map(|i| i as u32).collect();
    for (e, &(k, s, d)) in edges.iter().enumerate() {
        if let Some(&(_, s2, d2)) = edges.get(e + PREFETCH_AHEAD) {
            prefetch(&parent, s2 as usize);
            prefetch(&parent, d2 as usize);
            prefetch(&cid, s2 as usize);
        }

        if rem_union(&mut parent, s, d) {
            let c = cid[s as usize] as usize;
            remaining[c] -= 1;
            if remaining[c] == 1 {
                out[c] = key_f32(!k);
                open -= 1;
                if open == 0 {
                    break;
                }
            }
        }
    }
    Ok(out)
}
