"""GCN Kafka ``igwn.gwalert`` alerts (JSON, or Avro via fastavro) -> skymap_info + sky map.

The alert carries its multi-order FITS sky map base64-encoded (JSON) or as raw
bytes (Avro) in ``event.skymap``; Retraction alerts have ``event: null``.
The returned skymap_info has the same keys as llama.io.voevent.parse_voevent.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from pathlib import Path
from typing import Any

from llama.errors import InputError
from llama.ids import validate_event_id
from llama.io.voevent import (
    PACKET_TYPES,
    SKYMAP_INFO_KEYS,
    checked_far,
    checked_group,
    checked_instruments,
    external_coinc_summary,
    gps_time,
    iso_time,
    normalize_alert_type,
    optional_positive,
    probabilities,
    read_input_bytes,
    shown,
    text,
)

AVRO_MAGIC = b"Obj\x01"
FITS_MAGIC = b"SIMPLE"


def _decode_avro(data: bytes, source: str) -> Any:
    """The single record of an Avro object-container file."""
    try:
        import fastavro
    except ImportError:
        raise InputError(
            f"{source}: is an Avro alert; reading it needs fastavro (pip install fastavro)"
        ) from None
    try:
        records = list(fastavro.reader(io.BytesIO(data)))
    except Exception as err:  # noqa: BLE001 - any failure of the decoder on hostile bytes
        raise InputError(f"{source}: unreadable Avro alert ({type(err).__name__})") from None
    if len(records) != 1:
        raise InputError(f"{source}: expected one alert in the Avro file, found {len(records)}")
    return records[0]


def _no_constant(name: str) -> Any:
    """JSON has no NaN or Infinity: refuse them (Python's json module accepts them)."""
    raise ValueError(f"{name} is not a JSON value")


def decode_gwalert(data: bytes, source: str = "<gwalert>") -> dict[str, Any]:
    """The alert record from the bytes of an igwn.gwalert JSON or Avro file."""
    if not data.strip():
        raise InputError(f"{source}: file is empty")
    if data.startswith(AVRO_MAGIC):
        alert = _decode_avro(data, source)
    else:
        try:
            alert = json.loads(data, parse_constant=_no_constant)
        except (ValueError, RecursionError) as err:
            raise InputError(f"{source}: not valid JSON ({err})") from None
    if not isinstance(alert, dict):
        raise InputError(f"{source}: expected a JSON object, got {type(alert).__name__}")
    return alert


def read_gwalert(path: str | Path) -> dict[str, Any]:
    """The alert record of an igwn.gwalert file (JSON or Avro)."""
    return decode_gwalert(read_input_bytes(path), str(path))


def role_of(graceid: str) -> str:
    """Kafka alerts carry no role: production superevents (S + YYMMDD + letters) are
    observations; mock/test ones (MS, TS, GS, ...) and simulated ids (SIM-...) are tests."""
    return "observation" if re.fullmatch(r"S\d{6}[a-z]{1,3}", graceid) else "test"


def _field(record: dict[str, Any], key: str, where: str, source: str) -> Any:
    """``record[key]``, or a one-line InputError naming the missing key."""
    try:
        return record[key]
    except KeyError:
        raise InputError(f"{source}: alert lacks {where}{key!r}") from None


def _number(value: Any, what: str, source: str) -> Any:
    """``value`` if it is a JSON number (int or float, not bool) or None, else InputError."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise InputError(f"{source}: {what} {shown(value)} is not a number")
    return value


def _object(value: Any, what: str, source: str) -> dict[str, Any]:
    """A JSON object (None -> {}), else InputError."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{source}: {what} is not an object")
    return value


def _probabilities(value: Any, what: str, source: str) -> dict[str, float]:
    """A name -> probability map (None or missing -> {}); values JSON numbers in [0, 1]."""
    values = _object(value, f"event.{what}", source)
    for name, number in values.items():
        _number(number, f"event.{what}.{name}", source)
    return probabilities(values, f"event.{what}", source)


def _event_fields(event: dict[str, Any], source: str) -> dict[str, Any]:
    """The checked skymap_info fields of a non-retraction ``event`` (igwn.gwalert rules)."""
    for key in ("time", "far", "significant", "instruments", "group", "pipeline"):
        _field(event, key, "event.", source)
    if not isinstance(event["significant"], bool):
        raise InputError(f"{source}: event.significant {shown(event['significant'])} is not bool")
    event_time = iso_time(event["time"], "event.time", source)
    skymap = event.get("skymap")
    if skymap is not None and not isinstance(skymap, str | bytes):
        raise InputError(f"{source}: event.skymap is neither base64 text nor bytes")
    return {
        "event_time_iso": event_time,
        "event_time_gps": gps_time(event_time, source, "event.time"),
        "far": checked_far(_number(event["far"], "event.far", source), source),
        "pipeline": text(event["pipeline"], "event.pipeline", source),
        "group": checked_group(event["group"], source),
        "search": text(event.get("search"), "event.search", source, optional=True),
        "instruments": checked_instruments(event["instruments"], source),
        "significant": event["significant"],
        "classification": _probabilities(event.get("classification"), "classification", source),
        "properties": _probabilities(event.get("properties"), "properties", source),
        "duration": optional_positive(
            _number(event.get("duration"), "event.duration", source), "event.duration", source
        ),
        "central_frequency": optional_positive(
            _number(event.get("central_frequency"), "event.central_frequency", source),
            "event.central_frequency",
            source,
        ),
        "skymap_source": "embedded" if skymap is not None else None,
    }


def _retracted_event() -> dict[str, Any]:
    """The skymap_info event fields of a Retraction, which carries no event."""
    unknown = ("event_time_iso", "event_time_gps", "far", "pipeline", "group", "search",
               "significant", "duration", "central_frequency", "skymap_source")
    return dict.fromkeys(unknown) | {"instruments": [], "classification": {}, "properties": {}}


def gwalert_skymap_info(alert: dict[str, Any], source: str = "<gwalert>") -> dict[str, Any]:
    """skymap_info (llama.io.voevent.SKYMAP_INFO_KEYS) of an igwn.gwalert record, checked
    against the igwn.gwalert schema's field types and value ranges; InputError otherwise."""
    try:
        graceid = validate_event_id(_field(alert, "superevent_id", "", source))
    except InputError as err:
        raise InputError(f"{source}: {err}") from None
    alert_type = normalize_alert_type(_field(alert, "alert_type", "", source), source)
    notice_time = iso_time(_field(alert, "time_created", "", source), "time_created", source)
    for name, url in _object(alert.get("urls"), "'urls'", source).items():
        text(url, f"urls.{name}", source, optional=True)
    event = _field(alert, "event", "", source)
    retraction = alert_type == "Retraction"
    if retraction and event is not None:
        raise InputError(f"{source}: a Retraction alert must have event null")
    if not retraction and not isinstance(event, dict):
        raise InputError(f"{source}: {alert_type} alert has no event object")
    external = _object(alert.get("external_coinc"), "'external_coinc'", source)
    for key in ("time_difference", "time_coincidence_far", "time_sky_position_coincidence_far"):
        _number(external.get(key), f"external_coinc.{key}", source)
    combined = external.get("combined_skymap")
    if combined is not None and not isinstance(combined, str | bytes):
        raise InputError(f"{source}: external_coinc.combined_skymap is neither text nor bytes")
    info = {
        "graceid": graceid,
        "alert_type": alert_type,
        "role": role_of(graceid),
        "packet_type": PACKET_TYPES[alert_type],
        "ivorn": None,
        "notice_time_iso": notice_time,
        **(_retracted_event() if retraction else _event_fields(event, source)),
        "external_coinc": (
            external_coinc_summary(
                {**external, "combined_skymap_embedded": combined is not None}, source
            )
            if external
            else None
        ),
        "skymap_url": None,
        "retraction": retraction,
    }
    return {key: info[key] for key in SKYMAP_INFO_KEYS}


def extract_skymap(alert: dict[str, Any], source: str = "<gwalert>") -> bytes | None:
    """The embedded multi-order FITS sky map (bytes), or None when the alert has none."""
    event = alert.get("event")
    skymap = event.get("skymap") if isinstance(event, dict) else None
    if skymap is None:
        return None
    if isinstance(skymap, str):
        try:
            skymap = base64.b64decode(skymap, validate=True)
        except (binascii.Error, ValueError):
            raise InputError(f"{source}: event.skymap is not valid base64") from None
    if not isinstance(skymap, bytes) or not skymap.startswith(FITS_MAGIC):
        raise InputError(f"{source}: event.skymap is not a FITS file")
    return skymap
