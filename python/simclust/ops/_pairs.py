"""Cosine similarities of given pairs of rows."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from simclust import _native
from simclust.ops._coerce import _as_matrix, _as_nodes, _as_threads


def pair_similarity(
    x: npt.ArrayLike, a: npt.ArrayLike, b: npt.ArrayLike, *, n_threads: int | None = None
) -> npt.NDArray[np.float32]:
    """The cosine similarity of rows ``a[i]`` and ``b[i]`` of ``x``, for every ``i``.

    The value the kNN searches list for the same pair, bit for bit: both rows scaled to
    unit norm as the searches scale them, then their cosine in float64 rounded once to
    float32, so rows of the same direction have similarity exactly 1.0. Only the rows
    named are read.

    Raises:
        ShapeError: ``a`` and ``b`` differ in length; ``x`` is not 2-D.
        ParameterError: an index outside ``0..N-1``.
        InvalidInputError: a named row of zero norm or with NaN/Inf.

    Example:
        >>> pair_similarity([[1.0, 0.0], [3.0, 4.0], [-2.0, 0.0]], [0, 0, 1], [1, 2, 1]).tolist()
        [0.6000000238418579, -1.0, 1.0]

    """
    xm = _as_matrix(x, "X")
    ia, ib = _as_nodes(a, "a"), _as_nodes(b, "b")
    return _native.pair_similarity(xm, ia, ib, n_threads=_as_threads(n_threads))
