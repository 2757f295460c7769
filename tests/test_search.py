"""Partitioned graph search (ivf, certified) against brute force and numpy references."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import simclust
from simclust import ops
from simclust.exceptions import ConfigError, ParameterError
from simclust.graph import KNN_NPROBE, GraphSpec, SearchSettings, build_graph
from simclust.testing import make_embeddings


def _unit(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _pairs(src, dst) -> set[tuple[int, int]]:
    return set(zip(src.tolist(), dst.tolist(), strict=True))


def _shapes():
    rng = np.random.default_rng(5)
    clustered = make_embeddings(3000, 24, n_clusters=40, seed=1)
    giant = np.vstack(
        [rng.normal(0, 0.05, (1500, 16)) + 1.0, rng.normal(0, 1.0, (500, 16))]
    ).astype(np.float32)
    singletons = rng.normal(size=(2000, 32)).astype(np.float32)
    dups = np.repeat(make_embeddings(400, 16, n_clusters=8, seed=2), 3, axis=0)
    return {"clustered": clustered, "giant": giant, "singletons": singletons, "dups": dups}


@pytest.mark.parametrize("name", ["clustered", "giant", "singletons", "dups"])
@pytest.mark.parametrize("t", [0.99, 0.9, 0.5, 0.05])
def test_certified_epsilon_graph_equals_brute_force(name, t):
    x = _shapes()[name]
    part = ops.Partition(x, 30, seed=3)
    src, dst, sim, stats = part.threshold_edges(t, certified=True)
    want = ops.threshold_edges(x, t)
    # edge for edge, except a pair within float32 rounding of t, where two different
    # summation orders (tile shapes) may disagree in the last bit
    u = _unit(x)
    differ = _pairs(src, dst) ^ _pairs(want[0], want[1])
    assert all(abs(u[a] @ u[b] - t) < 1e-5 for a, b in differ), sorted(differ)[:5]
    assert len(differ) <= 2
    if not differ:
        np.testing.assert_allclose(np.sort(sim), np.sort(want[2]), atol=1e-6)
    assert stats.recall == 1.0 and 0 < stats.pairs_computed <= stats.pairs_total


@pytest.mark.parametrize(("nprobe", "floor"), [(KNN_NPROBE, 0.98), (8, 0.995)])
def test_ivf_knn_recall_is_measured_truthfully(nprobe, floor):
    x = make_embeddings(20_000, 32, n_clusters=200, seed=4)
    k = 10
    part = ops.Partition(x, seed=0, certified=False)
    src, dst, sim, stats = part.knn_edges(k, nprobe=nprobe, recall_rows=2000)
    # measured at 20k: 0.992 (nprobe 2) and 0.9998 (nprobe 8)
    assert stats.recall is not None and stats.recall >= floor
    assert stats.pairs_computed < 0.1 * stats.pairs_total
    # independent recount with numpy on the same seeded rows: the edges of each row
    u = _unit(x)
    rows = np.sort(np.random.default_rng(0).choice(len(x), 300, replace=False))
    nbrs: dict[int, set[int]] = {int(r): set() for r in rows}
    for a, b in zip(src.tolist(), dst.tolist(), strict=True):
        if a in nbrs:
            nbrs[a].add(b)
        if b in nbrs:
            nbrs[b].add(a)
    found = 0
    for r in rows:
        s = u @ u[r]
        s[r] = -np.inf
        kth = np.sort(s)[-k]
        found += min(k, sum(1 for j in nbrs[int(r)] if s[j] >= kth - 1e-6))
    counted = found / (len(rows) * k)
    assert abs(counted - stats.recall) < 0.03, (counted, stats.recall)
    # every edge's similarity is the exact cosine
    np.testing.assert_allclose(sim, np.einsum("ij,ij->i", u[src], u[dst]), atol=1e-5)


def test_ivf_epsilon_graph_holds_only_true_edges_and_measures_pair_recall():
    x = make_embeddings(20_000, 32, n_clusters=300, seed=6)
    part = ops.Partition(x, seed=0)
    src, dst, _, stats = part.threshold_edges(0.9, nprobe=8, recall_rows=1000)
    exact = ops.threshold_edges(x, 0.9)
    got, want = _pairs(src, dst), _pairs(exact[0], exact[1])
    assert got <= want
    true_recall = len(got) / len(want)
    assert stats.recall is not None and abs(stats.recall - true_recall) < 0.02
    assert true_recall >= 0.99


def test_a_partition_without_cells_runs_approximate_searches_only():
    x = make_embeddings(3000, 16, n_clusters=30, seed=8)
    part = ops.Partition(x, 20, certified=False)
    assert part.knn_edges(5)[3].recall is not None
    with pytest.raises(ParameterError, match="cells"):
        part.threshold_edges(0.9, certified=True)


def test_knn_nprobe_defaults_per_graph_kind():
    s = SearchSettings()
    assert (s.nprobe_for("knn"), s.nprobe_for("threshold")) == (KNN_NPROBE, 8)
    assert SearchSettings(nprobe=5).nprobe_for("threshold") == 5


def test_partitioned_results_do_not_depend_on_threads():
    x = make_embeddings(5000, 16, n_clusters=50, seed=7)
    a = ops.Partition(x, 40, n_threads=1).knn_edges(5, nprobe=4, n_threads=1)
    b = ops.Partition(x, 40, n_threads=2).knn_edges(5, nprobe=4, n_threads=2)
    for u, v in zip(a[:3], b[:3], strict=True):
        np.testing.assert_array_equal(u, v)
    assert a[3] == b[3]


def test_auto_picks_exact_for_small_and_ivf_for_large_inputs():
    s = SearchSettings()
    assert s.choose(10_000, 384, "threshold")[0] == "exact"
    assert s.choose(1_000_000, 384, "knn")[0] == "ivf"
    x = make_embeddings(500, 8, n_clusters=5, seed=0)
    g = build_graph(ops.normalize(x), GraphSpec("knn", k=5), search=s)
    assert g.search["method"] == "exact" and g.search["chosen"].startswith("auto")
    with pytest.raises(ConfigError, match="certified"):
        SearchSettings(method="certified").choose(100, 8, "knn")


def test_analyze_records_the_search_in_the_result_and_its_folder(tmp_path):
    x = make_embeddings(4000, 16, n_clusters=40, seed=8)
    res = simclust.analyze(x, threshold=0.9, search="ivf", metrics=["intra"])
    assert res.graph_search["method"] == "ivf" and 0.9 < res.graph_search["recall"] <= 1.0
    assert res.summary()["graph_recall"] == res.graph_search["recall"]
    exact = simclust.analyze(x, threshold=0.9, search="certified", metrics=["intra"])
    brute = simclust.analyze(x, threshold=0.9, search="exact", metrics=["intra"])
    assert exact.assignments["cluster"].to_list() == brute.assignments["cluster"].to_list()
    assert exact.edges.select("src", "dst").equals(brute.edges.select("src", "dst"))
    np.testing.assert_allclose(  # two summation orders: equal to rounding
        exact.edges["similarity"].to_numpy(), brute.edges["similarity"].to_numpy(), atol=1e-6
    )
    out = res.write(tmp_path / "run", report=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["graph_search"]["method"] == "ivf"
    assert simclust.Result.read(out).graph_search == res.graph_search


def test_search_config_is_validated():
    x = make_embeddings(100, 8, n_clusters=3, seed=0)
    with pytest.raises(ConfigError, match=r"graph\.search"):
        simclust.analyze(x, config={"graph": {"search": "hnsw"}})
    with pytest.raises(ConfigError, match=r"graph\.nprobe"):
        simclust.analyze(x, config={"graph": {"nprobe": 0}})
    # search keys alone ask for no graph
    res = simclust.analyze(x, strategy="kmeans", n_clusters=3, config={"graph": {"search": "ivf"}})
    assert res.edges.height == 0 and res.graph_search == {}


def _exact_nearest_centroids(x: np.ndarray, labels: np.ndarray, m: int):
    """Per cluster (ascending id), its m nearest other clusters by centroid cosine (numpy)."""
    u = _unit(x)
    ids = np.unique(labels)
    cent = np.stack([u[labels == c].sum(axis=0) for c in ids])
    cent /= np.linalg.norm(cent, axis=1, keepdims=True)
    sim = cent @ cent.T
    np.fill_diagonal(sim, -np.inf)
    order = np.argsort(-sim, axis=1, kind="stable")[:, :m]
    return ids, sim, order


@pytest.mark.parametrize("method", ["exact", "ivf"])
def test_nearest_cluster_search_is_exact_or_measures_its_recall(method):
    # many clusters, most of them singletons, as a threshold run at scale gives
    x, groups = make_embeddings(6000, 24, n_clusters=300, seed=9, return_labels=True)
    labels = np.arange(x.shape[0])
    keep = groups >= 0
    labels[keep] = groups[keep] + x.shape[0]  # the planted groups, the rest singletons
    labels = np.unique(labels, return_inverse=True)[1]
    lab = ops.Labelling(x, labels, search=method, nprobe=8, recall_rows=100_000)
    got = ops.centroid_stats(lab).clusters
    ids, sim, order = _exact_nearest_centroids(x, labels, 1)
    record = lab.searches["centroid_stats"]
    assert record["method"] == method and record["chosen"] == "configured"
    nearest = got["nearest_cluster"].to_numpy()
    listed = got["nearest_cluster_similarity"].to_numpy()
    rows = np.arange(ids.size)
    # every listed similarity is the exact centroid similarity of the listed pair
    found = ~np.isnan(listed)
    np.testing.assert_allclose(listed[found], sim[rows[found], nearest[found]], atol=2e-6)
    best = sim[rows, order[:, 0]]
    hit = found & (listed >= best - 2e-6)
    if method == "exact":
        assert hit.all() and record["recall"] == 1.0
    else:
        # the recall measured on every cluster is the share of clusters whose nearest was found
        assert record["recall_rows"] == ids.size
        assert record["recall"] == pytest.approx(hit.mean(), abs=2e-3)
        # random directions (300 groups and the outliers in 24-d) are the hard case for
        # list probing: the nearest centroid is barely nearer than the rest
        assert 0.6 <= record["recall"]
        assert record["pairs_computed"] < record["pairs_total"]


def test_analyze_records_approximate_metric_searches(tmp_path):
    x = make_embeddings(3000, 16, n_clusters=30, seed=3)
    res = simclust.analyze(x, threshold=0.95, search="ivf")
    rec = res.metric_searches["centroid_stats"]
    assert rec["method"] == "ivf" and 0.0 < rec["recall"] <= 1.0
    assert res.summary()["nearest_cluster_recall"] == min(
        r["recall"] for r in res.metric_searches.values()
    )
    out = res.write(tmp_path / "out")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["metric_searches"]["centroid_stats"]["recall"] == rec["recall"]
    assert simclust.Result.read(out).metric_searches == res.metric_searches
    exact = simclust.analyze(x, threshold=0.95, search="exact")
    assert {r["method"] for r in exact.metric_searches.values()} == {"exact"}


def test_auto_rule_is_shared_by_graphs_and_metrics():
    for n, d in [(500, 10_000), (100_000, 384), (300_000, 384), (1_000_000, 384)]:
        exact, why = ops.auto_exact(n, d)
        assert SearchSettings().choose(n, d, "knn") == ("exact" if exact else "ivf", why)
    assert ops.auto_exact(100_000, 384)[0] and not ops.auto_exact(300_000, 384)[0]


@pytest.mark.parametrize("method", ["exact", "ivf"])
def test_silhouette_search_is_exact_or_measures_its_recall(method):
    from sklearn.metrics import silhouette_samples

    x, groups = make_embeddings(4000, 16, n_clusters=200, seed=5, return_labels=True)
    labels = np.where(groups >= 0, groups, 1000 + np.arange(x.shape[0]))
    labels = np.unique(labels, return_inverse=True)[1]
    want = silhouette_samples(x.astype(np.float64), labels, metric="cosine")
    lab = ops.Labelling(x, labels, search=method, nprobe=4, recall_rows=100_000)
    got = ops.silhouette(lab).rows["silhouette"].to_numpy()
    record = lab.searches["silhouette"]
    assert record["method"] == method
    sizes = np.bincount(labels)
    scored = sizes[labels] >= 2
    if method == "exact":
        np.testing.assert_allclose(got, want, atol=1e-5)
        return
    # a missed nearest cluster only makes b, and s, larger; a found one gives the exact s
    assert (got >= want - 1e-5).all()
    exact_share = float(np.mean(np.abs(got - want)[scored] <= 1e-5))
    assert record["recall_rows"] == int(scored.sum())
    assert record["recall"] == pytest.approx(exact_share, abs=0.02)
    assert record["recall"] >= 0.5 and record["pairs_computed"] < record["pairs_total"]
    # what the misses cost, against scikit-learn on every scored row (all were sampled)
    over = np.maximum(got - want, 0.0)[scored]
    assert over.max() > 1e-3, "the search should miss some nearest clusters here"
    assert record["overestimate_mean"] == pytest.approx(over.mean(), abs=1e-5)
    assert record["overestimate_max"] == pytest.approx(over.max(), abs=1e-5)


def _mapped_rss_kib(path) -> int:
    """Resident KiB of this process's mappings of ``path`` (from /proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if len(head) >= 5 and "-" in head[0] and ":" in head[3]:
                inside = line.rstrip().endswith(str(path))
            elif inside and line.startswith("Rss:"):
                total += int(head[1])
    return total


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="needs Linux /proc")
def test_a_mapped_input_is_released_after_the_partition_copies_it(tmp_path):
    x = make_embeddings(20_000, 64, n_clusters=200, seed=3)
    path = tmp_path / "x.npy"
    np.save(path, x)
    xm = np.load(path, mmap_mode="r")
    ref = ops.partitioned_threshold_edges(x, 0.9, nprobe=4, n_threads=2)
    assert float(xm.sum(dtype=np.float64)) == float(x.sum(dtype=np.float64))
    assert _mapped_rss_kib(path) > x.nbytes // 1024 // 2  # read in: resident
    got = ops.partitioned_threshold_edges(xm, 0.9, nprobe=4, n_threads=2)
    # the pages are given back; the data reads back unchanged from the file
    assert _mapped_rss_kib(path) < 64
    np.testing.assert_array_equal(np.asarray(xm), x)
    for a, b in zip(got[:3], ref[:3], strict=True):
        np.testing.assert_array_equal(a, b)
    # an array in memory is never released: still intact after the same call
    y = x.copy()
    ops.partitioned_threshold_edges(y, 0.9, nprobe=4, n_threads=2)
    np.testing.assert_array_equal(y, x)
