"""Normalisation, exact cosine kNN and ε-graphs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from simclust import _native
from simclust.ops._coerce import (
    EdgeArrays,
    Progress,
    _as_count,
    _as_matrix,
    _as_threads,
    _as_threshold,
)


def normalize(
    x: npt.ArrayLike, *, copy: bool = True, n_threads: int | None = None
) -> npt.NDArray[np.float32]:
    """Return the rows of ``x`` scaled to unit L2 norm, as float32.

    A row whose norm is 1 to float32 rounding is kept bit for bit, so normalising twice
    changes nothing. With ``copy=False``, when every row is unit already the input is
    returned as it is (a float32 C-order array itself, a memory-mapped one still
    mapped: nothing is copied); otherwise a new array is returned.

    Raises:
        InvalidInputError: rows with NaN/Inf or of zero norm (listed by index).
        ShapeError: ``x`` is not 2-D or is empty.

    Example:
        >>> normalize([[3.0, 4.0]]).tolist()
        [[0.6000000238418579, 0.800000011920929]]
        >>> u = np.array([[0.6, 0.8]], dtype=np.float32)
        >>> normalize(u, copy=False) is u, normalize(u) is u
        (True, False)

    """
    xm = _as_matrix(x, "X")
    threads = _as_threads(n_threads)
    if not copy and _native.rows_are_unit(xm, n_threads=threads):
        return xm
    return _native.normalize(xm, n_threads=threads)


def knn(
    x: npt.ArrayLike,
    k: int,
    *,
    Y: npt.ArrayLike | None = None,  # noqa: N803 (X/Y is the field's convention)
    n_threads: int | None = None,
    progress: Progress | None = None,
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]]:
    """Exact cosine k-nearest neighbours.

    With ``Y=None`` this is a self-search over the rows of ``x``: each row's
    own index is excluded and ``1 <= k <= N - 1``. With ``Y`` (M x D) every
    row of ``x`` is searched among the rows of ``Y`` (nothing excluded,
    ``1 <= k <= M``). Rows are sorted by similarity, highest first; ties go to
    the lower index. Every listed similarity is the pair's cosine computed in
    float64 and rounded once to float32.

    The self-search is exact: every pair is screened with a proven error bound
    (bf16 tiles on CPUs with AMX, int16 dot products on CPUs with AVX-512 VNNI
    or AVX2, else the float32 GEMM; each pair once for both rows) and every
    pair that could be listed is recomputed in float64, so its lists are the
    same, bit for bit, on every SIMD path and thread count. The search among
    ``Y`` chooses its lists by the float32 GEMM, so a pair within float32
    rounding of a row's k-th may stand in for it.

    Args:
        x: N x D embeddings.
        k: neighbours per row.
        Y: optional M x D database to search instead of ``x`` itself.
        n_threads: threads (default ``SIMCLUST_NUM_THREADS`` or all cores).
        progress: optional ``progress(done, total)`` callback (tiles).

    Returns:
        ``(indices, similarities)``: uint32 and float32 arrays of shape (N, k).

    Example:
        >>> X = [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]
        >>> idx, sim = knn(X, 2)
        >>> idx.tolist()
        [[1, 2], [0, 2], [1, 0]]

    """
    xm = _as_matrix(x, "X")
    kk = _as_count(k, "k")
    threads = _as_threads(n_threads)
    if Y is None:
        return _native.knn(xm, kk, n_threads=threads, progress=progress)
    return _native.knn_query(xm, _as_matrix(Y, "Y"), kk, n_threads=threads, progress=progress)


def knn_between(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    k: int,
    *,
    floors: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    n_threads: int | None = None,
    progress: Progress | None = None,
) -> tuple[
    tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]],
    tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]],
]:
    """Exact cosine kNN between two row sets, both ways, each pair computed once.

    Each row of ``a``'s ``k`` nearest rows of ``b``, and each row of ``b``'s ``k``
    nearest rows of ``a``: the pairs of ``a x b`` are screened once for both of their
    rows, as :func:`knn` screens a matrix's pairs, and every listed similarity is the
    exact one :func:`knn` lists for the same pair, bit for bit (sorted the same way:
    similarity descending, ties to the lower index). So the lists of :func:`knn` over
    row blocks of a matrix and of :func:`knn_between` over each pair of blocks, merged
    per row, are :func:`knn` of the whole matrix: how a distributed run splits an exact
    kNN graph into tasks (:mod:`simclust.distributed`). A side with fewer than ``k``
    rows is listed whole, padded with index ``2**32 - 1`` and similarity ``-inf``.

    ``floors`` gives each row of ``a`` and of ``b`` a similarity below which its pairs
    are not listed (``-inf``: none): in a distributed search, the row's current ``k``-th
    best from the blocks already searched, which no pair below it can displace. A row
    then lists only its pairs at or above its floor (padded as above), and its screen
    starts from that bar instead of from nothing, so the task does less work.

    Args:
        a: N x D embeddings.
        b: M x D embeddings.
        k: neighbours per row, at least 1.
        floors: ``(floor_a, floor_b)``, N and M similarities (not NaN), or ``None``.
        n_threads: threads (default ``SIMCLUST_NUM_THREADS`` or all cores).
        progress: optional ``progress(done, total)`` callback (tiles).

    Returns:
        ``((a_indices, a_similarities), (b_indices, b_similarities))``: (N, k) arrays of
        rows of ``b``, and (M, k) arrays of rows of ``a``.

    Raises:
        ShapeError: ``a`` and ``b`` differ in columns, or one is empty; a floor array
            is not one value per row.
        ParameterError: a floor is NaN.

    Example:
        >>> a, b = [[1.0, 0.0], [0.0, 1.0]], [[0.9, 0.1], [0.1, 0.9], [-1.0, 0.0]]
        >>> (ia, sa), (ib, sb) = knn_between(a, b, 1)
        >>> ia.tolist(), ib.tolist()
        ([[0], [1]], [[0], [1], [1]])
        >>> _, (ib, sb) = knn_between(a, b, 1, floors=([-1.0, -1.0], [-1.0, -1.0, 0.5]))
        >>> ib.tolist()  # row 2 of b already has a neighbour at 0.5: none here reaches it
        [[0], [1], [4294967295]]

    """
    fa: npt.NDArray[np.float32] | None = None
    fb: npt.NDArray[np.float32] | None = None
    if floors is not None:
        fa = np.ascontiguousarray(floors[0], dtype=np.float32).reshape(-1)
        fb = np.ascontiguousarray(floors[1], dtype=np.float32).reshape(-1)
    return _native.knn_between(
        _as_matrix(a, "A"),
        _as_matrix(b, "B"),
        _as_count(k, "k"),
        floor_a=fa,
        floor_b=fb,
        n_threads=_as_threads(n_threads),
        progress=progress,
    )


def _list_batch(
    lists: Sequence[npt.ArrayLike], starts: npt.ArrayLike, pairs: npt.ArrayLike
) -> tuple[list[npt.NDArray[np.float32]], npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    mats = [_as_matrix(x, "a list") for x in lists]
    s = np.ascontiguousarray(starts, dtype=np.uint32).reshape(-1)
    p = np.ascontiguousarray(pairs, dtype=np.uint32).reshape(-1, 2)
    return mats, s, p


def list_pair_edges(
    lists: Sequence[npt.ArrayLike],
    starts: npt.ArrayLike,
    pairs: npt.ArrayLike,
    threshold: float,
    *,
    n_threads: int | None = None,
) -> EdgeArrays:
    """The ε-graph edges of pairs of row lists, in positions, in one call.

    List ``l``'s row ``r`` is position ``starts[l] + r``. A pair ``(i, i)`` gives the
    edges within list ``i`` (:func:`threshold_edges` of its rows), ``(i, j)`` those
    between the lists (:func:`threshold_edges_between`, ``src`` in list ``i``): the tiles
    of those kernels, so a partitioned ε-graph's list pairs give its edges bit for bit.
    Pairs in the order given, each pair's edges sorted. A distributed partitioned search
    runs a task's list pairs with it (:mod:`simclust.distributed`).

    Example:
        >>> src, dst, sim = list_pair_edges(
        ...     [[[1.0, 0.0], [0.99, 0.1]], [[0.98, 0.15]]], [10, 20], [[0, 0], [0, 1]], 0.9)
        >>> src.tolist(), dst.tolist()
        ([10, 10, 11], [11, 20, 20])

    """
    mats, s, p = _list_batch(lists, starts, pairs)
    return _native.list_pair_edges(
        mats, s, p, _as_threshold(threshold), n_threads=_as_threads(n_threads)
    )


def threshold_edges(
    x: npt.ArrayLike,
    threshold: float,
    *,
    n_threads: int | None = None,
    progress: Progress | None = None,
) -> EdgeArrays:
    """Every pair of rows whose cosine similarity is ``>= threshold`` (the ε-graph).

    Computed exactly, tile by tile; memory grows with the number of edges,
    never with N².

    Returns:
        ``(src, dst, similarity)``: uint32, uint32, float32 arrays with
        ``src < dst``, sorted by ``(src, dst)``.

    Example:
        >>> src, dst, sim = threshold_edges([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0]], 0.9)
        >>> list(zip(src.tolist(), dst.tolist()))
        [(0, 1)]

    """
    return _native.threshold_edges(
        _as_matrix(x, "X"),
        _as_threshold(threshold),
        n_threads=_as_threads(n_threads),
        progress=progress,
    )


def threshold_edges_between(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    threshold: float,
    *,
    n_threads: int | None = None,
    progress: Progress | None = None,
) -> EdgeArrays:
    """Every pair of a row of ``a`` and a row of ``b`` with cosine similarity ``>= threshold``.

    The tiles, the float32 screen and the exact re-check near ±1 are those of
    :func:`threshold_edges`: when ``a`` and ``b`` are row ranges of one matrix that start
    at multiples of 1024 rows (the kernels' tile), every pair's similarity is the one
    :func:`threshold_edges` of the whole matrix gives, bit for bit. A distributed run
    builds an ε-graph from such block pairs (:mod:`simclust.distributed`).

    Returns:
        ``(rows_a, rows_b, similarity)``: uint32 row indices into ``a`` and into ``b``
        (so ``rows_a < rows_b`` does not hold in general) and float32 similarities,
        sorted by ``(rows_a, rows_b)``.

    Raises:
        ShapeError: ``a`` and ``b`` differ in columns, or one is empty.

    Example:
        >>> ra, rb, sim = threshold_edges_between([[1.0, 0.0], [0.0, 1.0]], [[0.99, 0.1]], 0.9)
        >>> ra.tolist(), rb.tolist()
        ([0], [0])

    """
    return _native.threshold_edges_between(
        _as_matrix(a, "A"),
        _as_matrix(b, "B"),
        _as_threshold(threshold),
        n_threads=_as_threads(n_threads),
        progress=progress,
    )


def knn_edges(
    x: npt.ArrayLike,
    k: int,
    threshold: float,
    *,
    n_threads: int | None = None,
    progress: Progress | None = None,
) -> EdgeArrays:
    """The exact self-kNN edges with similarity ``>= threshold``, undirected.

    Each row's ``k`` nearest neighbours give edges ``(min(i, j), max(i, j))``;
    a mutual pair appears once.

    Returns:
        ``(src, dst, similarity)`` as :func:`threshold_edges`.

    Example:
        >>> src, dst, _ = knn_edges([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], 1, 0.5)
        >>> list(zip(src.tolist(), dst.tolist()))
        [(0, 1)]

    """
    return _native.knn_edges(
        _as_matrix(x, "X"),
        _as_count(k, "k"),
        _as_threshold(threshold),
        n_threads=_as_threads(n_threads),
        progress=progress,
    )


def auto_exact(n: int, d: int) -> tuple[bool, str]:
    """Whether ``auto`` searches ``n`` vectors of dimension ``d`` by brute force, and why.

    Brute force costs ``N^2 D / 2`` multiply-adds; ``auto`` keeps it up to ``8e12``
    (about a minute on two cores) or below 1,000 vectors, and partitions above. The
    graph builder and the nearest-cluster searches of the metrics share this rule.

    Example:
        >>> auto_exact(1_000_000, 384)
        (False, 'auto: the brute force would take 1.9e+14 multiply-adds')

    """
    exact, work = _native.auto_exact(_as_count(n, "n", minimum=0), _as_count(d, "d"))
    return bool(exact), _auto_reason(bool(exact), work)


def _auto_reason(exact: bool, work: float) -> str:
    """Why ``auto`` chose: the brute force's multiply-adds."""
    verb = "takes" if exact else "would take"
    return f"auto: the brute force {verb} {work:.1e} multiply-adds"


def search_record(native: Mapping[str, Any]) -> dict[str, Any]:
    """A search record as results store it, from what a native search returned.

    Keys: ``method`` (``exact`` or ``ivf``), ``chosen`` (why), ``recall`` (1 when
    exact) and, for ``ivf``, ``n_lists``, ``nprobe``, ``pairs_computed``,
    ``pairs_total`` and ``recall_rows``; a search whose misses raise a score (the
    silhouette's) adds ``overestimate_mean`` and ``overestimate_max``, by how much the
    score of the rows the recall was measured on came out too high.

    Example:
        >>> search_record({"method": "exact", "auto": False, "exact_work": 8.0,
        ...     "recall": 1.0, "recall_rows": 0, "n_lists": 0, "nprobe": 0,
        ...     "pairs_computed": 6, "pairs_total": 6})
        {'method': 'exact', 'chosen': 'configured', 'recall': 1.0}

    """
    method = str(native["method"])
    chosen = (
        _auto_reason(method == "exact", native["exact_work"]) if native["auto"] else "configured"
    )
    record: dict[str, Any] = {"method": method, "chosen": chosen, "recall": native["recall"]}
    if method != "exact":
        for key in ("n_lists", "nprobe", "pairs_computed", "pairs_total", "recall_rows"):
            record[key] = int(native[key])
        for key in ("overestimate_mean", "overestimate_max"):
            if key in native:
                record[key] = float(native[key])
    return record
