//! Fixed-size top-k lists, one per row, under a total order: higher
//! similarity first, ties broken by the lower index. Because the order is
//! total, the top-k of a set does not depend on the order candidates arrive
//! in, which is what makes the parallel kernels deterministic.

/// Marks an empty slot (never a valid row index: N <= u32::MAX).
const EMPTY: u32 = u32::MAX;

/// `k` best `(similarity, index)` candidates for each of `n` rows.
#[derive(Debug, Clone)]
pub(crate) struct TopK {
    k: usize,
    sims: Vec<f32>,
    idx: Vec<u32>,
}

/// Whether `(s, j)` ranks before `(t, i)`.
#[inline(always)]
fn better(s: f32, j: u32, t: f32, i: u32) -> bool {
    s > t || (s == t && j < i)
}

impl TopK {
    /// Empty lists for `n` rows.
    pub(crate) fn new(n: usize, k: usize) -> Self {
        Self {
            k,
            sims: vec![f32::NEG_INFINITY; n * k],
            idx: vec![EMPTY; n * k],
        }
    }

    /// The similarity of the worst kept candidate of `row` (`-inf` while the
    /// list is not full): a candidate below it can be skipped.
    #[inline(always)]
    pub(crate) fn worst(&self, row: usize) -> f32 {
        self.sims[row * self.k + self.k - 1]
    }

    /// Offers candidate `(s, j)` to `row`'s list.
    #[inline]
    pub(crate) fn push(&mut self, row: usize, s: f32, j: u32) {
        let k = self.k;
        let sims = &mut self.sims[row * k..(row + 1) * k];
        let idx = &mut self.idx[row * k..(row + 1) * k];
        if !better(s, j, sims[k - 1], idx[k - 1]) {
            return;
        }
        let mut p = k - 1;
        while p > 0 && better(s, j, sims[p - 1], idx[p - 1]) {
            sims[p] = sims[p - 1];
            idx[p] = idx[p - 1];
            p -= 1;
        }
        sims[p] = s;
        idx[p] = j;
    }

    /// Offers every candidate of `other` (same shape) to these lists.
    pub(crate) fn merge(&mut self, other: &TopK) {
        let k = self.k;
        for (row, (s, i)) in other
            .sims
            .chunks_exact(k)
            .zip(other.idx.chunks_exact(k))
            .enumerate()
        {
            for (&s, &i) in s.iter().zip(i) {
                if i == EMPTY {
                    break;
                }
                self.push(row, s, i);
            }
        }
    }

    /// `(indices, similarities)`, row-major `n x k`.
    pub(crate) fn into_parts(self) -> (Vec<u32>, Vec<f32>) {
        (self.idx, self.sims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_best_with_index_ties() {
        let mut t = TopK::new(1, 3);
        for (s, j) in [(0.5, 9), (0.9, 4), (0.5, 2), (0.1, 0), (0.9, 7), (0.5, 1)] {
            t.push(0, s, j);
        }
        let (i, s) = t.into_parts();
        assert_eq!(i, vec![4, 7, 1]);
        assert_eq!(s, vec![0.9, 0.9, 0.5]);
    }

    #[test]
    fn merge_is_order_independent() {
        let cands = [(0.3, 5), (0.8, 1), (0.3, 2), (0.7, 3), (0.8, 0), (0.2, 4)];
        let mut a = TopK::new(1, 4);
        let mut b = TopK::new(1, 4);
        for (n, &(s, j)) in cands.iter().enumerate() {
            if n % 2 == 0 {
                a.push(0, s, j);
            } else {
                b.push(0, s, j);
            }
        }
        let mut ab = a.clone();
        ab.merge(&b);
        b.merge(&a);
        assert_eq!(ab.into_parts(), b.into_parts());
    }
}
