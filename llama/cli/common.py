"""Shared CLI plumbing: one-line errors, verbosity, atomic output paths."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from llama.errors import LlamaError

log = logging.getLogger("llama")


def add_verbosity(p: argparse.ArgumentParser) -> None:
    """Add ``-v/--verbose`` (repeatable) to a command parser."""
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")


def setup_logging(verbose: int) -> None:
    """Log warnings by default, info with -v, debug with -vv, to stderr."""
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def run_guarded(prog: str, body: Callable[[], int | None]) -> int:
    """Run a command body; turn a LlamaError into one line on stderr and exit code 1."""
    try:
        return int(body() or 0)
    except LlamaError as err:
        message = "; ".join(line.strip() for line in str(err).splitlines() if line.strip())
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
