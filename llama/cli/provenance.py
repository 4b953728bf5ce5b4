"""``llama provenance``: how an event's products were made, their graph, and a re-check."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from llama.cli.common import add_common_options, run_guarded, setup_logging

PROG = "llama provenance"
#: Record keys shown first, in this order, for one product.
HEAD_KEYS = ("product", "sha256", "size_bytes", "task", "task_id", "llama_version", "python",
             "image", "host", "wall_time_s", "finished_utc")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Show how the products of an event were made (inputs with checksums, "
        "settings, parameters, llama version, image, host, time), draw the event's product "
        "graph, or recompute a product in a scratch directory and compare it with the stored one.",
    )
    p.add_argument("eventdir", help="event directory, <run dir>/<event id>")
    p.add_argument("product", nargs="?",
                   help="a product file name (e.g. summary_lvc-i3.pdf) or task name (Summary); "
                   "default: every product, one line each")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--graph", action="store_true",
                   help="the product graph: every product, what it is made from, its status")
    p.add_argument("--verify", action="store_true",
                   help="recompute PRODUCT (default: every product built) in a scratch directory and "
                   "compare; exit 1 naming the product and the changed input when it differs")
    add_common_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.verbose)
    return run_guarded(PROG, lambda: _run(args))


def _event(path: str) -> tuple[str, Path]:
    """(event id, run dir) of an event directory; InputError when it is not one."""
    from llama.errors import InputError
    from llama.event import SKYMAP_INFO_FILE

    directory = Path(path).expanduser().absolute()
    if not (directory / SKYMAP_INFO_FILE).is_file():
        raise InputError(f"{path}: not an event directory (no {SKYMAP_INFO_FILE})")
    return directory.name, directory.parent


def _node(task: Any) -> dict[str, Any]:
    from llama.tasks.audit import files_of, status

    fresh, why = status(task)
    return {"task": task.get_task_family(), "files": files_of(task), "up_to_date": fresh,
            "status": why}


def _graph_text(nodes: list[dict[str, Any]], edges: list[tuple[str, str]]) -> str:
    """One line per product, requirements first: task, files, status, '<-' what it is made from."""
    width = max(len(n["task"]) for n in nodes)
    lines = []
    for node in nodes:
        made_from = [a for a, b in edges if b == node["task"]]
        arrow = f"  <- {', '.join(made_from)}" if made_from else ""
        lines.append(f"{node['task']:<{width}}  {'ok ' if node['up_to_date'] else '!! '}"
                     f"{' + '.join(node['files'])}  [{node['status']}]{arrow}")
    return "\n".join(lines)


def _record_text(name: str, record: dict[str, Any] | None) -> str:
    if record is None:
        return f"{name}: no provenance record"
    lines = [f"{key:<14} {record.get(key)}" for key in HEAD_KEYS]
    lines.append("inputs:")
    for input_name, entry in sorted((record.get("inputs") or {}).items()):
        used = f"  used {json.dumps(entry['used'], sort_keys=True)}" if "used" in entry else ""
        lines.append(f"  {input_name}  sha256 {entry.get('sha256')}{used}")
    for title, key in (("settings:", "settings"), ("parameters:", "parameters")):
        lines.append(title)
        lines += [f"  {k} = {v}" for k, v in sorted((record.get(key) or {}).items())]
    others = sorted(set(record) - set(HEAD_KEYS) - {"inputs", "settings", "parameters"})
    if others:
        lines.append("notes:")
        lines += [f"  {k} = {json.dumps(record[k], sort_keys=True)}" for k in others]
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from llama import tasks  # noqa: F401  (registers every task; applies llama's luigi.cfg)
    from llama.tasks.audit import edges, event_tasks, find_task, records, verify

    eventid, rundir = _event(args.eventdir)
    everything = event_tasks(eventid, rundir)
    chosen = [find_task(eventid, rundir, args.product)] if args.product else everything
    if args.verify:
        from luigi.task import flatten

        from llama.tasks.base import Product

        if not args.product:  # every product built so far
            chosen = [task for task in chosen if isinstance(task, Product)
                      and all(target.exists() for target in flatten(task.output()))]
        verdicts = [verify(task) for task in chosen]
        if args.json:
            print(json.dumps([{"ok": v.ok, "message": v.message} for v in verdicts], indent=2))
        else:
            print("\n".join(f"{'ok' if v.ok else 'FAILED'}: {v.message}" for v in verdicts))
        failed = [v.message for v in verdicts if not v.ok]
        if failed:
            print(f"{PROG}: error: {failed[0]}", file=sys.stderr)
        return 1 if failed else 0
    if args.graph:
        nodes = [_node(task) for task in everything]
        links = edges(everything)
        if args.json:
            print(json.dumps({"event": eventid, "nodes": nodes, "edges": links}, indent=2))
        else:
            print(f"product graph of {eventid} (<- made from; ok: up to date, !!: not)")
            print(_graph_text(nodes, links))
        return 0
    if args.json:
        print(json.dumps({name: record for task in chosen
                          for name, record in records(task).items()}, indent=2, sort_keys=True))
    elif args.product:
        print("\n\n".join(_record_text(name, record)
                          for name, record in records(chosen[0]).items()))
    else:
        print(_graph_text([_node(task) for task in chosen], []))
    return 0


if __name__ == "__main__":
    sys.exit(main())
