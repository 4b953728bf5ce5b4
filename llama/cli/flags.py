"""``llama flags``: view or set the flags of an event (role, online, vetoed, retracted,
upload, manual).

    llama flags S190425z                        # print them
    llama flags S190425z role=observation upload=true
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from llama.cli.common import add_common_options, run_guarded, setup_logging

PROG = "llama flags"
_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def add_event_options(p: argparse.ArgumentParser) -> None:
    """EVENTID and --run, shared by ``llama flags`` and ``llama event``."""
    p.add_argument("eventid", metavar="EVENTID", help="event id, e.g. S190425z")
    p.add_argument("--run", metavar="DIR", help="run directory (default: <output dir>/current_run)")


def parse_settings(items: list[str]) -> dict[str, Any]:
    """NAME=VALUE strings -> flag changes (true/false for the booleans)."""
    from llama.errors import InputError

    changes: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"{item!r}: expected NAME=VALUE, e.g. upload=true")
        changes[name.strip()] = _BOOLEANS.get(value.strip().lower(), value.strip())
    return changes


def open_event(args: argparse.Namespace) -> Any:
    """The existing Event named by ``args`` (InputError if it does not exist)."""
    from llama import paths
    from llama.errors import InputError
    from llama.event import Event

    event = Event(args.eventid, args.run or paths.current_run_dir())
    if not event.exists:
        raise InputError(f"event {event.eventid} does not exist in {event.run_dir}")
    return event


def parser() -> argparse.ArgumentParser:
    """Command-line parser (no heavy imports)."""
    p = argparse.ArgumentParser(prog=PROG, description="View or set the flags of an event.")
    add_event_options(p)
    p.add_argument("settings", nargs="*", metavar="NAME=VALUE",
                   help="flags to set, e.g. role=observation upload=true vetoed=false")
    add_common_options(p)
    return p


def _run(args: argparse.Namespace) -> int:
    event = open_event(args)
    flags = event.set_flags(**parse_settings(args.settings)) if args.settings else event.flags
    for name, value in flags.items():
        print(f"{name}={str(value).lower() if isinstance(value, bool) else value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``llama flags ...``; returns the exit code."""
    args = parser().parse_intermixed_args(argv)
    setup_logging(args.verbose)
    return run_guarded(PROG, lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
