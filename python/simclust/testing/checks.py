"""Conformance checks for strategy and metric plugins, and a host builder for tests.

A plugin's classes are checked against the contracts of :class:`simclust.base.Strategy`
and :class:`simclust.base.Metric` by small named checks run in order (modelled on
scikit-learn's ``check_estimator``). A failing check raises :class:`AssertionError`
whose message starts with the check's name and names the class::

    check_labels failed for strategy 'my-strategy' (MyStrategy): labels_ has shape (59,), ...

Use :func:`check_strategy` / :func:`check_metric` in one test, or
:func:`parametrize_with_checks` to get one pytest test per check. Every check runs on
seeded, unit-normalised float32 data from :func:`simclust.testing.make_embeddings`.

Example:
    >>> from simclust.default_plugins.strategies import ConnectedComponents
    >>> check_strategy(ConnectedComponents)
    >>> [name for name, _ in strategy_checks(ConnectedComponents)][:3]
    ['check_base_class', 'check_parameters', 'check_init_stores_params']

"""

from __future__ import annotations

import contextvars
import inspect
import types
import typing
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from simclust import frames
from simclust.base import Graph, GraphSpec, Metric, MetricContext, Param, Strategy, parameters
from simclust.exceptions import ParameterError, PluginError
from simclust.host import BUILTIN_PLUGIN, Host, PluginInfo, build_host, get_plugin_manager
from simclust.testing.datasets import make_embeddings

if TYPE_CHECKING:
    import pytest

__all__ = [
    "check_metric",
    "check_strategy",
    "make_host",
    "metric_checks",
    "parametrize_with_checks",
    "strategy_checks",
]

Check = Callable[[Any], None]
"""A check: ``check(cls_or_instance)``; raises :class:`AssertionError` when it fails."""

_N, _D, _K, _SEED = 60, 8, 3, 0
"""The checks' data: ``make_embeddings(60, 8, n_clusters=3, seed=0)``."""

_DATA = f"make_embeddings({_N}, {_D}, n_clusters={_K}, seed={_SEED})"


class _CheckError(Exception):
    """A check's own finding (turned into an AssertionError naming check and class)."""


# --------------------------------------------------------------------------- data


def _data() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Fresh (writable) copies of the checks' embeddings and ground-truth labels."""
    X, y = make_embeddings(_N, _D, n_clusters=_K, seed=_SEED, return_labels=True)  # noqa: N806
    return np.ascontiguousarray(X, dtype=np.float32), y.astype(np.int64)


def _noisy_labels(y: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """``y`` with rows 0 and 1 as noise (-1) and row 2 a singleton cluster of its own."""
    out = y.copy()
    out[[0, 1]] = -1
    out[2] = int(y.max()) + 1
    return out


def _readonly(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.flags.writeable = False


# --------------------------------------------------------------------------- helpers


def _cls(obj: Any) -> Any:
    return obj if isinstance(obj, type) else type(obj)


def _subject(kind: str, obj: Any, name: str | None) -> str:
    cls_name = _cls(obj).__name__
    return f"{kind} {name!r} ({cls_name})" if name else f"{kind} {cls_name}"


def _instance(obj: Any) -> Any:
    """A fresh, unfitted instance: default-constructed, or a clone of ``obj``'s params."""
    cls = _cls(obj)
    if isinstance(obj, type):
        try:
            return cls()
        except Exception as exc:
            raise _CheckError(
                f"cannot construct {cls.__qualname__}() with its defaults "
                f"({type(exc).__name__}: {exc}); pass an instance to check instead"
            ) from exc
    return cls(**obj.get_params())


def _params(obj: Any) -> tuple[Param, ...]:
    try:
        return parameters(_cls(obj))
    except TypeError as exc:
        raise _CheckError(str(exc)) from exc


def _other_value(annotation: Any, default: Any) -> tuple[bool, Any]:
    """A value of type ``annotation`` different from ``default`` (``(False, None)``: none)."""
    empty = default is inspect.Parameter.empty
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        for a in args:
            if empty or a != default:
                return True, a
        return False, None
    if origin in (typing.Union, types.UnionType):
        for a in args:
            if a is type(None):
                continue
            ok, value = _other_value(a, default if _fits(default, a) else inspect.Parameter.empty)
            if ok:
                return True, value
        if type(None) in args and not empty and default is not None:
            return True, None
        return False, None
    if annotation is bool:
        return True, (not default) if isinstance(default, bool) else True
    if annotation is int:
        ok = isinstance(default, int) and not isinstance(default, bool)
        return True, default + 1 if ok else 1
    if annotation is float:
        if isinstance(default, int | float) and not isinstance(default, bool) and default:
            return True, float(default) / 2
        return True, 0.5
    if annotation is str:
        return True, f"{default}-other" if isinstance(default, str) else "other"
    return False, None


def _fits(value: Any, annotation: Any) -> bool:
    if annotation in (int, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(annotation, type) and isinstance(value, annotation)


def _same(a: Any, b: Any) -> bool:
    """Stored verbatim: the same object, or an equal value of the same type."""
    if a is b:
        return True
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


def _wrap(check_name: str, kind: str, name: str | None, fn: Check) -> Check:
    def check(obj: Any) -> None:
        try:
            fn(obj)
        except _CheckError as exc:
            raise AssertionError(
                f"{check_name} failed for {_subject(kind, obj, name)}: {exc}"
            ) from None
        except Exception as exc:
            raise AssertionError(
                f"{check_name} failed for {_subject(kind, obj, name)}: {type(exc).__name__}: {exc}"
            ) from exc

    check.__name__ = check.__qualname__ = check_name
    return check


# --------------------------------------------------------------------------- shared checks


def _check_base_class(base: type) -> Check:
    def run(obj: Any) -> None:
        cls = _cls(obj)
        if not issubclass(cls, base):
            raise _CheckError(f"{cls.__qualname__} does not subclass simclust.base.{base.__name__}")
        if inspect.isabstract(cls):
            missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
            raise _CheckError(f"{cls.__qualname__} does not implement {missing}")

    return run


def _check_parameters(obj: Any) -> None:
    """Keyword-only annotated parameters whose defaults fit their annotations."""
    from simclust.base import check_value

    for p in _params(obj):
        if not p.required:
            try:
                check_value(_cls(obj).__qualname__, p, p.default)
            except ParameterError as exc:
                raise _CheckError(f"the default of {p.name!r} does not fit: {exc}") from exc


def _check_init_stores_params(obj: Any) -> None:
    """``__init__`` stores every parameter verbatim under its own name."""
    cls = _cls(obj)
    params = _params(obj)
    if isinstance(obj, type):
        base = dict(_instance(obj).get_params())
        want = {p.name: p.default for p in params}
        for key, value in want.items():
            if not _same(base.get(key, inspect.Parameter.empty), value):
                raise _CheckError(
                    f"{cls.__qualname__}() stores {key}={base.get(key)!r}, "
                    f"but the default is {value!r}; __init__ must store parameters unchanged"
                )
    else:
        base = dict(obj.get_params())
    for p in params:
        ok, value = _other_value(p.annotation, base.get(p.name, p.default))
        if not ok:
            continue
        kwargs = {**base, p.name: value}
        try:
            got = cls(**kwargs).get_params()[p.name]
        except AttributeError as exc:
            raise _CheckError(
                f"__init__ does not store parameter {p.name!r} as self.{p.name} ({exc})"
            ) from exc
        if not _same(got, value):
            raise _CheckError(
                f"{cls.__qualname__}({p.name}={value!r}).get_params()[{p.name!r}] is {got!r}; "
                "__init__ must store parameters unchanged (validate them in fit)"
            )
    public_learned = [k for k in vars(_instance(obj)) if k.endswith("_") and not k.startswith("_")]
    if public_learned:
        raise _CheckError(f"__init__ sets learned attribute(s) {public_learned}; set them in fit")


def _check_set_params(obj: Any) -> None:
    """``set_params`` round-trips, returns self, and rejects unknown names."""
    inst = _instance(obj)
    params = dict(inst.get_params())
    if inst.set_params(**params) is not inst:
        raise _CheckError("set_params(...) must return self")
    if dict(inst.get_params()) != params:
        raise _CheckError("set_params(**get_params()) changed get_params()")
    for p in _params(obj):
        ok, value = _other_value(p.annotation, params.get(p.name, p.default))
        if ok:
            got = inst.set_params(**{p.name: value}).get_params()[p.name]
            if not _same(got, value):
                raise _CheckError(f"set_params({p.name}={value!r}) left {p.name}={got!r}")
    try:
        inst.set_params(no_such_parameter_xyz=1)
    except ParameterError:
        pass
    except Exception as exc:
        raise _CheckError(
            f"set_params(no_such_parameter_xyz=1) raised {type(exc).__name__}, "
            "expected simclust.ParameterError"
        ) from exc
    else:
        raise _CheckError("set_params(no_such_parameter_xyz=1) did not raise ParameterError")


# --------------------------------------------------------------------------- strategies


def _graph_for(inst: Strategy, X: npt.NDArray[np.float32]) -> Graph | None:  # noqa: N803
    from simclust.default_plugins.strategies import build_graph

    spec = inst.graph_spec()
    return None if spec is None else build_graph(X, spec)


def _fit(inst: Strategy, X: npt.NDArray[np.float32], graph: Graph | None = None) -> Any:  # noqa: N803
    """Fit like the pipeline: with the graph the strategy's ``graph_spec`` asks for."""
    if graph is None:
        graph = _graph_for(inst, X)
    return inst.fit(X, graph=graph)


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


def _check_graph_spec(obj: Any) -> None:
    spec = _instance(obj).graph_spec()
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
    with_graph = _labels(inst.fit(X, graph=graph), len(X)).copy()
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
        inst.fit(X, graph=graph)
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
        >>> from simclust.default_plugins.strategies import KMeansStrategy
        >>> names = [n for n, _ in strategy_checks(KMeansStrategy(n_clusters=3))]
        >>> "check_labels" in names, "check_fit_with_graph" in names
        (True, False)

    """
    graph = True
    if isinstance(_cls(obj), type) and issubclass(_cls(obj), Strategy):
        try:
            graph = _instance(obj).graph_spec() is not None
        except Exception:
            graph = True  # let the checks report the failure
    steps: list[tuple[str, Check]] = [
        ("check_base_class", _check_base_class(Strategy)),
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


# --------------------------------------------------------------------------- metrics


RowsFactory = Callable[[npt.NDArray[np.int64]], pl.DataFrame]
"""``rows(labels) -> frame``: the per-row input columns a metric needs, for given labels."""

_ROWS: contextvars.ContextVar[RowsFactory | None] = contextvars.ContextVar(
    "simclust_check_rows", default=None
)


def _metric_ctx(
    obj: Any,
    X: npt.NDArray[np.float32],  # noqa: N803
    labels: npt.NDArray[np.int64],
    spec: GraphSpec | None = None,
) -> MetricContext:
    from simclust.default_plugins.strategies import build_graph

    graph = None
    if _cls(obj).needs_graph:
        graph = build_graph(X, spec or GraphSpec("knn", k=min(10, len(X) - 1)))
    factory = _ROWS.get()
    rows = None if factory is None else factory(labels.copy())
    return MetricContext(X, labels, graph, [str(i) for i in range(len(X))], rows)


def _compute(obj: Any, ctx: MetricContext) -> Mapping[str, Any]:
    out = _instance(obj).compute(ctx)
    if not isinstance(out, Mapping):
        raise _CheckError(f"compute returned {type(out).__name__}, expected a mapping")
    return out


def _check_output_frames(obj: Any, out: Mapping[str, Any], labels: npt.NDArray[np.int64]) -> None:
    """Exactly the declared frames with their exact schemas, plus declared arrays only."""
    cls = _cls(obj)
    declared: Mapping[str, Mapping[str, pl.DataType]] = cls.outputs
    arrays: tuple[str, ...] = tuple(cls.arrays)
    missing = sorted(set(declared) - set(out))
    if missing:
        raise _CheckError(f"compute did not return the declared frame(s) {missing}")
    extra = sorted(set(out) - set(declared) - set(arrays))
    if extra:
        raise _CheckError(f"compute returned {extra}, not declared in outputs or arrays")
    for key, value in out.items():
        if key in declared:
            if not isinstance(value, pl.DataFrame):
                raise _CheckError(f"frame {key!r} is a {type(value).__name__}, not a DataFrame")
            if dict(value.schema) != dict(declared[key]):
                raise _CheckError(
                    f"frame {key!r} has schema {dict(value.schema)}, "
                    f"but outputs declares {dict(declared[key])}"
                )
        elif not isinstance(value, np.ndarray):
            raise _CheckError(f"array {key!r} is a {type(value).__name__}, not a numpy array")
    if "clusters" in out:
        _check_clusters(out["clusters"], labels)
    if "assignments" in out:
        _check_assignments(out["assignments"], len(labels))


def _check_clusters(df: pl.DataFrame, labels: npt.NDArray[np.int64]) -> None:
    ids = df["cluster"]
    if ids.null_count():
        raise _CheckError("frame 'clusters' has null cluster ids")
    values = ids.to_numpy()
    if (values < 0).any():
        raise _CheckError("frame 'clusters' has a row for cluster -1 (noise is not a cluster)")
    if len(np.unique(values)) != len(values):
        raise _CheckError("frame 'clusters' repeats cluster ids (one row per cluster)")
    if not bool(np.all(np.diff(values) > 0)):
        raise _CheckError("frame 'clusters' is not sorted by cluster (ascending)")
    unknown = sorted(set(values.tolist()) - set(labels[labels >= 0].tolist()))
    if unknown:
        raise _CheckError(f"frame 'clusters' has cluster ids not in the labels: {unknown[:5]}")


def _check_assignments(df: pl.DataFrame, n: int) -> None:
    if df.height != n:
        raise _CheckError(f"frame 'assignments' has {df.height} rows, expected one per row ({n})")
    if df["index"].to_list() != list(range(n)):
        raise _CheckError("frame 'assignments' column 'index' is not 0..N-1 in order")


def _check_outputs_declared(obj: Any) -> None:
    cls = _cls(obj)
    outputs, arrays = cls.outputs, cls.arrays
    if not isinstance(outputs, Mapping) or not isinstance(arrays, tuple):
        raise _CheckError("outputs must be a mapping and arrays a tuple of names")
    if not outputs and not arrays:
        raise _CheckError("the metric declares no outputs and no arrays")
    if not isinstance(cls.needs_graph, bool):
        raise _CheckError("needs_graph must be a bool")
    both = sorted(set(outputs) & set(arrays))
    if both:
        raise _CheckError(f"{both} declared both as frame and as array")
    for key, schema in outputs.items():
        if not isinstance(key, str) or not isinstance(schema, Mapping) or not schema:
            raise _CheckError(f"outputs[{key!r}] must map column names to polars dtypes")
        for col, dtype in schema.items():
            if not isinstance(dtype, pl.DataType) and not (
                isinstance(dtype, type) and issubclass(dtype, pl.DataType)
            ):
                raise _CheckError(f"outputs[{key!r}][{col!r}] is {dtype!r}, not a polars dtype")
    keys = {
        "clusters": ("cluster", pl.Int64(), {"size"}),
        "assignments": ("index", pl.UInt32(), {"id", "cluster"}),
    }
    for frame, (key, dtype, reserved) in keys.items():
        if frame in outputs:
            schema = outputs[frame]
            if schema.get(key) != dtype:
                raise _CheckError(f"outputs[{frame!r}] must have the key column {key!r}: {dtype}")
            clash = sorted(reserved & set(schema))
            if clash:
                raise _CheckError(f"outputs[{frame!r}] declares {clash}, which simclust provides")
    INTER = dict(frames.INTER_SCHEMA)  # noqa: N806
    if "inter" in outputs and dict(outputs["inter"]) != INTER:
        raise _CheckError(f"outputs['inter'] must be simclust.frames.INTER_SCHEMA {INTER}")


def _check_compute_returns_declared(obj: Any) -> None:
    X, y = _data()  # noqa: N806
    _check_output_frames(obj, _compute(obj, _metric_ctx(obj, X, y)), y)


def _check_noise_and_singleton(obj: Any) -> None:
    X, y = _data()  # noqa: N806
    labels = _noisy_labels(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = _compute(obj, _metric_ctx(obj, X, labels))
        except _CheckError:
            raise
        except Exception as exc:
            raise _CheckError(
                f"compute raised {type(exc).__name__}: {exc} with noise rows (-1) "
                "and a singleton cluster"
            ) from exc
    _check_output_frames(obj, out, labels)


def _check_needs_graph(obj: Any) -> None:
    """A graph metric works with either kind of graph the pipeline may build."""
    X, y = _data()  # noqa: N806
    ctx = _metric_ctx(obj, X, y, GraphSpec("threshold", threshold=0.5))
    _check_output_frames(obj, _compute(obj, ctx), y)


def _equal_outputs(a: Mapping[str, Any], b: Mapping[str, Any]) -> str | None:
    from polars.testing import assert_frame_equal

    if set(a) != set(b):
        return f"returned {sorted(a)} then {sorted(b)}"
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, pl.DataFrame) and isinstance(y, pl.DataFrame):
            try:
                assert_frame_equal(x, y, check_exact=True)
            except AssertionError:
                return f"frame {key!r} differs"
        elif not np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True):
            return f"array {key!r} differs"
    return None


def _check_metric_deterministic(obj: Any) -> None:
    X, y = _data()  # noqa: N806
    first = _compute(obj, _metric_ctx(obj, X, y))
    second = _compute(obj, _metric_ctx(obj, X.copy(), y.copy()))
    diff = _equal_outputs(first, second)
    if diff:
        raise _CheckError(f"two computes on the same context differ: {diff}")


def _check_metric_does_not_modify_x(obj: Any) -> None:
    X, y = _data()  # noqa: N806
    ctx = _metric_ctx(obj, X, y)
    arrays: list[np.ndarray] = [X, y]
    if ctx.graph is not None:
        arrays += [ctx.graph.src, ctx.graph.dst, ctx.graph.similarity]
    saved = [a.copy() for a in arrays]
    _readonly(*arrays)
    try:
        _instance(obj).compute(ctx)
    except ValueError as exc:
        if "read-only" in str(exc) or "readonly" in str(exc):
            raise _CheckError(f"compute writes into ctx.X, ctx.labels or ctx.graph: {exc}") from exc
        raise
    if not all(np.array_equal(a, s) for a, s in zip(arrays, saved, strict=True)):
        raise _CheckError("compute modified ctx.X, ctx.labels or ctx.graph")


def metric_checks(
    obj: Any, *, name: str | None = None, rows: RowsFactory | None = None
) -> Iterator[tuple[str, Check]]:
    """Yield ``(check_name, check)`` for a metric class or instance, in run order.

    ``check_needs_graph`` is included only for metrics with ``needs_graph = True``
    (they always get a graph in the other checks too, as in the pipeline).

    Args:
        obj: a :class:`~simclust.base.Metric` subclass (default-constructed) or an
            instance (its ``get_params()`` are used for every fresh copy).
        name: the registered name, used in failure messages.
        rows: for metrics that read per-row input columns (``ctx.rows``, e.g. class
            annotations): ``rows(labels)`` returns that frame for the check's labels.

    Example:
        >>> from simclust.default_plugins.metrics import Edge, Intra
        >>> "check_needs_graph" in dict(metric_checks(Edge)), len(list(metric_checks(Intra)))
        (True, 9)

    """
    cls = _cls(obj)
    steps: list[tuple[str, Check]] = [
        ("check_base_class", _check_base_class(Metric)),
        ("check_parameters", _check_parameters),
        ("check_init_stores_params", _check_init_stores_params),
        ("check_set_params", _check_set_params),
        ("check_outputs_declared", _check_outputs_declared),
        ("check_compute_returns_declared", _check_compute_returns_declared),
        ("check_noise_and_singleton", _check_noise_and_singleton),
    ]
    if getattr(cls, "needs_graph", False) is True:
        steps.append(("check_needs_graph", _check_needs_graph))
    steps += [
        ("check_deterministic", _check_metric_deterministic),
        ("check_does_not_modify_X", _check_metric_does_not_modify_x),
    ]
    for check_name, fn in steps:
        yield check_name, _wrap(check_name, "metric", name, _with_rows(fn, rows))


def _with_rows(fn: Check, rows: RowsFactory | None) -> Check:
    def run(obj: Any) -> None:
        token = _ROWS.set(rows)
        try:
            fn(obj)
        finally:
            _ROWS.reset(token)

    return run


def check_metric(
    cls_or_instance: Any, *, name: str | None = None, rows: RowsFactory | None = None
) -> None:
    """Run every metric check on a class or instance; raise on the first failure.

    The checks compute on ``make_embeddings(60, 8, n_clusters=3, seed=0)`` with its
    ground-truth labels (and, for ``check_noise_and_singleton``, two rows turned into
    noise and one into a singleton cluster); metrics with ``needs_graph`` get a kNN
    graph (k=10), and a threshold graph in ``check_needs_graph``.

    Args:
        cls_or_instance: a :class:`~simclust.base.Metric` subclass or instance.
        name: the registered name, used in failure messages.
        rows: ``rows(labels) -> frame`` of per-row input columns, for metrics that read
            ``ctx.rows`` (see :func:`metric_checks`).

    Raises:
        AssertionError: ``"<check> failed for metric <name> (<Class>): <why>"``.

    Example:
        >>> class Sizes(Metric):
        ...     outputs = {"clusters": {"cluster": pl.Int64(), "n_rows": pl.UInt32()}}
        ...     def compute(self, ctx):
        ...         df = pl.DataFrame({"cluster": ctx.labels}).filter(pl.col("cluster") >= 0)
        ...         out = df.group_by("cluster").len("n_rows").sort("cluster")
        ...         return {"clusters": out.cast({"n_rows": pl.UInt32})}
        >>> check_metric(Sizes, name="sizes")
        >>> class Unsorted(Sizes):
        ...     def compute(self, ctx):
        ...         return {"clusters": super().compute(ctx)["clusters"].reverse()}
        >>> check_metric(Unsorted)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        AssertionError: check_compute_returns_declared failed for metric Unsorted: frame ...

    """
    for _, check in metric_checks(cls_or_instance, name=name, rows=rows):
        check(cls_or_instance)


# --------------------------------------------------------------------------- pytest


def _obj_id(obj: Any) -> str:
    if isinstance(obj, type):
        return obj.__name__
    try:
        defaults = {p.name: p.default for p in parameters(type(obj))}
        changed = {k: v for k, v in obj.get_params().items() if not _same(defaults.get(k), v)}
    except Exception:
        changed = {}
    return f"{type(obj).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"


def parametrize_with_checks(objs: Sequence[Any]) -> pytest.MarkDecorator:
    """A ``pytest.mark.parametrize`` over every check of every strategy or metric.

    The decorated test takes the arguments ``obj`` and ``check`` and calls
    ``check(obj)``; each check is its own test, with an id such as
    ``ThresholdMedoid(threshold=0.8)-check_labels``. pytest is imported only when this
    is called.

    Args:
        objs: strategy and metric classes or instances, in any mix.

    Raises:
        TypeError: an object is neither a strategy nor a metric.

    Example:
        >>> from simclust.default_plugins.metrics import Intra
        >>> from simclust.default_plugins.strategies import ConnectedComponents
        >>> mark = parametrize_with_checks([ConnectedComponents(threshold=0.8), Intra])
        >>> mark.args[0], len(mark.args[1]) > 10
        ('obj, check', True)
        >>> mark.args[1][0].id
        'ConnectedComponents(threshold=0.8)-check_base_class'

    """
    import pytest

    params = []
    for obj in objs:
        cls = _cls(obj)
        gen: Iterator[tuple[str, Check]]
        if issubclass(cls, Strategy):
            gen = strategy_checks(obj)
        elif issubclass(cls, Metric):
            gen = metric_checks(obj)
        else:
            raise TypeError(f"{cls.__qualname__} is neither a simclust Strategy nor a Metric")
        for check_name, check in gen:
            params.append(pytest.param(obj, check, id=f"{_obj_id(obj)}-{check_name}"))
    return pytest.mark.parametrize("obj, check", params)


# --------------------------------------------------------------------------- hosts


def make_host(
    *plugins: object | tuple[str, object], builtins: bool = True, strict: bool = True
) -> Host:
    """Build a :class:`~simclust.host.Host` from given plugin objects (no entry points).

    What :func:`simclust.get_host` does, with ``autoload=False`` and your plugins
    registered in-process: the registration hooks run plugin by plugin, so names,
    clashes and failures behave exactly as for installed plugins.

    Args:
        *plugins: plugin modules or objects (registered under their ``__name__``, or
            their class name for instances), or ``(name, plugin)`` pairs.
        builtins: keep the built-in plugin ``simclust.default_plugins``.
        strict: a plugin whose registration hook fails raises :class:`PluginError`;
            with ``strict=False`` it is dropped with a warning.

    Raises:
        PluginError: a plugin is invalid (e.g. a hook or hook argument that does not
            exist) or blocked, a registration hook failed, or two plugins registered
            one name.

    Example:
        >>> import simclust
        >>> from simclust.default_plugins.strategies import KMeansStrategy
        >>> class MyPlugin:
        ...     @simclust.hookimpl
        ...     def simclust_register_strategies(self, registry):
        ...         registry.register("my-kmeans", KMeansStrategy)
        >>> host = make_host(("my-plugin", MyPlugin()))
        >>> host.strategies.get("my-kmeans").plugin
        'my-plugin'

    """
    pm = get_plugin_manager(autoload=False, strict=strict)
    info: dict[str, PluginInfo] = pm.simclust_plugin_info  # type: ignore[attr-defined]
    if not builtins and pm.get_plugin(BUILTIN_PLUGIN) is not None:
        pm.unregister(name=BUILTIN_PLUGIN)
        info.pop(BUILTIN_PLUGIN, None)
    for item in plugins:
        if isinstance(item, tuple):
            plugin_name, plugin = item
        else:
            plugin = item
            plugin_name = getattr(plugin, "__name__", None) or type(plugin).__name__
        try:
            registered = pm.register(plugin, name=plugin_name)
        except Exception as exc:  # pluggy: a hook argument the spec lacks, a duplicate
            raise PluginError(
                f"plugin {plugin_name!r} failed to register: {type(exc).__name__}: {exc}"
            ) from exc
        if registered is None:
            raise PluginError(f"plugin {plugin_name!r} is blocked (SIMCLUST_BLOCK_PLUGINS)")
        info[plugin_name] = PluginInfo(plugin_name, None, None)
    try:
        pm.check_pending()
    except Exception as exc:
        raise PluginError(f"plugin {getattr(exc, 'plugin', '?')!r}: {exc}") from exc
    return build_host(pm, strict=strict)
