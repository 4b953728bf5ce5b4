#!/usr/bin/env python3
"""A real campaign through a real HTCondor pool, staged through a real S3 endpoint.

Needs root and the personal pool of scripts/condor_pool.sh (set up and started), with llama
installed in the pool's root at /opt/llama (see htcondor/README.md). Runs from llama's own
environment on the host (it starts moto's ThreadedMotoServer on 127.0.0.1; the pool's jobs
reach it on the same loopback interface):

    scripts/condor_pool.sh setup && scripts/condor_pool.sh start
    .venv/bin/python scripts/condor_campaign_test.py

1. `llama background submit --profile local` writes a DAG of 8 run jobs + collation, submitted
   by a non-root user; job 3 fails on its first try (a wrapper exits 1 once) and DAGMan
   retries it; the collated table must hold exactly the rows the jobs wrote (count and sha256
   of every job object in S3).
2. A second campaign: the S3 endpoint is stopped while jobs run, so the DAG fails and leaves a
   rescue DAG; the endpoint is restarted and the DAG resubmitted: it completes, with nothing
   lost or counted twice (jobs already committed skip their work).
3. No credential appears in any generated file or log.
Bounded: every wait has a time limit. Exit 0 when every check holds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(os.environ.get("LLAMA_CONDOR_ROOT", "/var/lib/llama-condor/root"))
HOME = Path("/home/llama")
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gw_skymaps"
MAPS = ["S251112cm_bayestar.multiorder.fits", "MS181101ab_userguide_bayestar.multiorder.fits"]
BUCKET = "llama-campaigns"
SECRET = "llama-test-secret-" + hashlib.sha256(os.urandom(16)).hexdigest()[:16]
KEY_ID = "LLAMATESTKEY" + hashlib.sha256(os.urandom(8)).hexdigest()[:8].upper()
JOBS, TRIALS = 8, 40


def as_llama(command: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a shell command as the pool's unprivileged user, inside the pool's root."""
    return subprocess.run(
        ["chroot", str(ROOT), "su", "llama", "-c", command],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def wait_for_dag(directory: Path, limit: float) -> int:
    """Wait for DAGMan to exit; its exit status."""
    out = ROOT / directory.relative_to("/") / "llama_background.dag.dagman.out"
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if out.exists():
            for line in out.read_text(errors="replace").splitlines():
                if "EXITING WITH STATUS" in line:
                    return int(line.rsplit(" ", 1)[-1])
        time.sleep(2)
    raise SystemExit(f"DAG in {directory} did not finish within {limit} s")


def prepare(name: str, port: int, fail_first: int | None) -> Path:
    """Campaign directory in the pool's home, the maps, credentials and the job wrapper."""
    directory = HOME / name
    host_dir = ROOT / directory.relative_to("/")
    shutil.rmtree(host_dir, ignore_errors=True)
    (host_dir / "maps").mkdir(parents=True)
    for name_ in MAPS:
        shutil.copy(SHARED / name_, host_dir / "maps" / name_)
    (host_dir / "s3.credentials").write_text(
        f"[default]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n"
    )
    fail = (
        f'if [ "$JOB_INDEX" = "{fail_first}" ] && [ ! -e {directory}/failed.once ]; then\n'
        f"  touch {directory}/failed.once; echo 'test: failing once' >&2; exit 1\nfi\n"
        if fail_first is not None else ""
    )
    wrapper = host_dir / "llama-job.sh"
    wrapper.write_text(
        "#!/bin/sh\n# the pool's llama; fails once for one job (the retry test)\n"
        'JOB_INDEX=$(echo "$@" | sed -n "s/.*--job \\([0-9]*\\).*/\\1/p")\n'
        f"{fail}exec /opt/llama/bin/llama \"$@\"\n"
    )
    wrapper.chmod(0o755)
    subprocess.run(["chroot", str(ROOT), "chown", "-R", "llama:llama", str(directory)], check=True)
    return directory


def submit(directory: Path, port: int, seed: int) -> subprocess.CompletedProcess:
    maps = " ".join(str(directory / "maps" / m) for m in MAPS)
    command = (
        f"cd {directory} && /opt/llama/bin/llama background submit --profile local "
        f"--executable {directory}/llama-job.sh --skymaps {maps} --trials-per-job {TRIALS} "
        f"--jobs {JOBS} --seed {seed} --out s3://{BUCKET}/{directory.name} "
        f"--credentials-file s3.credentials --s3-endpoint http://127.0.0.1:{port} "
        f"--accounting-group llama.test --dag-dir dag --submit"
    )
    return as_llama(command)


def check_table(s3, prefix: str) -> None:
    """The collated table holds exactly the rows of the job objects, with their sha256."""
    import io

    import h5py

    from llama.background.campaign import read_table

    objects = sorted(o for o in s3.ls(f"{BUCKET}/{prefix}") if "/job-" in o)
    assert len(objects) == JOBS, objects
    rows = 0
    digests = {}
    for o in objects:
        data = s3.cat(o)
        with h5py.File(io.BytesIO(data), "r") as f:
            rows += f["odds"].shape[0]
        digests[f"s3://{o}"] = hashlib.sha256(data).hexdigest()
    table = read_table(f"s3://{BUCKET}/{prefix}/table.h5")
    assert len(table) == rows == JOBS * TRIALS, (len(table), rows)
    assert table.sources == digests, (table.sources, digests)
    jobs, trials = table.columns["job"], table.columns["trial"]
    assert len(set(zip(jobs.tolist(), trials.tolist(), strict=True))) == rows  # no duplicates
    print(f"  table: {len(table)} rows = {JOBS} jobs x {TRIALS}; sha256 of all {JOBS} job "
          "objects match the table's sources")


def no_secrets(directory: Path) -> None:
    host_dir = ROOT / directory.relative_to("/")
    for path in host_dir.rglob("*"):
        if path.is_file() and path.name != "s3.credentials":
            text = path.read_bytes()
            assert SECRET.encode() not in text and KEY_ID.encode() not in text, path
    print(f"  no key id or secret in any file under {directory} but s3.credentials")


def main() -> int:
    from moto.server import ThreadedMotoServer

    os.environ.update(AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET,
                      AWS_DEFAULT_REGION="us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    port = server._server.server_port
    os.environ["FSSPEC_S3_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    import s3fs

    s3 = s3fs.S3FileSystem(client_kwargs={"endpoint_url": f"http://127.0.0.1:{port}"})
    s3.mkdir(BUCKET)
    print(f"S3 endpoint (moto) on 127.0.0.1:{port}, bucket {BUCKET}")

    print("1. DAG of 8 jobs + collation; job 3 fails on its first try")
    directory = prepare("campaign1", port, fail_first=3)
    started = time.monotonic()
    result = submit(directory, port, seed=101)
    print("  " + result.stdout.strip().replace("\n", "\n  "))
    assert result.returncode == 0, result.stderr
    status = wait_for_dag(directory / "dag", 900)
    print(f"  DAGMan exit status {status} after {time.monotonic() - started:.0f} s")
    assert status == 0
    dagman = (ROOT / directory.relative_to("/") / "dag" / "llama_background.dag.dagman.out")
    retried = [line for line in dagman.read_text().splitlines() if "Retrying node" in line]
    print(f"  DAGMan: {retried[0].split(' ', 2)[-1] if retried else 'no retry'}")
    assert retried, "expected a retry"
    s3.invalidate_cache()
    check_table(s3, "campaign1")
    no_secrets(directory)

    print("2. the S3 endpoint stops mid-campaign; the rescue DAG completes the campaign")
    directory = prepare("campaign2", port, fail_first=None)
    result = submit(directory, port, seed=202)
    assert result.returncode == 0, result.stderr
    start = time.monotonic()
    while time.monotonic() - start < 600:
        s3.invalidate_cache()
        committed = [o for o in s3.ls(f"{BUCKET}/campaign2") if "/job-" in o] if s3.exists(
            f"{BUCKET}/campaign2") else []
        if len(committed) >= 2:
            break
        time.sleep(1)
    server.stop()
    print(f"  endpoint stopped with {len(committed)} of {JOBS} jobs committed")
    status = wait_for_dag(directory / "dag", 900)
    rescues = sorted(p.name for p in (ROOT / directory.relative_to("/") / "dag").glob("*.rescue*"))
    print(f"  DAGMan exit status {status}; rescue files: {rescues}")
    assert status != 0 and rescues
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    print("  endpoint restarted (same in-memory store); resubmitting the DAG")
    dagman = ROOT / directory.relative_to("/") / "dag" / "llama_background.dag.dagman.out"
    dagman.rename(dagman.with_suffix(".out.first"))
    result = as_llama(f"cd {directory}/dag && condor_submit_dag llama_background.dag")
    assert result.returncode == 0, result.stderr
    status = wait_for_dag(directory / "dag", 900)
    print(f"  DAGMan exit status {status}")
    assert status == 0
    s3.invalidate_cache()
    check_table(s3, "campaign2")
    no_secrets(directory)
    server.stop()
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
