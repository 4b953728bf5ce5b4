"""VOEvent Transport Protocol (TCP, 4-byte big-endian length + XML; iamalive and ack) through
pygcn.

pygcn's ``gcn.listen`` never returns, so llama runs pygcn's own per-packet code
(``gcn.voeventclient._ingest_packet``: framing, iamalive reply, ack, VOEvent dispatch to a
handler) in a loop bounded by the listener's limits, with its own reconnect backoff. The
socket is wrapped so that the raw bytes of a packet pygcn cannot parse are still archived
(then rejected in one log line) and the connection stays up (the packet was read whole).
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

from llama.listen.core import Listener

log = logging.getLogger(__name__)

#: GCN's public VOEvent brokers (pygcn's defaults) and port.
DEFAULT_HOSTS = ("45.58.43.186", "68.169.57.253")
DEFAULT_PORT = 8099
DEFAULT_IVORN = "ivo://llama/listener"
#: Seconds without any packet (the broker sends iamalive every 60 s) before reconnecting.
IAMALIVE_TIMEOUT_S = 150.0
MAX_BACKOFF_S = 64.0
#: Longest wait for a packet before the heartbeat is rewritten (llama.health wants <= 30 s).
HEARTBEAT_WAIT_S = 20.0
_SIZE_BYTES = 4


class _Tee:
    """A socket that remembers the bytes received since :meth:`reset` (for pygcn's reads)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.received = bytearray()

    def reset(self) -> None:
        self.received.clear()

    def gettimeout(self) -> float | None:
        return self.sock.gettimeout()

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        n = self.sock.recv_into(buffer, nbytes)
        self.received += bytes(buffer[:n])
        return n

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)


class _OneLineParseErrors(logging.Filter):
    """pygcn logs an unparsable packet with a traceback and its base64; llama archives the
    packet and logs one line itself, so that record is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("failed to parse XML")


_pygcn_log = logging.getLogger("llama.listen.pygcn")
_pygcn_log.addFilter(_OneLineParseErrors())


def listen_vtp(
    listener: Listener,
    hosts: tuple[str, ...] = DEFAULT_HOSTS,
    port: int = DEFAULT_PORT,
    ivorn: str = DEFAULT_IVORN,
    iamalive_timeout_s: float = IAMALIVE_TIMEOUT_S,
) -> None:
    """Receive VOEvents from ``hosts`` (tried in turn) on ``port`` until ``listener.done()``;
    reconnects with exponential backoff (1 s doubling to MAX_BACKOFF_S)."""
    from gcn.voeventclient import _ingest_packet
    from lxml.etree import XMLSyntaxError

    def handler(payload: bytes, root: Any) -> None:
        listener.handle(payload)

    backoff, attempt = 1.0, 0
    while not listener.done():
        host = hosts[attempt % len(hosts)]
        attempt += 1
        try:
            sock = socket.create_connection((host, port), timeout=listener.timeout(10.0))
        except OSError as err:
            log.warning("vtp: cannot connect to %s:%d (%s); retry in %.0f s", host, port, err, backoff)
            listener.wait(backoff)
            backoff = min(2 * backoff, MAX_BACKOFF_S)
            continue
        log.info("vtp: connected to %s:%d", host, port)
        backoff = 1.0
        tee = _Tee(sock)
        last_packet = time.monotonic()
        try:
            while not listener.done():
                sock.settimeout(listener.timeout(HEARTBEAT_WAIT_S))
                tee.reset()
                try:
                    _ingest_packet(tee, ivorn, handler, _pygcn_log)
                    last_packet = time.monotonic()
                except XMLSyntaxError:
                    listener.handle(bytes(tee.received[_SIZE_BYTES:]))
                except TimeoutError:
                    silent = time.monotonic() - last_packet
                    if tee.received or silent >= iamalive_timeout_s:
                        raise  # a packet cut short, or the broker is gone
                listener.heartbeat()
        except TimeoutError:
            if not listener.done():
                log.warning("vtp: nothing (complete) from %s:%d for %.0f s; reconnecting",
                            host, port, time.monotonic() - last_packet)
        except OSError as err:
            log.warning("vtp: connection to %s:%d lost (%s); reconnecting", host, port, err)
            listener.wait(backoff)
        finally:
            sock.close()
