"""Provenance records: ``.<file>.meta.json`` beside every product — writing, reading, checking.

A product ``<dir>/<file>`` (a local path or a storage URL, see llama.io.storage) has its record
in ``<dir>/.<file>.meta.json``, a JSON object (deterministic, see llama.io.storage.json_text):

    product        file name of the product
    sha256         hex sha256 of the product's bytes
    size_bytes     size of the product, bytes
    inputs         input name -> {"sha256": hex} (see :func:`input_entry`); an input whose
                   ``used`` values are recorded (skymap_info.json: the keys the product reads)
                   counts as unchanged while those values are, whatever its checksum
    settings       the settings the product used; a change makes it obsolete
    task           the Luigi task family that built it
    task_id        the Luigi task id
    parameters     the task's significant parameters, as strings
    <notes>        extra keys the product added (e.g. ``complete`` for a neutrino list)
    llama_version  version of llama
    python         Python version
    image          container image, from the first set of IMAGE_VARIABLES, else null
    host           host name
    wall_time_s    seconds from the start of the build to the record
    finished_utc   ISO 8601 UTC time the record was made, milliseconds

A product is up to date (:func:`check`) when the file and its record exist, the file still has
the recorded sha256, the settings equal the recorded ones and every input still has its
recorded fingerprint (:func:`fingerprint`). Whether the products it depends on are up to date
is the caller's business (llama.tasks asks Luigi).

No Luigi here: the tasks, the status page and ``llama provenance`` all read records through
this module.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llama import __version__
from llama.errors import LlamaError
from llama.io import storage
from llama.io.storage import Location

#: Suffix of a provenance record: ``.<file>.meta.json``.
RECORD_SUFFIX = ".meta.json"
#: Environment variables naming the container image, first set wins.
IMAGE_VARIABLES = ("LLAMA_IMAGE", "APPTAINER_NAME", "SINGULARITY_NAME")
#: The keys every record has (notes may add more).
RECORD_KEYS = (
    "product",
    "sha256",
    "size_bytes",
    "inputs",
    "settings",
    "task",
    "task_id",
    "parameters",
    "llama_version",
    "python",
    "image",
    "host",
    "wall_time_s",
    "finished_utc",
)

#: A value, or a function computing it only when it is needed.
Lazy = Mapping[str, Any] | Callable[[], Mapping[str, Any]]


def meta_path(product: Location) -> Location:
    """The record location ``.<file>.meta.json`` beside ``product`` (a Path for a local path,
    a URL string for a URL)."""
    if storage.protocol(product) is None:
        return Path(product).with_name(f".{_basename(product)}{RECORD_SUFFIX}")
    head, _, name = str(product).rpartition("/")
    return f"{head}/.{name}{RECORD_SUFFIX}"


def read_record(product: Location) -> dict[str, Any] | None:
    """The provenance record of ``product``, or None when it is absent or unreadable."""
    try:
        record = json.loads(storage.read_bytes(meta_path(product)))
    except (OSError, ValueError, LlamaError):
        return None
    return record if isinstance(record, dict) else None


def write_record(product: Location, record: Mapping[str, Any]) -> Location:
    """Write ``record`` atomically as the provenance record of ``product``; return its location."""
    location = meta_path(product)
    storage.atomic_write_json(location, as_json(record))
    return location


def input_entry(path: Location, used: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The record entry of one input file: ``{"sha256": hex}``, plus ``{"used": used}`` (the
    values the product reads from it, which then stand for its checksum) when given."""
    entry: dict[str, Any] = {"sha256": storage.sha256_file(path)}
    if used is not None:
        entry["used"] = as_json(used)
    return entry


def new_record(
    product: Location,
    data: bytes,
    *,
    inputs: Mapping[str, Any],
    settings: Mapping[str, Any],
    task: str,
    task_id: str,
    parameters: Mapping[str, str],
    wall_time_s: float,
    notes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The record of ``product`` built as ``data`` (see the module docstring for the keys).

    ``notes`` add keys (and may override product..parameters, not the environment keys);
    ``wall_time_s`` is seconds from the start of the build.
    """
    import socket  # only when writing: reading and checking records stay light
    return as_json(
        {
            "product": _basename(product),
            "sha256": hashlib.sha256(data).hexdigest(),
            "size_bytes": len(data),
            "inputs": inputs,
            "settings": settings,
            "task": task,
            "task_id": task_id,
            "parameters": parameters,
            **(notes or {}),
            "llama_version": __version__,
            "python": sys.version.split()[0],
            "image": container_image(),
            "host": socket.gethostname(),
            "wall_time_s": round(wall_time_s, 6),
            "finished_utc": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
    )


def check(
    product: Location,
    current_inputs: Lazy,
    current_settings: Lazy,
    record: Mapping[str, Any] | None = None,
) -> tuple[bool, str]:
    """Is ``product`` up to date? ``(True, "up to date")`` or ``(False, reason)``.

    ``current_inputs`` maps input names to entries as :func:`input_entry` makes them;
    ``current_settings`` are the settings the product would use now. Either may be a function
    returning them, called only when the cheaper checks passed. ``record`` defaults to the one
    on disk. An error computing them (a missing input, a bad setting) counts as not up to date.

    Reasons: "missing", "no record", "output changed", "settings changed", "new input X",
    "input X no longer used", "input X changed", "record has no inputs", "cannot check: <error>".
    """
    record = read_record(product) if record is None else record
    try:
        if not storage.exists(product):
            return False, "missing"
        if record is None:
            return False, "no record"
        if record.get("sha256") != storage.sha256_file(product):
            return False, "output changed"
        if record.get("settings") != as_json(_value(current_settings)):
            return False, "settings changed"
        recorded = fingerprint(record.get("inputs"))
        current = fingerprint(as_json(_value(current_inputs)))
    except (OSError, ValueError, LlamaError) as err:
        return False, f"cannot check: {err}"
    if recorded is None:
        return False, "record has no inputs"
    if recorded != current:
        return False, _input_difference(recorded, current or {})
    return True, "up to date"


def fingerprint(inputs: Any) -> dict[str, Any] | None:
    """What must match for inputs to count as unchanged: per input its ``used`` values when
    recorded, else its sha256 (None for a malformed ``inputs``)."""
    if not isinstance(inputs, dict):
        return None
    return {
        name: entry.get("used", entry.get("sha256")) if isinstance(entry, dict) else None
        for name, entry in inputs.items()
    }


def as_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), for comparisons.

    Raises ValueError for NaN or infinity, which records never hold.
    """
    return json.loads(storage.json_text(value))


def container_image() -> str | None:
    """The container image this runs in: the first set variable of IMAGE_VARIABLES, else None."""
    return next((os.environ[v] for v in IMAGE_VARIABLES if os.environ.get(v)), None)


def remove_stale_temporaries(
    product: Location, *, max_age_s: float = storage.STALE_TEMPORARY_AGE_S
) -> list[Path]:
    """Delete the temporary files a killed writer left beside ``product`` and its record;
    only provably stale ones (see llama.io.storage.remove_stale_temporaries)."""
    removed = []
    for target in (product, meta_path(product)):
        removed += storage.remove_stale_temporaries(target, max_age_s=max_age_s)
    return removed


def _value(lazy: Lazy) -> Mapping[str, Any]:
    return lazy() if callable(lazy) else lazy


def _basename(location: Location) -> str:
    if storage.protocol(location) is None:
        return Path(location).name
    return str(location).rpartition("/")[2]


def _input_difference(recorded: dict[str, Any], current: dict[str, Any]) -> str:
    """The first difference between two fingerprints, as a reason for :func:`check`."""
    for name in sorted(current.keys() - recorded.keys()):
        return f"new input {name}"
    for name in sorted(recorded.keys() - current.keys()):
        return f"input {name} no longer used"
    for name in sorted(current):
        if current[name] != recorded[name]:
            return f"input {name} changed"
    return "inputs changed"  # pragma: no cover - only when a fingerprint is None
