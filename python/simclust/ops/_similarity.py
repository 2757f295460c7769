"""Normalisation, exact cosine kNN and ε-graphs."""

from __future__ import annotations

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


def normalize(x: npt.ArrayLike, *, n_threads: int | None = None) -> npt.NDArray[np.float32]:
    """Return the rows of ``x`` scaled to unit L2 norm, as float32.

    Raises:
        InvalidInputError: rows with NaN/Inf or of zero norm (listed by index).
        ShapeError: ``x`` is not 2-D or is empty.

    Example:
        >>> normalize([[3.0, 4.0]]).tolist()
        [[0.6000000238418579, 0.800000011920929]]

    """
    return _native.normalize(_as_matrix(x, "X"), n_threads=_as_threads(n_threads))


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
    the lower index. Exact: every pair is computed (blocked GEMM), and the
    self-search computes each pair once for both rows.

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
