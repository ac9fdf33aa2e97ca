# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: replica_specs
short_description: The serving containers of one host, from the fleet plan
version_added: 0.1.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - Turns the placements of one host (M(npu.fleet.fleet_plan)) into the parameters of
    M(community.docker.docker_container), one dict per replica.
  - The container gets exactly the placement's C(/dev/davinciN) plus C(/dev/davinci_manager), C(/dev/devmm_svm)
    and C(/dev/hisi_hdc); C(ASCEND_RT_VISIBLE_DEVICES) counts them from 0; the driver paths the host has
    (C(driver_mounts) of M(npu.fleet.npu_facts)) are mounted read-only; bridge networking with
    C(<bind_address>:<port>:8000); labels record the placement and a hash of the settings.
  - The API key goes into the environment (C(VLLM_API_KEY) or C(NPU_SERVE_API_KEY)), never onto the command line.
positional: _input
options:
  _input:
    description: The plan's C(placements) (all hosts; only those of O(host) are used).
    type: list
    elements: dict
    required: true
  host:
    description: Inventory name of the host.
    type: str
    required: true
  models:
    description:
      - The validated catalogue (M(npu.fleet.model_catalogue)). C(host_path) (default C(path)) is the model directory on
        the host; C(serve) holds per-model options (C(extra_args), C(env), C(dtype), C(shm_size)) over O(options).
    type: list
    elements: dict
    required: true
  driver_mounts:
    description: C(ansible_facts.npu.driver_mounts), host path to whether it exists.
    type: dict
    required: true
  options:
    description: >-
      Serve role settings: C(bind_address), C(shm_size), C(restart_policy), C(log_max_size), C(log_max_file), C(dtype),
      C(extra_args), C(env), C(use_ascend_runtime), C(api_key), C(api_key_file) (the host file holding it, mounted
      read-only), C(server_api_key_file) (its copy owned by the Transformers server's non-root uid),
      C(transformers_threads), C(transformers_max_concurrent), C(transformers_max_queue), C(transformers_device),
      C(cap_add) (capabilities given back after C(cap_drop=ALL); none by default), C(device_access) (npu_facts'
      owner, group and mode of the device nodes: who each replica runs as).
    type: dict
    default: {}
  images:
    description: Model name to an image that replaces the plan's (a Transformers image built on the host).
    type: dict
    default: {}
  containers:
    description:
      - The npu.fleet containers on the host (M(community.docker.docker_host_info) with C(verbose_output)), read for
        O(surge).
    type: list
    elements: dict
    default: []
  surge:
    description:
      - A replica whose running container must be replaced (another spec hash or API key) gets its spec in the
        placement's C(surge) room (other chips, another port) instead, so the old container serves until the new one
        is healthy. Without a room, or with a room that overlaps the running container, it stays in place.
      - The serve role sets it only behind a gateway and with rollback.
    type: bool
    default: false
"""

EXAMPLES = r"""
---
- name: Containers of this host
  ansible.builtin.set_fact:
    serve_specs: >-
      {{ plan.placements | npu.fleet.replica_specs(host=inventory_hostname, models=npu_fleet_catalogue,
         driver_mounts=ansible_facts.npu.driver_mounts, options={'api_key': serve_api_key, 'api_key_file': '/etc/npu-fleet/secrets/api-key'}) }}
  no_log: true
"""

RETURN = r"""
_value:
  description: One dict of M(community.docker.docker_container) parameters per replica on the host, sorted by name.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.npu.fleet.plugins.module_utils._replica import ContainerSpecError
from ansible_collections.npu.fleet.plugins.module_utils._replica import replica_specs as _replica_specs


def replica_specs(placements, host, models, driver_mounts, options=None, images=None, containers=None, surge=False):
    """Thin wrapper over module_utils/_replica.py."""
    try:
        return _replica_specs(placements, host, models, driver_mounts, options, images, containers, bool(surge))
    except ContainerSpecError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """npu.fleet.replica_specs"""

    def filters(self):
        return {"replica_specs": replica_specs}
