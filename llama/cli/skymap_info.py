"""``llama skymap-info``: create or update an event directory from an LVK alert.

The alert comes from a VOEvent file, a GCN Kafka igwn.gwalert file, or GraceDB
(the superevent's latest VOEvent and its sky map). Everything is read and
checked before anything is written; then the raw notice is archived, the sky
map written (only if its bytes changed) and skymap_info.json updated. A
Retraction only marks an existing event retracted; it never creates one.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llama import __version__
from llama.cli.common import add_verbosity, run_guarded, setup_logging

if TYPE_CHECKING:
    from llama.event import Event

PROG = "llama skymap-info"
DEFAULT_GRACEDB_URL = "https://gracedb.ligo.org/api/"
ROLE_PROMPT = "Is this a real event or a test? [real/test] "
_ANSWERS = {"real": "observation", "observation": "observation", "test": "test"}
_FITS_MAGICS = (b"SIMPLE", b"\x1f\x8b")  # FITS, gzip-compressed FITS

log = logging.getLogger(__name__)


def parser() -> argparse.ArgumentParser:
    """Command-line parser (no heavy imports)."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Create or update the event directory <run>/<graceid>/ from an LVK alert: "
        "archive the raw notice, write skymap_info.json and the sky map. Prints the directory.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--voevent", metavar="FILE", help="LVK GCN VOEvent (XML)")
    source.add_argument(
        "--gwalert",
        metavar="FILE",
        help="GCN Kafka igwn.gwalert alert (JSON, or Avro via fastavro)",
    )
    source.add_argument(
        "--graceid",
        metavar="ID",
        help="fetch the superevent's latest VOEvent and sky map from GraceDB",
    )
    p.add_argument(
        "--skymap", metavar="FILE", help="sky map to use (copied into the event directory)"
    )
    p.add_argument(
        "--role",
        choices=("test", "observation"),
        help="real event (observation) or test; asked on the terminal for a new event if omitted",
    )
    p.add_argument("--run", metavar="DIR", help="run directory (default: <output dir>/current_run)")
    p.add_argument(
        "--gracedb-url",
        metavar="URL",
        help=f"GraceDB API root (default: $LLAMA_GRACEDB_URL or {DEFAULT_GRACEDB_URL})",
    )
    p.add_argument(
        "--gracedb-auth",
        action="store_true",
        help="use the X.509/SciToken credentials ligo-gracedb finds (default: anonymous)",
    )
    p.add_argument("--version", action="version", version=f"llama {__version__}")
    add_verbosity(p)
    return p


@dataclass
class Notice:
    """An alert read and checked, nothing written yet."""

    info: dict[str, Any]
    raw: bytes
    name: str
    skymap: bytes | None = None
    skymap_name: str | None = None


def _fetch_gracedb(graceid: str, url: str, auth: bool, want_skymap: bool) -> Notice:
    """The latest VOEvent of a superevent (and its sky map) from GraceDB."""
    from llama.errors import ConfigurationError, InputError

    try:
        import requests
        from ligo.gracedb.exceptions import HTTPError
        from ligo.gracedb.rest import GraceDb
    except ImportError:
        raise ConfigurationError(
            "--graceid needs the GraceDB client: pip install 'llama[gracedb]'"
        ) from None

    from llama.event import validate_event_id
    from llama.io.voevent import parse_voevent

    validate_event_id(graceid)
    try:
        client = GraceDb(service_url=url, force_noauth=not auth)
        voevents = client.voevents(graceid).json()["voevents"]
        if not voevents:
            raise InputError(f"GraceDB {url}: {graceid} has no VOEvent yet")
        latest = max(voevents, key=lambda v: v["N"])
        notice = Notice({}, client.files(graceid, latest["filename"]).content, latest["filename"])
        notice.info = parse_voevent(notice.raw, f"GraceDB {graceid}/{latest['filename']}")
        if want_skymap and notice.info["skymap_url"] and not notice.info["retraction"]:
            filename = notice.info["skymap_url"].rsplit("/", 1)[-1]
            notice.skymap = client.files(graceid, filename).content
            notice.skymap_name = filename.split(",")[0]
    except (requests.ConnectionError, requests.Timeout):
        raise ConfigurationError(
            f"cannot reach GraceDB at {url}: network unreachable or server not answering"
        ) from None
    except HTTPError as err:
        raise InputError(f"GraceDB {url}: {graceid}: HTTP {err.status_code} {err.reason}") from None
    except requests.RequestException as err:
        raise ConfigurationError(
            f"GraceDB request to {url} failed ({type(err).__name__})"
        ) from None
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"GraceDB {url}: unexpected answer for {graceid} ({err!r})") from None
    return notice


def _read_notice(args: argparse.Namespace) -> Notice:
    """Read and check the alert and sky map named on the command line."""
    from llama.errors import InputError
    from llama.io.gwalert import decode_gwalert, extract_skymap, gwalert_skymap_info
    from llama.io.voevent import parse_voevent, read_input_bytes

    if args.voevent:
        raw = read_input_bytes(args.voevent)
        notice = Notice(parse_voevent(raw, args.voevent), raw, Path(args.voevent).name)
    elif args.gwalert:
        raw = read_input_bytes(args.gwalert)
        alert = decode_gwalert(raw, args.gwalert)
        info = gwalert_skymap_info(alert, args.gwalert)
        skymap = extract_skymap(alert, args.gwalert)
        name = f"{info['graceid']}.multiorder.fits" if skymap is not None else None
        notice = Notice(info, raw, Path(args.gwalert).name, skymap, name)
    else:
        url = args.gracedb_url or os.environ.get("LLAMA_GRACEDB_URL") or DEFAULT_GRACEDB_URL
        notice = _fetch_gracedb(args.graceid, url, args.gracedb_auth, not args.skymap)
    if args.skymap:
        if notice.info["retraction"]:
            raise InputError(f"--skymap {args.skymap}: a Retraction notice takes no sky map")
        notice.skymap = read_input_bytes(args.skymap)
        if not notice.skymap.startswith(_FITS_MAGICS):
            raise InputError(f"{args.skymap}: not a FITS file (nor gzip-compressed FITS)")
        notice.skymap_name = Path(args.skymap).name
        notice.info["skymap_source"] = "file"
    return notice


def _ask_role() -> str:
    """Ask on the terminal whether the event is real; refuse when there is no terminal."""
    from llama.errors import InputError

    if not sys.stdin.isatty():
        raise InputError(
            "no terminal to ask whether this is a real event or a test: "
            "pass --role observation or --role test"
        )
    while True:
        print(ROLE_PROMPT, end="", file=sys.stderr, flush=True)
        answer = sys.stdin.readline()
        if not answer:
            raise InputError("no answer on the terminal: pass --role observation or --role test")
        if answer.strip().lower() in _ANSWERS:
            return _ANSWERS[answer.strip().lower()]


def _choose_role(requested: str | None, notice_role: str, new_event: bool) -> str | None:
    """The role to record: --role, else asked for a new event; a test notice stays a test."""
    if requested is None and not new_event:
        return None
    role = requested or _ask_role()
    if role == "observation" and notice_role == "test":
        log.warning("the notice itself is a test (role=test); recording the event as a test")
        return "test"
    return role


def _run(args: argparse.Namespace) -> int:
    """Ingest one alert; print the event directory."""
    from llama import paths
    from llama.errors import ConfigurationError
    from llama.event import Event

    notice = _read_notice(args)
    run_dir = Path(args.run) if args.run else paths.current_run_dir()
    event = Event(notice.info["graceid"], run_dir)

    try:
        _store(notice, event, args.role)
    except OSError as err:
        raise ConfigurationError(
            f"cannot write {err.filename or run_dir}: {err.strerror}"
        ) from None
    print(event.directory)
    return 0


def _store(notice: Notice, event: Event, requested_role: str | None) -> None:
    """Archive the notice, then record it (or the retraction) in the event directory."""
    from llama.errors import InputError

    info = notice.info
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
        if notice.skymap is not None:
            notice.skymap_name = event.skymap_filename(notice.skymap_name or "skymap.fits")
        new_event = not event.exists
        role = _choose_role(requested_role, info["role"], new_event)
        if new_event:
            event.create(role=role, manual=True)
        elif role is not None:
            event.set_flags(role=role)
        info["notice_filename"] = event.relpath(event.archive_notice(notice.raw, notice.name))
        event.record_alert(info, notice.skymap, notice.skymap_name)


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``llama skymap-info ...``; returns the exit code."""
    args = parser().parse_args(argv)
    setup_logging(args.verbose)
    return run_guarded(PROG, lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
