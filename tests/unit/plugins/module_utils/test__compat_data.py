"""Unit tests for plugins/module_utils/_compat_data.py and the shipped _compat_matrix.json.

Expected values are copied by hand from the sources the data names (vllm-ascend
versioning_policy.md, Dockerfiles and supported_models.md at the tags, CANN
release notes), not read back from the data.
"""

import copy

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._compat_data import (
    CompatDataError,
    SCHEMA_VERSION,
    VllmVersionError,
    compare_vllm_versions,
    load_matrix,
    merge_overrides,
    read_data_file,
    validate_matrix,
    vllm_version_key,
)

# --------------------------------------------------------------------------- vllm-ascend versions


def test_vllm_versions_order_rc_final_post_and_numbers():
    ordered = [
        "v0.7.3rc1",
        "v0.7.3rc2",
        "v0.7.3",
        "v0.7.3.post1",
        "v0.8.4rc2",
        "v0.9.1rc3",
        "v0.9.1",
        "v0.9.2rc1",
        "v0.10.0rc1",
        "v0.11.0rc0",
        "v0.11.0rc1",
        "v0.11.0",
        "v0.13.0rc3",
        "v0.13.0",
        "v0.14.0rc1",
    ]
    assert sorted(reversed(ordered), key=vllm_version_key) == ordered


def test_vllm_version_comparison_is_numeric_and_ignores_the_v():
    assert compare_vllm_versions("v0.10.0rc1", "v0.9.2rc1") == 1
    assert compare_vllm_versions("0.14.0rc1", "v0.14.0rc1") == 0
    assert compare_vllm_versions("v0.11.0rc0", "v0.11.0rc1") == -1


@pytest.mark.parametrize("bad", ["latest", "v0.14", "v0.14.0-rc1", "main-a3", "", None, "v1.2.3beta1"])
def test_non_versions_are_refused(bad):
    with pytest.raises(VllmVersionError, match="not a vllm-ascend version"):
        vllm_version_key(bad)


# --------------------------------------------------------------------------- the shipped data


def test_shipped_data_is_schema_1_and_valid():
    data = read_data_file()
    assert data["schema_version"] == SCHEMA_VERSION == 1
    validate_matrix(data)


def test_every_row_names_a_source():
    data = read_data_file()
    rows = (
        list(data["releases"].values())
        + list(data["architectures"].values())
        + list(data["hardware"].values())
        + list(data["cann"].values())
        + [data["transformers"]]
    )
    assert rows and all(isinstance(row.get("source"), str) and len(row["source"]) > 10 for row in rows)
    for row in data["architectures"].values():
        if row.get("field_min_version"):
            assert "field report" in row["field_source"]


def test_release_rows_match_the_versioning_policy_and_dockerfiles():
    releases = read_data_file()["releases"]
    # versioning_policy.md @ 182b75ea: | v0.14.0rc1 | v0.14.1 | >= 3.10, < 3.12 | 8.5.0 | 2.9.0 / 2.9.0 |
    assert {k: releases["v0.14.0rc1"][k] for k in ("vllm", "cann", "torch", "torch_npu", "date")} == {
        "vllm": "v0.14.1",
        "cann": "8.5.0",
        "torch": "2.9.0",
        "torch_npu": "2.9.0",
        "date": "2026-01-26",
    }
    # | v0.11.0rc0 | v0.11.0rc3 | ... | 8.2.RC1 | 2.7.1 / 2.7.1.dev20250724 |
    assert releases["v0.11.0rc0"]["cann"] == "8.2.RC1" and releases["v0.11.0rc0"]["torch_npu"] == "2.7.1.dev20250724"
    # Dockerfile @ v0.14.0rc1: FROM quay.io/ascend/cann:8.5.0-910b-ubuntu22.04-py3.11
    assert releases["v0.14.0rc1"]["images"]["a2"]["base"] == "quay.io/ascend/cann:8.5.0-910b-ubuntu22.04-py3.11"
    # Dockerfile.310p @ v0.23.0rc1: FROM quay.io/ascend/cann:9.1.0-beta.1-310p-ubuntu22.04-py3.12
    assert releases["v0.23.0rc1"]["images"]["310p"]["cann"] == "9.1.0-beta.1"
    # No Dockerfile.a3 before v0.10.0rc1, no Dockerfile.a5 before v0.21.0rc1, no Dockerfile.310p at v0.9.1 final.
    assert "a3" not in releases["v0.9.2rc1"]["images"] and "a3" in releases["v0.10.0rc1"]["images"]
    assert "a5" not in releases["v0.20.2rc1"]["images"] and "a5" in releases["v0.21.0rc1"]["images"]
    assert "310p" not in releases["v0.9.1"]["images"] and "310p" in releases["v0.9.1rc1"]["images"]
    # installation.md @ v0.7.3: "Firmware: Ascend HDK >= 24.1RC1"
    assert releases["v0.7.3"]["min_driver"] == "24.1.RC1"


def test_310p_gap_between_v0_11_0rc0_and_v0_14_0rc1_is_recorded():
    releases = read_data_file()["releases"]
    gap = [
        "v0.11.0rc0",
        "v0.11.0rc1",
        "v0.11.0rc2",
        "v0.11.0rc3",
        "v0.11.0",
        "v0.12.0rc1",
        "v0.13.0rc1",
        "v0.13.0rc2",
        "v0.13.0rc3",
        "v0.13.0",
    ]
    assert all("#3316" in releases[v]["images"]["310p"]["unsupported"] for v in gap)
    assert "unsupported" not in releases["v0.14.0rc1"]["images"]["310p"]
    assert "unsupported" not in releases["v0.10.2rc1"]["images"]["310p"]


def test_architecture_rows_keep_documented_and_field_minimums():
    arch = read_data_file()["architectures"]
    assert arch["Qwen3ForCausalLM"]["min_version"] == "v0.8.4rc2"
    assert arch["Qwen3ForCausalLM"]["field_min_version"] == "v0.14.0rc1"
    assert arch["Glm4MoeForCausalLM"]["min_version"] == "v0.10.0rc1" and arch["Glm4MoeForCausalLM"]["skips_mtp_layers"] is True
    assert arch["Qwen3VLForConditionalGeneration"]["min_version"] == "v0.11.0rc1"
    for never in ("GlmOcrForConditionalGeneration", "ChatGLMModel", "Glm4ForCausalLM", "Glm4vForConditionalGeneration", "GlmForCausalLM"):
        assert arch[never]["unsupported"], never
    assert not arch["Glm4ForCausalLM"].get("skips_mtp_layers")


def test_cann_driver_minimums_follow_the_cann_release_notes():
    cann = read_data_file()["cann"]
    # CANN 8.5.0 notes: HDK 25.5.X/25.3.X/25.2.X/25.0.X; 9.1.0 notes: 9.0.X on 25.0.X+, 9.1.X not on 25.0.X.
    assert (cann["8.5.0"]["min_driver"], cann["9.0.1"]["min_driver"], cann["9.1.0"]["min_driver"]) == ("25.0", "25.0", "25.2")
    assert cann["8.3.RC2"]["min_driver"] is None


def test_torch_pairs_follow_ascend_pytorch_compatibility():
    torch_npu = read_data_file()["torch_npu"]
    pairs = torch_npu["pairs"]
    # Ascend/pytorch COMPATIBILITY.en.md @ b48e6481 (historical rows) and README.md 'Ascend Auxiliary Software' @ 951e46ca:
    # | CANN 8.0.RC1 | 2.2.0 | 2.2.0 | v2.2.0-6.0.rc1 |, | 2.1.0 | 2.1.0.post4 | v2.1.0-6.0.rc1 |, | 1.11.0 | 1.11.0.post11 | ...
    assert [(p["torch"], p["torch_npu"], p["branch"]) for p in pairs["8.0.RC1"]] == [
        ("2.2.0", "2.2.0", "v2.2.0-6.0.rc1"),
        ("2.1.0", "2.1.0.post4", "v2.1.0-6.0.rc1"),
        ("1.11.0", "1.11.0.post11", "v1.11.0-6.0.rc1"),
    ]
    # Checked with pip against PyPI: 2.1.0.post4 and 1.11.x are not there, 2.2.0 is (cp38 to cp310, aarch64 and x86_64).
    assert [p.get("pypi", True) for p in pairs["8.0.RC1"]] == [True, False, False]
    # | 2.9.0 | v2.9.0-7.3.0 | 2.9.0 | CANN 8.5.0 |, | 2.12.0 | v2.12.0-26.1.0 | 2.12.0 | CANN 9.1.0 |
    assert (pairs["8.5.0"][0]["torch"], pairs["8.5.0"][0]["torch_npu"]) == ("2.9.0", "2.9.0")
    assert (pairs["9.1.0"][0]["torch_npu"], pairs["9.1.0"][2]["torch_npu"]) == ("2.12.0", "2.10.0.post4")
    assert [p["torch_npu"] for p in pairs["9.0.0"]] == ["2.9.0.post2", "2.8.0.post4", "2.7.1.post4"]
    # 'PyTorch and Python versions': PyTorch 2.2.0 on Python 3.8, 3.9, 3.10.
    assert torch_npu["python"]["2.2.0"] == ["3.8", "3.9", "3.10"]


def test_cann_8_0_rc_bases_are_the_published_ones():
    cann = read_data_file()["cann"]
    # openmerlin/dockerfile arg.json: 8.0.rc1-910b-ubuntu22.04-py3.8 (and openeuler22.03-py3.8) only.
    assert cann["8.0.RC1"]["python"] == ["3.8"] and cann["8.0.RC1"]["base_chips"] == ["910b"]
    assert cann["8.0.RC2"]["python"] == ["3.8", "3.9", "3.10"] and cann["8.0.RC3"]["python"] == ["3.10"]
    assert read_data_file()["transformers"]["min_python"] == "3.9"


# --------------------------------------------------------------------------- merging


def test_merge_is_deep_for_mappings_and_replaces_other_values():
    base = {
        "registry": "quay.io/ascend/vllm-ascend",
        "releases": {"v1.0.0": {"cann": "8.5.0", "images": {"a2": {"os": ["ubuntu"]}}}},
        "platforms": ["aarch64", "x86_64"],
        "custom_images": [{"image": "a"}],
    }
    before = copy.deepcopy(base)
    merged = merge_overrides(
        base,
        {"releases": {"v1.0.0": {"images": {"a2": {"os": ["openeuler"]}}}}, "platforms": ["aarch64"], "custom_images": [{"image": "b"}]},
    )
    assert merged == {
        "registry": "quay.io/ascend/vllm-ascend",
        "releases": {"v1.0.0": {"cann": "8.5.0", "images": {"a2": {"os": ["openeuler"]}}}},
        "platforms": ["aarch64"],
        "custom_images": [{"image": "a"}, {"image": "b"}],
    }
    assert base == before


def test_load_matrix_applies_overrides():
    matrix = load_matrix(
        {
            "registry": "registry.example.com:5000/ascend/vllm-ascend",
            "releases": {"v0.24.0rc1": {"disabled": True}},
            "cann": {"9.0.1": {"min_driver": "25.5"}},
        }
    )
    assert matrix["registry"] == "registry.example.com:5000/ascend/vllm-ascend"
    assert matrix["releases"]["v0.24.0rc1"]["disabled"] is True
    assert matrix["releases"]["v0.24.0rc1"]["cann"] == "9.0.1"
    assert matrix["cann"]["9.0.1"]["min_driver"] == "25.5" and "release notes" in matrix["cann"]["9.0.1"]["source"]
    assert load_matrix(None) == load_matrix({}) == read_data_file()


# --------------------------------------------------------------------------- malformed overrides


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"relases": {}}, "npu_fleet_compat_overrides: relases: unknown key 'relases' for the compatibility matrix"),
        (
            {"releases": {"v0.99.0": {"cann": "9.2.0", "images": {}}}},
            "npu_fleet_compat_overrides: releases[\"v0.99.0\"]: missing required key 'source' for a vllm-ascend release",
        ),
        ({"releases": {"v0.23.0": {"cann": 9}}}, 'npu_fleet_compat_overrides: releases["v0.23.0"].cann: expected an Ascend version string'),
        ({"releases": {"latest": {}}}, "npu_fleet_compat_overrides: releases.latest: not a vllm-ascend version: 'latest'"),
        (
            {"releases": {"v0.23.0": {"images": {"a4": {"cann": "9.1.0", "os": ["ubuntu"]}}}}},
            "npu_fleet_compat_overrides: releases[\"v0.23.0\"].images.a4: unknown chip family 'a4'",
        ),
        (
            {"releases": {"v0.23.0": {"images": {"a2": {"os": ["debian"]}}}}},
            "npu_fleet_compat_overrides: releases[\"v0.23.0\"].images.a2.os: unknown OS 'debian'",
        ),
        (
            {"custom_images": [{"image": "registry.example.com/x:1", "version": "v0.14.0rc1", "family": "a2", "cann": "8.5.0"}]},
            "npu_fleet_compat_overrides: custom_images[0]: missing required key 'source' for a custom image",
        ),
        ({"custom_images": {"image": "x"}}, "npu_fleet_compat_overrides: custom_images: expected a list of image entries"),
        (
            {"architectures": {"FooForCausalLM": {"source": "test"}}},
            "npu_fleet_compat_overrides: architectures.FooForCausalLM: give min_version",
        ),
        (
            {"architectures": {"FooForCausalLM": {"min_version": "0.x", "source": "test"}}},
            "npu_fleet_compat_overrides: architectures.FooForCausalLM.min_version: not a vllm-ascend version: '0.x'",
        ),
        (
            {"hardware": {"a2": {"chips": ["910B("]}}},
            "npu_fleet_compat_overrides: hardware.a2.chips: '910B(' is not a valid regular expression",
        ),
        (
            {"transformers": {"image": "team/server:{cann}-{gpu}"}},
            "npu_fleet_compat_overrides: transformers.image: 'team/server:{cann}-{gpu}' uses unknown placeholder(s) {gpu}",
        ),
        ({"cann": {"9.0.1": {"min_driver": "newest"}}}, 'npu_fleet_compat_overrides: cann["9.0.1"].min_driver: not an Ascend version'),
        (
            {"torch_npu": {"pairs": {"7.0.0": [{"torch": "2.1.0"}]}}},
            "npu_fleet_compat_overrides: torch_npu.pairs[\"7.0.0\"][0]: missing required key 'torch_npu' for a torch/torch_npu pair",
        ),
        (
            {"torch_npu": {"pairs": {"7.0.0": [{"torch": "2.0.1", "torch_npu": "2.0.1.post1"}]}}},
            'npu_fleet_compat_overrides: torch_npu.pairs["7.0.0"][0].torch: torch 2.0.1 has no Python list under torch_npu.python',
        ),
        ({"cann": {"8.0.RC1": {"base_chips": "910b"}}}, 'npu_fleet_compat_overrides: cann["8.0.RC1"].base_chips: expected a list'),
        ({"schema_version": 2}, "npu_fleet_compat_overrides.schema_version: 2 does not match the data's schema_version 1"),
        (["registry"], "npu_fleet_compat_overrides must be a mapping"),
    ],
)
def test_malformed_overrides_name_the_bad_key(overrides, message):
    with pytest.raises(CompatDataError) as caught:
        load_matrix(overrides)
    assert str(caught.value).startswith(message)


def test_an_error_in_the_shipped_rows_is_not_blamed_on_the_overrides():
    data = read_data_file()
    data["releases"]["v0.23.0"]["cann"] = "nine"
    with pytest.raises(
        CompatDataError,
        match=r"^the compatibility data \(plugins/module_utils/_compat_matrix.json\): "
        r"releases\[\"v0.23.0\"\].cann: not an Ascend version",
    ):
        validate_matrix(data, {"registry": "registry.example.com/vllm-ascend"})
