"""Polars frame schemas of simclust and zero-copy builders for them.

Every frame simclust returns has its full documented schema, even with zero
rows. Column names say what they hold: ``similarity`` is a cosine similarity
(higher = closer); nothing here is a distance. The schemas below are those of the
default ``cosine`` distance; under another (``[metrics] distance``,
:mod:`simclust.distances`) the geometry columns are renamed for what they hold
(:meth:`Distance.rename <simclust.distances.Distance.rename>`: ``dist_mean``,
``centroid_distance``... under ``euclidean``), the rest is unchanged. One similarity
is ``similarity`` or ``<what>_similarity`` (``centroid_similarity``,
``nn_similarity``); statistics over many are ``<what>_sim_<stat>`` (``sim_mean``,
``edge_sim_min``, ``centroid_sim_max``, ``knn_sim_mean``). A row index is ``index``,
``src``, ``medoid``...; the row's id beside it is ``id``, ``src_id``, ``medoid_id``.

Example:
    >>> import numpy as np
    >>> src, dst = np.array([0], np.uint32), np.array([1], np.uint32)
    >>> df = edges_frame(src, dst, np.array([0.9], np.float32))
    >>> df.schema == pl.Schema(EDGES_SCHEMA)
    True

"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import polars as pl

__all__ = [
    "ASSIGNMENTS_SCHEMA",
    "CENTROID_SCHEMA",
    "CLUSTERS_SCHEMA",
    "EDGES_SCHEMA",
    "INTER_SCHEMA",
    "INTRA_SCHEMA",
    "LINKAGE_SCHEMA",
    "NEIGHBORS_SCHEMA",
    "ROW_CENTROID_SCHEMA",
    "ROW_OUTLIER_SCHEMA",
    "ROW_SILHOUETTE_SCHEMA",
    "SILHOUETTE_SCHEMA",
    "columns_frame",
    "edges_frame",
    "ids_at",
    "neighbors_frame",
    "subschema",
]

EDGES_SCHEMA: dict[str, pl.DataType] = {
    "src": pl.UInt32(),
    "dst": pl.UInt32(),
    "src_id": pl.String(),
    "dst_id": pl.String(),
    "similarity": pl.Float32(),
}
"""An undirected edge list: row indices ``src < dst``, their ids ``src_id``, ``dst_id``
(the rows' ``id`` in ``assignments``), cosine ``similarity``."""

NEIGHBORS_SCHEMA: dict[str, pl.DataType] = {
    "query": pl.UInt32(),
    "rank": pl.UInt16(),
    "neighbor": pl.UInt32(),
    "similarity": pl.Float32(),
}
"""kNN results in long form: one row per (query, rank), rank 0 = most similar."""

CLUSTERS_SCHEMA: dict[str, pl.DataType] = {
    "cluster": pl.Int64(),
    "size": pl.UInt32(),
    "n_pairs": pl.UInt64(),
    "sim_mean": pl.Float32(),
    "sim_min": pl.Float32(),
    "sim_max": pl.Float32(),
    "sim_std": pl.Float32(),
    "n_edges": pl.UInt64(),
    "edge_sim_mean": pl.Float32(),
    "edge_sim_min": pl.Float32(),
    "edge_sim_max": pl.Float32(),
    "centroid_sim_mean": pl.Float32(),
    "centroid_sim_min": pl.Float32(),
    "centroid_sim_max": pl.Float32(),
    "medoid": pl.UInt32(),
    "medoid_id": pl.String(),
    "nearest_cluster": pl.Int64(),
    "nearest_cluster_similarity": pl.Float32(),
    "bridge_similarity": pl.Float32(),
    "silhouette_mean": pl.Float32(),
}
"""One row per cluster (noise, label -1, is not a cluster), ascending ``cluster`` id.

* ``size``: members; ``n_pairs = size * (size - 1) / 2``.
* ``sim_mean/min/max/std``: cosine similarity over ALL unordered pairs of members
  (exact; ``sim_std`` is the population standard deviation). Null for singletons.
* ``n_edges``, ``edge_sim_mean/min/max``: over the graph edges inside the cluster only,
  each undirected pair once (fastdup reports these, counting a mutual kNN pair twice).
  Null when the cluster has no internal edge or no edges were given.
* ``centroid_sim_mean/min/max``: the members' cosine similarity to the centroid (the
  normalised mean of the normalised members); null for singletons (a lone row is its
  own centroid). ``medoid``: the row index of the member most similar to the centroid,
  which is also the member with the largest total similarity to the cluster;
  ``medoid_id``: its ``id``.
* ``nearest_cluster``, ``nearest_cluster_similarity``: the cluster whose centroid is
  most similar to this one's, and that centroid cosine similarity.
* ``bridge_similarity``: the similarity at which the cluster would first split
  (single linkage over its internal edges).
* ``silhouette_mean``: mean cosine silhouette of the members (a score in [-1, 1] built
  from cosine distances ``1 - cos``, not a similarity).
"""


def subschema(schema: Mapping[str, pl.DataType], names: list[str]) -> dict[str, pl.DataType]:
    """The columns ``names`` of ``schema``, in that order, with their types.

    Example:
        >>> subschema(EDGES_SCHEMA, ["dst", "similarity"])
        {'dst': UInt32, 'similarity': Float32}

    """
    return {name: schema[name] for name in names}


INTRA_SCHEMA = subschema(
    CLUSTERS_SCHEMA,
    [
        "cluster",
        "size",
        "n_pairs",
        "sim_mean",
        "sim_min",
        "sim_max",
        "sim_std",
        "n_edges",
        "edge_sim_mean",
        "edge_sim_min",
        "edge_sim_max",
    ],
)
"""The columns of :data:`CLUSTERS_SCHEMA` that ``ops.intra_stats`` computes."""

CENTROID_SCHEMA = subschema(
    CLUSTERS_SCHEMA,
    [
        "cluster",
        "size",
        "centroid_sim_mean",
        "centroid_sim_min",
        "centroid_sim_max",
        "medoid",
        "nearest_cluster",
        "nearest_cluster_similarity",
    ],
)
"""The columns of :data:`CLUSTERS_SCHEMA` that ``ops.centroid_stats`` computes."""

SILHOUETTE_SCHEMA = subschema(CLUSTERS_SCHEMA, ["cluster", "size", "silhouette_mean"])
"""The columns of :data:`CLUSTERS_SCHEMA` that ``ops.silhouette`` computes."""

ASSIGNMENTS_SCHEMA: dict[str, pl.DataType] = {
    "index": pl.UInt32(),
    "id": pl.String(),
    "cluster": pl.Int64(),
    "centroid_similarity": pl.Float32(),
    "silhouette": pl.Float32(),
    "nn_similarity": pl.Float32(),
    "knn_sim_mean": pl.Float32(),
}
"""One row per input row, singletons and noise included: ``cluster`` is -1 for noise;
``centroid_similarity`` (cosine to the own cluster's centroid) is null for noise rows,
singletons (a lone row is its own centroid: the 1.0 says nothing) and when not computed;
``silhouette`` is null for noise rows and when not computed. The outlier scores, computed
by every run for every row (:mod:`simclust.outliers`): ``nn_similarity``, the cosine
similarity to the nearest other row, and ``knn_sim_mean``, the mean cosine similarity to
the ``k`` nearest (``k`` the run's kNN graph's, else 10); low values mark isolated rows.
Null only when there is no other row."""

ROW_CENTROID_SCHEMA = subschema(ASSIGNMENTS_SCHEMA, ["index", "cluster", "centroid_similarity"])
"""The per-row columns of :data:`ASSIGNMENTS_SCHEMA` that ``ops.centroid_stats`` computes."""

ROW_OUTLIER_SCHEMA = subschema(ASSIGNMENTS_SCHEMA, ["index", "nn_similarity", "knn_sim_mean"])
"""The per-row columns of :data:`ASSIGNMENTS_SCHEMA` that :func:`simclust.outliers.outlier_scores`
computes."""

ROW_SILHOUETTE_SCHEMA = subschema(ASSIGNMENTS_SCHEMA, ["index", "cluster", "silhouette"])
"""The per-row columns of :data:`ASSIGNMENTS_SCHEMA` that ``ops.silhouette`` computes."""

INTER_SCHEMA: dict[str, pl.DataType] = {
    "cluster_a": pl.Int64(),
    "cluster_b": pl.Int64(),
    "centroid_similarity": pl.Float32(),
}
"""Inter-cluster similarities in long form: for each ``cluster_a`` (ascending), its
nearest clusters ``cluster_b`` by centroid cosine similarity, most similar first (ties
by the lower id). Both directions of a pair appear."""

LINKAGE_SCHEMA: dict[str, pl.DataType] = {
    "cluster_a": pl.Int64(),
    "cluster_b": pl.Int64(),
    "n_pairs": pl.UInt64(),
    "sim_mean": pl.Float32(),
    "sim_min": pl.Float32(),
    "sim_max": pl.Float32(),
}
"""Exact linkage between two clusters over all ``size_a * size_b`` cross pairs:
``sim_max`` is the single-linkage, ``sim_min`` the complete-linkage and ``sim_mean``
the average-linkage cosine similarity."""


def _frame(
    columns: Mapping[str, npt.ArrayLike | pl.Series], schema: dict[str, pl.DataType]
) -> pl.DataFrame:
    return pl.DataFrame(
        [
            col.alias(name).cast(dtype)
            if isinstance(col := columns[name], pl.Series)
            else pl.Series(name, np.asarray(col), dtype=dtype)
            for name, dtype in schema.items()
        ]
    )


def columns_frame(
    columns: Mapping[str, npt.ArrayLike], schema: dict[str, pl.DataType]
) -> pl.DataFrame:
    """Build a frame with exactly ``schema`` from numpy columns (zero-copy where possible).

    NaN in a float column becomes null (NaN marks "undefined" in the core's output).

    Example:
        >>> cols = {"cluster_a": [0], "cluster_b": [1], "centroid_similarity": [np.nan]}
        >>> df = columns_frame(cols, INTER_SCHEMA)
        >>> df.row(0)
        (0, 1, None)

    """
    return pl.DataFrame(
        [
            pl.Series(name, np.asarray(columns[name]), dtype=dtype, nan_to_null=True)
            for name, dtype in schema.items()
        ]
    )


def ids_at(ids: pl.Series | None, rows: npt.ArrayLike | pl.Series) -> pl.Series:
    """The ids of the row indices ``rows`` (null where ``rows`` is null).

    ``ids=None``: the indices as text (the ids of rows given without ids).

    Example:
        >>> ids_at(pl.Series(["a", "b", "c"]), pl.Series([2, None, 0])).to_list()
        ['c', None, 'a']
        >>> ids_at(None, np.array([3], np.uint32)).to_list()
        ['3']

    """
    index = rows if isinstance(rows, pl.Series) else pl.Series(np.asarray(rows))
    if ids is None:
        return index.cast(pl.String)
    return ids.cast(pl.String).gather(index)


def edges_frame(
    src: npt.ArrayLike,
    dst: npt.ArrayLike,
    similarity: npt.ArrayLike,
    ids: pl.Series | None = None,
) -> pl.DataFrame:
    """Build an ``edges`` frame (:data:`EDGES_SCHEMA`) from the arrays of :mod:`simclust.ops`.

    ``ids``: one id per row, for ``src_id`` and ``dst_id`` (default: the indices as text).

    Example:
        >>> from simclust import ops
        >>> edges = ops.threshold_edges([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]], 0.9)
        >>> edges_frame(*edges, ids=pl.Series(["a", "b", "c"])).row(0)
        (0, 1, 'a', 'b', 0.9950371980667114)

    """
    cols = {"src": np.asarray(src), "dst": np.asarray(dst), "similarity": similarity}
    cols["src_id"] = ids_at(ids, cols["src"])
    cols["dst_id"] = ids_at(ids, cols["dst"])
    return _frame(cols, EDGES_SCHEMA)


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
