# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""The search: options, best fit of chips and ports on a host, and the greedy pass.

PRIVATE to the ``npu.fleet.fleet_plan`` planner (see ``__init__.py``). This
file exists for placing one replica well: ``_Planner`` holds the state and
caches of one run (kv_fit verdicts, TP/slice options, buckets of
interchangeable hosts, what is placed), ``_find_exclusive`` /
``_find_shared`` pick chips inside the interconnect rules, ``_free_port``
picks a stable port, and ``_greedy`` places replicas in the order it is
given (keeping whole groups for the replicas that need them). The sticky
pass and the repair rounds build on it.
"""

from __future__ import annotations

import bisect
import zlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple  # noqa: F401  (Set: type comments)

from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.fleet import _Chip, _Host, alloc_size
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.inputs import (
    AUTO,
    DEFAULT_UTILIZATION,
    TP_SIZES,
    PlacementError,
    _Model,
)
from ansible_collections.npu.fleet.plugins.module_utils._kv_fit import kv_fit

# Automatic slices for share_chip models: the smallest multiple of 0.05 that holds the wish.
SLICE_STEP_MILLI = 50
SLICE_MIN_MILLI = 100
# A replica whose cheapest option takes at least this many chips needs a whole interconnect group (a whole
# 910B host, half an A3 supernode): while some are still to be placed, smaller replicas avoid breaking up
# the last such group of a host (see _Planner.spoils).
WHOLE_GROUP_CHIPS = 8


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

    def __init__(
        self,
        models: List[_Model],
        hosts: Dict[str, _Host],
        share_cap: float,
        image_selector: Optional[Callable[[Dict[str, Any], str], Optional[Dict[str, Any]]]],
        port_scheme: str = "device",
    ) -> None:
        self.models = dict((model.name, model) for model in models)
        self.port_scheme = port_scheme
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
                result = kv_fit(
                    model.profile,
                    chip_memory_mb=memory_mb,
                    tensor_parallel_size=tp,
                    gpu_memory_utilization=util_milli / 1000.0,
                    max_model_len=model.max_model_len,
                    min_model_len=model.min_model_len,
                    chip_family="310P" if family == "310p" else None,
                )
            except ValueError as exc:
                raise PlacementError("%s: %s" % (model.where(), exc)) from None
            self.fits[key] = result
        return result

    def _slice(self, model: _Model, memory_mb: int, family: str) -> int:
        """share_chip slice: the model's own, else the smallest multiple of 0.05 holding the wish."""
        if model.util_milli is not None:
            return model.util_milli
        ceiling = min(int(DEFAULT_UTILIZATION * 1000), self.cap_milli)
        # Sharing only because whole chips ran out (share_chip auto): the smallest slice that holds
        # min_model_len, so that models pack; sharing.settle() then splits the room left on the chip.
        wanted = ("fits", "capped") if model.share_auto else ("fits",)
        for milli in range(SLICE_MIN_MILLI, ceiling + 1, SLICE_STEP_MILLI):
            if self.fit(model, memory_mb, 1, milli, family)["verdict"] in wanted:
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
                found = (
                    _find_shared(host, option.util_milli, memory, min(self.cap_milli, host.share_cap_milli))
                    if model.share
                    else _find_exclusive(host, option.k, memory)
                )
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

    def port_for(self, host: _Host, model: _Model, replica: int, chips: List[_Chip], candidate: int) -> int:
        """The port a new replica gets once its chips are known.

        A fixed port, or the port a moved replica had, stays (``candidate``
        from accepts()). Otherwise, with the ``device`` scheme, the range
        start plus the number of its first /dev/davinciN (davinci6 -> 18006,
        the field report's convention: a person reads the chip off the port),
        or the next free port after it; with ``hash`` the stable hashed port.
        """
        previous = self.previous_ports.get((model.name, replica))
        if self.port_scheme != "device" or model.port is not None or candidate == previous or chips[0].number is None:
            return candidate
        size = host.port_high - host.port_low + 1
        for step in range(size):
            port = host.port_low + (chips[0].number + step) % size
            if port not in host.ports and port not in host.used_ports:
                return port
        return candidate

    def port_reason(self, host: _Host, model: _Model, chips: List[_Chip], port: int) -> Optional[str]:
        """Why a new replica did not get its device port (range start + davinci number): something npu.fleet did
        not start listens there (``ss`` at discovery, or fleet_plan_used_ports), so the operator sees the detour."""
        if self.port_scheme != "device" or model.port is not None or not chips or chips[0].number is None:
            return None
        wanted = host.port_low + chips[0].number
        if wanted == port or wanted not in host.used_ports:
            return None
        return "port %d (range start + davinci%d) is in use on %s by a process npu.fleet did not start: took %d" % (
            wanted,
            chips[0].number,
            host.name,
            port,
        )

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


# --------------------------------------------------------------------------- chips and ports on one host


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


def _find_shared(host: _Host, util_milli: int, memory: int, cap_milli: int) -> Optional[Tuple[Tuple[int, ...], List[_Chip]]]:
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


def _fewest_chips(planner: _Planner, model: _Model, host: _Host) -> int:
    """Chips the model's cheapest option takes on this host (0: none fits), cached per host shape."""
    memories = tuple(sorted(set(chip.memory_mb for chip in host.chips if chip.usable)))
    key = (model.name, host.family, memories, len(host.chips))
    if key not in planner.fewest:
        planner.fewest[key] = min(
            [option.k for memory in memories for option in planner.options_for(model, host.family, memory, len(host.chips))] or [0]
        )
    return planner.fewest[key]


def _note_port(planner: _Planner, host: _Host, model: _Model, record: Dict[str, Any]) -> None:
    """Add the planner's port detour, if any, to a new record's reasons."""
    why = planner.port_reason(host, model, record["_candidate_chips"], record["port"])
    if why:
        record["reasons"].append(why)


def _record(model: _Model, replica: int, host: _Host, chips: List[_Chip], option: _Option, port: int) -> Dict[str, Any]:
    """A placement before output formatting."""
    fit = option.fit
    reasons = []
    if model.tp == AUTO:
        reasons.append("tensor_parallel_size auto -> %d" % option.tp)
    if fit["verdict"] == "capped":
        reasons.append("max_model_len %d -> %d: %s" % (fit["requested_max_model_len"], fit["recommended_max_model_len"], fit["message"]))
    if host.family == "a3" and option.k > option.tp:
        reasons.append("A3: the container gets the whole HiAM module (vllm-ascend: A3 needs at least 2 NPUs)")
    if model.share:
        reasons.append("shares the chip: gpu_memory_utilization slice %.2f" % (option.util_milli / 1000.0))
    return {
        "model": model.name,
        "replica": replica,
        "host": host.name,
        "port": port,
        "share_chip": model.share,
        "util_milli": option.util_milli,
        "option": option,
        "kept": False,
        "reasons": reasons,
        "_candidate_chips": chips,
    }


# --------------------------------------------------------------------------- greedy pass


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
            record = _record(model, replica, host, found[1], found[2], planner.port_for(host, model, replica, found[1], port))
            _note_port(planner, host, model, record)
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
    big = [planner.models[name] for name in sorted(last) if planner.reserving and _demand_of(planner, name)[1] >= WHOLE_GROUP_CHIPS]
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
