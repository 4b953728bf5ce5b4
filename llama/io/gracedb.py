"""GraceDB client: a superevent's latest VOEvent and its sky map (through ligo-gracedb).

Nothing is written here: :func:`fetch_latest_voevent` returns the raw notice, its
parsed skymap_info and (optionally) the sky-map bytes. Every failure is one line:
an unreachable server is a ConfigurationError, a bad answer an InputError.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from llama.errors import ConfigurationError, InputError
from llama.ids import validate_event_id

DEFAULT_GRACEDB_URL = "https://gracedb.ligo.org/api/"
#: Environment variable overriding DEFAULT_GRACEDB_URL.
GRACEDB_URL_VARIABLE = "LLAMA_GRACEDB_URL"


@dataclass
class GraceDbVOEvent:
    """A VOEvent fetched from GraceDB (nothing written yet).

    ``raw`` and ``name`` are the notice's bytes and GraceDB file name, ``info`` its
    skymap_info (llama.io.voevent.parse_voevent); ``skymap`` the sky-map bytes when
    fetched, under the file name ``skymap_name`` (GraceDB's ``,N`` version suffix removed).
    """

    raw: bytes
    name: str
    info: dict[str, Any]
    skymap: bytes | None = None
    skymap_name: str | None = None


def gracedb_url(url: str | None = None) -> str:
    """The GraceDB API root: ``url`` > ``$LLAMA_GRACEDB_URL`` > DEFAULT_GRACEDB_URL."""
    return url or os.environ.get(GRACEDB_URL_VARIABLE) or DEFAULT_GRACEDB_URL


def fetch_latest_voevent(
    graceid: str, url: str | None = None, auth: bool = False, want_skymap: bool = True
) -> GraceDbVOEvent:
    """The latest VOEvent of superevent ``graceid`` from GraceDB, and its sky map.

    ``url`` is the API root (see :func:`gracedb_url`); ``auth`` uses the X.509/SciToken
    credentials ligo-gracedb finds (default: anonymous). The sky map named by the
    notice is downloaded when ``want_skymap`` and the notice is not a Retraction.
    The id is validated before any request is made.
    """
    try:
        import requests
        from ligo.gracedb.exceptions import HTTPError
        from ligo.gracedb.rest import GraceDb
    except ImportError:
        raise ConfigurationError(
            "fetching from GraceDB needs the GraceDB client: pip install 'llama[gracedb]'"
        ) from None

    from llama.io.voevent import parse_voevent  # astropy: keep importing this module light

    validate_event_id(graceid)
    url = gracedb_url(url)
    try:
        client = GraceDb(service_url=url, force_noauth=not auth)
        voevents = client.voevents(graceid).json()["voevents"]
        if not voevents:
            raise InputError(f"GraceDB {url}: {graceid} has no VOEvent yet")
        latest = max(voevents, key=lambda v: v["N"])
        raw = client.files(graceid, latest["filename"]).content
        info = parse_voevent(raw, f"GraceDB {graceid}/{latest['filename']}")
        notice = GraceDbVOEvent(raw, latest["filename"], info)
        if want_skymap and info["skymap_url"] and not info["retraction"]:
            filename = info["skymap_url"].rsplit("/", 1)[-1]
            notice.skymap = client.files(graceid, filename).content
            notice.skymap_name = filename.split(",")[0]
    except (requests.ConnectionError, requests.Timeout):
        raise ConfigurationError(
            f"cannot reach GraceDB at {url}: network unreachable or server not answering"
        ) from None
    except HTTPError as err:
        raise InputError(f"GraceDB {url}: {graceid}: HTTP {err.status_code} {err.reason}") from None
    except requests.RequestException as err:
        raise ConfigurationError(
            f"GraceDB request to {url} failed ({type(err).__name__})"
        ) from None
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"GraceDB {url}: unexpected answer for {graceid} ({err!r})") from None
    return notice
