"""What the report shows, chosen from a :class:`~simclust.Result`: no HTML here.

Pure functions of a result and the report's limits, returning plain data or Polars
frames: the galleries (the largest clusters, members ordered by similarity to the
centroid), the chained clusters and why each is flagged, the outliers (the rows least
similar to their nearest neighbour, at or below a stated cut-off), the noise rows, the
clusters of the centroid heatmap and of the tightness plot, and the cluster size
histogram.

Example:
    >>> import numpy as np
    >>> from simclust import analyze
    >>> from simclust.testing import make_embeddings
    >>> res = analyze(make_embeddings(200, 16, n_clusters=4, seed=0), threshold=0.8)
    >>> gals = galleries(res, max_clusters=2, gallery_size=8)
    >>> [g.row["size"] for g in gals], [len(g.head) + len(g.tail) for g in gals]
    ([77, 53], [8, 8])
    >>> sims = [m.similarity for m in gals[0].head[1:]]  # after the medoid
    >>> sims == sorted(sims, reverse=True)
    True
    >>> out = outliers(res, 3)
    >>> out.rows.height, out.n_flagged, out.n_scored
    (2, 2, 200)

"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import polars as pl

from simclust._format import finite, fmt_float
from simclust.duplicates import DUPLICATE_PAIRS_SCHEMA, summarize
from simclust.outliers import OUTLIER_PERCENTILE, outlier_cutoff
from simclust.result import (
    CHAIN_MAX_CONDUCTANCE,
    CHAIN_MIN_PART,
    CHAIN_PART_SHARE,
    chain_split_threshold,
)

if TYPE_CHECKING:
    from simclust.result import Result

__all__ = [
    "MAX_SCATTER",
    "DuplicateGroup",
    "DuplicateGroups",
    "Gallery",
    "Heatmap",
    "Member",
    "Outliers",
    "SizeBin",
    "SuspectLabels",
    "chained_clusters",
    "duplicate_groups",
    "galleries",
    "heatmap",
    "noise_rows",
    "outliers",
    "size_histogram",
    "suspect_labels",
    "tightness_clusters",
]

MAX_SCATTER = 20_000
"""Clusters in the tightness plot (the largest, plus every chained one)."""

_DASH = "\u2013"


@dataclass(frozen=True)
class Member:
    """One member shown in a gallery."""

    index: int
    id: str
    similarity: float | None  # to the cluster's centroid
    silhouette: float | None
    medoid: bool


@dataclass(frozen=True)
class Gallery:
    """A cluster's gallery: its most central members, then (after a gap) its least."""

    row: dict[str, Any]  # the cluster's row of result.clusters
    head: list[Member]
    tail: list[Member]
    omitted: int  # members between head and tail, not shown
    omitted_range: tuple[float | None, float | None]  # their similarity to the centroid


@dataclass(frozen=True)
class Heatmap:
    """The largest clusters of the centroid matrix, largest first."""

    clusters: list[int]
    sizes: list[int]
    similarity: npt.NDArray[np.float64]  # k x k centroid cosine similarities, in that order
    n_matrix: int  # clusters in the whole matrix


@dataclass(frozen=True)
class Outliers:
    """The rows the outliers view shows and the cut-off that chose them."""

    rows: pl.DataFrame  # rows of assignments (+ ``size``), lowest nn_similarity first
    cutoff: float | None  # nn_similarity at or below which a row is flagged
    percentile: float  # the percentile of nn_similarity the cut-off is
    n_flagged: int  # rows at or below the cut-off (rows shows at most n of them)
    n_scored: int  # rows with an nn_similarity


@dataclass(frozen=True)
class SizeBin:
    """Clusters whose size lies in one doubling range (``1``, ``2``, ``3-4``, ``5-8``, ...)."""

    label: str
    n_clusters: int
    n_rows: int


@dataclass(frozen=True)
class SuspectLabels:
    """The rows whose label disagrees with their cluster's majority (``label-purity``)."""

    rows: pl.DataFrame  # rows of assignments + size, majority_label, purity; largest first
    n_suspect: int  # rows flagged (rows shows at most n of them)
    n_clusters: int  # clusters with at least one flagged row


@dataclass(frozen=True)
class DuplicateGroup:
    """One group of near-duplicates: its members (the kept one first) and its pairs."""

    group: int
    size: int
    members: pl.DataFrame  # rows of tables["duplicates"]: kept, then most similar to it
    pairs: pl.DataFrame  # rows of tables["duplicate_pairs"]: most similar first
    n_pairs: int  # pairs of the group (pairs shows at most as many as members)


@dataclass(frozen=True)
class DuplicateGroups:
    """The largest near-duplicate groups and the counts of the whole search."""

    groups: list[DuplicateGroup]
    summary: dict[str, Any]  # :func:`simclust.duplicates.summarize`


def _members(rows: Iterable[Mapping[str, Any]]) -> list[Member]:
    return [
        Member(
            int(r["index"]),
            str(r["id"]),
            finite(r["centroid_similarity"]),
            finite(r["silhouette"]),
            bool(r["is_medoid"]),
        )
        for r in rows
    ]


def galleries(result: Result, max_clusters: int, gallery_size: int) -> list[Gallery]:
    """The ``max_clusters`` largest clusters (size >= 2) and the members each shows.

    Members are ordered medoid first, then by similarity to the centroid (highest first,
    ties by row index). A cluster larger than ``gallery_size`` shows its first
    ``gallery_size - gallery_size // 4`` members and its last ``gallery_size // 4``
    (none below 8); the others are counted in ``omitted``.
    """
    shown = (
        result.clusters.filter(pl.col("size") >= 2)
        .sort(["size", "cluster"], descending=[True, False])
        .head(max_clusters)
    )
    if shown.height == 0:
        return []
    n = gallery_size
    n_tail = n // 4 if n >= 8 else 0
    n_head = n - n_tail
    members = (
        result.assignments.select("index", "id", "cluster", "centroid_similarity", "silhouette")
        .join(shown.select("cluster", "size", "medoid"), on="cluster", how="inner")
        .with_columns(is_medoid=(pl.col("index") == pl.col("medoid")).fill_null(False))
        .sort(
            ["cluster", "is_medoid", "centroid_similarity", "index"],
            descending=[False, True, True, False],
            nulls_last=True,
        )
        .with_columns(rank=pl.int_range(pl.len()).over("cluster"))
    )
    keep = (
        (pl.col("size") <= n)
        | (pl.col("rank") < n_head)
        | (pl.col("rank") >= pl.col("size").cast(pl.Int64) - n_tail)
    )
    omitted_stats = (
        members.filter(~keep)
        .group_by("cluster")
        .agg(
            lo=pl.col("centroid_similarity").min(),
            hi=pl.col("centroid_similarity").max(),
        )
    )
    omitted = {int(r["cluster"]): (r["lo"], r["hi"]) for r in omitted_stats.iter_rows(named=True)}
    kept = members.filter(keep)
    by_cluster: dict[int, list[dict[str, Any]]] = {}
    for r in kept.iter_rows(named=True):
        by_cluster.setdefault(int(r["cluster"]), []).append(r)
    out = []
    for row in shown.iter_rows(named=True):
        c = int(row["cluster"])
        rows = by_cluster.get(c, [])
        size = int(row["size"])
        if size <= n:
            head, tail, n_omitted = rows, [], 0
        else:
            head, tail, n_omitted = rows[:n_head], rows[n_head:], size - n
        lo, hi = omitted.get(c, (None, None))
        out.append(
            Gallery(row, _members(head), _members(tail), n_omitted, (finite(lo), finite(hi)))
        )
    return out


def chained_clusters(result: Result, threshold: float | None) -> pl.DataFrame:
    """:meth:`Result.chained_clusters` as rows of ``result.clusters``, plus ``why``.

    Most weakly joined first; ``why`` says what flagged each cluster, with ``threshold``
    (the run's, :meth:`Result.threshold`). Empty (with the columns) when ``threshold`` is
    ``None``.
    """
    flags = result.chained_clusters()
    if threshold is None or flags.height == 0:
        return result.clusters.head(0).with_columns(why=pl.lit(None, dtype=pl.String))
    flagged = result.clusters.join(
        flags.select("cluster", _parts="n_parts", _conductance="conductance"),
        on="cluster",
        how="inner",
        maintain_order="right",
    )
    split = fmt_float(chain_split_threshold(threshold))
    why = [
        f"{r['_parts']} parts of \u2265 {CHAIN_PART_SHARE:.0%} (and \u2265 {CHAIN_MIN_PART} "
        f"members) at similarity \u2265 {split}, one joined to the rest with conductance "
        f"{r['_conductance']:.4f} < {CHAIN_MAX_CONDUCTANCE}"
        for r in flagged.iter_rows(named=True)
    ]
    return flagged.drop("_parts", "_conductance").with_columns(why=pl.Series(why, dtype=pl.String))


def outliers(result: Result, n: int) -> Outliers:
    """The rows least similar to their nearest neighbour: clustered, singletons and noise.

    Rows of ``result.assignments`` with their cluster's ``size`` (null for noise) whose
    ``nn_similarity`` is at or below the cut-off (:func:`simclust.outliers.outlier_cutoff`,
    the :data:`~simclust.outliers.OUTLIER_PERCENTILE` th percentile), lowest
    ``nn_similarity`` first (ties by ``knn_sim_mean``, then row index); at most ``n``.
    """
    scores = result.assignments["nn_similarity"]
    cutoff = outlier_cutoff(scores)
    flagged = result.assignments.filter(
        pl.col("nn_similarity") <= (cutoff if cutoff is not None else float("-inf"))
    )
    rows = (
        flagged.join(result.clusters.select("cluster", "size"), on="cluster", how="left")
        .sort(["nn_similarity", "knn_sim_mean", "index"])
        .head(n)
    )
    return Outliers(
        rows, cutoff, OUTLIER_PERCENTILE, flagged.height, scores.len() - scores.null_count()
    )


def noise_rows(result: Result, n: int) -> pl.DataFrame:
    """The first ``n`` noise rows (cluster ``-1``) of ``result.assignments``, by row index."""
    return result.assignments.filter(pl.col("cluster") < 0).sort("index").head(n)


def heatmap(result: Result, max_clusters: int) -> Heatmap | None:
    """The ``max_clusters`` largest clusters of the centroid matrix (ties by cluster id).

    ``None`` when the run has no centroid matrix (the ``inter`` metric did not run).
    """
    ids = np.asarray(result.centroid_matrix_clusters, dtype=np.int64)
    m = np.asarray(result.centroid_matrix, dtype=np.float64)
    if ids.size == 0 or m.shape != (ids.size, ids.size):
        return None
    size_of = dict(
        zip(result.clusters["cluster"].to_list(), result.clusters["size"].to_list(), strict=True)
    )
    order = sorted(range(ids.size), key=lambda i: (-int(size_of.get(int(ids[i]), 0)), int(ids[i])))
    order = order[:max_clusters]
    cids = [int(ids[i]) for i in order]
    return Heatmap(
        clusters=cids,
        sizes=[int(size_of.get(c, 0)) for c in cids],
        similarity=m[np.ix_(order, order)],
        n_matrix=int(ids.size),
    )


def tightness_clusters(
    result: Result, chained: Iterable[int], limit: int = MAX_SCATTER
) -> tuple[pl.DataFrame, int]:
    """The clusters of the tightness plot, and how many clusters qualify.

    Clusters of >= 2 members with an all-pairs ``sim_min``; past ``limit``, the ``limit``
    largest plus every ``chained`` one.
    """
    cl = result.clusters.filter((pl.col("size") >= 2) & pl.col("sim_min").is_not_null())
    total = cl.height
    if total > limit:
        big = cl.sort(["size", "cluster"], descending=[True, False]).head(limit)
        rest = cl.filter(
            pl.col("cluster").is_in(list(chained))
            & ~pl.col("cluster").is_in(big["cluster"].to_list())
        )
        cl = pl.concat([big, rest])
    return cl, total


def size_histogram(result: Result) -> list[SizeBin]:
    """Clusters and rows per doubling size range, from size 1 to the largest cluster."""
    sizes = result.clusters["size"].to_numpy().astype(np.int64)
    if sizes.size == 0:
        return []
    bins = np.array([int(v - 1).bit_length() for v in sizes], dtype=np.int64)
    out = []
    for b in range(int(bins.max()) + 1):
        lo, hi = (1, 1) if b == 0 else (2 ** (b - 1) + 1, 2**b)
        mask = bins == b
        out.append(
            SizeBin(
                str(lo) if lo == hi else f"{lo}{_DASH}{hi}",
                int(mask.sum()),
                int(sizes[mask].sum()),
            )
        )
    return out


def suspect_labels(result: Result, n: int) -> SuspectLabels | None:
    """The rows ``label-purity`` flagged (``suspect_label``), largest clusters first.

    Rows of ``result.assignments`` with their cluster's ``size``, ``majority_label`` and
    ``purity``, ordered by cluster size (largest first), then cluster id, then row
    index; at most ``n``. ``None`` when the metric did not run.
    """
    a = result.assignments
    if "suspect_label" not in a.columns or "majority_label" not in result.clusters.columns:
        return None
    flagged = a.filter(pl.col("suspect_label"))
    rows = (
        flagged.join(
            result.clusters.select("cluster", "size", "majority_label", "purity"),
            on="cluster",
            how="left",
        )
        .sort(["size", "cluster", "index"], descending=[True, False, False])
        .head(n)
    )
    return SuspectLabels(rows, flagged.height, flagged["cluster"].n_unique())


def duplicate_groups(result: Result, max_groups: int, max_members: int) -> DuplicateGroups | None:
    """The ``max_groups`` largest near-duplicate groups (ties by group id).

    Each group's members are its rows of ``tables["duplicates"]``, the kept one first,
    then by ``similarity_to_kept`` (highest first, ties by row), at most ``max_members``;
    its pairs are its rows of ``tables["duplicate_pairs"]``, most similar first (ties by
    ``src``, ``dst``), at most ``max_members``. ``None`` when the run had no ``[dedup]``.
    """
    dups = result.tables.get("duplicates")
    if not result.dedup or dups is None:
        return None
    pairs = result.tables.get("duplicate_pairs", pl.DataFrame(schema=DUPLICATE_PAIRS_SCHEMA))
    sizes = (
        dups.group_by("group")
        .agg(size=pl.len())
        .sort(["size", "group"], descending=[True, False])
        .head(max_groups)
    )
    groups = []
    for g, size in sizes.iter_rows():
        members = dups.filter(pl.col("group") == g).sort(
            ["kept", "similarity_to_kept", "row"],
            descending=[True, True, False],
            nulls_last=True,
        )
        mine = pairs.filter(pl.col("group") == g).sort(
            ["similarity", "src", "dst"], descending=[True, False, False]
        )
        groups.append(
            DuplicateGroup(
                int(g), int(size), members.head(max_members), mine.head(max_members), mine.height
            )
        )
    return DuplicateGroups(groups, summarize(dups, result.dedup))
