"""The distributed certified search (``search = "certified"``): group-pair tasks.

The certified search is the exact ε-graph pruned by the triangle inequality on angles
(``rust/simclust-core/src/ivf/certified.rs``): the lists of a partition are split into
*cells* of about 32 rows, and the search pairs *panels* (runs of whole cells, at most
1,024 rows), one native task per pair of panels ``(i, j)``, ``i <= j``. Here:

* The partition with its cells is the native one (:class:`simclust.ops.Partition`,
  ``certified=True``: the same lists and cells as the native search for the same seed),
  built **on the driver**, natively, with the run's threads.
* Panels are contiguous ranges of positions, so consecutive panels are too: the driver
  cuts them into *groups* of at most ``group_rows`` rows
  (:meth:`~simclust.ops.Partition.certified_group_bounds`; by default a block's 16,384)
  and puts each group in the object store once
  (:meth:`~simclust.ops.Partition.certified_group`: its unit rows, input rows, cell
  offsets, centroids and cosines, lists). The partition is then dropped on the driver.
* One task per pair of groups ``(I, J)``, ``I <= J``, reads its two groups only and runs
  exactly the panel pairs of the native search with ``i`` in ``I`` and ``j`` in ``J``
  (:func:`simclust.ops.certified_group_pair_edges`: the native search's own panel-pair
  code, not a copy), so every similarity is the native one, bit for bit.
* The driver sorts the tasks' edges by ``(src, dst)`` (the native order; every pair is
  found at most once), adds up ``pairs_computed`` and counts the distinct list pairs the
  tasks computed: the native record (``n_lists``, ``list_pairs``, ``pairs_computed``,
  ``pairs_total``, recall 1.0) for any number of groups, tasks or workers. As the exact
  and ``ivf`` plans, each task also returns the maximum spanning forest of its edges,
  merged on the driver in task order into the graph's forest (its components at every
  threshold).

Example:
    >>> from simclust.distributed import InProcessExecutor
    >>> from simclust.testing import make_embeddings
    >>> X = ops.normalize(make_embeddings(3000, 16, n_clusters=8, seed=0))
    >>> src, dst, sim, rec, forest = certified_edges(
    ...     InProcessExecutor(), X, 0.9, group_rows=1024
    ... )
    >>> want = ops.partitioned_threshold_edges(X, 0.9, certified=True)
    >>> bool((src == want[0]).all() and (sim == want[2]).all()), rec["recall"]
    (True, 1.0)
    >>> rec["pairs_computed"] == want[3].pairs_computed, rec["tasks"] > 1
    (True, True)
    >>> len(forest[0]) < len(X)
    True

"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt

from simclust import ops
from simclust.distributed._executor import Executor, Task
from simclust.distributed._forest import merge_forests
from simclust.distributed._graph import _key_ends, _pair_keys
from simclust.distributed._rows import MAX_BLOCK_ROWS
from simclust.graph import BackendEdges
from simclust.ops import EdgeArrays
from simclust.progress import StageProgress

__all__ = ["certified_edges"]

STAGE = "threshold graph (certified)"
"""The stage's name in progress and in errors."""


def _group_pair_task(
    a: ops.CertifiedGroup, b: ops.CertifiedGroup | None, threshold: float, threads: int | None
) -> tuple[ops.GroupPairEdges, EdgeArrays]:
    """The native certified search's panel pairs of groups ``a`` and ``b`` (or ``a``).

    With the maximum spanning forest of the edges found (input rows), which the driver
    merges into the graph's (:func:`simclust.distributed._forest.merge_forests`).
    """
    found = ops.certified_group_pair_edges(a, b, threshold, n_threads=threads)
    return found, ops.spanning_forest(found.src, found.dst, found.similarity)


def _positions(bounds: list[int], g: int) -> str:
    return f"{bounds[g]}..{bounds[g + 1] - 1}"


def certified_edges(
    executor: Executor,
    x: npt.NDArray[np.float32],
    threshold: float,
    *,
    n_lists: int | None = None,
    n_threads: int | None = None,
    group_rows: int | None = None,
    progress: StageProgress | None = None,
) -> BackendEdges:
    """The certified (exact) ε-graph of the unit rows ``x`` at ``threshold``, by tasks.

    Args:
        executor: runs the tasks.
        x: unit rows.
        threshold: the similarity an edge needs.
        n_lists: the partition's lists (default ``2 sqrt(N)``, as natively).
        n_threads: the driver's threads (the partition's build).
        group_rows: rows a group of panels holds at most (default :data:`MAX_BLOCK_ROWS`;
            a panel, at most 1,024 rows, alone when larger).
        progress: ``progress(stage, done, total)``: group-pair tasks done.

    Returns:
        ``(src, dst, similarity, record, forest)``: the native certified edges sorted by
        ``(src, dst)``; the native record's keys (``n_lists``, ``list_pairs``,
        ``pairs_computed``, ``pairs_total``, ``recall`` 1.0, ``recall_rows`` 0) with
        ``tasks``, ``groups`` and ``group_rows``; the edges' maximum spanning forest
        (the tasks' merged in task order).

    """
    n = int(x.shape[0])
    part = ops.Partition(x, n_lists, certified=True, n_threads=n_threads)
    lists = part.n_lists
    rows = MAX_BLOCK_ROWS if group_rows is None else group_rows
    bounds = [int(b) for b in part.certified_group_bounds(rows)]
    groups = [executor.put(part.certified_group(s, e)) for s, e in itertools.pairwise(bounds)]
    del part  # its unit rows are in the groups now
    threads = getattr(executor, "task_threads", None)
    tasks = []
    for i, j in itertools.combinations_with_replacement(range(len(groups)), 2):
        what = f"positions {_positions(bounds, i)}" + (
            "" if i == j else f" x {_positions(bounds, j)}"
        )
        other = None if i == j else groups[j]
        tasks.append(Task(f"group pair ({i}, {j}): {what}", (groups[i], other, threshold, threads)))
    keys, sims, list_keys = [], [], []
    forests: list[EdgeArrays | None] = [None] * len(tasks)
    pairs = 0
    for t, (found, forest) in executor.imap(STAGE, _group_pair_task, tasks, progress=progress):
        forests[t] = forest
        keys.append(_pair_keys(found.src, found.dst))
        sims.append(found.similarity)
        list_keys.append(_pair_keys(found.list_pairs[:, 0], found.list_pairs[:, 1]))
        pairs += found.pairs_computed
    key = np.concatenate(keys) if keys else np.zeros(0, np.uint64)
    sim = np.concatenate(sims) if sims else np.zeros(0, np.float32)
    by = np.argsort(key, kind="stable")  # distinct pairs: the native (src, dst) order
    src, dst = _key_ends(key[by])
    record = {
        "n_lists": lists,
        "list_pairs": int(np.unique(np.concatenate(list_keys)).size) if list_keys else 0,
        "pairs_computed": pairs,
        "pairs_total": n * (n - 1) // 2,
        "recall": 1.0,
        "recall_rows": 0,
        "tasks": len(tasks),
        "groups": len(groups),
        "group_rows": rows,
    }
    merged = merge_forests((f for f in forests if f is not None), n)
    return BackendEdges(src, dst, sim[by], record, merged)
