"""The distributed partitioned search (``search = "ivf"``): list-pair tasks over one partition.

The partition is the native :class:`simclust.ops.Partition` (k-means trained on a seeded
sample, every row assigned to its nearest lists: the same lists for the same seed), built
by tasks (:func:`distributed_partition`): the k-means on the sample's unit rows as Lloyd
steps over blocks (:func:`simclust.distributed.distributed_kmeans`, the native training's
centroids bit for bit), each block of rows assigned by a task (stage ``ivf assignment``:
the native assignment, row by row), the lists formed on the driver
(:meth:`simclust.ops.Partition.from_assignment`). Then the rows of consecutive lists, in
list order, go to the object store as *chunks* of about a block's rows: shuffled from the
row blocks by tasks when the rows were read by tasks (:mod:`simclust.distributed._rows`),
else put by the driver. The list pairs to compare are the native ones
(:meth:`simclust.ops.Partition.list_pairs`: each list with its ``nprobe`` lists of nearest
centroid); a task takes the pairs whose first list is in one chunk and the chunks holding
their lists:

* ε-graph: :func:`simclust.ops.threshold_edges` of a list with itself,
  :func:`simclust.ops.threshold_edges_between` of two lists: the tiles, screen and
  re-check of the native partitioned search, so the edges are the native ``ivf`` edges,
  bit for bit, and the pair recall (measured on the driver by the native
  :meth:`~simclust.ops.Partition.pair_recall` on the same seeded rows) is the native one.
* kNN graph: the native ``ivf`` kNN search over the same partition and chunks
  (:mod:`simclust.distributed._ivf_knn`): its own-list, probe and weak-row passes as
  tasks per chunk, their top-k lists merged on the driver between passes; NN-descent and
  the final refinement (a global iteration over the lists) stay on the driver, with the
  partition's rows. The native graph and recall, bit for bit.

Example:
    >>> from simclust.distributed import DistributedBackend, InProcessExecutor
    >>> from simclust.graph import GraphSpec, SearchSettings, build_graph
    >>> from simclust.testing import make_embeddings
    >>> X = ops.normalize(make_embeddings(3000, 16, n_clusters=8, seed=0))
    >>> ivf = SearchSettings(method="ivf")
    >>> plan = DistributedBackend(InProcessExecutor(), block_rows=1024)
    >>> g = build_graph(X, GraphSpec("threshold", threshold=0.9), search=ivf, backend=plan)
    >>> native = build_graph(X, GraphSpec("threshold", threshold=0.9), search=ivf)
    >>> bool((g.dst == native.dst).all()), g.search["recall"] == native.search["recall"]
    (True, True)
    >>> g = build_graph(X, GraphSpec("knn", k=5), search=ivf, backend=plan)  # the same lists
    >>> native = build_graph(X, GraphSpec("knn", k=5), search=ivf)
    >>> bool((g.dst == native.dst).all()), g.search["refine"], g.search["tasks"]
    (True, 'driver', 9)

"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from simclust import _native, ops
from simclust.distributed._executor import Executor, Task
from simclust.distributed._forest import _with_forest, merge_forests
from simclust.distributed._graph import _key_ends, _pair_keys
from simclust.distributed._kmeans import distributed_kmeans
from simclust.distributed._shuffle import shuffle
from simclust.exceptions import ClusteringWarning
from simclust.graph import BackendEdges
from simclust.ops import EdgeArrays
from simclust.progress import StageProgress

__all__ = ["Lists", "distributed_partition", "threshold_lists"]


def _assign_task(
    block: npt.NDArray[np.float32], centroids: npt.NDArray[np.float32], threads: int | None
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]]:
    """The block's rows' nearest lists and their cosines to the nearest (native)."""
    return _native.partition_assign(block, centroids, n_threads=threads)


def distributed_partition(
    executor: Executor,
    x: npt.NDArray[np.float32],
    n_lists: int | None,
    blocks: Sequence[Any],
    bounds: Sequence[tuple[int, int]],
    n_threads: int | None,
) -> ops.Partition:
    """The native partition of the unit rows ``x`` (``certified=False``), built by tasks.

    ``blocks`` are ``x``'s rows in the executor's store (``bounds``: their rows, starting
    on multiples of 1,024 rows, the native assignment's blocks). The training sample is
    the native one (:func:`simclust._native.partition_train_rows`), gathered on the driver
    (which holds ``x`` in this step); its k-means runs as block tasks; each block's rows
    are assigned by a task; ``n_threads`` is the driver's for forming the lists.
    """
    n = int(x.shape[0])
    lists = _native.default_n_lists(n) if n_lists is None else n_lists
    rows = _native.partition_train_rows(n, lists, seed=0)
    sample = _native.normalize(np.ascontiguousarray(x[rows]))
    with warnings.catch_warnings():  # empty lists are the native training's too
        warnings.simplefilter("ignore", ClusteringWarning)
        fit = distributed_kmeans(
            executor, sample, lists, init="random", max_iter=20, tol=1e-4, random_state=0
        )  # the native training: ops.Partition defaults, PARTITION_TOL in ivf/mod.rs
    shared = executor.put(fit.centroids)
    threads = getattr(executor, "task_threads", None)
    tasks = [
        Task(f"block {b}: rows {s}..{e - 1}", (h, shared, threads))
        for b, (h, (s, e)) in enumerate(zip(blocks, bounds, strict=True))
    ]
    out = executor.map("ivf assignment", _assign_task, tasks)
    near = np.concatenate([o[0] for o in out])
    cos = np.concatenate([o[1] for o in out])
    return ops.Partition.from_assignment(
        x, fit.centroids, near, cos, certified=False, n_threads=n_threads
    )


class Lists:
    """A partition's lists, and their rows in the executor's object store as chunks.

    Args:
        x: the unit rows.
        n_lists: lists (default ``2 sqrt(N)``, as natively).
        n_threads: threads of the driver's part of the partition's build.
        executor: builds the partition by tasks (:func:`distributed_partition`) over
            ``blocks`` and shuffles the rows into chunks (:meth:`put`).
        blocks: ``x``'s rows in the executor's store as consecutive blocks.
        bounds: each block's rows ``(start, end)``.
        shuffled: the chunks are moved from ``blocks`` by tasks (the rows were read by
            tasks, :mod:`simclust.distributed._rows`), not put from ``x`` here.

    Attributes:
        part: the native partition (driver side: list pairs, recall, the kNN search's probe
            plan and NN-descent).
        offsets: list ``l`` is positions ``offsets[l]:offsets[l + 1]``.

    """

    def __init__(
        self,
        x: npt.NDArray[np.float32],
        n_lists: int | None,
        n_threads: int | None,
        executor: Executor,
        blocks: Sequence[Any],
        bounds: Sequence[tuple[int, int]],
        *,
        shuffled: bool = False,
    ) -> None:
        self.part = distributed_partition(executor, x, n_lists, blocks, bounds, n_threads)
        self.offsets = np.concatenate([[0], np.cumsum(self.part.list_sizes.astype(np.int64))])
        self._x, self._executor, self._blocks, self._bounds = x, executor, blocks, bounds
        self.shuffled = shuffled
        self.handles: list[Any] = []
        self.chunk_of = np.zeros(0, np.int64)
        self.starts = np.zeros(0, np.int64)

    def put(self, chunk_rows: int, progress: StageProgress | None = None) -> None:
        """The rows of consecutive lists, in list order, as chunks in the store (once).

        A chunk holds lists while it stays within ``chunk_rows`` rows (a bigger list
        alone). With ``shuffled``, the rows move from their blocks to their chunks by
        tasks (stage ``ivf lists``, :func:`simclust.distributed._shuffle.shuffle`: the
        driver sends positions, not rows); else this process puts them.
        """
        if self.handles:
            return
        sizes = np.diff(self.offsets)
        chunk_of = np.zeros(sizes.size, np.int64)
        starts, rows = [0], 0
        for lst, size in enumerate(sizes.tolist()):
            if rows and rows + size > chunk_rows:
                starts.append(int(self.offsets[lst]))
                rows = 0
            chunk_of[lst] = len(starts) - 1
            rows += size
        order = self.part.order
        if self.shuffled:
            self.handles = shuffle(
                self._executor, self._blocks, self._bounds, order, starts, "ivf lists", progress
            )
        else:
            ends = [*starts[1:], int(self.offsets[-1])]
            self.handles = [
                self._executor.put(np.ascontiguousarray(self._x[order[s:e]]))
                for s, e in zip(starts, ends, strict=True)
            ]
        self.chunk_of, self.starts = chunk_of, np.asarray(starts, np.int64)

    def tasks(self, nprobe: int, n_threads: int | None) -> tuple[list[Task], dict[str, int]]:
        """One task per chunk holding the first list of a pair; and what they compute.

        A task's arguments: its lists ``(chunk arg, start, end, position)`` (an ``(m, 4)``
        array; the rows of a list are ``chunks[arg][start:end]``), its pairs as indices
        into them (``(p, 2)``), then the handles of the chunks they read.
        """
        li, lj = self.part.list_pairs(nprobe, n_threads=n_threads)
        li, lj = li.astype(np.int64), lj.astype(np.int64)
        size = np.diff(self.offsets)
        pairs = np.where(li == lj, size[li] * (size[li] - 1) // 2, size[li] * size[lj])
        tasks = []
        for c in np.unique(self.chunk_of[li]).tolist():
            mine = self.chunk_of[li] == c
            a, b = li[mine], lj[mine]
            touched, local = np.unique(np.concatenate([a, b]), return_inverse=True)
            used, arg = np.unique(self.chunk_of[touched], return_inverse=True)
            start = self.starts[self.chunk_of[touched]]
            desc = np.stack(
                [arg, self.offsets[touched] - start, self.offsets[touched + 1] - start,
                 self.offsets[touched]],
                axis=1,
            ).astype(np.int64)  # fmt: skip
            local_pairs = local.reshape(2, -1).T.astype(np.uint32)
            first, last = int(self.offsets[a[0]]), int(self.offsets[a[-1] + 1]) - 1
            name = f"lists {int(a[0])}..{int(a[-1])} (positions {first}..{last}), {a.size} pairs"
            handles = [self.handles[u] for u in used.tolist()]
            tasks.append(Task(name, (desc, local_pairs, *handles)))
        stats = {
            "n_lists": int(size.size),
            "list_pairs": int(li.size),
            "pairs_computed": int(pairs.sum()),
            "pairs_total": int(self.offsets[-1]) * (int(self.offsets[-1]) - 1) // 2,
        }
        return tasks, stats


def _views(
    desc: npt.NDArray[np.int64], chunks: Sequence[npt.NDArray[np.float32]]
) -> tuple[list[npt.NDArray[np.float32]], npt.NDArray[np.uint32]]:
    """A task's lists (views of its chunks) and their first positions."""
    lists = [chunks[c][s:e] for c, s, e, _ in desc.tolist()]
    return lists, desc[:, 3].astype(np.uint32)


def _threshold_task(
    threshold: float,
    threads: int | None,
    desc: npt.NDArray[np.int64],
    pairs: npt.NDArray[np.uint32],
    *chunks: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32], EdgeArrays]:
    """The edges ``>= threshold`` of a task's list pairs, and their forest (positions)."""
    lists, starts = _views(desc, chunks)
    return _with_forest(*ops.list_pair_edges(lists, starts, pairs, threshold, n_threads=threads))


def threshold_lists(
    executor: Executor,
    lists: Lists,
    threshold: float,
    nprobe: int,
    recall_rows: int,
    threads: int | None,
    n_threads: int | None,
    report: StageProgress,
    stage: str,
) -> BackendEdges:
    """The native ``ivf`` ε-graph at ``threshold`` from list-pair tasks.

    With its record and its maximum spanning forest (the tasks' merged in task order).
    """
    tasks, stats = lists.tasks(nprobe, n_threads)
    tasks = [Task(t.name, (threshold, threads, *t.args)) for t in tasks]
    order = lists.part.order
    ss, dd, ww = [], [], []
    forests: list[EdgeArrays | None] = [None] * len(tasks)
    for t, (p, q, w, (fp, fq, fw)) in executor.imap(stage, _threshold_task, tasks, progress=report):
        u, v = order[p], order[q]
        ss.append(np.minimum(u, v))
        dd.append(np.maximum(u, v))
        ww.append(w)
        fu, fv = order[fp], order[fq]
        forests[t] = (np.minimum(fu, fv), np.maximum(fu, fv), fw)
    if ss:
        key = _pair_keys(np.concatenate(ss), np.concatenate(dd))
        w = np.concatenate(ww)
    else:
        key, w = np.zeros(0, np.uint64), np.zeros(0, np.float32)
    by = np.argsort(key, kind="stable")
    src, dst = _key_ends(key[by])
    sim = w[by]
    recall, measured = lists.part.pair_recall(
        src, dst, threshold, recall_rows=recall_rows, n_threads=n_threads
    )
    record = {**stats, "recall": recall, "recall_rows": measured, "tasks": len(tasks)}
    forest = merge_forests((f for f in forests if f is not None), int(order.size))
    return BackendEdges(src, dst, sim, record, forest)
