#!/usr/bin/env bash
# Build the local test images, each tagged by a content hash of its inputs so
# that a second run is a no-op. No registry is reachable: the Debian base is
# made with debootstrap and docker import.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=npu-fleet/debian-base:bookworm
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  rootfs=$(mktemp -d /tmp/npu-fleet-rootfs.XXXXXX)
  echo "==> debootstrap bookworm -> $BASE"
  debootstrap --variant=minbase --include=python3 bookworm "$rootfs" http://deb.debian.org/debian >/tmp/npu-fleet-debootstrap.log 2>&1 \
    || { tail -n 20 /tmp/npu-fleet-debootstrap.log >&2; exit 1; }
  tar -C "$rootfs" -c . | docker import - "$BASE" >/dev/null
  rm -rf "$rootfs"
fi

# build_image NAME CONTEXT_DIR [extra hash inputs...]
build_image() {
  local name=$1 context=$2
  shift 2
  local hash
  hash=$( (cd "$context" && find . -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum; \
           for extra in "$@"; do sha256sum "$extra"; done; docker image inspect -f '{{.Id}}' "$BASE") | sha256sum | cut -c1-12)
  if docker image inspect "$name:$hash" >/dev/null 2>&1; then
    echo "==> $name:$hash is up to date"
  else
    echo "==> building $name:$hash"
    docker build -q --build-arg BASE="$BASE" -t "$name:$hash" "$context" >/dev/null
  fi
  docker tag "$name:$hash" "$name:latest"
}

build_image npu-fleet/emulated-host tests/emulator
