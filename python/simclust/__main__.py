"""``python -m simclust``: the ``simclust`` command line (see :mod:`simclust.cli`)."""

from __future__ import annotations

from simclust.cli import main

if __name__ == "__main__":
    main()
