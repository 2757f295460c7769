"""Self-contained HTML reports of a :class:`simclust.Result`.

:func:`write_report` writes one HTML file that opens offline: the run summary, the rows
per cluster size range, the threshold sweep (from below the run's threshold), the
inter-cluster centroid similarity heatmap, per-cluster tightness (chained clusters
flagged), galleries of the largest clusters ordered by similarity to their centroid, the
near-duplicate groups (with ``[dedup]``), the suspect labels (with ``label-purity``) and
the outliers. Every value shown is a cosine similarity (higher = closer).

What the report shows is chosen in :mod:`simclust.report.data` (pure functions of a
result, no HTML); :mod:`simclust.report.html` assembles the page from
:mod:`~simclust.report.plots`, :mod:`~simclust.report.galleries` and
:mod:`~simclust.report.thumbs`, with its style sheet and script read from the package
data ``assets/report.css`` and ``assets/report.js``.

Example:
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from simclust import analyze
    >>> from simclust.report import write_report
    >>> res = analyze(np.eye(3), threshold=0.5)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = write_report(res, pathlib.Path(tmp) / "report.html")
    ...     out.name, out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    ('report.html', True)

"""

from __future__ import annotations

from simclust.report.html import write_report

__all__ = ["write_report"]
