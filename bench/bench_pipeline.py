"""Pipeline benchmark: simclust's Python layer (analyze, loaders, embedder, demo) vs the bare way.

Tasks (``--only``), all in one process with the same thread count for every library:

* ``pipeline`` ``simclust.analyze(X, threshold=0.9, metrics=[intra, edge, centroid, inter,
               silhouette])`` vs the same kernels called directly from ``simclust.ops`` (what
               the pipeline and the built-in metrics call, without the config, plugin host,
               fingerprint, ids and frame joins): overhead %, per-stage timings from
               ``Result.timings`` next to the direct calls'; then ``Result.write(dir,
               report=False)`` vs polars ``write_parquet`` + ``np.save`` of the same frames, and
               ``simclust.report.write_report`` on its own.
* ``loaders``  the same X through the pipeline loaders vs the obvious numpy/polars code:
               ``.npy`` (memory-mapped ``NumpyLoader`` + ``np.ascontiguousarray`` vs ``np.load``),
               fastdup ``.dat`` (``read_fastdup_features`` vs ``np.fromfile`` + ``csv``), Parquet
               with a list column (``ParquetLoader`` vs ``pl.read_parquet``); peak RSS of each
               path in a fresh child process.
* ``embed``    images/s of the weight-free ``PixelEmbedder`` (n_jobs 1 and 2) vs ``imagehash.phash``
               (1 and 2 threads) on the synthetic 96 px dataset and on larger JPEGs; recall@1 of
               near-duplicate -> source by cosine kNN vs phash Hamming distance.
* ``demo``     wall time of ``simclust demo --out <tmp> --quiet`` as a subprocess (target < 120 s).

Run from the repository root, e.g. ``.venv/bin/python bench/bench_pipeline.py`` (full size,
~10 min on 2 cores) or ``.venv/bin/python bench/bench_pipeline.py --quick`` (~1-2 min).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (first: removes OPENBLAS_* from the environment before numpy loads)
import numpy as np
import polars as pl
import simclust
from _common import (
    MIB,
    Timing,
    bench_parser,
    log,
    measure,
    measure_interleaved,
    parse_tasks,
    report_machine,
    run_memory_child,
    thread_limits,
)
from datasets import make_embeddings
from PIL import Image, ImageDraw
from simclust import ops
from simclust.default_plugins.loaders import NumpyLoader, ParquetLoader
from simclust.io.embed import PixelEmbedder
from simclust.io.fastdup import read_fastdup_features, write_fastdup_features
from simclust.report import write_report
from simclust.testing.images import make_image_dataset

try:
    import imagehash
except ImportError:  # the peer of the embed task: `.venv/bin/pip install imagehash`
    imagehash = None

TASKS = ("pipeline", "loaders", "embed", "demo")
METRICS = ["intra", "edge", "centroid", "inter", "silhouette"]
FULL = {"n": 100_000, "repeats": 3, "images": 3000, "large_images": 200, "demo_repeats": 3}
QUICK = {"n": 10_000, "repeats": 2, "images": 600, "large_images": 20, "demo_repeats": 1}
DEMO_TARGET_S = 120.0
DRAFT_NOTE = (
    "PixelEmbedder decodes a JPEG with Pillow's draft mode (reduced-size DCT decoding), "
    "phash at full size"
)
STAGE_EXTRA = {
    "normalize": "BLAKE2b fingerprint of the input",
    "cluster": "copies the edges at >= threshold (`Graph.at_least`)",
    "metric:edge": "`np.unique` relabelling, join onto all clusters",
    "metric:inter": "`np.unique` / `np.isin` bookkeeping as in the direct code",
    "rest": "config and plugin lookup, string ids, frame joins (`_merge`), edges frame, versions",
}
HEADER = (
    "| task | simclust | simclust s (median, min-max) | peer | peer s | simclust/peer | notes |\n"
    "| --- | --- | --- | --- | --- | --- | --- |"
)


def row(task: str, ours: str, t: Timing | None, peer: str, pt: Timing | None, notes: str) -> str:
    ratio = "-" if t is None or pt is None else f"{t.median / pt.median:.2f}"
    fmt_t = t.fmt() if t is not None else "-"
    fmt_p = pt.fmt() if pt is not None else "-"
    return f"| {task} | {ours} | {fmt_t} | {peer} | {fmt_p} | {ratio} | {notes} |"


def outside_stages(total: Timing, runs: list[dict[str, float]]) -> float:
    """Median over the runs of (run time - the sum of that run's stage times)."""
    return float(np.median([t - sum(r.values()) for t, r in zip(total.times, runs, strict=True)]))


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    """Per-key median over runs of stage timings (keys of the first run, in its order)."""
    return {k: float(np.median([r.get(k, np.nan) for r in runs])) for k in runs[0]}


# --------------------------------------------------------------------------- pipeline


def direct_ops(x: np.ndarray, threshold: float, threads: int) -> dict[str, Any]:
    """What ``analyze`` computes for the connected-components strategy and the five built-in
    metrics, called straight from ``simclust.ops`` (mirrors ``pipeline.py`` and
    ``default_plugins/metrics.py``); returns the outputs and per-stage seconds."""
    t: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        t[name] = now - clock
        clock = now

    n = x.shape[0]
    xn = ops.normalize(x, n_threads=threads)
    lap("normalize")
    src, dst, sim = ops.threshold_edges(xn, threshold, n_threads=threads)
    lap("graph")
    labels = ops.connected_components(n, src, dst)  # canonical 0..C-1, no noise
    lap("cluster")
    intra = ops.intra_stats(xn, labels, n_threads=threads)
    lap("metric:intra")
    la = labels[src]
    inside = la == labels[dst]
    edge = (
        pl.DataFrame({"c": la[inside], "s": sim[inside].astype(np.float64)})
        .group_by("c")
        .agg(
            pl.len().alias("n_edges"),
            pl.col("s").mean().alias("edge_sim_mean"),
            pl.col("s").min().alias("edge_sim_min"),
            pl.col("s").max().alias("edge_sim_max"),
        )
    )
    bridge = ops.bridge_similarity(n, src, dst, sim, labels)
    lap("metric:edge")
    cent = ops.centroid_stats(xn, labels, n_threads=threads)
    lap("metric:centroid")
    ids, sizes = np.unique(labels, return_counts=True)
    big = ids[sizes >= 2]
    kept = np.where(np.isin(labels, big), labels, -1)
    inter = ops.inter_centroid(xn, kept, top_m=min(10, int(big.size) - 1), n_threads=threads)
    top = np.sort(ids[np.lexsort((ids, -sizes))][:100])
    top = top[np.isin(top, big)]
    sub = np.where(np.isin(labels, top), labels, -1)
    mat_ids, mat = ops.centroid_similarity_matrix(xn, sub, n_threads=threads)
    lap("metric:inter")
    sil = ops.silhouette(xn, labels, n_threads=threads)
    lap("metric:silhouette")
    lo = np.ceil(threshold * 100) / 100
    thresholds = np.round(np.arange(lo, 1.0 - 1e-9, 0.01), 2)
    sweep = ops.threshold_sweep(n, src, dst, sim, thresholds)
    lap("sweep")
    return {
        "labels": labels,
        "n_edges": int(src.size),
        "intra": intra,
        "edge": edge,
        "bridge": bridge,
        "centroid": cent,
        "inter": inter,
        "matrix": (mat_ids, mat),
        "silhouette": sil,
        "sweep": sweep,
        "timings": t,
    }


def compare(res: Any, d: dict[str, Any]) -> tuple[bool, float, bool]:
    """(same labels, max |diff| over the float outputs, same inter/sweep/edge counts)."""
    same_labels = bool(np.array_equal(res.assignments["cluster"].to_numpy(), d["labels"]))
    cl = res.clusters.sort("cluster")
    pairs = [
        (cl["sim_mean"].to_numpy(), d["intra"].sort("cluster")["sim_mean"].to_numpy()),
        (cl["bridge_similarity"].to_numpy(), d["bridge"]),
        (cl["silhouette_mean"].to_numpy(), d["silhouette"].clusters["silhouette_mean"].to_numpy()),
        (res.assignments["silhouette"].to_numpy(), d["silhouette"].rows["silhouette"].to_numpy()),
        (
            res.assignments["centroid_similarity"].to_numpy(),
            d["centroid"].rows["centroid_similarity"].to_numpy(),
        ),
        (res.centroid_matrix, d["matrix"][1]),
    ]
    worst = 0.0
    for a, b in pairs:
        a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a64.shape != b64.shape:
            return same_labels, float("inf"), False
        diff = np.abs(a64 - b64)
        worst = max(worst, float(np.nanmax(diff)) if diff.size else 0.0)
    n_edges = cl["n_edges"].to_numpy()
    d_edges = np.zeros(cl.height, dtype=np.int64)
    d_edges[d["edge"]["c"].to_numpy()] = d["edge"]["n_edges"].to_numpy()
    same_counts = (
        res.inter.height == d["inter"].height
        and res.sweep.equals(d["sweep"])
        and bool(np.array_equal(n_edges, d_edges))
    )
    return same_labels, worst, same_counts


def bench_pipeline(args: argparse.Namespace, x: np.ndarray, tmp: Path, out: dict[str, Any]):
    threads, t = args.threads, args.threshold
    host = simclust.get_host(autoload=False)
    rows: list[str] = []

    a_runs: list[dict[str, float]] = []
    d_runs: list[dict[str, float]] = []

    def timed_analyze() -> Any:
        res = simclust.analyze(x, threshold=t, metrics=METRICS, host=host, n_threads=threads)
        a_runs.append(dict(res.timings))  # one entry per timed run (no warm-up through here)
        return res

    def timed_direct() -> dict[str, Any]:
        res = direct_ops(x, t, threads)
        d_runs.append(res["timings"])
        return res

    small = x[: min(5000, len(x))]
    log(f"[pipeline] warm-up on {len(small):,} rows")
    simclust.analyze(small, threshold=t, metrics=METRICS, host=host, n_threads=threads)
    direct_ops(small, t, threads)
    log(f"[pipeline] analyze vs direct ops, N={len(x):,} D={x.shape[1]}, threshold {t}")
    res = measure_interleaved(
        [("analyze", timed_analyze), ("direct ops", timed_direct)], args.repeats, warmup=False
    )
    a_time, result = res["analyze"]
    d_time, direct = res["direct ops"]
    overhead = 100.0 * (a_time.median - d_time.median) / d_time.median
    same_labels, worst, same_counts = compare(result, direct)
    summary = result.summary()
    a_st, d_st = median_of(a_runs), median_of(d_runs)
    a_rest, d_rest = outside_stages(a_time, a_runs), outside_stages(d_time, d_runs)
    out["pipeline"] = {
        "analyze_s": a_time.as_dict(),
        "direct_s": d_time.as_dict(),
        "overhead_pct": overhead,
        "analyze_stages_median_s": a_st,
        "direct_stages_median_s": d_st,
        "n_edges": summary["n_edges"],
        "n_clusters": summary["n_clusters"],
        "same_labels": same_labels,
        "max_abs_diff": worst,
        "same_counts": same_counts,
    }
    rows.append(
        row(
            f"pipeline N={len(x):,} D={x.shape[1]} t={t}",
            "`analyze(X, threshold, 5 metrics)`",
            a_time,
            "same `ops` calls directly",
            d_time,
            f"overhead {overhead:+.1f}% ({a_time.median - d_time.median:+.2f} s); analyze's own "
            f"work: {a_rest:.2f} s outside the stages (ids, frame joins), normalize + input "
            f"fingerprint {a_st['normalize'] - d_st['normalize']:+.2f} s vs normalize alone; "
            f"{summary['n_edges']:,} edges, {summary['n_clusters']:,} clusters "
            f"(largest {summary['largest_cluster']:,}, {summary['n_singletons']:,} singletons); "
            f"identical labels {same_labels}, max abs diff {worst:.1e}, "
            f"same inter/sweep/edge counts {same_counts}",
        )
    )

    # Stage table: Result.timings next to the direct calls; the remainder is the pipeline's
    # own work (config, host, ids, fingerprint, frame joins, edges frame, versions).
    stages = [
        "| stage | analyze `Result.timings` s (median) | direct ops s (median) | difference s "
        "| analyze does besides the direct calls |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in a_st:
        dv = d_st.get(name)
        dcol = f"{dv:.3f}" if dv is not None else "-"
        diff = f"{a_st[name] - dv:+.3f}" if dv is not None else "-"
        extra = STAGE_EXTRA.get(name, "")
        stages.append(f"| {name} | {a_st[name]:.3f} | {dcol} | {diff} | {extra} |")
    stages.append(
        f"| outside the stages | {a_rest:.3f} | {d_rest:.3f} | {a_rest - d_rest:+.3f} "
        f"| {STAGE_EXTRA['rest']} |"
    )
    stages.append(
        f"| **total** | {a_time.median:.3f} | {d_time.median:.3f} | "
        f"{a_time.median - d_time.median:+.3f} | |"
    )
    del direct

    # Result.write vs writing the same frames and arrays with polars / numpy.
    write_dir, plain_dir = tmp / "result", tmp / "plain"

    def plain_write() -> None:
        plain_dir.mkdir(exist_ok=True)
        for name, df in result.frames().items():
            df.write_parquet(plain_dir / f"{name}.parquet", statistics=True)
        np.save(plain_dir / "centroid_matrix.npy", result.centroid_matrix)
        np.save(plain_dir / "centroid_matrix_clusters.npy", result.centroid_matrix_clusters)

    log("[pipeline] Result.write(report=False) vs polars write_parquet + np.save")
    res = measure_interleaved(
        [
            ("Result.write", lambda: result.write(write_dir, report=False)),
            ("polars write_parquet", plain_write),
        ],
        args.repeats,
    )
    w_time, p_time = res["Result.write"][0], res["polars write_parquet"][0]
    size = sum(f.stat().st_size for f in write_dir.iterdir()) / MIB
    rows.append(
        row(
            "write results",
            "`Result.write(dir, report=False)`",
            w_time,
            "polars `write_parquet` + `np.save` of the same frames",
            p_time,
            f"{size:.1f} MiB in {len(list(write_dir.iterdir()))} files (atomic: staging folder "
            "+ rename, manifest.json)",
        )
    )
    log("[pipeline] simclust.report.write_report")
    html = tmp / "report.html"
    r_time, _ = measure("write_report", lambda: write_report(result, html), args.repeats)
    rows.append(
        row(
            "HTML report",
            "`simclust.report.write_report(result, path)`",
            r_time,
            "-",
            None,
            f"{html.stat().st_size / MIB:.1f} MiB; ids are row numbers, so galleries are tables",
        )
    )
    out["write"] = {
        "result_write_s": w_time.as_dict(),
        "plain_write_s": p_time.as_dict(),
        "write_report_s": r_time.as_dict(),
        "result_mib": size,
    }
    return rows, stages


# --------------------------------------------------------------------------- loaders

_LOADER_CHILD = r"""
import csv
from pathlib import Path
import polars as pl
from simclust.default_plugins.loaders import NumpyLoader, ParquetLoader
from simclust.io.fastdup import read_fastdup_features

method, path, d = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
base, base_hwm = maxrss_kib(), vm_hwm_kib()
t0 = time.perf_counter()
marks = {}
if method in ("npy-mmap", "fastdup-mmap"):
    if method == "npy-mmap":
        x = NumpyLoader().load(path).X
    else:
        x = read_fastdup_features(path).features
    marks["lazy load"] = maxrss_kib() - base
    y = np.ascontiguousarray(x)
    marks["ascontiguousarray"] = maxrss_kib() - base
    x = np.array(x)
    marks["np.array copy"] = maxrss_kib() - base
elif method == "npy-load":
    x = np.load(path)
elif method == "fastdup-numpy":
    x = np.fromfile(path, dtype=np.float32).reshape(-1, d)
    with open(str(path) + ".csv", newline="") as f:
        names = [r[1] for r in list(csv.reader(f))[1:]]
elif method == "parquet-loader":
    x = ParquetLoader().load(path).X
elif method == "parquet-polars":
    df = pl.read_parquet(path)
    x = df["embedding"].list.to_array(d).to_numpy()
    ids = df["id"].to_list()
report(base, base_hwm, time.perf_counter() - t0, marks=marks, shape=list(x.shape))
"""


def loader_memory(method: str, path: Path, d: int) -> dict[str, Any]:
    res = run_memory_child(_LOADER_CHILD, {}, [method, str(path), str(d)])
    res["input_bytes"] = res["shape"][0] * res["shape"][1] * 4
    return res


def mem_note(mem: dict[str, Any]) -> str:
    text = f"+{mem['peak_extra_bytes'] / MIB:.0f} MiB"
    if mem["marks"]:
        text += " (" + ", ".join(f"{k} +{v / 1024:.0f}" for k, v in mem["marks"].items()) + ")"
    return text


@dataclass
class LoaderBench:
    task: str
    cases: dict[str, tuple[str, Callable[[], Any]]]  # label -> (table description, load)
    rows: list[tuple[str, str]]  # (simclust label, peer label) per table row
    children: tuple[str, str, Path]  # loader_memory methods (simclust, peer), file
    note: str = ""


def first(value: Any) -> np.ndarray:
    return np.asarray(value[0] if isinstance(value, tuple) else value)


def bench_loaders(args: argparse.Namespace, x: np.ndarray, tmp: Path, out: dict[str, Any]):
    n, d = x.shape
    names = [f"img_{i:07d}.jpg" for i in range(n)]
    npy = tmp / "x.npy"
    np.save(npy, x)
    write_fastdup_features(tmp / "fastdup", x, names)
    dat = tmp / "fastdup" / "atrain_features.dat"
    pq = tmp / "x.parquet"
    emb = pl.Series(x).cast(pl.List(pl.Float32))
    pl.DataFrame({"id": names, "embedding": emb, "label": np.arange(n)}).write_parquet(pq)
    del emb

    def fd_numpy() -> tuple[np.ndarray, list[str]]:
        feats = np.fromfile(dat, dtype=np.float32).reshape(-1, d)
        with open(str(dat) + ".csv", newline="") as f:
            reader = csv.reader(f)
            next(reader)
            return feats, [r[1] for r in reader]

    def pq_polars() -> tuple[np.ndarray, list[str]]:
        df = pl.read_parquet(pq)
        return df["embedding"].list.to_array(d).to_numpy(), df["id"].to_list()

    def pq_naive() -> tuple[np.ndarray, list[str]]:
        df = pl.read_parquet(pq)
        return np.stack(df["embedding"].to_numpy()), df["id"].to_list()

    def mib(p: Path) -> str:
        return f"{p.stat().st_size / MIB:.0f} MiB"

    view_note = (
        "`np.ascontiguousarray` of a C-contiguous float32 memmap is the memmap itself: "
        "nothing is read until first use; `np.array` reads it"
    )
    benches = [
        LoaderBench(
            f".npy ({mib(npy)})",
            {
                "mmap": (
                    "`NumpyLoader().load` (mmap) + `np.ascontiguousarray`",
                    lambda: np.ascontiguousarray(NumpyLoader().load(npy).X),
                ),
                "mmap copy": (
                    "`NumpyLoader().load` (mmap) + `np.array` (reads the file)",
                    lambda: np.array(NumpyLoader().load(npy).X),
                ),
                "np.load": ("`np.load`", lambda: np.load(npy)),
            },
            [("mmap", "np.load"), ("mmap copy", "np.load")],
            ("npy-mmap", "npy-load", npy),
            view_note,
        ),
        LoaderBench(
            f"fastdup .dat ({mib(dat)}) + .csv",
            {
                "mmap": (
                    "`read_fastdup_features` (mmap, CSV checked) + `np.ascontiguousarray`",
                    lambda: np.ascontiguousarray(read_fastdup_features(dat).features),
                ),
                "mmap copy": (
                    "`read_fastdup_features` (mmap, CSV checked) + `np.array`",
                    lambda: np.array(read_fastdup_features(dat).features),
                ),
                "numpy": ("`np.fromfile` + `csv.reader`", fd_numpy),
            },
            [("mmap", "numpy"), ("mmap copy", "numpy")],
            ("fastdup-mmap", "fastdup-numpy", dat),
        ),
        LoaderBench(
            f"Parquet, list column ({mib(pq)})",
            {
                "loader": (
                    "`ParquetLoader().load` (X, ids, other columns)",
                    lambda: ParquetLoader().load(pq),
                ),
                "polars": ("`pl.read_parquet` + `.list.to_array(D).to_numpy()` + ids", pq_polars),
                "naive": ("`pl.read_parquet` + `np.stack(.to_numpy())` + ids", pq_naive),
            },
            [("loader", "polars"), ("loader", "naive")],
            ("parquet-loader", "parquet-polars", pq),
        ),
    ]
    rows: list[str] = []
    entry: dict[str, Any] = {}
    out["loaders"] = entry
    for b in benches:
        log(f"[loaders] {b.task}")
        res = measure_interleaved([(k, fn) for k, (_, fn) in b.cases.items()], args.repeats)
        timings = {label: t for label, (t, _) in res.items()}
        arrays = [first(r) for _, r in res.values()]
        same = all(np.array_equal(arrays[0], a) for a in arrays[1:])
        del res, arrays
        e: dict[str, Any] = {label: t.as_dict() for label, t in timings.items()}
        notes = [f"identical arrays: {same}"]
        if b.note:
            notes.append(b.note)
        if not args.skip_memory:
            ours_m, peer_m, path = b.children
            mo, mp = loader_memory(ours_m, path, d), loader_memory(peer_m, path, d)
            e.update(memory_simclust=mo, memory_peer=mp)
            notes.append(
                f"peak RSS in a fresh child (MiB): simclust {mem_note(mo)}, peer {mem_note(mp)}; "
                f"the array is {mo['input_bytes'] / MIB:.0f} MiB"
            )
        for i, (ours, peer) in enumerate(b.rows):
            rows.append(
                row(
                    b.task,
                    b.cases[ours][0],
                    timings[ours],
                    b.cases[peer][0],
                    timings[peer],
                    "; ".join(notes) if i == 0 else "",
                )
            )
        entry[b.task] = e
    return rows


# --------------------------------------------------------------------------- embed


def make_large_images(root: Path, n: int, seed: int, size: tuple[int, int]) -> list[Path]:
    """``n`` seeded JPEGs (quality 90): a smooth colour field, 4-11 random filled shapes
    (ellipses, rectangles, pentagons) and pixel noise (sigma 10), so that they do not compress
    to nothing."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    paths = []
    for i in range(n):
        field = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        img = Image.fromarray(field, "RGB").resize((w, h), Image.Resampling.BICUBIC)
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(4, 12))):
            cx, cy = float(rng.uniform(0, w)), float(rng.uniform(0, h))
            rx, ry = (float(v) for v in rng.uniform(30, 250, 2))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            kind = int(rng.integers(3))
            if kind == 0:
                draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=colour)
            elif kind == 1:
                draw.rectangle((cx - rx, cy - ry, cx + rx, cy + ry), fill=colour)
            else:
                angles = np.sort(rng.uniform(0, 2 * np.pi, 5))
                pts = [(cx + rx * float(np.cos(a)), cy + ry * float(np.sin(a))) for a in angles]
                draw.polygon(pts, fill=colour)
        noisy = np.asarray(img, np.float32) + rng.normal(0, 10, (h, w, 3)).astype(np.float32)
        path = root / f"large_{i:04d}.jpg"
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def phash_file(path: Path) -> Any:
    with Image.open(path) as im:
        return imagehash.phash(im)


def phash_all(paths: list[Path], threads: int) -> list[Any]:
    if threads == 1:
        return [phash_file(p) for p in paths]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(phash_file, paths))


def recall_at_1(
    df: pl.DataFrame, feats: np.ndarray, hashes: list[Any] | None, threads: int
) -> dict[str, Any]:
    """For each near-duplicate: is its source its nearest other image?

    Cosine: top-1 of ``ops.knn`` on the embeddings. phash: smallest Hamming distance; phash
    distances tie often (64 bits), so a tie counts as 1/(number of tied images) (the expected
    recall when ties are broken at random), and ``strict`` counts only a unique nearest.
    """
    paths = df["path"].to_list()
    index = {p: i for i, p in enumerate(paths)}
    dup = df.filter(pl.col("kind") == "near_duplicate")
    q = np.array([index[p] for p in dup["path"]])
    src = np.array([index[p] for p in dup["source"]])
    nn, _ = ops.knn(feats, 1, n_threads=threads)
    out: dict[str, Any] = {
        "near_duplicates": int(q.size),
        "cosine": float(np.mean(nn[q, 0].astype(np.int64) == src)),
    }
    if hashes is not None:
        bits = np.stack([np.packbits(np.asarray(h.hash, dtype=bool).ravel()) for h in hashes])
        words = np.ascontiguousarray(bits).view(">u8").ravel().astype(np.uint64)
        dist = np.bitwise_count(words[q][:, None] ^ words[None, :]).astype(np.int64)
        rows = np.arange(q.size)
        dist[rows, q] = 1 << 20  # not itself
        best = dist.min(axis=1)
        tied = (dist == best[:, None]).sum(axis=1)
        hit = dist[rows, src] == best
        out["phash"] = float(np.mean(np.where(hit, 1.0 / tied, 0.0)))
        out["phash_strict"] = float(np.mean(hit & (tied == 1)))
        out["phash_ties"] = int(np.sum(tied > 1))
        out["phash_source_distance_median"] = float(np.median(dist[rows, src]))
    return out


def bench_embed(args: argparse.Namespace, tmp: Path, out: dict[str, Any]):
    rows: list[str] = []
    summary: list[str] = []
    entry: dict[str, Any] = {}
    out["embed"] = entry
    root = tmp / "images"
    t0 = time.perf_counter()
    df = make_image_dataset(root, n_images=args.images, seed=0)
    synthetic = [root / p for p in df["path"].to_list()]
    log(f"[embed] make_image_dataset({args.images}) {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    w, h = args.large_size
    large = make_large_images(tmp / "large", args.large_images, args.seed, (w, h))
    log(f"[embed] {len(large)} JPEGs {w}x{h} {time.perf_counter() - t0:.1f} s")
    if imagehash is None:
        summary.append("imagehash is not installed (`.venv/bin/pip install imagehash`): no peer")
    embedder = PixelEmbedder()
    jobs = sorted({1, args.threads})
    results: dict[str, Any] = {}
    for name, paths in (
        (f"synthetic {len(synthetic):,} images ~96 px (png/jpg/webp)", synthetic),
        (f"{len(large):,} JPEGs {w}x{h}", large),
    ):
        cases: list[tuple[str, Callable[[], Any]]] = []
        for j in jobs:
            cases.append((f"simclust n_jobs={j}", lambda p=paths, j=j: embedder.embed(p, n_jobs=j)))
            if imagehash is not None:
                cases.append((f"phash threads={j}", lambda p=paths, j=j: phash_all(p, j)))
        log(f"[embed] {name}: PixelEmbedder.embed vs imagehash.phash")
        res = measure_interleaved(cases, args.repeats)
        e: dict[str, Any] = {}
        for j in jobs:
            st = res[f"simclust n_jobs={j}"][0]
            pt = res[f"phash threads={j}"][0] if imagehash is not None else None
            rate = len(paths) / st.median
            e[f"n_jobs={j}"] = {"simclust_s": st.as_dict(), "simclust_img_s": rate}
            notes = f"simclust {rate:,.0f} images/s"
            if paths is large:
                notes = f"{DRAFT_NOTE}; {notes}"
            if pt is not None:
                prate = len(paths) / pt.median
                e[f"n_jobs={j}"].update(phash_s=pt.as_dict(), phash_img_s=prate)
                notes += f", phash {prate:,.0f} images/s: throughput x{rate / prate:.2f}"
            rows.append(
                row(
                    f"embed {name}",
                    f"`PixelEmbedder().embed(paths, n_jobs={j})`",
                    st,
                    f"`imagehash.phash(Image.open(p))`, {j} thread(s)" if pt is not None else "-",
                    pt,
                    notes,
                )
            )
        entry[name] = e
        if paths is synthetic:
            results = {k: v[1] for k, v in res.items()}
    feats = results[f"simclust n_jobs={jobs[-1]}"].features
    hashes = results.get(f"phash threads={jobs[-1]}")
    rec = recall_at_1(df, feats, hashes, args.threads)
    entry["recall_at_1"] = rec
    notes = f"{rec['near_duplicates']} near-duplicates, top-1 among all {len(synthetic):,} images"
    peer = "-"
    if "phash" in rec:
        peer = f"phash Hamming: **{rec['phash']:.3f}**"
        notes += (
            f"; phash: strict (unique nearest) {rec['phash_strict']:.3f}, {rec['phash_ties']} "
            f"near-duplicates with tied nearest, median distance to the source "
            f"{rec['phash_source_distance_median']:.0f} bits; a tie counts 1/(tied images)"
        )
    rows.append(
        f"| near-duplicate -> source recall@1 | cosine `ops.knn(k=1)` on the embeddings | "
        f"**{rec['cosine']:.3f}** | {peer} | - | - | {notes} |"
    )
    return rows, summary


# --------------------------------------------------------------------------- demo


def bench_demo(args: argparse.Namespace, tmp: Path, out: dict[str, Any]):
    exe = Path(sys.executable).with_name("simclust")
    if not exe.exists():
        exe = Path(shutil.which("simclust") or "simclust")

    def run(*extra: str) -> str:
        folder = Path(tempfile.mkdtemp(prefix="demo_", dir=tmp))
        try:
            cmd = [str(exe), "demo", "--out", str(folder), *extra]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")
            return proc.stdout
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    log(f"[demo] {exe} demo --out <tmp> --quiet, {args.demo_repeats} run(s), no warm-up")
    timing, _ = measure("simclust demo", lambda: run("--quiet"), args.demo_repeats, warmup=False)
    log("[demo] one more run with --json for its stage timings (not timed here)")
    stages = json.loads(run("--json", "--quiet"))["timings_s"]
    ok = timing.max < DEMO_TARGET_S
    out["demo"] = {"seconds": timing.as_dict(), "stages_s": stages, "within_target": ok}
    staged = ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
    return [
        row(
            "end to end: `simclust demo --out <tmp> --quiet` (subprocess)",
            "3000 generated images -> analyze -> write + report",
            timing,
            "-",
            None,
            f"{args.demo_repeats} run(s), no warm-up; target < {DEMO_TARGET_S:.0f} s: "
            f"{'OK' if ok else 'OVER'} (slowest run); stages "
            f"of a --json run (s): {staged}",
        )
    ]


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = bench_parser(__doc__, TASKS, n_help="rows of the embedding dataset (default 100,000)")
    p.set_defaults(n=None, repeats=None)
    p.add_argument(
        "--clusters",
        type=int,
        default=None,
        help="make_embeddings n_clusters (default n // 100: ~19 edges per row at 0.9)",
    )
    p.add_argument("--threshold", type=float, default=0.9, help="connected-components threshold")
    p.add_argument("--images", type=int, default=None, help="synthetic images (default 3000)")
    p.add_argument("--large-images", type=int, default=None, help="large JPEGs (default 200)")
    p.add_argument("--large-size", default="1024x768", help="large JPEG size WxH")
    p.add_argument("--demo-repeats", type=int, default=None, help="timed demo runs (default 3)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sizes for a check: N=10,000, 600 + 20 images, 2 repeats, 1 demo run",
    )
    p.add_argument("--skip-memory", action="store_true", help="skip the child memory runs")
    p.add_argument("--json", type=Path, default=None, help="write all numbers to this file")
    args = p.parse_args(argv)
    args.tasks = parse_tasks(p, args.only, TASKS)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.clusters is None:
        args.clusters = max(1, args.n // 100)
    try:
        w, h = (int(v) for v in args.large_size.lower().split("x"))
    except ValueError:
        p.error(f"--large-size must be WxH, got {args.large_size!r}")
    args.large_size = (w, h)
    if min(args.repeats, args.threads, args.demo_repeats) < 1:
        p.error("--repeats, --threads and --demo-repeats must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    rows: list[str] = []
    stages: list[str] = []
    summary: list[str] = []
    with thread_limits(args.threads), tempfile.TemporaryDirectory(prefix="simclust_bench_") as td:
        tmp = Path(td)
        modules = ("numpy", "polars", "PIL", *(("imagehash",) if imagehash is not None else ()))
        info, _pools = report_machine(args.threads, modules)
        out["machine"] = info
        x = None
        if "pipeline" in args.tasks or "loaders" in args.tasks:
            t0 = time.perf_counter()
            x = make_embeddings(args.n, args.d, n_clusters=args.clusters, seed=args.seed)
            gen_s = time.perf_counter() - t0
            log(f"[data] make_embeddings N={args.n:,} D={args.d} {gen_s:.1f} s")
            summary.append(
                f"data: make_embeddings({args.n:,}, {args.d}, n_clusters={args.clusters:,}, "
                f"seed={args.seed}), {x.nbytes / MIB:.0f} MiB float32"
            )
        if "pipeline" in args.tasks and x is not None:
            r, stages = bench_pipeline(args, x, tmp, out)
            rows += r
        if "loaders" in args.tasks and x is not None:
            rows += bench_loaders(args, x, tmp, out)
        del x
        if "embed" in args.tasks:
            r, s = bench_embed(args, tmp, out)
            rows += r
            summary += s
        if "demo" in args.tasks:
            rows += bench_demo(args, tmp, out)
    print(
        f"## Results (threads={args.threads}; {args.repeats} timed runs, interleaved round-robin "
        "after one warm-up; the pipeline warm-up is at 5,000 rows)"
    )
    print(HEADER)
    print("\n".join(rows))
    if stages:
        print(f"\n## Pipeline stages (median of {args.repeats} runs each)")
        print("\n".join(stages))
    print()
    for line in summary:
        print(f"- {line}")
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2, default=str))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
