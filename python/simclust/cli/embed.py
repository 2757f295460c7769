"""``simclust embed FOLDER --out ...``: embed an image folder once, save the features."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import numpy as np

from simclust import config as config_mod
from simclust import pipeline
from simclust.cli._errors import errors
from simclust.cli._host import plugin_host
from simclust.cli._options import common_options, parse_param
from simclust.cli._progress import stage_progress
from simclust.cli._summary import stdout

__all__ = ["command"]


@click.command("embed")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    required=True,
    help="Output: a folder for fastdup's format, or a file ending in .npz.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["fastdup", "npz"]),
    default=None,
    help="fastdup (atrain_features.dat + .csv) or npz (embeddings + ids); "
    "default: npz when --out ends in .npz, else fastdup.",
)
@click.option("--embedder", default="pixels", show_default=True, help="Registered embedder.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="An embedder parameter (TOML value), repeatable.",
)
@common_options
def command(
    folder: Path,
    out: Path,
    fmt: str | None,
    embedder: str,
    params: tuple[str, ...],
    as_json: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Embed an image folder once and save the features for later runs.

    The fastdup format (``atrain_features.dat`` + ``atrain_features.dat.csv``) is read
    back by ``simclust analyze OUT`` and by fastdup; npz holds ``embeddings`` and
    ``ids``. Unreadable images are listed, not fatal.
    """
    from simclust.io.fastdup import write_fastdup_features

    with errors(debug):
        kind = fmt or ("npz" if out.suffix.lower() == ".npz" else "fastdup")
        embedder_params: dict[str, Any] = {}
        for text in params:
            key, value = parse_param(text)
            embedder_params[key] = value
        host = plugin_host()
        cfg = config_mod.resolve(
            {
                "input": {
                    "path": str(folder),
                    "loader": "images",
                    "embedder": embedder,
                    "embedder_params": embedder_params,
                }
            },
            host,
        )
        with stage_progress(not quiet and not as_json) as bars:
            stages = pipeline.StageTimer(bars)
            with stages.stage("load"):
                data = pipeline.load_input(folder, cfg, host, progress=bars)
            x = np.ascontiguousarray(data.X, dtype=np.float32)
            ids = list(data.ids or [])
            with stages.stage("write"):
                if kind == "npz":
                    tmp = out.with_name(f".{out.name}.tmp.npz")
                    np.savez(tmp, embeddings=x, ids=np.asarray(ids, dtype=str))
                    tmp.replace(out)
                    written = out
                else:
                    written = write_fastdup_features(out, x, ids)
        bad = data.bad_files.height if data.bad_files is not None else 0
    payload = {
        "input": str(folder.resolve()),
        "output": str(Path(written).resolve()),
        "format": kind,
        "n_images": int(x.shape[0]),
        "dim": int(x.shape[1]),
        "n_bad_files": bad,
        "bad_files": [] if data.bad_files is None else data.bad_files.to_dicts(),
        "timings_s": {key: round(v, 4) for key, v in stages.timings.items()},
    }
    if as_json:
        click.echo(json.dumps(payload, indent=2))
    elif not quiet:
        stdout().print(
            f"embedded {payload['n_images']:,} images ({payload['dim']} dims) with "
            f"{embedder!r} -> {payload['output']} ({kind}); {bad} unreadable file(s)"
        )
