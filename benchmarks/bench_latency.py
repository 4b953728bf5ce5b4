"""Latency of the online service: notice sent to the listener -> significance JSON on disk.

Real processes, as in operations: `llama listen gcn` (VOEvent Transport Protocol through
pygcn) and `llama run -F` (warm: it has already built one event), a loopback VOEvent broker
and a loopback HTTP server standing in for GraceDB (the real MS181101ab sky map, 778 kB
multi-order). The neutrino list source is already available (a LLAMA JSON list of 7 real
IC40 tracks moved around the event time, plus a later one, so the list is complete). Each of
N notices is the real MS181101ab Preliminary VOEvent under a new event id, sent after the
previous one's significance appeared. The breakdown comes from the event's latency.json
(received/ingested by the listener, written per product by the daemon).

    python benchmarks/bench_latency.py [--notices 20] [--pipeline DEFAULT]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from listen_helpers import HttpServer, VtpServer, voevent_bytes, write_neutrinos  # noqa: E402

from llama.science.searches import SEARCHES  # noqa: E402

DATA = Path(os.environ.get("LLAMA_SHARED_DATA", REPO.parent / "shared" / "data"))
STEPS = ("bayestar.multiorder.fits", "lvc_skymap_distances.json", "icecube_neutrino_list.json")


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def event_ids(n: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return [f"MS181101{letters[1 + k // 26]}{letters[k % 26]}" for k in range(n)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--notices", type=int, default=20)
    p.add_argument("--pipeline", default="DEFAULT")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="llama-latency-"))
    env = {**os.environ, "LLAMA_OUTPUT_DIR": str(tmp / "out"), "PYTHONWARNINGS": "ignore",
           "LLAMA_NEUTRINO_SOURCE": str(write_neutrinos(DATA, tmp / "neutrinos.json"))}
    run_dir = tmp / "out" / "current_run"
    run_dir.mkdir(parents=True)
    skymap = (DATA / "gw_skymaps" / "MS181101ab_userguide_bayestar.multiorder.fits").read_bytes()
    gracedb, broker = HttpServer({"bayestar.multiorder.fits": skymap}), VtpServer(60)
    template = voevent_bytes(DATA, "2-Preliminary", gracedb.url)
    ids = event_ids(args.notices + 1)
    output = SEARCHES["opa" if args.pipeline == "DEFAULT" else "subthreshold"].output_file
    python = [sys.executable, "-m"]
    logs = open(tmp / "processes.log", "w")  # noqa: SIM115
    listener = subprocess.Popen(python + ["llama.cli.listen", "gcn", "--host", "127.0.0.1",
                                          "--port", str(broker.port), "--timeout", "600"],
                                env=env, stdout=logs, stderr=logs)
    daemon = subprocess.Popen(python + ["llama.cli.run", str(run_dir), "-F", "-p", args.pipeline,
                                        "--interval", "5"], env=env, stdout=logs, stderr=logs)
    rows = []
    try:
        for k, eventid in enumerate(ids):
            target = run_dir / eventid / output
            sent = time.time()
            broker.send([template.replace(b"MS181101ab", eventid.encode())], timeout_s=60)
            deadline = time.monotonic() + 120
            while not target.exists():
                if time.monotonic() > deadline:
                    raise SystemExit(f"no {target} after 120 s; see {tmp / 'processes.log'}")
                time.sleep(0.002)
            done = time.time()
            if k == 0:
                print(f"warm-up (cold daemon and listener): {done - sent:.2f} s")
                continue
            while output not in (latency := json.loads(
                    (run_dir / eventid / "latency.json").read_text()))["products"]:
                time.sleep(0.01)  # the daemon records the write just after it
            (notice,) = latency["notices"].values()
            products = latency["products"]
            marks = [sent, epoch(notice["received_utc"]), epoch(notice["ingested_utc"])]
            marks += [epoch(products[name]["written_utc"]) for name in (*STEPS, output)]
            marks.append(done)
            rows.append([b - a for a, b in zip(marks, marks[1:], strict=False)] + [done - sent])
    finally:
        for process in (listener, daemon):
            process.terminate()
            process.wait(timeout=30)
        gracedb.close()
        broker.close()
        logs.close()

    names = ["sent -> received by the listener", "received -> archived + event ingested",
             "ingested -> sky map fetched (daemon wake-up, Luigi scheduling, HTTP GET)",
             "-> distances", "-> neutrino list", f"-> {output}",
             "recorded -> seen on disk (< 0: the record follows the file)",
             "TOTAL notice -> significance JSON"]
    print(f"{len(rows)} notices, pipeline {args.pipeline}, daemon warm; seconds")
    print(f"{'step':70s} {'median':>8s} {'min':>8s} {'max':>8s}")
    for i, name in enumerate(names):
        values = [row[i] for row in rows]
        print(f"{name:70s} {statistics.median(values):8.3f} {min(values):8.3f} {max(values):8.3f}")
    total = statistics.median(row[-1] for row in rows)
    print(f"median latency {total:.3f} s (target <= 1 s: {'met' if total <= 1 else 'NOT met'})")


if __name__ == "__main__":
    main()
