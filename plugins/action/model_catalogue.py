# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of npu.fleet.model_catalogue: validate the catalogue once and profile it on the controller.

The schema and its checks live in plugins/module_utils/_catalogue.py, the
profile arithmetic in _model_profile.py; this plugin only moves values in
and out. Documentation: plugins/modules/model_catalogue.py.
"""

from __future__ import annotations

import os

from ansible.plugins.action import ActionBase

from ansible_collections.npu.fleet.plugins.module_utils._catalogue import (
    DEFAULT_MODEL_ROOT,
    CatalogueError,
    catalogue_warnings,
    validate_catalogue,
    with_host_paths,
)
from ansible_collections.npu.fleet.plugins.module_utils._catalogue_profiles import merge_profiles, missing_profiles, profile_catalogue
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import profile_model
from ansible_collections.npu.fleet.plugins.plugin_utils._plain import plain

ARGUMENT_SPEC = {
    "models": {"type": "raw", "required": True},
    "profiles": {"type": "list", "elements": "dict", "default": []},
    "fact": {"type": "str", "default": "npu_fleet_catalogue"},
    "model_root": {"type": "str", "default": DEFAULT_MODEL_ROOT},
}


class ActionModule(ActionBase):
    """Validates on the controller; no connection, no module transfer."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        unused, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        hosts = [str(name) for name in (task_vars.get("groups") or {}).get("npu_hosts") or []]
        hostvars = task_vars.get("hostvars") or {}
        labels = dict((name, plain((hostvars[name] if name in hostvars else {}).get("fleet_plan_labels") or {})) for name in hosts)
        try:
            catalogue = with_host_paths(validate_catalogue(plain(args["models"])), args["model_root"])
            if args["profiles"]:
                catalogue = merge_profiles(catalogue, plain(args["profiles"]))
                directory_jobs, hub_jobs = [], []
                missing = missing_profiles(catalogue)
                if missing:
                    raise CatalogueError(missing)
            else:
                catalogue, directory_jobs, hub_jobs = profile_catalogue(catalogue, hosts, labels, profile_model, os.path.isdir)
        except CatalogueError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        warnings = catalogue_warnings(catalogue)
        if warnings:
            result["warnings"] = warnings
        result.update(
            changed=False,
            catalogue=catalogue,
            remote_profiles=directory_jobs,
            hub_profiles=hub_jobs,
            ansible_facts={args["fact"]: catalogue},
        )
        return result
