"""The conftest must make the working tree importable under its FQCN."""

import os

import ansible_collections.npu.fleet as fleet_package

from conftest import REPO_ROOT


def test_collection_resolves_to_working_tree():
    assert os.path.realpath(os.path.dirname(fleet_package.__path__[0] + "/")) == REPO_ROOT
