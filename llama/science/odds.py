"""Joint GW + neutrino odds ratios (SCIENCE.md sections 3-5), pure numpy, no I/O.

Two searches share the building blocks below:

* ``subthreshold``: the ensemble search (section 4) -> significance_subthreshold_lvc-i3.json
* ``opa``: the per-neutrino search (section 5) -> significance_lvc-i3.json

Both handle CBC triggers (a distance d from the sky map) and Burst / no-distance
triggers (distance integrated out), fixing defect 1 of section 7.

Conventions: angles in deg, times in s, distances in Mpc, neutrino energies in GeV,
GW / neutrino isotropic energies in code units (kg Mpc^2 s^-2, ~9.52e51 erg).
The energy priors P_gw, P_nu are log-flat densities normalised on [Egwmin, Egwmax] and
[Enumin, Enumax]; P_gw is evaluated at E* = (d rho / k0)^2 wherever that falls.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numpy.polynomial.legendre import leggauss
from numpy.typing import ArrayLike
from scipy.special import gammainc, gammaln

from llama.science.background import GwSnrBackground, NeutrinoBackgroundDensity
from llama.science.detector import EnergyAngleWeight, ZenithWeights
from llama.science.parameters import SearchParameters
from llama.science.protocols import NeutrinosLike, SkyMapLike
from llama.science.skysums import (
    PIXEL_PER_SIGMA,
    PSF_CUTOFF_SIGMA,
    Pairs,
    PixelTree,
    SkySums,
    separation_deg,
    sky_sums,
    unit_vectors,
)

SkySumsFunction = Callable[[np.ndarray, np.ndarray, np.ndarray, Pairs | None], SkySums]
"""(unit vectors, sigma deg, A per band, OPA pairs) -> sky sums of those neutrinos."""

PAIR_SEPARATION_SIGMAS = 5.0
"""OPA pair term: only pairs closer than 5 (sigma_i + sigma_j) deg contribute."""


def _unit_quadrature(
    panels: int = 14, order: int = 32, smallest: float = 1e-7
) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes/weights on [0, 1] over geometrically shrinking panels toward 0,
    resolving the small-distance structure of I_k (features at ~0.1 Mpc out of ~300)."""
    edges = np.concatenate([[0.0], np.geomspace(smallest, 1.0, panels)])
    t, w = leggauss(order)
    lo, hi = edges[:-1, None], edges[1:, None]
    return (0.5 * (hi - lo) * (t + 1) + lo).ravel(), (0.5 * (hi - lo) * w).ravel()


UNIT_NODES, UNIT_WEIGHTS = _unit_quadrature()
UNITS = {
    "Egwmin, Egwmax, Enumin, Enumax": "isotropic-equivalent energy, code units kg Mpc^2 s^-2 "
    "(1 unit ~ 9.52e51 erg); not GeV",
    "εmin, εmax, epsmin, epsmax, neutrino energy": "detected (reconstructed) neutrino energy, GeV",
    "distance, k0 r": "Mpc",
    "ndotgwnu": "Mpc^-3 s^-1",
    "ratebggw, ratebgnu": "Hz",
    "tgwminus, tgwplus, tnuminus, tnuplus, dt": "s",
    "δω, ra, dec, sigma": "deg",
    "P_emp_nu": "sr^-1 GeV^-1",
}


# ---------------------------------------------------------------- building blocks


def log_flat_prior(energy: ArrayLike, lower: float, upper: float) -> np.ndarray:
    """P(E) = 1 / (E ln(upper/lower)) per energy unit (the log-flat density of SCIENCE.md §3).

    As in the original search the density is not truncated outside [lower, upper]: the
    bounds set its normalisation (and, for the GW energy, the horizon r0(Egwmax)).
    """
    energy = np.asarray(energy, float)
    with np.errstate(divide="ignore"):
        return 1.0 / (energy * math.log(upper / lower))


def time_overlap(params: SearchParameters, t_gw: float, *t_nu) -> np.ndarray:
    """Length (s) of source times compatible with the GW time and every neutrino time.

    A source at t_s emits GWs in [t_s + tgwminus, t_s + tgwplus] and neutrinos in
    [t_s + tnuminus, t_s + tnuplus]; for +-250 s windows and one neutrino this is
    T = max(0, 500 - |t_gw - t_nu|).  Neutrino times broadcast against each other.
    """
    start = np.asarray(t_gw - params.tgwplus, float)
    stop = np.asarray(t_gw - params.tgwminus, float)
    for t in t_nu:
        start = np.maximum(start, np.asarray(t, float) - params.tnuplus)
        stop = np.minimum(stop, np.asarray(t, float) - params.tnuminus)
    return np.maximum(0.0, stop - start)


def emission_integral(
    k: int, distance: ArrayLike, zenith_weight: ArrayLike, params: SearchParameters
) -> np.ndarray:
    """I_k(r, theta) = int Poisson(k; mu(E_nu, r, theta)) P_nu(E_nu) dE_nu over [Enumin, Enumax].

    With mu = c E_nu, c = nu_51_100 * 10 * (r/100)^-2 * w(theta), and a log-flat P_nu this is
    [P(k, c Enumax) - P(k, c Enumin)] / (k ln(Enumax/Enumin)) with P the regularised lower
    incomplete gamma function.  ``distance`` (Mpc) and ``zenith_weight`` broadcast.
    """
    r = np.asarray(distance, float)
    w = np.asarray(zenith_weight, float)
    if r.size == 1 and w.ndim == 1 and w.size > 64:  # one distance, many neutrinos: few weights
        values, inverse = np.unique(w, return_inverse=True)
        return emission_integral(k, r, values, params).reshape(-1)[inverse].reshape(
            np.broadcast_shapes(r.shape, w.shape))
    with np.errstate(divide="ignore"):
        c = params.nu_51_100 * 10.0 * (r / 100.0) ** -2 * w
    span = gammainc(k, c * params.Enumax) - gammainc(k, c * params.Enumin)
    return span / (k * math.log(params.Enumax / params.Enumin))


def distance_integral(
    zenith_weight: ArrayLike, params: SearchParameters, snr: float | None = None, k: int = 1
) -> np.ndarray:
    """int x^2 f(x) I_k(x, theta) dx over x in [0, r0(Egwmax)] (Mpc^3), per zenith weight.

    f = 1 for the b_i of the subthreshold search.  With ``snr`` (Burst / no-distance signal
    terms) f(x) = P_gw((x rho / k0)^2), and x^2 P_gw((x rho/k0)^2) = k0^2 / (rho^2 ln(Egwmax/Egwmin))
    is a constant.  Panelled Gauss-Legendre (see ``_unit_quadrature``), once per distinct weight.
    """
    w, inverse = np.unique(np.atleast_1d(np.asarray(zenith_weight, float)), return_inverse=True)
    return _distance_integrals(tuple(w.tolist()), params, snr, k)[inverse.ravel()]


@lru_cache(maxsize=256)
def _distance_integrals(weights: tuple[float, ...], params: SearchParameters, snr: float | None,
                        k: int) -> np.ndarray:
    """:func:`distance_integral` of distinct zenith weights, remembered: trials and events
    meet the same few dozen weights (one per zenith row of the weight table) again and again."""
    hi = params.r0(params.Egwmax)
    x = hi * UNIT_NODES
    weight = hi * UNIT_WEIGHTS * (x**2 if snr is None else _x2_gw_prior(params, snr))
    values = emission_integral(k, x[None, :], np.array(weights)[:, None], params) @ weight
    values.setflags(write=False)
    return values


def _x2_gw_prior(params: SearchParameters, snr: float) -> float:
    """x^2 P_gw((x rho / k0)^2), independent of x (Mpc^2 per energy unit)."""
    return params.k0**2 / (snr**2 * math.log(params.Egwmax / params.Egwmin))


def burst_gw_volume(params: SearchParameters, snr: float) -> float:
    """G_c for Burst triggers: int_0^r0(Egwmax) x^2 P_gw((rho x / k0)^2) dx (Mpc^3 per energy unit)."""
    return _x2_gw_prior(params, snr) * params.r0(params.Egwmax)


def poisson_pmf(k: ArrayLike, mean: float) -> np.ndarray:
    """Poisson probability of k events (array) for the given mean."""
    k = np.asarray(k, float)
    if mean <= 0:
        return (k == 0).astype(float)
    return np.exp(k * math.log(mean) - mean - gammaln(k + 1))


# ---------------------------------------------------------------- model and inputs


@dataclass
class GwTrigger:
    """What the search needs to know of a GW trigger."""

    time_mjd: float  # UTC MJD of the trigger
    snr: float  # network SNR rho
    instruments: tuple[str, ...] = ()
    distance: float | None = None  # Mpc (sky-map DISTMEAN); None for Burst / no distance
    p_terrestrial: float = 1.0
    far: float | None = None  # Hz
    graceid: str | None = None

    @property
    def has_distance(self) -> bool:
        return self.distance is not None and math.isfinite(self.distance) and self.distance > 0


@dataclass
class SearchModel:
    """Everything the odds depend on besides the event: parameters and detector/background
    models (built from the packaged tables by llama.io.tables.load_model)."""

    params: SearchParameters
    energy_weight: EnergyAngleWeight
    zenith_weights: ZenithWeights
    nu_background: NeutrinoBackgroundDensity
    gw_background: GwSnrBackground
    preset_name: str = "custom"

    def describe(self) -> dict:
        """Parameters and model choices, for the output's search_parameters."""
        return {
            **self.params.to_output(),
            "preset": self.preset_name,
            "energy_weight": self.energy_weight.name,
            "energy_weight_description": self.energy_weight.description,
            "neutrino_background": self.nu_background.description,
            "gw_background": self.gw_background.description,
            "gw_energy_prior": "log-flat 1/(E ln(Egwmax/Egwmin)), not truncated",
            "psf_cutoff_sigma": PSF_CUTOFF_SIGMA,
            "psf_pixel_per_sigma": PIXEL_PER_SIGMA,
            "opa_pair_separation_sigmas": PAIR_SEPARATION_SIGMAS,
            "units": UNITS,
        }


@dataclass
class NeutrinoTerms:
    """Per-neutrino quantities shared by both searches (arrays of length N), and the OPA
    pairs (i < j, arrays of length n_pairs)."""

    dt: np.ndarray  # t_nu - t_gw, s
    overlap: np.ndarray  # T(t_gw, t_nu), s
    p_emp: np.ndarray  # P_emp,nu, sr^-1 GeV^-1
    energy: np.ndarray  # energy used in A, GeV
    zenith_weight: np.ndarray  # w(theta_nu)
    sky: np.ndarray  # sum_pix p A PSF (unnormalised), sr^-1 GeV^-1
    sky_norm: np.ndarray  # sum_pix A PSF_norm, GeV^-1
    band_values: np.ndarray  # A(E_i) per declination band, (N, n_bands)
    pair_first: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    pair_second: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    pair_sky: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """OPA pairs: sky sum of p A(E_i) A(E_j') PSF_i PSF_j, sr^-1 GeV^-2."""
    pair_p_emp: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """OPA pairs: P_emp,nu of the partner j at its clipped energy E_j', sr^-1 GeV^-1."""

    def pair(self, i: int, j: int) -> tuple[float, float]:
        """(pair sky sum, partner P_emp) of the pair (i, j)."""
        (at,) = np.flatnonzero((self.pair_first == i) & (self.pair_second == j))
        return float(self.pair_sky[at]), float(self.pair_p_emp[at])


def neutrino_terms(
    skymap: SkyMapLike,
    neutrinos: NeutrinosLike,
    trigger: GwTrigger,
    model: SearchModel,
    pairs: bool = False,
    group: np.ndarray | None = None,
    background: tuple[np.ndarray, ...] | None = None,
    sky: SkySumsFunction | None = None,
) -> NeutrinoTerms:
    """Compute NeutrinoTerms for any number of neutrinos at once.

    ``group`` (sorted, one entry per neutrino) says which neutrinos form one list (background
    trials); OPA pairs are formed within a group only. ``background`` passes precomputed
    (P_emp, energy for A) from ``model.nu_background``, A's band values at that energy and the
    normalised sky sums where known (NaN where not, or None); ``sky`` computes the sky sums
    (default: exact, :func:`llama.science.skysums.sky_sums`; fast-mode trials pass their own).
    Sky sums run over
    :func:`llama.science.skysums.sky_sums` (within PSF_CUTOFF_SIGMA, coarse pixels split), so
    the normalised PSF sums to 1 however narrow it is. For a pair (i, j) the partner's energy
    is first clipped to the background energy range within delta_omega of theta_i and its
    P_emp,nu computed there with its own widening (SCIENCE.md section 5).
    """
    n = len(neutrinos)
    params = model.params
    dt = (np.asarray(neutrinos.mjd, float) - trigger.time_mjd) * 86400.0
    zenith = np.asarray(neutrinos.zenith, float)
    sky_norm = None
    if background is None:
        p_emp, energy = model.nu_background(zenith, neutrinos.energy)
        bands = model.energy_weight.band_values(energy) if n else np.zeros((0, 0))
    else:
        p_emp, energy, bands, sky_norm = background
    centre = unit_vectors(neutrinos.ra, neutrinos.dec)
    sigma = np.asarray(neutrinos.sigma, float)
    pair_set = None
    if pairs:
        first, second = close_pairs(centre, sigma, np.zeros(n, np.int64) if group is None else group)
        ranges = model.nu_background.energy_range(zenith[first])
        raw = np.asarray(neutrinos.energy, float)[second]
        clipped = np.minimum(np.maximum(raw, ranges[:, 0]), ranges[:, 1])
        moved = np.flatnonzero(clipped != raw)  # the others keep the partner's own values
        p_emp_j, energy_j, pair_bands = p_emp[second], energy[second], bands[second]
        if moved.size:
            p_emp_j[moved], energy_j[moved] = model.nu_background(zenith[second][moved], clipped[moved])
            pair_bands[moved] = model.energy_weight.band_values(energy_j[moved])
        pair_set = Pairs(first, centre[second], sigma[second], pair_bands)
    if sky is None:
        sums = sky_sums(PixelTree.of(skymap), centre, sigma, bands, model.energy_weight, pair_set, sky_norm)
    else:
        sums = sky(centre, sigma, bands, pair_set)
    terms = NeutrinoTerms(
        dt=dt,
        overlap=time_overlap(params, 0.0, dt),
        p_emp=p_emp,
        energy=energy,
        zenith_weight=model.zenith_weights(zenith),
        sky=sums.sky,
        sky_norm=sums.sky_norm,
        band_values=bands,
    )
    if pair_set is not None:
        terms.pair_first, terms.pair_second = first, second
        terms.pair_sky, terms.pair_p_emp = sums.pair_sky, p_emp_j
    return terms


def close_pairs(centre: np.ndarray, sigma: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) of the same group closer than PAIR_SEPARATION_SIGMAS (s_i + s_j)."""
    group = np.asarray(group, np.int64)
    n = group.size
    end = np.searchsorted(group, group, side="right")  # one past the last of i's group
    count = end - np.arange(n) - 1
    first = np.repeat(np.arange(n), count)
    second = np.arange(first.size) - np.repeat(np.cumsum(count) - count, count) + first + 1
    limit = PAIR_SEPARATION_SIGMAS * (sigma[first] + sigma[second])
    close = separation_deg(centre[first], centre[second]) < limit
    return first[close], second[close]


def gw_null_probability(trigger: GwTrigger, model: SearchModel) -> float:
    """P(x_gw | H0) = p_t [P_emp,gw(rho) R_bg + 3 rhomin^3/rho^4 V ndot] / [R_bg + V ndot]."""
    p = model.params
    v_rate = p.horizon_volume * p.ndotgwnu
    rho = trigger.snr
    numerator = model.gw_background(rho) * p.ratebggw + 3.0 * p.rhomin**3 / rho**4 * v_rate
    return trigger.p_terrestrial * numerator / (p.ratebggw + v_rate)


def _group_sums(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    return np.bincount(group, values, minlength=n_groups)


# ---------------------------------------------------------------- subthreshold search


@dataclass
class SubthresholdResult:
    """Section 4 result; ``single_odds`` are each neutrino's additive share of the odds."""

    odds_ratio: float
    p_h_s1: float
    p_h_s2: float
    p_h_0: float
    p_h_c: float
    single_odds: np.ndarray
    terms: NeutrinoTerms
    dump: dict


@dataclass
class SubthresholdBatch:
    """Section 4 for many neutrino lists at once: arrays with one entry per list (group),
    and each neutrino's additive share of its list's odds."""

    odds: np.ndarray
    p_h_s1: np.ndarray
    p_h_0: np.ndarray
    p_h_c: np.ndarray
    s1: np.ndarray
    w: np.ndarray
    single_odds: np.ndarray
    constants: dict


def subthreshold_batch(
    terms: NeutrinoTerms, group: np.ndarray, n_groups: int, trigger: GwTrigger, model: SearchModel
) -> SubthresholdBatch:
    """The subthreshold odds O = p_h_s1 / (p_h_0 + p_h_c) of every group of neutrinos."""
    p = model.params
    n = np.bincount(group, minlength=n_groups)
    lam = p.expected_background_neutrinos
    volume = p.horizon_volume
    rho = trigger.snr
    with np.errstate(divide="ignore", invalid="ignore"):
        if trigger.has_distance:
            d = trigger.distance
            e_star = (d * rho / p.k0) ** 2
            g = (
                d
                * float(log_flat_prior(e_star, p.Egwmin, p.Egwmax))
                * (p.Egwmax - p.Egwmin)
                * p.k0**2
                / rho**2
            )
            g_c = g
            signal_integral = emission_integral(1, d, terms.zenith_weight, p)
        else:
            e_star = None
            g = 1.0
            g_c = burst_gw_volume(p, rho)
            signal_integral = distance_integral(terms.zenith_weight, p, snr=rho)
        a = terms.overlap * signal_integral / terms.p_emp
        b = distance_integral(terms.zenith_weight, p) / terms.p_emp
    a = np.nan_to_num(a, nan=0.0, posinf=0.0)
    b = np.nan_to_num(b, nan=0.0, posinf=0.0)
    s1_terms = a * terms.sky
    s1 = _group_sums(s1_terms, group, n_groups)
    w_sum = _group_sums(b * terms.sky_norm, group, n_groups)
    p_gw_h0 = gw_null_probability(trigger, model)
    poisson_n = poisson_pmf(n, lam)
    poisson_n1 = poisson_pmf(np.maximum(0, n - 1), lam)
    scale = g / p.emission_window * p.ndotgwnu * poisson_n1
    p_h_s1 = s1 * scale
    p_h_0 = p_gw_h0 * poisson_n / volume
    p_h_c = g_c * p.ndotgwnu * poisson_n + p_gw_h0 * w_sum * p.ndotgwnu * poisson_n1
    denominator = p_h_0 + p_h_c
    positive = denominator > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = np.where(positive, p_h_s1 / denominator, 0.0)
        single = np.where(positive[group], s1_terms * (scale / denominator)[group], 0.0)
    constants = {
        "lambda": lam,
        "horizon_volume_mpc3": volume,
        "r0_egwmax_mpc": p.r0(p.Egwmax),
        "distance_mpc": trigger.distance if trigger.has_distance else None,
        "E_star": e_star,
        "G": g,
        "G_c": g_c,
        "P_xgw_H0": p_gw_h0,
        "P_emp_gw": model.gw_background(rho),
        "burst": not trigger.has_distance,
    }
    return SubthresholdBatch(odds, p_h_s1, p_h_0, p_h_c, s1, w_sum, single, constants)


def subthreshold(
    skymap: SkyMapLike, neutrinos: NeutrinosLike, trigger: GwTrigger, model: SearchModel
) -> SubthresholdResult:
    """The subthreshold (ensemble) odds ratio O = p_h_s1 / (p_h_0 + p_h_c) of one event."""
    n = len(neutrinos)
    terms = neutrino_terms(skymap, neutrinos, trigger, model)
    batch = subthreshold_batch(terms, np.zeros(n, np.int64), 1, trigger, model)
    lam = model.params.expected_background_neutrinos
    dump = {
        "n_neutrinos": n,
        **batch.constants,
        "S1": float(batch.s1[0]),
        "W": float(batch.w[0]),
        "poisson_N": float(poisson_pmf(n, lam)),
        "poisson_N_minus_1": float(poisson_pmf(max(0, n - 1), lam)),
    }
    dump = {key: dump[key] for key in DUMP_ORDER}
    return SubthresholdResult(
        float(batch.odds[0]), float(batch.p_h_s1[0]), 0.0, float(batch.p_h_0[0]),
        float(batch.p_h_c[0]), batch.single_odds, terms, dump,
    )  # fmt: skip


DUMP_ORDER = (
    "n_neutrinos", "lambda", "horizon_volume_mpc3", "r0_egwmax_mpc", "distance_mpc", "E_star",
    "G", "G_c", "S1", "W", "P_xgw_H0", "P_emp_gw", "poisson_N", "poisson_N_minus_1", "burst",
)  # fmt: skip


# ---------------------------------------------------------------- OPA search


@dataclass
class OpaResult:
    """Section 5 result: per-neutrino odds O_i (with p_s1, p_s2, p_c) and their sum."""

    odds_ratio: float
    odds: np.ndarray
    p_s1: np.ndarray
    p_s2: np.ndarray
    p_c: np.ndarray
    terms: NeutrinoTerms
    dump: dict


def opa_terms(
    terms: NeutrinoTerms, zenith: np.ndarray, trigger: GwTrigger, model: SearchModel
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float | None, float]:
    """Per-neutrino (O_i, p_s1, p_s2, p_c, E*, GW factor) of section 5; NaN or negative O_i -> 0,
    +inf kept (as in the original code). Pairs are those in ``terms`` (added to the lower index)."""
    p = model.params
    rho = trigger.snr
    if trigger.has_distance:
        d = trigger.distance
        e_star = (d * rho / p.k0) ** 2
        gw_factor = d**2 * float(log_flat_prior(e_star, p.Egwmin, p.Egwmax))

        def signal(k: int, w: ArrayLike) -> np.ndarray:
            return gw_factor * emission_integral(k, d, w, p)
    else:
        e_star = None
        gw_factor = burst_gw_volume(p, rho)

        def signal(k: int, w: ArrayLike) -> np.ndarray:
            return distance_integral(w, p, snr=rho, k=k)

    common = p.ndotgwnu / (p.emission_window * p.fb)
    p_s1 = terms.sky * terms.overlap * signal(1, terms.zenith_weight) * common
    p_s2 = np.zeros(terms.sky.size)
    if terms.pair_first.size:
        first, second = terms.pair_first, terms.pair_second
        overlap3 = time_overlap(p, 0.0, terms.dt[first], terms.dt[second])
        w_pair = model.zenith_weights.pair(zenith[first], zenith[second])
        with np.errstate(divide="ignore", invalid="ignore"):
            pair_terms = terms.pair_sky * overlap3 * signal(2, w_pair) * common / terms.pair_p_emp
        np.add.at(p_s2, first, pair_terms)  # each pair once, added to the lower index
    p_c = gw_factor * terms.p_emp * p.ratebgnu * p.ndotgwnu
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = (p_s1 + p_s2) / p_c
    odds = np.where(np.isnan(odds) | (odds < 0), 0.0, odds)  # +inf is kept, as in the original
    return odds, p_s1, p_s2, p_c, e_star, gw_factor


def opa(
    skymap: SkyMapLike, neutrinos: NeutrinosLike, trigger: GwTrigger, model: SearchModel
) -> OpaResult:
    """The per-neutrino (OPA) odds O_i = (p_s1 + p_s2) / p_c and the combined O = sum O_i
    (NaN or negative O_i -> 0; +inf is kept, as in the original code)."""
    terms = neutrino_terms(skymap, neutrinos, trigger, model, pairs=True)
    zenith = np.asarray(neutrinos.zenith, float)
    odds, p_s1, p_s2, p_c, e_star, gw_factor = opa_terms(terms, zenith, trigger, model)
    dump = {
        "n_neutrinos": len(neutrinos),
        "distance_mpc": trigger.distance if trigger.has_distance else None,
        "E_star": e_star,
        "gw_factor": gw_factor,
        "n_pairs": int(terms.pair_first.size),
        "burst": not trigger.has_distance,
    }
    return OpaResult(float(odds.sum()), odds, p_s1, p_s2, p_c, terms, dump)
