#!/usr/bin/env python
"""Emulated ``npu-smi`` for npu.fleet test hosts.

TEST EQUIPMENT ONLY: installed as /usr/local/bin/npu-smi inside the emulated
host image. It prints the layouts of the real captures in
tests/unit/fixtures/npu-smi (the 910B / A3 98-column table, the 310P
106-column table, ``info -m``, ``info -l``, ``info -t memory|usages -i N``)
from the host profile in
/etc/npu-emulator/profile.yml, so that roles see real-format output.
``info -t phyid-remap -p N`` follows the example of the npu-smi reference
(no real capture exists); its error text for an unknown id is invented.
tests/unit/plugins/module_utils/test__npu_smi.py parses every layout this
prints with the collection's parser.
"""

import os
import sys

import yaml

PROFILE_PATH = "/etc/npu-emulator/profile.yml"
USAGE = "Usage: npu-smi info <watch|proc|-h|-m|-l|-t type> [Options...]"


def load_profile():
    path = os.environ.get("NPU_EMULATOR_PROFILE_FILE", PROFILE_PATH)
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def expand_chips(profile):
    """One dict per chip, with every field npu-smi prints filled in."""
    chips = []
    per_npu = int(profile.get("chips_per_npu", 1))
    npu_ids = profile.get("npu_ids") or list(range(int(profile["npu_count"])))
    overrides = profile.get("chip_overrides") or {}
    index = 0
    for npu_pos, npu_id in enumerate(npu_ids):
        for chip_id in range(per_npu):
            chip = {
                "npu_id": npu_id,
                "chip_id": chip_id,
                "logic_id": index,
                "phy_id": index,
                "name": profile["chip_name"],
                "health": "OK",
                "power": _power(profile, chip_id, index),
                "temp": 33 + (index * 5) % 9,
                "aicore": 0,
                "bus_id": _bus_id(profile, npu_pos, index),
                "memory_mb": int(profile["memory_mb"]),
                "used_mb": int(profile.get("idle_used_mb", 2654)),
                "processes": [],
            }
            chip.update(overrides.get(index, {}))
            chips.append(chip)
            index += 1
    return chips


def _bus_id(profile, npu_pos, index):
    """Profile bus ids are per card (both 300I Duo chips share one); A3 dies each have their own."""
    if profile.get("bus_ids"):
        return profile["bus_ids"][npu_pos]
    return "0000:%02X:00.0" % (0xC1 + (index if profile.get("layout") == "a3" else npu_pos))


def _power(profile, chip_id, index):
    """NA on 310P cards; "-" on the second die of an A3 NPU, as real A3 tables show."""
    if profile.get("power_na"):
        return "NA"
    if profile.get("layout") == "a3" and chip_id > 0:
        return "-"
    return "%.1f" % (82.0 + (index * 3.7) % 19)


def table_910b(profile, chips):
    """98-column table of 910A/910B (Chip column) and A3 (Chip Phy-ID column)."""
    a3 = profile.get("layout") == "a3"
    ver = str(profile["npu_smi_version"])
    full = "+" + "-" * 96 + "+"
    grid = "+" + "-" * 27 + "+" + "-" * 15 + "+" + "-" * 52 + "+"
    heavy = "+" + "=" * 27 + "+" + "=" * 15 + "+" + "=" * 52 + "+"
    out = [full, "| " + ("npu-smi " + ver).ljust(33) + ("Version: " + ver).ljust(62) + "|", grid]
    out.append("| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|")
    second = "Chip  Phy-ID              " if a3 else "Chip                      "
    out.append("| " + second + "| Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |")
    out.append(heavy)
    for pos, chip in enumerate(chips):
        out.append(
            "| %-6s%-20s| %-14s| %-12s%-18s%-5s/ %-14s|" % (chip["npu_id"], chip["name"], chip["health"], chip["power"], chip["temp"], 0, 0)
        )
        left = "%-6s%-20s" % (chip["chip_id"], chip["phy_id"]) if a3 else "%-26s" % chip["chip_id"]
        ddr_used, ddr_total = chip.get("ddr_used_mb", 0), chip.get("ddr_total_mb", 0)
        out.append(
            "| %s| %-14s| %-12s%-5s/ %-11s%-5s/ %-14s|"
            % (left, chip["bus_id"], chip["aicore"], ddr_used, ddr_total, chip["used_mb"], chip["memory_mb"])
        )
        last_of_npu = pos + 1 == len(chips) or chips[pos + 1]["npu_id"] != chip["npu_id"]
        out.append(heavy if last_of_npu else full)
    out.append(grid)
    out.append("| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |")
    out.append(heavy)
    out.extend(process_rows(chips, "| %-8s%-18s| %-14s| %-25s| %-24s|", 94, heavy))
    return out


def table_310p(profile, chips):
    """106-column table of 310P cards (Chip Device column, no HBM)."""
    ver = str(profile["npu_smi_version"])
    full = "+" + "-" * 104 + "+"
    grid = "+" + "-" * 31 + "+" + "-" * 17 + "+" + "-" * 54 + "+"
    heavy = "+" + "=" * 31 + "+" + "=" * 17 + "+" + "=" * 54 + "+"
    out = [full, "| " + ("npu-smi " + ver).ljust(49) + ("Version: " + ver).ljust(54) + "|", grid]
    out.append("| NPU     Name                  | Health          | Power(W)     Temp(C)           Hugepages-Usage(page) |")
    out.append("| Chip    Device                | Bus-Id          | AICore(%)    Memory-Usage(MB)                        |")
    out.append(heavy)
    for pos, chip in enumerate(chips):
        out.append(
            "| %-8s%-22s| %-16s| %-13s%-18s%-6s/ %-14s|" % (chip["npu_id"], chip["name"], chip["health"], chip["power"], chip["temp"], 0, 0)
        )
        out.append(
            "| %-8s%-22s| %-16s| %-13s%-5s/ %-33s|"
            % (chip["chip_id"], chip["logic_id"], chip["bus_id"], chip["aicore"], chip["used_mb"], chip["memory_mb"])
        )
        last_of_npu = pos + 1 == len(chips) or chips[pos + 1]["npu_id"] != chip["npu_id"]
        out.append(heavy if last_of_npu else grid)
    out.append(grid)
    out.append("| NPU     Chip                  | Process id      | Process name             | Process memory(MB)        |")
    out.append(heavy)
    out.extend(process_rows(chips, "| %-8s%-22s| %-16s| %-25s| %-26s|", 102, heavy))
    return out


def process_rows(chips, row_format, width, heavy):
    """Process table: one block per NPU, 'No running processes found' when idle."""
    rows = []
    for npu_id in dict.fromkeys(chip["npu_id"] for chip in chips):
        procs = [(chip, proc) for chip in chips if chip["npu_id"] == npu_id for proc in chip["processes"]]
        if not procs:
            rows.append("| " + ("No running processes found in NPU %s" % npu_id).ljust(width) + " |")
        for chip, proc in procs:
            rows.append(row_format % (npu_id, chip["chip_id"], proc["pid"], proc.get("name", ""), proc["memory_mb"]))
        rows.append(heavy)
    return rows


def kv(key, value):
    return "        %-31s: %s" % (key, value)


def _m_row(ids, name, pad):
    """One info -m row: ids padded to 31, the name padded to 30 only on header/Mcu rows."""
    return "        " + "".join("%-31s" % value for value in ids) + (("%-30s" % name) if pad else name)


def info_m(profile, chips):
    """info -m as on a 910B4 host (25.0.rc1.1); A3 adds the Chip Phy-ID column."""
    a3 = profile.get("layout") == "a3"
    labels = ["NPU ID", "Chip ID", "Chip Logic ID"] + (["Chip Phy-ID"] if a3 else [])
    out = [_m_row(labels, "Chip Name", True)]
    for pos, chip in enumerate(chips):
        name = chip["name"] if chip["name"].startswith("Ascend") else "Ascend " + chip["name"]
        ids = [chip["npu_id"], chip["chip_id"], chip["logic_id"]] + ([chip["phy_id"]] if a3 else [])
        out.append(_m_row(ids, name, False))
        last_of_npu = pos + 1 == len(chips) or chips[pos + 1]["npu_id"] != chip["npu_id"]
        if profile.get("mcu_rows", False) and last_of_npu:
            out.append(_m_row([chip["npu_id"], chip["chip_id"] + 1, "-"] + (["-"] if a3 else []), "Mcu", True))
    return out


def info_l(profile, chips):
    npu_ids = list(dict.fromkeys(chip["npu_id"] for chip in chips))
    out = [kv("Total Count", len(npu_ids))]
    for npu_id in npu_ids:
        out += ["", kv("NPU ID", npu_id), kv("Chip Count", sum(1 for c in chips if c["npu_id"] == npu_id))]
    return out


def phyid_remap(chips, phy_id):
    """info -t phyid-remap -p N, in the shape of the npu-smi reference example."""
    for chip in chips:
        if str(chip["phy_id"]) == str(phy_id):
            return [
                " %-28s:%s" % (key, chip[field])
                for key, field in (
                    ("Chip Physical ID", "phy_id"),
                    ("Chip Logic ID", "logic_id"),
                    ("NPU ID", "npu_id"),
                    ("Chip ID", "chip_id"),
                )
            ]
    return None


def info_type(profile, chips, kind, npu_id):
    selected = [chip for chip in chips if str(chip["npu_id"]) == str(npu_id)]
    if not selected:
        return None
    hbm = profile.get("memory_kind", "HBM") == "HBM"
    out = [kv("NPU ID", npu_id), kv("Chip Count", len(selected)), ""]
    for chip in selected:
        total, used = chip["memory_mb"], chip["used_mb"]
        if kind == "memory":
            if hbm:
                out += [
                    kv("DDR Capacity(MB)", 0),
                    kv("DDR Clock Speed(MHz)", 0),
                    kv("HBM Capacity(MB)", total),
                    kv("HBM Clock Speed(MHz)", 1600),
                    kv("HBM Temperature(C)", chip["temp"]),
                    kv("HBM Manufacturer ID", "0x5A"),
                ]
            else:
                out += [kv("DDR Capacity(MB)", total), kv("DDR Clock Speed(MHz)", 3200)]
        else:
            rate = int(round(100.0 * used / total)) if total else 0
            out += [
                kv("DDR Capacity(MB)", 0 if hbm else total),
                kv("DDR Usage Rate(%)", 0 if hbm else rate),
                kv("DDR Hugepages Total(page)", 0),
                kv("DDR Hugepages Usage Rate(%)", 0),
            ]
            if hbm:
                out += [kv("HBM Capacity(MB)", total), kv("HBM Usage Rate(%)", rate)]
            out += [
                kv("Aicore Usage Rate(%)", chip["aicore"]),
                kv("Aivector Usage Rate(%)", 0),
                kv("Aicpu Usage Rate(%)", 0),
                kv("Ctrlcpu Usage Rate(%)", 6),
                kv("DDR Bandwidth Usage Rate(%)", 0),
            ]
            if hbm:
                out.append(kv("HBM Bandwidth Usage Rate(%)", 0))
            out += [kv("NPU Utilization(%)", chip["aicore"]), kv("Aicube Usage Rate(%)", 0)]
        out += [kv("Chip ID", chip["chip_id"]), ""]
    return out[:-1]


def fail(message):
    sys.stdout.write(message + "\n" + USAGE + "\n")
    return 2


def main(argv):
    profile = load_profile()
    chips = expand_chips(profile)
    if argv[:1] == ["-v"]:
        sys.stdout.write("npu-smi version: %s\n" % profile["npu_smi_version"])
        return 0
    if not argv or argv[0] != "info":
        return fail("Command error.")
    args = argv[1:]
    if not args:
        lines = table_310p(profile, chips) if profile.get("layout") == "310p" else table_910b(profile, chips)
    elif args == ["-m"]:
        lines = info_m(profile, chips)
    elif args == ["-l"]:
        lines = info_l(profile, chips)
    elif len(args) == 4 and args[0] == "-t" and args[2] == "-i" and args[1] in ("memory", "usages"):
        lines = info_type(profile, chips, args[1], args[3])
        if lines is None:
            sys.stdout.write("Invalid card id.\nError parameter of -i\n" + USAGE + "\n")
            return 2
    elif len(args) == 4 and args[0] == "-i" and args[2] == "-t" and args[3] in ("memory", "usages"):
        return main(["info", "-t", args[3], "-i", args[1]])
    elif len(args) == 4 and args[:3] == ["-t", "phyid-remap", "-p"]:
        lines = phyid_remap(chips, args[3])
        if lines is None:
            sys.stdout.write("Invalid phy id.\nError parameter of -p\n" + USAGE + "\n")
            return 2
    else:
        return fail("Error parameter of info.")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
