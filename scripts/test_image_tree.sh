#!/usr/bin/env bash
# Smoke-test the unpacked image tree the way a grid job meets it on CVMFS: the tree read-only,
# a fresh tmpfs as /tmp, no $HOME, an unprivileged uid, the image's environment only.
#
#   scripts/test_image_tree.sh [ROOT_DIR] [SHARED_DATA_DIR]
#       (defaults: build/image/rootfs and ../shared/data)
#
# Runs in a chroot (root needed for chroot and the bind mounts; everything is unmounted at the
# end): llama --version, llama significance on a real multi-order sky map with (a) its real
# IceCube LVK Nu Track Search notice and (b) real IC40 public-release events moved into the
# +-500 s window, then a quick subset of the test suite with the image's pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
ROOT=$(realpath "${1:-build/image/rootfs}")
DATA=$(realpath "${2:-$REPO/../shared/data}")
RUN_UID=${RUN_UID:-10001}
QUICK_TESTS=${QUICK_TESTS:-"tests/test_skymap_io.py tests/test_neutrino_io.py tests/test_science_blocks.py tests/test_data_fetch.py"}

[[ -x $ROOT/opt/llama/bin/llama ]] || { echo "error: $ROOT is not an unpacked llama image" >&2; exit 1; }

MOUNTS=()
cleanup() {
    for (( i=${#MOUNTS[@]}-1; i>=0; i-- )); do umount -l "${MOUNTS[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
bind() {  # bind SRC DEST [ro]
    mount --bind "$1" "$2"; MOUNTS+=("$2")
    if [[ ${3:-} == ro ]]; then mount -o remount,bind,ro "$2"; fi
}

# Tests and data go to existing empty directories of the tree (/srv, /mnt): nothing is added.
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/llama-tree-tests.XXXXXX")
chmod 755 "$STAGE"
mkdir -p "$STAGE/tests"
cp -r tests/. "$STAGE/tests/"
cp -r scripts "$STAGE/scripts"
find "$STAGE" -name __pycache__ -prune -exec rm -rf {} +
chmod -R a+rX "$STAGE"
trap 'cleanup; rm -rf "$STAGE"' EXIT

bind "$ROOT" "$ROOT" ro               # the whole image read-only, as on CVMFS
mount -t tmpfs -o mode=1777,size=2g tmpfs "$ROOT/tmp"; MOUNTS+=("$ROOT/tmp")
mount -t proc proc "$ROOT/proc"; MOUNTS+=("$ROOT/proc")
bind /dev "$ROOT/dev"
bind "$DATA" "$ROOT/mnt" ro
bind "$STAGE" "$ROOT/srv" ro

# The image's environment (as apptainer applies it), HOME unset, TMPDIR=/tmp.
in_image() {
    chroot --userspec="$RUN_UID:$RUN_UID" "$ROOT" /usr/bin/env -i TMPDIR=/tmp \
        LLAMA_SHARED_DATA=/mnt LLAMA_REQUIRE_SHARED_DATA=1 \
        /bin/sh -c '. /.singularity.d/env/10-docker2singularity.sh; cd /tmp; "$@"' sh "$@"
}

echo "== llama --version"
in_image llama --version

echo "== read-only check: image not writable, caches under \$TMPDIR"
in_image sh -c 'touch /opt/llama/x 2>/dev/null && { echo "image writable!"; exit 1; } || echo "image is read-only"'
in_image python -c 'import os, matplotlib, astropy.config as c; print("MPLCONFIGDIR", os.environ["MPLCONFIGDIR"]); print("matplotlib config", matplotlib.get_configdir()); print("astropy cache", c.get_cache_dir())'

MAP=/mnt/gw_skymaps/S251112cm_bayestar.multiorder.fits
echo "== llama significance: S251112cm sky map + its IceCube LVK Nu Track Search notice"
in_image llama significance --skymap "$MAP" \
    --neutrinos /mnt/icecube/alerts_json/acme_tutorials_derived/icecube_None_2025-11-12T15-18-45.json \
    --event-time 2025-11-12T15:18:45.363443 --snr 12 --assumed-energy 1000 -o /tmp/s251112cm_notice.json

echo "== llama significance: S251112cm sky map + 8 real IC40 events moved into +-450 s"
in_image python - <<'EOF'
import numpy as np
from astropy.time import Time
from llama.io.neutrinos import ReleaseCatalog, write_llama_json
events = ReleaseCatalog("/mnt/icecube/icecube_10year_ps").window(54600.0, 54601.0).select(np.arange(8))
t_gw = Time("2025-11-12T15:18:45.363443", scale="utc").mjd
events.mjd = t_gw + np.linspace(-450, 450, 8) / 86400
write_llama_json(events, "/tmp/ic40_moved.json")
EOF
in_image llama significance --skymap "$MAP" --neutrinos /tmp/ic40_moved.json \
    --event-time 2025-11-12T15:18:45.363443 --snr 12 -o /tmp/s251112cm_ic40.json
in_image python -c 'import json; d = json.load(open("/tmp/s251112cm_ic40.json")); print("odds_ratio", d["odds_ratio"], "n_neutrinos", d["dump"]["n_neutrinos"])'

echo "== quick tests inside the image: $QUICK_TESTS"
in_image sh -c "cd /srv && python -m pytest -q -p no:cacheprovider -x $QUICK_TESTS"
echo "== tree OK"
