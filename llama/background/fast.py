"""Fast-mode sky sums for background trials: the sky map smoothed once by Gaussian PSFs.

Exact mode sums p A PSF over cells under every neutrino's PSF (llama.science.skysums),
about 1,900 cells a neutrino. Fast mode precomputes, once per sky map, the map's probability
density smoothed by a Gaussian of width sigma_j, P_j(x) = sum_pix p PSF_sigma_j(x, pix) (per sr),
for a grid of widths sigma_j (ratio SIGMA_STEP) with spherical harmonics (healpy), each on a
HEALPix grid of pixels at most sigma_j / PIXELS_PER_SIGMA wide (NSIDE <= MAX_NSIDE); a neutrino
then costs an interpolation:

* P(x, sigma): bilinear in position (healpy.get_interp_weights) on the two grids around sigma,
  linear in log sigma between them;
* sum A PSF_norm: the PSF's mass in each declination band of A, from the Gaussian in
  declination (flat-sky), times A's value in the band: sum_b A_b F_b(dec, sigma);
* sum p A PSF ~ (sum A PSF_norm) x P(x, sigma): A taken as uncorrelated with p under the PSF;
* OPA pairs: PSF_i PSF_j = G(separation; sigma_i^2 + sigma_j^2) x a Gaussian of width
  sigma_i sigma_j / sqrt(sigma_i^2 + sigma_j^2) at the weighted mean position, so the pair sum
  is A_i A_j G(...) P(mean, that width).

Its error against exact mode is measured by benchmarks/bench_trials.py. Angles in deg.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from pathlib import Path

import numpy as np
from scipy.special import ndtr

from llama.io.skymap_geometry import SkyMap, rasterize
from llama.io.storage import atomic_write_bytes
from llama.science.skysums import PSF_CUTOFF_SIGMA, Pairs, SkySums, psf_per_sr, separation_deg

SIGMA_STEP = 2.0**0.5
PIXELS_PER_SIGMA = 2.0
MAX_NSIDE = 512
MIN_NSIDE = 16
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
RELATIVE_FLOOR = 1e-8
"""Smoothed densities below this fraction of their map's peak are set to 0: the harmonic
transform's numerical noise is about that size, while the exact PSF tails fall off as
exp(-d^2/2 sigma^2). A trial whose every neutrino lies that far out gets odds 0 in fast mode
(tiny but positive in exact mode): such trials only ever sit at the bottom of a population."""
CACHE_FORMAT = 1  # bump when the grids' computation changes: old cache files are then unused


class SmoothedSky:
    """A sky map smoothed by Gaussians of widths spanning [sigma_min, sigma_max] (deg).

    The smoothed grids (float32, about 45 MB for a 0.2-2.8 deg sample) are computed once per
    map and kept in ``cache`` (a directory; None: not kept), keyed by the map's pixels and the
    grid parameters, so the jobs of a campaign share them: a cached map loads in
    milliseconds (memory-mapped) instead of 3-5 s of spherical-harmonic transforms. The same
    float32 values are used whether computed or loaded, so results do not depend on the cache.
    """

    def __init__(self, skymap: SkyMap, sigma_min: float, sigma_max: float, energy_weight,
                 cache: Path | None = None):
        self.energy_weight = energy_weight
        steps = math.ceil(math.log(max(sigma_max, sigma_min * 1.0001) / sigma_min, SIGMA_STEP))
        self.sigma = sigma_min * SIGMA_STEP ** np.arange(steps + 1)
        nside = [self._grid_nside(s) for s in self.sigma]
        self.grids = _cached(skymap, self.sigma, nside, cache) if cache else np.concatenate(
            _smooth(skymap, self.sigma, nside))
        """Every width's RING grid, one after the other (float32, per sr)."""
        self._nside = np.array(nside)
        self._offset = np.cumsum([0] + [12 * n * n for n in nside[:-1]])
        edges = np.asarray(energy_weight.band_edges_dec, float)
        self._edges = edges
        self._spacing = float(np.diff(edges).min()) if edges.size > 1 else math.inf
        pad = edges.size + 1  # the most bands a PSF can reach each side of its own
        self._bounds = np.concatenate([np.full(pad + 1, -math.inf), edges, np.full(pad + 1, math.inf)])
        interval_band = energy_weight.interval_bands()
        self._interval_band = np.concatenate(
            [np.full(pad, interval_band[0]), interval_band, np.full(pad, interval_band[-1])])

    @staticmethod
    def _grid_nside(sigma: float) -> int:
        need = math.degrees(math.sqrt(math.pi / 3.0)) * PIXELS_PER_SIGMA / sigma
        return int(min(MAX_NSIDE, max(MIN_NSIDE, 2 ** math.ceil(math.log2(need)))))

    def density(self, ra: np.ndarray, dec: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """P(x, sigma): probability density smoothed by the PSF, per sr."""
        import healpy as hp

        where = np.log(np.clip(sigma, self.sigma[0], self.sigma[-1]) / self.sigma[0])
        where = where / math.log(SIGMA_STEP)
        low = np.minimum(np.floor(where).astype(np.int64), self.sigma.size - 2)
        low = np.maximum(low, 0)
        frac = np.clip(where - low, 0.0, 1.0) if self.sigma.size > 1 else np.zeros(where.size)
        high = np.minimum(low + 1, self.sigma.size - 1)
        level = np.concatenate([low, high])  # both widths of every neutrino
        theta = np.tile(np.radians(90.0 - dec), 2)
        phi = np.tile(np.radians(ra), 2)
        values = np.empty(level.size)
        nside = self._nside[level]
        for n in np.unique(nside):  # one interpolation call per grid resolution
            rows = nside == n
            pixels, weights = hp.get_interp_weights(int(n), theta[rows], phi[rows])
            values[rows] = np.sum(self.grids[self._offset[level[rows]] + pixels] * weights, axis=0)
        below, above = values[: ra.size], values[ra.size :]
        # geometric in sigma (exact for the sigma^-2 of a point source), linear where one is 0
        positive = (below > 0) & (above > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            geometric = np.exp((1.0 - frac) * np.log(below) + frac * np.log(above))
        return np.where(positive, geometric, (1.0 - frac) * below + frac * above)

    def mean_weight(self, dec: np.ndarray, sigma: np.ndarray, bands: np.ndarray) -> np.ndarray:
        """sum_b A_b F_b: A (band values ``bands``, (n, n_bands)) weighted by the PSF's mass
        F_b in each band of A (a Gaussian in declination), over the bands within
        PSF_CUTOFF_SIGMA of the widest grid width around each neutrino's own band."""
        if not dec.size:
            return np.zeros(0)
        pad = self._edges.size + 1
        widest = max(float(sigma.max()), self.sigma[-1])  # the same bands for any batch
        reach = min(math.ceil(PSF_CUTOFF_SIGMA * widest / self._spacing) + 1, pad)
        first = np.searchsorted(self._edges, dec) + (pad - reach)  # in the padded arrays
        interval = first[:, None] + np.arange(2 * reach + 1)
        bounds = self._bounds[np.concatenate([interval, interval[:, -1:] + 1], axis=1)]
        z = (bounds - dec[:, None]) / sigma[:, None]
        below = (z > 0).astype(float)  # the Gaussian's mass below each bound, 0 or 1 ...
        near = np.abs(z) < PSF_CUTOFF_SIGMA  # ... unless the bound is within the cut-off
        below[near] = ndtr(z[near])
        mass = np.diff(below, axis=1)
        return np.einsum("ij,ij->i", np.take_along_axis(bands, self._interval_band[interval], 1), mass)

    def __call__(self, centre: np.ndarray, sigma: np.ndarray, bands: np.ndarray,
                 pairs: Pairs | None = None) -> SkySums:
        """Sky sums (llama.science.skysums.SkySums) of neutrinos at unit vectors ``centre``."""
        sigma = np.asarray(sigma, float)
        ra, dec = _radec(centre)
        mean_a = self.mean_weight(dec, sigma, bands)
        out = SkySums(mean_a * self.density(ra, dec, sigma), mean_a, np.zeros(0))
        if pairs is not None and pairs.first.size:
            out.pair_sky = self._pairs(centre, sigma, mean_a, pairs)
        return out

    def _pairs(self, centre: np.ndarray, sigma: np.ndarray, mean_a: np.ndarray, pairs: Pairs) -> np.ndarray:
        """A_i A_j G(separation; sigma_i^2 + sigma_j^2) P(product's centre, product's width)."""
        i = pairs.first
        s_i, s_j = sigma[i], pairs.sigma
        total = s_i**2 + s_j**2
        weight_j = s_i**2 / total  # the product's centre lies this far from i toward j
        middle = centre[i] * (1.0 - weight_j)[:, None] + pairs.centre * weight_j[:, None]
        middle /= np.linalg.norm(middle, axis=1, keepdims=True)
        overlap = psf_per_sr(separation_deg(centre[i], pairs.centre), np.sqrt(total))
        width = s_i * s_j / np.sqrt(total)
        ra, dec = _radec(middle)
        a_j = self.mean_weight(dec, width, pairs.bands)
        return mean_a[i] * a_j * overlap * self.density(ra, dec, width)


def _radec(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RA in [0, 360) and Dec (deg) of unit vectors (n, 3)."""
    dec = np.degrees(np.arcsin(np.clip(xyz[:, 2], -1.0, 1.0)))
    return np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0])) % 360.0, dec


def _smooth(skymap: SkyMap, sigma: np.ndarray, nside: list[int]) -> list[np.ndarray]:
    """The map's density (per sr) smoothed by each Gaussian width, on RING grids of ``nside``
    (float32; below RELATIVE_FLOOR of each grid's peak set to 0)."""
    import healpy as hp

    top = max(nside)
    flat = rasterize(skymap, top)
    density = hp.reorder(flat.prob / hp.nside2pixarea(top), n2r=True)
    lmax = 3 * top - 1
    alm = hp.map2alm(density, lmax=lmax, iter=0)
    pixel_sigma = math.radians(hp.nside2resol(top)) / math.sqrt(12.0)  # the raster's own blur
    grids = []
    for s, n in zip(sigma, nside, strict=True):
        width = math.sqrt(max(math.radians(s) ** 2 - pixel_sigma**2, 0.0))
        band_limit = min(lmax, 3 * n - 1)
        smoothed = hp.almxfl(hp.resize_alm(alm, lmax, lmax, band_limit, band_limit),
                             hp.gauss_beam(width * FWHM_PER_SIGMA, lmax=band_limit))
        grid = hp.alm2map(smoothed, n, lmax=band_limit)
        grid[grid < RELATIVE_FLOOR * grid.max()] = 0.0  # the transform's noise, not signal
        grids.append(grid.astype(np.float32))
    return grids


def _cached(skymap: SkyMap, sigma: np.ndarray, nside: list[int], cache: Path) -> np.ndarray:
    """:func:`_smooth`'s grids, concatenated, from ``cache/<key>.npy`` (memory-mapped),
    computed and stored on a miss."""
    digest = hashlib.sha256(json.dumps(
        [CACHE_FORMAT, sigma.tolist(), nside, RELATIVE_FLOOR, PIXELS_PER_SIGMA]).encode())
    digest.update(b"flat" if skymap.uniq is None else np.ascontiguousarray(skymap.uniq, np.int64))
    digest.update(np.ascontiguousarray(skymap.prob, dtype=np.float64))  # hashed in place
    path = Path(cache) / f"{digest.hexdigest()}.npy"
    sizes = [12 * n * n for n in nside]
    try:
        flat = np.load(path, mmap_mode="r")
        if flat.shape != (sum(sizes),) or flat.dtype != np.float32:
            raise ValueError("wrong shape")
    except (OSError, ValueError):  # missing, or a foreign or damaged file: recompute
        grids = np.concatenate(_smooth(skymap, sigma, nside))
        buffer = io.BytesIO()
        np.save(buffer, grids)
        Path(cache).mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue())
        return grids
    return np.asarray(flat)  # a plain view of the mapped file
