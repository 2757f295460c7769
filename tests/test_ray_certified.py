"""The Ray backend's certified search (issue 14): group-pair tasks over the native partition.

Against the native certified search (``ops.partitioned_threshold_edges(certified=True)``):
the same edges, similarities bit for bit, and the same record (``n_lists``,
``list_pairs``, ``pairs_computed``, ``pairs_total``, recall 1.0) for 1, 2 and many groups
of panels; and against the brute force (``ops.threshold_edges``), an independent
reference: the same edge set. Seeded inputs: one giant cluster with singletons, exact
duplicates, blobs, a dimension that is not a multiple of 16, row counts that are not
multiples of 1,024. In process and on a local Ray runtime (the shared fixture of
``conftest.py``), then whole analyses against the native backend.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import ray
import simclust
from simclust import ops, pipeline
from simclust.distributed import DistributedBackend, InProcessExecutor, RayExecutor, Task
from simclust.distributed._certified import STAGE, _group_pair_task, certified_edges
from simclust.exceptions import ConfigError, ShapeError
from simclust.graph import GraphSpec, SearchSettings, build_graph
from simclust.testing import make_embeddings
from test_ray import METRICS, _same

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _giant_and_singletons(n: int = 2900, d: int = 12, seed: int = 1) -> np.ndarray:
    """Two thirds of the rows in one dense cluster, the rest random directions."""
    rng = np.random.default_rng(seed)
    giant = np.ones(d) + 0.25 * rng.standard_normal((2 * n // 3, d))
    return np.concatenate([giant, rng.standard_normal((n - giant.shape[0], d))]).astype(np.float32)


def _duplicates(n: int = 2300, d: int = 20, seed: int = 2) -> np.ndarray:
    """Rows repeated exactly (some scaled by 2.5: the same direction), in every order."""
    rng = np.random.default_rng(seed)
    base = make_embeddings(300, d, n_clusters=15, seed=seed)
    rows = rng.integers(0, 300, n)
    scale = np.where(np.arange(n) % 3 == 1, 2.5, 1.0).astype(np.float32)
    return (base[rows] * scale[:, None]).astype(np.float32)


def _blobs(n: int = 3100, d: int = 37, seed: int = 3) -> np.ndarray:
    return make_embeddings(n, d, n_clusters=25, seed=seed)


INPUTS = {  # (rows, thresholds)
    "giant": (_giant_and_singletons, (0.8, 0.95)),
    "duplicates": (_duplicates, (1.0, 0.9)),
    "blobs": (_blobs, (0.9, 0.5)),
}


def _native(x: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    src, dst, sim, stats = ops.partitioned_threshold_edges(x, t, certified=True)
    return src, dst, sim, stats._asdict()


def _check(got: tuple, x: np.ndarray, t: float) -> None:
    """Bit for bit the native certified graph and its record; the brute force's edge set;
    a forest with the graph's components at ``t`` and above."""
    src, dst, sim, rec, forest = got
    want = _native(x, t)
    np.testing.assert_array_equal(src, want[0])
    np.testing.assert_array_equal(dst, want[1])
    np.testing.assert_array_equal(sim.view(np.uint32), want[2].view(np.uint32))
    for key in ("n_lists", "list_pairs", "pairs_computed", "pairs_total", "recall", "recall_rows"):
        assert rec[key] == want[3][key], key
    assert rec["recall"] == 1.0 and rec["pairs_computed"] <= rec["pairs_total"]
    brute = ops.threshold_edges(x, t)
    np.testing.assert_array_equal(src, brute[0])
    np.testing.assert_array_equal(dst, brute[1])
    np.testing.assert_allclose(sim, brute[2], rtol=0, atol=1e-6)
    n = x.shape[0]
    assert len(forest[0]) <= n - 1
    for at in (t, min(1.0, t + 0.05)):
        keep, fkeep = sim >= np.float32(at), forest[2] >= np.float32(at)
        want_cc = ops.connected_components(n, src[keep], dst[keep])
        got_cc = ops.connected_components(n, forest[0][fkeep], forest[1][fkeep])
        np.testing.assert_array_equal(got_cc, want_cc)


def _group_sizes(n: int) -> dict[str, int]:
    """Rows a group holds at most, for one group, two, and many (panels of <= 1,024)."""
    return {"one": 16384, "two": (n + 1024) // 2 + 1, "many": 1024}


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_in_process_certified_edges_are_the_native_ones(name):
    make, thresholds = INPUTS[name]
    x = ops.normalize(make())
    n = x.shape[0]
    assert n % 1024 and x.shape[1] % 16  # not whole tiles, not whole SIMD lanes
    for t in thresholds:
        for size, rows in _group_sizes(n).items():
            got = certified_edges(InProcessExecutor(), x, t, group_rows=rows)
            groups = got[3]["groups"]
            assert {"one": groups == 1, "two": groups == 2, "many": groups > 2}[size], groups
            assert got[3]["tasks"] == groups * (groups + 1) // 2
            _check(got, x, t)
            assert got[3]["pairs_computed"] < got[3]["pairs_total"] or name == "giant"


def test_list_count_and_progress():
    x = ops.normalize(_blobs())
    seen: list[tuple[str, int, int]] = []
    got = certified_edges(
        InProcessExecutor(),
        x,
        0.9,
        n_lists=9,
        group_rows=1024,
        progress=lambda *a: seen.append(a),
    )
    _, dst, _, stats = ops.partitioned_threshold_edges(x, 0.9, certified=True, n_lists=9)
    assert got[3]["n_lists"] == stats.n_lists == 9
    assert got[3]["list_pairs"] == stats.list_pairs and got[3]["pairs_computed"] == (
        stats.pairs_computed
    )
    np.testing.assert_array_equal(got[1], dst)
    total = got[3]["tasks"]
    assert seen[0] == (STAGE, 0, total) and seen[-1] == (STAGE, total, total)
    assert [s[1] for s in seen] == list(range(total + 1))


def test_build_graph_on_a_backend_records_the_native_search():
    x = ops.normalize(_giant_and_singletons())
    spec = GraphSpec("threshold", threshold=0.8)
    search = SearchSettings(method="certified")
    plan = DistributedBackend(InProcessExecutor(), block_rows=1024)
    got = build_graph(x, spec, search=search, backend=plan, max_edges=None)
    want = build_graph(x, spec, search=search, max_edges=None)
    np.testing.assert_array_equal(got.src, want.src)
    np.testing.assert_array_equal(got.similarity.view(np.uint32), want.similarity.view(np.uint32))
    assert {k: got.search[k] for k in want.search} == dict(want.search)
    assert got.search["backend"] == "in-process" and got.search["groups"] > 2
    assert got.forest is not None and len(got.forest[0]) < x.shape[0]
    # a kNN graph is not certified, here as natively
    with pytest.raises(ConfigError, match="'certified' builds threshold graphs"):
        build_graph(x, GraphSpec("knn", k=5), search=search, backend=plan)


def test_in_process_analysis_equals_native(monkeypatch):
    x = _blobs()
    monkeypatch.setattr(
        pipeline, "graph_backend", lambda run: DistributedBackend(InProcessExecutor())
    )
    res = simclust.analyze(x, threshold=0.9, search="certified", metrics=METRICS)
    monkeypatch.undo()
    ref = simclust.analyze(x, threshold=0.9, search="certified", metrics=METRICS)
    _same(res, ref)
    assert res.graph_search["method"] == "certified" and res.graph_search["tasks"] == 1


# --------------------------------------------------------------------------- Ray


class _Corrupting(RayExecutor):
    """Puts group ``bad`` with one input row missing: its tasks fail in the kernel's checks."""

    def __init__(self, bad: int) -> None:
        super().__init__()
        self.bad, self.seen = bad, 0

    def put(self, value: object) -> object:
        if isinstance(value, ops.CertifiedGroup):
            if self.seen == self.bad:
                value = value._replace(order=value.order[:-1])
            self.seen += 1
        return super().put(value)


@pytest.mark.usefixtures("runtime")
class TestCertifiedOnRay:
    """Runs on the local runtime of ``test_ray.py``'s fixture (2 CPUs, loopback)."""

    @pytest.mark.parametrize("name", sorted(INPUTS))
    def test_ray_tasks_give_the_native_edges(self, runtime, name):
        make, thresholds = INPUTS[name]
        x = ops.normalize(make())
        for rows in (1024, 16384):
            got = certified_edges(runtime, x, thresholds[0], group_rows=rows)
            _check(got, x, thresholds[0])
        assert sum(runtime.nodes_used[STAGE].values()) > 1

    @pytest.mark.parametrize("name", ["giant", "duplicates"])
    def test_analysis_equals_native(self, name):
        make, thresholds = INPUTS[name]
        kw = {"threshold": thresholds[0], "search": "certified", "metrics": METRICS}
        res = simclust.analyze(make(), backend="ray", **kw)  # type: ignore[arg-type]
        ref = simclust.analyze(make(), **kw)  # type: ignore[arg-type]
        _same(res, ref)
        rec, want = res.graph_search, ref.graph_search
        assert rec["backend"] == "ray" and rec["method"] == "certified"
        for key in ("n_lists", "list_pairs", "pairs_computed", "pairs_total", "recall"):
            assert rec[key] == want[key], key

    def test_a_failing_task_names_its_stage_and_group_pair(self):
        x = ops.normalize(_blobs())
        bad = _Corrupting(bad=1)
        with pytest.raises(
            ShapeError,
            match=r"backend ray, stage 'threshold graph \(certified\)', group pair \([01], 1\): "
            r"positions \d+\.\.\d+.*group [ab]: xs must be",
        ):
            certified_edges(bad, x, 0.9, group_rows=(x.shape[0] + 1024) // 2 + 1)
        # the task function itself, as Ray runs it
        part = ops.Partition(x, certified=True)
        b = part.certified_group_bounds(1024)
        g = part.certified_group(int(b[0]), int(b[1]))
        tasks = [Task("group pair (0, 0): positions 0..9", (g, None, 0.9, 1))]
        found, forest = bad.map(STAGE, _group_pair_task, tasks)[0]
        want = ops.certified_group_pair_edges(g, None, 0.9)
        np.testing.assert_array_equal(found.src, want.src)
        assert found.pairs_computed == want.pairs_computed
        np.testing.assert_array_equal(forest[2], ops.spanning_forest(*want[:3])[2])
