"""The shuffle (issue 14, plan item 2): rows regrouped from their blocks by tasks.

Against numpy's ``x[order[a:b]]`` (the independent reference: each destination holds
exactly those rows, bit for bit) for permutations (the ``ivf`` lists), subsets with rows
left out (the metrics' clustered rows), repeated rows, one destination and many, blocks
that feed no destination; in process and on a local Ray runtime (the shared fixture of
``conftest.py``), where the pieces must stay in the object store. Then the ``ivf`` plan's
chunks: the rows of the native partition's lists, in list order.
"""

from __future__ import annotations

import itertools
import sys

import numpy as np
import pytest
import ray
from simclust import ops
from simclust.distributed import DistributedBackend, InProcessExecutor, Task, block_bounds
from simclust.distributed._shuffle import shuffle
from simclust.exceptions import DistributedError, ParameterError
from simclust.graph import GraphSpec, SearchSettings, build_graph
from simclust.testing import make_embeddings

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _blocks(ex, x, rows):
    bounds = block_bounds(len(x), rows)
    return [ex.put(np.ascontiguousarray(x[s:e])) for s, e in bounds], bounds


def _cases(n: int, seed: int = 0):
    """(name, order, starts): the destinations' rows and their first indices."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    subset = np.sort(rng.choice(n, n // 3, replace=False))
    rng.shuffle(subset)
    cuts = np.sort(rng.choice(np.arange(1, n), 9, replace=False))
    return [
        ("permutation, 10 destinations", perm, np.concatenate([[0], cuts])),
        ("permutation, one destination", perm, np.array([0])),
        ("a third of the rows, 4 destinations", subset, np.array([0, 5, 6, 200])),
        ("one row per destination", perm[:17], np.arange(17)),
        ("repeated rows", rng.integers(0, n, 2 * n), np.array([0, n // 2, n])),
        ("only the last block's rows", np.arange(n - 300, n)[::-1], np.array([0, 100])),
        ("sorted rows, blocks in order", np.arange(n), np.array([0, 1024, 1500])),
    ]


def _check(ex, x, block_rows, order, starts):
    blocks, bounds = _blocks(ex, x, block_rows)
    handles = shuffle(ex, blocks, bounds, order, starts, "test")
    ends = [*starts[1:], len(order)]
    assert len(handles) == len(starts)
    for h, a, b in zip(handles, starts, ends, strict=True):
        got = ex.get(h)
        want = x[order[a:b]]
        assert got.dtype == np.float32 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("block_rows", [1024, 2048, 8192])
@pytest.mark.parametrize("case", range(7))
def test_in_process_destinations_hold_exactly_their_rows(block_rows, case):
    x = make_embeddings(3001, 13, n_clusters=5, seed=case)
    _, order, starts = _cases(len(x), case)[case]
    _check(InProcessExecutor(), x, block_rows, order, starts)


def test_bad_destinations_are_named():
    x = make_embeddings(100, 4, seed=0)
    ex = InProcessExecutor()
    blocks, bounds = _blocks(ex, x, 1024)
    with pytest.raises(ParameterError, match="destinations must start at 0"):
        shuffle(ex, blocks, bounds, np.arange(10), [1, 5], "t")
    with pytest.raises(ParameterError, match="each hold rows"):
        shuffle(ex, blocks, bounds, np.arange(10), [0, 5, 5], "t")
    with pytest.raises(ParameterError, match=r"rows must be in 0\.\.99"):
        shuffle(ex, blocks, bounds, np.array([3, 100]), [0], "t")


def _two(x):
    return 1, (x, x)


def test_a_task_with_the_wrong_number_of_parts_is_named():
    ex = InProcessExecutor()
    with pytest.raises(DistributedError, match=r"stage 'split', task b: 3 kept parts expected"):
        ex.map_keep("split", _two, [Task("task b", (1,))], parts=[3])


@pytest.mark.usefixtures("runtime")
class TestOnRay:
    @pytest.mark.parametrize("case", [0, 2, 4, 5])
    def test_destinations_hold_exactly_their_rows(self, runtime, case):
        x = make_embeddings(5000, 24, n_clusters=7, seed=case)
        _, order, starts = _cases(len(x), case)[case]
        _check(runtime, x, 1024, order, starts)

    def test_pieces_are_separate_returns(self, runtime):
        (res, handles) = runtime.map_keep("split", _two, [Task("t", (np.arange(3),))], parts=[2])[0]
        assert res == 1 and len(handles) == 2
        assert all(isinstance(h, ray.ObjectRef) for h in handles)
        np.testing.assert_array_equal(runtime.get(handles[1]), np.arange(3))

    def test_a_task_with_the_wrong_number_of_parts_is_named(self, runtime):
        with pytest.raises(DistributedError, match=r"stage 'split', task b"):
            runtime.map_keep("split", _two, [Task("task b", (1,))], parts=[3])

    def test_ivf_chunks_are_the_lists_rows_in_list_order(self, runtime):
        x = ops.normalize(make_embeddings(6000, 16, n_clusters=12, seed=4))
        plan = DistributedBackend(runtime, block_rows=2048)
        shards = [(runtime.put(x[a:b]), b - a) for a, b in ((0, 2500), (2500, 6000))]
        plan.rows.loaded(x, shards)  # as if read by tasks: the blocks and lists by tasks
        plan.derived(x, x, unit=True)
        spec = GraphSpec("threshold", threshold=0.9)
        g = build_graph(x, spec, search=SearchSettings(method="ivf"), backend=plan)
        native = build_graph(x, spec, search=SearchSettings(method="ivf"))
        np.testing.assert_array_equal(g.dst, native.dst)
        lists = plan._lists
        order, offsets = lists.part.order, lists.offsets
        assert len(lists.handles) > 1
        bounds = [*lists.starts.tolist(), int(offsets[-1])]
        for h, a, b in zip(lists.handles, bounds[:-1], bounds[1:], strict=True):
            np.testing.assert_array_equal(runtime.get(h), x[order[a:b]])
        assert "row blocks (gather)" in runtime.nodes_used
        assert "ivf lists (scatter)" in runtime.nodes_used
        assert "ivf lists (gather)" in runtime.nodes_used

    def test_metric_parts_are_their_clusters_rows(self, runtime):
        from simclust.distributed._metrics import TaskLabelling

        x = make_embeddings(7000, 12, n_clusters=40, seed=5)
        rng = np.random.default_rng(5)
        labels = rng.integers(-1, 60, len(x))
        labels[:3000] = 7  # a giant, cut into pieces
        bounds = block_bounds(len(x), 2048)
        blocks = [runtime.put(x[a:b]) for a, b in bounds]
        lab = TaskLabelling(runtime, x, labels, task_rows=1024, blocks=(blocks, bounds))
        handles = lab._rows(None)
        assert len(handles) == len(lab.parts) > 3
        for h, p in zip(handles, lab.parts, strict=True):
            rows = lab.order[p.p0 : p.p1]
            assert (labels[rows] >= 0).all()
            np.testing.assert_array_equal(runtime.get(h), x[rows])
        assert "metric parts (gather)" in runtime.nodes_used


class _CountingExecutor(InProcessExecutor):
    """Counts the rows this process puts in the store (2-D float arrays)."""

    def __init__(self) -> None:
        self.rows_put = 0

    def put(self, value):
        if isinstance(value, np.ndarray) and value.ndim == 2 and value.dtype.kind == "f":
            self.rows_put += value.shape[0]
        return value


@pytest.mark.parametrize("unit", [True, False])
def test_blocks_cut_from_shards_are_the_drivers_rows(unit):
    """Blocks of rows read by tasks: cut from the shards by tasks (nothing put from here),
    bit for bit the driver's float32 (normalised) rows, on whole-tile bounds."""
    from simclust.distributed._rows import StoredRows

    rng = np.random.default_rng(6)
    raw = rng.standard_normal((5000, 9)) * rng.uniform(0.1, 9.0, (5000, 1))
    raw[::7] /= np.linalg.norm(raw[::7], axis=1, keepdims=True)  # some unit already
    ex = _CountingExecutor()
    cuts = [0, 333, 1800, 1801, 5000]
    shards = [(raw[a:b], b - a) for a, b in itertools.pairwise(cuts)]
    rows = StoredRows(ex, block_rows=2048)
    rows.loaded(raw, shards)
    want = ops.normalize(raw) if unit else np.ascontiguousarray(raw, dtype=np.float32)
    x = want.copy()
    rows.derived(raw, x, unit=unit)
    metric = np.ascontiguousarray(raw, dtype=np.float32)  # a second array from the shards
    rows.derived(raw, metric, unit=False)
    rows.blocks(metric, 1024)
    assert rows._shards is not None and len(rows._shards[1]) == 4  # x not cut yet: kept
    blocks, bounds = rows.blocks(x)
    assert rows.by_tasks(x) and ex.rows_put == 0
    assert bounds == [(0, 2048), (2048, 4096), (4096, 5000)]
    for h, (a, b) in zip(blocks, bounds, strict=True):
        np.testing.assert_array_equal(h, want[a:b])
    assert rows._shards is not None and rows._shards[1] == []  # all cut: shards released
    spans, span_bounds = rows.blocks(x, 4096)  # another size: re-cut from the blocks
    assert span_bounds == [(0, 4096), (4096, 5000)] and ex.rows_put == 0
    for h, (a, b) in zip(spans, span_bounds, strict=True):
        np.testing.assert_array_equal(h, want[a:b])
    other = want.copy()  # not derived from the shards: put from here
    rows.blocks(other)
    assert not rows.by_tasks(other) and ex.rows_put == 5000


def test_backend_moves_lists_and_metric_parts_by_tasks_when_rows_were_read_by_tasks():
    """What this process puts: the partition's training sample and the centroids, not the
    rows, when they were read by tasks; every row when it holds them."""
    from simclust.base import MetricContext
    from simclust.default_plugins.metrics import Intra

    x = ops.normalize(make_embeddings(4000, 12, n_clusters=20, seed=8))
    spec = GraphSpec("threshold", threshold=0.9)
    ivf = SearchSettings(method="ivf", n_lists=10)  # a sample of 320 rows
    labels = np.arange(4000) % 37
    exact = SearchSettings(method="exact")
    ctx = MetricContext(x, labels, None, None, None, 1, search=exact)
    want_graph, want_intra = build_graph(x, spec, search=ivf), Intra().compute(ctx)
    for read_by_tasks in (True, False):
        ctx = MetricContext(x, labels, None, None, None, 1, search=exact)  # its own cache
        ex = _CountingExecutor()
        plan = DistributedBackend(ex, block_rows=1024)
        if read_by_tasks:
            plan.rows.loaded(x, [(x[:1500], 1500), (x[1500:], 2500)])
            plan.derived(x, x, unit=True)
        g = build_graph(x, spec, search=ivf, backend=plan)
        np.testing.assert_array_equal(g.dst, want_graph.dst)
        assert g.search["rows_by"] == ("tasks" if read_by_tasks else "driver")
        assert (ex.rows_put < 1000) if read_by_tasks else (ex.rows_put >= 2 * 4000)
        ex.rows_put = 0
        got = plan.compute_metric(Intra(), ctx)
        assert got is not None
        assert (ex.rows_put < 100) if read_by_tasks else (ex.rows_put >= 4000)
        for name, frame in want_intra.items():
            np.testing.assert_allclose(
                got[name]["sim_mean"].to_numpy(), frame["sim_mean"].to_numpy(), rtol=0, atol=1e-6
            )


def test_backend_kmeans_reads_blocks_cut_from_the_shards():
    """The kmeans strategy's blocks (whole 4,096-row spans) cut from the shards by tasks:
    nothing but centroids put from here, the native fit bit for bit."""
    from test_ray_kmeans import _native

    x = ops.normalize(make_embeddings(9000, 10, n_clusters=12, seed=9))
    ex = _CountingExecutor()
    plan = DistributedBackend(ex, block_rows=1024)
    plan.rows.loaded(x, [(x[:4000], 4000), (x[4000:], 5000)])
    plan.derived(x, x, unit=True)
    got = plan.kmeans(x, 12, random_state=7)
    want = _native(x, 12)
    assert ex.rows_put < 12 * 50  # centroids, a step at a time
    np.testing.assert_array_equal(got.labels, want.labels)
    np.testing.assert_array_equal(got.centroids, want.centroids)
