"""``llama status``: is the online service working, and what state is every product in.

    llama status            daemons, listeners and every event of the run with its products
                            (and whether it has a partial result: neutrino list incomplete)
    llama status --check    Nagios plugin: one line per problem; exit 0 OK, 1 WARNING, 2 CRITICAL
    --json                  the same as JSON

The checks are llama.health.check, the ones the status page shows.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from llama.cli.common import add_common_options, run_guarded, setup_logging

PROG = "llama status"


def parser() -> argparse.ArgumentParser:
    """Command-line parser (no heavy imports)."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Health of the online service (daemon and listener heartbeats, failed "
        "products) and the state of every product of the run, from the files of the output "
        "directory ($LLAMA_OUTPUT_DIR). With --check: a Nagios plugin, one line per problem, "
        "exit 0 OK, 1 WARNING, 2 CRITICAL.",
    )
    p.add_argument("--check", action="store_true", help="Nagios plugin mode (exit 0/1/2)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--run", metavar="DIR", help="run directory (default: <output dir>/current_run)")
    p.add_argument("--max-age", type=float, default=None, metavar="S",
                   help="heartbeat age (s) after which a daemon or listener counts as dead "
                   "(default 600)")
    add_common_options(p)
    return p


def _run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from llama import health, paths
    from llama.errors import InputError
    from llama.ids import validate_event_id

    max_age = health.heartbeat_limit(args.max_age)
    output_dir = paths.output_dir()
    run_dir = Path(args.run).expanduser().absolute() if args.run else output_dir / "current_run"
    if args.run and not run_dir.is_dir():
        raise InputError(f"run directory {run_dir} does not exist")
    problems = health.check(output_dir, [run_dir], max_age)
    code = health.severity(problems)
    if args.check:
        lines = [p.line() for p in problems]
        if args.json:
            print(json.dumps({"status": health.SEVERITY_NAMES[code], "code": code,
                              "problems": lines}, indent=2))
        else:
            print("\n".join(lines or [f"OK: llama service healthy ({output_dir})"]))
        return code

    events = []
    for directory in sorted(run_dir.iterdir() if run_dir.is_dir() else []):
        try:
            validate_event_id(directory.name)
        except InputError:
            continue
        if directory.is_dir():
            states = health.product_states(directory)
            events.append({"eventid": directory.name,
                           "partial_result": health.partial_result(states),
                           "products": {s.name: [s.state, s.reason] for s in states}})
    report: dict[str, Any] = {
        "output_dir": str(output_dir),
        "run_dir": str(run_dir),
        "status": health.SEVERITY_NAMES[code],
        "problems": [p.line() for p in problems],
        "heartbeats": [{"kind": b.kind, "name": b.name, "alive": b.alive, "problem": b.problem,
                        "age_s": b.age_s, "pid": b.record.get("pid")}
                       for b in health.heartbeats(output_dir, max_age)],
        "events": events,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"output directory {output_dir}: {report['status']}")
    for line in report["problems"]:
        print(f"  {line}")
    for beat in report["heartbeats"]:
        alive = "alive" if beat["alive"] else f"NOT ALIVE ({beat['problem']})"
        print(f"{beat['kind']} {beat['name']}: {alive}, pid {beat['pid']}")
    print(f"run {run_dir}: {len(events)} events")
    for event in events:
        partial = "  PARTIAL RESULT (neutrino list incomplete)" if event["partial_result"] else ""
        print(f"  {event['eventid']}{partial}")
        for name, (state, reason) in event["products"].items():
            print(f"    {name:45s} {state:9s} {reason}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Print the status; with --check return the Nagios code."""
    args = parser().parse_args(argv)
    setup_logging(args.verbose)
    return run_guarded(PROG, lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
