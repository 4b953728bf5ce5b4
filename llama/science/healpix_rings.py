"""HEALPix pixels within many discs at once, ring by ring (RING scheme; Gorski et al. 2005,
ApJ 622, 759, section 4 gives the ring geometry used here).

healpy's ``query_disc`` answers one disc per call; background trials ask for thousands of
discs at a time, so this module finds, for every disc, the *runs* of consecutive pixels of
one order on each ring whose centres lie within the disc, in a few numpy calls. A cell is
then a (run, position in the run) pair: its ring gives its z and sin(theta), its position
its longitude.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def ring_geometry(nside: int, ring: np.ndarray) -> tuple[np.ndarray, ...]:
    """For rings 1 .. 4 nside - 1 (north to south): z = cos(theta), sin(theta), pixels in the
    ring, longitude offset of its first pixel (in pixel widths) and its first RING index."""
    ring = np.asarray(ring, np.int64)
    north, south = ring < nside, ring > 3 * nside
    cap = np.where(south, 4 * nside - ring, ring)  # ring number counted from the nearer pole
    in_cap = north | south
    depth = np.minimum(cap.astype(float) ** 2 / (3.0 * nside * nside), 1.0)  # 1 - |z| in a polar cap
    z = np.where(in_cap, np.where(north, 1.0 - depth, depth - 1.0), (2 * nside - ring) * (2.0 / (3 * nside)))
    sin_theta = np.where(in_cap, np.sqrt(depth * (2.0 - depth)), np.sqrt((1.0 - z) * (1.0 + z)))
    pixels = np.where(in_cap, 4 * cap, 4 * nside)
    offset = np.where(in_cap | ((ring + nside) % 2 == 0), 0.5, 0.0)
    first = np.where(north, 2 * cap * (cap - 1), np.where(
        south, 12 * nside * nside - 2 * cap * (cap + 1), 2 * nside * (nside - 1) + (ring - nside) * 4 * nside))
    return z, sin_theta, pixels, offset, first


def _ring_of_z(nside: int, z: np.ndarray) -> np.ndarray:
    """The (fractional) ring number at z = cos(theta)."""
    north_cap = nside * np.sqrt(3.0 * np.maximum(1.0 - z, 0.0))
    south_cap = 4 * nside - nside * np.sqrt(3.0 * np.maximum(1.0 + z, 0.0))
    return np.where(z > 2.0 / 3.0, north_cap, np.where(z < -2.0 / 3.0, south_cap, nside * (2.0 - 1.5 * z)))


@dataclass
class Runs:
    """Runs of consecutive pixels of one ring inside a disc: the disc of each run, the ring's
    z and sin(theta), the run's first pixel (position in the ring, 0 .. size - 1), its length,
    the ring's size and longitude offset, and the RING index of the ring's pixel 0."""

    disc: np.ndarray
    z: np.ndarray
    sin_theta: np.ndarray
    start: np.ndarray
    length: np.ndarray
    size: np.ndarray
    offset: np.ndarray
    ring_first: np.ndarray

    def cells(self) -> np.ndarray:
        """The position in its ring of every cell, runs one after the other."""
        before = np.cumsum(self.length) - self.length  # cells of the runs before each
        position = np.arange(before[-1] + self.length[-1] if self.length.size else 0)
        position -= np.repeat(before - self.start, self.length)
        wraps = np.flatnonzero(self.start + self.length > self.size)  # runs across longitude 0:
        tail = self.start[wraps] + self.length[wraps] - self.size[wraps]  # their last cells ...
        step = np.arange(tail.sum()) - np.repeat(np.cumsum(tail) - tail, tail)
        position[np.repeat(before[wraps] + self.length[wraps] - tail, tail) + step] = step  # ... from 0
        return position

    def run_of(self, cell: np.ndarray) -> np.ndarray:
        """The run of cells given by their index in :meth:`cells`."""
        return np.searchsorted(np.cumsum(self.length), cell, side="right")

    def take(self, keep: np.ndarray) -> Runs:
        """The runs selected by ``keep`` (a mask or indices), in order."""
        return Runs(*(getattr(self, name)[keep] for name in self.__dataclass_fields__))

    def longitude(self, run: np.ndarray, position: np.ndarray) -> np.ndarray:
        """Longitude (rad) of cells given as (run, position)."""
        return (position + self.offset[run]) * (2.0 * np.pi / self.size[run])


def disc_runs(nside: int, z0: np.ndarray, sin_theta0: np.ndarray, phi0: np.ndarray,
              radius: np.ndarray, rings: np.ndarray | None = None) -> Runs:
    """The pixels (order log2(nside)) whose centres lie within ``radius`` (rad) of each disc
    centre (z = cos(theta), sin(theta), longitude phi in rad), as runs, disc by disc and
    north to south within a disc; only on the rings where ``rings`` (a mask indexed by ring
    number) is true, if given."""
    theta0 = np.arctan2(sin_theta0, z0)
    top = _ring_of_z(nside, np.cos(np.clip(theta0 - radius, 0.0, np.pi)))
    bottom = _ring_of_z(nside, np.cos(np.clip(theta0 + radius, 0.0, np.pi)))
    first = np.clip(np.floor(top).astype(np.int64), 1, 4 * nside - 1)
    last = np.clip(np.ceil(bottom).astype(np.int64), 1, 4 * nside - 1)
    count = last - first + 1
    disc = np.repeat(np.arange(z0.size), count)
    ring = first[disc] + np.arange(disc.size) - np.repeat(np.cumsum(count) - count, count)
    if rings is not None:
        wanted = rings[ring]
        disc, ring = disc[wanted], ring[wanted]
    z, sin_theta, size, offset, ring_first = ring_geometry(nside, ring)
    cos_radius = np.cos(np.minimum(radius, np.pi))[disc]
    across = sin_theta0[disc] * sin_theta
    with np.errstate(divide="ignore", invalid="ignore"):
        cos_half_width = (cos_radius - z0[disc] * z) / across
    # a disc centred on a pole holds a ring whole or not at all
    cos_half_width = np.where(across > 0, cos_half_width,
                              np.where(z0[disc] * z >= cos_radius, -1.0, 2.0))
    half_width = np.arccos(np.clip(cos_half_width, -1.0, 1.0)) * size / (2.0 * np.pi)
    centre = phi0[disc] * size / (2.0 * np.pi) - offset
    start = np.ceil(centre - half_width).astype(np.int64)
    length = np.floor(centre + half_width).astype(np.int64) - start + 1
    length = np.where(cos_half_width > 1.0, 0, np.clip(length, 0, size))
    keep = length > 0
    return Runs(disc[keep], z[keep], sin_theta[keep], start[keep] % size[keep], length[keep],
                size[keep], offset[keep], ring_first[keep])
