"""LVK GCN VOEvent notices (O2, O3 and O4 formats, all alert types) -> skymap_info.

Parsed with defusedxml, so entity-expansion and external-entity tricks are
refused. Every problem with a notice is an InputError with one line naming the
source and what is wrong.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

from astropy.time import Time
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from llama.errors import InputError
from llama.ids import ROLES, validate_event_id

#: Keys of the skymap_info dict that both notice readers (VOEvent, igwn.gwalert) return.
SKYMAP_INFO_KEYS = (
    "graceid",  # superevent or event id
    "alert_type",  # one of ALERT_TYPES
    "role",  # 'test' or 'observation'
    "packet_type",  # GCN classic notice type (PACKET_TYPES)
    "ivorn",  # VOEvent IVORN, None for Kafka alerts
    "notice_time_iso",  # when the notice was issued (UTC, ISO 8601)
    "event_time_iso",  # GW event time (UTC, ISO 8601); None if the notice has none
    "event_time_gps",  # same, GPS seconds
    "far",  # false-alarm rate, Hz
    "pipeline",
    "group",  # CBC or Burst
    "search",
    "instruments",  # sorted list, e.g. ['H1', 'L1', 'V1']
    "significant",  # bool, None when the notice does not say
    "classification",  # p_astro: BNS, NSBH, BBH, Terrestrial (MassGap in O3); {} if absent
    "properties",  # HasNS, HasRemnant, HasMassGap; {} if absent
    "duration",  # Burst duration, s (None otherwise)
    "central_frequency",  # Burst central frequency, Hz (None otherwise)
    "external_coinc",  # RAVEN coincidence summary (EXTERNAL_COINC_KEYS) or None
    "skymap_url",  # where the sky map is published, None if not given
    "skymap_source",  # 'url', 'embedded' (Kafka), 'file' (given by the user) or None
    "retraction",  # True for a Retraction notice
)

ALERT_TYPES = ("EarlyWarning", "Preliminary", "Initial", "Update", "Retraction")
#: GCN classic packet type of each LVK alert type.
PACKET_TYPES = {
    "Preliminary": 150,
    "Initial": 151,
    "Update": 152,
    "EarlyWarning": 163,
    "Retraction": 164,
}

EXTERNAL_COINC_KEYS = (
    "gcn_notice_id",
    "ivorn",
    "observatory",
    "search",
    "time_difference",  # s, external minus GW
    "time_coincidence_far",  # Hz
    "time_sky_position_coincidence_far",  # Hz
    "combined_skymap_url",
    "combined_skymap_embedded",  # bool
)

_VOEVENT_EXTERNAL = {
    "External_GCN_Notice_Id": "gcn_notice_id",
    "External_Ivorn": "ivorn",
    "External_Observatory": "observatory",
    "External_Search": "search",
    "Time_Difference": "time_difference",
    "Time_Coincidence_FAR": "time_coincidence_far",
    "Time_Sky_Position_Coincidence_FAR": "time_sky_position_coincidence_far",
    "joint_skymap_fits": "combined_skymap_url",
}
# O2 notices carry these as top-level Params instead of a Properties group.
_O2_PROPERTIES = {"ProbHasNS": "HasNS", "ProbHasRemnant": "HasRemnant"}


#: Detector names an LVK notice may list (LIGO Hanford/Livingston/India, Virgo, KAGRA, GEO).
KNOWN_INSTRUMENTS = ("G1", "H1", "H2", "I1", "K1", "L1", "V1")
GROUPS = ("CBC", "Burst")
#: Plausible event and notice times, GPS seconds: the GPS epoch (1980-01-06) to 2100-01-01.
GPS_RANGE = (0.0, 3786480018.0)
MAX_TEXT_LENGTH = 1000
_ISO_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?Z?",
    re.ASCII,
)
_NOTICE_ID = re.compile(r"[0-9]{1,19}", re.ASCII)
_PACKET_TYPE = re.compile(r"[0-9]{1,4}", re.ASCII)
_SIGNIFICANT = {"": None, "0": False, "1": True, "false": False, "true": True}


def shown(value: Any) -> str:
    """A short, single-line rendering of a (possibly hostile) value."""
    text = repr(value)
    return text[:60] + ("..." if len(text) > 60 else "")


def normalize_alert_type(value: Any, source: str) -> str:
    """'EARLY_WARNING', 'EarlyWarning', 'PRELIMINARY', ... -> an ALERT_TYPES spelling."""
    if isinstance(value, str) and len(value) <= 40:
        key = value.replace("_", "").replace(" ", "").upper()
        for alert_type in ALERT_TYPES:
            if alert_type.upper() == key:
                return alert_type
    raise InputError(f"{source}: unknown alert type {shown(value)}")


def iso_time(value: Any, what: str, source: str) -> str:
    """``value`` if it is a plausible UTC ISO 8601 time string (GPS_RANGE), else InputError."""
    if not isinstance(value, str) or not _ISO_TIME.fullmatch(value):
        raise InputError(f"{source}: {what} {shown(value)} is not an ISO 8601 UTC time")
    gps_time(value, source, what)
    return value


def gps_time(iso: str, source: str, what: str = "event time") -> float:
    """GPS seconds of a UTC ISO 8601 time string, within GPS_RANGE."""
    try:
        with warnings.catch_warnings():  # erfa's "dubious year": the range check below says it
            warnings.simplefilter("ignore")
            gps = float(Time(iso.rstrip("Z"), scale="utc").gps)
    except (ValueError, TypeError, OverflowError):
        raise InputError(f"{source}: {what} {shown(iso)} is not an ISO 8601 time") from None
    if not GPS_RANGE[0] <= gps <= GPS_RANGE[1]:
        raise InputError(f"{source}: {what} {iso} is not between 1980 and 2100")
    return gps


def to_float(value: Any, what: str, source: str) -> float:
    """``float(value)`` if finite (bools refused), or a one-line InputError naming ``what``."""
    if isinstance(value, bool):
        raise InputError(f"{source}: {what} value {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{source}: {what} value {shown(value)} is not a number") from None
    if not math.isfinite(number):
        raise InputError(f"{source}: {what} is {number} (not finite)")
    return number


def optional_float(value: Any, what: str, source: str) -> float | None:
    """:func:`to_float`, passing None (absent) through."""
    return None if value is None else to_float(value, what, source)


def optional_positive(value: Any, what: str, source: str) -> float | None:
    """None, or a finite number > 0 (a duration in s, a frequency in Hz)."""
    number = optional_float(value, what, source)
    if number is not None and number <= 0:
        raise InputError(f"{source}: {what} {number!r} is not positive")
    return number


def checked_far(value: Any, source: str) -> float:
    """A false-alarm rate: a finite, positive number (Hz)."""
    far = to_float(value, "FAR", source)
    if far <= 0.0:
        raise InputError(f"{source}: FAR {far!r} Hz is not a finite positive rate")
    return far


def probabilities(values: dict[str, Any], what: str, source: str) -> dict[str, float]:
    """A name -> probability map: every value a finite number in [0, 1]."""
    checked = {}
    for name, value in values.items():
        number = to_float(value, f"{what}.{name}", source)
        if not 0.0 <= number <= 1.0:
            raise InputError(f"{source}: {what}.{name} = {number!r} is not a probability in [0, 1]")
        checked[text(name, f"{what} name", source)] = number
    return checked


def text(value: Any, what: str, source: str, optional: bool = False) -> str | None:
    """A short string of printable characters (None passes when ``optional``)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT_LENGTH:
        raise InputError(f"{source}: {what} {shown(value)} is not a short non-empty string")
    if not value.isprintable():
        raise InputError(f"{source}: {what} {shown(value)} contains control characters")
    return value


def checked_group(value: Any, source: str) -> str:
    """The analysis group: 'CBC' or 'Burst'."""
    if value not in GROUPS:
        raise InputError(f"{source}: group {shown(value)} is not CBC or Burst")
    return value


def checked_instruments(names: Any, source: str) -> list[str]:
    """A non-empty list of distinct known detector names (KNOWN_INSTRUMENTS), sorted."""
    if not isinstance(names, list) or not names:
        raise InputError(f"{source}: instruments {shown(names)} is not a non-empty list")
    unknown = [n for n in names if not isinstance(n, str) or n not in KNOWN_INSTRUMENTS]
    if unknown:
        raise InputError(f"{source}: unknown instrument {shown(unknown[0])}")
    if len(set(names)) != len(names):
        raise InputError(f"{source}: instruments {shown(names)} repeat a detector")
    return sorted(names)


def external_coinc_summary(values: dict[str, Any], source: str) -> dict[str, Any]:
    """Normalise and check a RAVEN external-coincidence block (EXTERNAL_COINC_KEYS)."""
    summary = {key: values.get(key) for key in EXTERNAL_COINC_KEYS}
    for key in ("time_difference", "time_coincidence_far", "time_sky_position_coincidence_far"):
        summary[key] = optional_float(summary[key], f"external_coinc.{key}", source)
    for key in ("ivorn", "observatory", "search", "combined_skymap_url"):
        summary[key] = text(summary[key], f"external_coinc.{key}", source, optional=True)
    notice_id = summary["gcn_notice_id"]
    if isinstance(notice_id, str) and _NOTICE_ID.fullmatch(notice_id):
        summary["gcn_notice_id"] = int(notice_id)
    elif notice_id is not None and (
        isinstance(notice_id, bool) or not isinstance(notice_id, int) or notice_id.bit_length() > 64
    ):
        raise InputError(f"{source}: external_coinc.gcn_notice_id {shown(notice_id)} is not an id")
    summary["combined_skymap_embedded"] = bool(summary["combined_skymap_embedded"])
    return summary


def _local(tag: str) -> str:
    """Element tag without its namespace."""
    return tag.rsplit("}", 1)[-1]


def _find(element: Element, *path: str) -> Element | None:
    """First descendant following ``path`` (local names, any namespace, any depth)."""
    for name in path:
        element = next(
            (e for e in element.iter() if _local(e.tag) == name and e is not element), None
        )
        if element is None:
            return None
    return element


def _text(element: Element | None) -> str | None:
    """Stripped text of an element; None when it is missing or empty."""
    return (element.text.strip() or None) if element is not None and element.text else None


def _param_values(element: Element) -> dict[str, str]:
    """name -> value of the Params directly under ``element``."""
    return {p.get("name", ""): p.get("value", "") for p in element if _local(p.tag) == "Param"}


def _parse_xml(data: bytes, source: str) -> Element:
    """Parse untrusted XML bytes safely."""
    if not data.strip():
        raise InputError(f"{source}: file is empty")
    try:
        return SafeET.fromstring(data)
    except DefusedXmlException as err:
        raise InputError(f"{source}: refused unsafe XML ({type(err).__name__})") from None
    except SafeET.ParseError as err:
        raise InputError(f"{source}: not well-formed XML ({err})") from None
    except (LookupError, ValueError, RecursionError) as err:  # unknown encoding, bad bytes
        raise InputError(f"{source}: unreadable XML ({type(err).__name__}: {err})") from None


def parse_voevent(data: bytes, source: str = "<voevent>") -> dict[str, Any]:
    """skymap_info (SKYMAP_INFO_KEYS) from the bytes of an LVK VOEvent; ``source`` names it."""
    root = _parse_xml(data, source)
    if _local(root.tag) != "VOEvent":
        raise InputError(f"{source}: not a VOEvent (root element <{_local(root.tag)}>)")
    what = _find(root, "What")
    params = _param_values(what) if what is not None else {}
    if "GraceID" not in params or "AlertType" not in params:
        raise InputError(f"{source}: not an LVK gravitational-wave notice (no GraceID/AlertType)")
    packet_type = params.get("Packet_Type", "")
    if not _PACKET_TYPE.fullmatch(packet_type) or int(packet_type) not in PACKET_TYPES.values():
        raise InputError(f"{source}: not an LVK notice (Packet_Type {shown(packet_type)})")
    try:
        graceid = validate_event_id(params["GraceID"])
    except InputError as err:
        raise InputError(f"{source}: {err}") from None
    role = root.get("role")
    if role not in ROLES:
        raise InputError(f"{source}: VOEvent role {shown(role)} is not 'test' or 'observation'")
    groups = {
        g.get("type") or g.get("name"): _param_values(g) for g in what if _local(g.tag) == "Group"
    }
    alert_type = normalize_alert_type(params["AlertType"], source)
    retraction = alert_type == "Retraction" or params.get("Retraction", "").lower() == "true"

    event_time = _text(_find(root, "WhereWhen", "ISOTime"))
    if not retraction:
        missing = [k for k in ("FAR", "Group", "Pipeline", "Instruments") if k not in params]
        if missing or event_time is None:
            raise InputError(f"{source}: notice lacks {', '.join(missing or ['ISOTime'])}")
    notice_time = _text(_find(root, "Who", "Date"))
    instruments = [i.strip() for i in params.get("Instruments", "").split(",") if i.strip()]
    significant = params.get("Significant", "").lower()
    if significant not in _SIGNIFICANT:
        raise InputError(f"{source}: Significant {shown(significant)} is not 0 or 1")

    properties = {_O2_PROPERTIES[k]: v for k, v in params.items() if k in _O2_PROPERTIES}
    properties |= groups.get("Properties", {})
    frequency = params.get("CentralFreq", params.get("frequency"))  # O3, O4 spellings
    external = groups.get("External Coincidence")
    skymap_url = groups.get("GW_SKYMAP", {}).get("skymap_fits") or None
    return {
        "graceid": graceid,
        "alert_type": alert_type,
        "role": role,
        "packet_type": int(packet_type),
        "ivorn": text(root.get("ivorn"), "ivorn", source, optional=True),
        "notice_time_iso": notice_time and iso_time(notice_time, "notice time (Who/Date)", source),
        "event_time_iso": event_time and iso_time(event_time, "event time (ISOTime)", source),
        "event_time_gps": gps_time(event_time, source) if event_time else None,
        "far": checked_far(params["FAR"], source) if "FAR" in params else None,
        "pipeline": text(params.get("Pipeline"), "Pipeline", source, optional=True),
        "group": checked_group(params["Group"], source) if "Group" in params else None,
        "search": text(params.get("Search"), "Search", source, optional=True),
        "instruments": checked_instruments(instruments, source) if not retraction else [],
        "significant": _SIGNIFICANT[significant],
        "classification": probabilities(groups.get("Classification", {}), "Classification", source),
        "properties": probabilities(properties, "Properties", source),
        "duration": optional_positive(params.get("Duration"), "Duration", source),
        "central_frequency": optional_positive(frequency, "frequency", source),
        "external_coinc": (
            external_coinc_summary(
                {_VOEVENT_EXTERNAL[k]: v for k, v in external.items() if k in _VOEVENT_EXTERNAL},
                source,
            )
            if external
            else None
        ),
        "skymap_url": text(skymap_url, "skymap_fits", source, optional=True),
        "skymap_source": "url" if skymap_url else None,
        "retraction": retraction,
    }


def read_input_bytes(path: str | Path) -> bytes:
    """The bytes of an input file, or a one-line InputError."""
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from None


def read_voevent(path: str | Path) -> dict[str, Any]:
    """skymap_info from a VOEvent file."""
    return parse_voevent(read_input_bytes(path), str(path))
