"""Unit tests for plugins/module_utils/_kv_fit.py.

Each case writes its arithmetic out: GiB = 2**30, the chip as npu-smi reports
it minus the 3 GiB the runtime never sees, times gpu_memory_utilization, minus
weights and reserve; KV per token = layers x 2 x kv_heads x head_dim x 2 bytes.
A fixed ``reserve_bytes`` keeps the verdict tests exact; the estimate itself is
checked in its own tests.
"""

import os

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._kv_fit import activation_bytes, kv_bytes_for_length, kv_fit
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import profile_model
from builders import fixture_profile
from model_checkpoints import write_json

GiB = 2**30
MiB = 2**20


# --------------------------------------------------------------------------- QED-Nano-like: 262k on a 32 GB chip


def test_262k_context_on_a_32_gib_chip_is_capped_to_a_block_multiple(tmp_path):
    # A 4B-class Qwen3 with 262144 context (36 layers, 8 KV heads, head_dim 128), 8.0 GB of weights.
    profile = fixture_profile("jaman21__Qwen3-4B-Instruct", tmp_path, total_size=8_000_000_000)
    fit = kv_fit(profile, chip_memory_mb=32768, gpu_memory_utilization=0.9, max_model_len=262144, reserve_bytes=2 * GiB)
    budget = int((32 - 3) * GiB * 0.9)  # 28024661606
    available = budget - 8_000_000_000 - 2 * GiB  # 17877177958
    per_token = 36 * 2 * 8 * 128 * 2  # 147456
    block_bytes = 128 * per_token  # one 128-token block, all layers
    assert fit["budget_bytes"] == budget == 28024661606
    assert fit["kv_available_bytes"] == available == 17877177958
    assert fit["kv_bytes_per_token"] == per_token
    assert fit["kv_needed_bytes"] == 262144 * per_token == 36 * GiB
    assert fit["verdict"] == "capped"
    assert fit["recommended_max_model_len"] == (available // block_bytes) * 128 == 947 * 128 == 121216
    assert fit["kv_cache_blocks"] == 947 and fit["kv_cache_tokens"] == 121216
    assert fit["message"] == (
        "262144 tokens need 36.0 GiB of KV cache, 16.6 GiB is available on one 32 GiB chip at 0.90; capped to 121216."
    )
    assert fit["max_concurrency"] == round(available / (947 * block_bytes), 2) == 1.0
    assert fit["concurrent_sequences"] == 1


def test_field_report_setting_8192_at_095_fits_with_room_for_16(tmp_path):
    profile = fixture_profile("jaman21__Qwen3-4B-Instruct", tmp_path, total_size=8_000_000_000)
    fit = kv_fit(profile, chip_memory_mb=32768, gpu_memory_utilization=0.95, max_model_len=8192, reserve_bytes=2 * GiB)
    available = int((32 - 3) * GiB * 0.95) - 8_000_000_000 - 2 * GiB  # 19434103603
    need = 8192 * 36 * 2 * 8 * 128 * 2  # 1207959552
    assert fit["kv_available_bytes"] == available == 19434103603
    assert fit["verdict"] == "fits" and fit["recommended_max_model_len"] == 8192
    assert fit["kv_needed_bytes"] == need
    assert fit["max_concurrency"] == round(available / need, 2) == 16.09
    assert fit["concurrent_sequences"] == 16


# --------------------------------------------------------------------------- weights do not fit at TP1, fit at TP2


def test_weights_that_need_two_chips(tmp_path):
    profile = fixture_profile("Qwen__Qwen3-8B", tmp_path, total_size=16_000_000_000)
    fit = kv_fit(profile, chip_memory_mb=16384, max_model_len=40960, reserve_bytes=GiB)
    budget = int((16 - 3) * GiB * 0.9)  # 12562779340 < 16e9 of weights
    assert fit["budget_bytes"] == budget == 12562779340
    assert fit["verdict"] == "does_not_fit"
    assert fit["recommended_max_model_len"] is None
    assert fit["suggested_tensor_parallel_size"] == 2
    assert fit["message"] == (
        "weights alone need 14.9 GiB per chip, more than the 11.7 GiB budget (0.90 of 13.0 GiB "
        "usable) on one 16 GiB chip at 0.90; try tensor_parallel_size 2."
    )

    fit2 = kv_fit(profile, chip_memory_mb=16384, tensor_parallel_size=2, max_model_len=40960, reserve_bytes=GiB)
    available = budget - 16_000_000_000 // 2 - GiB  # 3489037516
    per_token = 36 * 2 * (8 // 2) * 128 * 2  # 4 KV heads per rank: 73728
    assert fit2["weights_bytes_per_chip"] == 8_000_000_000
    assert fit2["kv_available_bytes"] == available == 3489037516
    assert fit2["kv_needed_bytes"] == 40960 * per_token == 3019898880
    assert fit2["verdict"] == "fits"
    assert fit2["message"] == ("40960 tokens need 2.8 GiB of KV cache, 3.2 GiB is available on each of 2 16 GiB chips at 0.90; fits.")


def test_no_memory_left_for_the_cache_blocks(tmp_path):
    profile = fixture_profile("Qwen__Qwen3-8B", tmp_path, total_size=16_000_000_000)
    fit = kv_fit(profile, chip_memory_mb=24576, reserve_bytes=5 * GiB)
    assert int((24 - 3) * GiB * 0.9) - 16_000_000_000 - 5 * GiB < 0
    assert fit["verdict"] == "does_not_fit"
    assert "No available memory for the cache blocks" in fit["message"]
    assert fit["suggested_tensor_parallel_size"] == 2


# --------------------------------------------------------------------------- min_model_len floor


def test_min_model_len_is_a_floor_not_a_silent_shrink(tmp_path):
    profile = fixture_profile("Qwen__Qwen3-8B", tmp_path, total_size=16_000_000_000)
    available = int((24 - 3) * GiB * 0.9) - 16_000_000_000 - GiB  # 3219978649
    block_bytes = 128 * 36 * 2 * 8 * 128 * 2  # 18874368
    longest = (available // block_bytes) * 128  # 170 blocks = 21760 tokens
    assert (available, longest) == (3219978649, 21760)

    fit = kv_fit(profile, chip_memory_mb=24576, max_model_len=40960, min_model_len=32768, reserve_bytes=GiB)
    assert fit["verdict"] == "does_not_fit"
    assert fit["recommended_max_model_len"] is None
    assert fit["max_model_len_fit"] == longest
    assert fit["suggested_tensor_parallel_size"] == 2
    assert fit["message"] == (
        "even min_model_len 32768 tokens need 4.5 GiB of KV cache, but only 3.0 GiB is "
        "available on one 24 GiB chip at 0.90; the longest that fits is 21760; try "
        "tensor_parallel_size 2."
    )

    capped = kv_fit(profile, chip_memory_mb=24576, max_model_len=40960, reserve_bytes=GiB)  # default floor 4096
    assert capped["verdict"] == "capped" and capped["recommended_max_model_len"] == longest


def test_request_beyond_the_model_context_is_capped_to_it(tmp_path):
    profile = fixture_profile("Qwen__Qwen3-8B", tmp_path, total_size=16_000_000_000)
    fit = kv_fit(profile, chip_memory_mb=65536, max_model_len=131072, reserve_bytes=GiB)
    assert fit["verdict"] == "capped"
    assert fit["recommended_max_model_len"] == 40960
    assert fit["message"].endswith("; capped to the model's context, 40960.")
    assert "exceeds the model's context of 40960 tokens" in fit["reasons"][0]


def test_default_length_is_the_model_context(tmp_path):
    profile = fixture_profile("Qwen__Qwen3-8B", tmp_path, total_size=16_000_000_000)
    fit = kv_fit(profile, chip_memory_mb=65536, reserve_bytes=GiB)
    assert fit["requested_max_model_len"] == 40960 and fit["verdict"] == "fits"


# --------------------------------------------------------------------------- MLA and sliding window


def test_deepseek_v3_mla_cache_is_replicated_on_every_rank(tmp_path):
    profile = fixture_profile("deepseek-ai__DeepSeek-V3", tmp_path, total_size=688586727753)
    fit = kv_fit(profile, chip_memory_mb=65536, tensor_parallel_size=16, reserve_bytes=4 * GiB)
    weights = -(-688586727753 // 16)  # 43036670485 per chip
    available = int((64 - 3) * GiB * 0.9) - weights - 4 * GiB  # 11616788356
    need = 61 * 163840 * (512 + 64) * 2  # not divided by TP: 11513364480
    assert fit["weights_bytes_per_chip"] == weights == 43036670485
    assert fit["kv_bytes_per_token_per_layer"] == (512 + 64) * 2
    assert fit["kv_available_bytes"] == available == 11616788356
    assert fit["kv_needed_bytes"] == need == 11513364480
    assert fit["verdict"] == "fits"
    assert fit["message"] == ("163840 tokens need 10.7 GiB of KV cache, 10.8 GiB is available on each of 16 64 GiB chips at 0.90; fits.")


def test_gpt_oss_sliding_layers_are_bounded_by_the_window(tmp_path):
    profile = fixture_profile("openai__gpt-oss-20b", tmp_path, total_size=13_800_000_000)
    fit = kv_fit(profile, chip_memory_mb=65536, reserve_bytes=2 * GiB)
    page = 128 * 2 * 8 * 64 * 2  # one block of one layer: 262144
    full = 12 * (131072 // 128) * page  # 12 full layers hold every token
    # 12 sliding layers: cdiv(min(128 - 1 + 2048, 131072), 128) + 1 = 17 + 1 blocks each.
    sliding = 12 * (-(-(128 - 1 + 2048) // 128) + 1) * page
    available = int((64 - 3) * GiB * 0.9) - 13_800_000_000 - 2 * GiB
    assert (full, sliding) == (3221225472, 56623104)
    assert fit["kv_needed_bytes"] == full + sliding == 3277848576
    assert fit["verdict"] == "fits"
    assert fit["max_concurrency"] == round(available / (full + sliding), 2) == 13.12

    as_full = kv_fit(profile, chip_memory_mb=65536, reserve_bytes=2 * GiB, sliding_window_as_full=True)
    assert as_full["kv_needed_bytes"] == 24 * 131072 * 2048


def test_kv_bytes_for_short_sequences_inside_the_window():
    profile = {"kv_cache_full_layers": 1, "kv_cache_sliding_layers": 1, "sliding_window": 1024}
    # 100 tokens: full layer 1 block; sliding layer cdiv(min(1023 + 2048, 100), 128) + 1 = 2 blocks.
    assert kv_bytes_for_length(profile, 100, per_layer=10, block_size=128, max_num_batched_tokens=2048) == (1 + 2) * 128 * 10


# --------------------------------------------------------------------------- 310P, TP rules


def test_310p_worker_halves_the_budget_from_v016(tmp_path):
    profile = fixture_profile("jaman21__Qwen3-4B-Instruct", tmp_path, total_size=8_000_000_000)
    raw = int((24 - 3) * GiB * 0.9) - 8_000_000_000 - GiB  # 11219978649
    halved = kv_fit(profile, chip_memory_mb=24576, max_model_len=32768, reserve_bytes=GiB, chip_family="310p")
    assert halved["kv_halved_310p"] is True
    assert halved["kv_available_bytes"] == raw // 2 == 5609989324
    assert halved["kv_needed_bytes"] == 32768 * 147456 == 4831838208
    assert halved["verdict"] == "fits"
    assert "is available (halved by the 310P worker) on one 24 GiB chip" in halved["message"]
    old = kv_fit(profile, chip_memory_mb=24576, reserve_bytes=GiB, chip_family="310P", vllm_ascend_version="v0.15.0rc1")
    assert old["kv_halved_310p"] is False and old["kv_available_bytes"] == raw
    new = kv_fit(profile, chip_memory_mb=24576, reserve_bytes=GiB, chip_family="310p", vllm_ascend_version="0.18.0")
    assert new["kv_halved_310p"] is True
    a2 = kv_fit(profile, chip_memory_mb=24576, reserve_bytes=GiB, chip_family="910b")
    assert a2["kv_halved_310p"] is False


def test_tp_must_divide_the_attention_heads(tmp_path):
    profile = fixture_profile("Qwen__Qwen3-8B", tmp_path, total_size=16_000_000_000)
    fit = kv_fit(profile, chip_memory_mb=65536, tensor_parallel_size=3)
    assert fit["verdict"] == "does_not_fit"
    assert fit["message"] == ("vLLM requires num_attention_heads (32) to be divisible by tensor_parallel_size (3).")


def test_kv_heads_and_tp_must_divide_one_another(tmp_path):
    write_json(
        str(tmp_path / "config.json"),
        {"num_hidden_layers": 2, "num_attention_heads": 12, "num_key_value_heads": 4, "hidden_size": 768, "max_position_embeddings": 8192},
    )
    fit = kv_fit(profile_model(str(tmp_path)), chip_memory_mb=65536, tensor_parallel_size=6)
    assert fit["verdict"] == "does_not_fit"
    assert "num_key_value_heads (4) and tensor_parallel_size (6)" in fit["message"]


def test_kv_projections_replicated_when_tp_exceeds_kv_heads(tmp_path):
    profile = fixture_profile("Qwen__Qwen3-8B", tmp_path, total_size=16_000_000_000)
    fit = kv_fit(profile, chip_memory_mb=65536, tensor_parallel_size=16, reserve_bytes=GiB)
    # 8 KV heads over 16 ranks: each rank holds one head, i.e. 8 surplus head copies spread over 16 ranks.
    surplus = 36 * 2 * 4096 * 128 * 2 * (1 * 16 - 8) // 16  # 37748736
    assert fit["weights_bytes_per_chip"] == 16_000_000_000 // 16 + surplus == 1_037_748_736
    assert fit["kv_bytes_per_token"] == 36 * 2 * 1 * 128 * 2


# --------------------------------------------------------------------------- the reserve estimate


def test_activation_estimate_by_hand(tmp_path):
    profile = fixture_profile("Qwen__Qwen3-8B", tmp_path)
    tokens, hidden, seqs = 2048, 4096, 256
    residual = 4 * tokens * hidden * 2  # 67108864
    qkv = tokens * (32 + 2 * 8) * 128 * 2  # 25165824
    mlp = tokens * 3 * 12288 * 2  # 150994944
    sampler = seqs * 151936 * (2 + 4 + 4)  # 388956160
    assert activation_bytes(profile, 1, 2048, 256) == residual + max(qkv, mlp) + sampler == 607059968


def test_activation_estimate_for_moe(tmp_path):
    profile = fixture_profile("Qwen__Qwen3-30B-A3B", tmp_path)
    # Top-8 copies of 3 x 768 intermediates plus the hidden-size output per copy.
    moe = 2048 * 8 * (3 * 768 + 2048) * 2
    assert activation_bytes(profile, 1, 2048, 256) == 4 * 2048 * 2048 * 2 + moe + 256 * 151936 * 10


def test_estimated_reserve_is_activation_plus_non_torch(tmp_path):
    profile = fixture_profile("Qwen__Qwen3-8B", tmp_path, total_size=16_000_000_000)
    one = kv_fit(profile, chip_memory_mb=65536)
    assert one["reserve_source"] == "estimate"
    assert one["non_torch_bytes"] == GiB  # runtime + workspace estimate
    assert one["reserve_bytes"] == 607059968 + GiB
    two = kv_fit(profile, chip_memory_mb=65536, tensor_parallel_size=2)
    assert two["non_torch_bytes"] == GiB + 2 * 2 * 200 * MiB  # two communicators x 2 x HCCL_BUFFSIZE


def test_weights_fall_back_to_the_parameter_estimate(tmp_path):
    profile = fixture_profile("Qwen__Qwen3-8B", tmp_path)  # no weight files
    fit = kv_fit(profile, chip_memory_mb=65536, reserve_bytes=GiB)
    assert fit["weights_bytes_per_chip"] == profile["parameters"] * 2
    assert fit["weights_bytes_source"].startswith("estimate")


def test_device_reserved_zero_for_runtime_totals(tmp_path):
    profile = fixture_profile("Qwen__Qwen3-8B", tmp_path, total_size=16_000_000_000)
    fit = kv_fit(profile, chip_memory_bytes=int(60.96 * GiB), device_reserved_bytes=0, reserve_bytes=GiB)
    assert fit["budget_bytes"] == int(int(60.96 * GiB) * 0.9)


# --------------------------------------------------------------------------- invalid input


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"chip_memory_mb": 32768, "gpu_memory_utilization": 0}, "gpu_memory_utilization must be in \\(0, 1\\]"),
        ({"chip_memory_mb": 32768, "gpu_memory_utilization": 1.5}, "gpu_memory_utilization must be in"),
        ({}, "give exactly one of chip_memory_bytes or chip_memory_mb"),
        ({"chip_memory_mb": 1, "chip_memory_bytes": 1}, "give exactly one of"),
        ({"chip_memory_mb": -1}, "chip memory must be a positive number"),
        ({"chip_memory_mb": 32768, "tensor_parallel_size": 0}, "tensor_parallel_size must be a positive integer"),
        ({"chip_memory_mb": 32768, "max_model_len": "8k"}, "max_model_len must be a positive integer"),
        ({"chip_memory_mb": 2048}, "device_reserved_bytes .* must be below the chip memory"),
    ],
)
def test_invalid_inputs_raise_value_error(tmp_path, kwargs, message):
    profile = fixture_profile("Qwen__Qwen3-8B", tmp_path, total_size=16_000_000_000)
    with pytest.raises(ValueError, match=message):
        kv_fit(profile, **kwargs)


def test_profile_must_be_a_profile():
    with pytest.raises(ValueError, match="profile must be a dict"):
        kv_fit("Qwen3-8B", chip_memory_mb=32768)
    with pytest.raises(ValueError, match="profile lacks num_hidden_layers"):
        kv_fit({"effective_context": 4096}, chip_memory_mb=32768)


def test_fixture_weights_index_is_only_a_stand_in(tmp_path):
    # The helper writes an index whose shard is absent: bytes come from total_size alone.
    profile = fixture_profile("Qwen__Qwen3-8B", tmp_path, total_size=123)
    assert profile["weights_bytes"] == 123
    assert not os.path.exists(os.path.join(profile["path"], "model-00001-of-00001.safetensors"))
