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

__all__ = ["MISSING", "finite", "fmt_cell", "fmt_float", "rounded"]

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
