"""The distributed metrics (issue 14 step 5): intra, centroid and inter by tasks over clusters.

Rows grouped by cluster into tasks of about a block's rows (small clusters packed into
one task, a giant cluster cut into pieces whose pairs are tile tasks), the per-cluster
sums reduced on the driver: against the native metrics on seeded inputs (a giant
cluster bigger than a task with singletons and noise, exact duplicates, k-means labels,
blobs, connected components with noise), under the cosine, Euclidean and dot kernels,
and against a naive float64 all-pairs computation. Then the whole analysis, in process
and on a local Ray runtime: the native ``clusters``, ``assignments`` and ``inter`` frames.
"""

from __future__ import annotations

import sys
from typing import ClassVar

import numpy as np
import polars as pl
import pytest
import ray
import simclust
from polars.testing import assert_frame_equal
from simclust import ops, pipeline
from simclust.distances import GEOMETRY_COLUMNS, Distance
from simclust.distributed import DistributedBackend, InProcessExecutor
from simclust.distributed._metrics import TaskLabelling
from simclust.exceptions import InvalidInputError, ParameterError
from simclust.testing import make_embeddings

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class InnerProduct(Distance):
    """The raw inner product: a similarity on the ``dot`` kernel."""

    kernel = "dot"
    higher_is_closer = True
    columns: ClassVar[dict[str, str]] = {
        c: c.replace("similarity", "dot").replace("sim", "dot") for c in GEOMETRY_COLUMNS
    }


DISTANCES: dict[str, type[Distance] | str] = {
    "cosine": "cosine",
    "euclidean": "euclidean",
    "dot": InnerProduct,
}
TOL = {"check_exact": False, "rel_tol": 1e-6, "abs_tol": 1e-6}
METRICS = ["intra", "centroid", "inter"]


def _giant(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A cluster of 2,600 rows (3 pieces of 1,024), 300 singletons, 100 noise rows."""
    rng = np.random.default_rng(seed)
    x = np.concatenate(
        [np.ones(12) + 0.3 * rng.standard_normal((2600, 12)), rng.standard_normal((400, 12))]
    )
    labels = np.r_[np.full(2600, 5), np.arange(10, 310), np.full(100, -1)]
    perm = rng.permutation(x.shape[0])  # members scattered over the input
    return x[perm].astype(np.float32), labels[perm].astype(np.int64)


def _duplicates(seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Exact duplicates: 30 distinct rows repeated, labelled by the row they repeat."""
    rng = np.random.default_rng(seed)
    which = rng.integers(0, 30, 2500)
    return rng.standard_normal((30, 8)).astype(np.float32)[which], which.astype(np.int64)


def _kmeans(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    x = make_embeddings(3000, 16, n_clusters=6, seed=seed)
    return x, ops.kmeans(x, 7, random_state=0)[0]


def _blobs(seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Blobs of 40-1,500 rows, labelled by blob, a few rows noise."""
    rng = np.random.default_rng(seed)
    sizes = [1500, 700, 300, 40, 40, 200]
    centres = rng.standard_normal((len(sizes), 10))
    x = np.concatenate(
        [c + 0.4 * rng.standard_normal((s, 10)) for c, s in zip(centres, sizes, strict=True)]
    )
    labels = np.repeat(np.arange(len(sizes)) * 3, sizes)
    labels[rng.choice(labels.size, 50, replace=False)] = -1
    return x.astype(np.float32), labels


def _components(seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Connected components at t = 0.8 with min_size 3: the small ones are noise."""
    x = ops.normalize(make_embeddings(3000, 12, n_clusters=5, seed=seed))
    res = simclust.analyze(
        x, strategy="connected-components", threshold=0.8, min_size=3, metrics=["intra"]
    )
    labels = res.assignments["cluster"].to_numpy()
    assert (labels == -1).any() and np.bincount(labels[labels >= 0]).max() > 1024
    return x, labels.astype(np.int64)


INPUTS = {
    "giant": _giant,
    "duplicates": _duplicates,
    "kmeans": _kmeans,
    "blobs": _blobs,
    "components": _components,
}


def _labellings(
    x: np.ndarray, labels: np.ndarray, kernel: str, executor: object = None
) -> tuple[ops.Labelling, ops.Labelling]:
    """(by tasks of 1,024 rows, native) labellings of the rows as the kernel reads them."""
    rows = ops.normalize(x) if kernel == "cosine" else x
    ex = executor or InProcessExecutor()
    tl = TaskLabelling(ex, rows, labels, measure=kernel, task_rows=1024)  # type: ignore[arg-type]
    dist = DISTANCES[kernel]
    return ops.Labelling._over(tl, labels, dist), ops.Labelling(rows, labels, distance=dist)


def _same_frames(got: ops.Labelling, want: ops.Labelling) -> None:
    a, b = ops.intra_stats(got), ops.intra_stats(want)
    assert_frame_equal(a, b, **TOL)
    for c in ("cluster", "size", "n_pairs"):
        assert a[c].to_list() == b[c].to_list()
    a, b = ops.centroid_stats(got), ops.centroid_stats(want)
    assert_frame_equal(a.clusters, b.clusters, **TOL)
    assert_frame_equal(a.rows, b.rows, **TOL)
    np.testing.assert_allclose(a.centroids, b.centroids, rtol=0, atol=1e-6)
    for c in ("cluster", "medoid", "nearest_cluster"):
        assert a.clusters[c].to_list() == b.clusters[c].to_list(), c
    k = want.cluster_ids.size
    if k >= 2:
        m = min(3, k - 1)
        assert_frame_equal(
            ops.inter_centroid(got, top_m=m), ops.inter_centroid(want, top_m=m), **TOL
        )
        ids_a, mat_a = ops.centroid_similarity_matrix(got)
        ids_b, mat_b = ops.centroid_similarity_matrix(want)
        np.testing.assert_array_equal(ids_a, ids_b)
        np.testing.assert_allclose(mat_a, mat_b, rtol=1e-6, atol=1e-6)
    assert got.searches == want.searches


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_cosine_frames_equal_native(name):
    x, labels = INPUTS[name]()
    _same_frames(*_labellings(x, labels, "cosine"))


@pytest.mark.parametrize("kernel", ["euclidean", "dot"])
@pytest.mark.parametrize("name", ["giant", "blobs"])
def test_other_kernels_equal_native(name, kernel):
    x, labels = INPUTS[name]()
    _same_frames(*_labellings(3.0 * x + 1.0, labels, kernel))


def test_giant_is_split_into_tile_tasks_and_small_clusters_packed():
    x, labels = _giant()
    got, _ = _labellings(x, labels, "cosine")
    ops.intra_stats(got)
    ops.centroid_stats(got)
    tl = got._native
    pieces = [p for p in tl.parts if p.piece >= 0]
    assert [p.p1 - p.p0 for p in pieces] == [1024, 1024, 552]
    # 3 pieces: 6 piece pairs; the 300 singletons in one whole part
    assert tl.tasks == {"metric sums": 3, "intra tiles": 6 + 1, "centroid rows": 3 + 1}


def test_small_clusters_are_bit_identical_to_native():
    """Whole clusters run the native kernels on the same rows: the same bits."""
    x, labels = _blobs()
    got, want = _labellings(x, labels, "cosine")
    a, b = ops.intra_stats(got), ops.intra_stats(want)
    small = (b["size"] <= 1024).to_numpy()
    for c in ("sim_mean", "sim_std", "sim_min", "sim_max"):
        u, v = a[c].to_numpy()[small], b[c].to_numpy()[small]
        assert np.array_equal(u, v) and u.dtype == v.dtype, c
    r, s = ops.centroid_stats(got).rows, ops.centroid_stats(want).rows
    assert r["centroid_similarity"].equals(s["centroid_similarity"])


def test_giant_cluster_against_naive_all_pairs():
    x, labels = _giant()
    got, _ = _labellings(x, labels, "cosine")
    df = ops.intra_stats(got).filter(pl.col("cluster") == 5)
    u = x[labels == 5].astype(np.float64)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    sims = (u @ u.T)[np.triu_indices(u.shape[0], 1)]
    row = df.row(0, named=True)
    assert row["n_pairs"] == sims.size == 2600 * 2599 // 2
    assert abs(row["sim_mean"] - sims.mean()) < 1e-6
    assert abs(row["sim_std"] - sims.std()) < 1e-6
    assert abs(row["sim_min"] - sims.min()) < 1e-6 and abs(row["sim_max"] - sims.max()) < 1e-6
    centroid = u.sum(0) / np.linalg.norm(u.sum(0))
    rows = ops.centroid_stats(got).rows.filter(pl.col("cluster") == 5)
    np.testing.assert_allclose(rows["centroid_similarity"].to_numpy(), u @ centroid, atol=1e-6)


def test_bad_input_is_refused():
    x, labels = _blobs()
    with pytest.raises(ParameterError, match="multiple of 1024"):
        TaskLabelling(InProcessExecutor(), x, labels, task_rows=1000)
    tl = TaskLabelling(InProcessExecutor(), x, labels)
    with pytest.raises(ParameterError, match="cluster 1 does not exist"):
        tl.inter_centroid(np.array([0, 1]))


def _analysis(x: np.ndarray, **kw: object) -> simclust.Result:
    return simclust.analyze(x, metrics=METRICS, **kw)  # type: ignore[arg-type]


def _same_results(res: simclust.Result, ref: simclust.Result) -> None:
    assert res.assignments["cluster"].to_list() == ref.assignments["cluster"].to_list()
    for name in ("assignments", "clusters", "inter"):
        assert_frame_equal(getattr(res, name), getattr(ref, name), **TOL)
    for c in ("cluster", "size", "n_pairs", "medoid", "nearest_cluster"):
        assert res.clusters[c].to_list() == ref.clusters[c].to_list(), c
    assert res.metric_searches == ref.metric_searches


def test_in_process_analysis_equals_native(monkeypatch):
    x = make_embeddings(4000, 16, n_clusters=4, seed=8)  # components of > 1,024 rows
    seen: list[tuple[str, int, int]] = []
    monkeypatch.setattr(
        pipeline,
        "graph_backend",
        lambda run: DistributedBackend(InProcessExecutor(), block_rows=1024),
    )
    kw = {"threshold": 0.8, "min_size": 2}
    res = _analysis(x, progress=lambda *a: seen.append(a), **kw)
    monkeypatch.undo()
    _same_results(res, _analysis(x, **kw))
    assert max(res.clusters["size"]) > 1024  # a giant split into pieces
    stages = {s for s, d, t in seen if 0 < d <= t}
    assert {"metric:intra", "metric:centroid"} <= stages


def test_other_metrics_run_natively_beside(monkeypatch):
    """silhouette and edge are not distributed: the driver runs them, the same frames."""
    x = make_embeddings(2500, 8, n_clusters=5, seed=9)
    monkeypatch.setattr(
        pipeline,
        "graph_backend",
        lambda run: DistributedBackend(InProcessExecutor(), block_rows=1024),
    )
    kw = {"threshold": 0.85, "metrics": ["intra", "edge", "silhouette", "centroid"]}
    res = simclust.analyze(x, **kw)  # type: ignore[arg-type]
    monkeypatch.undo()
    ref = simclust.analyze(x, **kw)  # type: ignore[arg-type]
    assert_frame_equal(res.clusters, ref.clusters, **TOL)
    assert_frame_equal(res.assignments, ref.assignments, **TOL)


class TestLocalRuntime:
    def test_tasks_on_ray_equal_native_and_in_process(self, runtime):
        x, labels = _giant()
        got, want = _labellings(x, labels, "cosine", runtime)
        _same_frames(got, want)
        inproc, _ = _labellings(x, labels, "cosine")
        # deterministic whatever ran the tasks: the same bits as in process
        assert ops.intra_stats(got).equals(ops.intra_stats(inproc))
        assert ops.centroid_stats(got).rows.equals(ops.centroid_stats(inproc).rows)

    def test_analysis_on_ray_equals_native(self, runtime):
        x = make_embeddings(4000, 16, n_clusters=4, seed=8)
        kw = {"threshold": 0.8, "min_size": 2}
        _same_results(_analysis(x, backend="ray", **kw), _analysis(x, **kw))

    def test_a_bad_row_names_its_stage_and_task(self, runtime):
        x, labels = _blobs()
        x[np.flatnonzero(labels == 3)[7]] = np.nan  # in the whole part of clusters 3..9
        tl = TaskLabelling(runtime, x, labels, measure="euclidean", task_rows=1024)
        with pytest.raises(InvalidInputError, match=r"stage 'intra tiles', clusters 3\.\.9 "):
            tl.intra_stats()
        x[np.flatnonzero(labels == 0)[1100]] = np.nan  # the giant's second piece
        tl = TaskLabelling(runtime, x, labels, measure="euclidean", task_rows=1024)
        with pytest.raises(InvalidInputError, match=r"'metric sums', cluster 0 piece 1 \(members"):
            tl.centroid_stats()
