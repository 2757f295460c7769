"""``simclust report RESULTS``: render the HTML report of a result folder again."""

from __future__ import annotations

from pathlib import Path

import click

from simclust import outdir
from simclust.cli._errors import errors
from simclust.cli._output import REPORT_NAME
from simclust.result import Result

__all__ = ["command"]


@click.command("report")
@click.argument("results", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    default=None,
    help="The HTML file (default: RESULTS/report.html).",
)
@click.option(
    "--images",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder the ids are relative to (default: the run's input folder).",
)
@click.option("--max-clusters", type=int, default=50, show_default=True, help="Galleries.")
@click.option("--gallery-size", type=int, default=24, show_default=True, help="Images each.")
@click.option("--debug", is_flag=True, help="Print the traceback of an error.")
def command(
    results: Path,
    out: Path | None,
    images: Path | None,
    max_clusters: int,
    gallery_size: int,
    debug: bool,
) -> None:
    """Render the HTML report of a written result folder again.

    For example with more galleries, or after the images moved (``--images``).
    """
    with errors(debug):
        from simclust.report import write_report

        result = Result.read(results)
        target = out if out is not None else results / REPORT_NAME
        written = write_report(  # refuses to replace a file that is not a simclust report
            result,
            target,
            image_root=images if images is not None else result.image_root(),
            max_clusters=max_clusters,
            gallery_size=gallery_size,
        )
        if target.parent.resolve() == results.resolve():
            outdir.record_file(results, target.name)  # a later run may replace it
    click.echo(str(written))
