"""Event store: atomic writes, output paths, event ids, flags, notice archive."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import shared_path

from llama import paths
from llama.errors import InputError
from llama.event import DEFAULT_FLAGS, Event
from llama.ids import validate_event_id
from llama.io.storage import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    sha256_file,
    write_if_changed,
)
from llama.io.voevent import read_voevent

HOSTILE_IDS = [
    "../x",
    "S1/../../etc",
    "",
    "a" * 500,
    "S1\x00",
    ".hidden",
    "/abs",
    "..",
    "S190425z/..",
    "S190425z\\x",
    "S190425z\n",
    "S190425Z",
    "s190425z",
    "S19042z",
    "G",
    "SIM-",
    "SIM-" + "a" * 61,
    "SIM-a/b",
    "X123",
]
GOOD_IDS = [
    "S190425z",
    "MS181101ab",
    "S251112cm",
    "TS190101abc",
    "GS230101a",
    "G298048",
    "M252714",
    "E1",
    "SIM-bns_0001",
    "SIM-" + "a" * 60,
]


def voevent(name: str) -> Path:
    return shared_path("gw_alerts", "voevent", name)


def tree(root: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every file and directory under ``root`` with its bytes and mtime."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


# --- atomic writes ---------------------------------------------------------------------


def test_atomic_json_is_deterministic(tmp_path):
    path = tmp_path / "x.json"
    atomic_write_json(path, {"b": 1, "a": [1, 2.5], "é": None})
    first = path.read_bytes()
    assert first == b'{\n  "a": [\n    1,\n    2.5\n  ],\n  "b": 1,\n  "\xc3\xa9": null\n}\n'
    atomic_write_json(path, {"é": None, "a": [1, 2.5], "b": 1})
    assert path.read_bytes() == first
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_atomic_text_and_sha256_match_readme(tmp_path):
    source = voevent("MS181101ab-5-Retraction.xml")
    assert sha256_file(source) == "732442cab9b2aa5a7b4ef3055cc7de599e436df997f067a3c07cf8ae47e80fb5"
    copy = atomic_write_text(tmp_path / "copy.xml", source.read_text("utf-8"))
    assert sha256_file(copy) == sha256_file(source)


def test_failed_write_leaves_no_temp_file(tmp_path):
    (tmp_path / "target").mkdir()
    with pytest.raises(OSError):
        atomic_write_bytes(tmp_path / "target", b"data")  # cannot replace a directory
    assert [p.name for p in tmp_path.iterdir()] == ["target"]
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "nan.json", {"far": float("nan")})
    assert [p.name for p in tmp_path.iterdir()] == ["target"]


def test_exclusive_write_never_overwrites(tmp_path):
    path = atomic_write_bytes(tmp_path / "notice", b"first", overwrite=False)
    with pytest.raises(FileExistsError):
        atomic_write_bytes(path, b"second", overwrite=False)
    assert path.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["notice"]


def test_write_if_changed_keeps_mtime(tmp_path):
    path = tmp_path / "map.fits"
    assert write_if_changed(path, b"SIMPLE one")
    os.utime(path, ns=(10**9, 10**9))
    assert not write_if_changed(path, b"SIMPLE one")
    assert path.stat().st_mtime_ns == 10**9
    assert write_if_changed(path, b"SIMPLE two")
    assert path.read_bytes() == b"SIMPLE two"


# --- paths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "own", "xdg", "default"),
    [
        (paths.output_dir, "LLAMA_OUTPUT_DIR", "XDG_DATA_HOME", ".local/share/llama"),
        (paths.cache_dir, "LLAMA_CACHE_DIR", "XDG_CACHE_HOME", ".cache/llama"),
    ],
)
def test_base_dir_precedence(tmp_path, monkeypatch, function, own, xdg, default):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv(own, str(tmp_path / "own"))
    monkeypatch.setenv(xdg, str(tmp_path / "xdg"))
    assert function() == tmp_path / "own"
    monkeypatch.setenv(own, "")  # empty: ignored
    assert function() == tmp_path / "xdg" / "llama"
    monkeypatch.delenv(own)
    monkeypatch.setenv(xdg, "relative/dir")  # relative XDG values are ignored
    assert function() == tmp_path / "home" / default
    monkeypatch.delenv(xdg)
    assert function() == tmp_path / "home" / default
    assert not (tmp_path / "home").exists()
    assert function(ensure=True).is_dir()


def test_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("LLAMA_OUTPUT_DIR", str(tmp_path))
    assert paths.current_run_dir() == tmp_path / "current_run"
    assert paths.past_run_dir("O4a_2023") == tmp_path / "past_runs" / "O4a_2023"
    assert paths.logs_dir() == tmp_path / "logs"
    gw170817 = datetime(2017, 8, 17, 12, 41, 4)
    assert paths.gcn_dir(gw170817) == tmp_path / "gcn" / "2017-08" / "17"
    late_evening_west = datetime(2019, 4, 24, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert paths.gcn_dir(late_evening_west) == tmp_path / "gcn" / "2019-04" / "25"
    today = datetime.now(UTC)
    assert paths.gcn_dir().parent.name == today.strftime("%Y-%m")
    assert list(tmp_path.iterdir()) == []  # nothing created without ensure
    for function in (paths.current_run_dir, paths.logs_dir, paths.gcn_dir):
        assert function(ensure=True).is_dir()
    for bad in ("../x", "a/b", ".hidden", ""):
        with pytest.raises(InputError):
            paths.past_run_dir(bad)


def test_safe_join(tmp_path):
    root = tmp_path / "root"
    (root / "inside").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "escape").symlink_to(tmp_path / "outside")
    (root / "alias").symlink_to(root / "inside")
    assert paths.safe_join(root, "S190425z", "notices") == root / "S190425z" / "notices"
    assert paths.safe_join(root, "alias", "x") == root / "alias" / "x"
    refused = [("..",), ("a/../../b",), ("/etc",), ("a\0b",), ("",), ("escape",), ("escape", "x"),
               ("a\\..\\..",)]
    for parts in refused:
        with pytest.raises(InputError) as err:
            paths.safe_join(root, *parts)
        assert "\n" not in str(err.value)


# --- event ids -------------------------------------------------------------------------


@pytest.mark.parametrize("eid", GOOD_IDS)
def test_valid_event_ids(eid, tmp_path):
    assert validate_event_id(eid) == eid
    assert Event(eid, tmp_path).directory == tmp_path / eid


@pytest.mark.parametrize("eid", HOSTILE_IDS)
def test_hostile_event_ids_refused(eid, tmp_path):
    for attempt in (lambda: validate_event_id(eid), lambda: Event(eid, tmp_path)):
        with pytest.raises(InputError) as err:
            attempt()
        message = str(err.value)
        assert "\n" not in message and "\x00" not in message and len(message) < 200
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("eid", ["S١٨١١٠١ab", "G２９８０４８", "SIM-bns_٠١", "S190425ｚ"])
def test_non_ascii_event_ids_refused(eid, tmp_path):
    """Non-ASCII digits/letters (which ``\\d``/``\\w`` would match) are no id characters."""
    for attempt in (lambda: validate_event_id(eid), lambda: Event(eid, tmp_path)):
        with pytest.raises(InputError, match="invalid event id"):
            attempt()
    assert list(tmp_path.iterdir()) == []


def test_symlinked_event_directory_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    run = tmp_path / "run"
    run.mkdir()
    (run / "S190425z").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InputError, match="outside"):
        Event("S190425z", run)


# --- flags -----------------------------------------------------------------------------


def test_flags_default_test_safe_and_atomic(tmp_path):
    event = Event("S190425z", tmp_path)
    assert not event.exists
    with pytest.raises(InputError, match="does not exist"):
        event.set_flags(upload=True)
    event.create()
    assert event.exists
    assert event.flags == DEFAULT_FLAGS
    assert event.flags["role"] == "test" and event.flags["upload"] is False
    assert event.set_flags(role="observation", online=True)["online"] is True
    assert Event("S190425z", tmp_path).flags == {**DEFAULT_FLAGS, "role": "observation",
                                                  "online": True}
    event.create(role="test")  # an existing event keeps its flags
    assert event.flags["role"] == "observation"
    for bad in ({"role": "real"}, {"upload": "yes"}, {"colour": True}):
        with pytest.raises(InputError):
            event.set_flags(**bad)
    assert sorted(p.name for p in event.directory.iterdir()) == ["flags.json"]


def test_corrupt_flags_file_is_one_line_error(tmp_path):
    event = Event("G298048", tmp_path).create()
    event.flags_path.write_text('{"role": ')
    with pytest.raises(InputError) as err:
        event.flags  # noqa: B018
    assert "flags.json" in str(err.value) and "\n" not in str(err.value)
    event.flags_path.write_text('{"role": "real"}')
    with pytest.raises(InputError, match="invalid role"):
        event.flags  # noqa: B018


# --- notices, skymap_info, retraction ---------------------------------------------------


def test_archive_keeps_every_notice_in_order(tmp_path):
    event = Event("MS181101ab", tmp_path).create()
    first = event.archive_notice(b"one", "MS181101ab-2-Preliminary.xml")
    second = event.archive_notice(b"two", "MS181101ab-2-Preliminary.xml")
    hostile = event.archive_notice(b"three", "../../../etc/passwd")
    assert [p.name for p in event.notices()] == [
        "0001-MS181101ab-2-Preliminary.xml",
        "0002-MS181101ab-2-Preliminary.xml",
        "0003-passwd",
    ]
    assert (first.read_bytes(), second.read_bytes(), hostile.read_bytes()) == (
        b"one",
        b"two",
        b"three",
    )
    assert hostile.parent == event.notices_dir
    assert event.relpath(first) == "notices/0001-MS181101ab-2-Preliminary.xml"


def test_record_alert_rewrites_only_changed_skymap(tmp_path):
    event = Event("MS181101ab", tmp_path).create()
    bayestar = shared_path("gw_skymaps", "MS181101ab_userguide_bayestar.multiorder.fits")
    combined = shared_path("gw_skymaps", "MS181101ab_userguide_combined-ext.multiorder.fits")
    preliminary = read_voevent(voevent("MS181101ab-2-Preliminary.xml"))
    record = event.record_alert(preliminary, bayestar.read_bytes(), "MS181101ab.multiorder.fits")
    skymap = event.directory / "MS181101ab.multiorder.fits"
    assert record["skymap_sha256"] == sha256_file(bayestar) == sha256_file(skymap)
    assert event.skymap_info == record and record["retracted"] is False
    os.utime(skymap, ns=(10**9, 10**9))
    initial = read_voevent(voevent("MS181101ab-3-Initial.xml"))
    event.record_alert(initial, bayestar.read_bytes(), "MS181101ab.multiorder.fits")
    assert skymap.stat().st_mtime_ns == 10**9
    assert event.skymap_info["alert_type"] == "Initial"
    event.record_alert(initial, combined.read_bytes(), "MS181101ab.multiorder.fits")
    assert sha256_file(skymap) == sha256_file(combined)
    # a notice issued earlier than the recorded one changes nothing
    before = tree(event.directory)
    kept = event.record_alert(preliminary, bayestar.read_bytes(), "x.fits")
    assert kept["alert_type"] == "Initial"
    assert tree(event.directory) == before
    for bad_name in ("flags.json", "skymap_info.json", "notices"):
        with pytest.raises(InputError, match="clashes"):
            event.record_alert(initial, b"SIMPLE", bad_name)
    with pytest.raises(InputError, match="cannot update"):
        Event("S190425z", tmp_path).create().record_alert(initial)


def test_mark_retracted(tmp_path):
    event = Event("MS181101ab", tmp_path).create(role="test", upload=True)
    event.record_alert(read_voevent(voevent("MS181101ab-4-Update.xml")))
    retraction = read_voevent(voevent("MS181101ab-5-Retraction.xml"))
    retraction["notice_filename"] = "notices/0002-MS181101ab-5-Retraction.xml"
    record = event.mark_retracted(retraction)
    assert event.flags == {**DEFAULT_FLAGS, "retracted": True, "vetoed": True, "upload": False}
    assert event.skymap_info == record
    assert record["retracted"] is True and record["alert_type"] == "Update"
    assert record["retraction_notice"]["ivorn"] == "ivo://gwnet/LVC#MS181101ab-5-Retraction"
    # a later update keeps the retraction
    later = read_voevent(voevent("MS181101ab-6-Update.xml"))
    assert event.record_alert(later)["retracted"] is True
    assert event.skymap_info["retraction_notice"] == record["retraction_notice"]


def test_retraction_for_another_time_refused(tmp_path):
    event = Event("S230518h", tmp_path).create()
    event.record_alert(read_voevent(voevent("S230518h-1-Preliminary.xml")))
    before = tree(tmp_path)
    edited = read_voevent(voevent("O4_Retraction_mwa_trigger_edited.xml"))
    with pytest.raises(InputError, match="not applied"):
        event.mark_retracted(edited)
    assert tree(tmp_path) == before


def test_sha256_helper_matches_hashlib(tmp_path):
    data = os.urandom(3 * (1 << 20) + 17)
    path = atomic_write_bytes(tmp_path / "blob", data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
