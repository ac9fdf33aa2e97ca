#!/usr/bin/env bash
# Build the serving test images (TEST EQUIPMENT, never shipped), each tagged by
# a content hash of its inputs so a second run is a no-op:
#   npu-fleet/torch-cpu-base   Debian + CPU torch + transformers + flask/gunicorn:
#                              stands in for a CANN base image with torch_npu
#   npu-fleet/vllm-standin:<v> stands in for vllm-ascend images of vLLM <v>:
#                              `vllm serve` checks its flags against that version's
#                              argument list, then serves a tiny CPU model
# Wheels come from PyPI (and the machine's local CPU torch wheel) via pip
# download on this machine; no container registry is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
BASE=npu-fleet/debian-base:bookworm
TORCH_BASE=npu-fleet/torch-cpu-base
STANDIN=npu-fleet/vllm-standin
wheels=$root/.cache/serving-wheels
local_wheels=()
[ -d /opt/wheels ] && local_wheels=(--find-links /opt/wheels)

docker image inspect "$BASE" >/dev/null 2>&1 || bash scripts/build-images.sh

hash_of() {  # files... -> 12 hex chars
  (for item in "$@"; do
     if [ -d "$item" ]; then (cd "$item" && find . -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum)
     else sha256sum "$item"; fi
   done) | sha256sum | cut -c1-12
}

mkdir -p "$wheels"
# The server's own pins (flask, gunicorn, prometheus_client, pillow...) come from its requirements.txt, so the
# base has them at exactly those versions and the image build on an emulated host downloads nothing.
server_requirements=roles/serve/files/transformers_server/requirements.txt
mapfile -t server_pins < <(grep -Ev '^[[:space:]]*(#|$)' "$server_requirements")
requirements=(torch==2.13.0 'transformers>=5,<6' 'tokenizers>=0.22' "${server_pins[@]}")
stamp="$wheels/.requirements"
if [ "$(cat "$stamp" 2>/dev/null)" != "${requirements[*]}" ]; then
  echo "==> downloading wheels for the serving images"
  "$root/.venv/bin/pip" download -q "${local_wheels[@]}" --only-binary=:all: -d "$wheels" "${requirements[@]}"
  echo "${requirements[*]}" > "$stamp"
fi

base_hash=$( (hash_of tests/serving_images/torch-cpu-base; cat "$stamp"; docker image inspect -f '{{.Id}}' "$BASE") | sha256sum | cut -c1-12)
if docker image inspect "$TORCH_BASE:$base_hash" >/dev/null 2>&1; then
  echo "==> $TORCH_BASE:$base_hash is up to date"
else
  echo "==> building $TORCH_BASE:$base_hash"
  context=$(mktemp -d /tmp/npu-fleet-torch-base.XXXXXX)
  cp tests/serving_images/torch-cpu-base/Dockerfile "$context/"
  cp "$server_requirements" "$context/server-requirements.txt"
  cp -l "$wheels"/*.whl "$context/" 2>/dev/null || cp "$wheels"/*.whl "$context/"
  mkdir "$context/wheels" && mv "$context"/*.whl "$context/wheels/"
  docker build -q --build-arg BASE="$BASE" -t "$TORCH_BASE:$base_hash" "$context" >/dev/null
  rm -rf "$context"
fi
docker tag "$TORCH_BASE:$base_hash" "$TORCH_BASE:latest"

# One stand-in per vLLM version with a recorded argument list.
for args in tests/standin_vllm/fixtures/vllm-*-serve-args.json; do
  [ -e "$args" ] || continue
  version=$(basename "$args" | sed -e 's/^vllm-//' -e 's/-serve-args.json$//')
  standin_hash=$( (hash_of tests/serving_images/vllm-standin roles/serve/files/transformers_server tests/standin_vllm/vllm_standin.py \
                    tests/unit/transformers_server/tiny_models.py "$args"; docker image inspect -f '{{.Id}}' "$TORCH_BASE:$base_hash") \
                  | sha256sum | cut -c1-12)
  if docker image inspect "$STANDIN:$version-$standin_hash" >/dev/null 2>&1; then
    echo "==> $STANDIN:$version-$standin_hash is up to date"
  else
    echo "==> building $STANDIN:$version-$standin_hash"
    context=$(mktemp -d /tmp/npu-fleet-standin.XXXXXX)
    cp tests/serving_images/vllm-standin/Dockerfile tests/standin_vllm/vllm_standin.py tests/unit/transformers_server/tiny_models.py "$context/"
    cp "$args" "$context/serve-args.json"
    cp -r roles/serve/files/transformers_server "$context/transformers_server"
    find "$context" -name __pycache__ -prune -exec rm -rf {} +
    docker build -q --build-arg BASE="$TORCH_BASE:$base_hash" --build-arg VLLM_VERSION="$version" \
      -t "$STANDIN:$version-$standin_hash" "$context" >/dev/null
    rm -rf "$context"
  fi
  docker tag "$STANDIN:$version-$standin_hash" "$STANDIN:$version"
done

# The gateway: Debian's HAProxy laid out like the official haproxy image,
# loaded into the emulated hosts under the official name (serving_prereqs.yml).
GATEWAY=npu-fleet/gateway-haproxy
gateway_hash=$( (hash_of tests/serving_images/gateway; docker image inspect -f '{{.Id}}' "$BASE") | sha256sum | cut -c1-12)
if docker image inspect "$GATEWAY:$gateway_hash" >/dev/null 2>&1; then
  echo "==> $GATEWAY:$gateway_hash is up to date"
else
  echo "==> building $GATEWAY:$gateway_hash"
  docker build -q --build-arg BASE="$BASE" -t "$GATEWAY:$gateway_hash" tests/serving_images/gateway >/dev/null
fi
docker tag "$GATEWAY:$gateway_hash" "$GATEWAY:latest"
