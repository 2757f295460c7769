//! Top-k candidate lists, one per row, under a total order: higher
//! similarity first, ties broken by the lower index. Because the order is
//! total, the top-k of a set does not depend on the order candidates arrive
//! in, which is what makes the parallel kernels deterministic.
//!
//! Each row keeps an unsorted buffer of `2k` slots. A candidate is appended
//! if it beats the row's threshold (the k-th best known after the last
//! compaction); a full buffer is compacted with a linear-time selection down
//! to its `k` best, which raises the threshold. That costs O(1) amortised
//! per accepted candidate for any `k` (a sorted insertion costs O(k), which
//! makes a search with `k` near N quadratic in `k`).

use std::cmp::Ordering;

/// One candidate: similarity and row index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    s: f32,
    i: u32,
}

/// A row's floor: see [`TopK::floors_of`].
pub(crate) type Floor = Entry;

/// The total order: higher similarity first, then lower index.
#[inline]
fn rank(a: &Entry, b: &Entry) -> Ordering {
    b.s.total_cmp(&a.s).then(a.i.cmp(&b.i))
}

/// Whether `(s, j)` ranks before the threshold `(t, i)`.
#[inline(always)]
fn better(s: f32, j: u32, t: f32, i: u32) -> bool {
    s > t || (s == t && j < i)
}

/// Up to `k` best `(similarity, index)` candidates for each of `n` rows.
#[derive(Debug, Clone)]
pub(crate) struct TopK {
    k: usize,
    entries: Vec<Entry>,
    len: Vec<u32>,
    /// Per row, the k-th best candidate after the last compaction
    /// (`(-inf, u32::MAX)` before the first): anything not better is dropped.
    thr: Vec<Entry>,
}

impl TopK {
    /// Empty lists for `n` rows.
    pub(crate) fn new(n: usize, k: usize) -> Self {
        Self {
            k,
            entries: vec![Entry { s: 0.0, i: 0 }; n * 2 * k],
            len: vec![0; n],
            thr: vec![
                Entry {
                    s: f32::NEG_INFINITY,
                    i: u32::MAX
                };
                n
            ],
        }
    }

    /// Empty lists for `n = floors.len()` rows that keep only candidates
    /// ranking before `floors[row]` (from [`Self::floors_of`] of lists the
    /// candidates will be merged into: nothing else could enter them).
    pub(crate) fn with_floors(k: usize, floors: &[Floor]) -> Self {
        let mut t = Self::new(floors.len(), k);
        t.thr.copy_from_slice(floors);
        t
    }

    /// Floors of sorted lists ([`Self::into_parts`]): per row its `k`-th
    /// entry, `(-inf, u32::MAX)` where it has fewer than `k`.
    pub(crate) fn floors_of(k: usize, idx: &[u32], sims: &[f32]) -> Vec<Floor> {
        idx.chunks_exact(k)
            .zip(sims.chunks_exact(k))
            .map(|(i, s)| Entry {
                s: if i[k - 1] == u32::MAX {
                    f32::NEG_INFINITY
                } else {
                    s[k - 1]
                },
                i: i[k - 1],
            })
            .collect()
    }

    /// A similarity below which candidates for `row` can be skipped
    /// (`-inf` until the row has seen enough candidates).
    #[inline(always)]
    pub(crate) fn worst(&self, row: usize) -> f32 {
        self.thr[row].s
    }

    /// Offers candidate `(s, j)` to `row`'s list.
    #[inline]
    pub(crate) fn push(&mut self, row: usize, s: f32, j: u32) {
        let t = self.thr[row];
        if !better(s, j, t.s, t.i) {
            return;
        }
        let cap = 2 * self.k;
        let len = self.len[row] as usize;
        self.entries[row * cap + len] = Entry { s, i: j };
        if len + 1 == cap {
            self.compact(row);
        } else {
            self.len[row] = (len + 1) as u32;
        }
    }

    /// Offers candidate `(s, j)` to `row`'s list unless `j` is already
    /// there, in which case its similarity becomes the larger of the two.
    /// For searches that may compute a pair more than once (with rounding
    /// that can differ between computations): the lists hold distinct
    /// indices, each with the largest value offered, whatever the order.
    #[inline]
    pub(crate) fn push_unique(&mut self, row: usize, s: f32, j: u32) {
        let t = self.thr[row];
        if !better(s, j, t.s, t.i) {
            return;
        }
        let cap = 2 * self.k;
        let len = self.len[row] as usize;
        let buf = &mut self.entries[row * cap..row * cap + len];
        if let Some(e) = buf.iter_mut().find(|e| e.i == j) {
            e.s = e.s.max(s);
            return;
        }
        self.push(row, s, j);
    }

    /// Offers every pair of a tile to both rows' lists, as
    /// [`Self::push_unique`] does: `buf` holds `ra x rb` similarities
    /// (row-major) of rows `row_of(r)` with the consecutive rows
    /// `b0..b0 + rb`, and row `r`'s pairs start at column `first(r)`.
    ///
    /// Most values of a tile enter neither list. Sixteen at a time are
    /// compared with the row's and the columns' thresholds at once (the
    /// columns' taken when the tile starts: lower than or equal to their
    /// current ones, so a skipped value could not have entered either list),
    /// and only a group with a value above one of them is offered.
    ///
    /// Row `r`'s list is `row_of(r)`, column `c`'s `b0 + c`, and the
    /// candidate list `i` stands for is offered as `id(i)`: lists that hold
    /// some rows only offer each by its row among all rows, so that ties rank
    /// as in lists over all rows.
    pub(crate) fn offer_tile_unique(
        &mut self,
        buf: &[f32],
        (ra, rb): (usize, usize),
        row_of: impl Fn(usize) -> usize,
        b0: usize,
        first: impl Fn(usize) -> usize,
        id: impl Fn(usize) -> u32,
    ) {
        const GROUP: usize = 16;
        let col_thr: Vec<f32> = self.thr[b0..b0 + rb].iter().map(|t| t.s).collect();
        for r in 0..ra {
            let p = row_of(r);
            let row = &buf[r * rb..(r + 1) * rb];
            let mut c0 = first(r);
            while c0 < rb {
                let c1 = (c0 + GROUP).min(rb);
                let tr = self.thr[p].s;
                let hit = row[c0..c1]
                    .iter()
                    .zip(&col_thr[c0..c1])
                    .fold(false, |h, (&s, &tc)| h | (s >= tr.min(tc)));
                if hit {
                    for c in c0..c1 {
                        let s = row[c];
                        if s >= self.thr[p].s {
                            self.push_unique(p, s, id(b0 + c));
                        }
                        if s >= col_thr[c] {
                            self.push_unique(b0 + c, s, id(p));
                        }
                    }
                }
                c0 = c1;
            }
        }
    }

    /// The candidates held for `row` (unsorted, at most `2k`).
    pub(crate) fn row_candidates(&self, row: usize) -> impl Iterator<Item = (f32, u32)> + '_ {
        let cap = 2 * self.k;
        self.entries[row * cap..row * cap + self.len[row] as usize]
            .iter()
            .map(|e| (e.s, e.i))
    }

    /// Keeps the `k` best of a full buffer and raises the threshold.
    fn compact(&mut self, row: usize) {
        let (k, cap) = (self.k, 2 * self.k);
        let buf = &mut self.entries[row * cap..(row + 1) * cap];
        buf.select_nth_unstable_by(k - 1, rank);
        self.thr[row] = buf[k - 1];
        self.len[row] = k as u32;
    }

    /// Offers every candidate of `other` (same shape) to these lists.
    pub(crate) fn merge(&mut self, other: &TopK) {
        let cap = 2 * self.k;
        for (row, &len) in other.len.iter().enumerate() {
            for e in &other.entries[row * cap..row * cap + len as usize] {
                self.push(row, e.s, e.i);
            }
        }
    }

    /// Offers every candidate of `other` (same shape) with
    /// [`TopK::push_unique`].
    pub(crate) fn merge_unique(&mut self, other: &TopK) {
        let cap = 2 * self.k;
        for (row, &len) in other.len.iter().enumerate() {
            for e in &other.entries[row * cap..row * cap + len as usize] {
                self.push_unique(row, e.s, e.i);
            }
        }
    }

    /// `(indices, similarities)`, row-major `n x k`, each row sorted by the
    /// total order. A row with fewer than `k` candidates is padded with
    /// `(u32::MAX, -inf)` (the kernels never leave one).
    pub(crate) fn into_parts(mut self) -> (Vec<u32>, Vec<f32>) {
        let (k, cap) = (self.k, 2 * self.k);
        let n = self.len.len();
        let mut idx = Vec::with_capacity(n * k);
        let mut sims = Vec::with_capacity(n * k);
        for row in 0..n {
            let len = self.len[row] as usize;
            let buf = &mut self.entries[row * cap..row * cap + len];
            buf.sort_unstable_by(rank);
            for slot in 0..k {
                let e = buf.get(slot).copied().unwrap_or(Entry {
                    s: f32::NEG_INFINITY,
                    i: u32::MAX,
                });
                idx.push(e.i);
                sims.push(e.s);
            }
        }
        (idx, sims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tile offered at once keeps the lists that offering its pairs one
    /// by one keeps, on a diagonal tile (pairs above it) and on a tile of
    /// gathered rows against a block, with ties and repeated pairs.
    #[test]
    fn offer_tile_matches_pair_by_pair() {
        let (n, k) = (90, 4);
        let vals = crate::testdata::uniform(60 * 40, 3, -0.5);
        // coarse values: many ties
        let buf: Vec<f32> = vals.iter().map(|v| (v * 16.0).round() / 16.0).collect();
        for (ra, rb, b0, diagonal) in [(40, 40, 10, true), (60, 40, 50, false)] {
            let rows: Vec<usize> = if diagonal {
                (b0..b0 + ra).collect()
            } else {
                (0..ra).map(|r| (r * 7) % 50).collect()
            };
            let first = |r: usize| if diagonal { r + 1 } else { 0 };
            let mut a = TopK::new(n, k);
            let mut b = TopK::new(n, k);
            // twice: the second offer repeats every pair
            for _ in 0..2 {
                a.offer_tile_unique(&buf, (ra, rb), |r| rows[r], b0, first, |i| i as u32);
                for r in 0..ra {
                    for c in first(r)..rb {
                        let s = buf[r * rb + c];
                        b.push_unique(rows[r], s, (b0 + c) as u32);
                        b.push_unique(b0 + c, s, rows[r] as u32);
                    }
                }
            }
            let (ia, sa) = a.into_parts();
            assert_eq!((ia, sa), b.into_parts());
        }
    }

    fn pushed(k: usize, cands: &[(f32, u32)]) -> TopK {
        let mut t = TopK::new(1, k);
        for &(s, j) in cands {
            t.push(0, s, j);
        }
        t
    }

    #[test]
    fn keeps_best_with_index_ties() {
        let t = pushed(
            3,
            &[
                (0.5, 9),
                (0.9, 4),
                (0.5, 2),
                (0.1, 0),
                (0.9, 7),
                (0.5, 1),
                (0.2, 3),
                (0.6, 8),
            ],
        );
        let (i, s) = t.into_parts();
        assert_eq!(i, vec![4, 7, 8]);
        assert_eq!(s, vec![0.9, 0.9, 0.6]);
    }

    #[test]
    fn matches_a_full_sort_for_every_k() {
        // Many ties and many compactions.
        let cands: Vec<(f32, u32)> = (0..500u32)
            .map(|j| (((j * 37) % 23) as f32 * 0.1, j))
            .collect();
        let mut want = cands.clone();
        want.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for k in [1, 2, 5, 64, 499, 500] {
            let (i, s) = pushed(k, &cands).into_parts();
            assert_eq!(
                i,
                want[..k].iter().map(|c| c.1).collect::<Vec<_>>(),
                "k = {k}"
            );
            assert_eq!(
                s,
                want[..k].iter().map(|c| c.0).collect::<Vec<_>>(),
                "k = {k}"
            );
        }
    }

    #[test]
    fn unique_lists_keep_each_index_once_with_its_largest_value() {
        // every index offered three times with values that differ slightly
        // (as one pair computed in differently shaped tiles), in many orders
        let mut cands: Vec<(f32, u32)> = Vec::new();
        for j in 0..60u32 {
            let base = ((j * 13) % 17) as f32 * 0.05;
            for e in [0.0_f32, 1e-7, -1e-7] {
                cands.push((base + e, j));
            }
        }
        let mut want: Vec<(f32, u32)> = (0..60u32)
            .map(|j| {
                let best = cands
                    .iter()
                    .filter(|c| c.1 == j)
                    .map(|c| c.0)
                    .fold(f32::NEG_INFINITY, f32::max);
                (best, j)
            })
            .collect();
        want.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for k in [1, 4, 10, 60] {
            for rot in [0, 7, 91] {
                let mut order = cands.clone();
                let len = order.len();
                order.rotate_left(rot % len);
                if rot == 91 {
                    order.reverse();
                }
                // split over two "threads", merged
                let (a, b) = order.split_at(order.len() / 3);
                let mut ta = TopK::new(1, k);
                let mut tb = TopK::new(1, k);
                for &(s, j) in a {
                    ta.push_unique(0, s, j);
                }
                for &(s, j) in b {
                    tb.push_unique(0, s, j);
                }
                let mut total = TopK::new(1, k);
                total.merge_unique(&ta);
                total.merge_unique(&tb);
                let (i, v) = total.into_parts();
                assert_eq!(
                    i,
                    want[..k].iter().map(|c| c.1).collect::<Vec<_>>(),
                    "k {k}"
                );
                assert_eq!(
                    v,
                    want[..k].iter().map(|c| c.0).collect::<Vec<_>>(),
                    "k {k}"
                );
            }
        }
    }

    #[test]
    fn merge_is_order_independent() {
        let cands: Vec<(f32, u32)> = (0..40u32).map(|j| (((j * 7) % 11) as f32, j)).collect();
        let (even, odd): (Vec<_>, Vec<_>) = cands.iter().partition(|c| c.1 % 2 == 0);
        let a = pushed(4, &even);
        let b = pushed(4, &odd);
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        let all = pushed(4, &cands);
        assert_eq!(ab.into_parts(), ba.clone().into_parts());
        assert_eq!(ba.into_parts(), all.into_parts());
    }
}
