"""Polars frame schemas of simclust and zero-copy builders for them.

Every frame simclust returns has its full documented schema, even with zero
rows. Column names say what they hold: ``similarity`` is a cosine similarity
(higher = closer); nothing here is a distance.

Example:
    >>> import numpy as np
    >>> df = edges_frame(np.array([0], np.uint32), np.array([1], np.uint32), np.array([0.9], np.float32))
    >>> df.schema == pl.Schema(EDGES_SCHEMA)
    True

"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

__all__ = ["EDGES_SCHEMA", "NEIGHBORS_SCHEMA", "edges_frame", "neighbors_frame"]

EDGES_SCHEMA: dict[str, pl.DataType] = {
    "src": pl.UInt32(),
    "dst": pl.UInt32(),
    "similarity": pl.Float32(),
}
"""An undirected edge list: ``src < dst``, cosine ``similarity``."""

NEIGHBORS_SCHEMA: dict[str, pl.DataType] = {
    "query": pl.UInt32(),
    "rank": pl.UInt16(),
    "neighbor": pl.UInt32(),
    "similarity": pl.Float32(),
}
"""kNN results in long form: one row per (query, rank), rank 0 = most similar."""


def _frame(columns: dict[str, npt.ArrayLike], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(
        [pl.Series(name, np.asarray(columns[name]), dtype=dtype) for name, dtype in schema.items()]
    )


def edges_frame(
    src: npt.ArrayLike, dst: npt.ArrayLike, similarity: npt.ArrayLike
) -> pl.DataFrame:
    """Build an ``edges`` frame (:data:`EDGES_SCHEMA`) from the arrays of :mod:`simclust.ops`.

    Example:
        >>> from simclust import ops
        >>> edges_frame(*ops.threshold_edges([[1.0, 0.0], [1.0, 0.1]], 0.9)).height
        1

    """
    return _frame({"src": src, "dst": dst, "similarity": similarity}, EDGES_SCHEMA)


def neighbors_frame(
    indices: npt.NDArray[np.uint32], similarities: npt.NDArray[np.float32]
) -> pl.DataFrame:
    """Build a long ``neighbors`` frame (:data:`NEIGHBORS_SCHEMA`) from ``ops.knn`` output.

    Example:
        >>> from simclust import ops
        >>> neighbors_frame(*ops.knn([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]], 2))["rank"].to_list()
        [0, 1, 0, 1, 0, 1]

    """
    idx = np.asarray(indices)
    sim = np.asarray(similarities)
    if idx.ndim != 2 or idx.shape != sim.shape:
        from simclust.exceptions import ShapeError

        raise ShapeError(
            f"indices and similarities must be 2-D of one shape, got {idx.shape} and {sim.shape}"
        )
    n, k = idx.shape
    return _frame(
        {
            "query": np.repeat(np.arange(n, dtype=np.uint32), k),
            "rank": np.tile(np.arange(k, dtype=np.uint16), n),
            "neighbor": idx.reshape(-1),
            "similarity": sim.reshape(-1),
        },
        NEIGHBORS_SCHEMA,
    )
