"""Tests of plugins/module_utils/_ascend_versions.py on real version files.

Every version file sample in tests/unit/fixtures/npu-smi (sources in SOURCES.md) is
parsed; expected values were read off the files by hand.
"""

import os
import random

import pytest

from ansible_collections.npu.fleet.plugins.module_utils import _ascend_versions as av
from ansible_collections.npu.fleet.plugins.module_utils._ascend_versions import AscendVersionError, VersionFileParseError

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.abspath(os.path.join(HERE, "..", "..", "fixtures", "npu-smi"))

# Everything else in the folder is npu-smi output (test__npu_smi.py).
VERSION_FILE_PREFIXES = ("version-", "docker-", "etc-")

PARSERS = [
    ("version-driver-", av.parse_driver_version_info),
    ("version-firmware-", av.parse_firmware_version_info),
    ("version-toolkit-component-version.info-", av.parse_component_version_info),
    ("version-opp_kernel-", av.parse_component_version_info),
    ("version-toolkit-", av.parse_install_info),
    ("version-nnae-", av.parse_install_info),
    ("version-cfg-", av.parse_version_cfg),
    ("version-nnal-", av.parse_nnal_version_info),
    ("version-mindie-", av.parse_mindie_version_info),
    ("version-atb-models-", av.parse_atb_models_version_info),
    ("version-ascend-docker-runtime-install.info-", av.parse_docker_runtime_install_info),
    ("etc-ascend_install.info-", av.parse_ascend_install_info),
    ("docker-daemon.json-", av.parse_docker_daemon_json),
    ("docker-version-", av.parse_docker_version),
]

SAMPLES = sorted(name for name in os.listdir(FIXTURES) if name.endswith(".txt") and name.startswith(VERSION_FILE_PREFIXES))


def read(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return handle.read()


def parse(name):
    parser = next(parser for prefix, parser in PARSERS if name.startswith(prefix))
    return parser(read(name))


# Hand-read: file -> (key, value) pairs the parse result must contain.
EXPECTED = {
    "version-driver-23.0.7-fixture-01.txt": {
        "version": "23.0.7",
        "package_version": "23.0.7",
        "compatible_version_fw": [("7.0.0", "7.1.99")],
    },
    "version-driver-24.1.rc2.2-01.txt": {
        "version": "24.1.rc2.2",
        "innerversion": "V100R001C18SPC001B233",
        "compatible_version_fw": [("7.0.0", "7.2.99")],
    },
    "version-driver-25.0.rc1.1-01.txt": {
        "version": "25.0.rc1.1",
        "compatible_version_fw": [("7.0.0", "7.7.99")],
        "compatible_version": ["V100R001C17", "V100R001C18", "V100R001C19", "V100R001C20", "V100R001C21"],
    },
    "version-driver-25.0.rc1.1-02.txt": {"version": "25.0.rc1.1", "compatible_version_fw": [("6.4.0", "6.4.99"), ("7.0.0", "7.7.99")]},
    "version-firmware-7.1.0.11.220-fixture-01.txt": {
        "version": "7.1.0.11.220",
        "package_version": "23.0.7",
        "compatible_version_drv": [("23.0.rc3", "23.0.rc3."), ("23.0.0", "23.0.0.")],
    },
    "version-firmware-7.7.0.1.231-01.txt": {
        "version": "7.7.0.1.231",
        "package_version": "25.0.rc1.1",
        "compatible_version_drv": [("23.0.0", "23.0.0."), ("24.0", "24.0."), ("24.1", "24.1."), ("25.0", "25.0.")],
    },
    "version-firmware-7.7.0.1.231-02.txt": {
        "version": "7.7.0.1.231",
        "compatible_version_drv": [
            ("23.0.rc2", "23.0.rc2."),
            ("23.0.rc3", "23.0.rc3."),
            ("23.0.0", "23.0.0."),
            ("24.0", "24.0."),
            ("24.1", "24.1."),
            ("25.0", "25.0."),
        ],
    },
    "version-toolkit-7.0.RC1-aarch64-310b-01.txt": {
        "version": "7.0.RC1",
        "arch": "aarch64",
        "package_name": "Ascend-cann-toolkit",
        "path": "/usr/local/Ascend/ascend-toolkit/7.0.RC1/aarch64-linux",
    },
    "version-toolkit-7.0.T10-aarch64-fixture-01.txt": {"version": "7.0.T10", "innerversion": "V100R001C13B222"},
    "version-toolkit-8.0.0-aarch64-01.txt": {"version": "8.0.0", "innerversion": "V100R001C20SPC001B251"},
    "version-toolkit-8.0.0-aarch64-02-310p.txt": {"version": "8.0.0", "os": "linux"},
    "version-toolkit-8.1.RC1-aarch64-01.txt": {"version": "8.1.RC1", "innerversion": "V100R001C21SPC001B238"},
    "version-toolkit-8.1.RC1-aarch64-02-310p.txt": {
        "version": "8.1.RC1",
        "innerversion": "V100R001C21B054",
        "compatible_version": [("V100R001C17",), ("V100R001C18",), ("V100R001C19",), ("V100R001C20",), ("V100R001C21",)],
    },
    "version-toolkit-8.1.RC1-x86_64-01.txt": {
        "version": "8.1.RC1",
        "arch": "x86_64",
        "path": "/usr/local/Ascend/ascend-toolkit/8.1.RC1/x86_64-linux",
    },
    "version-toolkit-8.2.RC1-aarch64-01.txt": {"version": "8.2.RC1", "innerversion": "V100R001C22SPC001B231"},
    "version-toolkit-8.2.RC1-aarch64-02.txt": {"version": "8.2.RC1"},
    "version-toolkit-8.3.RC1-aarch64-01.txt": {"version": "8.3.RC1", "innerversion": "V100R001C23B085"},
    "version-toolkit-8.3.RC2-aarch64-01.txt": {"version": "8.3.RC2", "innerversion": "V100R001C23SPC002B210"},
    "version-toolkit-8.5.0-aarch64-01.txt": {"version": "8.5.0", "path": "/usr/local/Ascend/cann-8.5.0"},
    "version-nnae-8.0.RC3-x86_64-fixture-01.txt": {
        "version": "8.0.RC3",
        "package_name": "Ascend-cann-nnae",
        "arch": "x86_64",
        "compatible_version": [("V100R001C13", "V100R001C19"), ("V100R001C30",)],
    },
    "version-cfg-toolkit-8.0.T63-01.txt": {"version": "8.0.T63", "inner_version": "7.6.T13.0.B094"},
    "version-cfg-toolkit-8.2.RC2-01.txt": {"version": "8.2.RC2", "inner_version": "8.2.0.2.220"},
    "version-toolkit-component-version.info-8.2.RC1-01.txt": {"version": "8.2.0.0.201", "version_dir": "8.2.RC1"},
    "version-opp_kernel-8.2.RC1-01.txt": {"version": "8.2.0.0.201", "version_dir": "8.2.RC1"},
    "version-nnal-atb-8.0.T63-01.txt": {
        "version": "8.0.T63",
        "build_version": "8.0.T63.B020",
        "branch": "br_feature_cann_8.0.0_POC_20250130",
    },
    "version-nnal-atb-8.1.RC1-01.txt": {"version": "8.1.RC1", "build_version": "8.1.RC1.B110", "platform": "aarch64"},
    "version-nnal-atb-8.2.RC1-01.txt": {
        "version": "8.2.RC1",
        "build_version": "8.2.RC1.B150",
        "commit_id": "f10dc20391d8af04c3f8024aca0e0dfa94d2a0a5",
    },
    "version-mindie-2.0.T3.B010-01.txt": {"version": "2.0.T3.B010", "platform": "aarch64"},
    "version-mindie-2.1.RC1-01.txt": {"version": "2.1.RC1.B152"},
    "version-mindie-2.1.RC2.B080-01.txt": {"version": "2.1.RC2.B080"},
    "version-atb-models-2.0.T3.B010-01.txt": {
        "version": "2.0.T3.B010",
        "mindie_atb_version": None,
        "branch": "master",
        "time": "2025-02-05 03:45:45 PM CST",
    },
    "version-atb-models-empty-02.txt": {
        "version": None,
        "mindie_atb_version": None,
        "commit_id": "8a0bb889056f2c40e256bae4aef32cdcfbf81334",
    },
    "version-ascend-docker-runtime-install.info-5.0.RC3-01.txt": {
        "version": "v5.0.RC3",
        "arch": "aarch64",
        "path": "/usr/local/Ascend/Ascend-Docker-Runtime",
        "build": "Ascend-docker-runtime_5.0.RC3-aarch64",
    },
    "etc-ascend_install.info-01.txt": {
        "username": "HwHiAiUser",
        "usergroup": "HwHiAiUser",
        "driver_install_path": "/usr/local/Ascend",
        "firmware_install_path": "/usr/local/Ascend",
    },
    "docker-daemon.json-ascend-01.txt": {
        "ascend_runtime_registered": True,
        "default_runtime": "ascend",
        "ascend_is_default": True,
        "ascend_runtime_path": "/usr/local/Ascend/Ascend-Docker-Runtime/ascend-docker-runtime",
    },
    "docker-daemon.json-ascend-02.txt": {"ascend_runtime_registered": True, "runtimes": ["ascend"], "default_runtime": "ascend"},
    "docker-version-ascend-runtime-1.1.12-01.txt": {
        "client": "24.0.7",
        "server": "24.0.7",
        "components": {"Engine": "24.0.7", "containerd": "v1.6.28", "ascend": "1.1.12", "docker-init": "0.19.0"},
    },
}


@pytest.mark.parametrize("name", SAMPLES)
def test_every_version_sample_is_classified_parsed_and_hand_checked(name):
    assert any(name.startswith(prefix) for prefix, _parser in PARSERS), "new sample %s: add its prefix to PARSERS" % name
    assert name in EXPECTED, "new sample %s: add hand-checked values to EXPECTED" % name
    result = parse(name)
    for key, value in EXPECTED[name].items():
        assert result[key] == value, key


def test_version_cfg_components():
    result = parse("version-cfg-toolkit-8.0.T63-01.txt")
    assert sorted(result["components"]) == ["aoe", "compiler", "hccl", "ncs", "opp", "opp_kernel", "runtime", "toolkit"]
    assert result["components"]["opp_kernel"]["installed"] == {"inner": "7.6.T13.0.B094", "release": "8.0.T63"}


def test_component_version_requirements_are_unquoted():
    assert parse("version-opp_kernel-8.2.RC1-01.txt")["required"]["runtime"] == ">=7.6, <=8.2"
    toolkit = parse("version-toolkit-component-version.info-8.2.RC1-01.txt")["required"]
    assert (toolkit["runtime"], toolkit["opp_kernel"]) == ("8.2", ">=7.6, <=8.2")


def test_mindie_mixed_separators():
    assert parse("version-mindie-2.1.RC1-01.txt")["components"] == {
        "mindie-rt": "2.1.RC1.B152",
        "mindie-torch": "2.1.RC1.B152",
        "mindie-service": "2.1.RC1.B152",
        "mindie-llm": "2.1.RC1.B152",
        "mindie-sd": "2.1.RC1.B152",
    }


def test_docker_runtime_install_types():
    flags = parse("version-ascend-docker-runtime-install.info-5.0.RC3-01.txt")["install_types"]
    assert flags == {"a500": False, "a500a2": False, "a200": False, "a200isoc": False, "a200ia2": False}


def test_driver_keeps_every_value():
    assert parse("version-driver-23.0.7-fixture-01.txt")["values"]["ascendhal_version"] == "7.35.19"


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "parser",
    [
        av.parse_driver_version_info,
        av.parse_firmware_version_info,
        av.parse_install_info,
        av.parse_version_cfg,
        av.parse_component_version_info,
        av.parse_ascend_install_info,
        av.parse_docker_runtime_install_info,
        av.parse_nnal_version_info,
        av.parse_mindie_version_info,
        av.parse_atb_models_version_info,
        av.parse_docker_daemon_json,
    ],
)
@pytest.mark.parametrize("text", ["", "  \n"])
def test_empty_files(parser, text):
    with pytest.raises(VersionFileParseError, match="empty"):
        parser(text)


@pytest.mark.parametrize(
    "parser",
    [av.parse_driver_version_info, av.parse_install_info, av.parse_version_cfg, av.parse_nnal_version_info, av.parse_ascend_install_info],
)
def test_garbage_names_the_line(parser):
    with pytest.raises(VersionFileParseError) as error:
        parser("\n\x00\x7fELF garbage\n")
    assert (error.value.line_number, error.value.line) == (2, "\x00\x7fELF garbage")


def test_driver_without_version_key():
    with pytest.raises(VersionFileParseError, match="'Version'"):
        av.parse_driver_version_info("package_version=23.0.7\n")


def test_bad_compatibility_list_names_its_line():
    with pytest.raises(VersionFileParseError) as error:
        av.parse_driver_version_info("Version=23.0.7\ncompatible_version_fw=7.0.0-7.1.99\n")
    assert error.value.line_number == 2


def test_truncated_daemon_json_names_the_line():
    text = read("docker-daemon.json-ascend-01.txt")
    with pytest.raises(VersionFileParseError, match="not valid JSON") as error:
        av.parse_docker_daemon_json(text[: text.index('"default-shm-size"')])
    assert error.value.line_number == 8


def test_daemon_json_without_ascend():
    result = av.parse_docker_daemon_json('{"storage-driver": "overlay2", "runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}}')
    assert (result["ascend_runtime_registered"], result["default_runtime"], result["runtimes"]) == (False, None, ["nvidia"])
    renamed = av.parse_docker_daemon_json('{"runtimes": {"npu": {"path": "/opt/x/ascend-docker-runtime"}}, "default-runtime": "runc"}')
    assert (renamed["ascend_runtimes"], renamed["ascend_is_default"]) == (["npu"], False)


def test_daemon_json_that_is_not_an_object():
    with pytest.raises(VersionFileParseError, match="not a JSON object"):
        av.parse_docker_daemon_json("[]")


# ------------------------------------------------------------------ ordering

# Each list is in ascending order; rules in the _ascend_versions docstring.
CANN_ORDER = [
    "7.0.T10",
    "7.0.RC1",
    "7.0.0",
    "8.0.T63",
    "8.0.RC1.alpha001",
    "8.0.RC1",
    "8.0.RC2",
    "8.0.RC3.alpha003",
    "8.0.RC3",
    "8.0.0",
    "8.1.RC1.alpha001",
    "8.1.RC1.beta1",
    "8.1.RC1",
    "8.1.RC1.B110",
    "8.1.RC2",
    "8.2.RC1",
    "8.2.RC1.B150",
    "8.2.RC2",
    "8.3.RC1",
    "8.5.0",
    "8.5.1",
    "9.1.0-beta.1",
    "9.1.0",
    "10.0.0",
]
DRIVER_ORDER = [
    "22.0.2",
    "22.0.4",
    "23.0.rc2",
    "23.0.rc2.b090",
    "23.0.rc3",
    "23.0.0",
    "23.0.2",
    "23.0.2.1",
    "23.0.7",
    "24.0",
    "24.0.rc1",
    "24.1.rc2",
    "24.1.rc2.2",
    "24.1.rc3",
    "24.1.rc3.5",
    "24.1.0",
    "24.1.0.1",
    "25.0.rc1",
    "25.0.rc1.b033",
    "25.0.rc1.1",
    "25.2.0",
    "25.5.1",
    "25.5.2",
    "25.7.rc1.6",
    "26.0.rc1",
]
FIRMWARE_ORDER = ["6.4.99", "7.0.0", "7.1.0.11.220", "7.1.99", "7.5.0.1.129", "7.7.0.1.231", "7.7.99", "7.8.0.6.201"]
MINDIE_ORDER = ["2.0.T3.B010", "2.0.RC1", "2.1.RC1", "2.1.RC1.B152", "2.1.RC2", "2.1.RC2.B080"]


@pytest.mark.parametrize("ordered", [CANN_ORDER, DRIVER_ORDER, FIRMWARE_ORDER, MINDIE_ORDER], ids=["cann", "driver", "firmware", "mindie"])
def test_version_order(ordered):
    shuffled = list(ordered)
    random.Random(7).shuffle(shuffled)
    assert sorted(shuffled, key=av.version_key) == ordered
    for lower, higher in zip(ordered, ordered[1:]):
        assert av.compare_versions(lower, higher) == -1
        assert av.compare_versions(higher, lower) == 1


@pytest.mark.parametrize(
    "left, right", [("8.1.RC1", "8.1.rc1"), ("v5.0.RC3", "5.0.RC3"), ("23.0.2.0", "23.0.2"), ("8.2.RC1.B0", "8.2.RC1")]
)
def test_equal_versions(left, right):
    assert av.compare_versions(left, right) == 0


def test_the_questions_the_scheme_answers():
    assert av.compare_versions("8.0.RC3", "8.0.0") < 0
    assert av.compare_versions("8.0.0", "8.1.RC1") < 0
    assert av.compare_versions("8.1.RC1.alpha001", "8.1.RC1") < 0
    assert av.compare_versions("8.0.T63", "8.0.RC1") < 0
    assert av.compare_versions("24.1.rc2.2", "24.1.rc3") < 0
    assert av.compare_versions("25.0.rc1.1", "25.0.rc1") > 0


@pytest.mark.parametrize("text", ["", "latest", "V100R001C21SPC002B220", "8.0.RC1.RC2", "8..0", "8.0.RC1.gamma", "8.0.B080"])
def test_not_versions(text):
    with pytest.raises(AscendVersionError):
        av.version_key(text)


@pytest.mark.parametrize(
    "version, low, high, inside",
    [
        ("25.0.rc1.1", "25.0", "25.0.", True),
        ("25.0.0", "25.0", "25.0.", True),
        ("25.1.0", "25.0", "25.0.", False),
        ("24.1.rc2.2", "23.0.rc3", "23.0.rc3.", False),
        ("23.0.rc3", "23.0.rc3", "23.0.rc3.", True),
        ("7.7.0.1.231", "7.0.0", "7.7.99", True),
        ("7.8.0.6.201", "7.0.0", "7.7.99", False),
        ("6.4.50", "7.0.0", "7.7.99", False),
    ],
)
def test_version_in_range(version, low, high, inside):
    assert av.version_in_range(version, low, high) is inside


def test_driver_firmware_compatibility_of_a_real_pair():
    """driver 25.0.rc1.1 with firmware 7.7.0.1.231 (same host, both files in the corpus)."""
    driver = parse("version-driver-25.0.rc1.1-01.txt")
    firmware = parse("version-firmware-7.7.0.1.231-01.txt")
    assert any(av.version_in_range(firmware["version"], low, high) for low, high in driver["compatible_version_fw"])
    assert any(av.version_in_range(driver["version"], low, high) for low, high in firmware["compatible_version_drv"])
    older = parse("version-firmware-7.1.0.11.220-fixture-01.txt")
    assert not any(av.version_in_range(driver["version"], low, high) for low, high in older["compatible_version_drv"])


def test_parse_version_list():
    assert av.parse_version_list("") == []
    assert av.parse_version_list("[1,2],[3]") == [("1", "2"), ("3",)]
    with pytest.raises(ValueError):
        av.parse_version_list("7.0.0,7.1.99")
