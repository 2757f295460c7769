"""What the report shows, chosen by simclust.report.data: checked against numpy, no HTML."""

import numpy as np
import polars as pl
import pytest
import simclust
from _reference import bridged_groups_and_an_arc
from simclust.report import data
from simclust.testing import make_embeddings

METRICS = ["intra", "edge", "centroid", "inter", "silhouette"]


@pytest.fixture(scope="module")
def x():
    return make_embeddings(400, 12, n_clusters=9, seed=5, outlier_frac=0.05).astype(np.float64)


@pytest.fixture(scope="module")
def res(x):
    # min_size=3: components of 1-2 rows become noise (label -1)
    return simclust.analyze(x, threshold=0.85, min_size=3, metrics=METRICS)


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _centroid_sims(x, labels):
    """Per row: cosine similarity to its cluster's centroid (nan for noise)."""
    u = _unit(x)
    out = np.full(len(x), np.nan)
    for c in np.unique(labels[labels >= 0]):
        rows = labels == c
        centre = u[rows].mean(axis=0)
        out[rows] = u[rows] @ (centre / np.linalg.norm(centre))
    return out


def _arc_result():
    """An elongated cluster (an arc, ends opposite) and a tight one."""
    angles = np.arange(10) * 0.35
    arc = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], axis=1)
    tight = np.array([0.0, 0.0, 1.0]) + np.random.default_rng(3).normal(0, 0.02, size=(8, 3))
    return simclust.analyze(np.vstack([arc, tight]), threshold=0.9, metrics=METRICS)


def test_fixture_has_noise_and_many_clusters(res):
    labels = res.assignments["cluster"].to_numpy()
    assert (labels < 0).sum() > 0
    assert res.clusters.filter(pl.col("size") >= 2).height >= 5


def test_centroid_similarity_matches_numpy(res, x):
    labels = res.assignments["cluster"].to_numpy()
    want = _centroid_sims(x, labels)
    got = res.assignments["centroid_similarity"].to_numpy().astype(np.float64)
    keep = labels >= 0
    np.testing.assert_allclose(got[keep], want[keep], atol=1e-5)


@pytest.mark.parametrize("gallery_size", [4, 8, 24, 1000])
def test_galleries_are_the_largest_clusters_ordered_by_centroid_similarity(res, x, gallery_size):
    labels = res.assignments["cluster"].to_numpy()
    sims = _centroid_sims(x, labels)
    medoid = dict(zip(res.clusters["cluster"], res.clusters["medoid"], strict=True))
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    largest = sorted(
        (int(c) for c, n in zip(ids, counts, strict=True) if n >= 2),
        key=lambda c: (-int(counts[ids == c][0]), c),
    )[:5]

    gals = data.galleries(res, max_clusters=5, gallery_size=gallery_size)
    assert [int(g.row["cluster"]) for g in gals] == largest

    n_tail = gallery_size // 4 if gallery_size >= 8 else 0
    for g in gals:
        c = int(g.row["cluster"])
        rows = np.flatnonzero(labels == c)
        # medoid first, then similarity to the centroid (highest first), ties by row
        order = sorted(rows, key=lambda i: (i != medoid[c], -round(sims[i], 5), i))
        shown = [m.index for m in (*g.head, *g.tail)]
        assert g.head[0].medoid and g.head[0].index == medoid[c]
        assert not any(m.medoid for m in (*g.head[1:], *g.tail))
        if rows.size <= gallery_size:
            assert shown == order and g.tail == [] and g.omitted == 0
            assert g.omitted_range == (None, None)
        else:
            head, tail = order[: gallery_size - n_tail], order[rows.size - n_tail :]
            assert [m.index for m in g.head] == head
            assert [m.index for m in g.tail] == tail
            assert g.omitted == rows.size - gallery_size
            middle = sims[order[len(head) : rows.size - n_tail]]
            lo, hi = g.omitted_range
            assert lo == pytest.approx(middle.min(), abs=1e-5)
            assert hi == pytest.approx(middle.max(), abs=1e-5)
        for m in (*g.head, *g.tail):
            assert m.similarity == pytest.approx(sims[m.index], abs=1e-5)


def test_no_galleries_without_clusters_of_two():
    res = simclust.analyze(np.eye(4), threshold=0.5, metrics=["intra", "centroid"])
    assert data.galleries(res, max_clusters=10, gallery_size=5) == []
    # every row's nearest is at similarity 0: all tie at the cut-off
    assert data.outliers(res, 5).rows["index"].to_list() == [0, 1, 2, 3]


def test_chained_clusters_are_results_chained_clusters():
    x, _ = bridged_groups_and_an_arc()
    res = simclust.analyze(x, threshold=0.9, metrics=METRICS)
    want = res.chained_clusters()
    got = data.chained_clusters(res, res.threshold())
    assert want.height == 1
    assert got["cluster"].to_list() == want["cluster"].to_list()
    assert got.columns == [*res.clusters.columns, "why"]
    row = got.row(0, named=True)
    assert row["size"] == 40
    # 3 of the 2 x 190 + 3 edge ends of either group cross to the other
    assert row["why"] == (
        "2 parts of \u2265 10% (and \u2265 3 members) at similarity \u2265 0.920, one joined "
        f"to the rest with conductance {3 / 383:.4f} < 0.05"
    )
    none = data.chained_clusters(res, None)
    assert none.height == 0 and "why" in none.columns
    # an arc alone (all-pairs minimum about cos 3.15) is not chained
    assert _arc_result().chained_clusters().height == 0


def test_outliers_are_the_rows_least_similar_to_their_nearest(res, x):
    u = _unit(x)
    s = u @ u.T
    np.fill_diagonal(s, -np.inf)
    nearest = s.max(axis=1)
    cut = np.percentile(nearest, 1.0, method="lower")
    got = data.outliers(res, 12)
    assert got.cutoff == pytest.approx(cut, abs=1e-6) and got.percentile == 1.0
    want = np.flatnonzero(nearest <= cut + 1e-6)
    # 1 % of 400 rows is 4; a fifth, the 4th row's mutual nearest, ties with it
    assert got.n_flagged == want.size == got.rows.height == 5 and got.n_scored == len(x)
    assert sorted(got.rows["index"].to_list()) == want.tolist()
    np.testing.assert_allclose(got.rows["nn_similarity"], nearest[got.rows["index"]], atol=1e-6)
    assert got.rows["nn_similarity"].is_sorted()
    labels = res.assignments["cluster"].to_numpy()
    sizes = dict(zip(res.clusters["cluster"], res.clusters["size"], strict=True))
    want_size = [sizes.get(int(labels[i])) for i in got.rows["index"]]
    assert got.rows["size"].to_list() == want_size
    assert None in want_size  # noise rows are in the view (min_size=3)
    assert data.outliers(res, 2).rows["index"].to_list() == got.rows["index"].to_list()[:2]


def test_noise_rows_are_the_first_unclustered_rows(res):
    labels = res.assignments["cluster"].to_numpy()
    noise = np.flatnonzero(labels < 0)
    assert data.noise_rows(res, 5)["index"].to_list() == noise[:5].tolist()
    assert data.noise_rows(res, 10_000).height == noise.size


def test_heatmap_is_the_largest_clusters_centroid_similarities(res, x):
    labels = res.assignments["cluster"].to_numpy()
    hm = data.heatmap(res, max_clusters=4)
    assert hm is not None
    matrix_ids = [int(c) for c in res.centroid_matrix_clusters]
    assert hm.n_matrix == len(matrix_ids)
    sizes = {c: int((labels == c).sum()) for c in matrix_ids}
    want = sorted(matrix_ids, key=lambda c: (-sizes[c], c))[:4]
    assert hm.clusters == want
    assert hm.sizes == [sizes[c] for c in want]
    u = _unit(x)
    centres = np.stack([u[labels == c].mean(axis=0) for c in want])
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    np.testing.assert_allclose(hm.similarity, centres @ centres.T, atol=1e-5)
    assert data.heatmap(res, max_clusters=0).clusters == []


def test_no_heatmap_without_the_inter_metric(x):
    res = simclust.analyze(x, threshold=0.85, metrics=["intra"])
    assert data.heatmap(res, max_clusters=10) is None


def test_tightness_clusters_keep_the_largest_and_every_chained(res):
    eligible = res.clusters.filter((pl.col("size") >= 2) & pl.col("sim_min").is_not_null())
    frame, total = data.tightness_clusters(res, set())
    assert total == eligible.height and frame.equals(eligible)
    ranked = eligible.sort(["size", "cluster"], descending=[True, False])
    smallest = int(ranked["cluster"][-1])
    frame, total = data.tightness_clusters(res, {smallest}, limit=3)
    assert total == eligible.height
    assert frame["cluster"].to_list() == [*ranked["cluster"][:3].to_list(), smallest]


def test_size_histogram_counts_every_cluster_and_row(res):
    sizes = res.clusters["size"].to_numpy()
    bins = data.size_histogram(res)
    labels = [b.label for b in bins]
    assert labels[:4] == ["1", "2", "3\u20134", "5\u20138"][: len(labels)]
    assert sum(b.n_clusters for b in bins) == sizes.size
    assert sum(b.n_rows for b in bins) == sizes.sum()
    for b in bins:
        lo, _, hi = b.label.partition("\u2013")
        inside = (sizes >= int(lo)) & (sizes <= int(hi or lo))
        assert (b.n_clusters, b.n_rows) == (int(inside.sum()), int(sizes[inside].sum()))
    assert bins[-1].n_clusters > 0 and int(bins[-1].label.split("\u2013")[-1]) >= sizes.max()


# --------------------------------------------------------------------------- sizes, sweep


def test_size_histogram_makes_one_big_cluster_stand_out():
    """A cluster with 22 % of the rows is a bar of 66 rows beside the singletons' 234
    (by clusters it would be 1 against 234, a sliver)."""
    rng = np.random.default_rng(11)
    big = np.array([1.0, 0.0, 0.0, 0.0]) + rng.normal(0, 0.01, size=(66, 4))
    rest = rng.normal(size=(234, 4))  # random directions: mostly singletons and pairs
    res = simclust.analyze(np.vstack([big, rest]), threshold=0.999, metrics=["intra"])
    sizes = res.clusters["size"].to_numpy()
    assert sizes.max() == 66
    bins = data.size_histogram(res)
    top = next(b for b in bins if b.label == "65\u2013128")
    assert (top.n_clusters, top.n_rows) == (1, 66)
    assert top.n_rows / sizes.sum() == pytest.approx(0.22)
    assert [b.n_rows for b in bins] == [
        int(sizes[(sizes >= lo) & (sizes <= hi)].sum())
        for lo, hi in [(1, 1), (2, 2), *((2**b + 1, 2 ** (b + 1)) for b in range(1, 7))]
    ]


def test_default_sweep_starts_below_the_threshold_and_counts_all_pairs(x, res):
    """The sweep runs from 0.1 below the run's threshold, and each count is over every
    pair at or above that threshold (the graph built at the lowest), not the run's graph."""
    from _reference import ref_sweep

    sw = res.sweep
    t = res.threshold()
    assert sw["threshold"].min() == pytest.approx(t - 0.1)
    assert sw["threshold"].max() == pytest.approx(0.99)
    u = _unit(x).astype(np.float32)
    s = u.astype(np.float64) @ u.astype(np.float64).T
    src, dst = np.triu_indices(len(x), 1)
    want = ref_sweep(len(x), src, dst, s[src, dst], sw["threshold"].to_numpy())
    below = sw.filter(pl.col("threshold") < t)
    assert below.height >= 9
    # on the run's graph (edges >= t only) every count below t would equal the count at t
    at_t = sw.filter(pl.col("threshold") >= t)["n_components"][0]
    assert below["n_components"].min() < at_t
    assert list(zip(sw["n_components"], sw["largest_component"], strict=True)) == want


# --------------------------------------------------------------------------- suspect labels


@pytest.fixture(scope="module")
def labelled(x, res):
    """Each row labelled with its cluster's id, except every 7th row of clusters >= 3."""
    labels = res.assignments["cluster"].to_numpy()
    names = np.array([f"class-{c}" for c in labels], dtype=object)
    wrong = np.flatnonzero((np.arange(len(x)) % 7 == 0) & (labels >= 0))
    names[wrong] = "<b>odd</b>"
    r = simclust.analyze(
        x,
        threshold=0.85,
        min_size=3,
        metrics=[*METRICS, "label-purity"],
        rows=pl.DataFrame({"label": names.tolist()}),
    )
    return r, names


def test_suspect_labels_are_the_minority_rows_of_pure_clusters(labelled):
    r, names = labelled
    labels = r.assignments["cluster"].to_numpy()
    want = []
    for c in np.unique(labels[labels >= 0]):
        rows = np.flatnonzero(labels == c)
        values, counts = np.unique(names[rows].astype(str), return_counts=True)
        best = counts.max()
        majority = min(v for v, n in zip(values, counts, strict=True) if n == best)
        if rows.size >= 3 and best / rows.size >= 0.8:
            want += [(-rows.size, int(c), int(i), majority) for i in rows if names[i] != majority]
    want.sort()
    got = data.suspect_labels(r, n=1000)
    assert got is not None and want
    assert got.n_suspect == len(want)
    assert got.n_clusters == len({c for _, c, _, _ in want})
    assert got.rows.select("cluster", "index", "majority_label").rows() == [
        (c, i, m) for _, c, i, m in want
    ]
    assert (got.rows["label"] != got.rows["majority_label"]).all()
    head = data.suspect_labels(r, n=3)
    assert head is not None and head.rows.height == 3 and head.n_suspect == len(want)


def test_suspect_labels_absent_without_the_metric(res):
    assert data.suspect_labels(res, n=10) is None


# --------------------------------------------------------------------------- duplicates


@pytest.fixture(scope="module")
def dup_result():
    """60 random rows, then 3 near-copies of row 0, 2 of row 1 and 1 of row 2."""
    rng = np.random.default_rng(21)
    base = rng.normal(size=(60, 16))
    copies = [base[i] + rng.normal(0, 0.02, size=16) for i in (0, 0, 0, 1, 1, 2)]
    xd = np.vstack([base, copies])
    ids = [f"photos/{i:03d}/IMG_{i:04d}.jpg" for i in range(len(xd))]
    r = simclust.analyze(xd, ids=ids, threshold=0.9, config={"dedup": {"threshold": 0.99}})
    return r, xd


def test_duplicate_groups_largest_first_kept_first(dup_result):
    r, xd = dup_result
    u = _unit(xd)
    s = u @ u.T
    n = len(xd)
    # independent groups: components of the pairs >= 0.99 (union by repeated relabelling)
    comp = np.arange(n)
    pairs = np.argwhere(np.triu(s >= 0.99, 1))
    for _ in range(n):
        for a, b in pairs:
            comp[a] = comp[b] = min(comp[a], comp[b])
    groups = [np.flatnonzero(comp == c) for c in np.unique(comp)]
    groups = sorted((g for g in groups if g.size >= 2), key=lambda g: (-g.size, g.min()))
    assert [g.size for g in groups] == [4, 3, 2]

    got = data.duplicate_groups(r, max_groups=2, max_members=3)
    assert got is not None
    assert got.summary["n_groups"] == 3 and got.summary["n_to_remove"] == 6
    assert [(g.size, g.members.height) for g in got.groups] == [(4, 3), (3, 3)]
    for g, rows in zip(got.groups, groups, strict=False):
        kept = int(g.members["row"][0])
        assert g.members["kept"].to_list() == [True] + [False] * (g.members.height - 1)
        assert kept in rows
        others = sorted((r_ for r_ in rows if r_ != kept), key=lambda r_: (-s[kept, r_], r_))
        assert g.members["row"].to_list()[1:] == others[: g.members.height - 1]
        np.testing.assert_allclose(
            g.members["similarity_to_kept"].to_numpy()[1:],
            s[kept, others[: g.members.height - 1]],
            atol=1e-6,
        )
        want_pairs = sorted(
            (-s[a, b], a, b) for a in rows for b in rows if a < b and s[a, b] >= 0.99
        )
        assert g.n_pairs == len(want_pairs)
        assert g.pairs.select("src", "dst").rows() == [(a, b) for _, a, b in want_pairs][:3]
        np.testing.assert_allclose(
            g.pairs["similarity"].to_numpy(), [-v for v, _, _ in want_pairs][:3], atol=1e-6
        )


def test_duplicate_groups_absent_without_dedup(res):
    assert data.duplicate_groups(res, max_groups=5, max_members=5) is None
