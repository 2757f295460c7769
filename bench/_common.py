"""Helpers shared by the benchmark scripts in ``bench/``.

Import this module before numpy (``import _common`` as the first third-party import; the
scripts' folder is on ``sys.path`` when they run as ``python bench/bench_x.py``): it removes
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` from the environment, which OpenBLAS reads once,
when numpy loads it.

What is here: the environment cleanup, stderr logging, timing (:class:`Timing`,
:func:`measure`, :func:`measure_interleaved`: one warm-up, then timed runs with a pause before
each so that spinning BLAS threads park), the machine description printed at the top of every
script, a numpy GEMM "machine peak" runner, and peak-memory measurement in a fresh child
process.
"""

from __future__ import annotations

import os
import sys

# Project rule: benchmark numpy with OpenBLAS' own CPU detection. The environment may set
# OPENBLAS_CORETYPE (forces a kernel, e.g. an older/slower one) and OPENBLAS_L2_SIZE (changes
# the GEMM blocking); both slow numpy's float32 GEMM down and would understate the "machine
# peak" and the peers. OpenBLAS reads them once, when the library is loaded, so they are
# removed here, before numpy (or anything that imports it) is imported. Child processes
# (the memory measurements) inherit the cleaned environment.
REMOVED_ENV = {
    key: os.environ.pop(key)
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    if key in os.environ
}
if REMOVED_ENV and "numpy" in sys.modules:
    print(
        f"warning: numpy was loaded before bench/_common.py removed {sorted(REMOVED_ENV)}; "
        "import _common first",
        file=sys.stderr,
    )

import argparse  # noqa: E402
import gc  # noqa: E402
import importlib  # noqa: E402
import importlib.metadata  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator, Mapping  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

import numpy as np  # noqa: E402
import threadpoolctl  # noqa: E402

T = TypeVar("T")
MIB = 1024 * 1024
SETTLE_S = 0.5
SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16")
# Display names of modules whose import name differs.
_DISPLAY_NAMES = {"sklearn": "scikit-learn"}


def log(msg: str) -> None:
    """Progress to stderr (stdout holds only the machine info, the table and the summary)."""
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- simclust


def import_simclust_ops() -> tuple[ModuleType | None, str | None]:
    """``(simclust.ops, None)``, or ``(None, reason)`` when it does not import."""
    try:
        return importlib.import_module("simclust.ops"), None
    except Exception as exc:  # ImportError, or a broken half-built extension
        return None, f"{type(exc).__name__}: {exc}"


def simclust_version() -> str:
    ops, error = import_simclust_ops()
    if ops is None:
        return f"unavailable ({error})"
    version = getattr(importlib.import_module("simclust"), "__version__", None)
    if version is None:
        try:
            version = importlib.metadata.version("simclust")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
    return str(version)


def library_versions(*modules: str) -> dict[str, str]:
    """``{name: version}`` of simclust and then ``modules`` (import names), in that order."""
    out = {"simclust": simclust_version()}
    for name in modules:
        mod = importlib.import_module(name)
        out[_DISPLAY_NAMES.get(name, name)] = str(mod.__version__)
    return out


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

    def fmt(self, digits: int = 3) -> str:
        """``median (min-max)`` in seconds, or ``value (1 run)``."""
        if len(self.times) == 1:
            return f"{self.median:.{digits}f} (1 run)"
        return f"{self.median:.{digits}f} ({self.min:.{digits}f}-{self.max:.{digits}f})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "times": self.times,
        }


def settle() -> None:
    """Collect garbage and pause before a timed run.

    OpenBLAS (pthreads) and libgomp worker threads keep spinning for a while after a parallel
    region; the pause lets them park so they do not steal cycles from the next contender.
    """
    gc.collect()
    time.sleep(SETTLE_S)


def measure(
    label: str, fn: Callable[[], T], repeats: int, *, warmup: bool = True
) -> tuple[Timing, T]:
    """Warm up once (optional), then time ``repeats`` calls; return timing and last result."""
    res = measure_interleaved([(label, fn)], repeats, warmup=warmup)
    timing, result = res[label]
    return timing, result


def measure_interleaved(
    cases: list[tuple[str, Callable[[], Any]]], repeats: int, *, warmup: bool = True
) -> dict[str, tuple[Timing, Any]]:
    """Time several contenders round-robin (A B A B ...) after one warm-up each.

    On a shared, noisy machine this spreads background load evenly over simclust and its
    peer, so their ratio is more stable than with back-to-back blocks of runs.
    """
    if warmup:
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


def gflops(flops: float, seconds: float) -> float:
    return flops / seconds / 1e9


def gemm_runner(d: int, size: int, inner: int, seed: int) -> tuple[Callable[[], int], float]:
    """A numpy float32 GEMM run (``inner`` matmuls of size x d @ d x size) and its flop count.

    The reference "machine peak": its GFLOP/s measured in the same rounds as a kernel.
    """
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((size, d), dtype=np.float32)
    b = rng.standard_normal((d, size), dtype=np.float32)
    c = np.empty((size, size), dtype=np.float32)

    def run() -> int:
        for _ in range(inner):
            np.matmul(a, b, out=c)
        return inner

    return run, 2.0 * size * size * d * inner


def bench_parser(
    doc: str | None,
    tasks: tuple[str, ...],
    *,
    n: int = 100_000,
    n_help: str = "rows of the embedding dataset",
    seed_help: str = "dataset seed",
) -> argparse.ArgumentParser:
    """A parser with the options every script has: ``--n --d --repeats --threads --seed --only``."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=n, help=n_help)
    p.add_argument("--d", type=int, default=384, help="embedding dimension")
    p.add_argument("--repeats", type=int, default=3, help="timed runs after one warm-up")
    p.add_argument("--threads", type=int, default=2, help="threads for every library")
    p.add_argument("--seed", type=int, default=0, help=seed_help)
    p.add_argument(
        "--only", default=",".join(tasks), help=f"comma list of tasks among {','.join(tasks)}"
    )
    return p


def parse_tasks(parser: argparse.ArgumentParser, only: str, tasks: tuple[str, ...]) -> list[str]:
    """The comma list ``--only`` as a list; unknown names are an argparse error."""
    chosen = [s.strip() for s in only.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(tasks))
    if unknown:
        parser.error(f"unknown task(s) in --only: {', '.join(unknown)}")
    return chosen


@contextmanager
def thread_limits(threads: int) -> Iterator[None]:
    """The same thread count for every library: threadpoolctl (BLAS, OpenMP) and faiss."""
    faiss = sys.modules.get("faiss")
    if faiss is not None:
        faiss.omp_set_num_threads(threads)
    with threadpoolctl.threadpool_limits(limits=threads):
        yield


# --------------------------------------------------------------------------- machine info


def machine_info(
    threads: int,
    versions: Mapping[str, str],
    *,
    simd: tuple[str, ...] = SIMD_FLAGS,
    loadavg: bool = False,
) -> dict[str, Any]:
    """CPU, RAM, thread count, versions and the removed environment (and the load average)."""
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
    info: dict[str, Any] = {
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "simd": [f for f in simd if f in flags],
        "mem_total": mem_total,
        "threads": threads,
        "python": platform.python_version(),
        "versions": dict(versions),
        "removed_env": REMOVED_ENV,
    }
    if loadavg:
        info["loadavg_start"] = os.getloadavg()
    return info


def print_machine_info(
    info: dict[str, Any], pools: list[dict[str, Any]], *, pool_details: bool = True
) -> None:
    """The ``## Machine`` section; ``pool_details``: prefix and threading layer of each pool."""
    print("## Machine")
    cpu = (
        f"- CPU: {info['cpu_model']}; cores: {info['cpu_count']} "
        f"(usable {info['cpus_usable']}); SIMD: {', '.join(info['simd']) or 'none'}; "
        f"RAM: {info['mem_total']}"
    )
    if "loadavg_start" in info:
        cpu += f"; load average at start: {', '.join(f'{v:.2f}' for v in info['loadavg_start'])}"
    print(cpu)
    print(f"- threads for every library: {info['threads']}")
    vers = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    print(f"- Python {info['python']}; {vers}")
    removed = info["removed_env"]
    print(
        "- removed from env before importing numpy: "
        + (", ".join(f"{k}={v}" for k, v in removed.items()) if removed else "none was set")
    )
    if pool_details:
        print("- threadpoolctl pools:")
    for pool in pools:
        if pool_details:
            print(
                f"  - {pool.get('internal_api')} {pool.get('version')} ({pool.get('prefix')}): "
                f"architecture={pool.get('architecture', '-')}, "
                f"threading={pool.get('threading_layer', '-')}, "
                f"num_threads={pool.get('num_threads')}"
            )
        else:
            print(
                f"- {pool.get('internal_api')} {pool.get('version')}: "
                f"architecture={pool.get('architecture', '-')}, "
                f"num_threads={pool.get('num_threads')}"
            )
    print()


def report_machine(
    threads: int,
    modules: tuple[str, ...],
    *,
    simd: tuple[str, ...] = SIMD_FLAGS,
    loadavg: bool = False,
    pool_details: bool = True,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Print the ``## Machine`` section (versions of simclust and ``modules``); return its data.

    Call it inside :func:`thread_limits`, so that the thread pools show the limit.
    """
    info = machine_info(threads, library_versions(*modules), simd=simd, loadavg=loadavg)
    pools = threadpoolctl.threadpool_info()
    print_machine_info(info, pools, pool_details=pool_details)
    return info, pools


# --------------------------------------------------------------------------- memory child

# Code every memory child starts with: its own VmHWM and ru_maxrss (both in KiB), and
# ``report()``, which prints them as the child's last line (JSON) with the baseline taken after
# the imports and the data load.
MEMORY_CHILD_PRELUDE = r"""
import json, resource, sys, time
import numpy as np

def vm_hwm_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return -1

def maxrss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

def report(base_kib, base_hwm_kib, seconds, **extra):
    print(json.dumps({
        "base_kib": base_kib, "peak_kib": maxrss_kib(),
        "base_hwm_kib": base_hwm_kib, "peak_hwm_kib": vm_hwm_kib(),
        "seconds": seconds, **extra,
    }))
"""

# Linux keeps a process' ru_maxrss across exec, and a forked child starts with its parent's
# resident size: a child spawned directly from this (large) process would report the
# benchmark's own RSS as its baseline and hide its real peak. A small /bin/sh in between
# forks the python child (the trailing "exit" stops sh from exec-ing it in place), so the
# child's ru_maxrss starts from the small shell. VmHWM (per address space) is kept as a
# cross-check.
_SPAWN_VIA_SH = ["/bin/sh", "-c", '"$0" "$@"; exit $?']


def run_memory_child(
    code: str, arrays: Mapping[str, np.ndarray], args: list[str]
) -> dict[str, Any]:
    """Run ``MEMORY_CHILD_PRELUDE + code`` in a fresh Python; return its last line (JSON).

    Each array is saved as ``<tmp>/<name>.npy``; the child gets those paths (in order) and
    then ``args`` as ``sys.argv[1:]``. Adds ``peak_extra_bytes`` (ru_maxrss) and
    ``peak_extra_vmhwm_bytes`` (peak minus the baseline the child reported).
    """
    with tempfile.TemporaryDirectory(prefix="simclust_bench_") as tmp:
        paths = []
        for name, arr in arrays.items():
            path = Path(tmp) / f"{name}.npy"
            np.save(path, arr)
            paths.append(str(path))
        cmd = [sys.executable, "-c", MEMORY_CHILD_PRELUDE + code, *paths, *args]
        proc = subprocess.run(_SPAWN_VIA_SH + cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    res: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    res["peak_extra_bytes"] = (res["peak_kib"] - res["base_kib"]) * 1024  # Linux: KiB
    res["peak_extra_vmhwm_bytes"] = (res["peak_hwm_kib"] - res["base_hwm_kib"]) * 1024
    return res
