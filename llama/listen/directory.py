"""A directory watched for dropped notice files: offline operation, replay of an archive.

Files already there are handled first (oldest first), then new ones as they appear (polled).
Drop files atomically (write elsewhere, then rename into the directory); names starting with
'.' and ending in .part/.tmp are ignored. A file is handled once per (name, size, mtime).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from llama.errors import InputError
from llama.listen.core import Listener

log = logging.getLogger(__name__)

POLL_S = 0.5
_IGNORED_SUFFIXES = (".part", ".tmp", ".swp")


def _candidates(directory: Path) -> list[tuple[float, str, int]]:
    """(mtime, name, size) of the notice files in ``directory``, oldest first."""
    found = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.startswith(".") or entry.name.endswith(_IGNORED_SUFFIXES):
                continue
            try:
                if entry.is_file():
                    stat = entry.stat()
                    found.append((stat.st_mtime, entry.name, stat.st_size))
            except OSError:
                continue
    return sorted(found)


def watch_directory(listener: Listener, directory: str | os.PathLike, poll_s: float = POLL_S) -> None:
    """Handle every file dropped in ``directory`` until ``listener.done()``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: not a directory")
    seen: set[tuple[float, str, int]] = set()
    while not listener.done():
        for key in _candidates(directory):
            if key in seen:
                continue
            seen.add(key)
            try:
                raw = (directory / key[1]).read_bytes()
            except OSError as err:
                log.error("dir: cannot read %s: %s", directory / key[1], err.strerror)
                continue
            listener.handle(raw)
            if listener.done():
                return
        listener.heartbeat()
        listener.wait(poll_s)
