"""Simulated GW sky-map populations made with BAYESTAR (ligo.skymap), offline and deterministic.

One call of :func:`simulate` makes ``count`` multi-order FITS sky maps (with the distance
layers DISTMU/DISTSIGMA/DISTNORM) for one (population, network, sensitivity) and writes them,
with a manifest, to ``out_dir/<population>-<network>-<sensitivity>/``. The work is done by
ligo.skymap's own programs, called in-process through their ``main(argv)`` entry points:

1. ``bayestar-sample-model-psd``: analytic noise curves (lalsimulation) for the network;
2. ``bayestar-inject``: sources uniform in sensitive volume (comoving volume / (1 + z),
   Planck15) out to each mass's horizon, isotropic positions and orientations;
3. ``bayestar-realize-coincs``: matched-filter triggers (SNR, phase, time and SNR time series)
   with Gaussian measurement errors, and the detection cut, for the injections whose optimal
   network SNR is at least 4 (:func:`prune_injections`: the others practically never pass);
4. ``bayestar-localize-coincs``: the BAYESTAR sky map of each of the first ``count`` coincs
   (one call per map, so each map is timed and the progress bar moves per map).

Choices (why):

- **Masses, spins.** BNS: both masses from N(1.33, 0.09) Msun truncated to [1, 2] (the Galactic
  double-neutron-star distribution, Ozel & Freire 2016; bayestar-inject's ``bns_astro``). BBH:
  both masses from p(m) ~ m^-2.3 on [5, 50] Msun (bayestar-inject's ``bbh_astro``), m1 >= m2.
  NSBH: the BBH law for the black hole, the BNS law for the neutron star. Spins are zero: the
  sky localisation depends on them only through small phase and duration changes, and zero spin
  keeps the populations simple to state. The masses are drawn by llama (numpy, from the seed)
  and handed to bayestar-inject as ``--distribution-samples``; it weights them by their
  sensitive volume.
- **Distances.** Uniform in sensitive volume up to the horizon of each mass for the
  single-detector threshold (bayestar-inject's model), then cut by the detection criterion
  below: the distances of detected sources, as a real network sees them.
- **Detection criterion.** Single-detector SNR >= 4 in at least 2 detectors (BAYESTAR's and
  the search pipelines' trigger threshold) and network SNR >= 8. Network SNR 8 is where the LVK
  low-significance low-latency alerts sit (FAR < 2/day; the LVK observing-scenarios
  simulations use network SNR 8 for alerts), which is what llama's subthreshold search runs
  on; BAYESTAR's default 12 is a confident-detection threshold, too strict here, and LLAMA's
  rhomin = 5.59 (the lower bound of its signal-SNR model) is below what a pipeline issues in
  real noise. Every map records its network SNR, so stricter subsets can be taken.
  Triggers below 4 are kept (``--keep-subthreshold``), as BAYESTAR uses every detector in
  observation: every map's instruments are the whole network.
- **Measurement errors.** ``--measurement-error gaussian-noise``: the maps scatter around the
  true source as real ones do (zero-noise maps would be centred on it).
- **Noise curves** (BNS ranges from lalsimulation's SenseMon range):
  o3: H1, L1 ``aLIGOO3LowT1800545`` (121 Mpc; O3 LIGO ran at 110-140 Mpc), V1
  ``AdVO3LowT1800545`` (63 Mpc; O3 Virgo 45-60 Mpc). o4: H1, L1 ``aLIGO140MpcT1800545``
  (139 Mpc; O4 LIGO ran at 140-160 Mpc, the 175 Mpc O4 projection was not reached), V1
  ``AdVO3LowT1800545`` again (O4 Virgo ran at 50-60 Mpc, below every O4 Virgo projection).
  Named lalsimulation curves, unscaled, so anyone can rebuild them.
- **Waveforms, frequencies.** BNS: TaylorF2 (3.5PN), what BAYESTAR's default ``o2-uberbank``
  picks below 4 Msun; BBH, NSBH: IMRPhenomD instead of o2-uberbank's SEOBNRv4_ROM, whose
  data file lalsuite does not ship (it needs $LAL_DATA_PATH, i.e. a download): IMRPhenomD is
  closed-form and models the same aligned-spin (here zero-spin) inspiral-merger-ringdown.
  The same approximant for injection, triggers and templates; low-frequency cutoff 30 Hz
  (bayestar-localize-coincs' default) for all three; PSDs sampled every 1 Hz to 2048 Hz.
- **Localisation.** BAYESTAR defaults (uniform-in-volume distance prior, log-likelihood
  rescaled by 0.83 as in low latency); one OpenMP thread per map when ``jobs > 1``. The SNR
  time series bayestar-realize-coincs writes at 8192 Hz are resampled to 2048 Hz (every 4th
  sample, :func:`decimate_snr_series`), the rate the search pipelines send BAYESTAR; the
  complex series has no content above the PSDs' 2048 Hz limit, so nothing aliases. BAYESTAR's
  cost grows with the samples it integrates over: measured here 46 s of CPU per H1L1V1 BNS
  map instead of 138 s, with the 90% area within 2% and DISTMEAN within 0.1% of the 8192 Hz
  map.
- **Cost.** 100 mass samples per group (bayestar-inject finds each one's horizon by root
  finding, about 0.2 s each) and 60 (H1L1) or 25 (H1L1V1) injections per map asked for, at
  least 120 (about 1 in 20 passes the cut); if too few pass, twice as many are drawn with the
  same seed. Realising an injection costs 0.3-1.5 s of one core (BBH-BNS); its optimal SNR
  4-100 ms, and the cut at optimal SNR 4 keeps 26-33% of them. A map costs 20-25 s (H1L1)
  or 35-55 s (H1L1V1).
- **Resuming.** Every file is committed whole (written aside, then renamed) and every map
  with its wall time, so an interrupted call picks up where it stopped.

Determinism: all random numbers come from ``seed``: ``SeedSequence(seed, spawn_key=(crc32 of
population, network, sensitivity))`` gives the masses' numpy generator and the integer seeds of
bayestar-inject and bayestar-realize-coincs (localisation is not random). The same arguments
give the same maps: the same pixel arrays (``data_sha256`` in the manifest, the sha256 of the
map's columns, is the same) but not the same file bytes, because BAYESTAR stamps the header
with the wall clock (DATE, RUNTIME) and the calling command line (HISTORY). The programs run
in-process; their LIGO-LW row-id counters are reset before each call so that a second group
in the same process is numbered like the first.

One departure from the programs as shipped: bayestar-inject converts sensitive distance to
redshift through a 10,000-point table in which every point is a separate astropy ``quad``
integral with units (about 2.5 minutes a call, its own "FIXME"). :func:`simulate` replaces only
that method (``GWCosmo.sensitive_distance``) for the call with the same integral evaluated once
on a 20,001-point grid (cumulative Simpson, cubic spline), checked against the original at
three redshifts (relative difference below 1e-7, or the call fails).

Manifest (``manifest.json``, deterministic JSON; ``manifest.csv`` holds the ``maps`` rows):
top-level ``format`` ("llama-simulated-skymaps-1"), ``population``, ``network``,
``instruments`` (list), ``sensitivity``, ``seed``, ``count``, ``psds`` (ifo -> lalsimulation
curve), ``model`` (the choices above), ``seeds`` (the derived integer seeds),
``llama_version``, ``ligo_skymap_version``, ``lalsuite_version``, ``commands`` (each program's
argv), ``n_injections``, ``n_realized`` (after the optimal-SNR cut), ``n_coincs``,
``step_wall_times_s`` (per file made), ``wall_time_s`` (steps and maps, over every call that
made the group), and ``maps``: one record per map
with ``file``, ``sha256``, ``data_sha256``, ``coinc_event_id``, ``instruments`` ("H1,L1"),
``snr`` (network SNR over the triggers >= 4, as bayestar-realize-coincs computes it),
``snr_<ifo>`` (every detector's SNR), ``ra_deg``, ``dec_deg``, ``distance_mpc`` (true
luminosity distance), ``mass1``, ``mass2`` (detector frame, Msun), ``distmean``, ``diststd``
(Mpc, header), ``area50_deg2``, ``area90_deg2``, ``searched_prob`` (credible level of the true
position), ``searched_area_deg2``, ``wall_time_s`` (this map's localisation call) and
``bayestar_runtime_s`` (BAYESTAR's own RUNTIME).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import math
import os
import shutil
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llama import __version__
from llama.errors import ConfigurationError, InputError
from llama.io.skymap import read_skymap
from llama.io.skymap_geometry import SkyMap
from llama.io.storage import atomic_write_bytes, atomic_write_json, sha256_file

log = logging.getLogger(__name__)

FORMAT = "llama-simulated-skymaps-1"

POPULATIONS = ("bns", "nsbh", "bbh")
NETWORKS: dict[str, tuple[str, ...]] = {"H1L1": ("H1", "L1"), "H1L1V1": ("H1", "L1", "V1")}
#: sensitivity -> detector -> lalsimulation analytic noise curve (bayestar-sample-model-psd)
SENSITIVITIES: dict[str, dict[str, str]] = {
    "o3": {"H1": "aLIGOO3LowT1800545", "L1": "aLIGOO3LowT1800545", "V1": "AdVO3LowT1800545"},
    "o4": {"H1": "aLIGO140MpcT1800545", "L1": "aLIGO140MpcT1800545", "V1": "AdVO3LowT1800545"},
}

SNR_THRESHOLD = 4.0  # single-detector trigger threshold
MIN_TRIGGERS = 2  # detectors at or above SNR_THRESHOLD
NET_SNR_THRESHOLD = 8.0  # network SNR of the triggers above threshold
F_LOW = 30.0  # Hz, injections, triggers and templates
#: waveform approximant per population: what BAYESTAR's default "o2-uberbank" picks below
#: 4 Msun (TaylorF2), and IMRPhenomD above it in place of SEOBNRv4_ROM, whose data file is not
#: shipped with lalsuite (it needs $LAL_DATA_PATH; IMRPhenomD is closed-form, so offline)
WAVEFORMS = {"bns": "TaylorF2threePointFivePN", "nsbh": "IMRPhenomD", "bbh": "IMRPhenomD"}
SNR_SERIES_RATE = 2048.0  # Hz, SNR time series handed to BAYESTAR (as the pipelines send)
N_MASS_SAMPLES = 100  # distinct (mass1, mass2) pairs handed to bayestar-inject
#: injections drawn per requested map, per network (measured: 13 of 240 BNS H1L1 injections
#: passed the detection cut); if too few pass, the count is doubled (same seed) and drawn again
INJECTIONS_PER_MAP = {"H1L1": 60, "H1L1V1": 25}
MIN_INJECTIONS = 120
#: optimal network SNR below which an injection is not realised (:func:`prune_injections`)
PREFILTER_SNR = 4.0

_NS_MASS = (1.33, 0.09, 1.0, 2.0)  # mean, sd, min, max (Msun)
_BH_MASS = (-2.3, 5.0, 50.0)  # power-law index, min, max (Msun)


@dataclass(frozen=True)
class Group:
    """One (population, network, sensitivity) and its directory name."""

    population: str
    network: str
    sensitivity: str

    @property
    def name(self) -> str:
        return f"{self.population}-{self.network}-{self.sensitivity}"

    @property
    def instruments(self) -> tuple[str, ...]:
        return NETWORKS[self.network]

    @property
    def psds(self) -> dict[str, str]:
        return {ifo: SENSITIVITIES[self.sensitivity][ifo] for ifo in self.instruments}


def check_group(population: str, network: str, sensitivity: str) -> Group:
    """The Group, or InputError naming the invalid choice."""
    for what, value, choices in (("population", population, POPULATIONS),
                                 ("network", network, tuple(NETWORKS)),
                                 ("sensitivity", sensitivity, tuple(SENSITIVITIES))):
        if value not in choices:
            raise InputError(f"unknown {what} {value!r} (choose from {', '.join(choices)})")
    return Group(population, network, sensitivity)


def derived_seeds(seed: int, group: Group) -> dict[str, int]:
    """The integer seeds of the masses, bayestar-inject and bayestar-realize-coincs."""
    key = tuple(zlib.crc32(s.encode()) for s in (group.population, group.network,
                                                   group.sensitivity))
    state = np.random.SeedSequence(seed, spawn_key=key).generate_state(3, dtype=np.uint32)
    # bayestar-realize-coincs seeds each injection with (its seed + index + 1) < 2**32
    return {"masses": int(state[0]), "inject": int(state[1] >> 1),
            "realize": int(state[2] >> 1)}


def draw_masses(population: str, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Source-frame component masses (Msun, mass1 >= mass2) and zero aligned spins."""

    def neutron_stars(size: int) -> np.ndarray:
        mean, sd, lo, hi = _NS_MASS
        out = rng.normal(mean, sd, size)
        bad = (out < lo) | (out > hi)
        while bad.any():  # truncate by redrawing
            out[bad] = rng.normal(mean, sd, int(bad.sum()))
            bad = (out < lo) | (out > hi)
        return out

    def black_holes(size: int) -> np.ndarray:
        alpha, lo, hi = _BH_MASS
        a = alpha + 1.0
        u = rng.uniform(size=size)
        return (lo**a + u * (hi**a - lo**a)) ** (1.0 / a)

    if population == "bns":
        m1, m2 = neutron_stars(n), neutron_stars(n)
    elif population == "bbh":
        m1, m2 = black_holes(n), black_holes(n)
    elif population == "nsbh":
        m1, m2 = black_holes(n), neutron_stars(n)
    else:
        raise InputError(f"unknown population {population!r}")
    return {"mass1": np.maximum(m1, m2), "mass2": np.minimum(m1, m2),
            "spin1z": np.zeros(n), "spin2z": np.zeros(n)}


# ------------------------------------------------------------------------- map statistics


def credible_area_deg2(skymap: SkyMap, level: float) -> float:
    """Area (deg2) of the smallest region holding ``level`` of the probability."""
    prob = np.asarray(skymap.prob, float)
    area = np.broadcast_to(skymap.pixel_area(), prob.shape)
    order = np.argsort(-(prob / area), kind="stable")
    before = np.cumsum(prob[order]) - prob[order]
    inside = order[before < level * prob.sum()]
    return float(area[inside].sum() * (180.0 / math.pi) ** 2)


def searched(skymap: SkyMap, ra_deg: float, dec_deg: float) -> tuple[float, float]:
    """(searched probability, searched area deg2) of a position: the credible level of the
    pixel holding it and the area of the pixels at least as dense."""
    from astropy_healpix import healpy as hp

    prob = np.asarray(skymap.prob, float)
    area = np.broadcast_to(skymap.pixel_area(), prob.shape)
    density = prob / area
    order = np.asarray(skymap.order)
    index = None
    for level in np.unique(order):
        nside = 1 << int(level)
        ipix = hp.ang2pix(nside, ra_deg, dec_deg, nest=True, lonlat=True)
        if skymap.is_moc:
            uniq = int(ipix) + 4 * nside * nside
            hit = np.flatnonzero(np.asarray(skymap.uniq) == uniq)
            if hit.size:
                index = int(hit[0])
                break
        else:
            index = int(ipix)
    if index is None:  # pragma: no cover - a valid map tiles the sky
        raise InputError("sky map does not cover the position")
    denser = density >= density[index]
    return float(prob[denser].sum() / prob.sum()), float(area[denser].sum() * (180 / math.pi) ** 2)


def data_sha256(skymap: SkyMap) -> str:
    """sha256 of a map's pixel arrays (uniq or nside, prob, distance layers), not its header."""
    digest = hashlib.sha256()
    digest.update(b"nside" if skymap.uniq is None else np.ascontiguousarray(skymap.uniq).tobytes())
    for column in (skymap.prob, skymap.distmu, skymap.distsigma, skymap.distnorm):
        if column is not None:
            digest.update(np.ascontiguousarray(column, dtype=np.float64).tobytes())
    return digest.hexdigest()


def map_summary(path: str | os.PathLike) -> dict[str, Any]:
    """90% and 50% credible areas (deg2), DISTMEAN and DISTSTD (Mpc) of any LVK sky map."""
    skymap = read_skymap(path)
    return {"area50_deg2": credible_area_deg2(skymap, 0.5),
            "area90_deg2": credible_area_deg2(skymap, 0.9),
            "distmean": skymap.meta.get("distmean"), "diststd": skymap.meta.get("diststd"),
            "instruments": skymap.meta.get("instruments")}


# ---------------------------------------------------------------------- the BAYESTAR steps


@contextlib.contextmanager
def _fast_sensitive_distance() -> Iterator[None]:
    """Swap bayestar-inject's per-point quad lookup for one cumulative integral (module doc)."""
    from unittest import mock

    from astropy import units
    from ligo.skymap.tool import bayestar_inject
    from scipy.integrate import cumulative_simpson
    from scipy.interpolate import CubicSpline

    original = bayestar_inject.GWCosmo.sensitive_distance
    tables: dict[int, tuple[float, CubicSpline]] = {}

    def table(self: Any, z_max: float) -> CubicSpline:
        known = tables.get(id(self))
        if known is not None and known[0] >= z_max:
            return known[1]
        top = max(1.02 * z_max, 0.01)
        grid = np.linspace(0.0, top, 20001)
        dh3_sr = self.cosmo.hubble_distance**3 / units.sr
        integrand = (self.cosmo.differential_comoving_volume(grid) / ((1 + grid) * dh3_sr))
        integral = cumulative_simpson(integrand.to_value(units.dimensionless_unscaled),
                                      x=grid, initial=0.0)
        spline = CubicSpline(grid, integral)
        for z in (0.05 * top, 0.4 * top, top):  # the original at three points, or fail
            exact = original(self, z).to_value(units.Mpc)
            fast = (self.cosmo.hubble_distance * np.cbrt(3 * spline(z))).to_value(units.Mpc)
            if not abs(fast / exact - 1) < 1e-7:
                raise ConfigurationError(f"bayestar-inject sensitive distance at z={z:.4g}: "
                                         f"{fast} Mpc against {exact} Mpc")
        tables[id(self)] = (top, spline)
        return spline

    def sensitive_distance(self: Any, z: Any) -> Any:
        z = np.asarray(z, dtype=float)
        spline = table(self, float(z.max()) if z.size else 0.0)
        return self.cosmo.hubble_distance * np.cbrt(3 * np.clip(spline(z), 0.0, None))

    with mock.patch.object(bayestar_inject.GWCosmo, "sensitive_distance", sensitive_distance):
        yield


def _run_tool(module: str, argv: list[str]) -> None:
    """Run ligo.skymap.tool.<module>.main(argv) quietly; SystemExit or failure -> error."""
    import importlib

    from igwn_ligolw import ligolw, lsctables  # noqa: F401 - registers the LSC tables

    main = importlib.import_module(f"ligo.skymap.tool.{module}").main
    # row ids come from class-level counters: without a reset, a second in-process call
    # numbers its coincs from where the last one stopped and its sim <-> coinc links break
    ligolw.Table.reset_next_ids()
    program = module.replace("_", "-")
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stderr(quiet), contextlib.redirect_stdout(quiet):
            main(argv)
    except SystemExit as exc:
        if exc.code not in (None, 0):
            tail = quiet.getvalue().strip().splitlines()[-1:] or [f"exit {exc.code}"]
            raise ConfigurationError(f"{program} failed: {tail[0]}") from None
    except (ArithmeticError, ValueError, RuntimeError) as exc:
        raise ConfigurationError(f"{program} failed: {exc}") from None


def _localize_one(coinc_file: str, coinc_id: int, raw_dir: str, waveform: str,
                  one_thread: bool) -> None:
    """bayestar-localize-coincs on one coinc: ``raw_dir/<coinc_id>.fits``, then its wall time
    (s) in ``<coinc_id>.json``, the mark that the map is done."""
    if one_thread:
        from ligo.skymap import omp

        omp.num_threads = 1
    raw = Path(raw_dir)
    scratch = raw / f".tmp-{coinc_id}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    start = time.perf_counter()
    _run_tool("bayestar_localize_coincs",
              [coinc_file, "--coinc-event-id", str(coinc_id), "-o", str(scratch),
               "--f-low", f"{F_LOW:g}", "--waveform", waveform, "-l", "ERROR"])
    wall = time.perf_counter() - start
    (scratch / f"{coinc_id}.fits").rename(raw / f"{coinc_id}.fits")
    scratch.rmdir()
    atomic_write_json(raw / f"{coinc_id}.json", {"wall_time_s": round(wall, 3)})


def decimate_snr_series(coinc_file: Path, rate: float = SNR_SERIES_RATE) -> None:
    """Resample every SNR time series of a coinc file to ``rate`` Hz (every k-th sample,
    keeping the peak sample and an odd length), in place.

    bayestar-realize-coincs writes the series at the template's rate (8192 Hz); the search
    pipelines send BAYESTAR 2048 Hz series, and BAYESTAR's cost grows with the number of
    samples. The complex SNR series has only positive frequencies below the PSD's 2048 Hz
    limit, so complex samples at 2048 Hz hold it without aliasing.
    """
    import lal
    import lal.series
    from igwn_ligolw import ligolw
    from igwn_ligolw import utils as ligolw_utils
    from igwn_ligolw.ligolw import Param
    from ligo.skymap.io.events.ligolw import ContentHandler

    doc = ligolw_utils.load_filename(str(coinc_file), contenthandler=ContentHandler)
    for elem in list(doc.getElementsByTagName(ligolw.LIGO_LW.tagName)):
        if elem.attributes.get("Name") != "COMPLEX8TimeSeries":
            continue
        series = lal.series.parse_COMPLEX8TimeSeries(elem)
        step = round(1.0 / (series.deltaT * rate))
        if step <= 1:
            continue
        data = series.data.data
        centre = len(data) // 2
        half = centre // step
        keep = data[centre - step * half: centre + step * half + 1: step]
        epoch = series.epoch + (centre - step * half) * series.deltaT
        new = lal.CreateCOMPLEX8TimeSeries(series.name, epoch, series.f0, series.deltaT * step,
                                           series.sampleUnits, len(keep))
        new.data.data[:] = keep
        replacement = lal.series.build_COMPLEX8TimeSeries(new, encoding="base64")
        event_id = Param.get_param(elem, "event_id").value
        replacement.appendChild(Param.from_pyvalue("event_id", event_id))
        elem.parentNode.replaceChild(replacement, elem)
    ligolw_utils.write_filename(doc, str(coinc_file))


def _coinc_records(coinc_file: Path, instruments: Sequence[str]) -> list[dict[str, Any]]:
    """Per coinc (by coinc_event_id): its network SNR, per-detector SNRs and true source."""
    from igwn_ligolw import lsctables
    from igwn_ligolw import utils as ligolw_utils
    from ligo.skymap.io.events.ligolw import ContentHandler

    doc = ligolw_utils.load_filename(str(coinc_file), contenthandler=ContentHandler)
    coinc_inspiral = lsctables.CoincInspiralTable.get_table(doc)
    sngl = {row.event_id: row for row in lsctables.SnglInspiralTable.get_table(doc)}
    sims = {row.simulation_id: row for row in lsctables.SimInspiralTable.get_table(doc)}
    coinc_map = lsctables.CoincMapTable.get_table(doc)
    members: dict[Any, list[Any]] = {}
    for row in coinc_map:
        members.setdefault(row.coinc_event_id, []).append(row)
    # the "found" coincs link one sim_inspiral row to one coinc_event row
    sim_of: dict[int, Any] = {}
    for rows in members.values():
        tables = {row.table_name: row.event_id for row in rows}
        if "sim_inspiral" in tables and "coinc_event" in tables:
            sim_of[int(tables["coinc_event"])] = sims[tables["sim_inspiral"]]
    records = []
    for row in coinc_inspiral:
        cid = int(row.coinc_event_id)
        sim = sim_of[cid]
        snrs = {sngl[m.event_id].ifo: float(sngl[m.event_id].snr)
                for m in members[row.coinc_event_id] if m.table_name == "sngl_inspiral"}
        record: dict[str, Any] = {
            "coinc_event_id": cid,
            "snr": float(row.snr),
            "ra_deg": math.degrees(float(sim.longitude)) % 360.0,
            "dec_deg": math.degrees(float(sim.latitude)),
            "distance_mpc": float(sim.distance),
            "mass1": float(sim.mass1),
            "mass2": float(sim.mass2),
        }
        for ifo in instruments:
            record[f"snr_{ifo}"] = snrs.get(ifo)
        records.append(record)
    records.sort(key=lambda r: r["coinc_event_id"])
    return records


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"llama_version": __version__}
    for key, dist in (("ligo_skymap_version", "ligo.skymap"), ("lalsuite_version", "lalsuite")):
        try:
            out[key] = version(dist)
        except PackageNotFoundError:
            out[key] = "unknown"
    return out


def model_description(group: Group) -> dict[str, Any]:
    """The population model of a group, as recorded in its manifest."""
    masses = {
        "bns": "mass1, mass2 ~ N(1.33, 0.09) Msun truncated to [1, 2]",
        "bbh": "mass1, mass2 ~ m^-2.3 on [5, 50] Msun",
        "nsbh": "mass1 ~ m^-2.3 on [5, 50] Msun, mass2 ~ N(1.33, 0.09) Msun truncated to [1, 2]",
    }[group.population]
    return {
        "masses": masses + " (source frame, mass1 >= mass2)",
        "spins": "zero",
        "mass_samples": N_MASS_SAMPLES,
        "distance": "uniform in sensitive volume (comoving volume / (1 + z), Planck15) to the "
                    "single-detector-threshold horizon of each mass (bayestar-inject)",
        "sky": "isotropic; inclination, polarisation, phase isotropic/uniform",
        "snr_threshold": SNR_THRESHOLD,
        "min_triggers": MIN_TRIGGERS,
        "net_snr_threshold": NET_SNR_THRESHOLD,
        "keep_subthreshold": True,
        "prefilter_optimal_network_snr": PREFILTER_SNR,
        "measurement_error": "gaussian-noise",
        "waveform": WAVEFORMS[group.population],
        "f_low_hz": F_LOW,
        "psd_df_hz": 1.0,
        "psd_f_max_hz": 2048.0,
        "localization": "bayestar-localize-coincs defaults (distance prior r^2, "
                        "rescale-loglikelihood 0.83)",
    }


def optimal_network_snr(injections: Path, psd: Path, instruments: Sequence[str],
                        waveform: str) -> np.ndarray:
    """Optimal (noise-free) network SNR of every injection of a file, in its row order.

    Per detector this is bayestar-realize-coincs' own signal amplitude,
    |(1 + cos^2 i)/2 F+ + i cos i Fx| x horizon / distance, with the horizon of the same
    waveform and PSD (ligo.skymap.bayestar.filter); about 1/10 (BNS) to 1/100 (BBH) of the
    cost of realising the injection, which also computes the SNR time series and its noise.
    """
    import lal
    import lal.series
    import lalsimulation
    from igwn_ligolw import lsctables
    from igwn_ligolw import utils as ligolw_utils
    from ligo.skymap.bayestar import filter
    from ligo.skymap.io.events.ligolw import ContentHandler

    doc = ligolw_utils.load_filename(str(psd), contenthandler=lal.series.PSDContentHandler)
    series = lal.series.read_psd_xmldoc(doc, root_name=None)
    psds = [filter.InterpolatedPSD(filter.abscissa(series[ifo]), series[ifo].data.data)
            for ifo in instruments]
    responses = [lalsimulation.DetectorPrefixToLALDetector(ifo).response for ifo in instruments]
    doc = ligolw_utils.load_filename(str(injections), contenthandler=ContentHandler)
    sims = lsctables.SimInspiralTable.get_table(doc)
    out = np.empty(len(sims))
    previous = logging.getLogger().manager.disable
    logging.disable(logging.WARNING)  # "Assuming PSD is infinite at ..." once per call
    try:
        for index, row in enumerate(sims):
            signal = filter.sngl_inspiral_psd(waveform, mass1=row.mass1, mass2=row.mass2,
                                              f_min=F_LOW)
            gmst = lal.GreenwichMeanSiderealTime(row.time_geocent)
            cos_i = math.cos(row.inclination)
            power = 0.0
            for psd_i, response in zip(psds, responses, strict=True):
                horizon = filter.SignalModel(
                    filter.signal_psd_series(signal, psd_i)).get_horizon_distance()
                f_plus, f_cross = lal.ComputeDetAMResponse(
                    response, row.longitude, row.latitude, row.polarization, gmst)
                amplitude = 0.5 * (1 + cos_i**2) * f_plus + 1j * cos_i * f_cross
                power += abs(amplitude * horizon / row.distance) ** 2
            out[index] = math.sqrt(power)
    finally:
        logging.disable(previous)
    return out


def prune_injections(injections: Path, psd: Path, group: Group, out: Path) -> int:
    """Write to ``out`` the injections whose optimal network SNR is at least PREFILTER_SNR;
    return how many were kept.

    An injection below it practically never passes the detection cut (network SNR >= 8 with
    measurement noise: for optimal SNR 4 the chance is about 1e-4 with 2 detectors, 2e-4 with
    3 (non-central chi-square with 4 or 6 degrees of freedom); of the detected injections of
    the 8 groups made before the cut existed, the lowest optimal SNR was 5.5), so realising
    it is wasted work: the cut keeps 26-33% of the injections.
    """
    from igwn_ligolw import lsctables
    from igwn_ligolw import utils as ligolw_utils
    from ligo.skymap.io.events.ligolw import ContentHandler

    snr = optimal_network_snr(injections, psd, group.instruments, WAVEFORMS[group.population])
    doc = ligolw_utils.load_filename(str(injections), contenthandler=ContentHandler)
    table = lsctables.SimInspiralTable.get_table(doc)
    table[:] = [row for row, keep in zip(table, snr >= PREFILTER_SNR, strict=True) if keep]
    ligolw_utils.write_filename(doc, str(out))
    return len(table)


def _produce(path: Path, make: Any) -> Path:
    """Make ``path`` with ``make(temporary_path)`` unless it exists; commit it by renaming, so
    an interrupted run never leaves a half-written file that a resumed run would trust. The
    step's wall time (s) goes to ``steps.json`` beside the group's ``state.json``."""
    if not path.exists():
        temporary = path.with_name(f".tmp-{path.name}")
        temporary.unlink(missing_ok=True)
        start = time.perf_counter()
        make(temporary)
        temporary.rename(path)
        steps = path.parent.parent / "steps.json"
        times = json.loads(steps.read_text()) if steps.exists() else {}
        times[path.name] = round(time.perf_counter() - start, 3)
        atomic_write_json(steps, times)
    return path


@contextlib.contextmanager
def _group_lock(out_dir: Path, group: Group) -> Iterator[None]:
    """One process at a time per group directory (an flock on ``.<group>.lock``)."""
    import fcntl

    with open(out_dir / f".{group.name}.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"{out_dir / group.name}: another process is making this "
                             "group") from None
        yield


def simulate(
    population: str,
    network: str,
    count: int,
    seed: int,
    out_dir: str | os.PathLike,
    sensitivity: str = "o3",
    jobs: int = 1,
    progress: bool = True,
) -> Path:
    """Make ``count`` BAYESTAR sky maps for one group; return the path of its manifest.json.

    Writes ``out_dir/<population>-<network>-<sensitivity>/`` holding the maps
    ``<group>-NNNN.fits``, ``manifest.json``, ``manifest.csv`` and ``bayestar/`` (the PSD,
    mass-sample, injection and coinc files the maps were made from). The work is done in
    ``out_dir/.<group>.partial/``; an interrupted call resumes from there when called again with
    the same seed and count (each file and map is committed whole), and a different seed or
    count starts afresh. An existing group directory is replaced only once the new one is
    complete. See the module docstring.
    """
    group = check_group(population, network, sensitivity)
    if count < 1:
        raise InputError(f"count must be at least 1, got {count}")
    if jobs < 1:
        raise InputError(f"jobs must be at least 1, got {jobs}")
    if not 0 <= seed < 2**63:
        raise InputError(f"seed must be a non-negative integer, got {seed}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / group.name
    work = out_dir / f".{group.name}.partial"
    with _group_lock(out_dir, group):
        state = {"format": FORMAT, "seed": seed, "count": count}
        try:
            resumed = json.loads((work / "state.json").read_text()) == state
        except (OSError, ValueError):
            resumed = False
        if not resumed:
            shutil.rmtree(work, ignore_errors=True)
            (work / "bayestar").mkdir(parents=True)
            atomic_write_json(work / "state.json", state)
        elif progress:
            log.info("%s: resuming from %s", group.name, work)
        manifest = _simulate_into(group, count, seed, work, jobs, progress)
        _write_manifest(work, manifest)
        shutil.rmtree(work / "raw")
        for done in ("state.json", "steps.json"):
            (work / done).unlink()
        if target.exists():
            old = out_dir / f".{group.name}.old-{os.getpid()}"
            target.rename(old)
            work.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            work.rename(target)
    return target / "manifest.json"


def _simulate_into(group: Group, count: int, seed: int, work: Path, jobs: int,
                   progress: bool) -> dict[str, Any]:
    from astropy.table import Table
    from tqdm import tqdm

    bayestar = work / "bayestar"
    seeds = derived_seeds(seed, group)
    commands: dict[str, list[str]] = {}
    waveform = WAVEFORMS[group.population]

    # 1. noise curves
    argv = ["--df", "1", "--f-max", "2048"]
    for ifo, curve in group.psds.items():
        argv += [f"--{ifo}", curve]
    commands["bayestar-sample-model-psd"] = ["-o", "psd.xml", *argv]
    psd = _produce(bayestar / "psd.xml", lambda out: _run_tool(
        "bayestar_sample_model_psd", ["-o", str(out), *argv]))

    # 2. injections: llama's masses, bayestar-inject's distances and angles
    masses = draw_masses(group.population, N_MASS_SAMPLES,
                         np.random.default_rng(seeds["masses"]))
    samples = _produce(bayestar / "mass_samples.ecsv", lambda out: Table(masses).write(
        out, format="ascii.ecsv"))
    n_injections = max(MIN_INJECTIONS, INJECTIONS_PER_MAP[group.network] * count)
    for _attempt in range(4):
        argv = ["--seed", str(seeds["inject"]), "--distribution-samples", str(samples),
                "--reference-psd", str(psd), "--f-low", f"{F_LOW:g}",
                "--snr-threshold", f"{SNR_THRESHOLD:g}", "--min-triggers", str(MIN_TRIGGERS),
                "--waveform", waveform, "--nsamples", str(n_injections), "-j", str(jobs)]
        commands["bayestar-inject"] = [*argv, "-o", "injections.xml"]

        def inject(out: Path, argv: list[str] = argv) -> None:
            with _fast_sensitive_distance():
                _run_tool("bayestar_inject", [*argv, "-o", str(out)])

        injections = _produce(bayestar / f"injections-{n_injections}.xml", inject)
        # 3. the optimal-SNR cut, the triggers and the detection cut
        pruned = bayestar / f"realized-{n_injections}.xml"
        _produce(pruned, lambda out, source=injections: prune_injections(source, psd, group,
                                                                         out))
        argv = ["--seed", str(seeds["realize"]), "--detector", *group.instruments,
                "--reference-psd", str(psd), "--measurement-error", "gaussian-noise",
                "--snr-threshold", f"{SNR_THRESHOLD:g}", "--net-snr-threshold",
                f"{NET_SNR_THRESHOLD:g}", "--min-triggers", str(MIN_TRIGGERS),
                "--keep-subthreshold", "--f-low", f"{F_LOW:g}", "-j", str(jobs)]
        commands["bayestar-realize-coincs"] = ["realized.xml", *argv, "-o", "coincs.xml"]

        def realize(out: Path, argv: list[str] = argv, source: Path = pruned) -> None:
            _run_tool("bayestar_realize_coincs", [str(source), *argv, "-o", str(out)])
            decimate_snr_series(out)

        coincs = _produce(bayestar / f"coincs-{n_injections}.xml", realize)
        records = _coinc_records(coincs, group.instruments)
        if len(records) >= count:
            break
        log.info("%s: %d of %d injections detected, %d maps asked for: drawing %d",
                 group.name, len(records), n_injections, count, 2 * n_injections)
        n_injections *= 2
    else:
        raise ConfigurationError(
            f"{group.name}: only {len(records)} of {n_injections // 2} injections passed the "
            f"detection cut, fewer than the {count} maps asked for")
    n_realized = len(_sim_ids(pruned))
    n_coincs = len(records)
    records = records[:count]

    # 4. one BAYESTAR map per coinc, each committed with its wall time (a resumed run skips it)
    commands["bayestar-localize-coincs"] = [
        "coincs.xml", "--coinc-event-id", "<coinc_event_id>", "-o", "<dir>", "--f-low",
        f"{F_LOW:g}", "--waveform", waveform]
    raw = work / "raw"
    raw.mkdir(exist_ok=True)
    todo = [r["coinc_event_id"] for r in records
            if not (raw / f"{r['coinc_event_id']}.json").exists()]
    bar = tqdm(total=count, initial=count - len(todo), desc=group.name, unit="map",
               disable=not progress)
    try:
        if jobs == 1:
            for coinc_id in todo:
                _localize_one(str(coincs), coinc_id, str(raw), waveform, False)
                bar.update()
        else:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=jobs) as pool:
                futures = [pool.submit(_localize_one, str(coincs), coinc_id, str(raw),
                                       waveform, True) for coinc_id in todo]
                for future in futures:
                    future.result()
                    bar.update()
    finally:
        bar.close()

    steps = json.loads((work / "steps.json").read_text())
    maps = []
    for index, record in enumerate(records):
        name = f"{group.name}-{index:04d}.fits"
        source = raw / f"{record['coinc_event_id']}.fits"
        wall = json.loads((raw / f"{record['coinc_event_id']}.json").read_text())["wall_time_s"]
        atomic_write_bytes(work / name, source.read_bytes())
        maps.append(_map_record(work / name, record, group, wall))
    return {
        "format": FORMAT,
        "population": group.population,
        "network": group.network,
        "instruments": list(group.instruments),
        "sensitivity": group.sensitivity,
        "seed": seed,
        "count": count,
        "seeds": seeds,
        "psds": group.psds,
        "model": model_description(group),
        **_versions(),
        "commands": commands,
        "n_injections": n_injections,
        "n_realized": n_realized,
        "n_coincs": n_coincs,
        "step_wall_times_s": steps,
        "wall_time_s": round(sum(steps.values()) + sum(m["wall_time_s"] for m in maps), 3),
        "maps": maps,
    }


def _sim_ids(injection_file: Path) -> list[int]:
    from igwn_ligolw import lsctables
    from igwn_ligolw import utils as ligolw_utils
    from ligo.skymap.io.events.ligolw import ContentHandler

    doc = ligolw_utils.load_filename(str(injection_file), contenthandler=ContentHandler)
    return [int(row.simulation_id) for row in lsctables.SimInspiralTable.get_table(doc)]


def _map_record(path: Path, record: dict[str, Any], group: Group, wall: float) -> dict[str, Any]:
    from astropy.io import fits

    skymap = read_skymap(path)
    header = fits.getheader(path, 1)
    found = sorted(str(header.get("INSTRUME", "")).split(","))
    if found != sorted(group.instruments):
        raise ConfigurationError(f"{path.name}: instruments {','.join(found)}, expected "
                                 f"{','.join(group.instruments)}")
    prob, area = searched(skymap, record["ra_deg"], record["dec_deg"])
    return {
        "file": path.name,
        "sha256": sha256_file(path),
        "data_sha256": data_sha256(skymap),
        **record,
        "instruments": ",".join(group.instruments),
        "distmean": skymap.meta.get("distmean"),
        "diststd": skymap.meta.get("diststd"),
        "area50_deg2": credible_area_deg2(skymap, 0.5),
        "area90_deg2": credible_area_deg2(skymap, 0.9),
        "searched_prob": prob,
        "searched_area_deg2": area,
        "wall_time_s": round(wall, 3),
        "bayestar_runtime_s": float(header.get("RUNTIME", float("nan"))),
    }


CSV_COLUMNS = ("file", "sha256", "data_sha256", "coinc_event_id", "instruments", "snr",
               "snr_H1", "snr_L1", "snr_V1", "ra_deg", "dec_deg", "distance_mpc", "mass1",
               "mass2", "distmean", "diststd", "area50_deg2", "area90_deg2", "searched_prob",
               "searched_area_deg2", "wall_time_s", "bayestar_runtime_s")


def _write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    atomic_write_json(directory / "manifest.json", manifest)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in manifest["maps"]:
        writer.writerow({key: ("" if row.get(key) is None else row.get(key))
                         for key in CSV_COLUMNS})
    atomic_write_bytes(directory / "manifest.csv", text.getvalue().encode())


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """A group's manifest.json (the path of the file or of its directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: not a readable manifest ({err})") from None
    if manifest.get("format") != FORMAT:
        raise InputError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT}")
    return manifest
