"""Unit tests for the npu.fleet.image_select filter plugin."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.npu.fleet.plugins.filter.image_select import FilterModule
from builders import fixture_profile

HOST = {"chips": [{"name": "910B3"}] * 8, "driver_version": "25.5.0", "cann_version": "9.1.0", "nnal_version": "9.1.0", "arch": "aarch64"}


class _OmitType:  # pylint: disable=too-few-public-methods
    """Stands in for what ansible-core 2.19 passes for ``omit`` (a class of this name)."""


@pytest.fixture(name="profile")
def _profile(tmp_path):
    return fixture_profile("Qwen__Qwen3-8B", tmp_path, dirname="q")


def _filter():
    return FilterModule().filters()["image_select"]


def test_filter_is_registered_under_its_name():
    assert sorted(FilterModule().filters()) == ["image_select"]


def test_filter_returns_the_selection(profile):
    selection = _filter()(profile, host=HOST)
    assert (selection["backend"], selection["image"]) == ("vllm", "quay.io/ascend/vllm-ascend:v0.24.0rc1")


def test_omit_means_not_given(profile):
    selection = _filter()(profile, host=HOST, image=_OmitType(), vllm_min_version=_OmitType(), overrides=_OmitType(), force=_OmitType())
    assert selection["image"] == "quay.io/ascend/vllm-ascend:v0.24.0rc1" and selection["pinned"] is False


def test_refused_pin_becomes_a_filter_error_with_the_reason(profile):
    with pytest.raises(
        AnsibleFilterError,
        match=r"^image_select: pinned image quay.io/ascend/vllm-ascend:v0.11.0rc0 is refused: "
        r"v0.11.0rc0 is older than v0.14.0rc1",
    ):
        _filter()(profile, host=HOST, image="quay.io/ascend/vllm-ascend:v0.11.0rc0")
    forced = _filter()(profile, host=HOST, image="quay.io/ascend/vllm-ascend:v0.11.0rc0", force=True)
    assert forced["image"] == "quay.io/ascend/vllm-ascend:v0.11.0rc0" and forced["forced"] is True


def test_overrides_are_applied(profile):
    selection = _filter()(profile, host=HOST, overrides={"registry": "registry.example.com:5000/ascend/vllm-ascend"})
    assert selection["image"] == "registry.example.com:5000/ascend/vllm-ascend:v0.24.0rc1"


def test_malformed_overrides_name_the_key(profile):
    with pytest.raises(
        AnsibleFilterError,
        match=r"^image_select: npu_fleet_compat_overrides: custom_images\[0\]: missing required "
        r"key 'version' for a custom image",
    ):
        _filter()(profile, host=HOST, overrides={"custom_images": [{"image": "registry.example.com/x:1"}]})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "image_select: host is required"),
        ({"host": HOST, "backend": "tgi"}, "image_select: backend must be one of auto, vllm, transformers"),
        ({"host": HOST, "force": "no"}, "image_select: force must be true or false, got 'no'"),
        ({"host": ["node1"]}, "image_select: host must be a dict"),
    ],
)
def test_bad_arguments_become_filter_errors(profile, kwargs, message):
    with pytest.raises(AnsibleFilterError) as caught:
        _filter()(profile, **kwargs)
    assert str(caught.value).startswith(message)


def test_non_profile_input_is_rejected():
    with pytest.raises(AnsibleFilterError, match="image_select: profile must be a dict"):
        _filter()("Qwen3-8B", host=HOST)
