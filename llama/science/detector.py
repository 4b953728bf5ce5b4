"""IceCube detector response: energy/angle weight A(eps, theta) and zenith weights w(theta).

Pure numpy: the tables are read by llama.io.tables and passed in.

A(eps, theta) is a per-GeV probability density of the detected energy eps of a
signal neutrino arriving from declination dec (theta = 90 deg + dec), tabulated
in declination bands. Two models (SCIENCE.md section 3):

* ``O3Table``: the LLAMA O3 piecewise log-linear table (``data/aeff_lookup.csv``),
  19 bands of 10 deg in theta, zero at and above 1e8 GeV.
* ``PublicEffectiveArea``: the IceCube 10-year point-source release muon-neutrino
  effective area A_eff(E_nu, dec) folded with an E^-2 flux and normalised per
  declination bin over [epsmin, epsmax]:  A(eps, dec) = A_eff(eps, dec) eps^-2 /
  integral(A_eff eps^-2 d eps).  It identifies the reconstructed energy with the
  neutrino energy (a documented approximation) and is zero outside the tabulated
  energies (1e2..1e10 GeV) and [epsmin, epsmax].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from llama.errors import InputError

EDGE_EPSILON_DEG = 1e-9
"""Offset (deg) from a band edge that tells the bands on either side apart."""


class EnergyAngleWeight:
    """A(eps, theta) in GeV^-1, tabulated in declination bands."""

    name: str
    description: str

    def band(self, dec_deg: np.ndarray) -> np.ndarray:
        """Band index of each declination (deg)."""
        raise NotImplementedError

    @property
    def band_edges_dec(self) -> np.ndarray:
        """Declinations (deg, ascending) where the band changes."""
        raise NotImplementedError

    def pixel_bands(
        self, dec_deg: np.ndarray, area_sr: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(band below, band above, area share below) of the nearest band edge for pixels
        centred at dec (deg) with the given areas (sr).

        A pixel (taken as a square of side sqrt(area)) that straddles an edge is shared between
        the two bands in proportion to its height on each side, so that a sky sum of A over
        coarse pixels agrees with the same sum over a fine grid; a pixel clear of every edge has
        share 1 or 0 and gets the band of its centre.
        """
        dec = np.asarray(dec_deg, float)
        edges = np.asarray(self.band_edges_dec, float)
        k = np.clip(np.searchsorted(edges, dec), 1, edges.size - 1)
        nearest = np.where(dec - edges[k - 1] < edges[k] - dec, k - 1, k)
        edge = edges[nearest]
        half_height = np.degrees(np.sqrt(np.asarray(area_sr, float))) / 2.0
        share = np.clip(0.5 + (edge - dec) / (2.0 * half_height), 0.0, 1.0)
        below, above = self.band(edges - EDGE_EPSILON_DEG), self.band(edges + EDGE_EPSILON_DEG)
        return below[nearest], above[nearest], share

    def band_values(self, energy_gev: np.ndarray) -> np.ndarray:
        """A for each energy (GeV) in every band: shape (n_energies, n_bands), GeV^-1."""
        raise NotImplementedError

    def interval_bands(self) -> np.ndarray:
        """Band index of each declination interval: below the first edge, between consecutive
        edges, above the last (``band_edges_dec.size + 1`` entries)."""
        edges = np.asarray(self.band_edges_dec, float)
        middle = np.concatenate([[edges[0] - 1.0], (edges[:-1] + edges[1:]) / 2, [edges[-1] + 1.0]])
        return self.band(middle)

    def __call__(self, energy_gev: ArrayLike, dec_deg: ArrayLike) -> np.ndarray:
        """A(eps, dec) element-wise for broadcastable energy (GeV) and dec (deg) arrays."""
        energy, dec = np.broadcast_arrays(np.asarray(energy_gev, float), np.asarray(dec_deg, float))
        values = self.band_values(energy.ravel())
        return values[np.arange(energy.size), self.band(dec.ravel())].reshape(energy.shape)


@dataclass
class O3Table(EnergyAngleWeight):
    """The LLAMA O3 energy/angle weight table (19 theta bands x 12 energy keys)."""

    log10_factor: np.ndarray  # (12 energy keys k=4..15, 19 bands)
    slope: np.ndarray  # same shape
    name: str = "o3-table"
    description: str = "LLAMA O3 energy/angle weight table (aeff_lookup.csv)"

    N_BANDS = 19
    FIRST_KEY = 4
    LAST_KEY = 15

    @classmethod
    def from_rows(cls, rows: list[dict[str, str]], source: str = "energy/angle table") -> O3Table:
        """Build from the rows of ``aeff_lookup.csv`` (energy_key, angle_index, log10_factor,
        slope); ``source`` names the table in errors."""
        try:
            keys = np.array([r["energy_key"].strip() for r in rows])
            numeric = keys != "high_e"
            k = keys[numeric].astype(int) - cls.FIRST_KEY
            i = np.array([int(r["angle_index"]) for r in rows])[numeric]
            factors = np.array([float(r["log10_factor"]) for r in rows])[numeric]
            slopes = np.array([float(r["slope"]) for r in rows])[numeric]
        except (KeyError, ValueError, TypeError, AttributeError) as err:
            raise InputError(f"{source}: malformed energy/angle table: {err}") from None
        n_keys = cls.LAST_KEY - cls.FIRST_KEY + 1
        factor = np.full((n_keys, cls.N_BANDS), -15.0)
        slope = np.zeros((n_keys, cls.N_BANDS))
        factor[k, i] = factors
        slope[k, i] = slopes
        return cls(factor, slope)

    @property
    def band_edges_dec(self) -> np.ndarray:
        return np.arange(10.0, 180.0, 10.0) - 90.0  # theta = 10, 20, ..., 170 deg

    def band(self, dec_deg: ArrayLike) -> np.ndarray:
        theta = 90.0 + np.asarray(dec_deg, float)
        return np.clip(np.floor(theta / 10.0).astype(np.int64), 0, self.N_BANDS - 1)

    def band_values(self, energy_gev: ArrayLike) -> np.ndarray:
        log_e = np.log10(np.asarray(energy_gev, float))
        key = np.clip(np.floor(2.0 * log_e), self.FIRST_KEY, self.LAST_KEY).astype(np.int64)
        row = key - self.FIRST_KEY
        factor = self.log10_factor[row]  # (n, 19)
        exponent = factor + (log_e - (key + 1) / 2.0 + 0.5)[:, None] * 2.0 * self.slope[row]
        values = np.where(factor <= -15.0, 0.0, 10.0**exponent)
        values[log_e >= 8.0] = 0.0
        return values


@dataclass
class PublicEffectiveArea(EnergyAngleWeight):
    """A(eps, dec) from a public IceCube effective-area table folded with E^-2 (see module doc)."""

    log_e_edges: np.ndarray  # (n_e + 1,) log10(E/GeV)
    dec_edges: np.ndarray  # (n_dec + 1,) deg, ascending
    density: (
        np.ndarray
    )  # (n_e, n_dec): A_eff E^-2 / norm at unit energy, GeV^-1 (times E^-2 applied later)
    name: str = "public-aeff"
    description: str = ""

    @classmethod
    def from_table(
        cls, table: np.ndarray, epsmin: float, epsmax: float, source: str = "effective area"
    ) -> PublicEffectiveArea:
        """Build from a release effective-area table: rows of (log10 Emin/GeV, log10 Emax/GeV,
        dec min, dec max (deg), A_eff (cm^2)), normalised over [epsmin, epsmax] GeV."""
        log_e_edges = np.unique(np.concatenate([table[:, 0], table[:, 1]]))
        dec_edges = np.unique(np.concatenate([table[:, 2], table[:, 3]]))
        aeff = np.zeros((log_e_edges.size - 1, dec_edges.size - 1))
        ie = np.searchsorted(log_e_edges, table[:, 0])
        idec = np.searchsorted(dec_edges, table[:, 2])
        aeff[ie, idec] = table[:, 4]
        # integral of eps^-2 over each energy bin clipped to [epsmin, epsmax], GeV^-1
        lo = np.clip(10.0 ** log_e_edges[:-1], epsmin, epsmax)
        hi = np.clip(10.0 ** log_e_edges[1:], epsmin, epsmax)
        norm = (aeff * (1.0 / lo - 1.0 / hi)[:, None]).sum(axis=0)
        if np.any(norm <= 0):
            raise InputError(
                f"{source}: a declination bin has no effective area in [epsmin, epsmax]"
            )
        model = cls(log_e_edges, dec_edges, aeff / norm)
        model.epsmin, model.epsmax = epsmin, epsmax
        model.description = f"public IceCube effective area {source} x E^-2"
        return model

    @property
    def band_edges_dec(self) -> np.ndarray:
        return self.dec_edges[1:-1]

    def band(self, dec_deg: ArrayLike) -> np.ndarray:
        idx = np.searchsorted(self.dec_edges, np.asarray(dec_deg, float), side="right") - 1
        return np.clip(idx, 0, self.dec_edges.size - 2)

    def band_values(self, energy_gev: ArrayLike) -> np.ndarray:
        energy = np.asarray(energy_gev, float)
        ie = np.searchsorted(self.log_e_edges, np.log10(energy), side="right") - 1
        inside = (ie >= 0) & (ie < self.log_e_edges.size - 1)
        inside &= (energy >= self.epsmin) & (energy <= self.epsmax)
        values = np.zeros((energy.size, self.dec_edges.size - 1))
        values[inside] = self.density[ie[inside]] / energy[inside, None] ** 2
        return values


@dataclass
class ZenithWeights:
    """Relative signal-neutrino occurrence per 5-deg IceCube zenith band (zenith_weights.csv)."""

    weights: np.ndarray  # (36,)

    @classmethod
    def from_rows(cls, rows: list[dict[str, str]], source: str = "zenith weights") -> ZenithWeights:
        """Build from the rows of ``zenith_weights.csv`` (zenith_min_deg, weight)."""
        try:
            table = np.array([[float(r["zenith_min_deg"]), float(r["weight"])] for r in rows])
        except (KeyError, ValueError, TypeError) as err:
            raise InputError(f"{source}: malformed zenith weights: {err}") from None
        return cls(np.asarray(table[:, 1], float))

    def __call__(self, zenith_deg: ArrayLike) -> np.ndarray:
        """w for one zenith angle per neutrino, index floor(zenith / 5 deg)."""
        idx = np.floor(np.asarray(zenith_deg, float) / 5.0).astype(np.int64)
        return self.weights[np.clip(idx, 0, self.weights.size - 1)]

    def pair(self, zenith1_deg: ArrayLike, zenith2_deg: ArrayLike) -> np.ndarray:
        """w for a neutrino pair, index floor((theta1 + theta2) / 10 deg)."""
        idx = np.floor((np.asarray(zenith1_deg, float) + np.asarray(zenith2_deg, float)) / 10.0)
        return self.weights[np.clip(idx.astype(np.int64), 0, self.weights.size - 1)]


@dataclass
class EffectiveArea:
    """A public IceCube muon-neutrino effective area A_eff(E_nu, dec_nu) in cm^2, in bins of
    true neutrino energy (log10 E/GeV) and true declination (deg), not normalised."""

    log_e_edges: np.ndarray  # (n_e + 1,) log10(E/GeV), ascending
    dec_edges: np.ndarray  # (n_dec + 1,) deg, ascending
    aeff_cm2: np.ndarray  # (n_e, n_dec) cm^2

    @classmethod
    def from_table(cls, table: np.ndarray) -> EffectiveArea:
        """Build from a release table: rows of (log10 Emin/GeV, log10 Emax/GeV, dec min,
        dec max (deg), A_eff (cm^2))."""
        log_e_edges = np.unique(np.concatenate([table[:, 0], table[:, 1]]))
        dec_edges = np.unique(np.concatenate([table[:, 2], table[:, 3]]))
        aeff = np.zeros((log_e_edges.size - 1, dec_edges.size - 1))
        aeff[np.searchsorted(log_e_edges, table[:, 0]), np.searchsorted(dec_edges, table[:, 2])] = (
            table[:, 4]
        )
        return cls(log_e_edges, dec_edges, aeff)

    def dec_bin(self, dec_deg: ArrayLike) -> np.ndarray:
        """Declination bin of each dec (deg); -90 and +90 fall in the first and last bin."""
        idx = np.searchsorted(self.dec_edges, np.asarray(dec_deg, float), side="right") - 1
        return np.clip(idx, 0, self.dec_edges.size - 2)

    def e2_counts(self) -> np.ndarray:
        """Expected events per energy bin and declination bin for the time-integrated flux
        dN/dE = E^-2 GeV^-1 cm^-2 (E^2 dN/dE = 1 GeV cm^-2): A_eff x (1/E_lo - 1/E_hi),
        shape (n_e, n_dec)."""
        energy = 10.0**self.log_e_edges
        return self.aeff_cm2 * (1.0 / energy[:-1] - 1.0 / energy[1:])[:, None]

    def e2_fluence_limit(self, dec_deg: ArrayLike, n_events: float) -> np.ndarray:
        """E^2 dN/dE (GeV cm^-2) of a time-integrated E^-2 flux that gives ``n_events``
        expected events from each declination (deg); inf where the table has no area."""
        total = self.e2_counts().sum(axis=0)[self.dec_bin(dec_deg)]
        with np.errstate(divide="ignore"):
            return n_events / total

    def e2_energy_quantiles(self, dec_deg: float, quantiles: ArrayLike) -> np.ndarray:
        """True neutrino energies (GeV) at the given quantiles of the detected events of an
        E^-2 flux from ``dec_deg``; exact within each bin, where A_eff is constant and the
        cumulative count grows as 1/E_lo - 1/E."""
        column = int(self.dec_bin(dec_deg))
        counts = self.e2_counts()[:, column]
        cumulative = np.concatenate([[0.0], np.cumsum(counts)])
        if not cumulative[-1] > 0:
            raise InputError(f"the effective area has no events from dec {dec_deg} deg")
        target = np.asarray(quantiles, float) * cumulative[-1]
        filled = np.flatnonzero(counts > 0)  # the bin of a quantile: first filled one reaching it
        k = filled[np.minimum(np.searchsorted(cumulative[1:][filled], target), filled.size - 1)]
        inverse_lo = 10.0 ** -self.log_e_edges[k]
        return 1.0 / (inverse_lo - (target - cumulative[k]) / self.aeff_cm2[k, column])
