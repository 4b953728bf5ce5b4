"""Container/distribution structure: the lock, the Dockerfile, pyproject, the Apptainer
definition and the CVMFS entry agree with each other.

Fix for a failing lock/pyproject agreement: run ``scripts/lock.sh`` (one command).

Two opt-in tests use real engines: LLAMA_IMAGE_TREE=<unpacked rootfs> (root, chroot) and
LLAMA_DOCKER_HOST=<Docker-API socket> with LLAMA_IMAGE=<image ref> (docker SDK).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "containers" / "requirements.lock"
BUILD_LOCK = REPO / "containers" / "build-requirements.lock"
DOCKERFILE = REPO / "containers" / "Dockerfile"
DEF = REPO / "apptainer" / "llama.def"
IMAGE_LIST = REPO / "containers" / "docker_images.txt"
FIX = "run scripts/lock.sh to regenerate the locks"

# What the image and the grid nodes run; the lock is resolved for exactly this.
TARGET_ENV = {**default_environment(), "python_version": "3.11", "python_full_version": "3.11.2",
              "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
              "platform_machine": "x86_64", "implementation_name": "cpython",
              "platform_python_implementation": "CPython"}


def pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)


def project_requirements() -> list[Requirement]:
    """Every requirement of llama: dependencies and every extra (markers for the target env)."""
    project = pyproject()["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).values():
        reqs += [Requirement(r) for r in extra]
    return [r for r in reqs if r.marker is None or r.marker.evaluate(TARGET_ENV)]


def parse_lock(path: Path) -> dict[str, dict]:
    """name -> {version, hashes, via} from a ``uv pip compile --generate-hashes`` file."""
    entries: dict[str, dict] = {}
    current = None
    in_via = False
    for line in path.read_text().splitlines():
        head = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)", line)
        if head:
            current = entries.setdefault(canonicalize_name(head.group(1)),
                                         {"version": head.group(3), "hashes": [], "via": set()})
            in_via = False
            continue
        if current is None:
            continue
        for digest in re.findall(r"--hash=sha256:([0-9a-f]{64})", line):
            current["hashes"].append(digest)
        via = re.match(r"^\s+# via(?: (.*))?$", line)
        if via:
            in_via = via.group(1) is None
            if via.group(1):
                current["via"].add(via.group(1).strip())
            continue
        if in_via and (m := re.match(r"^\s+#\s+(.*)$", line)):
            current["via"].add(m.group(1).strip())
    return entries


@pytest.fixture(scope="module")
def lock() -> dict[str, dict]:
    return parse_lock(LOCK)


# ------------------------------------------------------------------------- lock vs pyproject


def test_lock_is_hash_pinned_and_generated_by_the_script(lock):
    text = LOCK.read_text()
    assert "scripts/lock.sh" in text.splitlines()[1], "lock header must name scripts/lock.sh"
    assert len(lock) > 50
    for name, entry in lock.items():
        assert entry["hashes"], f"{name} has no --hash in the lock; {FIX}"
        Version(entry["version"])  # a plain pinned version
    script = (REPO / "scripts" / "lock.sh").read_text()
    for flag in ("--all-extras", "--generate-hashes", "--python-version 3.11",
                 "--python-platform x86_64-manylinux_2_28", "--exclude-newer"):
        assert flag in script


def test_every_pyproject_requirement_is_locked_and_satisfied(lock):
    missing, unsatisfied = [], []
    for req in project_requirements():
        entry = lock.get(canonicalize_name(req.name))
        if entry is None:
            missing.append(str(req))
        elif not req.specifier.contains(entry["version"], prereleases=True):
            unsatisfied.append(f"{req} (locked {entry['version']})")
    assert not missing, f"not in containers/requirements.lock: {missing}; {FIX}"
    assert not unsatisfied, f"locked versions violate pyproject: {unsatisfied}; {FIX}"


def test_lock_has_no_stale_direct_requirements(lock):
    """Packages the lock attributes to pyproject.toml are exactly pyproject's requirements."""
    direct = {name for name, e in lock.items()
              if any(v.startswith("llama") for v in e["via"])}
    wanted = {canonicalize_name(r.name) for r in project_requirements()}
    assert direct == wanted, (f"lock lists as direct {sorted(direct - wanted)} not in pyproject; "
                              f"pyproject has {sorted(wanted - direct)} not direct in the lock; {FIX}")


def test_lock_covers_the_test_extra_and_every_extra(lock):
    extras = pyproject()["project"]["optional-dependencies"]
    assert {"test", "skymap", "grid", "listen", "s3", "publish"} <= set(extras)
    for extra, reqs in extras.items():
        for r in map(Requirement, reqs):
            assert canonicalize_name(r.name) in lock, f"[{extra}] {r.name} not locked; {FIX}"


def test_build_lock_matches_build_system():
    entries = parse_lock(BUILD_LOCK)
    for text in pyproject()["build-system"]["requires"]:
        req = Requirement(text)
        entry = entries.get(canonicalize_name(req.name))
        assert entry is not None, f"{req} not in {BUILD_LOCK.name}; {FIX}"
        assert req.specifier.contains(entry["version"]), f"{req} vs {entry['version']}; {FIX}"
        assert entry["hashes"]


def test_requires_python_allows_the_image_python():
    from packaging.specifiers import SpecifierSet

    assert SpecifierSet(pyproject()["project"]["requires-python"]).contains("3.11")


# ------------------------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(
        line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")))
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_base_is_python311_bookworm_by_digest():
    instr = dockerfile_instructions()
    args = [rest for word, rest in instr if word == "ARG" and rest.startswith("BASE_IMAGE=")]
    assert len(args) == 1
    base = args[0].split("=", 1)[1]
    assert re.fullmatch(r"docker\.io/library/python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", base)
    froms = [rest for word, rest in instr if word == "FROM"]
    assert froms == ["${BASE_IMAGE}"]


def test_dockerfile_installs_from_the_locks_with_hashes():
    run = " ".join(rest for word, rest in dockerfile_instructions() if word == "RUN")
    copies = " ".join(rest for word, rest in dockerfile_instructions() if word == "COPY")
    assert "containers/requirements.lock" in copies and "containers/build-requirements.lock" in copies
    installs = re.findall(r"pip install ([^;]*)", run)
    locked = [i for i in installs if "-r " in i]
    assert len(locked) == 2 and all("--require-hashes" in i and "--no-deps" in i for i in locked)
    own = [i for i in installs if "-r " not in i]
    assert len(own) == 1 and "--no-deps" in own[0] and "--no-build-isolation" in own[0]
    assert "pip check" in run
    # nothing else is pip-installed (no unpinned extras sneaking in)
    assert len(installs) == 3


def test_dockerfile_labels_user_and_environment():
    instr = dockerfile_instructions()
    labels = " ".join(rest for word, rest in instr if word == "LABEL")
    for key in ("source", "version", "revision", "licenses", "title"):
        assert f"org.opencontainers.image.{key}=" in labels
    license_text = pyproject()["project"]["license"]["text"]
    assert f'org.opencontainers.image.licenses="{license_text}"' in labels
    version_args = [rest for word, rest in instr if word == "ARG" and rest.startswith("VERSION=")]
    assert version_args == [f"VERSION={pyproject()['project']['version']}"]
    users = [rest for word, rest in instr if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    env = " ".join(rest for word, rest in instr if word == "ENV")
    assert "LLAMA_CONTAINER=1" in env and "PATH=/opt/llama/bin:" in env
    assert "MPLBACKEND=Agg" in env


def test_dockerfile_ca_bundle_is_a_build_secret_never_a_layer():
    instr = dockerfile_instructions()
    run = " ".join(rest for word, rest in instr if word == "RUN")
    assert "--mount=type=secret,id=ca_bundle" in run
    for word, rest in instr:
        if word in ("COPY", "ADD"):
            assert not re.search(r"\.(crt|pem)\b|ca-cert", rest), rest
    ignore = (REPO / "containers" / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[0] == "*" or "*" in ignore


def test_dockerfile_copies_exist_and_match_the_build_scripts():
    sources = []
    for word, rest in dockerfile_instructions():
        if word == "COPY":
            sources += [p for p in shlex.split(rest)[:-1] if not p.startswith("--")]
    for src in sources:
        assert (REPO / src).exists(), src
    staged = (REPO / "scripts" / "build_image.sh").read_text()
    published = (REPO / "scripts" / "publish_image.py").read_text()
    for src in sources:
        if src.startswith("containers/"):
            assert Path(src).name in staged, f"build_image.sh does not stage {src}"
            assert src in published, f"publish_image.py does not send {src}"


def test_container_env_hook_puts_caches_under_tmpdir(tmp_path):
    hook = REPO / "containers" / "llama_container_env.py"
    env = {"PATH": os.environ.get("PATH", ""), "TMPDIR": str(tmp_path), "LLAMA_CONTAINER": "1"}
    code = (f"import runpy, os; runpy.run_path({str(hook)!r}); "
            "print(os.environ['MPLCONFIGDIR']); print(os.environ['XDG_CACHE_HOME'])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    base = tmp_path / f"llama-{os.getuid()}"
    assert out == [str(base / "matplotlib"), str(base / "cache")]
    assert (base / "cache" / "astropy").is_dir() and (base / "matplotlib").is_dir()
    assert (REPO / "containers" / "llama-container-env.pth").read_text().strip() == \
        "import llama_container_env"


# ------------------------------------------------------------------ Apptainer and CVMFS


def def_sections() -> dict[str, str]:
    sections, name = {}, "header"
    for line in DEF.read_text().splitlines():
        m = re.match(r"^%(\w+)", line)
        if m:
            name = m.group(1)
            sections[name] = ""
        else:
            sections[name] = sections.get(name, "") + line + "\n"
    return sections


def test_apptainer_def_parses_and_bootstraps_the_published_tag():
    from spython.main.parse.parsers import SingularityParser

    recipe = next(iter(SingularityParser(str(DEF)).recipe.values()))
    version = pyproject()["project"]["version"]
    image = next(ln for ln in IMAGE_LIST.read_text().splitlines() if ln and not ln.startswith("#"))
    assert recipe.fromHeader == image
    assert recipe.fromHeader.rsplit(":", 1)[1] == version, "apptainer tag must equal the version"
    assert "Bootstrap: docker" in DEF.read_text()
    assert f"org.opencontainers.image.version {version}" in recipe.labels
    assert "LLAMA_CONTAINER=1" in recipe.environ
    assert recipe.test and recipe.cmd  # %test and %runscript became scripts
    sections = def_sections()
    for name in ("labels", "environment", "help", "test", "runscript"):
        assert sections.get(name, "").strip(), f"%{name} missing or empty"
    assert "llama --version" in sections["test"]


def test_cvmfs_image_list_and_paths_agree():
    lines = [ln for ln in IMAGE_LIST.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    version = pyproject()["project"]["version"]
    assert len(lines) == 1 and re.fullmatch(r"[a-z0-9-]+/llama:" + re.escape(version), lines[0])
    cvmfs = f"/cvmfs/singularity.opensciencegrid.org/{lines[0]}"
    readme = (REPO / "containers" / "README.md").read_text()
    assert cvmfs in readme and f"apptainer exec {cvmfs}" in readme
    assert f'+SingularityImage = "{cvmfs}"' in readme
    org = lines[0].split("/")[0]
    assert f'DEFAULT_REPO = "{org}/llama"' in (REPO / "scripts" / "publish_image.py").read_text()


def test_ci_installs_from_the_lock():
    ci = (REPO / ".ci" / "run").read_text()
    assert "containers/requirements.lock" in ci
    assert re.search(r"uv pip install .*--no-deps .*-e \.|uv pip install .*-e \. .*--no-deps", ci)


@pytest.mark.parametrize("script", ["lock.sh", "make_base_image.sh", "build_image.sh",
                                    "oci_to_tree.sh", "test_image_tree.sh"])
def test_shell_scripts_parse(script):
    path = REPO / "scripts" / script
    assert os.access(path, os.X_OK), f"{script} is not executable"
    subprocess.run(["bash", "-n", str(path)], check=True)


# -------------------------------------------------------------- opt-in: real image / engine


@pytest.mark.skipif(not os.environ.get("LLAMA_IMAGE_TREE"), reason="needs the built image tree (scripts/build_image.sh, ~7 min, 2.2 GB): "
                    "set LLAMA_IMAGE_TREE")
def test_unpacked_tree_runs_llama():
    root = Path(os.environ["LLAMA_IMAGE_TREE"])
    out = subprocess.run(["chroot", "--userspec=10001:10001", str(root), "/usr/bin/env", "-i",
                          "TMPDIR=/tmp", "/bin/sh", "-c",
                          ". /.singularity.d/env/10-docker2singularity.sh; llama --version"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"llama {pyproject()['project']['version']}"


@pytest.mark.skipif(not os.environ.get("LLAMA_DOCKER_HOST"), reason="needs a Docker-API socket (podman system service): "
                    "set LLAMA_DOCKER_HOST")
def test_docker_sdk_check_tag_save(tmp_path):
    image = os.environ.get("LLAMA_IMAGE", f"localhost/llama:{pyproject()['project']['version']}")
    script = [sys.executable, str(REPO / "scripts" / "publish_image.py"),
              "--docker-host", os.environ["LLAMA_DOCKER_HOST"]]
    subprocess.run([*script, "check", "--image", image], check=True)
    subprocess.run([*script, "tag", "--image", image, "--repo", "localhost/llama-sdk-test"],
                   check=True)
    out = tmp_path / "image.tar"
    subprocess.run([*script, "save", "--image", image, "-o", str(out)], check=True)
    assert out.stat().st_size > 100_000_000


def test_publish_script_context_and_classic_dockerfile():
    """The Docker-API build context holds exactly what the Dockerfile copies; the classic-builder
    variant differs from containers/Dockerfile only by the BuildKit secret mount."""
    import importlib.util
    import tarfile

    spec = importlib.util.spec_from_file_location("publish", REPO / "scripts" / "publish_image.py")
    publish = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(publish)
    original = DOCKERFILE.read_text()
    classic = publish.classic_dockerfile().decode()
    assert "--mount" not in classic and "--mount=type=secret,id=ca_bundle" in original
    assert classic == original.replace("RUN --mount=type=secret,id=ca_bundle \\\n", "RUN \\\n")
    with tarfile.open(fileobj=publish.context_tar()) as tar:
        names = set(tar.getnames())
    assert set(publish.CONTEXT_FILES) <= names
    assert all(n in publish.CONTEXT_FILES or n.startswith("llama/") for n in names)
    assert "llama/data/datasets.json" in names and not any("__pycache__" in n for n in names)
