"""Near-duplicates: groups of rows to keep one of, and the list of the others.

A group of near-duplicates is a connected component of two or more rows in the ε-graph
at ``threshold`` (every pair with cosine similarity ``>= threshold``; the graph of
:func:`simclust.graph.build_graph`, its components by
:func:`simclust.ops.connected_components`). Each group keeps one row, chosen by the
``keep`` policy:

* ``"medoid"`` (default): the member with the highest mean similarity to the other
  members (the group's ``medoid`` as :func:`simclust.ops.centroid_stats` finds it: the
  member most similar to the group's centroid); ties, e.g. the two members of a pair,
  go to the lower row;
* ``"first"``: the lowest row (the input's order: for an image folder, the first path
  in sorted order);
* ``"largest-file"``: the row whose file is the largest (ties to the lower row); only
  when the rows are files (an image folder, or ``paths=``).

:func:`dedup` returns :class:`Duplicates`; :meth:`Duplicates.write` writes
``duplicates.parquet`` (:data:`DUPLICATES_SCHEMA`), ``duplicate_pairs.parquet``
(:data:`DUPLICATE_PAIRS_SCHEMA`) and ``to_remove.txt`` (the ids of the rows not kept,
one a line, in row order). simclust never deletes or moves the files itself.

Example:
    >>> X = np.array([[1.0, 0.0], [0.999, 0.04], [0.0, 1.0], [0.998, 0.06]])
    >>> d = dedup(X, threshold=0.99, keep="first", ids=["a", "b", "c", "d"])
    >>> d.duplicates.select("group", "id", "kept").rows()
    [(0, 'a', True), (0, 'b', False), (0, 'd', False)]
    >>> d.to_remove
    ['b', 'd']

"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from simclust import config as config_mod
from simclust import ops
from simclust.exceptions import ConfigError, InvalidInputError, ParameterError, ShapeError
from simclust.graph import EdgeBackend, Graph, GraphSpec, SearchSettings, build_graph
from simclust.host import Host, get_host
from simclust.outdir import check_output_dir, write_folder, write_manifest, write_text

if TYPE_CHECKING:
    from simclust.progress import StageProgress

__all__ = [
    "DEDUP_FILES",
    "DUPLICATES_SCHEMA",
    "DUPLICATE_PAIRS_SCHEMA",
    "KEEP_POLICIES",
    "TO_REMOVE_FILE",
    "Duplicates",
    "KeepPolicy",
    "dedup",
    "dedup_graph",
    "find_duplicates",
    "row_files",
    "summarize",
    "to_remove_text",
]

KeepPolicy = Literal["medoid", "first", "largest-file"]
KEEP_POLICIES: tuple[str, ...] = config_mod.DEDUP_KEEP
DEFAULT_THRESHOLD = config_mod.DEFAULT_DEDUP_THRESHOLD

TO_REMOVE_FILE = "to_remove.txt"
DEDUP_FILES = ("duplicate_pairs.parquet", "duplicates.parquet", TO_REMOVE_FILE)
"""The files :meth:`Duplicates.write` writes besides ``manifest.json``."""

DUPLICATES_SCHEMA: dict[str, pl.DataType] = {
    "group": pl.UInt32(),
    "row": pl.UInt32(),
    "id": pl.String(),
    "kept": pl.Boolean(),
    "similarity_to_kept": pl.Float32(),
}
"""One row per near-duplicate, sorted by ``group`` then ``row``.

``group``: ``0..G-1`` in the order of each group's lowest row; ``row``: the input row;
``id``: its id (for an image folder the path relative to it); ``kept``: the one row of
its group the policy keeps; ``similarity_to_kept``: cosine similarity to the kept row
(computed in float64, rounded once to float32), null for the kept row itself."""

DUPLICATE_PAIRS_SCHEMA: dict[str, pl.DataType] = {
    "group": pl.UInt32(),
    "src": pl.UInt32(),
    "dst": pl.UInt32(),
    "src_id": pl.String(),
    "dst_id": pl.String(),
    "similarity": pl.Float32(),
}
"""Every pair of near-duplicates with similarity ``>= threshold`` (the ε-graph's edges,
``src < dst``), sorted by ``group, src, dst``. A group's rows are connected by these
pairs; two members of a chain may be less similar than ``threshold`` to each other."""


def dedup_graph(
    x: npt.NDArray[np.float32],
    threshold: float,
    *,
    built: Graph | None = None,
    n_threads: int | None = None,
    progress: ops.Progress | None = None,
    max_edges: int | None = None,
    search: SearchSettings | None = None,
    backend: EdgeBackend | None = None,
) -> Graph:
    """The ε-graph at ``threshold`` over the unit rows ``x``.

    ``built``, a threshold graph the run already has at a threshold no higher, is cut
    (no pair is computed again); otherwise the graph is built by
    :func:`simclust.graph.build_graph` with ``search`` (default exact) within
    ``max_edges``. The graph's ``search`` records how (and, if approximate, its recall).

    Example:
        >>> X = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], dtype=np.float32)
        >>> low = build_graph(X, GraphSpec("threshold", threshold=0.5))
        >>> dedup_graph(X, 0.9, built=low).n_edges, low.n_edges
        (0, 2)

    """
    spec = GraphSpec("threshold", threshold=threshold)
    if (
        built is not None
        and built.spec.kind == "threshold"
        and built.spec.threshold is not None
        and np.float32(built.spec.threshold) <= np.float32(threshold)
    ):
        return built.cut(spec)
    return build_graph(
        x,
        spec,
        n_threads=n_threads,
        progress=progress,
        max_edges=max_edges,
        search=search,
        backend=backend,
    )


def row_files(
    keep: str,
    input_path: str | os.PathLike[str] | None,
    paths: Sequence[str | os.PathLike[str]] | None,
    ids: Sequence[str],
) -> list[Path] | None:
    """The file of every row, which ``keep="largest-file"`` compares; else ``None``.

    ``paths`` (one per row) when given, else ``input_path / id`` when the input is an
    image folder (its ids are the paths relative to it).

    Raises:
        ParameterError: ``largest-file`` without files: the input is not a folder and
            no ``paths`` were given.
        ShapeError: ``paths`` does not have one entry per row.

    Example:
        >>> row_files("first", None, None, ["a"]) is None
        True
        >>> row_files("largest-file", None, ["x/a.png"], ["a"])
        [PosixPath('x/a.png')]

    """
    if keep != "largest-file":
        return None
    if paths is not None:
        if isinstance(paths, str | bytes) or len(paths) != len(ids):
            count = "a single path" if isinstance(paths, str | bytes) else f"{len(paths)} paths"
            raise ShapeError(f"paths must give one file per row ({len(ids)}), got {count}")
        return [Path(p) for p in paths]
    if input_path is not None and Path(input_path).is_dir():
        return [Path(input_path) / i for i in ids]
    raise ParameterError(
        "keep='largest-file' compares the rows' files, and this input has none: give an "
        "image folder as the input (or, in Python, paths= with one file per row), or "
        "keep 'medoid' or 'first'"
    )


def _file_sizes(files: Sequence[Path], rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    sizes = np.empty(rows.size, np.int64)
    for i, r in enumerate(rows.tolist()):
        try:
            sizes[i] = os.stat(files[r]).st_size
        except OSError as exc:
            raise InvalidInputError(
                f"keep='largest-file': cannot read the size of {str(files[r])!r} (row {r}): "
                f"{exc.strerror or exc}"
            ) from None
    return sizes


def _kept_rows(
    keep: str,
    x: npt.NDArray[np.float32],
    rows: npt.NDArray[np.int64],
    group: npt.NDArray[np.int64],
    starts: npt.NDArray[np.int64],
    files: Sequence[Path] | None,
    n_threads: int | None,
) -> npt.NDArray[np.int64]:
    """The row each group keeps; ``starts`` are where the groups begin in ``rows``."""
    first = rows[starts]
    if keep == "first":
        return first
    if keep == "largest-file":
        if files is None:
            raise ParameterError("keep='largest-file' needs the rows' files (see row_files)")
        order = np.lexsort((rows, -_file_sizes(files, rows), group))
        return rows[order][starts]
    if keep != "medoid":
        raise ParameterError(f"keep must be one of {', '.join(KEEP_POLICIES)}, got {keep!r}")
    sizes = np.diff(np.append(starts, rows.size))
    big = sizes[group] >= 3  # a pair's two members are equally central: the lower row
    kept = first.copy()
    if big.any():
        labels = np.full(x.shape[0], -1, np.int64)
        labels[rows[big]] = group[big]
        lab = ops.Labelling(x, labels, n_threads=n_threads)
        stats = ops.centroid_stats(lab, with_centroids=False).clusters
        ids = stats["cluster"].to_numpy()
        kept[ids] = stats["medoid"].to_numpy().astype(np.int64)
    return kept


def find_duplicates(
    x: npt.NDArray[np.float32],
    graph: Graph,
    ids: Sequence[str] | pl.Series,
    *,
    keep: str = "medoid",
    files: Sequence[Path] | None = None,
    n_threads: int | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The near-duplicate groups of ``graph`` (an ε-graph over the unit rows ``x``).

    Args:
        x: the unit rows the graph was built on.
        graph: the ε-graph (:func:`dedup_graph`).
        ids: one id per row.
        keep: ``"medoid"``, ``"first"`` or ``"largest-file"`` (see :mod:`simclust.duplicates`).
        files: each row's file, for ``"largest-file"`` (:func:`row_files`).
        n_threads: threads (default ``SIMCLUST_NUM_THREADS`` or all cores).

    Returns:
        ``(duplicates, pairs)`` with :data:`DUPLICATES_SCHEMA` and
        :data:`DUPLICATE_PAIRS_SCHEMA`.

    Example:
        >>> X = np.array([[1, 0], [0.99, 0.14], [0, 1], [0.98, 0.2]], dtype=np.float32)
        >>> X /= np.linalg.norm(X, axis=1, keepdims=True)
        >>> g = build_graph(X, GraphSpec("threshold", threshold=0.97))
        >>> dups, pairs = find_duplicates(X, g, ["a", "b", "c", "d"])
        >>> dups.filter("kept")["id"].to_list(), pairs.height
        (['b'], 3)

    """
    n = graph.n_nodes
    id_list = ids.to_list() if isinstance(ids, pl.Series) else list(ids)
    if len(id_list) != n or int(x.shape[0]) != n:
        raise ShapeError(f"the graph has {n} rows, x {x.shape[0]} and ids {len(id_list)}")
    comp = ops.connected_components(n, graph.src, graph.dst, n_threads=n_threads)
    counts = np.bincount(comp, minlength=1)
    multi = counts >= 2
    group_of_comp = np.full(counts.size, -1, np.int64)
    group_of_comp[multi] = np.arange(int(multi.sum()))  # components are in lowest-row order
    group_of_row = group_of_comp[comp]
    rows = np.flatnonzero(group_of_row >= 0)
    rows = rows[np.argsort(group_of_row[rows], kind="stable")]
    group = group_of_row[rows]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if rows.size else rows
    kept_of_group = _kept_rows(keep, x, rows, group, starts, files, n_threads)
    kept = kept_of_group[group]
    is_kept = rows == kept
    sim = ops.pair_similarity(x, rows, kept)
    id_series = pl.Series("id", id_list, dtype=pl.String)
    duplicates = pl.DataFrame(
        {
            "group": pl.Series(group, dtype=pl.UInt32),
            "row": pl.Series(rows, dtype=pl.UInt32),
            "id": id_series.gather(rows),
            "kept": pl.Series(is_kept, dtype=pl.Boolean),
            "similarity_to_kept": pl.Series(sim, dtype=pl.Float32),
        }
    ).with_columns(
        similarity_to_kept=pl.when(pl.col("kept")).then(None).otherwise("similarity_to_kept")
    )
    src, dst = graph.src.astype(np.int64), graph.dst.astype(np.int64)
    pair_group = group_of_row[src]
    order = np.lexsort((dst, src, pair_group))
    src, dst = src[order], dst[order]
    pairs = pl.DataFrame(
        {
            "group": pl.Series(pair_group[order], dtype=pl.UInt32),
            "src": pl.Series(src, dtype=pl.UInt32),
            "dst": pl.Series(dst, dtype=pl.UInt32),
            "src_id": id_series.gather(src),
            "dst_id": id_series.gather(dst),
            "similarity": pl.Series(graph.similarity[order], dtype=pl.Float32),
        }
    )
    return duplicates, pairs


def to_remove_text(duplicates: pl.DataFrame) -> str:
    r"""``to_remove.txt``: the ids of the rows not kept, one a line, in row order.

    Raises:
        InvalidInputError: an id holds a line break (it cannot be one line).

    Example:
        >>> df = pl.DataFrame({"row": [0, 3], "id": ["a.png", "b.png"], "kept": [True, False]})
        >>> to_remove_text(df)
        'b.png\n'

    """
    ids = duplicates.filter(~pl.col("kept")).sort("row")["id"].to_list()
    for i in ids:
        if "\n" in i or "\r" in i:
            raise InvalidInputError(
                f"id {i!r} holds a line break: {TO_REMOVE_FILE} lists one id a line and "
                "cannot hold it (rename the file)"
            )
    return "".join(f"{i}\n" for i in ids)


def summarize(duplicates: pl.DataFrame, record: Mapping[str, Any]) -> dict[str, Any]:
    """Counts of a near-duplicate search, for summaries and ``manifest.json``.

    ``record`` holds ``threshold``, ``keep`` and ``graph_search`` (how the ε-graph was
    searched; an approximate search carries its measured ``recall``).

    Example:
        >>> df = pl.DataFrame({"group": [0, 0, 0], "kept": [True, False, False]})
        >>> s = summarize(df, {"threshold": 0.95, "keep": "first", "graph_search": {}})
        >>> s["n_groups"], s["n_to_remove"], s["largest_group"]
        (1, 2, 3)

    """
    sizes = duplicates.group_by("group").len()["len"]
    search = record.get("graph_search") or {}
    return {
        "n_groups": sizes.len(),
        "n_duplicates": duplicates.height,
        "n_to_remove": int((~duplicates["kept"]).sum()),
        "largest_group": int(sizes.max()) if sizes.len() else 0,  # type: ignore[arg-type]
        "threshold": record["threshold"],
        "keep": record["keep"],
        "graph_search": search.get("method"),
        "graph_recall": search.get("recall"),
    }


@dataclass(frozen=True)
class Duplicates:
    """The near-duplicates :func:`dedup` found.

    Attributes:
        duplicates: one row per near-duplicate (:data:`DUPLICATES_SCHEMA`).
        pairs: the pairs of near-duplicates with their similarity
            (:data:`DUPLICATE_PAIRS_SCHEMA`).
        threshold: the similarity a pair needed.
        keep: the policy that chose each group's kept row.
        n_rows: rows searched.
        graph_search: how the ε-graph was searched (``method``; for an approximate
            search its measured ``recall``; see :class:`simclust.graph.Graph`).
        config: the resolved ``[input]``, ``[graph]`` search, ``[run]`` and ``[dedup]``
            settings.
        versions: simclust's and its dependencies' versions.
        fingerprint: shape and digest of the input embeddings.
        timings: seconds per stage.

    """

    duplicates: pl.DataFrame
    pairs: pl.DataFrame
    threshold: float
    keep: str
    n_rows: int
    graph_search: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def to_remove(self) -> list[str]:
        """The ids of the rows not kept, in row order (``to_remove.txt``)."""
        return self.duplicates.filter(~pl.col("kept")).sort("row")["id"].to_list()

    @property
    def n_groups(self) -> int:
        """The number of groups of near-duplicates."""
        return int(self.duplicates["group"].n_unique())

    def record(self) -> dict[str, Any]:
        """``threshold``, ``keep`` and ``graph_search``: how the groups were found."""
        return {
            "threshold": self.threshold,
            "keep": self.keep,
            "graph_search": copy.deepcopy(self.graph_search),
        }

    def summary(self) -> dict[str, Any]:
        """Rows, groups, rows to remove, the threshold, the policy and the search.

        Example:
            >>> d = dedup(np.eye(3), threshold=0.5)
            >>> d.summary()["n_groups"], d.summary()["graph_search"]
            (0, 'exact')

        """
        return {
            "n_rows": self.n_rows,
            **summarize(self.duplicates, self.record()),
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
        }

    def write(self, directory: str | Path) -> Path:
        r"""Write ``duplicates.parquet``, ``duplicate_pairs.parquet``, ``to_remove.txt``.

        With a ``manifest.json`` (the settings, the input's fingerprint, the summary),
        atomically and only where simclust may write, as :meth:`simclust.Result.write`:
        ``directory`` must be absent, empty or an earlier simclust result, whose files
        alone are replaced; a file of yours named like one of these is never replaced.

        Raises:
            FileExistsError: ``directory`` is not one simclust may write into (the
                message says why).
            InvalidInputError: an id holds a line break.

        Example:
            >>> import tempfile, pathlib
            >>> out = pathlib.Path(tempfile.mkdtemp()) / "dups"
            >>> d = dedup(np.array([[1.0, 0.0], [1.0, 0.001]]), threshold=0.99)
            >>> (d.write(out) / "to_remove.txt").read_text()
            '1\n'

        """
        target = Path(directory)
        names = sorted(DEDUP_FILES)
        old = check_output_dir(
            target, new_files=names, input_path=self.config.get("input", {}).get("path")
        )
        text = to_remove_text(self.duplicates)  # before any file is written

        def fill(stage: Path) -> None:
            self.duplicates.write_parquet(stage / "duplicates.parquet", statistics=True)
            self.pairs.write_parquet(stage / "duplicate_pairs.parquet", statistics=True)
            write_text(stage / TO_REMOVE_FILE, text)
            write_manifest(
                stage,
                {
                    "kind": "duplicates",
                    "config": self.config,
                    "versions": self.versions,
                    "input": self.fingerprint,
                    "summary": self.summary(),
                    "timings_s": self.timings,
                    "graph_search": self.graph_search,
                    "files": names,
                },
            )

        write_folder(target, names, old, fill)
        return target


def dedup(
    X_or_path: npt.ArrayLike | str | Path | None = None,  # noqa: N803
    *,
    threshold: float | None = None,
    keep: KeepPolicy | None = None,
    ids: Sequence[str] | npt.ArrayLike | None = None,
    paths: Sequence[str | os.PathLike[str]] | None = None,
    config: str | Path | Mapping[str, Any] | None = None,
    n_threads: int | None = None,
    max_edges: int | None = None,
    search: str | None = None,
    progress: StageProgress | None = None,
    host: Host | None = None,
) -> Duplicates:
    """Find groups of near-duplicates and choose the row each group keeps.

    Args:
        X_or_path: an N x D array, or a path a loader reads (an image folder,
            ``.npy``/``.npz``, ``.parquet``, ...); ``None`` takes ``[input] path`` from
            ``config``.
        threshold: the cosine similarity a pair of near-duplicates needs (default: the
            config's ``[dedup] threshold``, else 0.95).
        keep: ``"medoid"`` (default), ``"first"`` or ``"largest-file"`` (see
            :mod:`simclust.duplicates`).
        ids: one id per row (default: the loader's ids, e.g. an image folder's paths,
            else the row number).
        paths: one file per row for ``keep="largest-file"`` when the input is not an
            image folder.
        config: a TOML path or mapping: ``[input]``, ``[graph]``'s search keys,
            ``[run]`` and ``[dedup]`` are used.
        n_threads: threads (default ``SIMCLUST_NUM_THREADS`` or all cores).
        max_edges: the ε-graph's edge budget (default 100 M, see
            :func:`simclust.graph.check_edge_budget`).
        search: ``"auto"`` (default: exact brute force while it is small, else ``ivf``
            with its recall measured), ``"exact"``, ``"ivf"`` or ``"certified"`` (exact,
            pruned).
        progress: ``progress(stage, done, total)``; stages ``load``, ``normalize``,
            ``graph``, ``dedup``.
        host: a plugin host (default :func:`simclust.get_host`).

    Raises:
        ConfigError: a threshold outside ``[-1, 1]``, an unknown policy, a bad config.
        ParameterError: ``keep="largest-file"`` for an input without files.
        InvalidInputError: NaN/Inf or zero rows, unreadable files.

    Example:
        >>> from simclust.testing import make_embeddings
        >>> X = make_embeddings(50, 8, n_clusters=5, seed=0)
        >>> X = np.vstack([X, X[:3] + 1e-3])  # rows 50-52 copy rows 0-2
        >>> d = dedup(X, threshold=0.999, keep="first")
        >>> d.n_groups, d.to_remove
        (3, ['50', '51', '52'])

    """
    from simclust.inputs import read_run_input
    from simclust.pipeline import StageTimer, _fingerprint, _unit_rows, _versions
    from simclust.progress import for_stage
    from simclust.result import _portable_config

    host = host if host is not None else get_host()
    path = X_or_path if isinstance(X_or_path, str | Path) else None
    raw = config_mod.overlay(
        config, path=path, threads=n_threads, max_edges=max_edges, search=search
    )
    section = raw.setdefault("dedup", {})
    if not isinstance(section, dict):
        raise ConfigError(f"dedup: expected a table ([dedup]), got {type(section).__name__}")
    for key, value in (("threshold", threshold), ("keep", keep)):
        if value is not None:
            section[key] = value
    cfg = config_mod.resolve(raw, host)
    settings, threads = cfg["dedup"], cfg["run"]["threads"]
    timer = StageTimer(progress)
    with timer.stage("load"):
        data = read_run_input(X_or_path, cfg, host, ids, None, progress=for_stage(progress, "load"))
    input_path = cfg["input"]["path"] if X_or_path is None or path is not None else None
    files = row_files(settings["keep"], input_path, paths, data.ids.to_list())
    with timer.stage("normalize"):
        x = _unit_rows(data.x, threads)
        fingerprint = _fingerprint(data.x)
    with timer.stage("graph"):
        graph = dedup_graph(
            x,
            settings["threshold"],
            n_threads=threads,
            progress=for_stage(progress, "graph"),
            max_edges=cfg["run"]["max_edges"],
            search=SearchSettings(**cfg["search"]),
        )
    with timer.stage("dedup"):
        duplicates, pairs = find_duplicates(
            x, graph, data.ids, keep=settings["keep"], files=files, n_threads=threads
        )
    kept_config = {k: cfg[k] for k in ("input", "search", "run", "dedup")}
    return Duplicates(
        duplicates=duplicates,
        pairs=pairs,
        threshold=settings["threshold"],
        keep=settings["keep"],
        n_rows=int(x.shape[0]),
        graph_search=dict(graph.search),
        config=_portable_config(kept_config),
        versions=_versions(host),
        fingerprint=fingerprint,
        timings=timer.timings,
    )
