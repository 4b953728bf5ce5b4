"""The layering of ARCHITECTURE.md holds, and the check catches a violation.

The import-linter contracts live in pyproject.toml ([tool.importlinter]); `lint-imports` is run
on the package as it is, then on a copy with one forbidden import added.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(package_parent: Path, config: Path) -> subprocess.CompletedProcess:
    """Run lint-imports with ``package_parent`` first on the import path."""
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(
        [str(LINT_IMPORTS), str(config), "--no-cache"],
        cwd=package_parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_contracts_are_kept():
    result = lint_imports(ROOT, ROOT / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "forbidden_import", "contract"),
    [
        ("science/odds.py", "import llama.io.skymap", "Layers"),
        ("io/neutrinos.py", "import llama.event", "Layers"),
        ("event.py", "import llama.tasks", "Layers"),
        ("io/skymap_distance.py", "import llama.io.skymap", "No import cycles"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(tmp_path, module, forbidden_import, contract):
    copy = tmp_path / "llama"
    shutil.copytree(ROOT / "llama", copy, ignore=shutil.ignore_patterns("__pycache__", "data"))
    target = copy / module
    target.write_text(target.read_text() + f"\n{forbidden_import}  # injected by the test\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    result = lint_imports(tmp_path, tmp_path / "pyproject.toml")
    assert result.returncode != 0, result.stdout
    report = result.stdout.split("Broken contracts", 1)[-1]
    assert "Broken contracts" in result.stdout and contract in report, result.stdout
    offender = module.removesuffix(".py").replace("/", ".").rsplit(".", 1)[-1]
    assert offender in report, result.stdout
