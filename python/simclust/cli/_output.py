"""What commands check about their output before any work, and what they wrote after."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from simclust import outdir
from simclust.cli._errors import warn

__all__ = ["REPORT_NAME", "check_out_dir", "outputs", "report_enabled"]

REPORT_NAME = outdir.REPORT_FILE
"""The report's file name in a result folder."""


def report_enabled(wanted: bool) -> bool:
    """``wanted``, unless ``simclust.report`` cannot be imported (then a one-line warning)."""
    if not wanted:
        return False
    try:
        importlib.import_module("simclust.report")
    except ImportError as exc:
        warn(f"{REPORT_NAME} not written: simclust.report is not available ({exc})")
        return False
    return True


def check_out_dir(out: Path, input_path: str | Path | None = None) -> None:
    """Before any work: refuse an output folder simclust must not write into.

    Allowed are an absent or empty folder and one holding a simclust result (whose files
    alone are replaced); see :func:`simclust.outdir.check_output_dir`.
    """
    outdir.check_output_dir(out, input_path=input_path)


def outputs(out: Path) -> dict[str, Any]:
    """The folder, the files simclust wrote there (not the user's) and the report."""
    files = outdir.result_files(out) or []
    report = out / REPORT_NAME
    return {
        "output_dir": str(out.resolve()),
        "files": sorted({*files, outdir.MANIFEST}),
        "report": str(report.resolve()) if REPORT_NAME in files else None,
    }
