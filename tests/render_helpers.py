"""Events for the rendering and provenance tests, built with the real code from real files.

Three real sky maps, one per kind the plots must handle:

    MS181101ab  multi-order BAYESTAR map (LVK User Guide), its Preliminary notice (CBC)
    G298048     flat NSIDE 1024 GW170817 map (GWTC-1), the GW170817 Initial notice (CBC)
    S230531f    flat NSIDE 512 2-D map without distance (GW150914 BAYESTAR) under the real
                Burst notice of S230531f: a Burst event without distance (map and notice are
                of different events: the notice gives the time, group and instruments)

Neutrinos: real IceCube IC40 tracks shifted in time to each event (SIMULATED timing, as in
tests/test_tasks.py). Background population for the p-value: SYNTHETIC odds (log-normal,
seeded), stored with llama.io.populations at the keys the three events use.
"""

from __future__ import annotations

from pathlib import Path

import luigi
import numpy as np
import pytest
from conftest import shared_path
from luigi.execution_summary import LuigiStatusCode
from test_tasks import ic40_stretch

import llama.io.neutrinos as nu
from llama.config import Settings
from llama.event import Event
from llama.ingest import ingest_file
from llama.io.populations import write_population
from llama.significance import parse_event_time

#: event id -> (notice, sky map) in ../shared/data.
EVENTS = {
    "MS181101ab": ("MS181101ab-2-Preliminary.xml", "MS181101ab_userguide_bayestar.multiorder.fits"),
    "G298048": ("G298048-1-Initial_GW170817.xml", "GW170817_skymap.fits.gz"),
    "S230531f": ("S230531f-1-Preliminary_burst.xml", "GW150914_bayestar_gstlal_C01.fits.gz"),
}
#: Instrument keys of the three notices (H1; H1,L1,V1; H1,L1).
POPULATION_KEYS = ("H1", "H1L1", "H1L1V1")


def write_populations(path: Path) -> None:
    """SYNTHETIC background odds (log10 odds ~ N(-30, 10), 2000 trials, seed 13) at every key."""
    odds = 10.0 ** np.random.default_rng(13).normal(-30.0, 10.0, 2000)
    for key in POPULATION_KEYS:
        write_population(path, f"subthreshold/bns/o3/{key}", odds)


def clean_settings(mp: pytest.MonkeyPatch, out: Path) -> None:
    """Default settings, no Luigi configuration of the user's, output to ``out``."""
    for name in Settings.__dataclass_fields__:
        mp.delenv(f"LLAMA_{name.upper()}", raising=False)
    for name in ("LUIGI_CONFIG_PATH", "LLAMA_TEST_PAUSE_BEFORE_WRITE", "LLAMA_IMAGE"):
        mp.delenv(name, raising=False)
    mp.setenv("LLAMA_OUTPUT_DIR", str(out))


def add_event(run: Path, eventid: str) -> Path:
    """Create ``eventid`` in ``run`` from its notice and sky map; returns the event directory."""
    notice, skymap = EVENTS[eventid]
    ingest_file(shared_path("gw_alerts", "voevent", notice), run_dir=run, role="test",
                skymap=shared_path("gw_skymaps", skymap))
    return Event(eventid, run).directory


def neutrino_source(path: Path, events: list[Path], *, drop_later: bool = False) -> Path:
    """One LLAMA JSON neutrino source for all ``events``: for each, the IC40 tracks shifted
    to its time (``drop_later``: without the track after the window, so lists stay
    incomplete); set it as $LLAMA_NEUTRINO_SOURCE (one setting serves every event)."""
    stretches = []
    for directory in events:
        tracks = ic40_stretch(parse_event_time(Event(directory.name, directory.parent)
                                               .skymap_info["event_time_gps"]))
        stretches.append(tracks.select(slice(0, len(tracks) - 1)) if drop_later else tracks)
    everything = nu.NeutrinoList.concatenate(stretches)
    nu.write_llama_json(everything.select(np.argsort(everything.mjd)), path)
    return path


def build(*tasks: luigi.Task) -> None:
    """Build in-process with the local scheduler; assert Luigi's status."""
    result = luigi.build(list(tasks), local_scheduler=True, detailed_summary=True)
    assert result.status == LuigiStatusCode.SUCCESS, result.summary_text
