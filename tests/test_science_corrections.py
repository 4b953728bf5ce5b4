"""The formula corrections of issue 7 (SCIENCE.md sections 2, 3, 5), each against a hand
computation or an independent evaluation on real sky maps."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import shared_path
from science_helpers import T0_MJD, densest_pixel, neutrino_list

from llama.io.skymap import read_skymap
from llama.io.skymap_geometry import uniq_to_order_ipix
from llama.io.tables import load_model
from llama.science import odds, skysums
from llama.science.background import NeutrinoBackgroundDensity
from llama.science.parameters import OUTPUT_NAMES, preset
from llama.significance import make_trigger


@pytest.fixture(scope="module")
def model():
    return load_model("o3")


# ------------------------------------------------------------- section 3: box widening


def test_widening_moves_energy_a_full_decade_past_the_median():
    """11 background events at zenith 100 deg: 5 at 500 GeV, 6 at 1000 GeV (median 1000).

    A 5000 GeV neutrino finds none within +-30%; one widening (x1.5: 3.75 deg, 45%) moves E a
    full decade to 500 GeV (the old code stopped at the median, 1000 GeV) and counts the 5 events
    at 500 GeV. Zenith > 80 deg and E0 > E: g = 10^3.7 and E is restored to 5000 GeV."""
    density = NeutrinoBackgroundDensity(np.full(11, 100.0), np.array([500.0] * 5 + [1000.0] * 6))
    (value,), (energy,) = density(100.0, 5000.0)
    widened = math.radians(2.5 * 1.5)
    solid_angle = 2 * math.pi * abs(math.cos(math.radians(100) - widened)
                                    - math.cos(math.radians(100) + widened))
    expected = 5 / (11 * solid_angle * 2 * 0.45 * 5000.0) / 10**3.7
    assert energy == 5000.0
    assert value == pytest.approx(expected, rel=1e-12)
    # what stopping at the median gives instead: 6 events, g = 5^3.7 (a factor 60 away)
    stopped = 6 / (11 * solid_angle * 2 * 0.45 * 5000.0) / 5**3.7
    assert value / stopped == pytest.approx(5 / 6 * 0.5**3.7, rel=1e-12)


# ------------------------------------------------- section 3: normalised PSF on coarse pixels

FLAT_ORDER = 11  # NSIDE 2048


def flattened_sums(skymap, ra, dec, sigma, energy, energy_weight):
    """sum p A PSF and sum A PSF area / sum PSF area over the map flattened to NSIDE 2048,
    within 8 sigma of (ra, dec): every NSIDE-2048 pixel takes its multi-order parent's
    probability density (written out here, independently of llama.science.odds)."""
    import healpy

    nside = 1 << FLAT_ORDER
    centre = healpy.ang2vec(ra, dec, lonlat=True)
    fine = healpy.query_disc(nside, centre, math.radians(8 * sigma), nest=True).astype(np.int64)
    order, ipix = uniq_to_order_ipix(skymap.uniq)
    first = ipix << (2 * (FLAT_ORDER - order))  # first NSIDE-2048 descendant of each MOC pixel
    by_first = np.argsort(first)
    parent = by_first[np.searchsorted(first[by_first], fine, side="right") - 1]
    area = 4 * math.pi / (12 * nside**2)
    prob = skymap.prob[parent] * area / (4 * math.pi / (12 * 4.0 ** order[parent]))
    x, y, z = healpy.pix2vec(nside, fine, nest=True)
    sep = np.degrees(np.arccos(np.clip(np.stack([x, y, z], 1) @ centre, -1, 1)))
    sigma_sr = math.radians(sigma) ** 2
    psf = np.exp(-0.5 * (sep / sigma) ** 2) / (2 * math.pi * sigma_sr)
    weight = energy_weight(np.full(fine.size, energy), np.degrees(np.arcsin(z)))
    return (prob * weight * psf).sum(), (weight * psf * area).sum() / (psf * area).sum()


def coarse_corner(skymap) -> tuple[float, float]:
    """A corner of a probable order-4 pixel, at least 2.5 deg from the edges of the 10-deg
    bands of A, where no pixel centre lies within 1.6 deg (8 sigma of a 0.2-deg neutrino: the
    case where the PSF sums used to be 0)."""
    import healpy

    order, ipix = uniq_to_order_ipix(skymap.uniq)
    coarse = np.flatnonzero(order == 4)
    depth = 12 - 4
    corners = np.array([0, 1, 2, 3]) * ((4**depth - 1) // 3)  # S, E, W, N descendants
    for k in coarse[np.argsort(-skymap.prob[coarse])]:
        ra, dec = healpy.pix2ang(1 << 12, (ipix[k] << (2 * depth)) + corners, nest=True,
                                 lonlat=True)
        for r, d in zip(ra, dec, strict=True):
            if abs((90 + d) % 10 - 5) < 2.5 and skymap.disc(r, d, 1.6).index.size == 0:
                return float(r), float(d)
    raise AssertionError("no coarse corner found")


@pytest.mark.parametrize("name", ["S251112cm_bayestar.multiorder.fits",
                                  "MS181101ab_userguide_bayestar.multiorder.fits"])
@pytest.mark.parametrize("region", ["coarse", "fine"])
@pytest.mark.parametrize("sigma", [0.2, 2.0])
def test_psf_sums_agree_with_the_map_flattened_to_nside_2048(name, region, sigma, model):
    skymap = read_skymap(shared_path("gw_skymaps", name))
    ra, dec = coarse_corner(skymap) if region == "coarse" else densest_pixel(skymap)
    one = neutrino_list(ra, dec, sigma=sigma, energy=1e5)
    trigger = make_trigger(skymap, T0_MJD, 12.0, ["H1", "L1", "V1"])
    terms = odds.neutrino_terms(skymap, one, trigger, model)
    s1, w = flattened_sums(skymap, ra, dec, sigma, terms.energy[0], model.energy_weight)
    assert s1 > 0 and w > 0
    assert terms.sky[0] == pytest.approx(s1, rel=0.01)
    assert terms.sky_norm[0] == pytest.approx(w, rel=0.01)


def test_normalised_psf_sums_to_one_for_a_narrow_neutrino_on_a_coarse_pixel():
    skymap = read_skymap(shared_path("gw_skymaps", "S251112cm_bayestar.multiorder.fits"))
    ra, dec = coarse_corner(skymap)
    centre = skysums.unit_vectors([ra], [dec])
    cells = skysums.psf_cells(skysums.PixelTree.of(skymap), centre, np.array([0.2]))
    psf = skysums.psf_per_sr(skysums.separation_deg(cells.xyz, centre[0]), 0.2)
    assert (psf * cells.area).sum() == pytest.approx(1.0, rel=1e-3)
    assert cells.area.max() < skymap.pixel_area().max() / 4**5  # the order-4 pixels were split
    assert skymap.disc(ra, dec, 1.6).index.size == 0  # no pixel centre within 8 sigma


def test_sky_sums_skip_empty_sky_and_keep_every_pixel_with_probability(model):
    """GW170817's flat NSIDE-1024 map is 98% exact zeros: the cells under a PSF are its pixels
    with p > 0 only, and the sum over them is the plain sum over every map pixel in the disc."""
    import healpy as hp

    skymap = read_skymap(shared_path("gw_skymaps", "GW170817_skymap.fits.gz"))
    ra0, dec, sigma = *densest_pixel(skymap), 1.0
    radius = math.radians(skysums.PSF_CUTOFF_SIGMA * sigma)
    for ra in ra0 + np.arange(0.0, 90.0, 2.0):  # east of the peak to where the map ends
        centre = skysums.unit_vectors([ra], [dec])
        pix = hp.query_disc(skymap.nside, centre[0], radius, nest=True)
        held = pix[skymap.prob[pix] > 0]
        if held.size < pix.size / 2:
            break
    cells = skysums.psf_cells(skysums.PixelTree.of(skymap), centre, np.array([sigma]))
    assert cells.prob.min() > 0 and 0 < held.size <= cells.prob.size < pix.size / 2
    xyz = np.stack(hp.pix2vec(skymap.nside, pix, nest=True), axis=-1)
    psf = skysums.psf_per_sr(skysums.separation_deg(xyz, centre[0]), sigma)
    dense = (skymap.prob[pix] * psf).sum()
    mine = (cells.prob * skysums.psf_per_sr(skysums.separation_deg(cells.xyz, centre[0]), sigma)).sum()
    assert mine == pytest.approx(dense, rel=1e-12)


def test_sky_sums_across_longitude_zero_on_a_sparse_flat_map(model):
    """A flat map with probability only within 20 deg of (0, 0), walked at its own order over
    its listed pixels: neutrinos whose discs cross RA 0 (and one with none in reach) against
    the plain sum over every map pixel within reach."""
    import healpy as hp

    from llama.io.skymap_geometry import SkyMap

    nside = 256
    xyz = np.stack(hp.pix2vec(nside, np.arange(12 * nside**2), nest=True), axis=-1)
    distance = np.degrees(np.arccos(np.clip(xyz[:, 0], -1, 1)))
    prob = np.where(distance < 20, np.exp(-(distance**2) / 50), 0.0)
    tree = skysums.PixelTree.of(SkyMap(prob=prob / prob.sum(), nside=nside, uniq=None))
    ra, dec = np.array([359.5, 0.3, 358.0, 1.0, 10.0]), np.array([0.0, 10.0, -15.0, 5.0, 88.0])
    sigma = np.array([1.5, 2.0, 1.2, 3.0, 1.0])
    centre = skysums.unit_vectors(ra, dec)
    bands = model.energy_weight.band_values(np.full(5, 1e4))
    sums = skysums.sky_sums(tree, centre, sigma, bands, model.energy_weight)
    assert tree.sparse()  # the listed-pixel path was taken
    area = hp.nside2pixarea(nside)
    below, above, share = model.energy_weight.pixel_bands(np.degrees(np.arcsin(xyz[:, 2])), np.full(xyz.shape[0], area))
    for i in range(5):
        separation = skysums.separation_deg(xyz, centre[i])
        reach = separation < skysums.PSF_CUTOFF_SIGMA * sigma[i] + skysums.max_pixel_radius_deg(8)
        weight = bands[i, below] * share + bands[i, above] * (1 - share)
        dense = (prob / prob.sum() * weight * skysums.psf_per_sr(separation, sigma[i]) * reach).sum()
        assert sums.sky[i] == pytest.approx(dense, rel=1e-13, abs=0.0)
    assert sums.sky[4] == 0.0 and sums.sky[:4].min() > 0


# ------------------------------------------------------------------- section 5: OPA


@pytest.fixture(scope="module")
def s251112cm():
    return read_skymap(shared_path("gw_skymaps", "S251112cm_bayestar.multiorder.fits"))


@pytest.mark.parametrize("group", ["CBC", "Burst"])
def test_opa_pairs_in_cbc_and_burst_events(group, model, s251112cm):
    """A close pair: p_s2 of the lower index from the section 5 formula, Burst included
    (it used to crash: the Burst distance integral returned an array into p_s2[i])."""
    ra0, dec0 = densest_pixel(s251112cm)
    trigger = make_trigger(s251112cm, T0_MJD, 6.0, ["H1", "L1", "V1"], 0.5, group=group)
    pair = neutrino_list([ra0, ra0 + 0.3], [dec0, dec0], [0.0, 100.0], sigma=0.4)
    result = odds.opa(s251112cm, pair, trigger, model)
    p = model.params
    w_pair = model.zenith_weights.pair(pair.zenith[0], pair.zenith[1])
    if group == "Burst":
        gw_and_nu = odds.distance_integral(w_pair, p, snr=trigger.snr, k=2)[0]
    else:
        d = trigger.distance
        prior = odds.log_flat_prior((d * trigger.snr / p.k0) ** 2, p.Egwmin, p.Egwmax)
        gw_and_nu = d**2 * prior * odds.emission_integral(2, d, w_pair, p)
    pair_sky, partner_p_emp = result.terms.pair(0, 1)
    expected = (pair_sky * (500.0 - 100.0) * gw_and_nu * p.ndotgwnu
                / (p.emission_window * p.fb * partner_p_emp))
    assert result.p_s2[0] == pytest.approx(float(expected), rel=1e-12)
    assert result.p_s2[0] > 0 and result.p_s2[1] == 0
    assert np.isfinite(result.odds_ratio) and result.odds_ratio > 0


def test_opa_partner_energy_is_clipped_to_the_primarys_background_range(model, s251112cm):
    ra0, dec0 = densest_pixel(s251112cm)
    trigger = make_trigger(s251112cm, T0_MJD, 6.0, ["H1", "L1", "V1"], 0.5)
    pair = neutrino_list([ra0, ra0 + 0.3], [dec0, dec0], 0.0, sigma=0.4, energy=[1e5, 1e12])
    result = odds.opa(s251112cm, pair, trigger, model)
    ((_, highest),) = model.nu_background.energy_range(float(pair.zenith[0]))
    assert highest < 1e12
    (expected,), _ = model.nu_background(float(pair.zenith[1]), highest)
    assert result.terms.pair(0, 1)[1] == expected


def test_opa_keeps_infinite_odds(model, s251112cm):
    """p_c = 0 (here: a zero neutrino background rate) with a signal gives +inf, as in the
    original code; 0/0 gives 0."""
    ra0, dec0 = densest_pixel(s251112cm)
    no_background = load_model("o3")
    no_background.params = no_background.params.replace(ratebgnu=0.0)
    trigger = make_trigger(s251112cm, T0_MJD, 6.0, ["H1", "L1", "V1"], 0.5)
    two = neutrino_list([ra0, ra0 + 90.0], [dec0, dec0], [0.0, 600.0], sigma=0.4)
    result = odds.opa(s251112cm, two, trigger, no_background)
    assert result.odds[0] == math.inf and result.odds[1] == 0.0
    assert result.odds_ratio == math.inf


def test_psf_cutoff_is_recorded(model):
    described = model.describe()
    assert described["psf_cutoff_sigma"] == odds.PSF_CUTOFF_SIGMA == 8.0
    assert described["opa_pair_separation_sigmas"] == 5.0


# ------------------------------------------------------------- section 2 and 8: parameters


def test_o4_preset_to_the_last_digit_and_original_spellings():
    o4 = preset("o4")
    assert (o4.k0, o4.Egwmin, o4.Egwmax, o4.epsmax) == (1190.0, 18.7, 1870.0, 1e8)
    assert o4.ndotgwnu == 7.578640284119736e-16
    assert o4.delta_omega == 2.5714285714285716 == 18 / 7
    assert o4.delta_E == 0.29162115354365997
    out = o4.to_output()
    for key in ("Egwmin", "Egwmax", "Enumin", "Enumax", "rhomin", "\u03b5min", "\u03b5max",
                "\u03b4\u03c9", "\u0394E", "fb", "k0", "ndotgwnu", "nu_51_100", "ratebggw",
                "ratebgnu", "tgwminus", "tgwplus", "tnuminus", "tnuplus"):
        assert key in out, key
    assert "\u03f5min" not in out  # the lunate epsilon is not the schema's
    assert out["\u03b4\u03c9"] == out["delta_omega"] == 18 / 7
    assert set(OUTPUT_NAMES.values()) <= set(out)
