# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: undeploy_summary
short_description: What an undeploy removed across the fleet, and the models asked for that run nowhere
version_added: 0.2.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - Joins the P(npu.fleet.undeploy_selection#filter) of every host.
positional: _input
options:
  _input:
    description: Host name -> that host's P(npu.fleet.undeploy_selection#filter).
    type: dict
    required: true
  models:
    description: The model names asked for (C(undeploy_models)).
    type: list
    elements: str
  remove_all:
    description: Whether every npu.fleet model was asked for (C(undeploy_all)).
    type: bool
    default: false
"""

EXAMPLES = r"""
---
- name: Sum up
  ansible.builtin.set_fact:
    summary: "{{ dict(hosts | zip(hosts | map('extract', hostvars, 'selection'))) | npu.fleet.undeploy_summary(models=['qwen3-8b']) }}"
"""

RETURN = r"""
_value:
  description:
    - C(removed) - host -> container names; C(containers) - how many; C(models) - the models found; C(not_found) - models
      asked for that run on no host (a typo, or already removed).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.npu.fleet.plugins.module_utils._undeploy import UndeployError
from ansible_collections.npu.fleet.plugins.module_utils._undeploy import undeploy_summary as _undeploy_summary


def undeploy_summary(found_by_host, models=None, remove_all=False):
    """Thin wrapper over module_utils/_undeploy.py."""
    try:
        return _undeploy_summary(found_by_host, models, remove_all)
    except UndeployError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """npu.fleet.undeploy_summary"""

    def filters(self):
        return {"undeploy_summary": undeploy_summary}
