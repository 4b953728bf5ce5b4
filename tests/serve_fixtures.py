"""Output directories for the status-page and health tests, built with the real code.

`build_output_dir(out)` makes, from the real MS181101ab notices and sky maps and real IceCube
IC40 tracks shifted in time (as tests/test_tasks.py does):

    current_run/MS181101ab          Preliminary notice + BAYESTAR map; both significances, the
                                    sky plot (ScatterPlot) and their inputs built by Luigi (all
                                    complete)
    past_runs/replay/MS181101ab     a copy, then the Update notice with the combined map
                                    (products obsolete), the Initial notice with HTML/script in
                                    its ivorn (input from outside; older, so only archived) and a
                                    failure of the subthreshold significance (failed)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import luigi
import pytest
from luigi.execution_summary import LuigiStatusCode
from test_tasks import EVENT, EVENT_GPS, ic40_stretch, skymap, voevent

import llama.io.neutrinos as nu
from llama import health
from llama.config import Settings
from llama.ingest import ingest_file
from llama.significance import parse_event_time
from llama.tasks import ScatterPlot, Significance, SignificanceOPA

#: What the ivorn of the hostile notice holds.
HOSTILE = "<script>alert('ivorn')</script>"
PLOT = ScatterPlot.filenames[0]
FAILED = "significance_subthreshold_lvc-i3.json"


def hostile_notice(directory: Path) -> Path:
    """The real Initial notice of MS181101ab with a script in its ivorn."""
    text = Path(voevent("3-Initial")).read_text()
    escaped = HOSTILE.replace("<", "&lt;").replace(">", "&gt;").replace("'", "&apos;")
    start = text.index('ivorn="') + len('ivorn="')
    end = text.index('"', start)
    path = directory / "MS181101ab-3-Initial-hostile.xml"
    path.write_text(text[:start] + text[start:end] + escaped + text[end:])
    return path


def build_output_dir(out: Path) -> dict[str, Path]:
    """Build the output directory ``out`` (see the module docstring); returns the event dirs."""
    current, replay = out / "current_run", out / "past_runs" / "replay"
    source = out.parent / "ic40_shifted.json"
    nu.write_llama_json(ic40_stretch(parse_event_time(EVENT_GPS)), source)
    with pytest.MonkeyPatch.context() as mp:
        for name in Settings.__dataclass_fields__:
            mp.delenv(f"LLAMA_{name.upper()}", raising=False)
        mp.delenv("LUIGI_CONFIG_PATH", raising=False)
        mp.setenv("LLAMA_OUTPUT_DIR", str(out))
        mp.setenv("LLAMA_NEUTRINO_SOURCE", str(source))
        ingest_file(voevent("2-Preliminary"), run_dir=current, role="test",
                    skymap=skymap("bayestar"))
        tasks = [task(eventid=EVENT, rundir=str(current))
                 for task in (Significance, SignificanceOPA, ScatterPlot)]
        result = luigi.build(tasks, local_scheduler=True, detailed_summary=True)
        assert result.status == LuigiStatusCode.SUCCESS, result.summary_text
    event = current / EVENT
    shutil.copytree(event, replay / EVENT)
    ingest_file(voevent("4-Update"), run_dir=replay, role="test",
                skymap=skymap("combined-ext"))
    ingest_file(hostile_notice(out.parent), run_dir=replay, role="test")  # older: archived only
    health.record_failure(replay / EVENT / FAILED, "Significance",
                          "InputError: neutrino list unreadable (simulated failure)")
    return {"current": event, "replay": replay / EVENT}
