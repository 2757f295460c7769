"""Reading a run's input: the loader that reads a path, the rows, one id per row.

Example:
    >>> as_ids([b"a.png", "b.png", 7], 3).to_list()
    ['a.png', 'b.png', '7']

"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import polars as pl

from simclust import config as config_mod
from simclust.base import LoadedData, Progress
from simclust.default_plugins.loaders import is_glob, shard_files
from simclust.exceptions import (
    ConfigError,
    InvalidInputError,
    ParameterError,
    PluginError,
    ShapeError,
    SimclustError,
)
from simclust.host import Host
from simclust.plugin_calls import instantiate, plugin_call
from simclust.progress import StageProgress, any_stage

__all__ = ["LoadBackend", "RunInput", "as_ids", "as_matrix", "read_input", "read_run_input"]


def _os_reason(exc: OSError) -> str:
    return f"{type(exc).__name__}: {exc.strerror or exc}"


def _id_text(value: Any, i: int) -> str:
    """One row id as text: a string, UTF-8 bytes, an integer or a path; else an error."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | np.bytes_):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInputError(f"ids[{i}] = {bytes(value)!r} is not UTF-8 text") from None
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, os.PathLike):
        return str(os.fspath(value))
    what = "null" if value is None else f"{type(value).__name__} {value!r}"
    raise InvalidInputError(f"ids[{i}] is {what}; ids must be strings (or integers)")


def as_ids(ids: Sequence[Any] | npt.ArrayLike | pl.Series | None, n: int) -> pl.Series:
    """The ``id`` column: one string per row (default: the row number).

    Bytes are decoded as UTF-8; a null, a float or another object is an error (never
    its ``str()``, such as ``"None"`` or ``"b'x.png'"``).

    Raises:
        InvalidInputError: an id is null, not text or not UTF-8 (the row is named).
        ShapeError: not one id per row.

    Example:
        >>> as_ids([b"a.png", "b.png", 7], 3).to_list()
        ['a.png', 'b.png', '7']

    """
    if ids is None:
        return pl.Series("id", np.arange(n).astype(str), dtype=pl.String)
    if isinstance(ids, str | bytes):
        raise InvalidInputError(f"ids must be one id per row, got a single {type(ids).__name__}")
    if isinstance(ids, pl.Series):
        values_in = ids.to_list()
    elif isinstance(ids, np.ndarray):
        if ids.ndim != 1:
            raise ShapeError(f"ids must be 1-D (one id per row), got shape {ids.shape}")
        values_in = ids.tolist()
    else:
        values_in = list(ids)  # type: ignore[arg-type]
    if len(values_in) != n:
        raise ShapeError(f"ids has {len(values_in)} entries but the embeddings have {n} rows")
    values = [_id_text(v, i) for i, v in enumerate(values_in)]
    return pl.Series("id", values, dtype=pl.String)


def read_input(
    path: str | Path,
    cfg: Mapping[str, Any],
    host: Host,
    *,
    progress: Progress | None = None,
    backend: LoadBackend | None = None,
) -> LoadedData:
    """Read ``path`` with the configured loader or the first that accepts it.

    ``backend``: a distributed backend reads with the loader's tasks where it can (the
    built-in ``shards`` loader: a task a shard), else the loader reads here.

    Raises:
        ConfigError: the path does not exist, or no loader reads it.

    """
    p = Path(path)
    if not p.exists() and not (is_glob(p) and shard_files(p)):
        what = "matches no file" if is_glob(p) else "does not exist"
        raise ConfigError(f"input.path: {str(p)!r} {what}")
    name = cfg["input"].get("loader")
    if name is None:
        for reg in host.loaders.registrations():
            probe = instantiate(reg, {})
            try:
                with plugin_call(reg, "can_load", passthrough=(OSError,)):
                    accepts = probe.can_load(p)
            except SimclustError:  # a plugin's own error about the input (also an OSError)
                raise
            except OSError as exc:  # e.g. a folder it may not list
                raise InvalidInputError(f"cannot read {str(p)!r}: {_os_reason(exc)}") from exc
            if accepts:
                name = reg.name
                break
        else:
            raise ConfigError(
                f"input.path: no loader reads {str(p)!r}; loaders: {host.loaders.describe()}"
            )
    reg = host.loaders.get(name)
    params = config_mod.check_params(
        "input", f"loader {name!r}", reg.obj, cfg["input"].get("params", {})
    )
    loader = instantiate(reg, params)
    try:
        with plugin_call(reg, "load", passthrough=(OSError,)):
            loader.bind(host)
            data = None if backend is None else backend.load(loader, p, any_stage(progress))
            if data is None:
                data = loader.load(p, progress=progress)
    except SimclustError:  # a plugin's own error about the input (also an OSError)
        raise
    except OSError as exc:  # unreadable input (permissions, I/O): the user's to fix
        where = exc.filename if exc.filename is not None else p
        raise InvalidInputError(f"cannot read {str(where)!r}: {_os_reason(exc)}") from exc
    if not isinstance(data, LoadedData):
        raise PluginError(f"loader {name!r} returned {type(data).__name__}, not LoadedData")
    return data


class LoadBackend(Protocol):
    """A backend that reads some loaders' inputs by its own tasks (the Ray backend)."""

    def load(self, loader: object, path: Path, progress: StageProgress | None) -> LoadedData | None:
        """``loader``'s data of ``path`` read by tasks, or ``None`` when it cannot."""
        ...


def as_matrix(x_in: Any) -> npt.NDArray[Any]:
    """The embeddings as a non-empty 2-D array of real numbers (not yet float32).

    Raises:
        InvalidInputError: ragged rows, objects, complex or non-numeric values.
        ShapeError: not 2-D, or no rows or no columns.

    """
    try:
        arr = np.asarray(x_in)
    except (ValueError, TypeError) as exc:  # ragged rows, objects numpy cannot stack
        raise InvalidInputError(f"the embeddings are not an N x D array of numbers: {exc}") from exc
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ShapeError(
            f"the embeddings must be a non-empty 2-D array (N x D), got shape {arr.shape}"
        )
    if arr.dtype.kind not in "biuf":
        raise InvalidInputError(f"the embeddings must be real numbers, got dtype {arr.dtype}")
    return arr


@dataclass
class RunInput:
    """The rows of a run as read: the array, one id per row, extra columns, bad files."""

    x: npt.NDArray[Any]
    ids: pl.Series
    rows: pl.DataFrame | None
    bad_files: pl.DataFrame | None


def read_run_input(
    x_or_path: npt.ArrayLike | str | Path | None,
    cfg: Mapping[str, Any],
    host: Host,
    ids: Sequence[str] | npt.ArrayLike | None,
    rows: pl.DataFrame | None,
    *,
    progress: Progress | None = None,
    backend: LoadBackend | None = None,
) -> RunInput:
    """A run's ``load`` stage: the array (given, or read by a loader), its ids and columns.

    Raises:
        ConfigError: no array given and no ``input.path``; as :func:`read_input`.
        ParameterError, ShapeError: ``rows`` not a frame, or not one row per row.

    """
    bad_files: pl.DataFrame | None = None
    if x_or_path is None or isinstance(x_or_path, str | Path):
        path = cfg["input"]["path"]
        if path is None:
            raise ConfigError("input.path: missing; give the embeddings file or image folder")
        data = read_input(path, cfg, host, progress=progress, backend=backend)
        x_in, bad_files = data.X, data.bad_files
        rows = data.rows if rows is None else rows
        ids = data.ids if ids is None else ids
    else:
        x_in = x_or_path
    arr = as_matrix(x_in)
    n = int(arr.shape[0])
    if rows is not None and not isinstance(rows, pl.DataFrame):
        raise ParameterError(f"rows must be a polars DataFrame, got {type(rows).__name__}")
    if rows is not None and rows.height != n:
        raise ShapeError(f"the per-row columns (rows) have {rows.height} rows, not {n}")
    return RunInput(arr, as_ids(ids, n), rows, bad_files)
