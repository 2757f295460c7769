# ruff: noqa: N806  (X, Y, S, C: the field's matrix notation)
"""polars frames: exact schemas (also for 0 rows) and values matching the arrays."""

import numpy as np
import polars as pl
import pytest
from _reference import cached_clustered
from simclust import frames, ops

EDGES = {
    "src": pl.UInt32,
    "dst": pl.UInt32,
    "src_id": pl.String,
    "dst_id": pl.String,
    "similarity": pl.Float32,
}
NEIGHBORS = {"query": pl.UInt32, "rank": pl.UInt16, "neighbor": pl.UInt32, "similarity": pl.Float32}


def test_schema_constants():
    """The exported schemas are exactly the contract's, in column order."""
    assert dict(frames.EDGES_SCHEMA) == EDGES
    assert list(frames.EDGES_SCHEMA) == list(EDGES)
    assert dict(frames.NEIGHBORS_SCHEMA) == NEIGHBORS
    assert list(frames.NEIGHBORS_SCHEMA) == list(NEIGHBORS)


def test_edges_frame_values():
    """edges_frame of threshold_edges output: schema and columns equal to the arrays."""
    X, _ = cached_clustered(1, 513, 64)
    src, dst, sim = ops.threshold_edges(X, 0.5)
    assert src.size > 0
    df = frames.edges_frame(src, dst, sim)
    assert isinstance(df, pl.DataFrame)
    assert dict(df.schema) == EDGES and df.columns == list(EDGES)
    assert df.height == src.size
    np.testing.assert_array_equal(df["src"].to_numpy(), src)
    np.testing.assert_array_equal(df["dst"].to_numpy(), dst)
    np.testing.assert_array_equal(df["similarity"].to_numpy(), sim)
    assert df["src_id"].to_list() == [str(i) for i in src]  # no ids: the index as text
    assert df["dst_id"].to_list() == [str(i) for i in dst]


def test_edges_frame_ids():
    """With ids, src_id and dst_id are the ids of src and dst."""
    X, _ = cached_clustered(1, 513, 64)
    src, dst, sim = ops.threshold_edges(X, 0.5)
    ids = [f"img_{i:04d}.png" for i in range(513)]
    df = frames.edges_frame(src, dst, sim, pl.Series(ids))
    assert df["src_id"].to_list() == [ids[i] for i in src]
    assert df["dst_id"].to_list() == [ids[i] for i in dst]


def test_edges_frame_empty():
    """0 edges (N = 1): a 0-row frame that still has the schema."""
    src, dst, sim = ops.threshold_edges(np.ones((1, 3), np.float32), 0.0)
    df = frames.edges_frame(src, dst, sim)
    assert df.height == 0
    assert dict(df.schema) == EDGES and df.columns == list(EDGES)


def test_edges_frame_empty_high_threshold():
    """0 edges from a threshold nobody reaches."""
    X = np.eye(5, dtype=np.float32)
    src, dst, sim = ops.threshold_edges(X, 0.5)
    assert src.size == 0
    df = frames.edges_frame(src, dst, sim)
    assert df.height == 0 and dict(df.schema) == EDGES


@pytest.mark.parametrize(("n", "k"), [(2, 1), (7, 6), (513, 10)])
def test_neighbors_frame_long_form(n, k):
    """One row per (query, rank); neighbour/similarity are indices[q, r] / similarities[q, r]."""
    X, _ = cached_clustered(1, n, 64)
    idx, sim = ops.knn(X, k)
    df = frames.neighbors_frame(idx, sim)
    assert isinstance(df, pl.DataFrame)
    assert dict(df.schema) == NEIGHBORS and df.columns == list(NEIGHBORS)
    assert df.height == n * k
    df = df.sort(["query", "rank"])
    np.testing.assert_array_equal(df["query"].to_numpy(), np.repeat(np.arange(n), k))
    np.testing.assert_array_equal(df["rank"].to_numpy(), np.tile(np.arange(k), n))
    np.testing.assert_array_equal(df["neighbor"].to_numpy(), idx.ravel())
    np.testing.assert_array_equal(df["similarity"].to_numpy(), sim.ravel())


def test_neighbors_frame_query_search():
    """Works for X-vs-Y results too (k = M)."""
    X, _ = cached_clustered(1, 513, 64)
    idx, sim = ops.knn(X[:9], 4, Y=X[100:104])
    df = frames.neighbors_frame(idx, sim).sort(["query", "rank"])
    assert dict(df.schema) == NEIGHBORS
    np.testing.assert_array_equal(df["neighbor"].to_numpy(), idx.ravel())
    np.testing.assert_array_equal(df["similarity"].to_numpy(), sim.ravel())


def test_neighbors_frame_empty():
    """0 queries: a 0-row frame that still has the schema."""
    df = frames.neighbors_frame(np.empty((0, 3), np.uint32), np.empty((0, 3), np.float32))
    assert df.height == 0
    assert dict(df.schema) == NEIGHBORS and df.columns == list(NEIGHBORS)
