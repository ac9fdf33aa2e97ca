# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: rollout_steps
short_description: What to do after the health probe - roll back, drop kept copies, report
version_added: 0.1.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - From the host's deployed replicas (P(npu.fleet.replicas_deployed#filter)) and the probe results
    (M(npu.fleet.openai_probe) with C(replicas)), decides which failed replacements get their previous container back,
    which C(-previous) copies are no longer needed, which replicas failed, and the per-replica results for the report.
positional: _input
options:
  _input:
    description: The deployed replicas of the host.
    type: list
    elements: dict
    required: true
  probes:
    description: The C(replicas) M(npu.fleet.openai_probe) returned for them (each with the container C(name)).
    type: list
    elements: dict
    required: true
  rollback:
    description: Whether failed replacements go back to their previous container.
    type: bool
    default: true
"""

EXAMPLES = r"""
---
- name: Decide the rollout steps
  ansible.builtin.set_fact:
    steps: "{{ serve_deployed | npu.fleet.rollout_steps(probes.replicas, true) }}"
"""

RETURN = r"""
_value:
  description: >-
    C(restore) (dicts with C(name) and C(previous)), C(drop_previous) (names), C(retire) (dicts with C(name),
    C(previous), C(model) and C(port): healthy surge successors whose previous container still serves, to be drained
    at the gateways before it is removed), C(failed) (names) and C(results) (per replica - C(name), C(model),
    C(replica), C(port), C(image), C(healthy), C(stage), C(message), C(ttft_ms), C(total_ms), C(ready_after_s),
    C(state), C(log_tail), C(diagnosis), C(rolled_back), C(surge)).
  type: dict
"""

from ansible_collections.npu.fleet.plugins.module_utils._replica import rollout_steps as _rollout_steps


def rollout_steps(deployed, probes, rollback=True):
    """Thin wrapper over module_utils/_replica.py."""
    return _rollout_steps(deployed, probes, rollback)


class FilterModule:
    """npu.fleet.rollout_steps"""

    def filters(self):
        return {"rollout_steps": rollout_steps}
