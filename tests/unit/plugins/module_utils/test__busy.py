"""One rule for busy chips, shared by preflight and the planner (real npu-smi process tables)."""

import os

from ansible_collections.npu.fleet.plugins.module_utils._busy import foreign_processes
from ansible_collections.npu.fleet.plugins.module_utils._npu_smi import davinci_path, parse_info
from ansible_collections.npu.fleet.plugins.module_utils._preflight import preflight_verdict

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "npu-smi", "info-910b3-8npu-24.1.rc2-03-busy.txt")


def _chips():
    with open(FIXTURE, encoding="utf-8") as handle:
        chips = parse_info(handle.read())["chips"]
    for chip in chips:  # the 910B table numbers devices by NPU id (docs/npu-smi.md)
        chip["device"] = chip.get("device") or davinci_path(chip.get("phy_id") if chip.get("phy_id") is not None else chip["npu_id"])
    return chips


def test_a_chip_held_by_our_container_is_not_busy_and_a_foreign_one_is():
    chips = [chip for chip in _chips() if chip.get("processes")]
    assert chips, "the busy capture lists processes"
    chip = chips[0]
    assert foreign_processes(chip) == chip["processes"]
    assert foreign_processes(chip, held_by_us=True) == []
    ours = chip["processes"][0]["pid"]
    assert [proc["pid"] for proc in foreign_processes(chip, held_by_us=True, our_pids=[ours])] == [
        proc["pid"] for proc in chip["processes"][1:]
    ]


def test_preflight_does_not_flag_the_chips_our_containers_hold():
    chips = _chips()
    busy = sorted(chip["device"] for chip in chips if chip.get("processes") and chip.get("device"))
    npu = {"chips": chips}
    flagged = sorted(p["device"] for p in preflight_verdict(npu=npu)["problems"] if p["code"] == "CHIP_BUSY")
    assert flagged == busy
    held = preflight_verdict(npu=npu, managed_devices=busy[:1])["problems"]
    assert sorted(p["device"] for p in held if p["code"] == "CHIP_BUSY") == busy[1:]
