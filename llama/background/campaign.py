"""Background and injection campaigns (SCIENCE.md section 6): jobs, results files, collation.

A campaign is (sky maps, search, injected mu, campaign seed). Job ``k`` runs ``n_trials``
trials spread round-robin over the maps; the trials on map ``m`` draw from
``SeedSequence(seed, spawn_key=(k, m))``, so a job is reproducible from (seed, k) alone and no
two jobs or maps share a random stream. A job writes one columnar results file (HDF5, one row
per trial) committed atomically through llama.io.storage (``file://`` or ``s3://``); a job
whose file is already committed with the same identity is skipped, so rerunning a campaign
redoes only what is missing. Collation reads every job file, refuses duplicates and writes one
table; :func:`write_populations` turns background tables into ``populations.hdf5`` and refuses
injections, which therefore never land in a background key.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llama import __version__
from llama.config import Settings
from llama.errors import InputError
from llama.io.storage import atomic_write_bytes, exists, local_path, read_bytes, sha256_file
from llama.science.skysums import PixelTree

log = logging.getLogger(__name__)

#: Columns of a results file and of a collated table (name -> dtype), one row per trial.
COLUMNS: dict[str, str] = {
    "job": "int32",
    "trial": "int32",  # index within the job
    "skymap": "int16",  # index into the campaign's sky-map list
    "n_neutrinos": "int16",
    "injected_mu": "float32",
    "odds": "float64",
    "p_h_0": "float64",  # subthreshold only (NaN for OPA); p_h_s1 = odds (p_h_0 + p_h_c)
    "p_h_c": "float64",
}
FORMAT = "llama-campaign-results-2"
#: Identity attributes: a committed job file with the same values is the same job.
IDENTITY = ("format", "campaign_seed", "job", "n_trials", "search", "mode", "injected_mu",
            "skymap_sha256")


@dataclass(frozen=True)
class Campaign:
    """What every job of a campaign shares."""

    skymaps: tuple[str, ...]
    search: str = "subthreshold"
    injected_mu: float = 0.0
    seed: int = 0
    settings: Settings = field(default_factory=Settings)
    mode: str = "exact"  # trials engine: exact | fast (llama.background.trials.MODES)

    def job_url(self, out: str, job: int) -> str:
        """Where job ``job`` commits its results under the prefix ``out``."""
        return f"{out.rstrip('/')}/job-{job:06d}.h5"


def read_skymap_list(items: Sequence[str]) -> tuple[str, ...]:
    """Sky-map paths from the command line: paths, or one text file listing one path a line."""
    if len(items) == 1 and items[0].endswith((".txt", ".lst", ".list")):
        try:
            lines = read_bytes(items[0]).decode("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"{items[0]}: cannot read the sky-map list ({err})") from None
        items = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    if not items:
        raise InputError("no sky maps given")
    return tuple(str(item) for item in items)


def _seed_sequence(seed: int, job: int, skymap: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=(job, skymap))


def run_job(campaign: Campaign, job: int, n_trials: int, out: str, progress: bool = False) -> str:
    """Run job ``job`` (``n_trials`` trials) and commit its results file; returns its URL.

    Skipped (and logged) when a file with the same identity is already committed at the URL.
    """
    from llama.background.trials import run_trials
    from llama.io.skymap import read_skymap
    from llama.significance import build_model, load_background_sample, make_trigger

    if n_trials < 1 or job < 0:
        raise InputError(f"a job needs at least 1 trial and an index >= 0 (got {n_trials}, {job})")
    url = campaign.job_url(out, job)
    identity = _identity(campaign, job, n_trials)
    if exists(url) and _committed_identity(url) == identity:
        log.info("job %d already committed at %s: skipped", job, url)
        return url
    skymaps = [read_skymap(path) for path in campaign.skymaps]
    sample = load_background_sample(campaign.settings)
    model = build_model(campaign.settings, sample)
    which = (job * n_trials + np.arange(n_trials)) % len(skymaps)  # round-robin over the maps
    columns = {name: np.empty(n_trials, dtype) for name, dtype in COLUMNS.items()}
    for m, skymap in enumerate(skymaps):
        rows = np.flatnonzero(which == m)
        if rows.size == 0:
            continue
        trigger = make_trigger(
            skymap,
            skymap.meta.get("mjd_obs") or 60000.0,
            campaign.settings.default_snr,
            skymap.meta.get("instruments") or ["unknown"],
            campaign.settings.p_terrestrial,
        )
        result = run_trials(
            skymap, trigger, model, sample, rows.size, _seed_sequence(campaign.seed, job, m),
            campaign.search, campaign.injected_mu, progress, campaign.mode,
        )  # fmt: skip
        skymap.forget(PixelTree.CACHE_KEY)  # its value tables: a job holds one map's at a time
        columns["skymap"][rows] = m
        columns["n_neutrinos"][rows] = result.n_neutrinos
        for name in ("odds", "p_h_0", "p_h_c"):
            columns[name][rows] = getattr(result, name)
    columns["job"][:] = job
    columns["trial"][:] = np.arange(n_trials)
    columns["injected_mu"][:] = campaign.injected_mu
    attrs = {**identity, **_description(campaign, skymaps)}
    commit(url, _hdf5_bytes(columns, attrs))
    log.info("job %d: %d trials committed at %s", job, n_trials, url)
    return url


def _identity(campaign: Campaign, job: int, n_trials: int) -> dict[str, Any]:
    """What makes a job the same job; the maps count by content (sha256 of their files, so a
    committed job is recognised without reading its maps)."""
    return {
        "format": FORMAT,
        "campaign_seed": int(campaign.seed),
        "job": int(job),
        "n_trials": int(n_trials),
        "search": campaign.search,
        "mode": campaign.mode,
        "injected_mu": float(campaign.injected_mu),
        "skymap_sha256": json.dumps([sha256_file(path) for path in campaign.skymaps]),
    }


def _description(campaign: Campaign, skymaps: list) -> dict[str, Any]:
    """Attributes that describe, but do not identify, a job (same job, same values)."""
    s = campaign.settings
    sensitivity = s.sensitivity or s.preset
    return {
        "skymap_names": json.dumps([os.path.basename(p) for p in campaign.skymaps]),
        "instruments": json.dumps([sorted(m.meta.get("instruments") or ["unknown"])
                                   for m in skymaps]),
        "population": s.population,
        "sensitivity": sensitivity,
        "preset": s.preset,
        "energy_weight": s.energy_weight,
        "snr": float(s.default_snr),
        "llama_version": __version__,
    }


def commit(url: str, data: bytes) -> None:
    """Write ``data`` at ``url`` atomically, creating a local parent directory."""
    local = local_path(url)
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(url, data)


def _hdf5_bytes(columns: dict[str, np.ndarray], attrs: dict[str, Any]) -> bytes:
    """A results file in memory: one gzip-compressed dataset per column, no timestamps, so the
    same results give the same bytes."""
    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w", track_order=True) as f:
        for name, values in columns.items():
            f.create_dataset(
                name, data=values, compression="gzip", compression_opts=9, shuffle=True,
                track_times=False,
                chunks=True if values.size else None,
            )  # fmt: skip
        for key, value in attrs.items():
            f.attrs[key] = value
    return buffer.getvalue()


def _read_hdf5(url: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    import h5py

    try:
        with h5py.File(io.BytesIO(read_bytes(url)), "r") as f:
            attrs = {key: _plain(value) for key, value in f.attrs.items()}
            columns = {name: f[name][()] for name in COLUMNS if name in f}
    except FileNotFoundError:
        raise InputError(f"{url}: no such results file") from None
    except OSError as err:
        raise InputError(f"{url}: not a readable results file ({err})") from None
    missing = set(COLUMNS) - set(columns)
    if attrs.get("format") != FORMAT or missing:
        raise InputError(f"{url}: not a llama campaign results file (missing {sorted(missing)})")
    return columns, attrs


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _committed_identity(url: str) -> dict[str, Any] | None:
    try:
        _, attrs = _read_hdf5(url)
    except InputError:
        return None
    return {key: attrs.get(key) for key in IDENTITY}


@dataclass
class Table:
    """A collated campaign table: the columns of every job, and what it was made from."""

    columns: dict[str, np.ndarray]
    attrs: dict[str, Any]
    sources: dict[str, str]  # job URL -> sha256 of its file

    def __len__(self) -> int:
        return int(self.columns["odds"].size)


def collate(urls: Iterable[str]) -> Table:
    """One table from job results files; duplicates and mixed campaigns are refused."""
    parts, sources, seen = [], {}, {}
    shared: dict[str, Any] | None = None
    for url in urls:
        data = read_bytes(url) if exists(url) else None
        if data is None:
            raise InputError(f"{url}: no such results file")
        columns, attrs = _read_hdf5(url)
        key = (attrs["campaign_seed"], attrs["job"])
        if key in seen:
            raise InputError(f"{url}: job {attrs['job']} of seed {key[0]} is also in {seen[key]}")
        seen[key] = url
        common = {k: v for k, v in attrs.items() if k not in ("job", "n_trials")}
        if shared is None:
            shared = common
        elif common != shared:
            changed = sorted(k for k in set(common) | set(shared) if common.get(k) != shared.get(k))
            raise InputError(f"{url}: belongs to another campaign ({', '.join(changed)} differ)")
        if columns["odds"].size != attrs["n_trials"]:
            raise InputError(f"{url}: {columns['odds'].size} rows, expected {attrs['n_trials']}")
        parts.append(columns)
        sources[url] = hashlib.sha256(data).hexdigest()
    if not parts:
        raise InputError("no results files to collate")
    order = np.argsort([p["job"][0] if p["job"].size else 0 for p in parts], kind="stable")
    columns = {name: np.concatenate([parts[i][name] for i in order]) for name in COLUMNS}
    attrs = {**shared, "n_jobs": len(parts), "n_trials": int(columns["odds"].size)}
    return Table(columns, attrs, sources)


def write_table(table: Table, url: str) -> str:
    """Commit a collated table (HDF5, same layout as a job file plus the sources)."""
    attrs = {**table.attrs, "sources": json.dumps(table.sources, sort_keys=True)}
    commit(url, _hdf5_bytes(table.columns, attrs))
    return url


def read_table(url: str) -> Table:
    """A table written by :func:`write_table` (or a single job file)."""
    columns, attrs = _read_hdf5(url)
    sources = json.loads(attrs.pop("sources", "{}"))
    return Table(columns, attrs, sources)


def background_populations(tables: Sequence[Table]) -> dict[str, np.ndarray]:
    """Background odds of the tables pooled per population key (SCIENCE.md section 6: search,
    population, sensitivity, instruments of each map), key -> odds in table order.

    Tables of signal injections are refused: a p-value is never computed against injections.
    """
    from llama.science.pvalue import population_key

    pooled: dict[str, list[np.ndarray]] = {}
    for table in tables:
        mu = np.unique(table.columns["injected_mu"])
        if np.any(mu != 0):
            raise InputError(
                f"table with signal injections (mu = {', '.join(f'{m:g}' for m in mu)}): "
                "injections never go into a background population"
            )
        instruments = json.loads(table.attrs["instruments"])
        for m, network in enumerate(instruments):
            key = population_key(
                table.attrs["search"], table.attrs["population"], table.attrs["sensitivity"], network
            )
            pooled.setdefault(key, []).append(table.columns["odds"][table.columns["skymap"] == m])
    return {key: np.concatenate(arrays) for key, arrays in sorted(pooled.items())}


def write_populations(tables: Sequence[Table], out: str, attrs: dict[str, Any] | None = None
                      ) -> dict[str, int]:
    """:func:`background_populations` of the tables into ``populations.hdf5``; returns key ->
    count. ``attrs`` (provenance) are stored on every dataset written."""
    from llama.io.populations import write_population

    counts = {}
    for key, odds in background_populations(tables).items():
        write_population(out, key, odds, {"llama_version": __version__, "n_tables": len(tables),
                                          **(attrs or {})})
        counts[key] = int(odds.size)
    return counts
