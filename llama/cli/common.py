"""Shared CLI plumbing: one-line errors, verbosity, atomic output paths."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from llama.errors import LlamaError

log = logging.getLogger("llama")


def add_verbosity(p: argparse.ArgumentParser) -> None:
    """Add ``-v/--verbose`` (repeatable) to a command parser."""
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")


def setup_logging(verbose: int) -> None:
    """Log warnings by default, info with -v, debug with -vv, to stderr."""
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def run_guarded(prog: str, body: Callable[[], int | None]) -> int:
    """Run a command body; turn a LlamaError into one line on stderr and exit code 1."""
    try:
        return int(body() or 0)
    except LlamaError as err:
        message = "; ".join(line.strip() for line in str(err).splitlines() if line.strip())
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 1
    except OSError as err:  # file-system trouble outside the inputs' own checks
        where = f": {err.filename}" if err.filename else ""
        print(f"{prog}: error: {err.strerror or err}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def add_model_options(p: argparse.ArgumentParser) -> None:
    """Options shared by every command that evaluates odds: search, preset, models, population."""
    p.add_argument("--search", choices=["subthreshold", "opa"], default="subthreshold")
    p.add_argument("--preset", choices=["o3", "o4"], default="o3",
                   help="search parameters (default o3)")
    p.add_argument("--energy-weight", choices=["o3-table", "public-aeff"], default="o3-table",
                   help="energy/angle weight A: the LLAMA O3 table or public IceCube effective areas")
    p.add_argument("--neutrino-background", metavar="SAMPLE_H5",
                   help="neutrino background sample (default: packaged IceCube IC40 sample)")
    p.add_argument("--population", default="bns", help="background population name (default bns)")
    p.add_argument("--sensitivity", help="background sensitivity name (default: the preset)")


def build_model(args: argparse.Namespace, gw_background=None):
    """(SearchModel, BackgroundSample) from the options of ``add_model_options``."""
    from llama.io.background_sample import default_background_sample, read_background_sample
    from llama.science.odds import SearchModel

    sample = (read_background_sample(args.neutrino_background) if args.neutrino_background
              else default_background_sample())
    return SearchModel.create(args.preset, args.energy_weight, sample, gw_background), sample
