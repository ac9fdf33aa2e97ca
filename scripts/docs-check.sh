#!/usr/bin/env bash
# Documentation check: lint the collection's docs (plugin and role docs, the
# guides in docs/docsite/) and build the docsite, failing on any broken
# reference (M(), P(), O(), RV(), :ansplugin:, :ansopt:, :ref:) or Sphinx warning.
#
#   bash scripts/docs-check.sh            # lint + build, output removed
#   DOCS_KEEP=/tmp/npu-fleet-docs bash scripts/docs-check.sh   # keep the site there
#
# Offline: only the collection, its dependency community.docker (and that one's
# dependency; from the `ansible` package in the venv) and ansible.builtin are scanned - with every
# collection of the `ansible` package ansible-doc takes minutes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${DOCS_KEEP:-$(mktemp -d /tmp/npu-fleet-docs.XXXXXX)}
[ -n "${DOCS_KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
rm -rf "$work/collections" "$work/site"
dest="$work/collections/ansible_collections/npu/fleet"
mkdir -p "$dest" "$work/collections/ansible_collections/community"

# What git tracks or would track (untracked but not ignored), as in scripts/sanity.sh.
(cd "$root" && git ls-files -z --cached --others --exclude-standard) \
  | (cd "$root" && xargs -0 cp --parents -t "$dest" 2>/dev/null || true)
# community.docker and what it depends on, from the venv's `ansible` package.
for name in docker library_inventory_filtering_v1; do
  path=$(python3 -c "import ansible_collections.community.$name as c; print(list(c.__path__)[0])")
  ln -s "$path" "$work/collections/ansible_collections/community/$name"
done

export ANSIBLE_COLLECTIONS_PATH="$work/collections"
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
export PYTHONWARNINGS=ignore::DeprecationWarning

echo "==> antsibull-docs lint-collection-docs"
# "all" is every collection on the path above: this one and its dependencies.
antsibull-docs lint-collection-docs --plugin-docs --check-extra-docs-refs \
  --validate-collection-refs all --disallow-unknown-collection-refs "$dest"

echo "==> docsite build"
mkdir -m 0700 "$work/site"  # sphinx-init wants a directory only its owner can write
antsibull-docs sphinx-init --use-current --fail-on-error --dest-dir "$work/site" \
  --project npu.fleet --title "npu.fleet" npu.fleet
cd "$work/site"
# Offline there is no intersphinx (its inventories are not fetched): a reference to a page outside this collection
# (the Ansible docs' common_return_values, a community.docker module) is shown as
# plain text; the lint above already checked that the plugins it names exist.
# A reference into npu.fleet that resolves nowhere still fails the build.
cat >> conf.py <<'PY'

intersphinx_mapping = {}

def _outside_this_collection(app, env, node, contnode):
    target = node.get("reftarget", "")
    if node.get("refdomain") == "std" and node.get("reftype") == "ref" and not target.startswith("ansible_collections.npu.fleet."):
        return contnode
    return None


def setup(app):
    app.connect("missing-reference", _outside_this_collection)
PY
antsibull-docs collection --use-current --fail-on-error --dest-dir rst npu.fleet
# -W: every Sphinx warning (an unknown label, a broken toctree, bad RST) fails the build.
sphinx-build -M html rst build -c . -W --keep-going -q
echo "==> docs check passed${DOCS_KEEP:+; site in $work/site/build/html}"
