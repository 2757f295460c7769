//! Seeded test data shared by the unit tests: a tiny LCG, independent of
//! the code under test; and checks several tests make.

use crate::similarity::Neighbors;

/// `len` values uniform in `[lo, lo + 1)`, from a 64-bit LCG seeded with `seed`.
pub(crate) fn uniform(len: usize, seed: u64, lo: f32) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) + lo
        })
        .collect()
}

/// `n` rows around `c` random directions (row `i` around direction
/// `i % c`), each coordinate displaced by up to `spread / 2`.
pub(crate) fn clustered(n: usize, d: usize, c: usize, spread: f32, seed: u64) -> Vec<f32> {
    let centres = uniform(c * d, seed, -0.5);
    let z = uniform(n * d, seed + 1, -0.5);
    (0..n * d)
        .map(|i| centres[((i / d) % c) * d + i % d] + spread * z[i])
        .collect()
}

/// Asserts that `row` of the lists `nn`, one of the exact `copies`
/// (ascending) of a row, lists the lowest other copies at similarity
/// exactly 1 (there being at least `k` others).
pub(crate) fn assert_lists_copies(nn: &Neighbors, row: usize, copies: &[u32]) {
    let k = nn.k;
    let want: Vec<u32> = copies
        .iter()
        .copied()
        .filter(|&c| c as usize != row)
        .take(k)
        .collect();
    assert_eq!(want.len(), k);
    assert_eq!(nn.indices[row * k..(row + 1) * k], want[..]);
    assert!(nn.similarities[row * k..(row + 1) * k]
        .iter()
        .all(|&s| s == 1.0));
}
