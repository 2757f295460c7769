"""simclust-labels: the ``label-purity`` metric, for datasets with class annotations.

Clusters of near-identical embeddings should mostly share one class. For every
cluster this plugin reports its majority class, its purity and the entropy of its
labels, and flags the rows whose class disagrees with the clear majority of a large
enough cluster as ``suspect_label`` (fastdup's "find wrong labels" use case).

The plugin is found through the ``simclust`` entry-point group (this module is the
entry point's value) and registers :class:`LabelPurity` as ``label-purity`` with
:func:`simclust_register_metrics`.

Example:
    >>> import simclust
    >>> simclust.get_host().metrics.get("label-purity").distribution
    'simclust-labels'

"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import polars as pl
from simclust.base import Metric, MetricContext
from simclust.exceptions import ParameterError, ShapeError
from simclust.host import Registry, hookimpl

__all__ = [
    "ASSIGNMENTS_SCHEMA",
    "CLUSTERS_SCHEMA",
    "LabelPurity",
    "simclust_register_metrics",
]

CLUSTERS_SCHEMA: dict[str, pl.DataType] = {
    "cluster": pl.Int64(),
    "n_labeled": pl.UInt32(),
    "majority_label": pl.String(),
    "purity": pl.Float32(),
    "label_entropy": pl.Float32(),
}
"""The per-cluster columns of ``label-purity`` (joined into ``Result.clusters``)."""

ASSIGNMENTS_SCHEMA: dict[str, pl.DataType] = {
    "index": pl.UInt32(),
    "label": pl.String(),
    "suspect_label": pl.Boolean(),
}
"""The per-row columns of ``label-purity`` (joined into ``Result.assignments``)."""

_NESTED = (pl.List, pl.Array, pl.Struct, pl.Object)


class LabelPurity(Metric):
    """How pure each cluster is in the class labels, and which labels look wrong.

    The class of each row comes from the per-row column ``label_column`` of
    ``ctx.rows``: the Parquet loader passes a file's non-embedding columns, and
    ``simclust.analyze(X, rows=pl.DataFrame({"label": ...}))`` passes them explicitly.
    Labels may be strings, integers or any scalar type; they are compared as strings
    (``str`` of the value; polars' cast). Nulls (and float NaN) mean "unlabelled".

    Per cluster (noise, ``-1``, is not a cluster), frame ``clusters``:

    * ``n_labeled``: members with a label;
    * ``majority_label``: the most frequent label, ties broken by the
      lexicographically smallest (string) label; null when no member is labelled;
    * ``purity``: the majority label's count / ``n_labeled`` (null when 0);
    * ``label_entropy``: Shannon entropy in bits of the labelled members' label
      distribution, ``sum p log2(1/p)`` (0 for a pure cluster; null when unlabelled).

    Per row, frame ``assignments``:

    * ``label``: the row's label as a string (null when missing);
    * ``suspect_label``: true when the row's cluster has at least ``min_size``
      members (labelled or not), ``purity >= min_purity`` and the row's label differs
      from the majority label; false otherwise, including noise and unlabelled rows.

    Computed with polars ``group_by`` over the label counts: O(N), no per-row Python.

    Args:
        label_column: the per-row column holding the class labels.
        min_purity: a cluster is "pure enough" to accuse its minority rows when its
            purity is at least this, in ``[0, 1]``.
        min_size: only clusters with at least this many members accuse rows (>= 1).

    Example:
        >>> X = np.eye(6, dtype=np.float32)
        >>> labels = np.array([0, 0, 0, 0, 1, -1])
        >>> rows = pl.DataFrame({"label": ["cat", "cat", "cat", "dog", "dog", "cat"]})
        >>> out = LabelPurity(min_purity=0.7).compute(MetricContext(X, labels, rows=rows))
        >>> out["clusters"].select("cluster", "majority_label", "purity").rows()
        [(0, 'cat', 0.75), (1, 'dog', 1.0)]
        >>> out["assignments"]["suspect_label"].to_list()
        [False, False, False, True, False, False]

    """

    outputs: ClassVar[Mapping[str, Mapping[str, pl.DataType]]] = {
        "clusters": CLUSTERS_SCHEMA,
        "assignments": ASSIGNMENTS_SCHEMA,
    }

    def __init__(
        self, *, label_column: str = "label", min_purity: float = 0.8, min_size: int = 3
    ) -> None:
        self.label_column = label_column
        self.min_purity = min_purity
        self.min_size = min_size

    def _validate(self) -> None:
        """Raise :class:`ParameterError` for an invalid parameter."""
        if not isinstance(self.label_column, str) or not self.label_column:
            raise ParameterError(
                f"label-purity: label_column must be a non-empty string, got {self.label_column!r}"
            )
        mp = self.min_purity
        if (
            isinstance(mp, bool)
            or not isinstance(mp, int | float | np.integer | np.floating)
            or not math.isfinite(float(mp))
            or not 0.0 <= float(mp) <= 1.0
        ):
            raise ParameterError(f"label-purity: min_purity must be in [0, 1], got {mp!r}")
        ms = self.min_size
        if isinstance(ms, bool) or not isinstance(ms, int | np.integer) or ms < 1:
            raise ParameterError(f"label-purity: min_size must be an int >= 1, got {ms!r}")

    def row_labels(self, ctx: MetricContext) -> pl.Series:
        """The class label of every row as a String series named ``label`` (nulls allowed).

        Raises:
            ParameterError: no per-row columns, no column ``label_column`` (the
                available columns are listed), or a column of nested values.
            ShapeError: the column's length is not the number of rows.

        """
        col = self.label_column
        rows = ctx.rows
        if rows is None:
            raise ParameterError(
                f"label-purity: no per-row columns were given, so there is no label column "
                f"{col!r}; pass rows=polars.DataFrame({{{col!r}: [...]}}) to simclust.analyze, "
                f"or read a Parquet file with a {col!r} column"
            )
        if col not in rows.columns:
            available = ", ".join(repr(c) for c in rows.columns) or "(none)"
            raise ParameterError(
                f"label-purity: no per-row column {col!r}; available columns: {available} "
                "(set the metric's label_column)"
            )
        s = rows.get_column(col)
        if s.len() != ctx.n_rows:
            raise ShapeError(
                f"label-purity: column {col!r} has {s.len()} values but there are {ctx.n_rows} rows"
            )
        if isinstance(s.dtype, _NESTED):
            raise ParameterError(
                f"label-purity: column {col!r} holds {s.dtype} values; labels must be "
                "scalars (strings, integers, ...)"
            )
        if s.dtype.is_float():
            s = s.fill_nan(None)
        try:
            out = s.cast(pl.String)
        except pl.exceptions.PolarsError as exc:
            raise ParameterError(
                f"label-purity: cannot read column {col!r} ({s.dtype}) as labels: {exc}"
            ) from exc
        return out.alias("label")

    def compute(self, ctx: MetricContext) -> dict[str, pl.DataFrame]:
        """Purity per cluster and suspect labels per row (see the class docstring)."""
        self._validate()
        labels = self.row_labels(ctx)
        n = ctx.n_rows
        rows = pl.DataFrame(
            [
                pl.Series("index", np.arange(n, dtype=np.uint32), dtype=pl.UInt32),
                pl.Series("cluster", np.asarray(ctx.labels), dtype=pl.Int64),
                labels,
            ]
        )
        clustered = rows.filter(pl.col("cluster") >= 0)
        sizes = clustered.group_by("cluster").agg(pl.len().alias("size"))
        counts = (
            clustered.drop_nulls("label")
            .group_by("cluster", "label")
            .agg(pl.len().cast(pl.Int64).alias("count"))
            .sort("cluster", "label")  # fixed order inside each group: deterministic sums
            .with_columns((pl.col("count") / pl.col("count").sum().over("cluster")).alias("p"))
        )
        per = counts.group_by("cluster", maintain_order=True).agg(
            pl.col("count").sum().alias("n_labeled"),
            pl.col("count").max().alias("majority_count"),
            pl.col("label")
            .sort_by(["count", "label"], descending=[True, False])
            .first()
            .alias("majority_label"),
            (pl.col("p") * (1.0 / pl.col("p")).log(2)).sum().alias("label_entropy"),
        )
        stats = (
            sizes.join(per, on="cluster", how="left")
            .with_columns(
                pl.col("n_labeled").fill_null(0),
                (pl.col("majority_count") / pl.col("n_labeled")).alias("purity"),
            )
            .sort("cluster")
        )
        clusters = stats.select(
            [pl.col(name).cast(dtype) for name, dtype in CLUSTERS_SCHEMA.items()]
        )

        suspect = (
            (pl.col("size") >= self.min_size)
            & (pl.col("purity") >= float(self.min_purity))  # in float64: 4/5 >= 0.8 holds
            & pl.col("label").is_not_null()
            & (pl.col("label") != pl.col("majority_label"))
        )
        assignments = (
            rows.join(
                stats.select("cluster", "size", "purity", "majority_label"),
                on="cluster",
                how="left",
                maintain_order="left",
            )
            .with_columns(suspect.fill_null(False).alias("suspect_label"))
            .select([pl.col(name).cast(dtype) for name, dtype in ASSIGNMENTS_SCHEMA.items()])
        )
        return {"clusters": clusters, "assignments": assignments}


@hookimpl
def simclust_register_metrics(registry: Registry[type[Any]]) -> None:
    """Register :class:`LabelPurity` as the metric ``label-purity``."""
    registry.register("label-purity", LabelPurity)
