"""The part of every listener that is not transport: handle one notice, limits, heartbeat."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from llama import health
from llama.errors import LlamaError
from llama.ingest import Receipt, receive

log = logging.getLogger(__name__)

#: Least seconds between two heartbeat writes.
HEARTBEAT_S = 1.0


@dataclass(frozen=True)
class Limits:
    """When a listener stops: after ``max_notices`` notices or ``timeout_s`` seconds (None:
    never; the production setting), or when :meth:`Listener.stop` is called."""

    max_notices: int | None = None
    timeout_s: float | None = None


class Listener:
    """Receives notices for one transport: :meth:`handle` archives and ingests each one and
    never raises for a bad notice; :meth:`done` tells the transport loop when to stop.
    ``run_dir`` defaults to the live run. (The daemon sees new events by watching the event
    directories.)
    """

    def __init__(
        self,
        transport: str,
        run_dir: str | os.PathLike | None = None,
        limits: Limits = Limits(),
    ) -> None:
        self.transport = transport
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.limits = limits
        self.count = 0
        self.rejected = 0
        self._start = time.monotonic()
        self._stop = threading.Event()
        self.started_utc = health.now_utc()
        self.last_notice_utc: str | None = None
        self._last_beat = -HEARTBEAT_S

    @property
    def heartbeat_path(self) -> Path:
        return health.listener_heartbeat_path(self.transport)

    def heartbeat(self, force: bool = False) -> None:
        """Rewrite the heartbeat file (llama.health.write_heartbeat; at most every HEARTBEAT_S
        unless ``force``); a failure is logged, never raised."""
        if not force and time.monotonic() - self._last_beat < HEARTBEAT_S:
            return
        self._last_beat = time.monotonic()
        try:
            health.write_heartbeat(self.heartbeat_path, started_utc=self.started_utc,
                                   transport=self.transport, last_notice_utc=self.last_notice_utc)
        except (OSError, LlamaError) as err:
            log.error("cannot write heartbeat %s: %s", self.heartbeat_path, err)

    def handle(self, raw: bytes) -> Receipt | None:
        """Archive and ingest one notice; a bad one is logged in one line and counted."""
        received = datetime.now(UTC)
        receipt = None
        try:
            receipt = receive(raw, self.transport, self.run_dir, received)
        except LlamaError as err:
            self.rejected += 1
            log.error("%s: rejected notice: %s", self.transport, err)
        except Exception as err:  # a listener survives whatever one notice does
            self.rejected += 1
            log.error("%s: rejected notice (%s: %s)", self.transport, type(err).__name__, err)
        self.count += 1
        self.last_notice_utc = received.isoformat(timespec="milliseconds")
        self.heartbeat(force=self.done())  # the last notice of a bounded run is recorded
        if receipt is not None:
            if receipt.event is not None:
                log.info("%s: %s -> %s", self.transport, receipt.archived.name, receipt.event.eventid)
            elif not receipt.new:
                log.info("%s: duplicate %s, already archived", self.transport, receipt.archived.name)
        return receipt

    def remaining(self) -> float | None:
        """Seconds left before the time limit (None: no limit)."""
        if self.limits.timeout_s is None:
            return None
        return max(0.0, self.limits.timeout_s - (time.monotonic() - self._start))

    def done(self) -> bool:
        """True once a limit is reached or :meth:`stop` was called."""
        limit = self.limits.max_notices
        return (
            self._stop.is_set()
            or (limit is not None and self.count >= limit)
            or self.remaining() == 0.0
        )

    def stop(self) -> None:
        """Ask the transport loop to stop (thread-safe)."""
        self._stop.set()

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` (backoff), cut short by :meth:`stop` or the time limit."""
        left = self.remaining()
        self._stop.wait(seconds if left is None else min(seconds, left))

    def timeout(self, longest: float) -> float:
        """A blocking call's timeout: ``longest`` s, shortened to the time left (min 0.05 s)."""
        left = self.remaining()
        return longest if left is None else max(0.05, min(longest, left))
