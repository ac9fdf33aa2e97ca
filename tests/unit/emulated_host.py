"""Emulated Ascend hosts for unit tests, built by the emulator's own code.

The Ascend install tree comes from tests/emulator/emulator_init.py (written
under tmp_path instead of /), npu-smi is the emulator's npu_smi.py reading the
profile: npu_facts then runs its real command path against them.
"""

import importlib.util
import json
import os
import stat
import sys

import pytest
import yaml

from ansible.module_utils.testing import patch_module_args

from ansible_collections.npu.fleet.plugins.modules import npu_facts

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
EMULATOR_DIR = os.path.join(REPO, "tests", "emulator")


def load_emulator_init():
    spec = importlib.util.spec_from_file_location("emulator_init", os.path.join(EMULATOR_DIR, "emulator_init.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def executable(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


def dev_dir(tmp_path, count):
    directory = tmp_path / "dev"
    directory.mkdir()
    for name in ["davinci%d" % n for n in range(count)] + ["davinci_manager", "devmm_svm", "hisi_hdc"]:
        (directory / name).write_text("")
    return str(directory)


def emulated_host(tmp_path, monkeypatch, profile):
    """Ascend tree + npu-smi + /dev of an emulated host under tmp_path; returns module args."""
    emulator_init = load_emulator_init()
    root = str(tmp_path / "host")
    ascend = root + "/usr/local/Ascend"
    original_write = emulator_init.write

    def write(path, text, mode=0o644):
        original_write(path if path.startswith(root) else root + path, text, mode)

    monkeypatch.setattr(emulator_init, "write", write)
    monkeypatch.setattr(emulator_init, "ASCEND", ascend)
    monkeypatch.setattr(emulator_init, "RUNTIME_DIR", ascend + "/Ascend-Docker-Runtime")
    os.makedirs(ascend)
    emulator_init.create_driver(profile)
    emulator_init.create_cann(profile)
    emulator_init.create_docker_runtime(profile)
    profile_file = tmp_path / "profile.yml"
    profile_file.write_text(yaml.safe_dump(profile))
    wrapper = executable(
        tmp_path / "npu-smi",
        '#!/bin/sh\necho "$*" >> %s\nNPU_EMULATOR_PROFILE_FILE=%s exec %s %s "$@"\n'
        % (tmp_path / "npu-smi.calls", profile_file, sys.executable, os.path.join(EMULATOR_DIR, "npu_smi.py")),
    )
    chips = len(profile.get("npu_ids") or range(profile["npu_count"])) * profile.get("chips_per_npu", 1)
    return {
        "npu_smi_path": wrapper,
        "ascend_root": ascend,
        "docker_daemon_config": root + "/etc/docker/daemon.json",
        "dev_dir": dev_dir(tmp_path, chips),
    }


def run(capsys, args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            npu_facts.main()
    result = json.loads(capsys.readouterr().out)
    result["_exit"] = exit_info.value.code
    return result


def profile_named(name):
    with open(os.path.join(EMULATOR_DIR, "profiles", name + ".yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)
