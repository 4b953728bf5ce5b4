"""LVK alert readers against every real notice in ../shared/data/gw_alerts (README 2a, 2b)."""

from __future__ import annotations

import base64
import json
import sys

import pytest
from conftest import shared_path

from llama.errors import InputError
from llama.io.gwalert import decode_gwalert, extract_skymap, gwalert_skymap_info, read_gwalert
from llama.io.voevent import SKYMAP_INFO_KEYS, parse_voevent, read_voevent

CBC, BURST = "CBC", "Burst"
UG = "https://emfollow.docs.ligo.org/userguide/_static/"
GDB = "https://gracedb.ligo.org/api/superevents/"
MS_TIME = "2018-11-01T22:22:46.654437Z"
MS_FAR = 9.11069936486e-14

# file -> (graceid, alert_type, role, packet, FAR, pipeline, group, instruments, skymap_url,
#          ivorn suffix, event time)
VOEVENTS = {
    "G298048-1-Initial_GW170817.xml": (
        "G298048", "Initial", "observation", 151, 3.47773444765e-12, "gstlal", CBC, ["H1"],
        None, "gcn_sender#G298048-1-Initial", "2017-08-17T12:41:04.445710Z"),
    "GW190425_S190425z_initial.xml": (
        "S190425z", "Initial", "observation", 151, 4.53764787126e-13, "gstlal", CBC, ["L1", "V1"],
        "skyportal/tests/data/bayestar.fits.gz", "LVC#S190425z-1-Initial",
        "2019-04-25T08:18:05.017147"),
    "GW190814_S190814bv.xml": (
        "S190814bv", "Update", "observation", 152, 2.03262501422e-33, "gstlal", CBC,
        ["H1", "L1", "V1"], "data/LALInference.v1.fits.gz", "LVC#S190814bv-5-Update",
        "2019-08-14T21:10:39.012957"),
    "MS181101ab-1-EarlyWarning.xml": (
        "MS181101ab", "EarlyWarning", "test", 163, MS_FAR, "gstlal", CBC, ["H1", "L1", "V1"],
        UG + "bayestar.multiorder.fits,0", "LVC#MS181101ab-1-EarlyWarning", MS_TIME),
    "MS181101ab-1-Preliminary_O3format.xml": (
        "MS181101ab", "Preliminary", "test", 150, MS_FAR, "gstlal", CBC, ["H1", "L1"],
        UG + "bayestar.fits.gz", "LVC#MS181101ab-1-Preliminary", MS_TIME.rstrip("Z")),
    "MS181101ab-2-Preliminary.xml": (
        "MS181101ab", "Preliminary", "test", 150, MS_FAR, "gstlal", CBC, ["H1", "L1", "V1"],
        UG + "bayestar.multiorder.fits,0", "LVC#MS181101ab-2-Preliminary", MS_TIME),
    "MS181101ab-3-Initial.xml": (
        "MS181101ab", "Initial", "test", 151, MS_FAR, "gstlal", CBC, ["H1", "L1", "V1"],
        UG + "bayestar.multiorder.fits,0", "LVC#MS181101ab-3-Initial", MS_TIME),
    "MS181101ab-4-Update.xml": (
        "MS181101ab", "Update", "test", 152, MS_FAR, "gstlal", CBC, ["H1", "L1", "V1"],
        UG + "bayestar.multiorder.fits,0", "LVC#MS181101ab-4-Update", MS_TIME),
    "MS181101ab-5-Retraction.xml": (
        "MS181101ab", "Retraction", "test", 164, None, None, None, [], None,
        "LVC#MS181101ab-5-Retraction", MS_TIME),
    "MS181101ab-6-Update.xml": (
        "MS181101ab", "Update", "test", 152, MS_FAR, "gstlal", CBC, ["H1", "L1", "V1"],
        UG + "bayestar.multiorder.fits,0", "LVC#MS181101ab-6-Update", MS_TIME),
    "O4_Retraction_mwa_trigger_edited.xml": (
        "S230518h", "Retraction", "observation", 164, None, None, None, [], None,
        "LVC#S230518h-2-Retraction", "2023-05-24T20:22:41Z"),
    "S191216ap_initial.xml": (
        "S191216ap", "Initial", "observation", 151, 1.13032215264e-23, "gstlal", CBC, ["H1", "V1"],
        GDB + "S191216ap/files/bayestar.fits.gz,0", "LVC#S191216ap-2-Initial",
        "2019-12-16T21:33:38.472999"),
    "S191216ap_update.xml": (
        "S191216ap", "Update", "observation", 152, 1.130322152639973e-23, "gstlal", CBC,
        ["H1", "V1"], GDB + "S191216ap/files/LALInference.fits.gz,0", "LVC#S191216ap-3-Update",
        "2019-12-16T21:33:38.472999"),
    "S230518h-1-Preliminary.xml": (
        "S230518h", "Preliminary", "observation", 150, 3.218261352069347e-10, "pycbc", CBC,
        ["H1", "L1"], GDB + "S230518h/files/bayestar.multiorder.fits",
        "LVC#S230518h-1-Preliminary", "2023-05-18T12:59:08Z"),
    "S230518h-2-Initial.xml": (
        "S230518h", "Initial", "observation", 151, 3.218261352069347e-10, "pycbc", CBC,
        ["H1", "L1"], GDB + "S230518h/files/Bilby.multiorder.fits,0", "LVC#S230518h-2-Initial",
        "2023-05-18T12:59:08Z"),
    "S230524x-1-EarlyWarning.xml": (
        "S230524x", "EarlyWarning", "observation", 163, 7.224443905955801e-08, "pycbc", CBC,
        ["H1", "L1"], GDB + "S230524x/files/bayestar.multiorder.fits,0",
        "LVC#S230524x-1-EarlyWarning", "2023-05-24T20:22:41Z"),
    "S230531f-1-Preliminary_burst.xml": (
        "S230531f", "Preliminary", "observation", 150, 8.539795619003813e-07, "oLIB", BURST,
        ["H1", "L1"], GDB + "S230531f/files/olib.multiorder.fits,0",
        "LVC#S230531f-1-Preliminary", "2023-05-31T00:21:25Z"),
}

MS_EVENT = ("2018-11-01T22:22:46.654Z", MS_FAR, "gstlal", CBC, ["H1", "L1", "V1"])
# file -> (graceid, alert_type, notice time, event facts as in MS_EVENT or None)
MS = "MS181101ab"
GWALERTS = {
    "MS181101ab-earlywarning.json": (MS, "EarlyWarning", "2018-11-01T22:34:20Z", MS_EVENT),
    "MS181101ab-preliminary.json": (MS, "Preliminary", "2018-11-01T22:34:49Z", MS_EVENT),
    "MS181101ab-preliminary.avro": (MS, "Preliminary", "2018-11-01T22:34:49Z", MS_EVENT),
    "MS181101ab-initial.json": (MS, "Initial", "2018-11-01T22:36:25Z", MS_EVENT),
    "MS181101ab-update.json": (MS, "Update", "2018-11-01T22:36:25Z", MS_EVENT),
    "MS181101ab-ext-update.json": (MS, "Update", "2018-11-01T22:36:25Z", MS_EVENT),
    "MS181101ab-retraction.json": (MS, "Retraction", "2018-11-01T23:36:23Z", None),
    "MS260605l-preliminary_skyportal.json": (
        "MS260605l", "Preliminary", "2026-06-05T12:01:07Z",
        ("2026-06-05T11:57:26.395Z", 5.176954877338635e-16, "gstlal", CBC, ["H1", "L1", "V1"])),
    "MS260605l-retraction_skyportal.json": (
        "MS260605l", "Retraction", "2026-06-05T12:10:57Z", None),
}

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<VOEvent role="test"><What>&lol3;</What></VOEvent>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE v [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><VOEvent>&xxe;</VOEvent>"""


def voevent_bytes(name: str) -> bytes:
    return shared_path("gw_alerts", "voevent", name).read_bytes()


def gwalert_path(name: str):
    return shared_path("gw_alerts", "gcn_kafka_json", name)


def one_line_error(call) -> str:
    """Run ``call``, expect an InputError, return its single-line message."""
    with pytest.raises(InputError) as err:
        call()
    message = str(err.value)
    assert message and "\n" not in message
    return message


def test_every_shared_notice_is_covered():
    names = {p.name for p in shared_path("gw_alerts", "voevent").glob("*.xml")}
    assert names == set(VOEVENTS) and len(names) == 17
    names = {p.name for p in shared_path("gw_alerts", "gcn_kafka_json").iterdir()}
    assert names == set(GWALERTS)


@pytest.mark.parametrize("name", sorted(VOEVENTS))
def test_voevent_facts(name):
    (graceid, alert_type, role, packet, far, pipeline, group, instruments, url, ivorn,
     event_time) = VOEVENTS[name]
    info = read_voevent(shared_path("gw_alerts", "voevent", name))
    assert tuple(info) == SKYMAP_INFO_KEYS
    assert info["graceid"] == graceid
    assert info["alert_type"] == alert_type
    assert info["role"] == role
    assert info["packet_type"] == packet
    assert info["far"] == far
    assert info["pipeline"] == pipeline
    assert info["group"] == group
    assert info["instruments"] == instruments
    assert info["skymap_url"] == url
    assert info["skymap_source"] == ("url" if url else None)
    assert info["ivorn"] == "ivo://gwnet/" + ivorn
    assert info["event_time_iso"] == event_time
    assert isinstance(info["event_time_gps"], float)
    assert info["retraction"] is (alert_type == "Retraction")
    json.dumps(info, allow_nan=False)  # skymap_info.json material


def test_voevent_details():
    gw170817 = read_voevent(shared_path("gw_alerts", "voevent", "G298048-1-Initial_GW170817.xml"))
    assert gw170817["event_time_gps"] == pytest.approx(1187008882.4457, abs=1e-4)
    assert gw170817["notice_time_iso"] == "2017-08-17T13:08:15"
    assert gw170817["properties"] == {"HasNS": 1.0, "HasRemnant": 1.0}  # O2 ProbHasNS params
    assert gw170817["significant"] is None and gw170817["classification"] == {}

    nsbh = parse_voevent(voevent_bytes("S230518h-2-Initial.xml"))
    assert nsbh["classification"]["NSBH"] == pytest.approx(0.8642645059209272)
    assert nsbh["properties"] == {"HasNS": 1.0, "HasRemnant": 0.0, "HasMassGap": 0.0}
    assert nsbh["significant"] is True and nsbh["search"] == "AllSky"

    burst = parse_voevent(voevent_bytes("S230531f-1-Preliminary_burst.xml"))
    assert burst["classification"] == {} and burst["properties"] == {}
    assert burst["significant"] is False
    assert burst["central_frequency"] == pytest.approx(647.8765721887253)
    assert burst["duration"] == pytest.approx(0.008282986375970622)

    raven = parse_voevent(voevent_bytes("MS181101ab-6-Update.xml"))
    assert raven["external_coinc"]["observatory"] == "Fermi"
    assert raven["external_coinc"]["gcn_notice_id"] == 524666471
    assert raven["external_coinc"]["time_sky_position_coincidence_far"] == 6.410749524018777e-16
    assert raven["external_coinc"]["combined_skymap_url"] == UG + "combined-ext.multiorder.fits"

    retraction = parse_voevent(voevent_bytes("MS181101ab-5-Retraction.xml"))
    assert retraction["notice_time_iso"] == "2018-11-01T23:36:23Z"
    assert retraction["classification"] == {} and retraction["external_coinc"] is None


@pytest.mark.parametrize("name", sorted(GWALERTS))
def test_gwalert_facts(name):
    graceid, alert_type, notice_time, event = GWALERTS[name]
    alert = read_gwalert(gwalert_path(name))
    info = gwalert_skymap_info(alert, name)
    assert tuple(info) == SKYMAP_INFO_KEYS
    assert (info["graceid"], info["alert_type"], info["notice_time_iso"]) == (
        graceid, alert_type, notice_time)
    assert info["role"] == "test"  # MS = mock superevent
    assert info["packet_type"] == {"EarlyWarning": 163, "Preliminary": 150, "Initial": 151,
                                   "Update": 152, "Retraction": 164}[alert_type]
    assert info["skymap_url"] is None and info["ivorn"] is None
    skymap = extract_skymap(alert, name)
    if event is None:
        assert info["retraction"] is True and skymap is None and info["skymap_source"] is None
        assert info["event_time_iso"] is None and info["far"] is None
        return
    event_time, far, pipeline, group, instruments = event
    assert info["event_time_iso"] == event_time
    assert (info["far"], info["pipeline"], info["group"], info["instruments"]) == (
        far, pipeline, group, instruments)
    assert info["significant"] is True and info["skymap_source"] == "embedded"
    assert set(info["classification"]) == {"BNS", "NSBH", "BBH", "Terrestrial"}
    assert len(skymap) == 777600 and skymap.startswith(b"SIMPLE")
    json.dumps(info, allow_nan=False)


def test_gwalert_details():
    alert = read_gwalert(gwalert_path("MS181101ab-ext-update.json"))
    external = gwalert_skymap_info(alert)["external_coinc"]
    assert external["observatory"] == "Fermi" and external["gcn_notice_id"] == 524666471
    assert external["combined_skymap_embedded"] is True
    voevent = parse_voevent(voevent_bytes("MS181101ab-6-Update.xml"))["external_coinc"]
    assert {k: v for k, v in external.items() if "skymap" not in k} == {
        k: v for k, v in voevent.items() if "skymap" not in k}
    preliminary = gwalert_skymap_info(read_gwalert(gwalert_path("MS181101ab-preliminary.json")))
    assert preliminary["event_time_gps"] == pytest.approx(1225146184.654)


def test_avro_matches_json():
    avro = read_gwalert(gwalert_path("MS181101ab-preliminary.avro"))
    jsn = read_gwalert(gwalert_path("MS181101ab-preliminary.json"))
    assert gwalert_skymap_info(avro) == gwalert_skymap_info(jsn)
    assert extract_skymap(avro) == extract_skymap(jsn)


def test_truncated_avro():
    avro = gwalert_path("MS181101ab-preliminary.avro").read_bytes()
    for cut in (10, 1000, len(avro) // 2, len(avro) - 10):
        assert "Avro" in one_line_error(lambda c=cut: decode_gwalert(avro[:c], "cut.avro"))


def test_avro_without_fastavro_says_so(monkeypatch):
    data = gwalert_path("MS181101ab-preliminary.avro").read_bytes()
    monkeypatch.setitem(sys.modules, "fastavro", None)  # makes `import fastavro` fail
    assert "fastavro" in one_line_error(lambda: decode_gwalert(data, "x.avro"))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "empty"),
        (b"  \n", "empty"),
        (BILLION_LAUGHS, "unsafe XML"),
        (EXTERNAL_ENTITY, "unsafe XML"),
        (b"<html><body/></html>", "not a VOEvent"),
        (b"<VOEvent><What>", "not well-formed"),
        (b"\xff\xfe\x00garbage", "not well-formed"),
    ],
)
def test_bad_xml(data, expected):
    assert expected in one_line_error(lambda: parse_voevent(data, "bad.xml"))


def test_bad_voevents_from_real_files():
    good = voevent_bytes("S230518h-1-Preliminary.xml")
    assert "not well-formed" in one_line_error(lambda: parse_voevent(good[:1000], "cut.xml"))
    icecube = shared_path("icecube", "alerts_voevent", "sample_astrotrack_alert.xml")
    assert "not an LVK" in one_line_error(lambda: read_voevent(icecube))
    edits = {
        b'value="S230518h"': (b'value="../../etc"', "invalid event id"),
        b'role="observation"': (b'role="utility"', "role"),
        b'value="3.218261352069347e-10"': (b'value="often"', "not a number"),
        b'name="FAR"': (b'name="FAR_"', "lacks FAR"),
        b'value="Preliminary"': (b'value="Final"', "unknown alert type"),
        b'value="150"': (b'value="173"', "Packet_Type"),
        b"<ISOTime>2023-05-18T12:59:08Z": (b"<ISOTime>yesterday", "ISO 8601"),
    }
    for old, (new, expected) in edits.items():
        assert old in good
        message = one_line_error(lambda o=old, n=new: parse_voevent(good.replace(o, n), "e.xml"))
        assert expected in message and message.startswith("e.xml: ")
    negative = good.replace(b'value="3.218261352069347e-10"', b'value="-1"')
    assert "FAR" in one_line_error(lambda: parse_voevent(negative, "n.xml"))


def test_bad_gwalerts_from_real_files():
    raw = gwalert_path("MS181101ab-preliminary.json").read_bytes()
    assert "not valid JSON" in one_line_error(lambda: decode_gwalert(raw[:5000], "cut.json"))
    assert "empty" in one_line_error(lambda: decode_gwalert(b"", "empty.json"))
    assert "JSON object" in one_line_error(lambda: decode_gwalert(b"[1, 2]", "list.json"))

    alert = json.loads(raw)
    cases = []
    for key in ("superevent_id", "alert_type", "event"):
        cases.append(({k: v for k, v in alert.items() if k != key}, repr(key)))
    for key in ("time", "far", "instruments"):
        event = {k: v for k, v in alert["event"].items() if k != key}
        cases.append(({**alert, "event": event}, repr(key)))
    cases += [
        ({**alert, "event": None}, "has no event"),
        ({**alert, "superevent_id": "MS181101ab/../x"}, "invalid event id"),
        ({**alert, "alert_type": "FINAL"}, "unknown alert type"),
        ({**alert, "event": {**alert["event"], "far": "high"}}, "not a number"),
        ({**alert, "event": {**alert["event"], "instruments": "H1,L1"}}, "instruments"),
        ({**alert, "event": {**alert["event"], "time": "soon"}}, "ISO 8601"),
    ]
    for bad, expected in cases:
        assert expected in one_line_error(lambda b=bad: gwalert_skymap_info(b, "bad.json"))
    not_base64 = {**alert, "event": {**alert["event"], "skymap": "not*base64!"}}
    assert "base64" in one_line_error(lambda: extract_skymap(not_base64, "b.json"))
    not_fits = {**alert, "event": {**alert["event"], "skymap": base64.b64encode(b"hi").decode()}}
    assert "FITS" in one_line_error(lambda: extract_skymap(not_fits, "f.json"))


# ------------------------------------------------------------- strict checks (issue 8)

#: (event field, value as raw JSON text) that made a gwalert be accepted or crash before
ISSUE_8_GWALERTS = [
    *[("time", v) for v in ("null", "[]", "{}", '""', "NaN")],
    *[(k, v) for k in ("group", "pipeline") for v in ("1", "null", "[]", "NaN")],
    *[("instruments", v) for v in ("null", "{}", '""', '["X1"]', '["H1", "H1"]', "[]")],
    *[(k, "true") for k in ("far", "duration", "central_frequency")],
    *[(k, "NaN") for k in ("significant", "search", "far")],
    ("duration", "1" + "0" * 4000),
    ("far", "1" + "0" * 5000),
    ("far", "0"),
    ("classification", '{"BNS": 1.5}'),
    ("properties", '{"HasNS": -0.5}'),
]


def raw_json(alert: dict, field: str, value: str) -> bytes:
    """``alert`` as JSON with ``event[field]`` written as the raw JSON text ``value``."""
    marker = "@@RAW@@"
    alert = {**alert, "event": {**alert["event"], field: marker}}
    return json.dumps(alert).replace(f'"{marker}"', value).encode()


@pytest.mark.parametrize("field, value", ISSUE_8_GWALERTS)
def test_gwalert_fields_are_checked_strictly(field, value):
    alert = json.loads(gwalert_path("MS181101ab-preliminary.json").read_bytes())
    data = raw_json(alert, field, value)
    message = one_line_error(lambda: gwalert_skymap_info(decode_gwalert(data, "x.json"), "x.json"))
    assert message.startswith("x.json: ")


def test_gwalert_top_level_nan_and_retraction_event():
    alert = json.loads(gwalert_path("MS181101ab-preliminary.json").read_bytes())
    nan_time = json.dumps({**alert, "time_created": "@"}).replace('"@"', "NaN").encode()
    assert "NaN" in one_line_error(lambda: decode_gwalert(nan_time, "t.json"))
    retraction = json.loads(gwalert_path("MS181101ab-retraction.json").read_bytes())
    with_event = {**retraction, "event": alert["event"]}
    assert "event null" in one_line_error(lambda: gwalert_skymap_info(with_event, "r.json"))


@pytest.mark.parametrize(
    "edit, expected",
    [
        ((b'name="Packet_Type" value="150"', b'name="Packet_Type" value="' + b"9" * 5000 + b'"'),
         "Packet_Type"),
        ((b"encoding='UTF-8'", b"encoding='klingon'"), "unreadable XML"),
        ((b'name="Instruments" value="H1,L1"', b'name="Instruments" value="H1,X9"'), "X9"),
        ((b'name="Group" value="CBC"', b'name="Group" value="cbc"'), "CBC or Burst"),
        ((b"<ISOTime>2023-05-18T12:59:08Z", b"<ISOTime>2223-05-18T12:59:08Z"), "between"),
        ((b'name="FAR" value="3.218261352069347e-10"', b'name="FAR" value="1e400"'), "not finite"),
    ],
)
def test_voevent_values_are_checked_strictly(edit, expected):
    good = voevent_bytes("S230518h-1-Preliminary.xml")
    assert edit[0] in good
    message = one_line_error(lambda: parse_voevent(good.replace(*edit), "v.xml"))
    assert message.startswith("v.xml: ") and expected in message


def tree(root) -> dict:
    """Bytes of every file under ``root`` (None for directories)."""
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("corruption", ["truncated", "nan", "negative", "header", "base64"])
def test_gwalert_with_corrupt_embedded_map_leaves_the_event_byte_identical(corruption, tmp_path):
    from llama.ingest import ingest_file

    good = gwalert_path("MS181101ab-preliminary.json")
    ingest_file(good, run_dir=tmp_path / "run", role="test")
    before = tree(tmp_path / "run")
    alert = json.loads(good.read_bytes())
    fits = base64.b64decode(alert["event"]["skymap"])
    rows = fits.index(b"END" + b" " * 77, 2880) // 2880 * 2880 + 2880  # first table row
    corrupt = {
        "truncated": fits[: len(fits) // 2],
        "nan": fits[:rows + 8] + b"\x7f\xf8" + b"\0" * 6 + fits[rows + 16:],  # PROBDENSITY[0]
        "negative": fits[:rows + 8] + b"\xbf\xf0" + b"\0" * 6 + fits[rows + 16:],
        "header": fits.replace(b"NUNIQ   ", b"NUNIQUE ", 1),
    }.get(corruption)
    encoded = base64.b64encode(corrupt).decode() if corrupt else alert["event"]["skymap"][:-5] + "*"
    later = {**alert, "time_created": "2018-11-01T23:00:00Z",
             "event": {**alert["event"], "skymap": encoded}}
    path = tmp_path / "MS181101ab-update.json"
    path.write_text(json.dumps(later))
    assert str(path) in one_line_error(lambda: ingest_file(path, run_dir=tmp_path / "run"))
    assert tree(tmp_path / "run") == before
