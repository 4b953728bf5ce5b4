"""``llama event``: show an event (flags, latest notice, notices, products, latency, failures)
and set its flags.

    llama event S190425z [--json] [--set NAME=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from llama.cli.common import add_common_options, run_guarded, setup_logging
from llama.cli.flags import add_event_options, open_event, parse_settings

PROG = "llama event"


def parser() -> argparse.ArgumentParser:
    """Command-line parser (no heavy imports)."""
    p = argparse.ArgumentParser(prog=PROG, description="Show an event and set its flags.")
    add_event_options(p)
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="set a flag first (repeatable), e.g. --set upload=true")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_common_options(p)
    return p


def summary(event: Any) -> dict[str, Any]:
    """What there is to know about an event, as plain data."""
    info = event.skymap_info if event.skymap_info_path.exists() else {}
    products = sorted(p.name for p in event.directory.iterdir()
                      if p.is_file() and (event.directory / f".{p.name}.meta.json").exists())
    failures = {}
    for path in sorted(event.directory.glob(".*.failure.json")):
        failures[path.name[1:-len(".failure.json")]] = json.loads(path.read_bytes())
    return {
        "eventid": event.eventid,
        "directory": str(event.directory),
        "flags": event.flags,
        "latest_notice": {k: info.get(k) for k in ("alert_type", "notice_time_iso",
                                                   "event_time_iso", "far", "instruments",
                                                   "skymap_filename", "skymap_url")},
        "notices": [p.name for p in event.notices()],
        "products": products,
        "latency": event.latency,
        "failures": failures,
    }


def _run(args: argparse.Namespace) -> int:
    event = open_event(args)
    if args.set:
        event.set_flags(**parse_settings(args.set))
    about = summary(event)
    if args.json:
        print(json.dumps(about, indent=2, sort_keys=True))
        return 0
    print(f"{about['eventid']}  {about['directory']}")
    print("flags: " + " ".join(f"{k}={v}" for k, v in about["flags"].items()))
    print("latest notice: " + " ".join(f"{k}={v}" for k, v in about["latest_notice"].items()))
    for section in ("notices", "products"):
        print(f"{section}: " + (", ".join(about[section]) or "none"))
    for name, failure in about["failures"].items():
        print(f"failing: {name} x{failure['count']} next try {failure['next_try_utc']}: "
              f"{failure['error']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``llama event ...``; returns the exit code."""
    args = parser().parse_args(argv)
    setup_logging(args.verbose)
    return run_guarded(PROG, lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
