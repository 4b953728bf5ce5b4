"""Neutrino lists: LLAMA JSON (the O4 file ``{"triggers": [...], "complete": bool}`` and older
bare lists), IceCube 10-year point-source release tables, IceCat-1, IceCube "LVK Nu Track
Search" GCN notices, IceCube gold/bronze track alerts (GCN JSON) and Skymap Scanner results
(icecube-skyreader).

Every reader returns a :class:`NeutrinoList` (times as UTC MJD in days, angles in deg, energies
in GeV) and turns every problem with its input into one :class:`~llama.errors.InputError` line
that names the file. Angular errors quoted as 90% containment radii are converted to the 1-sigma
width of a 2-D Gaussian: ``sigma = r90 / R90_PER_SIGMA`` (``R90_PER_SIGMA`` = 2.145966).

When a source gives no IceCube zenith, ``zenith = 90 + dec``: exact at the South Pole, where
IceCube sits, up to the precession from J2000 to the date (< 0.07 deg for the IC40 events).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from llama.errors import InputError
from llama.io.storage import atomic_write_text, json_text

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

NEUTRINO_TYPES = ("observation", "blinded", "injected", "archival", "unspecified")
"""Allowed values of ``NeutrinoList.type``."""


def containment_radius(probability: float) -> float:
    """Radius, in units of sigma, that contains ``probability`` of a 2-D Gaussian."""
    return math.sqrt(-2.0 * math.log(1.0 - probability))


R90_PER_SIGMA = containment_radius(0.9)
"""90% containment radius of a 2-D Gaussian in units of its sigma (2.145966)."""

SECONDS_PER_DAY = 86400.0

FORMATS = ("llama", "release", "icecat1", "lvk-notice", "icecube-alert", "skyscan")
"""Format names accepted by :func:`read_neutrinos`."""

_FLOAT_FIELDS = ("mjd", "ra", "dec", "sigma", "energy", "zenith", "azimuth")
_INT_FIELDS = ("run", "event")
_ARCHIVAL_FIELDS = ("subevent", "file")
"""Keys of archival LLAMA lists, null for live events; kept as they are (object arrays)."""
_FIELDS = (*_FLOAT_FIELDS, *_INT_FIELDS, "type", *_ARCHIVAL_FIELDS)
_DTYPES = {
    **dict.fromkeys(_FLOAT_FIELDS, np.float64),
    **dict.fromkeys(_INT_FIELDS, np.int64),
    "type": np.str_,
    **dict.fromkeys(_ARCHIVAL_FIELDS, object),
}
_REQUIRED_KEYS = ("mjd", "ra", "dec", "sigma", "energy")
_MJD_EPOCH = datetime(1858, 11, 17, tzinfo=UTC)

#: LLAMA name -> column name in the 10-year release event tables
RELEASE_COLUMNS = {
    "mjd": "MJD[days]",
    "log10_energy": "log10(E/GeV)",
    "sigma": "AngErr[deg]",
    "ra": "RA[deg]",
    "dec": "Dec[deg]",
    "azimuth": "Azimuth[deg]",
    "zenith": "Zenith[deg]",
}

_ICECAT1_FLOATS = (
    "EVENTMJD",
    "RA",
    "DEC",
    "RA_ERR_PLUS",
    "RA_ERR_MINUS",
    "DEC_ERR_PLUS",
    "DEC_ERR_MINUS",
    "ENERGY",
)
_ICECAT1_INTS = ("RUNID", "EVENTID")


@dataclass(eq=False)
class NeutrinoList:
    """Columns of a neutrino list; validated and coerced to their dtypes on construction."""

    mjd: np.ndarray
    """Event time, UTC MJD (days), float64."""
    ra: np.ndarray
    """Right ascension, deg."""
    dec: np.ndarray
    """Declination, deg."""
    sigma: np.ndarray
    """1-sigma angular error, deg (> 0)."""
    energy: np.ndarray
    """Reconstructed energy proxy, GeV (NaN when the source has none)."""
    zenith: np.ndarray
    """IceCube zenith, deg (90 + dec when the source has none)."""
    azimuth: np.ndarray
    """IceCube azimuth, deg (NaN when unknown)."""
    run: np.ndarray
    """IceCube run number, int64 (-1 when unknown)."""
    event: np.ndarray
    """IceCube event number (or row index in a release table), int64 (-1 when unknown)."""
    type: np.ndarray
    """One of NEUTRINO_TYPES, str."""
    source: str = ""
    """Where the list came from (path or description)."""
    subevent: np.ndarray | None = None
    """Archival sub-event id (any JSON value), None for live events and when not given."""
    file: np.ndarray | None = None
    """Archival file name (any JSON value), None for live events and when not given."""
    meta: dict[str, Any] = field(default_factory=dict)
    """What the source says about the list as a whole: ``complete`` (LLAMA list files),
    ``trigger_time_mjd`` and ``ref_id`` (IceCube notices), ``time_span_mjd`` (archives)."""

    def __post_init__(self) -> None:
        where = self.source or "neutrino list"
        for name in _ARCHIVAL_FIELDS:
            if getattr(self, name) is None:
                setattr(self, name, np.full(np.shape(self.mjd), None, dtype=object))
        for name, dtype in _DTYPES.items():
            try:
                setattr(self, name, np.asarray(getattr(self, name), dtype=dtype))
            except (TypeError, ValueError) as err:
                raise InputError(f"{where}: column {name}: {error_text(err)}") from None
        lengths = {name: getattr(self, name).shape for name in _FIELDS}
        if len(set(lengths.values())) != 1 or len(lengths["mjd"]) != 1:
            raise InputError(f"{where}: columns must be 1-D with equal lengths, got {lengths}")
        with np.errstate(invalid="ignore"):
            self._check(~np.isfinite(self.mjd), "mjd", "must be a finite number")
            self._check(~((self.ra >= 0) & (self.ra <= 360)), "ra", "must be within [0, 360] deg")
            self._check(~(np.abs(self.dec) <= 90), "dec", "must be within [-90, 90] deg")
            self._check(~(self.sigma > 0) | np.isinf(self.sigma), "sigma", "must be > 0 deg")
            self._check(
                ~(np.isnan(self.energy) | ((self.energy > 0) & np.isfinite(self.energy))),
                "energy",
                "must be > 0 GeV or null",
            )
            self._check(
                ~((self.zenith >= 0) & (self.zenith <= 180)),
                "zenith",
                "must be within [0, 180] deg",
            )
            self._check(np.isinf(self.azimuth), "azimuth", "must be finite or null")
        self._check(self.run < -1, "run", "must be >= 0 (or -1/null when unknown)")
        self._check(self.event < -1, "event", "must be >= 0 (or -1/null when unknown)")
        self._check(~np.isin(self.type, NEUTRINO_TYPES), "type", f"must be one of {NEUTRINO_TYPES}")

    def _check(self, bad: np.ndarray, name: str, requirement: str) -> None:
        """Raise naming the first neutrino whose ``name`` is ``bad``."""
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            value = getattr(self, name)[i].item()
            where = self.source or "neutrino list"
            raise InputError(f"{where}: neutrino {i}: {name} {requirement} (got {value!r})")

    def __len__(self) -> int:
        return len(self.mjd)

    def select(self, mask_or_index: np.ndarray | slice | Sequence[int]) -> NeutrinoList:
        """The neutrinos picked by a boolean mask, an index array or a slice."""
        return NeutrinoList(
            **{name: getattr(self, name)[mask_or_index] for name in _FIELDS},
            source=self.source,
            meta=dict(self.meta),
        )

    def in_window(self, mjd_center: float, half_width_s: float) -> NeutrinoList:
        """Neutrinos with ``|mjd - mjd_center| <= half_width_s`` (MJD in days, width in s)."""
        return self.select(np.abs(self.mjd - mjd_center) * SECONDS_PER_DAY <= half_width_s)

    def to_records(self) -> list[dict[str, Any]]:
        """One LLAMA JSON dict per neutrino; NaN floats and -1 run/event become None."""
        columns: dict[str, list[Any]] = {}
        for name in _FLOAT_FIELDS + _INT_FIELDS:
            values = getattr(self, name)
            unknown = np.isnan(values) if name in _FLOAT_FIELDS else values == -1
            as_objects = values.astype(object)
            as_objects[unknown] = None
            columns[name] = as_objects.tolist()
        columns["type"] = self.type.tolist()
        for name in _ARCHIVAL_FIELDS:
            columns[name] = getattr(self, name).tolist()
        return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]

    @classmethod
    def empty(cls, source: str = "") -> NeutrinoList:
        """A list of zero neutrinos."""
        return cls(
            **{name: np.empty(0) for name in _FLOAT_FIELDS},
            **{name: np.empty(0, dtype=np.int64) for name in _INT_FIELDS},
            type=np.empty(0, dtype=str),
            source=source,
        )

    @classmethod
    def concatenate(cls, lists: Iterable[NeutrinoList]) -> NeutrinoList:
        """All neutrinos of ``lists`` in order; the sources are joined with ' + '."""
        lists = list(lists)
        if not lists:
            return cls.empty()
        return cls(
            **{name: np.concatenate([getattr(nl, name) for nl in lists]) for name in _FIELDS},
            source=" + ".join(dict.fromkeys(nl.source for nl in lists if nl.source)),
        )


# ---------------------------------------------------------------------------- file helpers


def error_text(err: BaseException) -> str:
    """The message of an exception squeezed onto one line."""
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return " ".join(text.split())


def _read_text(path: PathLike) -> str:
    """The whole file as UTF-8 text; empty or unreadable files raise InputError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text (bad byte at offset {err.start})") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read: {error_text(err)}") from None
    if not text.strip():
        raise InputError(f"{path}: empty file")
    return text


def _parse_json(text: str, where: PathLike) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(
            f"{where}: malformed JSON at line {err.lineno} column {err.colno}: {err.msg}"
        ) from None
    except (RecursionError, ValueError) as err:  # nested too deep; an integer of >4300 digits
        raise InputError(f"{where}: unreadable JSON ({type(err).__name__})") from None


# ------------------------------------------------------------------------------- LLAMA JSON


def _json_column(values: list[Any], name: str, where: PathLike) -> np.ndarray:
    """One LLAMA JSON column; null -> NaN / -1 / 'unspecified'; strings are not numbers."""
    if name == "type":
        bad = [i for i, v in enumerate(values) if v is not None and not isinstance(v, str)]
        kind = "a string"
    elif name in _ARCHIVAL_FIELDS:  # any JSON value, kept as it is
        kept = np.empty(len(values), dtype=object)
        kept[:] = [None] * len(values)
        for i, value in enumerate(values):
            kept[i] = value
        return kept
    elif name in _INT_FIELDS:  # real O4 files write run as a string ("137892")
        values = [int(v) if isinstance(v, str) and v.strip().isdigit() else v for v in values]
        bad = [i for i, v in enumerate(values) if not (v is None or _is_integral(v))]
        kind = "an integer"
    else:
        bad = [
            i
            for i, v in enumerate(values)
            if not (v is None or (isinstance(v, int | float) and not isinstance(v, bool)))
        ]
        kind = "a number"
    if bad:
        value = values[bad[0]]
        raise InputError(f"{where}: neutrino {bad[0]}: {name} is not {kind} (got {value!r:.40})")
    if name == "type":
        return np.array(["unspecified" if v is None else v for v in values], dtype=str)
    if name in _INT_FIELDS:
        return np.array([-1 if v is None else int(v) for v in values], dtype=np.int64)
    return np.array(values, dtype=np.float64)  # None -> NaN


def _is_integral(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and float(value).is_integer()
        and abs(value) < 2**63  # fits the int64 column
    )


def _llama_columns(data: Any, where: PathLike) -> dict[str, list[Any]]:
    """Column lists from the records form, the ``{"triggers": [...], "complete": bool}`` and
    ``{"neutrinos": [...]}`` wrappers or the dict-of-columns form; optional keys are filled with
    None."""
    for wrapper in ("triggers", "neutrinos"):
        if isinstance(data, dict) and wrapper in data:
            data = data[wrapper]
            break
    if isinstance(data, list):
        for i, record in enumerate(data):
            if not isinstance(record, dict):
                raise InputError(f"{where}: neutrino {i} is not a JSON object")
            missing = [key for key in _REQUIRED_KEYS if key not in record]
            if missing:
                raise InputError(f"{where}: neutrino {i}: missing required key '{missing[0]}'")
        return {name: [record.get(name) for record in data] for name in _FIELDS}
    if isinstance(data, dict):
        missing = [key for key in _REQUIRED_KEYS if key not in data]
        if missing:
            raise InputError(f"{where}: missing required column '{missing[0]}'")
        for name in _FIELDS:
            if name in data and not isinstance(data[name], list):
                raise InputError(f"{where}: column '{name}' is not a JSON array")
        n = len(data["mjd"])
        wrong = {name: len(data[name]) for name in _FIELDS if len(data.get(name, [None] * n)) != n}
        if wrong:
            raise InputError(f"{where}: columns differ in length (mjd has {n}, {wrong})")
        return {name: data.get(name, [None] * n) for name in _FIELDS}
    raise InputError(
        f"{where}: expected a JSON array of neutrino objects, got {type(data).__name__}"
    )


def _llama_from_data(data: Any, where: PathLike) -> NeutrinoList:
    complete = data.get("complete") if isinstance(data, dict) and "triggers" in data else None
    if complete is not None and not isinstance(complete, bool):
        raise InputError(f"{where}: 'complete' is not true or false (got {complete!r:.40})")
    columns = {
        name: _json_column(values, name, where)
        for name, values in _llama_columns(data, where).items()
    }
    zenith, dec = columns["zenith"], columns["dec"]
    columns["zenith"] = np.where(np.isnan(zenith), 90.0 + dec, zenith)
    meta = {} if complete is None else {"complete": complete}
    return NeutrinoList(**columns, source=str(where), meta=meta)


def read_llama_json(path: PathLike) -> NeutrinoList:
    """Read a LLAMA JSON neutrino list: the LLAMA O4 file ``{"triggers": [...], "complete":
    bool}`` (``complete`` goes to ``meta``), the older bare list of the same dicts,
    ``{"neutrinos": [...]}`` or a dict of columns.

    Required keys: mjd, ra, dec, sigma, energy (energy may be null); optional: zenith (default
    90 + dec), azimuth, run, event (default unknown; run may be a string of digits, as in real
    O4 files), type (default 'unspecified'), and the archival keys subevent and file (kept as
    they are, null for live events).
    """
    return _llama_from_data(_parse_json(_read_text(path), path), path)


def write_llama_json(nlist: NeutrinoList, path: PathLike, complete: bool = False) -> None:
    """Write ``nlist`` as the LLAMA neutrino list file ``{"triggers": [records], "complete":
    complete}`` (sorted keys, indent 2), atomically; the bytes are a function of the list and
    ``complete`` only."""
    try:
        atomic_write_text(path, llama_json_text(nlist, complete))
    except OSError as err:
        raise InputError(f"{path}: cannot write: {error_text(err)}") from None


def llama_json_text(nlist: NeutrinoList, complete: bool) -> str:
    """The text of the LLAMA neutrino list file of ``nlist`` (see :func:`write_llama_json`)."""
    return json_text({"triggers": nlist.to_records(), "complete": bool(complete)})


# ------------------------------------------------------------ IceCube 10-year release tables


def read_release_table(path: PathLike, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """The named columns of a whitespace-separated release table (events or uptime).

    The first line is the header of column names, with or without a leading '#'.
    """
    text = _read_text(path)
    header = text.lstrip().split("\n", 1)[0].lstrip("#").split()
    missing = [name for name in columns if name not in header]
    if missing:
        lacks = ", ".join(missing)
        raise InputError(f"{path}: not an IceCube release table (header lacks {lacks})")
    try:
        data = np.loadtxt(io.StringIO(text.lstrip()), skiprows=1, ndmin=2, dtype=np.float64)
    except ValueError as err:
        raise InputError(f"{path}: {error_text(err)}") from None
    if data.size == 0:
        data = np.empty((0, len(header)))
    if data.shape[1] != len(header):
        raise InputError(f"{path}: {data.shape[1]} data columns but {len(header)} header names")
    return {name: data[:, header.index(name)] for name in columns}


def _read_release_file(path: Path) -> NeutrinoList:
    """One season table; event = row index within the file."""
    table = read_release_table(path, list(RELEASE_COLUMNS.values()))
    col = {name: table[column] for name, column in RELEASE_COLUMNS.items()}
    n = len(col["mjd"])
    return NeutrinoList(
        mjd=col["mjd"],
        ra=col["ra"],
        dec=col["dec"],
        sigma=col["sigma"],
        energy=10.0 ** col["log10_energy"],
        zenith=col["zenith"],
        azimuth=col["azimuth"],
        run=np.full(n, -1),
        event=np.arange(n),
        type=np.full(n, "archival"),
        source=str(path),
    )


def release_event_files(source: PathLike | Sequence[PathLike]) -> list[Path]:
    """Event tables named by ``source``: files, or directories (their ``events/*.csv``, or their
    own ``*.csv`` when there is no ``events/``), in order, without repeats."""
    items = [source] if isinstance(source, str | os.PathLike) else list(source)
    files: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            events_dir = item / "events" if (item / "events").is_dir() else item
            found = sorted(events_dir.glob("*.csv"))
            if not found:
                raise InputError(f"{item}: no IceCube release event tables (*.csv) in {events_dir}")
            files += found
        else:
            files.append(item)
    if not files:
        raise InputError("no IceCube release event tables given")
    return list(dict.fromkeys(files))


class ReleaseCatalog:
    """IceCube 10-year PS release events, loaded once and sorted by MJD for fast time windows.

    The release gives MJD in UT1; it is used as UTC (|UT1 - UTC| < 0.9 s).
    """

    def __init__(self, source: PathLike | Sequence[PathLike]) -> None:
        self.files = release_event_files(source)
        events = NeutrinoList.concatenate(_read_release_file(path) for path in self.files)
        self.events = events.select(np.argsort(events.mjd, kind="stable"))
        if len(self.events):
            self.events.meta["time_span_mjd"] = [self.events.mjd[0], self.events.mjd[-1]]

    def __len__(self) -> int:
        return len(self.events)

    @property
    def seasons(self) -> list[str]:
        """Season names of the tables, e.g. ['IC40']."""
        return [path.stem.removesuffix("_exp") for path in self.files]

    def window(self, mjd_start: float | None = None, mjd_stop: float | None = None) -> NeutrinoList:
        """Events with ``mjd_start <= mjd <= mjd_stop`` (MJD, days; None = unbounded)."""
        mjd = self.events.mjd
        lo = 0 if mjd_start is None else int(np.searchsorted(mjd, mjd_start, side="left"))
        hi = len(mjd) if mjd_stop is None else int(np.searchsorted(mjd, mjd_stop, side="right"))
        return self.events.select(slice(lo, max(lo, hi)))


def read_release_events(
    source: PathLike | Sequence[PathLike],
    mjd_start: float | None = None,
    mjd_stop: float | None = None,
) -> NeutrinoList:
    """Events of IceCube 10-year PS release tables (a release directory, a file or a list of
    files) with ``mjd_start <= mjd <= mjd_stop`` (days), sorted by MJD.

    energy = 10**log10(E/GeV) (GeV), sigma = AngErr (deg), zenith/azimuth from the table,
    type 'archival', run -1, event = row index within its file. For repeated queries keep a
    :class:`ReleaseCatalog`.
    """
    return ReleaseCatalog(source).window(mjd_start, mjd_stop)


# --------------------------------------------------------------------------------- IceCat-1


def _csv_column(cells: list[str], dtype: type, path: PathLike, name: str) -> np.ndarray:
    """CSV cells of column ``name`` as a ``dtype`` array; the error names the first bad line."""
    try:
        return np.array(cells).astype(dtype)
    except ValueError:
        for i, cell in enumerate(cells):
            try:
                np.array(cell).astype(dtype)
            except ValueError:
                raise InputError(
                    f"{path}: line {i + 2}: {name} is not a number (got {cell!r:.40})"
                ) from None
        raise InputError(f"{path}: column {name} is not numeric") from None


def read_icecat1(path: PathLike) -> NeutrinoList:
    """Read the IceCat-1 Gold/Bronze track catalogue (CSV).

    mjd = EVENTMJD, energy = ENERGY [TeV] x 1000 (GeV), run/event = RUNID/EVENTID, type
    'archival', zenith = 90 + dec. sigma = mean of the four asymmetric 90% errors / 2.145966,
    with the RA errors (given in RA coordinate, up to 150 deg near the poles) first converted
    to great-circle degrees by multiplying by cos(dec).
    """
    try:
        rows = list(csv.reader(io.StringIO(_read_text(path))))
    except csv.Error as err:
        raise InputError(f"{path}: malformed CSV: {error_text(err)}") from None
    header, body = rows[0], [row for row in rows[1:] if row]
    missing = [name for name in _ICECAT1_FLOATS + _ICECAT1_INTS if name not in header]
    if missing:
        raise InputError(f"{path}: not an IceCat-1 table (header lacks {', '.join(missing)})")
    short = [i for i, row in enumerate(body) if len(row) != len(header)]
    if short:
        i = short[0]
        raise InputError(f"{path}: line {i + 2} has {len(body[i])} fields, expected {len(header)}")

    col = {
        name: _csv_column([row[header.index(name)] for row in body], dtype, path, name)
        for names, dtype in ((_ICECAT1_FLOATS, np.float64), (_ICECAT1_INTS, np.int64))
        for name in names
    }
    cos_dec = np.cos(np.radians(col["DEC"]))
    r90 = (
        (col["RA_ERR_PLUS"] + col["RA_ERR_MINUS"]) * cos_dec
        + col["DEC_ERR_PLUS"]
        + col["DEC_ERR_MINUS"]
    ) / 4.0
    n = len(body)
    return NeutrinoList(
        mjd=col["EVENTMJD"],
        ra=col["RA"],
        dec=col["DEC"],
        sigma=r90 / R90_PER_SIGMA,
        energy=col["ENERGY"] * 1000.0,
        zenith=90.0 + col["DEC"],
        azimuth=np.full(n, np.nan),
        run=col["RUNID"],
        event=col["EVENTID"],
        type=np.full(n, "archival"),
        source=str(path),
    )


# ------------------------------------------------------------- LVK Nu Track Search notices


def _is_lvk_notice(data: Any) -> bool:
    return isinstance(data, dict) and (
        "coincident_events" in data
        or "n_events_coincident" in data
        or "lvk_nu_track_search" in str(data.get("$schema", ""))
    )


def _iso_to_mjd(value: Any, where: PathLike) -> tuple[int, float]:
    """An ISO-8601 time (UTC when no offset is given) as (whole MJD day, seconds into it)."""
    try:
        t = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: trigger_time is not an ISO time (got {value!r:.40})") from None
    delta = (t if t.tzinfo else t.replace(tzinfo=UTC)) - _MJD_EPOCH
    return delta.days, delta.seconds + delta.microseconds * 1e-6


def _parse_event_id(value: Any, where: str) -> tuple[int, int]:
    """'RUN_EVENT' (or a list whose first item is) -> (run, event); absent -> (-1, -1)."""
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return -1, -1
    run, sep, event = str(value).partition("_")
    if not (sep and run.isdigit() and event.isdigit()):
        raise InputError(f"{where}: id is not RUN_EVENT (got {value!r:.40})")
    return int(run), int(event)


def _number(value: Any, what: str) -> float:
    """``value`` as a float; ``what`` names it in the error when it is not a JSON number."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InputError(f"{what} is missing or not a number (got {value!r:.40})")
    return float(value)


def _notice_event(event: Any, where: str) -> tuple[float, float, float, float, int, int]:
    """(event_dt [s], ra, dec, sigma [deg], run, event) of one entry of coincident_events."""
    if not isinstance(event, dict):
        raise InputError(f"{where} is not a JSON object")
    # the schema puts ra/dec/ra_dec_error in the event itself; its example nests 'localization'
    loc = event.get("localization", event)
    if not isinstance(loc, dict):
        raise InputError(f"{where}: localization is not a JSON object")
    error = loc.get("ra_dec_error")
    axes = error[:2] if isinstance(error, list) and error else [error]  # ellipse: mean semi-axis
    r90 = sum(_number(axis, f"{where}: ra_dec_error") for axis in axes) / len(axes)
    containment = _number(
        loc.get("containment_probability", 0.9), f"{where}: containment_probability"
    )
    if not 0 < containment < 1:
        raise InputError(f"{where}: containment_probability must be in (0, 1) (got {containment})")
    return (
        _number(event.get("event_dt"), f"{where}: event_dt"),
        _number(loc.get("ra"), f"{where}: ra"),
        _number(loc.get("dec"), f"{where}: dec"),
        r90 / containment_radius(containment),
        *_parse_event_id(event.get("id"), where),
    )


def _notice_from_data(data: Any, where: PathLike) -> NeutrinoList:
    if not _is_lvk_notice(data):
        raise InputError(f"{where}: not an IceCube LVK Nu Track Search notice")
    events = data.get("coincident_events") or []
    if not isinstance(events, list):
        raise InputError(f"{where}: coincident_events is not a JSON array")
    reported = data.get("n_events_coincident")
    if isinstance(reported, int | float) and reported > len(events):
        log.warning(
            "%s: notice reports %s coincident event(s) but lists %d; only listed events are read",
            where,
            reported,
            len(events),
        )
    day, seconds = _iso_to_mjd(data.get("trigger_time"), where)
    rows = [_notice_event(ev, f"{where}: coincident_events[{i}]") for i, ev in enumerate(events)]
    cols = list(zip(*rows, strict=True)) if rows else [()] * 6
    dt, ra, dec, sigma = (np.array(col, dtype=np.float64) for col in cols[:4])
    n = len(rows)
    ref_id = data.get("ref_ID", data.get("ref_id"))
    return NeutrinoList(
        meta={"trigger_time_mjd": day + seconds / SECONDS_PER_DAY, "ref_id": ref_id},
        mjd=day + (seconds + dt) / SECONDS_PER_DAY,
        ra=ra,
        dec=dec,
        sigma=sigma,
        energy=np.full(n, np.nan),
        zenith=90.0 + dec,
        azimuth=np.full(n, np.nan),
        run=np.array(cols[4], dtype=np.int64),
        event=np.array(cols[5], dtype=np.int64),
        type=np.full(n, "observation"),
        source=str(where),
    )


def read_lvk_nu_track_search(path: PathLike) -> NeutrinoList:
    """Read the neutrinos of an IceCube "LVK Nu Track Search" GCN notice (JSON).

    mjd = trigger_time (UTC) + event_dt; sigma = ra_dec_error (90% radius, deg) / 2.145966
    (rescaled if containment_probability is not 0.9); run/event from id 'RUN_EVENT'; energy
    NaN (the notice has none); zenith 90 + dec; type 'observation'. A notice without
    coincident_events gives an empty list (a warning is logged if it reports some anyway:
    notices list only the events with small per-event p-values).
    """
    return _notice_from_data(_parse_json(_read_text(path), path), path)


# ------------------------------------------------- IceCube gold/bronze track alerts (GCN)

TEV = 1000.0
"""GeV per TeV: the gold/bronze alert's ``nu_energy`` is in TeV, as IceCube's alerts quote it."""


def _is_track_alert(data: Any) -> bool:
    return isinstance(data, dict) and (
        "single_neutrino_alerts" in str(data.get("$schema", ""))
        or ("nu_energy" in data and "trigger_time" in data)
    )


def _track_alert_from_data(data: Any, where: PathLike) -> NeutrinoList:
    if not _is_track_alert(data):
        raise InputError(f"{where}: not an IceCube gold/bronze track alert")
    day, seconds = _iso_to_mjd(data.get("trigger_time"), where)
    r90 = _number(data.get("ra_dec_error"), f"{where}: ra_dec_error")
    containment = _number(data.get("containment_probability", 0.9), f"{where}: containment_probability")
    if not 0 < containment < 1:
        raise InputError(f"{where}: containment_probability must be in (0, 1) (got {containment})")
    run, event = _parse_event_id(data.get("id"), str(where))
    energy = data.get("nu_energy")
    dec = _number(data.get("dec"), f"{where}: dec")
    return NeutrinoList(
        mjd=[day + seconds / SECONDS_PER_DAY],
        ra=[_number(data.get("ra"), f"{where}: ra")],
        dec=[dec],
        sigma=[r90 / containment_radius(containment)],
        energy=[np.nan if energy is None else _number(energy, f"{where}: nu_energy") * TEV],
        zenith=[90.0 + dec],
        azimuth=[np.nan],
        run=[run],
        event=[event],
        type=["observation"],
        source=str(where),
    )


def read_icecube_track_alert(path: PathLike) -> NeutrinoList:
    """Read the one neutrino of an IceCube gold/bronze track alert (GCN Kafka JSON,
    ``gcn.notices.icecube.gold_bronze_track_alerts``).

    mjd = trigger_time (UTC); sigma = ra_dec_error (90% radius, deg) / 2.145966 (rescaled if
    containment_probability is not 0.9); energy = nu_energy x 1000 (TeV -> GeV); run/event from
    id 'RUN_EVENT'; zenith 90 + dec; type 'observation'.
    """
    return _track_alert_from_data(_parse_json(_read_text(path), path), path)


# ------------------------------------------------------- Skymap Scanner results (skyreader)

#: Delta(-ln L) of the 90% region for 2 parameters by Wilks' theorem (chi2_2(0.9) / 2).
WILKS_90 = 2.302585092994046


def _is_skyscan(data: Any) -> bool:
    return isinstance(data, dict) and any(str(key).startswith("nside-") for key in data)


def read_skyscan(path: PathLike) -> NeutrinoList:
    """The neutrino of an IceCube Skymap Scanner result (SkyScanResult JSON or npz, read with
    icecube-skyreader, the ``[skyreader]`` extra).

    Position = the best-fit pixel (skyreader ``best_dir``); mjd, run, event from the result's
    metadata; energy = E_tot of the best-fit pixel (GeV; NaN when absent); sigma from the area
    A of the finest scanned pixels with Delta(-ln L) < 2.3026 (Wilks, 90%, not calibrated):
    r90 = sqrt(A / pi), sigma = r90 / 2.145966 (at least one pixel's worth). type 'observation'.
    """
    try:
        from skyreader import SkyScanResult
    except ImportError:
        raise InputError(
            f"{path}: reading Skymap Scanner results needs icecube-skyreader: "
            "pip install 'llama[skyreader]'"
        ) from None
    reader = SkyScanResult.read_npz if str(path).endswith(".npz") else SkyScanResult.read_json
    try:
        scan = reader(str(path))
        best = scan.best_fit
        metadata = dict(best.dtype.metadata or {})
        ra, dec = (math.degrees(float(angle)) for angle in scan.best_dir)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise InputError(f"{path}: not a readable Skymap Scanner result: {error_text(err)}") from None
    if metadata.get("mjd") is None:
        raise InputError(f"{path}: Skymap Scanner result without event metadata (no mjd)")
    finest = max(scan.result, key=lambda key: int(str(key).split("-")[1]))
    pixels = scan.result[finest]
    nside = int(str(finest).split("-")[1])
    inside = max(int(np.count_nonzero(pixels["llh"] - scan.min_llh < WILKS_90)), 1)
    area_deg2 = inside * 4.0 * math.pi / (12 * nside**2) * (180.0 / math.pi) ** 2
    energy = float(best["E_tot"]) if "E_tot" in (best.dtype.names or ()) else math.nan
    return NeutrinoList(
        mjd=[float(metadata["mjd"])],
        ra=[ra % 360.0],
        dec=[dec],
        sigma=[math.sqrt(area_deg2 / math.pi) / R90_PER_SIGMA],
        energy=[energy if energy > 0 else math.nan],
        zenith=[90.0 + dec],
        azimuth=[math.nan],
        run=[int(metadata.get("run_id", -1))],
        event=[int(metadata.get("event_id", -1))],
        type=["observation"],
        source=str(path),
    )


# ---------------------------------------------------------------------------- any of them

_READERS = {
    "llama": read_llama_json,
    "release": read_release_events,
    "icecat1": read_icecat1,
    "lvk-notice": read_lvk_nu_track_search,
    "icecube-alert": read_icecube_track_alert,
    "skyscan": read_skyscan,
}


def detect_format(path: PathLike) -> str:
    """The :data:`FORMATS` name of the neutrino file ``path``, judged by its content."""
    if Path(path).is_dir():
        return "release"
    if str(path).endswith(".npz"):
        return "skyscan"
    text = _read_text(path)
    if text.lstrip()[:1] in ("{", "["):
        data = _parse_json(text, path)
        if _is_lvk_notice(data):
            return "lvk-notice"
        if _is_track_alert(data):
            return "icecube-alert"
        if _is_skyscan(data):
            return "skyscan"
        if isinstance(data, list) or (
            isinstance(data, dict) and ("triggers" in data or "neutrinos" in data or "mjd" in data)
        ):
            return "llama"
    else:
        first = text.lstrip().split("\n", 1)[0]
        if RELEASE_COLUMNS["mjd"] in first.lstrip("#").split():
            return "release"
        if {"NAME", "RUNID"} <= {cell.strip() for cell in first.split(",")}:
            return "icecat1"
    raise InputError(
        f"{path}: unrecognised neutrino file (expected LLAMA JSON, an IceCube LVK Nu Track Search"
        " notice, an IceCube gold/bronze track alert, a Skymap Scanner result, an IceCat-1 CSV or"
        " an IceCube 10-year release table)"
    )


def read_neutrinos(path: PathLike, format: str | None = None) -> NeutrinoList:
    """Read a neutrino file in ``format`` (one of :data:`FORMATS`), detected from the content
    when None; a directory is read as a 10-year release."""
    if format is None:
        format = detect_format(path)
    if format not in _READERS:
        raise InputError(
            f"{path}: unknown neutrino format {format!r} (known: {', '.join(FORMATS)})"
        )
    return _READERS[format](path)
