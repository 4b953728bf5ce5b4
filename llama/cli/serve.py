"""``llama serve``: the status page (Flask) of the output directory, read-only.

Binds 127.0.0.1:5000 by default. Any other address needs ``--credentials FILE`` (netrc format:
``machine <host> login <user> password <secret>``, mode 600), and every request must then
authenticate (HTTP Basic); without the file it refuses to start.
"""

from __future__ import annotations

import argparse
import sys

from llama.cli.common import add_common_options, run_guarded, setup_logging

PROG = "llama serve"


def parser() -> argparse.ArgumentParser:
    """Command-line parser (no heavy imports)."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Serve the status page of the output directory ($LLAMA_OUTPUT_DIR): events "
        "of every run with their product states, plots, numbers and notices, daemon and listener "
        "health, recent log lines, and a JSON API behind every page. Read-only.",
    )
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; others need --credentials)")
    p.add_argument("--port", type=int, default=5000, help="TCP port (default 5000; 0: any free)")
    p.add_argument("--run", metavar="DIR",
                   help="run directory shown as 'current' (default: <output dir>/current_run)")
    p.add_argument("--credentials", metavar="FILE",
                   help="netrc-format file of logins; every request must then authenticate")
    p.add_argument("--max-age", type=float, default=None, metavar="S",
                   help="heartbeat age (s) after which a daemon or listener counts as dead "
                   "(default 600)")
    add_common_options(p)
    return p


def _run(args: argparse.Namespace) -> int:
    import threading
    from pathlib import Path

    from llama import health, paths
    from llama.errors import InputError

    try:
        from llama.serve import Site, check_exposure, create_app, load_credentials, make_http_server
    except ImportError as err:
        raise InputError(f"the status page needs Flask: pip install 'llama[serve]' ({err})") from None
    max_age = health.heartbeat_limit(args.max_age)
    credentials = load_credentials(args.credentials) if args.credentials else None
    check_exposure(args.host, credentials)
    run_dir = Path(args.run).expanduser().absolute() if args.run else None
    if run_dir is not None and not run_dir.is_dir():
        raise InputError(f"run directory {run_dir} does not exist")
    site = Site(paths.output_dir(), run_dir, max_age)
    threading.Thread(target=site.warm, name="warm-index", daemon=True).start()
    server = make_http_server(create_app(site, credentials), args.host, args.port)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"{PROG}: http://{host}:{server.server_port}/ (output directory {site.output_dir})",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted; 1 with one error line when it cannot start."""
    args = parser().parse_args(argv)
    setup_logging(args.verbose)
    return run_guarded(PROG, lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
