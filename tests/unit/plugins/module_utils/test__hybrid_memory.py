"""Hybrid models: which layers hold a KV cache, the per-sequence state of the others, MoE under its other names.

Every expected number is written out from the config values quoted beside it
and the vLLM code that sizes it (files and commits in docs/memory.md, section
3): per-token KV from ``FullAttentionSpec``; state tensors from
``MambaStateShapeCalculator`` / ``MambaStateDtypeCalculator``
(vllm/model_executor/layers/mamba/mamba_utils.py); pages and blocks from
vllm-ascend's ``patch_mamba_config.py``; groups and the per-request need from
``_get_kv_cache_groups_uniform_page_size`` and ``_max_memory_usage_bytes_from_groups``
(vllm/v1/core/kv_cache_utils.py). Configs are the real ones under
tests/unit/fixtures/models (see each SOURCE.md); synthetic configs say so.
"""

import copy
import os

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._kv_fit import kv_bytes_for_length, kv_fit
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import profile_model, state_shapes
from builders import fixture_profile
from model_checkpoints import copy_fixture, write_index, write_json

GiB = 2**30
BUDGET_32 = int((32 - 3) * GiB * 0.9)  # 28024661606: a 32 GiB chip minus the 3 GiB the runtime never sees, at 0.90


# --------------------------------------------------------------------------- which layers hold a KV cache


def test_qwen3_next_interval_only_config_caches_12_of_48_layers():
    # config.json: full_attention_interval 4 and no layer_types; layer i is full attention when (i + 1) % 4 == 0.
    p = fixture_profile("Qwen__Qwen3-Next-80B-A3B-Instruct")
    assert p["layer_types_source"] == "full_attention_interval=4"
    assert p["layer_types"] == {"linear_attention": 36, "full_attention": 12}
    assert p["cache_layers"]["full_attention"] == [3, 7, 11, 15, 19, 23, 27, 31, 35, 39, 43, 47]
    assert p["kv_cache_full_layers"] == 12 and p["attention_layers"] == 12
    # 2 KV heads x head_dim 256, K and V, bf16: 2048 B per layer. The old arithmetic charged all 48 layers (4x).
    assert p["kv_cache_bytes_per_token"] == 12 * 2 * 2 * 256 * 2 == 24576
    assert 48 * 2 * 2 * 256 * 2 == 4 * p["kv_cache_bytes_per_token"]


def test_qwen3_next_gated_delta_net_state_per_sequence():
    p = fixture_profile("Qwen__Qwen3-Next-80B-A3B-Instruct")
    assert p["state_kind"] == "gated_delta_net" and p["state_layers"] == 36
    # gated_delta_net_state_shape: conv (kernel 4 - 1, 128 x 16 x 2 + 128 x 32 = 8192), recurrent (32, 128, 128);
    # no mamba_ssm_dtype in the config, so both at the model dtype (bf16).
    assert state_shapes(p["state_spec"]) == [("conv", [3, 8192], "bfloat16"), ("ssm", [32, 128, 128], "bfloat16")]
    assert p["state_bytes_per_layer"] == 3 * 8192 * 2 + 32 * 128 * 128 * 2 == 49152 + 1048576 == 1097728
    assert p["state_bytes_per_sequence"] == 36 * 1097728 == 39518208
    assert "36 gated_delta_net layer(s) hold a fixed state per sequence" in p["cache_summary"]


def test_qwen35_layer_types_and_float32_ssm_state():
    # The fixture that was already here: its 16-layer KV figure was right; what was missing is the state.
    p = fixture_profile("Qwen__Qwen3.5-27B")
    assert p["layer_types_source"] == "layer_types"
    assert p["kv_cache_bytes_per_token"] == 16 * 2 * 4 * 256 * 2 == 65536
    assert not any("disagrees" in w for w in p["warnings"])  # layer_types agrees with full_attention_interval 4
    # text_config.mamba_ssm_dtype float32: vLLM's Qwen3_5ForConditionalGenerationConfig sets mamba_ssm_cache_dtype from it.
    conv, ssm = state_shapes(p["state_spec"])
    assert conv == ("conv", [3, 128 * 16 * 2 + 128 * 48], "bfloat16") and ssm == ("ssm", [48, 128, 128], "float32")
    assert p["state_bytes_per_layer"] == 3 * 10240 * 2 + 48 * 128 * 128 * 4 == 61440 + 3145728
    assert p["state_bytes_per_sequence"] == 48 * 3207168 == 153944064
    assert any("48 linear-attention layer(s)" in w and "kv_fit counts it" in w for w in p["warnings"])


def test_nemotron_h_56b_pattern_holds_kv_in_10_of_118_layers():
    # hybrid_override_pattern: 118 characters, M mamba (54), * attention (10), - MLP (54).
    p = fixture_profile("nvidia__Nemotron-H-56B-Base-8K")
    assert p["layer_types_source"] == "hybrid_override_pattern"
    assert p["layer_types"] == {"mamba": 54, "mlp": 54, "full_attention": 10}
    assert p["cache_layers"]["full_attention"] == [7, 18, 29, 40, 51, 62, 73, 84, 95, 106]
    assert len(p["cache_layers"]["none"]) == 54
    assert p["head_dim"] == 128  # attention_head_dim
    assert p["kv_cache_bytes_per_token"] == 10 * 2 * 8 * 128 * 2 == 40960
    assert round(118 * 2 * 8 * 128 * 2 / p["kv_cache_bytes_per_token"], 1) == 11.8  # the old overstatement


def test_nemotron_h_mamba2_state_is_float32_by_default():
    # nemotron_h.py: mamba2_state_shape(intermediate = mamba_num_heads x mamba_head_dim = 16384, n_groups 8,
    # heads 256, head_dim 64, ssm_state_size 256, conv_kernel 4); NemotronHForCausalLMConfig: SSM cache float32
    # unless the config says mamba_ssm_cache_dtype (this one does not).
    p = fixture_profile("nvidia__Nemotron-H-56B-Base-8K")
    assert p["state_kind"] == "mamba2" and p["state_layers"] == 54
    assert state_shapes(p["state_spec"]) == [("conv", [3, 16384 + 2 * 8 * 256], "bfloat16"), ("ssm", [256, 64, 256], "float32")]
    assert p["state_bytes_per_layer"] == 3 * 20480 * 2 + 256 * 64 * 256 * 4 == 122880 + 16777216


def test_nemotron3_nano_pattern_with_moe_blocks():
    # "MEMEM*EMEMEM*...": E is a MoE block (no cache), 6 attention layers, 23 Mamba, 23 MoE.
    p = fixture_profile("nvidia__NVIDIA-Nemotron-3-Nano-30B-A3B-BF16")
    assert p["layer_types"] == {"mamba": 23, "moe": 23, "full_attention": 6}
    assert p["cache_layers"]["full_attention"] == [5, 12, 19, 26, 33, 42]
    assert p["kv_cache_bytes_per_token"] == 6 * 2 * 2 * 128 * 2 == 6144
    # mamba_ssm_cache_dtype float32 in the config; heads 64 x head_dim 64, groups 8, state 128.
    assert state_shapes(p["state_spec"]) == [("conv", [3, 64 * 64 + 2 * 8 * 128], "bfloat16"), ("ssm", [64, 64, 128], "float32")]
    moe = p["moe"]
    assert (moe["experts"], moe["active_experts"], moe["shared_experts"]) == (128, 6, 1)
    assert (moe["experts_source"], moe["active_experts_source"]) == ("n_routed_experts", "num_experts_per_tok")
    assert moe["moe_layers"] == 23 and moe["shared_expert_intermediate_size"] == 3712


def test_nemotron35_layers_block_type_list():
    p = fixture_profile("nvidia__NVIDIA-Nemotron-3.5-Lightning-30B-A3B-NVFP4")
    assert p["layer_types_source"] == "layers_block_type"
    assert p["layer_types"] == {"mamba": 23, "moe": 23, "full_attention": 6}
    assert p["cache_layers"]["full_attention"] == [5, 12, 19, 26, 33, 42]
    assert p["mtp_layers"] == 1  # num_nextn_predict_layers; mtp_layers_block_type is known and not a warning
    assert not any("not read" in w for w in p["warnings"])


def test_jamba_period_and_offset():
    # attn_layer_period 8, attn_layer_offset 4: layers 4, 12, 20, 28; the other 28 are Mamba-1.
    p = fixture_profile("ai21labs__AI21-Jamba-1.5-Mini")
    assert p["layer_types_source"] == "attn_layer_period=8, attn_layer_offset=4"
    assert p["cache_layers"]["full_attention"] == [4, 12, 20, 28]
    assert p["kv_cache_bytes_per_token"] == 4 * 2 * 8 * 128 * 2 == 16384
    # jamba.py: mamba1_state_shape(intermediate = mamba_expand 2 x hidden 4096, state 16, conv 4).
    assert state_shapes(p["state_spec"]) == [("conv", [3, 8192], "bfloat16"), ("ssm", [8192, 16], "bfloat16")]
    # expert_layer_period 2, expert_layer_offset 1: the odd layers route through 16 experts, top 2.
    moe = p["moe"]
    assert (moe["experts"], moe["active_experts"], moe["moe_layers"], moe["dense_layers"]) == (16, 2, 16, 16)


def test_attn_layer_indices(tmp_path):
    # Synthetic, Bamba-9B-shaped (32 layers, attention at 9, 18, 27 as quoted in public code; no verbatim Bamba
    # config was found in the corpus). bamba.py: mamba2 with intermediate = mamba_expand x hidden_size.
    config = {
        "architectures": ["BambaForCausalLM"],
        "model_type": "bamba",
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "hidden_size": 4096,
        "max_position_embeddings": 4096,
        "attn_layer_indices": [9, 18, 27],
        "mamba_n_heads": 128,
        "mamba_d_head": 64,
        "mamba_n_groups": 1,
        "mamba_d_state": 128,
        "mamba_d_conv": 4,
        "mamba_expand": 2,
        "torch_dtype": "bfloat16",
    }
    write_json(str(tmp_path / "config.json"), config)
    p = profile_model(str(tmp_path))
    assert p["layer_types"] == {"mamba": 29, "full_attention": 3} and p["layer_types_source"] == "attn_layer_indices"
    assert state_shapes(p["state_spec"]) == [("conv", [3, 8192 + 2 * 1 * 128], "bfloat16"), ("ssm", [128, 64, 128], "bfloat16")]
    # mamba2_state_shape extends groups that TP does not divide: 1 group at TP 4 becomes 1 + (4 - 1) = 4.
    assert state_shapes(p["state_spec"], tp=4)[0] == ("conv", [3, (8192 + 2 * 4 * 128) // 4], "bfloat16")


# --------------------------------------------------------------------------- unknown structure is said, not guessed


def test_unknown_layer_kind_is_treated_as_full_attention(tmp_path):
    config = {
        "num_hidden_layers": 4,
        "num_attention_heads": 8,
        "hidden_size": 512,
        "max_position_embeddings": 4096,
        "layer_types": ["full_attention", "retention", "full_attention", "retention"],
        "torch_dtype": "bfloat16",
    }
    write_json(str(tmp_path / "config.json"), config)
    p = profile_model(str(tmp_path))
    assert p["layer_types"] == {"full_attention": 2, "retention": 2}
    assert p["kv_cache_full_layers"] == 4  # the safe side, explicitly
    assert p["cache_layers"]["treated_as_full_attention"] == [1, 3]
    assert any("unknown layer kind(s) 'retention' in layer_types: layer(s) 1, 3 treated as full attention" in w for w in p["warnings"])


def test_state_layers_without_known_state_fields_are_treated_as_full_attention(tmp_path):
    config = {
        "num_hidden_layers": 4,
        "num_attention_heads": 8,
        "hidden_size": 512,
        "max_position_embeddings": 4096,
        "layer_types": ["mamba", "mamba", "mamba", "full_attention"],
        "torch_dtype": "bfloat16",
    }
    write_json(str(tmp_path / "config.json"), config)
    p = profile_model(str(tmp_path))
    assert p["state_layers"] == 0 and p["kv_cache_full_layers"] == 4
    assert any(w.startswith("Mamba layers whose state fields are not known") and "treated as full attention" in w for w in p["warnings"])


def test_unread_structure_field_is_reported(tmp_path):
    # Kimi-Linear names its KDA and full-attention layers in linear_attn_config, which is not read.
    config = {
        "num_hidden_layers": 4,
        "num_attention_heads": 8,
        "hidden_size": 512,
        "max_position_embeddings": 4096,
        "linear_attn_config": {"kda_layers": [1, 2, 3], "full_attn_layers": [4]},
        "torch_dtype": "bfloat16",
    }
    write_json(str(tmp_path / "config.json"), config)
    p = profile_model(str(tmp_path))
    assert p["kv_cache_full_layers"] == 4
    assert any(
        "linear_attn_config describe per-layer structure" in w and "all 4 layers are treated as full attention" in w for w in p["warnings"]
    )


def test_gemma4_unread_geometry_fields_are_reported():
    p = fixture_profile("google__gemma-4-26B-A4B")
    assert any("global_head_dim, num_global_key_value_heads, attention_k_eq_v" in w for w in p["warnings"])


def test_state_layers_from_weights_cross_check(tmp_path):
    # Nemotron-H checkpoints name their layers backbone.layers.N; Mamba mixers carry A_log.
    path = copy_fixture("nvidia__Nemotron-H-56B-Base-8K", str(tmp_path / "n"))
    mamba = profile_model(path)["cache_layers"]["state"]
    names = {"backbone.layers.%d.mixer.A_log" % i: "a.safetensors" for i in mamba}
    write_index(path, names, total_size=1)
    assert len(mamba) == 54
    assert not any("weights carry state" in w for w in profile_model(path)["warnings"])  # config and weights agree
    names["backbone.layers.7.mixer.A_log"] = "a.safetensors"  # layer 7 is attention in the pattern
    write_index(path, names, total_size=1)
    warning = [w for w in profile_model(path)["warnings"] if "weights carry state" in w]
    assert len(warning) == 1 and "layer(s) 0, 2, 4, 6-7," in warning[0] and "hybrid_override_pattern" in warning[0]


def test_state_tensors_in_weights_without_a_layer_map(tmp_path):
    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / "q"))
    write_index(path, {"model.layers.3.linear_attn.A_log": "a.safetensors"}, total_size=1)
    p = profile_model(path)
    assert p["kv_cache_full_layers"] == 36
    assert any("state-space/linear-attention tensors in layer(s) 3 but the config names no per-layer kinds" in w for w in p["warnings"])


# --------------------------------------------------------------------------- MoE routing under its other names


def test_gemma4_top_k_experts():
    moe = fixture_profile("google__gemma-4-26B-A4B")["moe"]
    assert (moe["experts"], moe["active_experts"], moe["active_experts_source"]) == (128, 8, "top_k_experts")
    assert moe["expert_intermediate_size"] == 704


def test_gpt_oss_experts_per_token_and_num_experts_per_tok_agree():
    moe = fixture_profile("openai__gpt-oss-20b")["moe"]
    assert (moe["experts"], moe["active_experts"], moe["experts_source"]) == (32, 4, "num_local_experts")


@pytest.mark.parametrize(
    "fields, experts, active, shared, source",
    [
        # Hunyuan-A13B style: per-layer lists.
        ({"num_experts": 64, "moe_topk": [8] * 4, "num_shared_expert": [1] * 4}, 64, 8, 1, "moe_topk"),
        # ERNIE 4.5 MoE style.
        ({"moe_num_experts": 64, "moe_k": 6, "moe_num_shared_experts": 2}, 64, 6, 2, "moe_k"),
        ({"num_experts": 16, "num_activated_experts": 4}, 16, 4, None, "num_activated_experts"),
        # DBRX keeps them in ffn_config.
        ({"ffn_config": {"moe_num_experts": 16, "moe_top_k": 4}}, 16, 4, None, "moe_top_k"),
    ],
)
def test_moe_routing_names(tmp_path, fields, experts, active, shared, source):
    config = {"num_hidden_layers": 4, "num_attention_heads": 8, "hidden_size": 512, "max_position_embeddings": 4096}
    config.update(fields)
    write_json(str(tmp_path / "config.json"), config)
    moe = profile_model(str(tmp_path))["moe"]
    assert (moe["experts"], moe["active_experts"], moe["shared_experts"], moe["active_experts_source"]) == (experts, active, shared, source)


def test_moe_without_top_k_warns_instead_of_a_silent_none(tmp_path):
    config = {"num_hidden_layers": 4, "num_attention_heads": 8, "hidden_size": 512, "num_experts": 8, "router_experts_topk": 2}
    write_json(str(tmp_path / "config.json"), config)
    p = profile_model(str(tmp_path))
    assert p["moe"]["active_experts"] is None
    assert any("MoE with 8 experts (num_experts) but no top-k field" in w for w in p["warnings"])
    assert any("router_experts_topk look like MoE routing but are not read" in w for w in p["warnings"])


def test_experts_counted_from_weight_names(tmp_path):
    path = copy_fixture("Qwen__Qwen3-30B-A3B", str(tmp_path / "q"))
    names = {"model.layers.0.mlp.experts.%d.up_proj.weight" % e: "a.safetensors" for e in range(128)}
    write_index(path, names, total_size=1)
    moe = profile_model(path)["moe"]
    assert moe["experts"] == moe["experts_in_weights"] == 128


# --------------------------------------------------------------------------- the fit: KV per token plus state per sequence


def test_hybrid_on_32_gib_chips_gets_the_context_vllm_allows(tmp_path):
    # Qwen3-Next-80B-A3B over 8 x 32 GiB 910B4 (TP 8), 162 GB of bf16 weights (stand-in size), reserve 5 GiB.
    profile = fixture_profile("Qwen__Qwen3-Next-80B-A3B-Instruct", tmp_path, total_size=162_000_000_000)
    fit = kv_fit(profile, chip_memory_mb=32768, tensor_parallel_size=8, reserve_bytes=5 * GiB)
    # Weights: 162e9 / 8 plus K/V replicated to 1 head per rank on the 12 attention layers:
    # 12 x 2 x 2048 x 256 x 2 x (1 x 8 - 2) // 8 = 18874368.
    weights = 162_000_000_000 // 8 + 18874368
    available = BUDGET_32 - weights - 5 * GiB
    assert fit["weights_bytes_per_chip"] == weights and fit["kv_available_bytes"] == available == 2387078118
    # Per rank: 1 KV head (2 // 8 -> 1) x 256: K 512 B per token, K+V 1024 B. State: conv (3, 8192 / 8),
    # recurrent (32 / 8, 128, 128), bf16: 6144 B + 131072 B.
    assert fit["kv_bytes_per_token_per_layer"] == 1024 and fit["kv_bytes_per_token"] == 12 * 1024
    assert fit["state_bytes_per_layer"] == 3 * 1024 * 2 + 4 * 128 * 128 * 2 == 6144 + 131072
    # patch_mamba_config.py: block = 128 x cdiv(131072, 128 x 512) = 256 tokens, K page 256 x 512 = the SSM page;
    # page = 256 x 1024 + conv 6144 = 268288 B for every layer.
    assert fit["block_size"] == 256 and fit["kv_page_bytes"] == 256 * 1024 + 6144 == 268288
    # Groups of 12 layers (12 attention, 36 state -> 3 groups): one request = 12 x page x (cdiv(len, 256) + 3).
    assert fit["kv_cache_group_size"] == 12 and fit["kv_cache_groups"] == [["full", 1], ["state", 3]]
    pages = available // (12 * 268288)  # 741
    longest = (pages - 3) * 256  # 188928: what vLLM's _estimate_max_model_len_from_groups finds
    assert fit["verdict"] == "capped"
    assert fit["max_model_len_fit"] == fit["recommended_max_model_len"] == longest == 188928
    assert fit["kv_needed_bytes"] == 12 * 268288 * (262144 // 256 + 3)
    # Counted over all 48 layers, as before this change, the same memory held 379 blocks of 128 tokens:
    old_cap = available // (128 * 48 * 2 * 1 * 256 * 2) * 128  # 48512
    assert old_cap == 48512 and longest > 3.8 * old_cap
    assert fit["message"] == (
        "262144 tokens need 3.1 GiB of KV cache (with 4.7 MiB of state per sequence for 36 gated_delta_net layers), "
        "2.2 GiB is available on each of 8 32 GiB chips at 0.90; capped to 188928."
    )


def test_nemotron_h_56b_state_and_8k_blocks(tmp_path):
    profile = fixture_profile("nvidia__Nemotron-H-56B-Base-8K", tmp_path, total_size=112_000_000_000)
    fit = kv_fit(profile, chip_memory_mb=32768, tensor_parallel_size=8, reserve_bytes=2 * GiB)
    # Per rank: 1 KV head x 128 (K 256 B); SSM (256 / 8, 64, 256) float32 = 2097152 B; conv (3, 20480 / 8) bf16 = 15360 B.
    assert fit["state_bytes_per_layer"] == 32 * 64 * 256 * 4 + 3 * 2560 * 2 == 2097152 + 15360
    # block = 128 x cdiv(2097152, 128 x 256) = 8192 tokens (the whole 8K context); page 8192 x 512 + 15360.
    assert fit["block_size"] == 8192 and fit["kv_page_bytes"] == 8192 * 512 + 15360 == 4209664
    # 10 attention + 54 Mamba layers: groups of 10, 1 attention group and 6 state groups (60 slots, 6 padding).
    assert fit["kv_cache_groups"] == [["full", 1], ["state", 6]]
    assert fit["kv_needed_bytes"] == 10 * 4209664 * (1 + 6) == 294676480
    assert fit["state_bytes_per_sequence"] == 54 * 2112512
    assert fit["state_bytes_per_sequence_budgeted"] == 10 * 4209664 * 6
    assert fit["verdict"] == "fits"


def test_qwen35_tensor_parallel_4_and_prefix_caching_align_mode(tmp_path):
    profile = fixture_profile("Qwen__Qwen3.5-27B", tmp_path, total_size=55_600_000_000)
    fit = kv_fit(profile, chip_memory_mb=32768, tensor_parallel_size=4, reserve_bytes=2 * GiB)
    # 1 KV head per rank (K 512 B); SSM (48 / 4, 128, 128) float32 = 786432 B -> block 128 x cdiv(786432, 65536) = 1536.
    assert fit["block_size"] == 1536 and fit["kv_page_bytes"] == 1536 * 1024 + 3 * 2560 * 2
    assert fit["kv_cache_groups"] == [["full", 1], ["state", 3]]
    none_need = 16 * fit["kv_page_bytes"] * (262144 // 1536 + 1 + 3)  # cdiv(262144, 1536) = 171
    assert fit["kv_needed_bytes"] == none_need
    aligned = kv_fit(profile, chip_memory_mb=32768, tensor_parallel_size=4, reserve_bytes=2 * GiB, mamba_cache_mode="align")
    # MambaSpec.max_memory_usage_bytes: 2 pages per state group in align mode instead of 1.
    assert aligned["kv_needed_bytes"] == none_need + 16 * fit["kv_page_bytes"] * 3
    mtp = kv_fit(profile, chip_memory_mb=32768, tensor_parallel_size=4, reserve_bytes=2 * GiB, num_speculative_tokens=1)
    assert mtp["state_bytes_per_layer"] == 4 * 2560 * 2 + 786432  # one more conv row per speculative token
    assert mtp["kv_needed_bytes"] > none_need


def test_310p_pads_state_to_the_attention_page():
    # patch_mamba_config_310.py: block = 128 x cdiv(state, 128 x KV bytes per token), page = block x KV bytes per token.
    profile = fixture_profile("Qwen__Qwen3-Next-80B-A3B-Instruct")
    per_layer = 2 * 2 * 256 * 2  # TP 1: 2 KV heads
    state = 3 * 8192 * 2 + 32 * 128 * 128 * 2  # 1097728
    block = 128 * -(-state // (128 * per_layer))  # 128 x 3 = 384
    need = kv_bytes_for_length(profile, 4096, per_layer, 128, 2048, chip_family="310p")
    assert need == 12 * (block * per_layer) * (-(-4096 // block) + 3)


def test_state_dimension_tp_must_divide():
    profile = copy.deepcopy(fixture_profile("Qwen__Qwen3-Next-80B-A3B-Instruct"))
    profile["state_spec"]["num_v_heads"] = 24
    fit = kv_fit(profile, chip_memory_mb=65536, tensor_parallel_size=16, reserve_bytes=GiB)
    assert fit["verdict"] == "does_not_fit"
    assert "vLLM requires linear_num_value_heads (24) to be divisible by tensor_parallel_size (16)" in fit["message"]


def test_ascend_refuses_state_it_cannot_align(tmp_path):
    # Synthetic LFM2-shaped config (layer_types conv / full_attention, conv_dim, conv_L_cache; lfm2.py
    # short_conv_state_shape). Its one 2-D conv state (2 x 2048 bf16 = 8192 B) is not a whole number of
    # 128-token K pages (128 x 8 x 64 x 2 = 131072 B): vllm-ascend's patch asserts and stops.
    config = {
        "architectures": ["Lfm2ForCausalLM"],
        "model_type": "lfm2",
        "num_hidden_layers": 4,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "hidden_size": 2048,
        "max_position_embeddings": 128000,
        "layer_types": ["conv", "conv", "full_attention", "conv"],
        "conv_dim": 2048,
        "conv_L_cache": 3,
        "torch_dtype": "bfloat16",
    }
    write_json(str(tmp_path / "config.json"), config)
    p = profile_model(str(tmp_path))
    assert p["state_kind"] == "short_conv" and p["state_bytes_per_layer"] == 2 * 2048 * 2
    fit = kv_fit(p, chip_memory_mb=65536, reserve_bytes=GiB)
    assert fit["verdict"] == "does_not_fit" and "Cannot align ssm_page_size and attn_page_size." in fit["message"]


def test_minimax_style_attn_type_list_linear_attention(tmp_path):
    # Synthetic MiniMax-Text-01-shaped config: attn_type_list 0 = lightning linear attention, 1 = softmax.
    config = {
        "architectures": ["MiniMaxText01ForCausalLM"],
        "model_type": "minimax_text_01",
        "num_hidden_layers": 8,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "hidden_size": 6144,
        "max_position_embeddings": 8192,
        "attn_type_list": [0, 0, 0, 1, 0, 0, 0, 1],
        "torch_dtype": "bfloat16",
    }
    write_json(str(tmp_path / "config.json"), config)
    p = profile_model(str(tmp_path))
    assert p["layer_types"] == {"linear_attention": 6, "full_attention": 2}
    # linear_attention_state_shape: (heads / tp, head_dim, head_dim) at the model dtype.
    assert state_shapes(p["state_spec"]) == [("ssm", [64, 128, 128], "bfloat16")]


def test_attention_only_models_keep_their_numbers(tmp_path):
    # No state: one group of all layers, page = 128 x per-layer bytes, as before.
    profile = fixture_profile("jaman21__Qwen3-4B-Instruct", tmp_path, total_size=8_000_000_000)
    fit = kv_fit(profile, chip_memory_mb=32768, max_model_len=262144, reserve_bytes=2 * GiB)
    assert fit["state_layers"] == 0 and fit["block_size"] == 128
    assert fit["kv_cache_groups"] == [["full", 1]] and fit["kv_cache_group_size"] == 36
    assert fit["kv_pool_blocks"] == fit["kv_cache_blocks"] == 947


def test_profiles_of_hybrid_fixtures_are_json(tmp_path):
    import json

    for name in ("Qwen__Qwen3-Next-80B-A3B-Instruct", "nvidia__Nemotron-H-56B-Base-8K", "ai21labs__AI21-Jamba-1.5-Mini"):
        json.dumps(fixture_profile(name, tmp_path, dirname=os.path.basename(name)))
