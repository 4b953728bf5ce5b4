"""The status page (`llama serve`): headless Chromium, HTTP security, concurrency, JSON API.

The output directory is built by the real code (serve_fixtures: real MS181101ab notices and sky
maps, products built by the Luigi tasks, the sky plot drawn by llama.render). Servers bind
127.0.0.1 on a free port; every wait is bounded.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import select
import shlex
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import REPO
from serve_fixtures import FAILED, HOSTILE, PLOT, build_output_dir
from test_tasks import EVENT

from llama.errors import ConfigurationError
from llama.serve import Site, check_exposure, create_app, load_credentials, make_http_server

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
HOSTILE_RUN = "<img src=x onerror=alert(1)>"
SECRET = "secret outside the output directory"


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    """The fixture output directory, plus hostile entries: a past run whose name is HTML, a
    symlink from an event to a file outside, an event directory that is a symlink outside."""
    root = tmp_path_factory.mktemp("serve")
    out = root / "out"
    build_output_dir(out)
    (out / "past_runs" / HOSTILE_RUN).mkdir()
    (root / "secret.txt").write_text(SECRET)
    (out / "current_run" / EVENT / "leak.txt").symlink_to(root / "secret.txt")
    (root / "elsewhere").mkdir()
    (root / "elsewhere" / "flags.json").write_text(SECRET)
    (out / "current_run" / "S200101a").symlink_to(root / "elsewhere")
    return out


@contextmanager
def serving(site: Site, credentials: dict[str, str] | None = None):
    """The app on 127.0.0.1:<free port> in a thread; yields the base URL."""
    server = make_http_server(create_app(site, credentials), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def url(out):
    with serving(Site(out)) as base:
        yield base


def get(url: str, auth: tuple[str, str] | None = None) -> tuple[int, dict, bytes]:
    """GET ``url``: status, headers and body (errors included), bounded by a timeout."""
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def raw_get(base: str, path: str) -> tuple[int, bytes]:
    """GET a raw, unnormalised path (no client-side cleaning of '..' or '//')."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def significance(out: Path, name: str = "significance_lvc-i3.json") -> dict:
    return json.loads((out / "current_run" / EVENT / name).read_text())


# --------------------------------------------------------------------------- the browser


@pytest.fixture
def browser(tmp_path):
    """Headless Debian chromium through its chromedriver (Selenium; no browser download)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def full_page_screenshot(driver, path: Path) -> None:
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1400, min(max(height + 120, 600), 4000))
    assert driver.save_screenshot(str(path)) and path.stat().st_size > 10_000


def test_pages_in_headless_chromium(url, out, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(url + "/runs/replay/")
    rows = browser.find_elements(By.CSS_SELECTOR, "#events tr.event")
    assert [row.find_element(By.TAG_NAME, "a").text for row in rows] == [EVENT]
    states = {span.get_attribute("title"): span.find_element(By.CSS_SELECTOR, ".state").text
              for span in rows[0].find_elements(By.CSS_SELECTOR, "span.product")}
    assert states[FAILED] == "failed" and states["lvc_skymap_distances.json"] == "obsolete"
    full_page_screenshot(browser, tmp_path / "index-replay.png")

    browser.get(url + "/")
    (row,) = browser.find_elements(By.CSS_SELECTOR, "#events tr.event")
    assert "test" in row.text and "H1" in row.text
    assert {s.text for s in row.find_elements(By.CSS_SELECTOR, ".state")} == {"complete"}
    full_page_screenshot(browser, tmp_path / "index.png")
    row.find_element(By.LINK_TEXT, EVENT).click()

    assert browser.find_element(By.ID, "eventid").text.startswith(EVENT)
    image = browser.find_element(By.CSS_SELECTOR, ".plots img")
    assert image.get_attribute("alt") == PLOT
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth",
                                  image) > 500  # the plot loaded and decoded
    table = browser.find_element(By.ID, "significance").text
    assert f"{significance(out)['odds_ratio']:.4g}" in table
    assert f"{significance(out, FAILED)['odds_ratio']:.4g}" in table
    neutrinos = browser.find_elements(By.CSS_SELECTOR, "#neutrinos tbody tr")
    assert len(neutrinos) == 7  # the real IC40 tracks in the window
    assert "Preliminary" in browser.find_element(By.ID, "notices").text
    full_page_screenshot(browser, tmp_path / "event.png")

    browser.get(url + f"/runs/replay/{EVENT}/")
    assert HOSTILE in browser.find_element(By.ID, "notices").text  # shown as text, not run
    assert browser.execute_script("return document.scripts.length") == 0


# ---------------------------------------------------------------------------------- HTTP


def test_json_api_behind_every_page(url, out):
    status, headers, body = get(url + "/api/")
    assert status == 200 and headers["Content-Type"] == "application/json"
    index = json.loads(body)
    (row,) = index["events"]
    assert row["eventid"] == EVENT and row["role"] == "test"
    assert row["searches"]["opa"]["odds_ratio"] == significance(out)["odds_ratio"]
    assert set(row["products"].values()) == {"complete"}
    assert index["health"]["status"] == "CRITICAL"  # no daemon heartbeat in the fixture

    event = json.loads(get(url + f"/api/runs/replay/{EVENT}/")[2])
    states = {p["name"]: p["state"] for p in event["products"]}
    assert states[FAILED] == "failed" and states["lvc_skymap_distances.json"] == "obsolete"
    assert [n["alert_type"] for n in event["notices"]] == ["Preliminary", "Update", "Initial"]
    distances = next(p for p in event["products"] if p["name"] == "lvc_skymap_distances.json")
    assert distances["record"]["task"] == "Distances" and distances["latency_s"] is not None
    assert {i["name"] for i in distances["inputs"]} == {
        "MS181101ab_userguide_bayestar.multiorder.fits"}
    health = json.loads(get(url + "/api/health")[2])
    assert health["code"] == 2 and health["problems"][0].startswith("CRITICAL: no daemon")


def test_read_only(url):
    for method in ("POST", "PUT", "DELETE"):
        request = urllib.request.Request(url + "/", method=method, data=b"x")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=30)
        assert err.value.code == 405


@pytest.mark.parametrize("path", [
    f"/runs/current/{EVENT}/files/../../../../../etc/passwd",
    f"/runs/current/{EVENT}/files/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    f"/runs/current/{EVENT}/files/..%2f..%2f..%2fsecret.txt",
    f"/runs/current/{EVENT}/files//etc/passwd",
    f"/runs/current/{EVENT}/files/%2fetc%2fpasswd",
    f"/runs/current/{EVENT}/files/leak.txt",  # symlink out of the tree
    "/runs/current/S200101a/files/flags.json",  # event directory is a symlink out
    "/runs/current/S200101a/",
    f"/runs/..%2f..%2f/{EVENT}/",
    f"/runs/%2e%2e/{EVENT}/",
    f"/runs/current/..%2fpast_runs%2freplay%2f{EVENT}/",
    "/static/..%2f..%2fhealth.py",
])
def test_paths_outside_the_output_directory_are_404(url, path):
    status, body = raw_get(url, path)
    assert status == 404, (path, status)
    assert SECRET.encode() not in body and b"root:" not in body


def test_event_files_are_served_safely(url):
    status, headers, body = get(url + f"/runs/current/{EVENT}/files/{PLOT}")
    assert status == 200 and headers["Content-Type"] == "image/png" and body[:4] == b"\x89PNG"
    assert "sandbox" in headers["Content-Security-Policy"]
    status, headers, body = get(url + f"/runs/replay/{EVENT}/files/notices/"
                                "0003-MS181101ab-3-Initial-hostile.xml")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_html_from_outside_is_escaped(url):
    status, _, body = get(url + f"/runs/replay/{EVENT}/")
    page = body.decode()
    assert status == 200 and HOSTILE not in page
    assert "&lt;script&gt;alert(&#39;ivorn&#39;)&lt;/script&gt;" in page
    index = get(url + "/")[2].decode()
    assert HOSTILE_RUN not in index and "&lt;img src=x onerror=alert(1)&gt;" in index
    status, _, body = get(url + "/runs/current/" + urllib.request.quote("<b onclick=x()>") + "/")
    assert status == 404 and b"<b onclick" not in body and b"&lt;b onclick=x()&gt;" in body
    status, headers, body = get(url + "/api/runs/" + urllib.request.quote(HOSTILE_RUN) + "/")
    assert status == 404 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"] == f"no run {HOSTILE_RUN!r}"


def test_200_requests_from_20_concurrent_clients(url):
    paths = ["/", "/api/", f"/runs/current/{EVENT}/", f"/api/runs/replay/{EVENT}/", "/health",
             f"/runs/current/{EVENT}/files/{PLOT}", "/runs/replay/", "/api/health"]

    def client(k: int) -> list[int]:
        return [get(url + paths[(k + i) % len(paths)])[0] for i in range(10)]

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = [future.result(timeout=120) for future in
                   [pool.submit(client, k) for k in range(20)]]
    statuses = [status for result in results for status in result]
    assert len(statuses) == 200 and set(statuses) == {200}
    assert time.monotonic() - start < 120


# ---------------------------------------------------------------------- exposure and auth


def test_exposed_bind_needs_credentials(tmp_path):
    check_exposure("127.0.0.1", None)
    check_exposure("::1", None)
    check_exposure("localhost", None)
    for host in ("0.0.0.0", "192.0.2.7", "example.org", "::"):
        with pytest.raises(ConfigurationError, match="without credentials"):
            check_exposure(host, None)
    netrc = tmp_path / "netrc"
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_credentials(netrc)
    netrc.write_text("machine llama.example.org login shifter password s3cret\n")
    netrc.chmod(0o644)
    with pytest.raises(ConfigurationError, match="readable by others"):
        load_credentials(netrc)
    netrc.chmod(0o600)
    assert load_credentials(netrc) == {"shifter": "s3cret"}
    check_exposure("0.0.0.0", load_credentials(netrc))
    netrc.write_text("machine llama.example.org\n")
    with pytest.raises(ConfigurationError, match="no entry"):
        load_credentials(netrc)


def test_llama_serve_with_credentials_answers_401_unless_authenticated(out, tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine status login shifter password p@ss:word\n"
                     "machine other login expert password hunter2\n")
    netrc.chmod(0o600)
    with llama_serve(out, "--port", "0", "--credentials", str(netrc)) as base:
        for path in ("/", f"/runs/current/{EVENT}/", "/api/health",
                     f"/runs/current/{EVENT}/files/{PLOT}"):
            status, headers, _ = get(base + path)
            assert status == 401 and headers["WWW-Authenticate"].startswith("Basic"), path
            assert get(base + path, ("shifter", "wrong"))[0] == 401
            assert get(base + path, ("nobody", "p@ss:word"))[0] == 401
            assert get(base + path, ("shifter", "p@ss:word"))[0] == 200
            assert get(base + path, ("expert", "hunter2"))[0] == 200


@contextmanager
def llama_serve(out: Path, *args: str, command: str | None = None):
    """`llama serve ARGS` (or the shell ``command``) in a subprocess; yields its base URL."""
    env = {**os.environ, "LLAMA_OUTPUT_DIR": str(out), "PYTHONWARNINGS": "ignore",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    argv = ["bash", "-c", f"exec {command}"] if command else [
        sys.executable, "-m", "llama.cli.serve", *args]
    process = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([process.stderr], [], [], 60)
        line = process.stderr.readline() if ready else "(no output in 60 s)"
        match = re.search(r"(http://[\d.]+:\d+)/", line)  # the first line names the URL
        assert match, line
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stderr.close()


# --------------------------------------------------------------------------- no Luigi here


def test_the_page_process_never_imports_luigi(out):
    code = f"""
import sys
from pathlib import Path
from llama.serve import Site, create_app
client = create_app(Site(Path({str(out)!r}))).test_client()
for path in ("/", "/api/", "/runs/current/{EVENT}/", "/runs/replay/{EVENT}/", "/health"):
    assert client.get(path).status_code == 200, path
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "luigi")
assert not loaded, loaded
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.strip() == "ok", result.stderr
    sources = [p.read_text() for p in (REPO / "llama" / "serve").rglob("*.py")]
    assert not any(re.search(r"^\s*(import|from)\s+luigi", s, re.M) for s in sources)


# ------------------------------------------------------------------------------ README


def readme_commands() -> list[str]:
    """The commands of the README's "Status page" code block."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Status page", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_status_page_examples_run_as_written(out):
    commands = readme_commands()
    serve, rest = commands[0], commands[1:]
    assert shlex.split(serve)[:2] == ["llama", "serve"]
    with llama_serve(out, command=serve) as base:
        assert base == "http://127.0.0.1:5000"
        env = {**os.environ, "LLAMA_OUTPUT_DIR": str(out),
               "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        for command in rest:
            result = subprocess.run(["bash", "-c", command], env=env, capture_output=True,
                                    text=True, timeout=60)
            if "--check" in command:
                assert result.returncode == 2 and result.stdout.startswith("CRITICAL"), command
            else:
                assert result.returncode == 0, (command, result.stderr)
            if command.startswith("curl"):
                assert json.loads(result.stdout)["status"] == "CRITICAL"


def test_malformed_files_are_shown_not_fatal(tmp_path):
    """Hand-edited or truncated files in an event directory never break a page."""
    event = tmp_path / "current_run" / "S190425z"
    (event / "notices").mkdir(parents=True)
    (event / "skymap_info.json").write_text("{not json")
    (event / "flags.json").write_text("[1, 2]")
    (event / "x.json").write_text("{}")
    (event / ".x.json.meta.json").write_text('{"inputs": 5, "finished_utc": 3}')
    (event / ".y.json.meta.json").write_text("[]")
    (event / ".z.json.failure.json").write_text('{"last_utc": "garbage"}')
    (event / "notices" / "0001-bad.xml").write_text("<xml")
    (event / "icecube_neutrino_list.json").write_text('{"triggers": [1, {"mjd": "a"}]}')
    client = create_app(Site(tmp_path)).test_client()
    for path in ("/", "/api/", "/runs/current/S190425z/", "/health"):
        assert client.get(path).status_code == 200, path
    page = client.get("/api/runs/current/S190425z/").json
    assert {p["name"]: p["state"] for p in page["products"]} == {
        "x.json": "obsolete", "y.json": "missing", "z.json": "missing"}
    assert page["notices"][0]["error"].startswith("InputError")
    assert page["neutrinos"] == [{**dict.fromkeys(page["neutrino_columns"]), "mjd": "a"}]
