"""Tests of the simclust-hdbscan plugin against scikit-learn's HDBSCAN run directly."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest
import simclust
from simclust.base import parameters
from simclust.exceptions import ConfigError, ParameterError
from simclust.testing import check_strategy, make_embeddings
from simclust_hdbscan import HDBSCANStrategy
from sklearn.cluster import HDBSCAN
from sklearn.metrics import silhouette_samples

Array = npt.NDArray[Any]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's SIMCLUST_* variables (blocked plugins, no autoload) do not apply."""
    for name in ("SIMCLUST_BLOCK_PLUGINS", "SIMCLUST_DISABLE_PLUGIN_AUTOLOAD"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def data() -> Array:
    """Unit-norm float32 embeddings with clusters and ~2% uniform outliers."""
    x = make_embeddings(500, 24, n_clusters=5, seed=3, spread=(0.3, 0.4))
    return x


def reference(x: Array, **params: Any) -> tuple[Array, Array]:
    """Labels and probabilities of scikit-learn's HDBSCAN on numpy-normalised rows."""
    xn = x.astype(np.float64) / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    model = HDBSCAN(metric="euclidean", copy=True, **params).fit(xn.astype(np.float32))
    return np.asarray(model.labels_), np.asarray(model.probabilities_)


PARAMS: list[dict[str, Any]] = [
    {},
    {"min_cluster_size": 10, "min_samples": 3},
    {"min_cluster_size": 8, "cluster_selection_method": "leaf"},
    {"min_cluster_size": 5, "cluster_selection_epsilon": 0.6},
    {"min_cluster_size": 400, "allow_single_cluster": True},
]


@pytest.mark.parametrize("params", PARAMS, ids=lambda p: ",".join(p) or "defaults")
def test_fit_matches_sklearn(data: Array, params: dict[str, Any]) -> None:
    """The strategy's labels and probabilities are sklearn's on the same rows."""
    want_labels, want_prob = reference(data, **params)
    s = HDBSCANStrategy(**params).fit(data)
    assert s.labels_.dtype == np.int64
    np.testing.assert_array_equal(s.labels_, want_labels)
    np.testing.assert_allclose(s.probabilities_, want_prob, rtol=1e-5, atol=1e-7)
    assert s.n_clusters_ == len(set(want_labels.tolist()) - {-1})


def test_defaults_find_the_clusters_and_noise(data: Array) -> None:
    """With the defaults there are several clusters and some noise rows."""
    s = HDBSCANStrategy().fit(data)
    assert s.n_clusters_ >= 3
    assert 0 < int((s.labels_ == -1).sum()) < len(data) // 2
    assert set(np.unique(s.labels_)) == {-1, *range(s.n_clusters_)}
    assert np.all(s.probabilities_[s.labels_ == -1] == 0)


def test_euclidean_on_unit_rows_is_cosine_order(data: Array) -> None:
    """On unit rows d**2 = 2 - 2 cos: the docstring's claim, checked numerically."""
    x = data[:50].astype(np.float64)
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(d2, 2 - 2 * (x @ x.T), atol=1e-5)


def test_parameters_and_get_params() -> None:
    """The declared parameters are the keyword-only __init__ args, stored verbatim."""
    params = {p.name: p.default for p in parameters(HDBSCANStrategy)}
    assert params == {
        "min_cluster_size": 5,
        "min_samples": None,
        "cluster_selection_epsilon": 0.0,
        "cluster_selection_method": "eom",
        "n_jobs": None,
        "allow_single_cluster": False,
    }
    s = HDBSCANStrategy(min_samples=3, cluster_selection_method="leaf")
    assert s.get_params()["min_samples"] == 3
    assert s.get_params()["cluster_selection_method"] == "leaf"
    assert s.graph_spec() is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"min_cluster_size": 1}, "min_cluster_size must be an int >= 2, got 1"),
        ({"min_samples": 0}, "min_samples must be an int >= 1 or None, got 0"),
        ({"cluster_selection_epsilon": -0.1}, "cluster_selection_epsilon must be a finite"),
        ({"cluster_selection_epsilon": float("nan")}, "cluster_selection_epsilon must be"),
        ({"cluster_selection_method": "mst"}, "must be 'eom' or 'leaf', got 'mst'"),
        ({"n_jobs": 0}, "n_jobs must be a non-zero int or None"),
        ({"allow_single_cluster": "yes"}, "allow_single_cluster must be a bool"),
    ],
)
def test_invalid_parameters(params: dict[str, Any], message: str) -> None:
    """Invalid parameters raise ParameterError before any work."""
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        HDBSCANStrategy(**params).graph_spec()
    with pytest.raises(ParameterError, match="hdbscan: "):
        HDBSCANStrategy(**params).fit(np.eye(8, dtype=np.float32))


def test_min_samples_larger_than_rows() -> None:
    """min_samples (or min_cluster_size standing in for it) above N is a clear error."""
    x = np.eye(4, dtype=np.float32)
    with pytest.raises(ParameterError, match=r"min_samples \(6\) must be at most .* \(4\)"):
        HDBSCANStrategy(min_samples=6).fit(x)
    with pytest.raises(ParameterError, match=r"i\.e\. min_cluster_size = 5"):
        HDBSCANStrategy().fit(x)


def test_config_type_errors_are_config_errors() -> None:
    """simclust validates the declared types before the plugin runs."""
    x = np.eye(6, dtype=np.float32)
    with pytest.raises(ConfigError, match="min_cluster_size' expects int"):
        simclust.analyze(x, strategy="hdbscan", min_cluster_size="5")
    with pytest.raises(ConfigError, match="cluster_selection_method"):
        simclust.analyze(x, strategy="hdbscan", cluster_selection_method="mst")
    with pytest.raises(ConfigError, match="unknown parameter"):
        simclust.analyze(x, strategy="hdbscan", threshold=0.9)
    # Range errors are raised by graph_spec(), which the pipeline calls before any
    # work and whose ParameterError it passes through unchanged.
    with pytest.raises(ParameterError, match="hdbscan: min_cluster_size must be an int >= 2"):
        simclust.analyze(x, strategy="hdbscan", min_cluster_size=1)
    # A ParameterError from fit() keeps its type and gains the plugin's name.
    want = r"^strategy 'hdbscan' .*simclust-hdbscan\): .*rows \(6\)"
    with pytest.raises(ParameterError, match=want):
        simclust.analyze(x, strategy="hdbscan", min_cluster_size=7)


def test_analyze_with_noise_and_every_metric(data: Array) -> None:
    """All built-in metrics run on HDBSCAN labels with noise; values checked by hand."""
    params = {"min_cluster_size": 8, "min_samples": 4}
    want, _ = reference(data, **params)
    assert (want == -1).any()
    res = simclust.analyze(
        data,
        strategy="hdbscan",
        metrics=["intra", "centroid", "inter", "silhouette", "edge"],
        **params,
    )
    a, c = res.assignments, res.clusters
    got = a["cluster"].to_numpy()
    np.testing.assert_array_equal(got, want)

    noise = got == -1
    ids = sorted(set(want.tolist()) - {-1})
    assert c["cluster"].to_list() == ids  # noise is not a row of clusters
    assert c["size"].to_list() == [int((want == k).sum()) for k in ids]
    assert a.filter(pl.col("cluster") == -1).height == int(noise.sum())
    assert a.filter(pl.col("cluster") == -1)["centroid_similarity"].null_count() == noise.sum()
    assert a.filter(pl.col("cluster") == -1)["silhouette"].null_count() == noise.sum()
    assert a.filter(pl.col("cluster") >= 0)["centroid_similarity"].null_count() == 0
    assert a.filter(pl.col("cluster") >= 0)["silhouette"].null_count() == 0

    x = data.astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    centroids = {}
    for k in ids:
        m = x[want == k]
        sims = (m @ m.T)[np.triu_indices(len(m), 1)]
        row = c.filter(pl.col("cluster") == k).row(0, named=True)
        assert row["n_pairs"] == sims.size
        assert row["sim_mean"] == pytest.approx(sims.mean(), abs=1e-5)
        assert row["sim_min"] == pytest.approx(sims.min(), abs=1e-5)
        mean = m.sum(0)
        centroids[k] = mean / np.linalg.norm(mean)
        np.testing.assert_allclose(
            a.filter(pl.col("cluster") == k)["centroid_similarity"].to_numpy(),
            m @ centroids[k],
            atol=1e-5,
        )
    # inter: centroid similarity of every listed pair.
    for ka, kb, s in res.inter.iter_rows():
        assert s == pytest.approx(float(centroids[ka] @ centroids[kb]), abs=1e-5)
    assert res.inter.height > 0
    # silhouette: scikit-learn's on the clustered rows alone.
    ref_sil = silhouette_samples(x[~noise], want[~noise], metric="cosine")
    np.testing.assert_allclose(
        a.filter(pl.col("cluster") >= 0)["silhouette"].to_numpy(), ref_sil, atol=1e-4
    )
    # edge: the kNN graph's edges inside each cluster, counted from the edge list.
    e = res.edges.to_numpy()
    src, dst = e[:, 0].astype(int), e[:, 1].astype(int)
    inside = (want[src] == want[dst]) & (want[src] >= 0)
    for k, n_edges in c.select("cluster", "n_edges").iter_rows():
        expected = int((inside & (want[src] == k)).sum())
        assert (n_edges or 0) == expected


def test_config_file_selects_hdbscan(tmp_path: Path, data: Array) -> None:
    """A TOML config picks the strategy and its parameters; analyze and run agree."""
    np.save(tmp_path / "x.npy", data)
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        "[input]\n"
        'path = "x.npy"\n'
        "[cluster]\n"
        'strategy = "hdbscan"\n'
        "min_cluster_size = 8\n"
        "min_samples = 4\n"
        'cluster_selection_method = "leaf"\n'
        "[metrics]\n"
        'use = ["intra", "centroid"]\n'
        "[output]\n"
        'dir = "out"\n'
    )
    raw = simclust.load_config(cfg)
    assert raw["cluster"] == {
        "strategy": "hdbscan",
        "min_cluster_size": 8,
        "min_samples": 4,
        "cluster_selection_method": "leaf",
    }
    want, _ = reference(data, min_cluster_size=8, min_samples=4, cluster_selection_method="leaf")
    res = simclust.analyze(config=cfg)
    np.testing.assert_array_equal(res.assignments["cluster"].to_numpy(), want)
    assert res.config["cluster"] == {
        "strategy": "hdbscan",
        "params": {
            "min_cluster_size": 8,
            "min_samples": 4,
            "cluster_selection_epsilon": 0.0,
            "cluster_selection_method": "leaf",
            "n_jobs": None,
            "allow_single_cluster": False,
        },
    }
    assert res.versions["plugins"]["hdbscan"] == importlib.metadata.version("simclust-hdbscan")

    _, out = simclust.run(cfg)
    assert out == tmp_path / "out"
    written = pl.read_parquet(out / "assignments.parquet")
    np.testing.assert_array_equal(written["cluster"].to_numpy(), want)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["cluster"]["strategy"] == "hdbscan"


def test_found_through_the_entry_point() -> None:
    """The strategy comes from the entry point of the simclust-hdbscan distribution."""
    eps = importlib.metadata.entry_points(group="simclust", name="hdbscan")
    assert [ep.value for ep in eps] == ["simclust_hdbscan"]
    assert next(iter(eps)).dist.metadata["Name"] == "simclust-hdbscan"  # type: ignore[union-attr]

    host = simclust.get_host()
    reg = host.strategies.get("hdbscan")
    assert reg.obj is HDBSCANStrategy
    assert reg.plugin == "hdbscan"
    assert reg.distribution == "simclust-hdbscan"
    table = host.table().filter(pl.col("name") == "hdbscan")
    assert table.rows() == [
        (
            "strategy",
            "hdbscan",
            "hdbscan",
            "simclust-hdbscan",
            importlib.metadata.version("simclust-hdbscan"),
        )
    ]
    assert "hdbscan" not in simclust.get_host(autoload=False).strategies


def test_blocking_the_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIMCLUST_BLOCK_PLUGINS=simclust-hdbscan removes the strategy."""
    monkeypatch.setenv("SIMCLUST_BLOCK_PLUGINS", "simclust-hdbscan")
    host = simclust.get_host()
    assert "hdbscan" not in host.strategies
    assert "kmeans" in host.strategies


@pytest.mark.parametrize(
    "strategy",
    [HDBSCANStrategy, HDBSCANStrategy(min_cluster_size=4, cluster_selection_method="leaf")],
    ids=["defaults", "leaf"],
)
def test_conformance_checks(strategy: Any) -> None:
    """simclust's own strategy conformance checks pass."""
    check_strategy(strategy, name="hdbscan")
