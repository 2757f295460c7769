r"""One self-contained HTML file that shows a :class:`~simclust.Result` for checking by eye.

The report is meant for verifying that the similarity metrics are reasonable: next to
fastdup-style galleries it shows what a gallery cannot, namely each cluster's true
tightness (all-pairs similarities), its members' similarities to the centroid and the
similarities between cluster centroids. Every number is a cosine SIMILARITY (higher =
closer), never a distance.

The file opens offline: plotly.js is inlined once, thumbnails are inlined as base64
JPEG data URIs, and a Content-Security-Policy allows only the report's own scripts
(by hash) and ``data:`` images. Every string from the data (ids, file names, errors) is
HTML-escaped in text and attributes, and ``<``, ``>`` and ``&`` are ``\u``-escaped in
the JSON embedded in ``<script>`` blocks.

Example:
    >>> import tempfile, pathlib
    >>> from simclust import analyze
    >>> from simclust.testing import make_embeddings
    >>> res = analyze(make_embeddings(200, 16, n_clusters=4, seed=0), threshold=0.8)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = write_report(res, pathlib.Path(tmp) / "report.html", max_clusters=3)
    ...     text = out.read_text(encoding="utf-8")
    >>> "SIMILARITIES" in text, "<script src" in text
    (True, False)

"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from simclust._format import fmt_float, outlier_text, search_lines
from simclust.exceptions import ParameterError
from simclust.report import data, plots
from simclust.report._markup import MINUS, TIMES, esc, how, script_json, table
from simclust.report.galleries import (
    duplicates_section,
    outliers_section,
    suspect_labels_section,
)
from simclust.report.galleries import galleries_section as _galleries_section
from simclust.report.thumbs import Thumb, is_image_mode, make_thumbs

if TYPE_CHECKING:
    from simclust.result import Result

__all__ = ["write_report"]

_GENERATOR = '<meta name="generator" content="simclust.report">'

# Names tests/test_report.py reaches through this module (it also patches
# _galleries_section to make the rendering fail part-way).
_chained = data.chained_clusters
_script_json = script_json


def write_report(
    result: Result,
    path: str | Path,
    *,
    image_root: str | Path | None = None,
    title: str | None = None,
    max_clusters: int = 50,
    gallery_size: int = 24,
    thumb_px: int = 96,
) -> Path:
    """Write a self-contained HTML report of ``result`` to ``path`` (atomically).

    Sections: run summary; rows per cluster size range; threshold sweep (from below the
    run's threshold); centroid similarity heatmap of the largest clusters; per-cluster
    tightness with chained clusters flagged (:meth:`Result.chained_clusters`); galleries
    of the ``max_clusters`` largest clusters (size >= 2), members ordered by similarity
    to the centroid, medoid first; with ``[dedup]``, the ``max_clusters`` largest
    near-duplicate groups (the kept file first, similarities to it and each pair's);
    with the ``label-purity`` metric, the suspect labels (largest clusters first); the
    outliers (every row ranked by its similarity to its nearest neighbour, the lowest
    1 % listed), noise rows and unreadable files (``result.tables["bad_files"]``).

    Galleries show thumbnails when the ids are image paths (or ``image_root`` is
    given); an image that is missing or unreadable, or whose path leads outside the
    image root (``../x.png``, an absolute path elsewhere, a symlink out of it), is shown
    as its (escaped) name. An existing ``path`` is replaced only if it is a report
    simclust wrote.
    Otherwise they show the member ids and similarities as a table. The output depends
    only on ``result``, the arguments and the image files.

    Args:
        result: the result of :func:`simclust.analyze`.
        path: the HTML file to write; its folder is created if needed.
        image_root: the folder relative image ids are resolved against and that every
            thumbnail must lie in (default: the working directory).
        title: the page title (default: rows and clusters of the run).
        max_clusters: clusters in the galleries and the heatmap (the largest first).
        gallery_size: members shown per cluster; a larger cluster shows its members
            most similar to the centroid and, after a gap, its least similar ones.
        thumb_px: the longest side of a thumbnail, in pixels.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ParameterError: an argument is out of range, or ``image_root`` is not a folder.
        FileExistsError: ``path`` exists and is not a simclust report.

    Example:
        >>> import tempfile, pathlib
        >>> import numpy as np
        >>> from simclust import analyze
        >>> res = analyze(np.eye(3), threshold=0.5)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     out = write_report(res, pathlib.Path(tmp) / "r.html", title="<eye>")
        ...     "<title>&lt;eye&gt;</title>" in out.read_text(encoding="utf-8")
        True

    """
    if max_clusters < 0:
        raise ParameterError(f"max_clusters must be >= 0, got {max_clusters}")
    if gallery_size < 1:
        raise ParameterError(f"gallery_size must be >= 1, got {gallery_size}")
    if not 8 <= thumb_px <= 1024:
        raise ParameterError(f"thumb_px must be in [8, 1024], got {thumb_px}")
    root = Path(image_root) if image_root is not None else None
    if root is not None and not root.is_dir():
        raise ParameterError(f"image_root {str(root)!r} is not a folder")
    target = Path(path)
    if os.path.lexists(target) and not _is_report(target):
        raise FileExistsError(
            f"{target} exists and is not a simclust report; refusing to replace it"
        )
    opts = _Options(root, title, max_clusters, gallery_size, thumb_px)
    _atomic_write(target, _render(result, opts))
    return target


@dataclass(frozen=True)
class _Options:
    """The arguments of :func:`write_report` that shape the page."""

    image_root: Path | None
    title: str | None
    max_clusters: int
    gallery_size: int
    thumb_px: int


def _is_report(path: Path) -> bool:
    """Whether ``path`` is a file this module wrote (its generator tag near the start)."""
    try:
        with path.open("rb") as f:
            return _GENERATOR.encode() in f.read(4096)
    except OSError:
        return False


def _atomic_write(target: Path, chunks: Iterable[str]) -> None:
    """Write ``chunks`` to a temporary sibling of ``target``, then ``os.replace`` it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@cache
def _asset(name: str) -> str:
    """A file of ``simclust/report/assets`` (package data), as text."""
    return resources.files("simclust.report").joinpath("assets", name).read_text(encoding="utf-8")


def _css() -> str:
    """The page's style sheet, as inlined in ``<style>``."""
    return "\n" + _asset("report.css")


def _page_js() -> str:
    """The page script exactly as inlined in its ``<script>``; the CSP hashes these bytes."""
    return "\n" + _asset("report.js")


def _csp_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _head(title: str, plotly_js: str) -> str:
    csp = (
        "default-src 'none'; "
        f"script-src {_csp_hash(plotly_js)} {_csp_hash(_page_js())}; "
        "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; "
        "base-uri 'none'; form-action 'none'"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"{_GENERATOR}\n"
        '<link rel="icon" href="data:,">\n'
        f"<title>{esc(title)}</title>\n<style>{_css()}</style>\n</head>\n<body>\n"
    )


def _header(title: str, sections: Sequence[tuple[str, str]]) -> str:
    links = "".join(f'<a href="#{sid}">{esc(label)}</a>' for sid, label in sections)
    return (
        f'<header id="top"><h1>{esc(title)}</h1>\n<nav>{links}</nav>\n'
        '<p class="note">All values are cosine <b>SIMILARITIES</b> in [-1, 1]: '
        "higher = closer (1 = same direction). None of them is a distance.</p>\n"
        "</header>\n<main>\n"
    )


def _params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


def _flat(prefix: str, value: object) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _flat(f"{prefix}{k}." if isinstance(v, Mapping) else f"{prefix}{k}", v)
    else:
        yield prefix, str(value)


def _summary_section(result: Result, threshold: float | None) -> str:
    """What was run and how the rows split up."""
    s = result.summary()
    cfg = result.config
    cl = result.clusters
    n_rows = int(s["n_rows"])
    multi = cl.filter(pl.col("size") >= 2)
    in_multi = int(multi["size"].sum()) if multi.height else 0
    cluster_cfg = cfg.get("cluster") or {}
    strategy = f"{cluster_cfg.get('strategy')} ({_params_text(cluster_cfg.get('params') or {})})"
    metrics = cfg.get("metrics") or {}
    metric_params = metrics.get("params") or {}
    metric_txt = ", ".join(
        f"{m}({_params_text(metric_params.get(m) or {})})" if metric_params.get(m) else str(m)
        for m in metrics.get("use", [])
    )
    fp = result.fingerprint
    pct = f" ({100.0 * in_multi / n_rows:.1f} % of rows)" if n_rows else ""
    rows: list[tuple[str, str]] = [
        ("rows", f"{n_rows:,}" + (f" {TIMES} {fp['dim']} dims" if "dim" in fp else "")),
        ("clusters", f"{s['n_clusters']:,} ({multi.height:,} with ≥ 2 members)"),
        ("rows in clusters of ≥ 2", f"{in_multi:,}{pct}"),
        ("singletons", f"{s['n_singletons']:,}"),
        (f"noise rows (label {MINUS}1)", f"{s['n_noise']:,}"),
        ("largest cluster", f"{s['largest_cluster']:,}"),
        ("graph edges", f"{s['n_edges']:,}"),
        ("strategy", strategy),
        ("clustering threshold", fmt_float(threshold) if threshold is not None else "— (none)"),
        ("graph", str(cfg.get("graph")) if cfg.get("graph") is not None else "strategy's own"),
        *search_lines(result.graph_search, result.metric_searches),
        ("outlier scores", outlier_text(result.outlier_search)),
        ("metrics", metric_txt),
        ("input fingerprint", ", ".join(f"{k}={v}" for k, v in fp.items())),
    ]
    rows += [(f"version: {k}", v) for k, v in _flat("", result.versions)]
    rows += [(f"time: {k}", f"{v:.3f} s") for k, v in result.timings.items()]
    kv = table(
        ["", "value"], ((esc(k), f'<span class="id">{esc(v)}</span>') for k, v in rows), "data kv"
    )
    return (
        '<section id="summary"><h2>Run summary</h2>\n'
        + how(
            "what was run and how the rows split up. A singleton is a cluster of one row; "
            f"noise rows (label {MINUS}1) belong to no cluster. Times are the run's own, "
            "in seconds."
        )
        + kv
        + "</section>\n"
    )


def _tail(plotly_js: str) -> str:
    """The end of the page: plotly.js, then the page script."""
    return (
        f"</main>\n<script>{plotly_js}</script>\n<script>{_page_js()}</script>\n</body>\n</html>\n"
    )


def _render(result: Result, opts: _Options) -> Iterator[str]:
    """The report's HTML, in chunks (a failure part-way leaves no file behind)."""
    from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

    plotly_js = str(get_plotlyjs())
    if "</script" in plotly_js.lower():  # pragma: no cover - plotly.js never contains it
        raise RuntimeError("plotly.js contains '</script'; cannot inline it")
    s = result.summary()
    threshold = result.threshold()
    title = opts.title or (
        f"simclust report — {int(s['n_rows']):,} rows, {int(s['n_clusters']):,} clusters"
    )
    galleries = data.galleries(result, opts.max_clusters, opts.gallery_size)
    shown = {int(g.row["cluster"]) for g in galleries}
    chained = data.chained_clusters(result, threshold)
    outliers = data.outliers(result, opts.gallery_size)
    noise = data.noise_rows(result, opts.gallery_size)
    dups = data.duplicate_groups(result, opts.max_clusters, opts.gallery_size)
    suspects = data.suspect_labels(result, opts.gallery_size * 4)

    sections = [
        ("summary", "Summary"),
        ("sizes", "Sizes"),
        ("sweep", "Sweep"),
        ("heatmap", "Between clusters"),
        ("tightness", "Tightness"),
        ("chained", "Chained"),
        ("galleries", "Largest clusters"),
        *([("duplicates", "Near-duplicates")] if dups is not None else []),
        *([("labels", "Suspect labels")] if suspects is not None else []),
        ("outliers", "Outliers"),
    ]
    yield _head(title, plotly_js)
    yield _header(title, sections)
    yield _summary_section(result, threshold)
    yield plots.sizes_section(result)
    yield plots.sweep_section(result, threshold)
    yield plots.heatmap_section(result, opts.max_clusters)
    yield plots.tightness_section(result, threshold, chained, shown)

    thumbs: dict[str, Thumb | None] | None = None
    if is_image_mode(result.assignments["id"], opts.image_root):
        names = [m.id for g in galleries for m in (*g.head, *g.tail)]
        names += outliers.rows["id"].to_list() + noise["id"].to_list()
        if dups is not None:
            names += [i for g in dups.groups for i in g.members["id"].to_list()]
        if suspects is not None:
            names += suspects.rows["id"].to_list()
        cap = 2 * opts.max_clusters * opts.gallery_size + 6 * opts.gallery_size
        thumbs = make_thumbs(names, opts.image_root, opts.thumb_px, cap)
    yield from _galleries_section(galleries, chained, thumbs, opts.gallery_size, opts.thumb_px)
    if dups is not None:
        yield duplicates_section(dups, thumbs, opts.thumb_px)
    if suspects is not None:
        yield suspect_labels_section(suspects, thumbs, shown, opts.thumb_px)
    yield outliers_section(result, outliers, noise, thumbs, shown, opts.thumb_px)
    yield _tail(plotly_js)
