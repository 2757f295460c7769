"""The distributed metrics: ``intra``, ``centroid`` and ``inter`` from tasks over clusters.

The driver groups the rows by cluster as on one machine (clusters in ascending id,
each one's members in ascending row order: the canonical order of
:class:`simclust.ops.Labelling`) and cuts that order into **parts** of about a task's
rows (:func:`simclust.distributed.default_block_rows`, whole tiles of 1,024 rows):

* a **whole** part packs consecutive clusters, up to a task's rows (many small clusters
  in one task). Its task runs the native kernels on its rows
  (``_native.Labelling(rows, labels).intra_stats()``, ``_native.centroid_part``): the
  native statistics of those clusters, bit for bit (the same rows in the same order,
  the same tiles, the same sums).
* a cluster larger than a task is a **giant**: it is cut into **pieces** of a task's rows
  (whole tiles, from its first member). Its per-cluster sums come from one task a piece
  (stage ``metric sums``: ``_native.cluster_sums``), added on the driver in piece order.
  Its all-pairs statistics come from one task per pair of pieces ``(i, j)``, ``i <= j``
  (``_native.pair_sums``: the native intra tiles of those pieces, their deviations summed
  around the cluster's shift ``intra_shift`` from the reduced sums): partial aggregates
  ``(n, s1, s2, min, max)``, merged on the driver in task order, so the result is the
  same for any number of workers. Its rows' centroid values come from one task a piece
  (``_native.centroid_part`` with the cluster's totals: the native code forms the
  centroid and measures every row against it); the cluster's mean, min, max and medoid
  are reduced on the driver from those values.

The centroids of all clusters come back to the driver (``K x D``, as the native
labelling keeps them) and the nearest-cluster searches (``nearest_cluster``, the
``inter`` frame, the centroid matrix) run there on them, by the native code
(``_native.nearest_centroids``, ``_native.centroid_matrix``). A giant cluster's values
differ from the native ones only by the order its sums are added in (about ``1e-15``
relative; ``min``/``max``/counts exact up to the centroid's last bit); every other
cluster's are the native ones, bit for bit.

:class:`TaskLabelling` has the methods of the native labelling the built-in metrics call,
so the metrics' frames are built by the same code (:mod:`simclust.ops._geometry`): it is
wrapped as an :class:`simclust.ops.Labelling` and handed to the metric's own ``compute``.

Example:
    >>> import numpy as np
    >>> from simclust import ops
    >>> from simclust.distributed import InProcessExecutor
    >>> from simclust.testing import make_embeddings
    >>> X = ops.normalize(make_embeddings(3000, 8, n_clusters=3, seed=0))
    >>> labels = np.r_[np.zeros(2500, np.int64), np.arange(1, 501)]  # a giant + singletons
    >>> lab = TaskLabelling(InProcessExecutor(), X, labels, task_rows=1024)
    >>> got = ops.intra_stats(ops.Labelling._over(lab, labels, "cosine"))
    >>> want = ops.intra_stats(X, labels)
    >>> bool(np.allclose(got["sim_mean"].to_numpy(), want["sim_mean"].to_numpy(), 0, 1e-9, True))
    True
    >>> lab.tasks
    {'metric sums': 3, 'intra tiles': 7}

"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from simclust import _native
from simclust.base import Metric, MetricContext
from simclust.distributed._executor import Executor, Task
from simclust.distributed._rows import TILE_ROWS, default_block_rows
from simclust.distributed._shuffle import shuffle
from simclust.exceptions import ParameterError, ShapeError
from simclust.progress import any_stage

__all__ = ["DISTRIBUTED_METRICS", "TaskLabelling", "compute_metric"]

DISTRIBUTED_METRICS = ("intra", "centroid", "inter")
"""The built-in metrics the backend computes by tasks; the others run on the driver."""

_U32_MAX = np.uint32(0xFFFF_FFFF)


@dataclass(frozen=True)
class _Part:
    """The rows of one task: gathered positions ``p0..p1``.

    A whole part holds the clusters of slots ``s0..s1`` entirely; a piece (``piece >=
    0``) holds members ``p0 - offset .. p1 - offset`` of the giant cluster of slot
    ``s0`` (``s1 = s0 + 1``).
    """

    p0: int
    p1: int
    s0: int
    s1: int
    piece: int = -1


# --------------------------------------------------------------------------- tasks
# Module-level functions: Ray pickles them by reference.


def _whole_intra(
    rows: npt.NDArray[np.float32], labels: npt.NDArray[np.int64], measure: str, threads: int | None
) -> dict[str, npt.NDArray[Any]]:
    """The native all-pairs statistics of whole clusters."""
    return _native.Labelling(rows, labels, measure=measure, n_threads=threads).intra_stats()


def _piece_pairs(
    a: npt.NDArray[np.float32],
    b: npt.NDArray[np.float32] | None,
    shift: float,
    measure: str,
    threads: int | None,
) -> tuple[int, float, float, float, float]:
    """A giant cluster's partial aggregate over one piece (``b = None``) or two."""
    return _native.pair_sums(a, b, shift, measure=measure, n_threads=threads)


def _intra_task(kind: str, *args: Any) -> Any:
    """Stage ``intra tiles``: a whole part's statistics or a pair of pieces' partials."""
    return _whole_intra(*args) if kind == "whole" else _piece_pairs(*args)


def _piece_sums(
    rows: npt.NDArray[np.float32], measure: str, threads: int | None
) -> tuple[npt.NDArray[np.float64], float]:
    """A piece's sum of rows (as the measure reads them) and of their squared norms."""
    _, _, sums, sq = _native.cluster_sums(
        rows, np.zeros(rows.shape[0], np.int64), measure=measure, n_threads=threads
    )
    return sums[0], float(sq[0])


def _centroid_task(
    rows: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64] | None,
    totals: tuple[npt.NDArray[np.float64], int] | None,
    measure: str,
    threads: int | None,
) -> dict[str, Any]:
    """Centroid statistics of a whole part, or a giant piece's rows against its totals."""
    if totals is None:
        assert labels is not None
        return _native.centroid_part(rows, labels, measure=measure, n_threads=threads)
    sums, size = totals
    return _native.centroid_part(
        rows,
        np.zeros(rows.shape[0], np.int64),
        measure=measure,
        sums=sums.reshape(1, -1),
        sizes=np.array([size], np.uint64),
        n_threads=threads,
    )


# --------------------------------------------------------------------------- the plan


class TaskLabelling:
    """A labelling whose cluster metrics are computed by an executor's tasks.

    It has the methods of ``simclust._native.Labelling`` that the built-in ``intra``,
    ``centroid`` and ``inter`` metrics call (``intra_stats``, ``centroid_stats``,
    ``inter_centroid``, ``centroid_matrix``), returning the same columns; wrap it with
    ``simclust.ops.Labelling._over`` and the :mod:`simclust.ops` functions build their
    frames from it (see the module docs for the plan).

    Args:
        executor: runs the tasks.
        x: the rows as the metrics' distance reads them (N x D float32, C-order).
        labels: one cluster id per row (``-1`` = noise), validated as natively.
        measure: the native kernel: ``"cosine"``, ``"dot"`` or ``"euclidean"``.
        n_threads: threads for the driver's kernels (the nearest-cluster searches).
        search, nprobe, recall_rows: the nearest-cluster searches' settings, as
            :class:`simclust.ops.Labelling`'s.
        task_rows: rows per task, a multiple of 1,024 (default
            :func:`simclust.distributed.default_block_rows` of the clustered rows).
        blocks: ``x``'s rows in the store as consecutive blocks, with their ``(start,
            end)``, when they were read by tasks: the parts are then moved from them by
            tasks; ``None``: the parts are put from here.

    Example:
        >>> from simclust.distributed import InProcessExecutor
        >>> X = np.eye(3, dtype=np.float32)
        >>> lab = TaskLabelling(InProcessExecutor(), X, np.array([0, 0, 1]))
        >>> lab.intra_stats()["n_pairs"].tolist()
        [1, 0]

    """

    def __init__(
        self,
        executor: Executor,
        x: npt.NDArray[np.float32],
        labels: npt.ArrayLike,
        *,
        measure: str = "cosine",
        n_threads: int | None = None,
        search: str = "auto",
        nprobe: int = 8,
        recall_rows: int = 1000,
        task_rows: int | None = None,
        blocks: tuple[Sequence[Any], Sequence[tuple[int, int]]] | None = None,
    ) -> None:
        if task_rows is not None and (task_rows < TILE_ROWS or task_rows % TILE_ROWS):
            raise ParameterError(
                f"task_rows must be a positive multiple of {TILE_ROWS}, got {task_rows!r}"
            )
        lab = np.ascontiguousarray(labels, dtype=np.int64).reshape(-1)
        if lab.shape[0] != x.shape[0]:
            raise ShapeError(
                f"labels has {lab.shape[0]} entries but X has {x.shape[0]} rows: "
                "one label per row is needed"
            )
        if lab.size and lab.min() < -1:
            raise ParameterError("labels must be cluster ids >= 0, or -1 for noise")
        self.executor = executor
        self.x = x
        self.labels = lab
        self.measure = measure
        self.n_threads = n_threads
        self.search = search
        self.nprobe = nprobe
        self.recall_rows = recall_rows
        self.threads = getattr(executor, "task_threads", None)
        clustered = np.flatnonzero(lab >= 0)
        ids, inverse, sizes = np.unique(lab[clustered], return_inverse=True, return_counts=True)
        self.ids: npt.NDArray[np.int64] = ids.astype(np.int64)
        self.sizes: npt.NDArray[np.uint64] = sizes.astype(np.uint64)
        self.order: npt.NDArray[np.int64] = clustered[np.argsort(inverse, kind="stable")]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.task_rows = task_rows or default_block_rows(max(1, int(clustered.size)))
        self.parts = self._plan()
        self.tasks: dict[str, int] = {}
        """Tasks run per stage (``metric sums``, ``intra tiles``, ``centroid rows``)."""
        self._handles: list[Any] | None = None
        self._blocks = blocks
        self._totals: dict[int, tuple[npt.NDArray[np.float64], float]] | None = None
        self._centroids: npt.NDArray[np.float32] | None = None
        self._centroid_cols: dict[str, Any] | None = None

    # ------------------------------------------------------------------ plan
    def _plan(self) -> list[_Part]:
        """Whole parts of consecutive clusters, and the giants' pieces, in slot order."""
        parts: list[_Part] = []
        start = None  # first slot of the whole part being filled
        rows = self.task_rows
        for s in range(self.ids.size):
            size = int(self.sizes[s])
            o0 = int(self.offsets[s])
            if start is not None and (size > rows or o0 + size - int(self.offsets[start]) > rows):
                parts.append(_Part(int(self.offsets[start]), o0, start, s))
                start = None
            if size > rows:  # a giant: pieces of whole tiles from its first member
                for i, p0 in enumerate(range(o0, o0 + size, rows)):
                    parts.append(_Part(p0, min(p0 + rows, o0 + size), s, s + 1, i))
            elif start is None:
                start = s
        if start is not None:
            parts.append(
                _Part(int(self.offsets[start]), int(self.offsets[-1]), start, self.ids.size)
            )
        return parts

    def _rows(self, progress: Any) -> list[Any]:
        """Each part's rows in the executor's store (on first use).

        With ``blocks`` (rows read by tasks: :mod:`simclust.distributed._rows`) moved from
        them by tasks (stage ``metric parts``, :func:`~simclust.distributed._shuffle.shuffle`);
        else put from here, one part at a time.
        """
        if self._handles is None:
            if self._blocks is None:
                self._handles = [
                    self.executor.put(np.ascontiguousarray(self.x[self.order[p.p0 : p.p1]]))
                    for p in self.parts
                ]
            elif self.parts:
                starts = [p.p0 for p in self.parts]
                self._handles = shuffle(self.executor, *self._blocks, self.order, starts,
                                        "metric parts", any_stage(progress))  # fmt: skip
            else:
                self._handles = []
        return self._handles

    def _part_labels(self, p: _Part) -> npt.NDArray[np.int64]:
        return np.ascontiguousarray(self.labels[self.order[p.p0 : p.p1]])

    def _name(self, p: _Part) -> str:
        ids = self.ids
        if p.piece < 0:
            return f"clusters {ids[p.s0]}..{ids[p.s1 - 1]} (gathered rows {p.p0}..{p.p1 - 1})"
        o = int(self.offsets[p.s0])
        return f"cluster {ids[p.s0]} piece {p.piece} (members {p.p0 - o}..{p.p1 - o - 1})"

    def _giants(self) -> dict[int, list[int]]:
        """Slot of each giant cluster -> the indices of its pieces in :attr:`parts`."""
        out: dict[int, list[int]] = {}
        for i, p in enumerate(self.parts):
            if p.piece >= 0:
                out.setdefault(p.s0, []).append(i)
        return out

    def _run(self, stage: str, fn: Any, tasks: Sequence[Task], progress: Any) -> list[Any]:
        self.tasks[stage] = len(tasks)
        return self.executor.map(stage, fn, tasks, progress=any_stage(progress))

    def _giant_totals(self, progress: Any) -> dict[int, tuple[npt.NDArray[np.float64], float]]:
        """Stage ``metric sums``: each giant's sums, its pieces' added in piece order."""
        if self._totals is None:
            giants, handles = self._giants(), self._rows(progress)
            index = [i for pieces in giants.values() for i in pieces]
            tasks = [
                Task(self._name(self.parts[i]), (handles[i], self.measure, self.threads))
                for i in index
            ]
            results = dict(
                zip(index, self._run("metric sums", _piece_sums, tasks, progress), strict=True)
            )
            totals = {}
            for s, pieces in giants.items():
                total, sq = results[pieces[0]][0].copy(), results[pieces[0]][1]
                for i in pieces[1:]:
                    total += results[i][0]
                    sq += results[i][1]
                totals[s] = (total, sq)
            self._totals = totals
        return self._totals

    def _shift(self, slot: int) -> float:
        """The giant's shift, by the native rule (``intra_shift``) from its reduced sums."""
        assert self._totals is not None
        total, sq = self._totals[slot]
        return _native.intra_shift(total, sq, int(self.sizes[slot]), measure=self.measure)

    # ------------------------------------------------------------------ native API
    @property
    def n_rows(self) -> int:
        """The number of input rows (noise included)."""
        return int(self.labels.size)

    @property
    def cluster_ids(self) -> npt.NDArray[np.int64]:
        """The cluster ids, ascending (noise excluded)."""
        return self.ids.copy()

    def intra_stats(self, *, progress: Any = None) -> dict[str, npt.NDArray[Any]]:
        """Exact all-pairs statistics per cluster (``_native.Labelling.intra_stats``' columns).

        Stage ``intra tiles``: a task per whole part and per pair of a giant's pieces
        (after stage ``metric sums`` when there is a giant).
        """
        k = self.ids.size
        sizes = self.sizes
        cols: dict[str, npt.NDArray[Any]] = {
            "cluster": self.ids.copy(),
            "size": sizes.copy(),
            "n_pairs": sizes * (sizes - np.uint64(1)) // np.uint64(2) if k else sizes.copy(),
            **{c: np.full(k, np.nan) for c in ("mean", "min", "max", "std")},
        }
        giants = self._giants()
        if giants:
            self._giant_totals(progress)
        handles = self._rows(progress)
        tasks: list[Task] = []
        owner: list[int] = []  # per task: -1 (a whole part) or the giant's slot
        for i, p in enumerate(self.parts):
            if p.piece < 0:
                whole = ("whole", handles[i], self._part_labels(p), self.measure, self.threads)
                tasks.append(Task(self._name(p), whole))
                owner.append(-1)
        for s, pieces in giants.items():
            shift = self._shift(s)
            for a, i in enumerate(pieces):
                for j in pieces[a:]:
                    pi, pj = self.parts[i], self.parts[j]
                    name = f"{self._name(pi)}" + ("" if i == j else f" x piece {pj.piece}")
                    b = None if i == j else handles[j]
                    pair = ("piece", handles[i], b, shift, self.measure, self.threads)
                    tasks.append(Task(name, pair))
                    owner.append(s)
        results = self._run("intra tiles", _intra_task, tasks, progress)
        partials: dict[int, list[tuple[int, float, float, float, float]]] = {}
        for s, res in zip(owner, results, strict=True):
            if s < 0:
                at = np.searchsorted(self.ids, res["cluster"])
                for c in ("mean", "min", "max", "std"):
                    cols[c][at] = res[c]
            else:
                partials.setdefault(s, []).append(res)
        for s, parts in partials.items():  # merged in task order (PairStats::from_sums)
            _, mean, std, mn, mx = _native.pair_stats(parts, self._shift(s))
            cols["mean"][s], cols["std"][s], cols["min"][s], cols["max"][s] = mean, std, mn, mx
        return cols

    def _centroid_stats(self, progress: Any) -> dict[str, Any]:
        """Stage ``centroid rows``: the centroids and the per-row and per-cluster values."""
        if self._centroid_cols is not None:
            return self._centroid_cols
        k, d = self.ids.size, int(self.x.shape[1])
        giants = self._giants()
        totals = self._giant_totals(progress) if giants else {}
        handles = self._rows(progress)
        tasks = []
        for i, p in enumerate(self.parts):
            args: tuple[Any, ...]
            if p.piece < 0:
                args = (handles[i], self._part_labels(p), None, self.measure, self.threads)
            else:
                tot = (totals[p.s0][0], int(self.sizes[p.s0]))
                args = (handles[i], None, tot, self.measure, self.threads)
            tasks.append(Task(self._name(p), args))
        results = self._run("centroid rows", _centroid_task, tasks, progress)
        cols: dict[str, Any] = {
            "cluster": self.ids.copy(),
            "size": self.sizes.copy(),
            "mean": np.full(k, np.nan),
            "min": np.full(k, np.nan, np.float32),
            "max": np.full(k, np.nan, np.float32),
            "medoid": np.full(k, _U32_MAX, np.uint32),
        }
        row_value = np.full(self.labels.size, np.nan, np.float32)
        centroids = np.zeros((k, d), np.float32)
        for p, res in zip(self.parts, results, strict=True):
            row_value[self.order[p.p0 : p.p1]] = res["row_value"]
            if p.piece < 0:
                at = np.arange(p.s0, p.s1)
                for c in ("mean", "min", "max"):
                    cols[c][at] = res[c]
                med = res["medoid"]
                valid = med != _U32_MAX
                local = np.where(valid, med, 0).astype(np.int64)
                cols["medoid"][at] = np.where(valid, self.order[p.p0 + local], _U32_MAX)
                centroids[at] = res["centroids"]
            elif p.piece == 0:
                centroids[p.s0] = res["centroids"][0]
        for s in giants:  # the giants' statistics from their rows' values
            members = self.order[self.offsets[s] : self.offsets[s + 1]]
            v = row_value[members]
            if not np.isfinite(centroids[s]).all():
                continue  # undefined centroid: no statistic, no medoid
            cols["mean"][s] = float(np.sum(v, dtype=np.float64)) / v.size
            cols["min"][s], cols["max"][s] = v.min(), v.max()
            best = np.argmin(v) if self.measure == "euclidean" else np.argmax(v)
            cols["medoid"][s] = members[best]
        self._centroids = centroids
        cols["row_value"] = row_value
        self._centroid_cols = cols
        return cols

    def centroid_stats(
        self, *, with_centroids: bool = True, progress: Any = None
    ) -> dict[str, Any]:
        """Centroid statistics and each cluster's nearest cluster (the native columns)."""
        cols = dict(self._centroid_stats(progress))
        assert self._centroids is not None
        nn = self._nearest(self._centroids, 1, progress)
        k = self.ids.size
        nearest = np.full(k, -1, np.int64)
        value = np.full(k, np.nan, np.float32)
        nearest[nn["from"]] = self.ids[nn["to"]]
        value[nn["from"]] = nn["value"]
        cols["nearest_cluster"], cols["nearest_value"] = nearest, value
        d = int(self.x.shape[1])
        cols["centroids"] = (
            self._centroids.copy() if with_centroids else np.zeros((0, d), np.float32)
        )
        cols["search"] = nn["search"]
        return cols

    def _nearest(
        self, centroids: npt.NDArray[np.float32], m: int | None, progress: Any
    ) -> dict[str, Any]:
        return _native.nearest_centroids(
            np.ascontiguousarray(centroids),
            m,
            measure=self.measure,
            search=self.search,
            nprobe=self.nprobe,
            recall_rows=self.recall_rows,
            n_threads=self.n_threads,
            progress=progress,
        )

    def _slots(self, clusters: npt.NDArray[np.int64] | None) -> npt.NDArray[np.int64]:
        if clusters is None:
            return np.arange(self.ids.size)
        wanted = np.unique(np.asarray(clusters, dtype=np.int64))
        at = np.searchsorted(self.ids, wanted)
        bad = (at >= self.ids.size) | (self.ids[np.minimum(at, self.ids.size - 1)] != wanted)
        if self.ids.size == 0 or bad.any():
            missing = wanted[bad][0] if self.ids.size else wanted[0]
            raise ParameterError(f"cluster {missing} does not exist: no row has that label")
        return at

    def inter_centroid(
        self,
        clusters: npt.NDArray[np.int64] | None = None,
        top_m: int | None = None,
        *,
        progress: Any = None,
    ) -> dict[str, Any]:
        """Each cluster's nearest clusters by centroid (the native long columns)."""
        self._centroid_stats(progress)
        assert self._centroids is not None
        slots = self._slots(clusters)
        nn = self._nearest(self._centroids[slots], top_m, progress)
        ids = self.ids[slots]
        return {
            "cluster_a": ids[nn["from"]],
            "cluster_b": ids[nn["to"]],
            "value": nn["value"],
            "search": nn["search"],
        }

    def centroid_matrix(
        self, clusters: npt.NDArray[np.int64] | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """``(cluster ids, matrix of the measure between their centroids)``."""
        self._centroid_stats(None)
        assert self._centroids is not None
        slots = self._slots(clusters)
        mat = _native.centroid_matrix(
            np.ascontiguousarray(self._centroids[slots]),
            measure=self.measure,
            n_threads=self.n_threads,
        )
        return self.ids[slots], mat


# --------------------------------------------------------------------------- the hook


def compute_metric(
    executor: Executor,
    metric: Metric,
    ctx: MetricContext,
    *,
    task_rows: int | None = None,
    blocks: tuple[Sequence[Any], Sequence[tuple[int, int]]] | None = None,
) -> dict[str, pl.DataFrame | np.ndarray] | None:
    """``metric``'s outputs computed by tasks, or ``None`` when this backend does not.

    The built-in ``intra``, ``centroid`` and ``inter`` (exactly those classes) are
    computed by the metric's own ``compute`` over a :class:`TaskLabelling` (one per run,
    kept in ``ctx.cache``: the rows are grouped and put once for all three); their
    nearest-cluster searches are recorded in ``ctx.cache["backend searches"]``. Anything
    else (``edge``, ``silhouette``, third-party metrics) is left to the driver.
    """
    from simclust import ops
    from simclust.default_plugins.metrics import Centroid, Inter, Intra

    if type(metric) not in (Intra, Centroid, Inter):
        return None
    lab = ctx.cache.get("task labelling")
    if lab is None:
        method = "exact" if ctx.search.method == "certified" else ctx.search.method
        nprobe = {} if ctx.search.nprobe is None else {"nprobe": ctx.search.nprobe}
        tl = TaskLabelling(
            executor,
            ctx.X,
            ctx.labels,
            measure=ctx.distance.kernel,
            n_threads=ctx.n_threads,
            search=method,
            recall_rows=ctx.search.recall_rows,
            task_rows=task_rows,
            blocks=blocks,
            **nprobe,
        )
        lab = ctx.cache["task labelling"] = ops.Labelling._over(tl, ctx.labels, ctx.distance)
    sub = dataclasses.replace(ctx, cache={"labelling": lab})
    out = metric.compute(sub)
    ctx.cache.setdefault("backend searches", {}).update(lab.searches)
    return dict(out)
