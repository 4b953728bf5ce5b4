"""`llama run`: one lock per (run dir, glob), -R/-k/-K, daemonising, failure isolation with
cooldown, downselection and task selection, and the `llama flags` / `llama event` commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import shared_path
from listen_helpers import EVENT, fresh_output, wait_for
from test_cli import llama

from llama import run
from llama.event import Event
from llama.listen import Listener
from llama.tasks import (
    PIPELINES,
    Distances,
    GwSkymap,
    NeutrinoList,
    SignificanceOPA,
    SkymapInfo,
)

OTHER = "MS181101ac"
FAILURE_KEYS = {"task", "error", "count", "first_utc", "last_utc", "next_try_utc"}
HEARTBEAT_KEYS = {"pid", "host", "run_dir", "glob", "argv", "started_utc", "heartbeat_utc"}


@pytest.fixture
def out(tmp_path, monkeypatch) -> Path:
    out = fresh_output(shared_path(), tmp_path, monkeypatch)
    (out / "current_run").mkdir(parents=True)
    return out


def alert(eventid: str = EVENT) -> bytes:
    """The real MS181101ab preliminary igwn.gwalert (embedded sky map), under ``eventid``."""
    raw = shared_path("gw_alerts", "gcn_kafka_json", "MS181101ab-preliminary.json").read_bytes()
    return raw.replace(b'"MS181101ab"', f'"{eventid}"'.encode())


def test_one_failing_event_never_stops_the_others(out):
    listener = Listener("kafka")
    for eventid in (EVENT, OTHER):
        listener.handle(alert(eventid))
    good, bad = Event(EVENT, out / "current_run"), Event(OTHER, out / "current_run")
    skymap = bad.directory / bad.skymap_info["skymap_filename"]
    skymap.write_bytes(skymap.read_bytes()[:20000])  # truncated on disk

    daemon = run.Daemon(out / "current_run", cooldown_s=30)
    assert daemon.cycle() == {EVENT: "built", OTHER: "failed"}
    assert (good.directory / SignificanceOPA.filename).exists()
    failure = json.loads((bad.directory / f".{Distances.filename}.failure.json").read_text())
    assert set(failure) == FAILURE_KEYS and failure["count"] == 1
    assert failure["task"] == "Distances" and str(skymap) in failure["error"]
    assert run.cooling_down(bad) == [Distances.filename]
    assert daemon.cycle() == {EVENT: "current", OTHER: "cooldown"}  # not retried yet

    # cooldown over: retried, fails again, waits twice as long
    path = bad.directory / f".{Distances.filename}.failure.json"
    path.write_text(json.dumps({**failure, "next_try_utc": "2000-01-01T00:00:00+00:00"}))
    assert daemon.cycle()[OTHER] == "failed"
    again = json.loads(path.read_text())
    assert again["count"] == 2 and again["first_utc"] == failure["first_utc"]
    # repaired: built, failure record gone, product latency recorded
    skymap.write_bytes(shared_path("gw_skymaps",
                                   "MS181101ab_userguide_bayestar.multiorder.fits").read_bytes())
    path.write_text(json.dumps({**again, "next_try_utc": "2000-01-01T00:00:00+00:00"}))
    assert daemon.cycle() == {EVENT: "current", OTHER: "built"}
    assert not path.exists() and run.cooling_down(bad) == []
    assert SignificanceOPA.filename in bad.latency["products"]

    shown = llama("event", OTHER, "--json")
    assert shown.returncode == 0, shown.stderr
    about = json.loads(shown.stdout)
    assert about["flags"]["online"] and about["failures"] == {}
    assert SignificanceOPA.filename in about["products"]
    assert list(about["latency"]["notices"]) == [p.split("-", 1)[1] for p in about["notices"]]


def test_selection_pipeline_and_dry_runs(out):
    listener = Listener("kafka")
    for eventid in (EVENT, OTHER):
        listener.handle(alert(eventid))
    assert llama("flags", OTHER, "role=observation", "upload=true").returncode == 0
    flags = llama("flags", OTHER)
    assert "role=observation" in flags.stdout and "upload=true" in flags.stdout

    dirs = llama("run", out / "current_run", "--dry-run-dirs", "--downselect", "observation")
    assert dirs.returncode == 0 and dirs.stdout.split()[0] == str(out / "current_run" / OTHER)
    assert len(dirs.stdout.splitlines()) == 1
    newest = llama("run", out / "current_run", "--dry-run-dirs", "-n", "1")
    assert len(newest.stdout.splitlines()) == 1
    listed = llama("run", "--print-downselections")
    assert {line.split()[0] for line in listed.stdout.splitlines()} == set(run.DOWNSELECTIONS)
    default = llama("run", "--print-default-pipeline").stdout.split()
    assert default == sorted(cls.__name__ for cls in PIPELINES["DEFAULT"])
    chosen = llama("run", out / "current_run", "--dry-run-pipeline", "-f", "Distances",
                   "+f", "NeutrinoList").stdout.split()
    assert chosen == ["Distances", "NeutrinoList"]
    bad = llama("run", out / "current_run", "--dry-run-pipeline", "-f", "NoSuchTask")
    assert bad.returncode == 1 and "NoSuchTask" in bad.stderr

    # -o with -f builds only what was asked (and what it requires)
    done = llama("run", f"{out / 'current_run'}/{EVENT}", "-o", "-f", "Distances")
    assert done.returncode == 0, done.stderr
    event = Event(EVENT, out / "current_run")
    assert Distances(eventid=EVENT).complete() and GwSkymap(eventid=EVENT).complete()
    assert SkymapInfo(eventid=EVENT).complete()
    assert not (event.directory / NeutrinoList.filename).exists()
    assert not (out / "current_run" / OTHER / Distances.filename).exists()  # glob: EVENT only


def daemon_cli(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llama.cli.run", *map(str, args)],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def heartbeats(out: Path, key: str = "*") -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "logs").glob(f"llamad-{key}.json"))]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_one_daemon_per_run_dir_list_replace_and_kill(out):
    run_dir = out / "current_run"
    started = []
    try:
        first = daemon_cli(run_dir, "--interval", "0.2")
        assert first.returncode == 0, first.stderr
        assert "daemon started" in first.stderr
        assert wait_for(lambda: heartbeats(out), 20)
        beat = heartbeats(out)[0]
        started.append(beat["pid"])
        assert set(beat) == HEARTBEAT_KEYS and beat["run_dir"] == str(run_dir)
        assert beat["glob"] == "*" and alive(beat["pid"]) and beat["pid"] != os.getpid()
        key = run.daemon_key(run_dir, "*")
        assert (out / "logs" / f"llamad-{key}.log").exists()

        second = daemon_cli(run_dir, "-F", "--interval", "0.2")
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"pid {beat['pid']}" in lines[0] and "-K" in lines[0]
        other_glob = daemon_cli(f"{run_dir}/{EVENT}", "-o")  # another glob: its own lock
        assert other_glob.returncode == 0, other_glob.stderr

        listing = daemon_cli("-R")
        assert f"pid {beat['pid']}" in listing.stdout and str(run_dir) in listing.stdout
        assert len(listing.stdout.splitlines()) == 1  # the -o run is over

        replaced = daemon_cli(run_dir, "-K", "--interval", "0.2")
        assert replaced.returncode == 0, replaced.stderr
        assert f"stopped llama run pid {beat['pid']}" in replaced.stderr
        assert wait_for(lambda: not alive(beat["pid"]), 10)
        assert wait_for(lambda: heartbeats(out, key)[0]["pid"] != beat["pid"], 20)
        new_pid = heartbeats(out, key)[0]["pid"]
        started.append(new_pid)
        assert alive(new_pid)

        killed = daemon_cli(run_dir, "-k")
        assert killed.returncode == 0 and f"stopped llama run pid {new_pid}" in killed.stderr
        assert wait_for(lambda: not alive(new_pid), 10)
        assert daemon_cli("-R").stdout == ""
    finally:
        for pid in started:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_relaunch_after_a_crash(out, tmp_path):
    """-r: a crashed daemon is started again (bounded); SIGTERM stops it for good."""
    run_dir = out / "current_run"
    marker = tmp_path / "crashes"
    code = (
        "import os, sys, llama.run as r\n"
        "from pathlib import Path\n"
        f"m = Path({str(marker)!r})\n"
        "def body():\n"
        "    m.write_text(m.read_text() + 'x' if m.exists() else 'x')\n"
        "    if len(m.read_text()) < 3: raise RuntimeError('boom')\n"
        "r.supervise(body, relaunch=True)\n"
    )
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ})
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "xxx" and time.monotonic() - start < 30
    assert done.stderr.count("daemon crashed: RuntimeError: boom") == 2
    assert run_dir.is_dir()


def test_readme_online_example_runs_as_written(out, tmp_path):
    """The first code block of README's "Online operation", run by bash as written, from a
    directory whose ../shared/data is the real data."""
    from conftest import REPO

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Online operation"):]
    block = section[section.index("```bash\n") + 8:section.index("```\n", 8)]
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "shared").symlink_to(shared_path().parent)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-e", "-c", block], cwd=work, capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert "online=true" in done.stdout and "role=test" in done.stdout
    event = Event(EVENT, out / "current_run")
    assert (event.directory / Distances.filename).exists()
    assert not (event.directory / SignificanceOPA.filename).exists()  # -f Distances only
    (products,) = [line for line in done.stdout.splitlines() if line.startswith("products:")]
    assert Distances.filename in products and SignificanceOPA.filename not in products


def test_incomplete_neutrino_list_gives_a_partial_result_until_complete(out, tmp_path, monkeypatch):
    import llama.io.neutrinos as nu

    full = nu.read_llama_json(os.environ["LLAMA_NEUTRINO_SOURCE"])
    partial = tmp_path / "partial.json"
    nu.write_llama_json(full.select(slice(0, len(full.mjd) - 1)), partial)  # no later track
    monkeypatch.setenv("LLAMA_NEUTRINO_SOURCE", str(partial))
    Listener("kafka").handle(alert())
    event = Event(EVENT, out / "current_run")
    significance = event.directory / SignificanceOPA.filename
    daemon = run.Daemon(out / "current_run")
    assert daemon.cycle() == {EVENT: "partial"}  # built at once from the incomplete list
    fetched = NeutrinoList(eventid=EVENT).provenance()
    assert fetched["complete"] is False
    assert json.loads(significance.read_text())["neutrino_list_complete"] is False
    assert run.cooling_down(event) == []  # a partial result is no failure
    assert daemon.cycle() == {EVENT: "partial"}  # held: not fetched again, never settled
    assert NeutrinoList(eventid=EVENT).provenance() == fetched
    monkeypatch.setenv("LLAMA_PARTIAL_HOLD_S", "0")  # hold over; 0: nothing built from it
    assert daemon.cycle() == {EVENT: "waiting"}  # fetched again, still incomplete
    assert NeutrinoList(eventid=EVENT).provenance()["fetched_utc"] != fetched["fetched_utc"]
    assert run.cooling_down(event) == []  # waiting is no failure either
    nu.write_llama_json(full, partial)  # the later track has arrived
    assert daemon.cycle() == {EVENT: "built"}
    assert NeutrinoList(eventid=EVENT).provenance()["complete"] is True
    assert json.loads(significance.read_text())["neutrino_list_complete"] is True
    assert daemon.cycle() == {EVENT: "current"}
