# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: rollout_wave
short_description: One wave of a rolling update, without the models whose rollout already failed
version_added: 0.2.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - Picks wave O(index) of P(npu.fleet.rollout_waves#filter). A model whose replacement failed in an earlier wave
    is left out (its remaining replicas stay on their previous containers). With O(host), only that host's replicas.
positional: _input
options:
  _input:
    description: The waves P(npu.fleet.rollout_waves#filter) returned.
    type: list
    elements: list
    required: true
  index:
    description: Which wave, from 0.
    type: int
    required: true
  failed_models:
    description: Models whose rollout failed in an earlier wave.
    type: list
    elements: str
    default: []
  host:
    description: Only this host's replicas (what it stops and starts); omitted, the whole wave (what every gateway drains).
    type: str
"""

EXAMPLES = r"""
---
- name: This host's share of wave 0
  ansible.builtin.set_fact:
    here: "{{ waves | npu.fleet.rollout_wave(0, failed_models=[], host=inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description: The replicas of the wave, each a dict with C(host), C(name), C(previous), C(model) and C(replica).
  type: list
  elements: dict
"""

from ansible_collections.npu.fleet.plugins.module_utils._replica import rollout_wave as _rollout_wave


def rollout_wave(waves, index, failed_models=None, host=None):
    """Thin wrapper over module_utils/_replica.py."""
    return _rollout_wave(waves, index, failed_models or [], host)


class FilterModule:
    """npu.fleet.rollout_wave"""

    def filters(self):
        return {"rollout_wave": rollout_wave}
