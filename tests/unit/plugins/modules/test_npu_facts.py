"""Tests of the npu.fleet.npu_facts module.

npu-smi is a real executable written into tmp_path (the emulator, or a script that
prints corpus samples), so the module's run_command path runs for real; the Ascend
install tree is built by the emulator's own functions (tests/emulator/emulator_init.py)
under tmp_path, or from corpus version files.
"""

import grp
import json
import os
import platform
import shutil
import stat
import sys

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._listen_ports import parse_ss_listening
from ansible_collections.npu.fleet.plugins.module_utils._npu_discovery import device_access
from ansible_collections.npu.fleet.plugins.modules import npu_facts

from emulated_host import EMULATOR_DIR, dev_dir, emulated_host, executable, profile_named, run

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
FIXTURES = os.path.join(REPO, "tests", "unit", "fixtures", "npu-smi")
PROFILES = sorted(name[:-4] for name in os.listdir(os.path.join(EMULATOR_DIR, "profiles")) if name.endswith(".yml"))

A3_PROFILE = {
    "layout": "a3",
    "chip_name": "Ascend910",
    "npu_count": 2,
    "chips_per_npu": 2,
    "mcu_rows": True,
    "memory_kind": "HBM",
    "memory_mb": 65536,
    "idle_used_mb": 3133,
    "npu_smi_version": "25.2.0",
    "driver_version": "25.2.0",
    "firmware_version": "7.7.0.6.201",
    "cann_version": "8.3.RC2",
    "nnal_version": "8.3.RC2",
    "arch": "aarch64",
    "fwkacllib": False,
    "dcmi": True,
    "ascend_docker_runtime": {"installed": False},
    "chip_overrides": {2: {"health": "Critical"}},
}


def read(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return handle.read()


def call_log(tmp_path):
    log = tmp_path / "npu-smi.calls"
    return log.read_text().splitlines() if log.exists() else []


def script_npu_smi(tmp_path, answers):
    """An npu-smi that answers ``npu-smi <args>`` from a dict {"args": (rc, stdout, stderr)}."""
    table = tmp_path / "answers.json"
    table.write_text(json.dumps(answers))
    body = (
        "#!%s\n"
        "import json, sys\n"
        "key = ' '.join(sys.argv[1:])\n"
        "with open(%r, 'a') as log:\n"
        "    log.write(key + '\\n')\n"
        "answers = json.load(open(%r))\n"
        "if key not in answers:\n"
        "    sys.stdout.write('Error parameter of info.\\nUsage: npu-smi info <watch|proc|-h|-m|-l|-t type> [Options...]\\n')\n"
        "    sys.exit(2)\n"
        "rc, out, err = answers[key]\n"
        "sys.stdout.write(out)\n"
        "sys.stderr.write(err)\n"
        "sys.exit(rc)\n" % (sys.executable, str(tmp_path / "npu-smi.calls"), str(table))
    )
    return executable(tmp_path / "npu-smi", body)


def remap_answer(phy, logic, npu, chip):
    """phyid-remap output in the shape of the npu-smi reference example."""
    return (
        0,
        " Chip Physical ID            :%d\n Chip Logic ID               :%d\n NPU ID                      :%d\n"
        " Chip ID                     :%d\n" % (phy, logic, npu, chip),
        "",
    )


@pytest.fixture
def warned(monkeypatch):
    """Texts passed to AnsibleModule.warn; where 2.19 puts module warnings in the result
    differs between processes, so the calls are recorded instead."""
    seen = []
    monkeypatch.setattr(npu_facts.AnsibleModule, "warn", lambda self, message: seen.append(message))
    return seen


# ------------------------------------------------------------------ emulated hosts


@pytest.mark.parametrize("name", PROFILES)
def test_facts_of_an_emulated_host(tmp_path, monkeypatch, capsys, warned, name):
    profile = profile_named(name)
    args = emulated_host(tmp_path, monkeypatch, profile)
    result = run(capsys, args)
    assert result["_exit"] == 0, result.get("msg")
    assert result["changed"] is False
    facts = result["ansible_facts"]["npu"]
    npu_ids = profile.get("npu_ids") or list(range(profile["npu_count"]))
    per_npu = profile.get("chips_per_npu", 1)
    overrides = profile.get("chip_overrides") or {}
    assert facts["chip_count"] == len(npu_ids) * per_npu
    assert facts["npu_smi_version"] == str(profile["npu_smi_version"])
    assert facts["npu_smi_layout"] == ("310" if profile["layout"] == "310p" else "a2")
    for index, chip in enumerate(facts["chips"]):
        override = overrides.get(index, {})
        assert (chip["npu_id"], chip["chip_id"], chip["logic_id"]) == (npu_ids[index // per_npu], index % per_npu, index)
        assert (chip["phy_id"], chip["phy_id_source"], chip["device"]) == (index, "phyid-remap", "/dev/davinci%d" % index)
        assert chip["name"] == profile["chip_name"]
        assert chip["health"] == override.get("health", "OK")
        assert chip["memory_kind"] == profile["memory_kind"]
        assert chip["memory_total_mb"] == override.get("memory_mb", profile["memory_mb"])
        assert chip["memory_used_mb"] == override.get("used_mb", profile["idle_used_mb"])
        assert [(p["pid"], p["name"], p["memory_mb"]) for p in chip["processes"]] == [
            (p["pid"], p["name"], p["memory_mb"]) for p in override.get("processes", [])
        ]
    assert facts["driver_version"] == str(profile["driver_version"])
    assert facts["firmware_version"] == str(profile["firmware_version"])
    assert facts["cann_version"] == str(profile["cann_version"])
    assert facts["nnal_version"] == str(profile["nnal_version"])
    assert facts["cann_toolkit_home"] == args["ascend_root"] + "/ascend-toolkit/latest"
    assert facts["fwkacllib_path"] == args["ascend_root"] + "/ascend-toolkit/latest/fwkacllib"
    mounts = facts["driver_mounts"]
    assert mounts[args["ascend_root"] + "/driver/lib64"] is True
    assert mounts[args["ascend_root"] + "/driver/version.info"] is True
    assert mounts[args["npu_smi_path"]] is True
    assert mounts[facts["fwkacllib_path"]] is profile["fwkacllib"]
    assert isinstance(mounts["/etc/ascend_install.info"], bool) and isinstance(mounts["/usr/local/dcmi"], bool)
    runtime = profile["ascend_docker_runtime"]
    assert facts["docker_runtime"] == {
        "installed": runtime["installed"],
        "version": runtime.get("version") if runtime["installed"] else None,
        "registered_in_daemon_json": bool(runtime.get("registered")),
        "default_runtime": None,
    }
    assert facts["arch"] == platform.machine()
    chips = facts["chip_count"]
    assert call_log(tmp_path) == ["info", "info -m"] + ["info -t phyid-remap -p %d" % n for n in range(chips)]
    assert warned == []


def test_a3_host_needs_no_phyid_remap(tmp_path, monkeypatch, capsys):
    args = emulated_host(tmp_path, monkeypatch, A3_PROFILE)
    facts = run(capsys, args)["ansible_facts"]["npu"]
    assert facts["npu_smi_layout"] == "a3"
    assert [(c["npu_id"], c["chip_id"], c["phy_id"], c["phy_id_source"], c["device"], c["health"]) for c in facts["chips"]] == [
        (0, 0, 0, "table", "/dev/davinci0", "OK"),
        (0, 1, 1, "table", "/dev/davinci1", "OK"),
        (1, 0, 2, "table", "/dev/davinci2", "Critical"),
        (1, 1, 3, "table", "/dev/davinci3", "OK"),
    ]
    assert [c["power_w"] is None for c in facts["chips"]] == [False, True, False, True]
    assert call_log(tmp_path) == ["info", "info -m"]
    assert facts["driver_mounts"][facts["fwkacllib_path"]] is False


def test_check_mode_returns_the_same_facts(tmp_path, monkeypatch, capsys):
    args = emulated_host(tmp_path, monkeypatch, profile_named("a2-910b4-8x32g"))
    normal = run(capsys, args)
    checked = run(capsys, dict(args, _ansible_check_mode=True))
    assert checked["changed"] is False
    assert checked["ansible_facts"] == normal["ansible_facts"]


# --------------------------------------------------------------- real corpus output


def corpus_host(tmp_path, answers):
    """Ascend tree from the version files of one 4x Atlas 800I A2 (910B4) cluster note."""
    ascend = tmp_path / "Ascend"
    files = {
        "driver/version.info": "version-driver-25.0.rc1.1-01.txt",
        "firmware/version.info": "version-firmware-7.7.0.1.231-01.txt",
        "ascend-toolkit/8.2.RC1/aarch64-linux/ascend_toolkit_install.info": "version-toolkit-8.2.RC1-aarch64-02.txt",
        "nnal/atb/8.2.RC1/version.info": "version-nnal-atb-8.2.RC1-01.txt",
    }
    for path, fixture in files.items():
        target = ascend / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(read(fixture))
    (ascend / "driver" / "lib64").mkdir()
    os.symlink("8.2.RC1", str(ascend / "ascend-toolkit" / "latest"))
    os.symlink("8.2.RC1", str(ascend / "nnal" / "atb" / "latest"))
    (ascend / "ascend-toolkit" / "8.2.RC1" / (platform.machine() + "-linux") / "lib64").mkdir(parents=True)
    return {
        "npu_smi_path": script_npu_smi(tmp_path, answers),
        "ascend_root": str(ascend),
        "docker_daemon_config": str(tmp_path / "absent-daemon.json"),
        "dev_dir": dev_dir(tmp_path, 8),
    }


def atlas_800i_a2_answers():
    answers = {"info": (0, read("info-910b4-8npu-25.0.rc1.1-01.txt"), ""), "info -m": (0, read("info-m-910b4-8npu-25.0.rc1.1-01.txt"), "")}
    # A made-up wiring where physical and logic ids differ, to see which one the device follows.
    for logic in range(8):
        phy = 7 - logic
        answers["info -t phyid-remap -p %d" % phy] = remap_answer(phy, logic, logic, 0)
    return answers


def test_facts_from_real_outputs_of_one_host(tmp_path, capsys):
    args = corpus_host(tmp_path, atlas_800i_a2_answers())
    result = run(capsys, args)
    assert result["_exit"] == 0, result.get("msg")
    facts = result["ansible_facts"]["npu"]
    assert (facts["npu_smi_version"], facts["driver_version"], facts["firmware_version"]) == ("25.0.rc1.1", "25.0.rc1.1", "7.7.0.1.231")
    assert (facts["cann_version"], facts["nnal_version"]) == ("8.2.RC1", "8.2.RC1")
    assert facts["chip_count"] == 8
    first = facts["chips"][0]
    assert first == {
        "npu_id": 0,
        "chip_id": 0,
        "logic_id": 0,
        "phy_id": 7,
        "phy_id_source": "phyid-remap",
        "device": "/dev/davinci7",
        "name": "910B4",
        "health": "OK",
        "power_w": 87.2,
        "temp_c": 33,
        "aicore_pct": 0,
        "bus_id": "0000:C1:00.0",
        "memory_total_mb": 32768,
        "memory_used_mb": 2654,
        "memory_kind": "HBM",
        "hugepages_total": 0,
        "hugepages_used": 0,
        "processes": [],
    }
    assert [c["device"] for c in facts["chips"]] == ["/dev/davinci%d" % (7 - n) for n in range(8)]
    assert facts["fwkacllib_path"] == "%s/ascend-toolkit/latest/%s-linux/lib64" % (args["ascend_root"], platform.machine())
    assert facts["driver_mounts"][facts["fwkacllib_path"]] is True
    assert facts["docker_runtime"] == {"installed": False, "version": None, "registered_in_daemon_json": False, "default_runtime": None}


def test_phyid_remap_not_supported_warns_and_leaves_devices_null(tmp_path, capsys, warned):
    answers = atlas_800i_a2_answers()
    answers = {key: value for key, value in answers.items() if "phyid-remap" not in key}
    result = run(capsys, corpus_host(tmp_path, answers))
    assert result["_exit"] == 0
    assert {(c["phy_id"], c["device"]) for c in result["ansible_facts"]["npu"]["chips"]} == {(None, None)}
    assert len(warned) == 1 and "phyid-remap -p 0` exited with rc=2: Error parameter of info." in warned[0]
    assert call_log(tmp_path) == ["info", "info -m", "info -t phyid-remap -p 0"]


def test_memory_is_asked_only_where_the_table_has_none(tmp_path, capsys):
    answers = atlas_800i_a2_answers()
    row = "| 0                         | 0000:C1:00.0  | 0           0    / 0          2654 / 32768         |"
    answers["info"] = (0, answers["info"][1].replace(row, row.replace("2654 / 32768", "NA   / NA   ")), "")
    answers["info -t memory -i 0"] = (
        0,
        "\tNPU ID : 0\n\tChip Count : 1\n\n\tDDR Capacity(MB) : 0\n\tHBM Capacity(MB) : 32768\n\tChip ID : 0\n",
        "",
    )
    facts = run(capsys, corpus_host(tmp_path, answers))["ansible_facts"]["npu"]
    assert (facts["chips"][0]["memory_total_mb"], facts["chips"][0]["memory_used_mb"]) == (32768, None)
    assert call_log(tmp_path).count("info -t memory -i 0") == 1
    assert not [call for call in call_log(tmp_path) if call.startswith("info -t memory -i ") and call != "info -t memory -i 0"]


def test_newer_cann_layouts(tmp_path, capsys):
    args = corpus_host(tmp_path, atlas_800i_a2_answers())
    ascend = args["ascend_root"]
    shutil.rmtree(os.path.join(ascend, "ascend-toolkit"))
    cann = os.path.join(ascend, "cann-8.5.0")
    os.makedirs(os.path.join(cann, "aarch64-linux"))
    os.makedirs(os.path.join(cann, "compiler", "lib64"))
    with open(os.path.join(cann, "aarch64-linux", "ascend_toolkit_install.info"), "w") as handle:
        handle.write(read("version-toolkit-8.5.0-aarch64-01.txt"))
    os.makedirs(os.path.join(ascend, "cann-8.3.RC1"))
    facts = run(capsys, args)["ansible_facts"]["npu"]
    assert (facts["cann_version"], facts["cann_toolkit_home"]) == ("8.5.0", cann)
    assert facts["fwkacllib_path"] == os.path.join(cann, "compiler", "lib64")
    assert facts["driver_mounts"][facts["fwkacllib_path"]] is True


def test_cann_version_from_version_cfg(tmp_path, capsys):
    args = corpus_host(tmp_path, atlas_800i_a2_answers())
    latest = os.path.join(args["ascend_root"], "ascend-toolkit", "8.2.RC1")
    shutil.rmtree(os.path.join(latest, "aarch64-linux"))
    with open(os.path.join(latest, "version.cfg"), "w") as handle:
        handle.write(read("version-cfg-toolkit-8.2.RC2-01.txt"))
    assert run(capsys, args)["ansible_facts"]["npu"]["cann_version"] == "8.2.RC2"


def test_docker_runtime_from_real_files(tmp_path, capsys):
    args = corpus_host(tmp_path, atlas_800i_a2_answers())
    runtime = os.path.join(args["ascend_root"], "Ascend-Docker-Runtime")
    os.makedirs(runtime)
    with open(os.path.join(runtime, "ascend_docker_runtime_install.info"), "w") as handle:
        handle.write(read("version-ascend-docker-runtime-install.info-5.0.RC3-01.txt"))
    with open(args["docker_daemon_config"], "w") as handle:
        handle.write(read("docker-daemon.json-ascend-01.txt"))
    facts = run(capsys, args)["ansible_facts"]["npu"]
    assert facts["docker_runtime"] == {
        "installed": True,
        "version": "v5.0.RC3",
        "registered_in_daemon_json": True,
        "default_runtime": "ascend",
    }


def test_broken_daemon_json_warns(tmp_path, capsys, warned):
    args = corpus_host(tmp_path, atlas_800i_a2_answers())
    with open(args["docker_daemon_config"], "w") as handle:
        handle.write('{"runtimes": {"ascend": ')
    result = run(capsys, args)
    assert result["ansible_facts"]["npu"]["docker_runtime"]["registered_in_daemon_json"] is None
    assert len(warned) == 1 and "not valid JSON" in warned[0] and args["docker_daemon_config"] in warned[0]


# -------------------------------------------------------------------- saved output


def test_saved_output_file(tmp_path, capsys):
    saved = tmp_path / "npu-smi-info.txt"
    saved.write_text(read("info-910b3-8npu-24.1.rc2-03-busy.txt"))
    result = run(capsys, {"npu_smi_info_file": str(saved), "npu_smi_path": str(tmp_path / "absent")})
    facts = result["ansible_facts"]["npu"]
    assert (facts["npu_smi_version"], facts["npu_smi_layout"], facts["chip_count"]) == ("24.1.rc2", "a2", 8)
    assert facts["chips"][2]["processes"] == [{"pid": 1036531, "name": None, "memory_mb": 53312}]
    assert (facts["chips"][7]["memory_used_mb"], facts["chips"][7]["device"]) == (64751, None)
    for key in (
        "driver_version",
        "firmware_version",
        "cann_version",
        "cann_toolkit_home",
        "nnal_version",
        "fwkacllib_path",
        "driver_mounts",
        "device_access",
        "docker_runtime",
        "arch",
    ):
        assert facts[key] is None, key
    assert call_log(tmp_path) == []


def test_saved_output_without_process_table(tmp_path, capsys):
    saved = tmp_path / "npu-smi-info.txt"
    saved.write_text(read("info-310p3-1npu-22.0.2-fw22.0.4-01.txt"))
    chip = run(capsys, {"npu_smi_info_file": str(saved)})["ansible_facts"]["npu"]["chips"][0]
    assert (chip["npu_id"], chip["logic_id"], chip["power_w"], chip["processes"]) == (2144, 0, None, None)


def test_saved_output_cut_at_an_npu_border_warns_naming_file_and_host(tmp_path, capsys, warned):
    """Issue #17: a capture cut after NPU 2 parses as a 3-chip host; nothing in it can prove otherwise."""
    saved = tmp_path / "npu-smi-info.txt"
    saved.write_text("\n".join(read("info-910b4-8npu-25.0.rc1.1-01.txt").splitlines()[:15]) + "\n")
    facts = run(capsys, {"npu_smi_info_file": str(saved)})["ansible_facts"]["npu"]
    assert facts["chip_count"] == 3
    assert len(warned) == 1 and warned[0].startswith(
        "npu_smi_info_file %s on host %s has no process table, so nothing confirms that its 3 chip(s) are all the host has"
        % (saved, platform.node())
    )
    assert "Save the complete `npu-smi info` output" in warned[0]


def test_saved_output_cut_inside_the_process_table_warns(tmp_path, capsys, warned):
    saved = tmp_path / "npu-smi-info.txt"
    lines = read("info-910b4-8npu-25.0.rc1.1-01.txt").splitlines()
    cut = next(index for index, line in enumerate(lines) if "in NPU 3 " in line) + 2
    saved.write_text("\n".join(lines[:cut]) + "\n")
    assert run(capsys, {"npu_smi_info_file": str(saved)})["ansible_facts"]["npu"]["chip_count"] == 8
    assert len(warned) == 1 and "reports no processes for NPU 4, 5, 6, 7" in warned[0]


def test_complete_saved_output_does_not_warn(tmp_path, capsys, warned):
    saved = tmp_path / "npu-smi-info.txt"
    saved.write_text(read("info-910b4-8npu-25.0.rc1.1-01.txt"))
    assert run(capsys, {"npu_smi_info_file": str(saved)})["ansible_facts"]["npu"]["chip_count"] == 8
    assert warned == []


def test_saved_output_that_does_not_parse(tmp_path, capsys):
    saved = tmp_path / "npu-smi-info.txt"
    saved.write_text(read("error-invalid-card-id-fixture-01.txt"))
    result = run(capsys, {"npu_smi_info_file": str(saved)})
    assert result["_exit"] == 1 and result["failed"] is True
    assert str(saved) in result["msg"] and "line 1: 'Invalid card id.'" in result["msg"]


def test_saved_output_missing(tmp_path, capsys):
    result = run(capsys, {"npu_smi_info_file": str(tmp_path / "nope.txt")})
    assert result["failed"] is True and "does not exist" in result["msg"]


# ------------------------------------------------------------------------ failures


def test_npu_smi_exits_non_zero(tmp_path, capsys):
    stderr = "dcmi model initialized failed, because the device is used. ret is -8020\n"
    args = corpus_host(tmp_path, {"info": (8, "", stderr)})
    result = run(capsys, args)
    assert result["_exit"] == 1 and result["failed"] is True
    assert result["msg"] == "`%s info` exited with rc=8: %s" % (args["npu_smi_path"], stderr.strip())
    assert (result["rc"], result["stderr"], result["cmd"]) == (8, stderr, args["npu_smi_path"] + " info")
    assert "Traceback" not in json.dumps(result)


def test_npu_smi_prints_garbage(tmp_path, capsys):
    args = corpus_host(tmp_path, {"info": (0, "Segmentation fault (core dumped)\n", "")})
    result = run(capsys, args)
    assert result["failed"] is True
    assert result["msg"].startswith("could not parse the output of `%s info`: " % args["npu_smi_path"])
    assert "(line 1: 'Segmentation fault (core dumped)')" in result["msg"]
    assert result["stdout"] == "Segmentation fault (core dumped)\n"


def test_info_m_prints_garbage(tmp_path, capsys):
    answers = atlas_800i_a2_answers()
    answers["info -m"] = (0, "\n\tNPU ID  Chip ID\n", "")
    result = run(capsys, corpus_host(tmp_path, answers))
    assert result["failed"] is True
    assert "info -m`" in result["msg"] and "line 2" in result["msg"]


def test_truncated_table_fails(tmp_path, capsys):
    answers = atlas_800i_a2_answers()
    lines = answers["info"][1].splitlines()
    answers["info"] = (0, "\n".join(lines[:10]) + "\n", "")
    result = run(capsys, corpus_host(tmp_path, answers))
    assert result["failed"] is True
    assert "line 10" in result["msg"] and lines[9] in result["msg"]


def test_table_cut_before_the_process_table_fails(tmp_path, capsys):
    answers = atlas_800i_a2_answers()
    lines = answers["info"][1].splitlines()
    answers["info"] = (0, "\n".join(lines[:12]) + "\n", "")
    result = run(capsys, corpus_host(tmp_path, answers))
    assert result["failed"] is True
    assert "reported no processes" in result["msg"] and "truncated" in result["msg"]


def test_info_and_info_m_disagree(tmp_path, capsys):
    answers = atlas_800i_a2_answers()
    answers["info -m"] = (0, "\n".join(answers["info -m"][1].splitlines()[:15]) + "\n", "")
    result = run(capsys, corpus_host(tmp_path, answers))
    assert result["failed"] is True
    assert "disagree" in result["msg"] and "NPU 7 chip 0" in result["msg"]


def test_phyid_remap_prints_garbage(tmp_path, capsys):
    answers = atlas_800i_a2_answers()
    answers["info -t phyid-remap -p 3"] = (0, "oops\n", "")
    result = run(capsys, corpus_host(tmp_path, answers))
    assert result["failed"] is True
    assert "phyid-remap -p 3`" in result["msg"] and "line 1: 'oops'" in result["msg"]


def test_npu_smi_missing(tmp_path, capsys):
    result = run(capsys, {"npu_smi_path": str(tmp_path / "npu-smi"), "ascend_root": str(tmp_path)})
    assert result["failed"] is True
    assert result["msg"] == "npu-smi not found or not executable at %s (set npu_smi_path)" % (tmp_path / "npu-smi")


def test_no_device_nodes_warns(tmp_path, capsys, warned):
    args = corpus_host(tmp_path, atlas_800i_a2_answers())
    shutil.rmtree(args["dev_dir"])
    facts = run(capsys, args)["ansible_facts"]["npu"]
    assert {chip["device"] for chip in facts["chips"]} == {None}
    assert len(warned) == 1 and "no %s/davinci<N> node maps to NPU 0 chip 0" % args["dev_dir"] in warned[0]
    assert call_log(tmp_path) == ["info", "info -m"]


def test_listening_ports_come_from_ss_on_the_host(tmp_path, monkeypatch, capsys, warned):
    """A real `ss -Hltn` capture, printed by an `ss` on PATH: the ports are facts; without ss they are unknown (null)."""
    capture = os.path.join(REPO, "tests", "unit", "fixtures", "ss", "ss-Hltn-iproute2-6.1.0-01.txt")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable(bin_dir / "ss", '#!/bin/sh\n[ "$1" = -Hltn ] && exec cat %s\nexit 2\n' % capture)
    monkeypatch.setenv("PATH", "%s:%s" % (bin_dir, os.environ["PATH"]))
    facts = run(capsys, emulated_host(tmp_path / "a", monkeypatch, profile_named("a2-910b4-8x32g")))["ansible_facts"]["npu"]
    with open(capture, encoding="utf-8") as handle:
        assert facts["listening_ports"] == parse_ss_listening(handle.read()) and facts["listening_ports"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = run(capsys, emulated_host(tmp_path / "b", monkeypatch, profile_named("a2-910b4-8x32g")))
    assert result["ansible_facts"]["npu"]["listening_ports"] is None
    assert any("ss (iproute2) not found" in warning for warning in warned)


# ------------------------------------------------------------------------------ device access


def test_device_access_of_a_host_as_the_driver_makes_it():
    """crw-rw---- HwHiAiUser HwHiAiUser on every node (Ascend driver install; ls -l /dev/davinci* on an Atlas host)."""
    nodes = dict(("/dev/" + name, (1000, 1000, stat.S_IFCHR | 0o660)) for name in ("davinci0", "davinci1", "davinci_manager"))
    assert device_access(nodes, {1000: "HwHiAiUser"}.get) == {
        "nodes": {
            "/dev/davinci0": {"uid": 1000, "gid": 1000, "mode": "0660"},
            "/dev/davinci1": {"uid": 1000, "gid": 1000, "mode": "0660"},
            "/dev/davinci_manager": {"uid": 1000, "gid": 1000, "mode": "0660"},
        },
        "gid": 1000,
        "group": "HwHiAiUser",
    }


def test_device_access_with_nodes_of_different_groups_or_none():
    nodes = {"/dev/davinci0": (0, 0, stat.S_IFCHR | 0o600), "/dev/hisi_hdc": (0, 44, stat.S_IFCHR | 0o2666)}
    facts = device_access(nodes, lambda gid: None)
    assert facts["gid"] is None and facts["group"] is None
    assert facts["nodes"]["/dev/davinci0"]["mode"] == "0600" and facts["nodes"]["/dev/hisi_hdc"]["mode"] == "2666"
    assert device_access({}, lambda gid: "x") == {"nodes": {}, "gid": None, "group": None}


def test_device_access_is_read_from_the_nodes_of_the_host(tmp_path, capsys):
    """Every davinci<N> and manager node under dev_dir, named /dev/<name>, with its owner, group and mode."""
    args = corpus_host(tmp_path, atlas_800i_a2_answers())
    for name in os.listdir(args["dev_dir"]):
        os.chmod(os.path.join(args["dev_dir"], name), 0o660)
    os.chmod(os.path.join(args["dev_dir"], "hisi_hdc"), 0o640)
    os.unlink(os.path.join(args["dev_dir"], "devmm_svm"))
    access = run(capsys, args)["ansible_facts"]["npu"]["device_access"]
    expected = ["/dev/davinci%d" % number for number in range(8)] + ["/dev/davinci_manager", "/dev/hisi_hdc"]
    assert sorted(access["nodes"]) == sorted(expected)
    assert access["nodes"]["/dev/davinci7"] == {"uid": os.getuid(), "gid": os.getgid(), "mode": "0660"}
    assert access["nodes"]["/dev/hisi_hdc"]["mode"] == "0640"
    assert access["gid"] == os.getgid() and access["group"] == grp.getgrgid(os.getgid()).gr_name


def test_device_access_without_nodes(tmp_path, capsys):
    args = corpus_host(tmp_path, atlas_800i_a2_answers())
    shutil.rmtree(args["dev_dir"])
    access = run(capsys, args)["ansible_facts"]["npu"]["device_access"]
    assert access == {"nodes": {}, "gid": None, "group": None}
