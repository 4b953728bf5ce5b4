"""HEALPix sky-map geometry: the in-memory :class:`SkyMap`, pixel selection, rasterising.

Flat maps are held in NESTED order with ``nside`` set; multi-order (NUNIQ) maps stay
multi-order with ``uniq`` set. ``prob`` is always probability per pixel (dimensionless, sums
to 1); pixel areas are in sr, angles in degrees, distances in Mpc, DISTNORM in Mpc^-2.
FITS reading and writing is llama.io.skymap; the distance ansatz is llama.io.skymap_distance.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy_healpix import healpy as hp

from llama.errors import InputError
from llama.io.skymap_distance import ansatz_moments, sample_ansatz, valid_ansatz

MAX_ORDER = 29  # deepest HEALPix order (NSIDE 2**29)


@dataclass
class PixelSet:
    """A selection of sky-map pixels (see ``SkyMap.disc``)."""

    index: np.ndarray  # int64 indices into the parent map's arrays
    prob: np.ndarray  # probability per pixel
    xyz: np.ndarray  # (n, 3) unit vectors of pixel centres
    dec: np.ndarray  # pixel-centre declination, deg
    area: np.ndarray  # pixel area, sr


@dataclass(eq=False)
class SkyMap:
    """A GW sky map: flat NESTED (``nside`` set) or multi-order (``uniq`` set)."""

    prob: np.ndarray
    nside: int | None
    uniq: np.ndarray | None
    distmu: np.ndarray | None = None
    distsigma: np.ndarray | None = None
    distnorm: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    @property
    def is_moc(self) -> bool:
        """True for a multi-order (NUNIQ) map."""
        return self.uniq is not None

    @property
    def npix(self) -> int:
        """Number of pixels (rows)."""
        return self.prob.size

    @property
    def order(self) -> np.ndarray:
        """int64 HEALPix order of every pixel (a read-only constant view for flat maps)."""
        if self.is_moc:
            return self._order_ipix()[0]
        return np.broadcast_to(np.int64(nside_to_order(self.nside)), (self.npix,))

    def pixel_area(self) -> np.ndarray:
        """Area of every pixel, sr (a read-only constant view for flat maps)."""
        if self.is_moc:
            return self.cached("area", lambda: order_area(self.order))
        return np.broadcast_to(order_area(nside_to_order(self.nside)), (self.npix,))

    def pixel_radec(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre RA and Dec, deg (computed on first use, then cached)."""

        def compute() -> tuple[np.ndarray, np.ndarray]:
            order, ipix = self._order_ipix()
            return hp.pix2ang(1 << order, ipix, nest=True, lonlat=True)

        return self.cached("radec", compute)

    def disc(self, ra_deg: float, dec_deg: float, radius_deg: float) -> PixelSet:
        """Pixels whose centres lie within radius_deg of (ra_deg, dec_deg); >= 180 means all."""
        if not (radius_deg >= 0 and math.isfinite(ra_deg) and -90 <= dec_deg <= 90):
            raise InputError(
                f"disc: invalid centre or radius (ra={ra_deg}, dec={dec_deg}, radius={radius_deg})"
            )
        if radius_deg >= 180:
            index = np.arange(self.npix)
        elif self.is_moc:
            dots = self._moc_xyz() @ unit_vector(ra_deg, dec_deg)
            index = np.flatnonzero(dots >= math.cos(math.radians(radius_deg)))
        else:
            import healpy  # flat maps only: its import costs ~2 s (it loads matplotlib)

            vec = unit_vector(ra_deg, dec_deg)
            index = healpy.query_disc(self.nside, vec, math.radians(radius_deg), nest=True)
            index = index.astype(np.int64, copy=False)
        xyz = self._moc_xyz()[index] if self.is_moc else pix2xyz(*self._order_ipix(index))
        return PixelSet(
            index=index,
            prob=self.prob[index],
            xyz=xyz,
            dec=np.degrees(np.arcsin(np.clip(xyz[:, 2], -1.0, 1.0))),
            area=self.pixel_area()[index],
        )

    def sample_sources(
        self, rng: np.random.Generator, n: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draw n sources: RA, Dec (deg) and distance (Mpc; NaN without distance layers).

        A pixel is drawn with probability ``prob``, the position is uniform inside it (the
        centre of a random order-29 descendant) and the distance follows the pixel's ansatz.
        """
        cdf = self.cached("cdf", lambda: np.cumsum(self.prob))
        index = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
        index = np.minimum(index, self.npix - 1)  # guards u * total rounding up to total
        order, ipix = self._order_ipix(index)
        shift = 2 * (MAX_ORDER - np.asarray(order, dtype=np.int64))
        child = (ipix << shift) + rng.integers(0, np.int64(1) << shift, size=n, dtype=np.int64)
        ra, dec = hp.pix2ang(1 << MAX_ORDER, child, nest=True, lonlat=True)
        distance = np.full(n, np.nan)
        if self.distmu is not None:
            distance = sample_ansatz(rng, self.distmu[index], self.distsigma[index])
        return ra, dec, distance

    def distance_mean(self) -> float | None:
        """Posterior mean distance, Mpc: header DISTMEAN, else from the layers, else None.

        From the layers: the prob-weighted mean of the per-pixel ansatz means, over the pixels
        whose ansatz is defined.
        """
        if self.meta.get("distmean") is not None:
            return float(self.meta["distmean"])
        if self.distmu is None:
            return None
        valid = valid_ansatz(self.distmu, self.distsigma)
        weight = self.prob[valid]
        if not weight.sum() > 0:
            return None
        mean, _ = ansatz_moments(self.distmu[valid], self.distsigma[valid])
        return float(np.sum(weight * mean) / weight.sum())

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """The value stored under ``key``, computed by ``compute`` on first use."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def forget(self, key: str) -> None:
        """Drop the value stored under ``key`` (it is computed again if asked for)."""
        self._cache.pop(key, None)

    def _order_ipix(self, index: np.ndarray | None = None) -> tuple[Any, np.ndarray]:
        """(order, NESTED ipix) of the pixels at index (all if None); order is an int if flat."""
        if not self.is_moc:
            return nside_to_order(self.nside), np.arange(self.npix) if index is None else index
        order, ipix = self.cached("order_ipix", lambda: uniq_to_order_ipix(self.uniq))
        return (order, ipix) if index is None else (order[index], ipix[index])

    def _moc_xyz(self) -> np.ndarray:
        """(n, 3) pixel-centre unit vectors of a multi-order map (cached)."""
        return self.cached("xyz", lambda: pix2xyz(*self._order_ipix()))


# --------------------------------------------------------------------------------------------
# HEALPix helpers (NESTED indices, int64)


def nside_to_order(nside: int) -> int:
    """HEALPix order of a power-of-two NSIDE (1 .. 2**29)."""
    order = int(nside).bit_length() - 1
    if nside != 1 << order or not 0 <= order <= MAX_ORDER:
        raise InputError(f"NSIDE {nside} is not a power of two between 1 and 2**{MAX_ORDER}")
    return order


def uniq_to_order_ipix(uniq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int64 (order, NESTED ipix) from NUNIQ = 4 * 4**order + ipix (exact integer arithmetic)."""
    thresholds = np.int64(4) << (2 * np.arange(MAX_ORDER + 1, dtype=np.int64))
    order = np.searchsorted(thresholds, uniq, side="right").astype(np.int64) - 1
    return order, uniq - (np.int64(4) << (2 * order))


def order_area(order: int | np.ndarray) -> np.ndarray:
    """Pixel area at HEALPix order, sr."""
    return np.ldexp(np.pi / 3, -2 * np.asarray(order))


def pix2xyz(order: int | np.ndarray, ipix: np.ndarray) -> np.ndarray:
    """(n, 3) unit vectors of NESTED pixel centres."""
    return np.column_stack(hp.pix2vec(np.int64(1) << order, ipix, nest=True))


def unit_vector(ra_deg: float, dec_deg: float) -> np.ndarray:
    """Unit vector (3,) of a direction given in RA, Dec (deg); plain numpy (astropy-healpix's
    ang2vec costs ~0.2-0.4 ms a call, which the PSF sums pay once per neutrino)."""
    ra, dec = math.radians(ra_deg), math.radians(dec_deg)
    return np.array([math.cos(dec) * math.cos(ra), math.cos(dec) * math.sin(ra), math.sin(dec)])


def rasterize(skymap: SkyMap, nside: int) -> SkyMap:
    """Flat NESTED map at nside; conserves probability.

    Target pixels finer than the source share their parent's probability by area and inherit
    its distance layers; coarser target pixels sum their children's probability and take the
    area-weighted mean of their layers (as ligo.skymap.moc.rasterize does).
    """
    target = nside_to_order(nside)
    npix = 12 * nside * nside
    order, ipix = skymap._order_ipix()
    order = np.broadcast_to(np.int64(order), ipix.shape)
    sources = [skymap.prob] + (
        [skymap.distmu, skymap.distsigma, skymap.distnorm] if skymap.distmu is not None else []
    )
    outputs = [np.zeros(npix) for _ in sources]

    fine = order >= target
    depth = order[fine] - target
    parent = ipix[fine] >> (2 * depth)
    weight = np.ldexp(1.0, -2 * depth)  # child's share of its target pixel's area
    for k, (source, out) in enumerate(zip(sources, outputs, strict=True)):
        values = source[fine] if k == 0 else source[fine] * weight
        out += np.bincount(parent, weights=values, minlength=npix)

    coarse = ~fine
    count = np.int64(1) << (2 * (target - order[coarse]))  # target pixels per source pixel
    starts = np.cumsum(count) - count
    child = (
        np.repeat(ipix[coarse] * count, count) + np.arange(count.sum()) - np.repeat(starts, count)
    )
    for k, (source, out) in enumerate(zip(sources, outputs, strict=True)):
        values = source[coarse] / count if k == 0 else source[coarse]
        out[child] = np.repeat(values, count)
    return SkyMap(outputs[0], nside, None, *(outputs[1:] or [None] * 3), meta=dict(skymap.meta))
