# ruff: noqa: N803, N806  (X, Y, S, C: the field's matrix notation)
"""Seeded data generators and independent numpy/scipy references for the tests.

Nothing here imports simclust: every expected value is computed from scratch
(float64 numpy brute force, scipy.sparse.csgraph).
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

# Similarities come from a float32 GEMM: compare them with this absolute tolerance.
ATOL = 1e-5
# Reference similarities closer than this are treated as (possible) ties.
TIE_TOL = 1e-5

# Sizes chosen so that no block size (powers of two, multiples of 8/16/64...)
# divides them all; block edges get exercised.
SIZES_N = [1, 2, 7, 513, 1000, 2500]
SIZES_D = [1, 3, 64, 384]


# --------------------------------------------------------------------------- data


def clustered_embeddings(
    seed: int,
    n: int,
    d: int,
    *,
    n_clusters: int | None = None,
    noise: float = 0.6,
    dup_frac: float = 0.02,
    near_dup_frac: float = 0.03,
    outlier_frac: float = 0.03,
) -> np.ndarray:
    """Realistic embeddings: unit-sphere centres + per-cluster noise, rows of
    random positive scale, some exact duplicates, near-duplicates and outliers."""
    rng = np.random.default_rng(seed)
    if n_clusters is None:
        n_clusters = max(1, int(np.sqrt(n) / 2))
    centres = rng.standard_normal((n_clusters, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    spread = noise * rng.uniform(0.3, 1.5, n_clusters)  # per-cluster noise level
    assign = rng.integers(0, n_clusters, n)
    X = centres[assign] + spread[assign, None] * rng.standard_normal((n, d)) / np.sqrt(d)
    n_out = int(outlier_frac * n)
    if n_out:
        rows = rng.choice(n, n_out, replace=False)
        X[rows] = rng.standard_normal((n_out, d))
    X *= np.exp(rng.uniform(-3, 3, n))[:, None]  # cosine is scale invariant
    n_near = int(near_dup_frac * n)
    if n_near and n > 1:
        src = rng.integers(0, n, n_near)
        dst = rng.integers(0, n, n_near)
        X[dst] = X[src] * (1 + 1e-4 * rng.standard_normal((n_near, d)))
    n_dup = int(dup_frac * n)
    if n_dup and n > 1:
        src = rng.integers(0, n, n_dup)
        dst = rng.integers(0, n, n_dup)
        X[dst] = X[src]
    X = X.astype(np.float32)
    # a (float32-rounded) row can only be zero with astronomically bad luck
    assert (np.abs(X).sum(axis=1) > 0).all()
    return X


def gaussian_embeddings(seed: int, n: int, d: int) -> np.ndarray:
    """Plain isotropic Gaussian rows (no duplicates), float32."""
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def exact_embeddings(seed: int, n: int, d: int = 16, *, n_dups: int = 0) -> np.ndarray:
    """Rows whose cosine similarities are exact in float32 (and float64).

    Each row has 1, 4 or 16 non-zeros (or d of them when d is 16/64) equal to
    +-1, times a power of two; norms are powers of two, so normalised entries
    and all dot products are exact dyadic rationals. Lots of exact ties.
    """
    assert d in (16, 64)
    rng = np.random.default_rng(seed)
    counts = [1, 4, 16] + ([64] if d == 64 else [])
    X = np.zeros((n, d))
    for i in range(n):
        nnz = counts[rng.integers(0, len(counts))]
        cols = rng.choice(d, nnz, replace=False)
        X[i, cols] = rng.choice([-1.0, 1.0], nnz)
    X *= (2.0 ** rng.integers(-4, 5, n))[:, None]
    if n_dups and n > 1:
        src = rng.integers(0, n, n_dups)
        dst = rng.integers(0, n, n_dups)
        half = n_dups // 2
        X[dst[:half]] = X[src[:half]]  # exact duplicates
        X[dst[half:]] = -X[src[half:]]  # antipodes
    return X.astype(np.float32)


# --------------------------------------------------------------------- similarity


def ref_normalize(X) -> np.ndarray:
    """Unit rows, float64."""
    X = np.asarray(X, dtype=np.float64)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def ref_sims(X, Y=None) -> np.ndarray:
    """Full float64 cosine similarity matrix X vs Y (or X vs X)."""
    Xn = ref_normalize(X)
    Yn = Xn if Y is None else ref_normalize(Y)
    return Xn @ Yn.T


@functools.lru_cache(maxsize=8)
def cached_clustered(seed: int, n: int, d: int):
    """(X, S) for clustered data; S is the float64 reference similarity matrix."""
    X = clustered_embeddings(seed, n, d)
    X.setflags(write=False)
    S = ref_sims(X)
    S.setflags(write=False)
    return X, S


def ref_knn_order(S: np.ndarray, exclude_self: bool, top: int | None = None):
    """Per row: candidate columns by similarity descending, ties by lower index.

    Returns (order, sorted_sims), restricted to the first ``top`` columns when
    given (then ties at the cut are resolved arbitrarily; callers only use
    the cut where it is not a near-tie). With exclude_self the diagonal
    has similarity -inf.
    """
    S = np.array(S, dtype=np.float64, copy=True)
    m = S.shape[1]
    if exclude_self:
        np.fill_diagonal(S, -np.inf)
    if top is None or 4 * top >= m:
        order = np.argsort(-S, axis=1, kind="stable")[:, :top]
        return order, np.take_along_axis(S, order, axis=1)
    part = np.argpartition(-S, top - 1, axis=1)[:, :top]
    vals = np.take_along_axis(S, part, axis=1)
    o = np.lexsort((part, -vals), axis=1)
    order = np.take_along_axis(part, o, axis=1)
    return order, np.take_along_axis(S, order, axis=1)


def check_knn(idx, sim, S, k: int, *, exclude_self: bool, exact: bool = False):
    """Check a kNN result against the float64 reference similarity matrix S.

    Indices are compared exactly only where the reference has no near-ties;
    with ``exact`` (dyadic data) everything is compared exactly.
    Returns the number of rows whose neighbour list was compared exactly.
    """
    n, m = S.shape
    assert isinstance(idx, np.ndarray) and isinstance(sim, np.ndarray)
    assert idx.dtype == np.uint32, idx.dtype
    assert sim.dtype == np.float32, sim.dtype
    assert idx.shape == (n, k) and sim.shape == (n, k), (idx.shape, sim.shape)
    ii = idx.astype(np.int64)
    assert (ii < m).all()
    # neighbours are distinct, self excluded in self-search
    if k > 1:
        assert (np.diff(np.sort(ii, axis=1), axis=1) != 0).all(), "repeated neighbour"
    if exclude_self:
        assert (ii != np.arange(n)[:, None]).all(), "self returned as a neighbour"
    # every reported similarity is the true similarity of the reported neighbour
    np.testing.assert_allclose(sim, np.take_along_axis(S, ii, axis=1), atol=ATOL, rtol=0)
    # rows sorted descending; exact ties broken by the lower index
    dsim = np.diff(sim.astype(np.float64), axis=1)
    assert (dsim <= 0).all(), "row not sorted by similarity descending"
    assert (np.diff(ii, axis=1)[dsim == 0] > 0).all(), "tie not broken by lower index"

    order, ssorted = ref_knn_order(S, exclude_self, top=None if exact else min(k + 1, m))
    # the k best similarities are the reference's k best
    np.testing.assert_allclose(sim, ssorted[:, :k], atol=ATOL, rtol=0)
    if exact:
        np.testing.assert_array_equal(sim, ssorted[:, :k].astype(np.float32))
        np.testing.assert_array_equal(ii, order[:, :k])
        return n
    # exact index check at positions whose reference similarity is isolated
    ext = np.empty((n, k + 2))
    ext[:, 0] = np.inf
    ext[:, 1 : k + 1] = ssorted[:, :k]
    ext[:, k + 1] = ssorted[:, k] if k < m else -np.inf
    above = ext[:, 0:k] - ext[:, 1 : k + 1]
    below = ext[:, 1 : k + 1] - ext[:, 2 : k + 2]
    isolated = (above > TIE_TOL) & (below > TIE_TOL)
    np.testing.assert_array_equal(ii[isolated], order[:, :k][isolated])
    # set check where the k-th / (k+1)-th boundary is clear
    boundary = below[:, k - 1] > TIE_TOL
    got = np.sort(ii[boundary], axis=1)
    want = np.sort(order[boundary, :k], axis=1)
    np.testing.assert_array_equal(got, want)
    return int(np.all(isolated, axis=1).sum())


# -------------------------------------------------------------------------- edges


def check_edge_arrays(src, dst, sim, n: int):
    """dtype/shape/order contract of an edge list; returns int64 (src, dst)."""
    for a, dt in ((src, np.uint32), (dst, np.uint32), (sim, np.float32)):
        assert isinstance(a, np.ndarray)
        assert a.dtype == dt, (a.dtype, dt)
        assert a.ndim == 1
    assert src.shape == dst.shape == sim.shape
    s = src.astype(np.int64)
    t = dst.astype(np.int64)
    assert (s < t).all(), "src < dst violated"
    assert (t < n).all(), "endpoint out of range"
    key = s * n + t
    assert (np.diff(key) > 0).all(), "edges not strictly sorted by (src, dst)"
    return s, t


def pair_keys(S_mask: np.ndarray) -> np.ndarray:
    """Sorted keys i*n+j of the upper-triangle True entries of an n x n mask."""
    n = S_mask.shape[0]
    i, j = np.nonzero(np.triu(S_mask, 1))
    return np.sort(i.astype(np.int64) * n + j)


def check_threshold_edges(src, dst, sim, S: np.ndarray, t: float, *, exact=False):
    """threshold_edges result vs the float64 reference matrix S."""
    n = S.shape[0]
    s, d = check_edge_arrays(src, dst, sim, n)
    ref = S[s, d]
    np.testing.assert_allclose(sim, ref, atol=ATOL, rtol=0)
    assert (sim >= np.float32(t)).all(), "returned similarity below threshold"
    got = s * n + d
    if exact:
        np.testing.assert_array_equal(got, pair_keys(S >= t))
        np.testing.assert_array_equal(sim, ref.astype(np.float32))
        return
    assert (ref >= t - TIE_TOL).all(), "edge with reference similarity below threshold"
    must = pair_keys(S >= t + TIE_TOL)
    missing = np.setdiff1d(must, got, assume_unique=True)
    assert missing.size == 0, (
        f"{missing.size} pairs above threshold missing, e.g. {divmod(int(missing[0]), n)}"
    )


def ref_knn_edges_exact(S: np.ndarray, k: int, t: float):
    """Exact reference of knn_edges for tie-exact data: keys i*n+j and sims."""
    n = S.shape[0]
    order, ssorted = ref_knn_order(S, exclude_self=True)
    rows = np.repeat(np.arange(n), k)
    cols = order[:, :k].ravel()
    keep = ssorted[:, :k].ravel() >= t
    a = np.minimum(rows, cols)[keep]
    b = np.maximum(rows, cols)[keep]
    keys = np.unique(a.astype(np.int64) * n + b)
    return keys, S[keys // n, keys % n]


def knn_edge_masks(S: np.ndarray, k: int):
    """(possible, sure) undirected kNN-pair masks of the reference, tolerant to near-ties.

    A pair is possible if one endpoint is within TIE_TOL of the other's k-th
    best similarity, sure if one endpoint beats the other's (k+1)-th best by
    more than TIE_TOL (so any float32 kernel must rank it in the top k).
    """
    n = S.shape[0]
    _, ssorted = ref_knn_order(S, exclude_self=True, top=min(k + 1, n))
    kth = ssorted[:, k - 1]
    nxt = ssorted[:, k] if k < n - 1 else np.full(n, -np.inf)
    Sx = np.array(S, copy=True)
    np.fill_diagonal(Sx, -np.inf)
    possible = Sx >= (kth - TIE_TOL)[:, None]
    sure = Sx > (nxt + TIE_TOL)[:, None]
    return possible | possible.T, sure | sure.T


def check_knn_edges(src, dst, sim, S: np.ndarray, masks, t: float):
    """knn_edges result vs the reference masks from knn_edge_masks.

    An edge may appear if it is a possible kNN pair with similarity
    >= t - TIE_TOL; it must appear if it is a sure pair with sim >= t + TIE_TOL.
    Returns the number of required edges.
    """
    n = S.shape[0]
    possible, sure = masks
    s, d = check_edge_arrays(src, dst, sim, n)
    np.testing.assert_allclose(sim, S[s, d], atol=ATOL, rtol=0)
    assert (sim >= np.float32(t)).all(), "returned similarity below threshold"
    assert possible[s, d].all(), "edge between points that are not kNN of each other"
    assert (S[s, d] >= t - TIE_TOL).all()
    must = pair_keys(sure & (S >= t + TIE_TOL))
    got = s * n + d
    missing = np.setdiff1d(must, got, assume_unique=True)
    assert missing.size == 0, f"{missing.size} kNN edges missing, e.g. {divmod(int(missing[0]), n)}"
    return must.size


# --------------------------------------------------------------------- components


def canonical(labels: np.ndarray) -> np.ndarray:
    """Relabel so components are numbered 0..C-1 by their smallest member."""
    labels = np.asarray(labels)
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inv.ravel()]


def ref_components(n: int, src, dst) -> np.ndarray:
    """scipy connected components, canonical numbering, int64."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    g = sp.coo_matrix((np.ones(src.size), (src, dst)), shape=(n, n)).tocsr()
    _, labels = connected_components(g, directed=False)
    return canonical(labels)


def ref_sweep(n: int, src, dst, sim, thresholds):
    """Per threshold (float32 comparison): (n_components, largest_component)."""
    sim = np.asarray(sim, dtype=np.float32)
    out = []
    for t in np.asarray(thresholds, dtype=np.float32):
        keep = sim >= t
        lab = ref_components(n, np.asarray(src)[keep], np.asarray(dst)[keep])
        sizes = np.bincount(lab)
        out.append((sizes.size, int(sizes.max())))
    return out


def ref_bridge(n: int, src, dst, sim, labels) -> np.ndarray:
    """Per cluster: min edge of the maximum spanning tree of its internal edges
    (scipy MST on 2 - sim, a decreasing positive transform); NaN for
    singletons and clusters not connected by internal edges."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    sim = np.asarray(sim, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    C = int(labels.max()) + 1 if labels.size else 0
    out = np.full(max(C, 0), np.nan, dtype=np.float32)
    for c in range(C):
        members = np.flatnonzero(labels == c)
        m = members.size
        if m < 2:
            continue
        inside = (labels[src] == c) & (labels[dst] == c) & (src != dst)
        if not inside.any():
            continue
        local = np.full(n, -1, dtype=np.int64)
        local[members] = np.arange(m)
        a = local[src[inside]]
        b = local[dst[inside]]
        lo, hi, w = np.minimum(a, b), np.maximum(a, b), sim[inside]
        # keep the strongest of parallel edges (coo would sum duplicates)
        o = np.lexsort((-w, hi, lo))
        lo, hi, w = lo[o], hi[o], w[o]
        first = np.ones(lo.size, dtype=bool)
        first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
        lo, hi, w = lo[first], hi[first], w[first]
        g = sp.coo_matrix((2.0 - w.astype(np.float64), (lo, hi)), shape=(m, m)).tocsr()
        if connected_components(g, directed=False)[0] != 1:
            continue
        tree = minimum_spanning_tree(g).tocoo()
        assert tree.nnz == m - 1
        best = dict(zip(zip(lo.tolist(), hi.tolist(), strict=True), w.tolist(), strict=True))
        tw = [
            best[(min(r, q), max(r, q))]
            for r, q in zip(tree.row.tolist(), tree.col.tolist(), strict=True)
        ]
        out[c] = np.float32(min(tw))
    return out


def random_graph(seed: int, n: int, e: int, *, weights: bool = False):
    """Random multigraph with self-loops, duplicates and both orientations."""
    rng = np.random.default_rng(seed)
    src = rng.integers(0, n, e).astype(np.uint32)
    dst = rng.integers(0, n, e).astype(np.uint32)
    n_special = e // 20
    if n_special:
        src[:n_special] = dst[:n_special]  # self-loops
        pick = rng.integers(n_special, e - n_special, n_special)
        src[e - n_special :] = dst[pick]  # reversed duplicates of existing edges
        dst[e - n_special :] = src[pick]
    if not weights:
        return src, dst
    # similarities on a coarse grid: lots of exactly equal values
    sim = (rng.integers(-64, 65, e) / 64).astype(np.float32)
    return src, dst, sim


def ref_weak_splits(n: int, src, dst, sim, labels, threshold, strict, min_share, min_part):
    """Per cluster, by loops over its members: (sizable parts at ``strict``, lowest
    conductance of one against the rest over the edges at ``threshold``; NaN below 2)."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    sim = np.asarray(sim, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    C = int(labels.max()) + 1 if labels.size else 0
    n_parts = np.zeros(C, dtype=np.int64)
    cond = np.full(C, np.nan)
    for c in range(C):
        members = np.flatnonzero(labels == c)
        at_t = (labels[src] == c) & (labels[dst] == c) & (sim >= np.float32(threshold))
        s, d, w = src[at_t], dst[at_t], sim[at_t]
        strong = w >= np.float32(strict)
        part = ref_components(n, s[strong], d[strong])
        parts = [
            p
            for p in np.unique(part[members])
            if (part[members] == p).sum() >= max(min_part, min_share * members.size)
        ]
        n_parts[c] = len(parts)
        if len(parts) < 2:
            continue
        degree = {int(i): 0 for i in members}
        for a, b in zip(s.tolist(), d.tolist(), strict=True):
            degree[a] += 1
            degree[b] += 1
        total = sum(degree.values())
        best = np.inf
        for p in parts:
            inside = {int(i) for i in members if part[i] == p}
            vol = sum(degree[i] for i in inside)
            cut = sum(
                (a in inside) != (b in inside) for a, b in zip(s.tolist(), d.tolist(), strict=True)
            )
            best = min(best, cut / max(min(vol, total - vol), 1))
        cond[c] = best
    return n_parts, cond


def on_circle(angles_deg, plane: int, d: int) -> np.ndarray:
    """Unit rows at the given angles in the plane of axes ``plane, plane + 1`` of R^d."""
    a = np.radians(np.asarray(angles_deg, dtype=np.float64))
    X = np.zeros((a.size, d))
    X[:, plane], X[:, plane + 1] = np.cos(a), np.sin(a)
    return X


def bridged_groups_and_an_arc(d: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """At threshold 0.9: two tight groups joined by 3 edges, an arc, a tight trio.

    Rows 0-19 at 0..10 degrees and rows 20-39 at 35..45 degrees of one circle: within
    a group every pair is an edge, across only (19, 20) at 25 degrees and (18, 20),
    (19, 21) at 25.5 (cos 0.9026; the next pairs are at 26.05, cos 0.898). Rows 40-79:
    an arc over 120 degrees of another circle, 3.08 degrees apart (all-pairs minimum
    -0.5). Rows 80-82: three rows within 0.6 degrees. Returns the rows and the part
    each row was drawn in (0, 1: the two groups, 2: the arc, 3: the trio).
    """
    X = np.vstack(
        [
            on_circle(np.linspace(0, 10, 20), 0, d),
            on_circle(np.linspace(35, 45, 20), 0, d),
            on_circle(np.linspace(0, 120, 40), 2, d),
            on_circle([0.0, 0.3, 0.6], 4, d),
        ]
    )
    return X, np.repeat([0, 1, 2, 3], [20, 20, 40, 3])
