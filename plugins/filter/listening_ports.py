# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: listening_ports
short_description: TCP ports a host listens on, from the output of C(ss -Hltn)
version_added: 0.1.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - Reads the output of C(ss -Hltn) and returns the sorted, unique TCP ports in state LISTEN, on any address.
  - Used to feed C(fleet_plan_used_ports), so that M(npu.fleet.fleet_plan) never gives a replica a host port that
    something else already holds.
positional: _input
options:
  _input:
    description: The standard output of C(ss -Hltn).
    type: str
    required: true
"""

EXAMPLES = r"""
---
- name: Read the listening ports
  ansible.builtin.command:
    argv: [ss, -Hltn]
  register: listening
  changed_when: false

- name: Give them to the planner
  ansible.builtin.set_fact:
    fleet_plan_used_ports: "{{ listening.stdout | npu.fleet.listening_ports }}"
"""

RETURN = r"""
_value:
  description: Sorted unique port numbers.
  type: list
  elements: int
  sample: [22, 18080]
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.npu.fleet.plugins.module_utils._listen_ports import ListenPortsError, parse_ss_listening


def listening_ports(text):
    """Thin wrapper over module_utils/_listen_ports.py."""
    try:
        return parse_ss_listening(text)
    except ListenPortsError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """npu.fleet.listening_ports"""

    def filters(self):
        return {"listening_ports": listening_ports}
