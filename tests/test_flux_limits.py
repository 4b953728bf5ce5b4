"""neutrino_flux_sensitivity_range (llama.science.flux_limits, llama.io.tables): a hand-checked
case, the credible region, and real sky maps with the public IceCube IC86-II effective area."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_path

from llama.errors import InputError
from llama.io.skymap import read_skymap
from llama.io.skymap_geometry import SkyMap, rasterize
from llama.io.tables import DATA, neutrino_flux_sensitivity_range, read_effective_area_cm2
from llama.science.detector import EffectiveArea
from llama.science.flux_limits import (
    UPPER_LIMIT_EVENTS,
    credible_region,
    flux_sensitivity_range,
)

IRFS = ("icecube", "icecube_10year_ps", "irfs")


def ic86_ii() -> EffectiveArea:
    return read_effective_area_cm2(shared_path(*IRFS, "IC86_II_effectiveArea.csv"))


def test_hand_checked_effective_area():
    """A_eff = 100 cm^2 north, 50 cm^2 south, for 100 GeV < E < 10 TeV: an E^-2 flux of
    E^2 dN/dE = 1 GeV cm^-2 gives 100 x (1/100 - 1/10^4) = 0.99 tracks from the north, and
    the cumulative count grows as 1/100 - 1/E."""
    table = np.array([[2.0, 4.0, -90.0, 0.0, 50.0], [2.0, 4.0, 0.0, 90.0, 100.0]])
    aeff = EffectiveArea.from_table(table)
    assert UPPER_LIMIT_EVENTS == pytest.approx(2.302585, rel=1e-6)  # -ln 0.1
    north, south = aeff.e2_fluence_limit([45.0, -45.0], UPPER_LIMIT_EVENTS)
    assert north == pytest.approx(UPPER_LIMIT_EVENTS / 0.99)
    assert south == pytest.approx(UPPER_LIMIT_EVENTS / 0.495)
    expected = [1.0 / (1e-2 - q * (1e-2 - 1e-4)) for q in (0.05, 0.95)]  # 105.2, 1680.7 GeV
    assert aeff.e2_energy_quantiles(45.0, [0.05, 0.95]) == pytest.approx(expected)
    assert flux_sensitivity_range(aeff, [10.0, -10.0, 80.0], 10.0) == {
        "flux_sensitivity": [pytest.approx(north), pytest.approx(south)],
        "sensitive_energy_range": [pytest.approx(e) for e in expected],
    }


def test_energy_quantiles_step_over_empty_bins():
    """Quantiles in a table whose lowest and highest energy bins have no area."""
    table = np.array([[2.0, 3.0, -90.0, 90.0, 0.0], [3.0, 4.0, -90.0, 90.0, 10.0],
                      [4.0, 5.0, -90.0, 90.0, 0.0]])
    low, high = EffectiveArea.from_table(table).e2_energy_quantiles(0.0, [0.0, 1.0])
    assert (low, high) == (pytest.approx(1e3), pytest.approx(1e4))


def test_credible_region_orders_by_density():
    """Equal areas: by probability, the pixel that takes the sum past 90% included; unequal
    areas: a large pixel with more probability but less per sr comes after a small one."""
    prob = np.array([0.05, 0.5, 0.15, 0.3] + [0.0] * 8)
    assert credible_region(prob, np.full(12, np.pi / 3)).tolist() == [1, 3, 2]
    prob, area = np.array([0.6, 0.3, 0.1]), np.array([10.0, 1.0, 1.0])
    assert credible_region(prob, area, level=0.3).tolist() == [1]
    assert credible_region(prob, area, level=0.5).tolist() == [1, 2, 0]
    uniform = SkyMap(np.full(12, 1 / 12), 1, None)  # 11 pixels: 10/12 < 90% <= 11/12
    assert credible_region(uniform.prob, uniform.pixel_area()).size == 11


def test_credible_region_of_a_real_map_is_the_sorted_one():
    """The unsorted tail (pixels below 10% of the mean density) changes nothing: same pixels
    as sorting the whole NSIDE 1024 map, holding just over 90%."""
    skymap = read_skymap(shared_path("gw_skymaps", "GW170817_skymap.fits.gz"))
    region = credible_region(skymap.prob, skymap.pixel_area())
    order = np.argsort(-skymap.prob, kind="stable")
    before = np.cumsum(skymap.prob[order]) - skymap.prob[order]
    assert np.array_equal(region, order[before < 0.9])
    assert 0.9 <= skymap.prob[region].sum() < 0.9 + skymap.prob[region[-1]]


def test_real_maps_with_the_ic86_ii_effective_area():
    aeff = ic86_ii()
    assert (DATA / "IC86_II_effectiveArea.csv").read_bytes() == shared_path(
        *IRFS, "IC86_II_effectiveArea.csv").read_bytes()  # the packaged default is the release's
    every_dec = aeff.e2_fluence_limit(np.linspace(-90, 90, 721), UPPER_LIMIT_EVENTS)
    moc = read_skymap(shared_path("gw_skymaps", "S251112cm_bayestar.multiorder.fits"))
    result = neutrino_flux_sensitivity_range(moc)
    for key in ("flux_sensitivity", "sensitive_energy_range"):
        lo, hi = result[key]
        assert 0 < lo <= hi and all(isinstance(x, float) for x in (lo, hi))
    lo, hi = result["flux_sensitivity"]
    assert every_dec.min() <= lo and hi <= every_dec.max()
    # the 90% region reaches from the southern sky (dec -57 deg) to the north: the range spans
    # the best sensitivity (near the horizon) and nearly the worst (the deep south)
    assert lo == pytest.approx(every_dec.min()) and hi > 10 * lo
    # the same map flattened to NSIDE 256 gives the same declination bins at the ends
    flat = neutrino_flux_sensitivity_range(rasterize(moc, 256))
    assert flat["flux_sensitivity"] == pytest.approx(result["flux_sensitivity"])
    # a map confined to one declination band has one value: lo == hi
    small = read_skymap(shared_path("gw_skymaps", "GW170817_skymap.fits.gz"))
    band = neutrino_flux_sensitivity_range(small)["flux_sensitivity"]
    assert band[0] <= band[1] < 2 * band[0]


def test_order_of_magnitude_of_the_s230914ak_notice():
    """IceCube's notice for S230914ak (most probable direction dec +16.18 deg) gives E^2 dN/dE
    from 0.0277 GeV cm^-2; ours at that declination (public 10-year point-source effective
    area, not the realtime selection; zero-background Poisson limit) is within a factor 2."""
    ours = float(ic86_ii().e2_fluence_limit(16.18, UPPER_LIMIT_EVENTS))
    assert 0.5 < ours / 0.0277 < 2.0


def test_unreadable_effective_area_is_one_line(tmp_path):
    bad = tmp_path / "IC86_II_effectiveArea.csv"
    bad.write_text("logEmin logEmax decmin decmax Aeff\n2 3 -90 90\n")
    with pytest.raises(InputError, match=f"^{bad}: cannot read effective-area table: "):
        read_effective_area_cm2(bad)


def test_declination_without_effective_area_is_refused():
    aeff = EffectiveArea.from_table(np.array([[2.0, 3.0, -90.0, 0.0, 0.0],
                                              [2.0, 3.0, 0.0, 90.0, 1.0]]))
    with pytest.raises(InputError, match="no events from dec -45"):
        aeff.e2_energy_quantiles(-45.0, [0.05, 0.95])
