# ruff: noqa: N803, N806  (X, S, C: the field's matrix notation)
"""Cluster geometry (ops.intra_stats, centroid_stats, inter_centroid, cluster_linkage,
silhouette, davies_bouldin, calinski_harabasz) against independent float64 numpy
brute force and scikit-learn."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from _reference import clustered_embeddings
from simclust import frames, ops
from simclust.exceptions import InvalidInputError, ParameterError, ShapeError
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_samples

ATOL = 1e-5


# --------------------------------------------------------------------------- data + references


def unit64(X):
    """Rows normalised in float64 (from the float32 input the core sees)."""
    X = np.asarray(X, dtype=np.float32).astype(np.float64)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def labellings(n, seed):
    """Random labellings with noise and id gaps, a giant cluster, many singletons."""
    rng = np.random.default_rng(seed)
    out = {}
    # A few clusters of random sizes, noise and gapped ids.
    lab = rng.choice(
        np.array([-1, 0, 3, 4, 10, 11, 50]), size=n, p=[0.1, 0.3, 0.2, 0.2, 0.1, 0.05, 0.05]
    )
    out["random"] = lab
    # One giant cluster spanning several 1024-row blocks, plus many singletons.
    lab = np.arange(n, dtype=np.int64) + 1000
    giant = rng.choice(n, size=int(0.85 * n), replace=False)
    lab[giant] = 7
    lab[rng.choice(n, size=n // 50, replace=False)] = -1
    out["giant+singletons"] = lab
    # Many small clusters.
    out["many_small"] = rng.integers(-1, n // 4, size=n)
    return out


def ref_intra(X, labels):
    """{cluster: (size, n_pairs, mean, min, max, std)} by brute force over all pairs."""
    Xn = unit64(X)
    out = {}
    for c in np.unique(labels[labels >= 0]):
        M = Xn[labels == c]
        m = len(M)
        if m < 2:
            out[int(c)] = (m, 0, None, None, None, None)
            continue
        S = M @ M.T
        s = S[np.triu_indices(m, 1)]
        out[int(c)] = (m, s.size, s.mean(), s.min(), s.max(), s.std())
    return out


def ref_edges(X, labels, src, dst):
    """{cluster: (n_edges, mean, min, max)} over distinct undirected internal edges."""
    Xn = unit64(X)
    lo, hi = np.minimum(src, dst), np.maximum(src, dst)
    keep = (lo != hi) & (labels[lo] >= 0) & (labels[lo] == labels[hi])
    pairs = np.unique(np.stack([lo[keep], hi[keep]], axis=1), axis=0)
    out = {}
    for c in np.unique(labels[labels >= 0]):
        p = pairs[labels[pairs[:, 0]] == c] if len(pairs) else pairs
        if len(p) == 0:
            out[int(c)] = (0, None, None, None)
            continue
        s = np.einsum("ij,ij->i", Xn[p[:, 0]], Xn[p[:, 1]])
        out[int(c)] = (len(p), s.mean(), s.min(), s.max())
    return out


def ref_centroids(X, labels):
    Xn = unit64(X)
    ids = np.unique(labels[labels >= 0])
    C = np.stack([Xn[labels == c].mean(axis=0) for c in ids])
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    return ids, C


def check_stats(got, want):
    """Compare frame values with reference values; None must be None (null)."""
    for g, w in zip(got, want, strict=True):
        if w is None:
            assert g is None
        else:
            assert g is not None
            assert abs(g - w) <= ATOL, (got, want)


# --------------------------------------------------------------------------- intra


@pytest.mark.parametrize("kind", ["random", "giant+singletons", "many_small"])
@pytest.mark.parametrize(("n", "d"), [(300, 5), (2600, 32)])
def test_intra_matches_brute_force(n, d, kind):
    X = clustered_embeddings(n + d, n, d)
    labels = labellings(n, n * 3 + d)[kind]
    df = ops.intra_stats(X, labels, n_threads=2)
    assert df.schema == pl.Schema(frames.INTRA_SCHEMA)
    want = ref_intra(X, labels)
    assert df["cluster"].to_list() == sorted(want)
    for row in df.iter_rows(named=True):
        w = want[row["cluster"]]
        assert (row["size"], row["n_pairs"]) == w[:2]
        check_stats([row["sim_mean"], row["sim_min"], row["sim_max"], row["sim_std"]], list(w[2:]))
        assert row["n_edges"] == 0 and row["edge_sim_mean"] is None


def test_intra_exact_values():
    X = np.array([[1, 0], [0, 1], [-1, 0], [0, -1], [3, 3]], dtype=np.float64)
    df = ops.intra_stats(X, [2, 2, 2, -1, 9])
    assert df.rows() == [
        (
            2,
            3,
            3,
            pytest.approx(-1 / 3),
            -1.0,
            0.0,
            pytest.approx(np.std([0, -1, 0])),
            0,
            None,
            None,
            None,
        ),
        (9, 1, 0, None, None, None, None, 0, None, None, None),
    ]


@pytest.mark.parametrize("seed", [0, 1])
def test_edge_stats_match_numpy(seed):
    n, d = 1500, 16
    X = clustered_embeddings(seed, n, d)
    labels = labellings(n, seed)["random"]
    rng = np.random.default_rng(seed)
    # kNN edges, both directions of some pairs, duplicates, self-loops, edges to noise.
    src, dst, _ = ops.knn_edges(X, 8, -1.0)
    extra = rng.integers(0, n, size=(3000, 2))
    src = np.concatenate([src, dst, extra[:, 0], np.arange(20)])
    dst = np.concatenate([dst, src[: len(dst)], extra[:, 1], np.arange(20)])
    df = ops.intra_stats(X, labels, edges=(src, dst))
    want = ref_edges(X, labels, src, dst)
    for row in df.iter_rows(named=True):
        w = want[row["cluster"]]
        assert row["n_edges"] == w[0]
        check_stats([row["edge_sim_mean"], row["edge_sim_min"], row["edge_sim_max"]], list(w[1:]))
        # the edges are a subset of the pairs
        if row["n_edges"]:
            assert row["edge_sim_min"] >= row["sim_min"] - ATOL
            assert row["edge_sim_max"] <= row["sim_max"] + ATOL
    # an edges frame and a 3-tuple give the same result
    e3 = ops.threshold_edges(X, 0.5)
    a = ops.intra_stats(X, labels, edges=e3)
    b = ops.intra_stats(X, labels, edges=frames.edges_frame(*e3))
    assert a.equals(b)


# --------------------------------------------------------------------------- centroids / inter


@pytest.mark.parametrize("kind", ["random", "giant+singletons", "many_small"])
def test_centroids_match_numpy(kind):
    n, d = 1200, 24
    X = clustered_embeddings(5, n, d)
    labels = labellings(n, 11)[kind]
    res = ops.centroid_stats(X, labels, n_threads=2)
    assert res.clusters.schema == pl.Schema(frames.CENTROID_SCHEMA)
    assert res.rows.schema == pl.Schema(frames.ROW_CENTROID_SCHEMA)
    ids, C = ref_centroids(X, labels)
    assert res.clusters["cluster"].to_list() == ids.tolist()
    np.testing.assert_allclose(res.centroids, C, atol=ATOL)
    Xn = unit64(X)
    slot = np.searchsorted(ids, labels)
    row_sim = np.where(
        labels >= 0, np.einsum("ij,ij->i", Xn, C[np.minimum(slot, len(ids) - 1)]), np.nan
    )
    sizes = dict(zip(*np.unique(labels, return_counts=True), strict=True))
    lone = np.array([labels[i] >= 0 and sizes[labels[i]] == 1 for i in range(n)])
    got = res.rows["centroid_similarity"].to_numpy()
    # null for noise and for singletons (a lone row is its own centroid)
    np.testing.assert_array_equal(np.isnan(got), (labels < 0) | lone)
    if kind != "random":
        assert lone.any()
    kept = (labels >= 0) & ~lone
    np.testing.assert_allclose(got[kept], row_sim[kept], atol=ATOL)
    assert res.rows["cluster"].to_list() == labels.tolist()
    for i, row in enumerate(res.clusters.iter_rows(named=True)):
        members = np.flatnonzero(labels == ids[i])
        s = row_sim[members]
        check_stats(
            [row["centroid_sim_mean"], row["centroid_sim_min"], row["centroid_sim_max"]],
            [None] * 3 if members.size == 1 else [s.mean(), s.min(), s.max()],
        )
        # the medoid is a most-similar member (up to float ties)
        assert row["medoid"] in members
        assert row_sim[row["medoid"]] >= s.max() - ATOL
        # medoid = member with the largest total similarity to the cluster
        tot = (Xn[members] @ Xn[members].T).sum(axis=1)
        assert tot[members == row["medoid"]][0] >= tot.max() - 1e-4
    # nearest cluster by centroid similarity
    S = C @ C.T
    np.fill_diagonal(S, -np.inf)
    np.testing.assert_allclose(res.clusters["nearest_cluster_similarity"], S.max(axis=1), atol=ATOL)
    nearest = res.clusters["nearest_cluster"].to_numpy()
    np.testing.assert_allclose(
        S[np.arange(len(ids)), np.searchsorted(ids, nearest)], S.max(axis=1), atol=ATOL
    )


def test_centroid_matrix_and_inter_frame():
    n, d = 900, 12
    X = clustered_embeddings(9, n, d)
    labels = labellings(n, 4)["random"]
    ids, C = ref_centroids(X, labels)
    got_ids, M = ops.centroid_similarity_matrix(X, labels)
    assert got_ids.tolist() == ids.tolist()
    assert M.dtype == np.float32 and M.shape == (len(ids), len(ids))
    np.testing.assert_allclose(M, C @ C.T, atol=ATOL)
    S = C @ C.T
    K = len(ids)
    full = ops.inter_centroid(X, labels)
    assert full.schema == pl.Schema(frames.INTER_SCHEMA)
    assert full.height == K * (K - 1)
    a = np.searchsorted(ids, full["cluster_a"].to_numpy())
    b = np.searchsorted(ids, full["cluster_b"].to_numpy())
    assert (a != b).all()
    np.testing.assert_allclose(full["centroid_similarity"], S[a, b], atol=ATOL)
    # grouped by cluster_a ascending, most similar first
    assert (np.diff(a) >= 0).all()
    sims = full["centroid_similarity"].to_numpy()
    assert (np.diff(sims)[np.diff(a) == 0] <= 0).all()
    top = ops.inter_centroid(X, labels, top_m=2)
    assert top.height == 2 * K
    want = full.group_by("cluster_a", maintain_order=True).head(2)
    np.testing.assert_allclose(top["centroid_similarity"], want["centroid_similarity"], atol=ATOL)
    assert ops.inter_centroid(X, labels, top_m=10 * K).height == K * (K - 1)


def test_linkage_matches_brute_force():
    n, d = 2400, 8
    X = clustered_embeddings(2, n, d)
    labels = np.where(np.arange(n) < 1500, 0, np.arange(n) % 3 + 5)
    labels[::97] = -1
    pairs = [(0, 5), (6, 0), (5, 7)]
    df = ops.cluster_linkage(X, labels, pairs)
    assert df.schema == pl.Schema(frames.LINKAGE_SCHEMA)
    Xn = unit64(X)
    for row, (a, b) in zip(df.iter_rows(named=True), pairs, strict=True):
        S = Xn[labels == a] @ Xn[labels == b].T
        assert (row["cluster_a"], row["cluster_b"], row["n_pairs"]) == (a, b, S.size)
        check_stats([row["sim_mean"], row["sim_min"], row["sim_max"]], [S.mean(), S.min(), S.max()])
    assert ops.cluster_linkage(X, labels, []).schema == pl.Schema(frames.LINKAGE_SCHEMA)
    with pytest.raises(ParameterError, match="does not exist"):
        ops.cluster_linkage(X, labels, [(0, 4)])
    with pytest.raises(ParameterError, match="itself"):
        ops.cluster_linkage(X, labels, [(5, 5)])


# --------------------------------------------------------------------------- quality scores


@pytest.mark.parametrize("kind", ["random", "giant+singletons", "many_small"])
@pytest.mark.parametrize(("n", "d"), [(400, 6), (2100, 48)])
def test_silhouette_matches_sklearn(n, d, kind):
    X = clustered_embeddings(n + 1, n, d)
    labels = labellings(n, d)[kind]
    res = ops.silhouette(X, labels, n_threads=2)
    assert res.rows.schema == pl.Schema(frames.ROW_SILHOUETTE_SCHEMA)
    assert res.clusters.schema == pl.Schema(frames.SILHOUETTE_SCHEMA)
    keep = labels >= 0
    # float64 input: scikit-learn's own distances are then exact to ~1e-16
    want = silhouette_samples(unit64(X)[keep], labels[keep], metric="cosine")
    got = res.rows["silhouette"].to_numpy()
    np.testing.assert_array_equal(np.isnan(got), ~keep)
    np.testing.assert_allclose(got[keep], want, atol=ATOL, rtol=0)
    assert res.mean == pytest.approx(want.mean(), abs=ATOL)
    # ... and scikit-learn on the raw float32 rows, exactly as a user would call it
    raw = silhouette_samples(X[keep], labels[keep], metric="cosine")
    np.testing.assert_allclose(got[keep], raw, atol=ATOL, rtol=0)
    for row in res.clusters.iter_rows(named=True):
        m = labels[keep] == row["cluster"]
        assert row["size"] == m.sum()
        assert row["silhouette_mean"] == pytest.approx(want[m].mean(), abs=ATOL)


@pytest.mark.parametrize("kind", ["random", "giant+singletons", "many_small"])
def test_davies_bouldin_and_calinski_harabasz_match_sklearn(kind):
    n, d = 1800, 20
    X = clustered_embeddings(21, n, d)
    labels = labellings(n, 21)[kind]
    keep = labels >= 0
    Xn = unit64(X)[keep]
    assert ops.davies_bouldin(X, labels) == pytest.approx(
        davies_bouldin_score(Xn, labels[keep]), rel=1e-5
    )
    assert ops.calinski_harabasz(X, labels) == pytest.approx(
        calinski_harabasz_score(Xn, labels[keep]), rel=1e-5
    )


# --------------------------------------------------------------------------- determinism


def test_identical_for_one_and_two_threads():
    n, d = 3000, 40
    X = clustered_embeddings(77, n, d)
    labels = labellings(n, 77)["giant+singletons"]
    src, dst, _ = ops.knn_edges(X, 5, 0.0)
    other = int(labels[labels > 7].min())

    def run(t):
        c = ops.centroid_stats(X, labels, n_threads=t)
        s = ops.silhouette(X, labels, n_threads=t)
        return (
            ops.intra_stats(X, labels, edges=(src, dst), n_threads=t),
            c.clusters,
            c.rows,
            ops.inter_centroid(X, labels, top_m=3, n_threads=t),
            ops.cluster_linkage(X, labels, [(7, other)], n_threads=t),
            s.rows,
            s.clusters,
            s.mean,
            c.centroids.tobytes(),
            ops.davies_bouldin(X, labels, n_threads=t),
            ops.calinski_harabasz(X, labels, n_threads=t),
        )

    one, two = run(1), run(2)
    for a, b in zip(one, two, strict=True):
        if isinstance(a, pl.DataFrame):
            assert a.equals(b, null_equal=True)
        else:
            assert a == b


# --------------------------------------------------------------------------- edge cases, bad input


def test_all_noise_gives_empty_frames_with_schema():
    X = np.eye(3)
    labels = [-1, -1, -1]
    assert ops.intra_stats(X, labels).schema == pl.Schema(frames.INTRA_SCHEMA)
    assert ops.intra_stats(X, labels).height == 0
    res = ops.centroid_stats(X, labels)
    assert res.clusters.height == 0 and res.clusters.schema == pl.Schema(frames.CENTROID_SCHEMA)
    assert res.rows["centroid_similarity"].null_count() == 3
    assert res.centroids.shape == (0, 3)
    inter = ops.inter_centroid(X, labels)
    assert inter.height == 0 and inter.schema == pl.Schema(frames.INTER_SCHEMA)
    ids, M = ops.centroid_similarity_matrix(X, labels)
    assert ids.shape == (0,) and M.shape == (0, 0)


def test_one_cluster_has_no_nearest_cluster():
    res = ops.centroid_stats(np.eye(3), [4, 4, -1])
    assert res.clusters["nearest_cluster"].to_list() == [None]
    assert res.clusters["nearest_cluster_similarity"].to_list() == [None]
    assert ops.inter_centroid(np.eye(3), [4, 4, -1]).height == 0


def test_cancelling_members_have_no_centroid():
    X = [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, 2.0]]
    res = ops.centroid_stats(X, [0, 0, 1, 1])
    row = res.clusters.row(0, named=True)
    assert row["centroid_sim_mean"] is None and row["medoid"] is None
    assert np.isnan(res.centroids[0]).all()
    assert res.rows["centroid_similarity"].to_list()[:2] == [None, None]
    assert ops.inter_centroid(X, [0, 0, 1, 1]).height == 0


def test_cluster_id_gaps_are_allowed():
    X = clustered_embeddings(3, 200, 8)
    labels = np.repeat([5, 1_000_000_000_000, 17, -1], 50)
    a = ops.intra_stats(X, labels)
    assert a["cluster"].to_list() == [5, 17, 1_000_000_000_000]
    dense = np.searchsorted([5, 17, 1_000_000_000_000], labels)
    dense[labels < 0] = -1
    b = ops.intra_stats(X, dense)
    assert a.drop("cluster").equals(b.drop("cluster"))
    assert ops.silhouette(X, labels).mean == ops.silhouette(X, dense).mean


ALL_FUNCS = [
    ops.intra_stats,
    lambda X, lab: ops.centroid_stats(X, lab),
    ops.inter_centroid,
    ops.centroid_similarity_matrix,
    ops.silhouette,
    ops.davies_bouldin,
    ops.calinski_harabasz,
    lambda X, lab: ops.cluster_linkage(X, lab, [(0, 1)]),
]


@pytest.mark.parametrize("fn", ALL_FUNCS)
def test_bad_labels(fn):
    X = clustered_embeddings(1, 20, 4)
    good = np.arange(20) % 3
    with pytest.raises(ShapeError, match="labels has 19 entries but X has 20 rows"):
        fn(X, good[:19])
    with pytest.raises(ParameterError, match=r"another negative label: 3, 7"):
        fn(X, np.where(np.isin(np.arange(20), [3, 7]), -2, good))
    with pytest.raises(InvalidInputError, match="integer cluster ids"):
        fn(X, good.astype(np.float64))
    with pytest.raises(ShapeError, match="1-D"):
        fn(X, good.reshape(4, 5))
    bad = X.copy()
    bad[[2, 9]] = np.nan
    with pytest.raises(InvalidInputError, match=r"NaN or Inf in 2 row\(s\): 2, 9"):
        fn(bad, good)
    bad = X.copy()
    bad[4] = 0
    with pytest.raises(InvalidInputError, match=r"zero norm.*: 4"):
        fn(bad, good)
    # NaN in a noise row is still an error
    bad = X.copy()
    bad[5] = np.inf
    with pytest.raises(InvalidInputError, match=r": 5$"):
        fn(bad, np.where(np.arange(20) == 5, -1, good))


@pytest.mark.parametrize("fn", [ops.silhouette, ops.davies_bouldin, ops.calinski_harabasz])
def test_scores_need_two_to_n_minus_one_clusters(fn):
    X = clustered_embeddings(1, 10, 4)
    with pytest.raises(ParameterError, match="2 <= K <= n - 1"):
        fn(X, np.zeros(10, dtype=np.int64))
    with pytest.raises(ParameterError, match="2 <= K <= n - 1"):
        fn(X, np.where(np.arange(10) < 2, np.arange(10), -1))


def test_bad_edges_and_parameters():
    X = clustered_embeddings(1, 20, 4)
    labels = np.arange(20) % 3
    with pytest.raises(ParameterError, match="node id >= N = 20"):
        ops.intra_stats(X, labels, edges=([0, 1], [1, 20]))
    with pytest.raises(ShapeError, match="same length"):
        ops.intra_stats(X, labels, edges=([0, 1], [1]))
    with pytest.raises(ShapeError, match="edges must be"):
        ops.intra_stats(X, labels, edges=([0, 1],))
    with pytest.raises(ParameterError, match="not a valid node id"):
        ops.intra_stats(X, labels, edges=([-1], [1]))
    with pytest.raises(ParameterError, match="top_m"):
        ops.inter_centroid(X, labels, top_m=0)
    with pytest.raises(ShapeError, match="pairs"):
        ops.cluster_linkage(X, labels, [1, 2, 3])
    with pytest.raises(ParameterError, match="n_threads"):
        ops.intra_stats(X, labels, n_threads=0)
