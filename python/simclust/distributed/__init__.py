"""Distributed runs: an engine-neutral plan over row blocks, run by an executor.

Step 1 of the Ray backend (``analyze(..., backend="ray")``, ``[run] backend = "ray"``,
``--backend ray``): the similarity graphs are built by tasks over pairs of row blocks
(:class:`DistributedBackend`), the same edges as the native brute force, bit for bit; the
rest of the run (components, metrics, sweep, outputs) runs on the driver as on one
machine. See ``docs/distributed.md``.

* :class:`Executor` (protocol): ``put``/``get`` of shared objects, ``imap``/``map`` of a
  function over :class:`Task` s with a per-stage ``progress(stage, done, total)``.
* :class:`InProcessExecutor`: every task here, in order (the plan without a cluster).
* :class:`RayExecutor`: Ray core tasks, the object store, retries, cancellation.

Step 3: the ``kmeans`` strategy (cosine) runs as Lloyd steps over row blocks
(:func:`distributed_kmeans`): the native labels and centroids, bit for bit.

Step 5: the built-in ``intra``, ``centroid`` and ``inter`` metrics run as tasks over the
rows grouped by cluster (``simclust.distributed._metrics``; a giant cluster as tile tasks
over pairs of its pieces): the native frames (``DistributedBackend.compute_metric``).

``search = "certified"`` runs as one task per pair of groups of the native certified
search's panels (:mod:`simclust.distributed._certified`): its edges, bit for bit.

Step 8: rows read by tasks (a sharded input) stay in the store; the plans' blocks are cut
from the shards, and the ``ivf`` lists and the metrics' parts regrouped from the blocks,
by tasks (:mod:`simclust.distributed._rows`, :mod:`simclust.distributed._shuffle`).
"""

from __future__ import annotations

from simclust.distributed._executor import Executor, InProcessExecutor, Task, ordered
from simclust.distributed._graph import DistributedBackend
from simclust.distributed._kmeans import (
    KMEANS_BLOCK_ALIGN,
    distributed_kmeans,
    kmeans_block_rows,
)
from simclust.distributed._ray import INSTALL_HINT, RayExecutor, require_ray
from simclust.distributed._rows import (
    MAX_BLOCK_ROWS,
    TILE_ROWS,
    block_bounds,
    default_block_rows,
)

DistributedGraphs = DistributedBackend
"""The former name of :class:`DistributedBackend` (it built only the graphs then)."""

__all__ = [
    "INSTALL_HINT",
    "KMEANS_BLOCK_ALIGN",
    "MAX_BLOCK_ROWS",
    "TILE_ROWS",
    "DistributedBackend",
    "DistributedGraphs",
    "Executor",
    "InProcessExecutor",
    "RayExecutor",
    "Task",
    "block_bounds",
    "default_block_rows",
    "distributed_kmeans",
    "kmeans_block_rows",
    "ordered",
    "require_ray",
]
