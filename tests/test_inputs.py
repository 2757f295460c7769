# ruff: noqa: N803, N806  (X, Y, S, C: the field's matrix notation)
"""Input validation (exception classes and messages) and input acceptance
(dtypes, memory orders), plus normalize()."""

import numpy as np
import pytest
from _reference import clustered_embeddings, gaussian_embeddings, ref_normalize
from simclust import ops
from simclust.exceptions import (
    InvalidInputError,
    ParameterError,
    ShapeError,
    SimclustError,
)

X10 = gaussian_embeddings(0, 10, 4)
E_SRC = np.array([0, 1, 2], np.uint32)
E_DST = np.array([1, 2, 3], np.uint32)
E_SIM = np.array([0.5, 0.25, 0.75], np.float32)


def _with_row(value, row, n=50, d=6):
    X = gaussian_embeddings(1, n, d)
    X[row, d // 2] = value
    return X


def _matching_y(X):
    """A valid query-side matrix with as many columns as X (when X is 2-D)."""
    d = X.shape[1] if X.ndim == 2 and X.shape[1] > 0 else 4
    return gaussian_embeddings(9, 3, d)


# every function taking an embedding matrix, called with default parameters
EMBEDDING_FUNCS = {
    "normalize": lambda X: ops.normalize(X),
    "knn": lambda X: ops.knn(X, 1),
    "knn_query_X": lambda X: ops.knn(X, 1, Y=_matching_y(X)),
    "threshold_edges": lambda X: ops.threshold_edges(X, 0.5),
    "knn_edges": lambda X: ops.knn_edges(X, 1, 0.5),
}


# ------------------------------------------------------------------ class layout


@pytest.mark.parametrize("cls", [ShapeError, InvalidInputError, ParameterError])
def test_exception_hierarchy(cls):
    """Every error class is a SimclustError and a ValueError."""
    assert issubclass(cls, SimclustError)
    assert issubclass(cls, ValueError)
    assert issubclass(SimclustError, Exception)


def test_errors_catchable_as_value_error():
    """A raised error is caught by `except ValueError`."""
    with pytest.raises(ValueError):
        ops.knn(X10, 0)
    with pytest.raises(ValueError):
        ops.knn(np.zeros((3, 2)), 1)


# ------------------------------------------------------------- bad embedding rows


@pytest.mark.parametrize("fn", EMBEDDING_FUNCS.values(), ids=EMBEDDING_FUNCS.keys())
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_row_named(fn, value):
    """A NaN/Inf row raises InvalidInputError naming the row index."""
    with pytest.raises(InvalidInputError, match=r"X contains NaN or Inf in 1 row\(s\): 37\b"):
        fn(_with_row(value, 37))


def test_non_finite_rows_listed():
    """Several bad rows are all listed, ascending."""
    X = _with_row(np.nan, 17)
    X[3, 0] = np.inf
    with pytest.raises(InvalidInputError, match=r"NaN or Inf in 2 row\(s\): 3, 17"):
        ops.knn(X, 2)


@pytest.mark.parametrize("fn", EMBEDDING_FUNCS.values(), ids=EMBEDDING_FUNCS.keys())
def test_zero_row_named(fn):
    """An all-zero row raises InvalidInputError naming the row index."""
    X = gaussian_embeddings(2, 50, 6)
    X[29] = 0
    with pytest.raises(InvalidInputError, match=r"zero norm.*\b29\b"):
        fn(X)


def test_bad_rows_in_y_named():
    """Query matrix Y: NaN and zero rows are reported for Y."""
    Y = gaussian_embeddings(3, 20, 4)
    Y[11, 2] = np.nan
    with pytest.raises(InvalidInputError, match=r"Y contains NaN or Inf.*\b11\b"):
        ops.knn(X10, 1, Y=Y)
    Y = gaussian_embeddings(3, 20, 4)
    Y[13] = 0
    with pytest.raises(InvalidInputError, match=r"Y has 1 row\(s\) of zero norm.*\b13\b"):
        ops.knn(X10, 1, Y=Y)


def test_non_numeric_dtype():
    """Strings are not embeddings."""
    with pytest.raises(InvalidInputError, match=r"(?i)dtype|numeric"):
        ops.knn(np.array([["a", "b"], ["c", "d"]]), 1)


# ------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("fn", EMBEDDING_FUNCS.values(), ids=EMBEDDING_FUNCS.keys())
@pytest.mark.parametrize(
    "X",
    [np.ones(8, np.float32), np.ones((2, 3, 4), np.float32), np.ones((), np.float32)],
    ids=["1d", "3d", "0d"],
)
def test_wrong_ndim(fn, X):
    """Embeddings must be 2-D."""
    with pytest.raises(ShapeError, match=r"2-?D|2 dimensions|ndim"):
        fn(X)


@pytest.mark.parametrize("fn", EMBEDDING_FUNCS.values(), ids=EMBEDDING_FUNCS.keys())
@pytest.mark.parametrize("shape", [(0, 4), (5, 0), (0, 0)])
def test_empty(fn, shape):
    """N = 0 or D = 0 is a ShapeError."""
    with pytest.raises(ShapeError, match=r"empty|0 rows|0 columns"):
        fn(np.ones(shape, np.float32))


def test_query_dimension_mismatch():
    """Y must have the same number of columns as X."""
    with pytest.raises(ShapeError, match=r"\b4\b.*\b5\b|\b5\b.*\b4\b"):
        ops.knn(X10, 1, Y=np.ones((3, 5), np.float32))


def test_query_y_wrong_ndim():
    """Y must be 2-D."""
    with pytest.raises(ShapeError):
        ops.knn(X10, 1, Y=np.ones(4, np.float32))


def test_query_y_empty():
    """Y with no rows."""
    with pytest.raises(ShapeError):
        ops.knn(X10, 1, Y=np.ones((0, 4), np.float32))


# --------------------------------------------------------------------- parameters


def test_single_row_self_knn():
    """N = 1 has no neighbour other than itself: k = 1 is out of range."""
    with pytest.raises(ParameterError, match=r"\bk\b"):
        ops.knn(np.ones((1, 3), np.float32), 1)


@pytest.mark.parametrize("k", [10, 11, 1000])
def test_self_knn_k_at_least_n(k):
    """Self-search needs k <= N - 1."""
    with pytest.raises(ParameterError, match=rf"\bk\b.*\b{k}\b"):
        ops.knn(X10, k)


@pytest.mark.parametrize("k", [0, -1])
def test_knn_k_not_positive(k):
    """k must be >= 1."""
    with pytest.raises(ParameterError, match=rf"\bk\b.*{k}\b"):
        ops.knn(X10, k)


@pytest.mark.parametrize("k", [0, -1, 10, 11])
def test_knn_edges_bad_k(k):
    """knn_edges has the self-search range for k."""
    with pytest.raises(ParameterError, match=rf"\bk\b.*{k}\b"):
        ops.knn_edges(X10, k, 0.0)


@pytest.mark.parametrize("k", [0, 8])
def test_query_knn_bad_k(k):
    """Query search needs 1 <= k <= M (here M = 7)."""
    with pytest.raises(ParameterError, match=rf"\bk\b.*\b{k}\b"):
        ops.knn(X10, k, Y=gaussian_embeddings(4, 7, 4))


def test_query_knn_k_equal_m_allowed():
    """k = M is the largest valid query k."""
    idx, _ = ops.knn(X10, 7, Y=gaussian_embeddings(4, 7, 4))
    np.testing.assert_array_equal(
        np.sort(idx, axis=1), np.tile(np.arange(7, dtype=np.uint32), (10, 1))
    )


@pytest.mark.parametrize("t", [1.5, -1.5, float("nan"), 1.0000001, float("inf")])
@pytest.mark.parametrize("fn", ["threshold_edges", "knn_edges"])
def test_bad_threshold(fn, t):
    """Thresholds must be in [-1, 1] and not NaN."""
    with pytest.raises(ParameterError, match="threshold"):
        if fn == "threshold_edges":
            ops.threshold_edges(X10, t)
        else:
            ops.knn_edges(X10, 2, t)


@pytest.mark.parametrize("n_threads", [0, -1])
@pytest.mark.parametrize(
    "call",
    [
        lambda t: ops.normalize(X10, n_threads=t),
        lambda t: ops.knn(X10, 1, n_threads=t),
        lambda t: ops.knn(X10, 1, Y=X10, n_threads=t),
        lambda t: ops.threshold_edges(X10, 0.5, n_threads=t),
        lambda t: ops.knn_edges(X10, 1, 0.5, n_threads=t),
    ],
    ids=["normalize", "knn", "knn_query", "threshold_edges", "knn_edges"],
)
def test_bad_n_threads(call, n_threads):
    """n_threads must be a positive integer."""
    with pytest.raises(ParameterError, match="n_threads"):
        call(n_threads)


# ------------------------------------------------------------------- graph inputs

GRAPH_FUNCS = {
    "connected_components": lambda n, s, d, w: ops.connected_components(n, s, d),
    "threshold_sweep": lambda n, s, d, w: ops.threshold_sweep(
        n, s, d, w, np.array([0.5], np.float32)
    ),
    "bridge_similarity": lambda n, s, d, w: ops.bridge_similarity(
        n, s, d, w, np.zeros(n, np.int64)
    ),
}


@pytest.mark.parametrize("fn", GRAPH_FUNCS.values(), ids=GRAPH_FUNCS.keys())
def test_src_dst_length_mismatch(fn):
    """src and dst must have the same length."""
    with pytest.raises(ShapeError, match=r"\b3\b.*\b2\b|\b2\b.*\b3\b"):
        fn(5, E_SRC, E_DST[:2], E_SIM)


@pytest.mark.parametrize("fn", ["threshold_sweep", "bridge_similarity"])
def test_similarity_length_mismatch(fn):
    """similarity must match src/dst."""
    with pytest.raises(ShapeError, match=r"\b3\b.*\b2\b|\b2\b.*\b3\b"):
        GRAPH_FUNCS[fn](5, E_SRC, E_DST, E_SIM[:2])


@pytest.mark.parametrize("fn", GRAPH_FUNCS.values(), ids=GRAPH_FUNCS.keys())
@pytest.mark.parametrize("end", ["src", "dst"])
def test_edge_endpoint_out_of_range(fn, end):
    """An endpoint >= n is a ParameterError naming the bad value."""
    src, dst = E_SRC.copy(), E_DST.copy()
    (src if end == "src" else dst)[1] = 9
    with pytest.raises(ParameterError, match=r"\b9\b.*\bn\b"):
        fn(4, src, dst, E_SIM)


def test_bridge_labels_wrong_length():
    """labels must have n entries."""
    with pytest.raises(ShapeError, match=r"\b5\b.*\b4\b|\b4\b.*\b5\b"):
        ops.bridge_similarity(5, E_SRC, E_DST, E_SIM, np.zeros(4, np.int64))


def test_bridge_label_below_minus_one():
    """-1 means noise; anything lower is invalid."""
    with pytest.raises(ParameterError, match=r"-2"):
        ops.bridge_similarity(4, E_SRC, E_DST, E_SIM, np.array([0, -2, 0, 1], np.int64))


# --------------------------------------------------------------------- acceptance

BASE = clustered_embeddings(5, 301, 48)


def _variants():
    """(name, input, float32 C-order equivalent)."""
    X32 = BASE
    Xi = np.round(BASE * 40).astype(np.int64)
    Xi[np.abs(Xi).sum(axis=1) == 0, 0] = 1
    wide = np.random.default_rng(6).standard_normal((301, 96)).astype(np.float32)
    wide[:, ::2] = BASE
    return [
        (
            "float64",
            X32.astype(np.float64) * np.float64(1 + 1e-12),
            (X32.astype(np.float64) * (1 + 1e-12)).astype(np.float32),
        ),
        ("float16", X32.astype(np.float16), X32.astype(np.float16).astype(np.float32)),
        ("fortran", np.asfortranarray(X32), X32),
        ("strided_cols", wide[:, ::2], np.ascontiguousarray(wide[:, ::2])),
        ("reversed_rows", X32[::-1], np.ascontiguousarray(X32[::-1])),
        ("int64", Xi, Xi.astype(np.float32)),
        ("int32", Xi.astype(np.int32), Xi.astype(np.float32)),
        (
            "int8_fortran",
            np.asfortranarray(np.clip(Xi, -127, 127).astype(np.int8)),
            np.clip(Xi, -127, 127).astype(np.float32),
        ),
    ]


VARIANTS = _variants()


@pytest.mark.parametrize(("name", "X", "X32"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_any_dtype_and_order_matches_float32_c_order(name, X, X32):
    """Other dtypes / memory layouts give bit-identical results to float32 C-order."""
    assert X32.dtype == np.float32 and X32.flags.c_contiguous
    if name in ("fortran", "strided_cols", "reversed_rows", "int8_fortran"):
        assert not X.flags.c_contiguous
    pairs = [
        (ops.normalize(X), ops.normalize(X32)),
        (ops.knn(X, 5), ops.knn(X32, 5)),
        (ops.knn(X, 5, Y=X[:50]), ops.knn(X32, 5, Y=X32[:50])),
        (ops.knn(X32[:40], 3, Y=X), ops.knn(X32[:40], 3, Y=X32)),
        (ops.threshold_edges(X, 0.6), ops.threshold_edges(X32, 0.6)),
        (ops.knn_edges(X, 4, 0.2), ops.knn_edges(X32, 4, 0.2)),
    ]
    for got, want in pairs:
        got = got if isinstance(got, tuple) else (got,)
        want = want if isinstance(want, tuple) else (want,)
        for g, w in zip(got, want, strict=True):
            assert g.dtype == w.dtype
            assert np.array_equal(g, w)


# ----------------------------------------------------------------------- normalize


@pytest.mark.parametrize(("n", "d"), [(1, 1), (7, 3), (513, 64), (1000, 384)])
def test_normalize_matches_numpy(n, d):
    """Unit rows equal to numpy's X / ||X|| within float32 precision."""
    X = clustered_embeddings(8, n, d)
    Xn = ops.normalize(X)
    assert Xn.dtype == np.float32 and Xn.shape == (n, d)
    np.testing.assert_allclose(Xn, ref_normalize(X), atol=1e-6, rtol=0)
    np.testing.assert_allclose(
        np.linalg.norm(Xn.astype(np.float64), axis=1), 1.0, atol=1e-6, rtol=0
    )
    assert np.array_equal(Xn, ops.normalize(X, n_threads=1))
    assert np.array_equal(Xn, ops.normalize(X, n_threads=2))


def test_normalize_does_not_modify_input():
    """The caller's array is left untouched."""
    X = clustered_embeddings(9, 100, 16)
    before = X.copy()
    ops.normalize(X)
    ops.knn(X, 3)
    assert np.array_equal(X, before)
