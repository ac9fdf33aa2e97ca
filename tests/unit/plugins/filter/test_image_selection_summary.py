"""Unit tests for the npu.fleet.image_selection_summary filter and image_selection's keep_refused option."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.npu.fleet.plugins.filter.image_selection import FilterModule as SelectionFilters
from ansible_collections.npu.fleet.plugins.filter.image_selection_summary import FilterModule
from builders import fixture_profile

HOST = {"chips": [{"name": "910B3"}] * 8, "driver_version": "25.5.0", "cann_version": "9.1.0", "nnal_version": "9.1.0", "arch": "aarch64"}
QUAY = "quay.io/ascend/vllm-ascend"


def _summary():
    return FilterModule().filters()["image_selection_summary"]


def _selection():
    return SelectionFilters().filters()["image_selection"]


@pytest.fixture(name="catalogue")
def _catalogue(tmp_path):
    return [
        {"name": "qwen3-8b", "profile": fixture_profile("Qwen__Qwen3-8B", tmp_path, dirname="q")},
        {"name": "legacy", "profile": fixture_profile("Qwen__Qwen3-8B", tmp_path, dirname="l"), "image": QUAY + ":v0.11.0rc0"},
    ]


def test_filter_is_registered_under_its_name():
    assert sorted(FilterModule().filters()) == ["image_selection_summary"]


def test_a_refusal_fails_the_selection_unless_kept(catalogue):
    with pytest.raises(AnsibleFilterError, match=r"^image_selection: model legacy on npu-a2-01: pinned image .* is refused"):
        _selection()(catalogue, host=HOST, host_name="npu-a2-01")
    kept = _selection()(catalogue, host=HOST, host_name="npu-a2-01", keep_refused=True)
    assert kept["legacy"]["backend"] is None and kept["legacy"]["refused"].startswith("pinned image ")


def test_keep_refused_must_be_a_boolean(catalogue):
    with pytest.raises(AnsibleFilterError, match="image_selection: keep_refused must be true or false, got 'yes'"):
        _selection()(catalogue, host=HOST, keep_refused="yes")


def test_one_line_per_model_over_the_hosts(catalogue):
    outcome = _selection()(catalogue, host=HOST, keep_refused=True)
    lines = _summary()({"npu-a2-01": outcome, "npu-a2-02": outcome})
    assert lines[0] == "qwen3-8b: vllm quay.io/ascend/vllm-ascend:v0.24.0rc1 on npu-a2-01, npu-a2-02"
    assert lines[1].startswith("legacy: REFUSED on npu-a2-01, npu-a2-02: pinned image quay.io/ascend/vllm-ascend:v0.11.0rc0 is refused: ")
    assert len(lines) == 2


@pytest.mark.parametrize(
    "outcomes, kwargs, message",
    [
        ({}, {"limit": 0}, "image_selection_summary: limit must be a positive integer, got 0"),
        ({}, {"limit": True}, "image_selection_summary: limit must be a positive integer, got True"),
        ("npu-a2-01", {}, "image_selection_summary: outcomes must be a dict of host name to that host's image selection, got str"),
    ],
)
def test_bad_input_becomes_a_filter_error(outcomes, kwargs, message):
    with pytest.raises(AnsibleFilterError) as caught:
        _summary()(outcomes, **kwargs)
    assert str(caught.value).startswith(message)
