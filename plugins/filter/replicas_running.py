# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: replicas_running
short_description: What runs on a host now, read back from the labels of its npu.fleet containers
version_added: 0.1.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - Reads the C(io.npu-fleet.*) labels the serve role puts on every container and returns the entries
    M(npu.fleet.fleet_plan) takes as C(current), so a re-plan keeps what runs where it is.
  - Containers without those labels, and C(-previous) copies kept for a rollback, are ignored; labels that do not
    parse are an error naming the container.
positional: _input
options:
  _input:
    description: Containers, each a dict with C(Labels) (or C(Config.Labels)) and C(Names) / C(Name), as
      M(community.docker.docker_host_info) lists them with C(verbose_output=true).
    type: list
    elements: dict
    required: true
  host:
    description: Inventory name of the host.
    type: str
    required: true
"""

EXAMPLES = r"""
---
- name: What runs now
  ansible.builtin.set_fact:
    fleet_plan_current: "{{ host_info.containers | npu.fleet.replicas_running(host=inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description: Entries with C(model), C(replica), C(host), C(devices) and C(port), sorted by model and replica.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.npu.fleet.plugins.module_utils._replica import ContainerSpecError
from ansible_collections.npu.fleet.plugins.module_utils._replica import replicas_running as _replicas_running


def replicas_running(containers, host):
    """Thin wrapper over module_utils/_replica.py."""
    try:
        return _replicas_running(host, containers)
    except ContainerSpecError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """npu.fleet.replicas_running"""

    def filters(self):
        return {"replicas_running": replicas_running}
