"""Similarity graphs: specs, graphs, and the one place that builds them.

:class:`GraphSpec` says what a run needs, :class:`Graph` is what it gets, and
:func:`build_graph` builds it within an edge budget checked before any pair is computed.

Example:
    >>> X = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0]], dtype=np.float32)
    >>> X /= np.linalg.norm(X, axis=1, keepdims=True)
    >>> g = build_graph(X, GraphSpec("threshold", threshold=0.9))
    >>> g.src.tolist(), g.dst.tolist()
    ([0], [1])

"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt
import polars as pl

from simclust import ops
from simclust.edge_budget import (
    DEFAULT_MAX_EDGES,
    EdgeEstimate,
    check_edge_budget,
    estimate_edges,
)
from simclust.exceptions import ConfigError, ParameterError
from simclust.frames import edges_frame
from simclust.ops import EdgeArrays

__all__ = [
    "DEFAULT_MAX_EDGES",
    "SWEEP_BELOW",
    "BackendEdges",
    "EdgeBackend",
    "EdgeEstimate",
    "Graph",
    "GraphKind",
    "GraphSpec",
    "SearchSettings",
    "build_graph",
    "build_run_graphs",
    "check_edge_budget",
    "estimate_edges",
    "sweep_thresholds",
]

GraphKind = Literal["knn", "threshold"]

SearchMethod = Literal["auto", "exact", "ivf", "certified"]
SEARCH_METHODS: tuple[str, ...] = ("auto", "exact", "ivf", "certified")


KNN_NPROBE = 2
"""Default ``nprobe`` of an ``ivf`` kNN graph: each row is compared with its own list and
its next nearest; the 5% of rows whose neighbours are then least similar with 32 lists, and
NN-descent refines the lists (1M x 384, k = 10: recall@10 0.98, see bench/bench_scale.py)."""

THRESHOLD_NPROBE = 8
"""Default ``nprobe`` of an ``ivf`` ε-graph: each list is compared with its 8 nearest
(1M x 384, t = 0.9: pair recall 0.995)."""


@dataclass(frozen=True)
class SearchSettings:
    """How graphs are searched (``[graph] search``, ``nprobe``, ``n_lists``, ``recall_rows``).

    Attributes:
        method: ``"exact"`` (brute force, every pair), ``"ivf"`` (rows split into
            lists by spherical k-means and compared only with nearby lists: approximate,
            with the recall measured and recorded), ``"certified"``
            (threshold graphs: lists that cannot hold an edge are skipped by the
            triangle inequality on angles; exact), or ``"auto"``: exact while the brute
            force is small (:func:`simclust.ops.auto_exact`), else ``ivf``.
        nprobe: nearest lists compared (``ivf``): for a kNN graph each row's, then
            refined by NN-descent (default :data:`KNN_NPROBE`); for an ε-graph each
            list's (default :data:`THRESHOLD_NPROBE`). ``None``: the default.
        n_lists: lists (default ``2 sqrt(N)``).
        recall_rows: seeded rows the recall of an ``ivf`` graph is measured on.

    Example:
        >>> SearchSettings().choose(1_000_000, 384, "knn")
        ('ivf', 'auto: the brute force would take 1.9e+14 multiply-adds')

    """

    method: SearchMethod = "auto"
    nprobe: int | None = None
    n_lists: int | None = None
    recall_rows: int = 1000

    def nprobe_for(self, kind: GraphKind) -> int:
        """The ``nprobe`` of a graph of this kind: the configured one, else the default.

        Example:
            >>> SearchSettings().nprobe_for("knn"), SearchSettings(nprobe=4).nprobe_for("knn")
            (2, 4)

        """
        if self.nprobe is not None:
            return self.nprobe
        return KNN_NPROBE if kind == "knn" else THRESHOLD_NPROBE

    def choose(self, n: int, d: int, kind: GraphKind) -> tuple[str, str]:
        """The method for ``n`` rows of dimension ``d``, and why it was chosen."""
        if self.method == "certified" and kind != "threshold":
            raise ConfigError(
                "graph.search: 'certified' builds threshold graphs; a kNN graph is "
                "searched 'exact' or 'ivf'"
            )
        if self.method != "auto":
            return self.method, "configured"
        exact, why = ops.auto_exact(n, d)
        return ("exact" if exact else "ivf"), why


@dataclass(frozen=True)
class GraphSpec:
    """Which similarity graph a strategy or metric needs.

    Attributes:
        kind: ``"knn"`` (each row's ``k`` exact nearest neighbours) or ``"threshold"``
            (every pair with cosine similarity ``>= threshold``, the ε-graph).
        k: neighbours per row for ``"knn"``.
        threshold: the similarity an edge needs; for ``"knn"`` ``None`` keeps every
            kNN edge.

    Example:
        >>> GraphSpec("threshold", threshold=0.9)
        GraphSpec(kind='threshold', k=10, threshold=0.9)

    """

    kind: GraphKind = "knn"
    k: int = 10
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("knn", "threshold"):
            raise ParameterError(f"graph kind must be 'knn' or 'threshold', got {self.kind!r}")
        if self.kind == "threshold" and self.threshold is None:
            raise ParameterError("a 'threshold' graph needs a threshold")


@dataclass(frozen=True)
class Graph:
    """An undirected similarity graph over the rows: edges ``src < dst``, unique.

    Example:
        >>> g = Graph(GraphSpec("threshold", threshold=0.5), 3,
        ...           np.array([0], np.uint32), np.array([2], np.uint32),
        ...           np.array([0.7], np.float32))
        >>> g.n_edges
        1

    """

    spec: GraphSpec
    n_nodes: int
    src: npt.NDArray[np.uint32]
    dst: npt.NDArray[np.uint32]
    similarity: npt.NDArray[np.float32]
    search: Mapping[str, Any] = field(default_factory=lambda: {"method": "exact"})
    """How the graph was built: ``method`` (``exact``, ``ivf`` or ``certified``) and,
    for a partitioned search, ``n_lists``, ``nprobe``, ``pairs_computed``,
    ``pairs_total``, ``recall`` (measured on ``recall_rows`` seeded rows; 1.0 when
    exact) and why the method was chosen."""
    forest: EdgeArrays | None = None
    """The maximum spanning forest of the edges, when the builder has it (the Ray
    backend's ε-graphs: merged from its tasks' forests, see
    :func:`simclust.ops.spanning_forest`); :meth:`spanning`."""

    @property
    def n_edges(self) -> int:
        """The number of undirected edges."""
        return int(self.src.size)

    @property
    def record(self) -> dict[str, Any]:
        """What the graph is (``kind``, ``k`` for kNN, ``threshold``) and its :attr:`search`.

        Example:
            >>> Graph(GraphSpec("knn", k=3), 0, *np.zeros((3, 0))).record
            {'kind': 'knn', 'k': 3, 'threshold': None, 'method': 'exact'}

        """
        k = {"k": self.spec.k} if self.spec.kind == "knn" else {}
        return {"kind": self.spec.kind, **k, "threshold": self.spec.threshold, **self.search}

    def spanning(self) -> EdgeArrays:
        """Edges with the graph's components at every threshold.

        Its :attr:`forest` (at most ``n_nodes - 1`` edges) when known, else all its edges.

        Example:
            >>> g = Graph(GraphSpec("threshold", threshold=0.5), 3,
            ...           np.array([0, 1, 0], np.uint32), np.array([1, 2, 2], np.uint32),
            ...           np.array([0.9, 0.8, 0.7], np.float32))
            >>> len(g.spanning()[0]), len(replace(g, forest=ops.spanning_forest(
            ...     g.src, g.dst, g.similarity)).spanning()[0])
            (3, 2)

        """
        return self.forest if self.forest is not None else (self.src, self.dst, self.similarity)

    def at_least(self, threshold: float) -> Graph:
        """The subgraph of the edges with ``similarity >= threshold``."""
        built_at = self.spec.threshold
        if built_at is not None and np.float32(built_at) >= np.float32(threshold):
            return self  # every edge already passed a threshold at least as high
        return self.cut(replace(self.spec, threshold=threshold))

    def cut(self, spec: GraphSpec) -> Graph:
        """The edges of this graph (built lower) that pass ``spec``'s threshold."""
        assert spec.threshold is not None
        t = np.float32(spec.threshold)
        keep = self.similarity >= t
        forest = None
        if self.forest is not None:  # the forest's edges >= t: the cut graph's forest
            fs, fd, fw = self.forest
            fk = fw >= t
            forest = (fs[fk], fd[fk], fw[fk])
        return Graph(
            spec,
            self.n_nodes,
            self.src[keep],
            self.dst[keep],
            self.similarity[keep],
            self.search,
            forest,
        )

    def read_only(self) -> Graph:
        """The same graph with read-only edge arrays: a plugin cannot reorder them."""

        def frozen(arrays: EdgeArrays) -> EdgeArrays:
            views = tuple(a.view() for a in arrays)
            for a in views:
                a.flags.writeable = False
            return views  # type: ignore[return-value]

        src, dst, sim = frozen((self.src, self.dst, self.similarity))
        forest = None if self.forest is None else frozen(self.forest)
        return Graph(self.spec, self.n_nodes, src, dst, sim, self.search, forest)

    def frame(self, ids: pl.Series | None = None) -> pl.DataFrame:
        """The edges as a frame with :data:`simclust.frames.EDGES_SCHEMA`.

        ``ids``: one id per row, for ``src_id`` and ``dst_id`` (default: the indices as text).
        """
        return edges_frame(self.src, self.dst, self.similarity, ids)


class BackendEdges(NamedTuple):
    """What an :class:`EdgeBackend` returns for a graph."""

    src: npt.NDArray[np.uint32]
    """Lower endpoints, the edges sorted by ``(src, dst)``."""
    dst: npt.NDArray[np.uint32]
    """Higher endpoints."""
    similarity: npt.NDArray[np.float32]
    """Cosine similarities."""
    record: dict[str, Any]
    """What the backend did, for the graph's :attr:`Graph.search`."""
    forest: EdgeArrays | None = None
    """The maximum spanning forest of the edges, when the backend merged one from its
    tasks (:attr:`Graph.forest`)."""


class EdgeBackend(Protocol):
    """Builds graphs somewhere else than this process's kernels (a Ray cluster).

    :func:`build_graph` checks the edge budget, the parameters and the search, then hands
    the graph to the backend (:class:`simclust.distributed.DistributedBackend`): an exact
    graph, with the same edges the native kernels give; or a partitioned (``ivf``) one,
    over the partition the native search builds, with its measured recall; or the
    certified (exact, pruned) ε-graph over it. The backend
    returns what it did for the record.
    """

    name: str
    """The backend's name in messages and records (``"ray"``)."""

    def exact_edges(
        self,
        x: npt.NDArray[np.float32],
        spec: GraphSpec,
        threshold: float,
        progress: ops.Progress | None,
    ) -> BackendEdges:
        """The exact edges ``>= threshold`` of ``spec``'s graph over the unit rows ``x``."""
        ...

    def partitioned_edges(
        self,
        x: npt.NDArray[np.float32],
        spec: GraphSpec,
        threshold: float,
        search: SearchSettings,
        n_threads: int | None,
        progress: ops.Progress | None,
    ) -> BackendEdges:
        """The ``ivf`` or ``certified`` edges ``>= threshold`` of ``spec``'s graph over ``x``.

        ``search.method`` says which. The record holds ``n_lists``, ``nprobe`` (``ivf``),
        ``list_pairs``, ``pairs_computed``, ``pairs_total``, ``recall`` and
        ``recall_rows`` as the native search's does.
        """
        ...


def build_graph(
    X: npt.NDArray[np.float32],  # noqa: N803
    spec: GraphSpec,
    *,
    n_threads: int | None = None,
    progress: ops.Progress | None = None,
    max_edges: int | None = DEFAULT_MAX_EDGES,
    search: SearchSettings | None = None,
    backend: EdgeBackend | None = None,
) -> Graph:
    """Build the similarity graph ``spec`` describes over the rows of ``X``.

    Args:
        X: unit-normalised rows.
        spec: the graph.
        n_threads: threads (default ``SIMCLUST_NUM_THREADS`` or all cores).
        progress: optional ``progress(done, total)`` callback.
        max_edges: refuse a graph with more edges (estimated before building, see
            :func:`check_edge_budget`); ``None``: no limit.
        search: how to search (default: exact brute force); the graph's ``search``
            records what was done and, for an approximate graph, its measured recall.
        backend: where the graph is computed (default: here, by the native kernels); a
            backend searches ``exact``, ``ivf`` and ``certified`` (``auto`` chooses as
            here), the native graph and record.

    Raises:
        ConfigError: the graph would exceed ``max_edges``; ``certified`` for a kNN graph.

    Example:
        >>> X = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0]], dtype=np.float32)
        >>> g = build_graph(X, GraphSpec("knn", k=1))
        >>> g.n_edges, g.search["method"]
        (2, 'exact')

    """
    n = int(X.shape[0])
    check_edge_budget(X, spec, max_edges)
    settings = search if search is not None else SearchSettings(method="exact")
    method, why = settings.choose(n, int(X.shape[1]), spec.kind)
    if spec.kind == "knn":
        if n < 2:
            empty = np.zeros(0, np.uint32)
            return Graph(spec, n, empty, empty, np.zeros(0, np.float32))
        if not 1 <= spec.k <= n - 1:
            raise ParameterError(
                f"graph k must be in 1..N-1 = 1..{n - 1} for {n} rows, got {spec.k}"
            )
    t = -1.0 if spec.threshold is None else spec.threshold
    if backend is not None and method == "exact":
        got = backend.exact_edges(X, spec, t, progress)
        record = {"method": "exact", "chosen": why, "recall": 1.0, **got.record}
        return Graph(spec, n, got.src, got.dst, got.similarity, record, got.forest)
    if backend is not None:
        got = backend.partitioned_edges(X, spec, t, settings, n_threads, progress)
        record = {"method": method, "chosen": why, **got.record}
        return Graph(spec, n, got.src, got.dst, got.similarity, record, got.forest)
    if method == "exact":
        if spec.kind == "threshold":
            edges = ops.threshold_edges(X, t, n_threads=n_threads, progress=progress)
        else:
            edges = ops.knn_edges(X, spec.k, t, n_threads=n_threads, progress=progress)
        return Graph(spec, n, *edges, {"method": "exact", "chosen": why, "recall": 1.0})
    nprobe = settings.nprobe_for(spec.kind)
    if spec.kind == "threshold":
        src, dst, sim, stats = ops.partitioned_threshold_edges(
            X,
            t,
            certified=method == "certified",
            n_lists=settings.n_lists,
            nprobe=nprobe,
            recall_rows=settings.recall_rows,
            n_threads=n_threads,
            progress=progress,
        )
    else:
        part = ops.Partition(
            X, settings.n_lists, certified=False, n_threads=n_threads, progress=progress
        )
        src, dst, sim, stats = part.knn_edges(
            spec.k,
            t,
            nprobe=nprobe,
            recall_rows=settings.recall_rows,
            n_threads=n_threads,
            progress=progress,
        )
    record = {"method": method, "chosen": why, **stats._asdict()}
    if method == "ivf":
        record["nprobe"] = nprobe
    return Graph(spec, n, src, dst, sim, record)


SWEEP_BELOW = 0.1
"""How far below the graph's threshold a run's default sweep starts: the sweep shows how
the components merge as the threshold is lowered, not only above it."""


def sweep_thresholds(
    spec: GraphSpec, given: list[float] | tuple[float, ...] | None
) -> npt.NDArray[np.float64]:
    """The thresholds a run's sweep counts components at.

    ``given`` (``[graph] sweep``), else every 0.01 from :data:`SWEEP_BELOW` below the
    graph's threshold (from 0.5 for a kNN graph without one) up to 0.99. The sweep is
    counted on the graph at the lowest of them (:func:`build_run_graphs`).

    Raises:
        ConfigError: a given threshold outside ``[-1, 1]``.

    Example:
        >>> sweep_thresholds(GraphSpec("threshold", threshold=0.95), None).tolist()
        [0.85, 0.86, 0.87, 0.88, 0.89, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99]

    """
    if given:
        values = np.asarray(given, dtype=np.float64)
        inside = (values >= -1.0) & (values <= 1.0)
        if not np.all(inside):
            bad = values[~inside][0]
            raise ConfigError(
                f"graph.sweep: thresholds are cosine similarities in [-1, 1], got {bad}"
            )
        return values
    lo = max(float(spec.threshold) - SWEEP_BELOW if spec.threshold is not None else 0.5, -1.0)
    values = np.round(np.arange(np.ceil(np.round(lo * 100, 6)) / 100, 1.0 - 1e-9, 0.01), 2).astype(
        np.float64
    )
    return values if values.size else np.asarray([lo], dtype=np.float64)


def build_run_graphs(
    X: npt.NDArray[np.float32],  # noqa: N803
    spec: GraphSpec,
    thresholds: npt.NDArray[np.float64],
    *,
    n_threads: int | None = None,
    progress: ops.Progress | None = None,
    max_edges: int | None = DEFAULT_MAX_EDGES,
    search: SearchSettings | None = None,
    backend: EdgeBackend | None = None,
) -> tuple[Graph, Graph]:
    """The run's graph and the graph its sweep counts on, both read-only.

    Sweep thresholds below the graph's are counted on the graph built once at the
    lowest of them (never on the graph cut at the higher threshold, which would miss
    edges); the run's graph is then that graph cut at ``spec``'s threshold. A kNN graph
    is always built complete (its search costs the same at any threshold, and its size
    is at most ``N k`` edges either way): the sweep, and the outlier scores
    (:mod:`simclust.outliers`), use every row's ``k`` nearest; the run's graph is that
    graph cut at ``spec``'s threshold, if it has one.

    Returns:
        ``(graph, sweep_graph)``; the same object when nothing is cut.

    Raises:
        ConfigError: the graph the sweep needs exceeds ``max_edges``.

    Example:
        >>> X = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], dtype=np.float32)
        >>> g, s = build_run_graphs(X, GraphSpec("threshold", threshold=0.9), np.array([0.5]))
        >>> g.n_edges, s.n_edges
        (0, 2)

    """
    low = spec
    if spec.kind == "knn":
        low = replace(spec, threshold=None)
    elif spec.threshold is not None and thresholds.size:
        lowest = float(thresholds.min())
        if np.float32(lowest) < np.float32(spec.threshold):
            low = replace(spec, threshold=lowest)
    try:
        built = build_graph(
            X,
            low,
            n_threads=n_threads,
            progress=progress,
            max_edges=max_edges,
            search=search,
            backend=backend,
        )
    except ConfigError as exc:
        if low == spec or spec.kind == "knn":
            raise
        raise ConfigError(
            f"graph.sweep: {low.threshold:g} is below the graph's threshold {spec.threshold:g}, "
            f"so the sweep needs the graph at {low.threshold:g}, but {exc}"
        ) from None
    sweep_graph = built.read_only()
    graph = sweep_graph if low == spec else sweep_graph.cut(spec).read_only()
    return graph, sweep_graph
