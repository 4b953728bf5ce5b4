"""Verified, resumable HTTP(S) downloads of files whose size and sha256 are known in advance.

:func:`download` streams ``url`` into ``.<name>.part`` beside the destination, resumes an
interrupted transfer with an HTTP ``Range`` request, checks the byte count and the sha256, and
only then renames the file into place. A file whose checksum differs is refused: the partial
file is deleted and nothing appears at the destination. An incomplete transfer (connection
lost) keeps its ``.part`` file so that the next call resumes it.

Concurrent downloads of the same destination (several grid jobs sharing a cache) are
serialised by an advisory lock on ``.<name>.lock``. Standard library only (``urllib``); the
CA bundle is the system's or ``$SSL_CERT_FILE``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import http.client
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from llama.errors import LlamaError

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


def _user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"llama/{version('llama')} (+data fetch)"
    except PackageNotFoundError:
        return "llama (+data fetch)"


class DownloadError(LlamaError):
    """A download failed, was incomplete, or its content did not match the expected checksum."""


class ChecksumMismatch(DownloadError):
    """The downloaded bytes differ from the expected size or sha256 (the file was refused)."""


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def part_path(dest: str | os.PathLike) -> Path:
    """Where an unfinished download of ``dest`` is kept (``.<name>.part`` beside it)."""
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.part")


@contextlib.contextmanager
def _locked(dest: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock for downloads of ``dest``."""
    lock = dest.with_name(f".{dest.name}.lock")
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:  # the holder before us may have removed the file: lock the current one then
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        with contextlib.suppress(OSError):
            lock.unlink()


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _content_range_start(value: str | None) -> int | None:
    """First byte of a ``Content-Range: bytes START-END/TOTAL`` header, else None."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", value or "")
    return int(match.group(1)) if match else None


def _transfer(url: str, part: Path, *, size: int, timeout: float,
              progress: Callable[[int, int], None] | None) -> None:
    """One HTTP request appending to ``part`` (from its current length); may raise OSError."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _user_agent(), "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http/https only)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # range beyond the end: what we hold is all there is
            return
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
    with response:
        status = getattr(response, "status", 200)
        if have and status == 206:
            start = _content_range_start(response.headers.get("Content-Range"))
            if start != have:
                raise DownloadError(f"{url}: server resumed at byte {start}, expected {have}")
            mode = "ab"
            log.info("resuming %s at byte %d of %d", url, have, size)
        else:
            if have:
                log.info("server ignored the Range request: restarting %s", url)
            mode, have = "wb", 0
        with open(part, mode) as handle:
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                handle.write(chunk)
                have += len(chunk)
                if progress is not None:
                    progress(have, size)
                if have > size:
                    break  # more bytes than expected: stop, the size check refuses it
            handle.flush()
            os.fsync(handle.fileno())


def download(url: str, dest: str | os.PathLike, *, size: int, sha256: str,
             timeout: float = 60.0, retries: int = 3,
             progress: Callable[[int, int], None] | None = None) -> Path:
    """Download ``url`` to ``dest`` and verify it (``size`` bytes, hex ``sha256``).

    Resumes from an existing ``.part`` file with an HTTP Range request, and retries a
    transfer that stops early up to ``retries`` more times. Raises :class:`ChecksumMismatch`
    (file refused, partial data deleted) or :class:`DownloadError` (``.part`` kept for a later
    resume when the transfer was merely incomplete). Returns ``dest``.
    """
    dest = Path(dest)
    if not url.startswith(("https://", "http://")):
        raise DownloadError(f"{url}: only http(s) URLs are supported")
    expected = sha256.lower()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    with _locked(dest):
        if dest.is_file() and dest.stat().st_size == size and sha256_of(dest) == expected:
            return dest  # another process finished it while we waited for the lock
        attempt = 0
        while True:
            try:
                _transfer(url, part, size=size, timeout=timeout, progress=progress)
            except (http.client.IncompleteRead, http.client.RemoteDisconnected,
                    ConnectionError, TimeoutError, urllib.error.URLError) as err:
                reason = getattr(err, "reason", None) or err.__class__.__name__
                log.info("transfer of %s interrupted (%s)", url, reason)
                if attempt >= retries:
                    have = part.stat().st_size if part.exists() else 0
                    raise DownloadError(
                        f"{url}: download incomplete ({have} of {size} bytes: {reason}); "
                        "run the command again to resume"
                    ) from None
            except OSError as err:
                if err.errno in (errno.ENOSPC, errno.EDQUOT):
                    part.unlink(missing_ok=True)
                raise
            have = part.stat().st_size if part.exists() else 0
            if have == size or have > size or attempt >= retries:
                break
            attempt += 1  # stopped early without an exception (short body): resume
        if have != size:
            if have > size:
                part.unlink(missing_ok=True)
                raise ChecksumMismatch(
                    f"{dest.name}: refused, server sent more than the expected {size} bytes "
                    f"({url})"
                )
            raise DownloadError(
                f"{url}: download incomplete ({have} of {size} bytes); run again to resume"
            )
        actual = sha256_of(part)
        if actual != expected:
            part.unlink(missing_ok=True)
            raise ChecksumMismatch(
                f"{dest.name}: refused, sha256 {actual} differs from the expected {expected} "
                f"({url})"
            )
        os.chmod(part, 0o644 & ~_umask())
        os.replace(part, dest)
        _fsync_dir(dest.parent)
    return dest


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
