"""Built-in metrics: ``intra``, ``edge``, ``centroid``, ``inter`` and ``silhouette``.

Every metric returns frames whose schemas are slices of
:data:`simclust.frames.CLUSTERS_SCHEMA`, :data:`~simclust.frames.ASSIGNMENTS_SCHEMA`
and :data:`~simclust.frames.INTER_SCHEMA`; the pipeline joins them into the run's
``clusters``, ``assignments`` and ``inter`` frames. Each measures in the run's
distance (:mod:`simclust.distances`, ``[metrics] distance``): under ``cosine`` (the
default) the columns are similarities (higher = closer) as named in those schemas;
under ``euclidean`` they are Euclidean distances named for it (``dist_mean``,
``centroid_distance``...: :meth:`Distance.rename <simclust.distances.Distance.rename>`).
``silhouette`` is a score built from the distance (``1 - cos``, or Euclidean).

Example:
    >>> import numpy as np
    >>> from simclust.base import MetricContext
    >>> X = np.array([[1, 0], [0.8, 0.6], [0, 1], [0.6, 0.8]], dtype=np.float32)
    >>> ctx = MetricContext(X, np.array([0, 0, 1, 1]))
    >>> Intra().compute(ctx)["clusters"]["sim_mean"].cast(pl.Float64).round(2).to_list()
    [0.8, 0.8]

"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import polars as pl

from simclust import frames, ops
from simclust.base import Metric, MetricContext
from simclust.distances import Distance
from simclust.exceptions import ClusteringWarning, ParameterError

__all__ = ["Centroid", "Edge", "Inter", "Intra", "SilhouetteMetric"]

_C = frames.CLUSTERS_SCHEMA


def _without(schema: Mapping[str, pl.DataType], *names: str) -> dict[str, pl.DataType]:
    """``schema`` minus the key columns the pipeline supplies itself."""
    return {k: v for k, v in schema.items() if k not in names}


class _Geometry(Metric):
    """A metric measuring in the run's distance: its columns renamed by it."""

    def declared_outputs(self, distance: type[Distance]) -> Mapping[str, Mapping[str, pl.DataType]]:
        """``outputs`` with the geometry columns named by ``distance``."""
        return {name: distance.rename(schema) for name, schema in self.outputs.items()}

    def _columns(self, ctx: MetricContext, frame: str) -> list[str]:
        """The columns of ``frame`` under the run's distance."""
        return list(self.declared_outputs(ctx.distance)[frame])


class Intra(_Geometry):
    """Exact all-pairs statistics of the run's distance within each cluster.

    Columns ``n_pairs``, ``sim_mean``, ``sim_min``, ``sim_max``, ``sim_std`` (cosine
    similarity; ``dist_mean/min/max/std`` under ``euclidean``; see
    :func:`simclust.ops.intra_stats`): blocked, never ``size**2`` memory.
    """

    outputs: ClassVar[Mapping[str, Mapping[str, pl.DataType]]] = {
        "clusters": frames.subschema(
            _C, ["cluster", "n_pairs", "sim_mean", "sim_min", "sim_max", "sim_std"]
        )
    }

    def compute(self, ctx: MetricContext) -> dict[str, pl.DataFrame]:
        """All-pairs statistics per cluster."""
        df = ops.intra_stats(ctx.labelling, progress=ctx.progress)
        return {"clusters": df.select(self._columns(ctx, "clusters"))}


class Edge(_Geometry):
    """Statistics over the graph edges inside each cluster, and its bridge similarity.

    ``n_edges`` and ``edge_sim_mean/min/max`` count each undirected edge inside a
    cluster once (fastdup's component statistics, without its double counting;
    :func:`simclust.ops.edge_stats`, the cosines recomputed from the rows;
    ``edge_dist_mean/min/max``, Euclidean distances, under ``euclidean``);
    ``bridge_similarity`` is the graph's cosine similarity at which the cluster would
    first split (:func:`simclust.ops.bridge_similarity`; graphs are cosine whatever the
    distance). Needs the run's graph.

    Example:
        >>> from simclust.base import Graph, GraphSpec, MetricContext
        >>> X = np.array([[1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32)
        >>> g = Graph(GraphSpec("threshold", threshold=0.5), 3, np.array([0, 1], np.uint32),
        ...           np.array([1, 2], np.uint32), np.array([0.6, 0.8], np.float32))
        >>> out = Edge().compute(MetricContext(X, np.array([0, 0, 0]), graph=g))
        >>> out["clusters"].select("n_edges", "edge_sim_min", "bridge_similarity").row(0)
        (2, 0.6000000238418579, 0.6000000238418579)

    """

    needs_graph = True
    outputs: ClassVar[Mapping[str, Mapping[str, pl.DataType]]] = {
        "clusters": frames.subschema(
            _C,
            [
                "cluster",
                "n_edges",
                "edge_sim_mean",
                "edge_sim_min",
                "edge_sim_max",
                "bridge_similarity",
            ],
        )
    }

    def compute(self, ctx: MetricContext) -> dict[str, pl.DataFrame]:
        """Edge statistics and bridge similarity per cluster."""
        if ctx.graph is None:
            raise ParameterError("the 'edge' metric needs a graph (set [graph] in the config)")
        g = ctx.graph
        stats = ops.edge_stats(ctx.labelling, edges=(g.src, g.dst))
        ids, dense = np.unique(ctx.labels, return_inverse=True)
        dense = dense.astype(np.int64)
        if ids.size and ids[0] < 0:  # -1 sorts first: shift the rest down
            dense = np.where(ctx.labels < 0, -1, dense - 1)
        bridge = ops.bridge_similarity(ctx.n_rows, g.src, g.dst, g.similarity, dense)
        out = stats.with_columns(pl.Series("bridge_similarity", bridge, nan_to_null=True))
        schema = self.declared_outputs(ctx.distance)["clusters"]
        return {"clusters": out.select([pl.col(n).cast(t) for n, t in schema.items()])}


class Centroid(_Geometry):
    """How close the members are to their cluster's centre, and the nearest cluster.

    Per cluster: ``centroid_sim_mean/min/max`` (members' cosine similarity to the
    centroid), ``medoid``, ``nearest_cluster`` and ``nearest_cluster_similarity``; per
    row: ``centroid_similarity`` (:func:`simclust.ops.centroid_stats`). Under
    ``euclidean``: ``centroid_distance_mean/min/max``, ``nearest_cluster_distance`` and
    ``centroid_distance``, to the plain mean of the members.
    """

    outputs: ClassVar[Mapping[str, Mapping[str, pl.DataType]]] = {
        "clusters": _without(frames.CENTROID_SCHEMA, "size"),
        "assignments": _without(frames.ROW_CENTROID_SCHEMA, "cluster"),
    }

    def compute(self, ctx: MetricContext) -> dict[str, pl.DataFrame]:
        """Centroid statistics per cluster and per row."""
        res = ops.centroid_stats(ctx.labelling, progress=ctx.progress, with_centroids=False)
        return {
            "clusters": res.clusters.select(self._columns(ctx, "clusters")),
            "assignments": res.rows.select(self._columns(ctx, "assignments")),
        }


class Inter(_Geometry):
    """How far apart the clusters are: centroid cosine similarity (or distance) between them.

    The ``inter`` frame lists, for each cluster with at least ``min_size`` members,
    its ``top_m`` most similar such clusters (exact; ``top_m=None``: all of them, both
    directions); under ``euclidean`` its ``top_m`` nearest by ``centroid_distance``. The
    dense matrix (of the same values) over the ``matrix_size`` largest clusters is
    returned as the array ``centroid_matrix`` (rows/columns in the order of
    ``centroid_matrix_clusters``), for heatmaps.

    Args:
        top_m: nearest clusters listed per cluster (``None``: all).
        min_size: clusters with fewer members are left out (singletons by default).
        matrix_size: the dense matrix covers at most this many largest clusters.

    """

    outputs: ClassVar[Mapping[str, Mapping[str, pl.DataType]]] = {
        "inter": dict(frames.INTER_SCHEMA)
    }
    arrays = ("centroid_matrix", "centroid_matrix_clusters")

    def __init__(
        self, *, top_m: int | None = 10, min_size: int = 2, matrix_size: int = 100
    ) -> None:
        self.top_m = top_m
        self.min_size = min_size
        self.matrix_size = matrix_size

    def validate(self) -> None:
        """``top_m >= 1`` or ``None``, ``min_size >= 1``, ``matrix_size >= 0``."""
        if self.top_m is not None and self.top_m < 1:
            raise ParameterError(f"inter: top_m must be >= 1 or None, got {self.top_m}")
        if self.min_size < 1:
            raise ParameterError(f"inter: min_size must be >= 1, got {self.min_size}")
        if self.matrix_size < 0:
            raise ParameterError(f"inter: matrix_size must be >= 0, got {self.matrix_size}")

    def compute(self, ctx: MetricContext) -> dict[str, pl.DataFrame | np.ndarray]:
        """The long inter frame and the dense matrix of the largest clusters."""
        self.validate()
        labels = ctx.labels
        ids, sizes = np.unique(labels[labels >= 0], return_counts=True)
        big = ids[sizes >= self.min_size]
        empty = pl.DataFrame(schema=ctx.distance.rename(frames.INTER_SCHEMA))
        if big.size < 2:
            inter = empty
        else:
            m = None if self.top_m is None else min(self.top_m, int(big.size) - 1)
            inter = ops.inter_centroid(ctx.labelling, top_m=m, clusters=big, progress=ctx.progress)
        order = np.lexsort((ids, -sizes))  # largest first, ties by id
        top = np.sort(ids[order][: self.matrix_size])
        top = top[np.isin(top, big)]
        if top.size:
            mat_ids, mat = ops.centroid_similarity_matrix(ctx.labelling, clusters=top)
        else:
            mat_ids, mat = np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        return {"inter": inter, "centroid_matrix": mat, "centroid_matrix_clusters": mat_ids}


class SilhouetteMetric(_Geometry):
    """Silhouette per row and its mean per cluster (a score, not a similarity).

    Cosine (from ``1 - cos``) by default; under ``euclidean`` the exact Euclidean
    silhouette (scikit-learn's default metric, ``O(N**2 * D)`` work over blocked GEMM
    tiles). A similarity-only distance (the ``dot`` kernel) has none: a
    :class:`~simclust.exceptions.ParameterError` says so.

    Exact while the rows-by-clusters work is small; with very many clusters each row's
    nearest other cluster is searched over a partition of the cluster means, with the
    recall measured and recorded (``Result.metric_searches["silhouette"]``), as the
    run's ``[graph] search`` says.

    Defined for 2 to N-1 clusters; otherwise the columns stay null and a
    :class:`~simclust.exceptions.ClusteringWarning` says why.
    """

    outputs: ClassVar[Mapping[str, Mapping[str, pl.DataType]]] = {
        "clusters": _without(frames.SILHOUETTE_SCHEMA, "size"),
        "assignments": _without(frames.ROW_SILHOUETTE_SCHEMA, "cluster"),
    }

    def compute(self, ctx: MetricContext) -> dict[str, pl.DataFrame]:
        """Silhouette per row and per cluster."""
        labels = ctx.labels
        clustered = labels[labels >= 0]
        k = np.unique(clustered).size
        if not 2 <= k <= clustered.size - 1:
            warnings.warn(
                f"silhouette needs 2 <= clusters <= clustered rows - 1, got {k} cluster(s) "
                f"over {clustered.size} row(s); left null",
                ClusteringWarning,
                stacklevel=2,
            )
            ids = np.unique(clustered)
            return {
                "clusters": pl.DataFrame(
                    {"cluster": ids, "silhouette_mean": np.full(ids.size, None)},
                    schema=self.outputs["clusters"],
                ),
                "assignments": pl.DataFrame(
                    {"index": np.arange(labels.size), "silhouette": np.full(labels.size, None)},
                    schema=self.outputs["assignments"],
                ),
            }
        res = ops.silhouette(ctx.labelling, progress=ctx.progress)
        return {
            "clusters": res.clusters.select(self._columns(ctx, "clusters")),
            "assignments": res.rows.select(self._columns(ctx, "assignments")),
        }
