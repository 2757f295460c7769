# ruff: noqa: N806  (X, Y, S, C: the field's matrix notation)
"""connected_components against scipy.sparse.csgraph, canonical numbering."""

import numpy as np
import pytest
from _reference import canonical, random_graph, ref_components
from hypothesis import given, settings
from hypothesis import strategies as st
from simclust import ops


def _u32(*arrays):
    return [np.asarray(a, dtype=np.uint32) for a in arrays]


def _check(n, src, dst):
    labels = ops.connected_components(n, src, dst)
    assert isinstance(labels, np.ndarray)
    assert labels.dtype == np.int64
    assert labels.shape == (n,)
    np.testing.assert_array_equal(labels, ref_components(n, src, dst))
    return labels


def _assert_canonical(labels):
    """Components are 0..C-1, numbered in order of their smallest member."""
    C = int(labels.max()) + 1
    first = np.array([np.flatnonzero(labels == c)[0] for c in range(C)])
    assert labels[0] == 0
    assert (np.diff(first) > 0).all()
    assert set(np.unique(labels).tolist()) == set(range(C))


@pytest.mark.parametrize("density", [0.0, 0.3, 0.5, 0.7, 1.0, 2.0])
@pytest.mark.parametrize("n", [1, 2, 7, 100, 1000, 3000])
def test_random_graphs(n, density):
    """Random multigraphs (self-loops, duplicate and reversed edges) around the
    percolation threshold (density = edges / n)."""
    src, dst = random_graph(n * 7 + int(density * 10), n, int(density * n))
    labels = _check(n, src, dst)
    _assert_canonical(labels)


def test_random_graphs_have_varied_structure():
    """The parametrised graphs include many and few components (the test is not trivial)."""
    n = 1000
    counts = [
        int(ops.connected_components(n, *random_graph(1, n, int(f * n))).max()) + 1
        for f in (0.3, 2.0)
    ]
    assert counts[0] > 500 and counts[1] < 300


def test_handmade_canonical_numbering():
    """Components {0}, {1, 4}, {2}, {3, 5} numbered by smallest member."""
    src, dst = _u32([5, 4], [3, 1])
    labels = _check(6, src, dst)
    np.testing.assert_array_equal(labels, [0, 1, 2, 3, 1, 3])


@pytest.mark.parametrize("n", [2, 7, 513, 3000])
def test_shuffled_chain_is_one_component(n):
    """A path visited in random order with random edge orientation."""
    rng = np.random.default_rng(n)
    perm = rng.permutation(n)
    a, b = perm[:-1], perm[1:]
    flip = rng.random(n - 1) < 0.5
    src, dst = _u32(np.where(flip, b, a), np.where(flip, a, b))
    order = rng.permutation(n - 1)
    labels = _check(n, src[order], dst[order])
    np.testing.assert_array_equal(labels, np.zeros(n, np.int64))


def test_several_chains():
    """Interleaved chains i, i+3, i+6, ... give components numbered 0, 1, 2 by i mod 3."""
    n = 3001
    src = np.arange(n - 3)
    src, dst = _u32(src, src + 3)
    labels = _check(n, src[::-1], dst[::-1])
    np.testing.assert_array_equal(labels, np.arange(n) % 3)


@pytest.mark.parametrize("centre", [0, 57, 999])
def test_star(centre):
    """A star around any centre is one component."""
    n = 1000
    leaves = np.array([i for i in range(n) if i != centre])
    src, dst = _u32(leaves, np.full(leaves.size, centre))
    labels = _check(n, src, dst)
    np.testing.assert_array_equal(labels, np.zeros(n, np.int64))


def test_giant_component_plus_singletons():
    """A random spanning tree over most nodes plus isolated nodes."""
    n = 2500
    rng = np.random.default_rng(3)
    nodes = rng.choice(n, 2000, replace=False)
    parents = nodes[rng.integers(0, np.arange(1, 2000))]
    src, dst = _u32(nodes[1:], parents)
    labels = _check(n, src, dst)
    assert int(labels.max()) + 1 == 501
    assert np.bincount(labels).max() == 2000
    _assert_canonical(labels)


@pytest.mark.parametrize("n", [1, 2, 7, 1000])
def test_all_singletons(n):
    """No edges: every node is its own component, labels 0..n-1."""
    src, dst = _u32([], [])
    labels = _check(n, src, dst)
    np.testing.assert_array_equal(labels, np.arange(n))


def test_only_self_loops():
    """Self-loops connect nothing."""
    n = 50
    src, dst = _u32(np.arange(n)[::-1], np.arange(n)[::-1])
    labels = _check(n, src, dst)
    np.testing.assert_array_equal(labels, np.arange(n))


def test_duplicate_edges():
    """The same edge many times, in both orientations."""
    src, dst = _u32([3, 1, 3, 1, 3, 6] * 50, [1, 3, 1, 3, 1, 6] * 50)
    labels = _check(8, src, dst)
    np.testing.assert_array_equal(labels, [0, 1, 2, 1, 3, 4, 5, 6])


def test_last_node_joins_first():
    """Edge (n-1, 0) puts the last node in component 0."""
    src, dst = _u32([9], [0])
    labels = _check(10, src, dst)
    np.testing.assert_array_equal(labels, [0, 1, 2, 3, 4, 5, 6, 7, 8, 0])


def test_canonical_helper_sanity():
    """The reference relabelling itself (guards the oracle)."""
    np.testing.assert_array_equal(canonical(np.array([7, 3, 7, 9, 3])), [0, 1, 0, 2, 1])


@st.composite
def graphs(draw):
    n = draw(st.integers(1, 40))
    e = draw(st.integers(0, 80))
    src = draw(st.lists(st.integers(0, n - 1), min_size=e, max_size=e))
    dst = draw(st.lists(st.integers(0, n - 1), min_size=e, max_size=e))
    return n, np.array(src, np.uint32), np.array(dst, np.uint32)


@settings(max_examples=200, deadline=None)
@given(graphs())
def test_property_matches_scipy(g):
    """Small arbitrary multigraphs: identical to scipy with canonical numbering."""
    n, src, dst = g
    labels = _check(n, src, dst)
    _assert_canonical(labels)


# --------------------------------------------------------------------------- spanning forest


def _ref_max_forest_weight(n: int, src, dst, sim) -> float:
    """Total weight of a maximum spanning forest: scipy's minimum one on shifted weights.

    Duplicate and reversed edges keep their best weight; self-loops are dropped.
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import minimum_spanning_tree

    s, d, w = (np.asarray(a) for a in (src, dst, sim))
    keep = s != d
    lo, hi, w = np.minimum(s, d)[keep], np.maximum(s, d)[keep], w[keep].astype(np.float64)
    if not w.size:
        return 0.0
    best: dict[tuple[int, int], float] = {}
    for a, b, x in zip(lo.tolist(), hi.tolist(), w.tolist(), strict=True):
        best[(a, b)] = max(best.get((a, b), -np.inf), x)
    keys = list(best)
    rows, cols = zip(*keys, strict=True)
    vals = np.array([best[k] for k in keys])
    shift = 3.0 - vals  # > 0: scipy drops explicit zeros
    mst = minimum_spanning_tree(sp.coo_matrix((shift, (rows, cols)), shape=(n, n)).tocsr())
    return float((3.0 * mst.nnz) - mst.sum())


@pytest.mark.parametrize("seed", range(6))
def test_spanning_forest_is_a_maximum_one_with_the_graphs_components(seed):
    """Against scipy: the forest's total weight is a maximum spanning forest's, and at
    every threshold its edges give the graph's components and sweep."""
    n = 60 + 40 * seed
    src, dst = random_graph(seed, n, 3 * n)
    rng = np.random.default_rng(seed)
    sim = (rng.integers(0, 8, src.size) / 8).astype(np.float32)  # coarse: many ties
    fs, fd, fw = ops.spanning_forest(src, dst, sim)
    assert (fs < fd).all() and (np.diff(fw) <= 0).all()
    assert fw.astype(np.float64).sum() == pytest.approx(
        _ref_max_forest_weight(n, src, dst, sim), abs=1e-9
    )
    for t in [*np.unique(sim).tolist(), -1.0]:
        keep, fkeep = sim >= np.float32(t), fw >= np.float32(t)
        want = ref_components(n, src[keep], dst[keep])
        np.testing.assert_array_equal(ops.connected_components(n, fs[fkeep], fd[fkeep]), want)
    thresholds = [0.9, 0.5, 0.25, 0.0]
    from polars.testing import assert_frame_equal

    assert_frame_equal(
        ops.threshold_sweep(n, fs, fd, fw, thresholds),
        ops.threshold_sweep(n, src, dst, sim, thresholds),
    )


def test_spanning_forest_of_forests_is_the_forest_and_bad_input_is_named():
    src, dst, sim = random_graph(11, 300, 900, weights=True)
    half = src.size // 2
    f1 = ops.spanning_forest(src[:half], dst[:half], sim[:half])
    f2 = ops.spanning_forest(src[half:], dst[half:], sim[half:])
    merged = ops.spanning_forest(*(np.concatenate([a, b]) for a, b in zip(f1, f2, strict=True)))
    whole = ops.spanning_forest(src, dst, sim)
    assert merged[2].astype(np.float64).sum() == pytest.approx(whole[2].astype(np.float64).sum())
    np.testing.assert_array_equal(
        ops.connected_components(300, merged[0], merged[1]), ref_components(300, src, dst)
    )
    with pytest.raises(ValueError, match="same length"):
        ops.spanning_forest([0, 1], [1], [0.5, 0.5])
    with pytest.raises(ValueError, match="similarity"):
        ops.spanning_forest([0], [1], [np.nan])
