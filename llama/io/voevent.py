"""LVK GCN VOEvent notices (O2, O3 and O4 formats, all alert types) -> skymap_info.

Parsed with defusedxml, so entity-expansion and external-entity tricks are
refused. Every problem with a notice is an InputError with one line naming the
source and what is wrong.
"""

from __future__ import annotations

import math
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


def normalize_alert_type(value: Any, source: str) -> str:
    """'EARLY_WARNING', 'EarlyWarning', 'PRELIMINARY', ... -> an ALERT_TYPES spelling."""
    key = str(value).replace("_", "").replace(" ", "").upper()
    for alert_type in ALERT_TYPES:
        if alert_type.upper() == key:
            return alert_type
    raise InputError(f"{source}: unknown alert type {value!r}")


def gps_time(iso: str, source: str) -> float:
    """GPS seconds of a UTC ISO 8601 time string."""
    try:
        return float(Time(iso, scale="utc").gps)
    except ValueError:
        raise InputError(f"{source}: event time {iso!r} is not an ISO 8601 time") from None


def to_float(value: Any, what: str, source: str) -> float:
    """``float(value)``, or a one-line InputError naming ``what``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{source}: {what} value {value!r} is not a number") from None
    if math.isnan(number):
        raise InputError(f"{source}: {what} is NaN")
    return number


def optional_float(value: Any, what: str, source: str) -> float | None:
    """:func:`to_float`, passing None (absent) through."""
    return None if value is None else to_float(value, what, source)


def checked_far(value: Any, source: str) -> float:
    """A false-alarm rate: a finite, non-negative number (Hz)."""
    far = to_float(value, "FAR", source)
    if not 0.0 <= far < math.inf:
        raise InputError(f"{source}: FAR {far!r} Hz is not a finite non-negative rate")
    return far


def external_coinc_summary(values: dict[str, Any], source: str) -> dict[str, Any]:
    """Normalise a RAVEN external-coincidence block to EXTERNAL_COINC_KEYS."""
    summary = {key: values.get(key) for key in EXTERNAL_COINC_KEYS}
    for key in ("time_difference", "time_coincidence_far", "time_sky_position_coincidence_far"):
        if summary[key] is not None:
            summary[key] = to_float(summary[key], key, source)
    if summary["gcn_notice_id"] is not None and str(summary["gcn_notice_id"]).isdigit():
        summary["gcn_notice_id"] = int(summary["gcn_notice_id"])
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
    if not packet_type.isdigit() or int(packet_type) not in PACKET_TYPES.values():
        raise InputError(f"{source}: not an LVK notice (Packet_Type {packet_type!r})")
    try:
        graceid = validate_event_id(params["GraceID"])
    except InputError as err:
        raise InputError(f"{source}: {err}") from None
    role = root.get("role")
    if role not in ROLES:
        raise InputError(f"{source}: VOEvent role {role!r} is not 'test' or 'observation'")
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
        "ivorn": root.get("ivorn"),
        "notice_time_iso": _text(_find(root, "Who", "Date")),
        "event_time_iso": event_time,
        "event_time_gps": gps_time(event_time, source) if event_time else None,
        "far": checked_far(params["FAR"], source) if "FAR" in params else None,
        "pipeline": params.get("Pipeline"),
        "group": params.get("Group"),
        "search": params.get("Search"),
        "instruments": sorted(
            i.strip() for i in params.get("Instruments", "").split(",") if i.strip()
        ),
        "significant": bool(int(params["Significant"]))
        if params.get("Significant", "").isdigit()
        else None,
        "classification": {
            k: to_float(v, k, source) for k, v in groups.get("Classification", {}).items()
        },
        "properties": {k: to_float(v, k, source) for k, v in properties.items()},
        "duration": optional_float(params.get("Duration"), "Duration", source),
        "central_frequency": optional_float(frequency, "frequency", source),
        "external_coinc": (
            external_coinc_summary(
                {_VOEVENT_EXTERNAL[k]: v for k, v in external.items() if k in _VOEVENT_EXTERNAL},
                source,
            )
            if external
            else None
        ),
        "skymap_url": skymap_url,
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
