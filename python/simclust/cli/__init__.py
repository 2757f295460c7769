"""The ``simclust`` command line: analyze, dedup, run, sweep, embed, report, plugins, demo.

::

    simclust analyze PATH [--config FILE] [--strategy NAME] [--threshold T] [--k K]
                          [--graph knn|threshold] [--n-clusters N] [--param KEY=VALUE ...]
                          [--metrics intra,centroid,...] [--out DIR] [--report/--no-report]
                          [--threads N] [--json] [--quiet] [--debug]
    simclust dedup PATH [--threshold T] [--keep medoid|first|largest-file] [--out DIR]
                        [--loader NAME] [--search ...] [--threads N] [--json] [--quiet]
    simclust run CONFIG.toml [--report/--no-report] [--json] [--quiet] [--debug]
    simclust sweep PATH --thresholds 0.8:0.99:0.01 [--graph threshold|knn] [--k K] [--json]
    simclust embed FOLDER --out DIR|FILE.npz [--format fastdup|npz] [--embedder NAME]
    simclust report RESULTS [--out FILE] [--images DIR] [--max-clusters N]
    simclust plugins [--json]
    simclust demo [--out DIR] [--n-images N] [--json] [--quiet]

Progress bars go to stderr (only on a terminal, never with ``--quiet``); the summary,
or with ``--json`` a JSON document and nothing else, goes to stdout.

Exit codes: ``0`` success; ``2`` an invalid config, parameter or input (``ConfigError``,
``ParameterError``, ``InvalidInputError``, ``ShapeError``, an output folder simclust
refuses to write into, and click's usage errors);
``3`` a plugin failed (``PluginError``); ``1`` any other error (other ``SimclustError``,
``OSError``, internal errors); ``130`` interrupted (Ctrl-C). An error is one line on
stderr; ``--debug`` prints its traceback first.

Example:
    >>> from click.testing import CliRunner
    >>> r = CliRunner().invoke(main, ["sweep", "missing.npy", "--thresholds", "0.9"])
    >>> r.exit_code, r.stderr.strip()
    (2, "error: input.path: 'missing.npy' does not exist")

"""

from __future__ import annotations

import click

from simclust import __version__
from simclust.cli import analyze, dedup, demo, embed, plugins, report, run, sweep
from simclust.cli._errors import exit_code
from simclust.cli._options import parse_metrics, parse_param, parse_thresholds
from simclust.cli._progress import StageBars as _StageBars  # noqa: F401 (tests use it)
from simclust.cli.demo import DEMO_THRESHOLD
from simclust.cli.sweep import sweep_table
from simclust.host import get_host as get_host  # every command's host (cli._host)

__all__ = [
    "DEMO_THRESHOLD",
    "exit_code",
    "main",
    "parse_metrics",
    "parse_param",
    "parse_thresholds",
    "sweep_table",
]


@click.group(
    help="simclust: the exact cluster structure and geometry of embedding datasets.",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "-V", "--version", prog_name="simclust")
def main() -> None:
    """The ``simclust`` command group (``simclust --help`` lists the commands).

    Example:
        >>> from click.testing import CliRunner
        >>> CliRunner().invoke(main, ["--version"]).output.startswith("simclust, version")
        True

    """


for _module in (analyze, dedup, run, sweep, embed, report, plugins, demo):
    main.add_command(_module.command)
del _module
