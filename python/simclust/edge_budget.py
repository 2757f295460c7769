"""The edge budget of a similarity graph: refuse, before building it, a graph too large.

:func:`check_edge_budget` (called by :func:`simclust.graph.build_graph`) bounds a kNN
graph's edges by ``N k`` and estimates an ε-graph's from a seeded sample of rows
(:func:`estimate_edges`), so a threshold that would link most pairs fails in a second with
a message, not after an hour with an out-of-memory kill.

Example:
    >>> import numpy as np
    >>> X = np.eye(4, dtype=np.float32)
    >>> estimate_edges(X, 0.5)
    EdgeEstimate(edges=0, upper=0, exact=True)

"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import numpy.typing as npt

from simclust.exceptions import ConfigError, ParameterError

if TYPE_CHECKING:
    from simclust.graph import GraphSpec

__all__ = [
    "BYTES_PER_EDGE",
    "DEFAULT_MAX_EDGES",
    "EdgeEstimate",
    "check_edge_budget",
    "estimate_edges",
]


DEFAULT_MAX_EDGES = 100_000_000
"""Default edge budget of :func:`build_graph`: 12 bytes an edge, about 1.2 GB."""

BYTES_PER_EDGE = 12
"""An edge is a uint32 source, a uint32 destination and a float32 similarity."""

_SAMPLE_ROWS = 256
_SAMPLE_OTHERS = 4096
_SAMPLE_SEED = 0x5EED


class EdgeEstimate(NamedTuple):
    """An estimate of the number of edges of an ε-graph (see :func:`estimate_edges`).

    Attributes:
        edges: the point estimate.
        upper: an upper confidence bound (mean + 3 standard errors of the sampled rows'
            degrees); equals ``edges`` when every pair was counted.
        exact: whether every pair was counted (no sampling).

    """

    edges: int
    upper: int
    exact: bool


def estimate_edges(
    X: npt.NDArray[np.float32],  # noqa: N803
    threshold: float,
) -> EdgeEstimate:
    """Estimate the edges of the ε-graph at ``threshold`` over the unit rows of ``X``.

    The exact similarities of up to 256 seeded sampled rows against up to 4096 other
    sampled rows give each sampled row's fraction of neighbours ``>= threshold``; their
    mean scaled to ``N (N - 1) / 2`` pairs is the estimate, and the mean plus three
    standard errors the upper bound (rows of a dense cluster have many neighbours, the
    rest few, so the spread of the per-row fractions is what the error depends on). On
    at most 256 rows every pair is counted. Cost: ``256 x 4096`` dot products.

    Example:
        >>> X = np.eye(3, dtype=np.float32)
        >>> estimate_edges(X, -1.0), estimate_edges(X, 0.5).edges
        (EdgeEstimate(edges=3, upper=3, exact=True), 0)

    """
    n = int(X.shape[0])
    pairs = n * (n - 1) // 2
    if n < 2:
        return EdgeEstimate(0, 0, True)
    t = np.float32(threshold)
    rng = np.random.default_rng(_SAMPLE_SEED)
    exact = n <= _SAMPLE_ROWS
    rows = np.arange(n) if exact else np.sort(rng.choice(n, _SAMPLE_ROWS, replace=False))
    others = np.arange(n) if n <= _SAMPLE_OTHERS else np.sort(rng.choice(n, _SAMPLE_OTHERS, False))
    a = np.asarray(X[rows], dtype=np.float32)
    b = np.asarray(X[others], dtype=np.float32)
    hits = (a @ b.T) >= t
    same = rows[:, None] == others[None, :]
    hits &= ~same
    valid = others.size - same.sum(axis=1)
    frac = hits.sum(axis=1) / np.maximum(valid, 1)
    if exact:
        edges = int(hits.sum()) // 2
        return EdgeEstimate(edges, edges, True)
    mean = float(frac.mean())
    se = float(frac.std(ddof=1)) / np.sqrt(frac.size)
    upper = min(1.0, mean + 3.0 * se)
    return EdgeEstimate(round(mean * pairs), round(upper * pairs), False)


def _size(n_bytes: int) -> str:
    if n_bytes >= 10**9:
        return f"about {n_bytes / 1e9:.1f} GB"
    if n_bytes >= 10**6:
        return f"about {n_bytes / 1e6:.0f} MB"
    return f"{n_bytes:,} bytes"


def _millions(n: int) -> str:
    return f"{n / 1e6:,.1f} M" if n >= 100_000 else f"{n:,}"


def check_edge_budget(
    X: npt.NDArray[np.float32],  # noqa: N803
    spec: GraphSpec,
    max_edges: int | None,
) -> None:
    """Refuse a graph that would have more than ``max_edges`` edges.

    A kNN graph has at most ``N * k`` edges; an ε-graph's edge count is estimated with
    :func:`estimate_edges` (only when ``N (N - 1) / 2`` pairs could exceed the budget).
    ``max_edges=None`` checks nothing.

    Raises:
        ConfigError: the graph (or its estimate's upper bound) exceeds the budget; the
            message gives the estimate, the budget and how to raise it.

    Example:
        >>> from simclust.graph import GraphSpec
        >>> X = np.eye(4, dtype=np.float32)
        >>> check_edge_budget(X, GraphSpec("knn", k=2), 8)
        >>> try:
        ...     check_edge_budget(X, GraphSpec("threshold", threshold=-1.0), 5)
        ... except ConfigError as e:
        ...     print(str(e).split(", more")[0])
        the ε-graph at threshold -1 over 4 rows would have about 6 edges (counted)

    """
    if max_edges is None:
        return
    if isinstance(max_edges, bool) or not isinstance(max_edges, int | np.integer) or max_edges < 1:
        raise ParameterError(f"max_edges must be a positive int or None, got {max_edges!r}")
    n = int(X.shape[0])
    how = "raise it with [run] max_edges, analyze(max_edges=...) or --max-edges"
    budget = (
        f"the edge budget max_edges = {max_edges:,} "
        f"({_size(max_edges * BYTES_PER_EDGE)} at {BYTES_PER_EDGE} bytes an edge)"
    )
    if spec.kind == "knn":
        k = min(spec.k, max(n - 1, 0))
        if n * k > max_edges:
            raise ConfigError(
                f"the {spec.k}-NN graph over {n:,} rows has up to {_millions(n * k)} edges, "
                f"more than {budget}; {how}, or use a smaller k"
            )
        return
    if n * (n - 1) // 2 <= max_edges:
        return  # even the complete graph fits
    assert spec.threshold is not None
    est = estimate_edges(X, spec.threshold)
    if est.upper > max_edges:
        what = (
            "(counted)"
            if est.exact
            else f"(estimated from a sample of rows; up to {_millions(est.upper)})"
        )
        raise ConfigError(
            f"the ε-graph at threshold {spec.threshold:g} over {n:,} rows would have "
            f"about {_millions(est.edges)} edges {what}, more than {budget}; {how}, "
            "or use a higher threshold or a kNN graph"
        )
