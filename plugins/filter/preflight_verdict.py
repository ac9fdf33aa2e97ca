# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: preflight_verdict
short_description: Judge an Ascend host from its NPU facts, listing every problem at once
version_added: 0.1.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - Takes the C(npu) facts returned by M(npu.fleet.npu_facts) (or nothing, when discovery failed) and what the Docker
    engine answered, and returns the C(npu_preflight) fact the planner reads.
  - Host-level faults (discovery failed, driver or CANN unreadable, NNAL of another release than CANN, a host path that
    containers mount is missing, no Docker engine, a required Ascend Docker Runtime absent) have severity V(error) and
    make RV(_value.ok) false.
  - Chip-level faults (health other than V(OK), processes npu.fleet did not start) have severity V(warning) and remove
    only that chip from RV(_value.usable_devices).
positional: _input
options:
  _input:
    description: The C(ansible_facts.npu) returned by M(npu.fleet.npu_facts); null when it failed.
    type: dict
    required: true
  npu_error:
    description: The failure message of M(npu.fleet.npu_facts), when it failed.
    type: str
  docker_error:
    description: What the Docker engine answered when it did not answer properly; null or empty when it did.
    type: str
  require_ascend_runtime:
    description: Whether a missing or unregistered Ascend Docker Runtime is an error.
    type: bool
    default: false
  reserved_devices:
    description: Device nodes (V(/dev/davinci3)) kept out of placement on this host.
    type: list
    elements: str
    default: []
  managed_pids:
    description: PIDs of NPU processes started by npu.fleet, which do not make a chip busy.
    type: list
    elements: int
    default: []
  containers:
    description:
      - The host's npu.fleet containers (M(community.docker.docker_host_info) with C(verbose_output)); the processes on the
        chips their labels name are npu.fleet's own and do not make a chip busy.
    type: list
    elements: dict
    default: []
seealso:
  - module: npu.fleet.npu_facts
"""

EXAMPLES = r"""
---
- name: Judge the host
  ansible.builtin.set_fact:
    npu_preflight: >-
      {{ discovery.ansible_facts.npu | default(none)
         | npu.fleet.preflight_verdict(npu_error=discovery.msg | default(none) if discovery is failed else none,
                                       require_ascend_runtime=true) }}
"""

RETURN = r"""
_value:
  description: The verdict for the host.
  type: dict
  contains:
    ok:
      description: True when no problem has severity V(error); the host may receive models.
      type: bool
      sample: false
    problems:
      description: Every problem found, host-level first, then per chip.
      type: list
      elements: dict
      contains:
        code:
          description: Stable identifier, for example V(FWKACLLIB_MISSING), V(NNAL_CANN_MISMATCH), V(CHIP_UNHEALTHY), V(CHIP_BUSY).
          type: str
        severity:
          description: V(error) (the host receives nothing) or V(warning) (a chip is left out, or information).
          type: str
        message:
          description: What is wrong, naming the chip or path.
          type: str
        fix:
          description: What to do about it.
          type: str
        device:
          description: The chip's device node, for chip-level problems.
          type: str
        path:
          description: The missing host path, for path problems.
          type: str
      sample:
        - code: FWKACLLIB_MISSING
          severity: error
          message: "/usr/local/Ascend/ascend-toolkit/latest/fwkacllib is missing: aclInit fails with error 107001 in containers that mount the host toolkit"
          fix: install the CANN toolkit with its fwkacllib component (Ascend-cann-toolkit --full)
    error_codes:
      description: Sorted codes of the V(error) problems.
      type: list
      elements: str
      sample: [FWKACLLIB_MISSING, NNAL_CANN_MISMATCH]
    warning_codes:
      description: Sorted codes of the V(warning) problems.
      type: list
      elements: str
      sample: [CHIP_UNHEALTHY]
    usable_devices:
      description: Device nodes the planner may use; empty when RV(_value.ok) is false.
      type: list
      elements: str
      sample: [/dev/davinci0, /dev/davinci1]
    chip_lines:
      description: One line per chip for people to read (device, name, health, memory, whether it will be used).
      type: list
      elements: str
      sample: ["/dev/davinci0  910B4     OK       HBM 2654/32768 MB  usable"]
    excluded_devices:
      description: Device nodes left out because they are unhealthy, busy or reserved.
      type: list
      elements: str
      sample: [/dev/davinci5]
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.npu.fleet.plugins.module_utils._preflight import preflight_verdict as _preflight_verdict
from ansible_collections.npu.fleet.plugins.module_utils._replica import ContainerSpecError, replicas_running


def preflight_verdict(
    npu, npu_error=None, docker_error=None, require_ascend_runtime=False, reserved_devices=None, managed_pids=None, containers=None
):
    """Thin wrapper: the decision lives in module_utils/_preflight.py."""
    if npu is not None and not isinstance(npu, dict):
        raise AnsibleFilterError("preflight_verdict expects the npu facts (a dict) or null, got %s" % type(npu).__name__)
    try:
        held = [device for replica in replicas_running("", containers or []) for device in replica["devices"]]
    except ContainerSpecError as exc:
        raise AnsibleFilterError(str(exc)) from exc
    return _preflight_verdict(
        npu=npu,
        npu_error=npu_error or None,
        docker_error=docker_error or None,
        require_ascend_runtime=bool(require_ascend_runtime),
        reserved_devices=reserved_devices or (),
        managed_pids=managed_pids or (),
        managed_devices=held,
    )


class FilterModule:
    """npu.fleet.preflight_verdict"""

    def filters(self):
        return {"preflight_verdict": preflight_verdict}
