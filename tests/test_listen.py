"""Listeners: VOEvent over a real TCP socket (pygcn), GCN Kafka (gcn-kafka's consumer
interface), a dropped-file directory; archive first, duplicates idempotent, bad notices
rejected in one line each, the listener keeps running."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from pathlib import Path

import pytest
from conftest import shared_path
from listen_helpers import (
    EVENT,
    SEQUENCE,
    HttpServer,
    VtpServer,
    fresh_output,
    unrelated_notices,
    voevent_bytes,
    wait_for,
)
from test_cli import llama

from llama import run
from llama.errors import ConfigurationError
from llama.event import Event
from llama.listen import Limits, Listener
from llama.listen.directory import watch_directory
from llama.listen.kafka import consume, kafka_consumer
from llama.listen.vtp import listen_vtp
from llama.tasks import GwSkymap, SignificanceOPA

KAFKA = ("earlywarning.json", "preliminary.json", "preliminary.avro", "initial.json", "update.json")


@pytest.fixture
def out(tmp_path, monkeypatch) -> Path:
    """A fresh LLAMA_OUTPUT_DIR, default settings, a neutrino source around MS181101ab."""
    return fresh_output(shared_path(), tmp_path, monkeypatch)


@pytest.fixture
def gracedb():
    """A loopback HTTP server standing in for GraceDB, serving the real MS181101ab map."""
    maps = shared_path("gw_skymaps")
    server = HttpServer({
        "bayestar.multiorder.fits": (maps / "MS181101ab_userguide_bayestar.multiorder.fits").read_bytes(),
        "combined-ext.multiorder.fits":
            (maps / "MS181101ab_userguide_combined-ext.multiorder.fits").read_bytes(),
    })
    yield server
    server.close()


@pytest.fixture
def vtp():
    server = VtpServer()
    yield server
    server.close()


def archived(out: Path) -> list[Path]:
    return sorted(p for p in (out / "gcn").rglob("*") if p.is_file())


def start(listener: Listener, target, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=(listener, *args), daemon=True)
    thread.start()
    return thread


def test_vtp_sequence_unrelated_and_duplicates_then_run(out, gracedb, vtp):
    data = shared_path()
    lvk = {step: voevent_bytes(data, step, gracedb.url) for step in SEQUENCE}
    others = unrelated_notices(data, 200)
    first = [lvk[s] for s in SEQUENCE[:4]]
    phase1 = first[:2] + others[:100] + first[2:] + others[100:] + others[:10] + first[:2]
    phase1 += others[10:18]  # 20 duplicates in all: 18 unrelated, 2 LVK
    phase2 = [lvk["5-Retraction"], lvk["6-Update"]]
    listener = Listener("vtp", limits=Limits(len(phase1) + len(phase2), timeout_s=30))
    thread = start(listener, listen_vtp, ("127.0.0.1",), vtp.port)

    t0 = time.monotonic()
    vtp.send(phase1)
    assert wait_for(lambda: listener.count == len(phase1), 10)
    heard1 = time.monotonic() - t0
    event = Event(EVENT, out / "current_run")
    assert event.flags["online"] and not event.flags["manual"] and event.flags["role"] == "test"

    # `llama run -o` builds it: the sky map comes from the loopback GraceDB
    built = llama("run", out / "current_run", "-o", "-v")
    assert built.returncode == 0 and f"cycle 1: {EVENT} built" in built.stderr, built.stderr
    assert gracedb.gets == ["bayestar.multiorder.fits"]
    significance = event.directory / SignificanceOPA.filename
    assert significance.exists()
    record = GwSkymap(eventid=EVENT).provenance()
    assert record["skymap_url"] == f"{gracedb.url}bayestar.multiorder.fits,0"
    assert record["sha256"] == __import__("hashlib").sha256(
        gracedb.files["bayestar.multiorder.fits"]).hexdigest()
    records = {p.name: p.stat().st_mtime_ns for p in event.directory.glob(".*.meta.json")}

    t1 = time.monotonic()
    vtp.send(phase2)
    thread.join(timeout=10)
    heard2 = time.monotonic() - t1
    assert not thread.is_alive() and listener.count == len(phase1) + len(phase2)
    assert heard1 + heard2 < 10.0, (heard1, heard2)
    assert listener.rejected == 0 and vtp.acks == listener.count

    # every distinct notice archived exactly once, byte for byte
    distinct = set(first) | set(others) | set(phase2)
    files = archived(out)
    assert len(files) == len(distinct) == 206
    assert {f.read_bytes() for f in files} == distinct
    assert [p.name.split("-", 1)[1] for p in event.notices()] == [
        f"gwnet_LVC_MS181101ab-{s}.xml" for s in SEQUENCE]
    assert set(event.latency["notices"]) == {f"gwnet_LVC_MS181101ab-{s}.xml" for s in SEQUENCE}

    # the event ends retracted, and `llama run -o` stops building it
    assert event.flags["retracted"] and event.flags["vetoed"] and not event.flags["upload"]
    again = llama("run", out / "current_run", "-o", "-v")
    assert again.returncode == 0 and f"cycle 1: {EVENT} vetoed" in again.stderr, again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in event.directory.glob(".*.meta.json")} == records


class Message:
    """A Kafka message as confluent-kafka delivers it (value, error, topic)."""

    def __init__(self, value: bytes, topic: str = "igwn.gwalert", error=None) -> None:
        self._value, self._topic, self._error = value, topic, error

    def value(self) -> bytes:
        return self._value

    def topic(self) -> str:
        return self._topic

    def error(self):
        return self._error


class ReplayConsumer:
    """Stands in for gcn_kafka.Consumer where no broker can run: yields the given messages
    (two per consume call), then nothing; records subscribe/close."""

    def __init__(self, messages: list[Message], fail_first: bool = False) -> None:
        self.messages = list(messages)
        self.subscribed: list[str] = []
        self.closed = False
        self.fail_first = fail_first

    def subscribe(self, topics: list[str]) -> None:
        self.subscribed = topics

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        if self.fail_first:
            self.fail_first = False
            raise RuntimeError("KafkaError{code=_TRANSPORT}: broker down")
        batch, self.messages = self.messages[:2], self.messages[2:]
        if not batch:
            time.sleep(min(timeout, 0.05))
        return batch

    def close(self) -> None:
        self.closed = True


def kafka_file(name: str) -> bytes:
    return shared_path("gw_alerts", "gcn_kafka_json", f"MS181101ab-{name}").read_bytes()


def test_kafka_path_gives_the_same_event_as_the_voevent_path(out, gracedb, tmp_path):
    data = shared_path()
    voevent_run, kafka_run = tmp_path / "voevent_run", tmp_path / "kafka_run"
    by_voevent = Listener("vtp", voevent_run)
    for step in SEQUENCE[:4]:
        by_voevent.handle(voevent_bytes(data, step, gracedb.url))
    messages = [Message(kafka_file(name)) for name in KAFKA]
    messages.insert(2, Message(b"", error="_PARTITION_EOF"))  # a transport hiccup, skipped
    consumer = ReplayConsumer(messages, fail_first=True)
    by_kafka = Listener("kafka", kafka_run, Limits(len(KAFKA), timeout_s=20))
    consume(by_kafka, consumer, ["igwn.gwalert"])
    assert consumer.closed and consumer.subscribed == ["igwn.gwalert"]
    assert by_kafka.count == len(KAFKA) and by_kafka.rejected == 0

    results = {}
    for run_dir in (voevent_run, kafka_run):
        assert run.Daemon(run_dir).cycle() == {EVENT: "built"}
        event = Event(EVENT, run_dir)
        sky = GwSkymap(eventid=EVENT, rundir=str(run_dir))
        info = event.skymap_info
        results[run_dir] = {
            "flags": event.flags,
            "skymap_sha256": sky.provenance()["sha256"],
            "facts": {k: info[k] for k in ("graceid", "event_time_gps", "far", "instruments",
                                           "group", "pipeline", "role", "retracted")},
            "odds": json.loads((event.directory / SignificanceOPA.filename).read_text())[
                "odds_ratio"],
            "notices": len(event.notices()),
        }
    assert gracedb.gets == ["bayestar.multiorder.fits"]  # only the VOEvent path downloads
    assert results[voevent_run]["notices"] == 4 and results[kafka_run]["notices"] == 5
    by_voevent_facts, by_kafka_facts = (results[r]["facts"] for r in (voevent_run, kafka_run))
    # the Kafka alert gives the event time to the millisecond, the VOEvent to the microsecond
    assert by_kafka_facts.pop("event_time_gps") == pytest.approx(
        by_voevent_facts.pop("event_time_gps"), abs=1e-3)
    assert by_voevent_facts == by_kafka_facts
    assert results[voevent_run]["odds"] == pytest.approx(results[kafka_run]["odds"], rel=1e-3)
    for key in ("flags", "skymap_sha256"):
        assert results[voevent_run][key] == results[kafka_run][key], key

    by_voevent.handle(voevent_bytes(data, "5-Retraction", gracedb.url))
    by_kafka.limits = Limits(by_kafka.count + 1, timeout_s=5)
    consume(by_kafka, ReplayConsumer([Message(kafka_file("retraction.json"))]))
    for run_dir in (voevent_run, kafka_run):
        flags = Event(EVENT, run_dir).flags
        assert flags["retracted"] and flags["vetoed"]
        assert run.Daemon(run_dir).cycle() == {EVENT: "vetoed"}


def test_real_gcn_kafka_consumer_without_a_broker_stops_on_time(out):
    consumer = kafka_consumer(config={"bootstrap.servers": "127.0.0.1:9",
                                      "security.protocol": "plaintext"})
    assert type(consumer).__module__.startswith("gcn_kafka")
    listener = Listener("kafka", limits=Limits(timeout_s=1.5))
    t0 = time.monotonic()
    consume(listener, consumer)
    assert time.monotonic() - t0 < 10 and listener.count == 0
    heartbeat = json.loads((out / "logs" / "listen-kafka.json").read_text())
    assert set(heartbeat) == {"pid", "host", "transport", "started_utc", "heartbeat_utc",
                              "last_notice_utc"}
    assert heartbeat["transport"] == "kafka" and heartbeat["last_notice_utc"] is None


def corrupted(data: Path, gracedb_url: str) -> dict[str, list[bytes]]:
    """100 bad notices: 34 VOEvents (truncated or with the GraceID removed), 33 igwn.gwalert
    JSON (truncated), 33 igwn.gwalert JSON with a corrupted base64 sky map."""
    xml = voevent_bytes(data, "2-Preliminary", gracedb_url)
    bad_xml = [xml[: 600 + 40 * k] for k in range(17)]
    bad_xml += [xml.replace(b'name="GraceID"', f'name="NoID{k}"'.encode()) for k in range(17)]
    alert = json.loads(kafka_file("preliminary.json"))
    text = json.dumps(alert).encode()
    bad_json = [text[: 100 + 50 * k] for k in range(33)]
    bad_maps = []
    for k in range(33):
        broken = json.loads(text)
        skymap = alert["event"]["skymap"]
        broken["event"]["skymap"] = (skymap[:1000 + k] + "!!" + skymap[1002 + k:] if k % 2
                                     else base64.b64encode(b"not a FITS file %d" % k).decode())
        bad_maps.append(json.dumps(broken).encode())
    return {"xml": bad_xml, "json": bad_json, "maps": bad_maps}


def test_corrupted_notices_are_archived_and_rejected_in_one_line_each(out, gracedb, vtp,
                                                                      tmp_path, caplog):
    data = shared_path()
    bad = corrupted(data, gracedb.url)
    assert sum(map(len, bad.values())) == 100
    good = voevent_bytes(data, "2-Preliminary", gracedb.url)
    caplog.set_level(logging.INFO)

    by_vtp = Listener("vtp", limits=Limits(len(bad["xml"]) + 1, timeout_s=20))
    thread = start(by_vtp, listen_vtp, ("127.0.0.1",), vtp.port)
    vtp.send(bad["xml"] + [good])  # the good one after the bad: still heard
    thread.join(timeout=20)
    assert by_vtp.count == 35 and by_vtp.rejected == 34
    assert Event(EVENT, out / "current_run").exists

    by_kafka = Listener("kafka", limits=Limits(len(bad["json"]), timeout_s=20))
    consume(by_kafka, ReplayConsumer([Message(raw) for raw in bad["json"]]))
    drop = tmp_path / "drop"
    drop.mkdir()
    for k, raw in enumerate(bad["maps"]):
        (drop / f"bad-{k:02d}.json").write_bytes(raw)
    by_dir = Listener("dir", limits=Limits(len(bad["maps"]), timeout_s=20))
    watch_directory(by_dir, drop, poll_s=0.05)
    assert by_kafka.rejected == 33 and by_dir.rejected == 33

    everything = [raw for group in bad.values() for raw in group] + [good]
    assert {f.read_bytes() for f in archived(out)} == set(everything)
    assert len(archived(out)) == 101
    rejections = [r for r in caplog.records if "rejected notice" in r.getMessage()]
    assert len(rejections) == 100
    assert all("\n" not in r.getMessage() and r.exc_info is None for r in rejections)
    assert all(r.levelno == logging.ERROR for r in rejections)
    assert not [r for r in caplog.records if r.exc_info is not None]


def test_vtp_listener_reconnects_after_the_broker_drops(out, gracedb, vtp):
    data = shared_path()
    listener = Listener("vtp", limits=Limits(2, timeout_s=20))
    thread = start(listener, listen_vtp, ("127.0.0.1",), vtp.port)
    vtp.send([voevent_bytes(data, "1-EarlyWarning", gracedb.url)])
    assert wait_for(lambda: listener.count == 1)
    vtp.drop()
    vtp.send([voevent_bytes(data, "2-Preliminary", gracedb.url)])
    thread.join(timeout=20)
    assert listener.count == 2 and listener.rejected == 0 and vtp.iamalive_answers >= 1
    assert len(Event(EVENT, out / "current_run").notices()) == 2


def test_listen_dir_command_replays_an_archive(out, gracedb, tmp_path):
    from test_cli import llama

    drop = tmp_path / "replay"
    drop.mkdir()
    for k, step in enumerate(SEQUENCE):
        path = drop / f"{step}.xml"
        path.write_bytes(voevent_bytes(shared_path(), step, gracedb.url))
        t = time.time() - 100 + k  # replay in arrival order
        __import__("os").utime(path, (t, t))
    (drop / ".hidden.xml").write_bytes(b"<not/>")
    result = llama("listen", "dir", drop, "--max-notices", len(SEQUENCE), "--timeout", "20")
    assert result.returncode == 0, result.stderr
    assert "6 notice(s), 0 rejected" in result.stderr
    event = Event(EVENT, out / "current_run")
    assert len(event.notices()) == 6 and event.flags["retracted"]
    again = llama("listen", "dir", drop, "--max-notices", len(SEQUENCE), "--timeout", "20")
    assert again.returncode == 0 and len(event.notices()) == 6  # duplicates: archive only
    assert len(archived(out)) == 6


def test_skymap_download_retries_and_names_the_url_without_network(out, gracedb):
    listener = Listener("vtp")
    listener.handle(voevent_bytes(shared_path(), "2-Preliminary", gracedb.url))
    gracedb.fail_gets = 1  # GraceDB answers 500 once: retried
    task = GwSkymap(eventid=EVENT, backoff_s=0.01)
    task.run()
    assert gracedb.gets == ["bayestar.multiorder.fits"] * 2 and task.complete()

    closed = HttpServer()
    closed.close()  # nothing listens there: as without network
    listener.handle(voevent_bytes(shared_path(), "3-Initial", closed.url))
    task = GwSkymap(eventid=EVENT, attempts=2, backoff_s=0.01)
    assert not task.complete()
    url = f"{closed.url}bayestar.multiorder.fits,0"
    with pytest.raises(ConfigurationError, match="2 attempts") as error:
        task.run()
    assert url in str(error.value) and "--skymap FILE" in str(error.value)
    assert "\n" not in str(error.value)


def test_igwn_alert_client_messages_are_archived_and_alerts_ingested(out):
    """The real igwn_alert.client.listen loop, its Kafka stream replaced by real messages:
    a GraceDB superevent message (archived only) and an igwn.gwalert alert (ingested)."""
    from types import SimpleNamespace

    from igwn_alert import client

    from llama.listen.igwn import listen_igwn

    superevent = shared_path("gw_alerts", "gracedb_json", "MS220722v_superevent.json").read_bytes()
    gwalert = kafka_file("preliminary.json")
    stopped = []

    class Stream:
        _consumer = SimpleNamespace(stop=lambda: stopped.append(True))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, metadata=False, **options):
            for payload in (superevent, gwalert):
                yield payload, SimpleNamespace(topic="gracedb.superevent")

        def close(self):
            pass

    class ReplayClient(client):
        def open(self, url, mode="r", **kwargs):
            return Stream()

    listener = Listener("igwn-alert", limits=Limits(2, timeout_s=20))
    listen_igwn(listener, ReplayClient(noauth=True, server="kafka://127.0.0.1:9/"))
    assert listener.count == 2 and listener.rejected == 0 and stopped
    assert len(archived(out)) == 2
    event = Event(EVENT, out / "current_run")
    assert event.flags["online"] and len(event.notices()) == 1
    assert not (out / "current_run" / "MS220722v").exists()  # GraceDB JSON: archived only


def test_vtp_listener_heartbeats_while_the_broker_is_quiet(out, gracedb, vtp, monkeypatch):
    import llama.listen.vtp as vtp_module

    monkeypatch.setattr(vtp_module, "HEARTBEAT_WAIT_S", 0.1)
    monkeypatch.setattr("llama.listen.core.HEARTBEAT_S", 0.1)
    listener = Listener("vtp", limits=Limits(1, timeout_s=20))
    thread = start(listener, listen_vtp, ("127.0.0.1",), vtp.port)
    beat = out / "logs" / "listen-vtp.json"
    assert wait_for(beat.exists)
    first = json.loads(beat.read_text())["heartbeat_utc"]
    assert wait_for(lambda: json.loads(beat.read_text())["heartbeat_utc"] != first, 5)
    vtp.send([voevent_bytes(shared_path(), "2-Preliminary", gracedb.url)])  # same connection
    thread.join(timeout=10)
    assert listener.count == 1 and json.loads(beat.read_text())["last_notice_utc"]


def test_notice_archived_before_a_crash_is_ingested_when_heard_again(out, gracedb):
    from llama.ingest import archive_gcn

    raw = voevent_bytes(shared_path(), "2-Preliminary", gracedb.url)
    archive_gcn(raw)  # archived, then the listener died before the intake
    receipt = Listener("vtp").handle(raw)
    assert not receipt.new and receipt.event is not None and len(receipt.event.notices()) == 1
    again = Listener("vtp").handle(raw)
    assert again.event is None and len(receipt.event.notices()) == 1 and len(archived(out)) == 1
