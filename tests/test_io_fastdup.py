"""fastdup feature files: byte-level format, round trips, validation and atomic writes."""

import csv
import os
import re

import numpy as np
import pytest
from simclust.exceptions import InvalidInputError, ParameterError, ShapeError
from simclust.io import fastdup as fd
from simclust.io import read_fastdup_features, write_fastdup_features

NAMES = [
    "plain.jpg",
    "with,comma.png",
    'say "hi".webp',
    "naïve ünïcödé 日本.jpg",
    "spaces in name .png",
    "a/b/nested,dir/x.jpg",
    'both, "quoted", and, commas.bmp',
    "line\nbreak.png",
]


def _write_by_hand(directory, X, rows):
    """The fastdup format written independently: raw '<f4' bytes and a hand-made CSV."""
    X.astype("<f4").tofile(directory / "atrain_features.dat")
    lines = ["index,filename"]
    for idx, name in rows:
        quoted = '"' + name.replace('"', '""') + '"' if any(c in name for c in ',"\n') else name
        lines.append(f"{idx},{quoted}")
    (directory / "atrain_features.dat.csv").write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


def test_round_trip(tmp_path, rng):
    X = rng.standard_normal((len(NAMES), 17)).astype(np.float32)
    dat = write_fastdup_features(tmp_path, X, NAMES)
    assert dat == tmp_path / "atrain_features.dat"
    for mmap in (True, False):
        for path in (tmp_path, dat, str(dat)):
            feats, names = read_fastdup_features(path, mmap=mmap)
            np.testing.assert_array_equal(feats, X)
            assert feats.dtype == np.float32 and feats.flags.c_contiguous
            assert names == NAMES


def test_written_bytes_are_little_endian_float32(tmp_path, rng):
    X = rng.standard_normal((5, 3))  # float64 input is stored as float32
    write_fastdup_features(tmp_path, X, [f"{i}.jpg" for i in range(5)])
    assert (tmp_path / "atrain_features.dat").read_bytes() == X.astype("<f4").tobytes()
    with open(tmp_path / "atrain_features.dat.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows == [["index", "filename"]] + [[str(i), f"{i}.jpg"] for i in range(5)]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_hand_built_file(tmp_path, rng):
    X = rng.standard_normal((len(NAMES), 8)).astype(np.float32)
    order = rng.permutation(len(NAMES))  # CSV rows in arbitrary order
    _write_by_hand(tmp_path, X, [(int(i), NAMES[i]) for i in order])
    feats, names = read_fastdup_features(tmp_path / "atrain_features.dat", d=8, mmap=False)
    np.testing.assert_array_equal(feats, X)
    assert names == NAMES


def test_csv_with_bom_and_crlf(tmp_path):
    X = np.arange(6, dtype=np.float32).reshape(2, 3)
    X.astype("<f4").tofile(tmp_path / "atrain_features.dat")
    text = 'index,filename\r\n1,"b,1.jpg"\r\n0,a.jpg\r\n'
    (tmp_path / "atrain_features.dat.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    feats, names = read_fastdup_features(tmp_path, d=3)
    np.testing.assert_array_equal(feats, X)
    assert names == ["a.jpg", "b,1.jpg"]


def test_d_inferred(tmp_path, rng):
    X = rng.standard_normal((10, 384)).astype(np.float32)
    _write_by_hand(tmp_path, X, [(i, f"{i}.jpg") for i in range(10)])
    with pytest.warns(fd.InferredShapeWarning, match=r"read as 10 rows x 384 dims.*give d"):
        feats, _ = read_fastdup_features(tmp_path)
    assert feats.shape == (10, 384)
    np.testing.assert_array_equal(feats, X)


def test_mmap_is_a_read_only_view_of_the_file(tmp_path, rng):
    X = rng.standard_normal((6, 4)).astype(np.float32)
    dat = write_fastdup_features(tmp_path, X, list("abcdef"))
    feats, _ = read_fastdup_features(tmp_path)
    assert isinstance(feats, np.memmap)
    assert not feats.flags.writeable
    assert feats.shape == (6, 4) and feats.dtype == np.float32
    with pytest.raises(ValueError, match="read-only"):
        feats[0, 0] = 1.0
    # No copy: the map sees the bytes of the file, changed after the map was made.
    with open(dat, "r+b") as f:
        f.seek(4 * 5)  # row 1, column 1
        f.write(np.array([123.5], "<f4").tobytes())
    assert feats[1, 1] == np.float32(123.5)
    loaded, _ = read_fastdup_features(tmp_path, mmap=False)
    assert not isinstance(loaded, np.memmap)
    assert loaded[1, 1] == np.float32(123.5)
    del feats


def test_truncated_file(tmp_path, rng):
    X = rng.standard_normal((10, 384)).astype(np.float32)
    _write_by_hand(tmp_path, X, [(i, f"{i}.jpg") for i in range(10)])
    dat = tmp_path / "atrain_features.dat"
    full = dat.read_bytes()
    dat.write_bytes(full[:1000])
    msg = re.escape(
        "atrain_features.dat holds 1000 bytes, which is not 10 rows x 384 float32 "
        "(15360 bytes): truncated file or wrong d"
    )
    with pytest.raises(InvalidInputError, match=msg):
        read_fastdup_features(tmp_path, d=384)
    dat.write_bytes(full[:1004])
    with pytest.raises(InvalidInputError, match="truncated") as e:
        read_fastdup_features(tmp_path)  # d inferred: 251 floats for 10 rows
    assert "atrain_features.dat holds 1004 bytes = 251 float32" in str(e.value)
    dat.write_bytes(full[:999])
    with pytest.raises(InvalidInputError, match=r"999 bytes.*not a multiple of 4.*truncated"):
        read_fastdup_features(tmp_path)


def test_wrong_d(tmp_path, rng):
    _write_by_hand(tmp_path, rng.standard_normal((10, 384)), [(i, "x") for i in range(10)])
    with pytest.raises(InvalidInputError, match=r"not 10 rows x 383 float32.*wrong d"):
        read_fastdup_features(tmp_path, d=383)
    for d in (0, -3):
        with pytest.raises(ParameterError, match="d must be positive"):
            read_fastdup_features(tmp_path, d=d)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"atrain_features\.dat"):
        read_fastdup_features(tmp_path)
    np.zeros((2, 2), "<f4").tofile(tmp_path / "atrain_features.dat")
    with pytest.raises(InvalidInputError, match=r"no companion atrain_features\.dat\.csv"):
        read_fastdup_features(tmp_path)


@pytest.mark.parametrize(
    ("csv_text", "match"),
    [
        ("index,filename\n0,a\n0,b\n", "duplicated"),
        ("index,filename\n0,a\n2,b\n", "missing.*1"),
        ("index,filename\n1,a\n-1,b\n", "out of range"),
        ("index,filename\n0,a\nx,b\n", "line 3: index 'x' is not an integer"),
        ("idx,name\n0,a\n1,b\n", "expected 'index,filename'"),
        ("index,filename\n", "lists no files"),
        ("", "empty"),
        ("index,filename\n0\n1,b\n", "line 2 has 1 field"),
    ],
)
def test_bad_csv(tmp_path, csv_text, match):
    np.zeros((2, 2), "<f4").tofile(tmp_path / "atrain_features.dat")
    (tmp_path / "atrain_features.dat.csv").write_text(csv_text, encoding="utf-8")
    with pytest.raises(InvalidInputError, match=match):
        read_fastdup_features(tmp_path)


def test_non_utf8_csv(tmp_path):
    np.zeros((1, 2), "<f4").tofile(tmp_path / "atrain_features.dat")
    (tmp_path / "atrain_features.dat.csv").write_bytes(b"index,filename\n0,\xff\xfe.jpg\n")
    with pytest.raises(InvalidInputError, match="utf-8"):
        read_fastdup_features(tmp_path)


def test_empty_dat(tmp_path):
    (tmp_path / "atrain_features.dat").write_bytes(b"")
    (tmp_path / "atrain_features.dat.csv").write_text("index,filename\n0,a\n")
    with pytest.raises(InvalidInputError, match=r"atrain_features\.dat is empty"):
        read_fastdup_features(tmp_path)


def _listing(directory):
    return sorted((p.name, p.read_bytes()) for p in directory.iterdir())


def test_writer_validation_leaves_nothing(tmp_path, rng):
    X = rng.standard_normal((3, 4))
    write_fastdup_features(tmp_path, X, ["a", "b", "c"])
    before = _listing(tmp_path)
    with pytest.raises(ShapeError, match="2 filenames for 3 feature rows"):
        write_fastdup_features(tmp_path, X + 1, ["a", "b"])
    with pytest.raises(ShapeError, match="2-D"):
        write_fastdup_features(tmp_path, X[0], ["a"])
    with pytest.raises(ShapeError, match="at least one row"):
        write_fastdup_features(tmp_path, np.zeros((0, 4)), [])
    with pytest.raises(InvalidInputError, match="real numbers"):
        write_fastdup_features(tmp_path, X.astype(complex), ["a", "b", "c"])
    with pytest.raises(InvalidInputError, match="not valid unicode"):
        write_fastdup_features(tmp_path, X, ["a", "b", "\udcff.jpg"])
    assert _listing(tmp_path) == before


@pytest.mark.parametrize("fail_at", [1, 2])
def test_writer_failure_leaves_nothing(tmp_path, rng, monkeypatch, fail_at):
    """A failing rename (first or second) leaves the old pair intact and no temp files."""
    X = rng.standard_normal((3, 4))
    write_fastdup_features(tmp_path, X, ["a", "b", "c"])
    before = _listing(tmp_path)
    real_replace = os.replace
    calls = []

    def flaky_replace(src, dst):
        calls.append(dst)
        if len(calls) == fail_at:
            raise OSError("disk full (simulated)")
        return real_replace(src, dst)

    monkeypatch.setattr(fd.os, "replace", flaky_replace)
    with pytest.raises(OSError, match="simulated"):
        write_fastdup_features(tmp_path, X * 2, ["x", "y", "z"])
    monkeypatch.undo()
    assert _listing(tmp_path) == before
    feats, names = read_fastdup_features(tmp_path, mmap=False)
    np.testing.assert_array_equal(feats, X.astype(np.float32))
    assert names == ["a", "b", "c"]


def test_writer_failure_in_new_directory(tmp_path, rng, monkeypatch):
    """Without an old pair, a failed write leaves the directory empty."""
    out = tmp_path / "new"

    def broken_writer(*args, **kwargs):
        raise RuntimeError("csv writer broke (simulated)")

    monkeypatch.setattr(fd.csv, "writer", broken_writer)
    with pytest.raises(RuntimeError, match="simulated"):
        write_fastdup_features(out, rng.standard_normal((2, 2)), ["a", "b"])
    assert list(out.iterdir()) == []


# ruff: noqa: N803, N806  (X: the field's matrix notation)
