//! The hot inner loops of k-means. Each kernel is written once, generic over
//! the vector primitives ([`Lanes`]: AVX2+FMA intrinsics or plain Rust),
//! compiled for both and dispatched once per call on the detected CPU. Both
//! primitives evaluate the same operations in the same order (`mul_add` is
//! a correctly rounded fused multiply-add either way), so results never
//! depend on the path taken.

/// Lanes of the accumulators (two AVX2 registers).
const L: usize = 16;

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    !crate::simd::forced_portable()
        && std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
}

/// The vector primitives the kernels are written in. Every implementation
/// computes the same lanes with the same operations in the same order.
pub(crate) trait Lanes {
    /// `Σ a_i b_i` over the common length.
    fn dot(a: &[f32], b: &[f32]) -> f32;
    /// `Σ (a_i - b_i)²` over the common length.
    fn sq_dist(a: &[f32], b: &[f32]) -> f32;
    /// Whether `a_i - b_i > t` for some `i < 16` (`a`, `b` of length >= 16).
    fn any_above(a: &[f32], b: &[f32], t: f32) -> bool;
}

/// Plain Rust lanes, for any target.
#[derive(Debug)]
pub(crate) struct Portable;

/// AVX2+FMA intrinsics. Only used inside the `fast` body of
/// [`multiversion!`], which runs after the CPU was checked for both.
#[cfg(target_arch = "x86_64")]
#[derive(Debug)]
struct Avx2;

/// Defines `fn name(..)` whose body, generic over `S: Lanes`, runs with
/// AVX2+FMA (`S = Avx2`, the whole body compiled with those features) when
/// the CPU has them, else with `S = Portable`.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident<$s:ident>($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn imp<$s: Lanes>($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn fast($($arg: $ty),*) $(-> $ret)? {
                    imp::<Avx2>($($arg),*)
                }
                if has_avx2_fma() {
                    // SAFETY: `fast` only enables AVX2 and FMA, and the CPU
                    // has both (checked at run time just above).
                    return unsafe { fast($($arg),*) };
                }
            }
            imp::<Portable>($($arg),*)
        }
    };
}

/// Sum of the lanes in a fixed pairwise order.
#[inline(always)]
fn hsum(mut acc: [f32; L]) -> f32 {
    let mut w = L / 2;
    while w > 0 {
        for l in 0..w {
            acc[l] += acc[l + w];
        }
        w /= 2;
    }
    acc[0]
}

/// The common end of both reductions: lanes `s0 + s1`, pairwise sum, tail.
#[inline(always)]
fn finish(mut s0: [f32; L], s1: [f32; L], tail: f32) -> f32 {
    for l in 0..L {
        s0[l] += s1[l];
    }
    hsum(s0) + tail
}

impl Lanes for Portable {
    #[inline(always)]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let (mut s0, mut s1) = ([0.0_f32; L], [0.0_f32; L]);
        let ca = a.chunks_exact(2 * L);
        let cb = b.chunks_exact(2 * L);
        let (ta, tb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for l in 0..L {
                s0[l] = x[l].mul_add(y[l], s0[l]);
                s1[l] = x[L + l].mul_add(y[L + l], s1[l]);
            }
        }
        let mut tail = 0.0_f32;
        for (x, y) in ta.iter().zip(tb) {
            tail = x.mul_add(*y, tail);
        }
        finish(s0, s1, tail)
    }

    #[inline(always)]
    fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let (mut s0, mut s1) = ([0.0_f32; L], [0.0_f32; L]);
        let ca = a.chunks_exact(2 * L);
        let cb = b.chunks_exact(2 * L);
        let (ta, tb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for l in 0..L {
                let t = x[l] - y[l];
                s0[l] = t.mul_add(t, s0[l]);
                let u = x[L + l] - y[L + l];
                s1[l] = u.mul_add(u, s1[l]);
            }
        }
        let mut tail = 0.0_f32;
        for (x, y) in ta.iter().zip(tb) {
            let t = x - y;
            tail = t.mul_add(t, tail);
        }
        finish(s0, s1, tail)
    }

    #[inline(always)]
    fn any_above(a: &[f32], b: &[f32], t: f32) -> bool {
        let mut hit = false;
        for (x, y) in a[..L].iter().zip(&b[..L]) {
            hit |= x - y > t;
        }
        hit
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256, _mm256_cmp_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_movemask_ps, _mm256_or_ps,
        _mm256_set1_ps, _mm256_setzero_ps, _mm256_storeu_ps, _mm256_sub_ps, _CMP_GT_OQ,
    };

    use super::{finish, L};

    /// [`super::Portable`]'s lanes with intrinsics: `Σ (a - b)²` if `sub`,
    /// else `Σ a b`. Lane `l` of `s0` / `s1` accumulates elements `32 i + l`
    /// / `32 i + 16 + l`, exactly as the portable loop.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn lanes(a: &[f32], b: &[f32], sub: bool) -> f32 {
        let n = a.len().min(b.len());
        let chunks = n / (2 * L);
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        // SAFETY: every load reads 8 floats at offset o + 8q + 8 <= chunks *
        // 32 <= n, inside both slices; the stores write 8 floats into local
        // arrays of 16 at offsets 0 and 8.
        unsafe {
            let z = _mm256_setzero_ps();
            let mut acc: [__m256; 4] = [z, z, z, z];
            for i in 0..chunks {
                let o = i * 2 * L;
                for (q, s) in acc.iter_mut().enumerate() {
                    let x = _mm256_loadu_ps(pa.add(o + 8 * q));
                    let y = _mm256_loadu_ps(pb.add(o + 8 * q));
                    *s = if sub {
                        let t = _mm256_sub_ps(x, y);
                        _mm256_fmadd_ps(t, t, *s)
                    } else {
                        _mm256_fmadd_ps(x, y, *s)
                    };
                }
            }
            let (mut s0, mut s1) = ([0.0_f32; L], [0.0_f32; L]);
            _mm256_storeu_ps(s0.as_mut_ptr(), acc[0]);
            _mm256_storeu_ps(s0.as_mut_ptr().add(8), acc[1]);
            _mm256_storeu_ps(s1.as_mut_ptr(), acc[2]);
            _mm256_storeu_ps(s1.as_mut_ptr().add(8), acc[3]);
            let mut tail = 0.0_f32;
            for (x, y) in a[chunks * 2 * L..n].iter().zip(&b[chunks * 2 * L..n]) {
                if sub {
                    let t = x - y;
                    tail = t.mul_add(t, tail);
                } else {
                    tail = x.mul_add(*y, tail);
                }
            }
            finish(s0, s1, tail)
        }
    }

    /// AVX2 `any(a_i - b_i > t)` over the first 16 lanes.
    ///
    /// # Safety
    /// The CPU must have AVX2; `a` and `b` must hold at least 16 values.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn any_above(a: &[f32], b: &[f32], t: f32) -> bool {
        assert!(a.len() >= L && b.len() >= L);
        // SAFETY: the loads read floats 0..16 of both slices (asserted above).
        unsafe {
            let tv = _mm256_set1_ps(t);
            let d0 = _mm256_sub_ps(_mm256_loadu_ps(a.as_ptr()), _mm256_loadu_ps(b.as_ptr()));
            let d1 = _mm256_sub_ps(
                _mm256_loadu_ps(a.as_ptr().add(8)),
                _mm256_loadu_ps(b.as_ptr().add(8)),
            );
            let m = _mm256_or_ps(
                _mm256_cmp_ps::<_CMP_GT_OQ>(d0, tv),
                _mm256_cmp_ps::<_CMP_GT_OQ>(d1, tv),
            );
            _mm256_movemask_ps(m) != 0
        }
    }

    /// AVX2 `Σ a_i b_i`.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: the caller guarantees AVX2 and FMA.
        unsafe { lanes(a, b, false) }
    }

    /// AVX2 `Σ (a_i - b_i)²`.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: the caller guarantees AVX2 and FMA.
        unsafe { lanes(a, b, true) }
    }
}

#[cfg(target_arch = "x86_64")]
impl Lanes for Avx2 {
    #[inline(always)]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: `Avx2` is only used in bodies that run after the CPU was
        // found to have AVX2 and FMA (see `multiversion!`).
        unsafe { avx2::dot(a, b) }
    }

    #[inline(always)]
    fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: as for `dot`.
        unsafe { avx2::sq_dist(a, b) }
    }

    #[inline(always)]
    fn any_above(a: &[f32], b: &[f32], t: f32) -> bool {
        // SAFETY: as for `dot`; the lengths are asserted inside.
        unsafe { avx2::any_above(a, b, t) }
    }
}

#[inline(always)]
fn fmax(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

#[inline(always)]
fn fmin(a: f32, b: f32) -> f32 {
    if a < b {
        a
    } else {
        b
    }
}

multiversion! {
    /// `Σ (a_i - b_i)²`: the squared Euclidean distance.
    pub(crate) fn sq_dist<S>(a: &[f32], b: &[f32]) -> f32 {
        S::sq_dist(a, b)
    }
}

multiversion! {
    /// Squared norms of the `d`-dimensional rows of `x`, into `out`.
    pub(crate) fn sq_norms<S>(x: &[f32], d: usize, out: &mut [f32]) {
        for (o, row) in out.iter_mut().zip(x.chunks_exact(d)) {
            *o = S::dot(row, row);
        }
    }
}

/// Runner-up centroids tracked per row, each with its own distance bound.
pub(crate) const TRACK: usize = 8;
/// Scores kept per row by the full search: the best, the [`TRACK`]
/// runner-ups, and the next one (a bound on all the others).
pub(crate) const KEEP: usize = TRACK + 2;

/// One kept score: `s` of column `j`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scored {
    /// Score `x·c_j - |c_j|²/2` (higher is closer).
    pub s: f32,
    /// Centroid index (`u32::MAX`: empty slot).
    pub j: u32,
}

/// The [`KEEP`] highest scores of a row, best first; ties keep the lower
/// column first. Empty slots hold `-inf`.
pub(crate) type TopScores = [Scored; KEEP];

/// No score yet.
pub(crate) const EMPTY_TOP: TopScores = [Scored {
    s: f32::NEG_INFINITY,
    j: u32::MAX,
}; KEEP];

/// Offers `(s, j)` to `top`; `j` is larger than every index already there.
#[inline(always)]
fn offer(top: &mut TopScores, s: f32, j: u32) {
    if s <= top[KEEP - 1].s || s.is_nan() {
        return;
    }
    let mut pos = KEEP - 1;
    while pos > 0 && top[pos - 1].s < s {
        top[pos] = top[pos - 1];
        pos -= 1;
    }
    top[pos] = Scored { s, j };
}

/// Folds the scores `row[c] - h[c]` of columns `j0 + c` into `top`.
#[inline(always)]
fn top_row<S: Lanes>(row: &[f32], h: &[f32], j0: usize, top: &mut TopScores) {
    let n = row.len().min(h.len());
    let (row, h) = (&row[..n], &h[..n]);
    let full = n - n % L;
    let mut c = 0;
    while c < full {
        if S::any_above(&row[c..c + L], &h[c..c + L], top[KEEP - 1].s) {
            for j in c..c + L {
                offer(top, row[j] - h[j], (j0 + j) as u32);
            }
        }
        c += L;
    }
    for j in full..n {
        offer(top, row[j] - h[j], (j0 + j) as u32);
    }
}

multiversion! {
    /// Folds the `m x cb` score tile `tile` (columns `j0..j0 + cb` of the
    /// centroids, `h` their offsets `|c|²/2`) into the kept scores of each row.
    pub(crate) fn top_tile<S>(tile: &[f32], m: usize, cb: usize, h: &[f32], j0: usize, tops: &mut [TopScores]) {
        for (row, top) in tile.chunks_exact(cb).take(m).zip(tops.iter_mut()) {
            top_row::<S>(row, h, j0, top);
        }
    }
}

/// Relative rounding margin of the bound tests (a GEMM score carries a few
/// ulps of `|x|² + |c|²`; bounds closer than this are recomputed).
pub(crate) const MARGIN: f32 = 64.0 * f32::EPSILON;

/// Read-only inputs of [`screen`]: one block of rows and the model.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScreenIn<'a> {
    /// The block's rows, row-major.
    pub x: &'a [f32],
    /// Dimension.
    pub d: usize,
    /// Squared norms of the block's rows.
    pub nx2: &'a [f32],
    /// Centroids, `k x d`.
    pub c: &'a [f32],
    /// Largest squared centroid norm (scales the rounding margin).
    pub cmax2: f32,
    /// Index of the block's first row.
    pub first: usize,
}

/// Mutable per-row state of one block (see `Assign` in the parent module).
#[derive(Debug)]
pub(crate) struct RowsMut<'a> {
    /// Label of each row (`-1`: none yet).
    pub labels: &'a mut [i64],
    /// Exact squared distance of each row to its centroid.
    pub d2: &'a mut [f32],
    /// Lower bound on the distance to every centroid neither the row's nor tracked.
    pub lb_rest: &'a mut [f32],
    /// Tracked runner-up centroids, [`TRACK`] per row (`u32::MAX`: none).
    pub cand: &'a mut [u32],
    /// Lower bound on the distance to each tracked centroid.
    pub lb_cand: &'a mut [f32],
}

multiversion! {
    /// Screening pass of an assignment step over one block. For each row
    /// with a label: its exact squared distance to its centroid; if that is
    /// below every bound (with a rounding margin) the label stands. Else
    /// the exact distances to the tracked runner-ups are computed; if the
    /// closest of those and the current centroid is below the bound on all
    /// the other centroids, the row takes it (the others become the tracked
    /// runner-ups, with exact distances). Any other row is pushed (as a
    /// global index) to `gather` for a full search.
    pub(crate) fn screen<S>(inp: ScreenIn<'_>, st: RowsMut<'_>, gather: &mut Vec<u32>) {
        let d = inp.d;
        let row_of = |j: usize| &inp.c[j * d..(j + 1) * d];
        for (r, x) in inp.x.chunks_exact(d).enumerate() {
            let lab = st.labels[r];
            if lab < 0 {
                gather.push((inp.first + r) as u32);
                continue;
            }
            let own = lab as usize;
            let dd = S::sq_dist(x, row_of(own));
            st.d2[r] = dd;
            let margin = MARGIN * (inp.nx2[r] + inp.cmax2);
            let rest = st.lb_rest[r];
            let cand = &mut st.cand[r * TRACK..(r + 1) * TRACK];
            let lbc = &mut st.lb_cand[r * TRACK..(r + 1) * TRACK];
            let lb_min = lbc.iter().fold(rest, |m, &v| fmin(m, v));
            if dd + margin < lb_min * lb_min {
                continue;
            }
            // Local search among the current and the tracked centroids.
            let mut exact = [f32::INFINITY; TRACK];
            let (mut best, mut best_j) = (dd, own as u32);
            for t in 0..TRACK {
                let j = cand[t];
                if j == u32::MAX {
                    continue;
                }
                let e = S::sq_dist(x, row_of(j as usize));
                exact[t] = e;
                if e < best || (e == best && j < best_j) {
                    best = e;
                    best_j = j;
                }
            }
            if best + margin >= rest * rest {
                gather.push((inp.first + r) as u32);
                continue;
            }
            for t in 0..TRACK {
                if cand[t] == best_j {
                    cand[t] = own as u32;
                    exact[t] = dd;
                }
                lbc[t] = exact[t].sqrt();
            }
            st.labels[r] = i64::from(best_j);
            st.d2[r] = best;
        }
    }
}

/// Inputs of [`kpp_eval`]: a chunk of sample rows and the candidates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KppIn<'a> {
    /// The chunk's rows, row-major.
    pub x: &'a [f32],
    /// Dimension.
    pub d: usize,
    /// Squared norms of the chunk's rows.
    pub nx2: &'a [f32],
    /// Current squared distance of each row to its closest center.
    pub d2: &'a [f32],
    /// Index (in chosen order) of each row's closest center.
    pub owner: &'a [u32],
    /// Candidate rows, `t x d`.
    pub cands: &'a [f32],
    /// Squared norms of the candidates.
    pub cn2: &'a [f32],
    /// Squared distances candidate-to-center, `t x nc`.
    pub cc2: &'a [f32],
    /// Number of centers chosen so far.
    pub nc: usize,
}

multiversion! {
    /// k-means++ candidate evaluation over one chunk: for each row and
    /// candidate, the squared distance goes to `cache[row * t + cand]`
    /// (`+inf` when the triangle inequality proves the candidate cannot be
    /// closer than the row's current center: `d(center, cand) >= 2 d(row,
    /// center)`), and `gains[cand]` accumulates the decrease of the
    /// potential. Returns the number of distances computed.
    pub(crate) fn kpp_eval<S>(inp: KppIn<'_>, cache: &mut [f32], gains: &mut [f64]) -> u64 {
        let d = inp.d;
        let t = inp.cn2.len();
        let mut computed = 0_u64;
        for (r, row) in inp.x.chunks_exact(d).enumerate() {
            let cur = inp.d2[r];
            let own = inp.owner[r] as usize;
            for c in 0..t {
                let slot = &mut cache[r * t + c];
                if inp.cc2[c * inp.nc + own] >= 4.0 * cur {
                    *slot = f32::INFINITY;
                    continue;
                }
                computed += 1;
                let dd = fmax(
                    0.0,
                    inp.nx2[r] + inp.cn2[c] - 2.0 * S::dot(row, &inp.cands[c * d..(c + 1) * d]),
                );
                *slot = dd;
                if dd < cur {
                    gains[c] += f64::from(cur - dd);
                }
            }
        }
        computed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_kernels_match_naive() {
        let a: Vec<f32> = (0..77).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..77).map(|i| (i as f32 * 0.11).cos()).collect();
        let d: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        let p: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((sq_dist(&a, &b) - d).abs() < 1e-4);
        assert!((Portable::dot(&a, &b) - p).abs() < 1e-4);
        #[cfg(target_arch = "x86_64")]
        if has_avx2_fma() {
            // The two paths agree bit for bit, also on the tail.
            for len in [0, 5, 32, 77] {
                assert_eq!(
                    Portable::dot(&a[..len], &b[..len]).to_bits(),
                    Avx2::dot(&a[..len], &b[..len]).to_bits()
                );
                assert_eq!(
                    Portable::sq_dist(&a[..len], &b[..len]).to_bits(),
                    Avx2::sq_dist(&a[..len], &b[..len]).to_bits()
                );
            }
        }
        assert_eq!(sq_dist(&[], &[]), 0.0);
    }

    proptest! {
        #[test]
        fn kept_scores_equal_a_sort(vals in proptest::collection::vec(-8i32..8, 1..80), split in 0usize..80) {
            let row: Vec<f32> = vals.iter().map(|&v| v as f32 * 0.5).collect();
            let h: Vec<f32> = (0..row.len()).map(|j| (j % 3) as f32 * 0.25).collect();
            let mut want: Vec<Scored> = row
                .iter()
                .zip(&h)
                .enumerate()
                .map(|(j, (r, hh))| Scored { s: r - hh, j: j as u32 })
                .collect();
            want.sort_by(|a, b| b.s.total_cmp(&a.s).then(a.j.cmp(&b.j)));
            want.resize(KEEP, EMPTY_TOP[0]);
            // Two column blocks folded one after the other.
            let s = split.min(row.len());
            let mut top = [EMPTY_TOP];
            if s > 0 {
                top_tile(&row[..s], 1, s, &h[..s], 0, &mut top);
            }
            if s < row.len() {
                top_tile(&row[s..], 1, row.len() - s, &h[s..], s, &mut top);
            }
            prop_assert_eq!(&top[0][..], &want[..]);
        }
    }
}
