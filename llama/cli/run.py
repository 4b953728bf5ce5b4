"""``llama run``: the daemon that keeps every event of a run directory current.

    llama run [RUN/GLOB] [-p PIPELINE] [-f TASK ...] [+f TASK ...] [--downselect NAME ...]
              [-n N] [-o] [-F] [-r] [-l LOGFILE] [-k | -K | -R]

RUN/GLOB is a run directory and a glob of event directories in it (default
``<output dir>/current_run/*``). Without -F the daemon detaches (double fork, setsid) and
logs to ``<output dir>/logs/llamad-<key>.log``; one daemon per (run dir, glob) (lock).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llama.cli.common import add_common_options, run_guarded, setup_logging

PROG = "llama run"


def parser() -> argparse.ArgumentParser:
    """Command-line parser (no heavy imports)."""
    p = argparse.ArgumentParser(
        prog=PROG, prefix_chars="-+",
        description="Keep the events of a run directory current: build their products with "
        "Luigi as notices and data arrive, notify once, skip retracted and vetoed events.")
    p.add_argument("rundir_glob", nargs="?", metavar="RUN/GLOB",
                   help="run directory, optionally followed by a glob of event directories "
                   "(default: <output dir>/current_run/*)")
    p.add_argument("-p", "--pipeline", default="DEFAULT",
                   help="named pipeline (DEFAULT, SUBTHRESHOLD, REVIEW; default DEFAULT)")
    p.add_argument("-f", dest="only", action="append", default=[], metavar="TASK",
                   help="build only this task (repeatable)")
    p.add_argument("+f", dest="add", action="append", default=[], metavar="TASK",
                   help="also build this task (repeatable)")
    p.add_argument("--print-default-pipeline", action="store_true",
                   help="print the tasks of the DEFAULT pipeline and exit")
    p.add_argument("--dry-run-pipeline", action="store_true",
                   help="print the tasks that would be built and exit")
    p.add_argument("--dry-run-dirs", action="store_true",
                   help="print the event directories that would be built and exit")
    p.add_argument("--downselect", action="append", default=[], metavar="NAME",
                   help="keep only events passing NAME (repeatable; --print-downselections)")
    p.add_argument("--print-downselections", action="store_true",
                   help="print the downselections and exit")
    p.add_argument("-n", "--newest", type=int, default=40, metavar="N",
                   help="build only the N newest events (default 40)")
    p.add_argument("-o", "--once", action="store_true", help="one cycle, in the foreground")
    p.add_argument("-F", "--foreground", action="store_true", help="do not daemonise")
    p.add_argument("-R", "--running", action="store_true", help="list running daemons and exit")
    p.add_argument("-k", "--kill", action="store_true",
                   help="stop the daemons running on this RUN/GLOB and exit")
    p.add_argument("-K", "--replace", action="store_true",
                   help="stop the daemons running on this RUN/GLOB, then start")
    p.add_argument("-r", "--relaunch", action="store_true", help="relaunch after a crash")
    p.add_argument("-l", "--logfile", metavar="FILE",
                   help="log file (default: <output dir>/logs/llamad-<key>.log)")
    p.add_argument("-j", "--workers", type=int, default=1, help="Luigi workers (default 1)")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between cycles")
    p.add_argument("--cooldown", type=float, default=60.0,
                   help="seconds before a failed product is retried (doubling, at most 1 h)")
    add_common_options(p)
    return p


def _split(value: str | None) -> tuple[Path, str]:
    """RUN/GLOB -> (run dir, glob); a directory named like an event id is one event."""
    from llama import paths
    from llama.errors import InputError
    from llama.ids import validate_event_id

    if not value:
        return paths.current_run_dir(), "*"
    path = Path(value).expanduser()
    try:
        validate_event_id(path.name)
    except InputError:
        if path.is_dir():
            return path, "*"
    return path.parent, path.name


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    import logging
    import os

    from llama import run
    from llama.errors import InputError

    if args.print_downselections:
        for name, (what, _) in run.DOWNSELECTIONS.items():
            print(f"{name:12s} {what}")
        return 0
    if args.print_default_pipeline:
        print("\n".join(cls.__name__ for cls in run.pipeline_tasks("DEFAULT")))
        return 0
    if args.running:
        for daemon in run.running_daemons():
            if daemon.alive:
                beat = daemon.heartbeat
                print(f"pid {beat.get('pid')} on {beat.get('host')}: {beat.get('run_dir')}/"
                      f"{beat.get('glob')} since {beat.get('started_utc')}, heartbeat "
                      f"{beat.get('heartbeat_utc')}")
        return 0
    if args.newest <= 0 or args.workers <= 0:
        raise InputError("-n and --workers must be positive")
    run_dir, glob = _split(args.rundir_glob)
    if not run_dir.is_dir():
        raise InputError(f"run directory {run_dir} does not exist")
    if args.kill or args.replace:
        for pid in run.kill_daemons(run.daemon_key(run_dir, glob)):
            print(f"stopped llama run pid {pid}", file=sys.stderr)
        if args.kill:
            return 0
    daemon = run.Daemon(run_dir, glob, run.pipeline_tasks(args.pipeline, args.only, args.add),
                        args.newest, args.downselect, args.workers, args.cooldown, argv)
    if args.dry_run_pipeline:
        print("\n".join(cls.__name__ for cls in daemon.tasks))
        return 0
    if args.dry_run_dirs:
        print("\n".join(run.describe(daemon.events())))
        return 0
    daemon.acquire()
    background = not (args.foreground or args.once)
    logfile = Path(args.logfile) if args.logfile else daemon.log_path
    if background:
        if not run.daemonize(logfile):
            print(f"llama run: daemon started for {run_dir}/{glob}; log {logfile}",
                  file=sys.stderr)
            return 0
        daemon.pid = os.getpid()
        logging.basicConfig(level=logging.INFO, force=True, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    elif args.logfile:
        logging.getLogger().addHandler(logging.FileHandler(logfile))
    run.supervise(lambda: daemon.loop(args.once, args.interval), args.relaunch)
    daemon.release()
    if background:
        os._exit(0)  # the daemon never returns into its caller
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``llama run ...``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    setup_logging(args.verbose)
    return run_guarded(PROG, lambda: _run(args, argv))


if __name__ == "__main__":
    sys.exit(main())
