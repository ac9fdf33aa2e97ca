"""Surge rooms (plugins/module_utils/_fleet_plan/surge.py): where a replica's successor can start while it runs.

Real model configs (tests/unit/fixtures/models), hosts as npu_facts reports them.
"""

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan import plan
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import profile_model
from builders import chip
from model_checkpoints import fixture_dir

GIB_64 = 65536


@pytest.fixture(scope="module")
def qwen8():
    return profile_model(fixture_dir("Qwen__Qwen3-8B"))


@pytest.fixture(scope="module")
def moe():
    """Qwen3-30B-A3B: needs 4 x 32 GiB chips."""
    return profile_model(fixture_dir("Qwen__Qwen3-30B-A3B"))


def a2(count, busy=()):
    chips = [chip(number) for number in range(count)]
    for item in chips:
        if item["phy_id"] in busy:
            item["processes"] = [{"pid": 4242, "name": "python3", "memory_mb": 3000}]
    return {"chips": chips}


def entry(name, profile, **fields):
    item = {"name": name, "profile": profile}
    item.update(fields)
    return item


def rooms(result):
    return dict(((p["model"], p["replica"]), p["surge"]) for p in result["placements"])


def taken(result):
    """Every (host, device) and (host, port) a placement or a room holds, with duplicates kept."""
    held = []
    for placement in result["placements"]:
        held += [(placement["host"], device) for device in placement["devices"]] + [(placement["host"], placement["port"])]
        if placement["surge"]:
            held += [(placement["host"], device) for device in placement["surge"]["devices"]]
            held.append((placement["host"], placement["surge"]["port"]))
    return held


def test_a_replica_gets_a_free_chip_of_its_host_and_the_port_of_that_chip(qwen8):
    result = plan({"n1": a2(8, busy=(1,))}, [entry("q8", qwen8)])
    placement = result["placements"][0]
    assert placement["devices"] == ["/dev/davinci0"]
    # davinci1 runs someone else's process: the room is the next free chip, and its port follows it.
    assert placement["surge"] == {"devices": ["/dev/davinci2"], "port": 18002}


def test_a_full_host_has_no_room_and_rooms_never_overlap(qwen8):
    full = plan({"n1": a2(2)}, [entry("q8", qwen8, replicas=2, spread=False)])
    assert rooms(full) == {("q8", 0): None, ("q8", 1): None}
    spare = plan({"n1": a2(6)}, [entry("q8", qwen8, replicas=3, spread=False)])
    assert all(room is not None for room in rooms(spare).values())
    assert len(taken(spare)) == len(set(taken(spare)))  # 3 placements + 3 rooms on 6 chips, every port distinct


def test_with_one_free_chip_the_model_with_one_replica_gets_it(qwen8):
    result = plan({"n1": a2(5)}, [entry("many", qwen8, replicas=3, spread=False), entry("solo", qwen8)])
    by_key = rooms(result)
    assert by_key[("solo", 0)] is not None
    assert [key for key, room in by_key.items() if room is None] == [("many", 0), ("many", 1), ("many", 2)]


def test_a_running_container_that_moves_away_still_holds_its_chip_and_port(qwen8):
    # "gone" is no longer in the catalogue: it is removed only after the rolling update.
    running = [
        {"model": "q8", "replica": 0, "host": "n1", "devices": ["/dev/davinci0"], "port": 18000},
        {"model": "gone", "replica": 0, "host": "n1", "devices": ["/dev/davinci1"], "port": 18001},
    ]
    result = plan({"n1": a2(3)}, [entry("q8", qwen8)], current=running)
    assert [change["action"] for change in result["changes"]] == ["remove", "keep"]
    assert result["placements"][0]["surge"] == {"devices": ["/dev/davinci2"], "port": 18002}
    crowded = plan({"n1": a2(2)}, [entry("q8", qwen8)], current=running)
    assert crowded["placements"][0]["surge"] is None


def test_a_tensor_parallel_group_gets_a_group_of_the_same_size(moe):
    result = plan({"n1": a2(8)}, [entry("moe", moe, tensor_parallel_size=4)])
    placement = result["placements"][0]
    assert len(placement["devices"]) == 4
    assert len(placement["surge"]["devices"]) == 4 and not set(placement["surge"]["devices"]) & set(placement["devices"])
    assert plan({"n1": a2(6)}, [entry("moe", moe, tensor_parallel_size=4)])["placements"][0]["surge"] is None


def test_an_a3_room_is_a_whole_module(qwen8):
    chips = [chip(number, GIB_64, "Ascend910", npu_id=number // 2, chip_id=number % 2) for number in range(6)]
    result = plan({"a3": {"chips": chips, "npu_smi_layout": "a3"}}, [entry("q8", qwen8, tensor_parallel_size=1)])
    placement = result["placements"][0]
    assert len(placement["devices"]) == 2
    assert placement["surge"]["devices"] in (["/dev/davinci2", "/dev/davinci3"], ["/dev/davinci4", "/dev/davinci5"])


def test_a_fixed_port_or_a_shared_chip_gets_no_room(qwen8):
    fixed = plan({"n1": a2(4)}, [entry("q8", qwen8, port=18100)])
    assert fixed["placements"][0]["surge"] is None
    shared = plan({"n1": a2(4)}, [entry("q8", qwen8, share_chip=True, max_model_len=4096)])
    assert shared["placements"] and all(p["surge"] is None for p in shared["placements"])


def test_the_same_inputs_give_the_same_rooms(qwen8):
    hosts = {"n1": a2(8), "n2": a2(8, busy=(0, 3))}
    models = [entry("a", qwen8, replicas=2), entry("b", qwen8)]
    assert plan(hosts, models)["placements"] == plan(hosts, models)["placements"]
