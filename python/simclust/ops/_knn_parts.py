"""The approximate kNN search of a :class:`~simclust.ops.Partition` in parts, for tasks.

:meth:`Partition.knn_edges` is, in order: every list's own pairs, every row with its next
``nprobe - 1`` nearest lists, the weakest rows with more lists, NN-descent. The first
three are here as functions of consecutive lists' rows (what a task holds): their top-k
lists (positions, similarities) merge with :func:`knn_merge` into the whole search's,
bit for bit, for any split into chunks; the partition gives which rows probe which lists
(:meth:`Partition.knn_probes`) and finishes (:meth:`Partition.knn_finish`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from simclust import _native
from simclust.ops._coerce import _as_count, _as_matrix, _as_threads

__all__ = ["KnnPart", "knn_merge", "knn_own_lists", "knn_probe_lists"]


class KnnPart(NamedTuple):
    """The ``k`` best candidates a part of the search found for some rows."""

    rows: npt.NDArray[np.uint32]
    """The rows (positions) with a candidate."""
    idx: npt.NDArray[np.uint32]
    """``rows.size x k`` neighbour positions, best first (``2**32 - 1``: none)."""
    sims: npt.NDArray[np.float32]
    """``rows.size x k`` float32 similarities (``-inf``: none)."""
    pairs_computed: int
    """Row pairs whose similarity the part computed."""


def _bounds(bounds: npt.ArrayLike) -> npt.NDArray[np.uint64]:
    return np.ascontiguousarray(bounds, dtype=np.uint64).reshape(-1)


def knn_own_lists(
    x: npt.ArrayLike, bounds: npt.ArrayLike, start: int, k: int, *, n_threads: int | None = None
) -> KnnPart:
    """Every pair within each of consecutive lists, offered to both rows.

    ``x`` holds the lists' rows (list ``i`` is ``x[bounds[i]:bounds[i + 1]]``; normalised
    as the partition normalises them), the first at position ``start``.
    """
    return KnnPart(
        *_native.knn_own_lists(
            _as_matrix(x, "x"),
            _bounds(bounds),
            _as_count(start, "start", minimum=0),
            _as_count(k, "k"),
            n_threads=_as_threads(n_threads),
        )
    )


def knn_probe_lists(
    x: npt.ArrayLike,
    bounds: npt.ArrayLike,
    start: int,
    q: npt.ArrayLike,
    positions: npt.ArrayLike,
    offsets: npt.ArrayLike,
    members: npt.ArrayLike,
    floors: tuple[npt.ArrayLike, npt.ArrayLike],
    query_floors: tuple[npt.ArrayLike, npt.ArrayLike],
    k: int,
    *,
    n_threads: int | None = None,
) -> KnnPart:
    """Rows probing consecutive lists (``x``, ``bounds``, ``start``: :func:`knn_own_lists`).

    ``q`` holds the probing rows, at ``positions`` (ascending); list ``i``'s are
    ``members[offsets[i]:offsets[i + 1]]`` (indices into ``positions``). ``floors``
    (similarities, positions) are the ``k``-th entries of the merged lists for the lists'
    rows, ``query_floors`` for the probing rows: candidates that do not rank before them
    are dropped, as in the whole search.
    """

    def pair(f: tuple[npt.ArrayLike, npt.ArrayLike]) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.ascontiguousarray(f[0], dtype=np.float32).reshape(-1),
            np.ascontiguousarray(f[1], dtype=np.uint32).reshape(-1),
        )

    return KnnPart(
        *_native.knn_probe_lists(
            _as_matrix(x, "x"),
            _bounds(bounds),
            _as_count(start, "start", minimum=0),
            _as_matrix(q, "q"),
            np.ascontiguousarray(positions, dtype=np.uint32).reshape(-1),
            _bounds(offsets),
            np.ascontiguousarray(members, dtype=np.uint32).reshape(-1),
            pair(floors),
            pair(query_floors),
            _as_count(k, "k"),
            n_threads=_as_threads(n_threads),
        )
    )


def knn_merge(
    n: int, k: int, rows: npt.ArrayLike, idx: npt.ArrayLike, sims: npt.ArrayLike
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]]:
    """The union of top-k lists over ``n`` rows: per row its ``k`` best distinct candidates.

    Row ``rows[i]`` is offered ``idx[i]``, ``sims[i]`` (a row may repeat; each index keeps
    its largest similarity; ties rank the lower position first), so the result does not
    depend on how the candidates were split.

    Example:
        >>> idx, sims = knn_merge(2, 1, [0, 0, 1], [[1], [1], [0]], [[0.5], [0.7], [0.7]])
        >>> idx.tolist(), sims.tolist()
        ([[1], [0]], [[0.699999988079071], [0.699999988079071]])

    """
    kk = _as_count(k, "k")
    return _native.knn_merge(
        _as_count(n, "n", minimum=0),
        kk,
        np.ascontiguousarray(rows, dtype=np.uint32).reshape(-1),
        np.ascontiguousarray(idx, dtype=np.uint32).reshape(-1, kk),
        np.ascontiguousarray(sims, dtype=np.float32).reshape(-1, kk),
    )
