"""``llama neutrino-background``: build the neutrino background sample (SCIENCE.md section 3)
from IceCube 10-year point-source release tables and write it as HDF5."""

from __future__ import annotations

import argparse
import sys

from llama.cli.common import add_common_options, run_guarded, setup_logging

PROG = "llama neutrino-background"


def parser() -> argparse.ArgumentParser:
    """Command-line options of ``llama neutrino-background``."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Build the neutrino background sample (zenith, energy, angular error) from "
        "IceCube 10-year point-source release event tables; livetime and rate come from the "
        "release's uptime tables when present.",
    )
    p.add_argument(
        "--release",
        nargs="+",
        required=True,
        metavar="DIR_OR_FILE",
        help="release directory (reads events/*.csv) or event tables such as events/IC40_exp.csv",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT.h5", help="HDF5 file to write")
    add_common_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """Build the sample, write it, print one summary line; 0 on success."""
    args = parser().parse_args(argv)
    setup_logging(args.verbose)
    return run_guarded(PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from llama.io.background_sample import build_background_sample

    sample = build_background_sample(args.release)
    sample.write(args.output)
    meta = sample.meta
    if meta["livetime_s"] is None:
        timing = "livetime unknown (no uptime tables)"
    else:
        timing = f"livetime {meta['livetime_s'] / 86400:.3f} d, rate {meta['rate_hz']:.4e} Hz"
    print(f"{args.output}: {len(sample)} events, seasons {','.join(meta['seasons'])}, {timing}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
