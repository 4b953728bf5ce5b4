"""Wall time of the cold command ``luigi --module llama.tasks Significance --eventid ...``.

Sets up an archival event: the real MS181101ab BAYESTAR multi-order sky map placed at an IC40
time (SIM-bench), its neutrino list built from the public IceCube IC40 release (real tracks,
complete). Then, 5 times: delete Distances and Significance, run the command in a fresh
interpreter (Python start-up included) and time it. Nothing is warmed on purpose (the OS file
cache is whatever earlier runs left; the first run is reported on its own).

Breakdown, each measured on its own:
  imports   fresh interpreters: `python -c pass`, `import llama.tasks`, and every module the
            command imports (medians); the top packages from `python -X importtime`
  I/O       in-process: input checksums, sky-map and neutrino-list reads, model tables, write
  science   in-process: trigger, window cut and run_search
The rest of the wall time is Luigi (scheduling, completeness checks) and interpreter exit.

    python benchmarks/bench_luigi_cold.py [--shared ../shared/data] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 5.0
EVENT = "SIM-bench"
IC40_MJD = 54800.74028365  # an IC40 track with 6 more within +-500 s
SKYMAP = "MS181101ab_userguide_bayestar.multiorder.fits"
#: everything `luigi --module llama.tasks Significance` imports
FULL_IMPORT = (
    "import luigi.interface, llama.tasks, llama.io.skymap, llama.io.neutrinos, "
    "llama.io.background_sample, llama.significance, llama.science.odds, astropy.time"
)
LUIGI = [str(Path(sys.executable).with_name("luigi")), "--module", "llama.tasks"]
PACKAGES = ("luigi", "numpy", "scipy", "astropy", "healpy", "matplotlib", "h5py", "llama")


def wall(command: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds to run ``command`` to completion (it must succeed)."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed


def median_of(repeat: int, measure) -> float:
    return statistics.median(measure() for _ in range(repeat))


def import_profile(env: dict[str, str]) -> dict[str, float]:
    """Cumulative import time (s) of each package in PACKAGES when it was first imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", FULL_IMPORT],
        env=env,
        capture_output=True,
        text=True,
    )
    found: dict[str, float] = {}
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s*(\S+)$", line)
        if match and match.group(2) in PACKAGES:
            found.setdefault(match.group(2), int(match.group(1)) / 1e6)
    return found


def setup(shared: Path, root: Path) -> dict[str, str]:
    """The event and its complete neutrino list; returns the environment of the runs."""
    env = {
        **os.environ,
        "LLAMA_OUTPUT_DIR": str(root / "out"),
        "LLAMA_NEUTRINO_SOURCE": str(shared / "icecube" / "icecube_10year_ps"),
    }
    env.pop("LUIGI_CONFIG_PATH", None)
    os.environ.update(env)
    from astropy.time import Time

    from llama.event import Event

    event = Event(EVENT, root / "out" / "current_run").create()
    gps = float(Time(IC40_MJD, format="mjd", scale="utc").gps)
    info = {
        "graceid": EVENT,
        "event_time_gps": gps,
        "event_time_iso": Time(gps, format="gps").utc.isot,
        "instruments": ["H1", "L1", "V1"],
        "group": "CBC",
    }
    event.record_alert(info, (shared / "gw_skymaps" / SKYMAP).read_bytes(), SKYMAP)
    wall([*LUIGI, "NeutrinoList", "--eventid", EVENT], env, root)
    return env


def in_process(event_dir: Path, repeat: int) -> dict[str, float]:
    """Median seconds of the I/O and science steps of Significance, modules already imported."""
    import json

    from llama.config import settings
    from llama.io.atomic import atomic_write_text
    from llama.io.neutrinos import read_llama_json
    from llama.io.skymap import read_skymap
    from llama.science.odds import SearchModel
    from llama.significance import (
        Inputs,
        in_window,
        make_trigger,
        parse_event_time,
        run_search,
        to_json,
    )
    from llama.tasks import Significance

    task = Significance(eventid=EVENT)
    info = task.used_info()
    steps: dict[str, list[float]] = {}

    def timed(name: str, function, *args):
        start = time.perf_counter()
        result = function(*args)
        steps.setdefault(name, []).append(time.perf_counter() - start)
        return result

    for _ in range(repeat):
        timed("I/O: input checksums (complete() checks)", task.current_inputs)
        skymap = timed("I/O: read sky map", read_skymap, event_dir / SKYMAP)
        neutrinos = timed(
            "I/O: read neutrino list", read_llama_json, event_dir / "icecube_neutrino_list.json"
        )
        model = timed("I/O: model tables + background sample", SearchModel.create, "o3")

        def science():
            trigger = make_trigger(
                skymap,
                parse_event_time(info["event_time_gps"]),
                settings().default_snr,
                info["instruments"],
                1.0,
                "CBC",
                None,
                EVENT,
            )
            selected, outside = in_window(neutrinos, trigger, model.params)
            return run_search("subthreshold", Inputs(skymap, selected, trigger, model, outside))

        output = timed("science: trigger, window, run_search", science)
        text = timed("science: output JSON", to_json, output)
        timed("I/O: atomic write", atomic_write_text, event_dir / "bench.json", text)
        json.loads(text)
    return {name: statistics.median(times) for name, times in steps.items()}


def main() -> None:
    here = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shared", type=Path, default=here.parent / "shared" / "data")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()

    root = Path(tempfile.mkdtemp(prefix="llama-bench-"))
    try:
        env = setup(args.shared, root)
        event_dir = root / "out" / "current_run" / EVENT
        command = [*LUIGI, "Significance", "--eventid", EVENT, "--local-scheduler"]
        runs = []
        for _ in range(args.repeat):
            for name in ("lvc_skymap_distances.json", "significance_subthreshold_lvc-i3.json"):
                (event_dir / name).unlink(missing_ok=True)
                (event_dir / f".{name}.meta.json").unlink(missing_ok=True)
            runs.append(wall(command, env, root))

        python = [sys.executable, "-c"]
        startup = median_of(args.repeat, lambda: wall([*python, "pass"], env, root))
        light = median_of(args.repeat, lambda: wall([*python, "import llama.tasks"], env, root))
        full = median_of(args.repeat, lambda: wall([*python, FULL_IMPORT], env, root))
        packages = import_profile(env)
        steps = in_process(event_dir, args.repeat)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    cold, io_science = statistics.median(runs), sum(steps.values())
    rows = [
        ("cold `luigi --module llama.tasks Significance` (median)", f"{cold:.3f}"),
        ("  first run / min / max", f"{runs[0]:.2f} / {min(runs):.2f} / {max(runs):.2f}"),
        ("python start-up (`python -c pass`)", f"{startup:.3f}"),
        ("`import llama.tasks`, start-up included (--help, missing inputs)", f"{light:.3f}"),
        ("every module the command imports, start-up included", f"{full:.3f}"),
        *(
            (f"  {name} (cumulative, when first imported)", f"{s:.3f}")
            for name, s in packages.items()
        ),
        *((name, f"{s:.3f}") for name, s in steps.items()),
        ("rest: Luigi scheduling, completeness checks, exit", f"{cold - full - io_science:.3f}"),
    ]
    print(f"{'step':<68} {'seconds':>16}")
    print("-" * 85)
    for name, text in rows:
        print(f"{name:<68} {text:>16}")
    print("-" * 85)
    print(
        f"imports are {full / cold:.0%} of the cold command, I/O + science {io_science / cold:.0%}"
    )
    verdict = "met" if cold <= TARGET_S else "MISSED"
    print(f"target <= {TARGET_S:.0f} s: {verdict} ({cold:.2f} s, median of {len(runs)} runs)")


if __name__ == "__main__":
    main()
