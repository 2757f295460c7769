# ruff: noqa: N803, N806  (X: the field's matrix notation)
"""The bad-input and fault matrix: every bad input or failing plugin, through the Python
API or the CLI, ends in a simclust error of the right class with a one-line message
(API), or a one-line ``error: ...`` and the documented exit code (CLI).

``FAULTS`` is the table: input -> expected exception type and message pattern, or
expected exit code and message pattern. Value tests below it check that the inputs
simclust accepts are computed correctly (sweeps below the graph threshold, the edge
estimate, decoded ids, symlinked image ids, oversized images, inferred fastdup shapes).
"""

from __future__ import annotations

import json
import os
import re
import struct
import sys
import typing
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
import simclust
import simclust.graph
from click.testing import CliRunner
from PIL import Image
from scipy.sparse.csgraph import connected_components as scipy_cc
from simclust.cli import main
from simclust.exceptions import (
    ConfigError,
    InvalidInputError,
    ParameterError,
    PluginError,
    ShapeError,
)
from simclust.graph import DEFAULT_MAX_EDGES, estimate_edges
from simclust.io import fastdup as fd
from simclust.io.embed import PixelEmbedder
from simclust.testing import make_embeddings

X40 = make_embeddings(40, 8, n_clusters=4, seed=1)


def _with(value: float, row: int) -> np.ndarray:
    X = X40.copy()
    X[row, 2] = value
    return X


def _unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _components(S: np.ndarray, t: float) -> int:
    """Connected components (scipy) of the ε-graph ``S >= t`` of a dense similarity."""
    g = np.asarray(S >= np.float32(t))
    np.fill_diagonal(g, False)
    i, j = np.nonzero(np.triu(g))
    n = S.shape[0]
    count, _ = scipy_cc(sp.coo_matrix((np.ones(i.size), (i, j)), shape=(n, n)))
    return int(count)


# --------------------------------------------------------------------------- plugins


class Quitter(simclust.Strategy):
    """Calls sys.exit in the method named by ``where``."""

    def __init__(self, *, where: str = "fit") -> None:
        self.where = where
        if where == "__init__":
            sys.exit(0)

    def graph_spec(self) -> simclust.base.GraphSpec | None:
        if self.where == "graph_spec":
            sys.exit(0)
        return None

    def fit(self, X, *, graph=None):
        if self.where == "fit":
            sys.exit(0)
        self.labels_ = np.zeros(len(X), dtype=np.int64)
        return self


class Shuffler(simclust.Strategy):
    """Shuffles its input in place (would corrupt every metric after it)."""

    def fit(self, X, *, graph=None):
        np.random.default_rng(0).shuffle(X)
        self.labels_ = np.zeros(len(X), dtype=np.int64)
        return self


class EdgeSorter(simclust.Strategy):
    """Sorts the shared graph's similarities in place."""

    def graph_spec(self) -> simclust.base.GraphSpec:
        return simclust.base.GraphSpec("threshold", threshold=0.5)

    def fit(self, X, *, graph=None):
        graph.similarity.sort()
        self.labels_ = np.zeros(len(X), dtype=np.int64)
        return self


class QuitMetric(simclust.Metric):
    outputs = {}  # noqa: RUF012

    def compute(self, ctx):
        sys.exit(3)


class LabelEditor(simclust.Metric):
    outputs = {}  # noqa: RUF012

    def compute(self, ctx):
        ctx.labels[:] = 0
        return {}


class ObjectArray(simclust.Metric):
    outputs = {}  # noqa: RUF012
    arrays = ("blob",)

    def compute(self, ctx):
        return {"blob": np.array([{"a": 1}, None], dtype=object)}


class GhostClusters(simclust.Metric):
    outputs = {"clusters": {"cluster": pl.Int64(), "ghost": pl.Float64()}}  # noqa: RUF012

    def compute(self, ctx):
        ids = [*np.unique(ctx.labels[ctx.labels >= 0]).tolist(), 999]
        return {"clusters": pl.DataFrame({"cluster": ids, "ghost": [1.0] * len(ids)})}


class NotAMapping(simclust.Metric):
    outputs = {}  # noqa: RUF012

    def compute(self, ctx):
        return None


class Faulty:
    @simclust.hookimpl
    def simclust_register_strategies(self, registry):
        registry.register("quitter", Quitter)
        registry.register("shuffler", Shuffler)
        registry.register("edge-sorter", EdgeSorter)

    @simclust.hookimpl
    def simclust_register_metrics(self, registry):
        registry.register("quit-metric", QuitMetric)
        registry.register("label-editor", LabelEditor)
        registry.register("object-array", ObjectArray)
        registry.register("ghost-clusters", GhostClusters)
        registry.register("not-a-mapping", NotAMapping)


class ExitOnFinish:
    @simclust.hookimpl
    def simclust_run_finished(self, result, config):
        sys.exit(0)


def faulty_host(*extra: Any) -> simclust.host.Host:
    pm = simclust.get_plugin_manager(autoload=False)
    pm.register(Faulty(), name="faulty")
    for i, plugin in enumerate(extra):
        pm.register(plugin, name=f"extra{i}")
    info = {"faulty": simclust.host.PluginInfo("faulty", "simclust-faulty", "1")}
    return simclust.host.build_host(pm, plugins=info)


# --------------------------------------------------------------------------- files


def npy(tmp: Path, X: np.ndarray = X40, name: str = "x.npy") -> Path:
    path = tmp / name
    np.save(path, X)
    return path


def fastdup_dir(tmp: Path, n: int = 12, d: int = 6, sidecar: bool = True) -> Path:
    X = make_embeddings(n, d, n_clusters=2, seed=5)
    out = tmp / "feats"
    fd.write_fastdup_features(out, X, [f"img_{i}.jpg" for i in range(n)])
    if not sidecar:
        (out / fd.FEATURES_META_NAME).unlink()
    return out


def big_png(path: Path, width: int = 12000, height: int = 12000) -> Path:
    """A valid grey PNG claiming ``width x height`` pixels: ~150 KB on disk, never decoded
    in full here (the rows are compressed one at a time)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    comp = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0 + black pixels
    body = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    path.write_bytes(png)
    return path


def write_toml(tmp: Path, text: str | bytes, name: str = "run.toml") -> Path:
    path = tmp / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def parquet(tmp: Path, ids: list[Any]) -> Path:
    path = tmp / "x.parquet"
    X = X40[: len(ids)]
    pl.DataFrame({"id": ids, "vector": X.tolist()}).write_parquet(path)
    return path


def denied(*args: Any, **kwargs: Any) -> Any:
    raise PermissionError(13, "Permission denied", "/data/locked")


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Fault:
    """``make(tmp_path, monkeypatch)`` either performs a Python call (``api``) or returns
    CLI arguments (``cli``); ``expect`` is the exception class (api) or the exit code."""

    kind: str
    make: Callable[[Path, pytest.MonkeyPatch], Any]
    expect: type[BaseException] | int
    pattern: str


def api(make, exc, pattern):
    return Fault("api", make, exc, pattern)


def cli(make, code, pattern):
    return Fault("cli", make, code, pattern)


def _env(name: str, value: str, then: Callable[[], Any]) -> Callable[[Path, Any], Any]:
    def run(tmp, mp):
        mp.setenv(name, value)
        return then()

    return run


def _truncate_by_rows(tmp):
    out = fastdup_dir(tmp, n=12, d=6)
    dat = out / fd.FEATURES_NAME
    dat.write_bytes(dat.read_bytes()[: -12 * 4])  # 12 floats = one float per row
    return simclust.analyze(out)


def _half_csv(tmp):
    out = fastdup_dir(tmp, n=12, d=6)
    csv = out / fd.FEATURES_CSV_NAME
    lines = csv.read_text(encoding="utf-8").splitlines()
    csv.write_text("\n".join(lines[:7]) + "\n", encoding="utf-8")  # header + 6 of 12
    return simclust.analyze(out)


def _permission_fastdup(tmp, mp):
    out = fastdup_dir(tmp)
    mp.setattr(fd, "_read_csv", denied)
    return ["analyze", out, "--out", tmp / "res"]


def _permission_images(tmp, mp):
    import simclust.io.images as images_mod

    folder = tmp / "imgs"
    folder.mkdir()
    Image.new("RGB", (16, 16)).save(folder / "a.png")
    mp.setattr(images_mod, "find_images", denied)
    return ["analyze", folder, "--out", tmp / "res"]


def _big_png_only(tmp):
    folder = tmp / "imgs"
    folder.mkdir()
    big_png(folder / "big.png")
    return simclust.analyze(folder)


def _cli_with_host(host_factory, args):
    def run(tmp, mp):
        mp.setattr(simclust.cli, "get_host", lambda: host_factory())
        return args(tmp)

    return run


FAULTS: dict[str, Fault] = {
    # ---- bad rows and shapes (existing behaviour)
    "nan-row": api(
        lambda t, m: simclust.analyze(_with(np.nan, 3)), InvalidInputError, r"NaN or Inf.*: 3$"
    ),
    "inf-row": api(
        lambda t, m: simclust.analyze(_with(np.inf, 7)), InvalidInputError, r"NaN or Inf.*: 7$"
    ),
    "zero-row": api(
        lambda t, m: simclust.analyze(np.vstack([X40, np.zeros((1, 8))])),
        InvalidInputError,
        r"zero norm.*: 40$",
    ),
    "no-rows": api(
        lambda t, m: simclust.analyze(np.zeros((0, 8))), ShapeError, r"non-empty 2-D.*\(0, 8\)"
    ),
    "one-d": api(lambda t, m: simclust.analyze(np.ones(5)), ShapeError, r"got shape \(5,\)"),
    "three-d": api(
        lambda t, m: simclust.analyze(np.ones((2, 3, 4))), ShapeError, r"got shape \(2, 3, 4\)"
    ),
    "strings": api(
        lambda t, m: simclust.analyze(np.array([["a", "b"], ["c", "d"]])),
        InvalidInputError,
        r"real numbers, got dtype <U1",
    ),
    "ragged-rows": api(
        lambda t, m: simclust.analyze([[1.0, 2.0], [3.0]]),
        InvalidInputError,
        r"not an N x D array of numbers",
    ),
    "ids-length": api(
        lambda t, m: simclust.analyze(X40, ids=["a"]), ShapeError, r"ids has 1 entries.*40 rows"
    ),
    "unknown-strategy": api(
        lambda t, m: simclust.analyze(X40, strategy="dbscan"),
        ConfigError,
        r"cluster.strategy: unknown strategy 'dbscan'; available: connected-components",
    ),
    "unknown-metric": api(
        lambda t, m: simclust.analyze(X40, metrics=["nope"]),
        ConfigError,
        r"metrics.use: unknown metric 'nope'",
    ),
    "unknown-section": api(
        lambda t, m: simclust.analyze(X40, config={"clusters": {}}),
        ConfigError,
        r"unknown section\(s\) clusters",
    ),
    "truncated-npy": api(
        lambda t, m: simclust.analyze(
            (t / "x.npy").write_bytes(npy(t).read_bytes()[:-40]) and t / "x.npy"
        ),
        InvalidInputError,
        r"cannot read .*x\.npy",
    ),
    "truncated-dat-bytes": api(
        lambda t, m: (
            (t / "feats" / fd.FEATURES_NAME).write_bytes(
                (fastdup_dir(t) / fd.FEATURES_NAME).read_bytes()[:-3]
            )
            and simclust.analyze(t / "feats")
        ),
        InvalidInputError,
        r"not a multiple of 4 \(float32\): truncated file",
    ),
    "cli-missing-input": cli(lambda t, m: ["analyze", t / "nope.npy"], 2, r"does not exist"),
    "cli-unknown-strategy": cli(
        lambda t, m: ["analyze", npy(t), "--strategy", "dbscan", "--out", t / "o"],
        2,
        r"unknown strategy 'dbscan'",
    ),
    "cli-bad-param": cli(
        lambda t, m: ["analyze", npy(t), "--param", "threshold=high", "--out", t / "o"],
        2,
        r"cluster.threshold: .* expects float, got str 'high'",
    ),
    # ---- item 4: sweep values out of range, or a sweep graph over the budget
    "sweep-above-one": api(
        lambda t, m: simclust.analyze(X40, config={"graph": {"threshold": 0.9, "sweep": [1.5]}}),
        ConfigError,
        r"graph.sweep: thresholds are cosine similarities in \[-1, 1\], got 1.5",
    ),
    "sweep-below-minus-one": api(
        lambda t, m: simclust.analyze(X40, config={"graph": {"threshold": 0.9, "sweep": [-2]}}),
        ConfigError,
        r"graph.sweep: .* got -2",
    ),
    "graph-threshold-out-of-range": api(
        lambda t, m: simclust.analyze(X40, config={"graph": {"kind": "threshold", "threshold": 2}}),
        ConfigError,
        r"graph.threshold: must be a cosine similarity in \[-1, 1\], got 2",
    ),
    "sweep-graph-over-budget": api(
        lambda t, m: simclust.analyze(
            X40, threshold=0.9, max_edges=100, config={"graph": {"threshold": 0.9, "sweep": [-1]}}
        ),
        ConfigError,
        r"graph.sweep: -1 is below the graph's threshold 0.9, .* 780 edges .*max_edges = 100\b",
    ),
    # ---- item 6: fastdup shapes that cannot be right
    "fastdup-truncated-by-n-floats": api(
        lambda t, m: _truncate_by_rows(t),
        InvalidInputError,
        r"atrain_features.dat holds 240 bytes, but atrain_features.dat.json says 12 rows x 6 "
        r"float32 \(288 bytes\): truncated",
    ),
    "fastdup-half-csv": api(
        lambda t, m: _half_csv(t),
        InvalidInputError,
        r"atrain_features.dat.csv lists 6 rows but atrain_features.dat.json says .* 12: "
        r"the CSV is incomplete",
    ),
    "fastdup-d-contradicts-sidecar": api(
        lambda t, m: fd.read_fastdup_features(fastdup_dir(t), d=4),
        InvalidInputError,
        r"d = 4 contradicts atrain_features.dat.json, which gives dim = 6",
    ),
    "fastdup-bad-sidecar": api(
        lambda t, m: (
            (fastdup_dir(t) / fd.FEATURES_META_NAME).write_text('{"rows": 12, "dim": 0}')
            and fd.read_fastdup_features(t / "feats")
        ),
        InvalidInputError,
        r"'dim' must be a positive integer, got 0",
    ),
    # ---- item 7: thread counts
    "n-threads-huge": api(
        lambda t, m: simclust.analyze(X40, n_threads=10**9),
        ConfigError,
        r"run.threads: .*1000000000.* more than",
    ),
    "cli-threads-huge": cli(
        lambda t, m: ["analyze", npy(t), "--threads", 10**9, "--out", t / "o"],
        2,
        r"run.threads: .* more than",
    ),
    "toml-threads-huge": cli(
        lambda t, m: [
            "run",
            write_toml(t, f'[input]\npath = "{npy(t)}"\n[run]\nthreads = 1000000000\n'),
        ],
        2,
        r"run.threads: .* more than",
    ),
    **{
        f"env-threads-{value}": api(
            _env("SIMCLUST_NUM_THREADS", value, lambda: simclust.analyze(X40)),
            ConfigError,
            r"run.threads: SIMCLUST_NUM_THREADS",
        )
        for value in ("1e9", "abc", "0", "-1", "1000000000")
    },
    "env-threads-decoding-pool": api(
        _env(
            "SIMCLUST_NUM_THREADS",
            "abc",
            lambda: PixelEmbedder().embed([Path("a.png"), Path("b.png")]),
        ),
        ParameterError,
        r"SIMCLUST_NUM_THREADS",
    ),
    "n-jobs-huge": api(
        lambda t, m: PixelEmbedder().embed([Path("a.png")], n_jobs=10**9),
        ParameterError,
        r"^n_jobs = 1000000000 is more than",
    ),
    "images-n-jobs-huge": api(
        lambda t, m: (
            (t / "imgs").mkdir()
            or Image.new("RGB", (16, 16)).save(t / "imgs" / "a.png")
            or simclust.analyze(
                t / "imgs", config={"input": {"embedder_params": {"n_jobs": 10**9}}}
            )
        ),
        ParameterError,
        r"n_jobs = 1000000000 is more than",
    ),
    # ---- item 10: graph size budget
    "epsilon-graph-over-budget": api(
        lambda t, m: simclust.analyze(
            make_embeddings(4000, 8, seed=2), threshold=-1.0, max_edges=1_000_000
        ),
        ConfigError,
        r"ε-graph at threshold -1 over 4,000 rows would have about 8.0 M edges .*"
        r"max_edges = 1,000,000 .*\[run\] max_edges, analyze\(max_edges=...\) or --max-edges",
    ),
    "knn-graph-over-budget": api(
        lambda t, m: simclust.analyze(X40, graph="knn", k=10, threshold=0.5, max_edges=100),
        ConfigError,
        r"the 10-NN graph over 40 rows has up to 400 edges, more than the edge budget",
    ),
    "max-edges-zero": api(
        lambda t, m: simclust.analyze(X40, max_edges=0),
        ConfigError,
        r"run.max_edges: expected a positive int, got 0",
    ),
    "cli-max-edges": cli(
        lambda t, m: ["analyze", npy(t), "--threshold", -1, "--max-edges", 500, "--out", t / "o"],
        2,
        r"about 780 edges \(estimated|about 780 edges \(counted",
    ),
    "cli-sweep-max-edges": cli(
        lambda t, m: ["sweep", npy(t), "--thresholds", "-1,0.5", "--max-edges", 500],
        2,
        r"ε-graph at threshold -1 over 40 rows .* max_edges = 500",
    ),
    # ---- item 11: sys.exit in a plugin
    **{
        f"sys-exit-in-{where}": api(
            lambda t, m, where=where: simclust.analyze(
                X40, strategy="quitter", where=where, host=faulty_host()
            ),
            PluginError,
            rf"strategy 'quitter' \(plugin 'faulty' from simclust-faulty\) called sys.exit\(0\) "
            rf"in {where}",
        )
        for where in ("__init__", "graph_spec", "fit")
    },
    "sys-exit-in-metric": api(
        lambda t, m: simclust.analyze(X40, metrics=["quit-metric"], host=faulty_host()),
        PluginError,
        r"metric 'quit-metric' .* called sys.exit\(3\) in compute",
    ),
    "sys-exit-in-hook": api(
        lambda t, m: simclust.analyze(X40, host=faulty_host(ExitOnFinish())),
        PluginError,
        r"plugin 'extra0' failed in simclust_run_finished: SystemExit",
    ),
    "cli-sys-exit": cli(
        _cli_with_host(
            faulty_host, lambda t: ["analyze", npy(t), "--strategy", "quitter", "--out", t / "o"]
        ),
        3,
        r"strategy 'quitter' .* called sys.exit\(0\) in fit",
    ),
    # ---- item 12: plugins get read-only inputs
    "strategy-shuffles-input": api(
        lambda t, m: simclust.analyze(X40, strategy="shuffler", host=faulty_host()),
        PluginError,
        r"strategy 'shuffler' .* failed in fit: ValueError: .*read-only",
    ),
    "strategy-sorts-graph": api(
        lambda t, m: simclust.analyze(X40, strategy="edge-sorter", host=faulty_host()),
        PluginError,
        r"strategy 'edge-sorter' .* failed in fit: ValueError: .*read-only",
    ),
    "metric-edits-labels": api(
        lambda t, m: simclust.analyze(X40, metrics=["label-editor"], host=faulty_host()),
        PluginError,
        r"metric 'label-editor' .* failed in compute: ValueError: .*read-only",
    ),
    # ---- item 18: one-line messages instead of raw exceptions
    "output-dir-int-cli": cli(
        lambda t, m: ["run", write_toml(t, f'[input]\npath = "{npy(t)}"\n[output]\ndir = 5\n')],
        2,
        r"output.dir: expected a string path, got int 5",
    ),
    "output-dir-int-api": api(
        lambda t, m: simclust.run({"input": {"path": str(npy(t))}, "output": {"dir": 5}}),
        ConfigError,
        r"output.dir: expected str, got int 5",
    ),
    "config-not-utf8": cli(
        lambda t, m: ["run", write_toml(t, b'[cluster]\nstrategy = "k\xe9means"\n')],
        2,
        r"run.toml: not a UTF-8 text file \(byte 23",
    ),
    "config-is-a-folder": cli(
        lambda t, m: ["run", t],
        2,
        r"cannot read config file",
    ),
    "metric-object-array": api(
        lambda t, m: simclust.analyze(X40, metrics=["object-array"], host=faulty_host()),
        PluginError,
        r"metric 'object-array' .* returned array 'blob' of dtype object, not numbers",
    ),
    "metric-not-a-mapping": api(
        lambda t, m: simclust.analyze(X40, metrics=["not-a-mapping"], host=faulty_host()),
        PluginError,
        r"metric 'not-a-mapping' .* returned NoneType from compute",
    ),
    "rows-dict": api(
        lambda t, m: simclust.analyze(X40, rows={"label": list(range(40))}),
        ParameterError,
        r"rows must be a polars DataFrame, got dict",
    ),
    "permission-fastdup": cli(_permission_fastdup, 2, r"cannot read '/data/locked': Permission"),
    "permission-images": cli(_permission_images, 2, r"cannot read '/data/locked': Permission"),
    # ---- item 19: the embedder's image-size limit
    "huge-png": api(
        lambda t, m: _big_png_only(t),
        InvalidInputError,
        r"none of the 1 images .* big.png: 12000 x 12000 = 144,000,000 pixels, more than the "
        r"limit max_pixels = 50,000,000 \(not decoded\)",
    ),
    # ---- item 20: no silent fallbacks
    "null-parquet-id": api(
        lambda t, m: simclust.analyze(parquet(t, ["a", None, "c"])),
        InvalidInputError,
        r"id column 'id' has 1 null\(s\) \(rows 1\)",
    ),
    "id-none": api(
        lambda t, m: simclust.analyze(X40[:3], ids=["a", "b", None]),
        InvalidInputError,
        r"ids\[2\] is null",
    ),
    "id-not-utf8": api(
        lambda t, m: simclust.analyze(X40[:2], ids=[b"a.png", b"\xff.png"]),
        InvalidInputError,
        r"ids\[1\] = b'\\xff.png' is not UTF-8",
    ),
    "id-float": api(
        lambda t, m: simclust.analyze(X40[:2], ids=[1.5, 2.5]),
        InvalidInputError,
        r"ids\[0\] is float 1.5",
    ),
    "metric-rows-for-missing-clusters": api(
        lambda t, m: simclust.analyze(X40, metrics=["ghost-clusters"], host=faulty_host()),
        PluginError,
        r"metric 'ghost-clusters' .* returned 1 'cluster' value\(s\) for clusters that do not "
        r"exist \(e.g. 999\)",
    ),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault(name, tmp_path, monkeypatch):
    fault = FAULTS[name]
    if fault.kind == "api":
        assert isinstance(fault.expect, type)
        with pytest.raises(fault.expect) as info:
            fault.make(tmp_path, monkeypatch)
        message = str(info.value)
        assert "\n" not in message, message
        assert re.search(fault.pattern, message), (fault.pattern, message)
        assert isinstance(info.value, simclust.SimclustError)
    else:
        args = [str(a) for a in fault.make(tmp_path, monkeypatch)]
        r = CliRunner().invoke(main, args)
        assert r.exit_code == fault.expect, (r.exit_code, r.stdout, r.stderr, r.exception)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
        assert "internal error" not in lines[0] and "Traceback" not in r.stderr
        assert re.search(fault.pattern, lines[0]), (fault.pattern, lines[0])


def test_the_table_covers_both_interfaces():
    kinds = {f.kind for f in FAULTS.values()}
    assert kinds == {"api", "cli"}
    assert len(FAULTS) >= 60


# --------------------------------------------------------------------------- item 4


@pytest.mark.parametrize("graph", ["threshold", "knn"])
def test_sweep_below_the_threshold_counts_the_full_graph(graph):
    """threshold 0.9 with sweep [0, 0.5]: the sweep is counted on the graph at 0, the
    clusters and the edges stay the graph's at 0.9 (scipy on the dense matrix)."""
    X = make_embeddings(60, 6, n_clusters=5, seed=4)
    k = 6
    sweep = [0.0, 0.5, 0.9, 0.95]
    res = simclust.analyze(
        X,
        threshold=0.9,
        graph=graph,
        k=k,
        metrics=["intra"],
        config={"graph": {"threshold": 0.9, "sweep": sweep}},
    )
    U = _unit(X).astype(np.float32)
    S = U @ U.T
    if graph == "knn":  # the kNN graph's edges: each row's k most similar others
        np.fill_diagonal(S, -np.inf)
        nbr = np.argsort(-S, axis=1)[:, :k]
        A = np.full_like(S, -np.inf)
        rows = np.repeat(np.arange(len(X)), k)
        A[rows, nbr.ravel()] = S[rows, nbr.ravel()]
        S = np.maximum(A, A.T)
    expected = [_components(S, t) for t in sweep]
    assert res.sweep["n_components"].to_list() == expected
    assert expected[0] < expected[2]  # the low thresholds really differ from the pruned graph
    labels = res.assignments["cluster"].to_numpy()
    assert np.unique(labels).size == expected[2]
    assert res.edges["similarity"].min() >= np.float32(0.9)
    n_edges = int((S[np.triu_indices(len(X), 1)] >= np.float32(0.9)).sum())
    assert res.edges.height == n_edges


def test_sweep_at_or_above_the_threshold_builds_one_graph(monkeypatch):
    calls = []
    real = simclust.graph.build_graph

    def counting(x, spec, **kw):
        calls.append(spec)
        return real(x, spec, **kw)

    monkeypatch.setattr(simclust.graph, "build_graph", counting)
    res = simclust.analyze(X40, threshold=0.6, config={"graph": {"sweep": [0.6, 0.8]}})
    assert [s.threshold for s in calls] == [0.6]
    assert res.sweep.height == 2


def test_default_sweep_starts_below_the_threshold_within_the_budget():
    """The default sweep runs from 0.1 below the threshold on the graph built there; when
    that graph is over the budget, it falls back to the threshold's own graph."""
    res = simclust.analyze(X40, threshold=0.0)
    assert res.sweep["threshold"][0] == pytest.approx(-0.1)
    U = X40.astype(np.float64) / np.linalg.norm(X40.astype(np.float64), axis=1, keepdims=True)
    upper = (U @ U.T)[np.triu_indices(len(X40), 1)].astype(np.float32)
    n_run, n_low = int((upper >= np.float32(0.0)).sum()), int((upper >= np.float32(-0.1)).sum())
    assert 400 <= n_run < n_low  # 400: the outlier scores' 10-NN search fits too
    tight = simclust.analyze(X40, threshold=0.0, max_edges=n_run)
    assert tight.sweep["threshold"][0] == pytest.approx(0.0)
    assert tight.edges.height == n_run
    above = res.sweep.filter(pl.col("threshold") >= -1e-9)
    assert tight.sweep.drop("threshold").rows() == above.drop("threshold").rows()


# --------------------------------------------------------------------------- item 10


@pytest.mark.parametrize("t", [-1.0, 0.3, 0.8, 0.95])
def test_edge_estimate_is_close_to_the_exact_count(t):
    X = _unit(make_embeddings(6000, 16, n_clusters=30, seed=7)).astype(np.float32)
    est = estimate_edges(X, t)
    exact = sum(int((X[i : i + 1000] @ X.T >= np.float32(t)).sum()) for i in range(0, len(X), 1000))
    exact = (exact - len(X)) // 2
    assert not est.exact
    assert est.upper >= est.edges
    assert abs(est.edges - exact) <= 0.15 * exact + 100, (est, exact)
    assert est.upper >= 0.9 * exact


def test_edge_estimate_exact_on_small_inputs():
    X = _unit(X40).astype(np.float32)
    S = X @ X.T
    for t in (-1.0, 0.0, 0.7):
        exact = int((S[np.triu_indices(len(X), 1)] >= np.float32(t)).sum())
        assert estimate_edges(X, t) == (exact, exact, True)


def test_graph_within_budget_is_built():
    X = make_embeddings(300, 8, seed=3)
    res = simclust.analyze(X, threshold=-1.0, max_edges=300 * 299 // 2, metrics=[])
    assert res.edges.height == 300 * 299 // 2
    assert simclust.config.resolve({}, simclust.get_host(autoload=False))["run"]["max_edges"] == (
        DEFAULT_MAX_EDGES
    )


# --------------------------------------------------------------------------- item 6


def test_fastdup_inferred_shape_is_reported(tmp_path):
    out = fastdup_dir(tmp_path, n=12, d=6, sidecar=False)
    with pytest.warns(fd.InferredShapeWarning, match=r"read as 12 rows x 6 dims.*give d"):
        feats = fd.read_fastdup_features(out, mmap=False)
    assert feats.features.shape == (12, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fd.read_fastdup_features(out, d=6)  # given d: nothing to report
    r = CliRunner().invoke(main, ["analyze", str(out), "--out", str(tmp_path / "o"), "--quiet"])
    assert r.exit_code == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: atrain_features.dat: read as 12 rows")


def test_fastdup_writer_sidecar(tmp_path):
    out = fastdup_dir(tmp_path, n=12, d=6)
    meta = json.loads((out / fd.FEATURES_META_NAME).read_text(encoding="utf-8"))
    assert (meta["rows"], meta["dim"], meta["dtype"]) == (12, 6, "float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        feats = fd.read_fastdup_features(out, mmap=False)
    X = make_embeddings(12, 6, n_clusters=2, seed=5)
    np.testing.assert_array_equal(feats.features, X.astype(np.float32))


# --------------------------------------------------------------------------- item 12


class Keeper(simclust.Strategy):
    seen_writeable: typing.ClassVar[list[bool]] = []

    def fit(self, X, *, graph=None):
        Keeper.seen_writeable.append(bool(X.flags.writeable))
        self.labels_ = (np.asarray(X)[:, 0] > 0).astype(np.int64)
        return self


def test_strategy_gets_a_read_only_view():
    class P:
        @simclust.hookimpl
        def simclust_register_strategies(self, registry):
            registry.register("keeper", Keeper)

    pm = simclust.get_plugin_manager(autoload=False)
    pm.register(P(), name="p")
    host = simclust.host.build_host(pm)
    Keeper.seen_writeable.clear()
    res = simclust.analyze(X40, strategy="keeper", metrics=["intra"], host=host)
    assert Keeper.seen_writeable == [False]
    U = _unit(X40)
    labels = (U[:, 0] > 0).astype(np.int64)
    np.testing.assert_array_equal(res.assignments["cluster"].to_numpy(), labels)
    S = U @ U.T
    for c in np.unique(labels):
        m = np.flatnonzero(labels == c)
        sub = S[np.ix_(m, m)][np.triu_indices(m.size, 1)]
        got = res.clusters.filter(pl.col("cluster") == c)["sim_mean"].item()
        assert got == pytest.approx(sub.mean(), abs=1e-5)


# --------------------------------------------------------------------------- item 19


def test_huge_image_refused_undecoded_without_warnings(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    big_png(folder / "big.png")
    assert (folder / "big.png").stat().st_size < 400_000
    Image.new("RGB", (40, 30), (200, 10, 10)).save(folder / "ok.png")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = PixelEmbedder().embed(sorted(folder.iterdir()), n_jobs=2)
    assert [w.category.__name__ for w in seen] == []
    assert [p.name for p in out.paths] == ["ok.png"]
    assert out.bad_files["path"].to_list() == [str(folder / "big.png")]
    assert "more than the limit max_pixels = 50,000,000" in out.bad_files["error"][0]
    # the limit is the embedder's: raised, the same image passes the check (and is decoded)
    small = big_png(tmp_path / "wide.png", width=3000, height=2000)
    assert PixelEmbedder(max_pixels=6_000_000).embed([small], n_jobs=1).features.shape == (1, 465)
    refused = PixelEmbedder(max_pixels=5_999_999).embed([small], n_jobs=1)
    assert refused.bad_files["error"][0].startswith("3000 x 2000 = 6,000,000 pixels")


def test_cli_prints_warnings_on_one_line(tmp_path, monkeypatch):
    def warn_and_fail(*args, **kwargs):
        warnings.warn("first line\nsecond line", UserWarning, stacklevel=1)
        raise ConfigError("stop")

    monkeypatch.setattr(simclust.pipeline, "analyze", warn_and_fail)
    r = CliRunner().invoke(main, ["analyze", str(npy(tmp_path)), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert r.stderr.splitlines() == ["warning: first line second line", "error: stop"]


# --------------------------------------------------------------------------- item 20


def test_bytes_ids_are_decoded(tmp_path):
    ids = np.array([f"img_{i}.png".encode() for i in range(40)])
    res = simclust.analyze(X40, ids=ids, metrics=[])
    assert res.assignments["id"].to_list() == [f"img_{i}.png" for i in range(40)]
    path = tmp_path / "x.npz"
    np.savez(path, embeddings=X40, ids=ids)  # an "S" array: bytes when read back
    res = simclust.analyze(path, metrics=[])
    assert res.assignments["id"].to_list() == [f"img_{i}.png" for i in range(40)]
    bad = tmp_path / "bad.npz"
    np.savez(bad, embeddings=X40, ids=ids[:3])
    with pytest.raises(ShapeError, match=r"ids array 'ids' has shape \(3,\)"):
        simclust.analyze(bad)


def test_symlinked_image_outside_the_folder_keeps_its_name(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    Image.new("RGB", (32, 32), (0, 90, 200)).save(outside / "target.png")
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    Image.new("RGB", (32, 32), (200, 90, 0)).save(folder / "a.png")
    os.symlink(outside / "target.png", folder / "sub" / "link.png")
    os.symlink(outside / "missing.png", folder / "broken.png")  # skipped by find_images
    (folder / "bad.png").write_bytes(b"not a png")
    res = simclust.analyze(folder, metrics=[])
    assert res.assignments["id"].to_list() == ["a.png", "sub/link.png"]
    assert res.tables["bad_files"]["path"].to_list() == ["bad.png"]
