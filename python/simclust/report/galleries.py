"""The report's member views: galleries, near-duplicates, suspect labels and outliers.

Members are shown as thumbnails when the ids are images, else as tables of ids and
similarities; noise rows and unreadable files follow the outliers. A thumbnail's caption
holds its whole file name, wrapped (never cut), and its tooltip the name and values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from simclust._format import fmt_float
from simclust.report._markup import (
    DASH,
    MAX_TABLE_ROWS,
    MINUS,
    cluster_link,
    count,
    esc,
    how,
    table,
)
from simclust.report.data import DuplicateGroups, Gallery, Member, Outliers, SuspectLabels
from simclust.report.thumbs import Thumb

if TYPE_CHECKING:
    from simclust.result import Result

__all__ = [
    "duplicates_section",
    "galleries_section",
    "outliers_section",
    "suspect_labels_section",
    "thumb_cell",
]

_MEMBER_ROWS = 10  # rows per member table (id-only galleries)


def _tile(
    name: str, caption: str, tooltip: str, thumbs: Mapping[str, Thumb | None], framed: bool, px: int
) -> str:
    """A thumbnail (or the name in a box), its ``caption`` (HTML) and the whole name, wrapped."""
    cls = "tile medoid" if framed else "tile"
    thumb = thumbs.get(name)
    fn = f'<span class="fn" style="max-width:{px}px" title="{esc(name)}">{esc(name)}</span>'
    cap = f'<figcaption><span class="sim">{caption}</span>{fn}</figcaption>'
    if thumb is None:
        box = (
            f'<div class="noimg" style="width:{px}px;height:{px}px" title="{esc(tooltip)}">'
            f"{esc(name)}</div>"
        )
        return f'<figure class="{cls} missing">{box}{cap}</figure>'
    uri, w, h = thumb
    img = (
        f'<img src="{uri}" width="{w}" height="{h}" alt="{esc(name)}" '
        f'title="{esc(tooltip)}" loading="lazy">'
    )
    return f'<figure class="{cls}">{img}{cap}</figure>'


def _cluster_stats(row: Mapping[str, Any], shown: set[int], chained_why: str | None) -> str:
    parts = [
        f"<span>all-pairs sim mean <b>{fmt_float(row['sim_mean'])}</b> "
        f"(min {fmt_float(row['sim_min'])}, max {fmt_float(row['sim_max'])}, "
        f"sd {fmt_float(row['sim_std'])})"
        "</span>",
        f"<span>to centroid mean <b>{fmt_float(row['centroid_sim_mean'])}</b> "
        f"(min {fmt_float(row['centroid_sim_min'])})</span>",
    ]
    if row.get("n_edges") is not None:
        parts.append(
            f"<span>{int(row['n_edges']):,} edges, "
            f"edge sim min {fmt_float(row['edge_sim_min'])}</span>"
        )
    parts.append(f"<span>bridge <b>{fmt_float(row['bridge_similarity'])}</b></span>")
    if row.get("nearest_cluster") is not None:
        parts.append(
            f"<span>nearest cluster {cluster_link(row['nearest_cluster'], shown)} "
            f"(centroid sim {fmt_float(row['nearest_cluster_similarity'])})</span>"
        )
    parts.append(f"<span>silhouette {fmt_float(row['silhouette_mean'])}</span>")
    badge = f' <span class="badge" title="{esc(chained_why)}">chained</span>' if chained_why else ""
    return f'<div class="stats">{" ".join(parts)}{badge}</div>\n'


def galleries_section(
    galleries: Sequence[Gallery],
    chained: pl.DataFrame,
    thumbs: Mapping[str, Thumb | None] | None,
    gallery_size: int,
    px: int,
) -> Iterator[str]:
    """The galleries, in chunks: thumbnails when ``thumbs`` is given, else id tables."""
    yield '<section id="galleries"><h2>Largest clusters</h2>\n'
    mode = (
        "thumbnails captioned with their cosine similarity to the cluster centroid"
        if thumbs is not None
        else "member ids with their cosine similarity to the cluster centroid"
    )
    yield how(
        f"the {len(galleries)} largest clusters of ≥ 2 members, each with its all-pairs "
        "similarity statistics, then its members ordered by similarity to the centroid, "
        f"most similar first (the medoid, framed green). Shown: {mode}. A cluster larger "
        f"than {gallery_size} shows its most central members, a gap, then its least "
        "similar ones: if those still look like the rest, the cluster is consistent. The "
        "bridge is the similarity at which the cluster would split; a red 'chained' badge "
        "marks clusters made of several groups joined by weak bridges."
    )
    if not galleries:
        yield '<p class="note">No cluster has 2 or more members.</p>\n</section>\n'
        return
    why = {int(c): str(w) for c, w in zip(chained["cluster"], chained["why"], strict=True)}
    shown = {int(g.row["cluster"]) for g in galleries}
    index_rows = [
        [
            cluster_link(g.row["cluster"], shown),
            f"{int(g.row['size']):,}",
            fmt_float(g.row["sim_mean"]),
            fmt_float(g.row["sim_min"]),
            fmt_float(g.row["centroid_sim_min"]),
            fmt_float(g.row["bridge_similarity"]),
            (
                f"{cluster_link(g.row['nearest_cluster'], shown)} "
                f"({fmt_float(g.row['nearest_cluster_similarity'])})"
                if g.row.get("nearest_cluster") is not None
                else "—"
            ),
            "chained" if int(g.row["cluster"]) in why else "",
        ]
        for g in galleries
    ]
    yield table(
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
    for g in galleries:
        c = int(g.row["cluster"])
        out = [
            f'<div class="cluster" id="cluster-{c}"><h3>Cluster {c} — '
            f"{int(g.row['size']):,} members</h3>\n",
            _cluster_stats(g.row, shown, why.get(c)),
        ]
        lo, hi = g.omitted_range
        gap = (
            f"… {count(g.omitted, 'more member')} (to centroid {fmt_float(lo)} {DASH} "
            f"{fmt_float(hi)}) …"
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


def _member_tile(mem: Member, thumbs: Mapping[str, Thumb | None], px: int) -> str:
    label = f"{fmt_float(mem.similarity)}" + (" medoid" if mem.medoid else "")
    tip = f"{mem.id}\nrow {mem.index}\nsimilarity to centroid {fmt_float(mem.similarity)}"
    return _tile(mem.id, esc(label), tip, thumbs, mem.medoid, px)


def _member_tables(ranked: Sequence[tuple[int, Member]], n_head: int, gap: str) -> str:
    """Members as compact side-by-side tables of ``_MEMBER_ROWS`` rows (column-major)."""
    headers = ["#", "id", "to centroid", "silh."]
    rows: list[list[str]] = []
    for i, (rank, mem) in enumerate(ranked):
        if i == n_head and gap:
            rows.append(["", f'<i class="note">{gap}</i>', "", ""])
        name = esc(mem.id) + (" <i>(medoid)</i>" if mem.medoid else "")
        rows.append(
            [
                str(rank),
                f'<span class="id">{name}</span>',
                f'<span class="num">{fmt_float(mem.similarity)}</span>',
                f'<span class="num">{fmt_float(mem.silhouette)}</span>',
            ]
        )
    chunks = [rows[i : i + _MEMBER_ROWS] for i in range(0, len(rows), _MEMBER_ROWS)]
    tables = "".join(table(headers, chunk, "data members") for chunk in chunks)
    return f'<div class="mcols">{tables}</div>\n'


def thumb_cell(name: str, thumbs: Mapping[str, Thumb | None] | None, px: int) -> str:
    """A small thumbnail for a table cell ("(no image)" when it has none)."""
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
        f' alt="{esc(name)}" title="{esc(name)}" loading="lazy">'
    )


def _where(r: Mapping[str, Any], shown: set[int]) -> str:
    """A row's cluster as the outliers table shows it: a link, "singleton" or "noise"."""
    if r["cluster"] < 0:
        return f"noise ({MINUS}1)"
    if r["size"] == 1:
        return f"singleton ({int(r['cluster'])})"
    return f"{cluster_link(r['cluster'], shown)} ({int(r['size']):,} members)"


def outliers_section(
    result: Result,
    outliers: Outliers,
    noise: pl.DataFrame,
    thumbs: Mapping[str, Thumb | None] | None,
    shown: set[int],
    px: int,
) -> str:
    """The outliers, then the noise rows and the unreadable files (``bad_files``)."""
    k = result.outlier_search.get("k")
    parts = [
        '<section id="outliers"><h2>Outliers</h2>\n',
        how(
            "every row, clustered or not, ranked by its cosine similarity to the nearest "
            "other row (<code>nn_similarity</code> in assignments), lowest first; ties by "
            f"the mean similarity to its {k} nearest (<code>knn_sim_mean</code>). The lowest "
            f"{outliers.percentile:g} % of rows by <code>nn_similarity</code> are listed: "
            "nothing else in the data looks much like them. Singletons and noise rows are "
            "included; the similarity to the centroid is shown for members of clusters of "
            f"≥ 2 only. Noise rows (label {MINUS}1, in no cluster) and files that could not "
            "be read follow."
        ),
    ]
    if outliers.cutoff is None:
        parts.append('<p class="note">No row has a neighbour to compare with.</p>\n')
    else:
        more = outliers.n_flagged - outliers.rows.height
        parts.append(
            f'<p class="cutoff">Cut-off: <code>nn_similarity</code> ≤ '
            f"<b>{fmt_float(outliers.cutoff)}</b> (the lowest {outliers.percentile:g} % "
            f"of {outliers.n_scored:,} rows): {count(outliers.n_flagged, 'row')}"
            + (f", the lowest {outliers.rows.height:,} shown" if more > 0 else "")
            + ".</p>\n"
        )
        headers = [
            "",
            "id",
            "to nearest row",
            f"mean to {k} nearest",
            "cluster",
            "to centroid",
        ]
        if thumbs is None:
            headers = headers[1:]
        rows = []
        for r in outliers.rows.iter_rows(named=True):
            cells = [
                f'<span class="id">{esc(r["id"])}</span>',
                f"<b>{fmt_float(r['nn_similarity'])}</b>",
                fmt_float(r["knn_sim_mean"]),
                _where(r, shown),
                fmt_float(r["centroid_similarity"]),
            ]
            if thumbs is not None:
                cells.insert(0, thumb_cell(str(r["id"]), thumbs, px))
            rows.append(cells)
        parts.append(table(headers, rows, "data outliers"))
    n_noise = int((result.assignments["cluster"] < 0).sum())
    parts.append(f'<h3 id="noise">Noise rows ({n_noise:,})</h3>\n')
    if n_noise:
        rows = []
        for r in noise.iter_rows(named=True):
            cells = [str(r["index"]), f'<span class="id">{esc(r["id"])}</span>']
            if thumbs is not None:
                cells.insert(0, thumb_cell(str(r["id"]), thumbs, px))
            rows.append(cells)
        headers = ["", "row", "id"] if thumbs is not None else ["row", "id"]
        parts.append(table(headers, rows, "data noise"))
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
                [f'<span class="id">{esc(v)}</span>' for v in r]
                for r in bad.select(cols).head(MAX_TABLE_ROWS).iter_rows()
            ]
            parts.append(table([esc(c) for c in cols], rows, "data bad-files"))
            if bad.height > MAX_TABLE_ROWS:
                parts.append(f'<p class="note">… and {bad.height - MAX_TABLE_ROWS:,} more.</p>\n')
        else:
            parts.append('<p class="note">None.</p>\n')
    parts.append("</section>\n")
    return "".join(parts)


def duplicates_section(
    dups: DuplicateGroups, thumbs: Mapping[str, Thumb | None] | None, px: int
) -> str:
    """The largest near-duplicate groups side by side: the kept file, then the others."""
    s = dups.summary
    parts = [
        '<section id="duplicates"><h2>Near-duplicates</h2>\n',
        how(
            "groups of near-duplicates: connected components of the pairs whose cosine "
            f"similarity is ≥ {fmt_float(s['threshold'])}, largest first. Each group keeps one "
            f"file by the policy <code>{esc(s['keep'])}</code>, shown first (framed green); "
            "every other member is captioned with its similarity to the kept file, and the "
            "group's pairs follow with their similarity, most similar first (a chain A-B-C is "
            "one group even when A and C are less similar). <code>to_remove.txt</code> lists "
            "the files not kept; simclust never deletes them."
        ),
        f'<p class="note">{count(s["n_groups"], "group")}, '
        f"{count(s['n_duplicates'], 'file')}, {count(s['n_to_remove'], 'file')} to remove"
        + (
            f"; the {count(len(dups.groups), 'largest group', 'largest groups')} shown"
            if len(dups.groups) < s["n_groups"]
            else ""
        )
        + ".</p>\n",
    ]
    for g in dups.groups:
        parts.append(
            f'<div class="dupgroup" id="dup-{g.group}"><h3>Group {g.group} — '
            f"{count(g.size, 'file')}</h3>\n"
        )
        members = list(g.members.iter_rows(named=True))
        if thumbs is not None:
            tiles = []
            for m in members:
                label = "kept" if m["kept"] else f"{fmt_float(m['similarity_to_kept'])} to kept"
                tip = f"{m['id']}\nrow {m['row']}\n{label}"
                tiles.append(_tile(str(m["id"]), esc(label), tip, thumbs, bool(m["kept"]), px))
            parts.append('<div class="gallery">' + "".join(tiles) + "</div>\n")
        else:
            rows = [
                [
                    f'<span class="id">{esc(m["id"])}</span>',
                    "kept" if m["kept"] else "",
                    fmt_float(m["similarity_to_kept"]),
                ]
                for m in members
            ]
            parts.append(table(["id", "", "to kept"], rows, "data dups"))
        if g.size > len(members):
            parts.append(
                f'<p class="note">… and {count(g.size - len(members), "more file")}.</p>\n'
            )
        pair_rows = [
            [
                f'<span class="id">{esc(p["src_id"])}</span>',
                f'<span class="id">{esc(p["dst_id"])}</span>',
                f"<b>{fmt_float(p['similarity'])}</b>",
            ]
            for p in g.pairs.iter_rows(named=True)
        ]
        parts.append(table(["file", "file", "similarity"], pair_rows, "data pairs"))
        if g.n_pairs > g.pairs.height:
            parts.append(
                f'<p class="note">… and {count(g.n_pairs - g.pairs.height, "more pair")}.</p>\n'
            )
        parts.append("</div>\n")
    parts.append("</section>\n")
    return "".join(parts)


def suspect_labels_section(
    suspects: SuspectLabels,
    thumbs: Mapping[str, Thumb | None] | None,
    shown: set[int],
    px: int,
) -> str:
    """The rows whose label disagrees with their cluster's majority, largest clusters first."""
    parts = [
        '<section id="labels"><h2>Suspect labels</h2>\n',
        how(
            "rows whose class label differs from the majority label of their cluster "
            "(<code>suspect_label</code> of the label-purity metric: only clusters large and "
            "pure enough to outvote a row accuse it), largest clusters first. Each shows the "
            "row's label, its cluster's majority label and that cluster's purity (the "
            "majority's share of the labelled members). A suspect row is either mislabelled "
            "or an image that looks like another class."
        ),
        f'<p class="note">{count(suspects.n_suspect, "suspect row")} in '
        f"{count(suspects.n_clusters, 'cluster')}"
        + (
            f"; the first {suspects.rows.height:,} shown"
            if suspects.rows.height < suspects.n_suspect
            else ""
        )
        + ".</p>\n",
    ]
    if suspects.rows.height == 0:
        parts.append('<p class="note">None.</p>\n</section>\n')
        return "".join(parts)
    rows = list(suspects.rows.iter_rows(named=True))
    if thumbs is not None:
        tiles = []
        for r in rows:
            caption = f"label {esc(r['label'])}<br>cluster: {esc(r['majority_label'])}"
            tip = (
                f"{r['id']}\nrow {r['index']}\nlabel {r['label']}\ncluster {r['cluster']} "
                f"({r['size']} members): majority {r['majority_label']}, "
                f"purity {fmt_float(r['purity'])}"
            )
            tiles.append(_tile(str(r["id"]), caption, tip, thumbs, False, px))
        parts.append('<div class="gallery">' + "".join(tiles) + "</div>\n")
    table_rows = [
        [
            f'<span class="id">{esc(r["id"])}</span>',
            f"<b>{esc(r['label'])}</b>",
            f"{cluster_link(r['cluster'], shown)} ({count(int(r['size']), 'member')})",
            esc(r["majority_label"]),
            fmt_float(r["purity"]),
        ]
        for r in rows
    ]
    parts.append(
        table(["id", "label", "cluster", "majority label", "purity"], table_rows, "data suspects")
    )
    parts.append("</section>\n")
    return "".join(parts)
