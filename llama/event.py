"""The event store: one directory per event, ``<run_dir>/<eventid>/``.

Inside an event directory::

    flags.json          role (test|observation), online, vetoed, retracted, upload, manual
    skymap_info.json    what the latest notice said (see llama.io.voevent.SKYMAP_INFO_KEYS)
    <sky map file>      the sky map named by skymap_info["skymap_filename"]
    notices/NNNN-<name> every raw notice ever received, numbered in arrival order
    latency.json        when each notice was received (listeners) and each product written

All writes are atomic (llama.io.storage); archived notices are never overwritten.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from llama.errors import InputError
from llama.ids import ROLES, safe_filename, validate_event_id
from llama.io.storage import atomic_write_bytes, atomic_write_json, json_text, write_if_changed
from llama.paths import confined, safe_join, write_root

log = logging.getLogger(__name__)

#: Flags of a new event: test-safe (a test event never notifies anyone).
DEFAULT_FLAGS: dict[str, Any] = {
    "role": "test",
    "online": False,
    "vetoed": False,
    "retracted": False,
    "upload": False,
    "manual": False,
}

FLAGS_FILE = "flags.json"
SKYMAP_INFO_FILE = "skymap_info.json"
NOTICES_DIR = "notices"
LATENCY_FILE = "latency.json"
_RESERVED_NAMES = {FLAGS_FILE, SKYMAP_INFO_FILE, NOTICES_DIR, LATENCY_FILE}
_ARCHIVED = re.compile(r"(\d+)-")
#: Largest difference (s) between a retraction's event time and the recorded one.
RETRACTION_TOLERANCE = 60.0


def _check_flag(name: str, value: Any) -> None:
    """Raise InputError unless ``name=value`` is a valid flag setting."""
    if name not in DEFAULT_FLAGS:
        raise InputError(f"unknown event flag {name!r}; known: {', '.join(DEFAULT_FLAGS)}")
    if name == "role":
        if value not in ROLES:
            raise InputError(f"invalid role {value!r}: must be 'test' or 'observation'")
    elif not isinstance(value, bool):
        raise InputError(f"invalid value {value!r} for flag {name!r}: must be true or false")


def _read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object; any problem becomes a one-line InputError."""
    try:
        obj = json.loads(path.read_bytes())
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from None
    except (ValueError, RecursionError) as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _notice_time(info: dict[str, Any]) -> datetime | None:
    """The notice's issue time as an aware datetime (naive ISO strings are UTC), or None."""
    try:
        when = datetime.fromisoformat(info["notice_time_iso"])
    except (KeyError, TypeError, ValueError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


class Event:
    """One event directory ``<run_dir>/<eventid>``; nothing is created until :meth:`create`."""

    def __init__(self, eventid: str, run_dir: str | os.PathLike) -> None:
        self.eventid = validate_event_id(eventid)
        self.run_dir = Path(run_dir)
        #: No write may leave this directory, whatever symlinks: the output directory (or
        #: run_dir itself when it lies elsewhere); see llama.paths.confined.
        self.root = write_root(self.run_dir)
        self.directory = safe_join(self.run_dir, self.eventid)
        confined(self.directory, self.root)

    def __repr__(self) -> str:
        return f"Event({self.eventid!r}, {str(self.run_dir)!r})"

    @property
    def exists(self) -> bool:
        """True when the event directory exists."""
        return self.directory.is_dir()

    @property
    def flags_path(self) -> Path:
        return self.directory / FLAGS_FILE

    @property
    def skymap_info_path(self) -> Path:
        return self.directory / SKYMAP_INFO_FILE

    @property
    def notices_dir(self) -> Path:
        return self.directory / NOTICES_DIR

    def create(self, **flags: Any) -> Event:
        """Create the directory; a new event gets DEFAULT_FLAGS updated with ``flags``.

        An existing event is left as it is (use :meth:`set_flags` to change it).
        """
        for name, value in flags.items():
            _check_flag(name, value)
        confined(self.directory, self.root)
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.flags_path.exists():
            atomic_write_json(self.flags_path, {**DEFAULT_FLAGS, **flags})
        return self

    def _require(self) -> None:
        """Raise InputError unless the event directory exists (ConfigurationError if a symlink
        now leads it outside the output directory)."""
        confined(self.directory, self.root)
        if not self.exists:
            raise InputError(f"event {self.eventid} does not exist in {self.run_dir}")

    @property
    def flags(self) -> dict[str, Any]:
        """Current flags: DEFAULT_FLAGS overlaid with flags.json."""
        stored = _read_json(self.flags_path) if self.flags_path.exists() else {}
        for name, value in stored.items():
            try:
                _check_flag(name, value)
            except InputError as err:
                raise InputError(f"{self.flags_path}: {err}") from None
        return {**DEFAULT_FLAGS, **stored}

    def set_flags(self, **changes: Any) -> dict[str, Any]:
        """Change some flags atomically; returns the new flags."""
        self._require()
        for name, value in changes.items():
            _check_flag(name, value)
        flags = {**self.flags, **changes}
        write_if_changed(self.flags_path, json_text(flags).encode())
        return flags

    @property
    def skymap_info(self) -> dict[str, Any]:
        """Contents of skymap_info.json."""
        if not self.skymap_info_path.exists():
            raise InputError(f"event {self.eventid} has no {SKYMAP_INFO_FILE} in {self.directory}")
        return _read_json(self.skymap_info_path)

    def relpath(self, path: Path) -> str:
        """``path`` relative to the event directory, as a POSIX string."""
        return PurePosixPath(Path(path).relative_to(self.directory)).as_posix()

    def _numbered_notices(self) -> list[tuple[int, Path]]:
        """(arrival number, path) of every archived notice, in arrival order."""
        if not self.notices_dir.is_dir():
            return []
        return sorted(
            (int(m.group(1)), p)
            for p in self.notices_dir.iterdir()
            if (m := _ARCHIVED.match(p.name))
        )

    def notices(self) -> list[Path]:
        """Archived notices in arrival order."""
        return [p for _, p in self._numbered_notices()]

    def archive_notice(self, raw: bytes, name: str) -> Path:
        """Keep a raw notice as ``notices/NNNN-<name>``; never overwrites. Returns its path.

        Numbering is serialised by locking the notices directory, so concurrent
        writers get distinct numbers.
        """
        self._require()
        confined(self.notices_dir, self.root)
        self.notices_dir.mkdir(exist_ok=True)
        lock = os.open(self.notices_dir, os.O_RDONLY)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            index = 1 + max((n for n, _ in self._numbered_notices()), default=0)
            target = self.notices_dir / f"{index:04d}-{safe_filename(name)}"
            atomic_write_bytes(target, raw, overwrite=False)
        finally:
            os.close(lock)  # releases the lock
        log.info("archived notice %s", target)
        return target

    @staticmethod
    def skymap_filename(name: str) -> str:
        """The file name a sky map called ``name`` gets in the event directory."""
        cleaned = safe_filename(name, default="skymap.fits")
        if cleaned in _RESERVED_NAMES:
            raise InputError(f"sky map file name {name!r} clashes with the event's own {cleaned}")
        return cleaned

    def record_alert(
        self, info: dict[str, Any], skymap: bytes | None = None, skymap_name: str | None = None
    ) -> dict[str, Any]:
        """Write skymap_info.json (and the sky map, if given) for a new notice; returns it.

        A notice issued before the one already recorded changes nothing (the caller
        archives it all the same). Files whose bytes would not change are not
        rewritten. ``skymap_filename`` and ``skymap_sha256`` are added (None when
        no sky map came with the notice), ``retracted`` from the flags, and an
        earlier ``retraction_notice`` is kept.
        """
        self._require()
        if info.get("graceid") != self.eventid:
            raise InputError(
                f"notice for {info.get('graceid')!r} cannot update event {self.eventid}"
            )
        current = self.skymap_info if self.skymap_info_path.exists() else {}
        new_time, old_time = _notice_time(info), _notice_time(current)
        if new_time and old_time and new_time < old_time:
            log.warning("%s: notice is older than the recorded one; only archived", self.eventid)
            return current
        record = {**info, "skymap_filename": None, "skymap_sha256": None}
        if "retraction_notice" in current:
            record["retraction_notice"] = current["retraction_notice"]
        if skymap is not None:
            name = self.skymap_filename(skymap_name or "skymap.fits")
            if write_if_changed(self.directory / name, skymap):
                log.info("wrote sky map %s", self.directory / name)
            else:
                log.info("sky map %s unchanged; not rewritten", self.directory / name)
            record["skymap_filename"] = name
            record["skymap_sha256"] = hashlib.sha256(skymap).hexdigest()
        record["retracted"] = self.flags["retracted"]
        write_if_changed(self.skymap_info_path, json_text(record).encode())
        return record

    def check_retraction(self, notice_info: dict[str, Any]) -> None:
        """Refuse a retraction whose event time is far (> RETRACTION_TOLERANCE s) from the
        recorded one: it retracts some other candidate (seen in a hand-edited notice)."""
        self._require()
        if not self.skymap_info_path.exists():
            return
        recorded = self.skymap_info.get("event_time_gps")
        claimed = notice_info.get("event_time_gps")
        if recorded is not None and claimed is not None:
            if abs(claimed - recorded) > RETRACTION_TOLERANCE:
                raise InputError(
                    f"retraction for {self.eventid} gives event time "
                    f"{notice_info.get('event_time_iso')}, {claimed - recorded:+.0f} s from the "
                    f"recorded {self.skymap_info.get('event_time_iso')}; not applied"
                )

    def mark_retracted(self, notice_info: dict[str, Any]) -> dict[str, Any]:
        """Record a retraction: flags retracted/vetoed, upload off, skymap_info 'retracted'.

        ``notice_info`` describes the retraction notice; its ivorn, alert_type,
        notice_time_iso and notice_filename go under skymap_info['retraction_notice'].
        """
        self.check_retraction(notice_info)
        self.set_flags(retracted=True, vetoed=True, upload=False)
        record = self.skymap_info if self.skymap_info_path.exists() else {"graceid": self.eventid}
        record["retracted"] = True
        record["retraction_notice"] = {
            key: notice_info.get(key)
            for key in ("ivorn", "alert_type", "notice_time_iso", "notice_filename")
        }
        write_if_changed(self.skymap_info_path, json_text(record).encode())
        log.info("%s marked retracted", self.eventid)
        return record

    @property
    def latency_path(self) -> Path:
        return self.directory / LATENCY_FILE

    @property
    def latency(self) -> dict[str, Any]:
        """latency.json: {"notices": {name: {...}}, "products": {file: {...}}} (UTC ISO times)."""
        stored = _read_json(self.latency_path) if self.latency_path.exists() else {}
        return {"notices": {}, "products": {}, **stored}

    def _record_latency(self, section: str, key: str, entry: dict[str, Any]) -> None:
        """Set latency.json[section][key] = entry, serialised against concurrent writers."""
        self._require()
        lock = os.open(self.directory, os.O_RDONLY)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            record = self.latency
            record[section] = {**record[section], key: entry}
            write_if_changed(self.latency_path, json_text(record).encode())
        finally:
            os.close(lock)

    def record_notice_latency(self, notice: str, **times: Any) -> None:
        """Record when the archived notice ``notice`` was received, ingested, ... (UTC ISO)."""
        self._record_latency("notices", notice, times)

    def record_product_latency(self, filename: str, **times: Any) -> None:
        """Record when the product ``filename`` was written (UTC ISO) and what triggered it."""
        self._record_latency("products", filename, times)
