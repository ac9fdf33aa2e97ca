#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fleet_plan
short_description: Assign model replicas to hosts, chips and ports across a whole Ascend fleet
version_added: 0.1.0
description:
  - Plans, on the controller and in one task, where every replica of every model runs - host, C(/dev/davinci<N>) device
    nodes, host port, tensor parallel size, C(max_model_len) and C(gpu_memory_utilization) - and returns the plan with the
    changes against what runs now. Nothing is changed on any host.
  - Reads by default C(npu) (from M(npu.fleet.npu_facts)) and C(npu_preflight) (from the C(npu.fleet.preflight) role) of
    every host of the play, C(npu_image_selection) (from the C(npu.fleet.image_select) role) when present, plus the
    inventory variables C(fleet_plan_labels), C(fleet_plan_port_range),
    C(fleet_plan_used_ports) and C(preflight_reserved_devices). Fields given in O(hosts) override what those say.
  - A chip that is unhealthy, reserved, excluded by preflight, or runs a process npu.fleet did not start is never used;
    a host that failed preflight receives nothing.
  - Tensor-parallel groups stay on one host inside the chip family's interconnect group (910B all chips; 910A HCCS rings
    of four; A3 whole HiAM modules; 300I Duo whole cards for two or more chips). Container device ids are always
    C(0..k-1), whatever the host numbering.
  - Memory per chip is checked with the same arithmetic as the P(npu.fleet.kv_fit#filter) filter; C(max_model_len) is the
    wish when it fits, else the longest that fits above C(min_model_len), else the replica is unplaced with the reason.
  - The plan is sticky (a running replica that still fits keeps its host, chips and port) and deterministic (same
    inputs, same plan). The algorithm and its guarantees are described in the collection's C(docs/placement.md).
  - "This is an action plugin: run it once per play (C(run_once: true))."
author:
  - npu.fleet engineers (@npu-fleet)
options:
  models:
    description:
      - The catalogue, one entry per model, usually C(npu_fleet_catalogue) as M(npu.fleet.model_catalogue) validated it.
      - It is checked again here by the same schema (C(docs/catalogue.md)), so the planner used on its own gives the same
        errors; it reads C(name), C(profile) (or C(path), profiled on the controller), C(replicas), C(tensor_parallel_size),
        C(max_model_len), C(min_model_len), C(gpu_memory_utilization), C(share_chip), C(backend), C(image), C(hosts),
        C(labels), C(spread) and C(port), and accepts every other catalogue field.
      - Without image selection, C(backend) V(auto) means V(vllm).
    type: list
    elements: dict
    required: true
  current:
    description:
      - What runs now; each entry has C(model), C(replica), C(host), C(devices), C(port), optionally C(pids) (the
        container's processes) and the settings it runs with (C(tensor_parallel_size), C(max_model_len),
        C(gpu_memory_utilization), C(image), C(backend)).
      - Default - read from the labels of the npu.fleet containers in each host's C(npu_fleet_containers) fact, which the
        C(npu.fleet.preflight) role sets from its one read of the Docker engine. V([]) means nothing runs.
      - A replica that still fits stays on its host, chips and port.
    type: list
    elements: dict
  hosts:
    description:
      - Host name to host fields, overriding (field by field) what the host variables give.
      - Fields C(chips) (as M(npu.fleet.npu_facts) returns them), C(labels), C(port_range) (V(18000-18999)),
        C(reserved_devices), C(used_ports), C(preflight_ok), C(excluded_devices), C(problems), C(family)
        (V(910b), V(910a), V(a3), V(310p), V(other)), C(npu_smi_layout), C(interconnect_groups) (lists of device nodes that
        may form one tensor-parallel group), C(notes).
      - Hosts listed here but not in the play are planned too.
    type: dict
    default: {}
  inventory_hosts:
    description:
      - Hosts whose variables are read. Default C(ansible_play_hosts_all), all hosts of the play.
      - Set V([]) to plan only the hosts given in O(hosts).
    type: list
    elements: str
  port_range:
    description: Host port range for hosts that set no C(fleet_plan_port_range) / C(port_range).
    type: str
    default: "18000-18999"
  share_chip_limit:
    description: Largest sum of C(gpu_memory_utilization) slices on one shared chip.
    type: float
    default: 0.95
  port_scheme:
    description:
      - How a new replica's host port is chosen (a running replica keeps its port, a moved one too when it is free).
      - V(device) - the port range start plus the number of the replica's first C(/dev/davinciN) (davinci6 -> 18006), or
        the next free port after it; a person reads the chip off the port.
      - V(hash) - a port hashed from model name and replica, stable whatever else the catalogue holds.
    type: str
    choices: [device, hash]
    default: device
  image_selector:
    description:
      - Backend and image per model and host.
      - Each rule has C(model), optionally C(host), and C(backend) and/or C(image); a rule for the host wins over a rule for
        the model.
      - Without a rule, the host's C(npu_image_selection) fact (set by the C(npu.fleet.image_select) role) is used when it
        names the model, else the model entry's C(backend) and C(image).
    type: list
    elements: dict
    default: []
extends_documentation_fragment:
  - action_common_attributes
  - action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: all
notes:
  - Runs on the controller only and never connects to a host; set C(run_once) so that it runs once per play.
  - Placement rules, interconnect groups with their sources, ports, stickiness and the benchmark figures are in the
    collection's C(docs/placement.md).
seealso:
  - module: npu.fleet.npu_facts
  - module: npu.fleet.model_profile
  - plugin: npu.fleet.kv_fit
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Plan the catalogue over the hosts of the play
  npu.fleet.fleet_plan:
    models:
      - name: qwen3-8b
        path: /data/models/Qwen3-8B
        replicas: 2
      - name: qwen3-30b-a3b
        profile: "{{ qwen3_30b_profile.profile }}"
        tensor_parallel_size: 2
        max_model_len: 32768
        labels:
          memory: 64g
  run_once: true
  register: fleet_plan

- name: Show the plan per host
  ansible.builtin.debug:
    msg: "{{ fleet_plan.table.splitlines() }}"
  run_once: true

- name: Re-plan with what runs now, so that running replicas stay where they are
  npu.fleet.fleet_plan:
    models: "{{ npu_fleet_models }}"
    current: "{{ running_replicas }}"
  run_once: true
  register: fleet_plan

- name: Plan for hosts given explicitly (no inventory facts)
  npu.fleet.fleet_plan:
    inventory_hosts: []
    hosts:
      node-1:
        chips: "{{ saved_facts['node-1'].chips }}"
        port_range: 20000-20099
    models:
      - name: small
        path: /data/models/Qwen3-4B
        share_chip: true
        replicas: 4
        spread: false
  run_once: true
  register: fleet_plan
"""

RETURN = r"""
plan:
  description: The plan.
  returned: success
  type: dict
  contains:
    placements:
      description: One entry per placed replica, sorted by model and replica.
      type: list
      elements: dict
      contains:
        model:
          description: Model name.
          type: str
          sample: qwen3-8b
        replica:
          description: Replica index, V(0) to C(replicas - 1).
          type: int
          sample: 0
        host:
          description: Host name.
          type: str
          sample: npu-a2-01
        devices:
          description: Device nodes the container is given, in host numbering.
          type: list
          elements: str
          sample: [/dev/davinci6]
        container_device_ids:
          description: The same devices as the container numbers them, always V(0) to C(k-1).
          type: list
          elements: int
          sample: [0]
        ascend_rt_visible_devices:
          description: C(ASCEND_RT_VISIBLE_DEVICES) for the container (container ids, comma separated).
          type: str
          sample: "0"
        port:
          description: Host port of the replica, unique on the host.
          type: int
          sample: 18231
        backend:
          description: Serving backend.
          type: str
          sample: vllm
        image:
          description: Container image, or null when not chosen yet.
          type: str
          sample: quay.io/ascend/vllm-ascend:v0.11.0
        tensor_parallel_size:
          description: vLLM C(--tensor-parallel-size).
          type: int
          sample: 1
        max_model_len:
          description: vLLM C(--max-model-len) that fits the chips.
          type: int
          sample: 40960
        gpu_memory_utilization:
          description: vLLM C(--gpu-memory-utilization) (the slice on a shared chip).
          type: float
          sample: 0.9
        kv_cache_tokens:
          description: KV cache tokens the replica should report at start-up (estimate).
          type: int
          sample: 67456
        chip_memory_mb:
          description: Memory of the smallest chip of the group, as npu-smi reports it.
          type: int
          sample: 32768
        share_chip:
          description:
            - Whether the chip is shared with other replicas (C(share_chip) true, or auto when whole chips ran out); the
              container then gets C(PYTORCH_NPU_ALLOC_CONF=expandable_segments:True).
          type: bool
          sample: false
        chip_family:
          description: Interconnect family of the host (V(910b), V(910a), V(a3), V(310p), V(950), V(other)); the container spec follows it.
          type: str
          sample: 910b
        surge:
          description:
            - Where the replica's successor can start while the replica still runs during a rolling update (C(devices),
              C(port)), on chips of the same count and shape free of every placement and running container, and a free port.
            - V(null) when the host has no such room, or the model shares chips or has a fixed C(port); the serve role then
              replaces the replica in place.
          type: dict
          sample: {"devices": ["/dev/davinci3"], "port": 18003}
        reasons:
          description: Why the replica got these settings (kept, capped, auto TP size, A3 module, shared chip).
          type: list
          elements: str
          sample: ["tensor_parallel_size auto -> 1"]
    unplaced:
      description: Replicas that could not be placed, each with C(model), C(replica), C(reason) and C(needs).
      type: list
      elements: dict
      sample:
        - model: qwen3-30b-a3b
          replica: 1
          reason: "needs 2 chips of >= 64 GiB on one host in one interconnect group; largest free group is 1"
          needs: [{chips: 2, min_chip_memory_mb: 65536}]
    changes:
      description:
        - Against O(current), per replica - V(keep), V(add), V(move) or V(remove) - with C(from), C(to) (host, devices,
          port) and C(reason); V(keep) entries list C(settings_changed).
      type: list
      elements: dict
      sample:
        - {action: add, model: qwen3-8b, replica: 0, reason: null, from: null,
           to: {host: npu-a2-01, devices: [/dev/davinci0], port: 18231}}
    summary:
      description:
        - C(hosts) - per host family, chips (total, usable, used, free, shared), excluded chips with the reason, ports in
          use, notes; C(totals); C(capacity_left) - per model, how many more replicas would fit (each model alone).
      type: dict
      sample:
        totals: {hosts: 3, hosts_receiving: 2, chips: 20, chips_usable: 17, chips_used: 9, chips_free: 8}
        capacity_left: {qwen3-8b: 6}
table:
  description: The plan as readable text, one block per host, then unplaced replicas, removals and capacity left.
  returned: success
  type: str
  sample: |-
    npu-a2-01 [910b] 8 chips: 1 used, 7 free
      qwen3-8b#0  /dev/davinci0  ctr 0  port 18231  TP1  len 40960  util 0.90  add
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    """Only reached without the action plugin (the module copied and run by hand): fail and say why."""
    module = AnsibleModule(
        argument_spec={
            "models": {"type": "list", "elements": "dict", "required": True},
            "current": {"type": "list", "elements": "dict"},
            "hosts": {"type": "dict", "default": {}},
            "inventory_hosts": {"type": "list", "elements": "str"},
            "port_range": {"type": "str", "default": "18000-18999"},
            "share_chip_limit": {"type": "float", "default": 0.95},
            "image_selector": {"type": "list", "elements": "dict", "default": []},
            "port_scheme": {"type": "str", "choices": ["device", "hash"], "default": "device"},
        },
        supports_check_mode=True,
    )
    module.fail_json(
        msg="npu.fleet.fleet_plan runs on the controller as an action plugin; call it as a task "
        "(npu.fleet.fleet_plan with run_once: true), not as a module on a host"
    )


if __name__ == "__main__":
    main()
