"""``llama data`` / llama.datasets / llama.io.download against a loopback HTTP server.

The server (127.0.0.1 only) serves real files from ../shared/data and can misbehave on purpose:
cut a response short, ignore Range, or serve corrupted bytes of the right length.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import REPO, shared_path

from llama import datasets
from llama.cli import main as cli_main
from llama.io.download import ChecksumMismatch, DownloadError, download, part_path

ICECAT = ("icecube", "icecat1", "IceCube_Gold_Bronze_Tracks.csv")
UPTIME = ("icecube", "icecube_10year_ps", "uptime", "IC40_exp.csv")


class FileServer:
    """Loopback HTTP server: path -> bytes, with per-path behaviour and a request log."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.truncate_first: dict[str, int] = {}  # path -> bytes sent by the first full GET
        self.ignore_range: set[str] = set()
        self.log: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):  # noqa: N802 (http.server API)
                rng = self.headers.get("Range")
                server.log.append((self.path, rng))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if rng and self.path not in server.ignore_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                cut = server.truncate_first.pop(self.path, None) if start == 0 else None
                if cut is not None:
                    self.wfile.write(body[:cut])  # promise everything, deliver a part, hang up
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def requests(self, path: str) -> list[str | None]:
        return [rng for p, rng in self.log if p == path]


@pytest.fixture
def server():
    srv = FileServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture
def real_files():
    """(name, bytes) of two real public files."""
    return {"icecat1.csv": shared_path(*ICECAT).read_bytes(),
            "IC40_uptime.csv": shared_path(*UPTIME).read_bytes()}


def entry(path: str, data: bytes, url: str) -> dict:
    return {"path": path, "url": url, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("LLAMA_CACHE_DIR", str(root))
    return root


@pytest.fixture
def manifest(server, real_files, tmp_path, monkeypatch):
    """A manifest of two data sets served by the loopback server, installed as the packaged one."""
    cat, up = real_files["icecat1.csv"], real_files["IC40_uptime.csv"]
    server.files.update({"/icecat1.csv": cat, "/uptime/IC40_exp.csv": up})
    body = {"format": 1, "datasets": {
        "cat": {"description": "IceCat-1", "upstream": "test",
                "files": [entry("IceCube_Gold_Bronze_Tracks.csv", cat, server.url("/icecat1.csv"))]},
        "mix": {"description": "two files", "upstream": "test",
                "files": [entry("uptime/IC40_exp.csv", up, server.url("/uptime/IC40_exp.csv")),
                          entry("cat.csv", cat, server.url("/icecat1.csv"))]},
    }}
    path = tmp_path / "datasets.json"
    path.write_text(json.dumps(body))
    loaded = datasets.load_manifest(path)
    monkeypatch.setattr(datasets, "manifest", lambda: loaded)
    return loaded


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if p.name.startswith("."))


# ---------------------------------------------------------------------------- manifest


def test_packaged_manifest_matches_the_real_files():
    """Every packaged size/sha256 is the one of the real file in ../shared/data."""
    by_digest = {line.split()[0]: line.split(maxsplit=1)[1]
                 for line in shared_path("SHA256SUMS").read_text().splitlines()}
    found = datasets.load_manifest()
    assert {"icecube-10yr-ps", "gwtc-skymaps", "neutrino-background"} <= set(found)
    for ds in found.values():
        assert ds.files
        for f in ds.files:
            assert f.sha256 in by_digest, f"{ds.name}/{f.path}: sha256 not among the real files"
            real = shared_path(*by_digest[f.sha256].split("/"))
            assert real.stat().st_size == f.size
            assert f.url.startswith("https://raw.githubusercontent.com/")


def test_packaged_manifest_is_regenerated_by_the_script(tmp_path):
    """scripts/make_data_manifest.py reproduces the packaged manifest byte for byte."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mk", REPO / "scripts" / "make_data_manifest.py")
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    from importlib import resources

    packaged = json.loads(resources.files("llama").joinpath("data/datasets.json").read_text())
    shared = shared_path()
    prov = mk.provenance((shared / "README.md").read_text())
    for ds in packaged["datasets"].values():
        for f in ds["files"]:
            src = next(s for n, (_, _, files) in mk.DATASETS.items() for r, s in files.items()
                       if r == f["path"] and hashlib.sha256((shared / s).read_bytes()).hexdigest()
                       == f["sha256"])
            assert prov[src]["commit"] in f["url"]


def test_manifest_rejects_unsafe_entries(tmp_path):
    bad = {"datasets": {"x": {"files": [{"path": "../escape", "url": "https://h/x",
                                         "size": 1, "sha256": "0" * 64}]}}}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(datasets.ConfigurationError, match="unsafe"):
        datasets.load_manifest(path)


# ---------------------------------------------------------------------------- download


def test_good_file_fetched_once_then_from_cache(server, manifest, cache, capsys):
    assert cli_main.main(["data", "fetch", "cat"]) == 0
    out = capsys.readouterr().out
    assert "fetched  cat/IceCube_Gold_Bronze_Tracks.csv" in out
    target = cache / "datasets" / "cat" / "IceCube_Gold_Bronze_Tracks.csv"
    assert target.read_bytes() == server.files["/icecat1.csv"]
    assert server.requests("/icecat1.csv") == [None]

    assert cli_main.main(["data", "fetch", "cat"]) == 0
    assert "cached   cat/IceCube_Gold_Bronze_Tracks.csv" in capsys.readouterr().out
    assert server.requests("/icecat1.csv") == [None]  # no second request
    assert leftovers(cache / "datasets" / "cat") == [".llama-dataset.json"]

    assert cli_main.main(["data", "list"]) == 0
    listing = capsys.readouterr().out
    assert "cat " in listing and "cached" in listing and "not fetched" in listing  # mix: not yet


def test_truncated_download_resumes_with_range(server, manifest, cache, capsys):
    data = server.files["/uptime/IC40_exp.csv"]
    server.truncate_first["/uptime/IC40_exp.csv"] = 20_000
    assert cli_main.main(["data", "fetch", "mix"]) == 0
    target = cache / "datasets" / "mix" / "uptime" / "IC40_exp.csv"
    assert target.read_bytes() == data
    assert server.requests("/uptime/IC40_exp.csv") == [None, "bytes=20000-"]
    assert not part_path(target).exists()


def test_interrupted_download_resumes_on_the_next_run(server, real_files, tmp_path):
    """A .part left by an earlier, interrupted run is continued with a Range request."""
    data = real_files["IC40_uptime.csv"]
    server.files["/u.csv"] = data
    dest = tmp_path / "u.csv"
    server.truncate_first["/u.csv"] = 12_345
    with pytest.raises(DownloadError, match="incomplete"):
        download(server.url("/u.csv"), dest, size=len(data),
                 sha256=hashlib.sha256(data).hexdigest(), retries=0)
    assert part_path(dest).stat().st_size == 12_345 and not dest.exists()
    download(server.url("/u.csv"), dest, size=len(data), sha256=hashlib.sha256(data).hexdigest())
    assert dest.read_bytes() == data
    assert server.requests("/u.csv") == [None, "bytes=12345-"]
    assert not part_path(dest).exists()


def test_server_ignoring_range_restarts_cleanly(server, real_files, tmp_path):
    data = real_files["IC40_uptime.csv"]
    server.files["/u.csv"] = data
    server.ignore_range.add("/u.csv")
    dest = tmp_path / "u.csv"
    part_path(dest).write_bytes(data[:1000])
    download(server.url("/u.csv"), dest, size=len(data), sha256=hashlib.sha256(data).hexdigest())
    assert dest.read_bytes() == data


def test_corrupted_file_is_refused_and_nothing_remains(server, manifest, cache, capsys):
    good = server.files["/icecat1.csv"]
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x01  # one bit flipped, same size
    server.files["/icecat1.csv"] = bytes(bad)
    assert cli_main.main(["data", "fetch", "cat"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("llama data: error: IceCube_Gold_Bronze_Tracks.csv: refused, sha256")
    directory = cache / "datasets" / "cat"
    assert list(directory.rglob("*")) == []  # no file, no .part, no record

    server.files["/icecat1.csv"] = good  # the server is fixed: the next fetch works
    assert cli_main.main(["data", "fetch", "cat"]) == 0


def test_wrong_size_is_refused(server, real_files, tmp_path):
    data = real_files["icecat1.csv"]
    server.files["/c.csv"] = data + b"extra"
    dest = tmp_path / "c.csv"
    with pytest.raises(ChecksumMismatch, match="more than the expected"):
        download(server.url("/c.csv"), dest, size=len(data),
                 sha256=hashlib.sha256(data).hexdigest())
    assert list(tmp_path.iterdir()) == []


def test_corrupted_cached_file_is_replaced(server, manifest, cache):
    assert cli_main.main(["data", "fetch", "cat"]) == 0
    target = cache / "datasets" / "cat" / "IceCube_Gold_Bronze_Tracks.csv"
    bad = bytearray(target.read_bytes())
    bad[0] ^= 0xFF
    target.write_bytes(bytes(bad))
    (target.parent / datasets.RECORD).unlink()  # as after a crash: no record to trust
    assert not datasets.is_fetched("cat")
    assert cli_main.main(["data", "fetch", "cat"]) == 0
    assert target.read_bytes() == server.files["/icecat1.csv"]


def test_http_error_is_one_line(server, manifest, cache, capsys):
    del server.files["/icecat1.csv"]
    assert cli_main.main(["data", "fetch", "cat"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "HTTP 404" in err


# ---------------------------------------------------------------------------- resolve


def test_resolve_names_files_and_paths(server, manifest, cache, tmp_path):
    base = datasets.resolve("mix")  # fetched on demand
    assert base == cache / "datasets" / "mix"
    assert (base / "uptime" / "IC40_exp.csv").is_file()
    assert datasets.resolve("mix/cat.csv") == base / "cat.csv"
    assert datasets.resolve("mix/uptime") == base / "uptime"
    with pytest.raises(datasets.InputError, match="no file"):
        datasets.resolve("mix/nope.csv")
    with pytest.raises(datasets.ConfigurationError, match="llama data fetch cat"):
        datasets.resolve("cat", fetch_missing=False)
    local = tmp_path / "local.csv"
    local.write_text("x")
    assert datasets.resolve(str(local)) == local
    assert datasets.resolve(local) == local
    with pytest.raises(datasets.InputError, match="no such file"):
        datasets.resolve("./not-here")


def test_data_path_command(server, manifest, cache, capsys):
    assert cli_main.main(["data", "path", "cat/IceCube_Gold_Bronze_Tracks.csv"]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed.read_bytes() == server.files["/icecat1.csv"]


def test_unknown_name_fails_before_download(server, manifest, cache, capsys):
    assert cli_main.main(["data", "fetch", "cat", "nope"]) == 1
    assert "unknown data set 'nope'" in capsys.readouterr().err
    assert server.log == []


@pytest.mark.parametrize("argv", [["data", "--help"], ["data", "fetch", "--help"],
                                  ["data", "--version"]])
def test_help_and_version(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main.main(argv)
    assert exc.value.code == 0


def test_concurrent_downloads_of_one_file_transfer_it_once(server, real_files, tmp_path):
    """Two jobs sharing a cache: the lock makes the second wait and reuse the first's file."""
    from concurrent.futures import ThreadPoolExecutor

    data = real_files["IC40_uptime.csv"]
    server.files["/u.csv"] = data
    dest = tmp_path / "u.csv"
    digest = hashlib.sha256(data).hexdigest()
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: download(server.url("/u.csv"), dest, size=len(data),
                                                   sha256=digest), range(2)))
    assert results == [dest, dest] and dest.read_bytes() == data
    assert server.requests("/u.csv") == [None]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["u.csv"]
