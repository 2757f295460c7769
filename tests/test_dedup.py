"""Near-duplicates (``simclust.dedup``, ``simclust dedup``, ``[dedup]``) against numpy.

Seeded data with planted groups of near-duplicates: random directions (no two of them
near each other) and, for some of them, noisy copies at similarity ~0.99. Checked:
the groups are exactly the planted ones, one row kept each, ``to_remove.txt`` holds
exactly the others, ``similarity_to_kept`` and the medoid agree with numpy, the
``largest-file`` policy with real files, bad input, a user's ``to_remove.txt``, the
command line and the config end to end.
"""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
import simclust
from polars.testing import assert_frame_equal
from simclust.duplicates import (
    DUPLICATE_PAIRS_SCHEMA,
    DUPLICATES_SCHEMA,
    TO_REMOVE_FILE,
)
from simclust.exceptions import ConfigError, ParameterError, ShapeError
from test_output_safety import invoke, one_line_error

N_BASE, DIM, THRESHOLD = 240, 32, 0.95
GROUP_SIZES = (2, 2, 2, 3, 3, 4, 5, 7)


def planted(seed: int = 11):
    """``(X, groups)``: unit rows in shuffled order and the planted groups (row sets)."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((N_BASE, DIM))
    rows, members = [*base], []
    for g, size in enumerate(GROUP_SIZES):
        origin = base[g]
        members.append([g])
        for _ in range(size - 1):
            noise = rng.standard_normal(DIM) * rng.uniform(0.03, 0.12) * np.linalg.norm(origin)
            members[-1].append(len(rows))
            rows.append(origin + noise / math.sqrt(DIM))
    x = np.asarray(rows)
    perm = rng.permutation(len(x))
    inverse = np.argsort(perm)
    groups = [sorted(int(inverse[m]) for m in group) for group in members]
    return x[perm].astype(np.float32), groups


def cosine(x):
    x64 = np.asarray(x, np.float64)
    unit = x64 / np.linalg.norm(x64, axis=1, keepdims=True)
    return unit @ unit.T


@pytest.fixture(scope="module")
def data():
    x, groups = planted()
    sim = cosine(x)
    np.fill_diagonal(sim, -1.0)
    in_group = {r for g in groups for r in g}
    outside = [r for r in range(len(x)) if r not in in_group]
    # the planted data is what it claims: members close, everything else far
    assert all(sim[np.ix_(g, g)][~np.eye(len(g), dtype=bool)].min() > 0.97 for g in groups)
    assert sim[np.ix_(outside, range(len(x)))].max() < 0.9
    return x, groups


def found_groups(d: simclust.Duplicates) -> list[list[int]]:
    return sorted(
        sorted(rows) for rows in d.duplicates.group_by("group").agg("row")["row"].to_list()
    )


# --------------------------------------------------------------------------- groups


@pytest.mark.parametrize("keep", ["medoid", "first"])
def test_planted_groups_one_kept_each(data, keep):
    x, groups = data
    d = simclust.dedup(x, threshold=THRESHOLD, keep=keep)
    assert d.duplicates.schema == pl.Schema(DUPLICATES_SCHEMA)
    assert d.pairs.schema == pl.Schema(DUPLICATE_PAIRS_SCHEMA)
    assert found_groups(d) == sorted(groups)
    kept = d.duplicates.group_by("group").agg(pl.col("kept").sum())["kept"]
    assert kept.to_list() == [1] * len(groups)
    in_group = {r for g in groups for r in g}
    kept_rows = set(d.duplicates.filter("kept")["row"].to_list())
    assert d.to_remove == [str(r) for r in sorted(in_group - kept_rows)]  # ids: row numbers
    # group numbers follow each group's lowest row; rows within a group ascending
    firsts = d.duplicates.group_by("group").agg(pl.col("row").min()).sort("group")["row"]
    assert firsts.to_list() == sorted(firsts.to_list())
    assert d.duplicates.equals(d.duplicates.sort("group", "row"))
    assert d.n_groups == len(groups) and d.threshold == THRESHOLD and d.keep == keep
    s = d.summary()
    assert (s["n_groups"], s["n_to_remove"]) == (len(groups), len(in_group) - len(groups))
    assert (s["largest_group"], s["graph_search"], s["graph_recall"]) == (7, "exact", 1.0)


def test_similarity_to_kept_is_the_cosine(data):
    x, _ = data
    d = simclust.dedup(x, threshold=THRESHOLD)
    sim = cosine(x)
    df = d.duplicates
    kept_of = dict(df.filter("kept").select("group", "row").iter_rows())
    others = df.filter(~pl.col("kept"))
    expected = [sim[r, kept_of[g]] for g, r in others.select("group", "row").iter_rows()]
    np.testing.assert_allclose(others["similarity_to_kept"].to_numpy(), expected, rtol=1e-6)
    assert df.filter("kept")["similarity_to_kept"].null_count() == len(kept_of)


def test_medoid_is_the_numpy_argmax_of_mean_similarity(data):
    x, groups = data
    d = simclust.dedup(x, threshold=THRESHOLD, keep="medoid")
    sim = cosine(x)
    kept = dict(d.duplicates.filter("kept").select("row", "kept").iter_rows())
    for g in groups:
        block = sim[np.ix_(g, g)]
        mean_to_others = (block.sum(axis=1) - np.diag(block)) / (len(g) - 1)
        want = g[int(np.argmax(mean_to_others))]  # ties (a pair) -> the lower row
        assert want in kept, (g, mean_to_others)
        if len(g) == 2:
            assert want == min(g)


def test_first_keeps_the_lowest_row(data):
    x, groups = data
    d = simclust.dedup(x, threshold=THRESHOLD, keep="first")
    assert sorted(d.duplicates.filter("kept")["row"].to_list()) == sorted(min(g) for g in groups)


def test_pairs_are_the_edges_within_groups(data):
    x, _ = data
    d = simclust.dedup(x, threshold=THRESHOLD)
    sim = cosine(x)
    src, dst = np.nonzero(np.triu(sim >= THRESHOLD, k=1))
    got = d.pairs.select("src", "dst").rows()
    assert sorted(got) == sorted(zip(src.tolist(), dst.tolist(), strict=True))
    np.testing.assert_allclose(d.pairs["similarity"], sim[d.pairs["src"], d.pairs["dst"]], 1e-6)
    group_of = dict(d.duplicates.select("row", "group").iter_rows())
    assert [group_of[s] for s in d.pairs["src"]] == d.pairs["group"].to_list()
    assert d.pairs["src_id"].to_list() == [str(s) for s in d.pairs["src"]]


def test_exact_duplicates_have_similarity_one_and_searches_agree(data):
    x, _ = data
    doubled = np.vstack([x, x[:5] * 3.0])  # positive multiples: the same directions
    d = simclust.dedup(doubled, threshold=1.0, keep="first")
    assert found_groups(d) == [[i, len(x) + i] for i in range(5)]
    assert d.duplicates.filter(~pl.col("kept"))["similarity_to_kept"].to_list() == [1.0] * 5
    exact = simclust.dedup(x, threshold=THRESHOLD)
    certified = simclust.dedup(x, threshold=THRESHOLD, search="certified")
    assert certified.graph_search["method"] == "certified"
    assert_frame_equal(certified.duplicates, exact.duplicates)
    ivf = simclust.dedup(x, threshold=THRESHOLD, search="ivf")
    s = ivf.summary()
    assert s["graph_search"] == "ivf" and 0.0 <= s["graph_recall"] <= 1.0


def test_no_duplicates_gives_empty_frames():
    d = simclust.dedup(np.eye(4), threshold=0.5)
    assert d.duplicates.height == d.pairs.height == 0 and d.to_remove == []
    assert d.duplicates.schema == pl.Schema(DUPLICATES_SCHEMA)


# --------------------------------------------------------------------------- largest-file


def test_largest_file_with_paths(tmp_path, data):
    x, groups = data
    rng = np.random.default_rng(0)
    sizes = rng.integers(10, 200, len(x))
    g3 = groups[3]  # a tie in its group: the lower row wins
    sizes[g3] = 500
    paths = []
    for i, size in enumerate(sizes):
        p = tmp_path / f"f{i:04d}.bin"
        p.write_bytes(b"x" * int(size))
        paths.append(p)
    d = simclust.dedup(x, threshold=THRESHOLD, keep="largest-file", paths=paths)
    kept = set(d.duplicates.filter("kept")["row"].to_list())
    for g in groups:
        best = max(sizes[g])
        assert next(r for r in g if sizes[r] == best) in kept
    assert min(g3) in kept


def test_largest_file_in_an_image_folder(tmp_path):
    from PIL import Image
    from simclust.testing.images import make_image_dataset

    root = tmp_path / "photos"
    meta = make_image_dataset(
        root,
        n_images=24,
        n_groups=8,
        size=48,
        seed=3,
        outlier_fraction=0.0,
        near_duplicate_fraction=0.0,
    )
    jpgs = [p for p in meta["path"].to_list() if p.endswith(".jpg")][:3]
    assert len(jpgs) == 3
    copies = []
    for p in jpgs:  # a lossless copy of the decoded JPEG: the same pixels, a bigger file
        with Image.open(root / p) as im:
            copy = p.replace(".jpg", "_copy.png")
            im.convert("RGB").save(root / copy, format="PNG", compress_level=0)
        copies.append(copy)
        assert (root / copy).stat().st_size > (root / p).stat().st_size
    d = simclust.dedup(root, threshold=0.999, keep="largest-file")
    groups = d.duplicates.group_by("group").agg("id", "kept")
    pairs = sorted(sorted(ids) for ids in groups["id"].to_list())
    assert pairs == sorted(sorted(pair) for pair in zip(jpgs, copies, strict=True))
    assert sorted(d.duplicates.filter("kept")["id"].to_list()) == sorted(copies)
    assert sorted(d.to_remove) == sorted(jpgs)  # ids relative to the folder
    first = simclust.dedup(root, threshold=0.999, keep="first")
    assert sorted(first.to_remove) == sorted(copies)  # "_copy.png" sorts after ".jpg"


# --------------------------------------------------------------------------- bad input


def test_bad_input_is_a_clear_error(data, tmp_path):
    x, _ = data
    with pytest.raises(ConfigError, match=r"dedup.keep: unknown policy 'biggest'; policies: "):
        simclust.dedup(x, keep="biggest")  # type: ignore[arg-type]
    for t in (1.5, -1.01, float("nan")):
        with pytest.raises(ConfigError, match=r"dedup.threshold: must be a cosine similarity"):
            simclust.dedup(x, threshold=t)
    with pytest.raises(ConfigError, match=r"dedup\.threshold: expected float, got str"):
        simclust.dedup(x, threshold="0.9")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="keep='largest-file' compares the rows' files"):
        simclust.dedup(x, keep="largest-file")
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(ParameterError, match="give an image folder"):
        simclust.dedup(tmp_path / "x.npy", keep="largest-file")
    with pytest.raises(ShapeError, match="one file per row"):
        simclust.dedup(x, keep="largest-file", paths=["a.png"])
    with pytest.raises(ConfigError, match=r"dedup\.window: unknown key; keys: threshold, keep"):
        simclust.dedup(x, config={"dedup": {"window": 3}})
    bad = x.copy()
    bad[7, 0] = np.nan
    with pytest.raises(simclust.InvalidInputError, match="7"):
        simclust.dedup(bad)
    paths = [tmp_path / f"missing{i}" for i in range(len(x))]
    with pytest.raises(simclust.InvalidInputError, match="cannot read the size of"):
        simclust.dedup(x, threshold=THRESHOLD, keep="largest-file", paths=paths)


def test_an_id_with_a_line_break_is_refused_before_writing(tmp_path):
    d = simclust.dedup(np.array([[1.0, 0.0], [1.0, 0.0]]), ids=["a", "b\nc"], threshold=0.9)
    with pytest.raises(simclust.InvalidInputError, match="line break"):
        d.write(tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- writing


def test_write_and_refuse_a_users_to_remove_txt(tmp_path, data):
    x, _ = data
    d = simclust.dedup(x, threshold=THRESHOLD)
    out = d.write(tmp_path / "out")
    assert (out / TO_REMOVE_FILE).read_text() == "".join(f"{i}\n" for i in d.to_remove)
    assert_frame_equal(pl.read_parquet(out / "duplicates.parquet"), d.duplicates)
    assert_frame_equal(pl.read_parquet(out / "duplicate_pairs.parquet"), d.pairs)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"] == ["duplicate_pairs.parquet", "duplicates.parquet", TO_REMOVE_FILE]
    assert manifest["summary"]["n_groups"] == d.n_groups and manifest["kind"] == "duplicates"
    # a rerun replaces its own files and leaves the user's alone
    (out / "notes.md").write_text("mine")
    d.write(out)
    assert (out / "notes.md").read_text() == "mine"
    # an earlier analyze result with a to_remove.txt of the user's: refused, untouched
    res_dir = simclust.analyze(x, threshold=0.9).write(tmp_path / "res", report=False)
    (res_dir / TO_REMOVE_FILE).write_text("keep me\n")
    with pytest.raises(FileExistsError, match=r"to_remove\.txt.*which simclust did not write"):
        d.write(res_dir)
    assert (res_dir / TO_REMOVE_FILE).read_text() == "keep me\n"
    np.save(tmp_path / "x.npy", x)
    line = one_line_error(invoke("dedup", tmp_path / "x.npy", "--out", res_dir, "-q"), 2)
    assert "to_remove.txt" in line and "did not write" in line
    assert (res_dir / TO_REMOVE_FILE).read_text() == "keep me\n"
    # a folder of the user's with nothing but a to_remove.txt: refused too
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / TO_REMOVE_FILE).write_text("mine\n")
    line = one_line_error(invoke("dedup", tmp_path / "x.npy", "--out", mine, "-q"), 2)
    assert "not a simclust output" in line
    assert (mine / TO_REMOVE_FILE).read_text() == "mine\n"


# --------------------------------------------------------------------------- CLI, config


def test_cli_end_to_end(tmp_path, data):
    x, groups = data
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "dups"
    r = invoke(
        "dedup",
        tmp_path / "x.npy",
        "--threshold",
        THRESHOLD,
        "--keep",
        "first",
        "--out",
        out,
        "--json",
    )
    assert r.exit_code == 0, (r.stderr, r.exception)
    payload = json.loads(r.stdout)
    api = simclust.dedup(x, threshold=THRESHOLD, keep="first")
    assert {k: payload[k] for k in ("n_rows", "n_groups", "n_to_remove", "threshold", "keep")} == {
        "n_rows": len(x),
        "n_groups": len(groups),
        "n_to_remove": sum(len(g) - 1 for g in groups),
        "threshold": THRESHOLD,
        "keep": "first",
    }
    assert payload["graph_search"] == "exact" and payload["graph_recall"] == 1.0
    assert payload["to_remove"] == str((out / TO_REMOVE_FILE).resolve())
    assert (out / TO_REMOVE_FILE).read_text().splitlines() == api.to_remove
    assert_frame_equal(pl.read_parquet(out / "duplicates.parquet"), api.duplicates)
    # the human summary: counts, threshold, search
    r = invoke("dedup", tmp_path / "x.npy", "--out", out, "--search", "ivf")
    assert r.exit_code == 0, r.stderr
    assert "near-duplicate groups" in r.stdout and "rows to remove" in r.stdout
    assert "similarity >= 0.95" in r.stdout and "recall" in r.stdout
    assert "nothing was deleted or moved" in r.stdout
    # bad options: one line, exit 2
    assert "dedup.threshold" in one_line_error(
        invoke("dedup", tmp_path / "x.npy", "--threshold", 2), 2
    )
    assert invoke("dedup", tmp_path / "x.npy", "--keep", "biggest").exit_code == 2
    line = one_line_error(invoke("dedup", tmp_path / "x.npy", "--keep", "largest-file", "-q"), 2)
    assert "image folder" in line


def test_config_run_writes_duplicates_beside_the_clusters(tmp_path, data):
    x, groups = data
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "run.toml").write_text(
        '[input]\npath = "x.npy"\n[graph]\nkind = "threshold"\nthreshold = 0.9\n'
        f'[dedup]\nthreshold = {THRESHOLD}\nkeep = "first"\n[output]\ndir = "out"\nreport = false\n'
    )
    r = invoke("run", tmp_path / "run.toml", "--json")
    assert r.exit_code == 0, (r.stderr, r.exception)
    payload = json.loads(r.stdout)
    assert payload["dedup"]["n_groups"] == len(groups)
    assert payload["dedup"]["threshold"] == THRESHOLD and payload["dedup"]["keep"] == "first"
    out = tmp_path / "out"
    api = simclust.dedup(x, threshold=THRESHOLD, keep="first")
    assert_frame_equal(pl.read_parquet(out / "duplicates.parquet"), api.duplicates)
    assert_frame_equal(pl.read_parquet(out / "duplicate_pairs.parquet"), api.pairs)
    assert (out / TO_REMOVE_FILE).read_text().splitlines() == api.to_remove
    assert TO_REMOVE_FILE in json.loads((out / "manifest.json").read_text())["files"]
    back = simclust.Result.read(out)
    assert_frame_equal(back.tables["duplicates"], api.duplicates)
    assert back.dedup["keep"] == "first" and back.summary()["dedup"]["n_groups"] == len(groups)
    # the run's graph at 0.9 was cut, not searched again: the same search record (the
    # run's also says which graph it is: kind, threshold)
    assert back.dedup["graph_search"] == {
        k: v for k, v in back.graph_search.items() if k not in ("kind", "k", "threshold")
    }
    r = invoke("run", tmp_path / "run.toml")
    assert r.exit_code == 0 and "near-duplicate groups" in r.stdout
    # analyze takes the section too; without it nothing changes
    res = simclust.analyze(x, config={"dedup": {"keep": "medoid"}})
    assert res.dedup["threshold"] == 0.95 and res.summary()["dedup"]["n_groups"] == len(groups)
    assert "duplicates" not in simclust.analyze(x).tables
    with pytest.raises(ParameterError, match="largest-file"):
        simclust.analyze(x, config={"dedup": {"keep": "largest-file"}})


# --------------------------------------------------------------------------- the demo


@pytest.fixture(scope="module", params=[0, 1, 2])
def demo(request, tmp_path_factory):
    """The demo's images at 600 (seed 0 is the demo's; seeds 1 and 2 other draws)."""
    pytest.importorskip("PIL")
    from simclust.testing.images import make_image_dataset

    root = tmp_path_factory.mktemp(f"demo{request.param}") / "images"
    meta = make_image_dataset(root, n_images=600, seed=request.param)
    return root, meta


def test_demo_dedup_lists_each_group_once(demo):
    """On the demo's images: one kept per group, to_remove is exactly the rest."""
    from simclust.cli.demo import DEMO_DEDUP_THRESHOLD

    root, meta = demo
    d = simclust.dedup(root, threshold=DEMO_DEDUP_THRESHOLD)
    assert d.duplicates.filter("kept").height == d.n_groups > 0
    assert sorted(d.to_remove) == sorted(d.duplicates.filter(~pl.col("kept"))["id"].to_list())
    assert set(d.duplicates["id"]) <= set(meta["path"])


def test_demo_dedup_keeps_one_per_planted_pair(demo):
    """The groups at the demo's dedup threshold are exactly the planted pairs, each
    keeping its original (the medoid of a pair is its lower row, the original's path)."""
    from simclust.cli.demo import DEMO_DEDUP_THRESHOLD

    root, meta = demo
    d = simclust.dedup(root, threshold=DEMO_DEDUP_THRESHOLD)
    planted = meta.filter(pl.col("kind") == "near_duplicate").select("source", "path").rows()
    assert sorted(found_groups_ids(d)) == sorted(sorted(pair) for pair in planted)
    assert sorted(d.duplicates.filter("kept")["id"]) == sorted(src for src, _ in planted)
    assert sorted(d.to_remove) == sorted(dup for _, dup in planted)


def found_groups_ids(d: simclust.Duplicates) -> list[list[str]]:
    return [sorted(ids) for ids in d.duplicates.group_by("group").agg("id")["id"].to_list()]


def test_demo_writes_to_remove_of_the_planted_near_duplicates(tmp_path):
    """`simclust demo` runs dedup: its to_remove.txt holds one file of each planted pair
    (the near-duplicate) and nothing else, and the report's near-duplicates view has the
    planted pairs."""
    pytest.importorskip("PIL")
    from simclust.cli.demo import DEMO_DEDUP_THRESHOLD
    from simclust.report import data as report_data

    out = tmp_path / "demo"
    r = invoke("demo", "--out", out, "--n-images", 600, "--json")
    assert r.exit_code == 0, (r.stderr, r.exception)
    payload = json.loads(r.stdout)
    meta = pl.read_parquet(out / "dataset.parquet")
    planted = dict(meta.filter(pl.col("kind") == "near_duplicate").select("path", "source").rows())
    assert payload["dedup"]["threshold"] == DEMO_DEDUP_THRESHOLD
    assert payload["dedup"]["n_groups"] == len(planted) == 60
    removed = (out / "results" / TO_REMOVE_FILE).read_text().splitlines()
    assert sorted(removed) == sorted(planted)
    dups = pl.read_parquet(out / "results" / "duplicates.parquet")
    kept = set(dups.filter("kept")["id"])
    assert kept == set(planted.values())
    res = simclust.Result.read(out / "results")
    view = report_data.duplicate_groups(res, 1000, 10)
    assert view is not None and len(view.groups) == len(planted)
    for group in view.groups:
        kept_id, dup_id = group.members["id"].to_list()
        assert planted[dup_id] == kept_id and group.n_pairs == 1
    html = (out / "results" / "report.html").read_text()
    assert '<a href="#duplicates">' in html and "Near-duplicates" in html
