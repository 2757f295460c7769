"""A throwaway simclust plugin whose strategy raises inside fit."""

from __future__ import annotations

import simclust
from simclust.base import Strategy


class FitFail(Strategy):
    """Always fails."""

    def fit(self, X, *, graph=None):  # noqa: N803
        raise ValueError("fit-fail always fails")


@simclust.hookimpl
def simclust_register_strategies(registry):
    registry.register("fit-fail", FitFail)
