"""The neutrino flux sensitivity of the +-500 s search over a GW sky map: the
``neutrino_flux_sensitivity_range`` that IceCube's result combiner reads and the GCN "LVK Nu
Track Search" notice carries (SCIENCE.md section 8).

``flux_sensitivity`` = [min, max] over the pixels of the 90% credible region of the GW map of
the time-integrated E^2 dN/dE (GeV cm^-2) of an E^-2 muon-neutrino flux that gives
:data:`UPPER_LIMIT_EVENTS` expected tracks, from the public IceCube effective area at the
pixel's declination (llama.science.detector.EffectiveArea, the bin of its centre).

:data:`UPPER_LIMIT_EVENTS` = -ln(0.1) = 2.303: the 90% CL Poisson upper limit for zero observed
events on zero background. The background in 1000 s is 3.2 tracks over the whole sky, about
1e-3 inside a track's point-spread function, so it is negligible, and the median outcome
under background (the sensitivity) is no event: the limit is then the signal for which seeing
nothing has 10% probability. Feldman-Cousins gives 2.44 for the same case only because its
two-sided ordering over-covers at zero background; the classical one-sided limit is exact here.

``sensitive_energy_range`` = the 5% and 95% quantiles (GeV) of the true neutrino energy of the
tracks an E^-2 flux produces, at the declination of the map's most probable pixel (highest
probability per sr).

Pure numpy: the effective area and the map's pixels are passed in.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from llama.science.detector import EffectiveArea

#: 90% CL upper limit on the signal count for no event observed on no background.
UPPER_LIMIT_EVENTS = -math.log(0.1)
#: Credible level of the GW region the flux range spans.
CREDIBLE_LEVEL = 0.9
#: Central energy quantiles of the E^-2 signal for sensitive_energy_range.
ENERGY_QUANTILES = (0.05, 0.95)


def credible_region(prob: ArrayLike, area_sr: ArrayLike, level: float = CREDIBLE_LEVEL) -> np.ndarray:
    """Indices of the smallest-area region holding at least ``level`` of the probability, most
    probable per sr first: pixels by descending probability per sr, each taken while the
    probability of those before it is below ``level`` (the most probable pixel is always in).
    ``prob`` is per pixel (sums to 1), ``area_sr`` the pixel areas (sr)."""
    prob = np.asarray(prob, float)
    density = prob / np.broadcast_to(np.asarray(area_sr, float), prob.shape)
    total = prob.sum()
    # Pixels below (1 - level) x the mean density hold less than 1 - level in all: they are
    # the tail of the ordering, never in the region (sorting only the rest saves ~1 s on an
    # NSIDE 1024 map).
    candidates = np.flatnonzero(density >= (1.0 - level) * total / (4.0 * np.pi))
    order = candidates[np.argsort(-density[candidates], kind="stable")]
    before = np.cumsum(prob[order]) - prob[order]
    return order[before < level * total]


def flux_sensitivity_range(
    aeff: EffectiveArea, region_dec_deg: ArrayLike, peak_dec_deg: float
) -> dict[str, list[float]]:
    """``{"flux_sensitivity": [lo, hi] (GeV cm^-2), "sensitive_energy_range": [lo, hi] (GeV)}``
    from the declinations (deg) of the credible region's pixel centres and of the most probable
    pixel (see the module docstring)."""
    fluence = aeff.e2_fluence_limit(region_dec_deg, UPPER_LIMIT_EVENTS)
    energy = aeff.e2_energy_quantiles(peak_dec_deg, ENERGY_QUANTILES)
    return {
        "flux_sensitivity": [float(fluence.min()), float(fluence.max())],
        "sensitive_energy_range": [float(energy[0]), float(energy[1])],
    }
