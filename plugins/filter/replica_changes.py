# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: replica_changes
short_description: Which npu.fleet containers of a host a run keeps, replaces and removes
version_added: 0.1.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - Compares the containers a host should run (P(npu.fleet.replica_specs#filter)) with the npu.fleet containers it has.
  - C(keep) lists the wanted containers that run with the same settings (spec hash and API key digest labels); nothing is
    done to them.
  - C(replace) lists C(name) and C(previous) (the name the old container is kept under, stopped, until the new one is
    healthy) of the wanted containers that exist with other settings.
  - C(remove) lists the containers the plan no longer wants on the host - a replica moved elsewhere always,
    one of a model no longer in the catalogue only with O(prune). C(-previous) copies are none of these.
  - C(start) lists the wanted containers M(community.docker.docker_container) must create, replace or start again (all but
    C(keep)); C(start_models) their models.
positional: _input
options:
  _input:
    description: The wanted containers, as P(npu.fleet.replica_specs#filter) returns them.
    type: list
    elements: dict
    required: true
  containers:
    description: The host's npu.fleet containers, as M(community.docker.docker_host_info) lists them with C(verbose_output)
      (C(Names), C(Labels), C(State)).
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
  rollback:
    description:
      - Set each replaced container aside (C(set_aside), renamed, and stopped unless C(surge)) until its successor is
        healthy. C(surge) marks a replacement whose successor has none of its chips and another port, so the old one
        keeps serving beside it; only with rollback.
    type: bool
    default: false
"""

EXAMPLES = r"""
---
- name: What this run keeps, replaces and removes
  ansible.builtin.set_fact:
    changes: "{{ specs | npu.fleet.replica_changes(host_info.containers, npu_fleet_catalogue | map(attribute='name') | list) }}"
"""

RETURN = r"""
_value:
  description: >-
    C(keep) (names), C(replace) (dicts with C(name), C(previous), C(model), C(replica), C(surge), C(port) and
    where the container being replaced runs - C(from_port), C(from_devices), C(from_image), C(from_max_model_len)),
    C(remove) (names) and C(remove_replicas), C(start) (names), C(start_now) and C(start_models), each sorted, and
    C(set_aside) (the C(replace) entries when O(rollback), else empty).
  type: dict
"""

from ansible_collections.npu.fleet.plugins.module_utils._replica import replica_changes as _replica_changes


def replica_changes(specs, containers, models, prune=False, rollback=False):
    """Thin wrapper over module_utils/_replica.py."""
    return _replica_changes(specs, containers, models, prune, rollback)


class FilterModule:
    """npu.fleet.replica_changes"""

    def filters(self):
        return {"replica_changes": replica_changes}
