# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""The sticky pass: keep every running replica that is still valid where it runs.

PRIVATE to the ``npu.fleet.fleet_plan`` planner (see ``__init__.py``). This
file exists for step 2 of the plan: before anything new is placed, each
``current`` replica is checked (model, host, chips, interconnect shape,
memory fit, port) and either committed as kept or given the reason it has
to move; the changes list quotes that reason.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.fleet import _Chip, _Host, alloc_size
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.inputs import AUTO, DEFAULT_UTILIZATION, _Model
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.search import _Option, _Planner, _record

# --------------------------------------------------------------------------- sticky pass


def _current_option(
    planner: _Planner, model: _Model, host: _Host, chips: List[_Chip], entry: Dict[str, Any]
) -> Tuple[Optional[_Option], str]:
    """The option a running replica keeps on its chips, or why it cannot stay."""
    memory = min(chip.memory_mb for chip in chips)
    options = [option for option in planner.options_for(model, host.family, memory, len(host.chips)) if option.k == len(chips)]
    wanted = str(entry.get("tensor_parallel_size"))
    for option in sorted(options, key=lambda item: 0 if str(item.tp) == wanted else 1):
        return option, ""  # the running TP size if it is still viable, else the best of the same chip count
    if model.tp != AUTO and alloc_size(host.family, model.tp) != len(chips):
        return None, "tensor_parallel_size is now %d (%d chip(s)); it runs on %d" % (
            model.tp,
            alloc_size(host.family, model.tp),
            len(chips),
        )
    fit = planner.fit(
        model,
        memory,
        model.tp if model.tp != AUTO else max(1, len(chips)),
        model.util_milli or int(DEFAULT_UTILIZATION * 1000),
        host.family,
    )
    return None, "no longer fits its %d chip(s): %s" % (len(chips), fit["message"])


def _shape_ok(host: _Host, chips: List[_Chip]) -> bool:
    """Whether these chips form a group the family's interconnect rules allow."""
    k = len(chips)
    if host.family == "910a" and k > 4:
        return k == len(host.chips)
    if len(set(chip.group for chip in chips)) != 1:
        return False
    if host.family == "a3" or (host.family == "310p" and k >= 2):
        indices = set(chip.index for chip in chips)
        unit_ids = set(chip.unit for chip in chips)
        group = host.groups[chips[0].group]
        return all(set(group[unit]) <= indices for unit in unit_ids)
    return True


def _checked_stay(planner: _Planner, entry: Dict[str, Any]) -> Tuple[Optional[str], Optional[Dict[str, Any]]]:
    """(None, record) when the running replica stays as it is, else (why it cannot, None)."""
    model = planner.models.get(entry["model"])
    if model is None:
        return "model %s is no longer in the catalogue" % entry["model"], None
    if entry["replica"] >= model.replicas:
        return "replica %d is beyond replicas: %d" % (entry["replica"], model.replicas), None
    host = planner.hosts.get(entry["host"])
    if host is None:
        return "host %s is no longer in the fleet" % entry["host"], None
    if host.ok and not planner.eligible(model, host):
        return "host %s no longer matches the model's hosts/labels/port constraints" % host.name, None
    by_device = dict((chip.device, chip) for chip in host.chips if chip.device)
    chips = []
    for device in entry["devices"]:
        chip = by_device.get(device)
        if chip is None:
            return "%s is not a chip of %s any more" % (device, host.name), None
        if not chip.usable:
            return "%s on %s is not usable: %s" % (device, host.name, chip.why), None
        if chip.owner is not None or (chip.share_used and not model.share):
            return "%s on %s is already given to another replica" % (device, host.name), None
        chips.append(chip)
    if not chips or not _shape_ok(host, chips):
        return "devices %s do not form an allowed group on a %s host" % (",".join(entry["devices"]), host.family), None
    option, why = _current_option(planner, model, host, chips, entry)
    if option is None:
        return why, None
    if model.share and chips[0].share_used + option.util_milli > min(planner.cap_milli, host.share_cap_milli):
        return "the shared chip %s has no room left for its slice" % chips[0].device, None
    port = entry["port"]
    if model.port is not None and port != model.port:
        return "the model's port is now %d" % model.port, None
    if not host.port_low <= port <= host.port_high or port in host.ports:
        return "port %d is outside %s's range or taken" % (port, host.name), None
    if port in host.used_ports and not entry.get("_port_is_ours"):
        return "port %d is in use on %s" % (port, host.name), None
    return None, _record(model, entry["replica"], host, chips, option, port)


def _stay_reason(planner: _Planner, entry: Dict[str, Any]) -> Tuple[Optional[str], Optional[Dict[str, Any]]]:
    """As _checked_stay; on a host that failed preflight a replica that still matches the catalogue stays as it
    runs: nothing is done on that host this run, so starting a copy elsewhere would leave two of it serving
    (the one there cannot be removed), and the running one keeps serving its clients. One that no longer
    matches is placed elsewhere; its old container there is removed when the host passes preflight again."""
    why, record = _checked_stay(planner, entry)
    host = planner.hosts.get(entry["host"])
    if host is None or host.ok:
        return why, record
    if record is None:
        return "%s; host %s failed preflight, so it runs on there until the host passes again" % (why, host.name), None
    record["_kept_because"] = "host %s failed preflight: nothing there changes this run, the replica runs on as it is" % host.name
    return None, record


def _sticky_pass(planner: _Planner, current: List[Dict[str, Any]]) -> Dict[Tuple[str, int], Dict[str, Any]]:
    """Keep every running replica that is still valid; return why the others cannot stay."""
    gone = {}  # type: Dict[Tuple[str, int], Dict[str, Any]]
    for entry in current:
        key = (entry["model"], entry["replica"])
        if key in planner.placed:
            continue  # a second entry for a replica already kept: _changes removes it
        why, record = _stay_reason(planner, entry)
        if record is None:
            gone.setdefault(key, dict(entry, _why=why))
            continue
        record["kept"] = True
        record["reasons"].insert(0, record.pop("_kept_because", "kept: still fits on the same host, chips and port"))
        planner.commit(planner.hosts[record["host"]], record, record.pop("_candidate_chips"))
        gone.pop(key, None)
    return gone
