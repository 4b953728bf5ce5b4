#!/usr/bin/env bash
# Turn an OCI image into the unpacked root tree that CVMFS serves
# (what cvmfs-singularity-sync publishes under /cvmfs/singularity.opensciencegrid.org/<org>/llama:<tag>).
#
#   scripts/oci_to_tree.sh OCI_LAYOUT_DIR:TAG ROOT_DIR
#   scripts/oci_to_tree.sh build/image/oci:0.1.0 build/image/rootfs
#
# Uses umoci (apt-get install umoci). Also writes the two things apptainer expects in a
# sandbox made from a Docker image: /.singularity.d/env/10-docker2singularity.sh with the
# image's ENV, and /.singularity.d/runscript running its CMD. The tree is made readable by all.
set -euo pipefail
SRC=${1:?usage: oci_to_tree.sh OCI_LAYOUT_DIR:TAG ROOT_DIR}
DEST=${2:?usage: oci_to_tree.sh OCI_LAYOUT_DIR:TAG ROOT_DIR}
command -v umoci >/dev/null || { echo "error: umoci not found (apt-get install umoci)" >&2; exit 1; }

BUNDLE=$(mktemp -d "${TMPDIR:-/tmp}/llama-bundle.XXXXXX")
trap 'rm -rf "$BUNDLE"' EXIT
rmdir "$BUNDLE"
umoci unpack --image "$SRC" "$BUNDLE"
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$BUNDLE/rootfs" "$DEST"

# apptainer metadata from the OCI runtime config (env + args of the image)
python3 - "$BUNDLE/config.json" "$DEST" <<'EOF'
import json, os, shlex, sys
config = json.load(open(sys.argv[1]))
root = sys.argv[2]
process = config.get("process", {})
d = os.path.join(root, ".singularity.d")
os.makedirs(os.path.join(d, "env"), exist_ok=True)
lines = ["#!/bin/sh"]
for item in process.get("env", []):
    key, _, value = item.partition("=")
    if key in ("HOME", "TERM", "HOSTNAME"):
        continue
    lines.append(f"export {key}=${{{key}:-{shlex.quote(value)}}}" if key != "PATH"
                 else f"export PATH={shlex.quote(value)}")
with open(os.path.join(d, "env", "10-docker2singularity.sh"), "w") as f:
    f.write("\n".join(lines) + "\n")
args = process.get("args") or ["/bin/sh"]
with open(os.path.join(d, "runscript"), "w") as f:
    f.write("#!/bin/sh\n" + f"if [ $# -gt 0 ]; then exec \"$@\"; fi\nexec {shlex.join(args)}\n")
os.chmod(os.path.join(d, "runscript"), 0o755)
EOF
chmod -R a+rX "$DEST"
echo "unpacked $SRC -> $DEST ($(du -sh "$DEST" | cut -f1))"
