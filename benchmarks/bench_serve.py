"""Status page with 1,000 event directories: time per page over HTTP on loopback.

One real event (MS181101ab: real notice and BAYESTAR sky map, IC40 tracks shifted in time,
products built by the Luigi tasks, as tests/serve_fixtures.py builds it) is copied to 1,000
event ids (small files copied, the sky map hard-linked). Then, with `llama serve`'s app on
127.0.0.1 in this process:

    cold     the first index request (every event's row computed: records read, inputs hashed)
    warm     index (default page of 100 rows and all 1,000), one event page, health, JSON API
    touched  the index after one event changed (one row recomputed)

printed as median / max over the repetitions, with the cold/warm ratio measured side by side.
Target: <= 200 ms per page. Needs ../shared/data.

    python benchmarks/bench_serve.py [--events 1000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

TARGET_MS = 200.0


def event_ids(n: int) -> list[str]:
    """``n`` distinct valid superevent ids S23MMDD + letters."""
    letters = [a + b for a in "abcdefghij" for b in "abcdefghijklmnopqrstuvwxyz"]
    days = [f"S23{m:02d}{d:02d}" for m in range(1, 13) for d in range(1, 29)]
    return [days[k % len(days)] + letters[k // len(days)] for k in range(n)]


def copy_event(source: Path, target: Path) -> None:
    """A copy of an event directory: FITS hard-linked, everything else copied (mtimes kept)."""

    def copy(src: str, dst: str) -> None:
        if src.endswith(".fits"):
            os.link(src, dst)
        else:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=copy)


def timed_get(url: str) -> float:
    """Milliseconds for one GET of ``url`` (body read)."""
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        response.read()
        assert response.status == 200, url
    return (time.perf_counter() - start) * 1000


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--events", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=20)
    args = p.parse_args()

    from serve_fixtures import build_output_dir

    from llama import health
    from llama.serve import Site, create_app, make_http_server

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        out = Path(tmp) / "out"
        start = time.perf_counter()
        real = build_output_dir(out)["current"]
        built = time.perf_counter() - start
        run = out / "current_run"
        start = time.perf_counter()
        ids = event_ids(args.events)
        for eventid in ids[1:]:
            copy_event(real, run / eventid)
        print(f"built 1 real event in {built:.1f} s; copied to {args.events} event directories "
              f"in {time.perf_counter() - start:.1f} s")

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        server = make_http_server(create_app(Site(out)), "127.0.0.1", 0)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            cold = timed_get(base + "/")
            pages = {
                "index (100 rows)": "/",
                f"index (all {args.events})": f"/?limit={args.events}",
                "index JSON (100 rows)": "/api/",
                "event page": f"/runs/current/{ids[-1]}/",
                "event JSON": f"/api/runs/current/{ids[-1]}/",
                "health": "/health",
            }
            results = {}
            for name, path in pages.items():
                timed_get(base + path)  # first visit of the page: templates, imports
                results[name] = [timed_get(base + path) for _ in range(args.repeat)]
            touched = []
            for k in range(1, args.repeat + 1):
                health.record_failure(run / ids[k] / "significance_lvc-i3.json", "Bench", "x")
                touched.append(timed_get(base + "/"))
        finally:
            server.shutdown()
            server.server_close()

    warm = statistics.median(results["index (100 rows)"])
    print(f"cold index (all rows computed): {cold:8.1f} ms   = {cold / warm:.0f}x the warm index")
    print(f"{'page':28s} {'median ms':>10s} {'max ms':>10s}")
    worst = 0.0
    for name, times in [*results.items(), ("index after 1 event changed", touched)]:
        print(f"{name:28s} {statistics.median(times):10.1f} {max(times):10.1f}")
        worst = max(worst, statistics.median(times))
    verdict = "within" if worst <= TARGET_MS else "OVER"
    print(f"slowest median {worst:.1f} ms: {verdict} the {TARGET_MS:.0f} ms target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
