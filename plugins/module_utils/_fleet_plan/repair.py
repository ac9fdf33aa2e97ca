# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""Repair: eviction repair and bounded replay rounds around the greedy pass.

PRIVATE to the ``npu.fleet.fleet_plan`` planner (see ``__init__.py``). This
file exists for the rounds around the greedy pass (steps 3 and 4 of the
plan): ``_order`` puts the replicas most constrained and largest first;
when the greedy pass leaves replicas over, replicas placed in this run are
evicted out of their way and re-placed (one level deep), then the pass is
replayed without reserving whole groups, with chips before coverage and
with the models left over first, keeping the round that placed most. Kept
(sticky) replicas never move.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.fleet import _Host
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.inputs import _Model
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.search import (
    _demand_of,
    _fewest_chips,
    _greedy,
    _note_port,
    _place_one,
    _Planner,
    _record,
)

# Repair rounds (full replays with the left-over models first); each round costs one greedy pass.
MAX_REPAIR_ROUNDS = 4
# Eviction repair: hosts tried per left-over replica.
REPAIR_HOSTS = 16


# --------------------------------------------------------------------------- order, repair rounds and eviction repair


def _order(planner: _Planner, pending: List[Tuple[str, int]], size_first: bool = False) -> List[Tuple[str, int]]:
    """Most constrained models first (the smallest share of the fleet they can use), then decreasing
    demand: more chips, then larger chips. ``size_first`` puts chips before the share (second round)."""
    demand = {}  # type: Dict[str, Tuple[int, int, int]]
    for name in sorted(set(key[0] for key in pending)):
        demand[name] = _demand_of(planner, name)
    if size_first:
        return sorted(pending, key=lambda key: (-demand[key[0]][1], demand[key[0]][0], -demand[key[0]][2], key))
    return sorted(pending, key=lambda key: (demand[key[0]][0], -demand[key[0]][1], -demand[key[0]][2], key))


def _snapshot(planner: _Planner, keys: List[Tuple[str, int]]) -> List[Tuple[Tuple[str, int], Dict[str, Any]]]:
    return [(key, planner.placed[key]) for key in keys if key in planner.placed]


def _place_with_repair(planner: _Planner, pending: List[Tuple[str, int]]) -> List[Tuple[str, int]]:
    """Greedy pass and eviction repair, then bounded replays with the models left over first; keep the
    best round. Kept (sticky) replicas are never moved to make room.
    """
    order = _order(planner, pending)
    best_left: Optional[List[Tuple[str, int]]] = None
    best_records: Any = []
    best_round = -1
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


def _repair_hosts(planner: _Planner, model: _Model, replica: int, names: List[str]) -> List[_Host]:
    """Hosts where evicting replicas placed in this run could make room, fewest chips missing first."""
    ranked = []
    for name in names:
        host = planner.hosts[name]
        if model.spread and host.models.get(model.name):
            continue
        reclaimable = sum(len(planner.placed[key]["_chips"]) for key in host.ports.values() if not planner.placed[key]["kept"])
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


def _evict_and_replace(planner: _Planner, host: _Host, model: _Model, replica: int, candidates: List[Tuple[str, int]]) -> bool:
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
    port = planner.port_for(host, model, replica, found[1], planner.accepts(host, model, replica))
    record = _record(model, replica, host, found[1], found[2], port)
    _note_port(planner, host, model, record)
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
