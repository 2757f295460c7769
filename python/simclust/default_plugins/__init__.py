"""The built-in strategies, metrics, loaders, embedders and distances: a plugin like any other.

simclust registers this module under the name ``simclust.default_plugins`` through the
same hooks a third-party plugin implements (see :mod:`simclust.hookspecs`); blocking it
with ``SIMCLUST_BLOCK_PLUGINS=simclust.default_plugins`` leaves only installed plugins.

Example:
    >>> from simclust import get_host
    >>> get_host(autoload=False).loaders.names()
    ['numpy', 'parquet', 'fastdup', 'shards', 'images']

"""

from __future__ import annotations

from typing import Any

from simclust.default_plugins import embedders, loaders, metrics, strategies
from simclust.distances import BUILTIN_DISTANCES
from simclust.host import Registry, hookimpl

__all__ = [
    "simclust_register_distances",
    "simclust_register_embedders",
    "simclust_register_loaders",
    "simclust_register_metrics",
    "simclust_register_strategies",
]


@hookimpl
def simclust_register_strategies(registry: Registry[type[Any]]) -> None:
    """Register ``connected-components`` and ``kmeans``."""
    registry.register("connected-components", strategies.ConnectedComponents)
    registry.register("kmeans", strategies.KMeans)  # simclust.KMeans, as it is


@hookimpl
def simclust_register_metrics(registry: Registry[type[Any]]) -> None:
    """Register ``intra``, ``edge``, ``centroid``, ``inter`` and ``silhouette``."""
    registry.register("intra", metrics.Intra)
    registry.register("edge", metrics.Edge)
    registry.register("centroid", metrics.Centroid)
    registry.register("inter", metrics.Inter)
    registry.register("silhouette", metrics.SilhouetteMetric)


@hookimpl
def simclust_register_loaders(registry: Registry[type[Any]]) -> None:
    """Register the ``numpy``, ``parquet``, ``fastdup``, ``shards`` and ``images`` loaders.

    Order matters: without a configured loader the first that accepts the path reads
    it, so the image-folder loader (any folder) comes last, after ``shards`` (a folder
    of ``.npy``/Parquet files, or a glob pattern).
    """
    registry.register("numpy", loaders.NumpyLoader)
    registry.register("parquet", loaders.ParquetLoader)
    registry.register("fastdup", loaders.FastdupLoader)
    registry.register("shards", loaders.ShardsLoader)
    registry.register("images", loaders.ImageFolderLoader)


@hookimpl
def simclust_register_embedders(registry: Registry[type[Any]]) -> None:
    """Register the weight-free ``pixels`` embedder."""
    registry.register("pixels", embedders.Pixels)


@hookimpl
def simclust_register_distances(registry: Registry[type[Any]]) -> None:
    """Register ``cosine`` (the default) and ``euclidean``."""
    for name, cls in BUILTIN_DISTANCES.items():
        registry.register(name, cls)
