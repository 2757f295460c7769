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
import gc
import importlib
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

# Project rule: benchmark numpy with OpenBLAS' own CPU detection. The environment may set
# OPENBLAS_CORETYPE (forces a kernel, e.g. an older/slower one) and OPENBLAS_L2_SIZE (changes
# the GEMM blocking); both slow numpy's float32 GEMM down and would understate the "machine
# peak" and the peers. OpenBLAS reads them once, when the library is loaded, so they are
# removed here, before numpy (or anything that imports it) is imported. Child processes
# (the memory measurement) inherit the cleaned environment.
_REMOVED_ENV = {
    key: os.environ.pop(key)
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    if key in os.environ
}

import faiss  # noqa: E402
import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import sklearn  # noqa: E402
import threadpoolctl  # noqa: E402
from scipy.sparse.csgraph import connected_components as scipy_cc  # noqa: E402
from sklearn.neighbors import NearestNeighbors  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import make_embeddings  # noqa: E402

T = TypeVar("T")
TASKS = ("gemm", "knn", "graph", "uf")
MIB = 1024 * 1024


def _import_simclust() -> tuple[ModuleType | None, str | None]:
    try:
        return importlib.import_module("simclust.ops"), None
    except Exception as exc:  # ImportError, or a broken half-built extension
        return None, f"{type(exc).__name__}: {exc}"


SC_OPS, SC_IMPORT_ERROR = _import_simclust()


# --------------------------------------------------------------------------- timing


@dataclass
class Timing:
    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def min(self) -> float:
        return min(self.times)

    @property
    def max(self) -> float:
        return max(self.times)

    def fmt(self) -> str:
        if len(self.times) == 1:
            return f"{self.median:.3f} (1 run)"
        return f"{self.median:.3f} ({self.min:.3f}-{self.max:.3f})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "times": self.times,
        }


def measure(
    label: str, fn: Callable[[], T], repeats: int, *, warmup: bool = True
) -> tuple[Timing, T]:
    """Warm up once (optional), then time ``repeats`` calls; return timing and last result."""
    if warmup:
        t0 = time.perf_counter()
        fn()
        log(f"  {label}: warm-up {time.perf_counter() - t0:.3f} s")
        gc.collect()
    timing = Timing()
    result: T | None = None
    for i in range(repeats):
        result = None  # free the previous result before the next run
        settle()
        t0 = time.perf_counter()
        result = fn()
        timing.times.append(time.perf_counter() - t0)
        log(f"  {label}: run {i + 1}/{repeats} {timing.times[-1]:.3f} s")
    assert result is not None
    return timing, result


def measure_interleaved(
    cases: list[tuple[str, Callable[[], Any]]], repeats: int
) -> dict[str, tuple[Timing, Any]]:
    """Like :func:`measure` for several contenders, run round-robin (A B A B ...).

    On a shared, noisy machine this spreads background load evenly over simclust and its peer,
    so their ratio is more stable than with back-to-back blocks of runs.
    """
    for label, fn in cases:
        t0 = time.perf_counter()
        fn()
        log(f"  {label}: warm-up {time.perf_counter() - t0:.3f} s")
        gc.collect()
    timings = {label: Timing() for label, _ in cases}
    results: dict[str, Any] = {}
    for i in range(repeats):
        for label, fn in cases:
            results[label] = None  # free the previous result before the next run
            settle()
            t0 = time.perf_counter()
            results[label] = fn()
            timings[label].times.append(time.perf_counter() - t0)
            log(f"  {label}: run {i + 1}/{repeats} {timings[label].times[-1]:.3f} s")
    return {label: (timings[label], results[label]) for label, _ in cases}


SETTLE_S = 0.5


def settle() -> None:
    """Collect garbage and pause before a timed run.

    OpenBLAS (pthreads) and libgomp worker threads keep spinning for a while after a parallel
    region; the pause lets them park so they do not steal cycles from the next contender.
    """
    gc.collect()
    time.sleep(SETTLE_S)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


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


# --------------------------------------------------------------------------- machine info


def machine_info(threads: int) -> dict[str, Any]:
    cpu_model = "unknown"
    flags: set[str] = set()
    mem_total = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu_model == "unknown":
                cpu_model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_total = line.split(":", 1)[1].strip()
    except OSError:
        pass
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni") if f in flags]
    return {
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "simd": simd,
        "mem_total": mem_total,
        "threads": threads,
        "python": platform.python_version(),
        "versions": {
            "simclust": _simclust_version(),
            "faiss": faiss.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__,
            "threadpoolctl": threadpoolctl.__version__,
        },
        "removed_env": _REMOVED_ENV,
    }


def _simclust_version() -> str:
    if SC_OPS is None:
        return f"unavailable ({SC_IMPORT_ERROR})"
    pkg = importlib.import_module("simclust")
    version = getattr(pkg, "__version__", None)
    if version is None:
        try:
            version = importlib.metadata.version("simclust")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
    return str(version)


def print_machine_info(info: dict[str, Any], pools: list[dict[str, Any]]) -> None:
    print("## Machine")
    print(
        f"- CPU: {info['cpu_model']}; cores: {info['cpu_count']} "
        f"(usable {info['cpus_usable']}); SIMD: {', '.join(info['simd']) or 'none'}; "
        f"RAM: {info['mem_total']}"
    )
    print(f"- threads for every library: {info['threads']}")
    vers = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    print(f"- Python {info['python']}; {vers}")
    removed = info["removed_env"]
    print(
        "- removed from env before importing numpy: "
        + (", ".join(f"{k}={v}" for k, v in removed.items()) if removed else "none was set")
    )
    print("- threadpoolctl pools:")
    for pool in pools:
        print(
            f"  - {pool.get('internal_api')} {pool.get('version')} ({pool.get('prefix')}): "
            f"architecture={pool.get('architecture', '-')}, "
            f"threading={pool.get('threading_layer', '-')}, "
            f"num_threads={pool.get('num_threads')}"
        )
    print()


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


def gflops(flops: float, seconds: float) -> float:
    return flops / seconds / 1e9


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
    rng = np.random.default_rng(args.seed)
    a = rng.standard_normal((m, kd), dtype=np.float32)
    b = rng.standard_normal((kd, m), dtype=np.float32)
    c = np.empty((m, m), dtype=np.float32)

    def run() -> int:
        for _ in range(inner):
            np.matmul(a, b, out=c)
        return inner

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
import json, resource, sys, time
import numpy as np
import simclust.ops as ops

def vm_hwm_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return -1

path, threshold, threads = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
x = np.load(path)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
base_hwm = vm_hwm_kib()
t0 = time.perf_counter()
src, dst, sim = ops.threshold_edges(x, threshold, n_threads=threads)
labels = ops.connected_components(x.shape[0], src, dst)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
peak_hwm = vm_hwm_kib()
print(json.dumps({
    "base_kib": base, "peak_kib": peak, "base_hwm_kib": base_hwm, "peak_hwm_kib": peak_hwm,
    "edges": int(src.size), "n_components": int(labels.max()) + 1 if labels.size else 0,
    "seconds": seconds,
}))
"""

# Linux keeps a process' ru_maxrss across exec, and a forked child starts with its parent's
# resident size: a child spawned directly from this (large) process would report the
# benchmark's own RSS as its baseline and hide its real peak. A small /bin/sh in between
# forks the python child (the trailing "exit" stops sh from exec-ing it in place), so the
# child's ru_maxrss starts from the small shell. VmHWM (per address space) is kept as a
# cross-check.
_SPAWN_VIA_SH = ["/bin/sh", "-c", '"$0" "$@"; exit $?']


def measure_graph_memory(x: np.ndarray, threshold: float, threads: int) -> dict[str, Any]:
    """Peak extra RSS of threshold_edges + connected_components in a fresh child process."""
    with tempfile.TemporaryDirectory(prefix="simclust_bench_") as tmp:
        path = Path(tmp) / "x.npy"
        np.save(path, x)
        cmd = [sys.executable, "-c", _MEMORY_CHILD, str(path), repr(threshold), str(threads)]
        proc = subprocess.run(_SPAWN_VIA_SH + cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    input_bytes = x.nbytes
    edge_bytes = 12 * res["edges"]  # uint32 src + uint32 dst + float32 similarity
    peak_extra = (res["peak_kib"] - res["base_kib"]) * 1024  # Linux: ru_maxrss in KiB
    peak_extra_hwm = (res["peak_hwm_kib"] - res["base_hwm_kib"]) * 1024
    budget = input_bytes + 2 * edge_bytes + 256 * MIB
    return {
        "input_bytes": input_bytes,
        "edge_list_bytes": edge_bytes,
        "baseline_maxrss_bytes": res["base_kib"] * 1024,
        "peak_maxrss_bytes": res["peak_kib"] * 1024,
        "peak_extra_bytes": peak_extra,
        "peak_extra_vmhwm_bytes": peak_extra_hwm,
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
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=100_000, help="rows of the embedding dataset")
    p.add_argument("--d", type=int, default=384, help="embedding dimension")
    p.add_argument("--k", type=int, default=10, help="neighbours per row (self excluded)")
    p.add_argument("--threshold", type=float, default=0.9, help="ε-graph cosine threshold")
    p.add_argument("--repeats", type=int, default=3, help="timed runs after one warm-up")
    p.add_argument("--threads", type=int, default=2, help="threads for every library")
    p.add_argument(
        "--only", default=",".join(TASKS), help=f"comma list of tasks among {','.join(TASKS)}"
    )
    p.add_argument("--seed", type=int, default=0, help="dataset / random-edge seed")
    p.add_argument("--skip-sklearn", action="store_true", help="do not run sklearn kNN")
    p.add_argument("--sklearn-repeats", type=int, default=1, help="sklearn runs (no warm-up)")
    p.add_argument("--skip-memory", action="store_true", help="skip the child memory run")
    p.add_argument("--gemm-size", type=int, default=4096, help="GEMM is SxD @ DxS")
    p.add_argument("--gemm-inner", type=int, default=10, help="matmuls per GEMM run")
    p.add_argument("--uf-nodes", type=int, default=2_000_000, help="union-find nodes")
    p.add_argument("--uf-edges", type=int, default=10_000_000, help="union-find edges")
    p.add_argument("--json", type=Path, default=None, help="write all numbers to this file")
    args = p.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(TASKS))
    if unknown:
        p.error(f"unknown task(s) in --only: {', '.join(unknown)}")
    args.tasks = only
    if args.repeats < 1 or args.threads < 1 or args.sklearn_repeats < 1:
        p.error("--repeats, --threads and --sklearn-repeats must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    faiss.omp_set_num_threads(args.threads)
    with threadpoolctl.threadpool_limits(limits=args.threads):
        info = machine_info(args.threads)
        pools = threadpoolctl.threadpool_info()
        print_machine_info(info, pools)
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
