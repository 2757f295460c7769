# ruff: noqa: N806  (X, Y, S, C: the field's matrix notation)
"""threshold_edges and knn_edges against numpy brute force."""

import numpy as np
import pytest
from _reference import (
    SIZES_D,
    SIZES_N,
    cached_clustered,
    check_edge_arrays,
    check_knn_edges,
    check_threshold_edges,
    exact_embeddings,
    gaussian_embeddings,
    knn_edge_masks,
    ref_knn_edges_exact,
    ref_sims,
)
from simclust import ops

THRESHOLDS = [-1.0, -0.3, 0.0, 0.5, 0.9, 1.0]


@pytest.mark.parametrize("d", SIZES_D)
@pytest.mark.parametrize("n", SIZES_N)
def test_threshold_edges_clustered(n, d):
    """Every pair with cos >= t, for thresholds from -1 to 1 (near-threshold pairs free)."""
    X, S = cached_clustered(1, n, d)
    thresholds = THRESHOLDS if n < 2500 else [-1.0, 0.5, 1.0]
    for t in thresholds:
        src, dst, sim = ops.threshold_edges(X, t)
        check_threshold_edges(src, dst, sim, S, t)


def test_threshold_edges_single_row_is_empty():
    """N = 1: no pairs, empty arrays of the contract dtypes."""
    src, dst, sim = ops.threshold_edges(np.ones((1, 5), np.float32), -1.0)
    check_edge_arrays(src, dst, sim, 1)
    assert src.size == 0


def test_threshold_edges_counts_on_gaussian_data():
    """A mid threshold on tie-free data: the edge count equals numpy's up to boundary pairs."""
    X = gaussian_embeddings(5, 1000, 16)
    S = ref_sims(X)
    src, dst, sim = ops.threshold_edges(X, 0.25)
    check_threshold_edges(src, dst, sim, S, 0.25)
    iu = np.triu_indices(1000, 1)
    assert abs(src.size - int((S[iu] >= 0.25).sum())) <= int((np.abs(S[iu] - 0.25) < 1e-5).sum())
    assert src.size > 1000


@pytest.mark.parametrize("t", [-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0])
@pytest.mark.parametrize(("n", "d"), [(300, 16), (513, 64), (7, 16)])
def test_threshold_edges_exact(n, d, t):
    """Dyadic data: similarities exact, so pairs exactly at t are included (>=);
    t = 1 gives exactly the duplicate pairs, t = -1 every pair."""
    X = exact_embeddings(100 + n, n, d, n_dups=n // 5)
    S = ref_sims(X)
    src, dst, sim = ops.threshold_edges(X, t)
    check_threshold_edges(src, dst, sim, S, t, exact=True)
    if t == -1.0:
        assert src.size == n * (n - 1) // 2
    if t == 1.0 and n > 7:
        assert src.size > 0
        np.testing.assert_array_equal(sim, np.ones(src.size, np.float32))


KNN_EDGE_CASES = [
    (n, d, k)
    for n in SIZES_N
    if n > 1
    for d in SIZES_D
    for k in sorted({1, min(6, n - 1)} | ({n - 1} if n <= 513 or (n, d) == (1000, 64) else set()))
]


@pytest.mark.parametrize(("n", "d", "k"), KNN_EDGE_CASES)
def test_knn_edges_clustered(n, d, k):
    """kNN graph, thresholded, undirected (min, max) and deduplicated, vs numpy."""
    X, S = cached_clustered(1, n, d)
    masks = knn_edge_masks(S, k)
    for t in (-1.0, 0.3, 0.8):
        src, dst, sim = ops.knn_edges(X, k, t)
        n_required = check_knn_edges(src, dst, sim, S, masks, t)
        if t == -1.0 and d >= 64:
            assert n_required > 0


@pytest.mark.parametrize("t", [-1.0, 0.0, 0.5, 1.0])
@pytest.mark.parametrize(("n", "d"), [(7, 16), (200, 16), (513, 64)])
def test_knn_edges_exact(n, d, t):
    """Dyadic data with ties: exact reference (ties by lower index), exact similarities."""
    X = exact_embeddings(200 + n, n, d, n_dups=n // 5)
    S = ref_sims(X)
    for k in sorted({1, 3, n - 1}):
        src, dst, sim = ops.knn_edges(X, k, t)
        s, dd = check_edge_arrays(src, dst, sim, n)
        keys, ref = ref_knn_edges_exact(S, k, t)
        np.testing.assert_array_equal(s * n + dd, keys)
        np.testing.assert_array_equal(sim, ref.astype(np.float32))


def test_knn_edges_mutual_pairs_deduplicated():
    """Two tight pairs far apart, k = 1: exactly one edge per pair."""
    X = np.array([[1, 0, 0], [1, 0.01, 0], [0, 0, 1], [0, 0.01, 1]], np.float32)
    src, dst, sim = ops.knn_edges(X, 1, -1.0)
    np.testing.assert_array_equal(src, np.array([0, 2], np.uint32))
    np.testing.assert_array_equal(dst, np.array([1, 3], np.uint32))
    np.testing.assert_allclose(sim, ref_sims(X)[[0, 2], [1, 3]], atol=1e-6, rtol=0)


def test_knn_edges_consistent_with_knn():
    """knn_edges equals simclust's own knn, thresholded and symmetrised."""
    X, _ = cached_clustered(1, 1000, 64)
    k, t = 7, 0.35
    idx, sims = ops.knn(X, k)
    rows = np.repeat(np.arange(1000), k)
    cols = idx.ravel().astype(np.int64)
    keep = sims.ravel() >= np.float32(t)
    a, b = np.minimum(rows, cols)[keep], np.maximum(rows, cols)[keep]
    key_sim = dict(zip((a * 1000 + b).tolist(), sims.ravel()[keep].tolist(), strict=True))
    src, dst, sim = ops.knn_edges(X, k, t)
    got = src.astype(np.int64) * 1000 + dst
    np.testing.assert_array_equal(got, np.array(sorted(key_sim)))
    np.testing.assert_allclose(sim, [key_sim[g] for g in got.tolist()], atol=1e-6, rtol=0)


@pytest.mark.parametrize(("n", "d"), [(2500, 64), (1000, 384), (513, 3)])
def test_edges_bitwise_identical_across_thread_counts(n, d):
    """threshold_edges and knn_edges are bit-identical for n_threads = 1, 2, 3 and default."""
    X, _ = cached_clustered(1, n, d)
    for fn, args in ((ops.threshold_edges, (0.4,)), (ops.knn_edges, (12, 0.1))):
        runs = [fn(X, *args, n_threads=t) for t in (1, 2, 3, None)]
        for other in runs[1:]:
            for a, b in zip(runs[0], other, strict=True):
                assert a.dtype == b.dtype
                assert np.array_equal(a, b)
        assert runs[0][0].size > 0
