"""Calling plugins and checking what they return: the one place a plugin's failure is named.

Every call into a plugin (``__init__``, ``can_load``, ``load``, ``graph_spec``, ``fit``,
``validate``, ``compute``, ``embed``) runs inside :func:`plugin_call`; every frame, array
and labelling a plugin returns passes one of the checks here before the run uses it.

Example:
    >>> from simclust.host import get_host
    >>> reg = get_host().strategies.get("kmeans")
    >>> try:
    ...     with plugin_call(reg, "fit"):
    ...         raise RuntimeError("boom")
    ... except PluginError as e:
    ...     print(e)
    strategy 'kmeans' (built-in) failed in fit: RuntimeError: boom

"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import polars as pl

from simclust import frames
from simclust.exceptions import PluginError, SimclustError
from simclust.host import BUILTIN_PLUGIN, Registration

if TYPE_CHECKING:
    from simclust.distances import Distance

__all__ = [
    "PLUGIN_FAILURES",
    "MetricOutputs",
    "check_array",
    "check_frame",
    "check_labels",
    "declared_outputs",
    "instantiate",
    "merge_frames",
    "plugin_call",
    "plugin_error",
    "run_frames",
    "sort_metric_outputs",
]

PLUGIN_FAILURES = (Exception, SystemExit, pl.exceptions.PanicException)
"""What a plugin call may raise that becomes an error naming the plugin: a plugin's
``sys.exit()`` must not end the run silently, nor a Rust panic (a ``BaseException``)
inside a library it calls; KeyboardInterrupt passes unchanged."""


def plugin_error(reg: Registration[Any], what: str, exc: BaseException) -> BaseException:
    """Name the plugin in a failure, keeping the error's type when it is simclust's.

    A built-in's simclust error passes unchanged. A plugin's ``ParameterError``,
    ``ShapeError`` or ``InvalidInputError`` (the user's parameters or data are wrong) is
    re-raised as the same type, prefixed with the plugin's name; anything else a plugin
    raises is a bug in the plugin: :class:`PluginError`.
    """
    if isinstance(exc, SystemExit):
        return PluginError(
            f"{reg.kind} {reg.name!r} ({reg.provider}) called sys.exit({exc.code!r}) "
            f"in {what}; a plugin must raise an exception instead"
        )
    if isinstance(exc, SimclustError):
        if reg.plugin == BUILTIN_PLUGIN or isinstance(exc, PluginError):
            return exc
        try:
            return type(exc)(f"{reg.kind} {reg.name!r} ({reg.provider}): {exc}")
        except Exception:  # a subclass with another constructor: fall through
            pass
    return PluginError(
        f"{reg.kind} {reg.name!r} ({reg.provider}) failed in {what}: {type(exc).__name__}: {exc}"
    )


@contextlib.contextmanager
def plugin_call(
    reg: Registration[Any], what: str, *, passthrough: tuple[type[BaseException], ...] = ()
) -> Iterator[None]:
    """Run the ``with`` block as a call into ``reg``'s plugin, naming it in any failure.

    ``KeyboardInterrupt`` and the ``passthrough`` types (e.g. ``OSError`` from a loader:
    the input is unreadable, which the caller reports) pass unchanged; everything else
    goes through :func:`plugin_error`.
    """
    try:
        yield
    except KeyboardInterrupt:
        raise
    except PLUGIN_FAILURES as exc:
        if isinstance(exc, passthrough):
            raise
        err = plugin_error(reg, what, exc)
        if err is exc:
            raise
        raise err from exc


def instantiate(reg: Registration[Any], params: Mapping[str, Any]) -> Any:
    """``reg``'s class built with ``params`` (validated already)."""
    with plugin_call(reg, "__init__"):
        return reg.obj(**params)


def check_frame(owner: str, name: str, df: Any, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """A plugin's frame ``name``, which must be a DataFrame of exactly ``schema``."""
    if not isinstance(df, pl.DataFrame):
        raise PluginError(
            f"{owner} returned {name!r} as {type(df).__name__}, not a polars DataFrame"
        )
    if dict(df.schema) != dict(schema):
        raise PluginError(
            f"{owner} returned frame {name!r} with schema {dict(df.schema)}, "
            f"but declared {dict(schema)}"
        )
    return df


def check_array(owner: str, name: str, value: Any) -> npt.NDArray[Any]:
    """A metric's declared array: numeric (it is written to Parquet/JSON as numbers)."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise PluginError(f"{owner} returned array {name!r} that numpy cannot read: {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise PluginError(
            f"{owner} returned array {name!r} of dtype {arr.dtype}, not numbers "
            f"(bool, int or float)"
        )
    return arr


def check_labels(reg: Registration[Any], labels: Any, n: int) -> npt.NDArray[np.int64]:
    """A strategy's ``labels_``: ``n`` integers ``>= -1``, copied and made read-only."""
    owner = f"strategy {reg.name!r} ({reg.provider})"
    lab = np.asarray(labels)
    if lab.shape != (n,):
        raise PluginError(f"{owner} set labels_ of shape {lab.shape}, expected ({n},)")
    if lab.size and lab.dtype.kind not in "iu":
        raise PluginError(f"{owner} set labels_ of dtype {lab.dtype}, expected integers")
    lab = np.array(lab, dtype=np.int64)  # a copy: the plugin keeps its own array
    if lab.size and lab.min() < -1:
        raise PluginError(f"{owner} set labels below -1 (noise is -1)")
    lab.flags.writeable = False  # shared by every metric: none may change it
    return lab


def merge_frames(
    base: pl.DataFrame,
    key: str,
    parts: Sequence[tuple[str, pl.DataFrame]],
    schema: Mapping[str, pl.DataType],
) -> pl.DataFrame:
    """Left-join each metric's frame onto ``base`` by ``key``; then the full schema.

    Raises:
        PluginError: two metrics produce the same column, a metric repeats a key, or
            returns rows for clusters/rows that do not exist (nothing is dropped).

    """
    out = base
    owners: dict[str, str] = {c: "simclust" for c in base.columns}
    for owner, df in parts:
        extra = [c for c in df.columns if c != key and c not in ("size", "cluster")]
        for c in extra:
            if c in owners:
                raise PluginError(f"{owner} and {owners[c]} both produce column {c!r}")
            owners[c] = owner
        if df[key].is_duplicated().any():
            raise PluginError(f"{owner} returned duplicate {key!r} values")
        unknown = df[key].filter(~df[key].is_in(base[key].implode()) | df[key].is_null())
        if unknown.len():
            what = "clusters" if key == "cluster" else "rows"
            shown = ", ".join(str(v) for v in unknown.head(5).to_list())
            raise PluginError(
                f"{owner} returned {unknown.len()} {key!r} value(s) for {what} that do not "
                f"exist (e.g. {shown}); nothing is dropped silently"
            )
        out = out.join(df.select(key, *extra), on=key, how="left", maintain_order="left")
    full = [
        (pl.col(n) if n in out.columns else pl.lit(None)).cast(t).alias(n)
        for n, t in schema.items()
    ]
    rest = [c for c in out.columns if c not in schema]
    return out.select(*full, *rest)


@dataclass
class MetricOutputs:
    """What the metrics returned, sorted by where it goes in the result."""

    cluster_parts: list[tuple[str, pl.DataFrame]]
    row_parts: list[tuple[str, pl.DataFrame]]
    inter: pl.DataFrame
    tables: dict[str, pl.DataFrame]
    arrays: dict[str, np.ndarray]


def declared_outputs(metric: Any, distance: Any) -> Mapping[str, Mapping[str, pl.DataType]]:
    """The frames ``metric`` declares under the run's ``distance``.

    A metric class that does not subclass :class:`simclust.base.Metric` declares its
    ``outputs``.
    """
    method = getattr(metric, "declared_outputs", None)
    if callable(method):
        declared: Mapping[str, Mapping[str, pl.DataType]] = method(distance)
        return declared
    return type(metric).outputs  # type: ignore[no-any-return]


def sort_metric_outputs(
    owner: str,
    metric: Any,
    returned: Any,
    out: MetricOutputs,
    declared: Mapping[str, Mapping[str, pl.DataType]] | None = None,
) -> None:
    """Check one metric's frames and arrays against its declaration; file them.

    ``declared``: what it declares under the run's distance (:func:`declared_outputs`;
    default its ``outputs``).
    """
    declared = type(metric).outputs if declared is None else declared
    if not isinstance(returned, Mapping):
        raise PluginError(
            f"{owner} returned {type(returned).__name__} from compute, not a mapping of "
            "frame names to frames"
        )
    for name, value in returned.items():
        if name in declared:
            df = check_frame(owner, name, value, declared[name])
            if name == "clusters":
                out.cluster_parts.append((owner, df))
            elif name == "assignments":
                out.row_parts.append((owner, df))
            elif name == "inter":
                out.inter = df
            else:
                out.tables[name] = df
        elif name in type(metric).arrays:
            out.arrays[name] = check_array(owner, name, value)
        else:
            raise PluginError(f"{owner} returned {name!r}, which it does not declare")
    missing = sorted(set(declared) - set(returned))
    if missing:
        raise PluginError(f"{owner} did not return the declared frame(s) {missing}")


def run_frames(
    labels: npt.NDArray[np.int64], ids: pl.Series, parts: MetricOutputs, distance: type[Distance]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A run's ``clusters`` and ``assignments`` frames: sizes and ids, plus the metrics'.

    Their schemas are :data:`simclust.frames.CLUSTERS_SCHEMA` and
    :data:`~simclust.frames.ASSIGNMENTS_SCHEMA` with the geometry columns named by the
    run's ``distance``.
    """
    present, sizes = np.unique(labels[labels >= 0], return_counts=True)
    base_clusters = pl.DataFrame(
        {
            "cluster": pl.Series(present, dtype=pl.Int64),
            "size": pl.Series(sizes, dtype=pl.UInt32),
        }
    )
    base_rows = pl.DataFrame(
        {
            "index": pl.Series(np.arange(labels.size), dtype=pl.UInt32),
            "id": ids,
            "cluster": pl.Series(labels, dtype=pl.Int64),
        }
    )
    schemas = distance.rename(frames.CLUSTERS_SCHEMA), distance.rename(frames.ASSIGNMENTS_SCHEMA)
    clusters = merge_frames(base_clusters, "cluster", parts.cluster_parts, schemas[0])
    return (
        clusters.with_columns(medoid_id=frames.ids_at(ids, clusters["medoid"])),
        merge_frames(base_rows, "index", parts.row_parts, schemas[1]),
    )
