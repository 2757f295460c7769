"""Errors and warnings of the command line: one line each, and the exit codes.

Exit codes: ``0`` success; ``2`` an invalid config, parameter or input; ``3`` a plugin
failed; ``1`` any other error; ``130`` interrupted (see :mod:`simclust.cli`).
"""

from __future__ import annotations

import contextlib
import re
import sys
import traceback
import warnings
from collections.abc import Iterator
from typing import Any

import click

from simclust.exceptions import (
    InvalidInputError,
    ParameterError,
    PluginError,
    ShapeError,
    SimclustError,
)

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_PLUGIN",
    "EXIT_USAGE",
    "errors",
    "exit_code",
    "warn",
]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PLUGIN = 3
EXIT_INTERRUPTED = 130


def exit_code(exc: BaseException) -> int:
    """The exit code for an error (see the :mod:`simclust.cli` docstring).

    Example:
        >>> from simclust.exceptions import ConfigError
        >>> exit_code(ConfigError("x")), exit_code(PluginError("x")), exit_code(OSError("x"))
        (2, 3, 1)

    """
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, SystemExit):
        return EXIT_ERROR  # an unexpected sys.exit() inside a command is never a success
    if isinstance(exc, PluginError):
        return EXIT_PLUGIN
    if isinstance(exc, ParameterError | InvalidInputError | ShapeError | FileExistsError):
        # ConfigError and UnknownNameError are ParameterErrors; FileExistsError is an
        # output folder simclust refuses to write into
        return EXIT_USAGE
    return EXIT_ERROR


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text).strip()


def warn(message: str) -> None:
    """Print ``warning: MESSAGE`` as one line on stderr."""
    click.echo(f"warning: {_one_line(message)}", err=True)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` for the CLI: one line, without the file and source line."""
    warn(str(message))


@contextlib.contextmanager
def errors(debug: bool) -> Iterator[None]:
    """Turn exceptions into one-line errors and exit codes (and a traceback with --debug).

    Warnings are printed as one line each (``warning: ...``), and a ``SystemExit`` from
    inside a command (a library or plugin calling ``sys.exit``) is an error, never a
    silent exit 0.
    """
    try:
        with warnings.catch_warnings():
            if not debug:
                warnings.showwarning = _show_warning
            yield
    except (click.exceptions.Exit, click.ClickException, click.Abort):
        raise
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc(file=sys.stderr)
        click.echo("error: interrupted", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    except (Exception, SystemExit) as exc:
        if debug:
            traceback.print_exc(file=sys.stderr)
        if isinstance(exc, SystemExit):
            message = f"internal error: sys.exit({exc.code!r}) was called during the command"
        elif isinstance(exc, MemoryError):
            message = f"out of memory: {_one_line(str(exc)) or 'an allocation failed'}"
        else:
            message = _one_line(str(exc)) or type(exc).__name__
            if not isinstance(exc, SimclustError | OSError):
                message = f"internal error: {type(exc).__name__}: {message}"
                if not debug:
                    message += " (rerun with --debug for the traceback)"
        click.echo(f"error: {message}", err=True)
        raise click.exceptions.Exit(exit_code(exc)) from None
