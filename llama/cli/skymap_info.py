"""``llama skymap-info``: create or update an event directory from an LVK alert.

The alert comes from a VOEvent file, a GCN Kafka igwn.gwalert file, or GraceDB
(the superevent's latest VOEvent and its sky map). A thin command over
:mod:`llama.ingest`: everything is read and checked before anything is written;
then the raw notice is archived, the sky map written (only if its bytes changed)
and skymap_info.json updated. A Retraction only marks an existing event
retracted; it never creates one. The role of a new event is asked on the
terminal when ``--role`` is not given.
"""

from __future__ import annotations

import argparse
import sys

from llama.cli.common import add_common_options, run_guarded, setup_logging
from llama.errors import InputError
from llama.io.gracedb import DEFAULT_GRACEDB_URL

PROG = "llama skymap-info"
ROLE_PROMPT = "Is this a real event or a test? [real/test] "
_ANSWERS = {"real": "observation", "observation": "observation", "test": "test"}


def parser() -> argparse.ArgumentParser:
    """Command-line parser (no heavy imports)."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Create or update the event directory <run>/<graceid>/ from an LVK alert: "
        "archive the raw notice, write skymap_info.json and the sky map. Prints the directory.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--voevent", metavar="FILE", help="LVK GCN VOEvent (XML)")
    source.add_argument(
        "--gwalert",
        metavar="FILE",
        help="GCN Kafka igwn.gwalert alert (JSON, or Avro via fastavro)",
    )
    source.add_argument(
        "--graceid",
        metavar="ID",
        help="fetch the superevent's latest VOEvent and sky map from GraceDB",
    )
    p.add_argument(
        "--skymap", metavar="FILE", help="sky map to use (copied into the event directory)"
    )
    p.add_argument(
        "--role",
        choices=("test", "observation"),
        help="real event (observation) or test; asked on the terminal for a new event if omitted",
    )
    p.add_argument("--run", metavar="DIR", help="run directory (default: <output dir>/current_run)")
    p.add_argument(
        "--gracedb-url",
        metavar="URL",
        help=f"GraceDB API root (default: $LLAMA_GRACEDB_URL or {DEFAULT_GRACEDB_URL})",
    )
    p.add_argument(
        "--gracedb-auth",
        action="store_true",
        help="use the X.509/SciToken credentials ligo-gracedb finds (default: anonymous)",
    )
    add_common_options(p)  # -v/--verbose, --version
    return p


def _ask_role() -> str:
    """Ask on the terminal whether the event is real; refuse when there is no terminal."""
    if not sys.stdin.isatty():
        raise InputError(
            "no terminal to ask whether this is a real event or a test: "
            "pass --role observation or --role test"
        )
    while True:
        print(ROLE_PROMPT, end="", file=sys.stderr, flush=True)
        answer = sys.stdin.readline()
        if not answer:
            raise InputError("no answer on the terminal: pass --role observation or --role test")
        if answer.strip().lower() in _ANSWERS:
            return _ANSWERS[answer.strip().lower()]


def _run(args: argparse.Namespace) -> int:
    """Ingest one alert; print the event directory."""
    from llama.ingest import ingest, read_notice

    if args.voevent:
        kind, source = "voevent", args.voevent
    elif args.gwalert:
        kind, source = "gwalert", args.gwalert
    else:
        kind, source = "gracedb", args.graceid
    notice = read_notice(kind, source, skymap=args.skymap, gracedb_url=args.gracedb_url,
                         gracedb_auth=args.gracedb_auth)
    event = ingest(notice, args.run, role=args.role, ask_role=_ask_role)
    print(event.directory)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``llama skymap-info ...``; returns the exit code."""
    args = parser().parse_args(argv)
    setup_logging(args.verbose)
    return run_guarded(PROG, lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
