"""Thumbnails of the report: which ids are images, and JPEG data URIs of them.

A thumbnail is made only of a file inside the image root (no ``..``, no absolute path
elsewhere, no symlink out of it); a file that is missing or cannot be decoded has none.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from simclust.io.images import IMAGE_SUFFIXES

__all__ = ["Thumb", "is_image_mode", "make_thumb", "make_thumbs", "resolve_inside"]

Thumb = tuple[str, int, int]  # data URI, width, height

_THUMB_QUALITY = 80


def is_image_mode(ids: pl.Series, image_root: Path | None) -> bool:
    """Whether galleries show thumbnails.

    They do when an image root is given, or when at least half of the ids end in an
    image suffix (:data:`simclust.io.images.IMAGE_SUFFIXES`, any case).

    Example:
        >>> is_image_mode(pl.Series(["a.png", "b.JPG", "c"]), None)
        True
        >>> is_image_mode(pl.Series(["row-1", "row-2"]), None)
        False

    """
    if image_root is not None:
        return True
    if ids.len() == 0:
        return False
    suffixes = "|".join(s.lstrip(".") for s in sorted(IMAGE_SUFFIXES))
    hits = ids.str.contains(rf"(?i)\.({suffixes})$").fill_null(False)
    return bool(hits.sum() * 2 >= ids.len())


def resolve_inside(name: str, root: Path) -> Path | None:
    """``name`` under the (resolved) ``root``; ``None`` if it leads outside (also via links)."""
    try:
        p = (root / name).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        return None
    return p if p.is_relative_to(root) else None


def make_thumb(path: Path | None, px: int) -> Thumb | None:
    """A JPEG thumbnail of ``path`` as a data URI, or ``None`` if it cannot be read."""
    from PIL import Image, ImageOps

    try:
        if path is None or not path.is_file():
            return None
        with Image.open(path) as opened:
            opened.draft("RGB", (px, px))
            im = ImageOps.exif_transpose(opened)
            im.thumbnail((px, px))
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                im = Image.new("RGB", rgba.size, (255, 255, 255))
                im.paste(rgba, mask=rgba.getchannel("A"))
            else:
                im = im.convert("RGB")
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=_THUMB_QUALITY, optimize=True)
            w, h = im.size
    except Exception:  # Pillow raises many types for bad files; none is fatal here
        return None
    return f"data:image/jpeg;base64,{base64.b64encode(buf.getvalue()).decode('ascii')}", w, h


def make_thumbs(
    names: Sequence[str], image_root: Path | None, px: int, cap: int
) -> dict[str, Thumb | None]:
    """Thumbnails of the first ``cap`` distinct names (in order), made in parallel.

    Relative names are resolved against ``image_root`` (default: the working directory).
    """
    unique = list(dict.fromkeys(names))[:cap]
    root = (image_root if image_root is not None else Path.cwd()).resolve()
    paths = [resolve_inside(n, root) for n in unique]
    workers = min(8, os.cpu_count() or 1, max(1, len(paths)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        thumbs = list(pool.map(lambda p: make_thumb(p, px), paths))
    return dict(zip(unique, thumbs, strict=True))
