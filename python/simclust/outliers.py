"""Outlier scores: each row's similarity to its nearest neighbours, from a kNN graph.

Every run scores every row (clustered, singleton or noise) with two columns of
``assignments``:

* ``nn_similarity``: the cosine similarity to the nearest other row;
* ``knn_sim_mean``: the mean cosine similarity to the ``k`` nearest other rows.

Both are similarities: the lower, the more isolated the row (``knn_sim_mean`` is low for
the members of a group of fewer than ``k`` rows too: a small group far from the rest).

``k`` is the run's when its graph is a kNN graph (whose lists are then reused: a kNN run
builds its graph complete and cuts it at its threshold afterwards, so nothing is searched
again), else :data:`OUTLIER_K` (at most ``N - 1``): ten, the ``k`` of a default kNN
graph, enough for a stable mean and cheap at any ``N``. A run without a
kNN graph (an ε-graph, or none) searches each row's ``k`` nearest with
:func:`simclust.graph.build_graph` under the run's ``[graph] search``: exact while the
brute force is small, else the partitioned search with its recall measured and recorded
(:attr:`simclust.Result.outlier_search`) — at 1M rows about as long as the ε-graph.

The report's outliers view ranks rows by ``nn_similarity``, lowest first, and flags
those in its lowest :data:`OUTLIER_PERCENTILE` % (:func:`outlier_cutoff`).

Example:
    >>> X = np.array([[1.0, 0.0], [0.99, 0.14], [0.98, -0.2], [0.0, 1.0]], np.float32)
    >>> X /= np.linalg.norm(X, axis=1, keepdims=True)
    >>> scores, record = outlier_scores(X, None, k=2)
    >>> [round(v, 2) for v in scores["nn_similarity"]], record["k"], record["source"]
    ([0.99, 0.99, 0.98, 0.14], 2, 'knn search')

"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from simclust import frames, ops
from simclust.graph import EdgeBackend, Graph, GraphSpec, SearchSettings, build_graph

__all__ = [
    "OUTLIER_K",
    "OUTLIER_PERCENTILE",
    "neighbor_similarities",
    "outlier_cutoff",
    "outlier_scores",
]

OUTLIER_K = 10
"""``k`` of ``knn_sim_mean`` when the run's graph is not a kNN graph (at most ``N - 1``)."""

OUTLIER_PERCENTILE = 1.0
"""The report flags the rows whose ``nn_similarity`` is at or below this percentile: the
lowest 1 %, a list one can look through (30 of the demo's 3,000 images, all of them its
planted outliers), whatever the similarities' scale, which depends on the embedder."""


def neighbor_similarities(
    graph: Graph, k: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Each row's similarity to its nearest neighbour and mean similarity to its ``k`` nearest.

    Over the rows' edges in ``graph``: for an undirected kNN graph (the union of every
    row's ``k`` nearest) a row's ``k`` most similar edges are its own ``k`` nearest (an
    edge another row listed is no more similar than the row's own ``k``-th). The mean is
    summed in float64. A row with fewer than ``k`` edges averages those it has; a row
    with none gets NaN.

    Returns:
        ``(nearest, mean)``: float32 arrays of ``graph.n_nodes``.

    Example:
        >>> g = Graph(GraphSpec("knn", k=1), 3, np.array([0, 1], np.uint32),
        ...           np.array([1, 2], np.uint32), np.array([0.5, 0.25], np.float32))
        >>> [a.tolist() for a in neighbor_similarities(g, 1)]
        [[0.5, 0.5, 0.25], [0.5, 0.5, 0.25]]

    """
    n = graph.n_nodes
    rows = np.concatenate([graph.src, graph.dst]).astype(np.uint64)
    bits = np.concatenate([graph.similarity, graph.similarity]).astype(np.float32).view(np.uint32)
    # one uint64 key per (row, edge): the row, then the similarity descending (a float's
    # bits made to sort as unsigned integers, inverted), so one sort orders both exactly
    negative = (bits >> np.uint32(31)).astype(bool)
    ordered = np.where(negative, ~bits, bits | np.uint32(0x8000_0000))
    keys = np.sort((rows << np.uint64(32)) | (~ordered).astype(np.uint64))
    del rows, bits, negative, ordered
    row = (keys >> np.uint64(32)).astype(np.int64)
    ordered = ~(keys & np.uint64(0xFFFF_FFFF)).astype(np.uint32)
    del keys
    positive = (ordered >> np.uint32(31)).astype(bool)
    sim = np.where(positive, ordered & np.uint32(0x7FFF_FFFF), ~ordered).view(np.float32)
    counts = np.bincount(row, minlength=n)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(row.size) - starts[row]
    nearest = np.full(n, np.nan, np.float32)
    nearest[row[rank == 0]] = sim[rank == 0]
    top = rank < k
    total = np.bincount(row[top], weights=sim[top].astype(np.float64), minlength=n)
    used = np.minimum(counts, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (total / used).astype(np.float32)
    return nearest, mean


def outlier_scores(
    x: npt.NDArray[np.float32],
    graph: Graph | None,
    *,
    k: int = OUTLIER_K,
    search: SearchSettings | None = None,
    n_threads: int | None = None,
    progress: ops.Progress | None = None,
    max_edges: int | None = None,
    backend: EdgeBackend | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """``nn_similarity`` and ``knn_sim_mean`` of every row of the unit rows ``x``.

    ``graph`` (the run's) is used when it is a complete kNN graph (no threshold), with
    its ``k``; otherwise each row's ``k`` nearest (the kNN graph's ``k`` if it is one cut
    at a threshold; at most ``N - 1``) are searched by
    :func:`simclust.graph.build_graph` with ``search`` (default exact; ``certified``,
    which builds ε-graphs only, searches as ``auto`` does) within ``max_edges``.

    Returns:
        The frame (``index``, ``nn_similarity``, ``knn_sim_mean``; null when ``N < 2``)
        and how its neighbours were found: ``k``, ``source`` (``"run graph"`` or
        ``"knn search"``) and the graph's search record (``method``, ``recall``, ...).

    """
    n = int(x.shape[0])
    if graph is not None and graph.spec.kind == "knn":
        k = graph.spec.k
    if graph is not None and graph.spec.kind == "knn" and graph.spec.threshold is None:
        source = "run graph"
    else:
        k, source = max(1, min(k, n - 1)), "knn search"
        if search is not None and search.method == "certified":  # an ε-graph's method:
            search = replace(search, method="auto")  # kNN lists are searched as auto does
        graph = build_graph(
            x,
            GraphSpec("knn", k=k),
            n_threads=n_threads,
            progress=progress,
            max_edges=max_edges,
            search=search,
            backend=backend,
        )
    nearest, mean = neighbor_similarities(graph, k)
    cols = {"index": np.arange(n, dtype=np.uint32), "nn_similarity": nearest, "knn_sim_mean": mean}
    frame = frames.columns_frame(cols, frames.ROW_OUTLIER_SCHEMA)
    return frame, {"k": k, "source": source, **graph.search}


def outlier_cutoff(nn_similarity: pl.Series) -> float | None:
    """The ``nn_similarity`` at or below which the report flags a row as an outlier.

    The :data:`OUTLIER_PERCENTILE` th percentile of the scored rows (the lower value, so
    at least one row is at or below it); ``None`` when no row has a score.

    Example:
        >>> outlier_cutoff(pl.Series([0.9] * 99 + [0.2]))
        0.2

    """
    scored = nn_similarity.drop_nulls()
    if scored.len() == 0:
        return None
    value = scored.quantile(OUTLIER_PERCENTILE / 100.0, interpolation="lower")
    return None if value is None else float(value)
