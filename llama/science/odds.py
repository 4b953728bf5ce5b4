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
from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial.legendre import leggauss
from numpy.typing import ArrayLike
from scipy.special import gammainc

from llama.science.background import GwSnrBackground, NeutrinoBackgroundDensity
from llama.science.detector import EnergyAngleWeight, ZenithWeights
from llama.science.parameters import SearchParameters
from llama.science.protocols import NeutrinosLike, SkyMapLike

PIXEL_PER_SIGMA = 0.5
"""Pixels under a PSF are split (locally) until their size is at most this many sigma."""
MAX_REFINE_ORDER = 13
MAX_CHILDREN_PER_STEP = 16384
"""psf_pixels splits coarse pixels in one step when that gives at most this many children."""
PIXEL_RADIUS_PER_SIZE = 1.05
PSF_CUTOFF_SIGMA = 8.0
"""Pixels farther than this many sigma from a neutrino are skipped (PSF < 1.3e-14 of peak)."""
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
SR_PER_DEG2 = (math.pi / 180.0) ** 2
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
    with np.errstate(divide="ignore"):
        c = params.nu_51_100 * 10.0 * (r / 100.0) ** -2 * np.asarray(zenith_weight, float)
    span = gammainc(k, c * params.Enumax) - gammainc(k, c * params.Enumin)
    return span / (k * math.log(params.Enumax / params.Enumin))


def distance_integral(
    zenith_weight: ArrayLike, params: SearchParameters, snr: float | None = None, k: int = 1
) -> np.ndarray:
    """int x^2 f(x) I_k(x, theta) dx over x in [0, r0(Egwmax)] (Mpc^3), per zenith weight.

    f = 1 for the b_i of the subthreshold search.  With ``snr`` (Burst / no-distance signal
    terms) f(x) = P_gw((x rho / k0)^2), and x^2 P_gw((x rho/k0)^2) = k0^2 / (rho^2 ln(Egwmax/Egwmin))
    is a constant.  Panelled Gauss-Legendre (see ``_unit_quadrature``).
    """
    w = np.atleast_1d(np.asarray(zenith_weight, float))
    hi = params.r0(params.Egwmax)
    x = hi * UNIT_NODES
    weight = hi * UNIT_WEIGHTS * (x**2 if snr is None else _x2_gw_prior(params, snr))
    return emission_integral(k, x[None, :], w[:, None], params) @ weight


def _x2_gw_prior(params: SearchParameters, snr: float) -> float:
    """x^2 P_gw((x rho / k0)^2), independent of x (Mpc^2 per energy unit)."""
    return params.k0**2 / (snr**2 * math.log(params.Egwmax / params.Egwmin))


def burst_gw_volume(params: SearchParameters, snr: float) -> float:
    """G_c for Burst triggers: int_0^r0(Egwmax) x^2 P_gw((rho x / k0)^2) dx (Mpc^3 per energy unit)."""
    return _x2_gw_prior(params, snr) * params.r0(params.Egwmax)


def poisson_pmf(k: int, mean: float) -> float:
    """Poisson probability of k events for the given mean."""
    return math.exp(k * math.log(mean) - mean - math.lgamma(k + 1)) if mean > 0 else float(k == 0)


def psf_per_sr(separation_deg: ArrayLike, sigma_deg: ArrayLike) -> np.ndarray:
    """2-D Gaussian PSF exp(-d^2 / 2 sigma^2) / (2 pi sigma^2), per steradian."""
    sigma2 = np.asarray(sigma_deg, float) ** 2
    return np.exp(-0.5 * np.asarray(separation_deg) ** 2 / sigma2) / (
        2 * math.pi * sigma2 * SR_PER_DEG2
    )


def unit_vectors(ra_deg: ArrayLike, dec_deg: ArrayLike) -> np.ndarray:
    """Cartesian unit vectors (n, 3) for RA, Dec in deg."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    cos_dec = np.cos(dec)
    return np.stack([cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)], axis=-1)


def separation_deg(xyz: ArrayLike, vector: ArrayLike) -> np.ndarray:
    """Great-circle distance (deg) between unit vectors; accurate at small angles."""
    chord = np.linalg.norm(np.asarray(xyz) - vector, axis=-1)
    return np.degrees(2.0 * np.arcsin(np.minimum(chord / 2.0, 1.0)))


def order_for_sigma(sigma_deg: float) -> int:
    """Smallest HEALPix order whose pixel size (sqrt of area) is <= PIXEL_PER_SIGMA * sigma."""
    size_order0 = math.degrees(math.sqrt(4.0 * math.pi / 12.0))
    need = math.ceil(math.log2(size_order0 / (PIXEL_PER_SIGMA * sigma_deg)))
    return int(min(max(need, 0), MAX_REFINE_ORDER))


@dataclass
class PsfPixels:
    """Pixels under one neutrino's PSF: probability, centre vectors, dec (deg), area (sr),
    HEALPix order and NESTED index."""

    prob: np.ndarray
    xyz: np.ndarray
    dec: np.ndarray
    area: np.ndarray
    order: np.ndarray
    ipix: np.ndarray


PSF_PIXEL_FIELDS = ("prob", "xyz", "dec", "area", "order", "ipix")


def psf_pixels(skymap: SkyMapLike, ra: float, dec: float, sigma: float) -> PsfPixels:
    """The sky-map pixels within PSF_CUTOFF_SIGMA of a neutrino, split where coarser than the PSF.

    A pixel coarser than PIXEL_PER_SIGMA * sigma is replaced by its NESTED children at the
    needed order, each carrying an equal share of its probability (constant density): in one
    step when that makes at most MAX_CHILDREN_PER_STEP pixels, else in steps of half the
    remaining orders, dropping the children wholly beyond the cut-off after each step. So the
    PSF is sampled finely without flattening the map anywhere else.
    """
    cutoff = PSF_CUTOFF_SIGMA * sigma
    centre = unit_vectors(ra, dec)
    orders = skymap.order
    margin = max_pixel_radius_deg(int(orders.min()))
    pix = skymap.disc(ra, dec, min(180.0, cutoff + margin))
    order = np.asarray(orders[pix.index], np.int64)
    ipix = skymap.uniq[pix.index] - 4 * 4**order if skymap.is_moc else pix.index
    cells = PsfPixels(pix.prob, pix.xyz, pix.dec, pix.area, order, ipix)
    cells = _near(cells, np.ones(order.size, bool), centre, cutoff)
    target = order_for_sigma(sigma)
    coarse = cells.order < target
    while coarse.any():
        level = int(cells.order[coarse].min())
        at_level = int(np.count_nonzero(cells.order == level))
        one_step = at_level * 4 ** (target - level) <= MAX_CHILDREN_PER_STEP
        finer = target if one_step else level + (target - level + 1) // 2
        cells = _split_level(cells, level, finer)
        if not one_step:  # the last step's children beyond the cut-off add (almost) nothing
            cells = _near(cells, cells.order == finer, centre, cutoff)
        coarse = cells.order < target
    return cells


def _near(cells: PsfPixels, check: np.ndarray, centre: np.ndarray, cutoff: float) -> PsfPixels:
    """``cells`` without those of ``check`` that lie wholly beyond ``cutoff`` (deg) of centre."""
    far = np.zeros(check.size, bool)
    reach = np.minimum(cutoff + max_pixel_radius_deg(cells.order[check]), 180.0)
    far[check] = cells.xyz[check] @ centre <= np.cos(np.radians(reach))
    if not far.any():
        return cells
    keep = ~far
    return PsfPixels(*(getattr(cells, name)[keep] for name in PSF_PIXEL_FIELDS))


def _split_level(cells: PsfPixels, level: int, finer: int) -> PsfPixels:
    """``cells`` with every pixel at order ``level`` replaced by its children at ``finer``."""
    from astropy_healpix.core import healpix_to_xyz

    split = cells.order == level
    n = 4 ** (finer - level)
    children = (cells.ipix[split, None] * n + np.arange(n)).ravel()
    xyz = np.stack(healpix_to_xyz(children, 2**finer, order="nested"), axis=-1)
    keep = ~split
    return PsfPixels(
        prob=np.concatenate([cells.prob[keep], np.repeat(cells.prob[split] / n, n)]),
        xyz=np.concatenate([cells.xyz[keep], xyz]),
        dec=np.concatenate([cells.dec[keep], np.degrees(np.arcsin(np.clip(xyz[:, 2], -1, 1)))]),
        area=np.concatenate([cells.area[keep], np.repeat(cells.area[split] / n, n)]),
        order=np.concatenate([cells.order[keep], np.full(children.size, finer, np.int64)]),
        ipix=np.concatenate([cells.ipix[keep], children]),
    )


def max_pixel_radius_deg(order: ArrayLike) -> np.ndarray:
    """Upper bound (deg) on the centre-to-corner angle of a HEALPix pixel at ``order``.

    The largest HEALPix pixel radius is at most 1.045 x sqrt(pixel area) at every order.
    """
    return PIXEL_RADIUS_PER_SIZE * np.degrees(np.sqrt(np.pi / 3.0)) / 2.0 ** np.asarray(order, float)


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
    """Per-neutrino quantities shared by both searches (arrays of length N)."""

    dt: np.ndarray  # t_nu - t_gw, s
    overlap: np.ndarray  # T(t_gw, t_nu), s
    p_emp: np.ndarray  # P_emp,nu, sr^-1 GeV^-1
    energy: np.ndarray  # energy used in A, GeV
    zenith_weight: np.ndarray  # w(theta_nu)
    sky: np.ndarray  # sum_pix p A PSF (unnormalised), sr^-1 GeV^-1
    sky_norm: np.ndarray  # sum_pix A PSF_norm, GeV^-1
    band_values: np.ndarray  # A(E_i) per declination band, (N, n_bands)
    pair_sky: dict[tuple[int, int], float] = field(default_factory=dict)
    """OPA pairs (i < j): sky sum of p A(E_i) A(E_j') PSF_i PSF_j, sr^-1 GeV^-2."""
    pair_p_emp: dict[tuple[int, int], float] = field(default_factory=dict)
    """OPA pairs: P_emp,nu of the partner j at its clipped energy E_j', sr^-1 GeV^-1."""


def neutrino_terms(
    skymap: SkyMapLike,
    neutrinos: NeutrinosLike,
    trigger: GwTrigger,
    model: SearchModel,
    pairs: bool = False,
) -> NeutrinoTerms:
    """Compute NeutrinoTerms; with ``pairs`` also the OPA pair terms for close pairs.

    Sky sums run over :func:`psf_pixels` (within PSF_CUTOFF_SIGMA, coarse pixels split), so
    the normalised PSF sums to 1 however narrow it is. For a pair (i, j) the partner's
    energy is first clipped to the background energy range within delta_omega of theta_i
    and its P_emp,nu computed there with its own widening (SCIENCE.md section 5).
    """
    n = len(neutrinos)
    params = model.params
    dt = (np.asarray(neutrinos.mjd, float) - trigger.time_mjd) * 86400.0
    p_emp, energy = model.nu_background(neutrinos.zenith, neutrinos.energy)
    bands = model.energy_weight.band_values(energy) if n else np.zeros((0, 0))
    sky, sky_norm = np.zeros(n), np.zeros(n)
    vectors = unit_vectors(neutrinos.ra, neutrinos.dec)
    sigma = np.asarray(neutrinos.sigma, float)
    zenith = np.asarray(neutrinos.zenith, float)
    raw_energy = np.asarray(neutrinos.energy, float)
    pair_sky: dict[tuple[int, int], float] = {}
    pair_p_emp: dict[tuple[int, int], float] = {}
    for i in range(n):
        pix = psf_pixels(skymap, float(neutrinos.ra[i]), float(neutrinos.dec[i]), sigma[i])
        below, above, share = model.energy_weight.pixel_bands(pix.dec, pix.area)
        psf = psf_per_sr(separation_deg(pix.xyz, vectors[i]), sigma[i])
        weight = bands[i, below] * share + bands[i, above] * (1.0 - share)
        weighted = pix.prob * weight * psf
        sky[i] = weighted.sum()
        psf_area = psf * pix.area
        total = psf_area.sum()
        sky_norm[i] = (weight * psf_area).sum() / total if total > 0 else 0.0
        if not pairs:
            continue
        for j in range(i + 1, n):
            limit = PAIR_SEPARATION_SIGMAS * (sigma[i] + sigma[j])
            if separation_deg(vectors[i], vectors[j]) >= limit:
                continue
            lowest, highest = model.nu_background.energy_range(float(zenith[i]))
            clipped = min(max(float(raw_energy[j]), lowest), highest)
            p_emp_j, energy_j = model.nu_background.one(float(zenith[j]), clipped)
            a_j = model.energy_weight.band_values(np.array([energy_j]))[0]
            a_j = a_j[below] * share + a_j[above] * (1.0 - share)
            psf_j = psf_per_sr(separation_deg(pix.xyz, vectors[j]), sigma[j])
            pair_sky[(i, j)] = float((weighted * a_j * psf_j).sum())
            pair_p_emp[(i, j)] = p_emp_j
    return NeutrinoTerms(
        dt=dt,
        overlap=time_overlap(params, 0.0, dt),
        p_emp=p_emp,
        energy=energy,
        zenith_weight=model.zenith_weights(neutrinos.zenith),
        sky=sky,
        sky_norm=sky_norm,
        band_values=bands,
        pair_sky=pair_sky,
        pair_p_emp=pair_p_emp,
    )


def gw_null_probability(trigger: GwTrigger, model: SearchModel) -> float:
    """P(x_gw | H0) = p_t [P_emp,gw(rho) R_bg + 3 rhomin^3/rho^4 V ndot] / [R_bg + V ndot]."""
    p = model.params
    v_rate = p.horizon_volume * p.ndotgwnu
    rho = trigger.snr
    numerator = model.gw_background(rho) * p.ratebggw + 3.0 * p.rhomin**3 / rho**4 * v_rate
    return trigger.p_terrestrial * numerator / (p.ratebggw + v_rate)


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


def subthreshold(
    skymap: SkyMapLike, neutrinos: NeutrinosLike, trigger: GwTrigger, model: SearchModel
) -> SubthresholdResult:
    """The subthreshold (ensemble) odds ratio O = p_h_s1 / (p_h_0 + p_h_c)."""
    p = model.params
    n = len(neutrinos)
    lam = p.expected_background_neutrinos
    volume = p.horizon_volume
    rho = trigger.snr
    terms = neutrino_terms(skymap, neutrinos, trigger, model)
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
    s1 = float(s1_terms.sum())
    w_sum = float((b * terms.sky_norm).sum())
    p_gw_h0 = gw_null_probability(trigger, model)
    poisson_n = poisson_pmf(n, lam)
    poisson_n1 = poisson_pmf(max(0, n - 1), lam)
    scale = g / p.emission_window * p.ndotgwnu * poisson_n1
    p_h_s1 = s1 * scale
    p_h_0 = p_gw_h0 * poisson_n / volume
    p_h_c = g_c * p.ndotgwnu * poisson_n + p_gw_h0 * w_sum * p.ndotgwnu * poisson_n1
    denominator = p_h_0 + p_h_c
    odds = p_h_s1 / denominator if denominator > 0 else 0.0
    single = s1_terms * scale / denominator if denominator > 0 else np.zeros(n)
    dump = {
        "n_neutrinos": n,
        "lambda": lam,
        "horizon_volume_mpc3": volume,
        "r0_egwmax_mpc": p.r0(p.Egwmax),
        "distance_mpc": trigger.distance if trigger.has_distance else None,
        "E_star": e_star,
        "G": g,
        "G_c": g_c,
        "S1": s1,
        "W": w_sum,
        "P_xgw_H0": p_gw_h0,
        "P_emp_gw": model.gw_background(rho),
        "poisson_N": poisson_n,
        "poisson_N_minus_1": poisson_n1,
        "burst": not trigger.has_distance,
    }
    return SubthresholdResult(odds, p_h_s1, 0.0, p_h_0, p_h_c, single, terms, dump)


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


def opa(
    skymap: SkyMapLike, neutrinos: NeutrinosLike, trigger: GwTrigger, model: SearchModel
) -> OpaResult:
    """The per-neutrino (OPA) odds O_i = (p_s1 + p_s2) / p_c and the combined O = sum O_i
    (NaN or negative O_i -> 0; +inf is kept, as in the original code)."""
    p = model.params
    n = len(neutrinos)
    rho = trigger.snr
    terms = neutrino_terms(skymap, neutrinos, trigger, model, pairs=True)
    zenith = np.asarray(neutrinos.zenith, float)
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
    p_s2 = np.zeros(n)
    if terms.pair_sky:
        first, second = (np.array(index) for index in zip(*terms.pair_sky, strict=True))
        pair_sky = np.array(list(terms.pair_sky.values()))
        partner_p_emp = np.array([terms.pair_p_emp[key] for key in terms.pair_sky])
        overlap3 = time_overlap(p, 0.0, terms.dt[first], terms.dt[second])
        w_pair = model.zenith_weights.pair(zenith[first], zenith[second])
        with np.errstate(divide="ignore", invalid="ignore"):
            pair_terms = pair_sky * overlap3 * signal(2, w_pair) * common / partner_p_emp
        np.add.at(p_s2, first, pair_terms)  # each pair once, added to the lower index
    p_c = gw_factor * terms.p_emp * p.ratebgnu * p.ndotgwnu
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = (p_s1 + p_s2) / p_c
    odds = np.where(np.isnan(odds) | (odds < 0), 0.0, odds)  # +inf is kept, as in the original
    dump = {
        "n_neutrinos": n,
        "distance_mpc": trigger.distance if trigger.has_distance else None,
        "E_star": e_star,
        "gw_factor": gw_factor,
        "n_pairs": len(terms.pair_sky),
        "burst": not trigger.has_distance,
    }
    return OpaResult(float(odds.sum()), odds, p_s1, p_s2, p_c, terms, dump)
