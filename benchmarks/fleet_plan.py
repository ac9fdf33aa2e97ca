# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark npu.fleet's fleet planner: speed, memory, packing quality, stability.

Fleets are generated from a KNOWN COMPLETE PACKING: every host's usable chips
are carved into replicas of real models (profiles of the configs under
tests/unit/fixtures/models), using for each model the chip count its
``auto`` tensor-parallel option takes on that host's chips. The catalogue
asks for exactly the carved replicas, so a placement of every replica exists
and the optimum is "all placed". The catalogue is then listed in a shuffled
(seeded) order and planned twice: by the planner, and by plain first fit
(replicas in list order, first host by name with room) as the baseline.

Figures printed:
  * wall time of plan() and peak traced memory (tracemalloc) per fleet size;
  * placed / total for the planner and for first fit;
  * a re-plan with ``current`` = the plan: everything kept;
  * with 10 % headroom, a re-plan after the busiest host disappears: how many
    replicas moved (only the lost host's may move);
  * a quality sweep over generated fleets, without spread, then with spread
    on every model (14 models, then 7).

Run from the repository root:
  python3 benchmarks/fleet_plan.py [--hosts 1000 10000] [--seed 7] [--quality-fleets 20] [--quality-hosts 1000]
"""

import argparse
import os
import random
import sys
import tempfile
import time
import tracemalloc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _import_collection():
    """Make the tree importable as ansible_collections.npu.fleet (scripts/collection_link.py)."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from collection_link import link_collection  # pylint: disable=import-outside-toplevel

    link_collection(ROOT)
    sys.path.insert(0, os.path.join(ROOT, "tests", "unit"))


_import_collection()

# pylint: disable=wrong-import-position
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan import SHARE_CAP, plan  # noqa: E402
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.fleet import _validate_hosts  # noqa: E402
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.inputs import _validate_models  # noqa: E402
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.search import (  # noqa: E402
    _find_exclusive,
    _find_shared,
    _free_port,
    _Planner,
    _record,
)
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import profile_model  # noqa: E402
from model_checkpoints import copy_fixture, write_index  # noqa: E402

# (catalogue name, fixture, published weight bytes or None for the profile's estimate, extra model fields)
CATALOGUE = (
    ("qwen3-8b", "Qwen__Qwen3-8B", None, {}),
    ("qwen2.5-7b", "Qwen__Qwen2.5-7B-Instruct", 15231233024, {"max_model_len": 32768}),
    # 131072 tokens or nothing: one 64 GiB chip (a 32 GiB chip holds 78720)
    (
        "llama3.1-8b-128k",
        "meta-llama__Llama-3.1-8B-Instruct",
        16060522496,
        {"tensor_parallel_size": 1, "max_model_len": 131072, "min_model_len": 131072},
    ),
    # TP 2 fixed: only 64 GiB chips hold its weights
    ("qwen3-30b-a3b", "Qwen__Qwen3-30B-A3B", None, {"tensor_parallel_size": 2, "max_model_len": 32768}),
    ("mixtral-8x7b", "mistralai__Mixtral-8x7B-v0.1", None, {"max_model_len": 32768}),
    (
        "qwen3-4b-shared",
        "jaman21__Qwen3-4B-Instruct",
        8_044_936_192,
        {"max_model_len": 8192, "share_chip": True, "gpu_memory_utilization": 0.45},
    ),
    ("mistral-7b-tp8", "mistralai__Mistral-7B-Instruct-v0.3", 14496047104, {"tensor_parallel_size": 8, "max_model_len": 32768}),
)

HOST_KINDS = (
    # (share of hosts, family, chip name, chips, memory MB)
    (0.45, "910b", "910B4", 8, 32768),
    (0.45, "910b", "910B3", 8, 65536),
    (0.10, "a3", "Ascend910", 16, 65536),
)


def build_profiles(directory):
    """Profiles of real configs; an index with the published size stands in for the weights."""
    profiles = {}
    for name, fixture, weights, extra in CATALOGUE:
        path = copy_fixture(fixture, os.path.join(directory, fixture))
        if weights:
            write_index(path, {"model.norm.weight": "model-00001-of-00001.safetensors"}, total_size=weights)
        profiles[name] = (profile_model(path), extra)
    return profiles


def make_host(rng, number):
    """One host: kind by the shares above; 25 % have 1-3 busy chips, 3 % one unhealthy chip."""
    roll, acc = rng.random(), 0.0
    for share, family, chip_name, count, memory in HOST_KINDS:
        acc += share
        if roll <= acc:
            break
    chips = []
    busy = set(rng.sample(range(count), rng.choice((1, 2, 3)))) if rng.random() < 0.25 else set()
    sick = rng.randrange(count) if rng.random() < 0.03 else None
    for index in range(count):
        chips.append(
            {
                "npu_id": index // 2 if family == "a3" else index,
                "chip_id": index % 2 if family == "a3" else 0,
                "logic_id": index,
                "phy_id": index,
                "device": "/dev/davinci%d" % index,
                "name": chip_name,
                "health": "Critical" if index == sick else "OK",
                "memory_total_mb": memory,
                "memory_used_mb": 0,
                "processes": [{"pid": 4000 + index, "name": "python3", "memory_mb": 2048}] if index in busy else [],
            }
        )
    spec = {"chips": chips}
    if family == "a3":
        spec["npu_smi_layout"] = "a3"
    return "host-%05d" % number, spec


def carve(rng, planner, models, host, spec, spread):
    """Cut the host's usable chips into replicas (model names): the known complete packing.

    With ``spread`` a model appears at most once per host (one slice of a
    shared model); chips no distinct model can fill any more are listed in the
    host's reserved_devices, so the packing stays complete.
    """
    carved, used = [], set()
    if host.family == "a3":
        units = [[host.chips[i] for i in unit] for group in host.groups for unit in group if all(host.chips[i].usable for i in unit)]
        left = [chip for unit in units for chip in unit]
        per_step = 2  # whole HiAM modules
    else:
        left = [chip for chip in host.chips if chip.usable]
        per_step = 1
    while left:
        menu = [(m, o) for m, o in _menu(planner, models, host) if o.k <= len(left) and m.name not in used]
        if not menu:
            spec.setdefault("reserved_devices", []).extend(chip.device for chip in left)
            break
        model, option = _choose(rng, menu, planner)
        if spread:
            used.add(model.name)
        if model.share:
            carved.extend([model.name] * (1 if spread else planner.cap_milli // option.util_milli))
            left = left[1:]
        else:
            carved.append(model.name)
            left = left[max(option.k, per_step) :]
    return carved


def _choose(rng, menu, planner):
    """Pick a (model, option): weight = chips (replicas average about 2 chips), times 4 for models that
    only 64 GiB chips hold, so the large chips are nearly all needed by them (the trap for first fit)."""
    weights = []
    for model, option in menu:
        only_large = not planner.options_for(model, "910b", 32768, 8)
        weights.append(option.k * (4 if only_large else 1))
    return rng.choices(menu, weights=weights)[0]


def _menu(planner, models, host):
    memory = host.chips[0].memory_mb
    menu = []
    for model in models:
        options = planner.options_for(model, host.family, memory, len(host.chips))
        if options:
            menu.append((model, options[0]))
    return menu


def generate(rng, hosts_count, profiles, spread=False, copies=1):
    """hosts dict and a shuffled catalogue whose replicas exactly fill the fleet.

    ``copies`` lists every model that many times under different names (a
    larger catalogue with fewer replicas per model).
    """
    hosts = dict(make_host(rng, number) for number in range(hosts_count))
    entries = [
        dict(extra, name=name if copies == 1 else "%s-%d" % (name, copy), profile=profile, spread=spread)
        for name, (profile, extra) in profiles.items()
        for copy in range(copies)
    ]
    models = _validate_models(entries, profile_model)
    fleet = _validate_hosts(hosts, [], (18000, 18999))
    planner = _Planner(models, fleet, SHARE_CAP, None)
    counts = dict((model.name, 0) for model in models)
    for name in sorted(fleet):
        for model_name in carve(rng, planner, models, fleet[name], hosts[name], spread):
            counts[model_name] += 1
    catalogue = [dict(entry, replicas=counts[entry["name"]]) for entry in entries]
    rng.shuffle(catalogue)
    return hosts, catalogue


def first_fit(hosts, catalogue):
    """Baseline: replicas in list order, first host by name where the model's first option fits."""
    models = _validate_models(catalogue, profile_model)
    fleet = _validate_hosts(hosts, [], (18000, 18999))
    planner = _Planner(models, fleet, SHARE_CAP, None)
    names = [name for name in sorted(fleet) if fleet[name].ok]
    placed = 0
    for model in models:
        start = 0  # hosts only fill up, so one that lacked room for this model still lacks it
        for replica in range(model.replicas):
            for position in range(start, len(names)):
                host = fleet[names[position]]
                found = None if model.spread and host.models.get(model.name) else _first_on_host(planner, host, model)
                if found is None:
                    start = position + 1 if position == start and not model.spread else start
                    continue
                port = _free_port(host, model, replica)
                record = _record(model, replica, host, found[0], found[1], port)
                planner.commit(host, record, record.pop("_candidate_chips"))
                placed += 1
                break
    return placed


def _first_on_host(planner, host, model):
    """First option, lowest chips: no best fit, no tie-breaks."""
    for memory in sorted(set(chip.memory_mb for chip in host.chips if chip.usable)):
        for option in planner.options_for(model, host.family, memory, len(host.chips)):
            if model.share:
                found = _find_shared(host, option.util_milli, memory, planner.cap_milli)
            else:
                found = _find_exclusive(host, option.k, memory)
            if found is not None:
                return found[1], option
    return None


def timed_plan(hosts, catalogue, current=None):
    """Wall time of one plan() (tracemalloc off: it slows allocation-heavy code several times)."""
    start = time.perf_counter()
    result = plan(hosts, catalogue, current=current)
    return result, time.perf_counter() - start


def peak_memory(hosts, catalogue):
    """Peak memory traced by tracemalloc during a second, identical plan()."""
    tracemalloc.start()
    plan(hosts, catalogue)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def _where(item):
    """A placement without its reasons (a kept replica says so in them)."""
    return dict((key, value) for key, value in item.items() if key != "reasons")


def run(hosts_count, seed, profiles, baseline):
    """Speed, memory, quality and stability figures on one generated fleet."""
    rng = random.Random(seed)
    hosts, catalogue = generate(rng, hosts_count, profiles)
    total = sum(entry["replicas"] for entry in catalogue)
    chips = sum(len(spec["chips"]) for spec in hosts.values())
    print(
        "fleet: %d hosts, %d chips (seed %d); catalogue: %d models, %d replicas (a complete packing exists)"
        % (hosts_count, chips, seed, len(catalogue), total)
    )
    result, elapsed = timed_plan(hosts, catalogue)
    peak = peak_memory(hosts, catalogue)
    placed = len(result["placements"])
    print(
        "  planner     : %6.3f s, peak traced memory %.1f MiB, placed %d/%d = %.2f %%"
        % (elapsed, peak / 2.0**20, placed, total, 100.0 * placed / total)
    )
    if baseline:
        start = time.perf_counter()
        ff_placed = first_fit(hosts, catalogue)
        print(
            "  first fit   : %6.3f s, placed %d/%d = %.2f %% (replicas in list order, first host with room)"
            % (time.perf_counter() - start, ff_placed, total, 100.0 * ff_placed / total)
        )
    again, again_elapsed = timed_plan(hosts, catalogue, current=result["placements"])
    kept = sum(1 for change in again["changes"] if change["action"] == "keep")
    same = [_where(item) for item in again["placements"]] == [_where(item) for item in result["placements"]]
    print(
        "  re-plan, current = that plan: %.3f s, %d keep, %d move, same hosts/chips/ports/settings: %s"
        % (again_elapsed, kept, sum(1 for c in again["changes"] if c["action"] == "move"), same)
    )
    host_loss(hosts, catalogue)


def host_loss(hosts, catalogue):
    """With 10 % headroom (replicas cut to 90 %), drop the busiest host and re-plan with current = plan."""
    reduced = [dict(entry, replicas=entry["replicas"] * 9 // 10) for entry in catalogue]
    before, unused = timed_plan(hosts, reduced)
    counts = {}
    for item in before["placements"]:
        counts[item["host"]] = counts.get(item["host"], 0) + 1
    lost = max(sorted(counts), key=lambda name: counts[name])
    smaller = dict((name, spec) for name, spec in hosts.items() if name != lost)
    after, elapsed = timed_plan(smaller, reduced, current=before["placements"])
    moved = [c for c in after["changes"] if c["action"] == "move"]
    others = [c for c in moved if c["from"]["host"] != lost]
    print(
        "  host loss (90 %% of the replicas, %d placed): %s held %d; re-plan %.3f s: %d moved, %d of them from "
        "other hosts, %d kept, %d unplaced"
        % (
            len(before["placements"]),
            lost,
            counts[lost],
            elapsed,
            len(moved),
            len(others),
            sum(1 for c in after["changes"] if c["action"] == "keep"),
            len(after["unplaced"]),
        )
    )


def quality(hosts_count, seeds, profiles, spread=False, copies=1):
    """Placed share over several generated fleets, planner and first fit."""
    planner_rates, ff_rates = [], []
    for seed in seeds:
        hosts, catalogue = generate(random.Random(seed), hosts_count, profiles, spread, copies)
        total = float(sum(entry["replicas"] for entry in catalogue))
        planner_rates.append(len(plan(hosts, catalogue)["placements"]) / total)
        ff_rates.append(first_fit(hosts, catalogue) / total)
    print(
        "quality, %d fleets of %d hosts (seeds %d-%d), %d models, spread %s, placed / replicas:"
        % (len(seeds), hosts_count, seeds[0], seeds[-1], len(profiles) * copies, "true" if spread else "false")
    )
    for label, rates in (("planner", planner_rates), ("first fit", ff_rates)):
        print(
            "  %-10s: min %.2f %%, mean %.2f %%, fleets with every replica placed: %d/%d"
            % (label, 100 * min(rates), 100 * sum(rates) / len(rates), sum(1 for r in rates if r == 1.0), len(rates))
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="*", default=[1000, 10000], help="fleet sizes to time")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-baseline", action="store_true", help="skip the first-fit baseline")
    parser.add_argument("--quality-fleets", type=int, default=20, help="fleets of --quality-hosts for the quality sweep")
    parser.add_argument("--quality-hosts", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        profiles = build_profiles(directory)
        print("python %s; models: %s" % (sys.version.split()[0], ", ".join(sorted(profiles))))
        for count in args.hosts:
            run(count, args.seed, profiles, not args.no_baseline)
        if args.quality_fleets:
            seeds = list(range(1, args.quality_fleets + 1))
            quality(args.quality_hosts, seeds, profiles)
            # spread: true, 14 models (each about a quarter of the hosts), then the extreme 7-model case
            quality(args.quality_hosts, seeds, profiles, spread=True, copies=2)
            quality(args.quality_hosts, seeds, profiles, spread=True, copies=1)


if __name__ == "__main__":
    main()
