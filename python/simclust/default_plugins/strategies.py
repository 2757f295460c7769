"""Built-in clustering strategies: ``connected-components`` and ``kmeans``.

``kmeans`` is :class:`simclust.KMeans` itself, registered as it is: a scikit-learn
clusterer (``__init__`` parameters, ``fit(X)``, ``labels_``) is a strategy without an
adapter, so its parameters are declared once, by the estimator.

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
from simclust.base import Strategy
from simclust.cluster import KMeans
from simclust.exceptions import ParameterError
from simclust.graph import Graph, GraphSpec, build_graph

__all__ = ["ConnectedComponents", "KMeans"]


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
        src, dst, _ = graph.spanning()  # the forest when the graph has one: same components
        labels = ops.connected_components(graph.n_nodes, src, dst)
        self.labels_ = _relabel_small(labels, self.min_size)
        self.n_components_ = int(labels.max()) + 1 if labels.size else 0
        return self
