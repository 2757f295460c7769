"""Typed array operations over the Rust core: the building blocks of simclust.

Every function accepts any real numeric dtype and any memory order; arrays are
converted once, at this edge, to float32 C-order (``np.ascontiguousarray``),
and rows are L2-normalised inside the core, so similarities are cosine
similarities. Long calls run without the GIL and stop on Ctrl-C.

Example:
    >>> import numpy as np
    >>> from simclust import ops
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> idx, sim = ops.knn(X, 1)
    >>> idx[:, 0].tolist()
    [1, 0, 3, 2]

"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt
import polars as pl

from simclust import _native, frames
from simclust.exceptions import (
    ClusteringWarning,
    InvalidInputError,
    ParameterError,
    ShapeError,
)

__all__ = [
    "CentroidStats",
    "Labelling",
    "Silhouette",
    "bridge_similarity",
    "calinski_harabasz",
    "centroid_similarity_matrix",
    "centroid_stats",
    "cluster_linkage",
    "connected_components",
    "davies_bouldin",
    "edge_stats",
    "inter_centroid",
    "intra_stats",
    "kmeans",
    "kmeans_assign",
    "knn",
    "knn_edges",
    "normalize",
    "resolve_threads",
    "silhouette",
    "threshold_edges",
    "threshold_sweep",
]

Progress = Callable[[int, int], object]
"""``progress(done, total)``, called about ten times a second during long calls."""

EdgeArrays = tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32]]

_U32_MAX = np.iinfo(np.uint32).max


def _as_matrix(x: npt.ArrayLike, name: str) -> npt.NDArray[np.float32]:
    """Return ``x`` as a 2-D float32 C-contiguous array (no copy when it already is)."""
    a = np.asarray(x)
    if a.dtype.kind not in "fiub":
        raise InvalidInputError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ShapeError(f"{name} must be a 2-D array (rows x dimensions), got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float32)


_T = TypeVar("_T", bound=np.generic)


def _as_vector(x: npt.ArrayLike, name: str, dtype: type[_T]) -> npt.NDArray[_T]:
    a = np.asarray(x)
    if a.ndim != 1:
        raise ShapeError(f"{name} must be a 1-D array, got shape {a.shape}")
    if a.dtype.kind not in "fiub":
        raise InvalidInputError(f"{name} must hold real numbers, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=dtype)


def _as_nodes(x: npt.ArrayLike, name: str) -> npt.NDArray[np.uint32]:
    """Node ids as uint32; negative or too large ids are a ParameterError."""
    a = np.asarray(x)
    if a.ndim != 1:
        raise ShapeError(f"{name} must be a 1-D array of node ids, got shape {a.shape}")
    if a.size and a.dtype.kind not in "iu":
        raise InvalidInputError(f"{name} must hold integer node ids, got dtype {a.dtype}")
    if a.size and (int(a.min()) < 0 or int(a.max()) > _U32_MAX):
        bad = int(np.flatnonzero((a < 0) | (a > _U32_MAX))[0])
        raise ParameterError(f"{name}[{bad}] = {a[bad]} is not a valid node id")
    return np.ascontiguousarray(a, dtype=np.uint32)


def _as_count(value: int, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ParameterError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def resolve_threads(n_threads: int | None = None) -> int:
    """The number of threads a kernel runs with for ``n_threads``.

    ``None`` means ``SIMCLUST_NUM_THREADS`` if set, else every core. A count below 1,
    above ``max(256, 4 x cores)``, or an invalid ``SIMCLUST_NUM_THREADS`` raises
    :class:`~simclust.exceptions.ParameterError`: it is never ignored or clipped.

    Example:
        >>> resolve_threads(2)
        2
        >>> resolve_threads(0)
        Traceback (most recent call last):
        ...
        simclust.exceptions.ParameterError: n_threads must be >= 1, got 0

    """
    if n_threads is None:
        return _native.resolve_threads(None)
    n = _as_count(n_threads, "n_threads")
    return _native.resolve_threads(min(n, 2**62))


def _as_threads(n_threads: int | None) -> int | None:
    return None if n_threads is None else resolve_threads(n_threads)


def _as_threshold(threshold: float) -> float:
    t = float(threshold)
    if not -1.0 <= t <= 1.0:
        raise ParameterError(f"threshold must be a cosine similarity in [-1, 1], got {threshold}")
    return t


def normalize(x: npt.ArrayLike, *, n_threads: int | None = None) -> npt.NDArray[np.float32]:
    """Return the rows of ``x`` scaled to unit L2 norm, as float32.

    Raises:
        InvalidInputError: rows with NaN/Inf or of zero norm (listed by index).
        ShapeError: ``x`` is not 2-D or is empty.

    Example:
        >>> normalize([[3.0, 4.0]]).tolist()
        [[0.6000000238418579, 0.800000011920929]]

    """
    return _native.normalize(_as_matrix(x, "X"), n_threads=_as_threads(n_threads))


def knn(
    x: npt.ArrayLike,
    k: int,
    *,
    Y: npt.ArrayLike | None = None,  # noqa: N803 (X/Y is the field's convention)
    n_threads: int | None = None,
    progress: Progress | None = None,
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]]:
    """Exact cosine k-nearest neighbours.

    With ``Y=None`` this is a self-search over the rows of ``x``: each row's
    own index is excluded and ``1 <= k <= N - 1``. With ``Y`` (M x D) every
    row of ``x`` is searched among the rows of ``Y`` (nothing excluded,
    ``1 <= k <= M``). Rows are sorted by similarity, highest first; ties go to
    the lower index. Exact: every pair is computed (blocked GEMM), and the
    self-search computes each pair once for both rows.

    Args:
        x: N x D embeddings.
        k: neighbours per row.
        Y: optional M x D database to search instead of ``x`` itself.
        n_threads: threads (default ``SIMCLUST_NUM_THREADS`` or all cores).
        progress: optional ``progress(done, total)`` callback (tiles).

    Returns:
        ``(indices, similarities)``: uint32 and float32 arrays of shape (N, k).

    Example:
        >>> X = [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]
        >>> idx, sim = knn(X, 2)
        >>> idx.tolist()
        [[1, 2], [0, 2], [1, 0]]

    """
    xm = _as_matrix(x, "X")
    kk = _as_count(k, "k")
    threads = _as_threads(n_threads)
    if Y is None:
        return _native.knn(xm, kk, n_threads=threads, progress=progress)
    return _native.knn_query(xm, _as_matrix(Y, "Y"), kk, n_threads=threads, progress=progress)


def threshold_edges(
    x: npt.ArrayLike,
    threshold: float,
    *,
    n_threads: int | None = None,
    progress: Progress | None = None,
) -> EdgeArrays:
    """Every pair of rows whose cosine similarity is ``>= threshold`` (the ε-graph).

    Computed exactly, tile by tile; memory grows with the number of edges,
    never with N².

    Returns:
        ``(src, dst, similarity)``: uint32, uint32, float32 arrays with
        ``src < dst``, sorted by ``(src, dst)``.

    Example:
        >>> src, dst, sim = threshold_edges([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0]], 0.9)
        >>> list(zip(src.tolist(), dst.tolist()))
        [(0, 1)]

    """
    return _native.threshold_edges(
        _as_matrix(x, "X"),
        _as_threshold(threshold),
        n_threads=_as_threads(n_threads),
        progress=progress,
    )


def knn_edges(
    x: npt.ArrayLike,
    k: int,
    threshold: float,
    *,
    n_threads: int | None = None,
    progress: Progress | None = None,
) -> EdgeArrays:
    """The exact self-kNN edges with similarity ``>= threshold``, undirected.

    Each row's ``k`` nearest neighbours give edges ``(min(i, j), max(i, j))``;
    a mutual pair appears once.

    Returns:
        ``(src, dst, similarity)`` as :func:`threshold_edges`.

    Example:
        >>> src, dst, _ = knn_edges([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], 1, 0.5)
        >>> list(zip(src.tolist(), dst.tolist()))
        [(0, 1)]

    """
    return _native.knn_edges(
        _as_matrix(x, "X"),
        _as_count(k, "k"),
        _as_threshold(threshold),
        n_threads=_as_threads(n_threads),
        progress=progress,
    )


def connected_components(
    n: int, src: npt.ArrayLike, dst: npt.ArrayLike, *, n_threads: int | None = None
) -> npt.NDArray[np.int64]:
    """Connected components of the graph with nodes ``0..n-1`` and the given edges.

    Labels are canonical: components are numbered ``0..C-1`` in the order of
    their smallest member, so the result never depends on edge order or
    thread count. Self-loops and duplicate edges are allowed.

    Example:
        >>> connected_components(5, [3, 1], [4, 0]).tolist()
        [0, 0, 1, 2, 2]

    """
    nn = _as_count(n, "n", minimum=0)
    return _native.connected_components(
        nn, _as_nodes(src, "src"), _as_nodes(dst, "dst"), n_threads=_as_threads(n_threads)
    )


def threshold_sweep(
    n: int,
    src: npt.ArrayLike,
    dst: npt.ArrayLike,
    similarity: npt.ArrayLike,
    thresholds: Sequence[float] | npt.ArrayLike,
) -> pl.DataFrame:
    """Components and largest component size at each threshold, in one pass.

    An edge counts at threshold ``t`` when its similarity is ``>= t``. Edges
    are fed to a union-find in descending similarity (single linkage), so any
    number of thresholds costs one sort.

    Returns:
        A frame with columns ``threshold: Float32``, ``n_components: UInt32``,
        ``largest_component: UInt32``, one row per threshold, in the given order.

    Example:
        >>> threshold_sweep(3, [0, 1], [1, 2], [0.95, 0.85], [0.9, 0.8])["n_components"].to_list()
        [2, 1]

    """
    nn = _as_count(n, "n", minimum=0)
    t = _as_vector(thresholds, "thresholds", np.float32)
    comps, largest = _native.threshold_sweep(
        nn,
        _as_nodes(src, "src"),
        _as_nodes(dst, "dst"),
        _as_vector(similarity, "similarity", np.float32),
        t,
    )
    return pl.DataFrame(
        {
            "threshold": pl.Series(t, dtype=pl.Float32),
            "n_components": pl.Series(comps, dtype=pl.UInt32),
            "largest_component": pl.Series(largest, dtype=pl.UInt32),
        }
    )


def bridge_similarity(
    n: int,
    src: npt.ArrayLike,
    dst: npt.ArrayLike,
    similarity: npt.ArrayLike,
    labels: npt.ArrayLike,
) -> npt.NDArray[np.float32]:
    """Per cluster, the similarity at which it would first split (single linkage).

    For cluster ``c`` (labels ``0..C-1``; ``-1`` marks noise and is ignored)
    this is the weakest edge of the maximum spanning forest of the edges
    inside ``c``: the largest ``t`` such that ``c`` stays connected using only
    its internal edges with similarity ``>= t``. For components of an
    ε-graph at threshold ``t0`` the bridge is ``>= t0``; one just above
    ``t0`` flags a chain held together by a single weak link, which the
    component's size alone does not show. NaN for singletons and for
    clusters whose internal edges do not connect them.

    Example:
        >>> bridge_similarity(3, [0, 1], [1, 2], [0.95, 0.91], [0, 0, 0]).tolist()
        [0.9100000262260437]

    """
    nn = _as_count(n, "n", minimum=0)
    lab = np.asarray(labels)
    if lab.ndim == 1 and lab.size and lab.dtype.kind not in "iu":
        raise InvalidInputError(f"labels must be integers, got dtype {lab.dtype}")
    return _native.bridge_similarity(
        nn,
        _as_nodes(src, "src"),
        _as_nodes(dst, "dst"),
        _as_vector(similarity, "similarity", np.float32),
        _as_vector(lab, "labels", np.int64),
    )


# --------------------------------------------------------------------------- cluster geometry
#
# Labels: one integer per row of ``x``; ``-1`` marks noise (no cluster). Noise rows are
# excluded from every cluster statistic (they are still checked for NaN/zero rows) and
# get null per-row values. Cluster ids need not be ``0..K-1``: gaps are allowed, and
# clusters are reported in ascending id order.

LabelsLike = npt.ArrayLike
"""Integer cluster ids, one per row: ``>= 0`` for a cluster, ``-1`` for noise."""

EdgesLike = tuple[npt.ArrayLike, ...] | pl.DataFrame
"""``(src, dst)`` or ``(src, dst, similarity)`` arrays, or an ``edges`` frame."""

_I64_MAX = np.iinfo(np.int64).max


def _as_labels(labels: LabelsLike) -> npt.NDArray[np.int64]:
    """Labels as int64; non-integer dtypes are an InvalidInputError."""
    a = np.asarray(labels)
    if a.ndim != 1:
        raise ShapeError(f"labels must be a 1-D array (one per row), got shape {a.shape}")
    if a.size and a.dtype.kind not in "iu":
        raise InvalidInputError(
            f"labels must be integer cluster ids (-1 = noise), got dtype {a.dtype}"
        )
    if a.size and a.dtype.kind == "u" and int(a.max()) > _I64_MAX:
        bad = int(np.flatnonzero(a > _I64_MAX)[0])
        raise ParameterError(f"labels[{bad}] = {a[bad]} does not fit in int64")
    return np.ascontiguousarray(a, dtype=np.int64)


def _edge_ends(edges: EdgesLike) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    if isinstance(edges, pl.DataFrame):
        missing = {"src", "dst"} - set(edges.columns)
        if missing:
            raise ShapeError(f"the edges frame lacks the column(s) {sorted(missing)}")
        src: npt.ArrayLike = edges["src"].to_numpy()
        dst: npt.ArrayLike = edges["dst"].to_numpy()
    else:
        if len(edges) not in (2, 3):
            raise ShapeError(
                f"edges must be (src, dst) or (src, dst, similarity), got {len(edges)} arrays"
            )
        src, dst = edges[0], edges[1]
    return _as_nodes(src, "src"), _as_nodes(dst, "dst")


class Labelling:
    """Rows validated, normalised and gathered cluster by cluster once, for many metrics.

    Every metric function below takes a ``Labelling`` in place of ``x`` (then without
    ``labels``): a run builds one and all its metrics read the same gathered copy of
    the rows, so the rows are checked, normalised and copied once per run, and the
    centroids are computed once for :func:`centroid_stats`, :func:`inter_centroid` and
    :func:`centroid_similarity_matrix`. Given an array and labels instead, each
    function builds its own.

    Args:
        x: N x D embeddings (any float dtype; rows are normalised).
        labels: one int cluster id per row (``-1`` = noise).
        n_threads: threads for every kernel run on it (default ``SIMCLUST_NUM_THREADS``
            or all cores).

    Raises:
        ShapeError: ``labels`` does not have one entry per row.
        InvalidInputError: NaN/Inf or zero rows in ``x`` (every one listed).

    Example:
        >>> lab = Labelling([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], [0, 0, 1])
        >>> lab.cluster_ids.tolist(), intra_stats(lab)["n_pairs"].to_list()
        ([0, 1], [1, 0])

    """

    def __init__(
        self, x: npt.ArrayLike, labels: LabelsLike, *, n_threads: int | None = None
    ) -> None:
        self.labels = _as_labels(labels)
        self._native = _native.Labelling(
            _as_matrix(x, "X"), self.labels, n_threads=_as_threads(n_threads)
        )

    @property
    def n_rows(self) -> int:
        """The number of input rows (noise included)."""
        return int(self._native.n_rows)

    @property
    def cluster_ids(self) -> npt.NDArray[np.int64]:
        """The cluster ids, ascending (noise excluded)."""
        return self._native.cluster_ids


def _labelling(
    x: npt.ArrayLike | Labelling, labels: LabelsLike | None, n_threads: int | None
) -> Labelling:
    """``x`` itself when it is a :class:`Labelling`, else one built from ``x, labels``."""
    if isinstance(x, Labelling):
        if labels is not None:
            raise ParameterError(
                "pass labels with an array x, not with a Labelling (it has its own)"
            )
        return x
    if labels is None:
        raise ParameterError("labels is required when x is an array")
    return Labelling(x, labels, n_threads=n_threads)


def intra_stats(
    x: npt.ArrayLike | Labelling,
    labels: LabelsLike | None = None,
    *,
    edges: EdgesLike | None = None,
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

    Returns:
        A frame with :data:`simclust.frames.INTRA_SCHEMA`, one row per cluster,
        ascending ``cluster``.

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
    lab = _labelling(x, labels, n_threads)
    cols = lab._native.intra_stats(progress=progress)
    if edges is not None:
        cols.update(lab._native.edge_stats(*_edge_ends(edges)))
    else:
        k = len(cols["cluster"])
        cols.update(
            n_edges=np.zeros(k, np.uint64),
            **{c: np.full(k, np.nan) for c in ("edge_sim_mean", "edge_sim_min", "edge_sim_max")},
        )
    return frames.columns_frame(cols, frames.INTRA_SCHEMA)


def edge_stats(
    x: npt.ArrayLike | Labelling,
    labels: LabelsLike | None = None,
    *,
    edges: EdgesLike,
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
    lab = _labelling(x, labels, n_threads)
    cols = lab._native.edge_stats(*_edge_ends(edges))
    schema = frames.subschema(
        frames.INTRA_SCHEMA, ["cluster", "n_edges", "edge_sim_mean", "edge_sim_min", "edge_sim_max"]
    )
    return frames.columns_frame(cols, schema)


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
    n_threads: int | None = None,
) -> CentroidStats:
    """Each cluster's centroid, each row's cosine similarity to it, and the medoid.

    The centroid of a cluster is the normalised mean of its normalised members (the unit
    vector with the largest total cosine similarity to them). Per row:
    ``centroid_similarity`` (null for noise). Per cluster: the mean/min/max of its
    members' centroid similarities, the ``medoid`` (row index of the member most similar
    to the centroid, ties to the lower index; it is also the member with the largest
    total similarity to the other members), and the ``nearest_cluster`` by centroid
    cosine similarity with that similarity (null when K < 2). If the members of a
    cluster cancel out exactly (zero mean), its centroid is undefined: NaN centroid,
    null statistics.

    Example:
        >>> X = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]]
        >>> res = centroid_stats(X, [3, 3, 3, 5])
        >>> res.clusters.select("cluster", "medoid", "nearest_cluster").rows()
        [(3, 2, 5), (5, 3, 3)]
        >>> res.rows["centroid_similarity"].cast(pl.Float64).round(3).to_list()
        [0.707, 0.707, 1.0, 1.0]

    """
    lab = _labelling(x, labels, n_threads)
    cols = lab._native.centroid_stats()
    clusters = frames.columns_frame(cols, frames.CENTROID_SCHEMA).with_columns(
        pl.when(pl.col("nearest_cluster") >= 0).then(pl.col("nearest_cluster")),
        pl.when(pl.col("medoid") != _U32_MAX).then(pl.col("medoid")),
    )
    rows = frames.columns_frame(
        {
            "index": np.arange(lab.labels.size, dtype=np.uint32),
            "cluster": lab.labels,
            "centroid_similarity": cols["centroid_similarity"],
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
    n_threads: int | None = None,
    progress: Progress | None = None,
) -> pl.DataFrame:
    """Cosine similarity between cluster centroids, in long form.

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
    lab = _labelling(x, labels, n_threads)
    cols = lab._native.inter_centroid(_cluster_subset(clusters), m, progress=progress)
    return frames.columns_frame(cols, frames.INTER_SCHEMA)


def centroid_similarity_matrix(
    x: npt.ArrayLike | Labelling,
    labels: LabelsLike | None = None,
    *,
    clusters: npt.ArrayLike | None = None,
    n_threads: int | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Return the dense ``K x K`` matrix of cosine similarities between cluster centroids.

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
    lab = _labelling(x, labels, n_threads)
    return lab._native.centroid_similarity_matrix(_cluster_subset(clusters))


def cluster_linkage(
    x: npt.ArrayLike | Labelling,
    labels: LabelsLike | None = None,
    pairs: Sequence[tuple[int, int]] | npt.ArrayLike = (),
    *,
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
    lab = _labelling(x, labels, n_threads)
    cols = lab._native.linkage(pa, pb, progress=progress)
    return frames.columns_frame(cols, frames.LINKAGE_SCHEMA)


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
    n_threads: int | None = None,
    progress: Progress | None = None,
) -> Silhouette:
    """Exact cosine silhouette of every row, its per-cluster mean and the overall mean.

    Uses cosine DISTANCES ``1 - cos``, as ``sklearn.metrics.silhouette_samples(X, labels,
    metric="cosine")``: with ``a`` the mean distance of a row to the other members of its
    cluster and ``b`` the smallest mean distance to another cluster, ``s = (b - a) /
    max(a, b)``; members of singleton clusters get 0. Exact, yet ``O(N * K * D)`` rather
    than ``O(N**2 * D)``: for unit rows the sum of cosines to a cluster is the dot
    product with the sum of its members, so the core multiplies the rows by the ``K``
    cluster means (blocked GEMM, ``O(N + K * D)`` memory).

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
    lab = _labelling(x, labels, n_threads)
    cols, mean = lab._native.silhouette(progress=progress)
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

    Equals ``sklearn.metrics.calinski_harabasz_score`` on the normalised clustered rows.
    Requires ``2 <= K <= n - 1`` clusters.

    Example:
        >>> X = [[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]]
        >>> round(calinski_harabasz(X, [0, 0, 1, 1]), 1)
        362.0

    """
    return float(_labelling(x, labels, n_threads)._native.calinski_harabasz())


# --------------------------------------------------------------------------- k-means

KMeansInit = str | npt.ArrayLike
"""``"k-means++"``, ``"random"`` or an ``(n_clusters, D)`` array of initial centroids."""

_U64_MAX = 2**64 - 1


class _KMeansOutput(NamedTuple):
    """Everything the core returns for one k-means fit (the estimator keeps it all)."""

    labels: npt.NDArray[np.int64]
    centroids: npt.NDArray[np.float32]
    objective: float
    n_iter: int
    converged: bool
    n_reseeded: int
    n_empty: int


def _as_metric(metric: str) -> str:
    if not isinstance(metric, str):
        raise ParameterError(f'metric must be "cosine" or "euclidean", got {metric!r}')
    return metric


def _as_seed(random_state: int) -> int:
    if (
        isinstance(random_state, bool)
        or not isinstance(random_state, numbers.Integral)
        or not 0 <= int(random_state) <= _U64_MAX
    ):
        raise ParameterError(
            f"random_state must be an integer in [0, 2**64 - 1], got {random_state!r}"
        )
    return int(random_state)


def _kmeans_fit(
    x: npt.ArrayLike,
    n_clusters: int,
    *,
    metric: str,
    init: KMeansInit,
    n_init: int,
    max_iter: int,
    tol: float,
    random_state: int,
    n_threads: int | None,
    progress: Progress | None,
    stacklevel: int,
) -> _KMeansOutput:
    """Validate, run the core, warn about empty clusters; shared by ``kmeans`` and ``KMeans``."""
    xm = _as_matrix(x, "X")
    k = _as_count(n_clusters, "n_clusters")
    runs = _as_count(n_init, "n_init")
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
        raise ParameterError(f"tol must be a finite number >= 0, got {tol!r}")
    init_name = "k-means++"
    init_centroids: npt.NDArray[np.float32] | None = None
    if isinstance(init, str):
        init_name = init
    else:
        init_centroids = _as_matrix(init, "init")
        if runs > 1:
            warnings.warn(
                f"explicit initial centroids were given: running one initialisation "
                f"instead of n_init={runs}",
                RuntimeWarning,
                stacklevel=stacklevel,
            )
    out = _KMeansOutput(
        *_native.kmeans(
            xm,
            k,
            metric=_as_metric(metric),
            init=init_name,
            init_centroids=init_centroids,
            n_init=runs,
            max_iter=_as_count(max_iter, "max_iter"),
            tol=float(tol),
            random_state=_as_seed(random_state),
            n_threads=_as_threads(n_threads),
            progress=progress,
        )
    )
    if out.n_empty:
        warnings.warn(
            f"only {k - out.n_empty} of n_clusters={k} clusters are non-empty: X has fewer "
            f"distinct {'directions' if metric == 'cosine' else 'points'} than n_clusters. "
            "No row has the label of an empty cluster; its centroid stays where "
            "initialisation put it (a duplicate of another centroid).",
            ClusteringWarning,
            stacklevel=stacklevel,
        )
    return out


def kmeans(
    x: npt.ArrayLike,
    n_clusters: int,
    *,
    metric: str = "cosine",
    init: KMeansInit = "k-means++",
    n_init: int = 1,
    max_iter: int = 100,
    tol: float = 1e-4,
    random_state: int = 0,
    n_threads: int | None = None,
    progress: Progress | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], float, int]:
    """K-means clustering of the rows of ``x``, in the Rust core.

    ``metric="cosine"`` (the default for embeddings) is spherical k-means:
    rows and centroids are unit-normalised and each row goes to the centroid
    of highest cosine similarity. ``metric="euclidean"`` is classic k-means
    on squared Euclidean distances.

    Initialisation: greedy ``"k-means++"`` (``2 + ln k`` candidates per step,
    as scikit-learn; on a uniform sample of ``32 * n_clusters`` rows, at
    least 8192, when there are more), ``"random"`` (distinct rows), or an
    ``(n_clusters, D)`` array (``n_init`` is then 1). Lloyd iterations stop
    when no label changes, when the objective's relative decrease is at most
    ``tol``, or after ``max_iter``; the returned labels are those of the
    returned centroids. Empty clusters are re-seeded with the rows farthest
    from their centroids. The result is bit-identical for any ``n_threads``.

    Args:
        x: N x D data.
        n_clusters: number of clusters, ``1 <= n_clusters <= N``.
        metric: ``"cosine"`` or ``"euclidean"``.
        init: ``"k-means++"``, ``"random"`` or initial centroids.
        n_init: independent seedings; the lowest objective wins.
        max_iter: maximum Lloyd iterations per seeding.
        tol: relative decrease of the objective below which iterations stop
            (0: until no label changes).
        random_state: seed, an integer in ``[0, 2**64 - 1]``.
        n_threads: threads (default ``SIMCLUST_NUM_THREADS`` or all cores).
        progress: optional ``progress(done, total)`` callback (Lloyd iterations).

    Returns:
        ``(labels, centroids, objective, n_iter)``: int64 labels of shape (N,)
        in ``0..n_clusters-1``; float32 centroids of shape (n_clusters, D)
        (unit norm under cosine); the objective, lower is better: under
        ``"euclidean"`` the sum of squared distances of the rows to their
        centroids (scikit-learn's ``inertia_``), under ``"cosine"`` the sum of
        cosine distances ``1 - cos(x, centroid)``; the Lloyd iterations run.

    Raises:
        ParameterError: ``n_clusters`` outside ``1..N``, a bad ``metric``,
            ``init``, ``n_init``, ``max_iter``, ``tol`` or ``random_state``.
        InvalidInputError: rows with NaN/Inf, or of zero norm under cosine
            (listed by index; in ``init`` too).
        ShapeError: ``x`` is not 2-D or is empty, ``init`` is not
            ``(n_clusters, D)``.

    Warns:
        ClusteringWarning: some clusters are empty because ``x`` has fewer
            distinct rows (directions, under cosine) than ``n_clusters``.

    Example:
        >>> X = [[1.0, 0.1], [0.9, 0.0], [0.0, 1.0], [0.1, 0.8]]
        >>> labels, centroids, objective, n_iter = kmeans(X, 2, metric="euclidean")
        >>> bool(labels[0] == labels[1] and labels[2] == labels[3] and labels[0] != labels[2])
        True
        >>> round(objective, 4)
        0.035

    """
    out = _kmeans_fit(
        x,
        n_clusters,
        metric=metric,
        init=init,
        n_init=n_init,
        max_iter=max_iter,
        tol=tol,
        random_state=random_state,
        n_threads=n_threads,
        progress=progress,
        stacklevel=3,
    )
    return out.labels, out.centroids, out.objective, out.n_iter


def kmeans_assign(
    x: npt.ArrayLike,
    centroids: npt.ArrayLike,
    *,
    metric: str = "cosine",
    n_threads: int | None = None,
) -> tuple[npt.NDArray[np.int64], float]:
    """Assign each row of ``x`` to its closest centroid (k-means' predict).

    Returns:
        ``(labels, objective)``: int64 labels of shape (N,) (lowest index on
        ties) and the objective of this assignment, as in :func:`kmeans`.

    Example:
        >>> labels, objective = kmeans_assign([[1.0, 0.0], [0.0, 2.0]], [[0.0, 1.0], [1.0, 0.0]])
        >>> labels.tolist(), objective
        ([1, 0], 0.0)

    """
    return _native.kmeans_assign(
        _as_matrix(x, "X"),
        _as_matrix(centroids, "centroids"),
        metric=_as_metric(metric),
        n_threads=_as_threads(n_threads),
    )
