"""Undeploy selects only npu.fleet's containers of the models asked for, from real container specs."""

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._replica import LABEL_PREFIX, container_spec, previous_name
from ansible_collections.npu.fleet.plugins.module_utils._undeploy import UndeployError, undeploy_selection, undeploy_summary


def running(name, model, managed=True, replica=0, port=18000):
    placement = {"model": model, "replica": replica, "devices": ["/dev/davinci%d" % replica], "port": port, "host": "a2", "backend": "vllm"}
    placement.update(image="quay.io/ascend/vllm-ascend:v0.13.0", tensor_parallel_size=1, max_model_len=8192)
    labels = dict(container_spec(placement, "/m", {}, {})["labels"])
    if not managed:
        labels.pop(LABEL_PREFIX + "managed")
    return {"Names": ["/" + name], "Labels": labels, "State": "running"}


@pytest.fixture(name="host")
def fixture_host():
    return [
        running("npu-fleet-qwen3-8b-0", "qwen3-8b"),
        running(previous_name("npu-fleet-qwen3-8b-0"), "qwen3-8b"),
        running("npu-fleet-glm-ocr-0", "glm-ocr", replica=0, port=18001),
        # Named and labelled like ours, not started by npu.fleet.
        running("npu-fleet-qwen3-8b-9", "qwen3-8b", managed=False),
        {"Names": ["/npu-fleet-gateway"], "Labels": {LABEL_PREFIX + "managed": "true"}, "State": "running"},
        {"Names": ["/someone-elses-vllm"], "Labels": {}, "State": "running"},
    ]


def test_one_model_goes_with_its_previous_copy_and_is_drained_first(host):
    selected = undeploy_selection(host, ["qwen3-8b"])
    assert [item["name"] for item in selected["remove"]] == ["npu-fleet-qwen3-8b-0", "npu-fleet-qwen3-8b-0-previous"]
    assert selected["servers"] == [{"backend": "model_qwen3-8b", "server": "npu-fleet-qwen3-8b-0"}]
    assert selected["models"] == ["qwen3-8b"]


def test_all_takes_every_npu_fleet_model_and_nothing_else(host):
    names = [item["name"] for item in undeploy_selection(host, remove_all=True)["remove"]]
    assert names == ["npu-fleet-glm-ocr-0", "npu-fleet-qwen3-8b-0", "npu-fleet-qwen3-8b-0-previous"]


def test_models_from_a_key_value_extra_var_string(host):
    assert undeploy_selection(host, "glm-ocr,qwen3-8b")["models"] == ["glm-ocr", "qwen3-8b"]
    assert undeploy_selection(host, "['glm-ocr']")["models"] == ["glm-ocr"]
    assert undeploy_selection(host, remove_all="true")["models"] == ["glm-ocr", "qwen3-8b"]


@pytest.mark.parametrize(
    ("models", "remove_all", "message"),
    [
        (None, False, "nothing to undeploy: give the models"),
        ([], False, "nothing to undeploy"),
        (["qwen3-8b"], True, "give undeploy_models or undeploy_all=true, not both"),
        ({"qwen3-8b": 1}, False, "undeploy_models must be a list of model names"),
        ([""], False, "undeploy_models must hold model names"),
        ([3], False, "undeploy_models must hold model names"),
        (None, "maybe", "undeploy_all must be true or false"),
    ],
)
def test_bad_requests_name_the_variable_and_the_fix(host, models, remove_all, message):
    with pytest.raises(UndeployError, match=message):
        undeploy_selection(host, models, remove_all)


def test_the_summary_names_models_that_run_nowhere(host):
    found = {"a2": undeploy_selection(host, ["qwen3-8b", "qwen3-8bb"]), "a3": undeploy_selection([], ["qwen3-8b", "qwen3-8bb"])}
    summary = undeploy_summary(found, ["qwen3-8b", "qwen3-8bb"])
    assert summary == {
        "removed": {"a2": ["npu-fleet-qwen3-8b-0", "npu-fleet-qwen3-8b-0-previous"], "a3": []},
        "containers": 2,
        "models": ["qwen3-8b"],
        "not_found": ["qwen3-8bb"],
    }
    assert undeploy_summary({"a2": undeploy_selection([], remove_all=True)}, remove_all=True)["not_found"] == []
