"""Where a run's rows are in the object store, and how they got there.

Every plan reads the rows as consecutive *blocks* of whole 1,024-row tiles (the exact
plan's block pairs, the ``ivf`` assignment, the sources of the shuffles). How they get
into the store depends on where the rows are:

* rows the driver holds (an array passed to ``analyze``, one file read here): the driver
  puts each block once (``ray.put``);
* rows read by tasks (a sharded input, :meth:`ShardsLoader.read_by`): the shards stay in
  the store where their tasks left them, and the blocks are cut from them by tasks
  (stage ``row blocks``: :func:`~simclust.distributed._shuffle.shuffle` in input order,
  cast to float32 and, for the unit rows, normalised there: the driver's bits, row by
  row), so no row goes from the driver to the store. A plan then regroups rows (the
  ``ivf`` lists, the metrics' clusters) by the shuffle's tasks too, rather than by
  putting them from the driver.

Example:
    >>> import numpy as np
    >>> from simclust.distributed import InProcessExecutor
    >>> ex = InProcessExecutor()
    >>> raw = np.array([[3.0, 4.0], [0.0, 2.0], [1.0, 0.0]], dtype=np.float64)
    >>> rows = StoredRows(ex, block_rows=1024)
    >>> rows.loaded(raw, [(ex.put(raw[:2]), 2), (ex.put(raw[2:]), 1)])
    >>> unit = np.array([[0.6, 0.8], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    >>> rows.derived(raw, unit, unit=True)
    >>> blocks, bounds = rows.blocks(unit)
    >>> rows.by_tasks(unit), bounds, ex.get(blocks[0]).tolist()[0]
    (True, [(0, 3)], [0.6000000238418579, 0.800000011920929])

"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import numpy.typing as npt

from simclust.distributed._executor import Executor
from simclust.distributed._shuffle import shuffle
from simclust.progress import StageProgress

__all__ = ["MAX_BLOCK_ROWS", "TILE_ROWS", "StoredRows", "block_bounds", "default_block_rows"]

TILE_ROWS = 1024
"""Rows of the native kernels' tile (``simclust_core::tiles::BLOCK``): blocks are whole
tiles, so a block pair's tiles are the native run's and its similarities bit-identical."""

MAX_BLOCK_ROWS = 16 * TILE_ROWS
"""Largest default block: 16,384 rows (25 MB at 384 dimensions); a block pair's task
holds two blocks and their normalised copies."""

MIN_BLOCKS = 8
"""Blocks a run is cut into at least, while blocks of one tile allow: enough tasks to
spread over a small cluster (36 pairs)."""


def default_block_rows(n: int) -> int:
    """Rows per block for ``n`` rows: at least :data:`MIN_BLOCKS` blocks, whole tiles.

    Example:
        >>> default_block_rows(3000), default_block_rows(200_000), default_block_rows(10**6)
        (1024, 16384, 16384)

    """
    tiles = max(1, -(-n // TILE_ROWS))
    per_block = max(1, min(MAX_BLOCK_ROWS // TILE_ROWS, -(-tiles // MIN_BLOCKS)))
    return per_block * TILE_ROWS


def block_bounds(n: int, block_rows: int) -> list[tuple[int, int]]:
    """The ``(start, end)`` rows of each block.

    Example:
        >>> block_bounds(2500, 1024)
        [(0, 1024), (1024, 2048), (2048, 2500)]

    """
    return [(s, min(s + block_rows, n)) for s in range(0, n, block_rows)]


class StoredRows:
    """A run's rows in an executor's store, as blocks (see the module docs).

    Args:
        executor: holds the blocks and runs the tasks that cut them.
        block_rows: rows per block (a multiple of 1,024; default
            :func:`~simclust.distributed.default_block_rows`).

    """

    def __init__(self, executor: Executor, *, block_rows: int | None = None) -> None:
        self.executor = executor
        self.block_rows = block_rows
        self._shards: tuple[Any, list[Any], list[tuple[int, int]]] | None = None
        self._sources: dict[int, tuple[Any, bool]] = {}  # id(rows) -> (rows, unit)
        self._x: Any = None
        self._made: dict[int, tuple[list[Any], list[tuple[int, int]]]] = {}  # by block rows
        self._cut: set[int] = set()  # ids of the derived arrays cut from the shards

    def loaded(self, raw: npt.ArrayLike, shards: list[tuple[Any, int]]) -> None:
        """``raw`` (the input as read) is the concatenation of these shards in the store.

        ``shards``: ``(handle, rows)`` each, in order (:meth:`ShardsLoader.read_by`).
        """
        if not shards:
            return
        ends = list(itertools.accumulate(r for _, r in shards))
        bounds = list(zip([0, *ends[:-1]], ends, strict=True))
        self._shards = (raw, [h for h, _ in shards], bounds)

    def derived(self, raw: npt.ArrayLike, rows: npt.ArrayLike, *, unit: bool) -> None:
        """``rows`` are ``raw`` as float32, normalised to unit rows if ``unit``.

        Blocks of ``rows`` are then cut from the shards of ``raw`` (if :meth:`loaded`).
        """
        if self._shards is not None and self._shards[0] is raw:
            self._sources[id(rows)] = (rows, unit)

    def _unit_of(self, x: npt.ArrayLike) -> bool | None:
        """How ``x``'s rows are cut by tasks: as unit rows, as they are, or not at all.

        ``True``, ``False``, or ``None`` when ``x`` is not :meth:`derived` from the shards
        or nothing is left to cut it from (the shards released, ``x``'s blocks too).
        """
        source = self._sources.get(id(x))
        if self._shards is None or source is None or source[0] is not x:
            return None
        if not self._shards[1] and not (self._x is x and self._made):
            return None
        return bool(source[1])

    def by_tasks(self, x: npt.ArrayLike) -> bool:
        """Whether the blocks of ``x`` are cut by tasks (its rows were read by tasks)."""
        return self._unit_of(x) is not None

    def blocks(
        self, x: npt.ArrayLike, block_rows: int | None = None, progress: StageProgress | None = None
    ) -> tuple[list[Any], list[tuple[int, int]]]:
        """The blocks of ``x`` in the store and their rows ``(start, end)``.

        Blocks of ``block_rows`` rows (default: this store's), made on first use for this
        ``x`` and these rows; the last ``x``'s are released. Rows read by tasks are cut
        by tasks: from the shards, or from ``x``'s blocks of another size; the shards are
        released once every array derived from them has its blocks (the store then holds
        the rows once fewer).
        """
        arr = np.asarray(x)
        n = int(arr.shape[0])
        rows = block_rows or self.block_rows or default_block_rows(n)
        unit = self._unit_of(x)
        if self._x is not x:
            self._made, self._x = {}, x
        if rows in self._made:
            return self._made[rows]
        bounds = block_bounds(n, rows)
        if unit is not None and self._shards is not None:
            if self._made:  # cut already at another size: re-cut those (unit already)
                source, source_bounds = next(iter(self._made.values()))
                unit = False
            else:
                _, source, source_bounds = self._shards
            starts = [s for s, _ in bounds]
            blocks = shuffle(
                self.executor, source, source_bounds, np.arange(n), starts, "row blocks",
                progress, unit=unit,
            )  # fmt: skip
            self._cut.add(id(x))
            if self._cut >= set(self._sources):  # every derived array cut: shards no more
                raw, _, shard_bounds = self._shards
                self._shards = (raw, [], shard_bounds)
        else:
            blocks = [
                self.executor.put(np.ascontiguousarray(arr[s:e], dtype=np.float32))
                for s, e in bounds
            ]
        self._made[rows] = (blocks, bounds)
        return blocks, bounds
