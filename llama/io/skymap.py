"""HEALPix gravitational-wave sky maps: read, write, rasterise, simulate.

Flat maps are held in NESTED order with ``nside`` set; multi-order (NUNIQ) maps stay
multi-order with ``uniq`` set. ``prob`` is always probability per pixel (dimensionless, sums
to 1); pixel areas are in sr, angles in degrees, distances in Mpc, DISTNORM in Mpc^-2.

Files are read with astropy.io.fits (not ligo.skymap.io, which loads lal): astropy parses the
headers and column formats, and the table rows are viewed in place with numpy, which avoids
astropy's double gzip pass and per-column copies on 12.6M- and 50M-pixel maps.

The distance ansatz (Singer et al. 2016) is p(r | pixel) = DISTNORM r^2 N(r; DISTMU, DISTSIGMA)
for r > 0. Pixels where it is undefined (non-finite DISTMU or DISTSIGMA, as LVK writes for
pixels without a distance estimate) get NaN distances.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import re
import secrets
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from astropy_healpix import healpy as hp
from scipy import special

from llama.errors import InputError

MAX_ORDER = 29  # deepest HEALPix order (NSIDE 2**29)
SUM_TOLERANCE = 1e-3  # largest accepted |sum(prob) - 1| before renormalising
DIST_COLUMNS = ("DISTMU", "DISTSIGMA", "DISTNORM")
SIMULATED_CREATOR = "llama (SIMULATED)"
_BASE_ORDER = 3  # simulated maps start at order 3 (768 pixels) everywhere ...
_REFINE_PER_STEP = 192  # ... and split this many most probable pixels per order step
_T_SPAN = 40.0  # ansatz integrals stop 40 sigma past the density's peak (phi ratio < 1e-347)
_BISECTIONS = 52  # inverse-CDF bisection steps: the bracket shrinks to float precision

# meta key -> FITS header keyword
_HEADER_KEYS = {
    "object": "OBJECT",
    "date_obs": "DATE-OBS",
    "mjd_obs": "MJD-OBS",
    "instruments": "INSTRUME",
    "creator": "CREATOR",
    "origin": "ORIGIN",
    "distmean": "DISTMEAN",
    "diststd": "DISTSTD",
}
_FLOAT_KEYS = {"mjd_obs", "distmean", "diststd"}
_NUMERIC_FORMAT = re.compile(r"\d*[BIJKED]")  # fixed-width numeric FITS column formats


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
        return np.broadcast_to(np.int64(_nside_to_order(self.nside)), (self.npix,))

    def pixel_area(self) -> np.ndarray:
        """Area of every pixel, sr (a read-only constant view for flat maps)."""
        if self.is_moc:
            return self._cached("area", lambda: _order_area(self.order))
        return np.broadcast_to(_order_area(_nside_to_order(self.nside)), (self.npix,))

    def pixel_radec(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre RA and Dec, deg (computed on first use, then cached)."""

        def compute() -> tuple[np.ndarray, np.ndarray]:
            order, ipix = self._order_ipix()
            return hp.pix2ang(1 << order, ipix, nest=True, lonlat=True)

        return self._cached("radec", compute)

    def disc(self, ra_deg: float, dec_deg: float, radius_deg: float) -> PixelSet:
        """Pixels whose centres lie within radius_deg of (ra_deg, dec_deg); >= 180 means all."""
        if not (radius_deg >= 0 and math.isfinite(ra_deg) and -90 <= dec_deg <= 90):
            raise InputError(
                f"disc: invalid centre or radius (ra={ra_deg}, dec={dec_deg}, radius={radius_deg})"
            )
        if radius_deg >= 180:
            index = np.arange(self.npix)
        elif self.is_moc:
            dots = self._moc_xyz() @ _unit_vector(ra_deg, dec_deg)
            index = np.flatnonzero(dots >= math.cos(math.radians(radius_deg)))
        else:
            import healpy  # flat maps only: its import costs ~2 s (it loads matplotlib)

            vec = _unit_vector(ra_deg, dec_deg)
            index = healpy.query_disc(self.nside, vec, math.radians(radius_deg), nest=True)
            index = index.astype(np.int64, copy=False)
        xyz = self._moc_xyz()[index] if self.is_moc else _pix2xyz(*self._order_ipix(index))
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
        cdf = self._cached("cdf", lambda: np.cumsum(self.prob))
        index = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
        index = np.minimum(index, self.npix - 1)  # guards u * total rounding up to total
        order, ipix = self._order_ipix(index)
        shift = 2 * (MAX_ORDER - np.asarray(order, dtype=np.int64))
        child = (ipix << shift) + rng.integers(0, np.int64(1) << shift, size=n, dtype=np.int64)
        ra, dec = hp.pix2ang(1 << MAX_ORDER, child, nest=True, lonlat=True)
        distance = np.full(n, np.nan)
        if self.distmu is not None:
            distance = _sample_ansatz(rng, self.distmu[index], self.distsigma[index])
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
        valid = _valid_ansatz(self.distmu, self.distsigma)
        weight = self.prob[valid]
        if not weight.sum() > 0:
            return None
        mean, _ = _ansatz_moments(self.distmu[valid], self.distsigma[valid])
        return float(np.sum(weight * mean) / weight.sum())

    def _cached(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def _order_ipix(self, index: np.ndarray | None = None) -> tuple[Any, np.ndarray]:
        """(order, NESTED ipix) of the pixels at index (all if None); order is an int if flat."""
        if not self.is_moc:
            return _nside_to_order(self.nside), np.arange(self.npix) if index is None else index
        order, ipix = self._cached("order_ipix", lambda: _uniq_to_order_ipix(self.uniq))
        return (order, ipix) if index is None else (order[index], ipix[index])

    def _moc_xyz(self) -> np.ndarray:
        """(n, 3) pixel-centre unit vectors of a multi-order map (cached)."""
        return self._cached("xyz", lambda: _pix2xyz(*self._order_ipix()))


# --------------------------------------------------------------------------------------------
# HEALPix helpers


def _nside_to_order(nside: int) -> int:
    """HEALPix order of a power-of-two NSIDE (1 .. 2**29)."""
    order = int(nside).bit_length() - 1
    if nside != 1 << order or not 0 <= order <= MAX_ORDER:
        raise InputError(f"NSIDE {nside} is not a power of two between 1 and 2**{MAX_ORDER}")
    return order


def _uniq_to_order_ipix(uniq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int64 (order, NESTED ipix) from NUNIQ = 4 * 4**order + ipix (exact integer arithmetic)."""
    thresholds = np.int64(4) << (2 * np.arange(MAX_ORDER + 1, dtype=np.int64))
    order = np.searchsorted(thresholds, uniq, side="right").astype(np.int64) - 1
    return order, uniq - (np.int64(4) << (2 * order))


def _order_area(order: int | np.ndarray) -> np.ndarray:
    """Pixel area at HEALPix order, sr."""
    return np.ldexp(np.pi / 3, -2 * np.asarray(order))


def _pix2xyz(order: int | np.ndarray, ipix: np.ndarray) -> np.ndarray:
    """(n, 3) unit vectors of NESTED pixel centres."""
    return np.column_stack(hp.pix2vec(np.int64(1) << order, ipix, nest=True))


def _unit_vector(ra_deg: float, dec_deg: float) -> np.ndarray:
    return np.asarray(hp.ang2vec(ra_deg, dec_deg, lonlat=True), dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Distance ansatz: p(r) proportional to r**2 N(r; mu, sigma), r > 0


def _valid_ansatz(mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return np.isfinite(mu) & np.isfinite(sigma) & (sigma > 0)


def _ansatz_integrals(mu: np.ndarray, sigma: np.ndarray, r: np.ndarray | float, kmax: int):
    """Scaled [integral_0^r x**k N(x; mu, sigma) dx for k = 0..kmax]; r in Mpc, may be inf.

    With x = mu + sigma t, t runs from lo = -mu/sigma to hi = (r - mu)/sigma, and
    I_k = integral t**k phi(t) dt obeys I_k = (k-1) I_{k-2} - [t**(k-1) phi(t)]_lo^hi.
    Every value is multiplied by exp(max(lo, 0)**2 / 2): a per-(mu, sigma) factor that cancels
    in the ratios taken from these integrals and keeps pixels with DISTMU << 0 from underflowing.
    """
    lo = -mu / sigma
    top = np.maximum(lo, 0.0)  # where phi peaks on [lo, inf)
    hi = np.minimum((r - mu) / sigma, top + _T_SPAN)
    phi_lo, phi_hi = _scaled_phi(lo, top), _scaled_phi(hi, top)
    upper_tail = _mills(lo) * phi_lo - _mills(hi) * phi_hi  # exact where lo > 0
    t_moments = [
        np.where(lo > 0, upper_tail, special.ndtr(hi) - special.ndtr(lo)),
        phi_lo - phi_hi,
    ]
    for k in range(2, kmax + 1):
        edge = hi ** (k - 1) * phi_hi - lo ** (k - 1) * phi_lo
        t_moments.append((k - 1) * t_moments[k - 2] - edge)
    return [
        sum(math.comb(k, j) * mu ** (k - j) * sigma**j * t_moments[j] for j in range(k + 1))
        for k in range(kmax + 1)
    ]


def _scaled_phi(t: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Standard normal density at t times exp(top**2 / 2)."""
    return np.exp(0.5 * (top * top - t * t)) / math.sqrt(2 * math.pi)


def _mills(t: np.ndarray) -> np.ndarray:
    """Mills ratio (1 - Phi(t)) / phi(t)."""
    return math.sqrt(math.pi / 2) * special.erfcx(t / math.sqrt(2))


def _ansatz_moments(mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Conditional distance mean and standard deviation (Mpc) of the ansatz."""
    _, _, m2, m3, m4 = _ansatz_integrals(mu, sigma, np.inf, 4)
    mean = m3 / m2
    return mean, np.sqrt(np.maximum(m4 / m2 - mean**2, 0.0))


def _ansatz_parameters(distmean: float, diststd: float) -> tuple[float, float, float]:
    """Ansatz (DISTMU, DISTSIGMA, DISTNORM) whose conditional mean and std are the given (Mpc)."""

    def residual(params: np.ndarray) -> np.ndarray:
        mean, std = _ansatz_moments(
            np.array([params[0] * distmean]), np.array([math.exp(params[1]) * diststd])
        )
        return np.array([mean[0] / distmean - 1, std[0] / diststd - 1])

    unreachable = InputError(
        f"distmean={distmean} Mpc, diststd={diststd} Mpc cannot be represented by the distance "
        "ansatz (it needs 0 < diststd < about 0.56 distmean)"
    )
    if not 0 < diststd < distmean:
        raise unreachable
    from scipy import optimize  # simulated maps only; keeps reading maps light

    solution = optimize.root(residual, np.array([1.0, 0.0]))
    if not (solution.success and np.max(np.abs(residual(solution.x))) < 1e-9):
        raise unreachable
    mu, sigma = float(solution.x[0] * distmean), math.exp(solution.x[1]) * diststd
    m2_scaled = _ansatz_integrals(np.array([mu]), np.array([sigma]), np.inf, 2)[2][0]
    return mu, sigma, math.exp(0.5 * max(-mu / sigma, 0.0) ** 2) / float(m2_scaled)


def _sample_ansatz(rng: np.random.Generator, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """One distance (Mpc) per (mu, sigma) by bisection on the exact CDF; NaN where invalid."""
    u = rng.random(mu.size)
    distance = np.full(mu.size, np.nan)
    valid = _valid_ansatz(mu, sigma)
    mu, sigma, u = mu[valid], sigma[valid], u[valid]
    target = u * _ansatz_integrals(mu, sigma, np.inf, 2)[2]
    lo = np.zeros_like(mu)
    hi = np.maximum(mu, 0.0) + _T_SPAN * sigma  # the CDF is exactly 1 here
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        below = _ansatz_integrals(mu, sigma, mid, 2)[2] < target
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    distance[valid] = 0.5 * (lo + hi)
    return distance


# --------------------------------------------------------------------------------------------
# Reading


def read_skymap(path: str | os.PathLike) -> SkyMap:
    """Read a flat (RING/NESTED) or multi-order (NUNIQ) LVK FITS sky map, gzipped or not.

    Raises InputError (one line naming the file) for anything unreadable or invalid.
    """
    path = Path(path)
    try:
        return _read(path)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, EOFError, zlib.error, ValueError, KeyError, TypeError, IndexError) as err:
        raise _input_error(
            path, f"not a readable FITS sky map ({type(err).__name__}: {err})"
        ) from None


def _input_error(path: Path, what: str) -> InputError:
    """InputError whose message is one line: '<path>: <what>'."""
    return InputError(" ".join(f"{path}: {what}".split()))


def _read(path: Path) -> SkyMap:
    raw = path.read_bytes()
    data = _gunzip(path, raw) if raw[:2] == b"\x1f\x8b" else raw
    if not data.startswith(b"SIMPLE  ="):
        raise _input_error(path, "not a FITS file (it does not start with a SIMPLE card)")
    header, columns, table = _read_table(path, data)

    def column(name: str, out_dtype: type) -> np.ndarray | None:
        """Native-endian, contiguous, flattened copy of a column; None if absent."""
        col = columns.get(name)
        if col is None:
            return None
        if not _NUMERIC_FORMAT.fullmatch(col.format) or col.bscale not in (None, 1) or col.bzero:
            raise _input_error(path, f"column {name} has unsupported format {col.format!r}")
        values = table[col.name].copy().reshape(-1)  # one gather, then swap in place (fast)
        values.byteswap(inplace=True)
        return values.view(values.dtype.newbyteorder()).astype(out_dtype, copy=False)

    layers = [column(name, np.float64) for name in DIST_COLUMNS]
    if any(layer is None for layer in layers) and any(layer is not None for layer in layers):
        raise _input_error(path, "incomplete distance layers (need DISTMU, DISTSIGMA, DISTNORM)")
    ordering = str(header.get("ORDERING", "")).strip().upper()
    if ordering == "NUNIQ":
        uniq, density = column("UNIQ", np.int64), column("PROBDENSITY", np.float64)
        if uniq is None or density is None:
            raise _input_error(path, "ORDERING=NUNIQ map needs UNIQ and PROBDENSITY columns")
        nside, order = None, _check_uniq(path, uniq)
        prob = _checked_prob(path, density, "PROBDENSITY") * _order_area(order)
    elif ordering in ("RING", "NESTED"):
        prob, uniq = column("PROB", np.float64), None
        if prob is None:
            raise _input_error(path, f"ORDERING={ordering} map has no PROB column")
        nside = _check_nside(path, header, prob.size)
        if ordering == "RING":
            ring_of_nest = hp.nest2ring(nside, np.arange(prob.size))
            prob, layers = prob[ring_of_nest], [x if x is None else x[ring_of_nest] for x in layers]
        _checked_prob(path, prob, "PROB")
    else:
        raise _input_error(path, f"unknown ORDERING {ordering!r} (expected RING, NESTED or NUNIQ)")
    total = prob.sum()
    if abs(total - 1) > SUM_TOLERANCE:
        raise _input_error(path, f"total probability is {total:.6g}, not 1")
    prob /= total
    return SkyMap(prob, nside, uniq, *layers, meta=_meta(path, header, raw))


def _read_table(path: Path, data: bytes) -> tuple[dict[str, Any], dict[str, Any], np.ndarray]:
    """Header keywords (primary, then table), columns by upper-case name and the raw
    big-endian rows of the first binary table with a PROB or PROBDENSITY column."""
    with warnings.catch_warnings():
        # astropy's warnings about truncation or odd headers are superseded by the checks here
        warnings.simplefilter("ignore", AstropyWarning)
        with fits.open(io.BytesIO(data)) as hdul:
            found = [
                (i, hdu)
                for i, hdu in enumerate(hdul)
                if isinstance(hdu, fits.BinTableHDU)
                and {"PROB", "PROBDENSITY"} & {name.upper() for name in hdu.columns.names}
            ]
            if not found:
                raise _input_error(path, "no binary table with a PROB or PROBDENSITY column")
            index, hdu = found[0]
            header = {k: v for h in (hdul[0].header, hdu.header) for k, v in h.items()}
            columns = {col.name.upper(): col for col in hdu.columns}
            dtype = hdu.columns.dtype.newbyteorder(">")  # FITS tables are big-endian on disk
            offset = hdul.fileinfo(index)["datLoc"]
    if dtype.itemsize != header["NAXIS1"]:
        raise _input_error(path, f"row size {header['NAXIS1']} does not match the column formats")
    if len(data) < offset + header["NAXIS2"] * dtype.itemsize:
        raise _input_error(path, "FITS data are truncated")
    return header, columns, np.frombuffer(data, dtype, count=header["NAXIS2"], offset=offset)


def _gunzip(path: Path, raw: bytes) -> bytes:
    """Decompress gzip bytes: one zlib pass sized from the trailer, gzip for multi-member files."""
    isize = int.from_bytes(raw[-4:], "little")  # uncompressed size mod 2**32 (last member)
    try:
        data = zlib.decompress(raw, wbits=31, bufsize=max(1, min(isize, 1100 * len(raw))))
        return data if len(data) % 2**32 == isize else gzip.decompress(raw)
    except (zlib.error, EOFError, OSError) as err:
        raise _input_error(path, f"corrupt or truncated gzip data ({err})") from None


def _checked_prob(path: Path, values: np.ndarray, name: str) -> np.ndarray:
    """values, after checking they are finite and non-negative."""
    if not np.isfinite(values).all():
        raise _input_error(path, f"{name} has {np.count_nonzero(~np.isfinite(values))} NaN/inf")
    if (values < 0).any():
        raise _input_error(path, f"{name} has {np.count_nonzero(values < 0)} negative values")
    return values


def _check_nside(path: Path, header: dict[str, Any], npix: int) -> int:
    """NSIDE of a flat map, checked against its pixel count."""
    nside = header.get("NSIDE")
    if nside is None:
        nside = math.isqrt(npix // 12)
    if not isinstance(nside, int) or 12 * nside * nside != npix or nside & (nside - 1):
        raise _input_error(path, f"NSIDE={nside} does not match {npix} pixels")
    return nside


def _check_uniq(path: Path, uniq: np.ndarray) -> np.ndarray:
    """Orders of valid, non-overlapping NUNIQ indices."""
    if uniq.size == 0 or uniq.min() < 4 or uniq.max() >= np.int64(16) << (2 * MAX_ORDER):
        raise _input_error(path, "UNIQ indices out of range")
    order, ipix = _uniq_to_order_ipix(uniq)
    shift = 2 * (MAX_ORDER - order)
    start, end = ipix << shift, (ipix + 1) << shift  # ranges at the deepest order
    sort = np.argsort(start)
    if np.any(start[sort[1:]] < end[sort[:-1]]):
        raise _input_error(path, "UNIQ pixels overlap or repeat")
    return order


def _meta(path: Path, header: dict[str, Any], raw: bytes) -> dict[str, Any]:
    """Header facts plus the file's path and sha256."""
    meta: dict[str, Any] = {}
    for key, keyword in _HEADER_KEYS.items():
        value = header.get(keyword)
        if key == "instruments":
            meta[key] = [s.strip() for s in str(value or "").split(",") if s.strip()]
        elif value is None or isinstance(value, fits.card.Undefined):
            meta[key] = None
        else:
            meta[key] = float(value) if key in _FLOAT_KEYS else str(value).strip()
    meta["path"] = str(path)
    meta["sha256"] = hashlib.sha256(raw).hexdigest()
    return meta


# --------------------------------------------------------------------------------------------
# Writing


def write_skymap(skymap: SkyMap, path: str | os.PathLike) -> None:
    """Write an LVK-style FITS sky map atomically (gzipped if path ends in .gz)."""
    path = Path(path)
    layers = [
        (name, getattr(skymap, name.lower()), "Mpc-2" if name == "DISTNORM" else "Mpc")
        for name in DIST_COLUMNS
        if skymap.distmu is not None
    ]
    if skymap.is_moc:
        columns = [
            fits.Column("UNIQ", "K", array=skymap.uniq),
            fits.Column("PROBDENSITY", "D", "sr-1", array=skymap.prob / skymap.pixel_area()),
        ]
        cards = [
            ("ORDERING", "NUNIQ"),
            ("MOCORDER", int(skymap.order.max())),
            ("INDXSCHM", "EXPLICIT"),
        ]
    else:
        columns = [fits.Column("PROB", "D", "pix-1", array=skymap.prob)]
        cards = [("ORDERING", "NESTED"), ("NSIDE", skymap.nside), ("INDXSCHM", "IMPLICIT")]
    columns += [fits.Column(name, "D", unit, array=values) for name, values, unit in layers]
    hdu = fits.BinTableHDU.from_columns(columns)
    hdu.header.extend([("PIXTYPE", "HEALPIX"), *cards, ("COORDSYS", "C")])
    for key, keyword in _HEADER_KEYS.items():
        value = skymap.meta.get(key)
        if key == "instruments":
            value = ",".join(value or []) or None
        if value is not None:
            hdu.header[keyword] = value
    # unique name in the same directory, created by astropy (so the umask applies), then renamed
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp{path.suffix}")
    try:
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------
# Rasterising and simulating


def rasterize(skymap: SkyMap, nside: int) -> SkyMap:
    """Flat NESTED map at nside; conserves probability.

    Target pixels finer than the source share their parent's probability by area and inherit
    its distance layers; coarser target pixels sum their children's probability and take the
    area-weighted mean of their layers (as ligo.skymap.moc.rasterize does).
    """
    target = _nside_to_order(nside)
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
    mu, sigma, norm = _ansatz_parameters(distmean, diststd)
    centre = _unit_vector(ra_deg, dec_deg)
    if seed is not None:
        centre = _scatter(centre, math.radians(sigma_deg), np.random.default_rng(seed))

    def log_density(order: np.ndarray, ipix: np.ndarray) -> np.ndarray:
        chord = np.linalg.norm(_pix2xyz(order, ipix) - centre, axis=1)
        return -0.5 * (2 * np.arcsin(0.5 * chord) / math.radians(sigma_deg)) ** 2

    def split(order: np.ndarray, ipix: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
        n = 4**levels
        return np.repeat(order + levels, n), (ipix[:, None] * n + np.arange(n)).reshape(-1)

    order = np.full(12 * 4**_BASE_ORDER, _BASE_ORDER, dtype=np.int64)
    ipix = np.arange(order.size, dtype=np.int64)
    for _ in range(_BASE_ORDER, max_order):
        rank = log_density(order, ipix) + np.log(_order_area(order))
        top = np.argsort(rank)[-_REFINE_PER_STEP:]
        child_order, child_ipix = split(order[top], ipix[top], 1)
        keep = np.ones(order.size, dtype=bool)
        keep[top] = False
        order = np.concatenate([order[keep], child_order])
        ipix = np.concatenate([ipix[keep], child_ipix])
    log_sub = log_density(*split(order, ipix, 2)).reshape(order.size, 16)
    prob = _order_area(order) * np.exp(log_sub - log_sub.max()).mean(axis=1)
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
