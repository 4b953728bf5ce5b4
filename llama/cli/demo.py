"""``llama demo``: the whole significance chain on SIMULATED inputs, offline.

Makes a simulated multi-order GW sky map, a simulated neutrino list (background from
the packaged public-data background model plus injected signal neutrinos), a small
background population, then runs both searches and writes their JSON.  Nothing here
is real data: every file is labelled SIMULATED.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llama.cli.common import add_verbosity, setup_logging

DEMO_EVENT_GPS = 1400000000.0
DEMO_POSITION = (150.0, 20.0)  # RA, Dec of the simulated source, deg


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="llama demo",
        description="Run llama end to end on SIMULATED inputs (no network, no external data).",
    )
    p.add_argument(
        "--outdir", default="llama-demo", help="where to write the files (default ./llama-demo)"
    )
    p.add_argument("--trials", type=int, default=500, help="background trials for the p-value")
    p.add_argument("--signal", type=float, default=3.0, help="mean injected signal neutrinos")
    p.add_argument("--seed", type=int, default=1, help="random seed")
    add_verbosity(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.verbose)

    import numpy as np

    from llama.background.trials import TrialGenerator, run_trials
    from llama.io.atomic import atomic_write_text
    from llama.io.background_sample import default_background_sample
    from llama.io.neutrinos import write_llama_json
    from llama.io.skymap import simulated_skymap, write_skymap
    from llama.science.odds import SearchModel
    from llama.science.pvalue import population_key, write_population
    from llama.significance import (
        OUTPUT_FILES,
        Inputs,
        make_trigger,
        parse_event_time,
        run_search,
        summary,
        to_json,
    )

    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    event_mjd = parse_event_time(DEMO_EVENT_GPS)
    skymap = simulated_skymap(
        *DEMO_POSITION,
        sigma_deg=4.0,
        distmean=80.0,
        diststd=20.0,
        seed=args.seed,
        object_name="SIMULATED-DEMO",
    )
    skymap_path = outdir / "SIMULATED-DEMO.multiorder.fits"
    write_skymap(skymap, skymap_path)
    skymap.meta["path"] = str(skymap_path)
    sample = default_background_sample()
    model = SearchModel.create("o3", "o3-table", sample)
    instruments = ["H1", "L1", "V1"]
    trigger = make_trigger(
        skymap, event_mjd, 12.0, instruments, p_terrestrial=0.1, graceid="SIM-DEMO"
    )
    neutrinos = TrialGenerator(model, sample, trigger).trial(rng, skymap, args.signal)
    neutrinos_path = outdir / "SIMULATED-neutrinos.json"
    write_llama_json(neutrinos, neutrinos_path)
    print(
        f"SIMULATED inputs: {skymap_path} ({skymap.npix} multi-order pixels), "
        f"{neutrinos_path} ({len(neutrinos)} neutrinos)"
    )

    populations = outdir / "SIMULATED-populations.hdf5"
    for search in OUTPUT_FILES:
        background = run_trials(
            skymap, trigger, model, sample, args.trials, args.seed + 100, search
        )
        write_population(
            populations,
            population_key(search, "bns", "o3", instruments),
            background.odds,
            {"simulated": 1, "seed": args.seed + 100},
        )
    print(f"SIMULATED background: {args.trials} trials per search -> {populations}")

    for search, filename in OUTPUT_FILES.items():
        output = run_search(search, Inputs(skymap, neutrinos, trigger, model), populations)
        atomic_write_text(outdir / filename, to_json(output))
        for line in summary(output):
            print(line)
        print(f"  wrote {outdir / filename}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
