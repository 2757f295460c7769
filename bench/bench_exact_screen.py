"""Exact self-kNN (screened) against faiss IndexFlatIP on the same matrix.

simclust ``ops.knn(X, k)`` screens every pair (bf16 tiles with AMX where the CPU has it, else
int16 dot products with AVX-512 VNNI or AVX2, else the float32 GEMM; ``SIMCLUST_SIMD=portable``
forces the portable GEMM) and
recomputes in float64 every pair that could be listed. faiss ``IndexFlatIP`` is add + search
k+1 + drop self. Both run round-robin (A B A B ...) with the same thread count, no warm-up (a
warm-up would be a full run of each); the table shows medians and min-max, and the ratio.

    .venv/bin/python bench/bench_exact_screen.py                 # 100,000 x 384, k = 10
    .venv/bin/python bench/bench_exact_screen.py --n 20000       # quick check

``--file PATH`` searches a raw float32 file of ``--d`` columns instead of
``make_embeddings(n, d, seed)`` (the Rust timing test ``knn_timing`` writes its rows to
/tmp/x100k.f32). The check line compares the k-th similarity of every row: simclust's is exact,
faiss' is a float32 GEMM value, so they agree to float32 rounding.
"""

from __future__ import annotations

import argparse
import os

import _common  # noqa: F401  (first: removes OPENBLAS_* from the environment before numpy loads)
import numpy as np
from _common import (
    bench_parser,
    import_simclust_ops,
    log,
    measure_interleaved,
    report_machine,
    thread_limits,
)
from datasets import make_embeddings


def main() -> None:
    p = bench_parser(__doc__, ("knn",))
    p.add_argument("--k", type=int, default=10, help="neighbours per row")
    p.add_argument("--file", default=None, help="raw float32 rows (--d columns) to search")
    args = p.parse_args()
    ops, error = import_simclust_ops()
    if ops is None:
        raise SystemExit(f"simclust.ops does not import: {error}")
    import faiss

    x = load(args)
    n, d, k = x.shape[0], x.shape[1], args.k
    with thread_limits(args.threads):
        report_machine(args.threads, ("numpy", "faiss"), loadavg=True, pool_details=False)
        print(f"SIMCLUST_SIMD={os.environ.get('SIMCLUST_SIMD', '(unset: auto)')}")
        print(f"N={n} D={d} k={k} threads={args.threads} repeats={args.repeats}\n")

        def run_faiss() -> tuple[np.ndarray, np.ndarray]:
            index = faiss.IndexFlatIP(d)
            index.add(x)
            return index.search(x, k + 1)

        log(f"exact self-kNN N={n} D={d} k={k}")
        res = measure_interleaved(
            [
                ("simclust ops.knn", lambda: ops.knn(x, k, n_threads=args.threads)),
                ("faiss IndexFlatIP", run_faiss),
            ],
            args.repeats,
            warmup=False,
        )
    (t_sc, (_, sim)), (t_fa, (dist, _)) = res["simclust ops.knn"], res["faiss IndexFlatIP"]
    print("| method | median s | min-max s |")
    print("| --- | --- | --- |")
    for label, t in (("simclust ops.knn", t_sc), ("faiss IndexFlatIP", t_fa)):
        print(f"| {label} | {t.median:.2f} | {t.min:.2f}-{t.max:.2f} |")
    print(f"\nsimclust / faiss: {t_sc.median / t_fa.median:.3f}")
    # faiss lists self first (similarity ~1; a duplicate may take its place, same value)
    gap = np.abs(sim[:, k - 1].astype(np.float64) - dist[:, k].astype(np.float64))
    print(f"check: largest |k-th similarity simclust - faiss| = {gap.max():.2e}")


def load(args: argparse.Namespace) -> np.ndarray:
    """The rows to search: ``--file`` or seeded clustered embeddings."""
    if args.file is None:
        log(f"make_embeddings({args.n}, {args.d}, seed={args.seed})")
        return make_embeddings(args.n, args.d, seed=args.seed)
    x = np.fromfile(args.file, dtype=np.float32)
    if x.size % args.d:
        raise SystemExit(f"{args.file}: {x.size} floats is not a multiple of --d {args.d}")
    return x.reshape(-1, args.d)


if __name__ == "__main__":
    main()
