#!/usr/bin/env bash
# ansible-test sanity, offline. ansible-test needs the collection at
# .../ansible_collections/npu/fleet, and its pip bootstrap downloads a script
# from a host we cannot reach: a local stand-in is placed where ansible-test
# looks first (~/.ansible/test/cache/get_pip_<pip version>.py).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/npu-fleet-sanity.XXXXXX)
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/npu/fleet"
mkdir -p "$dest"
# Only what git tracks or would track (untracked but not ignored) is tested.
(cd "$root" && git ls-files -z --cached --others --exclude-standard) \
  | (cd "$root" && xargs -0 cp --parents -t "$dest" 2>/dev/null || true)
(cd "$root" && git ls-files -z --cached --others --exclude-standard) | tr '\0' '\n' | while read -r f; do
  [ -e "$root/$f" ] && [ ! -e "$dest/$f" ] && { echo "sanity: could not stage $f" >&2; exit 1; }
  true
done

pip_version=$(python - <<'PY'
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(type("Python", (), {"version": "3.11"})())["pip"].replace(".", "_"))
PY
)
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
cp "$root/scripts/offline_get_pip.py" "$cache/get_pip_${pip_version}.py"

cd "$dest"
git init -q . && git add -A >/dev/null && git -c user.email=ci@localhost -c user.name=ci commit -qm sanity >/dev/null
ansible-test sanity --local --python 3.11 --requirements --color no "$@"
