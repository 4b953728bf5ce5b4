"""Neutrino list readers and the neutrino background sample, on the real public IceCube files."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import REPO, shared_path

from llama.errors import InputError
from llama.io.background_sample import (
    build_background_sample,
    default_background_sample,
    read_background_sample,
)
from llama.io.neutrinos import (
    NeutrinoList,
    ReleaseCatalog,
    detect_format,
    read_icecat1,
    read_llama_json,
    read_lvk_nu_track_search,
    read_neutrinos,
    read_release_events,
    write_llama_json,
)

RELEASE = ("icecube", "icecube_10year_ps")
IC40 = (*RELEASE, "events", "IC40_exp.csv")
IC40_UPTIME = (*RELEASE, "uptime", "IC40_exp.csv")
ICECAT1 = ("icecube", "icecat1", "IceCube_Gold_Bronze_Tracks.csv")
S230914AK = ("icecube", "alerts_json", "S230914ak_icecube_lvk_nu_track_search.json")
ACME = ("icecube", "alerts_json", "acme_tutorials_derived")
ACME_ONE = (*ACME, "icecube_None_2025-11-08T19-13-28.json")  # reports 1 event, lists none
ACME_ZERO = (*ACME, "icecube_None_2025-11-12T15-18-45.json")
BRONZE = ("icecube", "alerts_json", "IceCube-230416A_bronze_track_alert.json")

R90_PER_SIGMA = 2.145966
FLOAT_COLUMNS = ("mjd", "ra", "dec", "sigma", "energy", "zenith", "azimuth")
COLUMNS = (*FLOAT_COLUMNS, "run", "event", "type")
GOOD = {"mjd": 60000.5, "ra": 10.0, "dec": -5.0, "sigma": 0.5, "energy": 1e4}


@pytest.fixture(scope="module")
def ic40_raw() -> np.ndarray:
    """The IC40 table read independently: MJD, log10E, AngErr, RA, Dec, Azimuth, Zenith."""
    return np.loadtxt(shared_path(*IC40), skiprows=1)


@pytest.fixture(scope="module")
def ic40_catalog() -> ReleaseCatalog:
    return ReleaseCatalog(shared_path(*RELEASE))


def assert_same_list(a: NeutrinoList, b: NeutrinoList) -> None:
    for name in COLUMNS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def assert_one_line_error(err: pytest.ExceptionInfo[InputError], path: Path, fragment: str) -> None:
    message = str(err.value)
    assert str(path) in message
    assert "\n" not in message
    assert fragment in message


# ---------------------------------------------------------------- 10-year release tables


def test_release_ic40_reads_every_event(ic40_raw: np.ndarray) -> None:
    ev = read_release_events(shared_path(*IC40))
    assert len(ev) == 36900
    assert (ev.mjd.min(), ev.mjd.max()) == (54562.37911273, 54971.13279145)
    assert (ev.sigma.min(), ev.sigma.max()) == (0.2, 2.8)
    # the file is in time order, so the MJD-sorted list keeps the row order
    for name, j in (("mjd", 0), ("sigma", 2), ("ra", 3), ("dec", 4), ("azimuth", 5), ("zenith", 6)):
        np.testing.assert_array_equal(getattr(ev, name), ic40_raw[:, j], err_msg=name)
    np.testing.assert_array_equal(ev.energy, 10.0 ** ic40_raw[:, 1])
    np.testing.assert_array_equal(ev.event, np.arange(36900))
    assert (ev.run == -1).all() and (ev.type == "archival").all()
    assert ev.source == str(shared_path(*IC40))


def test_release_header_with_hash_and_file_lists(tmp_path: Path, ic40_raw: np.ndarray) -> None:
    lines = shared_path(*IC40).read_text().splitlines()[:201]
    plain, hashed = tmp_path / "plain.csv", tmp_path / "hashed.csv"
    plain.write_text("\n".join(lines) + "\n")
    hashed.write_text("\n".join(["# " + lines[0], *lines[1:]]) + "\n")
    a, b = read_release_events(plain), read_release_events(hashed)
    np.testing.assert_array_equal(a.mjd, ic40_raw[:200, 0])
    np.testing.assert_array_equal(a.zenith, b.zenith)
    np.testing.assert_array_equal(a.energy, b.energy)
    both = ReleaseCatalog([plain, hashed])
    assert len(both) == 400 and both.seasons == ["plain", "hashed"]
    assert (np.diff(both.events.mjd) >= 0).all()
    np.testing.assert_array_equal(np.sort(both.events.event), np.repeat(np.arange(200), 2))


def test_release_window_matches_brute_force(ic40_catalog: ReleaseCatalog) -> None:
    events = ic40_catalog.events
    mjd = events.mjd
    rng = np.random.default_rng(20080406)
    starts = rng.uniform(mjd[0] - 1, mjd[-1], 30)
    windows = [
        (None, None),
        (mjd[100], mjd[200]),  # both ends exactly on events: inclusive
        (mjd[0], mjd[0]),
        (mjd[5000] + 1e-9, mjd[5001] - 1e-9),  # empty: between two events
        (50000.0, 50001.0),  # empty: before the season
        (55000.0, 56000.0),  # empty: after the season
        (54700.3, None),
        (None, 54600.7),
        (54700.0, 54600.0),  # empty: reversed
        *zip(starts, starts + rng.uniform(0, 2, 30), strict=True),
    ]
    n_empty = 0
    for lo, hi in windows:
        mask = np.ones(len(mjd), bool)
        if lo is not None:
            mask &= mjd >= lo
        if hi is not None:
            mask &= mjd <= hi
        got = ic40_catalog.window(lo, hi)
        np.testing.assert_array_equal(got.event, events.event[mask], err_msg=f"{lo}..{hi}")
        np.testing.assert_array_equal(got.mjd, mjd[mask])
        n_empty += not mask.any()
    assert n_empty >= 4
    lo, hi = windows[1]
    assert_same_list(
        read_release_events(shared_path(*RELEASE), lo, hi), ic40_catalog.window(lo, hi)
    )
    center = mjd[1234]
    around = events.in_window(center, 500.0)
    np.testing.assert_array_equal(around.mjd, mjd[np.abs(mjd - center) * 86400 <= 500])
    assert 1 <= len(around) < 10


# ------------------------------------------------------------------------------ IceCat-1


def test_icecat1() -> None:
    path = shared_path(*ICECAT1)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    nl = read_icecat1(path)
    assert len(nl) == len(rows) == 348

    def col(name: str) -> np.ndarray:
        return np.array([float(row[name]) for row in rows])

    np.testing.assert_array_equal(nl.energy, col("ENERGY") * 1000.0)  # TeV -> GeV
    assert nl.energy.min() >= 5.4e4
    np.testing.assert_array_equal(nl.mjd, col("EVENTMJD"))
    np.testing.assert_array_equal(nl.run, col("RUNID").astype(int))
    np.testing.assert_array_equal(nl.event, col("EVENTID").astype(int))
    np.testing.assert_array_equal(nl.zenith, 90.0 + col("DEC"))
    cos_dec = np.cos(np.radians(col("DEC")))
    ra_err = (col("RA_ERR_PLUS") + col("RA_ERR_MINUS")) * cos_dec  # RA errors are RA-coordinate
    r90 = (ra_err + col("DEC_ERR_PLUS") + col("DEC_ERR_MINUS")) / 4.0
    np.testing.assert_allclose(nl.sigma, r90 / R90_PER_SIGMA, rtol=1e-6)
    assert (nl.type == "archival").all() and np.isnan(nl.azimuth).all()


# ------------------------------------------------------------ LVK Nu Track Search notices


def test_lvk_notice_s230914ak() -> None:
    nl = read_lvk_nu_track_search(shared_path(*S230914AK))
    assert len(nl) == 2
    day = (date(2023, 9, 14) - date(1858, 11, 17)).days  # trigger 2023-09-14T11:14:01Z
    assert day == 60201
    seconds = (nl.mjd - day) * 86400.0
    np.testing.assert_allclose(
        seconds, 11 * 3600 + 14 * 60 + 1 + np.array([12.91, 222.46]), atol=1e-6, rtol=0
    )
    np.testing.assert_array_equal(nl.run, [138590, 138590])
    np.testing.assert_array_equal(nl.event, [39138551, 39164579])
    np.testing.assert_allclose(nl.sigma, 0.5 / R90_PER_SIGMA, rtol=1e-7)
    np.testing.assert_array_equal(nl.ra, [17.48, 13.82])
    np.testing.assert_array_equal(nl.dec, [16.15, 18.66])
    np.testing.assert_array_equal(nl.zenith, 90.0 + nl.dec)
    assert np.isnan(nl.energy).all() and (nl.type == "observation").all()


def test_lvk_notice_schema_layout(tmp_path: Path) -> None:
    """The schema puts ra/dec/ra_dec_error in the event itself (the example nests them)."""
    notice = json.loads(shared_path(*S230914AK).read_text())
    for event in notice["coincident_events"]:
        event.update(event.pop("localization"))
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps(notice))
    expected = read_lvk_nu_track_search(shared_path(*S230914AK))
    got = read_lvk_nu_track_search(flat)
    for name in ("mjd", "ra", "dec", "sigma", "run", "event"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))


def test_lvk_notice_without_event_list(caplog: pytest.LogCaptureFixture) -> None:
    assert len(read_lvk_nu_track_search(shared_path(*ACME_ZERO))) == 0
    assert not caplog.records
    assert len(read_lvk_nu_track_search(shared_path(*ACME_ONE))) == 0
    assert "reports 1 coincident event(s) but lists 0" in caplog.text


# ---------------------------------------------------------------------------- LLAMA JSON


def test_llama_json_round_trip(tmp_path: Path) -> None:
    original = NeutrinoList.concatenate(
        [
            read_lvk_nu_track_search(shared_path(*S230914AK)),
            read_icecat1(shared_path(*ICECAT1)).select(slice(0, 5)),
            read_release_events(shared_path(*IC40), 54562.3, 54562.5),
        ]
    )
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    write_llama_json(original, first)
    back = read_llama_json(first)
    assert_same_list(back, original)
    write_llama_json(back, second)
    assert first.read_bytes() == second.read_bytes()
    written = json.loads(first.read_text())
    assert written["complete"] is False  # the LLAMA O4 file: {"triggers": [...], "complete"}
    records = written["triggers"]
    assert list(records[0]) == sorted([*COLUMNS, "subevent", "file"])
    assert records[0]["energy"] is None and records[0]["azimuth"] is None
    assert records[-1]["run"] is None and records[-1]["type"] == "archival"
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_llama_json_columns_wrapper_and_defaults(tmp_path: Path) -> None:
    columns = {
        "mjd": [60000.5, 60000.6],
        "ra": [10.0, 350.0],
        "dec": [-5.0, 80.0],
        "sigma": [0.5, 1.5],
        "energy": [1e4, None],
        "run": [123, None],
    }
    records = [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]
    paths = {}
    for form, data in (
        ("columns", columns),
        ("records", records),
        ("wrapper", {"neutrinos": records}),
    ):
        paths[form] = tmp_path / f"{form}.json"
        paths[form].write_text(json.dumps(data))
    nl = read_llama_json(paths["columns"])
    np.testing.assert_array_equal(nl.zenith, [85.0, 170.0])  # default 90 + dec
    np.testing.assert_array_equal(nl.run, [123, -1])
    np.testing.assert_array_equal(nl.event, [-1, -1])
    assert np.isnan(nl.energy[1]) and np.isnan(nl.azimuth).all()
    assert list(nl.type) == ["unspecified", "unspecified"]
    assert_same_list(read_llama_json(paths["records"]), nl)
    assert_same_list(read_llama_json(paths["wrapper"]), nl)
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    assert len(read_llama_json(empty)) == 0 and len(read_neutrinos(empty)) == 0


BAD_LLAMA_JSON = {
    "missing key": (
        json.dumps([GOOD, {k: v for k, v in GOOD.items() if k != "sigma"}]),
        "neutrino 1: missing required key 'sigma'",
    ),
    "missing column": (json.dumps({"mjd": [1.0], "ra": [1.0]}), "missing required column 'dec'"),
    "malformed": ('[{"mjd": 60000.5, "ra": 10.0,, }]', "malformed JSON at line 1"),
    "truncated": (json.dumps([GOOD, GOOD], indent=1)[:-9], "malformed JSON"),
    "non-numeric": (json.dumps([GOOD, {**GOOD, "ra": "ten"}]), "neutrino 1: ra is not a number"),
    "non-integer run": (json.dumps([{**GOOD, "run": 1.5}]), "run is not an integer"),
    "null mjd": (json.dumps([{**GOOD, "mjd": None}]), "mjd must be a finite number"),
    "negative sigma": (json.dumps([{**GOOD, "sigma": -0.5}]), "sigma must be > 0 deg (got -0.5)"),
    "dec above 90": (json.dumps([GOOD, {**GOOD, "dec": 90.5}]), "neutrino 1: dec must be within"),
    "unknown type": (json.dumps([{**GOOD, "type": "signal"}]), "type must be one of"),
    "ragged columns": (json.dumps({k: [v, v] for k, v in GOOD.items()} | {"ra": [1.0]}), "differ"),
    "not objects": (json.dumps([GOOD, 42]), "neutrino 1 is not a JSON object"),
    "empty file": ("", "empty file"),
    "binary garbage": (bytes(range(256)) * 4, "not UTF-8"),
}


@pytest.mark.parametrize("reader", [read_llama_json, read_neutrinos])
@pytest.mark.parametrize("case", BAD_LLAMA_JSON, ids=list(BAD_LLAMA_JSON))
def test_llama_json_rejects(
    tmp_path: Path, reader: Callable[[Path], NeutrinoList], case: str
) -> None:
    content, fragment = BAD_LLAMA_JSON[case]
    path = tmp_path / "bad.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(InputError) as err:
        reader(path)
    assert_one_line_error(err, path, fragment)


def _edited(source: Path, old: str, new: str, dest: Path) -> Path:
    text = source.read_text()
    assert old in text
    dest.write_text(text.replace(old, new, 1))
    return dest


def _empty_dir(path: Path) -> Path:
    path.mkdir()
    return path


def test_other_readers_reject(tmp_path: Path) -> None:
    ic40, icecat, notice = shared_path(*IC40), shared_path(*ICECAT1), shared_path(*S230914AK)
    first_row = ic40.read_text().splitlines()[1]
    cases = [
        (
            read_release_events,
            _edited(ic40, first_row, first_row.replace("3.31", "x.31"), tmp_path / "a.csv"),
            "could not convert",
        ),
        (
            read_release_events,
            _edited(ic40, "AngErr[deg]", "Err", tmp_path / "b.csv"),
            "header lacks AngErr[deg]",
        ),
        (
            read_release_events,
            _edited(ic40, first_row, first_row[:40], tmp_path / "c.csv"),
            "number of columns",
        ),
        (read_release_events, tmp_path / "missing.csv", "No such file or directory"),
        (read_release_events, _empty_dir(tmp_path / "release"), "no IceCube release event tables"),
        (
            read_icecat1,
            _edited(icecat, ",187.0,", ",lots,", tmp_path / "d.csv"),
            "line 2: ENERGY is not a number",
        ),
        (read_icecat1, _edited(icecat, "ENERGY,", "E,", tmp_path / "e.csv"), "header lacks ENERGY"),
        (
            read_lvk_nu_track_search,
            _edited(notice, '"event_dt": 12.91', '"event_dt": "soon"', tmp_path / "f.json"),
            "coincident_events[0]: event_dt",
        ),
        (
            read_lvk_nu_track_search,
            _edited(notice, "2023-09-14T11:14:01Z", "yesterday", tmp_path / "g.json"),
            "trigger_time is not an ISO time",
        ),
        (
            read_lvk_nu_track_search,
            _edited(notice, "138590_39164579", "138590-39164579", tmp_path / "h.json"),
            "id is not RUN_EVENT",
        ),
        (
            read_lvk_nu_track_search,
            shared_path(*BRONZE),
            "not an IceCube LVK Nu Track Search notice",
        ),
    ]
    for reader, path, fragment in cases:
        with pytest.raises(InputError) as err:
            reader(path)
        assert_one_line_error(err, path, fragment)


# ------------------------------------------------------------------------ auto-detection


@pytest.mark.parametrize(
    ("parts", "fmt", "n"),
    [
        (RELEASE, "release", 36900),
        (IC40, "release", 36900),
        (ICECAT1, "icecat1", 348),
        (S230914AK, "lvk-notice", 2),
        (ACME_ZERO, "lvk-notice", 0),
    ],
)
def test_detect_format(parts: tuple[str, ...], fmt: str, n: int) -> None:
    path = shared_path(*parts)
    assert detect_format(path) == fmt
    auto = read_neutrinos(path)
    assert len(auto) == n
    assert_same_list(auto, read_neutrinos(path, format=fmt))


def test_detect_format_llama_and_unknown(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    write_llama_json(read_lvk_nu_track_search(shared_path(*S230914AK)), path)
    assert detect_format(path) == "llama"
    assert_same_list(read_neutrinos(path), read_llama_json(path))
    assert detect_format(shared_path(*BRONZE)) == "icecube-alert"  # accepted since issue 7
    with pytest.raises(InputError) as err:
        read_neutrinos(shared_path(*IC40_UPTIME))
    assert_one_line_error(err, shared_path(*IC40_UPTIME), "unrecognised neutrino file")
    with pytest.raises(InputError) as err:
        read_neutrinos(path, format="votable")
    assert_one_line_error(err, path, "unknown neutrino format 'votable'")


# --------------------------------------------------------------------- background sample


def test_build_background_sample_ic40(ic40_raw: np.ndarray) -> None:
    sample = build_background_sample(shared_path(*RELEASE))
    assert len(sample) == 36900
    assert (np.diff(sample.zenith) >= 0).all()
    order = np.argsort(ic40_raw[:, 6], kind="stable")
    np.testing.assert_array_equal(sample.zenith, ic40_raw[order, 6])
    np.testing.assert_array_equal(sample.energy, 10.0 ** ic40_raw[order, 1])
    np.testing.assert_array_equal(sample.sigma, ic40_raw[order, 2])
    meta = sample.meta
    assert meta["n_events"] == 36900 and meta["seasons"] == ["IC40"]
    assert meta["source_files"] == ["events/IC40_exp.csv", "uptime/IC40_exp.csv"]
    assert meta["source_sha256"][0].startswith("a341f03af913")  # data README
    assert meta["livetime_s"] / 86400 == pytest.approx(376.36031, abs=1e-5)  # data README
    assert meta["rate_hz"] == pytest.approx(36900 / meta["livetime_s"], rel=1e-12)


def test_background_sample_write_read(tmp_path: Path) -> None:
    sample = build_background_sample([shared_path(*IC40)])
    first, second = tmp_path / "a.h5", tmp_path / "b.h5"
    sample.write(first)
    back = read_background_sample(first)
    for name in ("zenith", "energy", "sigma"):
        np.testing.assert_array_equal(getattr(back, name), getattr(sample, name).astype(np.float32))
    assert back.meta == sample.meta
    back.write(second)
    assert first.read_bytes() == second.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5", "b.h5"]


def test_background_sample_rejects(tmp_path: Path) -> None:
    garbage, partial = tmp_path / "garbage.h5", tmp_path / "partial.h5"
    garbage.write_bytes(bytes(range(256)))
    with h5py.File(partial, "w") as f:
        f["zenith_deg"] = np.zeros(3)
    cases = [
        (tmp_path / "missing.h5", "not a readable HDF5 background sample"),
        (garbage, "not a readable HDF5 background sample"),
        (partial, "no dataset energy_gev"),
    ]
    for path, fragment in cases:
        with pytest.raises(InputError) as err:
            read_background_sample(path)
        assert_one_line_error(err, path, fragment)


def test_default_background_sample_is_the_ic40_build() -> None:
    packaged = default_background_sample()
    assert len(packaged) == packaged.meta["n_events"] == 36900
    assert packaged.meta["seasons"] == ["IC40"]
    built = build_background_sample(shared_path(*RELEASE))
    for name in ("zenith", "energy", "sigma"):
        np.testing.assert_array_equal(
            getattr(packaged, name), getattr(built, name).astype(np.float32)
        )
    assert {k: v for k, v in packaged.meta.items() if k != "created_by"} == {
        k: v for k, v in built.meta.items() if k != "created_by"
    }


# ---------------------------------------------------------------------------------- CLI


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "llama.cli.main", "neutrino-background", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_cli_builds_the_sample(tmp_path: Path) -> None:
    out = tmp_path / "bg.h5"
    done = run_cli("--release", str(shared_path(*RELEASE)), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1
    assert "36900 events, seasons IC40, livetime 376.360 d, rate 1.1348e-03 Hz" in done.stdout
    assert len(read_background_sample(out)) == 36900


def test_cli_nonexistent_release(tmp_path: Path) -> None:
    missing, out = tmp_path / "no-such-release", tmp_path / "bg.h5"
    done = run_cli("--release", str(missing), "-o", str(out))
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr and str(missing) in done.stderr
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------- LLAMA's own O4 files, IceCube alerts

#: A neutrino list in the exact shape of a real LLAMA O4 file (string run ids, archival keys
#: null for a live event, blinded): positions and times made up, shape as the original wrote.
O4_SHAPED = {
    "triggers": [
        {"azimuth": 173.62, "dec": -12.57, "energy": 1834.2, "event": 45112783, "file": None,
         "mjd": 60991.6381, "ra": 211.08, "run": "141207", "sigma": 0.83, "subevent": None,
         "type": "blinded", "zenith": 77.43},
        {"azimuth": 12.9, "dec": 31.2, "energy": 611.0, "event": 5532, "file": None,
         "mjd": 60991.6390, "ra": 35.5, "run": 141207, "sigma": 1.9, "subevent": None,
         "type": "blinded", "zenith": 121.2},
    ],
    "complete": True,
}


def test_o4_shaped_list_is_read_and_written(tmp_path: Path) -> None:
    path = tmp_path / "icecube_neutrino_list.json"
    path.write_text(json.dumps(O4_SHAPED))
    assert detect_format(path) == "llama"
    nl = read_neutrinos(path)
    assert nl.meta["complete"] is True
    assert list(nl.run) == [141207, 141207] and list(nl.type) == ["blinded", "blinded"]
    assert list(nl.subevent) == [None, None] and list(nl.file) == [None, None]
    out = tmp_path / "written.json"
    write_llama_json(nl, out, complete=True)
    written = json.loads(out.read_text())
    assert set(written) == {"triggers", "complete"} and written["complete"] is True
    for mine, original in zip(written["triggers"], O4_SHAPED["triggers"], strict=True):
        assert set(mine) == set(original)
        assert {k: v for k, v in mine.items() if k != "run"} == {
            k: v for k, v in original.items() if k != "run"}
        assert str(mine["run"]) == str(original["run"])
    # the older bare list of the same dicts, and archival keys kept as they are
    archival = [{**O4_SHAPED["triggers"][0], "subevent": 3, "file": "Level2_IC86.i3.zst"}]
    path.write_text(json.dumps(archival))
    nl = read_llama_json(path)
    assert (nl.subevent[0], nl.file[0], "complete" in nl.meta) == (3, "Level2_IC86.i3.zst", False)
    assert nl.to_records()[0]["file"] == "Level2_IC86.i3.zst"
    for bad, message in (({"triggers": [], "complete": "yes"}, "'complete' is not true or false"),
                         ([{**archival[0], "run": "14x"}], "run is not an integer")):
        path.write_text(json.dumps(bad))
        with pytest.raises(InputError) as err:
            read_llama_json(path)
        assert_one_line_error(err, path, message)


def test_icecube_gold_bronze_track_alert_is_a_neutrino_list() -> None:
    nl = read_neutrinos(shared_path(*BRONZE))
    assert len(nl) == 1 and (nl.run[0], nl.event[0]) == (137840, 57034692)
    assert (nl.ra[0], nl.dec[0]) == (345.82, 9.01)
    assert nl.sigma[0] == pytest.approx(0.5 / R90_PER_SIGMA)
    assert nl.energy[0] == pytest.approx(127.29e3)  # TeV -> GeV
    assert nl.zenith[0] == pytest.approx(99.01)
    from astropy.time import Time

    assert nl.mjd[0] == pytest.approx(Time("2023-04-16T05:22:26.150574", scale="utc").mjd,
                                      abs=1e-9)


SKYSCAN = ("icecube", "skymap_scanner_results")


def test_skymap_scanner_results_are_a_neutrino_list() -> None:
    """SkyScanResult JSON (icecube-skyreader): best-fit pixel, metadata, E_tot, sigma from the
    90% Wilks area of the finest scan (here the NSIDE-1 test resolution: one 3438 deg2 pixel)."""
    path = shared_path(*SKYSCAN, "json", "millipede_wilks",
                       "run00136766.evt000007637140.neutrino_1.json")
    assert detect_format(path) == "skyscan"
    nl = read_neutrinos(path)
    assert (nl.run[0], nl.event[0]) == (136766, 7637140)
    assert nl.mjd[0] == pytest.approx(59754.67588432013)
    assert (nl.ra[0], nl.dec[0]) == pytest.approx((225.0, 41.8103149))
    one_pixel = 4 * math.pi / 12 * (180 / math.pi) ** 2
    assert nl.sigma[0] == pytest.approx(math.sqrt(one_pixel / math.pi) / R90_PER_SIGMA)
    assert nl.energy[0] > 0 and nl.type[0] == "observation"
    # the legacy npz layout carries no event metadata: one line saying so
    legacy = shared_path(*SKYSCAN, "npz", "run00136766-evt000007637140-GOLD-8_64_512.npz")
    with pytest.raises(InputError) as err:
        read_neutrinos(legacy)
    assert_one_line_error(err, legacy, "metadata")
