"""How an event's products were made, and whether they can be made again (`llama provenance`).

- :func:`event_tasks` — every task of an event's product graph (the REVIEW pipeline, which
  includes the rendered outputs), requirements first, with :func:`edges` between them.
- :func:`status` — per task: its files, and whether it is up to date (and why not).
- :func:`find_task` — the task that makes a product, by file name or task name.
- :func:`verify` — recompute one product in a scratch directory and compare.

Verification: the product's recorded inputs and settings must still be the current ones (an
input edited by hand fails here, naming the product and the input); then the event directory,
without the product's provenance records, is copied into a temporary run directory, the product's
task is built there in-process with Luigi's local scheduler, and the new file is compared with
the stored one: byte for byte, or for a product that embeds the time it was made (GcnNotice)
its declared content (``declared_content``). The stored file must also still match its record.
The product's requirements must be complete in the copy (they are not rebuilt: verify them
first). A partial result is refused: an incomplete neutrino list (a snapshot of a live source,
fetched again until complete) and every product made from one, whether or not the list is
still within its hold; verify them once the list is complete.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import luigi
from luigi.execution_summary import LuigiStatusCode
from luigi.task import flatten

from llama import provenance
from llama.errors import InputError
from llama.tasks.base import EventTask, Product, partial_products, with_requirements
from llama.tasks.pipelines import ReviewPipeline

#: Characters of a sha256 shown in messages.
SHORT = 12


def event_tasks(eventid: str, rundir: str | Path) -> list[EventTask]:
    """Every task of the event's product graph, each once, requirements before dependents."""
    pipeline = ReviewPipeline(eventid=eventid, rundir=str(rundir))
    return with_requirements(flatten(pipeline.requires()))


def edges(tasks: list[EventTask]) -> list[tuple[str, str]]:
    """(requirement, dependent) task families: what each product is made from."""
    return [
        (required.get_task_family(), task.get_task_family())
        for task in tasks
        for required in flatten(task.requires())
    ]


def files_of(task: EventTask) -> list[str]:
    """The file names a task writes (or, for an external task, stands for)."""
    return [Path(target.path).name for target in flatten(task.output())]


def status(task: EventTask) -> tuple[bool, str]:
    """(up to date, reason) of a product; external inputs: (exists, "present"/"missing")."""
    if isinstance(task, Product):
        return task.up_to_date()
    present = all(target.exists() for target in flatten(task.output()))
    return present, "present" if present else "missing"


def find_task(eventid: str, rundir: str | Path, name: str) -> EventTask:
    """The task making ``name``: a product file name (e.g. summary_lvc-i3.pdf) or a task
    name (e.g. Summary); InputError listing the known names otherwise."""
    tasks = event_tasks(eventid, rundir)
    for task in tasks:
        if name == task.get_task_family() or name in files_of(task):
            return task
    known = ", ".join(name for task in tasks for name in files_of(task))
    raise InputError(f"{eventid} has no product {name!r}; products: {known}")


def records(task: EventTask) -> dict[str, dict[str, Any] | None]:
    """File name -> its provenance record (None when absent) for each file of a product."""
    return {
        Path(target.path).name: provenance.read_record(target.path)
        for target in flatten(task.output())
    }


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`verify`: ``ok`` and one line saying why."""

    ok: bool
    message: str


def _input_changes(task: Product, record: dict[str, Any]) -> list[str]:
    """What differs between the recorded inputs and settings and the current ones."""
    recorded = provenance.fingerprint(record.get("inputs")) or {}
    entries = task.current_inputs()
    current = provenance.fingerprint(entries) or {}
    changes = [f"new input {name}" for name in sorted(current.keys() - recorded.keys())]
    changes += [f"input {name} is gone" for name in sorted(recorded.keys() - current.keys())]
    for name in sorted(current.keys() & recorded.keys()):
        if current[name] != recorded[name]:
            was = record["inputs"][name].get("sha256", "")[:SHORT]
            now = entries[name].get("sha256", "")[:SHORT]
            changes.append(f"input {name} changed (sha256 recorded {was}, now {now})")
    if record.get("settings") != provenance.as_json(task.settings_used()):
        changes.append("settings changed")
    return changes


def _copy_event(task: Product, scratch: Path) -> Path:
    """Copy the event directory into ``scratch``/<eventid> without the product's provenance
    records (so the task runs again; a product the alert intake wrote, such as the sky map,
    is its own source); return the run directory (``scratch``)."""
    source = task.event.directory
    records = {Path(provenance.meta_path(name)).name for name in files_of(task)}
    shutil.copytree(source, scratch / source.name, ignore=lambda _, names: records & set(names))
    return scratch


@contextmanager
def _quiet() -> Iterator[None]:
    """Luigi's and astropy's chatter off while a product is recomputed (the verdict says it)."""
    loggers = [logging.getLogger(name) for name in ("luigi-interface", "luigi", "astropy")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.CRITICAL)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _declared(task: Product, data: bytes) -> bytes:
    """The product's declared content (all bytes unless the task says otherwise)."""
    declared = getattr(task, "declared_content", None)
    return declared(data) if declared is not None else data


def _partial_input(task: EventTask) -> str | None:
    """Why ``task``'s product is a partial result (it, or a product it is made from, is a
    neutrino list recorded ``complete: false``), or None."""
    found = partial_products([task])
    if not found:
        return None
    product, record = found[0]
    return (f"a partial result: {product.filename} was incomplete when fetched "
            f"({record.get('fetched_utc')} UTC) and is fetched again until complete; "
            "verify once it is")


def _recompute(task: Product, scratch: Path) -> tuple[Product | None, str]:
    """Build ``task``'s product again in a copy of its event under ``scratch``: (the task
    there, "") or (None, why not)."""
    rundir = str(_copy_event(task, scratch))  # a retracted event's products are checked too
    again = type(task)(**{**task.param_kwargs, "rundir": rundir, "allow_retracted": True})
    for required in flatten(again.requires()):
        if not required.complete():
            fresh, why = status(required)
            why = why if not fresh else "what it is made from is not up to date"
            return None, (f"cannot recompute it alone: its input {required.get_task_family()} "
                          f"is not complete ({why})")
    with _quiet():
        result = luigi.build([again], local_scheduler=True, detailed_summary=True)
    if result.status != LuigiStatusCode.SUCCESS:
        return None, f"recomputing failed ({result.status.name})"
    return again, ""


def verify(task: EventTask) -> Verdict:
    """Recompute ``task``'s product in a scratch directory and compare (module docstring)."""
    label = " + ".join(files_of(task))
    if not isinstance(task, Product):
        return Verdict(False, f"{label}: an external input (no task makes it); nothing to verify")
    stored = records(task)
    missing = [name for name, record in stored.items() if record is None]
    if missing:
        return Verdict(False, f"{label}: no provenance record for {', '.join(missing)}")
    changes = _input_changes(task, next(iter(stored.values())))  # type: ignore[arg-type]
    if changes:
        return Verdict(False, f"{label}: made from other inputs than today's: {'; '.join(changes)}")
    partial = _partial_input(task)
    if partial:
        return Verdict(False, f"{label}: {partial}")
    problems, remarks = [], []
    with tempfile.TemporaryDirectory(prefix="llama-verify-") as tmp:
        again, why = _recompute(task, Path(tmp))
        if again is None:
            return Verdict(False, f"{label}: {why}")
        for name, record in stored.items():
            old = (task.event.directory / name).read_bytes()
            new = (again.event.directory / name).read_bytes()
            if _sha(old) != record.get("sha256"):  # type: ignore[union-attr]
                problems.append(f"{name} was changed after it was made (sha256 recorded "
                                f"{str(record.get('sha256'))[:SHORT]}, now {_sha(old)[:SHORT]})")  # type: ignore[union-attr]
            if old == new:
                continue
            if _declared(task, old) == _declared(task, new):
                remarks.append(f"{name}: declared content identical, embedded time differs")
            else:
                problems.append(f"{name} recomputed differs (sha256 stored {_sha(old)[:SHORT]}, "
                                f"recomputed {_sha(new)[:SHORT]})")
    if problems:
        return Verdict(False, f"{label}: {'; '.join(problems)}")
    return Verdict(True, f"{label}: reproduced ({'; '.join(remarks) or 'byte-identical'})")
