"""Nothing from outside can damage an event: symlinks never lead a write out of the output
directory, hostile file names in skymap_info.json never reach a traceback, a rejected notice
is archived in gcn/ but leaves the event untouched."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from conftest import shared_path
from test_cli import assert_one_line_error, llama
from test_tasks import EVENT, luigi_command, out  # noqa: F401 - `out` is a fixture

from llama.errors import ConfigurationError, InputError
from llama.event import Event
from llama.ingest import ingest_file, read_gwalert_notice, receive
from llama.paths import confined, current_run_dir, gcn_dir

GWALERT = "MS181101ab-preliminary.json"
MAP = "MS181101ab_userguide_bayestar.multiorder.fits"


def alert_path(name: str = GWALERT) -> Path:
    return shared_path("gw_alerts", "gcn_kafka_json", name)


def tree(root: Path) -> dict[str, bytes | None]:
    """Every file (bytes), directory and symlink (None) under ``root``, links not followed."""
    return {str(p.relative_to(root)): None if p.is_dir() or p.is_symlink() else p.read_bytes()
            for p in sorted(root.rglob("*"))}


def test_symlinked_notices_directory_receives_nothing(out, tmp_path):  # noqa: F811
    event = ingest_file(alert_path(), role="test")
    outside = tmp_path / "outside"
    outside.mkdir()
    notices = event.notices_dir
    for archived in notices.iterdir():
        archived.rename(outside / archived.name)
    notices.rmdir()
    notices.symlink_to(outside, target_is_directory=True)
    before, outside_before = tree(out), tree(outside)
    with pytest.raises(ConfigurationError) as err:
        ingest_file(alert_path("MS181101ab-update.json"))
    assert "outside" in str(err.value) and "\n" not in str(err.value)
    assert tree(out) == before and tree(outside) == outside_before


@pytest.mark.parametrize("link", ["current_run", "event"])
def test_symlinked_run_or_event_directory_receives_nothing(link, out, tmp_path):  # noqa: F811
    outside = tmp_path / "outside"
    outside.mkdir()
    out.mkdir()
    if link == "current_run":
        (out / "current_run").symlink_to(outside, target_is_directory=True)
    else:
        (out / "current_run").mkdir()
        (out / "current_run" / EVENT).symlink_to(outside, target_is_directory=True)
    result = llama("skymap-info", "--gwalert", alert_path(), "--role", "test")
    assert_one_line_error(result, "llama skymap-info: error:")
    assert "outside" in result.stderr or "symlink" in result.stderr
    assert tree(outside) == {}
    with pytest.raises((ConfigurationError, InputError)):
        Event(EVENT, current_run_dir() if link == "event" else out / "current_run").create()
    assert tree(outside) == {}


def test_symlinked_gcn_archive_is_refused(out, tmp_path):  # noqa: F811
    outside = tmp_path / "outside"
    outside.mkdir()
    out.mkdir()
    (out / "gcn").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ConfigurationError):
        gcn_dir(ensure=True)
    with pytest.raises(ConfigurationError):
        receive(alert_path().read_bytes(), "test")
    assert tree(outside) == {}


def test_confined_allows_links_that_stay_inside(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert confined(tmp_path / "link" / "x", tmp_path) == tmp_path / "link" / "x"
    with pytest.raises(ConfigurationError):
        confined(tmp_path / "link" / "x", tmp_path / "real" / "sub")


def test_rejected_notice_is_archived_but_never_touches_the_event(out):  # noqa: F811
    ingest_file(alert_path(), role="test")
    event_dir = out / "current_run" / EVENT
    before = tree(event_dir)
    alert = json.loads(alert_path().read_bytes())
    skymap = base64.b64decode(alert["event"]["skymap"])
    alert["event"]["skymap"] = base64.b64encode(skymap[: len(skymap) // 3]).decode()
    alert["time_created"] = "2018-11-01T23:59:00Z"
    raw = json.dumps(alert).encode()
    with pytest.raises(InputError) as err:
        receive(raw, "test")
    assert "embedded sky map" in str(err.value) and "\n" not in str(err.value)
    assert tree(event_dir) == before
    archived = list((out / "gcn").rglob("*.json"))
    assert [p.read_bytes() for p in archived] == [raw]
    with pytest.raises(InputError):  # the library reader refuses it too, before any write
        read_gwalert_notice(raw)


@pytest.fixture
def luigi_event(out):  # noqa: F811
    """MS181101ab from its gwalert (embedded map), as the luigi tests build it."""
    return ingest_file(alert_path(), role="test").directory


@pytest.mark.parametrize("hostile", ["../../../../etc/passwd", "/etc/passwd", "symlink"])
def test_luigi_refuses_hostile_skymap_file_with_one_line(hostile, luigi_event, tmp_path):
    info_path = luigi_event / "skymap_info.json"
    info = json.loads(info_path.read_text())
    if hostile == "symlink":
        outside = tmp_path / "outside.fits"
        (luigi_event / info["skymap_filename"]).rename(outside)
        (luigi_event / info["skymap_filename"]).symlink_to(outside)
    else:
        info["skymap_filename"] = hostile
        info_path.write_text(json.dumps(info))
    done = luigi_command(tmp_path, "Distances", "--eventid", EVENT)
    assert done.returncode not in (0, 1), done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    problems = [line for line in done.stderr.splitlines() if "Error:" in line]
    assert len(problems) == 1 and ("unsafe path" in problems[0]), done.stderr
    assert not (luigi_event / "lvc_skymap_distances.json").exists()


@pytest.mark.parametrize("value", ["-1e300", "-inf", "-nan", "-1E5"])
def test_negative_event_times_are_values_not_options(value):
    skymap = shared_path("gw_skymaps", MAP)
    neutrinos = shared_path("icecube", "alerts_json", "S230914ak_icecube_lvk_nu_track_search.json")
    result = llama("significance", "--skymap", skymap, "--neutrinos", neutrinos,
                   "--event-time", value)
    assert_one_line_error(result, "llama significance: error:")
    assert "event time" in result.stderr and "expected one argument" not in result.stderr
