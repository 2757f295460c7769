"""Find and decode image files.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     Image.new("RGB", (40, 30), (255, 0, 0)).save(Path(tmp) / "red.png")
    ...     [p.name for p in find_images(tmp)], load_image(Path(tmp) / "red.png", 8).shape
    (['red.png'], (8, 8, 3))

"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from simclust.exceptions import InvalidInputError, ParameterError

__all__ = ["DEFAULT_MAX_PIXELS", "IMAGE_SUFFIXES", "ImageReadError", "find_images", "load_image"]

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
"""File suffixes :func:`find_images` treats as images (compared case-insensitively)."""


class ImageReadError(InvalidInputError):
    """An image file cannot be decoded (corrupt, empty, truncated, unsupported, unreadable).

    Attributes:
        path: The file.
        reason: What went wrong, e.g. ``"UnidentifiedImageError: cannot identify image file"``.

    Example:
        >>> str(ImageReadError("a.jpg", "file is empty"))
        'cannot read image a.jpg: file is empty'

    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read image {os.fspath(path)}: {reason}")

    def __reduce__(self) -> tuple[type[ImageReadError], tuple[Path, str]]:
        return (type(self), (self.path, self.reason))


def find_images(root: str | os.PathLike[str]) -> list[Path]:
    """List the image files below ``root``, recursively.

    Files count as images by their suffix (:data:`IMAGE_SUFFIXES`, case-insensitive).
    Hidden files and directories (name starting with ``.``) are skipped. Symbolic links
    are followed, except a link to a directory that is already on the current path (a
    loop). The result is sorted by the posix path relative to ``root``, so it does not
    depend on the file system's listing order.

    Args:
        root: The directory to search.

    Returns:
        The image paths, each ``root / relative_path``.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        NotADirectoryError: ``root`` is not a directory.
        PermissionError: A directory below ``root`` cannot be listed (nothing is
            skipped silently).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     for name in ["b/2.PNG", "a.jpg", "b/1.txt", ".hidden/3.jpg"]:
        ...         (Path(tmp) / name).parent.mkdir(exist_ok=True)
        ...         (Path(tmp) / name).touch()
        ...     [p.relative_to(tmp).as_posix() for p in find_images(tmp)]
        ['a.jpg', 'b/2.PNG']

    """
    root_path = Path(root)
    if not root_path.exists():
        raise FileNotFoundError(f"image folder {str(root_path)!r} does not exist")
    if not root_path.is_dir():
        raise NotADirectoryError(f"image folder {str(root_path)!r} is not a directory")
    suffixes = frozenset(IMAGE_SUFFIXES)
    found: list[tuple[str, Path]] = []

    def walk(directory: Path, rel: str, ancestors: frozenset[tuple[int, int]]) -> None:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()  # follows symlinks
                st = os.stat(entry.path) if is_dir else None
                is_image = not is_dir and entry.is_file()
            except OSError:
                continue  # a broken symlink or an entry that vanished
            if st is not None:
                key = (st.st_dev, st.st_ino)
                if key not in ancestors:  # else a symlink loop
                    walk(Path(entry.path), f"{rel}{entry.name}/", ancestors | {key})
            elif is_image and os.path.splitext(entry.name)[1].lower() in suffixes:
                found.append((f"{rel}{entry.name}", Path(entry.path)))

    st = os.stat(root_path)
    walk(root_path, "", frozenset({(st.st_dev, st.st_ino)}))
    found.sort(key=lambda t: t[0])
    return [p for _, p in found]


_HIGH_DEPTH_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def _to_8bit(im: Image.Image) -> Image.Image:
    """Scale high-depth grayscale to 8 bits.

    16-bit and ``I`` data are divided by 257 (``I`` data within 0-255 is kept as is);
    float data in [0, 1] is multiplied by 255, other float data clipped to 0-255.
    """
    a = np.asarray(im, dtype=np.float64)
    if im.mode == "F":
        if a.size and np.nanmax(a) <= 1.0:
            a = a * 255.0
    elif im.mode != "I" or (a.size and a.max() > 255):
        a = a / 257.0
    a = np.nan_to_num(a, nan=0.0)
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")


DEFAULT_MAX_PIXELS = 50_000_000
"""Default of :func:`load_image`'s ``max_pixels``: larger images are refused undecoded
(a 50 M pixel image decodes to about 150 MB of RGB; a PNG of a few KB can claim
12000 x 12000 pixels)."""


def load_image(
    path: str | os.PathLike[str], size: int, *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> npt.NDArray[np.uint8]:
    """Decode an image into a ``size x size`` RGB array.

    The image is opened with Pillow, rotated/flipped by its EXIF orientation
    (:func:`PIL.ImageOps.exif_transpose`; ignored if the EXIF data is malformed),
    scaled to 8 bits if it is 16-bit or float grayscale, composited on white if it has
    transparency, converted to RGB and resized to ``size x size`` (ignoring the aspect
    ratio) with an antialiasing bilinear filter. JPEGs are decoded at a reduced scale
    when much larger than ``size`` (fast, and the result is about the same).

    An image with more than ``max_pixels`` pixels (after the JPEG reduction) is refused
    from its header, before anything is decoded. Pillow's own decompression-bomb limit
    still refuses images above twice :data:`PIL.Image.MAX_IMAGE_PIXELS`.

    Args:
        path: The image file.
        size: Side of the output in pixels.
        max_pixels: The most pixels an image may have (``None``: no limit of simclust's).

    Returns:
        ``uint8[size, size, 3]``, RGB, C-order.

    Raises:
        ImageReadError: The file cannot be read or decoded (missing, empty, corrupt,
            truncated, unsupported format).
        ParameterError: ``size < 1`` or ``max_pixels < 1``.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from PIL import Image
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     Image.new("L", (64, 48), 200).save(Path(tmp) / "gray.jpg")
        ...     load_image(Path(tmp) / "gray.jpg", 16)[0, 0].tolist()
        [200, 200, 200]

    """
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise ParameterError(f"size must be a positive int, got {size!r}")
    size = int(size)
    if max_pixels is not None and (
        isinstance(max_pixels, bool)
        or not isinstance(max_pixels, int | np.integer)
        or max_pixels < 1
    ):
        raise ParameterError(f"max_pixels must be a positive int or None, got {max_pixels!r}")
    try:
        if os.path.getsize(path) == 0:
            raise ImageReadError(path, "file is empty (0 bytes)")
        with Image.open(path) as im:
            if im.format == "JPEG" and im.width * im.height > 16 * size * size:
                im.draft("RGB", (2 * size, 2 * size))
            if max_pixels is not None and im.width * im.height > max_pixels:
                raise ImageReadError(
                    path,
                    f"{im.width} x {im.height} = {im.width * im.height:,} pixels, more than "
                    f"the limit max_pixels = {int(max_pixels):,} (not decoded)",
                )
            im.load()
            try:
                out = ImageOps.exif_transpose(im)
            except Exception:  # malformed EXIF: the pixels are still fine
                out = im.copy()
            if out.mode in _HIGH_DEPTH_MODES:
                out = _to_8bit(out)
            if "transparency" in out.info or "A" in out.getbands():
                rgba = out.convert("RGBA")
                out = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                out.alpha_composite(rgba)
            out = out.convert("RGB")
            if out.size != (size, size):
                out = out.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
            arr = np.asarray(out, dtype=np.uint8)
    except ImageReadError:
        raise
    except Exception as e:  # Pillow raises many types for bad files; none is fatal here
        raise ImageReadError(path, f"{type(e).__name__}: {e}") from e
    if arr.shape != (size, size, 3):
        raise ImageReadError(path, f"decoded to shape {arr.shape}, expected {(size, size, 3)}")
    return np.ascontiguousarray(arr)
