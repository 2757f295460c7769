"""Built-in clustering strategies: ``connected-components`` and ``kmeans``.

Example:
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0]], dtype=np.float32)
    >>> X /= np.linalg.norm(X, axis=1, keepdims=True)
    >>> ConnectedComponents(threshold=0.9).fit(X).labels_.tolist()
    [0, 0, 1]

"""

from __future__ import annotations

from typing import Literal, Self

import numpy as np
import numpy.typing as npt

from simclust import ops
from simclust.base import Graph, GraphSpec, Strategy
from simclust.cluster import KMeans
from simclust.exceptions import ParameterError

__all__ = ["ConnectedComponents", "KMeansStrategy", "build_graph"]


def build_graph(
    X: npt.NDArray[np.float32],  # noqa: N803
    spec: GraphSpec,
    *,
    n_threads: int | None = None,
    progress: ops.Progress | None = None,
) -> Graph:
    """Build the exact similarity graph ``spec`` describes over the rows of ``X``.

    Example:
        >>> X = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0]], dtype=np.float32)
        >>> build_graph(X, GraphSpec("knn", k=1)).n_edges
        2

    """
    n = int(X.shape[0])
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
