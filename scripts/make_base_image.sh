#!/usr/bin/env bash
# Make a local "python:3.11-slim-bookworm"-equivalent base image when no container registry is
# reachable: debootstrap a Debian bookworm minbase (its python3 is 3.11), import it with
# `buildah from scratch` + `buildah mount`, and commit it as a local image.
#
#   scripts/make_base_image.sh [IMAGE_NAME]      (default localhost/llama-base:bookworm-py311)
#
# Environment:
#   DEBIAN_MIRROR   default http://deb.debian.org/debian
#   BUILDAH_STORAGE default vfs (the driver that works on these VMs)
#   WORK_DIR        scratch directory (default: a fresh mktemp -d, removed at the end)
#   FORCE=1         rebuild even when IMAGE_NAME already exists
#
# Needs root (debootstrap, buildah mount) and the Debian packages debootstrap and buildah.
# Where a registry is reachable, skip this script: the Dockerfile's default BASE_IMAGE is the
# official python:3.11-slim-bookworm pinned by digest.
set -euo pipefail

IMAGE=${1:-localhost/llama-base:bookworm-py311}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DRIVER=${BUILDAH_STORAGE:-vfs}
BUILDAH=(buildah --storage-driver "$DRIVER")

if [[ ${FORCE:-0} != 1 ]] && "${BUILDAH[@]}" inspect --type image "$IMAGE" >/dev/null 2>&1; then
    echo "base image $IMAGE exists (FORCE=1 to rebuild)"
    exit 0
fi

for tool in debootstrap buildah; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found (apt-get install $tool)" >&2; exit 1; }
done

own_work=0
if [[ -z ${WORK_DIR:-} ]]; then WORK_DIR=$(mktemp -d /var/tmp/llama-base.XXXXXX); own_work=1; fi
ROOT="$WORK_DIR/rootfs"
container=""
cleanup() {
    if [[ -n $container ]]; then
        "${BUILDAH[@]}" umount "$container" >/dev/null 2>&1 || true
        "${BUILDAH[@]}" rm "$container" >/dev/null 2>&1 || true
    fi
    if [[ $own_work == 1 ]]; then rm -rf "$WORK_DIR"; fi
}
trap cleanup EXIT

start=$(date +%s)
# minbase = Essential + apt; python3 is 3.11 in bookworm; python3-venv brings ensurepip's
# wheels; ca-certificates is Debian's public CA set (never the build host's proxy CA).
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$ROOT" "$MIRROR"

# Trim what a slim image does not carry.
chroot "$ROOT" apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/log/*.log \
    "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
    "$ROOT"/var/cache/debconf/*-old "$ROOT"/tmp/* "$ROOT"/root/.cache
# debootstrap leaves the build host's resolv.conf/hostname behind: do not publish them.
: > "$ROOT/etc/resolv.conf"
echo localhost > "$ROOT/etc/hostname"

container=$("${BUILDAH[@]}" from scratch)
mnt=$("${BUILDAH[@]}" mount "$container")
cp -a "$ROOT"/. "$mnt"/
"${BUILDAH[@]}" umount "$container" >/dev/null
"${BUILDAH[@]}" config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 \
    --cmd '["python3"]' \
    --label org.opencontainers.image.description="Debian bookworm minbase + python3 (3.11), local stand-in for python:3.11-slim-bookworm" \
    --label org.opencontainers.image.base.name="debian:bookworm (debootstrap --variant=minbase)" \
    "$container"
"${BUILDAH[@]}" commit --rm "$container" "$IMAGE"
container=""
echo "base image $IMAGE made in $(( $(date +%s) - start )) s"
"${BUILDAH[@]}" images --format '{{.Name}}:{{.Tag}} {{.ID}} {{.Size}}' "$IMAGE"
