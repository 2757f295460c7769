"""Similarities at the ends of [-1, 1], normalisation, threads, memory and SIMD paths.

Each test checks a value against an independent numpy reference (float64 cosines).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from simclust import analyze, ops
from simclust.exceptions import OutOfMemoryError, ParameterError


def _cos64(x: np.ndarray) -> np.ndarray:
    """Cosine similarities in float64 (the reference)."""
    x = x.astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x @ x.T


def _with_copies(seed: int = 0, n: int = 60, d: int = 384) -> np.ndarray:
    """Rows, their exact duplicates and positively scaled copies (3 x n rows)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    scale = rng.uniform(0.01, 100.0, size=(n, 1)).astype(np.float32)
    return np.vstack([x, x.copy(), x * scale])


def test_threshold_one_finds_every_duplicate_and_scaled_copy() -> None:
    x = _with_copies()
    n = x.shape[0] // 3
    src, dst, sim = ops.threshold_edges(x, 1.0)
    got = set(zip(src.tolist(), dst.tolist(), strict=True))
    want = {(i, i + n) for i in range(n)} | {(i, i + 2 * n) for i in range(n)}
    want |= {(i + n, i + 2 * n) for i in range(n)}
    assert got == want
    assert np.all(sim == 1.0)
    # the reference agrees: every one of these pairs has float64 cosine 1 to 1e-12
    ref = _cos64(x)
    assert all(abs(ref[a, b] - 1.0) < 1e-12 for a, b in want)


def test_knn_gives_exactly_one_for_identical_directions() -> None:
    x = _with_copies(seed=1, n=40, d=64)
    idx, sim = ops.knn(x, 2)
    assert np.all(sim == 1.0)
    n = x.shape[0] // 3
    for row in range(n):
        assert set(idx[row].tolist()) == {row + n, row + 2 * n}


@pytest.mark.parametrize("d", [3, 64, 768])
def test_every_similarity_lies_in_minus_one_one(d: int) -> None:
    rng = np.random.default_rng(d)
    x = rng.normal(size=(300, d)).astype(np.float32)
    x = np.vstack([x, -x, x * 7.0])  # antipodal and scaled copies
    _, _, sim = ops.threshold_edges(x, -1.0)
    assert sim.min() >= -1.0 and sim.max() <= 1.0
    assert np.sum(sim == 1.0) >= 300  # each row and its scaled copy
    ref = _cos64(x)
    iu = np.triu_indices(x.shape[0], 1)
    np.testing.assert_allclose(np.sort(sim), np.sort(ref[iu]), atol=1e-5)


def test_cluster_metrics_report_exact_one_for_duplicates() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(size=(5, 128)).astype(np.float32)
    x = np.repeat(base, 4, axis=0) * rng.uniform(0.5, 2.0, size=(20, 1)).astype(np.float32)
    labels = np.repeat(np.arange(5), 4)
    st = ops.intra_stats(x, labels)
    assert st["sim_min"].to_list() == [1.0] * 5
    assert st["sim_max"].to_list() == [1.0] * 5
    cs = ops.centroid_stats(x, labels)
    assert cs.rows["centroid_similarity"].to_list() == [1.0] * 20
    res = analyze(x, threshold=1.0, metrics=["intra", "centroid"])
    assert res.clusters["size"].to_list() == [4] * 5
    assert res.clusters["sim_min"].to_list() == [1.0] * 5
    assert res.assignments["centroid_similarity"].to_list() == [1.0] * 20


def test_normalising_twice_gives_the_same_bits() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2000, 384)).astype(np.float32) * 3.0
    once = ops.normalize(x)
    np.testing.assert_array_equal(ops.normalize(once), once)
    np.testing.assert_allclose(np.linalg.norm(once.astype(np.float64), axis=1), 1.0, atol=1e-6)


def test_analyze_equals_ops_on_raw_rows_for_kmeans_silhouette() -> None:
    """The run normalises once; a metric given the unit rows does not change them."""
    from simclust.testing import make_embeddings

    x = make_embeddings(600, 48, n_clusters=5, seed=2)
    res = analyze(x, strategy="kmeans", n_clusters=5, metrics=["silhouette"])
    labels = res.assignments["cluster"].to_numpy()
    sil = ops.silhouette(x, labels)
    np.testing.assert_array_equal(
        res.assignments["silhouette"].to_numpy(), sil.rows["silhouette"].to_numpy()
    )


# --------------------------------------------------------------------------- threads


def test_thread_counts_are_bounded_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ops.resolve_threads(3) == 3
    cap = max(256, 4 * (os.cpu_count() or 1))
    with pytest.raises(ParameterError, match="more than the"):
        ops.resolve_threads(10**9)
    with pytest.raises(ParameterError, match="more than the"):
        ops.knn(np.eye(4, dtype=np.float32), 1, n_threads=cap + 1)
    for bad in ("abc", "0", "-1", "1e9", "2.5"):
        monkeypatch.setenv("SIMCLUST_NUM_THREADS", bad)
        with pytest.raises(ParameterError, match="SIMCLUST_NUM_THREADS"):
            ops.knn(np.eye(4, dtype=np.float32), 1)
    monkeypatch.setenv("SIMCLUST_NUM_THREADS", "2")
    assert ops.resolve_threads() == 2


# --------------------------------------------------------------------------- memory


def test_an_impossible_allocation_is_an_error_not_an_abort() -> None:
    mode = Path("/proc/sys/vm/overcommit_memory")
    if not mode.exists() or mode.read_text().strip() == "1":
        pytest.skip("with unconditional overcommit a huge reservation cannot fail")
    with pytest.raises(OutOfMemoryError, match=r"cannot allocate .* GB"):
        ops.connected_components(4_000_000_000, [], [])
    assert issubclass(OutOfMemoryError, MemoryError)


# --------------------------------------------------------------------------- k-means


@pytest.mark.parametrize("factor", [1e20, 1e-25])
def test_euclidean_kmeans_on_extreme_magnitudes(factor: float) -> None:
    from simclust.testing import make_embeddings
    from sklearn.cluster import KMeans as SkKMeans

    x = make_embeddings(400, 8, n_clusters=4, seed=5)
    init = x[[0, 100, 200, 300]]
    ref = SkKMeans(4, init=init, n_init=1, max_iter=300, tol=0).fit(x.astype(np.float64))
    labels, centroids, objective, _ = ops.kmeans(
        (x * factor).astype(np.float32),
        4,
        metric="euclidean",
        init=(init * factor).astype(np.float32),
        tol=0.0,
        max_iter=300,
    )
    np.testing.assert_array_equal(labels, ref.labels_)
    np.testing.assert_allclose(
        centroids, ref.cluster_centers_ * factor, rtol=1e-4, atol=1e-4 * factor
    )
    np.testing.assert_allclose(objective, ref.inertia_ * factor**2, rtol=1e-4)


# --------------------------------------------------------------------------- SIMD paths

_PORTABLE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from simclust import ops
    from simclust.testing import make_embeddings
    x = make_embeddings(1500, 96, n_clusters=8, seed=9)
    idx, sim = ops.knn(x, 5)
    src, dst, s = ops.threshold_edges(x, 0.8)
    labels = ops.kmeans(x, 8, random_state=0)[0]
    st = ops.intra_stats(x, labels)
    np.savez(sys.argv[1], idx=idx, sim=sim, src=src, dst=dst, s=s,
             labels=labels, sim_mean=st["sim_mean"].to_numpy())
    """
)


def _run_with_simd(setting: str | None, out: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("SIMCLUST_SIMD", None)
    if setting is not None:
        env["SIMCLUST_SIMD"] = setting
    return subprocess.run(
        [sys.executable, "-c", _PORTABLE_SCRIPT, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_portable_simd_path_agrees_with_the_dispatched_one(tmp_path: Path) -> None:
    fast, portable = tmp_path / "fast.npz", tmp_path / "portable.npz"
    for setting, out in ((None, fast), ("portable", portable)):
        proc = _run_with_simd(setting, out)
        assert proc.returncode == 0, proc.stderr
    a, b = np.load(fast), np.load(portable)
    # the exact self-kNN lists the one exact per-pair similarity on every path
    np.testing.assert_array_equal(a["idx"], b["idx"])
    np.testing.assert_array_equal(a["sim"], b["sim"])
    # the other kernels: different summation orders, equal to rounding, not bit for bit
    np.testing.assert_allclose(a["sim_mean"], b["sim_mean"], atol=1e-6)
    assert abs(len(a["s"]) - len(b["s"])) <= 0.001 * len(a["s"]) + 2
    assert (a["labels"] == b["labels"]).mean() > 0.99


def test_invalid_simd_setting_is_an_error(tmp_path: Path) -> None:
    proc = _run_with_simd("avx9000", tmp_path / "x.npz")
    assert proc.returncode != 0
    assert "SIMCLUST_SIMD must be 'auto' or 'portable'" in proc.stderr
