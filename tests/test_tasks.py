"""The Luigi tasks end to end on real alerts, real sky maps and real IceCube tracks.

Neutrinos: the IceCube IC40 season (public 10-year point-source release) holds no tracks at the
MS181101ab time (2018), so a stretch of real IC40 tracks is shifted in time to it: their times
are scrambled, everything else is as released (SIMULATED timing, real events).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import listen_helpers
import luigi
import numpy as np
import pytest
from conftest import REPO, shared_path
from listen_helpers import IC40_T0
from luigi.execution_summary import LuigiStatusCode

import llama.io.neutrinos as nu
from llama.cli import skymap_info
from llama.config import PACKAGED_LUIGI_CFG, Settings, settings
from llama.errors import ConfigurationError, InputError
from llama.event import Event
from llama.io.storage import sha256_file
from llama.significance import parse_event_time
from llama.tasks import (
    Distances,
    GwSkymap,
    NeutrinoList,
    ReviewPipeline,
    Significance,
    SignificanceOPA,
    SkymapInfo,
)
from llama.tasks.pipelines import DEFAULT, PIPELINES, SUBTHRESHOLD

EVENT = "MS181101ab"
EVENT_GPS = 1225146184.654437  # from its notices
BIN = Path(sys.executable).parent
PRODUCTS = [Distances.filename, NeutrinoList.filename, Significance.filename]


def voevent(step: str) -> str:
    return str(shared_path("gw_alerts", "voevent", f"MS181101ab-{step}.xml"))


def skymap(name: str) -> Path:
    return shared_path("gw_skymaps", f"MS181101ab_userguide_{name}.multiorder.fits")


def ic40_stretch(t_gw_mjd: float) -> nu.NeutrinoList:
    """The 7 IC40 tracks within +-500 s of IC40_T0 and the next one, shifted to t_gw_mjd."""
    return listen_helpers.ic40_stretch(shared_path(), t_gw_mjd)


@pytest.fixture
def out(tmp_path, monkeypatch) -> Path:
    """A fresh LLAMA_OUTPUT_DIR, default settings and no Luigi configuration of the user's."""
    monkeypatch.setenv("LLAMA_OUTPUT_DIR", str(tmp_path / "out"))
    for name in Settings.__dataclass_fields__:
        monkeypatch.delenv(f"LLAMA_{name.upper()}", raising=False)
    for name in ("LUIGI_CONFIG_PATH", "LLAMA_TEST_PAUSE_BEFORE_WRITE", "LLAMA_IMAGE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "out"


@pytest.fixture
def neutrinos(out, tmp_path, monkeypatch) -> Path:
    """A LLAMA JSON neutrino source for MS181101ab: 7 tracks in the window, 1 after it."""
    path = tmp_path / "ic40_shifted.json"
    nu.write_llama_json(ic40_stretch(parse_event_time(EVENT_GPS)), path)
    monkeypatch.setenv("LLAMA_NEUTRINO_SOURCE", str(path))
    return path


@pytest.fixture
def event_dir(out, neutrinos) -> Path:
    """MS181101ab after its Preliminary notice, with the BAYESTAR sky map."""
    ingest("2-Preliminary", skymap("bayestar"))
    return out / "current_run" / EVENT


def ingest(step: str, fits: Path | None = None) -> None:
    """`llama skymap-info --voevent <notice> [--skymap <fits>]`, in-process."""
    argv = ["--voevent", voevent(step), "--role", "test"]
    assert skymap_info.main(argv + (["--skymap", str(fits)] if fits else [])) == 0


def build(*tasks: luigi.Task, status: LuigiStatusCode = LuigiStatusCode.SUCCESS) -> None:
    """Build in-process with the local scheduler; assert Luigi's status."""
    result = luigi.build(list(tasks), local_scheduler=True, detailed_summary=True)
    assert result.status == status, result.summary_text


def luigi_command(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`luigi --module llama.tasks <args>` in a fresh interpreter, run from ``cwd``."""
    # Luigi's one-process-per-command lock is keyed by the command line: a lock directory of
    # its own keeps tests that run the same command in parallel (pytest-xdist) apart
    locks = tempfile.mkdtemp(prefix=".luigi-locks-", dir=cwd)
    return subprocess.run(
        [str(BIN / "luigi"), "--module", "llama.tasks", *args, "--lock-pid-dir", locks],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def snapshot(event_dir: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and mtime of every product and provenance record."""
    names = PRODUCTS + [SignificanceOPA.filename]
    return {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in event_dir.iterdir()
        if p.name in names or p.name.removeprefix(".").removesuffix(".meta.json") in names
    }


def meta(event_dir: Path, product: str) -> dict:
    return json.loads((event_dir / f".{product}.meta.json").read_text())


# ------------------------------------------------------------------------ the alert sequence


def test_ms181101ab_sequence_rebuilds_exactly_what_changed(event_dir, monkeypatch):
    monkeypatch.setenv("LLAMA_IMAGE", "llama:test")
    bayestar, combined = skymap("bayestar"), skymap("combined-ext")
    build(Significance(eventid=EVENT))
    first = snapshot(event_dir)
    assert sorted(first) == sorted(PRODUCTS + [f".{name}.meta.json" for name in PRODUCTS])
    record = meta(event_dir, Significance.filename)
    assert record["inputs"][bayestar.name] == {"sha256": sha256_file(bayestar)}
    assert record["sha256"] == sha256_file(event_dir / Significance.filename)
    assert record["inputs"]["skymap_info.json"]["used"]["event_time_gps"] == EVENT_GPS
    for name in (Distances.filename, NeutrinoList.filename):
        assert record["inputs"][name] == {"sha256": sha256_file(event_dir / name)}
    assert record["image"] == "llama:test" and record["wall_time_s"] > 0
    assert record["search_parameters"]["preset"] == "o3"
    output = json.loads((event_dir / Significance.filename).read_text())
    info, parameters = output["inputs"]["gw_skymap_info"], output["inputs"]["search_parameters"]
    assert (info["snr"], info["p_terrestrial"], len(output["inputs"]["neutrino_info"])) == (
        12.0,
        0.01,
        7,
    )
    assert parameters["snr_origin"].startswith("[llama] default_snr")

    ingest("3-Initial", bayestar)  # same map, same trigger: nothing to rebuild
    build(Significance(eventid=EVENT))
    assert snapshot(event_dir) == first

    ingest("4-Update", combined)  # a new sky map
    build(Significance(eventid=EVENT))
    updated = snapshot(event_dir)
    neutrino_files = [NeutrinoList.filename, f".{NeutrinoList.filename}.meta.json"]
    for name in updated:
        assert (updated[name] == first[name]) == (name in neutrino_files), name
    record = meta(event_dir, Significance.filename)
    assert record["inputs"][combined.name] == {"sha256": sha256_file(combined)}
    assert bayestar.name not in record["inputs"]
    distances = json.loads((event_dir / Distances.filename).read_text())
    assert distances["skymap_sha256"] == sha256_file(combined) and distances["distance_layers"]

    ingest("5-Retraction")
    build(Significance(eventid=EVENT))  # still computes; nothing it uses changed
    assert snapshot(event_dir) == updated
    flags = Event(EVENT, event_dir.parent).flags
    assert flags["retracted"] and flags["vetoed"] and not flags["upload"]
    assert [p.name for p in event_dir.parent.iterdir()] == [EVENT]


def test_rebuild_is_byte_identical_and_pipelines_build_both_searches(event_dir):
    build(ReviewPipeline(eventid=EVENT))
    first = {name: data for name, (data, _) in snapshot(event_dir).items() if name[0] != "."}
    assert sorted(first) == sorted(PRODUCTS + [SignificanceOPA.filename])
    for name in first:
        (event_dir / name).unlink()
        (event_dir / f".{name}.meta.json").unlink()
    build(ReviewPipeline(eventid=EVENT))
    assert {name: (event_dir / name).read_bytes() for name in first} == first
    assert PIPELINES["REVIEW"] == DEFAULT | SUBTHRESHOLD
    assert Significance in SUBTHRESHOLD - DEFAULT and SignificanceOPA in DEFAULT - SUBTHRESHOLD


def test_product_up_to_date_itself_is_kept_when_a_requirement_comes_out_unchanged(event_dir):
    build(Significance(eventid=EVENT))
    before = snapshot(event_dir)
    NeutrinoList(eventid=EVENT).meta_path.unlink()  # the list is rebuilt, to the same bytes
    assert not Significance(eventid=EVENT).complete()
    build(Significance(eventid=EVENT))
    after = snapshot(event_dir)
    significance = [Significance.filename, f".{Significance.filename}.meta.json"]
    assert {name: after[name] for name in significance} == {
        name: before[name] for name in significance}  # not rebuilt: file and record kept
    assert Significance(eventid=EVENT).complete()


def test_changed_setting_obsoletes_only_the_significance(event_dir, monkeypatch):
    build(Significance(eventid=EVENT))
    monkeypatch.setenv("LLAMA_DEFAULT_SNR", "15")
    assert not Significance(eventid=EVENT).complete()
    assert Distances(eventid=EVENT).complete() and NeutrinoList(eventid=EVENT).complete()
    build(Significance(eventid=EVENT))
    output = json.loads((event_dir / Significance.filename).read_text())
    assert output["inputs"]["gw_skymap_info"]["snr"] == 15.0


def test_corrupt_product_or_record_is_rebuilt(event_dir):
    build(Distances(eventid=EVENT))
    product = event_dir / Distances.filename
    good = product.read_bytes()
    product.write_bytes(good[:-5])
    assert not Distances(eventid=EVENT).complete()
    build(Distances(eventid=EVENT))
    assert product.read_bytes() == good
    (event_dir / f".{Distances.filename}.meta.json").write_text("{not json")
    assert not Distances(eventid=EVENT).complete()


# -------------------------------------------------------------- neutrino-list completeness


def sim_event(out: Path, eventid: str, gps: float) -> Event:
    """An event at GPS time ``gps`` with the real MS181101ab BAYESTAR sky map."""
    from astropy.time import Time

    event = Event(eventid, out / "current_run").create()
    fits = skymap("bayestar")
    info = {
        "graceid": eventid,
        "event_time_gps": gps,
        "instruments": ["H1", "L1", "V1"],
        "event_time_iso": Time(gps, format="gps").utc.isot,
        "group": "CBC",
    }
    event.record_alert(info, fits.read_bytes(), fits.name)
    return event


def test_incomplete_neutrino_list_is_a_partial_result_refetched_until_complete(
    event_dir, neutrinos, tmp_path, monkeypatch
):
    """During its hold an incomplete list counts as done and the significance is built from
    it, marked partial; after the hold it is fetched again (a failed fetch loses nothing),
    until complete."""
    full = nu.read_llama_json(neutrinos)
    nu.write_llama_json(full.select(slice(0, 6)), neutrinos)  # the 7th and the later one not yet in
    task = NeutrinoList(eventid=EVENT)
    build(Significance(eventid=EVENT))
    record = meta(event_dir, task.filename)
    assert (record["complete"], record["later_neutrino_seen"], record["n_neutrinos"]) == (
        False,
        False,
        6,
    )
    assert task.complete() and task.up_to_date()[1].startswith("partial result")  # held
    output = json.loads((event_dir / Significance.filename).read_text())
    assert output["neutrino_list_complete"] is False and len(output["inputs"]["neutrino_info"]) == 6
    assert meta(event_dir, Significance.filename)["neutrino_list_complete"] is False

    nu.write_llama_json(full, neutrinos)  # the source caught up, within the hold
    assert Significance(eventid=EVENT).complete()
    monkeypatch.setenv("LLAMA_PARTIAL_HOLD_S", "0")  # the hold is over: the list is stale
    assert not task.complete() and not Significance(eventid=EVENT).complete()
    assert task.up_to_date()[1].startswith("stale partial result")
    before = snapshot(event_dir)
    neutrinos.rename(tmp_path / "away.json")  # the source is unreachable: nothing is lost
    build(Significance(eventid=EVENT), status=LuigiStatusCode.FAILED)
    assert snapshot(event_dir) == before
    nu.write_llama_json(full.select(slice(0, 7)), tmp_path / "away.json")  # 7th in, no later
    (tmp_path / "away.json").rename(neutrinos)
    build(task)  # fetched again: still incomplete, another list
    monkeypatch.delenv("LLAMA_PARTIAL_HOLD_S")  # and held, as a fresh fetch is
    assert task.complete() and not Significance(eventid=EVENT).complete()  # its input changed
    build(Significance(eventid=EVENT))
    output = json.loads((event_dir / Significance.filename).read_text())
    assert output["neutrino_list_complete"] is False and len(output["inputs"]["neutrino_info"]) == 7

    nu.write_llama_json(full, neutrinos)  # the later track arrived: complete after the hold
    monkeypatch.setenv("LLAMA_PARTIAL_HOLD_S", "0")
    build(Significance(eventid=EVENT))
    record = meta(event_dir, task.filename)
    assert (record["complete"], record["n_neutrinos"]) == (True, 7) and task.complete()
    assert len(nu.read_llama_json(event_dir / task.filename)) == 7
    assert record["neutrino_source"]["files"] == {str(neutrinos): sha256_file(neutrinos)}
    output = json.loads((event_dir / Significance.filename).read_text())
    assert output["neutrino_list_complete"] is True and len(output["inputs"]["neutrino_info"]) == 7


def test_list_fetched_too_early_is_incomplete(out, tmp_path, monkeypatch):
    from astropy.time import Time

    now = Time.now()
    source = tmp_path / "recent.json"
    nu.write_llama_json(ic40_stretch(float(now.utc.mjd) - 60 / 86400), source)
    monkeypatch.setenv("LLAMA_NEUTRINO_SOURCE", str(source))
    event = sim_event(out, "SIM-recent", float(now.gps) - 60)
    build(NeutrinoList(eventid=event.eventid))
    record = meta(event.directory, NeutrinoList.filename)
    assert record["later_neutrino_seen"] and not record["complete"]


def test_archival_release_list_is_complete(out, monkeypatch):
    from astropy.time import Time

    monkeypatch.setenv("LLAMA_NEUTRINO_SOURCE", str(shared_path("icecube", "icecube_10year_ps")))
    event = sim_event(out, "SIM-ic40", float(Time(IC40_T0, format="mjd", scale="utc").gps))
    build(Significance(eventid=event.eventid))
    record = meta(event.directory, NeutrinoList.filename)
    assert (record["complete"], record["n_neutrinos"]) == (True, 7)
    assert record["neutrino_source"]["format"] == "release"
    listed = nu.read_llama_json(event.directory / NeutrinoList.filename)
    assert set(listed.type) == {"archival"}


# ------------------------------------------------------------------- the `luigi` command


def test_luigi_command_from_any_directory(event_dir, tmp_path):
    done = luigi_command(tmp_path, "Significance", "--eventid", EVENT)
    assert done.returncode == 0, done.stderr
    assert f"llama: wrote {event_dir / Significance.filename}" in done.stderr
    # and the same short summary as `llama significance`
    assert "llama: neutrinos within +-500 s: 7   odds ratio:" in done.stderr
    assert "llama: strongest neutrino unknown-run_" in done.stderr
    assert Significance(eventid=EVENT).complete()
    cli_bytes = (event_dir / Significance.filename).read_bytes()
    (event_dir / Significance.filename).unlink()
    build(Significance(eventid=EVENT))  # in-process, same bytes
    assert (event_dir / Significance.filename).read_bytes() == cli_bytes


def test_missing_input_exits_non_zero(out, neutrinos, tmp_path):
    done = luigi_command(tmp_path, "Significance", "--eventid", EVENT)  # no such event
    assert done.returncode == 20, done.stderr  # [retcode] missing_data
    assert "missing external dependencies" in done.stderr
    ingest("2-Preliminary")  # the VOEvent only gives the sky map's URL
    assert not GwSkymap(eventid=EVENT).complete() and SkymapInfo(eventid=EVENT).complete()
    # GwSkymap now fetches the URL (online-operation change): without network it fails
    build(Significance(eventid=EVENT, allow_retracted=False), status=LuigiStatusCode.FAILED)


def test_failing_task_exits_non_zero_with_one_line(event_dir, tmp_path):
    fits = event_dir / skymap("bayestar").name
    fits.write_bytes(fits.read_bytes()[:20000])  # truncated on disk
    done = luigi_command(tmp_path, "Distances", "--eventid", EVENT)
    assert done.returncode == 30, done.stderr  # [retcode] task_failed
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and str(fits) in errors[0] and "Traceback" not in done.stderr
    assert not (event_dir / Distances.filename).exists()


def test_sigkill_mid_write_leaves_no_partial_product(event_dir, tmp_path):
    build(Distances(eventid=EVENT), NeutrinoList(eventid=EVENT))
    before = snapshot(event_dir)
    worker = subprocess.Popen(
        [str(BIN / "luigi"), "--module", "llama.tasks", "Significance", "--eventid", EVENT,
         "--lock-pid-dir", str(tmp_path / ".luigi-locks")],
        cwd=tmp_path,
        env={**os.environ, "LLAMA_TEST_PAUSE_BEFORE_WRITE": "60"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in worker.stderr:
            if line.startswith("llama test hook: pausing"):
                break
        assert line.rstrip().endswith(str(event_dir / Significance.filename))
    finally:
        worker.kill()  # SIGKILL
        worker.wait(timeout=30)
        worker.stderr.close()
    assert worker.returncode == -signal.SIGKILL
    assert snapshot(event_dir) == before  # nothing written, nothing partial
    assert not [p for p in event_dir.iterdir() if p.name.endswith(".tmp")]
    # a kill inside the atomic write itself leaves its temporary file: the rerun removes it
    stale = event_dir / f".{Significance.filename}.k1ll3d.tmp"
    stale.write_bytes(b'{"p_value": ')
    an_hour_ago = time.time() - 3600  # only temporaries older than the age limit are stale
    os.utime(stale, (an_hour_ago, an_hour_ago))

    done = luigi_command(tmp_path, "Significance", "--eventid", EVENT)
    assert done.returncode == 0, done.stderr
    assert not stale.exists()
    assert Significance(eventid=EVENT).complete()
    assert {k: v for k, v in snapshot(event_dir).items() if k in before} == before


HOSTILE_IDS = ["../x", "S1/../../etc", "", "S" * 500]


def test_hostile_event_ids_are_refused_with_one_line(out, tmp_path):
    commands = [
        subprocess.Popen(
            [str(BIN / "luigi"), "--module", "llama.tasks", "Significance", "--eventid", eid],
            cwd=tmp_path,
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for eid in HOSTILE_IDS
    ]
    for command in commands:
        stdout, stderr = command.communicate(timeout=120)
        assert command.returncode == 2, stderr
        assert stdout == "" and len(stderr.splitlines()) == 1, stderr
        assert stderr.startswith("llama.tasks: error: --eventid: invalid event id"), stderr
    for eid in [*HOSTILE_IDS, "S190425z\0", "S190425z/"]:
        with pytest.raises(InputError) as caught:
            Significance(eventid=eid)
        assert "\n" not in str(caught.value)
    assert not out.exists()


def test_luigid_is_used_when_configured(event_dir, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [
            str(BIN / "luigid"),
            "--port",
            str(port),
            "--address",
            "127.0.0.1",
            "--state-path",
            str(tmp_path / "luigid.pickle"),
            "--logdir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        api = f"http://127.0.0.1:{port}/api/task_list?data=" + '{"status":"DONE"}'
        for _ in range(200):
            try:
                urllib.request.urlopen(api, timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        config = tmp_path / "client.cfg"
        config.write_text(
            f"[core]\nlocal_scheduler = false\ndefault_scheduler_host = 127.0.0.1\n"
            f"default_scheduler_port = {port}\n"
        )
        done = luigi_command(
            tmp_path, "NeutrinoList", "--eventid", EVENT, LUIGI_CONFIG_PATH=str(config)
        )
        assert done.returncode == 0, done.stderr
        with urllib.request.urlopen(api, timeout=10) as answer:
            known = json.loads(answer.read())["response"]
        assert sorted(task["name"] for task in known.values()) == [
            "NeutrinoList", "NotRetracted", "SkymapInfo"]
    finally:
        server.terminate()
        server.wait(timeout=30)


# ------------------------------------------------------------------------ configuration


def test_shipped_config_and_its_priority(tmp_path):
    assert (REPO / "luigi.cfg").read_bytes() == PACKAGED_LUIGI_CFG.read_bytes()
    (tmp_path / "luigi.cfg").write_text("[llama]\ndefault_snr = 9.5\n")
    probe = (
        "import llama.tasks, luigi.configuration as c; from llama.config import settings; "
        "print(settings().default_snr, c.get_config().getint('retcode', 'task_failed'), "
        "c.get_config().getboolean('core', 'local_scheduler'))"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("LLAMA_DEFAULT_SNR", "LUIGI_CONFIG_PATH")
    }
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.split() == ["9.5", "30", "True"], done.stderr


def test_settings_environment_wins_and_bad_values_name_their_origin(out, monkeypatch):
    assert settings() == Settings()
    monkeypatch.setenv("LLAMA_DEFAULT_SNR", "8")
    monkeypatch.setenv("LLAMA_POPULATIONS", "pops.h5")
    current = settings()
    assert current.default_snr == 8.0 and current.populations == str(Path("pops.h5").absolute())
    monkeypatch.setenv("LLAMA_P_TERRESTRIAL", "nan")
    with pytest.raises(ConfigurationError, match=r"\$LLAMA_P_TERRESTRIAL: 'nan'"):
        settings()
    monkeypatch.delenv("LLAMA_P_TERRESTRIAL")
    monkeypatch.setenv("LLAMA_PARTIAL_HOLD_S", "-1")
    with pytest.raises(ConfigurationError, match=r"\$LLAMA_PARTIAL_HOLD_S: '-1' is negative"):
        settings()


def test_notice_source_is_complete_and_needs_an_assumed_energy(event_dir, tmp_path, monkeypatch):
    """A real LVK Nu Track Search notice (S230914ak), re-timed to MS181101ab: IceCube's own
    result for the closed window, so the list is complete; it has no energies, so the
    significance needs [llama] assumed_energy."""
    notice = json.loads(shared_path("icecube", "alerts_json",
                                    "S230914ak_icecube_lvk_nu_track_search.json").read_text())
    notice["trigger_time"] = json.loads((event_dir / "skymap_info.json").read_text())["event_time_iso"]
    source = tmp_path / "notice.json"
    source.write_text(json.dumps(notice))
    monkeypatch.setenv("LLAMA_NEUTRINO_SOURCE", str(source))
    build(NeutrinoList(eventid=EVENT))
    assert NeutrinoList(eventid=EVENT).complete()
    assert len(json.loads((event_dir / NeutrinoList.filename).read_text())["triggers"]) == 2
    build(Significance(eventid=EVENT), status=LuigiStatusCode.FAILED)
    monkeypatch.setenv("LLAMA_ASSUMED_ENERGY", "1e4")
    build(Significance(eventid=EVENT))
    output = json.loads((event_dir / Significance.filename).read_text())
    assert [n["energy"] for n in output["inputs"]["neutrino_info"]] == [1e4, 1e4]


# ------------------------------------------------------------- one science, two front doors


def test_cli_and_luigi_task_give_the_same_science(event_dir, tmp_path, monkeypatch):
    """`llama significance` and `luigi ... Significance` on the same inputs, with a non-default
    neutrino background sample and GW SNR background set once as [llama] settings."""
    from llama.cli.significance import main as significance_main
    from llama.io.background_sample import BackgroundSample, default_background_sample

    packaged = default_background_sample()
    sample_path = tmp_path / "every_other_ic40_event.h5"
    BackgroundSample(
        packaged.zenith[::2], packaged.energy[::2], packaged.sigma[::2], {"description": "half"}
    ).write(sample_path)
    snr_path = tmp_path / "background_snrs.txt"
    snrs = np.random.default_rng(3).uniform(5.0, 9.0, 500)
    snr_path.write_text("".join(f"{x:.6f}\n" for x in snrs))
    build(SignificanceOPA(eventid=EVENT), Significance(eventid=EVENT))
    default_outputs = {
        name: json.loads((event_dir / name).read_text())
        for name in (Significance.filename, SignificanceOPA.filename)
    }

    monkeypatch.setenv("LLAMA_NEUTRINO_BACKGROUND", str(sample_path))
    monkeypatch.setenv("LLAMA_GW_BACKGROUND_SNR", str(snr_path))
    build(SignificanceOPA(eventid=EVENT), Significance(eventid=EVENT))
    info = json.loads((event_dir / "skymap_info.json").read_text())
    for task, search in ((Significance, "subthreshold"), (SignificanceOPA, "opa")):
        from_task = json.loads((event_dir / task.filename).read_text())
        cli_path = tmp_path / f"cli_{search}.json"
        argv = [
            "--skymap", str(event_dir / info["skymap_filename"]),
            "--neutrinos", str(event_dir / NeutrinoList.filename),
            "--event-time", str(info["event_time_gps"]),
            "--instruments", ",".join(info["instruments"]),
            "--p-terrestrial", str(info["classification"]["Terrestrial"]),
            "--far", str(info["far"]),
            "--graceid", EVENT,
            "--search", search,
            "-o", str(cli_path),
        ]  # fmt: skip
        assert significance_main(argv) == 0
        from_cli = json.loads(cli_path.read_text())
        keys = ("odds_ratio", "p_value", "n_background", "p_h_s1", "p_h_s2", "p_h_0", "p_h_c")
        assert {k: from_cli.get(k) for k in keys} == {k: from_task.get(k) for k in keys}
        assert from_cli["single_neutrino"] == from_task["single_neutrino"]
        assert from_cli["dump"] == from_task["dump"]
        cli_params = from_cli["inputs"]["search_parameters"]
        task_params = from_task["inputs"]["search_parameters"]
        # the origin of p_terrestrial names each front door; everything else is identical
        assert cli_params.pop("p_terrestrial_origin") == "command line p_terrestrial"
        assert task_params.pop("p_terrestrial_origin") == "skymap_info p_terrestrial"
        assert cli_params == task_params
        assert str(snr_path) in task_params["gw_background"]
        assert task_params["neutrino_background"] == "half"
        # and the settings mattered: the default models give other odds
        assert from_task["odds_ratio"] != default_outputs[task.filename]["odds_ratio"]


# ------------------------------------------------------------------------------ issue 7


def test_readme_luigi_example_runs_as_written(out, tmp_path):
    """The README's `One event end to end (Luigi)` commands, verbatim, in a checkout directory
    beside ../shared/data, to exit 0 (as from a fresh clone in CI)."""
    from conftest import SHARED_DATA

    shared_path("gw_alerts", "gcn_kafka_json", "MS181101ab-preliminary.json")
    text = (REPO / "README.md").read_text()
    block = text[text.index("### One event end to end (Luigi)"):].split("```bash\n", 1)[1]
    block = block.split("```", 1)[0]
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(SHARED_DATA)
    (tmp_path / "checkout").mkdir()
    done = subprocess.run(["bash", "-e", "-c", block], cwd=tmp_path / "checkout",
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr
    event_dir = out / "current_run" / EVENT
    output = json.loads((event_dir / Significance.filename).read_text())
    assert len(output["inputs"]["neutrino_info"]) == 7
    assert "llama: neutrinos within +-500 s: 7" in done.stderr
    assert meta(event_dir, NeutrinoList.filename)["complete"] is True


def test_source_that_does_not_cover_the_event_fails_in_one_line(event_dir, tmp_path, monkeypatch):
    """The IC40 release (2008-2009) for an event of 2018: one line naming the span, exit 30,
    never an endless incomplete list or a silent '0 neutrinos'."""
    release = shared_path("icecube", "icecube_10year_ps")
    done = luigi_command(tmp_path, "Significance", "--eventid", EVENT,
                         LLAMA_NEUTRINO_SOURCE=str(release))
    assert done.returncode == 30, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "2008-04-06T09:05:55" in errors[0] and "does not cover the event time" in errors[0]
    assert not (event_dir / NeutrinoList.filename).exists()
    assert not (event_dir / Significance.filename).exists()


def test_retracted_event_builds_nothing_unless_asked(out, neutrinos, tmp_path):
    ingest("2-Preliminary", skymap("bayestar"))
    ingest("5-Retraction")
    event_dir = out / "current_run" / EVENT
    done = luigi_command(tmp_path, "Significance", "--eventid", EVENT)
    assert done.returncode == 30, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and f"{EVENT} is retracted" in errors[0], done.stderr
    products = [Distances.filename, NeutrinoList.filename, Significance.filename]
    assert not [name for name in products if (event_dir / name).exists()]
    done = luigi_command(tmp_path, "Significance", "--eventid", EVENT, "--allow-retracted")
    assert done.returncode == 0, done.stderr
    output = json.loads((event_dir / Significance.filename).read_text())
    assert output["retracted"] is True
    assert meta(event_dir, Significance.filename)["retracted"] is True


def test_o4_shaped_neutrino_list_through_the_tasks(event_dir, tmp_path, monkeypatch):
    """A source in the exact shape of a real LLAMA O4 file (string run ids, subevent/file null,
    blinded, complete): read, used, and written back in that format."""
    stretch = ic40_stretch(parse_event_time(EVENT_GPS)).select(slice(0, 7))  # nothing later
    records = [{**record, "run": str(137000 + k), "type": "blinded"}
               for k, record in enumerate(stretch.to_records())]
    source = tmp_path / "o4.json"
    source.write_text(json.dumps({"triggers": records, "complete": True}))
    monkeypatch.setenv("LLAMA_NEUTRINO_SOURCE", str(source))
    build(Significance(eventid=EVENT))
    written = json.loads((event_dir / NeutrinoList.filename).read_text())
    assert set(written) == {"triggers", "complete"} and written["complete"] is True
    assert [str(r["run"]) for r in written["triggers"]] == [r["run"] for r in records]
    assert all(r["subevent"] is None and r["file"] is None for r in written["triggers"])
    assert NeutrinoList(eventid=EVENT).complete()  # the source says it is complete
    output = json.loads((event_dir / Significance.filename).read_text())
    assert {r["type"] for r in output["inputs"]["neutrino_info"]} == {"blinded"}
    info = output["inputs"]["gw_skymap_info"]
    assert (info["graceid"], info["pipeline"], info["skymap_filename"]) == (
        EVENT, "gstlal", skymap("bayestar").name)
    assert {r["i3event"] for r in output["single_neutrino"]} == {
        f"{137000 + k}_{r['event']}" for k, r in enumerate(records)}
    spans = meta(event_dir, NeutrinoList.filename)["neutrino_source"]["time_span_utc"]
    assert spans[0].startswith("2018-11-01T22:1")


def test_every_output_file_has_the_same_permissions(event_dir):
    build(ReviewPipeline(eventid=EVENT))
    modes = {p.name: p.stat().st_mode & 0o777 for p in event_dir.iterdir() if p.is_file()}
    assert len(set(modes.values())) == 1, modes
