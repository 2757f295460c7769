"""Tests of the simclust-labels plugin against a naive Counter/log2 computation."""

from __future__ import annotations

import importlib.metadata
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest
import simclust
from hypothesis import given, settings
from hypothesis import strategies as st
from simclust.base import MetricContext, parameters
from simclust.exceptions import ParameterError, ShapeError
from simclust.testing import make_embeddings, metric_checks
from simclust_labels import ASSIGNMENTS_SCHEMA, CLUSTERS_SCHEMA, LabelPurity

Array = npt.NDArray[Any]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's SIMCLUST_* variables (blocked plugins, no autoload) do not apply."""
    for name in ("SIMCLUST_BLOCK_PLUGINS", "SIMCLUST_DISABLE_PLUGIN_AUTOLOAD"):
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------- reference


def naive(
    clusters: list[int],
    labels: list[Any],
    *,
    min_purity: float = 0.8,
    min_size: int = 3,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Per-cluster and per-row results computed row by row with Counter and math.log2."""
    n = len(clusters)
    as_str = [None if v is None else str(v) for v in labels]
    per: dict[int, tuple[Any, ...]] = {}
    out_clusters = []
    for k in sorted({c for c in clusters if c >= 0}):
        members = [i for i in range(n) if clusters[i] == k]
        labs = [as_str[i] for i in members if as_str[i] is not None]
        counts = Counter(labs)
        n_lab = len(labs)
        if n_lab:
            top = max(counts.values())
            majority: str | None = min(lab for lab, c in counts.items() if c == top)
            purity: float | None = top / n_lab
            entropy: float | None = -sum(c / n_lab * math.log2(c / n_lab) for c in counts.values())
        else:
            majority = purity = entropy = None
        per[k] = (len(members), majority, purity)
        out_clusters.append((k, n_lab, majority, purity, entropy))
    out_rows = []
    for i in range(n):
        suspect = False
        if clusters[i] >= 0 and as_str[i] is not None:
            size, majority, purity = per[clusters[i]]
            suspect = (
                size >= min_size
                and purity is not None
                and purity >= min_purity
                and as_str[i] != majority
            )
        out_rows.append((i, as_str[i], suspect))
    return out_clusters, out_rows


def run_metric(
    clusters: list[int], labels: pl.Series | list[Any], **params: Any
) -> dict[str, pl.DataFrame]:
    """LabelPurity on a context whose per-row column ``label`` holds ``labels``."""
    n = len(clusters)
    series = labels if isinstance(labels, pl.Series) else pl.Series("label", labels)
    ctx = MetricContext(
        np.eye(n, dtype=np.float32),
        np.asarray(clusters, dtype=np.int64),
        rows=pl.DataFrame([series.alias(params.pop("column", "label"))]),
    )
    return LabelPurity(**params).compute(ctx)


def assert_matches(
    out: dict[str, pl.DataFrame],
    clusters: list[int],
    labels: list[Any],
    **params: Any,
) -> None:
    """The metric's frames equal the naive reference (floats within float32 precision)."""
    want_c, want_r = naive(clusters, labels, **params)
    got_c = out["clusters"]
    assert dict(got_c.schema) == CLUSTERS_SCHEMA
    assert dict(out["assignments"].schema) == ASSIGNMENTS_SCHEMA
    assert got_c.height == len(want_c)
    for got, want in zip(got_c.rows(), want_c, strict=True):
        assert got[:3] == want[:3]
        for g, w in zip(got[3:], want[3:], strict=True):
            assert (g is None) == (w is None)
            if w is not None:
                assert g == pytest.approx(w, abs=1e-6)
    assert out["assignments"].rows() == want_r


# --------------------------------------------------------------------------- unit


def test_ties_nulls_noise_and_unlabelled_cluster() -> None:
    """Hand-made cases: a tie, nulls, noise rows and a cluster without labels."""
    clusters = [0, 0, 0, 0, 1, 1, 1, 1, 1, -1, -1, 2, 2, 2]
    labels = ["b", "a", "b", "a", "x", "x", "x", "x", "y", "x", None, None, None, None]
    out = run_metric(clusters, labels)
    assert_matches(out, clusters, labels)
    rows = out["clusters"].rows()
    assert rows[0] == (0, 4, "a", 0.5, 1.0)  # tie a/b -> "a"; one bit of entropy
    assert rows[1][:4] == (1, 5, "x", pytest.approx(0.8))  # 4/5 = 0.8 >= 0.8: pure enough
    assert rows[2] == (2, 0, None, None, None)  # no labelled member
    assert out["assignments"]["suspect_label"].to_list() == [
        *[False] * 8,
        True,  # "y" in the "x" cluster
        *[False] * 5,  # noise (even a labelled noise row) and unlabelled rows
    ]


def test_integer_labels_compare_as_strings() -> None:
    """Integer labels are cast to strings; ties go to the smaller string ("10" < "9")."""
    clusters = [0, 0, 0, 0, 1, 1, 1]
    labels = [9, 10, 9, 10, 3, 3, 7]
    out = run_metric(clusters, pl.Series("label", labels, dtype=pl.Int64), min_purity=0.6)
    assert_matches(out, clusters, labels, min_purity=0.6)
    assert out["clusters"]["majority_label"].to_list() == ["10", "3"]
    assert out["assignments"]["label"].to_list() == [str(v) for v in labels]
    assert out["assignments"]["suspect_label"].to_list() == [*[False] * 6, True]


def test_min_size_and_min_purity_boundaries() -> None:
    """A cluster of exactly min_size with purity exactly min_purity accuses its minority."""
    clusters = [0, 0, 0, 0, 0, 1, 1, 1, 1]
    labels = ["a", "a", "a", "a", "b", "c", "c", "c", "d"]
    flags = run_metric(clusters, labels, min_size=5, min_purity=0.8)["assignments"]
    assert flags["suspect_label"].to_list() == [*[False] * 4, True, *[False] * 4]
    flags = run_metric(clusters, labels, min_size=4, min_purity=0.75)["assignments"]
    assert flags["suspect_label"].to_list() == [*[False] * 4, True, *[False] * 3, True]
    flags = run_metric(clusters, labels, min_size=6, min_purity=0.0)["assignments"]
    assert not flags["suspect_label"].any()


def test_unlabelled_members_count_towards_size_not_purity() -> None:
    """Size counts every member; purity and entropy only the labelled ones."""
    clusters = [0, 0, 0, 0]
    labels = ["a", None, None, "b"]
    out = run_metric(clusters, labels, min_purity=0.5)
    assert_matches(out, clusters, labels, min_purity=0.5)
    assert out["clusters"].row(0) == (0, 2, "a", 0.5, 1.0)
    assert out["assignments"]["suspect_label"].to_list() == [False, False, False, True]


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        (pl.Series("label", ["a", "b", None]), ["a", "b", None]),
        (pl.Series("label", [1, 2, None], dtype=pl.Int32), ["1", "2", None]),
        (pl.Series("label", [1, 2, 3], dtype=pl.UInt8), ["1", "2", "3"]),
        (pl.Series("label", [1.5, float("nan"), None]), ["1.5", None, None]),
        (pl.Series("label", ["x", "y", "x"], dtype=pl.Categorical), ["x", "y", "x"]),
        (pl.Series("label", [True, False, None]), ["true", "false", None]),
        (pl.Series("label", [None, None, None]), [None, None, None]),
    ],
)
def test_label_dtypes(series: pl.Series, expected: list[Any]) -> None:
    """Scalar label columns of any dtype become strings; NaN counts as missing."""
    out = run_metric([0, 0, -1], series)
    assert out["assignments"]["label"].to_list() == expected
    assert dict(out["assignments"].schema) == ASSIGNMENTS_SCHEMA


def test_all_noise_and_empty_results_keep_the_schema() -> None:
    """Only noise rows: no cluster rows, nobody suspect, exact schemas."""
    out = run_metric([-1, -1, -1], ["a", "b", None])
    assert out["clusters"].height == 0
    assert dict(out["clusters"].schema) == CLUSTERS_SCHEMA
    assert out["assignments"]["suspect_label"].to_list() == [False, False, False]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-1, 4),
            st.sampled_from(["a", "b", "c", "10", "9", "Z", "é", None]),
        ),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from([0.0, 0.5, 0.6, 0.8, 1.0]),
    st.integers(1, 6),
)
def test_matches_naive_reference(
    rows: list[tuple[int, str | None]], min_purity: float, min_size: int
) -> None:
    """Random clusters and labels: identical to the naive computation."""
    clusters = [c for c, _ in rows]
    labels = [lab for _, lab in rows]
    out = run_metric(
        clusters,
        pl.Series("label", labels, dtype=pl.String),
        min_purity=min_purity,
        min_size=min_size,
    )
    assert_matches(out, clusters, labels, min_purity=min_purity, min_size=min_size)


def test_deterministic_and_sorted() -> None:
    """Two computes give identical frames; clusters are sorted by id."""
    rng = np.random.default_rng(0)
    clusters = rng.integers(-1, 50, 2000).tolist()
    labels = rng.choice(["a", "b", "c", "d"], 2000).tolist()
    first = run_metric(clusters, labels)
    second = run_metric(clusters, labels)
    for key in first:
        assert first[key].equals(second[key])
    ids = first["clusters"]["cluster"].to_list()
    assert ids == sorted(set(clusters) - {-1})
    assert_matches(first, clusters, labels)


# --------------------------------------------------------------------------- errors


def test_missing_rows_and_column_errors() -> None:
    """A missing label column names it and lists what there is."""
    x, lab = np.eye(3, dtype=np.float32), np.array([0, 0, 1])
    with pytest.raises(ParameterError, match=r"no per-row columns were given.*'label'"):
        LabelPurity().compute(MetricContext(x, lab))
    rows = pl.DataFrame({"klass": ["a", "b", "c"], "caption": ["x", "y", "z"]})
    with pytest.raises(
        ParameterError, match="no per-row column 'label'; available columns: 'klass', 'caption'"
    ):
        LabelPurity().compute(MetricContext(x, lab, rows=rows))
    out = LabelPurity(label_column="klass").compute(MetricContext(x, lab, rows=rows))
    assert out["assignments"]["label"].to_list() == ["a", "b", "c"]
    nested = pl.DataFrame({"label": [[1], [2], [3]]})
    with pytest.raises(ParameterError, match="labels must be scalars"):
        LabelPurity().compute(MetricContext(x, lab, rows=nested))
    with pytest.raises(ShapeError, match="has 2 values but there are 3 rows"):
        LabelPurity().compute(MetricContext(x, lab, rows=pl.DataFrame({"label": ["a", "b"]})))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"min_purity": 1.5}, r"min_purity must be in \[0, 1\], got 1.5"),
        ({"min_purity": -0.1}, r"min_purity must be in \[0, 1\]"),
        ({"min_size": 0}, "min_size must be an int >= 1, got 0"),
        ({"label_column": ""}, "label_column must be a non-empty string"),
    ],
)
def test_invalid_parameters(params: dict[str, Any], message: str) -> None:
    """Out-of-range parameters raise ParameterError."""
    ctx = MetricContext(
        np.eye(2, dtype=np.float32), np.array([0, 0]), rows=pl.DataFrame({"label": ["a", "a"]})
    )
    with pytest.raises(ParameterError, match=message):
        LabelPurity(**params).compute(ctx)


def test_errors_through_analyze() -> None:
    """Through analyze, the plugin's error is reported naming the plugin."""
    x = make_embeddings(30, 8, n_clusters=2, seed=0)
    with pytest.raises(ParameterError, match=r"label-purity.*simclust-labels.*no per-row columns"):
        simclust.analyze(x, metrics=["label-purity"])
    rows = pl.DataFrame({"class": ["a"] * 30})
    with pytest.raises(ParameterError, match=r"available columns: 'class'"):
        simclust.analyze(x, rows=rows, metrics=["label-purity"])
    res = simclust.analyze(
        x, rows=rows, metrics={"label-purity": {"label_column": "class"}}, threshold=0.5
    )
    assert res.assignments["label"].to_list() == ["a"] * 30


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def grouped() -> tuple[Array, Array, list[str], set[int]]:
    """Six well-separated groups; class label = group, 15 rows flipped to another class."""
    x, y = make_embeddings(
        600,
        32,
        n_clusters=6,
        seed=4,
        dup_frac=0.0,
        outlier_frac=0.0,
        size_sigma=0.0,
        spread=(0.2, 0.3),
        return_labels=True,
    )
    rng = np.random.default_rng(1)
    flipped = rng.choice(len(y), 15, replace=False)
    classes = y.copy()
    classes[flipped] = (y[flipped] + rng.integers(1, 6, flipped.size)) % 6
    labels = [f"class-{c}" for c in classes]
    return x, y, labels, set(flipped.tolist())


@pytest.mark.parametrize(
    ("strategy", "params"),
    [
        ("connected-components", {"threshold": 0.8}),
        ("kmeans", {"n_clusters": 6, "n_init": 4}),
    ],
)
def test_flipped_labels_are_flagged(
    grouped: tuple[Array, Array, list[str], set[int]], strategy: str, params: dict[str, Any]
) -> None:
    """The flipped rows, and nobody else, are suspect; purity matches the reference."""
    x, y, labels, flipped = grouped
    res = simclust.analyze(
        x,
        strategy=strategy,
        metrics=["label-purity"],
        rows=pl.DataFrame({"label": labels}),
        **params,
    )
    cl = res.assignments["cluster"].to_numpy()
    assert len(set(cl.tolist())) == 6
    assert len(set(zip(cl.tolist(), y.tolist(), strict=True))) == 6  # clusters = groups
    suspects = set(np.flatnonzero(res.assignments["suspect_label"].to_numpy()).tolist())
    # The groups are recovered exactly, so exactly the flipped rows are suspect.
    assert suspects == flipped, (flipped - suspects, suspects - flipped)

    want_c, _ = naive(cl.tolist(), labels)
    got = res.clusters.select("cluster", "size", "n_labeled", "majority_label", "purity")
    for row, want in zip(got.rows(), want_c, strict=True):
        assert row[0] == want[0] and row[2:4] == want[1:3]
        assert row[4] == pytest.approx(want[3], abs=1e-6)
        assert row[1] == want[1]  # every row is labelled here
    assert res.clusters["purity"].min() >= 0.9  # type: ignore[operator]


def test_parquet_end_to_end(
    tmp_path: Path, grouped: tuple[Array, Array, list[str], set[int]]
) -> None:
    """The Parquet loader passes the label column through to the metric."""
    x, _, labels, flipped = grouped
    path = tmp_path / "data.parquet"
    pl.DataFrame(
        {
            "id": [f"img_{i:04d}.jpg" for i in range(len(x))],
            "embedding": pl.Series(x.tolist(), dtype=pl.List(pl.Float32)),
            "label": labels,
        }
    ).write_parquet(path)
    res = simclust.analyze(path, threshold=0.8, metrics=["label-purity", "intra"])
    a = res.assignments
    assert a["id"].to_list()[:2] == ["img_0000.jpg", "img_0001.jpg"]
    assert a["label"].to_list() == labels
    suspects = set(np.flatnonzero(a["suspect_label"].to_numpy()).tolist())
    assert suspects == flipped
    assert {"n_labeled", "majority_label", "purity", "label_entropy", "sim_mean"} <= set(
        res.clusters.columns
    )
    want_c, want_r = naive(a["cluster"].to_list(), labels)
    assert a.select("index", "label", "suspect_label").rows() == want_r
    ent = res.clusters["label_entropy"].to_list()
    assert ent == pytest.approx([w[4] for w in want_c], abs=1e-6)


# --------------------------------------------------------------------------- plugin


def test_found_through_the_entry_point() -> None:
    """The metric comes from the entry point of the simclust-labels distribution."""
    eps = importlib.metadata.entry_points(group="simclust", name="labels")
    assert [ep.value for ep in eps] == ["simclust_labels"]
    reg = simclust.get_host().metrics.get("label-purity")
    assert reg.obj is LabelPurity
    assert (reg.plugin, reg.distribution) == ("labels", "simclust-labels")
    assert "label-purity" not in simclust.get_host(autoload=False).metrics
    assert [(p.name, p.default) for p in parameters(LabelPurity)] == [
        ("label_column", "label"),
        ("min_purity", 0.8),
        ("min_size", 3),
    ]


def _class_labels(labels: npt.NDArray[np.int64]) -> pl.DataFrame:
    """Class annotations for the checks' rows: the cluster, one row mislabelled, one null."""
    lab: list[str | None] = [f"class-{c}" for c in labels.tolist()]
    lab[-1] = "class-x"
    lab[-2] = None
    return pl.DataFrame({"label": lab}, schema={"label": pl.String})


@pytest.mark.parametrize("check_name", [name for name, _ in metric_checks(LabelPurity)])
def test_conformance_checks(check_name: str) -> None:
    """simclust's metric conformance checks, given class annotations for the rows."""
    checks = dict(metric_checks(LabelPurity, name="label-purity", rows=_class_labels))
    checks[check_name](LabelPurity)
