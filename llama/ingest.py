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
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from llama import paths
from llama.errors import ConfigurationError, InputError
from llama.event import Event
from llama.ids import ROLES
from llama.io.gracedb import fetch_latest_voevent
from llama.io.gwalert import AVRO_MAGIC, decode_gwalert, extract_skymap, gwalert_skymap_info
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


def _gwalert_notice(raw: bytes, label: str, name: str | None) -> Notice:
    alert = decode_gwalert(raw, label)
    info = gwalert_skymap_info(alert, label)
    skymap = extract_skymap(alert, label)
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
    notice: Notice, event: Event, role: str | None, ask_role: Callable[[], str] | None
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
            event.create(role=chosen, manual=True)
        elif chosen is not None:
            event.set_flags(role=chosen)
        info["notice_filename"] = event.relpath(event.archive_notice(notice.raw, notice.name))
        event.record_alert(info, notice.skymap, skymap_name)


def ingest(
    notice: Notice,
    run_dir: str | os.PathLike | None = None,
    role: str | None = None,
    ask_role: Callable[[], str] | None = None,
) -> Event:
    """Create or update the event of ``notice`` in ``run_dir``; returns the Event.

    ``run_dir`` defaults to llama.paths.current_run_dir(). ``role`` ('test' or
    'observation') is recorded when given; a new event with no ``role`` gets the answer
    of ``ask_role()`` (InputError when there is none). A notice that is itself a test
    keeps the event a test. The raw notice is archived before skymap_info.json is
    written; a Retraction only marks an existing event. File-system failures become a
    one-line ConfigurationError.
    """
    _check_role(role)
    run_dir = Path(run_dir) if run_dir is not None else paths.current_run_dir()
    event = Event(notice.info["graceid"], run_dir)
    try:
        _store(notice, event, role, ask_role)
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
