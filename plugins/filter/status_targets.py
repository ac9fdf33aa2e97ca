# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: status_targets
short_description: The replicas a status run probes - every running npu.fleet container, where it really serves
version_added: 0.2.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - Reads the C(io.npu-fleet.*) labels of the running npu.fleet containers of a host and returns the entries
    M(npu.fleet.openai_probe) takes as O(npu.fleet.openai_probe#module:replicas).
  - The port and C(max_model_len) come from each container's labels, not from the plan, so a drifted replica is
    probed where it serves. Stopped containers and C(-previous) copies are left out.
positional: _input
options:
  _input:
    description: Containers as M(community.docker.docker_host_info) lists them with C(verbose_output=true).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
---
- name: Probe what runs
  npu.fleet.openai_probe:
    replicas: "{{ host_info.containers | npu.fleet.status_targets }}"
    max_tokens: 1
    timeout: 30
"""

RETURN = r"""
_value:
  description: Entries with C(name), C(model), C(port) and C(max_model_len), sorted by name.
  type: list
  elements: dict
"""

from ansible_collections.npu.fleet.plugins.module_utils._fleet_status import status_targets as _status_targets


def status_targets(containers):
    """Thin wrapper over module_utils/_fleet_status.py."""
    return _status_targets(containers)


class FilterModule:
    """npu.fleet.status_targets"""

    def filters(self):
        return {"status_targets": status_targets}
