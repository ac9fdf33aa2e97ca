"""Unit tests for plugins/module_utils/_fleet_plan/ (the fleet planner package).

Fleets are small and hand-made, chips shaped exactly as npu.fleet.npu_facts
returns them; profiles are the real configs under tests/unit/fixtures/models
(weights from the published index sizes where the fixture has them, else the
profile's own parameter estimate). Where a rule forces the answer, the exact
host, devices and port are asserted; memory figures are compared with kv_fit
called directly for the chip the rule says must be used.
"""

import json
import os
import zlib

import pytest

from ansible_collections.npu.fleet.plugins.module_utils import _fleet_plan
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan import PlacementError, chip_family, plan, render_table
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan import repair, search  # tests patch their globals
from ansible_collections.npu.fleet.plugins.module_utils._kv_fit import kv_fit
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import profile_model
from builders import chip, fixture_profile
from model_checkpoints import copy_fixture, fixture_dir

GIB_32 = 32768
GIB_64 = 65536


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def qwen8():
    """Qwen3-8B: 36 layers, 8 KV heads; weights estimated from the config (8.19 B parameters)."""
    return profile_model(fixture_dir("Qwen__Qwen3-8B"))


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """Llama-3.1-8B-Instruct, 16060522496 bytes of weights (index-summary.json), 131072 context."""
    return fixture_profile("meta-llama__Llama-3.1-8B-Instruct", tmp_path_factory.mktemp("models"), total_size=16060522496)


@pytest.fixture(scope="module")
def qwen4(tmp_path_factory):
    """A Qwen3-4B class model with 8.0 GB of weights (as in test__kv_fit.py)."""
    return fixture_profile("jaman21__Qwen3-4B-Instruct", tmp_path_factory.mktemp("models"), total_size=8_000_000_000)


@pytest.fixture(scope="module")
def moe():
    """Qwen3-30B-A3B: 30.5 B parameters (estimate), 4 KV heads; needs 4 x 32 GiB or 2 x 64 GiB."""
    return profile_model(fixture_dir("Qwen__Qwen3-30B-A3B"))


def a2_host(count=8, memory=GIB_32, name="910B4", **fields):
    """An Atlas 800 A2 style host of 910B chips."""
    spec = {"chips": [chip(i, memory, name) for i in range(count)]}
    spec.update(fields)
    return spec


def busy(spec, *numbers, pid=4242):
    """Mark chips as running a foreign process (what npu-smi shows for someone else's job)."""
    for item in spec["chips"]:
        if item["phy_id"] in numbers:
            item["processes"] = [{"pid": pid, "name": "python3", "memory_mb": 3000}]
    return spec


def where(result):
    """(model, replica) -> (host, devices, port) of every placement."""
    return dict(((p["model"], p["replica"]), (p["host"], p["devices"], p["port"])) for p in result["placements"])


def model(name, profile, **fields):
    entry = {"name": name, "profile": profile}
    entry.update(fields)
    return entry


def without_reasons(result):
    return [dict((k, v) for k, v in item.items() if k != "reasons") for item in result["placements"]]


def as_current(result):
    """What the deploy step would read back from container labels."""
    fields = (
        "model",
        "replica",
        "host",
        "devices",
        "port",
        "tensor_parallel_size",
        "max_model_len",
        "gpu_memory_utilization",
        "image",
        "backend",
    )
    return [dict((field, item[field]) for field in fields) for item in result["placements"]]


# --------------------------------------------------------------------------- chips that are never used


def test_unhealthy_reserved_busy_and_excluded_chips_are_never_used(qwen8):
    host = a2_host()
    host["chips"][0]["health"] = "Alarm"
    busy(host, 2)
    host["reserved_devices"] = ["/dev/davinci1"]
    host["excluded_devices"] = ["/dev/davinci3"]
    host["problems"] = [
        {"code": "CHIP_UNHEALTHY", "severity": "warning", "device": "/dev/davinci3", "usable": False, "message": "m", "fix": "f"}
    ]
    result = plan({"n1": host}, [model("q8", qwen8, replicas=5, spread=False)])
    devices = [p["devices"] for p in result["placements"]]
    assert devices == [["/dev/davinci4"], ["/dev/davinci5"], ["/dev/davinci6"], ["/dev/davinci7"]]
    assert [(u["model"], u["replica"]) for u in result["unplaced"]] == [("q8", 4)]
    assert result["unplaced"][0]["reason"] == (
        "needs 1 chip of >= 32 GiB on one host; largest free group is 0; chips of the hosts it may use - "
        "n1: 4 chips run q8#0, q8#1, q8#2, q8#3, 4 not usable (busy, excluded by preflight, health Alarm, reserved)"
    )
    excluded = result["summary"]["hosts"]["n1"]["excluded"]
    assert [(item["device"], item["reason"]) for item in excluded] == [
        ("/dev/davinci0", "health Alarm"),
        ("/dev/davinci1", "reserved"),
        ("/dev/davinci2", "busy: python3 pid 4242"),
        ("/dev/davinci3", "excluded by preflight: CHIP_UNHEALTHY"),
    ]


def test_a_warning_chip_stays_usable_and_an_unknown_health_does_not(qwen8):
    host = a2_host(count=2)
    host["chips"][0]["health"] = "Warning"
    host["chips"][1]["health"] = None
    result = plan({"n1": host}, [model("q8", qwen8, replicas=2, spread=False)])
    assert [p["devices"] for p in result["placements"]] == [["/dev/davinci0"]]
    assert result["summary"]["hosts"]["n1"]["excluded"] == [
        {"device": "/dev/davinci1", "chip": "/dev/davinci1", "reason": "health unknown"}
    ]
    unknown = a2_host(count=1)
    unknown["chips"][0].update(device=None, npu_id=3, chip_id=0)  # physical id unknown: no device node
    text = render_table(plan({"n1": unknown}, [model("q8", qwen8)]))
    assert "  not used: NPU 3 chip 0 (no device node (physical id unknown))" in text.splitlines()


def test_a_host_that_failed_preflight_receives_nothing(qwen8):
    hosts = {"bad": a2_host(memory=GIB_64, name="910B3", preflight_ok=False), "good": a2_host(count=2)}
    result = plan(hosts, [model("q8", qwen8, replicas=3, spread=False)])
    assert sorted(set(p["host"] for p in result["placements"])) == ["good"]
    assert len(result["placements"]) == 2 and len(result["unplaced"]) == 1
    summary = result["summary"]["hosts"]["bad"]
    assert summary["chips_usable"] == 0 and summary["chips_free"] == 0 and summary["replicas"] == 0
    assert summary["notes"] == ["failed preflight: it receives nothing"]
    assert "bad [910b] receives nothing: failed preflight" in render_table(result)


def test_a_replica_on_a_host_that_failed_preflight_runs_on_there_and_is_not_doubled(qwen8):
    hosts = {"bad": a2_host(count=2, preflight_ok=False), "good": a2_host(count=2)}
    running = [
        {"model": "q8", "replica": 0, "host": "good", "devices": ["/dev/davinci0"], "port": 18000},
        {"model": "q8", "replica": 1, "host": "bad", "devices": ["/dev/davinci1"], "port": 18001},
    ]
    result = plan(hosts, [model("q8", qwen8, replicas=2)], current=running)
    assert where(result) == {("q8", 0): ("good", ["/dev/davinci0"], 18000), ("q8", 1): ("bad", ["/dev/davinci1"], 18001)}
    assert [c["action"] for c in result["changes"]] == ["keep", "keep"]
    kept_there = [p for p in result["placements"] if p["host"] == "bad"][0]
    assert kept_there["reasons"][0] == "host bad failed preflight: nothing there changes this run, the replica runs on as it is"
    # A replica there that no longer matches the catalogue is placed on a host that passed; the old one is left.
    moved = plan(hosts, [model("q8", qwen8, replicas=2, tensor_parallel_size=2)], current=running)
    assert sorted(p["host"] for p in moved["placements"]) == ["good"]
    reasons = [c["reason"] for c in moved["changes"] if c["replica"] == 1 and c["action"] != "keep"]
    assert reasons and "host bad failed preflight, so it runs on there until the host passes again" in reasons[0]


def test_only_failed_hosts_gives_a_reason(qwen8):
    result = plan({"bad": a2_host(preflight_ok=False)}, [model("q8", qwen8)])
    assert result["unplaced"] == [{"model": "q8", "replica": 0, "reason": "no host passed preflight", "needs": []}]


def test_our_own_busy_chip_stays_and_a_foreign_pid_on_it_does_not(qwen8):
    def host():
        # Preflight knows from the container labels that davinci1 is ours (_busy.py): it flags nothing.
        return busy(a2_host(count=2), 1, pid=777)

    running = [{"model": "q8", "replica": 0, "host": "n1", "devices": ["/dev/davinci1"], "port": 18100}]
    kept = plan({"n1": host()}, [model("q8", qwen8)], current=running)
    assert where(kept) == {("q8", 0): ("n1", ["/dev/davinci1"], 18100)}
    assert [c["action"] for c in kept["changes"]] == ["keep"]
    # with the container's pids known, pid 777 is someone else's: the chip is left alone
    foreign = plan({"n1": host()}, [model("q8", qwen8)], current=[dict(running[0], pids=[778])])
    assert where(foreign)[("q8", 0)][1] == ["/dev/davinci0"]
    assert foreign["changes"][0]["action"] == "move"
    assert foreign["changes"][0]["reason"] == "/dev/davinci1 on n1 is not usable: busy: python3 pid 777"
    # without any current placement the busy chip is foreign
    fresh = plan({"n1": host()}, [model("q8", qwen8, replicas=2, spread=False)])
    assert [p["devices"] for p in fresh["placements"]] == [["/dev/davinci0"]]


# --------------------------------------------------------------------------- tensor-parallel groups and interconnect


def test_tp_group_stays_on_one_host(moe):
    # 6 free chips in the fleet, but 3 per host: Qwen3-30B-A3B needs 4 x 32 GiB on one host
    hosts = {"n1": busy(a2_host(), 0, 1, 2, 3, 4), "n2": busy(a2_host(), 3, 4, 5, 6, 7)}
    result = plan(hosts, [model("moe", moe, max_model_len=32768)])
    assert result["placements"] == []
    assert result["unplaced"][0]["reason"] == (
        "needs 4 chips of >= 32 GiB on one host in one interconnect group; largest free group is 3; "
        "chips of the hosts it may use - n1: 3 free, 5 not usable (busy); n2: 3 free, 5 not usable (busy)"
    )
    assert result["unplaced"][0]["needs"] == [{"chips": 4, "min_chip_memory_mb": GIB_32}]


def test_container_device_ids_are_zero_based_whatever_the_host_numbering(qwen8):
    hosts = {"n1": busy(a2_host(), 0, 1, 2, 3, 4, 7)}
    result = plan(hosts, [model("q8", qwen8, tensor_parallel_size=2)])
    placed = result["placements"][0]
    assert placed["devices"] == ["/dev/davinci5", "/dev/davinci6"]
    assert placed["container_device_ids"] == [0, 1]
    assert placed["ascend_rt_visible_devices"] == "0,1"
    assert placed["tensor_parallel_size"] == 2


def test_910a_tp_groups_stay_in_one_hccs_ring_of_four(qwen8, moe):
    # rings 0-3 and 4-7; 0 is busy (3 free in ring 0), 4 and 5 are busy (2 free in ring 1)
    ring_host = busy(a2_host(name="910A"), 0, 4, 5)
    assert chip_family(ring_host["chips"]) == "910a"
    catalogue = [model("moe", moe, max_model_len=32768), model("q8", qwen8, tensor_parallel_size=2)]
    result = plan({"r": ring_host}, catalogue)
    # 5 free chips, but no ring has 4: the TP4 replica is unplaced; TP2 takes the fuller ring (best fit)
    assert where(result) == {("q8", 0): ("r", ["/dev/davinci6", "/dev/davinci7"], where(result)[("q8", 0)][2])}
    assert "largest free group is 3; chips of the hosts it may use - r: 3 free" in result["unplaced"][0]["reason"]
    # TP8 on 910A is the whole server
    whole = plan({"r": a2_host(name="910A")}, [model("q8", qwen8, tensor_parallel_size=8)])
    assert whole["placements"][0]["devices"] == ["/dev/davinci%d" % i for i in range(8)]
    assert plan({"r": busy(a2_host(name="910A"), 7)}, [model("q8", qwen8, tensor_parallel_size=8)])["placements"] == []


def a3_host(modules=2, sick=()):
    """Atlas A3: every NPU (module) holds two Ascend910 dies, device node per die."""
    chips = []
    for number in range(2 * modules):
        chips.append(
            chip(number, GIB_64, "Ascend910", health="Critical" if number in sick else "OK", npu_id=number // 2, chip_id=number % 2)
        )
    return {"chips": chips, "npu_smi_layout": "a3"}


def test_a3_containers_get_whole_hiam_modules(qwen8):
    host = a3_host(modules=2, sick=(1,))
    assert chip_family(host["chips"], "a3") == "a3"
    result = plan({"a3": host}, [model("q8", qwen8, tensor_parallel_size=1, replicas=2, spread=False)])
    placed = result["placements"][0]
    assert placed["devices"] == ["/dev/davinci2", "/dev/davinci3"]  # module 0 has a sick die: never half a module
    assert placed["container_device_ids"] == [0, 1]
    assert placed["tensor_parallel_size"] == 1
    assert any("HiAM module" in reason for reason in placed["reasons"])
    assert len(result["unplaced"]) == 1
    # auto takes TP 2 on the same two dies (more KV cache for the same chips)
    auto = plan({"a3": a3_host(modules=1)}, [model("q8", qwen8)])
    assert auto["placements"][0]["tensor_parallel_size"] == 2
    # chips alone are enough to tell A3: two Ascend910 dies per NPU
    assert chip_family(a3_host()["chips"]) == "a3"


def test_a3_offers_no_chip_sharing(qwen4):
    result = plan({"a3": a3_host(modules=1)}, [model("small", qwen4, share_chip=True, max_model_len=8192)])
    assert result["placements"] == []


def duo_host():
    """Atlas 300I Duo: two 310P3 chips per card (NPU ids 1536 and 1792)."""
    chips = [
        chip(0, 44280, "310P3", npu_id=1536, chip_id=0),
        chip(1, 43693, "310P3", npu_id=1536, chip_id=1),
        chip(2, 44280, "310P3", npu_id=1792, chip_id=0),
        chip(3, 43693, "310P3", npu_id=1792, chip_id=1),
    ]
    return {"chips": chips}


def test_300i_duo_keeps_cards_whole_for_two_chips_and_fills_half_cards_first(qwen8):
    host = busy(duo_host(), 0)
    assert chip_family(host["chips"]) == "310p"
    result = plan({"duo": host}, [model("one", qwen8, tensor_parallel_size=1), model("two", qwen8, tensor_parallel_size=2)])
    assert where(result)["two", 0][1] == ["/dev/davinci2", "/dev/davinci3"]  # a whole free card
    assert where(result)["one", 0][1] == ["/dev/davinci1"]  # the card already half used
    # the 310P worker halves the KV budget: the fit is kv_fit's with the 310P chip family
    one = [p for p in result["placements"] if p["model"] == "one"][0]
    assert one["kv_cache_tokens"] == kv_fit(qwen8, chip_memory_mb=43693, chip_family="310P3")["kv_cache_tokens"]


def test_interconnect_groups_override(qwen8):
    host = a2_host(count=4, interconnect_groups=[["/dev/davinci0", "/dev/davinci1"], ["/dev/davinci2", "/dev/davinci3"]])
    # TP4 over groups of 2 is a size the hardware cannot give: an input error, not an unplaced replica
    with pytest.raises(PlacementError, match=r"tensor_parallel_size 4 needs 4 chips .* at most 2 \(pcie, 910b chips\)"):
        plan({"pcie": host}, [model("q8", qwen8, tensor_parallel_size=4)])
    busy(host, 2)
    result = plan({"pcie": host}, [model("q8", qwen8, tensor_parallel_size=2), model("q8b", qwen8, tensor_parallel_size=2)])
    assert (
        len(result["placements"]) == 1
        and "largest free group is 1; chips of the hosts it may use - pcie: 1 free, 2 chips run q8#0" in result["unplaced"][0]["reason"]
    )


# --------------------------------------------------------------------------- memory


def test_max_model_len_is_the_wish_when_it_fits_else_capped_to_what_fits(llama):
    fit32 = kv_fit(llama, chip_memory_mb=GIB_32, max_model_len=131072)
    assert fit32["verdict"] == "capped"
    result = plan({"n1": a2_host(count=1)}, [model("llama", llama, tensor_parallel_size=1, max_model_len=131072)])
    placed = result["placements"][0]
    assert placed["max_model_len"] == fit32["recommended_max_model_len"] < 131072
    assert placed["kv_cache_tokens"] == fit32["kv_cache_tokens"]
    assert any(reason.startswith("max_model_len 131072 -> %d" % placed["max_model_len"]) for reason in placed["reasons"])
    roomy = plan(
        {"n1": a2_host(count=1, memory=GIB_64, name="910B3")}, [model("llama", llama, tensor_parallel_size=1, max_model_len=131072)]
    )
    assert roomy["placements"][0]["max_model_len"] == 131072


def test_below_min_model_len_the_replica_is_unplaced_with_kv_fits_reason(llama):
    result = plan({"n1": a2_host(count=1)}, [model("llama", llama, tensor_parallel_size=1, max_model_len=131072, min_model_len=131072)])
    assert result["placements"] == []
    fit = kv_fit(llama, chip_memory_mb=GIB_32, max_model_len=131072, min_model_len=131072)
    assert fit["verdict"] == "does_not_fit"
    assert result["unplaced"][0]["reason"] == ("does not fit even at tensor_parallel_size 1 on 32 GiB chips: " + fit["message"])


def test_auto_tp_takes_the_fewest_chips_that_hold_the_wish(llama):
    result = plan({"n1": a2_host(count=2)}, [model("llama", llama, max_model_len=131072)])
    placed = result["placements"][0]
    assert placed["tensor_parallel_size"] == 2 and placed["max_model_len"] == 131072  # TP1 would cap at 78720
    assert "tensor_parallel_size auto -> 2" in placed["reasons"]


def test_a_tp_group_is_sized_by_its_smallest_chip(llama):
    host = {"chips": [chip(0, GIB_64, "910B3"), chip(1, GIB_32, "910B3")]}
    result = plan({"mixed": host}, [model("llama", llama, tensor_parallel_size=2, max_model_len=131072)])
    placed = result["placements"][0]
    assert placed["chip_memory_mb"] == GIB_32
    assert (
        placed["kv_cache_tokens"] == kv_fit(llama, chip_memory_mb=GIB_32, tensor_parallel_size=2, max_model_len=131072)["kv_cache_tokens"]
    )


def test_small_models_take_small_chips_and_leave_large_ones(qwen8):
    hosts = {"big": a2_host(count=1, memory=GIB_64, name="910B3"), "small": a2_host(count=1)}
    result = plan(hosts, [model("q8", qwen8)])
    assert where(result)["q8", 0][0] == "small"


# --------------------------------------------------------------------------- shared chips


def test_share_chip_slices_never_exceed_the_chip(qwen8, qwen4):
    auto = [
        milli
        for milli in range(100, 951, 50)
        if kv_fit(qwen4, chip_memory_mb=GIB_32, gpu_memory_utilization=milli / 1000.0, max_model_len=8192)["verdict"] == "fits"
    ][0]
    assert auto == 350  # 0.30 leaves no room for the KV cache of 8192 tokens; 0.35 holds it
    result = plan(
        {"n1": a2_host(count=2)},
        [model("q8", qwen8, share_chip=False), model("small", qwen4, share_chip=True, max_model_len=8192, replicas=3, spread=False)],
    )
    assert where(result)["q8", 0][1] == ["/dev/davinci0"]
    smalls = [p for p in result["placements"] if p["model"] == "small"]
    assert [p["devices"] for p in smalls] == [["/dev/davinci1"], ["/dev/davinci1"]]
    assert [p["gpu_memory_utilization"] for p in smalls] == [0.35, 0.35]
    assert all(p["share_chip"] for p in smalls)
    assert len(set(p["port"] for p in smalls)) == 2
    assert [(u["model"], u["replica"]) for u in result["unplaced"]] == [("small", 2)]  # 3 x 0.35 = 1.05 > 0.95
    assert result["summary"]["hosts"]["n1"]["chips_shared"] == 1


def test_share_chip_limit_is_the_cap(qwen4):
    models = [
        model("a", qwen4, share_chip=True, max_model_len=8192, gpu_memory_utilization=0.5),
        model("b", qwen4, share_chip=True, max_model_len=8192, gpu_memory_utilization=0.45),
    ]
    both = plan({"n1": a2_host(count=1)}, models)
    assert len(both["placements"]) == 2  # 0.50 + 0.45 = 0.95
    capped = plan({"n1": a2_host(count=1)}, models, share_cap=0.9)
    assert len(capped["placements"]) == 1


def test_an_exclusive_replica_never_lands_on_a_shared_chip(qwen8, qwen4):
    result = plan(
        {"n1": a2_host(count=1)}, [model("small", qwen4, share_chip=True, max_model_len=8192), model("zq8", qwen8, share_chip=False)]
    )
    assert [p["model"] for p in result["placements"]] == ["small"]
    assert [u["model"] for u in result["unplaced"]] == ["zq8"]


# --------------------------------------------------------------------------- ports


def test_ports_are_unique_in_range_and_never_in_used_ports(qwen8):
    host = a2_host(port_range="18000-18002", used_ports=[18000])
    result = plan({"n1": host}, [model("q8", qwen8, replicas=3, spread=False)])
    assert sorted(p["port"] for p in result["placements"]) == [18001, 18002]
    assert result["unplaced"][0]["reason"].endswith("; no free port left in the port range of the hosts with room")


def test_hashed_ports_are_derived_from_model_and_replica(qwen8, llama):
    alone = plan({"n1": a2_host()}, [model("q8", qwen8, replicas=2, spread=False)], port_scheme="hash")
    expected = [18000 + zlib.crc32(("q8/%d" % replica).encode()) % 1000 for replica in (0, 1)]
    assert [p["port"] for p in alone["placements"]] == expected
    # another model in the catalogue does not shift them
    more = plan(
        {"n1": a2_host()},
        [model("llama", llama, replicas=2, spread=False), model("q8", qwen8, replicas=2, spread=False)],
        port_scheme="hash",
    )
    assert [p["port"] for p in more["placements"] if p["model"] == "q8"] == expected


def test_device_ports_read_the_chip_off_the_port_and_step_past_taken_ones(qwen8, llama):
    """The field report's convention: /dev/davinci6 -> 18006; a taken port gives the next free one."""
    host = a2_host()
    for alarmed in host["chips"][:6]:
        alarmed["health"] = "Alarm"  # only davinci6 and davinci7 are usable
    result = plan({"n1": host}, [model("q8", qwen8, replicas=2, spread=False)])
    assert sorted((p["devices"][0], p["port"]) for p in result["placements"]) == [("/dev/davinci6", 18006), ("/dev/davinci7", 18007)]
    host["used_ports"] = [18006]  # something else listens there
    result = plan({"n1": host}, [model("q8", qwen8, replicas=2, spread=False)])
    assert sorted((p["devices"][0], p["port"]) for p in result["placements"]) == [("/dev/davinci6", 18007), ("/dev/davinci7", 18008)]
    detour = [p for p in result["placements"] if p["devices"] == ["/dev/davinci6"]][0]
    assert "port 18006 (range start + davinci6) is in use on n1 by a process npu.fleet did not start: took 18007" in detour["reasons"]
    assert not any("in use" in reason for p in result["placements"] if p["devices"] == ["/dev/davinci7"] for reason in p["reasons"])
    with pytest.raises(PlacementError, match="port_scheme must be one of device, hash"):
        plan({"n1": host}, [model("q8", qwen8)], port_scheme="random")


def test_a_fixed_port_is_used_once_per_host(qwen8):
    result = plan({"n1": a2_host(), "n2": a2_host()}, [model("q8", qwen8, replicas=3, port=18500, spread=False)])
    assert sorted((p["host"], p["port"]) for p in result["placements"]) == [("n1", 18500), ("n2", 18500)]
    assert result["unplaced"][0]["reason"].endswith("; its fixed port 18500 is taken on every host with room")


def test_host_port_range_and_default(qwen8):
    result = plan({"n1": a2_host(port_range="20000-20009")}, [model("q8", qwen8)], default_port_range="30000-30009")
    assert 20000 <= result["placements"][0]["port"] <= 20009
    other = plan({"n1": a2_host()}, [model("q8", qwen8)], default_port_range="30000-30009")
    assert 30000 <= other["placements"][0]["port"] <= 30009


# --------------------------------------------------------------------------- stickiness and changes


def test_replan_with_the_previous_plan_keeps_everything(qwen8, llama, qwen4):
    hosts = {"n1": a2_host(), "n2": a2_host(memory=GIB_64, name="910B3"), "n3": busy(a2_host(), 0, 1)}
    catalogue = [
        model("q8", qwen8, replicas=3),
        model("llama", llama, replicas=2, max_model_len=131072),
        model("small", qwen4, share_chip=True, max_model_len=8192, replicas=4, spread=False),
    ]
    first = plan(hosts, catalogue)
    assert first["unplaced"] == []
    again = plan(hosts, catalogue, current=as_current(first))
    assert without_reasons(again) == without_reasons(first)
    assert [c["action"] for c in again["changes"]] == ["keep"] * len(first["placements"])
    assert all(c["settings_changed"] == [] for c in again["changes"])
    assert all(p["reasons"][0] == "kept: still fits on the same host, chips and port" for p in again["placements"])


def test_a_running_replica_stays_even_where_a_fresh_plan_would_not_put_it(qwen8):
    running = [{"model": "q8", "replica": 0, "host": "n2", "devices": ["/dev/davinci5"], "port": 18777}]
    result = plan({"n1": busy(a2_host(), 0), "n2": a2_host()}, [model("q8", qwen8)], current=running)
    assert where(result) == {("q8", 0): ("n2", ["/dev/davinci5"], 18777)}


def test_removing_a_host_moves_only_its_replicas(qwen8):
    hosts = {"a": a2_host(), "b": a2_host(), "c": a2_host()}
    catalogue = [model("q8", qwen8, replicas=12, spread=False)]
    first = plan(hosts, catalogue, port_scheme="hash")  # ports unique over the fleet: every moved one stays free
    on_a = sorted(key for key, spot in where(first).items() if spot[0] == "a")
    assert len(on_a) == 8  # best fit fills one host before opening another
    del hosts["a"]
    second = plan(hosts, catalogue, current=as_current(first), port_scheme="hash")
    moves = [c for c in second["changes"] if c["action"] == "move"]
    assert sorted((c["model"], c["replica"]) for c in moves) == on_a
    assert all(c["reason"] == "host a is no longer in the fleet" for c in moves)
    assert all(c["to"]["port"] == c["from"]["port"] for c in moves)  # a moved replica keeps its port when free
    assert sum(1 for c in second["changes"] if c["action"] == "keep") == 4
    for key, spot in where(second).items():
        if key not in on_a:
            assert spot == where(first)[key]


def test_changes_remove_move_and_settings(qwen8, llama):
    host = a2_host()
    host["chips"][3]["health"] = "Alarm"
    running = [
        {"model": "gone", "replica": 0, "host": "n1", "devices": ["/dev/davinci0"], "port": 18001},
        {"model": "q8", "replica": 0, "host": "n1", "devices": ["/dev/davinci3"], "port": 18002},
        {"model": "q8", "replica": 1, "host": "n1", "devices": ["/dev/davinci4"], "port": 18003, "max_model_len": 8192},
        {"model": "q8", "replica": 1, "host": "n1", "devices": ["/dev/davinci5"], "port": 18004},
        {"model": "q8", "replica": 2, "host": "n1", "devices": ["/dev/davinci6"], "port": 18005},
    ]
    result = plan({"n1": host}, [model("q8", qwen8, replicas=2, spread=False)], current=running)
    actions = [(c["action"], c["model"], c["replica"], c["reason"]) for c in result["changes"]]
    assert actions == [
        ("remove", "gone", 0, "model gone is no longer in the catalogue"),
        ("move", "q8", 0, "/dev/davinci3 on n1 is not usable: health Alarm"),
        ("keep", "q8", 1, None),
        ("remove", "q8", 1, "duplicate entry for this replica"),
        ("remove", "q8", 2, "replica 2 is beyond replicas: 2"),
    ]
    keep = [c for c in result["changes"] if c["action"] == "keep"][0]
    assert keep["settings_changed"] == ["max_model_len"]
    assert keep["to"] == {"host": "n1", "devices": ["/dev/davinci4"], "port": 18003}
    text = render_table(result)
    assert "to remove:" in text and "gone#0 on n1: model gone is no longer in the catalogue" in text


def test_a_replica_that_no_longer_fits_moves(llama):
    running = [{"model": "llama", "replica": 0, "host": "n1", "devices": ["/dev/davinci0"], "port": 18100}]
    hosts = {"n1": a2_host(count=1), "n2": a2_host(count=1, memory=GIB_64, name="910B3")}
    result = plan(hosts, [model("llama", llama, tensor_parallel_size=1, max_model_len=131072, min_model_len=131072)], current=running)
    assert where(result)["llama", 0][0] == "n2"
    assert result["changes"][0]["action"] == "move"
    assert result["changes"][0]["reason"].startswith("no longer fits its 1 chip(s): ")


# --------------------------------------------------------------------------- optimisation


def first_fit(hosts, catalogue):
    """Plain first fit: replicas in list order, the first host by name with a chip that holds it (TP 1)."""
    free = dict((name, list(spec["chips"])) for name, spec in sorted(hosts.items()))
    placed = 0
    for entry in catalogue:
        for unused in range(entry["replicas"]):
            for name in sorted(free):
                fitting = [
                    item
                    for item in free[name]
                    if kv_fit(
                        entry["profile"],
                        chip_memory_mb=item["memory_total_mb"],
                        max_model_len=entry.get("max_model_len"),
                        min_model_len=entry.get("min_model_len", 4096),
                    )["verdict"]
                    != "does_not_fit"
                ]
                if fitting:
                    free[name].remove(fitting[0])
                    placed += 1
                    break
    return placed


def test_first_fit_fails_where_the_planner_places_every_replica(qwen8, llama):
    # Qwen3-8B fits any chip; 131072 tokens of Llama-3.1-8B fit only a 64 GiB chip.
    hosts = {"a-64": a2_host(count=2, memory=GIB_64, name="910B3"), "b-32": a2_host(count=2)}
    catalogue = [
        model("q8", qwen8, replicas=2, spread=False),
        model("llama", llama, replicas=2, tensor_parallel_size=1, max_model_len=131072, min_model_len=131072, spread=False),
    ]
    assert first_fit(hosts, catalogue) == 2  # q8 takes the 64 GiB chips of a-64 first
    result = plan(hosts, catalogue)
    assert result["unplaced"] == []
    assert where(result) == {
        ("llama", 0): ("a-64", ["/dev/davinci0"], where(result)["llama", 0][2]),
        ("llama", 1): ("a-64", ["/dev/davinci1"], where(result)["llama", 1][2]),
        ("q8", 0): ("b-32", ["/dev/davinci0"], where(result)["q8", 0][2]),
        ("q8", 1): ("b-32", ["/dev/davinci1"], where(result)["q8", 1][2]),
    }


def test_both_repairs_recover_from_a_bad_order(monkeypatch, llama, moe):
    # llama (wish 131072) fits a 64 GiB chip at TP1 and a 32 GiB one only capped: placed first, it
    # takes the 64 GiB chips the MoE model needs at TP2.
    hosts = {"big": a2_host(count=2, memory=GIB_64, name="910B3"), "small": a2_host(count=2)}
    catalogue = [
        model("llama", llama, replicas=2, tensor_parallel_size=1, max_model_len=131072, spread=False),
        model("moe", moe, max_model_len=32768, tensor_parallel_size=2),
    ]
    monkeypatch.setattr(repair, "_order", lambda planner, pending, size_first=False: sorted(pending))
    expected = {"moe": "big", "llama": "small"}
    with monkeypatch.context() as patched:
        patched.setattr(repair, "MAX_REPAIR_ROUNDS", 0)
        patched.setattr(repair, "_evict_repair", lambda planner, left: left)
        assert [u["model"] for u in plan(hosts, catalogue)["unplaced"]] == ["moe"]
    with monkeypatch.context() as patched:  # eviction: the llama replicas move out of the way
        patched.setattr(repair, "MAX_REPAIR_ROUNDS", 0)
        evicted = plan(hosts, catalogue)
        assert evicted["unplaced"] == []
        assert all(spot[0] == expected[key[0]] for key, spot in where(evicted).items())
    with monkeypatch.context() as patched:  # replay: the model left over goes first
        patched.setattr(repair, "_evict_repair", lambda planner, left: left)
        replayed = plan(hosts, catalogue)
        assert replayed["unplaced"] == []
        assert all(spot[0] == expected[key[0]] for key, spot in where(replayed).items())


def test_kept_replicas_are_never_evicted(llama, moe):
    hosts = {"big": a2_host(count=2, memory=GIB_64, name="910B3"), "small": a2_host(count=2)}
    running = [{"model": "llama", "replica": r, "host": "big", "devices": ["/dev/davinci%d" % r], "port": 18000 + r} for r in (0, 1)]
    catalogue = [
        model("llama", llama, replicas=2, tensor_parallel_size=1, max_model_len=131072, spread=False),
        model("moe", moe, max_model_len=32768, tensor_parallel_size=2),
    ]
    result = plan(hosts, catalogue, current=running)
    assert [(c["action"], c["model"]) for c in result["changes"]] == [("keep", "llama"), ("keep", "llama")]
    assert [(u["model"], u["reason"].split("; chips of")[0]) for u in result["unplaced"]] == [
        ("moe", "needs 2 chips of >= 64 GiB on one host in one interconnect group; largest free group is 0")
    ]


def test_whole_host_spread_replicas_keep_the_room_they_need(monkeypatch, tmp_path_factory, qwen8, llama, qwen4, moe):
    # A complete packing (39 usable chips, 39 taken) cut as the benchmark cuts it, spread on every model:
    # a3 = TP8 + llama + moe + q8 + q25 + mixtral (2 dies each), b-32 (davinci7 reserved) = small + q8 + q25
    # + mixtral TP4, c-64 = llama + moe + small + q8 + q25 + mixtral TP2, d-32 = the other TP8.
    mistral = fixture_profile("mistralai__Mistral-7B-Instruct-v0.3", tmp_path_factory.mktemp("models"), total_size=14496047104)
    qwen25 = fixture_profile("Qwen__Qwen2.5-7B-Instruct", tmp_path_factory.mktemp("models"), total_size=15231233024)
    mixtral = profile_model(fixture_dir("mistralai__Mixtral-8x7B-v0.1"))
    hosts = {
        "a3": a3_host(modules=8),
        "b-32": a2_host(reserved_devices=["/dev/davinci7"]),
        "c-64": a2_host(memory=GIB_64, name="910B3"),
        "d-32": a2_host(),
    }
    catalogue = [
        model("tp8", mistral, tensor_parallel_size=8, max_model_len=32768, replicas=2),
        model("llama", llama, tensor_parallel_size=1, max_model_len=131072, min_model_len=131072, replicas=2),
        model("moe", moe, tensor_parallel_size=2, max_model_len=32768, replicas=2),
        model("small", qwen4, share_chip=True, gpu_memory_utilization=0.45, max_model_len=8192, replicas=2),
        model("q8", qwen8, replicas=3),
        model("q25", qwen25, max_model_len=32768, replicas=3),
        model("mixtral", mixtral, max_model_len=32768, replicas=2),
    ]
    with monkeypatch.context() as patched:  # without reserving whole groups (the planner before): a TP8 is left
        patched.setattr(search, "WHOLE_GROUP_CHIPS", 99)
        assert [(u["model"], u["replica"]) for u in plan(hosts, catalogue)["unplaced"]] == [("tp8", 1)]
    result = plan(hosts, catalogue)
    assert result["unplaced"] == []
    assert sorted(spot[0] for key, spot in where(result).items() if key[0] == "tp8") == ["a3", "d-32"]
    assert result["summary"]["totals"]["chips_free"] == 0
    for name in hosts:  # spread: one replica of a model per host
        models = [p["model"] for p in result["placements"] if p["host"] == name]
        assert len(models) == len(set(models))
    assert json.dumps(plan(hosts, list(reversed(catalogue))), sort_keys=True) == json.dumps(result, sort_keys=True)


def test_spread_puts_replicas_on_distinct_hosts(qwen8):
    result = plan({"n1": a2_host(), "n2": a2_host()}, [model("q8", qwen8, replicas=3)])
    assert sorted(p["host"] for p in result["placements"]) == ["n1", "n2"]
    assert "spread: every host with room already runs a replica of q8" in result["unplaced"][0]["reason"]


def test_labels_and_hosts_constraints(qwen8):
    hosts = {"n1": a2_host(labels={"zone": "a"}), "n2": a2_host(labels={"zone": "b"}), "n3": a2_host()}
    result = plan(hosts, [model("by-label", qwen8, labels={"zone": "b"}), model("by-name", qwen8, hosts=["n3"])])
    assert where(result)["by-label", 0][0] == "n2"
    assert where(result)["by-name", 0][0] == "n3"
    none = plan(hosts, [model("q8", qwen8, labels={"zone": "c"})])
    assert none["unplaced"][0]["reason"] == "no host passing preflight has the labels zone=c"


def test_capacity_left_counts_more_replicas_per_model(qwen8, moe):
    catalogue = [model("q8", qwen8, replicas=3, spread=False), model("moe", moe, replicas=0, max_model_len=32768, spread=False)]
    result = plan({"n1": a2_host(), "n2": a2_host()}, catalogue)
    assert result["summary"]["capacity_left"] == {"moe": 3, "q8": 13}  # n1 has 5 free chips: one TP4 group
    catalogue[1]["spread"] = True
    assert plan({"n1": a2_host(), "n2": a2_host()}, catalogue)["summary"]["capacity_left"]["moe"] == 2
    assert result["summary"]["totals"] == {
        "hosts": 2,
        "hosts_receiving": 1,
        "chips": 16,
        "chips_usable": 16,
        "chips_used": 3,
        "chips_free": 13,
    }


# --------------------------------------------------------------------------- determinism


def test_same_inputs_same_plan_byte_for_byte(qwen8, llama, qwen4, moe):
    def inputs():
        hosts = {
            "n%d" % i: (
                busy(a2_host(memory=GIB_64 if i % 2 else GIB_32, name="910B3" if i % 2 else "910B4"), i % 8)
                if i % 3 == 0
                else a2_host(memory=GIB_64 if i % 2 else GIB_32)
            )
            for i in range(6)
        }
        hosts["duo"] = duo_host()
        hosts["a3"] = a3_host(modules=4)
        catalogue = [
            model("q8", qwen8, replicas=5, spread=False),
            model("llama", llama, replicas=4, max_model_len=131072),
            model("small", qwen4, share_chip=True, max_model_len=8192, replicas=7, spread=False),
            model("moe", moe, replicas=3, max_model_len=32768),
        ]
        return hosts, catalogue

    first = json.dumps(plan(*inputs()))
    second = json.dumps(plan(*inputs()))
    assert first == second
    hosts, catalogue = inputs()
    shuffled_hosts = dict(reversed(list(hosts.items())))
    assert json.dumps(plan(shuffled_hosts, list(reversed(catalogue))), sort_keys=True) == json.dumps(json.loads(first), sort_keys=True)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"name": "m", "replicas": 1, "gpu": 1}, "models[0] (m): unknown field(s) gpu; allowed: name, path, host_path, profile"),
        (
            {"name": "m", "tensor_parallel_size": 3},
            "models[0] (m): tensor_parallel_size 3 is not one of auto, 1, 2, 4, 8; set auto or one of those",
        ),
        ({"name": "m", "port": 80}, "models[0] (m): port 80 is outside the port range of every host (18000-18999)"),
        ({"name": "m", "replicas": -1}, "models[0] (m): replicas must be an integer 0..100000, got -1"),
        ({"name": "m", "gpu_memory_utilization": 1.5}, "models[0] (m): gpu_memory_utilization must be a number in (0, 1], got 1.5"),
        ({"name": "m", "hosts": ["nope"]}, "models[0] (m): hosts names nope, not in the fleet (n1)"),
        ({"name": "m", "min_model_len": 9000, "max_model_len": 8192}, "models[0] (m): min_model_len 9000 exceeds max_model_len 8192"),
        ({"name": "m", "share_chip": True, "tensor_parallel_size": 2}, "models[0] (m): share_chip needs tensor_parallel_size 1"),
        ({"name": "m", "spread": "maybe"}, "models[0] (m): spread must be true or false"),
    ],
)
def test_invalid_model_entries_name_model_and_field(qwen8, entry, message):
    entry = dict(entry, profile=qwen8)
    with pytest.raises(PlacementError) as error:
        plan({"n1": a2_host()}, [entry])
    assert message in str(error.value)  # the catalogue's "npu_fleet_models[0] (m): ..." names the model and the field


def test_a_host_outside_this_run_is_not_an_input_error(qwen8):
    """With --limit, a constraint may name an inventory host that this run does not plan."""
    result = plan({"n1": a2_host()}, [model("q8", qwen8, hosts=["n2"])], known_hosts=["n1", "n2"])
    assert result["placements"] == []
    assert [(item["model"], item["replica"]) for item in result["unplaced"]] == [("q8", 0)]
    assert result["unplaced"][0]["reason"] == "none of its hosts (n2) is planned in this run (--limit?)"


def test_duplicate_names_and_missing_profile_are_refused(qwen8):
    with pytest.raises(PlacementError, match=r"models\[0\] and npu_fleet_models\[1\] are both named 'q8'; model names must be unique"):
        plan({"n1": a2_host()}, [model("q8", qwen8), model("q8", qwen8)])
    with pytest.raises(PlacementError, match=r"models\[0\] \(q8\): give 'profile' .* or 'path'"):
        plan({"n1": a2_host()}, [{"name": "q8"}])
    with pytest.raises(PlacementError, match=r"models\[0\]: 'name' is required"):
        plan({"n1": a2_host()}, [{"profile": qwen8}])
    with pytest.raises(PlacementError, match=r"models\[0\] \(q8\): profile lacks"):
        plan({"n1": a2_host()}, [{"name": "q8", "profile": {"path": "/x"}}])


def test_a_path_is_profiled_on_the_controller_and_a_bad_one_named(tmp_path, qwen8):
    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / "q8"))
    result = plan({"n1": a2_host()}, [{"name": "q8", "path": path}])
    assert result["placements"][0]["max_model_len"] == 40960
    with pytest.raises(PlacementError, match=r"models\[0\] \(q8\): cannot profile path /nowhere: /nowhere: not a directory"):
        plan({"n1": a2_host()}, [{"name": "q8", "path": "/nowhere"}])


@pytest.mark.parametrize(
    "host, message",
    [
        ({"chips": [], "gpus": 1}, "host n1: unknown field(s) gpus"),
        ({"chips": [], "port_range": "19000-18000"}, "host n1: port_range (fleet_plan_port_range) '19000-18000' is reversed"),
        ({"chips": [], "port_range": "18000-70000"}, "host n1: port_range (fleet_plan_port_range) must be a range within 1-65535"),
        ({"chips": [], "port_range": "lots"}, "host n1: port_range (fleet_plan_port_range) must look like '18000-18999'"),
        ({"chips": [], "used_ports": [70000]}, "host n1: used_ports must be an integer 1..65535, got 70000"),
        ({"chips": [], "family": "gpu"}, "host n1: family 'gpu' is not one of 910b, 910a, a3, 310p, 950, other"),
        ({"chips": [chip(0), chip(0)]}, "host n1: device /dev/davinci0 is listed twice in chips"),
        ({"chips": [dict(chip(0), device="/dev/nvidia0")]}, "host n1: chip device '/dev/nvidia0' is not a /dev/davinci<N> node"),
        (
            {"chips": [chip(0)], "interconnect_groups": [["/dev/davinci9"]]},
            "host n1: interconnect_groups names /dev/davinci9, which is not a chip of the host",
        ),
    ],
)
def test_invalid_hosts_name_host_and_field(qwen8, host, message):
    with pytest.raises(PlacementError) as error:
        plan({"n1": host}, [model("q8", qwen8)])
    assert message in str(error.value)  # the catalogue's "npu_fleet_models[0] (m): ..." names the model and the field


def test_invalid_current_entries_are_named(qwen8):
    with pytest.raises(PlacementError, match=r"current\[0\] \(q8\): missing devices, port"):
        plan({"n1": a2_host()}, [model("q8", qwen8)], current=[{"model": "q8", "replica": 0, "host": "n1"}])


def test_the_table_lists_hosts_placements_and_capacity(qwen8):
    result = plan({"n1": busy(a2_host(count=2), 1)}, [model("q8", qwen8, replicas=2)])
    text = render_table(result)
    lines = text.splitlines()
    assert lines[0] == "n1 [910b] 2 chips: 1 used, 0 free"
    assert lines[1].split() == [
        "q8#0",
        "/dev/davinci0",
        "ctr",
        "0",
        "port",
        str(result["placements"][0]["port"]),
        "TP1",
        "len",
        "40960",
        "util",
        "0.90",
        "vllm",
        "add",
    ]
    assert lines[2] == "  not used: /dev/davinci1 (busy: python3 pid 4242)"
    assert lines[3] == "unplaced:"
    assert lines[-1] == "capacity left: q8 +0"


def test_image_selector_seam(qwen8):
    def selector(entry, host):
        return {"image": "registry/%s:%s" % (entry["name"], host)} if host == "n2" else None

    result = plan({"n1": a2_host(), "n2": a2_host()}, [model("q8", qwen8, replicas=2, image="default:1")], image_selector=selector)
    assert sorted((p["host"], p["image"], p["backend"]) for p in result["placements"]) == [
        ("n1", "default:1", "vllm"),
        ("n2", "registry/q8:n2", "vllm"),
    ]


def test_module_is_stdlib_only():
    package = os.path.dirname(_fleet_plan.__file__)
    names = sorted(name for name in os.listdir(package) if name.endswith(".py"))
    assert "__init__.py" in names and len(names) > 1
    for name in names:
        source = open(os.path.join(package, name), encoding="utf-8").read()
        assert "import ansible." not in source and "from ansible." not in source, name
