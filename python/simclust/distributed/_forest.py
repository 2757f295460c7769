"""Per-task union-find: each ε-graph task's maximum spanning forest, merged on the driver.

An ε-graph task returns, with its edges, their maximum spanning forest (Kruskal,
:func:`simclust.ops.spanning_forest`: at most its rows - 1 edges). A maximum spanning
forest has the graph's components at every threshold, and the forest of a union of graphs
is the forest of their forests, so the driver merges the tasks' forests
(:func:`merge_forests`) into :attr:`simclust.graph.Graph.forest`, from which the components
and the sweep are computed (see ``docs/distributed.md``, step 4).

Example:
    >>> f1 = ops.spanning_forest([0, 1], [1, 2], [0.9, 0.8])
    >>> f2 = ops.spanning_forest([0, 2], [2, 3], [0.95, 0.7])
    >>> merge_forests([f1, f2], 4)[0].tolist()
    [0, 0, 2]

"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from simclust import ops
from simclust.ops import EdgeArrays

__all__ = ["FOLD_EDGES", "merge_forests"]


def _with_forest(
    s: npt.NDArray[np.uint32], d: npt.NDArray[np.uint32], w: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32], EdgeArrays]:
    """A task's ε-graph edges and their maximum spanning forest.

    The forest (at most the task's rows - 1 edges: its union-find) is what the driver
    merges into the graph's (:func:`merge_forests`).
    """
    return s, d, w, ops.spanning_forest(s, d, w)


FOLD_EDGES = 2
""":func:`merge_forests` folds the forests it has read into one whenever they hold more
than this many edges per row: the driver holds at most about ``(FOLD_EDGES + 1) N`` forest
edges however many tasks there are."""


def merge_forests(forests: Iterable[EdgeArrays], n: int) -> EdgeArrays:
    """The maximum spanning forest of the union of the tasks' graphs, from their forests.

    Kruskal (:func:`simclust.ops.spanning_forest`) over the forests in the order given
    (task order: the same forest every run), folded as it goes: the forest of a union is
    the forest of the forests, so the result has the components of all the tasks' edges
    at every threshold, in at most ``n - 1`` edges.

    Example:
        >>> f1 = ops.spanning_forest([0, 1], [1, 2], [0.9, 0.8])
        >>> f2 = ops.spanning_forest([0, 2], [2, 3], [0.95, 0.7])
        >>> src, dst, sim = merge_forests([f1, f2], 4)
        >>> list(zip(src.tolist(), dst.tolist()))
        [(0, 2), (0, 1), (2, 3)]

    """
    pending: list[EdgeArrays] = []
    held = 0
    for f in forests:
        pending.append(f)
        held += len(f[0])
        if held > FOLD_EDGES * n and len(pending) > 1:
            pending = [_kruskal(pending)]
            held = len(pending[0][0])
    return _kruskal(pending)


def _kruskal(forests: Sequence[EdgeArrays]) -> EdgeArrays:
    """The maximum spanning forest of the forests' edges together."""
    if not forests:
        empty = np.zeros(0, np.uint32)
        return empty, empty.copy(), np.zeros(0, np.float32)
    return ops.spanning_forest(*(np.concatenate([f[i] for f in forests]) for i in range(3)))
