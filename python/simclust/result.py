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
import re
import secrets
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from simclust.exceptions import InvalidInputError

__all__ = [
    "BRIDGE_MARGIN",
    "CHAIN_MARGIN",
    "MANIFEST",
    "RESULT_FORMAT",
    "RESULT_MARKER",
    "SWEEP_SCHEMA",
    "Result",
    "check_output_dir",
    "record_file",
    "result_files",
]

SWEEP_SCHEMA: dict[str, pl.DataType] = {
    "threshold": pl.Float32(),
    "n_components": pl.UInt32(),
    "largest_component": pl.UInt32(),
}
MANIFEST = "manifest.json"
RESULT_MARKER = "simclust_result"
"""The top-level manifest key (value: :data:`RESULT_FORMAT`) that marks a folder simclust
wrote; only the files its ``files`` list names are ever replaced or removed."""
RESULT_FORMAT = 1
REPORT_FILE = "report.html"
CORE_FRAMES = ("assignments", "clusters", "inter", "edges", "sweep")
CORE_ARRAYS = ("centroid_matrix", "centroid_matrix_clusters")
_STEM = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_SUFFIXES = (".parquet", ".npy", ".html")
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
                _check_stem(kind, stem)
                if stem in core:
                    raise InvalidInputError(f"{kind} name {stem!r} is a built-in {kind}'s name")
        names += [f"{stem}.parquet" for stem in (*CORE_FRAMES, *self.tables)]
        names += [f"{stem}.npy" for stem in (*CORE_ARRAYS, *self.arrays)]
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
        names = self.file_names(report=report)
        inp = self.config.get("input", {}).get("path")
        old = check_output_dir(target, new_files=names, input_path=inp)
        if not overwrite and target.is_dir() and any(target.iterdir()):
            raise FileExistsError(f"{target} exists (pass overwrite=True to replace it)")
        fresh = not os.path.lexists(target)
        if fresh:
            target.parent.mkdir(parents=True, exist_ok=True)
            stage = _make_dir(target.parent, f".{target.name}.tmp-")
        else:
            stage = _make_dir(target, ".simclust-tmp-")
        try:
            for name, df in self.frames().items():
                df.write_parquet(stage / f"{name}.parquet", statistics=True)
            arrays = {
                "centroid_matrix": self.centroid_matrix,
                "centroid_matrix_clusters": self.centroid_matrix_clusters,
                **self.arrays,
            }
            for name, arr in arrays.items():
                np.save(stage / f"{name}.npy", np.asarray(arr), allow_pickle=False)
            if report:
                from simclust.report import write_report

                write_report(self, stage / REPORT_FILE, image_root=self.image_root())
            manifest = {
                RESULT_MARKER: RESULT_FORMAT,
                "config": _portable_config(self.config),
                "versions": self.versions,
                "input": self.fingerprint,
                "summary": self.summary(),
                "timings_s": self.timings,
                "files": names,
            }
            _write_text(stage / MANIFEST, json.dumps(manifest, indent=2, default=str) + "\n")
            if fresh:
                stage.rename(target)
            else:
                _swap_in(stage, target, names, old)
        finally:
            if stage.exists():
                shutil.rmtree(stage, ignore_errors=True)
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
            if not _is_plain_file(name):
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
        )

    def image_root(self) -> Path | None:
        """The folder the ids are relative to, when the input was an image folder."""
        path = self.config.get("input", {}).get("path")
        if isinstance(path, str) and path and Path(path).is_dir():
            return Path(path)
        return None


# --------------------------------------------------------------------------- the folder


def _check_stem(kind: str, stem: object) -> None:
    if not isinstance(stem, str) or not _STEM.fullmatch(stem) or ".." in stem:
        raise InvalidInputError(
            f"{kind} name {stem!r} is not a plain file name (letters, digits, '_', '.', '-'; "
            "no path separator, no '..')"
        )


def _is_plain_file(name: object) -> bool:
    """A file name simclust writes: a plain stem and a suffix it uses, or the manifest."""
    if not isinstance(name, str) or not _STEM.fullmatch(name) or ".." in name:
        return False
    return name == MANIFEST or name.endswith(_SUFFIXES)


def result_files(directory: Path) -> list[str] | None:
    """The files listed by the simclust manifest in ``directory``; ``None``: there is none.

    A manifest counts only with :data:`RESULT_MARKER` and a ``files`` list of plain
    names: a ``manifest.json`` of any other tool (web apps, extensions, models) does not.
    """
    path = directory / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get(RESULT_MARKER), int):
        return None
    files = data.get("files")
    if not isinstance(files, list) or not all(_is_plain_file(f) for f in files):
        return None
    return list(files)


def check_output_dir(
    directory: str | Path,
    *,
    new_files: Iterable[str] = (),
    input_path: str | Path | None = None,
) -> list[str]:
    """Refuse an output folder simclust must not write into, before any work is done.

    Allowed: an absent or empty folder, or one holding a simclust result (a
    ``manifest.json`` with :data:`RESULT_MARKER`). Refused: a file, a broken symlink, a
    non-empty folder without a simclust manifest (e.g. an image folder, or one whose
    ``manifest.json`` another tool wrote), the input folder itself, and a folder holding
    a file named like one of ``new_files`` that the old manifest does not list.

    Returns:
        The files the folder's simclust manifest lists (empty when there is none).

    Raises:
        FileExistsError: naming the folder and the reason.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "notes.txt").write_text("mine")
        >>> check_output_dir(d / "new")
        []
        >>> try:
        ...     check_output_dir(d)
        ... except FileExistsError as exc:
        ...     "not a simclust output" in str(exc)
        True

    """
    target = Path(directory)
    shown = repr(str(target))
    if target.is_symlink() and not target.exists():
        raise FileExistsError(f"output folder {shown} is a broken symbolic link")
    if input_path is not None:
        with_input = os.path.lexists(target) and os.path.lexists(input_path)
        if with_input and os.path.samefile(target, input_path):
            raise FileExistsError(
                f"output folder {shown} is the input; choose another folder for the results"
            )
    if not target.exists():
        return []
    if not target.is_dir():
        raise FileExistsError(f"output folder {shown} is a file")
    own = result_files(target)
    if own is None:
        if any(target.iterdir()):
            raise FileExistsError(
                f"output folder {shown} is not empty and is not a simclust output (no "
                f"{MANIFEST} written by simclust); refusing to write into it: choose a new "
                "or empty folder"
            )
        return []
    ours = {*own, MANIFEST}
    for name in sorted({*new_files, *own, MANIFEST}):
        path = target / name
        if name not in ours and os.path.lexists(path):
            raise FileExistsError(
                f"output folder {shown} holds {name!r}, which simclust did not write there; "
                "refusing to replace it: move it or choose another folder"
            )
        if path.is_dir() and not path.is_symlink():
            raise FileExistsError(f"output folder {shown}: {name!r} is a folder; refusing")
    return own


def record_file(directory: str | Path, name: str) -> None:
    """Add ``name`` to the ``files`` of the simclust manifest in ``directory`` (atomically).

    Used by ``simclust report`` after writing ``report.html`` into a result folder, so a
    later run replaces it. Nothing happens if the folder holds no simclust manifest.
    """
    root = Path(directory)
    own = result_files(root)
    if own is None or name in own or not _is_plain_file(name):
        return
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    manifest["files"] = sorted([*own, name])
    tmp = root / f".{MANIFEST}.{secrets.token_hex(6)}.tmp"
    try:
        _write_text(tmp, json.dumps(manifest, indent=2, default=str) + "\n")
        os.replace(tmp, root / MANIFEST)
    finally:
        tmp.unlink(missing_ok=True)


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


def _write_text(path: Path, text: str) -> None:
    """Create ``path`` (it must not exist) with the umask's permissions and ``text``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _make_dir(parent: Path, prefix: str) -> Path:
    """A new uniquely named folder in ``parent``, with the umask's permissions.

    (:func:`tempfile.mkdtemp` would make it 0700, and the results would stay so.)
    """
    while True:
        path = parent / f"{prefix}{secrets.token_hex(6)}"
        try:
            os.mkdir(path, 0o777)
        except FileExistsError:
            continue
        return path


def _swap_in(stage: Path, target: Path, names: list[str], old: list[str]) -> None:
    """Move the files in ``stage`` into ``target``, replacing and removing only ``old``.

    Each replaced file is first moved into ``stage/.previous``; on any failure (or
    Ctrl-C) the new files are removed and the previous ones moved back, so the folder
    holds the complete previous result again. The manifest moves last.
    """
    backup = stage / ".previous"
    backup.mkdir()
    new = [*sorted(set(names) - {MANIFEST}), MANIFEST]
    stale = sorted(set(old) - set(new))
    try:
        for name in new:
            if os.path.lexists(target / name):
                os.replace(target / name, backup / name)
            os.replace(stage / name, target / name)
        for name in stale:
            if os.path.lexists(target / name):
                os.replace(target / name, backup / name)
    except BaseException:
        for name in [*new, *stale]:
            if name in new and not os.path.lexists(stage / name):
                (target / name).unlink(missing_ok=True)  # placed: take the new file out
            if os.path.lexists(backup / name):
                os.replace(backup / name, target / name)
        raise
