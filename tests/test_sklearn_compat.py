# ruff: noqa: N803, N806  (X: the embedding matrix)
"""scikit-learn compatibility: ``simclust.KMeans`` is a scikit-learn estimator, and any
scikit-learn clusterer (or duck-typed class) is a simclust strategy.

References are independent: scikit-learn's own ``check_estimator``, and scikit-learn's
clusterers run directly on the rows unit-normalised by numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
import simclust
from simclust import KMeans
from simclust.base import GraphSpec, parameters
from simclust.exceptions import ConfigError, NotFittedError, PluginError
from simclust.host import Registry
from simclust.testing import check_strategy, make_host
from sklearn.base import clone
from sklearn.cluster import DBSCAN, AgglomerativeClustering
from sklearn.exceptions import NotFittedError as SkNotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator, parametrize_with_checks

# --------------------------------------------------------------------------- data


def blobs(n: int = 240, d: int = 16, k: int = 4, seed: int = 0) -> np.ndarray:
    """Well-separated directions, rows of random positive scale, 4 far outliers."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    X = centres[np.arange(n) % k] + 0.03 * rng.standard_normal((n, d)) / np.sqrt(d)
    X[-4:] = rng.standard_normal((4, d))  # isolated directions: DBSCAN noise
    return (X * rng.uniform(0.5, 3.0, (n, 1))).astype(np.float32)


def unit(X: np.ndarray) -> np.ndarray:
    """The independent reference's normalisation (numpy, float64)."""
    X64 = np.asarray(X, dtype=np.float64)
    return X64 / np.linalg.norm(X64, axis=1, keepdims=True)


def canonical(labels: np.ndarray) -> list[int]:
    """Cluster ids renumbered by first appearance (noise stays -1): the partition."""
    ids: dict[int, int] = {}
    return [-1 if v < 0 else ids.setdefault(int(v), len(ids)) for v in labels]


class SklearnPlugin:
    @simclust.hookimpl
    def simclust_register_strategies(self, registry):
        registry.register("agglomerative", AgglomerativeClustering)
        registry.register("dbscan", DBSCAN)


@pytest.fixture(scope="module")
def host():
    return make_host(("sklearn-strategies", SklearnPlugin()))


# --------------------------------------------------------------------------- KMeans


COSINE_ZERO_ROW = (
    "cosine k-means is undefined for a zero row, and this check's integer data has one "
    "(row 15 of 3 * uniform(20, 5) cast to int); simclust refuses it with an error "
    "naming the row (Euclidean KMeans passes the check)"
)


def _expected_failures(est):
    return {"check_estimators_dtypes": COSINE_ZERO_ROW} if est.metric == "cosine" else {}


@parametrize_with_checks(
    [KMeans(metric="euclidean"), KMeans(), KMeans(3, metric="euclidean", n_init=2)],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_check_estimator(estimator, check):
    check(estimator)


def test_check_estimator_passes_every_check_euclidean():
    results = check_estimator(KMeans(metric="euclidean"), on_fail=None)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert failed == []
    passed = [r for r in results if r["status"] == "passed"]
    assert len(passed) >= 45  # check_array_api_input is skipped without SCIPY_ARRAY_API


def test_check_estimator_cosine_fails_only_on_the_zero_row():
    results = check_estimator(KMeans(), on_fail=None)
    failed = {r["check_name"]: r["exception"] for r in results if r["status"] == "failed"}
    assert list(failed) == ["check_estimators_dtypes"]
    assert "row(s) of zero norm" in str(failed["check_estimators_dtypes"])


def test_estimator_basics():
    est = KMeans()
    assert est.get_params() == {
        "n_clusters": 8,
        "metric": "cosine",
        "init": "k-means++",
        "n_init": 1,
        "max_iter": 100,
        "tol": 1e-6,
        "random_state": 0,
        "n_threads": None,
    }
    assert repr(KMeans(3, metric="euclidean")) == "KMeans(metric='euclidean', n_clusters=3)"
    with pytest.raises(NotFittedError, match="not fitted yet") as info:
        est.predict(np.eye(3))
    assert isinstance(info.value, SkNotFittedError)
    X = blobs()
    est = KMeans(4).fit(X)
    assert est.n_features_in_ == 16 and est.cluster_centers_.shape == (4, 16)
    assert not hasattr(est, "centroids_") and not hasattr(est, "objective_")
    with pytest.raises(ValueError, match="X has 3 features, but KMeans is expecting 16"):
        est.predict(np.ones((2, 3)))
    # the same numbers as simclust.ops.kmeans (random_state=0 by default)
    labels, centroids, objective, n_iter = simclust.ops.kmeans(X, 4, random_state=0)
    assert np.array_equal(est.labels_, labels)
    assert np.array_equal(est.cluster_centers_, centroids)
    assert (est.inertia_, est.n_iter_) == (objective, n_iter)


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.zeros((0, 3)), "0 sample"),
        (np.ones(5), "Expected 2D array, got 1D array"),
        (np.ones((4, 2)) + 1j, "Complex data not supported"),
        (np.array([["a", "b"], ["c", "d"]], dtype=object), "could not convert"),
    ],
)
def test_bad_input_is_a_clear_error(X, match):
    with pytest.raises(ValueError, match=match):
        KMeans(1).fit(X)


def test_sparse_input_is_refused():
    from scipy import sparse

    with pytest.raises(TypeError, match="Sparse data was passed"):
        KMeans(1).fit(sparse.csr_matrix(np.eye(3)))


def test_kmeans_in_pipeline_clone_and_grid_search():
    X = blobs()
    pipe = Pipeline([("scale", StandardScaler()), ("km", KMeans(4, metric="euclidean"))])
    labels = pipe.fit_predict(X)
    direct = KMeans(4, metric="euclidean").fit(StandardScaler().fit_transform(X))
    assert np.array_equal(labels, direct.labels_)
    assert np.array_equal(pipe.predict(X), direct.predict(StandardScaler().fit_transform(X)))

    twin = clone(pipe)
    assert twin.get_params()["km__n_clusters"] == 4 and not hasattr(twin[-1], "labels_")
    twin.set_params(km__n_clusters=3)
    assert twin.fit(X)[-1].cluster_centers_.shape == (3, 16)

    grid = GridSearchCV(KMeans(metric="euclidean"), {"n_clusters": [2, 4, 6]}, cv=3)
    grid.fit(X)
    assert grid.best_params_["n_clusters"] in (4, 6)  # score is -inertia: more is better
    assert grid.best_estimator_.labels_.shape == (X.shape[0],)


# --------------------------------------------------------------------------- sklearn strategies


def test_sklearn_clusterers_register_as_they_are(host):
    assert host.strategies.get("agglomerative").obj is AgglomerativeClustering
    assert host.strategies.get("dbscan").plugin == "sklearn-strategies"
    check_strategy(AgglomerativeClustering(n_clusters=3), name="agglomerative")
    check_strategy(DBSCAN(eps=0.1, metric="cosine"), name="dbscan")


def test_agglomerative_through_analyze_matches_sklearn(host):
    X = blobs()
    res = simclust.analyze(X, strategy="agglomerative", n_clusters=4, host=host)
    ref = AgglomerativeClustering(n_clusters=4).fit(unit(X)).labels_
    assert canonical(res.assignments["cluster"].to_numpy()) == canonical(ref)
    assert res.config["cluster"]["params"]["linkage"] == "ward"
    assert res.clusters.height == 4


def test_dbscan_cosine_through_analyze_matches_sklearn(host):
    X = blobs()
    res = simclust.analyze(
        X, strategy="dbscan", metric="cosine", eps=0.1, metrics=["intra"], host=host
    )
    ref = DBSCAN(eps=0.1, metric="cosine").fit(unit(X)).labels_
    got = res.assignments["cluster"].to_numpy()
    assert canonical(got) == canonical(ref)
    assert (got == -1).sum() == 4 and res.clusters.height == 4


def test_dbscan_from_a_toml_config(host, tmp_path):
    X = blobs(seed=3)
    np.save(tmp_path / "x.npy", X)
    (tmp_path / "run.toml").write_text(
        '[input]\npath = "x.npy"\n'
        '[cluster]\nstrategy = "dbscan"\nmetric = "cosine"\neps = 0.1\nmin_samples = 4\n'
        '[metrics]\nuse = ["intra", "centroid"]\n'
        '[output]\ndir = "out"\nreport = false\n'
    )
    res, out = simclust.run(tmp_path / "run.toml", host=host)
    ref = DBSCAN(eps=0.1, min_samples=4, metric="cosine").fit(unit(X)).labels_
    assert canonical(res.assignments["cluster"].to_numpy()) == canonical(ref)
    assert res.config["cluster"]["params"]["min_samples"] == 4
    assert (out / "manifest.json").exists()


def test_sklearn_parameters_are_checked_against_their_constraints(host):
    X = blobs()
    with pytest.raises(
        ConfigError,
        match=r"cluster.eps: strategy 'dbscan' parameter 'eps' expects a float in the range "
        r"\(0.0, inf\), got str 'x'",
    ):
        simclust.analyze(X, strategy="dbscan", eps="x", host=host)
    with pytest.raises(ConfigError, match=r"cluster.nope: unknown parameter .* eps, min_samples"):
        simclust.analyze(X, strategy="dbscan", nope=1, host=host)
    # n_clusters=None is allowed by AgglomerativeClustering's constraints
    res = simclust.analyze(
        X, strategy="agglomerative", n_clusters=None, distance_threshold=1.0, host=host
    )
    assert res.clusters.height >= 4


def test_unannotated_parameters_take_their_defaults_type():
    class Plain:
        def __init__(self, k=3, *, scale=1.0, name="x", flag=False, anything=None):
            self.k, self.scale, self.name, self.flag, self.anything = k, scale, name, flag, anything

        def fit(self, X):
            self.labels_ = np.zeros(len(X), np.int64)
            return self

    assert [(p.name, p.type_name) for p in parameters(Plain)] == [
        ("k", "int"),
        ("scale", "float"),
        ("name", "str"),
        ("flag", "bool"),
        ("anything", "any value"),
    ]

    class Plugin:
        @simclust.hookimpl
        def simclust_register_strategies(self, registry):
            registry.register("plain", Plain)

    h = make_host(("plain-plugin", Plugin()))
    X = blobs()
    with pytest.raises(ConfigError, match=r"parameter 'k' expects int, got float 2\.5"):
        simclust.analyze(X, strategy="plain", k=2.5, host=h)
    res = simclust.analyze(X, strategy="plain", k=2, scale=2, anything=[1], host=h)
    assert res.config["cluster"]["params"]["scale"] == 2.0  # an int widened to float


# --------------------------------------------------------------------------- duck typing


class FirstCoordinate:
    """No simclust base class: __init__ parameters, fit(X), labels_."""

    def __init__(self, axis=0, *, cut: float = 0.0):
        self.axis = axis
        self.cut = cut

    def fit(self, X, y=None):
        self.labels_ = (np.asarray(X)[:, self.axis] > self.cut).astype(np.int64)
        return self


class GraphDuck:
    """Duck-typed, with the optional graph_spec: fit gets the graph."""

    seen: list[object] = []  # noqa: RUF012

    def __init__(self, *, threshold: float = 0.9):
        self.threshold = threshold

    def graph_spec(self):
        return GraphSpec("threshold", threshold=self.threshold)

    def fit(self, X, *, graph=None):
        GraphDuck.seen.append(graph)
        labels = simclust.ops.connected_components(len(X), graph.src, graph.dst)
        self.labels_ = labels
        return self


class DuckPlugin:
    @simclust.hookimpl
    def simclust_register_strategies(self, registry):
        registry.register("first-coordinate", FirstCoordinate)
        registry.register("graph-duck", GraphDuck)


def test_duck_typed_strategies_run_without_the_base_class():
    h = make_host(("ducks", DuckPlugin()))
    X = blobs()
    res = simclust.analyze(X, strategy="first-coordinate", axis=1, metrics=["intra"], host=h)
    assert res.assignments["cluster"].to_list() == (unit(X)[:, 1] > 0).astype(int).tolist()
    check_strategy(FirstCoordinate)
    check_strategy(GraphDuck(threshold=0.8))
    GraphDuck.seen.clear()
    res = simclust.analyze(X, strategy="graph-duck", threshold=0.95, host=h)
    (graph,) = GraphDuck.seen
    assert graph.spec == GraphSpec("threshold", threshold=0.95)
    ref, *_ = simclust.ops.threshold_edges(X, 0.95)
    assert graph.n_edges == ref.size
    assert res.clusters.height == res.summary()["n_clusters"]


# --------------------------------------------------------------------------- registration errors


class NoFit:
    def __init__(self, *, k: int = 3):
        self.k = k


class StarArgs(FirstCoordinate):
    def __init__(self, *args, axis=0):
        self.axis = axis


class StarKwargs(FirstCoordinate):
    def __init__(self, axis=0, **kwargs):
        self.axis = axis


class Unannotated(FirstCoordinate):
    def __init__(self, axis):
        self.axis = axis


class PositionalOnly(FirstCoordinate):
    def __init__(self, axis=0, /):
        self.axis = axis


class GraphSpecWithoutGraph(FirstCoordinate):
    def graph_spec(self):
        return GraphSpec("knn", k=3)


@pytest.mark.parametrize(
    ("obj", "missing"),
    [
        (NoFit, "NoFit has no fit method; a strategy needs __init__ parameters, fit"),
        (StarArgs, r"StarArgs.__init__ takes \*args: parameters must be named"),
        (StarKwargs, r"StarKwargs.__init__ takes \*\*kwargs: parameters must be named"),
        (Unannotated, "parameter 'axis' needs a type annotation or a default"),
        (PositionalOnly, "parameter 'axis' is positional-only"),
        (GraphSpecWithoutGraph, "has graph_spec\\(\\) but its fit does not take graph="),
        (FirstCoordinate(), "is not a class; register the class itself"),
    ],
)
def test_registration_names_the_plugin_and_the_missing_piece(obj, missing):
    class Plugin:
        @simclust.hookimpl
        def simclust_register_strategies(self, registry):
            registry.register("broken", obj)

    with pytest.raises(
        PluginError, match=rf"plugin 'broken-plugin' registered the strategy 'broken': .*{missing}"
    ):
        make_host(("broken-plugin", Plugin()))


def test_registry_checks_each_kind():
    with pytest.raises(PluginError, match="has no compute method"):
        Registry("metric").register("m", FirstCoordinate)
    with pytest.raises(PluginError, match="has no can_load method"):
        Registry("loader").register("l", FirstCoordinate)
    with pytest.raises(PluginError, match="has no embed method"):
        Registry("embedder").register("e", FirstCoordinate)
