"""Output folders simclust owns: which files it wrote, and replacing them atomically.

A folder is simclust's when its ``manifest.json`` carries :data:`RESULT_MARKER`; only
the files that manifest lists are ever replaced or removed. New files are written in a
staging folder and moved in one by one (:func:`swap_in`), the manifest last, with the
previous files put back on any failure.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> result_files(d) is None, check_output_dir(d / "new")
    (True, [])

"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from simclust.exceptions import InvalidInputError

__all__ = [
    "MANIFEST",
    "REPORT_FILE",
    "RESULT_FORMAT",
    "RESULT_MARKER",
    "check_output_dir",
    "check_stem",
    "is_plain_file",
    "make_dir",
    "record_file",
    "result_files",
    "swap_in",
    "write_folder",
    "write_manifest",
    "write_text",
]

MANIFEST = "manifest.json"
RESULT_MARKER = "simclust_result"
"""The top-level manifest key (value: :data:`RESULT_FORMAT`) that marks a folder simclust
wrote; only the files its ``files`` list names are ever replaced or removed."""
RESULT_FORMAT = 1
REPORT_FILE = "report.html"
_STEM = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_SUFFIXES = (".parquet", ".npy", ".html", ".txt")


def check_stem(kind: str, stem: object) -> None:
    """Refuse a table or array name that is not a plain file stem (no path, no ``..``)."""
    if not isinstance(stem, str) or not _STEM.fullmatch(stem) or ".." in stem:
        raise InvalidInputError(
            f"{kind} name {stem!r} is not a plain file name (letters, digits, '_', '.', '-'; "
            "no path separator, no '..')"
        )


def is_plain_file(name: object) -> bool:
    """A file name simclust writes: a plain stem and a suffix it uses, or the manifest."""
    if not isinstance(name, str) or not _STEM.fullmatch(name) or ".." in name:
        return False
    return name == MANIFEST or name.endswith(_SUFFIXES)


def result_files(directory: Path) -> list[str] | None:
    """The files listed by the simclust manifest in ``directory``; ``None``: there is none.

    A manifest counts only with :data:`RESULT_MARKER` and a ``files`` list of plain
    names: a ``manifest.json`` of any other tool (web apps, extensions, models) does not.
    """
    path = directory / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get(RESULT_MARKER), int):
        return None
    files = data.get("files")
    if not isinstance(files, list) or not all(is_plain_file(f) for f in files):
        return None
    return list(files)


def check_output_dir(
    directory: str | Path,
    *,
    new_files: Iterable[str] = (),
    input_path: str | Path | None = None,
) -> list[str]:
    """Refuse an output folder simclust must not write into, before any work is done.

    Allowed: an absent or empty folder, or one holding a simclust result (a
    ``manifest.json`` with :data:`RESULT_MARKER`). Refused: a file, a broken symlink, a
    non-empty folder without a simclust manifest (e.g. an image folder, or one whose
    ``manifest.json`` another tool wrote), the input folder itself, and a folder holding
    a file named like one of ``new_files`` that the old manifest does not list.

    Returns:
        The files the folder's simclust manifest lists (empty when there is none).

    Raises:
        FileExistsError: naming the folder and the reason.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "notes.txt").write_text("mine")
        >>> check_output_dir(d / "new")
        []
        >>> try:
        ...     check_output_dir(d)
        ... except FileExistsError as exc:
        ...     "not a simclust output" in str(exc)
        True

    """
    target = Path(directory)
    shown = repr(str(target))
    if target.is_symlink() and not target.exists():
        raise FileExistsError(f"output folder {shown} is a broken symbolic link")
    if input_path is not None:
        with_input = os.path.lexists(target) and os.path.lexists(input_path)
        if with_input and os.path.samefile(target, input_path):
            raise FileExistsError(
                f"output folder {shown} is the input; choose another folder for the results"
            )
    if not target.exists():
        return []
    if not target.is_dir():
        raise FileExistsError(f"output folder {shown} is a file")
    own = result_files(target)
    if own is None:
        if any(target.iterdir()):
            raise FileExistsError(
                f"output folder {shown} is not empty and is not a simclust output (no "
                f"{MANIFEST} written by simclust); refusing to write into it: choose a new "
                "or empty folder"
            )
        return []
    ours = {*own, MANIFEST}
    for name in sorted({*new_files, *own, MANIFEST}):
        path = target / name
        if name not in ours and os.path.lexists(path):
            raise FileExistsError(
                f"output folder {shown} holds {name!r}, which simclust did not write there; "
                "refusing to replace it: move it or choose another folder"
            )
        if path.is_dir() and not path.is_symlink():
            raise FileExistsError(f"output folder {shown}: {name!r} is a folder; refusing")
    return own


def record_file(directory: str | Path, name: str) -> None:
    """Add ``name`` to the ``files`` of the simclust manifest in ``directory`` (atomically).

    Used by ``simclust report`` after writing ``report.html`` into a result folder, so a
    later run replaces it. Nothing happens if the folder holds no simclust manifest.
    """
    root = Path(directory)
    own = result_files(root)
    if own is None or name in own or not is_plain_file(name):
        return
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    manifest["files"] = sorted([*own, name])
    tmp = root / f".{MANIFEST}.{secrets.token_hex(6)}.tmp"
    try:
        write_text(tmp, json.dumps(manifest, indent=2, default=str) + "\n")
        os.replace(tmp, root / MANIFEST)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """Create ``path`` (it must not exist) with the umask's permissions and ``text``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def make_dir(parent: Path, prefix: str) -> Path:
    """A new uniquely named folder in ``parent``, with the umask's permissions.

    (:func:`tempfile.mkdtemp` would make it 0700, and the results would stay so.)
    """
    while True:
        path = parent / f"{prefix}{secrets.token_hex(6)}"
        try:
            os.mkdir(path, 0o777)
        except FileExistsError:
            continue
        return path


def swap_in(stage: Path, target: Path, names: list[str], old: list[str]) -> None:
    """Move the files in ``stage`` into ``target``, replacing and removing only ``old``.

    Each replaced file is first moved into ``stage/.previous``; on any failure (or
    Ctrl-C) the new files are removed and the previous ones moved back, so the folder
    holds the complete previous result again. The manifest moves last.
    """
    backup = stage / ".previous"
    backup.mkdir()
    new = [*sorted(set(names) - {MANIFEST}), MANIFEST]
    stale = sorted(set(old) - set(new))
    try:
        for name in new:
            if os.path.lexists(target / name):
                os.replace(target / name, backup / name)
            os.replace(stage / name, target / name)
        for name in stale:
            if os.path.lexists(target / name):
                os.replace(target / name, backup / name)
    except BaseException:
        for name in [*new, *stale]:
            if name in new and not os.path.lexists(stage / name):
                (target / name).unlink(missing_ok=True)  # placed: take the new file out
            if os.path.lexists(backup / name):
                os.replace(backup / name, target / name)
        raise


def write_manifest(stage: Path, fields: Mapping[str, Any]) -> None:
    """Write ``manifest.json`` into ``stage``: :data:`RESULT_MARKER` and ``fields``.

    ``fields`` must list the folder's files under ``files``: only those are ever
    replaced or removed by a later write.
    """
    manifest = {RESULT_MARKER: RESULT_FORMAT, **fields}
    write_text(stage / MANIFEST, json.dumps(manifest, indent=2, default=str) + "\n")


def write_folder(
    target: Path, names: list[str], old: list[str], fill: Callable[[Path], None]
) -> None:
    """Write the files ``names`` into ``target`` atomically.

    ``fill(stage)`` writes them, and the manifest (:func:`write_manifest`), into a new
    staging folder; a new ``target`` is then that folder renamed, an existing one gets
    the files moved in by :func:`swap_in` (``old``: the files its manifest lists, from
    :func:`check_output_dir`, which the caller runs first). The staging folder is
    removed whatever happens.
    """
    fresh = not os.path.lexists(target)
    if fresh:
        target.parent.mkdir(parents=True, exist_ok=True)
        stage = make_dir(target.parent, f".{target.name}.tmp-")
    else:
        stage = make_dir(target, ".simclust-tmp-")
    try:
        fill(stage)
        if fresh:
            stage.rename(target)
        else:
            swap_in(stage, target, names, old)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
