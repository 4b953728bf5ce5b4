"""``llama data``: fetch the pinned public data sets of the packaged manifest, list the cache.

    llama data fetch NAME [NAME ...]   download + verify (sha256) into the cache dir; resumes
    llama data fetch --all
    llama data list [--verify]          every data set and what of it is cached
    llama data path NAME[/FILE]         print the cached path (fetching it first if needed)
"""

from __future__ import annotations

import argparse
import sys

from llama.cli.common import add_common_options, setup_logging


def parser() -> argparse.ArgumentParser:
    """Command-line options of ``llama data``."""
    p = argparse.ArgumentParser(
        prog="llama data",
        description="Public data sets pinned by the manifest shipped with llama (URL, size and "
        "sha256 per file), cached under the llama cache dir ($LLAMA_CACHE_DIR > "
        "$XDG_CACHE_HOME/llama > ~/.cache/llama)/datasets.",
    )
    p.add_argument("--cache-dir", metavar="DIR",
                   help="cache root to use instead of the llama cache dir")
    add_common_options(p)
    sub = p.add_subparsers(dest="action", metavar="<action>", required=True)

    f = sub.add_parser("fetch", help="download and verify data sets (resumes, skips cached files)",
                       description="Download every file of the named data sets, verify size and "
                       "sha256, and cache them; an interrupted download resumes (HTTP Range); a "
                       "file whose checksum differs is refused and nothing of it is kept.")
    f.add_argument("names", nargs="*", metavar="NAME", help="data set names (see 'llama data list')")
    f.add_argument("--all", action="store_true", help="fetch every data set of the manifest")
    f.add_argument("--force", action="store_true", help="download again even when cached")
    f.add_argument("--timeout", type=float, default=60.0, metavar="S",
                   help="network timeout per request, seconds (default 60)")
    f.add_argument("-q", "--quiet", action="store_true", help="print only the data set paths")

    ls = sub.add_parser("list", help="show the data sets and what is cached",
                        description="List the data sets of the manifest with their cached state.")
    ls.add_argument("--verify", action="store_true", help="re-hash the cached files (slower)")
    ls.add_argument("--files", action="store_true", help="one line per file")

    pth = sub.add_parser("path", help="print the cached path of NAME or NAME/FILE",
                         description="Print the path of a data set (or one of its files), "
                         "fetching it first when it is not cached yet.")
    pth.add_argument("name", metavar="NAME[/FILE]")
    pth.add_argument("--no-fetch", action="store_true", help="fail instead of fetching")
    return p


def _human(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # pragma: no cover


def main(argv: list[str] | None = None) -> int:
    """Run one ``llama data`` action; 0 on success, 1 with one error line otherwise."""
    args = parser().parse_args(argv)
    setup_logging(args.verbose)
    from llama import datasets
    from llama.errors import InputError

    if args.action == "fetch":
        names = sorted(datasets.manifest()) if args.all else args.names
        if not names:
            raise InputError("name at least one data set, or --all (see 'llama data list')")
        for name in names:
            datasets.get(name)  # unknown names fail before anything is downloaded

        def report(event, f, path):
            if not args.quiet:
                print(f"{event:8s} {name}/{f.path} ({_human(f.size)})")

        for name in names:
            base = datasets.fetch(name, args.cache_dir, force=args.force, report=report,
                                  timeout=args.timeout)
            print(base if args.quiet else f"{name}: verified, {base}")
        return 0

    if args.action == "path":
        print(datasets.resolve(args.name, fetch_missing=not args.no_fetch,
                               cache_root=args.cache_dir))
        return 0

    # list
    root = datasets.datasets_dir(args.cache_dir)
    print(f"cache: {root}")
    for name, ds in sorted(datasets.manifest().items()):
        states = datasets.status(ds, args.cache_dir, verify=args.verify)
        ok = sum(s.verified for s in states)
        bad = [s for s in states if s.present and not s.verified]
        partial = sum(1 for s in states if s.partial_bytes)
        if ok == len(states):
            state = "cached"
        elif ok or bad or partial:
            state = f"partial {ok}/{len(states)}"
        else:
            state = "not fetched"
        if bad and args.verify:
            state += f", {len(bad)} corrupt"
        print(f"{name:20s} {len(states):3d} files {_human(ds.size):>9s}  {state}")
        if args.files:
            for s in states:
                mark = "ok" if s.verified else ("partial" if s.partial_bytes else
                                                ("unverified" if s.present else "-"))
                print(f"    {mark:10s} {s.file.path}")
    return 0


if __name__ == "__main__":
    from llama.cli.common import run_guarded

    sys.exit(run_guarded("llama data", lambda: main()))
