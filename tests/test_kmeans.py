# ruff: noqa: N803, N806  (X, C: the field's matrix notation)
"""K-means (``simclust.ops.kmeans``, ``simclust.KMeans``) against independent references.

References: scikit-learn's ``KMeans`` (Lloyd with the same initial centroids,
and its k-means++ objective), ``adjusted_rand_score`` against the generating
blobs, and float64 numpy for objectives and assignments.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import simclust
from simclust import KMeans, ops
from simclust.exceptions import (
    ClusteringWarning,
    InvalidInputError,
    NotFittedError,
    ParameterError,
    ShapeError,
)
from sklearn.base import clone
from sklearn.cluster import KMeans as SkKMeans
from sklearn.metrics import adjusted_rand_score

METRICS = ["cosine", "euclidean"]


# --------------------------------------------------------------------------- data


def blobs(seed: int, n: int, d: int, k: int, spread: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit-sphere centres, isotropic noise of norm ~``spread``, rows of random positive scale.

    Cosine only sees directions and Euclidean sees the scaled rows, so the
    Euclidean variant multiplies the centres by 10 instead of scaling rows.
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = rng.permutation(np.arange(n) % k)
    X = centres[truth] + spread * rng.standard_normal((n, d)) / np.sqrt(d)
    return X, truth


def embeddings(seed: int, n: int, d: int, k: int) -> np.ndarray:
    """Realistic unit-norm embeddings: heavy-tailed cluster sizes, per-cluster
    spread with a low-rank part, 2% outliers."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    w = rng.lognormal(0.0, 1.0, k)
    labels = rng.choice(k, size=n, p=w / w.sum())
    spread = rng.uniform(0.3, 0.6, k)
    basis = rng.standard_normal((k, 4, d)) / np.sqrt(4)
    noise = 0.5 * rng.standard_normal((n, d)) / np.sqrt(d)
    noise += 0.8 * np.einsum("nr,nrd->nd", rng.standard_normal((n, 4)), basis[labels])
    X = centres[labels] + spread[labels, None] * noise
    out = rng.random(n) < 0.02
    X[out] = rng.standard_normal((int(out.sum()), d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32)


def unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def spherical_objective(X: np.ndarray, labels: np.ndarray) -> float:
    """Sum of 1 - cos(x, normalised cluster sum): the cosine objective of a partition."""
    Xn = unit(X)
    sums = np.zeros((labels.max() + 1, X.shape[1]))
    np.add.at(sums, labels, Xn)
    return float(np.sum(1.0 - np.einsum("ij,ij->i", Xn, unit(sums)[labels])))


def euclidean_objective(X: np.ndarray, labels: np.ndarray, C: np.ndarray) -> float:
    diff = np.asarray(X, dtype=np.float64) - np.asarray(C, dtype=np.float64)[labels]
    return float(np.sum(diff * diff))


# --------------------------------------------------------------------------- correctness


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_separated_blobs_are_recovered_exactly(metric, seed):
    X, truth = blobs(seed, 2000, 16, 12, spread=0.15)
    if metric == "cosine":
        X *= np.exp(np.random.default_rng(seed).uniform(-2, 2, len(X)))[:, None]
    else:
        X *= 10.0
    labels, centroids, objective, n_iter = ops.kmeans(X, 12, metric=metric, random_state=seed)
    assert adjusted_rand_score(truth, labels) == 1.0
    assert labels.dtype == np.int64 and labels.shape == (2000,)
    assert centroids.dtype == np.float32 and centroids.shape == (12, 16)
    assert isinstance(objective, float) and isinstance(n_iter, int) and n_iter >= 1
    est = KMeans(12, metric=metric, random_state=seed).fit(X)
    assert np.array_equal(est.labels_, labels)


@pytest.mark.parametrize("max_iter", [3, 300])
def test_euclidean_lloyd_matches_sklearn_from_the_same_centroids(max_iter):
    # Overlapping blobs, so Lloyd needs many iterations and moves many rows.
    X, _ = blobs(7, 3000, 16, 25, spread=0.9)
    X = (5.0 * X + 3.0).astype(np.float32)
    C0 = X[np.random.default_rng(7).choice(len(X), 25, replace=False)]
    labels, centroids, objective, n_iter = ops.kmeans(
        X, 25, metric="euclidean", init=C0, max_iter=max_iter, tol=0.0
    )
    sk = SkKMeans(25, init=C0, n_init=1, algorithm="lloyd", max_iter=max_iter, tol=0.0).fit(X)
    assert np.array_equal(labels, sk.labels_)
    assert objective == pytest.approx(sk.inertia_, rel=1e-4)
    assert n_iter == sk.n_iter_
    np.testing.assert_allclose(centroids, sk.cluster_centers_, rtol=1e-4, atol=1e-4)
    if max_iter == 300:
        assert n_iter < 300  # converged: no label changed


def test_kmeanspp_objective_within_one_percent_of_sklearn():
    # N > 8192: simclust's k-means++ runs on a sample of the rows.
    X = embeddings(3, 10_000, 32, 40)
    ours = ops.kmeans(X, 40, metric="euclidean", n_init=3, random_state=0)
    sk = SkKMeans(40, n_init=3, random_state=0).fit(X)
    assert ours[2] <= 1.01 * sk.inertia_
    # Cosine: our spherical objective vs the spherical objective of sklearn's partition.
    _, _, obj, _ = ops.kmeans(X, 40, n_init=3, random_state=0)
    sk_cos = spherical_objective(X, SkKMeans(40, n_init=3, random_state=0).fit(unit(X)).labels_)
    assert obj <= 1.01 * sk_cos


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize(("init", "k"), [("k-means++", 100), ("random", 600)])
def test_bit_identical_for_any_thread_count_and_run(metric, init, k):
    # Several row blocks and gather tiles; k = 600 gives two centroid column blocks.
    X = embeddings(5, 6000, 24, 80)
    runs = [
        ops.kmeans(X, k, metric=metric, init=init, n_init=2, random_state=4, n_threads=t)
        for t in (1, 2, 2, 3)
    ]
    first = runs[0]
    for other in runs[1:]:
        assert first[0].tobytes() == other[0].tobytes()
        assert first[1].tobytes() == other[1].tobytes()
        assert first[2] == other[2] and first[3] == other[3]


@pytest.mark.parametrize("metric", METRICS)
def test_objective_is_what_the_docs_say(metric):
    X = embeddings(8, 1500, 12, 10) * np.float32(3.0)
    labels, C, objective, _ = ops.kmeans(X, 10, metric=metric, random_state=1)
    if metric == "cosine":
        np.testing.assert_allclose(np.linalg.norm(C, axis=1), 1.0, rtol=1e-6)
        want = float(np.sum(1.0 - np.einsum("ij,ij->i", unit(X), unit(C)[labels])))
    else:
        want = euclidean_objective(X, labels, C)
    assert objective == pytest.approx(want, rel=1e-5)
    # And the labels are the closest centroids (the last step is an assignment).
    assert np.array_equal(ops.kmeans_assign(X, C, metric=metric)[0], labels)


@pytest.mark.parametrize("metric", METRICS)
def test_assign_matches_numpy(metric):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((700, 9))
    C = rng.standard_normal((600, 9))
    labels, objective = ops.kmeans_assign(X, C, metric=metric, n_threads=2)
    if metric == "cosine":
        dist = 1.0 - unit(X) @ unit(C).T
    else:
        dist = ((X[:, None, :] - C[None, :, :]) ** 2).sum(axis=2)
    assert np.array_equal(labels, dist.argmin(axis=1))
    assert objective == pytest.approx(dist.min(axis=1).sum(), rel=1e-5)


def test_cosine_ignores_row_scale():
    X = embeddings(9, 1200, 10, 8)
    scaled = X * (2.0 ** np.random.default_rng(0).integers(-8, 9, len(X)))[:, None]
    a = ops.kmeans(X, 8, random_state=3)
    b = ops.kmeans(scaled, 8, random_state=3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_fewer_distinct_points_than_clusters_warns_and_leaves_clusters_empty():
    X = np.tile([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.5]], (10, 1))
    for metric in METRICS:
        with pytest.warns(ClusteringWarning, match="only 3 of n_clusters=5"):
            labels, _, objective, _ = ops.kmeans(X, 5, metric=metric)
        assert len(np.unique(labels)) == 3
        assert objective == pytest.approx(0.0, abs=1e-5)
    with pytest.warns(ClusteringWarning):
        KMeans(5, random_state=0).fit(X)


def test_duplicate_initial_centroids_are_reseeded():
    X, _ = blobs(4, 600, 5, 6, spread=0.2)
    C0 = X[:6].copy()
    C0[1] = C0[0]
    est = KMeans(6, metric="euclidean", init=C0).fit(X)
    assert est.n_empty_reseeded_ >= 1
    assert len(np.unique(est.labels_)) == 6


def test_explicit_init_runs_once():
    X, _ = blobs(1, 200, 4, 3, spread=0.2)
    with pytest.warns(RuntimeWarning, match="one initialisation"):
        ops.kmeans(X, 3, init=X[:3], n_init=4)


def test_tol_and_progress():
    X = embeddings(6, 3000, 16, 30)
    calls = []
    _, _, _, strict = ops.kmeans(X, 30, tol=0.0, random_state=0)
    _, _, _, loose = ops.kmeans(
        X, 30, tol=1e-2, random_state=0, progress=lambda d, t: calls.append((d, t))
    )
    assert loose <= strict
    assert calls and calls[-1][0] == calls[-1][1]


# --------------------------------------------------------------------------- estimator


def test_estimator_follows_the_sklearn_conventions():
    X, _ = blobs(2, 500, 6, 4, spread=0.1)
    est = KMeans(4, metric="euclidean", n_init=2, random_state=5, n_threads=2)
    params = est.get_params()
    assert params == {
        "n_clusters": 4,
        "metric": "euclidean",
        "init": "k-means++",
        "n_init": 2,
        "max_iter": 100,
        "tol": 1e-6,
        "random_state": 5,
        "n_threads": 2,
    }
    assert (
        repr(est)
        == "KMeans(metric='euclidean', n_clusters=4, n_init=2, n_threads=2, random_state=5)"
    )
    with pytest.raises(NotFittedError, match="not fitted yet"):
        est.predict(X)
    assert not hasattr(est, "labels_")
    assert est.fit(X) is est
    assert est.cluster_centers_.shape == (4, 6) and est.n_features_in_ == 6
    assert isinstance(est.inertia_, float) and est.n_iter_ >= 1 and isinstance(est.converged_, bool)
    assert np.array_equal(est.predict(X), est.labels_)
    assert est.score(X) == pytest.approx(-est.inertia_, rel=1e-6)
    twin = clone(est)
    assert twin.get_params() == params and not hasattr(twin, "labels_")
    assert np.array_equal(twin.fit_predict(X), est.labels_)
    assert est.set_params(n_clusters=3, metric="cosine") is est
    assert est.fit(X).cluster_centers_.shape == (3, 6)
    with pytest.raises(ValueError, match="Invalid parameter 'n_cluster'"):
        est.set_params(n_cluster=3)
    with pytest.raises(TypeError):
        KMeans(3, "cosine")  # keyword-only
    assert simclust.KMeans is KMeans
    # random_state=None: a fresh seed per fit, still a valid fit; the default is 0.
    assert KMeans(4, random_state=None).fit(X).labels_.shape == (500,)
    assert KMeans().get_params()["random_state"] == 0 and KMeans().n_clusters == 8
    assert np.array_equal(KMeans(4).fit(X).labels_, KMeans(4, random_state=0).fit(X).labels_)


# --------------------------------------------------------------------------- bad input


def _x():
    return np.random.default_rng(0).standard_normal((10, 3))


@pytest.mark.parametrize(
    ("X", "kwargs", "error", "match"),
    [
        (_x(), {"n_clusters": 0}, ParameterError, "n_clusters must be >= 1"),
        (_x(), {"n_clusters": 11}, ParameterError, "n_clusters must satisfy"),
        (_x(), {"n_clusters": 2.5}, ParameterError, "n_clusters must be an integer"),
        (_x(), {"n_clusters": True}, ParameterError, "n_clusters must be an integer"),
        (_x(), {"n_clusters": 2, "metric": "manhattan"}, ParameterError, "metric must be"),
        (_x(), {"n_clusters": 2, "metric": None}, ParameterError, "metric must be"),
        (_x(), {"n_clusters": 2, "init": "kmeans++"}, ParameterError, "init must be"),
        (_x(), {"n_clusters": 2, "n_init": 0}, ParameterError, "n_init must be >= 1"),
        (_x(), {"n_clusters": 2, "max_iter": 0}, ParameterError, "max_iter must be >= 1"),
        (_x(), {"n_clusters": 2, "tol": -1.0}, ParameterError, "tol must be"),
        (_x(), {"n_clusters": 2, "tol": float("nan")}, ParameterError, "tol must be"),
        (_x(), {"n_clusters": 2, "tol": "0.1"}, ParameterError, "tol must be"),
        (_x(), {"n_clusters": 2, "random_state": -1}, ParameterError, "random_state"),
        (_x(), {"n_clusters": 2, "random_state": 2**64}, ParameterError, "random_state"),
        (_x(), {"n_clusters": 2, "n_threads": 0}, ParameterError, "n_threads"),
        (_x(), {"n_clusters": 2, "init": np.ones((3, 3))}, ShapeError, r"\(2, 3\), got \(3, 3\)"),
        (_x(), {"n_clusters": 2, "init": np.ones((2, 4))}, ShapeError, "init must have shape"),
        (_x(), {"n_clusters": 2, "init": np.ones(3)}, ShapeError, "init must be a 2-D"),
        (_x()[0], {"n_clusters": 1}, ShapeError, "2-D"),
        (np.zeros((0, 3)), {"n_clusters": 1}, ShapeError, "empty"),
        (np.array([["a", "b"]]), {"n_clusters": 1}, InvalidInputError, "real numbers"),
    ],
)
def test_bad_parameters_and_shapes(X, kwargs, error, match):
    with pytest.raises(error, match=match):
        ops.kmeans(X, **kwargs)


@pytest.mark.parametrize("metric", METRICS)
def test_non_finite_rows_are_named(metric):
    X = _x()
    X[2, 1] = np.nan
    X[7, 0] = np.inf
    with pytest.raises(InvalidInputError, match=r"X contains NaN or Inf in 2 row\(s\): 2, 7"):
        ops.kmeans(X, 2, metric=metric)
    C = _x()[:2]
    C[1, 2] = -np.inf
    with pytest.raises(InvalidInputError, match=r"init contains NaN or Inf in 1 row\(s\): 1"):
        ops.kmeans(_x(), 2, metric=metric, init=C)
    with pytest.raises(InvalidInputError, match=r"centroids contains NaN or Inf"):
        ops.kmeans_assign(_x(), C, metric=metric)


def test_zero_rows_fail_under_cosine_only():
    X = _x()
    X[[3, 8]] = 0.0
    with pytest.raises(InvalidInputError, match=r"X has 2 row\(s\) of zero norm.*: 3, 8"):
        ops.kmeans(X, 2)
    ops.kmeans(X, 2, metric="euclidean")  # a zero row is an ordinary point here
    C = _x()[:2]
    C[0] = 0.0
    with pytest.raises(InvalidInputError, match=r"init has 1 row\(s\) of zero norm"):
        ops.kmeans(_x(), 2, init=C)


def test_assign_shape_mismatch():
    with pytest.raises(ShapeError, match="same number of columns"):
        ops.kmeans_assign(_x(), np.ones((2, 4)))


def test_no_warning_on_ordinary_data():
    X, _ = blobs(3, 300, 4, 3, spread=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ops.kmeans(X, 3)
