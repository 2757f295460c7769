r"""HTML building blocks of the report: escaping, tables, plot containers.

Every string from the data goes through :func:`esc`; JSON inside ``<script>`` goes
through :func:`script_json` (``<``, ``>`` and ``&`` ``\u``-escaped).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "DASH",
    "MAX_TABLE_ROWS",
    "MINUS",
    "SIM",
    "TIMES",
    "cluster_link",
    "count",
    "esc",
    "how",
    "layout",
    "plot",
    "script_json",
    "table",
]

MAX_TABLE_ROWS = 200  # rows of the chained / bad-files tables
SIM = "cosine similarity"
TIMES, MINUS, DASH = "\u00d7", "\u2212", "\u2013"  # times, minus, en dash


def esc(value: object) -> str:
    """HTML-escape ``value`` for text and (quoted) attributes."""
    return html.escape(str(value), quote=True)


def script_json(obj: object) -> str:
    """JSON that is safe inside ``<script>``: no ``<``, ``>`` or ``&`` left."""
    text = json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun in the right number: ``1 member``, ``2 members``, ``1,024 rows``."""
    return f"{n:,} {noun if n == 1 else (plural or noun + 's')}"


def how(text: str) -> str:
    """The "How to read this" paragraph of a section."""
    return f'<p class="how"><b>How to read this:</b> {text}</p>\n'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "data") -> str:
    """A table; ``headers`` and cells are HTML already (callers escape data)."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>\n" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>\n'


def plot(name: str, figure: Mapping[str, Any], height: int = 420) -> str:
    """A plotly div and its figure as escaped JSON (drawn by the page script)."""
    return (
        f'<div class="plot" id="plot-{name}" data-spec="spec-{name}" '
        f'style="height:{height}px"></div>\n'
        f'<script type="application/json" id="spec-{name}">{script_json(figure)}</script>\n'
    )


def layout(**extra: Any) -> dict[str, Any]:
    """A plotly layout: the report's defaults, updated with ``extra``."""
    base: dict[str, Any] = {
        "margin": {"l": 70, "r": 30, "t": 30, "b": 60},
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
        "hovermode": "closest",
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#fafafa",
    }
    base.update(extra)
    return base


def cluster_link(cluster: object, shown: set[int]) -> str:
    """A link to the cluster's gallery when it has one, else the cluster id."""
    c = int(cluster)  # type: ignore[call-overload]
    return f'<a href="#cluster-{c}">{c}</a>' if c in shown else str(c)
