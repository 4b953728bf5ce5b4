"""Health of the online service and state of every product, read from files alone (no Luigi).

Shared by the status page (llama.serve) and ``llama status [--check]``. The files below are the
conventions every long-running llama process follows; the writers are the helpers of this
module, so that readers and writers agree by construction. Times are ISO 8601 UTC strings with
an offset (``2026-11-30T00:00:00.000+00:00``); every file is written atomically
(llama.io.storage).

Daemon heartbeat, ``<output dir>/logs/llamad-<key>.json`` (``llama run``; ``key`` names the
daemon, e.g. the run it watches)::

    {"pid", "host", "run_dir", "glob", "argv", "started_utc", "heartbeat_utc"}

Listener heartbeat, ``<output dir>/logs/listen-<transport>.json`` (``llama listen``)::

    {"pid", "host", "transport", "started_utc", "heartbeat_utc", "last_notice_utc"}

Both are rewritten with :func:`write_heartbeat` at least every HEARTBEAT_INTERVAL_S seconds
(every cycle of the daemon, every wait of a listener). A process is *alive* when its heartbeat
is younger than the limit (HEARTBEAT_MAX_AGE_S by default) and, on this host, its pid exists;
a process on another host is judged by its heartbeat alone.

Product failure record, ``<event dir>/.<product file>.failure.json`` (the daemon, when a task
building the product fails; :func:`record_failure`, and :func:`clear_failure` once built)::

    {"task", "error", "count", "first_utc", "last_utc", "next_try_utc"}

Notices: every raw notice received is archived in ``<output dir>/gcn/YYYY-MM/DD/`` and, per
event, as ``<event dir>/notices/NNNN-<name>`` (llama.ingest). A notice was received at its
archive file's mtime, unless the event's latency record ``<event dir>/latency.json`` (llama.event:
``{"notices": {<name>: {"received_utc", ...}}, "products": {<file>: {"written_utc", ...}}}``,
written by the listeners and the daemon) says otherwise.

Log files: ``<output dir>/logs/*.log``.

Product states (:func:`product_states`), from the provenance records (llama.provenance):

    complete   file and record present, the inputs still have their recorded checksums and
               every input product is complete
    obsolete   the record no longer matches its inputs (or the file has no record, or an
               input product is obsolete); the daemon will rebuild it
    building   a fresh temporary ``.<file>.*.tmp`` exists: a writer is committing it now
    failed     a failure record newer than the product
    partial    a partial result: the record says ``complete: false`` (a neutrino list fetched
               while incomplete, before the window closed or a later neutrino was seen) or
               ``neutrino_list_complete: false`` (a significance computed from one), or an
               input product is partial; the list is fetched again until it is complete
    missing    no file (only for products named by a record, a failure or a temporary)

Settings are not compared: the page may run with another environment than the daemon, and the
settings a product used are shown from its record.
"""

from __future__ import annotations

import glob
import json
import os
import re
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from llama import paths, provenance
from llama.errors import InputError
from llama.ids import safe_filename
from llama.io import storage

#: A live process rewrites its heartbeat at least this often (s): every daemon cycle (a cycle
#: that builds for longer rewrites it between events), every listener wait.
HEARTBEAT_INTERVAL_S = 60.0
#: A heartbeat older than this (s) means the process is not working.
HEARTBEAT_MAX_AGE_S = 600.0
#: Suffix of a product failure record: ``.<file>.failure.json``.
FAILURE_SUFFIX = ".failure.json"
#: The event's latency record (llama.event): notices received, products written.
LATENCY_FILE = "latency.json"
#: Lines of each log file shown.
LOG_LINES = 50
#: Nagios exit codes.
OK, WARNING, CRITICAL = 0, 1, 2
SEVERITY_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL"}

_SKYMAP_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fits.fz")
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{12}\.tmp")
_NOT_PRODUCTS = {"flags.json", "skymap_info.json"}


def now_utc() -> str:
    """The current time as an ISO 8601 UTC string, milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def parse_utc(value: Any) -> datetime | None:
    """An ISO 8601 time as an aware datetime (naive means UTC), or None when it is not one."""
    try:
        when = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def mtime_utc(path: Path) -> str:
    """A file's modification time as an ISO 8601 UTC string."""
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="milliseconds")


# ------------------------------------------------------------------------------- writers


def daemon_heartbeat_path(key: str, output_dir: Path | None = None) -> Path:
    """``<output dir>/logs/llamad-<key>.json`` (``key`` made a safe file-name part)."""
    return _logs(output_dir) / f"llamad-{safe_filename(key, 'default')}.json"


def listener_heartbeat_path(transport: str, output_dir: Path | None = None) -> Path:
    """``<output dir>/logs/listen-<transport>.json``."""
    return _logs(output_dir) / f"listen-{safe_filename(transport, 'default')}.json"


def write_heartbeat(path: Path, *, started_utc: str, **fields: Any) -> dict[str, Any]:
    """Rewrite the heartbeat ``path`` atomically: pid, host, ``started_utc``, heartbeat_utc=now
    and ``fields`` (daemon: run_dir, glob, argv; listener: transport, last_notice_utc).
    Creates the logs directory; returns what was written."""
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_utc": started_utc,
        **fields,
        "heartbeat_utc": now_utc(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    storage.atomic_write_json(path, record)
    return record


def failure_path(product: Path) -> Path:
    """The failure record ``.<file>.failure.json`` beside ``product``."""
    return product.with_name(f".{product.name}{FAILURE_SUFFIX}")


def record_failure(
    product: Path, task: str, error: str, retry_after_s: float = 600.0
) -> dict[str, Any]:
    """Record that ``task`` failed to build ``product`` with ``error`` (one line); counts
    repeated failures and sets next_try_utc ``retry_after_s`` seconds from now."""
    previous = read_json(failure_path(product)) or {}
    now = datetime.now(UTC)
    record = {
        "task": task,
        "error": " ".join(str(error).split())[:2000],
        "count": int(previous.get("count", 0)) + 1,
        "first_utc": previous.get("first_utc") or now.isoformat(timespec="milliseconds"),
        "last_utc": now.isoformat(timespec="milliseconds"),
        "next_try_utc": (now + timedelta(seconds=retry_after_s)).isoformat(timespec="milliseconds"),
    }
    storage.atomic_write_json(failure_path(product), record)
    return record


def clear_failure(product: Path) -> bool:
    """Remove the failure record of ``product``; True when there was one."""
    try:
        failure_path(product).unlink()
    except FileNotFoundError:
        return False
    return True


# ----------------------------------------------------------------------------- heartbeats


@dataclass
class Heartbeat:
    """One daemon or listener, as its heartbeat file says, and whether it is alive."""

    kind: str  # "daemon" or "listener"
    name: str  # the key or transport
    path: str
    alive: bool
    problem: str | None  # why it is not alive
    age_s: float | None  # seconds since heartbeat_utc
    record: dict[str, Any]


def heartbeat_limit(value: float | None) -> float:
    """A heartbeat age limit (s) given by a user: HEARTBEAT_MAX_AGE_S for None; InputError
    unless positive."""
    limit = HEARTBEAT_MAX_AGE_S if value is None else float(value)
    if not limit > 0:
        raise InputError(f"heartbeat age limit must be positive, not {value}")
    return limit


def heartbeats(output_dir: Path | None = None, max_age_s: float = HEARTBEAT_MAX_AGE_S) -> list[Heartbeat]:
    """Every daemon and listener heartbeat in ``<output dir>/logs``, judged now."""
    logs = _logs(output_dir)
    found = []
    for prefix, kind in (("llamad-", "daemon"), ("listen-", "listener")):
        for path in sorted(logs.glob(f"{prefix}*.json")):
            found.append(_judge(kind, path.stem.removeprefix(prefix), path, max_age_s))
    return found


def _judge(kind: str, name: str, path: Path, max_age_s: float) -> Heartbeat:
    record = read_json(path)
    if record is None:
        return Heartbeat(kind, name, str(path), False, "heartbeat unreadable", None, {})
    beat = parse_utc(record.get("heartbeat_utc"))
    age = (datetime.now(UTC) - beat).total_seconds() if beat else None
    problem = None
    if age is None:
        problem = "heartbeat has no heartbeat_utc"
    elif record.get("host") == socket.gethostname() and not _pid_exists(record.get("pid")):
        problem = f"not running (pid {record.get('pid')} is gone)"
    elif age > max_age_s:
        problem = f"heartbeat {age:.0f} s old (limit {max_age_s:.0f} s)"
    return Heartbeat(kind, name, str(path), problem is None, problem, age, record)


def _pid_exists(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


# ------------------------------------------------------------------------- product states


@dataclass
class ProductState:
    """The state of one product file of an event (see the module docstring)."""

    name: str
    state: str
    reason: str
    size_bytes: int | None = None
    modified_utc: str | None = None
    record: dict[str, Any] | None = None
    failure: dict[str, Any] | None = None
    inputs: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class Sha256Cache:
    """sha256 of files, remembered per (device, inode, size, mtime): an unchanged file (or a
    hard link to it) is hashed once. Thread-safe enough (dict operations under the GIL)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._known: dict[tuple[int, int, int, int], str] = {}

    def __call__(self, path: Path) -> str:
        st = path.stat()
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        digest = self._known.get(key)
        if digest is None:
            digest = storage.sha256_file(path)
            if len(self._known) >= self.max_entries:
                self._known.clear()
            self._known[key] = digest
        return digest


#: The cache shared by every caller in this process.
SHA256 = Sha256Cache()


def product_states(event_dir: Path, sha256: Sha256Cache = SHA256) -> list[ProductState]:
    """The state of every product of ``event_dir``, by name: the files with a provenance
    record, a failure record or a temporary file beside them."""
    names = _product_names(event_dir)
    info = read_json(event_dir / "skymap_info.json") or {}
    own = {name: _own_state(event_dir, name, info, sha256) for name in names}
    return [_with_upstream(own[name], own) for name in sorted(own)]


def _product_names(event_dir: Path) -> set[str]:
    names = set()
    try:
        entries = os.listdir(event_dir)
    except OSError:
        return names
    for entry in entries:
        if entry.startswith(".") and entry.endswith(provenance.RECORD_SUFFIX):
            names.add(entry[1 : -len(provenance.RECORD_SUFFIX)])
        elif entry.startswith(".") and entry.endswith(FAILURE_SUFFIX):
            names.add(entry[1 : -len(FAILURE_SUFFIX)])
        elif match := _TEMPORARY.fullmatch(entry):
            name = match.group("name")
            if not name.endswith(provenance.RECORD_SUFFIX) and name not in _NOT_PRODUCTS:
                names.add(name)
    return {name for name in names if name and "/" not in name}


def _own_state(event_dir: Path, name: str, info: dict[str, Any], sha256: Sha256Cache) -> ProductState:
    """The state of one product judged by itself (its record, failure and temporaries)."""
    path = event_dir / name
    record = provenance.read_record(path)
    failure = read_json(failure_path(path))
    try:
        st = path.stat()
        size, modified = st.st_size, datetime.fromtimestamp(st.st_mtime, UTC)
    except OSError:
        size = modified = None
    result = ProductState(
        name,
        "missing",
        "no file",
        size,
        modified.isoformat(timespec="milliseconds") if modified else None,
        record,
        failure,
    )
    inputs = _inputs(event_dir, record, info, sha256)
    result.inputs = [{"name": n, **entry} for n, entry in inputs.items()]
    failed_at = parse_utc((failure or {}).get("last_utc"))
    if _fresh_temporary(path):
        result.state, result.reason = "building", "a writer is committing it now"
    elif failed_at and (modified is None or failed_at > modified):
        result.state = "failed"
        result.reason = f"{failure.get('task')} failed {failure.get('count')}x: {failure.get('error')}"
    elif size is not None:
        result.state, result.reason = _checked(event_dir, path, record, inputs, info)
    return result


def _inputs(
    event_dir: Path, record: dict[str, Any] | None, info: dict[str, Any], sha256: Sha256Cache
) -> dict[str, dict[str, Any]]:
    """Recorded input name -> {"sha256" recorded, "current" sha256 or None, "used"?}."""
    inputs = (record or {}).get("inputs")
    if not isinstance(inputs, dict):
        return {}
    result = {}
    for name, entry in inputs.items():
        entry = entry if isinstance(entry, dict) else {}
        path = Path(name) if os.path.isabs(name) else event_dir / name
        try:
            current = sha256(path)
        except OSError:
            current = None
        row = {"sha256": entry.get("sha256"), "current_sha256": current}
        if "used" in entry:
            source = info if name == "skymap_info.json" else (read_json(path) or {})
            used = entry["used"] if isinstance(entry["used"], dict) else {}
            row["used"] = used
            row["current_used"] = {key: source.get(key) for key in used}
        result[name] = row
    return result


def _checked(
    event_dir: Path,
    path: Path,
    record: dict[str, Any] | None,
    inputs: dict[str, dict[str, Any]],
    info: dict[str, Any],
) -> tuple[str, str]:
    """complete / obsolete / partial for a product file that exists, and why."""
    if record is None:
        return "obsolete", "no provenance record"
    gone = [name for name, row in inputs.items() if row["current_sha256"] is None]
    if gone:
        return "obsolete", f"input {gone[0]} is missing"
    current = {
        name: ({"sha256": row["current_sha256"], "used": row["current_used"]} if "used" in row
               else {"sha256": row["current_sha256"]})
        for name, row in inputs.items()
    }
    up_to_date, reason = provenance.check(path, current, record.get("settings", {}), record)
    if not up_to_date:
        return "obsolete", reason
    skymap = info.get("skymap_filename")
    for name in inputs:
        if skymap and name != skymap and not os.path.isabs(name) and name.endswith(_SKYMAP_SUFFIXES):
            return "obsolete", f"sky map {name} replaced by {skymap}"
    if record.get("complete") is False:
        return "partial", (f"partial result: neutrino list incomplete when fetched "
                           f"({record.get('fetched_utc')} UTC); fetched again until complete")
    if record.get("neutrino_list_complete") is False:
        return "partial", "partial result: computed from an incomplete neutrino list"
    return "complete", "up to date"


def _with_upstream(state: ProductState, own: Mapping[str, ProductState]) -> ProductState:
    """A complete or partial product with an input product that is neither is obsolete; a
    complete one with a partial input product is partial."""
    if state.state not in ("complete", "partial"):
        return state
    for row in state.inputs:
        upstream = own.get(row["name"])
        if upstream is None or upstream.state == "complete":
            continue
        if upstream.state != "partial":
            state.state, state.reason = "obsolete", f"input {upstream.name} is {upstream.state}"
            break
        if state.state == "complete":
            state.state, state.reason = "partial", f"input {upstream.name} is partial"
    return state


def partial_result(states: Iterable[ProductState]) -> bool:
    """True when some product of the event is a partial result (an incomplete neutrino list
    or what was built from it)."""
    return any(state.state == "partial" for state in states)


def _fresh_temporary(path: Path) -> bool:
    """True when a temporary ``.<file>.*.tmp`` younger than the stale age exists."""
    limit = time.time() - storage.STALE_TEMPORARY_AGE_S
    for candidate in path.parent.glob(f".{glob.escape(path.name[:80])}.*.tmp"):
        try:
            if candidate.stat().st_mtime > limit:
                return True
        except OSError:
            continue
    return False


# ---------------------------------------------------------------------------- notices, logs


def latency_record(event_dir: Path) -> dict[str, dict[str, Any]]:
    """The event's latency record: {"notices": {name: {...}}, "products": {file: {...}}}."""
    record = read_json(event_dir / LATENCY_FILE) or {}
    return {section: record.get(section) if isinstance(record.get(section), dict) else {}
            for section in ("notices", "products")}


def received_utc(notice: Path, latency: Mapping[str, Any] | None = None) -> str | None:
    """When the archived notice ``notices/NNNN-<name>`` was received: the latency record's
    received_utc for ``<name>`` (or the whole file name), else the file's mtime."""
    notices = (latency or {}).get("notices", {})
    name = notice.name.split("-", 1)[-1]
    entry = notices.get(name) or notices.get(notice.name) or {}
    if isinstance(entry, dict) and parse_utc(entry.get("received_utc")):
        return entry["received_utc"]
    try:
        return mtime_utc(notice)
    except OSError:
        return None


def log_tails(output_dir: Path | None = None, lines: int = LOG_LINES) -> dict[str, list[str]]:
    """The last ``lines`` lines of every ``<output dir>/logs/*.log``, by file name."""
    tails = {}
    for path in sorted(_logs(output_dir).glob("*.log")):
        try:
            with open(path, "rb") as handle:
                handle.seek(max(0, path.stat().st_size - 200 * lines))
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            continue
        tails[path.name] = text.splitlines()[-lines:]
    return tails


# --------------------------------------------------------------------------------- checks


@dataclass
class Problem:
    """One finding of :func:`check`: severity (WARNING or CRITICAL) and one line."""

    severity: int
    message: str

    def line(self) -> str:
        return f"{SEVERITY_NAMES[self.severity]}: {self.message}"


def check(
    output_dir: Path | None = None,
    run_dirs: Iterable[Path] | None = None,
    max_age_s: float = HEARTBEAT_MAX_AGE_S,
) -> list[Problem]:
    """Everything wrong with the online service, worst first:

    CRITICAL  no output directory; no daemon heartbeat; a daemon or listener not alive
    WARNING   no listener heartbeat; a failed product in ``run_dirs`` (default: the
              current run)
    """
    output_dir = paths.output_dir() if output_dir is None else Path(output_dir)
    if not output_dir.is_dir():
        return [Problem(CRITICAL, f"output directory {output_dir} does not exist")]
    problems = []
    beats = heartbeats(output_dir, max_age_s)
    for kind, severity in (("daemon", CRITICAL), ("listener", WARNING)):
        if not any(beat.kind == kind for beat in beats):
            problems.append(Problem(severity, f"no {kind} heartbeat in {_logs(output_dir)}"))
    for beat in beats:
        if not beat.alive:
            problems.append(Problem(CRITICAL, f"{beat.kind} {beat.name}: {beat.problem}"))
    runs = [output_dir / "current_run"] if run_dirs is None else list(run_dirs)
    for run_dir in runs:
        for event_dir, product in _failure_records(Path(run_dir)):
            state = _own_state(event_dir, product, {}, SHA256)
            if state.state == "failed":
                problems.append(failure_problem(event_dir.name, product, state.reason))
    return sorted(problems, key=lambda problem: -problem.severity)


def failure_problem(eventid: str, product: str, reason: str) -> Problem:
    """The WARNING of :func:`check` for a failed product."""
    return Problem(WARNING, f"{eventid}/{product} {reason}")


def _failure_records(run_dir: Path) -> list[tuple[Path, str]]:
    """(event dir, product name) of every failure record in the run, sorted."""
    found = []
    try:
        entries = list(os.scandir(run_dir))
    except OSError:
        return found
    for entry in entries:
        try:
            names = os.listdir(entry.path) if entry.is_dir() else []
        except OSError:
            continue
        found += [(Path(entry.path), name[1 : -len(FAILURE_SUFFIX)]) for name in names
                  if name.startswith(".") and name.endswith(FAILURE_SUFFIX)]
    return sorted(found)


def severity(problems: Iterable[Problem]) -> int:
    """The Nagios exit code of a list of problems: the worst severity, OK when none."""
    return max((problem.severity for problem in problems), default=OK)


# -------------------------------------------------------------------------------- helpers


def _logs(output_dir: Path | None) -> Path:
    return paths.logs_dir() if output_dir is None else Path(output_dir) / "logs"


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None when absent, unreadable or not an object."""
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
