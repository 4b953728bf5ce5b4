"""Alert intake: notice bytes -> archived notice -> event directory + skymap_info.json + flags.

The one way an LVK alert enters the event store, used by ``llama skymap-info``,
``llama demo`` and the listeners:

1. :func:`read_notice` (or :func:`read_voevent_notice`, :func:`read_gwalert_notice`,
   :func:`fetch_gracedb_notice`, then :func:`attach_skymap`) reads and checks the
   alert and any sky map; nothing is written;
2. :func:`ingest` creates or updates ``<run_dir>/<graceid>/``: the raw notice is
   archived first, then the sky map written (only if its bytes changed) and
   skymap_info.json updated. A Retraction only marks an existing event retracted;
   it never creates one.

:func:`ingest_file` does both for one file. The library never reads stdin: the
role of a new event is given, or asked through the ``ask_role`` callback.

Listeners call :func:`receive`: every notice, whatever it is, is first kept in the
GCN archive ``<output dir>/gcn/YYYY-MM/DD/<name>`` (:func:`archive_gcn`; named from its
IVORN or alert id, a duplicate is not written twice), then an LVK alert goes through
:func:`ingest` (a new event is created online, with the notice's own role) and the
receipt time is recorded in the event's latency record; any other notice is only archived.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llama import paths
from llama.errors import ConfigurationError, InputError
from llama.event import Event
from llama.ids import ROLES, safe_filename
from llama.io.gracedb import fetch_latest_voevent
from llama.io.gwalert import AVRO_MAGIC, decode_gwalert, extract_skymap, gwalert_skymap_info
from llama.io.storage import atomic_write_bytes, sha256_file
from llama.io.voevent import parse_voevent, read_input_bytes

log = logging.getLogger(__name__)

#: Kinds of notice source :func:`read_notice` accepts.
NOTICE_KINDS = ("voevent", "gwalert", "gracedb")
_FITS_MAGICS = (b"SIMPLE", b"\x1f\x8b")  # FITS, gzip-compressed FITS
_SUFFIXES = {"voevent": ".xml", "gwalert": ".json"}

Source = bytes | str | os.PathLike


@dataclass
class Notice:
    """An alert read and checked, nothing written yet.

    ``info`` is its skymap_info (llama.io.voevent.SKYMAP_INFO_KEYS), ``raw`` the bytes
    to archive as ``notices/NNNN-<name>``, ``skymap`` the sky-map bytes (None when the
    notice brings none), written as ``skymap_name`` in the event directory.
    """

    info: dict[str, Any]
    raw: bytes
    name: str
    skymap: bytes | None = None
    skymap_name: str | None = None


def _load(source: Source, what: str) -> tuple[bytes, str, str | None]:
    """(bytes, label for messages, file name or None) of a bytes or path source."""
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), f"<{what}>", None
    return read_input_bytes(source), str(source), Path(source).name


def _default_name(info: dict[str, Any], raw: bytes, kind: str) -> str:
    """Archive name of a notice given as bytes: ``<graceid>-<alert_type><suffix>``."""
    suffix = ".avro" if kind == "gwalert" and raw.startswith(AVRO_MAGIC) else _SUFFIXES[kind]
    return f"{info['graceid']}-{info['alert_type']}{suffix}"


def _voevent_notice(raw: bytes, label: str, name: str | None) -> Notice:
    info = parse_voevent(raw, label)
    return Notice(info, raw, name or _default_name(info, raw, "voevent"))


def _checked_skymap(data: bytes | None, label: str) -> bytes | None:
    """``data`` after reading it completely as a sky map (llama.io.skymap); InputError if it
    is not a valid one. Runs before anything is written, so a bad map changes nothing."""
    if data is not None:
        from llama.io.skymap import skymap_from_bytes  # numpy + astropy.io.fits: only when needed

        skymap_from_bytes(data, label)
    return data


def _gwalert_notice(raw: bytes, label: str, name: str | None) -> Notice:
    alert = decode_gwalert(raw, label)
    info = gwalert_skymap_info(alert, label)
    skymap = _checked_skymap(extract_skymap(alert, label), f"{label} (embedded sky map)")
    skymap_name = f"{info['graceid']}.multiorder.fits" if skymap is not None else None
    return Notice(info, raw, name or _default_name(info, raw, "gwalert"), skymap, skymap_name)


def read_voevent_notice(source: Source, name: str | None = None) -> Notice:
    """Read and check an LVK VOEvent (XML) given as bytes or a file path.

    ``name`` is the archive name; default: the file's name, or
    ``<graceid>-<alert_type>.xml`` for bytes.
    """
    raw, label, file_name = _load(source, "voevent")
    return _voevent_notice(raw, label, name or file_name)


def read_gwalert_notice(source: Source, name: str | None = None) -> Notice:
    """Read and check a GCN Kafka igwn.gwalert alert (JSON or Avro), bytes or a file path.

    The embedded multi-order sky map, if any, becomes ``<graceid>.multiorder.fits``.
    ``name`` is the archive name; default: the file's name, or
    ``<graceid>-<alert_type>.json`` (``.avro``) for bytes.
    """
    raw, label, file_name = _load(source, "gwalert")
    return _gwalert_notice(raw, label, name or file_name)


def fetch_gracedb_notice(
    graceid: str,
    url: str | None = None,
    auth: bool = False,
    want_skymap: bool = True,
    name: str | None = None,
) -> Notice:
    """The latest VOEvent of ``graceid`` from GraceDB (and its sky map if ``want_skymap``).

    ``url`` defaults to ``$LLAMA_GRACEDB_URL``, else llama.io.gracedb.DEFAULT_GRACEDB_URL.
    """
    fetched = fetch_latest_voevent(graceid, url, auth, want_skymap)
    return Notice(
        fetched.info, fetched.raw, name or fetched.name, fetched.skymap, fetched.skymap_name
    )


def attach_skymap(notice: Notice, skymap: str | os.PathLike) -> Notice:
    """``notice`` with the sky map read from file ``skymap`` (FITS or gzipped FITS).

    The notice's ``skymap_source`` becomes ``'file'``. A Retraction takes no sky map.
    """
    if notice.info["retraction"]:
        raise InputError(f"sky map {skymap}: a Retraction notice takes no sky map")
    data = read_input_bytes(skymap)
    if not data.startswith(_FITS_MAGICS):
        raise InputError(f"{skymap}: not a FITS file (nor gzip-compressed FITS)")
    _checked_skymap(data, str(skymap))
    info = {**notice.info, "skymap_source": "file"}
    return replace(notice, info=info, skymap=data, skymap_name=Path(skymap).name)


def detect_kind(data: bytes, source: str = "<notice>") -> str:
    """'voevent' for XML, 'gwalert' for JSON or Avro; InputError otherwise."""
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return "voevent"
    if head.startswith((b"{", AVRO_MAGIC)):
        return "gwalert"
    raise InputError(
        f"{source}: neither a VOEvent (XML) nor an igwn.gwalert alert (JSON or Avro)"
        if data
        else f"{source}: empty file"
    )


def read_notice(
    kind: str,
    source: Source,
    name: str | None = None,
    skymap: str | os.PathLike | None = None,
    *,
    gracedb_url: str | None = None,
    gracedb_auth: bool = False,
) -> Notice:
    """Read and check one alert, and the sky map file ``skymap`` if given; writes nothing.

    ``kind`` is 'voevent' or 'gwalert' (``source``: bytes or a file path), or 'gracedb'
    (``source``: the superevent id; its latest VOEvent and, unless ``skymap`` is given,
    its sky map are fetched from ``gracedb_url``). ``name`` is the archive name of the notice.
    """
    if kind == "gracedb":
        if not isinstance(source, str):
            raise InputError(f"GraceDB source must be an event id, not {type(source).__name__}")
        notice = fetch_gracedb_notice(source, gracedb_url, gracedb_auth, skymap is None, name)
        _checked_skymap(notice.skymap, f"GraceDB {source} sky map {notice.skymap_name}")
    elif kind == "voevent":
        notice = read_voevent_notice(source, name)
    elif kind == "gwalert":
        notice = read_gwalert_notice(source, name)
    else:
        raise InputError(f"unknown notice kind {kind!r}: use one of {', '.join(NOTICE_KINDS)}")
    return notice if skymap is None else attach_skymap(notice, skymap)


def _choose_role(
    requested: str | None,
    notice_role: str,
    new_event: bool,
    ask_role: Callable[[], str] | None,
    eventid: str,
) -> str | None:
    """The role to record: ``requested``, else asked for a new event; a test notice stays a test."""
    if requested is None and not new_event:
        return None
    if requested is None:
        if ask_role is None:
            raise InputError(
                f"new event {eventid}: no role given (real event 'observation' or 'test')"
            )
        requested = ask_role()
        _check_role(requested)
    if requested == "observation" and notice_role == "test":
        log.warning("the notice itself is a test (role=test); recording the event as a test")
        return "test"
    return requested


def _check_role(role: str | None) -> None:
    if role is not None and role not in ROLES:
        raise InputError(f"invalid role {role!r}: must be 'test' or 'observation'")


def _store(
    notice: Notice,
    event: Event,
    role: str | None,
    ask_role: Callable[[], str] | None,
    online: bool = False,
) -> None:
    """Archive the notice, then record it (or the retraction) in the event directory."""
    info = dict(notice.info)
    if info["retraction"]:
        if not event.exists:
            raise InputError(
                f"Retraction for {event.eventid}, which has no event directory in {event.run_dir}: "
                "nothing to retract"
            )
        event.check_retraction(info)
        info["notice_filename"] = event.relpath(event.archive_notice(notice.raw, notice.name))
        event.mark_retracted(info)
    else:
        skymap_name = notice.skymap_name
        if notice.skymap is not None:
            skymap_name = event.skymap_filename(skymap_name or "skymap.fits")
        new_event = not event.exists
        chosen = _choose_role(role, info["role"], new_event, ask_role, event.eventid)
        if new_event:
            event.create(role=chosen, manual=not online, online=online)
        elif chosen is not None:
            event.set_flags(role=chosen)
        info["notice_filename"] = event.relpath(event.archive_notice(notice.raw, notice.name))
        event.record_alert(info, notice.skymap, skymap_name)


def ingest(
    notice: Notice,
    run_dir: str | os.PathLike | None = None,
    role: str | None = None,
    ask_role: Callable[[], str] | None = None,
    online: bool = False,
) -> Event:
    """Create or update the event of ``notice`` in ``run_dir``; returns the Event.

    ``run_dir`` defaults to llama.paths.current_run_dir(). ``role`` ('test' or
    'observation') is recorded when given; a new event with no ``role`` gets the answer
    of ``ask_role()`` (InputError when there is none). A notice that is itself a test
    keeps the event a test. The raw notice is archived before skymap_info.json is
    written; a Retraction only marks an existing event. A new event is flagged
    ``online`` (heard by a listener) or else ``manual``. File-system failures become a
    one-line ConfigurationError.
    """
    _check_role(role)
    run_dir = Path(run_dir) if run_dir is not None else paths.current_run_dir()
    event = Event(notice.info["graceid"], run_dir)
    try:
        _store(notice, event, role, ask_role, online)
    except OSError as err:
        raise ConfigurationError(
            f"cannot write {err.filename or run_dir}: {err.strerror}"
        ) from None
    return event


def ingest_file(
    path: str | os.PathLike,
    kind: str | None = None,
    run_dir: str | os.PathLike | None = None,
    role: str | None = None,
    ask_role: Callable[[], str] | None = None,
    skymap: str | os.PathLike | None = None,
) -> Event:
    """Read the notice file ``path`` (and the sky map file ``skymap``) and ingest it.

    ``kind`` is 'voevent' or 'gwalert'; None detects it from the contents (XML ->
    voevent, JSON/Avro -> gwalert). See :func:`ingest` for the other arguments.
    """
    raw = read_input_bytes(path)
    kind = kind or detect_kind(raw, str(path))
    if kind == "voevent":
        notice = _voevent_notice(raw, str(path), Path(path).name)
    elif kind == "gwalert":
        notice = _gwalert_notice(raw, str(path), Path(path).name)
    else:
        raise InputError(f"unknown notice file kind {kind!r}: use 'voevent' or 'gwalert'")
    if skymap is not None:
        notice = attach_skymap(notice, skymap)
    return ingest(notice, run_dir, role, ask_role)


_IVORN = re.compile(rb"""\bivorn\s*=\s*["']([^"']{1,300})["']""")


def notice_name(raw: bytes) -> str:
    """Archive name of a raw notice: from its IVORN (VOEvent), from superevent id, alert type
    and creation time (igwn.gwalert), else its sha256; always a plain file name."""
    digest = hashlib.sha256(raw).hexdigest()[:16]
    head = raw[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        match = _IVORN.search(raw[:4096])
        ivorn = match.group(1).decode("ascii", "replace") if match else digest
        stem = ivorn.split("//", 1)[-1].replace("/", "_")
        return safe_filename(stem, digest) + ".xml"
    if head.startswith(b"{"):
        try:
            alert = json.loads(raw)
            parts = [alert.get(k) for k in ("superevent_id", "alert_type", "time_created")]
            if not all(isinstance(p, str) for p in parts):
                parts = [alert.get("mission"), alert.get("reference", {}).get("gcn.notices.LVK.alert"),
                         alert.get("alert_datetime")]
            stem = "-".join(str(p) for p in parts) if any(parts) else digest
        except (ValueError, AttributeError, RecursionError):
            stem = digest
        return safe_filename(stem, digest) + ".json"
    if head.startswith(AVRO_MAGIC):
        try:
            alert = decode_gwalert(raw, "<avro>")
            stem = "-".join(str(alert.get(k)) for k in ("superevent_id", "alert_type", "time_created"))
        except InputError:
            stem = digest
        return safe_filename(stem, digest) + ".avro"
    return f"{digest}.bin"


def archive_gcn(raw: bytes, name: str | None = None, when: datetime | None = None) -> tuple[Path, bool]:
    """Keep a raw notice in the GCN archive ``<output dir>/gcn/YYYY-MM/DD/<name>`` (UTC day of
    ``when``, default now), atomically; returns (path, written).

    ``name`` defaults to :func:`notice_name`. A duplicate (same name, same bytes) is not written
    again (``written`` False); a different notice under a taken name gets its sha256 appended.
    """
    directory = paths.gcn_dir(when, ensure=True)
    target = directory / safe_filename(name or notice_name(raw))
    digest = hashlib.sha256(raw).hexdigest()
    for candidate in (target, target.with_name(f"{target.stem}-{digest[:16]}{target.suffix}")):
        try:
            atomic_write_bytes(candidate, raw, overwrite=False)
            return candidate, True
        except FileExistsError:
            if sha256_file(candidate) == digest:
                return candidate, False
    raise ConfigurationError(f"cannot archive notice {target}: name and sha256 both taken")


@dataclass
class Receipt:
    """What :func:`receive` did with one notice: where it was archived, whether it was new
    there, and the event it created or updated (None for notices that are only archived)."""

    archived: Path
    new: bool
    event: Event | None


def classify(raw: bytes, label: str = "<notice>") -> str:
    """'lvk' for an LVK gravitational-wave alert (a VOEvent from ivo://gwnet/LVC, an
    igwn.gwalert JSON or Avro alert), 'other' for any other well-formed notice (XML or JSON);
    InputError for bytes that are neither."""
    kind = detect_kind(raw, label)
    if raw.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(AVRO_MAGIC):
        return "lvk"
    if kind == "voevent":
        match = _IVORN.search(raw[:4096])
        if match and match.group(1).startswith(b"ivo://gwnet/LVC"):
            return "lvk"
        from defusedxml import ElementTree as SafeET

        try:
            SafeET.fromstring(raw)
        except Exception as err:  # ParseError or a defusedxml refusal: not a notice
            raise InputError(f"{label}: not well-formed XML ({err})") from None
        return "other"
    try:
        alert = json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise InputError(f"{label}: not valid JSON ({err})") from None
    return "lvk" if isinstance(alert, dict) and {"superevent_id", "alert_type"} <= set(alert) else "other"


def _already_ingested(event: Event, name: str) -> bool:
    """True when ``event`` has archived the notice ``name`` (as ``notices/NNNN-<name>``)."""
    return event.exists and any(p.name.split("-", 1)[1] == name for p in event.notices())


def receive(
    raw: bytes,
    transport: str,
    run_dir: str | os.PathLike | None = None,
    received: datetime | None = None,
) -> Receipt:
    """A notice heard by a listener: archived first (:func:`archive_gcn`), then, for an LVK
    alert heard for the first time, ingested (:func:`ingest`; a new event is flagged online
    and gets the notice's own role) and its receipt time (``received``, default now, UTC)
    recorded in the event's latency record. A duplicate is only archived (idempotent) unless
    its event never got it (an earlier intake failed), and any other notice is only archived
    (:func:`classify`). Raises InputError for a malformed notice, after archiving it.
    """
    received = received or datetime.now(UTC)
    archived, new = archive_gcn(raw, when=received)
    if classify(raw, str(archived)) != "lvk":
        return Receipt(archived, new, None)
    kind = detect_kind(raw, str(archived))
    reader = _voevent_notice if kind == "voevent" else _gwalert_notice
    notice = reader(raw, str(archived), archived.name)
    run_dir = Path(run_dir) if run_dir is not None else paths.current_run_dir()
    if not new and _already_ingested(Event(notice.info["graceid"], run_dir), archived.name):
        return Receipt(archived, new, None)
    event = ingest(notice, run_dir, ask_role=lambda: notice.info["role"], online=True)
    event.record_notice_latency(
        archived.name, transport=transport, received_utc=received.isoformat(),
        ingested_utc=datetime.now(UTC).isoformat(),
    )
    return Receipt(archived, new, event)
