"""The Ray backend's ``ivf`` kNN graph: the native search's passes as tasks over the chunks.

Against the native search over the same partition (``ops.Partition.knn_edges``, and
``build_graph`` with ``search = "ivf"``): the same edges, similarities bit for bit, and the
same record (``n_lists``, ``list_pairs``, ``pairs_computed``, ``pairs_total``, recall and
its rows) for 1, 2 and many chunks. Seeded inputs: one dense blob with random singletons,
exact duplicates, blobs of dimension 37 and 12, row counts that are not multiples of 1,024.
In process, on a local Ray runtime (the shared fixture of ``conftest.py``), and whole
analyses' outlier scores against the native backend.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import ray
import simclust
from simclust import ops, pipeline
from simclust.distributed import DistributedGraphs, InProcessExecutor, RayExecutor
from simclust.distributed._ivf import Lists
from simclust.distributed._ivf_knn import STAGES, knn_lists
from simclust.distributed._rows import StoredRows
from simclust.exceptions import ShapeError
from simclust.graph import GraphSpec, SearchSettings, build_graph
from simclust.testing import make_embeddings
from test_ray_certified import _duplicates, _giant_and_singletons

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

IVF = SearchSettings(method="ivf")
RECORD = ("n_lists", "list_pairs", "pairs_computed", "pairs_total", "recall", "recall_rows")


INPUTS = {  # (rows, k)
    "blob": (_giant_and_singletons, 7),
    "duplicates": (_duplicates, 10),
    "blobs37": (lambda: make_embeddings(3100, 37, n_clusters=25, seed=3), 12),
    "outliers12": (
        lambda: make_embeddings(4133, 12, n_clusters=40, seed=4, outlier_frac=0.1),
        5,
    ),
}


def _native(x: np.ndarray, k: int, t: float) -> tuple:
    return ops.Partition(x, certified=False).knn_edges(k, t, nprobe=2)


def _check(got: tuple, want: tuple) -> None:
    src, dst, sim, rec, forest = got
    np.testing.assert_array_equal(src, want[0])
    np.testing.assert_array_equal(dst, want[1])
    np.testing.assert_array_equal(sim.view(np.uint32), want[2].view(np.uint32))
    stats = want[3]._asdict()
    for key in RECORD:
        assert rec[key] == stats[key], key
    assert 0.5 < rec["recall"] <= 1.0 and rec["pairs_computed"] < rec["pairs_total"]
    assert rec["refine"] == "driver" and forest is None


def _chunk_rows(n: int) -> dict[str, int]:
    """Rows a chunk holds at most, for one chunk, two, and many (one list each)."""
    return {"one": n, "two": n - 1, "many": 1}


def _run(executor, x: np.ndarray, k: int, t: float, chunk_rows: int, **kw) -> tuple:
    blocks, bounds = StoredRows(executor).blocks(x)  # put from here: the driver's rows
    lists = Lists(x, None, None, executor, blocks, bounds)
    executor.armed = True  # a _Corrupting executor corrupts a chunk from here on
    lists.put(chunk_rows)
    out = knn_lists(executor, lists, k, t, 2, 1000, None, None, kw.pop("report", _quiet))
    return out, len(lists.handles)


def _quiet(stage: str, done: int, total: int) -> None:
    pass


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_in_process_knn_edges_are_the_native_ones(name):
    make, k = INPUTS[name]
    x = ops.normalize(make())
    n = x.shape[0]
    assert n % 1024  # not whole tiles
    for t in (-1.0, 0.8):
        want = _native(x, k, t)
        for size, rows in _chunk_rows(n).items():
            got, chunks = _run(InProcessExecutor(), x, k, t, rows)
            assert {"one": chunks == 1, "two": chunks == 2, "many": chunks > 2}[size], chunks
            assert got[3]["tasks"] >= 2 * chunks
            _check(got, want)


def test_progress_names_every_wave():
    make, k = INPUTS["blobs37"]
    x = ops.normalize(make())
    seen: list[tuple[str, int, int]] = []
    got, chunks = _run(InProcessExecutor(), x, k, -1.0, 1024, report=lambda *a: seen.append(a))
    stages = [s for s, done, _ in seen if done == 0]
    assert stages == list(STAGES)
    totals = {s: total for s, _, total in seen}
    assert totals[STAGES[0]] == chunks and sum(totals.values()) == got[3]["tasks"]
    for s in STAGES:
        done = [d for st, d, _ in seen if st == s]
        assert done == list(range(totals[s] + 1)), s


@pytest.mark.parametrize("block_rows", [1024, 2048, 65536])
def test_build_graph_on_a_backend_records_the_native_search(block_rows):
    x = ops.normalize(INPUTS["outliers12"][0]())
    spec = GraphSpec("knn", k=9, threshold=0.3)
    plan = DistributedGraphs(InProcessExecutor(), block_rows=block_rows)
    got = build_graph(x, spec, search=IVF, backend=plan)
    want = build_graph(x, spec, search=IVF)
    np.testing.assert_array_equal(got.src, want.src)
    np.testing.assert_array_equal(got.dst, want.dst)
    np.testing.assert_array_equal(got.similarity.view(np.uint32), want.similarity.view(np.uint32))
    assert {k: got.search[k] for k in want.search} == dict(want.search)
    assert got.search["refine"] == "driver" and "on" not in got.search
    assert got.search["tasks"] >= 2 * got.search["chunks"] >= 2


@pytest.mark.parametrize("name", ["blob", "duplicates"])
def test_in_process_outlier_scores_equal_native(monkeypatch, name):
    x = INPUTS[name][0]()
    kw = {"threshold": 0.9, "search": "ivf", "metrics": ["intra"]}
    monkeypatch.setattr(
        pipeline, "graph_backend", lambda run: DistributedGraphs(InProcessExecutor())
    )
    res = simclust.analyze(x, **kw)  # type: ignore[arg-type]
    monkeypatch.undo()
    ref = simclust.analyze(x, **kw)  # type: ignore[arg-type]
    _same_outliers(res, ref)
    assert res.outlier_search["refine"] == "driver" and res.outlier_search["tasks"] > 0


def _same_outliers(res: simclust.Result, ref: simclust.Result) -> None:
    """The outlier scores bit for bit, and the outlier search's native record."""
    for col in ("nn_similarity", "knn_sim_mean"):
        got = res.assignments[col].to_numpy()
        want = ref.assignments[col].to_numpy()
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    assert res.assignments["cluster"].to_list() == ref.assignments["cluster"].to_list()
    for key in ("recall", "pairs_computed", "n_lists"):
        assert res.outlier_search[key] == ref.outlier_search[key], key


# --------------------------------------------------------------------------- Ray


class _Corrupting(RayExecutor):
    """Puts chunk ``bad`` with its last row missing: its tasks fail in the kernel's checks."""

    def __init__(self, bad: int) -> None:
        super().__init__()
        self.bad, self.seen = bad, 0
        self.armed = False  # the chunks' puts only (after the row blocks and partition)

    def put(self, value: object) -> object:
        if self.armed and isinstance(value, np.ndarray) and value.ndim == 2:
            if self.seen == self.bad:
                value = value[:-1]
            self.seen += 1
        return super().put(value)


@pytest.mark.usefixtures("runtime")
class TestKnnOnRay:
    """Runs on the shared local runtime (2 CPUs, loopback)."""

    @pytest.mark.parametrize("name", ["blob", "blobs37"])
    def test_ray_tasks_give_the_native_edges(self, runtime, name):
        make, k = INPUTS[name]
        x = ops.normalize(make())
        want = _native(x, k, -1.0)
        for rows in (1, 1024, x.shape[0]):
            got, _ = _run(runtime, x, k, -1.0, rows)
            _check(got, want)
        assert sum(runtime.nodes_used[STAGES[1]].values()) > 1

    def test_analysis_outlier_scores_equal_native(self):
        x = INPUTS["outliers12"][0]()
        kw = {"threshold": 0.9, "search": "ivf", "metrics": ["intra"]}
        res = simclust.analyze(x, backend="ray", **kw)  # type: ignore[arg-type]
        ref = simclust.analyze(x, **kw)  # type: ignore[arg-type]
        _same_outliers(res, ref)
        assert res.outlier_search["backend"] == "ray"

    def test_a_failing_task_names_its_stage_and_chunk(self):
        x = ops.normalize(INPUTS["blobs37"][0]())
        with pytest.raises(
            ShapeError,
            match=r"backend ray, stage 'knn graph \(ivf\): own lists', chunk 1: lists \d+\.\.\d+ "
            r"\(positions \d+\.\.\d+\): .*list rows: bounds must ascend",
        ):
            _run(_Corrupting(bad=1), x, 5, -1.0, 1024)
