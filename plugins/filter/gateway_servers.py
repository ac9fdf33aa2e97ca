# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: gateway_servers
short_description: The gateway backend and server names of replicas
version_added: 0.2.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - Names each replica (C(model), C(name)) the way the gateway configuration (M(npu.fleet.gateway_layout)) does, so
    M(npu.fleet.gateway_server) can drain it and put it back. Replicas of models not in the catalogue are left out.
positional: _input
options:
  _input:
    description: Replicas, each with C(model) and C(name) (the container name).
    type: list
    elements: dict
    required: true
  models:
    description: The validated catalogue (C(npu_fleet_catalogue)).
    type: list
    elements: dict
    required: true
  successors:
    description: Also give each replica's C(port) (surge successors, for M(npu.fleet.gateway_successor)).
    type: bool
    default: false
"""

EXAMPLES = r"""
---
- name: Drain a replica at the gateway
  npu.fleet.gateway_server:
    servers: "{{ [{'model': 'qwen3-8b', 'name': 'npu-fleet-qwen3-8b-0'}] | npu.fleet.gateway_servers(npu_fleet_catalogue) }}"
    state: drain
"""

RETURN = r"""
_value:
  description: One dict per replica with C(backend) and C(server) (and C(port) with O(successors)).
  type: list
  elements: dict
"""

from ansible_collections.npu.fleet.plugins.module_utils._gateway_fleet import gateway_servers as _gateway_servers


def gateway_servers(replicas, models, successors=False):
    """Thin wrapper over module_utils/_gateway_fleet.py."""
    return _gateway_servers(replicas, models, bool(successors))


class FilterModule:
    """npu.fleet.gateway_servers"""

    def filters(self):
        return {"gateway_servers": gateway_servers}
