# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin of npu.fleet.gateway_layout: the gateway's configuration for the whole fleet, on the controller.

A gateway balances over every replica of the fleet, so its configuration needs
every host's probe results and address at once, which no module on one target
has: this plugin reads them from ``hostvars`` and calls
plugins/module_utils/_gateway_fleet.py. It never connects to a host; the API
key only enters as its SHA-256 digest. Documentation: plugins/modules/gateway_layout.py.
"""

from __future__ import annotations

import hashlib

from ansible.plugins.action import ActionBase

from ansible_collections.npu.fleet.plugins.module_utils._gateway import GatewayError
from ansible_collections.npu.fleet.plugins.module_utils._gateway_fleet import gateway_container, gateway_layout, gateway_urls
from ansible_collections.npu.fleet.plugins.module_utils._report import reach_address
from ansible_collections.npu.fleet.plugins.plugin_utils._hostvars import read_hostvars
from ansible_collections.npu.fleet.plugins.plugin_utils._plain import plain

ARGUMENT_SPEC = {
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
}


def _port_range(text):
    low, _sep, high = str(text).partition("-")
    try:
        return int(low), int(high)
    except ValueError:
        raise GatewayError("npu_fleet_gateway_port_range must look like '9000-9499', got %r" % (text,))


class ActionModule(ActionBase):
    """Computes the gateway layout on the controller; no connection, no module transfer."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        unused, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        names = args["hosts"]
        if names is None:
            names = (task_vars.get("groups") or {}).get("npu_hosts") or []
        names = [str(name) for name in names]
        models = plain(args["models"]) if args["models"] is not None else plain(task_vars.get("npu_fleet_catalogue") or [])
        found = read_hostvars(task_vars.get("hostvars") or {}, names)
        results, addresses = [], {}
        for name in names:
            addresses[name] = reach_address(name, found[name])
            results.extend(dict(item, host=name) for item in found[name].get("health_probe_results") or [])
        options = {
            "router_port": args["router_port"],
            "stats_port": args["stats_port"],
            "bind_address": args["bind_address"],
            "check_interval_ms": args["check_interval_ms"],
            "request_timeout_s": args["request_timeout"],
            # The key is checked at the replicas; the gateway only answers /v1/models itself, and compares a digest.
            "api_key_sha256": hashlib.sha256(("Bearer " + args["api_key"]).encode("utf-8")).hexdigest() if args["api_key"] else None,
        }
        try:
            options["port_range"] = _port_range(args["port_range"])
            layout = gateway_layout(models, results, addresses, options)
        except GatewayError as exc:
            result.update(failed=True, msg="gateway: %s" % exc)
            return result
        here = str(task_vars.get("inventory_hostname"))
        own = read_hostvars(task_vars.get("hostvars") or {}, [here])[here]
        address = reach_address(here, own)
        container = gateway_container(
            args["image"],
            layout["ports"],
            {
                "dir": args["dir"],
                "router_port": args["router_port"],
                "stats_port": args["stats_port"],
                "bind_address": args["bind_address"],
                "stop_timeout": args["stop_timeout"],
            },
        )
        result.update(
            changed=False,
            config=layout["config"],
            models_json=layout["models_json"],
            model_map=layout["model_map"],
            ports=layout["ports"],
            servers=layout["servers"],
            container=container,
            endpoint={"address": address, "router_port": args["router_port"], "ports": layout["ports"]},
            urls=gateway_urls(layout["ports"], args["router_port"], [address]),
        )
        return result
