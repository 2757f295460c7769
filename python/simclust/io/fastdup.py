"""Read and write fastdup's binary feature files.

fastdup stores the embeddings of a run in two files in its work directory:

* ``atrain_features.dat``: the ``N x D`` feature matrix as raw row-major
  little-endian float32, without any header (exactly ``N * D * 4`` bytes);
* ``atrain_features.dat.csv``: a utf-8 CSV with the header ``index,filename``
  and one row per feature row (filenames CSV-quoted when they hold commas,
  quotes or newlines).

``D`` is not stored anywhere: it is given by the caller or inferred as
``file_size / (4 * N)`` with ``N`` the number of CSV rows.

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
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from simclust.exceptions import InvalidInputError, ParameterError, ShapeError

__all__ = [
    "FEATURES_CSV_NAME",
    "FEATURES_NAME",
    "FastdupFeatures",
    "read_fastdup_features",
    "write_fastdup_features",
]

FEATURES_NAME = "atrain_features.dat"
"""File name of fastdup's feature matrix inside its work directory."""

FEATURES_CSV_NAME = FEATURES_NAME + ".csv"
"""File name of the CSV listing the file behind each feature row."""

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
        d: The feature dimension; inferred as ``file_size / (4 * N)`` when ``None``.
        mmap: Memory-map the file read-only (no copy, no read until used) instead of
            loading it.

    Returns:
        A :class:`FastdupFeatures` ``(features, filenames)``.

    Raises:
        FileNotFoundError: ``path`` (or ``atrain_features.dat`` in the directory) does
            not exist.
        InvalidInputError: The CSV is missing or malformed (bad header, indices not
            exactly ``0..N-1``), a file is empty, or the size of the ``.dat`` file is not
            ``N * d * 4`` bytes (truncated file or wrong ``d``).
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
    if d is None:
        if n_floats % n:
            raise InvalidInputError(
                f"{name} holds {size} bytes = {n_floats} float32, which is not a multiple of "
                f"the {n} rows listed in {csv_path.name}: truncated file or mismatched CSV"
            )
        d = n_floats // n
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


def write_fastdup_features(
    directory: str | os.PathLike[str],
    features: npt.ArrayLike,
    filenames: Sequence[str | os.PathLike[str]],
) -> Path:
    """Write ``atrain_features.dat`` and ``atrain_features.dat.csv`` atomically.

    Both files are written to temporary files in ``directory`` and moved into place
    with :func:`os.replace`. On any failure the temporary files are removed and an
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
        with tempfile.NamedTemporaryFile(
            "wb", dir=out_dir, prefix=f".{FEATURES_NAME}.", suffix=".tmp", delete=False
        ) as fb:
            tmp_paths.append(Path(fb.name))
            for start in range(0, n, _WRITE_CHUNK_ROWS):
                chunk = np.ascontiguousarray(x[start : start + _WRITE_CHUNK_ROWS], dtype="<f4")
                fb.write(chunk.tobytes())
            fb.flush()
            os.fsync(fb.fileno())
        with tempfile.NamedTemporaryFile(
            "w",
            dir=out_dir,
            prefix=f".{FEATURES_CSV_NAME}.",
            suffix=".tmp",
            delete=False,
            encoding="utf-8",
            newline="",
        ) as fc:
            tmp_paths.append(Path(fc.name))
            writer = csv.writer(fc, lineterminator="\n")
            writer.writerow(["index", "filename"])
            writer.writerows(enumerate(names))
            fc.flush()
            os.fsync(fc.fileno())
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
    finally:
        for tmp in tmp_paths:
            tmp.unlink(missing_ok=True)
    return dat
