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
    checked_far,
    external_coinc_summary,
    gps_time,
    normalize_alert_type,
    optional_float,
    read_input_bytes,
    to_float,
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
    except (ValueError, EOFError, TypeError, KeyError, IndexError) as err:
        raise InputError(f"{source}: unreadable Avro alert ({type(err).__name__})") from None
    if len(records) != 1:
        raise InputError(f"{source}: expected one alert in the Avro file, found {len(records)}")
    return records[0]


def decode_gwalert(data: bytes, source: str = "<gwalert>") -> dict[str, Any]:
    """The alert record from the bytes of an igwn.gwalert JSON or Avro file."""
    if not data.strip():
        raise InputError(f"{source}: file is empty")
    if data.startswith(AVRO_MAGIC):
        alert = _decode_avro(data, source)
    else:
        try:
            alert = json.loads(data)
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


def _probabilities(value: Any, what: str, source: str) -> dict[str, float]:
    """A name -> probability map (None or missing -> {})."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{source}: event.{what} is not an object")
    return {k: to_float(v, k, source) for k, v in value.items()}


def gwalert_skymap_info(alert: dict[str, Any], source: str = "<gwalert>") -> dict[str, Any]:
    """skymap_info (llama.io.voevent.SKYMAP_INFO_KEYS) of an igwn.gwalert record."""
    try:
        graceid = validate_event_id(_field(alert, "superevent_id", "", source))
    except InputError as err:
        raise InputError(f"{source}: {err}") from None
    alert_type = normalize_alert_type(_field(alert, "alert_type", "", source), source)
    event = _field(alert, "event", "", source)
    retraction = alert_type == "Retraction"
    if event is None and not retraction:
        raise InputError(f"{source}: {alert_type} alert has no event")
    if event is not None and not isinstance(event, dict):
        raise InputError(f"{source}: 'event' is not an object")
    event = event or {}
    if not retraction:
        for key in ("time", "far", "instruments", "group", "pipeline"):
            _field(event, key, "event.", source)
    event_time = event.get("time")
    instruments = event.get("instruments") or []
    if not isinstance(instruments, list) or not all(isinstance(i, str) for i in instruments):
        raise InputError(f"{source}: event.instruments is not a list of names")
    external = alert.get("external_coinc")
    if external is not None and not isinstance(external, dict):
        raise InputError(f"{source}: 'external_coinc' is not an object")
    skymap_present = event.get("skymap") is not None
    return {
        "graceid": graceid,
        "alert_type": alert_type,
        "role": role_of(graceid),
        "packet_type": PACKET_TYPES[alert_type],
        "ivorn": None,
        "notice_time_iso": alert.get("time_created"),
        "event_time_iso": event_time,
        "event_time_gps": gps_time(event_time, source) if event_time else None,
        "far": checked_far(event["far"], source) if "far" in event else None,
        "pipeline": event.get("pipeline"),
        "group": event.get("group"),
        "search": event.get("search"),
        "instruments": sorted(instruments),
        "significant": event.get("significant"),
        "classification": _probabilities(event.get("classification"), "classification", source),
        "properties": _probabilities(event.get("properties"), "properties", source),
        "duration": optional_float(event.get("duration"), "duration", source),
        "central_frequency": optional_float(
            event.get("central_frequency"), "central_frequency", source
        ),
        "external_coinc": (
            external_coinc_summary(
                {
                    **external,
                    "combined_skymap_embedded": external.get("combined_skymap") is not None,
                },
                source,
            )
            if external
            else None
        ),
        "skymap_url": None,
        "skymap_source": "embedded" if skymap_present else None,
        "retraction": retraction,
    }


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
