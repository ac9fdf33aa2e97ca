"""Tests of plugins/module_utils/_npu_smi.py on real npu-smi output and on the emulator.

Every sample in tests/unit/fixtures/npu-smi (sources in SOURCES.md there) is parsed;
the expected values below were read off the sample files by hand, not produced by
the parser.  Version files of the same folder are tested in test__ascend_versions.py.
"""

import glob
import os
import subprocess
import sys

import pytest
import yaml

from ansible_collections.npu.fleet.plugins.module_utils import _npu_smi as smi
from ansible_collections.npu.fleet.plugins.module_utils._npu_smi import NpuSmiMismatchError, NpuSmiParseError

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
FIXTURES = os.path.join(REPO, "tests", "unit", "fixtures", "npu-smi")
EMULATOR = os.path.join(REPO, "tests", "emulator", "npu_smi.py")
PROFILES = sorted(glob.glob(os.path.join(REPO, "tests", "emulator", "profiles", "*.yml")))

# Samples of files, not of npu-smi: tested in test__ascend_versions.py.
VERSION_FILE_PREFIXES = ("version-", "docker-", "etc-")

# File name prefix -> parser; the first match wins, so longer prefixes come first.
PARSERS = [
    ("info-h-", smi.parse_info_help),
    ("info-l-", smi.parse_info_l),
    ("info-m-", smi.parse_info_m),
    ("info-", smi.parse_info),
    ("usages-", smi.parse_usages),
    ("memory-", smi.parse_memory),
    ("health-", smi.parse_health),
    ("topo-", smi.parse_topo),
    ("board-", smi.parse_info_type),
    ("common-", smi.parse_info_type),
    ("temp-", smi.parse_info_type),
    ("power-", smi.parse_info_type),
    ("upgrade-", smi.parse_info_type),
    ("error-", smi.parse_info),
]

NPU_SMI_SAMPLES = sorted(name for name in os.listdir(FIXTURES) if name.endswith(".txt") and not name.startswith(VERSION_FILE_PREFIXES))
INFO_TABLES = [name for name in NPU_SMI_SAMPLES if name.startswith("info-") and not name.startswith(("info-h-", "info-l-", "info-m-"))]


def read(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return handle.read()


def parser_for(name):
    return next((parser for prefix, parser in PARSERS if name.startswith(prefix)), None)


def row(chip):
    """The hand-checkable fields of a chip, in table order."""
    return (
        chip["npu_id"],
        chip["chip_id"],
        chip["logic_id"],
        chip["phy_id"],
        chip["name"],
        chip["health"],
        chip["power_w"],
        chip["temp_c"],
        chip["aicore_pct"],
        chip["bus_id"],
        chip["memory_used_mb"],
        chip["memory_total_mb"],
        chip["memory_kind"],
        chip["hugepages_used"],
        chip["hugepages_total"],
    )


def busy(chips):
    """{(npu, chip): [(pid, name, memory)]} for chips with processes."""
    return {(c["npu_id"], c["chip_id"]): [(p["pid"], p["name"], p["memory_mb"]) for p in c["processes"]] for c in chips if c["processes"]}


def unreported(chips):
    return [(c["npu_id"], c["chip_id"]) for c in chips if c["processes"] is None]


# --------------------------------------------------------------- every sample parses


@pytest.mark.parametrize("name", NPU_SMI_SAMPLES)
def test_every_npu_smi_sample_is_classified_and_parses(name):
    parser = parser_for(name)
    assert parser is not None, "new sample %s: add its prefix to PARSERS" % name
    text = read(name)
    if name.startswith("error-"):
        for reader in (smi.parse_info, smi.parse_info_m, smi.parse_info_type, smi.parse_memory, smi.parse_usages):
            with pytest.raises(NpuSmiParseError) as error:
                reader(text)
            assert (error.value.line_number, error.value.line) == (1, "Invalid card id.")
            assert "Invalid card id." in str(error.value)
    else:
        assert parser(text)


@pytest.mark.parametrize("name", INFO_TABLES)
def test_every_info_table_has_hand_checked_values(name):
    assert name in EXPECTED, "new npu-smi info sample %s: add hand-checked values to EXPECTED" % name


# (npu_smi_version, driver_version, layout, chip count, first chip row, last chip row,
#  busy chips, chips whose processes the output does not report)
EXPECTED = {
    "info-310-1npu-23.0.0-01.txt": (
        "23.0.0",
        "23.0.0",
        "310",
        1,
        (0, 0, 0, None, "310", "OK", 12.8, 61, 0, "0000:01:00.0", 577, 7759, "DDR", 0, 969),
        None,
        {},
        [],
    ),
    "info-310b4-1npu-23.0.rc3-01.txt": (
        "23.0.rc3",
        "23.0.rc3",
        "310",
        1,
        (0, 0, 0, None, "310B4", "OK", 7.2, 37, 0, None, 1797, 3513, "DDR", 15, 15),
        None,
        {},
        [(0, 0)],
    ),
    "info-310b4-1npu-23.0.rc3-02-narrow.txt": (
        "23.0.rc3",
        "23.0.rc3",
        "310",
        1,
        (0, 0, 0, None, "310B4", "OK", 7.7, 54, 0, None, 2166, 3513, "DDR", 15, 15),
        None,
        {},
        [(0, 0)],
    ),
    "info-310p3-1npu-22.0.0-fw22.0.2-01.txt": (
        "22.0.0",
        "22.0.2",
        "310",
        1,
        (0, 0, 0, None, "310P3", "OK", 16.5, 55, 0, "0000:5E:00.0", 931, 21534, "DDR", 0, 0),
        None,
        {},
        [(0, 0)],
    ),
    "info-310p3-1npu-22.0.0-fw22.0.2-02.txt": (
        "22.0.0",
        "22.0.2",
        "310",
        1,
        (0, 0, 0, None, "310P3", "OK", 17.0, 56, 0, "0000:AF:00.0", 934, 23054, "DDR", 0, 0),
        None,
        {},
        [(0, 0)],
    ),
    "info-310p3-1npu-22.0.0-fw22.0.2-03-hugepages.txt": (
        "22.0.0",
        "22.0.2",
        "310",
        1,
        (0, 0, 0, None, "310P3", "OK", 16.3, 53, 0, "0000:86:00.0", 4060, 21534, "DDR", 1236, 1236),
        None,
        {},
        [(0, 0)],
    ),
    "info-310p3-1npu-22.0.0-fw22.0.3-01.txt": (
        "22.0.0",
        "22.0.3",
        "310",
        1,
        (0, 0, 0, None, "310P3", "OK", 17.1, 56, 0, "0000:86:00.0", 3292, 21527, "DDR", 0, 0),
        None,
        {},
        [(0, 0)],
    ),
    "info-310p3-1npu-22.0.2-fw22.0.4-01.txt": (
        "22.0.2",
        "22.0.4",
        "310",
        1,
        (2144, 0, 0, None, "310P3", "OK", None, 47, 0, "0000:86:00.0", 1807, 21527, "DDR", 0, 0),
        None,
        {},
        [(2144, 0)],
    ),
    "info-310p3-1npu-24.1.rc3.1-01.txt": (
        "24.1.rc3.1",
        "24.1.rc3.1",
        "310",
        1,
        (96, 0, 0, None, "310P3", "OK", None, 46, 0, "0000:04:00.0", 1836, 21527, "DDR", 0, 0),
        None,
        {},
        [],
    ),
    "info-310p3-1npu-25.5.2-01-anonymized-busid.txt": (
        "25.5.2",
        "25.5.2",
        "310",
        1,
        (32896, 0, 0, None, "310P3", "OK", None, 54, 0, "0000:00:00.0", 1904, 44213, "DDR", 0, 0),
        None,
        {},
        [],
    ),
    "info-310p3-2npu-noheader-01.txt": (
        None,
        None,
        "310",
        2,
        (0, 0, 0, None, "310P3", "OK", 15.8, 42, 0, "0000:82:00.0", 1074, 21534, "DDR", 0, 0),
        (1, 0, 1, None, "310P3", "OK", 15.4, 43, 0, "0000:89:00.0", 1070, 21534, "DDR", 0, 0),
        {},
        [(0, 0), (1, 0)],
    ),
    "info-310p3-duo-2chip-24.1.rc2-01.txt": (
        "24.1.rc2",
        "24.1.rc2",
        "310",
        2,
        (1792, 0, 0, None, "310P3", "OK", None, 36, 0, "0000:07:00.0", 1821, 44280, "DDR", 0, 0),
        (1792, 1, 1, None, "310P3", "OK", None, 36, 0, "0000:07:00.0", 1041, 43693, "DDR", 0, 0),
        {},
        [],
    ),
    "info-310p3-duo-4card-8chip-24.1.0.1-01.txt": (
        "24.1.0.1",
        "24.1.0.1",
        "310",
        8,
        (1536, 0, 0, None, "310P3", "OK", None, 51, 0, "0000:06:00.0", 1596, 44280, "DDR", 0, 0),
        (2304, 1, 7, None, "310P3", "OK", None, 50, 0, "0000:09:00.0", 1278, 43693, "DDR", 0, 0),
        {},
        [],
    ),
    "info-910a-1npu-23.0.rc3-01-warning.txt": (
        "23.0.rc3",
        "23.0.rc3",
        "a2",
        1,
        (1, 0, None, None, "910A", "Warning", 69.6, 35, 0, "0000:81:00.0", 1, 32768, "HBM", 0, 0),
        None,
        {},
        [],
    ),
    "info-910b1-8npu-23.0.rc2-01-elided.txt": (
        "23.0.rc2",
        "23.0.rc2",
        "a2",
        3,
        (0, 0, None, None, "910B1", "OK", 88.4, 46, 0, "0000:C1:00.0", 4175, 65536, "HBM", 0, 0),
        (7, 0, None, None, "910B1", "OK", 92.7, 48, 0, "0000:42:00.0", 4174, 65536, "HBM", 0, 0),
        {},
        [(0, 0), (1, 0), (7, 0)],
    ),
    "info-910b1-8npu-23.0.rc2.b090-01-elided.txt": (
        "23.0.rc2.b090",
        "23.0.rc2.b090",
        "a2",
        2,
        (0, 0, None, None, "910B1", "OK", 327.1, 54, 57, "0000:C1:00.0", 64293, 65536, "HBM", 0, 0),
        (7, 0, None, None, "910B1", "OK", 451.6, 76, 68, "0000:42:00.0", 64114, 65536, "HBM", 0, 0),
        {(0, 0): [(2441447, "python", 59618)], (7, 0): [(2441454, "python", 59802)]},
        [],
    ),
    "info-910b1-8npu-24.1.0-01.txt": (
        "24.1.0",
        "24.1.0",
        "a2",
        8,
        (0, 0, None, None, "910B1", "OK", 93.1, 36, 0, "0000:C1:00.0", 3418, 65536, "HBM", 0, 0),
        (7, 0, None, None, "910B1", "OK", 94.0, 36, 0, "0000:42:00.0", 3404, 65536, "HBM", 0, 0),
        {},
        [],
    ),
    "info-910b2-8npu-24.1.1-01.txt": (
        "24.1.1",
        "24.1.1",
        "a2",
        8,
        (0, 0, None, None, "910B2", "OK", 86.9, 42, 0, "0000:C1:00.0", 3532, 65536, "HBM", 0, 0),
        (7, 0, None, None, "910B2", "OK", 95.7, 43, 0, "0000:42:00.0", 3402, 65536, "HBM", 0, 0),
        {},
        [(n, 0) for n in range(8)],
    ),
    "info-910b2c-2npu-23.0.2.1-01-trailing-space.txt": (
        "23.0.2.1",
        "23.0.2.1",
        "a2",
        2,
        (0, 0, None, None, "910B2C", "OK", 88.6, 51, 0, "0000:5A:00.0", 20701, 65536, "HBM", 0, 0),
        (1, 0, None, None, "910B2C", "OK", 99.6, 50, 0, "0000:19:00.0", 20687, 65536, "HBM", 0, 0),
        {(0, 0): [(124528, "python3.8", 17400)]},
        [(1, 0)],
    ),
    "info-910b3-4npu-24.1.rc2-01.txt": (
        "24.1.rc2",
        "24.1.rc2",
        "a2",
        4,
        (4, 0, None, None, "910B3", "OK", 96.6, 54, 0, "0000:01:00.0", 13281, 65536, "HBM", 0, 0),
        (7, 0, None, None, "910B3", "OK", 103.6, 54, 0, "0000:42:00.0", 3369, 65536, "HBM", 0, 0),
        {(4, 0): [(17011, "python", 9963)], (5, 0): [(17544, "python", 9942)]},
        [],
    ),
    "info-910b3-8npu-23.0.7-01.txt": (
        "23.0.7",
        "23.0.7",
        "a2",
        8,
        (0, 0, None, None, "910B3", "OK", 98.3, 43, 0, "0000:C1:00.0", 59985, 65536, "HBM", 0, 0),
        (7, 0, None, None, "910B3", "OK", 92.1, 49, 0, "0000:42:00.0", 3350, 65536, "HBM", 0, 0),
        {(0, 0): [(49943, None, 56681)], (1, 0): [(49944, None, 56681)], (2, 0): [(49945, None, 56681)], (3, 0): [(49946, None, 56681)]},
        [],
    ),
    "info-910b3-8npu-24.1.rc2-02.txt": (
        "24.1.rc2",
        "24.1.rc2",
        "a2",
        8,
        (0, 0, None, None, "910B3", "OK", 94.6, 37, 0, "0000:C1:00.0", 3359, 65536, "HBM", 0, 0),
        (7, 0, None, None, "910B3", "OK", 94.8, 41, 0, "0000:42:00.0", 3350, 65536, "HBM", 0, 0),
        {},
        [],
    ),
    "info-910b3-8npu-24.1.rc2-03-busy.txt": (
        "24.1.rc2",
        "24.1.rc2",
        "a2",
        8,
        (0, 0, None, None, "910B3", "OK", 99.6, 42, 0, "0000:C1:00.0", 3373, 65536, "HBM", 0, 0),
        (7, 0, None, None, "910B3", "OK", 94.1, 44, 0, "0000:42:00.0", 64751, 65536, "HBM", 0, 0),
        {
            (2, 0): [(1036531, None, 53312)],
            (3, 0): [(1036533, None, 53312)],
            (4, 0): [(2729266, None, 61430)],
            (5, 0): [(2729268, None, 61430)],
            (6, 0): [(2729275, None, 61430)],
            (7, 0): [(2729282, None, 61429)],
        },
        [],
    ),
    "info-910b3-8npu-25.2.0-01.txt": (
        "25.2.0",
        "25.2.0",
        "a2",
        8,
        (0, 0, None, None, "910B3", "OK", 97.9, 34, 0, "0000:C1:00.0", 3408, 65536, "HBM", 0, 0),
        (7, 0, None, None, "910B3", "OK", 95.4, 37, 0, "0000:42:00.0", 3400, 65536, "HBM", 0, 0),
        {(2, 0): [(1333928, None, 37709)]},
        [],
    ),
    "info-910b4-1npu-25.0.rc1.1-redacted-busid.txt": (
        "25.0.rc1.1",
        "25.0.rc1.1",
        "a2",
        1,
        (0, 0, None, None, "910B4", "OK", 105.5, 39, 5, "xxxx:xx:xx.x", 6154, 65536, "HBM", 0, 0),
        None,
        {},
        [(0, 0)],
    ),
    "info-910b4-4npu-24.1.rc3-01.txt": (
        "24.1.rc3",
        "24.1.rc3",
        "a2",
        4,
        (0, 0, None, None, "910B4", "OK", 90.8, 39, 0, "0000:C1:00.0", 29070, 32768, "HBM", 0, 0),
        (4, 0, None, None, "910B4", "OK", 82.6, 40, 0, "0000:81:00.0", 2826, 32768, "HBM", 0, 0),
        {(0, 0): [(5063, "python3.10", 26293)]},
        [],
    ),
    "info-910b4-8npu-24.1.rc2-01.txt": (
        "24.1.rc2",
        "24.1.rc2",
        "a2",
        8,
        (0, 0, None, None, "910B4", "OK", 99.1, 43, 0, "0000:C1:00.0", 30209, 32768, "HBM", 0, 0),
        (7, 0, None, None, "910B4", "OK", 92.0, 47, 0, "0000:42:00.0", 30207, 32768, "HBM", 0, 0),
        {(n, 0): [(518867 + n, "mindieservice_b", 27474)] for n in range(8)},
        [],
    ),
    "info-910b4-8npu-25.0.rc1.1-01.txt": (
        "25.0.rc1.1",
        "25.0.rc1.1",
        "a2",
        8,
        (0, 0, None, None, "910B4", "OK", 87.2, 33, 0, "0000:C1:00.0", 2654, 32768, "HBM", 0, 0),
        (7, 0, None, None, "910B4", "OK", 81.6, 37, 0, "0000:42:00.0", 2653, 32768, "HBM", 0, 0),
        {},
        [],
    ),
    "info-910b4-8npu-25.2.0-01.txt": (
        "25.2.0",
        "25.2.0",
        "a2",
        8,
        (0, 0, None, None, "910B4", "OK", 84.7, 38, 0, "0000:C1:00.0", 2894, 32768, "HBM", 0, 0),
        (7, 0, None, None, "910B4", "OK", 84.9, 40, 0, "0000:42:00.0", 2659, 32768, "HBM", 0, 0),
        {(0, 0): [(472206, "python3.9", 113)]},
        [],
    ),
    "info-950pr-a5-1npu-25.7.rc1.6-01-excerpt.txt": (
        "25.7.rc1.6",
        "25.7.rc1.6",
        "a5",
        1,
        (0, None, None, None, "Ascend950PR", "OK", 195.6, 56, 0, "0000:61:00.0", 5239, 131072, "HBM", 0, 0),
        None,
        {},
        [],
    ),
    "info-a3-ascend910-16chip-24.1.rc3.5-01.txt": (
        "24.1.rc3.5",
        "24.1.rc3.5",
        "a3",
        16,
        (0, 0, None, 0, "Ascend910", "OK", 180.2, 38, 0, "0000:9D:00.0", 3430, 65536, "HBM", 0, 0),
        (7, 1, None, 15, "Ascend910", "OK", None, 36, 0, "0000:83:00.0", 3187, 65536, "HBM", 0, 0),
        {},
        [],
    ),
    "info-a3-ascend910-16chip-25.2.0-01.txt": (
        "25.2.0",
        "25.2.0",
        "a3",
        16,
        (0, 0, None, 0, "Ascend910", "OK", 211.3, 43, 7, "0000:9D:00.0", 61609, 65536, "HBM", 0, 0),
        (7, 1, None, 15, "Ascend910", "OK", None, 43, 7, "0000:83:00.0", 61631, 65536, "HBM", 0, 0),
        {
            (0, 0): [(pid, None, 141) for pid in (935440, 936673, 930242, 934451, 931572, 941045, 942487, 929673)],
            (0, 1): [(929405, None, 58780)],
            (1, 0): [(929673, None, 58540)],
            (1, 1): [(930242, None, 58780)],
            (2, 0): [(930907, None, 58560)],
            (2, 1): [(931572, None, 58779)],
            (3, 0): [(932555, None, 58558)],
            (3, 1): [(933405, None, 58782)],
            (4, 0): [(934451, None, 58520)],
            (4, 1): [(935440, None, 58780)],
            (5, 0): [(936673, None, 58500)],
            (5, 1): [(937869, None, 58764)],
            (6, 0): [(939246, None, 58540)],
            (6, 1): [(941045, None, 58782)],
            (7, 0): [(942487, None, 58560)],
            (7, 1): [(944268, None, 58782)],
        },
        [],
    ),
    "info-a3-ascend910-2chip-24.1.rc3.7-01.txt": (
        "24.1.rc3.7",
        "24.1.rc3.7",
        "a3",
        2,
        (2, 0, None, 4, "Ascend910", "OK", 176.3, 36, 0, "0000:95:00.0", 3411, 65536, "HBM", 0, 0),
        (2, 1, None, 5, "Ascend910", "OK", None, 36, 0, "0000:97:00.0", 3208, 65536, "HBM", 0, 0),
        {},
        [],
    ),
    "info-a3-ascend910-4chip-25.2.0-02.txt": (
        "25.2.0",
        "25.2.0",
        "a3",
        4,
        (0, 0, None, 0, "Ascend910", "OK", 162.8, 37, 0, "0000:9C:00.0", 3133, 65536, "HBM", 0, 0),
        (1, 1, None, 3, "Ascend910", "OK", None, 38, 0, "0000:39:00.0", 10568, 65536, "HBM", 0, 0),
        {(1, 1): [(990711, "python", 7746)]},
        [],
    ),
    "info-a3-ascend910-8chip-24.1.rc3.3-01.txt": (
        "24.1.rc3.3",
        "24.1.rc3.3",
        "a3",
        8,
        (0, 0, None, 0, "Ascend910", "OK", 169.7, 41, 0, "0000:9D:00.0", 3422, 65536, "HBM", 0, 0),
        (3, 1, None, 7, "Ascend910", "OK", None, 43, 0, "0000:93:00.0", 3204, 65536, "HBM", 0, 0),
        {},
        [],
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_info_table_values(name):
    version, driver, layout, count, first, last, busy_chips, not_reported = EXPECTED[name]
    result = smi.parse_info(read(name))
    assert (result["npu_smi_version"], result["driver_version"], result["layout"]) == (version, driver, layout)
    chips = result["chips"]
    assert len(chips) == count
    assert row(chips[0]) == first
    assert row(chips[-1]) == (last or first)
    assert busy(chips) == busy_chips
    assert unreported(chips) == not_reported
    assert result["process_table"] == (len(not_reported) < count)


def test_a3_device_nodes_follow_the_phy_id_column():
    chips = smi.parse_info(read("info-a3-ascend910-2chip-24.1.rc3.7-01.txt"))["chips"]
    assert [(c["npu_id"], c["chip_id"], c["phy_id"], c["device"], c["phy_id_source"]) for c in chips] == [
        (2, 0, 4, "/dev/davinci4", "table"),
        (2, 1, 5, "/dev/davinci5", "table"),
    ]


def test_tables_without_phy_id_leave_device_unknown():
    chips = smi.parse_info(read("info-910b4-8npu-25.0.rc1.1-01.txt"))["chips"]
    assert {(c["phy_id"], c["device"], c["phy_id_source"]) for c in chips} == {(None, None, None)}


def test_910a_counts_hbm_not_the_ddr_column():
    chip = smi.parse_info(read("info-910a-1npu-23.0.rc3-01-warning.txt"))["chips"][0]
    assert (chip["memory_kind"], chip["memory_used_mb"], chip["memory_total_mb"]) == ("HBM", 1, 32768)


def test_a3_npu_ids_repeat_per_die_and_npu_ids_may_have_gaps():
    a3 = smi.parse_info(read("info-a3-ascend910-8chip-24.1.rc3.3-01.txt"))["chips"]
    assert [(c["npu_id"], c["chip_id"], c["phy_id"]) for c in a3] == [(n // 2, n % 2, n) for n in range(8)]
    gaps = smi.parse_info(read("info-910b4-4npu-24.1.rc3-01.txt"))["chips"]
    assert [c["npu_id"] for c in gaps] == [0, 1, 3, 4]


# ------------------------------------------------------------------ other npu-smi output


def test_info_m_910b4_with_mcu_rows():
    result = smi.parse_info_m(read("info-m-910b4-8npu-25.0.rc1.1-01.txt"))
    assert [(c["npu_id"], c["chip_id"], c["logic_id"], c["phy_id"], c["name"]) for c in result["chips"]] == [
        (n, 0, n, None, "Ascend 910B4") for n in range(8)
    ]
    assert [(m["npu_id"], m["chip_id"], m["logic_id"], m["name"]) for m in result["mcus"]] == [(n, 1, None, "Mcu") for n in range(8)]


def test_info_m_910a_tab_indented():
    result = smi.parse_info_m(read("info-m-910a-8npu-fixture-01.txt"))
    assert [(c["npu_id"], c["logic_id"], c["name"]) for c in result["chips"]] == [(n, n, "Ascend 910A") for n in range(8)]
    assert result["mcus"] == []


def test_info_m_a3_has_phy_ids():
    result = smi.parse_info_m(read("info-m-a3-ascend910-fixture-01-trimmed.txt"))
    assert [(c["npu_id"], c["chip_id"], c["logic_id"], c["phy_id"], c["name"]) for c in result["chips"]] == [
        (0, 0, 0, 0, "Ascend910"),
        (0, 1, 1, 1, "Ascend910"),
        (1, 0, 2, 2, "Ascend910"),
    ]
    assert [(m["npu_id"], m["chip_id"], m["logic_id"], m["phy_id"]) for m in result["mcus"]] == [(0, 2, None, None)]


def test_info_l():
    result = smi.parse_info_l(read("info-l-910b4-8npu-25.0.rc1.1-01.txt"))
    assert result == {"total_count": 8, "npus": [{"npu_id": n, "chip_count": 1} for n in range(8)]}


def test_info_l_missing_npu_blocks_is_truncation():
    text = "\n".join(read("info-l-910b4-8npu-25.0.rc1.1-01.txt").splitlines()[:6])
    with pytest.raises(NpuSmiParseError, match="Total Count"):
        smi.parse_info_l(text)


def test_usages():
    a910 = smi.parse_usages(read("usages-910a-fixture-01.txt"))
    assert (a910["npu_id"], a910["chip_count"]) == (0, 1)
    chip = a910["chips"][0]
    assert (chip["chip_id"], chip["memory_kind"], chip["memory_total_mb"], chip["ddr_total_mb"]) == (0, "HBM", 31129, 13553)
    assert (chip["aivector_pct"], chip["npu_util_pct"]) == (None, None)
    b25 = smi.parse_usages(read("usages-910b-25.5.1-fixture-01.txt"))["chips"][0]
    assert (b25["memory_total_mb"], b25["memory_usage_pct"], b25["ctrlcpu_pct"], b25["npu_util_pct"], b25["aivector_pct"]) == (
        65536,
        5,
        6,
        0,
        0,
    )
    b1 = smi.parse_usages(read("usages-910b1-23.0.rc2-01.txt"))["chips"][0]
    assert (b1["memory_kind"], b1["memory_total_mb"], b1["memory_usage_pct"], b1["hugepages_total"]) == ("HBM", 65536, 4, 0)


def test_memory_vendor_example_without_chip_sections():
    result = smi.parse_memory(read("memory-atlas350-vendordoc-01.txt"))
    assert result == {
        "npu_id": 0,
        "chips": [
            {
                "chip_id": None,
                "memory_kind": "HBM",
                "memory_total_mb": 131072,
                "ddr_total_mb": 0,
                "hbm_total_mb": 131072,
                "hbm_clock_mhz": 3200,
                "hbm_temp_c": 63,
            }
        ],
    }


def test_key_value_outputs():
    board = smi.parse_info_type(read("board-card-910b-25.5.1-fixture-01.txt"))
    assert (board["npu_id"], board["chip_count"]) == (0, 1)
    assert board["sections"][0]["PCIe Bus Info"] == "0000:C1:00.0"
    assert board["sections"][0]["Firmware Version"] == "7.8.0.6.201"
    duo = smi.parse_info_type(read("board-card-310p-duo-25.5.1-fixture-01-stripped.txt"))
    assert (duo["npu_id"], duo["chip_count"], duo["sections"][0]["PCI Device ID"]) == (2944, 2, "0xD500")
    chip = smi.parse_info_type(read("board-chip-910a-fw7.1.0.7.220-fixture-01.txt"))["sections"][0]
    assert chip["VDie ID"] == "42C711D4 20B03704 4A10C8D4 14CC040A D2102003"
    common = smi.parse_info_type(read("common-910b1-23.0.rc2-01.txt"))
    assert common["npu_id"] == 1
    assert [section.get("Temperature(C)") for section in common["sections"]] == [None, "46", "38"]
    assert common["sections"][2]["Chip Name"] == "mcu"
    temp = smi.parse_info_type(read("temp-910b-25.5.1-fixture-01.txt"))["sections"]
    assert (temp[1]["NPU Temperature (C)"], temp[2]["Chip Name"]) == ("39", "MCU")
    power = smi.parse_info_type(read("power-910b-25.5.1-fixture-01.txt"))["sections"][1]
    assert power == {"NPU Real-time Power(W)": "103.5", "Chip ID": "0"}
    assert smi.parse_info_type(read("upgrade-b-mcu-910b4-after-01.txt"))["sections"] == [{"Version": "25.50.10"}]
    assert smi.parse_info_type(read("upgrade-b-mcu-910b4-before-01.txt"))["sections"] == [{"Version": "23.3.13"}]


def test_health():
    alarm = smi.parse_health(read("health-alarm-multiline-fixture-01.txt"))
    assert alarm["health"] == "Alarm"
    assert alarm["error_codes"] == ["A4025021", "8C03A000", "8C084E00"]
    assert alarm["error_information"][0] == "ascend_monitor adda heart beat lost error"
    assert alarm["error_information"][2] == "node type=adda, sensor type=Heartbeat Sensor, event state=Heartbeat Lost."
    assert len(alarm["error_information"]) == 3
    assert smi.parse_health(read("health-ok-910a-fixture-01.txt")) == {"health": "OK", "error_codes": [], "error_information": []}


@pytest.mark.parametrize("name", ["topo-910b-8npu-fixture-01.txt", "topo-910b1-8npu-23.0.rc2-01.txt"])
def test_topology(name):
    result = smi.parse_topo(read(name))
    assert result["npus"] == ["NPU%d" % n for n in range(8)]
    assert result["links"]["NPU0"]["NPU0"] == "X"
    assert result["links"]["NPU3"]["NPU6"] == "HCCS"
    assert (result["cpu_affinity"]["NPU0"], result["cpu_affinity"]["NPU7"]) == ("144-167", "48-71")


def test_help_lists_phyid_remap():
    result = smi.parse_info_help(read("info-h-help-23.0.rc2-01.txt"))
    assert result["commands"] == ["watch", "proc", "-h", "-m", "-l", "-t"]
    assert "phyid-remap" in result["types"] and "memory" in result["types"]
    assert (result["types"][0], result["types"][-1]) == ("board", "topo")


def test_phyid_remap_vendor_example():
    text = (
        " Chip Physical ID            :0\n Chip Logic ID               :0\n"
        " NPU ID                      :0\n Chip ID                     :0\n"
    )
    assert smi.parse_phyid_remap(text) == {"phy_id": 0, "logic_id": 0, "npu_id": 0, "chip_id": 0}
    with pytest.raises(NpuSmiParseError, match="Chip Physical ID"):
        smi.parse_phyid_remap(" Chip Logic ID : 0\n")


# --------------------------------------------------------- NA values and odd variants


A2_ROW1 = "| 0     910B4               | OK            | 87.2        33                0    / 0             |"
A2_ROW2 = "| 0                         | 0000:C1:00.0  | 0           0    / 0          2654 / 32768         |"


def with_rows(name, old_rows, new_rows):
    text = read(name)
    for old, new in zip(old_rows, new_rows):
        assert old in text
        text = text.replace(old, new, 1)
    return text


def test_na_values_become_none():
    row1 = "| 0     910B4               | NA            | NA          NA                NA   / NA            |"
    row2 = "| 0                         | NA            | NA          0    / 0          NA   / NA            |"
    text = with_rows("info-910b4-8npu-25.0.rc1.1-01.txt", [A2_ROW1, A2_ROW2], [row1, row2])
    chip = smi.parse_info(text)["chips"][0]
    assert row(chip) == (0, 0, None, None, "910B4", None, None, None, None, None, None, None, "HBM", None, None)


def test_na_power_on_310p_and_dash_power_on_a3_second_die():
    duo = smi.parse_info(read("info-310p3-duo-2chip-24.1.rc2-01.txt"))["chips"]
    assert [c["power_w"] for c in duo] == [None, None]
    a3 = smi.parse_info(read("info-a3-ascend910-4chip-25.2.0-02.txt"))["chips"]
    assert [c["power_w"] for c in a3] == [162.8, None, 167.1, None]


def test_process_memory_in_bytes_is_converted():
    header = "| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |"
    line = "| 0       0                 | 472206        | python3.9                | 113                     |"
    text = with_rows(
        "info-910b4-8npu-25.2.0-01.txt",
        [header, line],
        [header.replace("Process memory(MB)", "Process memory(B) "), line.replace("113      ", "118489088")],
    )
    assert busy(smi.parse_info(text)["chips"]) == {(0, 0): [(472206, "python3.9", 113)]}


def test_noise_after_the_table_is_ignored_but_not_inside_it():
    text = read("info-910b4-8npu-25.0.rc1.1-01.txt")
    warning = "[WARNING]The driver package may not be completely installed."
    assert len(smi.parse_info(text + warning + "\n")["chips"]) == 8
    lines = text.splitlines()
    lines.insert(12, warning)
    with pytest.raises(NpuSmiParseError) as error:
        smi.parse_info("\n".join(lines))
    assert (error.value.line_number, error.value.line) == (13, warning)


def test_log_lines_before_the_table_are_ignored():
    text = "[libvnpu] hook loaded\n[libvnpu] pid 42\n" + read("info-910b4-8npu-25.2.0-01.txt")
    assert len(smi.parse_info(text)["chips"]) == 8


# ------------------------------------------------------ garbled, empty and truncated


@pytest.mark.parametrize("text", ["", "\n", "   \n\n"])
def test_empty_output(text):
    with pytest.raises(NpuSmiParseError) as error:
        smi.parse_info(text)
    assert error.value.line_number == 1
    assert "printed nothing" in str(error.value)


@pytest.mark.parametrize(
    "parser",
    [
        smi.parse_info,
        smi.parse_info_m,
        smi.parse_info_l,
        smi.parse_memory,
        smi.parse_usages,
        smi.parse_topo,
        smi.parse_info_help,
        smi.parse_phyid_remap,
        smi.parse_health,
        smi.parse_info_type,
    ],
)
def test_garbage_names_its_first_line(parser):
    garbage = "\n\x00\x1b[31mSegmentation fault (core dumped)\nbye\n"
    with pytest.raises(NpuSmiParseError) as error:
        parser(garbage)
    assert error.value.line_number == 2
    assert "Segmentation fault" in error.value.line
    assert "line 2" in str(error.value)


def test_extra_cell_in_a_chip_row():
    text = with_rows("info-910b4-8npu-25.0.rc1.1-01.txt", [A2_ROW1], [A2_ROW1.replace("| OK ", "| OK | x ", 1)])
    with pytest.raises(NpuSmiParseError, match="cells") as error:
        smi.parse_info(text)
    assert error.value.line_number == 7


def test_letter_where_an_id_belongs():
    text = with_rows("info-910b4-8npu-25.0.rc1.1-01.txt", [A2_ROW1], [A2_ROW1.replace("| 0     910B4", "| O     910B4", 1)])
    with pytest.raises(NpuSmiParseError, match="NPU id is not an integer") as error:
        smi.parse_info(text)
    assert error.value.line.startswith("| O     910B4")


def test_missing_value_in_a_metric_cell():
    text = with_rows("info-910b4-8npu-25.0.rc1.1-01.txt", [A2_ROW2], [A2_ROW2.replace("2654 / 32768", "             ")])
    with pytest.raises(NpuSmiParseError, match="expected 3 values") as error:
        smi.parse_info(text)
    assert error.value.line_number == 8


def test_process_row_for_an_unknown_chip():
    line = "| 0       0                 | 472206        | python3.9                | 113                     |"
    text = with_rows("info-910b4-8npu-25.2.0-01.txt", [line], [line.replace("| 0       0 ", "| 9       0 ", 1)])
    with pytest.raises(NpuSmiParseError, match="NPU 9 chip 0"):
        smi.parse_info(text)


def test_cut_between_the_two_rows_of_a_chip():
    lines = read("info-910b4-8npu-25.0.rc1.1-01.txt").splitlines()
    with pytest.raises(NpuSmiParseError, match="inside a chip row") as error:
        smi.parse_info("\n".join(lines[:10]))
    assert (error.value.line_number, error.value.line) == (10, lines[9])


def test_cut_in_the_middle_of_a_line():
    lines = read("info-910b4-8npu-25.0.rc1.1-01.txt").splitlines()
    with pytest.raises(NpuSmiParseError) as error:
        smi.parse_info("\n".join(lines[:10] + [lines[10][:40]]))
    assert error.value.line_number == 10


@pytest.mark.parametrize("name", INFO_TABLES)
def test_every_prefix_of_a_sample_fails_or_says_no_more_than_the_whole(name):
    """Truncated output never yields wrong data: it raises, or its chips are a prefix of
    the full result whose process lists are either the full ones or None (unknown)."""
    lines = read(name).splitlines()
    full = smi.parse_info("\n".join(lines))["chips"]
    for cut in range(len(lines)):
        try:
            chips = smi.parse_info("\n".join(lines[:cut]))["chips"]
        except NpuSmiParseError:
            continue
        assert len(chips) <= len(full)
        for partial, whole in zip(chips, full):
            assert row(partial) == row(whole)
            assert partial["processes"] in (None, whole["processes"])


def test_cut_inside_the_process_rows_of_one_npu_raises():
    lines = read("info-a3-ascend910-16chip-25.2.0-01.txt").splitlines()
    cut = next(i for i, line in enumerate(lines) if "936673" in line) + 1
    with pytest.raises(NpuSmiParseError, match="closing border"):
        smi.parse_info("\n".join(lines[:cut]))


# ------------------------------------------------------------------- merging outputs


def test_merge_with_info_m_fills_logic_ids():
    table = smi.parse_info(read("info-910b4-8npu-25.0.rc1.1-01.txt"))
    mapping = smi.parse_info_m(read("info-m-910b4-8npu-25.0.rc1.1-01.txt"))
    merged = smi.merge_chip_map(table["chips"], mapping)
    assert [(c["npu_id"], c["logic_id"], c["phy_id"], c["device"]) for c in merged] == [(n, n, None, None) for n in range(8)]


def test_merge_info_m_is_authoritative_for_the_310_device_column():
    table = smi.parse_info(read("info-310p3-2npu-noheader-01.txt"))
    mapping = {
        "chips": [
            {"npu_id": 0, "chip_id": 0, "logic_id": 5, "phy_id": None, "name": "Ascend 310P3"},
            {"npu_id": 1, "chip_id": 0, "logic_id": 6, "phy_id": None, "name": "Ascend 310P3"},
        ],
        "mcus": [],
    }
    assert [c["logic_id"] for c in smi.merge_chip_map(table["chips"], mapping)] == [5, 6]


def test_merge_fills_the_chip_id_the_a5_table_does_not_print():
    table = smi.parse_info(read("info-950pr-a5-1npu-25.7.rc1.6-01-excerpt.txt"))
    mapping = {"chips": [{"npu_id": 0, "chip_id": 0, "logic_id": 0, "phy_id": None, "name": "Ascend950PR"}], "mcus": []}
    merged = smi.merge_chip_map(table["chips"], mapping)
    assert (merged[0]["chip_id"], merged[0]["logic_id"]) == (0, 0)


def test_merge_detects_chips_missing_from_either_side():
    a3 = smi.parse_info(read("info-a3-ascend910-4chip-25.2.0-02.txt"))["chips"]
    trimmed = smi.parse_info_m(read("info-m-a3-ascend910-fixture-01-trimmed.txt"))
    with pytest.raises(NpuSmiMismatchError, match="NPU 1 chip 1"):
        smi.merge_chip_map(a3, trimmed)
    table = smi.parse_info(read("info-910b4-8npu-25.0.rc1.1-01.txt"))["chips"][:7]
    with pytest.raises(NpuSmiMismatchError, match=r"\(7, 0\)"):
        smi.merge_chip_map(table, smi.parse_info_m(read("info-m-910b4-8npu-25.0.rc1.1-01.txt")))


def test_merge_detects_contradicting_phy_ids():
    a3 = smi.parse_info(read("info-a3-ascend910-2chip-24.1.rc3.7-01.txt"))["chips"]
    mapping = {
        "chips": [
            {"npu_id": 2, "chip_id": 0, "logic_id": 0, "phy_id": 4, "name": "Ascend910"},
            {"npu_id": 2, "chip_id": 1, "logic_id": 1, "phy_id": 9, "name": "Ascend910"},
        ],
        "mcus": [],
    }
    with pytest.raises(NpuSmiMismatchError, match="Phy-ID 5, info -m says 9"):
        smi.merge_chip_map(a3, mapping)


def test_phyid_remap_sets_devices():
    table = smi.parse_info(read("info-910b4-4npu-24.1.rc3-01.txt"))["chips"]
    remaps = [
        {"phy_id": phy, "logic_id": logic, "npu_id": npu, "chip_id": 0} for logic, (npu, phy) in enumerate([(0, 0), (1, 1), (3, 3), (4, 4)])
    ]
    chips = smi.apply_phyid_remap(table, remaps)
    assert [(c["npu_id"], c["phy_id"], c["phy_id_source"], c["device"]) for c in chips] == [
        (0, 0, "phyid-remap", "/dev/davinci0"),
        (1, 1, "phyid-remap", "/dev/davinci1"),
        (3, 3, "phyid-remap", "/dev/davinci3"),
        (4, 4, "phyid-remap", "/dev/davinci4"),
    ]


def test_phyid_remap_contradicting_a_logic_id():
    table = smi.parse_info(read("info-910b4-8npu-25.0.rc1.1-01.txt"))
    chips = smi.merge_chip_map(table["chips"], smi.parse_info_m(read("info-m-910b4-8npu-25.0.rc1.1-01.txt")))
    with pytest.raises(NpuSmiMismatchError, match="logic_id is 0"):
        smi.apply_phyid_remap(chips, [{"phy_id": 3, "logic_id": 7, "npu_id": 0, "chip_id": 0}])


def test_davinci_path():
    assert smi.davinci_path(None) is None
    assert smi.davinci_path(15) == "/dev/davinci15"


# ----------------------------------------------------------------------- the emulator

A3_PROFILE = {
    "description": "emulated A3, 2 NPUs x 2 dies (test-only profile)",
    "layout": "a3",
    "chip_name": "Ascend910",
    "npu_count": 2,
    "chips_per_npu": 2,
    "mcu_rows": True,
    "memory_kind": "HBM",
    "memory_mb": 65536,
    "idle_used_mb": 3133,
    "npu_smi_version": "25.2.0",
    "chip_overrides": {
        3: {"used_mb": 10568, "processes": [{"pid": 990711, "name": "python", "memory_mb": 7746}]},
        1: {"health": "Warning"},
    },
}


@pytest.fixture(scope="module", params=PROFILES + ["a3-test"], ids=os.path.basename)
def profile(request, tmp_path_factory):
    if request.param == "a3-test":
        path = tmp_path_factory.mktemp("profiles") / "a3-test.yml"
        path.write_text(yaml.safe_dump(A3_PROFILE))
        return str(path)
    return request.param


def emulate(profile_path, *args):
    env = dict(os.environ, NPU_EMULATOR_PROFILE_FILE=profile_path)
    done = subprocess.run(
        [sys.executable, EMULATOR] + list(args),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        check=False,
    )
    return done.returncode, done.stdout


def expected_chips(profile):
    """What the profile says the host has, chip by chip (npu, chip, name, health, used, total, processes)."""
    npu_ids = profile.get("npu_ids") or list(range(profile["npu_count"]))
    overrides = profile.get("chip_overrides") or {}
    chips = []
    for index in range(len(npu_ids) * profile.get("chips_per_npu", 1)):
        override = overrides.get(index, {})
        npu_id, chip_id = npu_ids[index // profile.get("chips_per_npu", 1)], index % profile.get("chips_per_npu", 1)
        processes = [(p["pid"], p.get("name") or None, p["memory_mb"]) for p in override.get("processes", [])]
        chips.append(
            (
                npu_id,
                chip_id,
                profile["chip_name"],
                override.get("health", "OK"),
                override.get("used_mb", profile.get("idle_used_mb", 2654)),
                override.get("memory_mb", profile["memory_mb"]),
                profile.get("memory_kind", "HBM"),
                processes,
            )
        )
    return chips


def test_emulator_info_matches_its_profile(profile):
    with open(profile, encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    rc, out = emulate(profile, "info")
    assert rc == 0
    result = smi.parse_info(out)
    assert result["npu_smi_version"] == str(spec["npu_smi_version"])
    got = [
        (
            c["npu_id"],
            c["chip_id"],
            c["name"],
            c["health"],
            c["memory_used_mb"],
            c["memory_total_mb"],
            c["memory_kind"],
            [(p["pid"], p["name"], p["memory_mb"]) for p in c["processes"]],
        )
        for c in result["chips"]
    ]
    assert got == expected_chips(spec)
    if spec.get("power_na"):
        assert {c["power_w"] for c in result["chips"]} == {None}
    if spec.get("bus_ids"):
        per_npu = spec.get("chips_per_npu", 1)
        assert [c["bus_id"] for c in result["chips"]] == [bus for bus in spec["bus_ids"] for _chip in range(per_npu)]


def test_emulator_info_m_and_l_merge_with_info(profile):
    with open(profile, encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    chips = smi.parse_info(emulate(profile, "info")[1])["chips"]
    mapping = smi.parse_info_m(emulate(profile, "info", "-m")[1])
    merged = smi.merge_chip_map(chips, mapping)
    assert [c["logic_id"] for c in merged] == list(range(len(chips)))
    assert len(mapping["mcus"]) == (len({c["npu_id"] for c in chips}) if spec.get("mcu_rows") else 0)
    listing = smi.parse_info_l(emulate(profile, "info", "-l")[1])
    assert listing["total_count"] == len({c["npu_id"] for c in chips})
    assert sum(npu["chip_count"] for npu in listing["npus"]) == len(chips)
    if spec.get("layout") == "a3":
        assert [(c["phy_id"], c["device"]) for c in merged] == [(n, "/dev/davinci%d" % n) for n in range(len(chips))]
        assert [c["power_w"] is None for c in chips] == [n % 2 == 1 for n in range(len(chips))]


def test_emulator_phyid_remap(profile):
    chips = smi.parse_info(emulate(profile, "info")[1])["chips"]
    remaps = [smi.parse_phyid_remap(emulate(profile, "info", "-t", "phyid-remap", "-p", str(n))[1]) for n in range(len(chips))]
    placed = smi.apply_phyid_remap(chips, remaps)
    assert [c["device"] for c in placed] == ["/dev/davinci%d" % n for n in range(len(chips))]
    rc, out = emulate(profile, "info", "-t", "phyid-remap", "-p", "99")
    assert rc != 0
    with pytest.raises(NpuSmiParseError):
        smi.parse_phyid_remap(out)


def test_emulator_memory_and_usages(profile):
    with open(profile, encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    expected = expected_chips(spec)
    npu_id = expected[-1][0]
    rows = [chip for chip in expected if chip[0] == npu_id]
    memory = smi.parse_memory(emulate(profile, "info", "-t", "memory", "-i", str(npu_id))[1])
    assert memory["npu_id"] == npu_id
    assert [(c["chip_id"], c["memory_kind"], c["memory_total_mb"]) for c in memory["chips"]] == [(r[1], r[6], r[5]) for r in rows]
    usages = smi.parse_usages(emulate(profile, "info", "-t", "usages", "-i", str(npu_id))[1])
    assert usages["chip_count"] == len(rows)
    assert [(c["chip_id"], c["memory_total_mb"], c["memory_usage_pct"]) for c in usages["chips"]] == [
        (r[1], r[5], int(round(100.0 * r[4] / r[5]))) for r in rows
    ]
    rc, out = emulate(profile, "info", "-t", "memory", "-i", "12345")
    assert rc != 0
    with pytest.raises(NpuSmiParseError, match="Invalid card id"):
        smi.parse_memory(out)
