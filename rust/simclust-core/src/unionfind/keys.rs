//! Order-preserving integer keys of similarities and a radix sort by them.

// ---------------------------------------------------------------------------
// Sort keys
// ---------------------------------------------------------------------------

/// Order-preserving map of `f32` to `u32`: `a.total_cmp(&b)` equals
/// `key(a).cmp(&key(b))`.
#[inline]
pub(super) fn f32_key(x: f32) -> u32 {
    let b = x.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// Inverse of [`f32_key`].
#[inline]
pub(super) fn key_f32(k: u32) -> f32 {
    f32::from_bits(if k & 0x8000_0000 != 0 {
        k & 0x7fff_ffff
    } else {
        !k
    })
}

/// Stable LSD radix sort of `v` by the first field, in 11-bit digits; a
/// digit that is the same for every element costs no pass.
pub(super) fn radix_sort_by_first(v: &mut Vec<(u32, u32, u32)>) {
    const BITS: u32 = 11;
    const RADIX: usize = 1 << BITS;
    const PASSES: usize = 3;
    let digit = |k: u32, p: usize| ((k >> (BITS as usize * p)) as usize) & (RADIX - 1);
    let Some(&(k0, _, _)) = v.first() else {
        return;
    };
    let mut hist = vec![[0usize; RADIX]; PASSES];
    for &(k, _, _) in v.iter() {
        for (p, h) in hist.iter_mut().enumerate() {
            h[digit(k, p)] += 1;
        }
    }
    let mut buf = Vec::new();
    for (p, h) in hist.iter_mut().enumerate() {
        if h[digit(k0, p)] == v.len() {
            continue;
        }
        let mut sum = 0;
        for c in h.iter_mut() {
            (*c, sum) = (sum, sum + *c);
        }
        buf.resize(v.len(), (0, 0, 0));
        for &x in v.iter() {
            let slot = &mut h[digit(x.0, p)];
            buf[*slot] = x;
            *slot += 1;
        }
        std::mem::swap(v, &mut buf);
    }
}
