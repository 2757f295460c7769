"""Conformance checks for strategy plugins: :func:`check_strategy`, :func:`strategy_checks`.

A strategy is a :class:`simclust.base.Strategy` subclass, or any class with named
``__init__`` parameters, ``fit(X)`` and ``labels_`` (:class:`simclust.base.StrategyLike`),
such as a scikit-learn clusterer. The public module is :mod:`simclust.testing.checks`
(import these from :mod:`simclust.testing`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from simclust.base import Graph, GraphSpec, check_plugin_class, strategy_graph_spec
from simclust.testing._check_common import (
    _DATA,
    Check,
    _check_init_stores_params,
    _check_parameters,
    _check_set_params,
    _CheckError,
    _cls,
    _data,
    _instance,
    _readonly,
    _wrap,
)

__all__ = ["check_strategy", "strategy_checks"]


def _graph_for(inst: Any, X: npt.NDArray[np.float32]) -> Graph | None:  # noqa: N803
    from simclust.graph import build_graph

    spec = strategy_graph_spec(inst)
    return None if spec is None else build_graph(X, spec)


def _fit(inst: Any, X: npt.NDArray[np.float32], graph: Graph | None = None) -> Any:  # noqa: N803
    """Fit like the pipeline: with the graph the strategy's ``graph_spec`` asks for.

    ``fit(X, graph=graph)`` when it asks for one, else ``fit(X)`` (as
    :func:`simclust.base.fit_strategy` calls it); returns what ``fit`` returned.
    """
    if graph is None:
        graph = _graph_for(inst, X)
    return inst.fit(X) if graph is None else inst.fit(X, graph=graph)


def _labels(inst: Any, n: int) -> npt.NDArray[np.int64]:
    if not hasattr(inst, "labels_"):
        raise _CheckError("fit did not set labels_")
    lab = inst.labels_
    if not isinstance(lab, np.ndarray):
        raise _CheckError(f"labels_ is a {type(lab).__name__}, expected a numpy array")
    if lab.shape != (n,):
        raise _CheckError(f"labels_ has shape {lab.shape}, expected ({n},) (one label per row)")
    if lab.dtype != np.int64:
        raise _CheckError(f"labels_ has dtype {lab.dtype}, expected int64")
    if lab.size and int(lab.min()) < -1:
        raise _CheckError(f"labels_ has values below -1 (min {int(lab.min())}); noise is -1")
    return lab


def _check_no_labels_before_fit(obj: Any) -> None:
    inst = _instance(obj)
    if hasattr(inst, "labels_"):
        raise _CheckError("labels_ exists before fit; only fit may set learned attributes")


def _check_strategy_interface(obj: Any) -> None:
    """A class with what a strategy needs (no base class required): ``fit``, named params."""
    try:
        check_plugin_class("strategy", _cls(obj))
    except TypeError as exc:
        raise _CheckError(str(exc)) from exc


def _check_graph_spec(obj: Any) -> None:
    spec = strategy_graph_spec(_instance(obj))
    if spec is not None and not isinstance(spec, GraphSpec):
        raise _CheckError(f"graph_spec() returned {type(spec).__name__}, not GraphSpec/None")


def _check_fit_float32_embeddings(obj: Any) -> None:
    X, _ = _data()  # noqa: N806
    try:
        _fit(_instance(obj), X)
    except _CheckError:
        raise
    except Exception as exc:
        raise _CheckError(
            f"fit raised {type(exc).__name__}: {exc} on {_DATA} (float32, unit rows)"
        ) from exc


def _check_fit_returns_self(obj: Any) -> None:
    X, _ = _data()  # noqa: N806
    inst = _instance(obj)
    ret = _fit(inst, X)
    if ret is not inst:
        raise _CheckError(f"fit returned {type(ret).__name__} {ret!r:.60}, expected self")


def _check_labels(obj: Any) -> None:
    X, _ = _data()  # noqa: N806
    inst = _instance(obj)
    _fit(inst, X)
    _labels(inst, len(X))


def _check_fit_with_graph(obj: Any) -> None:
    """A graph of the declared spec is accepted; without one, the result is the same."""
    X, _ = _data()  # noqa: N806
    inst = _instance(obj)
    graph = _graph_for(inst, X)
    if graph is None:
        raise _CheckError("graph_spec() returned None")
    _fit(inst, X, graph)
    with_graph = _labels(inst, len(X)).copy()
    try:
        alone = _instance(obj).fit(X)
    except Exception:
        return  # a strategy may require its graph: the pipeline always passes it
    if hasattr(alone, "labels_") and not np.array_equal(alone.labels_, with_graph):
        raise _CheckError("fit(X, graph=<graph of graph_spec()>) and fit(X) give different labels_")


def _check_strategy_deterministic(obj: Any) -> None:
    X, _ = _data()  # noqa: N806
    first = _labels(_fit(_instance(obj), X), len(X)).copy()
    second = _labels(_fit(_instance(obj), X.copy()), len(X))
    if not np.array_equal(first, second):
        raise _CheckError("two fits on the same data gave different labels_ (seed randomness)")
    inst = _instance(obj)
    _fit(inst, X)
    _fit(inst, X)
    if not np.array_equal(_labels(inst, len(X)), first):
        raise _CheckError("refitting the same instance gave different labels_")


def _check_strategy_does_not_modify_x(obj: Any) -> None:
    X, _ = _data()  # noqa: N806
    inst = _instance(obj)
    graph = _graph_for(inst, X)
    before = X.copy()
    arrays = [X] if graph is None else [X, graph.src, graph.dst, graph.similarity]
    saved = [a.copy() for a in arrays]
    _readonly(*arrays)
    try:
        _fit(inst, X, graph)
    except ValueError as exc:
        if "read-only" in str(exc) or "readonly" in str(exc):
            raise _CheckError(f"fit writes into its input X or graph: {exc}") from exc
        raise
    if not np.array_equal(X, before) or not all(
        np.array_equal(a, s) for a, s in zip(arrays, saved, strict=True)
    ):
        raise _CheckError("fit modified its input X or graph")


def strategy_checks(obj: Any, *, name: str | None = None) -> Iterator[tuple[str, Check]]:
    """Yield ``(check_name, check)`` for a strategy class or instance, in run order.

    Each ``check`` is called with the class or instance (``check(obj)``) and raises
    :class:`AssertionError` naming the check and the class when it fails.
    ``check_fit_with_graph`` is included only when ``graph_spec()`` is not ``None``.

    Args:
        obj: a :class:`~simclust.base.Strategy` subclass (default-constructed) or an
            instance (its ``get_params()`` are used for every fresh copy).
        name: the registered name, used in failure messages.

    Example:
        >>> from simclust import KMeans
        >>> names = [n for n, _ in strategy_checks(KMeans(n_clusters=3))]
        >>> "check_labels" in names, "check_fit_with_graph" in names
        (True, False)

    """
    try:
        graph = strategy_graph_spec(_instance(obj)) is not None
    except Exception:
        graph = True  # let the checks report the failure
    steps: list[tuple[str, Check]] = [
        ("check_interface", _check_strategy_interface),
        ("check_parameters", _check_parameters),
        ("check_init_stores_params", _check_init_stores_params),
        ("check_set_params", _check_set_params),
        ("check_no_labels_before_fit", _check_no_labels_before_fit),
        ("check_graph_spec", _check_graph_spec),
        ("check_fit_float32_embeddings", _check_fit_float32_embeddings),
        ("check_fit_returns_self", _check_fit_returns_self),
        ("check_labels", _check_labels),
    ]
    if graph:
        steps.append(("check_fit_with_graph", _check_fit_with_graph))
    steps += [
        ("check_deterministic", _check_strategy_deterministic),
        ("check_does_not_modify_X", _check_strategy_does_not_modify_x),
    ]
    for check_name, fn in steps:
        yield check_name, _wrap(check_name, "strategy", name, fn)


def check_strategy(cls_or_instance: Any, *, name: str | None = None) -> None:
    """Run every strategy check on a class or instance; raise on the first failure.

    The checks fit on ``make_embeddings(60, 8, n_clusters=3, seed=0)`` (float32, unit
    rows, one noise row), always passing the graph ``graph_spec()`` asks for, as the
    pipeline does.

    Args:
        cls_or_instance: a :class:`~simclust.base.Strategy` subclass or instance.
        name: the registered name, used in failure messages.

    Raises:
        AssertionError: ``"<check> failed for strategy <name> (<Class>): <why>"``.

    Example:
        >>> import numpy as np
        >>> from simclust.base import Strategy
        >>> class FirstRowAlone(Strategy):
        ...     def fit(self, X, *, graph=None):
        ...         self.labels_ = (np.arange(len(X)) > 0).astype(np.int64)
        ...         return self
        >>> check_strategy(FirstRowAlone, name="first-row-alone")
        >>> class WrongShape(FirstRowAlone):
        ...     def fit(self, X, *, graph=None):
        ...         self.labels_ = np.zeros(len(X) - 1, dtype=np.int64)
        ...         return self
        >>> check_strategy(WrongShape)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        AssertionError: check_labels failed for strategy WrongShape: labels_ has shape (59,), ...

    """
    for _, check in strategy_checks(cls_or_instance, name=name):
        check(cls_or_instance)
