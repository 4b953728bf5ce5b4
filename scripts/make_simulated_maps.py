#!/usr/bin/env python
"""Make the simulated BAYESTAR sky-map populations (llama.background.simulate) for the
background campaigns: BNS and BBH x {H1L1, H1L1V1} at the given sensitivities.

    scripts/make_simulated_maps.py [OUT_DIR] [--count 100] [--seed 20240901]
                                   [--sensitivity o3 [o4]] [--jobs 1]

OUT_DIR defaults to $LLAMA_CACHE_DIR/simulated, else ~/.cache/llama/simulated. Each group goes
to OUT_DIR/<population>-<network>-<sensitivity>/ with its manifest.json; a group whose
manifest already holds at least --count maps with the same seed is skipped, so an interrupted
run can be restarted. Run it niced: each BAYESTAR map costs minutes of one core.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def default_out() -> Path:
    base = os.environ.get("LLAMA_CACHE_DIR")
    return Path(base) / "simulated" if base else Path.home() / ".cache" / "llama" / "simulated"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", nargs="?", type=Path, default=None, help="output directory")
    p.add_argument("--count", type=int, default=100, help="maps per group (default 100)")
    p.add_argument("--seed", type=int, default=20240901, help="seed (default 20240901)")
    p.add_argument("--sensitivity", nargs="+", default=["o3"], choices=["o3", "o4"])
    p.add_argument("--populations", nargs="+", default=["bns", "bbh"],
                   choices=["bns", "nsbh", "bbh"])
    p.add_argument("--networks", nargs="+", default=["H1L1", "H1L1V1"],
                   choices=["H1L1", "H1L1V1"])
    p.add_argument("--jobs", type=int, default=1, help="processes per group (default 1)")
    args = p.parse_args(argv)
    out = args.out or default_out()

    from llama.background.simulate import simulate

    for sensitivity in args.sensitivity:
        for population in args.populations:
            for network in args.networks:
                name = f"{population}-{network}-{sensitivity}"
                manifest = out / name / "manifest.json"
                if manifest.exists():
                    done = json.loads(manifest.read_text())
                    if done.get("seed") == args.seed and len(done["maps"]) >= args.count:
                        print(f"{name}: {len(done['maps'])} maps already made, skipped")
                        continue
                start = time.perf_counter()
                path = simulate(population, network, args.count, args.seed, out,
                                sensitivity=sensitivity, jobs=args.jobs,
                                progress=sys.stderr.isatty())
                maps = json.loads(path.read_text())["maps"]
                wall = time.perf_counter() - start
                per_map = sum(m["wall_time_s"] for m in maps) / len(maps)
                print(f"{path}: {len(maps)} maps in {wall:.0f} s "
                      f"({per_map:.1f} s per BAYESTAR map)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
