# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: replica_statuses
short_description: Judge every replica of a host - healthy, slow, hung, error, crashed, chip_alarm, drifted or missing
version_added: 0.2.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - One record per container spec the plan puts on the host, and one per npu.fleet container it runs outside the
    plan, with the worst of the conditions found as C(status) and every one in C(conditions).
  - V(missing) - planned, no container; V(crashed) - the container is restarting, exited or stopped; V(hung) -
    C(/health) answers but a one-token generation does not finish in time, or nothing answers while the container
    runs; V(error) - the generation returned an error; V(chip_alarm) - a chip under it is not V(OK) in C(npu-smi);
    V(drifted) - it runs another image, C(max_model_len), port, chips, key or options than the catalogue gives now,
    or runs outside the plan; V(slow) - its first token took longer than O(slow_ttft_ms).
  - The records carry the keys of a health probe result, so M(npu.fleet.fleet_report) renders them (O(npu.fleet.fleet_report#module:kind=status)).
positional: _input
options:
  _input:
    description: The host's container specs (P(npu.fleet.replica_specs#filter), without surge).
    type: list
    elements: dict
    required: true
  host:
    description: Inventory name of the host.
    type: str
    required: true
  changes:
    description: P(npu.fleet.replica_changes#filter) of those specs against O(containers) (with C(prune), so every container outside the plan is listed).
    type: dict
    required: true
  containers:
    description: The host's npu.fleet containers, as M(community.docker.docker_host_info) lists them with C(verbose_output=true).
    type: list
    elements: dict
    required: true
  probes:
    description: The C(replicas) results of M(npu.fleet.openai_probe) over P(npu.fleet.status_targets#filter).
    type: list
    elements: dict
    default: []
  chips:
    description: The host's chips from the C(npu) facts (C(device), C(health)).
    type: list
    elements: dict
    default: []
  slow_ttft_ms:
    description: Time to first token above which a healthy replica is V(slow); V(0) never.
    type: int
    default: 0
"""

EXAMPLES = r"""
---
- name: Judge the replicas of this host
  ansible.builtin.set_fact:
    statuses: >-
      {{ specs | npu.fleet.replica_statuses(host=inventory_hostname, changes=changes, containers=host_info.containers,
                                            probes=probe.replicas, chips=ansible_facts.npu.chips, slow_ttft_ms=2000) }}
"""

RETURN = r"""
_value:
  description:
    - Records with C(host), C(name), C(model), C(replica), C(port), C(devices), C(image), C(status), C(healthy),
      C(conditions) (each C(status) and C(reason)), C(message), C(stage), C(ttft_ms), C(diagnosis), C(state), and
      C(unplanned) for a container outside the plan.
  type: list
  elements: dict
"""

from ansible_collections.npu.fleet.plugins.module_utils._fleet_status import replica_statuses as _replica_statuses


def replica_statuses(specs, host, changes, containers, probes=None, chips=None, slow_ttft_ms=0):
    """Thin wrapper over module_utils/_fleet_status.py."""
    return _replica_statuses(host, specs, changes, containers, probes or [], chips or [], int(slow_ttft_ms or 0))


class FilterModule:
    """npu.fleet.replica_statuses"""

    def filters(self):
        return {"replica_statuses": replica_statuses}
