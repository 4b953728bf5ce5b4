"""Background trials and signal injections (SCIENCE.md section 6), many trials at a time.

A background trial is a GW sky map plus a neutrino list drawn from the background
model: Poisson(lambda) events whose (zenith, energy, sigma) are drawn together from
the background sample, RA uniform, times uniform in +-window.  A signal injection
draws a source position from the GW map and adds Poisson(mu) neutrinos scattered around
it by their own sigma, with energies drawn from the signal spectrum A(eps, theta_source)
and times from the emission windows, on top of a background list.

Trials are drawn and evaluated in batches (TRIALS_PER_BATCH lists at once, every neutrino
of the batch in one call of llama.science.odds.neutrino_terms), never one Python step per
trial; each trial's odds are exactly those `llama significance` gives for its list (exact
mode; fast mode interpolates the map smoothed once by the PSFs, llama.background.fast).
Every draw comes from one numpy Generator: a run is reproducible from its seed, and the same
seed gives the same trials in both modes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from llama.errors import ConfigurationError
from llama.io.background_sample import BackgroundSample
from llama.io.neutrinos import NeutrinoList
from llama.io.skymap_geometry import SkyMap
from llama.science import odds as odds_mod
from llama.science.searches import search as search_named
from llama.science.skysums import normalised_sums

ENERGY_GRID_POINTS = 4001
TRIALS_PER_BATCH = 1000
"""Trials are drawn this many at a time (the random streams depend on it) ..."""
BATCHES_PER_EVALUATION = 8
"""... and, in fast mode, evaluated this many batches at once (the results do not depend on
it; fewer, larger numpy calls: 1.5x faster. Exact mode's cost is per sky cell, and it runs
4% slower so grouped)."""
MODES = ("exact", "fast")
"""exact: the sky sums of `llama significance`; fast: llama.background.fast.SmoothedSky."""


@dataclass
class TrialBatch:
    """The neutrinos of ``n_trials`` lists, sorted by trial (``trial``), as arrays. ``pick`` is
    the background-sample row of each neutrino (-1 for injected signal neutrinos)."""

    n_trials: int
    trial: np.ndarray
    pick: np.ndarray
    mjd: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    sigma: np.ndarray
    energy: np.ndarray
    zenith: np.ndarray

    def __len__(self) -> int:
        return self.trial.size

    @classmethod
    def concatenate(cls, batches: list[TrialBatch]) -> TrialBatch:
        """One batch of the trials of ``batches``, in order."""
        if len(batches) == 1:  # exact mode: nothing to copy
            return batches[0]
        offsets = np.cumsum([0] + [b.n_trials for b in batches[:-1]])
        columns = {name: np.concatenate([getattr(b, name) for b in batches])
                   for name in ("pick", "mjd", "ra", "dec", "sigma", "energy", "zenith")}
        trial = np.concatenate([b.trial + offset for b, offset in zip(batches, offsets, strict=True)])
        return cls(n_trials=sum(b.n_trials for b in batches), trial=trial, **columns)

    def counts(self) -> np.ndarray:
        """Number of neutrinos of every trial."""
        return np.bincount(self.trial, minlength=self.n_trials)

    def neutrino_list(self, trial: int) -> NeutrinoList:
        """Trial ``trial`` as a NeutrinoList (what `llama significance` would read)."""
        rows = self.trial == trial
        n = int(rows.sum())
        signal = self.pick[rows] < 0
        return NeutrinoList(
            mjd=self.mjd[rows], ra=self.ra[rows], dec=self.dec[rows], sigma=self.sigma[rows],
            energy=self.energy[rows], zenith=self.zenith[rows], azimuth=np.full(n, np.nan),
            run=np.full(n, -1, np.int64), event=np.arange(n, dtype=np.int64),
            type=np.where(signal, "injected", "blinded"), source="simulated trial",
        )  # fmt: skip


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

    def batch(
        self, rng: np.random.Generator, skymap: SkyMap | None, n_trials: int, signal_mean: float = 0.0
    ) -> TrialBatch:
        """``n_trials`` lists: background, plus Poisson(signal_mean) signal neutrinos around a
        source drawn from ``skymap`` for each when ``signal_mean`` > 0."""
        p = self.model.params
        counts = rng.poisson(p.expected_background_neutrinos, size=n_trials)
        pick = rng.integers(0, len(self.sample.zenith), size=int(counts.sum()))
        zenith = np.asarray(self.sample.zenith, float)[pick]
        columns = {
            "trial": np.repeat(np.arange(n_trials), counts),
            "pick": pick,
            "mjd": self.trigger.time_mjd + rng.uniform(-p.window, p.window, pick.size) / 86400.0,
            "ra": rng.uniform(0.0, 360.0, pick.size),
            "dec": zenith - 90.0,
            "sigma": np.asarray(self.sample.sigma, float)[pick],
            "energy": np.asarray(self.sample.energy, float)[pick],
            "zenith": zenith,
        }
        if signal_mean > 0:
            signal = self._signal(rng, skymap, n_trials, signal_mean)
            columns = {name: np.concatenate([columns[name], signal[name]]) for name in columns}
            order = np.argsort(columns["trial"], kind="stable")
            columns = {name: value[order] for name, value in columns.items()}
        return TrialBatch(n_trials=n_trials, **columns)

    def _signal(self, rng: np.random.Generator, skymap: SkyMap, n_trials: int, mean_count: float) -> dict:
        """Poisson(mean_count) signal neutrinos per trial around sources drawn from ``skymap``."""
        p = self.model.params
        counts = rng.poisson(mean_count, size=n_trials)
        ra0, dec0, _ = skymap.sample_sources(rng, n_trials)
        trial = np.repeat(np.arange(n_trials), counts)
        n = trial.size
        sigma = np.asarray(self.sample.sigma, float)[rng.integers(0, len(self.sample.sigma), size=n)]
        ra, dec = scatter_on_sphere(rng, ra0[trial], dec0[trial], sigma)
        band = self.model.energy_weight.band(dec0[trial])
        quantile = rng.uniform(size=n)
        energy = np.empty(n)
        for b in np.unique(band):  # one inverse-CDF table per declination band
            at = band == b
            energy[at] = np.interp(quantile[at], self._energy_cdf[:, b], self._energy_grid)
        dt = rng.uniform(p.tnuminus, p.tnuplus, size=n) - rng.uniform(p.tgwminus, p.tgwplus, size=n)
        return {"trial": trial, "pick": np.full(n, -1), "mjd": self.trigger.time_mjd + dt / 86400.0,
                "ra": ra, "dec": dec, "sigma": sigma, "energy": energy, "zenith": 90.0 + dec}

    def trial(self, rng: np.random.Generator, skymap: SkyMap | None, signal_mean: float = 0.0) -> NeutrinoList:
        """One trial's neutrino list: background, plus signal when ``signal_mean`` > 0."""
        return self.batch(rng, skymap, 1, signal_mean).neutrino_list(0)


def scatter_on_sphere(
    rng: np.random.Generator, ra_deg: np.ndarray, dec_deg: np.ndarray, sigma_deg: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (deg) offset from each (ra, dec) by a 2-D Gaussian of width sigma (deg)."""
    sigma = np.asarray(sigma_deg, float)
    offset = np.radians(sigma * np.sqrt(-2.0 * np.log1p(-rng.uniform(size=sigma.size))))
    angle = rng.uniform(0.0, 2.0 * np.pi, size=sigma.size)
    ra0, dec0 = np.radians(ra_deg), np.radians(dec_deg)
    centre = odds_mod.unit_vectors(ra_deg, dec_deg)
    east = np.stack([-np.sin(ra0), np.cos(ra0), np.zeros_like(ra0)], axis=-1)
    north = np.stack([-np.sin(dec0) * np.cos(ra0), -np.sin(dec0) * np.sin(ra0), np.cos(dec0)], axis=-1)
    direction = np.cos(angle)[:, None] * north + np.sin(angle)[:, None] * east
    xyz = np.cos(offset)[:, None] * centre + np.sin(offset)[:, None] * direction
    ra = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(xyz[:, 2], -1.0, 1.0)))
    return ra, dec


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


class SampleBackground:
    """P_emp,nu, the energy for A and A's band values of every background-sample row, computed
    once for all rows in one vectorised call (exactly the calls `llama significance` makes for
    such a neutrino; 0.3-0.5 s for the 36,900-row sample), and, the first time exact mode asks,
    the normalised sky sum of every row (it does not depend on the right ascension; 0.3 s)."""

    _recent: dict = {}  # (id(model), id(sample)) -> (model, sample, instance), a few kept

    @classmethod
    def of(cls, model: odds_mod.SearchModel, sample: BackgroundSample) -> SampleBackground:
        """The SampleBackground of a model and sample, computed once and shared by the runs of
        a process (a campaign job's maps, `llama significance --trials`'s searches)."""
        key = (id(model), id(sample))
        if key not in cls._recent:
            if len(cls._recent) >= 4:
                cls._recent.pop(next(iter(cls._recent)))
            cls._recent[key] = (model, sample, cls(model, sample))  # holds both: ids stay theirs
        return cls._recent[key][2]

    def __init__(self, model: odds_mod.SearchModel, sample: BackgroundSample):
        self.model = model
        self.values = np.stack(model.nu_background(
            np.asarray(sample.zenith, float), np.asarray(sample.energy, float)))
        self.bands = model.energy_weight.band_values(self.values[1])
        self._sigma = np.asarray(sample.sigma, float)
        self._dec = np.asarray(sample.zenith, float) - 90.0  # as TrialGenerator draws them
        self._sky_norm: np.ndarray | None = None

    def normalised(self) -> np.ndarray:
        """sum A PSF_norm of every row (:func:`llama.science.skysums.normalised_sums`)."""
        if self._sky_norm is None:
            centre = odds_mod.unit_vectors(np.zeros(self._dec.size), self._dec)
            self._sky_norm = normalised_sums(centre, self._sigma, self.bands, self.model.energy_weight)
        return self._sky_norm

    def __call__(self, batch: TrialBatch, normalised: bool = False) -> tuple[np.ndarray, ...]:
        """(P_emp, energy, band values, normalised sky sum or NaN) of every neutrino of the
        batch; the normalised sums of its sample rows when ``normalised`` (exact mode)."""
        picked = batch.pick >= 0
        rows = batch.pick[picked]
        sky_norm = np.full(len(batch), np.nan)
        if normalised:
            sky_norm[picked] = self.normalised()[rows]
        if picked.all():
            return self.values[0, batch.pick], self.values[1, batch.pick], self.bands[batch.pick], sky_norm
        p_emp, energy = np.empty(len(batch)), np.empty(len(batch))
        p_emp[picked], energy[picked] = self.values[:, rows]
        bands = np.empty((len(batch), self.bands.shape[1]))
        bands[picked] = self.bands[rows]
        p_emp[~picked], energy[~picked] = self.model.nu_background(
            batch.zenith[~picked], batch.energy[~picked])
        bands[~picked] = self.model.energy_weight.band_values(energy[~picked])
        return p_emp, energy, bands, sky_norm


def evaluate_batch(
    skymap: SkyMap,
    batch: TrialBatch,
    trigger: odds_mod.GwTrigger,
    model: odds_mod.SearchModel,
    search: str,
    background: SampleBackground | None = None,
    sky: odds_mod.SkySumsFunction | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(odds, [p_h_s1, p_h_0, p_h_c] or NaN) of every trial of a batch; ``sky``: the sky sums
    (default exact; fast mode passes a :class:`llama.background.fast.SmoothedSky`)."""
    search_named(search)  # a clear error for an unknown search
    terms = odds_mod.neutrino_terms(
        skymap, batch, trigger, model, pairs=search == "opa", group=batch.trial,
        background=None if background is None else background(batch, normalised=sky is None), sky=sky,
    )  # fmt: skip
    if search == "subthreshold":
        result = odds_mod.subthreshold_batch(terms, batch.trial, batch.n_trials, trigger, model)
        return result.odds, np.stack([result.p_h_s1, result.p_h_0, result.p_h_c])
    per_neutrino = odds_mod.opa_terms(terms, batch.zenith, trigger, model)[0]
    odds = np.bincount(batch.trial, per_neutrino, minlength=batch.n_trials)
    return odds, np.full((3, batch.n_trials), np.nan)


def sky_function(mode: str, skymap: SkyMap, model: odds_mod.SearchModel, sample: BackgroundSample):
    """The sky sums of a trials mode: None (exact) or a SmoothedSky of the map (fast), its
    grids kept in ``<cache dir>/smoothed-sky`` (llama.paths.cache_dir) for the next job."""
    if mode not in MODES:
        raise ConfigurationError(f"unknown trials mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "exact":
        return None
    from llama.background.fast import SmoothedSky
    from llama.paths import cache_dir

    sigma = np.asarray(sample.sigma, float)
    return SmoothedSky(skymap, float(sigma.min()), float(sigma.max()), model.energy_weight,
                       cache=cache_dir() / "smoothed-sky")


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
    mode: str = "exact",
) -> TrialResults:
    """Odds of ``n_trials`` trials on one sky map, deterministic from ``seed``, evaluated a
    batch at a time in ``mode`` (exact | fast)."""
    sky = sky_function(mode, skymap, model, sample)
    generator = TrialGenerator(model, sample, trigger)
    background = SampleBackground.of(model, sample)
    rng = np.random.default_rng(seed)
    odds = np.empty(n_trials)
    counts = np.empty(n_trials, np.int64)
    terms = np.empty((3, n_trials))
    if progress is None:
        progress = sys.stderr.isatty()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_trials, desc=f"{search} trials", unit="trial", leave=False)
    per_evaluation = TRIALS_PER_BATCH * (BATCHES_PER_EVALUATION if mode == "fast" else 1)
    for start in range(0, n_trials, per_evaluation):
        size = min(per_evaluation, n_trials - start)
        batch = TrialBatch.concatenate([
            generator.batch(rng, skymap, min(TRIALS_PER_BATCH, size - drawn), signal_mean)
            for drawn in range(0, size, TRIALS_PER_BATCH)])
        rows = slice(start, start + size)
        odds[rows], terms[:, rows] = evaluate_batch(
            skymap, batch, trigger, model, search, background, sky
        )
        counts[rows] = batch.counts()
        if bar is not None:
            bar.update(size)
    if bar is not None:
        bar.close()
    return TrialResults(odds, counts, seed, *terms)
