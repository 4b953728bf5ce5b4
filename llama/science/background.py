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

    def energy_range(self, theta: float) -> tuple[float, float]:
        """(min, max) background energy (GeV) within the initial delta_omega of zenith theta
        (deg); the whole sample's range when that band is empty."""
        band = self._band(theta, self.delta_omega)
        band = band if band.size else self.energy
        return float(band.min()), float(band.max())

    def _band(self, theta: float, half_width: float) -> np.ndarray:
        """Energies of background events with |theta_bg - theta| < half_width."""
        lo = np.searchsorted(self.zenith, theta - half_width, side="right")
        hi = np.searchsorted(self.zenith, theta + half_width, side="left")
        return self.energy[lo:hi]

    def one(self, theta: float, energy0: float) -> tuple[float, float]:
        """(P_emp in sr^-1 GeV^-1, the energy in GeV to use in A) for one neutrino."""
        d_omega, d_e = self.delta_omega, self.delta_e
        band = self._band(theta, d_omega)
        energy = max(energy0, float(band.min())) if band.size else energy0
        count = int(np.count_nonzero(np.abs(band - energy) < d_e * energy))
        for _ in range(MAX_WIDENINGS):
            if count >= MIN_COUNT:
                break
            d_omega *= WIDEN_FACTOR
            d_e *= WIDEN_FACTOR
            # a full decade toward the median, never shortened to stop at it (SCIENCE.md 3)
            if energy > self.median_energy:
                energy /= 10.0
            elif energy < self.median_energy:
                energy *= 10.0
            band = self._band(theta, d_omega)
            count = int(np.count_nonzero(np.abs(band - energy) < d_e * energy))
        else:
            raise InputError("neutrino background sample too sparse: box widening did not converge")
        g = 1.0
        if theta > HIGH_ZENITH_DEG and energy0 > energy:
            g = (energy0 / energy) ** SPECTRAL_INDEX
            energy = energy0
        t, w = math.radians(theta), math.radians(d_omega)
        solid_angle = 2.0 * math.pi * abs(math.cos(t - w) - math.cos(t + w))
        density = count / (self.zenith.size * solid_angle * 2.0 * d_e * energy) / g
        return density, energy

    def __call__(self, zenith_deg: ArrayLike, energy_gev: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Arrays (P_emp [sr^-1 GeV^-1], energy for A [GeV]), one entry per neutrino."""
        zenith = np.atleast_1d(np.asarray(zenith_deg, float))
        energy = np.atleast_1d(np.asarray(energy_gev, float))
        out = np.empty((2, zenith.size))
        for i, (theta, e0) in enumerate(zip(zenith, energy, strict=True)):
            out[:, i] = self.one(float(theta), float(e0))
        return out[0], out[1]


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
