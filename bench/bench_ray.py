"""Ray backend benchmark: ``analyze(backend="ray")`` on a local runtime vs the native backend.

Tasks (``--only``), all in one process, the same data and thread count:

* ``run``   ``simclust.analyze(X, threshold=0.9, search="exact")`` natively and with
            ``backend="ray"`` on a local runtime of ``--threads`` CPUs (started once, before
            the timed runs; its start-up is reported on its own), round-robin, one warm-up
            each unless ``--no-warmup``. Per stage (``Result.timings``): the graph and the
            outlier scores' kNN search run as Ray tasks, the rest on the driver in both.
            The ratio is ray / native (the plan's overhead: object store, tasks, merges).
* ``task``  the per-task rates a cluster plan is computed from: one block-pair task of the
            ε-graph (``ops.threshold_edges_between``, two blocks of ``--block-rows`` rows, one
            thread) and of the kNN graph (``ops.knn`` over the two blocks together), in pairs
            per second per core; then the same task as Ray tasks (one per CPU at a time).

Run from the repository root: ``.venv/bin/python bench/bench_ray.py`` (200k x 384, ~15 min on 2
cores) or ``--big`` (1M x 384, the issue's target size; hours of brute force on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import _common  # noqa: F401  (first: removes OPENBLAS_* from the environment before numpy loads)
import numpy as np
import simclust
from _common import Timing, bench_parser, log, measure_interleaved, parse_tasks, report_machine
from _common import thread_limits as _thread_limits
from datasets import make_embeddings
from simclust.distributed import MAX_BLOCK_ROWS, RayExecutor, Task
from simclust.distributed._graph import _knn_pair, _threshold_pair

TASKS = ("run", "task")
MB = 1024 * 1024


def _fmt(t: Timing) -> str:
    return f"{t.median:.2f} s ({t.min:.2f}-{t.max:.2f})"


def bench_run(x: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    common = {"threshold": args.threshold, "search": "exact", "n_threads": args.threads}
    cases = [
        ("native", lambda: simclust.analyze(x, **common)),
        ("ray", lambda: simclust.analyze(x, backend="ray", **common)),
    ]
    out = measure_interleaved(cases, args.repeats, warmup=not args.no_warmup)
    native, ray_ = out["native"][0], out["ray"][0]
    res_n, res_r = out["native"][1], out["ray"][1]
    same = res_n.assignments["cluster"].to_list() == res_r.assignments["cluster"].to_list()
    same_edges = res_n.edges.equals(res_r.edges)
    print(f"\n## analyze, {x.shape[0]:,} x {x.shape[1]}, t = {args.threshold}, search exact\n")
    print("| stage | native | ray (local runtime) | ray / native |")
    print("| --- | --- | --- | --- |")
    print(f"| whole run | {_fmt(native)} | {_fmt(ray_)} | {ray_.median / native.median:.2f} |")
    for stage in res_n.timings:
        a, b = res_n.timings[stage], res_r.timings.get(stage, float("nan"))
        ratio = b / a if a > 0.05 else float("nan")
        print(f"| {stage} (last run) | {a:.2f} s | {b:.2f} s | {ratio:.2f} |")
    g = res_r.graph_search
    print(
        f"\nray graph: {g['tasks']} tasks over {g['blocks']} blocks of {g['block_rows']} rows; "
        f"outlier kNN: {res_r.outlier_search['tasks']} tasks; edges {res_n.edges.height:,}; "
        f"labels identical: {same}; edges identical: {same_edges}"
    )
    return {
        "native_s": native.times,
        "ray_s": ray_.times,
        "ratio": ray_.median / native.median,
        "stages_native": res_n.timings,
        "stages_ray": res_r.timings,
        "identical": bool(same and same_edges),
    }


def bench_task(x: np.ndarray, ex: RayExecutor, args: argparse.Namespace) -> dict[str, Any]:
    b = args.block_rows
    if x.shape[0] < 2 * b:
        log(f"task: needs {2 * b} rows, have {x.shape[0]}; skipped")
        return {}
    a_blk = np.ascontiguousarray(x[:b])
    b_blk = np.ascontiguousarray(x[b : 2 * b])
    pairs_eps = b * b
    pairs_knn = (2 * b) * (2 * b - 1) // 2
    rows: list[tuple[str, float, float]] = []
    one = {}
    for name, fn, pairs in (
        (
            "ε-graph block pair",
            lambda: _threshold_pair(a_blk, b_blk, 0, b, args.threshold, 1),
            pairs_eps,
        ),
        ("kNN block pair (k=10)", lambda: _knn_pair(a_blk, b_blk, 0, b, 10, 1), pairs_knn),
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


def main() -> None:
    p = bench_parser(__doc__, TASKS, n=200_000)
    p.add_argument("--big", action="store_true", help="1M rows (overrides --n)")
    p.add_argument("--threshold", type=float, default=0.9)
    p.add_argument("--block-rows", type=int, default=MAX_BLOCK_ROWS)
    p.add_argument("--no-warmup", action="store_true", help="time the first runs too")
    p.add_argument("--json", help="write the numbers here")
    args = p.parse_args()
    tasks = parse_tasks(p, args.only, TASKS)
    n = 1_000_000 if args.big else args.n
    with _thread_limits(args.threads):
        report_machine(args.threads, ("ray", "polars"))
        log(f"data: {n:,} x {args.d}")
        x = make_embeddings(n, args.d, seed=args.seed)
        t0 = time.perf_counter()
        store = min(1024 * MB, max(256 * MB, 3 * x.nbytes))
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
            if "task" in tasks:
                results["task"] = bench_task(x, ex, args)
        finally:
            ex.close()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
