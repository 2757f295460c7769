# ruff: noqa: N803, N806  (X: the embedding matrix)
"""Distances as plugins: Euclidean geometry against numpy / scikit-learn, the registry,
the config and the k-means link.

Every expected value is computed from scratch in float64 (numpy brute force,
``sklearn.metrics.silhouette_samples(metric="euclidean")``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import polars as pl
import pytest
import simclust
from simclust import config as config_mod
from simclust import frames, ops
from simclust.distances import GEOMETRY_COLUMNS, Cosine, Distance, Euclidean, get_distance
from simclust.exceptions import ConfigError, ParameterError, PluginError
from sklearn.metrics import silhouette_samples

ATOL = 1e-5
# float32 rows (and float32 centroids) carry ~6e-8 relative rounding: values far above 1
# (distances of rows far from the origin, at D = 384) are compared to 1e-6 relative
RTOL = 1e-6


def raw_embeddings(seed: int, n: int, d: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows far from the origin (normalising would change them), labels with one giant
    cluster, small ones, singletons, noise and an exact duplicate."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, (k, d)) + 5.0
    labels = np.where(rng.random(n) < 0.55, 0, rng.integers(1, k, n))
    X = centres[labels] + rng.normal(0.0, 0.7, (n, d))
    X[3] = X[2]
    labels[3] = labels[2]
    labels[rng.choice(n, n // 20, replace=False)] = -1
    # three singletons: unique ids
    labels[-3:] = [k + 1, k + 2, k + 3]
    return X.astype(np.float32), labels.astype(np.int64)


CASES = [(0, 700, 8, 6), (1, 1500, 33, 12), (2, 300, 384, 4), (3, 2100, 5, 40)]


def pair_dists(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    A, B = A.astype(np.float64), B.astype(np.float64)
    return np.sqrt(np.maximum(((A[:, None, :] - B[None, :, :]) ** 2).sum(-1), 0.0))


def members(X: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    return {int(c): X[labels == c].astype(np.float64) for c in np.unique(labels[labels >= 0])}


@pytest.mark.parametrize(("seed", "n", "d", "k"), CASES)
def test_euclidean_intra_centroid_inter_match_numpy(seed: int, n: int, d: int, k: int) -> None:
    X, labels = raw_embeddings(seed, n, d, k)
    lab = ops.Labelling(X, labels, distance="euclidean", search="exact")
    intra = ops.intra_stats(lab)
    cen = ops.centroid_stats(lab)
    groups = members(X, labels)
    assert intra["cluster"].to_list() == sorted(groups)
    means = {c: g.mean(axis=0) for c, g in groups.items()}
    for row in intra.iter_rows(named=True):
        g = groups[row["cluster"]]
        if len(g) < 2:
            assert row["n_pairs"] == 0 and row["dist_mean"] is None
            continue
        dd = pair_dists(g, g)[np.triu_indices(len(g), 1)]
        assert row["n_pairs"] == dd.size
        for col, want in [
            ("dist_mean", dd.mean()),
            ("dist_min", dd.min()),
            ("dist_max", dd.max()),
            ("dist_std", dd.std()),
        ]:
            assert row[col] == pytest.approx(want, abs=ATOL, rel=RTOL), col
    # the centroid is the plain mean; each row's distance to it; the medoid is nearest
    ids = cen.clusters["cluster"].to_list()
    np.testing.assert_allclose(cen.centroids, np.stack([means[c] for c in ids]), rtol=RTOL)
    row_d = cen.rows["centroid_distance"].to_numpy()
    for i in np.flatnonzero(labels >= 0):
        c = int(labels[i])
        want = np.linalg.norm(X[i].astype(np.float64) - means[c])
        if len(groups[c]) == 1:
            assert np.isnan(row_d[i])
        else:
            assert row_d[i] == pytest.approx(want, abs=ATOL, rel=RTOL)
    assert np.isnan(row_d[labels < 0]).all()
    for row in cen.clusters.iter_rows(named=True):
        c, g = row["cluster"], groups[row["cluster"]]
        dist = np.linalg.norm(g - means[c], axis=1)
        if len(g) > 1:
            assert row["centroid_distance_mean"] == pytest.approx(dist.mean(), abs=ATOL, rel=RTOL)
            assert row["centroid_distance_max"] == pytest.approx(dist.max(), abs=ATOL, rel=RTOL)
        idx = np.flatnonzero(labels == c)
        assert np.linalg.norm(X[row["medoid"]] - means[c]) == pytest.approx(
            dist.min(), abs=ATOL, rel=RTOL
        )
        assert row["medoid"] in idx
        others = [o for o in ids if o != c]
        cd = {o: np.linalg.norm(means[c] - means[o]) for o in others}
        assert row["nearest_cluster_distance"] == pytest.approx(
            min(cd.values()), abs=ATOL, rel=RTOL
        )
        assert cd[row["nearest_cluster"]] == pytest.approx(min(cd.values()), abs=ATOL, rel=RTOL)
    # inter: each cluster's nearest others by centroid distance, nearest first
    inter = ops.inter_centroid(lab, top_m=3)
    assert inter.columns == ["cluster_a", "cluster_b", "centroid_distance"]
    for c in ids:
        got = inter.filter(pl.col("cluster_a") == c)
        want = sorted(np.linalg.norm(means[c] - means[o]) for o in ids if o != c)[:3]
        np.testing.assert_allclose(got["centroid_distance"].to_numpy(), want, atol=ATOL, rtol=RTOL)
    mat_ids, mat = ops.centroid_similarity_matrix(lab)
    M = np.stack([means[c] for c in mat_ids.tolist()])
    # the dense matrix is the GEMM tiles' (float32 cancellation: 1e-5 relative)
    np.testing.assert_allclose(mat, pair_dists(M, M), atol=ATOL, rtol=1e-5)


@pytest.mark.parametrize(("seed", "n", "d", "k"), CASES)
def test_euclidean_silhouette_matches_sklearn(seed: int, n: int, d: int, k: int) -> None:
    X, labels = raw_embeddings(seed, n, d, k)
    res = ops.silhouette(X, labels, distance="euclidean", n_threads=2)
    keep = labels >= 0
    want = silhouette_samples(X[keep].astype(np.float64), labels[keep], metric="euclidean")
    got = res.rows["silhouette"].to_numpy()
    np.testing.assert_allclose(got[keep], want, atol=ATOL)
    assert np.isnan(got[~keep]).all()
    assert res.mean == pytest.approx(want.mean(), abs=ATOL)


def test_euclidean_linkage_and_edges_match_numpy() -> None:
    X, labels = raw_embeddings(5, 800, 12, 5)
    groups = members(X, labels)
    link = ops.cluster_linkage(X, labels, [(0, 1), (2, 3)], distance="euclidean")
    assert link.columns == [
        "cluster_a",
        "cluster_b",
        "n_pairs",
        "dist_mean",
        "dist_min",
        "dist_max",
    ]
    for row in link.iter_rows(named=True):
        dd = pair_dists(groups[row["cluster_a"]], groups[row["cluster_b"]])
        assert row["n_pairs"] == dd.size
        assert row["dist_mean"] == pytest.approx(dd.mean(), abs=ATOL, rel=RTOL)
        assert row["dist_min"] == pytest.approx(dd.min(), abs=ATOL, rel=RTOL)
        assert row["dist_max"] == pytest.approx(dd.max(), abs=ATOL, rel=RTOL)
    src = np.arange(0, 799, dtype=np.uint32)
    dst = src + 1
    edges = ops.edge_stats(X, labels, edges=(src, dst), distance="euclidean")
    for row in edges.iter_rows(named=True):
        c = row["cluster"]
        inside = [(a, b) for a, b in zip(src, dst, strict=True) if labels[a] == labels[b] == c]
        assert row["n_edges"] == len(inside)
        if inside:
            dd = [np.linalg.norm(X[a].astype(np.float64) - X[b]) for a, b in inside]
            assert row["edge_dist_mean"] == pytest.approx(np.mean(dd), abs=ATOL, rel=RTOL)
            assert row["edge_dist_min"] == pytest.approx(min(dd), abs=ATOL, rel=RTOL)


def test_euclidean_bit_identical_for_one_and_two_threads() -> None:
    X, labels = raw_embeddings(7, 2500, 24, 9)  # a giant cluster spanning blocks
    runs = []
    for t in (1, 2):
        lab = ops.Labelling(X, labels, distance="euclidean", n_threads=t)
        runs.append(
            [
                ops.intra_stats(lab),
                *ops.centroid_stats(lab)[:2],
                ops.inter_centroid(lab),
                *ops.silhouette(lab)[:2],
            ]
        )
    for a, b in zip(*runs, strict=True):
        assert a.equals(b, null_equal=True)


def test_euclidean_frames_have_fixed_schemas_named_for_distances() -> None:
    X, labels = raw_embeddings(8, 200, 4, 3)
    df = ops.intra_stats(X, labels, distance="euclidean")
    assert df.schema == pl.Schema(Euclidean.rename(frames.INTRA_SCHEMA))
    assert not any("sim" in c for c in df.columns)
    cen = ops.centroid_stats(X, labels, distance="euclidean")
    assert cen.clusters.schema == pl.Schema(Euclidean.rename(frames.CENTROID_SCHEMA))
    assert cen.rows.columns == ["index", "cluster", "centroid_distance"]
    # rows are not normalised: a scaled copy of the data gives scaled distances
    scaled = ops.intra_stats(2 * X, labels, distance="euclidean")
    np.testing.assert_allclose(scaled["dist_mean"], 2 * df["dist_mean"], rtol=1e-5)


def test_cosine_is_the_default_and_unchanged() -> None:
    X, labels = raw_embeddings(9, 300, 6, 4)
    a = ops.intra_stats(X, labels)
    b = ops.intra_stats(X, labels, distance="cosine")
    c = ops.intra_stats(ops.Labelling(X, labels, distance=Cosine))
    assert a.equals(b) and a.equals(c)
    assert a.schema == pl.Schema(frames.INTRA_SCHEMA)


def test_zero_rows_are_fine_for_euclidean_only() -> None:
    X = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 1.0]], np.float32)
    df = ops.intra_stats(X, [0, 0, 1], distance="euclidean")
    assert df["dist_mean"].to_list()[0] == pytest.approx(5.0)
    with pytest.raises(simclust.InvalidInputError, match="zero norm"):
        ops.intra_stats(X, [0, 0, 1])
    with pytest.raises(simclust.InvalidInputError, match="NaN or Inf"):
        ops.intra_stats(np.array([[np.nan, 0.0], [1.0, 0.0]]), [0, 0], distance="euclidean")


def test_unknown_and_malformed_distances_are_named() -> None:
    with pytest.raises(ParameterError, match="unknown distance 'manhattan'"):
        get_distance("manhattan")

    class Wrong(Distance):
        kernel = "euclidean"
        higher_is_closer = False
        columns: ClassVar[dict[str, str]] = dict(Cosine.columns)  # named as similarities

    with pytest.raises(ParameterError, match="says 'sim' but holds a distance"):
        ops.Labelling([[1.0, 0.0]], [0], distance=Wrong)


class InnerProduct(Distance):
    """The raw inner product: a similarity on the ``dot`` kernel."""

    kernel = "dot"
    higher_is_closer = True
    columns: ClassVar[dict[str, str]] = {
        c: c.replace("similarity", "dot").replace("sim", "dot") for c in GEOMETRY_COLUMNS
    }


class DistancePlugin:
    @simclust.hookimpl
    def simclust_register_distances(self, registry):  # type: ignore[no-untyped-def]
        registry.register("inner-product", InnerProduct)


def plugin_host() -> simclust.host.Host:
    pm = simclust.get_plugin_manager(autoload=False)
    pm.register(DistancePlugin(), name="ip-plugin")
    return simclust.host.build_host(pm)


def test_a_plugin_distance_runs_through_the_pipeline() -> None:
    X, labels = raw_embeddings(10, 300, 5, 3)
    host = plugin_host()
    assert host.distances.names() == ["cosine", "euclidean", "inner-product"]
    res = simclust.analyze(
        X,
        strategy="kmeans",
        n_clusters=3,
        distance="inner-product",
        metrics=["intra", "centroid"],
        host=host,
    )
    assert res.config["metrics"]["distance"] == "inner-product"
    assert res.config["cluster"]["params"]["metric"] == "cosine"  # k-means has no dot metric
    got = res.clusters.select("cluster", "dot_mean").rows()
    lab = res.assignments["cluster"].to_numpy()
    for c, v in got:
        g = X[lab == c].astype(np.float64)
        G = g @ g.T
        assert v == pytest.approx(G[np.triu_indices(len(g), 1)].mean(), rel=1e-5)
    with pytest.raises(ParameterError, match="silhouette needs distances"):
        ops.silhouette(X, labels, distance=InnerProduct)


def test_registering_a_bad_distance_names_it() -> None:
    class Bad:
        @simclust.hookimpl
        def simclust_register_distances(self, registry):  # type: ignore[no-untyped-def]
            registry.register("bad", int)

    pm = simclust.get_plugin_manager(autoload=False)
    pm.register(Bad(), name="bad-plugin")
    with pytest.raises(PluginError, match=r"distance 'bad'.*not a distance"):
        simclust.host.build_host(pm)


def test_config_distance_and_kmeans_metric_default_to_each_other() -> None:
    host = simclust.get_host(autoload=False)

    def resolved(raw: dict) -> tuple[str, str]:
        cfg = config_mod.resolve(raw, host)
        return cfg["metrics"]["distance"], cfg["cluster"]["params"]["metric"]

    km = {"strategy": "kmeans", "n_clusters": 2}
    assert resolved({"cluster": km}) == ("cosine", "cosine")
    assert resolved({"cluster": {**km, "metric": "euclidean"}}) == ("euclidean", "euclidean")
    assert resolved({"cluster": km, "metrics": {"distance": "euclidean"}}) == (
        "euclidean",
        "euclidean",
    )
    # told otherwise: each kept as given
    both = {"cluster": {**km, "metric": "euclidean"}, "metrics": {"distance": "cosine"}}
    assert resolved(both) == ("cosine", "euclidean")
    with pytest.raises(ConfigError, match=r"metrics\.distance: unknown distance 'l1'"):
        config_mod.resolve({"metrics": {"distance": "l1"}}, host)
    with pytest.raises(ConfigError, match=r"graph\.distance: graphs .* cosine similarities only"):
        config_mod.resolve({"graph": {"distance": "euclidean", "threshold": 0.9}}, host)
    # overriding the metrics keeps the config's distance
    raw = config_mod.overlay({"metrics": {"distance": "euclidean"}}, metrics=["intra"])
    assert raw["metrics"] == {"use": ["intra"], "distance": "euclidean"}


def test_euclidean_kmeans_run_reports_euclidean_geometry() -> None:
    X, _ = raw_embeddings(11, 400, 6, 4)
    res = simclust.analyze(
        X,
        strategy="kmeans",
        n_clusters=4,
        metric="euclidean",
        metrics=["intra", "edge", "centroid", "inter", "silhouette"],
        n_threads=2,
    )
    assert res.config["metrics"]["distance"] == "euclidean"
    assert res.clusters.schema == pl.Schema(
        {**Euclidean.rename(frames.CLUSTERS_SCHEMA), "medoid_id": pl.String()}
        | dict(res.clusters.schema)
    )
    assert "dist_mean" in res.clusters.columns and "sim_mean" not in res.clusters.columns
    assert "centroid_distance" in res.assignments.columns
    assert res.inter.columns == ["cluster_a", "cluster_b", "centroid_distance"]
    lab = res.assignments["cluster"].to_numpy()
    want = silhouette_samples(X.astype(np.float64), lab, metric="euclidean")
    np.testing.assert_allclose(res.assignments["silhouette"].to_numpy(), want, atol=ATOL)
    # the k-means centroids are the means the centroid metric measures to
    for row in res.clusters.iter_rows(named=True):
        g = X[lab == row["cluster"]].astype(np.float64)
        d = np.linalg.norm(g - g.mean(axis=0), axis=1)
        assert row["centroid_distance_mean"] == pytest.approx(d.mean(), abs=ATOL)


def test_cli_distance_option_writes_euclidean_tables(tmp_path) -> None:
    from click.testing import CliRunner
    from simclust.cli import main

    X, _ = raw_embeddings(12, 300, 6, 3)
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "out"
    args = ["analyze", str(tmp_path / "x.npy"), "--strategy", "kmeans", "--n-clusters", "3"]
    args += ["--distance", "euclidean", "--out", str(out), "--json", "--no-report"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, (r.stderr, r.exception)
    clusters = pl.read_parquet(out / "clusters.parquet")
    want = simclust.analyze(X, strategy="kmeans", n_clusters=3, distance="euclidean").clusters
    assert clusters.equals(want)
    assert simclust.Result.read(out).distance == "euclidean"
    bad = CliRunner().invoke(main, [*args[:6], "--distance", "manhattan", "--out", str(out)])
    assert bad.exit_code != 0 and "metrics.distance: unknown distance 'manhattan'" in bad.stderr
