"""The ``simclust`` command line: analyze, run, sweep, embed, report, plugins and demo.

::

    simclust analyze PATH [--config FILE] [--strategy NAME] [--threshold T] [--k K]
                          [--graph knn|threshold] [--n-clusters N] [--param KEY=VALUE ...]
                          [--metrics intra,centroid,...] [--out DIR] [--report/--no-report]
                          [--threads N] [--json] [--quiet] [--debug]
    simclust run CONFIG.toml [--report/--no-report] [--json] [--quiet] [--debug]
    simclust sweep PATH --thresholds 0.8:0.99:0.01 [--graph threshold|knn] [--k K] [--json]
    simclust embed FOLDER --out DIR|FILE.npz [--format fastdup|npz] [--embedder NAME]
    simclust report RESULTS [--out FILE] [--images DIR] [--max-clusters N]
    simclust plugins [--json]
    simclust demo [--out DIR] [--n-images N] [--json] [--quiet]

Progress bars go to stderr (only on a terminal, never with ``--quiet``); the summary,
or with ``--json`` a JSON document and nothing else, goes to stdout.

Exit codes: ``0`` success; ``2`` an invalid config, parameter or input (``ConfigError``,
``ParameterError``, ``InvalidInputError``, ``ShapeError``, an output folder simclust
refuses to write into, and click's usage errors);
``3`` a plugin failed (``PluginError``); ``1`` any other error (other ``SimclustError``,
``OSError``, internal errors); ``130`` interrupted (Ctrl-C). An error is one line on
stderr; ``--debug`` prints its traceback first.

Example:
    >>> from click.testing import CliRunner
    >>> r = CliRunner().invoke(main, ["sweep", "missing.npy", "--thresholds", "0.9"])
    >>> r.exit_code, r.stderr.strip()
    (2, "error: input.path: 'missing.npy' does not exist")

"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import shutil
import sys
import time
import tomllib
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, TypeVar

import click
import numpy as np
import numpy.typing as npt
import polars as pl
from rich.console import Console
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from simclust import __version__, ops, pipeline
from simclust import config as config_mod
from simclust import result as result_mod
from simclust.base import GraphSpec
from simclust.default_plugins.strategies import build_graph
from simclust.exceptions import (
    ConfigError,
    InvalidInputError,
    ParameterError,
    PluginError,
    ShapeError,
    SimclustError,
)
from simclust.host import get_host
from simclust.pipeline import StageProgress
from simclust.result import Result

__all__ = [
    "DEMO_THRESHOLD",
    "analyze_config",
    "exit_code",
    "main",
    "parse_metrics",
    "parse_param",
    "parse_thresholds",
    "sweep_table",
]

DEMO_THRESHOLD = 0.9
"""Cosine threshold of the demo's connected components."""
DEMO_METRICS = ("intra", "edge", "centroid", "inter", "silhouette")
DEMO_LOADER = "images"
"""The image-folder loader the demo needs."""
DEFAULT_OUT = "simclust-out"
DEMO_OUT = "simclust-demo"
DEMO_MARKER = "simclust-demo.json"
"""Records the images an earlier ``simclust demo`` wrote, the only ones a rerun replaces."""
DEMO_DATASET = "dataset.parquet"
REPORT_NAME = "report.html"
TOP_CLUSTERS = 10
MAX_THRESHOLDS = 10_000

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PLUGIN = 3
EXIT_INTERRUPTED = 130

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.+-]*")
# --threshold/--k/--graph are also the keys of a config's [graph] section.
_GRAPH_KEY_OF_PARAM = {"threshold": "threshold", "k": "k", "graph": "kind"}

F = TypeVar("F", bound=Callable[..., Any])


# --------------------------------------------------------------------------- parsing


def parse_thresholds(text: str) -> list[float]:
    """Parse ``START:STOP:STEP`` (stop included when on the grid) or ``T1,T2,...``.

    Range values are rounded to the decimals of the inputs, so ``0.8:0.99:0.01`` gives
    exactly ``0.8, 0.81, ..., 0.99``. The result is sorted and without duplicates.

    Raises:
        ParameterError: not numbers, ``start > stop``, ``step <= 0``, a value outside
            ``[-1, 1]`` or more than 10 000 values.

    Example:
        >>> parse_thresholds("0.8:0.9:0.05")
        [0.8, 0.85, 0.9]
        >>> parse_thresholds("0.95, 0.8,0.9")
        [0.8, 0.9, 0.95]
        >>> parse_thresholds("0.9:0.8:0.01")
        Traceback (most recent call last):
        ...
        simclust.exceptions.ParameterError: start 0.9 is greater than stop 0.8

    """

    def number(part: str) -> Decimal:
        try:
            value = Decimal(part.strip())
        except InvalidOperation:
            raise ParameterError(f"{part.strip()!r} is not a number") from None
        if not value.is_finite():
            raise ParameterError(f"{part.strip()!r} is not a finite number")
        return value

    text = text.strip()
    if not text:
        raise ParameterError("no thresholds given")
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise ParameterError(f"expected START:STOP:STEP, got {text!r}")
        start, stop, step = (number(p) for p in parts)
        if step <= 0:
            raise ParameterError(f"step must be > 0, got {step}")
        if start > stop:
            raise ParameterError(f"start {start} is greater than stop {stop}")
        count = int(((stop - start) / step).to_integral_value(rounding=ROUND_FLOOR)) + 1
        if count > MAX_THRESHOLDS:
            raise ParameterError(f"{count} thresholds; at most {MAX_THRESHOLDS}")
        exponent = min(int(d.as_tuple().exponent) for d in (start, stop, step))
        quantum = Decimal(1).scaleb(exponent)
        values = [(start + i * step).quantize(quantum) for i in range(count)]
    else:
        values = [number(p) for p in text.split(",") if p.strip()]
        if not values:
            raise ParameterError("no thresholds given")
        if len(values) > MAX_THRESHOLDS:
            raise ParameterError(f"{len(values)} thresholds; at most {MAX_THRESHOLDS}")
    bad = [v for v in values if not -1 <= v <= 1]
    if bad:
        raise ParameterError(f"thresholds must be in [-1, 1], got {bad[0]}")
    return sorted({float(v) for v in values})


def parse_param(text: str) -> tuple[str, Any]:
    """Parse ``KEY=VALUE``; the value is a TOML literal (a bare word is a string).

    Raises:
        ParameterError: no ``=``, a key that is not an identifier, or a value that is
            neither a TOML literal nor a bare word.

    Example:
        >>> parse_param("threshold=0.9"), parse_param("k=10"), parse_param("debias=true")
        (('threshold', 0.9), ('k', 10), ('debias', True))
        >>> parse_param('graph="knn"'), parse_param("graph=knn")
        (('graph', 'knn'), ('graph', 'knn'))

    """
    key, sep, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not sep:
        raise ParameterError(f"expected KEY=VALUE, got {text!r}")
    if not _KEY.fullmatch(key):
        raise ParameterError(f"{key!r} is not a parameter name (letters, digits, _)")
    if "\n" in value or "\r" in value:
        raise ParameterError(f"{key}: the value must be on one line")
    try:
        return key, tomllib.loads(f"v = {value}\n")["v"]
    except tomllib.TOMLDecodeError:
        if _BARE_WORD.fullmatch(value):
            return key, value
        raise ParameterError(
            f'{key}: {value!r} is not a TOML value (e.g. 0.9, 10, true, "text")'
        ) from None


def parse_metrics(text: str) -> list[str]:
    """Split a comma-separated list of metric names (empty: no metrics).

    Example:
        >>> parse_metrics("intra, centroid,inter")
        ['intra', 'centroid', 'inter']

    """
    return [name.strip() for name in text.split(",") if name.strip()]


def analyze_config(
    path: str | Path,
    *,
    base: Mapping[str, Any] | None = None,
    strategy: str | None = None,
    params: Mapping[str, Any] | None = None,
    metrics: Sequence[str] | None = None,
    threads: int | None = None,
    max_edges: int | None = None,
    out: str | Path | None = None,
    report: bool | None = None,
) -> dict[str, Any]:
    """Overlay the options of ``simclust analyze`` on a raw config (e.g. a loaded file).

    ``path`` becomes ``[input] path``; ``strategy`` and ``params`` go into ``[cluster]``
    (another strategy than the base's drops the base's strategy parameters); a
    parameter that is also a ``[graph]`` key of the base (``threshold``, ``k``,
    ``graph`` as ``kind``) overrides it there too; ``metrics`` replaces
    ``[metrics] use`` (keeping the base's parameters of the metrics still used);
    ``threads``/``max_edges`` and ``out``/``report`` go into ``[run]`` and ``[output]``. The result
    is validated later by :func:`simclust.config.resolve`.

    Example:
        >>> base = {"cluster": {"strategy": "kmeans", "n_clusters": 3}}
        >>> analyze_config("x.npy", base=base, params={"n_clusters": 5})
        {'cluster': {'strategy': 'kmeans', 'n_clusters': 5}, 'input': {'path': 'x.npy'}}
        >>> analyze_config("x.npy", base=base, strategy="connected-components")["cluster"]
        {'strategy': 'connected-components'}

    """
    raw: dict[str, Any] = {
        k: dict(v) if isinstance(v, Mapping) else v for k, v in (base or {}).items()
    }

    def section(name: str) -> dict[str, Any]:
        value = raw.setdefault(name, {})
        if not isinstance(value, dict):  # invalid: let resolve() name it
            raise ConfigError(f"{name}: expected a table ([{name}]), got {type(value).__name__}")
        return value

    if strategy is not None or params:
        cluster = section("cluster")
        if strategy is not None:
            if cluster.get("strategy", strategy) != strategy:
                cluster.clear()
            cluster["strategy"] = strategy
        for key, value in (params or {}).items():
            cluster[key] = value
            graph = raw.get("graph")
            gkey = _GRAPH_KEY_OF_PARAM.get(key)
            if gkey is not None and isinstance(graph, dict) and gkey in graph:
                graph[gkey] = value
    inp = section("input")
    inp.pop("features", None)
    inp["path"] = str(path)
    if metrics is not None:
        old = raw.get("metrics")
        old = old if isinstance(old, dict) else {}
        raw["metrics"] = {
            "use": list(metrics),
            **{k: v for k, v in old.items() if k in metrics},
        }
    if threads is not None:
        section("run")["threads"] = threads
    if max_edges is not None:
        section("run")["max_edges"] = max_edges
    if out is not None:
        section("output")["dir"] = str(out)
    if report is not None:
        section("output")["report"] = report
    return raw


def exit_code(exc: BaseException) -> int:
    """The exit code for an error (see the module docstring).

    Example:
        >>> from simclust.exceptions import ConfigError
        >>> exit_code(ConfigError("x")), exit_code(PluginError("x")), exit_code(OSError("x"))
        (2, 3, 1)

    """
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, SystemExit):
        return EXIT_ERROR  # an unexpected sys.exit() inside a command is never a success
    if isinstance(exc, PluginError):
        return EXIT_PLUGIN
    if isinstance(exc, ParameterError | InvalidInputError | ShapeError | FileExistsError):
        # ConfigError and UnknownNameError are ParameterErrors; FileExistsError is an
        # output folder simclust refuses to write into
        return EXIT_USAGE
    return EXIT_ERROR


def sweep_table(
    n: int,
    src: npt.ArrayLike,
    dst: npt.ArrayLike,
    similarity: npt.ArrayLike,
    thresholds: Sequence[float],
) -> pl.DataFrame:
    """Per threshold: components, the largest, singletons and edges ``>= threshold``.

    ``n_components`` and ``largest_component`` are :func:`simclust.ops.threshold_sweep`'s;
    a singleton is a row without an edge ``>= threshold``.

    Example:
        >>> sweep_table(3, [0, 1], [1, 2], [0.95, 0.85], [0.8, 0.9]).rows()
        [(0.8, 1, 3, 0, 2), (0.9, 2, 2, 1, 1)]

    """
    sim = np.asarray(similarity, dtype=np.float32)
    s = np.asarray(src, dtype=np.int64)
    d = np.asarray(dst, dtype=np.int64)
    t = np.asarray(thresholds, dtype=np.float32)  # the kernels compare in float32
    sweep = ops.threshold_sweep(n, s, d, sim, t)
    best = np.full(n, -np.inf, dtype=np.float32)
    np.maximum.at(best, s, sim)
    np.maximum.at(best, d, sim)
    singletons = np.searchsorted(np.sort(best), t, side="left")
    n_edges = sim.size - np.searchsorted(np.sort(sim), t, side="left")
    return pl.DataFrame(
        {
            "threshold": pl.Series([float(v) for v in thresholds], dtype=pl.Float64),
            "n_components": sweep["n_components"],
            "largest_component": sweep["largest_component"],
            "singletons": pl.Series(singletons, dtype=pl.UInt32),
            "n_edges": pl.Series(n_edges, dtype=pl.UInt64),
        }
    )


# --------------------------------------------------------------------------- plumbing


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text).strip()


def _warn(message: str) -> None:
    click.echo(f"warning: {_one_line(message)}", err=True)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` for the CLI: one line, without the file and source line."""
    _warn(str(message))


@contextlib.contextmanager
def _errors(debug: bool) -> Iterator[None]:
    """Turn exceptions into one-line errors and exit codes (and a traceback with --debug).

    Warnings are printed as one line each (``warning: ...``), and a ``SystemExit`` from
    inside a command (a library or plugin calling ``sys.exit``) is an error, never a
    silent exit 0.
    """
    try:
        with warnings.catch_warnings():
            if not debug:
                warnings.showwarning = _show_warning
            yield
    except (click.exceptions.Exit, click.ClickException, click.Abort):
        raise
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc(file=sys.stderr)
        click.echo("error: interrupted", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    except (Exception, SystemExit) as exc:
        if debug:
            traceback.print_exc(file=sys.stderr)
        if isinstance(exc, SystemExit):
            message = f"internal error: sys.exit({exc.code!r}) was called during the command"
        elif isinstance(exc, MemoryError):
            message = f"out of memory: {_one_line(str(exc)) or 'an allocation failed'}"
        else:
            message = _one_line(str(exc)) or type(exc).__name__
            if not isinstance(exc, SimclustError | OSError):
                message = f"internal error: {type(exc).__name__}: {message}"
                if not debug:
                    message += " (rerun with --debug for the traceback)"
        click.echo(f"error: {message}", err=True)
        raise click.exceptions.Exit(exit_code(exc)) from None


class _StageBars:
    """A ``progress(stage, done, total)`` callback: one rich bar per stage.

    A stage's bar is created when the stage first reports and removed when the stage
    ends within ``min_seconds``, so only the slow stages stay on screen.
    """

    def __init__(
        self,
        progress: Progress,
        *,
        min_seconds: float = 1.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.progress = progress
        self.min_seconds = min_seconds
        self.clock = clock
        self._tasks: dict[str, TaskID | None] = {}
        self._start: dict[str, float] = {}
        self._done: set[str] = set()

    def __call__(self, stage: str, done: int, total: int) -> None:
        finished = total > 0 and done >= total
        if stage not in self._tasks or (stage in self._done and not finished):
            old = self._tasks.get(stage)
            if old is not None:
                self.progress.remove_task(old)
            self._tasks[stage] = self.progress.add_task(
                stage, total=total if total > 0 else None, completed=done
            )
            self._start[stage] = self.clock()
            self._done.discard(stage)
        else:
            task = self._tasks[stage]
            if task is None:
                return
            self.progress.update(task, total=total if total > 0 else None, completed=done)
        if finished and stage not in self._done:
            self._done.add(stage)
            task = self._tasks[stage]
            if task is not None and self.clock() - self._start[stage] < self.min_seconds:
                self.progress.remove_task(task)
                self._tasks[stage] = None


@contextlib.contextmanager
def _stage_progress(enabled: bool) -> Iterator[StageProgress | None]:
    """Rich progress bars on stderr when ``enabled`` and stderr is a terminal."""
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description:<18}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        yield _StageBars(progress)


def _report_enabled(wanted: bool) -> bool:
    """``wanted``, unless ``simclust.report`` cannot be imported (then a one-line warning)."""
    if not wanted:
        return False
    try:
        importlib.import_module("simclust.report")
    except ImportError as exc:
        _warn(f"{REPORT_NAME} not written: simclust.report is not available ({exc})")
        return False
    return True


def _check_out_dir(out: Path, input_path: str | Path | None = None) -> None:
    """Before any work: refuse an output folder simclust must not write into.

    Allowed are an absent or empty folder and one holding a simclust result (whose files
    alone are replaced); see :func:`simclust.result.check_output_dir`.
    """
    result_mod.check_output_dir(out, input_path=input_path)


def _check_demo_dir(out: Path) -> list[str]:
    """Before any work: refuse a demo folder with files the demo did not write there.

    Returns:
        The images an earlier demo wrote in ``out/images`` (relative posix paths).

    """
    shown = repr(str(out))
    if os.path.lexists(out) and not out.is_dir():
        raise FileExistsError(f"demo folder {shown} is not a folder")
    if not out.exists() or not any(out.iterdir()):
        return []
    try:
        marker = json.loads((out / DEMO_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        marker = None
    images = marker.get("images") if isinstance(marker, dict) else None
    if not (
        isinstance(marker, dict)
        and marker.get("simclust_demo") == 1
        and isinstance(images, list)
        and all(isinstance(i, str) and _is_relative_inside(i) for i in images)
    ):
        raise FileExistsError(
            f"demo folder {shown} is not empty and was not written by `simclust demo` "
            f"(no {DEMO_MARKER}); choose a new or empty folder"
        )
    images_dir = out / "images"
    if os.path.lexists(images_dir) and (images_dir.is_symlink() or not images_dir.is_dir()):
        raise FileExistsError(f"demo folder {shown}: images is not a folder the demo wrote")
    listed = set(images)
    for path in sorted(images_dir.rglob("*")) if images_dir.is_dir() else []:
        rel = path.relative_to(images_dir).as_posix()
        if (path.is_symlink() or not path.is_dir()) and rel not in listed:
            raise FileExistsError(
                f"demo folder {shown}: images/{rel} was not written by the demo and would be "
                "clustered with its images; move it or choose another folder"
            )
    if os.path.lexists(out / DEMO_DATASET) and (out / DEMO_DATASET).is_dir():
        raise FileExistsError(f"demo folder {shown}: {DEMO_DATASET} is a folder")
    return sorted(listed)


def _is_relative_inside(name: str) -> bool:
    p = Path(name)
    return bool(name) and not p.is_absolute() and ".." not in p.parts


def _write_demo_marker(out: Path, images: Sequence[str]) -> None:
    tmp = out / f".{DEMO_MARKER}.tmp"
    tmp.write_text(json.dumps({"simclust_demo": 1, "images": list(images)}) + "\n")
    tmp.replace(out / DEMO_MARKER)


def _swap_demo_images(stage: Path, images_dir: Path, previous: Sequence[str]) -> None:
    """Remove the earlier demo's images, then move the freshly drawn ones in."""
    for rel in previous:
        (images_dir / rel).unlink(missing_ok=True)
    if images_dir.is_dir():
        for sub in sorted(images_dir.rglob("*"), key=lambda p: -len(p.parts)):
            if sub.is_dir() and not sub.is_symlink():
                with contextlib.suppress(OSError):
                    sub.rmdir()  # only folders left empty
        images_dir.rmdir()  # fails (and the run stops) if something new appeared in it
    stage.rename(images_dir)


def _outputs(out: Path) -> dict[str, Any]:
    """The folder, the files simclust wrote there (not the user's) and the report."""
    files = result_mod.result_files(out) or []
    report = out / REPORT_NAME
    return {
        "output_dir": str(out.resolve()),
        "files": sorted({*files, result_mod.MANIFEST}),
        "report": str(report.resolve()) if REPORT_NAME in files else None,
    }


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _stdout() -> Console:
    """A console on stdout; off a terminal wide enough that tables are not truncated."""
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=200)


def _print_summary(
    result: Result, outputs: Mapping[str, Any], timings: Mapping[str, float]
) -> None:
    console = _stdout()
    s = result.summary()
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(justify="right")
    for label, key in [
        ("rows", "n_rows"),
        ("clusters", "n_clusters"),
        ("singletons", "n_singletons"),
        ("noise", "n_noise"),
        ("largest cluster", "largest_cluster"),
        ("edges", "n_edges"),
    ]:
        grid.add_row(label, _fmt(s[key]))
    grid.add_row("metrics", ", ".join(s["metrics"]) or "none")
    console.print(Panel(grid, title=f"simclust {__version__}: {s['strategy']}", expand=False))
    if result.clusters.height:
        # all-pairs sim_min beside the graph-edge minimum shows what edge statistics hide
        wanted = (
            "cluster",
            "size",
            "sim_mean",
            "sim_min",
            "edge_sim_min",
            "bridge_similarity",
            "centroid_sim_mean",
        )
        cols = [
            c
            for c in wanted
            if c in result.clusters.columns
            and result.clusters[c].null_count() < result.clusters.height
        ]
        top = (
            result.clusters.sort(["size", "cluster"], descending=[True, False])
            .head(TOP_CLUSTERS)
            .select(cols)
        )
        table = Table(title=f"largest {top.height} of {result.clusters.height:,} clusters")
        for c in cols:
            table.add_column(c, justify="right")
        for row in top.iter_rows():
            table.add_row(*(_fmt(v) for v in row))
        console.print(table)
        chained = s["n_chained"]
        if chained:
            console.print(
                f"[bold yellow]{chained:,} chained cluster(s)[/]: all-pairs sim_min far below "
                "the threshold (held together by chains of edges; see the report)"
            )
    console.print(f"[bold]output[/]: {outputs['output_dir']}")
    console.print(f"  files: {', '.join(outputs['files'])}")
    if outputs["report"]:
        console.print(f"[bold]report[/]: {outputs['report']}")
    console.print("[bold]timings[/]: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))


def _finish(
    result: Result,
    out: Path,
    *,
    as_json: bool,
    quiet: bool,
    extra: Mapping[str, Any] | None = None,
    before: Mapping[str, float] | None = None,
    after: Mapping[str, float] | None = None,
) -> None:
    outputs = _outputs(out)
    timings = {**(before or {}), **result.timings, **(after or {})}
    if as_json:
        payload = {**result.summary(), **outputs, **(extra or {})}
        payload["timings_s"] = {k: round(v, 4) for k, v in timings.items()}
        click.echo(json.dumps(payload, indent=2, default=str))
    elif not quiet:
        _print_summary(result, outputs, timings)


def _common_options(fn: F) -> F:
    fn = click.option("--debug", is_flag=True, help="Print the traceback of an error.")(fn)
    fn = click.option("--quiet", "-q", is_flag=True, help="No progress bars, no summary.")(fn)
    fn = click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print a JSON summary on stdout and nothing else.",
    )(fn)
    return fn


_threads_option = click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Threads for every kernel (default: SIMCLUST_NUM_THREADS or all cores).",
)

_max_edges_option = click.option(
    "--max-edges",
    type=click.IntRange(min=1),
    default=None,
    help="Refuse a similarity graph estimated to have more edges (12 bytes each; "
    "default: the config's [run] max_edges, else 100000000).",
)


# --------------------------------------------------------------------------- commands


@click.group(
    help="simclust: the exact cluster structure and geometry of embedding datasets.",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "-V", "--version", prog_name="simclust")
def main() -> None:
    """The ``simclust`` command group (``simclust --help`` lists the commands).

    Example:
        >>> from click.testing import CliRunner
        >>> CliRunner().invoke(main, ["--version"]).output.startswith("simclust, version")
        True

    """


@main.command("analyze")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A TOML config; the options below override it.",
)
@click.option("--strategy", help="Clustering strategy (see `simclust plugins`).")
@click.option("--threshold", type=float, help="Cosine similarity an edge needs.")
@click.option("--k", type=int, help="Neighbours per row of a kNN graph.")
@click.option("--graph", type=click.Choice(["knn", "threshold"]), help="Graph kind.")
@click.option("--n-clusters", type=int, help="Number of clusters (k-means).")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help='Any strategy parameter; VALUE is a TOML literal (0.9, 10, true, "x").',
)
@click.option("--metrics", metavar="NAME,...", help="Metrics to compute, comma-separated.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Output folder (default: the config's [output] dir, else ./{DEFAULT_OUT}).",
)
@click.option("--report/--no-report", default=None, help="Write report.html (default: on).")
@_threads_option
@_max_edges_option
@_common_options
def _analyze(
    path: Path,
    config_file: Path | None,
    strategy: str | None,
    threshold: float | None,
    k: int | None,
    graph: str | None,
    n_clusters: int | None,
    params: tuple[str, ...],
    metrics: str | None,
    out: Path | None,
    report: bool | None,
    threads: int | None,
    max_edges: int | None,
    as_json: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Cluster PATH and measure the clusters; write the tables.

    PATH is a .npy/.npz or Parquet file, an image folder, or whatever an installed
    loader reads. The Parquet tables, manifest.json and report.html are written to
    --out atomically (all or nothing).
    """
    with _errors(debug):
        given = {"threshold": threshold, "k": k, "graph": graph, "n_clusters": n_clusters}
        explicit = {key: value for key, value in given.items() if value is not None}
        cluster_params: dict[str, Any] = {}
        for text in params:
            try:
                key, value = parse_param(text)
            except ParameterError as exc:
                raise ParameterError(f"--param: {exc}") from None
            option = key.replace("_", "-")
            if key in explicit and explicit[key] != value:
                raise ParameterError(f"--param {text} contradicts --{option} {explicit[key]}")
            cluster_params[key] = value
        cluster_params.update(explicit)
        base = config_mod.load_config(config_file) if config_file is not None else {}
        base_output = base.get("output")
        base_dir = base_output.get("dir") if isinstance(base_output, dict) else None
        out_dir = out or Path(base_dir if isinstance(base_dir, str) and base_dir else DEFAULT_OUT)
        raw = analyze_config(
            path,
            base=base,
            strategy=strategy,
            params=cluster_params,
            metrics=None if metrics is None else parse_metrics(metrics),
            threads=threads,
            max_edges=max_edges,
            out=out_dir,
            report=report,
        )
        _check_out_dir(out_dir, path)
        host = get_host()
        with _stage_progress(not quiet) as bars:
            result = pipeline.analyze(config=raw, progress=bars, host=host)
            stages = pipeline.StageTimer(bars)
            with stages.stage("write"):
                result.write(out_dir, report=_report_enabled(result.config["output"]["report"]))
        _finish(result, out_dir, as_json=as_json, quiet=quiet, after=stages.timings)


@main.command("run")
@click.argument("config_file", metavar="CONFIG.toml", type=click.Path(path_type=Path))
@click.option(
    "--report/--no-report",
    default=None,
    help="Write report.html (default: the config's [output] report, else on).",
)
@_common_options
def _run(config_file: Path, report: bool | None, as_json: bool, quiet: bool, debug: bool) -> None:
    """Run a TOML config file.

    The output folder is the config's [output] dir (default: out/ beside the file).
    """
    with _errors(debug):
        raw = config_mod.load_config(config_file)
        output = raw.setdefault("output", {})
        if isinstance(output, dict):
            if not output.get("dir"):
                output["dir"] = str(config_file.resolve().parent / "out")
            if report is not None:
                output["report"] = report
            inp = raw.get("input")
            inp_path = inp.get("path") if isinstance(inp, dict) else None
            _check_out_dir(Path(output["dir"]), inp_path if isinstance(inp_path, str) else None)
            if output.get("report", True) is True and not _report_enabled(True):
                output["report"] = False
        host = get_host()
        with _stage_progress(not quiet) as bars:
            result, out = pipeline.run(raw, progress=bars, host=host)
        _finish(result, out, as_json=as_json, quiet=quiet)


@main.command("sweep")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--thresholds",
    required=True,
    metavar="START:STOP:STEP|T1,T2,...",
    help="Thresholds to try, e.g. 0.8:0.99:0.01 (stop included) or 0.8,0.9,0.95.",
)
@click.option(
    "--graph",
    "graph_kind",
    type=click.Choice(["threshold", "knn"]),
    default="threshold",
    show_default=True,
    help="The exact ε-graph, or each row's k nearest neighbours.",
)
@click.option("--k", type=int, default=10, show_default=True, help="Neighbours for --graph knn.")
@click.option("--loader", help="Loader name (default: the first that reads PATH).")
@_threads_option
@_max_edges_option
@_common_options
def _sweep(
    path: Path,
    thresholds: str,
    graph_kind: str,
    k: int,
    loader: str | None,
    threads: int | None,
    max_edges: int | None,
    as_json: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Components per threshold, to choose a threshold.

    Builds one graph at the lowest threshold and reports, per threshold, the
    connected components, the largest one, the singletons and the edges.
    """
    with _errors(debug):
        try:
            values = parse_thresholds(thresholds)
        except ParameterError as exc:
            raise ParameterError(f"--thresholds: {exc}") from None
        host = get_host()
        inp: dict[str, Any] = {"path": str(path)}
        if loader is not None:
            inp["loader"] = loader
        run: dict[str, Any] = {} if threads is None else {"threads": threads}
        if max_edges is not None:
            run["max_edges"] = max_edges
        cfg = config_mod.resolve({"input": inp, "run": run}, host)
        lo = values[0]
        with _stage_progress(not quiet) as bars:
            stages = pipeline.StageTimer(bars)
            with stages.stage("load"):
                data = pipeline.load_input(path, cfg, host, progress=bars)
            with stages.stage("normalize"):
                x = ops.normalize(np.asarray(data.X), n_threads=threads)
            kind: Literal["knn", "threshold"] = "knn" if graph_kind == "knn" else "threshold"
            spec = GraphSpec(kind, k=k, threshold=lo)
            with stages.stage("graph"):
                cb = None if bars is None else (lambda d, t: bars("graph", d, t))
                graph = build_graph(
                    x, spec, n_threads=threads, progress=cb, max_edges=cfg["run"]["max_edges"]
                )
            with stages.stage("sweep"):
                table = sweep_table(x.shape[0], graph.src, graph.dst, graph.similarity, values)
    n = int(x.shape[0])
    if as_json:
        payload = {
            "input": str(path.resolve()),
            "n_rows": n,
            "graph": {"kind": graph_kind, "k": k if graph_kind == "knn" else None, "threshold": lo},
            "n_edges": graph.n_edges,
            "sweep": table.to_dicts(),
            "timings_s": {key: round(v, 4) for key, v in stages.timings.items()},
        }
        click.echo(json.dumps(payload, indent=2))
        return
    if quiet:
        return
    what = f"{k}-NN graph" if graph_kind == "knn" else "ε-graph"
    out = Table(title=f"{n:,} rows; {what} at ≥ {lo:g}: {graph.n_edges:,} edges")
    for name in ("threshold", "components", "largest", "singletons", "edges"):
        out.add_column(name, justify="right")
    for t, comps, largest, single, edges in table.iter_rows():
        out.add_row(f"{t:g}", f"{comps:,}", f"{largest:,}", f"{single:,}", f"{edges:,}")
    _stdout().print(out)


@main.command("embed")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    required=True,
    help="Output: a folder for fastdup's format, or a file ending in .npz.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["fastdup", "npz"]),
    default=None,
    help="fastdup (atrain_features.dat + .csv) or npz (embeddings + ids); "
    "default: npz when --out ends in .npz, else fastdup.",
)
@click.option("--embedder", default="pixels", show_default=True, help="Registered embedder.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="An embedder parameter (TOML value), repeatable.",
)
@_common_options
def _embed(
    folder: Path,
    out: Path,
    fmt: str | None,
    embedder: str,
    params: tuple[str, ...],
    as_json: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Embed an image folder once and save the features for later runs.

    The fastdup format (``atrain_features.dat`` + ``atrain_features.dat.csv``) is read
    back by ``simclust analyze OUT`` and by fastdup; npz holds ``embeddings`` and
    ``ids``. Unreadable images are listed, not fatal.
    """
    from simclust.io.fastdup import write_fastdup_features

    with _errors(debug):
        kind = fmt or ("npz" if out.suffix.lower() == ".npz" else "fastdup")
        embedder_params: dict[str, Any] = {}
        for text in params:
            key, value = parse_param(text)
            embedder_params[key] = value
        host = get_host()
        cfg = config_mod.resolve(
            {
                "input": {
                    "path": str(folder),
                    "loader": "images",
                    "embedder": embedder,
                    "embedder_params": embedder_params,
                }
            },
            host,
        )
        with _stage_progress(not quiet and not as_json) as bars:
            stages = pipeline.StageTimer(bars)
            with stages.stage("load"):
                data = pipeline.load_input(folder, cfg, host, progress=bars)
            x = np.ascontiguousarray(data.X, dtype=np.float32)
            ids = list(data.ids or [])
            with stages.stage("write"):
                if kind == "npz":
                    tmp = out.with_name(f".{out.name}.tmp.npz")
                    np.savez(tmp, embeddings=x, ids=np.asarray(ids, dtype=str))
                    tmp.replace(out)
                    written = out
                else:
                    written = write_fastdup_features(out, x, ids)
        bad = data.bad_files.height if data.bad_files is not None else 0
    payload = {
        "input": str(folder.resolve()),
        "output": str(Path(written).resolve()),
        "format": kind,
        "n_images": int(x.shape[0]),
        "dim": int(x.shape[1]),
        "n_bad_files": bad,
        "bad_files": [] if data.bad_files is None else data.bad_files.to_dicts(),
        "timings_s": {key: round(v, 4) for key, v in stages.timings.items()},
    }
    if as_json:
        click.echo(json.dumps(payload, indent=2))
    elif not quiet:
        _stdout().print(
            f"embedded {payload['n_images']:,} images ({payload['dim']} dims) with "
            f"{embedder!r} -> {payload['output']} ({kind}); {bad} unreadable file(s)"
        )


@main.command("report")
@click.argument("results", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    default=None,
    help="The HTML file (default: RESULTS/report.html).",
)
@click.option(
    "--images",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder the ids are relative to (default: the run's input folder).",
)
@click.option("--max-clusters", type=int, default=50, show_default=True, help="Galleries.")
@click.option("--gallery-size", type=int, default=24, show_default=True, help="Images each.")
@click.option("--debug", is_flag=True, help="Print the traceback of an error.")
def _report(
    results: Path,
    out: Path | None,
    images: Path | None,
    max_clusters: int,
    gallery_size: int,
    debug: bool,
) -> None:
    """Render the HTML report of a written result folder again.

    For example with more galleries, or after the images moved (``--images``).
    """
    with _errors(debug):
        from simclust.report import write_report

        result = Result.read(results)
        target = out if out is not None else results / REPORT_NAME
        written = write_report(  # refuses to replace a file that is not a simclust report
            result,
            target,
            image_root=images if images is not None else result.image_root(),
            max_clusters=max_clusters,
            gallery_size=gallery_size,
        )
        if target.parent.resolve() == results.resolve():
            result_mod.record_file(results, target.name)  # a later run may replace it
    click.echo(str(written))


@main.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@click.option("--debug", is_flag=True, help="Print the traceback of an error.")
def _plugins(as_json: bool, debug: bool) -> None:
    """List strategies, metrics, loaders and embedders.

    Each with the plugin and the distribution that provides it.
    """
    with _errors(debug):
        frame = get_host().table()
    if as_json:
        click.echo(json.dumps(frame.to_dicts(), indent=2))
        return
    table = Table(title="simclust plugins")
    for name in frame.columns:
        table.add_column(name)
    for row in frame.iter_rows():
        table.add_row(*(_fmt(v) for v in row))
    _stdout().print(table)


@main.command("demo")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(DEMO_OUT),
    show_default=True,
    help="Folder for images/, dataset.parquet and results/.",
)
@click.option(
    "--n-images", type=click.IntRange(min=1), default=3000, show_default=True, help="Images."
)
@click.option(
    "--threshold",
    type=float,
    default=DEMO_THRESHOLD,
    show_default=True,
    help="Cosine threshold of the connected components.",
)
@click.option("--report/--no-report", default=True, show_default=True, help="Write report.html.")
@_threads_option
@_common_options
def _demo(
    out: Path,
    n_images: int,
    threshold: float,
    report: bool,
    threads: int | None,
    as_json: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Cluster a generated image dataset.

    Draws a seeded synthetic image dataset into OUT/images (its ground truth in
    OUT/dataset.parquet), clusters it and writes the tables and report to OUT/results.
    OUT must be new, empty or an earlier demo's folder (recorded in OUT/simclust-demo.json,
    whose images alone are replaced).
    """
    with _errors(debug):
        host = get_host()
        if DEMO_LOADER not in host.loaders:
            raise PluginError(
                f"the demo needs the {DEMO_LOADER!r} loader (image folders); "
                f"loaders: {host.loaders.describe()}"
            )
        try:
            from simclust.testing.images import make_image_dataset
        except ImportError as exc:
            raise SimclustError(f"the demo cannot generate images: {exc}") from exc
        images_dir, results_dir = out / "images", out / "results"
        previous = _check_demo_dir(out)
        _check_out_dir(results_dir, images_dir)
        out.mkdir(parents=True, exist_ok=True)
        _write_demo_marker(out, previous)  # first: a crash leaves nothing unrecorded
        with _stage_progress(not quiet) as bars:
            stages = pipeline.StageTimer(bars)
            with stages.stage("generate"):
                stage = result_mod._make_dir(out, ".images.tmp-")
                try:
                    dataset = make_image_dataset(stage, n_images=n_images, seed=0)
                    fresh = dataset["path"].to_list()
                    _write_demo_marker(out, sorted({*previous, *fresh}))
                    _swap_demo_images(stage, images_dir, previous)
                finally:
                    if stage.exists():
                        shutil.rmtree(stage, ignore_errors=True)
                _write_demo_marker(out, fresh)
                tmp = out / f".{DEMO_DATASET}.tmp"
                dataset.write_parquet(tmp)
                tmp.replace(out / DEMO_DATASET)
            result = pipeline.analyze(
                str(images_dir),
                strategy="connected-components",
                threshold=threshold,
                metrics=list(DEMO_METRICS),
                n_threads=threads,
                progress=bars,
                host=host,
            )
            with stages.stage("write"):
                result.write(results_dir, report=_report_enabled(report))
        extra = {
            "images_dir": str(images_dir.resolve()),
            "dataset": str((out / DEMO_DATASET).resolve()),
        }
        _finish(
            result,
            results_dir,
            as_json=as_json,
            quiet=quiet,
            extra=extra,
            before={"generate": stages.timings["generate"]},
            after={"write": stages.timings["write"]},
        )
