"""npu_facts and the preflight role, judged against each host's own profile."""

import json
import os
import re
import subprocess

import pytest
import yaml

# What preflight must say of each profile, written out by hand.
EXPECTED = {
    "a2-910b4-8x32g": {"ok": True, "errors": [], "warnings": [], "excluded": []},
    "a2-910b3-8x64g-busy": {"ok": True, "errors": [], "warnings": ["CHIP_BUSY"], "excluded": ["/dev/davinci2", "/dev/davinci3"]},
    "duo-310p3-2card": {"ok": True, "errors": [], "warnings": [], "excluded": []},
    "broken-910b4": {
        "ok": False,
        "errors": ["FWKACLLIB_MISSING", "NNAL_CANN_MISMATCH"],
        "warnings": ["CHIP_UNHEALTHY"],
        "excluded": ["/dev/davinci5"],
    },
}


@pytest.fixture(name="profile")
def fixture_profile(host):
    return yaml.safe_load(host.file("/etc/npu-emulator/profile.yml").content_string)


@pytest.fixture(name="profile_name")
def fixture_profile_name(host):
    return host.check_output("cat /proc/1/environ | tr '\\0' '\\n' | sed -n 's/^NPU_EMULATOR_PROFILE=//p'")


def expand(profile):
    npu_ids = profile.get("npu_ids") or list(range(profile["npu_count"]))
    per_npu = profile.get("chips_per_npu", 1)
    return [(npu_ids[index // per_npu], index % per_npu) for index in range(len(npu_ids) * per_npu)]


def test_npu_facts_equal_the_profile(host, profile):
    result = host.ansible("npu.fleet.npu_facts", check=False)
    npu = result["ansible_facts"]["npu"]
    overrides = profile.get("chip_overrides") or {}
    ids = expand(profile)
    assert npu["chip_count"] == len(ids)
    for index, chip in enumerate(npu["chips"]):
        override = overrides.get(index, {})
        assert (chip["npu_id"], chip["chip_id"]) == ids[index]
        assert chip["device"] == "/dev/davinci%d" % index
        assert chip["name"] == profile["chip_name"]
        assert chip["health"] == override.get("health", "OK")
        assert chip["memory_kind"] == profile["memory_kind"]
        assert chip["memory_total_mb"] == override.get("memory_mb", profile["memory_mb"])
        assert chip["memory_used_mb"] == override.get("used_mb", profile["idle_used_mb"])
        assert [p["pid"] for p in chip["processes"]] == [p["pid"] for p in override.get("processes", [])]
    for key in ("npu_smi_version", "driver_version", "firmware_version", "cann_version", "nnal_version"):
        assert npu[key] == str(profile[key]), key
    assert npu["driver_mounts"][npu["fwkacllib_path"]] is bool(profile.get("fwkacllib", True))
    assert all(exists for path, exists in npu["driver_mounts"].items() if path != npu["fwkacllib_path"])
    runtime = profile.get("ascend_docker_runtime") or {}
    assert npu["docker_runtime"]["installed"] is bool(runtime.get("installed"))
    assert npu["docker_runtime"]["registered_in_daemon_json"] is bool(runtime.get("registered"))
    assert result.get("changed") is False


def test_preflight_report_names_the_faults(host, profile_name):
    report_dir = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "preflight")
    with open(os.path.join(report_dir, host.backend.get_hostname() + ".json"), encoding="utf-8") as handle:
        report = json.load(handle)
    verdict, expected = report["preflight"], EXPECTED[profile_name]
    assert verdict["ok"] is expected["ok"]
    assert verdict["error_codes"] == expected["errors"]
    assert verdict["warning_codes"] == expected["warnings"]
    assert verdict["excluded_devices"] == expected["excluded"]
    for problem in verdict["problems"]:
        assert problem["message"] and problem["fix"], problem


def test_strict_preflight_stops_only_hosts_with_errors(host, profile_name):
    name = host.backend.get_hostname()
    run = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            os.path.join(os.environ["MOLECULE_SCENARIO_DIRECTORY"], "converge.yml"),
            "--limit",
            name,
            "--tags",
            "preflight_discover,preflight_judge",
            "-e",
            "preflight_strict=true",
            "-e",
            "preflight_report_dir=",
            "-e",
            "fleet_plan_output=",
        ],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, ANSIBLE_CALLBACK_RESULT_FORMAT="json", ANSIBLE_NOCOLOR="1"),
    )
    expected = EXPECTED[profile_name]
    if expected["ok"]:
        assert run.returncode == 0, run.stdout[-3000:]
        return
    assert run.returncode == 2, run.stdout[-3000:]
    found = re.search(r'%s failed preflight: ([^"\n]*)' % re.escape(name), run.stdout + run.stderr)
    assert found, run.stdout[-3000:] + run.stderr[-3000:]
    failure = found.group(1)
    assert [code for code in expected["errors"] if code in failure] == expected["errors"]
    for code in expected["warnings"]:
        assert code not in failure
