"""Typed array operations over the Rust core: the building blocks of simclust.

Every function accepts any real numeric dtype and any memory order; arrays are
converted once, at this edge, to float32 C-order (``np.ascontiguousarray``),
and rows are L2-normalised inside the core, so similarities are cosine
similarities. Long calls run without the GIL and stop on Ctrl-C.

Example:
    >>> import numpy as np
    >>> from simclust import ops
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> idx, sim = ops.knn(X, 1)
    >>> idx[:, 0].tolist()
    [1, 0, 3, 2]

"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import polars as pl

from simclust import _native
from simclust.exceptions import InvalidInputError, ParameterError, ShapeError

__all__ = [
    "bridge_similarity",
    "connected_components",
    "knn",
    "knn_edges",
    "normalize",
    "threshold_edges",
    "threshold_sweep",
]

Progress = Callable[[int, int], object]
"""``progress(done, total)``, called about ten times a second during long calls."""

EdgeArrays = tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32]]

_U32_MAX = np.iinfo(np.uint32).max


def _as_matrix(x: npt.ArrayLike, name: str) -> npt.NDArray[np.float32]:
    """Return ``x`` as a 2-D float32 C-contiguous array (no copy when it already is)."""
    a = np.asarray(x)
    if a.dtype.kind not in "fiub":
        raise InvalidInputError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ShapeError(f"{name} must be a 2-D array (rows x dimensions), got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float32)


def _as_vector(x: npt.ArrayLike, name: str, dtype: type[np.generic]) -> npt.NDArray[np.generic]:
    a = np.asarray(x)
    if a.ndim != 1:
        raise ShapeError(f"{name} must be a 1-D array, got shape {a.shape}")
    if a.dtype.kind not in "fiub":
        raise InvalidInputError(f"{name} must hold real numbers, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=dtype)


def _as_nodes(x: npt.ArrayLike, name: str) -> npt.NDArray[np.uint32]:
    """Node ids as uint32; negative or too large ids are a ParameterError."""
    a = np.asarray(x)
    if a.ndim != 1:
        raise ShapeError(f"{name} must be a 1-D array of node ids, got shape {a.shape}")
    if a.size and a.dtype.kind not in "iu":
        raise InvalidInputError(f"{name} must hold integer node ids, got dtype {a.dtype}")
    if a.size and (int(a.min()) < 0 or int(a.max()) > _U32_MAX):
        bad = int(np.flatnonzero((a < 0) | (a > _U32_MAX))[0])
        raise ParameterError(f"{name}[{bad}] = {a[bad]} is not a valid node id")
    return np.ascontiguousarray(a, dtype=np.uint32)


def _as_count(value: int, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ParameterError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _as_threads(n_threads: int | None) -> int | None:
    return None if n_threads is None else _as_count(n_threads, "n_threads")


def _as_threshold(threshold: float) -> float:
    t = float(threshold)
    if not -1.0 <= t <= 1.0:
        raise ParameterError(f"threshold must be a cosine similarity in [-1, 1], got {threshold}")
    return t


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


def connected_components(
    n: int, src: npt.ArrayLike, dst: npt.ArrayLike, *, n_threads: int | None = None
) -> npt.NDArray[np.int64]:
    """Connected components of the graph with nodes ``0..n-1`` and the given edges.

    Labels are canonical: components are numbered ``0..C-1`` in the order of
    their smallest member, so the result never depends on edge order or
    thread count. Self-loops and duplicate edges are allowed.

    Example:
        >>> connected_components(5, [3, 1], [4, 0]).tolist()
        [0, 0, 1, 2, 2]

    """
    nn = _as_count(n, "n", minimum=0)
    return _native.connected_components(
        nn, _as_nodes(src, "src"), _as_nodes(dst, "dst"), n_threads=_as_threads(n_threads)
    )


def threshold_sweep(
    n: int,
    src: npt.ArrayLike,
    dst: npt.ArrayLike,
    similarity: npt.ArrayLike,
    thresholds: Sequence[float] | npt.ArrayLike,
) -> pl.DataFrame:
    """Components and largest component size at each threshold, in one pass.

    An edge counts at threshold ``t`` when its similarity is ``>= t``. Edges
    are fed to a union-find in descending similarity (single linkage), so any
    number of thresholds costs one sort.

    Returns:
        A frame with columns ``threshold: Float32``, ``n_components: UInt32``,
        ``largest_component: UInt32``, one row per threshold, in the given order.

    Example:
        >>> threshold_sweep(3, [0, 1], [1, 2], [0.95, 0.85], [0.9, 0.8])["n_components"].to_list()
        [2, 1]

    """
    nn = _as_count(n, "n", minimum=0)
    t = _as_vector(thresholds, "thresholds", np.float32)
    comps, largest = _native.threshold_sweep(
        nn,
        _as_nodes(src, "src"),
        _as_nodes(dst, "dst"),
        _as_vector(similarity, "similarity", np.float32),
        t,
    )
    return pl.DataFrame(
        {
            "threshold": pl.Series(t, dtype=pl.Float32),
            "n_components": pl.Series(comps, dtype=pl.UInt32),
            "largest_component": pl.Series(largest, dtype=pl.UInt32),
        }
    )


def bridge_similarity(
    n: int,
    src: npt.ArrayLike,
    dst: npt.ArrayLike,
    similarity: npt.ArrayLike,
    labels: npt.ArrayLike,
) -> npt.NDArray[np.float32]:
    """Per cluster, the similarity at which it would first split (single linkage).

    For cluster ``c`` (labels ``0..C-1``; ``-1`` marks noise and is ignored)
    this is the weakest edge of the maximum spanning forest of the edges
    inside ``c``: the largest ``t`` such that ``c`` stays connected using only
    its internal edges with similarity ``>= t``. For components of an
    ε-graph at threshold ``t0`` the bridge is ``>= t0``; one just above
    ``t0`` flags a chain held together by a single weak link, which the
    component's size alone does not show. NaN for singletons and for
    clusters whose internal edges do not connect them.

    Example:
        >>> bridge_similarity(3, [0, 1], [1, 2], [0.95, 0.91], [0, 0, 0]).tolist()
        [0.9100000262260437]

    """
    nn = _as_count(n, "n", minimum=0)
    lab = np.asarray(labels)
    if lab.ndim == 1 and lab.size and lab.dtype.kind not in "iu":
        raise InvalidInputError(f"labels must be integers, got dtype {lab.dtype}")
    return _native.bridge_similarity(
        nn,
        _as_nodes(src, "src"),
        _as_nodes(dst, "dst"),
        _as_vector(similarity, "similarity", np.float32),
        _as_vector(lab, "labels", np.int64),
    )
