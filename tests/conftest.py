"""Shared fixtures: the real public data in ../shared/data.

Tests that need it skip when it is absent, except that they FAIL when
LLAMA_REQUIRE_SHARED_DATA=1 (as CI sets it), so real-data tests never
vanish silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LLAMA_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """Path inside ../shared/data; fails or skips (see module doc) when missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"shared data not found: {path}"
        if os.environ.get("LLAMA_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data directory."""
    return shared_path()
