"""The shuffle: rows regrouped from their blocks into new objects by tasks, not the driver.

A plan that needs the rows in another grouping (the ``ivf`` search's lists, the metrics'
clusters) names them as ``order`` (input rows, one destination after the other) and the
destinations' bounds in it; :func:`shuffle` moves them through the executor's object
store in two stages of tasks:

* ``<stage> (scatter)``: one task a row block cuts its rows into one piece per
  destination it feeds (each piece a separate task return: it stays in the store, on the
  block's node, and is fetched only by its destination's task);
* ``<stage> (gather)``: one task a destination puts its pieces in place.

The driver sends index arrays only (8 B a row); every row is copied twice (into its
piece, into its destination) and crosses the network at most once. Each destination
holds exactly ``x[order[a:b]]``, bit for bit. What the driver gets are the
destinations' handles, to pass to the plan's tasks.

Example:
    >>> import numpy as np
    >>> from simclust.distributed import InProcessExecutor
    >>> x = np.arange(12, dtype=np.float32).reshape(6, 2)
    >>> ex = InProcessExecutor()
    >>> blocks = [x[0:4], x[4:6]]
    >>> out = shuffle(ex, blocks, [(0, 4), (4, 6)], np.array([5, 0, 3, 1]), [0, 1], "lists")
    >>> [ex.get(h).tolist() for h in out]
    [[[10.0, 11.0]], [[0.0, 1.0], [6.0, 7.0], [2.0, 3.0]]]

"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from simclust import _native
from simclust.distributed._executor import Executor, Task
from simclust.exceptions import ParameterError
from simclust.progress import StageProgress

__all__ = ["shuffle"]


def _scatter(
    block: npt.NDArray[np.float32], rows: npt.NDArray[np.int64], cuts: npt.NDArray[np.int64]
) -> tuple[None, tuple[npt.NDArray[np.float32], ...]]:
    """A block's pieces, as float32: ``block[rows[cuts[i]:cuts[i + 1]]]`` for destination ``i``."""
    return None, tuple(
        np.ascontiguousarray(block[rows[a:b]], dtype=np.float32)
        for a, b in itertools.pairwise(cuts.tolist())
    )


def _gather(
    n_rows: int, unit: bool, at: npt.NDArray[np.int64], cuts: npt.NDArray[np.int64], *pieces: Any
) -> tuple[None, npt.NDArray[np.float32]]:
    """A destination: piece ``i`` goes to its rows ``at[cuts[i]:cuts[i + 1]]``.

    As float32, then scaled to unit rows if ``unit``.
    """
    out = np.empty((n_rows, pieces[0].shape[1]), dtype=np.float32)
    for i, piece in enumerate(pieces):
        out[at[cuts[i] : cuts[i + 1]]] = piece
    return None, _native.normalize(out) if unit else out


def shuffle(
    executor: Executor,
    blocks: Sequence[Any],
    bounds: Sequence[tuple[int, int]],
    order: npt.ArrayLike,
    starts: Sequence[int] | npt.NDArray[np.int64],
    stage: str,
    progress: StageProgress | None = None,
    *,
    unit: bool = False,
) -> list[Any]:
    """Handles of the destinations ``x[order[starts[i]:starts[i + 1]]]`` (the last to the end).

    As float32; with ``unit``, each row then scaled to unit norm
    (:func:`simclust.ops.normalize`'s bits, row by row: the input rows must be valid).

    Args:
        executor: runs the tasks and holds the objects.
        blocks: the rows ``x`` as consecutive blocks in the executor's store.
        bounds: each block's input rows ``(start, end)``.
        order: input rows (``int``), the destinations' rows one after the other.
        starts: each destination's first index into ``order``, increasing from 0; every
            destination must have rows.
        stage: the plan's stage name (tasks report under ``"<stage> (scatter)"`` and
            ``"<stage> (gather)"``).
        progress: ``progress(stage, done, total)``.
        unit: scale the destinations' rows to unit norm.

    Raises:
        ParameterError: rows outside the blocks, or empty or unordered destinations.

    """
    rows = np.asarray(order, dtype=np.int64).reshape(-1)
    first = np.asarray(starts, dtype=np.int64).reshape(-1)
    ends = np.append(first[1:], rows.size)
    if first.size == 0 or first[0] != 0 or bool((ends <= first).any()):
        raise ParameterError("shuffle: destinations must start at 0 and each hold rows")
    block_starts = np.asarray([s for s, _ in bounds], dtype=np.int64)
    n = int(bounds[-1][1]) if bounds else 0
    if rows.size and (int(rows.min()) < 0 or int(rows.max()) >= n):
        raise ParameterError(f"shuffle: rows must be in 0..{n - 1}")
    block = np.searchsorted(block_starts, rows, side="right") - 1
    dest = np.searchsorted(first, np.arange(rows.size), side="right") - 1
    by = np.argsort(block, kind="stable")  # by block, then by index into order (and dest)
    b_of, d_of = block[by], dest[by]
    b_cut = np.searchsorted(b_of, np.arange(len(bounds) + 1))
    scatter: list[Task] = []
    parts: list[int] = []
    # each piece: (destination, scatter task, its return, its slice of `by`)
    pieces: list[tuple[int, int, int, int, int]] = []
    for b, (s, e) in enumerate(bounds):
        lo, hi = int(b_cut[b]), int(b_cut[b + 1])
        if lo == hi:  # no destination needs this block
            continue
        d = d_of[lo:hi]
        cuts = np.concatenate([[0], np.flatnonzero(np.diff(d)) + 1, [hi - lo]]).astype(np.int64)
        for i, (c0, c1) in enumerate(itertools.pairwise(cuts.tolist())):
            pieces.append((int(d[c0]), len(scatter), i, lo + c0, lo + c1))
        local = rows[by[lo:hi]] - s
        scatter.append(Task(f"block {b}: rows {s}..{e - 1}", (blocks[b], local, cuts)))
        parts.append(int(cuts.size - 1))
    held = executor.map_keep(
        f"{stage} (scatter)", _scatter, scatter, progress=progress, parts=parts
    )
    pieces.sort()  # by destination, then block (the order of `by` within a destination)
    gather: list[Task] = []
    at_dest = np.searchsorted([q[0] for q in pieces], np.arange(first.size + 1))
    for d_i, (a, e) in enumerate(zip(first.tolist(), ends.tolist(), strict=True)):
        mine = pieces[int(at_dest[d_i]) : int(at_dest[d_i + 1])]
        at = np.concatenate([by[q0:q1] for *_, q0, q1 in mine]) - a
        cuts = np.concatenate([[0], np.cumsum([q1 - q0 for *_, q0, q1 in mine])]).astype(np.int64)
        refs = [held[t][1][i] for _, t, i, _, _ in mine]
        name = f"destination {d_i}: {e - a} rows from {len(mine)} blocks"
        gather.append(Task(name, (e - a, unit, at, cuts, *refs)))
    out = executor.map_keep(f"{stage} (gather)", _gather, gather, progress=progress)
    return [h for _, h in out]
