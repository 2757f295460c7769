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

from simclust.io.embed import PixelEmbedder

__all__ = ["Pixels"]

Pixels = PixelEmbedder
"""The ``pixels`` embedder is :class:`simclust.io.embed.PixelEmbedder` itself: its
constructor declares the parameters (``size``, ``n_dct``, ``thumb``, ``hist_bins``,
``weights``, ``max_pixels``, ``n_jobs``) once, for Python and for configs."""
