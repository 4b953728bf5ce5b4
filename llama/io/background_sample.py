"""The neutrino background sample (SCIENCE.md section 3) from which P_emp,nu is built.

A sample is the (zenith [deg], energy [GeV], sigma [deg]) of archival IceCube tracks, sorted by
zenith, built from the IceCube 10-year point-source release tables and stored as HDF5:
datasets ``zenith_deg``, ``energy_gev``, ``sigma_deg`` (gzip, float32) and attributes
``source_files``, ``source_sha256``, ``seasons``, ``n_events``, ``livetime_s``, ``rate_hz``
(the last two only when every season has its uptime table) and ``created_by``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from llama import __version__
from llama.errors import InputError
from llama.io.neutrinos import (
    SECONDS_PER_DAY,
    PathLike,
    ReleaseCatalog,
    error_text,
    read_release_table,
)
from llama.io.storage import atomic_write_bytes, sha256_file

log = logging.getLogger(__name__)

PACKAGED_SAMPLE = "ic40_background.h5"
"""File name of the sample shipped in llama/data (built from the IC40 season)."""

#: attribute name -> dataset name in the HDF5 file
_DATASETS = {"zenith": "zenith_deg", "energy": "energy_gev", "sigma": "sigma_deg"}
_UPTIME_COLUMNS = ("MJD_start[days]", "MJD_stop[days]")


@dataclass(eq=False)
class BackgroundSample:
    """Background neutrinos: zenith (deg, ascending), energy (GeV), sigma (deg), and metadata."""

    zenith: np.ndarray
    energy: np.ndarray
    sigma: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        arrays = {name: np.asarray(getattr(self, name), dtype=np.float64) for name in _DATASETS}
        shapes = {name: a.shape for name, a in arrays.items()}
        if len(set(shapes.values())) != 1 or len(shapes["zenith"]) != 1:
            raise InputError(f"background sample: arrays must be 1-D of equal length, got {shapes}")
        z, e, s = arrays["zenith"], arrays["energy"], arrays["sigma"]
        for bad, what in (
            (~((z >= 0) & (z <= 180)), "zenith outside [0, 180] deg"),
            (~((e > 0) & np.isfinite(e)), "energy not a positive number of GeV"),
            (~((s > 0) & np.isfinite(s)), "sigma not a positive number of deg"),
        ):
            if bad.any():
                raise InputError(f"background sample: event {int(np.flatnonzero(bad)[0])}: {what}")
        order = np.argsort(z, kind="stable")
        for name, values in arrays.items():
            setattr(self, name, values[order])

    def __len__(self) -> int:
        return len(self.zenith)

    def write(self, path: PathLike) -> None:
        """Write the sample as HDF5 (float32, gzip), atomically; same sample, same bytes."""
        buffer = io.BytesIO()
        with h5py.File(buffer, "w") as f:
            for name, dataset in _DATASETS.items():
                values = getattr(self, name).astype(np.float32)
                f.create_dataset(dataset, data=values, compression="gzip", shuffle=True)
            for key, value in sorted(self.meta.items()):
                if value is not None:
                    f.attrs[key] = value
        try:
            atomic_write_bytes(path, buffer.getvalue())
        except OSError as err:
            raise InputError(f"{path}: cannot write: {error_text(err)}") from None


def _python(value: Any) -> Any:
    """An HDF5 attribute value as plain Python (lists of str, int, float, str)."""
    if isinstance(value, np.ndarray):
        return [v.decode() if isinstance(v, bytes) else v for v in value.tolist()]
    return value.item() if isinstance(value, np.generic) else value


def read_background_sample(path: PathLike) -> BackgroundSample:
    """Read a background sample written by :meth:`BackgroundSample.write`."""
    try:
        with h5py.File(path, "r") as f:
            missing = [name for name in _DATASETS.values() if name not in f]
            if missing:
                raise InputError(f"{path}: not a background sample (no dataset {missing[0]})")
            arrays = {name: f[dataset][()] for name, dataset in _DATASETS.items()}
            meta = {key: _python(value) for key, value in f.attrs.items()}
    except (OSError, KeyError, TypeError, ValueError) as err:
        raise InputError(
            f"{path}: not a readable HDF5 background sample: {error_text(err)}"
        ) from None
    try:
        return BackgroundSample(**arrays, meta=meta)
    except InputError as err:
        raise InputError(f"{path}: {err}") from None


def default_background_sample() -> BackgroundSample:
    """The sample packaged with llama (IC40 season of the 10-year release, 36900 tracks)."""
    with as_file(files("llama") / "data" / PACKAGED_SAMPLE) as path:
        return read_background_sample(path)


def _sha256(path: Path) -> str:
    try:
        return sha256_file(path)
    except OSError as err:
        raise InputError(f"{path}: cannot read: {error_text(err)}") from None


def _uptime_file(events_file: Path) -> Path | None:
    """``<release>/uptime/<name>`` for ``<release>/events/<name>``, if it exists."""
    if events_file.parent.name != "events":
        return None
    candidate = events_file.parent.parent / "uptime" / events_file.name
    return candidate if candidate.is_file() else None


def _livetime_s(uptime_file: Path) -> float:
    """Sum of MJD_stop - MJD_start over the good runs of one uptime table, s."""
    table = read_release_table(uptime_file, _UPTIME_COLUMNS)
    durations = table[_UPTIME_COLUMNS[1]] - table[_UPTIME_COLUMNS[0]]
    if (durations < 0).any():
        raise InputError(f"{uptime_file}: a good run stops before it starts")
    return float(durations.sum()) * SECONDS_PER_DAY


def build_background_sample(release_source: PathLike | Sequence[PathLike]) -> BackgroundSample:
    """Build the sample from IceCube 10-year release tables (a release directory, event files,
    or a list of them): zenith column, energy = 10**log10(E/GeV), sigma = AngErr.

    The livetime (and rate) are set only when every season has ``uptime/<same name>`` beside
    its ``events/`` table.
    """
    catalog = ReleaseCatalog(release_source)
    uptimes = [_uptime_file(path) for path in catalog.files]
    known = all(uptimes)
    if not known:
        lacking = [s for s, u in zip(catalog.seasons, uptimes, strict=True) if u is None]
        log.warning("no uptime table for season(s) %s: livetime unknown", ", ".join(lacking))
    used = [*catalog.files, *(uptimes if known else [])]
    livetime = sum(_livetime_s(u) for u in uptimes) if known else None
    events = catalog.events
    meta = {
        "source_files": [f"{p.parent.name}/{p.name}" for p in used],
        "source_sha256": [_sha256(p) for p in used],
        "seasons": catalog.seasons,
        "n_events": len(events),
        "livetime_s": livetime,
        "rate_hz": len(events) / livetime if livetime else None,
        "created_by": f"llama {__version__}",
    }
    return BackgroundSample(events.zenith, events.energy, events.sigma, meta)
