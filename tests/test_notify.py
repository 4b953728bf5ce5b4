"""Notifications: posted once to a (loopback) Slack-compatible webhook for a real event,
never for a test event, retried after the receiver fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import shared_path
from listen_helpers import EVENT, HttpServer, write_neutrinos

from llama import notify, run
from llama.config import Settings
from llama.event import Event
from llama.listen import Listener
from llama.tasks import SignificanceOPA


@pytest.fixture
def built(tmp_path, monkeypatch) -> Event:
    """MS181101ab heard from its real igwn.gwalert and built by one daemon cycle."""
    monkeypatch.setenv("LLAMA_OUTPUT_DIR", str(tmp_path / "out"))
    for name in Settings.__dataclass_fields__:
        monkeypatch.delenv(f"LLAMA_{name.upper()}", raising=False)
    for name in ("LUIGI_CONFIG_PATH", notify.URL_VARIABLE, notify.FILE_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no user credentials
    source = write_neutrinos(shared_path(), tmp_path / "neutrinos.json")
    monkeypatch.setenv("LLAMA_NEUTRINO_SOURCE", str(source))
    raw = shared_path("gw_alerts", "gcn_kafka_json", "MS181101ab-preliminary.json").read_bytes()
    event = Listener("kafka").handle(raw).event
    assert run.Daemon(event.run_dir).cycle() == {EVENT: "built"}
    return event


@pytest.fixture
def receiver():
    server = HttpServer(fail_first=1)
    yield server
    server.close()


def receipts(event: Event) -> list[Path]:
    return sorted(event.directory.glob(".*.notified-*.json"))


def test_observation_event_is_notified_once_after_one_failure(built, receiver, monkeypatch):
    monkeypatch.setenv(notify.URL_VARIABLE, receiver.url + "hooks/T000/B000/XXXX")
    assert built.flags["role"] == "test"
    assert notify.notify_event(built, backoff_s=0.01) == []  # a test event: never
    assert receiver.post_attempts == 0
    built.set_flags(role="observation", upload=True)

    sent = notify.notify_event(built, backoff_s=0.01)
    assert sent == [SignificanceOPA.filename]
    assert receiver.post_attempts == 2 and len(receiver.posts) == 1  # failed once, retried
    text = json.loads(receiver.posts[0])["text"]
    assert EVENT in text and "odds ratio" in text and "PARTIAL" not in text
    result = json.loads((built.directory / SignificanceOPA.filename).read_text())
    partial = {**result, "neutrino_list_complete": False}  # from an incomplete neutrino list
    assert "PARTIAL RESULT" in notify.message(built, SignificanceOPA.filename, partial)["text"]
    (receipt,) = receipts(built)
    record = json.loads(receipt.read_text())
    assert record["attempts"] == 2 and record["status"] == 200
    assert record["product"] == SignificanceOPA.filename

    assert notify.notify_event(built, backoff_s=0.01) == []  # the receipt: sent once
    assert run.Daemon(built.run_dir).cycle() == {EVENT: "built"}  # the daemon agrees
    assert len(receiver.posts) == 1

    built.set_flags(vetoed=True)
    (built.directory / SignificanceOPA.filename).write_text("{}")  # even a new result
    assert notify.notify_event(built, backoff_s=0.01) == [] and len(receiver.posts) == 1


def test_unreachable_webhook_leaves_no_receipt_and_is_retried(built, tmp_path, monkeypatch):
    built.set_flags(role="observation", upload=True)
    closed = HttpServer()
    url = closed.url
    closed.close()  # nothing listens there any more
    credentials = tmp_path / "config" / "llama" / "webhook_url"
    credentials.parent.mkdir(parents=True)
    credentials.write_text(url + "\n")
    assert notify.webhook_url() == url
    with pytest.raises(notify.NotifyError, match="after 2 attempts"):
        notify.notify_event(built, attempts=2, backoff_s=0.01)
    assert receipts(built) == []
    receiver = HttpServer()
    try:
        credentials.write_text(receiver.url + "\n")
        assert notify.notify_event(built, backoff_s=0.01) == [SignificanceOPA.filename]
        assert len(receiver.posts) == 1 and len(receipts(built)) == 1
    finally:
        receiver.close()
