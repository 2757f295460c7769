"""Read and write fastdup's binary feature files.

fastdup stores the embeddings of a run in two files in its work directory:

* ``atrain_features.dat``: the ``N x D`` feature matrix as raw row-major
  little-endian float32, without any header (exactly ``N * D * 4`` bytes);
* ``atrain_features.dat.csv``: a utf-8 CSV with the header ``index,filename``
  and one row per feature row (filenames CSV-quoted when they hold commas,
  quotes or newlines).

fastdup stores ``D`` nowhere. simclust's writer adds a small sidecar,
``atrain_features.dat.json`` (``{"rows": N, "dim": D, "dtype": "float32"}``), and the
reader takes ``D`` from the caller (``d=``), else from the sidecar, checking the CSV's
row count and the file size against it: a truncated ``.dat`` or a CSV listing only part
of the rows is refused, never reshaped into scrambled rows. Without either, ``D`` is
inferred as ``file_size / (4 * N)`` and a :class:`InferredShapeWarning` reports the
inferred shape (pass ``d`` to have it checked).

Example:
    >>> import tempfile
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = write_fastdup_features(tmp, np.eye(2, 3), ["a.jpg", "b, c.png"])
    ...     feats = read_fastdup_features(tmp, mmap=False)
    >>> feats.features.shape, feats.filenames
    ((2, 3), ['a.jpg', 'b, c.png'])

"""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from simclust.exceptions import InvalidInputError, ParameterError, ShapeError

__all__ = [
    "FEATURES_CSV_NAME",
    "FEATURES_META_NAME",
    "FEATURES_NAME",
    "FastdupFeatures",
    "InferredShapeWarning",
    "read_fastdup_features",
    "write_fastdup_features",
]

FEATURES_NAME = "atrain_features.dat"
"""File name of fastdup's feature matrix inside its work directory."""

FEATURES_CSV_NAME = FEATURES_NAME + ".csv"
"""File name of the CSV listing the file behind each feature row."""

FEATURES_META_NAME = FEATURES_NAME + ".json"
"""File name of simclust's sidecar giving the shape (``rows``, ``dim``, ``dtype``)."""

_META_FORMAT = "simclust-fastdup-features"


class InferredShapeWarning(UserWarning):
    """A fastdup feature file was read with a dimension inferred from its size."""


_WRITE_CHUNK_ROWS = 65_536


class FastdupFeatures(NamedTuple):
    """The content of a fastdup feature file pair.

    Attributes:
        features: ``float32[N, D]``, C-order; a read-only :class:`numpy.memmap` of the
            ``.dat`` file when read with ``mmap=True``, an in-memory array otherwise.
        filenames: The ``N`` file names, ``filenames[i]`` belonging to ``features[i]``
            (ordered by the CSV's ``index`` column).

    Example:
        >>> FastdupFeatures(np.zeros((1, 2), np.float32), ["a.jpg"]).filenames
        ['a.jpg']

    """

    features: npt.NDArray[np.float32]
    filenames: list[str]


def _resolve_dat(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / FEATURES_NAME
    if not p.exists():
        raise FileNotFoundError(f"fastdup feature file {str(p)!r} does not exist")
    if not p.is_file():
        raise InvalidInputError(f"fastdup feature file {str(p)!r} is not a regular file")
    return p


def _read_csv(csv_path: Path) -> list[str]:
    """Return the file names of ``csv_path`` ordered by its ``index`` column."""
    name = csv_path.name
    entries: list[tuple[int, str]] = []
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise InvalidInputError(f"{name} is empty: expected the header 'index,filename'")
            cols = [h.strip() for h in header]
            if "index" not in cols or "filename" not in cols:
                raise InvalidInputError(
                    f"{name} has the header {','.join(header)!r}, expected 'index,filename'"
                )
            i_col, f_col = cols.index("index"), cols.index("filename")
            need = max(i_col, f_col) + 1
            for row in reader:
                if not row:
                    continue  # a blank line (e.g. a trailing newline)
                line = reader.line_num
                if len(row) < need:
                    raise InvalidInputError(
                        f"{name} line {line} has {len(row)} field(s), expected at least {need}"
                    )
                try:
                    idx = int(row[i_col])
                except ValueError:
                    raise InvalidInputError(
                        f"{name} line {line}: index {row[i_col]!r} is not an integer"
                    ) from None
                entries.append((idx, row[f_col]))
    except UnicodeDecodeError as e:
        raise InvalidInputError(f"{name} is not valid utf-8: {e}") from e
    except csv.Error as e:
        raise InvalidInputError(f"{name} is not a valid CSV file: {e}") from e

    n = len(entries)
    if n == 0:
        raise InvalidInputError(f"{name} lists no files (header only): the feature set is empty")
    indices = np.fromiter((i for i, _ in entries), dtype=np.int64, count=n)
    counts = np.bincount(indices[(indices >= 0) & (indices < n)], minlength=n)
    out_of_range = indices[(indices < 0) | (indices >= n)]
    if out_of_range.size or not np.all(counts == 1):
        missing = np.flatnonzero(counts == 0)
        dup = np.flatnonzero(counts > 1)
        parts = []
        if missing.size:
            parts.append(f"{missing.size} missing (e.g. {_some(missing)})")
        if dup.size:
            parts.append(f"{dup.size} duplicated (e.g. {_some(dup)})")
        if out_of_range.size:
            parts.append(f"{out_of_range.size} out of range (e.g. {_some(out_of_range)})")
        raise InvalidInputError(
            f"{name}: the index column of its {n} rows must be exactly 0..{n - 1}, "
            f"but {', '.join(parts)}"
        )
    filenames: list[str] = [""] * n
    for idx, fname in entries:
        filenames[idx] = fname
    return filenames


def _write_meta_tmp(out_dir: Path, n: int, d: int, created: list[Path]) -> Path:
    """Write the shape sidecar to a temporary file (appended to ``created``)."""
    tmp = out_dir / f".{FEATURES_META_NAME}.{os.getpid()}.tmp"
    created.append(tmp)
    meta = {"format": _META_FORMAT, "rows": int(n), "dim": int(d), "dtype": "float32"}
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(meta, f)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    return tmp


def _read_meta(meta_path: Path) -> tuple[int, int] | None:
    """``(rows, dim)`` from simclust's sidecar, ``None`` when there is none."""
    name = meta_path.name
    try:
        text = meta_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as e:
        raise InvalidInputError(f"{name} is not valid utf-8: {e}") from None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"{name} is not valid JSON: {e}") from None
    if not isinstance(meta, dict):
        raise InvalidInputError(f"{name} must hold a JSON object with rows, dim and dtype")
    out = []
    for key in ("rows", "dim"):
        value = meta.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{name}: {key!r} must be a positive integer, got {value!r}")
        out.append(value)
    if meta.get("dtype", "float32") != "float32":
        raise InvalidInputError(
            f"{name}: dtype {meta.get('dtype')!r} is not supported (fastdup's is float32)"
        )
    return out[0], out[1]


def _some(a: npt.NDArray[np.int64], k: int = 5) -> str:
    s = ", ".join(str(int(v)) for v in a[:k])
    return s + (", ..." if a.size > k else "")


def read_fastdup_features(
    path: str | os.PathLike[str], *, d: int | None = None, mmap: bool = True
) -> FastdupFeatures:
    """Read fastdup's ``atrain_features.dat`` and its ``.csv`` companion.

    Non-finite values are not checked here (the pipeline checks them).

    Args:
        path: The ``atrain_features.dat`` file, or the directory that contains it. The
            CSV is ``<path>.csv`` next to it.
        d: The feature dimension. ``None``: the sidecar's (``atrain_features.dat.json``),
            else inferred as ``file_size / (4 * N)`` with an :class:`InferredShapeWarning`.
        mmap: Memory-map the file read-only (no copy, no read until used) instead of
            loading it.

    Returns:
        A :class:`FastdupFeatures` ``(features, filenames)``.

    Raises:
        FileNotFoundError: ``path`` (or ``atrain_features.dat`` in the directory) does
            not exist.
        InvalidInputError: The CSV is missing or malformed (bad header, indices not
            exactly ``0..N-1``), a file is empty, the size of the ``.dat`` file is not
            ``N * d * 4`` bytes (truncated file or wrong ``d``), or the sidecar disagrees
            with ``d``, the CSV's rows or the file size.
        ParameterError: ``d <= 0``.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     dat = write_fastdup_features(tmp, np.ones((4, 8)), list("abcd"))
        ...     read_fastdup_features(dat, d=8, mmap=False).features.shape
        (4, 8)

    """
    if d is not None:
        if isinstance(d, bool) or not isinstance(d, int | np.integer):
            raise ParameterError(f"d must be an int or None, got {type(d).__name__}")
        if d <= 0:
            raise ParameterError(f"d must be positive, got {d}")
        d = int(d)
    dat = _resolve_dat(path)
    csv_path = dat.with_name(dat.name + ".csv")
    if not csv_path.is_file():
        raise InvalidInputError(
            f"{dat.name} has no companion {csv_path.name} (expected at {str(csv_path)!r}): "
            "it lists the file behind each feature row"
        )
    filenames = _read_csv(csv_path)
    n = len(filenames)
    size = dat.stat().st_size
    name = dat.name
    if size == 0:
        raise InvalidInputError(f"{name} is empty (0 bytes) but {csv_path.name} lists {n} rows")
    if size % 4:
        raise InvalidInputError(
            f"{name} holds {size} bytes, which is not a multiple of 4 (float32): truncated file"
        )
    n_floats = size // 4
    meta_path = dat.with_name(dat.name + ".json")
    meta = _read_meta(meta_path)
    if meta is not None:
        rows, dim = meta
        if d is not None and d != dim:
            raise InvalidInputError(
                f"d = {d} contradicts {meta_path.name}, which gives dim = {dim} "
                "(delete the sidecar if the features were rewritten by another tool)"
            )
        if rows != n:
            raise InvalidInputError(
                f"{csv_path.name} lists {n} rows but {meta_path.name} says the features have "
                f"{rows}: the CSV is incomplete or from another run"
            )
        if n_floats != rows * dim:
            raise InvalidInputError(
                f"{name} holds {size} bytes, but {meta_path.name} says {rows} rows x {dim} "
                f"float32 ({rows * dim * 4} bytes): truncated or replaced file"
            )
        d = dim
    elif d is None:
        if n_floats % n:
            raise InvalidInputError(
                f"{name} holds {size} bytes = {n_floats} float32, which is not a multiple of "
                f"the {n} rows listed in {csv_path.name}: truncated file or mismatched CSV"
            )
        d = n_floats // n
        warnings.warn(
            f"{name}: read as {n} rows x {d} dims, the dimension inferred from the file "
            f"size and the {n} rows of {csv_path.name} (no {meta_path.name}, no d given); "
            f"a truncated file or an incomplete CSV would also fit: give d to check it",
            InferredShapeWarning,
            stacklevel=2,
        )
    elif n_floats != n * d:
        raise InvalidInputError(
            f"{name} holds {size} bytes, which is not {n} rows x {d} float32 "
            f"({n * d * 4} bytes): truncated file or wrong d"
        )
    features: npt.NDArray[np.float32]
    if mmap:
        features = np.memmap(dat, dtype=np.dtype("<f4"), mode="r", shape=(n, d), order="C")
    else:
        flat = np.fromfile(dat, dtype=np.dtype("<f4"), count=n * d)
        if flat.size != n * d:  # the file shrank since stat()
            raise InvalidInputError(
                f"{name}: read {flat.size} float32, expected {n * d}: truncated file"
            )
        features = flat.astype(np.float32, copy=False).reshape(n, d)
    return FastdupFeatures(features, filenames)


def _new_file(directory: Path, name: str, created: list[Path], mode: str) -> IO[Any]:
    """Open a new hidden temporary ``.{name}.*.tmp`` in ``directory``, umask permissions.

    Its path is appended to ``created`` (for the caller to clean up).
    """
    while True:
        path = directory / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        created.append(path)
        if "b" in mode:
            return os.fdopen(fd, mode)
        return os.fdopen(fd, mode, encoding="utf-8", newline="")


def write_fastdup_features(
    directory: str | os.PathLike[str],
    features: npt.ArrayLike,
    filenames: Sequence[str | os.PathLike[str]],
) -> Path:
    """Write ``atrain_features.dat`` and ``atrain_features.dat.csv`` atomically.

    Both files are written to temporary files in ``directory`` and moved into place
    with :func:`os.replace`; they get the permissions the umask allows (like any new
    file). On any failure the temporary files are removed and an
    existing pair is left as it was (a backup of the old ``.dat``, a hard link when possible,
    restores it if the second rename fails). ``directory`` is created if needed.

    Args:
        directory: The fastdup work directory to write into.
        features: ``[N, D]`` real numbers, stored as little-endian float32.
        filenames: The ``N`` file names, one per feature row.

    Returns:
        The path of the written ``atrain_features.dat``.

    Raises:
        ShapeError: ``features`` is not 2-D, is empty, or ``len(filenames) != N``.
        InvalidInputError: ``features`` is not real-valued numeric data, or a file name
            is not a string encodable as utf-8.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     dat = write_fastdup_features(tmp, np.zeros((2, 4)), ["x.png", "y.png"])
        ...     dat.name, dat.stat().st_size
        ('atrain_features.dat', 32)

    """
    x = np.asarray(features)
    if x.ndim != 2:
        raise ShapeError(f"features must be 2-D [N, D], got shape {x.shape}")
    n, d = x.shape
    if n == 0 or d == 0:
        raise ShapeError(f"features must have at least one row and column, got shape {x.shape}")
    if x.dtype.kind not in "biuf":
        raise InvalidInputError(f"features must be real numbers, got dtype {x.dtype}")
    names = [os.fspath(f) for f in filenames]
    if len(names) != n:
        raise ShapeError(f"{len(names)} filenames for {n} feature rows")
    for i, fname in enumerate(names):
        if not isinstance(fname, str):
            raise InvalidInputError(f"filenames[{i}] is {type(fname).__name__}, expected str")
        try:
            fname.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidInputError(f"filenames[{i}] = {fname!r} is not valid unicode: {e}") from e

    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    dat = out_dir / FEATURES_NAME
    csv_path = out_dir / FEATURES_CSV_NAME
    tmp_paths: list[Path] = []
    try:
        # created with the umask's permissions (tempfile's would be 0600)
        with _new_file(out_dir, FEATURES_NAME, tmp_paths, "wb") as fb:
            for start in range(0, n, _WRITE_CHUNK_ROWS):
                chunk = np.ascontiguousarray(x[start : start + _WRITE_CHUNK_ROWS], dtype="<f4")
                fb.write(chunk.tobytes())
            fb.flush()
            os.fsync(fb.fileno())
        with _new_file(out_dir, FEATURES_CSV_NAME, tmp_paths, "w") as fc:
            writer = csv.writer(fc, lineterminator="\n")
            writer.writerow(["index", "filename"])
            writer.writerows(enumerate(names))
            fc.flush()
            os.fsync(fc.fileno())
        meta_tmp = _write_meta_tmp(out_dir, n, d, tmp_paths)
        # Two renames are not atomic together: keep a hard link to the old .dat so that a
        # failure of the second rename can restore it.
        backup = out_dir / f".{FEATURES_NAME}.{os.getpid()}.bak"
        tmp_paths.append(backup)
        had_old = dat.exists()
        if had_old:
            backup.unlink(missing_ok=True)
            try:
                os.link(dat, backup)
            except OSError:  # no hard links on this file system
                shutil.copyfile(dat, backup)
        os.replace(tmp_paths[0], dat)
        try:
            os.replace(tmp_paths[1], csv_path)
        except BaseException:
            if had_old:
                os.replace(backup, dat)
            else:
                dat.unlink(missing_ok=True)
            raise
        try:  # simclust's sidecar last: without it the reader infers (and says so)
            os.replace(meta_tmp, out_dir / FEATURES_META_NAME)
        except BaseException:
            (out_dir / FEATURES_META_NAME).unlink(missing_ok=True)  # never a stale shape
            raise
    finally:
        for tmp in tmp_paths:
            tmp.unlink(missing_ok=True)
    return dat
