//! Seeded test data shared by the unit tests: a tiny LCG, independent of
//! the code under test.

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
