"""What the status page shows, as plain JSON-ready dicts (the JSON API returns them as they are;
the templates render the same dicts). Reads files only: no Luigi, no science.

A :class:`Site` is an output directory (llama.paths) with its runs: ``current`` (the live run,
or the ``--run`` directory) and every ``past_runs/<name>``. Index rows are cached per event
directory and reused while the directory's mtime is unchanged (every llama write is a rename
in that directory, which changes it) and no product is being written.
"""

from __future__ import annotations

import functools
import json
import os
import stat
from dataclasses import asdict
from pathlib import Path
from typing import Any

from llama import health
from llama.errors import InputError, LlamaError
from llama.event import Event
from llama.ids import validate_event_id
from llama.paths import past_run_dir, safe_join
from llama.science.searches import SEARCHES

#: Name of the live run in URLs.
CURRENT = "current"
#: Events per index page unless asked otherwise, and the most one page shows.
PAGE_SIZE, MAX_PAGE_SIZE = 100, 5000
#: File suffixes shown as plots on the event page.
PLOT_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg")
#: Bytes of a JSON product shown in its preview.
PREVIEW_BYTES = 20_000
#: Neutrino table columns, in order.
NEUTRINO_COLUMNS = ("mjd", "ra", "dec", "sigma", "energy", "zenith", "azimuth", "run", "event", "type")
#: Numbers shown from a significance output.
SIGNIFICANCE_KEYS = ("odds_ratio", "p_value", "p_h_s1", "p_h_s2", "p_h_0", "p_h_c", "n_background")
#: Fields of a notice shown on the event page.
NOTICE_FIELDS = ("alert_type", "notice_time_iso", "role", "ivorn", "skymap_source")


class NotFound(LookupError):
    """Nothing to show at this address (a 404)."""


class Site:
    """The runs and events under ``output_dir``; ``run_dir`` replaces the live run."""

    def __init__(
        self,
        output_dir: Path,
        run_dir: Path | None = None,
        max_age_s: float = health.HEARTBEAT_MAX_AGE_S,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.current = Path(run_dir) if run_dir is not None else self.output_dir / "current_run"
        self.max_age_s = max_age_s
        self.sha256 = health.Sha256Cache()
        self._rows: dict[str, tuple[tuple, dict[str, Any]]] = {}

    # ------------------------------------------------------------------------- addressing

    def runs(self) -> list[dict[str, Any]]:
        """Every run: name, directory and number of entries, the live run first."""
        past = self.output_dir / "past_runs"
        names = sorted(p.name for p in past.iterdir() if p.is_dir()) if past.is_dir() else []
        rows = [{"name": CURRENT, "directory": str(self.current)}]
        rows += [{"name": n, "directory": str(past / n)} for n in names if n != CURRENT]
        for row in rows:
            try:
                row["entries"] = len(os.listdir(row["directory"]))
            except OSError:
                row["entries"] = 0
        return rows

    def run_dir(self, run: str) -> Path:
        """The directory of run ``run``; NotFound for anything else (or a path trick)."""
        if run == CURRENT:
            return self.current
        try:  # past_run_dir only validates the name here
            directory = safe_join(self.output_dir / "past_runs", past_run_dir(run).name)
        except InputError:
            raise NotFound(f"no run {run!r}") from None
        if not directory.is_dir():
            raise NotFound(f"no run {run!r}")
        return directory

    def event_of(self, run: str, eventid: str) -> Event:
        """The existing event ``eventid`` of run ``run``; NotFound otherwise."""
        try:
            event = Event(eventid, self.run_dir(run))
        except LlamaError:  # invalid id, or a symlink out of the run
            raise NotFound(f"no event {eventid!r} in run {run!r}") from None
        if not event.exists:
            raise NotFound(f"no event {eventid!r} in run {run!r}")
        return event

    def file(self, run: str, eventid: str, relpath: str) -> Path:
        """A regular file inside the event directory; NotFound for anything else."""
        event = self.event_of(run, eventid)
        try:
            path = safe_join(event.directory, *relpath.split("/"))
        except InputError:
            raise NotFound(f"no file {relpath!r}") from None
        if not path.is_file():
            raise NotFound(f"no file {relpath!r}")
        return path

    # ---------------------------------------------------------------------------- pages

    def index(self, run: str = CURRENT, offset: int = 0, limit: int = PAGE_SIZE) -> dict[str, Any]:
        """The events of a run, newest first (by GW event time), ``limit`` from ``offset``."""
        run_dir = self.run_dir(run)
        rows = self._rows_of(run, run_dir)
        rows.sort(key=lambda row: (row["event_time_gps"] or float("-inf"), row["eventid"]),
                  reverse=True)
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        return {
            "run": run,
            "run_dir": str(run_dir),
            "runs": self.runs(),
            "total": len(rows),
            "offset": offset,
            "limit": limit,
            "events": rows[offset : offset + limit],
            "health": self.health(logs=False, rows=rows if run == CURRENT else None),
        }

    def event(self, run: str, eventid: str) -> dict[str, Any]:
        """Everything about one event: summary, skymap_info, products, plots, neutrinos,
        notices with their received times, latencies."""
        event = self.event_of(run, eventid)
        directory = event.directory
        states = health.product_states(directory, self.sha256)
        latency = health.latency_record(directory)
        notices = self._notices(event, latency)
        received = sorted(filter(None, (health.parse_utc(n["received_utc"]) for n in notices)))
        info = health.read_json(event.skymap_info_path) or {}
        event_time = health.parse_utc(info.get("event_time_iso"))
        products = []
        for state in states:
            row = state.as_json()
            written = latency["products"].get(state.name) or {}
            finished = health.parse_utc(written.get("written_utc")) or health.parse_utc(
                (state.record or {}).get("finished_utc"))
            before = [t for t in received if finished and t <= finished]
            row["latency_s"] = (finished - before[-1]).total_seconds() if before else None
            row["since_event_s"] = (
                (finished - event_time).total_seconds() if finished and event_time else None
            )
            row["preview"] = _preview(directory / state.name) if state.size_bytes else None
            products.append(row)
        return {
            "run": run,
            "summary": self._summary(run, directory, states),
            "skymap_info": info,
            "products": products,
            "plots": sorted(p.name for p in directory.iterdir()
                            if p.suffix.lower() in PLOT_SUFFIXES and p.is_file()),
            "neutrinos": _neutrinos(directory / "icecube_neutrino_list.json"),
            "neutrino_columns": list(NEUTRINO_COLUMNS),
            "notices": notices,
        }

    def health(
        self, logs: bool = True, rows: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """The checks of ``llama status --check`` (failed products of the live run read from
        its index ``rows``, computed when not given), heartbeats and (``logs``) log tails."""
        rows = self._rows_of(CURRENT, self.current) if rows is None else rows
        problems = health.check(self.output_dir, [], self.max_age_s)
        problems += [
            health.failure_problem(row["eventid"], name, reason)
            for row in sorted(rows, key=lambda row: row["eventid"])
            for name, reason in row["failures"].items()
        ]
        problems.sort(key=lambda problem: -problem.severity)
        code = health.severity(problems)
        return {
            "status": health.SEVERITY_NAMES[code],
            "code": code,
            "problems": [problem.line() for problem in problems],
            "heartbeats": [asdict(beat) for beat in health.heartbeats(self.output_dir, self.max_age_s)],
            "logs": health.log_tails(self.output_dir) if logs else {},
            "checked_utc": health.now_utc(),
        }

    def warm(self) -> None:
        """Compute the index rows of every run once, so that the first visit is fast."""
        for run in self.runs():
            try:
                self._rows_of(run["name"], self.run_dir(run["name"]))
            except NotFound:
                continue

    # -------------------------------------------------------------------------- helpers

    def _rows_of(self, run: str, run_dir: Path) -> list[dict[str, Any]]:
        """The index rows of every directory of the run named by a valid event id."""
        try:
            entries = list(os.scandir(run_dir))
        except OSError:
            return []
        rows = []
        for entry in entries:
            if not _is_event_id(entry.name):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                rows.append(self._row(run, entry.path, st))
        return rows

    def _row(self, run: str, path: str, st: os.stat_result) -> dict[str, Any]:
        """The index row of one event, from the cache while the directory is unchanged."""
        cached = self._rows.get(path)
        external = cached[1]["external_inputs"] if cached else []
        signature = (st.st_ino, st.st_mtime_ns, tuple(_mtime_ns(p) for p in external))
        if cached and cached[0] == signature:
            return cached[1]
        directory = Path(path)
        states = health.product_states(directory, self.sha256)
        row = self._summary(run, directory, states)
        if not any(state.state == "building" for state in states):
            external = row["external_inputs"]
            signature = (st.st_ino, st.st_mtime_ns, tuple(_mtime_ns(p) for p in external))
            self._rows[path] = (signature, row)
        return row

    def _summary(
        self, run: str, directory: Path, states: list[health.ProductState]
    ) -> dict[str, Any]:
        """One event at a glance: flags, trigger facts, significance numbers, product states."""
        info = health.read_json(directory / "skymap_info.json") or {}
        flags = health.read_json(directory / "flags.json") or {}
        searches = {}
        for name, search in SEARCHES.items():
            output = health.read_json(directory / search.output_file)
            if output is not None:
                searches[name] = {key: output.get(key) for key in SIGNIFICANCE_KEYS}
        counts: dict[str, int] = {}
        for state in states:
            counts[state.state] = counts.get(state.state, 0) + 1
        external = sorted({row["name"] for state in states for row in state.inputs
                           if os.path.isabs(row["name"])})
        return {
            "eventid": directory.name,
            "run": run,
            "role": flags.get("role"),
            "flags": {k: v for k, v in flags.items() if k != "role" and v is True},
            "event_time_iso": info.get("event_time_iso"),
            "event_time_gps": _number(info.get("event_time_gps")),
            "instruments": info.get("instruments"),
            "far": info.get("far"),
            "group": info.get("group"),
            "alert_type": info.get("alert_type"),
            "searches": searches,
            "products": {state.name: state.state for state in states},
            "failures": {s.name: s.reason for s in states if s.state == "failed"},
            "state_counts": counts,
            "external_inputs": external,
        }

    def _notices(self, event: Event, latency: dict[str, Any]) -> list[dict[str, Any]]:
        """Every archived notice: file, size, received time and its main fields."""
        from llama.ingest import detect_kind, read_notice  # astropy: only for event pages

        rows = []
        for path in event.notices():
            row: dict[str, Any] = {
                "file": path.name,
                "size_bytes": path.stat().st_size,
                "received_utc": health.received_utc(path, latency),
            }
            try:
                raw = path.read_bytes()
                info = read_notice(detect_kind(raw, path.name), raw, path.name).info
                row.update({key: info.get(key) for key in NOTICE_FIELDS})
                row["error"] = None
            except (LlamaError, OSError, ValueError) as err:  # a bad notice is shown, not fatal
                row["error"] = f"{type(err).__name__}: {err}"
            rows.append(row)
        return rows


# ------------------------------------------------------------------------------ helpers


@functools.lru_cache(maxsize=65536)
def _is_event_id(name: str) -> bool:
    """True when ``name`` is a valid event id (llama.ids.validate_event_id), remembered."""
    try:
        validate_event_id(name)
    except InputError:
        return False
    return True


def _mtime_ns(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _preview(path: Path) -> str | None:
    """The first PREVIEW_BYTES of a JSON product (None for other files)."""
    if path.suffix.lower() != ".json":
        return None
    try:
        with open(path, "rb") as handle:
            text = handle.read(PREVIEW_BYTES + 1).decode("utf-8", "replace")
    except OSError:
        return None
    return text if len(text) <= PREVIEW_BYTES else text[:PREVIEW_BYTES] + "\n..."


def _neutrinos(path: Path) -> list[dict[str, Any]] | None:
    """The rows of a LLAMA JSON neutrino list (records or columns), None when absent or bad."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    if isinstance(data, dict):
        data = data.get("neutrinos", data.get("triggers", data))
    if isinstance(data, dict):  # columns
        columns = {key: value for key, value in data.items() if isinstance(value, list)}
        data = [dict(zip(columns, row, strict=False)) for row in zip(*columns.values(), strict=False)]
    if not isinstance(data, list):
        return None
    return [{key: row.get(key) for key in NEUTRINO_COLUMNS} for row in data if isinstance(row, dict)]
