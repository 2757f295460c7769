# ruff: noqa: N806  (X, Y, S, C: the field's matrix notation)
"""threshold_sweep, bridge_similarity and weak_splits against scipy recomputation."""

import numpy as np
import polars as pl
import pytest
from _reference import (
    cached_clustered,
    random_graph,
    ref_bridge,
    ref_components,
    ref_sweep,
    ref_weak_splits,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from simclust import ops
from simclust.exceptions import ParameterError, ShapeError

SWEEP_SCHEMA = {"threshold": pl.Float32, "n_components": pl.UInt32, "largest_component": pl.UInt32}


def _check_sweep(n, src, dst, sim, thresholds):
    df = ops.threshold_sweep(n, src, dst, sim, thresholds)
    assert isinstance(df, pl.DataFrame)
    assert dict(df.schema) == SWEEP_SCHEMA
    assert df.columns == list(SWEEP_SCHEMA)
    t32 = np.asarray(thresholds, dtype=np.float32)
    assert df.height == t32.size
    np.testing.assert_array_equal(df["threshold"].to_numpy(), t32)
    want = ref_sweep(n, src, dst, sim, t32)
    got = list(zip(df["n_components"].to_list(), df["largest_component"].to_list(), strict=True))
    assert got == want
    return df


def _thresholds_for(sim, rng):
    """Edge similarities themselves (boundary: >= counts), values between them,
    the extremes, unsorted, with a repeat."""
    picks = (
        rng.choice(sim, min(8, sim.size), replace=False) if sim.size else np.array([], np.float32)
    )
    t = np.concatenate([picks, np.nextafter(picks, np.float32(2)), [-1, 1, 0, 0.5, 1]]).astype(
        np.float32
    )
    return t[rng.permutation(t.size)]


@pytest.mark.parametrize(
    ("n", "density"), [(1, 2.0), (2, 1.0), (7, 1.5), (100, 1.0), (1000, 1.2), (3000, 2.0)]
)
def test_sweep_random_weighted_graphs(n, density):
    """Random multigraphs with coarse (often equal) similarities, thresholds at and
    just above edge similarities, unsorted."""
    rng = np.random.default_rng(n)
    src, dst, sim = random_graph(n + 1, n, int(density * n), weights=True)
    _check_sweep(n, src, dst, sim, _thresholds_for(sim, rng))


def test_sweep_on_real_edges():
    """threshold_edges output of clustered data, a decreasing grid of thresholds."""
    X, _ = cached_clustered(1, 1000, 64)
    src, dst, sim = ops.threshold_edges(X, 0.1)
    thresholds = np.linspace(1.0, 0.1, 46).astype(np.float32)
    df = _check_sweep(1000, src, dst, sim, thresholds)
    nc = df["n_components"].to_numpy()
    assert (np.diff(nc.astype(np.int64)) <= 0).all()  # monotone in t
    assert nc[0] > nc[-1]


def test_sweep_no_edges():
    """No edges: n components of size 1 at every threshold."""
    e = np.array([], np.uint32)
    df = _check_sweep(5, e, e, np.array([], np.float32), np.array([0.5, -1.0], np.float32))
    assert df["n_components"].to_list() == [5, 5]
    assert df["largest_component"].to_list() == [1, 1]


def test_sweep_handmade():
    """Path 0-1 (0.9), 1-2 (0.5), 3-4 (0.7), node 5 alone."""
    src = np.array([0, 1, 3], np.uint32)
    dst = np.array([1, 2, 4], np.uint32)
    sim = np.array([0.9, 0.5, 0.7], np.float32)
    df = _check_sweep(6, src, dst, sim, np.array([0.95, 0.9, 0.7, 0.5, -1.0], np.float32))
    assert df["n_components"].to_list() == [6, 5, 4, 3, 3]
    assert df["largest_component"].to_list() == [1, 2, 2, 3, 3]


def test_sweep_python_list_thresholds_keep_order():
    """Thresholds as a plain list (exactly representable values), given order kept."""
    src, dst, sim = random_graph(5, 200, 300, weights=True)
    _check_sweep(200, src, dst, sim, [0.25, 0.75, -0.5, 0.25, 1.0])


def test_sweep_zero_thresholds():
    """No thresholds: a 0-row frame with the schema."""
    src, dst, sim = random_graph(6, 20, 30, weights=True)
    df = ops.threshold_sweep(20, src, dst, sim, np.array([], np.float32))
    assert df.height == 0
    assert dict(df.schema) == SWEEP_SCHEMA


@st.composite
def weighted_graphs(draw):
    n = draw(st.integers(1, 30))
    e = draw(st.integers(0, 60))
    ints = st.integers(0, n - 1)
    src = draw(st.lists(ints, min_size=e, max_size=e))
    dst = draw(st.lists(ints, min_size=e, max_size=e))
    sim = draw(st.lists(st.integers(-8, 8), min_size=e, max_size=e))
    return n, np.array(src, np.uint32), np.array(dst, np.uint32), np.array(sim, np.float32) / 8


@settings(max_examples=150, deadline=None)
@given(weighted_graphs(), st.lists(st.integers(-9, 9), max_size=6))
def test_sweep_property(g, ts):
    """Small arbitrary weighted multigraphs, thresholds on the edge grid."""
    n, src, dst, sim = g
    _check_sweep(n, src, dst, sim, np.array(ts, np.float32) / 8)


# ----------------------------------------------------------------------- bridges


def _check_bridge(n, src, dst, sim, labels):
    got = ops.bridge_similarity(n, src, dst, sim, np.asarray(labels, np.int64))
    want = ref_bridge(n, src, dst, sim, labels)
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.float32
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)  # NaN == NaN here; values are input similarities
    return got


def test_bridge_handmade():
    """Cluster {0,1,2}: MST edges 0.9 and 0.6 (0.2 not needed) -> 0.6;
    cluster {3,4}: edge 0.3; cluster {5}: singleton NaN;
    cluster {6,7}: only joined through node 8 (other cluster) -> NaN; 8 is noise (-1)."""
    src = np.array([0, 1, 0, 3, 6, 8, 2], np.uint32)
    dst = np.array([1, 2, 2, 4, 8, 7, 3], np.uint32)
    sim = np.array([0.9, 0.6, 0.2, 0.3, 0.99, 0.99, 0.95], np.float32)
    labels = np.array([0, 0, 0, 1, 1, 2, 3, 3, -1])
    got = _check_bridge(9, src, dst, sim, labels)
    np.testing.assert_array_equal(got, np.array([0.6, 0.3, np.nan, np.nan], np.float32))


def test_bridge_parallel_edges_take_strongest_and_ignore_self_loops():
    """Parallel edges: the strongest counts; self-loops are not edges."""
    src = np.array([0, 1, 1, 2, 2], np.uint32)
    dst = np.array([1, 0, 2, 2, 1], np.uint32)
    sim = np.array([0.2, 0.7, -0.5, 1.0, -0.25], np.float32)
    got = _check_bridge(4, src, dst, sim, [0, 0, 0, 1])
    np.testing.assert_array_equal(got, np.array([-0.25, np.nan], np.float32))
    got = _check_bridge(3, src, dst, sim, [1, 0, 0])
    np.testing.assert_array_equal(got, np.array([-0.25, np.nan], np.float32))


def test_bridge_all_noise_is_empty():
    """Labels all -1: C = 0, an empty float32 array."""
    src, dst, sim = random_graph(7, 10, 20, weights=True)
    got = _check_bridge(10, src, dst, sim, np.full(10, -1))
    assert got.size == 0


@pytest.mark.parametrize(
    ("n", "density"), [(2, 1.0), (7, 2.0), (100, 1.5), (1000, 1.3), (3000, 2.5)]
)
def test_bridge_on_component_labels(n, density):
    """Labels = connected components of the graph: every multi-node cluster is
    connected, bridge = weakest maximum-spanning-tree edge."""
    src, dst, sim = random_graph(n + 3, n, int(density * n), weights=True)
    labels = ref_components(n, src, dst)
    got = _check_bridge(n, src, dst, sim, labels)
    sizes = np.bincount(labels)
    assert np.isnan(got[sizes == 1]).all()
    assert not np.isnan(got[sizes > 1]).any()


@pytest.mark.parametrize("n", [50, 1000])
def test_bridge_on_threshold_labels_with_noise(n):
    """Clusters from the components at a higher threshold (where internal edges
    exist by construction), noise = singletons marked -1, all edges passed."""
    src, dst, sim = random_graph(n + 5, n, 3 * n, weights=True)
    keep = sim >= 0.25
    labels = ref_components(n, src[keep], dst[keep])
    sizes = np.bincount(labels)
    noise = sizes[labels] == 1
    lab = labels.copy()
    lab[noise] = -1
    lab[~noise] = np.unique(labels[~noise], return_inverse=True)[1]
    got = _check_bridge(n, src, dst, sim, lab)
    assert (got[~np.isnan(got)] >= 0.25).all()
    assert not np.isnan(got).any()


@pytest.mark.parametrize("n", [30, 500])
def test_bridge_arbitrary_labels(n):
    """Random partitions: many clusters are internally disconnected (NaN)."""
    src, dst, sim = random_graph(n + 9, n, 2 * n, weights=True)
    labels = np.random.default_rng(n).integers(-1, max(2, n // 5), n)
    labels[: max(2, n // 5) + 1] = np.arange(-1, max(2, n // 5))  # every label used
    got = _check_bridge(n, src, dst, sim, labels)
    assert np.isnan(got).any()


def test_bridge_on_real_clusters():
    """Clustered embeddings: clusters = components of the 0.6-graph, edges of the 0.3-graph."""
    X, _ = cached_clustered(1, 1000, 64)
    src, dst, sim = ops.threshold_edges(X, 0.3)
    keep = sim >= np.float32(0.6)
    labels = ops.connected_components(1000, src[keep], dst[keep])
    got = _check_bridge(1000, src, dst, sim, labels)
    multi = np.bincount(labels) > 1
    assert multi.any() and (got[multi] >= np.float32(0.6)).all()


@settings(max_examples=150, deadline=None)
@given(weighted_graphs(), st.data())
def test_bridge_property(g, data):
    """Small arbitrary weighted multigraphs with arbitrary labels (incl. -1)."""
    n, src, dst, sim = g
    labels = np.array(data.draw(st.lists(st.integers(-1, 4), min_size=n, max_size=n)), np.int64)
    if labels.max() < 0:
        labels[0] = 0
    # C = max + 1 clusters; make every label in 0..C-1 non-empty
    present = np.unique(labels[labels >= 0])
    labels[labels >= 0] = np.searchsorted(present, labels[labels >= 0])
    _check_bridge(n, src, dst, sim, labels)


# --------------------------------------------------------------------------- weak splits


def _weak(n, src, dst, sim, labels, threshold=0.5, strict=0.75, min_share=0.1, min_part=3):
    got = ops.weak_splits(
        n,
        src,
        dst,
        sim,
        labels,
        threshold=threshold,
        strict=strict,
        min_share=min_share,
        min_part=min_part,
    )
    want = ref_weak_splits(n, src, dst, sim, labels, threshold, strict, min_share, min_part)
    assert got[0].dtype == np.uint32 and got[1].dtype == np.float64
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12)
    return got


def test_weak_splits_two_cliques():
    """Two 10-cliques at 0.99: joined by 1 edge at 0.91 -> conductance 1/91; by 30 -> 30/120."""
    iu, ju = np.triu_indices(10, 1)
    src = np.r_[iu, iu + 10]
    dst = np.r_[ju, ju + 10]
    for n_cross, want in [(1, 1 / 91), (30, 30 / 120)]:
        cs, cd = np.arange(n_cross) % 10, 10 + (np.arange(n_cross) * 7) % 10
        s, d = np.r_[src, cs], np.r_[dst, cd]
        sim = np.r_[np.full(src.size, 0.99), np.full(n_cross, 0.91)]
        parts, cond = _weak(20, s, d, sim, np.zeros(20, int), threshold=0.9, strict=0.92)
        assert parts.tolist() == [2] and cond[0] == pytest.approx(want)
        # below the threshold the cross edges do not count: no cut, conductance 0
        parts, cond = _weak(20, s, d, sim, np.zeros(20, int), threshold=0.95, strict=0.97)
        assert parts.tolist() == [2] and cond.tolist() == [0.0]
        # at a strict level the cross edges reach, there is one part
        parts, cond = _weak(20, s, d, sim, np.zeros(20, int), threshold=0.9, strict=0.91)
        assert parts.tolist() == [1] and np.isnan(cond[0])


def test_weak_splits_small_parts_are_not_sizable():
    """A 10-clique with a 2-row tail: one sizable part (min_part 3)."""
    iu, ju = np.triu_indices(10, 1)
    s, d = np.r_[iu, 9, 10], np.r_[ju, 10, 11]
    sim = np.r_[np.full(iu.size, 0.99), 0.91, 0.99]
    parts, cond = _weak(12, s, d, sim, np.zeros(12, int), threshold=0.9, strict=0.95)
    assert parts.tolist() == [1] and np.isnan(cond[0])
    parts, _ = _weak(12, s, d, sim, np.zeros(12, int), threshold=0.9, strict=0.95, min_part=2)
    assert parts.tolist() == [2]


@pytest.mark.parametrize("n", [1, 30, 400])
@pytest.mark.parametrize("density", [0.5, 2.0, 8.0])
def test_weak_splits_random_graphs(n, density):
    """Random multigraphs, random labels with noise: the loops' reference, exactly."""
    src, dst, sim = random_graph(n + int(10 * density), n, int(density * n), weights=True)
    labels = np.random.default_rng(n).integers(-1, 5, n)
    for threshold, strict in [(-1.0, 0.0), (0.0, 0.5), (0.25, 0.25)]:
        _weak(n, src, dst, sim, labels, threshold, strict, min_share=0.05, min_part=2)


def test_weak_splits_bad_input():
    ok = {"threshold": 0.5, "strict": 0.6, "min_share": 0.1, "min_part": 3}
    with pytest.raises(ShapeError):
        ops.weak_splits(3, [0, 1], [1], [0.9], [0, 0, 0], **ok)
    with pytest.raises(ShapeError):
        ops.weak_splits(3, [0], [1], [0.9], [0, 0], **ok)
    with pytest.raises(ParameterError):
        ops.weak_splits(3, [0], [3], [0.9], [0, 0, 0], **ok)
    for bad in [{"strict": 0.4}, {"min_share": 1.5}, {"min_part": 0}, {"threshold": np.nan}]:
        with pytest.raises(ParameterError):
            ops.weak_splits(3, [0], [1], [0.9], [0, 0, 0], **{**ok, **bad})
