"""The ``llama`` entry point: dispatches ``llama <command> ...`` to llama.cli.<module>.

Every command module exposes ``parser()`` and ``main(argv=None)``; heavy imports
live inside ``main`` so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

from llama import __version__
from llama.cli.common import run_guarded

#: command name -> (module under llama.cli, one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "significance": ("significance", "joint GW + neutrino odds ratio and p-value from files"),
    "demo": ("demo", "run the whole significance on simulated inputs (no network, no data)"),
    "neutrino-background": (
        "neutrino_background",
        "build the neutrino background sample from IceCube public-release tables",
    ),
    "populations": ("populations", "background trials and signal injections -> populations.hdf5"),
    "background": ("background", "background and injection campaigns: run, collate, p-values, DAGs"),
    "skymap-info": ("skymap_info", "create or update an event directory from an LVK alert"),
    "data": ("data", "fetch pinned public data sets (sha256-verified) and list the cache"),
    "serve": ("serve", "the status page (web): events, product states, plots, health"),
    "status": ("status", "service health and product states; --check: Nagios plugin (0/1/2)"),
    "listen": ("listen", "hear GCN notices (VOEvent TCP, Kafka, igwn-alert, a directory)"),
    "run": ("run", "the daemon: keep every event of a run current, notify once"),
    "flags": ("flags", "view or set the flags of an event"),
    "event": ("event", "show an event: flags, notices, products, latency, failures"),
    "provenance": ("provenance", "how a product was made, the product graph, --verify by recomputing"),
}


def command_module(name: str) -> ModuleType:
    """Import and return the module implementing command ``name``."""
    return importlib.import_module(f"llama.cli.{COMMANDS[name][0]}")


def parser() -> argparse.ArgumentParser:
    """Top-level parser: lists the commands, ``--version``."""
    p = argparse.ArgumentParser(
        prog="llama",
        description="LLAMA: joint gravitational-wave + high-energy-neutrino significance.",
        epilog="Run 'llama <command> --help' for the options of one command.",
    )
    p.add_argument("--version", action="version", version=f"llama {__version__}")
    sub = p.add_subparsers(dest="command", metavar="<command>")
    for name, (_, summary) in COMMANDS.items():
        sub.add_parser(name, help=summary, add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        args = parser().parse_args(argv)  # handles --help, --version, unknown commands
        if args.command is None:
            parser().print_help()
            return 2
    name, rest = argv[0], argv[1:]
    return run_guarded(f"llama {name}", lambda: command_module(name).main(rest))


if __name__ == "__main__":
    sys.exit(main())
