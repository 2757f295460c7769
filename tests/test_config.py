"""Config files: loading, validation and the exact error messages users see."""

from __future__ import annotations

import numpy as np
import pytest
import simclust
from simclust.config import load_config, resolve
from simclust.exceptions import ConfigError

BUILTINS = "connected-components (built-in), kmeans (built-in)"
KMEANS_PARAMS = "n_clusters, metric, init, n_init, max_iter, tol, random_state, n_threads"


@pytest.fixture(scope="module")
def host():
    return simclust.get_host(autoload=False)


def _err(raw, host):
    with pytest.raises(ConfigError) as info:
        resolve(raw, host)
    return str(info.value)


def test_defaults(host):
    cfg = resolve({}, host)
    assert cfg["cluster"] == {
        "strategy": "connected-components",
        "params": {"threshold": 0.9, "graph": "threshold", "k": 10, "min_size": 1},
    }
    assert cfg["metrics"]["use"] == ["intra", "centroid", "inter"]
    assert cfg["metrics"]["params"]["inter"] == {"top_m": 10, "min_size": 2, "matrix_size": 100}
    assert cfg["graph"] is None
    assert cfg["output"] == {"dir": None, "report": True}
    assert cfg["run"] == {
        "threads": None,
        "max_edges": 100_000_000,
        "backend": "native",
        "address": None,
    }


def test_unknown_strategy_lists_available_with_plugins(host):
    assert _err({"cluster": {"strategy": "dbscan"}}, host) == (
        f"cluster.strategy: unknown strategy 'dbscan'; available: {BUILTINS}"
    )


def test_unknown_parameter_names_the_strategys_parameters(host):
    assert _err({"cluster": {"strategy": "kmeans", "n_cluster": 5}}, host) == (
        f"cluster.n_cluster: unknown parameter of strategy 'kmeans'; its parameters: "
        f"{KMEANS_PARAMS}"
    )
    assert _err({"metrics": {"use": ["inter"], "inter": {"topm": 3}}}, host) == (
        "metrics.inter.topm: unknown parameter of metric 'inter'; its parameters: "
        "top_m, min_size, matrix_size"
    )


def test_wrong_type_says_the_expected_type(host):
    assert _err({"cluster": {"strategy": "kmeans", "n_clusters": 2.5}}, host) == (
        "cluster.n_clusters: strategy 'kmeans' parameter 'n_clusters' expects int, got float 2.5"
    )
    assert _err({"cluster": {"threshold": "high"}}, host) == (
        "cluster.threshold: strategy 'connected-components' parameter 'threshold' expects "
        "float, got str 'high'"
    )
    assert _err({"cluster": {"graph": "full"}}, host) == (
        "cluster.graph: strategy 'connected-components' parameter 'graph' expects "
        "'threshold' | 'knn', got str 'full'"
    )
    assert _err({"cluster": {"strategy": "kmeans", "random_state": True}}, host) == (
        "cluster.random_state: strategy 'kmeans' parameter 'random_state' expects "
        "int | None, got bool True"
    )
    assert _err({"output": {"report": "yes"}}, host) == (
        "output.report: expected bool, got str 'yes'"
    )
    # an int where a float is declared is fine and becomes a float
    assert resolve({"cluster": {"threshold": 1}}, host)["cluster"]["params"]["threshold"] == 1.0


def test_missing_input(host, tmp_path):
    with pytest.raises(ConfigError) as info:
        simclust.analyze(config={"cluster": {"threshold": 0.5}}, host=host)
    assert str(info.value) == "input.path: missing; give the embeddings file or image folder"
    missing = tmp_path / "nope.npy"
    with pytest.raises(ConfigError) as info:
        simclust.analyze(config={"input": {"path": str(missing)}}, host=host)
    assert str(info.value) == f"input.path: {str(missing)!r} does not exist"


def test_other_errors(host, tmp_path):
    assert _err({"clusters": {}}, host) == (
        "unknown section(s) clusters; sections: input, graph, cluster, metrics, output, run, dedup"
    )
    assert _err({"metrics": {"use": ["intra", "nope"]}}, host).startswith(
        "metrics.use: unknown metric 'nope'; available: intra (built-in), edge (built-in), "
    )
    assert _err({"metrics": {"use": "intra"}}, host) == (
        "metrics.use: expected a list of metric names, got 'intra'"
    )
    assert _err({"graph": {"kind": "knn", "k": 5}, "cluster": {"k": 6}}, host) == (
        "graph.k = 5 contradicts cluster.k = 6"
    )
    assert _err({"graph": {"kind": "threshold"}}, host) == (
        "graph.threshold: a 'threshold' graph needs a threshold"
    )
    assert _err({"run": {"threads": 0}}, host) == "run.threads: expected a positive int, got 0"
    assert _err({"input": {"loader": "numpy", "keyy": "x"}}, host) == (
        "input.keyy: unknown parameter of loader 'numpy'; its parameters: key, ids_key"
    )


def test_graph_section_feeds_the_strategy(host):
    cfg = resolve({"graph": {"kind": "knn", "k": 7, "threshold": 0.8}}, host)
    assert cfg["cluster"]["params"] == {"threshold": 0.8, "graph": "knn", "k": 7, "min_size": 1}
    assert cfg["graph"] == {"kind": "knn", "k": 7, "threshold": 0.8, "sweep": None}


def test_load_config_toml(tmp_path, host):
    (tmp_path / "x.npy").write_bytes(b"")
    path = tmp_path / "run.toml"
    path.write_text(
        '[input]\npath = "x.npy"\n[cluster]\nstrategy = "kmeans"\nn_clusters = 4\n'
        '[output]\ndir = "results"\n'
    )
    raw = load_config(path)
    assert raw["input"]["path"] == str(tmp_path / "x.npy")
    path.write_text(
        '[input]\npath = "imgs"\nloader = "images"\nembedder = "onnx"\n'
        '[input.embedder_params]\nmodel = "m/model.onnx"\nsize = 3\n'
        'labels_file = "/abs/l.csv"\n'
    )
    emb = load_config(path)["input"]["embedder_params"]
    assert emb == {"model": str(tmp_path / "m/model.onnx"), "size": 3, "labels_file": "/abs/l.csv"}
    path.write_text(
        '[input]\npath = "x.npy"\n[cluster]\nstrategy = "kmeans"\nn_clusters = 4\n'
        '[output]\ndir = "results"\n'
    )
    raw = load_config(path)
    assert raw["output"]["dir"] == str(tmp_path / "results")
    cfg = resolve(raw, host)
    assert cfg["cluster"]["params"]["n_clusters"] == 4
    path.write_text("[cluster\nstrategy = 1\n")
    with pytest.raises(ConfigError, match=r"run.toml: invalid TOML: .*line 1"):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def test_analyze_keywords_override_config(host):
    x = np.array([[1, 0], [0.99, 0.1], [0, 1]], dtype=np.float32)
    cfg = {"cluster": {"strategy": "kmeans", "n_clusters": 2}}
    res = simclust.analyze(x, config=cfg, strategy="connected-components", threshold=0.9, host=host)
    assert res.config["cluster"]["strategy"] == "connected-components"
    assert res.assignments["cluster"].to_list() == [0, 0, 1]
    res = simclust.analyze(x, config=cfg, host=host)
    assert res.config["cluster"]["params"]["n_clusters"] == 2
