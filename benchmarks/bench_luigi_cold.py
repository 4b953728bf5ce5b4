"""Wall time of the cold command ``luigi --module llama.tasks Significance --eventid ...``.

Sets up an archival event: the real MS181101ab BAYESTAR multi-order sky map placed at an IC40
time (SIM-bench), and its neutrino list built from the public IceCube IC40 release (real
tracks; the list is complete). Then, ``--repeat`` times: delete Distances and Significance and
run the command in a fresh interpreter, Python start-up included. Nothing is warmed on purpose
(the OS file cache holds whatever earlier runs left; the first run is reported on its own).

Breakdown, each part measured on its own:
  imports   fresh interpreters: `python -c pass`, `import llama.tasks`, and every module the
            command imports (timed in turn with the command); per package from -X importtime
  I/O       in-process: input checksums, sky-map and neutrino-list reads, model tables, write
  science   in-process: trigger, window cut, run_search, output JSON
The rest, by difference, is Luigi (scheduling, completeness checks) and interpreter exit.

    python benchmarks/bench_luigi_cold.py [--shared ../shared/data] [--repeat 5]
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

TARGET_S = 5.0
EVENT = "SIM-bench"
IC40_MJD = 54800.74028365  # an IC40 track with 6 more within +-500 s
SKYMAP = "MS181101ab_userguide_bayestar.multiorder.fits"
NEUTRINOS = "icecube_neutrino_list.json"
LUIGI = [str(Path(sys.executable).with_name("luigi")), "--module", "llama.tasks"]
#: every module `luigi --module llama.tasks Significance` imports
FULL_IMPORT = (
    "import luigi.interface, llama.tasks, llama.io.skymap, llama.io.neutrinos, "
    "llama.io.background_sample, llama.significance, llama.science.odds, astropy.time"
)
TOP_PACKAGES = 8


def wall(command: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds to run ``command`` to completion (it must succeed)."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed


def import_profile(env: dict[str, str]) -> list[tuple[str, float]]:
    """Import time (s) of everything the command imports, per top-level package (the sum of
    its modules' own times from `python -X importtime`), largest first."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", FULL_IMPORT],
        env=env,
        capture_output=True,
        text=True,
    )
    totals: Counter[str] = Counter()
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)$", line)
        if match:
            totals[match.group(2).split(".")[0]] += int(match.group(1)) / 1e6
    top = totals.most_common(TOP_PACKAGES)
    return [*top, ("everything else", sum(totals.values()) - sum(s for _, s in top))]


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
    from llama.config import settings
    from llama.io.neutrinos import read_llama_json
    from llama.io.skymap import read_skymap
    from llama.io.storage import atomic_write_text
    from llama.io.tables import load_model
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

    def science(skymap, neutrinos, model) -> dict:
        t_gw = parse_event_time(info["event_time_gps"])
        snr = settings().default_snr
        trigger = make_trigger(skymap, t_gw, snr, info["instruments"], graceid=EVENT)
        selected, outside = in_window(neutrinos, trigger, model.params)
        return run_search("subthreshold", Inputs(skymap, selected, trigger, model, outside))

    for _ in range(repeat):
        timed("I/O: input checksums (completeness checks)", task.current_inputs)
        skymap = timed("I/O: read sky map", read_skymap, event_dir / SKYMAP)
        neutrinos = timed("I/O: read neutrino list", read_llama_json, event_dir / NEUTRINOS)
        model = timed("I/O: model tables + background sample", load_model, "o3")
        output = timed(
            "science: trigger, window cut, run_search", science, skymap, neutrinos, model
        )
        text = timed("science: output JSON text", to_json, output)
        timed("I/O: atomic write", atomic_write_text, event_dir / "bench.json", text)
    return {name: statistics.median(times) for name, times in steps.items()}


def main() -> None:
    here = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shared", type=Path, default=here.parent / "shared" / "data")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    logging.getLogger("llama").setLevel(logging.ERROR)  # "p_value is null" warnings

    root = Path(tempfile.mkdtemp(prefix="llama-bench-"))
    try:
        env = setup(args.shared, root)
        event_dir = root / "out" / "current_run" / EVENT
        commands = {  # timed in turn, so that the machine's drifts hit all of them alike
            "cold": [*LUIGI, "Significance", "--eventid", EVENT, "--local-scheduler"],
            "start-up": [sys.executable, "-c", "pass"],
            "light": [sys.executable, "-c", "import llama.tasks"],
            "full": [sys.executable, "-c", FULL_IMPORT],
        }
        runs: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeat):
            for name in ("lvc_skymap_distances.json", "significance_subthreshold_lvc-i3.json"):
                (event_dir / name).unlink(missing_ok=True)
                (event_dir / f".{name}.meta.json").unlink(missing_ok=True)
            for name, command in commands.items():
                runs[name].append(wall(command, env, root))
        packages = import_profile(env)
        steps = in_process(event_dir, args.repeat)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    median = {name: statistics.median(times) for name, times in runs.items()}
    cold, full, io_science = median["cold"], median["full"], sum(steps.values())
    cold_runs = runs["cold"]
    rows = [
        ("cold `luigi --module llama.tasks Significance` (median)", f"{cold:.3f}"),
        (
            "  first run / min / max",
            f"{cold_runs[0]:.2f}/{min(cold_runs):.2f}/{max(cold_runs):.2f}",
        ),
        ("python start-up (`python -c pass`)", f"{median['start-up']:.3f}"),
        (
            "`import llama.tasks`, start-up included (--help, missing inputs)",
            f"{median['light']:.3f}",
        ),
        ("imports: every module the command imports, start-up included", f"{full:.3f}"),
        *((f"  {name} (own import time of its modules)", f"{s:.3f}") for name, s in packages),
        *((name, f"{s:.4f}") for name, s in steps.items()),
        (
            "rest, by difference: Luigi scheduling and checks, exit",
            f"{cold - full - io_science:.3f}",
        ),
    ]
    print(f"{'step':<70} {'seconds':>14}")
    print("-" * 85)
    for name, text in rows:
        print(f"{name:<70} {text:>14}")
    print("-" * 85)
    print(
        f"imports are {full / cold:.0%} of the cold command, I/O + science {io_science / cold:.1%}"
    )
    verdict = "met" if cold <= TARGET_S else "MISSED"
    print(f"target <= {TARGET_S:.0f} s: {verdict} ({cold:.2f} s, median of {args.repeat} runs)")


if __name__ == "__main__":
    main()
