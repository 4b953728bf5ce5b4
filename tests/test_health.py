"""llama.health and `llama status`: heartbeats, failure records, product states, Nagios checks.

Product states are read from events built by the real code (serve_fixtures: real notices, real
sky maps, Luigi tasks); heartbeats are written by real processes through the writer helpers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import luigi
import pytest
from luigi.execution_summary import LuigiStatusCode
from serve_fixtures import FAILED, build_output_dir
from test_tasks import EVENT, EVENT_GPS, ic40_stretch

import llama.io.neutrinos as nu
from llama import health
from llama.io.storage import atomic_write_json
from llama.significance import parse_event_time
from llama.tasks import NeutrinoList, SignificanceOPA

DISTANCES = "lvc_skymap_distances.json"
NEUTRINOS = "icecube_neutrino_list.json"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """The output directory of serve_fixtures, built once for this module."""
    return build_output_dir(tmp_path_factory.mktemp("health") / "out")


def states(event_dir: Path) -> dict[str, tuple[str, str]]:
    return {s.name: (s.state, s.reason) for s in health.product_states(event_dir)}


def status(out: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m llama.cli.status ARGS` with LLAMA_OUTPUT_DIR=out."""
    env = {**os.environ, "LLAMA_OUTPUT_DIR": str(out), "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "llama.cli.status", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def heartbeat_in_subprocess(path: Path, **fields) -> None:
    """write_heartbeat called by a process that then exits (its pid is gone afterwards)."""
    code = ("import sys, json; from pathlib import Path; from llama import health; "
            "health.write_heartbeat(Path(sys.argv[1]), started_utc=health.now_utc(), "
            "**json.loads(sys.argv[2]))")
    subprocess.run([sys.executable, "-c", code, str(path), json.dumps(fields)], check=True,
                   timeout=60)


# ------------------------------------------------------------------------------ products


def test_states_of_real_products(built):
    current = states(built["current"])
    skymap_name = json.loads((built["current"] / "skymap_info.json").read_text())["skymap_filename"]
    significance = {"significance_lvc-i3.json", FAILED}
    assert {DISTANCES, NEUTRINOS} | significance <= set(current)
    assert all(state == "complete" for state, _ in current.values()), current
    assert skymap_name == "MS181101ab_userguide_bayestar.multiorder.fits"

    replay = states(built["replay"])  # the Update brought the combined map
    assert replay[DISTANCES][0] == "obsolete"
    assert "bayestar" in replay[DISTANCES][1], replay[DISTANCES]
    assert replay[NEUTRINOS] == ("complete", "up to date")  # the event time is unchanged
    assert replay["significance_lvc-i3.json"][0] == "obsolete"
    assert replay[FAILED][0] == "failed" and "simulated failure" in replay[FAILED][1]


def test_building_missing_and_recovery(built, tmp_path):
    event = tmp_path / EVENT
    shutil.copytree(built["current"], event)
    temporary = event / f".{DISTANCES}.0123456789ab.tmp"  # a writer committing it now
    temporary.write_bytes(b"{")
    assert states(event)[DISTANCES][0] == "building"
    old = os.stat(temporary).st_mtime - 2 * 600
    os.utime(temporary, (old, old))  # a killed writer's leftover is not building
    assert states(event)[DISTANCES][0] == "complete"
    (event / DISTANCES).unlink()
    after = states(event)
    assert after[DISTANCES] == ("missing", "no file")
    assert after["significance_lvc-i3.json"] == ("obsolete", f"input {DISTANCES} is missing")
    (event / NEUTRINOS).write_text("[]\n")  # edited by hand
    assert states(event)[NEUTRINOS] == ("obsolete", "output changed")


def test_incomplete_neutrino_list_is_a_partial_result(built, tmp_path, monkeypatch):
    """A list fetched while no neutrino after the window has been seen is a partial result,
    and so is the significance built from it; `llama status` says the event has one."""
    run = tmp_path / "run"
    shutil.copytree(built["current"], run / EVENT)
    for name in (NEUTRINOS, f".{NEUTRINOS}.meta.json"):
        (run / EVENT / name).unlink()
    within = ic40_stretch(parse_event_time(EVENT_GPS))
    within = within.select(slice(0, len(within) - 1))  # without the track after the window
    source = tmp_path / "in_window_only.json"
    nu.write_llama_json(within, source)
    monkeypatch.setenv("LLAMA_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("LLAMA_NEUTRINO_SOURCE", str(source))
    significance = "significance_lvc-i3.json"

    def build(task: type[luigi.Task]) -> dict[str, tuple[str, str]]:
        result = luigi.build([task(eventid=EVENT, rundir=str(run))], local_scheduler=True,
                             detailed_summary=True)
        assert result.status == LuigiStatusCode.SUCCESS, result.summary_text
        return states(run / EVENT)

    after = build(NeutrinoList)
    assert after[NEUTRINOS][0] == "partial"
    assert after[NEUTRINOS][1].startswith("partial result: neutrino list incomplete")
    assert after[significance] == ("obsolete", f"input {NEUTRINOS} changed")  # 7 tracks, not 8
    after = build(SignificanceOPA)
    assert after[significance] == ("partial", "partial result: computed from an incomplete "
                                   "neutrino list")
    assert health.partial_result(health.product_states(run / EVENT))
    shown = status(tmp_path / "out", "--run", str(run))
    assert f"  {EVENT}  PARTIAL RESULT (neutrino list incomplete)\n" in shown.stdout, shown.stderr
    (event,) = json.loads(status(tmp_path / "out", "--run", str(run), "--json").stdout)["events"]
    assert event["partial_result"] is True and event["products"][NEUTRINOS][0] == "partial"


def test_failure_records(tmp_path):
    product = tmp_path / "significance_lvc-i3.json"
    first = health.record_failure(product, "SignificanceOPA", "InputError: bad\nlist",
                                  retry_after_s=60)
    second = health.record_failure(product, "SignificanceOPA", "again")
    assert health.failure_path(product) == tmp_path / ".significance_lvc-i3.json.failure.json"
    assert (first["count"], second["count"]) == (1, 2)
    assert first["error"] == "InputError: bad list"  # one line
    assert second["first_utc"] == first["first_utc"] <= second["last_utc"]
    assert health.parse_utc(second["next_try_utc"]) > health.parse_utc(second["last_utc"])
    assert states(tmp_path)[product.name][0] == "failed"
    assert health.clear_failure(product) and not health.clear_failure(product)
    assert states(tmp_path) == {}


# ---------------------------------------------------------------------------- heartbeats


def test_heartbeats_alive_dead_and_stale(tmp_path):
    out = tmp_path / "out"
    started = health.now_utc()
    daemon = health.write_heartbeat(health.daemon_heartbeat_path("current", out),
                                    started_utc=started, run_dir=str(out / "current_run"),
                                    glob="*", argv=["llama", "run"])
    assert (out / "logs" / "llamad-current.json").is_file()
    assert daemon["pid"] == os.getpid() and daemon["started_utc"] == started
    heartbeat_in_subprocess(health.listener_heartbeat_path("gcn", out), transport="gcn",
                            last_notice_utc=None)
    beats = {beat.name: beat for beat in health.heartbeats(out)}
    assert beats["current"].alive and beats["current"].kind == "daemon"
    assert not beats["gcn"].alive and "is gone" in beats["gcn"].problem
    stale = {beat.name: beat for beat in health.heartbeats(out, max_age_s=1e-9)}
    assert not stale["current"].alive and stale["current"].problem.endswith("s old (limit 0 s)")
    atomic_write_json(out / "logs" / "listen-kafka.json",
                      {"pid": 1, "host": "another-host", "heartbeat_utc": "2020-01-01T00:00:00Z"})
    kafka = next(b for b in health.heartbeats(out) if b.name == "kafka")
    assert not kafka.alive and kafka.problem.startswith("heartbeat ") and kafka.age_s > 1e7


def test_log_tails(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "llamad-current.log").write_text("".join(f"line {i}\n" for i in range(500)))
    assert health.log_tails(tmp_path, lines=3) == {"llamad-current.log": ["line 497", "line 498",
                                                                          "line 499"]}


# ------------------------------------------------------------------------ llama status


def test_status_check_is_a_nagios_plugin(built, tmp_path):
    out = built["current"].parent.parent
    empty = tmp_path / "empty"
    bad = status(empty, "--check", "--max-age", "0")
    assert bad.returncode == 1 and bad.stderr.strip() == (
        "llama status: error: heartbeat age limit must be positive, not 0.0")
    missing = status(tmp_path / "nowhere", "--check")
    assert missing.returncode == 2 and missing.stdout.startswith("CRITICAL: output directory")

    empty.mkdir()
    critical = status(empty, "--check")
    assert critical.returncode == 2
    assert critical.stdout.splitlines() == [
        f"CRITICAL: no daemon heartbeat in {empty / 'logs'}",
        f"WARNING: no listener heartbeat in {empty / 'logs'}",
    ]

    health.write_heartbeat(health.daemon_heartbeat_path("current", empty), started_utc="x")
    health.write_heartbeat(health.listener_heartbeat_path("gcn", empty), started_utc="x")
    ok = status(empty, "--check")  # this process is alive: both heartbeats are
    assert (ok.returncode, ok.stdout.strip()) == (0, f"OK: llama service healthy ({empty})")

    shutil.copytree(empty / "logs", out / "logs")  # alive heartbeats for the fixture
    warning = status(out, "--check", "--run", str(out / "past_runs" / "replay"))
    assert warning.returncode == 1, warning.stdout + warning.stderr
    assert warning.stdout.splitlines() == [
        f"WARNING: {EVENT}/{FAILED} Significance failed 1x: "
        "InputError: neutrino list unreadable (simulated failure)"
    ]
    as_json = json.loads(status(out, "--check", "--json", "--run",
                                str(out / "past_runs" / "replay")).stdout)
    assert (as_json["status"], as_json["code"], len(as_json["problems"])) == ("WARNING", 1, 1)
    shutil.rmtree(out / "logs")


def test_status_overview_lists_every_product(built):
    out = built["current"].parent.parent
    result = status(out, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "CRITICAL"  # no daemon in the fixture
    (event,) = report["events"]
    assert event["eventid"] == EVENT and event["partial_result"] is False
    assert event["products"][DISTANCES] == ["complete", "up to date"]
    text = status(out).stdout
    assert f"run {out / 'current_run'}: 1 events" in text and DISTANCES in text
