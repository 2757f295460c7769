"""Connected components, the threshold sweep and the bridge similarity (single linkage)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import polars as pl

from simclust import _native
from simclust.exceptions import (
    InvalidInputError,
)
from simclust.ops._coerce import (
    _as_count,
    _as_nodes,
    _as_threads,
    _as_vector,
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
