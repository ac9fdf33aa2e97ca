# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""The fleet: chips, hosts, interconnect families and groups, host validation.

PRIVATE to the ``npu.fleet.fleet_plan`` planner (see ``__init__.py``). This
file exists to turn each host's facts (npu_facts chips, preflight verdict,
labels, ports) into ``_Host`` and ``_Chip`` objects: which chips may be used
and why not, the interconnect family (``chip_family``) and its groups of
units, and how many chips a replica takes (``alloc_size``). It also checks
the catalogue's references to hosts and ports against the fleet.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.npu.fleet.plugins.module_utils._busy import foreign_processes
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.inputs import (
    AUTO,
    FAMILIES,
    HOST_FIELDS,
    TP_SIZES,
    PlacementError,
    _as_bool,
    _as_int,
    _as_labels,
    _as_str_list,
    _device_number,
    _is_int,
    _Model,
    _parse_port_range,
    _unknown_fields,
)

# kv_fit cannot budget a chip not larger than the runtime's own reserve (3 GiB).
MIN_CHIP_MB = 3 * 1024 + 1

HEALTH_USABLE = ("OK", "Warning")  # as _preflight.py: "Warning" leaves a chip usable


# --------------------------------------------------------------------------- hosts and chips


def chip_family(chips: Sequence[Dict[str, Any]], layout: Optional[str] = None) -> str:
    """Interconnect family of a host from npu_facts chips: 910b, 910a, a3, 310p, 950 or other.

    Chip names alone do not tell A2 from A3 (a 910B3 runs in A2 servers); the
    A3 table layout (``Chip Phy-ID``) or two ``Ascend910`` chips per NPU do.
    """
    names = [str(chip.get("name") or "").upper().replace(" ", "") for chip in chips]
    per_npu = {}  # type: Dict[Any, int]
    for chip in chips:
        per_npu[chip.get("npu_id")] = per_npu.get(chip.get("npu_id"), 0) + 1
    if layout == "a3":
        return "a3"
    if layout == "a5" or any("950" in name for name in names):
        return "950"
    if any("310P" in name for name in names):
        return "310p"
    if any("910B" in name for name in names):
        return "910b"
    if any(name.endswith("910A") or "910PRO" in name or "910PREMIUM" in name for name in names):
        return "910a"
    if names and all(name == "ASCEND910" for name in names) and per_npu and max(per_npu.values()) == 2:
        return "a3"
    return "other"


def alloc_size(family: str, tp: int) -> int:
    """Chips a replica of tensor-parallel size ``tp`` takes: A3 gives containers whole HiAM modules (pairs)."""
    return 2 * ((tp + 1) // 2) if family == "a3" else tp


class _Chip:
    """One chip of a host and what holds it."""

    __slots__ = (
        "index",
        "device",
        "number",
        "memory_mb",
        "name",
        "npu_id",
        "chip_id",
        "phy_id",
        "usable",
        "why",
        "group",
        "unit",
        "owner",
        "shares",
        "share_used",
    )

    def state(self) -> int:
        """-1 unusable, -2 held by an exclusive replica, 0 free, > 0 slice sum (thousandths) of shared replicas."""
        if not self.usable:
            return -1
        if self.owner is not None:
            return -2
        return self.share_used

    def free(self) -> bool:
        return self.usable and self.owner is None and not self.share_used


class _Host:
    """A host: its chips in interconnect groups and units, ports, what it already runs."""

    __slots__ = (
        "name",
        "family",
        "chips",
        "groups",
        "labels",
        "labels_key",
        "port_low",
        "port_high",
        "used_ports",
        "ports",
        "models",
        "ok",
        "notes",
        "share_cap_milli",
        "_sig",
    )

    def signature(self) -> Tuple[Any, ...]:
        """Order-free description of the free capacity: equal signatures place equally."""
        if self._sig is None:
            groups = []
            for group in self.groups:
                units = sorted(tuple(sorted((self.chips[i].memory_mb, self.chips[i].state()) for i in unit)) for unit in group)
                groups.append(tuple(units))
            self._sig = (self.family, len(self.chips), self.share_cap_milli, tuple(sorted(groups)))
        return self._sig

    def free_count(self) -> int:
        return sum(1 for chip in self.chips if chip.free())


def _chip_exclusion(
    chip: Dict[str, Any], device: Optional[str], reserved: List[str], excluded: Dict[str, List[str]], ours: Optional[Dict[str, Any]]
) -> Optional[str]:
    """Why a chip may not be used, or None. See docs/placement.md, "Which chips are used"."""
    if device is None:
        return "no device node (physical id unknown)"
    health = chip.get("health")
    if health not in HEALTH_USABLE:
        return "health %s" % (health or "unknown")
    if device in reserved:
        return "reserved"
    foreign = foreign_processes(chip, held_by_us=ours is not None, our_pids=(ours or {}).get("pids"))
    if foreign:
        return "busy: " + ", ".join("%s pid %s" % (proc.get("name") or "?", proc.get("pid")) for proc in foreign)
    # Preflight judged busy chips with the same rule (_busy.py), knowing which chips our containers hold.
    if device in excluded:
        codes = excluded[device]
        return "excluded by preflight%s" % (": " + ", ".join(sorted(set(codes))) if codes else "")
    memory = chip.get("memory_total_mb")
    if not _is_int(memory) or memory < MIN_CHIP_MB:
        return "memory unknown or below 3 GiB (%r MB)" % (memory,)
    return None


def _excluded_map(spec: Dict[str, Any]) -> Dict[str, List[str]]:
    """npu_preflight excluded_devices -> the problem codes that name each device."""
    result = dict((str(device), []) for device in spec.get("excluded_devices") or [])  # type: Dict[str, List[str]]
    for problem in spec.get("problems") or []:
        if isinstance(problem, dict) and problem.get("device") in result and not problem.get("usable"):
            result[problem["device"]].append(str(problem.get("code")))
    return result


def _topology(host: _Host, family: str, override: Any) -> List[List[List[int]]]:
    """Interconnect groups of units of chip indices for the family (or the host's override)."""
    chips = host.chips
    if family in ("a3", "310p"):
        by_npu = {}  # type: Dict[Any, List[int]]
        for chip in chips:
            by_npu.setdefault(chip.npu_id, []).append(chip.index)
        units = sorted((sorted(members) for members in by_npu.values()), key=lambda unit: unit[0])
    else:
        units = [[chip.index] for chip in chips]
    if override:
        return _override_groups(host, units, override)
    if family == "910a":
        rings = {}  # type: Dict[int, List[List[int]]]
        for unit in units:
            chip = chips[unit[0]]
            ring = (chip.phy_id if _is_int(chip.phy_id) else chip.number) // 4
            rings.setdefault(ring, []).append(unit)
        return [rings[key] for key in sorted(rings)]
    return [units] if units else []


def _override_groups(host: _Host, units: List[List[int]], override: Any) -> List[List[List[int]]]:
    """interconnect_groups given per host: lists of device nodes; units must not straddle groups."""
    where = "host %s: interconnect_groups" % host.name
    if not isinstance(override, (list, tuple)) or not all(isinstance(group, (list, tuple)) for group in override):
        raise PlacementError("%s must be a list of lists of device nodes such as /dev/davinci0" % where)
    by_device = dict((chip.device, chip.index) for chip in host.chips if chip.device)
    group_of = {}  # type: Dict[int, int]
    for number, group in enumerate(override):
        for device in group:
            if str(device) not in by_device:
                raise PlacementError("%s names %s, which is not a chip of the host" % (where, device))
            if by_device[str(device)] in group_of:
                raise PlacementError("%s lists %s twice" % (where, device))
            group_of[by_device[str(device)]] = number
    groups = {}  # type: Dict[int, List[List[int]]]
    for unit in units:
        owners = set(group_of.get(index, len(override) + unit[0]) for index in unit)
        if len(owners) > 1:
            raise PlacementError(
                "%s splits the chips of one card/module (%s); keep them in one group"
                % (where, ", ".join(str(host.chips[i].device) for i in unit))
            )
        groups.setdefault(owners.pop(), []).append(unit)
    return [groups[key] for key in sorted(groups)]


def _validate_host(name: str, spec: Any, ours: Dict[str, Dict[str, Any]], default_range: Tuple[int, int]) -> _Host:
    """One host's spec (npu_facts chips, labels, ports, preflight verdict) into a _Host."""
    where = "host %s" % name
    if not isinstance(spec, dict):
        raise PlacementError("%s: must be a mapping with 'chips' (as npu.fleet.npu_facts returns)" % where)
    _unknown_fields(spec, HOST_FIELDS, where)
    raw_chips = spec.get("chips") or []
    if not isinstance(raw_chips, (list, tuple)) or not all(isinstance(chip, dict) for chip in raw_chips):
        raise PlacementError("%s: chips must be the list npu.fleet.npu_facts returns" % where)
    host = _Host()
    host.name, host._sig = name, None
    host.labels = _as_labels(spec.get("labels"), where + ": labels")
    host.labels_key = tuple(sorted(host.labels.items()))
    if spec.get("port_range") is None:
        host.port_low, host.port_high = default_range
    else:
        host.port_low, host.port_high = _parse_port_range(spec.get("port_range"), where + ": port_range (fleet_plan_port_range)")
    used = spec.get("used_ports") or []
    if not isinstance(used, (list, tuple)):
        raise PlacementError("%s: used_ports must be a list of port numbers" % where)
    host.used_ports = set(_as_int(port, where + ": used_ports", 1, 65535) for port in used)
    host.ports, host.models = {}, {}
    host.ok = _as_bool(spec.get("preflight_ok", True), where + ": preflight_ok")
    host.notes = [str(note) for note in spec.get("notes") or []]
    family = spec.get("family")
    if family is not None and family not in FAMILIES:
        raise PlacementError("%s: family %r is not one of %s" % (where, family, ", ".join(FAMILIES)))
    host.family = family or chip_family(raw_chips, spec.get("npu_smi_layout"))
    reserved = _as_str_list(spec.get("reserved_devices"), where + ": reserved_devices")
    excluded = _excluded_map(spec)
    host.chips = _build_chips(host, raw_chips, reserved, excluded, ours)
    host.share_cap_milli = idle_share_cap_milli(raw_chips)
    host.groups = _topology(host, host.family, spec.get("interconnect_groups"))
    for number, group in enumerate(host.groups):
        for unit_number, unit in enumerate(group):
            for index in unit:
                host.chips[index].group, host.chips[index].unit = number, unit_number
    if not host.ok:
        host.notes.append("failed preflight: it receives nothing")
    return host


def idle_share_cap_milli(raw_chips: Sequence[Dict[str, Any]]) -> int:
    """What slices on one shared chip may sum to: 1 - idle memory / total, from the host's idle chips.

    An idle 910B chip already shows about 3 GiB used (firmware, the CANN
    context); each extra vLLM process on a shared chip starts its own
    context, so the slices must leave that much free (the community's
    recipe for several models per chip, vllm-ascend issues 5650, 5707, 5213).
    Hosts whose chips report no idle use get 1000 (the plan's share cap then rules).
    """
    fractions = [
        raw["memory_used_mb"] / float(raw["memory_total_mb"])
        for raw in raw_chips
        if isinstance(raw, dict)
        and not raw.get("processes")
        and _is_int(raw.get("memory_used_mb"))
        and _is_int(raw.get("memory_total_mb"))
        and raw["memory_total_mb"] > 0
    ]
    return int((1 - max(fractions)) * 1000) if fractions else 1000


def _build_chips(
    host: _Host, raw_chips: Sequence[Dict[str, Any]], reserved: List[str], excluded: Dict[str, List[str]], ours: Dict[str, Dict[str, Any]]
) -> List[_Chip]:
    """Chips sorted by device number, each marked usable or with the reason it is not."""
    where = "host %s" % host.name
    seen = set()
    ordered = []
    for position, raw in enumerate(raw_chips):
        device = raw.get("device")
        number = _device_number(device)
        if device is not None and number is None:
            raise PlacementError("%s: chip device %r is not a /dev/davinci<N> node" % (where, device))
        if device is not None and device in seen:
            raise PlacementError("%s: device %s is listed twice in chips" % (where, device))
        seen.add(device)
        ordered.append((number if number is not None else 100000 + position, position, raw))
    ordered.sort(key=lambda item: (item[0], item[1]))
    chips = []
    for index, (number, position, raw) in enumerate(ordered):
        chip = _Chip()
        chip.index, chip.number = index, number
        chip.device = raw.get("device")
        chip.memory_mb = raw.get("memory_total_mb") if _is_int(raw.get("memory_total_mb")) else 0
        chip.name = str(raw.get("name") or "")
        chip.npu_id = raw.get("npu_id", position)
        chip.chip_id = raw.get("chip_id", 0)
        chip.phy_id = raw.get("phy_id")
        chip.why = _chip_exclusion(raw, chip.device, reserved, excluded, ours.get(chip.device or ""))
        chip.usable = chip.why is None
        chip.owner, chip.shares, chip.share_used = None, {}, 0
        chip.group = chip.unit = 0
        chips.append(chip)
    return chips


def _validate_hosts(hosts: Any, current: List[Dict[str, Any]], default_range: Tuple[int, int]) -> Dict[str, _Host]:
    if not isinstance(hosts, dict):
        raise PlacementError("hosts must be a mapping of host name to host facts, got %s" % type(hosts).__name__)
    ours_by_host = {}  # type: Dict[str, Dict[str, Dict[str, Any]]]
    for entry in current:
        for device in entry["devices"]:
            ours_by_host.setdefault(entry["host"], {}).setdefault(device, entry)
    return dict(
        (str(name), _validate_host(str(name), hosts[name], ours_by_host.get(str(name), {}), default_range))
        for name in sorted(hosts, key=str)
    )


# --------------------------------------------------------------------------- references between catalogue, fleet and current


def _check_references(catalogue: List[_Model], fleet: Dict[str, _Host], known_hosts: List[str]) -> None:
    """Constraints naming hosts or ports that cannot exist are input errors, not unplaced replicas."""
    for model in catalogue:
        if model.hosts is not None:
            unknown = [name for name in model.hosts if name not in fleet and name not in known_hosts]
            if unknown:
                raise PlacementError(
                    "%s: hosts names %s, not in the fleet (%s); fix the name or add the host to the "
                    "inventory" % (model.where(), ", ".join(unknown), ", ".join(sorted(fleet)) or "empty")
                )
        _check_tp_hardware(model, fleet, known_hosts)
        if model.port is not None and fleet:
            allowed = [host for host in fleet.values() if model.hosts is None or host.name in model.hosts]
            if allowed and not any(host.port_low <= model.port <= host.port_high for host in allowed):
                ranges = sorted(set("%d-%d" % (host.port_low, host.port_high) for host in allowed))
                raise PlacementError(
                    "%s: port %d is outside the port range of every host (%s); pick a port inside "
                    "or widen port_range" % (model.where(), model.port, ", ".join(ranges))
                )


def largest_group(host: _Host) -> int:
    """The most chips one replica can span on the host: its largest interconnect group, or on an
    8-chip 910A server the whole server (the planner's rule in search._find_exclusive)."""
    group = max([sum(len(unit) for unit in group) for group in host.groups] or [0])
    return len(host.chips) if host.family == "910a" and len(host.chips) == 8 else group


def _check_tp_hardware(model: _Model, fleet: Dict[str, _Host], known_hosts: List[str]) -> None:
    """A fixed tensor_parallel_size that no host the model may use could ever give is an input error.

    Only when every such host is planned in this run and reported its chips (a host
    left out by --limit, or whose discovery failed, might still have them); a host
    that has the chips but not free ones leaves the replica unplaced instead.
    """
    if model.tp == AUTO:
        return
    allowed = list(model.hosts) if model.hosts is not None else sorted(set(fleet) | set(known_hosts))
    hosts = [fleet.get(name) for name in allowed]
    if not hosts or any(host is None or not host.chips for host in hosts):
        return
    hosts = [host for host in hosts if all(host.labels.get(label) == wanted for label, wanted in model.labels.items())]
    if not hosts or any(largest_group(host) >= alloc_size(host.family, model.tp) for host in hosts):
        return
    best = max(hosts, key=largest_group)
    fits = [tp for tp in TP_SIZES if any(largest_group(host) >= alloc_size(host.family, tp) for host in hosts)]
    raise PlacementError(
        "%s: tensor_parallel_size %d needs %d chips in one interconnect group of one host, but the hosts it may use "
        "have at most %d (%s, %s chips); set tensor_parallel_size to %s, or add a larger host"
        % (
            model.where(),
            model.tp,
            alloc_size(best.family, model.tp),
            largest_group(best),
            best.name,
            best.family,
            " or ".join(str(tp) for tp in fits + ["auto"]),
        )
    )


def _mark_our_ports(running: List[Dict[str, Any]], fleet: Dict[str, _Host]) -> None:
    """A port in used_ports that a running replica of ours claims is its own listener, not a conflict."""
    for entry in running:
        host = fleet.get(entry["host"])
        if host is not None and entry["port"] in host.used_ports:
            entry["_port_is_ours"] = True
