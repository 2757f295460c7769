"""Built-in image embedder ``pixels``: colour and DCT features, no downloaded weights.

Perceptual, not semantic: good for exact and near-duplicates (horizontal flips, which
embed to the same vector, crops up to about 10 %, brightness jitter, re-encoding) and
for grouping images by colour and layout; it knows nothing of what the images show.
For semantic clusters, embed with your own model (e.g. the first-party
``simclust-onnx`` plugin) or load precomputed embeddings.

Example:
    >>> Pixels().dim
    465

"""

from __future__ import annotations

from simclust.io.embed import PixelEmbedder

__all__ = ["Pixels"]

Pixels = PixelEmbedder
"""The ``pixels`` embedder is :class:`simclust.io.embed.PixelEmbedder` itself: its
constructor declares the parameters (``size``, ``n_dct``, ``thumb``, ``hist_bins``,
``weights``, ``window``, ``max_pixels``, ``n_jobs``) once, for Python and for configs."""
