"""Unit tests for plugins/module_utils/_image_select.py.

Profiles come from real configs (tests/unit/fixtures/models) through
profile_model, or from a tiny checkpoint written in tmp_path; hosts are shaped
like npu_facts. Expected images and versions are written out by hand from the
release table (docs/compatibility.md), never read back from the data.
"""

import os

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._compat_data import load_matrix, read_data_file
from ansible_collections.npu.fleet.plugins.module_utils._image_select import (
    ImageSelectError,
    host_family,
    image_select,
    image_selection,
    refusal,
    selection_summary,
    transformers_build,
)
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import profile_model
from builders import field_report_host, fixture_profile
from model_checkpoints import copy_fixture, write_index, write_json

QUAY = "quay.io/ascend/vllm-ascend"

# A2 host with a current stack: every release's CANN is at most 9.1.0, the driver is new enough for all of them.
A2_CURRENT = {
    "chips": [{"name": "910B3"}] * 8,
    "npu_smi_layout": "a2",
    "driver_version": "25.5.0",
    "firmware_version": "7.8.0.2.212",
    "cann_version": "9.1.0",
    "nnal_version": "9.1.0",
    "arch": "aarch64",
}
# tests/emulator/profiles/broken-910b4.yml: CANN 8.5.0 but NNAL 8.1.RC1 (the field report's mismatch), driver 25.0.rc1.1.
A2_OLD_NNAL = {
    "chips": [{"name": "910B4"}] * 8,
    "driver_version": "25.0.rc1.1",
    "cann_version": "8.5.0",
    "nnal_version": "8.1.RC1",
    "arch": "aarch64",
}
# tests/emulator/profiles/duo-310p3-2card.yml: 2x Atlas 300I Duo, driver 24.1.0.1, CANN/NNAL 8.5.1, x86_64.
DUO_310P_OLD_DRIVER = {
    "chips": [{"name": "310P3"}] * 4,
    "npu_smi_layout": "310",
    "driver_version": "24.1.0.1",
    "cann_version": "8.5.1",
    "nnal_version": "8.5.1",
    "arch": "x86_64",
}
# The field report's host (test__host_stack.py runs it through npu_facts on the emulator): 8 x 910B4, NPUs 4-7
# busy with a foreign mindieservice_b (tests/unit/fixtures/npu-smi/info-910b4-8npu-24.1.rc2-01.txt), CANN and NNAL
# 8.0.RC1, driver 24.1.rc2 (that capture's; the issue names none).
FIELD_HOST = field_report_host()
DUO_310P_CURRENT = dict(DUO_310P_OLD_DRIVER, driver_version="25.5.0", cann_version="9.1.0", nnal_version="9.1.0")

# a2 Ubuntu releases older than v0.14.0rc1 (docs/compatibility.md, releases table).
A2_BEFORE_V0_14 = [
    "v0.13.0",
    "v0.13.0rc3",
    "v0.13.0rc2",
    "v0.13.0rc1",
    "v0.12.0rc1",
    "v0.11.0",
    "v0.11.0rc3",
    "v0.11.0rc2",
    "v0.11.0rc1",
    "v0.11.0rc0",
    "v0.10.2rc1",
    "v0.10.1rc1",
    "v0.10.0rc1",
    "v0.9.2rc1",
    "v0.9.1",
    "v0.9.1rc3",
    "v0.9.1rc2",
    "v0.9.1rc1",
    "v0.9.0rc2",
    "v0.9.0rc1",
    "v0.8.5rc1",
    "v0.8.4rc2",
    "v0.7.3.post1",
    "v0.7.3",
]
# a2 Ubuntu releases from v0.14.0rc1 on, newest first.
A2_FROM_V0_14 = [
    "v0.24.0rc1",
    "v0.23.0",
    "v0.23.0rc1",
    "v0.22.1rc1",
    "v0.21.0rc1",
    "v0.20.2rc1",
    "v0.19.1rc1",
    "v0.18.0",
    "v0.18.0rc1",
    "v0.17.0rc1",
    "v0.16.0rc1",
    "v0.15.0rc1",
    "v0.14.0rc1",
]


def _glm_ocr_profile(tmp_path):
    """A GLM-OCR-like checkpoint: 16 decoder layers in a multimodal wrapper, MTP weights at layers.16, nextn 0."""
    path = str(tmp_path / "glm-ocr")
    os.makedirs(path)
    write_json(
        os.path.join(path, "config.json"),
        {
            "architectures": ["GlmOcrForConditionalGeneration"],
            "model_type": "glm_ocr",
            "text_config": {
                "model_type": "glm_ocr_text",
                "num_hidden_layers": 16,
                "num_attention_heads": 16,
                "num_key_value_heads": 8,
                "hidden_size": 1536,
                "head_dim": 128,
                "vocab_size": 59392,
                "max_position_embeddings": 131072,
                "num_nextn_predict_layers": 0,
                "torch_dtype": "bfloat16",
            },
        },
    )
    names = ["model.language_model.layers.%d.mlp.down_proj.weight" % i for i in range(17)]
    write_index(path, dict((name, "model.safetensors") for name in names + ["model.language_model.layers.16.eh_proj.weight"]))
    return profile_model(path)


def _versions(selection):
    return [item["version"] for item in selection["rejected"]]


# --------------------------------------------------------------------------- Qwen3: the stricter minimum wins


def test_qwen3_on_a_current_a2_host_gets_the_newest_image(tmp_path):
    selection = image_select(fixture_profile("Qwen__Qwen3-8B", tmp_path), A2_CURRENT)
    assert selection["backend"] == "vllm"
    assert selection["image"] == QUAY + ":v0.24.0rc1"
    assert selection["vllm_ascend_version"] == "v0.24.0rc1"
    assert (selection["vllm_version"], selection["cann"], selection["torch_npu"]) == ("v0.24.0", "9.0.1", "2.10.0.post2")
    assert selection["chip_family"] == "a2" and selection["build"] is None


def test_qwen3_never_gets_an_image_older_than_the_field_minimum(tmp_path):
    selection = image_select(fixture_profile("jaman21__Qwen3-4B-Instruct", tmp_path), A2_CURRENT)
    assert _versions(selection) == A2_BEFORE_V0_14
    assert all(item["codes"] == ["ARCH_TOO_OLD"] for item in selection["rejected"])
    v0_11_0rc0 = selection["rejected"][A2_BEFORE_V0_14.index("v0.11.0rc0")]
    assert v0_11_0rc0["image"] == QUAY + ":v0.11.0rc0"
    assert v0_11_0rc0["reason"].startswith(
        "v0.11.0rc0 is older than v0.14.0rc1: Qwen3ForCausalLM needs vllm-ascend v0.14.0rc1 or "
        "newer - the field-reported minimum (field report"
    )
    assert "stricter than the documented v0.8.4rc2" in v0_11_0rc0["reason"]
    assert any("field-reported minimum" in reason for reason in selection["reasons"])


def test_documented_minimum_can_be_chosen_instead(tmp_path):
    # NNAL 8.2.RC1 rules out every image built on a newer CANN; only the documented minimum leaves v0.11.0rc0 (CANN 8.2.RC1).
    host = dict(A2_CURRENT, nnal_version="8.2.RC1")
    profile = fixture_profile("Qwen__Qwen3-8B", tmp_path)
    documented = image_select(profile, host, {"architecture_minimum": "documented"})
    assert documented["image"] == QUAY + ":v0.11.0rc0"
    strict = image_select(profile, host)
    assert strict["backend"] == "transformers"


def test_vllm_min_version_is_never_undercut(tmp_path):
    host = dict(A2_CURRENT, nnal_version="8.5.0")  # 8.5.0 images only: v0.14.0rc1, v0.15.0rc1
    selection = image_select(fixture_profile("Qwen__Qwen3-8B", tmp_path), host, {"vllm_min_version": "v0.15.0rc1"})
    assert selection["image"] == QUAY + ":v0.15.0rc1"
    below = [item for item in selection["rejected"] if "BELOW_MIN_VERSION" in item["codes"]]
    assert [item["version"] for item in below] == ["v0.14.0rc1"] + A2_BEFORE_V0_14
    assert below[0]["reason"] == "v0.14.0rc1 is older than vllm_min_version v0.15.0rc1"


# --------------------------------------------------------------------------- GLM-OCR: architecture and MTP layers


def test_glm_ocr_like_model_falls_back_to_transformers_with_both_reasons(tmp_path):
    profile = _glm_ocr_profile(tmp_path)
    assert profile["extra_layers"] == [16] and profile["extra_layers_prefix"] == "model.language_model.layers."
    selection = image_select(profile, A2_CURRENT)
    assert selection["backend"] == "transformers"
    assert selection["vllm_ascend_version"] is None
    assert selection["reasons"][1].startswith(
        "vLLM cannot serve it: architecture GlmOcrForConditionalGeneration is not supported "
        "by vllm-ascend: no vllm-ascend release lists GLM-OCR"
    )
    assert selection["reasons"][2].startswith(
        "vLLM cannot serve it: the weights carry layer(s) 16 beyond num_hidden_layers=16 "
        "(model.language_model.layers.16, MTP weights; num_nextn_predict_layers=0/unset"
    )
    assert "There is no module or parameter named 'model.language_model.layers.16'" in selection["reasons"][2]
    assert all(item["codes"][:2] == ["ARCH_UNSUPPORTED", "EXTRA_LAYERS"] for item in selection["rejected"])
    assert selection["image"] == "npu-fleet/transformers-server:9.1.0-910b-ubuntu22.04-py3.12"
    assert selection["build"]["base_image"] == "quay.io/ascend/cann:9.1.0-910b-ubuntu22.04-py3.12"


def test_deepseek_v3_mtp_layer_is_skipped_by_the_native_class(tmp_path):
    path = copy_fixture("deepseek-ai__DeepSeek-V3", str(tmp_path / "dsv3"))
    write_index(path, {"model.layers.0.mlp.weight": "a.safetensors", "model.layers.61.eh_proj.weight": "a.safetensors"})
    profile = profile_model(path)
    assert profile["extra_layers"] == [61] and profile["mtp_layers"] == 1
    selection = image_select(profile, A2_CURRENT)
    assert selection["backend"] == "vllm" and selection["image"] == QUAY + ":v0.24.0rc1"
    assert not any("EXTRA_LAYERS" in item["codes"] for item in selection["rejected"])


def test_mtp_layers_break_a_class_without_the_skip(tmp_path):
    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / "q"))  # 36 layers
    write_index(path, {"model.layers.0.mlp.weight": "a.safetensors", "model.layers.36.eh_proj.weight": "a.safetensors"})
    selection = image_select(profile_model(path), A2_CURRENT)
    assert selection["backend"] == "transformers"
    assert "the weights carry layer(s) 36 beyond num_hidden_layers=36" in selection["reasons"][1]


# --------------------------------------------------------------------------- host NNAL and driver


def test_host_nnal_older_than_every_candidate_falls_back_with_the_nnal_reason(tmp_path):
    selection = image_select(fixture_profile("Qwen__Qwen3-8B", tmp_path), A2_OLD_NNAL)
    assert selection["backend"] == "transformers"
    assert selection["reasons"][1].startswith(
        "the host's driver/NNAL cannot run any image that supports the model: the newest such image, "
        "quay.io/ascend/vllm-ascend:v0.24.0rc1, is rejected because host NNAL 8.1.RC1 is older than CANN 9.0.1 in v0.24.0rc1: "
        "ATB fails with `libatb.so: undefined symbol`"
    )
    assert selection["reasons"][1].endswith("(13 image(s) fail only on the host stack).")
    newer = [item for item in selection["rejected"] if item["version"] in A2_FROM_V0_14]
    assert [item["version"] for item in newer] == A2_FROM_V0_14
    assert all("NNAL_OLDER" in item["codes"] for item in newer)
    # v0.23.0 carries CANN 9.1.0, which does not run on HDK 25.0.x: both host reasons are kept.
    assert newer[1]["codes"] == ["DRIVER_TOO_OLD", "NNAL_OLDER"]
    assert selection["build"] == {
        "base_image": "quay.io/ascend/cann:8.5.0-910b-ubuntu22.04-py3.11",
        "image": "npu-fleet/transformers-server:8.5.0-910b-ubuntu22.04-py3.11",
        "tag": "8.5.0-910b-ubuntu22.04-py3.11",
        "cann": "8.5.0",
        "chip": "910b",
        "os": "ubuntu22.04",
        "python": "3.11",
        "torch": "2.9.0",
        "torch_npu": "2.9.0",
        # Ascend/pytorch COMPATIBILITY.en.md @ b48e6481: | 2.9.0 | v2.9.0-7.3.0 | 2.9.0 | CANN 8.5.0 |
        "torch_source": "Ascend/pytorch COMPATIBILITY.en.md: torch_npu 2.9.0 for CANN 8.5.0 (branch v2.9.0-7.3.0)",
    }


def test_host_only_rejections_carry_the_host_fix_preflight_accepts(tmp_path):
    selection = image_select(fixture_profile("Qwen__Qwen3-8B", tmp_path), A2_OLD_NNAL)
    by_version = dict((item["version"], item) for item in selection["rejected"])
    # CANN 9.0.1 is newer than the host's 8.5.0: toolkit and NNAL together, never NNAL alone.
    assert by_version["v0.24.0rc1"]["fix"] == {"cann_version": "9.0.1", "nnal_version": "9.0.1"}
    assert by_version["v0.23.0"]["fix"] == {"driver_version": "25.2", "cann_version": "9.1.0", "nnal_version": "9.1.0"}
    # CANN 8.5.0 is the host's own: NNAL of that release is enough.
    assert by_version["v0.15.0rc1"]["fix"] == {"nnal_version": "8.5.0"}
    assert by_version["v0.24.0rc1"]["reason"].endswith(
        "for this image install Ascend-cann-toolkit (with its kernels) and Ascend-cann-nnal 9.0.1 together "
        "(one release, as preflight requires: NNAL_CANN_MISMATCH)"
    )
    # Rejected for the model as well: no host change makes it run.
    assert "fix" not in by_version["v0.13.0"]
    assert selection["reasons"][2].endswith(
        "or keep the CANN toolkit and install Ascend-cann-nnal 8.5.0, the release of the host's "
        "CANN 8.5.0 (then quay.io/ascend/vllm-ascend:v0.15.0rc1 runs)."
    )
    assert selection["warnings"][0].startswith("preflight refuses this host (NNAL_CANN_MISMATCH): NNAL 8.1.RC1 is older than CANN 8.5.0")


def test_same_release_nnal_builds_pass(tmp_path):
    host = dict(A2_CURRENT, nnal_version="8.5.0.B110", driver_version="25.0.rc1.1")
    selection = image_select(fixture_profile("Qwen__Qwen3-8B", tmp_path), host)
    assert selection["image"] == QUAY + ":v0.15.0rc1"


def test_host_without_nnal_is_not_held_back(tmp_path):
    host = dict(A2_CURRENT, nnal_version=None, driver_version="25.0.rc1.1")
    selection = image_select(fixture_profile("Qwen__Qwen3-8B", tmp_path), host)
    # v0.23.0 (CANN 9.1.0) needs HDK 25.2 or newer; v0.24.0rc1 (CANN 9.0.1) runs on 25.0.x.
    assert selection["image"] == QUAY + ":v0.24.0rc1"


def test_v0_18_0_is_refused_on_x86(tmp_path):
    host = dict(A2_CURRENT, arch="x86_64")
    selection = image_select(fixture_profile("Qwen__Qwen3-8B", tmp_path), host, {"vllm_min_version": "v0.18.0"})
    v0_18 = [item for item in selection["rejected"] if item["version"] == "v0.18.0"][0]
    assert v0_18["codes"] == ["PLATFORM"] and "#7993" in v0_18["reason"]


# --------------------------------------------------------------------------- pins


def test_pinned_too_old_image_is_refused_with_the_reason(tmp_path):
    profile = fixture_profile("Qwen__Qwen3-8B", tmp_path)
    with pytest.raises(ImageSelectError) as caught:
        image_select(profile, A2_CURRENT, {"image": QUAY + ":v0.11.0rc0"})
    assert str(caught.value).startswith(
        "pinned image quay.io/ascend/vllm-ascend:v0.11.0rc0 is refused: v0.11.0rc0 is older than "
        "v0.14.0rc1: Qwen3ForCausalLM needs vllm-ascend v0.14.0rc1 or newer"
    )
    assert caught.value.rejected[0]["codes"] == ["ARCH_TOO_OLD"]


def test_pinned_too_old_image_is_used_with_force(tmp_path):
    selection = image_select(fixture_profile("Qwen__Qwen3-8B", tmp_path), A2_CURRENT, {"image": QUAY + ":v0.11.0rc0", "force": True})
    assert (selection["backend"], selection["image"], selection["vllm_ascend_version"]) == ("vllm", QUAY + ":v0.11.0rc0", "v0.11.0rc0")
    assert selection["pinned"] is True and selection["forced"] is True
    assert selection["warnings"][0].startswith(
        "pinned image quay.io/ascend/vllm-ascend:v0.11.0rc0 breaks the rules and is used "
        "because force is true: v0.11.0rc0 is older than v0.14.0rc1"
    )
    assert selection["rejected"][0]["codes"] == ["ARCH_TOO_OLD"]


def test_pin_older_than_vllm_min_version_is_refused_even_with_force(tmp_path):
    with pytest.raises(ImageSelectError, match="contradicts vllm_min_version: v0.11.0rc0 is older than vllm_min_version v0.14.0rc1"):
        image_select(
            fixture_profile("Qwen__Qwen3-8B", tmp_path),
            A2_CURRENT,
            {"image": QUAY + ":v0.11.0rc0", "force": True, "vllm_min_version": "v0.14.0rc1"},
        )


def test_pin_by_bare_tag_and_through_a_mirror(tmp_path):
    profile = fixture_profile("Qwen__Qwen3-8B", tmp_path)
    bare = image_select(profile, A2_CURRENT, {"image": "v0.15.0rc1"})
    assert bare["image"] == QUAY + ":v0.15.0rc1" and bare["warnings"] == []
    mirror = "m.daocloud.io/quay.io/ascend/vllm-ascend:v0.15.0rc1-openeuler"
    mirrored = image_select(profile, A2_CURRENT, {"image": mirror})
    assert (mirrored["image"], mirrored["vllm_ascend_version"], mirrored["cann"]) == (mirror, "v0.15.0rc1", "8.5.0")


def test_pin_for_another_chip_family_is_refused(tmp_path):
    with pytest.raises(ImageSelectError, match="the image is built for a3 chips, the host has a2"):
        image_select(fixture_profile("Qwen__Qwen3-8B", tmp_path), A2_CURRENT, {"image": QUAY + ":v0.15.0rc1-a3"})


def test_unknown_pin_needs_force(tmp_path):
    profile = fixture_profile("Qwen__Qwen3-8B", tmp_path)
    with pytest.raises(ImageSelectError, match="pinned image registry.example.com/team/server:1 is not in the compatibility data"):
        image_select(profile, A2_CURRENT, {"image": "registry.example.com/team/server:1"})
    forced = image_select(profile, A2_CURRENT, {"image": "registry.example.com/team/server:1", "force": True})
    assert forced["image"] == "registry.example.com/team/server:1" and forced["vllm_ascend_version"] is None
    assert "used unchecked because force is true" in forced["warnings"][0]


# --------------------------------------------------------------------------- 310P


def test_310p_host_gets_a_310p_image(tmp_path):
    selection = image_select(fixture_profile("Qwen__Qwen3-8B", tmp_path), DUO_310P_CURRENT)
    assert selection["chip_family"] == "310p"
    assert selection["image"] == QUAY + ":v0.24.0rc1-310p"
    assert selection["cann"] == "9.1.0-beta.1"
    assert all(item["image"].endswith("-310p") for item in selection["rejected"])


def test_310p_host_with_an_old_driver_gets_a_clear_no_image_reason(tmp_path):
    selection = image_select(fixture_profile("Qwen__Qwen3-8B", tmp_path), DUO_310P_OLD_DRIVER)
    assert selection["backend"] == "transformers"
    assert selection["reasons"][0].startswith("chip family 310p (Atlas 300I Duo / 300I inference cards (310P)) from chip(s) 310P3")
    assert selection["reasons"][1].startswith(
        "the host's driver/NNAL cannot run any image that supports the model: the newest such image, "
        "quay.io/ascend/vllm-ascend:v0.24.0rc1-310p, is rejected because host driver 24.1.0.1 is older than 25.2, the oldest "
        "Ascend HDK that CANN 9.1.0-beta.1 (in v0.24.0rc1) supports"
    )
    assert selection["build"]["base_image"] == "quay.io/ascend/cann:8.5.1-310p-ubuntu22.04-py3.11"


def test_310p_gap_and_moe_minimum(tmp_path):
    moe = fixture_profile("Qwen__Qwen3-30B-A3B", tmp_path)
    with pytest.raises(ImageSelectError) as caught:
        image_select(moe, DUO_310P_CURRENT, {"image": QUAY + ":v0.14.0rc1-310p"})
    assert "v0.14.0rc1 is older than v0.15.0rc1, the first release that runs Qwen3MoeForCausalLM on 310p" in str(caught.value)
    with pytest.raises(ImageSelectError, match="v0.12.0rc1 on 310p: 310P support was dropped from v0.11.0rc0"):
        image_select(fixture_profile("Qwen__Qwen2.5-7B-Instruct", tmp_path), DUO_310P_CURRENT, {"image": QUAY + ":v0.12.0rc1-310p"})


# --------------------------------------------------------------------------- families and backends


@pytest.mark.parametrize(
    "host, family",
    [
        ({"chips": [{"name": "910B4"}]}, "a2"),
        ({"chips": [{"name": "910B2C"}]}, "a2"),
        ({"chips": [{"name": "Ascend910"}], "npu_smi_layout": "a3"}, "a3"),
        ({"chips": [{"name": "Ascend910"}]}, "a3"),
        ({"chips": [{"name": "310P3"}]}, "310p"),
        ({"chips": [{"name": "Ascend950PR"}], "npu_smi_layout": "a5"}, "a5"),
        ({"chips": [{"name": "910A"}]}, "910"),
        ({"chips": [{"name": "310B4"}]}, "310b"),
        ({"chip_family": "a3"}, "a3"),
        ({"chips": [{"name": "Atlas9000"}]}, None),
    ],
)
def test_chip_family_of_the_host(host, family):
    assert host_family(host, load_matrix())[0] == family


def test_mixed_hosts_must_name_their_family():
    with pytest.raises(ValueError, match="host has chips of several families"):
        host_family({"chips": [{"name": "910B4"}, {"name": "310P3"}]}, load_matrix())


def test_first_generation_910_has_no_backend(tmp_path):
    with pytest.raises(ImageSelectError, match="no backend can serve this host: chip family 910 has no CANN container image"):
        image_select(fixture_profile("Qwen__Qwen3-8B", tmp_path), {"chips": [{"name": "910A"}], "cann_version": "8.0.0"})


def test_backend_vllm_fails_when_nothing_fits(tmp_path):
    with pytest.raises(ImageSelectError) as caught:
        image_select(_glm_ocr_profile(tmp_path), A2_CURRENT, {"backend": "vllm"})
    assert str(caught.value).startswith(
        "backend vllm was requested but no vLLM image fits: vLLM cannot serve it: architecture "
        "GlmOcrForConditionalGeneration is not supported"
    )
    assert len(caught.value.rejected) == 37


def test_backend_transformers_skips_vllm(tmp_path):
    selection = image_select(fixture_profile("Qwen__Qwen3-8B", tmp_path), A2_OLD_NNAL, {"backend": "transformers"})
    assert selection["backend"] == "transformers" and selection["rejected"] == []
    assert selection["reasons"][1] == "backend transformers was requested; vLLM images were not considered."
    named = image_select(
        fixture_profile("Qwen__Qwen3-8B", tmp_path),
        A2_OLD_NNAL,
        {"backend": "transformers", "image": "registry.example.com/npu/tf-server:1"},
    )
    assert named["image"] == named["build"]["image"] == "registry.example.com/npu/tf-server:1"
    assert named["build"]["base_image"] == "quay.io/ascend/cann:8.5.0-910b-ubuntu22.04-py3.11"


def test_openeuler_images(tmp_path):
    selection = image_select(fixture_profile("Qwen__Qwen3-8B", tmp_path), A2_CURRENT, {"os": "openeuler"})
    assert selection["image"] == QUAY + ":v0.24.0rc1-openeuler"


def test_unlisted_architecture_goes_to_transformers(tmp_path):
    selection = image_select(fixture_profile("Nanbeige__Nanbeige4.2-3B", tmp_path), A2_CURRENT)
    assert selection["backend"] == "transformers"
    assert selection["reasons"][1].startswith(
        "vLLM cannot serve it: architecture NanbeigeForCausalLM is not listed by any vllm-ascend release"
    )


def test_same_inputs_give_the_same_answer(tmp_path):
    profile = fixture_profile("mistralai__Mixtral-8x7B-v0.1", tmp_path)
    assert image_select(profile, A2_CURRENT) == image_select(profile, A2_CURRENT)


# --------------------------------------------------------------------------- overrides


def test_overrides_point_at_a_private_registry(tmp_path):
    matrix = load_matrix({"registry": "registry.example.com:5000/ascend/vllm-ascend"})
    selection = image_select(fixture_profile("Qwen__Qwen3-8B", tmp_path), A2_CURRENT, matrix=matrix)
    assert selection["image"] == "registry.example.com:5000/ascend/vllm-ascend:v0.24.0rc1"


def test_overrides_add_an_in_house_image(tmp_path):
    in_house = "registry.example.com:5000/team/vllm-ascend:v0.14.0rc1-nanbeige"
    matrix = load_matrix(
        {
            "custom_images": [
                {
                    "image": in_house,
                    "version": "v0.14.0rc1",
                    "family": "a2",
                    "cann": "8.5.0",
                    "architectures": ["NanbeigeForCausalLM"],
                    "source": "in-house build, tested 2026-03",
                }
            ]
        }
    )
    selection = image_select(fixture_profile("Nanbeige__Nanbeige4.2-3B", tmp_path), A2_CURRENT, matrix=matrix)
    assert (selection["backend"], selection["image"], selection["vllm_ascend_version"]) == ("vllm", in_house, "v0.14.0rc1")
    assert "in-house build, tested 2026-03" in selection["reasons"][1]


def test_overrides_add_an_architecture_and_retire_a_release(tmp_path):
    matrix = load_matrix(
        {
            "architectures": {"NanbeigeForCausalLM": {"min_version": "v0.14.0rc1", "source": "in-house test"}},
            "releases": {"v0.24.0rc1": {"disabled": True}},
        }
    )
    selection = image_select(fixture_profile("Nanbeige__Nanbeige4.2-3B", tmp_path), A2_CURRENT, matrix=matrix)
    assert selection["image"] == QUAY + ":v0.23.0"


# --------------------------------------------------------------------------- inputs


@pytest.mark.parametrize(
    "wishes, message",
    [
        ({"backend": "sglang"}, "backend must be one of auto, vllm, transformers, got 'sglang'"),
        ({"vllm_min_version": "latest"}, "vllm_min_version: not a vllm-ascend version: 'latest'"),
        ({"force": "yes"}, "force must be true or false, got 'yes'"),
        ({"os": "debian"}, "os must be one of openeuler, ubuntu, got 'debian'"),
        ({"architecture_minimum": "loose"}, "architecture_minimum must be one of strict, documented"),
        ({"imgae": "x"}, "unknown wish(es) imgae"),
    ],
)
def test_bad_wishes_are_refused(tmp_path, wishes, message):
    with pytest.raises(ValueError) as caught:
        image_select(fixture_profile("Qwen__Qwen3-8B", tmp_path), A2_CURRENT, wishes)
    assert str(caught.value).startswith(message)


def test_inputs_must_be_dicts():
    with pytest.raises(ValueError, match="profile must be a dict"):
        image_select("Qwen3-8B", A2_CURRENT)
    with pytest.raises(ValueError, match="host must be a dict"):
        image_select({}, "node1")


# --------------------------------------------------------------------------- Transformers build arguments


def _known_pairs(data):
    """Every (torch, torch_npu) the data names: Ascend's per-CANN pairs and the vllm-ascend release rows."""
    pairs = set((pair["torch"], pair["torch_npu"]) for rows in data["torch_npu"]["pairs"].values() for pair in rows)
    return pairs | set((row["torch"], row["torch_npu"]) for row in data["releases"].values() if row.get("torch"))


def test_field_host_transformers_fallback_gets_complete_build_args(tmp_path):
    selection = image_select(fixture_profile("jaman21__Qwen3-4B-Instruct", tmp_path), FIELD_HOST)
    assert selection["backend"] == "transformers"
    # Ascend/pytorch COMPATIBILITY.en.md @ b48e6481: | 2.2.0 | v2.2.0-6.0.rc1 | 2.2.0 | CANN 8.0.RC1 |; PyTorch 2.2.0 runs on
    # Python 3.8 to 3.10; the only quay.io/ascend/cann 8.0.RC1 base is 8.0.rc1-910b-ubuntu22.04-py3.8 (openmerlin arg.json).
    assert selection["build"] == {
        "base_image": "quay.io/ascend/cann:8.0.rc1-910b-ubuntu22.04-py3.8",
        "image": "npu-fleet/transformers-server:8.0.rc1-910b-ubuntu22.04-py3.8",
        "tag": "8.0.rc1-910b-ubuntu22.04-py3.8",
        "cann": "8.0.RC1",
        "chip": "910b",
        "os": "ubuntu22.04",
        "python": "3.8",
        "torch": "2.2.0",
        "torch_npu": "2.2.0",
        "torch_source": "Ascend/pytorch COMPATIBILITY.en.md: torch_npu 2.2.0 for CANN 8.0.RC1 (branch v2.2.0-6.0.rc1)",
    }
    # Python 3.8 is below what transformers>=4.51 installs on: said here, before the Dockerfile stops on it.
    assert any(
        w.startswith("the CANN 8.0.RC1 base has Python 3.8 and the Transformers server needs 3.9 or newer") for w in selection["warnings"]
    )
    assert not any("no torch/torch_npu pair" in w for w in selection["warnings"])


@pytest.mark.parametrize("cann", list(read_data_file()["cann"]))
def test_every_cann_base_row_yields_a_torch_pair_of_the_data(cann):
    data = load_matrix()
    for family, row in data["hardware"].items():
        base_chips = data["cann"][cann].get("base_chips")
        if not row.get("cann_chip") or (base_chips and row["cann_chip"] not in base_chips):
            continue
        warnings = []
        build = transformers_build({"chip_family": family, "cann_version": cann}, family, data, warnings)
        assert build["cann"] == cann and build["base_image"].startswith("quay.io/ascend/cann:%s-" % cann.lower())
        assert build["torch"] and build["torch_npu"], (cann, family, warnings)
        assert (build["torch"], build["torch_npu"]) in _known_pairs(data), (cann, build)
        # pip takes it from PyPI: no dev or local build, and its torch runs on the base's Python.
        assert ".dev" not in build["torch_npu"] and "+" not in build["torch_npu"], (cann, build)
        assert build["python"] in data["torch_npu"]["python"][build["torch"]], (cann, build)


@pytest.mark.parametrize(
    "cann, pair",
    [
        # vllm-ascend v0.11.0rc0 used 2.7.1.dev20250724 and v0.9.2rc1 2.5.1.post1.dev20250619: not on PyPI.
        ("8.2.RC1", ("2.6.0", "2.6.0")),
        ("8.1.RC1", ("2.5.1", "2.5.1")),
        # Not in Ascend's table: the newest vllm-ascend release on that CANN (any image variant).
        ("8.3.RC2", ("2.8.0", "2.8.0")),
        ("8.5.1", ("2.9.0", "2.9.0")),
        ("9.0.1", ("2.10.0", "2.10.0.post2")),
        ("9.1.0-beta.1", ("2.10.0", "2.10.0.post2")),
        ("9.1.0", ("2.12.0", "2.12.0")),
    ],
)
def test_torch_pairs_are_installable_from_pypi(cann, pair):
    build = transformers_build({"cann_version": cann}, "a2" if cann != "9.1.0-beta.1" else "310p", load_matrix(), [])
    assert (build["torch"], build["torch_npu"]) == pair


def test_local_torch_npu_builds_and_retired_releases_are_skipped():
    # v0.19.1rc1 with a local build, then v0.18.0's own 2.9.0.post1+git4c901a4: neither is on PyPI.
    matrix = load_matrix({"releases": {"v0.19.1rc1": {"torch_npu": "2.9.0+local"}}})
    build = transformers_build({"cann_version": "8.5.1"}, "a2", matrix, [])
    assert (build["torch"], build["torch_npu"], build["torch_source"]) == ("2.9.0", "2.9.0", "vllm-ascend v0.18.0rc1 (built on CANN 8.5.1)")
    matrix = load_matrix({"releases": {"v0.24.0rc1": {"disabled": True}}})
    build = transformers_build({"cann_version": "9.0.1"}, "a2", matrix, [])
    assert build["torch_source"] == "vllm-ascend v0.23.0rc1 (built on CANN 9.0.1)"


def test_unknown_cann_and_missing_base_chips_are_named():
    warnings = []
    build = transformers_build({"cann_version": "7.0.0"}, "a2", load_matrix(), warnings)
    assert build["torch"] is None and build["torch_npu"] is None
    assert warnings[0] == "the compatibility data has no CANN 7.0.0 row; check that the base image exists"
    assert warnings[1].startswith("no torch/torch_npu pair is known for CANN 7.0.0 with Python 3.11, so the server image cannot be built")
    warnings = []
    transformers_build({"cann_version": "8.0.RC3"}, "310p", load_matrix(), warnings)
    assert warnings[0].startswith("the CANN 8.0.RC3 base image is published for 910b chips only, not 310p")


# --------------------------------------------------------------------------- the catalogue on one host, refusals kept


def _catalogue(tmp_path):
    return [
        {"name": "qwen3-8b", "profile": fixture_profile("Qwen__Qwen3-8B", tmp_path, dirname="q")},
        {"name": "legacy", "profile": fixture_profile("Qwen__Qwen3-8B", tmp_path, dirname="l"), "image": QUAY + ":v0.11.0rc0"},
    ]


def test_a_refused_entry_raises_with_the_model_and_the_host(tmp_path):
    with pytest.raises(
        ImageSelectError, match=r"^model legacy on npu-a2-01: pinned image quay.io/ascend/vllm-ascend:v0.11.0rc0 is refused"
    ):
        image_selection(_catalogue(tmp_path), A2_CURRENT, host_name="npu-a2-01")


def test_keep_refused_keeps_every_model_with_its_reason(tmp_path):
    selection = image_selection(_catalogue(tmp_path), A2_CURRENT, host_name="npu-a2-01", keep_refused=True)
    assert list(selection) == ["qwen3-8b", "legacy"]
    assert selection["qwen3-8b"]["image"] == QUAY + ":v0.24.0rc1" and "refused" not in selection["qwen3-8b"]
    legacy = selection["legacy"]
    assert (legacy["backend"], legacy["image"]) == (None, None)
    assert legacy["refused"].startswith(
        "pinned image quay.io/ascend/vllm-ascend:v0.11.0rc0 is refused: v0.11.0rc0 is older than v0.14.0rc1"
    )
    assert legacy["rejected"][0]["codes"] == ["ARCH_TOO_OLD"]


# --------------------------------------------------------------------------- the summary a person reads


def _vllm(image, warnings=()):
    return {"backend": "vllm", "image": image, "reasons": ["chip family a2 (...).", "selected %s." % image], "warnings": list(warnings)}


def _transformers(image, why):
    return {
        "backend": "transformers",
        "image": image,
        "reasons": ["chip family a2 (...).", why, "backend transformers: ..."],
        "warnings": [],
    }


def test_summary_is_one_line_per_model_grouping_hosts():
    lines = selection_summary(
        {
            "npu-a2-01": {"qwen3-8b": _vllm(QUAY + ":v0.24.0rc1"), "glm-ocr": _transformers("npu-fleet/tf:1", "vLLM cannot serve it: X.")},
            "npu-a2-02": {
                "qwen3-8b": _vllm(QUAY + ":v0.24.0rc1", ["w1", "w2"]),
                "glm-ocr": _transformers("npu-fleet/tf:1", "vLLM cannot serve it: X."),
            },
            "npu-a3-01": {
                "qwen3-8b": _vllm(QUAY + ":v0.24.0rc1-a3"),
                "glm-ocr": refusal("backend vllm was requested but no vLLM image fits: Y."),
            },
        }
    )
    assert lines == [
        "qwen3-8b: vllm quay.io/ascend/vllm-ascend:v0.24.0rc1 on npu-a2-01, npu-a2-02 [2 warning(s), -v shows them]; "
        "vllm quay.io/ascend/vllm-ascend:v0.24.0rc1-a3 on npu-a3-01",
        "glm-ocr: transformers npu-fleet/tf:1 on npu-a2-01, npu-a2-02 (vLLM cannot serve it: X); "
        "REFUSED on npu-a3-01: backend vllm was requested but no vLLM image fits: Y.",
    ]


def test_summary_tells_fallbacks_with_different_reasons_apart():
    lines = selection_summary(
        {
            "a": {"m": _transformers("tf:1", "vLLM cannot serve it: architecture Z is not supported.")},
            "b": {"m": _transformers("tf:1", "the host's driver/NNAL cannot run any image that supports the model: ...")},
        }
    )
    assert lines == [
        "m: transformers tf:1 on a (vLLM cannot serve it: architecture Z is not supported); "
        "transformers tf:1 on b (the host's driver/NNAL cannot run any image that supports the model: ...)"
    ]


def test_summary_counts_hosts_past_the_limit():
    outcomes = {"npu-%02d" % index: {"m": _vllm("img:1")} for index in range(1, 9)}
    assert selection_summary(outcomes, limit=3) == ["m: vllm img:1 on npu-01, npu-02, npu-03 and 5 more"]


def test_summary_of_a_real_selection(tmp_path):
    outcome = image_selection(_catalogue(tmp_path), A2_CURRENT, keep_refused=True)
    fallback = image_selection([{"name": "glm-ocr", "profile": _glm_ocr_profile(tmp_path)}], A2_CURRENT)
    lines = selection_summary({"npu-a2-01": dict(outcome, **fallback)})
    assert lines[0] == "qwen3-8b: vllm quay.io/ascend/vllm-ascend:v0.24.0rc1 on npu-a2-01"
    assert lines[1].startswith("legacy: REFUSED on npu-a2-01: pinned image quay.io/ascend/vllm-ascend:v0.11.0rc0 is refused: ")
    assert (
        lines[2].startswith("glm-ocr: transformers ")
        and " on npu-a2-01 (vLLM cannot serve it: architecture GlmOcrForConditionalGeneration" in lines[2]
    )


def test_summary_without_models_says_so():
    assert selection_summary({}) == ["no models to select images for"]
    assert selection_summary({"npu-a2-01": {}}) == ["no models to select images for"]


@pytest.mark.parametrize(
    "outcomes, message",
    [
        (["npu-a2-01"], "outcomes must be a dict of host name to that host's image selection, got list"),
        ({"h": ["m"]}, r"outcomes\[h\] must be a dict of model name to its selection, got list"),
        ({"h": {"m": "vllm"}}, r"outcomes\[h\]\[m\] must be a selection \(a dict\), got str"),
    ],
)
def test_summary_input_must_be_shaped_like_selections(outcomes, message):
    with pytest.raises(ValueError, match=message):
        selection_summary(outcomes)


def test_summary_leaves_sources_and_further_clauses_to_the_detailed_view():
    why = (
        "the host's driver/NNAL cannot run any image that supports the model: the newest such image, img:2, is rejected "
        "because host driver 24.1.0.1 is older than 25.2, the oldest HDK that CANN 9.1.0 (in v0.24.0rc1) supports "
        "(CANN 9.1.0 release notes (hiascend.com, 'Compatibility'): 9.1.X not on 25.0.X); host NNAL 8.5.1 is older."
    )
    lines = selection_summary(
        {"h": {"m": _transformers("tf:1", why), "p": refusal("pinned image x is refused: too old (a long source, with its date, 2026).")}}
    )
    assert lines == [
        "m: transformers tf:1 on h (the host's driver/NNAL cannot run any image that supports the model: the newest such "
        "image, img:2, is rejected because host driver 24.1.0.1 is older than 25.2, the oldest HDK that CANN 9.1.0 "
        "(in v0.24.0rc1) supports ...)",
        "p: REFUSED on h: pinned image x is refused: too old.",
    ]
