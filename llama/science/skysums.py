"""PSF-weighted sky sums of neutrinos over a HEALPix map (SCIENCE.md section 3), batched.

The map-weighted sums (sum_pix p A PSF, and the OPA pair sums) run, for each neutrino, over
a set of *cells* that tiles the map's probability (pixels with p > 0) within
PSF_CUTOFF_SIGMA of it:

* where the map's pixels are coarser than PIXEL_PER_SIGMA * sigma, the cells are the pixels
  of the needed (*target*) order, each with the density of the map pixel holding it (so the
  PSF is sampled finely enough however narrow it is, without flattening the map anywhere);
* where the map's pixels are at least that fine, they are the cells as they are.

The target-order cells within reach of many neutrinos at once are found ring by ring
(llama.science.healpix_rings), and the map's value for each looked up in its PixelTree; the
cells whose map pixels are finer are replaced by those pixels. A flat map finer than the
target, with probability on few of its pixels (GW170817: 2%), is walked at its own order
along rings, over a list of those pixels only. Each neutrino's cells, and so
its sums, do not depend on which other neutrinos share the batch: a single event and a batch
of background trials give the same numbers to the last bit.

The normalised sum, sum_pix A PSF_norm, does not involve the map: it is A's value in each of
its declination bands times the PSF's exact mass there (:func:`psf_band_masses`, a 1-D
integral over the great-circle distance), so it is the limit that pixel sums reach on a fine
enough grid, without summing the (possibly empty) sky pixel by pixel.

Units: angles deg, areas sr, PSF per sr, probability density per sr.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from llama.science.healpix_rings import Runs, disc_runs, ring_geometry
from llama.science.protocols import SkyMapLike

MAX_ORDER = 29
"""Deepest HEALPix order: map pixels are compared as ranges of order-29 pixels."""

PIXEL_PER_SIGMA = 0.5
"""Cells under a PSF are at most this many sigma across (sqrt of their area)."""
MAX_REFINE_ORDER = 13
PIXEL_RADIUS_PER_SIZE = 1.05
PSF_CUTOFF_SIGMA = 8.0
"""Cells farther than this many sigma from a neutrino are skipped (PSF < 1.3e-14 of peak)."""

BAND_MASS_NODES = 48
"""Gauss-Legendre nodes per smooth piece of the band-mass integral (error < 1e-11 of the PSF's
mass, measured against 200 nodes, poles included)."""

CELLS_PER_CHUNK = 1_000_000
"""Neutrinos of one target order are evaluated together, about this many cells at a time
(bounds memory; the results do not depend on it)."""
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
    total = 2.0 * np.pi * cut * _row_sums(_radial(cut[:, None] * where, sigma[:, None]) * weight)
    beyond = np.zeros((dec.size, edges.size))
    k, e = np.nonzero(np.abs(edges[None, :] - dec[:, None]) < cut[:, None])
    # circles closer than |edge - dec| have no arc beyond the edge; the other kinks are >= that
    kinks = np.stack([np.abs(edges[e] - dec[k]), np.pi - dec[k] - edges[e], np.pi + dec[k] + edges[e],
                      cut[k]], axis=1)
    kinks = np.sort(np.minimum(kinks, cut[k, None]), axis=1)
    pair, piece = np.nonzero(np.diff(kinks, axis=1) > 0)
    start = kinks[pair, piece][:, None]
    length = kinks[pair, piece + 1][:, None] - start
    distance = start + length * where
    dec_p, edge = dec[k][pair, None], edges[e][pair, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = (np.sin(edge) - np.sin(dec_p) * np.cos(distance)) / (np.cos(dec_p) * np.sin(distance))
    away = np.where(edge > dec_p, 1.0, -1.0)  # arc above an edge north of the neutrino, else below
    arc = 2.0 * np.arccos(np.clip(away * np.nan_to_num(q, nan=0.0), -1.0, 1.0))
    pieces = _row_sums(_radial(distance, sigma[k][pair, None]) * arc * length * weight)
    beyond[k, e] = np.bincount(pair, pieces, minlength=k.size)
    north = edges[None, :] > dec[:, None]
    lower = np.concatenate([np.zeros((dec.size, 1)), beyond], axis=1)  # each interval's edges
    upper = np.concatenate([beyond, np.zeros((dec.size, 1))], axis=1)
    lower_north = np.concatenate([np.zeros((dec.size, 1), bool), north], axis=1)
    upper_south = ~np.concatenate([north, np.ones((dec.size, 1), bool)], axis=1)
    mass = np.where(upper_south, upper - lower, np.where(
        lower_north, lower - upper, total[:, None] - lower - upper))
    return np.maximum(mass, 0.0) / total[:, None]


def _row_sums(matrix: np.ndarray) -> np.ndarray:
    """Sum of each row, column after column: the rounding of a row's sum never depends on how
    many rows there are (numpy's and BLAS's own reductions pick their order by shape)."""
    total = matrix[:, 0].copy()
    for column in matrix.T[1:]:
        total += column
    return total


@functools.cache
def _crowded_nodes() -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes on [0, 1] mapped by (1 - cos t)/2, t in [0, pi] (crowded at both
    ends, which smooths square-root kinks there), and their weights."""
    x, w = np.polynomial.legendre.leggauss(BAND_MASS_NODES)
    t = np.pi * (x + 1.0) / 2.0
    return (1.0 - np.cos(t)) / 2.0, w * np.sin(t) * np.pi / 4.0


def _radial(distance: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """The PSF's radial weight exp(-d^2/2 sigma^2) sin d (d, sigma in rad)."""
    return np.exp(-0.5 * (distance / sigma) ** 2) * np.sin(distance)


def _computed_centres(order: int, ipix: np.ndarray) -> np.ndarray:
    """Unit vectors (n, 3) of the centres of NESTED pixels ``ipix`` at ``order``."""
    from astropy_healpix.core import healpix_to_xyz

    return np.stack(healpix_to_xyz(ipix, 1 << order, order="nested"), axis=-1)


# ---------------------------------------------------------------- the map as a quad-tree


class PixelTree:
    """The pixels with probability (p > 0) of a flat NESTED or multi-order map, answering, for
    cells of any order: the probability density (per sr) of the map pixel that holds the cell,
    or NaN where finer map pixels lie inside the cell, or 0 where the map is empty.
    """

    def __init__(self, order: np.ndarray, ipix: np.ndarray, prob: np.ndarray, flat: bool):
        self.flat = flat
        self.deepest = int(order.max()) if order.size else 0
        density = np.asarray(prob, float) / np.ldexp(np.pi / 3, -2 * order)
        self._rasters: dict[int, np.ndarray] = {}
        self._xyz: np.ndarray | None = None  # multi-order maps: centres of the pixels with p > 0
        self._held_rings: tuple | None = None  # sparse flat maps: those pixels ring by ring
        if flat:  # indexed by ipix; a coarser cell holds finer pixels if any has probability
            self._density = density
            self._held = int(np.count_nonzero(density > 0))
            self._occupied = [density > 0]
            for _ in range(self.deepest):
                self._occupied.insert(0, self._occupied[0].reshape(-1, 4).any(axis=1))
            return
        held = density > 0
        shift = 2 * (MAX_ORDER - order[held])
        start = ipix[held] << shift
        by_start = np.argsort(start)
        self._start = start[by_start]
        self._end = ((ipix[held] + 1) << shift)[by_start]
        self._order = order[held][by_start]
        self._ipix = ipix[held][by_start]
        self._density = density[held][by_start]

    CACHE_KEY = "pixel_tree"

    @classmethod
    def of(cls, skymap: SkyMapLike) -> PixelTree:
        """The tree of a sky map (built once per map and kept in its cache under CACHE_KEY;
        with its value tables up to ~35 MB, dropped by a campaign job done with the map)."""
        return skymap.cached(cls.CACHE_KEY, lambda: cls._build(skymap))

    @classmethod
    def _build(cls, skymap: SkyMapLike) -> PixelTree:
        order = np.asarray(skymap.order, np.int64)
        if skymap.is_moc:
            ipix = np.asarray(skymap.uniq, np.int64) - (np.int64(4) << (2 * order))
            return cls(order, ipix, skymap.prob, flat=False)
        return cls(order[:1], np.arange(skymap.prob.size), skymap.prob, flat=True)

    def values(self, order: int, ipix: np.ndarray) -> np.ndarray:
        """For NESTED cells ``ipix`` at ``order``: the density of the map pixel holding each,
        NaN if it holds finer map pixels, 0 if it holds no probability."""
        if self.flat:
            if order >= self.deepest:
                return self._density[ipix >> (2 * (order - self.deepest))]
            return np.where(self._occupied[order][ipix], np.nan, 0.0)
        if self._start.size == 0:
            return np.zeros(ipix.size)
        shift = 2 * (MAX_ORDER - order)
        start, end = ipix << shift, (ipix + 1) << shift
        at = np.maximum(np.searchsorted(self._start, start, side="right") - 1, 0)
        inside = (self._start[at] <= start) & (self._end[at] > start)  # a map pixel holds the start
        holds = inside & (self._order[at] <= order)
        after = np.minimum(at + 1, self._start.size - 1)
        finer = (inside & ~holds) | ((self._start[after] >= start) & (self._start[after] < end))
        return np.where(holds, self._density[at], np.where(finer, np.nan, 0.0))

    def ring_values(self, order: int, ring_ipix: np.ndarray) -> np.ndarray:
        """:meth:`values` for cells given by RING index; from a table of the whole order (RASTER_MAX_ORDER
        and below, built once many cells are asked for), else cell by cell."""
        raster = self._rasters.get(order)
        if raster is None and order <= RASTER_MAX_ORDER and 8 * ring_ipix.size >= 12 << (2 * order):
            raster = self._rasters[order] = self.values(order, _nest_of_ring(order))
        if raster is not None:
            return raster[ring_ipix]
        return self.values(order, _nested(order, ring_ipix))

    def pixels_within(self, order: int, ring_ipix: np.ndarray) -> tuple[np.ndarray, ...]:
        """The map pixels with probability inside cells (RING ``ring_ipix`` at ``order``, each
        holding finer pixels): (cell index, pixel order, centre vector, density)."""
        if ring_ipix.size == 0:
            return _NO_PIXELS
        ipix = _nested(order, ring_ipix)
        if self.flat:
            depth = self.deepest - order
            children = (ipix[:, None] << (2 * depth)) + np.arange(1 << (2 * depth))
            cell, child = np.nonzero(self._density[children] > 0)
            pixel = children[cell, child]
            return (cell, np.full(cell.size, self.deepest), _computed_centres(self.deepest, pixel),
                    self._density[pixel])
        shift = 2 * (MAX_ORDER - order)
        first = np.searchsorted(self._start, ipix << shift)
        count = np.searchsorted(self._start, (ipix + 1) << shift) - first
        cell = np.repeat(np.arange(ipix.size), count)
        leaf = first[cell] + np.arange(cell.size) - np.repeat(np.cumsum(count) - count, count)
        return cell, self._order[leaf], self._leaf_xyz()[leaf], self._density[leaf]

    def sparse(self) -> bool:
        """Whether a flat map's pixels with probability are listed ring by ring (at most
        HELD_TABLE_MAX of them; GW170817: 256,768, 2% of the sky), listed on first use."""
        if self._held_rings is None and self._held <= HELD_TABLE_MAX:
            from astropy_healpix.core import nested_to_ring

            nside = 1 << self.deepest
            held = np.flatnonzero(self._density > 0)
            ring_ipix = nested_to_ring(held, nside)
            by_ring = np.argsort(ring_ipix)
            ring_ipix, held = ring_ipix[by_ring], held[by_ring]
            before = np.zeros(12 * nside * nside + 1, np.int32)  # held pixels before each RING index
            before[ring_ipix + 1] = 1
            np.cumsum(before, out=before)
            ring = np.arange(1, 4 * nside)
            ring_first = ring_geometry(nside, ring)[4]
            rings = np.zeros(4 * nside, bool)
            rings[ring] = before[np.append(ring_first[1:], 12 * nside * nside)] > before[ring_first]
            position = ring_ipix - np.repeat(ring_first, np.diff(np.searchsorted(
                ring_ipix, np.append(ring_first, 12 * nside * nside))))
            self._held_rings = (before, position, self._density[held], rings)
        return self._held_rings is not None

    def held_rings(self) -> np.ndarray:
        """Which rings (by number) of a sparse flat map hold pixels with probability."""
        return self._held_rings[3]

    def held_runs(self, runs: Runs) -> HeldRuns:
        """The runs (at a sparse flat map's own order) that hold pixels with probability, and
        how many each."""
        before = self._held_rings[0]
        first = runs.ring_first + runs.start
        wraps = runs.start + runs.length > runs.size  # the run passes longitude 0
        end = np.where(wraps, runs.ring_first + runs.size, first + runs.length)
        start = before[first]
        before_zero = before[end] - start
        after_zero = np.where(wraps, before[np.minimum(runs.ring_first + runs.start + runs.length - runs.size,
                                                       before.size - 1)] - before[runs.ring_first], 0)
        count = before_zero + after_zero
        held = count > 0
        return HeldRuns(runs.take(held), count[held], start[held], before_zero[held])

    def held_cells(self, held: HeldRuns) -> tuple[np.ndarray, np.ndarray]:
        """(position in the ring, density) of the pixels with probability of ``held``, run by
        run and along each run."""
        before, position, density, _ = self._held_rings
        count, runs = held.count, held.runs
        offset = np.cumsum(count) - count
        index = np.arange(count.sum()) + np.repeat(held.start - offset, count)
        wrapped = np.flatnonzero(held.before_zero < count)  # runs across longitude 0 go on ...
        tail = count[wrapped] - held.before_zero[wrapped]  # ... from the ring's pixel 0
        step = np.arange(tail.sum()) - np.repeat(np.cumsum(tail) - tail, tail)
        index[np.repeat(offset[wrapped] + held.before_zero[wrapped], tail) + step] = (
            np.repeat(before[runs.ring_first[wrapped]], tail) + step)
        return position[index], density[index]

    def _leaf_xyz(self) -> np.ndarray:
        """Centre vectors of a multi-order map's pixels with probability (computed once)."""
        if self._xyz is None:
            self._xyz = np.empty((self._order.size, 3))
            for level in np.unique(self._order):
                at = self._order == level
                self._xyz[at] = _computed_centres(int(level), self._ipix[at])
        return self._xyz


@dataclass
class HeldRuns:
    """Runs holding a sparse flat map's pixels with probability: how many each, the index (in
    the map's list) of the first, and how many come before longitude 0 (all, unless the run
    passes it)."""

    runs: Runs
    count: np.ndarray
    start: np.ndarray
    before_zero: np.ndarray

    def discs(self, first: int, stop: int) -> HeldRuns:
        """The runs of discs first .. stop - 1, numbered from 0."""
        at = slice(*np.searchsorted(self.runs.disc, [first, stop]))
        runs = self.runs.take(at)
        runs.disc = runs.disc - first
        return HeldRuns(runs, self.count[at], self.start[at], self.before_zero[at])


HELD_TABLE_MAX = 4_000_000
"""A flat map with at most this many pixels with probability is walked over a list of them
(:meth:`PixelTree.sparse`; the list and its prefix table take at most 100 MB + 4 B a pixel)."""
RASTER_MAX_ORDER = 9
"""A map's values at orders up to this are tabulated (RING order, 25 MB at order 9) once a
batch of trials asks for many cells there."""
_nest_tables: dict[int, np.ndarray] = {}


def _nest_of_ring(order: int) -> np.ndarray:
    """NESTED index of every RING pixel at ``order`` (kept per process)."""
    if order not in _nest_tables:
        _nest_tables[order] = _nested(order, np.arange(12 << (2 * order)))
    return _nest_tables[order]


def _nested(order: int, ring_ipix: np.ndarray) -> np.ndarray:
    """NESTED indices of RING pixels (astropy-healpix: healpy would import matplotlib)."""
    from astropy_healpix.core import ring_to_nested

    return ring_to_nested(ring_ipix, 1 << order)


# ---------------------------------------------------------------- cells under the PSFs


@dataclass
class DiscCells:
    """The cells with probability within reach of some discs (one target order): *ring
    cells* at that order, grouped in runs along rings (``runs``; the cells of each run, at
    least one, and each cell's position in its ring and density per sr, 0 where the map is
    empty or finer), and finer map pixels (*pixels*: disc, order,
    centre vector, density). The order of each disc's cells does not depend on the other
    discs, so sums over them do not depend on the batch."""

    order: int
    runs: Runs
    count: np.ndarray
    position: np.ndarray
    density: np.ndarray
    pixel_disc: np.ndarray
    pixel_order: np.ndarray
    pixel_xyz: np.ndarray
    pixel_density: np.ndarray

    @property
    def area(self) -> float:
        """Area of a ring cell, sr."""
        return math.ldexp(math.pi / 3, -2 * self.order)

    def ring_psf_shape(self, centre: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """exp(-d^2 / 2 sigma^2) at every ring cell, d its distance from a point per disc (unit
        vectors ``centre``, ``sigma`` in deg): sin(d/2) = sqrt((dz^2 + ds^2)/4 + s s0
        sin^2(dphi/2)) along a ring, accurate at small angles, with every factor that is the
        same along a run computed once per run."""
        runs = self.runs
        z0 = centre[runs.disc, 2]
        s0 = np.hypot(centre[runs.disc, 0], centre[runs.disc, 1])
        step = np.pi / runs.size  # half a pixel's longitude step
        start = runs.offset * step - np.arctan2(centre[runs.disc, 1], centre[runs.disc, 0]) / 2.0
        across = ((runs.z - z0) ** 2 + (runs.sin_theta - s0) ** 2) / 4.0
        scale = -2.0 * (180.0 / np.pi) ** 2 / sigma[runs.disc] ** 2  # -(2 arcsin)^2 / 2 sigma^2

        def per_cell(per_run: np.ndarray) -> np.ndarray:
            return np.repeat(per_run, self.count)  # a cell's run's value (cells are run by run)

        x = per_cell(step)  # in place from here on: a third faster than with temporaries
        x *= self.position
        x += per_cell(start)
        np.sin(x, out=x)  # sin(dphi / 2)
        x *= x
        x *= per_cell(runs.sin_theta * s0)
        x += per_cell(across)
        np.minimum(x, 1.0, out=x)
        np.sqrt(x, out=x)  # sin(d / 2)
        np.arcsin(x, out=x)
        x *= x
        x *= per_cell(scale)
        return np.exp(x, out=x)

    def pixel_separation_deg(self, centre: np.ndarray) -> np.ndarray:
        """Distance (deg) of every finer pixel from a point per disc."""
        return separation_deg(self.pixel_xyz, centre[self.pixel_disc])


def cell_groups(tree: PixelTree, order: int, centre: np.ndarray, reach_deg: np.ndarray):
    """The cells with probability that can reach within ``reach_deg`` of each centre (unit
    vectors): cells at ``order`` where the map is that coarse or coarser, the map's own finer
    pixels inside such cells elsewhere; as (disc slice, DiscCells of those discs) for groups of
    consecutive discs. A sparse flat map is walked at its own order, its discs grouped by the
    pixels they hold (from none to tens of thousands), about CELLS_PER_CHUNK at a time."""
    z0 = np.clip(centre[:, 2], -1.0, 1.0)
    s0 = np.hypot(centre[:, 0], centre[:, 1])
    phi0 = np.arctan2(centre[:, 1], centre[:, 0]) % (2.0 * np.pi)
    if tree.flat and order < tree.deepest and tree.sparse():
        order = tree.deepest
        reach = np.radians(np.minimum(reach_deg + max_pixel_radius_deg(order), 180.0))
        held = tree.held_runs(disc_runs(1 << order, z0, s0, phi0, reach, tree.held_rings()))
        per_disc = np.bincount(held.runs.disc, held.count, minlength=z0.size)
        group = np.cumsum(per_disc) // CELLS_PER_CHUNK
        bounds = np.flatnonzero(np.diff(group, prepend=-1, append=group[-1] + 1))
        for first, stop in zip(bounds[:-1], bounds[1:], strict=True):
            part = held.discs(first, stop)
            position, density = tree.held_cells(part)
            yield slice(first, stop), DiscCells(order, part.runs, part.count, position, density, *_NO_PIXELS)
        return
    reach = np.radians(np.minimum(reach_deg + max_pixel_radius_deg(order), 180.0))
    runs = disc_runs(1 << order, z0, s0, phi0, reach)
    position = runs.cells()
    ring_ipix = np.repeat(runs.ring_first, runs.length)
    ring_ipix += position
    density = tree.ring_values(order, ring_ipix)
    finer = np.flatnonzero(np.isnan(density))
    cell, pixel_order, pixel_xyz, pixel_density = tree.pixels_within(order, ring_ipix[finer])
    pixel_disc = runs.disc[runs.run_of(finer)][cell]
    near = _within_reach(pixel_xyz, pixel_order, centre, pixel_disc, reach_deg)
    density[finer] = 0.0  # those cells are their finer pixels; empty cells weigh 0 (cheaper to
    # keep than to remove when, as on a BAYESTAR map, nearly every cell holds probability)
    yield slice(0, z0.size), DiscCells(order, runs, runs.length, position, density, pixel_disc[near],
                                       pixel_order[near], pixel_xyz[near], pixel_density[near])


_NO_PIXELS = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros(0))


def _within_reach(xyz: np.ndarray, order: np.ndarray, centre: np.ndarray, disc: np.ndarray,
                  reach_deg: np.ndarray) -> np.ndarray:
    """Which pixels (centre vectors ``xyz``, orders) can reach within ``reach_deg`` of their
    disc's centre."""
    if order.size and order.min() == order.max():  # a flat map: one reach per disc
        cos_reach = np.cos(np.radians(np.minimum(reach_deg + max_pixel_radius_deg(order[0]), 180.0)))[disc]
    else:
        cos_reach = np.cos(np.radians(np.minimum(reach_deg[disc] + max_pixel_radius_deg(order), 180.0)))
    return np.einsum("ij,ij->i", xyz, centre[disc]) > cos_reach


def psf_cells(tree: PixelTree, centre: np.ndarray, sigma: np.ndarray) -> PsfCells:
    """The cells under each neutrino's PSF (unit vectors ``centre``, sigma in deg), with their
    centre vectors, one neutrino after the other (for inspection; the sums use DiscCells)."""
    sigma = np.asarray(sigma, float)
    parts = []
    for order, chunk in _chunks(order_for_sigma(sigma), sigma):
        for discs, cells in cell_groups(tree, order, centre[chunk], PSF_CUTOFF_SIGMA * sigma[chunk]):
            runs = cells.runs  # at the map's own order for a sparse flat map
            run = np.repeat(np.arange(cells.count.size), cells.count)
            held = cells.density > 0
            run, position, density = run[held], cells.position[held], cells.density[held]
            z, s, longitude = runs.z[run], runs.sin_theta[run], runs.longitude(run, position)
            ring_xyz = np.stack([s * np.cos(longitude), s * np.sin(longitude), z], axis=-1)
            parts.append((chunk[discs][np.concatenate([runs.disc[run], cells.pixel_disc])],
                          np.concatenate([ring_xyz, cells.pixel_xyz]),
                          np.concatenate([np.full(run.size, cells.order), cells.pixel_order]),
                          np.concatenate([density, cells.pixel_density])))
    neutrino, xyz, level, density = (np.concatenate(part) for part in zip(*parts, strict=True))
    by_neutrino = np.argsort(neutrino, kind="stable")
    neutrino, xyz, level, density = neutrino[by_neutrino], xyz[by_neutrino], level[by_neutrino], density[by_neutrino]
    area = np.ldexp(np.pi / 3, -2 * level)
    dec = np.degrees(np.arcsin(np.clip(xyz[:, 2], -1.0, 1.0)))
    return PsfCells(neutrino=neutrino, xyz=xyz, dec=dec, area=area, prob=density * area)


@dataclass
class PsfCells:
    """The cells under some neutrinos' PSFs: the neutrino each belongs to, centre vectors,
    dec (deg), area (sr) and probability."""

    neutrino: np.ndarray
    xyz: np.ndarray
    dec: np.ndarray
    area: np.ndarray
    prob: np.ndarray


def _chunks(target: np.ndarray, sigma: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(order, neutrino indices) groups to evaluate together: the neutrinos of one target order,
    at most about CELLS_PER_CHUNK ring cells at a time (bounds memory; results do not depend
    on it)."""
    groups = []
    for order in np.unique(target):
        rows = np.flatnonzero(target == order)
        size = np.degrees(np.sqrt(np.pi / 3.0)) / 2.0**order
        cells = np.pi * ((PSF_CUTOFF_SIGMA * sigma[rows] + 2 * size) / size) ** 2
        chunk = np.cumsum(cells) // CELLS_PER_CHUNK
        groups += [(int(order), rows[chunk == c]) for c in np.unique(chunk)]
    return groups


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


def normalised_sums(centre: np.ndarray, sigma: np.ndarray, bands: np.ndarray, energy_weight) -> np.ndarray:
    """sum A PSF_norm of every neutrino (unit vectors ``centre``, sigma in deg, ``bands``
    (n, n_bands) A per band, GeV^-1): A's band values weighted by the PSF's mass in each band.
    It depends on the declination (z of ``centre``), not the right ascension."""
    dec = np.degrees(np.arcsin(np.clip(centre[:, 2], -1.0, 1.0)))
    masses = psf_band_masses(dec, sigma, energy_weight.band_edges_dec)
    return _row_sums(bands[:, energy_weight.interval_bands()] * masses)


def sky_sums(tree: PixelTree, centre: np.ndarray, sigma: np.ndarray, bands: np.ndarray,
             energy_weight, pairs: Pairs | None = None, sky_norm: np.ndarray | None = None) -> SkySums:
    """Sky sums of every neutrino (unit vectors ``centre``, sigma in deg, ``bands`` (n, n_bands)
    A per band) and of ``pairs``, over the map's cells a group of neutrinos at a time;
    ``sky_norm`` passes :func:`normalised_sums` already known (NaN where not)."""
    sigma = np.asarray(sigma, float)
    if sigma.size == 0:
        return SkySums(np.zeros(0), np.zeros(0), np.zeros(0))
    sky_norm = np.full(sigma.size, np.nan) if sky_norm is None else np.array(sky_norm, float)
    todo = np.isnan(sky_norm)
    if todo.any():
        sky_norm[todo] = normalised_sums(centre[todo], sigma[todo], bands[todo], energy_weight)
    out = SkySums(np.zeros(sigma.size), sky_norm, np.zeros(0 if pairs is None else pairs.first.size))
    target = order_for_sigma(sigma)
    reach = PSF_CUTOFF_SIGMA * sigma
    for order, chunk in _chunks(target, sigma):
        for discs, cells in cell_groups(tree, order, centre[chunk], reach[chunk]):
            rows = chunk[discs]
            out.sky[rows] = _cell_sum(cells, energy_weight, [(centre[rows], sigma[rows], bands[rows])])
    if pairs is not None and pairs.first.size:
        first = pairs.first
        for order, chunk in _chunks(target[first], sigma[first]):
            for discs, cells in cell_groups(tree, order, centre[first[chunk]], reach[first[chunk]]):
                rows = chunk[discs]  # pairs; their cells are those of their first neutrino
                i = first[rows]
                out.pair_sky[rows] = _cell_sum(cells, energy_weight, [
                    (centre[i], sigma[i], bands[i]),
                    (pairs.centre[rows], pairs.sigma[rows], pairs.bands[rows])])
    return out


def _cell_sum(cells: DiscCells, energy_weight, factors: list[tuple]) -> np.ndarray:
    """Per disc: sum over its cells of p times, for each (centre, sigma, bands) factor (one
    row per disc), A at the cell times the PSF there."""
    runs = cells.runs
    n = factors[0][1].size
    ring_dec = np.degrees(np.arctan2(runs.z, runs.sin_theta))
    ring_split = energy_weight.pixel_bands(ring_dec, np.full(ring_dec.size, cells.area))
    pixel_area = np.ldexp(np.pi / 3, -2 * cells.pixel_order)
    pixel_dec = np.degrees(np.arcsin(np.clip(cells.pixel_xyz[:, 2], -1.0, 1.0)))
    pixel_split = energy_weight.pixel_bands(pixel_dec, pixel_area)
    ring_value, ring_weight = cells.density, cells.area
    pixel_value = cells.pixel_density * pixel_area
    for centre, sigma, bands in factors:
        shape = cells.ring_psf_shape(centre, sigma)
        shape *= ring_value
        ring_value = shape
        ring_weight = ring_weight * _band_mix(bands, runs.disc, *ring_split) * psf_per_sr(0.0, sigma[runs.disc])
        pixel_value = pixel_value * _band_mix(bands, cells.pixel_disc, *pixel_split) * psf_per_sr(
            cells.pixel_separation_deg(centre), sigma[cells.pixel_disc])
    per_run = np.add.reduceat(ring_value, np.cumsum(cells.count) - cells.count) if cells.count.size else np.zeros(0)
    return (np.bincount(runs.disc, ring_weight * per_run, minlength=n)
            + np.bincount(cells.pixel_disc, pixel_value, minlength=n))


def _band_mix(bands: np.ndarray, row: np.ndarray, below: np.ndarray, above: np.ndarray,
              share: np.ndarray) -> np.ndarray:
    """A of each cell: its row's band values mixed by the cell's share below a band edge."""
    return bands[row, below] * share + bands[row, above] * (1.0 - share)
