"""Building blocks of SCIENCE.md section 3 against independent derivations."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from scipy import integrate, special

from llama.io.background_sample import default_background_sample
from llama.io.tables import DATA, read_effective_area, read_o3_table, read_zenith_weights
from llama.science import odds, skysums
from llama.science.background import GwSnrBackground, NeutrinoBackgroundDensity
from llama.science.parameters import preset
from llama.science.pvalue import p_value

O3 = preset("o3")


def poisson(k, mu):
    return mu**k * np.exp(-mu) / math.factorial(k)


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("distance", [3.0, 40.0, 250.0])
@pytest.mark.parametrize("weight", [0.065, 2.67])
def test_emission_integral_matches_quadrature(k, distance, weight):
    c = O3.nu_51_100 * 10 * (distance / 100) ** -2 * weight

    def integrand(log_e):
        e = math.exp(log_e)
        return poisson(k, c * e) / math.log(O3.Enumax / O3.Enumin)  # P_nu dE = dlogE / ln(range)

    expected, _ = integrate.quad(integrand, math.log(O3.Enumin), math.log(O3.Enumax), limit=200,
                                 epsabs=0, epsrel=1e-11)
    assert odds.emission_integral(k, distance, weight, O3) == pytest.approx(expected, rel=1e-8)


def _closed_form_x2_exp(a, radius):
    """int_0^R x^2 exp(-a/x^2) dx, derived by parts with the erfc integral."""
    e = math.exp(-a / radius**2)
    inner = radius * e - math.sqrt(math.pi * a) * special.erfc(math.sqrt(a) / radius)
    return radius**3 / 3 * e - 2 * a / 3 * inner


@pytest.mark.parametrize("weight", [0.065, 0.5, 2.67])
def test_distance_integral_matches_closed_form(weight):
    alpha = O3.nu_51_100 * 10 * 100**2 * weight
    radius = O3.r0(O3.Egwmax)
    expected = (_closed_form_x2_exp(alpha * O3.Enumin, radius)
                - _closed_form_x2_exp(alpha * O3.Enumax, radius)) / math.log(O3.Enumax / O3.Enumin)
    assert odds.distance_integral(weight, O3)[0] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("snr", [6.0, 12.0, 40.0])
def test_burst_signal_integral_matches_quadrature(k, snr):
    weight = 1.3
    radius = O3.r0(O3.Egwmax)

    def integrand(x):
        energy = (x * snr / O3.k0) ** 2
        p_gw = 1.0 / (energy * math.log(O3.Egwmax / O3.Egwmin))
        return p_gw * x**2 * float(odds.emission_integral(k, x, weight, O3))

    expected, _ = integrate.quad(integrand, 1e-9, radius, limit=400, epsrel=1e-11)
    assert odds.distance_integral(weight, O3, snr=snr, k=k)[0] == pytest.approx(expected, rel=1e-7)
    volume, _ = integrate.quad(
        lambda x: x**2 / ((x * snr / O3.k0) ** 2 * math.log(O3.Egwmax / O3.Egwmin)), 1e-9, radius)
    assert odds.burst_gw_volume(O3, snr) == pytest.approx(volume, rel=1e-8)


def test_log_flat_priors_are_normalised_on_their_range():
    for lo, hi in [(O3.Egwmin, O3.Egwmax), (O3.Enumin, O3.Enumax)]:
        total, _ = integrate.quad(lambda e, lo=lo, hi=hi: float(odds.log_flat_prior(e, lo, hi)), lo, hi,
                                  points=np.geomspace(lo, hi, 8)[1:-1], limit=200)
        assert total == pytest.approx(1.0, rel=1e-9)


def test_doubling_energy_bounds_changes_priors_as_the_formulas_say():
    doubled = O3.replace(Egwmin=2 * O3.Egwmin, Egwmax=2 * O3.Egwmax,
                         Enumin=2 * O3.Enumin, Enumax=2 * O3.Enumax)
    # the bounds keep their ratio, so the log-flat densities are unchanged at every energy
    for e in [1e-7, 2.5 * O3.Egwmin, 1.0, 0.9 * O3.Egwmax, 100.0]:
        for lo, hi in [("Egwmin", "Egwmax"), ("Enumin", "Enumax")]:
            old = float(odds.log_flat_prior(e, getattr(O3, lo), getattr(O3, hi)))
            new = float(odds.log_flat_prior(e, getattr(doubled, lo), getattr(doubled, hi)))
            ratio = getattr(O3, hi) / getattr(O3, lo)
            assert new == pytest.approx(old, rel=1e-14) and old == pytest.approx(1 / (e * math.log(ratio)))
    # the horizon grows by sqrt(2) in distance, 2^1.5 in volume
    assert doubled.r0(doubled.Egwmax) / O3.r0(O3.Egwmax) == pytest.approx(math.sqrt(2), rel=1e-14)
    assert doubled.horizon_volume / O3.horizon_volume == pytest.approx(2**1.5, rel=1e-14)
    # mu = c E_nu, so doubling both neutrino bounds equals doubling c, i.e. r -> r / sqrt(2)
    for r in [10.0, 80.0]:
        assert odds.emission_integral(1, r, 1.0, doubled) == pytest.approx(
            float(odds.emission_integral(1, r / math.sqrt(2), 1.0, O3)), rel=1e-12)
    # G = d P_gw(E*) (Egwmax - Egwmin) k0^2 / rho^2 doubles; the Burst G_c grows with r0 (sqrt 2)
    assert odds.burst_gw_volume(doubled, 10.0) / odds.burst_gw_volume(O3, 10.0) == pytest.approx(
        math.sqrt(2), rel=1e-14)


def test_time_overlap_is_the_intersection_of_emission_windows():
    dt = np.linspace(-700, 700, 281)
    assert np.allclose(odds.time_overlap(O3, 0.0, dt), np.maximum(0, 500 - np.abs(dt)))
    rng = np.random.default_rng(3)
    for t1, t2 in rng.uniform(-600, 600, size=(50, 2)):
        starts = [0 - 250, t1 - 250, t2 - 250]
        stops = [0 + 250, t1 + 250, t2 + 250]
        brute = max(0.0, min(stops) - max(starts))
        assert odds.time_overlap(O3, 0.0, t1, t2) == pytest.approx(brute)


def test_psf_integrates_to_one_over_the_sky():
    import healpy as hp

    nside, sigma = 1024, 1.0
    vec = skysums.unit_vectors(30.0, -20.0)
    pix = hp.query_disc(nside, vec, math.radians(10 * sigma), nest=True)
    xyz = np.stack(hp.pix2vec(nside, pix, nest=True), axis=-1)
    total = (skysums.psf_per_sr(skysums.separation_deg(xyz, vec), sigma) * hp.nside2pixarea(nside)).sum()
    assert total == pytest.approx(1.0, abs=2e-4)


@pytest.mark.parametrize("dec, sigma", [(-19.6, 0.7), (9.8, 2.5), (-84.5, 1.0), (89.7, 0.4)])
def test_psf_band_masses_agree_with_fine_pixel_sums(dec, sigma):
    """The PSF's mass between declination edges (near an edge, and around both poles) against
    a brute-force sum over order-12 pixels (0.014 deg) within the cut-off, each pixel split
    between the bands it straddles. Such sums themselves wander by a few 1e-4 with how the
    pixel rings fall on an edge (0.2800, 0.2849, 0.2825, 0.2837 at NSIDE 1024 ... 8192 for the
    first case; the integral gives 0.28311, a 2e7-point Monte Carlo 0.28308 +- 0.0001)."""
    import healpy as hp

    edges = np.arange(-80.0, 81.0, 10.0)
    masses = skysums.psf_band_masses([dec], [sigma], edges)[0]
    assert masses.sum() == pytest.approx(1.0, abs=1e-14) and masses.min() >= 0.0
    nside = 4096
    vec = skysums.unit_vectors(123.4, dec)
    pix = hp.query_disc(nside, vec, math.radians(skysums.PSF_CUTOFF_SIGMA * sigma), nest=True)
    xyz = np.stack(hp.pix2vec(nside, pix, nest=True), axis=-1)
    psf = skysums.psf_per_sr(skysums.separation_deg(xyz, vec), sigma)
    height = math.degrees(math.sqrt(hp.nside2pixarea(nside)))
    low = np.degrees(np.arcsin(xyz[:, 2])) - height / 2  # each pixel's share below every edge
    below = np.clip((edges[None, :] - low[:, None]) / height, 0.0, 1.0)
    brute = np.diff(np.concatenate([[0.0], psf @ below / psf.sum(), [1.0]]))
    assert masses == pytest.approx(brute, abs=5e-4)


@pytest.mark.parametrize("sigma", [0.2, 0.5])
def test_psf_band_masses_at_the_equator_are_the_flat_sky_gaussian(sigma):
    """An edge along the equator is a great circle: the mass beyond it is the 1-D Gaussian's
    tail, to the sphere's curvature (sigma^2 in rad^2, ~1e-5)."""
    from scipy.special import ndtr

    edges = np.arange(-80.0, 81.0, 10.0)
    masses = skysums.psf_band_masses([0.3], [sigma], edges)[0]
    flat = np.diff(np.concatenate([[0.0], ndtr((edges - 0.3) / sigma), [1.0]]))
    assert np.abs(masses - flat).max() < 1e-5


def test_psf_band_masses_converge_in_their_nodes(monkeypatch):
    """48 Gauss-Legendre nodes a piece against 200: within 1e-11 everywhere, poles included."""
    rng = np.random.default_rng(5)
    dec = np.concatenate([rng.uniform(-90, 90, 3000), [89.99, -89.99, 80.001, -79.999]])
    sigma = np.concatenate([rng.uniform(0.2, 3.0, 3000), [1.0, 2.8, 0.2, 0.3]])
    edges = np.arange(-80.0, 81.0, 10.0)
    used = skysums.psf_band_masses(dec, sigma, edges)
    monkeypatch.setattr(skysums, "BAND_MASS_NODES", 200)
    assert np.abs(used - skysums.psf_band_masses(dec, sigma, edges)).max() < 1e-11


def test_o3_table_follows_its_header_formula():
    with (DATA / "aeff_lookup.csv").open() as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    table = {(r["energy_key"], int(r["angle_index"])): (float(r["log10_factor"]), float(r["slope"]))
             for r in rows}
    model = read_o3_table()
    for log_e, dec in [(3.2, 10.0), (2.0, -5.0), (5.75, 60.0), (7.99, 89.0), (4.5, -35.0)]:
        k = next(k for k in range(4, 16) if log_e < (k + 1) / 2)
        i = int((90 + dec) // 10)
        factor, slope = table[(str(k), i)]
        expected = 0.0 if factor == -15 else 10 ** (factor + (log_e - (k + 1) / 2 + 0.5) * 2 * slope)
        assert model(10**log_e, dec) == pytest.approx(expected, rel=1e-12)
    assert model(1e8, 30.0) == 0 and model(3e9, 30.0) == 0
    assert model(1e3, -85.0) == 0  # log10_factor -15 means zero


def test_public_effective_area_weight_is_a_normalised_energy_pdf():
    model = read_effective_area(epsmin=O3.epsmin, epsmax=O3.epsmax)
    energy = np.geomspace(O3.epsmin, O3.epsmax, 400001)
    totals = np.trapezoid(model.band_values(energy), energy, axis=0)
    assert np.allclose(totals, 1.0, atol=2e-3)
    assert model(5e9, 0.0) == 0  # above epsmax


def test_zenith_weights_index_by_five_degree_bands():
    weights = read_zenith_weights()
    assert weights.weights.size == 36
    assert weights(92.0) == weights.weights[18] and weights(179.99) == weights.weights[35]
    assert weights.pair(90.0, 101.0) == weights.weights[19]  # floor(191 / 10)


def test_neutrino_background_density_matches_a_brute_force_count():
    sample = default_background_sample()
    density = NeutrinoBackgroundDensity.from_sample(sample, O3.delta_omega, O3.delta_E)
    theta, energy = 110.0, 2000.0
    in_box = (np.abs(sample.zenith - theta) < 2.5) & (np.abs(sample.energy - energy) < 0.3 * energy)
    assert in_box.sum() >= 5
    solid_angle = 2 * math.pi * abs(math.cos(math.radians(theta - 2.5)) - math.cos(math.radians(theta + 2.5)))
    expected = in_box.sum() / (sample.zenith.size * solid_angle * 2 * 0.3 * energy)
    (value,), (used_energy,) = density(theta, energy)
    assert value == pytest.approx(expected, rel=1e-12) and used_energy == energy


def test_widened_box_is_reset_for_every_neutrino():
    """Defect 2: the widening for a sparse neutrino must not leak into the next one."""
    sample = default_background_sample()
    density = NeutrinoBackgroundDensity.from_sample(sample, O3.delta_omega, O3.delta_E)
    sparse, dense = (150.0, 3e8), (110.0, 2000.0)
    together, _ = density([sparse[0], dense[0]], [sparse[1], dense[1]])
    alone, _ = density([dense[0]], [dense[1]])
    assert together[1] == alone[0]
    # the sparse one was widened and, being up-going (> 80 deg), extrapolated with (E0/E)^3.7
    (value,), (energy,) = density(*sparse)
    assert energy == sparse[1] and 0 < value < density(150.0, 1e4)[0][0]


def reference_density(zenith, energy, theta, energy0, d_omega=2.5, d_e=0.3):
    """SCIENCE.md section 3 for one neutrino, written out: count in the box, widen, repeat."""
    median = np.median(energy)
    band = energy[np.abs(zenith - theta) < d_omega]
    e = max(energy0, band.min()) if band.size else energy0
    count, widenings = np.count_nonzero(np.abs(band - e) < d_e * e), 0
    while count < 5:
        widenings += 1
        d_omega, d_e = d_omega * 1.5, d_e * 1.5
        e = e / 10 if e > median else e * 10 if e < median else e
        band = energy[np.abs(zenith - theta) < d_omega]
        count = np.count_nonzero(np.abs(band - e) < d_e * e)
    g = (energy0 / e) ** 3.7 if theta > 80 and energy0 > e else 1.0
    e = energy0 if g != 1.0 else e
    t, w = math.radians(theta), math.radians(d_omega)
    solid_angle = 2 * math.pi * abs(math.cos(t - w) - math.cos(t + w))
    return count / (zenith.size * solid_angle * 2 * d_e * e) / g, e, widenings


@pytest.mark.parametrize("direct_rows", [0, 10**9], ids=["rank-table", "row-by-row"])
def test_vectorised_density_equals_the_box_count_of_every_neutrino(direct_rows, monkeypatch):
    """All neutrinos at once (rank-table or row-by-row counts, sparse-table minima) give each
    neutrino's own box count, widenings included, over the whole sky and 9 decades of energy."""
    from llama.science import background

    monkeypatch.setattr(background._BoxIndex, "DIRECT_ROWS", direct_rows)
    sample = default_background_sample()
    zenith, energy = np.asarray(sample.zenith, float), np.asarray(sample.energy, float)
    density = NeutrinoBackgroundDensity.from_sample(sample, O3.delta_omega, O3.delta_E)
    rng = np.random.default_rng(8)
    theta = np.concatenate([rng.uniform(0.5, 179.5, 400), zenith[:100]])
    energy0 = np.concatenate([10 ** rng.uniform(0, 9, 400), energy[:100]])
    values, used = density(theta, energy0)
    expected = np.array([reference_density(zenith, energy, t, e) for t, e in zip(theta, energy0, strict=True)])
    assert np.sum(expected[:, 2] > 0) > 50 and expected[:, 2].max() >= 3  # widened boxes
    np.testing.assert_allclose(values, expected[:, 0], rtol=1e-12)
    np.testing.assert_array_equal(used, expected[:, 1])
    low, high = density.energy_range(theta).T
    band = np.abs(zenith[None, :] - theta[:, None]) < O3.delta_omega
    np.testing.assert_array_equal(low, np.where(band, energy, np.inf).min(axis=1))
    np.testing.assert_array_equal(high, np.where(band, energy, -np.inf).max(axis=1))


def test_gw_snr_background_histogram_and_default():
    rng = np.random.default_rng(1)
    snrs = rng.uniform(5, 10, size=1000)
    model = GwSnrBackground(snrs)
    counts, edges = np.histogram(snrs, bins=50)
    width = edges[1] - edges[0]
    assert model(7.01) == pytest.approx(counts[np.searchsorted(edges, 7.01) - 1] / (1000 * width))
    assert model(50.0) == pytest.approx(max(counts[-1], 1) / (1000 * width))  # above the top: last bin
    default = GwSnrBackground(rhomin=O3.rhomin)
    total, _ = integrate.quad(default, O3.rhomin, 60)
    assert total == pytest.approx(1.0, rel=1e-8)
    assert "analytic default" in default.description


def test_p_value_counts_ties_and_is_never_zero():
    """Defect 8: the +1 correction."""
    background = np.array([0.0, 0.0, 1.0, 2.0, 3.0])
    assert p_value(1e300, background) == pytest.approx(1 / 6)
    assert p_value(2.0, background) == pytest.approx(3 / 6)  # ties count as >=
    assert p_value(-1.0, background) == 1.0


def test_pixel_radius_bound_covers_healpy_max_pixrad():
    import healpy as hp

    for order in range(30):
        assert skysums.max_pixel_radius_deg(order) >= math.degrees(hp.max_pixrad(2**order))
