#!/usr/bin/env bash
# Expose the working tree as ansible_collections/npu/fleet (under .cache) so
# playbooks in a clone resolve npu.fleet.* exactly as an installed collection.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$root/.cache/collections/ansible_collections/npu"
ln -sfn "$root" "$root/.cache/collections/ansible_collections/npu/fleet"
