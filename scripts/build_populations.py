#!/usr/bin/env python3
"""Build the background populations shipped with llama (llama/data/populations.hdf5).

For every group of simulated BAYESTAR sky maps (``llama background simulate``, or
scripts/make_simulated_maps.py for the whole set) found under MAPS_DIR as
``<population>-<network>-<sensitivity>/manifest.json``, and for both searches, a background
campaign in exact mode (``--trials-per-map`` trials per map, in ``--jobs`` jobs on the local
process pool, SNR = the default_snr setting as for public alerts, p_terrestrial = 1) is run,
collated and written at ``<search>/<population>/<sensitivity>/<instruments>``: the keys the o3
and o4 presets look up. Every dataset carries its provenance: this script, the campaign seed,
the llama and ligo.skymap versions, the number of maps, the manifest's sha256, trials and mode.

    python scripts/build_populations.py [--maps ~/.cache/llama/simulated]
        [--trials-per-map 100 | --trials-per-group 10000] [--seed 2026] [--jobs 2]
        [--out llama/data/populations.hdf5]

Anyone can rerun it: the same maps, seed and llama version give the same odds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from llama import __version__
from llama.background.campaign import Campaign, collate, run_job, write_populations
from llama.config import Settings
from llama.io.storage import atomic_write_bytes
from llama.science.searches import SEARCH_NAMES

DEFAULT_MAPS = Path(os.environ.get("LLAMA_CACHE_DIR", Path.home() / ".cache" / "llama")) / "simulated"


def groups(maps_dir: Path) -> list[tuple[Path, dict]]:
    """(directory, manifest) of every simulated group under ``maps_dir``."""
    found = []
    for manifest in sorted(maps_dir.glob("*/manifest.json")):
        found.append((manifest.parent, json.loads(manifest.read_text())))
    if not found:
        sys.exit(f"build_populations: no <group>/manifest.json under {maps_dir}")
    return found


def build(directory: Path, manifest: dict, args: argparse.Namespace, out: str) -> dict[str, int]:
    """Run and collate one group's campaigns (both searches) into ``out``."""
    maps = tuple(str(directory / row["file"]) for row in manifest["maps"])
    settings = Settings(preset=manifest["sensitivity"], population=manifest["population"])
    per_map = args.trials_per_map or -(-args.trials_per_group // len(maps))
    n_trials = per_map * len(maps)
    per_job = -(-n_trials // args.jobs)
    provenance = {
        "script": "scripts/build_populations.py",
        "campaign_seed": args.seed,
        "llama_version": __version__,
        "ligo_skymap_version": manifest.get("ligo_skymap_version", ""),
        "n_skymaps": len(maps),
        "skymap_group": directory.name,
        "manifest_sha256": hashlib.sha256((directory / "manifest.json").read_bytes()).hexdigest(),
        "trials_mode": "exact",
        "snr": settings.default_snr,
        "p_terrestrial": settings.p_terrestrial,
    }
    counts = {}
    for search in SEARCH_NAMES:
        campaign = Campaign(maps, search, 0.0, args.seed, settings, "exact")
        with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(args.jobs) as pool:
            urls = list(pool.map(run_job, [campaign] * args.jobs, range(args.jobs),
                                 [per_job] * args.jobs, [tmp] * args.jobs))
            counts.update(write_populations([collate(urls)], out, provenance))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=Path, default=DEFAULT_MAPS)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--trials-per-map", type=int, help="trials on each map (default 100)")
    size.add_argument("--trials-per-group", type=int,
                      help="trials per group, spread evenly over its maps (rounded up)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "llama" / "data"
                                             / "populations.hdf5"))
    args = parser.parse_args()
    if not (args.trials_per_map or args.trials_per_group):
        args.trials_per_map = 100
    with tempfile.TemporaryDirectory() as tmp:
        staged = str(Path(tmp) / "populations.hdf5")  # replaced in one step at the end
        for directory, manifest in groups(args.maps):
            start = time.perf_counter()
            counts = build(directory, manifest, args, staged)
            print(f"{directory.name}: {len(manifest['maps'])} maps, "
                  + ", ".join(f"{key} {n}" for key, n in counts.items())
                  + f" ({time.perf_counter() - start:.0f} s)", flush=True)
        atomic_write_bytes(args.out, Path(staged).read_bytes())
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
