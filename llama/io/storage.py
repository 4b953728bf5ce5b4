"""Storage: every file llama writes, written atomically, on a local disk or behind an fsspec URL.

A *location* is a local path (``str`` or ``os.PathLike``), a ``file://`` URL, or any other fsspec
URL (``s3://bucket/key`` through s3fs, installed with ``pip install 'llama[s3]'``).

Atomic commit, the one rule of the project: a reader never sees a partial file and a crash
never leaves one in place of the target.

- Local files: the bytes go to a temporary file ``.<name>.<random>.tmp`` in the target's
  directory, are fsynced, get the mode the umask gives a new file, and the temporary file is
  renamed over the target (``overwrite=False``: hard-linked to it, which refuses an existing
  target). The writer holds an exclusive ``flock`` on its temporary file until the rename, so
  :func:`remove_stale_temporaries` can tell a live writer's file from one a killed writer left.
- Remote URLs: the bytes go to a local temporary file, then to the store with one fsspec
  ``put_file``; object stores (S3) make an object visible only once it is complete.

Remote filesystems are configured the fsspec way (``fsspec.config.conf`` or environment
variables such as ``FSSPEC_S3_ENDPOINT_URL``, read when fsspec is first imported). fsspec is
imported only when a remote URL is used, so importing this module stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from llama.errors import ConfigurationError, LlamaError

try:  # POSIX; elsewhere temporaries are judged by age alone
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

#: A local path, a ``file://`` URL or any fsspec URL.
Location = str | os.PathLike[str]

#: A temporary file of a killed writer is removed once it is older than this (s, by mtime) and no
#: process holds its lock (see :func:`remove_stale_temporaries`).
STALE_TEMPORARY_AGE_S = 600.0

_CHUNK = 1 << 20
_LOCAL_PROTOCOLS = ("file", "local")
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)(?:://|::)")
_TEMP_ATTEMPTS = 100
#: Extras that install the fsspec implementation of a protocol.
_EXTRAS = {"s3": "s3", "s3a": "s3"}

# The process umask, read once: temporaries are created 0600, the target gets 0666 & ~umask.
_UMASK = os.umask(0)
os.umask(_UMASK)


# ------------------------------------------------------------------------------ locations


def protocol(location: Location) -> str | None:
    """The URL scheme of ``location`` (lower case; the first of a chained fsspec URL), or None
    for a plain path."""
    if not isinstance(location, str):
        return None
    match = _URL.match(location)
    return match.group(1).lower() if match else None


def is_local(location: Location) -> bool:
    """True for a plain path or a ``file://`` (``local://``) URL."""
    return protocol(location) in (None, *_LOCAL_PROTOCOLS) and not _chained(location)


def local_path(location: Location) -> Path | None:
    """The local path of ``location``, or None for a remote URL.

    ``file:///a/b`` is ``/a/b``; as in fsspec, the URL is not percent-decoded.
    """
    if not is_local(location):
        return None
    scheme = protocol(location)
    if scheme is None:
        return Path(location)
    return Path(str(location)[len(scheme) + 3 :])


def to_url(location: Location) -> str:
    """``location`` as a URL: a local path becomes ``file://<absolute path>`` (not quoted, as
    fsspec writes it); a URL is returned unchanged."""
    if protocol(location) is not None:
        return str(location)
    return "file://" + Path(location).absolute().as_posix()


def _chained(location: Location) -> bool:
    return isinstance(location, str) and "::" in location.split("://", 1)[0]


def _filesystem(location: Location) -> tuple[Any, str]:
    """The fsspec filesystem of a remote URL and the path inside it."""
    scheme = protocol(location) or "file"
    try:
        import fsspec.core
    except ImportError as err:  # pragma: no cover - fsspec is a dependency
        raise ConfigurationError(f"{location}: remote storage needs fsspec ({err})") from None
    try:
        return fsspec.core.url_to_fs(str(location))
    except ImportError as err:
        extra = _EXTRAS.get(scheme)
        hint = f"pip install 'llama[{extra}]'" if extra else f"install the fsspec backend ({err})"
        raise ConfigurationError(
            f"{location}: no storage backend for {scheme}:// URLs: {hint}"
        ) from None
    except ValueError as err:
        raise ConfigurationError(f"{location}: unsupported storage URL: {err}") from None


@contextmanager
def _remote_errors(location: Location) -> Iterator[None]:
    """Turn an object store's own exceptions (botocore, aiohttp, ...) into one-line errors;
    a missing file stays FileNotFoundError, llama's own errors pass through."""
    try:
        yield
    except (FileNotFoundError, FileExistsError, LlamaError):
        raise
    except Exception as err:  # noqa: BLE001 - every backend has its own exception types
        first = (str(err).splitlines() or [""])[0]
        raise ConfigurationError(
            f"{location}: object store error ({type(err).__name__}: {first})"
        ) from None


# --------------------------------------------------------------------------------- reading


def exists(location: Location) -> bool:
    """True when ``location`` names an existing file (or directory)."""
    path = local_path(location)
    if path is not None:
        return path.exists()
    fs, inner = _filesystem(location)
    with _remote_errors(location):
        fs.invalidate_cache(inner)  # another process may have written it meanwhile
        return bool(fs.exists(inner))


def size(location: Location) -> int:
    """Size of the file at ``location``, bytes; FileNotFoundError when absent."""
    path = local_path(location)
    if path is not None:
        return path.stat().st_size
    fs, inner = _filesystem(location)
    with _remote_errors(location):
        fs.invalidate_cache(inner)
        return int(fs.size(inner))


def read_bytes(location: Location) -> bytes:
    """The contents of the file at ``location``; FileNotFoundError when absent."""
    path = local_path(location)
    if path is not None:
        return path.read_bytes()
    fs, inner = _filesystem(location)
    with _remote_errors(location):
        return fs.cat_file(inner)


def sha256_file(location: Location) -> str:
    """Hex sha256 of the contents of the file at ``location``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    for chunk in _chunks(location):
        digest.update(chunk)
    return digest.hexdigest()


def _chunks(location: Location) -> Iterator[bytes]:
    path = local_path(location)
    if path is not None:
        handle = open(path, "rb")
    else:
        fs, inner = _filesystem(location)
        with _remote_errors(location):
            handle = fs.open(inner, "rb")
    with handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


# --------------------------------------------------------------------------------- writing


def atomic_write_bytes(target: Location, data: bytes, *, overwrite: bool = True) -> Path | str:
    """Write ``data`` to ``target`` atomically; return the local path, or the URL when remote.

    With ``overwrite=False`` an existing target is never replaced: the call raises
    ``FileExistsError`` instead (locally the new file is hard-linked into place, so this is
    race-free; remotely the existence check and the upload are two steps). The temporary file is
    removed on any failure.
    """
    path = local_path(target)
    if path is None:
        return _put_remote(target, lambda handle: handle.write(data), overwrite=overwrite)
    return _commit_local(path, lambda handle: handle.write(data), overwrite=overwrite)


def atomic_write_text(target: Location, text: str) -> Path | str:
    """Write UTF-8 ``text`` to ``target`` atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(target, text.encode("utf-8"))


def json_text(obj: Any) -> str:
    """Deterministic JSON: sorted keys, indent 2, no NaN/Infinity, trailing newline."""
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def atomic_write_json(target: Location, obj: Any) -> Path | str:
    """Write ``obj`` as deterministic JSON (see :func:`json_text`) atomically."""
    return atomic_write_text(target, json_text(obj))


def write_if_changed(target: Location, data: bytes) -> bool:
    """Atomically write ``data`` unless ``target`` already holds exactly these bytes.

    Returns True when the file was written; an unchanged file is not touched (keeps its mtime).
    """
    try:
        unchanged = (
            size(target) == len(data) and sha256_file(target) == hashlib.sha256(data).hexdigest()
        )
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        unchanged = False
    if unchanged:
        return False
    atomic_write_bytes(target, data)
    return True


def put_file(source: str | os.PathLike[str], target: Location) -> Path | str:
    """Copy the local file ``source`` to ``target`` atomically (streamed, never held in memory);
    return the target as :func:`atomic_write_bytes` does. Remote: one fsspec ``put_file``."""
    path = local_path(target)
    if path is None:
        fs, inner = _filesystem(target)
        fs.put_file(os.fspath(source), inner)
        fs.invalidate_cache(inner)
        return str(target)

    def copy(handle: BinaryIO) -> None:
        with open(source, "rb") as original:
            while chunk := original.read(_CHUNK):
                handle.write(chunk)

    return _commit_local(path, copy)


def remove_stale_temporaries(
    target: Location, *, max_age_s: float = STALE_TEMPORARY_AGE_S
) -> list[Path]:
    """Delete the temporary files ``.<name>.<random>.tmp`` a killed writer left beside a local
    ``target``; return the removed paths. Remote targets have none (nothing partial is uploaded).

    Only provably stale temporaries go: last modified more than ``max_age_s`` seconds ago AND
    not locked (a live writer holds an exclusive flock on its temporary file until the rename;
    the kernel drops it when the writer dies, even by SIGKILL). A file another process is
    writing right now is therefore never removed.
    """
    path = local_path(target)
    if path is None:
        return []
    removed = []
    limit = time.time() - max_age_s
    for candidate in path.parent.glob(f".{_glob_escape(path.name[:80])}.*.tmp"):
        try:
            if candidate.stat().st_mtime > limit:
                continue
            fd = os.open(candidate, os.O_RDONLY)
        except OSError:
            continue
        try:
            if not _try_lock(fd):
                continue
            if candidate.stat().st_mtime <= limit:  # still untouched, and now ours
                candidate.unlink(missing_ok=True)
                removed.append(candidate)
        except OSError:
            continue
        finally:
            os.close(fd)
    return removed


# -------------------------------------------------------------------------------- internals


def _create_temporary(path: Path) -> tuple[int, str]:
    """A new temporary file ``.<name>.<random>.tmp`` (mode 0600) beside ``path``."""
    for _ in range(_TEMP_ATTEMPTS):
        tmp = os.path.join(path.parent, f".{path.name[:80]}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path}: no free temporary file name")  # pragma: no cover


def _commit_local(
    path: Path, write: Callable[[BinaryIO], object], *, overwrite: bool = True
) -> Path:
    """The local atomic commit: temporary file beside ``path``, locked, written by ``write``,
    fsynced, given the umask's mode, renamed (or, without ``overwrite``, linked) into place."""
    fd, tmp = _create_temporary(path)
    try:
        try:
            _lock(fd)
            with open(fd, "wb", closefd=False) as handle:
                write(handle)
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
    finally:
        os.close(fd)  # releases the lock, now that the temporary name is gone
    _fsync_dir(path.parent)
    return path


def _put_remote(target: Location, write: Callable[[BinaryIO], object], *, overwrite: bool) -> str:
    """Write to a local temporary file, then upload it with one fsspec ``put_file``."""
    import tempfile

    fs, inner = _filesystem(target)
    with _remote_errors(target):
        if not overwrite:
            fs.invalidate_cache(inner)
            if fs.exists(inner):
                raise FileExistsError(f"{target}: exists")
        fd, tmp = tempfile.mkstemp(prefix=".llama-upload.", suffix=".tmp")
        try:
            with open(fd, "wb") as handle:
                write(handle)
            fs.put_file(tmp, inner)
        finally:
            Path(tmp).unlink(missing_ok=True)
        fs.invalidate_cache(inner)
    return str(target)


def _lock(fd: int) -> None:
    """Lock a new temporary file for its writer (a filesystem without flock: age alone counts)."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pass


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock of an open file; False when another process holds it (True
    where locks are not supported: then the age alone decides)."""
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


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
