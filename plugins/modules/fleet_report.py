#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fleet_report
short_description: The end-of-run deployment report of an Ascend fleet, one row per replica
version_added: 0.1.0
description:
  - Joins, on the controller and in one task, the plan (M(npu.fleet.fleet_plan)), the model profiles of the catalogue and
    the health probe results of every host into one row per replica - model, params, architecture, backend, image, host,
    chips, port, URL, max_model_len, status, time to first token - plus the diagnosis of each failure and the replicas
    that could not be placed. Nothing is changed on any host.
  - Reads C(health_probe_results) (set by the C(npu.fleet.health_probe) role) of every host in O(hosts). The replicas of a
    host without it (unreachable, failed earlier) show as V(not probed), or V(planned (check mode)) in check mode.
  - The URL of a replica is C(http://<address>:<port>), where the address is the host's C(serve_bind_address) when it
    names one address (not V(0.0.0.0) or V(::)), else its gathered default IPv4 address, else its C(ansible_host), else its
    inventory name (C(npu_fleet_advertise_address) overrides all); IPv6 addresses are
    put in brackets.
  - The C(npu.fleet.report) role renders the result as Markdown with a Jinja template and writes it with the JSON.
  - "This is an action plugin: run it once, on the controller (a play on localhost, or C(run_once: true))."
author:
  - npu.fleet engineers (@npu-fleet)
options:
  plan:
    description:
      - The C(plan) returned by M(npu.fleet.fleet_plan) (C(placements) and C(unplaced) are read).
      - Default - C(plan_models_result.plan) of the first host in O(hosts) that has it (set by C(npu.fleet.plan_models));
        when no host has one, nothing is reported and RV(report) is null.
    type: dict
  models:
    description:
      - The catalogue, each entry with C(name) and C(profile) (as M(npu.fleet.model_profile) returns it); the
        parameters and the architecture shown come from the profile.
      - A model without a profile shows V(?) for both.
      - Default - C(npu_fleet_catalogue) of the host the plan was read from.
    type: list
    elements: dict
  hosts:
    description: Inventory hosts whose probe results and addresses are read. Default C(groups['npu_hosts']).
    type: list
    elements: str
  template:
    description:
      - Jinja template of the Markdown report, found like any template of the calling role or play (its C(templates)
        directory) or given as a path; it sees the report as C(report). Without it no Markdown is rendered.
    type: str
  dest:
    description:
      - Controller directory where C(report.json) (and C(report.md) with O(template)) are written, each whole or not at
        all, mode 0644; created when missing. Nothing is written in check mode.
    type: path
  kind:
    description:
      - V(deploy) - the report of a deploy run (rows from the health probe).
      - V(status) - the report of the C(npu.fleet.fleet_status) playbook (rows carry C(status) - V(healthy), V(slow),
        V(hung), V(error), V(crashed), V(chip_alarm), V(drifted), V(missing) - and C(statuses) in RV(report.totals) counts them).
    type: str
    choices: [deploy, status]
    default: deploy
  unreachable:
    description:
      - Hosts of O(hosts) a connection check after the run could not reach (the npu.fleet.report role checks the hosts
        that did not record C(npu_fleet_stage=done)); RV(report.hosts) says they are unreachable rather than failed.
    type: list
    elements: str
    default: []
  check_mode:
    description:
      - Whether the run is a check-mode run, in which nothing was started or probed (replicas then show as
        V(planned (check mode))).
      - Default the task's own check mode.
    type: bool
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
  - Runs on the controller only and never connects to a host.
seealso:
  - module: npu.fleet.fleet_plan
  - module: npu.fleet.openai_probe
"""

EXAMPLES = r"""
- name: Build the report of the fleet
  npu.fleet.fleet_report:
    plan: "{{ hostvars[groups['npu_hosts'][0]].plan_models_result.plan }}"
    models: "{{ hostvars[groups['npu_hosts'][0]].npu_fleet_catalogue }}"
  register: fleet_report

- name: Show where each replica answers
  ansible.builtin.debug:
    msg: "{{ fleet_report.report.rows | map(attribute='url') | list }}"

- name: Report on some hosts only, as a check-mode run
  npu.fleet.fleet_report:
    plan: "{{ saved_plan }}"
    models: "{{ catalogue }}"
    hosts: [npu-a2-01, npu-a2-02]
    check_mode: true
  register: fleet_report
"""

RETURN = r"""
markdown:
  description: The report rendered with O(template).
  returned: when O(template) is given and a host planned
  type: str
written:
  description: Paths of the files written.
  returned: when O(dest) is given, a host planned and not in check mode
  type: list
  elements: str
stats:
  description:
    - The summary the report role publishes with M(ansible.builtin.set_stats) as C(npu_fleet_report) - C(kind),
      C(totals), C(report_dir), C(replicas) (each C(model), C(replica), C(host), C(status), C(url), C(healthy)) and
      C(gateways); AWX shows it on the job and a workflow can branch on it.
  type: dict
  returned: when there is a plan
judgement:
  description:
    - Whether the run must fail and why (C(failed), C(msg)) - with O(kind=deploy) when a replica failed its health probe,
      with O(kind=status) when any replica is not healthy; C(msg) names each replica and its status.
  type: dict
  returned: when there is a plan
  sample: {failed: true, msg: "1 replica(s) failed their health probe: qwen3-8b/0 on npu-a2-01 (failed at health); see ..."}
report:
  description: The report; null when no host planned in this run.
  returned: success
  type: dict
  contains:
    gateways:
      description:
        - Where clients reach the fleet through its gateways (C(gateway_endpoint) of each gateway host) -
          C(router), the URLs of the frontend that routes by the request's C(model), and C(models), each model's own URLs.
      type: dict
    rows:
      description:
        - One entry per placed replica, sorted by host, model and replica.
        - With O(kind=status), also one per npu.fleet container that runs outside the plan (C(status) V(drifted)).
      type: list
      elements: dict
      contains:
        model:
          description: Model name.
          type: str
          sample: qwen3-8b
        replica:
          description: Replica index.
          type: int
          sample: 0
        params:
          description: Parameter count from the profile, rounded (V(?) when unknown).
          type: str
          sample: 8.2B
        architecture:
          description: Architecture from the profile (V(?) when unknown).
          type: str
          sample: Qwen3ForCausalLM
        backend:
          description: Serving backend of the plan.
          type: str
          sample: vllm
        image:
          description: The image the container runs as the probe recorded it, else the plan's.
          type: str
          sample: quay.io/ascend/vllm-ascend:v0.15.0rc1
        host:
          description: Inventory host name.
          type: str
          sample: npu-a2-01
        chips:
          description: Host device numbers the replica runs on, comma separated.
          type: str
          sample: "0,1"
        port:
          description: Host port.
          type: int
          sample: 18231
        url:
          description: Base URL of the replica's OpenAI-compatible endpoint.
          type: str
          sample: http://10.0.0.11:18231
        max_model_len:
          description: Planned C(max_model_len).
          type: int
          sample: 40960
        status:
          description: V(healthy), V(failed at <stage>) (with V(, rolled back)), V(not probed) or V(planned (check mode)).
          type: str
          sample: healthy
        healthy:
          description: Whether the replica passed its health probe.
          type: bool
          sample: true
        ttft_ms:
          description: Time to first token of the probe request, in milliseconds, or null.
          type: float
          sample: 84.2
        message:
          description: The probe's message, or null when not probed.
          type: str
        diagnosis:
          description: Cause, fix, code and evidence of a failure (see M(npu.fleet.openai_probe)), or null.
          type: dict
        replaced:
          description: Whether a rolling update replaced the replica's container in this run.
          type: bool
          sample: false
        surge:
          description:
            - Whether its successor started beside it (the plan's surge room, on other chips and another port) and took over
              at the gateway; C(chips), C(port) and C(url) are then the successor's.
          type: bool
          sample: false
        outage_s:
          description: Seconds a one-replica model did not answer while it was replaced in place, else null.
          type: float
    unplaced:
      description: Replicas the plan could not place, each with C(model), C(replica) and C(reason).
      type: list
      elements: dict
      sample:
        - {model: qwen3-30b-a3b, replica: 1, reason: "needs 2 chips of >= 64 GiB on one host in one interconnect group"}
    totals:
      description:
        - Counts of C(replicas), C(healthy), C(failed), C(unhealthy) (every row that is not healthy) and C(unplaced).
        - With O(kind=status), C(statuses) counts the rows in each status.
      type: dict
      sample: {replicas: 7, healthy: 6, failed: 1, unhealthy: 1, unplaced: 0}
    open_hosts:
      description: Hosts whose replicas serve without an API key (asked for with C(npu_fleet_allow_anonymous)).
      type: list
      elements: str
      sample: []
    hosts:
      description:
        - One entry per host of O(hosts) that did not finish the run (its playbook did not record
          C(npu_fleet_stage=done)), each with C(host), C(state) (V(failed preflight), V(failed during <stage>),
          V(unreachable, stopped during <stage>), or V(... before discovery)) and C(detail) (what the plan meant to
          change there, so what may be half-done, and what to do).
      type: list
      elements: dict
      sample:
        - host: npu-a2-02
          state: unreachable, stopped during serve
          detail: "the plan changed here: move llama-3.1-8b/1; any of these may be half-done; bring it back and run the deploy again: it converges"
    sources:
      description:
        - Per host and model, where the weights came from (C(model_sources_results) of the npu.fleet.model_sources role) -
          C(host), C(model), C(source) (V(host), V(controller), or the hub and repository), C(revision), C(path),
          C(bytes) on disk, C(fetched_bytes) and C(copied_files) (what this run moved).
      type: list
      elements: dict
      sample:
        - {host: npu-a2-01, model: qwen3-8b, source: huggingface Qwen/Qwen3-8B, revision: 0123456789abcdef0123456789abcdef01234567,
           path: /data/models/qwen3-8b, bytes: 16388034560, fetched_bytes: 0, copied_files: 0}
    kind:
      description: The O(kind) of the report.
      type: str
      sample: deploy
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    """Only reached without the action plugin (the module copied and run by hand): fail and say why."""
    module = AnsibleModule(
        argument_spec={
            "plan": {"type": "dict"},
            "models": {"type": "list", "elements": "dict"},
            "hosts": {"type": "list", "elements": "str"},
            "check_mode": {"type": "bool"},
            "template": {"type": "str"},
            "dest": {"type": "path"},
            "kind": {"type": "str", "choices": ["deploy", "status"], "default": "deploy"},
            "unreachable": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    module.fail_json(
        msg="npu.fleet.fleet_report runs on the controller as an action plugin; call it as a task "
        "(npu.fleet.fleet_report in a play on localhost, or with run_once: true), not as a module on a host"
    )


if __name__ == "__main__":
    main()
