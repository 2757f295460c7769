"""Number formatting shared by the command line and the HTML report.

Example:
    >>> finite("0.5"), finite(float("nan")), finite(None)
    (0.5, None, None)
    >>> fmt_float(0.91234), fmt_float(None), fmt_float(float("inf"), missing="-")
    ('0.912', '—', '-')
    >>> fmt_cell(None), fmt_cell(0.5), fmt_cell(12345), fmt_cell("kmeans")
    ('-', '0.500', '12,345', 'kmeans')

"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MISSING",
    "finite",
    "fmt_cell",
    "fmt_float",
    "outlier_text",
    "rounded",
    "search_lines",
    "search_text",
]

MISSING = "—"
"""What the report shows for a value that is not a finite number."""


def finite(value: object) -> float | None:
    """``value`` as a finite float, else ``None`` (``None``, NaN, ±Inf, not a number)."""
    if value is None:
        return None
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def fmt_float(value: object, digits: int = 3, *, missing: str = MISSING) -> str:
    """A finite number with ``digits`` decimals; anything else is ``missing``."""
    f = finite(value)
    return missing if f is None else f"{f:.{digits}f}"


def rounded(value: object, digits: int = 4) -> float | None:
    """A finite number rounded to ``digits`` decimals (for JSON), else ``None``."""
    f = finite(value)
    return None if f is None else round(f, digits)


def fmt_cell(value: object, digits: int = 3) -> str:
    """A table cell of the command line.

    ``-`` for ``None``, floats with ``digits`` decimals, integers with thousands
    separators, anything else as ``str``.
    """
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def search_text(search: Mapping[str, Any]) -> str:
    """How a search ran, in words: exact, or what a partitioned search cost.

    Example:
        >>> search_text({"method": "ivf", "n_lists": 2000, "nprobe": 8,
        ...     "pairs_computed": 5, "pairs_total": 1000, "recall": 0.987, "recall_rows": 1000})
        'ivf (2,000 lists, nprobe 8): 0.5% of pairs computed, recall 0.987 on 1,000 rows'
        >>> search_text({"method": "exact", "backend": "ray", "tasks": 36, "nodes": 2})
        'exact (every pair; 36 ray tasks on 2 nodes)'
        >>> silhouette = {"method": "ivf", "n_lists": 1294, "nprobe": 8, "pairs_computed": 1,
        ...     "pairs_total": 100, "recall": 0.647, "recall_rows": 1000,
        ...     "overestimate_mean": 0.0123, "overestimate_max": 0.31}
        >>> search_text(silhouette).split(", recall ")[1]
        '0.647 on 1,000 rows, values too high by 0.0123 on average (at most 0.310)'
        >>> search_text({"method": "ivf", "n_lists": 2000, "nprobe": 8, "pairs_computed": 5,
        ...     "pairs_total": 1000, "recall": 0.99, "recall_rows": 9, "backend": "ray",
        ...     "tasks": 61, "nodes": 1}).split(": ")[0]
        'ivf (2,000 lists, nprobe 8; 61 ray tasks on 1 node)'

    """
    method = search.get("method", "exact")
    backend = search.get("backend")
    ran = ""
    if backend is not None:
        nodes = search.get("nodes")
        on = f" on {nodes} node{'s' if nodes != 1 else ''}" if nodes else ""
        tasks = search.get("tasks", 0)
        ran = f"{tasks:,} {backend} task{'s' if tasks != 1 else ''}{on}"
    if method == "exact":
        return f"exact (every pair; {ran})" if ran else "exact (every pair)"
    lists = f"{search.get('n_lists', 0):,} lists"
    if method == "ivf":
        lists += f", nprobe {search.get('nprobe')}"
    if ran:
        lists += f"; {ran}"
    total = search.get("pairs_total") or 0
    share = 100.0 * (search.get("pairs_computed") or 0) / total if total else 100.0
    text = f"{method} ({lists}): {share:.1f}% of pairs computed"
    if method == "certified":
        return text + ", exact"
    recall = search.get("recall")
    if recall is None:
        return text + ", recall not measured"
    text += f", recall {recall:.3f} on {search.get('recall_rows', 0):,} rows"
    over = search.get("overestimate_mean")
    if over is not None:
        text += (
            f", values too high by {over:.4f} on average"
            f" (at most {search.get('overestimate_max', 0.0):.3f})"
        )
    return text


SEARCH_LABELS = {
    "centroid_stats": "nearest-cluster search",
    "inter_centroid": "inter-cluster search",
    "silhouette": "silhouette search",
}
"""How the summaries name each metric search of ``Result.metric_searches``."""


def search_lines(
    graph_search: Mapping[str, Any], metric_searches: Mapping[str, Mapping[str, Any]]
) -> list[tuple[str, str]]:
    """``(label, text)`` for the graph search and each approximate metric search.

    Example:
        >>> search_lines({"method": "exact"}, {"centroid_stats": {"method": "exact"}})
        [('graph search', 'exact (every pair)')]

    """
    lines = [("graph search", search_text(graph_search))] if graph_search else []
    for name, record in metric_searches.items():
        if record.get("method") != "exact":
            lines.append((SEARCH_LABELS.get(name, name), search_text(record)))
    return lines


def outlier_text(record: Mapping[str, Any]) -> str:
    """How the outlier scores' neighbours were found (``Result.outlier_search``), in words.

    Example:
        >>> outlier_text({"k": 10, "source": "run graph", "method": "exact"})
        'k = 10 nearest, from the run graph, exact (every pair)'
        >>> outlier_text({})
        'not computed'

    """
    if not record:
        return "not computed"
    source = "from the run graph" if record.get("source") == "run graph" else "own kNN search"
    return f"k = {record.get('k')} nearest, {source}, {search_text(record)}"
