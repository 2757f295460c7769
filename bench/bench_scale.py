"""Scale benchmark: simclust's partitioned (IVF) graph builder vs pynndescent, hnswlib, faiss.

Tasks (``--only``):

* ``knn``    approximate kNN graph: ``ops.Partition`` (spherical k-means lists) +
             ``Partition.knn_edges`` at several ``nprobe`` vs pynndescent ``NNDescent``,
             hnswlib HNSW (build, then a query of every row at several ``ef``) and faiss
             ``IndexIVFFlat`` (inner product, as many lists as simclust, the same training-sample
             size, an ``nprobe`` sweep); recall@k of every method against the exact neighbours of
             sampled rows (numpy); exact brute force ``ops.knn`` too when N <= --exact-max;
* ``eps``    ε-graph at t: ``Partition.threshold_edges`` approximate (``nprobe`` sweep) and
             certified vs exact brute force ``ops.threshold_edges`` (only when N <= --exact-max);
             pair recall and the fraction of pairs computed;
* ``memory`` peak RSS of each simclust step (partition build, knn_edges, approximate and
             certified threshold_edges), each in a fresh child process, against the input size.
* ``analyze`` the whole ``simclust analyze X.npy`` with default settings (auto graph search,
             connected components, intra, centroid, inter, report) in a fresh child process:
             the time of every stage, the wall time, the peak RSS against the input size, and
             the recall each approximate search measured.

Every timed run of a method is its build plus each of its search settings in turn (a pause
before each), and the methods run round-robin; a setting's time is build + its search, per run.
Missing peers are skipped with a note.

Run from the repository root, e.g. ``.venv/bin/python bench/bench_scale.py --n 100000``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import math
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import _common  # noqa: F401  (first: removes OPENBLAS_* from the environment before numpy loads)
import numpy as np
import threadpoolctl
from _common import (
    MIB,
    Timing,
    bench_parser,
    import_simclust_ops,
    library_versions,
    log,
    machine_info,
    parse_tasks,
    print_machine_info,
    run_memory_child,
    settle,
    thread_limits,
)
from datasets import make_embeddings

TASKS = ("knn", "eps", "memory", "analyze")

SC_OPS, SC_IMPORT_ERROR = import_simclust_ops()


def _optional(module: str) -> tuple[ModuleType | None, str | None]:
    """``(module, None)``, or ``(None, reason)`` when it does not import."""
    try:
        return importlib.import_module(module), None
    except ImportError as exc:
        return None, f"{type(exc).__name__}: {exc}"


# faiss first: thread_limits() sets its OpenMP threads only when it is already imported.
FAISS, FAISS_ERROR = _optional("faiss")
HNSWLIB, HNSWLIB_ERROR = _optional("hnswlib")
PYNNDESCENT, PYNNDESCENT_ERROR = _optional("pynndescent")
PEERS = {
    "faiss": (FAISS, FAISS_ERROR, "faiss-cpu"),
    "hnswlib": (HNSWLIB, HNSWLIB_ERROR, "hnswlib"),
    "pynndescent": (PYNNDESCENT, PYNNDESCENT_ERROR, "pynndescent"),
}
PEER_INSTALL = ".venv/bin/python -m pip install pynndescent hnswlib faiss-cpu"


def default_n_lists(n: int) -> int:
    """simclust's default list count, ``2 sqrt(N)`` (``ops.default_n_lists``)."""
    if SC_OPS is not None and hasattr(SC_OPS, "default_n_lists"):
        return int(SC_OPS.default_n_lists(n))
    return max(1, min(n, round(2 * math.sqrt(n))))


# --------------------------------------------------------------------------- ground truth


def unit64(rows: np.ndarray) -> np.ndarray:
    r = np.asarray(rows, dtype=np.float64)
    return r / np.linalg.norm(r, axis=1, keepdims=True)


@dataclass
class GroundTruth:
    """Exact k-th neighbour similarity (self excluded) of the sampled rows."""

    rows: np.ndarray  # int64 [m], sorted
    pos: np.ndarray  # int64 [n]: position of a row in ``rows``, -1 if not sampled
    xs64: np.ndarray  # float64 [m, d], unit rows
    kth: np.ndarray  # float64 [m]
    k: int
    seconds: float

    def subset(self, keep: np.ndarray) -> GroundTruth:
        """The same truth restricted to the sampled rows where ``keep`` (bool [m]) is set."""
        rows = self.rows[keep]
        pos = np.full(self.pos.size, -1, dtype=np.int64)
        pos[rows] = np.arange(rows.size)
        return GroundTruth(rows, pos, self.xs64[keep], self.kth[keep], self.k, 0.0)


def exact_ground_truth(
    x: np.ndarray, m: int, k: int, seed: int, *, block: int = 16_384, extra: int = 16
) -> GroundTruth:
    """Exact neighbours of ``m`` seeded rows: blocked float32 matmul on unit rows, keep the
    ``k + extra`` best per row, then re-rank those in float64 (ties and rounding safe)."""
    t0 = time.perf_counter()
    n = x.shape[0]
    m = min(m, n)
    rows = np.sort(np.random.default_rng(seed + 1).choice(n, size=m, replace=False))
    pos = np.full(n, -1, dtype=np.int64)
    pos[rows] = np.arange(m)
    xs = x[rows].astype(np.float32)
    xs /= np.linalg.norm(xs, axis=1, keepdims=True)
    keep = min(k + extra, n - 1)
    best_sim = np.full((m, keep), -np.inf, dtype=np.float32)
    best_idx = np.full((m, keep), -1, dtype=np.int64)
    ar = np.arange(m)
    for start in range(0, n, block):
        stop = min(start + block, n)
        xb = x[start:stop].astype(np.float32)
        xb /= np.linalg.norm(xb, axis=1, keepdims=True)
        s = xs @ xb.T
        inside = (rows >= start) & (rows < stop)
        s[ar[inside], rows[inside] - start] = -np.inf  # self excluded
        if s.shape[1] > keep:  # the block's own best first, then merge with the running best
            blk = np.argpartition(-s, keep - 1, axis=1)[:, :keep]
            s = np.take_along_axis(s, blk, axis=1)
        else:
            blk = np.broadcast_to(np.arange(stop - start), s.shape)
        cand_sim = np.concatenate([best_sim, s], axis=1)
        cand_idx = np.concatenate([best_idx, blk + start], axis=1)
        top = np.argpartition(-cand_sim, keep - 1, axis=1)[:, :keep]
        best_sim = np.take_along_axis(cand_sim, top, axis=1)
        best_idx = np.take_along_axis(cand_idx, top, axis=1)
    xs64 = unit64(x[rows])
    sims64 = np.empty((m, keep), dtype=np.float64)
    for a in range(0, m, 256):
        b = min(a + 256, m)
        cand = unit64(x[best_idx[a:b].reshape(-1)]).reshape(b - a, keep, -1)
        sims64[a:b] = np.einsum("ijd,id->ij", cand, xs64[a:b])
    kth = -np.sort(-sims64, axis=1)[:, k - 1]
    return GroundTruth(rows, pos, xs64, kth, k, time.perf_counter() - t0)


def list_edges(ind: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row neighbour lists (N x k, -1 = none) as directed edges (row, neighbour)."""
    n, k = ind.shape
    src = np.repeat(np.arange(n, dtype=np.int64), k)
    dst = np.asarray(ind, dtype=np.int64).reshape(-1)
    ok = (dst >= 0) & (dst != src)
    return src[ok], dst[ok]


def sample_recall(
    x: np.ndarray, gt: GroundTruth, src: np.ndarray, dst: np.ndarray, *, directed: bool
) -> float:
    """Recall@k of the sampled rows: a row's k best neighbours in the edges (its own list when
    ``directed``, else every edge touching it), each found if its exact similarity is >= the
    exact k-th (ties count)."""
    n = x.shape[0]
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    a = gt.pos[src]
    row_pos, cand = [a[a >= 0]], [dst[a >= 0]]
    if not directed:
        b = gt.pos[dst]
        row_pos.append(b[b >= 0])
        cand.append(src[b >= 0])
    key = np.unique(np.concatenate(row_pos) * n + np.concatenate(cand))
    rp, cj = key // n, key % n
    keep = cj != gt.rows[rp]
    rp, cj = rp[keep], cj[keep]
    if rp.size == 0:
        return 0.0
    sims = np.empty(rp.size, dtype=np.float64)
    for a0 in range(0, rp.size, 65_536):
        b0 = min(a0 + 65_536, rp.size)
        sims[a0:b0] = np.einsum("ij,ij->i", unit64(x[cj[a0:b0]]), gt.xs64[rp[a0:b0]])
    order = np.lexsort((-sims, rp))
    rp, sims = rp[order], sims[order]
    first = np.searchsorted(rp, rp, side="left")
    top = (np.arange(rp.size) - first) < gt.k
    found = sims[top] >= gt.kth[rp[top]] - 1e-12
    return float(found.sum()) / (gt.rows.size * gt.k)


def drop_self(ind: np.ndarray, sim: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """From a k+1 self-search, drop the query itself (wherever it is ranked, else the last)."""
    is_self = ind == np.arange(ind.shape[0])[:, None]
    order = np.argsort(is_self, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(ind, order, axis=1), np.take_along_axis(sim, order, axis=1)


# --------------------------------------------------------------------------- timing


@dataclass
class Setting:
    """One search setting of a method: ``search(built, x)`` is timed, ``reduce(out)`` not."""

    params: str
    search: Callable[[Any, np.ndarray], Any]
    reduce: Callable[[Any], dict[str, Any]]


@dataclass
class Method:
    """A method: ``build(x)`` (timed; ``None`` = nothing to build) and its search settings."""

    name: str
    build: Callable[[np.ndarray], Any] | None
    settings: list[Setting]


@dataclass
class Result:
    method: str
    params: str
    total: Timing = field(default_factory=Timing)  # build + search, per run
    build: Timing = field(default_factory=Timing)
    search: Timing = field(default_factory=Timing)
    measures: dict[str, Any] = field(default_factory=dict)  # from the last run

    @property
    def label(self) -> str:
        return f"{self.method} {self.params}".strip()

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "params": self.params,
            "total_s": self.total.as_dict(),
            "build_s": self.build.as_dict() if self.build.times else None,
            "search_s": self.search.as_dict(),
            **{k: v for k, v in self.measures.items() if not isinstance(v, np.ndarray)},
        }


def run_round_robin(
    methods: list[Method], x: np.ndarray, x_warm: np.ndarray, repeats: int
) -> list[Result]:
    """One warm-up per method on ``x_warm`` (JIT, first touch), then ``repeats`` rounds of
    every method (A B C A B C ...); the outputs of the last round are reduced (untimed)."""
    results = {(m.name, s.params): Result(m.name, s.params) for m in methods for s in m.settings}
    for meth in methods:
        t0 = time.perf_counter()
        built = meth.build(x_warm) if meth.build is not None else None
        for s in meth.settings:
            s.search(built, x_warm)
        del built
        log(f"  {meth.name}: warm-up on {x_warm.shape[0]:,} rows {time.perf_counter() - t0:.2f} s")
    for i in range(repeats):
        for meth in methods:
            build_s = 0.0
            built = None
            if meth.build is not None:
                settle()
                t0 = time.perf_counter()
                built = meth.build(x)
                build_s = time.perf_counter() - t0
                log(f"  {meth.name}: run {i + 1}/{repeats} build {build_s:.3f} s")
            for s in meth.settings:
                res = results[(meth.name, s.params)]
                settle()
                t0 = time.perf_counter()
                out = s.search(built, x)
                search_s = time.perf_counter() - t0
                if meth.build is not None:
                    res.build.times.append(build_s)
                res.search.times.append(search_s)
                res.total.times.append(build_s + search_s)
                log(
                    f"  {meth.name} {s.params}: run {i + 1}/{repeats} search {search_s:.3f} s"
                    f" (total {build_s + search_s:.3f} s)"
                )
                if i == repeats - 1:
                    res.measures = s.reduce(out)
                del out
            del built
    return list(results.values())


def fmt_t(t: Timing | None) -> str:
    return t.fmt(2) if t is not None and t.times else "—"


def fmt_recall(r: float | None) -> str:
    return f"{r:.4f}" if r is not None else "—"


def fmt_frac(f: float | None) -> str:
    if f is None:
        return "—"
    return f"{100 * f:.3f}%" if f < 0.01 else f"{100 * f:.2f}%"


# --------------------------------------------------------------------------- kNN


def knn_methods(
    args: argparse.Namespace,
    gt: GroundTruth,
    gt_out: GroundTruth | None,
    x: np.ndarray,
    n_lists: int,
    train_size: int,
) -> list[Method]:
    k, threads, seed = args.k, args.threads, args.seed
    methods: list[Method] = []

    def outlier_recall(src: np.ndarray, dst: np.ndarray) -> float | None:
        if gt_out is None or gt_out.rows.size == 0:
            return None
        return sample_recall(x, gt_out, src, dst, directed=False)

    def per_row_reduce(ind: np.ndarray, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        src, dst = list_edges(ind)
        return {
            "recall_graph": sample_recall(x, gt, src, dst, directed=False),
            "recall_list": sample_recall(x, gt, src, dst, directed=True),
            "recall_graph_outliers": outlier_recall(src, dst),
            **(extra or {}),
        }

    if SC_OPS is not None:
        ops = SC_OPS

        def sc_build(xx: np.ndarray) -> Any:
            nl = n_lists if xx.shape[0] == x.shape[0] else None
            tr = train_size if xx.shape[0] == x.shape[0] else None
            return ops.Partition(
                xx,
                n_lists=nl,
                train_size=tr,
                max_iter=20,
                seed=seed,
                certified=False,
                n_threads=threads,
            )

        def sc_setting(nprobe: int) -> Setting:
            def search(part: Any, _xx: np.ndarray) -> Any:
                return part.knn_edges(
                    k,
                    -1.0,
                    nprobe=nprobe,
                    recall_rows=args.sc_recall_rows,
                    seed=seed,
                    n_threads=threads,
                )

            def reduce(out: Any) -> dict[str, Any]:
                src, dst, _sim, stats = out
                return {
                    "recall_graph": sample_recall(x, gt, src, dst, directed=False),
                    "recall_list": None,
                    "recall_graph_outliers": outlier_recall(src, dst),
                    "self_recall": stats.recall,
                    "self_recall_rows": stats.recall_rows,
                    "pairs_frac": stats.pairs_computed / max(stats.pairs_total, 1),
                    "edges": int(src.size),
                    "n_lists": stats.n_lists,
                    "list_pairs": stats.list_pairs,
                }

            return Setting(f"nprobe={nprobe}", search, reduce)

        methods.append(Method("simclust IVF", sc_build, [sc_setting(p) for p in args.sc_nprobe]))

    if FAISS is not None and "faiss" in args.peers:
        faiss = FAISS

        def fa_build(xx: np.ndarray) -> Any:
            nn, d = xx.shape
            nl = n_lists if nn == x.shape[0] else default_n_lists(nn)
            tr = train_size if nn == x.shape[0] else min(nn, 32 * nl)
            sample = np.sort(np.random.default_rng(seed).choice(nn, size=tr, replace=False))
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantizer, d, nl, faiss.METRIC_INNER_PRODUCT)
            index.cp.niter = 20  # as simclust's max_iter
            index.cp.spherical = True  # unit centroids, as simclust's spherical k-means
            index.cp.seed = seed
            index.cp.min_points_per_centroid = 1  # 32/list (simclust's sample) is on purpose
            index.train(np.ascontiguousarray(xx[sample]))
            index.add(xx)
            return (quantizer, index)  # the quantizer must outlive the index

        def fa_setting(nprobe: int) -> Setting:
            def search(built: Any, xx: np.ndarray) -> Any:
                index = built[1]
                index.nprobe = nprobe
                faiss.cvar.indexIVF_stats.reset()
                sims, ind = index.search(xx, k + 1)
                ndis = int(faiss.cvar.indexIVF_stats.ndis)
                return drop_self(ind, sims, k)[0], ndis

            def reduce(out: Any) -> dict[str, Any]:
                ind, ndis = out
                nn = ind.shape[0]
                return per_row_reduce(ind, {"pairs_frac": ndis / max(nn * (nn - 1), 1)})

            return Setting(f"nprobe={nprobe}", search, reduce)

        methods.append(
            Method("faiss IVFFlat", fa_build, [fa_setting(p) for p in args.faiss_nprobe])
        )

    if HNSWLIB is not None and "hnswlib" in args.peers:
        hnswlib = HNSWLIB

        def hn_build(xx: np.ndarray) -> Any:
            index = hnswlib.Index(space="cosine", dim=xx.shape[1])
            index.init_index(max_elements=xx.shape[0], ef_construction=200, M=16, random_seed=seed)
            index.set_num_threads(threads)
            index.add_items(xx, np.arange(xx.shape[0]), num_threads=threads)
            return index

        def hn_setting(ef: int) -> Setting:
            def search(index: Any, xx: np.ndarray) -> Any:
                index.set_ef(ef)
                labels, dist = index.knn_query(xx, k=k + 1, num_threads=threads)
                return drop_self(labels.astype(np.int64), dist, k)[0]

            return Setting(f"ef={ef}", search, per_row_reduce)

        methods.append(
            Method("hnswlib M=16 efC=200", hn_build, [hn_setting(e) for e in args.hnsw_ef])
        )

    if PYNNDESCENT is not None and "pynndescent" in args.peers:
        pynnd = PYNNDESCENT

        def pn_search(_built: Any, xx: np.ndarray) -> Any:
            index = pynnd.NNDescent(
                xx, metric="cosine", n_neighbors=k + 1, random_state=seed, n_jobs=threads
            )
            ind, dist = index.neighbor_graph
            return drop_self(ind.astype(np.int64), dist, k)[0]

        methods.append(
            Method(
                "pynndescent", None, [Setting(f"n_neighbors={k + 1}", pn_search, per_row_reduce)]
            )
        )

    if SC_OPS is not None and x.shape[0] <= args.exact_max and not args.skip_exact:
        ops = SC_OPS

        def ex_search(_built: Any, xx: np.ndarray) -> Any:
            return ops.knn(xx, k, n_threads=threads)[0]

        def ex_reduce(ind: np.ndarray) -> dict[str, Any]:
            return per_row_reduce(ind, {"pairs_frac": 1.0})

        methods.append(
            Method("simclust exact ops.knn", None, [Setting("brute force", ex_search, ex_reduce)])
        )
    return methods


def fastest_at(results: list[Result], method: str, target: float) -> Result | None:
    """The fastest setting of ``method`` (median total) whose graph recall is >= target."""
    ok = [
        r
        for r in results
        if r.method == method and (r.measures.get("recall_graph") or 0.0) >= target
    ]
    return min(ok, key=lambda r: r.total.median) if ok else None


def bench_knn(
    args: argparse.Namespace, x: np.ndarray, labels: np.ndarray, x_warm: np.ndarray
) -> dict[str, Any]:
    n, d = x.shape
    k = args.k
    n_lists = default_n_lists(n)
    train_size = min(n, 32 * n_lists)
    log(f"[knn] exact neighbours of {min(args.recall_sample, n):,} sampled rows (numpy)")
    gt = exact_ground_truth(x, args.recall_sample, k, args.seed)
    log(f"[knn] ground truth in {gt.seconds:.1f} s")
    is_out = labels[gt.rows] == -1
    gt_out = gt.subset(is_out) if is_out.any() else None
    methods = knn_methods(args, gt, gt_out, x, n_lists, train_size)
    log(f"[knn] k={k}, N={n:,}, D={d}: " + ", ".join(m.name for m in methods))
    results = run_round_robin(methods, x, x_warm, args.repeats)

    ref = next((r for r in results if r.method == "pynndescent"), None)
    print(
        f"## kNN graph, k={k} (N={n:,}, D={d}, threads={args.threads}, "
        f"repeats={args.repeats} after a warm-up on {x_warm.shape[0]:,} rows)\n"
    )
    print(
        "| method | params | total s (median, min-max) | build s | search s "
        f"| R@{k} graph | R@{k} row lists | R@{k} graph, outliers "
        "| pairs computed | ratio to pynndescent | notes |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        ms = r.measures
        ratio = f"{r.total.median / ref.total.median:.2f}" if ref is not None else "n/a"
        notes = ""
        if ms.get("self_recall") is not None:
            notes = (
                f"stats.recall {ms['self_recall']:.4f} ({ms['self_recall_rows']} rows); "
                f"{ms['edges']:,} edges, {ms['n_lists']} lists, {ms['list_pairs']:,} list pairs"
            )
        elif r.method.startswith("simclust IVF"):
            notes = f"{ms.get('edges', 0):,} edges, {ms.get('n_lists')} lists"
        elif r.method.startswith("faiss"):
            notes = f"{n_lists} lists, trained on {train_size:,} rows, 20 iter., spherical"
        print(
            f"| {r.method} | {r.params} | {fmt_t(r.total)} "
            f"| {f'{r.build.median:.2f}' if r.build.times else '—'} | {r.search.median:.2f} "
            f"| {fmt_recall(ms.get('recall_graph'))} | {fmt_recall(ms.get('recall_list'))} "
            f"| {fmt_recall(ms.get('recall_graph_outliers'))} "
            f"| {fmt_frac(ms.get('pairs_frac'))} | {ratio} | {notes} |"
        )
    print()

    # Matched recall: the fastest setting of each method reaching a target recall.
    summary: list[str] = [
        f"R@{k} graph: a sampled row's {k} best neighbours among all the graph's edges touching "
        f"it (simclust's output is an undirected graph; the peers' per-row lists are made "
        f"undirected the same way); R@{k} row lists: the peer's own k neighbours of the row. "
        f"{gt.rows.size:,} seeded rows, exact neighbours by numpy (self excluded, ties count; "
        f"{gt.seconds:.1f} s); R@{k} graph, outliers: the same on the "
        f"{0 if gt_out is None else gt_out.rows.size:,} sampled rows that are outliers "
        "(make_embeddings label -1, uniform on the sphere: their neighbours are far and spread "
        "over many lists)",
        "pairs computed: simclust stats.pairs_computed / (N(N-1)/2); faiss: distance "
        "evaluations (indexIVF_stats.ndis) / (N(N-1)), each query row against each probed row",
    ]
    if args.sc_recall_rows > 0 and SC_OPS is not None:
        summary.append(
            f"simclust's times include its own recall check (recall_rows={args.sc_recall_rows}: "
            "brute force of those rows against all N); --sc-recall-rows 0 times the graph alone"
        )
    names = list(dict.fromkeys(r.method for r in results))
    sc_name = "simclust IVF"
    targets = sorted(set(args.targets) | ({ref.measures["recall_graph"]} if ref else set()))
    matched: list[dict[str, Any]] = []
    for target in targets:
        best = {name: fastest_at(results, name, target) for name in names}
        sc = best.get(sc_name)
        parts = []
        for name in names:
            b = best[name]
            if name == sc_name or (ref is not None and name == ref.method):
                continue
            if b is None:
                parts.append(f"{name}: not reached")
            elif sc is not None:
                parts.append(
                    f"{name} {b.params} {b.total.median:.2f} s "
                    f"(simclust = {sc.total.median / b.total.median:.2f} x)"
                )
            else:
                parts.append(f"{name} {b.params} {b.total.median:.2f} s")
        is_ref = ref is not None and target == ref.measures["recall_graph"]
        head = f"R@{k} >= {target:.4f}" + (" (pynndescent's own recall)" if is_ref else "")
        if sc is None:
            sc_txt = "simclust IVF: not reached" if SC_OPS is not None else "simclust: n/a"
        else:
            sc_txt = (
                f"simclust at R@{k} >= {target:.4f} ({sc.params}, R@{k} "
                f"{sc.measures['recall_graph']:.4f}) takes {sc.total.median:.2f} s"
            )
            if ref is not None:
                sc_txt += f" = {sc.total.median / ref.total.median:.2f} x pynndescent"
                if ref.measures["recall_graph"] < target:
                    sc_txt += f" (which reaches only R@{k} {ref.measures['recall_graph']:.4f})"
        summary.append(f"{head}: {sc_txt}; " + "; ".join(parts))
        matched.append(
            {
                "target": target,
                "best": {
                    name: (None if b is None else {"params": b.params, "s": b.total.median})
                    for name, b in best.items()
                },
            }
        )
    for name, (mod, err, _dist) in PEERS.items():
        if mod is None:
            summary.append(f"{name} skipped ({err}); install: {PEER_INSTALL}")
    if SC_OPS is not None and (n > args.exact_max or args.skip_exact):
        summary.append(
            f"exact ops.knn not run (N > --exact-max {args.exact_max:,} or --skip-exact)"
        )
    for line in summary:
        print(f"- {line}")
    print()
    return {
        "n_lists": n_lists,
        "train_size": train_size,
        "recall_sample": int(gt.rows.size),
        "ground_truth_s": gt.seconds,
        "results": [r.as_dict() for r in results],
        "matched_recall": matched,
        "summary": summary,
    }


# --------------------------------------------------------------------------- ε-graph


def edge_keys(src: np.ndarray, dst: np.ndarray, n: int) -> np.ndarray:
    a = np.asarray(src, dtype=np.int64)
    b = np.asarray(dst, dtype=np.int64)
    return np.unique(np.minimum(a, b) * n + np.maximum(a, b))


def bench_eps(args: argparse.Namespace, x: np.ndarray, x_warm: np.ndarray) -> dict[str, Any]:
    n, d = x.shape
    t, threads, seed = args.threshold, args.threads, args.seed
    if SC_OPS is None:
        print(f"## ε-graph: skipped (simclust.ops not importable: {SC_IMPORT_ERROR})\n")
        return {}
    ops = SC_OPS
    run_exact = n <= args.exact_max

    def keep_keys(out: Any) -> dict[str, Any]:
        src, dst = out[0], out[1]
        res: dict[str, Any] = {"keys": edge_keys(src, dst, n), "edges": int(src.size)}
        if len(out) == 4:
            stats = out[3]
            res.update(
                self_recall=stats.recall,
                self_recall_rows=stats.recall_rows,
                pairs_frac=stats.pairs_computed / max(stats.pairs_total, 1),
                list_pairs=stats.list_pairs,
                n_lists=stats.n_lists,
            )
        return res

    def approx(nprobe: int) -> Setting:
        def search(part: Any, _xx: np.ndarray) -> Any:
            return part.threshold_edges(
                t,
                certified=False,
                nprobe=nprobe,
                recall_rows=args.sc_recall_rows,
                seed=seed,
                n_threads=threads,
            )

        return Setting(f"approximate nprobe={nprobe}", search, keep_keys)

    def certified(part: Any, _xx: np.ndarray) -> Any:
        return part.threshold_edges(t, certified=True, seed=seed, n_threads=threads)

    def build(xx: np.ndarray) -> Any:
        return ops.Partition(xx, max_iter=20, seed=seed, n_threads=threads)

    methods = [
        Method(
            "simclust IVF",
            build,
            [approx(p) for p in args.eps_nprobe] + [Setting("certified", certified, keep_keys)],
        )
    ]
    if run_exact:

        def exact(_built: Any, xx: np.ndarray) -> Any:
            return ops.threshold_edges(xx, t, n_threads=threads)

        methods.append(
            Method("simclust exact", None, [Setting("ops.threshold_edges", exact, keep_keys)])
        )
    log(f"[eps] t={t}, N={n:,}, D={d}" + ("" if run_exact else " (no brute force: N too big)"))
    results = run_round_robin(methods, x, x_warm, args.repeats)

    exact_res = next((r for r in results if r.method == "simclust exact"), None)
    cert_res = next(r for r in results if r.params == "certified")
    truth = exact_res if exact_res is not None else cert_res
    truth_name = "brute force" if exact_res is not None else "certified"
    truth_keys = truth.measures["keys"]
    for r in results:
        keys = r.measures["keys"]
        common = np.intersect1d(keys, truth_keys, assume_unique=True).size
        r.measures["pair_recall"] = common / max(truth_keys.size, 1)
        r.measures["extra_pairs"] = int(keys.size - common)
    cert_identical = None
    if exact_res is not None:
        cert_identical = bool(np.array_equal(cert_res.measures["keys"], exact_res.measures["keys"]))

    print(
        f"## ε-graph, t={t} (N={n:,}, D={d}, threads={args.threads}, "
        f"repeats={args.repeats} after a warm-up on {x_warm.shape[0]:,} rows)\n"
    )
    print(
        f"| method | params | total s (median, min-max) | build s | graph s | edges "
        f"| pair recall vs {truth_name} | stats.recall | pairs computed "
        f"| ratio to {'brute force' if exact_res is not None else 'certified'} |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        ms = r.measures
        pairs = ms.get("pairs_frac", 1.0 if r.method == "simclust exact" else None)
        print(
            f"| {r.method} | {r.params} | {fmt_t(r.total)} "
            f"| {f'{r.build.median:.2f}' if r.build.times else '—'} | {r.search.median:.2f} "
            f"| {ms['edges']:,} | {ms['pair_recall']:.4f}"
            + (f" (+{ms['extra_pairs']} not in it)" if ms["extra_pairs"] else "")
            + f" | {fmt_recall(ms.get('self_recall'))} | {fmt_frac(pairs)} "
            f"| {r.total.median / truth.total.median:.2f} |"
        )
    print()
    summary = [
        f"{cert_res.measures['n_lists']} lists; certified: {cert_res.measures['list_pairs']:,} "
        f"list pairs compared, {fmt_frac(cert_res.measures['pairs_frac'])} of the N(N-1)/2 "
        "pairs computed",
        f"stats.recall: simclust's own pair recall measured on {args.sc_recall_rows} seeded rows "
        "(1.0 when certified)",
    ]
    if cert_identical is not None:
        summary.append(f"certified graph identical to the brute-force graph: {cert_identical}")
    else:
        summary.append(
            f"brute force not run (N > --exact-max {args.exact_max:,}); the approximate "
            "graphs' pair recall is measured against the certified graph"
        )
    for line in summary:
        print(f"- {line}")
    print()
    return {
        "truth": truth_name,
        "certified_identical_to_brute_force": cert_identical,
        "results": [r.as_dict() for r in results],
        "summary": summary,
    }


# --------------------------------------------------------------------------- memory

_MEMORY_CHILD = r"""
import simclust.ops as ops

path, step = sys.argv[1], sys.argv[2]
k, t, nprobe, threads, seed = (
    int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
)

def vm_rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1

def reset_hwm():
    # Linux: writing 5 to clear_refs resets VmHWM (the peak) to the current RSS.
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False

x = np.load(path)
reset_ok = None
if step == "partition":
    base, base_hwm = maxrss_kib(), vm_hwm_kib()
    t0 = time.perf_counter()
    part = ops.Partition(x, seed=seed, n_threads=threads)
    seconds = time.perf_counter() - t0
    edges = 0
else:
    part = ops.Partition(x, seed=seed, n_threads=threads)
    reset_ok = reset_hwm()
    base, base_hwm = maxrss_kib(), vm_hwm_kib()
    t0 = time.perf_counter()
    if step == "knn_edges":
        out = part.knn_edges(k, -1.0, nprobe=nprobe, seed=seed, n_threads=threads)
    elif step == "threshold_approx":
        out = part.threshold_edges(t, certified=False, nprobe=nprobe, seed=seed, n_threads=threads)
    else:
        out = part.threshold_edges(t, certified=True, seed=seed, n_threads=threads)
    seconds = time.perf_counter() - t0
    edges = int(out[0].size)
report(base, base_hwm, seconds, edges=edges, rss_after_kib=vm_rss_kib(), reset_ok=reset_ok)
"""

MEMORY_STEPS = (
    ("partition", "ops.Partition(X) (k-means lists + list copy)"),
    ("knn_edges", "Partition.knn_edges(k, nprobe={nprobe})"),
    ("threshold_approx", "Partition.threshold_edges(t, nprobe={nprobe})"),
    ("threshold_certified", "Partition.threshold_edges(t, certified=True)"),
)


def bench_memory(args: argparse.Namespace, x: np.ndarray) -> dict[str, Any]:
    if SC_OPS is None:
        print(f"## Memory: skipped (simclust.ops not importable: {SC_IMPORT_ERROR})\n")
        return {}
    sizes = sorted({s for s in args.memory_n if 0 < s <= args.n} | {args.n})
    rows: list[dict[str, Any]] = []
    for size in sizes:
        xs = (
            x
            if size == x.shape[0]
            else make_embeddings(size, args.d, n_clusters=max(1, size // 50), seed=args.seed)
        )
        for step, label in MEMORY_STEPS:
            log(f"[memory] N={size:,}: {step} in a fresh child")
            child_args = [
                str(args.k),
                repr(args.threshold),
                str(args.memory_nprobe),
                str(args.threads),
                str(args.seed),
            ]
            res = run_memory_child(_MEMORY_CHILD, {"x": xs}, [step, *child_args])
            rows.append(
                {
                    "n": size,
                    "step": step,
                    "label": label.format(nprobe=args.memory_nprobe),
                    "input_bytes": xs.nbytes,
                    "peak_extra_vmhwm_bytes": res["peak_extra_vmhwm_bytes"],
                    "peak_extra_maxrss_bytes": res["peak_extra_bytes"],
                    "rss_kept_bytes": (res["rss_after_kib"] - res["base_hwm_kib"]) * 1024,
                    "hwm_reset": res["reset_ok"],
                    "edges": res["edges"],
                    "child_seconds": res["seconds"],
                }
            )
    print(f"## Peak memory of each simclust step (fresh child per step, threads={args.threads})\n")
    print(
        "| N | step | input MiB | peak extra MiB | peak / input | kept after MiB | edges | step s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        peak = (
            r["peak_extra_maxrss_bytes"]
            if r["step"] == "partition"
            else r["peak_extra_vmhwm_bytes"]
        )
        flag = "" if r["hwm_reset"] is not False else " (no VmHWM reset: includes the build)"
        r["peak_extra_reported_bytes"] = peak
        print(
            f"| {r['n']:,} | {r['label']} | {r['input_bytes'] / MIB:.0f} | {peak / MIB:.0f}{flag} "
            f"| {peak / r['input_bytes']:.2f} | {r['rss_kept_bytes'] / MIB:.0f} "
            f"| {r['edges']:,} | {r['child_seconds']:.2f} |"
        )
    print()
    print(
        "- peak extra: the child's peak RSS minus its RSS just before the step. partition: "
        "ru_maxrss after the build minus after loading X; the graph steps build the partition "
        "first, then reset the peak (`/proc/self/clear_refs` = 5) and report VmHWM minus the RSS "
        "at the reset. kept after: RSS after the step minus that baseline (the partition's own "
        "copy of the rows; the edge arrays)."
    )
    print()
    return {"rows": rows}


# --------------------------------------------------------------------------- main


def int_list(s: str) -> list[int]:
    return [int(v) for v in s.split(",") if v.strip()]


def float_list(s: str) -> list[float]:
    return [float(v) for v in s.split(",") if v.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = bench_parser(__doc__, TASKS, n=1_000_000)
    p.add_argument("--k", type=int, default=10, help="neighbours per row (self excluded)")
    p.add_argument("--threshold", type=float, default=0.9, help="ε-graph cosine threshold")
    p.add_argument(
        "--clusters", type=int, default=None, help="make_embeddings n_clusters (default N // 50)"
    )
    p.add_argument("--sc-nprobe", type=int_list, default=[2, 4, 8], help="simclust kNN nprobe")
    p.add_argument("--faiss-nprobe", type=int_list, default=[4, 8, 16, 32], help="faiss nprobe")
    p.add_argument("--hnsw-ef", type=int_list, default=[16, 32, 64, 128], help="hnswlib ef")
    p.add_argument("--eps-nprobe", type=int_list, default=[8, 16], help="simclust ε nprobe")
    p.add_argument(
        "--sc-recall-rows",
        type=int,
        default=1000,
        help="simclust's own recall check in the timed calls (0: none)",
    )
    p.add_argument(
        "--recall-sample", type=int, default=2000, help="rows the recall@k is measured on"
    )
    p.add_argument(
        "--targets",
        type=float_list,
        default=[0.9, 0.95, 0.98, 0.99],
        help="recall targets of the matched-recall comparison",
    )
    p.add_argument(
        "--exact-max",
        type=int,
        default=200_000,
        help="run exact brute force (ops.knn, ops.threshold_edges) only up to this N",
    )
    p.add_argument("--skip-exact", action="store_true", help="no exact ops.knn in the kNN task")
    p.add_argument(
        "--warmup-n", type=int, default=5000, help="rows of the warm-up run of every method"
    )
    p.add_argument(
        "--memory-n",
        type=int_list,
        default=None,
        help="input sizes of the memory task (default N // 10 and N)",
    )
    p.add_argument("--memory-nprobe", type=int, default=8, help="nprobe of the memory task")
    p.add_argument(
        "--analyze-metrics",
        default="intra,centroid,inter,silhouette",
        help="--metrics of the analyze task ('' for the defaults)",
    )
    p.add_argument(
        "--peers",
        type=lambda v: [x.strip() for x in v.split(",") if x.strip()],
        default=list(PEERS),
        help="peers of the knn task, comma-separated (default: all; hnswlib takes longest)",
    )
    p.add_argument("--json", type=Path, default=None, help="write all numbers to this file")
    args = p.parse_args(argv)
    unknown = sorted(set(args.peers) - set(PEERS))
    if unknown:
        p.error(f"--peers: unknown {unknown}; choose from {sorted(PEERS)}")
    args.tasks = parse_tasks(p, args.only, TASKS)
    if args.repeats < 1 or args.threads < 1 or args.k < 1 or args.n <= args.k:
        p.error("--repeats, --threads, --k must be >= 1 and --n > --k")
    if args.memory_n is None:
        args.memory_n = [args.n // 10, args.n] if args.n // 10 >= 1000 else [args.n]
    return args


_ANALYZE_CHILD = r"""
import os, tempfile
from simclust.cli import main as cli
base_kib, base_hwm_kib = maxrss_kib(), vm_hwm_kib()
out = os.path.join(tempfile.mkdtemp(prefix="simclust_bench_out_"), "out")
args = ["analyze", sys.argv[1], "--out", out, "--threads", sys.argv[2], "--quiet"]
args += ["--metrics", sys.argv[3]] if sys.argv[3] else []
t0 = time.perf_counter()
try:
    cli(args, standalone_mode=False)
except SystemExit as exc:
    if exc.code:
        raise
seconds = time.perf_counter() - t0
manifest = json.load(open(os.path.join(out, "manifest.json")))
report(base_kib, base_hwm_kib, seconds, manifest=manifest)
"""


def bench_analyze(args: argparse.Namespace, x: np.ndarray) -> dict[str, Any]:
    """``simclust analyze`` end to end with default settings, in a fresh child."""
    if SC_OPS is None:
        print(f"## analyze: skipped (simclust.ops not importable: {SC_IMPORT_ERROR})\n")
        return {}
    log(f"[analyze] simclust analyze on {x.shape[0]:,} x {x.shape[1]} in a fresh child")
    res = run_memory_child(_ANALYZE_CHILD, {"x": x}, [str(args.threads), args.analyze_metrics])
    manifest = res.pop("manifest")
    summary = manifest["summary"]
    peak = res["peak_kib"] * 1024
    out = {
        "seconds": res["seconds"],
        "peak_rss_bytes": peak,
        "input_bytes": x.nbytes,
        "timings_s": manifest["timings_s"],
        "summary": summary,
        "graph_search": manifest.get("graph_search"),
        "metric_searches": manifest.get("metric_searches"),
    }
    print(
        f"## `simclust analyze` end to end (default settings, metrics "
        f"{args.analyze_metrics or 'default'}, threads={args.threads}, fresh child process)\n"
    )
    print("| stage | seconds |")
    print("| --- | --- |")
    for stage, sec in manifest["timings_s"].items():
        print(f"| {stage} | {sec:.2f} |")
    print(f"| **total (wall: the CLI call, writing included)** | **{res['seconds']:.1f}** |")
    print()
    print(
        f"- peak RSS {peak / MIB:,.0f} MiB for an input of {x.nbytes / MIB:,.0f} MiB "
        f"(input + {(peak - x.nbytes) / MIB:,.0f} MiB; the input is memory-mapped, its pages "
        "count in RSS once read)"
    )
    print(
        f"- {summary['n_clusters']:,} clusters ({summary['n_singletons']:,} singletons), "
        f"largest {summary['largest_cluster']:,}, {summary['n_edges']:,} edges"
    )
    searches = {"graph": out["graph_search"] or {}, **(out["metric_searches"] or {})}
    for name, rec in searches.items():
        if rec:
            recall = rec.get("recall")
            text = f"{recall:.4f}" if isinstance(recall, float) else str(recall)
            if "overestimate_mean" in rec:
                text += (
                    f", values too high by {rec['overestimate_mean']:.4f} on average"
                    f" (at most {rec['overestimate_max']:.3f})"
                )
            print(f"- {name} search: {rec.get('method')}, recall {text} ({rec.get('chosen')})")
    print()
    return out


def native_build() -> dict[str, Any]:
    """The loaded simclust extension's path and mtime, and the git commit of the checkout.

    A rebuild during a run would mix builds (the children of the memory task load the new one);
    main() compares the mtime at the end.
    """
    out: dict[str, Any] = {}
    native = importlib.import_module("simclust._native") if SC_OPS is not None else None
    path = getattr(native, "__file__", None)
    if path:
        out["native_path"] = path
        out["native_mtime"] = Path(path).stat().st_mtime
    try:
        root = Path(__file__).resolve().parent.parent
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "rust", "python"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        out["git_head"] = head + (" (rust/ or python/ modified)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        pass
    return out


def versions() -> dict[str, str]:
    out = library_versions("numpy", "threadpoolctl")
    for name, (mod, _err, dist) in PEERS.items():
        if mod is None:
            out[name] = "not installed"
            continue
        try:
            out[name] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[name] = str(getattr(mod, "__version__", "unknown"))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    payload: dict[str, Any] = {}
    with thread_limits(args.threads):
        info = machine_info(args.threads, versions(), loadavg=True)
        pools = threadpoolctl.threadpool_info()
        build = native_build()
        info["simclust_build"] = build
        print_machine_info(info, pools)
        if "native_mtime" in build:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(build["native_mtime"]))
            print(
                f"simclust build: git {build.get('git_head', '?')}; extension built {stamp} "
                f"({build['native_path']})\n"
            )
        if SC_OPS is None:
            print(f"**simclust.ops not importable ({SC_IMPORT_ERROR}): peers only (dry run)**\n")
        for name, (mod, err, _dist) in PEERS.items():
            if mod is None:
                print(f"**{name} not importable ({err}): skipped**\n")

        clusters = args.clusters if args.clusters is not None else max(1, args.n // 50)
        t0 = time.perf_counter()
        x, labels = make_embeddings(
            args.n, args.d, n_clusters=clusters, seed=args.seed, return_labels=True
        )
        gen_s = time.perf_counter() - t0
        log(f"[data] make_embeddings({args.n}, {args.d}, n_clusters={clusters}) {gen_s:.2f} s")
        warm_n = max(min(args.warmup_n, args.n), args.k + 2)
        x_warm = make_embeddings(
            warm_n, args.d, n_clusters=max(1, warm_n // 50), seed=args.seed + 7
        )
        print(
            f"Data: make_embeddings({args.n:,}, {args.d}, n_clusters={clusters:,}, "
            f"seed={args.seed}), {x.nbytes / MIB:.0f} MiB float32, generated in {gen_s:.1f} s; "
            f"simclust default lists 2 sqrt(N) = {default_n_lists(args.n):,}\n"
        )
        payload["dataset"] = {
            "n": args.n,
            "d": args.d,
            "n_clusters": clusters,
            "seed": args.seed,
            "generate_s": gen_s,
        }
        if "knn" in args.tasks:
            payload["knn"] = bench_knn(args, x, labels, x_warm)
        if "eps" in args.tasks:
            payload["eps"] = bench_eps(args, x, x_warm)
    if "memory" in args.tasks:
        payload["memory"] = bench_memory(args, x)
    if "analyze" in args.tasks:
        payload["analyze"] = bench_analyze(args, x)
    if "native_mtime" in build and native_build().get("native_mtime") != build["native_mtime"]:
        print(
            "**warning: the simclust extension was rebuilt during this run: the numbers mix "
            "two builds (the memory children load the new one); run again**"
        )

    if args.json is not None:
        payload.update(
            machine=info,
            threadpool_info=pools,
            params={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            simclust_available=SC_OPS is not None,
        )
        args.json.write_text(json.dumps(payload, indent=2, default=str))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
