# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: model_sources_here
short_description: The models the plan puts on a host, each with how its weights get there
version_added: 0.3.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - Reads the plan's placements of O(host) and the validated catalogue and returns each planned model once with its
    source - already on the host, copied from the controller, downloaded from a hub (with the commit its profile
    resolved and the files to fetch) - and its directory on the host.
  - Weights go only to the hosts the plan puts replicas on.
positional: _input, catalogue, host
options:
  _input:
    description: The plan (M(npu.fleet.fleet_plan)'s C(plan)).
    type: dict
    required: true
  catalogue:
    description: The validated catalogue (C(npu_fleet_catalogue)).
    type: list
    elements: dict
    required: true
  host:
    description: Inventory name of the host; omitted, every planned model of the fleet.
    type: str
"""

EXAMPLES = r"""
---
- name: What this host needs
  ansible.builtin.set_fact:
    here: "{{ plan_models_result.plan | npu.fleet.model_sources_here(npu_fleet_catalogue, inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description:
    - One dict per model, sorted by name, with C(name), C(type) (V(host), V(controller), V(hub)), C(host_path), and
      C(controller_path) (controller) or C(hub) (C(hub), C(repo), C(revision), C(endpoint), C(allow_patterns),
      C(token_var), C(files), C(bytes)).
  type: list
  elements: dict
"""

from ansible_collections.npu.fleet.plugins.module_utils._model_sources import sources_here


def model_sources_here(plan, catalogue, host=None):
    """Thin wrapper over module_utils/_model_sources.py."""
    return sources_here(plan, catalogue, host)


class FilterModule:
    """npu.fleet.model_sources_here"""

    def filters(self):
        return {"model_sources_here": model_sources_here}
