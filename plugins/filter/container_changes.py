# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: container_changes
short_description: Which npu.fleet containers of a host a run replaces and which it removes
version_added: 0.1.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - Compares the containers a host should run (P(npu.fleet.container_specs#filter)) with the npu.fleet containers it has.
  - C(replace) lists the wanted containers that exist with other settings (another spec hash label).
  - C(remove) lists the containers the plan no longer wants on the host - a replica moved elsewhere always,
    one of a model no longer in the catalogue only with O(prune). Containers kept for a rollback (C(-previous)) are neither.
positional: _input
options:
  _input:
    description: The wanted containers, as P(npu.fleet.container_specs#filter) returns them.
    type: list
    elements: dict
    required: true
  containers:
    description: The host's npu.fleet containers, as M(community.docker.docker_host_info) lists them (C(Names), C(Labels)).
    type: list
    elements: dict
    required: true
  models:
    description: Names of the models in the catalogue.
    type: list
    elements: str
    required: true
  prune:
    description: Also remove containers of models that are no longer in the catalogue.
    type: bool
    default: false
"""

EXAMPLES = r"""
---
- name: What this run replaces and removes
  ansible.builtin.set_fact:
    changes: "{{ specs | npu.fleet.container_changes(host_info.containers, npu_fleet_models | map(attribute='name') | list, false) }}"
"""

RETURN = r"""
_value:
  description: C(replace) and C(remove), each a sorted list of container names.
  type: dict
"""

from ansible_collections.npu.fleet.plugins.module_utils._container_spec import container_changes as _container_changes


def container_changes(specs, containers, models, prune=False):
    """Thin wrapper over module_utils/_container_spec.py."""
    return _container_changes(specs, containers, models, prune)


class FilterModule:
    """npu.fleet.container_changes"""

    def filters(self):
        return {"container_changes": container_changes}
