"""Cosine similarities of given pairs of rows."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from simclust.exceptions import ParameterError, ShapeError
from simclust.ops._coerce import _as_matrix, _as_nodes

_BLOCK = 8192
"""Pairs per block: two gathered float64 blocks of 8192 x D rows (25 MB each at D = 384)."""


def pair_similarity(
    x: npt.ArrayLike, a: npt.ArrayLike, b: npt.ArrayLike
) -> npt.NDArray[np.float32]:
    """The cosine similarity of rows ``a[i]`` and ``b[i]`` of ``x``, for every ``i``.

    Each is computed in float64 (the dot product over the two rows' norms) and rounded
    once to float32, as the kNN lists' similarities are, so rows of the same direction
    have similarity exactly 1.0. Only the rows named are read, a block of pairs at a
    time: memory does not grow with the number of pairs.

    Raises:
        ShapeError: ``a`` and ``b`` differ in length; ``x`` is not 2-D.
        ParameterError: an index outside ``0..N-1``.

    Example:
        >>> pair_similarity([[1.0, 0.0], [3.0, 4.0], [-2.0, 0.0]], [0, 0, 1], [1, 2, 1]).tolist()
        [0.6000000238418579, -1.0, 1.0]

    """
    xm = _as_matrix(x, "X")
    ia, ib = _as_nodes(a, "a"), _as_nodes(b, "b")
    if ia.shape != ib.shape:
        raise ShapeError(f"a and b must have the same length, got {ia.size} and {ib.size}")
    n = int(xm.shape[0])
    for name, idx in (("a", ia), ("b", ib)):
        if idx.size and int(idx.max()) >= n:
            bad = int(np.flatnonzero(idx >= n)[0])
            raise ParameterError(f"{name}[{bad}] = {idx[bad]} is not a row of X ({n} rows)")
    out = np.empty(ia.size, np.float32)
    for start in range(0, ia.size, _BLOCK):
        xa = xm[ia[start : start + _BLOCK]].astype(np.float64)
        xb = xm[ib[start : start + _BLOCK]].astype(np.float64)
        dot = np.einsum("ij,ij->i", xa, xb)
        norms = np.sqrt(np.einsum("ij,ij->i", xa, xa) * np.einsum("ij,ij->i", xb, xb))
        out[start : start + _BLOCK] = np.clip(dot / norms, -1.0, 1.0)
    return out
