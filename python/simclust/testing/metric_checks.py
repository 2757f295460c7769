"""Conformance checks for metric plugins: :func:`check_metric`, :func:`metric_checks`.

A metric is a :class:`simclust.base.Metric` subclass. The public module is
:mod:`simclust.testing.checks` (import these from :mod:`simclust.testing`).
"""

from __future__ import annotations

import contextvars
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from simclust import frames
from simclust.base import GraphSpec, Metric, MetricContext
from simclust.testing._check_common import (
    Check,
    _check_base_class,
    _check_init_stores_params,
    _check_parameters,
    _check_set_params,
    _CheckError,
    _cls,
    _data,
    _instance,
    _noisy_labels,
    _readonly,
    _wrap,
)

__all__ = ["RowsFactory", "check_metric", "metric_checks"]


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
    from simclust.graph import build_graph

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
