#!/usr/bin/env bash
# A personal HTCondor pool on this machine, for running llama's DAGs for real.
#
# Debian trixie's minicondor (HTCondor 23.x, one partitionable slot) in a debootstrapped root,
# entered with chroot. Needs root, debootstrap and a Debian mirror.
#
#   scripts/condor_pool.sh setup   # debootstrap + configure (idempotent; ~4 min the first time)
#   scripts/condor_pool.sh start   # mount proc/dev, start condor_master, wait for the slot
#   scripts/condor_pool.sh status  # condor_status and condor_q
#   scripts/condor_pool.sh run CMD # run CMD inside the pool's root (e.g. condor_submit_dag)
#   scripts/condor_pool.sh stop    # stop the daemons, unmount
#
# Environment: LLAMA_CONDOR_ROOT (default /var/lib/llama-condor/root), DEBIAN_MIRROR
# (default: the first http(s) URI of this machine's apt sources, else deb.debian.org).
# This machine's sandbox forbids mount namespaces, so the configuration turns off
# MOUNT_UNDER_SCRATCH, private /dev/shm and PID namespaces (without that every job is held
# with "Failed to unshare the mount namespace").
set -euo pipefail

ROOT="${LLAMA_CONDOR_ROOT:-/var/lib/llama-condor/root}"
MIRROR="${DEBIAN_MIRROR:-$(grep -hoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1 | awk '{print $2}' || true)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
CONFIG="$ROOT/etc/condor/config.d/99-llama-personal-pool.conf"

in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }

setup() {
    if [[ ! -x "$ROOT/usr/sbin/condor_master" ]]; then
        command -v debootstrap >/dev/null || apt-get install -y debootstrap
        mkdir -p "$ROOT"
        # minicondor's configure step stops on a virtual dependency: finished below
        debootstrap --variant=minbase --include=minicondor,python3 trixie "$ROOT" "$MIRROR" || true
        cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
        mount_fs
        in_root apt-get install -y python3-cffi-backend
        in_root dpkg --configure -a
    fi
    mkdir -p "$(dirname "$CONFIG")"
    cat >"$CONFIG" <<'EOF'
# llama's personal pool inside a chroot: no mount or PID namespaces in this sandbox.
MOUNT_UNDER_SCRATCH =
MOUNT_PRIVATE_DEV_SHM = false
USE_PID_NAMESPACES = false
# jobs of a non-root submitter run as that user
STARTER_ALLOW_RUNAS_OWNER = true
EOF
    grep -q "$(hostname)" "$ROOT/etc/hosts" 2>/dev/null || echo "127.0.0.1 $(hostname)" >>"$ROOT/etc/hosts"
    in_root id -u llama >/dev/null 2>&1 || in_root useradd --create-home --shell /bin/bash llama
    echo "pool root ready: $ROOT"
}

mount_fs() {
    mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
    mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
}

start() {
    mount_fs
    if ! in_root pgrep -x condor_master >/dev/null 2>&1; then
        in_root condor_master
    fi
    for _ in $(seq 1 60); do
        if in_root condor_status -af Name 2>/dev/null | grep -q slot; then
            in_root condor_status
            return 0
        fi
        sleep 1
    done
    echo "condor_pool: no slot after 60 s" >&2
    return 1
}

stop() {
    in_root condor_off -master >/dev/null 2>&1 || true
    for _ in $(seq 1 30); do
        in_root pgrep -x condor_master >/dev/null 2>&1 || break
        sleep 1
    done
    for fs in proc dev; do
        mountpoint -q "$ROOT/$fs" && umount -l "$ROOT/$fs"
    done
    return 0
}

case "${1:-}" in
    setup) setup ;;
    start) start ;;
    stop) stop ;;
    status) in_root condor_status && in_root condor_q -all ;;
    run) shift; in_root "$@" ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
esac
