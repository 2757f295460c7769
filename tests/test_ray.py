"""The Ray backend (step 1 of issue 14): the distributed graph stage and sharded input.

Against the native backend on seeded inputs (a giant cluster, singletons, exact
duplicates; ε- and kNN graphs): the same labels, the same edges bit for bit, the same
frames. The plan with the in-process executor (no Ray); a local Ray runtime; and a real
two-node cluster on loopback (``ray.cluster_utils.Cluster``): tasks placed on both nodes,
nothing listening beyond 127.0.0.1, and a node removed while the graph's tasks run.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time

import numpy as np
import polars as pl
import pytest
import ray
import simclust
from _reference import ref_components
from click.testing import CliRunner
from polars.testing import assert_frame_equal
from simclust import pipeline
from simclust.cli import main
from simclust.distributed import (
    INSTALL_HINT,
    DistributedBackend,
    InProcessExecutor,
    RayExecutor,
    Task,
    default_block_rows,
)
from simclust.distributed._ray import _loopback
from simclust.exceptions import ConfigError, DistributedError, InvalidInputError, ShapeError
from simclust.graph import GraphSpec, SearchSettings, build_graph
from simclust.testing import make_embeddings

MB = 1024 * 1024
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # its task functions


# --------------------------------------------------------------------------- inputs


def _giant(n: int = 2100, d: int = 8, seed: int = 1) -> np.ndarray:
    """One dense cluster: every row near one direction (millions of edges at 0.8)."""
    rng = np.random.default_rng(seed)
    return (np.ones(d) + 0.25 * rng.standard_normal((n, d))).astype(np.float32)


def _singletons(n: int = 2200, d: int = 64, seed: int = 2) -> np.ndarray:
    """Random directions in 64-d: no pair reaches 0.9."""
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def _duplicates(n: int = 1300, d: int = 8, seed: int = 3) -> np.ndarray:
    """Every row twice (the copy 1,300 rows later, in another block), some thrice."""
    x = make_embeddings(n, d, n_clusters=20, seed=seed)
    return np.concatenate([x, x, x[:200]])


INPUTS = {
    "seeded": (lambda: make_embeddings(3000, 16, n_clusters=12, seed=7), 0.9),
    "giant": (_giant, 0.8),
    "singletons": (_singletons, 0.9),
    "duplicates": (_duplicates, 1.0),
}
METRICS = ["intra", "edge", "centroid", "inter", "silhouette"]


def _same(res: simclust.Result, ref: simclust.Result) -> None:
    """Same labels and edges exactly; metric frames equal to 1e-6."""
    assert res.assignments["cluster"].to_list() == ref.assignments["cluster"].to_list()
    assert_frame_equal(res.edges, ref.edges)  # bit for bit
    for name in ("assignments", "clusters", "inter", "sweep"):
        assert_frame_equal(
            getattr(res, name), getattr(ref, name), check_exact=False, rel_tol=1e-6, abs_tol=1e-6
        )


def _same_graph(got: simclust.graph.Graph, want: simclust.graph.Graph) -> None:
    """The same edges, similarities bit for bit."""
    np.testing.assert_array_equal(got.src, want.src)
    np.testing.assert_array_equal(got.dst, want.dst)
    np.testing.assert_array_equal(got.similarity.view(np.uint32), want.similarity.view(np.uint32))


def _run_both(x: np.ndarray, **kw: object) -> tuple[simclust.Result, simclust.Result]:
    return (
        simclust.analyze(x, backend="ray", metrics=METRICS, **kw),  # type: ignore[arg-type]
        simclust.analyze(x, metrics=METRICS, **kw),  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------- no Ray


def test_missing_extra_is_one_line_with_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    x = make_embeddings(50, 4, seed=0)
    with pytest.raises(ConfigError) as err:
        simclust.analyze(x, backend="ray")
    assert str(err.value) == INSTALL_HINT
    assert 'pip install "simclust[ray]"' in str(err.value)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["analyze", str(tmp_path / "x.npy"), "--backend", "ray", "--out", str(out)]
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: {INSTALL_HINT}"]
    assert not out.exists()


def test_config_keys_are_validated():
    host = simclust.get_host(autoload=False)
    cfg = simclust.config.resolve({"run": {"backend": "ray", "address": "auto"}}, host)
    assert cfg["run"]["backend"] == "ray" and cfg["run"]["address"] == "auto"
    for run, message in (
        ({"backend": "spark"}, "run.backend: expected one of native, ray, got 'spark'"),
        ({"backend": "ray", "address": 6379}, "run.address: expected a Ray address"),
        ({"address": "auto"}, "run.address: only for backend = 'ray'"),
    ):
        with pytest.raises(ConfigError, match=message):
            simclust.config.resolve({"run": run}, host)


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_in_process_ivf_threshold_graph_is_the_native_one(name):
    """The list-pair tasks over the native partition: the native ``ivf`` edges bit for bit,
    its stats and its measured recall."""
    make, t = INPUTS[name]
    x = simclust.ops.normalize(make())
    spec = GraphSpec("threshold", threshold=t)
    for search in (SearchSettings(method="ivf"), SearchSettings(method="ivf", n_lists=7, nprobe=3)):
        plan = DistributedBackend(InProcessExecutor(), block_rows=1024)
        got = build_graph(x, spec, search=search, backend=plan, max_edges=None)
        want = build_graph(x, spec, search=search, max_edges=None)
        assert got.search["method"] == want.search["method"] == "ivf"
        np.testing.assert_array_equal(got.src, want.src)
        np.testing.assert_array_equal(got.dst, want.dst)
        np.testing.assert_array_equal(
            got.similarity.view(np.uint32), want.similarity.view(np.uint32)
        )
        for key in ("n_lists", "nprobe", "list_pairs", "pairs_computed", "pairs_total", "recall",
                    "recall_rows", "chosen"):  # fmt: skip
            assert got.search[key] == want.search[key], key
        assert got.search["tasks"] == got.search["chunks"] > 1


@pytest.mark.parametrize("name", ["seeded", "duplicates", "giant"])
def test_in_process_ivf_knn_graph_is_the_native_one(name):
    """The native ``ivf`` kNN search over the partition the ε-graph's tasks use (built once
    per run; its passes as tasks over the same chunks, NN-descent on the driver): the
    native graph bit for bit and its recall."""
    make, _ = INPUTS[name]
    x = simclust.ops.normalize(make())
    plan = DistributedBackend(InProcessExecutor(), block_rows=1024)
    search = SearchSettings(method="ivf")
    eps = build_graph(x, GraphSpec("threshold", threshold=0.9), search=search, backend=plan)
    part = plan._lists
    spec = GraphSpec("knn", k=7, threshold=0.5)
    got = build_graph(x, spec, search=search, backend=plan)
    want = build_graph(x, spec, search=search)
    assert plan._lists is part and eps.search["chunks"] == got.search["chunks"]  # shared
    _same_graph(got, want)
    for key in ("n_lists", "nprobe", "pairs_computed", "recall", "recall_rows"):
        assert got.search[key] == want.search[key], key
    assert "on" not in got.search and got.search["refine"] == "driver"
    assert got.search["tasks"] >= 2 * got.search["chunks"]  # own lists and probes per chunk


def test_auto_on_a_backend_chooses_as_natively():
    x = simclust.ops.normalize(make_embeddings(3000, 16, n_clusters=12, seed=7))
    plan = DistributedBackend(InProcessExecutor(), block_rows=1024)
    spec = GraphSpec("threshold", threshold=0.9)
    got = build_graph(x, spec, search=SearchSettings(), backend=plan)
    want = build_graph(x, spec, search=SearchSettings())
    assert (got.search["method"], got.search["chosen"]) == (
        want.search["method"],
        want.search["chosen"],
    )
    assert SearchSettings().choose(1_000_000, 384, "knn")[0] == "ivf"  # the same rule


@pytest.mark.parametrize("name", sorted(INPUTS))
@pytest.mark.parametrize("kind", ["threshold", "knn"])
def test_in_process_plan_gives_the_native_graph_bit_for_bit(name, kind):
    make, t = INPUTS[name]
    x = simclust.ops.normalize(make())
    spec = GraphSpec("threshold", threshold=t) if kind == "threshold" else GraphSpec("knn", k=7)
    plan = DistributedBackend(InProcessExecutor(), block_rows=1024)
    got = build_graph(x, spec, backend=plan, max_edges=None)
    want = build_graph(x, spec, max_edges=None)
    assert got.search["blocks"] == -(-x.shape[0] // 1024) > 1
    _same_graph(got, want)


@pytest.mark.parametrize("name", sorted(INPUTS))
@pytest.mark.parametrize("method", ["exact", "ivf"])
def test_tasks_forests_merge_into_the_graphs_components(name, method):
    """Each ε-graph task's maximum spanning forest, merged on the driver: at most N - 1
    edges, all of them graph edges, with the graph's components (scipy) and sweep at
    every threshold at or above the graph's."""
    make, t = INPUTS[name]
    x = simclust.ops.normalize(make())
    n = x.shape[0]
    plan = DistributedBackend(InProcessExecutor(), block_rows=1024)
    spec = GraphSpec("threshold", threshold=t - 0.05)
    g = build_graph(x, spec, search=SearchSettings(method=method), backend=plan, max_edges=None)
    assert g.forest is not None and g.search["tasks"] > 1
    fs, fd, fw = g.forest
    assert fs.size <= n - 1 and (fs < fd).all()
    key = fs.astype(np.uint64) << np.uint64(32) | fd
    at = np.searchsorted(g.src.astype(np.uint64) << np.uint64(32) | g.dst, key)
    assert (g.src[at] == fs).all() and (g.dst[at] == fd).all()  # graph edges,
    np.testing.assert_array_equal(g.similarity[at], fw)  # with their similarities
    for level in (t - 0.05, t, min(t + 0.02, 1.0)):
        cut = g.at_least(level)
        keep = g.similarity >= np.float32(level)
        want = ref_components(n, g.src[keep], g.dst[keep])  # scipy, over every edge
        got = simclust.ops.connected_components(n, *cut.spanning()[:2])
        np.testing.assert_array_equal(got, want)
    levels = [t - 0.05, t, 0.99]
    assert_frame_equal(
        simclust.ops.threshold_sweep(n, *g.spanning(), levels),
        simclust.ops.threshold_sweep(n, g.src, g.dst, g.similarity, levels),
    )
    knn = build_graph(x, GraphSpec("knn", k=5), backend=plan)
    assert knn.forest is None  # a kNN graph's tasks hold candidates, not edges


def test_merge_forests_folds_to_a_bounded_forest(monkeypatch):
    """Folding as it reads (driver memory about 3 N forest edges) gives the components of
    all the forests' edges; the fold itself runs when the bound is passed."""
    from simclust.distributed import _forest

    rng = np.random.default_rng(5)
    n, forests, all_s, all_d = 500, [], [], []
    for _ in range(40):
        s = rng.integers(0, n, 200).astype(np.uint32)
        d = rng.integers(0, n, 200).astype(np.uint32)
        w = rng.random(200).astype(np.float32)
        forests.append(simclust.ops.spanning_forest(s, d, w))
        all_s.append(s)
        all_d.append(d)
    folds = []
    real = _forest._kruskal
    monkeypatch.setattr(_forest, "_kruskal", lambda fs: folds.append(len(fs)) or real(fs))
    fs, fd, _ = _forest.merge_forests(forests, n)
    assert len(folds) > 2 and fs.size <= n - 1
    want = simclust.ops.connected_components(n, np.concatenate(all_s), np.concatenate(all_d))
    np.testing.assert_array_equal(simclust.ops.connected_components(n, fs, fd), want)


def test_in_process_plan_runs_the_whole_analysis(monkeypatch):
    x = make_embeddings(3000, 16, n_clusters=12, seed=11)
    seen: list[tuple[str, int, int]] = []
    monkeypatch.setattr(
        pipeline, "graph_backend", lambda run: DistributedBackend(InProcessExecutor())
    )
    res = simclust.analyze(
        x, threshold=0.9, metrics=METRICS, progress=lambda *a, seen=seen: seen.append(a)
    )
    monkeypatch.undo()
    _same(res, simclust.analyze(x, threshold=0.9, metrics=METRICS))
    assert res.graph_search["backend"] == "in-process" and res.graph_search["tasks"] == 6
    assert ("graph", 6, 6) in seen and ("graph", 3, 6) in seen


def test_block_rows_are_whole_tiles():
    assert default_block_rows(10) == 1024
    with pytest.raises(simclust.exceptions.ParameterError, match="multiple of 1024"):
        DistributedBackend(InProcessExecutor(), block_rows=1000)


# --------------------------------------------------------------------------- shards


def _npy_shards(tmp_path, x, cuts):
    d = tmp_path / "shards"
    d.mkdir()
    for i, (s, e) in enumerate(itertools.pairwise(cuts)):
        np.save(d / f"part-{i:03d}.npy", x[s:e])
    return d


def test_npy_shards_read_as_one_input_with_their_ids(tmp_path):
    x = make_embeddings(1500, 8, n_clusters=6, seed=4)
    d = _npy_shards(tmp_path, x, [0, 400, 1100, 1500])
    (d / "_SUCCESS").write_text("")  # what a writer leaves beside its shards
    ref = simclust.analyze(x, threshold=0.9)
    for path in (d, str(d / "part-*.npy")):
        res = simclust.analyze(path, threshold=0.9)
        ids = res.assignments["id"].to_list()
        assert ids[:2] == ["part-000:0", "part-000:1"]
        assert ids[400] == "part-001:0" and ids[-1] == "part-002:399"
        assert res.assignments["cluster"].to_list() == ref.assignments["cluster"].to_list()
        assert_frame_equal(res.edges.drop("src_id", "dst_id"), ref.edges.drop("src_id", "dst_id"))
    single = tmp_path / "one"
    single.mkdir()
    np.save(single / "a.npy", x)
    host = simclust.get_host()
    data = simclust.pipeline.load_input(single, simclust.config.resolve({}, host), host)
    assert isinstance(data.X, np.memmap)  # one shard stays memory-mapped


def test_parquet_shards_keep_ids_and_columns(tmp_path):
    x = make_embeddings(900, 8, n_clusters=5, seed=5)
    d = tmp_path / "pq"
    d.mkdir()
    for i, (s, e) in enumerate([(0, 300), (300, 900)]):
        pl.DataFrame(
            {
                "id": [f"img{j:04d}.jpg" for j in range(s, e)],
                "vector": x[s:e].tolist(),
                "label": [j % 3 for j in range(s, e)],
            }
        ).write_parquet(d / f"shard-{i}.parquet")
    host = simclust.get_host()
    data = simclust.pipeline.load_input(d, simclust.config.resolve({}, host), host)
    assert data.rows is not None and data.rows["label"].to_list() == [j % 3 for j in range(900)]
    res = simclust.analyze(d, threshold=0.9)
    assert res.assignments["id"].to_list() == [f"img{j:04d}.jpg" for j in range(900)]
    ref = simclust.analyze(x, threshold=0.9)
    assert res.assignments["cluster"].to_list() == ref.assignments["cluster"].to_list()


def _parquet_shards(tmp_path, x, cuts, name="pq"):
    d = tmp_path / name
    d.mkdir()
    for i, (s, e) in enumerate(itertools.pairwise(cuts)):
        pl.DataFrame(
            {
                "id": [f"img{j:04d}.jpg" for j in range(s, e)],
                "vector": x[s:e].tolist(),
                "label": [j % 3 for j in range(s, e)],
            }
        ).write_parquet(d / f"shard-{i}.parquet")
    return d


def _same_data(got, want) -> None:
    """Two reads of one input: the same rows (bit for bit), ids and columns."""
    np.testing.assert_array_equal(np.asarray(got.X), np.asarray(want.X))
    assert np.asarray(got.X).dtype == np.asarray(want.X).dtype
    assert list(got.ids or []) == list(want.ids or [])
    assert (got.rows is None) == (want.rows is None)
    if want.rows is not None:
        assert_frame_equal(got.rows, want.rows)


def test_shards_read_by_tasks_are_the_native_read(tmp_path):
    """The plan's read (a task a shard, stage ``load``): the loader's own data."""
    x = make_embeddings(1500, 8, n_clusters=6, seed=4)
    host = simclust.get_host()
    cfg = simclust.config.resolve({}, host)
    plan = DistributedBackend(InProcessExecutor())
    for d in (
        _npy_shards(tmp_path, x, [0, 400, 1100, 1500]),
        _parquet_shards(tmp_path, x, [0, 300, 1000, 1500]),
    ):
        seen: list[tuple[int, int]] = []
        got = simclust.inputs.read_input(
            d, cfg, host, backend=plan, progress=lambda *a, seen=seen: seen.append(a)
        )
        _same_data(got, simclust.inputs.read_input(d, cfg, host))
        assert seen[0] == (0, 3) and seen[-1] == (3, 3)  # a task a shard
    one = tmp_path / "one"
    one.mkdir()
    np.save(one / "a.npy", x)  # one .npy shard is mapped on the driver, not copied by a task
    assert isinstance(simclust.inputs.read_input(one, cfg, host, backend=plan).X, np.memmap)


def test_bad_shards_name_the_file(tmp_path):
    x = make_embeddings(100, 8, seed=6)
    d = tmp_path / "dims"
    d.mkdir()
    np.save(d / "a.npy", x)
    np.save(d / "b.npy", x[:, :4])
    with pytest.raises(ShapeError, match=r"b\.npy: 4 dimensions, but a\.npy has 8"):
        simclust.analyze(d)
    d = tmp_path / "dtypes"
    d.mkdir()
    np.save(d / "a.npy", x)
    np.save(d / "b.npy", x.astype(np.float64))
    with pytest.raises(InvalidInputError, match=r"b\.npy: dtype float64, but a\.npy has float32"):
        simclust.analyze(d)
    d = tmp_path / "kinds"
    d.mkdir()
    np.save(d / "a.npy", x)
    pl.DataFrame({"vector": x.tolist()}).write_parquet(d / "b.parquet")
    with pytest.raises(InvalidInputError, match=r"mixes \.npy and Parquet shards"):
        simclust.analyze(d)
    with pytest.raises(ConfigError, match="matches no file"):
        simclust.analyze(str(tmp_path / "nothing-*.npy"))


# --------------------------------------------------------------------------- Ray


def _listening(pids: set[int]) -> list[str]:
    """``ss -ltnp``/``-lunp`` lines of sockets the given processes listen on."""
    lines = []
    for flags in ("-ltnpH", "-lunpH"):
        out = subprocess.run(["ss", flags], capture_output=True, text=True, check=True).stdout
        lines += [ln for ln in out.splitlines() if any(f"pid={p}," in ln for p in pids)]
    return lines


def _ray_pids() -> set[int]:
    """This process and its descendants (every process Ray started from here)."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            parent[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    mine = {os.getpid()}
    while True:
        more = {p for p, pp in parent.items() if pp in mine} - mine
        if not more:
            return mine
        mine |= more


def _local_address(line: str) -> str:
    return line.split()[3].rsplit(":", 1)[0]


LOOPBACK = {"127.0.0.1", "[::ffff:127.0.0.1]", "[::1]"}


@pytest.mark.usefixtures("runtime")
class TestLocalRuntime:
    """Runs that join the local runtime (analyze neither starts nor stops it)."""

    def test_it_listens_on_loopback_only(self):
        lines = _listening(_ray_pids())
        assert lines, "no listening socket found for the Ray processes"
        assert {_local_address(ln) for ln in lines} <= LOOPBACK, lines

    @pytest.mark.parametrize("name", sorted(INPUTS))
    def test_threshold_runs_equal_native(self, name):
        make, t = INPUTS[name]
        res, ref = _run_both(make(), threshold=t)
        _same(res, ref)
        assert res.graph_search["backend"] == "ray" and res.graph_search["tasks"] > 1
        assert res.outlier_search["backend"] == "ray"  # the scores' kNN search too

    @pytest.mark.parametrize("name", ["seeded", "duplicates"])
    def test_knn_runs_equal_native(self, name):
        make, _ = INPUTS[name]
        res, ref = _run_both(make(), graph="knn", k=5, threshold=0.9)
        _same(res, ref)
        assert res.graph_search["kind"] == "knn" and res.graph_search["backend"] == "ray"

    @pytest.mark.parametrize("name", ["seeded", "giant"])
    def test_ivf_runs_equal_native(self, name):
        """search = "ivf": the ε-graph's list-pair tasks give the native edges and labels;
        the outlier scores' kNN is the native search on the driver (the same recall)."""
        make, t = INPUTS[name]
        res, ref = _run_both(make(), threshold=t, search="ivf")
        assert res.assignments["cluster"].to_list() == ref.assignments["cluster"].to_list()
        assert_frame_equal(res.edges, ref.edges)
        assert res.graph_search["recall"] == ref.graph_search["recall"]
        assert res.graph_search["backend"] == "ray" and res.graph_search["method"] == "ivf"
        out = res.outlier_search
        assert out["backend"] == "ray" and out["recall"] == ref.outlier_search["recall"]

    def test_sharded_input_is_read_by_tasks_with_its_ids(self, tmp_path, monkeypatch):
        """On the runtime: Parquet and .npy shards read by tasks (one a shard, named in
        the progress as stage ``load``), the native frames and ids."""
        x = make_embeddings(2600, 16, n_clusters=9, seed=12)
        from simclust.default_plugins import loaders

        calls: list[int] = []
        real = loaders.ShardsLoader.read_by
        monkeypatch.setattr(
            loaders.ShardsLoader,
            "read_by",
            lambda self, *a, **k: calls.append(1) or real(self, *a, **k),
        )
        for d in (
            _parquet_shards(tmp_path, x, [0, 1000, 1700, 2600]),
            _npy_shards(tmp_path, x, [0, 500, 2600]),
        ):
            seen: list[tuple[str, int, int]] = []
            res = simclust.analyze(
                d, threshold=0.9, metrics=METRICS, backend="ray",
                progress=lambda *a, seen=seen: seen.append(a),
            )  # fmt: skip
            ref = simclust.analyze(d, threshold=0.9, metrics=METRICS)
            _same(res, ref)
            assert res.assignments["id"].to_list() == ref.assignments["id"].to_list()
            assert ("load", 0, len(list(d.iterdir()))) in seen
            # the exact plan's blocks were cut from the shards by tasks, not put from here
            assert res.graph_search["rows_by"] == "tasks"
        assert len(calls) == 2
        res = simclust.analyze(x, threshold=0.9, backend="ray")  # an array: the driver's rows
        assert res.graph_search["rows_by"] == "driver"

    @pytest.mark.parametrize("distance", ["cosine", "euclidean"])
    def test_sharded_rows_move_by_tasks_in_every_plan(self, tmp_path, distance):
        """Float64 shards of rows that are not unit: the blocks are cut and normalised by
        tasks, the ivf lists and the metrics' parts shuffled from them; the native frames
        (edges bit for bit, labels, metrics, the recall)."""
        x = (3.0 * make_embeddings(5200, 16, n_clusters=30, seed=14) + 0.5).astype(np.float64)
        d = _npy_shards(tmp_path, x, [0, 700, 2900, 3000, 5200])
        kw = {"threshold": 0.9, "search": "ivf", "distance": distance}
        res, ref = _run_both(d, **kw)
        assert res.graph_search["rows_by"] == "tasks"
        assert res.graph_search["chunks"] > 1
        assert_frame_equal(res.edges, ref.edges)
        assert res.graph_search["recall"] == ref.graph_search["recall"]
        _same(res, ref)
        if distance == "cosine":  # the kmeans strategy's blocks cut from the shards too
            res, ref = _run_both(d, strategy="kmeans", n_clusters=12, distance=distance)
            _same(res, ref)

    def test_a_damaged_shard_is_named_by_its_task(self, tmp_path):
        x = make_embeddings(600, 8, seed=13)
        d = _parquet_shards(tmp_path, x, [0, 200, 400, 600])
        (d / "shard-1.parquet").write_bytes(b"PAR1 not really parquet PAR1")
        with pytest.raises(InvalidInputError, match=r"stage 'load'.*shard 1: .*shard-1\.parquet"):
            simclust.analyze(d, threshold=0.9, backend="ray")
        with pytest.raises(InvalidInputError, match=r"shard-1\.parquet"):
            simclust.analyze(d, threshold=0.9)  # natively: the same file named

    def test_cli_backend_and_config(self, tmp_path):
        x = make_embeddings(1500, 8, n_clusters=5, seed=8)
        np.save(tmp_path / "x.npy", x)
        (tmp_path / "run.toml").write_text(
            '[input]\npath = "x.npy"\n[graph]\nkind = "threshold"\nthreshold = 0.9\n'
            '[run]\nbackend = "ray"\n[output]\ndir = "out"\nreport = false\n'
        )
        res, out = simclust.run(tmp_path / "run.toml")
        assert res.graph_search["backend"] == "ray" and (out / "clusters.parquet").exists()
        result = CliRunner().invoke(
            main,
            ["analyze", str(tmp_path / "x.npy"), "--backend", "ray", "--threshold", "0.9",
             "--out", str(tmp_path / "cli"), "--no-report"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "exact (every pair; 3 ray tasks on 1 node)" in result.output

    def test_a_failing_task_names_its_stage_and_block(self, runtime):
        tasks = [Task("block pair (0, 1): rows 0..9 x 10..19", (1,))]
        with pytest.raises(DistributedError, match=r"stage 'knn graph', block pair \(0, 1\)"):
            runtime.map("knn graph", _raise_value_error, tasks)
        with pytest.raises(InvalidInputError, match=r"backend ray, stage 'graph', shard 3: bad"):
            runtime.map("graph", _raise_invalid, [Task("shard 3", ())])

    def test_a_dead_worker_is_retried_then_named(self, runtime, tmp_path):
        marker = tmp_path / "died-once"
        assert runtime.map("graph", _die_once, [Task("t", (str(marker),))]) == ["retried"]
        flaky = RayExecutor(max_retries=1)
        failed = r"stage 'graph', shard 7 failed after 1 retries"
        with pytest.raises(DistributedError, match=failed):
            flaky.map("graph", _die, [Task("shard 7", ())])

    def test_leaving_early_cancels_the_rest(self, runtime):
        tasks = [Task(f"t{i}", (0.05 if i == 0 else 30.0,)) for i in range(6)]
        it = runtime.imap("graph", time.sleep, tasks)
        start = time.perf_counter()
        assert next(it)[0] == 0
        it.close()  # what an error or Ctrl-C in the consumer does
        assert time.perf_counter() - start < 10
        # the cancelled tasks free their CPUs: a new task runs at once
        assert runtime.map("graph", int, [Task("x", ("1",))]) == [1]


def _raise_value_error(x: int) -> None:
    raise ValueError(f"boom {x}")


def _raise_invalid() -> None:
    raise InvalidInputError("bad")


def _die_once(marker: str) -> str:
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)  # the worker process dies: Ray retries the task
    return "retried"


def _die() -> None:
    os._exit(1)


# --------------------------------------------------------------------------- two nodes


@pytest.fixture(scope="class")
def cluster():
    """A head and a second node (two raylets), both on 127.0.0.1, dashboard off."""
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "object_store_memory": 256 * MB}
    with _loopback(ray):
        c = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
        worker = c.add_node(**node)
        c.wait_for_nodes()
    yield c, worker
    c.shutdown()


@pytest.fixture(scope="class")
def data():
    return make_embeddings(12_000, 64, n_clusters=40, seed=9)


class TestTwoNodesOnLoopback:
    """A real two-node cluster on this machine's loopback."""

    def test_tasks_run_on_both_nodes_and_nothing_listens_beyond_loopback(self, cluster, data):
        c, _ = cluster
        res = simclust.analyze(data, threshold=0.9, backend="ray", address=c.address)
        assert res.graph_search["nodes"] == 2
        assert res.graph_search["nodes_used"] == 2  # node ids recorded by the tasks
        _same(res, simclust.analyze(data, threshold=0.9))
        # the driver (this process) and every process Ray started for the nodes
        lines = _listening(_ray_pids())
        assert any("raylet" in ln for ln in lines) and any("gcs_server" in ln for ln in lines)
        assert {_local_address(ln) for ln in lines} <= LOOPBACK, lines

    def test_a_node_removed_mid_kmeans(self, cluster, data, tmp_path):
        """k-means with the distributed metrics on both nodes, a node removed while the
        Lloyd steps run: the per-row state it held (each step's second return) is rebuilt
        from lineage and the run gives the native result, or it fails clearly with
        nothing written."""
        c, _ = cluster
        extra = c.add_node(num_cpus=1, node_ip_address="127.0.0.1", object_store_memory=256 * MB)
        c.wait_for_nodes()
        np.save(tmp_path / "x.npy", data)
        (tmp_path / "run.toml").write_text(
            '[input]\npath = "x.npy"\n[cluster]\nstrategy = "kmeans"\n'
            "n_clusters = 40\nrandom_state = 1\n"
            '[metrics]\nuse = ["intra", "centroid", "inter"]\n'
            f'[run]\nbackend = "ray"\naddress = "{c.address}"\n'
            '[output]\ndir = "out"\nreport = false\n'
        )
        killed: list[int] = []

        def progress(stage: str, done: int, total: int) -> None:
            if stage == "cluster" and done >= 20 and not killed:  # a few steps in
                c.remove_node(extra, allow_graceful=False)
                killed.append(done)

        kw = {"strategy": "kmeans", "n_clusters": 40, "random_state": 1}
        ref = simclust.analyze(data, metrics=["intra", "centroid", "inter"], **kw)  # type: ignore[arg-type]
        try:
            res, out = simclust.run(tmp_path / "run.toml", progress=progress)
        except DistributedError as exc:  # allowed: a clear error and nothing written
            assert "stage 'kmeans" in str(exc)
            assert not (tmp_path / "out").exists()
            print("node removed mid-kmeans: failed cleanly:", exc)
        else:
            print("node removed mid-kmeans: completed, same result")
            assert res.assignments["cluster"].to_list() == ref.assignments["cluster"].to_list()
            for name in ("clusters", "inter"):
                assert_frame_equal(
                    getattr(res, name), getattr(ref, name), check_exact=False, abs_tol=1e-6
                )
            assert (out / "clusters.parquet").exists()
        assert killed

    def test_a_node_removed_mid_run(self, cluster, data, tmp_path):
        c, worker = cluster
        np.save(tmp_path / "x.npy", data)
        (tmp_path / "run.toml").write_text(
            '[input]\npath = "x.npy"\n[graph]\nkind = "threshold"\nthreshold = 0.9\n'
            f'[run]\nbackend = "ray"\naddress = "{c.address}"\n'
            '[output]\ndir = "out"\nreport = false\n'
        )
        killed: list[int] = []
        tasks: list[int] = []

        def progress(stage: str, done: int, total: int) -> None:
            if stage == "graph" and 1 <= done < total and not killed:
                tasks.append(total)
                c.remove_node(worker, allow_graceful=False)  # while the other tasks run
                killed.append(done)

        try:
            res, out = simclust.run(tmp_path / "run.toml", progress=progress)
        except DistributedError as exc:  # allowed: a clear error and nothing written
            assert "stage 'threshold graph'" in str(exc)
            assert not (tmp_path / "out").exists()
            print("node removed mid-run: failed cleanly:", exc)
        else:
            print("node removed mid-run: completed, same result")
            _same(res, simclust.analyze(data, threshold=0.9))
            assert (out / "clusters.parquet").exists()
        assert killed and killed[0] < tasks[0]  # removed while graph tasks were running
