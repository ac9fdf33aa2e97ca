# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: undeploy_selection
short_description: The npu.fleet containers of the selected models on a host, and the gateway servers to drain first
version_added: 0.2.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - Selects the containers that carry C(io.npu-fleet.managed=true) and a model label (the serve role sets both) and
    belong to one of O(models), or to any model with O(remove_all). A container npu.fleet did not start is never
    selected, whatever its name. C(-previous) copies of a rollback are selected with their model.
  - Fails with the fix when neither or both of O(models) and O(remove_all) are given, or O(models) is not a list of names.
positional: _input
options:
  _input:
    description: The host's containers, as M(community.docker.docker_host_info) lists them with C(verbose_output=true).
    type: list
    elements: dict
    required: true
  models:
    description: Model names to remove (the playbook's C(undeploy_models)).
    type: list
    elements: str
  remove_all:
    description: Every npu.fleet model (the playbook's C(undeploy_all)).
    type: bool
    default: false
"""

EXAMPLES = r"""
---
- name: Select the containers of qwen3-8b
  ansible.builtin.set_fact:
    selection: "{{ host_info.containers | npu.fleet.undeploy_selection(models=['qwen3-8b']) }}"
"""

RETURN = r"""
_value:
  description:
    - C(remove) - containers to remove (C(name), C(model), C(replica), C(port), C(state)); C(servers) - the gateway
      backend and server of each replica (for M(npu.fleet.gateway_server)); C(models) - the selected models found.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.npu.fleet.plugins.module_utils._undeploy import UndeployError
from ansible_collections.npu.fleet.plugins.module_utils._undeploy import undeploy_selection as _undeploy_selection


def undeploy_selection(containers, models=None, remove_all=False):
    """Thin wrapper over module_utils/_undeploy.py."""
    try:
        return _undeploy_selection(containers, models, remove_all)
    except UndeployError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """npu.fleet.undeploy_selection"""

    def filters(self):
        return {"undeploy_selection": undeploy_selection}
