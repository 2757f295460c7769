"""The ``simclust`` command line, end to end, against the Python API and scipy."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
import simclust
from click.testing import CliRunner
from polars.testing import assert_frame_equal
from rich.console import Console
from rich.progress import Progress
from scipy.sparse.csgraph import connected_components
from simclust import config, ops
from simclust.cli import (
    _StageBars,
    exit_code,
    main,
    parse_param,
    parse_thresholds,
    sweep_table,
)
from simclust.exceptions import ConfigError, InvalidInputError, ParameterError, PluginError
from simclust.testing import make_embeddings

FRAMES = ("assignments", "clusters", "inter", "edges", "sweep")


@pytest.fixture(scope="module")
def data():
    return make_embeddings(300, 16, n_clusters=6, seed=3)


@pytest.fixture
def npy(tmp_path, data):
    path = tmp_path / "x.npy"
    np.save(path, data)
    return path


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_ok(r):
    assert r.exit_code == 0, (r.exit_code, r.stderr, r.exception)


def assert_error(r, code, *fragments):
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def assert_written_like(out: Path, expected: simclust.Result):
    for name in FRAMES:
        assert_frame_equal(pl.read_parquet(out / f"{name}.parquet"), expected.frames()[name])


def without_timings(summary):
    return {k: v for k, v in summary.items() if k != "timings_s"}


# --------------------------------------------------------------------------- analyze


def test_analyze_npy_json_matches_api(tmp_path, npy):
    out = tmp_path / "out"
    metrics = "intra,centroid,inter,edge"
    r = invoke(
        "analyze",
        npy,
        "--threshold",
        0.8,
        "--metrics",
        metrics,
        "--out",
        out,
        "--json",
        "--no-report",
        "--threads",
        2,
    )
    assert_ok(r)
    assert r.stderr == ""
    payload = json.loads(r.stdout)
    expected = simclust.analyze(str(npy), threshold=0.8, metrics=metrics.split(","), n_threads=2)
    assert_written_like(out, expected)
    assert without_timings(payload) == {
        **without_timings(expected.summary()),
        "output_dir": str(out.resolve()),
        "files": sorted(p.name for p in out.iterdir()),
        "report": None,
    }
    assert list(payload["timings_s"]) == [*expected.summary()["timings_s"], "write"]
    assert "report.html" not in payload["files"] and "manifest.json" in payload["files"]


def test_analyze_npz_kmeans_with_ids(tmp_path, data):
    path = tmp_path / "x.npz"
    ids = np.array([f"img{i:04d}" for i in range(len(data))])
    np.savez(path, embeddings=data, ids=ids)
    out = tmp_path / "out"
    r = invoke(
        "analyze",
        path,
        "--strategy",
        "kmeans",
        "--n-clusters",
        5,
        "--param",
        "max_iter=50",
        "--metrics",
        "intra,silhouette",
        "--out",
        out,
        "--json",
        "--no-report",
    )
    assert_ok(r)
    expected = simclust.analyze(
        str(path), strategy="kmeans", n_clusters=5, max_iter=50, metrics=["intra", "silhouette"]
    )
    assert_written_like(out, expected)
    assert pl.read_parquet(out / "assignments.parquet")["id"].to_list() == ids.tolist()
    assert json.loads(r.stdout)["n_clusters"] == 5


def test_analyze_parquet_knn_graph_and_params(tmp_path, data):
    path = tmp_path / "x.parquet"
    pl.DataFrame(
        {
            "id": [f"r{i}" for i in range(len(data))],
            "vector": data.tolist(),
            "tag": ["a"] * len(data),
        }
    ).write_parquet(path)
    out = tmp_path / "out"
    r = invoke(
        "analyze",
        path,
        "--graph",
        "knn",
        "--k",
        5,
        "--threshold",
        0.6,
        "--param",
        "min_size=2",
        "--out",
        out,
        "--quiet",
        "--no-report",
    )
    assert_ok(r)
    assert r.stdout == "" and r.stderr == ""
    expected = simclust.analyze(str(path), graph="knn", k=5, threshold=0.6, min_size=2)
    assert_written_like(out, expected)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["cluster"]["params"] == {
        "threshold": 0.6,
        "graph": "knn",
        "k": 5,
        "min_size": 2,
    }


def test_analyze_fastdup_features(tmp_path, data):
    from simclust.io.fastdup import write_fastdup_features

    names = [f"imgs/a,{i}.jpg" for i in range(len(data))]
    write_fastdup_features(tmp_path / "fd", data, names)
    out = tmp_path / "out"
    r = invoke("analyze", tmp_path / "fd", "--threshold", 0.8, "--out", out, "--no-report", "-q")
    assert_ok(r)
    expected = simclust.analyze(data, ids=names, threshold=0.8)
    assert_written_like(out, expected)
    with (tmp_path / "fd" / "atrain_features.dat").open("r+b") as f:
        f.truncate(100)
    r = invoke("analyze", tmp_path / "fd", "--out", tmp_path / "out2", "-q")
    assert_error(r, 2, "truncated")
    assert not (tmp_path / "out2").exists()


def test_analyze_image_folder_with_report(tmp_path):
    from simclust.io.embed import PixelEmbedder
    from simclust.testing.images import make_image_dataset

    root = tmp_path / "imgs"
    make_image_dataset(root, n_images=80, n_groups=4, seed=2)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "out"
    r = invoke("analyze", root, "--threshold", 0.93, "--out", out, "--json")
    assert_ok(r)
    payload = json.loads(r.stdout)
    assert "report.html" in payload["files"] and "bad_files.parquet" in payload["files"]
    bad = pl.read_parquet(out / "bad_files.parquet")
    assert bad["path"].to_list() == ["broken.png"]
    ids = pl.read_parquet(out / "assignments.parquet")["id"].to_list()
    feats = PixelEmbedder().embed([root / i for i in ids], n_jobs=1).features
    expected = simclust.analyze(feats, ids=ids, threshold=0.93)
    assert_written_like(out, expected)
    html = (out / "report.html").read_text()
    assert "data:image/jpeg;base64," in html  # thumbnails found beside the input


def test_analyze_overlays_config_file(tmp_path, npy):
    (tmp_path / "run.toml").write_text(
        "[graph]\nthreshold = 0.95\n"
        '[cluster]\nstrategy = "connected-components"\nthreshold = 0.95\n'
        '[metrics]\nuse = ["intra", "inter"]\n[metrics.inter]\ntop_m = 3\n'
        '[output]\ndir = "cfg-out"\nreport = false\n'
    )
    r = invoke(
        "analyze",
        npy,
        "--config",
        tmp_path / "run.toml",
        "--threshold",
        0.8,
        "--metrics",
        "intra,inter,centroid",
        "--json",
    )
    assert_ok(r)
    out = tmp_path / "cfg-out"  # the config's [output] dir, relative to the config file
    assert json.loads(r.stdout)["output_dir"] == str(out.resolve())
    config = json.loads((out / "manifest.json").read_text())["config"]
    assert config["cluster"]["params"]["threshold"] == 0.8
    assert config["graph"]["threshold"] == 0.8
    assert config["metrics"]["params"]["inter"]["top_m"] == 3
    assert not (out / "report.html").exists()
    expected = simclust.analyze(
        str(npy), threshold=0.8, metrics={"intra": {}, "inter": {"top_m": 3}, "centroid": {}}
    )
    assert_written_like(out, expected)


def test_analyze_summary_and_report(tmp_path, npy):
    out = tmp_path / "out"
    r = invoke("analyze", npy, "--threshold", 0.85, "--out", out)
    assert_ok(r)
    for text in (
        "connected-components",
        "clusters",
        "largest",
        "sim_mean",
        "centroid_sim_mean",
        "report.html",
        "timings",
    ):
        assert text in r.stdout
    assert (out / "report.html").is_file()
    assert "report.html" in json.loads((out / "manifest.json").read_text())["files"]
    assert not list(tmp_path.glob(".out.*"))  # no staging folder left behind
    # a second run replaces a simclust output folder
    assert_ok(invoke("analyze", npy, "--threshold", 0.9, "--out", out, "--quiet", "--no-report"))
    assert not (out / "report.html").exists()


def test_missing_report_module_is_a_warning(tmp_path, npy, monkeypatch):
    monkeypatch.setitem(sys.modules, "simclust.report", None)  # import fails
    out = tmp_path / "out"
    r = invoke("analyze", npy, "--out", out, "--json")
    assert_ok(r)
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("warning: report.html not written")
    assert json.loads(r.stdout)["report"] is None
    assert (out / "clusters.parquet").is_file() and not (out / "report.html").exists()


def test_config_overlay_of_the_analyze_options():
    base = {
        "cluster": {"strategy": "kmeans", "n_clusters": 3},
        "metrics": {"use": ["inter"], "inter": {"top_m": 2}},
        "input": {"features": "f.npy"},
    }
    raw = config.overlay(
        base,
        path="x.npy",
        strategy="connected-components",
        params={"threshold": 0.5},
        metrics=["intra"],
        threads=3,
        out="o",
    )
    assert raw == {
        "cluster": {"strategy": "connected-components", "threshold": 0.5},
        "metrics": {"use": ["intra"]},
        "input": {"path": "x.npy"},
        "run": {"threads": 3},
        "output": {"dir": "o"},
    }
    assert base["cluster"] == {"strategy": "kmeans", "n_clusters": 3}  # not modified


# --------------------------------------------------------------------------- run


def test_run_config(tmp_path, npy):
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        '[input]\npath = "x.npy"\n[cluster]\nstrategy = "kmeans"\nn_clusters = 4\n'
        '[metrics]\nuse = ["intra", "centroid"]\n[output]\ndir = "results"\nreport = false\n'
    )
    r = invoke("run", cfg, "--json")
    assert_ok(r)
    out = tmp_path / "results"
    payload = json.loads(r.stdout)
    assert payload["output_dir"] == str(out.resolve()) and payload["report"] is None
    expected = simclust.analyze(config=cfg)
    assert_written_like(out, expected)
    assert without_timings(payload) == {
        **without_timings(expected.summary()),
        "output_dir": str(out.resolve()),
        "files": sorted(p.name for p in out.iterdir()),
        "report": None,
    }


def test_run_default_output_beside_config_with_report(tmp_path, npy):
    sub = tmp_path / "cfg"
    sub.mkdir()
    cfg = sub / "run.toml"
    cfg.write_text(f'[input]\npath = "{npy.as_posix()}"\n[cluster]\nthreshold = 0.85\n')
    r = invoke("run", cfg, "--quiet")
    assert_ok(r)
    assert r.stdout == ""
    assert (sub / "out" / "clusters.parquet").is_file()
    assert (sub / "out" / "report.html").is_file()
    assert_ok(invoke("run", cfg, "--quiet", "--no-report"))
    assert not (sub / "out" / "report.html").exists()


# --------------------------------------------------------------------------- sweep


def test_sweep_matches_threshold_sweep_and_scipy(npy, data):
    r = invoke("sweep", npy, "--thresholds", "0.7:0.9:0.05", "--json")
    assert_ok(r)
    payload = json.loads(r.stdout)
    thresholds = [0.7, 0.75, 0.8, 0.85, 0.9]
    rows = payload["sweep"]
    assert [row["threshold"] for row in rows] == thresholds
    x = ops.normalize(data)
    src, dst, sim = ops.threshold_edges(x, 0.7)
    direct = ops.threshold_sweep(len(x), src, dst, sim, thresholds)
    assert [row["n_components"] for row in rows] == direct["n_components"].to_list()
    assert [row["largest_component"] for row in rows] == direct["largest_component"].to_list()
    assert payload["n_rows"] == len(x) and payload["n_edges"] == len(src)
    assert payload["graph"] == {"kind": "threshold", "k": None, "threshold": 0.7}

    # independent: scipy's components of the dense float64 similarity matrix at 0.85
    gram = x.astype(np.float64) @ x.astype(np.float64).T
    upper = np.triu(np.ones_like(gram, dtype=bool), 1)
    assert np.abs(gram[upper] - 0.85).min() > 1e-5  # no pair within rounding of 0.85
    adjacency = upper & (gram >= 0.85)
    n_comp, labels = connected_components(sp.csr_matrix(adjacency), directed=False)
    sizes = np.bincount(labels)
    row = rows[thresholds.index(0.85)]
    assert 1 < n_comp < len(x)
    assert row["n_components"] == n_comp
    assert row["largest_component"] == sizes.max()
    assert row["singletons"] == int((sizes == 1).sum())
    assert row["n_edges"] == int(adjacency.sum())


def test_sweep_knn_graph_and_table(npy, data):
    r = invoke("sweep", npy, "--thresholds", "0.8, 0.6", "--graph", "knn", "--k", 5, "--json")
    assert_ok(r)
    rows = json.loads(r.stdout)["sweep"]
    src, dst, sim = ops.knn_edges(ops.normalize(data), 5, 0.6)
    direct = ops.threshold_sweep(len(data), src, dst, sim, [0.6, 0.8])
    assert [row["threshold"] for row in rows] == [0.6, 0.8]
    assert [row["n_components"] for row in rows] == direct["n_components"].to_list()
    assert [row["largest_component"] for row in rows] == direct["largest_component"].to_list()

    r = invoke("sweep", npy, "--thresholds", "0.8:0.9:0.05")
    assert_ok(r)
    for text in ("threshold", "components", "largest", "singletons", "0.85", "ε-graph"):
        assert text in r.stdout


def test_sweep_table_function():
    table = sweep_table(4, [0, 1], [1, 2], [0.95, 0.85], [0.8, 0.9, 0.99])
    assert table.rows() == [(0.8, 2, 3, 1, 2), (0.9, 3, 2, 2, 1), (0.99, 4, 1, 4, 0)]


def test_parse_thresholds():
    assert parse_thresholds("0.8:0.99:0.01") == [round(0.8 + i * 0.01, 2) for i in range(20)]
    assert parse_thresholds("0.8:0.9:0.03") == [0.8, 0.83, 0.86, 0.89]
    assert parse_thresholds("-1:1:1") == [-1.0, 0.0, 1.0]
    assert parse_thresholds("0.9") == [0.9]
    assert parse_thresholds("0.9,0.8,0.9") == [0.8, 0.9]
    for bad in [
        "0.9:0.8:0.01",
        "0.8:0.9:0",
        "0.8:0.9:-0.1",
        "0.5:1.5:0.5",
        "a,b",
        "0.8:0.9",
        "",
        "1.2",
        "nan",
        "0:1:0.00001",
    ]:
        with pytest.raises(ParameterError):
            parse_thresholds(bad)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("0.9:0.8:0.01", "greater than stop"),
        ("0.8:0.9:0", "step must be > 0"),
        ("0.5:1.5:0.5", "in [-1, 1]"),
        ("x", "not a number"),
    ],
)
def test_sweep_bad_thresholds(npy, value, fragment):
    assert_error(invoke("sweep", npy, "--thresholds", value), 2, "--thresholds", fragment)


# --------------------------------------------------------------------------- plugins


def test_plugins():
    r = invoke("plugins", "--json")
    assert_ok(r)
    rows = {(row["kind"], row["name"]): row for row in json.loads(r.stdout)}
    for name in ("connected-components", "kmeans"):
        assert rows[("strategy", name)]["plugin"] == "simclust.default_plugins"
        assert rows[("strategy", name)]["distribution"] == "simclust"
    assert ("metric", "intra") in rows and ("loader", "numpy") in rows
    r = invoke("plugins")
    assert_ok(r)
    for text in ("connected-components", "kmeans", "simclust.default_plugins", "distribution"):
        assert text in r.stdout


# --------------------------------------------------------------------------- errors


def test_unknown_strategy(tmp_path, npy):
    out = tmp_path / "out"
    r = invoke("analyze", npy, "--strategy", "nope", "--out", out)
    assert_error(r, 2, "unknown strategy 'nope'", "connected-components", "kmeans")
    assert not out.exists()


def test_missing_input_and_config(tmp_path):
    out = tmp_path / "out"
    assert_error(invoke("analyze", tmp_path / "nope.npy", "--out", out), 2, "does not exist")
    assert_error(invoke("run", tmp_path / "nope.toml"), 2, "nope.toml", "does not exist")
    assert_error(
        invoke("analyze", tmp_path / "x.npy", "--config", tmp_path / "c.toml"), 2, "does not exist"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--param", "threshold"], "expected KEY=VALUE"),
        (["--param", "threshold=[1,"], "not a TOML value"),
        (["--param", "1x=2"], "not a parameter name"),
        (["--param", "nope=1"], "unknown parameter"),
        (["--param", 'threshold="high"'], "expects float"),
        (["--param", "threshold=0.5", "--threshold", "0.8"], "contradicts --threshold"),
        (["--strategy", "kmeans", "--threshold", "0.8"], "cluster.threshold"),
    ],
)
def test_bad_params(tmp_path, npy, args, fragment):
    out = tmp_path / "out"
    assert_error(invoke("analyze", npy, *args, "--out", out), 2, fragment)
    assert not out.exists()


def test_parse_param():
    assert parse_param("threshold=0.9") == ("threshold", 0.9)
    assert parse_param(" k = 10 ") == ("k", 10)
    assert parse_param("flag=false") == ("flag", False)
    assert parse_param("graph=knn") == ("graph", "knn")
    assert parse_param("name='a b'") == ("name", "a b")
    assert parse_param("sizes=[1, 2]") == ("sizes", [1, 2])
    for bad in ["x", "=1", "x=", "x=a b", "x=1\ny=2"]:
        with pytest.raises(ParameterError):
            parse_param(bad)


def test_nan_rows_are_named(tmp_path, data):
    bad = data.copy()
    bad[[3, 17]] = np.nan
    path = tmp_path / "bad.npy"
    np.save(path, bad)
    out = tmp_path / "out"
    assert_error(invoke("analyze", path, "--out", out), 2, "NaN", "3, 17")
    assert_error(invoke("sweep", path, "--thresholds", "0.9"), 2, "NaN", "3, 17")
    assert not out.exists()


def test_debug_shows_traceback(tmp_path, npy):
    out = tmp_path / "out"
    r = invoke("analyze", npy, "--strategy", "nope", "--out", out, "--debug")
    assert r.exit_code == 2
    assert "Traceback (most recent call last)" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: cluster.strategy: unknown")
    assert not out.exists()


@pytest.mark.parametrize(
    ("exc", "code", "fragment"),
    [
        (PluginError("plugin 'x' failed"), 3, "error: plugin 'x' failed"),
        (KeyboardInterrupt(), 130, "error: interrupted"),
        (OSError(28, "No space left on device"), 1, "No space left"),
        (simclust.SimclustError("generic"), 1, "error: generic"),
        (RuntimeError("bug"), 1, "internal error: RuntimeError: bug"),
    ],
)
def test_exit_codes(tmp_path, npy, monkeypatch, exc, code, fragment):
    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(simclust.pipeline, "analyze", fail)
    out = tmp_path / "out"
    assert_error(invoke("analyze", npy, "--out", out), code, fragment)
    assert not out.exists()


def test_exit_code_function():
    assert exit_code(ConfigError("x")) == 2
    assert exit_code(InvalidInputError("x")) == 2
    assert exit_code(PluginError("x")) == 3
    assert exit_code(FileNotFoundError("x")) == 1
    assert exit_code(KeyboardInterrupt()) == 130


def test_refuses_to_replace_a_foreign_folder(tmp_path, npy):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    assert_error(invoke("analyze", npy, "--out", out), 2, "not a simclust output")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


# --------------------------------------------------------------------------- progress


def test_stage_bars_keep_only_slow_stages():
    now = [0.0]
    progress = Progress(console=Console(file=io.StringIO(), force_terminal=True))
    bars = _StageBars(progress, min_seconds=1.0, clock=lambda: now[0])
    bars("load", 0, 1)
    now[0] = 0.1
    bars("load", 1, 1)  # fast: removed
    bars("graph", 0, 1)
    bars("graph", 3, 10)
    now[0] = 2.5
    bars("graph", 10, 10)  # slow: kept, complete
    bars("graph", 1, 1)  # the stage's own end after the kernel's: no new bar
    bars("cluster", 0, 0)  # unknown total
    assert [t.description for t in progress.tasks] == ["graph", "cluster"]
    graph, cluster = progress.tasks
    assert graph.finished and cluster.total is None


# --------------------------------------------------------------------------- entry points


def test_python_dash_m_entry(tmp_path, npy):
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "simclust",
            "analyze",
            str(npy),
            "--threshold",
            "0.8",
            "--out",
            str(out),
            "--json",
            "--no-report",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["n_rows"] == 300 and payload["output_dir"] == str(out.resolve())
    assert (out / "clusters.parquet").is_file()


def test_version():
    r = invoke("--version")
    assert_ok(r)
    assert r.stdout.strip() == f"simclust, version {simclust.__version__}"


@pytest.mark.skipif(
    "images" not in simclust.get_host().loaders, reason="no 'images' loader registered"
)
def test_demo(tmp_path):
    out = tmp_path / "demo"
    r = invoke("demo", "--out", out, "--n-images", 120, "--json")
    assert_ok(r)
    payload = json.loads(r.stdout)
    assert payload["n_rows"] == 120
    assert payload["output_dir"] == str((out / "results").resolve())
    assert payload["report"] == str((out / "results" / "report.html").resolve())
    assert (out / "results" / "clusters.parquet").is_file()
    assert pl.read_parquet(out / "dataset.parquet").height == 120
    assert payload["metrics"] == ["intra", "edge", "centroid", "inter", "silhouette"]


def test_embed_then_analyze_saved_features(tmp_path):
    from simclust.io.fastdup import read_fastdup_features
    from simclust.testing.images import make_image_dataset

    root = tmp_path / "imgs"
    make_image_dataset(root, n_images=60, n_groups=3, seed=5)
    (root / "empty.jpg").write_bytes(b"")
    r = invoke("embed", root, "--out", tmp_path / "feats", "--json", "--param", "size=32")
    assert_ok(r)
    payload = json.loads(r.stdout)
    assert payload["format"] == "fastdup" and payload["n_bad_files"] == 1
    assert payload["n_images"] == 60 and payload["bad_files"][0]["path"] == "empty.jpg"
    saved = read_fastdup_features(tmp_path / "feats")
    direct = simclust.analyze(root, config={"input": {"embedder_params": {"size": 32}}})
    assert saved.filenames == direct.assignments["id"].to_list()
    # analysing the saved features gives the folder's result
    out = tmp_path / "out"
    assert_ok(invoke("analyze", tmp_path / "feats", "--out", out, "--no-report", "-q"))
    assert_written_like(out, direct)
    r = invoke("embed", root, "--out", tmp_path / "f.npz", "-q", "--param", "size=32")
    assert_ok(r)
    with np.load(tmp_path / "f.npz") as npz:
        np.testing.assert_array_equal(npz["embeddings"], saved.features)
        assert npz["ids"].tolist() == saved.filenames
    r = invoke("embed", root, "--out", tmp_path / "x", "--embedder", "nope")
    assert_error(r, 2, "unknown embedder 'nope'")


def test_report_rerenders_a_result_folder(tmp_path):
    from simclust.testing.images import make_image_dataset

    root = tmp_path / "imgs"
    make_image_dataset(root, n_images=60, n_groups=3, seed=7)
    (root / "bad.webp").write_bytes(b"RIFF....WEBP")
    out = tmp_path / "out"
    assert_ok(invoke("analyze", root, "--threshold", 0.93, "--out", out, "--no-report", "-q"))
    assert not (out / "report.html").exists()
    back = simclust.Result.read(out)
    written = simclust.analyze(root, threshold=0.93)
    for name, df in written.frames().items():
        assert_frame_equal(back.frames()[name], df)
    np.testing.assert_array_equal(back.centroid_matrix, written.centroid_matrix)
    assert back.fingerprint == written.fingerprint
    assert {k: v for k, v in back.config.items() if k != "output"} == {
        k: v for k, v in written.config.items() if k != "output"
    }
    # the images moved: --images says where they are now
    root.rename(tmp_path / "moved")
    r = invoke("report", out, "--images", tmp_path / "moved", "--gallery-size", 4)
    assert_ok(r)
    html = (out / "report.html").read_text()
    assert r.stdout.strip() == str(out / "report.html")
    assert "data:image/jpeg;base64," in html and "bad.webp" in html
    assert_error(invoke("report", tmp_path), 2, "no manifest.json")  # bad input: exit 2
