"""Partitioned searches: the rows split into lists by spherical k-means (an inverted file)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from simclust import _native
from simclust.ops._coerce import (
    Progress,
    _as_count,
    _as_matrix,
    _as_seed,
    _as_threads,
    _as_threshold,
)

__all__ = [
    "CertifiedGroup",
    "GroupPairEdges",
    "Partition",
    "SearchStats",
    "certified_group_pair_edges",
    "default_n_lists",
    "partitioned_threshold_edges",
]


class SearchStats(NamedTuple):
    """What a partitioned search computed and how complete it is."""

    n_lists: int
    """Lists the rows were split into."""
    list_pairs: int
    """Pairs of lists compared."""
    pairs_computed: int
    """Row pairs whose similarity was computed."""
    pairs_total: int
    """All row pairs, ``N (N - 1) / 2``."""
    recall: float | None
    """Measured recall (recall@k for kNN, pair recall for ε-graphs; 1.0 when certified);
    ``None`` when not measured."""
    recall_rows: int
    """Rows the recall was measured on (0: certified or not measured)."""


class CertifiedGroup(NamedTuple):
    """A run of whole panels of a :class:`Partition` with cells, as a certified search reads it.

    Copies, for :func:`certified_group_pair_edges`. The certified search pairs *panels*
    (runs of whole cells, at most 1,024 rows); a group is consecutive panels, so a
    contiguous range of positions and of cells, numbered as in the partition
    (:meth:`Partition.certified_group`).
    """

    first_cell: int
    """The partition's index of the group's first cell."""
    offsets: npt.NDArray[np.uint64]
    """Cell ``first_cell + k`` is positions ``offsets[k]:offsets[k + 1]``."""
    xs: npt.NDArray[np.float32]
    """The unit rows at the group's positions, ``m x D``."""
    order: npt.NDArray[np.uint32]
    """The input row at each position."""
    cos: npt.NDArray[np.float32]
    """Per position, the cosine of its row to its cell's centroid."""
    centroids: npt.NDArray[np.float32]
    """The cells' unit centroids, ``n_cells x D``."""
    lists: npt.NDArray[np.uint32]
    """Per cell, its list."""

    @property
    def positions(self) -> tuple[int, int]:
        """The group's first position and one past its last."""
        return int(self.offsets[0]), int(self.offsets[-1])


class GroupPairEdges(NamedTuple):
    """What :func:`certified_group_pair_edges` found."""

    src: npt.NDArray[np.uint32]
    """Smaller input row of each edge (the edges are not sorted)."""
    dst: npt.NDArray[np.uint32]
    """Larger input row of each edge."""
    similarity: npt.NDArray[np.float32]
    """Each edge's similarity."""
    pairs_computed: int
    """Row pairs whose similarity was computed."""
    list_pairs: npt.NDArray[np.uint32]
    """The list pairs ``(i, j)`` it computed row pairs of, distinct, ``(m, 2)``."""


def certified_group_pair_edges(
    a: CertifiedGroup,
    b: CertifiedGroup | None,
    threshold: float,
    *,
    n_threads: int | None = None,
) -> GroupPairEdges:
    """The certified ε-graph's edges between two groups of one partition, or within one.

    Exactly the panel pairs ``(i, j)``, ``i <= j``, of the whole certified search
    (:meth:`Partition.threshold_edges` with ``certified=True``) with ``i`` in ``a`` and
    ``j`` in ``b`` (``b`` after ``a``), or both in ``a`` when ``b`` is ``None``, through
    the same native code: over every pair of groups ``a <= b`` the edges are the whole
    search's, similarities bit for bit; ``pairs_computed`` adds up to its count and the
    union of the ``list_pairs`` is its ``list_pairs``. A distributed run makes each
    pair of groups a task.

    Raises:
        ParameterError: groups out of order or overlapping, a threshold outside
            ``[-1, 1]``; ShapeError: a group whose parts do not fit.

    Example:
        >>> from simclust.testing import make_embeddings
        >>> X = make_embeddings(3000, 16, n_clusters=20, seed=0)
        >>> part = Partition(X, 8)
        >>> b = part.certified_group_bounds(1024).tolist()
        >>> groups = [part.certified_group(s, e) for s, e in zip(b, b[1:])]
        >>> found = [certified_group_pair_edges(g, h if j > i else None, 0.9)
        ...          for i, g in enumerate(groups) for j, h in enumerate(groups) if j >= i]
        >>> src, dst, sim, stats = part.threshold_edges(0.9, certified=True)
        >>> sum(f.pairs_computed for f in found) == stats.pairs_computed
        True
        >>> sum(f.src.size for f in found) == src.size
        True

    """
    src, dst, sim, pairs, lists = _native.certified_group_pair_edges(
        a,
        b,
        _as_threshold(threshold),
        n_threads=_as_threads(n_threads),
    )
    return GroupPairEdges(src, dst, sim, int(pairs), lists)


class Partition:
    """The rows split into lists by spherical k-means (an inverted file), for big graphs.

    k-means is trained on a seeded sample and every row goes to its nearest centroid;
    the lists are kept as contiguous blocks of unit rows (one copy of the data). Graphs
    are then built from the lists: approximate kNN and ε-graphs that compare each list
    with the ``nprobe`` lists of nearest centroid (every similarity computed is exact;
    which pairs are computed is approximate, and the recall is measured on a seeded
    sample of rows against brute force), or the certified exact ε-graph (lists that
    cannot hold a pair ``>= t`` by the triangle inequality on angles are skipped).
    The pages of a read-only memory-mapped ``x`` are given back to the kernel once the
    lists hold their copy (read back from the file when next needed).

    Args:
        x: N x D embeddings.
        n_lists: lists (default ``2 sqrt(N)``).
        train_size: rows k-means is trained on (default 32 per list).
        max_iter: Lloyd iterations of the training.
        seed: seed of the sample and of k-means.
        certified: also split the lists into the cells a certified ε-graph prunes with
            (about a tenth of the build); ``False`` for approximate searches only.
        n_threads: threads (default ``SIMCLUST_NUM_THREADS`` or all cores).
        progress: optional ``progress(done, total)`` callback.

    Example:
        >>> from simclust.testing import make_embeddings
        >>> X = make_embeddings(2000, 16, n_clusters=20, seed=0)
        >>> part = Partition(X, 20)
        >>> src, dst, sim, stats = part.threshold_edges(0.9, certified=True)
        >>> from simclust.ops import threshold_edges
        >>> exact = threshold_edges(X, 0.9)
        >>> bool((src == exact[0]).all() and (dst == exact[1]).all()), stats.recall
        (True, 1.0)

    """

    def __init__(
        self,
        x: npt.ArrayLike,
        n_lists: int | None = None,
        *,
        train_size: int | None = None,
        max_iter: int = 20,
        seed: int = 0,
        certified: bool = True,
        n_threads: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        xm = _as_matrix(x, "X")
        n = int(xm.shape[0])
        lists = default_n_lists(n) if n_lists is None else _as_count(n_lists, "n_lists")
        train = 32 * lists if train_size is None else _as_count(train_size, "train_size")
        self._native = _native.Partition(
            xm,
            lists,
            train_size=train,
            max_iter=_as_count(max_iter, "max_iter"),
            seed=_as_seed(seed, "seed"),
            certified=bool(certified),
            n_threads=_as_threads(n_threads),
            progress=progress,
        )

    @classmethod
    def from_assignment(
        cls,
        x: npt.ArrayLike,
        centroids: npt.ArrayLike,
        near: npt.ArrayLike,
        cos: npt.ArrayLike,
        *,
        certified: bool = True,
        n_threads: int | None = None,
    ) -> Partition:
        """The partition of ``x`` into the lists of given unit ``centroids``.

        ``near`` holds each row's ``min(n_lists, 8)`` nearest lists (best first) and
        ``cos`` its cosine to the nearest: what the constructor builds when its training
        gave these centroids and its assignment these lists. A distributed run computes
        them as tasks (:func:`simclust._native.partition_train_rows`, the k-means of
        :func:`simclust.distributed.distributed_kmeans`,
        :func:`simclust._native.partition_assign` per block).

        Example:
            >>> from simclust import _native
            >>> from simclust.testing import make_embeddings
            >>> X = make_embeddings(2000, 8, n_clusters=5, seed=0)
            >>> p = Partition(X, certified=False)
            >>> near, cos = _native.partition_assign(X, p.centroids)
            >>> q = Partition.from_assignment(X, p.centroids, near, cos, certified=False)
            >>> bool((q.order == p.order).all())
            True

        """
        obj = cls.__new__(cls)
        obj._native = _native.Partition.from_assignment(
            _as_matrix(x, "X"),
            _as_matrix(centroids, "centroids"),
            np.ascontiguousarray(near, dtype=np.uint32),
            np.ascontiguousarray(cos, dtype=np.float32),
            certified=bool(certified),
            n_threads=_as_threads(n_threads),
        )
        return obj

    @property
    def n_lists(self) -> int:
        """The number of lists."""
        return int(self._native.n_lists)

    @property
    def centroids(self) -> npt.NDArray[np.float32]:
        """The lists' unit centroids, ``n_lists x D``."""
        return self._native.centroids

    @property
    def list_sizes(self) -> npt.NDArray[np.uint64]:
        """Rows per list."""
        return self._native.list_sizes

    @property
    def order(self) -> npt.NDArray[np.uint32]:
        """The input row at each position, list by list.

        List ``l`` holds the rows ``order[offsets[l]:offsets[l + 1]]``, ``offsets`` the
        cumulated :attr:`list_sizes` (within a list, in input order).
        """
        return self._native.order

    def list_pairs(
        self, nprobe: int, *, n_threads: int | None = None
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
        """The list pairs ``(i, j)``, ``i <= j``, an approximate ε-graph compares.

        Each list with the ``nprobe`` lists of nearest centroid (itself first; empty lists
        left out), sorted. The ε-graph of :meth:`threshold_edges` is the union over these
        pairs of :func:`threshold_edges` of a list's rows with itself and
        :func:`threshold_edges_between` of list ``i``'s rows and list ``j``'s: a
        distributed run splits it into tasks that way.

        Example:
            >>> from simclust.testing import make_embeddings
            >>> part = Partition(make_embeddings(500, 8, seed=0), 5, certified=False)
            >>> i, j = part.list_pairs(2)
            >>> bool((i <= j).all()), sorted(set(i.tolist()) | set(j.tolist())) == [0, 1, 2, 3, 4]
            (True, True)

        """
        return self._native.list_pairs(
            _as_count(nprobe, "nprobe"), n_threads=_as_threads(n_threads)
        )

    def certified_group_bounds(self, max_rows: int) -> npt.NDArray[np.uint64]:
        """Where a distributed certified search cuts the panels into groups (positions).

        Consecutive panels while they hold at most ``max_rows`` rows together (a panel
        alone when larger): ``G + 1`` boundaries from 0 to ``N``, the groups'
        :meth:`certified_group`. Needs a partition built with ``certified=True``.

        Example:
            >>> from simclust.testing import make_embeddings
            >>> part = Partition(make_embeddings(3000, 8, seed=0), 6)
            >>> b = part.certified_group_bounds(2048)
            >>> int(b[0]), int(b[-1]), bool((b[1:-1] <= 3000).all())
            (0, 3000, True)

        """
        return self._native.certified_group_bounds(_as_count(max_rows, "max_rows"))

    def certified_group(self, start: int, end: int) -> CertifiedGroup:
        """The panels at positions ``start:end`` (panel boundaries) as a group (copies).

        Example:
            >>> from simclust.testing import make_embeddings
            >>> part = Partition(make_embeddings(3000, 8, seed=0), 6)
            >>> g = part.certified_group(0, int(part.certified_group_bounds(2048)[1]))
            >>> g.first_cell, g.positions[0], g.xs.shape[0] == g.positions[1]
            (0, 0, True)

        """
        return CertifiedGroup(
            *self._native.certified_group(
                _as_count(start, "start", minimum=0), _as_count(end, "end", minimum=0)
            )
        )

    def pair_recall(
        self,
        src: npt.ArrayLike,
        dst: npt.ArrayLike,
        threshold: float,
        *,
        recall_rows: int = 1000,
        seed: int = 0,
        n_threads: int | None = None,
    ) -> tuple[float | None, int]:
        """The pair recall of an ε-graph over these rows, as :meth:`threshold_edges` measures it.

        Of the exact pairs ``>= threshold`` that touch ``recall_rows`` rows sampled with
        ``seed``, the fraction the edges ``(src, dst)`` (input rows, each edge once) hold.

        Returns:
            ``(recall, rows measured)``; ``(None, 0)`` when ``recall_rows`` is 0.

        Example:
            >>> from simclust.testing import make_embeddings
            >>> X = make_embeddings(500, 8, seed=0)
            >>> part = Partition(X, 5, certified=False)
            >>> src, dst, _, stats = part.threshold_edges(0.95, nprobe=2, recall_rows=100)
            >>> part.pair_recall(src, dst, 0.95, recall_rows=100) == (stats.recall, 100)
            True

        """
        return self._native.pair_recall(
            np.ascontiguousarray(src, dtype=np.uint32),
            np.ascontiguousarray(dst, dtype=np.uint32),
            _as_threshold(threshold),
            recall_rows=_as_count(recall_rows, "recall_rows", minimum=0),
            seed=_as_seed(seed, "seed"),
            n_threads=_as_threads(n_threads),
        )

    def knn_recall(
        self,
        indices: npt.ArrayLike,
        similarities: npt.ArrayLike,
        *,
        recall_rows: int = 1000,
        seed: int = 0,
        n_threads: int | None = None,
    ) -> tuple[float | None, int]:
        """The recall@k of kNN lists over these rows, as :meth:`knn_edges` measures it.

        ``indices``, ``similarities``: ``N x k`` lists in input row order. On
        ``recall_rows`` rows sampled with ``seed``, the mean fraction of the listed
        neighbours that reach the exact ``k``-th similarity.

        Returns:
            ``(recall, rows measured)``; ``(None, 0)`` when ``recall_rows`` is 0.

        Example:
            >>> from simclust.testing import make_embeddings
            >>> X = make_embeddings(500, 8, seed=0)
            >>> from simclust.ops import knn
            >>> idx, sim = knn(X, 5)
            >>> Partition(X, 5, certified=False).knn_recall(idx, sim, recall_rows=50)
            (1.0, 50)

        """
        return self._native.knn_recall(
            np.ascontiguousarray(indices, dtype=np.uint32),
            np.ascontiguousarray(similarities, dtype=np.float32),
            recall_rows=_as_count(recall_rows, "recall_rows", minimum=0),
            seed=_as_seed(seed, "seed"),
            n_threads=_as_threads(n_threads),
        )

    def knn_edges(
        self,
        k: int,
        threshold: float = -1.0,
        *,
        nprobe: int = 2,
        recall_rows: int = 1000,
        seed: int = 0,
        n_threads: int | None = None,
        progress: Progress | None = None,
    ) -> tuple[
        npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32], SearchStats
    ]:
        """The undirected kNN graph (edges ``>= threshold``) from an approximate search.

        Every list is compared with itself and every row with its next ``nprobe - 1``
        nearest lists; the 5% of rows whose ``k``-th neighbour is then least similar with
        ``max(32, 4 nprobe)`` lists; NN-descent's local joins refine the lists. Recall@k
        is measured on ``recall_rows`` seeded rows (0: not measured).
        """
        src, dst, sim, stats = self._native.knn_edges(
            _as_count(k, "k"),
            _as_threshold(threshold),
            _as_count(nprobe, "nprobe"),
            recall_rows=_as_count(recall_rows, "recall_rows", minimum=0),
            seed=_as_seed(seed, "seed"),
            n_threads=_as_threads(n_threads),
            progress=progress,
        )
        return src, dst, sim, SearchStats(**stats)

    def knn_search_k(self, k: int) -> int:
        """The neighbours :meth:`knn_edges` for ``k`` looks for (10 at least, ``N - 1`` at most)."""
        return int(self._native.knn_search_k(_as_count(k, "k")))

    def knn_probes(
        self,
        nprobe: int,
        similarities: npt.ArrayLike | None = None,
        *,
        n_threads: int | None = None,
    ) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint32]]:
        """Which rows probe which lists in :meth:`knn_edges`: ``(offsets, members)``.

        List ``l``'s probing rows (positions, ascending) are
        ``members[offsets[l]:offsets[l + 1]]``: every row's next ``nprobe - 1`` lists, or
        with ``similarities`` (the ``N x k`` merged lists after those, positions) the
        weakest rows' further lists (see :mod:`simclust.ops._knn_parts`).
        """
        sims = None if similarities is None else np.ascontiguousarray(similarities, np.float32)
        return self._native.knn_probes(
            _as_count(nprobe, "nprobe"), sims, n_threads=_as_threads(n_threads)
        )

    def knn_finish(
        self,
        k: int,
        threshold: float,
        indices: npt.ArrayLike,
        similarities: npt.ArrayLike,
        pairs_computed: int,
        *,
        recall_rows: int = 1000,
        seed: int = 0,
        n_threads: int | None = None,
    ) -> tuple[
        npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32], SearchStats
    ]:
        """:meth:`knn_edges` from its parts' merged lists (``N x knn_search_k(k)``, positions).

        NN-descent, the similarities in float64, the ``k`` best in input rows and the
        recall, as :meth:`knn_edges` ends; ``pairs_computed``: the parts' pairs.
        """
        src, dst, sim, stats = self._native.knn_finish(
            _as_count(k, "k"),
            _as_threshold(threshold),
            np.ascontiguousarray(indices, dtype=np.uint32),
            np.ascontiguousarray(similarities, dtype=np.float32),
            _as_count(pairs_computed, "pairs_computed", minimum=0),
            recall_rows=_as_count(recall_rows, "recall_rows", minimum=0),
            seed=_as_seed(seed, "seed"),
            n_threads=_as_threads(n_threads),
        )
        return src, dst, sim, SearchStats(**stats)

    def threshold_edges(
        self,
        threshold: float,
        *,
        certified: bool = False,
        nprobe: int = 8,
        recall_rows: int = 1000,
        seed: int = 0,
        n_threads: int | None = None,
        progress: Progress | None = None,
    ) -> tuple[
        npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32], SearchStats
    ]:
        """The ε-graph at ``threshold``: exact with ``certified``, else approximate.

        The approximate graph compares each list with its ``nprobe`` nearest; its pair
        recall is measured on ``recall_rows`` seeded rows (0: not measured).
        """
        src, dst, sim, stats = self._native.threshold_edges(
            _as_threshold(threshold),
            certified=bool(certified),
            nprobe=_as_count(nprobe, "nprobe"),
            recall_rows=_as_count(recall_rows, "recall_rows", minimum=0),
            seed=_as_seed(seed, "seed"),
            n_threads=_as_threads(n_threads),
            progress=progress,
        )
        return src, dst, sim, SearchStats(**stats)


def partitioned_threshold_edges(
    x: npt.ArrayLike,
    threshold: float,
    *,
    certified: bool = False,
    n_lists: int | None = None,
    nprobe: int = 8,
    recall_rows: int = 1000,
    seed: int = 0,
    n_threads: int | None = None,
    progress: Progress | None = None,
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32], SearchStats]:
    """The ε-graph at ``threshold`` over a :class:`Partition` built for it and freed early.

    As :meth:`Partition.threshold_edges`, but the partition (a unit-row copy the size of
    the input) is freed before the edges are sorted, so the two are never held together.
    When ``x`` is a read-only memory-mapped file (``np.load(path, mmap_mode="r")``), its
    pages are given back to the kernel once the partition holds its copy, and read back
    from the file when next needed: the input and the copy are not both resident while
    the search runs. The data is never modified.

    Args:
        x: N x D embeddings.
        threshold: the similarity an edge needs.
        certified: the exact ε-graph (pruned by the triangle inequality), else approximate.
        n_lists: lists (default ``2 sqrt(N)``), trained on 32 rows each.
        nprobe: lists each list is compared with (approximate).
        recall_rows: seeded rows the pair recall is measured on (approximate; 0: not).
        seed: seed of the training sample, k-means and the recall sample.
        n_threads: threads (default ``SIMCLUST_NUM_THREADS`` or all cores).
        progress: optional ``progress(done, total)`` callback.

    Example:
        >>> from simclust.testing import make_embeddings
        >>> X = make_embeddings(2000, 16, n_clusters=20, seed=0)
        >>> src, dst, sim, stats = partitioned_threshold_edges(X, 0.9, certified=True)
        >>> from simclust.ops import threshold_edges
        >>> exact = threshold_edges(X, 0.9)
        >>> bool((src == exact[0]).all() and (dst == exact[1]).all()), stats.recall
        (True, 1.0)

    """
    xm = _as_matrix(x, "X")
    n = int(xm.shape[0])
    lists = default_n_lists(n) if n_lists is None else _as_count(n_lists, "n_lists")
    src, dst, sim, stats = _native.partitioned_threshold_edges(
        xm,
        _as_threshold(threshold),
        certified=bool(certified),
        n_lists=lists,
        train_size=32 * lists,
        nprobe=_as_count(nprobe, "nprobe"),
        recall_rows=_as_count(recall_rows, "recall_rows", minimum=0),
        seed=_as_seed(seed, "seed"),
        n_threads=_as_threads(n_threads),
        progress=progress,
    )
    return src, dst, sim, SearchStats(**stats)


def default_n_lists(n: int) -> int:
    """The default number of lists for ``n`` rows: ``2 sqrt(N)``, within ``1..N``.

    Example:
        >>> default_n_lists(1_000_000)
        2000

    """
    return int(_native.default_n_lists(_as_count(n, "n")))
