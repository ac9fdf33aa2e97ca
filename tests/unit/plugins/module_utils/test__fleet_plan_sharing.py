"""share_chip auto on the field report's host: 8 x 910B4, four chips busy with someone else's process.

The report ran five single-chip models on the four free chips. Idle chips
show 3163 MB used of 32768 (as real 910B4 npu-smi captures do), so slices
on a shared chip may sum to at most 1 - 3163/32768 = 0.903.
"""

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan import plan, render_table
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.fleet import idle_share_cap_milli
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan.sharing import AUTO_SHARE_REASON
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import profile_model
from ansible_collections.npu.fleet.plugins.module_utils._npu_smi import parse_info
from ansible_collections.npu.fleet.plugins.module_utils._replica import container_spec
from builders import field_report_host, fixture_profile
from conftest import REPO_ROOT


def field_host():
    return field_report_host()["chips"]


@pytest.fixture(scope="module")
def five():
    """Five single-chip models of the report's sizes: two Qwen3-4B-class, a 262k-context 4B, a 3B, an 8B at 8192."""
    q4 = fixture_profile("jaman21__Qwen3-4B-Instruct")
    return [
        {"name": "qwen3-4b-instruct", "profile": q4},
        {"name": "eva-4b", "profile": q4},
        {"name": "qed-nano-262k", "profile": profile_model(REPO_ROOT + "/tests/emulator/models/qwen3-4b-262k"), "min_model_len": 8192},
        {"name": "nanbeige", "profile": fixture_profile("Nanbeige__Nanbeige4.2-3B")},
        {"name": "glm-ocr", "profile": fixture_profile("Qwen__Qwen3-8B"), "max_model_len": 8192},
    ]


def test_five_single_chip_models_share_the_four_free_chips_only_as_far_as_needed(five):
    result = plan({"a2": {"chips": field_host()}}, five)
    assert result["unplaced"] == []
    devices = sorted(device for p in result["placements"] for device in p["devices"])
    assert set(devices) == {"/dev/davinci0", "/dev/davinci1", "/dev/davinci2", "/dev/davinci3"}
    shared = [p for p in result["placements"] if p["share_chip"]]
    assert len(shared) == 2 and len({tuple(p["devices"]) for p in shared}) == 1  # one chip holds two models
    assert sum(p["gpu_memory_utilization"] for p in shared) <= 0.903
    assert all(p["reasons"][0] == AUTO_SHARE_REASON for p in shared)
    whole = [p for p in result["placements"] if not p["share_chip"]]
    assert len(whole) == 3 and all(p["gpu_memory_utilization"] == 0.9 for p in whole)
    # the others keep whole chips and the longest context one chip holds
    assert all(p["max_model_len"] > 32768 or p["model"] == "glm-ocr" for p in whole)
    assert "util 0.45" in render_table(result)


def test_whole_chips_first_when_they_suffice(five):
    # contexts that fit one chip, so that none wants two: four models on four chips take them whole
    four = [dict(entry, max_model_len=entry.get("max_model_len", 32768)) for entry in five if entry["name"] != "qed-nano-262k"]
    result = plan({"a2": {"chips": field_host()}}, four)
    assert result["unplaced"] == [] and not any(p["share_chip"] for p in result["placements"])


def test_the_plan_is_sticky_with_shared_chips(five):
    first = plan({"a2": {"chips": field_host()}}, five)
    current = [dict((k, p[k]) for k in ("model", "replica", "host", "devices", "port")) for p in first["placements"]]
    again = plan({"a2": {"chips": field_host()}}, five, current=current)
    assert [c["action"] for c in again["changes"]] == ["keep"] * 5
    assert [(p["devices"], p["gpu_memory_utilization"]) for p in again["placements"]] == [
        (p["devices"], p["gpu_memory_utilization"]) for p in first["placements"]
    ]


def test_without_sharing_the_reason_names_the_one_chip_option_and_where_the_chips_went(five):
    result = plan({"a2": {"chips": field_host()}}, [dict(entry, share_chip=False) for entry in five])
    reasons = [item["reason"] for item in result["unplaced"]]
    assert reasons, "four chips cannot hold five whole-chip replicas"
    for reason in reasons:
        assert "1 chip of >= 32 GiB (max_model_len capped to" in reason
        assert "largest free group is 0; chips of the hosts it may use - a2: 4 chips run " in reason
        assert reason.endswith("4 not usable (busy)")


def test_a_shared_container_gets_the_allocator_setting_and_a_whole_chip_one_does_not(five):
    result = plan({"a2": {"chips": field_host()}}, five)
    for placement in result["placements"]:
        spec = container_spec(dict(placement, image="quay.io/ascend/vllm-ascend:v0.15.0rc1"), "/data/m", {})
        assert (spec["env"].get("PYTORCH_NPU_ALLOC_CONF") == "expandable_segments:True") is placement["share_chip"]
    shared = [p for p in result["placements"] if p["share_chip"]][0]
    mine = container_spec(dict(shared, image="i"), "/data/m", {}, {"env": {"PYTORCH_NPU_ALLOC_CONF": "expandable_segments:False"}})
    assert mine["env"]["PYTORCH_NPU_ALLOC_CONF"] == "expandable_segments:False"  # the user's own value wins


def test_the_share_cap_comes_from_the_idle_chips_of_a_real_capture():
    with open(REPO_ROOT + "/tests/unit/fixtures/npu-smi/info-910b4-8npu-25.2.0-01.txt", encoding="utf-8") as handle:
        captured = parse_info(handle.read())["chips"]
    idle = [chip for chip in captured if not chip["processes"]]
    expected = int((1 - max(chip["memory_used_mb"] / float(chip["memory_total_mb"]) for chip in idle)) * 1000)
    assert expected == 913 and idle_share_cap_milli(captured) == expected  # 2842 of 32768 MB on the busiest idle chip
    assert idle_share_cap_milli([{"memory_used_mb": 0, "memory_total_mb": 0}]) == 1000


def test_the_a5_capture_is_its_own_family():
    from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan import chip_family

    with open(REPO_ROOT + "/tests/unit/fixtures/npu-smi/info-950pr-a5-1npu-25.7.rc1.6-01-excerpt.txt", encoding="utf-8") as handle:
        table = parse_info(handle.read())
    assert table["layout"] == "a5" and chip_family(table["chips"], table["layout"]) == "950"
    assert chip_family([{"name": "Ascend950PR", "npu_id": 0}]) == "950"


def test_structure_the_profiler_does_not_know_is_said_in_every_placement(tmp_path):
    """A layer kind nobody knows is charged as full attention, and the plan repeats the profile's warning."""
    import json

    from model_checkpoints import copy_fixture

    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / "q8-odd"))
    with open(path + "/config.json", encoding="utf-8") as handle:
        config = json.load(handle)
    config["layer_types"] = ["full_attention"] * (config["num_hidden_layers"] - 1) + ["quantum_attention"]
    with open(path + "/config.json", "w", encoding="utf-8") as handle:
        json.dump(config, handle)
    profile = profile_model(path)
    result = plan({"a2": {"chips": field_host()}}, [{"name": "odd", "profile": profile}])
    (placement,) = result["placements"]
    said = [reason for reason in placement["reasons"] if reason.startswith("profile: ")]
    assert said and any("treated as full attention" in reason for reason in said)


def test_of_equal_size_the_single_chip_model_shares_and_the_long_context_one_keeps_its_chips():
    """The demo's npu-a2-01: nine chips' worth of whole-chip replicas on eight; the 32k model shares, the rest keep whole chips."""
    store = REPO_ROOT + "/tests/emulator/models/"
    models = [
        {"name": "qwen3-8b", "profile": profile_model(store + "qwen3-8b"), "replicas": 2, "spread": False},
        {"name": "llama-3.1-8b", "profile": profile_model(store + "llama-3.1-8b"), "max_model_len": 32768},
        {
            "name": "qwen3-4b-262k",
            "profile": profile_model(store + "qwen3-4b-262k"),
            "min_model_len": 8192,
            "tensor_parallel_size": 2,
            "replicas": 2,
            "spread": False,
        },
        {
            "name": "qwen3-4b-instruct",
            "profile": profile_model(store + "qwen3-4b-instruct"),
            "max_model_len": 32768,
            "replicas": 2,
            "spread": False,
        },
    ]
    host = field_report_host(busy=())["chips"]
    result = plan({"a2": {"chips": host}}, models)
    assert result["unplaced"] == []
    by_model = {}
    for placement in result["placements"]:
        by_model.setdefault(placement["model"], []).append(placement)
    assert [p["tensor_parallel_size"] for p in by_model["qwen3-4b-262k"]] == [2, 2]
    assert all(p["max_model_len"] == 262144 for p in by_model["qwen3-4b-262k"])
    instruct = by_model["qwen3-4b-instruct"]
    assert all(p["share_chip"] for p in instruct) and instruct[0]["devices"] == instruct[1]["devices"]
