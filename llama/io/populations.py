"""``populations.hdf5``: background odds per population (SCIENCE.md section 6), read and written.

Ascending float arrays at ``<search>/<population>/<sensitivity>/<instruments>`` (see
llama.science.pvalue.population_key). The file may be local or any fsspec URL (s3://...);
writes are atomic through llama.io.storage (the new file is built in memory, then committed).
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterable

import numpy as np

from llama.errors import InputError
from llama.io.storage import atomic_write_bytes, exists, local_path, read_bytes
from llama.science.pvalue import PValue, p_value

log = logging.getLogger(__name__)


def _open_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes; InputError when absent."""
    try:
        return read_bytes(path)
    except FileNotFoundError:
        raise InputError(f"{path}: background populations file not found") from None


def load_population(path: str | os.PathLike, key: str) -> np.ndarray | None:
    """The ascending background odds at ``key``; None (and a warning) when absent."""
    values = load_populations(path, [key])[key]
    if values is None:
        log.warning("background population %s not found in %s: p_value is null", key, path)
    return values


def load_populations(path: str | os.PathLike, keys: Iterable[str]) -> dict[str, np.ndarray | None]:
    """The ascending background odds at each key (None where absent), reading the file once."""
    import h5py

    data = _open_bytes(path)
    found: dict[str, np.ndarray | None] = {}
    try:
        with h5py.File(io.BytesIO(data), "r") as f:
            for key in keys:
                found[key] = np.asarray(f[key][()], float) if key in f else None
    except OSError as err:
        raise InputError(f"{path}: not a readable populations HDF5 file ({err})") from None
    for key, values in found.items():
        if values is None:
            continue
        if values.ndim != 1 or not np.all(np.isfinite(values)):
            raise InputError(f"{path}: population {key} is not a 1-D array of finite odds")
        if np.any(np.diff(values) < 0):
            found[key] = np.sort(values)
    return found


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
) -> None:
    """Store ``odds`` (sorted ascending) at ``key``, keeping every other population in the file.

    The whole new file is built in memory and committed atomically over the old one.
    """
    import h5py

    values = np.sort(np.asarray(odds, float))
    if not np.all(np.isfinite(values)):
        raise InputError(f"population {key}: odds must be finite")
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as out:
        if exists(path):
            with h5py.File(io.BytesIO(_open_bytes(path)), "r") as old:
                old.visititems(lambda name, obj: _copy_dataset(old, out, name, obj, key))
        dataset = out.create_dataset(key, data=values, compression="gzip", shuffle=True)
        for name, value in (attrs or {}).items():
            dataset.attrs[name] = value
        dataset.attrs["n_background"] = values.size
    local = local_path(path)
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())


def _copy_dataset(old, out, name: str, obj, replaced_key: str) -> None:
    import h5py

    if isinstance(obj, h5py.Dataset) and name != replaced_key:
        old.copy(obj, out, name=name)
