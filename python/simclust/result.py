"""The result of a run: Polars frames with fixed schemas, and their folder on disk.

:class:`Result` holds what :func:`simclust.analyze` computed; :meth:`Result.write` puts
it in a folder (Parquet, ``.npy`` and a ``manifest.json``) atomically and
:meth:`Result.read` loads it back.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> from simclust import analyze
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> res = analyze(np.eye(3), threshold=0.5)
    >>> Result.read(res.write(out, report=False)).clusters.height
    3

"""

from __future__ import annotations

import copy
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from simclust import ops
from simclust.distances import BUILTIN_DISTANCES, stored_schema
from simclust.exceptions import InvalidInputError
from simclust.outdir import (
    MANIFEST,
    REPORT_FILE,
    check_output_dir,
    check_stem,
    is_plain_file,
    write_folder,
    write_manifest,
    write_text,
)

__all__ = [
    "CHAIN_MAX_CONDUCTANCE",
    "CHAIN_MIN_PART",
    "CHAIN_PART_SHARE",
    "CHAIN_STEP",
    "SWEEP_SCHEMA",
    "Result",
    "chain_split_threshold",
]

SWEEP_SCHEMA: dict[str, pl.DataType] = {
    "threshold": pl.Float32(),
    "n_components": pl.UInt32(),
    "largest_component": pl.UInt32(),
}
CORE_FRAMES = ("assignments", "clusters", "inter", "edges", "sweep")
CORE_ARRAYS = ("centroid_matrix", "centroid_matrix_clusters")
CHAIN_STEP = 0.2
"""The chained-cluster rule's stricter threshold is ``t + CHAIN_STEP * (1 - t)`` (0.92 at 0.9)."""
CHAIN_PART_SHARE = 0.1
"""A part of a cluster at the stricter threshold is sizable with this share of its members..."""
CHAIN_MIN_PART = 3
"""... and at least this many members."""
CHAIN_MAX_CONDUCTANCE = 0.05
"""A cluster is chained when a sizable part is joined to the rest with a lower conductance."""


def chain_split_threshold(threshold: float) -> float:
    """The stricter threshold at which :meth:`Result.chained_clusters` looks for parts.

    Example:
        >>> round(chain_split_threshold(0.9), 6)
        0.92

    """
    return threshold + CHAIN_STEP * (1.0 - threshold)


@dataclass
class Result:
    """Everything one run computed, as Polars frames with documented schemas.

    Attributes:
        assignments: one row per input row (:data:`simclust.frames.ASSIGNMENTS_SCHEMA`
            plus plugin columns).
        clusters: one row per cluster (:data:`simclust.frames.CLUSTERS_SCHEMA` plus
            plugin columns); a column whose metric did not run is null.
        inter: inter-cluster centroid similarities (:data:`simclust.frames.INTER_SCHEMA`).
        edges: the run's similarity graph (:data:`simclust.frames.EDGES_SCHEMA`; empty
            when no step built one).
        sweep: components and the largest component per threshold over the graph
            (``threshold, n_components, largest_component``; empty without a graph).
        centroid_matrix: dense centroid cosine similarities of the largest clusters.
        centroid_matrix_clusters: the cluster ids of its rows and columns.
        tables: extra frames from plugins (and ``bad_files`` from image loaders).
        config: the resolved configuration.
        versions: simclust, its dependencies and every plugin's version.
        fingerprint: shape, dtype and BLAKE2b digest of the input embeddings.
        timings: seconds per stage.
        graph_search: which graph the run built (``kind``, ``k`` for kNN, ``threshold``;
            :attr:`simclust.graph.Graph.record`) and how it was searched (``method``:
            ``exact``, ``ivf`` or ``certified``, why it was chosen, and for a partitioned
            search the lists, the pairs computed and the ``recall`` measured on
            ``recall_rows`` seeded rows); empty when no graph was built.
        metric_searches: how the metrics searched for nearest clusters, by function
            (``centroid_stats``, ``inter_centroid``), each a record like
            ``graph_search`` (``exact``, or ``ivf`` with its measured ``recall``).
        dedup: with a ``[dedup]`` config section, how the near-duplicates in
            ``tables["duplicates"]`` and ``tables["duplicate_pairs"]`` were found
            (``threshold``, ``keep``, ``graph_search``; see :mod:`simclust.duplicates`); the
            result folder then also holds ``to_remove.txt``. Empty otherwise.
        outlier_search: how the neighbours behind the outlier scores of ``assignments``
            (``nn_similarity``, ``knn_sim_mean``; :mod:`simclust.outliers`) were found:
            ``k``, ``source`` (``"run graph"``: the run's kNN graph, or ``"knn search"``)
            and the search record (``method``, ``recall``, ...) as ``graph_search``.
        directory: the folder this result was last written to (:meth:`write`) or read
            from (:meth:`read`); ``None`` until then.

    Example:
        >>> import numpy as np
        >>> from simclust import analyze
        >>> print(analyze(np.eye(3), threshold=0.5))  # doctest: +NORMALIZE_WHITESPACE
        Result: 3 rows, 3 clusters (3 singletons), 0 noise rows
          graph: threshold 0.5, 0 edges, search exact (every pair)
          outlier scores: k = 2 nearest, own kNN search, exact (every pair)
          not written

    """

    assignments: pl.DataFrame
    clusters: pl.DataFrame
    inter: pl.DataFrame
    edges: pl.DataFrame
    sweep: pl.DataFrame
    centroid_matrix: npt.NDArray[np.float32]
    centroid_matrix_clusters: npt.NDArray[np.int64]
    config: dict[str, Any]
    versions: dict[str, Any]
    fingerprint: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    graph_search: dict[str, Any] = field(default_factory=dict)
    metric_searches: dict[str, dict[str, Any]] = field(default_factory=dict)
    dedup: dict[str, Any] = field(default_factory=dict)
    outlier_search: dict[str, Any] = field(default_factory=dict)
    directory: Path | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        """A few lines: rows, clusters, the graph and its search, where it was written."""
        from simclust._format import outlier_text, search_text

        s = self.summary()
        graph_line = "none"
        if self.graph_search:
            g = self.graph_search
            what = [f"kNN k = {g.get('k')}"] if g.get("kind") == "knn" else []
            if g.get("threshold") is not None:
                what.append(f"threshold {g['threshold']:g}")
            graph_line = (
                f"{', '.join(what) or 'built'}, {s['n_edges']:,} edges, search {search_text(g)}"
            )
        lines = [
            f"Result: {s['n_rows']:,} rows, {s['n_clusters']:,} clusters "
            f"({s['n_singletons']:,} singletons), {s['n_noise']:,} noise rows",
            f"  graph: {graph_line}",
            f"  outlier scores: {outlier_text(self.outlier_search)}",
            f"  written to {self.directory}" if self.directory is not None else "  not written",
        ]
        return "\n".join(lines)

    def summary(self) -> dict[str, Any]:
        """A small dict for printing: rows, clusters, noise, sizes, timings.

        Example:
            >>> import numpy as np
            >>> from simclust import analyze
            >>> analyze(np.eye(3), threshold=0.5).summary()["n_clusters"]
            3

        """
        sizes = self.clusters["size"]
        noise = int((self.assignments["cluster"] < 0).sum())
        return {
            "n_rows": self.assignments.height,
            "n_clusters": self.clusters.height,
            "n_noise": noise,
            "n_singletons": int((sizes == 1).sum()),
            "largest_cluster": int(sizes.max()) if len(sizes) else 0,  # type: ignore[arg-type]
            "n_edges": self.edges.height,
            "n_chained": self.chained_clusters().height,
            "strategy": self.config["cluster"]["strategy"],
            "metrics": list(self.config["metrics"]["use"]),
            "graph_search": self.graph_search.get("method"),
            "graph_recall": self.graph_search.get("recall"),
            "nearest_cluster_recall": min(
                (float(r["recall"]) for r in self.metric_searches.values()), default=None
            ),
            "outlier_k": self.outlier_search.get("k"),
            "outlier_recall": self.outlier_search.get("recall"),
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
            **self._dedup_summary(),
        }

    def _dedup_summary(self) -> dict[str, Any]:
        """``{"dedup": summarize(...)}`` when the run looked for near-duplicates."""
        if not self.dedup or "duplicates" not in self.tables:
            return {}
        from simclust.duplicates import summarize

        return {"dedup": summarize(self.tables["duplicates"], self.dedup)}

    def threshold(self) -> float | None:
        """The strategy's similarity threshold, if it has one (connected components)."""
        value = self.config.get("cluster", {}).get("params", {}).get("threshold")
        return float(value) if isinstance(value, int | float) else None

    def chained_clusters(self) -> pl.DataFrame:
        """Clusters made of several groups joined by weak bridges.

        At the stricter threshold :func:`chain_split_threshold` (``t + 0.2 (1 - t)``,
        0.92 at ``t = 0.9``) a cluster's internal edges split it into parts; a part is
        sizable with at least :data:`CHAIN_PART_SHARE` of the cluster and
        :data:`CHAIN_MIN_PART` members. The cluster is chained when it has at least 2
        sizable parts and one of them is joined to the rest of the cluster, over the
        edges at ``t``, with a conductance below :data:`CHAIN_MAX_CONDUCTANCE`: fewer
        than 1 edge in 20 of the smaller side's edge ends crosses
        (:func:`simclust.ops.weak_splits`). Groups that single linkage merged through
        a few bridges are flagged; one elongated or loose group is not, however low its
        all-pairs ``sim_min``: where it thins out, its parts are still joined by many
        edges. Calibrated on data with known groups, the demo's
        (:func:`simclust.testing.images.make_image_dataset`, 3000 images, threshold 0.9):
        with seed 0 (``simclust demo``) the flagged clusters are exactly the 2 of 18
        multi-member clusters that hold 2 or more groups of >= 10 % (precision and recall
        1.0); seeds 1-4: 9 flagged, all such, of 12 such (recall 0.5 on seed 1, 0.75 on
        seed 4, 1.0 on seeds 2 and 3). (Before the generator drew a group's members so
        that no two are near-duplicates, over seeds 0-4, 13 flagged, all such, of 14 such;
        the merged clusters had conductances of at most 0.018, parts split off single
        groups 0.08 or more.)
        Empty without a clustering threshold or without the run's graph.

        Returns:
            ``cluster, size, sim_min, bridge_similarity, n_parts, conductance`` (the
            number of sizable parts and the lowest conductance of one), most weakly
            joined first; ``dist_max`` in place of ``sim_min`` under the ``euclidean``
            distance, neither under a plugin's.

        Example:
            >>> import numpy as np
            >>> from simclust import analyze
            >>> deg = np.radians(np.r_[np.linspace(0, 10, 20), np.linspace(35, 45, 20)])
            >>> pairs = np.c_[np.cos(deg), np.sin(deg)]  # two groups; 3 pairs at cos > 0.9
            >>> analyze(pairs, threshold=0.9).chained_clusters().select("size", "n_parts").rows()
            [(40, 2)]
            >>> arc = np.radians(np.linspace(0, 120, 40))  # one elongated group
            >>> analyze(np.c_[np.cos(arc), np.sin(arc)], threshold=0.9).chained_clusters().height
            0

        """
        t = self.threshold()
        dist = BUILTIN_DISTANCES.get(self.distance)  # its all-pairs least close pair's column
        weakest = [dist.columns["sim_min" if dist.higher_is_closer else "sim_max"]] if dist else []
        out = self.clusters.select("cluster", "size", *weakest, "bridge_similarity")
        if t is None or self.edges.height == 0:
            return out.head(0).with_columns(
                n_parts=pl.lit(0, dtype=pl.UInt32), conductance=pl.lit(0.0, dtype=pl.Float64)
            )
        labels = self.assignments["cluster"].to_numpy()
        n_parts, conductance = ops.weak_splits(
            len(labels),
            self.edges["src"].to_numpy(),
            self.edges["dst"].to_numpy(),
            self.edges["similarity"].to_numpy(),
            labels,
            threshold=t,
            strict=chain_split_threshold(t),
            min_share=CHAIN_PART_SHARE,
            min_part=CHAIN_MIN_PART,
        )
        found = pl.DataFrame(
            {
                "cluster": np.arange(len(n_parts), dtype=np.int64),
                "n_parts": n_parts,
                "conductance": conductance,
            }
        ).filter((pl.col("n_parts") >= 2) & (pl.col("conductance") < CHAIN_MAX_CONDUCTANCE))
        return out.join(found, on="cluster", how="inner").sort(["conductance", "cluster"])

    @property
    def distance(self) -> str:
        """The distance the geometry metrics measured in (``[metrics] distance``)."""
        return str(self.config.get("metrics", {}).get("distance", "cosine"))

    def frames(self) -> dict[str, pl.DataFrame]:
        """Every frame by the file name it is written under (without ``.parquet``)."""
        out = {
            "assignments": self.assignments,
            "clusters": self.clusters,
            "inter": self.inter,
            "edges": self.edges,
            "sweep": self.sweep,
        }
        out.update(self.tables)
        return out

    def copy(self) -> Result:
        """A copy that shares nothing mutable with this result (frames, arrays, dicts).

        :func:`simclust.analyze` hands a copy to ``simclust_run_finished`` observers, so
        a plugin cannot change what is returned or written.
        """
        return Result(
            assignments=self.assignments.clone(),
            clusters=self.clusters.clone(),
            inter=self.inter.clone(),
            edges=self.edges.clone(),
            sweep=self.sweep.clone(),
            centroid_matrix=np.array(self.centroid_matrix, copy=True),
            centroid_matrix_clusters=np.array(self.centroid_matrix_clusters, copy=True),
            config=copy.deepcopy(self.config),
            versions=copy.deepcopy(self.versions),
            fingerprint=copy.deepcopy(self.fingerprint),
            timings=dict(self.timings),
            tables={k: v.clone() for k, v in self.tables.items()},
            arrays={k: np.array(v, copy=True) for k, v in self.arrays.items()},
            graph_search=copy.deepcopy(self.graph_search),
            metric_searches=copy.deepcopy(self.metric_searches),
            dedup=copy.deepcopy(self.dedup),
            outlier_search=copy.deepcopy(self.outlier_search),
            directory=self.directory,
        )

    def file_names(self, *, report: bool) -> list[str]:
        """The files :meth:`write` writes (sorted, without ``manifest.json``).

        Raises:
            InvalidInputError: a table or array name is not a plain file stem (letters,
                digits, ``_ . -``; no separator, no ``..``) or is a built-in one.

        """
        names = []
        for kind, stems, core in (
            ("table", self.tables, CORE_FRAMES),
            ("array", self.arrays, CORE_ARRAYS),
        ):
            for stem in stems:
                check_stem(kind, stem)
                if stem in core:
                    raise InvalidInputError(f"{kind} name {stem!r} is a built-in {kind}'s name")
        names += [f"{stem}.parquet" for stem in (*CORE_FRAMES, *self.tables)]
        names += [f"{stem}.npy" for stem in (*CORE_ARRAYS, *self.arrays)]
        if "duplicates" in self.tables:
            from simclust.duplicates import TO_REMOVE_FILE

            names.append(TO_REMOVE_FILE)
        if report:
            names.append(REPORT_FILE)
        return sorted(names)

    def write(
        self, directory: str | Path, *, overwrite: bool = True, report: bool | None = None
    ) -> Path:
        """Write every frame as Parquet, the centroid matrix as ``.npy`` and a manifest.

        With ``report`` (default: the config's ``[output] report``) the HTML report
        (:func:`simclust.report.write_report`) is written beside them as ``report.html``;
        image thumbnails are found under the input folder when the ids are image paths.

        ``directory`` may be absent, empty, or a folder simclust wrote before (its
        ``manifest.json`` carries :data:`RESULT_MARKER` and lists its files). Only the
        files simclust wrote are replaced (those the old manifest lists and not the new
        result are removed); every other file in the folder is left alone. Anything else
        is refused before writing (:func:`check_output_dir`), as is the input folder.

        Atomic: the files are written into a temporary folder, then moved in one by one
        (``os.replace``; ``manifest.json`` last); a failure or Ctrl-C restores the
        previous files, so the folder holds either the previous result or the new one,
        never a mix. A symlinked ``directory`` stays a symlink (its target is written).

        Returns:
            The output folder.

        Raises:
            FileExistsError: ``directory`` is a file, a non-empty folder without a
                simclust manifest, the input folder, holds a file of a name simclust would
                write that it did not write, or holds a result and ``overwrite`` is false.
            InvalidInputError: a table or array name is not a plain file stem.

        Example:
            >>> import numpy as np, tempfile, pathlib
            >>> from simclust import analyze
            >>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
            >>> _ = analyze(np.eye(3), threshold=0.5).write(out)
            >>> sorted(p.name for p in out.iterdir())[:3]
            ['assignments.parquet', 'centroid_matrix.npy', 'centroid_matrix_clusters.npy']

        """
        target = Path(directory)
        if report is None:
            report = bool(self.config.get("output", {}).get("report", False))
        if report and self.distance != "cosine":  # the report draws cosine geometry only
            msg = f"no HTML report for the distance {self.distance!r}: it shows cosine only"
            warnings.warn(msg, UserWarning, stacklevel=2)
            report = False
        names = self.file_names(report=report)
        inp = self.config.get("input", {}).get("path")
        old = check_output_dir(target, new_files=names, input_path=inp)
        if not overwrite and target.is_dir() and any(target.iterdir()):
            raise FileExistsError(f"{target} exists (pass overwrite=True to replace it)")

        def fill(stage: Path) -> None:
            for name, df in self.frames().items():
                df.write_parquet(stage / f"{name}.parquet", statistics=True)
            arrays = {
                "centroid_matrix": self.centroid_matrix,
                "centroid_matrix_clusters": self.centroid_matrix_clusters,
                **self.arrays,
            }
            for name, arr in arrays.items():
                np.save(stage / f"{name}.npy", np.asarray(arr), allow_pickle=False)
            if "duplicates" in self.tables:
                from simclust.duplicates import TO_REMOVE_FILE, to_remove_text

                write_text(stage / TO_REMOVE_FILE, to_remove_text(self.tables["duplicates"]))
            if report:
                from simclust.report import write_report

                write_report(self, stage / REPORT_FILE, image_root=self.image_root())
            write_manifest(
                stage,
                {
                    "config": _portable_config(self.config),
                    "versions": self.versions,
                    "input": self.fingerprint,
                    "summary": self.summary(),
                    "timings_s": self.timings,
                    "graph_search": self.graph_search,
                    "metric_searches": self.metric_searches,
                    "outlier_search": self.outlier_search,
                    **({"dedup": self.dedup} if self.dedup else {}),
                    "files": names,
                },
            )

        write_folder(target, names, old, fill)
        self.directory = target
        return target

    @classmethod
    def read(cls, directory: str | Path) -> Result:
        """Load a result that :meth:`write` wrote (frames, arrays, config, versions).

        Only plain file names in ``directory`` are read: a manifest entry with a path
        separator or ``..``, or a file that is a link out of the folder, is refused. An
        input path stored relative (by an older simclust) is looked up beside the result
        folder, then in the working directory.

        Raises:
            InvalidInputError: ``directory`` holds no ``manifest.json``, the manifest is
                not a simclust manifest, or a file it lists is missing, outside the folder,
                unreadable or lacks its columns (the message names the file).

        Example:
            >>> import numpy as np, tempfile, pathlib
            >>> from simclust import analyze
            >>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
            >>> res = analyze(np.eye(3), threshold=0.5)
            >>> back = Result.read(res.write(out, report=False))
            >>> back.clusters.equals(res.clusters), back.config == res.config
            (True, True)

        """
        from simclust import frames as frames_mod

        root = Path(directory)
        manifest_path = root / MANIFEST
        if not manifest_path.is_file():
            raise InvalidInputError(f"{root} holds no {MANIFEST}: not a simclust result folder")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
            raise InvalidInputError(f"{manifest_path}: not a readable manifest: {exc}") from exc
        if not isinstance(manifest, dict):
            raise InvalidInputError(f"{manifest_path}: not a simclust manifest (not an object)")
        for key, kind in (("files", list), ("config", dict), ("versions", dict), ("input", dict)):
            if not isinstance(manifest.get(key), kind):
                raise InvalidInputError(
                    f"{manifest_path}: not a simclust manifest ({key!r} is not a {kind.__name__})"
                )
        config = manifest["config"]
        cluster, metrics = config.get("cluster"), config.get("metrics")
        if not (
            isinstance(cluster, dict)
            and isinstance(cluster.get("strategy"), str)
            and isinstance(metrics, dict)
            and isinstance(metrics.get("use"), list)
        ):
            raise InvalidInputError(
                f"{manifest_path}: damaged config (no cluster.strategy or metrics.use)"
            )
        files = manifest["files"]
        real_root = root.resolve()
        for name in files:
            if not is_plain_file(name):
                raise InvalidInputError(
                    f"{manifest_path}: 'files' lists {name!r}, which is not a plain file "
                    "name in the folder"
                )
            if not (root / name).resolve().is_relative_to(real_root):
                raise InvalidInputError(f"{root / name}: links outside the result folder")
        tables: dict[str, pl.DataFrame] = {}
        arrays: dict[str, np.ndarray] = {}
        for name in sorted(files):
            path = root / name
            try:
                if name.endswith(".parquet"):
                    tables[name[: -len(".parquet")]] = pl.read_parquet(path)
                elif name.endswith(".npy"):
                    arrays[name[: -len(".npy")]] = np.load(path, allow_pickle=False)
            except Exception as exc:  # polars and numpy raise many types for bad files
                raise InvalidInputError(
                    f"{path}: cannot read the result file: {type(exc).__name__}: {exc}"
                ) from exc
        schemas = {
            "assignments": frames_mod.ASSIGNMENTS_SCHEMA,
            "clusters": frames_mod.CLUSTERS_SCHEMA,
            "inter": frames_mod.INTER_SCHEMA,
            "edges": frames_mod.EDGES_SCHEMA,
            "sweep": SWEEP_SCHEMA,
        }
        for name in ("assignments", "clusters", "inter"):
            schemas[name] = stored_schema(schemas[name], config)
        core = {}
        for name, schema in schemas.items():
            df = tables.pop(name, None)
            if df is None:
                raise InvalidInputError(f"{root / (name + '.parquet')}: missing from the result")
            bad = [c for c, dt in schema.items() if df.schema.get(c) != dt]
            if bad:
                raise InvalidInputError(
                    f"{root / (name + '.parquet')}: column {bad[0]!r} is missing or has the "
                    "wrong type"
                )
            core[name] = df
        for name in CORE_ARRAYS:
            if name not in arrays:
                raise InvalidInputError(f"{root / (name + '.npy')}: missing from the result")
        config = copy.deepcopy(config)
        _locate_input(config, root)
        return cls(
            **core,
            centroid_matrix=arrays.pop("centroid_matrix"),
            centroid_matrix_clusters=arrays.pop("centroid_matrix_clusters"),
            config=config,
            versions=manifest["versions"],
            fingerprint=manifest["input"],
            timings=manifest.get("timings_s", {}),
            tables=tables,
            arrays=arrays,
            graph_search=dict(manifest.get("graph_search") or {}),
            metric_searches=dict(manifest.get("metric_searches") or {}),
            dedup=dict(manifest.get("dedup") or {}),
            outlier_search=dict(manifest.get("outlier_search") or {}),
            directory=root,
        )

    def image_root(self) -> Path | None:
        """The folder the ids are relative to, when the input was an image folder."""
        path = self.config.get("input", {}).get("path")
        if isinstance(path, str) and path and Path(path).is_dir():
            return Path(path)
        return None


def _portable_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config with the input path made absolute, so the manifest works from anywhere."""
    out = copy.deepcopy(dict(config))
    inp = out.get("input")
    if isinstance(inp, dict) and isinstance(inp.get("path"), str) and inp["path"]:
        inp["path"] = os.path.abspath(inp["path"])
    return out


def _locate_input(config: dict[str, Any], root: Path) -> None:
    """Make a relative input path (older manifests) absolute: beside ``root``, else cwd."""
    inp = config.get("input")
    if not isinstance(inp, dict) or not isinstance(inp.get("path"), str) or not inp["path"]:
        return
    path = Path(inp["path"])
    if path.is_absolute():
        return
    for base in (root.absolute().parent, Path.cwd()):
        if os.path.lexists(base / path):
            inp["path"] = os.path.abspath(base / path)
            return
