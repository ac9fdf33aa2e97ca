# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this plugin util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""What the controller-side action plugins read from other hosts' variables.

The report and the gateway both need the whole fleet at once (every host's
probe results and address, the plan of this run), which no module running on
one target has; they read it here, as plain values.
"""

from __future__ import annotations

from ansible_collections.npu.fleet.plugins.plugin_utils._plain import plain

# The host variables read: probe results, where a host is reached, its gateway endpoint, how far its run got.
HOSTVARS = (
    "health_probe_results",
    "npu_fleet_advertise_address",
    "serve_bind_address",
    "ansible_default_ipv4",
    "ansible_host",
    "gateway_endpoint",
    "serve_anonymous",
    "npu_fleet_stage",
    "npu_preflight",
    "model_sources_results",
)


def planned_here(hostvars, names):
    """The plan and the validated catalogue of this run, from the first host that has them (npu.fleet.plan_models)."""
    for name in names:
        host_vars = hostvars[name] if name in hostvars else {}
        if (host_vars.get("plan_models_result") or {}).get("plan") is not None:
            return plain(host_vars["plan_models_result"]["plan"]), plain(host_vars.get("npu_fleet_catalogue") or [])
    return None, []


def read_hostvars(hostvars, names):
    """Host name -> the variables of HOSTVARS it has (hosts not in the inventory: none)."""
    found = {}
    for name in names:
        host_vars = hostvars[name] if name in hostvars else {}
        found[name] = dict((key, plain(host_vars.get(key))) for key in HOSTVARS if host_vars.get(key) is not None)
    return found
