"""Built-in loaders: ``numpy`` (.npy/.npz), ``parquet``, ``fastdup``, ``shards`` and ``images``.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.npy"
    >>> np.save(path, np.eye(3, dtype=np.float32))
    >>> NumpyLoader().load(path).X.shape
    (3, 3)

"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from simclust.base import LoadedData, Loader, Progress
from simclust.exceptions import InvalidInputError, PluginError, ShapeError, SimclustError
from simclust.progress import StageProgress, for_stage

if TYPE_CHECKING:
    from simclust.distributed._executor import Executor
    from simclust.host import Host

__all__ = ["FastdupLoader", "ImageFolderLoader", "NumpyLoader", "ParquetLoader", "ShardsLoader"]


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
                    raw_ids = npz[ids_key]
                    if raw_ids.ndim != 1 or raw_ids.shape[0] != _rows(x):
                        raise ShapeError(
                            f"{path}: ids array {ids_key!r} has shape {raw_ids.shape}, but "
                            f"{key!r} has shape {x.shape} (one id per row)"
                        )
                    try:
                        ids = _text_ids(raw_ids.tolist())
                    except InvalidInputError as exc:
                        raise InvalidInputError(f"{path}: array {ids_key!r}: {exc}") from None
                return LoadedData(x, ids)
        except SimclustError:
            raise
        except Exception as exc:  # numpy/zipfile parse the bytes: any failure is a bad file
            # (ValueError, EOFError, BadZipFile, zlib.error, SyntaxError of a mangled
            # header, NotImplementedError of a zip method, RuntimeError of an encrypted zip)
            reason = _first_line(exc)
            if not isinstance(exc, ValueError):
                reason = f"{type(exc).__name__}: {reason}"
            raise InvalidInputError(
                f"cannot read {path}: {reason} (truncated or not numpy?)"
            ) from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


def _rows(x: np.ndarray) -> int:
    return int(x.shape[0]) if x.ndim else -1


def _text_ids(values: list[Any]) -> list[str]:
    """Ids as text: UTF-8 bytes decoded, a null or a non-text id refused (row named)."""
    from simclust.inputs import as_ids  # not at import: it imports the host, which imports us

    out: list[str] = as_ids(values, len(values)).to_list()
    return out


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
        except (Exception, pl.exceptions.PanicException) as exc:  # a panic on bad bytes too
            raise InvalidInputError(
                f"cannot read {path} as Parquet: {type(exc).__name__}: {_first_line(exc)}"
            ) from exc
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
            lo, hi = lengths.min(), lengths.max()
            if lo != hi:
                raise ShapeError(
                    f"{path}: the vectors in {emb!r} have different lengths ({lo!r}..{hi!r})"
                )
            col = col.list.to_array(int(hi) if len(col) else 0)  # type: ignore[arg-type]
        if not isinstance(col.dtype, pl.Array):
            raise InvalidInputError(
                f"{path}: column {emb!r} holds {col.dtype}, not a list or array of numbers"
            )
        try:
            if col.dtype.inner != pl.Float32:
                col = col.cast(pl.Array(pl.Float32, col.dtype.size))
            x = col.to_numpy()
        except Exception as exc:
            raise InvalidInputError(
                f"{path}: column {emb!r} is not numeric vectors: {exc}"
            ) from exc
        idc = self.id_column
        if idc is None:
            idc = next((c for c in ("id", "filename", "path") if c in df.columns), None)
        elif idc not in df.columns:
            raise InvalidInputError(f"{path} has no column {idc!r}; it has {df.columns}")
        ids = None
        if idc is not None:
            id_col = df[idc]
            if id_col.null_count():
                rows = np.flatnonzero(id_col.is_null().to_numpy())
                shown = ", ".join(str(int(i)) for i in rows[:5])
                raise InvalidInputError(
                    f"{path}: id column {idc!r} has {rows.size} null(s) (rows {shown}"
                    f"{', ...' if rows.size > 5 else ''}); every row needs an id"
                )
            if (
                not isinstance(id_col.dtype, pl.String | pl.Binary)
                and not id_col.dtype.is_integer()
            ):
                raise InvalidInputError(
                    f"{path}: id column {idc!r} holds {id_col.dtype}, not text or integers"
                )
            try:
                ids = _text_ids(id_col.to_list())
            except InvalidInputError as exc:
                raise InvalidInputError(f"{path}: id column {idc!r}: {exc}") from None
        rest = df.drop([c for c in (emb, idc) if c is not None])
        return LoadedData(x, ids, rest if rest.width else None)


class FastdupLoader(Loader):
    """Reads fastdup's binary features: ``atrain_features.dat`` + ``.dat.csv``.

    The path is the ``.dat`` file or the folder holding ``atrain_features.dat``; ids
    are the file names of the CSV (memory-mapped, no copy).

    Args:
        d: the feature dimension (default: inferred from the file size and the row count).

    """

    def __init__(self, *, d: int | None = None) -> None:
        self.d = d

    def can_load(self, path: Path) -> bool:
        """A ``.dat`` file with a ``.dat.csv`` beside it, or a folder with one."""
        if path.is_dir():
            return (path / "atrain_features.dat").is_file()
        return path.suffix.lower() == ".dat" and path.with_name(path.name + ".csv").is_file()

    def load(self, path: Path, *, progress: Progress | None = None) -> LoadedData:
        """Read the features and file names."""
        from simclust.io.fastdup import read_fastdup_features

        feats = read_fastdup_features(path, d=self.d)
        return LoadedData(feats.features, feats.filenames)


SHARD_SUFFIXES = {".npy": "npy", ".parquet": "parquet", ".pq": "parquet"}
"""The files a sharded input is made of: ``.npy`` arrays or Parquet files."""

GLOB_CHARS = frozenset("*?[")


def is_glob(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a glob pattern (``*``, ``?`` or ``[``) rather than a path.

    Example:
        >>> is_glob("shards/*.npy"), is_glob("x.npy")
        (True, False)

    """
    return any(c in GLOB_CHARS for c in os.fspath(path))


def shard_files(path: Path) -> list[Path]:
    """The shard files of a folder or glob pattern, sorted by path (file name in a folder).

    A folder's shards are its ``.npy`` or Parquet files (not recursive); a pattern's are
    the files it matches.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> for name in ("b.npy", "a.npy", "notes.txt"):
        ...     _ = (d / name).write_bytes(b"")
        >>> [p.name for p in shard_files(d)], [p.name for p in shard_files(d / "*.npy")]
        (['a.npy', 'b.npy'], ['a.npy', 'b.npy'])

    """
    if path.is_dir():
        found = [p for p in path.iterdir() if p.suffix.lower() in SHARD_SUFFIXES and p.is_file()]
    elif is_glob(path) and not path.exists():
        found = [Path(p) for p in glob.glob(os.fspath(path)) if Path(p).is_file()]
    else:
        return []
    return sorted(found, key=os.fspath)


class ShardsLoader(Loader):
    """Reads a sharded input: a folder or glob pattern of ``.npy`` or Parquet files.

    Embeddings are written at scale by many workers into many files; this reads them as
    one input, the rows of the files concatenated in sorted file-name order. A ``.npy``
    shard is memory-mapped (one shard stays mapped; several are copied into one array,
    in their common dtype); a Parquet shard is read as the ``parquet`` loader reads one
    file (its id column, its other columns). Ids: a Parquet id column's values, else
    ``<file stem>:<row>`` (the row within its file), so every id says where its row is.

    Args:
        embedding_column: Parquet shards' vector column (as the ``parquet`` loader).
        id_column: Parquet shards' id column (as the ``parquet`` loader).

    Raises:
        ShapeError: shards of different dimensions (the file is named).
        InvalidInputError: shards of different dtypes or kinds (``.npy`` and Parquet),
            a shard that is not a 2-D array, some Parquet shards with ids and some
            without, different other columns.

    """

    def __init__(
        self, *, embedding_column: str | None = None, id_column: str | None = None
    ) -> None:
        self.embedding_column = embedding_column
        self.id_column = id_column

    def can_load(self, path: Path) -> bool:
        """A folder of ``.npy`` or Parquet files (and no images), or a pattern matching some.

        A folder with images in it is an image folder (the ``images`` loader), even with
        a ``.npy`` file among them.
        """
        if path.is_dir():
            from simclust.io.images import IMAGE_SUFFIXES

            if any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
                return False
        return bool(shard_files(path))

    def load(self, path: Path, *, progress: Progress | None = None) -> LoadedData:
        """Read every shard; concatenate rows, ids and columns."""
        files = self._files(path)
        parts: list[LoadedData] = []
        for i, f in enumerate(files):
            if progress is not None:
                progress(i, len(files))
            parts.append(self.read_shard(f))
        if progress is not None:
            progress(len(files), len(files))
        return self.combine(path, files, parts)

    def load_by(
        self, executor: Executor, path: Path, *, progress: StageProgress | None = None
    ) -> LoadedData:
        """:meth:`load` with every shard read by a task of ``executor`` (stage ``load``).

        The distributed backend's read (``analyze(..., backend="ray")``): the shards are
        read in parallel by Ray tasks, on whichever nodes run them, and their rows reach
        this process through the object store; then :meth:`combine` as :meth:`load`. One
        ``.npy`` shard is memory-mapped here instead (a task's read would copy it).

        Raises:
            simclust.exceptions.DistributedError: a read task failed for good (naming
                the stage and the shard); a shard's own error (a damaged file) is raised
                as its simclust type with the same prefix.

        """
        return self.read_by(executor, path, progress=progress)[0]

    def read_by(
        self, executor: Executor, path: Path, *, progress: StageProgress | None = None
    ) -> tuple[LoadedData, list[tuple[Any, int]]]:
        """:meth:`load_by`, and each shard's rows as the task left them in the store.

        The second item is ``(handle, rows)`` per shard, in shard order (empty for one
        ``.npy`` shard, read here): where the rows are, for a plan to move them from
        there by tasks instead of from this process.
        """
        from simclust.distributed._executor import Task

        files = self._files(path)
        if len(files) == 1 and SHARD_SUFFIXES[files[0].suffix.lower()] == "npy":
            return self.load(path, progress=for_stage(progress, "load")), []
        tasks = [
            Task(f"shard {i}: {f}", (self.embedding_column, self.id_column, str(f)))
            for i, f in enumerate(files)
        ]
        read = executor.map_keep("load", _read_shard_task, tasks, progress=progress)
        parts = [meta._replace(X=executor.get(h)) for meta, h in read]
        data = self.combine(path, files, parts)
        kept = [(h, _rows(np.asarray(p.X))) for (_, h), p in zip(read, parts, strict=True)]
        return data, kept

    def _files(self, path: Path) -> list[Path]:
        """The shards of ``path``, all of one kind."""
        files = shard_files(path)
        if not files:
            raise InvalidInputError(f"{path} holds no .npy or Parquet shards")
        kinds = {SHARD_SUFFIXES[f.suffix.lower()] for f in files}
        if len(kinds) > 1:
            npy = next(f for f in files if SHARD_SUFFIXES[f.suffix.lower()] == "npy")
            pq = next(f for f in files if SHARD_SUFFIXES[f.suffix.lower()] == "parquet")
            raise InvalidInputError(
                f"{path} mixes .npy and Parquet shards ({npy.name}, {pq.name}); use one kind"
            )
        return files

    def read_shard(self, f: Path) -> LoadedData:
        """One shard: a ``.npy`` file memory-mapped, a Parquet file as ``parquet`` reads it."""
        if SHARD_SUFFIXES[f.suffix.lower()] == "npy":
            return NumpyLoader().load(f)
        return ParquetLoader(embedding_column=self.embedding_column, id_column=self.id_column).load(
            f
        )

    def combine(self, path: Path, files: list[Path], parts: list[LoadedData]) -> LoadedData:
        """The shards' rows, ids and columns as one input, checked against each other."""
        arrays: list[np.ndarray] = []
        for f, part in zip(files, parts, strict=True):
            # a memory-mapped shard stays mapped (and a np.memmap)
            arr = part.X if isinstance(part.X, np.ndarray) else np.asarray(part.X)
            _check_shard(f, arr, files[0], arrays[0] if arrays else None)
            arrays.append(arr)
        x = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
        with_ids = [p.ids is not None for p in parts]
        if any(with_ids) and not all(with_ids):
            f = files[with_ids.index(False)]
            raise InvalidInputError(
                f"{f}: no id column, while {files[with_ids.index(True)].name} has one; "
                "every shard needs its ids, or none"
            )
        ids: list[str] = []
        for f, p, a in zip(files, parts, arrays, strict=True):
            ids.extend(p.ids if p.ids is not None else (f"{f.stem}:{r}" for r in range(_rows(a))))
        rest = [p.rows for p in parts]
        rows = None
        if any(r is not None for r in rest):
            try:
                rows = pl.concat([r for r in rest if r is not None], how="vertical")
            except Exception as exc:
                raise InvalidInputError(
                    f"{path}: the shards' other columns differ: {_first_line(exc)}"
                ) from None
            if rows.height != _rows(x):
                raise InvalidInputError(f"{path}: some shards have other columns, some not")
        return LoadedData(x, ids, rows)


def _read_shard_task(
    embedding_column: str | None, id_column: str | None, path: str
) -> tuple[LoadedData, np.ndarray]:
    """A read task of :meth:`ShardsLoader.read_by`: one shard, and its rows (kept apart).

    An I/O error is the input's problem, raised as :class:`InvalidInputError` naming the
    file (a task's error reaches the driver as its simclust type).
    """
    f = Path(path)
    try:
        part = ShardsLoader(embedding_column=embedding_column, id_column=id_column).read_shard(f)
    except SimclustError:
        raise
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path!r}: {type(exc).__name__}: {exc}") from None
    x = np.asarray(part.X)  # not a memory map: its rows travel
    return part._replace(X=x[:0]), x


def _check_shard(f: Path, x: np.ndarray, first: Path, r: np.ndarray | None) -> None:
    """A shard is a 2-D array of the first shard's dimension and dtype."""
    if x.ndim != 2:
        raise ShapeError(f"{f}: a shard must be a 2-D array (rows x dimensions), got {x.shape}")
    if r is None:
        return
    if x.shape[1] != r.shape[1]:
        raise ShapeError(
            f"{f}: {x.shape[1]} dimensions, but {first.name} has {r.shape[1]}; "
            "every shard must have the same"
        )
    if x.dtype != r.dtype:
        raise InvalidInputError(
            f"{f}: dtype {x.dtype}, but {first.name} has {r.dtype}; every shard must have the same"
        )


class ImageFolderLoader(Loader):
    """Embeds every image below a folder (jpg, png, webp, bmp, tiff; recursive).

    Ids are the image paths relative to the folder (posix). Files that cannot be read
    (corrupt, empty, truncated) are listed in the ``bad_files`` table, not fatal.

    Args:
        embedder: the registered embedder to use (``simclust plugins`` lists them).
        embedder_params: its parameters, e.g. ``{size = 64}``.

    """

    def __init__(
        self, *, embedder: str = "pixels", embedder_params: dict[str, Any] | None = None
    ) -> None:
        self.embedder = embedder
        self.embedder_params = embedder_params
        self._host: Host | None = None

    def bind(self, host: Host) -> None:
        """Use ``host``'s embedder registry."""
        self._host = host

    def can_load(self, path: Path) -> bool:
        """A folder (one holding fastdup features is the ``fastdup`` loader's)."""
        return path.is_dir()

    def load(self, path: Path, *, progress: Progress | None = None) -> LoadedData:
        """Find, decode and embed the images."""
        from simclust.config import check_params
        from simclust.host import get_host
        from simclust.io.images import IMAGE_SUFFIXES, find_images
        from simclust.plugin_calls import plugin_call

        host = self._host if self._host is not None else get_host()
        reg = host.embedders.get(self.embedder)
        params = check_params(
            "input.embedder_params",
            f"embedder {self.embedder!r}",
            reg.obj,
            self.embedder_params or {},
        )
        files = find_images(path)
        if not files:
            raise InvalidInputError(f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        try:
            with plugin_call(
                reg, "embed", passthrough=(OSError,)
            ):  # the embedder's failure, named (also sys.exit)
                emb = reg.obj(**params)
                out = emb.embed(files, progress=progress)
        except OSError:
            raise
        # An id is the path below the folder as found (a symlink keeps its own name, even
        # when it points outside the folder), never a resolved or absolute path.
        ids = {os.fspath(f): f.relative_to(path).as_posix() for f in files}

        resolved: dict[str, str] = {}  # for an embedder that returns resolved paths

        def rel(p: Path | str) -> str:
            key = os.fspath(p)
            if key in ids:
                return ids[key]
            if not resolved:
                for f in files:
                    resolved.setdefault(os.fspath(f.resolve()), ids[os.fspath(f)])
            if key not in resolved:
                raise PluginError(
                    f"embedder {self.embedder!r} ({reg.provider}) returned the path "
                    f"{key!r}, which it was not given"
                )
            return resolved[key]

        bad_paths = [rel(p) for p in out.bad_files["path"].to_list()]
        bad = out.bad_files.with_columns(pl.Series("path", bad_paths, dtype=pl.String))
        if len(out.paths) == 0 and bad.height:
            raise InvalidInputError(
                f"none of the {len(files)} images in {path} could be read "
                f"(first: {bad['path'][0]}: {bad['error'][0]})"
            )
        return LoadedData(out.features, [rel(p) for p in out.paths], None, bad)
