"""The simclust demo: exact structure of a synthetic clustered embedding set.

Run with ``python -m simclust.demo [--n 20000] [--d 384] [--out out/demo]``
(``make demo`` does it on a fresh machine). It generates seeded, realistic
embeddings (clusters of varying size and spread, near-duplicates, outliers),
then computes the exact 10-NN graph, the ε-graph at cosine 0.9, its
connected components with their bridge similarity, and a threshold sweep,
prints a summary and writes the frames as Parquet files.

Example:
    >>> summary = main(["--n", "2000", "--d", "32", "--out", ""])  # doctest: +ELLIPSIS
    simclust ...
    >>> summary["n_rows"]
    2000

"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from simclust import __version__, frames, ops
from simclust.testing.datasets import make_embeddings


def _timed(label: str, timings: dict[str, float], fn: Any, *args: Any, **kwargs: Any) -> Any:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    timings[label] = time.perf_counter() - start
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the demo; return the summary it prints (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m simclust.demo", description=__doc__)
    parser.add_argument("--n", type=int, default=20_000, help="rows (default 20000)")
    parser.add_argument("--d", type=int, default=384, help="dimension (default 384)")
    parser.add_argument("--k", type=int, default=10, help="neighbours per row (default 10)")
    parser.add_argument("--threshold", type=float, default=0.9, help="ε-graph cosine threshold")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default="out/demo", help="output folder ('' to skip writing)")
    args = parser.parse_args(argv)

    timings: dict[str, float] = {}
    x = _timed("generate", timings, make_embeddings, args.n, args.d, seed=args.seed)
    idx, sim = _timed("knn", timings, ops.knn, x, args.k, n_threads=args.threads)
    src, dst, s = _timed(
        "epsilon_graph", timings, ops.threshold_edges, x, args.threshold, n_threads=args.threads
    )
    labels = _timed("components", timings, ops.connected_components, len(x), src, dst)
    bridge = _timed("bridge", timings, ops.bridge_similarity, len(x), src, dst, s, labels)
    thresholds = np.round(np.arange(0.99, args.threshold - 1e-6, -0.01), 2)
    sweep = _timed("sweep", timings, ops.threshold_sweep, len(x), src, dst, s, thresholds)

    sizes = np.bincount(labels)
    comps = pl.DataFrame(
        {
            "component": pl.Series(np.arange(len(sizes)), dtype=pl.Int64),
            "size": pl.Series(sizes, dtype=pl.UInt32),
            "bridge_similarity": pl.Series(bridge, dtype=pl.Float32, nan_to_null=True),
        }
    )
    multi = comps.filter(pl.col("size") > 1)
    summary: dict[str, Any] = {
        "n_rows": len(x),
        "dim": x.shape[1],
        "knn_mean_similarity_rank0": float(sim[:, 0].mean()),
        "edges": len(src),
        "components": len(sizes),
        "singletons": int((sizes == 1).sum()),
        "largest_component": int(sizes.max()),
        "chained_components": int((multi["bridge_similarity"] < args.threshold + 0.01).sum()),
        "timings_s": {key: round(v, 3) for key, v in timings.items()},
    }
    print(f"simclust {__version__} demo: {len(x):,} x {x.shape[1]} embeddings (seed {args.seed})")
    print(f"  exact {args.k}-NN: mean top-1 cosine {summary['knn_mean_similarity_rank0']:.3f}")
    print(f"  ε-graph at cosine >= {args.threshold}: {len(src):,} edges")
    print(
        f"  components: {summary['components']:,} ({summary['singletons']:,} singletons, "
        f"largest {summary['largest_component']:,}); {summary['chained_components']:,} held "
        f"together by a bridge within 0.01 of the threshold"
    )
    print("  threshold sweep:")
    for row in sweep.iter_rows(named=True):
        print(
            f"    t={row['threshold']:.2f}  components={row['n_components']:>7,}  "
            f"largest={row['largest_component']:>6,}"
        )
    print("  timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in summary["timings_s"].items()))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        frames.edges_frame(src, dst, s).write_parquet(out / "edges.parquet")
        frames.neighbors_frame(idx, sim).write_parquet(out / "neighbors.parquet")
        comps.write_parquet(out / "components.parquet")
        sweep.write_parquet(out / "sweep.parquet")
        print(f"  wrote edges, neighbors, components and sweep Parquet files to {out}/")
    return summary


if __name__ == "__main__":
    main()
