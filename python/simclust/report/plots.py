"""The report's plots.

Cluster sizes, the threshold sweep, the centroid heatmap and the cluster tightness
(with the table of chained clusters). Each section is a string of HTML; a plot is a
``<div>`` and its plotly figure as JSON, drawn by the page script.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from simclust._format import fmt_float, rounded
from simclust.graph import SWEEP_BELOW
from simclust.report._markup import (
    MAX_TABLE_ROWS,
    SIM,
    TIMES,
    cluster_link,
    count,
    esc,
    how,
    layout,
    plot,
    table,
)
from simclust.report.data import MAX_SCATTER, heatmap, size_histogram, tightness_clusters
from simclust.result import (
    CHAIN_MAX_CONDUCTANCE,
    CHAIN_MIN_PART,
    CHAIN_PART_SHARE,
    chain_split_threshold,
)

if TYPE_CHECKING:
    from simclust.result import Result

__all__ = [
    "chained_table",
    "heatmap_section",
    "sizes_section",
    "sweep_section",
    "tightness_section",
]


def sizes_section(result: Result) -> str:
    """Rows per cluster size range: where the rows live, so big clusters stand out."""
    bins = size_histogram(result)
    head = '<section id="sizes"><h2>Cluster size distribution</h2>\n' + how(
        "how many ROWS (bar height) live in clusters whose size lies in each range "
        "(members, doubling ranges); hover for the number of clusters. A single big "
        "cluster is a tall bar of its own. A healthy run spreads its rows over many small "
        "clusters and a few big ones; one giant cluster holding most rows usually means "
        "the threshold is too low (chaining). Noise rows are in no cluster."
    )
    if not bins:
        return head + '<p class="note">No clusters.</p></section>\n'
    n_rows = result.assignments.height
    xs = [b.label for b in bins]
    texts = [
        esc(
            f"size {b.label}: {count(b.n_rows, 'row')} "
            f"({100.0 * b.n_rows / n_rows:.1f} % of all) in {count(b.n_clusters, 'cluster')}"
        )
        for b in bins
    ]
    fig = {
        "data": [
            {
                "type": "bar",
                "x": xs,
                "y": [b.n_rows for b in bins],
                "text": texts,
                "hovertemplate": "%{text}<extra></extra>",
                "textposition": "none",
                "marker": {"color": "#4a78c2"},
            }
        ],
        "layout": layout(
            xaxis={"title": {"text": "cluster size (members)"}, "type": "category"},
            yaxis={"title": {"text": "rows in clusters of that size"}, "rangemode": "tozero"},
        ),
    }
    return head + plot("sizes", fig, 360) + "</section>\n"


def sweep_section(result: Result, threshold: float | None) -> str:
    """Components and the largest component per threshold (``result.sweep``)."""
    head = '<section id="sweep"><h2>Threshold sweep</h2>\n' + how(
        "the connected components of the similarity graph if only edges with cosine "
        "similarity ≥ x were kept: their number (left axis) and the size of the largest "
        "(right axis). A plateau means the clustering is stable around that threshold; a "
        "sudden jump of the largest component marks where clusters start to merge. The "
        "dashed line is the run's threshold. Unless <code>[graph] sweep</code> sets them, "
        f"the thresholds run every 0.01 from {SWEEP_BELOW:g} below the run's threshold; "
        "every count is over the graph built at the lowest of them, so the curve below "
        "the threshold is exact too."
    )
    sw = result.sweep
    if sw.height == 0:
        return head + '<p class="note">No sweep (the run built no graph).</p></section>\n'
    lo, hi = sw["threshold"].min(), sw["threshold"].max()
    head += (
        f'<p class="note">{count(sw.height, "threshold")}, {fmt_float(lo)} to '
        f"{fmt_float(hi)}.</p>\n"
    )
    x = [rounded(v) for v in sw["threshold"].to_list()]
    shapes = []
    if threshold is not None:
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": threshold,
                "x1": threshold,
                "y0": 0,
                "y1": 1,
                "line": {"dash": "dash", "color": "#888"},
            }
        )
    fig = {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "number of components",
                "x": x,
                "y": sw["n_components"].to_list(),
                "hovertemplate": "similarity ≥ %{x:.3f}: %{y} components<extra></extra>",
                "line": {"color": "#4a78c2"},
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "largest component (rows)",
                "x": x,
                "y": sw["largest_component"].to_list(),
                "yaxis": "y2",
                "hovertemplate": "similarity ≥ %{x:.3f}: largest %{y} rows<extra></extra>",
                "line": {"color": "#c62828"},
            },
        ],
        "layout": layout(
            xaxis={"title": {"text": f"{SIM} threshold"}},
            yaxis={"title": {"text": "number of components"}, "rangemode": "tozero"},
            yaxis2={
                "title": {"text": "largest component (rows)"},
                "rangemode": "tozero",
                "tickmode": "auto",
                "showgrid": False,
                "overlaying": "y",
                "side": "right",
            },
            legend={"orientation": "h", "y": 1.12},
            shapes=shapes,
            margin={"l": 70, "r": 70, "t": 40, "b": 60},
        ),
    }
    return head + plot("sweep", fig, 400) + "</section>\n"


def heatmap_section(result: Result, max_clusters: int) -> str:
    """The centroid similarity heatmap of the ``max_clusters`` largest clusters."""
    head = '<section id="heatmap"><h2>Centroid similarity between clusters</h2>\n' + how(
        "each cell is the cosine similarity between the centroids (normalised mean "
        "members) of two of the largest clusters, ordered by size. Higher = closer; bright "
        "off-diagonal cells are cluster pairs that may be one concept split in two. The "
        "colour range spans the off-diagonal values (the diagonal is 1). Hover for the "
        "value and sizes; click a cell to jump to the gallery of its column's cluster."
    )
    if max_clusters == 0:
        return head + '<p class="note">Not shown (max_clusters=0).</p></section>\n'
    hm = heatmap(result, max_clusters)
    if hm is None:
        return (
            head + '<p class="note">Not computed (run the "inter" metric to get the '
            "centroid similarity matrix).</p></section>\n"
        )
    sub, cids, sizes = hm.similarity, hm.clusters, hm.sizes
    labels = [str(c) for c in cids]
    k = len(cids)
    off = sub[~np.eye(k, dtype=bool)] if k > 1 else np.array([0.0, 1.0])
    off = off[np.isfinite(off)]
    zmin, zmax = (float(off.min()), float(off.max())) if off.size else (0.0, 1.0)
    if zmax - zmin < 1e-6:
        zmin, zmax = zmin - 0.05, zmax + 0.05
    z = [[rounded(v) for v in row] for row in sub.tolist()]
    text = [
        [
            esc(f"cluster {a} {TIMES} cluster {b}: {fmt_float(sub[i, j])}")
            + "<br>"
            + esc(f"sizes {sa:,} {TIMES} {sb:,}")
            for j, (b, sb) in enumerate(zip(cids, sizes, strict=True))
        ]
        for i, (a, sa) in enumerate(zip(cids, sizes, strict=True))
    ]
    px = max(420, min(900, 160 + 16 * k))
    fig = {
        "data": [
            {
                "type": "heatmap",
                "x": labels,
                "y": labels,
                "z": z,
                "text": text,
                "hovertemplate": "%{text}<extra></extra>",
                "colorscale": "Viridis",
                "zmin": round(zmin, 4),
                "zmax": round(zmax, 4),
                "colorbar": {"title": {"text": "centroid<br>cosine sim."}},
                "xgap": 1 if k <= 60 else 0,
                "ygap": 1 if k <= 60 else 0,
            }
        ],
        "layout": layout(
            xaxis={"title": {"text": "cluster (largest first)"}, "type": "category"},
            yaxis={
                "title": {"text": "cluster"},
                "type": "category",
                "autorange": "reversed",
                "scaleanchor": "x",
            },
            margin={"l": 70, "r": 30, "t": 20, "b": 60},
            width=None,
        ),
    }
    note = (
        f'<p class="note">The {k} largest of {hm.n_matrix} clusters in the matrix '
        f"(matrix clusters have ≥ 2 members).</p>\n"
    )
    return head + note + plot("heatmap", fig, px) + "</section>\n"


def tightness_section(
    result: Result,
    threshold: float | None,
    chained: pl.DataFrame,
    shown: set[int],
) -> str:
    """All-pairs mean and minimum similarity per cluster against size; chained ringed."""
    chained_ids = set(chained["cluster"].to_list())
    cl, total = tightness_clusters(result, chained_ids, MAX_SCATTER)
    crit = (
        f"at similarity ≥ {fmt_float(chain_split_threshold(threshold))} the cluster falls "
        f"into 2 or more parts of ≥ {CHAIN_PART_SHARE:.0%} (and ≥ {CHAIN_MIN_PART} members), "
        f"one of them joined to the rest by few edges at the threshold "
        f"{fmt_float(threshold)}: conductance &lt; {CHAIN_MAX_CONDUCTANCE}"
        if threshold is not None
        else "needs a clustering threshold, which this strategy does not have"
    )
    head = '<section id="tightness"><h2>Cluster tightness</h2>\n' + how(
        "each cluster of ≥ 2 members twice: the mean (light) and the MINIMUM (dark) cosine "
        "similarity over ALL pairs of its members, against its size (log axis). A graph "
        "clustering only guarantees that neighbours are similar: a minimum far below the "
        "threshold means members unlike each other, as in a loose or elongated group. The "
        "bridge similarity is the threshold at which the cluster would first split. "
        "Chained clusters are several groups joined by weak bridges (red rings; "
        f"{crit}); they are listed below. Click a point to "
        "jump to its gallery (largest clusters only)."
    )
    if total == 0:
        return (
            head + '<p class="note">No all-pairs statistics (run the "intra" metric on a '
            "clustering with clusters of ≥ 2 members).</p></section>\n"
        )
    note = ""
    if total > MAX_SCATTER:
        note = (
            f'<p class="note">The plot shows the {MAX_SCATTER:,} largest of {total:,} '
            "clusters, plus every chained one.</p>\n"
        )
    rows = list(cl.iter_rows(named=True))

    def hover(r: Mapping[str, Any]) -> str:
        return (
            esc(f"cluster {r['cluster']} ({int(r['size']):,} members)")
            + "<br>"
            + esc(f"all-pairs min {fmt_float(r['sim_min'])} · mean {fmt_float(r['sim_mean'])}")
            + "<br>"
            + esc(
                f"bridge {fmt_float(r['bridge_similarity'])} · "
                f"to centroid min {fmt_float(r['centroid_sim_min'])}"
            )
        )

    texts = [hover(r) for r in rows]
    xs = [int(r["size"]) for r in rows]
    cids = [int(r["cluster"]) for r in rows]
    ch = [i for i, c in enumerate(cids) if c in chained_ids]
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": "all-pairs mean",
            "x": xs,
            "y": [rounded(r["sim_mean"]) for r in rows],
            "customdata": cids,
            "text": texts,
            "hovertemplate": "%{text}<extra>mean</extra>",
            "marker": {"color": "rgba(74,120,194,0.35)", "size": 6},
        },
        {
            "type": "scatter",
            "mode": "markers",
            "name": "all-pairs min",
            "x": xs,
            "y": [rounded(r["sim_min"]) for r in rows],
            "customdata": cids,
            "text": texts,
            "hovertemplate": "%{text}<extra>min</extra>",
            "marker": {"color": "#1f3f7a", "size": 6},
        },
    ]
    if ch:
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "chained (min)",
                "x": [xs[i] for i in ch],
                "y": [rounded(rows[i]["sim_min"]) for i in ch],
                "customdata": [cids[i] for i in ch],
                "text": [texts[i] for i in ch],
                "hovertemplate": "%{text}<extra>chained</extra>",
                "marker": {
                    "color": "rgba(0,0,0,0)",
                    "size": 13,
                    "line": {"color": "#c62828", "width": 2},
                },
            }
        )
    shapes = []
    if threshold is not None:
        for y, dash, color in ((threshold, "dash", "#555"),):
            shapes.append(
                {
                    "type": "line",
                    "xref": "paper",
                    "yref": "y",
                    "x0": 0,
                    "x1": 1,
                    "y0": y,
                    "y1": y,
                    "line": {"dash": dash, "color": color, "width": 1},
                }
            )
    fig = {
        "data": data,
        "layout": layout(
            xaxis={
                "title": {"text": "cluster size (members, log scale)"},
                "type": "log",
                "dtick": "D2",
            },
            yaxis={"title": {"text": f"all-pairs {SIM}"}},
            legend={"orientation": "h", "y": 1.1},
            shapes=shapes,
            margin={"l": 70, "r": 30, "t": 40, "b": 60},
        ),
    }
    return (
        head + note + plot("tightness", fig, 460) + chained_table(chained, shown) + "</section>\n"
    )


def chained_table(chained: pl.DataFrame, shown: set[int]) -> str:
    """The chained clusters (:func:`simclust.report.data.chained_clusters`), weakest first."""
    title = '<h3 id="chained">Chained clusters</h3>\n'
    if chained.height == 0:
        return title + '<p class="note">None.</p>\n'
    rows = [
        [
            cluster_link(r["cluster"], shown),
            f"{int(r['size']):,}",
            fmt_float(r["sim_min"]),
            fmt_float(r["sim_mean"]),
            fmt_float(r["edge_sim_min"]),
            fmt_float(r["bridge_similarity"]),
            fmt_float(r["centroid_sim_min"]),
            esc(r["why"] or ""),
        ]
        for r in chained.head(MAX_TABLE_ROWS).iter_rows(named=True)
    ]
    more = (
        f'<p class="note">… and {chained.height - MAX_TABLE_ROWS:,} more.</p>\n'
        if chained.height > MAX_TABLE_ROWS
        else ""
    )
    headers = [
        "cluster",
        "size",
        "all-pairs min",
        "all-pairs mean",
        "edge min",
        "bridge",
        "to-centroid min",
        "why",
    ]
    return (
        title + f'<p class="note">{count(chained.height, "chained cluster")}, most weakly joined '
        "first.</p>\n" + table(headers, rows, "data chained") + more
    )
