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
import html
import io
import json
import math
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from simclust.exceptions import ParameterError
from simclust.result import BRIDGE_MARGIN, CHAIN_MARGIN

if TYPE_CHECKING:
    from simclust.result import Result

__all__ = ["BRIDGE_MARGIN", "CHAIN_MARGIN", "IMAGE_SUFFIXES", "write_report"]

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".ppm", ".pgm"}
)
"""File name suffixes (lower case) that make an id count as an image path."""


_MAX_SCATTER = 20_000  # clusters in the tightness scatter (the largest, plus all chained)
_MAX_TABLE_ROWS = 200  # rows of the chained / bad-files tables
_MEMBER_ROWS = 10  # rows per member table (id-only galleries)
_THUMB_QUALITY = 80
_GENERATOR = '<meta name="generator" content="simclust.report">'
_SIM = "cosine similarity"
_TIMES, _MINUS, _DASH = "\u00d7", "\u2212", "\u2013"  # times, minus, en dash

Thumb = tuple[str, int, int]  # data URI, width, height


# --------------------------------------------------------------------------- public API


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

    Sections: run summary; cluster size distribution; threshold sweep; centroid
    similarity heatmap of the largest clusters; per-cluster tightness with chained
    clusters flagged (all-pairs ``sim_min`` below ``threshold - 0.1``, or, for clusters
    of three or more, ``bridge_similarity`` within 0.01 of the threshold); galleries of
    the ``max_clusters`` largest clusters (size >= 2), members ordered by similarity to
    the centroid, medoid first; the outliers (lowest similarity to their centroid),
    noise rows and unreadable files (``result.tables["bad_files"]``).

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


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class _Options:
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


def _esc(value: object) -> str:
    """HTML-escape ``value`` for text and (quoted) attributes."""
    return html.escape(str(value), quote=True)


def _script_json(obj: object) -> str:
    """JSON that is safe inside ``<script>``: no ``<``, ``>`` or ``&`` left."""
    text = json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _num(value: object) -> float | None:
    """``value`` as a finite float, else ``None``."""
    if value is None:
        return None
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _fmt(value: object, digits: int = 3) -> str:
    f = _num(value)
    return "—" if f is None else f"{f:.{digits}f}"


def _round(value: object, digits: int = 4) -> float | None:
    f = _num(value)
    return None if f is None else round(f, digits)


def _threshold(result: Result) -> float | None:
    params = (result.config.get("cluster") or {}).get("params") or {}
    return _num(params.get("threshold"))


def _basename(name: str) -> str:
    return name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or name


def _how(text: str) -> str:
    return f'<p class="how"><b>How to read this:</b> {text}</p>\n'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "data") -> str:
    """A table; ``headers`` and cells are HTML already (callers escape data)."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>\n" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>\n'


def _plot(name: str, figure: Mapping[str, Any], height: int = 420) -> str:
    """A plotly div and its figure as escaped JSON (drawn by the page script)."""
    return (
        f'<div class="plot" id="plot-{name}" data-spec="spec-{name}" '
        f'style="height:{height}px"></div>\n'
        f'<script type="application/json" id="spec-{name}">{_script_json(figure)}</script>\n'
    )


def _layout(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "margin": {"l": 70, "r": 30, "t": 30, "b": 60},
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
        "hovermode": "closest",
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#fafafa",
    }
    base.update(extra)
    return base


def _cluster_link(cluster: object, shown: set[int]) -> str:
    c = int(cluster)  # type: ignore[call-overload]
    return f'<a href="#cluster-{c}">{c}</a>' if c in shown else str(c)


# --------------------------------------------------------------------------- thumbnails


def _is_image_mode(ids: pl.Series, image_root: Path | None) -> bool:
    if image_root is not None:
        return True
    if ids.len() == 0:
        return False
    suffixes = "|".join(s.lstrip(".") for s in sorted(IMAGE_SUFFIXES))
    hits = ids.str.contains(rf"(?i)\.({suffixes})$").fill_null(False)
    return bool(hits.sum() * 2 >= ids.len())


def _resolve(name: str, root: Path) -> Path | None:
    """``name`` under the (resolved) ``root``; ``None`` if it leads outside (also via links)."""
    try:
        p = (root / name).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        return None
    return p if p.is_relative_to(root) else None


def _make_thumb(path: Path | None, px: int) -> Thumb | None:
    """A JPEG thumbnail of ``path`` as a data URI, or ``None`` if it cannot be read."""
    from PIL import Image, ImageOps

    try:
        if path is None or not path.is_file():
            return None
        with Image.open(path) as opened:
            opened.draft("RGB", (px, px))
            im = ImageOps.exif_transpose(opened)
            im.thumbnail((px, px))
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                im = Image.new("RGB", rgba.size, (255, 255, 255))
                im.paste(rgba, mask=rgba.getchannel("A"))
            else:
                im = im.convert("RGB")
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=_THUMB_QUALITY, optimize=True)
            w, h = im.size
    except Exception:  # Pillow raises many types for bad files; none is fatal here
        return None
    return f"data:image/jpeg;base64,{base64.b64encode(buf.getvalue()).decode('ascii')}", w, h


def _make_thumbs(names: Sequence[str], opts: _Options, cap: int) -> dict[str, Thumb | None]:
    """Thumbnails of the first ``cap`` distinct names (in order), made in parallel."""
    unique = list(dict.fromkeys(names))[:cap]
    root = (opts.image_root if opts.image_root is not None else Path.cwd()).resolve()
    paths = [_resolve(n, root) for n in unique]
    workers = min(8, os.cpu_count() or 1, max(1, len(paths)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        thumbs = list(pool.map(lambda p: _make_thumb(p, opts.thumb_px), paths))
    return dict(zip(unique, thumbs, strict=True))


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class _Member:
    index: int
    id: str
    similarity: float | None
    silhouette: float | None
    medoid: bool


@dataclass(frozen=True)
class _Gallery:
    row: dict[str, Any]  # the cluster's row of result.clusters
    head: list[_Member]
    tail: list[_Member]
    omitted: int
    omitted_range: tuple[float | None, float | None]


def _members(rows: Iterable[Mapping[str, Any]]) -> list[_Member]:
    return [
        _Member(
            int(r["index"]),
            str(r["id"]),
            _num(r["centroid_similarity"]),
            _num(r["silhouette"]),
            bool(r["is_medoid"]),
        )
        for r in rows
    ]


def _galleries(result: Result, opts: _Options) -> list[_Gallery]:
    """The ``max_clusters`` largest clusters (size >= 2) and the members each shows."""
    shown = (
        result.clusters.filter(pl.col("size") >= 2)
        .sort(["size", "cluster"], descending=[True, False])
        .head(opts.max_clusters)
    )
    if shown.height == 0:
        return []
    n = opts.gallery_size
    n_tail = n // 4 if n >= 8 else 0
    n_head = n - n_tail
    members = (
        result.assignments.select("index", "id", "cluster", "centroid_similarity", "silhouette")
        .join(shown.select("cluster", "size", "medoid"), on="cluster", how="inner")
        .with_columns(is_medoid=(pl.col("index") == pl.col("medoid")).fill_null(False))
        .sort(
            ["cluster", "is_medoid", "centroid_similarity", "index"],
            descending=[False, True, True, False],
            nulls_last=True,
        )
        .with_columns(rank=pl.int_range(pl.len()).over("cluster"))
    )
    keep = (
        (pl.col("size") <= n)
        | (pl.col("rank") < n_head)
        | (pl.col("rank") >= pl.col("size").cast(pl.Int64) - n_tail)
    )
    omitted_stats = (
        members.filter(~keep)
        .group_by("cluster")
        .agg(
            lo=pl.col("centroid_similarity").min(),
            hi=pl.col("centroid_similarity").max(),
        )
    )
    omitted = {int(r["cluster"]): (r["lo"], r["hi"]) for r in omitted_stats.iter_rows(named=True)}
    kept = members.filter(keep)
    by_cluster: dict[int, list[dict[str, Any]]] = {}
    for r in kept.iter_rows(named=True):
        by_cluster.setdefault(int(r["cluster"]), []).append(r)
    out = []
    for row in shown.iter_rows(named=True):
        c = int(row["cluster"])
        rows = by_cluster.get(c, [])
        size = int(row["size"])
        if size <= n:
            head, tail, n_omitted = rows, [], 0
        else:
            head, tail, n_omitted = rows[:n_head], rows[n_head:], size - n
        lo, hi = omitted.get(c, (None, None))
        out.append(_Gallery(row, _members(head), _members(tail), n_omitted, (_num(lo), _num(hi))))
    return out


def _chained(result: Result, threshold: float | None) -> pl.DataFrame:
    """Clusters held together by a chain, loosest first; ``why`` says what flagged them."""
    flags = result.chained_clusters()
    if threshold is None or flags.height == 0:
        return result.clusters.head(0).with_columns(why=pl.lit(None, dtype=pl.String))
    flagged = result.clusters.join(
        flags.select("cluster", _loose="loose", _bridge="weak_bridge"),
        on="cluster",
        how="inner",
        maintain_order="right",
    )
    why = []
    for r in flagged.iter_rows(named=True):
        reasons = []
        if r["_loose"]:
            reasons.append(
                f"all-pairs min {_fmt(r['sim_min'])} < threshold {_MINUS} {CHAIN_MARGIN} "
                f"= {_fmt(threshold - CHAIN_MARGIN)}"
            )
        if r["_bridge"]:
            reasons.append(
                f"bridge {_fmt(r['bridge_similarity'])} within {BRIDGE_MARGIN} of the "
                f"threshold {_fmt(threshold)}"
            )
        why.append("; ".join(reasons))
    return flagged.drop("_loose", "_bridge").with_columns(why=pl.Series(why, dtype=pl.String))


# --------------------------------------------------------------------------- rendering


_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
  color: #1d1d1f; background: #fff; line-height: 1.4; }
header { padding: 18px 28px 8px; border-bottom: 1px solid #ddd; }
header h1 { margin: 0 0 6px; font-size: 22px; }
nav a { margin-right: 14px; font-size: 13px; }
main { padding: 0 28px 40px; }
section { margin-top: 28px; }
h2 { font-size: 18px; border-bottom: 1px solid #eee; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 22px 0 4px; }
p.how { background: #f4f7fb; border-left: 3px solid #4a78c2; padding: 6px 10px; margin: 6px 0 12px;
  font-size: 13px; }
p.note { color: #666; font-size: 13px; }
table.data { border-collapse: collapse; font-size: 12.5px; margin: 6px 0; }
table.data th, table.data td { border: 1px solid #e2e2e2; padding: 3px 8px; text-align: left;
  vertical-align: middle; }
table.data th { background: #f6f6f6; }
table.data td.num, table.data th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { width: 14em; }
td.wrap, .id { word-break: break-all; max-width: 60em; }
.gallery { display: flex; flex-wrap: wrap; gap: 6px; align-items: flex-start; }
figure.tile { margin: 0; padding: 3px; border: 1px solid #ddd; border-radius: 4px;
  background: #fafafa; text-align: center; }
figure.tile.medoid { border: 2px solid #2e7d32; }
figure.tile img { display: block; margin: 0 auto; background: #eee; }
.noimg { display: flex; align-items: center; justify-content: center; overflow: hidden;
  font-size: 10px; color: #8a1c1c; background: #f3e9e9; word-break: break-all; margin: 0 auto; }
figcaption { font-size: 11px; }
figcaption .sim { font-weight: 600; font-variant-numeric: tabular-nums; display: block; }
figcaption .fn { display: block; overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
  color: #555; }
.gap { align-self: center; padding: 0 10px; font-size: 12px; color: #666; max-width: 9em; }
.stats { font-size: 12.5px; color: #333; margin: 2px 0 6px; }
.stats span { margin-right: 12px; white-space: nowrap; }
.badge { display: inline-block; background: #c62828; color: #fff; border-radius: 3px;
  padding: 0 5px; font-size: 11px; margin-left: 6px; font-weight: 600; }
.plot { width: 100%; max-width: 1100px; }
.mcols { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
.mcols table.data { margin: 0; }
.mcols td { max-width: 22em; }
table.kv td { min-width: 28em; }
table.kv td .id { word-break: normal; overflow-wrap: anywhere; }
"""

_PAGE_JS = """
(function () {
  "use strict";
  var config = {displaylogo: false, responsive: true};
  var plots = document.querySelectorAll("div.plot[data-spec]");
  Array.prototype.forEach.call(plots, function (div) {
    var spec = JSON.parse(document.getElementById(div.getAttribute("data-spec")).textContent);
    Plotly.newPlot(div, spec.data, spec.layout, config).then(function (gd) {
      gd.on("plotly_click", function (ev) {
        if (!ev || !ev.points || !ev.points.length) { return; }
        var p = ev.points[0];
        var id = (p.customdata !== undefined && p.customdata !== null) ? p.customdata : p.x;
        var target = document.getElementById("cluster-" + id);
        if (target) { target.scrollIntoView(); }
      });
    });
  });
})();
"""


def _csp_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _head(title: str, plotly_js: str) -> str:
    csp = (
        "default-src 'none'; "
        f"script-src {_csp_hash(plotly_js)} {_csp_hash(_PAGE_JS)}; "
        "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; "
        "base-uri 'none'; form-action 'none'"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_esc(csp)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"{_GENERATOR}\n"
        '<link rel="icon" href="data:,">\n'
        f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
    )


def _header(title: str, sections: Sequence[tuple[str, str]]) -> str:
    links = "".join(f'<a href="#{sid}">{_esc(label)}</a>' for sid, label in sections)
    return (
        f'<header id="top"><h1>{_esc(title)}</h1>\n<nav>{links}</nav>\n'
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
        ("rows", f"{n_rows:,}" + (f" {_TIMES} {fp['dim']} dims" if "dim" in fp else "")),
        ("clusters", f"{s['n_clusters']:,} ({multi.height:,} with ≥ 2 members)"),
        ("rows in clusters of ≥ 2", f"{in_multi:,}{pct}"),
        ("singletons", f"{s['n_singletons']:,}"),
        (f"noise rows (label {_MINUS}1)", f"{s['n_noise']:,}"),
        ("largest cluster", f"{s['largest_cluster']:,}"),
        ("graph edges", f"{s['n_edges']:,}"),
        ("strategy", strategy),
        ("clustering threshold", _fmt(threshold) if threshold is not None else "— (none)"),
        ("graph", str(cfg.get("graph")) if cfg.get("graph") is not None else "strategy's own"),
        ("metrics", metric_txt),
        ("input fingerprint", ", ".join(f"{k}={v}" for k, v in fp.items())),
    ]
    rows += [(f"version: {k}", v) for k, v in _flat("", result.versions)]
    rows += [(f"time: {k}", f"{v:.3f} s") for k, v in result.timings.items()]
    table = _table(
        ["", "value"], ((_esc(k), f'<span class="id">{_esc(v)}</span>') for k, v in rows), "data kv"
    )
    return (
        '<section id="summary"><h2>Run summary</h2>\n'
        + _how(
            "what was run and how the rows split up. A singleton is a cluster of one row; "
            f"noise rows (label {_MINUS}1) belong to no cluster. Times are the run's own, "
            "in seconds."
        )
        + table
        + "</section>\n"
    )


def _sizes_section(result: Result) -> str:
    sizes = result.clusters["size"].to_numpy().astype(np.int64)
    head = '<section id="sizes"><h2>Cluster size distribution</h2>\n' + _how(
        "how many clusters (bar height, log scale) have a size in each range (members, "
        "doubling ranges). A healthy run has many small clusters and a few big ones; one "
        "giant cluster usually means the threshold is too low (chaining)."
    )
    if sizes.size == 0:
        return head + '<p class="note">No clusters.</p></section>\n'
    bins = np.array([int(v - 1).bit_length() for v in sizes], dtype=np.int64)
    xs, counts, texts = [], [], []
    for b in range(int(bins.max()) + 1):
        lo, hi = (1, 1) if b == 0 else (2 ** (b - 1) + 1, 2**b)
        label = str(lo) if lo == hi else f"{lo}{_DASH}{hi}"
        mask = bins == b
        n, rows = int(mask.sum()), int(sizes[mask].sum())
        xs.append(label)
        counts.append(n)
        texts.append(_esc(f"size {label}: {n:,} clusters, {rows:,} rows"))
    fig = {
        "data": [
            {
                "type": "bar",
                "x": xs,
                "y": counts,
                "text": texts,
                "hovertemplate": "%{text}<extra></extra>",
                "textposition": "none",
                "marker": {"color": "#4a78c2"},
            }
        ],
        "layout": _layout(
            xaxis={"title": {"text": "cluster size (members)"}, "type": "category"},
            yaxis={
                "title": {"text": "clusters (log scale)"},
                "type": "log",
                "dtick": "D2",
                "range": [-0.05, math.log10(max(counts)) + 0.15],
            },
        ),
    }
    return head + _plot("sizes", fig, 360) + "</section>\n"


def _sweep_section(result: Result, threshold: float | None) -> str:
    head = '<section id="sweep"><h2>Threshold sweep</h2>\n' + _how(
        "the connected components of the similarity graph if only edges with cosine "
        "similarity ≥ x were kept: their number (left axis) and the size of the largest "
        "(right axis). A plateau means the clustering is stable around that threshold; a "
        "sudden jump of the largest component marks where clusters start to merge. The "
        "dashed line is the run's threshold."
    )
    sw = result.sweep
    if sw.height == 0:
        return head + '<p class="note">No sweep (the run built no graph).</p></section>\n'
    x = [_round(v) for v in sw["threshold"].to_list()]
    shapes = []
    if threshold is not None:
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": threshold,
                "x1": threshold,
                "y0": 0,
                "y1": 1,
                "line": {"dash": "dash", "color": "#888"},
            }
        )
    fig = {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "number of components",
                "x": x,
                "y": sw["n_components"].to_list(),
                "hovertemplate": "similarity ≥ %{x:.3f}: %{y} components<extra></extra>",
                "line": {"color": "#4a78c2"},
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "largest component (rows)",
                "x": x,
                "y": sw["largest_component"].to_list(),
                "yaxis": "y2",
                "hovertemplate": "similarity ≥ %{x:.3f}: largest %{y} rows<extra></extra>",
                "line": {"color": "#c62828"},
            },
        ],
        "layout": _layout(
            xaxis={"title": {"text": f"{_SIM} threshold"}},
            yaxis={"title": {"text": "number of components"}, "rangemode": "tozero"},
            yaxis2={
                "title": {"text": "largest component (rows)"},
                "rangemode": "tozero",
                "tickmode": "auto",
                "showgrid": False,
                "overlaying": "y",
                "side": "right",
            },
            legend={"orientation": "h", "y": 1.12},
            shapes=shapes,
            margin={"l": 70, "r": 70, "t": 40, "b": 60},
        ),
    }
    return head + _plot("sweep", fig, 400) + "</section>\n"


def _heatmap_section(result: Result, opts: _Options) -> str:
    head = '<section id="heatmap"><h2>Centroid similarity between clusters</h2>\n' + _how(
        "each cell is the cosine similarity between the centroids (normalised mean "
        "members) of two of the largest clusters, ordered by size. Higher = closer; bright "
        "off-diagonal cells are cluster pairs that may be one concept split in two. The "
        "colour range spans the off-diagonal values (the diagonal is 1). Hover for the "
        "value and sizes; click a cell to jump to the gallery of its column's cluster."
    )
    ids = np.asarray(result.centroid_matrix_clusters, dtype=np.int64)
    m = np.asarray(result.centroid_matrix, dtype=np.float64)
    if opts.max_clusters == 0:
        return head + '<p class="note">Not shown (max_clusters=0).</p></section>\n'
    if ids.size == 0 or m.shape != (ids.size, ids.size):
        return (
            head + '<p class="note">Not computed (run the "inter" metric to get the '
            "centroid similarity matrix).</p></section>\n"
        )
    size_of = dict(
        zip(result.clusters["cluster"].to_list(), result.clusters["size"].to_list(), strict=True)
    )
    order = sorted(range(ids.size), key=lambda i: (-int(size_of.get(int(ids[i]), 0)), int(ids[i])))
    order = order[: opts.max_clusters]
    sub = m[np.ix_(order, order)]
    cids = [int(ids[i]) for i in order]
    sizes = [int(size_of.get(c, 0)) for c in cids]
    labels = [str(c) for c in cids]
    k = len(cids)
    off = sub[~np.eye(k, dtype=bool)] if k > 1 else np.array([0.0, 1.0])
    off = off[np.isfinite(off)]
    zmin, zmax = (float(off.min()), float(off.max())) if off.size else (0.0, 1.0)
    if zmax - zmin < 1e-6:
        zmin, zmax = zmin - 0.05, zmax + 0.05
    z = [[_round(v) for v in row] for row in sub.tolist()]
    text = [
        [
            _esc(f"cluster {a} {_TIMES} cluster {b}: {_fmt(sub[i, j])}")
            + "<br>"
            + _esc(f"sizes {sa:,} {_TIMES} {sb:,}")
            for j, (b, sb) in enumerate(zip(cids, sizes, strict=True))
        ]
        for i, (a, sa) in enumerate(zip(cids, sizes, strict=True))
    ]
    px = max(420, min(900, 160 + 16 * k))
    fig = {
        "data": [
            {
                "type": "heatmap",
                "x": labels,
                "y": labels,
                "z": z,
                "text": text,
                "hovertemplate": "%{text}<extra></extra>",
                "colorscale": "Viridis",
                "zmin": round(zmin, 4),
                "zmax": round(zmax, 4),
                "colorbar": {"title": {"text": "centroid<br>cosine sim."}},
                "xgap": 1 if k <= 60 else 0,
                "ygap": 1 if k <= 60 else 0,
            }
        ],
        "layout": _layout(
            xaxis={"title": {"text": "cluster (largest first)"}, "type": "category"},
            yaxis={
                "title": {"text": "cluster"},
                "type": "category",
                "autorange": "reversed",
                "scaleanchor": "x",
            },
            margin={"l": 70, "r": 30, "t": 20, "b": 60},
            width=None,
        ),
    }
    note = (
        f'<p class="note">The {k} largest of {ids.size} clusters in the matrix '
        f"(matrix clusters have ≥ 2 members).</p>\n"
    )
    return head + note + _plot("heatmap", fig, px) + "</section>\n"


def _tightness_section(
    result: Result,
    threshold: float | None,
    chained: pl.DataFrame,
    shown: set[int],
) -> str:
    cl = result.clusters.filter((pl.col("size") >= 2) & pl.col("sim_min").is_not_null())
    crit = (
        f"all-pairs min &lt; threshold {_MINUS} {CHAIN_MARGIN} = "
        f"{_fmt(threshold - CHAIN_MARGIN)}, or "
        f"(3+ members) bridge similarity within {BRIDGE_MARGIN} of the threshold "
        f"{_fmt(threshold)}"
        if threshold is not None
        else "needs a clustering threshold, which this strategy does not have"
    )
    head = '<section id="tightness"><h2>Cluster tightness</h2>\n' + _how(
        "each cluster of ≥ 2 members twice: the mean (light) and the MINIMUM (dark) cosine "
        "similarity over ALL pairs of its members, against its size (log axis). A graph "
        "clustering only guarantees that neighbours are similar: when the minimum falls "
        "far below the threshold, the cluster is a chain whose ends are unlike each "
        "other. The bridge similarity is the threshold at which the cluster would first "
        f"split. Chained clusters (red rings; {crit}) are listed below. Click a point to "
        "jump to its gallery (largest clusters only)."
    )
    if cl.height == 0:
        return (
            head + '<p class="note">No all-pairs statistics (run the "intra" metric on a '
            "clustering with clusters of ≥ 2 members).</p></section>\n"
        )
    chained_ids = set(chained["cluster"].to_list())
    note = ""
    if cl.height > _MAX_SCATTER:
        big = cl.sort(["size", "cluster"], descending=[True, False]).head(_MAX_SCATTER)
        rest = cl.filter(
            pl.col("cluster").is_in(list(chained_ids)) & ~pl.col("cluster").is_in(big["cluster"])
        )
        note = (
            f'<p class="note">The plot shows the {_MAX_SCATTER:,} largest of {cl.height:,} '
            "clusters, plus every chained one.</p>\n"
        )
        cl = pl.concat([big, rest])
    rows = list(cl.iter_rows(named=True))

    def hover(r: Mapping[str, Any]) -> str:
        return (
            _esc(f"cluster {r['cluster']} ({int(r['size']):,} members)")
            + "<br>"
            + _esc(f"all-pairs min {_fmt(r['sim_min'])} · mean {_fmt(r['sim_mean'])}")
            + "<br>"
            + _esc(
                f"bridge {_fmt(r['bridge_similarity'])} · "
                f"to centroid min {_fmt(r['centroid_sim_min'])}"
            )
        )

    texts = [hover(r) for r in rows]
    xs = [int(r["size"]) for r in rows]
    cids = [int(r["cluster"]) for r in rows]
    ch = [i for i, c in enumerate(cids) if c in chained_ids]
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": "all-pairs mean",
            "x": xs,
            "y": [_round(r["sim_mean"]) for r in rows],
            "customdata": cids,
            "text": texts,
            "hovertemplate": "%{text}<extra>mean</extra>",
            "marker": {"color": "rgba(74,120,194,0.35)", "size": 6},
        },
        {
            "type": "scatter",
            "mode": "markers",
            "name": "all-pairs min",
            "x": xs,
            "y": [_round(r["sim_min"]) for r in rows],
            "customdata": cids,
            "text": texts,
            "hovertemplate": "%{text}<extra>min</extra>",
            "marker": {"color": "#1f3f7a", "size": 6},
        },
    ]
    if ch:
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "chained (min)",
                "x": [xs[i] for i in ch],
                "y": [_round(rows[i]["sim_min"]) for i in ch],
                "customdata": [cids[i] for i in ch],
                "text": [texts[i] for i in ch],
                "hovertemplate": "%{text}<extra>chained</extra>",
                "marker": {
                    "color": "rgba(0,0,0,0)",
                    "size": 13,
                    "line": {"color": "#c62828", "width": 2},
                },
            }
        )
    shapes = []
    if threshold is not None:
        for y, dash, color in (
            (threshold, "dash", "#555"),
            (threshold - CHAIN_MARGIN, "dot", "#c62828"),
        ):
            shapes.append(
                {
                    "type": "line",
                    "xref": "paper",
                    "yref": "y",
                    "x0": 0,
                    "x1": 1,
                    "y0": y,
                    "y1": y,
                    "line": {"dash": dash, "color": color, "width": 1},
                }
            )
    fig = {
        "data": data,
        "layout": _layout(
            xaxis={
                "title": {"text": "cluster size (members, log scale)"},
                "type": "log",
                "dtick": "D2",
            },
            yaxis={"title": {"text": f"all-pairs {_SIM}"}},
            legend={"orientation": "h", "y": 1.1},
            shapes=shapes,
            margin={"l": 70, "r": 30, "t": 40, "b": 60},
        ),
    }
    return (
        head + note + _plot("tightness", fig, 460) + _chained_table(chained, shown) + "</section>\n"
    )


def _chained_table(chained: pl.DataFrame, shown: set[int]) -> str:
    title = '<h3 id="chained">Chained clusters</h3>\n'
    if chained.height == 0:
        return title + '<p class="note">None.</p>\n'
    rows = [
        [
            _cluster_link(r["cluster"], shown),
            f"{int(r['size']):,}",
            _fmt(r["sim_min"]),
            _fmt(r["sim_mean"]),
            _fmt(r["edge_sim_min"]),
            _fmt(r["bridge_similarity"]),
            _fmt(r["centroid_sim_min"]),
            _esc(r["why"] or ""),
        ]
        for r in chained.head(_MAX_TABLE_ROWS).iter_rows(named=True)
    ]
    more = (
        f'<p class="note">… and {chained.height - _MAX_TABLE_ROWS:,} more.</p>\n'
        if chained.height > _MAX_TABLE_ROWS
        else ""
    )
    headers = [
        "cluster",
        "size",
        "all-pairs min",
        "all-pairs mean",
        "edge min",
        "bridge",
        "to-centroid min",
        "why",
    ]
    return (
        title
        + f'<p class="note">{chained.height:,} chained cluster(s), loosest first.</p>\n'
        + _table(headers, rows, "data chained")
        + more
    )


def _tile(
    name: str, caption: str, tooltip: str, thumbs: Mapping[str, Thumb | None], medoid: bool, px: int
) -> str:
    cls = "tile medoid" if medoid else "tile"
    thumb = thumbs.get(name)
    fn = f'<span class="fn" style="max-width:{px}px">{_esc(_basename(name))}</span>'
    cap = f'<figcaption><span class="sim">{caption}</span>{fn}</figcaption>'
    if thumb is None:
        box = (
            f'<div class="noimg" style="width:{px}px;height:{px}px" title="{_esc(tooltip)}">'
            f"{_esc(name)}</div>"
        )
        return f'<figure class="{cls} missing">{box}{cap}</figure>'
    uri, w, h = thumb
    img = (
        f'<img src="{uri}" width="{w}" height="{h}" alt="{_esc(name)}" '
        f'title="{_esc(tooltip)}" loading="lazy">'
    )
    return f'<figure class="{cls}">{img}{cap}</figure>'


def _cluster_stats(row: Mapping[str, Any], shown: set[int], chained_why: str | None) -> str:
    parts = [
        f"<span>all-pairs sim mean <b>{_fmt(row['sim_mean'])}</b> "
        f"(min {_fmt(row['sim_min'])}, max {_fmt(row['sim_max'])}, sd {_fmt(row['sim_std'])})"
        "</span>",
        f"<span>to centroid mean <b>{_fmt(row['centroid_sim_mean'])}</b> "
        f"(min {_fmt(row['centroid_sim_min'])})</span>",
    ]
    if row.get("n_edges") is not None:
        parts.append(
            f"<span>{int(row['n_edges']):,} edges, edge sim min {_fmt(row['edge_sim_min'])}</span>"
        )
    parts.append(f"<span>bridge <b>{_fmt(row['bridge_similarity'])}</b></span>")
    if row.get("nearest_cluster") is not None:
        parts.append(
            f"<span>nearest cluster {_cluster_link(row['nearest_cluster'], shown)} "
            f"(centroid sim {_fmt(row['nearest_cluster_similarity'])})</span>"
        )
    parts.append(f"<span>silhouette {_fmt(row['silhouette_mean'])}</span>")
    badge = (
        f' <span class="badge" title="{_esc(chained_why)}">chained</span>' if chained_why else ""
    )
    return f'<div class="stats">{" ".join(parts)}{badge}</div>\n'


def _galleries_section(
    galleries: Sequence[_Gallery],
    chained: pl.DataFrame,
    thumbs: Mapping[str, Thumb | None] | None,
    opts: _Options,
) -> Iterator[str]:
    yield '<section id="galleries"><h2>Largest clusters</h2>\n'
    mode = (
        "thumbnails captioned with their cosine similarity to the cluster centroid"
        if thumbs is not None
        else "member ids with their cosine similarity to the cluster centroid"
    )
    yield _how(
        f"the {len(galleries)} largest clusters of ≥ 2 members, each with its all-pairs "
        "similarity statistics, then its members ordered by similarity to the centroid, "
        f"most similar first (the medoid, framed green). Shown: {mode}. A cluster larger "
        f"than {opts.gallery_size} shows its most central members, a gap, then its least "
        "similar ones: if those still look like the rest, the cluster is consistent. The "
        "bridge is the similarity at which the cluster would split; a red 'chained' badge "
        "marks clusters whose members are not all alike."
    )
    if not galleries:
        yield '<p class="note">No cluster has 2 or more members.</p>\n</section>\n'
        return
    why = {int(c): str(w) for c, w in zip(chained["cluster"], chained["why"], strict=True)}
    shown = {int(g.row["cluster"]) for g in galleries}
    index_rows = [
        [
            _cluster_link(g.row["cluster"], shown),
            f"{int(g.row['size']):,}",
            _fmt(g.row["sim_mean"]),
            _fmt(g.row["sim_min"]),
            _fmt(g.row["centroid_sim_min"]),
            _fmt(g.row["bridge_similarity"]),
            (
                f"{_cluster_link(g.row['nearest_cluster'], shown)} "
                f"({_fmt(g.row['nearest_cluster_similarity'])})"
                if g.row.get("nearest_cluster") is not None
                else "—"
            ),
            "chained" if int(g.row["cluster"]) in why else "",
        ]
        for g in galleries
    ]
    yield _table(
        [
            "cluster",
            "size",
            "all-pairs mean",
            "all-pairs min",
            "to-centroid min",
            "bridge",
            "nearest (centroid sim)",
            "",
        ],
        index_rows,
    )
    px = opts.thumb_px
    for g in galleries:
        c = int(g.row["cluster"])
        out = [
            f'<div class="cluster" id="cluster-{c}"><h3>Cluster {c} — '
            f"{int(g.row['size']):,} members</h3>\n",
            _cluster_stats(g.row, shown, why.get(c)),
        ]
        lo, hi = g.omitted_range
        gap = (
            f"… {g.omitted:,} more members (to centroid {_fmt(lo)} {_DASH} {_fmt(hi)}) …"
            if g.omitted
            else ""
        )
        if thumbs is not None:
            tiles = []
            for mem in g.head:
                tiles.append(_member_tile(mem, thumbs, px))
            if g.omitted:
                tiles.append(f'<div class="gap">{gap}</div>')
            for mem in g.tail:
                tiles.append(_member_tile(mem, thumbs, px))
            out.append('<div class="gallery">' + "".join(tiles) + "</div>\n")
        else:
            start = int(g.row["size"]) - len(g.tail) + 1
            ranked = list(enumerate(g.head, 1)) + list(enumerate(g.tail, start))
            out.append(_member_tables(ranked, len(g.head), gap))
        out.append('<p class="note"><a href="#top">back to top</a></p></div>\n')
        yield "".join(out)
    yield "</section>\n"


def _member_tile(mem: _Member, thumbs: Mapping[str, Thumb | None], px: int) -> str:
    label = f"{_fmt(mem.similarity)}" + (" medoid" if mem.medoid else "")
    tip = f"{mem.id}\nrow {mem.index}\nsimilarity to centroid {_fmt(mem.similarity)}"
    return _tile(mem.id, _esc(label), tip, thumbs, mem.medoid, px)


def _member_tables(ranked: Sequence[tuple[int, _Member]], n_head: int, gap: str) -> str:
    """Members as compact side-by-side tables of ``_MEMBER_ROWS`` rows (column-major)."""
    headers = ["#", "id", "to centroid", "silh."]
    rows: list[list[str]] = []
    for i, (rank, mem) in enumerate(ranked):
        if i == n_head and gap:
            rows.append(["", f'<i class="note">{gap}</i>', "", ""])
        name = _esc(mem.id) + (" <i>(medoid)</i>" if mem.medoid else "")
        rows.append(
            [
                str(rank),
                f'<span class="id">{name}</span>',
                f'<span class="num">{_fmt(mem.similarity)}</span>',
                f'<span class="num">{_fmt(mem.silhouette)}</span>',
            ]
        )
    chunks = [rows[i : i + _MEMBER_ROWS] for i in range(0, len(rows), _MEMBER_ROWS)]
    tables = "".join(_table(headers, chunk, "data members") for chunk in chunks)
    return f'<div class="mcols">{tables}</div>\n'


def _thumb_cell(name: str, thumbs: Mapping[str, Thumb | None] | None, px: int) -> str:
    if thumbs is None:
        return ""
    thumb = thumbs.get(name)
    if thumb is None:
        return '<span class="note">(no image)</span>'
    uri, w, h = thumb
    side = max(24, px // 2)
    scale = side / max(w, h)
    return (
        f'<img src="{uri}" width="{max(1, round(w * scale))}" height="{max(1, round(h * scale))}"'
        f' alt="{_esc(name)}" title="{_esc(name)}" loading="lazy">'
    )


def _outliers_frame(result: Result, n: int) -> pl.DataFrame:
    sizes = result.clusters.select("cluster", "size", "centroid_sim_mean")
    return (
        result.assignments.filter(
            (pl.col("cluster") >= 0) & pl.col("centroid_similarity").is_not_null()
        )
        .join(sizes, on="cluster", how="inner")
        .filter(pl.col("size") >= 2)
        .sort(["centroid_similarity", "index"])
        .head(n)
    )


def _outliers_section(
    result: Result,
    outliers: pl.DataFrame,
    noise: pl.DataFrame,
    thumbs: Mapping[str, Thumb | None] | None,
    shown: set[int],
    opts: _Options,
) -> str:
    px = opts.thumb_px
    parts = [
        '<section id="outliers"><h2>Outliers</h2>\n',
        _how(
            "the rows least similar (cosine) to the centroid of their own cluster (clusters "
            "of ≥ 2 members), lowest first, next to the mean similarity of that cluster's "
            "members. A value far below the cluster mean is a member that is only in the "
            f"cluster through a chain of neighbours. Noise rows (label {_MINUS}1, in no cluster) "
            "and files that could not be read follow."
        ),
    ]
    if outliers.height == 0:
        parts.append('<p class="note">No similarities to centroids (run "centroid").</p>\n')
    else:
        headers = [
            "",
            "id",
            "cluster",
            "size",
            "similarity to centroid",
            "cluster mean",
            "silhouette",
        ]
        if thumbs is None:
            headers = headers[1:]
        rows = []
        for r in outliers.iter_rows(named=True):
            cells = [
                f'<span class="id">{_esc(r["id"])}</span>',
                _cluster_link(r["cluster"], shown),
                f"{int(r['size']):,}",
                f"<b>{_fmt(r['centroid_similarity'])}</b>",
                _fmt(r["centroid_sim_mean"]),
                _fmt(r["silhouette"]),
            ]
            if thumbs is not None:
                cells.insert(0, _thumb_cell(str(r["id"]), thumbs, px))
            rows.append(cells)
        parts.append(_table(headers, rows, "data outliers"))
    n_noise = int((result.assignments["cluster"] < 0).sum())
    parts.append(f'<h3 id="noise">Noise rows ({n_noise:,})</h3>\n')
    if n_noise:
        rows = []
        for r in noise.iter_rows(named=True):
            cells = [str(r["index"]), f'<span class="id">{_esc(r["id"])}</span>']
            if thumbs is not None:
                cells.insert(0, _thumb_cell(str(r["id"]), thumbs, px))
            rows.append(cells)
        headers = ["", "row", "id"] if thumbs is not None else ["row", "id"]
        parts.append(_table(headers, rows, "data noise"))
        if n_noise > noise.height:
            parts.append(f'<p class="note">… and {n_noise - noise.height:,} more.</p>\n')
    else:
        parts.append('<p class="note">None.</p>\n')
    bad = result.tables.get("bad_files")
    if bad is not None:
        parts.append(f'<h3 id="bad-files">Unreadable files ({bad.height:,})</h3>\n')
        if bad.height:
            cols: list[str] = [c for c in ("path", "error") if c in bad.columns] or list(
                bad.columns
            )
            rows = [
                [f'<span class="id">{_esc(v)}</span>' for v in r]
                for r in bad.select(cols).head(_MAX_TABLE_ROWS).iter_rows()
            ]
            parts.append(_table([_esc(c) for c in cols], rows, "data bad-files"))
            if bad.height > _MAX_TABLE_ROWS:
                parts.append(f'<p class="note">… and {bad.height - _MAX_TABLE_ROWS:,} more.</p>\n')
        else:
            parts.append('<p class="note">None.</p>\n')
    parts.append("</section>\n")
    return "".join(parts)


def _tail(plotly_js: str) -> str:
    return f"</main>\n<script>{plotly_js}</script>\n<script>{_PAGE_JS}</script>\n</body>\n</html>\n"


def _render(result: Result, opts: _Options) -> Iterator[str]:
    """The report's HTML, in chunks (a failure part-way leaves no file behind)."""
    from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

    plotly_js = str(get_plotlyjs())
    if "</script" in plotly_js.lower():  # pragma: no cover - plotly.js never contains it
        raise RuntimeError("plotly.js contains '</script'; cannot inline it")
    s = result.summary()
    threshold = _threshold(result)
    title = opts.title or (
        f"simclust report — {int(s['n_rows']):,} rows, {int(s['n_clusters']):,} clusters"
    )
    galleries = _galleries(result, opts)
    shown = {int(g.row["cluster"]) for g in galleries}
    chained = _chained(result, threshold)
    outliers = _outliers_frame(result, opts.gallery_size)
    noise = result.assignments.filter(pl.col("cluster") < 0).sort("index").head(opts.gallery_size)

    sections = [
        ("summary", "Summary"),
        ("sizes", "Sizes"),
        ("sweep", "Sweep"),
        ("heatmap", "Between clusters"),
        ("tightness", "Tightness"),
        ("chained", "Chained"),
        ("galleries", "Largest clusters"),
        ("outliers", "Outliers"),
    ]
    yield _head(title, plotly_js)
    yield _header(title, sections)
    yield _summary_section(result, threshold)
    yield _sizes_section(result)
    yield _sweep_section(result, threshold)
    yield _heatmap_section(result, opts)
    yield _tightness_section(result, threshold, chained, shown)

    thumbs: dict[str, Thumb | None] | None = None
    if _is_image_mode(result.assignments["id"], opts.image_root):
        names = [m.id for g in galleries for m in (*g.head, *g.tail)]
        names += outliers["id"].to_list() + noise["id"].to_list()
        cap = opts.max_clusters * opts.gallery_size + 2 * opts.gallery_size
        thumbs = _make_thumbs(names, opts, cap)
    yield from _galleries_section(galleries, chained, thumbs, opts)
    yield _outliers_section(result, outliers, noise, thumbs, shown, opts)
    yield _tail(plotly_js)
