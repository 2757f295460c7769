"""Outlier scores (nn_similarity, knn_sim_mean) and the report's outliers view.

Every expected value is a float64 numpy brute force over the unit rows; the planted
outliers of the seeded generators (label -1, the demo's ``kind == "outlier"``) must rank
first.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import simclust
from click.testing import CliRunner
from simclust.cli import main
from simclust.graph import Graph, GraphSpec
from simclust.outliers import OUTLIER_K, neighbor_similarities, outlier_cutoff
from simclust.report import data
from simclust.testing import make_embeddings

ATOL = 1e-6


def reference_scores(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force cosine kNN in float64: similarity to the nearest, mean over the k nearest."""
    u = np.asarray(x, np.float64)
    u = u / np.linalg.norm(u, axis=1, keepdims=True)
    s = u @ u.T
    np.fill_diagonal(s, -np.inf)
    top = -np.sort(-s, axis=1)[:, :k]
    return top[:, 0], top.mean(axis=1)


@pytest.fixture(scope="module")
def planted():
    """Clusters plus 3 % outliers uniform on the sphere (label -1), no near-duplicates.

    Returns ``x`` and whether each row is planted isolated: an outlier, or the only row
    of its generated cluster (seed 3 draws one such cluster, as isolated as an outlier).
    """
    x, labels = make_embeddings(1500, 32, n_clusters=12, seed=3, dup_frac=0.0, return_labels=True)
    ids, counts = np.unique(labels, return_counts=True)
    lone = np.isin(labels, ids[(counts == 1) & (ids >= 0)])
    assert (labels == -1).sum() == 30 and lone.sum() == 1
    return x, (labels == -1) | lone


def _scores(res: simclust.Result) -> tuple[np.ndarray, np.ndarray]:
    a = res.assignments
    return a["nn_similarity"].to_numpy(), a["knn_sim_mean"].to_numpy()


@pytest.mark.parametrize(
    ("params", "k", "source"),
    [
        ({"threshold": 0.8}, OUTLIER_K, "knn search"),  # an ε-graph: own kNN search
        ({"threshold": 0.8, "search": "certified"}, OUTLIER_K, "knn search"),  # kNN: auto
        ({"config": {"graph": {"kind": "knn", "k": 7}}}, 7, "run graph"),  # reused
        ({"graph": "knn", "k": 7, "threshold": 0.8}, 7, "run graph"),  # cut, reused whole
        ({"strategy": "kmeans", "n_clusters": 5}, OUTLIER_K, "knn search"),  # no graph
    ],
)
def test_scores_equal_a_brute_force_reference(params, k, source):
    x = make_embeddings(400, 16, n_clusters=6, seed=1).astype(np.float64)
    res = simclust.analyze(x, **params)
    nearest, mean = _scores(res)
    want_nearest, want_mean = reference_scores(x, k)
    np.testing.assert_allclose(nearest, want_nearest, atol=ATOL)
    np.testing.assert_allclose(mean, want_mean, atol=ATOL)
    assert res.outlier_search["k"] == k and res.outlier_search["source"] == source
    assert res.outlier_search["method"] == "exact" and res.outlier_search["recall"] == 1.0
    assert res.summary()["outlier_k"] == k


def test_planted_outliers_rank_first(planted):
    x, isolated = planted
    res = simclust.analyze(x, threshold=0.8)
    n_out = int(isolated.sum())
    order = res.assignments.sort(["nn_similarity", "index"])["index"].to_numpy()
    assert isolated[order[:n_out]].all()
    # knn_sim_mean is low for the members of groups smaller than k too: the 5 rows of
    # generated cluster 1 come right after the isolated rows
    order = res.assignments.sort(["knn_sim_mean", "index"])["index"].to_numpy()
    assert isolated[order[: n_out - 2]].all() and isolated[order[: n_out + 5]].sum() == n_out
    # the view: every row it flags (the lowest 1 %) is a planted outlier, singletons and
    # noise included, and the cut-off is the 1st percentile (numpy's "lower")
    out = data.outliers(res, 100)
    nearest, _ = reference_scores(x, OUTLIER_K)
    want_cut = np.percentile(nearest, 1.0, method="lower")
    assert out.cutoff == pytest.approx(want_cut, abs=ATOL)
    assert out.n_flagged == int((nearest <= want_cut + ATOL).sum()) == out.rows.height == 15
    assert out.n_scored == len(x)
    assert isolated[out.rows["index"].to_numpy()].all()
    assert out.rows["nn_similarity"].is_sorted()
    assert out.rows.filter(pl.col("size") == 1).height > 0  # the singletons are in the view
    assert data.outliers(res, 4).rows["index"].to_list() == out.rows["index"].to_list()[:4]


def test_noise_rows_are_scored_and_in_the_view(planted):
    x, _ = planted
    res = simclust.analyze(x, threshold=0.8, min_size=3)
    a = res.assignments
    assert a.filter(pl.col("cluster") < 0).height > 0
    want_nearest, _ = reference_scores(x, OUTLIER_K)
    np.testing.assert_allclose(a["nn_similarity"].to_numpy(), want_nearest, atol=ATOL)
    out = data.outliers(res, 100)
    assert (out.rows["cluster"] == -1).all()  # every planted outlier is noise here
    assert out.rows["size"].null_count() == out.rows.height


def test_partitioned_search_is_recorded_and_never_overstates(planted):
    """search="ivf": the scores come from the partitioned kNN with its measured recall."""
    x, isolated = planted
    res = simclust.analyze(x, threshold=0.8, search="ivf")
    rec = res.outlier_search
    assert rec["method"] == "ivf" and rec["source"] == "knn search"
    assert 0.0 < rec["recall"] <= 1.0 and rec["recall_rows"] > 0
    assert res.summary()["outlier_recall"] == rec["recall"]
    nearest, mean = _scores(res)
    want_nearest, want_mean = reference_scores(x, OUTLIER_K)
    # every similarity found is a real pair's: never above the exact nearest / k best
    assert (nearest <= want_nearest + ATOL).all() and (mean <= want_mean + ATOL).all()
    assert np.mean(np.abs(nearest - want_nearest) <= ATOL) >= rec["recall"]
    order = res.assignments.sort(["nn_similarity", "index"])["index"].to_numpy()
    assert isolated[order[: isolated.sum()]].all()


def test_neighbor_similarities_of_a_small_graph():
    # 0-1 (0.9), 0-2 (0.5), 1-2 (-0.25), 3 isolated; k = 2
    g = Graph(
        GraphSpec("knn", k=2),
        4,
        np.array([0, 0, 1], np.uint32),
        np.array([1, 2, 2], np.uint32),
        np.array([0.9, 0.5, -0.25], np.float32),
    )
    nearest, mean = neighbor_similarities(g, 2)
    np.testing.assert_allclose(nearest[:3], [0.9, 0.9, 0.5])
    np.testing.assert_allclose(mean[:3], [0.7, 0.325, 0.125], rtol=1e-6)
    assert np.isnan(nearest[3]) and np.isnan(mean[3])
    nearest, mean = neighbor_similarities(g, 1)  # negative, -0.0 and 0.0 sort right
    np.testing.assert_allclose(mean[:3], [0.9, 0.9, 0.5])


def test_float_order_of_the_sort_key():
    """Similarities of every sign and magnitude: the k best are picked exactly."""
    rng = np.random.default_rng(0)
    n, m = 50, 2000
    src = rng.integers(0, n, m).astype(np.uint32)
    dst = rng.integers(0, n, m).astype(np.uint32)
    sim = rng.choice(
        np.array([-1.0, -0.5, -1e-30, -0.0, 0.0, 1e-30, 0.25, 1.0], np.float32), m
    ) * rng.uniform(0.5, 1.0, m).astype(np.float32)
    g = Graph(GraphSpec("knn", k=3), n, src, dst, sim)
    nearest, mean = neighbor_similarities(g, 3)
    for row in range(n):
        mine = np.sort(np.concatenate([sim[src == row], sim[dst == row]]))[::-1]
        assert nearest[row] == mine[0]
        assert mean[row] == pytest.approx(mine[:3].astype(np.float64).mean(), rel=1e-6)


def test_tiny_inputs():
    one = simclust.analyze(np.ones((1, 3)), threshold=0.5)
    assert one.assignments["nn_similarity"].to_list() == [None]
    assert one.outlier_search["k"] == 1
    assert data.outliers(one, 5).cutoff is None
    two = simclust.analyze(np.array([[1.0, 0.0], [0.6, 0.8]]), threshold=0.9)
    np.testing.assert_allclose(two.assignments["nn_similarity"].to_numpy(), [0.6, 0.6])
    np.testing.assert_allclose(two.assignments["knn_sim_mean"].to_numpy(), [0.6, 0.6])
    assert outlier_cutoff(pl.Series([None], dtype=pl.Float32)) is None


def test_singletons_have_null_centroid_similarity(planted):
    x, _ = planted
    res = simclust.analyze(x, threshold=0.8, metrics=["intra", "centroid"])
    single = res.clusters.filter(pl.col("size") == 1)
    assert single.height > 0
    for c in ("centroid_sim_mean", "centroid_sim_min", "centroid_sim_max"):
        assert single[c].null_count() == single.height
        assert res.clusters.filter(pl.col("size") > 1)[c].null_count() == 0
    lone = res.assignments.filter(pl.col("cluster").is_in(single["cluster"].implode()))
    assert lone.height == single.height and lone["centroid_similarity"].null_count() == lone.height
    assert res.assignments["centroid_similarity"].null_count() == single.height
    assert single["medoid"].to_list() == lone["index"].to_list()  # a singleton's own row


def test_the_demo_outliers_view_lists_the_planted_outliers(tmp_path):
    """`simclust demo` (3,000 images): its outliers view's top rows are the planted outliers.

    At 600 images two of the 18 planted outliers happen to be each other's nearest row
    (0.81) with the built-in embedder, above some group members; at the demo's size the
    90 planted outliers are the 90 lowest.
    """
    pytest.importorskip("PIL")
    out = tmp_path / "demo"
    r = CliRunner().invoke(main, ["demo", "--out", str(out), "--no-report", "--quiet"])
    assert r.exit_code == 0, (r.stderr, r.exception)
    res = simclust.Result.read(out / "results")
    kinds = dict(pl.read_parquet(out / "dataset.parquet").select("path", "kind").rows())
    planted = {p for p, kind in kinds.items() if kind == "outlier"}
    assert len(planted) == 90
    ranked = res.assignments.sort(["nn_similarity", "knn_sim_mean", "index"])["id"].to_list()
    assert set(ranked[: len(planted)]) == planted
    view = data.outliers(res, 24)
    # 1 % of 3,000, at or below the cut-off: the 30th and 31st lowest are two noise images
    # that are each other's nearest row (the same nn_similarity), so 31; 24 shown
    scores = res.assignments["nn_similarity"].sort()
    assert scores[29] == scores[30] < scores[31]
    assert view.n_flagged == 31 and view.rows.height == 24
    assert set(view.rows["id"]) <= planted
