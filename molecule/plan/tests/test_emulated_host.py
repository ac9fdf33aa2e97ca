"""The emulated Ascend hosts look like real ones to our roles.

Each check reads the host's own profile (/etc/npu-emulator/profile.yml) and
compares what the host exposes against it, so a profile change cannot leave
the emulator silently out of step.
"""

import subprocess

import pytest
import yaml

DAVINCI_MAJOR = 236


@pytest.fixture(name="profile")
def fixture_profile(host):
    return yaml.safe_load(host.file("/etc/npu-emulator/profile.yml").content_string)


def chip_total(profile):
    npus = len(profile.get("npu_ids") or range(int(profile.get("npu_count", 0))))
    return npus * int(profile.get("chips_per_npu", 1))


def is_character_device(host, path):
    return host.run("test -c %s" % path).rc == 0


def test_davinci_nodes_are_character_devices(host, profile):
    for index in range(chip_total(profile)):
        assert is_character_device(host, "/dev/davinci%d" % index), index
    assert not host.file("/dev/davinci%d" % chip_total(profile)).exists
    for name in ("davinci_manager", "devmm_svm", "hisi_hdc"):
        assert is_character_device(host, "/dev/" + name), name
    major = host.check_output("stat -c %t /dev/davinci0")
    assert int(major, 16) == DAVINCI_MAJOR


def test_npu_smi_table_matches_profile(host, profile):
    out = host.check_output("npu-smi info")
    assert ("npu-smi %s" % profile["npu_smi_version"]) in out
    assert out.count(profile["chip_name"]) == chip_total(profile)
    assert ("/ %s" % profile["memory_mb"]) in out
    for chip, override in (profile.get("chip_overrides") or {}).items():
        if "health" in override:
            assert override["health"] in out, "chip %s health %s" % (chip, override["health"])
        for proc in override.get("processes", []):
            assert str(proc["pid"]) in out


def test_npu_smi_rejects_unknown_card(host, profile):
    result = host.run("npu-smi info -t memory -i 4242")
    assert result.rc != 0
    assert "Invalid card id" in result.stdout


def test_ascend_layout_follows_profile(host, profile):
    driver = host.file("/usr/local/Ascend/driver/version.info")
    assert "Version=%s" % profile["driver_version"] in driver.content_string
    assert host.file("/etc/ascend_install.info").exists
    assert host.file("/usr/local/Ascend/driver/lib64").is_directory
    latest = host.file("/usr/local/Ascend/ascend-toolkit/latest")
    assert latest.is_symlink and latest.linked_to.endswith(str(profile["cann_version"]))
    fwkacllib = host.file("/usr/local/Ascend/ascend-toolkit/latest/fwkacllib")
    assert fwkacllib.exists == bool(profile.get("fwkacllib", True))
    nnal = host.file("/usr/local/Ascend/nnal/atb/latest")
    assert nnal.linked_to.endswith(str(profile["nnal_version"]))


def test_docker_runtime_registration_follows_profile(host, profile):
    daemon = host.file("/etc/docker/daemon.json").content_string
    runtime = profile.get("ascend_docker_runtime") or {}
    assert ('"ascend"' in daemon) == bool(runtime.get("registered"))


def test_inner_docker_engine_answers(host):
    assert host.check_output("docker info --format '{{.ServerVersion}}'").strip()


def test_inner_container_sees_only_its_device(host, profile):
    """The trap the serve role avoids: host node davinci<N> is device 0 inside."""
    last = chip_total(profile) - 1
    name = host.backend.get_hostname()
    if not host.run("docker image inspect npu-fleet/debian-base:bookworm").rc == 0:
        save = subprocess.Popen(["docker", "save", "npu-fleet/debian-base:bookworm"], stdout=subprocess.PIPE)
        subprocess.run(["docker", "exec", "-i", name, "docker", "load", "-q"], stdin=save.stdout, check=True, stdout=subprocess.DEVNULL)
        save.wait()
    out = host.check_output(
        "docker run --rm --device /dev/davinci%d -e ASCEND_RT_VISIBLE_DEVICES=0 npu-fleet/debian-base:bookworm "
        "sh -c 'ls /dev | grep davinci; echo visible=$ASCEND_RT_VISIBLE_DEVICES'" % last
    )
    assert out.split() == ["davinci%d" % last, "visible=0"]
