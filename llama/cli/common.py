"""Shared CLI plumbing: one-line errors, verbosity and --version, the model options."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from llama.errors import LlamaError

if TYPE_CHECKING:
    from llama.config import Settings

log = logging.getLogger("llama")


def add_common_options(p: argparse.ArgumentParser) -> None:
    """Add ``-v/--verbose`` (repeatable) and ``--version`` to a command parser."""
    from llama import __version__

    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    p.add_argument("--version", action="version", version=f"llama {__version__}")


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
    """Options shared by every command that evaluates odds: search, model settings, population.

    Each model option overrides the [llama] setting of the same name (llama.config); without
    it the setting applies, so a command and the Luigi tasks give the same science.
    """
    from llama.science.searches import SEARCH_NAMES

    p.add_argument("--search", choices=SEARCH_NAMES, default=SEARCH_NAMES[0],
                   help=f"which search (default {SEARCH_NAMES[0]})")
    p.add_argument("--preset", choices=["o3", "o4"],
                   help="search parameters (default: the preset setting, o3)")
    p.add_argument("--energy-weight", choices=["o3-table", "public-aeff"],
                   help="energy/angle weight A: the LLAMA O3 table or public IceCube effective "
                   "areas (default: the energy_weight setting, o3-table)")
    p.add_argument("--neutrino-background", metavar="SAMPLE_H5",
                   help="neutrino background sample (default: the neutrino_background setting, "
                   "else the packaged IceCube IC40 sample)")
    p.add_argument("--gw-background-snr", metavar="FILE",
                   help="background-trigger SNRs, one per line (default: the gw_background_snr "
                   "setting, else the analytic noise tail)")
    p.add_argument("--background", metavar="POPULATIONS_HDF5",
                   help="background populations for the p-value (default: the populations "
                   "setting, else the packaged populations; 'none': p_value null)")
    p.add_argument("--population", help="background population name (default: the population "
                   "setting, bns)")
    p.add_argument("--sensitivity", help="background sensitivity name (default: the preset)")
    p.add_argument("--assumed-energy", type=float, metavar="GEV",
                   help="energy for neutrinos that carry none (LVK Nu Track Search notices; "
                   "default: the assumed_energy setting)")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The current settings (llama.config.settings) overridden by the model options given."""
    from llama.config import settings

    return settings().replace(
        preset=args.preset,
        energy_weight=args.energy_weight,
        neutrino_background=args.neutrino_background,
        gw_background_snr=args.gw_background_snr,
        populations=args.background,
        population=args.population,
        sensitivity=args.sensitivity,
        assumed_energy=args.assumed_energy,
    )
