"""A throwaway simclust plugin whose second registration hook raises.

Its strategy registers fine first, so a host built with ``strict=False`` must drop it
again: a plugin that fails is skipped entirely.
"""

from __future__ import annotations

import numpy as np
import simclust
from simclust.base import Strategy


class Zeros(Strategy):
    """Every row in cluster 0."""

    def fit(self, X, *, graph=None):  # noqa: N803
        self.labels_ = np.zeros(len(X), dtype=np.int64)
        return self


@simclust.hookimpl
def simclust_register_strategies(registry):
    registry.register("regfail-strategy", Zeros)


@simclust.hookimpl
def simclust_register_metrics(registry):
    raise RuntimeError("regfail cannot register its metrics")
