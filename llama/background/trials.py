"""Background trials and signal injections (SCIENCE.md section 6).

A background trial is a GW sky map plus a neutrino list drawn from the background
model: Poisson(lambda) events whose (zenith, energy, sigma) are drawn together from
the background sample, RA uniform, times uniform in +-window.  A signal injection
draws a source position (and distance) from the GW map and adds Poisson(mu) neutrinos
scattered around it by their own sigma, with energies drawn from the signal spectrum
A(eps, theta_source) and times from the emission windows, on top of a background list.
Every draw comes from one numpy Generator: a trial is reproducible from its seed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from llama.io.background_sample import BackgroundSample
from llama.io.neutrinos import NeutrinoList
from llama.io.skymap_geometry import SkyMap
from llama.science import odds as odds_mod
from llama.science.searches import search as search_named

ENERGY_GRID_POINTS = 4001


@dataclass
class TrialGenerator:
    """Draws neutrino lists for one GW trigger; ``sample`` is a BackgroundSample."""

    model: odds_mod.SearchModel
    sample: object
    trigger: odds_mod.GwTrigger

    def __post_init__(self):
        p = self.model.params
        grid = np.logspace(np.log10(p.epsmin), np.log10(p.epsmax), ENERGY_GRID_POINTS)
        per_log_energy = self.model.energy_weight.band_values(grid) * grid[:, None]
        cdf = np.cumsum(per_log_energy, axis=0)
        self._energy_grid = grid
        self._energy_cdf = cdf / np.where(cdf[-1] > 0, cdf[-1], 1.0)

    def background(self, rng: np.random.Generator) -> NeutrinoList:
        """A background neutrino list: Poisson(lambda) scrambled events from the sample."""
        p = self.model.params
        n = rng.poisson(p.expected_background_neutrinos)
        pick = rng.integers(0, len(self.sample.zenith), size=n)
        zenith = np.asarray(self.sample.zenith, float)[pick]
        dt = rng.uniform(-p.window, p.window, size=n)
        return _neutrino_list(
            mjd=self.trigger.time_mjd + dt / 86400.0,
            ra=rng.uniform(0.0, 360.0, size=n),
            dec=zenith - 90.0,
            sigma=np.asarray(self.sample.sigma, float)[pick],
            energy=np.asarray(self.sample.energy, float)[pick],
            kind="blinded",
        )

    def signal(self, rng: np.random.Generator, skymap: SkyMap, mean_count: float) -> NeutrinoList:
        """Poisson(mean_count) signal neutrinos from a source drawn from ``skymap``."""
        p = self.model.params
        n = rng.poisson(mean_count)
        ra0, dec0, _ = skymap.sample_sources(rng, 1)
        sigma = np.asarray(self.sample.sigma, float)[
            rng.integers(0, len(self.sample.sigma), size=n)
        ]
        ra, dec = scatter_on_sphere(rng, float(ra0[0]), float(dec0[0]), sigma)
        band = int(self.model.energy_weight.band(np.asarray(dec0, float))[0])
        energy = np.interp(rng.uniform(size=n), self._energy_cdf[:, band], self._energy_grid)
        dt = rng.uniform(p.tnuminus, p.tnuplus, size=n) - rng.uniform(p.tgwminus, p.tgwplus, size=n)
        return _neutrino_list(
            self.trigger.time_mjd + dt / 86400.0, ra, dec, sigma, energy, "injected"
        )

    def trial(self, rng: np.random.Generator, skymap: SkyMap, signal_mean: float = 0.0) -> NeutrinoList:
        """One trial's neutrino list: background, plus signal when ``signal_mean`` > 0."""
        background = self.background(rng)
        if signal_mean <= 0:
            return background
        return NeutrinoList.concatenate([background, self.signal(rng, skymap, signal_mean)])


def scatter_on_sphere(
    rng: np.random.Generator, ra_deg: float, dec_deg: float, sigma_deg: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (deg) offset from (ra, dec) by a 2-D Gaussian of width sigma (deg) each."""
    sigma = np.asarray(sigma_deg, float)
    offset = np.radians(sigma * np.sqrt(-2.0 * np.log1p(-rng.uniform(size=sigma.size))))
    angle = rng.uniform(0.0, 2.0 * np.pi, size=sigma.size)
    ra0, dec0 = np.radians(ra_deg), np.radians(dec_deg)
    centre = odds_mod.unit_vectors(ra_deg, dec_deg)
    east = np.array([-np.sin(ra0), np.cos(ra0), 0.0])
    north = np.array([-np.sin(dec0) * np.cos(ra0), -np.sin(dec0) * np.sin(ra0), np.cos(dec0)])
    direction = np.cos(angle)[:, None] * north + np.sin(angle)[:, None] * east
    xyz = np.cos(offset)[:, None] * centre + np.sin(offset)[:, None] * direction
    ra = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(xyz[:, 2], -1.0, 1.0)))
    return ra, dec


def _neutrino_list(
    mjd: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    sigma: np.ndarray,
    energy: np.ndarray,
    kind: str,
) -> NeutrinoList:
    n = len(ra)
    return NeutrinoList(
        mjd=np.asarray(mjd, float),
        ra=np.asarray(ra, float),
        dec=np.asarray(dec, float),
        sigma=np.asarray(sigma, float),
        energy=np.asarray(energy, float),
        zenith=90.0 + np.asarray(dec, float),
        azimuth=np.full(n, np.nan),
        run=np.full(n, -1, np.int64),
        event=np.arange(n, dtype=np.int64),
        type=np.full(n, kind),
        source=f"simulated ({kind})",
    )


@dataclass
class TrialResults:
    """Columnar results, one row per trial; the p_h terms are NaN for the OPA search."""

    odds: np.ndarray
    n_neutrinos: np.ndarray
    seed: int | np.random.SeedSequence
    p_h_s1: np.ndarray
    p_h_0: np.ndarray
    p_h_c: np.ndarray

    def __len__(self) -> int:
        return self.odds.size


def run_trials(
    skymap: SkyMap,
    trigger: odds_mod.GwTrigger,
    model: odds_mod.SearchModel,
    sample: BackgroundSample,
    n_trials: int,
    seed: int | np.random.SeedSequence,
    search: str = "subthreshold",
    signal_mean: float = 0.0,
    progress: bool | None = None,
) -> TrialResults:
    """Odds of ``n_trials`` trials on one sky map, deterministic from ``seed``."""
    search_function = search_named(search).function
    generator = TrialGenerator(model, sample, trigger)
    rng = np.random.default_rng(seed)
    odds = np.empty(n_trials)
    counts = np.empty(n_trials, np.int64)
    terms = np.full((3, n_trials), np.nan)
    iterator = range(n_trials)
    if progress is None:
        progress = sys.stderr.isatty()
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc=f"{search} trials", unit="trial", leave=False)
    for k in iterator:
        neutrinos = generator.trial(rng, skymap, signal_mean)
        result = search_function(skymap, neutrinos, trigger, model)
        odds[k] = result.odds_ratio
        counts[k] = len(neutrinos)
        if search == "subthreshold":
            terms[:, k] = result.p_h_s1, result.p_h_0, result.p_h_c
    return TrialResults(odds, counts, seed, *terms)
