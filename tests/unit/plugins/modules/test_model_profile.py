"""Unit tests for plugins/modules/model_profile.py, run through AnsibleModule."""

import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.npu.fleet.plugins.modules import model_profile
from model_checkpoints import copy_fixture, write_safetensors


def _run(capsys, args):
    """Run the module with ``args``; return its JSON result."""
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            model_profile.main()
    return json.loads(capsys.readouterr().out)


def test_returns_the_profile_and_never_changes(tmp_path, capsys):
    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / "q"))
    size = write_safetensors(os.path.join(path, "model.safetensors"), {"model.norm.weight": ("BF16", [4096])})
    result = _run(capsys, {"path": path})
    assert result["changed"] is False
    assert "failed" not in result
    profile = result["profile"]
    assert profile["architecture"] == "Qwen3ForCausalLM"
    assert profile["weights_bytes"] == size == 4096 * 2
    assert profile["kv_cache_bytes_per_token"] == 36 * 2 * 8 * 128 * 2


def test_check_mode_gives_the_same_profile(tmp_path, capsys):
    path = copy_fixture("openai__gpt-oss-20b", str(tmp_path / "g"))
    normal = _run(capsys, {"path": path})
    checked = _run(capsys, {"path": path, "_ansible_check_mode": True})
    assert checked["changed"] is False
    assert checked["profile"] == normal["profile"]


def test_profile_warnings_become_task_warnings(tmp_path, capsys, monkeypatch):
    # Where module warnings end up differs between module and controller processes in
    # ansible-core 2.19, so record the calls to AnsibleModule.warn instead.
    seen = []
    monkeypatch.setattr(model_profile.AnsibleModule, "warn", lambda self, msg: seen.append(msg))
    path = copy_fixture("openai__gpt-oss-20b", str(tmp_path / "g"))
    result = _run(capsys, {"path": path})
    assert seen == result["profile"]["warnings"]
    assert any("sliding window of 128 tokens" in w for w in seen)


def test_dtype_option(tmp_path, capsys):
    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / "q"))
    result = _run(capsys, {"path": path, "dtype": "float32"})
    assert result["profile"]["kv_cache_bytes_per_token"] == 36 * 2 * 8 * 128 * 4


def test_errors_name_the_file(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{ not json")
    result = _run(capsys, {"path": str(tmp_path)})
    assert result["failed"] is True
    assert result["msg"].startswith(str(tmp_path / "config.json") + ": invalid JSON at line 1 column 3")


def test_missing_directory_fails(tmp_path, capsys):
    result = _run(capsys, {"path": str(tmp_path / "nowhere")})
    assert result["failed"] is True and "not a directory" in result["msg"]


def test_path_is_required(capsys):
    result = _run(capsys, {})
    assert result["failed"] is True and "missing required arguments: path" in result["msg"]
