# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""Results: placements as output, changes, reasons for what is left over, summary, table.

PRIVATE to the ``npu.fleet.fleet_plan`` planner (see ``__init__.py``). This
file exists to turn the planner's final state into what callers read: one
dict per placement, keep/add/move/remove changes against ``current``, a
sentence per unplaced model with its demand in numbers, per-host and fleet
totals with the capacity left, and ``render_table`` for humans. It reads
the state; it never places anything.
"""

from __future__ import annotations

import re

from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.fleet import _Chip, _Host, alloc_size, largest_group
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.inputs import (
    AUTO,
    DEFAULT_UTILIZATION,
    TP_SIZES,
    _Model,
)
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.search import (
    _free_port,
    _Option,  # noqa: F401  (a type comment)
    _Planner,
)

# --------------------------------------------------------------------------- reasons for what is left over


def _gib(memory_mb: int) -> str:
    value = memory_mb / 1024.0
    return ("%d GiB" % value) if value == int(value) else ("%.1f GiB" % value)


def _largest_free_group(planner: _Planner, model: _Model, k: int, memory: int) -> int:
    """Largest allocatable free group of chips >= memory on any eligible host (chips count)."""
    largest = 0
    for host in planner.hosts.values():
        if not planner.eligible(model, host):
            continue
        whole = host.family == "a3" or (host.family == "310p" and k >= 2)
        for group in host.groups:
            if whole:
                size = sum(len(unit) for unit in group if all(host.chips[i].free() and host.chips[i].memory_mb >= memory for i in unit))
            else:
                size = sum(1 for unit in group for i in unit if host.chips[i].free() and host.chips[i].memory_mb >= memory)
            largest = max(largest, size)
    return largest


def _unplaced_reason(planner: _Planner, model: _Model) -> Dict[str, Any]:
    """A sentence the user can act on, with the demand in numbers and the real obstacle."""
    hosts = [host for host in planner.hosts.values() if planner.eligible(model, host)]
    if not hosts:
        return {"reason": _no_host_reason(planner, model), "needs": []}
    needs: Dict[Tuple[int, int], _Option] = {}
    for host in hosts:
        for memory in sorted(set(chip.memory_mb for chip in host.chips if chip.usable)):
            options = planner.options_for(model, host.family, memory, len(host.chips))
            # The best option, and every option on fewer chips (a capped context): the five-models-on-four-chips
            # case needs 2 chips for the full context but fits 1 with a capped one - both are the real demand.
            for option in options[:1] + [option for option in options[1:] if options and option.k < options[0].k]:
                needs.setdefault((option.k, memory), option)
    minimal: Dict[int, int] = {}
    for k, memory in sorted(needs):
        if k not in minimal:
            minimal[k] = memory
    if not minimal:
        return {"reason": _no_fit_reason(planner, model, hosts), "needs": []}
    parts = [
        "%d chip%s of >= %s%s" % (k, "" if k == 1 else "s", _gib(memory), _capped_note(needs[(k, memory)]) if len(minimal) > 1 else "")
        for k, memory in sorted(minimal.items())
    ]
    k, memory = sorted(minimal.items())[0]
    largest = _largest_free_group(planner, model, k, memory)
    where = "on one host" + (" in one interconnect group" if k > 1 else "")
    reason = "needs %s %s; largest free group is %d" % (" or ".join(parts), where, largest)
    if largest >= k:
        reason += _blocker(planner, model, hosts)
    else:
        reason += _occupancy(hosts)
    return {"reason": reason, "needs": [{"chips": k, "min_chip_memory_mb": memory} for k, memory in sorted(minimal.items())]}


def _capped_note(option: _Option) -> str:
    if option.fit["verdict"] == "capped":
        return " (max_model_len capped to %d)" % option.fit["recommended_max_model_len"]
    return ""


def _occupancy(hosts: List[_Host]) -> str:
    """Where the chips went, on the hosts the model may use: replicas of this plan, and chips that are not usable."""
    parts = []
    for host in sorted(hosts, key=lambda item: item.name)[:3]:
        holding = [chip for chip in host.chips if chip.usable and (chip.owner or chip.shares)]
        replicas = sorted(set("%s#%d" % key for chip in holding for key in ([chip.owner] if chip.owner else list(chip.shares))))
        unusable: Dict[str, int] = {}
        for chip in host.chips:
            if not chip.usable:
                kind = (chip.why or "not usable").split(":")[0]
                unusable[kind] = unusable.get(kind, 0) + 1
        free = sum(1 for chip in host.chips if chip.free())
        said = ["%d free" % free] if free else []
        if holding:
            said.append("%d chip%s run %s" % (len(holding), "" if len(holding) == 1 else "s", ", ".join(replicas)))
        if unusable:
            said.append("%d not usable (%s)" % (sum(unusable.values()), ", ".join(sorted(unusable))))
        parts.append("%s: %s" % (host.name, ", ".join(said) or "no chips"))
    more = " (and %d more hosts)" % (len(hosts) - 3) if len(hosts) > 3 else ""
    return "; chips of the hosts it may use - %s%s" % ("; ".join(parts), more)


def _blocker(planner: _Planner, model: _Model, hosts: List[_Host]) -> str:
    """Why a host with enough free chips still did not take the replica."""
    roomy = [host for host in hosts if planner.best_on_host(host, model) is not None]
    if model.spread and roomy and all(host.models.get(model.name) for host in roomy):
        return "; spread: every host with room already runs a replica of %s (add hosts or set spread: false)" % model.name
    if model.port is not None and roomy and all(_free_port(host, model, 0) is None for host in roomy):
        return "; its fixed port %d is taken on every host with room" % model.port
    if roomy and all(_free_port(host, model, 0) is None for host in roomy):
        return "; no free port left in the port range of the hosts with room"
    return "; the free chips are not in one allowed group (interconnect rules) or are held by kept replicas"


def _no_host_reason(planner: _Planner, model: _Model) -> str:
    ok_hosts = [host for host in planner.hosts.values() if host.ok]
    if not ok_hosts:
        return "no host passed preflight"
    if model.hosts is not None and not [host for host in ok_hosts if host.name in model.hosts]:
        absent = [name for name in model.hosts if name not in planner.hosts]
        if len(absent) == len(model.hosts):
            return "none of its hosts (%s) is planned in this run (--limit?)" % ", ".join(model.hosts)
        return "none of its hosts (%s) passed preflight" % ", ".join(model.hosts)
    if model.labels and not [host for host in ok_hosts if planner.labels_match(model, host)]:
        return "no host passing preflight has the labels %s" % ", ".join("%s=%s" % item for item in sorted(model.labels.items()))
    return "its port %s is outside the port range of every host it may use" % model.port


def _no_fit_reason(planner: _Planner, model: _Model, hosts: List[_Host]) -> str:
    """Does not fit at any allowed TP on the largest chips: kv_fit's own sentence."""
    host = max(hosts, key=lambda item: (max([c.memory_mb for c in item.chips if c.usable] or [0]), len(item.chips)))
    memories = [chip.memory_mb for chip in host.chips if chip.usable]
    if not memories:
        return "no usable chip on the hosts it may use"
    if model.tp != AUTO and not any(largest_group(item) >= alloc_size(item.family, model.tp) for item in hosts):
        widest = max(hosts, key=largest_group)
        return (
            "tensor_parallel_size %d needs %d chips in one interconnect group of one host; the hosts it may use have at most %d (%s); "
            "set tensor_parallel_size: auto or a smaller size"
            % (
                model.tp,
                alloc_size(widest.family, model.tp),
                largest_group(widest),
                widest.name,
            )
        )
    sizes = [model.tp] if model.tp != AUTO else [tp for tp in TP_SIZES if alloc_size(host.family, tp) <= len(host.chips)]
    tp = max(sizes or [1])
    util = model.util_milli or int(DEFAULT_UTILIZATION * 1000)
    fit = planner.fit(model, max(memories), tp, util, host.family)
    return "does not fit even at tensor_parallel_size %d on %s chips: %s" % (tp, _gib(max(memories)), fit["message"])


# --------------------------------------------------------------------------- output


# Profile warnings the plan repeats: structure the profiler did not know and took the safe side on.
_STRUCTURE_WARNING = re.compile(r"treated as full attention|not read|top-k|no routing", re.I)


def _structure_warnings(model: _Model) -> List[str]:
    """Unknown structure is said, not guessed: the profile's own words, in every placement of the model."""
    return ["profile: %s" % warning for warning in model.profile.get("warnings") or [] if _STRUCTURE_WARNING.search(str(warning))]


def _placement_out(planner: _Planner, record: Dict[str, Any]) -> Dict[str, Any]:
    model = planner.models[record["model"]]
    option = record["option"]
    chips = record["_chips"]
    backend, image = model.backend, model.image
    if planner.image_selector is not None:
        chosen = planner.image_selector(dict(model.entry, name=model.name), record["host"])
        if chosen:
            backend = chosen.get("backend") or backend
            image = chosen.get("image", image)
    ids = list(range(len(chips)))
    return {
        "model": record["model"],
        "replica": record["replica"],
        "host": record["host"],
        "devices": [chip.device for chip in chips],
        "container_device_ids": ids,
        "ascend_rt_visible_devices": ",".join(str(i) for i in ids),
        "port": record["port"],
        "backend": backend,
        "image": image,
        "tensor_parallel_size": option.tp,
        "max_model_len": option.fit["recommended_max_model_len"],
        "gpu_memory_utilization": option.util_milli / 1000.0,
        "kv_cache_tokens": option.fit["kv_cache_tokens"],
        "chip_memory_mb": min(chip.memory_mb for chip in chips),
        "share_chip": record["share_chip"],
        "chip_family": planner.hosts[record["host"]].family,
        "reasons": list(record["reasons"]) + _structure_warnings(model),
    }


def _changes(current: List[Dict[str, Any]], gone: Dict[Any, Dict[str, Any]], placements: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """keep / add / move / remove against what runs now."""
    planned = dict(((item["model"], item["replica"]), item) for item in placements)
    entries = {}  # type: Dict[Tuple[str, int], List[Dict[str, Any]]]
    for entry in current:
        entries.setdefault((entry["model"], entry["replica"]), []).append(entry)
    running = {}  # type: Dict[Tuple[str, int], Dict[str, Any]]
    changes = []
    for key in sorted(entries):
        target = planned.get(key)
        same = [entry for entry in entries[key] if target is not None and _where_is(entry) == _where_is(target)]
        running[key] = (same or entries[key])[0]
        for entry in entries[key]:
            if entry is not running[key]:
                changes.append(_change("remove", entry, None, "duplicate entry for this replica"))
    for key in sorted(running):
        entry = running[key]
        target = planned.get(key)
        why = (gone.get(key) or {}).get("_why")
        if target is None:
            changes.append(_change("remove", entry, None, why or "not placed"))
        elif _where_is(target) == _where_is(entry):
            change = _change("keep", entry, target, None)
            changed = [
                field
                for field in ("max_model_len", "gpu_memory_utilization", "tensor_parallel_size", "image", "backend")
                if field in entry and entry[field] != target[field]
            ]
            change["settings_changed"] = changed
            changes.append(change)
        else:
            changes.append(_change("move", entry, target, why or "re-placed"))
    for key in sorted(planned):
        if key not in running:
            changes.append(_change("add", None, planned[key], None))
    order = {"keep": 0, "move": 1, "add": 2, "remove": 3}
    changes.sort(key=lambda item: (item["model"], item["replica"], order[item["action"]], str(item.get("from"))))
    return changes


def _where_is(item: Dict[str, Any]) -> Tuple[Any, ...]:
    return (item["host"], list(item["devices"]), item["port"])


def _change(action: str, entry: Optional[Dict[str, Any]], target: Optional[Dict[str, Any]], reason: Optional[str]) -> Dict[str, Any]:
    source = entry or target or {}
    result = {"action": action, "model": source["model"], "replica": source["replica"], "reason": reason}
    result["from"] = None if entry is None else {"host": entry["host"], "devices": entry["devices"], "port": entry["port"]}
    result["to"] = None if target is None else {"host": target["host"], "devices": target["devices"], "port": target["port"]}
    return result


# --------------------------------------------------------------------------- summary and capacity left


def _clone_host(host: _Host) -> _Host:
    """A scratch copy for what-if counting."""
    clone = _Host()
    for slot in _Host.__slots__:
        setattr(clone, slot, getattr(host, slot))
    clone.chips = []
    for chip in host.chips:
        copy = _Chip()
        for slot in _Chip.__slots__:
            setattr(copy, slot, getattr(chip, slot))
        copy.shares = dict(chip.shares)
        clone.chips.append(copy)
    clone._sig = None
    return clone


def _fits_per_host(planner: _Planner, host: _Host, model: _Model, limit: int) -> int:
    """How many more replicas of the model fit on a host like this one (chips only)."""
    clone = _clone_host(host)
    count = 0
    while count < limit:
        found = planner.best_on_host(clone, model)
        if found is None:
            break
        for chip in found[1]:
            if model.share:
                chip.share_used += found[2].util_milli
            else:
                chip.owner = ("_what_if", count)
        count += 1
    return count


def _capacity_left(planner: _Planner) -> Dict[str, int]:
    """Per model, how many more replicas would fit, each model considered alone."""
    result = {}
    per_bucket = {}  # type: Dict[Tuple[Any, ...], int]
    for model in sorted(planner.catalogue, key=lambda item: item.name):
        total = 0
        one_per_host = model.spread or model.port is not None
        for key in sorted(planner.buckets, key=lambda item: planner.buckets[item][0]):
            names = planner.buckets[key]
            if not planner.labels_match(model, planner.hosts[names[0]]):
                continue
            cache_key = (key[0], model.name)
            if cache_key not in per_bucket:
                per_bucket[cache_key] = _fits_per_host(planner, planner.hosts[names[0]], model, 1 if one_per_host else 512)
            fits = per_bucket[cache_key]
            if not fits:
                continue
            for name in names:
                host = planner.hosts[name]
                if not planner.eligible(model, host):
                    continue
                if one_per_host and (host.models.get(model.name) if model.spread else _free_port(host, model, 0) is None):
                    continue
                total += fits
        result[model.name] = total
    return result


def _chip_name(chip: _Chip) -> str:
    """The device node, or NPU and chip ids when the node is unknown."""
    return chip.device or "NPU %s chip %s" % (chip.npu_id, chip.chip_id)


def _summary(planner: _Planner) -> Dict[str, Any]:
    hosts = {}
    totals = {"hosts": 0, "hosts_receiving": 0, "chips": 0, "chips_usable": 0, "chips_used": 0, "chips_free": 0}
    for name in sorted(planner.hosts):
        host = planner.hosts[name]
        usable = [chip for chip in host.chips if chip.usable]
        used = [chip for chip in usable if not chip.free()]
        entry = {
            "family": host.family,
            "preflight_ok": host.ok,
            "chips": len(host.chips),
            "chips_usable": len(usable) if host.ok else 0,
            "chips_used": len(used),
            "chips_free": (len(usable) - len(used)) if host.ok else 0,
            "chips_shared": sum(1 for chip in usable if chip.share_used),
            "excluded": [{"device": chip.device, "chip": _chip_name(chip), "reason": chip.why} for chip in host.chips if not chip.usable],
            "replicas": sum(host.models.values()),
            "ports": sorted(host.ports),
            "port_range": "%d-%d" % (host.port_low, host.port_high),
            "notes": list(host.notes),
        }
        if not host.chips and not host.notes:
            entry["notes"].append("no NPU chips reported")
        hosts[name] = entry
        totals["hosts"] += 1
        totals["hosts_receiving"] += 1 if entry["replicas"] else 0
        for field in ("chips", "chips_usable", "chips_used", "chips_free"):
            totals[field] += entry[field]
    return {"hosts": hosts, "totals": totals, "capacity_left": _capacity_left(planner)}


# --------------------------------------------------------------------------- table


def render_table(result: Dict[str, Any]) -> str:
    """The plan as text, one block per host, then what could not be placed and the capacity left."""
    lines = []
    by_host = {}  # type: Dict[str, List[Dict[str, Any]]]
    for item in result["placements"]:
        by_host.setdefault(item["host"], []).append(item)
    actions = dict(((item["model"], item["replica"]), item["action"]) for item in result["changes"] if item["action"] != "remove")
    for name, info in sorted(result["summary"]["hosts"].items()):
        head = "%s [%s] %d chips: %d used, %d free" % (name, info["family"], info["chips"], info["chips_used"], info["chips_free"])
        if not info["preflight_ok"]:
            head = "%s [%s] receives nothing: failed preflight" % (name, info["family"])
        lines.append(head)
        rows = []
        for item in sorted(by_host.get(name, []), key=lambda entry: (entry["devices"][0], entry["model"], entry["replica"])):
            rows.append(
                [
                    "%s#%d" % (item["model"], item["replica"]),
                    ",".join(item["devices"]),
                    "ctr " + ",".join(str(i) for i in item["container_device_ids"]),
                    "port %d" % item["port"],
                    "TP%d" % item["tensor_parallel_size"],
                    "len %d" % item["max_model_len"],
                    "util %.2f" % item["gpu_memory_utilization"],
                    item.get("backend") or "?",
                    actions.get((item["model"], item["replica"]), "add"),
                ]
            )
        lines.extend(_columns(rows, "  "))
        for excluded in info["excluded"]:
            lines.append("  not used: %s (%s)" % (excluded["chip"], excluded["reason"]))
        for note in info["notes"]:
            if not note.startswith("failed preflight"):
                lines.append("  note: %s" % note)
    if result["unplaced"]:
        lines.append("unplaced:")
        for item in result["unplaced"]:
            lines.append("  %s#%d: %s" % (item["model"], item["replica"], item["reason"]))
    removed = [item for item in result["changes"] if item["action"] == "remove"]
    if removed:
        lines.append("to remove:")
        for item in removed:
            lines.append("  %s#%d on %s: %s" % (item["model"], item["replica"], item["from"]["host"], item["reason"]))
    capacity = result["summary"]["capacity_left"]
    if capacity:
        lines.append("capacity left: " + ", ".join("%s +%d" % (name, capacity[name]) for name in sorted(capacity)))
    return "\n".join(lines)


def _columns(rows: List[List[str]], indent: str) -> List[str]:
    if not rows:
        return []
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [(indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths))).rstrip() for row in rows]
