# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: serve_current
short_description: What runs on a host now, read back from the labels of its npu.fleet containers
version_added: 0.1.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - Reads the C(io.npu-fleet.*) labels the serve role puts on every container and returns the entries
    M(npu.fleet.fleet_plan) takes as C(current), so a re-plan keeps what runs where it is.
  - Containers without those labels are ignored; labels that do not parse are an error naming the container.
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
- name: Containers on the host
  community.docker.docker_host_info:
    containers: true
    containers_all: true
    containers_filters:
      label: io.npu-fleet.managed=true
    verbose_output: true
  register: host_info

- name: What runs now
  ansible.builtin.set_fact:
    fleet_plan_current: "{{ host_info.containers | npu.fleet.serve_current(host=inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description: Entries with C(model), C(replica), C(host), C(devices) and C(port), sorted by model and replica.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.npu.fleet.plugins.module_utils._container_spec import ContainerSpecError, current_from_containers


def serve_current(containers, host):
    """Thin wrapper over module_utils/_container_spec.py."""
    try:
        return current_from_containers(host, containers)
    except ContainerSpecError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """npu.fleet.serve_current"""

    def filters(self):
        return {"serve_current": serve_current}
