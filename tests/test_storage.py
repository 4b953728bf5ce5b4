"""llama.io.storage: the one atomic commit, on a local disk and on a real S3 endpoint (moto's
server on loopback); llama.provenance records on both."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from llama import provenance
from llama.errors import ConfigurationError
from llama.io import storage
from llama.io.storage import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    json_text,
    sha256_file,
    write_if_changed,
)

BUCKET = "llama-test"

# ------------------------------------------------------------------------------ locations


def test_locations(tmp_path):
    assert storage.is_local(tmp_path) and storage.is_local(str(tmp_path / "x"))
    assert storage.is_local("relative/x.json") and storage.local_path("a/b") == Path("a/b")
    url = storage.to_url(tmp_path / "x.json")
    assert url == f"file://{tmp_path}/x.json" and storage.is_local(url)
    assert storage.local_path(url) == tmp_path / "x.json"
    assert storage.to_url("s3://b/k") == "s3://b/k"
    for remote in ("s3://bucket/key", "S3://bucket/key", "simplecache::s3://b/k", "memory://x"):
        assert not storage.is_local(remote) and storage.local_path(remote) is None
    assert storage.protocol("s3://b/k") == "s3" and storage.protocol(tmp_path) is None


def test_import_is_cheap_and_s3fs_is_optional():
    probe = (
        "import sys; sys.modules['s3fs'] = None\n"  # as if `llama[s3]` were not installed
        "import llama.io.storage as s\n"
        "assert 'fsspec' not in sys.modules, 'fsspec imported eagerly'\n"
        "try:\n"
        "    s.exists('s3://bucket/key')\n"
        "except s.ConfigurationError as err:\n"
        "    print(err)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pip install 'llama[s3]'" in done.stdout and "s3://bucket/key" in done.stdout
    with pytest.raises(ConfigurationError, match="unsupported storage URL|no storage backend"):
        storage.exists("nosuchprotocol://x/y")


# ------------------------------------------------------------------------ local semantics


def test_failure_leaves_target_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "product.json"
    atomic_write_bytes(target, b"old")

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new and longer")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["product.json"]
    with pytest.raises(ValueError):  # NaN refused before anything is written
        atomic_write_json(tmp_path / "nan.json", {"x": float("nan")})
    with pytest.raises(FileNotFoundError):  # no directory: nothing created anywhere
        atomic_write_text(tmp_path / "missing" / "x.txt", "x")
    assert [p.name for p in tmp_path.iterdir()] == ["product.json"]


def test_exclusive_write_refuses_existing_target(tmp_path):
    url = storage.to_url(tmp_path / "notice.xml")
    assert atomic_write_bytes(url, b"first", overwrite=False) == tmp_path / "notice.xml"
    with pytest.raises(FileExistsError):
        atomic_write_bytes(url, b"second", overwrite=False)
    assert storage.read_bytes(url) == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["notice.xml"]


def test_permissions_follow_the_umask(tmp_path):
    probe = (
        "import os, stat, sys; os.umask(0o027)\n"  # the umask is read when storage is imported
        "from llama.io.storage import atomic_write_text\n"
        "print(oct(stat.S_IMODE(atomic_write_text(sys.argv[1], 'text').stat().st_mode)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "a.txt")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "0o640", done.stderr
    umask = os.umask(0)
    os.umask(umask)
    path = atomic_write_text(tmp_path / "b.txt", "text")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_write_if_changed_put_file_and_sha256(tmp_path):
    target = tmp_path / "map.fits"
    assert write_if_changed(target, b"SIMPLE one")
    mtime = target.stat().st_mtime_ns
    assert not write_if_changed(storage.to_url(target), b"SIMPLE one")
    assert target.stat().st_mtime_ns == mtime
    assert write_if_changed(target, b"SIMPLE two") and target.read_bytes() == b"SIMPLE two"
    assert sha256_file(target) == hashlib.sha256(b"SIMPLE two").hexdigest()
    copy = storage.put_file(target, tmp_path / "copy.fits")
    assert Path(copy).read_bytes() == b"SIMPLE two" and storage.size(copy) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.fits", "map.fits"]


def test_only_provably_stale_temporaries_are_removed(tmp_path):
    import fcntl

    target = tmp_path / "significance.json"
    old = time.time() - 2 * storage.STALE_TEMPORARY_AGE_S
    killed = tmp_path / ".significance.json.k1ll3d.tmp"  # a writer died long ago
    killed.write_bytes(b"{")
    os.utime(killed, (old, old))
    fresh = tmp_path / ".significance.json.fresh0.tmp"  # a writer may still be at it
    fresh.write_bytes(b"{")
    locked = tmp_path / ".significance.json.live00.tmp"  # old, but its writer is alive
    locked.write_bytes(b"{")
    os.utime(locked, (old, old))
    other = tmp_path / ".other.json.k1ll3d.tmp"
    other.write_bytes(b"{")
    os.utime(other, (old, old))
    with open(locked, "rb") as holder:  # the live writer, in another process
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, llama.provenance as p; print(len(p.remove_stale_temporaries(sys.argv[1])))",
                str(target),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert probe.stdout.strip() == "1", probe.stderr
    assert not killed.exists() and fresh.exists() and locked.exists() and other.exists()
    assert storage.remove_stale_temporaries(target) == [locked]  # its writer is gone now
    assert storage.remove_stale_temporaries(target, max_age_s=0) == [fresh]
    assert storage.remove_stale_temporaries("s3://bucket/significance.json") == []


# ------------------------------------------------------------------------------ provenance


def test_provenance_record_and_check(tmp_path, monkeypatch):
    monkeypatch.setenv("LLAMA_IMAGE", "llama:test")
    product, source = tmp_path / "out.json", tmp_path / "in.json"
    source.write_text("{}")
    atomic_write_text(product, "result\n")
    inputs = {"in.json": provenance.input_entry(source), "info": {"sha256": "x", "used": {"a": 1}}}
    assert provenance.check(product, inputs, {}) == (False, "no record")
    record = provenance.new_record(
        product,
        b"result\n",
        inputs=inputs,
        settings={"snr": (1, 2)},
        task="T",
        task_id="T_1",
        parameters={"eventid": "S1"},
        wall_time_s=0.25,
        notes={"complete": True},
    )
    assert set(provenance.RECORD_KEYS) | {"complete"} == set(record)
    assert record["image"] == "llama:test" and record["product"] == "out.json"
    assert provenance.write_record(product, record) == tmp_path / ".out.json.meta.json"
    assert provenance.read_record(product) == record
    settings = {"snr": [1, 2]}
    assert provenance.check(product, inputs, settings) == (True, "up to date")
    assert provenance.check(product, lambda: inputs, lambda: {"snr": (1, 2)})[0]
    assert provenance.check(product, inputs, {"snr": [1, 3]}) == (False, "settings changed")
    changed = {**inputs, "info": {"sha256": "y", "used": {"a": 1}}}  # used values rule
    assert provenance.check(product, changed, settings)[0]
    changed = {**inputs, "info": {"sha256": "x", "used": {"a": 2}}}
    assert provenance.check(product, changed, settings) == (False, "input info changed")
    assert provenance.check(product, {**inputs, "new": {"sha256": "z"}}, settings) == (
        False,
        "new input new",
    )

    def missing_input():
        return {"gone": provenance.input_entry(tmp_path / "gone")}

    assert provenance.check(product, missing_input, settings)[1].startswith("cannot check")
    product.write_text("tampered\n")
    assert provenance.check(product, inputs, settings) == (False, "output changed")
    product.unlink()
    assert provenance.check(product, inputs, settings) == (False, "missing")
    (tmp_path / ".out.json.meta.json").write_text("{not json")
    assert provenance.read_record(product) is None


# ----------------------------------------------------------------------------- real S3


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server on loopback, an empty bucket, and fsspec pointed at it."""
    import fsspec.config
    import moto.server as server_module
    import s3fs  # noqa: F401 - the backend under test: a missing install must fail, not skip

    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved_conf = fsspec.config.conf.get("s3")
    fsspec.config.conf["s3"] = {"client_kwargs": {"endpoint_url": endpoint}}
    try:
        import fsspec

        fsspec.filesystem("s3", skip_instance_cache=True).mkdir(BUCKET)
        yield endpoint
    finally:
        if saved_conf is None:
            fsspec.config.conf.pop("s3", None)
        else:
            fsspec.config.conf["s3"] = saved_conf
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_s3_write_read_and_write_if_changed(s3_endpoint, tmp_path):
    url = f"s3://{BUCKET}/run/S190425z/significance.json"
    assert not storage.exists(url) and not storage.is_local(url)
    assert atomic_write_json(url, {"p_value": 0.5}) == url
    assert storage.exists(url)
    assert storage.read_bytes(url) == json_text({"p_value": 0.5}).encode()
    assert sha256_file(url) == hashlib.sha256(json_text({"p_value": 0.5}).encode()).hexdigest()
    assert not write_if_changed(url, json_text({"p_value": 0.5}).encode())
    assert write_if_changed(url, b"{}\n") and storage.read_bytes(url) == b"{}\n"
    with pytest.raises(FileExistsError):
        atomic_write_bytes(url, b"again", overwrite=False)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 << 20))  # several read chunks
    copy = storage.put_file(big, f"s3://{BUCKET}/campaign/job-0001.bin")
    assert sha256_file(copy) == sha256_file(big) and storage.size(copy) == 3 << 20
    assert not list(Path(tempfile.gettempdir()).glob(".llama-upload.*.tmp"))


def test_s3_provenance_record(s3_endpoint, tmp_path):
    product = f"s3://{BUCKET}/run/S190425z/lvc_skymap_distances.json"
    source = tmp_path / "map.fits"
    source.write_bytes(b"SIMPLE")
    atomic_write_bytes(product, b"{}\n")
    inputs = {"map.fits": provenance.input_entry(source)}
    record = provenance.new_record(
        product,
        b"{}\n",
        inputs=inputs,
        settings={},
        task="T",
        task_id="T_1",
        parameters={},
        wall_time_s=1.0,
    )
    location = provenance.write_record(product, record)
    assert location == f"s3://{BUCKET}/run/S190425z/.lvc_skymap_distances.json.meta.json"
    assert provenance.read_record(product) == record
    assert provenance.check(product, inputs, {}) == (True, "up to date")
    atomic_write_bytes(product, b"[]\n")
    assert provenance.check(product, inputs, {}) == (False, "output changed")


def test_an_unreachable_object_store_is_one_line(monkeypatch):
    """A stopped endpoint: connection errors of the backend become one ConfigurationError."""
    import socket

    from llama.errors import ConfigurationError
    from llama.io import storage

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    import fsspec.config

    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": f"http://127.0.0.1:{port}"})
    with pytest.raises(ConfigurationError, match="object store error"):
        storage.atomic_write_bytes("s3://nowhere/key.bin", b"data")
