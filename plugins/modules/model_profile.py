#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: model_profile
short_description: Profile a Hugging Face model directory for serving on Ascend NPUs
version_added: 0.1.0
description:
  - Reads C(config.json), C(model.safetensors.index.json) or the headers of the C(*.safetensors) files, and
    C(generation_config.json) of a model directory and returns its serving profile - architecture, attention kind,
    context length after RoPE scaling, KV cache bytes per token, exact weight bytes, MTP or other extra layers - so
    that memory and loading failures are predicted before a container starts.
  - Only the 8-byte length and the JSON header of each safetensors file are read, never tensor data; a checkpoint of
    hundreds of gigabytes profiles in milliseconds.
  - Read-only; never reports a change.
  - Feed the result to the P(npu.fleet.kv_fit#filter) filter to decide the C(max_model_len) a chip can hold.
author:
  - npu.fleet engineers (@npu-fleet)
options:
  path:
    description:
      - Directory of the checkpoint on the host where the module runs, holding C(config.json).
    type: path
    required: true
  dtype:
    description:
      - Serving dtype, as vLLM's C(--dtype). The KV cache is assumed to use the same dtype.
      - When omitted, the dtype of the checkpoint is used; float32 or unlabelled checkpoints are assumed to be served in
        16 bit, as vLLM's C(--dtype auto) does.
    type: str
    choices: [auto, bfloat16, float16, float32]
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
notes:
  - The arithmetic and its sources are explained in the collection's C(docs/memory.md).
  - Layers beyond C(num_hidden_layers) are looked for under the prefixes C(model.layers.N.),
    C(model.language_model.layers.N.) and C(language_model.model.layers.N.).
seealso:
  - name: vLLM KV cache specification
    description: How vLLM sizes the KV cache per layer, which this module mirrors.
    link: https://github.com/vllm-project/vllm/blob/main/vllm/v1/kv_cache_interface.py
"""

EXAMPLES = r"""
---
- name: Profile the checkpoint
  npu.fleet.model_profile:
    path: /data/models/Qwen3-8B
  register: qwen3_8b

- name: Stop before starting a container that cannot hold the requested context
  ansible.builtin.assert:
    that:
      - fit.verdict != 'does_not_fit'
    fail_msg: "{{ fit.message }}"
  vars:
    fit: >-
      {{ qwen3_8b.profile | npu.fleet.kv_fit(chip_memory_mb=32768, tensor_parallel_size=1,
         gpu_memory_utilization=0.9, max_model_len=40960) }}

- name: Refuse checkpoints with weights vLLM's generic loader cannot place
  ansible.builtin.fail:
    msg: "{{ qwen3_8b.profile.warnings | join(' ') }}"
  when: qwen3_8b.profile.extra_layers | length > 0
"""

RETURN = r"""
profile:
  description: The serving profile of the checkpoint.
  returned: success
  type: dict
  contains:
    path:
      description: The model directory that was read.
      type: str
      sample: /data/models/Qwen3-8B
    architecture:
      description: First entry of C(architectures) in C(config.json); what vLLM resolves the model class from.
      type: str
      sample: Qwen3ForCausalLM
    architectures:
      description: All entries of C(architectures).
      type: list
      elements: str
      sample: [Qwen3ForCausalLM]
    model_type:
      description: Top-level C(model_type).
      type: str
      sample: qwen3
    text_model_type:
      description: C(model_type) of the language model (of C(text_config) in multimodal wrappers).
      type: str
      sample: qwen3_vl_text
    text_config_used:
      description: Whether the language model was read from C(text_config), C(llm_config) or C(language_config).
      type: bool
      sample: false
    text_config_key:
      description: Which of those keys held the language model, or null.
      type: str
      sample: text_config
    num_hidden_layers:
      description: Decoder layers of the language model.
      type: int
      sample: 36
    num_attention_heads:
      description: Query heads.
      type: int
      sample: 32
    num_key_value_heads:
      description: KV heads (1 for MLA, whose latent cache vLLM treats as one head).
      type: int
      sample: 8
    head_dim:
      description: Explicit C(head_dim), else C(hidden_size / num_attention_heads); for MLA the query/key head size.
      type: int
      sample: 128
    hidden_size:
      description: Model width.
      type: int
      sample: 4096
    intermediate_size:
      description: Dense MLP width, if set.
      type: int
      sample: 12288
    vocab_size:
      description: Vocabulary size.
      type: int
      sample: 151936
    tie_word_embeddings:
      description: Whether input and output embeddings share weights.
      type: bool
      sample: false
    max_position_embeddings:
      description: Smallest of vLLM's length keys in the config (native context), or null if none is set.
      type: int
      sample: 40960
    rope_scaling:
      description: Normalised RoPE scaling (C(type), C(factor), C(original_max_position_embeddings)), or null.
      type: dict
      sample: {type: yarn, factor: 40, original_max_position_embeddings: 4096}
    effective_context:
      description: Longest C(max_model_len) vLLM accepts without C(VLLM_ALLOW_LONG_MAX_MODEL_LEN), after RoPE scaling.
      type: int
      sample: 163840
    default_max_model_len:
      description: The C(max_model_len) vLLM uses when the flag is not given (differs for longrope models).
      type: int
      sample: 163840
    context_rule:
      description: How C(effective_context) was derived, in words.
      type: str
      sample: "yarn: original_max_position_embeddings=4096 x factor 40"
    dtype:
      description: Serving dtype (also the KV cache dtype).
      type: str
      sample: bfloat16
    dtype_bytes:
      description: Bytes per element of RV(profile.dtype).
      type: int
      sample: 2
    config_dtype:
      description: C(torch_dtype) / C(dtype) stored in the config, or null.
      type: str
      sample: bfloat16
    dtype_source:
      description: Where the serving dtype came from (C(config), C(override) or a default with its reason).
      type: str
      sample: config
    attention:
      description: Attention kind, one of C(mha), C(gqa), C(mqa), C(mla).
      type: str
      sample: gqa
    kv_lora_rank:
      description: MLA latent rank, null for other attention kinds.
      type: int
      sample: 512
    qk_rope_head_dim:
      description: MLA decoupled RoPE key dimension, null for other attention kinds.
      type: int
      sample: 64
    sliding_window:
      description: Sliding window in tokens where one is in effect on some layers, else null.
      type: int
      sample: 128
    sliding_window_source:
      description: Which config field decided the sliding-window layers.
      type: str
      sample: layer_types
    layer_types:
      description:
        - Number of layers per kind - C(full_attention), C(sliding_attention), C(linear_attention), C(mamba),
          C(short_conv), C(attention+mamba), C(mlp) or C(moe) (no cache) - or the config's own name for a kind the
          profiler does not know (counted as full attention, with a warning).
      type: dict
      sample: {full_attention: 12, sliding_attention: 12}
    layer_types_source:
      description:
        - The config field that said which layer is which - C(layer_types), C(layers_block_type), C(attn_type_list),
          C(hybrid_override_pattern), C(full_attention_interval=K), C(attn_layer_period=P, attn_layer_offset=O),
          C(attn_layer_indices) - or how the sliding window was placed when none does.
      type: str
      sample: full_attention_interval=4
    attention_layers:
      description: Physical layers with full or sliding attention (those with K/V projections).
      type: int
      sample: 12
    cache_layers:
      description:
        - Layer indices per cache kind (C(full_attention), C(sliding_attention), C(state), C(none),
          C(treated_as_full_attention)), or null when the config describes no per-layer kinds.
      type: dict
      sample: {full_attention: [3, 7, 11], sliding_attention: [], state: [0, 1, 2], none: [], treated_as_full_attention: []}
    state_layers:
      description: Layers holding a fixed state per sequence (linear attention, Mamba, short convolution) instead of KV.
      type: int
      sample: 36
    state_kind:
      description: C(gated_delta_net), C(mamba2), C(mamba1), C(short_conv) or C(linear_attention), or null.
      type: str
      sample: gated_delta_net
    state_spec:
      description:
        - The state geometry as vLLM's C(MambaStateShapeCalculator) takes it, the conv and SSM dtypes, the vLLM function
          it mirrors and the per-layer tensors at TP 1 (C(tensors), name and bytes); null without state layers.
      type: dict
      sample: {kind: gated_delta_net, num_k_heads: 16, num_v_heads: 32, head_k_dim: 128, head_v_dim: 128, conv_kernel: 4}
    state_bytes_per_layer:
      description: State bytes of one such layer for one sequence, TP 1, at the dtypes vLLM uses.
      type: int
      sample: 1097728
    state_bytes_per_sequence:
      description: State bytes of all such layers for one sequence, TP 1 (vLLM pads it into pages; see the kv_fit filter).
      type: int
      sample: 39518208
    cache_summary:
      description: Which layers hold what, in one sentence with the bytes.
      type: str
      sample: "12 full-attention layer(s) (layers 3, 7, 11, ...) hold 2048 B of KV per token each; 36 gated_delta_net layer(s)
        hold a fixed state per sequence (conv 49152 B + ssm 1048576 B = 1097728 B each, TP 1)."
    num_loops:
      description: Times each layer runs in a looped transformer (1 for ordinary models).
      type: int
      sample: 1
    moe:
      description:
        - Mixture-of-experts shape (C(experts), C(active_experts), C(shared_experts), C(expert_intermediate_size),
          C(dense_layers)), or null for dense models.
        - Also the config field each came from (C(experts_source), C(active_experts_source), C(shared_experts_source),
          C(expert_intermediate_size_source)), C(shared_expert_intermediate_size), C(moe_layers) with
          C(moe_layers_source), and C(experts_in_weights) (experts numbered in the tensor names, or null).
        - Active experts are read under C(num_experts_per_tok), C(experts_per_token), C(top_k_experts), C(moe_topk),
          C(moe_k), C(moe_top_k) and other spellings; a MoE config without one gives a warning.
      type: dict
      sample: {experts: 128, active_experts: 8, shared_experts: null, expert_intermediate_size: 768, dense_layers: 0}
    quantization:
      description: Pre-quantisation of the weights (C(method), C(bits)), or null.
      type: dict
      sample: {method: fp8, bits: 8}
    weights_format:
      description: C(safetensors), C(pytorch) or null when no weights were found.
      type: str
      sample: safetensors
    weights_files:
      description: Number of weight files read.
      type: int
      sample: 5
    weights_bytes:
      description: Exact bytes of all weights, or null when no weights were found.
      type: int
      sample: 16381470720
    weights_bytes_source:
      description: Where RV(profile.weights_bytes) came from.
      type: str
      sample: model.safetensors.index.json metadata.total_size
    parameters:
      description: Parameter count.
      type: int
      sample: 8190735360
    parameters_source:
      description: Whether RV(profile.parameters) was counted from safetensors headers or estimated from the config.
      type: str
      sample: safetensors headers (stored elements)
    kv_cache_bytes_per_token_per_layer:
      description: KV bytes per token for one layer, all heads, K and V (MLA - latent plus RoPE key, no factor 2).
      type: int
      sample: 4096
    kv_cache_full_layers:
      description:
        - Layer slots whose KV cache grows with the sequence (full attention, times C(num_loops)).
        - Layers of unknown kind, and state layers whose state size is unknown, are counted here (the safe side).
      type: int
      sample: 36
    kv_cache_sliding_layers:
      description: Layer slots with a sliding window, whose KV cache is bounded by the window.
      type: int
      sample: 0
    kv_cache_bytes_per_token:
      description: KV bytes per token of the layers that grow with the sequence, at the serving dtype, before TP.
      type: int
      sample: 147456
    kv_cache_bytes_per_token_all_layers:
      description: KV bytes per token if every attention layer held the token (sequences within the window).
      type: int
      sample: 147456
    extra_layers:
      description: Decoder layer indices present in the weight names at or beyond C(num_hidden_layers) (MTP layers).
      type: list
      elements: int
      sample: [61]
    extra_layers_prefix:
      description: Name prefix of the extra layers, or null.
      type: str
      sample: model.layers.
    mtp_layers:
      description: Multi-token-prediction layers, from C(num_nextn_predict_layers) / C(mtp_num_hidden_layers) or the weights.
      type: int
      sample: 1
    mtp_layers_source:
      description: Where RV(profile.mtp_layers) came from, or null.
      type: str
      sample: "config: num_nextn_predict_layers"
    generation_defaults:
      description: Sampling defaults from C(generation_config.json) that vLLM applies, or null without that file.
      type: dict
      sample: {temperature: 0.6, top_p: 0.95, top_k: 20}
    warnings:
      description: Findings an operator should act on, as sentences.
      type: list
      elements: str
      sample:
        - "sliding window of 128 tokens on 12 of 24 layer(s): vLLM budgets those layers by the window (SlidingWindowSpec), not by the sequence length."
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.npu.fleet.plugins.module_utils._model_profile import ModelProfileError, profile_model


def main():
    """Argument spec, one call into module_utils, error mapping."""
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "dtype": {"type": "str", "choices": ["auto", "bfloat16", "float16", "float32"]},
        },
        supports_check_mode=True,
    )
    try:
        profile = profile_model(module.params["path"], dtype=module.params["dtype"])
    except ModelProfileError as exc:
        module.fail_json(msg=str(exc))
    for warning in profile["warnings"]:
        module.warn(warning)
    module.exit_json(changed=False, profile=profile)


if __name__ == "__main__":
    main()
