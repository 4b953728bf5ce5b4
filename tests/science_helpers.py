"""Small builders shared by the science tests."""

from __future__ import annotations

import numpy as np

from llama.io.neutrinos import NeutrinoList

T0_MJD = 60000.0


def neutrino_list(ra, dec, dt=0.0, sigma=0.5, energy=1e5, t0_mjd=T0_MJD) -> NeutrinoList:
    """Neutrinos at (ra, dec) deg, dt s after t0, zenith = 90 + dec (South Pole)."""
    ra = np.atleast_1d(np.asarray(ra, float)) % 360.0
    dec = np.broadcast_to(np.asarray(dec, float), ra.shape).copy()
    n = ra.size
    return NeutrinoList(
        mjd=t0_mjd + np.broadcast_to(np.asarray(dt, float), (n,)) / 86400.0,
        ra=ra, dec=dec,
        sigma=np.broadcast_to(np.asarray(sigma, float), (n,)).copy(),
        energy=np.broadcast_to(np.asarray(energy, float), (n,)).copy(),
        zenith=90.0 + dec, azimuth=np.full(n, np.nan),
        run=np.full(n, -1, np.int64), event=np.arange(n, dtype=np.int64),
        type=np.full(n, "unspecified"),
    )


def densest_pixel(skymap) -> tuple[float, float]:
    """RA, Dec (deg) of the pixel with the highest probability density."""
    ra, dec = skymap.pixel_radec()
    k = int(np.argmax(skymap.prob / skymap.pixel_area()))
    return float(ra[k]), float(dec[k])
