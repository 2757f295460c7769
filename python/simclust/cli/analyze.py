"""``simclust analyze PATH``: cluster PATH, measure the clusters, write the tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from simclust import config as config_mod
from simclust import pipeline
from simclust.cli._errors import errors
from simclust.cli._host import plugin_host
from simclust.cli._options import (
    backend_options,
    common_options,
    max_edges_option,
    parse_metrics,
    parse_param,
    search_options,
    threads_option,
)
from simclust.cli._output import check_out_dir, report_enabled
from simclust.cli._progress import stage_progress
from simclust.cli._summary import finish
from simclust.exceptions import ParameterError

__all__ = ["DEFAULT_OUT", "command"]

DEFAULT_OUT = "simclust-out"
"""The output folder without ``--out`` or a config's ``[output] dir``."""


# --threshold/--k/--graph are also the keys of a config's [graph] section.
@click.command("analyze")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A TOML config; the options below override it.",
)
@click.option("--strategy", help="Clustering strategy (see `simclust plugins`).")
@click.option("--threshold", type=float, help="Cosine similarity an edge needs.")
@click.option("--k", type=int, help="Neighbours per row of a kNN graph.")
@click.option("--graph", type=click.Choice(["knn", "threshold"]), help="Graph kind.")
@click.option("--n-clusters", type=int, help="Number of clusters (k-means).")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help='Any strategy parameter; VALUE is a TOML literal (0.9, 10, true, "x").',
)
@click.option("--metrics", metavar="NAME,...", help="Metrics to compute, comma-separated.")
@click.option(
    "--distance",
    metavar="NAME",
    help="What the geometry metrics measure: cosine (default), euclidean or a plugin's "
    "(graphs stay cosine).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Output folder (default: the config's [output] dir, else ./{DEFAULT_OUT}).",
)
@click.option("--report/--no-report", default=None, help="Write report.html (default: on).")
@threads_option
@max_edges_option
@search_options
@backend_options
@common_options
def command(
    path: Path,
    config_file: Path | None,
    strategy: str | None,
    threshold: float | None,
    k: int | None,
    graph: str | None,
    n_clusters: int | None,
    params: tuple[str, ...],
    metrics: str | None,
    distance: str | None,
    out: Path | None,
    report: bool | None,
    threads: int | None,
    max_edges: int | None,
    search: str | None,
    nprobe: int | None,
    backend: str | None,
    address: str | None,
    as_json: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Cluster PATH and measure the clusters; write the tables.

    PATH is a .npy/.npz or Parquet file, an image folder, or whatever an installed
    loader reads. The Parquet tables, manifest.json and report.html are written to
    --out atomically (all or nothing).
    """
    with errors(debug):
        given = {"threshold": threshold, "k": k, "graph": graph, "n_clusters": n_clusters}
        explicit = {key: value for key, value in given.items() if value is not None}
        cluster_params: dict[str, Any] = {}
        for text in params:
            try:
                key, value = parse_param(text)
            except ParameterError as exc:
                raise ParameterError(f"--param: {exc}") from None
            option = key.replace("_", "-")
            if key in explicit and explicit[key] != value:
                raise ParameterError(f"--param {text} contradicts --{option} {explicit[key]}")
            cluster_params[key] = value
        cluster_params.update(explicit)
        base = config_mod.load_config(config_file) if config_file is not None else {}
        base_output = base.get("output")
        base_dir = base_output.get("dir") if isinstance(base_output, dict) else None
        out_dir = out or Path(base_dir if isinstance(base_dir, str) and base_dir else DEFAULT_OUT)
        raw = config_mod.overlay(
            base,
            path=path,
            strategy=strategy,
            params=cluster_params,
            metrics=None if metrics is None else parse_metrics(metrics),
            distance=distance,
            threads=threads,
            max_edges=max_edges,
            search=search,
            nprobe=nprobe,
            backend=backend,
            address=address,
            out=out_dir,
            report=report,
        )
        check_out_dir(out_dir, path)
        host = plugin_host()
        with stage_progress(not quiet) as bars:
            result = pipeline.analyze(config=raw, progress=bars, host=host)
            stages = pipeline.StageTimer(bars)
            with stages.stage("write"):
                result.write(out_dir, report=report_enabled(result.config["output"]["report"]))
        finish(result, out_dir, as_json=as_json, quiet=quiet, after=stages.timings)
