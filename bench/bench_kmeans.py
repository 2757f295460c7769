"""K-means benchmark: simclust vs faiss.Kmeans and scikit-learn, in one process, same threads.

Tasks (``--only``):

* ``assign`` one full assignment step (every row against every centroid):
             simclust ``ops.kmeans_assign`` vs faiss ``IndexFlatIP.search(k=1)``, in GFLOP/s
             (2·N·K·D per pass), next to a numpy GEMM of the same shape (the machine peak);
* ``lloyd``  20 spherical Lloyd iterations from the same initial centroids (K distinct rows):
             ``ops.kmeans(X, K, init=C0, max_iter=20, tol=0)`` vs ``faiss.Kmeans(spherical=True,
             niter=20).train(X, init_centroids=C0)`` vs scikit-learn
             ``KMeans(init=C0, n_init=1, algorithm="lloyd", tol=0, max_iter=20)``;
* ``fit``    the whole fit with default settings, k-means++ included: ``ops.kmeans(X, K)`` (cosine)
             and ``ops.kmeans(X, K, metric="euclidean")`` vs scikit-learn's default
             ``KMeans(n_clusters=K, n_init=1)`` (one run, no warm-up: it takes minutes).

Objectives are recomputed here the same way for everyone: the spherical objective
``Σ (1 - cos(x, c))`` of the rows assigned to their closest normalised centroid, and for the
Euclidean fits the inertia ``Σ |x - c|²``.

Run from the repository root, e.g. ``.venv/bin/python bench/bench_kmeans.py --n 20000 --k 200``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import _common  # noqa: F401  (first: removes OPENBLAS_* from the environment before numpy loads)
import faiss
import numpy as np
from _common import (
    Timing,
    bench_parser,
    gflops,
    log,
    measure,
    measure_interleaved,
    parse_tasks,
    report_machine,
    thread_limits,
)
from datasets import make_embeddings
from simclust import ops
from sklearn.cluster import KMeans as SkKMeans

TASKS = ("assign", "lloyd", "fit")


# --------------------------------------------------------------------------- objectives


def unit_rows(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, dtype=np.float32)
    return c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-30)


def spherical_objective(x: np.ndarray, centroids: np.ndarray) -> float:
    """Σ (1 - max_c cos(x, c)) over unit rows x: each row at its closest normalised centroid."""
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(unit_rows(centroids))
    sims, _ = index.search(x, 1)
    return float(np.sum(1.0 - sims[:, 0].astype(np.float64)))


def spherical_objective_of_labels(x: np.ndarray, labels: np.ndarray) -> float:
    """Σ (1 - cos(x, normalised sum of its cluster)): the cosine objective of a partition."""
    sums = np.zeros((int(labels.max()) + 1, x.shape[1]), dtype=np.float64)
    np.add.at(sums, labels, x)
    c = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-300)
    return float(np.sum(1.0 - np.einsum("ij,ij->i", x, c[labels])))


def inertia(x: np.ndarray, centroids: np.ndarray) -> float:
    """Σ |x - c|² with each row at its closest centroid (faiss L2 search)."""
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    d2, _ = index.search(x, 1)
    return float(np.sum(d2[:, 0].astype(np.float64)))


# --------------------------------------------------------------------------- table


def fmt(t: Timing | None) -> str:
    return "n/a" if t is None else t.fmt(2)


HEADER = (
    "| task | method | seconds (median, min-max) | ratio simclust/this | objective | notes |\n"
    "| --- | --- | --- | --- | --- | --- |"
)


def row(task: str, method: str, t: Timing | None, sc: Timing | None, obj: str, notes: str) -> str:
    ratio = "—" if t is None or sc is None or t is sc else f"{sc.median / t.median:.2f}"
    return f"| {task} | {method} | {fmt(t)} | {ratio} | {obj} | {notes} |"


# --------------------------------------------------------------------------- tasks


def bench_gemm_peak(args: argparse.Namespace, x: np.ndarray, c0: np.ndarray) -> float:
    """numpy GEMM of the assignment's shape (N x D @ D x K): the reference peak."""
    n, d = x.shape
    k = c0.shape[0]
    out = np.empty((n, k), dtype=np.float32)
    ct = np.ascontiguousarray(c0.T)
    timing, _ = measure("numpy GEMM", lambda: np.matmul(x, ct, out=out), args.repeats)
    return gflops(2.0 * n * k * d, timing.median)


def bench_assign(args: argparse.Namespace, x: np.ndarray, c0: np.ndarray) -> list[str]:
    n, d = x.shape
    k = c0.shape[0]
    threads = args.threads
    flops = 2.0 * n * k * d
    peak = bench_gemm_peak(args, x, c0)

    def run_faiss() -> np.ndarray:
        index = faiss.IndexFlatIP(d)
        index.add(c0)
        return index.search(x, 1)[1]

    cases: list[tuple[str, Callable[[], Any]]] = [
        ("simclust", lambda: ops.kmeans_assign(x, c0, n_threads=threads)[0]),
        ("faiss", run_faiss),
    ]
    log(f"[assign] one full assignment pass, N={n:,} K={k:,} D={d}")
    res = measure_interleaved(cases, args.repeats)
    sc_t, sc_labels = res["simclust"]
    fa_t, fa_labels = res["faiss"]
    agree = float(np.mean(sc_labels == fa_labels[:, 0]))
    task = f"assignment pass (N={n:,}, K={k:,}, D={d})"
    lines = [
        row(
            task,
            "simclust ops.kmeans_assign",
            sc_t,
            sc_t,
            "—",
            f"{gflops(flops, sc_t.median):.0f} GFLOP/s = "
            f"{100 * gflops(flops, sc_t.median) / peak:.0f}% of numpy GEMM {peak:.0f} GFLOP/s",
        ),
        row(
            task,
            "faiss IndexFlatIP.search(k=1)",
            fa_t,
            sc_t,
            "—",
            f"{gflops(flops, fa_t.median):.0f} GFLOP/s; same labels as simclust for "
            f"{100 * agree:.3f}% of rows",
        ),
    ]
    return lines


def bench_lloyd(args: argparse.Namespace, x: np.ndarray, c0: np.ndarray) -> list[str]:
    n, d = x.shape
    k = c0.shape[0]
    threads, iters = args.threads, args.iters
    flops = 2.0 * n * k * d * iters

    def run_simclust() -> tuple[np.ndarray, int]:
        _, c, _, n_iter = ops.kmeans(x, k, init=c0, max_iter=iters, tol=0.0, n_threads=threads)
        return c, n_iter

    def run_faiss() -> tuple[np.ndarray, float]:
        km = faiss.Kmeans(
            d,
            k,
            niter=iters,
            spherical=True,
            seed=args.seed,
            max_points_per_centroid=max(256, n // k + 1),
            verbose=False,
        )
        km.train(x, init_centroids=c0)
        # faiss' iteration stats hold running totals, in seconds.
        search_s = km.iteration_stats[-1]["time_search"] if km.iteration_stats else 0.0
        return km.centroids, search_s

    def run_sklearn() -> np.ndarray:
        sk = SkKMeans(k, init=c0, n_init=1, algorithm="lloyd", tol=0.0, max_iter=iters).fit(x)
        return sk.cluster_centers_

    cases: list[tuple[str, Callable[[], Any]]] = [
        ("simclust", run_simclust),
        ("faiss", run_faiss),
    ]
    if not args.skip_sklearn_lloyd:
        cases.append(("sklearn", run_sklearn))
    log(f"[lloyd] {iters} spherical Lloyd iterations from the same {k:,} initial rows")
    res = measure_interleaved(cases, args.repeats)
    sc_t, (sc_c, sc_iter) = res["simclust"]
    fa_t, (fa_c, fa_search) = res["faiss"]
    sc_obj = spherical_objective(x, sc_c)
    fa_obj = spherical_objective(x, fa_c)
    task = f"{iters} Lloyd iterations, spherical (N={n:,}, K={k:,}, D={d})"
    lines = [
        row(
            task,
            "simclust ops.kmeans(init=C0, tol=0)",
            sc_t,
            sc_t,
            f"{sc_obj:.2f}",
            f"{sc_iter} iterations; {gflops(flops, sc_t.median):.0f} GFLOP/s dense-equivalent "
            "(bounds skip most distances after the first iterations)",
        ),
        row(
            task,
            "faiss.Kmeans(spherical=True).train(init_centroids=C0)",
            fa_t,
            sc_t,
            f"{fa_obj:.2f}",
            f"{gflops(flops, fa_t.median):.0f} GFLOP/s overall; its assignment steps took "
            f"{fa_search:.2f} s of the last run = {gflops(flops, fa_search):.0f} GFLOP/s",
        ),
    ]
    if "sklearn" in res:
        sk_t, sk_c = res["sklearn"]
        sk_obj = spherical_objective(x, sk_c)
        lines.append(
            row(
                task,
                'sklearn KMeans(init=C0, algorithm="lloyd", tol=0)',
                sk_t,
                sc_t,
                f"{sk_obj:.2f}",
                f"{gflops(flops, sk_t.median):.0f} GFLOP/s overall; Euclidean Lloyd on unit rows "
                "(no spherical variant), objective on normalised centroids",
            )
        )
    return lines


def bench_fit(args: argparse.Namespace, x: np.ndarray) -> list[str]:
    n, d = x.shape
    k, threads = args.k, args.threads

    def run_cos() -> tuple[np.ndarray, np.ndarray, int]:
        labels, c, _, n_iter = ops.kmeans(x, k, n_threads=threads, random_state=args.seed)
        return labels, c, n_iter

    def run_euc() -> tuple[np.ndarray, np.ndarray, int]:
        labels, c, _, n_iter = ops.kmeans(
            x, k, metric="euclidean", n_threads=threads, random_state=args.seed
        )
        return labels, c, n_iter

    log(f"[fit] whole fit with default settings, K={k:,}")
    res = measure_interleaved([("cosine", run_cos), ("euclidean", run_euc)], args.repeats)
    cos_t, (_, cos_c, cos_iter) = res["cosine"]
    euc_t, (_, euc_c, euc_iter) = res["euclidean"]
    cos_obj = spherical_objective(x, cos_c)
    euc_obj = inertia(x, euc_c)
    task = f"whole fit, defaults (N={n:,}, K={k:,}, D={d})"
    lines = [
        row(
            task,
            "simclust ops.kmeans(X, K) (cosine)",
            cos_t,
            cos_t,
            f"cos {cos_obj:.2f}",
            f"{cos_iter} iterations",
        ),
        row(
            task,
            'simclust ops.kmeans(X, K, metric="euclidean")',
            euc_t,
            euc_t,
            f"inertia {euc_obj:.2f}",
            f"{euc_iter} iterations",
        ),
    ]
    if args.skip_sklearn_fit:
        return lines
    log(f"[fit] sklearn KMeans(n_clusters={k}, n_init=1): {args.sklearn_repeats} run(s)")

    def run_sklearn() -> SkKMeans:
        return SkKMeans(k, n_init=1, random_state=args.seed).fit(x)

    sk_t, sk = measure("sklearn", run_sklearn, args.sklearn_repeats, warmup=False)
    sk_cos = spherical_objective_of_labels(x, sk.labels_)
    lines.append(
        row(
            task,
            "sklearn KMeans(n_clusters=K, n_init=1)",
            sk_t,
            euc_t,
            f"inertia {sk.inertia_:.2f}; cos {sk_cos:.2f}",
            f"{sk.n_iter_} iterations; ratio vs simclust euclidean (cosine: "
            f"{cos_t.median / sk_t.median:.3f}); simclust/sklearn objective: inertia "
            f"{euc_obj / sk.inertia_:.4f}, cos {cos_obj / sk_cos:.4f}",
        )
    )
    return lines


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = bench_parser(__doc__, TASKS, n_help="rows", seed_help="dataset and initialisation seed")
    p.add_argument("--k", type=int, default=1000, help="clusters")
    p.add_argument("--iters", type=int, default=20, help="Lloyd iterations of the lloyd task")
    p.add_argument("--skip-sklearn-lloyd", action="store_true", help="no sklearn in lloyd")
    p.add_argument("--skip-sklearn-fit", action="store_true", help="no sklearn in fit")
    p.add_argument("--sklearn-repeats", type=int, default=1, help="sklearn default-fit runs")
    args = p.parse_args(argv)
    args.tasks = parse_tasks(p, args.only, TASKS)
    if min(args.repeats, args.threads, args.sklearn_repeats, args.iters) < 1:
        p.error("--repeats, --threads, --sklearn-repeats and --iters must be >= 1")
    if not 1 <= args.k <= args.n:
        p.error("--k must be in 1..n")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with thread_limits(args.threads):
        report_machine(args.threads, ("faiss", "numpy", "scipy", "sklearn", "threadpoolctl"))
        t0 = time.perf_counter()
        x = make_embeddings(args.n, args.d, seed=args.seed)
        log(
            f"[data] make_embeddings({args.n}, {args.d}, seed={args.seed}) "
            f"{time.perf_counter() - t0:.1f} s"
        )
        rng = np.random.default_rng(args.seed)
        c0 = np.ascontiguousarray(x[rng.choice(args.n, args.k, replace=False)])
        lines: list[str] = []
        if "assign" in args.tasks:
            lines += bench_assign(args, x, c0)
        if "lloyd" in args.tasks:
            lines += bench_lloyd(args, x, c0)
        if "fit" in args.tasks:
            lines += bench_fit(args, x)
    print(
        f"## k-means (make_embeddings N={args.n:,}, D={args.d}, K={args.k:,}; "
        f"threads={args.threads}; {args.repeats} timed runs after 1 warm-up, interleaved; "
        f"sklearn default fit: {args.sklearn_repeats} run(s), no warm-up)"
    )
    print(HEADER)
    for line in lines:
        print(line)
    print(
        "\nratio = simclust median / this method's median (fit rows: vs the simclust run with "
        "the same metric; < 1 means simclust is faster)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
