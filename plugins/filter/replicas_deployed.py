# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: replicas_deployed
short_description: The record of what a host runs after the serve role
version_added: 0.1.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - One record per container of the host - C(name), C(model), C(replica), C(port), C(devices), C(backend), C(image),
    C(max_model_len), C(changed), C(previous) (the name of the copy kept for a rollback, or null) and C(surge)
    (whether that copy still serves beside the new container) - read from the
    specs' labels, so the probe and the report never parse labels themselves.
positional: _input
options:
  _input:
    description: The host's containers, as P(npu.fleet.replica_specs#filter) returns them.
    type: list
    elements: dict
    required: true
  started:
    description: The C(results) of the M(community.docker.docker_container) loop over them.
    type: list
    elements: dict
    required: true
  replaced:
    description: Names of the containers whose earlier copy is kept as C(-previous) in this run.
    type: list
    elements: str
    required: true
  surged:
    description:
      - The C(set_aside) entries of P(npu.fleet.replica_changes#filter) with C(surge) - those of O(replaced) whose earlier
        copy still serves beside the new container - with C(from_port) and C(from_devices), where it runs.
    type: list
    elements: dict
    default: []
  replacements:
    description:
      - The C(replace) entries of P(npu.fleet.replica_changes#filter). One that O(started) does not hold (its model's
        rollout stopped at an earlier replica) still runs its earlier container, so its record gets that container's port,
        devices, image and max_model_len (C(from_port), C(from_devices), C(from_image), C(from_max_model_len)).
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
---
- name: Record what runs on this host
  ansible.builtin.set_fact:
    serve_deployed: "{{ specs | npu.fleet.replicas_deployed(started.results, changes.replace | map(attribute='name')) }}"
"""

RETURN = r"""
_value:
  description: One record per container, in the order of the input.
  type: list
  elements: dict
"""

from ansible_collections.npu.fleet.plugins.module_utils._replica import replicas_deployed as _replicas_deployed


def replicas_deployed(specs, started, replaced, surged=None, replacements=None):
    """Thin wrapper over module_utils/_replica.py."""
    return _replicas_deployed(specs, started, list(replaced or []), list(surged or []), list(replacements or []))


class FilterModule:
    """npu.fleet.replicas_deployed"""

    def filters(self):
        return {"replicas_deployed": replicas_deployed}
