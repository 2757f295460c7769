"""``simclust sweep PATH --thresholds ...``: components per threshold, to choose one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import click
import numpy as np
import numpy.typing as npt
import polars as pl
from rich.table import Table

from simclust import config as config_mod
from simclust import ops, pipeline
from simclust._format import search_text
from simclust.cli._errors import errors
from simclust.cli._host import plugin_host
from simclust.cli._options import (
    common_options,
    max_edges_option,
    parse_thresholds,
    search_options,
    threads_option,
)
from simclust.cli._progress import stage_progress
from simclust.cli._summary import stdout
from simclust.exceptions import ParameterError
from simclust.graph import GraphSpec, SearchSettings, build_graph

__all__ = ["command", "sweep_table"]


def sweep_table(
    n: int,
    src: npt.ArrayLike,
    dst: npt.ArrayLike,
    similarity: npt.ArrayLike,
    thresholds: Sequence[float],
) -> pl.DataFrame:
    """Per threshold: components, the largest, singletons and edges ``>= threshold``.

    ``n_components`` and ``largest_component`` are :func:`simclust.ops.threshold_sweep`'s;
    a singleton is a row without an edge ``>= threshold``.

    Example:
        >>> sweep_table(3, [0, 1], [1, 2], [0.95, 0.85], [0.8, 0.9]).rows()
        [(0.8, 1, 3, 0, 2), (0.9, 2, 2, 1, 1)]

    """
    sim = np.asarray(similarity, dtype=np.float32)
    s = np.asarray(src, dtype=np.int64)
    d = np.asarray(dst, dtype=np.int64)
    t = np.asarray(thresholds, dtype=np.float32)  # the kernels compare in float32
    sweep = ops.threshold_sweep(n, s, d, sim, t)
    best = np.full(n, -np.inf, dtype=np.float32)
    np.maximum.at(best, s, sim)
    np.maximum.at(best, d, sim)
    singletons = np.searchsorted(np.sort(best), t, side="left")
    n_edges = sim.size - np.searchsorted(np.sort(sim), t, side="left")
    return pl.DataFrame(
        {
            "threshold": pl.Series([float(v) for v in thresholds], dtype=pl.Float64),
            "n_components": sweep["n_components"],
            "largest_component": sweep["largest_component"],
            "singletons": pl.Series(singletons, dtype=pl.UInt32),
            "n_edges": pl.Series(n_edges, dtype=pl.UInt64),
        }
    )


@click.command("sweep")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--thresholds",
    required=True,
    metavar="START:STOP:STEP|T1,T2,...",
    help="Thresholds to try, e.g. 0.8:0.99:0.01 (stop included) or 0.8,0.9,0.95.",
)
@click.option(
    "--graph",
    "graph_kind",
    type=click.Choice(["threshold", "knn"]),
    default="threshold",
    show_default=True,
    help="The exact ε-graph, or each row's k nearest neighbours.",
)
@click.option("--k", type=int, default=10, show_default=True, help="Neighbours for --graph knn.")
@click.option("--loader", help="Loader name (default: the first that reads PATH).")
@threads_option
@max_edges_option
@search_options
@common_options
def command(
    path: Path,
    thresholds: str,
    graph_kind: str,
    k: int,
    loader: str | None,
    threads: int | None,
    max_edges: int | None,
    search: str | None,
    nprobe: int | None,
    as_json: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Components per threshold, to choose a threshold.

    Builds one graph at the lowest threshold and reports, per threshold, the
    connected components, the largest one, the singletons and the edges.
    """
    with errors(debug):
        try:
            values = parse_thresholds(thresholds)
        except ParameterError as exc:
            raise ParameterError(f"--thresholds: {exc}") from None
        host = plugin_host()
        inp: dict[str, Any] = {"path": str(path)}
        if loader is not None:
            inp["loader"] = loader
        run: dict[str, Any] = {} if threads is None else {"threads": threads}
        if max_edges is not None:
            run["max_edges"] = max_edges
        graph_cfg = {key: value for key, value in (("search", search), ("nprobe", nprobe)) if value}
        cfg = config_mod.resolve({"input": inp, "run": run, "graph": graph_cfg}, host)
        lo = values[0]
        with stage_progress(not quiet) as bars:
            stages = pipeline.StageTimer(bars)
            with stages.stage("load"):
                data = pipeline.load_input(path, cfg, host, progress=bars)
            with stages.stage("normalize"):
                x = ops.normalize(np.asarray(data.X), n_threads=threads)
            kind: Literal["knn", "threshold"] = "knn" if graph_kind == "knn" else "threshold"
            spec = GraphSpec(kind, k=k, threshold=lo)
            with stages.stage("graph"):
                cb = None if bars is None else (lambda d, t: bars("graph", d, t))
                graph = build_graph(
                    x,
                    spec,
                    n_threads=threads,
                    progress=cb,
                    max_edges=cfg["run"]["max_edges"],
                    search=SearchSettings(**cfg["search"]),
                )
            with stages.stage("sweep"):
                table = sweep_table(x.shape[0], graph.src, graph.dst, graph.similarity, values)
    n = int(x.shape[0])
    if as_json:
        payload = {
            "input": str(path.resolve()),
            "n_rows": n,
            "graph": {"kind": graph_kind, "k": k if graph_kind == "knn" else None, "threshold": lo},
            "n_edges": graph.n_edges,
            "graph_search": dict(graph.search),
            "sweep": table.to_dicts(),
            "timings_s": {key: round(v, 4) for key, v in stages.timings.items()},
        }
        click.echo(json.dumps(payload, indent=2))
        return
    if quiet:
        return
    what = f"{k}-NN graph" if graph_kind == "knn" else "ε-graph"
    out = Table(title=f"{n:,} rows; {what} at ≥ {lo:g}: {graph.n_edges:,} edges")
    for name in ("threshold", "components", "largest", "singletons", "edges"):
        out.add_column(name, justify="right")
    for t, comps, largest, single, edges in table.iter_rows():
        out.add_row(f"{t:g}", f"{comps:,}", f"{largest:,}", f"{single:,}", f"{edges:,}")
    stdout().print(out)
    stdout().print(f"[bold]graph search[/]: {search_text(graph.search)}")
