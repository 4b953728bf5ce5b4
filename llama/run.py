"""The ``llama run`` daemon: keep every event of a run directory current.

Every cycle it selects the events ``<run dir>/<glob>`` (newest first, at most ``newest``,
filtered by the downselections of DOWNSELECTIONS), skips retracted and vetoed events and
events whose products are cooling down after failures, builds the chosen pipeline's tasks
for each remaining event with Luigi (local scheduler, bounded workers; one event at a time,
so that one event's failure never stops the others), then sends the notifications of
llama.notify. Products that are already up to date cost a checksum each. An incomplete
neutrino list is a partial result: the products after it are built from it (outcome
"partial"), it is fetched again every cycle once its hold ([llama] partial_hold_s) is over,
and the products it feeds are rebuilt when it changed, until it is complete.

Files (the conventions of llama.health), under ``<output dir>/logs/``:

    llamad-<key>.lock   fcntl lock: one daemon per (run dir, glob); <key> from both
    llamad-<key>.json   heartbeat {"pid", "host", "run_dir", "glob", "argv", "started_utc",
                        "heartbeat_utc"}, rewritten every cycle
    llamad-<key>.log    default log file of a daemonised run

and per failing product ``<event dir>/.<product file>.failure.json`` = {"task", "error",
"count", "first_utc", "last_utc", "next_try_utc"} (cooldown doubling from ``cooldown_s`` up
to MAX_COOLDOWN_S), removed when the product is built. llama.health writes the heartbeat
and the failure records (its helpers), and reads them for the status page.

Luigi and llama.tasks are imported only when something is built or a pipeline is named, so
listing (-R) and stopping (-k) daemons stay fast.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llama import health, notify, paths
from llama.errors import ConfigurationError, InputError, LlamaError
from llama.event import Event
from llama.ids import validate_event_id

if TYPE_CHECKING:  # Luigi and the tasks load only to build: -R, -k stay fast
    import luigi

    from llama.tasks.base import EventTask

log = logging.getLogger("llama.run")

DEFAULT_NEWEST = 40
DEFAULT_PIPELINE = "DEFAULT"
DEFAULT_INTERVAL_S = 5.0
#: Seconds between two looks at the event directories while waiting for the next cycle.
WATCH_S = 0.05
#: Seconds after which settled events are checked with Luigi again.
RECHECK_S = 600.0
DEFAULT_COOLDOWN_S = 60.0
MAX_COOLDOWN_S = 3600.0
#: -r: relaunches of a crashed daemon, waiting 1 s doubling to RELAUNCH_MAX_WAIT_S.
RELAUNCH_MAX = 20
RELAUNCH_MAX_WAIT_S = 300.0
#: Seconds a killed daemon gets to release its lock before SIGKILL.
KILL_WAIT_S = 10.0


def _flag(name: str, value: Any = True) -> Callable[[dict[str, Any]], bool]:
    return lambda flags: flags.get(name) == value


#: --downselect NAME: (what it keeps, test on the event's flags). Several must all hold.
DOWNSELECTIONS: dict[str, tuple[str, Callable[[dict[str, Any]], bool]]] = {
    "manual": ("events created by hand (llama skymap-info)", _flag("manual")),
    "online": ("events created by a listener", _flag("online")),
    "observation": ("role=observation (real events)", _flag("role", "observation")),
    "test": ("role=test", _flag("role", "test")),
    "upload": ("upload on", _flag("upload")),
    "not-vetoed": ("not vetoed (and not retracted)", _flag("vetoed", False)),
    "vetoed": ("vetoed or retracted (listed; never built)", _flag("vetoed")),
}


def _utc(when: datetime | None = None) -> str:
    return (when or datetime.now(UTC)).isoformat(timespec="milliseconds")


# ------------------------------------------------------------------- what to build, where


def task_classes() -> dict[str, type[EventTask]]:
    """Task name -> class of every task some pipeline builds."""
    from llama.tasks import PIPELINES

    return {cls.__name__: cls for pipeline in PIPELINES.values() for cls in pipeline}


def pipeline_tasks(
    pipeline: str = DEFAULT_PIPELINE, only: Sequence[str] = (), add: Sequence[str] = ()
) -> list[type[EventTask]]:
    """The task classes to build: ``only`` (-f) if given, else the pipeline, plus ``add`` (+f)."""
    from llama.tasks import PIPELINES

    if pipeline not in PIPELINES:
        raise InputError(f"unknown pipeline {pipeline!r}; known: {', '.join(PIPELINES)}")
    known = task_classes()
    unknown = [name for name in (*only, *add) if name not in known]
    if unknown:
        raise InputError(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    chosen = {known[name] for name in only} if only else set(PIPELINES[pipeline])
    chosen |= {known[name] for name in add}
    return sorted(chosen, key=lambda cls: cls.__name__)


def select_events(
    run_dir: Path, glob: str = "*", newest: int = DEFAULT_NEWEST, downselect: Sequence[str] = ()
) -> list[Event]:
    """Events ``run_dir/glob`` passing every downselection, newest (mtime) first, at most
    ``newest``. Directories whose names are not event ids are ignored."""
    unknown = [name for name in downselect if name not in DOWNSELECTIONS]
    if unknown:
        raise InputError(f"unknown downselection(s) {', '.join(unknown)}; "
                         f"known: {', '.join(DOWNSELECTIONS)}")
    found = []
    for directory in run_dir.glob(glob):
        try:
            validate_event_id(directory.name)
            if directory.is_dir():
                found.append((directory.stat().st_mtime, directory.name))
        except (InputError, OSError):
            continue
    events = []
    for _, name in sorted(found, reverse=True):
        event = Event(name, run_dir)
        try:
            flags = event.flags
        except LlamaError as err:
            log.error("%s: %s", name, err)
            continue
        if all(DOWNSELECTIONS[test][1](flags) for test in downselect):
            events.append(event)
        if len(events) >= newest:
            break
    return events


# ---------------------------------------------------------------------- failure records


def record_failure(event: Event, filename: str, task: str, error: str,
                   cooldown_s: float = DEFAULT_COOLDOWN_S) -> dict[str, Any]:
    """Count one more failure of product ``filename`` (llama.health.record_failure); the next
    try waits ``cooldown_s`` doubled per earlier failure, at most MAX_COOLDOWN_S."""
    product = event.directory / filename
    try:
        count = int(json.loads(health.failure_path(product).read_bytes())["count"])
    except (OSError, ValueError, KeyError, TypeError):
        count = 0
    wait = min(cooldown_s * 2**count, MAX_COOLDOWN_S)
    return health.record_failure(product, task, error, retry_after_s=wait)


def cooling_down(event: Event) -> list[str]:
    """Products of ``event`` whose failure cooldown has not ended yet."""
    now = datetime.now(UTC)
    waiting = []
    for path in event.directory.glob(f".*{health.FAILURE_SUFFIX}"):
        try:
            next_try = datetime.fromisoformat(json.loads(path.read_bytes())["next_try_utc"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if next_try > now:
            waiting.append(path.name[1:-len(health.FAILURE_SUFFIX)])
    return sorted(waiting)


_cooldown_s = DEFAULT_COOLDOWN_S
_hooks: list[Callable[..., None]] = []


def _on_failure(task: luigi.Task, exception: BaseException) -> None:
    """Luigi hook: a product failed -> its failure record (any worker process)."""
    from llama.tasks import Product

    if isinstance(task, Product):
        if str(exception).startswith("Unfulfilled dependency at run time"):
            log.info("%s: %s waits: an incomplete neutrino list it needs is not held (hold "
                     "over during the build, or partial_hold_s = 0)",
                     task.eventid, task.get_task_family())
            return  # not a failure: built from the list fetched next cycle
        error = f"{type(exception).__name__}: {exception}".splitlines()[0]
        record = record_failure(task.event, task.filename, task.get_task_family(), error,
                                _cooldown_s)
        log.error("%s: %s failed (%d time(s), next try %s): %s", task.eventid,
                  task.get_task_family(), record["count"], record["next_try_utc"], error)


def _on_success(task: luigi.Task) -> None:
    """Luigi hook: a product was built -> latency record, failure record removed."""
    from llama.tasks import Product

    if isinstance(task, Product):
        health.clear_failure(task.event.directory / task.filename)
        task.event.record_product_latency(task.filename, written_utc=_utc(),
                                          task=task.get_task_family())


def _register_hooks() -> None:
    """Register the Luigi event hooks (once per process)."""
    import luigi

    if not _hooks:
        luigi.Task.event_handler(luigi.Event.FAILURE)(_on_failure)
        luigi.Task.event_handler(luigi.Event.SUCCESS)(_on_success)
        _hooks.extend((_on_failure, _on_success))


# -------------------------------------------------------------------------------- daemon


def daemon_key(run_dir: Path, glob: str) -> str:
    """The lock/heartbeat key of a (run dir, glob) pair."""
    text = f"{Path(run_dir).absolute()}\0{glob}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class Running:
    """A daemon found through its heartbeat file; ``alive`` when its lock is held."""

    heartbeat: dict[str, Any]
    path: Path
    alive: bool


def _lock_held(lock_path: Path) -> bool:
    """True when some process holds the lock file."""
    try:
        fd = os.open(lock_path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def running_daemons(key: str | None = None) -> list[Running]:
    """Daemons with a heartbeat in ``<output dir>/logs`` (only ``key``'s when given)."""
    found = []
    for path in sorted(paths.logs_dir().glob(f"llamad-{key or '*'}.json")):
        try:
            heartbeat = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        found.append(Running(heartbeat, path, _lock_held(path.with_suffix(".lock"))))
    return found


def kill_daemons(key: str, wait_s: float = KILL_WAIT_S) -> list[int]:
    """SIGTERM the live daemon(s) of ``key`` on this host (SIGKILL after ``wait_s``); returns
    their pids once their lock is free."""
    killed = []
    for daemon in running_daemons(key):
        pid = daemon.heartbeat.get("pid")
        if not daemon.alive or daemon.heartbeat.get("host") != socket.gethostname() or not pid:
            continue
        lock = daemon.path.with_suffix(".lock")
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait_s
            while _lock_held(lock) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not _lock_held(lock):
                break
        killed.append(pid)
    return killed


@dataclass
class Daemon:
    """One ``llama run``: its selection, what it builds, its lock and heartbeat.

    An event whose products were all built and final (no partial result) is not
    checked again while nothing is written into its directory (a notice, a flag, a file),
    except once every RECHECK_S (settings, files outside the event); so a cycle over many
    settled events costs a stat each, and a new notice is built at once.
    """

    run_dir: Path
    glob: str = "*"
    tasks: list[type[EventTask]] = field(default_factory=lambda: pipeline_tasks())
    newest: int = DEFAULT_NEWEST
    downselect: Sequence[str] = ()
    workers: int = 1
    cooldown_s: float = DEFAULT_COOLDOWN_S
    argv: Sequence[str] = ()
    key: str = ""
    pid: int = field(default_factory=os.getpid)
    started_utc: str = field(default_factory=_utc)
    _lock_fd: int | None = None
    #: event id -> directory mtime after a build that left every product final
    _settled: dict[str, int] = field(default_factory=dict)
    _recheck_at: float = 0.0

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir).absolute()
        self.key = daemon_key(self.run_dir, self.glob)

    @property
    def lock_path(self) -> Path:
        return paths.logs_dir() / f"llamad-{self.key}.lock"

    @property
    def heartbeat_path(self) -> Path:
        return health.daemon_heartbeat_path(self.key)

    @property
    def log_path(self) -> Path:
        return paths.logs_dir() / f"llamad-{self.key}.log"

    def acquire(self) -> None:
        """Take the (run dir, glob) lock or raise ConfigurationError naming the holder."""
        paths.logs_dir(ensure=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = next((d.heartbeat for d in running_daemons(self.key)), {})
            raise ConfigurationError(
                f"another llama run (pid {holder.get('pid')} on {holder.get('host')}) is "
                f"building {self.run_dir}/{self.glob}: -K replaces it, -k stops it, -R lists"
            ) from None
        self._lock_fd = fd

    def release(self) -> None:
        """Give the lock back (done by the kernel anyway when the process ends)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def heartbeat(self) -> None:
        """Rewrite the heartbeat file (llama.health.write_heartbeat); its pid is the process to
        signal (with -r the supervisor, not the worker child that writes it)."""
        health.write_heartbeat(self.heartbeat_path, started_utc=self.started_utc, pid=self.pid,
                               run_dir=str(self.run_dir), glob=self.glob, argv=list(self.argv))

    def events(self) -> list[Event]:
        return select_events(self.run_dir, self.glob, self.newest, self.downselect)

    def build_event(self, event: Event) -> str:
        """Build the tasks for one event; returns what happened (one word) and logs it."""
        global _cooldown_s
        try:
            flags = event.flags
        except LlamaError as err:
            log.error("%s: %s", event.eventid, err)
            return "failed"
        if flags["retracted"] or flags["vetoed"]:
            log.debug("%s: not built (%s)", event.eventid,
                      "retracted" if flags["retracted"] else "vetoed")
            return "vetoed"
        if self._settled.get(event.eventid) == _mtime(event.directory):
            return "current"
        waiting = cooling_down(event)
        if waiting:
            log.debug("%s: cooling down after failures of %s", event.eventid, ", ".join(waiting))
            return "cooldown"
        _cooldown_s = self.cooldown_s
        import luigi

        _register_hooks()
        tasks = [cls(eventid=event.eventid, rundir=str(self.run_dir)) for cls in self.tasks]
        try:
            result = luigi.build(tasks, workers=self.workers, local_scheduler=True,
                                 detailed_summary=True)
        except Exception as err:  # scheduling itself failed: same treatment as a task failure
            record_failure(event, "pipeline", "luigi.build", f"{type(err).__name__}: {err}",
                           self.cooldown_s)
            log.error("%s: build failed: %s: %s", event.eventid, type(err).__name__, err)
            return "failed"
        if result.status.name not in ("SUCCESS", "SUCCESS_WITH_RETRY"):
            if not cooling_down(event) and not _final(tasks):
                return "waiting"  # only an incomplete neutrino list held something back
            log.warning("%s: build %s", event.eventid, result.status.name)
            return "failed"
        try:
            sent = notify.notify_event(event)
        except LlamaError as err:
            log.error("%s: notification failed (retried next cycle): %s", event.eventid, err)
        else:
            for name in sent:
                log.info("%s: notified %s", event.eventid, name)
        if not _final(tasks):
            self._settled.pop(event.eventid, None)
            return "partial"
        self._settled[event.eventid] = _mtime(event.directory)
        return "built"

    def cycle(self) -> dict[str, str]:
        """One pass over the selected events: event id -> what happened ("built"; "partial":
        built, from an incomplete neutrino list; "current"; "waiting": something waits for
        the neutrino list; "vetoed", "cooldown", "failed")."""
        self.heartbeat()
        if time.monotonic() >= self._recheck_at:  # settings or inputs outside the event
            self._settled.clear()
            self._recheck_at = time.monotonic() + RECHECK_S
        outcome = {}
        for event in self.events():
            try:
                outcome[event.eventid] = self.build_event(event)
            except Exception as err:  # one event never stops the others
                log.error("%s: %s: %s", event.eventid, type(err).__name__, err)
                outcome[event.eventid] = "failed"
        self.heartbeat()
        return outcome

    def _fingerprint(self) -> frozenset[tuple[str, int]]:
        """(name, mtime) of the event directories: any file written into one changes it."""
        found = set()
        for directory in self.run_dir.glob(self.glob):
            try:
                found.add((directory.name, directory.stat().st_mtime_ns))
            except OSError:
                continue
        return frozenset(found)

    def loop(self, once: bool = False, interval_s: float = DEFAULT_INTERVAL_S,
             max_cycles: int | None = None) -> None:
        """Cycle until killed (``once``: one cycle; ``max_cycles``: at most that many). Between
        cycles it watches the event directories (every WATCH_S) and starts the next cycle as
        soon as one changes (a notice arrived), at the latest after ``interval_s``."""
        cycles = 0
        while True:
            start = time.monotonic()
            seen = self._fingerprint()  # before: what arrives during the cycle wakes the next
            outcome = self.cycle()
            cycles += 1
            log.info("cycle %d: %s", cycles, ", ".join(f"{k} {v}" for k, v in outcome.items()))
            if once or (max_cycles is not None and cycles >= max_cycles):
                return
            while time.monotonic() - start < interval_s and self._fingerprint() == seen:
                time.sleep(WATCH_S)


def _mtime(directory: Path) -> int | None:
    try:
        return directory.stat().st_mtime_ns
    except OSError:
        return None


def _final(tasks: Iterable[EventTask]) -> bool:
    """True when no product of ``tasks`` or of what they require is a partial result
    (llama.tasks.base.partial_products)."""
    from llama.tasks.base import partial_products

    return not partial_products(tasks)


# ------------------------------------------------------------------ process management


def daemonize(logfile: Path) -> bool:
    """Double fork and setsid: returns False in the original process (after the daemon has
    started), True in the daemon, whose stdin is /dev/null and stdout/stderr ``logfile``."""
    read_end, write_end = os.pipe()
    if os.fork() > 0:
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            pipe.read()  # closed by the daemon once it is on its own
        return False
    os.close(read_end)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    logfile.parent.mkdir(parents=True, exist_ok=True)
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)
    os.close(write_end)
    return True


def supervise(body: Callable[[], None], relaunch: bool) -> None:
    """Run ``body`` (in a child process when ``relaunch``, restarted after a crash up to
    RELAUNCH_MAX times with backoff). SIGTERM stops the child and returns."""
    if not relaunch:
        body()
        return
    child = 0

    def stop(signum: int, frame: Any) -> None:
        if child:
            os.kill(child, signal.SIGTERM)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    wait = 1.0
    for attempt in range(RELAUNCH_MAX + 1):
        child = os.fork()
        if child == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            code = 0
            try:
                body()
            except BaseException as err:  # report and exit the child
                log.error("daemon crashed: %s: %s", type(err).__name__, err)
                code = 1
            os._exit(code)
        _, status = os.waitpid(child, 0)
        child = 0
        if os.waitstatus_to_exitcode(status) == 0:
            return
        log.error("daemon exited with status %d; relaunch %d/%d in %.0f s",
                  os.waitstatus_to_exitcode(status), attempt + 1, RELAUNCH_MAX, wait)
        time.sleep(wait)
        wait = min(2 * wait, RELAUNCH_MAX_WAIT_S)


def describe(events: Iterable[Event]) -> list[str]:
    """One line per event for --dry-run-dirs: directory and flags."""
    lines = []
    for event in events:
        flags = event.flags
        lines.append(f"{event.directory}  role={flags['role']} "
                     + " ".join(name for name, value in flags.items() if value is True))
    return lines
