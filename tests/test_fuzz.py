"""Fuzz suite: mutated real notices, sky maps, neutrino lists and hostile ids, through the CLIs.

Deterministic (fixed SEED). Every input starts from a real file of ../shared/data and is
mutated: byte flips, truncation, wrong types, NaN/inf, huge numbers, deep nesting, bad
encodings, entity bombs, bad base64, corrupt embedded or attached sky maps. For each input:

- no traceback (in-process: no exception escapes ``main``; subprocess: none on stderr);
- a rejected input gives exactly one error line naming the input file and a non-zero exit;
- an input known to be invalid (``expect="invalid"``) is rejected;
- a rejected input leaves the run directory (the existing event, and everything else)
  byte-identical; an accepted one leaves a consistent event (skymap_info.json strict JSON with
  plausible values, its sky map readable, finite, normalised);
- no input takes longer than HANG_S.

CI runs a few hundred inputs (CI_COUNTS); ``LLAMA_FUZZ_ALL=1`` runs thousands (FULL_COUNTS)
and prints the counts per kind (run with ``-s`` to see them).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import math
import os
import random
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from conftest import shared_path
from test_cli import llama, llama_subprocess
from test_tasks import EVENT_GPS, ic40_stretch

from llama.io.neutrinos import write_llama_json
from llama.io.skymap import read_skymap, write_skymap
from llama.io.skymap_geometry import SkyMap
from llama.io.voevent import GPS_RANGE, KNOWN_INSTRUMENTS
from llama.significance import parse_event_time

SEED = 20261130
FULL = os.environ.get("LLAMA_FUZZ_ALL") == "1"
CI_COUNTS = {"gwalert": 90, "voevent": 90, "skymap": 60, "embedded": 40, "ids": 40, "neutrinos": 30}
FULL_COUNTS = {
    "gwalert": 1200, "voevent": 1200, "skymap": 600, "embedded": 400, "ids": 200, "neutrinos": 300,
}
COUNTS = FULL_COUNTS if FULL else CI_COUNTS
#: Invalid inputs of each kind also run through a real interpreter (`python -m llama.cli.main`).
SUBPROCESS_PER_KIND = int(os.environ.get("LLAMA_FUZZ_SUBPROCESSES", "1"))
HANG_S = 20.0
EVENT = "MS181101ab"
MOC_MAP = "MS181101ab_userguide_bayestar.multiorder.fits"
MS_TIME = "2018-11-01T22:22:46.654Z"  # its DATE-OBS
GOOD_VOEVENT = "MS181101ab-2-Preliminary.xml"
GOOD_GWALERT = "MS181101ab-preliminary.json"
RAW = "\x00raw:"  # marks a string to be replaced by raw JSON text (NaN, 10**4000, ...)


@dataclass
class Case:
    """One fuzz input: a file name, its bytes and what it must give ('invalid' or 'any')."""

    name: str
    data: bytes
    expect: str  # "invalid": must be rejected; "any": either, but consistent


# ------------------------------------------------------------------------------ mutations


def raw(text: str) -> str:
    """A value written into the JSON as the raw text ``text``."""
    return RAW + text


def dump(obj: Any) -> bytes:
    """JSON of ``obj`` with the raw() values spliced in verbatim."""
    text = json.dumps(obj, indent=2)
    return re.sub(r'"\\u0000raw:((?:[^"\\]|\\.)*)"', lambda m: json.loads(f'"{m[1]}"'), text).encode()


DEEP = raw("[" * 200_000 + "]" * 200_000)
HUGE_INT = raw("9" * 5000)
BAD_NUMBERS = [raw("NaN"), raw("Infinity"), raw("-Infinity"), raw("1e400"), HUGE_INT, True, False,
               "1e-9", [], {}, -1.0, 0, DEEP]
BAD_STRINGS = [raw("NaN"), None, 1, 2.5, True, [], {}, "", "a\x00b", "x" * 5000, DEEP]
BAD_TIMES = [None, [], {}, "", 1.5, raw("NaN"), "yesterday", "2018-13-45T99:99:99Z",
             "1970-01-01T00:00:00Z", "2200-01-01T00:00:00Z", "2018-11-01", "2018-11-01T22:22:46+05:00",
             "٢٠١٨-11-01T22:22:46Z", "9" * 5000]
BAD_PROBABILITIES = [[], "x", raw("NaN"), 1, {"BNS": 1.5}, {"BNS": -0.1}, {"BNS": raw("NaN")},
                     {"BNS": True}, {"BNS": "0.5"}, {"BNS": raw("Infinity")}, {"BNS": HUGE_INT}]
BAD_POSITIVE = [True, raw("NaN"), -1, 0, "1", HUGE_INT, raw("Infinity"), raw("1e400"), [], {}]
HOSTILE_IDS = [
    "S١٨١١٠١ab", "S１８１１０１ab", "MS181101ab/../x", "../MS181101ab", "MS181101ab\x00",
    "MS181101ab\n", " MS181101ab", "MS181101AB", "S181101", "S1811011ab", "ＭS181101ab",
    "MS181101ab\u200b", "S" * 500, "", ".", "..", "/", "G" + "9" * 11, "SIM-" + "x" * 61, "SIM-a/b",
    "SIM-ä", "E", "Ｅ123", "T12\u0663", "MS181101ab\\..", "~", "$HOME", "MS181101abcd",
]

#: (path in the alert, values that make an igwn.gwalert alert invalid)
GWALERT_INVALID: list[tuple[tuple[str, ...], list[Any]]] = [
    (("superevent_id",), [*BAD_STRINGS, *HOSTILE_IDS[:8]]),
    (("alert_type",), [raw("NaN"), 1, "", "FOO", None, [], "PRELIMINARY" * 10]),
    (("time_created",), BAD_TIMES),
    (("urls",), [[], "x", 1, {"gracedb": 1}, {"gracedb": raw("NaN")}]),
    (("external_coinc",), [[], "x", 1, {"time_difference": raw("NaN")}, {"time_difference": "1"},
                           {"gcn_notice_id": "9" * 5000}, {"gcn_notice_id": True},
                           {"observatory": raw("NaN")}, {"combined_skymap": 5}]),
    (("event",), [None, [], "x", 1, True]),
    (("event", "time"), BAD_TIMES),
    (("event", "far"), BAD_NUMBERS),
    (("event", "significant"), [raw("NaN"), 1, 0, "true", None, []]),
    (("event", "instruments"), [None, {}, "", [], ["X1"], ["H1", "H1"], [1], "H1,L1", raw("NaN"),
                                ["h1"], [None]]),
    (("event", "group"), [raw("NaN"), None, 1, "cbc", "", [], {}, "Test"]),
    (("event", "pipeline"), BAD_STRINGS),
    (("event", "search"), [raw("NaN"), 1, [], {}, "", True]),
    (("event", "classification"), BAD_PROBABILITIES),
    (("event", "properties"), BAD_PROBABILITIES),
    (("event", "duration"), BAD_POSITIVE),
    (("event", "central_frequency"), BAD_POSITIVE),
    (("event", "skymap"), [1, [], {}, True, "not base64!!", "", "U0lN", "QUJD"]),
]
GWALERT_REQUIRED = [("superevent_id",), ("alert_type",), ("time_created",), ("event",),
                    ("event", "time"), ("event", "far"), ("event", "instruments"),
                    ("event", "group"), ("event", "pipeline"), ("event", "significant")]

#: VOEvent Param name -> values that make the notice invalid (XML-escaped as needed)
VOEVENT_INVALID: dict[str, list[str]] = {
    "FAR": ["nan", "inf", "-1", "0", "", "abc", "1e400", "9" * 5000, "-inf", "true"],
    "Packet_Type": ["9" * 5000, "abc", "١٥٠", "", "149", "-150", "150.0"],
    "Instruments": ["", "X1", "H1,H1", "H1;L1", ",", "h1"],
    "Group": ["cbc", "", "Test", "CBC,Burst"],
    "Pipeline": ["", "x" * 5000, "a&#1;b"],
    "GraceID": ["S١٨١١٠١ab", "../MS181101ab", "", "MS181101ab/x", "x" * 500],
    "AlertType": ["", "Foo", "x" * 500],
    "Significant": ["2", "yes", "-1"],
    "HasNS": ["1.5", "-0.1", "nan", "inf", "x"],
    "BNS": ["1.5", "-0.1", "nan", "inf", "x"],
    "Duration": ["0", "-1", "nan", "inf", "x", "1e400"],
    "frequency": ["0", "-1", "nan", "inf", "x"],
}
VOEVENT_SPECIALS: list[tuple[str, Callable[[bytes], bytes]]] = [  # all make a notice invalid
    ("bad-encoding", lambda d: re.sub(rb"encoding=['\"][^'\"]*['\"]", b"encoding='klingon'", d, count=1)
     if b"encoding=" in d[:100] else b"<?xml version='1.0' encoding='klingon'?>\n" + d),
    ("billion-laughs", lambda d: _after_declaration(
        d, b'<!DOCTYPE v [<!ENTITY a "aaaaaaaaaa">' + b"".join(
            b'<!ENTITY %c "%s">' % (98 + i, (b"&%c;" % (97 + i)) * 10) for i in range(8))
        + b"]>", b"&i;")),
    ("external-entity", lambda d: _after_declaration(
        d, b'<!DOCTYPE v [<!ENTITY x SYSTEM "file:///etc/passwd">]>', b"&x;")),
    ("nul-bytes", lambda d: d.replace(b"<What>", b"<What>\x00", 1)),
    ("role-utility", lambda d: re.sub(rb'role="[a-z]+"', b'role="utility"', d, count=1)),
    ("isotime-garbage", lambda d: re.sub(rb"<ISOTime>[^<]*", b"<ISOTime>2018-02-30T25:61:00", d, count=1)),
    ("isotime-year-3000", lambda d: re.sub(rb"<ISOTime>[^<]*", b"<ISOTime>3000-01-01T00:00:00", d, count=1)),
    ("no-what", lambda d: re.sub(rb"<What>.*</What>", b"", d, count=1, flags=re.S)),
    ("root-not-voevent", lambda d: re.sub(rb"VOEvent", b"VOEvemt", d)),
]


def _after_declaration(data: bytes, doctype: bytes, entity_use: bytes) -> bytes:
    """Insert a DOCTYPE after the XML declaration and use its entity in the first Param value."""
    declaration = re.match(rb"<\?xml[^>]*\?>", data)
    at = declaration.end() if declaration else 0
    data = data[:at] + b"\n" + doctype + data[at:]
    return re.sub(rb'(<Param name="Pipeline"[^>]*value=")[^"]*', rb"\g<1>" + entity_use, data, count=1)


def byte_mutations(rng: random.Random, data: bytes, what: str) -> Case:
    """A random unstructured mutation: byte flips, truncation, junk insertion or deletion.
    A truncation that cuts into the content must be rejected; the others may be either."""
    choice = rng.randrange(4)
    size = len(data)
    if choice == 0:
        buf = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(size)] ^= 1 << rng.randrange(8)
        return Case(f"{what}-flip", bytes(buf), "any")
    if choice == 1:
        end = len(data.rstrip())
        cut = rng.randrange(1, end - 1)
        return Case(f"{what}-truncated-{cut}", data[:cut], "invalid")
    if choice == 2:
        at = rng.randrange(size)
        junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        return Case(f"{what}-junk", data[:at] + junk + data[at:], "any")
    at = rng.randrange(size)
    return Case(f"{what}-deleted", data[:at] + data[at + rng.randint(1, 256):], "any")


def set_path(obj: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A deep copy of ``obj`` with ``path`` set to ``value`` (None path value: removed)."""
    obj = json.loads(json.dumps(obj))
    target = obj
    for key in path[:-1]:
        target = target[key]
    if value is _REMOVE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return obj


_REMOVE = object()


# ------------------------------------------------------------------------ FITS mutations


@dataclass
class FitsTemplate:
    """A real sky map's bytes and where its table lives: for header and data mutations."""

    name: str
    data: bytes
    header_at: int  # offset of the table HDU's header
    data_at: int  # offset of the table's rows
    row_size: int
    rows: int
    prob_offset: int  # byte offset of the probability column in a row
    uniq_offset: int | None  # byte offset of UNIQ (multi-order maps)

    @classmethod
    def of(cls, name: str, data: bytes) -> FitsTemplate:
        with fits.open(io.BytesIO(data)) as hdul:
            info, hdu = hdul.fileinfo(1), hdul[1]
            names = [n.upper() for n in hdu.columns.names]
            offsets = dict(zip(names, np.cumsum([0] + [c.dtype.itemsize for c in hdu.columns.columns]), strict=False))
            prob = "PROBDENSITY" if "PROBDENSITY" in names else "PROB"
            return cls(name, data, info["hdrLoc"], info["datLoc"], hdu.header["NAXIS1"],
                       hdu.header["NAXIS2"], int(offsets[prob]),
                       int(offsets["UNIQ"]) if "UNIQ" in names else None)

    def card(self, keyword: str, value: str) -> bytes:
        """The map with the value of card ``keyword`` of the table header replaced."""
        key = keyword.encode().ljust(8)
        for at in range(self.header_at, self.data_at, 80):
            if self.data[at:at + 8] == key:
                card = (key + b"= " + value.encode("latin-1").rjust(20)).ljust(80)[:80]
                return self.data[:at] + card + self.data[at + 80:]
        raise KeyError(keyword)

    def values(self, offset: int, fmt: str, rows: list[int], values: list[float]) -> bytes:
        """The map with the big-endian ``fmt`` field at ``offset`` of ``rows`` set to ``values``."""
        buf = bytearray(self.data)
        self._column(buf, offset, fmt)[rows] = values
        return bytes(buf)

    def scaled(self, factor: float) -> bytes:
        """The map with every probability multiplied by ``factor``."""
        buf = bytearray(self.data)
        column = self._column(buf, self.prob_offset, ">f8")
        with np.errstate(over="ignore"):
            column *= factor
        return bytes(buf)

    def _column(self, buf: bytearray, offset: int, fmt: str) -> np.ndarray:
        """A writable view of one column of the rows in ``buf``."""
        dtype = np.dtype({"names": ["v"], "formats": [fmt], "offsets": [offset],
                          "itemsize": self.row_size})
        return np.ndarray((self.rows,), dtype, buffer=buf, offset=self.data_at)["v"]

    @property
    def end_of_rows(self) -> int:
        return self.data_at + self.rows * self.row_size


def fits_case(rng: random.Random, template: FitsTemplate) -> Case:
    """One mutated sky map (gzipped half the time, which truncation must also survive)."""
    name = template.name
    some = sorted(rng.sample(range(template.rows), 3))
    structured: list[tuple[str, Callable[[], bytes], str]] = [
        ("ordering", lambda: template.card("ORDERING", "'BOGUS   '"), "invalid"),
        ("tform-qq", lambda: template.card("TFORM1", "'QQ      '"), "invalid"),
        ("naxis2-plus", lambda: template.card("NAXIS2", str(template.rows + 1)), "invalid"),
        ("naxis2-huge", lambda: template.card("NAXIS2", "9" * 19), "invalid"),
        ("naxis1", lambda: template.card("NAXIS1", str(template.row_size + 8)), "invalid"),
        ("unreadable-card", lambda: template.card("NAXIS2", "abc\xff"), "invalid"),
        ("bad-card-bytes", lambda: template.card("COORDSYS", "'\x00\x01\xfe'"), "any"),
        ("nan", lambda: template.values(template.prob_offset, ">d", some, [math.nan] * 3), "invalid"),
        ("inf", lambda: template.values(template.prob_offset, ">d", some[:1], [math.inf]), "invalid"),
        ("negative", lambda: template.values(template.prob_offset, ">d", some, [-1e3] * 3), "invalid"),
        ("scaled", lambda: template.scaled(rng.choice([0.0, 0.5, 2.0, 1e300])), "invalid"),
        ("cut-rows", lambda: template.data[:rng.randrange(template.data_at, template.end_of_rows)],
         "invalid"),
        ("cut-header", lambda: template.data[:rng.randrange(1, template.data_at)], "invalid"),
        ("no-end", lambda: template.data.replace(b"END" + b" " * 77, b"ENX" + b" " * 77), "any"),
    ]
    if template.uniq_offset is not None:
        structured += [
            ("uniq-zero", lambda: template.values(template.uniq_offset, ">q", some[:1], [0]),
             "invalid"),
            ("uniq-repeat", lambda: template.values(template.uniq_offset, ">q", some[1:], [
                template._column(bytearray(template.data), template.uniq_offset, ">i8")[some[0]]
            ] * 2), "invalid"),
            ("uniq-huge", lambda: template.values(template.uniq_offset, ">q", some[:1], [2**62]),
             "invalid"),
        ]
    else:
        structured.append(("nside", lambda: template.card("NSIDE", "3"), "invalid"))
    if rng.random() < 0.25:
        case = byte_mutations(rng, template.data, name)
        case.expect = "any" if case.expect == "any" or len(case.data) >= template.end_of_rows else (
            "invalid")
    else:
        label, make, expect = rng.choice(structured)
        case = Case(f"{name}-{label}", make(), expect)
    if rng.random() < 0.5:
        data = gzip.compress(case.data, mtime=0)
        if rng.random() < 0.3:  # a truncated gzip stream
            data, case.expect = data[:rng.randrange(10, len(data) - 8)], "invalid"
        case = Case(case.name + ".gz", data, case.expect)
    return case


# ---------------------------------------------------------------------------- the inputs


def gwalert_cases(rng: random.Random, count: int, bases: dict[str, dict], maps: list[FitsTemplate],
                  kind: str) -> Iterator[Case]:
    """igwn.gwalert inputs: structured field mutations, removals, byte mutations ('gwalert');
    corrupt or bad-base64 embedded maps ('embedded'); hostile superevent ids ('ids')."""
    names = sorted(bases)
    live = [n for n in names if bases[n]["event"] is not None]
    for i in range(count):
        if kind == "ids":
            name = rng.choice(names)
            yield Case(f"{i}-{name}", dump(set_path(bases[name], ("superevent_id",),
                                                   HOSTILE_IDS[i % len(HOSTILE_IDS)])), "invalid")
        elif kind == "embedded":
            name = rng.choice(live)
            if rng.random() < 0.15:
                text = base64.b64encode(maps[0].data).decode()
                at = rng.randrange(len(text))
                bad = rng.choice([text[:at] + "!" + text[at:], text[:-rng.randint(1, 3)], "@" + text])
                yield Case(f"{i}-{name}-base64", dump(set_path(bases[name], ("event", "skymap"), bad)),
                           "invalid")
                continue
            skymap = fits_case(rng, rng.choice(maps))
            alert = set_path(bases[name], ("event", "skymap"), base64.b64encode(skymap.data).decode())
            yield Case(f"{i}-{name}-{skymap.name}", dump(alert), skymap.expect)
        else:
            name = rng.choice(names)
            roll = rng.random()
            if roll < 0.55:
                path, values = rng.choice(GWALERT_INVALID if name in live else GWALERT_INVALID[:6])
                if name not in live and path == ("event",):
                    values = [v for v in values if v is not None]  # a Retraction's event is null
                value = rng.choice(values)
                yield Case(f"{i}-{name}-{'.'.join(path)}", dump(set_path(bases[name], path, value)),
                           "invalid")
            elif roll < 0.7:
                path = rng.choice(GWALERT_REQUIRED if name in live else GWALERT_REQUIRED[:3])
                yield Case(f"{i}-{name}-no-{'.'.join(path)}",
                           dump(set_path(bases[name], path, _REMOVE)), "invalid")
            elif roll < 0.75:
                yield Case(f"{i}-{name}-not-object", dump(rng.choice([[bases[name]], "x", 1, None])),
                           "invalid")
            else:
                yield byte_mutations(rng, dump(bases[name]), f"{i}-{name}")


def voevent_cases(rng: random.Random, count: int, bases: dict[str, bytes], kind: str) -> Iterator[Case]:
    """VOEvent inputs: Param values made invalid, XML attacks, byte mutations; or hostile
    GraceIDs ('ids')."""
    names = sorted(bases)
    for i in range(count):
        name = rng.choice(names)
        data = bases[name]
        if kind == "ids":
            eid = HOSTILE_IDS[i % len(HOSTILE_IDS)].encode("utf-8")
            eid = eid.replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b'"', b"&quot;")
            yield Case(f"{i}-{name}", re.sub(rb'(name="GraceID"[^>]*value=")[^"]*', rb"\g<1>" + eid,
                                             data, count=1), "invalid")
            continue
        roll = rng.random()
        present = [p for p in VOEVENT_INVALID if re.search(rb'name="%s"' % p.encode(), data)]
        retraction = b'value="Retraction"' in data
        if retraction:  # a Retraction carries none of the event's facts
            present = [p for p in present if p in ("Packet_Type", "GraceID")]
        if roll < 0.55 and present:
            param = rng.choice(present)
            value = rng.choice(VOEVENT_INVALID[param]).encode("utf-8")
            mutated = re.sub(rb'(name="%s"[^>]*value=")[^"]*' % param.encode(),
                             lambda m, value=value: m[1] + value, data, count=1)
            yield Case(f"{i}-{name}-{param}", mutated, "invalid")
        elif roll < 0.75:
            label, mutate = rng.choice(VOEVENT_SPECIALS)
            yield Case(f"{i}-{name}-{label}", mutate(data), "invalid")
        elif roll < 0.8:
            depth = rng.choice([1000, 200_000])
            nested = data.replace(b"<What>", b"<What>" + b"<a>" * depth + b"</a>" * depth, 1)
            yield Case(f"{i}-{name}-nested-{depth}", nested, "any")
        elif roll < 0.82:
            utf16 = data.decode("utf-8").encode("utf-16")  # declared UTF-8, but UTF-16 with a BOM
            yield Case(f"{i}-{name}-utf16", utf16, "any")
        else:
            yield byte_mutations(rng, data, f"{i}-{name}")


def neutrino_cases(rng: random.Random, count: int, bases: dict[str, Any]) -> Iterator[Case]:
    """Neutrino lists (a LLAMA JSON list of real IC40 tracks, the LVK Nu Track Search notice):
    values replaced by wrong types, NaN, huge numbers; deep nesting; byte mutations."""
    names = sorted(bases)
    for i in range(count):
        name = rng.choice(names)
        base = bases[name]
        roll = rng.random()
        if roll < 0.1:
            yield Case(f"{i}-{name}-deep", ("[" * 200_000 + "]" * 200_000).encode(), "invalid")
        elif roll < 0.2:
            yield Case(f"{i}-{name}-not-a-list", dump(rng.choice(["x", 1, None, True])), "invalid")
        elif roll < 0.7:
            where = _records_key(base)
            records = base if where is None else base[where]
            record = rng.randrange(len(records))
            key = rng.choice(sorted(records[record]))
            value = rng.choice([*BAD_NUMBERS, *BAD_STRINGS[:6], -1e300, 1e300])
            path = (record, key) if where is None else (where, record, key)
            mutated = json.loads(json.dumps(base))
            target = mutated
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value
            yield Case(f"{i}-{name}-{key}", dump(mutated), "any")
        else:
            yield byte_mutations(rng, dump(base), f"{i}-{name}")


def _records_key(base: Any) -> str | None:
    """Where a neutrino file keeps its records: None for a bare list, else the key of the
    first list of objects ('triggers' of a LLAMA list, 'coincident_events' of a notice)."""
    if isinstance(base, list):
        return None
    return next(k for k, v in base.items() if isinstance(v, list) and v and isinstance(v[0], dict))


# -------------------------------------------------------------------------- the checking


@dataclass
class Tally:
    """Counts of one kind's run, for the report."""

    kind: str
    counts: Counter

    def line(self) -> str:
        c = self.counts
        return (f"fuzz {self.kind}: {c['inputs']} inputs ({c['rejected']} rejected, "
                f"{c['accepted']} accepted; {c['subprocess']} also in a subprocess): "
                f"tracebacks {c['tracebacks']}, invalid accepted {c['invalid_accepted']}, "
                f"not one line {c['not_one_line']}, event directories changed by a rejected input "
                f"{c['changed']}, inconsistent accepted {c['inconsistent']}, hangs {c['hangs']}")


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (bytes) and directory (None) under ``root``, symlinks not followed."""
    return {
        str(p.relative_to(root)): None if p.is_dir() and not p.is_symlink() else p.read_bytes()
        for p in sorted(root.rglob("*"))
    }


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} in JSON")


def consistent(run: Path) -> str | None:
    """None when every event in ``run`` is consistent, else what is wrong."""
    try:
        return _first_inconsistency(run)
    except Exception as err:  # noqa: BLE001 - an unreadable accepted map is the finding
        return f"{type(err).__name__}: {err}"


def _first_inconsistency(run: Path) -> str | None:
    for info_path in run.glob("*/skymap_info.json"):
        info = json.loads(info_path.read_text(), parse_constant=_refuse_constant)
        gps = info.get("event_time_gps")
        if gps is not None and not GPS_RANGE[0] <= gps <= GPS_RANGE[1]:
            return f"{info_path}: event_time_gps {gps}"
        if not set(info.get("instruments") or []) <= set(KNOWN_INSTRUMENTS):
            return f"{info_path}: instruments {info['instruments']}"
        for key in ("far", "duration", "central_frequency"):
            value = info.get(key)
            if value is not None and (isinstance(value, bool) or not 0 < value < math.inf):
                return f"{info_path}: {key} {value!r}"
        if info.get("skymap_filename"):
            skymap = read_skymap(info_path.parent / info["skymap_filename"])
            prob = skymap.prob
            if not (np.isfinite(prob).all() and (prob >= 0).all() and abs(prob.sum() - 1) < 1e-3):
                return f"{info_path.parent}: sky map not a normalised probability map"
    return None


def run_cases(kind: str, cases: Iterator[Case], work: Path, template: Path | None,
              argv: Callable[[Path, Path], list[str]]) -> Tally:
    """Run every case through ``llama <argv(input file, run dir)>`` in-process (the first
    SUBPROCESS_PER_KIND of each expectation also in a real interpreter); check and count."""
    counts: Counter = Counter()
    failures: list[str] = []
    run = work / "out" / "current_run"
    inputs = work / "inputs"
    inputs.mkdir(parents=True)

    def restore() -> None:
        shutil.rmtree(work / "out", ignore_errors=True)
        run.mkdir(parents=True)
        if template is not None:
            shutil.copytree(template, run, dirs_exist_ok=True)

    restore()
    before = snapshot(work / "out")
    subprocess_left = {"invalid": SUBPROCESS_PER_KIND, "any": 0}
    for case in cases:
        counts["inputs"] += 1
        path = inputs / f"{kind}-{counts['inputs']}"
        path.write_bytes(case.data)
        start = time.monotonic()
        try:
            result = llama(*argv(path, run))
        except Exception as err:  # noqa: BLE001 - this is what the suite looks for
            counts["tracebacks"] += 1
            failures.append(f"{case.name}: traceback {type(err).__name__}: {err}"[:300])
            restore()
            continue
        if time.monotonic() - start > HANG_S:
            counts["hangs"] += 1
            failures.append(f"{case.name}: took {time.monotonic() - start:.0f} s")
        if subprocess_left[case.expect] > 0:
            subprocess_left[case.expect] -= 1
            counts["subprocess"] += 1
            real = llama_subprocess(*argv(path, run), cwd=work)
            if "Traceback" in real.stderr or (real.returncode == 0) != (result.returncode == 0):
                counts["tracebacks"] += "Traceback" in real.stderr
                failures.append(f"{case.name}: subprocess exit {real.returncode} vs in-process "
                                f"{result.returncode}: {real.stderr[-300:]}")
        if "Traceback" in result.stderr:
            counts["tracebacks"] += 1
            failures.append(f"{case.name}: traceback on stderr: {result.stderr[-300:]}")
        if result.returncode == 0:
            counts["accepted"] += 1
            if case.expect == "invalid":
                counts["invalid_accepted"] += 1
                failures.append(f"{case.name}: invalid input accepted")
            problem = consistent(run) if run.exists() else None
            if problem:
                counts["inconsistent"] += 1
                failures.append(f"{case.name}: accepted, but {problem}")
            restore()
            continue
        counts["rejected"] += 1
        errors = [line for line in result.stderr.splitlines() if "error:" in line]
        # a valid Retraction of an event never heard of is refused by the event store, which
        # names the event, not the file
        if len(errors) != 1 or not (path.name in errors[0] or "nothing to retract" in errors[0]):
            counts["not_one_line"] += 1
            failures.append(f"{case.name}: not one error line naming {path.name}: "
                            f"{result.stderr[-300:]!r}")
        if snapshot(work / "out") != before:
            counts["changed"] += 1
            failures.append(f"{case.name}: rejected, but the output directory changed")
            restore()
        path.unlink()
    tally = Tally(kind, counts)
    print(tally.line())
    assert not failures, f"{tally.line()}\n" + "\n".join(failures[:20])
    assert counts["inputs"] >= COUNTS[kind] * 0.9
    return tally


# ---------------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def gwalerts() -> dict[str, dict]:
    folder = shared_path("gw_alerts", "gcn_kafka_json")
    return {p.name: json.loads(p.read_bytes()) for p in sorted(folder.glob("*.json"))}


@pytest.fixture(scope="module")
def voevents() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(shared_path("gw_alerts", "voevent").glob("*.xml"))}


@pytest.fixture(scope="module")
def fits_templates(tmp_path_factory) -> list[FitsTemplate]:
    """The real BAYESTAR multi-order map of MS181101ab, and the real GW150914 map summed to
    NSIDE 32 (flat NESTED, written by llama) so that mutating it stays fast."""
    moc = shared_path("gw_skymaps", MOC_MAP).read_bytes()
    flat = read_skymap(shared_path("gw_skymaps", "GW150914_bayestar_gstlal_C01.fits.gz"))
    coarse = SkyMap(flat.prob.reshape(-1, 4**4).sum(axis=1), flat.nside // 16, None,
                    meta=flat.meta)
    path = tmp_path_factory.mktemp("fits") / "GW150914_nside32.fits"
    write_skymap(coarse, path)
    return [FitsTemplate.of(MOC_MAP, moc), FitsTemplate.of(path.name, path.read_bytes())]


@pytest.fixture(scope="module")
def template_run(tmp_path_factory) -> Path:
    """A run directory holding MS181101ab after its Preliminary gwalert (embedded map)."""
    run = tmp_path_factory.mktemp("template") / "current_run"
    alert = shared_path("gw_alerts", "gcn_kafka_json", GOOD_GWALERT)
    llama("skymap-info", "--gwalert", alert, "--role", "test", "--run", run, check=True)
    assert (run / EVENT / "skymap_info.json").exists()
    return run


def _rng(kind: str) -> random.Random:
    return random.Random(f"{SEED}-{kind}")


@pytest.mark.parametrize("kind", ["gwalert", "embedded", "ids"])
def test_fuzz_gwalerts(kind, gwalerts, fits_templates, template_run, tmp_path):
    cases = gwalert_cases(_rng(kind), COUNTS[kind], gwalerts, fits_templates, kind)
    run_cases(kind, cases, tmp_path, template_run,
              lambda path, run: ["skymap-info", "--gwalert", path, "--role", "test", "--run", run])


def test_fuzz_voevents(voevents, template_run, tmp_path):
    cases = voevent_cases(_rng("voevent"), COUNTS["voevent"], voevents, "voevent")
    run_cases("voevent", cases, tmp_path, template_run,
              lambda path, run: ["skymap-info", "--voevent", path, "--role", "test", "--run", run])


def test_fuzz_voevent_ids(voevents, template_run, tmp_path):
    cases = voevent_cases(_rng("voevent-ids"), COUNTS["ids"], voevents, "ids")
    run_cases("ids", cases, tmp_path, template_run,
              lambda path, run: ["skymap-info", "--voevent", path, "--role", "test", "--run", run])


def test_fuzz_attached_skymaps(fits_templates, template_run, tmp_path):
    """`--skymap FILE` beside a good VOEvent: a corrupt map never replaces the event's map."""
    rng = _rng("skymap")
    cases = (fits_case(rng, rng.choice(fits_templates)) for _ in range(COUNTS["skymap"]))
    notice = shared_path("gw_alerts", "voevent", GOOD_VOEVENT)
    run_cases("skymap", cases, tmp_path, template_run,
              lambda path, run: ["skymap-info", "--voevent", notice, "--skymap", path,
                                 "--role", "test", "--run", run])


def test_fuzz_neutrino_lists(fits_templates, tmp_path):
    """`llama significance --neutrinos FILE` on mutated real lists (no event directory)."""
    t_gw = parse_event_time(EVENT_GPS)
    records = json.loads(_llama_json(tmp_path, t_gw).read_bytes())
    notice_path = shared_path("icecube", "alerts_json", "S230914ak_icecube_lvk_nu_track_search.json")
    notice = json.loads(notice_path.read_bytes())
    # the real notice moved, like the IC40 tracks, to the time of the MS181101ab sky map
    notice |= {"trigger_time": MS_TIME, "observation_start": "2018-11-01T22:14:26.654Z",
               "observation_stop": "2018-11-01T22:31:06.654Z",
               "alert_datetime": "2018-11-01T22:58:00.000Z"}
    bases = {"ic40.json": records, "lvk_notice.json": notice}
    skymap = shared_path("gw_skymaps", MOC_MAP)

    def argv(path: Path, run: Path) -> list[str]:
        return ["significance", "--skymap", skymap, "--neutrinos", path, "--event-time", MS_TIME,
                "--assumed-energy", "1000"]

    cases = neutrino_cases(_rng("neutrinos"), COUNTS["neutrinos"], bases)
    run_cases("neutrinos", cases, tmp_path / "fuzz", None, argv)


def _llama_json(tmp_path: Path, t_gw_mjd: float) -> Path:
    """A LLAMA JSON list of real IC40 tracks moved to the MS181101ab time."""
    path = tmp_path / "ic40_shifted.json"
    write_llama_json(ic40_stretch(t_gw_mjd), path)
    return path


def test_real_inputs_pass_the_same_checks(gwalerts, voevents, fits_templates, tmp_path):
    """The checks reject nothing real: every shared notice (and the maps) is accepted."""
    counts: Counter = Counter()
    run = tmp_path / "run"
    for name in sorted(gwalerts):
        path = shared_path("gw_alerts", "gcn_kafka_json", name)
        llama("skymap-info", "--gwalert", path, "--role", "test", "--run", run, check=True)
        counts["gwalert"] += 1
    avro = shared_path("gw_alerts", "gcn_kafka_json", "MS181101ab-preliminary.avro")
    llama("skymap-info", "--gwalert", avro, "--role", "test", "--run", run, check=True)
    for name in sorted(voevents):
        retraction = b'value="Retraction"' in voevents[name] or b"Retraction" in name.encode()
        path = shared_path("gw_alerts", "voevent", name)
        result = llama("skymap-info", "--voevent", path, "--role", "test", "--run", run)
        # a Retraction of an event never heard of is refused (nothing to retract)
        assert result.returncode == 0 or (retraction and "nothing to retract" in result.stderr), (
            name, result.stderr)
        counts["voevent"] += 1
    notice = shared_path("gw_alerts", "voevent", GOOD_VOEVENT)
    for template in fits_templates:
        path = tmp_path / template.name
        path.write_bytes(template.data)
        llama("skymap-info", "--voevent", notice, "--skymap", path, "--role", "test", "--run", run,
              check=True)
    assert consistent(run) is None
    assert counts == {"gwalert": len(gwalerts), "voevent": len(voevents)}
