"""Seeded synthetic image datasets: procedural groups, near-duplicates and outliers.

:func:`make_image_dataset` draws small images with Pillow and numpy only:

* ``n_groups`` groups, each with a base style: a shape (circle, ellipse, rectangle,
  triangle, star, hexagon, cross), a fill texture (flat, stripes, checker, smooth noise,
  radial gradient), a foreground colour pair and a gradient background. Colours come
  from a few colour families, so several groups share a colour family and differ by
  shape and texture. The members of a group are variations of the style in position,
  scale, aspect, rotation, lighting (the background's direction), fill colour, texture
  offset and accent position: alike, but no two of them near-duplicates. They are
  drawn one by one, each a random step from an earlier member, and kept when the
  built-in embedder (:class:`simclust.io.embed.PixelEmbedder`, on the drawn pixels)
  puts it at :data:`MEMBER_LINK` (0.925) or more to an earlier member of its group, so
  that a group stays one connected cluster at 0.9, and at most
  :data:`MEMBER_MAX_SIMILARITY` (0.935) to every other original of the dataset.
* near-duplicates of some originals: a crop of 0.5-1.5 % per side and/or a brightness
  jitter (x0.92-0.97 or x1.03-1.08), always re-encoded in another format or at another
  quality (JPEG 55-90, WebP 85-95; the originals use 92; WebP at a lower quality smears
  a dark, low-contrast image well beyond a near-duplicate for a perceptual embedder).
  With the built-in embedder, 3,000 images, seeds 0-4: planted pairs have cosine
  0.9665 or more (median 0.997), two originals at most 0.941, a near-duplicate and any
  file but its original at most 0.953 (a crop can shift it towards a neighbour of its
  original), so a threshold of 0.96 finds exactly the planted pairs (``simclust demo``'s
  :data:`simclust.cli.demo.DEMO_DEDUP_THRESHOLD`);
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

# A group's members: each is a variation of the group's style by a vector of
# _MEMBER_PARAMS within _MEMBER_RANGE of the style (half-widths; fractions of the side,
# log ratios, radians, texture pixels as fractions of the side, colour levels), drawn as
# a step from an earlier member (see _Walk).
_MEMBER_PARAMS = (
    "dx", "dy", "log_scale", "log_aspect", "angle", "light", "tex_x", "tex_y",
    "red", "green", "blue", "accent_x", "accent_y",
)  # fmt: skip
_MEMBER_RANGE = np.array([0.15, 0.15, 0.3, 0.3, 0.6, 0.8, 0.125, 0.125, 20.0, 20.0, 20.0, 0.1, 0.1])
MEMBER_LINK = 0.925
"""A new member is at least this similar to an earlier member of its group."""
MEMBER_MAX_SIMILARITY = 0.935
"""No two originals are more similar (as drawn, built-in embedder)."""
MEMBER_TRIES = 200
"""Candidates drawn for a member before the one nearest the band is taken."""
DUP_CROP = (0.005, 0.015)
"""A near-duplicate's crop per side (fraction of the side)."""
DUP_BRIGHTNESS = (0.03, 0.08)
"""A near-duplicate's brightness change (fraction, darker or brighter)."""


@dataclass(frozen=True)
class _Style:
    shape: str
    fg: _F64
    bg: tuple[_F64, _F64]  # the background's gradient: from, to (RGB)
    bg_angle: float  # the gradient's direction
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

    bg_angle = float(rng.uniform(0, 2 * np.pi))

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
        bg=(bg, bg2),
        bg_angle=bg_angle,
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


def _gradient(colours: tuple[_F64, _F64], angle: float, size: int) -> Image.Image:
    """A linear gradient between two colours across the image, in direction ``angle``."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    t = np.clip((xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle) + 0.5, 0, 1)
    return _to_image(colours[0] + t[:, :, None] * (colours[1] - colours[0]))


def _render(style: _Style, member: _F64, size: int) -> npt.NDArray[np.uint8]:
    """One member of a group: the style varied by ``member`` (see ``_MEMBER_PARAMS``)."""
    dx, dy, log_scale, log_aspect, angle, light, tx, ty, *jitter, ax, ay = member.tolist()
    margin = style.texture.width - size
    ox, oy = (round((0.5 + t / (2 * _MEMBER_RANGE[6])) * margin) for t in (tx, ty))
    crop = np.asarray(style.texture.crop((ox, oy, ox + size, oy + size)), np.int16)
    shift = np.rint(np.array(jitter)).astype(np.int16)
    fill = Image.fromarray(np.clip(crop + shift, 0, 255).astype(np.uint8))
    cx = float(np.clip(style.center[0] + dx, 0.2, 0.8)) * size
    cy = float(np.clip(style.center[1] + dy, 0.2, 0.8)) * size
    r = style.scale * size * float(np.exp(log_scale))
    aspect = style.aspect * float(np.exp(log_aspect))
    pts = _transform(_shape_points(style.shape), cx, cy, r, aspect, style.angle + angle)
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).polygon([(float(x), float(y)) for x, y in pts], fill=255)
    out = Image.composite(fill, _gradient(style.bg, style.bg_angle + light, size), mask)
    if style.accent:
        ax, ay = (style.accent_pos[0] + ax) * size, (style.accent_pos[1] + ay) * size
        ar = 0.08 * size
        colour = tuple(int(c) for c in 255 - style.fg)
        ImageDraw.Draw(out).ellipse((ax - ar, ay - ar, ax + ar, ay + ar), fill=colour)
    return np.asarray(out, dtype=np.uint8)


class _Walk:
    """Draws a group's members: alike, but no two of them near-duplicates.

    The first member is the style itself; every next one is a random step from a random
    earlier member (a vector of ``_MEMBER_PARAMS``), kept when the built-in embedder
    (:class:`simclust.io.embed.PixelEmbedder`, on the rendered pixels) puts it at
    :data:`MEMBER_LINK` or more to an earlier member of its group (so that the group stays
    connected) and at most :data:`MEMBER_MAX_SIMILARITY` to every earlier member and to
    every image in ``others`` (so that no two originals are near-duplicates). The step
    grows after a candidate that was too close and shrinks after one that was too far,
    so that it suits the style (a large flat disc changes more with a shift than a small
    star). After :data:`MEMBER_TRIES` candidates without one in the band, the one
    closest to it from below is kept (never one above the cap, if any is below).
    """

    def __init__(self, style: _Style, seed: int, size: int) -> None:
        from simclust.io.embed import PixelEmbedder

        self.style, self.size = style, size
        self.rng = np.random.default_rng(seed)
        self.embedder = PixelEmbedder()
        first = np.zeros(len(_MEMBER_RANGE))
        self.params = [first]
        self.vectors = self.embed(_render(style, first, size))[None]
        self.step = 0.25

    def embed(self, img: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        side = self.embedder.size
        small = Image.fromarray(img, "RGB").resize(
            (side, side), Image.Resampling.BILINEAR, reducing_gap=3.0
        )
        out: npt.NDArray[np.float32] = self.embedder.embed_arrays(np.asarray(small)[None])[0]
        return out

    def draw(
        self, others: npt.NDArray[np.float32] | None = None, exclude: int = -1
    ) -> tuple[_F64, npt.NDArray[np.float32]]:
        """A new member (parameters, embedding); ``exclude``: a member it replaces."""
        keep = np.arange(len(self.params)) != exclude
        own = self.vectors[keep]
        parents = np.flatnonzero(keep)
        best: tuple[tuple[bool, float], _F64, npt.NDArray[np.float32]] | None = None
        for _ in range(MEMBER_TRIES):
            parent = self.params[int(parents[self.rng.integers(len(parents))])]
            step = self.rng.normal(0, self.step, len(_MEMBER_RANGE)) * _MEMBER_RANGE
            p = np.clip(parent + step, -_MEMBER_RANGE, _MEMBER_RANGE)
            v = self.embed(_render(self.style, p, self.size))
            link = float((own @ v).max())
            closest = max(
                link, float((others @ v).max(initial=-1.0)) if others is not None else -1.0
            )
            if closest > MEMBER_MAX_SIMILARITY:
                self.step = min(self.step * 1.2, 2.0)
            elif link < MEMBER_LINK:
                self.step = max(self.step / 1.2, 0.01)
            else:
                return p, v
            # the fallback: below the cap first, then the nearest to the band
            above = closest > MEMBER_MAX_SIMILARITY
            rank = (above, closest if above else MEMBER_LINK - link)
            if best is None or rank < best[0]:
                best = (rank, p, v)
        assert best is not None
        return best[1], best[2]

    def grow(self, n: int) -> None:
        """Draw members until there are ``n``."""
        while len(self.params) < n:
            p, v = self.draw()
            self.params.append(p)
            self.vectors = np.vstack([self.vectors, v])

    def replace(self, i: int, others: npt.NDArray[np.float32]) -> None:
        """Draw member ``i`` again, also at most the cap to ``others``."""
        p, v = self.draw(others, exclude=i)
        self.params[i] = p
        self.vectors[i] = v


def _draw_groups(
    styles: list[_Style], seeds: list[int], counts: list[int], size: int, pool: ThreadPoolExecutor
) -> list[list[_F64]]:
    """Every group's members (parameters); no two originals in the dataset alike.

    The groups are drawn in parallel, each alone; then, in group order, a member that is
    above :data:`MEMBER_MAX_SIMILARITY` to a member of an earlier group is drawn again.
    """

    def walk(g: int) -> _Walk:
        w = _Walk(styles[g], seeds[g], size)
        w.grow(counts[g])
        return w

    walks = list(pool.map(walk, range(len(styles))))
    for g in range(1, len(walks)):
        earlier = np.vstack([w.vectors for w in walks[:g]])
        for i in range(counts[g]):
            for _ in range(MEMBER_TRIES):
                if float((earlier @ walks[g].vectors[i]).max()) <= MEMBER_MAX_SIMILARITY:
                    break
                walks[g].replace(i, earlier)
    return [w.params[: counts[g]] for g, w in enumerate(walks)]


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
    """Crop 1-3 % per side and/or jitter the brightness (at least one of the two)."""
    img = Image.fromarray(src, "RGB")
    ops = rng.random(2) < 0.75
    if not ops.any():
        ops[rng.integers(2)] = True
    if ops[0]:
        w, h = img.size
        left, top, right, bottom = rng.uniform(DUP_CROP[0], DUP_CROP[1], 4)
        box = (round(left * w), round(top * h), w - round(right * w), h - round(bottom * h))
        img = img.crop(box)
    if ops[1]:
        lo, hi = DUP_BRIGHTNESS
        factor = rng.uniform(1 - hi, 1 - lo) if rng.random() < 0.5 else rng.uniform(1 + lo, 1 + hi)
        img = ImageEnhance.Brightness(img).enhance(float(factor))
    return img


def _write_near_duplicate(src: npt.NDArray[np.uint8], seed: int, path: Path, quality: int) -> None:
    img = _near_duplicate(src, np.random.default_rng(seed))
    if path.suffix == ".png":
        # A lossless copy must still be re-encoded: round-trip through a JPEG first.
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        with Image.open(buf) as decoded:
            img = decoded.convert("RGB")
    _save(img, path, quality)


@dataclass(frozen=True)
class _DupJob:
    source: int  # index of the original within its group
    seed: int
    path: Path
    quality: int


def _write_group(
    style: _Style, members: list[_F64], size: int, originals: list[Path], dups: list[_DupJob]
) -> None:
    """Render a group's originals, write them and their near-duplicates."""
    images = [_render(style, p, size) for p in members]
    for img, path in zip(images, originals, strict=True):
        _save(Image.fromarray(img), path, 92)
    for job in dups:
        _write_near_duplicate(images[job.source], job.seed, job.path, job.quality)


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
    encoded and written in up to 4 threads. Drawing members that are alike but not
    near-duplicates takes several candidates each (rendered and embedded): 3000 images
    at 96 px take about 45-75 s on 2 shared cores.

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
    # Every group and every near-duplicate and outlier has its own seed, so that groups
    # can be rendered, encoded and written in threads (Pillow releases the GIL) and still
    # be a pure function of the arguments.
    seeds = rng.integers(0, 2**63, n_images).tolist()
    group_seeds = rng.integers(0, 2**63, n_groups).tolist()
    starts = np.searchsorted(groups, np.arange(n_groups)).tolist()
    for i in range(n_orig):
        g = int(groups[i])
        paths.append(f"group_{g:03d}/img_{i:05d}{orig_ext[i]}")
        group_col.append(g)
        kinds.append("original")
        sources.append(None)
    dup_jobs: list[list[_DupJob]] = [[] for _ in range(n_groups)]
    for j, src in enumerate(src_idx.tolist()):
        i = n_orig + j
        g = int(groups[src])
        # Re-encode as JPEG/WebP at another quality, or as PNG if the source is not a PNG.
        choices = [".jpg", ".webp"] if orig_ext[src] == ".png" else [".jpg", ".webp", ".png"]
        ext = choices[int(rng.integers(len(choices)))]
        quality = int(rng.integers(55, 91))
        if ext == ".webp":  # lossy WebP below ~85 smears dark, low-contrast images
            quality = 85 + round((quality - 55) * 10 / 35)
        rel = f"group_{g:03d}/img_{i:05d}{ext}"
        dup_jobs[g].append(_DupJob(src - starts[g], seeds[i], root_path / rel, quality))
        paths.append(rel)
        group_col.append(g)
        kinds.append("near_duplicate")
        sources.append(paths[src])
    ends = [*starts[1:], n_orig]
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        members = _draw_groups(
            styles, group_seeds, [e - s for s, e in zip(starts, ends, strict=True)], size, pool
        )
        pending: list[Future[None]] = []
        for g in range(n_groups):
            originals = [root_path / paths[i] for i in range(starts[g], ends[g])]
            pending.append(
                pool.submit(_write_group, styles[g], members[g], size, originals, dup_jobs[g])
            )
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
