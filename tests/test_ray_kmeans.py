"""The distributed spherical k-means (issue 14 step 3): Lloyd steps as tasks over row blocks.

Against the native k-means on seeded inputs (a giant cluster with singletons, exact
duplicates with more clusters than distinct rows, separated blobs) cut into 1, 2 and 5
blocks: the same labels, centroids, objective and iterations, bit for bit (it is the
same computation: exact fixed-point sums, the native assignment span by span). The
objective is checked independently (recomputed in float64, and against scikit-learn's
KMeans on the unit rows). Then the whole analysis with ``strategy="kmeans"``: in process
and on a local Ray runtime, the native frames.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
import ray
import simclust
from polars.testing import assert_frame_equal
from simclust import ops, pipeline
from simclust.distributed import (
    KMEANS_BLOCK_ALIGN,
    DistributedBackend,
    InProcessExecutor,
    distributed_kmeans,
    kmeans_block_rows,
)
from simclust.exceptions import InvalidInputError, ParameterError
from simclust.testing import make_embeddings

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

N = 5 * KMEANS_BLOCK_ALIGN - 300  # 20,180 rows: 5, 2 or 1 blocks below
BLOCKS = {5: KMEANS_BLOCK_ALIGN, 2: 3 * KMEANS_BLOCK_ALIGN, 1: 5 * KMEANS_BLOCK_ALIGN}


def _giant_and_singletons(seed: int = 1) -> np.ndarray:
    """One dense cluster of most rows, plus 300 random directions."""
    rng = np.random.default_rng(seed)
    giant = np.ones(12) + 0.2 * rng.standard_normal((N - 300, 12))
    return np.concatenate([giant, rng.standard_normal((300, 12))]).astype(np.float32)


def _duplicates(seed: int = 2) -> np.ndarray:
    """25 distinct rows, each repeated: more clusters than directions, re-seeds, empties."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((25, 8)).astype(np.float32)[rng.integers(0, 25, N)]


def _blobs(seed: int = 3) -> np.ndarray:
    return make_embeddings(N, 16, n_clusters=30, seed=seed)


INPUTS = {"giant": _giant_and_singletons, "duplicates": _duplicates, "blobs": _blobs}
FITS = {  # (n_clusters, parameters)
    "default": (30, {}),
    "random-2-runs": (40, {"init": "random", "n_init": 2, "tol": 0.0, "max_iter": 25}),
}


def _native(x: np.ndarray, k: int, **kw: object):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ops._kmeans._kmeans_fit(
            x,
            k,
            metric="cosine",
            init=kw.get("init", "k-means++"),  # type: ignore[arg-type]
            n_init=kw.get("n_init", 1),  # type: ignore[arg-type]
            max_iter=kw.get("max_iter", 100),  # type: ignore[arg-type]
            tol=kw.get("tol", 1e-6),  # type: ignore[arg-type]
            random_state=7,
            n_threads=None,
            progress=None,
            stacklevel=2,
        )


def _same_fit(got, want) -> None:  # type: ignore[no-untyped-def]
    np.testing.assert_array_equal(got.labels, want.labels)
    assert np.array_equal(got.centroids.view(np.uint32), want.centroids.view(np.uint32))
    assert got.objective == want.objective
    assert (got.n_iter, got.converged) == (want.n_iter, want.converged)
    assert (got.n_reseeded, got.n_empty) == (want.n_reseeded, want.n_empty)


@pytest.mark.parametrize("fit", sorted(FITS))
@pytest.mark.parametrize("name", sorted(INPUTS))
def test_in_process_equals_native_for_1_2_5_blocks(name, fit):
    x = INPUTS[name]()
    k, kw = FITS[fit]
    want = _native(x, k, **kw)
    for n_blocks, rows in BLOCKS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = distributed_kmeans(
                InProcessExecutor(), x, k, random_state=7, block_rows=rows, **kw
            )
        assert -(-N // rows) == n_blocks
        _same_fit(got, want)
    if name == "duplicates":  # 30 clusters of 25 directions: 5 stay empty; 40 from random
        # rows: the re-seeding walk runs (over several blocks' candidates)
        assert want.n_empty == 5 if fit == "default" else want.n_reseeded > 0


class _Watching(InProcessExecutor):
    """The in-process executor, recording what comes back to the driver."""

    def __init__(self) -> None:
        self.largest_result = 0  # elements of the largest array a step task returned
        self.kept: set[int] = set()
        self.gets = 0

    def imap_keep(self, stage, fn, tasks, *, progress=None, parts=None):  # type: ignore[no-untyped-def]
        for i, result, kept in super().imap_keep(stage, fn, tasks, progress=progress, parts=parts):
            sizes = [np.asarray(a).size for a in result if isinstance(a, np.ndarray)]
            self.largest_result = max(self.largest_result, *sizes, 0)
            self.kept.add(id(kept))
            yield i, result, kept

    def get(self, handle):  # type: ignore[no-untyped-def]
        self.gets += id(handle) in self.kept
        return super().get(handle)


def test_the_per_row_state_stays_in_the_store():
    """A step task's summary is O(clusters touched), its per-row state a kept object the
    next step reads; the driver gets each block's state once, for the final labels."""
    x, k = _blobs(), 30
    want = _native(x, k)
    ex = _Watching()
    got = distributed_kmeans(ex, x, k, random_state=7, block_rows=4096)
    _same_fit(got, want)
    n_blocks = -(-N // 4096)
    assert ex.gets == n_blocks  # the labels, once each
    assert 0 < ex.largest_result <= k * x.shape[1]  # the changed sums, never a row array
    assert ex.largest_result < 4096


def _separated(seed: int = 5, k: int = 30, d: int = 32) -> np.ndarray:
    """``k`` random directions, rows within a small angle of each: one right answer."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rows = centres[rng.integers(0, k, N)] + 0.05 * rng.standard_normal((N, d))
    return rows.astype(np.float32)


def test_objective_against_float64_and_scikit_learn():
    from sklearn.cluster import KMeans as SkKMeans
    from sklearn.metrics import adjusted_rand_score

    x, k = _separated(), 30
    got = distributed_kmeans(InProcessExecutor(), x, k, n_init=3, random_state=1, block_rows=4096)
    unit = x.astype(np.float64)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    c = got.centroids.astype(np.float64)
    # the reported objective is the sum of 1 - cos(row, its centroid) (float32 distances:
    # to 1e-6 relative)
    mine = float((1.0 - np.einsum("ij,ij->i", unit, c[got.labels])).sum())
    assert abs(got.objective - mine) <= 1e-6 * mine
    # each row's centroid is its nearest: the labels are a Lloyd fixed point
    sims = unit @ c.T
    assert (sims[np.arange(N), got.labels] >= sims.max(axis=1) - 1e-6).all()
    # scikit-learn's k-means on the unit rows finds the same partition; scored the same
    # way (its clusters' unit mean directions) the objectives agree to 1e-6 relative
    sk = SkKMeans(k, n_init=3, random_state=0).fit(unit)
    assert adjusted_rand_score(sk.labels_, got.labels) == 1.0
    cs = np.stack([unit[sk.labels_ == j].sum(axis=0) for j in range(k)])
    cs /= np.linalg.norm(cs, axis=1, keepdims=True)
    theirs = float((1.0 - np.einsum("ij,ij->i", unit, cs[sk.labels_])).sum())
    assert abs(got.objective - theirs) <= 1e-6 * theirs, (got.objective, theirs)


def test_explicit_init_and_bad_parameters():
    x = _blobs()
    init = x[:: N // 10][:10]
    want = _native(x, 10, init=init)
    _same_fit(distributed_kmeans(InProcessExecutor(), x, 10, init=init, block_rows=8192), want)
    with pytest.raises(ParameterError, match="block_rows must be a positive multiple of 4096"):
        distributed_kmeans(InProcessExecutor(), x, 10, block_rows=1024)
    with pytest.raises(ParameterError, match="n_clusters must satisfy"):
        distributed_kmeans(InProcessExecutor(), x[:5], 10)
    assert kmeans_block_rows(10) == 4096 and kmeans_block_rows(10**7) == 16384


def test_progress_counts_the_tasks():
    x = _blobs()
    seen: list[tuple[str, int, int]] = []
    out = distributed_kmeans(
        InProcessExecutor(), x, 8, block_rows=8192, progress=lambda *a: seen.append(a)
    )
    assert {s for s, _, _ in seen} == {"cluster"}
    done = [d for _, d, _ in seen]
    assert done == sorted(done) and seen[-1][1] == seen[-1][2]
    # the scales stage, then one task per block for each step (and the final assignment)
    steps = out.n_iter + (0 if out.converged else 1)
    assert seen[-1][1] == 3 * (1 + steps)


def test_distributed_partition_is_the_native_one():
    """The ivf partition by tasks (sample k-means as block steps, assignment per block)."""
    from simclust.distributed._ivf import distributed_partition

    x = ops.normalize(make_embeddings(6000, 16, n_clusters=20, seed=6))
    plan = DistributedBackend(InProcessExecutor(), block_rows=1024)
    blocks, bounds = plan.rows.blocks(x)
    got = distributed_partition(plan.executor, x, None, blocks, bounds, None)
    want = ops.Partition(x, certified=False)
    assert want.n_lists == got.n_lists == 155  # 2 sqrt(N); trained on 4,960 sampled rows
    assert np.array_equal(got.centroids.view(np.uint32), want.centroids.view(np.uint32))
    np.testing.assert_array_equal(got.order, want.order)
    np.testing.assert_array_equal(got.list_sizes, want.list_sizes)
    a, b = got.knn_edges(10), want.knn_edges(10)  # the searches over it: the same lists
    for u, v in zip(a[:3], b[:3], strict=True):
        np.testing.assert_array_equal(u, v)


def _kmeans_frames(res: simclust.Result, ref: simclust.Result) -> None:
    assert res.assignments["cluster"].to_list() == ref.assignments["cluster"].to_list()
    for name in ("assignments", "clusters", "inter"):
        assert_frame_equal(
            getattr(res, name), getattr(ref, name), check_exact=False, rel_tol=1e-6, abs_tol=1e-6
        )


def test_in_process_analysis_with_kmeans_equals_native(monkeypatch):
    x = make_embeddings(9000, 16, n_clusters=12, seed=4)
    seen: list[tuple[str, int, int]] = []
    monkeypatch.setattr(
        pipeline, "graph_backend", lambda run: DistributedBackend(InProcessExecutor())
    )
    kw = {"strategy": "kmeans", "n_clusters": 12, "random_state": 2}
    res = simclust.analyze(x, progress=lambda *a: seen.append(a), **kw)  # type: ignore[arg-type]
    monkeypatch.undo()
    _kmeans_frames(res, simclust.analyze(x, **kw))  # type: ignore[arg-type]
    assert any(s == "cluster" and 0 < d < t for s, d, t in seen)  # the plan's tasks


class TestLocalRuntime:
    def test_ray_kmeans_equals_native(self, runtime):
        for name in ("duplicates", "blobs"):
            x = INPUTS[name]()
            want = _native(x, 30)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got = distributed_kmeans(runtime, x, 30, random_state=7, block_rows=4096)
            _same_fit(got, want)
        assert runtime.nodes_used["kmeans step 1"].total() == 2 * 5  # two fits, 5 blocks

    def test_analysis_with_kmeans_on_ray_equals_native(self, runtime):
        x = make_embeddings(9000, 16, n_clusters=12, seed=4)
        kw = {"strategy": "kmeans", "n_clusters": 12, "random_state": 2}
        res = simclust.analyze(x, backend="ray", **kw)  # type: ignore[arg-type]
        _kmeans_frames(res, simclust.analyze(x, **kw))  # type: ignore[arg-type]

    def test_a_bad_block_names_its_stage_and_block(self, runtime):
        x = _blobs()
        x[9000, 3] = np.nan  # in block 2 (rows 8192..12287)
        with pytest.raises(InvalidInputError, match=r"stage 'kmeans scales', block 2: rows 8192"):
            distributed_kmeans(runtime, x, 5, block_rows=4096)
