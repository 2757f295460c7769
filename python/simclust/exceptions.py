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

from typing import TYPE_CHECKING, Any

__all__ = [
    "ClusteringWarning",
    "ConfigError",
    "DistributedError",
    "InvalidInputError",
    "NotFittedError",
    "OutOfMemoryError",
    "ParameterError",
    "PluginError",
    "ShapeError",
    "SimclustError",
    "UnknownNameError",
]


class SimclustError(Exception):
    """Base class of every error simclust raises on purpose."""


class ShapeError(SimclustError, ValueError):
    """An array has the wrong number of dimensions, is empty, or lengths disagree."""


class InvalidInputError(SimclustError, ValueError):
    """The data holds values simclust cannot use (NaN/Inf, zero-norm rows, non-numeric)."""


class ParameterError(SimclustError, ValueError):
    """A parameter is out of range (k, threshold, n_threads, node ids, labels)."""


class OutOfMemoryError(SimclustError, MemoryError):
    """A result would not fit in memory; raised before the work starts."""


class UnknownNameError(ParameterError, KeyError):
    """A strategy, metric, loader or embedder name no plugin registered.

    The message lists the available names and the plugin that provides each.
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(ParameterError):
    """A configuration file or mapping is invalid; the message names the key path."""


class PluginError(SimclustError):
    """A plugin failed to import, to register or to run; the message names it."""


class DistributedError(SimclustError):
    """A task of a distributed run failed for good (after the backend's retries).

    The message names the backend, the stage and the task (the block pair or shard).
    """


if TYPE_CHECKING:
    import sklearn.exceptions

    class NotFittedError(SimclustError, sklearn.exceptions.NotFittedError):
        """An estimator was used (``predict``, a learned attribute) before ``fit``."""


def __getattr__(name: str) -> Any:
    """Define :class:`NotFittedError` on first use, so ``import simclust`` stays light.

    It subclasses scikit-learn's ``NotFittedError`` (a ``ValueError`` and an
    ``AttributeError``) so that scikit-learn's tools recognise it; importing
    scikit-learn costs most of a second, paid only by code that uses the estimators.

    Example:
        >>> import sklearn.exceptions
        >>> issubclass(NotFittedError, sklearn.exceptions.NotFittedError)
        True

    """
    if name == "NotFittedError":
        from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

        cls = type(
            "NotFittedError",
            (SimclustError, _SklearnNotFittedError),
            {
                "__doc__": "An estimator was used (``predict``, a learned attribute) "
                "before ``fit``.",
                "__module__": __name__,
            },
        )
        globals()["NotFittedError"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ClusteringWarning(UserWarning):
    """A clustering finished with a caveat, e.g. fewer non-empty clusters than requested."""
