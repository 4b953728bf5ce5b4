"""Notifications: a short message per significance product, posted to a Slack-compatible
incoming webhook, once.

Who is told: only events with role=observation, upload on, not vetoed, not retracted; a test
event never notifies anyone. What: one message per significance product and content (its
sha256), recorded as a receipt ``<event dir>/.<product>.notified-<sha256[:16]>.json`` =
{"product", "sha256", "sent_utc", "webhook_host", "status", "attempts"} once the receiver
accepted it, so it is sent once; a failed post is retried (``attempts`` with backoff) and,
failing that, raises NotifyError with no receipt, so the next call tries again.

The webhook URL: ``$LLAMA_WEBHOOK_URL``, else the first line of the credentials file
``$LLAMA_WEBHOOK_FILE``, else ``<config dir>/llama/webhook_url`` ($XDG_CONFIG_HOME or
~/.config); none configured means nothing is sent (logged once per call).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llama.errors import LlamaError
from llama.event import Event
from llama.io.storage import atomic_write_json
from llama.science.searches import SEARCHES

log = logging.getLogger(__name__)

URL_VARIABLE = "LLAMA_WEBHOOK_URL"
FILE_VARIABLE = "LLAMA_WEBHOOK_FILE"
TIMEOUT_S = 10.0
ATTEMPTS = 3
BACKOFF_S = 1.0


class NotifyError(LlamaError):
    """A notification could not be delivered (it will be tried again)."""


def webhook_url() -> str | None:
    """The configured webhook URL (see the module docstring), or None."""
    if os.environ.get(URL_VARIABLE):
        return os.environ[URL_VARIABLE].strip()
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    path = Path(os.environ.get(FILE_VARIABLE) or Path(config) / "llama" / "webhook_url")
    try:
        lines = path.read_text().split()
    except OSError:
        return None
    return lines[0] if lines else None


def should_notify(flags: dict[str, Any]) -> bool:
    """Only real (observation) events with upload on, neither vetoed nor retracted."""
    return (flags.get("role") == "observation" and flags.get("upload") is True
            and not flags.get("vetoed") and not flags.get("retracted"))


def receipt_path(event: Event, product: str, sha256: str) -> Path:
    return event.directory / f".{product}.notified-{sha256[:16]}.json"


def message(event: Event, product: str, result: dict[str, Any]) -> dict[str, Any]:
    """The Slack message (``text``) for one significance result; a partial result (from an
    incomplete neutrino list) says so, and the final result follows as a message of its own."""
    odds, p_value = result.get("odds_ratio"), result.get("p_value")
    neutrinos = len(result.get("inputs", {}).get("neutrino_info", []) or [])
    partial = ("PARTIAL RESULT (neutrino list incomplete) "
               if result.get("neutrino_list_complete") is False else "")
    return {"text": f"llama: {event.eventid} {product}: {partial}odds ratio {odds}, "
                    f"p-value {p_value}, {neutrinos} neutrino(s) in the window"}


def post(url: str, payload: dict[str, Any], attempts: int = ATTEMPTS,
         timeout_s: float = TIMEOUT_S, backoff_s: float = BACKOFF_S) -> tuple[int, int]:
    """POST ``payload`` as JSON to ``url``; (HTTP status, attempts used). Retries failures
    with backoff ``backoff_s`` doubling; NotifyError after the last."""
    data = json.dumps(payload).encode()
    reason = ""
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(url, data=data,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as answer:
                return answer.status, attempt
        except urllib.error.HTTPError as err:
            reason = f"HTTP {err.code}"
        except (urllib.error.URLError, OSError) as err:
            reason = str(getattr(err, "reason", err))
        log.warning("webhook %s: attempt %d/%d failed (%s)", urllib.parse.urlsplit(url).netloc,
                    attempt, attempts, reason)
        if attempt < attempts:
            time.sleep(backoff_s * 2 ** (attempt - 1))
    raise NotifyError(f"webhook {urllib.parse.urlsplit(url).netloc}: {reason} "
                      f"after {attempts} attempts")


def notify_event(event: Event, url: str | None = None, **post_options: Any) -> list[str]:
    """Post one message per significance product of ``event`` not notified yet (see the
    module docstring); returns the products notified now."""
    if not should_notify(event.flags):
        return []
    products = [event.directory / s.output_file for s in SEARCHES.values()]
    products = [path for path in products if path.exists()]
    url = url or webhook_url()
    if not products:
        return []
    if url is None:
        log.warning("%s: no webhook configured ($%s): not notified", event.eventid, URL_VARIABLE)
        return []
    sent = []
    for path in products:
        data = path.read_bytes()
        sha256 = hashlib.sha256(data).hexdigest()
        receipt = receipt_path(event, path.name, sha256)
        if receipt.exists():
            continue
        status, attempts = post(url, message(event, path.name, json.loads(data)), **post_options)
        atomic_write_json(receipt, {
            "product": path.name,
            "sha256": sha256,
            "sent_utc": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "webhook_host": urllib.parse.urlsplit(url).netloc,
            "status": status,
            "attempts": attempts,
        })
        sent.append(path.name)
    return sent
