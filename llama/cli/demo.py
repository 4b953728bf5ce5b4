"""``llama demo``: one event end to end on SIMULATED inputs, offline.

1. generates a SIMULATED LVK alert (igwn.gwalert JSON with an embedded simulated
   multi-order sky map), a SIMULATED neutrino list (background drawn from the packaged
   public-data background model plus injected signal neutrinos) and a SIMULATED background
   population;
2. creates the event from the alert with ``llama skymap-info --gwalert``;
3. runs ``luigi --module llama.tasks ReviewPipeline --eventid SIM-DEMO`` and prints where the
   products are.
Nothing here is real data: every input is labelled SIMULATED.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from llama.cli.common import add_common_options, run_guarded, setup_logging

PROG = "llama demo"

EVENT_ID = "SIM-DEMO"
EVENT_GPS = 1400000000.0
SOURCE_POSITION = (150.0, 20.0)  # RA, Dec of the simulated source, deg
SNR = 12.0
P_TERRESTRIAL = 0.1
INSTRUMENTS = ["H1", "L1", "V1"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Create a SIMULATED event from a generated alert and build its products with "
        "Luigi (no network, no external data).",
    )
    p.add_argument("--outdir", default="llama-demo",
                   help="output directory: inputs/ and current_run/ go here (default ./llama-demo)")
    p.add_argument("--trials", type=int, default=500, help="background trials per search")
    p.add_argument("--signal", type=float, default=3.0, help="mean injected signal neutrinos")
    p.add_argument("--seed", type=int, default=1, help="random seed")
    add_common_options(p)
    return p


def simulated_alert(skymap_fits: bytes, event_iso: str) -> dict:
    """An igwn.gwalert-style PRELIMINARY alert for EVENT_ID embedding a FITS sky map (SIMULATED)."""
    return {
        "alert_type": "PRELIMINARY",
        "time_created": event_iso[:19] + "Z",
        "superevent_id": EVENT_ID,
        "urls": {"gracedb": None},
        "event": {
            "time": event_iso + "Z", "far": 1e-9, "significant": True,
            "instruments": INSTRUMENTS, "group": "CBC", "pipeline": "SIMULATED", "search": "MDC",
            "properties": {"HasNS": 1.0, "HasRemnant": 1.0},
            "classification": {"BNS": 1 - P_TERRESTRIAL, "NSBH": 0.0, "BBH": 0.0,
                               "Terrestrial": P_TERRESTRIAL},
            "duration": None, "central_frequency": None,
            "skymap": base64.b64encode(skymap_fits).decode("ascii"),
        },
        "external_coinc": None,
    }


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.verbose)
    return run_guarded(PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    from llama.background.trials import TrialGenerator, run_trials
    from llama.errors import InputError, LlamaError
    from llama.ingest import ingest_file
    from llama.io.background_sample import default_background_sample
    from llama.io.neutrinos import NeutrinoList, write_llama_json
    from llama.io.populations import write_population
    from llama.io.skymap import write_skymap
    from llama.io.skymap_simulated import simulated_skymap
    from llama.io.storage import atomic_write_text
    from llama.io.tables import load_model
    from llama.science.pvalue import population_key
    from llama.science.searches import SEARCHES
    from llama.significance import make_trigger, mjd_to_iso, parse_event_time, summary

    if args.trials < 1:
        raise InputError(f"--trials must be at least 1, got {args.trials}")
    outdir = Path(args.outdir).resolve()
    inputs = outdir / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    event_mjd = parse_event_time(EVENT_GPS)
    skymap = simulated_skymap(*SOURCE_POSITION, sigma_deg=4.0, distmean=80.0, diststd=20.0,
                              seed=args.seed, object_name="SIMULATED-DEMO")
    skymap_path = inputs / "SIMULATED-DEMO.multiorder.fits"
    write_skymap(skymap, skymap_path)
    alert_path = inputs / "SIMULATED-alert.json"
    alert = simulated_alert(skymap_path.read_bytes(), mjd_to_iso(event_mjd))
    atomic_write_text(alert_path, json.dumps(alert))

    sample = default_background_sample()
    model = load_model("o3", "o3-table", sample)
    trigger = make_trigger(skymap, event_mjd, SNR, INSTRUMENTS, P_TERRESTRIAL)
    generator = TrialGenerator(model, sample, trigger)
    later = generator.trial(rng, None)  # a neutrino after the window makes the list complete
    later.mjd = event_mjd + np.linspace(700.0, 900.0, len(later)) / 86400.0
    neutrinos = NeutrinoList.concatenate([generator.trial(rng, skymap, args.signal), later])
    neutrinos_path = inputs / "SIMULATED-neutrinos.json"
    write_llama_json(neutrinos, neutrinos_path)
    populations = inputs / "SIMULATED-populations.hdf5"
    for search in SEARCHES:
        background = run_trials(skymap, trigger, model, sample, args.trials, args.seed + 100, search)
        write_population(populations, population_key(search, "bns", "o3", INSTRUMENTS),
                         background.odds, {"simulated": 1, "seed": args.seed + 100})
    print(f"SIMULATED inputs in {inputs}: alert with a {skymap.npix}-pixel multi-order map, "
          f"{len(neutrinos)} neutrinos, {args.trials} background trials per search")

    run_dir = outdir / "current_run"
    ingest_file(alert_path, kind="gwalert", run_dir=run_dir, role="test")
    env = {**os.environ, "LLAMA_OUTPUT_DIR": str(outdir), "LLAMA_NEUTRINO_SOURCE": str(neutrinos_path),
           "LLAMA_NEUTRINO_FORMAT": "llama", "LLAMA_POPULATIONS": str(populations),
           "LLAMA_DEFAULT_SNR": str(SNR)}
    # Luigi allows one process per command line; the demo's own lock directory lets demos in
    # different output directories run at the same time
    command = [sys.executable, "-m", "luigi", "--module", "llama.tasks", "ReviewPipeline",
               "--eventid", EVENT_ID, "--lock-pid-dir", str(outdir / "luigi-locks")]
    print("running: LLAMA_OUTPUT_DIR=... luigi --module llama.tasks ReviewPipeline --eventid "
          f"{EVENT_ID}")
    result = subprocess.run(command, env=env, cwd=outdir, capture_output=True, text=True)
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise LlamaError(f"luigi exited with {result.returncode}: {tail[0]}")
    event_dir = run_dir / EVENT_ID
    print(f"products of {EVENT_ID} in {event_dir}:")
    for path in sorted(p for p in event_dir.iterdir() if p.is_file() and not p.name.startswith(".")):
        print(f"  {path.name}")
    for search in SEARCHES.values():
        for line in summary(json.loads((event_dir / search.output_file).read_text())):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
