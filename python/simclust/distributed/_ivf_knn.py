"""The distributed approximate kNN graph (``search = "ivf"``): the native search as tasks.

The native search over a partition (:meth:`simclust.ops.Partition.knn_edges`) is, in
order: every list's own pairs; every row with its next ``nprobe - 1`` nearest lists (both
rows offered each pair); the 5 % of rows whose ``k``-th neighbour is then least similar
with ``max(32, 4 nprobe)`` lists; NN-descent's local joins over all the lists. Over the
chunks of :class:`simclust.distributed._ivf.Lists` (the rows of consecutive lists in the
executor's store) the first three run as tasks, a wave each, and the driver merges their
top-k lists (:func:`simclust.ops.knn_merge`) between waves:

* stage ``knn graph (ivf): own lists``: a task per chunk, its lists' own pairs
  (:func:`simclust.ops.knn_own_lists`);
* stage ``knn graph (ivf): probes``: the driver takes which rows probe which lists from
  the partition (:meth:`~simclust.ops.Partition.knn_probes`); a task per chunk of target
  lists, given the handles of the chunks holding its probing rows and their indices
  there (never all the rows), and the floors (the ``k``-th entries of the merged lists)
  of its rows (:func:`simclust.ops.knn_probe_lists`);
* stage ``knn graph (ivf): weak rows``: the same for the weakest rows, chosen on the
  driver from the lists merged after the probes.

NN-descent and the last refinement run on the driver from the merged lists, with the
partition's rows (:meth:`~simclust.ops.Partition.knn_finish`), and the recall is
measured there. Each part computes the native search's tiles and its lists merge
order-independently, so the graph, its similarities, ``pairs_computed`` and the recall
are the native ones bit for bit, for any number of chunks.

The example of :mod:`simclust.distributed._ivf` builds both graphs.

"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from simclust import ops
from simclust.distributed._executor import Executor, Task
from simclust.distributed._ivf import Lists
from simclust.graph import BackendEdges
from simclust.progress import StageProgress

__all__ = ["STAGES", "knn_lists"]

STAGES = ("knn graph (ivf): own lists", "knn graph (ivf): probes", "knn graph (ivf): weak rows")
"""The stages of the tasks, in order."""


def _own_task(
    k: int,
    threads: int | None,
    bounds: npt.NDArray[np.int64],
    start: int,
    chunk: npt.NDArray[np.float32],
) -> ops.KnnPart:
    """A chunk's own-list pairs (native)."""
    return ops.knn_own_lists(chunk, bounds, start, k, n_threads=threads)


def _probe_task(
    k: int,
    threads: int | None,
    bounds: npt.NDArray[np.int64],
    start: int,
    positions: npt.NDArray[np.uint32],
    probes: tuple[npt.NDArray[np.int64], npt.NDArray[np.uint32]],
    floors: tuple[npt.NDArray[np.float32], npt.NDArray[np.uint32]],
    query_floors: tuple[npt.NDArray[np.float32], npt.NDArray[np.uint32]],
    sources: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]],
    chunk: npt.NDArray[np.float32],
    *held: npt.NDArray[np.float32],
) -> ops.KnnPart:
    """Rows probing a chunk's lists (native); their rows gathered from the chunks ``held``.

    ``sources``: per held chunk how many of the (ascending) ``positions`` it holds, and
    per position its row there.
    """
    counts, rows = sources
    cut = np.cumsum(counts)[:-1]
    q = np.concatenate([h[r] for h, r in zip(held, np.split(rows, cut), strict=True)])
    offsets, members = probes
    return ops.knn_probe_lists(
        chunk, bounds, start, q, positions, offsets, members, floors, query_floors, k,
        n_threads=threads,
    )  # fmt: skip


class _Chunks:
    """The chunks of a :class:`Lists`: their first lists and positions."""

    def __init__(self, lists: Lists) -> None:
        self.lists = lists
        n_chunks = len(lists.handles)
        first = np.searchsorted(lists.chunk_of, np.arange(n_chunks + 1), side="left")
        self.first_list = first.astype(np.int64)  # chunk c is lists first[c]:first[c + 1]
        self.start = lists.offsets[self.first_list].astype(np.int64)  # and these positions

    def __len__(self) -> int:
        return len(self.lists.handles)

    def bounds(self, c: int) -> npt.NDArray[np.int64]:
        a, b = self.first_list[c], self.first_list[c + 1]
        bounds: npt.NDArray[np.int64] = self.lists.offsets[a : b + 1] - self.start[c]
        return bounds

    def name(self, c: int) -> str:
        a, b = int(self.first_list[c]), int(self.first_list[c + 1]) - 1
        s, e = int(self.start[c]), int(self.start[c + 1]) - 1
        return f"chunk {c}: lists {a}..{b} (positions {s}..{e})"


def _kth(
    idx: npt.NDArray[np.uint32], sims: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint32]]:
    """The floors of merged lists: per row its ``k``-th similarity and position."""
    return np.ascontiguousarray(sims[:, -1]), np.ascontiguousarray(idx[:, -1])


def _probe_tasks(
    chunks: _Chunks,
    probes: tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint32]],
    floors: tuple[npt.NDArray[np.float32], npt.NDArray[np.uint32]],
    k: int,
    threads: int | None,
) -> list[Task]:
    """A task per chunk of target lists with probing rows."""
    offsets, members = probes[0].astype(np.int64), probes[1]
    fs, fi = floors
    tasks = []
    for c in range(len(chunks)):
        a, b = chunks.first_list[c], chunks.first_list[c + 1]
        mine = members[offsets[a] : offsets[b]]
        if mine.size == 0:
            continue
        positions = np.unique(mine)
        local = np.searchsorted(positions, mine).astype(np.uint32)
        held = np.searchsorted(chunks.start, positions, side="right") - 1
        used, counts = np.unique(held, return_counts=True)
        rows = (positions - chunks.start[held]).astype(np.int64)
        s, e = int(chunks.start[c]), int(chunks.start[c + 1])
        args = (
            k,
            threads,
            chunks.bounds(c),
            s,
            positions,
            (offsets[a : b + 1] - offsets[a], local),
            (fs[s:e], fi[s:e]),
            (fs[positions], fi[positions]),
            (counts.astype(np.int64), rows),
            chunks.lists.handles[c],
            *(chunks.lists.handles[u] for u in used.tolist()),
        )
        name = f"{chunks.name(c)}, {positions.size} probing rows"
        tasks.append(Task(name, args))
    return tasks


def _merged(
    n: int,
    k: int,
    parts: Iterable[ops.KnnPart],
    base: tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]] | None,
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32], int]:
    """``base`` (lists over all rows) and the parts' lists merged; the parts' pairs."""
    rows, idx, sims, pairs = [], [], [], 0
    if base is not None:
        rows.append(np.arange(n, dtype=np.uint32))
        idx.append(base[0])
        sims.append(base[1])
    for p in parts:
        rows.append(p.rows)
        idx.append(p.idx)
        sims.append(p.sims)
        pairs += p.pairs_computed
    if not rows:  # nothing found: empty lists
        rows, idx, sims = (
            [np.zeros(0, np.uint32)],
            [np.zeros((0, k), np.uint32)],
            [np.zeros((0, k), np.float32)],
        )
    m_idx, m_sims = ops.knn_merge(n, k, np.concatenate(rows), np.vstack(idx), np.vstack(sims))
    return m_idx, m_sims, pairs


def knn_lists(
    executor: Executor,
    lists: Lists,
    k: int,
    threshold: float,
    nprobe: int,
    recall_rows: int,
    threads: int | None,
    n_threads: int | None,
    report: StageProgress,
) -> BackendEdges:
    """The native ``ivf`` kNN graph (edges ``>= threshold``) from tasks over ``lists``' chunks.

    ``lists`` must be put (:meth:`Lists.put`). ``threads``: each task's; ``n_threads``:
    the driver's (probe plan, merges, NN-descent, recall). The record: the native keys,
    ``tasks`` (all waves) and ``refine: driver``.
    """
    part = lists.part
    n = int(lists.offsets[-1])
    search_k = part.knn_search_k(k)
    chunks = _Chunks(lists)
    own = [
        Task(chunks.name(c), (search_k, threads, chunks.bounds(c), int(chunks.start[c]), h))
        for c, h in enumerate(lists.handles)
    ]
    found = (r for _, r in executor.imap(STAGES[0], _own_task, own, progress=report))
    idx, sims, pairs = _merged(n, search_k, found, None)
    n_tasks = len(own)
    for stage, weak in zip(STAGES[1:], (False, True), strict=True):
        probes = part.knn_probes(nprobe, sims if weak else None, n_threads=n_threads)
        tasks = _probe_tasks(chunks, probes, _kth(idx, sims), search_k, threads)
        found = (r for _, r in executor.imap(stage, _probe_task, tasks, progress=report))
        idx, sims, more = _merged(n, search_k, found, (idx, sims))
        pairs += more
        n_tasks += len(tasks)
    src, dst, sim, stats = part.knn_finish(
        k, threshold, idx, sims, pairs, recall_rows=recall_rows, n_threads=n_threads
    )
    record: dict[str, Any] = {**stats._asdict(), "tasks": n_tasks, "refine": "driver"}
    return BackendEdges(src, dst, sim, record, None)
