"""Seeded synthetic embedding datasets for the simclust benchmarks.

The generator lives in :mod:`simclust.testing.datasets` (so the demo and the tests can use it
too); this module re-exports it for the scripts in ``bench/``.
"""

from __future__ import annotations

from simclust.testing.datasets import make_embeddings

__all__ = ["make_embeddings"]
