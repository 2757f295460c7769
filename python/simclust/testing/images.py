"""Seeded synthetic image datasets: procedural groups, near-duplicates and outliers.

:func:`make_image_dataset` draws small images with Pillow and numpy only:

* ``n_groups`` groups, each with a base style: a shape (circle, ellipse, rectangle,
  triangle, star, hexagon, cross), a fill texture (flat, stripes, checker, smooth noise,
  radial gradient), a foreground colour pair and a gradient background. Colours come
  from a few colour families, so several groups share a colour family and differ by
  shape and texture. The members of a group vary a little in position, scale, rotation,
  colour and texture offset.
* near-duplicates of some originals: a crop of 1-5 % per side and/or a brightness jitter
  (x0.88-0.97 or x1.03-1.12), always re-encoded in another format or at another
  JPEG/WebP quality (55-90; the originals use 92);
* outliers: random noise images (white, blocky or smooth noise) in ``root/misc``.

Files are ``root/group_007/img_00123.png`` (formats mixed: ``.png``, ``.jpg``, ``.webp``).
The output depends only on the arguments (and the Pillow/libjpeg/libwebp versions).

Example:
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     df = make_image_dataset(tmp, n_images=20, n_groups=3, size=32)
    >>> df.height, df.columns
    (20, ['path', 'group', 'kind', 'source'])

"""

from __future__ import annotations

import io
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl
from PIL import Image, ImageDraw, ImageEnhance

from simclust.exceptions import ParameterError

__all__ = ["IMAGE_DATASET_SCHEMA", "make_image_dataset"]

IMAGE_DATASET_SCHEMA: dict[str, pl.DataType] = {
    "path": pl.String(),
    "group": pl.Int64(),
    "kind": pl.String(),
    "source": pl.String(),
}
"""Schema of :func:`make_image_dataset`'s frame.

``path``: posix path relative to ``root``; ``group``: group id, ``-1`` for outliers;
``kind``: ``"original"``, ``"near_duplicate"`` or ``"outlier"``; ``source``: for a
near-duplicate the path of the original it was made from, else null.
"""

_SHAPES = ("circle", "ellipse", "rectangle", "triangle", "star", "hexagon", "cross")
_TEXTURES = ("flat", "stripes", "checker", "noise", "radial")
# Colour families (RGB): several groups share one and differ in shape/texture.
_FAMILIES = np.array(
    [
        [200, 40, 40],  # red
        [230, 140, 30],  # orange
        [60, 160, 60],  # green
        [40, 80, 200],  # blue
        [140, 60, 170],  # purple
        [120, 120, 120],  # grey
    ],
    dtype=np.float64,
)
_F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class _Style:
    shape: str
    fg: _F64
    background: Image.Image  # [size, size] RGB gradient
    texture: Image.Image  # [size + margin, size + margin] RGB fill; members crop it
    center: tuple[float, float]
    scale: float
    aspect: float
    angle: float
    accent: bool  # a small second shape
    accent_pos: tuple[float, float]


def _shape_points(shape: str) -> _F64:
    """Unit-size polygon vertices (x, y) of a shape, centred at 0."""
    if shape in ("circle", "ellipse"):
        t = np.linspace(0.0, 2 * np.pi, 40, endpoint=False)
        return np.stack([np.cos(t), np.sin(t)], axis=1)
    if shape == "rectangle":
        return np.array([[-1, -0.7], [1, -0.7], [1, 0.7], [-1, 0.7]], dtype=np.float64)
    if shape == "triangle":
        t = np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        return np.stack([np.cos(t), np.sin(t)], axis=1)
    if shape == "star":
        t = np.pi / 2 + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
    if shape == "hexagon":
        t = np.arange(6) * np.pi / 3
        return np.stack([np.cos(t), np.sin(t)], axis=1)
    # cross
    a, b = 1.0, 0.33
    xs = [-b, b, b, a, a, b, b, -b, -b, -a, -a, -b]
    ys = [-a, -a, -b, -b, b, b, a, a, b, b, -b, -b]
    return np.stack([np.array(xs), np.array(ys)], axis=1)


def _random_style(rng: np.random.Generator, size: int) -> _Style:
    family = _FAMILIES[rng.integers(len(_FAMILIES))]
    fg = np.clip(family + rng.normal(0, 18, 3), 0, 255)
    fg2 = np.clip(fg * rng.uniform(0.35, 0.7) + rng.normal(0, 10, 3), 0, 255)
    light = rng.random() < 0.6
    base = rng.uniform(190, 245) if light else rng.uniform(20, 70)
    bg = np.clip(base + rng.normal(0, 12, 3), 0, 255)
    bg2 = np.clip(bg + rng.normal(0, 25, 3), 0, 255)
    shape = _SHAPES[rng.integers(len(_SHAPES))]
    aspect = rng.uniform(0.5, 0.75) if shape == "ellipse" else rng.uniform(0.85, 1.15)
    center = (float(rng.uniform(0.35, 0.65)), float(rng.uniform(0.35, 0.65)))
    scale = float(rng.uniform(0.22, 0.36))

    # Background: linear gradient between bg and bg2.
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle = rng.uniform(0, 2 * np.pi)
    t = np.clip((xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle) + 0.5, 0, 1)
    background = _to_image(bg + t[:, :, None] * (bg2 - bg))

    # Fill texture, with a margin so that members can use shifted crops of it.
    big = size + size // 4
    yy, xx = np.mgrid[0:big, 0:big] / size
    texture = _TEXTURES[rng.integers(len(_TEXTURES))]
    period = rng.uniform(0.08, 0.2)
    ta = rng.uniform(0, np.pi)
    u, v = xx * np.cos(ta) + yy * np.sin(ta), yy * np.cos(ta) - xx * np.sin(ta)
    if texture == "flat":
        w = np.zeros((big, big))
    elif texture == "stripes":
        w = (np.sin(u * (2 * np.pi / period)) > 0).astype(np.float64)
    elif texture == "checker":
        w = ((np.floor(u / (1.3 * period)) + np.floor(v / (1.3 * period))) % 2).astype(np.float64)
    elif texture == "noise":
        field = Image.fromarray(rng.integers(0, 256, (6, 6), dtype=np.uint8), "L")
        w = np.asarray(field.resize((big, big), Image.Resampling.BICUBIC)) / 255.0
    else:  # radial
        w = np.clip(np.hypot(xx - center[0], yy - center[1]) / (scale * 1.2), 0, 1)
    return _Style(
        shape=shape,
        fg=fg,
        background=background,
        texture=_to_image(fg + w[:, :, None] * (fg2 - fg)),
        center=center,
        scale=scale,
        aspect=float(aspect),
        angle=float(rng.uniform(0, 2 * np.pi)),
        accent=bool(rng.random() < 0.5),
        accent_pos=(float(rng.uniform(0.15, 0.85)), float(rng.uniform(0.15, 0.85))),
    )


def _transform(points: _F64, cx: float, cy: float, r: float, aspect: float, angle: float) -> _F64:
    p = points * np.array([r, r * aspect])
    c, s = np.cos(angle), np.sin(angle)
    out: _F64 = p @ np.array([[c, s], [-s, c]]) + np.array([cx, cy])
    return out


def _render(style: _Style, rng: np.random.Generator, size: int) -> npt.NDArray[np.uint8]:
    """One member of a group: the style with small random variations."""
    margin = style.texture.width - size
    ox, oy = (int(o) for o in rng.integers(0, margin + 1, 2))
    jitter = rng.normal(0, 8, 3)
    crop = np.asarray(style.texture.crop((ox, oy, ox + size, oy + size)), np.int16)
    fill = Image.fromarray(
        np.clip(crop + np.rint(jitter).astype(np.int16), 0, 255).astype(np.uint8)
    )

    cx = (style.center[0] + float(rng.normal(0, 0.04))) * size
    cy = (style.center[1] + float(rng.normal(0, 0.04))) * size
    r = style.scale * size * float(rng.uniform(0.88, 1.12))
    angle = style.angle + float(rng.normal(0, 0.15))
    pts = _transform(_shape_points(style.shape), cx, cy, r, style.aspect, angle)
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).polygon([(float(x), float(y)) for x, y in pts], fill=255)
    out = Image.composite(fill, style.background, mask)
    if style.accent:
        ax = (style.accent_pos[0] + float(rng.normal(0, 0.03))) * size
        ay = (style.accent_pos[1] + float(rng.normal(0, 0.03))) * size
        ar = 0.08 * size
        colour = tuple(int(c) for c in 255 - style.fg)
        ImageDraw.Draw(out).ellipse((ax - ar, ay - ar, ax + ar, ay + ar), fill=colour)
    return np.asarray(out, dtype=np.uint8)


def _to_image(a: _F64) -> Image.Image:
    return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8), "RGB")


def _render_outlier(rng: np.random.Generator, size: int) -> npt.NDArray[np.uint8]:
    kind = rng.integers(3)
    if kind == 0:  # white noise
        return rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    low = int(rng.integers(3, 12))
    field = rng.integers(0, 256, (low, low, 3), dtype=np.uint8)
    resample = Image.Resampling.NEAREST if kind == 1 else Image.Resampling.BICUBIC
    return np.asarray(Image.fromarray(field, "RGB").resize((size, size), resample), np.uint8)


def _save(img: Image.Image, path: Path, quality: int) -> None:
    if path.suffix == ".jpg":
        img.save(path, format="JPEG", quality=quality)
    elif path.suffix == ".webp":
        img.save(path, format="WEBP", quality=quality, method=2)
    else:
        img.save(path, format="PNG", compress_level=1)


def _near_duplicate(src: npt.NDArray[np.uint8], rng: np.random.Generator) -> Image.Image:
    """Crop 1-5 % per side and/or jitter the brightness (at least one of the two)."""
    img = Image.fromarray(src, "RGB")
    ops = rng.random(2) < 0.75
    if not ops.any():
        ops[rng.integers(2)] = True
    if ops[0]:
        w, h = img.size
        left, top, right, bottom = rng.uniform(0.01, 0.05, 4)
        box = (round(left * w), round(top * h), w - round(right * w), h - round(bottom * h))
        img = img.crop(box)
    if ops[1]:
        factor = rng.uniform(0.88, 0.97) if rng.random() < 0.5 else rng.uniform(1.03, 1.12)
        img = ImageEnhance.Brightness(img).enhance(float(factor))
    return img


def _write_original(style: _Style, seed: int, size: int, path: Path) -> None:
    _save(Image.fromarray(_render(style, np.random.default_rng(seed), size)), path, 92)


def _write_near_duplicate(
    style: _Style, src_seed: int, seed: int, size: int, path: Path, quality: int
) -> None:
    src = _render(style, np.random.default_rng(src_seed), size)
    img = _near_duplicate(src, np.random.default_rng(seed))
    if path.suffix == ".png":
        # A lossless copy must still be re-encoded: round-trip through a JPEG first.
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        with Image.open(buf) as decoded:
            img = decoded.convert("RGB")
    _save(img, path, quality)


def _write_outlier(seed: int, size: int, path: Path) -> None:
    _save(Image.fromarray(_render_outlier(np.random.default_rng(seed), size)), path, 90)


def make_image_dataset(
    root: str | os.PathLike[str],
    *,
    n_images: int = 3000,
    n_groups: int = 30,
    seed: int = 0,
    size: int = 96,
    outlier_fraction: float = 0.03,
    near_duplicate_fraction: float = 0.1,
) -> pl.DataFrame:
    """Write a seeded synthetic image dataset below ``root`` and describe it.

    ``round(outlier_fraction * n_images)`` images are outliers,
    ``round(near_duplicate_fraction * n_images)`` are near-duplicates (each of a
    different original, in the original's group folder), the rest are originals spread
    over the groups (every group gets at least one). Existing files of the same names
    are overwritten; other files in ``root`` are left alone. Images are rendered,
    encoded and written in up to 4 threads: 3000 images at 96 px take about 4 s on
    2 idle cores (about 1.5 ms of CPU per image).

    Args:
        root: Output directory (created if needed).
        n_images: Total number of images written.
        n_groups: Number of groups (styles).
        seed: Seed of the generator; the same arguments give byte-identical files.
        size: Side of the originals in pixels (near-duplicate crops are a bit smaller).
        outlier_fraction: Fraction of random-noise outlier images.
        near_duplicate_fraction: Fraction of near-duplicates of originals.

    Returns:
        One row per image, sorted by ``path``, with :data:`IMAGE_DATASET_SCHEMA`:
        ``path`` (relative posix), ``group`` (``-1`` for outliers), ``kind``
        (``"original"``, ``"near_duplicate"``, ``"outlier"``) and ``source`` (the
        original's path for a near-duplicate, else null).

    Raises:
        ParameterError: An argument is out of range, or there would be fewer originals
            than groups or near-duplicates.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     df = make_image_dataset(tmp, n_images=40, n_groups=4, size=32)
        >>> df.group_by("kind").len().sort("kind").rows()
        [('near_duplicate', 4), ('original', 35), ('outlier', 1)]

    """
    if n_images < 1:
        raise ParameterError(f"n_images must be >= 1, got {n_images}")
    if n_groups < 1:
        raise ParameterError(f"n_groups must be >= 1, got {n_groups}")
    if size < 16:
        raise ParameterError(f"size must be >= 16, got {size}")
    for name, frac in [
        ("outlier_fraction", outlier_fraction),
        ("near_duplicate_fraction", near_duplicate_fraction),
    ]:
        if not 0.0 <= frac < 1.0:
            raise ParameterError(f"{name} must be in [0, 1), got {frac}")
    n_out = round(outlier_fraction * n_images)
    n_dup = round(near_duplicate_fraction * n_images)
    n_orig = n_images - n_out - n_dup
    if n_orig < max(n_groups, n_dup):
        raise ParameterError(
            f"{n_images} images with {n_out} outliers and {n_dup} near-duplicates leave "
            f"{n_orig} originals: need at least one per group ({n_groups}) and one per "
            "near-duplicate"
        )

    rng = np.random.default_rng(seed)
    root_path = Path(root)
    styles = [_random_style(rng, size) for _ in range(n_groups)]
    # Every group gets one original, the rest go to groups with unequal weights.
    weights = rng.uniform(0.3, 1.0, n_groups)
    groups = np.concatenate(
        [np.arange(n_groups), rng.choice(n_groups, n_orig - n_groups, p=weights / weights.sum())]
    )
    groups = np.sort(groups)
    for g in range(n_groups):
        (root_path / f"group_{g:03d}").mkdir(parents=True, exist_ok=True)
    if n_out:
        (root_path / "misc").mkdir(parents=True, exist_ok=True)

    paths: list[str] = []
    group_col: list[int] = []
    kinds: list[str] = []
    sources: list[str | None] = []
    exts = np.array([".png", ".jpg", ".webp"])
    orig_ext = exts[rng.choice(3, n_orig, p=[0.5, 0.3, 0.2])]
    src_idx = np.sort(rng.choice(n_orig, n_dup, replace=False))
    # Every image has its own seed, so the images can be rendered, encoded and written in
    # threads (Pillow releases the GIL) and still be a pure function of the arguments.
    seeds = rng.integers(0, 2**63, n_images).tolist()
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        pending: list[Future[None]] = []
        for i in range(n_orig):
            g = int(groups[i])
            rel = f"group_{g:03d}/img_{i:05d}{orig_ext[i]}"
            pending.append(pool.submit(_write_original, styles[g], seeds[i], size, root_path / rel))
            paths.append(rel)
            group_col.append(g)
            kinds.append("original")
            sources.append(None)
        for j, src in enumerate(src_idx.tolist()):
            i = n_orig + j
            g = int(groups[src])
            # Re-encode as JPEG/WebP at another quality, or as PNG if the source is not a PNG.
            choices = [".jpg", ".webp"] if orig_ext[src] == ".png" else [".jpg", ".webp", ".png"]
            ext = choices[int(rng.integers(len(choices)))]
            quality = int(rng.integers(55, 91))
            rel = f"group_{g:03d}/img_{i:05d}{ext}"
            pending.append(
                pool.submit(
                    _write_near_duplicate,
                    styles[g],
                    seeds[src],
                    seeds[i],
                    size,
                    root_path / rel,
                    quality,
                )
            )
            paths.append(rel)
            group_col.append(g)
            kinds.append("near_duplicate")
            sources.append(paths[src])
        for j in range(n_out):
            i = n_orig + n_dup + j
            rel = f"misc/img_{i:05d}{'.png' if rng.random() < 0.5 else '.jpg'}"
            pending.append(pool.submit(_write_outlier, seeds[i], size, root_path / rel))
            paths.append(rel)
            group_col.append(-1)
            kinds.append("outlier")
            sources.append(None)
        for fut in pending:
            fut.result()

    df = pl.DataFrame(
        {"path": paths, "group": group_col, "kind": kinds, "source": sources},
        schema=IMAGE_DATASET_SCHEMA,
    )
    return df.sort("path")
