"""``simclust demo``: generate a synthetic image dataset, cluster it, write the report."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import click

from simclust import outdir, pipeline
from simclust.cli._errors import errors
from simclust.cli._host import plugin_host
from simclust.cli._options import common_options, threads_option
from simclust.cli._output import check_out_dir, report_enabled
from simclust.cli._progress import stage_progress
from simclust.cli._summary import finish
from simclust.exceptions import PluginError, SimclustError

__all__ = ["DEMO_DEDUP_THRESHOLD", "DEMO_THRESHOLD", "command"]

DEMO_THRESHOLD = 0.9
"""Cosine threshold of the demo's connected components."""
DEMO_DEDUP_THRESHOLD = 0.96
"""Cosine threshold of the demo's near-duplicates (``[dedup]``; the default is 0.95).

The demo's images (:func:`simclust.testing.images.make_image_dataset`) hold planted
near-duplicates, each a re-encoded copy of an original (JPEG quality 55-90, WebP 85-95)
with a crop of 0.5-1.5 % per side and/or a brightness change of 3-8 %, and originals no
two of which are above 0.935 as drawn. With the built-in embedder, 3,000 images, seeds
0-4 (0 is the demo's), the planted pairs have cosine 0.9665 or more (median 0.997;
0.9713 on seed 0) and every other pair 0.953 or less (a near-duplicate and a file
alike its original: a crop can shift it towards it; two originals 0.941 at most), so
0.96 keeps one file of each planted pair and removes nothing else, 0.0065 and 0.007 from
either side; the tests check it at 600 images on seeds 0-2 too. At the default 0.95 a
near-duplicate could be joined to a neighbour of its original.
"""
DEMO_METRICS = ("intra", "edge", "centroid", "inter", "silhouette")
DEMO_LOADER = "images"
"""The image-folder loader the demo needs."""
DEMO_OUT = "simclust-demo"
DEMO_MARKER = "simclust-demo.json"
"""Records the images an earlier ``simclust demo`` wrote, the only ones a rerun replaces."""
DEMO_DATASET = "dataset.parquet"


def _check_demo_dir(out: Path) -> list[str]:
    """Before any work: refuse a demo folder with files the demo did not write there.

    Returns:
        The images an earlier demo wrote in ``out/images`` (relative posix paths).

    """
    shown = repr(str(out))
    if os.path.lexists(out) and not out.is_dir():
        raise FileExistsError(f"demo folder {shown} is not a folder")
    if not out.exists() or not any(out.iterdir()):
        return []
    try:
        marker = json.loads((out / DEMO_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        marker = None
    images = marker.get("images") if isinstance(marker, dict) else None
    if not (
        isinstance(marker, dict)
        and marker.get("simclust_demo") == 1
        and isinstance(images, list)
        and all(isinstance(i, str) and _is_relative_inside(i) for i in images)
    ):
        raise FileExistsError(
            f"demo folder {shown} is not empty and was not written by `simclust demo` "
            f"(no {DEMO_MARKER}); choose a new or empty folder"
        )
    images_dir = out / "images"
    if os.path.lexists(images_dir) and (images_dir.is_symlink() or not images_dir.is_dir()):
        raise FileExistsError(f"demo folder {shown}: images is not a folder the demo wrote")
    listed = set(images)
    for path in sorted(images_dir.rglob("*")) if images_dir.is_dir() else []:
        rel = path.relative_to(images_dir).as_posix()
        if (path.is_symlink() or not path.is_dir()) and rel not in listed:
            raise FileExistsError(
                f"demo folder {shown}: images/{rel} was not written by the demo and would be "
                "clustered with its images; move it or choose another folder"
            )
    if os.path.lexists(out / DEMO_DATASET) and (out / DEMO_DATASET).is_dir():
        raise FileExistsError(f"demo folder {shown}: {DEMO_DATASET} is a folder")
    return sorted(listed)


def _is_relative_inside(name: str) -> bool:
    p = Path(name)
    return bool(name) and not p.is_absolute() and ".." not in p.parts


def _write_demo_marker(out: Path, images: Sequence[str]) -> None:
    tmp = out / f".{DEMO_MARKER}.tmp"
    tmp.write_text(json.dumps({"simclust_demo": 1, "images": list(images)}) + "\n")
    tmp.replace(out / DEMO_MARKER)


def _swap_demo_images(stage: Path, images_dir: Path, previous: Sequence[str]) -> None:
    """Remove the earlier demo's images, then move the freshly drawn ones in."""
    for rel in previous:
        (images_dir / rel).unlink(missing_ok=True)
    if images_dir.is_dir():
        for sub in sorted(images_dir.rglob("*"), key=lambda p: -len(p.parts)):
            if sub.is_dir() and not sub.is_symlink():
                with contextlib.suppress(OSError):
                    sub.rmdir()  # only folders left empty
        images_dir.rmdir()  # fails (and the run stops) if something new appeared in it
    stage.rename(images_dir)


@click.command("demo")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(DEMO_OUT),
    show_default=True,
    help="Folder for images/, dataset.parquet and results/.",
)
@click.option(
    "--n-images", type=click.IntRange(min=1), default=3000, show_default=True, help="Images."
)
@click.option(
    "--threshold",
    type=float,
    default=DEMO_THRESHOLD,
    show_default=True,
    help="Cosine threshold of the connected components.",
)
@click.option("--report/--no-report", default=True, show_default=True, help="Write report.html.")
@threads_option
@common_options
def command(
    out: Path,
    n_images: int,
    threshold: float,
    report: bool,
    threads: int | None,
    as_json: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Cluster a generated image dataset.

    Draws a seeded synthetic image dataset into OUT/images (its ground truth in
    OUT/dataset.parquet), clusters it, finds its near-duplicates and writes the tables,
    to_remove.txt and the report to OUT/results.
    OUT must be new, empty or an earlier demo's folder (recorded in OUT/simclust-demo.json,
    whose images alone are replaced).
    """
    with errors(debug):
        host = plugin_host()
        if DEMO_LOADER not in host.loaders:
            raise PluginError(
                f"the demo needs the {DEMO_LOADER!r} loader (image folders); "
                f"loaders: {host.loaders.describe()}"
            )
        try:
            from simclust.testing.images import make_image_dataset
        except ImportError as exc:
            raise SimclustError(f"the demo cannot generate images: {exc}") from exc
        images_dir, results_dir = out / "images", out / "results"
        previous = _check_demo_dir(out)
        check_out_dir(results_dir, images_dir)
        out.mkdir(parents=True, exist_ok=True)
        _write_demo_marker(out, previous)  # first: a crash leaves nothing unrecorded
        with stage_progress(not quiet) as bars:
            stages = pipeline.StageTimer(bars)
            with stages.stage("generate"):
                stage = outdir.make_dir(out, ".images.tmp-")
                try:
                    dataset = make_image_dataset(stage, n_images=n_images, seed=0)
                    fresh = dataset["path"].to_list()
                    _write_demo_marker(out, sorted({*previous, *fresh}))
                    _swap_demo_images(stage, images_dir, previous)
                finally:
                    if stage.exists():
                        shutil.rmtree(stage, ignore_errors=True)
                _write_demo_marker(out, fresh)
                tmp = out / f".{DEMO_DATASET}.tmp"
                dataset.write_parquet(tmp)
                tmp.replace(out / DEMO_DATASET)
            result = pipeline.analyze(
                str(images_dir),
                strategy="connected-components",
                threshold=threshold,
                metrics=list(DEMO_METRICS),
                config={"dedup": {"threshold": DEMO_DEDUP_THRESHOLD, "keep": "medoid"}},
                n_threads=threads,
                progress=bars,
                host=host,
            )
            with stages.stage("write"):
                result.write(results_dir, report=report_enabled(report))
        extra = {
            "images_dir": str(images_dir.resolve()),
            "dataset": str((out / DEMO_DATASET).resolve()),
        }
        finish(
            result,
            results_dir,
            as_json=as_json,
            quiet=quiet,
            extra=extra,
            before={"generate": stages.timings["generate"]},
            after={"write": stages.timings["write"]},
        )
