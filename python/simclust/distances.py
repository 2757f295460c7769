"""Distances: what the geometry metrics measure, one registry axis of its own.

Every geometry metric (``intra``, ``edge``, ``centroid``, ``inter``, ``silhouette``) and
:func:`simclust.ops.cluster_linkage` measures in the run's distance (``[metrics]
distance``, ``analyze(..., distance=...)``, ``--distance``). A distance is a class
registered through the ``simclust_register_distances`` hook (:mod:`simclust.hookspecs`)
that declares, as class attributes:

* ``kernel``: the native kernel it runs on: ``"cosine"`` (cosine similarity of the
  L2-normalised rows), ``"dot"`` (inner product of the rows as they are) or
  ``"euclidean"`` (Euclidean distance of the rows as they are; all pairs through the
  same blocked GEMM tiles as cosine, from squared norms, never an ``N x N`` matrix);
* ``higher_is_closer``: ``True`` for a similarity, ``False`` for a distance;
* ``columns``: the name of each geometry column (:data:`GEOMETRY_COLUMNS`, the names
  the cosine frames use) under this distance. Names say what the column holds: a
  similarity's never say ``dist``, a distance's never ``sim``.

The built-ins: :class:`Cosine` (``cosine``, similarities, the default: the frames of
:mod:`simclust.frames` as documented there) and :class:`Euclidean` (``euclidean``,
distances: ``dist_mean/min/max/std``, ``edge_dist_*``, ``centroid_distance``,
``centroid_distance_mean/min/max``, ``nearest_cluster_distance``; the centroid is the
plain mean of the rows, the silhouette scikit-learn's default Euclidean one). Graphs
(ε and kNN, and their thresholds), the outlier scores and dedup stay cosine whatever
the distance: a run still normalises its rows for them, so a zero row is an error in
:func:`simclust.analyze` under any distance, while the :mod:`simclust.ops` geometry
functions accept it under ``euclidean``. The Euclidean silhouette is exact over all
pairs (``O(N**2 * D)``, as scikit-learn's) and the Euclidean nearest-cluster searches
are exact (brute force over the centroids): the partitioned searches are cosine ones.

Example:
    >>> import polars as pl
    >>> Euclidean.rename({"cluster": pl.Int64(), "sim_mean": pl.Float32()})
    {'cluster': Int64, 'dist_mean': Float32}
    >>> get_distance("euclidean").higher_is_closer
    False

"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from simclust.exceptions import ParameterError

__all__ = [
    "BUILTIN_DISTANCES",
    "GEOMETRY_COLUMNS",
    "KERNELS",
    "Cosine",
    "Distance",
    "Euclidean",
    "get_distance",
    "stored_schema",
]

KERNELS = ("cosine", "dot", "euclidean")
"""The native kernels a distance can run on (``simclust_core::metrics::Measure``)."""

GEOMETRY_COLUMNS = (
    "sim_mean",
    "sim_min",
    "sim_max",
    "sim_std",
    "edge_sim_mean",
    "edge_sim_min",
    "edge_sim_max",
    "centroid_sim_mean",
    "centroid_sim_min",
    "centroid_sim_max",
    "nearest_cluster_similarity",
    "centroid_similarity",
)
"""The columns of :mod:`simclust.frames` that hold the distance's values, by their
cosine names: intra/linkage statistics, edge statistics, centroid statistics, the
nearest cluster's value, and ``centroid_similarity`` (a row's value to its centroid in
``assignments``, and two centroids' value in ``inter``)."""

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Distance:
    """What the geometry metrics measure: subclass it and set the three class attributes.

    Register the class with ``registry.register("name", MyDistance)`` in a
    ``simclust_register_distances`` hook; it is checked then
    (:meth:`check_declaration`). A distance has no parameters.

    Example:
        >>> class Dot(Distance):
        ...     '''Inner product of the raw rows.'''
        ...     kernel = "dot"
        ...     higher_is_closer = True
        ...     columns = {
        ...         c: c.replace("similarity", "dot").replace("sim", "dot")
        ...         for c in GEOMETRY_COLUMNS
        ...     }
        >>> Dot.check_declaration()
        >>> Dot.columns["sim_mean"], Dot.columns["centroid_similarity"]
        ('dot_mean', 'centroid_dot')

    """

    kernel: ClassVar[str]
    """The native kernel: one of :data:`KERNELS`."""
    higher_is_closer: ClassVar[bool]
    """``True`` for a similarity (higher = closer), ``False`` for a distance."""
    columns: ClassVar[Mapping[str, str]]
    """Each of :data:`GEOMETRY_COLUMNS` -> its name under this distance."""

    @classmethod
    def check_declaration(cls) -> None:
        """Check the class attributes; called when the class is registered.

        Raises:
            TypeError: naming the missing or wrong attribute.

        """
        name = cls.__qualname__
        kernel = getattr(cls, "kernel", None)
        if kernel not in KERNELS:
            raise TypeError(f"{name}.kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
        closer = getattr(cls, "higher_is_closer", None)
        if not isinstance(closer, bool):
            raise TypeError(f"{name}.higher_is_closer must be True or False, got {closer!r}")
        if closer != (kernel != "euclidean"):
            what = "a similarity" if kernel != "euclidean" else "a distance"
            raise TypeError(f"{name}: the {kernel!r} kernel gives {what}; set higher_is_closer")
        columns = getattr(cls, "columns", None)
        if not isinstance(columns, Mapping) or set(columns) != set(GEOMETRY_COLUMNS):
            raise TypeError(
                f"{name}.columns must map each of {', '.join(GEOMETRY_COLUMNS)} to a column name"
            )
        names = list(columns.values())
        for col in names:
            if not isinstance(col, str) or not _NAME.match(col):
                raise TypeError(f"{name}.columns: {col!r} is not a snake_case column name")
            wrong = "dist" if closer else "sim"
            if wrong in col:
                kind = "similarity" if closer else "distance"
                raise TypeError(
                    f"{name}.columns: {col!r} says {wrong!r} but holds a {kind}; name columns "
                    "for what they hold"
                )
        if len(set(names)) != len(names):
            raise TypeError(f"{name}.columns: two columns have the same name")

    @classmethod
    def rows(cls, x: npt.NDArray[Any], unit: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The rows a run's strategy and metrics read under this distance, read-only.

        ``unit`` (``x`` normalised) for the cosine kernel, else ``x`` as it is, as
        float32 (a float32 C-order ``x`` itself, not copied).
        """
        if cls.kernel == "cosine":
            return unit
        rows = np.ascontiguousarray(x, dtype=np.float32).view()
        rows.flags.writeable = False
        return rows

    @classmethod
    def rename(cls, schema: Mapping[str, Any]) -> dict[str, Any]:
        """``schema`` (or any mapping keyed by cosine column names) under this distance."""
        return {cls.columns.get(k, k): v for k, v in schema.items()}


class Cosine(Distance):
    """Cosine similarity of the L2-normalised rows (higher = closer): the default."""

    kernel = "cosine"
    higher_is_closer = True
    columns: ClassVar[Mapping[str, str]] = {c: c for c in GEOMETRY_COLUMNS}


class Euclidean(Distance):
    """Euclidean distance of the rows as they are (lower = closer); centroid = plain mean."""

    kernel = "euclidean"
    higher_is_closer = False
    columns: ClassVar[Mapping[str, str]] = {
        "sim_mean": "dist_mean",
        "sim_min": "dist_min",
        "sim_max": "dist_max",
        "sim_std": "dist_std",
        "edge_sim_mean": "edge_dist_mean",
        "edge_sim_min": "edge_dist_min",
        "edge_sim_max": "edge_dist_max",
        "centroid_sim_mean": "centroid_distance_mean",
        "centroid_sim_min": "centroid_distance_min",
        "centroid_sim_max": "centroid_distance_max",
        "nearest_cluster_similarity": "nearest_cluster_distance",
        "centroid_similarity": "centroid_distance",
    }


BUILTIN_DISTANCES: dict[str, type[Distance]] = {"cosine": Cosine, "euclidean": Euclidean}
"""The built-in distances by name (what the built-in plugin registers)."""


def get_distance(distance: str | type[Distance]) -> type[Distance]:
    """A built-in distance by name, or a :class:`Distance` class checked as it is.

    Plugin distances are found by name through the host (``host.distances``); the
    pipeline passes their class.

    Raises:
        ParameterError: an unknown name, or a class that is not a valid distance.

    Example:
        >>> get_distance("cosine") is Cosine
        True

    """
    if isinstance(distance, str):
        try:
            return BUILTIN_DISTANCES[distance]
        except KeyError:
            raise ParameterError(
                f"unknown distance {distance!r}; built-in: {', '.join(BUILTIN_DISTANCES)} "
                "(a plugin's distance is passed as its class, or named in a run's config)"
            ) from None
    if not isinstance(distance, type) or not issubclass(distance, Distance):
        raise ParameterError(
            f"distance must be a name or a simclust.distances.Distance subclass, got {distance!r}"
        )
    try:
        distance.check_declaration()
    except TypeError as exc:
        raise ParameterError(str(exc)) from None
    return distance


def stored_schema(schema: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of ``schema`` (cosine names) a stored result of ``config`` must have.

    Renamed for the run's distance (``config["metrics"]["distance"]``) when it is a
    built-in; a plugin's distance is not known without its host, so its geometry
    columns are left out (not checked).

    Example:
        >>> stored_schema({"sim_mean": 1, "size": 2}, {"metrics": {"distance": "euclidean"}})
        {'dist_mean': 1, 'size': 2}

    """
    name = config.get("metrics", {}).get("distance", "cosine")
    if name in BUILTIN_DISTANCES:
        return BUILTIN_DISTANCES[name].rename(schema)
    return {c: t for c, t in schema.items() if c not in GEOMETRY_COLUMNS}
