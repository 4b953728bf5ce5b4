"""llama.ingest, the alert-intake library: same event directories as ``llama skymap-info``
and ``llama demo``, byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, shared_path

from llama.errors import InputError
from llama.ingest import detect_kind, ingest, ingest_file, read_notice

MS_VOEVENTS = ["2-Preliminary", "3-Initial", "4-Update", "5-Retraction"]


def ms_voevent(step: str) -> Path:
    return shared_path("gw_alerts", "voevent", f"MS181101ab-{step}.xml")


def contents(root: Path) -> dict[str, bytes | None]:
    """Every file (bytes) and directory (None) under ``root``, by relative POSIX path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes() if p.is_file() else None
        for p in sorted(root.rglob("*"))
    }


def llama_cli(*args: str, output: Path) -> subprocess.CompletedProcess:
    """``python -m llama.cli.main ...`` in a fresh interpreter writing under ``output``."""
    return subprocess.run(
        [sys.executable, "-m", "llama.cli.main", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "LLAMA_OUTPUT_DIR": str(output)},
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def test_voevent_sequence_cli_and_library_give_identical_event_dirs(tmp_path):
    steps = [ms_voevent(step) for step in MS_VOEVENTS]
    cli_output = tmp_path / "cli-output"
    cli_dir = cli_output / "current_run" / "MS181101ab"
    for i, path in enumerate(steps):
        role = ["--role", "test"] if i == 0 else []
        done = llama_cli("skymap-info", "--voevent", str(path), *role, output=cli_output)
        assert (done.returncode, done.stdout, done.stderr) == (0, f"{cli_dir}\n", "")

    run_dir = tmp_path / "library-run"
    for i, path in enumerate(steps):
        event = ingest_file(path, run_dir=run_dir, role="test" if i == 0 else None)
        assert event.directory == run_dir / "MS181101ab"

    cli_files, library_files = contents(cli_dir), contents(event.directory)
    assert list(cli_files) == list(library_files)
    assert [name for name in cli_files if name.startswith("notices/")] == [
        f"notices/000{i}-MS181101ab-{step}.xml" for i, step in enumerate(MS_VOEVENTS, 1)
    ]
    for name, data in cli_files.items():
        assert library_files[name] == data, name
    info = json.loads(library_files["skymap_info.json"])
    assert info["retracted"] is True and info["alert_type"] == "Update"


def test_demo_event_equals_direct_ingest_of_its_alert(tmp_path):
    outdir = tmp_path / "demo"
    done = llama_cli("demo", "--outdir", str(outdir), "--trials", "20", output=tmp_path / "unused")
    assert done.returncode == 0, done.stderr
    alert = outdir / "inputs" / "SIMULATED-alert.json"

    event = ingest_file(alert, run_dir=tmp_path / "run", role="test")
    demo_dir = outdir / "current_run" / "SIM-DEMO"
    ingested = contents(event.directory)
    assert sorted(ingested) == [
        "SIM-DEMO.multiorder.fits",
        "flags.json",
        "notices",
        "notices/0001-SIMULATED-alert.json",
        "skymap_info.json",
    ]
    demo = contents(demo_dir)
    for name, data in ingested.items():
        assert demo.get(name, b"missing") == data, name
    # the rest of the demo's event directory is Luigi products, no intake files
    assert not [name for name in demo if name not in ingested and name.startswith("notices")]


def test_read_notice_from_bytes_then_ingest(tmp_path):
    raw = ms_voevent("2-Preliminary").read_bytes()
    notice = read_notice("voevent", raw)
    assert notice.name == "MS181101ab-Preliminary.xml" and notice.skymap is None
    event = ingest(notice, tmp_path, role="test")
    assert [p.name for p in event.notices()] == ["0001-MS181101ab-Preliminary.xml"]
    assert event.notices()[0].read_bytes() == raw


def test_new_event_needs_a_role_and_asks_only_then(tmp_path):
    with pytest.raises(InputError, match="no role given"):
        ingest_file(ms_voevent("2-Preliminary"), run_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []

    asked: list[str] = []

    def ask() -> str:
        asked.append("asked")
        return "test"

    event = ingest_file(ms_voevent("2-Preliminary"), run_dir=tmp_path, ask_role=ask)
    ingest_file(ms_voevent("3-Initial"), run_dir=tmp_path, ask_role=ask)
    assert asked == ["asked"] and event.flags["role"] == "test"


def test_detect_kind(tmp_path):
    assert detect_kind(ms_voevent("4-Update").read_bytes()) == "voevent"
    alert = shared_path("gw_alerts", "gcn_kafka_json", "MS181101ab-preliminary.json")
    assert detect_kind(alert.read_bytes()) == "gwalert"
    assert detect_kind(alert.with_suffix(".avro").read_bytes()) == "gwalert"
    (tmp_path / "notice.txt").write_bytes(b"hello")
    with pytest.raises(InputError, match="notice.txt: neither"):
        ingest_file(tmp_path / "notice.txt", run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
