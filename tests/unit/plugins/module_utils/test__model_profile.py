"""Unit tests for plugins/module_utils/_model_profile.py.

Every expected number is worked out by hand here, from the config values
quoted in the comment beside it, never read back from the code under test.
Configs are the real ones under tests/unit/fixtures/models (see SOURCE.md).
"""

import json
import os
import struct

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._model_profile import ModelProfileError, profile_model
from ansible_collections.npu.fleet.plugins.module_utils._safetensors import read_safetensors_header
from builders import fixture_profile
from model_checkpoints import copy_fixture, fixture_dir, write_index, write_json, write_safetensors


MOE_CORE_KEYS = ("experts", "active_experts", "shared_experts", "expert_intermediate_size", "dense_layers")


def _moe_core(profile):
    """The MoE keys the profile has always had (new keys are checked where they matter)."""
    return {key: profile["moe"][key] for key in MOE_CORE_KEYS}


# --------------------------------------------------------------------------- dense GQA


def test_qwen3_8b_every_field():
    p = fixture_profile("Qwen__Qwen3-8B")
    assert p["architecture"] == "Qwen3ForCausalLM"
    assert p["model_type"] == "qwen3"
    assert p["text_config_used"] is False
    assert p["num_hidden_layers"] == 36
    assert p["num_attention_heads"] == 32
    assert p["num_key_value_heads"] == 8
    assert p["head_dim"] == 128  # explicit head_dim
    assert p["hidden_size"] == 4096
    assert p["vocab_size"] == 151936
    assert p["max_position_embeddings"] == 40960
    assert p["effective_context"] == 40960  # rope_scaling null: native length
    assert p["default_max_model_len"] == 40960
    assert p["dtype"] == "bfloat16" and p["dtype_bytes"] == 2 and p["dtype_source"] == "config"
    assert p["attention"] == "gqa"  # 8 KV heads < 32 query heads
    assert p["kv_lora_rank"] is None
    assert p["sliding_window"] is None  # sliding_window null, use_sliding_window false
    assert p["moe"] is None
    assert p["quantization"] is None
    assert p["kv_cache_bytes_per_token_per_layer"] == 2 * 8 * 128 * 2
    assert p["kv_cache_bytes_per_token"] == 36 * 2 * 8 * 128 * 2 == 147456
    assert p["kv_cache_bytes_per_token_all_layers"] == 147456
    assert p["extra_layers"] == [] and p["mtp_layers"] == 0
    assert p["weights_bytes"] is None
    # No weights: estimated from shapes. Untied embeddings 2 x vocab x hidden; per layer
    # q,o 2 x hidden x heads x head_dim, k,v 2 x hidden x kv x head_dim, gated MLP 3 x hidden x inter.
    per_layer = 2 * 4096 * 32 * 128 + 2 * 4096 * 8 * 128 + 3 * 4096 * 12288
    assert p["parameters"] == 36 * per_layer + 2 * 151936 * 4096
    assert p["parameters_source"].startswith("estimated")
    assert any("no weight files" in w for w in p["warnings"])


def test_parameter_estimate_is_close_to_published_counts():
    # Llama-3.1-8B: 8,030,261,248 parameters (thamada/modelQuery, index-summary.json); the
    # estimate omits the 2 x 4096 norm weights per layer + the final norm = 266,240.
    p = fixture_profile("meta-llama__Llama-3.1-8B-Instruct")
    assert p["parameters"] == 8030261248 - (32 * 2 * 4096 + 4096)


def test_llama3_rope_factor_is_not_applied_again():
    # rope_type llama3, factor 8 over original 8192: max_position_embeddings already says 131072.
    p = fixture_profile("meta-llama__Llama-3.1-8B-Instruct")
    assert p["effective_context"] == 131072
    assert p["rope_scaling"] == {"type": "llama3", "factor": 8.0, "original_max_position_embeddings": 8192}
    assert p["kv_cache_bytes_per_token"] == 32 * 2 * 8 * 128 * 2


def test_qwen25_window_not_in_effect_and_index_total_size(tmp_path):
    # Qwen2.5 ships sliding_window 131072 with use_sliding_window false: no window.
    path = copy_fixture("Qwen__Qwen2.5-7B-Instruct", str(tmp_path / "q"))
    write_index(
        path, {"model.layers.%d.mlp.up_proj.weight" % i: "model-00001-of-00004.safetensors" for i in range(28)}, total_size=15231233024
    )  # published total_size (index-summary.json)
    p = profile_model(path)
    assert p["sliding_window"] is None
    assert p["layer_types"] == {"full_attention": 28}
    assert p["kv_cache_bytes_per_token"] == 28 * 2 * 4 * 128 * 2 == 57344
    assert p["head_dim"] == 3584 // 28 == 128  # no explicit head_dim
    assert p["weights_bytes"] == 15231233024
    assert p["weights_bytes_source"] == "model.safetensors.index.json metadata.total_size"


def test_yi_has_four_kv_heads_and_a_4k_context():
    p = fixture_profile("01-ai__Yi-1.5-9B-Chat")
    assert p["attention"] == "gqa"
    assert p["effective_context"] == 4096
    assert p["kv_cache_bytes_per_token"] == 48 * 2 * 4 * 128 * 2 == 98304


def test_mha_and_mqa_are_named(tmp_path):
    base = {
        "architectures": ["X"],
        "model_type": "x",
        "num_hidden_layers": 2,
        "num_attention_heads": 8,
        "hidden_size": 512,
        "max_position_embeddings": 2048,
        "torch_dtype": "float16",
    }
    (tmp_path / "mha").mkdir()
    write_json(str(tmp_path / "mha" / "config.json"), base)  # no num_key_value_heads: one per query head
    mha = profile_model(str(tmp_path / "mha"))
    assert mha["attention"] == "mha" and mha["num_key_value_heads"] == 8
    assert mha["kv_cache_bytes_per_token"] == 2 * 2 * 8 * (512 // 8) * 2
    (tmp_path / "mqa").mkdir()
    write_json(str(tmp_path / "mqa" / "config.json"), dict(base, num_key_value_heads=1))
    mqa = profile_model(str(tmp_path / "mqa"))
    assert mqa["attention"] == "mqa"
    assert mqa["kv_cache_bytes_per_token"] == 2 * 2 * 1 * 64 * 2


def test_dtype_override_doubles_kv_for_float32():
    p = fixture_profile("Qwen__Qwen3-8B", dtype="float32")
    assert p["dtype"] == "float32" and p["dtype_source"] == "override"
    assert p["kv_cache_bytes_per_token"] == 36 * 2 * 8 * 128 * 4


# --------------------------------------------------------------------------- MLA, MoE, MTP


def test_deepseek_v3_mla_moe_fp8_and_mtp_layer_61(tmp_path):
    path = copy_fixture("deepseek-ai__DeepSeek-V3", str(tmp_path / "dsv3"))
    names = {"model.layers.%d.input_layernorm.weight" % i: "model-00001-of-000163.safetensors" for i in range(61)}
    # MTP weight names seen in public code (index-summary.json).
    for suffix in ("embed_tokens.weight", "enorm.weight", "hnorm.weight", "eh_proj.weight", "shared_head.head.weight"):
        names["model.layers.61." + suffix] = "model-00163-of-000163.safetensors"
    write_index(path, names, total_size=688586727753)
    p = profile_model(path)
    assert p["attention"] == "mla"
    assert p["kv_lora_rank"] == 512 and p["qk_rope_head_dim"] == 64
    assert p["num_key_value_heads"] == 1  # vLLM: "When using MLA during decode it becomes MQA"
    # MLA caches the latent plus the RoPE key once per layer: no factor 2, no heads.
    assert p["kv_cache_bytes_per_token_per_layer"] == (512 + 64) * 2 == 1152
    assert p["kv_cache_bytes_per_token"] == 61 * (512 + 64) * 2 == 70272
    # yarn: original_max_position_embeddings 4096 x factor 40.
    assert p["effective_context"] == 4096 * 40 == 163840
    assert _moe_core(p) == {"experts": 256, "active_experts": 8, "shared_experts": 1, "expert_intermediate_size": 2048, "dense_layers": 3}
    # first_k_dense_replace 3: layers 3-60 route through experts.
    assert p["moe"]["moe_layers"] == 61 - 3 and p["moe"]["moe_layers_source"] == "first_k_dense_replace=3"
    assert p["moe"]["active_experts_source"] == "num_experts_per_tok" and p["moe"]["experts_source"] == "n_routed_experts"
    assert p["quantization"] == {"method": "fp8", "bits": 8}
    assert p["weights_bytes"] == 688586727753
    assert p["extra_layers"] == [61]
    assert p["extra_layers_prefix"] == "model.layers."
    assert p["mtp_layers"] == 1 and p["mtp_layers_source"] == "config: num_nextn_predict_layers"
    mtp_warning = [w for w in p["warnings"] if "beyond num_hidden_layers=61" in w]
    assert len(mtp_warning) == 1 and "skip them" in mtp_warning[0] and "'model.layers.61'" in mtp_warning[0]
    assert any("pre-quantized (fp8, 8-bit)" in w for w in p["warnings"])


def test_kimi_k2_mla_with_yarn_32_and_no_mtp():
    p = fixture_profile("moonshotai__Kimi-K2-Instruct")
    assert p["model_type"] == "kimi_k2" and p["attention"] == "mla"
    assert p["effective_context"] == 4096 * 32 == 131072
    assert p["kv_cache_bytes_per_token"] == 61 * (512 + 64) * 2
    assert p["moe"]["experts"] == 384 and p["moe"]["active_experts"] == 8
    assert p["mtp_layers"] == 0 and p["mtp_layers_source"] is None


def test_glm5_mla_with_declared_mtp_and_dsa_indexer():
    p = fixture_profile("zai-org__GLM-5")
    assert p["architecture"] == "GlmMoeDsaForCausalLM"
    assert p["attention"] == "mla"
    assert p["kv_cache_bytes_per_token"] == 78 * (512 + 64) * 2 == 89856
    assert p["effective_context"] == 202752  # rope_parameters default: no scaling
    assert p["mtp_layers"] == 1
    assert any("index_topk=2048" in w for w in p["warnings"])


def test_mixtral_moe_without_shared_experts():
    p = fixture_profile("mistralai__Mixtral-8x7B-v0.1")
    assert _moe_core(p) == {"experts": 8, "active_experts": 2, "shared_experts": None, "expert_intermediate_size": 14336, "dense_layers": 0}
    assert p["moe"]["expert_intermediate_size_source"] == "intermediate_size"  # Mixtral sizes each expert with it
    assert p["sliding_window"] is None  # sliding_window null
    assert p["kv_cache_bytes_per_token"] == 32 * 2 * 8 * 128 * 2


def test_qwen3_moe_expert_counts():
    p = fixture_profile("Qwen__Qwen3-30B-A3B")
    assert p["moe"]["experts"] == 128 and p["moe"]["active_experts"] == 8
    assert p["moe"]["expert_intermediate_size"] == 768
    assert p["kv_cache_bytes_per_token"] == 48 * 2 * 4 * 128 * 2 == 98304


# --------------------------------------------------------------------------- sliding window, hybrids, loops


def test_gpt_oss_20b_alternating_sliding_window():
    p = fixture_profile("openai__gpt-oss-20b")
    assert p["sliding_window"] == 128
    assert p["sliding_window_source"] == "layer_types"
    assert p["layer_types"] == {"sliding_attention": 12, "full_attention": 12}
    assert p["kv_cache_full_layers"] == 12 and p["kv_cache_sliding_layers"] == 12
    assert p["head_dim"] == 64
    assert p["kv_cache_bytes_per_token_per_layer"] == 2 * 8 * 64 * 2 == 2048
    assert p["kv_cache_bytes_per_token"] == 12 * 2048 == 24576  # only the full layers grow with the sequence
    assert p["kv_cache_bytes_per_token_all_layers"] == 24 * 2048 == 49152
    assert p["effective_context"] == 4096 * 32 == 131072  # yarn
    # No torch_dtype in the config: served in 16 bit, as vLLM's dtype=auto does for unlabelled checkpoints.
    assert p["dtype"] == "bfloat16" and p["config_dtype"] is None
    assert p["moe"]["experts"] == 32 and p["moe"]["active_experts"] == 4
    assert p["quantization"] == {"method": "mxfp4", "bits": 4}
    assert any("sliding window of 128 tokens on 12 of 24" in w for w in p["warnings"])


def test_gemma3_pattern_and_unapplied_linear_rope(tmp_path):
    path = copy_fixture("google__gemma-3-4b-it", str(tmp_path / "g"), config_name="config.partial.json")
    p = profile_model(path)
    assert p["text_config_used"] is True
    # sliding_window_pattern 6: layers 5, 11, 17, 23, 29 are global -> 34 // 6 = 5 full, 29 sliding.
    assert p["layer_types"] == {"full_attention": 5, "sliding_attention": 29}
    assert p["sliding_window"] == 1024
    assert p["kv_cache_bytes_per_token"] == 5 * 2 * 4 * 256 * 2 == 20480
    # vLLM skips rope_scaling for gemma3: linear factor 8 is not multiplied in.
    assert p["effective_context"] == 131072


def test_qwen35_hybrid_linear_attention_in_text_config():
    p = fixture_profile("Qwen__Qwen3.5-27B")
    assert p["text_config_used"] is True and p["text_config_key"] == "text_config"
    assert p["layer_types"] == {"linear_attention": 48, "full_attention": 16}
    assert p["kv_cache_bytes_per_token"] == 16 * 2 * 4 * 256 * 2 == 65536
    assert p["mtp_layers"] == 1 and p["mtp_layers_source"] == "config: mtp_num_hidden_layers"
    assert any("48 linear-attention layer(s)" in w for w in p["warnings"])


def test_nanbeige_loops_double_the_kv_slots():
    p = fixture_profile("Nanbeige__Nanbeige4.2-3B")
    assert p["num_loops"] == 2
    assert p["kv_cache_full_layers"] == 22 * 2
    assert p["kv_cache_bytes_per_token"] == 22 * 2 * 2 * 8 * 128 * 2 == 180224
    assert any("44 layer slots" in w for w in p["warnings"])


def test_mistral_v01_style_window_applies_to_all_layers(tmp_path):
    config = {
        "architectures": ["MistralForCausalLM"],
        "model_type": "mistral",
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "hidden_size": 4096,
        "max_position_embeddings": 32768,
        "sliding_window": 4096,
        "torch_dtype": "bfloat16",
    }
    write_json(str(tmp_path / "config.json"), config)
    p = profile_model(str(tmp_path))
    assert p["layer_types"] == {"sliding_attention": 32}
    assert p["kv_cache_bytes_per_token"] == 0
    assert p["kv_cache_bytes_per_token_all_layers"] == 32 * 2 * 8 * 128 * 2


# --------------------------------------------------------------------------- VL wrapper


def test_qwen3_vl_reads_the_text_config():
    p = fixture_profile("Qwen__Qwen3-VL-8B-Instruct")
    assert p["architecture"] == "Qwen3VLForConditionalGeneration"
    assert p["text_config_used"] is True and p["text_config_key"] == "text_config"
    assert p["model_type"] == "qwen3_vl" and p["text_model_type"] == "qwen3_vl_text"
    assert p["num_hidden_layers"] == 36  # text_config, not the vision depth 27
    assert p["hidden_size"] == 4096  # not the vision hidden_size 1152
    assert p["effective_context"] == 262144
    assert p["dtype"] == "bfloat16" and p["config_dtype"] == "bfloat16"  # text_config.dtype
    assert p["kv_cache_bytes_per_token"] == 36 * 2 * 8 * 128 * 2


# --------------------------------------------------------------------------- extra layers (GLM-OCR)


def _glm_ocr_like(tmp_path, prefix="model.language_model.layers.", nextn=0):
    """A GLM-OCR-shaped checkpoint: 16 text layers in text_config plus MTP weights at index 16."""
    path = str(tmp_path / "glm-ocr")
    os.makedirs(path)
    write_json(
        os.path.join(path, "config.json"),
        {
            "architectures": ["GlmOcrForConditionalGeneration"],
            "model_type": "glm_ocr",
            "text_config": {
                "model_type": "glm_ocr_text",
                "hidden_size": 1536,
                "num_hidden_layers": 16,
                "num_attention_heads": 16,
                "num_key_value_heads": 8,
                "head_dim": 128,
                "intermediate_size": 4608,
                "vocab_size": 59392,
                "max_position_embeddings": 131072,
                "num_nextn_predict_layers": nextn,
                "dtype": "bfloat16",
            },
            "vision_config": {"model_type": "glm_ocr_vision", "depth": 24, "hidden_size": 1024},
        },
    )
    names = {}
    for i in range(17):  # 0..15 decoder layers, 16 = the MTP layer
        names["%s%d.self_attn.q_proj.weight" % (prefix, i)] = "model.safetensors"
    for i in range(24):  # vision blocks must not count as decoder layers
        names["model.visual.blocks.%d.attn.qkv.weight" % i] = "model.safetensors"
    write_index(path, names, total_size=2_650_000_000)
    return path


def test_glm_ocr_like_mtp_weights_at_layer_16(tmp_path):
    p = profile_model(_glm_ocr_like(tmp_path))
    assert p["architecture"] == "GlmOcrForConditionalGeneration"
    assert p["text_config_used"] is True
    assert p["num_hidden_layers"] == 16
    assert p["extra_layers"] == [16]
    assert p["extra_layers_prefix"] == "model.language_model.layers."
    assert p["mtp_layers"] == 1 and p["mtp_layers_source"] == "weights"
    warning = [w for w in p["warnings"] if "beyond num_hidden_layers=16" in w]
    assert len(warning) == 1
    assert "num_nextn_predict_layers=0" in warning[0]
    assert "There is no module or parameter named 'model.language_model.layers.16'" in warning[0]
    assert p["kv_cache_bytes_per_token"] == 16 * 2 * 8 * 128 * 2


def test_old_style_wrapper_prefix_is_recognised(tmp_path):
    p = profile_model(_glm_ocr_like(tmp_path, prefix="language_model.model.layers."))
    assert p["extra_layers"] == [16] and p["extra_layers_prefix"] == "language_model.model.layers."


def test_missing_decoder_layers_in_weights_are_reported(tmp_path):
    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / "q"))
    write_index(path, {"model.layers.%d.mlp.up_proj.weight" % i: "a.safetensors" for i in range(28)}, total_size=1)
    p = profile_model(path)
    assert any("no tensors for layer(s) 28-35" in w for w in p["warnings"])


# --------------------------------------------------------------------------- weights from headers


def test_weights_bytes_summed_from_hand_written_headers(tmp_path):
    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / "q"))
    first = write_safetensors(
        os.path.join(path, "model-00001-of-00002.safetensors"),
        {
            "model.embed_tokens.weight": ("BF16", [10, 4]),  # 40 elements x 2 B = 80
            "model.layers.0.mlp.up_proj.weight": ("BF16", [3, 4]),  # 12 x 2 = 24
        },
        metadata={"format": "pt"},
    )
    second = write_safetensors(
        os.path.join(path, "model-00002-of-00002.safetensors"),
        {
            "model.norm.weight": ("F32", [4]),  # 4 x 4 = 16
            "lm_head.weight": ("F8_E4M3", [10, 4]),  # 40 x 1 = 40
        },
    )
    assert (first, second) == (80 + 24, 16 + 40)
    p = profile_model(path)
    assert p["weights_bytes"] == 80 + 24 + 16 + 40
    assert p["weights_bytes_source"] == "sum of tensor sizes in 2 safetensors header(s)"
    assert p["parameters"] == 40 + 12 + 4 + 40
    assert p["parameters_source"] == "safetensors headers (stored elements)"
    assert p["weights_files"] == 2 and p["weights_format"] == "safetensors"


def test_layer_names_from_headers_find_extra_layers(tmp_path):
    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / "q"))
    tensors = {"model.layers.%d.input_layernorm.weight" % i: ("BF16", [2]) for i in range(37)}
    write_safetensors(os.path.join(path, "model.safetensors"), tensors)
    p = profile_model(path)
    assert p["extra_layers"] == [36]
    assert p["weights_bytes"] == 37 * 2 * 2


def test_index_total_size_wins_and_disagreement_is_reported(tmp_path):
    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / "q"))
    size = write_safetensors(os.path.join(path, "model.safetensors"), {"model.norm.weight": ("BF16", [8])})
    write_index(path, {"model.norm.weight": "model.safetensors"}, total_size=999)
    p = profile_model(path)
    assert p["weights_bytes"] == 999
    assert any("total_size is 999 bytes but the shard headers add up to %d" % size in w for w in p["warnings"])
    assert p["parameters"] == 8


def test_index_naming_a_missing_shard(tmp_path):
    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / "q"))
    write_safetensors(os.path.join(path, "a.safetensors"), {"model.norm.weight": ("BF16", [8])})
    write_index(path, {"model.norm.weight": "a.safetensors", "lm_head.weight": "b.safetensors"})
    p = profile_model(path)
    assert p["weights_bytes"] is None  # no total_size and an incomplete set of headers: unknown
    assert any("b.safetensors" in w and "incomplete" in w for w in p["warnings"])


def test_header_reader_reads_only_the_header(tmp_path):
    path = str(tmp_path / "x.safetensors")
    write_safetensors(path, {"w": ("BF16", [1024, 1024])}, sparse=True)
    header, length = read_safetensors_header(path)
    assert header == {"w": {"dtype": "BF16", "shape": [1024, 1024], "data_offsets": [0, 1024 * 1024 * 2]}}
    assert os.path.getsize(path) == 8 + length + 1024 * 1024 * 2


# --------------------------------------------------------------------------- context rules


def _rope_config(tmp_path, rope, **extra):
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "hidden_size": 256,
        "max_position_embeddings": 4096,
        "rope_scaling": rope,
        "torch_dtype": "bfloat16",
    }
    config.update(extra)
    write_json(str(tmp_path / "config.json"), config)
    return profile_model(str(tmp_path))


def test_linear_and_dynamic_scaling_multiply_max_position_embeddings(tmp_path):
    assert _rope_config(tmp_path, {"type": "linear", "factor": 4.0})["effective_context"] == 4096 * 4
    assert _rope_config(tmp_path, {"rope_type": "dynamic", "factor": 2.0})["effective_context"] == 4096 * 2


def test_yarn_multiplies_the_original_length(tmp_path):
    # Qwen2.5's documented long-context override: yarn factor 4 over 32768.
    p = _rope_config(tmp_path, {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}, max_position_embeddings=32768)
    assert p["effective_context"] == 32768 * 4 == 131072


def test_longrope_keeps_the_length_and_defaults_to_the_original(tmp_path):
    # Phi-3-mini-128k style: max_position_embeddings 131072, original 4096 at the top level.
    p = _rope_config(
        tmp_path,
        {"type": "longrope", "long_factor": [1.0], "short_factor": [1.0]},
        max_position_embeddings=131072,
        original_max_position_embeddings=4096,
    )
    assert p["effective_context"] == 131072
    assert p["default_max_model_len"] == 4096


def test_smallest_length_key_wins(tmp_path):
    p = _rope_config(tmp_path, None, seq_length=2048)
    assert p["max_position_embeddings"] == 2048 and p["effective_context"] == 2048


def test_generation_defaults_are_returned(tmp_path):
    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / "q"))
    write_json(
        os.path.join(path, "generation_config.json"), {"temperature": 0.6, "top_p": 0.95, "top_k": 20, "transformers_version": "4.51.0"}
    )
    assert profile_model(path)["generation_defaults"] == {"temperature": 0.6, "top_p": 0.95, "top_k": 20}


# --------------------------------------------------------------------------- errors


def test_directory_without_config(tmp_path):
    with pytest.raises(ModelProfileError, match="no config.json in the model directory") as err:
        profile_model(str(tmp_path))
    assert str(tmp_path / "config.json") in str(err.value)


def test_not_a_directory(tmp_path):
    with pytest.raises(ModelProfileError, match="not a directory"):
        profile_model(str(tmp_path / "absent"))


def test_malformed_json_names_file_and_position(tmp_path):
    (tmp_path / "config.json").write_text('{\n  "num_hidden_layers": 2,\n  "hidden_size": ,\n}\n')
    with pytest.raises(ModelProfileError) as err:
        profile_model(str(tmp_path))
    message = str(err.value)
    assert message.startswith(str(tmp_path / "config.json") + ": invalid JSON at line 3 column 18")


def test_config_that_is_not_an_object(tmp_path):
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ModelProfileError, match="expected a JSON object, found list"):
        profile_model(str(tmp_path))


def test_missing_field_is_named(tmp_path):
    write_json(str(tmp_path / "config.json"), {"num_attention_heads": 8, "hidden_size": 512})
    with pytest.raises(ModelProfileError) as err:
        profile_model(str(tmp_path))
    assert str(err.value) == "%s: missing required field 'num_hidden_layers' (nor num_layers, n_layer)" % (tmp_path / "config.json")


def test_missing_field_in_text_config_names_the_section(tmp_path):
    write_json(str(tmp_path / "config.json"), {"text_config": {"num_hidden_layers": 2, "hidden_size": 64}})
    with pytest.raises(ModelProfileError, match=r"config.json \(text_config\): missing required field 'num_attention_heads'"):
        profile_model(str(tmp_path))


def test_wrong_field_type_is_named(tmp_path):
    write_json(str(tmp_path / "config.json"), {"num_hidden_layers": "36", "num_attention_heads": 8, "hidden_size": 512})
    with pytest.raises(ModelProfileError, match="field 'num_hidden_layers' must be a positive integer, found '36'"):
        profile_model(str(tmp_path))


def test_truncated_safetensors_header(tmp_path):
    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / "q"))
    shard = os.path.join(path, "model.safetensors")
    with open(shard, "wb") as handle:
        handle.write(struct.pack("<Q", 500))
        handle.write(b'{"model.norm.weight": {"dtype": "BF16"')  # 38 of the promised 500 bytes
    with pytest.raises(ModelProfileError) as err:
        profile_model(path)
    assert str(err.value).startswith(
        shard + ": truncated or corrupt safetensors header: it claims 500 bytes, but the file holds 38 after the 8-byte length"
    )


def test_file_shorter_than_the_length_prefix(tmp_path):
    shard = str(tmp_path / "x.safetensors")
    with open(shard, "wb") as handle:
        handle.write(b"\x01\x02\x03")
    with pytest.raises(ModelProfileError, match="3 bytes, shorter than the 8-byte header length"):
        read_safetensors_header(shard)


def test_tensor_data_cut_short_is_an_incomplete_download(tmp_path):
    shard = str(tmp_path / "x.safetensors")
    write_safetensors(shard, {"w": ("BF16", [100])})  # 200 data bytes
    with open(shard, "r+b") as handle:
        handle.truncate(os.path.getsize(shard) - 50)
    with pytest.raises(ModelProfileError, match="tensor data ends at byte 200 of the data section, but only 150"):
        read_safetensors_header(shard)


def test_header_that_is_not_json(tmp_path):
    shard = str(tmp_path / "x.safetensors")
    with open(shard, "wb") as handle:
        handle.write(struct.pack("<Q", 4) + b"oops")
    with pytest.raises(ModelProfileError, match="x.safetensors: safetensors header is not valid JSON"):
        read_safetensors_header(shard)


def test_malformed_index_names_the_index(tmp_path):
    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / "q"))
    (tmp_path / "q" / "model.safetensors.index.json").write_text('{"weight_map": {"a": "b"')
    with pytest.raises(ModelProfileError, match="model.safetensors.index.json: invalid JSON at line 1"):
        profile_model(path)


def test_malformed_generation_config_names_the_file(tmp_path):
    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / "q"))
    (tmp_path / "q" / "generation_config.json").write_text("{")
    with pytest.raises(ModelProfileError, match="generation_config.json: invalid JSON"):
        profile_model(path)


def test_yarn_without_original_length(tmp_path):
    with pytest.raises(ModelProfileError, match="yarn lacks 'original_max_position_embeddings'"):
        _rope_config(tmp_path, {"type": "yarn", "factor": 4.0})


def test_unknown_dtype_override(tmp_path):
    with pytest.raises(ValueError, match="unknown dtype 'int3'"):
        fixture_profile("Qwen__Qwen3-8B", dtype="int3")


def test_profile_is_json_serialisable():
    for name in sorted(os.listdir(os.path.dirname(fixture_dir("x")))):
        if os.path.isfile(os.path.join(fixture_dir(name), "config.json")):
            json.dumps(profile_model(fixture_dir(name)))


def test_config_only_copy_is_reported(tmp_path):
    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / "q"))
    write_index(
        path,
        {"model.norm.weight": "model-00001-of-00002.safetensors", "lm_head.weight": "model-00002-of-00002.safetensors"},
        total_size=16_381_470_720,
    )
    p = profile_model(path)
    assert p["weights_bytes"] == 16_381_470_720 and p["weights_files"] == 0
    assert any("none of the 2 shard file(s)" in w for w in p["warnings"])


def test_pickle_checkpoint_falls_back_to_file_sizes(tmp_path):
    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / "q"))
    (tmp_path / "q" / "pytorch_model.bin").write_bytes(b"\0" * 100)
    p = profile_model(path)
    assert p["weights_format"] == "pytorch"
    assert p["weights_bytes"] == 100
    assert p["weights_bytes_source"] == "size of 1 pytorch_model*.bin file(s) (pickle, approximate)"
    assert any("pickle (.bin)" in w for w in p["warnings"])
