"""The distributed graph stage: exact ε- and kNN graphs from tasks over pairs of row blocks.

The unit rows are cut into blocks of whole kernel tiles (multiples of
:data:`TILE_ROWS` rows), each put once in the executor's object store. A task takes a
pair of blocks ``(i, j)``, ``i <= j``:

* ε-graph: the pairs ``>= t`` between the two blocks (:func:`simclust.ops.threshold_edges`
  on a diagonal block, :func:`simclust.ops.threshold_edges_between` off it). The tiles
  are the ones the native brute force computes, so every similarity is bit for bit the
  native one; the driver concatenates the tasks' sorted pieces block row by block row.
* kNN graph: a diagonal task runs the exact self-kNN (:func:`simclust.ops.knn`) of its
  block, an off-diagonal one the exact kNN between its two blocks both ways
  (:func:`simclust.ops.knn_between`: each pair of ``A x B`` screened once for both of
  its rows). Every row's ``k`` nearest overall are among the lists of the tasks it is in,
  each similarity is the exact one every kNN list holds, so merging the lists
  (similarity descending under the total order, ties to the lower row) gives the native
  lists exactly. The driver merges each task's lists into running ``N x k`` lists as
  tasks finish (memory ``O(N k)``). Every pair is computed once, as natively.

Both graphs come back whole to the driver, where the rest of the run (metrics, outputs)
is the native one: the same :class:`simclust.graph.Graph`. An ε-graph task also returns the
maximum spanning forest of its edges (its union-find: :func:`_with_forest`), which the
driver merges (:func:`merge_forests`) into :attr:`simclust.graph.Graph.forest`: the
components and the sweep at every threshold from at most ``N - 1`` edges.

Example:
    >>> from simclust.distributed import DistributedBackend, InProcessExecutor
    >>> from simclust.graph import GraphSpec, build_graph
    >>> from simclust.testing import make_embeddings
    >>> X = make_embeddings(3000, 8, n_clusters=5, seed=0)
    >>> plan = DistributedBackend(InProcessExecutor(), block_rows=1024)
    >>> g = build_graph(X, GraphSpec("threshold", threshold=0.95), backend=plan)
    >>> native = build_graph(X, GraphSpec("threshold", threshold=0.95))
    >>> bool((g.src == native.src).all() and (g.similarity == native.similarity).all())
    True
    >>> g.search["tasks"], g.search["blocks"]
    (6, 3)

"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from simclust import ops
from simclust.base import LoadedData
from simclust.distributed._executor import Executor, Task
from simclust.distributed._forest import _with_forest, merge_forests
from simclust.distributed._rows import (
    TILE_ROWS,
    StoredRows,
    default_block_rows,
)
from simclust.exceptions import ParameterError
from simclust.graph import BackendEdges, GraphSpec, SearchSettings
from simclust.ops import EdgeArrays
from simclust.ops._kmeans import _KMeansOutput
from simclust.progress import StageProgress, any_stage

if TYPE_CHECKING:
    from simclust.base import Metric, MetricContext

__all__ = ["DistributedBackend"]

_MISSING = np.uint32(0xFFFF_FFFF)


# --------------------------------------------------------------------------- tasks
# Module-level functions: Ray pickles them by reference, the executors call them with
# the blocks resolved to arrays (read-only, zero-copy from the object store).


def _threshold_pair(
    a: npt.NDArray[np.float32],
    b: npt.NDArray[np.float32] | None,
    a0: int,
    b0: int,
    threshold: float,
    threads: int | None,
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32], EdgeArrays]:
    """The ε-graph's edges between two blocks, and their forest (:func:`_with_forest`).

    The edges in global rows, sorted by ``(src, dst)``. ``a`` holds rows from ``a0``, ``b``
    rows from ``b0`` (``None``: the edges within ``a``).
    """
    if b is None:
        s, d, w = ops.threshold_edges(a, threshold, n_threads=threads)
        return _with_forest(s + np.uint32(a0), d + np.uint32(a0), w)
    s, d, w = ops.threshold_edges_between(a, b, threshold, n_threads=threads)
    return _with_forest(s + np.uint32(a0), d + np.uint32(b0), w)


def _knn_pair(
    a: npt.NDArray[np.float32],
    b: npt.NDArray[np.float32] | None,
    a0: int,
    b0: int,
    k: int,
    threads: int | None,
    floors: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None = None,
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]]:
    """Exact kNN lists of the rows of ``a`` then ``b``, in global rows.

    ``b = None``: the self-kNN of ``a`` (``min(k, rows - 1)`` neighbours per row).
    Otherwise the rows of ``a`` among ``b`` and those of ``b`` among ``a``
    (:func:`simclust.ops.knn_between`: each pair of the two blocks computed once), ``k``
    per row, padded with ``2**32 - 1`` where the other block has fewer rows or no pair
    reaches the row's floor (``floors``: each row's ``k``-th best so far).
    """
    if b is None:
        kk = min(k, int(a.shape[0]) - 1)
        if kk < 1:  # a block of one row: no pairs
            return np.zeros((a.shape[0], 0), np.uint32), np.zeros((a.shape[0], 0), np.float32)
        idx, sim = ops.knn(a, kk, n_threads=threads)
        return idx + np.uint32(a0), sim
    (ia, sa), (ib, sb) = ops.knn_between(a, b, k, floors=floors, n_threads=threads)
    idx = np.concatenate([_shift(ia, b0), _shift(ib, a0)])
    return idx, np.concatenate([sa, sb])


def _shift(idx: npt.NDArray[np.uint32], start: int) -> npt.NDArray[np.uint32]:
    """Block-local neighbour indices as global rows (the padding stays padding)."""
    return np.where(idx == _MISSING, _MISSING, idx + np.uint32(start)).astype(np.uint32)


def _rank_keys(sim: npt.NDArray[np.float32]) -> npt.NDArray[np.uint32]:
    """Keys that sort ascending as ``sim`` descending under the total order.

    As the native lists are sorted (``f32::total_cmp``: ``-0 < +0``).
    """
    bits = sim.view(np.uint32)
    negative = (bits >> np.uint32(31)).astype(bool)
    ordered = np.where(negative, ~bits, bits | np.uint32(0x8000_0000))
    return ~ordered


def _merge_lists(
    best_idx: npt.NDArray[np.uint32],
    best_sim: npt.NDArray[np.float32],
    idx: npt.NDArray[np.uint32],
    sim: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]]:
    """Rows' ``k`` best of their current lists and new candidates (duplicates once)."""
    k = best_idx.shape[1]
    ci = np.concatenate([best_idx, idx], axis=1)
    cs = np.concatenate([best_sim, sim], axis=1)
    for _ in range(2):  # sort; drop the repeats of a neighbour (adjacent); sort again
        order = np.lexsort((ci, _rank_keys(cs)), axis=-1)
        ci = np.take_along_axis(ci, order, axis=1)
        cs = np.take_along_axis(cs, order, axis=1)
        repeat = np.zeros(ci.shape, dtype=bool)
        repeat[:, 1:] = (ci[:, 1:] == ci[:, :-1]) & (ci[:, 1:] != _MISSING)
        if not repeat.any():
            break
        ci[repeat], cs[repeat] = _MISSING, -np.inf
    return ci[:, :k], cs[:, :k]


# --------------------------------------------------------------------------- the plan


class DistributedBackend:
    """A run's distributed backend: its stages as an executor's tasks (``backend="ray"``).

    ``analyze`` builds one with ``backend="ray"`` and hands it to each stage that has a
    distributed plan: the sharded load (:meth:`load`), the graphs (:meth:`exact_edges`
    over row-block pairs, :meth:`partitioned_edges` over list pairs or certified group
    pairs; pass it as ``backend=`` to :func:`simclust.graph.build_graph`), the ``kmeans``
    strategy (:meth:`fit_strategy`) and the built-in metrics (:meth:`compute_metric`).
    The blocks of the rows it is given are put in the executor's object store once and
    reused by every graph of the run (the run's graph, the outlier scores' kNN search).
    (Formerly ``DistributedGraphs``, still importable under that name.)

    Args:
        executor: runs the tasks (:class:`RayExecutor`, :class:`InProcessExecutor`).
        block_rows: rows per block, a multiple of :data:`TILE_ROWS` (default
            :func:`default_block_rows`).

    """

    def __init__(self, executor: Executor, *, block_rows: int | None = None) -> None:
        if block_rows is not None and (
            isinstance(block_rows, bool)
            or not isinstance(block_rows, int)
            or block_rows < TILE_ROWS
            or block_rows % TILE_ROWS
        ):
            raise ParameterError(
                f"block_rows must be a positive multiple of {TILE_ROWS} (the kernels' tile), "
                f"got {block_rows!r}"
            )
        self.executor = executor
        self.name = executor.name
        self.block_rows = block_rows
        self.rows = StoredRows(executor, block_rows=block_rows)
        """The run's rows in the store (:class:`~simclust.distributed._rows.StoredRows`)."""
        self._lists: Any = None  # _ivf.Lists of the partitioned searches
        self._lists_key: tuple[int, int | None] | None = None
        self._lists_x: npt.NDArray[np.float32] | None = None

    def derived(self, raw: npt.ArrayLike, rows: npt.ArrayLike, *, unit: bool) -> None:
        """``rows`` are the input ``raw`` as float32 (normalised if ``unit``).

        The pipeline says so after its ``normalize`` stage: when ``raw`` was read by
        tasks (:meth:`load`), the blocks of ``rows`` are then cut from the shards by
        tasks, and the plans regroup them by tasks (:mod:`simclust.distributed._rows`).
        """
        self.rows.derived(raw, rows, unit=unit)

    def fit_strategy(
        self, strategy: object, x: npt.NDArray[np.float32], progress: StageProgress | None
    ) -> npt.NDArray[np.int64] | None:
        """Fit ``strategy`` on ``x`` by tasks if this backend can, else ``None``.

        It can fit the built-in ``kmeans`` (:class:`simclust.KMeans` itself) with
        ``metric="cosine"``: the distributed k-means, the native labels bit for bit.
        """
        from simclust.cluster import KMeans

        if type(strategy) is not KMeans or strategy.metric != "cosine":
            return None
        return strategy._fit(x, self, progress).labels_

    def load(self, loader: object, path: Path, progress: StageProgress | None) -> LoadedData | None:
        """Read ``path`` with ``loader`` by tasks if this backend can, else ``None``.

        It can for the built-in ``shards`` loader: a task a shard
        (:meth:`simclust.default_plugins.loaders.ShardsLoader.read_by`); the shards'
        rows stay in the store, where the plans' blocks are cut from (:meth:`derived`).
        """
        from simclust.default_plugins.loaders import ShardsLoader

        if type(loader) is not ShardsLoader:
            return None
        data, shards = loader.read_by(self.executor, path, progress=progress)
        self.rows.loaded(data.X, shards)
        return data

    def compute_metric(self, metric: Metric, ctx: MetricContext) -> dict[str, Any] | None:
        """``metric``'s outputs by tasks if this backend can, else ``None``.

        It can compute the built-in ``intra``, ``centroid`` and ``inter`` metrics (rows
        grouped by cluster into tasks; see :mod:`simclust.distributed._metrics`): the
        native frames. Anything else runs natively on the driver.
        """
        from simclust.distributed._metrics import compute_metric

        if not self.rows.by_tasks(ctx.X):  # the driver's rows: parts put from here
            return compute_metric(self.executor, metric, ctx, task_rows=self.block_rows)
        blocks = self.rows.blocks(ctx.X)  # the graph's, for cosine: cut from the shards already
        return compute_metric(self.executor, metric, ctx, task_rows=self.block_rows, blocks=blocks)

    def kmeans(self, x: npt.NDArray[np.float32], n_clusters: int, **params: Any) -> _KMeansOutput:
        """Spherical k-means of ``x`` by this backend's executor: the native result.

        ``params`` and the plan: :func:`simclust.distributed.distributed_kmeans` (its own
        blocks, of whole 4,096-row spans).
        """
        from simclust.distributed._kmeans import distributed_kmeans, kmeans_block_rows

        if self.rows.by_tasks(x):  # the blocks cut from the shards by tasks
            rows = params.pop("block_rows", None) or kmeans_block_rows(int(x.shape[0]))
            blocks, _ = self.rows.blocks(x, rows)
            return distributed_kmeans(
                self.executor, x, n_clusters, block_rows=rows, blocks=blocks, **params
            )
        return distributed_kmeans(self.executor, x, n_clusters, **params)

    def close(self) -> None:
        """Drop the blocks and close the executor."""
        self.rows = StoredRows(self.executor, block_rows=self.block_rows)
        self._lists = self._lists_x = None
        self.executor.close()

    def _tasks(
        self, blocks: Sequence[Any], bounds: Sequence[tuple[int, int]]
    ) -> tuple[list[tuple[int, int]], list[Task]]:
        nb = len(bounds)
        pairs = [(i, j) for i in range(nb) for j in range(i, nb)]
        tasks = []
        for i, j in pairs:
            (a0, a1), (b0, b1) = bounds[i], bounds[j]
            what = f"rows {a0}..{a1 - 1}" + ("" if i == j else f" x {b0}..{b1 - 1}")
            tasks.append(
                Task(
                    f"block pair ({i}, {j}): {what}",
                    (blocks[i], None if i == j else blocks[j], a0, b0),
                )
            )
        return pairs, tasks

    def exact_edges(
        self,
        x: npt.NDArray[np.float32],
        spec: GraphSpec,
        threshold: float,
        progress: ops.Progress | None,
    ) -> BackendEdges:
        """The exact edges ``>= threshold`` of ``spec``'s graph (see the module docs)."""
        blocks, bounds = self.rows.blocks(x)
        threads = getattr(self.executor, "task_threads", None)

        report = any_stage(progress)
        stage = f"{spec.kind} graph"
        if spec.kind == "threshold":
            pairs, tasks = self._tasks(blocks, bounds)
            tasks = [Task(t.name, (*t.args, threshold, threads)) for t in tasks]
            pieces = self.executor.map(stage, _threshold_pair, tasks, progress=report)
            src, dst, sim = _concat_block_rows(pairs, pieces, len(bounds))
            forest = merge_forests((p[3] for p in pieces), len(x))
        else:
            forest = None  # the tasks' lists are candidates; the edges come from the merge
            pairs, tasks = self._tasks(blocks, bounds)
            tasks = [Task(t.name, (*t.args, spec.k, threads)) for t in tasks]
            src, dst, sim = self._knn(x, pairs, tasks, bounds, spec.k, threshold, stage, report)
        record = {
            "backend": self.name,
            "rows_by": "tasks" if self.rows.by_tasks(x) else "driver",
            "blocks": len(bounds),
            "block_rows": bounds[0][1] - bounds[0][0] if bounds else 0,
            "tasks": len(tasks),
            **{k: v for k, v in self.executor.describe().items() if k != "executor"},
        }
        return BackendEdges(src, dst, sim, record, forest)

    def partitioned_edges(
        self,
        x: npt.NDArray[np.float32],
        spec: GraphSpec,
        threshold: float,
        search: SearchSettings,
        n_threads: int | None,
        progress: ops.Progress | None,
    ) -> BackendEdges:
        """The ``ivf`` (or ``certified``) edges ``>= threshold`` of ``spec``'s graph.

        The partition is built by tasks (k-means on the sample, the assignment; the lists
        formed on the driver with ``n_threads``), once per rows and list count: the run's
        graph and the outlier search share it. An ε-graph is computed by
        list-pair tasks (the native edges and recall, :mod:`simclust.distributed._ivf`); a
        kNN graph by the native search's own-list, probe and weak-row passes as tasks, then
        NN-descent on the driver (``refine: driver``; :mod:`simclust.distributed._ivf_knn`).
        A ``certified`` ε-graph: group-pair tasks over the native partition with cells
        (:mod:`simclust.distributed._certified`), the native edges and record.
        The record holds the native search's keys (``n_lists``, ``nprobe``,
        ``list_pairs``, ``pairs_computed``, ``pairs_total``, ``recall``, ``recall_rows``)
        and the backend's (``tasks``, ``chunks``, nodes).
        """
        from simclust.distributed import _certified, _ivf, _ivf_knn

        if search.method == "certified":  # group-pair tasks: simclust.distributed._certified
            src, dst, sim, done, spanning = _certified.certified_edges(
                self.executor,
                x,
                threshold,
                n_lists=search.n_lists,
                n_threads=n_threads,
                group_rows=self.block_rows,
                progress=any_stage(progress),
            )
            describe = self.executor.describe().items()
            record = {
                **done,
                "backend": self.name,
                "rows_by": "driver",  # the groups are put from the native partition here
                **{k: v for k, v in describe if k != "executor"},
            }
            return BackendEdges(src, dst, sim, record, spanning)
        key = (id(x), search.n_lists)
        if self._lists is None or self._lists_key != key or self._lists_x is not x:
            self._lists = None  # the previous partition's chunks go first
            moved = self.rows.by_tasks(x)  # else the driver puts the chunks
            self._lists = _ivf.Lists(
                x, search.n_lists, n_threads, self.executor, *self.rows.blocks(x), shuffled=moved
            )
            self._lists_key, self._lists_x = key, x
        threads = getattr(self.executor, "task_threads", None)

        report = any_stage(progress)
        stage = f"{spec.kind} graph (ivf)"
        self._lists.put(self.block_rows or default_block_rows(len(x)), report)  # once
        if spec.kind == "threshold":
            nprobe = search.nprobe_for("threshold")
            src, dst, sim, done, forest = _ivf.threshold_lists(
                self.executor,
                self._lists,
                threshold,
                nprobe,
                search.recall_rows,
                threads,
                n_threads,
                report,
                stage,
            )
        else:  # the native search's phases as tasks, NN-descent on the driver (_ivf_knn)
            nprobe = search.nprobe_for("knn")
            src, dst, sim, done, forest = _ivf_knn.knn_lists(
                self.executor,
                self._lists,
                spec.k,
                threshold,
                nprobe,
                search.recall_rows,
                threads,
                n_threads,
                report,
            )
        record = {
            **done,
            "nprobe": nprobe,
            "backend": self.name,
            "rows_by": "tasks" if self._lists.shuffled else "driver",
            "chunks": len(self._lists.handles),
            **{k: v for k, v in self.executor.describe().items() if k != "executor"},
        }
        return BackendEdges(src, dst, sim, record, forest)

    def _knn(
        self,
        x: npt.NDArray[np.float32],
        pairs: Sequence[tuple[int, int]],
        tasks: Sequence[Task],
        bounds: Sequence[tuple[int, int]],
        k: int,
        threshold: float,
        stage: str,
        report: Any,
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32]]:
        n = int(x.shape[0])
        best_idx = np.full((n, k), _MISSING, dtype=np.uint32)
        best_sim = np.full((n, k), -np.inf, dtype=np.float32)
        # Two waves: each block's self-kNN, then the block pairs, each row's k-th best
        # so far passed to them as a floor (exact: a pair below it cannot displace any
        # of the row's k best, so the merged lists are the same; the pair tasks screen
        # against the floor from their first tile instead of from nothing).
        diagonal = [t for t, (i, j) in enumerate(pairs) if i == j]
        between = [t for t, (i, j) in enumerate(pairs) if i != j]
        for first, wave in ((0, diagonal), (len(diagonal), between)):
            batch = [
                tasks[t]
                if pairs[t][0] == pairs[t][1]
                else Task(tasks[t].name, (*tasks[t].args, self._floors(best_sim, pairs[t], bounds)))
                for t in wave
            ]

            def wave_report(stage: str, done: int, total: int, first: int = first) -> None:
                report(stage, first + done, len(tasks))

            for w, (idx, sim) in self.executor.imap(stage, _knn_pair, batch, progress=wave_report):
                i, j = pairs[wave[w]]
                ranges = [bounds[i]] if i == j else [bounds[i], bounds[j]]
                at = 0
                for s, e in ranges:
                    part = slice(at, at + e - s)
                    at += e - s
                    pad = k - idx.shape[1]
                    new_i = np.pad(idx[part], ((0, 0), (0, pad)), constant_values=_MISSING)
                    new_s = np.pad(sim[part], ((0, 0), (0, pad)), constant_values=-np.inf)
                    best_idx[s:e], best_sim[s:e] = _merge_lists(
                        best_idx[s:e], best_sim[s:e], new_i, new_s
                    )
        return _list_edges(best_idx, best_sim, threshold)

    @staticmethod
    def _floors(
        best_sim: npt.NDArray[np.float32],
        pair: tuple[int, int],
        bounds: Sequence[tuple[int, int]],
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """The rows' ``k``-th best similarity so far in the two blocks of ``pair``."""
        (a0, a1), (b0, b1) = bounds[pair[0]], bounds[pair[1]]
        return best_sim[a0:a1, -1].copy(), best_sim[b0:b1, -1].copy()


def _list_edges(
    idx: npt.NDArray[np.uint32], sim: npt.NDArray[np.float32], threshold: float
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32]]:
    """The undirected edges ``>= threshold`` of ``N x k`` lists (input rows), sorted.

    As :func:`simclust.ops.knn_edges`: a mutual pair once (both lists hold the same value).
    """
    n, k = idx.shape
    rows = np.repeat(np.arange(n, dtype=np.uint32), k)
    nbr, sims = idx.ravel(), sim.ravel()
    keep = (nbr != _MISSING) & (sims >= np.float32(threshold))
    rows, nbr, sims = rows[keep], nbr[keep], sims[keep]
    lo, hi = np.minimum(rows, nbr), np.maximum(rows, nbr)
    key, first = np.unique(_pair_keys(lo, hi), return_index=True)
    return (*_key_ends(key), sims[first])


def _pair_keys(lo: npt.NDArray[np.uint32], hi: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint64]:
    """``(lo, hi)`` as one uint64 each, ordered as the pairs."""
    return (lo.astype(np.uint64) << np.uint64(32)) | hi.astype(np.uint64)


def _key_ends(key: npt.NDArray[np.uint64]) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    """The ``(lo, hi)`` ends of :func:`_pair_keys`."""
    return (key >> np.uint64(32)).astype(np.uint32), (key & np.uint64(0xFFFF_FFFF)).astype(
        np.uint32
    )


def _concat_block_rows(
    pairs: Sequence[tuple[int, int]],
    pieces: Sequence[tuple[Any, ...]],
    nb: int,
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32]]:
    """The tasks' edges sorted by ``(src, dst)``.

    Each block row's pieces (sorted, in ascending ``dst`` ranges) are ordered by ``src``
    with a stable sort; block rows in order.
    """
    out: list[tuple[Any, Any, Any]] = []
    for i in range(nb):
        mine = [p for (bi, _), p in zip(pairs, pieces, strict=True) if bi == i]
        s = np.concatenate([p[0] for p in mine])
        d = np.concatenate([p[1] for p in mine])
        w = np.concatenate([p[2] for p in mine])
        order = np.argsort(s, kind="stable")
        out.append((s[order], d[order], w[order]))
    if not out:
        empty = np.zeros(0, np.uint32)
        return empty, empty, np.zeros(0, np.float32)
    return (
        np.concatenate([o[0] for o in out]).astype(np.uint32, copy=False),
        np.concatenate([o[1] for o in out]).astype(np.uint32, copy=False),
        np.concatenate([o[2] for o in out]).astype(np.float32, copy=False),
    )
