"""The plan written by converge (deploy_models) obeys the placement rules on the real emulated fleet."""

import json
import os

import pytest

# Chips each profile's preflight leaves out, and hosts that receive nothing (written by hand).
EXCLUDED = {"molecule-npu-a2-64g-busy": {"/dev/davinci2", "/dev/davinci3"}}
RECEIVES_NOTHING = {"molecule-npu-broken"}
PORT_RANGE = range(18000, 19000)


@pytest.fixture(name="plan", scope="module")
def fixture_plan():
    with open(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "plan.json"), encoding="utf-8") as handle:
        return json.load(handle)


def placements_on(plan, name):
    return [item for item in plan["placements"] if item["host"] == name]


def test_every_replica_is_placed(plan):
    assert plan["unplaced"] == []
    assert sorted((item["model"], item["replica"]) for item in plan["placements"]) == [
        ("llama-3.1-8b", 0),
        ("qwen3-4b-262k", 0),
        ("qwen3-8b", 0),
        ("qwen3-8b", 1),
        ("qwen3-8b", 2),
    ]


def test_placements_respect_the_host(host, plan):
    name = host.backend.get_hostname()
    mine = placements_on(plan, name)
    if name in RECEIVES_NOTHING:
        assert mine == []
        return
    ports = [item["port"] for item in mine]
    assert len(ports) == len(set(ports))
    used = [device for item in mine for device in item["devices"]]
    assert len(used) == len(set(used))
    for item in mine:
        assert item["port"] in PORT_RANGE
        assert item["container_device_ids"] == list(range(len(item["devices"])))
        assert len(item["devices"]) == item["tensor_parallel_size"]
        assert not set(item["devices"]) & EXCLUDED.get(name, set())
        for device in item["devices"]:
            assert host.run("test -c %s" % device).rc == 0, device


def test_long_context_is_capped_to_what_fits(plan):
    """262144 tokens of Qwen3-4B KV cache (36 layers x 8 KV heads x 128 x 2 (K, V) x 2 B = 144 KiB a token,
    36 GiB in all) cannot fit beside the weights on one 32 GiB chip: the planner caps it, above the floor."""
    item = [entry for entry in plan["placements"] if entry["model"] == "qwen3-4b-262k"][0]
    assert item["host"] == "molecule-npu-a2-32g"
    assert item["tensor_parallel_size"] == 1
    assert 8192 <= item["max_model_len"] < 262144
    assert item["max_model_len"] % 128 == 0
    assert item["kv_cache_tokens"] >= item["max_model_len"]
