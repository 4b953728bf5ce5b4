"""HEALPix gravitational-wave sky maps: read and write LVK FITS files.

Maps are read into llama.io.skymap_geometry.SkyMap: flat maps in NESTED order, multi-order
(NUNIQ) maps kept multi-order.

Files are read with astropy.io.fits (not ligo.skymap.io, which loads lal): astropy parses the
headers and column formats, and the table rows are viewed in place with numpy, which avoids
astropy's double gzip pass and per-column copies on 12.6M- and 50M-pixel maps.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import re
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from astropy_healpix import healpy as hp

from llama.errors import InputError
from llama.io.skymap_geometry import (
    MAX_ORDER,
    SkyMap,
    order_area,
    uniq_to_order_ipix,
)
from llama.io.storage import atomic_write_bytes

SUM_TOLERANCE = 1e-3  # largest accepted |sum(prob) - 1| before renormalising
DIST_COLUMNS = ("DISTMU", "DISTSIGMA", "DISTNORM")

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


def read_skymap(path: str | os.PathLike, distances: bool = True) -> SkyMap:
    """Read a flat (RING/NESTED) or multi-order (NUNIQ) LVK FITS sky map, gzipped or not;
    ``distances=False`` leaves the distance layers unread (a plot needs the probability only).

    Raises InputError (one line naming the file) for anything unreadable or invalid.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from None
    return skymap_from_bytes(raw, path, distances)


def skymap_from_bytes(raw: bytes, source: str | os.PathLike, distances: bool = True) -> SkyMap:
    """Read and check a sky map from the bytes of a FITS file (gzipped or not), e.g. one
    embedded in an alert; ``source`` names it in errors and becomes ``meta['path']``.

    Checks everything :func:`read_skymap` does: a readable FITS table, consistent header
    (ORDERING, NSIDE or UNIQ indices, row size, distance layers), finite non-negative
    probabilities summing to 1. Raises InputError (one line naming ``source``) otherwise.
    """
    path = Path(source)
    try:
        return _read(path, raw, distances)
    except InputError:
        raise
    except (OSError, EOFError, zlib.error, ValueError, KeyError, TypeError, IndexError,
            AttributeError, OverflowError, MemoryError, fits.VerifyError) as err:
        raise _input_error(
            path, f"not a readable FITS sky map ({type(err).__name__}: {err})"
        ) from None


def _input_error(path: Path, what: str) -> InputError:
    """InputError whose message is one line: '<path>: <what>'."""
    return InputError(" ".join(f"{path}: {what}".split()))


def _read(path: Path, raw: bytes, distances: bool = True) -> SkyMap:
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

    layers = [column(name, np.float64) if distances else None for name in DIST_COLUMNS]
    if any(layer is None for layer in layers) and any(layer is not None for layer in layers):
        raise _input_error(path, "incomplete distance layers (need DISTMU, DISTSIGMA, DISTNORM)")
    ordering = str(header.get("ORDERING", "")).strip().upper()
    if ordering == "NUNIQ":
        uniq, density = column("UNIQ", np.int64), column("PROBDENSITY", np.float64)
        if uniq is None or density is None:
            raise _input_error(path, "ORDERING=NUNIQ map needs UNIQ and PROBDENSITY columns")
        nside, order = None, _check_uniq(path, uniq)
        prob = _checked_prob(path, density, "PROBDENSITY") * order_area(order)
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
    order, ipix = uniq_to_order_ipix(uniq)
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
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buffer)
    data = buffer.getvalue()
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    atomic_write_bytes(path, data)
