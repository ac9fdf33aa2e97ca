# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin of npu.fleet.fleet_plan: plan the whole fleet once, on the controller.

The planner needs every host's facts at once, which no module running on one
target has: this plugin reads ``hostvars`` (``npu`` from npu_facts,
``npu_preflight`` from the preflight role, ``npu_image_selection`` from the
image_select role, ``npu_fleet_containers`` (what runs now) from the
preflight role and a few ``fleet_plan_*`` inventory variables), lets
explicit ``hosts`` entries override them, calls
plugins/module_utils/_fleet_plan/ and returns the plan. It never connects to
a host. Documentation: plugins/modules/fleet_plan.py and docs/placement.md.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan import (
    DEFAULT_PORT_RANGE,
    SHARE_CAP,
    PlacementError,
    plan,
    render_table,
)
from ansible_collections.npu.fleet.plugins.module_utils._replica import ContainerSpecError, replicas_running
from ansible_collections.npu.fleet.plugins.plugin_utils._plain import plain

ARGUMENT_SPEC = {
    "models": {"type": "list", "elements": "dict", "required": True},
    "current": {"type": "list", "elements": "dict"},
    "hosts": {"type": "dict", "default": {}},
    "inventory_hosts": {"type": "list", "elements": "str"},
    "port_range": {"type": "str", "default": DEFAULT_PORT_RANGE},
    "share_chip_limit": {"type": "float", "default": SHARE_CAP},
    "image_selector": {"type": "list", "elements": "dict", "default": []},
    "port_scheme": {"type": "str", "choices": ["device", "hash"], "default": "device"},
}

# hostvars -> host spec field, for the inventory variables the planner reads.
HOSTVAR_FIELDS = (
    ("fleet_plan_labels", "labels"),
    ("fleet_plan_port_range", "port_range"),
    ("fleet_plan_used_ports", "used_ports"),
    ("preflight_reserved_devices", "reserved_devices"),
)
NO_PREFLIGHT = "no npu_preflight fact: run the npu.fleet.preflight role first (npu.fleet.plan_models does)"


def host_spec_from_vars(hostvars):
    """One host's planner input from its variables: npu facts, preflight verdict, fleet_plan_* vars."""
    facts = hostvars.get("ansible_facts") or {}
    npu = facts.get("npu") or hostvars.get("npu") or {}
    spec = {"chips": plain(npu.get("chips") or [])}
    if npu.get("npu_smi_layout"):
        spec["npu_smi_layout"] = str(npu["npu_smi_layout"])
    preflight = hostvars.get("npu_preflight")
    if preflight is None:
        spec["preflight_ok"] = False
        spec["notes"] = [NO_PREFLIGHT]
    else:
        spec["preflight_ok"] = bool(preflight.get("ok"))
        spec["excluded_devices"] = plain(preflight.get("excluded_devices") or [])
        spec["problems"] = plain(preflight.get("problems") or [])
    for variable, field in HOSTVAR_FIELDS:
        value = hostvars.get(variable)
        if value is not None:
            spec[field] = plain(value)
    if npu.get("listening_ports"):  # what `ss -Hltn` showed at discovery: taken by something, maybe by us
        spec["used_ports"] = sorted(set(spec.get("used_ports") or []) | set(plain(npu["listening_ports"])))
    return spec


def assemble_hosts(hostvars, names, explicit):
    """Host name -> planner spec: read from hostvars for ``names``, then fields of ``explicit`` win."""
    hosts = {}
    for name in names:
        spec = (
            host_spec_from_vars(hostvars.get(name) or {})
            if name in hostvars
            else {"chips": [], "preflight_ok": False, "notes": ["not in the inventory"]}
        )
        hosts[str(name)] = spec
    for name, override in (explicit or {}).items():
        if not isinstance(override, Mapping):
            raise PlacementError("hosts.%s must be a mapping of host fields (chips, labels, port_range, ...)" % name)
        merged = dict(hosts.get(str(name), {}))
        if "preflight_ok" in override:
            merged.pop("notes", None)  # an explicit verdict replaces "no npu_preflight fact"
        merged.update(plain(override))
        hosts[str(name)] = merged
    return hosts


def image_selector_from_rules(rules):
    """The seam for image selection: rules [{model, host?, backend?, image?}], most specific first.

    A later image-selection step can pass its own rules (or replace this
    function); without rules backend/image come from the model entry.
    """
    for index, rule in enumerate(rules):
        if not isinstance(rule, Mapping) or not rule.get("model"):
            raise PlacementError("image_selector[%d] needs at least 'model' (and 'backend' and/or 'image')" % index)
        unknown = sorted(set(rule) - set(("model", "host", "backend", "image")))
        if unknown:
            raise PlacementError(
                "image_selector[%d]: unknown field(s) %s; allowed: model, host, backend, image" % (index, ", ".join(unknown))
            )
    if not rules:
        return None

    def select(model, host):
        """Rule for (model, host), else for the model on any host, else None."""
        for wanted_host in (host, None):
            for rule in rules:
                if rule["model"] == model["name"] and rule.get("host") == wanted_host:
                    return dict((key, rule[key]) for key in ("backend", "image") if key in rule)
        return None

    return select


def make_image_selector(rules, selections):
    """Backend/image per (model, host): explicit rules first, then the host's ``npu_image_selection``
    fact (model name -> {backend, image, ...}, set by the npu.fleet.image_select role); None: the
    model entry's own."""
    by_rule = image_selector_from_rules(rules)
    if by_rule is None and not selections:
        return None

    def select(model, host):
        chosen = by_rule(model, host) if by_rule is not None else None
        if chosen:
            return chosen
        picked = (selections.get(host) or {}).get(model["name"])
        if isinstance(picked, Mapping) and (picked.get("backend") or picked.get("image")):
            return {"backend": picked.get("backend"), "image": picked.get("image")}
        return None

    return select


def running_from_vars(hostvars, names):
    """What runs now, from the labels of the npu.fleet containers preflight read on each host (npu_fleet_containers)."""
    current = []
    for name in names:
        containers = (hostvars.get(name) or {}).get("npu_fleet_containers") if name in hostvars else None
        if containers:
            current.extend(replicas_running(name, plain(containers)))
    return current


def image_selections(hostvars, names):
    """host -> npu_image_selection fact, for the hosts that have one."""
    result = {}
    for name in names:
        if name in hostvars:
            selection = (hostvars.get(name) or {}).get("npu_image_selection")
            if isinstance(selection, Mapping):
                result[name] = plain(selection)
    return result


class ActionModule(ActionBase):
    """Plans on the controller; no connection, no module transfer."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        unused, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        names = args["inventory_hosts"]
        if names is None:
            names = task_vars.get("ansible_play_hosts_all") or []
        hostvars = task_vars.get("hostvars") or {}
        try:
            hosts = assemble_hosts(hostvars, [str(name) for name in names], args["hosts"])
            if not hosts:
                raise AnsibleActionFail(
                    "no hosts to plan for: the play runs over no NPU host (is the npu_hosts group missing or empty in the "
                    "inventory?); add the Ascend hosts to npu_hosts, or give 'hosts' or 'inventory_hosts'"
                )
            current = plain(args["current"]) if args["current"] is not None else running_from_vars(hostvars, list(hosts))
            planned = plan(
                hosts,
                plain(args["models"]),
                current=current,
                image_selector=make_image_selector(plain(args["image_selector"]), image_selections(hostvars, [str(n) for n in names])),
                share_cap=args["share_chip_limit"],
                default_port_range=args["port_range"],
                known_hosts=sorted(str(name) for name in (task_vars.get("groups") or {}).get("all", [])),
                port_scheme=args["port_scheme"],
            )
        except (PlacementError, ContainerSpecError) as exc:
            result.update(failed=True, msg=str(exc))
            return result
        result.update(changed=False, plan=planned, table=render_table(planned))
        return result
