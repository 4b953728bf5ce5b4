"""``llama populations``: background trials on sky maps -> a population in populations.hdf5.

Runs on this machine (one process); campaigns fan out with ``llama background``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llama.cli.common import (
    add_common_options,
    add_model_options,
    run_guarded,
    settings_from_args,
    setup_logging,
)

PROG = "llama populations"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Run background trials (scrambled neutrino lists from the background model over "
        "the given sky maps) and store their odds as one population of populations.hdf5 "
        "(SCIENCE.md section 6). With --inject, signal-injection odds go to their own key "
        "under injections/, never to the background population a p-value reads.",
    )
    p.add_argument(
        "--skymap",
        action="append",
        required=True,
        help="GW sky map (repeatable: trials are shared evenly between maps)",
    )
    p.add_argument(
        "--snr",
        type=float,
        help="network SNR of the simulated trigger (default: the default_snr setting, 12)",
    )
    p.add_argument("--p-terrestrial", type=float, default=1.0)
    p.add_argument("--group", choices=["CBC", "Burst"], default="CBC")
    p.add_argument("--instruments", help="comma-separated (default: first sky map's header)")
    p.add_argument("--trials", type=int, default=1000, help="total number of trials (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (trials are reproducible)")
    p.add_argument(
        "--inject",
        type=float,
        default=0.0,
        metavar="MU",
        help="mean number of signal neutrinos per trial (default 0: background)",
    )
    p.add_argument("-o", "--output", required=True, help="populations HDF5 file (created/updated)")
    add_model_options(p)
    add_common_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.verbose)
    return run_guarded(PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    from llama.background.trials import run_trials
    from llama.errors import InputError
    from llama.io.populations import write_population
    from llama.io.skymap import read_skymap
    from llama.science.pvalue import injection_key, population_key
    from llama.significance import build_model, load_background_sample, make_trigger

    if args.trials < 1:
        raise InputError("--trials must be at least 1")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    settings = settings_from_args(args)
    snr = args.snr if args.snr is not None else settings.default_snr
    sample = load_background_sample(settings)
    model = build_model(settings, sample)
    skymaps = [read_skymap(path) for path in args.skymap]
    instruments = [i for i in (args.instruments or "").split(",") if i.strip()]
    instruments = instruments or skymaps[0].meta.get("instruments") or ["unknown"]
    shares = np.diff(np.linspace(0, args.trials, len(skymaps) + 1).round().astype(int))
    odds, counts = [], []
    for index, (skymap, n_trials) in enumerate(zip(skymaps, shares, strict=True)):
        trigger = make_trigger(
            skymap,
            skymap.meta.get("mjd_obs") or 60000.0,
            snr,
            instruments,
            args.p_terrestrial,
            args.group,
        )
        result = run_trials(
            skymap,
            trigger,
            model,
            sample,
            int(n_trials),
            args.seed + index,
            args.search,
            args.inject,
        )
        odds.append(result.odds)
        counts.append(result.n_neutrinos)
    odds = np.concatenate(odds)
    sensitivity = settings.sensitivity or settings.preset
    key = population_key(args.search, settings.population, sensitivity, instruments)
    if args.inject:
        key = injection_key(key, args.inject)
    write_population(
        args.output,
        key,
        odds,
        {
            "seed": args.seed,
            "snr": snr,
            "snr_origin": "command line" if args.snr is not None else "[llama] default_snr",
            "kind": "injections" if args.inject else "background",
            "signal_mean": args.inject,
            "skymaps": ",".join(sm.meta.get("path", "") for sm in skymaps),
            "mean_neutrinos_per_trial": float(np.concatenate(counts).mean()),
        },
    )
    print(
        f"{key}: {odds.size} trials, median odds {np.median(odds):.3g}, "
        f"99th percentile {np.percentile(odds, 99):.3g} -> {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
