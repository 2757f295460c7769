# ruff: noqa: N803, N806, RUF012  (X: the embedding matrix; metric outputs are class constants)
"""simclust.testing.checks (conformance checks) and the opt-in pytest plugin.

The built-in strategies and metrics must pass every check; deliberately broken
classes must fail exactly the check that describes what is wrong with them.
"""

from __future__ import annotations

import re
import textwrap

import numpy as np
import polars as pl
import pytest
from simclust import get_host
from simclust.base import GraphSpec, Metric, Strategy
from simclust.cluster import KMeans
from simclust.default_plugins.metrics import Edge, Intra
from simclust.default_plugins.strategies import ConnectedComponents
from simclust.testing import (
    check_metric,
    check_strategy,
    metric_checks,
    parametrize_with_checks,
    strategy_checks,
)

pytest_plugins = ["pytester"]

_BUILTINS = get_host(autoload=False)
_BUILTIN_STRATEGIES = [r.obj for r in _BUILTINS.strategies.registrations()]
_BUILTIN_METRICS = [r.obj for r in _BUILTINS.metrics.registrations()]


# --------------------------------------------------------------------------- built-ins pass


@parametrize_with_checks(
    [
        *_BUILTIN_STRATEGIES,
        *_BUILTIN_METRICS,
        ConnectedComponents(threshold=0.7, graph="knn", k=5, min_size=2),
        KMeans(n_clusters=3, init="random"),
    ]
)
def test_builtins_follow_the_contracts(obj, check):
    check(obj)


def test_builtins_are_all_covered():
    names = {r.name for r in _BUILTINS.strategies.registrations()}
    assert {"connected-components", "kmeans"} <= names
    assert {"intra", "edge", "centroid", "inter", "silhouette"} <= {
        r.name for r in _BUILTINS.metrics.registrations()
    }


# --------------------------------------------------------------------------- generators


def test_strategy_checks_order_and_graph_check():
    cc = [name for name, _ in strategy_checks(ConnectedComponents)]
    km = [name for name, _ in strategy_checks(KMeans)]
    assert cc[:4] == [
        "check_interface",
        "check_parameters",
        "check_init_stores_params",
        "check_set_params",
    ]
    assert cc[-2:] == ["check_deterministic", "check_does_not_modify_X"]
    assert "check_fit_with_graph" in cc  # graph_spec() is not None
    assert "check_fit_with_graph" not in km
    assert set(cc) - set(km) == {"check_fit_with_graph"}


def test_metric_checks_needs_graph_only_for_graph_metrics():
    edge = dict(metric_checks(Edge))
    intra = dict(metric_checks(Intra))
    assert "check_needs_graph" in edge
    assert "check_needs_graph" not in intra
    assert set(edge) - set(intra) == {"check_needs_graph"}


def test_yielded_checks_are_named_callables_taking_the_object():
    for name, check in strategy_checks(KMeans):
        assert check.__name__ == name
        check(KMeans)  # passes


def test_parametrize_with_checks_ids_and_argnames():
    mark = parametrize_with_checks([ConnectedComponents(threshold=0.8), Intra])
    assert mark.args[0] == "obj, check"
    ids = [p.id for p in mark.args[1]]
    assert ids[0] == "ConnectedComponents(threshold=0.8)-check_interface"
    assert "Intra-check_compute_returns_declared" in ids
    assert len(ids) == len(set(ids))
    assert len(ids) == len(list(strategy_checks(ConnectedComponents))) + len(
        list(metric_checks(Intra))
    )


def test_parametrize_with_checks_rejects_other_objects():
    with pytest.raises(TypeError, match="neither a simclust Strategy nor a Metric"):
        parametrize_with_checks([dict])


# --------------------------------------------------------------------------- broken strategies


class Good(Strategy):
    """Cluster 1: a positive first coordinate; 0 otherwise."""

    def __init__(self, *, axis: int = 0) -> None:
        self.axis = axis

    def fit(self, X, *, graph=None):
        self.labels_ = (np.asarray(X)[:, self.axis] > 0).astype(np.int64)
        return self


class PositionalParam(Good):  # positional-or-keyword: passed by keyword, fine
    def __init__(self, axis: int = 0) -> None:
        self.axis = axis


class UnannotatedParam(Good):  # scikit-learn style: the default's type (int) is checked
    def __init__(self, *, axis=0) -> None:
        self.axis = axis


class VarArgs(Good):
    def __init__(self, *args, axis: int = 0) -> None:
        self.axis = axis


class UnannotatedRequired(Good):
    def __init__(self, *, axis) -> None:
        self.axis = axis


class DefaultOfWrongType(Good):
    def __init__(self, *, axis: int = 0.5) -> None:
        self.axis = axis


class ChangesParam(Strategy):
    def __init__(self, *, threshold: float = 0.95) -> None:
        self.threshold = round(threshold, 1)  # not verbatim

    def fit(self, X, *, graph=None):
        self.labels_ = np.zeros(len(X), np.int64)
        return self


class StoresUnderOtherName(Good):
    def __init__(self, *, axis: int = 0) -> None:
        self._axis = axis
        self.axis = 0  # ignores the argument


class BadSetParams(Good):
    def set_params(self, **params):
        super().set_params(**params)  # returns None


class LabelsBeforeFit(Good):
    labels_ = np.zeros(0, np.int64)  # a class attribute: visible before fit


class BadGraphSpec(Good):
    def graph_spec(self):
        return {"kind": "knn", "k": 5}


class NeedsFloat64(Good):
    def fit(self, X, *, graph=None):
        if X.dtype != np.float64:
            raise TypeError("expected float64")
        return super().fit(X, graph=graph)


class ReturnsNone(Good):
    def fit(self, X, *, graph=None):
        super().fit(X, graph=graph)


class WrongShape(Good):
    def fit(self, X, *, graph=None):
        self.labels_ = np.zeros(len(X) - 1, np.int64)
        return self


class WrongDtype(Good):
    def fit(self, X, *, graph=None):
        self.labels_ = np.zeros(len(X), np.int32)
        return self


class BelowNoise(Good):
    def fit(self, X, *, graph=None):
        self.labels_ = np.full(len(X), -2, np.int64)
        return self


class GraphDisagrees(Good):
    def graph_spec(self):
        return GraphSpec("knn", k=5)

    def fit(self, X, *, graph=None):
        value = 0 if graph is None else 1
        self.labels_ = np.full(len(X), value, np.int64)
        return self


class Random(Good):
    def fit(self, X, *, graph=None):
        self.labels_ = np.random.default_rng().integers(0, 3, len(X)).astype(np.int64)
        return self


class NormalisesInPlace(Good):
    def fit(self, X, *, graph=None):
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        return super().fit(X, graph=graph)


class NotAStrategy:  # no fit
    def __init__(self, *, axis: int = 0) -> None:
        self.axis = axis


class DuckTyped:  # no base class: the scikit-learn clusterer contract
    def __init__(self, axis=0):
        self.axis = axis

    def fit(self, X, y=None):
        self.labels_ = (np.asarray(X)[:, self.axis] > 0).astype(np.int64)
        return self


class GraphSpecButFitTakesNoGraph(Good):
    def graph_spec(self):
        return GraphSpec("knn", k=5)

    def fit(self, X):
        return super().fit(X)


class NoFit(Strategy):
    pass


@pytest.mark.parametrize(
    "cls, check, detail",
    [
        (NotAStrategy, "check_interface", "NotAStrategy has no fit method"),
        (NoFit, "check_interface", "does not implement the abstract method(s) fit"),
        (GraphSpecButFitTakesNoGraph, "check_interface", "fit does not take graph="),
        (VarArgs, "check_interface", "takes *args: parameters must be named"),
        (UnannotatedRequired, "check_interface", "'axis' needs a type annotation or a default"),
        (DefaultOfWrongType, "check_parameters", "default of 'axis' does not fit"),
        (ChangesParam, "check_init_stores_params", "must store parameters unchanged"),
        (StoresUnderOtherName, "check_init_stores_params", "must store parameters unchanged"),
        (BadSetParams, "check_set_params", "must return self"),
        (LabelsBeforeFit, "check_no_labels_before_fit", "labels_ exists before fit"),
        (BadGraphSpec, "check_graph_spec", "returned dict"),
        (NeedsFloat64, "check_fit_float32_embeddings", "expected float64"),
        (ReturnsNone, "check_fit_returns_self", "expected self"),
        (WrongShape, "check_labels", "shape (59,), expected (60,)"),
        (WrongDtype, "check_labels", "dtype int32, expected int64"),
        (BelowNoise, "check_labels", "below -1"),
        (GraphDisagrees, "check_fit_with_graph", "different labels_"),
        (Random, "check_deterministic", "different labels_"),
        (NormalisesInPlace, "check_does_not_modify_X", "writes into its input"),
    ],
)
def test_broken_strategy_fails_the_right_check(cls, check, detail):
    with pytest.raises(AssertionError) as info:
        check_strategy(cls)
    message = str(info.value)
    assert message.startswith(f"{check} failed for strategy {cls.__name__}: "), message
    assert detail in message


def test_good_strategy_passes_and_name_appears_in_failures():
    check_strategy(Good)
    check_strategy(PositionalParam)
    check_strategy(UnannotatedParam)
    check_strategy(DuckTyped)
    check_strategy(DuckTyped(axis=1), name="duck")
    check_strategy(Good(axis=1), name="good")
    with pytest.raises(AssertionError, match=r"^check_labels failed for strategy 'wrong' \("):
        check_strategy(WrongShape, name="wrong")


class RequiredParam(Good):
    def __init__(self, *, axis: int) -> None:
        self.axis = axis


def test_instances_are_checked_with_their_params():
    with pytest.raises(AssertionError, match="cannot construct RequiredParam"):
        check_strategy(RequiredParam)
    check_strategy(RequiredParam(axis=1))  # copies are made from get_params()


# --------------------------------------------------------------------------- broken metrics


class Sizes(Metric):
    outputs = {
        "clusters": {"cluster": pl.Int64(), "n_rows": pl.UInt32()},
        "assignments": {"index": pl.UInt32(), "in_cluster": pl.Boolean()},
    }

    def compute(self, ctx):
        df = pl.DataFrame({"cluster": ctx.labels}).filter(pl.col("cluster") >= 0)
        clusters = df.group_by("cluster").len("n_rows").sort("cluster")
        rows = pl.DataFrame({"index": np.arange(ctx.n_rows), "in_cluster": ctx.labels >= 0}).cast(
            {"index": pl.UInt32}
        )
        return {"clusters": clusters.cast({"n_rows": pl.UInt32}), "assignments": rows}


class WrongSchema(Sizes):
    def compute(self, ctx):
        out = super().compute(ctx)
        return {**out, "clusters": out["clusters"].cast({"n_rows": pl.Int64})}


class UndeclaredFrame(Sizes):
    def compute(self, ctx):
        return {**super().compute(ctx), "extra": pl.DataFrame({"a": [1]})}


class MissingFrame(Sizes):
    def compute(self, ctx):
        return {"clusters": super().compute(ctx)["clusters"]}


class NotAFrame(Sizes):
    def compute(self, ctx):
        return {**super().compute(ctx), "clusters": {"cluster": [0]}}


class NoKeyColumn(Sizes):
    outputs = {"clusters": {"id": pl.Int64(), "n_rows": pl.UInt32()}}


class DeclaresSize(Sizes):
    outputs = {"clusters": {"cluster": pl.Int64(), "size": pl.UInt32()}}


class NothingDeclared(Metric):
    def compute(self, ctx):
        return {}


class NoiseRow(Sizes):
    def compute(self, ctx):
        out = super().compute(ctx)
        df = pl.DataFrame({"cluster": ctx.labels}).group_by("cluster").len("n_rows")
        return {**out, "clusters": df.sort("cluster").cast({"n_rows": pl.UInt32})}


class Duplicated(Sizes):
    def compute(self, ctx):
        out = super().compute(ctx)
        c = out["clusters"]
        return {**out, "clusters": pl.concat([c, c]).sort("cluster")}


class ShortAssignments(Sizes):
    def compute(self, ctx):
        out = super().compute(ctx)
        return {**out, "assignments": out["assignments"].filter(pl.col("in_cluster"))}


class FailsOnSingletons(Sizes):
    def compute(self, ctx):
        if (np.bincount(ctx.labels[ctx.labels >= 0]) == 1).any():
            raise ZeroDivisionError("std of a single row")
        return super().compute(ctx)


class KnnOnly(Sizes):
    needs_graph = True

    def compute(self, ctx):
        if ctx.graph is None or ctx.graph.spec.kind != "knn":
            raise ValueError("needs a kNN graph")
        return super().compute(ctx)


class UsesGraphUndeclared(Sizes):
    def compute(self, ctx):
        _ = ctx.graph.n_edges
        return super().compute(ctx)


class RandomMetric(Sizes):
    def compute(self, ctx):
        out = super().compute(ctx)
        noise = np.random.default_rng().random(ctx.n_rows) > 0.5
        return {**out, "assignments": out["assignments"].with_columns(in_cluster=noise)}


class ModifiesX(Sizes):
    def compute(self, ctx):
        ctx.X[:, 0] = 0.0
        return super().compute(ctx)


class ModifiesLabels(Sizes):
    def compute(self, ctx):
        ctx.labels[ctx.labels < 0] = 0
        return super().compute(ctx)


@pytest.mark.parametrize(
    "cls, check, detail",
    [
        (NoKeyColumn, "check_outputs_declared", "key column 'cluster'"),
        (DeclaresSize, "check_outputs_declared", "['size'], which simclust provides"),
        (NothingDeclared, "check_outputs_declared", "declares no outputs"),
        (WrongSchema, "check_compute_returns_declared", "'n_rows': Int64"),
        (UndeclaredFrame, "check_compute_returns_declared", "['extra'], not declared"),
        (MissingFrame, "check_compute_returns_declared", "declared frame(s) ['assignments']"),
        (NotAFrame, "check_compute_returns_declared", "is a dict, not a DataFrame"),
        (NoiseRow, "check_compute_returns_declared", "a row for cluster -1"),
        (Duplicated, "check_compute_returns_declared", "repeats cluster ids"),
        (ShortAssignments, "check_compute_returns_declared", "one per row (60)"),
        (UsesGraphUndeclared, "check_compute_returns_declared", "AttributeError"),
        (FailsOnSingletons, "check_noise_and_singleton", "std of a single row"),
        (KnnOnly, "check_needs_graph", "needs a kNN graph"),
        (RandomMetric, "check_deterministic", "frame 'assignments' differs"),
        (ModifiesX, "check_does_not_modify_X", "writes into ctx.X"),
        (ModifiesLabels, "check_does_not_modify_X", "writes into ctx.X, ctx.labels"),
    ],
)
def test_broken_metric_fails_the_right_check(cls, check, detail):
    with pytest.raises(AssertionError) as info:
        check_metric(cls)
    message = str(info.value)
    assert message.startswith(f"{check} failed for metric {cls.__name__}: "), message
    assert detail in message, message


def test_good_metric_passes():
    check_metric(Sizes)
    check_metric(Sizes(), name="sizes")


def test_wrong_schema_message_shows_both_schemas():
    with pytest.raises(AssertionError) as info:
        check_metric(WrongSchema, name="wrong-schema")
    message = str(info.value)
    assert "metric 'wrong-schema' (WrongSchema)" in message
    assert re.search(
        r"has schema \{.*'n_rows': Int64.*\}, but outputs declares \{.*UInt32", message
    )


# --------------------------------------------------------------------------- pytest plugin


PLUGIN_MODULE = """
import numpy as np
import simclust
from simclust.base import Strategy


class Halves(Strategy):
    def __init__(self, *, axis: int = 0) -> None:
        self.axis = axis

    def fit(self, X, *, graph=None):
        self.labels_ = (X[:, self.axis] > 0).astype(np.int64)
        return self


class Broken(Halves):
    def fit(self, X, *, graph=None):
        super().fit(X, graph=graph)
        self.labels_ = self.labels_[:-1]
        return self


@simclust.hookimpl
def simclust_register_strategies(registry):
    registry.register("halves", Halves)
"""

INNER_TESTS = """
import os

import numpy as np
import simclust
from simclust.testing import parametrize_with_checks

import authorplugin


def test_outer_env_is_visible_without_the_fixture():
    assert os.environ["SIMCLUST_BLOCK_PLUGINS"] == "simclust.default_plugins"


def test_clean_env(simclust_clean_env):
    assert not [k for k in os.environ if k.startswith("SIMCLUST_")]


def test_host_has_the_builtins_only(simclust_host):
    assert "kmeans" in simclust_host.strategies
    assert "halves" not in simclust_host.strategies
    assert [p.name for p in simclust_host.plugins()] == ["simclust.default_plugins"]


def test_factory_registers_the_plugin(simclust_host_factory, embeddings):
    host = simclust_host_factory(authorplugin)
    reg = host.strategies.get("halves")
    assert reg.plugin == "authorplugin" and reg.obj is authorplugin.Halves
    res = simclust.analyze(embeddings, strategy="halves", metrics=["intra"], host=host)
    assert res.assignments.height == 200
    assert sorted(res.clusters["cluster"].to_list()) == [0, 1]


def test_factory_names_and_builtins(simclust_host_factory):
    host = simclust_host_factory(("author-plugin", authorplugin), builtins=False)
    assert host.strategies.names() == ["halves"]
    assert host.strategies.get("halves").plugin == "author-plugin"


def test_embeddings(embeddings):
    assert embeddings.shape == (200, 16) and embeddings.dtype == np.float32
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


@parametrize_with_checks([authorplugin.Halves, authorplugin.Broken])
def test_conformance(obj, check):
    check(obj)
"""


@pytest.fixture
def author_project(pytester, monkeypatch):
    monkeypatch.setenv("SIMCLUST_BLOCK_PLUGINS", "simclust.default_plugins")
    monkeypatch.setenv("SIMCLUST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeconftest('pytest_plugins = ["simclust.testing.pytest_plugin"]\n')
    pytester.makepyfile(authorplugin=PLUGIN_MODULE, test_author=INNER_TESTS)
    pytester.syspathinsert()
    return pytester


def test_pytest_plugin_fixtures_and_parametrize(author_project):
    result = author_project.runpytest("-v", "-p", "no:cacheprovider", "-p", "no:hypothesispytest")
    n_checks = len(list(strategy_checks(Good)))
    broken_failures = ["check_labels", "check_deterministic"]  # both read labels_
    result.assert_outcomes(
        passed=6 + n_checks + (n_checks - len(broken_failures)), failed=len(broken_failures)
    )
    for check in broken_failures:
        result.stdout.fnmatch_lines([f"*test_conformance?Broken-{check}? FAILED*"])
    result.stdout.fnmatch_lines(["*check_labels failed for strategy Broken: labels_ has shape*"])
    result.stdout.fnmatch_lines(["*test_conformance?Halves-check_does_not_modify_X? PASSED*"])


def test_pytest_plugin_is_opt_in(pytester):
    pytester.makepyfile(
        textwrap.dedent(
            """
            def test_uses_fixture(simclust_host):
                pass
            """
        )
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'simclust_host' not found*"])
