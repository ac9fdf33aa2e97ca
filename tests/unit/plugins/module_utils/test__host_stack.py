"""The one CANN/NNAL rule set (plugins/module_utils/_host_stack.py) that preflight and image selection share.

The field report's host - 8 x 910B4, four chips busy with someone else's
process, CANN and NNAL 8.0.RC1 - is emulated (tests/emulator) and discovered
by npu_facts, as the roles see it. Following the advice is simulated: the
versions it names are installed on the emulated host (its version files), and
image selection and preflight run again on what npu_facts then reports.
"""

import copy
import os

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._compat_data import read_data_file
from ansible_collections.npu.fleet.plugins.module_utils._host_stack import (
    fix_sentence,
    nnal_older,
    release_line,
    stack_fix,
    stack_mismatch,
)
from ansible_collections.npu.fleet.plugins.module_utils._image_select import image_selection
from ansible_collections.npu.fleet.plugins.module_utils._preflight import preflight_verdict
from builders import fixture_profile
from emulated_host import emulated_host, profile_named, run

QUAY = "quay.io/ascend/vllm-ascend"
FIXED_HOST_PATHS = ("/etc/ascend_install.info", "/usr/local/dcmi")
BUSY = [4, 5, 6, 7]


def field_host(**versions):
    """The field report's host as an emulator profile: 8 x 910B4 32 GB, CANN and NNAL 8.0.RC1, NPUs 4-7 busy.

    The foreign process (mindieservice_b, 27474 MB, pids 518871..) and the
    driver 24.1.rc2 are those of tests/unit/fixtures/npu-smi/info-910b4-8npu-24.1.rc2-01.txt,
    an Atlas 800I A2 whose NPUs all ran it; the issue names no driver.
    ``versions`` replace profile fields (driver_version, cann_version, nnal_version).
    """
    profile = copy.deepcopy(profile_named("a2-910b4-8x32g"))
    profile.update(npu_smi_version="24.1.rc2", driver_version="24.1.rc2", cann_version="8.0.RC1", nnal_version="8.0.RC1")
    profile["chip_overrides"] = {
        n: {"used_mb": 30207, "processes": [{"pid": 518867 + n, "name": "mindieservice_b", "memory_mb": 27474}]} for n in BUSY
    }
    profile.update(versions)
    return profile


def discover(tmp_path, monkeypatch, capsys, profile, name="host"):
    """npu_facts on the emulated host (in its own directory); the two fixed absolute paths are looked up there."""
    root = tmp_path / name
    root.mkdir()
    result = run(capsys, emulated_host(root, monkeypatch, profile))
    assert result["_exit"] == 0, result.get("msg")
    npu = result["ansible_facts"]["npu"]
    for path in FIXED_HOST_PATHS:
        npu["driver_mounts"][path] = os.path.exists(str(root / "host") + path)
    return npu


def catalogue():
    """The field report's week in two models: Eva-4B-V2 (a Qwen3-4B fine-tune) and a Qwen2.5 model."""
    return [
        {"name": "eva-4b-v2", "profile": fixture_profile("jaman21__Qwen3-4B-Instruct")},
        {"name": "qwen2.5-7b", "profile": fixture_profile("Qwen__Qwen2.5-7B-Instruct")},
    ]


def codes(verdict):
    return [problem["code"] for problem in verdict["problems"]]


def apply(profile, fix):
    """The emulated host after installing what ``fix`` (host facts) names."""
    return dict(profile, **fix)


# --------------------------------------------------------------------------- the rules


@pytest.mark.parametrize(
    "version, line",
    [
        ("8.5.0", "8.5.0"),
        ("8.5.0.B110", "8.5.0"),
        ("8.3.rc2", "8.3.RC2"),
        ("8.2.RC1.B080", "8.2.RC1"),
        ("9.1.0-beta.1", "9.1.0-beta.1"),
        ("8.1.RC1.alpha001", "8.1.RC1.alpha001"),
    ],
)
def test_release_line(version, line):
    assert release_line(version) == line


def test_rule_1_nnal_and_toolkit_of_one_release():
    assert stack_mismatch("8.5.0", "8.5.0.B110") is None
    assert stack_mismatch("8.0.RC1", None) is None and stack_mismatch(None, "8.0.RC1") is None
    older = stack_mismatch("8.5.0", "8.1.RC1")
    assert older["message"] == "NNAL 8.1.RC1 is older than CANN 8.5.0: ATB will fail with `libatb.so: undefined symbol`"
    newer = stack_mismatch("8.0.RC1", "9.0.1")
    assert newer["relation"] == "newer than"
    assert newer["fix"].startswith(
        "make NNAL and the CANN toolkit one release: install Ascend-cann-nnal 8.0.RC1 to match the toolkit, "
        "or Ascend-cann-toolkit (with its kernels) 9.0.1 together with Ascend-cann-nnal 9.0.1"
    )


def test_rule_2_host_nnal_not_older_than_the_image_cann():
    assert nnal_older("8.0.RC1", "9.0.1") is True
    assert nnal_older("8.5.0.B110", "8.5.0") is False
    assert nnal_older("9.1.0", "9.0.1") is False
    assert nnal_older(None, "9.0.1") is None


@pytest.mark.parametrize(
    "host, image_cann, min_driver, fix",
    [
        # The field report's host: toolkit and NNAL together, and the driver the image's CANN needs.
        (
            {"driver_version": "24.1.rc2", "cann_version": "8.0.RC1", "nnal_version": "8.0.RC1"},
            "9.0.1",
            "25.0",
            {"driver_version": "25.0", "cann_version": "9.0.1", "nnal_version": "9.0.1"},
        ),
        # tests/emulator/profiles/broken-910b4.yml: NNAL behind its own toolkit - NNAL of the toolkit's release is enough.
        ({"driver_version": "25.0.rc1.1", "cann_version": "8.5.0", "nnal_version": "8.1.RC1"}, "8.5.0", "25.0", {"nnal_version": "8.5.0"}),
        # The old advice followed: NNAL ahead of its toolkit - the toolkit catches up.
        ({"cann_version": "8.0.RC1", "nnal_version": "9.0.1"}, "9.0.1", None, {"cann_version": "9.0.1", "nnal_version": "9.0.1"}),
        # A host without NNAL passes rule 2; nothing to change.
        ({"cann_version": "8.0.RC1", "nnal_version": None}, "9.0.1", None, {}),
    ],
)
def test_rule_3_the_fix(host, image_cann, min_driver, fix):
    assert stack_fix(host, image_cann, min_driver) == fix


def test_every_fix_gives_a_host_both_rules_accept():
    """For every CANN the data knows, as host stack (matched or not) and as image CANN, the fixed host passes rules 1 and 2."""
    canns = list(read_data_file()["cann"])
    for host_cann in canns:
        for host_nnal in canns:
            for image_cann in canns:
                host = {"cann_version": host_cann, "nnal_version": host_nnal}
                fixed = dict(host, **stack_fix(host, image_cann))
                assert stack_mismatch(fixed["cann_version"], fixed["nnal_version"]) is None, (host, image_cann)
                assert not nnal_older(fixed["nnal_version"], image_cann), (host, image_cann)


def test_fix_sentences_name_the_install_order():
    host = {"cann_version": "8.0.RC1"}
    assert fix_sentence({"driver_version": "25.0", "cann_version": "9.0.1", "nnal_version": "9.0.1"}, host) == (
        "upgrade the driver (Ascend HDK) to 25.0 or newer, then install Ascend-cann-toolkit (with its kernels) and "
        "Ascend-cann-nnal 9.0.1 together (one release, as preflight requires: NNAL_CANN_MISMATCH)"
    )
    assert fix_sentence({"nnal_version": "8.0.RC1"}, host) == "install Ascend-cann-nnal 8.0.RC1, the release of the host's CANN 8.0.RC1"


# --------------------------------------------------------------------------- the field report's host


def test_field_host_is_accepted_with_its_busy_chips_left_out(tmp_path, monkeypatch, capsys):
    npu = discover(tmp_path, monkeypatch, capsys, field_host())
    assert (npu["cann_version"], npu["nnal_version"], npu["driver_version"]) == ("8.0.RC1", "8.0.RC1", "24.1.rc2")
    verdict = preflight_verdict(npu)
    assert verdict["ok"] is True
    assert codes(verdict) == ["CHIP_BUSY"] * 4
    assert verdict["usable_devices"] == ["/dev/davinci%d" % n for n in range(4)]


def test_following_the_advice_gives_a_host_image_selection_and_preflight_both_accept(tmp_path, monkeypatch, capsys):
    profile = field_host()
    before = image_selection(catalogue(), discover(tmp_path, monkeypatch, capsys, profile))
    for name, choice in before.items():
        assert choice["backend"] == "transformers", name
        newest = choice["rejected"][0]
        assert newest["image"] == QUAY + ":v0.24.0rc1" and newest["codes"] == ["DRIVER_TOO_OLD", "NNAL_OLDER"]
        # The advice installs toolkit and NNAL together - not NNAL 9.0.1 next to toolkit 8.0.RC1.
        assert newest["fix"] == {"driver_version": "25.0", "cann_version": "9.0.1", "nnal_version": "9.0.1"}
        assert choice["reasons"][2] == (
            "to serve it with vLLM, upgrade the driver (Ascend HDK) to 25.0 or newer, then install Ascend-cann-toolkit "
            "(with its kernels) and Ascend-cann-nnal 9.0.1 together (one release, as preflight requires: "
            "NNAL_CANN_MISMATCH) (then quay.io/ascend/vllm-ascend:v0.24.0rc1 runs)."
        )
    advised = apply(profile, before["eva-4b-v2"]["rejected"][0]["fix"])
    npu = discover(tmp_path, monkeypatch, capsys, advised, name="advised")
    assert (npu["cann_version"], npu["nnal_version"], npu["driver_version"]) == ("9.0.1", "9.0.1", "25.0")
    verdict = preflight_verdict(npu)
    assert verdict["ok"] is True and "NNAL_CANN_MISMATCH" not in codes(verdict)
    after = image_selection(catalogue(), npu)
    for name, choice in after.items():
        assert (choice["backend"], choice["image"]) == ("vllm", QUAY + ":v0.24.0rc1"), name
        assert choice["warnings"] == []


def test_the_old_advice_is_refused_by_both_and_their_fix_is_accepted_by_both(tmp_path, monkeypatch, capsys):
    """A host that installed NNAL 9.0.1 next to its CANN 8.0.RC1 toolkit, as the old advice said."""
    followed_old = field_host(driver_version="25.0", nnal_version="9.0.1")
    npu = discover(tmp_path, monkeypatch, capsys, followed_old)
    verdict = preflight_verdict(npu)
    assert verdict["error_codes"] == ["NNAL_CANN_MISMATCH"]
    mismatch = [p for p in verdict["problems"] if p["code"] == "NNAL_CANN_MISMATCH"][0]
    assert "Ascend-cann-toolkit (with its kernels) 9.0.1 together with Ascend-cann-nnal 9.0.1" in mismatch["fix"]
    choice = image_selection(catalogue(), npu)["eva-4b-v2"]
    assert choice["warnings"][0].startswith(
        "preflight refuses this host (NNAL_CANN_MISMATCH): NNAL 9.0.1 is newer than CANN 8.0.RC1: ATB will fail"
    )
    fixed = apply(followed_old, stack_fix({"cann_version": npu["cann_version"], "nnal_version": npu["nnal_version"]}, "9.0.1"))
    npu = discover(tmp_path, monkeypatch, capsys, fixed, name="fixed")
    assert preflight_verdict(npu)["ok"] is True
    choice = image_selection(catalogue(), npu)["eva-4b-v2"]
    assert choice["image"] == QUAY + ":v0.24.0rc1" and choice["warnings"] == []


def test_nnal_behind_its_toolkit_gets_the_smaller_fix_too(tmp_path, monkeypatch, capsys):
    """CANN 8.5.0 with NNAL 8.1.RC1 (tests/emulator/profiles/broken-910b4.yml): NNAL 8.5.0 alone lets v0.15.0rc1 run."""
    profile = dict(profile_named("a2-910b4-8x32g"), nnal_version="8.1.RC1")
    choice = image_selection(catalogue(), discover(tmp_path, monkeypatch, capsys, profile))["eva-4b-v2"]
    assert choice["backend"] == "transformers"
    assert choice["reasons"][2] == (
        "to serve it with vLLM, install Ascend-cann-toolkit (with its kernels) and Ascend-cann-nnal 9.0.1 together "
        "(one release, as preflight requires: NNAL_CANN_MISMATCH) (then quay.io/ascend/vllm-ascend:v0.24.0rc1 runs), "
        "or keep the CANN toolkit and install Ascend-cann-nnal 8.5.0, the release of the host's CANN 8.5.0 "
        "(then quay.io/ascend/vllm-ascend:v0.15.0rc1 runs)."
    )
    smaller = [item for item in choice["rejected"] if item["version"] == "v0.15.0rc1"][0]["fix"]
    npu = discover(tmp_path, monkeypatch, capsys, apply(profile, smaller), name="smaller")
    assert preflight_verdict(npu)["ok"] is True
    assert image_selection(catalogue(), npu)["eva-4b-v2"]["image"] == QUAY + ":v0.15.0rc1"
