"""Unit tests for the npu.fleet.kv_fit filter plugin."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.npu.fleet.plugins.filter.kv_fit import FilterModule
from builders import fixture_profile

GiB = 2**30


@pytest.fixture(name="profile")
def _profile(tmp_path):
    return fixture_profile("jaman21__Qwen3-4B-Instruct", tmp_path, total_size=8_000_000_000, shard="model.safetensors", dirname="q")


def _filter():
    return FilterModule().filters()["kv_fit"]


def test_filter_is_registered_under_its_name():
    assert sorted(FilterModule().filters()) == ["kv_fit"]


def test_filter_returns_the_fit(profile):
    fit = _filter()(
        profile, chip_memory_mb=32768, tensor_parallel_size=1, gpu_memory_utilization=0.9, max_model_len=262144, reserve_bytes=2 * GiB
    )
    # (32 - 3) GiB x 0.9 - 8e9 weights - 2 GiB reserve = 17877177958 bytes; 36 x 128 x 4096 bytes per block.
    assert fit["verdict"] == "capped"
    assert fit["recommended_max_model_len"] == (17877177958 // (36 * 128 * 4096)) * 128 == 121216


def test_value_errors_become_filter_errors(profile):
    with pytest.raises(AnsibleFilterError, match="kv_fit: gpu_memory_utilization must be in"):
        _filter()(profile, chip_memory_mb=32768, gpu_memory_utilization=2)


def test_unknown_option_becomes_a_filter_error(profile):
    with pytest.raises(AnsibleFilterError, match="unexpected keyword argument 'chip_mem'"):
        _filter()(profile, chip_mem=32768)


def test_non_profile_input_is_rejected():
    with pytest.raises(AnsibleFilterError, match="profile must be a dict"):
        _filter()("Qwen3-4B", chip_memory_mb=32768)
