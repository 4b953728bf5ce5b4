"""What the science needs of a sky map and a neutrino list (structural types).

llama.science imports nothing from llama.io: the readers there return objects that satisfy
these protocols (llama.io.skymap_geometry.SkyMap, llama.io.neutrinos.NeutrinoList).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np


class PixelSetLike(Protocol):
    """Sky-map pixels near a point: index into the map, probability, centre unit vectors
    (n, 3), centre declination (deg) and area (sr)."""

    index: np.ndarray
    prob: np.ndarray
    xyz: np.ndarray
    dec: np.ndarray
    area: np.ndarray


class SkyMapLike(Protocol):
    """A flat NESTED or multi-order HEALPix probability map."""

    prob: np.ndarray
    uniq: np.ndarray | None

    @property
    def is_moc(self) -> bool: ...

    @property
    def order(self) -> np.ndarray: ...

    def disc(self, ra_deg: float, dec_deg: float, radius_deg: float) -> PixelSetLike: ...

    def cached(self, key: str, compute: Callable[[], Any]) -> Any: ...


class BackgroundSampleLike(Protocol):
    """Archival background tracks: zenith (deg), energy (GeV), sigma (deg), and metadata."""

    zenith: np.ndarray
    energy: np.ndarray
    sigma: np.ndarray
    meta: dict


class NeutrinosLike(Protocol):
    """A neutrino list as arrays: times (UTC MJD), positions and errors (deg), energies (GeV)."""

    mjd: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    sigma: np.ndarray
    energy: np.ndarray
    zenith: np.ndarray

    def __len__(self) -> int: ...
