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

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from simclust.exceptions import InvalidInputError

__all__ = ["BRIDGE_MARGIN", "CHAIN_MARGIN", "MANIFEST", "SWEEP_SCHEMA", "Result"]

SWEEP_SCHEMA: dict[str, pl.DataType] = {
    "threshold": pl.Float32(),
    "n_components": pl.UInt32(),
    "largest_component": pl.UInt32(),
}
MANIFEST = "manifest.json"
CHAIN_MARGIN = 0.1
"""A cluster is ``loose`` when its all-pairs ``sim_min`` is below ``threshold - CHAIN_MARGIN``."""
BRIDGE_MARGIN = 0.01
"""A cluster has a ``weak_bridge`` when its bridge similarity is within this of the threshold."""


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
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
        }

    def threshold(self) -> float | None:
        """The strategy's similarity threshold, if it has one (connected components)."""
        value = self.config.get("cluster", {}).get("params", {}).get("threshold")
        return float(value) if isinstance(value, int | float) else None

    def chained_clusters(self) -> pl.DataFrame:
        """Clusters held together by chains of edges rather than by mutual similarity.

        A cluster of at least 2 members is flagged ``loose`` when its all-pairs
        ``sim_min`` is more than :data:`CHAIN_MARGIN` below the clustering threshold
        (members that never reach the threshold directly), and ``weak_bridge`` when it
        has at least 3 members and its ``bridge_similarity`` is within
        :data:`BRIDGE_MARGIN` of the threshold (one edge near the threshold holds it
        together). fastdup's edge statistics cannot show either: every edge is above
        the threshold by construction. Empty without a threshold or the ``intra`` /
        ``edge`` columns.

        Returns:
            ``cluster, size, sim_min, bridge_similarity, loose, weak_bridge``, loosest
            first.

        Example:
            >>> import numpy as np
            >>> from simclust import analyze
            >>> angles = np.radians(np.arange(0, 100, 10))  # an arc: neighbours at cos 0.985
            >>> X = np.c_[np.cos(angles), np.sin(angles)]
            >>> res = analyze(X, threshold=0.98, metrics=["intra", "edge"])
            >>> res.chained_clusters().select("cluster", "size", "loose").rows()
            [(0, 10, True)]

        """
        t = self.threshold()
        cols = ["cluster", "size", "sim_min", "bridge_similarity"]
        out = self.clusters.select(cols).with_columns(
            loose=pl.lit(False), weak_bridge=pl.lit(False)
        )
        if t is None:
            return out.head(0)
        loose = (pl.col("sim_min") < t - CHAIN_MARGIN).fill_null(False)
        weak = (
            (pl.col("size") >= 3) & ((pl.col("bridge_similarity") - t).abs() <= BRIDGE_MARGIN)
        ).fill_null(False)
        return (
            out.with_columns(loose=loose, weak_bridge=weak)
            .filter((pl.col("size") >= 2) & (pl.col("loose") | pl.col("weak_bridge")))
            .sort(["sim_min", "cluster"], nulls_last=True)
        )

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

    def write(
        self, directory: str | Path, *, overwrite: bool = True, report: bool | None = None
    ) -> Path:
        """Write every frame as Parquet, the centroid matrix as ``.npy`` and a manifest.

        With ``report`` (default: the config's ``[output] report``) the HTML report
        (:func:`simclust.report.write_report`) is written beside them as ``report.html``;
        image thumbnails are found under the input folder when the ids are image paths.

        Atomic: everything is written into a temporary sibling folder that replaces
        ``directory`` only when complete, so a failure (or Ctrl-C) leaves either the
        previous contents or nothing, never a partial folder.

        Returns:
            The output folder.

        Raises:
            FileExistsError: ``directory`` exists and ``overwrite`` is false.

        Example:
            >>> import numpy as np, tempfile, pathlib
            >>> from simclust import analyze
            >>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
            >>> _ = analyze(np.eye(3), threshold=0.5).write(out)
            >>> sorted(p.name for p in out.iterdir())[:3]
            ['assignments.parquet', 'centroid_matrix.npy', 'centroid_matrix_clusters.npy']

        """
        target = Path(directory)
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} exists (pass overwrite=True to replace it)")
        target.parent.mkdir(parents=True, exist_ok=True)
        with _staging(target) as tmp:
            files = []
            for name, df in self.frames().items():
                df.write_parquet(tmp / f"{name}.parquet", statistics=True)
                files.append(f"{name}.parquet")
            arrays = {
                "centroid_matrix": self.centroid_matrix,
                "centroid_matrix_clusters": self.centroid_matrix_clusters,
                **self.arrays,
            }
            for name, arr in arrays.items():
                np.save(tmp / f"{name}.npy", np.asarray(arr), allow_pickle=False)
                files.append(f"{name}.npy")
            manifest = {
                "config": self.config,
                "versions": self.versions,
                "input": self.fingerprint,
                "summary": self.summary(),
                "timings_s": self.timings,
                "files": sorted(files),
            }
            if report is None:
                report = bool(self.config.get("output", {}).get("report", False))
            if report:
                from simclust.report import write_report

                write_report(self, tmp / "report.html", image_root=self.image_root())
                files.append("report.html")
                manifest["files"] = sorted(files)
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        return target

    @classmethod
    def read(cls, directory: str | Path) -> Result:
        """Load a result that :meth:`write` wrote (frames, arrays, config, versions).

        Raises:
            FileNotFoundError: ``directory`` has no ``manifest.json``.
            InvalidInputError: a file the manifest lists is missing or unreadable.

        Example:
            >>> import numpy as np, tempfile, pathlib
            >>> from simclust import analyze
            >>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
            >>> res = analyze(np.eye(3), threshold=0.5)
            >>> back = Result.read(res.write(out, report=False))
            >>> back.clusters.equals(res.clusters), back.config == res.config
            (True, True)

        """
        root = Path(directory)
        manifest_path = root / MANIFEST
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{root} holds no {MANIFEST}: not a simclust result folder")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            files = set(manifest["files"])
            frames_ = {
                name[: -len(".parquet")]: pl.read_parquet(root / name)
                for name in sorted(files)
                if name.endswith(".parquet")
            }
            arrays = {
                name[: -len(".npy")]: np.load(root / name, allow_pickle=False)
                for name in sorted(files)
                if name.endswith(".npy")
            }
            core = {
                n: frames_.pop(n) for n in ("assignments", "clusters", "inter", "edges", "sweep")
            }
            matrix = arrays.pop("centroid_matrix")
            matrix_ids = arrays.pop("centroid_matrix_clusters")
        except (OSError, KeyError, ValueError) as exc:
            raise InvalidInputError(f"{root}: cannot read the result: {exc}") from exc
        return cls(
            **core,
            centroid_matrix=matrix,
            centroid_matrix_clusters=matrix_ids,
            config=manifest["config"],
            versions=manifest["versions"],
            fingerprint=manifest["input"],
            timings=manifest.get("timings_s", {}),
            tables=frames_,
            arrays=arrays,
        )

    def image_root(self) -> Path | None:
        """The folder the ids are relative to, when the input was an image folder."""
        path = self.config.get("input", {}).get("path")
        if path and Path(path).is_dir():
            return Path(path)
        return None


@contextlib.contextmanager
def _staging(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``target``; on success it replaces ``target``."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        backup = None
        if target.exists():
            backup = target.with_name(f".{target.name}.old-{os.getpid()}-{time.monotonic_ns()}")
            target.rename(backup)
        tmp.rename(target)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
