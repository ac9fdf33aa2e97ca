# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""Place model replicas on the hosts, chips and ports of a whole Ascend fleet.

PRIVATE: used by the ``npu.fleet.fleet_plan`` action plugin; the API may
change without notice. Standard library only (plus the collection's own
``_kv_fit`` and ``_model_profile``), so it runs on the controller without
Ansible and in the benchmark.

``plan(hosts, models, current)`` returns ``placements``, ``unplaced``,
``changes`` and ``summary``; ``render_table(plan)`` turns it into text.
The algorithm and its guarantees are described in docs/placement.md:

1. validate every input, raising PlacementError naming the model, host or
   field and what to do;
2. keep every ``current`` replica that is still valid on its host, chips and
   port (sticky plan);
3. place the other replicas, most constrained and largest first, by best fit
   over hosts grouped by an order-free signature of their free chips; while
   replicas needing a whole interconnect group (8 chips) are still to come,
   the ones before them keep such groups whole where they can;
4. repair, bounded: evict replicas of this run out of the way of a left-over
   one and re-place them; replay without that reservation, then with the
   models left over first, keeping the round that placed most. Kept replicas
   never move.
"""

from __future__ import annotations

import bisect
import re
import zlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from ansible_collections.npu.fleet.plugins.module_utils._kv_fit import DEFAULT_MIN_MODEL_LEN, kv_fit
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import ModelProfileError, profile_model

__all__ = [
    "AUTO",
    "DEFAULT_BACKEND",
    "DEFAULT_PORT_RANGE",
    "FAMILIES",
    "HOST_FIELDS",
    "MODEL_FIELDS",
    "PlacementError",
    "SHARE_CAP",
    "TP_SIZES",
    "chip_family",
    "plan",
    "render_table",
]

AUTO = "auto"
TP_SIZES = (1, 2, 4, 8)
DEFAULT_BACKEND = "vllm"
DEFAULT_PORT_RANGE = "18000-18999"
DEFAULT_UTILIZATION = 0.9
# Sum of gpu_memory_utilization slices allowed on one shared chip. vLLM checks
# at start-up that free memory >= utilization x total (gpu_worker.py init_device),
# so slices must sum below 1; 5 % stays for the second CANN context and fragmentation.
SHARE_CAP = 0.95
# Automatic slices for share_chip models: the smallest multiple of 0.05 that holds the wish.
SLICE_STEP_MILLI = 50
SLICE_MIN_MILLI = 100
# Repair rounds (full replays with the left-over models first); each round costs one greedy pass.
MAX_REPAIR_ROUNDS = 4
# Eviction repair: hosts tried per left-over replica.
REPAIR_HOSTS = 16
# A replica whose cheapest option takes at least this many chips needs a whole interconnect group (a whole
# 910B host, half an A3 supernode): while some are still to be placed, smaller replicas avoid breaking up
# the last such group of a host (see _Planner.spoils).
WHOLE_GROUP_CHIPS = 8
# kv_fit cannot budget a chip not larger than the runtime's own reserve (3 GiB).
MIN_CHIP_MB = 3 * 1024 + 1

HEALTH_USABLE = ("OK", "Warning")  # as _preflight.py: "Warning" leaves a chip usable

# Interconnect families (docs/placement.md, "Interconnect groups", has the sources).
FAMILIES = ("910b", "910a", "a3", "310p", "other")

MODEL_FIELDS = ("name", "profile", "path", "replicas", "tensor_parallel_size", "max_model_len", "min_model_len",
                "gpu_memory_utilization", "backend", "image", "hosts", "labels", "spread", "port", "share_chip",
                "host_path", "serve")  # the last two are read by the serve role, not the planner
HOST_FIELDS = ("chips", "labels", "port_range", "reserved_devices", "used_ports", "preflight_ok", "excluded_devices",
               "problems", "family", "npu_smi_layout", "interconnect_groups", "notes")
CURRENT_REQUIRED = ("model", "replica", "host", "devices", "port")

_DEVICE_RE = re.compile(r"^/dev/davinci(\d+)$")
_PORT_RANGE_RE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")


class PlacementError(Exception):
    """Invalid planner input; the message names the model, host or field and the fix."""


# --------------------------------------------------------------------------- input validation


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_int(value: Any, where: str, minimum: int = 0, maximum: Optional[int] = None) -> int:
    """An integer (digit strings accepted, as extra vars arrive as text), else PlacementError."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not _is_int(value) or value < minimum or (maximum is not None and value > maximum):
        bound = "%d..%d" % (minimum, maximum) if maximum is not None else ">= %d" % minimum
        raise PlacementError("%s must be an integer %s, got %r" % (where, bound, value))
    return value


def _as_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "false", "no"):
        return value.lower() in ("true", "yes")
    raise PlacementError("%s must be true or false, got %r" % (where, value))


def _as_str_list(value: Any, where: str) -> List[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise PlacementError("%s must be a list of strings, got %r" % (where, value))
    return [str(item) for item in value]


def _as_labels(value: Any, where: str) -> Dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PlacementError("%s must be a mapping of label to value, got %r" % (where, value))
    return dict((str(key), str(item)) for key, item in value.items())


def _parse_port_range(value: Any, where: str) -> Tuple[int, int]:
    """'18000-18999' or [18000, 18999] -> (18000, 18999), inclusive."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        low, high = (_as_int(item, where, 1, 65535) for item in value)
    else:
        match = _PORT_RANGE_RE.match(str(value))
        if not match:
            raise PlacementError("%s must look like '18000-18999', got %r" % (where, value))
        low, high = int(match.group(1)), int(match.group(2))
    if not 1 <= low <= high <= 65535:
        raise PlacementError("%s must be a range within 1-65535 with low <= high, got %r" % (where, value))
    return low, high


def _unknown_fields(entry: Dict[str, Any], allowed: Sequence[str], where: str) -> None:
    unknown = sorted(str(key) for key in entry if key not in allowed)
    if unknown:
        raise PlacementError("%s: unknown field(s) %s; allowed: %s" % (where, ", ".join(unknown), ", ".join(allowed)))


# --------------------------------------------------------------------------- models


class _Model:
    """One catalogue entry, validated."""

    __slots__ = ("name", "index", "profile", "replicas", "tp", "max_model_len", "min_model_len", "util_milli",
                 "backend", "image", "hosts", "labels", "spread", "port", "share", "entry")

    def where(self) -> str:
        return "models[%d] (%s)" % (self.index, self.name)


def _model_profile_of(entry: Dict[str, Any], where: str, loader: Callable[[str], Dict[str, Any]]) -> Dict[str, Any]:
    """The entry's profile, or the profile of its ``path`` read on the controller."""
    profile = entry.get("profile")
    if profile is not None:
        if not isinstance(profile, dict):
            raise PlacementError("%s: profile must be the dict returned by npu.fleet.model_profile" % where)
        return profile
    path = entry.get("path")
    if not path:
        raise PlacementError("%s: give 'profile' (from npu.fleet.model_profile) or 'path' (a checkpoint directory "
                             "on the controller)" % where)
    try:
        return loader(str(path))
    except ModelProfileError as exc:
        raise PlacementError("%s: cannot profile path %s: %s" % (where, path, exc)) from None


def _validate_model(entry: Any, index: int, loader: Callable[[str], Dict[str, Any]]) -> _Model:
    """Turn one catalogue entry into a _Model, rejecting what vLLM or the planner cannot honour."""
    if not isinstance(entry, dict):
        raise PlacementError("models[%d] must be a mapping with at least 'name' and 'profile' or 'path'" % index)
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PlacementError("models[%d]: 'name' is required (a non-empty string)" % index)
    model = _Model()
    model.name, model.index, model.entry = name.strip(), index, entry
    where = model.where()
    _unknown_fields(entry, MODEL_FIELDS, where)
    model.profile = _model_profile_of(entry, where, loader)
    model.replicas = _as_int(entry.get("replicas", 1), where + ": replicas", 0, 100000)
    tp = entry.get("tensor_parallel_size", AUTO)
    if tp is None or (isinstance(tp, str) and tp.strip().lower() == AUTO):
        model.tp = AUTO
    else:
        if isinstance(tp, str) and tp.strip().isdigit():
            tp = int(tp.strip())
        if not _is_int(tp) or tp not in TP_SIZES:
            raise PlacementError("%s: tensor_parallel_size %r is not one of auto, 1, 2, 4, 8; set auto or one of those"
                                 % (where, tp))
        model.tp = tp
    wish = entry.get("max_model_len")
    model.max_model_len = None if wish is None else _as_int(wish, where + ": max_model_len", 1)
    model.min_model_len = _as_int(entry.get("min_model_len", DEFAULT_MIN_MODEL_LEN), where + ": min_model_len", 1)
    if model.max_model_len is not None and model.min_model_len > model.max_model_len:
        raise PlacementError("%s: min_model_len %d exceeds max_model_len %d; lower min_model_len"
                             % (where, model.min_model_len, model.max_model_len))
    model.share = _as_bool(entry.get("share_chip", False), where + ": share_chip")
    util = entry.get("gpu_memory_utilization")
    if util is None:
        model.util_milli = None if model.share else int(DEFAULT_UTILIZATION * 1000)
    else:
        if isinstance(util, bool) or not isinstance(util, (int, float)) or not 0 < util <= 1:
            raise PlacementError("%s: gpu_memory_utilization must be in (0, 1], got %r" % (where, util))
        model.util_milli = int(round(util * 1000))
    if model.share and model.tp not in (AUTO, 1):
        raise PlacementError("%s: share_chip needs tensor_parallel_size 1 (a shared chip holds whole replicas); "
                             "set tensor_parallel_size: 1 or share_chip: false" % where)
    model.backend = str(entry.get("backend") or DEFAULT_BACKEND)
    model.image = entry.get("image")
    model.hosts = _as_str_list(entry.get("hosts"), where + ": hosts") or None
    model.labels = _as_labels(entry.get("labels"), where + ": labels")
    model.spread = _as_bool(entry.get("spread", True), where + ": spread")
    port = entry.get("port")
    model.port = None if port is None else _as_int(port, where + ": port", 1, 65535)
    return model


def _validate_models(models: Any, loader: Callable[[str], Dict[str, Any]]) -> List[_Model]:
    if not isinstance(models, (list, tuple)):
        raise PlacementError("models must be a list of model entries, got %s" % type(models).__name__)
    result = []  # type: List[_Model]
    seen = {}  # type: Dict[str, int]
    for index, entry in enumerate(models):
        model = _validate_model(entry, index, loader)
        if model.name in seen:
            raise PlacementError("models[%d] and models[%d] are both named %r; model names must be unique (use "
                                 "replicas for more copies)" % (seen[model.name], index, model.name))
        seen[model.name] = index
        result.append(model)
    return result


# --------------------------------------------------------------------------- hosts and chips


def chip_family(chips: Sequence[Dict[str, Any]], layout: Optional[str] = None) -> str:
    """Interconnect family of a host from npu_facts chips: 910b, 910a, a3, 310p or other.

    Chip names alone do not tell A2 from A3 (a 910B3 runs in A2 servers); the
    A3 table layout (``Chip Phy-ID``) or two ``Ascend910`` chips per NPU do.
    """
    names = [str(chip.get("name") or "").upper().replace(" ", "") for chip in chips]
    per_npu = {}  # type: Dict[Any, int]
    for chip in chips:
        per_npu[chip.get("npu_id")] = per_npu.get(chip.get("npu_id"), 0) + 1
    if layout == "a3":
        return "a3"
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

    __slots__ = ("index", "device", "number", "memory_mb", "name", "npu_id", "chip_id", "phy_id", "usable", "why",
                 "group", "unit", "owner", "shares", "share_used")

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

    __slots__ = ("name", "family", "chips", "groups", "labels", "labels_key", "port_low", "port_high", "used_ports",
                 "ports", "models", "ok", "notes", "_sig")

    def signature(self) -> Tuple[Any, ...]:
        """Order-free description of the free capacity: equal signatures place equally."""
        if self._sig is None:
            groups = []
            for group in self.groups:
                units = sorted(tuple(sorted((self.chips[i].memory_mb, self.chips[i].state()) for i in unit))
                               for unit in group)
                groups.append(tuple(units))
            self._sig = (self.family, len(self.chips), tuple(sorted(groups)))
        return self._sig

    def free_count(self) -> int:
        return sum(1 for chip in self.chips if chip.free())


def _device_number(device: Any) -> Optional[int]:
    match = _DEVICE_RE.match(str(device or ""))
    return int(match.group(1)) if match else None


def _busy_owned(chip: Dict[str, Any], ours: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Processes on a chip that npu.fleet did not start.

    ``ours`` is the current placement holding this device (None if none):
    with ``pids`` listed only those pids are ours, without them every
    process on the chip is taken to be the replica's own.
    """
    procs = [proc for proc in chip.get("processes") or [] if isinstance(proc, dict)]
    if ours is None:
        return procs
    pids = ours.get("pids")
    if not pids:
        return []
    return [proc for proc in procs if proc.get("pid") not in pids]


def _chip_exclusion(chip: Dict[str, Any], device: Optional[str], reserved: List[str], excluded: Dict[str, List[str]],
                    ours: Optional[Dict[str, Any]]) -> Optional[str]:
    """Why a chip may not be used, or None. See docs/placement.md, "Which chips are used"."""
    if device is None:
        return "no device node (physical id unknown)"
    health = chip.get("health")
    if health not in HEALTH_USABLE:
        return "health %s" % (health or "unknown")
    if device in reserved:
        return "reserved"
    foreign = _busy_owned(chip, ours)
    if foreign:
        return "busy: " + ", ".join("%s pid %s" % (proc.get("name") or "?", proc.get("pid")) for proc in foreign)
    codes = [code for code in excluded.get(device, []) if not (code == "CHIP_BUSY" and ours is not None)]
    if device in excluded and (codes or not excluded[device]):
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
            raise PlacementError("%s splits the chips of one card/module (%s); keep them in one group"
                                 % (where, ", ".join(str(host.chips[i].device) for i in unit)))
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
        host.port_low, host.port_high = _parse_port_range(spec.get("port_range"), where + ": port_range")
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
    host.groups = _topology(host, host.family, spec.get("interconnect_groups"))
    for number, group in enumerate(host.groups):
        for unit_number, unit in enumerate(group):
            for index in unit:
                host.chips[index].group, host.chips[index].unit = number, unit_number
    if not host.ok:
        host.notes.append("failed preflight: it receives nothing")
    return host


def _build_chips(host: _Host, raw_chips: Sequence[Dict[str, Any]], reserved: List[str],
                 excluded: Dict[str, List[str]], ours: Dict[str, Dict[str, Any]]) -> List[_Chip]:
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
    return dict((str(name), _validate_host(str(name), hosts[name], ours_by_host.get(str(name), {}), default_range))
                for name in sorted(hosts, key=str))


def _validate_current(current: Any) -> List[Dict[str, Any]]:
    """Current placements (from container labels): required fields checked, extra fields kept."""
    if current is None:
        return []
    if not isinstance(current, (list, tuple)):
        raise PlacementError("current must be a list of placements (model, replica, host, devices, port)")
    result = []
    for index, entry in enumerate(current):
        where = "current[%d]" % index
        if not isinstance(entry, dict):
            raise PlacementError("%s must be a mapping with %s" % (where, ", ".join(CURRENT_REQUIRED)))
        missing = [field for field in CURRENT_REQUIRED if entry.get(field) is None]
        if missing:
            raise PlacementError("%s (%s): missing %s; current placements come from the labels of running containers"
                                 % (where, entry.get("model"), ", ".join(missing)))
        devices = _as_str_list(entry["devices"], where + ": devices")
        clean = dict(entry)
        clean.update({"model": str(entry["model"]), "host": str(entry["host"]), "devices": sorted(devices, key=_sort_device),
                      "replica": _as_int(entry["replica"], where + ": replica"),
                      "port": _as_int(entry["port"], where + ": port", 1, 65535)})
        if entry.get("pids") is not None:
            clean["pids"] = set(_as_int(pid, where + ": pids", 1) for pid in _as_str_list(entry["pids"], where + ": pids"))
        result.append(clean)
    result.sort(key=lambda item: (item["model"], item["replica"], item["host"], item["port"], item["devices"]))
    return result


def _sort_device(device: str) -> Tuple[int, str]:
    number = _device_number(device)
    return (number if number is not None else 1 << 30, device)


# --------------------------------------------------------------------------- options: TP, slice and memory fit


class _Option:
    """One way to run a model on chips of a given memory: TP size, chips taken, slice, kv_fit verdict."""

    __slots__ = ("tp", "k", "util_milli", "fit", "rank")

    def quality(self) -> Tuple[int, ...]:
        """Wish met first (fewest chips), else longest context; then fewer chips, larger TP."""
        if self.rank == 0:
            return (0, self.k, 0, -self.tp)
        return (1, -self.fit["recommended_max_model_len"], self.k, -self.tp)


class _Planner:
    """Caches and state of one planning run."""

    def __init__(self, models: List[_Model], hosts: Dict[str, _Host], share_cap: float,
                 image_selector: Optional[Callable[[Dict[str, Any], str], Optional[Dict[str, Any]]]]) -> None:
        self.models = dict((model.name, model) for model in models)
        self.catalogue = models
        self.hosts = hosts
        self.cap_milli = int(round(share_cap * 1000))
        self.image_selector = image_selector
        self.fits = {}  # type: Dict[Tuple[Any, ...], Dict[str, Any]]
        self.options = {}  # type: Dict[Tuple[Any, ...], List[_Option]]
        self.evals = {}  # type: Dict[Tuple[Any, ...], Optional[Tuple[Any, ...]]]
        self.label_ok = {}  # type: Dict[Tuple[Any, ...], bool]
        self.buckets = {}  # type: Dict[Tuple[Any, ...], List[str]]
        self.bucket_of = {}  # type: Dict[str, Tuple[Any, ...]]
        self.holding = {}  # type: Dict[Tuple[Any, ...], int]
        self.indexed = set()  # type: Set[str]
        self.placed = {}  # type: Dict[Tuple[str, int], Dict[str, Any]]
        self.fewest = {}  # type: Dict[Tuple[Any, ...], int]
        self.previous_ports = {}  # type: Dict[Tuple[str, int], int]
        self.demands = {}  # type: Dict[str, Tuple[int, int, int]]
        # whole-group models with replicas still to come in the current greedy pass (see spoils)
        self.reserve = ()  # type: Tuple[_Model, ...]
        self.reserve_key = ()  # type: Tuple[str, ...]
        self.whole = set()  # type: Set[str]
        self.reserving = True  # False in the replay round without reservations

    # ---- memory fit (pure, cached per model, chip memory, TP, slice and 310P halving)

    def fit(self, model: _Model, memory_mb: int, tp: int, util_milli: int, family: str) -> Dict[str, Any]:
        key = (model.name, memory_mb, tp, util_milli, family == "310p")
        result = self.fits.get(key)
        if result is None:
            try:
                result = kv_fit(model.profile, chip_memory_mb=memory_mb, tensor_parallel_size=tp,
                                gpu_memory_utilization=util_milli / 1000.0, max_model_len=model.max_model_len,
                                min_model_len=model.min_model_len, chip_family="310P" if family == "310p" else None)
            except ValueError as exc:
                raise PlacementError("%s: %s" % (model.where(), exc)) from None
            self.fits[key] = result
        return result

    def _slice(self, model: _Model, memory_mb: int, family: str) -> int:
        """share_chip slice: the model's own, else the smallest multiple of 0.05 holding the wish."""
        if model.util_milli is not None:
            return model.util_milli
        ceiling = min(int(DEFAULT_UTILIZATION * 1000), self.cap_milli)
        for milli in range(SLICE_MIN_MILLI, ceiling + 1, SLICE_STEP_MILLI):
            if self.fit(model, memory_mb, 1, milli, family)["verdict"] == "fits":
                return milli
        return ceiling

    def options_for(self, model: _Model, family: str, memory_mb: int, max_chips: int) -> List[_Option]:
        """Viable options on chips of ``memory_mb``, best first (see _Option.quality)."""
        key = (model.name, family, memory_mb, max_chips)
        cached = self.options.get(key)
        if cached is not None:
            return cached
        sizes = [model.tp] if model.tp != AUTO else ([1] if model.share else list(TP_SIZES))
        if model.share and family == "a3":
            sizes = []  # an A3 container needs a whole HiAM module: no single-chip slices there
        result = []
        for tp in sizes:
            k = alloc_size(family, tp)
            if k > max_chips:
                continue
            util = self._slice(model, memory_mb, family) if model.share else model.util_milli
            fit = self.fit(model, memory_mb, tp, util, family)
            if fit["verdict"] == "does_not_fit":
                continue
            option = _Option()
            option.tp, option.k, option.util_milli, option.fit = tp, k, util, fit
            option.rank = 0 if fit["verdict"] == "fits" else 1
            result.append(option)
        result.sort(key=_Option.quality)
        self.options[key] = result
        return result

    # ---- static eligibility

    def labels_match(self, model: _Model, host: _Host) -> bool:
        key = (model.name, host.labels_key)
        value = self.label_ok.get(key)
        if value is None:
            value = all(host.labels.get(label) == wanted for label, wanted in model.labels.items())
            self.label_ok[key] = value
        return value

    def eligible(self, model: _Model, host: _Host) -> bool:
        """Host-level constraints that do not change while planning."""
        if not host.ok or (model.hosts is not None and host.name not in model.hosts):
            return False
        if model.port is not None and not host.port_low <= model.port <= host.port_high:
            return False
        return self.labels_match(model, host)

    # ---- buckets of interchangeable hosts

    def index_hosts(self) -> None:
        """Hosts that can take replicas go into buckets keyed by (signature, labels)."""
        for name in sorted(self.hosts):
            host = self.hosts[name]
            if host.ok and any(chip.usable for chip in host.chips):
                self.indexed.add(name)
                self._bucket_add(host)

    def _bucket_add(self, host: _Host) -> None:
        host._sig = None
        key = (host.signature(), host.labels_key)
        names = self.buckets.get(key)
        if names is None:
            self.buckets[key] = [host.name]
        else:
            bisect.insort(names, host.name)
        self.bucket_of[host.name] = key
        for model, count in host.models.items():
            if count:
                self.holding[(key, model)] = self.holding.get((key, model), 0) + 1

    def _bucket_remove(self, host: _Host) -> None:
        key = self.bucket_of.pop(host.name)
        names = self.buckets[key]
        del names[bisect.bisect_left(names, host.name)]
        if not names:
            del self.buckets[key]
        for model, count in host.models.items():
            if count:
                self.holding[(key, model)] -= 1

    # ---- choosing chips on one host

    def best_on_host(self, host: _Host, model: _Model) -> Optional[Tuple[Tuple[Any, ...], List[_Chip], _Option]]:
        """Best (score, chips, option) for one replica on this host, ignoring ports and spread."""
        memories = sorted(set(chip.memory_mb for chip in host.chips if chip.usable and chip.owner is None))
        best = None
        for memory in memories:
            for option in self.options_for(model, host.family, memory, len(host.chips)):
                found = _find_shared(host, option.util_milli, memory, self.cap_milli) if model.share \
                    else _find_exclusive(host, option.k, memory)
                if found is None:
                    continue
                packing, chips = found
                actual = min(chip.memory_mb for chip in chips)
                if actual != memory:
                    continue  # the same chips are scored under their own smallest memory
                score = option.quality() + packing
                if best is None or score < best[0]:
                    best = (score, chips, option)
        return best

    def evaluate(self, key: Tuple[Any, ...], model: _Model) -> Optional[Tuple[Any, ...]]:
        """Score of a bucket for a model, computed once on its first host (all are alike).

        The option's quality (whether the wish is met, else the context reached),
        whether the replica would break up room a reserved whole-group replica
        needs (see spoils), then the chips taken and the packing.
        """
        cache_key = (key[0], model.name, self.reserve_key, model.name in self.whole)
        if cache_key not in self.evals:
            host = self.hosts[self.buckets[key][0]]
            found = self.best_on_host(host, model)
            if found is None:
                self.evals[cache_key] = None
            else:
                score = found[0]
                cut = 1 if score[0] == 0 else 2  # after the wish met (else the context reached), before chips taken
                if model.name in self.whole:
                    room = self.fillable(host, model)
                else:
                    room = self.spoils(host, model, found[1], found[2])
                self.evals[cache_key] = score[:cut] + (room,) + score[cut:]
        return self.evals[cache_key]

    def fillable(self, host: _Host, model: _Model) -> int:
        """For a spread whole-group model: 0 when the other models, one replica each (spread), cannot fill the
        host's free chips, so a host like this is left partly empty unless this model takes it; else 1."""
        if not model.spread:
            return 1
        room = 0
        for other in self.catalogue:
            if other is model or not other.replicas or not self.eligible(other, host):
                continue
            if not other.spread:
                return 1
            room += _fewest_chips(self, other, host)
        return 0 if room < host.free_count() else 1

    def spoils(self, host: _Host, model: _Model, chips: List[_Chip], option: _Option) -> int:
        """1 when taking these chips leaves the host unable to take a replica of a reserved whole-group model
        it could take now (ports and spread aside), else 0."""
        reserved = [big for big in self.reserve if big is not model and self.labels_match(big, host)]
        if not reserved or not any(self.best_on_host(host, big) is not None for big in reserved):
            return 0
        for chip in chips:
            if model.share:
                chip.share_used += option.util_milli
            else:
                chip.owner = ("_what_if", 0)
        still = any(self.best_on_host(host, big) is not None for big in reserved)
        for chip in chips:
            if model.share:
                chip.share_used -= option.util_milli
            else:
                chip.owner = None
        return 0 if still else 1

    def accepts(self, host: _Host, model: _Model, replica: int) -> Optional[int]:
        """Port for this replica if the host takes it (name filter, spread, free port), else None."""
        if model.hosts is not None and host.name not in model.hosts:
            return None
        if model.spread and host.models.get(model.name):
            return None
        return _free_port(host, model, replica, self.previous_ports.get((model.name, replica)))

    # ---- commit and release

    def commit(self, host: _Host, record: Dict[str, Any], chips: List[_Chip]) -> None:
        """Give the chips and port to the replica; the host changes bucket."""
        key = (record["model"], record["replica"])
        indexed = host.name in self.indexed
        if indexed:
            self._bucket_remove(host)
        for chip in chips:
            if record["share_chip"]:
                chip.shares[key] = record["util_milli"]
                chip.share_used += record["util_milli"]
            else:
                chip.owner = key
        host.ports[record["port"]] = key
        host.models[record["model"]] = host.models.get(record["model"], 0) + 1
        record["_chips"] = chips
        self.placed[key] = record
        if indexed:
            self._bucket_add(host)

    def release(self, key: Tuple[str, int]) -> Dict[str, Any]:
        """Undo commit (repair rounds replay from the sticky state)."""
        record = self.placed.pop(key)
        host = self.hosts[record["host"]]
        indexed = host.name in self.indexed
        if indexed:
            self._bucket_remove(host)
        for chip in record["_chips"]:
            if record["share_chip"]:
                chip.share_used -= chip.shares.pop(key)
            else:
                chip.owner = None
        del host.ports[record["port"]]
        host.models[record["model"]] -= 1
        if indexed:
            self._bucket_add(host)
        return record


def _find_exclusive(host: _Host, k: int, min_memory: int) -> Optional[Tuple[Tuple[int, ...], List[_Chip]]]:
    """k free chips of >= min_memory in one interconnect group, best fit; (packing score, chips).

    Packing score: free chips left in the group (fewest first, so fuller
    groups and hosts fill up and large free groups survive), free chips left
    on the host, then memory taken (smallest chips that fit first).
    """
    chips = host.chips
    host_free = host.free_count()
    if host.family == "910a" and k > 4:
        # 910A: HCCS rings of 4; 8 chips means the whole server (MindCluster affinity rules).
        if k == len(chips) and all(chip.free() and chip.memory_mb >= min_memory for chip in chips):
            return (0, host_free - k, sum(chip.memory_mb for chip in chips)), list(chips)
        return None
    whole_units = host.family == "a3" or (host.family == "310p" and k >= 2)
    best = None
    for group in host.groups:
        group_free = sum(1 for unit in group for index in unit if chips[index].free())
        if group_free < k:
            continue
        chosen = _pick_units(chips, group, k, min_memory) if whole_units else _pick_chips(chips, group, k, min_memory)
        if chosen is None:
            continue
        score = (group_free - k, host_free - k, sum(chip.memory_mb for chip in chosen), chosen[0].index)
        if best is None or score < best[0]:
            best = (score, chosen)
    if best is None:
        return None
    return best[0][:3], best[1]


def _pick_units(chips: List[_Chip], group: List[List[int]], k: int, min_memory: int) -> Optional[List[_Chip]]:
    """Whole free units (A3 modules, 310P cards) adding up to exactly k chips, smallest memory first."""
    units = [unit for unit in group if all(chips[i].free() and chips[i].memory_mb >= min_memory for i in unit)]
    units.sort(key=lambda unit: (-len(unit), max(chips[i].memory_mb for i in unit), unit[0]))
    chosen = []  # type: List[_Chip]
    for unit in units:
        if len(chosen) + len(unit) <= k:
            chosen.extend(chips[i] for i in unit)
        if len(chosen) == k:
            return sorted(chosen, key=lambda chip: chip.index)
    return None


def _pick_chips(chips: List[_Chip], group: List[List[int]], k: int, min_memory: int) -> Optional[List[_Chip]]:
    """k single chips: those of part-used units first (keeps whole cards free), then smallest memory."""
    candidates = []
    for unit in group:
        unit_free = sum(1 for i in unit if chips[i].free())
        for i in unit:
            if chips[i].free() and chips[i].memory_mb >= min_memory:
                candidates.append((unit_free, chips[i].memory_mb, i))
    if len(candidates) < k:
        return None
    candidates.sort()
    return sorted((chips[item[2]] for item in candidates[:k]), key=lambda chip: chip.index)


def _find_shared(host: _Host, util_milli: int, memory: int,
                 cap_milli: int) -> Optional[Tuple[Tuple[int, ...], List[_Chip]]]:
    """One chip of exactly ``memory`` (the slice was sized for it) with room: shared chips first, tightest fit."""
    best = None
    host_free = host.free_count()
    for chip in host.chips:
        if not chip.usable or chip.owner is not None or chip.memory_mb != memory:
            continue
        left = cap_milli - chip.share_used - util_milli
        if left < 0:
            continue
        score = (0 if chip.share_used else 1, left, host_free - (0 if chip.share_used else 1), chip.memory_mb, chip.index)
        if best is None or score < best[0]:
            best = (score, chip)
    if best is None:
        return None
    return best[0][:4], [best[1]]


def _free_port(host: _Host, model: _Model, replica: int, previous: Optional[int] = None) -> Optional[int]:
    """The model's fixed port if free; else the port the replica had before it moved, if free here;
    else a port derived from (model, replica), probing upwards.

    crc32 (not Python's salted hash) makes the first choice the same on
    every run and every host, whatever else the catalogue holds.
    """
    taken = host.ports
    used = host.used_ports
    if model.port is not None:
        port = model.port
        return port if port not in taken and port not in used and host.port_low <= port <= host.port_high else None
    if previous is not None and host.port_low <= previous <= host.port_high and previous not in taken:
        if previous not in used:
            return previous
    size = host.port_high - host.port_low + 1
    start = zlib.crc32(("%s/%d" % (model.name, replica)).encode("utf-8")) % size
    for step in range(size):
        port = host.port_low + (start + step) % size
        if port not in taken and port not in used:
            return port
    return None


# --------------------------------------------------------------------------- sticky pass


def _current_option(planner: _Planner, model: _Model, host: _Host, chips: List[_Chip],
                    entry: Dict[str, Any]) -> Tuple[Optional[_Option], str]:
    """The option a running replica keeps on its chips, or why it cannot stay."""
    memory = min(chip.memory_mb for chip in chips)
    options = [option for option in planner.options_for(model, host.family, memory, len(host.chips))
               if option.k == len(chips)]
    wanted = str(entry.get("tensor_parallel_size"))
    for option in sorted(options, key=lambda item: 0 if str(item.tp) == wanted else 1):
        return option, ""  # the running TP size if it is still viable, else the best of the same chip count
    if model.tp != AUTO and alloc_size(host.family, model.tp) != len(chips):
        return None, "tensor_parallel_size is now %d (%d chip(s)); it runs on %d" % (
            model.tp, alloc_size(host.family, model.tp), len(chips))
    fit = planner.fit(model, memory, model.tp if model.tp != AUTO else max(1, len(chips)),
                      model.util_milli or int(DEFAULT_UTILIZATION * 1000), host.family)
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


def _stay_reason(planner: _Planner, entry: Dict[str, Any]) -> Tuple[Optional[str], Optional[Dict[str, Any]]]:
    """(None, record) when the running replica stays as it is, else (why it cannot, None)."""
    model = planner.models.get(entry["model"])
    if model is None:
        return "model %s is no longer in the catalogue" % entry["model"], None
    if entry["replica"] >= model.replicas:
        return "replica %d is beyond replicas: %d" % (entry["replica"], model.replicas), None
    host = planner.hosts.get(entry["host"])
    if host is None:
        return "host %s is no longer in the fleet" % entry["host"], None
    if not host.ok:
        return "host %s failed preflight" % host.name, None
    if not planner.eligible(model, host):
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
    if model.share and chips[0].share_used + option.util_milli > planner.cap_milli:
        return "the shared chip %s has no room left for its slice" % chips[0].device, None
    port = entry["port"]
    if model.port is not None and port != model.port:
        return "the model's port is now %d" % model.port, None
    if not host.port_low <= port <= host.port_high or port in host.ports:
        return "port %d is outside %s's range or taken" % (port, host.name), None
    if port in host.used_ports and not entry.get("_port_is_ours"):
        return "port %d is in use on %s" % (port, host.name), None
    return None, _record(model, entry["replica"], host, chips, option, port)


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
        record["reasons"].insert(0, "kept: still fits on the same host, chips and port")
        planner.commit(planner.hosts[record["host"]], record, record.pop("_candidate_chips"))
        gone.pop(key, None)
    return gone


def _record(model: _Model, replica: int, host: _Host, chips: List[_Chip], option: _Option, port: int) -> Dict[str, Any]:
    """A placement before output formatting."""
    fit = option.fit
    reasons = []
    if model.tp == AUTO:
        reasons.append("tensor_parallel_size auto -> %d" % option.tp)
    if fit["verdict"] == "capped":
        reasons.append("max_model_len %d -> %d: %s"
                       % (fit["requested_max_model_len"], fit["recommended_max_model_len"], fit["message"]))
    if host.family == "a3" and option.k > option.tp:
        reasons.append("A3: the container gets the whole HiAM module (vllm-ascend: A3 needs at least 2 NPUs)")
    if model.share:
        reasons.append("shares the chip: gpu_memory_utilization slice %.2f" % (option.util_milli / 1000.0))
    return {"model": model.name, "replica": replica, "host": host.name, "port": port, "share_chip": model.share,
            "util_milli": option.util_milli, "option": option, "kept": False, "reasons": reasons,
            "_candidate_chips": chips}


# --------------------------------------------------------------------------- greedy pass and repair


def _demand(planner: _Planner, model: _Model) -> Tuple[int, int, int]:
    """(coverage, chips, chip memory): the share of the fleet's usable chips the model can use at all
    (in thousandths), and the chips and chip memory of its cheapest option."""
    best = None
    usable = covered = 0
    for host in planner.hosts.values():
        chips = sum(1 for chip in host.chips if chip.usable) if host.ok else 0
        usable += chips
        if not chips or not planner.eligible(model, host):
            continue
        fits_here = False
        for memory in sorted(set(chip.memory_mb for chip in host.chips if chip.usable)):
            for option in planner.options_for(model, host.family, memory, len(host.chips)):
                fits_here = True
                candidate = (option.k, memory)
                if best is None or candidate < best:
                    best = candidate
        covered += chips if fits_here else 0
    chips, memory = best if best is not None else (0, 0)
    return (covered * 1000 // usable if usable else 0), chips, memory


def _demand_of(planner: _Planner, name: str) -> Tuple[int, int, int]:
    """_demand, cached for the run (it depends on nothing placing changes)."""
    if name not in planner.demands:
        planner.demands[name] = _demand(planner, planner.models[name])
    return planner.demands[name]


def _order(planner: _Planner, pending: List[Tuple[str, int]], size_first: bool = False) -> List[Tuple[str, int]]:
    """Most constrained models first (the smallest share of the fleet they can use), then decreasing
    demand: more chips, then larger chips. ``size_first`` puts chips before the share (second round)."""
    demand = {}  # type: Dict[str, Tuple[int, int, int]]
    for name in sorted(set(key[0] for key in pending)):
        demand[name] = _demand_of(planner, name)
    if size_first:
        return sorted(pending, key=lambda key: (-demand[key[0]][1], demand[key[0]][0], -demand[key[0]][2], key))
    return sorted(pending, key=lambda key: (demand[key[0]][0], -demand[key[0]][1], -demand[key[0]][2], key))


def _bucket_members(planner: _Planner, model: _Model, key: Tuple[Any, ...]) -> Sequence[str]:
    """Hosts of a bucket worth trying for the model, in name order."""
    names = planner.buckets[key]
    if model.spread and planner.holding.get((key, model.name), 0) >= len(names):
        return ()  # every host of the bucket already runs a replica of the model
    if model.hosts is not None and len(model.hosts) < len(names):
        return [name for name in sorted(model.hosts) if planner.bucket_of.get(name) == key]
    return names


def _place_one(planner: _Planner, model: _Model, replica: int) -> bool:
    """Best-fit placement of one replica: best-scoring bucket first, first fitting host by name in it."""
    ranked = []
    for key, names in planner.buckets.items():
        if not planner.labels_match(model, planner.hosts[names[0]]):
            continue
        score = planner.evaluate(key, model)
        if score is not None:
            ranked.append((score, names[0], key))
    ranked.sort()
    for ranked_item in ranked:
        for name in _bucket_members(planner, model, ranked_item[2]):
            host = planner.hosts[name]
            if not planner.eligible(model, host):
                continue
            port = planner.accepts(host, model, replica)
            if port is None:
                continue
            found = planner.best_on_host(host, model)
            if found is None:
                continue
            record = _record(model, replica, host, found[1], found[2], port)
            planner.commit(host, record, record.pop("_candidate_chips"))
            return True  # commit changed the bucket lists: stop iterating them
    return False


def _greedy(planner: _Planner, order: List[Tuple[str, int]]) -> List[Tuple[str, int]]:
    """Place in order; return the replicas left over.

    While replicas of a whole-group model (WHOLE_GROUP_CHIPS or more chips)
    are still to come, the ones placed before them prefer hosts where they do
    not break up the room such a replica needs (planner.reserve).
    """
    last = dict((key[0], index) for index, key in enumerate(order))
    big = [planner.models[name] for name in sorted(last)
           if planner.reserving and _demand_of(planner, name)[1] >= WHOLE_GROUP_CHIPS]
    planner.whole = set(model.name for model in big)
    left = []
    for index, key in enumerate(order):
        reserve = tuple(model for model in big if last[model.name] > index and model.name != key[0])
        if reserve != planner.reserve:
            planner.reserve, planner.reserve_key = reserve, tuple(model.name for model in reserve)
        if not _place_one(planner, planner.models[key[0]], key[1]):
            left.append(key)
    planner.reserve, planner.reserve_key = (), ()
    return left


def _snapshot(planner: _Planner, keys: List[Tuple[str, int]]) -> List[Tuple[Tuple[str, int], Dict[str, Any]]]:
    return [(key, planner.placed[key]) for key in keys if key in planner.placed]


def _place_with_repair(planner: _Planner, pending: List[Tuple[str, int]]) -> List[Tuple[str, int]]:
    """Greedy pass and eviction repair, then bounded replays with the models left over first; keep the
    best round. Kept (sticky) replicas are never moved to make room.
    """
    order = _order(planner, pending)
    best_left, best_records, best_round = None, [], -1  # type: Optional[List[Tuple[str, int]]], Any, int
    stale = 0
    round_number = 0
    while True:
        left = _evict_repair(planner, _greedy(planner, order))
        if best_left is None or len(left) < len(best_left):
            best_left, best_records, best_round, stale = left, _snapshot(planner, order), round_number, 0
        else:
            stale += 1
        if not left or stale >= 2 or round_number == MAX_REPAIR_ROUNDS:
            break
        _release_all(planner, order)
        if round_number == 0 and planner.whole:
            planner.reserving = False  # the same order without reserving room for whole-group replicas
        elif round_number == 0 or not planner.reserving:
            planner.reserving = True
            order = _order(planner, pending, size_first=True)
        else:
            promoted = set(key[0] for key in left)  # whole models: their placed replicas too
            order = [key for key in order if key[0] in promoted] + [key for key in order if key[0] not in promoted]
        round_number += 1
    if best_round != round_number:
        _release_all(planner, order)
        for key, record in best_records:
            planner.commit(planner.hosts[record["host"]], record, record["_chips"])
    return best_left or []


def _movable(planner: _Planner, host: _Host) -> List[Tuple[str, int]]:
    """Replicas placed on the host in this run (kept ones never move), smallest first."""
    keys = [key for key in host.ports.values() if not planner.placed[key]["kept"]]
    return sorted(keys, key=lambda key: (len(planner.placed[key]["_chips"]), key))


def _fewest_chips(planner: _Planner, model: _Model, host: _Host) -> int:
    """Chips the model's cheapest option takes on this host (0: none fits), cached per host shape."""
    memories = tuple(sorted(set(chip.memory_mb for chip in host.chips if chip.usable)))
    key = (model.name, host.family, memories, len(host.chips))
    if key not in planner.fewest:
        planner.fewest[key] = min([option.k for memory in memories
                                   for option in planner.options_for(model, host.family, memory, len(host.chips))]
                                  or [0])
    return planner.fewest[key]


def _repair_hosts(planner: _Planner, model: _Model, replica: int, names: List[str]) -> List[_Host]:
    """Hosts where evicting replicas placed in this run could make room, fewest chips missing first."""
    ranked = []
    for name in names:
        host = planner.hosts[name]
        if model.spread and host.models.get(model.name):
            continue
        reclaimable = sum(len(planner.placed[key]["_chips"]) for key in host.ports.values()
                          if not planner.placed[key]["kept"])
        if not reclaimable or not planner.eligible(model, host):
            continue
        needed = _fewest_chips(planner, model, host)
        free = host.free_count()
        if not needed or free + reclaimable < needed or planner.accepts(host, model, replica) is None:
            continue
        ranked.append((max(0, needed - free), reclaimable, name))
    ranked.sort()
    return [planner.hosts[item[2]] for item in ranked[:REPAIR_HOSTS]]


def _try_evict(planner: _Planner, host: _Host, model: _Model, replica: int) -> bool:
    """Make room on the host for a left-over replica by moving replicas of this run elsewhere.

    First each movable replica alone (a swap), then the smallest ones
    cumulatively until the replica fits; the evicted ones are re-placed by
    best fit. Everything is undone unless all of them find a place.
    """
    movable = _movable(planner, host)
    for key in movable:
        if _evict_and_replace(planner, host, model, replica, [key]):
            return True
    return len(movable) > 1 and _evict_and_replace(planner, host, model, replica, movable)


def _evict_and_replace(planner: _Planner, host: _Host, model: _Model, replica: int,
                       candidates: List[Tuple[str, int]]) -> bool:
    """Release candidates in order until the replica fits; place it; re-place the released ones."""
    released = []
    for key in candidates:
        released.append(planner.release(key))
        if planner.best_on_host(host, model) is not None and planner.accepts(host, model, replica) is not None:
            break
    else:
        _restore(planner, released)
        return False
    found = planner.best_on_host(host, model)
    record = _record(model, replica, host, found[1], found[2], planner.accepts(host, model, replica))
    planner.commit(host, record, record.pop("_candidate_chips"))
    replaced = []
    for victim in sorted(released, key=lambda item: (-len(item["_chips"]), item["model"], item["replica"])):
        if not _place_one(planner, planner.models[victim["model"]], victim["replica"]):
            break
        replaced.append((victim["model"], victim["replica"]))
    else:
        return True
    _release_all(planner, replaced + [(model.name, replica)])
    _restore(planner, released)
    return False


def _restore(planner: _Planner, records: List[Dict[str, Any]]) -> None:
    for record in reversed(records):
        planner.commit(planner.hosts[record["host"]], record, record["_chips"])


def _evict_repair(planner: _Planner, left: List[Tuple[str, int]]) -> List[Tuple[str, int]]:
    """Place left-over replicas by moving replicas of this run out of their way (one level deep).

    Bounded: REPAIR_HOSTS hosts per replica, and a model is given up after
    two replicas in a row found no host.
    """
    still = []
    failures = {}  # type: Dict[str, int]
    names = sorted(planner.indexed)
    for key in left:
        model = planner.models[key[0]]
        if failures.get(model.name, 0) >= 2:
            still.append(key)
            continue
        if any(_try_evict(planner, host, model, key[1]) for host in _repair_hosts(planner, model, key[1], names)):
            failures[model.name] = 0
        else:
            failures[model.name] = failures.get(model.name, 0) + 1
            still.append(key)
    return still


def _release_all(planner: _Planner, keys: List[Tuple[str, int]]) -> None:
    for key in keys:
        if key in planner.placed:
            planner.release(key)


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
                size = sum(len(unit) for unit in group
                           if all(host.chips[i].free() and host.chips[i].memory_mb >= memory for i in unit))
            else:
                size = sum(1 for unit in group for i in unit
                           if host.chips[i].free() and host.chips[i].memory_mb >= memory)
            largest = max(largest, size)
    return largest


def _unplaced_reason(planner: _Planner, model: _Model) -> Dict[str, Any]:
    """A sentence the user can act on, with the demand in numbers."""
    hosts = [host for host in planner.hosts.values() if planner.eligible(model, host)]
    if not hosts:
        return {"reason": _no_host_reason(planner, model), "needs": []}
    needs = {}  # type: Dict[Tuple[int, int], _Option]
    for host in hosts:
        for memory in sorted(set(chip.memory_mb for chip in host.chips if chip.usable)):
            options = planner.options_for(model, host.family, memory, len(host.chips))
            if options:
                needs.setdefault((options[0].k, memory), options[0])
    minimal = {}  # type: Dict[int, int]
    for k, memory in sorted(needs):
        if k not in minimal:
            minimal[k] = memory
    if not minimal:
        return {"reason": _no_fit_reason(planner, model, hosts), "needs": []}
    parts = ["%d chip%s of >= %s" % (k, "" if k == 1 else "s", _gib(memory)) for k, memory in sorted(minimal.items())]
    k, memory = sorted(minimal.items())[0]
    largest = _largest_free_group(planner, model, k, memory)
    where = "on one host" + (" in one interconnect group" if k > 1 else "")
    reason = "needs %s %s; largest free group is %d" % (" or ".join(parts), where, largest)
    if largest >= k:
        reason += _blocker(planner, model, hosts)
    return {"reason": reason, "needs": [{"chips": k, "min_chip_memory_mb": memory} for k, memory in sorted(minimal.items())]}


def _blocker(planner: _Planner, model: _Model, hosts: List[_Host]) -> str:
    """Why a host with enough free chips still did not take the replica."""
    roomy = [host for host in hosts if planner.best_on_host(host, model) is not None]
    if model.spread and roomy and all(host.models.get(model.name) for host in roomy):
        return ("; spread: every host with room already runs a replica of %s (add hosts or set spread: false)"
                % model.name)
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
        return "no host passing preflight has the labels %s" % ", ".join(
            "%s=%s" % item for item in sorted(model.labels.items()))
    return "its port %s is outside the port range of every host it may use" % model.port


def _no_fit_reason(planner: _Planner, model: _Model, hosts: List[_Host]) -> str:
    """Does not fit at any allowed TP on the largest chips: kv_fit's own sentence."""
    host = max(hosts, key=lambda item: (max([c.memory_mb for c in item.chips if c.usable] or [0]), len(item.chips)))
    memories = [chip.memory_mb for chip in host.chips if chip.usable]
    if not memories:
        return "no usable chip on the hosts it may use"
    sizes = [model.tp] if model.tp != AUTO else [tp for tp in TP_SIZES if alloc_size(host.family, tp) <= len(host.chips)]
    tp = max(sizes or [1])
    util = model.util_milli or int(DEFAULT_UTILIZATION * 1000)
    fit = planner.fit(model, max(memories), tp, util, host.family)
    return "does not fit even at tensor_parallel_size %d on %s chips: %s" % (tp, _gib(max(memories)), fit["message"])


# --------------------------------------------------------------------------- output


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
        "reasons": list(record["reasons"]),
    }


def _changes(current: List[Dict[str, Any]], gone: Dict[Any, Dict[str, Any]],
             placements: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
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
            changed = [field for field in ("max_model_len", "gpu_memory_utilization", "tensor_parallel_size", "image",
                                           "backend") if field in entry and entry[field] != target[field]]
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


def _change(action: str, entry: Optional[Dict[str, Any]], target: Optional[Dict[str, Any]],
            reason: Optional[str]) -> Dict[str, Any]:
    source = entry or target or {}
    result = {"action": action, "model": source["model"], "replica": source["replica"], "reason": reason}
    result["from"] = None if entry is None else {"host": entry["host"], "devices": entry["devices"], "port": entry["port"]}
    result["to"] = None if target is None else {"host": target["host"], "devices": target["devices"], "port": target["port"]}
    return result


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
            "excluded": [{"device": chip.device, "chip": _chip_name(chip), "reason": chip.why}
                         for chip in host.chips if not chip.usable],
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


def plan(hosts: Any, models: Any, current: Any = None,
         image_selector: Optional[Callable[[Dict[str, Any], str], Optional[Dict[str, Any]]]] = None,
         share_cap: float = SHARE_CAP, default_port_range: Any = DEFAULT_PORT_RANGE,
         profile_loader: Callable[[str], Dict[str, Any]] = profile_model,
         known_hosts: Optional[List[str]] = None) -> Dict[str, Any]:
    """Plan every replica of ``models`` on ``hosts``, keeping what runs (``current``) where it still fits.

    ``hosts``: host name -> {chips (npu_facts), labels, port_range,
    reserved_devices, used_ports, preflight_ok, excluded_devices, problems,
    family, npu_smi_layout, interconnect_groups, notes}. ``models``: list
    of catalogue entries (MODEL_FIELDS). ``current``: running placements
    (model, replica, host, devices, port, optional pids/settings).
    ``image_selector(model_entry, host)`` may return {backend, image} per
    placement (the seam for image selection). ``known_hosts``: every host
    of the inventory; a ``hosts`` constraint may name one of them that this
    run does not plan (``--limit``) without being an input error.
    Same inputs, same plan. Raises PlacementError for invalid input.
    """
    if isinstance(share_cap, bool) or not isinstance(share_cap, (int, float)) or not 0 < share_cap <= 1:
        raise PlacementError("share_chip_limit must be in (0, 1], got %r" % (share_cap,))
    default_range = _parse_port_range(default_port_range, "port_range")
    catalogue = _validate_models(models, profile_loader)
    running = _validate_current(current)
    fleet = _validate_hosts(hosts, running, default_range)
    _check_references(catalogue, fleet, known_hosts or [])
    planner = _Planner(catalogue, fleet, share_cap, image_selector)
    for model in catalogue:
        planner.fit(model, 65536, 1, model.util_milli or int(DEFAULT_UTILIZATION * 1000), "910b")  # profile sanity
    _mark_our_ports(running, fleet)
    planner.index_hosts()
    gone = _sticky_pass(planner, running)
    planner.previous_ports = dict((key, entry["port"]) for key, entry in gone.items())
    pending = [(model.name, replica) for model in catalogue for replica in range(model.replicas)
               if (model.name, replica) not in planner.placed]
    left = _place_with_repair(planner, pending)
    placements = [_placement_out(planner, planner.placed[key]) for key in sorted(planner.placed)]
    unplaced = []
    reasons = {}  # type: Dict[str, Dict[str, Any]]
    for key in sorted(left):
        if key[0] not in reasons:
            reasons[key[0]] = _unplaced_reason(planner, planner.models[key[0]])
        item = {"model": key[0], "replica": key[1]}
        item.update(reasons[key[0]])
        unplaced.append(item)
    return {
        "placements": placements,
        "unplaced": unplaced,
        "changes": _changes(running, gone, placements),
        "summary": _summary(planner),
    }


def _check_references(catalogue: List[_Model], fleet: Dict[str, _Host], known_hosts: List[str]) -> None:
    """Constraints naming hosts or ports that cannot exist are input errors, not unplaced replicas."""
    for model in catalogue:
        if model.hosts is not None:
            unknown = [name for name in model.hosts if name not in fleet and name not in known_hosts]
            if unknown:
                raise PlacementError("%s: hosts names %s, not in the fleet (%s); fix the name or add the host to the "
                                     "inventory" % (model.where(), ", ".join(unknown), ", ".join(sorted(fleet)) or "empty"))
        if model.port is not None and fleet:
            allowed = [host for host in fleet.values() if model.hosts is None or host.name in model.hosts]
            if allowed and not any(host.port_low <= model.port <= host.port_high for host in allowed):
                ranges = sorted(set("%d-%d" % (host.port_low, host.port_high) for host in allowed))
                raise PlacementError("%s: port %d is outside the port range of every host (%s); pick a port inside "
                                     "or widen port_range" % (model.where(), model.port, ", ".join(ranges)))


def _mark_our_ports(running: List[Dict[str, Any]], fleet: Dict[str, _Host]) -> None:
    """A port in used_ports that a running replica of ours claims is its own listener, not a conflict."""
    for entry in running:
        host = fleet.get(entry["host"])
        if host is not None and entry["port"] in host.used_ports:
            entry["_port_is_ours"] = True


# --------------------------------------------------------------------------- table


def render_table(result: Dict[str, Any]) -> str:
    """The plan as text, one block per host, then what could not be placed and the capacity left."""
    lines = []
    by_host = {}  # type: Dict[str, List[Dict[str, Any]]]
    for item in result["placements"]:
        by_host.setdefault(item["host"], []).append(item)
    actions = dict(((item["model"], item["replica"]), item["action"]) for item in result["changes"]
                   if item["action"] != "remove")
    for name, info in sorted(result["summary"]["hosts"].items()):
        head = "%s [%s] %d chips: %d used, %d free" % (
            name, info["family"], info["chips"], info["chips_used"], info["chips_free"])
        if not info["preflight_ok"]:
            head = "%s [%s] receives nothing: failed preflight" % (name, info["family"])
        lines.append(head)
        rows = []
        for item in sorted(by_host.get(name, []), key=lambda entry: (entry["devices"][0], entry["model"], entry["replica"])):
            rows.append(["%s#%d" % (item["model"], item["replica"]), ",".join(item["devices"]),
                         "ctr " + ",".join(str(i) for i in item["container_device_ids"]), "port %d" % item["port"],
                         "TP%d" % item["tensor_parallel_size"], "len %d" % item["max_model_len"],
                         "util %.2f" % item["gpu_memory_utilization"], item.get("backend") or "?",
                         actions.get((item["model"], item["replica"]), "add")])
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
