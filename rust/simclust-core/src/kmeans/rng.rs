//! A small seeded generator (SplitMix64): deterministic, portable, no
//! dependency. Quality is ample for seeding and sampling.

/// SplitMix64 (Steele, Lea and Flood 2014): a 64-bit state advanced by the
/// golden-ratio increment, each output a bijective mix of the state.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// An independent stream for run `stream` of seed `seed` (the `n_init` runs).
    pub(crate) fn stream(seed: u64, stream: u64) -> Self {
        Self::new(mix(seed ^ mix(stream.wrapping_add(1).wrapping_mul(GOLDEN))))
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (`n >= 1`; multiply-high, bias below 2^-40 for any
    /// realistic `n`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// `m` distinct indices of `0..n`, uniformly at random, in the order drawn
    /// (a partial Fisher-Yates shuffle). Requires `m <= n`.
    pub(crate) fn sample_distinct(&mut self, n: usize, m: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        for i in 0..m.min(n) {
            let j = i + self.below(n - i);
            idx.swap(i, j);
        }
        idx.truncate(m.min(n));
        idx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible_and_in_range() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
            let u = a.next_f64();
            assert!((0.0..1.0).contains(&u));
            assert!(a.below(13) < 13);
            b.next_f64();
            b.below(13);
        }
        assert_ne!(
            SplitMix64::stream(0, 0).next_u64(),
            SplitMix64::stream(0, 1).next_u64()
        );
    }

    #[test]
    fn distinct_samples() {
        let mut r = SplitMix64::new(3);
        let mut s = r.sample_distinct(50, 20);
        assert_eq!(s.len(), 20);
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 20);
        assert!(s.iter().all(|&i| i < 50));
        assert_eq!(r.sample_distinct(5, 5).len(), 5);
    }
}
