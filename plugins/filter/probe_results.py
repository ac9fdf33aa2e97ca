# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: probe_results
short_description: One result per replica from the health probe, with the diagnosis of failures
version_added: 0.1.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - Joins the registered loop results of M(npu.fleet.openai_probe), M(community.docker.docker_container_info) and the
    container logs into one entry per replica, and names the cause and fix of a failure from the log lines
    (KV cache too large, C(undefined symbol), unsupported architecture, C(aclInit 107001), device ids, rejected arguments).
positional: _input
options:
  _input:
    description: The C(results) of the probe loop (each with the probed replica as C(item)).
    type: list
    elements: dict
    required: true
  states:
    description: The C(results) of the docker_container_info loop over failed replicas.
    type: list
    elements: dict
    required: true
  logs:
    description: The C(results) of the C(docker logs) loop over failed replicas.
    type: list
    elements: dict
    required: true
  rolled_back:
    description: Whether failed replacements were rolled back to their previous container.
    type: bool
    required: true
"""

EXAMPLES = r"""
---
- name: Record the result of each replica
  ansible.builtin.set_fact:
    health_probe_results: "{{ probes.results | npu.fleet.probe_results(states.results, logs.results, true) }}"
"""

RETURN = r"""
_value:
  description: >-
    Per replica - C(name), C(model), C(replica), C(port), C(image) (as started), C(healthy), C(stage), C(message), C(ttft_ms), C(total_ms),
    C(ready_after_s), C(state) (status, exit code, OOM-killed, restarts, error), C(log_tail), C(diagnosis) (code, cause,
    fix, evidence) and C(rolled_back).
  type: list
  elements: dict
"""

from ansible_collections.npu.fleet.plugins.module_utils._failure_signatures import diagnose


def _by_name(results):
    """Loop results over failed probes, keyed by container name (their item is the probe result, whose item is the replica)."""
    found = {}
    for result in results or []:
        target = (result.get("item") or {}).get("item") or {}
        if target.get("name"):
            found[target["name"]] = result
    return found


def probe_results(runs, states, logs, rolled_back):
    """Thin wrapper over module_utils/_failure_signatures.py."""
    state_of, log_of = _by_name(states), _by_name(logs)
    out = []
    for run in runs or []:
        target = run.get("item") or {}
        entry = {
            "name": target.get("name"), "model": target.get("model"), "replica": target.get("replica"), "port": target.get("port"),
            "image": target.get("image"),
            "healthy": bool(run.get("healthy")), "stage": run.get("stage"), "message": run.get("message"),
            "ttft_ms": run.get("ttft_ms"), "total_ms": run.get("total_ms"), "ready_after_s": run.get("ready_after_s"),
            "state": None, "log_tail": [], "diagnosis": None, "rolled_back": False,
        }
        if not entry["healthy"]:
            info = (state_of.get(target.get("name")) or {}).get("container") or {}
            state = info.get("State") or {}
            entry["state"] = {"status": state.get("Status"), "exit_code": state.get("ExitCode"), "oom_killed": state.get("OOMKilled"),
                              "restarts": info.get("RestartCount"), "error": state.get("Error")}
            log = log_of.get(target.get("name")) or {}
            text = "\n".join(filter(None, [log.get("stdout"), log.get("stderr")]))
            entry["log_tail"] = text.splitlines()[-20:]
            entry["diagnosis"] = diagnose(text)
            entry["rolled_back"] = bool(rolled_back and target.get("previous"))
        out.append(entry)
    return out


class FilterModule:
    """npu.fleet.probe_results"""

    def filters(self):
        return {"probe_results": probe_results}
