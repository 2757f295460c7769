"""``simclust dedup PATH``: groups of near-duplicates, the one file each keeps, the rest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import polars as pl
from rich.table import Table

from simclust import outdir, pipeline
from simclust._format import fmt_cell
from simclust.cli._errors import errors
from simclust.cli._host import plugin_host
from simclust.cli._options import (
    common_options,
    max_edges_option,
    search_options,
    threads_option,
)
from simclust.cli._output import outputs
from simclust.cli._progress import stage_progress
from simclust.cli._summary import dedup_grid, stdout
from simclust.duplicates import (
    DEDUP_FILES,
    DEFAULT_THRESHOLD,
    KEEP_POLICIES,
    TO_REMOVE_FILE,
    Duplicates,
    dedup,
)

__all__ = ["DEFAULT_OUT", "TOP_GROUPS", "command"]

DEFAULT_OUT = "simclust-dedup"
"""The output folder without ``--out``."""
TOP_GROUPS = 10
"""Groups in the summary's table (the largest)."""


def _largest_groups(d: Duplicates) -> pl.DataFrame:
    """``group, size, kept, min_similarity``: the largest groups, largest first."""
    df = d.duplicates
    return (
        df.group_by("group")
        .agg(
            size=pl.len(),
            kept=pl.col("id").filter(pl.col("kept")).first(),
            min_similarity=pl.col("similarity_to_kept").min(),
        )
        .sort(["size", "group"], descending=[True, False])
        .head(TOP_GROUPS)
    )


def _print_summary(d: Duplicates, written: dict[str, Any], timings: dict[str, float]) -> None:
    console = stdout()
    s = d.summary()
    console.print(dedup_grid(s, d.graph_search, n_rows=d.n_rows))
    if d.n_groups:
        top = _largest_groups(d)
        table = Table(title=f"largest {top.height} of {d.n_groups:,} groups")
        for c in ("group", "size", "kept", "min similarity to kept"):
            table.add_column(c, justify="left" if c == "kept" else "right")
        for row in top.iter_rows():
            table.add_row(*(fmt_cell(v) for v in row))
        console.print(table)
    console.print(f"[bold]output[/]: {written['output_dir']}")
    console.print(f"  files: {', '.join(written['files'])}")
    console.print(
        f"[bold]to remove[/]: {_to_remove_path(written)}: the {s['n_to_remove']:,} rows not "
        "kept, one id a line (nothing was deleted or moved)"
    )
    console.print("[bold]timings[/]: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))


def _to_remove_path(written: dict[str, Any]) -> str:
    return str(Path(written["output_dir"]) / TO_REMOVE_FILE)


@click.command("dedup")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--threshold",
    type=float,
    default=DEFAULT_THRESHOLD,
    show_default=True,
    help="Cosine similarity two near-duplicates need; groups are the connected "
    "components of the pairs at or above it.",
)
@click.option(
    "--keep",
    type=click.Choice(KEEP_POLICIES),
    default="medoid",
    show_default=True,
    help="The file each group keeps: the medoid (highest mean similarity to the others), "
    "the first in input order, or the largest file (image folders).",
)
@click.option("--loader", help="Loader name (default: the first that reads PATH).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(DEFAULT_OUT),
    show_default=True,
    help="Output folder: duplicates.parquet, duplicate_pairs.parquet, to_remove.txt.",
)
@threads_option
@max_edges_option
@search_options
@common_options
def command(
    path: Path,
    threshold: float,
    keep: str,
    loader: str | None,
    out: Path,
    threads: int | None,
    max_edges: int | None,
    search: str | None,
    nprobe: int | None,
    as_json: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """List near-duplicates in PATH and the files to remove.

    Groups of near-duplicates are the connected components of the rows whose cosine
    similarity is at least --threshold; each group keeps one file (--keep). Writes
    duplicates.parquet (group, row, id, kept, similarity_to_kept),
    duplicate_pairs.parquet (each pair's similarity) and to_remove.txt (the ids not
    kept, one a line) to --out. It never deletes or moves your files.
    """
    with errors(debug):
        config: dict[str, Any] = {"input": {} if loader is None else {"loader": loader}}
        if nprobe is not None:
            config["graph"] = {"nprobe": nprobe}
        outdir.check_output_dir(out, new_files=DEDUP_FILES, input_path=path)
        host = plugin_host()
        with stage_progress(not quiet) as bars:
            found = dedup(
                path,
                threshold=threshold,
                keep=keep,  # type: ignore[arg-type]
                config=config,
                n_threads=threads,
                max_edges=max_edges,
                search=search,
                progress=bars,
                host=host,
            )
            stages = pipeline.StageTimer(bars)
            with stages.stage("write"):
                found.write(out)
        written = outputs(out)
        timings = {**found.timings, **stages.timings}
        if as_json:
            payload = {**found.summary(), **written, "to_remove": _to_remove_path(written)}
            payload["timings_s"] = {k: round(v, 4) for k, v in timings.items()}
            click.echo(json.dumps(payload, indent=2, default=str))
        elif not quiet:
            _print_summary(found, written, timings)
