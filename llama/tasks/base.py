"""Task base classes: every llama product is one file in an event directory, written atomically,
with a provenance record beside it that decides whether the product is still up to date.

A product ``<event dir>/<file>`` has its record in ``<event dir>/.<file>.meta.json``: sha256 and
size of the product, sha256 of every input file (for skymap_info.json also the values of the
keys the product uses), the settings it used, the task parameters, llama and Python versions,
container image, host, wall time and a UTC timestamp.

A product is complete when the file and its record exist, the file still has the recorded
sha256, the inputs still have the recorded checksums (for skymap_info.json: the used keys still
have the recorded values, so a new notice that changes nothing the product uses rebuilds
nothing), the settings are unchanged and every product it requires is complete. A product
rebuilt to identical bytes is not rewritten: it keeps its mtime, only its record is renewed.

Test hook: ``LLAMA_TEST_PAUSE_BEFORE_WRITE=<seconds>`` makes every product pause that long
between computing its bytes and writing them, after printing one line to stderr; the tests
kill the worker during the pause.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import luigi
from luigi.cmdline_parser import CmdlineParser
from luigi.task import flatten

from llama import __version__, paths
from llama.errors import LlamaError
from llama.event import Event, validate_event_id
from llama.io.atomic import atomic_write_json, json_text, sha256_file, write_if_changed

#: Luigi's own logger: what the `luigi` command shows.
log = logging.getLogger("luigi-interface")

PAUSE_HOOK = "LLAMA_TEST_PAUSE_BEFORE_WRITE"
#: Environment variables naming the container image, first set wins.
IMAGE_VARIABLES = ("LLAMA_IMAGE", "APPTAINER_NAME", "SINGULARITY_NAME")
#: Exit code of the `luigi` command for an invalid --eventid (a usage error, as in argparse).
USAGE_ERROR = 2


class EventIdParameter(luigi.Parameter):
    """An event id, validated by llama.event.validate_event_id.

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


class EventTask(luigi.Task):
    """A task about one event: ``<rundir>/<eventid>/``."""

    eventid = EventIdParameter(default="", description="event id, e.g. S190425z")
    rundir = RunDirParameter(
        default=None, description="run directory (default: <output dir>/current_run)"
    )

    @property
    def event(self) -> Event:
        """The event directory (resolved on every call: LLAMA_OUTPUT_DIR may change)."""
        return Event(self.eventid, self.rundir or paths.current_run_dir())

    def event_task(self, cls: type[EventTask]) -> EventTask:
        """The task ``cls`` for the same event."""
        return cls(eventid=self.eventid, rundir=self.rundir)

    def on_failure(self, exception: BaseException) -> str:
        """The explanation sent to the scheduler: one line for a LlamaError."""
        if isinstance(exception, LlamaError):
            return f"{type(exception).__name__}: {exception}"
        return super().on_failure(exception)


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

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(self.event.directory / self.filename)

    @property
    def meta_path(self) -> Path:
        """The provenance record ``.<filename>.meta.json`` beside the product."""
        return self.event.directory / f".{self.filename}.meta.json"

    def provenance(self) -> dict[str, Any] | None:
        """The provenance record, or None when absent or unreadable."""
        try:
            record = json.loads(self.meta_path.read_bytes())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def used_info(self) -> dict[str, Any]:
        """The values of ``info_keys`` in skymap_info.json (None for absent keys)."""
        info = self.event.skymap_info
        return {key: info.get(key) for key in self.info_keys}

    def current_inputs(self) -> dict[str, dict[str, Any]]:
        """name -> {"sha256": ...} (plus {"used": {...}} for skymap_info.json) of every input."""
        event = self.event
        files = [Path(t.path) for t in flatten(self.input())] + self.extra_inputs()
        inputs = {}
        for path in files:
            entry: dict[str, Any] = {"sha256": sha256_file(path)}
            if path == event.skymap_info_path:
                entry["used"] = self.used_info()
            name = event.relpath(path) if path.is_relative_to(event.directory) else str(path)
            inputs[name] = entry
        return _as_json(inputs)

    def complete(self) -> bool:
        record = self.provenance()
        path = Path(self.output().path)
        if record is None or not path.is_file():
            return False
        try:
            up_to_date = (
                record.get("sha256") == sha256_file(path)
                and record.get("settings") == _as_json(self.settings_used())
                and _fingerprint(record.get("inputs")) == _fingerprint(self.current_inputs())
            )
        except (OSError, LlamaError):
            return False
        return up_to_date and all(task.complete() for task in flatten(self.requires()))

    def run(self) -> None:
        start = time.monotonic()
        inputs = self.current_inputs()  # before building: a change meanwhile means a rebuild
        used_settings = self.settings_used()
        notes: dict[str, Any] = {}
        data = self.build(notes)
        data = data.encode("utf-8") if isinstance(data, str) else data
        path = Path(self.output().path)
        _remove_stale_temporaries(path, self.meta_path)
        _pause_for_tests(path)
        written = write_if_changed(path, data)
        record = {
            "product": self.filename,
            "sha256": hashlib.sha256(data).hexdigest(),
            "size_bytes": len(data),
            "inputs": inputs,
            "settings": used_settings,
            "task": self.get_task_family(),
            "task_id": self.task_id,
            "parameters": self.to_str_params(only_significant=True),
            **notes,
            "llama_version": __version__,
            "python": sys.version.split()[0],
            "image": next((os.environ[v] for v in IMAGE_VARIABLES if os.environ.get(v)), None),
            "host": socket.gethostname(),
            "wall_time_s": round(time.monotonic() - start, 6),
            "finished_utc": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        atomic_write_json(self.meta_path, _as_json(record))
        log.info("llama: %s %s", "wrote" if written else "unchanged, kept", path)


class _OneLineLlamaErrors(logging.Filter):
    """Luigi logs a failed task with its traceback; a LlamaError (bad input, bad setting)
    becomes one line naming the task and the problem."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, LlamaError):
            record.msg, record.args = f"{record.getMessage()}: {error}", ()
            record.exc_info = record.exc_text = None
        return True


log.addFilter(_OneLineLlamaErrors())


def _as_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), for comparisons."""
    return json.loads(json_text(value))


def _fingerprint(inputs: Any) -> dict[str, Any] | None:
    """What must match for inputs to count as unchanged: the used values, else the sha256."""
    if not isinstance(inputs, dict):
        return None
    return {
        name: entry.get("used", entry.get("sha256")) if isinstance(entry, dict) else None
        for name, entry in inputs.items()
    }


def _remove_stale_temporaries(*targets: Path) -> None:
    """Delete temporary files a killed worker left while writing these files (named as
    llama.io.atomic names them: '.<name>.<random>.tmp' beside the target)."""
    for target in targets:
        for stale in target.parent.glob(f".{target.name[:80]}.*.tmp"):
            stale.unlink(missing_ok=True)


def _pause_for_tests(path: Path) -> None:
    """The LLAMA_TEST_PAUSE_BEFORE_WRITE hook (see the module docstring)."""
    seconds = os.environ.get(PAUSE_HOOK)
    if seconds:
        print(
            f"llama test hook: pausing {seconds} s before writing {path}",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(float(seconds))
