"""``llama skymap-info`` end to end on the real MS181101ab alert sequences."""

from __future__ import annotations

import json
import os
import pty
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, shared_path

from llama.cli import skymap_info
from llama.io.storage import sha256_file

MS_VOEVENTS = ["2-Preliminary", "3-Initial", "4-Update", "5-Retraction"]
MS_GWALERTS = ["preliminary", "initial", "update", "retraction"]


def voevent(name: str) -> str:
    return str(shared_path("gw_alerts", "voevent", name))


def ms_voevent(step: str) -> str:
    return voevent(f"MS181101ab-{step}.xml")


def gwalert(name: str) -> str:
    return str(shared_path("gw_alerts", "gcn_kafka_json", name))


def tree(root: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every file and directory under ``root`` with its bytes and mtime."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def output(tmp_path, monkeypatch) -> Path:
    """A fresh LLAMA_OUTPUT_DIR (nothing is written to the real home)."""
    out = tmp_path / "llama-output"
    monkeypatch.setenv("LLAMA_OUTPUT_DIR", str(out))
    monkeypatch.delenv("LLAMA_GRACEDB_URL", raising=False)
    return out


@pytest.fixture
def cli(output, capsys):
    """Run ``llama skymap-info`` in-process; returns (exit code, stdout, stderr)."""

    def run(*argv: str) -> tuple[int, str, str]:
        code = skymap_info.main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def run_subprocess(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """``python -m llama.cli.main skymap-info ...`` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "llama.cli.main", "skymap-info", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def assert_one_line_failure(code: int, err: str, *words: str) -> None:
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("llama skymap-info: error: ")
    for word in words:
        assert word in lines[0]


def test_voevent_sequence_makes_one_retracted_event(cli, output):
    event_dir = output / "current_run" / "MS181101ab"
    for step in MS_VOEVENTS[:3]:
        code, out, err = cli("--voevent", ms_voevent(step), "--role", "test")
        assert (code, out, err) == (0, f"{event_dir}\n", "")
    info = json.loads((event_dir / "skymap_info.json").read_text())
    assert info["alert_type"] == "Update" and info["retracted"] is False
    assert info["notice_filename"] == "notices/0003-MS181101ab-4-Update.xml"
    assert info["skymap_filename"] is None and info["skymap_url"].endswith(",0")

    run_dir = str(output / "current_run")
    done = run_subprocess(["--voevent", ms_voevent("5-Retraction"), "--run", run_dir])
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{event_dir}\n", "")

    assert [p.name for p in (output / "current_run").iterdir()] == ["MS181101ab"]
    notices = sorted(p.name for p in (event_dir / "notices").iterdir())
    assert notices == [f"000{i}-MS181101ab-{step}.xml" for i, step in enumerate(MS_VOEVENTS, 1)]
    for i, step in enumerate(MS_VOEVENTS, 1):
        archived = event_dir / "notices" / f"000{i}-MS181101ab-{step}.xml"
        assert archived.read_bytes() == Path(ms_voevent(step)).read_bytes()
    flags = json.loads((event_dir / "flags.json").read_text())
    assert flags == {"role": "test", "online": False, "vetoed": True, "retracted": True,
                     "upload": False, "manual": True}
    info = json.loads((event_dir / "skymap_info.json").read_text())
    assert info["retracted"] is True and info["alert_type"] == "Update"
    retraction = info["retraction_notice"]
    assert retraction["notice_filename"] == "notices/0004-MS181101ab-5-Retraction.xml"


def test_gwalert_sequence_writes_embedded_map_once(cli, output):
    event_dir = output / "current_run" / "MS181101ab"
    skymap = event_dir / "MS181101ab.multiorder.fits"
    code, out, _ = cli("--gwalert", gwalert("MS181101ab-preliminary.json"), "--role", "test")
    assert (code, out) == (0, f"{event_dir}\n")
    assert skymap.stat().st_size == 777600 and skymap.read_bytes().startswith(b"SIMPLE")
    info = json.loads((event_dir / "skymap_info.json").read_text())
    assert info["skymap_filename"] == skymap.name and info["skymap_source"] == "embedded"
    assert info["skymap_sha256"] == sha256_file(skymap)
    os.utime(skymap, ns=(10**9, 10**9))  # any rewrite would show in the mtime

    for step in MS_GWALERTS[1:]:
        assert cli("--gwalert", gwalert(f"MS181101ab-{step}.json"))[0] == 0  # role already set
    assert skymap.stat().st_mtime_ns == 10**9
    assert len(list((event_dir / "notices").iterdir())) == 4
    flags = json.loads((event_dir / "flags.json").read_text())
    assert flags["retracted"] and flags["vetoed"] and not flags["upload"]
    info = json.loads((event_dir / "skymap_info.json").read_text())
    assert info["retracted"] is True and info["skymap_sha256"] == sha256_file(skymap)
    assert sorted(p.name for p in event_dir.iterdir()) == [
        "MS181101ab.multiorder.fits", "flags.json", "notices", "skymap_info.json"]


def test_user_skymap_is_copied_in(cli, output):
    fits = shared_path("gw_skymaps", "MS181101ab_userguide_bayestar.multiorder.fits")
    code, out, _ = cli("--voevent", ms_voevent("2-Preliminary"), "--skymap", str(fits),
                       "--role", "test")
    assert code == 0
    event_dir = Path(out.strip())
    info = json.loads((event_dir / "skymap_info.json").read_text())
    assert info["skymap_filename"] == fits.name and info["skymap_source"] == "file"
    assert sha256_file(event_dir / fits.name) == sha256_file(fits) == info["skymap_sha256"]


@pytest.mark.parametrize(
    "args",
    [
        ["--voevent", "MS181101ab-5-Retraction.xml"],
        ["--gwalert", "MS260605l-retraction_skyportal.json"],
    ],
)
def test_retraction_of_unknown_event_creates_nothing(cli, output, args):
    option, name = args
    path = ms_voevent("5-Retraction") if option == "--voevent" else gwalert(name)
    code, out, err = cli(option, path, "--role", "test")
    assert_one_line_failure(code, err, "nothing to retract")
    assert out == "" and not output.exists()


def test_retraction_for_a_different_time_is_refused(cli, output):
    assert cli("--voevent", voevent("S230518h-1-Preliminary.xml"), "--role", "observation")[0] == 0
    before = tree(output)
    code, _, err = cli("--voevent", voevent("O4_Retraction_mwa_trigger_edited.xml"))
    assert_one_line_failure(code, err, "not applied")
    assert tree(output) == before


def test_role_observation_kept_for_real_notice_but_not_for_test_notice(cli, output, caplog):
    assert cli("--voevent", voevent("S230518h-1-Preliminary.xml"), "--role", "observation")[0] == 0
    flags = json.loads((output / "current_run" / "S230518h" / "flags.json").read_text())
    assert flags["role"] == "observation"
    assert cli("--voevent", ms_voevent("2-Preliminary"), "--role", "observation")[0] == 0
    assert "role=test" in caplog.text
    flags = json.loads((output / "current_run" / "MS181101ab" / "flags.json").read_text())
    assert flags["role"] == "test"


def test_no_role_without_terminal_is_refused(output):
    done = run_subprocess(["--voevent", voevent("S230518h-1-Preliminary.xml")],
                          stdin=subprocess.DEVNULL)
    assert_one_line_failure(done.returncode, done.stderr, "--role")
    assert not output.exists()


def test_role_asked_on_terminal(output):
    controller, terminal = pty.openpty()
    try:
        os.write(controller, b"maybe\nreal\n")
        done = run_subprocess(["--voevent", voevent("S230518h-1-Preliminary.xml")], stdin=terminal)
    finally:
        os.close(controller)
        os.close(terminal)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("Is this a real event or a test? [real/test]") == 2
    flags = json.loads((output / "current_run" / "S230518h" / "flags.json").read_text())
    assert flags["role"] == "observation"


def _bad_inputs(tmp_path: Path) -> list[list[str]]:
    """Command lines whose input is broken, each built from a real file."""
    xml = Path(ms_voevent("3-Initial")).read_bytes()
    alert = Path(gwalert("MS181101ab-update.json")).read_bytes()
    avro = Path(gwalert("MS181101ab-preliminary.avro")).read_bytes()
    files = {
        "truncated.xml": xml[: len(xml) // 2],
        "empty.xml": b"",
        "malformed.json": alert[:4096],
        "truncated.avro": avro[:2000],
        "not-a-map.fits": b"this is not FITS",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return [
        ["--voevent", str(tmp_path / "truncated.xml")],
        ["--voevent", str(tmp_path / "empty.xml")],
        ["--gwalert", str(tmp_path / "malformed.json")],
        ["--gwalert", str(tmp_path / "truncated.avro")],
        ["--gwalert", str(tmp_path / "missing.json")],
        ["--voevent", ms_voevent("4-Update"), "--skymap", str(tmp_path / "not-a-map.fits")],
        ["--voevent", ms_voevent("4-Update"), "--skymap", str(tmp_path / "flags.json")],
        ["--voevent", ms_voevent("5-Retraction"), "--skymap", ms_voevent("4-Update")],
    ]


def test_bad_input_leaves_event_byte_identical(cli, output, tmp_path):
    assert cli("--gwalert", gwalert("MS181101ab-preliminary.json"), "--role", "test")[0] == 0
    before = tree(output)
    (tmp_path / "flags.json").write_bytes(b"SIMPLE  = T")  # a 'sky map' named like our own file
    for args in _bad_inputs(tmp_path):
        code, out, err = cli(*args, "--role", "test")
        assert_one_line_failure(code, err)
        assert out == ""
        assert tree(output) == before, args


def test_bad_input_in_subprocess(output, tmp_path):
    broken = tmp_path / "broken.xml"
    broken.write_bytes(Path(ms_voevent("2-Preliminary")).read_bytes()[:3000])
    done = run_subprocess(["--voevent", str(broken), "--role", "test"])
    assert_one_line_failure(done.returncode, done.stderr, "broken.xml", "not well-formed")
    assert "Traceback" not in done.stderr and not output.exists()


@pytest.fixture
def dead_port():
    """A loopback port that refuses connections (bound, never listening)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.mark.parametrize("via", ["option", "env"])
def test_graceid_with_unreachable_gracedb(cli, output, dead_port, monkeypatch, via):
    url = f"http://127.0.0.1:{dead_port}/api/"
    args = ["--graceid", "S190425z", "--role", "test"]
    if via == "option":
        args += ["--gracedb-url", url]
    else:
        monkeypatch.setenv("LLAMA_GRACEDB_URL", url)
    code, out, err = cli(*args)
    assert_one_line_failure(code, err, "cannot reach GraceDB", url)
    assert out == "" and not output.exists()


def test_graceid_is_validated_before_any_request(cli, output, dead_port):
    code, _, err = cli("--graceid", "../../etc", "--role", "test",
                       "--gracedb-url", f"http://127.0.0.1:{dead_port}/api/")
    assert_one_line_failure(code, err, "invalid event id")


def test_parser():
    p = skymap_info.parser()
    assert p.prog == "llama skymap-info"
    for option in ("--voevent", "--gwalert", "--graceid", "--skymap", "--role", "--run",
                   "--gracedb-url", "--verbose"):
        assert option in p.format_help()
    with pytest.raises(SystemExit):
        p.parse_args(["--voevent", "a.xml", "--gwalert", "b.json"])  # exactly one source
