"""Task base classes: every llama product is one file in an event directory, written atomically
(llama.io.storage), with a provenance record beside it (llama.provenance) that decides whether
the product is still up to date.

A product ``<event dir>/<file>`` has its record in ``<event dir>/.<file>.meta.json``: sha256 and
size of the product, sha256 of every input file (for skymap_info.json also the values of the
keys the product uses), the settings it used, the task parameters, llama and Python versions,
container image, host, wall time and a UTC timestamp (layout: llama.provenance).

A product is complete when the file and its record exist, the file still has the recorded
sha256, the inputs still have the recorded checksums (for skymap_info.json: the used keys still
have the recorded values, so a new notice that changes nothing the product uses rebuilds
nothing), the settings are unchanged and every product it requires is complete. A product
rebuilt to identical bytes is not rewritten: it keeps its mtime, only its record is renewed.
A product Luigi runs while it is up to date itself (only something it requires was not
complete, e.g. a neutrino list fetched again after its hold, and came out unchanged) is kept
as it is, record included.

Test hook: ``LLAMA_TEST_PAUSE_BEFORE_WRITE=<seconds>`` makes every product pause that long
between computing its bytes and writing them, after printing one line to stderr; the tests
kill the worker during the pause.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import luigi
from luigi.cmdline_parser import CmdlineParser
from luigi.task import flatten

from llama import paths, provenance
from llama.errors import LlamaError
from llama.event import Event
from llama.ids import validate_event_id
from llama.io import storage

#: Luigi's own logger: what the `luigi` command shows.
log = logging.getLogger("luigi-interface")

PAUSE_HOOK = "LLAMA_TEST_PAUSE_BEFORE_WRITE"
#: Exit code of the `luigi` command for an invalid --eventid (a usage error, as in argparse).
USAGE_ERROR = 2


class EventIdParameter(luigi.Parameter):
    """An event id, validated by llama.ids.validate_event_id.

    An invalid id raises InputError; on the `luigi` command line it prints one line to stderr
    and exits with USAGE_ERROR instead of Luigi's traceback.
    """

    def normalize(self, x: Any) -> str:
        try:
            return validate_event_id(x)
        except LlamaError as err:
            if CmdlineParser.get_instance() is None:
                raise
            print(f"llama.tasks: error: --eventid: {err}", file=sys.stderr)
            raise SystemExit(USAGE_ERROR) from None


class RunDirParameter(luigi.OptionalParameter):
    """A run directory, made absolute; None (the default) is the live run, paths.current_run_dir."""

    def normalize(self, x: Any) -> str | None:
        return str(Path(x).expanduser().absolute()) if x else None


class RetractedEvent(LlamaError):
    """A product of a retracted event was asked for without ``--allow-retracted``."""


class EventTask(luigi.Task):
    """A task about one event: ``<rundir>/<eventid>/``."""

    eventid = EventIdParameter(default="", description="event id, e.g. S190425z")
    rundir = RunDirParameter(
        default=None, description="run directory (default: <output dir>/current_run)"
    )
    allow_retracted = luigi.BoolParameter(
        default=False,
        significant=False,
        description="build the products of a retracted event anyway (they are marked retracted)",
    )

    @property
    def event(self) -> Event:
        """The event directory (resolved on every call: LLAMA_OUTPUT_DIR may change)."""
        return Event(self.eventid, self.rundir or paths.current_run_dir())

    def event_task(self, cls: type[EventTask]) -> EventTask:
        """The task ``cls`` for the same event."""
        return cls(eventid=self.eventid, rundir=self.rundir, allow_retracted=self.allow_retracted)

    def on_failure(self, exception: BaseException) -> str:
        """The explanation sent to the scheduler: one line for a LlamaError."""
        if isinstance(exception, LlamaError):
            return f"{type(exception).__name__}: {exception}"
        return super().on_failure(exception)


class StorageTarget(luigi.Target):
    """A file at a llama.io.storage location (a ``file://`` URL today, any fsspec URL later).

    ``url`` is the location; ``path`` is the local path as a string for a local file (what
    ``luigi.LocalTarget.path`` would be), else the URL.
    """

    def __init__(self, location: storage.Location) -> None:
        self.url = storage.to_url(location)
        local = storage.local_path(self.url)
        self.path = str(local) if local is not None else self.url

    def exists(self) -> bool:
        return storage.exists(self.url)

    def __repr__(self) -> str:
        return f"StorageTarget({self.url!r})"


class Product(EventTask):
    """One product file in the event directory; subclasses define ``filename`` and ``build``."""

    filename: ClassVar[str]
    #: skymap_info.json keys the product uses; their values stand for that file's checksum.
    info_keys: ClassVar[tuple[str, ...]] = ()

    def build(self, notes: dict[str, Any]) -> bytes | str:
        """The product's bytes (text is UTF-8 encoded). ``notes`` collects extra provenance."""
        raise NotImplementedError

    def settings_used(self) -> dict[str, Any]:
        """Settings the product depends on; a change makes it obsolete."""
        return {}

    def extra_inputs(self) -> list[Path]:
        """Files ``build`` reads besides the outputs of ``requires``."""
        return []

    def output(self) -> StorageTarget:
        # safe_join: a file name from skymap_info.json never leads outside the event directory
        return StorageTarget(paths.safe_join(self.event.directory, self.filename))

    @property
    def meta_path(self) -> Path:
        """The provenance record ``.<filename>.meta.json`` beside the product."""
        return Path(provenance.meta_path(self.event.directory / self.filename))

    def provenance(self) -> dict[str, Any] | None:
        """The provenance record, or None when absent or unreadable."""
        return provenance.read_record(self.output().url)

    def used_info(self) -> dict[str, Any]:
        """The values of ``info_keys`` in skymap_info.json (None for absent keys)."""
        info = self.event.skymap_info
        return {key: info.get(key) for key in self.info_keys}

    def current_inputs(self) -> dict[str, dict[str, Any]]:
        """name -> {"sha256": ...} (plus {"used": {...}} for skymap_info.json) of every input;
        an input inside the event directory is named relative to it."""
        event = self.event
        locations = [_location(t) for t in flatten(self.input())] + list(self.extra_inputs())
        inputs = {}
        for location in locations:
            path = storage.local_path(location)
            used = self.used_info() if path == event.skymap_info_path else None
            if path is None:
                name = str(location)
            elif path.is_relative_to(event.directory):
                name = event.relpath(path)
            else:
                name = str(path)
            inputs[name] = provenance.input_entry(location, used)
        return provenance.as_json(inputs)

    def up_to_date(self) -> tuple[bool, str]:
        """Whether the product itself (not what it requires) is up to date, and why not
        (see llama.provenance.check)."""
        return provenance.check(self.output().url, self.current_inputs, self.settings_used)

    def complete(self) -> bool:
        up_to_date, reason = self.up_to_date()
        if not up_to_date:
            log.debug("llama: %s is not complete: %s", self.task_id, reason)
            return False
        return all(task.complete() for task in flatten(self.requires()))

    @property
    def retracted(self) -> bool:
        """Whether the event is flagged retracted (flags.json)."""
        return bool(self.event.flags_path.exists() and self.event.flags.get("retracted"))

    def _requires(self) -> list[luigi.Task]:
        """Luigi's hook for dependencies that are not inputs: every product waits for
        NotRetracted, which fails once, in one line, for a retracted event."""
        return [*flatten(self.requires()), self.event_task(NotRetracted)]

    def run(self) -> None:
        if self.kept():
            return
        start = time.monotonic()
        inputs = self.current_inputs()  # before building: a change meanwhile means a rebuild
        used_settings = self.settings_used()
        notes: dict[str, Any] = {"retracted": True} if self.retracted else {}
        data = self.build(notes)
        data = data.encode("utf-8") if isinstance(data, str) else data
        self.commit(self.output(), data, inputs, used_settings, notes, start)

    def kept(self) -> bool:
        """True (and logged) when the product is up to date itself: nothing to build."""
        up_to_date, _ = self.up_to_date()
        if up_to_date:
            log.info("llama: %s is up to date, kept", self.task_id)
        return up_to_date

    def commit(
        self,
        target: StorageTarget,
        data: bytes,
        inputs: dict[str, Any],
        used_settings: dict[str, Any],
        notes: dict[str, Any],
        start: float,
    ) -> None:
        """Write one output file (unless its bytes are unchanged) and its provenance record;
        ``start`` is the build's time.monotonic() start, for the recorded wall time."""
        provenance.remove_stale_temporaries(target.url)
        _pause_for_tests(target.path)
        written = storage.write_if_changed(target.url, data)
        record = provenance.new_record(
            target.url,
            data,
            inputs=inputs,
            settings=used_settings,
            task=self.get_task_family(),
            task_id=self.task_id,
            parameters=self.to_str_params(only_significant=True),
            notes=notes,
            wall_time_s=time.monotonic() - start,
        )
        provenance.write_record(target.url, record)
        log.info("llama: %s %s", "wrote" if written else "unchanged, kept", target.path)


def with_requirements(tasks: Iterable[EventTask]) -> list[EventTask]:
    """``tasks`` and every task they require, each once, requirements before dependents."""
    ordered: dict[str, EventTask] = {}

    def visit(task: EventTask) -> None:
        if task.task_id in ordered:
            return
        for required in flatten(task.requires()):
            visit(required)
        ordered[task.task_id] = task

    for task in tasks:
        visit(task)
    return list(ordered.values())


def partial_products(tasks: Iterable[EventTask]) -> list[tuple[Product, dict[str, Any]]]:
    """(product, record) of each product of ``tasks`` or of what they require whose record
    says ``complete: false``: a partial result (a neutrino list fetched while incomplete),
    which everything built from it is too."""
    found = []
    for task in with_requirements(tasks):
        record = task.provenance() if isinstance(task, Product) else None
        if record is not None and record.get("complete") is False:
            found.append((task, record))
    return found


#: Luigi's warning for an exception in complete() or deps() (e.g. a hostile sky-map file name
#: in skymap_info.json): the traceback is part of the message, its last line the error.
_SCHEDULING_ERROR = re.compile(
    r"(Will not run .* due to error in \w+\(\) method):\n.*^llama\.errors\.(\w+: .*?)\s*\Z",
    re.DOTALL | re.MULTILINE,
)


class NotRetracted(EventTask):
    """Done unless the event is retracted (and --allow-retracted not given): then its run
    fails with one line, and no product of the event is built."""

    def complete(self) -> bool:
        event = self.event
        retracted = event.flags_path.exists() and event.flags.get("retracted")
        return not retracted or self.allow_retracted

    def run(self) -> None:
        raise RetractedEvent(
            f"{self.eventid} is retracted: its products are not built "
            "(--allow-retracted builds them, marked retracted)"
        )


class _OneLineLlamaErrors(logging.Filter):
    """Luigi logs a failed task (or one it cannot schedule) with its traceback; a LlamaError
    (bad input, bad setting) becomes one line naming the task and the problem."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, LlamaError):
            record.msg, record.args = f"{record.getMessage()}: {error}", ()
            record.exc_info = record.exc_text = None
        elif isinstance(record.msg, str) and "Traceback" in record.msg:
            match = _SCHEDULING_ERROR.match(record.getMessage())
            if match:
                record.msg, record.args = f"{match[1]}: {match[2]}", ()
        return True


log.addFilter(_OneLineLlamaErrors())


def _location(target: luigi.Target) -> storage.Location:
    """Where a Luigi target's file is: its storage URL, else its path."""
    return getattr(target, "url", None) or target.path


def _pause_for_tests(path: str) -> None:
    """The LLAMA_TEST_PAUSE_BEFORE_WRITE hook (see the module docstring)."""
    seconds = os.environ.get(PAUSE_HOOK)
    if seconds:
        print(
            f"llama test hook: pausing {seconds} s before writing {path}",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(float(seconds))
