"""The built collection carries the product and no test or demo equipment."""

import os
import subprocess
import sys
import tarfile

import yaml

from conftest import REPO_ROOT

EQUIPMENT = (
    "tests/",
    "molecule/",
    "benchmarks/",
    "scripts/",
    ".ci/",
    "inventory/demo/",
    ".venv/",
    ".cache/",
    ".ruff_cache/",
    "pyproject.toml",
)


def test_tarball_has_no_test_equipment(tmp_path):
    galaxy = os.path.join(os.path.dirname(sys.executable), "ansible-galaxy")
    subprocess.run([galaxy, "collection", "build", "--output-path", str(tmp_path), REPO_ROOT], check=True, capture_output=True, text=True)
    with open(os.path.join(REPO_ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        version = yaml.safe_load(handle)["version"]
    with tarfile.open(str(tmp_path / ("npu-fleet-%s.tar.gz" % version))) as tarball:
        names = tarball.getnames()
    leaked = [name for name in names if name.startswith(EQUIPMENT)]
    assert leaked == []
    for product in (
        "plugins/modules/npu_facts.py",
        "plugins/action/fleet_plan.py",
        "roles/preflight/tasks/main.yml",
        "playbooks/deploy_models.yml",
        "plugins/module_utils/_compat_matrix.json",
        "meta/runtime.yml",
    ):
        assert product in names, product
    assert not [name for name in names if "emulat" in name]
