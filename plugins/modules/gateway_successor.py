#!/usr/bin/python
# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gateway_successor
short_description: Add a replica's surge successor to an npu.fleet HAProxy gateway at run time
version_added: 0.2.0
description:
  - During a surge replacement the new container of a replica runs on other chips and another port of the same host
    while the old one still serves. This module adds the new one to the gateway next to the old one, without a reload,
    through HAProxy's runtime API (C(add server)), so both serve until the old one is drained with
    M(npu.fleet.gateway_server).
  - The added server is named C(<server>:<port>), has the old server's address and the configuration's health-check
    timings, and takes requests only after one of its health checks passed (HAProxy counts a freshly enabled server as
    UP before any check). One whose check does not pass within O(wait) seconds is deleted again, never having taken a
    request, and the task fails naming it.
  - The next reload of the gateway (M(npu.fleet.gateway_files) with the new plan) replaces these servers with the
    configured server at the new port.
author:
  - npu.fleet engineers (@npu-fleet)
options:
  socket:
    description: Host path of the gateway's HAProxy runtime API socket.
    type: path
    default: /var/lib/npu-fleet/gateway/run/admin.sock
  successors:
    description: The successors to add, each next to the server of the replica it replaces.
    type: list
    elements: dict
    required: true
    suboptions:
      backend:
        description: Backend of the model, C(model_<name>).
        type: str
        required: true
      server:
        description: Server of the replica being replaced (C(npu-fleet-<model>-<replica>)); its address is reused.
        type: str
        required: true
      port:
        description: Host port of the successor.
        type: int
        required: true
  wait:
    description: Seconds to wait for each successor's first passing health check.
    type: int
    default: 30
  check_interval_ms:
    description: Health-check interval of the added servers; the gateway configuration's (C(npu_fleet_gateway_check_interval_ms)).
    type: int
    default: 1000
  missing:
    description:
      - V(fail) fails when the replaced server is not in the gateway's running configuration; V(ignore) skips it (the
        gateway's next reload adds the successor) and accepts a host where no gateway runs (no socket).
    type: str
    default: fail
    choices: [fail, ignore]
  timeout:
    description: Seconds to wait for the socket to accept a connection and to answer one command.
    type: float
    default: 5.0
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: In check mode nothing is added; the result says whether a successor would be added.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
notes:
  - Needs HAProxy 2.6 or later (C(add server) with health checks, without experimental mode) and a backend with a
    dynamic balance algorithm (the gateway's are C(leastconn)).
"""

EXAMPLES = r"""
---
- name: Send requests to the new replica too, once the gateway's own check passed
  npu.fleet.gateway_successor:
    successors:
      - backend: model_qwen3-8b
        server: npu-fleet-qwen3-8b-0
        port: 18003
  become: true
"""

RETURN = r"""
gateway:
  description: Whether a gateway runs there (its socket exists); only returned when nothing was asked of it.
  type: bool
  returned: when O(successors) is empty, or with O(missing=ignore) and no socket
  sample: false
successors:
  description: One entry per requested successor.
  type: list
  elements: dict
  returned: always
  contains:
    backend:
      description: Backend of the model.
      type: str
      sample: model_qwen3-8b
    name:
      description: Name of the added server, C(<server>:<port>); null when the replaced server is missing.
      type: str
      sample: npu-fleet-qwen3-8b-0:18003
    added:
      description: Whether it was added by this task (false when it was already there, or missing).
      type: bool
      sample: true
    up:
      description: Whether its health check passed and it takes requests.
      type: bool
      sample: true
    check_status:
      description: HAProxy's status of its last health check (V(L7OK), V(L4CON), V(L7STS)...).
      type: str
      sample: L7OK
    waited:
      description: Seconds waited for its check.
      type: float
      sample: 1.2
    missing:
      description: Whether the replaced server is not in the running configuration (only with O(missing=ignore)).
      type: bool
      sample: false
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.npu.fleet.plugins.module_utils._gateway import check_arguments
from ansible_collections.npu.fleet.plugins.module_utils._haproxy_runtime import (
    DEFAULT_SOCKET,
    HaproxyRuntime,
    HaproxyRuntimeError,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type="path", default=DEFAULT_SOCKET),
            successors=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    backend=dict(type="str", required=True),
                    server=dict(type="str", required=True),
                    port=dict(type="int", required=True),
                ),
            ),
            wait=dict(type="int", default=30),
            check_interval_ms=dict(type="int", default=1000),
            missing=dict(type="str", default="fail", choices=["fail", "ignore"]),
            timeout=dict(type="float", default=5.0),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["wait"] < 0 or params["timeout"] <= 0 or params["check_interval_ms"] <= 0:
        module.fail_json(msg="wait must be >= 0, timeout and check_interval_ms > 0")
    runtime = HaproxyRuntime(params["socket"], timeout=params["timeout"])
    if not params["successors"] or (params["missing"] == "ignore" and not os.path.exists(runtime.socket_path)):
        module.exit_json(changed=False, socket=runtime.socket_path, gateway=os.path.exists(runtime.socket_path), successors=[])
    try:
        present = set((entry["backend"], entry["server"]) for entry in runtime.servers())
    except HaproxyRuntimeError as error:
        module.fail_json(msg=str(error), socket=runtime.socket_path)
    missing = [
        "%s/%s" % (item["backend"], item["server"]) for item in params["successors"] if (item["backend"], item["server"]) not in present
    ]
    if missing and params["missing"] == "fail":
        module.fail_json(
            msg="not in the running configuration of the gateway HAProxy at %s: %s. Reload the gateway first, or give "
            "missing=ignore (its next reload adds the successors)" % (runtime.socket_path, ", ".join(missing)),
            socket=runtime.socket_path,
        )
    results = []
    for item in params["successors"]:
        name = "%s:%d" % (item["server"], item["port"])
        if (item["backend"], item["server"]) not in present:
            results.append(dict(backend=item["backend"], name=None, added=False, up=False, check_status=None, waited=0.0, missing=True))
        elif module.check_mode:
            results.append(
                dict(
                    backend=item["backend"], name=name, added=(item["backend"], name) not in present, up=None, check_status=None, waited=0.0
                )
            )
        else:
            try:
                outcome = runtime.add_successor(
                    item["backend"],
                    item["server"],
                    item["port"],
                    check_arguments({"check_interval_ms": params["check_interval_ms"]}),
                    params["wait"],
                )
            except HaproxyRuntimeError as error:
                module.fail_json(
                    msg=str(error), changed=any(result["added"] for result in results), socket=runtime.socket_path, successors=results
                )
            results.append(dict(outcome, backend=item["backend"], missing=False))
    changed = any(result["added"] for result in results)
    down = [result for result in results if result["up"] is False and not result.get("missing")]
    if down:
        module.fail_json(
            msg="the gateway at %s cannot reach %s: its health check did not pass within %ds (last: %s); they were removed "
            "again and never took a request. The replicas they replace still serve. Check that the gateway host reaches "
            "these ports (a firewall between hosts?)"
            % (
                runtime.socket_path,
                ", ".join("%s/%s" % (result["backend"], result["name"]) for result in down),
                params["wait"],
                ", ".join(str(result["check_status"]) for result in down),
            ),
            changed=changed,
            socket=runtime.socket_path,
            successors=results,
        )
    module.exit_json(changed=changed, socket=runtime.socket_path, successors=results)


if __name__ == "__main__":
    main()
