# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""Surge room: where each replica's successor can start while the replica still runs.

PRIVATE to the ``npu.fleet.fleet_plan`` planner (see ``__init__.py``). A
rolling update replaces a replica in place (drain, stop, start on the same
chips: the model has one replica fewer meanwhile) unless its host has room
for a second copy. This last step of the plan gives each placement such room
where it exists: chips of the same count, interconnect shape and at least the
same memory, free of every placement of the plan and of every container that
runs now, and a port no one holds. Rooms never overlap, so the replicas of
different models replaced in the same wave cannot collide. The serve role uses
the room only for a replica whose container really changes (``_replica.py``);
otherwise it is a forecast and costs nothing.

Models with one replica come first: without surge they are down for the whole
replacement, while the others keep serving on their other replicas. A model
that shares chips or has a fixed ``port`` gets no room (its successor needs
the same slice or the same port).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.search import _find_exclusive, _free_port, _Planner

_HELD = ("_surge", "held")


def _hold_running(planner: _Planner, running: List[Dict[str, Any]]) -> None:
    """Chips and ports of every running container count as taken, also those of replicas that move away:
    they are removed only after the rolling update, so a successor must not start on them."""
    for entry in running:
        host = planner.hosts.get(entry["host"])
        if host is None:
            continue
        by_device = dict((chip.device, chip) for chip in host.chips if chip.device)
        for device in entry["devices"]:
            chip = by_device.get(device)
            if chip is not None and chip.owner is None:
                chip.owner = _HELD
        host.ports.setdefault(entry["port"], _HELD)


def _room(planner: _Planner, record: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    model = planner.models[record["model"]]
    if record["share_chip"] or model.port is not None:
        return None
    host = planner.hosts[record["host"]]
    chips = record["_chips"]
    found = _find_exclusive(host, len(chips), min(chip.memory_mb for chip in chips))
    if found is None:
        return None
    room = found[1]
    candidate = _free_port(host, model, record["replica"])
    if candidate is None:
        return None
    port = planner.port_for(host, model, record["replica"], room, candidate)
    key = ("_surge", record["model"], record["replica"])
    for chip in room:
        chip.owner = key
    host.ports[port] = key
    return {"devices": [chip.device for chip in room], "port": port}


def surge_rooms(planner: _Planner, running: List[Dict[str, Any]]) -> Dict[Any, Optional[Dict[str, Any]]]:
    """``(model, replica)`` -> ``{devices, port}`` of its successor's room, or None where there is none.

    Call it last: it marks the rooms and the running containers' chips as
    taken in the planner's state, which nothing reads afterwards.
    """
    _hold_running(planner, running)
    order = sorted(planner.placed, key=lambda key: (planner.models[key[0]].replicas, key[0], key[1]))
    return dict((key, _room(planner, planner.placed[key])) for key in order)
