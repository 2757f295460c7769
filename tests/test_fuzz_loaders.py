# ruff: noqa: N803  (X: the field's matrix notation)
"""Property-based fuzzing of the loaders and the config reader.

Valid files (``.npy``, ``.npz``, Parquet, fastdup's ``.dat`` + CSV (+ sidecar), TOML
configs) are mutated (truncated, bytes flipped, inserted, overwritten) or replaced by
arbitrary bytes. Whatever the bytes, a run either loads them into a consistent result
(one assignment per row, ids per row) or raises a simclust error
(:class:`~simclust.exceptions.SimclustError`) with a one-line message: never another
exception type, a hang or a crash.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import simclust
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simclust.config import load_config, resolve
from simclust.exceptions import InvalidInputError, ParameterError, ShapeError, SimclustError
from simclust.io import fastdup as fd

HOST = simclust.get_host(autoload=False)
INPUT_ERRORS = (InvalidInputError, ShapeError, ParameterError)
"""Bad bytes are the user's input problem (exit 2), never a "plugin failed" (exit 3)."""
_DEEP = int(os.environ.get("SIMCLUST_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_DEEP or 60,  # SIMCLUST_FUZZ_EXAMPLES=5000 for a deep, random run
    deadline=3000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=not _DEEP,
)


# --------------------------------------------------------------------------- mutations


@st.composite
def mutated(draw, original: bytes) -> bytes:
    """``original`` with a few random edits (or replaced by arbitrary bytes)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=512))
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["truncate", "flip", "insert", "overwrite", "delete"]))
        pos = draw(st.integers(0, max(len(data), 1)))
        if op == "truncate":
            del data[pos:]
        elif op == "flip" and data:
            i = min(pos, len(data) - 1)
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[pos : pos + len(chunk)] = chunk
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
    return bytes(data)


ARRAYS = st.builds(
    lambda n, d, dtype, seed: np.random.default_rng(seed).normal(size=(n, d)).astype(dtype),
    st.integers(1, 6),
    st.integers(1, 4),
    st.sampled_from(["<f4", ">f4", "<f8", "<f2", "<i4", "u1"]),
    st.integers(0, 2**16),
)


def _check(path: Path, **config) -> None:
    """Run ``path``; the result is consistent, or the error is simclust's on one line."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = simclust.analyze(
                path, metrics=[], threshold=0.99, host=HOST, config=config or None
            )
    except INPUT_ERRORS as exc:
        message = str(exc)
        assert message and "\n" not in message, message
        return
    n = res.fingerprint["rows"]
    assert res.assignments.height == n >= 1
    assert res.assignments["id"].null_count() == 0
    assert res.assignments["cluster"].min() >= 0  # connected components label every row


def _in_tmp(name: str, content: bytes) -> tuple[tempfile.TemporaryDirectory[str], Path]:
    tmp = tempfile.TemporaryDirectory()
    path = Path(tmp.name) / name
    path.write_bytes(content)
    return tmp, path


# --------------------------------------------------------------------------- npy / npz


@FUZZ
@given(data=st.data(), X=ARRAYS)
def test_npy_bytes(data, X):
    buf = io.BytesIO()
    np.save(buf, X)
    tmp, path = _in_tmp("x.npy", data.draw(mutated(buf.getvalue())))
    with tmp:
        _check(path)


@FUZZ
@given(
    data=st.data(),
    X=ARRAYS,
    ids=st.sampled_from(["str", "bytes", "int", "none"]),
)
def test_npz_bytes(data, X, ids):
    arrays = {"embeddings": X}
    n = X.shape[0]
    if ids == "str":
        arrays["ids"] = np.array([f"r{i}.png" for i in range(n)])
    elif ids == "bytes":
        arrays["ids"] = np.array([f"r{i}.png".encode() for i in range(n)])
    elif ids == "int":
        arrays["ids"] = np.arange(n)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    tmp, path = _in_tmp("x.npz", data.draw(mutated(buf.getvalue())))
    with tmp:
        _check(path)


# --------------------------------------------------------------------------- parquet


@FUZZ
@given(data=st.data(), X=ARRAYS, with_ids=st.booleans(), array_col=st.booleans())
def test_parquet_bytes(data, X, with_ids, array_col):
    n, d = X.shape
    cols = {"vector": pl.Series(X.astype(np.float64).tolist())}
    if array_col:
        cols["vector"] = cols["vector"].cast(pl.Array(pl.Float64, d))
    if with_ids:
        cols["id"] = pl.Series([f"r{i}" for i in range(n)])
    buf = io.BytesIO()
    pl.DataFrame(cols).write_parquet(buf)
    tmp, path = _in_tmp("x.parquet", data.draw(mutated(buf.getvalue())))
    with tmp:
        _check(path)


# --------------------------------------------------------------------------- fastdup


@FUZZ
@given(
    data=st.data(),
    X=ARRAYS,
    target=st.sampled_from(["dat", "csv", "json", "all"]),
    sidecar=st.booleans(),
)
def test_fastdup_files(data, X, target, sidecar):
    n = X.shape[0]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        fd.write_fastdup_features(out, X.astype(np.float32), [f"f,{i}.jpg" for i in range(n)])
        meta = out / fd.FEATURES_META_NAME
        if not sidecar:
            meta.unlink()
        files = {
            "dat": out / fd.FEATURES_NAME,
            "csv": out / fd.FEATURES_CSV_NAME,
            "json": meta,
        }
        for key, path in files.items():
            if target in (key, "all") and path.exists():
                path.write_bytes(data.draw(mutated(path.read_bytes()), label=key))
        _check(out)
        if not sidecar or target in ("csv", "all"):
            return
        # with the sidecar and an intact CSV, a successful load has the written shape
        try:
            feats = fd.read_fastdup_features(out, mmap=False)
        except SimclustError:
            return
        assert feats.features.shape == X.shape
        if target == "json" and files["dat"].stat().st_size == X.size * 4:
            np.testing.assert_array_equal(feats.features, X.astype(np.float32))


@FUZZ
@given(dat=st.binary(max_size=256), csv=st.text(max_size=200), d=st.none() | st.integers(1, 9))
def test_fastdup_arbitrary(dat, csv, d):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        (out / fd.FEATURES_NAME).write_bytes(dat)
        (out / fd.FEATURES_CSV_NAME).write_text("index,filename\n" + csv, encoding="utf-8")
        config = {"input": {"loader": "fastdup", "d": d}} if d is not None else {}
        _check(out, **config)


# --------------------------------------------------------------------------- config


VALID_TOML = b"""[input]
path = "x.npy"
[graph]
kind = "threshold"
threshold = 0.9
sweep = [0.5, 0.9]
[cluster]
strategy = "connected-components"
min_size = 2
[metrics]
use = ["intra", "edge", "inter"]
[metrics.inter]
top_m = 3
[output]
dir = "out"
report = false
[run]
threads = 2
max_edges = 1000
"""


def _check_config(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.toml"
        path.write_bytes(content)
        try:
            raw = load_config(path)
            cfg = resolve(raw, HOST)
        except SimclustError as exc:
            message = str(exc)
            assert message and "\n" not in message.strip(), message
            return
        assert set(cfg) == {
            "input",
            "graph",
            "search",
            "cluster",
            "metrics",
            "output",
            "run",
            "dedup",
        }
        assert cfg["run"]["max_edges"] >= 1


@FUZZ
@given(content=mutated(VALID_TOML))
def test_config_bytes(content):
    _check_config(content)


@FUZZ
@given(
    section=st.sampled_from(["input", "graph", "cluster", "metrics", "output", "run", "x"]),
    key=st.sampled_from(
        ["path", "dir", "threads", "max_edges", "sweep", "threshold", "k", "kind", "use", "n"]
    ),
    value=st.sampled_from(
        ["5", "-1", "1e9", "nan", "inf", "true", '"x"', "[1, 2]", "[]", "{a = 1}", "2.5", '"é"']
    ),
)
def test_config_values(section, key, value):
    _check_config(f"[{section}]\n{key} = {value}\n".encode())


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe[run]", b"[run\n", b"[run]\nthreads = 99999999999999999999\n", b"\x00" * 8],
)
def test_config_edge_cases(content):
    _check_config(content)
