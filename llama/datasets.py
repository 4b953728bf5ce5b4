"""Pinned public data sets: a manifest shipped with the package, fetched into the cache dir.

The manifest ``llama/data/datasets.json`` lists, per data set, its files with URL, size and
sha256 (generated from the real files by ``scripts/make_data_manifest.py``). A fetched data set
lives in ``<cache dir>/datasets/<name>/<path>`` (cache dir: :func:`llama.paths.cache_dir`),
each file verified before it is renamed into place (:mod:`llama.io.download`).

``resolve("icecat1")`` returns the (fetched, verified) directory of a data set,
``resolve("gwtc-skymaps/GW170817_skymap.fits.gz")`` one of its files, and any other string is
taken as a path to an existing file or directory, so a setting such as the neutrino source can
name either.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path, PurePosixPath

from llama.errors import ConfigurationError, InputError

RECORD = ".llama-dataset.json"  # written after a data set was fully fetched and verified


@dataclass(frozen=True)
class DataFile:
    """One file of a data set: ``path`` inside the data set, ``url``, ``size`` (bytes), ``sha256``."""

    path: str
    url: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Dataset:
    """A named set of files from the manifest."""

    name: str
    description: str
    upstream: str
    files: tuple[DataFile, ...]

    @property
    def size(self) -> int:
        """Total bytes of all files."""
        return sum(f.size for f in self.files)


def _check_entry(name: str, entry: dict) -> DataFile:
    path = entry.get("path", "")
    parts = PurePosixPath(path).parts
    if not path or path.startswith("/") or ".." in parts or "\\" in path:
        raise ConfigurationError(f"data set manifest: {name}: unsafe file path {path!r}")
    sha = str(entry.get("sha256", "")).lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ConfigurationError(f"data set manifest: {name}/{path}: bad sha256 {sha!r}")
    size = entry.get("size")
    if not isinstance(size, int) or size < 0:
        raise ConfigurationError(f"data set manifest: {name}/{path}: bad size {size!r}")
    url = str(entry.get("url", ""))
    if not url.startswith(("https://", "http://")):
        raise ConfigurationError(f"data set manifest: {name}/{path}: bad url {url!r}")
    return DataFile(path=path, url=url, size=size, sha256=sha)


def load_manifest(source: str | os.PathLike | None = None) -> dict[str, Dataset]:
    """Data sets by name, from ``source`` (a JSON file) or the packaged manifest."""
    if source is None:
        text = resources.files("llama").joinpath("data/datasets.json").read_text("utf-8")
        where = "llama/data/datasets.json"
    else:
        where = str(source)
        try:
            text = Path(source).read_text("utf-8")
        except OSError as err:
            raise ConfigurationError(f"data set manifest {where}: {err.strerror}") from None
    try:
        raw = json.loads(text)
        items = raw["datasets"].items()
    except (ValueError, KeyError, AttributeError, TypeError) as err:
        raise ConfigurationError(f"data set manifest {where}: malformed ({err})") from None
    out = {}
    for name, body in items:
        files = tuple(_check_entry(name, e) for e in body.get("files", []))
        out[name] = Dataset(name=name, description=body.get("description", ""),
                            upstream=body.get("upstream", ""), files=files)
    return out


@cache
def _packaged() -> dict[str, Dataset]:
    return load_manifest()


def manifest() -> dict[str, Dataset]:
    """The packaged manifest (read once)."""
    return _packaged()


def get(name: str, datasets: dict[str, Dataset] | None = None) -> Dataset:
    """The data set ``name``; an unknown name is an :class:`InputError` listing the known ones."""
    datasets = manifest() if datasets is None else datasets
    try:
        return datasets[name]
    except KeyError:
        known = ", ".join(sorted(datasets))
        raise InputError(f"unknown data set {name!r} (known: {known})") from None


def datasets_dir(cache_root: str | os.PathLike | None = None, ensure: bool = False) -> Path:
    """``<cache dir>/datasets`` (``cache_root`` overrides :func:`llama.paths.cache_dir`)."""
    from llama import paths

    root = Path(cache_root) if cache_root is not None else paths.cache_dir()
    path = root / "datasets"
    if ensure:
        path.mkdir(parents=True, exist_ok=True)
    return path


def dataset_dir(name: str, cache_root: str | os.PathLike | None = None) -> Path:
    """Where data set ``name`` is (or would be) cached."""
    from llama.paths import safe_join

    return safe_join(datasets_dir(cache_root), name)


@dataclass(frozen=True)
class FileStatus:
    """State of one file in the cache: ``present`` (right size), ``verified`` (sha256 checked)."""

    file: DataFile
    path: Path
    present: bool
    verified: bool
    partial_bytes: int


def status(ds: Dataset, cache_root: str | os.PathLike | None = None,
           verify: bool = False) -> list[FileStatus]:
    """Per-file cache state of ``ds``; with ``verify`` every present file is re-hashed."""
    from llama.io.download import part_path, sha256_of

    base = dataset_dir(ds.name, cache_root)
    record = _read_record(base)
    out = []
    for f in ds.files:
        path = base / f.path
        present = path.is_file() and path.stat().st_size == f.size
        if verify and present:
            verified = sha256_of(path) == f.sha256
        else:
            verified = present and record.get(f.path) == f.sha256
        part = part_path(path)
        out.append(FileStatus(f, path, present, verified,
                              part.stat().st_size if part.is_file() else 0))
    return out


def _read_record(base: Path) -> dict[str, str]:
    try:
        return json.loads((base / RECORD).read_text("utf-8")).get("files", {})
    except (OSError, ValueError, AttributeError):
        return {}


def _write_record(base: Path, ds: Dataset) -> None:
    from llama.io.storage import atomic_write_bytes

    body = {"name": ds.name, "files": {f.path: f.sha256 for f in ds.files}}
    atomic_write_bytes(base / RECORD, (json.dumps(body, indent=2, sort_keys=True) + "\n").encode())


def fetch(name: str, cache_root: str | os.PathLike | None = None, *,
          datasets: dict[str, Dataset] | None = None, force: bool = False,
          report: Callable[[str, DataFile, Path], None] | None = None,
          progress: Callable[[int, int], None] | None = None,
          timeout: float = 60.0) -> Path:
    """Download and verify every file of data set ``name``; return its directory.

    Files already cached with the right size and sha256 are not downloaded again (``force``
    re-downloads them); a cached file whose checksum differs is replaced. ``report(event,
    file, path)`` is called with event "cached" or "fetched" for every file.
    """
    from llama.io.download import download, sha256_of

    ds = get(name, datasets)
    base = dataset_dir(ds.name, cache_root)
    base.mkdir(parents=True, exist_ok=True)
    record = _read_record(base)
    for f in ds.files:
        path = base / f.path
        if not path.resolve().is_relative_to(base.resolve()):
            raise ConfigurationError(f"data set {name}: {f.path} resolves outside {base}")
        path.parent.mkdir(parents=True, exist_ok=True)
        if not force and path.is_file() and path.stat().st_size == f.size and (
            record.get(f.path) == f.sha256 or sha256_of(path) == f.sha256
        ):
            if report:
                report("cached", f, path)
            continue
        if path.exists():
            path.unlink()  # wrong size or checksum (or forced): never serve it
        download(f.url, path, size=f.size, sha256=f.sha256, timeout=timeout, progress=progress)
        if report:
            report("fetched", f, path)
    _write_record(base, ds)
    return base


def is_fetched(name: str, cache_root: str | os.PathLike | None = None,
               datasets: dict[str, Dataset] | None = None) -> bool:
    """True when every file of data set ``name`` is cached and recorded as verified."""
    ds = get(name, datasets)
    return all(s.verified for s in status(ds, cache_root))


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", "./", "../", "~")) or text in (".", "..")


def resolve(name_or_path: str | os.PathLike, *, fetch_missing: bool = True,
            cache_root: str | os.PathLike | None = None,
            datasets: dict[str, Dataset] | None = None) -> Path:
    """A path for ``name_or_path``: a data set name, ``name/file``, or an existing path.

    * ``"icecat1"`` -> the data set's cached directory (fetched and verified first when missing,
      unless ``fetch_missing=False``, which raises :class:`ConfigurationError` instead);
    * ``"gwtc-skymaps/GW170817_skymap.fits.gz"`` -> that file of the data set;
    * anything else (and anything starting with ``/``, ``./``, ``../`` or ``~``, or a
      :class:`os.PathLike`) -> that path, which must exist (:class:`InputError` otherwise).
    """
    known = manifest() if datasets is None else datasets
    if not isinstance(name_or_path, str):
        candidate = Path(name_or_path)
    else:
        text = name_or_path.strip()
        if not text:
            raise InputError("empty data set name or path")
        head, _, rest = text.partition("/")
        if not _looks_like_path(text) and head in known:
            ds = known[head]
            if rest and rest not in {f.path for f in ds.files} and not any(
                f.path.startswith(rest.rstrip("/") + "/") for f in ds.files
            ):
                raise InputError(f"data set {head!r} has no file {rest!r}")
            if not is_fetched(head, cache_root, known):
                if not fetch_missing:
                    raise ConfigurationError(
                        f"data set {head!r} is not fetched: run 'llama data fetch {head}'")
                fetch(head, cache_root, datasets=known)
            base = dataset_dir(head, cache_root)
            return base / rest if rest else base
        candidate = Path(text).expanduser()
    if not candidate.exists():
        names = ", ".join(sorted(known))
        raise InputError(f"{name_or_path}: no such file or directory, nor a data set ({names})")
    return candidate
