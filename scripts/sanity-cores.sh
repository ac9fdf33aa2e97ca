#!/usr/bin/env bash
# ansible-test sanity against every ansible-core that meta/runtime.yml claims
# (requires_ansible), each in its own venv under .cache/ (made on first use).
# All of them install from PyPI for Python 3.11: 2.17 (controller Python
# 3.10-3.12), 2.18 (3.11-3.13), 2.19 (3.11-3.13).
#
#   bash scripts/sanity-cores.sh            # 2.17, 2.18 and 2.19
#   bash scripts/sanity-cores.sh 2.18       # one of them
#   bash scripts/sanity-cores.sh 2.17 -- --test validate-modules   # extra ansible-test args after --
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}

cores=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do cores+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#cores[@]} -gt 0 ] || cores=(2.17 2.18 2.19)

status=0
for core in "${cores[@]}"; do
  venv="$root/.cache/venv-core-$core"
  next="${core%.*}.$((${core#*.} + 1))"
  if [ ! -x "$venv/bin/ansible-test" ]; then
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q "ansible-core>=$core,<$next"
  fi
  echo "==> ansible-test sanity with $("$venv/bin/ansible" --version | head -1)"
  start=$(date +%s)
  if PATH="$venv/bin:$PATH" bash "$root/scripts/sanity.sh" "$@"; then
    echo "==> ansible-core $core: sanity passed ($(( $(date +%s) - start )) s)"
  else
    echo "==> ansible-core $core: sanity FAILED ($(( $(date +%s) - start )) s)" >&2
    status=1
  fi
done
exit $status
