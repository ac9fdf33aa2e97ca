#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gateway_layout
short_description: The HAProxy gateway of an Ascend fleet - configuration, ports and container - from this run's probe results
version_added: 0.2.0
description:
  - Decides, on the controller, what the C(npu.fleet.gateway) role writes and runs on a gateway host - the HAProxy
    configuration (one frontend per model balancing over all its replicas across hosts, one frontend that routes an
    OpenAI request by its JSON C(model) and lists the models at C(/v1/models), active C(/health) checks, the statistics
    and Prometheus endpoint), the model list and map files it reads, and the gateway container.
  - A replica is behind the gateway when its probe passed in this run, or when its previous container was restored
    after a failed replacement (C(health_probe_results) of every host in O(hosts)). Its address is the host's
    C(npu_fleet_advertise_address), else its C(serve_bind_address) when it names one address, else its gathered default
    IPv4 address, else C(ansible_host).
  - Each model's port is its catalogue C(gateway_port), else a stable port from O(port_range) derived from its name.
  - The API key is checked by the replicas; the gateway compares only the SHA-256 digest of C(Authorization) for what it
    answers itself (C(/v1/models), unknown models). The key itself is never in the configuration or the result.
  - "This is an action plugin: it runs on the controller and never connects to a host."
author:
  - npu.fleet engineers (@npu-fleet)
options:
  models:
    description: The validated catalogue (default C(npu_fleet_catalogue)); C(name), C(gateway_port) and C(max_model_len) are read.
    type: list
    elements: dict
  hosts:
    description: The hosts whose probe results are read (default the C(npu_hosts) group).
    type: list
    elements: str
  image:
    description: The HAProxy image of the gateway container (2.6 or later; the official C(haproxy) image layout).
    type: str
    required: true
  api_key:
    description: The serving API key; only its digest is used. Never logged.
    type: str
  dir:
    description: Directory on the gateway host holding C(conf/) (the configuration, mounted read-only) and C(run/) (the runtime socket).
    type: path
    default: /var/lib/npu-fleet/gateway
  router_port:
    description: Port of the frontend that routes by the request's C(model).
    type: int
    default: 8000
  port_range:
    description: Range the per-model ports are taken from, C(low-high).
    type: str
    default: 9000-9499
  stats_port:
    description: Port of the statistics page (C(/stats)) and Prometheus metrics (C(/metrics)), published on the host's loopback only.
    type: int
    default: 8404
  bind_address:
    description: Host address the router and model ports are published on.
    type: str
    default: 0.0.0.0
  check_interval_ms:
    description: Interval of the active C(/health) checks; a replica leaves rotation after two failed checks.
    type: int
    default: 1000
  request_timeout:
    description: Seconds a request may take (long generations).
    type: int
    default: 600
  stop_timeout:
    description: Seconds C(docker stop) gives the gateway (SIGUSR1, a soft stop - in-flight requests finish).
    type: int
    default: 30
notes:
  - Runs on the controller; check mode changes nothing (nothing is changed in any mode).
seealso:
  - module: npu.fleet.gateway_server
"""

EXAMPLES = r"""
---
- name: Work out this gateway's configuration
  npu.fleet.gateway_layout:
    image: haproxy:2.6
    api_key: "{{ serve_api_key }}"
  register: layout
"""

RETURN = r"""
config:
  description: The C(haproxy.cfg) text.
  returned: success
  type: str
models_json:
  description: The C(/v1/models) answer of the router.
  returned: success
  type: str
model_map:
  description: The model to backend map of the router.
  returned: success
  type: str
ports:
  description: Model name to its frontend port.
  returned: success
  type: dict
servers:
  description: The servers behind the gateway - C(model), C(backend), C(server) (container name), C(address), C(port).
  returned: success
  type: list
  elements: dict
container:
  description: The gateway container's settings for M(community.docker.docker_container).
  returned: success
  type: dict
endpoint:
  description: C(address), C(router_port) and C(ports) of this gateway, for the report.
  returned: success
  type: dict
urls:
  description: C(router) (list of URLs) and C(models) (model to URLs) of this gateway.
  returned: success
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec={
            "models": {"type": "list", "elements": "dict"},
            "hosts": {"type": "list", "elements": "str"},
            "image": {"type": "str", "required": True},
            "api_key": {"type": "str", "no_log": True},
            "dir": {"type": "path", "default": "/var/lib/npu-fleet/gateway"},
            "router_port": {"type": "int", "default": 8000},
            "port_range": {"type": "str", "default": "9000-9499"},
            "stats_port": {"type": "int", "default": 8404},
            "bind_address": {"type": "str", "default": "0.0.0.0"},
            "check_interval_ms": {"type": "int", "default": 1000},
            "request_timeout": {"type": "int", "default": 600},
            "stop_timeout": {"type": "int", "default": 30},
        },
        supports_check_mode=True,
    )
    module.fail_json(
        msg="npu.fleet.gateway_layout runs on the controller as an action plugin; call it as a task (npu.fleet.gateway_layout), "
        "not as a module on a host"
    )


if __name__ == "__main__":
    main()
