"""`llama background sensitivity`: detection efficiency of real injection campaigns (run with
the real CLI on a real sky map) against their background, versus mu and the neutrino emission
energy; the plot and the table; one-line errors for bad input."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table
from conftest import REPO, shared_path
from scipy.stats import binomtest
from test_cli import assert_one_line_error, llama, readme_block, run_readme
from test_render import pdf_pages, png_size

S251112CM = "S251112cm_bayestar.multiorder.fits"
MS181101AB = "MS181101ab_userguide_bayestar.multiorder.fits"
#: injected signal means and trials per mean; the background has 2 jobs of BACKGROUND_TRIALS
INJECTIONS = {0.5: 200, 2.0: 200, 6.0: 200}
BACKGROUND_TRIALS = 300
THRESHOLDS = (0.1, 0.01)
ONE_SIGMA = 0.6826894921370859


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """A background (two jobs, collated) and three injection campaigns on S251112cm; mu = 2 is
    collated from two jobs, the others are single job files."""
    root = tmp_path_factory.mktemp("sensitivity")
    skymap = shared_path("gw_skymaps", S251112CM)
    run = ("background", "run", "--skymaps", skymap)
    for job in (0, 1):
        llama(*run, "--trials", BACKGROUND_TRIALS, "--seed", 1, "--job", job, "--out", root / "bg",
              check=True)
    llama("background", "table", *sorted((root / "bg").glob("job-*.h5")), "-o", root / "bg.h5",
          check=True)
    injections = []
    for mu, trials in INJECTIONS.items():
        out = root / f"mu{mu:g}"
        if mu == 2.0:
            for job in (0, 1):
                llama(*run, "--trials", trials // 2, "--seed", 2, "--inject", mu, "--job", job,
                      "--out", out, check=True)
            llama("background", "table", *sorted(out.glob("job-*.h5")), "-o", root / "mu2.h5",
                  check=True)
            injections.append(root / "mu2.h5")
        else:
            llama(*run, "--trials", trials, "--seed", 2, "--inject", mu, "--out", out, check=True)
            injections.append(out / "job-000000.h5")
    return {"root": root, "skymap": skymap, "background": root / "bg.h5", "injections": injections}


@pytest.fixture(scope="module")
def points(campaign):
    """The sensitivity against the background table, with the sky map: (result, prefix)."""
    prefix = campaign["root"] / "out" / "efficiency"
    result = llama("background", "sensitivity", *campaign["injections"], "--background",
                   campaign["background"], "--skymaps", campaign["skymap"], "--p-threshold",
                   *THRESHOLDS, "-o", prefix, check=True)
    return result, prefix


def odds_of(path: Path) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f["odds"][()]


def independent_counts(campaign) -> dict[tuple[float, float], tuple[int, int]]:
    """(threshold, mu) -> (detected, trials), counted by brute force from the HDF5 files."""
    background = odds_of(campaign["background"])
    counts = {}
    for mu, path in zip(INJECTIONS, campaign["injections"], strict=True):
        odds = odds_of(path)
        p = (1 + (background[None, :] >= odds[:, None]).sum(axis=1)) / (1 + background.size)
        for alpha in THRESHOLDS:
            counts[alpha, mu] = (int(np.sum(p <= alpha)), odds.size)
    return counts


def test_efficiency_equals_a_brute_force_count_and_rises_with_mu(campaign, points):
    result, prefix = points
    table = Table.read(f"{prefix}.ecsv", format="ascii.ecsv")
    assert len(table) == len(THRESHOLDS) * len(INJECTIONS)
    expected = independent_counts(campaign)
    for row in table:
        k, n = expected[float(row["p_threshold"]), float(row["injected_mu"])]
        assert (row["n_detected"], row["n_trials"]) == (k, n)
        assert row["efficiency"] == pytest.approx(k / n, abs=1e-15)
        interval = binomtest(k, n).proportion_ci(confidence_level=ONE_SIGMA, method="exact")
        assert row["efficiency_low"] == pytest.approx(interval.low, abs=1e-9)
        assert row["efficiency_high"] == pytest.approx(interval.high, abs=1e-9)
    for alpha in THRESHOLDS:
        rows = table[table["p_threshold"] == alpha]
        rows.sort("injected_mu")
        eff, low, high = rows["efficiency"], rows["efficiency_low"], rows["efficiency_high"]
        # rising within errors from one mu to the next, and clearly over the whole range
        assert np.all(high[1:] + (high[:-1] - eff[:-1]) >= eff[:-1])
        assert low[-1] > high[0]
    assert table.meta["background"]["populations"] == {"subthreshold/bns/o3/H1L1V1": 600}
    assert "p <= 0.1" in result.stdout and "wrote" in result.stdout


def test_emission_energy_is_the_map_average_of_the_signal_model(campaign, points):
    """E_iso = mu / c, c = nu_51_100 10 (100 Mpc)^2 <w(90 + dec) r^-2> per code unit: <r^-2>
    of each pixel in closed form, Phi(t) / ((mu^2 + sigma^2) Phi(t) + mu sigma phi(t)) with
    t = DISTMU/DISTSIGMA; and, loosely, a Monte Carlo over sources drawn as the injections
    draw them (r^-2 has infinite variance under r^2 N(r): the sample mean converges slowly)."""
    from astropy_healpix import healpy as hp
    from scipy.stats import norm

    from llama.io.skymap import read_skymap

    _, prefix = points
    table = Table.read(f"{prefix}.ecsv", format="ascii.ecsv")
    skymap = read_skymap(campaign["skymap"])
    weights = np.loadtxt(REPO / "llama" / "data" / "zenith_weights.csv", delimiter=",",
                         comments="#", skiprows=2)[:, 1]
    erg_per_unit = (1 * u.kg * u.Mpc**2 / u.s**2).to_value(u.erg)

    def per_erg(w, inverse_square, prob):
        return 1.1 * 10 * 100.0**2 * np.sum(prob * w * inverse_square) / prob.sum() / erg_per_unit

    level = np.floor(np.log2(skymap.uniq // 4) / 2).astype(int)
    _, dec = hp.pix2ang(2**level, skymap.uniq - 4 * 4**level, nest=True, lonlat=True)
    mu, sigma = skymap.distmu, skymap.distsigma
    known = np.isfinite(mu) & np.isfinite(sigma) & (sigma > 0)
    t = mu[known] / sigma[known]
    inverse_square = norm.cdf(t) / ((mu[known]**2 + sigma[known]**2) * norm.cdf(t)
                                    + mu[known] * sigma[known] * norm.pdf(t))
    w = weights[np.floor((90.0 + dec[known]) / 5.0).astype(int)]
    exact = per_erg(w, inverse_square, skymap.prob[known])
    assert table["e_iso_erg"] == pytest.approx(table["injected_mu"] / exact, rel=1e-9)
    assert table.meta["neutrinos_per_erg"] == pytest.approx(exact, rel=1e-9)

    _, dec, distance = skymap.sample_sources(np.random.default_rng(5), 100_000)
    drawn = np.isfinite(distance)  # a few low-probability pixels have no distance estimate
    assert drawn.mean() > 0.99
    w = weights[np.floor((90.0 + dec[drawn]) / 5.0).astype(int)]
    assert per_erg(w, distance[drawn] ** -2.0, np.ones(drawn.sum())) == pytest.approx(exact,
                                                                                     rel=0.05)
    (described,) = table.meta["skymaps"]
    assert described["distmean_mpc"] == pytest.approx(96.385, abs=1e-3)
    assert described["inverse_square_mean_distance_mpc"] == pytest.approx(
        (np.sum(skymap.prob[known] * inverse_square) / skymap.prob[known].sum()) ** -0.5,
        rel=1e-9)


def test_plot_is_one_pdf_page_and_a_png_and_rebuilds_byte_identical(campaign, points):
    _, prefix = points
    png, pdf = Path(f"{prefix}.png").read_bytes(), Path(f"{prefix}.pdf").read_bytes()
    assert png_size(png) == (1280, 880)  # 6.4 x 4.4 in at 200 dpi
    assert 30_000 < len(png) < 1_000_000 and 10_000 < len(pdf) < 1_000_000
    assert pdf_pages(pdf) == [(460.8, 316.8)]
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", f"{prefix}.pdf"], capture_output=True, text=True,
                              check=True).stdout
        assert "Pages:           1" in info
    again = campaign["root"] / "again" / "efficiency"
    llama("background", "sensitivity", *campaign["injections"], "--background",
          campaign["background"], "--skymaps", campaign["skymap"], "--p-threshold", *THRESHOLDS,
          "-o", again, check=True)
    for suffix in ("png", "pdf", "ecsv"):
        assert Path(f"{again}.{suffix}").read_bytes() == Path(f"{prefix}.{suffix}").read_bytes()


def test_a_populations_file_gives_the_same_points_and_without_maps_the_axis_is_mu(campaign,
                                                                                 points):
    root = campaign["root"]
    llama("background", "pvalue", campaign["background"], "-o", root / "populations.hdf5",
          check=True)
    prefix = root / "from-populations" / "efficiency"
    llama("background", "sensitivity", *campaign["injections"], "--background",
          root / "populations.hdf5", "--p-threshold", *THRESHOLDS, "-o", prefix, check=True)
    table = Table.read(f"{prefix}.ecsv", format="ascii.ecsv")
    reference = Table.read(f"{points[1]}.ecsv", format="ascii.ecsv")
    assert "e_iso_erg" not in table.colnames and "skymaps" not in table.meta
    assert table.meta["background"]["kind"] == "populations"
    for name in ("p_threshold", "injected_mu", "n_trials", "n_detected", "efficiency"):
        assert np.array_equal(table[name], reference[name])
    assert png_size(Path(f"{prefix}.png").read_bytes()) == (1280, 880)


def test_several_maps_weight_each_map_by_its_trials(campaign, tmp_path):
    maps = (campaign["skymap"], shared_path("gw_skymaps", MS181101AB))
    run = ("background", "run", "--skymaps", *maps, "--seed", 3)
    llama(*run, "--trials", 41, "--out", tmp_path / "bg", check=True)
    llama(*run, "--trials", 41, "--inject", 3, "--out", tmp_path / "inj", check=True)
    prefix = tmp_path / "efficiency"
    llama("background", "sensitivity", tmp_path / "inj" / "job-000000.h5", "--background",
          tmp_path / "bg" / "job-000000.h5", "--skymaps", *maps, "--p-threshold", 0.1,
          "-o", prefix, check=True)
    table = Table.read(f"{prefix}.ecsv", format="ascii.ecsv")
    single = Table.read(f"{campaign['root'] / 'out' / 'efficiency'}.ecsv", format="ascii.ecsv")
    per_map = [m["neutrinos_per_erg"] for m in table.meta["skymaps"]]
    assert per_map[0] == single.meta["skymaps"][0]["neutrinos_per_erg"]
    with h5py.File(tmp_path / "inj" / "job-000000.h5", "r") as f:
        share = np.bincount(f["skymap"][()], minlength=2) / 41  # round robin: 21 and 20
    assert table.meta["neutrinos_per_erg"] == pytest.approx(share @ per_map, rel=1e-12)
    assert table["e_iso_erg"][0] == pytest.approx(3 / (share @ per_map), rel=1e-12)


@pytest.fixture(scope="module")
def other_campaigns(campaign):
    """Backgrounds that do not fit the campaign: another search, another map; and a
    populations file with only the other search's key."""
    root = campaign["root"]
    llama("background", "run", "--skymaps", campaign["skymap"], "--trials", 20, "--seed", 4,
          "--search", "opa", "--out", root / "opa", check=True)
    llama("background", "run", "--skymaps", shared_path("gw_skymaps", MS181101AB), "--trials",
          20, "--seed", 4, "--out", root / "other-map", check=True)
    llama("background", "pvalue", root / "opa" / "job-000000.h5", "-o", root / "opa.hdf5",
          check=True)
    return {"opa": root / "opa" / "job-000000.h5",
            "other_map": root / "other-map" / "job-000000.h5",
            "opa_populations": root / "opa.hdf5"}


BAD_INPUTS = {
    "missing injection table": (["{missing}", "--background", "{bg}"], "no-such.h5: no such"),
    "missing background": (["{inj}", "--background", "{missing}"], "no-such.h5: no such"),
    "background given as injections": (["{bg}", "--background", "{bg}"], "not injections"),
    "injections given as background": (["{inj}", "--background", "{inj6}"],
                                       "has signal injections (mu = 6): not a background"),
    "background of another search": (["{inj}", "--background", "{opa}"],
                                      "opa search, but"),
    "background on another map": (["{inj}", "--background", "{other_map}"],
                                   "run on other sky maps (MS181101ab"),
    "maps that are not the campaign's": (["{inj}", "--background", "{bg}", "--skymaps",
                                          "{other_map_fits}"], "are not among them"),
    "a job given twice": (["{inj}", "{inj}", "--background", "{bg}"], "would count twice"),
    "threshold below the background's resolution": (
        ["{inj}", "--background", "{bg}", "--p-threshold", "0.001"],
        "below the smallest p-value the background can give, 1/(N_bg + 1) = 0.00166"),
    "threshold out of range": (["{inj}", "--background", "{bg}", "--p-threshold", "1.5"],
                               "between 0 and 1"),
    "populations without the key": (["{inj}", "--background", "{opa_populations}"],
                                    "no background population subthreshold/bns/o3/H1L1V1"),
    "a sky map as background": (["{inj}", "--background", "{fits}"],
                                "neither a campaign table nor a populations file"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_writes_nothing(case, campaign, other_campaigns, tmp_path):
    args, message = BAD_INPUTS[case]
    names = {"missing": tmp_path / "no-such.h5", "bg": campaign["background"],
             "inj": campaign["injections"][0], "inj6": campaign["injections"][2],
             "fits": campaign["skymap"],
             "other_map_fits": shared_path("gw_skymaps", MS181101AB), **other_campaigns}
    prefix = tmp_path / "out" / "efficiency"
    result = llama("background", "sensitivity", *(a.format(**names) for a in args),
                   "-o", prefix)
    assert_one_line_error(result, "llama background sensitivity: error:", message)
    assert not (tmp_path / "out").exists()


def test_a_map_without_distance_has_no_emission_energy(campaign):
    from llama.background.sensitivity import _map_neutrinos_per_erg
    from llama.errors import InputError
    from llama.io.skymap import read_skymap

    flat = dataclasses.replace(read_skymap(campaign["skymap"]), distmu=None, distsigma=None,
                               distnorm=None)
    with pytest.raises(InputError, match="no distance layers .* leave out --skymaps"):
        _map_neutrinos_per_erg(flat, "map.fits", None, None)


def test_readme_example_runs_as_written(tmp_path):
    shared_path("gw_skymaps", S251112CM)
    done = run_readme(readme_block("### Detection efficiency versus neutrino emission energy"),
                      tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "checkout" / "sens"
    table = Table.read(out / "efficiency.ecsv", format="ascii.ecsv")
    assert sorted(set(table["injected_mu"])) == [0.5, 1.5, 4.0]
    assert all((out / f"efficiency.{suffix}").stat().st_size > 10_000 for suffix in ("png", "pdf"))


def test_mu_of_90_percent_efficiency_is_interpolated_in_log_mu():
    """Crossing between two points: linear in log mu; the first point already above: its mu;
    never reached: NaN."""
    from llama.science.efficiency import efficiency, mu_at_efficiency

    mu = np.repeat([1.0, 4.0, 16.0], 100)
    detected = np.concatenate([np.arange(100) < k for k in (50, 80, 100)])
    p = np.where(detected, 0.001, 0.5)
    found = mu_at_efficiency(efficiency(p, mu, [0.01, 0.9, 0.4]), 0.9)
    # alpha 0.01: 0.5, 0.8, 1.0 -> between 4 and 16, half-way in log; 0.4: same; 0.9: all
    # detected at every mu -> the first mu
    np.testing.assert_allclose(found, [8.0, 8.0, 1.0])
    none = mu_at_efficiency(efficiency(np.full(300, 0.5), mu, [0.01]), 0.9)
    assert np.isnan(none).all()
