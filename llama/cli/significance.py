"""``llama significance``: joint GW + neutrino odds ratio and p-value from files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llama.cli.common import add_model_options, add_verbosity, build_model, setup_logging


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="llama significance",
        description="Compute the joint GW + high-energy-neutrino significance (SCIENCE.md sections "
        "4-6) of one GW trigger and the neutrinos within +-500 s, and write the JSON of section 8.",
    )
    p.add_argument("--skymap", required=True, help="GW sky map FITS (flat or multi-order, .gz ok)")
    p.add_argument(
        "--neutrinos",
        required=True,
        help="neutrino list: LLAMA JSON, IceCube PS release table/dir, IceCat-1 CSV or "
        "LVK Nu Track Search notice",
    )
    p.add_argument(
        "--neutrino-format",
        choices=["llama", "release", "icecat1", "lvk-notice"],
        help="format of --neutrinos (default: detect)",
    )
    p.add_argument(
        "--event-time", required=True, help="GW trigger time: GPS seconds or ISO-8601 UTC"
    )
    p.add_argument("--snr", type=float, required=True, help="GW network SNR rho")
    p.add_argument("--instruments", help="comma-separated, e.g. H1,L1,V1 (default: sky-map header)")
    p.add_argument(
        "--p-terrestrial",
        type=float,
        default=1.0,
        help="probability the trigger is terrestrial (default 1: conservative)",
    )
    p.add_argument(
        "--group",
        choices=["CBC", "Burst"],
        default="CBC",
        help="CBC uses the sky-map distance; Burst integrates distance out",
    )
    p.add_argument("--distance", type=float, help="override the source distance, Mpc")
    p.add_argument("--far", type=float, help="GW false-alarm rate, Hz (recorded only)")
    p.add_argument("--graceid", help="GraceDB id (recorded only)")
    p.add_argument(
        "--background",
        metavar="POPULATIONS_HDF5",
        help="background populations for the p-value (without: p_value null)",
    )
    p.add_argument(
        "--gw-background-snr",
        metavar="FILE",
        help="background-trigger SNRs, one per line (default: analytic noise tail)",
    )
    p.add_argument(
        "--assumed-energy",
        type=float,
        metavar="GEV",
        help="energy for neutrinos that carry none (LVK Nu Track Search notices)",
    )
    p.add_argument("-o", "--output", help="write the JSON here (default: stdout summary only)")
    add_model_options(p)
    add_verbosity(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.verbose)


    from llama.io.atomic import atomic_write_text
    from llama.io.neutrinos import read_neutrinos
    from llama.io.skymap import read_skymap
    from llama.science.background import GwSnrBackground
    from llama.significance import (
        Inputs,
        fill_missing_energies,
        in_window,
        make_trigger,
        parse_event_time,
        run_search,
        summary,
        to_json,
    )

    if args.output:  # fail before the work, naming the user's path, if it cannot be written
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    event_mjd = parse_event_time(args.event_time)
    skymap = read_skymap(args.skymap)
    neutrinos = read_neutrinos(args.neutrinos, args.neutrino_format)
    fill_missing_energies(neutrinos, args.assumed_energy)
    gw_background = None
    if args.gw_background_snr:
        from llama.config import preset

        gw_background = GwSnrBackground.from_file(
            args.gw_background_snr, preset(args.preset).rhomin
        )
    model, _ = build_model(args, gw_background)
    instruments = [i for i in (args.instruments or "").split(",") if i.strip()]
    trigger = make_trigger(
        skymap,
        event_mjd,
        args.snr,
        instruments,
        args.p_terrestrial,
        args.group,
        args.far,
        args.graceid,
        args.distance,
    )
    selected, outside = in_window(neutrinos, trigger, model.params)
    output = run_search(
        args.search,
        Inputs(skymap, selected, trigger, model, outside),
        args.background,
        args.population,
        args.sensitivity,
    )
    for line in summary(output):
        print(line)
    if args.output:
        atomic_write_text(Path(args.output), to_json(output))
        print(f"  wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
