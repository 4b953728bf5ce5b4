"""Detection efficiency of signal injections (SCIENCE.md section 6) and the neutrino emission
energy an injected signal count stands for. Pure numpy/scipy: p-values and map pixels are
passed in.

An injection trial adds Poisson(mu) signal neutrinos to a background list. It is *detected*
at level alpha when its p-value against the background population is <= alpha (the test of
size alpha: under the null P(p <= alpha) <= alpha). The efficiency at mu is the detected
fraction k / n, with a Clopper-Pearson (exact binomial) interval.

Emission energy. The search's signal model (SCIENCE.md section 3) expects
``mu(E, r, theta) = nu_51_100 * 10 E (r / 100 Mpc)^-2 w(theta)`` detected neutrinos from a
source at distance r (Mpc) and IceCube zenith theta = 90 deg + dec that emits the
isotropic-equivalent energy E in neutrinos (code units of
:data:`~llama.science.parameters.ERG_PER_ENERGY_UNIT` erg; ``10 E`` is E in ~1e51 erg). The
injections draw each source's position and distance from the GW map's 3-D posterior but give
every trial the same mean mu, so the energy of an injection is defined on average over that
posterior: ``E_iso = mu / c`` with ``c = nu_51_100 * 10 * (100 Mpc)^2 <w(theta) r^-2>``, the
energy at which a source drawn from the map yields mu detected neutrinos on average.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from llama.science.parameters import ERG_PER_ENERGY_UNIT, SearchParameters

#: Default confidence of the efficiency intervals: 1 sigma (68.27%).
ONE_SIGMA = math.erf(1.0 / math.sqrt(2.0))


@dataclass(frozen=True)
class Efficiency:
    """Detected fractions per (threshold, mu): arrays of shape (thresholds, mu values)."""

    thresholds: np.ndarray  # p-value thresholds alpha, ascending
    mu: np.ndarray  # injected mean signal neutrinos, ascending
    n_trials: np.ndarray  # injection trials per mu
    n_detected: np.ndarray  # trials with p <= alpha, (thresholds, mu)
    low: np.ndarray  # Clopper-Pearson interval, (thresholds, mu)
    high: np.ndarray
    confidence: float  # of the interval

    @property
    def efficiency(self) -> np.ndarray:
        """n_detected / n_trials, (thresholds, mu)."""
        return self.n_detected / self.n_trials


def clopper_pearson(k: ArrayLike, n: ArrayLike, confidence: float = ONE_SIGMA
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Exact binomial interval (lower, upper) of the fraction k / n at ``confidence``."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    tail = (1.0 - confidence) / 2.0
    with np.errstate(invalid="ignore"):
        low = np.where(k > 0, special.betaincinv(k, n - k + 1, tail), 0.0)
        high = np.where(k < n, special.betaincinv(k + 1, n - k, 1.0 - tail), 1.0)
    return low, high


def efficiency(p: ArrayLike, mu: ArrayLike, thresholds: ArrayLike,
               confidence: float = ONE_SIGMA) -> Efficiency:
    """Detection efficiency of injection trials with p-values ``p`` and injected means ``mu``
    (one entry per trial) at every threshold (trial detected when p <= threshold)."""
    p, mu = np.asarray(p, float), np.asarray(mu, float)
    thresholds = np.unique(np.asarray(thresholds, float))
    levels, index = np.unique(mu, return_inverse=True)
    n_trials = np.bincount(index, minlength=levels.size)
    hit = p[None, :] <= thresholds[:, None]
    cell = np.arange(thresholds.size)[:, None] * levels.size + index[None, :]
    n_detected = np.bincount(cell[hit], minlength=thresholds.size * levels.size)
    n_detected = n_detected.reshape(thresholds.size, levels.size)
    low, high = clopper_pearson(n_detected, n_trials[None, :], confidence)
    return Efficiency(thresholds, levels, n_trials, n_detected, low, high, confidence)


def mu_at_efficiency(eff: Efficiency, level: float = 0.9) -> np.ndarray:
    """Per threshold, the mu at which the efficiency first reaches ``level``, interpolated
    linearly in log mu between the two measured points around the crossing (the mu of the
    first point when it already reaches it); NaN where no point reaches it."""
    values = eff.efficiency
    reached = values >= level
    first = np.argmax(reached, axis=1)
    out = np.full(eff.thresholds.size, np.nan)
    rows = np.flatnonzero(reached.any(axis=1))
    after, before = first[rows], np.maximum(first[rows] - 1, 0)
    e_hi, e_lo = values[rows, after], values[rows, before]
    log_hi, log_lo = np.log(eff.mu[after]), np.log(eff.mu[before])
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(after > 0, (level - e_lo) / (e_hi - e_lo), 1.0)
    out[rows] = np.exp(log_lo + np.clip(fraction, 0.0, 1.0) * (log_hi - log_lo))
    return out


def neutrinos_per_erg(prob: ArrayLike, zenith_weight: ArrayLike, mean_inverse_square_mpc: ArrayLike,
                      params: SearchParameters) -> float:
    """c of the module docstring in erg^-1: detected signal neutrinos per erg of isotropic
    neutrino emission from a source drawn from the map. Per pixel: probability ``prob``
    (renormalised here), the zenith weight w(90 deg + dec) and <r^-2> (Mpc^-2) of the pixel's
    distance posterior."""
    prob = np.asarray(prob, float)
    mean = np.sum(prob * np.asarray(zenith_weight, float) * np.asarray(mean_inverse_square_mpc,
                                                                        float)) / prob.sum()
    return float(params.nu_51_100 * 10.0 * 100.0**2 * mean / ERG_PER_ENERGY_UNIT)
