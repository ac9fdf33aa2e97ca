#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: model_catalogue
short_description: Validate the model catalogue once and profile its models on the controller
version_added: 0.1.0
description:
  - Checks every entry of the catalogue (C(npu_fleet_models)) against the one catalogue schema (C(docs/catalogue.md)) -
    field names, types, allowed values, and the rules between fields - and fails with one message naming the entry, the
    field and the fix. Values that arrive as text (extra vars, survey answers) are turned into their types.
  - Profiles each model given by C(path) on the controller (config and safetensors headers only, as M(npu.fleet.model_profile))
    and adds the result as C(profile). Entries with C(profile_host) are returned in RV(remote_profiles) for a
    M(npu.fleet.model_profile) task delegated to that host; a second call with O(profiles) merges those results.
  - Sets the fact named by O(fact) to the validated catalogue; every later stage (image selection, the planner, the serve role)
    reads that fact and never re-validates the raw list.
  - Runs on the controller as an action plugin; never connects to a host.
author:
  - npu.fleet engineers (@npu-fleet)
options:
  models:
    description: The catalogue, a list of model entries (C(npu_fleet_models)).
    type: raw
    required: true
  profiles:
    description: Registered C(results) of M(npu.fleet.model_profile) looped over RV(remote_profiles) (each with the job as C(item)).
    type: list
    elements: dict
    default: []
  fact:
    description: Name of the fact that receives the validated catalogue.
    type: str
    default: npu_fleet_catalogue
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
seealso:
  - module: npu.fleet.model_profile
  - module: npu.fleet.fleet_plan
"""

EXAMPLES = r"""
---
- name: Validate the catalogue and profile it
  npu.fleet.model_catalogue:
    models: "{{ npu_fleet_models }}"
  run_once: true
  register: catalogue

- name: Profile models that live on a storage host
  npu.fleet.model_profile:
    path: "{{ item.path }}"
  delegate_to: "{{ item.host }}"
  run_once: true
  loop: "{{ catalogue.remote_profiles }}"
  register: remote

- name: Merge those profiles
  npu.fleet.model_catalogue:
    models: "{{ npu_fleet_catalogue }}"
    profiles: "{{ remote.results }}"
  run_once: true
  when: catalogue.remote_profiles | length > 0
"""

RETURN = r"""
catalogue:
  description: The validated entries, values coerced to their types, each with C(profile) when it could be profiled here.
  returned: success
  type: list
  elements: dict
remote_profiles:
  description: Models to profile on their C(profile_host) - C(name), C(path), C(host).
  returned: success
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    """Only reached without the action plugin (the module copied and run by hand): fail and say why."""
    module = AnsibleModule(
        argument_spec={
            "models": {"type": "raw", "required": True},
            "profiles": {"type": "list", "elements": "dict", "default": []},
            "fact": {"type": "str", "default": "npu_fleet_catalogue"},
        },
        supports_check_mode=True,
    )
    module.fail_json(
        msg="npu.fleet.model_catalogue runs on the controller as an action plugin; call it as a task "
        "(with run_once: true), not as a module on a host"
    )


if __name__ == "__main__":
    main()
