"""Preflight verdicts on facts that npu_facts really returned.

Every case starts from an emulated host profile (tests/emulator/profiles) run
through the npu_facts module, so the verdict is judged on the same data the
role sees on a host; faults are the profile's own, or one changed field.
"""

import copy
import os

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._preflight import preflight_verdict, release_line

from emulated_host import emulated_host, profile_named, run


FIXED_HOST_PATHS = ("/etc/ascend_install.info", "/usr/local/dcmi")


def discovered(tmp_path, monkeypatch, capsys, profile):
    """npu_facts on an emulated host; the two fixed absolute paths npu_facts
    checks are looked up in the emulated tree (under tmp_path/host) instead."""
    result = run(capsys, emulated_host(tmp_path, monkeypatch, profile))
    assert result["_exit"] == 0, result.get("msg")
    npu = result["ansible_facts"]["npu"]
    for path in FIXED_HOST_PATHS:
        npu["driver_mounts"][path] = os.path.exists(str(tmp_path / "host") + path)
    return npu


def codes(verdict, severity=None):
    return [p["code"] for p in verdict["problems"] if severity is None or p["severity"] == severity]


def test_healthy_host_passes_with_every_chip(tmp_path, monkeypatch, capsys):
    verdict = preflight_verdict(discovered(tmp_path, monkeypatch, capsys, profile_named("a2-910b4-8x32g")), require_ascend_runtime=True)
    assert verdict["ok"] is True
    assert verdict["problems"] == []
    assert verdict["usable_devices"] == ["/dev/davinci%d" % n for n in range(8)]
    assert verdict["excluded_devices"] == []


def test_broken_host_reports_its_three_faults_at_once(tmp_path, monkeypatch, capsys):
    npu = discovered(tmp_path, monkeypatch, capsys, profile_named("broken-910b4"))
    verdict = preflight_verdict(npu)
    assert verdict["ok"] is False
    assert verdict["error_codes"] == ["FWKACLLIB_MISSING", "NNAL_CANN_MISMATCH"]
    assert verdict["warning_codes"] == ["CHIP_UNHEALTHY"]
    mismatch = [p for p in verdict["problems"] if p["code"] == "NNAL_CANN_MISMATCH"][0]
    assert mismatch["message"] == "NNAL 8.1.RC1 is older than CANN 8.5.0: ATB will fail with `libatb.so: undefined symbol`"
    fwkacllib = [p for p in verdict["problems"] if p["code"] == "FWKACLLIB_MISSING"][0]
    assert fwkacllib["path"].endswith("/ascend-toolkit/latest/fwkacllib")
    assert "107001" in fwkacllib["message"]
    alarm = [p for p in verdict["problems"] if p["code"] == "CHIP_UNHEALTHY"][0]
    assert alarm["device"] == "/dev/davinci5" and "Alarm" in alarm["message"]
    # A host with errors receives nothing, but its excluded chip is still named.
    assert verdict["usable_devices"] == []
    assert verdict["excluded_devices"] == ["/dev/davinci5"]


def test_busy_chips_are_left_out_but_the_host_passes(tmp_path, monkeypatch, capsys):
    verdict = preflight_verdict(discovered(tmp_path, monkeypatch, capsys, profile_named("a2-910b3-8x64g-busy")))
    assert verdict["ok"] is True
    assert codes(verdict) == ["CHIP_BUSY", "CHIP_BUSY"]
    assert verdict["excluded_devices"] == ["/dev/davinci2", "/dev/davinci3"]
    assert verdict["usable_devices"] == ["/dev/davinci%d" % n for n in (0, 1, 4, 5, 6, 7)]
    assert "pid 1036531" in verdict["problems"][0]["message"]


def test_processes_npu_fleet_started_do_not_make_a_chip_busy(tmp_path, monkeypatch, capsys):
    npu = discovered(tmp_path, monkeypatch, capsys, profile_named("a2-910b3-8x64g-busy"))
    verdict = preflight_verdict(npu, managed_pids=[1036531])
    assert verdict["excluded_devices"] == ["/dev/davinci3"]


def test_reserved_devices_are_excluded(tmp_path, monkeypatch, capsys):
    npu = discovered(tmp_path, monkeypatch, capsys, profile_named("duo-310p3-2card"))
    verdict = preflight_verdict(npu, reserved_devices=["/dev/davinci3"])
    assert verdict["ok"] is True
    assert verdict["usable_devices"] == ["/dev/davinci0", "/dev/davinci1", "/dev/davinci2"]
    assert verdict["excluded_devices"] == ["/dev/davinci3"]


def test_warning_health_keeps_the_chip(tmp_path, monkeypatch, capsys):
    profile = copy.deepcopy(profile_named("a2-910b4-8x32g"))
    profile["chip_overrides"] = {1: {"health": "Warning"}}
    verdict = preflight_verdict(discovered(tmp_path, monkeypatch, capsys, profile))
    assert codes(verdict) == ["CHIP_UNHEALTHY"]
    assert verdict["problems"][0]["usable"] is True
    assert "/dev/davinci1" in verdict["usable_devices"]


def test_ascend_runtime_required_but_missing(tmp_path, monkeypatch, capsys):
    npu = discovered(tmp_path, monkeypatch, capsys, profile_named("a2-910b3-8x64g-busy"))
    assert preflight_verdict(npu)["ok"] is True
    verdict = preflight_verdict(npu, require_ascend_runtime=True)
    assert verdict["error_codes"] == ["ASCEND_RUNTIME_MISSING"]


def test_ascend_runtime_installed_but_unregistered(tmp_path, monkeypatch, capsys):
    profile = copy.deepcopy(profile_named("a2-910b4-8x32g"))
    profile["ascend_docker_runtime"]["registered"] = False
    verdict = preflight_verdict(discovered(tmp_path, monkeypatch, capsys, profile), require_ascend_runtime=True)
    assert verdict["error_codes"] == ["ASCEND_RUNTIME_UNREGISTERED"]
    assert "v5.0.RC3" in verdict["problems"][0]["message"]


def test_missing_nnal_is_a_warning_and_missing_cann_an_error(tmp_path, monkeypatch, capsys):
    npu = discovered(tmp_path, monkeypatch, capsys, profile_named("a2-910b4-8x32g"))
    npu["nnal_version"] = None
    assert codes(preflight_verdict(npu)) == ["NNAL_MISSING"]
    npu["cann_version"] = None
    verdict = preflight_verdict(npu)
    assert verdict["error_codes"] == ["CANN_MISSING"]


def test_discovery_failure_and_docker_failure_are_both_reported():
    verdict = preflight_verdict(
        None,
        npu_error="npu-smi info exited 2: dcmi module initialize failed. ret is -8005",
        docker_error="Error connecting: Error while fetching server API version",
    )
    assert verdict["error_codes"] == ["DOCKER_UNAVAILABLE", "NPU_DISCOVERY_FAILED"]
    assert "-8005" in verdict["problems"][0]["message"]
    assert verdict["usable_devices"] == []


def test_a_host_without_chips_is_an_error(tmp_path, monkeypatch, capsys):
    npu = discovered(tmp_path, monkeypatch, capsys, profile_named("a2-910b4-8x32g"))
    npu["chips"] = []
    assert preflight_verdict(npu)["error_codes"] == ["NO_NPU_FOUND"]


@pytest.mark.parametrize(
    "cann, nnal, same",
    [
        ("8.5.0", "8.5.0", True),
        ("8.3.RC2", "8.3.rc2", True),
        ("8.2.RC1", "8.2.RC1.B080", True),
        ("8.5.0", "8.1.RC1", False),
        ("8.1.RC1", "8.2.RC1", False),
    ],
)
def test_release_line(cann, nnal, same):
    assert (release_line(cann) == release_line(nnal)) is same


def test_newer_nnal_than_cann_is_named_so(tmp_path, monkeypatch, capsys):
    npu = discovered(tmp_path, monkeypatch, capsys, profile_named("a2-910b4-8x32g"))
    npu["nnal_version"] = "9.1.0"
    problem = preflight_verdict(npu)["problems"][0]
    assert problem["message"].startswith("NNAL 9.1.0 is newer than CANN 8.5.0")
    # The fix is the shared rule's (_host_stack): toolkit and NNAL of one release, either way.
    assert problem["fix"] == (
        "make NNAL and the CANN toolkit one release: install Ascend-cann-nnal 8.5.0 to match the toolkit, or "
        "Ascend-cann-toolkit (with its kernels) 9.1.0 together with Ascend-cann-nnal 9.1.0; image selection then accepts "
        "every image whose CANN is not newer than that release"
    )


@pytest.mark.parametrize("nnal, fixed_cann", [("8.5.0", "8.5.0"), ("9.1.0", "9.1.0")])
def test_either_mismatch_fix_passes_preflight(tmp_path, monkeypatch, capsys, nnal, fixed_cann):
    npu = discovered(tmp_path, monkeypatch, capsys, profile_named("a2-910b4-8x32g"))
    npu["nnal_version"] = "9.1.0"
    assert preflight_verdict(npu)["error_codes"] == ["NNAL_CANN_MISMATCH"]
    npu.update(nnal_version=nnal, cann_version=fixed_cann)
    assert preflight_verdict(npu)["ok"] is True


def test_a_beta_cann_is_its_own_release(tmp_path, monkeypatch, capsys):
    npu = discovered(tmp_path, monkeypatch, capsys, profile_named("duo-310p3-2card"))
    npu.update(cann_version="9.1.0-beta.1", nnal_version="9.1.0-beta.1")
    assert "NNAL_CANN_MISMATCH" not in preflight_verdict(npu)["error_codes"]
    npu["nnal_version"] = "9.1.0"
    assert preflight_verdict(npu)["error_codes"] == ["NNAL_CANN_MISMATCH"]


def test_missing_requests_on_the_host_is_named_as_such():
    # The message community.docker's modules fail with when `requests` cannot be imported.
    verdict = preflight_verdict(
        None,
        npu_error="not run",
        docker_error=(
            "Failed to import the required Python library (requests) on npu-a2-01's Python /usr/bin/python3. "
            "Please read the module documentation and install it in the appropriate location."
        ),
    )
    assert "DOCKER_PYTHON_REQUESTS_MISSING" in verdict["error_codes"]
    assert "DOCKER_UNAVAILABLE" not in verdict["error_codes"]


def test_a_host_without_the_docker_cli_or_ss_is_told_what_to_install(tmp_path, monkeypatch, capsys):
    npu = discovered(tmp_path, monkeypatch, capsys, profile_named("a2-910b4-8x32g"))
    assert npu["host_tools"]["docker"] and npu["host_tools"]["ss"]  # found on PATH, as on the real host
    without_docker = preflight_verdict(dict(npu, host_tools=dict(npu["host_tools"], docker=None)))
    assert without_docker["ok"] is False and codes(without_docker) == ["DOCKER_CLI_MISSING"]
    assert "docker-ce-cli" in without_docker["problems"][0]["fix"]
    without_ss = preflight_verdict(dict(npu, host_tools=dict(npu["host_tools"], ss=None)))
    assert without_ss["ok"] is True and codes(without_ss, "warning") == ["SS_MISSING"]
    # Facts read from a saved npu-smi capture have no host_tools: nothing is judged.
    assert preflight_verdict(dict((key, value) for key, value in npu.items() if key != "host_tools"))["problems"] == []
