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
    and a RV(message), so that the caller can roll back. It fails only on bad arguments.
  - When the endpoint is not healthy and O(container) is given, it also reads that container with the Docker CLI
    (C(docker inspect) and C(docker logs --tail)) and returns its RV(state), the last 20 log lines (RV(log_tail)) and
    the RV(diagnosis) - the cause and the fix of the failure named from the log (KV cache too large, C(undefined symbol),
    unsupported architecture, C(aclInit 107001), device ids, busy chips, rejected arguments).
  - With O(replicas), probes every replica of the host at once (up to O(parallel) at a time) and returns one result
    per replica in RV(replicas); a run waits for the slowest replica, not for the sum.
  - Read-only on the host; in check mode it does nothing and returns RV(stage=check_mode) (or an empty RV(replicas)).
author:
  - npu.fleet engineers (@npu-fleet)
options:
  url:
    description: Base URL of the endpoint, as seen from the host the module runs on. Exactly one of O(url) and O(replicas).
    type: str
  served_model_name:
    description: Name the endpoint must list in C(/v1/models) and answer to; required with O(url).
    type: str
  replicas:
    description:
      - Replicas to probe together, as the serve role records them (C(serve_deployed)) - each with C(name) (the container),
        C(model) (the served name), C(port) (published on O(address)) and optionally C(max_model_len).
    type: list
    elements: dict
  address:
    description: Address at which O(replicas) publish their ports, as seen from the host the module runs on.
    type: str
    default: 127.0.0.1
  parallel:
    description: Replicas of O(replicas) probed at the same time.
    type: int
    default: 8
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
    description:
      - Docker container that serves the endpoint; its state is checked between attempts.
      - When the probe fails, its state and last log lines are read and diagnosed (RV(state), RV(log_tail), RV(diagnosis)).
    type: str
  log_lines:
    description:
      - Log lines read from a failed O(container) (C(docker logs --tail)); the diagnosis searches all of them, RV(log_tail)
        keeps the last 20.
    type: int
    default: 50
  prompt:
    description: User message of the test chat completion.
    type: str
    default: Say hello in five words.
  max_tokens:
    description: Largest number of tokens the test chat completion may generate.
    type: int
    default: 16
  timeout:
    description:
      - Seconds the test chat completion may take (connecting, then between two reads). A replica whose C(/health)
        answers but whose generation does not finish in time fails at RV(stage=stream) with a message that says it
        timed out (C(npu.fleet.fleet_status) calls it hung).
    type: float
    default: 120.0
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
- name: Probe every replica the serve role started on this host
  npu.fleet.openai_probe:
    replicas: "{{ serve_deployed }}"
    api_key: "{{ serve_api_key }}"
  register: probes

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
replicas:
  description:
    - With O(replicas), one result per replica, in the same order - C(name), C(model) (the served name), C(port) and every
      other key below (C(healthy), C(stage), C(message), C(ready_after_s), C(ttft_ms), C(total_ms), C(state), C(log_tail),
      C(diagnosis), ...), except that the C(/v1/models) entry is C(models_entry). Without O(replicas) those keys are
      returned at the top level.
  type: list
  elements: dict
  returned: when O(replicas) is given
healthy:
  description: Whether every stage passed.
  type: bool
  returned: when O(url) is given (per replica in RV(replicas) otherwise)
  sample: true
stage:
  description: V(done), or the stage that failed (V(health), V(container), V(models), V(stream)).
  type: str
  returned: when O(url) is given (per replica in RV(replicas) otherwise)
  sample: done
message:
  description: What failed, or a one-line summary.
  type: str
  returned: when O(url) is given (per replica in RV(replicas) otherwise)
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
state:
  description:
    - State of the failed O(container), from C(docker inspect). Fields Docker did not give are null; when the container
      cannot be inspected (gone, no Docker CLI) C(error) says why.
    - V(null) when the endpoint is healthy or no O(container) was given.
  type: dict
  returned: when O(url) is given (per replica in RV(replicas) otherwise)
  contains:
    status:
      description: Container status (V(running), V(restarting), V(exited), ...).
      type: str
      sample: exited
    exit_code:
      description: Exit code of the last run of the container.
      type: int
      sample: 1
    oom_killed:
      description: Whether the kernel killed the container for lack of host memory.
      type: bool
      sample: false
    restarts:
      description: How many times Docker restarted the container.
      type: int
      sample: 3
    error:
      description: Docker's error for the container (for example a device that could not be mapped), else null.
      type: str
      sample: null
  sample: {status: exited, exit_code: 1, oom_killed: false, restarts: 3, error: null}
log_tail:
  description:
    - The last 20 lines of the failed O(container)'s log (stdout, then stderr).
    - Empty when the endpoint is healthy or no O(container) was given.
  type: list
  elements: str
  returned: when O(url) is given (per replica in RV(replicas) otherwise)
  sample:
    - "(EngineCore_DP0 pid=187) ValueError: To serve at least one request with the models's max seq len (262144), ..."
    - "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}"
diagnosis:
  description:
    - Cause and fix of the failure, named from the O(container)'s log lines (C(code) V(unknown) when no known signature
      matches).
    - V(null) when the endpoint is healthy or no O(container) was given.
  type: dict
  returned: when O(url) is given (per replica in RV(replicas) otherwise)
  contains:
    code:
      description:
        - The failure signature - V(kv_cache), V(undefined_symbol), V(architecture), V(device_id), V(no_device),
          V(device_busy), V(acl_init), V(bad_argument), V(port), V(oom), V(load_failed) or V(unknown).
      type: str
      sample: kv_cache
    cause:
      description: What went wrong.
      type: str
      sample: the KV cache does not fit the chip memory left after the weights
    fix:
      description: What to change.
      type: str
      sample: "lower max_model_len (estimated maximum: 74752) or raise gpu_memory_utilization, or give the model more chips (tensor_parallel_size)"
    evidence:
      description: The log line that matched (at most 500 characters).
      type: str
"""

from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.npu.fleet.plugins.module_utils._openai_probe import (
    ProbeFailed,
    check_models,
    failure_details,
    stream_chat,
    wait_ready,
)


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


def _failure_details(module, name, log_lines):
    """State, last log lines and diagnosis of a failed replica's container, read with the Docker CLI."""
    docker = module.get_bin_path("docker")
    if docker is None:
        return failure_details("", "", inspect_error="no docker CLI on the host: container %s not inspected" % name)
    rc, out, err = module.run_command([docker, "inspect", name], errors="replace")
    inspect_error = None if rc == 0 else "docker inspect %s failed: %s" % (name, (err or out).strip())
    # `docker logs` replays the container's stdout and stderr on its own stdout and stderr.
    unused, log_out, log_err = module.run_command([docker, "logs", "--tail", str(log_lines), name], errors="replace")
    log_text = "\n".join(part.rstrip("\n") for part in (log_out, log_err) if part)
    return failure_details(out if rc == 0 else "", log_text, inspect_error=inspect_error)


def _probe(module, params, url, served_name, max_model_len, container):
    """One replica: ready, right model, a streamed token; on failure the container's state, log tail and diagnosis."""
    result = {"healthy": False, "state": None, "log_tail": [], "diagnosis": None}
    try:
        result["ready_after_s"] = round(wait_ready(url, params["wait"], params["interval"], _container_watch(module, container)), 1)
        result["model"] = check_models(url, served_name, max_model_len, params["api_key"])
        result.update(stream_chat(url, served_name, params["api_key"], params["prompt"], params["max_tokens"], params["timeout"]))
    except ProbeFailed as failure:
        result.update(stage=failure.stage, message=failure.message)
        if container:
            result.update(_failure_details(module, container, params["log_lines"]))
        return result
    result.update(
        healthy=True,
        stage="done",
        message="ready after %.1f s, first token after %.0f ms, %d chunks" % (result["ready_after_s"], result["ttft_ms"], result["chunks"]),
    )
    return result


def _probe_replica(module, params, replica):
    """One entry of O(replicas): probed at O(address) on its published port, named after its container."""
    host = params["address"]
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host
    result = _probe(
        module,
        params,
        "http://%s:%d" % (host, int(replica["port"])),
        str(replica["model"]),
        int(replica.get("max_model_len") or 0),
        str(replica["name"]),
    )
    if "model" in result:
        result["models_entry"] = result.pop("model")
    result.update(name=str(replica["name"]), model=str(replica["model"]), port=int(replica["port"]))
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str"),
            served_model_name=dict(type="str"),
            max_model_len=dict(type="int", default=0),
            replicas=dict(type="list", elements="dict"),
            address=dict(type="str", default="127.0.0.1"),
            parallel=dict(type="int", default=8),
            api_key=dict(type="str", no_log=True),
            wait=dict(type="int", default=600),
            interval=dict(type="float", default=2.0),
            container=dict(type="str"),
            prompt=dict(type="str", default="Say hello in five words."),
            max_tokens=dict(type="int", default=16, no_log=False),
            timeout=dict(type="float", default=120.0),
            log_lines=dict(type="int", default=50),
        ),
        mutually_exclusive=[("url", "replicas")],
        required_one_of=[("url", "replicas")],
        required_together=[("url", "served_model_name")],
        supports_check_mode=True,
    )
    params = module.params
    if (
        params["wait"] < 0
        or params["interval"] <= 0
        or params["max_tokens"] < 1
        or params["log_lines"] < 1
        or params["parallel"] < 1
        or not params["timeout"] > 0
    ):
        module.fail_json(msg="wait must be >= 0, interval > 0, max_tokens >= 1, log_lines >= 1, parallel >= 1 and timeout > 0")
    for index, replica in enumerate(params["replicas"] or []):
        missing = [key for key in ("name", "model", "port") if replica.get(key) in (None, "")]
        if missing:
            module.fail_json(msg="replicas[%d] lacks %s (give the serve role's serve_deployed records)" % (index, ", ".join(missing)))
    if module.check_mode:
        if params["replicas"] is not None:
            module.exit_json(changed=False, replicas=[])
        module.exit_json(
            changed=False, healthy=False, stage="check_mode", message="not probed in check mode", state=None, log_tail=[], diagnosis=None
        )
    if params["replicas"] is not None:
        # Every replica of the host at once: a re-run waits for the slowest, not for the sum.
        with ThreadPoolExecutor(max_workers=params["parallel"]) as pool:
            results = list(pool.map(lambda replica: _probe_replica(module, params, replica), params["replicas"]))
        module.exit_json(changed=False, replicas=results)
    result = _probe(module, params, params["url"], params["served_model_name"], params["max_model_len"], params["container"])
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
