"""Built-in image embedder ``pixels``: colour and DCT features, no downloaded weights.

Good for exact and near-duplicates (crops of a few percent, brightness jitter,
re-encoding) and for grouping images by colour and layout; it knows nothing of
semantics. For semantic clusters, embed with your own model (e.g. the first-party
``simclust-onnx`` plugin) or load precomputed embeddings.

Example:
    >>> Pixels().dim
    360

"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from simclust.base import Embedder, EmbedderOutput, Progress
from simclust.io.embed import PixelEmbedder
from simclust.io.images import DEFAULT_MAX_PIXELS

__all__ = ["Pixels"]


class Pixels(Embedder):
    """:class:`simclust.io.embed.PixelEmbedder` as a registered embedder.

    Args:
        size: side the images are resized to.
        n_dct: low-frequency DCT coefficients of the grey image (structure).
        thumb: side of the colour thumbnail (layout of colour).
        hist_bins: levels per RGB channel of the colour histogram.
        weights: weights of the DCT, thumbnail and histogram blocks.
        n_jobs: decoding threads (default: ``SIMCLUST_NUM_THREADS`` or all cores; the
            kernels' cap applies, :func:`simclust.ops.resolve_threads`).
        max_pixels: images with more pixels are listed in ``bad_files`` without being
            decoded (a tiny PNG can claim 12000 x 12000 pixels).

    """

    def __init__(
        self,
        *,
        size: int = 64,
        n_dct: int = 104,
        thumb: int = 8,
        hist_bins: int = 4,
        weights: tuple[float, ...] = (0.5, 0.3, 0.2),
        n_jobs: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.size = size
        self.n_dct = n_dct
        self.thumb = thumb
        self.hist_bins = hist_bins
        self.weights = weights
        self.n_jobs = n_jobs
        self.max_pixels = max_pixels

    def _impl(self) -> PixelEmbedder:
        w = tuple(self.weights)
        return PixelEmbedder(
            size=self.size,
            n_dct=self.n_dct,
            thumb=self.thumb,
            hist_bins=self.hist_bins,
            weights=w,  # type: ignore[arg-type]  # PixelEmbedder checks the length
            max_pixels=self.max_pixels,
        )

    @property
    def dim(self) -> int:
        """The embedding dimension."""
        return self._impl().dim

    def embed(self, paths: Sequence[Path], *, progress: Progress | None = None) -> EmbedderOutput:
        """Embed the images; unreadable ones go to ``bad_files``."""
        return self._impl().embed(paths, progress=progress, n_jobs=self.n_jobs)
