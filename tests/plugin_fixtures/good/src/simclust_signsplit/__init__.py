"""sign-split: a throwaway simclust plugin (a strategy, a metric and run_finished).

``simclust_run_finished`` prints a line to stdout and, when the environment variable
``SIGNSPLIT_MARKER`` names a file, writes a JSON summary of the run there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import polars as pl
import simclust
from simclust.base import Metric, Strategy


class SignSplit(Strategy):
    """Rows with a positive coordinate ``axis`` form cluster 1, the others cluster 0."""

    def __init__(self, *, axis: int = 0) -> None:
        self.axis = axis

    def fit(self, X, *, graph=None):  # noqa: N803
        self.labels_ = (np.asarray(X)[:, self.axis] > 0).astype(np.int64)
        return self


class AxisMean(Metric):
    """The mean of coordinate ``axis`` over each cluster's rows."""

    outputs: ClassVar = {"clusters": {"cluster": pl.Int64(), "axis_mean": pl.Float64()}}

    def __init__(self, *, axis: int = 0) -> None:
        self.axis = axis

    def compute(self, ctx):
        df = pl.DataFrame({"cluster": ctx.labels, "v": ctx.X[:, self.axis].astype(np.float64)})
        out = (
            df.filter(pl.col("cluster") >= 0)
            .group_by("cluster")
            .agg(pl.col("v").mean().alias("axis_mean"))
            .sort("cluster")
        )
        return {"clusters": out}


@simclust.hookimpl
def simclust_register_strategies(registry):
    registry.register("sign-split", SignSplit)


@simclust.hookimpl
def simclust_register_metrics(registry):
    registry.register("axis-mean", AxisMean)


@simclust.hookimpl
def simclust_run_finished(result, config):
    summary = {
        "strategy": config["cluster"]["strategy"],
        "params": config["cluster"]["params"],
        "n_rows": result.assignments.height,
        "n_clusters": result.clusters.height,
        "columns": result.clusters.columns,
    }
    print(f"signsplit run_finished: {json.dumps(summary)}", flush=True)
    marker = os.environ.get("SIGNSPLIT_MARKER")
    if marker:
        Path(marker).write_text(json.dumps(summary))
