"""SIMULATED multi-order sky maps (Gaussian blobs with constant distance layers) for the demo,
tests and quick background studies. Every map is labelled SIMULATED in its header."""

from __future__ import annotations

import math

import numpy as np

from llama.errors import InputError
from llama.io.skymap_distance import ansatz_parameters
from llama.io.skymap_geometry import MAX_ORDER, SkyMap, order_area, pix2xyz, unit_vector

SIMULATED_CREATOR = "llama (SIMULATED)"
_BASE_ORDER = 3  # simulated maps start at order 3 (768 pixels) everywhere ...
_REFINE_PER_STEP = 192  # ... and split this many most probable pixels per order step


def simulated_skymap(
    ra_deg: float,
    dec_deg: float,
    sigma_deg: float,
    *,
    distmean: float = 100.0,
    diststd: float = 30.0,
    max_order: int = 8,
    seed: int | None = None,
    object_name: str = "SIMULATED",
) -> SkyMap:
    """A SIMULATED multi-order map: Gaussian blob, density proportional to exp(-d**2 / 2 sigma**2).

    d is the angular distance (deg) to the blob centre: (ra_deg, dec_deg) when seed is None,
    else a point drawn from the blob around (ra_deg, dec_deg) with that seed, as a real
    localisation scatters around its true source. Order 3 everywhere; the 192 most probable
    pixels are split per step up to max_order (768 + 576 * (max_order - 3) pixels). Each pixel's
    probability averages the density at its 16 order+2 sub-pixel centres. Distance layers are
    constant, with ansatz conditional mean/std = distmean/diststd (Mpc).
    """
    if not (sigma_deg > 0 and math.isfinite(ra_deg) and -90 <= dec_deg <= 90):
        raise InputError(f"simulated_skymap: invalid ra={ra_deg}, dec={dec_deg}, sigma={sigma_deg}")
    if not _BASE_ORDER <= max_order <= MAX_ORDER - 2:
        raise InputError(f"simulated_skymap: max_order {max_order} not in 3..{MAX_ORDER - 2}")
    mu, sigma, norm = ansatz_parameters(distmean, diststd)
    centre = unit_vector(ra_deg, dec_deg)
    if seed is not None:
        centre = _scatter(centre, math.radians(sigma_deg), np.random.default_rng(seed))

    def log_density(order: np.ndarray, ipix: np.ndarray) -> np.ndarray:
        chord = np.linalg.norm(pix2xyz(order, ipix) - centre, axis=1)
        return -0.5 * (2 * np.arcsin(0.5 * chord) / math.radians(sigma_deg)) ** 2

    def split(order: np.ndarray, ipix: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
        n = 4**levels
        return np.repeat(order + levels, n), (ipix[:, None] * n + np.arange(n)).reshape(-1)

    order = np.full(12 * 4**_BASE_ORDER, _BASE_ORDER, dtype=np.int64)
    ipix = np.arange(order.size, dtype=np.int64)
    for _ in range(_BASE_ORDER, max_order):
        rank = log_density(order, ipix) + np.log(order_area(order))
        top = np.argsort(rank)[-_REFINE_PER_STEP:]
        child_order, child_ipix = split(order[top], ipix[top], 1)
        keep = np.ones(order.size, dtype=bool)
        keep[top] = False
        order = np.concatenate([order[keep], child_order])
        ipix = np.concatenate([ipix[keep], child_ipix])
    log_sub = log_density(*split(order, ipix, 2)).reshape(order.size, 16)
    prob = order_area(order) * np.exp(log_sub - log_sub.max()).mean(axis=1)
    uniq = ipix + (np.int64(4) << (2 * order))
    sort = np.argsort(uniq)
    n = order.size
    return SkyMap(
        prob=prob[sort] / prob.sum(),
        nside=None,
        uniq=uniq[sort],
        distmu=np.full(n, mu),
        distsigma=np.full(n, sigma),
        distnorm=np.full(n, norm),
        meta={
            "object": object_name,
            "date_obs": None,
            "mjd_obs": None,
            "instruments": [],
            "creator": SIMULATED_CREATOR,
            "origin": SIMULATED_CREATOR,
            "distmean": float(distmean),
            "diststd": float(diststd),
            "path": None,
            "sha256": None,
        },
    )


def _scatter(centre: np.ndarray, sigma_rad: float, rng: np.random.Generator) -> np.ndarray:
    """centre displaced by a 2-D Gaussian (sigma_rad per axis) in its tangent plane."""
    east = np.cross([0.0, 0.0, 1.0], centre)
    if np.linalg.norm(east) < 1e-12:  # at a pole any tangent direction will do
        east = np.array([1.0, 0.0, 0.0])
    east /= np.linalg.norm(east)
    north = np.cross(centre, east)
    step = sigma_rad * rng.standard_normal(2)
    angle = np.hypot(*step)
    direction = (step[0] * east + step[1] * north) / max(angle, 1e-300)
    return centre * math.cos(angle) + direction * math.sin(angle)
