#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: openai_probe
short_description: Prove that an OpenAI-compatible model endpoint serves, and time it
version_added: 0.1.0
description:
  - Waits (bounded) for C(GET /health) to answer 200, checks that C(GET /v1/models) lists the served name with the
    planned C(max_model_len), then sends one small chat completion with C(stream=true) and checks that tokens arrive
    as Server-Sent Events, up to the final C([DONE]) event.
  - Measures the time to first token and the total time of that request.
  - With O(container), stops waiting as soon as that Docker container is no longer running or has restarted,
    instead of waiting for the whole O(wait).
  - Never fails by itself on an unhealthy endpoint - it returns RV(healthy=false) with the RV(stage) that failed
    and a RV(message), so that the caller can collect logs and roll back. It fails only on bad arguments.
  - Read-only on the host; in check mode it does nothing and returns RV(stage=check_mode).
author:
  - npu.fleet engineers (@npu-fleet)
options:
  url:
    description: Base URL of the endpoint, as seen from the host the module runs on.
    type: str
    required: true
  served_model_name:
    description: Name the endpoint must list in C(/v1/models) and answer to.
    type: str
    required: true
  max_model_len:
    description: C(max_model_len) the endpoint must report; V(0) skips the check.
    type: int
    default: 0
  api_key:
    description: API key sent as C(Authorization. Bearer).
    type: str
  wait:
    description: Seconds to wait for C(/health).
    type: int
    default: 600
  interval:
    description: Seconds between C(/health) attempts.
    type: float
    default: 2.0
  container:
    description: Docker container that serves the endpoint; its state is checked between attempts.
    type: str
  prompt:
    description: User message of the test chat completion.
    type: str
    default: Say hello in five words.
  max_tokens:
    description: Largest number of tokens the test chat completion may generate.
    type: int
    default: 16
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: In check mode nothing is probed (the containers were not started) and RV(stage) is V(check_mode).
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
"""

EXAMPLES = r"""
---
- name: Probe a replica
  npu.fleet.openai_probe:
    url: http://127.0.0.1:18231
    served_model_name: qwen3-8b
    max_model_len: 40960
    container: npu-fleet-qwen3-8b-0
    api_key: "{{ serve_api_key }}"
  register: probe
"""

RETURN = r"""
healthy:
  description: Whether every stage passed.
  type: bool
  returned: always
  sample: true
stage:
  description: V(done), or the stage that failed (V(health), V(container), V(models), V(stream)).
  type: str
  returned: always
  sample: done
message:
  description: What failed, or a one-line summary.
  type: str
  returned: always
ready_after_s:
  description: Seconds until C(/health) answered 200.
  type: float
  returned: when the endpoint became ready
ttft_ms:
  description: Time to first streamed token of the test request, in milliseconds.
  type: float
  returned: when healthy
  sample: 84.2
total_ms:
  description: Total time of the test request, in milliseconds.
  type: float
  returned: when healthy
chunks:
  description: Content chunks received.
  type: int
  returned: when healthy
text:
  description: The first 200 characters of the answer.
  type: str
  returned: when healthy
model:
  description: The C(/v1/models) entry of the served model.
  type: dict
  returned: when the models stage passed
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.npu.fleet.plugins.module_utils._openai_probe import ProbeFailed, check_models, stream_chat, wait_ready


def _container_watch(module, name):
    """Raise ProbeFailed once the container stopped or restarted (a crash loop will not become ready)."""
    if not name:
        return None
    docker = module.get_bin_path("docker")
    if docker is None:
        return None

    def still_alive():
        rc, out, err = module.run_command([docker, "inspect", "-f", "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}", name])
        if rc != 0:
            raise ProbeFailed("container", "container %s cannot be inspected: %s" % (name, (err or out).strip()))
        status, restarts, exit_code = (out.split() + ["?", "?", "?"])[:3]
        if status != "running" or restarts not in ("0", "?"):
            raise ProbeFailed("container", "container %s is %s (restarts %s, last exit code %s)" % (name, status, restarts, exit_code))

    return still_alive


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            served_model_name=dict(type="str", required=True),
            max_model_len=dict(type="int", default=0),
            api_key=dict(type="str", no_log=True),
            wait=dict(type="int", default=600),
            interval=dict(type="float", default=2.0),
            container=dict(type="str"),
            prompt=dict(type="str", default="Say hello in five words."),
            max_tokens=dict(type="int", default=16, no_log=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["wait"] < 0 or params["interval"] <= 0 or params["max_tokens"] < 1:
        module.fail_json(msg="wait must be >= 0, interval > 0 and max_tokens >= 1")
    if module.check_mode:
        module.exit_json(changed=False, healthy=False, stage="check_mode", message="not probed in check mode")
    result = {"changed": False, "healthy": False}
    try:
        result["ready_after_s"] = round(wait_ready(params["url"], params["wait"], params["interval"],
                                                   _container_watch(module, params["container"])), 1)
        result["model"] = check_models(params["url"], params["served_model_name"], params["max_model_len"], params["api_key"])
        result.update(stream_chat(params["url"], params["served_model_name"], params["api_key"], params["prompt"], params["max_tokens"]))
    except ProbeFailed as failure:
        result.update(stage=failure.stage, message=failure.message)
        module.exit_json(**result)
    result.update(healthy=True, stage="done",
                  message="ready after %.1f s, first token after %.0f ms, %d chunks" % (result["ready_after_s"], result["ttft_ms"], result["chunks"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
