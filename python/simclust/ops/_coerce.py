"""Conversion and validation of arguments at the array edge (float32 C-order, ids, counts)."""

from __future__ import annotations

import numbers
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import polars as pl

from simclust import _native
from simclust.exceptions import (
    InvalidInputError,
    ParameterError,
    ShapeError,
)
from simclust.progress import Progress as Progress

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


_T = TypeVar("_T", bound=np.generic)


def _as_vector(x: npt.ArrayLike, name: str, dtype: type[_T]) -> npt.NDArray[_T]:
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


def resolve_threads(n_threads: int | None = None) -> int:
    """The number of threads a kernel runs with for ``n_threads``.

    ``None`` means ``SIMCLUST_NUM_THREADS`` if set, else every core. A count below 1,
    above ``max(256, 4 x cores)``, or an invalid ``SIMCLUST_NUM_THREADS`` raises
    :class:`~simclust.exceptions.ParameterError`: it is never ignored or clipped.

    Example:
        >>> resolve_threads(2)
        2
        >>> resolve_threads(0)
        Traceback (most recent call last):
        ...
        simclust.exceptions.ParameterError: n_threads must be >= 1, got 0

    """
    if n_threads is None:
        return _native.resolve_threads(None)
    n = _as_count(n_threads, "n_threads")
    return _native.resolve_threads(min(n, 2**62))


def _as_threads(n_threads: int | None) -> int | None:
    return None if n_threads is None else resolve_threads(n_threads)


def _as_threshold(threshold: float) -> float:
    t = float(threshold)
    if not -1.0 <= t <= 1.0:
        raise ParameterError(f"threshold must be a cosine similarity in [-1, 1], got {threshold}")
    return t


#
# Labels: one integer per row of ``x``; ``-1`` marks noise (no cluster). Noise rows are
# excluded from every cluster statistic (they are still checked for NaN/zero rows) and
# get null per-row values. Cluster ids need not be ``0..K-1``: gaps are allowed, and
# clusters are reported in ascending id order.

LabelsLike = npt.ArrayLike
"""Integer cluster ids, one per row: ``>= 0`` for a cluster, ``-1`` for noise."""

EdgesLike = tuple[npt.ArrayLike, ...] | pl.DataFrame
"""``(src, dst)`` or ``(src, dst, similarity)`` arrays, or an ``edges`` frame."""

_I64_MAX = np.iinfo(np.int64).max


def _as_labels(labels: LabelsLike) -> npt.NDArray[np.int64]:
    """Labels as int64; non-integer dtypes are an InvalidInputError."""
    a = np.asarray(labels)
    if a.ndim != 1:
        raise ShapeError(f"labels must be a 1-D array (one per row), got shape {a.shape}")
    if a.size and a.dtype.kind not in "iu":
        raise InvalidInputError(
            f"labels must be integer cluster ids (-1 = noise), got dtype {a.dtype}"
        )
    if a.size and a.dtype.kind == "u" and int(a.max()) > _I64_MAX:
        bad = int(np.flatnonzero(a > _I64_MAX)[0])
        raise ParameterError(f"labels[{bad}] = {a[bad]} does not fit in int64")
    return np.ascontiguousarray(a, dtype=np.int64)


def _edge_ends(edges: EdgesLike) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    if isinstance(edges, pl.DataFrame):
        missing = {"src", "dst"} - set(edges.columns)
        if missing:
            raise ShapeError(f"the edges frame lacks the column(s) {sorted(missing)}")
        src: npt.ArrayLike = edges["src"].to_numpy()
        dst: npt.ArrayLike = edges["dst"].to_numpy()
    else:
        if len(edges) not in (2, 3):
            raise ShapeError(
                f"edges must be (src, dst) or (src, dst, similarity), got {len(edges)} arrays"
            )
        src, dst = edges[0], edges[1]
    return _as_nodes(src, "src"), _as_nodes(dst, "dst")


_U64_MAX = 2**64 - 1


def _as_seed(value: int, name: str = "random_state") -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or not 0 <= int(value) <= _U64_MAX
    ):
        raise ParameterError(f"{name} must be an integer in [0, 2**64 - 1], got {value!r}")
    return int(value)
