"""PSF-weighted sky sums of neutrinos over a HEALPix map (SCIENCE.md section 3), batched.

The map-weighted sums (sum_pix p A PSF, and the OPA pair sums) run, for each neutrino, over
a set of *cells* that tiles the map's probability (pixels with p > 0) within
PSF_CUTOFF_SIGMA of it:

* a map pixel coarser than PIXEL_PER_SIGMA * sigma is replaced by sub-pixels of the needed
  order, each with the pixel's probability density (so the normalised PSF sums to 1 however
  narrow it is, without flattening the map anywhere else);
* a map pixel at least that fine is used as it is.

The cells are found by descending the map's HEALPix quad-tree from order 0, for many neutrinos
at once and one order per step, keeping only cells that can reach within the cut-off and hold
some probability. Each neutrino's cells, and so its sums, do not depend on which other
neutrinos share the batch: a single event and a batch of background trials give the same
numbers to the last bit.

The normalised sum, sum_pix A PSF_norm, does not involve the map: it is A's value in each of
its declination bands times the PSF's exact mass there (:func:`psf_band_masses`, a 1-D
integral over the great-circle distance), so it is the limit that pixel sums reach on a fine
enough grid, without summing the (possibly empty) sky pixel by pixel.

Units: angles deg, areas sr, PSF per sr, probability density per sr.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from llama.science.protocols import SkyMapLike

PIXEL_PER_SIGMA = 0.5
"""Cells under a PSF are at most this many sigma across (sqrt of their area)."""
MAX_REFINE_ORDER = 13
PIXEL_RADIUS_PER_SIZE = 1.05
PSF_CUTOFF_SIGMA = 8.0
"""Cells farther than this many sigma from a neutrino are skipped (PSF < 1.3e-14 of peak)."""

BAND_MASS_NODES = 48
"""Gauss-Legendre nodes per smooth piece of the band-mass integral (error < 1e-11 of the PSF's
mass, measured against 200 nodes, poles included)."""

SUB_CELL_STEP = 2
"""A coarse map pixel is split into at most 4**SUB_CELL_STEP sub-cells at a time."""
NEUTRINOS_PER_CHUNK = 256
CELLS_PER_CHUNK = 1_000_000
"""Neutrinos are descended together, at most NEUTRINOS_PER_CHUNK and about CELLS_PER_CHUNK
expected cells at a time (bounds memory; the results do not depend on it)."""
SR_PER_DEG2 = (math.pi / 180.0) ** 2
_SIZE_ORDER0_DEG = math.degrees(math.sqrt(4.0 * math.pi / 12.0))


# ---------------------------------------------------------------- geometry


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
    difference = np.asarray(xyz) - vector
    chord = np.sqrt(np.einsum("...i,...i->...", difference, difference))
    return np.degrees(2.0 * np.arcsin(np.minimum(chord / 2.0, 1.0)))


def order_for_sigma(sigma_deg: ArrayLike) -> np.ndarray:
    """Smallest HEALPix order whose pixel size (sqrt of area) is <= PIXEL_PER_SIGMA * sigma."""
    need = np.ceil(np.log2(_SIZE_ORDER0_DEG / (PIXEL_PER_SIGMA * np.asarray(sigma_deg, float))))
    return np.clip(need, 0, MAX_REFINE_ORDER).astype(np.int64)


def max_pixel_radius_deg(order: ArrayLike) -> np.ndarray:
    """Upper bound (deg) on the centre-to-corner angle of a HEALPix pixel at ``order``
    (the largest HEALPix pixel radius is at most 1.045 x sqrt(pixel area) at every order)."""
    return PIXEL_RADIUS_PER_SIZE * np.degrees(np.sqrt(np.pi / 3.0)) / 2.0 ** np.asarray(order, float)


def psf_band_masses(dec_deg: ArrayLike, sigma_deg: ArrayLike, edges_deg: ArrayLike) -> np.ndarray:
    """Fraction of each PSF (a Gaussian in great-circle distance on the sphere, cut off at
    PSF_CUTOFF_SIGMA) below the first declination edge, between consecutive edges and above
    the last: shape (n, n_edges + 1), rows summing to 1. Angles in deg.

    For every edge within the cut-off, the mass beyond it (on the side away from the
    neutrino, so that small tails keep their own precision) is the integral over distance d of
    exp(-d^2/2 sigma^2) sin d times the arc of the circle of radius d around the neutrino that
    lies beyond the edge. The arc's length has square-root kinks where the circle first
    touches the edge (or wraps over a pole), so each piece between kinks is integrated with
    nodes crowded at both its ends.
    """
    dec = np.radians(np.asarray(dec_deg, float))
    sigma = np.radians(np.asarray(sigma_deg, float))
    edges = np.radians(np.asarray(edges_deg, float))
    cut = np.minimum(PSF_CUTOFF_SIGMA * sigma, np.pi)
    where, weight = _crowded_nodes()
    total = 2.0 * np.pi * cut * (_radial(cut[:, None] * where, sigma[:, None]) @ weight)
    beyond = np.zeros((dec.size, edges.size))
    k, e = np.nonzero(np.abs(edges[None, :] - dec[:, None]) < cut[:, None])
    dec_k, edge = dec[k, None, None], edges[e, None, None]
    kinks = np.stack([np.zeros(k.size), np.abs(edges[e] - dec[k]), np.pi - dec[k] - edges[e],
                      np.pi + dec[k] + edges[e], cut[k]], axis=1)
    kinks = np.sort(np.minimum(kinks, cut[k, None]), axis=1)[:, :, None]
    start, length = kinks[:, :-1], np.diff(kinks, axis=1)
    distance = start + length * where
    with np.errstate(divide="ignore", invalid="ignore"):
        q = (np.sin(edge) - np.sin(dec_k) * np.cos(distance)) / (np.cos(dec_k) * np.sin(distance))
    away = np.where(edge > dec_k, 1.0, -1.0)  # arc above an edge north of the neutrino, else below
    arc = 2.0 * np.arccos(np.clip(away * np.nan_to_num(q, nan=0.0), -1.0, 1.0))
    beyond[k, e] = np.sum(_radial(distance, sigma[k, None, None]) * arc * length * weight, axis=(1, 2))
    north = edges[None, :] > dec[:, None]
    lower = np.concatenate([np.zeros((dec.size, 1)), beyond], axis=1)  # each interval's edges
    upper = np.concatenate([beyond, np.zeros((dec.size, 1))], axis=1)
    lower_north = np.concatenate([np.zeros((dec.size, 1), bool), north], axis=1)
    upper_south = ~np.concatenate([north, np.ones((dec.size, 1), bool)], axis=1)
    mass = np.where(upper_south, upper - lower, np.where(
        lower_north, lower - upper, total[:, None] - lower - upper))
    return np.maximum(mass, 0.0) / total[:, None]


def _crowded_nodes() -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes on [0, 1] mapped by (1 - cos t)/2, t in [0, pi] (crowded at both
    ends, which smooths square-root kinks there), and their weights."""
    x, w = np.polynomial.legendre.leggauss(BAND_MASS_NODES)
    t = np.pi * (x + 1.0) / 2.0
    return (1.0 - np.cos(t)) / 2.0, w * np.sin(t) * np.pi / 4.0


def _radial(distance: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """The PSF's radial weight exp(-d^2/2 sigma^2) sin d (d, sigma in rad)."""
    return np.exp(-0.5 * (distance / sigma) ** 2) * np.sin(distance)


CENTRE_TABLE_MAX_ORDER = 9
"""Pixel-centre vectors of orders up to this are tabulated (all orders together 100 MB) once a
process asks for many of them (background trials); a few are computed as needed."""
_centre_tables: dict[int, np.ndarray] = {}


def _centres(order: int, ipix: np.ndarray) -> np.ndarray:
    """Unit vectors (n, 3) of the centres of NESTED pixels ``ipix`` at ``order``."""
    table = _centre_tables.get(order)
    if table is None and order <= CENTRE_TABLE_MAX_ORDER and 8 * ipix.size >= 12 << (2 * order):
        table = _centre_tables[order] = _computed_centres(order, np.arange(12 << (2 * order)))
    return _computed_centres(order, ipix) if table is None else table[ipix]


def _computed_centres(order: int, ipix: np.ndarray) -> np.ndarray:
    from astropy_healpix.core import healpix_to_xyz

    return np.stack(healpix_to_xyz(ipix, 1 << order, order="nested"), axis=-1)


# ---------------------------------------------------------------- the map as a quad-tree


class PixelTree:
    """The pixels with probability of a flat NESTED or multi-order map, as a HEALPix quad-tree.

    At each order: the map's pixels there with p > 0 (leaves, with probability density per sr)
    and the ancestors of finer such pixels (inner cells). Empty sky is in neither, so a
    descent never enters it.
    """

    def __init__(self, order: np.ndarray, ipix: np.ndarray, prob: np.ndarray, flat: bool):
        self.flat = flat
        self.deepest = int(order.max()) if order.size else 0
        density = np.asarray(prob, float) / np.ldexp(np.pi / 3, -2 * order)
        if flat:  # indexed by ipix; a cell above the map's order is inner if it holds probability
            self._density = density
            self._occupied = [density > 0]
            for _ in range(self.deepest):
                self._occupied.insert(0, self._occupied[0].reshape(-1, 4).any(axis=1))
            return
        held = density > 0
        order, ipix, density = order[held], ipix[held], density[held]
        self._leaves, self._inner = {}, {}
        for level in range(self.deepest + 1):
            at = order == level
            sort = np.argsort(ipix[at])
            self._leaves[level] = (ipix[at][sort], density[at][sort])
            deeper = order > level
            self._inner[level] = np.unique(ipix[deeper] >> (2 * (order[deeper] - level)))

    @classmethod
    def of(cls, skymap: SkyMapLike) -> PixelTree:
        """The tree of a sky map (built once per map and kept in its cache)."""
        return skymap.cached("pixel_tree", lambda: cls._build(skymap))

    @classmethod
    def _build(cls, skymap: SkyMapLike) -> PixelTree:
        order = np.asarray(skymap.order, np.int64)
        if skymap.is_moc:
            ipix = np.asarray(skymap.uniq, np.int64) - (np.int64(4) << (2 * order))
            return cls(order, ipix, skymap.prob, flat=False)
        return cls(order[:1], np.arange(skymap.prob.size), skymap.prob, flat=True)

    def leaves(self, level: int, ipix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(is a map pixel, its probability density per sr) for cells at ``level``."""
        if self.flat:
            if level != self.deepest:
                return np.zeros(ipix.size, bool), np.zeros(ipix.size)
            density = self._density[ipix]
            return density > 0, density
        cells, density = self._leaves.get(level, _EMPTY)
        if cells.size == 0:
            return np.zeros(ipix.size, bool), np.zeros(ipix.size)
        found, where = _lookup(cells, ipix)
        return found, np.where(found, density[where], 0.0)

    def inner(self, level: int, ipix: np.ndarray) -> np.ndarray:
        """Whether cells at ``level`` have finer map pixels below them."""
        if self.flat:
            if level >= self.deepest:
                return np.zeros(ipix.size, bool)
            return self._occupied[level][ipix]
        cells = self._inner.get(level, _EMPTY[0])
        if cells.size == 0:
            return np.zeros(ipix.size, bool)
        return _lookup(cells, ipix)[0]


_EMPTY = (np.zeros(0, np.int64), np.zeros(0))


def _lookup(sorted_cells: np.ndarray, ipix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(found, position) of each ipix in a non-empty sorted array."""
    where = np.minimum(np.searchsorted(sorted_cells, ipix), sorted_cells.size - 1)
    return sorted_cells[where] == ipix, where


# ---------------------------------------------------------------- cells under the PSFs


@dataclass
class PsfCells:
    """The cells under some neutrinos' PSFs: the neutrino each belongs to, centre vectors,
    dec (deg), area (sr) and probability. A neutrino's cells keep their order whatever else
    is in the batch, so sums over them do not depend on the batch."""

    neutrino: np.ndarray
    xyz: np.ndarray
    dec: np.ndarray
    area: np.ndarray
    prob: np.ndarray


def psf_cells(tree: PixelTree, centre: np.ndarray, sigma: np.ndarray) -> PsfCells:
    """The cells within the cut-off of each neutrino (unit vectors ``centre``, sigma in deg)."""
    k, level, xyz, density = _descend(tree, centre, np.asarray(sigma, float))
    area = np.ldexp(np.pi / 3, -2 * level)
    return PsfCells(
        neutrino=k,
        xyz=xyz,
        dec=np.degrees(np.arcsin(np.clip(xyz[:, 2], -1.0, 1.0))),
        area=area,
        prob=density * area,
    )


def _chunks(tree: PixelTree, sigma: np.ndarray) -> list[slice]:
    """Consecutive neutrinos to descend together: a disc of the cut-off radius holds about
    (cut-off / cell size)^2 cells, cells being the target's (or a finer flat map's pixels)."""
    size = PIXEL_PER_SIGMA * sigma
    if tree.flat:
        size = np.minimum(size, np.degrees(np.sqrt(np.pi / 3.0)) / 2.0**tree.deepest)
    cells = np.pi * (PSF_CUTOFF_SIGMA * sigma / size) ** 2 + 12
    group = np.cumsum(cells) // CELLS_PER_CHUNK + np.arange(sigma.size) // NEUTRINOS_PER_CHUNK
    starts = np.flatnonzero(np.diff(group, prepend=-1))
    return [slice(a, b) for a, b in zip(starts, [*starts[1:], sigma.size], strict=False)]


def _descend(tree: PixelTree, centre: np.ndarray, sigma: np.ndarray) -> tuple:
    """One chunk of neutrinos: walk the quad-tree from order 0, one order per step. Map cells
    (``k``, ``ipix``) are looked up in the tree; a map pixel coarser than the target is split
    into sub-cells with its density, at most SUB_CELL_STEP orders deeper at a time, and those
    wait in ``pending`` for the order they reach."""
    cutoff = PSF_CUTOFF_SIGMA * np.asarray(sigma, float)
    target = order_for_sigma(sigma)
    k = np.repeat(np.arange(len(cutoff)), 12)
    ipix = np.tile(np.arange(12, dtype=np.int64), len(cutoff))
    pending: dict[int, list[tuple]] = {}
    found: list[tuple] = []
    for level in range(max(tree.deepest, MAX_REFINE_ORDER) + 1):
        if k.size == 0 and not pending:
            break
        k, ipix, xyz, _ = _within_reach(level, k, ipix, centre, cutoff)
        leaf, density = tree.leaves(level, ipix)
        inner = tree.inner(level, ipix)
        done = leaf & (level >= target[k])
        found.append((k[done], level, xyz[done], density[done]))
        split = leaf & ~done
        _split(pending, level, target, k[split], ipix[split], density[split])
        if level in pending:
            sub_k, sub_ipix, sub_density = (np.concatenate(c) for c in zip(*pending.pop(level), strict=True))
            sub_k, sub_ipix, sub_xyz, near = _within_reach(level, sub_k, sub_ipix, centre, cutoff)
            sub_density = sub_density[near]
            sub_done = level >= target[sub_k]
            found.append((sub_k[sub_done], level, sub_xyz[sub_done], sub_density[sub_done]))
            deeper = ~sub_done
            _split(pending, level, target, sub_k[deeper], sub_ipix[deeper], sub_density[deeper])
        k, ipix = np.repeat(k[inner], 4), _children(ipix[inner], 1)
    return (
        np.concatenate([f[0] for f in found]),
        np.concatenate([np.full(f[0].size, f[1]) for f in found]),
        np.concatenate([f[2] for f in found]),
        np.concatenate([f[3] for f in found]),
    )


def _split(pending: dict, level: int, target: np.ndarray, k: np.ndarray, ipix: np.ndarray,
           density: np.ndarray) -> None:
    """Queue the sub-cells of cells at ``level`` that are coarser than their target."""
    step = np.minimum(target[k] - level, SUB_CELL_STEP)
    for depth in np.unique(step):
        at = step == depth
        n = 4 ** int(depth)
        pending.setdefault(level + int(depth), []).append(
            (np.repeat(k[at], n), _children(ipix[at], int(depth)), np.repeat(density[at], n))
        )


def _within_reach(level: int, k: np.ndarray, ipix: np.ndarray, centre: np.ndarray,
                  cutoff: np.ndarray) -> tuple:
    """The cells at ``level`` that can hold a point within the cut-off of their neutrino:
    (k, ipix, centre vectors, mask of the cells kept)."""
    xyz = _centres(level, ipix)
    cos_reach = np.cos(np.radians(np.minimum(cutoff + max_pixel_radius_deg(level), 180.0)))
    near = np.einsum("ij,ij->i", xyz, centre[k]) > cos_reach[k]
    return k[near], ipix[near], xyz[near], near


def _children(ipix: np.ndarray, depth: int) -> np.ndarray:
    """NESTED indices of the descendants of each cell ``depth`` orders deeper."""
    n = 4**depth
    return (n * ipix[:, None] + np.arange(n)).ravel()


# ---------------------------------------------------------------- the sums


@dataclass
class Pairs:
    """OPA neutrino pairs: the first neutrino i of each, and the partner's unit vector,
    sigma (deg) and A per band (at its clipped energy, GeV^-1)."""

    first: np.ndarray
    centre: np.ndarray
    sigma: np.ndarray
    bands: np.ndarray


@dataclass
class SkySums:
    """Per neutrino: sum_cells p A PSF (sr^-1 GeV^-1) and sum_bands A PSF_norm mass (GeV^-1);
    per pair: sum over the first neutrino's cells of p A(E_i) A(E_j') PSF_i PSF_j (sr^-1 GeV^-2)."""

    sky: np.ndarray
    sky_norm: np.ndarray
    pair_sky: np.ndarray


def sky_sums(tree: PixelTree, centre: np.ndarray, sigma: np.ndarray, bands: np.ndarray,
             energy_weight, pairs: Pairs | None = None) -> SkySums:
    """Sky sums of every neutrino (unit vectors ``centre``, sigma in deg, ``bands`` (n, n_bands)
    A per band) and of ``pairs``, the map's cells a chunk of neutrinos at a time (memory stays
    bounded)."""
    sigma = np.asarray(sigma, float)
    if sigma.size == 0:
        return SkySums(np.zeros(0), np.zeros(0), np.zeros(0))
    dec = np.degrees(np.arcsin(np.clip(centre[:, 2], -1.0, 1.0)))
    masses = psf_band_masses(dec, sigma, energy_weight.band_edges_dec)
    sky_norm = np.einsum("ij,ij->i", bands[:, energy_weight.interval_bands()], masses)
    out = SkySums(np.zeros(sigma.size), sky_norm, np.zeros(0 if pairs is None else pairs.first.size))
    for chunk in _chunks(tree, sigma):
        cells = psf_cells(tree, centre[chunk], sigma[chunk])
        k = cells.neutrino
        below, above, share = energy_weight.pixel_bands(cells.dec, cells.area)
        weight = _band_mix(bands[chunk], k, below, above, share)
        psf = psf_per_sr(separation_deg(cells.xyz, centre[chunk][k]), sigma[chunk][k])
        weighted = cells.prob * weight * psf
        out.sky[chunk] = np.bincount(k, weighted, minlength=chunk.stop - chunk.start)
        if pairs is not None:
            here = np.flatnonzero((pairs.first >= chunk.start) & (pairs.first < chunk.stop))
            out.pair_sky[here] = _pair_sums(
                cells, weighted, (below, above, share), pairs.first[here] - chunk.start,
                pairs.centre[here], pairs.sigma[here], pairs.bands[here],
            )  # fmt: skip
    return out


def _pair_sums(cells: PsfCells, weighted: np.ndarray, split: tuple, first: np.ndarray,
               centre: np.ndarray, sigma: np.ndarray, partner_bands: np.ndarray) -> np.ndarray:
    """Pair sky sums over the cells of ``first`` (indices into the chunk)."""
    if first.size == 0:
        return np.zeros(0)
    by_neutrino = np.argsort(cells.neutrino, kind="stable")
    start = np.searchsorted(cells.neutrino[by_neutrino], np.arange(int(first.max()) + 2))
    counts = start[first + 1] - start[first]
    pair = np.repeat(np.arange(first.size), counts)
    offset = np.arange(pair.size) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = by_neutrino[offset + start[first][pair]]
    below, above, share = (part[rows] for part in split)
    a_j = _band_mix(partner_bands, pair, below, above, share)
    psf_j = psf_per_sr(separation_deg(cells.xyz[rows], centre[pair]), sigma[pair])
    return np.bincount(pair, weighted[rows] * a_j * psf_j, minlength=first.size)


def _band_mix(bands: np.ndarray, row: np.ndarray, below: np.ndarray, above: np.ndarray,
              share: np.ndarray) -> np.ndarray:
    """A of each cell: its row's band values mixed by the cell's share below a band edge."""
    return bands[row, below] * share + bands[row, above] * (1.0 - share)
