"""Unit tests for plugins/modules/model_files.py: through AnsibleModule, and once through the ``ansible`` CLI.

Checkpoints are written by tests/unit/model_checkpoints.py (the real config of Qwen/Qwen3-8B, real safetensors
files at small shapes); the "controller" and the "host" are two directories under tmp_path.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.npu.fleet.plugins.modules import model_files
from collection_link import link_collection
from model_checkpoints import copy_fixture, write_index, write_safetensors

SHARDS = {
    "model-00001-of-00002.safetensors": {"model.embed_tokens.weight": ("BF16", [64, 32])},
    "model-00002-of-00002.safetensors": {"model.norm.weight": ("BF16", [32]), "lm_head.weight": ("BF16", [64, 32])},
}


def checkpoint(path):
    copy_fixture("Qwen__Qwen3-8B", path)
    weight_map = {}
    for shard, tensors in SHARDS.items():
        write_safetensors(os.path.join(path, shard), tensors)
        weight_map.update((tensor, shard) for tensor in tensors)
    write_index(path, weight_map)
    return path


def _run(capsys, args):
    """Run the module with ``args``; return its JSON result."""
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            model_files.main()
    return json.loads(capsys.readouterr().out)


def test_a_complete_checkpoint_is_ok_and_nothing_changes(tmp_path, capsys):
    path = checkpoint(str(tmp_path / "m"))
    result = _run(capsys, {"path": path})
    assert "failed" not in result and result["changed"] is False
    assert result["ok"] is True and result["problems"] == []
    assert [item["name"] for item in result["files"]] == sorted(os.listdir(path))
    assert result["bytes"] == sum(os.path.getsize(os.path.join(path, name)) for name in os.listdir(path))
    assert result["free_bytes"] > 0 and result["free_path"] == path and result["need_bytes"] is None
    assert "copy" not in result


def test_check_mode_gives_the_same_result(tmp_path, capsys):
    path = checkpoint(str(tmp_path / "m"))
    normal = _run(capsys, {"path": path, "checksums": True})
    checked = _run(capsys, {"path": path, "checksums": True, "_ansible_check_mode": True})
    for key in ("ok", "problems", "files", "bytes", "changed"):
        assert checked[key] == normal[key]
    assert all(len(item["sha256"]) == 64 for item in checked["files"])


def test_a_truncated_shard_fails_naming_host_path_and_file(tmp_path, capsys):
    path = checkpoint(str(tmp_path / "m"))
    shard = os.path.join(path, "model-00002-of-00002.safetensors")
    with open(shard, "r+b") as handle:
        handle.truncate(os.path.getsize(shard) - 64)
    result = _run(capsys, {"path": path, "host_name": "npu-a2-01"})
    assert result["failed"] is True and result["ok"] is False
    assert result["msg"].startswith(
        "npu-a2-01: %s is not a complete checkpoint, 1 problem(s): model-00002-of-00002.safetensors is truncated: " % path
    )
    assert "64 bytes missing (fix: copy or download this file again" in result["msg"]
    assert result["problems"][0]["file"] == "model-00002-of-00002.safetensors"


def test_the_host_name_defaults_to_the_machine_name(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(model_files.platform, "node", lambda: "npu-box-7")
    result = _run(capsys, {"path": str(tmp_path / "nowhere")})
    assert result["msg"] == (
        "npu-box-7: %s is not a complete checkpoint, 1 problem(s): %s does not exist (fix: put the checkpoint there, "
        "or point the catalogue at where it is)" % (tmp_path / "nowhere", tmp_path / "nowhere")
    )
    assert result["free_path"] == str(tmp_path)


def test_problems_are_returned_without_failing_when_asked(tmp_path, capsys):
    result = _run(capsys, {"path": str(tmp_path / "nowhere"), "fail_on_problems": False})
    assert "failed" not in result and result["ok"] is False and result["exists"] is False


def test_not_enough_space_fails_naming_host_path_need_and_free(tmp_path, capsys):
    path = str(tmp_path / "models" / "qwen3-8b")
    free = os.statvfs(str(tmp_path)).f_bavail * os.statvfs(str(tmp_path)).f_frsize
    need = free + 5 * 1024**3
    result = _run(capsys, {"path": path, "need_bytes": need, "fail_on_problems": False, "host_name": "npu-a2-01"})
    assert result["failed"] is True and result["need_bytes"] == need
    assert result["msg"].startswith(
        "npu-a2-01: %s needs %s ({:,} bytes) but its filesystem (measured at %s) has ".format(need)
        % (path, model_files_human(need), tmp_path)
    )
    assert "or set host_path (or npu_fleet_model_root) to a filesystem with room" in result["msg"]


def model_files_human(count):
    from ansible_collections.npu.fleet.plugins.module_utils._model_files import human_bytes

    return human_bytes(count)


def test_enough_space_passes(tmp_path, capsys):
    result = _run(capsys, {"path": str(tmp_path / "new"), "need_bytes": 1, "fail_on_problems": False})
    assert "failed" not in result and result["need_bytes"] == 1


def test_a_controller_copy_plan_then_nothing_to_copy(tmp_path, capsys):
    """The controller lists its directory with checksums; the host plans, 'copies', and plans again."""
    controller = checkpoint(str(tmp_path / "controller" / "Qwen3-8B"))
    host = str(tmp_path / "host" / "qwen3-8b")
    expected = _run(capsys, {"path": controller, "checksums": True})["files"]

    first = _run(capsys, {"path": host, "expected_files": expected, "fail_on_problems": False})
    assert "failed" not in first
    assert [(item["name"], item["reason"]) for item in first["copy"]["files"]] == [(item["name"], "missing") for item in expected]
    assert first["copy"]["bytes"] == first["need_bytes"] == sum(item["size"] for item in expected)

    shutil.copytree(controller, host)
    with open(os.path.join(host, "notes.txt"), "w", encoding="utf-8") as handle:
        handle.write("mine")
    again = _run(capsys, {"path": host, "expected_files": expected})
    assert "failed" not in again and again["ok"] is True
    assert again["copy"]["files"] == [] and again["copy"]["bytes"] == 0 and again["need_bytes"] == 0
    assert again["copy"]["extra"] == ["notes.txt"]

    with open(os.path.join(host, "model-00001-of-00002.safetensors"), "r+b") as handle:  # same size, other bytes
        handle.seek(-2, os.SEEK_END)
        handle.write(b"\x07\x07")
    with open(os.path.join(host, "model-00002-of-00002.safetensors"), "r+b") as handle:
        handle.truncate(100)
    damaged = _run(capsys, {"path": host, "expected_files": expected, "fail_on_problems": False})
    assert [(item["name"], item["reason"].split(":")[0]) for item in damaged["copy"]["files"]] == [
        ("model-00001-of-00002.safetensors", "sha256 differs"),
        ("model-00002-of-00002.safetensors", "size differs"),
    ]


def test_a_malformed_manifest_fails_with_the_entry(tmp_path, capsys):
    result = _run(capsys, {"path": str(tmp_path), "expected_files": [{"name": "../../etc/shadow", "size": 1}], "fail_on_problems": False})
    assert result["failed"] is True
    assert result["msg"] == "expected_files[0]: name '../../etc/shadow' is not a plain relative path inside the model directory"


def test_path_or_paths_is_required(capsys):
    result = _run(capsys, {})
    assert result["failed"] is True and "one of the following is required: path, paths" in result["msg"]


def test_paths_checks_every_directory_in_one_run_and_names_each_problem(tmp_path, capsys):
    good, empty = checkpoint(str(tmp_path / "good")), tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    result = _run(capsys, {"paths": [str(good), str(empty)], "host_name": "npu-a2-01"})
    assert result["failed"] is True
    assert [(item["directory"], item["ok"]) for item in result["directories"]] == [(good, True), (str(empty), False)]
    assert result["msg"].startswith("npu-a2-01: %s" % empty) and good not in result["msg"]
    passed = _run(capsys, {"paths": [good]})
    assert passed.get("failed") is not True and passed["directories"][0]["bytes"] > 0


def test_negative_need_bytes(tmp_path, capsys):
    result = _run(capsys, {"path": str(tmp_path), "need_bytes": -1, "fail_on_problems": False})
    assert result["failed"] is True and result["msg"] == "need_bytes must be 0 or more, got -1"


ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")


def ansible_module(tmp_path, args):
    """``ansible localhost -m npu.fleet.model_files -a <json>``: the module shipped to a real (local) host."""
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=link_collection(),
        ANSIBLE_HOME=str(tmp_path / "home"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    env.pop("ANSIBLE_CONFIG", None)
    done = subprocess.run(
        [ANSIBLE, "localhost", "-c", "local", "-i", "localhost,", "-m", "npu.fleet.model_files", "-a", json.dumps(args)],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = json.loads(done.stdout)
    return done.returncode, output["plays"][0]["tasks"][0]["hosts"]["localhost"]


@pytest.mark.skipif(not os.path.exists(ANSIBLE), reason="the ansible CLI is not installed next to this Python")
def test_through_ansible_on_a_real_host(tmp_path):
    path = checkpoint(str(tmp_path / "m"))
    code, result = ansible_module(tmp_path, {"path": path})
    assert code == 0 and result["ok"] is True and result["changed"] is False
    shard = os.path.join(path, "model-00001-of-00002.safetensors")
    with open(shard, "r+b") as handle:
        handle.truncate(os.path.getsize(shard) - 10)
    code, result = ansible_module(tmp_path, {"path": path, "host_name": "npu-a2-01"})
    assert code == 2 and result["failed"] is True
    assert result["msg"].startswith("npu-a2-01: %s is not a complete checkpoint, 1 problem(s): model-00001-of-00002.safetensors" % path)
