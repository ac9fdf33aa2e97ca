# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of npu.fleet.model_catalogue: validate the catalogue once and profile it on the controller.

The schema and its checks live in plugins/module_utils/_catalogue.py, the
profile arithmetic in _model_profile.py; this plugin only moves values in
and out. Documentation: plugins/modules/model_catalogue.py.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.plugins.action import ActionBase

from ansible_collections.npu.fleet.plugins.module_utils._catalogue import CatalogueError, validate_catalogue
from ansible_collections.npu.fleet.plugins.plugin_utils._plain import plain
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import ModelProfileError, profile_model

ARGUMENT_SPEC = {
    "models": {"type": "raw", "required": True},
    "profiles": {"type": "list", "elements": "dict", "default": []},
    "fact": {"type": "str", "default": "npu_fleet_catalogue"},
}


def _remote_profiles(results):
    """Model name -> profile from the registered results of npu.fleet.model_profile run on profile hosts."""
    found = {}
    for result in results:
        item = result.get("item") or {}
        if isinstance(item, Mapping) and item.get("name") and isinstance(result.get("profile"), Mapping):
            found[str(item["name"])] = plain(result["profile"])
    return found


def profile_catalogue(catalogue, remote):
    """Fill each entry's profile: given, profiled on its profile_host (``remote``), or read here from ``path``.

    Returns the catalogue and the jobs left for profile hosts ({name, path, host}).
    """
    jobs = []
    for entry in catalogue:
        if "profile" in entry:
            continue
        if entry["name"] in remote:
            entry["profile"] = remote[entry["name"]]
        elif entry.get("profile_host"):
            jobs.append({"name": entry["name"], "path": entry["path"], "host": entry["profile_host"]})
        else:
            try:
                entry["profile"] = profile_model(entry["path"])
            except ModelProfileError as exc:
                raise CatalogueError(
                    "model %s: cannot profile path %s on the controller: %s; fix the checkpoint, or set "
                    "profile_host to the host that holds it" % (entry["name"], entry["path"], exc)
                ) from None
    return catalogue, jobs


class ActionModule(ActionBase):
    """Validates on the controller; no connection, no module transfer."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        unused, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            catalogue = validate_catalogue(plain(args["models"]))
            catalogue, jobs = profile_catalogue(catalogue, _remote_profiles(plain(args["profiles"])))
        except CatalogueError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        result.update(changed=False, catalogue=catalogue, remote_profiles=jobs, ansible_facts={args["fact"]: catalogue})
        return result
