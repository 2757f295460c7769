"""Built-in loaders: ``numpy`` (.npy / .npz, memory-mapped) and ``parquet``.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.npy"
    >>> np.save(path, np.eye(3, dtype=np.float32))
    >>> NumpyLoader().load(path).X.shape
    (3, 3)

"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from simclust.base import LoadedData, Loader, Progress
from simclust.exceptions import InvalidInputError, ShapeError

__all__ = ["NumpyLoader", "ParquetLoader"]


class NumpyLoader(Loader):
    """Reads a 2-D array from ``.npy`` (memory-mapped: no copy) or ``.npz``.

    Args:
        key: the array's name inside an ``.npz`` (default: its only array, or
            ``"embeddings"``/``"features"``/``"X"``).
        ids_key: an ``.npz`` array of string ids (default: ``"ids"`` if present).

    """

    def __init__(self, *, key: str | None = None, ids_key: str | None = None) -> None:
        self.key = key
        self.ids_key = ids_key

    def can_load(self, path: Path) -> bool:
        """``.npy`` and ``.npz`` files."""
        return path.suffix.lower() in (".npy", ".npz") and path.is_file()

    def load(self, path: Path, *, progress: Progress | None = None) -> LoadedData:
        """Read the embeddings (and ids from an ``.npz``)."""
        try:
            if path.suffix.lower() == ".npy":
                return LoadedData(np.load(path, mmap_mode="r", allow_pickle=False))
            with np.load(path, allow_pickle=False) as npz:
                names = list(npz.files)
                key = self.key
                if key is None:
                    for cand in ("embeddings", "features", "X"):
                        if cand in names:
                            key = cand
                            break
                    else:
                        arrays = [n for n in names if n != (self.ids_key or "ids")]
                        if len(arrays) != 1:
                            raise InvalidInputError(
                                f"{path} holds arrays {names}; say which holds the "
                                "embeddings with key = ..."
                            )
                        key = arrays[0]
                if key not in names:
                    raise InvalidInputError(f"{path} has no array {key!r}; it has {names}")
                x = npz[key]
                ids_key = self.ids_key or ("ids" if "ids" in names else None)
                ids = None
                if ids_key is not None:
                    if ids_key not in names:
                        raise InvalidInputError(f"{path} has no array {ids_key!r}; it has {names}")
                    ids = [str(v) for v in npz[ids_key].tolist()]
                return LoadedData(x, ids)
        except (ValueError, OSError, EOFError) as exc:
            if isinstance(exc, InvalidInputError):
                raise
            raise InvalidInputError(f"cannot read {path}: {exc} (truncated or not numpy?)") from exc


class ParquetLoader(Loader):
    """Reads a Parquet file with an embedding column and an optional id column.

    The embedding column holds a list or fixed-size array of numbers per row. Every
    other column is kept as a per-row column (``rows``) for metrics such as
    ``label-purity``.

    Args:
        embedding_column: the vector column (default: the only list/array column).
        id_column: the id column (default: ``id``, ``filename`` or ``path`` if present).

    """

    def __init__(
        self, *, embedding_column: str | None = None, id_column: str | None = None
    ) -> None:
        self.embedding_column = embedding_column
        self.id_column = id_column

    def can_load(self, path: Path) -> bool:
        """``.parquet`` / ``.pq`` files."""
        return path.suffix.lower() in (".parquet", ".pq") and path.is_file()

    def load(self, path: Path, *, progress: Progress | None = None) -> LoadedData:
        """Read the vectors, ids and the other columns."""
        try:
            df = pl.read_parquet(path)
        except Exception as exc:
            raise InvalidInputError(f"cannot read {path} as Parquet: {exc}") from exc
        emb = self.embedding_column
        if emb is None:
            vec = [n for n, t in df.schema.items() if isinstance(t, pl.List | pl.Array)]
            if len(vec) != 1:
                raise InvalidInputError(
                    f"{path}: cannot tell the embedding column among {df.columns}; "
                    "set embedding_column"
                )
            emb = vec[0]
        if emb not in df.columns:
            raise InvalidInputError(f"{path} has no column {emb!r}; it has {df.columns}")
        col = df[emb]
        if col.null_count():
            raise InvalidInputError(f"{path}: column {emb!r} has {col.null_count()} null row(s)")
        if isinstance(col.dtype, pl.List):
            lengths = col.list.len()
            if lengths.n_unique() > 1:
                raise ShapeError(
                    f"{path}: the vectors in {emb!r} have different lengths "
                    f"({lengths.min()!r}..{lengths.max()!r})"
                )
            dim = int(lengths[0]) if len(col) else 0
            col = col.cast(pl.Array(pl.Float32, dim))
        try:
            x = col.cast(pl.Array(pl.Float32, col.dtype.size)).to_numpy()  # type: ignore[attr-defined]
        except Exception as exc:
            raise InvalidInputError(
                f"{path}: column {emb!r} is not numeric vectors: {exc}"
            ) from exc
        idc = self.id_column
        if idc is None:
            idc = next((c for c in ("id", "filename", "path") if c in df.columns), None)
        elif idc not in df.columns:
            raise InvalidInputError(f"{path} has no column {idc!r}; it has {df.columns}")
        ids = None if idc is None else df[idc].cast(pl.String).to_list()
        rest = df.drop([c for c in (emb, idc) if c is not None])
        return LoadedData(x, ids, rest if rest.width else None)
