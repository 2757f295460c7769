"""``simclust plugins``: the installed strategies, metrics, loaders and embedders."""

from __future__ import annotations

import json

import click
from rich.table import Table

from simclust._format import fmt_cell
from simclust.cli._errors import errors
from simclust.cli._host import plugin_host
from simclust.cli._summary import stdout

__all__ = ["command"]


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@click.option("--debug", is_flag=True, help="Print the traceback of an error.")
def command(as_json: bool, debug: bool) -> None:
    """List strategies, metrics, loaders and embedders.

    Each with the plugin and the distribution that provides it.
    """
    with errors(debug):
        frame = plugin_host().table()
    if as_json:
        click.echo(json.dumps(frame.to_dicts(), indent=2))
        return
    table = Table(title="simclust plugins")
    for name in frame.columns:
        table.add_column(name)
    for row in frame.iter_rows():
        table.add_row(*(fmt_cell(v) for v in row))
    stdout().print(table)
