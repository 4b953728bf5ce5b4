"""GCN Kafka (gcn-kafka): LVK igwn.gwalert JSON alerts and IceCube LVK Nu Track Search notices.

:func:`kafka_consumer` makes the real ``gcn_kafka.Consumer`` (credentials from
gcn.nasa.gov); :func:`consume` runs any object with the confluent-kafka Consumer interface
(``subscribe``, ``consume``, ``close``; messages with ``value()``, ``error()``, ``topic()``).
librdkafka reconnects by itself; a consume error is logged and retried with backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from llama.listen.core import Listener

log = logging.getLogger(__name__)

DEFAULT_TOPICS = ("igwn.gwalert", "gcn.notices.icecube.lvk_nu_track_search")
POLL_S = 1.0
MAX_BACKOFF_S = 64.0


def kafka_consumer(
    client_id: str | None = None,
    client_secret: str | None = None,
    domain: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> Any:
    """A gcn_kafka.Consumer (no connection is made until it consumes)."""
    from gcn_kafka import Consumer

    return Consumer(config=dict(config or {}), client_id=client_id, client_secret=client_secret,
                    domain=domain)


def consume(listener: Listener, consumer: Any, topics: Sequence[str] = DEFAULT_TOPICS) -> None:
    """Hand every message of ``topics`` to ``listener`` until ``listener.done()``; closes the
    consumer at the end."""
    consumer.subscribe(list(topics))
    backoff = 1.0
    try:
        while not listener.done():
            try:
                messages = consumer.consume(num_messages=16, timeout=listener.timeout(POLL_S))
            except Exception as err:  # KafkaException and friends: transient, retry
                log.warning("kafka: consume failed (%s); retry in %.0f s", err, backoff)
                listener.wait(backoff)
                backoff = min(2 * backoff, MAX_BACKOFF_S)
                continue
            backoff = 1.0
            for message in messages:
                if message.error():
                    log.warning("kafka: %s: %s", message.topic(), message.error())
                    continue
                listener.handle(message.value())
                if listener.done():
                    break
            listener.heartbeat()
    finally:
        consumer.close()
