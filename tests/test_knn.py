# ruff: noqa: N803, N806  (X, Y, S, C: the field's matrix notation)
"""Exact cosine kNN (self-search and query search) against numpy brute force."""

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest
from _reference import (
    SIZES_D,
    SIZES_N,
    cached_clustered,
    check_knn,
    clustered_embeddings,
    exact_embeddings,
    gaussian_embeddings,
    ref_sims,
)
from simclust import ops
from simclust.exceptions import ParameterError, ShapeError


def _ks(n_candidates):
    """k = 1, a typical k, and the largest allowed k."""
    return sorted({1, min(10, n_candidates), n_candidates})


# k = N - 1 is exercised up to N = 1000 (at N = 2500 it only costs time)
SELF_CASES = [
    (n, d, k)
    for n in SIZES_N
    if n > 1
    for d in SIZES_D
    for k in _ks(n - 1)
    if not (n == 2500 and k == n - 1)
]


@pytest.mark.parametrize(("n", "d", "k"), SELF_CASES)
def test_self_knn_clustered(n, d, k):
    """Self-search on clustered embeddings (dups, near-dups, outliers), self excluded."""
    X, S = cached_clustered(1, n, d)
    idx, sim = ops.knn(X, k)
    check_knn(idx, sim, S, k, exclude_self=True)


@pytest.mark.parametrize(("n", "d"), [(1000, 64), (2500, 384), (513, 3)])
def test_self_knn_indices_mostly_compared_exactly(n, d):
    """On tie-free Gaussian data nearly every row's neighbour list is checked index by index."""
    X = gaussian_embeddings(2, n, d)
    S = ref_sims(X)
    idx, sim = ops.knn(X, 10)
    n_exact = check_knn(idx, sim, S, 10, exclude_self=True)
    assert n_exact >= 0.8 * n


@pytest.mark.parametrize("d", [16, 64])
@pytest.mark.parametrize("n", [2, 7, 200, 513, 1000])
def test_self_knn_exact_ties_lower_index_first(n, d):
    """Dyadic data (exact float32 similarities, many exact ties, duplicates and
    antipodes): neighbours and similarities match the reference exactly."""
    X = exact_embeddings(3 + n + d, n, d, n_dups=n // 5)
    S = ref_sims(X)
    for k in _ks(n - 1):
        idx, sim = ops.knn(X, k)
        check_knn(idx, sim, S, k, exclude_self=True, exact=True)


def test_self_knn_all_rows_identical():
    """N copies of one vector: every other row is a neighbour at similarity exactly 1,
    in increasing index order."""
    n = 37
    X = np.tile(np.array([1, -1, 1, 1, -1, -1, 1, 1, 1, -1, 1, -1, 1, 1, 1, 1], np.float32), (n, 1))
    idx, sim = ops.knn(X, n - 1)
    want = np.array([[j for j in range(n) if j != i] for i in range(n)], dtype=np.uint32)
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_array_equal(sim, np.ones((n, n - 1), np.float32))


def test_self_knn_orthogonal_one_hot():
    """One-hot rows: all similarities exactly 0, neighbours are the lowest other indices."""
    n = 20
    X = np.eye(n, dtype=np.float32)
    idx, sim = ops.knn(X, 3)
    want = np.array([[j for j in range(n) if j != i][:3] for i in range(n)], dtype=np.uint32)
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_array_equal(sim, np.zeros((n, 3), np.float32))


def test_self_knn_n2():
    """Two rows: each is the other's only neighbour."""
    X = np.array([[1.0, 2.0, 3.0], [-3.0, 0.5, 1.0]], np.float32)
    idx, sim = ops.knn(X, 1)
    np.testing.assert_array_equal(idx, np.array([[1], [0]], np.uint32))
    s = ref_sims(X)[0, 1]
    np.testing.assert_allclose(sim, [[s], [s]], atol=1e-6, rtol=0)


QUERY_CASES = [
    (1, 1, 3),
    (1, 7, 64),
    (7, 1, 384),
    (7, 2500, 64),
    (2500, 7, 3),
    (513, 1000, 384),
    (1000, 513, 1),
    (2500, 1000, 64),
]


@pytest.mark.parametrize(("n", "m", "d"), QUERY_CASES)
def test_query_knn(n, m, d):
    """X vs Y search on clustered data, no exclusion, k up to M."""
    X = clustered_embeddings(10 + n, n, d)
    Y = clustered_embeddings(20 + m, m, d)
    S = ref_sims(X, Y)
    for k in _ks(m):
        idx, sim = ops.knn(X, k, Y=Y)
        check_knn(idx, sim, S, k, exclude_self=False)


@pytest.mark.parametrize(("n", "d"), [(1000, 64), (513, 384), (2500, 3)])
def test_query_knn_y_is_x_has_self_first(n, d):
    """With Y = X the row itself is included, at rank 0 with similarity ~1."""
    X = gaussian_embeddings(30 + n, n, d)
    S = ref_sims(X)
    idx, sim = ops.knn(X, 5, Y=X)
    check_knn(idx, sim, S, 5, exclude_self=False)
    np.testing.assert_allclose(sim[:, 0], 1.0, atol=1e-5, rtol=0)
    # rows whose best other neighbour is clearly below 1 must have themselves first
    S2 = S.copy()
    np.fill_diagonal(S2, -np.inf)
    clear = S2.max(axis=1) < 1 - 1e-5
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(idx[clear, 0], np.arange(n)[clear])


@pytest.mark.parametrize(("n", "m", "d"), [(300, 200, 16), (7, 513, 64), (513, 7, 16)])
def test_query_knn_exact_ties(n, m, d):
    """Query search on dyadic data: exact indices/similarities, ties by lower index."""
    X = exact_embeddings(40 + n, n, d, n_dups=n // 5)
    Y = exact_embeddings(50 + m, m, d, n_dups=m // 5)
    Y[: min(n, m) // 3] = X[: min(n, m) // 3]  # some queries have exact copies in Y
    S = ref_sims(X, Y)
    for k in _ks(m):
        idx, sim = ops.knn(X, k, Y=Y)
        check_knn(idx, sim, S, k, exclude_self=False, exact=True)


def test_query_knn_y_is_x_exact_duplicates():
    """Y = X with exact duplicate rows: rank 0 is the lowest index among the copies."""
    X = exact_embeddings(60, 300, 16, n_dups=60)
    S = ref_sims(X)
    idx, sim = ops.knn(X, 4, Y=X)
    check_knn(idx, sim, S, 4, exclude_self=False, exact=True)
    assert (idx[:, 0] < np.arange(300)).any()  # the case actually occurs


def test_knn_extreme_row_scales():
    """Rows scaled by 1e-39 (subnormal) .. 1e37: squared norms far outside the
    float32 range, yet neighbours and similarities match the reference."""
    X = gaussian_embeddings(70, 400, 32)
    exponents = np.random.default_rng(71).choice([-39, -25, -10, 0, 10, 25, 37], 400)
    scale = (10.0**exponents).astype(np.float32)
    Xs = X * scale[:, None]
    assert np.isfinite(Xs).all() and (np.abs(Xs).max(axis=1) > 0).all()
    S = ref_sims(Xs)
    idx, sim = ops.knn(Xs, 8)
    check_knn(idx, sim, S, 8, exclude_self=True)


@pytest.mark.parametrize(("n", "d"), [(2500, 64), (1000, 384), (513, 3), (7, 1)])
def test_knn_bitwise_identical_across_thread_counts(n, d):
    """Self and query kNN are bit-identical for n_threads = 1, 2, 3 and default."""
    X, _ = cached_clustered(1, n, d)
    k = min(15, n - 1)
    runs = [ops.knn(X, k, n_threads=t) for t in (1, 2, 3, None)]
    for idx, sim in runs[1:]:
        assert np.array_equal(idx, runs[0][0])
        assert np.array_equal(sim, runs[0][1])
    Y = np.ascontiguousarray(X[::-3])
    kq = min(k, Y.shape[0])
    runs = [ops.knn(X, kq, Y=Y, n_threads=t) for t in (1, 2, 3, None)]
    for idx, sim in runs[1:]:
        assert np.array_equal(idx, runs[0][0])
        assert np.array_equal(sim, runs[0][1])


# ------------------------------------------------- screened self-search: near-ties


def _near_tie_unit_rows(seed: int, n: int, d: int, k: int) -> np.ndarray:
    """Unit float32 rows (kept as they are by simclust) with clustered rows, a cloud of
    200 rows whose similarities to each other all lie within ~1e-3 (far inside the
    bf16, int16 and float32 screening error bounds) and ``2 k`` exact copies of one row."""
    rng = np.random.default_rng(seed)
    X = clustered_embeddings(seed, n, d).astype(np.float64)
    u = rng.standard_normal(d)
    X[:200] = u / np.linalg.norm(u) + 0.03 * rng.standard_normal((200, d)) / np.sqrt(d)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    X = X.astype(np.float32)
    X[300 : 300 + 2 * k] = X[250]
    return X


def _check_exact_lists(X: np.ndarray, idx: np.ndarray, sim: np.ndarray, k: int) -> None:
    """The lists of the exact self-kNN: every similarity is the float64 cosine of the
    (float32) rows rounded, and no row left out is more similar than the k-th."""
    X64 = X.astype(np.float64)
    nrm = np.linalg.norm(X64, axis=1)
    S = (X64 @ X64.T) / np.outer(nrm, nrm)
    np.fill_diagonal(S, -np.inf)
    ii = idx.astype(np.int64)
    one_ulp = 2.0**-24
    np.testing.assert_allclose(sim, np.take_along_axis(S, ii, axis=1), atol=one_ulp, rtol=0)
    left_out = S.copy()
    np.put_along_axis(left_out, ii, -np.inf, axis=1)
    assert (left_out.max(axis=1) <= sim[:, -1] + one_ulp).all(), "a closer row was left out"
    dsim = np.diff(sim.astype(np.float64), axis=1)
    assert (dsim <= 0).all()
    assert (np.diff(ii, axis=1)[dsim == 0] > 0).all(), "tie not broken by the lower index"


def test_self_knn_is_exact_on_near_ties_and_duplicates():
    """Screened self-kNN (bf16, int16 or float32 screen, then exact re-check) against a
    float64 brute force, on data whose near-ties no screen can rank."""
    n, d, k = 2300, 384, 10
    X = _near_tie_unit_rows(5, n, d, k)
    assert ops.normalize(X, copy=False) is X  # the rows are searched as they are
    idx, sim = ops.knn(X, k)
    _check_exact_lists(X, idx, sim, k)
    check_knn(idx, sim, ref_sims(X), k, exclude_self=True)
    # more than k exact copies: similarity exactly 1, the lowest other copies first
    copies = [250, *range(300, 300 + 2 * k)]
    for row in copies:
        np.testing.assert_array_equal(idx[row], [c for c in copies if c != row][:k])
        np.testing.assert_array_equal(sim[row], np.ones(k, np.float32))


_SIMD_KNN_SCRIPT = """
import sys
import numpy as np
from simclust import ops
x = np.load(sys.argv[1])
k = int(sys.argv[2])
runs = [ops.knn(x, k, n_threads=t) for t in (1, 2)]
np.savez(sys.argv[3], idx1=runs[0][0], sim1=runs[0][1], idx2=runs[1][0], sim2=runs[1][1])
"""


def test_self_knn_is_bit_identical_on_every_simd_path(tmp_path):
    """The dispatched path (bf16 AMX screen where the CPU has it, else int16 with VNNI
    or AVX2, else the float32 GEMM) and the portable one list the same neighbours and
    similarities, bit for bit (every listed value is the one exact per-pair similarity),
    for 1 and 2 threads."""
    n, d, k = 2300, 384, 10
    X = _near_tie_unit_rows(6, n, d, k)
    np.save(tmp_path / "x.npy", X)
    out = {}
    for setting in ("auto", "portable"):
        env = {**os.environ, "SIMCLUST_SIMD": setting}
        path = tmp_path / f"{setting}.npz"
        proc = subprocess.run(
            [sys.executable, "-c", _SIMD_KNN_SCRIPT, str(tmp_path / "x.npy"), str(k), str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        out[setting] = np.load(path)
    a, b = out["auto"], out["portable"]
    for r in (a, b):
        np.testing.assert_array_equal(r["idx1"], r["idx2"])
        np.testing.assert_array_equal(r["sim1"], r["sim2"])
    np.testing.assert_array_equal(a["idx1"], b["idx1"])
    np.testing.assert_array_equal(a["sim1"], b["sim1"])
    _check_exact_lists(X, a["idx1"], a["sim1"], k)


def test_pair_similarity_is_the_knn_value_and_the_float64_cosine():
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((300, 33)) * rng.uniform(0.1, 50, (300, 1))).astype(np.float32)
    x[5] = x[4] * 3.0  # same direction: exactly 1
    idx, sim = ops.knn(x, 6, n_threads=2)
    a = np.repeat(np.arange(300), 6)
    got = ops.pair_similarity(x, a, idx.ravel(), n_threads=1)
    # the kNN lists' values, bit for bit
    np.testing.assert_array_equal(got, sim.ravel())
    x64 = x.astype(np.float64)
    ref = np.einsum("ij,ij->i", x64[a], x64[idx.ravel()]) / (
        np.linalg.norm(x64[a], axis=1) * np.linalg.norm(x64[idx.ravel()], axis=1)
    )
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-7)
    assert ops.pair_similarity(x, [4], [5])[0] == 1.0
    assert ops.pair_similarity(x, [], []).shape == (0,)


def test_pair_similarity_bad_input_names_the_problem():
    from simclust.exceptions import InvalidInputError, ParameterError, ShapeError

    x = np.eye(3, dtype=np.float32)
    with pytest.raises(ShapeError, match="same length"):
        ops.pair_similarity(x, [0, 1], [1])
    with pytest.raises(ParameterError, match=r"b\[1\] = 3 is not a row of X"):
        ops.pair_similarity(x, [0, 1], [1, 3])
    x[2] = 0.0
    with pytest.raises(InvalidInputError, match="zero norm"):
        ops.pair_similarity(x, [0], [2])
    x[2, 1] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        ops.pair_similarity(x, [2], [0])


def _merged(lists: list[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row the ``k`` best of several ``(indices, similarities)`` lists of global rows
    (similarity descending, ties to the lower index; padding ``2**32 - 1`` dropped)."""
    ci = np.concatenate([i.astype(np.int64) for i, _ in lists], axis=1)
    cs = np.concatenate([s.astype(np.float64) for _, s in lists], axis=1)
    cs[ci == 2**32 - 1] = -np.inf
    order = np.lexsort((ci, -cs), axis=-1)[:, :k]
    return (
        np.take_along_axis(ci, order, axis=1).astype(np.uint32),
        np.take_along_axis(cs, order, axis=1).astype(np.float32),
    )


@pytest.mark.parametrize(
    "case",
    ["near ties and copies", "copies across blocks", "clustered, ragged blocks", "k above a block"],
)
def test_knn_between_block_pairs_merge_to_the_self_knn_bit_for_bit(case):
    """The self-kNN of each block and ``knn_between`` of each pair of blocks, merged per
    row, are ``ops.knn`` of the whole matrix: the same indices and similarity bits."""
    if case == "near ties and copies":
        X, k, cuts = _near_tie_unit_rows(8, 2300, 96, 10), 10, [0, 1024, 2048, 2300]
    elif case == "copies across blocks":
        base = clustered_embeddings(9, 1200, 24)
        X, k, cuts = np.concatenate([base, base, base[:150]]), 6, [0, 1024, 2048, 2550]
    elif case == "clustered, ragged blocks":  # blocks not on tile boundaries: same values
        X, k, cuts = clustered_embeddings(10, 1500, 40), 9, [0, 333, 1100, 1500]
    else:
        X, k, cuts = clustered_embeddings(11, 400, 16), 12, [0, 7, 390, 400]
    want_idx, want_sim = ops.knn(X, k, n_threads=2)
    blocks = list(itertools.pairwise(cuts))
    per_row: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in blocks]
    for i, (a0, a1) in enumerate(blocks):
        if a1 - a0 > 1:
            kk = min(k, a1 - a0 - 1)
            idx, sim = ops.knn(X[a0:a1], kk, n_threads=1)
            pad = ((0, 0), (0, k - kk))
            per_row[i].append((np.pad(idx + a0, pad, constant_values=2**32 - 1), np.pad(sim, pad)))
        for j in range(i + 1, len(blocks)):
            b0, b1 = blocks[j]
            (ia, sa), (ib, sb) = ops.knn_between(X[a0:a1], X[b0:b1], k, n_threads=2)
            assert ia.shape == (a1 - a0, k) and ib.shape == (b1 - b0, k)
            missing = np.uint32(2**32 - 1)
            per_row[i].append((np.where(ia == missing, missing, ia + b0), sa))
            per_row[j].append((np.where(ib == missing, missing, ib + a0), sb))
    got = [_merged(lists, k) for lists in per_row]
    got_idx = np.concatenate([g[0] for g in got])
    got_sim = np.concatenate([g[1] for g in got])
    np.testing.assert_array_equal(got_idx, want_idx)
    np.testing.assert_array_equal(got_sim.view(np.uint32), want_sim.view(np.uint32))


def test_knn_between_lists_the_exact_neighbours_both_ways():
    """Against a float64 brute force of ``A x B``: exact values, nothing closer left out,
    ties to the lower index; a side shorter than ``k`` is listed whole, then padded."""
    X = _near_tie_unit_rows(12, 1400, 64, 10)
    A, B = X[:1100], X[1100:]
    (ia, sa), (ib, sb) = ops.knn_between(A, B, 10)
    A64, B64 = A.astype(np.float64), B.astype(np.float64)
    S = (A64 @ B64.T) / np.outer(np.linalg.norm(A64, axis=1), np.linalg.norm(B64, axis=1))
    for idx, sim, s in ((ia, sa, S), (ib, sb, S.T)):
        ii = idx.astype(np.int64)
        np.testing.assert_allclose(sim, np.take_along_axis(s, ii, axis=1), atol=2.0**-24, rtol=0)
        left_out = s.copy()
        np.put_along_axis(left_out, ii, -np.inf, axis=1)
        assert (left_out.max(axis=1) <= sim[:, -1] + 2.0**-24).all()
        dsim = np.diff(sim.astype(np.float64), axis=1)
        assert (dsim <= 0).all() and (np.diff(ii, axis=1)[dsim == 0] > 0).all()
    rows = np.repeat(np.arange(1100), 10).astype(np.uint32)
    np.testing.assert_array_equal(ops.pair_similarity(X, rows, ia.ravel() + 1100), sa.ravel())
    (ia, sa), (ib, sb) = ops.knn_between(A[:3], B[:5], 4)
    assert (ia < 5).all() and (ib[:, 3] == 2**32 - 1).all() and np.isneginf(sb[:, 3]).all()
    with pytest.raises(ShapeError):
        ops.knn_between(A, B[:, :5], 1)
    with pytest.raises(ParameterError):
        ops.knn_between(A, B, 0)


def test_knn_between_floors_keep_exactly_the_pairs_at_or_above_them():
    """With a floor per row (a float64 brute force's 4th best, some rows none), each row
    lists its exact neighbours at or above the floor and nothing else, padded; bad floors
    are errors."""
    X = _near_tie_unit_rows(13, 1400, 64, 10)
    A, B = X[:900], X[900:]
    A64, B64 = A.astype(np.float64), B.astype(np.float64)
    S = (A64 @ B64.T) / np.outer(np.linalg.norm(A64, axis=1), np.linalg.norm(B64, axis=1))
    (ia, sa), (ib, sb) = ops.knn_between(A, B, 10)
    fa = sa[:, 3].copy()
    fb = sb[:, 3].copy()
    fa[::4] = -np.inf
    (ja, ta), (jb, tb) = ops.knn_between(A, B, 10, floors=(fa, fb))
    for idx, sim, full_i, full_s, floor, s in (
        (ja, ta, ia, sa, fa, S),
        (jb, tb, ib, sb, fb, S.T),
    ):
        keep = full_s >= floor[:, None]
        np.testing.assert_array_equal(idx, np.where(keep, full_i, 2**32 - 1))
        np.testing.assert_array_equal(sim, np.where(keep, full_s, -np.inf))
        # and against float64: every pair at or above the floor by a margin is listed
        above = (s >= floor[:, None] + 1e-6).sum(axis=1)
        assert (keep.sum(axis=1) >= np.minimum(above, 10)).all()
    with pytest.raises(ShapeError, match="floors of A"):
        ops.knn_between(A, B, 10, floors=(fa[:-1], fb))
    with pytest.raises(ParameterError, match="floor 2 of B is NaN"):
        ops.knn_between(A, B, 10, floors=(fa, np.where(np.arange(500) == 2, np.nan, fb)))
