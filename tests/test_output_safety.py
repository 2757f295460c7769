"""simclust never removes or replaces files it did not write, and paths stay inside.

Data loss: ``Result.write``, ``simclust.run`` and the CLI write into an absent, empty or
earlier-simclust folder only, replace only the files its manifest lists, swap files in
atomically (restoring the previous result on failure) and keep a symlinked folder a
symlink. Paths: table/array names and manifest entries are plain names; report
thumbnails stay inside the image root; permissions follow the umask; the manifest's
input path works from any working directory; damaged result folders give one-line
errors.
"""

from __future__ import annotations

import json
import os
import re
import stat

import numpy as np
import polars as pl
import pytest
import simclust
from click.testing import CliRunner
from polars.testing import assert_frame_equal
from simclust import outdir, pipeline
from simclust.cli import main
from simclust.exceptions import InvalidInputError
from simclust.io.fastdup import write_fastdup_features
from simclust.report import write_report
from simclust.testing import make_host

X = np.array([[1, 0], [0.99, 0.1], [0, 1], [0.1, 0.99], [-1, 0]], dtype=np.float32)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(r, code):
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "internal error" not in lines[0] and "Traceback" not in r.stderr
    return lines[0]


def snapshot(folder):
    """Every file below ``folder`` (relative path -> bytes), hidden ones included."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def res():
    return simclust.analyze(X, threshold=0.9, metrics=["intra", "centroid", "inter"])


@pytest.fixture
def npy(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, X)
    return path


# --------------------------------------------------------------------------- item 1


def test_write_refuses_a_folder_of_user_files(tmp_path, res):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "cat.png").write_bytes(b"not really a png")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a simclust output"):
        res.write(out)
    assert snapshot(out) == {"cat.png": b"not really a png", "notes.txt": b"mine"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]  # no staging left


def test_run_refuses_a_non_result_folder_before_any_work(tmp_path, npy, monkeypatch):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")

    def no_work(*a, **k):
        raise AssertionError("analyze ran although the output folder is refused")

    monkeypatch.setattr(pipeline, "analyze", no_work)
    with pytest.raises(FileExistsError, match="mine"):
        simclust.run({"input": {"path": str(npy)}, "output": {"dir": str(out), "report": False}})
    assert snapshot(out) == {"thesis.tex": b"years of work"}


def test_the_input_folder_is_never_the_output(tmp_path):
    from simclust.testing.images import make_image_dataset

    photos = tmp_path / "photos"
    make_image_dataset(photos, n_images=40, n_groups=3, size=32)
    before = snapshot(photos)
    line = one_line_error(invoke("analyze", photos, "--out", photos, "--threshold", 0.9), 2)
    assert "is the input" in line
    assert snapshot(photos) == before


def test_empty_folder_is_written_in_place(tmp_path, res):
    out = tmp_path / "empty"
    out.mkdir()
    res.write(out, report=False)
    assert "clusters.parquet" in {p.name for p in out.iterdir()}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["simclust_result"] == outdir.RESULT_FORMAT == 1
    assert sorted(manifest["files"]) == sorted(
        p.name for p in out.iterdir() if p.name != "manifest.json"
    )


# --------------------------------------------------------------------------- item 2


def test_foreign_manifest_json_is_not_a_simclust_result(tmp_path, npy, res):
    app = tmp_path / "extension"
    app.mkdir()
    (app / "manifest.json").write_text('{"manifest_version": 3, "name": "my extension"}')
    (app / "background.js").write_text("chrome.runtime.onInstalled.addListener(() => {});")
    before = snapshot(app)
    line = one_line_error(invoke("analyze", npy, "--out", app, "--threshold", 0.9, "-q"), 2)
    assert "extension" in line and "not a simclust output" in line
    with pytest.raises(FileExistsError):
        res.write(app)
    assert snapshot(app) == before


def test_rerun_keeps_files_a_user_added_and_removes_only_stale_outputs(tmp_path, res):
    out = tmp_path / "out"
    res.tables["extra"] = pl.DataFrame({"a": [1, 2]})
    res.write(out, report=False)
    (out / "notes.md").write_text("the red cluster is mislabelled")
    (out / "sub").mkdir()
    (out / "sub" / "plot.png").write_bytes(b"png")
    del res.tables["extra"]
    res.write(out, report=False)
    names = {p.name for p in out.iterdir()}
    assert "extra.parquet" not in names  # simclust's own, no longer part of the result
    assert (out / "notes.md").read_text() == "the red cluster is mislabelled"
    assert (out / "sub" / "plot.png").read_bytes() == b"png"
    back = simclust.Result.read(out)
    assert_frame_equal(back.clusters, res.clusters)
    assert "extra" not in back.tables


def test_a_user_file_named_like_an_output_is_not_replaced(tmp_path, npy, res):
    out = tmp_path / "out"
    res.write(out, report=False)
    (out / "report.html").write_text("<p>my own notes</p>")
    line = one_line_error(invoke("analyze", npy, "--out", out, "--threshold", 0.9, "-q"), 2)
    assert "'report.html'" in line
    assert (out / "report.html").read_text() == "<p>my own notes</p>"
    with pytest.raises(FileExistsError, match=r"report\.html"):
        res.write(out, report=True)
    assert (out / "report.html").read_text() == "<p>my own notes</p>"


# --------------------------------------------------------------------------- item 3

needs_images = pytest.mark.skipif(
    "images" not in simclust.get_host().loaders, reason="no 'images' loader registered"
)


@needs_images
def test_demo_refuses_a_folder_with_user_files(tmp_path):
    out = tmp_path / "holiday"
    out.mkdir()
    (out / "beach.jpg").write_bytes(b"jpeg")
    line = one_line_error(invoke("demo", "--out", out, "--n-images", 40, "-q"), 2)
    assert "simclust demo" in line
    assert snapshot(out) == {"beach.jpg": b"jpeg"}


@needs_images
def test_demo_rerun_replaces_only_its_own_images(tmp_path):
    out = tmp_path / "demo"
    r = invoke("demo", "--out", out, "--n-images", 40, "--no-report", "--json")
    assert r.exit_code == 0, r.stderr
    (out / "README.txt").write_text("mine")
    r = invoke("demo", "--out", out, "--n-images", 36, "--no-report", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["n_rows"] == 36  # no image of the first run mixed in
    images = sorted(
        p.relative_to(out / "images").as_posix() for p in (out / "images").rglob("*") if p.is_file()
    )
    assert images == sorted(pl.read_parquet(out / "dataset.parquet")["path"].to_list())
    assert (out / "README.txt").read_text() == "mine"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    # an image the user adds would be clustered with the demo's: refused
    (out / "images" / "mine.png").write_bytes(b"png")
    line = one_line_error(invoke("demo", "--out", out, "--n-images", 36, "-q"), 2)
    assert "images/mine.png" in line
    assert (out / "images" / "mine.png").read_bytes() == b"png"


# --------------------------------------------------------------------------- atomic swap


def test_interrupted_swap_restores_the_previous_result(tmp_path, res, monkeypatch):
    out = tmp_path / "out"
    res.write(out, report=False)
    (out / "mine.txt").write_text("keep")
    before = snapshot(out)
    real_replace, real_rename = os.replace, os.rename
    calls = []

    def interrupt_second(src, dst, *a, **k):
        calls.append(src)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", interrupt_second)
    monkeypatch.setattr(os, "rename", interrupt_second)  # Path.rename calls os.rename
    other = simclust.analyze(X, threshold=0.5)
    with pytest.raises(KeyboardInterrupt):
        other.write(out, report=False)
    monkeypatch.setattr(os, "replace", real_replace)
    monkeypatch.setattr(os, "rename", real_rename)
    assert len(calls) >= 2
    assert snapshot(out) == before  # the previous result, complete, and nothing hidden
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_symlinked_out_stays_a_symlink(tmp_path, res):
    real = tmp_path / "disk" / "results"
    real.mkdir(parents=True)
    link = tmp_path / "results"
    link.symlink_to(real, target_is_directory=True)
    res.write(link, report=False)
    res.write(link, report=False)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert (real / "clusters.parquet").is_file() and (real / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk", "results"]


# --------------------------------------------------------------------------- item 13


def test_run_finished_hook_cannot_redirect_or_empty_the_output(tmp_path, npy):
    elsewhere = tmp_path / "elsewhere"

    class Tamper:
        @simclust.hookimpl
        def simclust_run_finished(self, result, config):
            config["output"]["dir"] = str(elsewhere)
            result.config["output"]["dir"] = str(elsewhere)
            result.clusters = result.clusters.head(0)
            result.assignments.drop_in_place("cluster")
            result.centroid_matrix[...] = 0

    host = make_host(("tamper", Tamper()))
    out = tmp_path / "out"
    expected = simclust.analyze(str(npy), threshold=0.9, metrics=["intra", "centroid"])
    got, written = simclust.run(
        {
            "input": {"path": str(npy)},
            "cluster": {"threshold": 0.9},
            "metrics": {"use": ["intra", "centroid"]},
            "output": {"dir": str(out), "report": False},
        },
        host=host,
    )
    assert written == out and not elsewhere.exists()
    back = simclust.Result.read(out)
    assert_frame_equal(back.clusters, expected.clusters)
    assert_frame_equal(back.assignments, expected.assignments)
    np.testing.assert_array_equal(back.centroid_matrix, expected.centroid_matrix)
    assert got.config["output"]["dir"] == str(out)


# --------------------------------------------------------------------------- item 14


@pytest.mark.parametrize("where", ["tables", "arrays"])
@pytest.mark.parametrize("name", ["../../escape", "/tmp/abs", "sub/x", "..", ".hidden", ""])
def test_table_and_array_names_must_be_plain(tmp_path, res, where, name):
    value = pl.DataFrame({"a": [1]}) if where == "tables" else np.zeros(2)
    getattr(res, where)[name] = value
    out = tmp_path / "a" / "b" / "out"
    with pytest.raises(InvalidInputError, match="not a plain file name"):
        res.write(out)
    assert not out.exists()
    assert [p.name for p in tmp_path.rglob("*") if "escape" in p.name] == []


def test_builtin_names_cannot_be_shadowed(tmp_path, res):
    res.tables["clusters"] = pl.DataFrame({"oops": [1]})
    with pytest.raises(InvalidInputError, match="built-in"):
        res.write(tmp_path / "out")


@pytest.mark.parametrize("entry", ["../secret.parquet", "ABS", "./../secret.parquet"])
def test_read_refuses_manifest_entries_outside_the_folder(tmp_path, res, entry):
    out = tmp_path / "out"
    res.write(out, report=False)
    pl.DataFrame({"secret": ["x"]}).write_parquet(tmp_path / "secret.parquet")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"].append(str(tmp_path / "secret.parquet") if entry == "ABS" else entry)
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InvalidInputError, match="not a plain file name"):
        simclust.Result.read(out)


def test_read_refuses_a_listed_file_that_links_outside(tmp_path, res):
    out = tmp_path / "out"
    res.write(out, report=False)
    pl.DataFrame({"secret": ["x"]}).write_parquet(tmp_path / "secret.parquet")
    (out / "secret.parquet").symlink_to(tmp_path / "secret.parquet")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"].append("secret.parquet")
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InvalidInputError, match="outside"):
        simclust.Result.read(out)


# --------------------------------------------------------------------------- item 15


def test_report_thumbnails_stay_inside_the_image_root(tmp_path):
    from PIL import Image

    root, private = tmp_path / "imgs", tmp_path / "private"
    root.mkdir()
    private.mkdir()
    for folder, name in [(root, "ok.png"), (private, "private.png"), (private, "abs.png")]:
        Image.new("RGB", (16, 16), (200, 10, 10)).save(folder / name)
    (root / "link.png").symlink_to(private / "private.png")
    ids = ["ok.png", "../private/private.png", str(private / "abs.png"), "link.png"]
    res = simclust.analyze(np.ones((4, 3), np.float32), ids=ids, threshold=0.9)
    assert res.clusters["size"].to_list() == [4]
    html = write_report(res, tmp_path / "r.html", image_root=root).read_text()
    shown = set(re.findall(r'<img src="data:image/jpeg;base64,[^"]*"[^>]* alt="([^"]*)"', html))
    assert shown == {"ok.png"}


# --------------------------------------------------------------------------- item 16


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_permissions_follow_the_umask(tmp_path, res, umask_027):
    out = tmp_path / "out"
    res.write(out, report=True)
    assert stat.S_IMODE(out.stat().st_mode) == 0o750
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path.name
    dat = write_fastdup_features(tmp_path / "feats", np.eye(2), ["a.png", "b.png"])
    for path in dat.parent.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path.name


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _modes(root):
    return {p.relative_to(root).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*")}


def test_outputs_are_readable_by_group_and_others(tmp_path, res, umask_022):
    """Under the usual umask 022 every file simclust writes is 0644 and every folder 0755,
    like any tool's output: a new result, one written over an earlier result (the staged
    swap), a report rendered again into it (the manifest rewritten), near-duplicates."""
    out = tmp_path / "out"
    res.write(out, report=False)
    first = _modes(out)
    res.write(out, report=True)  # over the earlier result: staged, then swapped in
    r = CliRunner().invoke(main, ["report", str(out), "--max-clusters", "5"])
    assert r.exit_code == 0, r.stderr
    d = simclust.dedup(np.array([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0]]), threshold=0.99)
    d.write(tmp_path / "dups")
    for root in (out, tmp_path / "dups"):
        modes = _modes(root)
        assert stat.S_IMODE(root.stat().st_mode) == 0o755
        assert set(modes.values()) == {0o644}, modes
    assert "report.html" in _modes(out) and "report.html" not in first
    assert set(first.values()) == {0o644}


# --------------------------------------------------------------------------- item 17


@needs_images
def test_report_from_another_folder_finds_the_images(tmp_path, monkeypatch):
    from simclust.testing.images import make_image_dataset

    work = tmp_path / "work"
    make_image_dataset(work / "imgs", n_images=40, n_groups=3, size=32)
    monkeypatch.chdir(work)
    r = invoke("analyze", "imgs", "--out", "res", "--threshold", 0.9, "--no-report", "-q")
    assert r.exit_code == 0, r.stderr
    manifest = json.loads((work / "res" / "manifest.json").read_text())
    assert manifest["config"]["input"]["path"] == str(work / "imgs")
    monkeypatch.chdir(tmp_path)
    assert simclust.Result.read(work / "res").image_root() == work / "imgs"
    r = invoke("report", work / "res")
    assert r.exit_code == 0, r.stderr
    assert "data:image/jpeg;base64," in (work / "res" / "report.html").read_text()
    # an older manifest with the path relative to where it ran: found beside the folder
    manifest["config"]["input"]["path"] = "imgs"
    (work / "res" / "manifest.json").write_text(json.dumps(manifest))
    assert simclust.Result.read(work / "res").image_root() == work / "imgs"


# --------------------------------------------------------------------------- item 18


def test_out_dot_writes_into_an_empty_working_folder(tmp_path, npy, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    r = invoke("analyze", npy, "--out", ".", "--threshold", 0.9, "--no-report", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["output_dir"] == str(here)
    assert simclust.Result.read(here).clusters.height == 3
    (here / "mine.txt").write_text("x")
    r = invoke("analyze", npy, "--out", ".", "--threshold", 0.8, "--no-report", "-q")
    assert r.exit_code == 0, r.stderr  # a simclust folder: replaced, mine.txt kept
    assert (here / "mine.txt").read_text() == "x"
    (here / "manifest.json").unlink()
    line = one_line_error(invoke("analyze", npy, "--out", ".", "--threshold", 0.9), 2)
    assert "refusing" in line


def _damage(out, how):
    if how == "no manifest":
        (out / "manifest.json").unlink()
        return "no manifest.json"
    if how == "bad json":
        (out / "manifest.json").write_text("{not json")
        return "manifest.json"
    if how == "no config":
        m = json.loads((out / "manifest.json").read_text())
        del m["config"]
        (out / "manifest.json").write_text(json.dumps(m))
        return "'config'"
    if how == "truncated parquet":
        data = (out / "clusters.parquet").read_bytes()
        (out / "clusters.parquet").write_bytes(data[: len(data) // 2])
        return "clusters.parquet"
    if how == "missing file":
        (out / "inter.parquet").unlink()
        return "inter.parquet"
    if how == "wrong columns":
        pl.DataFrame({"x": [1]}).write_parquet(out / "assignments.parquet")
        return "assignments.parquet"
    if how == "not an object":
        (out / "manifest.json").write_text("[1, 2]")
        return "manifest.json"
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    [
        "no manifest",
        "bad json",
        "no config",
        "truncated parquet",
        "missing file",
        "wrong columns",
        "not an object",
    ],
)
def test_damaged_result_folder_is_a_clear_error(tmp_path, res, how):
    out = tmp_path / "out"
    res.write(out, report=False)
    fragment = _damage(out, how)
    with pytest.raises(InvalidInputError, match=r"manifest|parquet|result") as info:
        simclust.Result.read(out)
    assert fragment in str(info.value)
    line = one_line_error(invoke("report", out), 2)
    assert fragment in line
    assert not (out / "report.html").exists()


def test_report_does_not_replace_a_file_it_did_not_write(tmp_path, res, npy):
    out = tmp_path / "out"
    res.write(out, report=False)
    mine = tmp_path / "index.html"
    mine.write_text("<html>my site</html>")
    line = one_line_error(invoke("report", out, "--out", mine), 2)
    assert "not a simclust report" in line
    assert mine.read_text() == "<html>my site</html>"
    # the default report.html is recorded, so the next run may replace it
    r = invoke("report", out)
    assert r.exit_code == 0, r.stderr
    assert "report.html" in json.loads((out / "manifest.json").read_text())["files"]
    r = invoke("analyze", npy, "--out", out, "--threshold", 0.9, "-q")
    assert r.exit_code == 0, r.stderr
