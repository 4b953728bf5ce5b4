"""Empirical background densities (SCIENCE.md section 3).

* ``NeutrinoBackgroundDensity``: P_emp,nu(theta, E) in sr^-1 GeV^-1 from a background
  sample of (zenith, energy), with the adaptive box widening of the LLAMA search.
  The widened box is reset for every neutrino (defect 2 of section 7).
* ``GwSnrBackground``: P_emp,gw(rho), the density of background-trigger network SNRs,
  from a list of SNRs (50-bin histogram) or a documented analytic default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike

from llama.errors import ConfigurationError, InputError
from llama.science.protocols import BackgroundSampleLike

MIN_COUNT = 5
"""Fewest background events a box may hold before it is widened."""
WIDEN_FACTOR = 1.5
HIGH_ZENITH_DEG = 80.0
"""Above this zenith (up-going and horizontal events) the spectral extrapolation g applies."""
SPECTRAL_INDEX = 3.7
"""Index of the atmospheric spectrum used to extrapolate to energies above the sample."""
MAX_WIDENINGS = 60


@dataclass
class NeutrinoBackgroundDensity:
    """P_emp,nu(theta, E) from a background sample; zenith in deg, energy in GeV."""

    zenith: np.ndarray  # sorted ascending, deg
    energy: np.ndarray  # GeV, same order
    delta_omega: float = 2.5  # initial angular half-width, deg
    delta_e: float = 0.3  # initial fractional energy half-width
    description: str = ""

    def __post_init__(self):
        self.zenith = np.asarray(self.zenith, float)
        self.energy = np.asarray(self.energy, float)
        if self.zenith.size < MIN_COUNT or self.zenith.shape != self.energy.shape:
            raise InputError(
                f"neutrino background sample needs >= {MIN_COUNT} events with zenith and energy"
            )
        if np.any(np.diff(self.zenith) < 0):
            order = np.argsort(self.zenith, kind="stable")
            self.zenith, self.energy = self.zenith[order], self.energy[order]
        self.median_energy = float(np.median(self.energy))

    @classmethod
    def from_sample(cls, sample: BackgroundSampleLike, delta_omega: float, delta_e: float) -> NeutrinoBackgroundDensity:
        """Build from a llama.io.background_sample.BackgroundSample."""
        return cls(
            sample.zenith,
            sample.energy,
            delta_omega,
            delta_e,
            description=sample.meta.get("description", "") if sample.meta else "",
        )

    def energy_range(self, theta: ArrayLike) -> np.ndarray:
        """(min, max) background energy (GeV) within the initial delta_omega of each zenith
        theta (deg), shape (n, 2); the whole sample's range where that band is empty."""
        theta = np.atleast_1d(np.asarray(theta, float))
        lo, hi = self._band_bounds(theta, np.full(theta.size, self.delta_omega))
        empty = hi <= lo
        low = np.where(empty, self.energy.min(), self._index.range_min(lo, hi))
        high = np.where(empty, self.energy.max(), self._index.range_max(lo, hi))
        return np.stack([low, high], axis=1)

    @cached_property
    def _index(self) -> _BoxIndex:
        return _BoxIndex(self.energy)

    def _band_bounds(self, theta: np.ndarray, half_width: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row range [lo, hi) of the events with |theta_bg - theta| < half_width."""
        lo = np.searchsorted(self.zenith, theta - half_width, side="right")
        hi = np.searchsorted(self.zenith, theta + half_width, side="left")
        return lo, np.maximum(hi, lo)

    def __call__(self, zenith_deg: ArrayLike, energy_gev: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Arrays (P_emp [sr^-1 GeV^-1], energy for A [GeV]), one entry per neutrino.

        The box of each neutrino starts at (delta_omega, delta_e) around (theta, max(E, the
        lowest background energy in the first band)); while it holds fewer than MIN_COUNT
        events both widths grow by WIDEN_FACTOR and the energy moves a decade toward the
        sample's median (SCIENCE.md section 3). All neutrinos are widened together.
        """
        theta = np.atleast_1d(np.asarray(zenith_deg, float))
        energy0 = np.atleast_1d(np.asarray(energy_gev, float))
        if theta.shape != energy0.shape:
            raise InputError("zenith and energy arrays differ in length")
        d_omega = np.full(theta.size, float(self.delta_omega))
        d_e = np.full(theta.size, float(self.delta_e))
        lo, hi = self._band_bounds(theta, d_omega)
        energy = np.where(hi > lo, np.maximum(energy0, self._index.range_min(lo, hi)), energy0)
        count = self._index.count(lo, hi, energy, d_e)
        for step in range(MAX_WIDENINGS):
            widen = np.flatnonzero(count < MIN_COUNT)
            if not widen.size:
                break
            if step == MAX_WIDENINGS - 1:
                raise InputError("neutrino background sample too sparse: box widening did not converge")
            d_omega[widen] *= WIDEN_FACTOR
            d_e[widen] *= WIDEN_FACTOR
            e = energy[widen]
            # a full decade toward the median, never shortened to stop at it (SCIENCE.md 3)
            energy[widen] = np.where(e > self.median_energy, e / 10.0,
                                     np.where(e < self.median_energy, e * 10.0, e))
            lo, hi = self._band_bounds(theta[widen], d_omega[widen])
            count[widen] = self._index.count(lo, hi, energy[widen], d_e[widen])
        extrapolate = (theta > HIGH_ZENITH_DEG) & (energy0 > energy)
        g = np.where(extrapolate, (energy0 / energy) ** SPECTRAL_INDEX, 1.0)
        energy = np.where(extrapolate, energy0, energy)
        t, w = np.radians(theta), np.radians(d_omega)
        solid_angle = 2.0 * math.pi * np.abs(np.cos(t - w) - np.cos(t + w))
        density = count / (self.zenith.size * solid_angle * 2.0 * d_e * energy) / g
        return density, energy


class _BoxIndex:
    """Counts and extrema of a background sample's energies over row ranges (rows in zenith
    order), for many ranges at once: no Python step per neutrino.

    Counting the events of rows [lo, hi) with |E - e| < d e uses the energies' ranks. A few
    boxes (at most DIRECT_ROWS rows in all: an event's neutrinos) are counted row by row; many
    (background trials) through a table, built on first need (about 40 MB for the packaged
    sample): the count of rows < i with rank < r is a lookup at the last block boundary
    (blocks of BLOCK rows) plus the rest of the block. Extrema use sparse tables (log2 n
    levels).
    """

    BLOCK = 128
    DIRECT_ROWS = 2_000_000

    def __init__(self, energy: np.ndarray):
        n = energy.size
        self.sorted = np.sort(energy)
        self.rank = np.searchsorted(self.sorted, energy, side="left").astype(np.int32)
        self.minima, self.maxima = [energy], [energy]
        width = 1
        while 2 * width <= n:
            self.minima.append(np.minimum(self.minima[-1][:-width], self.minima[-1][width:]))
            self.maxima.append(np.maximum(self.maxima[-1][:-width], self.maxima[-1][width:]))
            width *= 2

    @cached_property
    def block_rank(self) -> np.ndarray:
        """Ranks in blocks of BLOCK rows, (blocks, BLOCK), padded with rank n."""
        n = self.rank.size
        padded = np.full(-(-n // self.BLOCK) * self.BLOCK, n, np.int32)  # never below a bound
        padded[:n] = self.rank
        return padded.reshape(-1, self.BLOCK)

    @cached_property
    def before(self) -> np.ndarray:
        """[k, r]: rows before row k * BLOCK with rank below r, (blocks + 1, n + 1)."""
        n = self.rank.size
        counts = np.zeros((self.block_rank.shape[0] + 1, n + 1), np.int32)
        np.add.at(counts, (np.arange(n) // self.BLOCK + 1, self.rank + 1), 1)
        return counts.cumsum(axis=0, dtype=np.int32).cumsum(axis=1, dtype=np.int32)

    def _below(self, row: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Number of rows before ``row`` whose energy rank is in [low, high)."""
        block, offset = np.divmod(row, self.BLOCK)
        full = self.before[block, high] - self.before[block, low]
        inside = self.block_rank[np.minimum(block, self.block_rank.shape[0] - 1)]
        inside = np.where(np.arange(self.BLOCK) < offset[:, None], inside, -1)
        rest = (inside >= low[:, None]) & (inside < high[:, None])
        return full + rest.sum(axis=1)

    def count(self, lo: np.ndarray, hi: np.ndarray, energy: np.ndarray, d_e: np.ndarray) -> np.ndarray:
        """Events of rows [lo, hi) with energy - d_e energy < E < energy + d_e energy."""
        low = np.searchsorted(self.sorted, energy - d_e * energy, side="right")
        high = np.maximum(np.searchsorted(self.sorted, energy + d_e * energy, side="left"), low)
        lengths = hi - lo
        if lengths.sum() > self.DIRECT_ROWS:
            return self._below(hi, low, high) - self._below(lo, low, high)
        box = np.repeat(np.arange(lo.size), lengths)
        rows = np.arange(box.size) - np.repeat(np.cumsum(lengths) - lengths - lo, lengths)
        inside = (self.rank[rows] >= low[box]) & (self.rank[rows] < high[box])
        return np.bincount(box[inside], minlength=lo.size)

    def _extreme(self, levels: list[np.ndarray], pick, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        out = np.full(lo.size, np.nan)
        level = np.log2(np.maximum(hi - lo, 1)).astype(np.int64)
        for k in np.unique(level[hi > lo]):  # at most log2(n) levels
            rows = (level == k) & (hi > lo)
            table = levels[k]
            out[rows] = pick(table[lo[rows]], table[hi[rows] - (1 << int(k))])
        return out

    def range_min(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Smallest energy of rows [lo, hi); NaN where the range is empty."""
        return self._extreme(self.minima, np.minimum, lo, hi)

    def range_max(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Largest energy of rows [lo, hi); NaN where the range is empty."""
        return self._extreme(self.maxima, np.maximum, lo, hi)


@dataclass
class GwSnrBackground:
    """P_emp,gw(rho), density of background-trigger network SNR (per unit SNR).

    From a list of background SNRs: a 50-bin histogram over [min, max]; rho above the top
    falls in the last bin; the density is max(count, 1) / (N * bin width).
    Without a list: the analytic default for Gaussian noise above threshold,
    p(rho) = rho exp(-(rho^2 - rhomin^2) / 2) for rho >= rhomin (normalised to 1), evaluated
    at max(rho, rhomin).
    """

    snrs: np.ndarray | None = None
    rhomin: float = 5.59
    n_bins: int = 50
    description: str = ""

    def __post_init__(self):
        if self.snrs is None:
            self.description = (
                "analytic default: Gaussian-noise tail rho*exp(-(rho^2-rhomin^2)/2) above rhomin"
            )
            return
        self.snrs = np.asarray(self.snrs, float)
        if self.snrs.size < 2 or not np.all(np.isfinite(self.snrs)) or np.ptp(self.snrs) <= 0:
            raise InputError("GW background SNR list needs >= 2 finite, distinct values")
        self.counts, self.edges = np.histogram(self.snrs, bins=self.n_bins)
        self.description = self.description or f"histogram of {self.snrs.size} background SNRs"

    def __call__(self, rho: float) -> float:
        """Density at network SNR rho, per unit SNR."""
        if not math.isfinite(rho) or rho <= 0:
            raise ConfigurationError(f"GW network SNR must be a positive number, got {rho}")
        if self.snrs is None:
            r = max(rho, self.rhomin)
            return r * math.exp(-(r * r - self.rhomin**2) / 2.0)
        width = self.edges[1] - self.edges[0]
        index = int(np.clip(np.searchsorted(self.edges, rho, side="right") - 1, 0, self.n_bins - 1))
        count = self.counts[index] if rho >= self.edges[0] else 0
        return max(int(count), 1) / (self.snrs.size * width)
