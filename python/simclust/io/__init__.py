"""Input/output building blocks: fastdup feature files, image folders, a built-in embedder.

* :mod:`simclust.io.fastdup`: read/write fastdup's ``atrain_features.dat`` (+ ``.csv``).
* :mod:`simclust.io.images`: find image files below a folder and decode them.
* :mod:`simclust.io.embed`: :class:`PixelEmbedder`, a weight-free embedder for
  duplicates and near-duplicates (DCT structure + colour layout + colour histogram).

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> from simclust.io import PixelEmbedder, find_images, read_fastdup_features
    >>> from simclust.io import write_fastdup_features
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for i, colour in enumerate(["red", "blue"]):
    ...         Image.new("RGB", (32, 32), colour).save(Path(tmp) / f"{i}.png")
    ...     paths = find_images(tmp)
    ...     result = PixelEmbedder().embed(paths)
    ...     names = [p.name for p in result.paths]
    ...     _ = write_fastdup_features(Path(tmp) / "work", result.features, names)
    ...     features, filenames = read_fastdup_features(Path(tmp) / "work", mmap=False)
    >>> features.shape, filenames
    ((2, 465), ['0.png', '1.png'])

"""

from __future__ import annotations

from simclust.io.embed import (
    BAD_FILES_SCHEMA,
    EmbedResult,
    PixelEmbedder,
    dct_matrix,
    zigzag_indices,
)
from simclust.io.fastdup import (
    FEATURES_CSV_NAME,
    FEATURES_NAME,
    FastdupFeatures,
    read_fastdup_features,
    write_fastdup_features,
)
from simclust.io.images import IMAGE_SUFFIXES, ImageReadError, find_images, load_image

__all__ = [
    "BAD_FILES_SCHEMA",
    "FEATURES_CSV_NAME",
    "FEATURES_NAME",
    "IMAGE_SUFFIXES",
    "EmbedResult",
    "FastdupFeatures",
    "ImageReadError",
    "PixelEmbedder",
    "dct_matrix",
    "find_images",
    "load_image",
    "read_fastdup_features",
    "write_fastdup_features",
    "zigzag_indices",
]
