"""``llama listen``: hear GCN notices and keep them, then create and update events.

    llama listen gcn [--transport vtp|kafka|igwn-alert] [--host H] [--port P] [--topic T]
    llama listen dir PATH

Every notice is archived first to ``<output dir>/gcn/YYYY-MM/DD/`` (atomically, named from
its IVORN or alert id; a duplicate is not written twice), then LVK alerts create or update
``<run>/<graceid>/`` (llama.ingest.receive); other notices are only archived. Bad notices are
rejected with one log line each; transport errors are retried with backoff. Runs until
killed, or until ``--max-notices`` / ``--timeout``.
"""

from __future__ import annotations

import argparse
import sys

from llama.cli.common import add_common_options, run_guarded, setup_logging

PROG = "llama listen"
TRANSPORTS = ("vtp", "kafka", "igwn-alert")


def parser() -> argparse.ArgumentParser:
    """Command-line parser (no heavy imports)."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    sub = p.add_subparsers(dest="source", required=True, metavar="gcn|dir")
    gcn = sub.add_parser("gcn", help="listen to GCN (VOEvent TCP, GCN Kafka or igwn-alert)")
    gcn.add_argument("--transport", choices=TRANSPORTS, default="vtp",
                     help="vtp: VOEvent Transport Protocol (pygcn; default), kafka: GCN Kafka "
                     "(gcn-kafka), igwn-alert: LVK igwn-alert")
    gcn.add_argument("--host", action="append", metavar="HOST",
                     help="vtp broker host (repeat for fall-backs; default GCN's); kafka: the "
                     "bootstrap server (default kafka.gcn.nasa.gov); igwn-alert: the server")
    gcn.add_argument("--port", type=int, help="vtp port (default 8099)")
    gcn.add_argument("--topic", action="append", metavar="TOPIC",
                     help="kafka/igwn-alert topic (repeatable; default igwn.gwalert and "
                     "gcn.notices.icecube.lvk_nu_track_search; igwn-alert: superevent)")
    gcn.add_argument("--client-id", help="GCN Kafka client id (default $GCN_KAFKA_CLIENT_ID)")
    gcn.add_argument("--client-secret-env", default="GCN_KAFKA_CLIENT_SECRET", metavar="VAR",
                     help="environment variable holding the GCN Kafka client secret")
    gcn.add_argument("--domain", help="GCN Kafka domain (default gcn.nasa.gov)")
    folder = sub.add_parser("dir", help="watch a directory for dropped notice files")
    folder.add_argument("path", metavar="PATH", help="directory to watch")
    folder.add_argument("--interval", type=float, default=0.5, help="seconds between scans")
    for each in (gcn, folder):
        each.add_argument("--run", metavar="DIR",
                          help="run directory (default: <output dir>/current_run)")
        each.add_argument("--max-notices", type=int, metavar="N", help="stop after N notices")
        each.add_argument("--timeout", type=float, metavar="S", help="stop after S seconds")
        add_common_options(each)
    add_common_options(p)
    return p


def _run(args: argparse.Namespace) -> int:
    import os

    from llama.errors import InputError
    from llama.listen import Limits, Listener

    for name in ("max_notices", "timeout"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise InputError(f"--{name.replace('_', '-')} must be positive, not {value}")
    transport = "dir" if args.source == "dir" else args.transport
    listener = Listener(transport, args.run, Limits(args.max_notices, args.timeout))
    if args.source == "dir":
        from llama.listen.directory import watch_directory

        watch_directory(listener, args.path, args.interval)
    elif transport == "vtp":
        from llama.listen.vtp import DEFAULT_HOSTS, DEFAULT_PORT, listen_vtp

        listen_vtp(listener, tuple(args.host or DEFAULT_HOSTS), args.port or DEFAULT_PORT)
    elif transport == "kafka":
        from llama.listen.kafka import DEFAULT_TOPICS, consume, kafka_consumer

        config = {"bootstrap.servers": args.host[0]} if args.host else {}
        consumer = kafka_consumer(args.client_id or os.environ.get("GCN_KAFKA_CLIENT_ID"),
                                  os.environ.get(args.client_secret_env), args.domain, config)
        consume(listener, consumer, args.topic or DEFAULT_TOPICS)
    else:
        from llama.listen.igwn import DEFAULT_TOPICS, igwn_client, listen_igwn

        client = igwn_client(server=args.host[0]) if args.host else igwn_client()
        listen_igwn(listener, client, args.topic or DEFAULT_TOPICS)
    print(f"{listener.count} notice(s), {listener.rejected} rejected", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``llama listen ...``; returns the exit code."""
    args = parser().parse_args(argv)
    setup_logging(max(args.verbose, 1))
    return run_guarded(PROG, lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
