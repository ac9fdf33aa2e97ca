"""Test inputs built the same way everywhere: chips as npu.fleet.npu_facts returns them, and model profiles.

Keyword arguments override the defaults field by field; everything else is
what an idle, healthy 32 GiB 910B4 reports. Profiles are the real configs
under tests/unit/fixtures/models (model_checkpoints.py), read in place or
copied into a test's temporary directory.
"""

import os

from ansible_collections.npu.fleet.plugins.module_utils._model_profile import profile_model
from model_checkpoints import copy_fixture, fixture_dir, write_index

GIB_32 = 32768  # MB, as npu-smi reports a 910B4
ONE_SHARD = "model-00001-of-00001.safetensors"


def chip(number, memory=GIB_32, name="910B4", health="OK", processes=(), npu_id=None, chip_id=0, memory_kind="HBM"):
    """One idle chip as npu_facts returns it: device node /dev/davinci<number>, logic and phy id ``number``.

    ``npu_id`` defaults to ``number`` (one chip per NPU); ``processes`` are
    copied, so one list can be given to several chips.
    """
    return {
        "npu_id": number if npu_id is None else npu_id,
        "chip_id": chip_id,
        "logic_id": number,
        "phy_id": number,
        "device": "/dev/davinci%d" % number,
        "name": name,
        "health": health,
        "memory_total_mb": memory,
        "memory_used_mb": 0,
        "memory_kind": memory_kind,
        "processes": [dict(p) for p in processes],
    }


def chips(count, *args, **fields):
    """Chips 0 .. count-1, each ``chip(number, *args, **fields)``."""
    return [chip(number, *args, **fields) for number in range(count)]


def fixture_profile(name, directory=None, total_size=None, shard=ONE_SHARD, dirname=None, **options):
    """profile_model of the fixture config ``name`` (<org>__<model>).

    Without ``directory`` the fixture folder is profiled in place (config
    only: weights are estimated). With it, the config is copied to
    ``directory/<dirname or name>`` first, and ``total_size`` writes a
    safetensors index (one tensor in ``shard``) whose total_size stands in
    for the published weight size. ``options`` go to profile_model.
    """
    if directory is None:
        if total_size is not None:
            raise ValueError("total_size writes an index: give a directory to copy the fixture into")
        return profile_model(fixture_dir(name), **options)
    path = copy_fixture(name, os.path.join(str(directory), dirname or name))
    if total_size is not None:
        write_index(path, {"model.norm.weight": shard}, total_size=total_size)
    return profile_model(path, **options)


def field_report_host(busy=(4, 5, 6, 7)):
    """npu facts of the field report's host: 8 x 910B4, NPUs 4-7 busy with someone else's mindieservice_b
    (tests/unit/fixtures/npu-smi/info-910b4-8npu-24.1.rc2-01.txt), CANN and NNAL 8.0.RC1, driver 24.1.rc2
    (that capture's; the report names none). Idle chips show 3163 MB used, as 910B4 captures do."""
    host_chips = []
    for number in range(8):
        processes = [{"pid": 518867 + number, "name": "mindieservice_b", "memory_mb": 27474}] if number in busy else ()
        host_chips.append(dict(chip(number, processes=processes), memory_used_mb=30637 if number in busy else 3163))
    return {
        "chips": host_chips,
        "npu_smi_layout": "a2",
        "driver_version": "24.1.rc2",
        "cann_version": "8.0.RC1",
        "nnal_version": "8.0.RC1",
        "arch": "aarch64",
    }
