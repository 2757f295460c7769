"""Exceptions raised by simclust.

Every error simclust raises on purpose derives from :class:`SimclustError`.
Errors about the caller's data or arguments also derive from
:class:`ValueError`, so generic ``except ValueError`` code keeps working.

Example:
    >>> import numpy as np
    >>> import simclust.ops
    >>> try:
    ...     simclust.ops.knn(np.zeros((3, 2)), 1)
    ... except InvalidInputError as e:
    ...     print(e)
    X has 3 row(s) of zero norm (cosine similarity is undefined for them): 0, 1, 2

"""

from __future__ import annotations

__all__ = [
    "ClusteringWarning",
    "InvalidInputError",
    "NotFittedError",
    "ParameterError",
    "ShapeError",
    "SimclustError",
]


class SimclustError(Exception):
    """Base class of every error simclust raises on purpose."""


class ShapeError(SimclustError, ValueError):
    """An array has the wrong number of dimensions, is empty, or lengths disagree."""


class InvalidInputError(SimclustError, ValueError):
    """The data holds values simclust cannot use (NaN/Inf, zero-norm rows, non-numeric)."""


class ParameterError(SimclustError, ValueError):
    """A parameter is out of range (k, threshold, n_threads, node ids, labels)."""


class NotFittedError(SimclustError, ValueError, AttributeError):
    """An estimator was used (``predict``, a learned attribute) before ``fit``."""


class ClusteringWarning(UserWarning):
    """A clustering finished with a caveat, e.g. fewer non-empty clusters than requested."""
