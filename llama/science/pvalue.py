"""p-values against background populations (SCIENCE.md section 6).

``populations.hdf5`` holds ascending float arrays of background odds at
``<search>/<population>/<sensitivity>/<instruments sorted and joined>``,
e.g. ``subthreshold/bns/o3/H1L1V1``.  p = (1 + #(O_bg >= O)) / (1 + N_bg), never 0
(defect 8 of section 7).
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llama.errors import InputError

log = logging.getLogger(__name__)

SEARCHES = ("subthreshold", "opa")


def population_key(search: str, population: str, sensitivity: str, instruments) -> str:
    """HDF5 path of a background population, instruments sorted and joined (H1L1V1)."""
    if isinstance(instruments, str):
        instruments = [i for i in instruments.replace(",", " ").split() if i]
    joined = "".join(sorted(str(i).strip() for i in instruments))
    for part in (search, population, sensitivity, joined):
        if not part or "/" in part:
            raise InputError(f"invalid population key component {part!r}")
    return f"{search}/{population}/{sensitivity}/{joined}"


def p_value(odds: float, background: np.ndarray) -> float:
    """(1 + #(background >= odds)) / (1 + N); ``background`` ascending."""
    n_at_least = background.size - np.searchsorted(background, odds, side="left")
    return float((1 + n_at_least) / (1 + background.size))


@dataclass
class PValue:
    """A p-value with its provenance; ``value`` is None when the population is missing."""

    value: float | None
    n_background: int
    key: str
    source: str | None

    def of(self, odds: float) -> float | None:
        """p-value of another odds value against the same population (None when missing)."""
        return None if self._background is None else p_value(odds, self._background)

    _background: np.ndarray | None = None


def load_population(path: str | os.PathLike, key: str) -> np.ndarray | None:
    """The ascending background odds at ``key``; None (and a warning) when absent."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if key not in f:
                log.warning("background population %s not found in %s: p_value is null", key, path)
                return None
            values = np.asarray(f[key][()], float)
    except FileNotFoundError:
        raise InputError(f"{path}: background populations file not found") from None
    except OSError as err:
        raise InputError(f"{path}: not a readable populations HDF5 file ({err})") from None
    if values.ndim != 1 or not np.all(np.isfinite(values)):
        raise InputError(f"{path}: population {key} is not a 1-D array of finite odds")
    if np.any(np.diff(values) < 0):
        values = np.sort(values)
    return values


def evaluate(odds: float, path: str | os.PathLike | None, key: str) -> PValue:
    """p-value of ``odds`` against the population ``key`` in ``path`` (None path: null p)."""
    if path is None:
        log.warning("no background populations given: p_value is null")
        return PValue(None, 0, key, None)
    background = load_population(path, key)
    if background is None:
        return PValue(None, 0, key, str(path))
    return PValue(p_value(odds, background), int(background.size), key, str(path), background)


def write_population(
    path: str | os.PathLike, key: str, odds: np.ndarray, attrs: dict | None = None
):
    """Store ``odds`` (sorted ascending) at ``key``, keeping every other population in the file.

    The file is rewritten to a temporary copy and atomically renamed over the old one.
    """
    import h5py

    path = Path(path)
    values = np.sort(np.asarray(odds, float))
    if not np.all(np.isfinite(values)):
        raise InputError(f"population {key}: odds must be finite")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as out:
            if path.exists():
                with h5py.File(path, "r") as old:
                    old.visititems(lambda name, obj: _copy_dataset(old, out, name, obj, key))
            dataset = out.create_dataset(key, data=values, compression="gzip", shuffle=True)
            for name, value in (attrs or {}).items():
                dataset.attrs[name] = value
            dataset.attrs["n_background"] = values.size
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _copy_dataset(old, out, name: str, obj, replaced_key: str) -> None:
    import h5py

    if isinstance(obj, h5py.Dataset) and name != replaced_key:
        old.copy(obj, out, name=name)
