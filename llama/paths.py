"""Where llama keeps its files.

Output directory: ``$LLAMA_OUTPUT_DIR`` > ``$XDG_DATA_HOME/llama`` >
``~/.local/share/llama``, laid out as::

    current_run/<eventid>/     events of the live run
    past_runs/<run>/<eventid>/ archived runs
    gcn/YYYY-MM/DD/            every GCN notice received, by UTC day
    logs/

Cache directory: ``$LLAMA_CACHE_DIR`` > ``$XDG_CACHE_HOME/llama`` > ``~/.cache/llama``.

Every function returns a :class:`pathlib.Path` and creates the directory only
when asked (``ensure=True``). Writes never leave the output directory: the run, archive
and log directories are refused (:func:`confined`) when a symlink leads them outside it. Empty variables are ignored, and so are relative
``XDG_*`` values, as the XDG base-directory specification requires.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

from llama.errors import ConfigurationError, InputError

_RUN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


def _base_dir(own_var: str, xdg_var: str, xdg_default: str) -> Path:
    """``$own_var`` > ``$xdg_var/llama`` > ``~/<xdg_default>/llama``."""
    own = os.environ.get(own_var)
    if own:
        return Path(own).expanduser().absolute()
    xdg = os.environ.get(xdg_var)
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "llama"
    return Path.home() / xdg_default / "llama"


def _ready(path: Path, ensure: bool) -> Path:
    """Return ``path``, creating it (and its parents) first when ``ensure``."""
    if ensure:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigurationError(f"cannot create directory {path}: {err.strerror}") from None
    return path


def output_dir(ensure: bool = False) -> Path:
    """Root of everything llama writes (see module docstring for the precedence)."""
    return _ready(_base_dir("LLAMA_OUTPUT_DIR", "XDG_DATA_HOME", ".local/share"), ensure)


def cache_dir(ensure: bool = False) -> Path:
    """Downloads and other re-creatable files."""
    return _ready(_base_dir("LLAMA_CACHE_DIR", "XDG_CACHE_HOME", ".cache"), ensure)


def current_run_dir(ensure: bool = False) -> Path:
    """The live run: one directory per event."""
    return _ready(confined(output_dir() / "current_run"), ensure)


def past_run_dir(run: str, ensure: bool = False) -> Path:
    """An archived run ``past_runs/<run>``; ``run`` is one plain name component."""
    if not isinstance(run, str) or not _RUN_NAME.fullmatch(run):
        raise InputError(f"invalid run name {run!r}: use letters, digits, '.', '_', '-'")
    return _ready(confined(safe_join(output_dir() / "past_runs", run)), ensure)


def gcn_dir(when: datetime | None = None, ensure: bool = False) -> Path:
    """Notice archive for the UTC day of ``when`` (default: now): ``gcn/YYYY-MM/DD``.

    A naive ``when`` is taken to be UTC.
    """
    when = datetime.now(UTC) if when is None else when
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return _ready(confined(output_dir() / "gcn" / when.strftime("%Y-%m") / when.strftime("%d")), ensure)


def logs_dir(ensure: bool = False) -> Path:
    """Log files of the daemons and batch jobs."""
    return _ready(confined(output_dir() / "logs"), ensure)


def write_root(path: str | os.PathLike) -> Path:
    """The directory no write to ``path`` may leave: the output directory when ``path`` lies
    in it (as written, before following symlinks), else ``path`` itself."""
    path = Path(path).absolute()
    out = output_dir()
    return out if path.is_relative_to(out) else path


def confined(path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """``path`` (made absolute) after checking that, with every symlink in it followed, it
    stays inside ``root`` (default: :func:`write_root` of ``path``); ConfigurationError if a
    symlink leads it outside. Writes never leave the output directory this way."""
    path = Path(path).absolute()
    root = Path(root).absolute() if root is not None else write_root(path)
    if not path.resolve().is_relative_to(root.resolve()):
        raise ConfigurationError(
            f"unsafe path {path}: a symlink leads it outside {root} ({path.resolve()}); "
            "refusing to write there"
        )
    return path


def safe_join(root: str | os.PathLike, *parts: str) -> Path:
    """``root / parts`` after checking the result cannot land outside ``root``.

    Refuses empty parts, NUL bytes, absolute parts, ``..`` components and
    symlinks (existing ones, via ``resolve()``) that lead outside ``root``.
    """
    root = Path(root)
    for part in parts:
        if not isinstance(part, str) or not part:
            raise InputError(f"unsafe path part {part!r} under {root}: must be a non-empty string")
        if "\0" in part:
            raise InputError(f"unsafe path part {part!r} under {root}: contains a NUL byte")
        if os.path.isabs(part) or part.startswith(("/", "\\")):
            raise InputError(f"unsafe path part {part!r} under {root}: absolute path")
        if ".." in re.split(r"[/\\]", part):
            raise InputError(f"unsafe path part {part!r} under {root}: contains '..'")
    joined = root.joinpath(*parts)
    if not joined.resolve().is_relative_to(root.resolve()):
        raise InputError(f"unsafe path {joined}: resolves outside {root} (symlink?)")
    return joined
