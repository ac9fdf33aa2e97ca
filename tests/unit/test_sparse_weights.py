"""tests/emulator/sparse_weights.py: sparse safetensors shards that profile and verify like the real checkpoint.

Run on every real config.json of the repository (the emulated fleet's models
and the model fixtures): the host-side check ``verify_model_dir`` passes, the
profile counts the parameters from the shard headers, and the files cost
almost no disk. Parameter counts are compared with the published ones where
they are known exactly, and with the profile's config-only estimate.
"""

import glob
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys

import pytest
from model_checkpoints import write_safetensors

from ansible_collections.npu.fleet.plugins.module_utils._model_files import verify_model_dir
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import profile_model

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(REPO, "tests", "emulator", "sparse_weights.py")
_spec = importlib.util.spec_from_file_location("sparse_weights", SCRIPT)
sparse_weights = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sparse_weights)

CONFIGS = sorted(
    glob.glob(os.path.join(REPO, "tests", "emulator", "models", "*", "config.json"))
    + glob.glob(os.path.join(REPO, "tests", "unit", "fixtures", "models", "*", "config.json"))
)
NAMES = [os.path.basename(os.path.dirname(path)) for path in CONFIGS]

# Published parameter counts, matched exactly: the index summaries in tests/unit/fixtures/models
# (Llama 3.1 8B 8030261248 params / total_size 16060522496; Qwen2.5-7B 7615616512 / 15231233024;
# Mistral 7B v0.3 7248023552 / 14496047104, 291 tensors) and the models' pages (Qwen3-8B 8.19B,
# Qwen3-4B 4.02B, Yi-1.5-9B 8.83B, Mixtral 8x7B 46.7B, Qwen3-30B-A3B 30.5B, Qwen3-VL-8B 8.77B,
# gpt-oss-20b 20.9B; the exact figures are the sums of the published shapes).
EXACT = {
    "llama-3.1-8b": 8_030_261_248,
    "meta-llama__Llama-3.1-8B-Instruct": 8_030_261_248,
    "meta-llama__Meta-Llama-3.1-8B": 8_030_261_248,
    "qwen3-8b": 8_190_735_360,
    "Qwen__Qwen3-8B": 8_190_735_360,
    "qwen3-4b-262k": 4_022_468_096,
    "qwen3-4b-instruct": 4_022_468_096,
    "jaman21__Qwen3-4B-Instruct": 4_022_468_096,
    "Qwen__Qwen2.5-7B-Instruct": 7_615_616_512,
    "mistralai__Mistral-7B-Instruct-v0.3": 7_248_023_552,
    "01-ai__Yi-1.5-9B-Chat": 8_829_407_232,
    "mistralai__Mixtral-8x7B-v0.1": 46_702_792_704,
    "Qwen__Qwen3-30B-A3B": 30_532_122_624,
    "Qwen__Qwen3-VL-8B-Instruct": 8_767_123_696,
    "openai__gpt-oss-20b": 20_914_757_184,
}
# Published totals of the hybrid and very large models (rounded as their pages give them): within 5 %.
APPROXIMATE = {
    "deepseek-ai__DeepSeek-V3": 685e9,  # 671B + the 14B MTP module
    "moonshotai__Kimi-K2-Instruct": 1.0e12,
    "zai-org__GLM-5": 744e9,
    "MiniMaxAI__MiniMax-M2.7": 230e9,
    "Qwen__Qwen3-Next-80B-A3B-Instruct": 80e9,
    "Qwen__Qwen3.5-27B": 27e9,
    "Qwen__Qwen3.5-35B-A3B": 35e9,
    "ai21labs__AI21-Jamba-1.5-Mini": 52e9,
    "nvidia__NVIDIA-Nemotron-3-Nano-30B-A3B-BF16": 31.6e9,
    "nvidia__Nemotron-H-56B-Base-8K": 56e9,
    "google__gemma-4-26B-A4B": 25.2e9,
}
# Published index total_size (BF16 checkpoints): the sparse index gives the same bytes.
TOTAL_SIZE = {
    "llama-3.1-8b": 16_060_522_496,
    "meta-llama__Meta-Llama-3.1-8B": 16_060_522_496,
    "Qwen__Qwen2.5-7B-Instruct": 15_231_233_024,
    "mistralai__Mistral-7B-Instruct-v0.3": 14_496_047_104,
}
# Layouts whose config-only estimate (_model_profile._estimate_parameters: every layer attention + MLP,
# language model only, norms left out) is not the model: hybrids, VL wrappers, MTP modules, Gemma 4's double MLP.
ESTIMATE_OFF = {
    "deepseek-ai__DeepSeek-V3",
    "zai-org__GLM-5",
    "Qwen__Qwen3-VL-8B-Instruct",
    "Qwen__Qwen3.5-27B",
    "Qwen__Qwen3.5-35B-A3B",
    "Qwen__Qwen3-Next-80B-A3B-Instruct",
    "ai21labs__AI21-Jamba-1.5-Mini",
    "nvidia__NVIDIA-Nemotron-3-Nano-30B-A3B-BF16",
    "nvidia__NVIDIA-Nemotron-3.5-Lightning-30B-A3B-NVFP4",
    "nvidia__Nemotron-H-56B-Base-8K",
    "google__gemma-4-26B-A4B",
}


def _model_dir(tmp_path, config_path, name="model"):
    dest = tmp_path / name
    dest.mkdir()
    shutil.copy(config_path, dest / "config.json")
    return str(dest)


def _blocks_bytes(path):
    return sum(os.stat(os.path.join(path, name)).st_blocks * 512 for name in os.listdir(path))


def _apparent_bytes(path):
    return sum(os.path.getsize(os.path.join(path, name)) for name in os.listdir(path))


def test_every_repository_config_is_covered():
    assert "qwen3-8b" in NAMES and "llama-3.1-8b" in NAMES and len(CONFIGS) >= 25
    assert set(EXACT) | set(APPROXIMATE) | set(TOTAL_SIZE) | ESTIMATE_OFF <= set(NAMES)


@pytest.mark.parametrize("config_path", CONFIGS, ids=NAMES)
def test_sparse_shards_verify_profile_and_cost_no_disk(tmp_path, config_path):
    name = os.path.basename(os.path.dirname(config_path))
    path = _model_dir(tmp_path, config_path)
    from_config = profile_model(path)
    assert from_config["parameters_source"].startswith("estimated")

    result = sparse_weights.make_sparse_weights(path)

    assert result["changed"] is True
    verified = verify_model_dir(path)
    assert verified["ok"], verified["problems"]
    profile = profile_model(path)
    assert profile["parameters_source"] == "safetensors headers (stored elements)"
    assert profile["parameters"] == result["parameters"]
    assert profile["weights_bytes"] == result["total_size"] == 2 * result["parameters"]  # BF16
    assert profile["weights_bytes_source"].endswith("metadata.total_size") or len(result["files"]) == 1
    assert not [w for w in profile["warnings"] if "no tensors for layer" in w or "not in the directory" in w]
    if name in EXACT:
        assert result["parameters"] == EXACT[name]
    if name in APPROXIMATE:
        assert abs(result["parameters"] - APPROXIMATE[name]) / APPROXIMATE[name] < 0.05
    if name in TOTAL_SIZE:
        assert profile["weights_bytes"] == TOTAL_SIZE[name]
    if name not in ESTIMATE_OFF:
        assert abs(profile["parameters"] - from_config["parameters"]) / profile["parameters"] < 0.001
    # Gigabytes on paper, headers only on disk (the largest header, Kimi K2's 70,000 tensors, is a few MB).
    apparent, used = _apparent_bytes(path), _blocks_bytes(path)
    assert apparent > result["total_size"] > 10**9
    assert used < 32 * 1024**2 and used * 100 < apparent


def test_shards_are_cut_at_five_gigabytes_and_indexed(tmp_path):
    path = _model_dir(tmp_path, os.path.join(REPO, "tests", "emulator", "models", "qwen3-8b", "config.json"))
    result = sparse_weights.make_sparse_weights(path)
    names = [item["name"] for item in result["files"]]
    assert names == ["model-%05d-of-00004.safetensors" % n for n in range(1, 5)]
    with open(os.path.join(path, "model.safetensors.index.json")) as handle:
        index = json.load(handle)
    assert index["metadata"]["total_size"] == 16_381_470_720  # Qwen3-8B's published index
    assert sorted(set(index["weight_map"].values())) == names and len(index["weight_map"]) == 399
    assert index["weight_map"]["lm_head.weight"] == names[-1] and index["weight_map"]["model.embed_tokens.weight"] == names[0]
    for name in names:
        with open(os.path.join(path, name), "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        assert length % 8 == 0  # padded as the safetensors library pads it
        assert header["__metadata__"]["format"] == "pt"
        data = max(entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__")
        assert data <= 5 * 10**9
        assert os.path.getsize(os.path.join(path, name)) == 8 + length + data
        assert {entry["dtype"] for key, entry in header.items() if key != "__metadata__"} == {"BF16"}
    layer = [k for k in index["weight_map"] if k.startswith("model.layers.0.")]
    assert sorted(k[len("model.layers.0.") :] for k in layer) == sorted(
        ["input_layernorm.weight", "post_attention_layernorm.weight"]
        + ["self_attn.%s.weight" % n for n in ("q_proj", "k_proj", "v_proj", "o_proj", "q_norm", "k_norm")]
        + ["mlp.%s.weight" % n for n in ("gate_proj", "up_proj", "down_proj")]
    )


def test_tied_embeddings_have_no_lm_head_and_a_small_model_is_one_file(tmp_path):
    path = _model_dir(tmp_path, os.path.join(REPO, "tests", "emulator", "models", "qwen3-4b-instruct", "config.json"))
    result = sparse_weights.make_sparse_weights(path, max_shard_bytes=10**12)
    assert [item["name"] for item in result["files"]] == ["model.safetensors"]
    assert not os.path.exists(os.path.join(path, "model.safetensors.index.json"))
    header = sparse_weights.plan_shards(sparse_weights.model_tensors(json.load(open(os.path.join(path, "config.json")))))[0]
    assert b'"lm_head.weight"' not in header["header"]
    assert verify_model_dir(path)["ok"]
    assert profile_model(path)["parameters"] == 4_022_468_096


def test_a_second_run_changes_nothing(tmp_path):
    path = _model_dir(tmp_path, os.path.join(REPO, "tests", "emulator", "models", "llama-3.1-8b", "config.json"))
    sparse_weights.make_sparse_weights(path)
    before = {name: os.stat(os.path.join(path, name)).st_mtime_ns for name in os.listdir(path)}
    again = sparse_weights.make_sparse_weights(path)
    assert again["changed"] is False and "already holds" in again["message"]
    assert {name: os.stat(os.path.join(path, name)).st_mtime_ns for name in os.listdir(path)} == before


def test_an_interrupted_run_is_completed(tmp_path):
    path = _model_dir(tmp_path, os.path.join(REPO, "tests", "emulator", "models", "llama-3.1-8b", "config.json"))
    sparse_weights.make_sparse_weights(path)
    # Files appear by rename, the index last: a run stopped midway leaves whole shards and no index.
    os.unlink(os.path.join(path, "model.safetensors.index.json"))
    os.unlink(os.path.join(path, "model-00004-of-00004.safetensors"))
    shard = os.path.join(path, "model-00002-of-00004.safetensors")
    os.truncate(shard, os.path.getsize(shard) - 1000)  # and one cut short after its header, as a copy would
    assert not verify_model_dir(path)["ok"]
    assert sparse_weights.make_sparse_weights(path)["changed"] is True
    assert verify_model_dir(path)["ok"]
    assert not [name for name in os.listdir(path) if name.endswith(".partial")]


def test_its_own_files_of_another_plan_are_replaced(tmp_path):
    path = _model_dir(tmp_path, os.path.join(REPO, "tests", "emulator", "models", "llama-3.1-8b", "config.json"))
    small = sparse_weights.make_sparse_weights(path, max_shard_bytes=2 * 10**9)
    assert len(small["files"]) > 4
    result = sparse_weights.make_sparse_weights(path)
    assert result["changed"] is True and len(result["files"]) == 4
    assert sorted(n for n in os.listdir(path) if n.endswith(".safetensors")) == [item["name"] for item in result["files"]]
    assert verify_model_dir(path)["ok"]


def test_real_weights_are_never_touched(tmp_path):
    """A tiny real checkpoint (model.safetensors without the marker) is left exactly as it is."""
    path = _model_dir(tmp_path, os.path.join(REPO, "tests", "emulator", "models", "qwen3-4b-instruct", "config.json"))
    real = os.path.join(path, "model.safetensors")
    write_safetensors(real, {"model.embed_tokens.weight": ("BF16", (8, 4))})
    with open(real, "rb") as handle:
        content = handle.read()
    result = sparse_weights.make_sparse_weights(path, max_shard_bytes=10**12)  # would plan model.safetensors too
    assert result["changed"] is False and "weights of its own" in result["message"]
    with open(real, "rb") as handle:
        assert handle.read() == content
    assert sorted(os.listdir(path)) == ["config.json", "model.safetensors"]


def test_the_host_check_still_sees_a_truncated_sparse_shard(tmp_path):
    path = _model_dir(tmp_path, os.path.join(REPO, "tests", "emulator", "models", "qwen3-8b", "config.json"))
    sparse_weights.make_sparse_weights(path)
    shard = os.path.join(path, "model-00003-of-00004.safetensors")
    os.truncate(shard, os.path.getsize(shard) - 1)
    problems = verify_model_dir(path)["problems"]
    assert [p["file"] for p in problems] == ["model-00003-of-00004.safetensors"] and "truncated" in problems[0]["what"]


def test_command_line(tmp_path):
    path = _model_dir(tmp_path, os.path.join(REPO, "tests", "emulator", "models", "qwen3-8b", "config.json"))
    run = subprocess.run([sys.executable, SCRIPT, path], capture_output=True, text=True, check=True)
    result = json.loads(run.stdout)
    assert result["changed"] is True and result["parameters"] == 8_190_735_360 and result["tensors"] == 399
    again = json.loads(subprocess.run([sys.executable, SCRIPT, path], capture_output=True, text=True, check=True).stdout)
    assert again["changed"] is False

    empty = tmp_path / "empty"
    empty.mkdir()
    failed = subprocess.run([sys.executable, SCRIPT, str(empty)], capture_output=True, text=True, check=False)
    assert failed.returncode == 1 and "no config.json" in failed.stderr and failed.stdout == ""


def test_a_config_without_shapes_is_refused(tmp_path):
    path = tmp_path / "bad"
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 2}))
    with pytest.raises(sparse_weights.SparseWeightsError, match="hidden_size"):
        sparse_weights.make_sparse_weights(str(path))
    assert os.listdir(path) == ["config.json"]
