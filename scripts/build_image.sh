#!/usr/bin/env bash
# Build the llama image from scratch with buildah (no Docker daemon needed), export it as an
# OCI layout + OCI archive, and unpack it into the root tree that CVMFS serves.
#
#   scripts/build_image.sh [OUT_DIR]          (default: build/image)
#
# Steps (each printed with its wall time):
#   1. base image: $BASE_IMAGE if set (e.g. the digest-pinned python:3.11-slim-bookworm where a
#      registry is reachable), else the local one from scripts/make_base_image.sh
#   2. a minimal build context (only what containers/Dockerfile copies)
#   3. buildah bud --isolation chroot --storage-driver vfs, with the build host's CA bundle as
#      the build secret "ca_bundle" (needed behind a TLS-intercepting proxy; never in a layer)
#   4. buildah push -> OUT_DIR/oci (OCI layout, tag = version) and OUT_DIR/llama-VERSION.oci.tar
#   5. scripts/oci_to_tree.sh -> OUT_DIR/rootfs (the unpacked tree, as cvmfs-singularity-sync
#      publishes it)
#
# Environment: BASE_IMAGE, IMAGE_NAME (default localhost/llama), BUILDAH_STORAGE (default vfs),
#   BUILDAH_ISOLATION (default chroot), CA_BUNDLE (default: pip's configured cert, if any),
#   SOURCE_URL (OCI label).
# Needs root, buildah and umoci (Debian: apt-get install buildah umoci debootstrap).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

OUT=$(realpath -m "${1:-build/image}")
DRIVER=${BUILDAH_STORAGE:-vfs}
ISOLATION=${BUILDAH_ISOLATION:-chroot}
IMAGE_NAME=${IMAGE_NAME:-localhost/llama}
BUILDAH=(buildah --storage-driver "$DRIVER")
VERSION=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
REVISION=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$REPO" status --porcelain 2>/dev/null) ]]; then REVISION="$REVISION-dirty"; fi
TAG="$IMAGE_NAME:$VERSION"
mkdir -p "$OUT"

t0=$(date +%s)
step() { echo "== [$(( $(date +%s) - t0 )) s] $*"; }

# 1. base
if [[ -z ${BASE_IMAGE:-} ]]; then
    BASE_IMAGE=localhost/llama-base:bookworm-py311
    step "base image $BASE_IMAGE (scripts/make_base_image.sh)"
    scripts/make_base_image.sh "$BASE_IMAGE"
fi

# 2. context: only what the Dockerfile copies (no .venv, no caches, no other work in progress)
CTX=$(mktemp -d /var/tmp/llama-ctx.XXXXXX)
trap 'rm -rf "$CTX"' EXIT
step "context $CTX"
mkdir -p "$CTX/containers"
cp pyproject.toml README.md "$CTX/"
cp containers/Dockerfile containers/requirements.lock containers/build-requirements.lock \
   containers/llama_container_env.py containers/llama-container-env.pth "$CTX/containers/"
tar -C "$REPO" --exclude='__pycache__' --exclude='*.pyc' -cf - llama | tar -C "$CTX" -xf -

# 3. build. The CA bundle: pip's configured one (a proxy's CA lives there), else $SSL_CERT_FILE,
# else the system store; an empty file when none exists, so the RUN step uses its own store.
if [[ -z ${CA_BUNDLE:-} ]]; then
    CA_BUNDLE=$( (python3 -m pip config get global.cert 2>/dev/null || true) | head -n1)
    CA_BUNDLE=${CA_BUNDLE:-${PIP_CERT:-${SSL_CERT_FILE:-}}}
fi
if [[ -z $CA_BUNDLE || ! -s $CA_BUNDLE ]]; then
    CA_BUNDLE="$CTX/no-ca-bundle"; : > "$CA_BUNDLE"
fi
step "buildah bud -> $TAG (base $BASE_IMAGE, CA secret from $CA_BUNDLE)"
build_start=$(date +%s)
"${BUILDAH[@]}" bud --isolation "$ISOLATION" --layers=false \
    -f "$CTX/containers/Dockerfile" \
    --secret "id=ca_bundle,src=$CA_BUNDLE" \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    --build-arg "VERSION=$VERSION" \
    --build-arg "REVISION=$REVISION" \
    --build-arg "SOURCE=${SOURCE_URL:-https://github.com/llama-multimessenger/llama}" \
    --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    -t "$TAG" "$CTX"
build_s=$(( $(date +%s) - build_start ))

# 4. export
step "export OCI layout + archive"
rm -rf "$OUT/oci" "$OUT/llama-$VERSION.oci.tar"
"${BUILDAH[@]}" push "$TAG" "oci:$OUT/oci:$VERSION"
# an OCI archive is the tar of the OCI layout: no second compression pass
tar -C "$OUT/oci" -cf "$OUT/llama-$VERSION.oci.tar" .

# 5. unpacked tree
step "unpack -> $OUT/rootfs"
scripts/oci_to_tree.sh "$OUT/oci:$VERSION" "$OUT/rootfs"

size=$("${BUILDAH[@]}" inspect --type image --format '{{.OCIv1.Config.Labels}}' "$TAG" >/dev/null; \
       "${BUILDAH[@]}" images --format '{{.Size}}' "$TAG")
{
    echo "image=$TAG"
    echo "image_id=$("${BUILDAH[@]}" inspect --type image --format '{{.FromImageID}}' "$TAG")"
    echo "image_digest=$("${BUILDAH[@]}" inspect --type image --format '{{.FromImageDigest}}' "$TAG")"
    echo "image_size=$size"
    echo "oci_archive_bytes=$(stat -c %s "$OUT/llama-$VERSION.oci.tar")"
    echo "rootfs_bytes=$(du -sb "$OUT/rootfs" | cut -f1)"
    echo "build_seconds=$build_s"
    echo "total_seconds=$(( $(date +%s) - t0 ))"
    echo "base_image=$BASE_IMAGE"
    echo "revision=$REVISION"
} | tee "$OUT/build-info.txt"
step "done"
