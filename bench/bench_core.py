"""Core benchmark: simclust vs faiss / scikit-learn / scipy, in one process, same thread count.

Tasks (``--only``):

* ``gemm``  numpy float32 matmul, the reference "machine peak" in GFLOP/s;
* ``knn``   exact cosine self-kNN: simclust.ops.knn vs faiss IndexFlatIP vs sklearn brute;
* ``graph`` ε-graph (all pairs i<j with cos >= t) + connected components:
            simclust threshold_edges + connected_components vs faiss range_search + scipy csgraph,
            plus the peak memory of the simclust run measured in a fresh child process;
* ``uf``    union-find on random edges: simclust connected_components vs scipy (coo->csr + csgraph).

Run from the repository root, e.g. ``.venv/bin/python bench/bench_core.py --n 100000``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (first: removes OPENBLAS_* from the environment before numpy loads)
import faiss
import numpy as np
import scipy.sparse as sp
from _common import (
    MIB,
    Timing,
    bench_parser,
    gemm_runner,
    gflops,
    import_simclust_ops,
    log,
    measure,
    measure_interleaved,
    parse_tasks,
    report_machine,
    run_memory_child,
    thread_limits,
)
from datasets import make_embeddings
from scipy.sparse.csgraph import connected_components as scipy_cc
from sklearn.neighbors import NearestNeighbors

TASKS = ("gemm", "knn", "graph", "uf")

SC_OPS, SC_IMPORT_ERROR = import_simclust_ops()


# --------------------------------------------------------------------------- results


@dataclass
class Row:
    task: str
    peer: str
    simclust: Timing | None
    peer_time: Timing | None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.simclust is None or self.peer_time is None:
            return None
        return self.simclust.median / self.peer_time.median

    def markdown(self) -> str:
        sc = self.simclust.fmt() if self.simclust else "n/a"
        peer = self.peer_time.fmt() if self.peer_time else "n/a"
        ratio = f"{self.ratio:.2f}" if self.ratio is not None else "n/a"
        return f"| {self.task} | {sc} | {self.peer} | {peer} | {ratio} | {self.notes} |"

    def as_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "peer": self.peer,
            "simclust_s": self.simclust.as_dict() if self.simclust else None,
            "peer_s": self.peer_time.as_dict() if self.peer_time else None,
            "ratio_simclust_over_peer": self.ratio,
            "notes": self.notes,
            **self.extra,
        }


TABLE_HEADER = (
    "| task | simclust s (median, min-max) | peer | peer s | ratio simclust/peer "
    "| notes (GFLOP/s, % peak, edges, memory) |\n"
    "| --- | --- | --- | --- | --- | --- |"
)


# --------------------------------------------------------------------------- helpers


def drop_self(ind: np.ndarray, sim: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """From a k+1 self-search, drop the query itself (wherever it is ranked, else the last)."""
    is_self = ind == np.arange(ind.shape[0])[:, None]
    order = np.argsort(is_self, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(ind, order, axis=1), np.take_along_axis(sim, order, axis=1)


def canonical_labels(labels: np.ndarray) -> np.ndarray:
    """Relabel components 0..C-1 in order of their smallest member index."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inverse.reshape(-1)]


def scipy_components(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """scipy csgraph connected components, including the coo -> csr build."""
    data = np.ones(src.size, dtype=np.bool_)
    graph = sp.coo_matrix((data, (src, dst)), shape=(n, n)).tocsr()
    labels: np.ndarray = scipy_cc(graph, directed=False)[1]
    return labels


def edge_set_diff(
    x: np.ndarray,
    t: float,
    ours: tuple[np.ndarray, np.ndarray],
    theirs: tuple[np.ndarray, np.ndarray],
) -> dict[str, Any]:
    """Pairs (i<j) in only one of two edge lists, and how far their exact cosine is from t."""
    n = x.shape[0]
    key_a = ours[0].astype(np.int64) * n + ours[1].astype(np.int64)
    key_b = theirs[0].astype(np.int64) * n + theirs[1].astype(np.int64)
    only_a = np.setdiff1d(key_a, key_b)
    only_b = np.setdiff1d(key_b, key_a)
    both = np.concatenate([only_a, only_b])
    i, j = both // n, both % n
    xi, xj = x[i].astype(np.float64), x[j].astype(np.float64)
    cos = np.einsum("ij,ij->i", xi, xj) / (np.linalg.norm(xi, axis=1) * np.linalg.norm(xj, axis=1))
    return {
        "only_simclust": int(only_a.size),
        "only_faiss": int(only_b.size),
        "max_abs_cos_minus_t": float(np.max(np.abs(cos - t))) if cos.size else 0.0,
    }


# --------------------------------------------------------------------------- tasks


@dataclass
class GemmProbe:
    """``inner`` float32 matmuls ``[m, kd] @ [kd, m]`` per call; ``flops`` per call."""

    m: int
    kd: int
    inner: int
    run: Callable[[], int]

    @property
    def flops(self) -> float:
        return 2.0 * self.m * self.m * self.kd * self.inner

    @property
    def label(self) -> str:
        return f"GEMM {self.m}x{self.kd} @ {self.kd}x{self.m} x{self.inner}"


def make_gemm_probe(args: argparse.Namespace) -> GemmProbe:
    m, kd, inner = int(args.gemm_size), int(args.d), int(args.gemm_inner)
    run, _flops = gemm_runner(kd, m, inner, args.seed)
    return GemmProbe(m=m, kd=kd, inner=inner, run=run)


def bench_gemm(args: argparse.Namespace, probe: GemmProbe) -> Row:
    log(f"[gemm] {probe.label} (numpy float32)")
    timing, _ = measure("numpy", probe.run, args.repeats)
    median_rate = gflops(probe.flops, timing.median)
    best_rate = gflops(probe.flops, timing.min)
    return Row(
        task=probe.label,
        peer="numpy matmul (float32)",
        simclust=None,
        peer_time=timing,
        notes=f"{median_rate:.1f} GFLOP/s (median), {best_rate:.1f} best = reference peak",
        extra={"gflops_median": median_rate, "gflops_best": best_rate},
    )


def bench_knn(
    args: argparse.Namespace, x: np.ndarray, probe: GemmProbe | None
) -> tuple[list[Row], list[str]]:
    """kNN round-robin: simclust, faiss and (with ``probe``) the GEMM reference.

    The GEMM reference is re-measured inside the same round-robin, so that the "% of GEMM
    peak" compares rates taken under the same background load.
    """
    n, d = x.shape
    k, threads = args.k, args.threads
    rows: list[Row] = []
    summary: list[str] = []
    task = f"kNN k={k} (N={n:,}, D={d})"
    dense_flops = 2.0 * n * n * d

    def run_faiss() -> tuple[np.ndarray, np.ndarray]:
        index = faiss.IndexFlatIP(d)
        index.add(x)
        sims, ind = index.search(x, k + 1)
        return drop_self(ind, sims, k)

    def run_sklearn() -> tuple[np.ndarray, np.ndarray]:
        nn = NearestNeighbors(
            n_neighbors=k + 1, algorithm="brute", metric="cosine", n_jobs=threads
        ).fit(x)
        dist, ind = nn.kneighbors(x)
        return drop_self(ind, 1.0 - dist, k)

    cases: list[tuple[str, Callable[[], Any]]] = []
    if SC_OPS is not None:
        ops = SC_OPS
        cases.append(("simclust", lambda: ops.knn(x, k, n_threads=threads)))
    cases.append(("faiss", run_faiss))
    if probe is not None:
        cases.append(("gemm-ref", probe.run))
    log(
        f"[knn] {task}: simclust.ops.knn vs faiss IndexFlatIP (add + search k+1 + drop self)"
        + (f", interleaved with {probe.label}" if probe is not None else "")
    )
    res = measure_interleaved(cases, args.repeats)
    sc_time, sc_res = res.get("simclust", (None, None))
    fa_time, fa_res = res["faiss"]
    peak: float | None = None
    if probe is not None:
        peak = gflops(probe.flops, res["gemm-ref"][0].median)
        summary.append(
            f"GEMM reference re-measured between the kNN runs: {peak:.1f} GFLOP/s (median), "
            f"{gflops(probe.flops, res['gemm-ref'][0].min):.1f} best"
        )

    sk_time: Timing | None = None
    sk_res: tuple[np.ndarray, np.ndarray] | None = None
    if not args.skip_sklearn:
        log(f"[knn] sklearn brute cosine, {args.sklearn_repeats} run(s), no warm-up")
        sk_time, sk_res = measure("sklearn", run_sklearn, args.sklearn_repeats, warmup=False)

    # Notes: simclust effective rate (dense-equivalent 2*N*N*D) and fraction of GEMM peak.
    sc_note = ""
    extra: dict[str, Any] = {}
    if sc_time is not None:
        rate = gflops(dense_flops, sc_time.median)
        sc_note = f"simclust {rate:.1f} GFLOP/s eff."
        extra["simclust_gflops_eff"] = rate
        if peak:
            sc_note += f" = {100.0 * rate / peak:.0f}% of GEMM peak ({peak:.1f}, interleaved)"
            extra["gemm_ref_gflops_interleaved"] = peak
            extra["simclust_pct_of_gemm_peak"] = 100.0 * rate / peak
    fa_rate = gflops(dense_flops, fa_time.median)

    recall_note = ""
    if sc_res is not None:
        sc_ind = np.asarray(sc_res[0], dtype=np.int64)
        sc_sim = np.asarray(sc_res[1], dtype=np.float32)
        fa_ind, fa_sim = fa_res
        same_sets = float(
            np.mean(np.all(np.sort(sc_ind, axis=1) == np.sort(fa_ind, axis=1), axis=1))
        )
        hits = (sc_ind[:, :, None] == fa_ind[:, None, :]).any(axis=2).sum()
        recall = float(hits) / sc_ind.size
        sim_diff = float(
            np.max(np.abs(np.sort(sc_sim, axis=1) - np.sort(fa_sim.astype(np.float32), axis=1)))
        )
        recall_note = (
            f"identical sets vs faiss {100 * same_sets:.2f}%, recall@{k} {100 * recall:.3f}%"
        )
        extra.update(
            identical_sets_vs_faiss=same_sets, recall_vs_faiss=recall, max_sim_diff=sim_diff
        )
        summary.append(f"kNN sanity: {recall_note}; max |sim diff| (sorted rows) {sim_diff:.2e}")
    if sc_time is not None:
        summary.append(
            "kNN eff. GFLOP/s counts the dense-equivalent 2*N*N*D flops; a self-join that "
            "computes each pair once (symmetry) does half of them, so up to 200% of the GEMM "
            "reference is possible"
        )

    rows.append(
        Row(
            task=task,
            peer="faiss IndexFlatIP",
            simclust=sc_time,
            peer_time=fa_time,
            notes="; ".join(
                p for p in (sc_note, f"faiss {fa_rate:.1f} GFLOP/s eff.", recall_note) if p
            ),
            extra=extra,
        )
    )
    if sk_time is not None:
        sk_rate = gflops(dense_flops, sk_time.median)
        rows.append(
            Row(
                task=task,
                peer=f"sklearn brute cosine (n_jobs={threads})",
                simclust=sc_time,
                peer_time=sk_time,
                notes=f"sklearn {sk_rate:.1f} GFLOP/s eff.",
            )
        )
        if sk_res is not None:
            sk_sets = float(
                np.mean(np.all(np.sort(sk_res[0], axis=1) == np.sort(fa_res[0], axis=1), axis=1))
            )
            summary.append(f"kNN sanity: sklearn identical sets vs faiss {100 * sk_sets:.2f}%")
    best_peer = min(t.median for t in (fa_time, sk_time) if t is not None)
    best_name = "faiss" if fa_time.median == best_peer else "sklearn"
    if sc_time is not None:
        summary.append(
            f"kNN: simclust / min(faiss, sklearn) = {sc_time.median / best_peer:.2f} "
            f"(best peer: {best_name}, {best_peer:.3f} s)"
        )
    return rows, summary


_MEMORY_CHILD = r"""
import simclust.ops as ops

path, threshold, threads = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
x = np.load(path)
base, base_hwm = maxrss_kib(), vm_hwm_kib()
t0 = time.perf_counter()
src, dst, sim = ops.threshold_edges(x, threshold, n_threads=threads)
labels = ops.connected_components(x.shape[0], src, dst)
seconds = time.perf_counter() - t0
report(
    base, base_hwm, seconds, edges=int(src.size),
    n_components=int(labels.max()) + 1 if labels.size else 0,
)
"""


def measure_graph_memory(x: np.ndarray, threshold: float, threads: int) -> dict[str, Any]:
    """Peak extra RSS of threshold_edges + connected_components in a fresh child process."""
    res = run_memory_child(_MEMORY_CHILD, {"x": x}, [repr(threshold), str(threads)])
    input_bytes = x.nbytes
    edge_bytes = 12 * res["edges"]  # uint32 src + uint32 dst + float32 similarity
    peak_extra = res["peak_extra_bytes"]
    budget = input_bytes + 2 * edge_bytes + 256 * MIB
    return {
        "input_bytes": input_bytes,
        "edge_list_bytes": edge_bytes,
        "baseline_maxrss_bytes": res["base_kib"] * 1024,
        "peak_maxrss_bytes": res["peak_kib"] * 1024,
        "peak_extra_bytes": peak_extra,
        "peak_extra_vmhwm_bytes": res["peak_extra_vmhwm_bytes"],
        "budget_bytes": budget,
        "within_budget": peak_extra <= budget,
        "child_seconds": res["seconds"],
        "child_edges": res["edges"],
        "child_components": res["n_components"],
    }


def bench_graph(args: argparse.Namespace, x: np.ndarray) -> tuple[list[Row], list[str]]:
    n, d = x.shape
    t, threads = args.threshold, args.threads
    summary: list[str] = []
    task = f"ε-graph t={t} + CC (N={n:,}, D={d})"

    def run_faiss() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        index = faiss.IndexFlatIP(d)
        index.add(x)
        # faiss keeps IP > t (strict), simclust cos >= t; with float rounding differences in
        # the dot products this leaves a handful of boundary pairs that may differ.
        lims, _sims, ind = index.range_search(x, t)
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(lims).astype(np.int64))
        keep = ind > rows  # i < j, drops self
        src, dst = rows[keep], ind[keep]
        return src, dst, scipy_components(n, src, dst)

    cases: list[tuple[str, Callable[[], Any]]] = []
    if SC_OPS is not None:
        ops = SC_OPS

        def run_simclust() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            src, dst, _sim = ops.threshold_edges(x, t, n_threads=threads)
            return src, dst, ops.connected_components(n, src, dst)

        cases.append(("simclust", run_simclust))
    cases.append(("faiss+scipy", run_faiss))
    log(
        f"[graph] {task}: simclust threshold_edges + connected_components vs faiss "
        "range_search + keep i<j + scipy coo->csr + connected_components"
    )
    res = measure_interleaved(cases, args.repeats)
    sc_time, sc_res = res.get("simclust", (None, None))
    fa_time, fa_res = res["faiss+scipy"]
    fa_src, fa_dst, fa_labels = fa_res
    fa_edges = int(fa_src.size)
    fa_ncomp = int(fa_labels.max()) + 1
    extra: dict[str, Any] = {"faiss_edges": fa_edges, "faiss_components": fa_ncomp}
    notes = [f"edges faiss {fa_edges:,}, comps {fa_ncomp:,}"]
    if sc_res is not None:
        sc_src, sc_dst, sc_labels = sc_res
        sc_edges = int(sc_src.size)
        sc_ncomp = int(sc_labels.max()) + 1
        rel = abs(sc_edges - fa_edges) / max(fa_edges, 1)
        same_partition = bool(np.array_equal(canonical_labels(fa_labels), sc_labels))
        diff = edge_set_diff(x, t, (sc_src, sc_dst), (fa_src, fa_dst))
        notes.insert(
            0, f"edges simclust {sc_edges:,} (Δ {sc_edges - fa_edges:+,}), comps {sc_ncomp:,}"
        )
        extra.update(
            simclust_edges=sc_edges,
            simclust_components=sc_ncomp,
            edges_rel_diff=rel,
            same_partition=same_partition,
            edge_diff=diff,
        )
        summary.append(
            f"ε-graph sanity: edges simclust {sc_edges:,} vs faiss {fa_edges:,} "
            f"(rel. diff {rel:.2e}{', OK' if rel < 1e-3 else ', MISMATCH'}); "
            f"components {sc_ncomp:,} vs {fa_ncomp:,}; identical partition: {same_partition}"
        )
        summary.append(
            f"ε-graph edge sets: {diff['only_simclust']:,} only in simclust, "
            f"{diff['only_faiss']:,} only in faiss; float64 |cos - t| of those pairs <= "
            f"{diff['max_abs_cos_minus_t']:.1e} (boundary rounding if tiny)"
        )
        if not args.skip_memory:
            log("[graph] peak memory of simclust in a fresh child process")
            mem = measure_graph_memory(x, t, threads)
            extra["memory"] = mem
            verdict = "OK" if mem["within_budget"] else "OVER BUDGET"
            notes.append(
                f"peak extra {mem['peak_extra_bytes'] / MIB:.0f} MiB vs budget "
                f"{mem['budget_bytes'] / MIB:.0f} MiB {verdict}"
            )
            summary.append(
                f"ε-graph memory (child, {mem['child_seconds']:.2f} s): input "
                f"{mem['input_bytes'] / MIB:.1f} MiB, edge list {mem['edge_list_bytes'] / MIB:.1f} "
                f"MiB (12 B/edge), baseline maxrss {mem['baseline_maxrss_bytes'] / MIB:.1f} MiB, "
                f"peak extra {mem['peak_extra_bytes'] / MIB:.1f} MiB (VmHWM: "
                f"{mem['peak_extra_vmhwm_bytes'] / MIB:.1f} MiB); budget "
                f"input + 2x edges + 256 MiB = {mem['budget_bytes'] / MIB:.1f} MiB -> {verdict}"
            )
    row = Row(
        task=task,
        peer="faiss range_search + scipy CC",
        simclust=sc_time,
        peer_time=fa_time,
        notes="; ".join(notes),
        extra=extra,
    )
    return [row], summary


def bench_uf(args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    n, m = args.uf_nodes, args.uf_edges
    rng = np.random.default_rng(args.seed + 1)
    src = rng.integers(0, n, size=m, dtype=np.uint32)
    dst = rng.integers(0, n, size=m, dtype=np.uint32)
    task = f"union-find {m:,} random edges, n={n:,}"
    summary: list[str] = []

    cases: list[tuple[str, Callable[[], Any]]] = []
    if SC_OPS is not None:
        ops = SC_OPS
        cases.append(("simclust", lambda: ops.connected_components(n, src, dst)))
    cases.append(("scipy", lambda: scipy_components(n, src, dst)))
    log(f"[uf] {task}: simclust.ops.connected_components vs scipy coo->csr + CC")
    res = measure_interleaved(cases, args.repeats)
    sc_time, sc_labels = res.get("simclust", (None, None))
    sp_time, sp_labels = res["scipy"]
    sp_ncomp = int(sp_labels.max()) + 1
    notes = f"components scipy {sp_ncomp:,}"
    extra: dict[str, Any] = {"scipy_components": sp_ncomp}
    if sc_labels is not None:
        same = bool(np.array_equal(canonical_labels(sp_labels), sc_labels))
        sc_ncomp = int(sc_labels.max()) + 1
        notes = f"components simclust {sc_ncomp:,} / scipy {sp_ncomp:,}; identical: {same}"
        extra.update(simclust_components=sc_ncomp, identical_labels=same)
        summary.append(f"union-find sanity: canonical labels identical to scipy: {same}")
    row = Row(
        task=task,
        peer="scipy coo->csr + CC",
        simclust=sc_time,
        peer_time=sp_time,
        notes=notes,
        extra=extra,
    )
    return [row], summary


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = bench_parser(__doc__, TASKS, seed_help="dataset / random-edge seed")
    p.add_argument("--k", type=int, default=10, help="neighbours per row (self excluded)")
    p.add_argument("--threshold", type=float, default=0.9, help="ε-graph cosine threshold")
    p.add_argument("--skip-sklearn", action="store_true", help="do not run sklearn kNN")
    p.add_argument("--sklearn-repeats", type=int, default=1, help="sklearn runs (no warm-up)")
    p.add_argument("--skip-memory", action="store_true", help="skip the child memory run")
    p.add_argument("--gemm-size", type=int, default=4096, help="GEMM is SxD @ DxS")
    p.add_argument("--gemm-inner", type=int, default=10, help="matmuls per GEMM run")
    p.add_argument("--uf-nodes", type=int, default=2_000_000, help="union-find nodes")
    p.add_argument("--uf-edges", type=int, default=10_000_000, help="union-find edges")
    p.add_argument("--json", type=Path, default=None, help="write all numbers to this file")
    args = p.parse_args(argv)
    args.tasks = parse_tasks(p, args.only, TASKS)
    if args.repeats < 1 or args.threads < 1 or args.sklearn_repeats < 1:
        p.error("--repeats, --threads and --sklearn-repeats must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with thread_limits(args.threads):
        info, pools = report_machine(
            args.threads, ("faiss", "numpy", "scipy", "sklearn", "threadpoolctl")
        )
        if SC_OPS is None:
            print(f"**simclust.ops not importable ({SC_IMPORT_ERROR}): peers only (dry run)**\n")

        rows: list[Row] = []
        summary: list[str] = []
        dataset: dict[str, Any] = {}
        probe: GemmProbe | None = None
        if "gemm" in args.tasks:
            probe = make_gemm_probe(args)
            rows.append(bench_gemm(args, probe))
        x: np.ndarray | None = None
        if "knn" in args.tasks or "graph" in args.tasks:
            t0 = time.perf_counter()
            x = make_embeddings(args.n, args.d, seed=args.seed)
            gen_s = time.perf_counter() - t0
            dataset = {"n": args.n, "d": args.d, "seed": args.seed, "generate_s": gen_s}
            log(f"[data] make_embeddings({args.n}, {args.d}, seed={args.seed}) {gen_s:.2f} s")
            summary.append(
                f"dataset: make_embeddings({args.n}, {args.d}, seed={args.seed}), "
                f"{x.nbytes / MIB:.1f} MiB float32, generated in {gen_s:.2f} s"
            )
        if "knn" in args.tasks and x is not None:
            r, s = bench_knn(args, x, probe)
            rows += r
            summary += s
        if "graph" in args.tasks and x is not None:
            r, s = bench_graph(args, x)
            rows += r
            summary += s
        if "uf" in args.tasks:
            r, s = bench_uf(args)
            rows += r
            summary += s

    print(
        f"## Results (threads={args.threads}, repeats={args.repeats} after 1 warm-up; "
        f"sklearn: {args.sklearn_repeats} run(s), no warm-up)"
    )
    print(TABLE_HEADER)
    for row in rows:
        print(row.markdown())
    print()
    for line in summary:
        print(f"- {line}")

    if args.json is not None:
        payload = {
            "machine": info,
            "threadpool_info": pools,
            "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "dataset": dataset,
            "simclust_available": SC_OPS is not None,
            "results": [row.as_dict() for row in rows],
            "summary": summary,
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
