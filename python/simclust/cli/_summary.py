"""What a command prints when it is done: a rich summary, or a JSON document."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from simclust import __version__
from simclust._format import fmt_cell, outlier_text, search_lines, search_text
from simclust.cli._output import outputs
from simclust.result import Result

__all__ = ["TOP_CLUSTERS", "dedup_grid", "finish", "print_summary", "stdout"]

TOP_CLUSTERS = 10
"""Clusters in the summary's table (the largest)."""


def stdout() -> Console:
    """A console on stdout; off a terminal wide enough that tables are not truncated."""
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=200)


def dedup_grid(
    summary: Mapping[str, Any], graph_search: Mapping[str, Any], *, n_rows: int | None = None
) -> Panel:
    """The near-duplicates' counts (:func:`simclust.duplicates.summarize`) in a panel."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    if n_rows is not None:
        grid.add_row("rows", fmt_cell(n_rows))
    grid.add_row("near-duplicate groups", fmt_cell(summary["n_groups"]))
    grid.add_row("rows in a group", fmt_cell(summary["n_duplicates"]))
    grid.add_row("rows to remove", fmt_cell(summary["n_to_remove"]))
    grid.add_row("largest group", fmt_cell(summary["largest_group"]))
    grid.add_row("threshold", f"similarity >= {summary['threshold']:g}")
    grid.add_row("kept", f"one a group, by {summary['keep']}")
    grid.add_row("graph search", search_text(graph_search))
    return Panel(grid, title="near-duplicates", expand=False)


def print_summary(result: Result, written: Mapping[str, Any], timings: Mapping[str, float]) -> None:
    """The run's counts, its largest clusters, what was written and the timings."""
    console = stdout()
    s = result.summary()
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(justify="right")
    for label, key in [
        ("rows", "n_rows"),
        ("clusters", "n_clusters"),
        ("singletons", "n_singletons"),
        ("noise", "n_noise"),
        ("largest cluster", "largest_cluster"),
        ("edges", "n_edges"),
    ]:
        grid.add_row(label, fmt_cell(s[key]))
    grid.add_row("metrics", ", ".join(s["metrics"]) or "none")
    grid.add_row("distance", result.distance)
    for label, text in search_lines(result.graph_search, result.metric_searches):
        grid.add_row(label, text)
    grid.add_row("outlier scores", outlier_text(result.outlier_search))
    console.print(Panel(grid, title=f"simclust {__version__}: {s['strategy']}", expand=False))
    if result.clusters.height:
        # all-pairs sim_min beside the graph-edge minimum shows what edge statistics hide
        wanted = (
            "cluster",
            "size",
            "sim_mean",
            "sim_min",
            "edge_sim_min",
            "bridge_similarity",
            "centroid_sim_mean",
            # under the euclidean distance
            "dist_mean",
            "dist_max",
            "edge_dist_max",
            "centroid_distance_mean",
        )
        cols = [
            c
            for c in wanted
            if c in result.clusters.columns
            and result.clusters[c].null_count() < result.clusters.height
        ]
        top = (
            result.clusters.sort(["size", "cluster"], descending=[True, False])
            .head(TOP_CLUSTERS)
            .select(cols)
        )
        table = Table(title=f"largest {top.height} of {result.clusters.height:,} clusters")
        for c in cols:
            table.add_column(c, justify="right")
        for row in top.iter_rows():
            table.add_row(*(fmt_cell(v) for v in row))
        console.print(table)
        chained = s["n_chained"]
        if chained:
            console.print(
                f"[bold yellow]{chained:,} chained cluster(s)[/]: several groups joined by weak "
                "bridges (see the report)"
            )
    if "dedup" in s:
        console.print(dedup_grid(s["dedup"], result.dedup.get("graph_search") or {}))
    console.print(f"[bold]output[/]: {written['output_dir']}")
    console.print(f"  files: {', '.join(written['files'])}")
    if written["report"]:
        console.print(f"[bold]report[/]: {written['report']}")
    console.print("[bold]timings[/]: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))


def finish(
    result: Result,
    out: Path,
    *,
    as_json: bool,
    quiet: bool,
    extra: Mapping[str, Any] | None = None,
    before: Mapping[str, float] | None = None,
    after: Mapping[str, float] | None = None,
) -> None:
    """Print the summary of a run written to ``out``.

    JSON with ``as_json``, nothing if ``quiet``; ``before``/``after`` are the timings of
    stages outside the pipeline.
    """
    written = outputs(out)
    timings = {**(before or {}), **result.timings, **(after or {})}
    if as_json:
        payload = {**result.summary(), **written, **(extra or {})}
        payload["timings_s"] = {k: round(v, 4) for k, v in timings.items()}
        click.echo(json.dumps(payload, indent=2, default=str))
    elif not quiet:
        print_summary(result, written, timings)
