"""Detection efficiency of injection campaigns versus the neutrino emission energy
(``llama background sensitivity``; definitions in llama.science.efficiency).

Inputs: collated tables (or job files) of ``llama background run --inject MU`` campaigns, one
or more per mu, and a background, either

* a background table of the same campaign (same search, sky maps, mode and model settings, no
  injections), pooled per population key exactly as ``llama background pvalue`` pools it, or
* a ``populations.hdf5``: the population of each map's key (search, population, sensitivity,
  instruments), as ``llama significance`` uses it.

Each trial's p-value is (1 + #(O_bg >= O)) / (1 + N_bg), one searchsorted per population.
The mu (and E_iso) of 90% efficiency per threshold, interpolated in log mu, goes to the
metadata (``mu_90``, ``e_iso_90_erg``; null where no point reaches 90%).
Given the campaign's sky maps (recognised by the sha256 the campaign recorded), the emission
energy of each mu comes from their 3-D posteriors; the injections visit the maps in turn, so
the campaign's neutrinos per erg is the trial-weighted mean of the maps' values.

Products (all written atomically): ``PREFIX.png`` and ``PREFIX.pdf`` (the plot,
llama.render.sensitivity) and ``PREFIX.ecsv`` (the points: a CSV file with a YAML header of
metadata, readable by ``astropy.table.Table.read`` or any CSV reader skipping ``#`` lines).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from llama import __version__
from llama.background.campaign import (
    FORMAT,
    Table,
    background_populations,
    commit,
    read_skymap_list,
    read_table,
)
from llama.errors import InputError
from llama.io.storage import exists, read_bytes, sha256_file
from llama.science.efficiency import (
    ONE_SIGMA,
    Efficiency,
    efficiency,
    mu_at_efficiency,
    neutrinos_per_erg,
)
from llama.science.pvalue import p_values, population_key

if TYPE_CHECKING:
    from llama.io.skymap_geometry import SkyMap
    from llama.science.detector import ZenithWeights
    from llama.science.parameters import SearchParameters

#: Table attributes that injection tables and a background table must share.
CAMPAIGN_KEYS = ("search", "skymap_sha256", "mode", "population", "sensitivity", "preset",
                 "energy_weight", "snr")
DETECTION = "p <= threshold, p = (1 + #(O_bg >= O)) / (1 + N_bg)"
ENERGY = ("isotropic-equivalent neutrino emission energy (erg) at which a source drawn from the "
          "GW maps' 3-D posteriors yields mu detected signal neutrinos on average: "
          "E_iso = mu / c, c = nu_51_100 * 10 * (100 Mpc)^2 <w(90 deg + dec) r^-2> / "
          "(9.5214e51 erg per code unit) (llama.science.efficiency)")


@dataclass
class Sensitivity:
    """The efficiency points, the campaign's neutrinos per erg (None without the sky maps)
    and what they were made from."""

    efficiency: Efficiency
    neutrinos_per_erg: float | None
    meta: dict[str, Any]

    def emission_energy(self) -> np.ndarray | None:
        """E_iso (erg) of each mu, or None without the sky maps."""
        if self.neutrinos_per_erg is None:
            return None
        return self.efficiency.mu / self.neutrinos_per_erg


def sensitivity(injections: Sequence[str], background: str, thresholds: Sequence[float],
                confidence: float = ONE_SIGMA, skymaps: Sequence[str] | None = None,
                progress: bool = False) -> Sensitivity:
    """Efficiency of the injection tables against ``background`` at each p-value threshold;
    with ``skymaps`` (paths or a list file) also the emission energy of each mu."""
    if not 0 < confidence < 1:
        raise InputError(f"--confidence must be between 0 and 1, got {confidence:g}")
    bad = [t for t in thresholds if not 0 < t < 1]
    if bad:
        raise InputError(f"--p-threshold must be between 0 and 1, got {bad[0]:g}")
    tables = _read_injections(injections, progress)
    reference = tables[0][1].attrs
    populations, kind = _background(background, reference, injections[0])
    keys = _map_keys(reference)
    odds = np.concatenate([table.columns["odds"] for _, table in tables])
    skymap = np.concatenate([table.columns["skymap"] for _, table in tables]).astype(np.int64)
    mu = np.concatenate([np.full(len(table), table.attrs["injected_mu"]) for _, table in tables])
    p = np.empty(odds.size)
    for key in sorted(set(keys)):
        rows = np.isin(skymap, [m for m, k in enumerate(keys) if k == key])
        p[rows] = p_values(odds[rows], populations[key])
    used = {key: int(populations[key].size)
            for key in sorted({keys[m] for m in np.unique(skymap).tolist()})}
    smallest = min(thresholds)
    for key, n in used.items():
        if smallest < 1.0 / (n + 1):
            raise InputError(
                f"--p-threshold {smallest:g} is below the smallest p-value the background can "
                f"give, 1/(N_bg + 1) = {1.0 / (n + 1):.3g} ({key}, {n} trials): run more "
                "background trials"
            )
    result = efficiency(p, mu, thresholds, confidence)
    meta = {
        **{k: reference[k] for k in ("search", "mode", "population", "sensitivity", "preset",
                                     "energy_weight", "snr")},
        "skymap_names": json.loads(reference["skymap_names"]),
        "background": {"url": str(background), "kind": kind, "populations": used},
        "injections": [{"url": str(url), "injected_mu": table.attrs["injected_mu"],
                        "campaign_seed": table.attrs["campaign_seed"], "n_trials": len(table)}
                       for url, table in tables],
        "detection": DETECTION,
        "interval": "Clopper-Pearson",
        "confidence": confidence,
        "llama_version": __version__,
    }
    per_erg = None
    mu_90 = mu_at_efficiency(result, 0.9)
    meta["mu_90"] = {f"{a:g}": None if np.isnan(m) else float(m)
                     for a, m in zip(result.thresholds, mu_90, strict=True)}
    if skymaps is not None:
        per_erg, meta["skymaps"] = _neutrinos_per_erg(skymaps, reference, skymap)
        meta["emission_energy"] = ENERGY
        meta["neutrinos_per_erg"] = per_erg
        meta["e_iso_90_erg"] = {a: None if m is None else m / per_erg
                                for a, m in meta["mu_90"].items()}
    return Sensitivity(result, per_erg, meta)


def _read_injections(urls: Sequence[str], progress: bool) -> list[tuple[str, Table]]:
    """The injection tables, checked: injections, one campaign, no job counted twice."""
    from tqdm import tqdm

    tables: list[tuple[str, Table]] = []
    seen: dict[tuple[int, float, int], str] = {}
    for url in tqdm(urls, desc="tables", unit="table", disable=not progress or len(urls) < 2):
        table = read_table(url)
        if table.attrs["injected_mu"] == 0:
            raise InputError(f"{url}: a background table (no injected signal), not injections: "
                             "give it with --background")
        if tables:
            _same_campaign(url, table.attrs, tables[0][0], tables[0][1].attrs)
        for job in np.unique(table.columns["job"]).tolist():
            key = (table.attrs["campaign_seed"], table.attrs["injected_mu"], job)
            if key in seen:
                raise InputError(f"{url}: job {job} of seed {key[0]} (mu {key[1]:g}) is also in "
                                 f"{seen[key]}: it would count twice")
            seen[key] = url
        tables.append((url, table))
    return tables


def _same_campaign(url: str, attrs: dict, other_url: str, other: dict) -> None:
    """InputError naming what differs when ``attrs`` is not of the campaign ``other``."""
    if attrs["search"] != other["search"]:
        raise InputError(f"{url}: {attrs['search']} search, but {other_url} is "
                         f"{other['search']}: compare one search with itself")
    if attrs["skymap_sha256"] != other["skymap_sha256"]:
        maps, other_maps = (", ".join(json.loads(a["skymap_names"])) for a in (attrs, other))
        raise InputError(f"{url}: run on other sky maps ({maps}) than {other_url} ({other_maps})")
    differ = [f"{k} {attrs.get(k)!r} vs {other.get(k)!r}" for k in CAMPAIGN_KEYS
              if attrs.get(k) != other.get(k)]
    if differ:
        raise InputError(f"{url}: another campaign than {other_url} ({', '.join(differ)})")


def _background(url: str, reference: dict, reference_url: str
                ) -> tuple[dict[str, np.ndarray], str]:
    """(population key -> ascending background odds, kind) from a background table of the same
    campaign or from a populations file."""
    if not exists(url):
        raise InputError(f"{url}: no such file")
    if _is_campaign_table(url):
        table = read_table(url)
        mu = np.unique(table.columns["injected_mu"])
        if np.any(mu != 0):
            listed = ", ".join(f"{m:g}" for m in mu)
            raise InputError(f"{url}: has signal injections (mu = {listed}): not a background")
        _same_campaign(url, table.attrs, reference_url, reference)
        return {k: np.sort(v) for k, v in background_populations([table]).items()}, "campaign table"
    from llama.io.populations import load_populations

    populations = load_populations(url, sorted(set(_map_keys(reference))))
    missing = [key for key, odds in populations.items() if odds is None]
    if missing:
        raise InputError(f"{url}: no background population {', '.join(missing)} (the key of the "
                         "injections' search, population, sensitivity and instruments)")
    return populations, "populations"


def _is_campaign_table(url: str) -> bool:
    """True for a campaign results file or table, False for any other HDF5 file."""
    import h5py

    try:
        with h5py.File(io.BytesIO(read_bytes(url)), "r") as f:
            return f.attrs.get("format") == FORMAT
    except OSError as err:
        raise InputError(f"{url}: neither a campaign table nor a populations file (not HDF5: "
                         f"{err})") from None


def _map_keys(attrs: dict) -> list[str]:
    """Population key of every sky map of the campaign."""
    return [population_key(attrs["search"], attrs["population"], attrs["sensitivity"], network)
            for network in json.loads(attrs["instruments"])]


def _neutrinos_per_erg(paths: Sequence[str], attrs: dict, skymap: np.ndarray
                       ) -> tuple[float, list[dict[str, Any]]]:
    """The campaign's detected signal neutrinos per erg (trial-weighted over its maps) and, per
    map, its name, sha256, mean distance and value."""
    from llama.io.skymap import read_skymap
    from llama.io.tables import read_zenith_weights
    from llama.science.parameters import preset

    wanted, names = json.loads(attrs["skymap_sha256"]), json.loads(attrs["skymap_names"])
    given = {sha256_file(path): path for path in read_skymap_list(paths)}
    missing = [name for name, sha in zip(names, wanted, strict=True) if sha not in given]
    if missing:
        raise InputError(f"--skymaps: the campaign's map(s) {', '.join(missing)} are not among "
                         "them (matched by sha256)")
    params, weights = preset(attrs["preset"]), read_zenith_weights()
    per_map = []
    for name, sha in zip(names, wanted, strict=True):
        path = given[sha]
        per_map.append({"name": name, "path": str(path), "sha256": sha,
                        **_map_neutrinos_per_erg(read_skymap(path), path, weights, params)})
    share = np.bincount(skymap, minlength=len(per_map)) / skymap.size
    return float(share @ [m["neutrinos_per_erg"] for m in per_map]), per_map


def _map_neutrinos_per_erg(skymap: SkyMap, path: str, weights: ZenithWeights,
                           params: SearchParameters) -> dict[str, float | None]:
    """Neutrinos per erg of a source drawn from one map, with its DISTMEAN and the distance
    (<r^-2>)^(-1/2) the value uses (Mpc)."""
    from llama.io.skymap_distance import ansatz_integrals, valid_ansatz

    if skymap.distmu is None:
        raise InputError(f"{path}: no distance layers (DISTMU, DISTSIGMA), so no emission "
                         "energy: leave out --skymaps to plot against mu")
    valid = valid_ansatz(skymap.distmu, skymap.distsigma)
    if not skymap.prob[valid].sum() > 0:
        raise InputError(f"{path}: no pixel with probability has a distance estimate")
    i0, _, i2 = ansatz_integrals(skymap.distmu[valid], skymap.distsigma[valid], np.inf, 2)
    inverse_square = i0 / i2  # <r^-2> of each pixel's posterior, Mpc^-2
    _, dec = skymap.pixel_radec()
    prob = skymap.prob[valid]
    per_erg = neutrinos_per_erg(prob, weights(90.0 + dec[valid]), inverse_square, params)
    mean_inverse_square = float(np.sum(prob * inverse_square) / prob.sum())
    return {"distmean_mpc": skymap.distance_mean(),
            "inverse_square_mean_distance_mpc": mean_inverse_square**-0.5,
            "neutrinos_per_erg": per_erg}


def table_bytes(result: Sensitivity) -> bytes:
    """The points as ECSV: one row per (threshold, mu), metadata in the header."""
    from astropy.table import Table as AstropyTable

    eff = result.efficiency
    columns = {
        "p_threshold": np.repeat(eff.thresholds, eff.mu.size),
        "injected_mu": np.tile(eff.mu, eff.thresholds.size),
        **({} if result.neutrinos_per_erg is None
           else {"e_iso_erg": np.tile(result.emission_energy(), eff.thresholds.size)}),
        "n_trials": np.tile(eff.n_trials, eff.thresholds.size),
        "n_detected": eff.n_detected.ravel(),
        "efficiency": eff.efficiency.ravel(),
        "efficiency_low": eff.low.ravel(),
        "efficiency_high": eff.high.ravel(),
    }
    table = AstropyTable(columns, meta=result.meta)
    buffer = io.StringIO()
    table.write(buffer, format="ascii.ecsv")
    return buffer.getvalue().encode("utf-8")


def write_products(result: Sensitivity, prefix: str) -> list[str]:
    """Commit PREFIX.png, PREFIX.pdf and PREFIX.ecsv; returns their URLs."""
    from llama.render.sensitivity import render_sensitivity

    products = {**render_sensitivity(result.efficiency, result.neutrinos_per_erg, _title(result)),
                "ecsv": table_bytes(result)}
    urls = []
    for suffix, data in products.items():
        url = f"{prefix}.{suffix}"
        commit(url, data)
        urls.append(url)
    return urls


def _title(result: Sensitivity) -> str:
    meta = result.meta
    names = [name.split(".")[0] for name in meta["skymap_names"]]
    maps = names[0] if len(names) == 1 else f"{len(names)} sky maps"
    if "skymaps" in meta and len(names) == 1:
        maps += f" ({meta['skymaps'][0]['distmean_mpc']:.0f} Mpc)"
    n_bg = " + ".join(str(n) for n in meta["background"]["populations"].values())
    return f"{meta['search']} search, {maps}, background {n_bg} trials"
