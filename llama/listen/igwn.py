"""LVK's igwn-alert (Kafka via hop/SCiMMA): GraceDB's superevent messages.

igwn-alert messages are GraceDB JSON (not igwn.gwalert): every one is archived; LVK alerts
among them (igwn.gwalert form) go on to the intake, the others are only archived.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from typing import Any

from llama.listen.core import HEARTBEAT_S, Listener

log = logging.getLogger(__name__)

DEFAULT_TOPICS = ("superevent",)
DEFAULT_GROUP = "gracedb"


def igwn_client(group: str = DEFAULT_GROUP, **kwargs: Any) -> Any:
    """An igwn_alert.client (credentials from hop's auth.toml unless given)."""
    from igwn_alert import client

    return client(group=group, **kwargs)


def listen_igwn(listener: Listener, client: Any, topics: Sequence[str] = DEFAULT_TOPICS) -> None:
    """Hand every igwn-alert message to ``listener``; stops the client once ``listener.done()``
    (a time limit is enforced by the heartbeat thread; the client itself retries transient
    Kafka errors)."""

    def callback(topic: str, payload: Any) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        listener.handle(raw)
        if listener.done():
            client.stop()

    def beat() -> None:  # the client blocks between messages: heartbeat beside it
        while not listener.done():
            listener.heartbeat()
            listener.wait(HEARTBEAT_S)
        client.stop()

    if not listener.done():
        threading.Thread(target=beat, daemon=True).start()
        client.listen(callback, list(topics))
