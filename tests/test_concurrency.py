"""Concurrent `luigi` runs on one event: pairs of different pipelines at the same time.

Each pair runs ``luigi --module llama.tasks DefaultPipeline`` and ``... SubthresholdPipeline``
for the same event at once (each with its own ``--lock-pid-dir``: Luigi refuses a second
process with the same command line otherwise). Both pipelines build the shared products
(GwSkymap, Distances, NeutrinoList) at the same moment, so their atomic writes, temporary
files and stale-temporary clean-up race each other. Before every pair the shared products are
removed, so both runs of every pair build them (and then each its own significance) at the
same moment. Afterwards every record must describe the file beside it, the shared products
must have the bytes of the first pair, and every product must be complete.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import shared_path
from test_tasks import BIN, EVENT, EVENT_GPS, ic40_stretch, out  # noqa: F401 - fixture

import llama.io.neutrinos as nu
from llama import provenance
from llama.cli import skymap_info
from llama.io.storage import sha256_file
from llama.significance import parse_event_time
from llama.tasks import Distances, NeutrinoList, Significance, SignificanceOPA

PAIRS = 20
PIPELINES = ("DefaultPipeline", "SubthresholdPipeline")
SHARED = (Distances.filename, NeutrinoList.filename)
PRODUCTS = (*SHARED, Significance.filename, SignificanceOPA.filename)
TIMEOUT_S = 120


@pytest.fixture
def event_dir(out, tmp_path, monkeypatch) -> Path:  # noqa: F811 - `out` is test_tasks' fixture
    """MS181101ab after its Preliminary notice with the BAYESTAR map; neutrinos: real IC40
    tracks moved to its time."""
    source = tmp_path / "ic40_shifted.json"
    nu.write_llama_json(ic40_stretch(parse_event_time(EVENT_GPS)), source)
    monkeypatch.setenv("LLAMA_NEUTRINO_SOURCE", str(source))
    notice = shared_path("gw_alerts", "voevent", "MS181101ab-2-Preliminary.xml")
    skymap = shared_path("gw_skymaps", "MS181101ab_userguide_bayestar.multiorder.fits")
    argv = ["--voevent", str(notice), "--skymap", str(skymap), "--role", "test"]
    assert skymap_info.main(argv) == 0
    return out / "current_run" / EVENT


def start(pipeline: str, cwd: Path, locks: Path) -> subprocess.Popen:
    """`luigi --module llama.tasks <pipeline> --eventid EVENT` with its own lock directory."""
    locks.mkdir(parents=True)
    return subprocess.Popen(
        [str(BIN / "luigi"), "--module", "llama.tasks", pipeline, "--eventid", EVENT,
         "--lock-pid-dir", str(locks)],
        cwd=cwd, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )


def shared_products(event_dir: Path) -> dict[str, bytes]:
    return {name: (event_dir / name).read_bytes() for name in SHARED}


@pytest.mark.slow
def test_concurrent_pairs_of_different_pipelines_agree(event_dir, tmp_path):
    first: dict[str, bytes] | None = None
    deadline = time.monotonic() + 10 * TIMEOUT_S
    for pair in range(PAIRS):
        for name in SHARED:
            (event_dir / name).unlink(missing_ok=True)
        runs = [start(p, tmp_path, tmp_path / f"locks-{pair}-{p}") for p in PIPELINES]
        for pipeline, run in zip(PIPELINES, runs, strict=True):
            _, stderr = run.communicate(timeout=TIMEOUT_S)
            assert run.returncode == 0, f"pair {pair}, {pipeline}: exit {run.returncode}\n{stderr}"
        assert time.monotonic() < deadline
        built = shared_products(event_dir)
        first = first or built
        assert built == first, f"pair {pair}: shared products differ from the first pair's"
        records = sorted(event_dir.glob(f".*{provenance.RECORD_SUFFIX}"))
        assert len(records) >= len(PRODUCTS)
        for path in records:  # every record describes the product beside it
            record = json.loads(path.read_bytes())
            assert record["sha256"] == sha256_file(event_dir / record["product"]), path.name
        assert not [p.name for p in event_dir.iterdir() if p.name.endswith(".tmp")]
        for task in (Distances, NeutrinoList, Significance, SignificanceOPA):
            assert task(eventid=EVENT).complete(), f"pair {pair}: {task.__name__} not complete"
