"""``simclust run CONFIG.toml``: everything from a config file."""

from __future__ import annotations

from pathlib import Path

import click

from simclust import config as config_mod
from simclust import pipeline
from simclust.cli._errors import errors
from simclust.cli._host import plugin_host
from simclust.cli._options import common_options
from simclust.cli._output import check_out_dir, report_enabled
from simclust.cli._progress import stage_progress
from simclust.cli._summary import finish

__all__ = ["command"]


@click.command("run")
@click.argument("config_file", metavar="CONFIG.toml", type=click.Path(path_type=Path))
@click.option(
    "--report/--no-report",
    default=None,
    help="Write report.html (default: the config's [output] report, else on).",
)
@common_options
def command(
    config_file: Path, report: bool | None, as_json: bool, quiet: bool, debug: bool
) -> None:
    """Run a TOML config file.

    The output folder is the config's [output] dir (default: out/ beside the file).
    """
    with errors(debug):
        raw = config_mod.load_config(config_file)
        output = raw.setdefault("output", {})
        if isinstance(output, dict):
            if not output.get("dir"):
                output["dir"] = str(config_file.resolve().parent / "out")
            if report is not None:
                output["report"] = report
            inp = raw.get("input")
            inp_path = inp.get("path") if isinstance(inp, dict) else None
            check_out_dir(Path(output["dir"]), inp_path if isinstance(inp_path, str) else None)
            if output.get("report", True) is True and not report_enabled(True):
                output["report"] = False
        host = plugin_host()
        with stage_progress(not quiet) as bars:
            result, out = pipeline.run(raw, progress=bars, host=host)
        finish(result, out, as_json=as_json, quiet=quiet)
