"""Cluster geometry over a gathered labelling: intra, edge, centroid, inter, silhouette.

Every function measures in a distance (:mod:`simclust.distances`): its ``distance``
argument with an array ``x`` (default ``"cosine"``), or the :class:`Labelling`'s. The
frames' geometry columns are named by it (``sim_mean`` under cosine, ``dist_mean``
under ``"euclidean"``, ...); everything else is the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import polars as pl

from simclust import _native, frames
from simclust.distances import Distance, get_distance
from simclust.exceptions import (
    InvalidInputError,
    ParameterError,
    ShapeError,
)
from simclust.ops._coerce import (
    _U32_MAX,
    EdgesLike,
    LabelsLike,
    Progress,
    _as_count,
    _as_labels,
    _as_matrix,
    _as_threads,
    _edge_ends,
)
from simclust.ops._similarity import search_record


class Labelling:
    """Rows validated and grouped by cluster once, for many metrics.

    Every metric function below takes a ``Labelling`` in place of ``x`` (then without
    ``labels``): a run builds one and all its metrics read the same gathered copy of
    the rows, so the rows are checked and grouped once per run, and the centroids are
    computed once for :func:`centroid_stats`, :func:`inter_centroid` and
    :func:`centroid_similarity_matrix`. Given an array and labels instead, each
    function builds its own.

    The rows are not copied (a float32 C-order ``x`` is kept as it is, a memory-mapped
    one stays mapped): each kernel gathers (and, for cosine, normalises) the few rows it
    works on. Do not modify ``x`` while the ``Labelling`` is in use.

    Every metric measures in the labelling's ``distance`` (:mod:`simclust.distances`):
    ``"cosine"`` (the default: cosine similarity of the normalised rows, the columns
    of :mod:`simclust.frames`), ``"euclidean"`` (Euclidean distance of the rows as they
    are, columns renamed to what they hold: ``dist_mean``, ``centroid_distance``, ...)
    or a plugin's :class:`~simclust.distances.Distance` class.

    The nearest-cluster searches (:func:`centroid_stats`' ``nearest_cluster``,
    :func:`inter_centroid`) are exact while brute force over the centroids is small and
    partitioned above (``search="auto"``, the rule of :func:`simclust.ops.auto_exact`),
    with their recall measured; :attr:`searches` records what each one did.

    Args:
        x: N x D embeddings (any float dtype; rows are normalised for cosine only).
        labels: one int cluster id per row (``-1`` = noise).
        distance: what the metrics measure: a built-in distance's name or a
            :class:`~simclust.distances.Distance` class.
        n_threads: threads for every kernel run on it (default ``SIMCLUST_NUM_THREADS``
            or all cores).
        search: ``"auto"``, ``"exact"`` or ``"ivf"`` for the nearest-cluster searches.
        nprobe: lists each list is compared with in an ``ivf`` search.
        recall_rows: seeded clusters the recall of an ``ivf`` search is measured on.

    Raises:
        ShapeError: ``labels`` does not have one entry per row.
        InvalidInputError: NaN/Inf rows in ``x``, or zero rows under cosine (every one
            listed).
        ParameterError: an unknown distance.

    Example:
        >>> lab = Labelling([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], [0, 0, 1])
        >>> lab.cluster_ids.tolist(), intra_stats(lab)["n_pairs"].to_list()
        ([0, 1], [1, 0])
        >>> lab = Labelling([[0.0, 0.0], [3.0, 4.0], [9.0, 9.0]], [0, 0, 1], distance="euclidean")
        >>> intra_stats(lab).select("cluster", "dist_mean").rows()
        [(0, 5.0), (1, None)]

    """

    def __init__(
        self,
        x: npt.ArrayLike,
        labels: LabelsLike,
        *,
        distance: str | type[Distance] = "cosine",
        n_threads: int | None = None,
        search: str = "auto",
        nprobe: int = 8,
        recall_rows: int = 1000,
    ) -> None:
        if search not in ("auto", "exact", "ivf"):
            raise ParameterError(f"search must be 'auto', 'exact' or 'ivf', got {search!r}")
        self.distance: type[Distance] = get_distance(distance)
        """What the metrics measure (:mod:`simclust.distances`)."""
        self.labels = _as_labels(labels)
        self._native = _native.Labelling(
            _as_matrix(x, "X"),
            self.labels,
            measure=self.distance.kernel,
            n_threads=_as_threads(n_threads),
            search=search,
            nprobe=_as_count(nprobe, "nprobe"),
            recall_rows=_as_count(recall_rows, "recall_rows", minimum=0),
        )
        self.searches: dict[str, dict[str, Any]] = {}
        """What each nearest-cluster search did, by function (``centroid_stats``,
        ``inter_centroid``): ``method`` (``exact`` or ``ivf``), why it was chosen, and for
        ``ivf`` the lists, the pairs computed and the ``recall`` measured on
        ``recall_rows`` seeded clusters."""

    @classmethod
    def _over(
        cls, native: Any, labels: LabelsLike, distance: str | type[Distance] = "cosine"
    ) -> Labelling:
        """A labelling over another implementation of the native one's methods.

        ``native`` stands in for ``simclust._native.Labelling`` (e.g. the distributed
        plan's :class:`simclust.distributed._metrics.TaskLabelling`): the functions below
        build their frames from what it returns, as from the native labelling's.
        """
        lab = cls.__new__(cls)
        lab.distance = get_distance(distance)
        lab.labels = _as_labels(labels)
        lab._native = native
        lab.searches = {}
        return lab

    def _record(self, name: str, record: dict[str, Any] | None) -> None:
        if record is not None:
            self.searches[name] = search_record(record)

    @property
    def n_rows(self) -> int:
        """The number of input rows (noise included)."""
        return int(self._native.n_rows)

    def _frame(
        self,
        cols: dict[str, Any],
        schema: dict[str, pl.DataType],
        neutral: dict[str, str] | None = None,
    ) -> pl.DataFrame:
        """The frame of ``schema`` (cosine names) under the distance's column names.

        ``neutral`` names the native result's neutral keys (``mean``, ``value``, ...)
        by the cosine column they fill.
        """
        named = {(neutral or {}).get(k, k): v for k, v in cols.items()}
        rename = self.distance.rename
        return frames.columns_frame(rename(named), rename(schema))

    @property
    def cluster_ids(self) -> npt.NDArray[np.int64]:
        """The cluster ids, ascending (noise excluded)."""
        return self._native.cluster_ids


_STATS = {"mean": "sim_mean", "min": "sim_min", "max": "sim_max", "std": "sim_std"}
_EDGE_STATS = {"mean": "edge_sim_mean", "min": "edge_sim_min", "max": "edge_sim_max"}
_CENTROID_STATS = {
    "mean": "centroid_sim_mean",
    "min": "centroid_sim_min",
    "max": "centroid_sim_max",
    "nearest_value": "nearest_cluster_similarity",
}


def _labelling(
    x: npt.ArrayLike | Labelling,
    labels: LabelsLike | None,
    n_threads: int | None,
    distance: str | type[Distance] | None = None,
) -> Labelling:
    """``x`` itself when it is a :class:`Labelling`, else one built from ``x, labels``.

    ``distance`` (default cosine) is the built one's; a Labelling has its own.
    """
    if isinstance(x, Labelling):
        if labels is not None:
            raise ParameterError(
                "pass labels with an array x, not with a Labelling (it has its own)"
            )
        if distance is not None and get_distance(distance) is not x.distance:
            raise ParameterError(
                "pass distance with an array x, not with a Labelling (it has its own)"
            )
        return x
    if labels is None:
        raise ParameterError("labels is required when x is an array")
    return Labelling(x, labels, distance=distance or "cosine", n_threads=n_threads)


def intra_stats(
    x: npt.ArrayLike | Labelling,
    labels: LabelsLike | None = None,
    *,
    edges: EdgesLike | None = None,
    distance: str | type[Distance] | None = None,
    n_threads: int | None = None,
    progress: Progress | None = None,
) -> pl.DataFrame:
    """Exact cosine-similarity statistics over ALL pairs of members of each cluster.

    For every cluster: ``size``, ``n_pairs = size * (size - 1) / 2`` and the mean, min,
    max and population standard deviation of the cosine similarity over every unordered
    pair of members (blocked GEMM within each cluster, in parallel across clusters and
    across the blocks of a big one; memory never grows with ``size**2``). Singletons get
    ``n_pairs = 0`` and null statistics. Noise rows (label ``-1``) are excluded.

    With ``edges`` (e.g. from :func:`threshold_edges` or :func:`knn_edges`) the frame
    also holds ``n_edges`` and ``edge_sim_mean/min/max`` from :func:`edge_stats`: the
    same statistics over the graph edges inside each cluster only. Without ``edges``
    those columns are null and ``n_edges`` is 0.

    Under ``distance="euclidean"`` the same statistics of the Euclidean distances of
    the rows as they are: ``dist_mean/min/max/std``, ``edge_dist_mean/min/max`` (the
    GEMM tiles turned into distances from the squared norms, never an ``N x N`` matrix).

    Returns:
        A frame with :data:`simclust.frames.INTRA_SCHEMA` (renamed by the distance), one
        row per cluster, ascending ``cluster``.

    Raises:
        ShapeError: ``labels`` does not have one entry per row; malformed edges.
        ParameterError: a label below -1; an edge node id ``>= N``.
        InvalidInputError: non-integer labels; NaN/Inf or zero rows in ``x``.

    Example:
        >>> X = [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [1.0, 1.0]]
        >>> df = intra_stats(X, [0, 0, 0, -1, 7], edges=([0, 1], [1, 2]))
        >>> df.select("cluster", "size", "n_pairs", "sim_min", "sim_max").rows()
        [(0, 3, 3, -1.0, 0.0), (7, 1, 0, None, None)]
        >>> df.select("n_edges", "edge_sim_mean").row(0)
        (2, 0.0)

    """
    lab = _labelling(x, labels, n_threads, distance)
    cols = {_STATS.get(k, k): v for k, v in lab._native.intra_stats(progress=progress).items()}
    if edges is not None:
        e = lab._native.edge_stats(*_edge_ends(edges))
        cols.update({_EDGE_STATS.get(k, k): v for k, v in e.items()})
    else:
        k = len(cols["cluster"])
        cols.update(
            n_edges=np.zeros(k, np.uint64),
            **{c: np.full(k, np.nan) for c in _EDGE_STATS.values()},
        )
    return lab._frame(cols, frames.INTRA_SCHEMA)


def edge_stats(
    x: npt.ArrayLike | Labelling,
    labels: LabelsLike | None = None,
    *,
    edges: EdgesLike,
    distance: str | type[Distance] | None = None,
    n_threads: int | None = None,
) -> pl.DataFrame:
    """Cosine-similarity statistics over the graph edges inside each cluster.

    ``n_edges`` and ``edge_sim_mean/min/max`` per cluster: what fastdup's component
    statistics measure, made exact and explicit. Each undirected pair counts once
    however often it is listed (fastdup counts a mutual kNN pair twice); self-loops and
    edges leaving a cluster or touching noise are ignored. Edge similarities are
    recomputed from the rows (a third ``similarity`` array is not used), so they are the
    same cosines as :func:`intra_stats`' all-pairs columns. Clusters without an internal
    edge get ``n_edges = 0`` and null statistics.

    Returns:
        ``cluster, n_edges, edge_sim_mean, edge_sim_min, edge_sim_max``, ascending
        ``cluster`` (the columns of :data:`simclust.frames.INTRA_SCHEMA`).

    Example:
        >>> X = [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 1.0]]
        >>> edge_stats(X, [0, 0, 0, 7], edges=([0, 1, 1], [1, 2, 0])).rows()
        [(0, 2, 0.0, 0.0, 0.0), (7, 0, None, None, None)]

    """
    lab = _labelling(x, labels, n_threads, distance)
    cols = lab._native.edge_stats(*_edge_ends(edges))
    schema = frames.subschema(frames.INTRA_SCHEMA, ["cluster", "n_edges", *_EDGE_STATS.values()])
    return lab._frame(cols, schema, _EDGE_STATS)


class CentroidStats(NamedTuple):
    """What :func:`centroid_stats` returns."""

    clusters: pl.DataFrame
    """One row per cluster (:data:`simclust.frames.CENTROID_SCHEMA`)."""
    rows: pl.DataFrame
    """One row per input row (:data:`simclust.frames.ROW_CENTROID_SCHEMA`)."""
    centroids: npt.NDArray[np.float32]
    """``K x D`` unit centroids; row ``c`` belongs to ``clusters["cluster"][c]``."""


def centroid_stats(
    x: npt.ArrayLike | Labelling,
    labels: LabelsLike | None = None,
    *,
    distance: str | type[Distance] | None = None,
    n_threads: int | None = None,
    progress: Progress | None = None,
    with_centroids: bool = True,
) -> CentroidStats:
    """Each cluster's centroid, each row's cosine similarity to it, and the medoid.

    The centroid of a cluster is the normalised mean of its normalised members (the unit
    vector with the largest total cosine similarity to them); under
    ``distance="euclidean"`` the plain mean of the rows, each row's
    ``centroid_distance`` to it, ``centroid_distance_mean/min/max``, the medoid the
    member nearest it and ``nearest_cluster_distance``. Per row:
    ``centroid_similarity`` (null for noise and singletons: a lone row is its own
    centroid). Per cluster: the mean/min/max of its members' centroid similarities (null
    for singletons), the ``medoid`` (row index of the member most similar
    to the centroid, ties to the lower index; it is also the member with the largest
    total similarity to the other members), and the ``nearest_cluster`` by centroid
    cosine similarity with that similarity (null when K < 2; searched as the
    :class:`Labelling`'s ``search`` says, recorded in its ``searches``). If the members of a
    cluster cancel out exactly (zero mean), its centroid is undefined: NaN centroid,
    null statistics. ``with_centroids=False`` leaves ``centroids`` empty (``0 x D``):
    at a million rows with as many clusters they are gigabytes nobody may read.

    Example:
        >>> X = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]]
        >>> res = centroid_stats(X, [3, 3, 3, 5])
        >>> res.clusters.select("cluster", "medoid", "nearest_cluster").rows()
        [(3, 2, 5), (5, 3, 3)]
        >>> res.rows["centroid_similarity"].cast(pl.Float64).round(3).to_list()
        [0.707, 0.707, 1.0, None]

    """
    lab = _labelling(x, labels, n_threads, distance)
    cols = lab._native.centroid_stats(with_centroids=with_centroids, progress=progress)
    lab._record("centroid_stats", cols.pop("search"))
    # a singleton is its own centroid: its value to it (1.0, or distance 0) says nothing
    single = np.asarray(cols["size"]) == 1
    stats = [lab.distance.columns[c] for c in _CENTROID_STATS.values() if c.startswith("centroid")]
    clusters = lab._frame(cols, frames.CENTROID_SCHEMA, _CENTROID_STATS).with_columns(
        pl.when(pl.col("nearest_cluster") >= 0).then(pl.col("nearest_cluster")),
        pl.when(pl.col("medoid") != _U32_MAX).then(pl.col("medoid")),
        *(pl.when(pl.col("size") != 1).then(pl.col(c)).alias(c) for c in stats),
    )
    row_value = np.asarray(cols["row_value"], dtype=np.float32)
    singleton_ids = np.asarray(cols["cluster"])[single]
    row_value = np.where(np.isin(lab.labels, singleton_ids), np.float32(np.nan), row_value)
    rows = lab._frame(
        {
            "index": np.arange(lab.labels.size, dtype=np.uint32),
            "cluster": lab.labels,
            "centroid_similarity": row_value,
        },
        frames.ROW_CENTROID_SCHEMA,
    )
    return CentroidStats(clusters, rows, cols["centroids"])


def _cluster_subset(clusters: npt.ArrayLike | None) -> npt.NDArray[np.int64] | None:
    if clusters is None:
        return None
    a = np.asarray(clusters)
    if a.size and a.dtype.kind not in "iu":
        raise InvalidInputError(f"clusters must hold integer cluster ids, got dtype {a.dtype}")
    return np.ascontiguousarray(a.reshape(-1), dtype=np.int64)


def inter_centroid(
    x: npt.ArrayLike | Labelling,
    labels: LabelsLike | None = None,
    *,
    top_m: int | None = None,
    clusters: npt.ArrayLike | None = None,
    distance: str | type[Distance] | None = None,
    n_threads: int | None = None,
    progress: Progress | None = None,
) -> pl.DataFrame:
    """Cosine similarity (or the distance's value) between cluster centroids, in long form.

    For each cluster (ascending id), its ``top_m`` nearest other clusters by centroid
    cosine similarity, most similar first, ties to the lower id (exact: a blocked kNN
    over the centroids). ``top_m=None`` lists all ``K - 1`` others, so both directions
    of every pair appear (``K * (K - 1)`` rows, ``O(K**2)`` memory): pass ``top_m`` when
    K is large. ``clusters`` restricts both sides to those cluster ids (default: all).
    Clusters with an undefined centroid are left out.

    Returns:
        A frame with :data:`simclust.frames.INTER_SCHEMA`.

    Raises:
        ParameterError: a cluster id in ``clusters`` that no row has.

    Example:
        >>> X = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
        >>> inter_centroid(X, [0, 1, 2], top_m=1).rows()
        [(0, 2, 0.7071067690849304), (1, 2, 0.7071067690849304), (2, 0, 0.7071067690849304)]

    """
    m = None if top_m is None else _as_count(top_m, "top_m")
    lab = _labelling(x, labels, n_threads, distance)
    cols = lab._native.inter_centroid(_cluster_subset(clusters), m, progress=progress)
    lab._record("inter_centroid", cols.pop("search"))
    return lab._frame(cols, frames.INTER_SCHEMA, {"value": "centroid_similarity"})


def centroid_similarity_matrix(
    x: npt.ArrayLike | Labelling,
    labels: LabelsLike | None = None,
    *,
    clusters: npt.ArrayLike | None = None,
    distance: str | type[Distance] | None = None,
    n_threads: int | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Return the dense ``K x K`` matrix of cosine similarities (or distances) of centroids.

    ``clusters`` restricts the matrix to those cluster ids (default: all).

    Returns:
        ``(cluster_ids, matrix)``: the ascending cluster ids (noise excluded) and the
        float32 matrix whose entry ``[i, j]`` is the centroid cosine similarity of
        clusters ``cluster_ids[i]`` and ``cluster_ids[j]`` (NaN rows/columns for an
        undefined centroid). Memory is ``4 * K**2`` bytes.

    Example:
        >>> X = [[1.0, 0.0], [0.0, 1.0], [0.0, 2.0]]
        >>> ids, sim = centroid_similarity_matrix(X, [4, 9, 9])
        >>> ids.tolist(), sim.round(3).tolist()
        ([4, 9], [[1.0, 0.0], [0.0, 1.0]])

    """
    lab = _labelling(x, labels, n_threads, distance)
    return lab._native.centroid_matrix(_cluster_subset(clusters))


def cluster_linkage(
    x: npt.ArrayLike | Labelling,
    labels: LabelsLike | None = None,
    pairs: Sequence[tuple[int, int]] | npt.ArrayLike = (),
    *,
    distance: str | type[Distance] | None = None,
    n_threads: int | None = None,
    progress: Progress | None = None,
) -> pl.DataFrame:
    """Exact linkage between chosen pairs of clusters, over all their cross pairs.

    For each ``(a, b)`` in ``pairs`` (cluster ids, ``a != b``): the number of cross pairs
    ``size_a * size_b`` and the mean (average linkage), min (complete linkage) and max
    (single linkage) cosine similarity over all of them, by blocked GEMM.

    Returns:
        A frame with :data:`simclust.frames.LINKAGE_SCHEMA`, one row per pair, in the
        given order.

    Raises:
        ParameterError: a cluster id no row has, or a pair ``(a, a)``.

    Example:
        >>> X = [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]
        >>> cluster_linkage(X, [0, 0, 1], [(0, 1)]).rows()
        [(0, 1, 2, -0.5, -1.0, 0.0)]

    """
    p = np.asarray(pairs)
    if p.size == 0:
        p = p.reshape(0, 2)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ShapeError(f"pairs must be a sequence of (a, b) cluster ids, got shape {p.shape}")
    if p.size and p.dtype.kind not in "iu":
        raise InvalidInputError(f"pairs must hold integer cluster ids, got dtype {p.dtype}")
    pa = np.ascontiguousarray(p[:, 0], dtype=np.int64)
    pb = np.ascontiguousarray(p[:, 1], dtype=np.int64)
    lab = _labelling(x, labels, n_threads, distance)
    cols = lab._native.linkage(pa, pb, progress=progress)
    return lab._frame(cols, frames.LINKAGE_SCHEMA, _STATS)


class Silhouette(NamedTuple):
    """What :func:`silhouette` returns."""

    rows: pl.DataFrame
    """One row per input row (:data:`simclust.frames.ROW_SILHOUETTE_SCHEMA`)."""
    clusters: pl.DataFrame
    """One row per cluster (:data:`simclust.frames.SILHOUETTE_SCHEMA`)."""
    mean: float
    """Mean silhouette over the clustered rows (noise excluded)."""


def silhouette(
    x: npt.ArrayLike | Labelling,
    labels: LabelsLike | None = None,
    *,
    distance: str | type[Distance] | None = None,
    n_threads: int | None = None,
    progress: Progress | None = None,
) -> Silhouette:
    """Cosine silhouette of every row, its per-cluster mean and the overall mean.

    Uses cosine DISTANCES ``1 - cos``, as ``sklearn.metrics.silhouette_samples(X, labels,
    metric="cosine")``: with ``a`` the mean distance of a row to the other members of its
    cluster and ``b`` the smallest mean distance to another cluster, ``s = (b - a) /
    max(a, b)``; members of singleton clusters get 0. Exact, yet ``O(N * K * D)`` rather
    than ``O(N**2 * D)``: for unit rows the sum of cosines to a cluster is the dot
    product with the sum of its members, so the core multiplies the rows by the ``K``
    cluster means (blocked GEMM, ``O(N + K * D)`` memory).

    With very many clusters (a threshold run at a million rows has ~300k) that is still
    too much, and the :class:`Labelling`'s ``search`` applies to ``b``: over a partition
    of the cluster means, each cluster's rows are compared with the means in the
    ``nprobe`` lists nearest to its own; ``a`` stays exact, a missed nearest cluster can
    only make ``b`` and ``s`` larger, and the share of seeded rows whose ``b`` is exact is
    recorded as the ``recall`` in ``Labelling.searches["silhouette"]``.

    Under ``distance="euclidean"``: scikit-learn's default Euclidean silhouette of the
    rows as they are, exact over all pairs (``O(N**2 * D)`` through the GEMM tiles, one
    tile of memory per thread; Euclidean distances do not add up through the means).
    A similarity-only distance (the ``dot`` kernel) has no silhouette
    (:class:`ParameterError`).

    Noise rows (label ``-1``) are not scored (null) and are not a cluster: the result is
    scikit-learn's on the clustered rows alone. Requires ``2 <= K <= n - 1`` clusters over
    the ``n`` clustered rows.

    Example:
        >>> X = [[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0], [-1.0, -1.0]]
        >>> res = silhouette(X, [0, 0, 1, 1, -1])
        >>> res.rows["silhouette"].cast(pl.Float64).round(3).to_list()
        [0.995, 0.994, 0.995, 0.994, None]
        >>> round(res.mean, 3)
        0.994

    """
    lab = _labelling(x, labels, n_threads, distance)
    cols, mean = lab._native.silhouette(progress=progress)
    lab._record("silhouette", cols.pop("search"))
    rows = frames.columns_frame(
        {
            "index": np.arange(lab.labels.size, dtype=np.uint32),
            "cluster": lab.labels,
            "silhouette": cols["silhouette"],
        },
        frames.ROW_SILHOUETTE_SCHEMA,
    )
    return Silhouette(rows, frames.columns_frame(cols, frames.SILHOUETTE_SCHEMA), float(mean))


def davies_bouldin(
    x: npt.ArrayLike | Labelling, labels: LabelsLike | None = None, *, n_threads: int | None = None
) -> float:
    """Davies-Bouldin index of the L2-normalised rows (noise excluded); lower is better.

    Given a :class:`Labelling` of a non-cosine distance, of its rows as they are.

    Equals ``sklearn.metrics.davies_bouldin_score`` on the normalised clustered rows
    (Euclidean geometry of the unit vectors: cluster means and mean distances to them).
    Requires ``2 <= K <= n - 1`` clusters.

    Example:
        >>> X = [[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]]
        >>> round(davies_bouldin(X, [0, 0, 1, 1]), 3)
        0.074

    """
    return float(_labelling(x, labels, n_threads)._native.davies_bouldin())


def calinski_harabasz(
    x: npt.ArrayLike | Labelling, labels: LabelsLike | None = None, *, n_threads: int | None = None
) -> float:
    """Calinski-Harabasz index of the L2-normalised rows (noise excluded); higher is better.

    Given a :class:`Labelling` of a non-cosine distance, of its rows as they are.

    Equals ``sklearn.metrics.calinski_harabasz_score`` on the normalised clustered rows.
    Requires ``2 <= K <= n - 1`` clusters.

    Example:
        >>> X = [[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]]
        >>> round(calinski_harabasz(X, [0, 0, 1, 1]), 1)
        362.0

    """
    return float(_labelling(x, labels, n_threads)._native.calinski_harabasz())
