# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""What the planner accepts: constants, PlacementError, coercions, model and current validation.

PRIVATE to the ``npu.fleet.fleet_plan`` planner (see ``__init__.py``). This
file exists so that everything a caller may pass in, and every check of it
that needs no fleet, lives in one place: the field lists and defaults, the
``_as_*`` coercions shared by all validation, port ranges, catalogue
entries (``_Model``, ``_validate_models``) and ``current`` placements.
Catalogue entries are checked by the one schema every stage shares
(``_catalogue.py``); this file only turns them into the planner's ``_Model``.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.npu.fleet.plugins.module_utils._catalogue import FIELDS as CATALOGUE_FIELDS
from ansible_collections.npu.fleet.plugins.module_utils._catalogue import CatalogueError, default_of, validate_catalogue
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import ModelProfileError

AUTO = "auto"
TP_SIZES = (1, 2, 4, 8)
DEFAULT_BACKEND = "vllm"
DEFAULT_PORT_RANGE = "18000-18999"
DEFAULT_UTILIZATION = 0.9
# Sum of gpu_memory_utilization slices allowed on one shared chip. vLLM checks
# at start-up that free memory >= utilization x total (gpu_worker.py init_device),
# so slices must sum below 1; 5 % stays for the second CANN context and fragmentation.
SHARE_CAP = 0.95

# Interconnect families (docs/placement.md, "Interconnect groups", has the sources).
FAMILIES = ("910b", "910a", "a3", "310p", "950", "other")

# Every field of a catalogue entry (the one schema, _catalogue.FIELDS); the planner reads those of stage "plan".
MODEL_FIELDS = tuple(field.name for field in CATALOGUE_FIELDS)
HOST_FIELDS = (
    "chips",
    "labels",
    "port_range",
    "reserved_devices",
    "used_ports",
    "preflight_ok",
    "excluded_devices",
    "problems",
    "family",
    "npu_smi_layout",
    "interconnect_groups",
    "notes",
)
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
            raise PlacementError("%s must look like '18000-18999' (low-high), got %r" % (where, value))
        low, high = int(match.group(1)), int(match.group(2))
    if low > high and 1 <= high <= low <= 65535:
        raise PlacementError("%s %r is reversed (low > high); write it as %d-%d" % (where, value, high, low))
    if not 1 <= low <= high <= 65535:
        raise PlacementError("%s must be a range within 1-65535 with low <= high, such as '18000-18999', got %r" % (where, value))
    return low, high


def _unknown_fields(entry: Dict[str, Any], allowed: Sequence[str], where: str) -> None:
    unknown = sorted(str(key) for key in entry if key not in allowed)
    if unknown:
        raise PlacementError("%s: unknown field(s) %s; allowed: %s" % (where, ", ".join(unknown), ", ".join(allowed)))


# --------------------------------------------------------------------------- models


class _Model:
    """One catalogue entry, validated."""

    __slots__ = (
        "name",
        "index",
        "profile",
        "replicas",
        "tp",
        "max_model_len",
        "min_model_len",
        "util_milli",
        "backend",
        "image",
        "hosts",
        "labels",
        "spread",
        "port",
        "share",
        "share_auto",
        "entry",
    )

    def where(self) -> str:
        return "npu_fleet_models[%d] (%s)" % (self.index, self.name)

    def sharing(self, share: bool) -> "_Model":
        """A copy that shares chips (or not): share_chip auto is planned both ways."""
        model = _Model()
        for slot in _Model.__slots__:
            setattr(model, slot, getattr(self, slot))
        model.share = share
        if share and self.entry.get("gpu_memory_utilization") is None:
            model.util_milli = None  # a slice sized for the model, not the whole-chip 0.9
        return model


def _model_profile_of(entry: Dict[str, Any], where: str, loader: Callable[[str], Dict[str, Any]]) -> Dict[str, Any]:
    """The entry's profile, or the profile of its ``path`` read on the controller."""
    if "profile" in entry:
        return entry["profile"]
    try:
        return loader(str(entry["path"]))
    except ModelProfileError as exc:
        raise PlacementError("%s: cannot profile path %s: %s" % (where, entry["path"], exc)) from None


def _model_from_entry(entry: Dict[str, Any], index: int, loader: Callable[[str], Dict[str, Any]]) -> _Model:
    """A catalogue entry validated by ``_catalogue`` as the planner's _Model; the planner's own defaults filled in."""
    model = _Model()
    model.name, model.index, model.entry = entry["name"], index, entry
    model.profile = _model_profile_of(entry, model.where(), loader)
    model.replicas = entry.get("replicas", default_of("replicas"))
    model.tp = entry.get("tensor_parallel_size", default_of("tensor_parallel_size"))
    model.max_model_len = entry.get("max_model_len")
    model.min_model_len = entry.get("min_model_len", default_of("min_model_len"))
    mode = entry.get("share_chip", default_of("share_chip"))
    # auto: whole chips first; the planner shares only when whole chips run out (plan(), __init__.py).
    model.share, model.share_auto = mode is True, mode == AUTO
    util = entry.get("gpu_memory_utilization")
    if util is None:
        model.util_milli = None if model.share else int(DEFAULT_UTILIZATION * 1000)
    else:
        model.util_milli = int(round(util * 1000))
    # Without image selection (the planner used on its own), "auto" means vLLM.
    backend = entry.get("backend") or AUTO
    model.backend = DEFAULT_BACKEND if backend == AUTO else backend
    model.image = entry.get("image")
    model.hosts = entry.get("hosts") or None
    model.labels = entry.get("labels") or {}
    model.spread = entry.get("spread", default_of("spread"))
    model.port = entry.get("port")
    return model


def _validate_models(models: Any, loader: Callable[[str], Dict[str, Any]]) -> List[_Model]:
    """The catalogue checked by the one schema (``_catalogue``), the same check every stage relies on."""
    try:
        catalogue = validate_catalogue(models)
    except CatalogueError as exc:
        raise PlacementError(str(exc)) from None
    return [_model_from_entry(entry, index, loader) for index, entry in enumerate(catalogue)]


# --------------------------------------------------------------------------- current placements and device nodes


def _device_number(device: Any) -> Optional[int]:
    match = _DEVICE_RE.match(str(device or ""))
    return int(match.group(1)) if match else None


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
            raise PlacementError(
                "%s (%s): missing %s; current placements come from the labels of running containers"
                % (where, entry.get("model"), ", ".join(missing))
            )
        devices = _as_str_list(entry["devices"], where + ": devices")
        clean = dict(entry)
        clean.update(
            {
                "model": str(entry["model"]),
                "host": str(entry["host"]),
                "devices": sorted(devices, key=_sort_device),
                "replica": _as_int(entry["replica"], where + ": replica"),
                "port": _as_int(entry["port"], where + ": port", 1, 65535),
            }
        )
        if entry.get("pids") is not None:
            clean["pids"] = set(_as_int(pid, where + ": pids", 1) for pid in _as_str_list(entry["pids"], where + ": pids"))
        result.append(clean)
    result.sort(key=lambda item: (item["model"], item["replica"], item["host"], item["port"], item["devices"]))
    return result


def _sort_device(device: str) -> Tuple[int, str]:
    number = _device_number(device)
    return (number if number is not None else 1 << 30, device)
