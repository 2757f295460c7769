"""simclust: the exact cluster structure and geometry of embedding datasets.

simclust finds which rows of an embedding matrix (typically image
embeddings) cluster together and measures that structure exactly: cosine
kNN without approximation, ε-graphs, connected components and the threshold
at which each component would split.

Example:
    >>> import numpy as np
    >>> from simclust import ops
    >>> X = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0]])
    >>> src, dst, sim = ops.threshold_edges(X, 0.9)
    >>> ops.connected_components(len(X), src, dst).tolist()
    [0, 0, 1]

"""

from __future__ import annotations

from simclust import cluster, exceptions, frames, ops
from simclust._native import __version__
from simclust.cluster import KMeans
from simclust.exceptions import InvalidInputError, ParameterError, ShapeError, SimclustError

__all__ = [
    "InvalidInputError",
    "KMeans",
    "ParameterError",
    "ShapeError",
    "SimclustError",
    "__version__",
    "cluster",
    "exceptions",
    "frames",
    "ops",
]
