#!/usr/bin/env bash
# Release the changelog for the version in galaxy.yml: CHANGELOG.rst and
# changelogs/changelog.yaml gain (or refresh) that release from the fragments
# in changelogs/fragments.
#
#   bash scripts/release-changelog.sh            # version from galaxy.yml
#   bash scripts/release-changelog.sh --date 2026-09-01
#
# Safe to run again while fragments are still being added for the same
# version: changelogs/config.yaml has keep_fragments: true, so the fragments
# stay where they are; --update-existing re-opens the release and
# --refresh-fragments re-reads the ones it already holds (an edited fragment
# is picked up), while new fragments are added to it. A fragment whose name an
# earlier release already holds is skipped (prevent_known_fragments), so name
# new fragments <issue>-<topic>.yml and never reuse a released name.
#
# Plugins are found through ansible-doc: run from the repo's venv.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

version=$(python3 -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')
keep=$(python3 -c 'import yaml; print(yaml.safe_load(open("changelogs/config.yaml")).get("keep_fragments", False))')
if [ "$keep" != "True" ]; then
  echo "release-changelog: changelogs/config.yaml has keep_fragments: false; this script would delete the fragments." >&2
  echo "release-changelog: run antsibull-changelog release yourself if that is meant." >&2
  exit 1
fi

antsibull-changelog lint
# "New Modules" / "New Plugins" list the plugins whose version_added is this
# version (read through ansible-doc; --reload-plugins drops the cached list).
antsibull-changelog release --version "$version" --update-existing \
  --refresh-fragments without-archives --reload-plugins "$@"
antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
# The plugin list was read afresh (--reload-plugins); its cache is of no further use.
rm -f changelogs/.plugin-cache.yaml
echo "release-changelog: $version written to CHANGELOG.rst and changelogs/changelog.yaml"
