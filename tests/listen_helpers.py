"""Loopback stand-ins for the online services (all on 127.0.0.1, every loop bounded):

* :class:`VtpServer`: a VOEvent Transport Protocol broker (4-byte big-endian length + XML,
  iamalive, reads the client's acks) over a real TCP socket, as GCN's brokers speak it;
* :class:`HttpServer`: a static file server standing in for GraceDB (sky maps) or a
  Slack-compatible webhook receiver (records POSTs, fails the first ``fail_first`` of them);
* the MS181101ab notices of ../shared/data and a neutrino source around its time.

Used by tests/test_listen.py, tests/test_run.py, tests/test_notify.py and
benchmarks/bench_latency.py.
"""

from __future__ import annotations

import http.server
import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np

import llama.io.neutrinos as nu
from llama.significance import parse_event_time

EVENT = "MS181101ab"
EVENT_GPS = 1225146184.654437
USERGUIDE = b"https://emfollow.docs.ligo.org/userguide/_static/"
SEQUENCE = ("1-EarlyWarning", "2-Preliminary", "3-Initial", "4-Update", "5-Retraction", "6-Update")
IC40_T0 = 54800.74028365  # an IC40 track with 6 more within +-500 s, the next 2401 s later
IAMALIVE = (b"<?xml version='1.0' encoding='UTF-8'?><trn:Transport role=\"iamalive\" "
            b"version=\"1.0\" xmlns:trn=\"http://telescope-networks.org/schema/Transport/v1.1\">"
            b"<Origin>ivo://llama-test/broker</Origin><TimeStamp>2026-01-01T00:00:00</TimeStamp>"
            b"</trn:Transport>")


def voevent_bytes(data: Path, step: str, base_url: str) -> bytes:
    """The real MS181101ab notice ``step`` with its sky-map URLs on ``base_url``."""
    raw = (data / "gw_alerts" / "voevent" / f"MS181101ab-{step}.xml").read_bytes()
    return raw.replace(USERGUIDE, base_url.encode())


def unrelated_notices(data: Path, n: int) -> list[bytes]:
    """``n`` distinct non-LVK notices: the real IceCube alert VOEvents, each IVORN numbered."""
    originals = sorted((data / "icecube" / "alerts_voevent").glob("*.xml"))
    notices = []
    for k in range(n):
        raw = originals[k % len(originals)].read_bytes()
        start = raw.index(b'ivorn="') + len(b'ivorn="')
        end = raw.index(b'"', start)
        notices.append(raw[:end] + f"-copy{k:04d}".encode() + raw[end:])
    return notices


def ic40_stretch(data: Path, t_gw_mjd: float) -> nu.NeutrinoList:
    """The 7 real IC40 tracks within +-500 s of IC40_T0 and the next track after them (so a
    list of them is complete), shifted to the GW time ``t_gw_mjd``; ``data`` is shared/data."""
    events = nu.ReleaseCatalog(data / "icecube" / "icecube_10year_ps").events
    window = 500.0 / 86400.0
    first = events.mjd.searchsorted(IC40_T0 - window, "left")
    later = events.mjd.searchsorted(IC40_T0 + window, "right")
    stretch = events.select(slice(first, later + 1))
    stretch.mjd = stretch.mjd + (t_gw_mjd - IC40_T0)
    return stretch


def write_neutrinos(data: Path, path: Path, t_gw_gps: float = EVENT_GPS) -> Path:
    """A LLAMA JSON neutrino list of :func:`ic40_stretch` around ``t_gw_gps``."""
    stretch = ic40_stretch(data, parse_event_time(t_gw_gps))
    nu.write_llama_json(stretch, path)
    assert np.all(np.isfinite(stretch.mjd))
    return path


def fresh_output(data: Path, tmp_path: Path, monkeypatch) -> Path:
    """A fresh LLAMA_OUTPUT_DIR with default settings, no Luigi configuration of the user's
    and a neutrino source around MS181101ab (:func:`write_neutrinos`)."""
    from llama.config import Settings

    monkeypatch.setenv("LLAMA_OUTPUT_DIR", str(tmp_path / "out"))
    for name in Settings.__dataclass_fields__:
        monkeypatch.delenv(f"LLAMA_{name.upper()}", raising=False)
    monkeypatch.delenv("LUIGI_CONFIG_PATH", raising=False)
    source = write_neutrinos(data, tmp_path / "neutrinos.json")
    monkeypatch.setenv("LLAMA_NEUTRINO_SOURCE", str(source))
    return tmp_path / "out"


def _packet(payload: bytes) -> bytes:
    return struct.pack("!I", len(payload)) + payload


class VtpServer:
    """A one-connection-at-a-time VOEvent broker on 127.0.0.1 sending :meth:`send` payloads.

    Each accepted connection first gets an iamalive; the client's answers (iamalive, acks)
    are read by a thread and counted in ``acks``.
    """

    def __init__(self, accept_timeout_s: float = 20.0) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(accept_timeout_s)
        self.port = self.sock.getsockname()[1]
        self.conn: socket.socket | None = None
        self.acks = 0
        self.iamalive_answers = 0
        self._connected = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        conn.settimeout(20.0)
        conn.sendall(_packet(IAMALIVE))
        self.conn = conn
        reader = threading.Thread(target=self._read, args=(conn,), daemon=True)
        reader.start()
        self._threads.append(reader)
        self._connected.set()

    def _read(self, conn: socket.socket) -> None:
        buffer = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while len(buffer) >= 4:
                (size,) = struct.unpack("!I", buffer[:4])
                if len(buffer) < 4 + size:
                    break
                payload, buffer = buffer[4:4 + size], buffer[4 + size:]
                if b'role="ack"' in payload:
                    self.acks += 1
                elif b'role="iamalive"' in payload:
                    self.iamalive_answers += 1

    def send(self, payloads: list[bytes], timeout_s: float = 20.0) -> None:
        """Send each payload as one packet (waits for the client to connect)."""
        assert self._connected.wait(timeout_s), "the listener never connected"
        assert self.conn is not None
        self.conn.sendall(b"".join(_packet(p) for p in payloads))

    def drop(self) -> None:
        """Close the current connection (the listener must reconnect) and accept again."""
        self._connected.clear()
        if self.conn is not None:
            self.conn.shutdown(socket.SHUT_RDWR)  # FIN now, though a reader thread waits on it
            self.conn.close()
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        for sock in (self.conn, self.sock):
            if sock is not None:
                sock.close()
        for thread in self._threads:
            thread.join(timeout=5)


class HttpServer:
    """127.0.0.1 HTTP server: GET serves ``files`` (name -> bytes; 500 to the first
    ``fail_gets``); POST records the body in ``posts`` and answers 500 to the first
    ``fail_first`` POSTs, 200 after."""

    def __init__(self, files: dict[str, bytes] | None = None, fail_first: int = 0) -> None:
        self.files = dict(files or {})
        self.fail_first = fail_first
        self.fail_gets = 0
        self.gets: list[str] = []
        self.posts: list[bytes] = []
        self.post_attempts = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                name = self.path.lstrip("/").split(",")[0]
                owner.gets.append(name)
                body = owner.files.get(name)
                failing = len(owner.gets) <= owner.fail_gets
                self.send_response(500 if failing else 200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner.post_attempts += 1
                failing = owner.post_attempts <= owner.fail_first
                if not failing:
                    owner.posts.append(body)
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def wait_for(condition, timeout_s: float = 10.0, step_s: float = 0.01) -> bool:
    """Poll ``condition()`` until true or ``timeout_s``; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step_s)
    return bool(condition())
