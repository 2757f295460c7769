"""Cluster-geometry benchmark: simclust's metric kernels vs the machine GEMM peak and scikit-learn.

Tasks (``--only``), all in one process with the same thread count for every library:

* ``intra``      exact all-pairs intra-cluster statistics (``ops.intra_stats``) on N rows with
                 ``--clusters`` clusters plus one ``--giant``-member cluster: achieved GFLOP/s
                 counting 2*D flops per pair, as a fraction of numpy's float32 GEMM rate measured
                 in the same rounds (GEMM and simclust runs alternate); checked against a numpy
                 blockwise float64 reference on the giant cluster and a sample of the others; peak
                 memory of a fresh child process (``ru_maxrss``) vs the budget input + 512 MiB.
* ``silhouette`` exact cosine silhouette (``ops.silhouette``) on ``--sil-n`` rows, ``--sil-k``
                 clusters vs ``sklearn.metrics.silhouette_samples(metric="cosine")``: time ratio,
                 max |difference|, child peak memory vs the O(N*K) budget input + N*K*8 B + 256 MiB.
* ``scores``     Davies-Bouldin and Calinski-Harabasz on the normalised silhouette dataset vs
                 scikit-learn; ``centroid_stats`` and ``inter_centroid(top_m=10)`` timings.
* ``euclidean``  the Euclidean kernels (``distance="euclidean"``, raw rows: the intra dataset's
                 rows rescaled and shifted) in the same rounds as numpy's float32 GEMM and the
                 cosine ``intra_stats``: all-pairs ``intra_stats`` (2*D flops per pair) and the
                 exact Euclidean silhouette on the silhouette dataset (2*D flops per ordered
                 pair of clustered rows) as fractions of the GEMM rate; checked against numpy
                 float64 (giant cluster + 20 others) and ``silhouette_samples(metric="euclidean")``.

Run from the repository root, e.g. ``.venv/bin/python bench/bench_metrics.py`` (full size) or
``.venv/bin/python bench/bench_metrics.py --n 30000 --giant 8000 --clusters 300 --sil-n 10000``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (first: removes OPENBLAS_* from the environment before numpy loads)
import numpy as np
from _common import (
    MIB,
    bench_parser,
    gemm_runner,
    log,
    measure_interleaved,
    parse_tasks,
    report_machine,
    run_memory_child,
    thread_limits,
)
from datasets import make_embeddings
from simclust import ops
from sklearn.metrics import (
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_samples,
)

TASKS = ("intra", "silhouette", "scores", "euclidean")


# --------------------------------------------------------------------------- memory child

_MEMORY_CHILD = r"""
import simclust.ops as ops

xpath, lpath, task, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
x = np.load(xpath)
labels = np.load(lpath)
base, base_hwm = maxrss_kib(), vm_hwm_kib()
t0 = time.perf_counter()
if task == "intra":
    out = ops.intra_stats(x, labels, n_threads=threads)
else:
    out = ops.silhouette(x, labels, n_threads=threads)
report(base, base_hwm, time.perf_counter() - t0)
"""


def child_memory(
    task: str, x: np.ndarray, labels: np.ndarray, threads: int, budget: int
) -> dict[str, Any]:
    """Peak extra RSS (after loading the data) of one simclust call in a fresh process."""
    res = run_memory_child(_MEMORY_CHILD, {"x": x, "labels": labels}, [task, str(threads)])
    return {
        "input_bytes": x.nbytes,
        "baseline_maxrss_bytes": res["base_kib"] * 1024,
        "peak_extra_bytes": res["peak_extra_bytes"],
        "peak_extra_vmhwm_bytes": res["peak_extra_vmhwm_bytes"],
        "child_seconds": res["seconds"],
        "budget_bytes": budget,
        "within_budget": res["peak_extra_bytes"] <= budget,
    }


# --------------------------------------------------------------------------- tasks


def intra_dataset(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """``--clusters`` heavy-tailed clusters (+2% noise) and one ``--giant`` cluster, shuffled."""
    n_rest = args.n - args.giant
    x1, l1 = make_embeddings(
        n_rest, args.d, n_clusters=args.clusters, seed=args.seed, return_labels=True
    )
    x2 = make_embeddings(args.giant, args.d, n_clusters=1, outlier_frac=0.0, seed=args.seed + 1)
    x = np.concatenate([x1, x2])
    labels = np.concatenate([l1, np.full(args.giant, args.clusters, dtype=np.int64)])
    perm = np.random.default_rng(args.seed + 2).permutation(args.n)
    return np.ascontiguousarray(x[perm]), labels[perm]


def blockwise_reference(
    xn: np.ndarray, block: int = 4096, *, euclidean: bool = False
) -> tuple[int, float, float, float, float]:
    """(n_pairs, mean, std, min, max) of all i<j similarities of unit rows ``xn`` (float64),
    or with ``euclidean`` of the Euclidean distances of the rows ``xn``."""
    n = len(xn)
    s1 = s2 = 0.0
    lo, hi = np.inf, -np.inf
    sq = (xn * xn).sum(axis=1)
    for i in range(0, n, block):
        a = xn[i : i + block]
        for j in range(i, n, block):
            s = a @ xn[j : j + block].T
            if euclidean:
                sqd = sq[i : i + block, None] + sq[None, j : j + block] - 2.0 * s
                s = np.sqrt(np.maximum(sqd, 0.0))
            if i == j:
                s = s[np.triu_indices(len(a), 1)]
            s1 += float(s.sum())
            s2 += float((s * s).sum())
            lo, hi = min(lo, float(s.min())), max(hi, float(s.max()))
    m = n * (n - 1) // 2
    mean = s1 / m
    return m, mean, float(np.sqrt(max(s2 / m - mean * mean, 0.0))), lo, hi


def check_intra(
    df: Any, x: np.ndarray, labels: np.ndarray, giant_id: int, seed: int, *, euclidean: bool = False
) -> float:
    """Max |difference| of simclust's stats vs numpy float64 on the giant + 20 other clusters
    (cosine similarities of the normalised rows, or Euclidean distances of the rows)."""
    pre = "dist" if euclidean else "sim"
    rows = {r["cluster"]: r for r in df.iter_rows(named=True)}
    ids = [c for c, r in rows.items() if r["n_pairs"] > 0 and c != giant_id]
    rng = np.random.default_rng(seed)
    sample = [giant_id, *rng.choice(ids, size=min(20, len(ids)), replace=False).tolist()]
    worst = 0.0
    for c in sample:
        xn = x[labels == c].astype(np.float64)
        if not euclidean:
            xn /= np.linalg.norm(xn, axis=1, keepdims=True)
        m, mean, std, lo, hi = blockwise_reference(xn, euclidean=euclidean)
        r = rows[c]
        assert r["n_pairs"] == m, (c, r["n_pairs"], m)
        for got, want in (
            (r[f"{pre}_mean"], mean),
            (r[f"{pre}_std"], std),
            (r[f"{pre}_min"], lo),
            (r[f"{pre}_max"], hi),
        ):
            worst = max(worst, abs(got - want))
    return worst


def bench_intra(
    args: argparse.Namespace, summary: list[str], table: list[str], out: dict[str, Any]
) -> None:
    t0 = time.perf_counter()
    x, labels = intra_dataset(args)
    sizes = np.bincount(labels[labels >= 0])
    sizes = sizes[sizes > 0]
    pairs = int((sizes * (sizes - 1) // 2).sum())
    flops = 2.0 * args.d * pairs
    log(
        f"[intra] data N={args.n:,} D={args.d}: {len(sizes):,} clusters (largest {sizes.max():,}, "
        f"then {np.sort(sizes)[-2]:,}), {(labels < 0).sum():,} noise rows, {pairs:,} pairs "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    gemm, gemm_flops = gemm_runner(args.d, 4096, 10, args.seed)
    res = measure_interleaved(
        [
            ("numpy GEMM", gemm),
            ("simclust intra_stats", lambda: ops.intra_stats(x, labels, n_threads=args.threads)),
        ],
        args.repeats,
    )
    g_time, _ = res["numpy GEMM"]
    s_time, df = res["simclust intra_stats"]
    peak = gemm_flops / g_time.median / 1e9
    peak_best = gemm_flops / min(g_time.times) / 1e9
    rate = flops / s_time.median / 1e9
    rate_best = flops / min(s_time.times) / 1e9
    pct = 100.0 * rate / peak
    out["gemm"] = {"gflops_median": peak, "gflops_best": peak_best, "times": g_time.times}
    out["intra"] = {
        "n": args.n,
        "d": args.d,
        "clusters": len(sizes),
        "largest": int(sizes.max()),
        "pairs": pairs,
        "times": s_time.times,
        "gflops_median": rate,
        "gflops_best": rate_best,
        "pct_of_gemm_peak": pct,
    }
    table.append(
        f"| numpy GEMM 4096x{args.d} @ {args.d}x4096 x10 (reference peak) | - | "
        f"{g_time.fmt()} | {peak:.1f} GFLOP/s (median), {peak_best:.1f} best | - |"
    )
    verdict = "OK" if pct >= 60.0 else "BELOW TARGET"
    table.append(
        f"| intra_stats all pairs, N={args.n:,} D={args.d}, {len(sizes):,} clusters "
        f"(largest {sizes.max():,}), {pairs / 1e6:.1f} M pairs | {s_time.fmt()} | - | "
        f"{rate:.1f} GFLOP/s (2*D per pair, median; {rate_best:.1f} best) = {pct:.0f}% of the "
        f"GEMM rate of the same rounds | {verdict} (target >= 60%) |"
    )
    summary.append(
        f"intra: {rate:.1f} GFLOP/s = {pct:.0f}% of numpy's float32 GEMM ({peak:.1f} GFLOP/s) "
        f"measured in alternation with it -> {verdict}"
    )
    if not args.skip_check:
        log("[intra] numpy float64 blockwise reference on the giant cluster + 20 others")
        worst = check_intra(df, x, labels, args.clusters, args.seed)
        out["intra"]["max_abs_diff_vs_numpy"] = worst
        summary.append(
            f"intra sanity: max |simclust - numpy float64| over mean/std/min/max of the giant "
            f"cluster and 20 others: {worst:.2e} ({'OK' if worst < 1e-5 else 'MISMATCH'})"
        )
    if not args.skip_memory:
        log("[intra] peak memory in a fresh child process")
        budget = x.nbytes + 512 * MIB
        mem = child_memory("intra", x, labels, args.threads, budget)
        ok = mem["within_budget"]
        out["intra"]["memory"] = mem
        table.append(
            f"| intra_stats peak memory (fresh child, {mem['child_seconds']:.1f} s) | - | - | "
            f"peak extra {mem['peak_extra_bytes'] / MIB:.0f} MiB (VmHWM "
            f"{mem['peak_extra_vmhwm_bytes'] / MIB:.0f}), input {x.nbytes / MIB:.0f} MiB | "
            f"budget input + 512 MiB = {budget / MIB:.0f} MiB: {'OK' if ok else 'OVER'} |"
        )
        summary.append(
            f"intra memory: peak extra RSS {mem['peak_extra_bytes'] / MIB:.0f} MiB over a baseline "
            f"of {mem['baseline_maxrss_bytes'] / MIB:.0f} MiB (input loaded) vs budget "
            f"{budget / MIB:.0f} MiB -> {'OK' if ok else 'OVER BUDGET'}"
        )


def sil_dataset(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """``--sil-n`` rows in ``--sil-k`` clusters; the 2% outliers (label -1) are dropped so that
    simclust (which skips noise) and scikit-learn (which would treat -1 as a cluster) see the
    same clustering."""
    x, labels = make_embeddings(
        args.sil_n, args.d, n_clusters=args.sil_k, seed=args.seed + 5, return_labels=True
    )
    keep = labels >= 0
    return np.ascontiguousarray(x[keep]), labels[keep]


def bench_silhouette(
    args: argparse.Namespace, summary: list[str], table: list[str], out: dict[str, Any]
) -> None:
    x, labels = sil_dataset(args)
    n, k = len(x), len(np.unique(labels))
    log(f"[silhouette] N={n:,} D={args.d} K={k}")
    sc = measure_interleaved(
        [("simclust silhouette", lambda: ops.silhouette(x, labels, n_threads=args.threads))],
        args.repeats,
    )
    s_time, s_res = sc["simclust silhouette"]
    entry: dict[str, Any] = {"n": n, "k": k, "simclust_times": s_time.times}
    out["silhouette"] = entry
    task = f"silhouette (cosine) N={n:,} D={args.d} K={k}"
    if args.skip_sklearn:
        table.append(f"| {task} | {s_time.fmt()} | - | - | sklearn skipped |")
    else:
        log(
            f"[silhouette] sklearn silhouette_samples(metric='cosine'), "
            f"{args.sklearn_repeats} run(s)"
        )
        sk = measure_interleaved(
            [
                (
                    "sklearn silhouette_samples",
                    lambda: silhouette_samples(x, labels, metric="cosine"),
                )
            ],
            args.sklearn_repeats,
            warmup=False,
        )
        k_time, want = sk["sklearn silhouette_samples"]
        got = s_res.rows["silhouette"].to_numpy()
        diff = float(np.max(np.abs(got - want)))
        speedup = k_time.median / s_time.median
        verdict = "OK" if speedup >= 5 else "BELOW TARGET"
        entry.update(sklearn_times=k_time.times, speedup=speedup, max_abs_diff=diff)
        table.append(
            f"| {task} | {s_time.fmt()} | {k_time.fmt()} | simclust {speedup:,.0f}x faster; "
            f"max abs diff {diff:.1e}; mean {s_res.mean:.5f} vs {float(np.mean(want)):.5f} | "
            f"{verdict} (target >= 5x) |"
        )
        summary.append(
            f"silhouette: sklearn / simclust = {speedup:,.0f}x (target >= 5x) -> {verdict}; "
            f"max |diff| {diff:.1e}"
        )
    if not args.skip_memory:
        log("[silhouette] peak memory in a fresh child process")
        budget = x.nbytes + 8 * n * k + 256 * MIB
        mem = child_memory("silhouette", x, labels, args.threads, budget)
        ok = mem["within_budget"]
        entry["memory"] = mem
        table.append(
            f"| silhouette peak memory (fresh child) | - | - | peak extra "
            f"{mem['peak_extra_bytes'] / MIB:.0f} MiB, input {x.nbytes / MIB:.0f} MiB | budget "
            f"input + N*K*8 B + 256 MiB = {budget / MIB:.0f} MiB: {'OK' if ok else 'OVER'} |"
        )


def bench_scores(
    args: argparse.Namespace, summary: list[str], table: list[str], out: dict[str, Any]
) -> None:
    x, labels = sil_dataset(args)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    n, k = len(x), len(np.unique(labels))
    log(
        f"[scores] N={n:,} K={k}: Davies-Bouldin, Calinski-Harabasz, centroid_stats, inter_centroid"
    )
    entry: dict[str, Any] = {}
    out["scores"] = entry
    for name, ours, theirs in (
        ("davies_bouldin", ops.davies_bouldin, davies_bouldin_score),
        ("calinski_harabasz", ops.calinski_harabasz, calinski_harabasz_score),
    ):
        res = measure_interleaved(
            [
                ("simclust", lambda f=ours: f(x, labels, n_threads=args.threads)),
                ("sklearn", lambda f=theirs: f(xn, labels)),
            ],
            args.repeats,
        )
        (s_time, s_val), (k_time, k_val) = res["simclust"], res["sklearn"]
        rel = abs(s_val - k_val) / abs(k_val)
        entry[name] = {
            "simclust": s_val,
            "sklearn": k_val,
            "rel_diff": rel,
            "simclust_times": s_time.times,
            "sklearn_times": k_time.times,
        }
        table.append(
            f"| {name} N={n:,} K={k} (normalised rows) | {s_time.fmt()} | {k_time.fmt()} | "
            f"{s_val:.6f} vs {k_val:.6f} (rel. diff {rel:.1e}); ratio simclust/sklearn "
            f"{s_time.median / k_time.median:.2f} | {'OK' if rel < 1e-5 else 'MISMATCH'} |"
        )
    res = measure_interleaved(
        [
            ("centroid_stats", lambda: ops.centroid_stats(x, labels, n_threads=args.threads)),
            (
                "inter_centroid top_m=10",
                lambda: ops.inter_centroid(x, labels, top_m=10, n_threads=args.threads),
            ),
        ],
        args.repeats,
    )
    for label, (t, _) in res.items():
        entry[label] = t.times
        table.append(f"| {label} N={n:,} K={k} | {t.fmt()} | - | - | - |")


def raw_rows(x: np.ndarray, seed: int) -> np.ndarray:
    """``x`` with each row rescaled (x0.5..x2) and every coordinate shifted by 0.05: rows that
    normalising would change, for the Euclidean kernels."""
    scale = np.random.default_rng(seed).uniform(0.5, 2.0, (len(x), 1)).astype(np.float32)
    return np.ascontiguousarray(x * scale + np.float32(0.05))


def bench_euclidean(
    args: argparse.Namespace, summary: list[str], table: list[str], out: dict[str, Any]
) -> None:
    x, labels = intra_dataset(args)
    xr = raw_rows(x, args.seed + 7)
    sizes = np.bincount(labels[labels >= 0])
    sizes = sizes[sizes > 0]
    pairs = int((sizes * (sizes - 1) // 2).sum())
    xs, ls = sil_dataset(args)
    xs = raw_rows(xs, args.seed + 8)
    m = len(xs)
    log(
        f"[euclidean] intra N={args.n:,} D={args.d} ({pairs:,} pairs); silhouette N={m:,} "
        f"K={len(np.unique(ls))} ({m * m:,} ordered pairs)"
    )
    gemm, gemm_flops = gemm_runner(args.d, 4096, 10, args.seed)
    t = args.threads
    res = measure_interleaved(
        [
            ("numpy GEMM", gemm),
            ("intra cosine", lambda: ops.intra_stats(xr, labels, n_threads=t)),
            (
                "intra euclidean",
                lambda: ops.intra_stats(xr, labels, distance="euclidean", n_threads=t),
            ),
            (
                "silhouette euclidean",
                lambda: ops.silhouette(xs, ls, distance="euclidean", n_threads=t),
            ),
        ],
        args.repeats,
    )
    peak = gemm_flops / res["numpy GEMM"][0].median / 1e9
    entry: dict[str, Any] = {"gemm_gflops_median": peak}
    out["euclidean"] = entry
    table.append(
        f"| numpy GEMM 4096x{args.d} @ {args.d}x4096 x10 (reference peak, same rounds) | - | "
        f"{res['numpy GEMM'][0].fmt()} | {peak:.1f} GFLOP/s (median) | - |"
    )
    for label, flops in (
        ("intra cosine", 2.0 * args.d * pairs),
        ("intra euclidean", 2.0 * args.d * pairs),
        ("silhouette euclidean", 2.0 * args.d * m * m),
    ):
        timing = res[label][0]
        rate = flops / timing.median / 1e9
        pct = 100.0 * rate / peak
        verdict = "OK" if pct >= 60.0 else "BELOW TARGET"
        entry[label] = {"times": timing.times, "gflops_median": rate, "pct_of_gemm": pct}
        table.append(
            f"| {label} | {timing.fmt()} | - | {rate:.1f} GFLOP/s (2*D per pair, median) = "
            f"{pct:.0f}% of the GEMM rate | {verdict} (target >= 60%) |"
        )
        summary.append(f"{label}: {rate:.1f} GFLOP/s = {pct:.0f}% of GEMM -> {verdict}")
    if not args.skip_check:
        log("[euclidean] numpy float64 blockwise reference on the giant cluster + 20 others")
        df = res["intra euclidean"][1]
        worst = check_intra(df, xr, labels, args.clusters, args.seed, euclidean=True)
        entry["intra_max_abs_diff_vs_numpy"] = worst
        summary.append(f"euclidean intra sanity: max |simclust - numpy float64| {worst:.2e}")
    if not args.skip_sklearn:
        log("[euclidean] sklearn silhouette_samples(metric='euclidean')")
        sk = measure_interleaved(
            [("sklearn", lambda: silhouette_samples(xs, ls, metric="euclidean"))],
            args.sklearn_repeats,
            warmup=False,
        )
        k_time, want = sk["sklearn"]
        got = res["silhouette euclidean"][1].rows["silhouette"].to_numpy()
        diff = float(np.max(np.abs(got - want)))
        speedup = k_time.median / res["silhouette euclidean"][0].median
        entry.update(sklearn_times=k_time.times, speedup=speedup, max_abs_diff=diff)
        table.append(
            f"| silhouette euclidean vs sklearn | {res['silhouette euclidean'][0].fmt()} | "
            f"{k_time.fmt()} | {speedup:.1f}x faster; max abs diff {diff:.1e} | - |"
        )
        summary.append(f"euclidean silhouette vs sklearn: {speedup:.1f}x, max |diff| {diff:.1e}")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = bench_parser(__doc__, TASKS, n_help="rows of the intra dataset")
    p.add_argument("--clusters", type=int, default=1000, help="clusters besides the giant one")
    p.add_argument("--giant", type=int, default=20_000, help="members of the giant cluster")
    p.add_argument("--sil-n", type=int, default=50_000, help="rows of the silhouette dataset")
    p.add_argument("--sil-k", type=int, default=100, help="clusters of the silhouette dataset")
    p.add_argument("--sklearn-repeats", type=int, default=1, help="sklearn silhouette runs")
    p.add_argument("--skip-sklearn", action="store_true", help="do not run sklearn silhouette")
    p.add_argument("--skip-memory", action="store_true", help="skip the child memory runs")
    p.add_argument("--skip-check", action="store_true", help="skip the numpy intra reference")
    p.add_argument("--json", type=Path, default=None, help="write all numbers to this file")
    args = p.parse_args(argv)
    args.tasks = parse_tasks(p, args.only, TASKS)
    if not 0 < args.giant < args.n:
        p.error("--giant must be in (0, --n)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with thread_limits(args.threads):
        info, _pools = report_machine(
            args.threads,
            ("numpy", "sklearn", "threadpoolctl"),
            simd=("avx2", "fma", "avx512f"),
            loadavg=True,
            pool_details=False,
        )
        table = [
            "| task | simclust s (median, min-max) | peer s | result | target |",
            "| --- | --- | --- | --- | --- |",
        ]
        summary: list[str] = []
        out: dict[str, Any] = {"machine": info, "args": {k: str(v) for k, v in vars(args).items()}}
        if "intra" in args.tasks:
            bench_intra(args, summary, table, out)
        if "silhouette" in args.tasks:
            bench_silhouette(args, summary, table, out)
        if "scores" in args.tasks:
            bench_scores(args, summary, table, out)
        if "euclidean" in args.tasks:
            bench_euclidean(args, summary, table, out)
        out["loadavg_end"] = os.getloadavg()
    print(f"## Results (threads={args.threads}, repeats={args.repeats} after 1 warm-up)")
    print("\n".join(table))
    print()
    for line in summary:
        print(f"- {line}")
    print(
        f"- load average at end: {', '.join(f'{v:.2f}' for v in out['loadavg_end'])} "
        "(shared machine)"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
