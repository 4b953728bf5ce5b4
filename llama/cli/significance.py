"""``llama significance``: joint GW + neutrino odds ratio and p-value from files."""

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

PROG = "llama significance"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Compute the joint GW + high-energy-neutrino significance (SCIENCE.md sections "
        "4-6) of one GW trigger and the neutrinos within +-500 s, and write the JSON of section 8.",
    )
    p.add_argument("--skymap", required=True, help="GW sky map FITS (flat or multi-order, .gz ok)")
    p.add_argument(
        "--neutrinos",
        required=True,
        help="neutrino list: LLAMA JSON, IceCube PS release table/dir, IceCat-1 CSV, "
        "LVK Nu Track Search notice or IceCube gold/bronze track alert (JSON)",
    )
    p.add_argument(
        "--neutrino-format",
        choices=["llama", "release", "icecat1", "lvk-notice", "icecube-alert"],
        help="format of --neutrinos (default: detect)",
    )
    p.add_argument(
        "--event-time", required=True, help="GW trigger time: GPS seconds or ISO-8601 UTC"
    )
    p.add_argument(
        "--snr",
        type=float,
        help="GW network SNR rho (default: the default_snr setting; public alerts carry none)",
    )
    p.add_argument("--instruments", help="comma-separated, e.g. H1,L1,V1 (default: sky-map header)")
    p.add_argument(
        "--p-terrestrial",
        type=float,
        help="probability the trigger is terrestrial (default: the p_terrestrial setting, 1)",
    )
    p.add_argument(
        "--group",
        choices=["CBC", "Burst"],
        default="CBC",
        help="CBC uses the sky-map distance; Burst integrates distance out",
    )
    p.add_argument("--distance", type=float, help="override the source distance, Mpc")
    p.add_argument("--far", type=float, help="GW false-alarm rate, Hz (recorded only)")
    p.add_argument(
        "--graceid",
        help="GraceDB id (recorded; default: the ref_ID of an LVK Nu Track Search notice)",
    )
    p.add_argument(
        "--allow-time-mismatch",
        action="store_true",
        help="accept an --event-time more than 1 s from the sky map's DATE-OBS or the "
        "notice's trigger time, and a notice for another event (refused by default)",
    )
    p.add_argument(
        "--trials",
        type=int,
        metavar="N",
        help="also an event-specific p-value from N background trials on this event's own sky "
        "map (default: the event_trials setting, 0: none)",
    )
    p.add_argument("--trials-mode", choices=["fast", "exact"],
                   help="trials engine for --trials (default: the event_trials_mode setting, fast)")
    p.add_argument("--trials-seed", type=int, default=0, help="seed of the --trials draws (default 0)")
    p.add_argument("-o", "--output", help="write the JSON here (default: stdout summary only)")
    add_model_options(p)
    add_common_options(p)
    return p


def _attach_negative_times(argv: list[str]) -> list[str]:
    """``--event-time -1e3`` -> ``--event-time=-1e3``: argparse takes a value starting with '-'
    (other than a plain -123 or -1.5) for an option, so a negative time would be a usage error."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--event-time" and arg.startswith("-"):
            out[-1] = f"--event-time={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(_attach_negative_times(list(argv)))
    setup_logging(args.verbose)
    return run_guarded(PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from llama.io.neutrinos import read_neutrinos
    from llama.io.skymap import read_skymap
    from llama.io.storage import atomic_write_text
    from llama.significance import (
        TriggerFacts,
        build_model,
        compute,
        load_background_sample,
        summary,
        to_json,
    )

    if args.output:  # fail before the work, naming the user's path, if it cannot be written
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    settings = settings_from_args(args)
    skymap = read_skymap(args.skymap)
    neutrinos = read_neutrinos(args.neutrinos, args.neutrino_format)
    facts = TriggerFacts(
        event_time=args.event_time,
        snr=args.snr,
        instruments=[i for i in (args.instruments or "").split(",") if i.strip()],
        p_terrestrial=args.p_terrestrial,
        group=args.group,
        far=args.far,
        graceid=args.graceid,
        distance=args.distance,
        source="command line",
    )
    sample = load_background_sample(settings)
    model = build_model(settings, sample)  # one model for the significance and its trials
    output = compute(args.search, skymap, neutrinos, facts, settings, model,
                     check_times=not args.allow_time_mismatch)
    n_trials = settings.event_trials if args.trials is None else args.trials
    if n_trials:
        from llama.background.event_trials import add_event_pvalue

        add_event_pvalue(output, args.search, skymap, neutrinos, facts, settings, n_trials,
                         args.trials_mode or settings.event_trials_mode, args.trials_seed,
                         sample=sample, model=model)
    for line in summary(output):
        print(line)
    if args.output:
        atomic_write_text(Path(args.output), to_json(output))
        print(f"  wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
