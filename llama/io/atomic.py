"""Atomic file writes: temp file in the same directory, fsync, rename.

Every product and every record llama writes goes through these functions, so a
reader never sees a partial file and a crash never leaves one behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20

# The process umask, read once: mkstemp creates 0600 files, rename keeps that mode.
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; return the path.

    With ``overwrite=False`` an existing ``path`` is never replaced: the call
    raises ``FileExistsError`` instead (the new file is hard-linked into place).
    The temporary file is removed on any failure.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:80]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            os.unlink(tmp)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_text(obj: Any) -> str:
    """Deterministic JSON: sorted keys, indent 2, no NaN/Infinity, trailing newline."""
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as deterministic JSON (see :func:`json_text`) atomically."""
    return atomic_write_text(path, json_text(obj))


def write_if_changed(path: str | os.PathLike, data: bytes) -> bool:
    """Atomically write ``data`` unless ``path`` already holds exactly these bytes.

    Returns True when the file was written; an unchanged file keeps its mtime.
    """
    path = Path(path)
    if (
        path.is_file()
        and path.stat().st_size == len(data)
        and sha256_file(path) == hashlib.sha256(data).hexdigest()
    ):
        return False
    atomic_write_bytes(path, data)
    return True


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's contents, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    """Flush a directory entry (the rename) to disk where the OS allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
