"""A throwaway simclust plugin published under another distribution's entry-point name.

``simclust-dupname`` declares the entry point ``signsplit``, which
``simclust-signsplit`` declares too.
"""

from __future__ import annotations

import numpy as np
import simclust
from simclust.base import Strategy


class DupZeros(Strategy):
    """Every row in cluster 0."""

    def fit(self, X, *, graph=None):  # noqa: N803
        self.labels_ = np.zeros(len(X), dtype=np.int64)
        return self


@simclust.hookimpl
def simclust_register_strategies(registry):
    registry.register("dup-zeros", DupZeros)
