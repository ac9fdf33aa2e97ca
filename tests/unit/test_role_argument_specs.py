"""Every role's meta/argument_specs.yml and defaults/main.yml describe the same variables.

ansible-core does not apply argument_specs defaults (the role reads
defaults/main.yml), so the two must agree: a variable documented but not
defaulted is undefined at run time, one defaulted but not documented is
never validated.
"""

import os

import pytest
import yaml

from conftest import REPO_ROOT

ROLES_DIR = os.path.join(REPO_ROOT, "roles")
ROLES = sorted(name for name in os.listdir(ROLES_DIR) if os.path.isfile(os.path.join(ROLES_DIR, name, "tasks", "main.yml")))


def load(role, *parts):
    with open(os.path.join(ROLES_DIR, role, *parts), encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def test_there_are_roles_to_check():
    assert "preflight" in ROLES and "image_select" in ROLES


@pytest.mark.parametrize("role", ROLES)
def test_documented_variables_equal_defaults(role):
    options = load(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    defaults = load(role, "defaults", "main.yml")
    assert sorted(options) == sorted(defaults)


@pytest.mark.parametrize("role", ROLES)
def test_variables_carry_the_role_prefix(role):
    for name in load(role, "defaults", "main.yml"):
        assert name.startswith(role + "_"), name


@pytest.mark.parametrize("role", ROLES)
def test_entry_point_has_both_descriptions(role):
    main = load(role, "meta", "argument_specs.yml")["argument_specs"]["main"]
    assert main.get("short_description") and main.get("description")
