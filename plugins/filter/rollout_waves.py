# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: rollout_waves
short_description: The fleet's replacements in waves - at most one replica of each model per wave
version_added: 0.2.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - From each host's P(npu.fleet.replica_changes#filter), orders every replacement of the fleet into waves so that
    a model's replicas are drained, stopped and replaced one at a time (by replica number, whatever their host)
    while its other replicas keep serving through the gateway. Different models roll side by side.
positional: _input
options:
  _input:
    description: A mapping of host name to that host's P(npu.fleet.replica_changes#filter) result.
    type: dict
    required: true
"""

EXAMPLES = r"""
---
- name: Order the replacements of the fleet
  ansible.builtin.set_fact:
    waves: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'changes'))) | npu.fleet.rollout_waves }}"
"""

RETURN = r"""
_value:
  description: A list of waves, each a list of dicts with C(host), C(name), C(previous), C(model) and C(replica).
  type: list
  elements: list
"""

from ansible_collections.npu.fleet.plugins.module_utils._replica import rollout_waves as _rollout_waves


def rollout_waves(changes_by_host):
    """Thin wrapper over module_utils/_replica.py."""
    return _rollout_waves(changes_by_host)


class FilterModule:
    """npu.fleet.rollout_waves"""

    def filters(self):
        return {"rollout_waves": rollout_waves}
