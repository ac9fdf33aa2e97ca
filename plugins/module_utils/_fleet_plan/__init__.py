# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""Place model replicas on the hosts, chips and ports of a whole Ascend fleet.

PRIVATE: used by the ``npu.fleet.fleet_plan`` action plugin; the API may
change without notice. Standard library only (plus the collection's own
``_kv_fit`` and ``_model_profile``), so it runs on the controller without
Ansible and in the benchmark. This file is the public API only: ``plan``
(the orchestration of the steps below) and the names re-exported in
``__all__``; the steps live in files of one purpose each.

``plan(hosts, models, current)`` returns ``placements``, ``unplaced``,
``changes`` and ``summary``; ``render_table(plan)`` turns it into text.
The algorithm and its guarantees are described in docs/placement.md:

1. validate every input, raising PlacementError naming the model, host or
   field and what to do (``inputs.py``: models, current; ``fleet.py``:
   hosts, chips, interconnect groups);
2. keep every ``current`` replica that is still valid on its host, chips and
   port (sticky plan; ``sticky.py``);
3. place the other replicas, most constrained and largest first, by best fit
   over hosts grouped by an order-free signature of their free chips; while
   replicas needing a whole interconnect group (8 chips) are still to come,
   the ones before them keep such groups whole where they can (``search.py``;
   the order and the rounds are ``repair.py``);
4. repair, bounded: evict replicas of this run out of the way of a left-over
   one and re-place them; replay without that reservation, then with the
   models left over first, keeping the round that placed most. Kept replicas
   never move (``repair.py``);
5. give each placement, where its host has room, the chips and port its
   successor can start on during a rolling update (``surge.py``).

The output (placements, changes, reasons, summary, table) is ``results.py``.
Imports go one way: inputs <- fleet <- search <- sticky <- repair <- results
(and search <- surge) <- this file.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.fleet import (
    _check_references,
    _mark_our_ports,
    _validate_hosts,
    chip_family,
)
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.inputs import (
    AUTO,
    DEFAULT_BACKEND,
    DEFAULT_PORT_RANGE,
    DEFAULT_UTILIZATION,
    FAMILIES,
    HOST_FIELDS,
    MODEL_FIELDS,
    SHARE_CAP,
    TP_SIZES,
    PlacementError,
    _parse_port_range,
    _validate_current,
    _validate_models,
)
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.repair import _place_with_repair
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.results import (
    _changes,
    _placement_out,
    _summary,
    _unplaced_reason,
    render_table,
)
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.search import _Planner
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.sharing import AUTO_SHARE_REASON, settle, share_when_chips_run_out
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.sticky import _sticky_pass
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.surge import surge_rooms
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import profile_model

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


PORT_SCHEMES = ("device", "hash")


def _plan_pass(catalogue, hosts, current, default_range, share_cap, image_selector, known_hosts, port_scheme):
    """One planning pass over fresh copies of the inputs: (planner, running, gone, replicas left over)."""
    running = _validate_current(current)
    fleet = _validate_hosts(hosts, running, default_range)
    _check_references(catalogue, fleet, known_hosts)
    planner = _Planner(catalogue, fleet, share_cap, image_selector, port_scheme)
    for model in catalogue:
        planner.fit(model, 65536, 1, model.util_milli or int(DEFAULT_UTILIZATION * 1000), "910b")  # profile sanity
    _mark_our_ports(running, fleet)
    planner.index_hosts()
    gone = _sticky_pass(planner, running)
    planner.previous_ports = dict((key, entry["port"]) for key, entry in gone.items())
    pending = [
        (model.name, replica) for model in catalogue for replica in range(model.replicas) if (model.name, replica) not in planner.placed
    ]
    return planner, running, gone, _place_with_repair(planner, pending)


def plan(
    hosts: Any,
    models: Any,
    current: Any = None,
    image_selector: Optional[Callable[[Dict[str, Any], str], Optional[Dict[str, Any]]]] = None,
    share_cap: float = SHARE_CAP,
    default_port_range: Any = DEFAULT_PORT_RANGE,
    profile_loader: Callable[[str], Dict[str, Any]] = profile_model,
    known_hosts: Optional[List[str]] = None,
    port_scheme: str = "device",
) -> Dict[str, Any]:
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
    ``port_scheme``: ``device`` (a new replica's port is the range start
    plus its first device number, or the next free one) or ``hash`` (a
    stable port hashed from model and replica). Kept replicas keep theirs.
    Same inputs, same plan. Raises PlacementError for invalid input.
    """
    if isinstance(share_cap, bool) or not isinstance(share_cap, (int, float)) or not 0 < share_cap <= 1:
        raise PlacementError("share_chip_limit must be in (0, 1], got %r" % (share_cap,))
    default_range = _parse_port_range(default_port_range, "port_range")
    catalogue = _validate_models(models, profile_loader)
    if port_scheme not in PORT_SCHEMES:
        raise PlacementError("port_scheme must be one of %s, got %r" % (", ".join(PORT_SCHEMES), port_scheme))
    settings = (hosts, current, default_range, share_cap, image_selector, known_hosts or [], port_scheme)
    first = _plan_pass(catalogue, *settings)
    (planner, running, gone, left), shared = share_when_chips_run_out(catalogue, first, lambda models: _plan_pass(models, *settings))
    settle(planner, shared)
    placements = [_placement_out(planner, planner.placed[key]) for key in sorted(planner.placed)]
    for placement in placements:
        if placement["model"] in shared and placement["share_chip"]:
            placement["reasons"].insert(0, AUTO_SHARE_REASON)
    unplaced = []
    reasons: Dict[str, Dict[str, Any]] = {}
    for key in sorted(left):
        if key[0] not in reasons:
            reasons[key[0]] = _unplaced_reason(planner, planner.models[key[0]])
        item = {"model": key[0], "replica": key[1]}
        item.update(reasons[key[0]])
        unplaced.append(item)
    summary = _summary(planner)
    rooms = surge_rooms(planner, running)
    for placement in placements:
        placement["surge"] = rooms.get((placement["model"], placement["replica"]))
    return {
        "placements": placements,
        "unplaced": unplaced,
        "changes": _changes(running, gone, placements),
        "summary": summary,
    }
