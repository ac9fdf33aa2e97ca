# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""The gateway's place in the fleet: who is behind it, how its container runs, where clients reach it.

``_gateway.py`` writes HAProxy's configuration from a list of replicas; this
file decides that list from the probe results (a replica joins only after it
passed its probe, or when its previous container was restored), the servers a
rolling update drains, the gateway container (bridge network, published ports
only, the statistics port on the host's loopback, no capabilities, read-only
root) and the URLs the report prints.
"""

from ansible_collections.npu.fleet.plugins.module_utils._gateway import DEFAULTS as CONFIG_DEFAULTS
from ansible_collections.npu.fleet.plugins.module_utils._gateway import gateway_config

__all__ = [
    "CONTAINER_NAME",
    "GATEWAY_LABEL",
    "gateway_container",
    "gateway_layout",
    "gateway_members",
    "gateway_servers",
    "gateway_urls",
]

CONTAINER_NAME = "npu-fleet-gateway"
# Not io.npu-fleet.managed: that label marks replicas (replicas_running reads them).
GATEWAY_LABEL = "io.npu-fleet.gateway"
CONFIG_DIR = "/usr/local/etc/haproxy"
RUN_DIR = "/var/run/haproxy"


def gateway_members(results, addresses):
    """The replicas a gateway balances over: those whose probe passed, and failed replacements whose previous
    container serves again (rolled back); ``addresses`` maps a host to where the gateways reach it."""
    members = []
    for result in results or []:
        if not (result.get("healthy") or result.get("rolled_back")):
            continue
        host = result.get("host")
        members.append(
            {
                "model": result["model"],
                "name": result["name"],
                "address": (addresses or {}).get(host) or host,
                "port": int(result["port"]),
            }
        )
    return sorted(members, key=lambda item: item["name"])


def gateway_layout(models, results, addresses, options=None):
    """HAProxy's files and the model ports for the fleet's catalogue and this run's probe results."""
    catalogue = [
        {"name": entry["name"], "gateway_port": entry.get("gateway_port"), "max_model_len": entry.get("max_model_len")}
        for entry in models or []
    ]
    return gateway_config(catalogue, gateway_members(results, addresses), options)


def gateway_servers(replicas, models, successors=False):
    """``{backend, server}`` of each replica (``model``, ``name``), the names the gateway configuration gives them.

    With ``successors``, also each replica's new ``port`` (surge successors, for npu.fleet.gateway_successor).
    """
    catalogue = [{"name": entry["name"]} for entry in models or []]
    known = set(entry["name"] for entry in catalogue)
    backends = gateway_config(catalogue, [], None)["backends"]
    servers = []
    for item in replicas or []:
        if item.get("model") not in known:
            continue
        server = {"backend": backends[item["model"]], "server": item["name"]}
        if successors:
            server["port"] = int(item["port"])
        servers.append(server)
    return servers


def gateway_container(image, ports, options=None):
    """The gateway container for community.docker.docker_container.

    ``ports`` is the model -> port map of the configuration; ``options``:
    ``dir`` (host directory with conf/ and run/), ``router_port``, ``stats_port``,
    ``bind_address``, ``stop_timeout`` (SIGUSR1 is a soft stop: in-flight requests finish).
    """
    options = dict(options or {})
    router_port = int(options.get("router_port") or CONFIG_DEFAULTS["router_port"])
    stats_port = int(options.get("stats_port") or CONFIG_DEFAULTS["stats_port"])
    bind = options.get("bind_address") or "0.0.0.0"
    host_dir = str(options.get("dir") or "/var/lib/npu-fleet/gateway").rstrip("/")
    published = ["%s:%d:%d" % (bind, router_port, router_port)]
    published += ["%s:%d:%d" % (bind, port, port) for port in sorted(set(int(port) for port in (ports or {}).values()))]
    # The statistics and Prometheus endpoint answers on the host's loopback only.
    published.append("127.0.0.1:%d:%d" % (stats_port, stats_port))
    return {
        "name": CONTAINER_NAME,
        "image": image,
        "command": ["haproxy", "-W", "-db", "-f", CONFIG_DIR + "/haproxy.cfg"],
        "published_ports": published,
        "volumes": ["%s/conf:%s:ro" % (host_dir, CONFIG_DIR), "%s/run:%s:rw" % (host_dir, RUN_DIR)],
        "network_mode": "bridge",
        "cap_drop": ["ALL"],
        "security_opts": ["no-new-privileges:true"],
        "read_only": True,
        "restart_policy": "unless-stopped",
        "stop_timeout": int(options.get("stop_timeout") or 30),
        "labels": {GATEWAY_LABEL: "true"},
    }


def gateway_urls(ports, router_port, addresses):
    """Where clients reach the fleet: the router and each model's own port on every gateway host."""
    hosts = sorted(set(address for address in (addresses or []) if address))
    return {
        "router": ["http://%s:%d" % (_bracket(address), int(router_port)) for address in hosts],
        "models": dict(
            (model, ["http://%s:%d" % (_bracket(address), int(port)) for address in hosts]) for model, port in sorted((ports or {}).items())
        ),
    }


def _bracket(address):
    address = str(address)
    return "[%s]" % address if ":" in address and not address.startswith("[") else address
