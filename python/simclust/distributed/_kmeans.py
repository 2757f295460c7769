"""Distributed spherical k-means: Lloyd steps as tasks over row blocks, the native result.

The rows are cut into blocks of whole spans (multiples of
:data:`KMEANS_BLOCK_ALIGN` = 4,096 rows), each put once in the executor's object store.

* **Scales and seeding** (stage ``kmeans scales``, one task per block): each block's
  column maxima of its unit rows (merged by maximum: the fixed-point scales of the exact
  cluster sums), whether its rows are unit already (the pipeline's are; otherwise the
  driver normalises the rows once and puts them again: the steps read unit rows as they
  are, which ``normalize`` keeps bit for bit) and the rows the native seeding reads (the
  k-means++ sample of ``32 k`` rows, at least 8,192, or the ``k`` random rows: the same
  seeded draw). The driver seeds from those rows with the same random stream: the native
  initial centroids.
* **Lloyd steps** (stage ``kmeans step <i>``, one task per block): a task applies the
  previous step's re-seeds and the centroids' drifts to its rows' bounds, assigns its
  rows (the native assignment step with its bounds, span by span) and returns its
  state, the change of its exact fixed-point partial sums and counts (its rows that
  moved, out of the old cluster and into the new: the native incremental update), its
  squared distances summed per span and how many labels changed. The driver adds the
  changes to its running sums (64-bit integers: the same sums in any order, for any
  blocks), re-seeds empty clusters from
  the blocks' farthest rows (stage ``kmeans reseed``; the native walk, asking for more
  rows while a block's list was cut too early) and forms the new centroids and their
  drifts with the native code. The objective is the span sums added in row order, as
  natively; the stopping rule (no label changed, ``tol``, ``max_iter``) and the final
  assignment are the native ones.

So the labels, centroids, objective and iteration count are the native k-means',
bit for bit, for any number of blocks or workers (tested). The per-row state (labels,
bounds: 88 bytes a row) stays in the object store between steps (a step task's second
return, :meth:`~simclust.distributed.Executor.map_keep`, read by the block's next task);
the driver fetches the labels once, at the end.

Example:
    >>> from simclust import ops
    >>> from simclust.distributed import InProcessExecutor
    >>> from simclust.testing import make_embeddings
    >>> X = make_embeddings(9000, 16, n_clusters=12, seed=1)
    >>> out = distributed_kmeans(InProcessExecutor(), X, 12, random_state=3, block_rows=4096)
    >>> labels, centroids, objective, n_iter = ops.kmeans(X, 12, random_state=3)
    >>> bool((out.labels == labels).all() and (out.centroids == centroids).all())
    True

"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from simclust import _native
from simclust.distributed._executor import Executor, Task
from simclust.exceptions import ParameterError
from simclust.ops._coerce import _as_count, _as_matrix, _as_seed
from simclust.ops._kmeans import _KMeansOutput, _warn_empty
from simclust.progress import StageProgress

__all__ = ["KMEANS_BLOCK_ALIGN", "distributed_kmeans", "kmeans_block_rows"]

KMEANS_BLOCK_ALIGN: int = _native.KMEANS_BLOCK_ALIGN
"""Blocks start on multiples of this many rows (4,096): the span of rows the native
assignment step tiles, bounds and sums together, so a block computes the native bits."""

MAX_KMEANS_BLOCK_ROWS = 4 * KMEANS_BLOCK_ALIGN
"""Largest default block: 16,384 rows (as the graph's blocks)."""

MIN_KMEANS_BLOCKS = 8
"""Blocks a run is cut into at least, while blocks of one span allow."""

_State = tuple[Any, ...]


def kmeans_block_rows(n: int) -> int:
    """Rows per k-means block for ``n`` rows: whole spans, at least 8 blocks if possible.

    Example:
        >>> kmeans_block_rows(3000), kmeans_block_rows(50_000), kmeans_block_rows(10**6)
        (4096, 8192, 16384)

    """
    spans = max(1, -(-n // KMEANS_BLOCK_ALIGN))
    per_block = max(
        1, min(MAX_KMEANS_BLOCK_ROWS // KMEANS_BLOCK_ALIGN, -(-spans // MIN_KMEANS_BLOCKS))
    )
    return per_block * KMEANS_BLOCK_ALIGN


# --------------------------------------------------------------------------- tasks
# Module-level functions: Ray pickles them by reference.


def _scales_task(
    block: npt.NDArray[np.float32], local: npt.NDArray[np.int64], threads: int | None
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], bool]:
    """The block's unit rows' column maxima, its rows ``local``, and whether it is unit."""
    colmax = _native.kmeans_block_colmax(block, n_threads=threads)
    unit = _native.rows_are_unit(block, n_threads=threads)
    return colmax, np.ascontiguousarray(block[local]), unit


def _step_task(
    block: npt.NDArray[np.float32],
    state: _State | None,
    shared: tuple[Any, ...],
    n_total: int,
    reseeds: tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]] | None,
    full: bool,
    threads: int | None,
) -> tuple[tuple[Any, ...], _State]:
    """One Lloyd step of a block (``state=None``: its first): ``(summary, new state)``.

    ``shared``: the centroids, the scales' column maxima and the drifts (first: ``None``).
    The summary is what the driver merges (labels changed, span sums, the change of the
    partial sums); the state (labels, bounds) stays in the object store for the next step.
    """
    centroids, colmax, drift = shared
    st = _native.kmeans_block_state(int(block.shape[0])) if state is None else state
    rows, labels = reseeds if reseeds is not None else (None, None)
    new_state, *summary = _native.kmeans_block_step(
        block,
        st,
        centroids,
        colmax,
        n_total,
        drift=drift,
        reseed_rows=rows,
        reseed_labels=labels,
        full=full,
        rows_are_unit=True,  # the driver put unit rows
        n_threads=threads,
    )
    return tuple(summary), new_state


def _farthest_task(
    block: npt.NDArray[np.float32], state: _State, m: int, threads: int | None
) -> tuple[Any, ...]:
    """The block's ``m`` rows farthest from their centroids (for re-seeding)."""
    return tuple(
        _native.kmeans_block_farthest(block, state[0], state[1], state[2], m, n_threads=threads)
    )


# --------------------------------------------------------------------------- the plan


class _Plan:
    """The blocks of one k-means fit and the executor running its stages."""

    def __init__(
        self,
        executor: Executor,
        x: npt.NDArray[np.float32],
        block_rows: int,
        progress: StageProgress | None,
        total_tasks: int,
        blocks: Sequence[Any] | None = None,
    ) -> None:
        self.executor = executor
        self.n = int(x.shape[0])
        self.bounds = [(s, min(s + block_rows, self.n)) for s in range(0, self.n, block_rows)]
        self.blocks: list[Any] = []
        if blocks is None:
            self.put(x)
        elif len(blocks) != len(self.bounds):
            raise ParameterError(
                f"blocks: {len(self.bounds)} blocks of {block_rows} rows expected, "
                f"got {len(blocks)}"
            )
        else:
            self.blocks = list(blocks)
        self.threads: int | None = getattr(executor, "task_threads", None)
        self.progress = progress
        self.done = 0
        self.total = total_tasks

    def put(self, x: npt.NDArray[np.float32]) -> None:
        """Put the blocks of ``x`` (replacing any put before)."""
        self.blocks = [self.executor.put(np.ascontiguousarray(x[s:e])) for s, e in self.bounds]

    def name(self, b: int) -> str:
        s, e = self.bounds[b]
        return f"block {b}: rows {s}..{e - 1}"

    def run(self, stage: str, fn: Any, args: list[tuple[Any, ...]]) -> list[Any]:
        """``fn`` over the blocks (one task each, ``args[b]`` after the block)."""
        return self.executor.map(stage, fn, self._tasks(args), progress=self._progress())

    def run_keep(self, stage: str, fn: Any, args: list[tuple[Any, ...]]) -> list[tuple[Any, Any]]:
        """:meth:`run` for an ``fn`` returning ``(result, kept)``.

        ``(result, handle)`` per block, the kept part left in the object store
        (:meth:`Executor.map_keep`).
        """
        return self.executor.map_keep(stage, fn, self._tasks(args), progress=self._progress())

    def _tasks(self, args: list[tuple[Any, ...]]) -> list[Task]:
        return [
            Task(self.name(b), (h, *a))
            for b, (h, a) in enumerate(zip(self.blocks, args, strict=True))
        ]

    def _progress(self) -> StageProgress:
        base = self.done

        def cb(_stage: str, done: int, _total: int) -> None:
            self.done = base + done
            self.total = max(self.total, self.done)
            if self.progress is not None:
                self.progress("cluster", self.done, self.total)

        return cb


def _objective_sum(steps: list[Any]) -> float:
    """The span sums of squared distances added in row order (the native sum)."""
    total = 0.0
    for step in steps:
        for v in step[1].tolist():
            total += v
    return total


def _reseed(
    plan: _Plan, stage: str, states: list[_State], counts: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint32], npt.NDArray[np.int64], Any, Any]:
    """The native re-seeding of the empty clusters from the blocks' farthest rows.

    Returns the re-seeded rows (global), their new clusters, the clusters the blocks
    counted them in, their clusters before the step and their unit rows.
    """
    n_empty = int((counts == 0).sum())
    m = max(16, 4 * n_empty)
    while True:
        far = plan.run(stage, _farthest_task, [(st, m, plan.threads) for st in states])
        rows = np.concatenate(
            [
                f[0].astype(np.uint64) + np.uint64(s)
                for f, (s, _) in zip(far, plan.bounds, strict=True)
            ]
        )
        d2 = np.concatenate([f[1] for f in far])
        labels = np.concatenate([f[2] for f in far])
        prev = np.concatenate([f[3] for f in far])
        unit = np.concatenate([f[4] for f in far])
        cut = [f for f in far if f[0].size == m]  # blocks that may hold more rows
        keep = np.ones(rows.size, dtype=bool)
        if cut:  # the candidates up to the first cut block's last one are all there
            last = min(
                (-float(f[1][-1]), int(f[0][-1]) + s)
                for f, (s, _) in zip(far, plan.bounds, strict=True)
                if f[0].size == m
            )
            keys_d2, keys_row = -d2.astype(np.float64), rows.astype(np.int64)
            keep = (keys_d2 < last[0]) | ((keys_d2 == last[0]) & (keys_row <= last[1]))
        pos, new, left = _native.kmeans_reseed(
            np.ascontiguousarray(d2[keep]),
            np.ascontiguousarray(rows[keep]),
            np.ascontiguousarray(labels[keep]),
            counts,
        )
        if left == 0 or not cut:
            sel = np.flatnonzero(keep)[pos]
            return rows[sel].astype(np.int64), new, labels[sel], prev[sel], unit[sel]
        m *= 4


def distributed_kmeans(
    executor: Executor,
    x: npt.ArrayLike,
    n_clusters: int,
    *,
    init: str | npt.ArrayLike = "k-means++",
    n_init: int = 1,
    max_iter: int = 100,
    tol: float = 1e-6,
    random_state: int = 0,
    block_rows: int | None = None,
    progress: StageProgress | None = None,
    blocks: Sequence[Any] | None = None,
) -> _KMeansOutput:
    """Spherical k-means of the rows of ``x`` by ``executor``'s tasks: the native result.

    The same labels, centroids, objective and iterations as
    :func:`simclust.ops.kmeans` with ``metric="cosine"`` and the same parameters, bit
    for bit, for any ``block_rows`` (see the module docs for the plan).

    Args:
        executor: runs the tasks (:class:`simclust.distributed.RayExecutor`,
            :class:`simclust.distributed.InProcessExecutor`).
        x: N x D data.
        n_clusters: clusters, ``1 <= n_clusters <= N``.
        init: ``"k-means++"``, ``"random"`` or ``(n_clusters, D)`` initial centroids.
        n_init: seedings; the lowest objective wins.
        max_iter: Lloyd iterations per seeding at most.
        tol: relative decrease of the objective at which iterations stop.
        random_state: seed, in ``[0, 2**64 - 1]``.
        block_rows: rows per block, a multiple of :data:`KMEANS_BLOCK_ALIGN` (default
            :func:`kmeans_block_rows`).
        blocks: ``x``'s blocks of ``block_rows`` rows already in the executor's store
            (cut from shards by tasks: :mod:`simclust.distributed._rows`); ``None``: put
            from here.
        progress: ``progress("cluster", tasks done, tasks total)``.

    Returns:
        What :func:`simclust.ops._kmeans._kmeans_fit` returns.

    Raises:
        ParameterError: bad parameters (as :func:`simclust.ops.kmeans`) or ``block_rows``.
        DistributedError: a task failed for good, naming the stage and the block.

    Example:
        >>> from simclust.distributed import InProcessExecutor
        >>> X = np.eye(3, dtype=np.float32).repeat(3, axis=0) + 0.01
        >>> out = distributed_kmeans(InProcessExecutor(), X, 3)
        >>> out.labels.tolist(), out.converged
        ([1, 1, 1, 0, 0, 0, 2, 2, 2], True)

    """
    xm = _as_matrix(x, "X")
    n, d = int(xm.shape[0]), int(xm.shape[1])
    k = _as_count(n_clusters, "n_clusters")
    runs = _as_count(n_init, "n_init")
    iters = _as_count(max_iter, "max_iter")
    seed = _as_seed(random_state)
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not (0 <= tol < float("inf")):
        raise ParameterError(f"tol must be a finite number >= 0, got {tol!r}")
    if k > n:
        raise ParameterError(
            f"n_clusters must satisfy 1 <= n_clusters <= N = {n} (the rows of X), got {k}"
        )
    rows = kmeans_block_rows(n) if block_rows is None else block_rows
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1 or rows % KMEANS_BLOCK_ALIGN:
        raise ParameterError(
            f"block_rows must be a positive multiple of {KMEANS_BLOCK_ALIGN}, got {block_rows!r}"
        )
    explicit: npt.NDArray[np.float32] | None = None
    init_name = "k-means++"
    if isinstance(init, str):
        init_name = init
        if init not in ("k-means++", "random"):
            raise ParameterError(
                'init must be "k-means++", "random" or a (n_clusters, D) array of centroids, '
                f"got {init!r}"
            )
    else:
        explicit = _as_matrix(init, "init")
        if explicit.shape != (k, d):
            from simclust.exceptions import ShapeError

            raise ShapeError(
                f"init must have shape (n_clusters, D) = ({k}, {d}), got {explicit.shape}"
            )
        explicit = _native.normalize(explicit)
        if runs > 1:
            warnings.warn(
                f"explicit initial centroids were given: running one initialisation "
                f"instead of n_init={runs}",
                RuntimeWarning,
                stacklevel=2,
            )
        runs = 1
    n_blocks = -(-n // rows)
    plan = _Plan(executor, xm, rows, progress, n_blocks * (1 + runs * (iters + 1)), blocks)

    # scales, and the rows every seeding reads
    picks = (
        []
        if explicit is not None
        else [
            _native.kmeans_init_rows(n, k, init=init_name, random_state=seed, run=r)
            for r in range(runs)
        ]
    )
    wanted = np.unique(np.concatenate(picks)) if picks else np.zeros(0, np.int64)
    local = [wanted[(wanted >= s) & (wanted < e)] - s for s, e in plan.bounds]
    scales = plan.run("kmeans scales", _scales_task, [(loc, plan.threads) for loc in local])
    colmax = np.maximum.reduce([c for c, _, _ in scales])
    gathered = np.concatenate([r for _, r, _ in scales]) if picks else None
    if not all(u for _, _, u in scales):
        # the steps read unit rows as they are (the pipeline's rows are unit already):
        # normalised once here, bit for bit what each step would make of them
        plan.put(_native.normalize(xm))

    best: dict[str, Any] | None = None
    for r in range(runs):
        if explicit is not None:
            c0 = explicit
        else:
            assert gathered is not None
            at = np.searchsorted(wanted, picks[r])
            c0 = _native.kmeans_init_from_rows(
                np.ascontiguousarray(gathered[at]),
                n,
                k,
                init=init_name,
                random_state=seed,
                run=r,
                n_threads=None,  # the driver seeds with all its threads (the workers wait)
            )
        fit = _lloyd(plan, c0, colmax, k, iters, float(tol), f"run {r} " if runs > 1 else "")
        if best is None or fit["sum_d2"] < best["sum_d2"]:
            best = fit
    assert best is not None
    if progress is not None:
        progress("cluster", plan.done, plan.done)
    labels = best["labels"]
    out = _KMeansOutput(
        labels,
        best["centroids"],
        0.5 * best["sum_d2"],
        best["n_iter"],
        best["converged"],
        best["n_reseeded"],
        int((np.bincount(labels, minlength=k) == 0).sum()),
    )
    _warn_empty(out, k, "cosine", stacklevel=3)
    return out


def _lloyd(
    plan: _Plan,
    c0: npt.NDArray[np.float32],
    colmax: npt.NDArray[np.float32],
    k: int,
    max_iter: int,
    tol: float,
    what: str,
) -> dict[str, Any]:
    """One seeded Lloyd run over the blocks: the native ``lloyd``, step for step."""
    n = plan.n
    c = c0
    states: list[_State | None] = [None] * len(plan.bounds)
    drift: npt.NDArray[np.float32] | None = None
    reseeds: list[Any] = [None] * len(plan.bounds)
    prev_obj = float("inf")
    n_iter, converged, n_reseeded = 0, False, 0
    final_fix: tuple[npt.NDArray[np.int64], npt.NDArray[np.uint32]] | None = None
    # the running exact sums and counts (the native ones: the blocks send their changes)
    sums = np.zeros((k, c0.shape[1]), np.int64)
    counts = np.zeros(k, np.int64)

    def step(stage: str, full: bool) -> list[Any]:
        shared = plan.executor.put((c, colmax, drift))  # once a step, read by every block
        args = [
            (states[b], shared, n, reseeds[b], full, plan.threads) for b in range(len(plan.bounds))
        ]
        out = plan.run_keep(stage, _step_task, args)
        for b, (_, handle) in enumerate(out):
            states[b] = handle  # the block's state stays in the object store
        return [summary for summary, _ in out]

    for it in range(1, max_iter + 1):
        out = step(f"kmeans {what}step {it}", it == 1)
        obj = _objective_sum(out)
        n_iter = it
        for o in out:  # integer additions (wrapping, as natively): any order
            touched = o[2].astype(np.intp)
            counts[touched] += o[3]
            sums[touched] += o[4]
        moves = sum(int(o[0]) for o in out)
        reseeds = [None] * len(plan.bounds)
        moved = (np.zeros(0, np.int64), np.zeros(0, np.uint32), np.zeros(0, np.int64))
        unit = np.zeros((0, c.shape[1]), np.float32)
        if (counts == 0).any():
            live = [s for s in states if s is not None]
            rows, new, old, before, unit = _reseed(plan, f"kmeans {what}reseed {it}", live, counts)
            n_reseeded += int(rows.size)
            moves += int(((new != before) & (old == before)).sum()) - int(
                ((new == before) & (old != before)).sum()
            )
            moved = (rows, new, old)
            for b, (s, e) in enumerate(plan.bounds):
                sel = (rows >= s) & (rows < e)
                if sel.any():
                    reseeds[b] = ((rows[sel] - s).astype(np.uint32), new[sel].astype(np.uint32))
        if moves == 0:
            converged = True
            final_fix = (moved[0], moved[1])
            break
        c, drift, sums, counts = _native.kmeans_update(
            sums,
            counts,
            c,
            colmax,
            n,
            np.ascontiguousarray(unit, dtype=np.float32),
            moved[2].astype(np.int64),
            moved[1].astype(np.uint32),
            n_threads=plan.threads,
        )
        if tol > 0 and prev_obj != float("inf") and prev_obj - obj <= tol * prev_obj:
            break
        prev_obj = obj
    if not converged:
        out = step(f"kmeans {what}final assignment", False)
        obj = _objective_sum(out)
    labels = np.concatenate([plan.executor.get(s)[0] for s in states if s is not None])
    if final_fix is not None and final_fix[0].size:
        labels[final_fix[0]] = final_fix[1]
    return {
        "labels": labels,
        "centroids": np.asarray(c, dtype=np.float32),
        "sum_d2": obj,
        "n_iter": n_iter,
        "converged": converged,
        "n_reseeded": n_reseeded,
    }
