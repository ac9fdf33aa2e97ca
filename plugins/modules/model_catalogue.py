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
  - Profiles on the controller each model whose checkpoint the controller holds (a C(controller) source, or a C(host)
    source whose C(path) exists here; config and safetensors headers only, as M(npu.fleet.model_profile)) and adds the
    result as C(profile).
  - Returns jobs for the others - RV(remote_profiles) for a M(npu.fleet.model_profile) task delegated to a host that holds
    the checkpoint (C(profile_host), else the first host of C(npu_hosts) that may run the model), RV(hub_profiles) for a
    M(npu.fleet.hub_profile) task (a C(hub) source, read on the hub before anything is downloaded); a second call with
    O(profiles) merges those results (a hub profile keeps the commit and the files to download under C(profile.hub)).
  - Sets C(host_path) of C(controller) and C(hub) entries that leave it out to O(model_root)/<name>.
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
    description:
      - Registered C(results) of M(npu.fleet.model_profile) looped over RV(remote_profiles) and of M(npu.fleet.hub_profile)
        looped over RV(hub_profiles) (each with the job as C(item)).
      - A model whose job left no profile (skipped, failed) fails the call, naming it.
    type: list
    elements: dict
    default: []
  fact:
    description: Name of the fact that receives the validated catalogue.
    type: str
    default: npu_fleet_catalogue
  model_root:
    description:
      - Directory on the NPU hosts under which C(controller) and C(hub) models land (C(<model_root>/<name>)) unless
        their entry sets C(host_path); C(npu_fleet_model_root) in the playbooks.
    type: str
    default: /data/models
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
  description: Models to profile on a host that holds them - C(name), C(path), C(host).
  returned: success
  type: list
  elements: dict
  sample: [{name: deepseek-v3, path: /data/models/DeepSeek-V3, host: npu-a2-01}]
hub_profiles:
  description:
    - Models to profile on their hub - C(name), C(host) (where M(npu.fleet.hub_profile) runs), C(token_var) (the
      variable holding the token, read by the play), C(source) (C(hub), C(repo), C(revision), C(endpoint),
      C(allow_patterns)).
  returned: success
  type: list
  elements: dict
  sample: [{name: qwen3-8b, host: npu-a2-01, token_var: npu_fleet_hub_token, source: {hub: huggingface, repo: Qwen/Qwen3-8B, revision: main}}]
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    """Only reached without the action plugin (the module copied and run by hand): fail and say why."""
    module = AnsibleModule(
        argument_spec={
            "models": {"type": "raw", "required": True},
            "profiles": {"type": "list", "elements": "dict", "default": []},
            "fact": {"type": "str", "default": "npu_fleet_catalogue"},
            "model_root": {"type": "str", "default": "/data/models"},
        },
        supports_check_mode=True,
    )
    module.fail_json(
        msg="npu.fleet.model_catalogue runs on the controller as an action plugin; call it as a task "
        "(with run_once: true), not as a module on a host"
    )


if __name__ == "__main__":
    main()
