"""Ray backend benchmark: ``analyze(backend="ray")`` on a local runtime vs the native backend.

Tasks (``--only``), all in one process, the same data and thread count:

* ``run``   ``simclust.analyze(X, threshold=0.9, search=--search)`` natively and with
            ``backend="ray"`` on a local runtime of ``--threads`` CPUs (started once, before
            the timed runs; its start-up is reported on its own), round-robin, one warm-up
            each unless ``--no-warmup``. Per stage (``Result.timings``): the graph and the
            outlier scores' kNN search run as Ray tasks (an ``ivf`` kNN search's NN-descent
            on the driver), the rest on the driver in both.
            The ratio is ray / native (the plan's overhead: object store, tasks, merges).
            ``--search exact`` (default) is every pair; ``auto`` (``ivf`` at 1M) builds the
            partition on the driver and runs list-pair tasks; the recalls are printed.
            Peak memory: the summed PSS of this process and every process it started (the
            Ray runtime's included), sampled every 0.5 s during each run.
* ``graph`` the run's ε-graph alone (``--threshold``, ``--search``):
            :func:`simclust.graph.build_graph` natively against the Ray plan
            (``DistributedBackend`` on the local runtime, a new one each run, so nothing
            is reused between runs), round-robin as ``run``; the edges and the search
            records are checked identical. ``--search certified``: the partition with
            cells on the driver, one task per pair of groups of panels (``docs/distributed.md``).
* ``knn``   the ``ivf`` kNN graph alone (``--k``, default 10; the outlier scores' search at
            scale), as ``graph``: natively (the partition and the whole search on the
            driver) against the Ray plan (the partition by tasks, the own-list, probe and
            weak-row passes as tasks over the chunks, NN-descent on the driver); the edges
            and records are checked identical. Then the search alone over one partition
            built and put once (``Partition.knn_edges`` against ``_ivf_knn.knn_lists``).
* ``task``  the per-task rates a cluster plan is computed from: one block-pair task of the
            ε-graph (``ops.threshold_edges_between``, two blocks of ``--block-rows`` rows, one
            thread) and of the kNN graph (``ops.knn_between``, both blocks' lists), in pairs
            per second per core; then the same task as Ray tasks (one per CPU at a time).

* ``kmeans`` spherical k-means (``--kmeans-k`` clusters, seed 0): ``simclust.ops.kmeans``
            natively against ``distributed_kmeans`` on the local runtime (blocks of whole
            4,096-row spans), round-robin as ``run``; the same labels and centroids are
            checked. Then the per-task rate: one Lloyd-step block task (``--block-rows`` rows,
            ``k = 1,000``, one thread, in process; CPU time): the first step (every row
            against every centroid) and the next five (with the bounds).

* ``forest`` the components' per-task union-find: the ε-graph at ``--threshold - 0.1`` (the
            graph a run's sweep counts on) built by the plan in process (``--search``), then
            on the driver, round-robin: the components and the threshold sweep from every
            edge against from the merged maximum spanning forest (the same labels and sweep
            are checked), the forest merge itself, and Kruskal over all the edges (the
            tasks' share of the work, summed).
* ``metrics`` the metrics stage (``intra``, ``centroid``, ``inter``: the built-in metric
            plugins' ``compute``, as the pipeline calls them) natively against the Ray plan
            (``simclust.distributed._metrics``: tasks over clusters), on the unit rows with
            planted labels: one giant cluster of ``--giant`` rows (cut into tile tasks), 55 %
            of the rest in clusters of 2-64 rows, 35 % singletons, 10 % noise (or, with
            ``--metrics-labels components``, the connected components at ``--threshold``
            of an ``auto`` search); round-robin as ``run``; the largest difference of the
            frames and each metric's time in the last run are printed.

Run from ``bench/``: ``../.venv/bin/python bench_ray.py`` (200k x 384, ~15 min on 2 cores) or
``--big --search auto`` (1M x 384, the issue's target: partitioned search, minutes; ``--big``
with exact search is hours of brute force on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (first: removes OPENBLAS_* from the environment before numpy loads)
import numpy as np
import simclust
from _common import Timing, bench_parser, log, measure_interleaved, parse_tasks, report_machine
from _common import thread_limits as _thread_limits
from datasets import make_embeddings
from simclust import _native, ops
from simclust.distributed import (
    MAX_BLOCK_ROWS,
    DistributedBackend,
    InProcessExecutor,
    RayExecutor,
    Task,
    block_bounds,
    distributed_kmeans,
)
from simclust.distributed._forest import merge_forests
from simclust.distributed._graph import _knn_pair, _threshold_pair
from simclust.distributed._ivf import Lists
from simclust.distributed._ivf_knn import knn_lists
from simclust.distributed._rows import StoredRows
from simclust.graph import GraphSpec, SearchSettings, build_graph

TASKS = ("run", "graph", "knn", "task", "kmeans", "forest", "metrics")
MB = 1024 * 1024


def _fmt(t: Timing) -> str:
    return f"{t.median:.2f} s ({t.min:.2f}-{t.max:.2f})"


def _pss_bytes(pids: set[int]) -> int:
    """Summed proportional set size of ``pids`` (shared pages counted once overall)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def _family() -> set[int]:
    """This process and its descendants (the Ray runtime it started among them)."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    mine = {os.getpid()}
    while more := {p for p, pp in parent.items() if pp in mine} - mine:
        mine |= more
    return mine


def peak_memory(fn: Callable[[], Any], peaks: list[int]) -> Callable[[], Any]:
    """``fn`` that appends its run's peak summed PSS (sampled every 0.5 s) to ``peaks``."""

    def run() -> Any:
        stop = threading.Event()
        peak = [_pss_bytes(_family())]

        def sample() -> None:
            while not stop.wait(0.5):
                peak[0] = max(peak[0], _pss_bytes(_family()))

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        try:
            return fn()
        finally:
            stop.set()
            t.join()
            peaks.append(peak[0])

    return run


def bench_run(x: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    if not args.shards:
        return _bench_run(x, x, args)
    with tempfile.TemporaryDirectory(prefix="simclust-bench-shards-") as tmp:
        # a sharded input (read by tasks on Ray: the rows then move by tasks, not the driver)
        for i, (s, e) in enumerate(block_bounds(x.shape[0], -(-x.shape[0] // args.shards))):
            np.save(Path(tmp) / f"part-{i:04d}.npy", x[s:e])
        log(f"input: {args.shards} .npy shards in {tmp}")
        return _bench_run(x, Path(tmp), args)


def _bench_run(x: np.ndarray, src: np.ndarray | Path, args: argparse.Namespace) -> dict[str, Any]:
    common = {"threshold": args.threshold, "search": args.search, "n_threads": args.threads}
    peaks: dict[str, list[int]] = {"native": [], "ray": []}
    cases = [
        ("native", peak_memory(lambda: simclust.analyze(src, **common), peaks["native"])),
        ("ray", peak_memory(lambda: simclust.analyze(src, backend="ray", **common), peaks["ray"])),
    ]
    out = measure_interleaved(cases, args.repeats, warmup=not args.no_warmup)
    native, ray_ = out["native"][0], out["ray"][0]
    res_n, res_r = out["native"][1], out["ray"][1]
    same = res_n.assignments["cluster"].to_list() == res_r.assignments["cluster"].to_list()
    same_edges = res_n.edges.equals(res_r.edges)
    given = f"{args.shards} .npy shards" if args.shards else "an array"
    print(
        f"\n## analyze, {x.shape[0]:,} x {x.shape[1]} ({given}), t = {args.threshold}, "
        f"search {args.search}; ray's rows moved by: {res_r.graph_search.get('rows_by')}\n"
    )
    print("| stage | native | ray (local runtime) | ray / native |")
    print("| --- | --- | --- | --- |")
    print(f"| whole run | {_fmt(native)} | {_fmt(ray_)} | {ray_.median / native.median:.2f} |")
    for stage in res_n.timings:
        a, b = res_n.timings[stage], res_r.timings.get(stage, float("nan"))
        ratio = b / a if a > 0.05 else float("nan")
        print(f"| {stage} (last run) | {a:.2f} s | {b:.2f} s | {ratio:.2f} |")
    gb = 1024**3
    pn, pr = max(peaks["native"]) / gb, max(peaks["ray"]) / gb
    print(f"| peak memory (PSS, all processes) | {pn:.2f} GB | {pr:.2f} GB | {pr / pn:.2f} |")
    for what, gn, gr in (
        ("graph", res_n.graph_search, res_r.graph_search),
        ("outlier kNN", res_n.outlier_search, res_r.outlier_search),
    ):
        print(
            f"\n{what}: native {gn.get('method')} recall {gn.get('recall')}; ray "
            f"{gr.get('method')} recall {gr.get('recall')}, {gr.get('tasks')} tasks "
            f"({'blocks' if gr.get('method') == 'exact' else 'chunks'}: "
            f"{gr.get('blocks', gr.get('chunks'))})"
        )
    print(
        f"\nedges {res_n.edges.height:,} / {res_r.edges.height:,}; labels identical: {same}; "
        f"edges identical: {same_edges}"
    )
    return {
        "native_s": native.times,
        "ray_s": ray_.times,
        "ratio": ray_.median / native.median,
        "stages_native": res_n.timings,
        "stages_ray": res_r.timings,
        "peak_pss_native": peaks["native"],
        "peak_pss_ray": peaks["ray"],
        "graph_search": {"native": res_n.graph_search, "ray": res_r.graph_search},
        "outlier_search": {"native": res_n.outlier_search, "ray": res_r.outlier_search},
        "identical": bool(same and same_edges),
    }


def bench_forest(x: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    n, t = x.shape[0], args.threshold - 0.1
    u = ops.normalize(x, n_threads=args.threads)
    t0 = time.perf_counter()
    plan = DistributedBackend(InProcessExecutor())  # tasks on all the threads
    g = build_graph(
        u, GraphSpec("threshold", threshold=t), search=SearchSettings(method=args.search),
        backend=plan, max_edges=None,
    )  # fmt: skip
    log(f"  graph by {g.search['tasks']} in-process tasks: {time.perf_counter() - t0:.1f} s")
    assert g.forest is not None
    levels = np.round(np.arange(t, 0.995, 0.01), 2)
    edges, forest = (g.src, g.dst, g.similarity), g.forest
    cases = [
        ("components, edges", lambda: ops.connected_components(n, g.src, g.dst)),
        ("components, forest", lambda: ops.connected_components(n, forest[0], forest[1])),
        ("sweep, edges", lambda: ops.threshold_sweep(n, *edges, levels)),
        ("sweep, forest", lambda: ops.threshold_sweep(n, *forest, levels)),
        ("merge of one forest", lambda: merge_forests([forest], n)),
        ("Kruskal over every edge", lambda: ops.spanning_forest(*edges)),
    ]
    out = measure_interleaved(cases, args.repeats)
    labels_same = np.array_equal(out["components, edges"][1], out["components, forest"][1])
    sweep_same = out["sweep, edges"][1].equals(out["sweep, forest"][1])
    print(f"\n## components from the tasks' forests, {n:,} x {x.shape[1]}, ε-graph at {t:g} "
          f"({g.search['method']}, {g.search['tasks']} tasks)\n")  # fmt: skip
    print(f"edges {g.n_edges:,}; merged forest {forest[0].size:,} edges "
          f"({forest[0].size / max(g.n_edges, 1):.3f} of them); labels identical: "
          f"{labels_same}; sweep identical ({levels.size} thresholds): {sweep_same}\n")  # fmt: skip
    print("| on the driver | s (min-max) |")
    print("| --- | --- |")
    for label, _ in cases:
        print(f"| {label} | {_fmt(out[label][0])} |")
    return {
        "edges": g.n_edges,
        "forest_edges": int(forest[0].size),
        "identical": bool(labels_same and sweep_same),
        **{label: out[label][0].times for label, _ in cases},
    }


def bench_graph(
    x: np.ndarray, ex: RayExecutor, args: argparse.Namespace, kind: str = "threshold"
) -> dict[str, Any]:
    """The ε-graph (or the ``ivf`` kNN graph) alone, natively and by the Ray plan,
    round-robin in this process."""
    xu = ops.normalize(x, n_threads=args.threads)
    if kind == "knn":
        spec, method = GraphSpec("knn", k=args.k), "ivf"
        title = f"kNN graph, {x.shape[0]:,} x {x.shape[1]}, k = {args.k}, search ivf"
    else:
        spec, method = GraphSpec("threshold", threshold=args.threshold), args.search
        title = f"ε-graph, {x.shape[0]:,} x {x.shape[1]}, t = {args.threshold}, search {method}"
    search = SearchSettings(method=method)
    common = {"search": search, "n_threads": args.threads, "max_edges": None}

    def ray_graph() -> Any:  # a new plan each run: no partition or block reused
        return build_graph(
            xu, spec, backend=DistributedBackend(ex, block_rows=args.block_rows), **common
        )

    cases = [("native", lambda: build_graph(xu, spec, **common)), ("ray", ray_graph)]
    out = measure_interleaved(cases, args.repeats, warmup=not args.no_warmup)
    (native, gn), (ray_, gr) = out["native"], out["ray"]
    same = (
        np.array_equal(gn.src, gr.src)
        and np.array_equal(gn.dst, gr.dst)
        and np.array_equal(gn.similarity.view(np.uint32), gr.similarity.view(np.uint32))
    )
    record_same = all(gr.search.get(k) == v for k, v in gn.search.items())
    print(f"\n## {title}\n")
    print("| | native | ray (local runtime) | ray / native |")
    print("| --- | --- | --- | --- |")
    print(f"| build_graph | {_fmt(native)} | {_fmt(ray_)} | {ray_.median / native.median:.2f} |")
    spread = {name: (min(t.times), max(t.times)) for name, t in (("native", native), ("ray", ray_))}
    rec = {k: v for k, v in gr.search.items() if k not in ("nodes_used",)}
    print(
        f"\nedges {gn.n_edges:,} / {gr.n_edges:,}; identical: {same}; records equal: {record_same}"
    )
    print(f"native record: {dict(gn.search)}\nray record: {rec}")
    return {
        "native_s": native.times,
        "ray_s": ray_.times,
        "ratio": ray_.median / native.median,
        "spread_s": spread,
        "edges": gn.n_edges,
        "identical": bool(same and record_same),
        "search": {"native": dict(gn.search), "ray": rec},
    }


def bench_knn_search(x: np.ndarray, ex: RayExecutor, args: argparse.Namespace) -> dict[str, Any]:
    """The ``ivf`` kNN search alone over one partition (built and put once): the native
    search on the driver against its passes as tasks (NN-descent on the driver)."""
    xu = ops.normalize(x, n_threads=args.threads)
    blocks, bounds = StoredRows(ex, block_rows=args.block_rows).blocks(xu)
    lists = Lists(xu, None, args.threads, ex, blocks, bounds)  # the partition by tasks
    lists.put(args.block_rows)
    nprobe, k = SearchSettings().nprobe_for("knn"), args.k

    def ray() -> Any:
        return knn_lists(ex, lists, k, -1.0, nprobe, 1000, None, args.threads, lambda *a: None)

    def native() -> Any:
        return lists.part.knn_edges(k, nprobe=nprobe, n_threads=args.threads)

    out = measure_interleaved([("native", native), ("ray", ray)], args.repeats, warmup=False)
    (tn, want), (tr, got) = out["native"], out["ray"]
    same = all(
        np.array_equal(a.view(np.uint32), b.view(np.uint32))
        for a, b in zip(want[:3], got[:3], strict=True)
    ) and all(got[3][key] == v for key, v in want[3]._asdict().items())
    print(f"\n## kNN search alone, one partition ({lists.part.n_lists} lists), k = {k}\n")
    print("| | native (driver) | ray (tasks + NN-descent on the driver) | ray / native |")
    print("| --- | --- | --- | --- |")
    print(f"| knn_edges | {_fmt(tn)} | {_fmt(tr)} | {tr.median / tn.median:.2f} |")
    print(f"\nidentical: {same}; {got[3]['tasks']} tasks over {len(lists.handles)} chunks")
    return {"native_s": tn.times, "ray_s": tr.times, "ratio": tr.median / tn.median,
            "identical": bool(same), "tasks": got[3]["tasks"]}  # fmt: skip


def bench_task(x: np.ndarray, ex: RayExecutor, args: argparse.Namespace) -> dict[str, Any]:
    b = args.block_rows
    if x.shape[0] < 2 * b:
        log(f"task: needs {2 * b} rows, have {x.shape[0]}; skipped")
        return {}
    a_blk = np.ascontiguousarray(x[:b])
    b_blk = np.ascontiguousarray(x[b : 2 * b])
    pairs_eps = b * b
    rows: list[tuple[str, float, float]] = []
    one = {}
    for name, fn, pairs in (
        (
            "ε-graph block pair",
            lambda: _threshold_pair(a_blk, b_blk, 0, b, args.threshold, 1),
            pairs_eps,
        ),
        (
            "kNN block pair (knn_between, k=10)",
            lambda: _knn_pair(a_blk, b_blk, 0, b, 10, 1),
            pairs_eps,
        ),
    ):
        t = Timing()
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            t.times.append(time.perf_counter() - t0)
        rows.append((name, t.median, pairs / t.median))
        one[name] = {"s": t.times, "pairs": pairs}
    refs = [ex.put(a_blk), ex.put(b_blk)]
    n_tasks = 2 * args.threads
    tasks = [Task(f"pair {i}", (refs[0], refs[1], 0, b, args.threshold, 1)) for i in range(n_tasks)]
    ex.map("warm-up", _threshold_pair, tasks[: args.threads])
    t0 = time.perf_counter()
    ex.map("ε-graph", _threshold_pair, tasks)
    wall = time.perf_counter() - t0
    print(f"\n## per-task rates, blocks of {b:,} rows, d = {x.shape[1]}, one thread per task\n")
    print("| task | median s | pairs / s / core |")
    print("| --- | --- | --- |")
    for name, s, rate in rows:
        print(f"| {name} | {s:.2f} | {rate / 1e6:,.0f} M |")
    ray_rate = n_tasks * pairs_eps / wall / args.threads
    per_task = wall / n_tasks * args.threads
    what = f"ε-graph block pair, {n_tasks} Ray tasks on {args.threads} CPUs"
    print(f"| {what} | {per_task:.2f} | {ray_rate / 1e6:,.0f} M |")
    return {"in_process": one, "ray_pairs_per_s_per_cpu": ray_rate, "block_rows": b}


def _step_rates(x: np.ndarray, rows: int, k: int) -> dict[str, Any]:
    """CPU seconds of one Lloyd-step block task: the first step, then five with bounds."""
    blk = _native.normalize(np.ascontiguousarray(x[:rows]))  # as the plan puts them
    n, d = blk.shape
    pick = _native.kmeans_init_rows(n, k, init="random", random_state=0)
    c = _native.kmeans_init_from_rows(
        np.ascontiguousarray(blk[pick]), n, k, init="random", random_state=0, n_threads=1
    )
    colmax = _native.kmeans_block_colmax(blk, n_threads=1)
    none = (np.zeros((0, d), np.float32), np.zeros(0, np.int64), np.zeros(0, np.uint32))
    sums, counts = np.zeros((k, d), np.int64), np.zeros(k, np.int64)
    st, drift = _native.kmeans_block_state(n), None
    times = []
    for _ in range(6):
        t0 = time.process_time()
        st, _, _, touched, dc, ds = _native.kmeans_block_step(
            blk, st, c, colmax, n, drift=drift, full=drift is None, rows_are_unit=True,
            n_threads=1,
        )  # fmt: skip
        times.append(time.process_time() - t0)
        counts[touched] += dc
        sums[touched] += ds
        c, drift, sums, counts = _native.kmeans_update(
            sums, counts, c, colmax, n, *none, n_threads=1
        )
    return {"first_s": times[0], "later_s": times[1:], "rows": n, "k": k}


def bench_kmeans(x: np.ndarray, ex: RayExecutor, args: argparse.Namespace) -> dict[str, Any]:
    k = args.kmeans_k
    cases = [
        ("native", lambda: ops.kmeans(x, k, random_state=0, n_threads=args.threads)),
        ("ray", lambda: distributed_kmeans(ex, x, k, random_state=0)),
    ]
    out = measure_interleaved(cases, args.repeats, warmup=not args.no_warmup)
    (native, res_n), (ray_, res_r) = out["native"], out["ray"]
    same = bool(
        np.array_equal(res_n[0], res_r.labels) and np.array_equal(res_n[1], res_r.centroids)
    )
    print(f"\n## spherical k-means, {x.shape[0]:,} x {x.shape[1]}, k = {k}\n")
    print("| backend | time | iterations |")
    print("| --- | --- | --- |")
    print(f"| native ({args.threads} threads) | {_fmt(native)} | {res_n[3]} |")
    print(f"| ray (local runtime, {args.threads} CPUs) | {_fmt(ray_)} | {res_r.n_iter} |")
    print(
        f"\nray / native {ray_.median / native.median:.2f}; labels and centroids identical: {same}"
    )
    rates = {}
    if x.shape[0] >= args.block_rows:
        rates = _step_rates(x, args.block_rows, 1000)
        later = rates["later_s"]
        print(
            f"\nLloyd-step block task, {args.block_rows:,} rows x {x.shape[1]}, k = 1,000, one "
            f"thread (CPU time): first step {rates['first_s']:.3f} s; steps 2-6 "
            f"{', '.join(f'{t:.3f}' for t in later)} s"
        )
    return {
        "native_s": native.times,
        "ray_s": ray_.times,
        "ratio": ray_.median / native.median,
        "identical": same,
        "step_task": rates,
    }


def planted_labels(n: int, giant: int, seed: int) -> np.ndarray:
    """One cluster of ``giant`` rows, small clusters (2-64 rows), singletons and noise."""
    rng = np.random.default_rng(seed)
    labels = np.full(n, -1, np.int64)
    perm = rng.permutation(n)
    labels[perm[:giant]] = 0
    rest = perm[giant:]
    small, single = int(0.55 * rest.size), int(0.35 * rest.size)
    sizes = rng.integers(2, 65, small // 2 + 1)
    ids = np.repeat(np.arange(1, sizes.size + 1), sizes)[:small]
    labels[rest[:small]] = ids
    labels[rest[small : small + single]] = ids[-1] + 1 + np.arange(single)
    return labels


def bench_metrics(x: np.ndarray, ex: RayExecutor, args: argparse.Namespace) -> dict[str, Any]:
    from simclust.base import MetricContext
    from simclust.default_plugins.metrics import Centroid, Inter, Intra
    from simclust.distributed._metrics import compute_metric

    xs = ops.normalize(x, n_threads=args.threads)
    if args.metrics_labels == "components":  # the default run's clusters (auto search)
        t0 = time.perf_counter()
        res = simclust.analyze(
            xs, threshold=args.threshold, search="auto", metrics=["intra"], n_threads=args.threads
        )
        labels = res.assignments["cluster"].to_numpy().astype(np.int64)
        log(f"labels: components at t = {args.threshold} ({time.perf_counter() - t0:.1f} s)")
    else:
        labels = planted_labels(x.shape[0], args.giant, args.seed)
    metrics = [Intra(), Centroid(), Inter()]
    stages: dict[str, Any] = {}
    per_metric: dict[str, list[float]] = {"native": [], "ray": []}

    def timed(fn: Callable[[Any], Any], into: list[float]) -> list[Any]:
        out: list[Any] = []
        into.clear()
        for m in metrics:
            t0 = time.perf_counter()
            out.append(fn(m))
            into.append(time.perf_counter() - t0)
        return out

    def native() -> list[Any]:
        ctx = MetricContext(xs, labels, n_threads=args.threads)
        return timed(lambda m: m.compute(ctx), per_metric["native"])

    def ray() -> list[Any]:
        ctx = MetricContext(xs, labels, n_threads=args.threads)
        out = timed(lambda m: compute_metric(ex, m, ctx), per_metric["ray"])
        stages.update(ctx.cache["task labelling"]._native.tasks)
        return out

    out = measure_interleaved(
        [("native", native), ("ray", ray)], args.repeats, warmup=not args.no_warmup
    )
    (tn, res_n), (tr, res_r) = out["native"], out["ray"]
    worst = 0.0
    for a, b in zip(res_n, res_r, strict=True):
        for name, frame in a.items():
            if not hasattr(frame, "columns"):
                continue
            for c in frame.columns:
                u, v = frame[c].to_numpy(), b[name][c].to_numpy()
                if u.dtype.kind == "f":
                    same_nan = np.array_equal(np.isnan(u), np.isnan(v))
                    worst = max(worst, float(np.nanmax(np.abs(u - v), initial=0.0)))
                    worst = worst if same_nan else float("inf")
                elif not np.array_equal(u, v):
                    worst = float("inf")
    ids, sizes = np.unique(labels[labels >= 0], return_counts=True)
    k, largest = int(ids.size), int(sizes.max(initial=0))
    print(
        f"\n## metrics (intra, centroid, inter), {x.shape[0]:,} x {x.shape[1]}, {k:,} clusters "
        f"({args.metrics_labels}; largest {largest:,} rows, {int((sizes == 1).sum()):,} "
        f"singletons, {int((labels < 0).sum()):,} noise rows)\n"
    )
    print("| backend | time | tasks |")
    print("| --- | --- | --- |")
    print(f"| native ({args.threads} threads) | {_fmt(tn)} | |")
    print(f"| ray (local runtime, {args.threads} CPUs) | {_fmt(tr)} | {stages} |")
    print(
        f"\nray / native {tr.median / tn.median:.2f}; largest difference of the frames: {worst:.2e}"
    )
    names = ", ".join(
        f"{type(m).__name__.lower()} {a:.2f} / {b:.2f} s"
        for m, a, b in zip(metrics, per_metric["native"], per_metric["ray"], strict=True)
    )
    print(f"last run, native / ray: {names}")
    return {
        "native_s": tn.times,
        "ray_s": tr.times,
        "ratio": tr.median / tn.median,
        "tasks": stages,
        "max_abs_diff": worst,
        "clusters": k,
        "largest": largest,
        "per_metric_last_run": per_metric,
    }


def main() -> None:
    p = bench_parser(__doc__, TASKS, n=200_000)
    p.add_argument("--big", action="store_true", help="1M rows (overrides --n)")
    p.add_argument("--threshold", type=float, default=0.9)
    p.add_argument("--block-rows", type=int, default=MAX_BLOCK_ROWS)
    p.add_argument("--no-warmup", action="store_true", help="time the first runs too")
    p.add_argument(
        "--search",
        default="exact",
        choices=("exact", "auto", "ivf", "certified"),
        help="[graph] search",
    )
    p.add_argument("--k", type=int, default=10, help="neighbours of the knn task")
    p.add_argument("--kmeans-k", type=int, default=1000, help="clusters of the kmeans task")
    p.add_argument("--giant", type=int, default=30_000, help="rows of the metrics' giant")
    p.add_argument(
        "--metrics-labels",
        default="planted",
        choices=("planted", "components"),
        help="the metrics' labels: planted (--giant), or the connected components at --threshold",
    )
    p.add_argument(
        "--shards", type=int, default=0, help="run: read the rows from this many .npy shards"
    )
    p.add_argument("--json", help="write the numbers here")
    args = p.parse_args()
    tasks = parse_tasks(p, args.only, TASKS)
    n = 1_000_000 if args.big else args.n
    with _thread_limits(args.threads):
        report_machine(args.threads, ("ray", "polars"))
        log(f"data: {n:,} x {args.d}")
        x = make_embeddings(n, args.d, seed=args.seed)
        t0 = time.perf_counter()
        # the exact plan's blocks, or the partitioned plan's chunks: the rows once
        store = min(4096 * MB, max(256 * MB, int(2.5 * x.nbytes)))
        ex = RayExecutor(num_cpus=args.threads, object_store_memory=store)
        startup = time.perf_counter() - t0
        print(
            f"\nRay local runtime: {args.threads} CPUs, store {store // MB} MB, "
            f"start-up {startup:.1f} s (not in the times below)"
        )
        results: dict[str, Any] = {"n": n, "d": args.d, "startup_s": startup}
        try:
            if "run" in tasks:
                results["run"] = bench_run(x, args)
            if "graph" in tasks:
                results["graph"] = bench_graph(x, ex, args)
            if "knn" in tasks:
                results["knn"] = bench_graph(x, ex, args, kind="knn")
                results["knn_search"] = bench_knn_search(x, ex, args)
            if "task" in tasks:
                results["task"] = bench_task(x, ex, args)
            if "kmeans" in tasks:
                results["kmeans"] = bench_kmeans(x, ex, args)
            if "forest" in tasks:
                results["forest"] = bench_forest(x, args)
            if "metrics" in tasks:
                results["metrics"] = bench_metrics(x, ex, args)
        finally:
            ex.close()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
