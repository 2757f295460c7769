"""Option parsing shared by the commands.

Thresholds, ``KEY=VALUE`` parameters, metric lists, and the click options several
commands take (``--json/--quiet/--debug``, ``--threads``, ``--max-edges``, ``--backend``/
``--address``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any, TypeVar

import click

from simclust.exceptions import ParameterError

__all__ = [
    "MAX_THRESHOLDS",
    "backend_options",
    "common_options",
    "max_edges_option",
    "parse_metrics",
    "parse_param",
    "parse_thresholds",
    "search_options",
    "threads_option",
]

MAX_THRESHOLDS = 10_000

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.+-]*")

F = TypeVar("F", bound=Callable[..., Any])


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


def common_options(fn: F) -> F:
    """``--json``, ``--quiet/-q`` and ``--debug``."""
    fn = click.option("--debug", is_flag=True, help="Print the traceback of an error.")(fn)
    fn = click.option("--quiet", "-q", is_flag=True, help="No progress bars, no summary.")(fn)
    fn = click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print a JSON summary on stdout and nothing else.",
    )(fn)
    return fn


threads_option = click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Threads for every kernel (default: SIMCLUST_NUM_THREADS or all cores).",
)

max_edges_option = click.option(
    "--max-edges",
    type=click.IntRange(min=1),
    default=None,
    help="Refuse a similarity graph estimated to have more edges (12 bytes each; "
    "default: the config's [run] max_edges, else 100000000).",
)


def search_options(fn: F) -> F:
    """``--search`` and ``--nprobe``: how the similarity graph is searched."""
    fn = click.option(
        "--nprobe",
        type=click.IntRange(min=1),
        default=None,
        help="Nearest lists compared in an ivf search (default: 2 per row for a kNN "
        "graph, 8 per list for a threshold graph).",
    )(fn)
    fn = click.option(
        "--search",
        type=click.Choice(["auto", "exact", "ivf", "certified"]),
        default=None,
        help="Graph search: exact brute force, ivf (approximate, recall measured and "
        "reported), certified (exact threshold graph, pruned), or auto (default: exact "
        "while the brute force is small, else ivf).",
    )(fn)
    return fn


def backend_options(fn: F) -> F:
    """``--backend`` and ``--address``: where the run computes."""
    fn = click.option(
        "--address",
        default=None,
        metavar="ADDRESS",
        help="Ray cluster to join with --backend ray ('auto', or host:port such as "
        "127.0.0.1:6379; default: the config's [run] address, else a local runtime).",
    )(fn)
    fn = click.option(
        "--backend",
        type=click.Choice(["native", "ray"]),
        default=None,
        help="native (default: this process) or ray (the graph as Ray tasks; "
        'pip install "simclust[ray]").',
    )(fn)
    return fn
