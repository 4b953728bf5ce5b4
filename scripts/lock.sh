#!/usr/bin/env bash
# Regenerate the hash-pinned locks the container image and CI install from:
#
#   containers/requirements.lock        every dependency of llama, all extras (incl. test)
#   containers/build-requirements.lock  pyproject's [build-system] requires (setuptools, wheel)
#
#   scripts/lock.sh            # after any change to pyproject.toml's dependencies or extras
#
# Reproducible: the resolution only sees releases uploaded before $LOCK_EXCLUDE_NEWER
# (default below; move it forward on purpose to take newer releases), for CPython 3.11 on
# x86_64 manylinux_2_28 (what the image and the grid nodes run). Needs uv
# (`python3 -m pip install uv`); uv resolves from PyPI (or $UV_INDEX_URL).
# tests/test_containers.py checks that the lock agrees with pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

EXCLUDE_NEWER=${LOCK_EXCLUDE_NEWER:-2026-11-29T00:00:00Z}
if command -v uv >/dev/null 2>&1; then UV=(uv); else UV=(python3 -m uv); fi
COMMON=(--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28
        --exclude-newer "$EXCLUDE_NEWER" --quiet)

"${UV[@]}" pip compile pyproject.toml --all-extras "${COMMON[@]}" \
    --custom-compile-command "scripts/lock.sh" -o containers/requirements.lock

# The build backend, so that the image can install llama itself with --no-build-isolation.
build_reqs=$(python3 - <<'EOF'
import tomllib
with open("pyproject.toml", "rb") as f:
    print("\n".join(tomllib.load(f)["build-system"]["requires"]))
EOF
)
printf '%s\n' "$build_reqs" | "${UV[@]}" pip compile - "${COMMON[@]}" \
    --custom-compile-command "scripts/lock.sh" -o containers/build-requirements.lock

echo "wrote containers/requirements.lock ($(grep -c '^[A-Za-z0-9]' containers/requirements.lock) packages)" \
     "and containers/build-requirements.lock ($(grep -c '^[A-Za-z0-9]' containers/build-requirements.lock) packages)"
