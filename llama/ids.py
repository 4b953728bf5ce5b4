"""Event ids and file names: validation with no path tricks, ASCII only.

Imports nothing from llama but :mod:`llama.errors`, so every layer (io included)
can use it.
"""

from __future__ import annotations

import re

from llama.errors import InputError

#: Accepted event ids (the whole id must match one of these; ASCII only):
#: LVK superevents S/MS/TS/GS + YYMMDD + 1-3 lowercase letters (S190425z, MS181101ab);
#: GraceDB events G/M/T/E/H/D + digits (G298048, M252714);
#: simulated events ``SIM-`` + up to 60 of [A-Za-z0-9_-] (SIM-bns_0001).
EVENT_ID_PATTERNS: dict[str, re.Pattern[str]] = {
    "superevent": re.compile(r"(?:S|MS|TS|GS)[0-9]{6}[a-z]{1,3}", re.ASCII),
    "gracedb_event": re.compile(r"[GMTEHD][0-9]{1,10}", re.ASCII),
    "simulated": re.compile(r"SIM-[A-Za-z0-9_-]{1,60}", re.ASCII),
}
MAX_EVENT_ID_LENGTH = 64

#: Roles of an event (and of a notice): a test event never notifies anyone.
ROLES = ("test", "observation")


def _show(value: str) -> str:
    """A short, single-line rendering of a (possibly hostile) string."""
    return repr(value[:40]) + ("..." if len(value) > 40 else "")


def validate_event_id(eid: str) -> str:
    """Return ``eid`` if it is a valid event id (see EVENT_ID_PATTERNS), else raise InputError."""
    if not isinstance(eid, str):
        raise InputError(f"invalid event id {eid!r}: not a string")
    problem = None
    if not eid:
        problem = "empty"
    elif len(eid) > MAX_EVENT_ID_LENGTH:
        problem = f"longer than {MAX_EVENT_ID_LENGTH} characters ({len(eid)})"
    elif any(ord(c) < 32 or ord(c) == 127 for c in eid):
        problem = "contains NUL or control characters"
    elif "/" in eid or "\\" in eid:
        problem = "contains a path separator"
    elif ".." in eid:
        problem = "contains '..'"
    elif eid.startswith("."):
        problem = "starts with '.'"
    elif not eid.isascii():
        problem = "contains non-ASCII characters"
    elif not any(p.fullmatch(eid) for p in EVENT_ID_PATTERNS.values()):
        problem = (
            "not an LVK superevent (S190425z), GraceDB event (G298048) or simulated (SIM-name) id"
        )
    if problem:
        raise InputError(f"invalid event id {_show(eid)}: {problem}")
    return eid


def safe_filename(name: str, default: str = "notice") -> str:
    """A plain file name from ``name``: its last component, [A-Za-z0-9._+-] only, no leading '.'."""
    base = re.split(r"[/\\]", str(name))[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._+-]", "_", base).lstrip(".")[:120]
    return cleaned or default
