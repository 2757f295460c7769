"""A throwaway simclust plugin that registers the built-in name ``kmeans`` again."""

from __future__ import annotations

import numpy as np
import simclust
from simclust.base import Strategy


class NotKMeans(Strategy):
    """Every row in cluster 0."""

    def fit(self, X, *, graph=None):  # noqa: N803
        self.labels_ = np.zeros(len(X), dtype=np.int64)
        return self


@simclust.hookimpl
def simclust_register_strategies(registry):
    registry.register("clash-extra", NotKMeans)
    registry.register("kmeans", NotKMeans)  # no replace=True: a clash
