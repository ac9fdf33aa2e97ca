# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""share_chip auto: several small models on one chip, only when whole chips run out.

Several models per chip is a top request of Ascend users (vllm-ascend issues
5650, 5707, 5213; GPUStack 4325); the working recipe in those threads is a
``gpu_memory_utilization`` slice per model whose sum leaves the chip's idle
memory free, and ``PYTORCH_NPU_ALLOC_CONF=expandable_segments:True`` in
each container. The field report ran five single-chip models on four chips
that way. Here: plan with whole chips first; if replicas are left over, let
the smallest auto models share, one more model per pass, keep the pass
that places the most; then settle - a shared replica left alone on its chip
takes the whole chip back, and the replicas of a shared chip split the room
left on it, so no chip idles behind a small slice.
"""

from __future__ import annotations

from typing import Any, Callable, List, Set, Tuple

from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.inputs import AUTO, DEFAULT_UTILIZATION, _Model
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.search import SLICE_STEP_MILLI, _Option, _Planner, _record

AUTO_SHARE_REASON = (
    "share_chip auto: whole chips ran out, so it shares a chip; the slices of a chip sum below 1 - idle memory / total, "
    "and the container gets PYTORCH_NPU_ALLOC_CONF=expandable_segments:True"
)


def share_when_chips_run_out(catalogue: List[_Model], first: Tuple[Any, ...], replan: Callable[[List[_Model]], Tuple[Any, ...]]):
    """The pass to keep and the models that share in it. ``first`` is the whole-chips pass; its last item
    (and every pass's) is the list of replicas left over."""
    best, shared = first, set()  # type: Tuple[Any, ...], Set[str]
    planner = first[0]
    # The smallest first; of equal size, single-chip models first (a model that wants two chips for its
    # whole context would give up most of it on a slice).
    candidates = sorted(
        (model for model in catalogue if model.share_auto and model.tp in (AUTO, 1) and model.replicas > 0),
        key=lambda model: (model.profile.get("weights_bytes") or 0, _chips_wanted(planner, model), model.name),
    )
    for count in range(1, len(candidates) + 1 if best[-1] else 0):
        names = set(model.name for model in candidates[:count])
        trial = replan([model.sharing(True) if model.name in names else model for model in catalogue])
        if len(trial[-1]) < len(best[-1]):
            best, shared = trial, names
        if not best[-1]:
            break
    return best, shared


def _chips_wanted(planner: _Planner, model: _Model) -> int:
    """Chips of the model's best whole-chip option on the hosts it may use (its wish met first)."""
    wanted = []
    for host in planner.hosts.values():
        if planner.eligible(model, host):
            for memory in sorted(set(chip.memory_mb for chip in host.chips if chip.usable)):
                options = planner.options_for(model, host.family, memory, len(host.chips))
                if options:
                    wanted.append(options[0].k)
    return min(wanted) if wanted else 1


def settle(planner: _Planner, shared: Set[str]) -> None:
    """Give the room of each chip that auto-shared replicas hold back to them (see the module docstring)."""
    _spread_onto_free_chips(planner, shared)
    chips = {}
    for key, record in planner.placed.items():
        # Kept replicas too: the same inputs settle to the same slices, so a re-run changes nothing.
        if record["share_chip"] and record["model"] in shared:
            chip = record["_chips"][0]
            chips.setdefault((record["host"], chip.index), (chip, []))[1].append(key)
    for (host_name, unused), (chip, keys) in sorted(chips.items(), key=lambda item: item[0]):
        host = planner.hosts[host_name]
        if len(chip.shares) == 1 and len(keys) == 1:
            _take_whole_chip(planner, chip, keys[0])
        elif len(keys) == len(chip.shares):
            _split_the_room(planner, host, chip, keys)


def _refit(planner: _Planner, record: dict, model: _Model, util_milli: int) -> _Option:
    """The replica's option on its own chip at another slice, and its reasons said again."""
    chip = record["_chips"][0]
    option = _Option()
    option.tp, option.k, option.util_milli = 1, 1, util_milli
    option.fit = planner.fit(model, chip.memory_mb, 1, util_milli, planner.hosts[record["host"]].family)
    option.rank = 0 if option.fit["verdict"] == "fits" else 1
    host = planner.hosts[record["host"]]
    record["reasons"] = _record(model, record["replica"], host, record["_chips"], option, record["port"])["reasons"]
    return option


def _take_whole_chip(planner: _Planner, chip, key) -> None:
    record = planner.placed[key]
    model = planner.models[record["model"]].sharing(False)
    wish = model.entry.get("gpu_memory_utilization")
    option = _refit(planner, record, model, int(round(wish * 1000)) if wish else int(DEFAULT_UTILIZATION * 1000))
    chip.share_used -= chip.shares.pop(key)
    chip.owner = key
    record.update(share_chip=False, util_milli=option.util_milli, option=option)


def _split_the_room(planner: _Planner, host, chip, keys) -> None:
    cap = min(planner.cap_milli, host.share_cap_milli, int(DEFAULT_UTILIZATION * 1000) * len(keys))
    extra = (cap - chip.share_used) // len(keys) // SLICE_STEP_MILLI * SLICE_STEP_MILLI
    if extra <= 0:
        return
    for key in sorted(keys):
        record = planner.placed[key]
        util = chip.shares[key] + extra
        option = _refit(planner, record, planner.models[record["model"]], util)
        chip.shares[key], chip.share_used = util, chip.share_used + extra
        record.update(util_milli=util, option=option)


def _spread_onto_free_chips(planner: _Planner, shared: Set[str]) -> None:
    """A chip left free after packing takes one of the replicas that share another chip of its host, whole."""
    for host in sorted(planner.hosts.values(), key=lambda item: item.name):
        free = [chip for chip in host.chips if chip.free()]
        crowded = sorted(
            (key for chip in host.chips if len(chip.shares) > 1 for key in sorted(chip.shares)[1:] if key[0] in shared),
            key=lambda key: key,
        )
        for key, chip in zip(crowded, free):
            record = planner.placed[key]
            old = record["_chips"][0]
            if chip.memory_mb != old.memory_mb:
                continue
            old.share_used -= old.shares.pop(key)
            chip.owner = key
            record["_chips"] = [chip]
            model = planner.models[record["model"]].sharing(False)
            wish = model.entry.get("gpu_memory_utilization")
            option = _refit(planner, record, model, int(round(wish * 1000)) if wish else int(DEFAULT_UTILIZATION * 1000))
            record.update(share_chip=False, util_milli=option.util_milli, option=option)
