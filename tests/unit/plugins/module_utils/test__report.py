"""The deployment report from a real plan and probe results."""

from ansible_collections.npu.fleet.plugins.module_utils._failure_signatures import diagnose
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import profile_model
from ansible_collections.npu.fleet.plugins.module_utils._placement import plan
from ansible_collections.npu.fleet.plugins.module_utils._report import build_report, render_markdown
from model_checkpoints import fixture_dir


def chip(number):
    return {"npu_id": number, "chip_id": 0, "logic_id": number, "phy_id": number, "device": "/dev/davinci%d" % number,
            "name": "910B4", "health": "OK", "memory_total_mb": 32768, "memory_used_mb": 0, "memory_kind": "HBM", "processes": []}


def real_plan():
    profile = profile_model(fixture_dir("Qwen__Qwen3-8B"))
    models = [{"name": "qwen3-8b", "profile": profile, "replicas": 2, "spread": False, "image": "quay.io/ascend/vllm-ascend:v0.15.0rc1", "backend": "vllm"},
              {"name": "too-big", "profile": profile, "replicas": 7, "spread": False, "tensor_parallel_size": 1}]
    return plan({"a2": {"chips": [chip(n) for n in range(8)]}}, models), profile


def test_rows_join_plan_profile_and_probe():
    result, profile = real_plan()
    placed = sorted(result["placements"], key=lambda item: (item["model"], item["replica"]))
    assert len(placed) == 8 and len(result["unplaced"]) == 1  # 9 one-chip replicas, 8 chips
    good, bad = placed[0], placed[1]
    probes = [{"model": good["model"], "replica": good["replica"], "healthy": True, "ttft_ms": 84.2, "message": "ok",
               "image": "npu-fleet/transformers-server:0123456789ab"},
              {"model": bad["model"], "replica": bad["replica"], "healthy": False, "stage": "health", "rolled_back": True,
               "message": "not ready", "diagnosis": diagnose("ValueError: No available memory for the cache blocks.")}]
    report = build_report(result, probes, {"qwen3-8b": profile, "too-big": profile})
    rows = dict(((row["model"], row["replica"]), row) for row in report["rows"])
    assert rows[(good["model"], good["replica"])]["status"] == "healthy"
    assert rows[(good["model"], good["replica"])]["image"] == "npu-fleet/transformers-server:0123456789ab"
    assert rows[(bad["model"], bad["replica"])]["image"] == bad["image"]  # not probed with an image: the plan's
    assert rows[(bad["model"], bad["replica"])]["status"] == "failed at health, rolled back"
    assert sum(1 for row in report["rows"] if row["status"] == "not probed") == 6
    for item in placed:
        row = rows[(item["model"], item["replica"])]
        assert row["chips"] == ",".join(device.replace("/dev/davinci", "") for device in item["devices"])
        assert (row["host"], row["port"], row["max_model_len"], row["params"], row["architecture"]) == (
            "a2", item["port"], item["max_model_len"], "8.2B", "Qwen3ForCausalLM")
    assert report["totals"] == {"replicas": 8, "healthy": 1, "failed": 1, "unplaced": 1}
    markdown = render_markdown(report)
    assert "## a2" in markdown and "| qwen3-8b | 8.2B |" in markdown and "84.2" in markdown
    assert "Cause: the KV cache does not fit" in markdown and "## Not placed" in markdown


def test_check_mode_rows_say_planned():
    result, profile = real_plan()
    report = build_report(result, [], {"qwen3-8b": profile}, check_mode=True)
    assert {row["status"] for row in report["rows"]} == {"planned (check mode)"}
    assert report["totals"]["healthy"] == 0
