"""Subthreshold odds per evaluation: llama's vectorised path vs a straightforward reference.

For the GW170817 NSIDE-1024 flat map and the S251112cm multi-order map (files already read),
with 10 neutrinos each, time one odds evaluation of ``llama.science.odds.subthreshold`` and
of a straightforward per-pixel evaluation (every pixel of the map, every neutrino, spherical
trigonometry from RA/Dec, no disc selection) in the same process, check that both give the
same S1, and report time, peak memory and their ratio.

    python benchmarks/bench_odds.py [--shared ../shared/data] [--repeat 20]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import tracemalloc
from pathlib import Path

import numpy as np

from llama.background.trials import scatter_on_sphere
from llama.io.background_sample import default_background_sample
from llama.io.neutrinos import NeutrinoList
from llama.io.skymap import read_skymap
from llama.io.tables import load_model
from llama.science import odds
from llama.significance import make_trigger

MAPS = {"S251112cm multi-order": "S251112cm_bayestar.multiorder.fits",
        "GW170817 flat NSIDE 1024": "GW170817_skymap.fits.gz"}
TARGETS_MS = {"GW170817 flat NSIDE 1024": 300.0, "S251112cm multi-order": 20.0}
CHUNK = 1 << 20


def ten_neutrinos(skymap, sample, rng) -> NeutrinoList:
    """5 neutrinos inside the localisation and 5 anywhere, with sigma/energy from the sample."""
    ra_src, dec_src, _ = skymap.sample_sources(rng, 5)
    pick = rng.integers(0, len(sample.zenith), size=10)
    sigma, energy = sample.sigma[pick], sample.energy[pick]
    ra_near = np.array([scatter_on_sphere(rng, r, d, s[None])[0][0]
                        for r, d, s in zip(ra_src, dec_src, sigma[:5], strict=True)])
    dec_near = np.array([scatter_on_sphere(rng, r, d, s[None])[1][0]
                         for r, d, s in zip(ra_src, dec_src, sigma[:5], strict=True)])
    ra = np.concatenate([ra_near, rng.uniform(0, 360, 5)])
    dec = np.concatenate([dec_near, np.degrees(np.arcsin(rng.uniform(-1, 1, 5)))])
    return NeutrinoList(mjd=60000.0 + rng.uniform(-400, 400, 10) / 86400, ra=ra, dec=dec,
                        sigma=sigma, energy=energy, zenith=90 + dec, azimuth=np.full(10, np.nan),
                        run=np.full(10, -1), event=np.arange(10), type=np.full(10, "injected"))


def reference_sky_sums(skymap, neutrinos, energies, model) -> np.ndarray:
    """sum_pix p A PSF for every neutrino over every pixel, haversine separations, in chunks."""
    ra_pix, dec_pix = skymap.pixel_radec()
    sums = np.zeros(len(neutrinos))
    for i in range(len(neutrinos)):
        ra0, dec0 = np.radians(neutrinos.ra[i]), np.radians(neutrinos.dec[i])
        for start in range(0, skymap.npix, CHUNK):
            ra = np.radians(ra_pix[start:start + CHUNK])
            dec = np.radians(dec_pix[start:start + CHUNK])
            hav = (np.sin((dec - dec0) / 2) ** 2
                   + np.cos(dec) * np.cos(dec0) * np.sin((ra - ra0) / 2) ** 2)
            sep = np.degrees(2 * np.arcsin(np.sqrt(np.clip(hav, 0, 1))))
            psf = np.exp(-0.5 * (sep / neutrinos.sigma[i]) ** 2) / (
                2 * np.pi * (neutrinos.sigma[i] * np.pi / 180) ** 2)
            weight = model.energy_weight(np.full(ra.size, energies[i]), np.degrees(dec))
            sums[i] += (skymap.prob[start:start + CHUNK] * weight * psf).sum()
    return sums


def timed(function, repeat: int):
    """(median seconds, peak traced bytes of one call, result)."""
    tracemalloc.start()
    result = function()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), peak, result


def bench_map(label, path, model, sample, rng, repeat):
    """One table row: timings, memory and agreement for one sky map."""
    start = time.perf_counter()
    skymap = read_skymap(path)
    read_s = time.perf_counter() - start
    trigger = make_trigger(skymap, 60000.0, 12.0, ["H1", "L1", "V1"], 0.5)
    neutrinos = ten_neutrinos(skymap, sample, rng)
    fast_s, fast_peak, result = timed(
        lambda: odds.subthreshold(skymap, neutrinos, trigger, model), repeat)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    skymap.pixel_radec()  # the reference needs all pixel centres: not counted in its time
    energies = result.terms.energy
    ref_s, ref_peak, ref_sums = timed(
        lambda: reference_sky_sums(skymap, neutrinos, energies, model), max(1, repeat // 10))
    agreement = np.max(np.abs(result.terms.sky - ref_sums) / np.maximum(ref_sums.max(), 1e-300))
    return (label, skymap.npix, read_s, fast_s, ref_s, fast_peak, ref_peak, agreement,
            result.odds_ratio, rss_mb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    sample = default_background_sample()
    model = load_model("o3", "o3-table", sample)
    rng = np.random.default_rng(2026)
    rows = [bench_map(label, Path(args.shared) / "gw_skymaps" / name, model, sample, rng, args.repeat)
            for label, name in MAPS.items()]
    print(f"{'map':26s} {'pixels':>9s} {'read s':>7s} {'llama ms':>9s} {'target':>7s} "
          f"{'reference ms':>13s} {'speed-up':>9s} {'llama peak MB':>14s} {'ref peak MB':>12s} "
          f"{'max rel diff S1 terms':>22s} {'odds':>9s} {'peak RSS MB':>12s}")
    for label, npix, read_s, fast_s, ref_s, fast_peak, ref_peak, agreement, value, rss in rows:
        print(f"{label:26s} {npix:9d} {read_s:7.2f} {fast_s * 1e3:9.2f} {TARGETS_MS[label]:7.0f} "
              f"{ref_s * 1e3:13.1f} {ref_s / fast_s:8.0f}x {fast_peak / 2**20:14.1f} "
              f"{ref_peak / 2**20:12.1f} {agreement:22.2e} {value:9.4g} {rss:12.0f}")
    print("peak RSS: process high-water mark after reading the map and timing llama, before the "
          "reference runs (target <= 1024 MB)")


if __name__ == "__main__":
    main()
