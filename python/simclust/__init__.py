"""simclust: the exact cluster structure and geometry of embedding datasets.

simclust finds which rows of an embedding matrix (typically image
embeddings) cluster together and measures that structure exactly: cosine
kNN without approximation, ε-graphs, connected components and the threshold
at which each component would split, k-means, and each cluster's all-pairs
tightness, distances to its centroid and to the other clusters.

:func:`analyze` runs a clustering strategy and metrics chosen by name from the
plugin host (:func:`get_host`); :func:`dedup` lists near-duplicates to drop;
:mod:`simclust.ops` holds the typed kernels.

Example:
    >>> import numpy as np
    >>> from simclust import ops
    >>> X = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0]])
    >>> src, dst, sim = ops.threshold_edges(X, 0.9)
    >>> ops.connected_components(len(X), src, dst).tolist()
    [0, 0, 1]

"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simclust import base, exceptions, frames, ops
from simclust._native import __version__
from simclust.base import Embedder, Loader, Metric, Strategy
from simclust.config import load_config
from simclust.duplicates import Duplicates, dedup
from simclust.exceptions import (
    ConfigError,
    InvalidInputError,
    ParameterError,
    PluginError,
    ShapeError,
    SimclustError,
    UnknownNameError,
)
from simclust.host import get_host, get_plugin_manager, hookimpl
from simclust.pipeline import analyze, run
from simclust.result import Result

if TYPE_CHECKING:
    from simclust import cluster
    from simclust.cluster import KMeans

__all__ = [
    "ConfigError",
    "Duplicates",
    "Embedder",
    "InvalidInputError",
    "KMeans",
    "Loader",
    "Metric",
    "ParameterError",
    "PluginError",
    "Result",
    "ShapeError",
    "SimclustError",
    "Strategy",
    "UnknownNameError",
    "__version__",
    "analyze",
    "base",
    "cluster",
    "dedup",
    "exceptions",
    "frames",
    "get_host",
    "get_plugin_manager",
    "hookimpl",
    "load_config",
    "ops",
    "run",
]


def __getattr__(name: str) -> Any:
    """``simclust.KMeans`` and ``simclust.cluster``, imported on first use.

    They import scikit-learn (most of a second), which ``import simclust`` does not pay.
    """
    if name in ("KMeans", "cluster"):
        import importlib

        module = importlib.import_module("simclust.cluster")
        return module if name == "cluster" else module.KMeans
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
