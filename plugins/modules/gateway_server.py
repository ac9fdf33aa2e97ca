#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gateway_server
short_description: Drain, ready or take down replicas in an npu.fleet HAProxy gateway
version_added: 0.1.0
description:
  - Sets the admin state of servers (replicas) in the HAProxy of an npu.fleet gateway through its runtime API socket,
    the way a rolling update takes one replica out of every gateway before its container stops.
  - Runs on the gateway host and talks to the UNIX socket the gateway container publishes there (the container image
    has no socat). Each model is a backend C(model_<name>), each replica a server named after its container
    (C(npu-fleet-qwen3-8b-0)).
  - With O(state=drain) the server takes no new requests while the ones in progress finish; the module then waits until
    the server has no request in progress or queued (HAProxy's C(scur) and C(qcur) both 0) or O(drain_timeout) passed.
    A timeout is not a failure - RV(servers[].drained) is V(false) and the caller decides whether to stop the container.
    An already drained server is waited for again, so a re-run still guarantees its sessions are gone.
  - With O(state=ready) the server takes requests again; O(state=maint) takes it out of the backend entirely
    (requests in progress still finish, nothing is waited for).
  - Every requested server is looked up before any state changes, so a missing server fails the task (O(missing=fail))
    without having drained the others.
  - The state is read back after the change; a server that does not reach it (maintenance inherited from a tracked
    server, or a DNS resolution failure) fails the task.
author:
  - npu.fleet engineers (@npu-fleet)
options:
  socket:
    description:
      - Host path of the gateway's HAProxy runtime API socket (C(stats socket ... level admin) inside the container).
    type: path
    default: /var/lib/npu-fleet/gateway/run/admin.sock
  servers:
    description: Servers to set, each by its backend and server name.
    type: list
    elements: dict
    required: true
    suboptions:
      backend:
        description: Backend of the model, C(model_<name>).
        type: str
        required: true
      server:
        description: Server of the replica, named after its container (C(npu-fleet-<model>-<replica>)).
        type: str
        required: true
  state:
    description:
      - Admin state to set. V(ready) takes requests, V(drain) takes no new ones while those in progress finish,
        V(maint) takes none.
    type: str
    required: true
    choices: [ready, drain, maint]
  drain_timeout:
    description:
      - With O(state=drain), seconds to wait for the sessions of every server to reach 0 (counted from when the servers
        were set to drain, not per server). V(0) does not wait.
    type: int
    default: 30
  missing:
    description:
      - What to do with a server that is not in HAProxy's running configuration. V(fail) fails the task naming all of
        them. V(ignore) skips them (RV(servers[].missing=true)) - for servers a pending reload will add, or that were
        removed - and also accepts a host where no gateway runs yet (no socket at O(socket); RV(gateway=false)).
      - An empty O(servers) changes nothing.
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
    details: In check mode the states are read and RV(changed) says whether any would change; nothing is set or waited for.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
notes:
  - The socket is created by the gateway container (mode 660); run the task with C(become) unless the remote user is in
    the socket's group.
  - The admin state is kept by the running HAProxy only; a gateway reload or restart brings the servers back to what its
    configuration says.
"""

EXAMPLES = r"""
---
- name: Take the replica out of every gateway before its container stops
  npu.fleet.gateway_server:
    servers:
      - backend: model_qwen3-8b
        server: npu-fleet-qwen3-8b-0
    state: drain
    drain_timeout: 60
  become: true
  delegate_to: "{{ item }}"
  loop: "{{ groups['gateways'] }}"
  register: drain

- name: Put it back once its replacement passed its probe
  npu.fleet.gateway_server:
    servers:
      - backend: model_qwen3-8b
        server: npu-fleet-qwen3-8b-0
    state: ready
    missing: ignore
  become: true
"""

RETURN = r"""
gateway:
  description: Whether a gateway runs there (its socket exists); only returned when nothing was asked of it.
  type: bool
  returned: when O(servers) is empty, or with O(missing=ignore) and no socket
  sample: false
changed:
  description: Whether the admin state of any server changed (would change, in check mode).
  type: bool
  returned: always
  sample: true
socket:
  description: The runtime socket that was used.
  type: str
  returned: always
  sample: /var/lib/npu-fleet/gateway/run/admin.sock
servers:
  description: One entry per requested server, in the order of O(servers) (duplicates once).
  type: list
  elements: dict
  returned: always
  contains:
    backend:
      description: Backend of the server.
      type: str
      sample: model_qwen3-8b
    server:
      description: Server name.
      type: str
      sample: npu-fleet-qwen3-8b-0
    missing:
      description: Whether the server is not in the running configuration (only with O(missing=ignore)).
      type: bool
      sample: false
    state_before:
      description: Admin state before the task (V(ready), V(drain), V(maint)); null when missing.
      type: str
      sample: ready
    state_after:
      description: Admin state after the task (the one it would have, in check mode); null when missing.
      type: str
      sample: drain
    status:
      description: HAProxy's status of the server after the task (V(UP), V(DOWN), V(DRAIN), V(MAINT), V(NOLB), V(no check)); null when missing.
      type: str
      sample: DRAIN
    sessions:
      description:
        - Requests in progress on the server (HAProxy's C(scur)) plus requests queued for it (C(qcur)), at the last read.
        - null when missing.
      type: int
      sample: 0
    drained:
      description:
        - With O(state=drain), whether the sessions reached 0 within O(drain_timeout).
        - null for other states, for missing servers and in check mode.
      type: bool
      sample: true
    waited:
      description: Seconds from setting the state until the server drained or the wait ended (0 when nothing was waited for).
      type: float
      sample: 3.4
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.npu.fleet.plugins.module_utils._haproxy_runtime import (
    DEFAULT_SOCKET,
    HaproxyRuntime,
    HaproxyRuntimeError,
)


def _requested(servers):
    """O(servers) as (backend, server) pairs, in order, each once."""
    seen, pairs = set(), []
    for entry in servers:
        pair = (entry["backend"], entry["server"])
        if pair not in seen:
            seen.add(pair)
            pairs.append(pair)
    return pairs


def _missing_message(runtime, missing, current):
    backends = sorted(set(backend for backend, unused in current))
    return (
        "not in the running configuration of the gateway HAProxy at %s: %s (backends there: %s). Reload the gateway first, "
        "fix the names, or give missing=ignore for servers a pending reload will add or that were removed"
        % (runtime.socket_path, ", ".join("%s/%s" % pair for pair in missing), ", ".join(backends) or "none")
    )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type="path", default=DEFAULT_SOCKET),
            servers=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(backend=dict(type="str", required=True), server=dict(type="str", required=True)),
            ),
            state=dict(type="str", required=True, choices=["ready", "drain", "maint"]),
            drain_timeout=dict(type="int", default=30),
            missing=dict(type="str", default="fail", choices=["fail", "ignore"]),
            timeout=dict(type="float", default=5.0),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["drain_timeout"] < 0 or params["timeout"] <= 0:
        module.fail_json(msg="drain_timeout must be >= 0 and timeout > 0")
    runtime = HaproxyRuntime(params["socket"], timeout=params["timeout"])
    if not params["servers"]:
        # A wave or a removal with no replica behind any gateway: nothing to do.
        module.exit_json(changed=False, socket=runtime.socket_path, gateway=os.path.exists(runtime.socket_path), servers=[])
    if params["missing"] == "ignore" and not os.path.exists(runtime.socket_path):
        # No gateway runs on this host yet (the first deploy starts it after the replicas): nothing is behind it.
        module.exit_json(changed=False, socket=runtime.socket_path, gateway=False, servers=[])
    wanted = params["state"]
    pairs = _requested(params["servers"])

    def fail(error, **extra):
        module.fail_json(msg=str(error), socket=runtime.socket_path, **extra)

    try:
        current = dict(((entry["backend"], entry["server"]), entry) for entry in runtime.servers())
    except HaproxyRuntimeError as error:
        fail(error)
    missing = [pair for pair in pairs if pair not in current]
    if missing and params["missing"] == "fail":
        fail(_missing_message(runtime, missing, current))

    results = []
    for backend, server in pairs:
        entry = current.get((backend, server))
        if entry is None:
            results.append(
                dict(
                    backend=backend,
                    server=server,
                    missing=True,
                    state_before=None,
                    state_after=None,
                    status=None,
                    sessions=None,
                    drained=None,
                    waited=0.0,
                )
            )
            continue
        results.append(
            dict(
                backend=backend,
                server=server,
                missing=False,
                state_before=entry["admin_state"],
                state_after=wanted,
                status=entry["status"],
                sessions=entry["sessions"] + entry["queued"],
                drained=None,
                waited=0.0,
            )
        )
    present = [result for result in results if not result["missing"]]
    changed = any(result["state_before"] != wanted for result in present)
    if module.check_mode:
        module.exit_json(changed=changed, socket=runtime.socket_path, servers=results)

    start = time.monotonic()
    try:
        for result in present:
            if result["state_before"] != wanted:
                runtime.set_state(result["backend"], result["server"], wanted)
        if wanted == "drain":
            # HAProxy drains every server at once; one deadline for all, counted from the change.
            deadline = start + params["drain_timeout"]
            for result in present:
                began = time.monotonic()
                waited = runtime.wait_drained(result["backend"], result["server"], max(0.0, deadline - began))
                result.update(drained=waited["drained"], sessions=waited["sessions"], waited=round(began - start + waited["waited"], 2))
        after = dict(((entry["backend"], entry["server"]), entry) for entry in runtime.servers())
    except HaproxyRuntimeError as error:
        fail(error, changed=changed, servers=results)

    stuck = []
    for result in present:
        entry = after.get((result["backend"], result["server"]))
        if entry is None:
            result.update(state_after=None, status=None)
            stuck.append("%s/%s is gone from the running configuration (a reload during the task?)" % (result["backend"], result["server"]))
            continue
        result.update(state_after=entry["admin_state"], status=entry["status"])
        if wanted != "drain":
            result["sessions"] = entry["sessions"] + entry["queued"]
        if entry["admin_state"] != wanted:
            stuck.append(
                "%s/%s is %s (%s) after 'set server ... state %s': its state is inherited from a tracked server "
                "('track' in the gateway configuration) or forced by a DNS resolution failure"
                % (result["backend"], result["server"], entry["admin_state"], entry["status_text"], wanted)
            )
    if stuck:
        module.fail_json(msg="; ".join(stuck), changed=changed, socket=runtime.socket_path, servers=results)
    module.exit_json(changed=changed, socket=runtime.socket_path, servers=results)


if __name__ == "__main__":
    main()
