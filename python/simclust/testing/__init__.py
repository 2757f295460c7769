"""Helpers for testing and benchmarking simclust: seeded synthetic datasets.

Example:
    >>> from simclust.testing import make_embeddings
    >>> make_embeddings(100, 8, seed=0).shape
    (100, 8)

"""

from __future__ import annotations

from simclust.testing.checks import (
    check_metric,
    check_strategy,
    make_host,
    metric_checks,
    parametrize_with_checks,
    strategy_checks,
)
from simclust.testing.datasets import make_embeddings

__all__ = [
    "check_metric",
    "check_strategy",
    "make_embeddings",
    "make_host",
    "metric_checks",
    "parametrize_with_checks",
    "strategy_checks",
]
