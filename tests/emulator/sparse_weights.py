#!/usr/bin/env python
"""Sparse safetensors shards for a model directory that holds only its config.json (TEST EQUIPMENT).

The emulated fleet's models (tests/emulator/models/) are real ``config.json``
files without weights: an 8B checkpoint is 16 GB, and the emulated hosts
serve a tiny stand-in model anyway. A host-side check that a model directory
is complete (``verify_model_dir``) rightly refuses a directory without
weights, so this script gives such a directory the weights it would have, in
every respect that can be seen without reading tensor data:

* the tensors the model really has, by name and shape, derived from the
  config for the common decoder layouts - embeddings, per-layer attention
  (q/k/v/o with the family's biases and q/k norms, gated attention, MLA with
  its low-rank projections and DSA indexer), linear-attention (gated delta
  net) and Mamba mixers, dense MLP (gated or not), MoE experts with router
  and shared experts (Mixtral, Qwen, DeepSeek, gpt-oss, Nemotron-H naming),
  norms, ``lm_head`` unless tied, DeepSeek/GLM MTP layers, Qwen3.5 ``mtp.*``,
  and a Qwen-VL vision tower (a generic ViT for other vision configs);
* shards of at most 5 GB of tensor data (as ``save_pretrained`` cuts them),
  ``model-0000k-of-0000n.safetensors`` with ``model.safetensors.index.json``
  (``metadata.total_size``, ``weight_map``), or one ``model.safetensors``;
* each file exactly 8 + header + data bytes long, its data region a hole
  (``ftruncate``): ``ls`` shows 16 GB, ``du`` shows a few kilobytes.

Every tensor is BF16 (``--dtype`` to change), also where the published
checkpoint is quantized (FP8, MXFP4, NVFP4): then sizes differ from the
published files, parameter counts do not. For Llama, Mistral, Qwen2/2.5/3,
Qwen3-MoE, Mixtral, Yi, gpt-oss and Qwen3-VL the count equals the published
one exactly; hybrid and exotic layouts are close (within a few percent).
Reading the data gives zeros: these files profile and verify, they do not
serve. Each header's ``__metadata__`` carries ``format: pt`` (as transformers
writes) and ``npu_fleet_test``, by which the script knows its own files.

Idempotent: a directory that already holds these shards is left as it is; a
directory with weights of its own (a real tiny checkpoint) is never touched;
an interrupted run is completed. Files appear by rename, the index last.
Standard library only: it runs with the emulated host's /usr/bin/python3
(tests/emulator/serving_prereqs.yml copies it there) or on the controller.

    python3 sparse_weights.py MODEL_DIR [--max-shard-size BYTES] [--dtype BF16]

prints one JSON object: changed, path, files, total_size, parameters, tensors, message.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

CONFIG_FILE = "config.json"
INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
# What verify_model_dir (plugins/module_utils/_model_files.py) counts as weights or an index of them.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
INDEX_FILES = (INDEX_FILE, "pytorch_model.bin.index.json")
MARKER = "npu_fleet_test"
MARKER_VALUE = "sparse placeholder weights (tests/emulator/sparse_weights.py): the data is a hole of zeros"
# transformers' save_pretrained default max_shard_size "5GB" (decimal units).
DEFAULT_SHARD_BYTES = 5 * 1000**3
DTYPE_BYTES = {"BF16": 2, "F16": 2, "F32": 4}
TEXT_CONFIG_KEYS = ("text_config", "llm_config", "language_config")

Tensor = Tuple[str, Tuple[int, ...]]


class SparseWeightsError(Exception):
    """The directory or its config cannot be given weights; the message says why."""


# --------------------------------------------------------------------------- config fields


def _positive(source: Dict[str, Any], *keys: str) -> Optional[int]:
    """First positive whole number among ``keys``, or None."""
    for key in keys:
        value = source.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _need(source: Dict[str, Any], where: str, *keys: str) -> int:
    value = _positive(source, *keys)
    if value is None:
        raise SparseWeightsError("%s has no positive %s: cannot tell the tensor shapes" % (where, " / ".join(keys)))
    return value


def text_config(config: Dict[str, Any]) -> Tuple[Dict[str, Any], Optional[str]]:
    """The language model's part of the config (VL wrappers keep it under text_config), and that key."""
    for key in TEXT_CONFIG_KEYS:
        sub = config.get(key)
        if isinstance(sub, dict) and sub:
            merged = dict(sub)
            for inherited in ("tie_word_embeddings", "torch_dtype", "dtype"):
                if inherited not in merged and inherited in config:
                    merged[inherited] = config[inherited]
            return merged, key
    return config, None


_MIXERS = {
    "attention": "attention",
    "full_attention": "attention",
    "sliding_attention": "attention",
    "global_attention": "attention",
    "local_attention": "attention",
    "hybrid": "attention",
    "linear_attention": "linear_attention",
    "mamba": "mamba",
    "mamba2": "mamba",
}
# Nemotron-H: every layer is one block - a mixer or an MLP.
_NEMOTRON_BLOCKS = {
    "M": ("mamba", None),
    "*": ("attention", None),
    "-": (None, "dense"),
    "E": (None, "moe"),
    "mamba": ("mamba", None),
    "attention": ("attention", None),
    "mlp": (None, "dense"),
    "moe": (None, "moe"),
}


def _experts(t: Dict[str, Any]) -> int:
    count = _positive(t, "num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts", "num_routed_experts")
    return count if count and count > 1 else 0


def _moe_layer(t: Dict[str, Any], i: int) -> bool:
    """Whether decoder layer ``i`` routes through experts, by the family's rule."""
    period, offset = t.get("expert_layer_period"), t.get("expert_layer_offset")
    if isinstance(period, int) and period > 0 and isinstance(offset, int):  # Jamba
        return i % period == offset
    first_dense = t.get("first_k_dense_replace")
    if isinstance(first_dense, int) and first_dense >= 0:  # DeepSeek, Kimi, GLM
        freq = _positive(t, "moe_layer_freq") or 1
        return i >= first_dense and i % freq == 0
    step = t.get("interleave_moe_layer_step")
    if isinstance(step, int) and step > 1:  # Llama 4
        return (i + 1) % step == 0
    only = t.get("mlp_only_layers") if isinstance(t.get("mlp_only_layers"), list) else []
    step = _positive(t, "decoder_sparse_step") or 1  # Qwen2/3-MoE
    return i not in only and (i + 1) % step == 0


def layer_plan(t: Dict[str, Any], layers: int) -> List[Tuple[Optional[str], Optional[str]]]:
    """(mixer, feed-forward) of every decoder layer: mixer attention / linear_attention / mamba / None, ffn dense / moe / None."""
    model_type = str(t.get("model_type") or "")
    blocks = t.get("hybrid_override_pattern")
    if not (isinstance(blocks, str) and blocks) and model_type.startswith("nemotron_h"):
        blocks = t.get("layers_block_type")
    if (isinstance(blocks, str) and blocks) or (isinstance(blocks, list) and blocks):
        plan = [_NEMOTRON_BLOCKS.get(str(b), ("attention", None)) for b in list(blocks)[:layers]]
        return plan + [("attention", None)] * (layers - len(plan))
    mixers: List[str] = []
    kinds = t.get("layer_types") or t.get("layers_block_type")
    interval = _positive(t, "full_attention_interval")
    period, offset = t.get("attn_layer_period"), t.get("attn_layer_offset")
    if isinstance(kinds, list) and kinds:
        mixers = [_MIXERS.get(str(k).strip().lower(), "attention") for k in kinds[:layers]]
    elif interval:  # Qwen3-Next: every interval-th layer is full attention
        mixers = ["attention" if (i + 1) % interval == 0 else "linear_attention" for i in range(layers)]
    elif isinstance(period, int) and period > 0 and isinstance(offset, int):  # Jamba
        mixers = ["attention" if i % period == offset else "mamba" for i in range(layers)]
    elif isinstance(t.get("attn_layer_indices"), list):  # Bamba
        chosen = set(t["attn_layer_indices"])
        mixers = ["attention" if i in chosen else "mamba" for i in range(layers)]
    mixers += ["attention"] * (layers - len(mixers))
    moe = _experts(t) > 0 and t.get("enable_moe_block") is not False
    return [(mixer, "moe" if moe and _moe_layer(t, i) else "dense") for i, mixer in enumerate(mixers)]


# --------------------------------------------------------------------------- tensors


class _Model:
    """The shapes of one decoder, read once from its config."""

    def __init__(self, config: Dict[str, Any], where: str) -> None:
        t, key = text_config(config)
        self.config, self.t, self.wrapped = config, t, key is not None
        self.where = "%s%s" % (where, " (%s)" % key if key else "")
        self.model_type = str(t.get("model_type") or config.get("model_type") or "")
        self.layers = _need(t, self.where, "num_hidden_layers", "num_layers", "n_layer")
        self.hidden = _need(t, self.where, "hidden_size", "n_embd", "d_model")
        self.heads = _need(t, self.where, "num_attention_heads", "n_head", "num_heads")
        self.kv_heads = _positive(t, "num_key_value_heads", "num_kv_heads", "n_head_kv", "multi_query_group_num") or self.heads
        self.head_dim = _positive(t, "head_dim", "kv_channels", "attention_head_dim") or self.hidden // self.heads
        self.vocab = _positive(t, "vocab_size", "padded_vocab_size") or _need(config, where, "vocab_size")
        self.inter = _positive(t, "intermediate_size", "ffn_hidden_size") or 4 * self.hidden
        self.experts = _experts(t)
        self.expert_inter = _positive(t, "moe_intermediate_size", "expert_intermediate_size", "moe_ffn_hidden_size") or self.inter
        act = str(t.get("mlp_hidden_act") or t.get("hidden_act") or t.get("hidden_activation") or "silu")
        self.gated = act != "relu2"  # SwiGLU / GeGLU have gate, up, down; Nemotron-H's squared ReLU only up, down
        self.tied = bool(t.get("tie_word_embeddings", False))
        if self.model_type.startswith("nemotron_h"):
            self.prefix = "backbone."
        elif self.wrapped:
            self.prefix = "model.language_model."
        else:
            self.prefix = "model."

    # ----- blocks

    def attention(self, p: str) -> List[Tensor]:
        t, h, hd = self.t, self.hidden, self.head_dim
        if _positive(t, "kv_lora_rank"):
            return self._mla(p)
        gate = t.get("attn_output_gate") is True or self.model_type.startswith("qwen3_next")
        q, kv = self.heads * hd, self.kv_heads * hd
        out = [(p + "q_proj.weight", (q * (2 if gate else 1), h)), (p + "k_proj.weight", (kv, h)), (p + "v_proj.weight", (kv, h))]
        out.append((p + "o_proj.weight", (h, q)))
        if t.get("attention_bias") is True:
            out += [(p + "q_proj.bias", (q * (2 if gate else 1),)), (p + "k_proj.bias", (kv,)), (p + "v_proj.bias", (kv,))]
            out.append((p + "o_proj.bias", (h,)))
        elif self.model_type.startswith("qwen2"):  # Qwen2/2.5: q, k, v biases only
            out += [(p + "q_proj.bias", (q,)), (p + "k_proj.bias", (kv,)), (p + "v_proj.bias", (kv,))]
        if t.get("use_qk_norm") is True and t.get("qk_norm_type") == "per_layer":  # MiniMax: over all heads
            out += [(p + "q_norm.weight", (q,)), (p + "k_norm.weight", (kv,))]
        elif t.get("use_qk_norm") is True or self.model_type.startswith(("qwen3", "gemma3", "gemma4", "olmo2")):
            out += [(p + "q_norm.weight", (hd,)), (p + "k_norm.weight", (hd,))]
        if self.model_type.startswith("gpt_oss"):
            out.append((p + "sinks", (self.heads,)))
        return out

    def _mla(self, p: str) -> List[Tensor]:
        """DeepSeek-V2/V3 multi-head latent attention (Kimi K2, GLM-5 too), and a DSA indexer where configured."""
        t, h = self.t, self.hidden
        rope = _need(t, self.where, "qk_rope_head_dim")
        nope = _positive(t, "qk_nope_head_dim") or 0
        v_dim = _positive(t, "v_head_dim") or self.head_dim
        kv_rank, q_rank = _need(t, self.where, "kv_lora_rank"), _positive(t, "q_lora_rank")
        q_out = self.heads * (nope + rope)
        if q_rank:
            out = [(p + "q_a_proj.weight", (q_rank, h)), (p + "q_a_layernorm.weight", (q_rank,)), (p + "q_b_proj.weight", (q_out, q_rank))]
        else:
            out = [(p + "q_proj.weight", (q_out, h))]
        out += [
            (p + "kv_a_proj_with_mqa.weight", (kv_rank + rope, h)),
            (p + "kv_a_layernorm.weight", (kv_rank,)),
            (p + "kv_b_proj.weight", (self.heads * (nope + v_dim), kv_rank)),
            (p + "o_proj.weight", (h, self.heads * v_dim)),
        ]
        index_heads, index_dim = _positive(t, "index_n_heads"), _positive(t, "index_head_dim")
        if index_heads and index_dim:
            i = p + "indexer."
            out += [
                (i + "wq_b.weight", (index_heads * index_dim, q_rank or h)),
                (i + "wk.weight", (index_dim, h)),
                (i + "k_norm.weight", (index_dim,)),
                (i + "k_norm.bias", (index_dim,)),
                (i + "weights_proj.weight", (index_heads, h)),
            ]
        return out

    def linear_attention(self, p: str) -> List[Tensor]:
        """Gated delta net (Qwen3-Next, Qwen3.5)."""
        t, h = self.t, self.hidden
        nk, nv = _need(t, self.where, "linear_num_key_heads"), _need(t, self.where, "linear_num_value_heads")
        dk, dv = _need(t, self.where, "linear_key_head_dim"), _need(t, self.where, "linear_value_head_dim")
        kernel = _positive(t, "linear_conv_kernel_dim") or 4
        key, value = nk * dk, nv * dv
        return [
            (p + "in_proj_qkvz.weight", (2 * key + 2 * value, h)),
            (p + "in_proj_ba.weight", (2 * nv, h)),
            (p + "conv1d.weight", (2 * key + value, 1, kernel)),
            (p + "dt_bias", (nv,)),
            (p + "A_log", (nv,)),
            (p + "norm.weight", (dv,)),
            (p + "out_proj.weight", (h, value)),
        ]

    def mamba(self, p: str) -> List[Tensor]:
        """Mamba-2 (Nemotron-H, Bamba) when the config gives heads, else Mamba-1 (Jamba)."""
        t, h = self.t, self.hidden
        heads = _positive(t, "mamba_num_heads", "mamba_n_heads", "n_mamba_heads")
        head_dim = _positive(t, "mamba_head_dim", "mamba_d_head", "mamba_headdim")
        state = _positive(t, "ssm_state_size", "mamba_d_state") or 128
        kernel = _positive(t, "conv_kernel", "mamba_d_conv") or 4
        conv_bias = t.get("use_conv_bias", t.get("mamba_conv_bias", True)) is not False
        if heads and head_dim:
            inner = heads * head_dim
            groups = _positive(t, "n_groups", "mamba_n_groups", "mamba_ngroups") or 1
            conv = inner + 2 * groups * state
            out = [(p + "in_proj.weight", (inner + conv + heads, h)), (p + "conv1d.weight", (conv, 1, kernel))]
            out += [(p + "conv1d.bias", (conv,))] if conv_bias else []
            out += [(p + "A_log", (heads,)), (p + "D", (heads,)), (p + "dt_bias", (heads,)), (p + "norm.weight", (inner,))]
            return out + [(p + "out_proj.weight", (h, inner))]
        expand = t.get("mamba_expand") if isinstance(t.get("mamba_expand"), (int, float)) else 2
        inner = int(expand * h)
        dt_rank = _positive(t, "mamba_dt_rank") or -(-h // 16)
        out = [(p + "in_proj.weight", (2 * inner, h)), (p + "conv1d.weight", (inner, 1, kernel))]
        out += [(p + "conv1d.bias", (inner,))] if conv_bias else []
        out += [
            (p + "x_proj.weight", (dt_rank + 2 * state, inner)),
            (p + "dt_proj.weight", (inner, dt_rank)),
            (p + "dt_proj.bias", (inner,)),
            (p + "A_log", (inner, state)),
            (p + "D", (inner,)),
            (p + "out_proj.weight", (h, inner)),
        ]
        if self.model_type.startswith("jamba"):
            out += [(p + "dt_layernorm.weight", (dt_rank,)), (p + "b_layernorm.weight", (state,)), (p + "c_layernorm.weight", (state,))]
        return out

    def mlp(self, p: str, size: int, names: Tuple[str, str, str] = ("gate_proj", "up_proj", "down_proj")) -> List[Tensor]:
        h = self.hidden
        gate, up, down = names
        out = [(p + gate + ".weight", (size, h))] if self.gated else []
        out += [(p + up + ".weight", (size, h)), (p + down + ".weight", (h, size))]
        if self.t.get("mlp_bias") is True:
            out += [(p + gate + ".bias", (size,))] if self.gated else []
            out += [(p + up + ".bias", (size,)), (p + down + ".bias", (h,))]
        return out

    def moe(self, layer: str, p: str) -> List[Tensor]:
        """Router, routed experts and shared experts, under the family's names (``layer`` + the block prefix ``p``)."""
        t, h, e, size = self.t, self.hidden, self.experts, self.expert_inter
        mt = self.model_type
        if mt.startswith("gpt_oss"):  # fused experts with biases
            x = layer + "mlp.experts."
            return [
                (layer + "mlp.router.weight", (e, h)),
                (layer + "mlp.router.bias", (e,)),
                (x + "gate_up_proj", (e, h, 2 * size)),
                (x + "gate_up_proj_bias", (e, 2 * size)),
                (x + "down_proj", (e, size, h)),
                (x + "down_proj_bias", (e, h)),
            ]
        mixtral = mt.startswith(("mixtral", "minimax"))
        names = ("w1", "w3", "w2") if mixtral else ("gate_proj", "up_proj", "down_proj")
        out: List[Tensor] = []
        if mixtral:
            out.append((p + "gate.weight", (e, h)))
            if t.get("use_routing_bias") is True:
                out.append((p + "e_score_correction_bias", (e,)))
        elif mt.startswith("jamba"):
            out.append((p + "router.weight", (e, h)))
        else:
            out.append((p + "gate.weight", (e, h)))
            if "n_routed_experts" in t:  # DeepSeek-V3 style aux-loss-free routing bias
                out.append((p + "gate.e_score_correction_bias", (e,)))
        for index in range(e):
            out += self.mlp("%sexperts.%d." % (p, index), size, names)
        shared_size = _positive(t, "shared_expert_intermediate_size", "moe_shared_expert_intermediate_size")
        shared_count = _positive(t, "n_shared_experts", "num_shared_experts")
        if "shared_expert_intermediate_size" in t and shared_size:  # Qwen2-MoE, Qwen3-Next, Qwen3.5
            out += self.mlp(p + "shared_expert.", shared_size)
            out.append((p + "shared_expert_gate.weight", (1, h)))
        elif shared_size:  # Nemotron-H
            out += self.mlp(p + "shared_experts.", shared_size)
        elif shared_count:  # DeepSeek
            out += self.mlp(p + "shared_experts.", size * shared_count)
        return out

    # ----- layers

    def decoder_layer(self, p: str, mixer: Optional[str], ffn: Optional[str]) -> List[Tensor]:
        h, mt = self.hidden, self.model_type
        if mt.startswith("nemotron_h"):  # one block per layer, under mixer.
            out = [(p + "norm.weight", (h,))]
            if mixer == "attention":
                out += self.attention(p + "mixer.")
            elif mixer == "mamba":
                out += self.mamba(p + "mixer.")
            elif ffn == "moe":
                out += self.moe(p, p + "mixer.")
            elif ffn == "dense":
                out += self.mlp(p + "mixer.", self.inter)
            return out
        ff = "feed_forward." if mt.startswith("jamba") else ("block_sparse_moe." if mt.startswith(("mixtral", "minimax")) else "mlp.")
        out = [(p + "input_layernorm.weight", (h,))]
        if mixer == "linear_attention":
            out += self.linear_attention(p + "linear_attn.")
        elif mixer == "mamba":
            out += self.mamba(p + "mamba.")
        else:
            out += self.attention(p + "self_attn.")
        out.append((p + ("pre_ff_layernorm.weight" if mt.startswith("jamba") else "post_attention_layernorm.weight"), (h,)))
        if mt.startswith(("gemma2", "gemma3", "gemma4")):
            out += [(p + "pre_feedforward_layernorm.weight", (h,)), (p + "post_feedforward_layernorm.weight", (h,))]
        if ffn == "moe" and self.t.get("enable_moe_block") is True:  # Gemma 4: a dense MLP beside the experts
            out += self.mlp(p + "mlp.", self.inter) + self.moe(p, p + "moe.")
        elif ffn == "moe":
            out += self.moe(p, p + ff)
        else:
            out += self.mlp(p + ff.replace("block_sparse_moe.", "mlp."), self.inter)
        return out

    def tensors(self) -> List[Tensor]:
        h, p = self.hidden, self.prefix
        plan = layer_plan(self.t, self.layers)
        embed = "embeddings.weight" if p == "backbone." else "embed_tokens.weight"
        out: List[Tensor] = [(p + embed, (self.vocab, h))]
        for index, (mixer, ffn) in enumerate(plan):
            out += self.decoder_layer("%slayers.%d." % (p, index), mixer, ffn)
        out += self._mtp(plan)
        final = (
            "norm_f.weight" if p == "backbone." else ("final_layernorm.weight" if self.model_type.startswith("jamba") else "norm.weight")
        )
        out.append((p + final, (h,)))
        if not self.tied:
            out.append(("lm_head.weight", (self.vocab, h)))
        return out + self._vision()

    def _mtp(self, plan: List[Tuple[Optional[str], Optional[str]]]) -> List[Tensor]:
        """Multi-token-prediction layers: DeepSeek/GLM store them as layers past num_hidden_layers, Qwen3.5 under mtp."""
        t, h, p = self.t, self.hidden, self.prefix
        ffn = "moe" if any(f == "moe" for _m, f in plan) else "dense"
        out: List[Tensor] = []
        nextn = _positive(t, "num_nextn_predict_layers")
        if nextn and _positive(t, "kv_lora_rank"):
            for index in range(self.layers, self.layers + nextn):
                q = "%slayers.%d." % (p, index)
                out += [(q + "embed_tokens.weight", (self.vocab, h)), (q + "enorm.weight", (h,)), (q + "hnorm.weight", (h,))]
                out.append((q + "eh_proj.weight", (h, 2 * h)))
                out += self.decoder_layer(q, "attention", ffn)
                out += [(q + "shared_head.norm.weight", (h,)), (q + "shared_head.head.weight", (self.vocab, h))]
        mtp = _positive(t, "mtp_num_hidden_layers")
        if mtp:
            out += [("mtp.fc.weight", (h, 2 * h)), ("mtp.pre_fc_norm_embedding.weight", (h,)), ("mtp.pre_fc_norm_hidden.weight", (h,))]
            for index in range(mtp):
                out += self.decoder_layer("mtp.layers.%d." % index, "attention", ffn)
            out.append(("mtp.norm.weight", (h,)))
        return out

    def _vision(self) -> List[Tensor]:
        """The vision tower of an image-text-to-text wrapper: Qwen-VL layout when it has ``depth``, else a generic ViT."""
        v = self.config.get("vision_config")
        if not isinstance(v, dict):
            return []
        vh, vi = _positive(v, "hidden_size", "embed_dim"), _positive(v, "intermediate_size")
        depth = _positive(v, "depth", "num_hidden_layers")
        if not (vh and vi and depth):
            return []
        patch, channels = _positive(v, "patch_size") or 14, _positive(v, "in_channels", "num_channels") or 3
        out: List[Tensor] = []
        if _positive(v, "depth"):
            p = "model.visual."
            temporal, merge = _positive(v, "temporal_patch_size") or 2, _positive(v, "spatial_merge_size") or 2
            out += [(p + "patch_embed.proj.weight", (vh, channels, temporal, patch, patch)), (p + "patch_embed.proj.bias", (vh,))]
            if _positive(v, "num_position_embeddings"):
                out.append((p + "pos_embed.weight", (v["num_position_embeddings"], vh)))
            for index in range(depth):
                b = "%sblocks.%d." % (p, index)
                out += [(b + "norm1.weight", (vh,)), (b + "norm1.bias", (vh,)), (b + "norm2.weight", (vh,)), (b + "norm2.bias", (vh,))]
                out += [(b + "attn.qkv.weight", (3 * vh, vh)), (b + "attn.qkv.bias", (3 * vh,))]
                out += [(b + "attn.proj.weight", (vh, vh)), (b + "attn.proj.bias", (vh,))]
                out += [(b + "mlp.linear_fc1.weight", (vi, vh)), (b + "mlp.linear_fc1.bias", (vi,))]
                out += [(b + "mlp.linear_fc2.weight", (vh, vi)), (b + "mlp.linear_fc2.bias", (vh,))]
            merged, text_hidden = vh * merge * merge, _positive(v, "out_hidden_size") or self.hidden
            mergers = [(p + "merger.", vh)]
            deepstack = v.get("deepstack_visual_indexes")
            if isinstance(deepstack, list):
                mergers += [("%sdeepstack_merger_list.%d." % (p, k), merged) for k in range(len(deepstack))]
            for m, norm in mergers:
                out += [(m + "norm.weight", (norm,)), (m + "norm.bias", (norm,))]
                out += [(m + "linear_fc1.weight", (merged, merged)), (m + "linear_fc1.bias", (merged,))]
                out += [(m + "linear_fc2.weight", (text_hidden, merged)), (m + "linear_fc2.bias", (text_hidden,))]
            return out
        p = "model.vision_tower."
        heads = _positive(v, "num_attention_heads", "num_heads") or max(1, vh // 64)
        attn = heads * (_positive(v, "head_dim") or vh // heads)
        out.append((p + "patch_embedding.weight", (vh, channels, patch, patch)))
        positions = _positive(v, "position_embedding_size", "num_position_embeddings")
        if positions:
            out.append((p + "position_embedding.weight", (positions, vh)))
        for index in range(depth):
            b = "%slayers.%d." % (p, index)
            out += [(b + "layer_norm1.weight", (vh,)), (b + "layer_norm2.weight", (vh,))]
            out += [(b + "self_attn.%s_proj.weight" % n, (attn, vh)) for n in ("q", "k", "v")]
            out += [(b + "self_attn.o_proj.weight", (vh, attn)), (b + "mlp.fc1.weight", (vi, vh)), (b + "mlp.fc2.weight", (vh, vi))]
        return out + [("model.embed_vision.embedding_projection.weight", (self.hidden, vh))]


def model_tensors(config: Dict[str, Any], where: str = CONFIG_FILE) -> List[Tensor]:
    """(name, shape) of every tensor of the checkpoint the config describes, in state-dict order."""
    if not isinstance(config, dict):
        raise SparseWeightsError("%s is not a JSON object" % where)
    tensors = _Model(config, where).tensors()
    seen = set()
    for name, _shape in tensors:
        if name in seen:
            raise SparseWeightsError("%s: tensor %s would be written twice (a layout this script gets wrong)" % (where, name))
        seen.add(name)
    return tensors


# --------------------------------------------------------------------------- shards


def _elements(shape: Sequence[int]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def plan_shards(tensors: List[Tensor], dtype: str = "BF16", max_shard_bytes: int = DEFAULT_SHARD_BYTES) -> List[Dict[str, Any]]:
    """Cut the tensors into shards as save_pretrained does (a new shard when the next tensor would overflow).

    Each shard: ``name``, ``header`` (the safetensors header, offsets packed
    in order), ``data`` (bytes of tensor data), ``size`` (the whole file).
    """
    width = DTYPE_BYTES[dtype]
    groups: List[List[Tensor]] = [[]]
    used = 0
    for name, shape in tensors:
        size = _elements(shape) * width
        if groups[-1] and used + size > max_shard_bytes:
            groups.append([])
            used = 0
        groups[-1].append((name, shape))
        used += size
    shards = []
    for number, group in enumerate(groups, 1):
        header: Dict[str, Any] = {"__metadata__": {"format": "pt", MARKER: MARKER_VALUE}}
        offset = 0
        for name, shape in group:
            end = offset + _elements(shape) * width
            header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, end]}
            offset = end
        raw = _header_bytes(header)
        name = SINGLE_FILE if len(groups) == 1 else "model-%05d-of-%05d.safetensors" % (number, len(groups))
        shards.append({"name": name, "header": raw, "data": offset, "size": 8 + len(raw) + offset, "tensors": [n for n, _s in group]})
    return shards


def _header_bytes(header: Dict[str, Any]) -> bytes:
    """JSON header padded with spaces to a multiple of 8 bytes, as the safetensors library writes it."""
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return raw + b" " * (-len(raw) % 8)


def _index(shards: List[Dict[str, Any]]) -> Dict[str, Any]:
    weight_map = {}
    for shard in shards:
        for name in shard["tensors"]:
            weight_map[name] = shard["name"]
    return {"metadata": {"total_size": sum(s["data"] for s in shards), MARKER: MARKER_VALUE}, "weight_map": weight_map}


# --------------------------------------------------------------------------- the directory


def _ours(path: str) -> bool:
    """Whether a safetensors file or index was written by this script (its marker), reading the header only."""
    try:
        with open(path, "rb") as handle:
            if path.endswith(".json"):
                meta = json.load(handle).get("metadata") or {}
            else:
                (length,) = struct.unpack("<Q", handle.read(8))
                if length > 100 * 1000 * 1000:
                    return False
                meta = json.loads(handle.read(length).decode("utf-8")).get("__metadata__") or {}
    except (OSError, ValueError, struct.error, AttributeError):
        return False
    return isinstance(meta, dict) and MARKER in meta


def _write_file(path: str, prefix: bytes, size: int) -> None:
    """Write ``prefix`` then a hole up to ``size`` bytes, under a temporary name renamed into place."""
    temp = os.path.join(os.path.dirname(path), ".%s.partial" % os.path.basename(path))
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, prefix)
            os.ftruncate(fd, size)
            os.fchmod(fd, 0o644)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def make_sparse_weights(path: str, dtype: str = "BF16", max_shard_bytes: int = DEFAULT_SHARD_BYTES) -> Dict[str, Any]:
    """Give model directory ``path`` sparse shards for its config.json; see the module docstring.

    Returns ``changed``, ``path``, ``files`` (name, size), ``total_size``
    (tensor bytes), ``parameters``, ``tensors`` and ``message``.
    """
    if dtype not in DTYPE_BYTES:
        raise SparseWeightsError("dtype %r: one of %s" % (dtype, ", ".join(sorted(DTYPE_BYTES))))
    if max_shard_bytes <= 0:
        raise SparseWeightsError("max shard size must be positive, got %d" % max_shard_bytes)
    config_path = os.path.join(path, CONFIG_FILE)
    if not os.path.isfile(config_path):
        raise SparseWeightsError("%s: no %s; only a model directory with its config can be given weights" % (path, CONFIG_FILE))
    try:
        with open(config_path, "r", encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError) as exc:
        raise SparseWeightsError("%s: cannot read it: %s" % (config_path, exc))
    tensors = model_tensors(config, config_path)
    shards = plan_shards(tensors, dtype, max_shard_bytes)
    planned = {s["name"]: s["size"] for s in shards}
    index = _index(shards) if len(shards) > 1 else None
    result = {
        "changed": False,
        "path": path,
        "files": [{"name": s["name"], "size": s["size"]} for s in shards],
        "total_size": sum(s["data"] for s in shards),
        "parameters": sum(_elements(shape) for _n, shape in tensors),
        "tensors": len(tensors),
    }
    present = sorted(n for n in os.listdir(path) if n.endswith(WEIGHT_SUFFIXES) or n in INDEX_FILES)
    foreign = [n for n in present if not _ours(os.path.join(path, n))]
    if foreign:
        result["message"] = "%s holds weights of its own (%s): left alone" % (path, ", ".join(foreign[:3]))
        return result
    # Our files from another plan (another shard size or dtype): replaced.
    stale = [n for n in present if n not in planned and not (n == INDEX_FILE and index is not None)]
    complete = all(os.path.isfile(os.path.join(path, n)) and os.path.getsize(os.path.join(path, n)) == size for n, size in planned.items())
    if complete and not stale and (index is None or INDEX_FILE in present):
        result["message"] = "%s already holds its %d sparse shard(s)" % (path, len(shards))
        return result
    for name in stale:
        os.unlink(os.path.join(path, name))
    for shard in shards:
        _write_file(os.path.join(path, shard["name"]), struct.pack("<Q", len(shard["header"])) + shard["header"], shard["size"])
    if index is not None:
        raw = (json.dumps(index, indent=2) + "\n").encode("utf-8")
        _write_file(os.path.join(path, INDEX_FILE), raw, len(raw))
    result["changed"] = True
    result["message"] = "%s: wrote %d sparse shard(s), %d tensors, %d parameters, %d bytes of (hole) data" % (
        path,
        len(shards),
        len(tensors),
        result["parameters"],
        result["total_size"],
    )
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Write sparse safetensors shards for a model directory holding only config.json.")
    parser.add_argument("path", help="the model directory (with config.json)")
    parser.add_argument("--dtype", default="BF16", choices=sorted(DTYPE_BYTES), help="tensor dtype (default BF16)")
    parser.add_argument(
        "--max-shard-size", type=int, default=DEFAULT_SHARD_BYTES, help="bytes of tensor data per shard (default 5000000000)"
    )
    args = parser.parse_args(argv)
    try:
        result = make_sparse_weights(args.path, args.dtype, args.max_shard_size)
    except (SparseWeightsError, OSError) as exc:
        sys.stderr.write("sparse_weights: %s\n" % exc)
        return 1
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
