"""Built-in clustering strategies: ``connected-components`` and ``kmeans``.

Example:
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0]], dtype=np.float32)
    >>> X /= np.linalg.norm(X, axis=1, keepdims=True)
    >>> ConnectedComponents(threshold=0.9).fit(X).labels_.tolist()
    [0, 0, 1]

"""

from __future__ import annotations

from typing import Literal, NamedTuple, Self

import numpy as np
import numpy.typing as npt

from simclust import ops
from simclust.base import Graph, GraphSpec, Strategy
from simclust.cluster import KMeans
from simclust.exceptions import ConfigError, ParameterError

__all__ = [
    "DEFAULT_MAX_EDGES",
    "ConnectedComponents",
    "EdgeEstimate",
    "KMeansStrategy",
    "build_graph",
    "check_edge_budget",
    "estimate_edges",
]


DEFAULT_MAX_EDGES = 100_000_000
"""Default edge budget of :func:`build_graph`: 12 bytes an edge, about 1.2 GB."""

BYTES_PER_EDGE = 12
"""An edge is a uint32 source, a uint32 destination and a float32 similarity."""

_SAMPLE_ROWS = 256
_SAMPLE_OTHERS = 4096
_SAMPLE_SEED = 0x5EED


class EdgeEstimate(NamedTuple):
    """An estimate of the number of edges of an ε-graph (see :func:`estimate_edges`).

    Attributes:
        edges: the point estimate.
        upper: an upper confidence bound (mean + 3 standard errors of the sampled rows'
            degrees); equals ``edges`` when every pair was counted.
        exact: whether every pair was counted (no sampling).

    """

    edges: int
    upper: int
    exact: bool


def estimate_edges(
    X: npt.NDArray[np.float32],  # noqa: N803
    threshold: float,
) -> EdgeEstimate:
    """Estimate the edges of the ε-graph at ``threshold`` over the unit rows of ``X``.

    The exact similarities of up to 256 seeded sampled rows against up to 4096 other
    sampled rows give each sampled row's fraction of neighbours ``>= threshold``; their
    mean scaled to ``N (N - 1) / 2`` pairs is the estimate, and the mean plus three
    standard errors the upper bound (rows of a dense cluster have many neighbours, the
    rest few, so the spread of the per-row fractions is what the error depends on). On
    at most 256 rows every pair is counted. Cost: ``256 x 4096`` dot products.

    Example:
        >>> X = np.eye(3, dtype=np.float32)
        >>> estimate_edges(X, -1.0), estimate_edges(X, 0.5).edges
        (EdgeEstimate(edges=3, upper=3, exact=True), 0)

    """
    n = int(X.shape[0])
    pairs = n * (n - 1) // 2
    if n < 2:
        return EdgeEstimate(0, 0, True)
    t = np.float32(threshold)
    rng = np.random.default_rng(_SAMPLE_SEED)
    exact = n <= _SAMPLE_ROWS
    rows = np.arange(n) if exact else np.sort(rng.choice(n, _SAMPLE_ROWS, replace=False))
    others = np.arange(n) if n <= _SAMPLE_OTHERS else np.sort(rng.choice(n, _SAMPLE_OTHERS, False))
    a = np.asarray(X[rows], dtype=np.float32)
    b = np.asarray(X[others], dtype=np.float32)
    hits = (a @ b.T) >= t
    same = rows[:, None] == others[None, :]
    hits &= ~same
    valid = others.size - same.sum(axis=1)
    frac = hits.sum(axis=1) / np.maximum(valid, 1)
    if exact:
        edges = int(hits.sum()) // 2
        return EdgeEstimate(edges, edges, True)
    mean = float(frac.mean())
    se = float(frac.std(ddof=1)) / np.sqrt(frac.size)
    upper = min(1.0, mean + 3.0 * se)
    return EdgeEstimate(round(mean * pairs), round(upper * pairs), False)


def _size(n_bytes: int) -> str:
    if n_bytes >= 10**9:
        return f"about {n_bytes / 1e9:.1f} GB"
    if n_bytes >= 10**6:
        return f"about {n_bytes / 1e6:.0f} MB"
    return f"{n_bytes:,} bytes"


def _millions(n: int) -> str:
    return f"{n / 1e6:,.1f} M" if n >= 100_000 else f"{n:,}"


def check_edge_budget(
    X: npt.NDArray[np.float32],  # noqa: N803
    spec: GraphSpec,
    max_edges: int | None,
) -> None:
    """Refuse a graph that would have more than ``max_edges`` edges.

    A kNN graph has at most ``N * k`` edges; an ε-graph's edge count is estimated with
    :func:`estimate_edges` (only when ``N (N - 1) / 2`` pairs could exceed the budget).
    ``max_edges=None`` checks nothing.

    Raises:
        ConfigError: the graph (or its estimate's upper bound) exceeds the budget; the
            message gives the estimate, the budget and how to raise it.

    Example:
        >>> X = np.eye(4, dtype=np.float32)
        >>> check_edge_budget(X, GraphSpec("knn", k=2), 8)
        >>> try:
        ...     check_edge_budget(X, GraphSpec("threshold", threshold=-1.0), 5)
        ... except ConfigError as e:
        ...     print(str(e).split(", more")[0])
        the ε-graph at threshold -1 over 4 rows would have about 6 edges (counted)

    """
    if max_edges is None:
        return
    if isinstance(max_edges, bool) or not isinstance(max_edges, int | np.integer) or max_edges < 1:
        raise ParameterError(f"max_edges must be a positive int or None, got {max_edges!r}")
    n = int(X.shape[0])
    how = "raise it with [run] max_edges, analyze(max_edges=...) or --max-edges"
    budget = (
        f"the edge budget max_edges = {max_edges:,} "
        f"({_size(max_edges * BYTES_PER_EDGE)} at {BYTES_PER_EDGE} bytes an edge)"
    )
    if spec.kind == "knn":
        k = min(spec.k, max(n - 1, 0))
        if n * k > max_edges:
            raise ConfigError(
                f"the {spec.k}-NN graph over {n:,} rows has up to {_millions(n * k)} edges, "
                f"more than {budget}; {how}, or use a smaller k"
            )
        return
    if n * (n - 1) // 2 <= max_edges:
        return  # even the complete graph fits
    assert spec.threshold is not None
    est = estimate_edges(X, spec.threshold)
    if est.upper > max_edges:
        what = (
            "(counted)"
            if est.exact
            else f"(estimated from a sample of rows; up to {_millions(est.upper)})"
        )
        raise ConfigError(
            f"the ε-graph at threshold {spec.threshold:g} over {n:,} rows would have "
            f"about {_millions(est.edges)} edges {what}, more than {budget}; {how}, "
            "or use a higher threshold or a kNN graph"
        )


def build_graph(
    X: npt.NDArray[np.float32],  # noqa: N803
    spec: GraphSpec,
    *,
    n_threads: int | None = None,
    progress: ops.Progress | None = None,
    max_edges: int | None = DEFAULT_MAX_EDGES,
) -> Graph:
    """Build the exact similarity graph ``spec`` describes over the rows of ``X``.

    Args:
        X: unit-normalised rows.
        spec: the graph.
        n_threads: threads (default ``SIMCLUST_NUM_THREADS`` or all cores).
        progress: optional ``progress(done, total)`` callback.
        max_edges: refuse a graph with more edges (estimated before building, see
            :func:`check_edge_budget`); ``None``: no limit.

    Raises:
        ConfigError: the graph would exceed ``max_edges``.

    Example:
        >>> X = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0]], dtype=np.float32)
        >>> build_graph(X, GraphSpec("knn", k=1)).n_edges
        2

    """
    n = int(X.shape[0])
    check_edge_budget(X, spec, max_edges)
    if spec.kind == "threshold":
        assert spec.threshold is not None  # GraphSpec checks it
        src, dst, sim = ops.threshold_edges(
            X, spec.threshold, n_threads=n_threads, progress=progress
        )
    else:
        if n < 2:
            empty = np.zeros(0, np.uint32)
            return Graph(spec, n, empty, empty, np.zeros(0, np.float32))
        k = spec.k
        if not 1 <= k <= n - 1:
            raise ParameterError(f"graph k must be in 1..N-1 = 1..{n - 1} for {n} rows, got {k}")
        t = -1.0 if spec.threshold is None else spec.threshold
        src, dst, sim = ops.knn_edges(X, k, t, n_threads=n_threads, progress=progress)
    return Graph(spec, n, src, dst, sim)


def _relabel_small(labels: npt.NDArray[np.int64], min_size: int) -> npt.NDArray[np.int64]:
    """Turn clusters with fewer than ``min_size`` members into noise; renumber the rest."""
    if min_size <= 1 or labels.size == 0:
        return labels
    sizes = np.bincount(labels)
    keep = sizes >= min_size
    new_id = np.full(sizes.size, -1, dtype=np.int64)
    new_id[keep] = np.arange(int(keep.sum()), dtype=np.int64)
    out: npt.NDArray[np.int64] = new_id[labels]
    return out


class ConnectedComponents(Strategy):
    """Clusters are the connected components of the similarity graph at ``threshold``.

    Two rows share a cluster when a chain of rows links them with every step having
    cosine similarity ``>= threshold`` (single linkage). With ``graph="threshold"``
    (the default) the graph is the exact ε-graph, so the clusters are exactly the
    single-linkage clusters at ``threshold``; with ``graph="knn"`` only each row's
    ``k`` nearest neighbours count (fastdup's construction: memory bounded by
    ``N * k`` edges however dense the data, but a row whose ``k`` neighbours are all
    duplicates cannot link further).

    Args:
        threshold: cosine similarity an edge needs, in [-1, 1].
        graph: ``"threshold"`` or ``"knn"``.
        k: neighbours per row when ``graph="knn"``.
        min_size: components with fewer members become noise (label -1); 1 keeps
            singletons as clusters of their own.

    Example:
        >>> X = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0]], dtype=np.float32)
        >>> ConnectedComponents(threshold=0.9, min_size=2).fit(X).labels_.tolist()
        [0, 0, -1]

    """

    def __init__(
        self,
        *,
        threshold: float = 0.9,
        graph: Literal["threshold", "knn"] = "threshold",
        k: int = 10,
        min_size: int = 1,
    ) -> None:
        self.threshold = threshold
        self.graph = graph
        self.k = k
        self.min_size = min_size

    def graph_spec(self) -> GraphSpec:
        """The ε-graph at ``threshold``, or the kNN graph cut at ``threshold``."""
        if not -1.0 <= self.threshold <= 1.0:
            raise ParameterError(f"threshold must be in [-1, 1], got {self.threshold}")
        if self.min_size < 1:
            raise ParameterError(f"min_size must be >= 1, got {self.min_size}")
        return GraphSpec(self.graph, k=self.k, threshold=self.threshold)

    def fit(self, X: npt.NDArray[np.float32], *, graph: Graph | None = None) -> Self:  # noqa: N803
        """Label the components; ``graph`` (built to :meth:`graph_spec`) is optional."""
        spec = self.graph_spec()
        if graph is None:
            graph = build_graph(X, spec)
        elif graph.n_nodes != X.shape[0]:
            raise ParameterError(f"graph has {graph.n_nodes} nodes but X has {X.shape[0]} rows")
        graph = graph.at_least(self.threshold)
        labels = ops.connected_components(graph.n_nodes, graph.src, graph.dst)
        self.labels_ = _relabel_small(labels, self.min_size)
        self.n_components_ = int(labels.max()) + 1 if labels.size else 0
        return self


class KMeansStrategy(Strategy):
    """K-means (spherical by default) as a strategy: :class:`simclust.KMeans` inside.

    The parameters are :class:`simclust.KMeans`'s; ``random_state`` defaults to 0 so
    that the same config gives the same clusters.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(c, 0.05, (10, 2)) for c in ([1, 0], [0, 1])])
        >>> X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
        >>> np.bincount(KMeansStrategy(n_clusters=2).fit(X).labels_).tolist()
        [10, 10]

    """

    centroids_: npt.NDArray[np.float32]

    def __init__(
        self,
        *,
        n_clusters: int = 8,
        metric: Literal["cosine", "euclidean"] = "cosine",
        init: Literal["k-means++", "random"] = "k-means++",
        n_init: int = 1,
        max_iter: int = 100,
        tol: float = 1e-4,
        random_state: int | None = 0,
        n_threads: int | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.metric = metric
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.n_threads = n_threads

    def fit(self, X: npt.NDArray[np.float32], *, graph: Graph | None = None) -> Self:  # noqa: N803
        """Run k-means; sets ``labels_``, ``centroids_``, ``objective_``, ``n_iter_``."""
        km = KMeans(
            self.n_clusters, **{k: v for k, v in self.get_params().items() if k != "n_clusters"}
        )
        km.fit(X)
        self.labels_ = km.labels_
        self.centroids_ = km.cluster_centers_
        self.objective_ = km.inertia_
        self.n_iter_ = km.n_iter_
        return self
