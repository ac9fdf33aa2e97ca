# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""Profile a Hugging Face checkpoint directory for serving, from its files alone.

The failures that cost the most in the field (no memory for the KV cache, a
context longer than the cache, MTP weights the loader does not expect) are all
decidable from ``config.json``, the safetensors index or headers and
``generation_config.json``. This module reads exactly those: for weights it
reads the 8-byte header length and the JSON header of each ``*.safetensors``
file (``_safetensors.py``) and never a byte of tensor data, so a 700 GB
checkpoint profiles in milliseconds.

The rules mirror vLLM (file and commit named in docs/memory.md):

* context: the smallest of vLLM's length keys, then RoPE scaling as
  ``_get_and_verify_max_len`` applies it (see ``_effective_context``);
* KV bytes per token and layer: ``2 x kv_heads x head_dim x dtype_bytes``,
  MLA ``(kv_lora_rank + qk_rope_head_dim) x dtype_bytes`` (kv_cache_interface.py);
* sliding-window layers are listed apart, because vLLM budgets them by the
  window, not by the sequence (``SlidingWindowSpec.max_memory_usage_bytes``).

Everything returned is JSON-native so the profile can travel through Ansible.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ansible_collections.npu.fleet.plugins.module_utils._safetensors import ModelProfileError, _read_header

__all__ = [
    "DTYPE_BYTES",
    "ModelProfileError",
    "dtype_bytes",
    "profile_model",
]

CONFIG_FILE = "config.json"
GENERATION_CONFIG_FILE = "generation_config.json"
SAFETENSORS_INDEX_FILE = "model.safetensors.index.json"
PYTORCH_INDEX_FILE = "pytorch_model.bin.index.json"

# Keys that hold the language model inside multimodal / OCR wrappers.
TEXT_CONFIG_KEYS = ("text_config", "llm_config", "language_config")

# vLLM takes the smallest of these as the model's native length
# (vllm/config/model.py, _get_and_verify_max_len, possible_keys).
CONTEXT_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "seq_length",
    "model_max_length",
    "max_target_positions",
    "max_sequence_length",
    "max_seq_length",
    "seq_len",
)
# vLLM's fallback when none of CONTEXT_KEYS is present.
DEFAULT_CONTEXT = 2048

DTYPE_BYTES = {
    "float64": 8,
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "float8_e4m3fn": 1,
    "float8_e5m2": 1,
    "fp8": 1,
    "int8": 1,
}
_DTYPE_ALIASES = {
    "double": "float64",
    "float": "float32",
    "fp32": "float32",
    "half": "float16",
    "fp16": "float16",
    "bf16": "bfloat16",
}

# Decoder-layer weight names, with the prefixes seen in text-only checkpoints
# (model.layers.N.), in new-style multimodal wrappers (model.language_model.layers.N.,
# e.g. GLM-OCR) and in old-style ones (language_model.model.layers.N., e.g. LLaVA).
# Vision towers (model.visual.blocks.N, vision_tower...layers.N) deliberately do not match.
_LAYER_NAME = re.compile(r"^((?:model\.language_model\.|language_model\.model\.|model\.)layers\.)(\d+)\.")

_QUANT_BITS = {"fp8": 8, "mxfp4": 4, "nvfp4": 4, "bitsandbytes_8bit": 8}


# --------------------------------------------------------------------------- files


def _read_json(path: str, required: bool = True) -> Optional[Dict[str, Any]]:
    """Load a JSON object; name the file and the position of any syntax error."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        if not required:
            return None
        raise ModelProfileError("%s: file not found" % path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelProfileError("%s: cannot read: %s" % (path, exc))
    try:
        data = json.loads(text)
    except ValueError as exc:
        lineno = getattr(exc, "lineno", "?")
        colno = getattr(exc, "colno", "?")
        msg = getattr(exc, "msg", str(exc))
        raise ModelProfileError("%s: invalid JSON at line %s column %s: %s" % (path, lineno, colno, msg))
    if not isinstance(data, dict):
        raise ModelProfileError("%s: expected a JSON object, found %s" % (path, type(data).__name__))
    return data


def _weights(path: str, warnings: List[str]) -> Dict[str, Any]:
    """Find the weights: exact bytes, stored element count and tensor names.

    Preference: the safetensors index's ``metadata.total_size`` (what the
    publisher computed), else the sum of tensor sizes from each header. Shard
    headers are still read when present, for the parameter count and to catch
    missing or truncated shards.
    """
    result = {"bytes": None, "bytes_source": None, "elements": None, "names": [], "files": 0, "format": None}
    index_path = os.path.join(path, SAFETENSORS_INDEX_FILE)
    index = _read_json(index_path, required=False)
    shards = sorted(f for f in os.listdir(path) if f.endswith(".safetensors"))
    complete = True
    if index is not None:
        weight_map = index.get("weight_map")
        if not isinstance(weight_map, dict):
            raise ModelProfileError("%s: missing required field 'weight_map'" % index_path)
        result["names"] = list(weight_map)
        result["format"] = "safetensors"
        listed = sorted(set(str(v) for v in weight_map.values()))
        shards = [f for f in listed if os.path.isfile(os.path.join(path, f))]
        complete = len(shards) == len(listed)
        if not shards:
            warnings.append(
                "none of the %d shard file(s) named by %s is in the directory: only the configuration "
                "was copied, the model cannot be served from here." % (len(listed), SAFETENSORS_INDEX_FILE)
            )
        elif not complete:
            missing = [f for f in listed if f not in shards]
            warnings.append(
                "%s names %d shard file(s) that are not in the directory (%s): the checkpoint is "
                "incomplete and will not load." % (SAFETENSORS_INDEX_FILE, len(missing), ", ".join(missing[:5]))
            )
        total = (index.get("metadata") or {}).get("total_size")
        if isinstance(total, (int, float)) and not isinstance(total, bool) and total > 0:
            result["bytes"] = int(total)
            result["bytes_source"] = "%s metadata.total_size" % SAFETENSORS_INDEX_FILE
    if not shards:
        if index is None:
            _pytorch_weights(path, result, warnings)
        return result
    summed, elements = 0, 0
    names = []  # type: List[str]
    for shard in shards:
        header, _length, (shard_bytes, shard_elements, _end) = _read_header(os.path.join(path, shard))
        summed += shard_bytes
        elements += shard_elements
        if index is None:
            names.extend(k for k in header if k != "__metadata__")
    result["format"] = "safetensors"
    result["files"] = len(shards)
    if complete:
        result["elements"] = elements
        if result["bytes"] is None:
            result["bytes"] = summed
            result["bytes_source"] = "sum of tensor sizes in %d safetensors header(s)" % len(shards)
        elif summed != result["bytes"]:
            warnings.append(
                "%s metadata.total_size is %s bytes but the shard headers add up to %d." % (SAFETENSORS_INDEX_FILE, result["bytes"], summed)
            )
    if index is None:
        result["names"] = names
    return result


def _pytorch_weights(path: str, result: Dict[str, Any], warnings: List[str]) -> None:
    """Fallback for pickle checkpoints: index total_size, else file sizes."""
    index = _read_json(os.path.join(path, PYTORCH_INDEX_FILE), required=False)
    bins = sorted(f for f in os.listdir(path) if f.endswith(".bin") and f.startswith("pytorch_model"))
    if index is not None:
        result["names"] = list((index.get("weight_map") or {}))
        total = (index.get("metadata") or {}).get("total_size")
        if isinstance(total, (int, float)) and total > 0:
            result.update({"bytes": int(total), "bytes_source": "%s metadata.total_size" % PYTORCH_INDEX_FILE})
    if bins and result["bytes"] is None:
        result["bytes"] = sum(os.path.getsize(os.path.join(path, f)) for f in bins)
        result["bytes_source"] = "size of %d pytorch_model*.bin file(s) (pickle, approximate)" % len(bins)
    if bins or index is not None:
        result["format"] = "pytorch"
        result["files"] = len(bins)
        warnings.append(
            "weights are pickle (.bin) files, not safetensors: sizes are approximate and the layer names "
            "could not be checked unless an index lists them."
        )


# --------------------------------------------------------------------------- config fields


def _text_config(config: Dict[str, Any]) -> Tuple[Dict[str, Any], Optional[str]]:
    """Return the language-model part of the config and the key it sits under.

    VL and OCR wrappers (Qwen3-VL, GLM-OCR, InternVL, Gemma 3) keep the decoder
    under one of TEXT_CONFIG_KEYS; the memory arithmetic is about that decoder.
    """
    for key in TEXT_CONFIG_KEYS:
        sub = config.get(key)
        if isinstance(sub, dict) and sub:
            merged = dict(sub)
            # Wrappers sometimes keep dtype / quantization only at the top level.
            for inherited in ("torch_dtype", "dtype", "quantization_config", "tie_word_embeddings"):
                if inherited not in merged and inherited in config:
                    merged[inherited] = config[inherited]
            return merged, key
    return config, None


def _first(source: Dict[str, Any], keys: Iterable[str]) -> Tuple[Any, Optional[str]]:
    """First non-null value among keys, with the key it came from."""
    for key in keys:
        value = source.get(key)
        if value is not None:
            return value, key
    return None, None


def _value(source: Dict[str, Any], keys: Iterable[str]) -> Any:
    """First non-null value among keys."""
    return _first(source, keys)[0]


def _positive_int(source: Dict[str, Any], keys: Tuple[str, ...], where: str, required: bool = True) -> Optional[int]:
    """Read a positive integer under any of several names, or fail naming the file."""
    value, key = _first(source, keys)
    if value is None:
        if not required:
            return None
        also = " (nor %s)" % ", ".join(keys[1:]) if len(keys) > 1 else ""
        raise ModelProfileError("%s: missing required field '%s'%s" % (where, keys[0], also))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value <= 0:
        raise ModelProfileError("%s: field '%s' must be a positive integer, found %r" % (where, key, value))
    return int(value)


def _normalise_dtype(name: Any) -> Optional[str]:
    """Map torch / HF spellings ('torch.bfloat16', 'bf16', 'half') to one name."""
    if not isinstance(name, str) or not name:
        return None
    key = name.strip().lower()
    if key.startswith("torch."):
        key = key[len("torch.") :]
    return _DTYPE_ALIASES.get(key, key)


def dtype_bytes(name: str) -> int:
    """Bytes per element of a serving dtype; ValueError for an unknown one."""
    key = _normalise_dtype(name)
    if key not in DTYPE_BYTES:
        raise ValueError("unknown dtype %r; expected one of %s" % (name, ", ".join(sorted(DTYPE_BYTES))))
    return DTYPE_BYTES[key]


def _serving_dtype(text: Dict[str, Any], override: Optional[str]) -> Tuple[str, Optional[str], str]:
    """(serving dtype, checkpoint dtype, how the serving dtype was chosen).

    Mirrors vLLM's ``--dtype auto``: a 16-bit checkpoint is served as stored; a
    float32 or unlabelled one is served in 16 bit (bfloat16 assumed; the 300I DUO
    uses float16, same size).
    """
    stored = _normalise_dtype(_first(text, ("torch_dtype", "dtype"))[0])
    if override and _normalise_dtype(override) != "auto":
        chosen = _normalise_dtype(override)
        dtype_bytes(chosen)  # validate
        return chosen, stored, "override"
    if stored in ("float16", "bfloat16"):
        return stored, stored, "config"
    return "bfloat16", stored, "default: %s checkpoint served in 16 bit (vLLM dtype=auto)" % (stored or "unlabelled")


def _rope(text: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The RoPE scaling block, normalised the way vLLM's patch_rope_scaling does.

    ``rope_scaling`` (transformers 4) and ``rope_parameters`` (transformers 5)
    are both read; 'su' is an old name for 'longrope' and 'mrope' carries no
    length scaling.
    """
    rope = _value(text, ("rope_scaling", "rope_parameters"))
    if not isinstance(rope, dict) or not rope:
        return None
    if "rope_type" not in rope and "type" not in rope and all(isinstance(v, dict) for v in rope.values()):
        # Per-layer-type parameters (Gemma 4); the full-attention entry governs the length.
        rope = rope.get("full_attention") or next(iter(rope.values()))
    rope_type = rope.get("rope_type") or rope.get("type") or "default"
    rope_type = {"su": "longrope", "mrope": "default"}.get(rope_type, rope_type)
    factor = rope.get("factor")
    return {
        "type": rope_type,
        "factor": factor if isinstance(factor, (int, float)) and not isinstance(factor, bool) else None,
        "original_max_position_embeddings": rope.get("original_max_position_embeddings"),
    }


def _effective_context(
    text: Dict[str, Any], gemma3: bool, rope: Optional[Dict[str, Any]], where: str, warnings: List[str]
) -> Tuple[Optional[int], int, int, str]:
    """(native length, effective context, default max_model_len, rule applied).

    vLLM's rule (vllm/config/model.py ``_get_and_verify_max_len``): take the
    smallest of CONTEXT_KEYS; unless the model is Gemma 3 or the RoPE type is
    su/longrope/llama3, multiply by the RoPE ``factor`` (default 1), and for
    ``yarn`` multiply ``original_max_position_embeddings`` instead. So
    DeepSeek-V3 (yarn, 40 x 4096) = 163840 and gpt-oss (yarn, 32 x 4096) = 131072,
    both equal to their max_position_embeddings; llama3 factors are already
    folded into max_position_embeddings (131072 for Llama 3.1) and are not
    applied again; linear/dynamic multiply max_position_embeddings. Longrope
    (Phi-3) accepts up to the derived length but defaults to the top-level
    ``original_max_position_embeddings`` when --max-model-len is not given.
    """
    present = [(text[k], k) for k in CONTEXT_KEYS if isinstance(text.get(k), int) and not isinstance(text.get(k), bool)]
    if present:
        native, key = min(present)
    else:
        native, key = None, None
        warnings.append("%s: none of %s is set; vLLM assumes %d tokens." % (where, ", ".join(CONTEXT_KEYS[:4]), DEFAULT_CONTEXT))
    derived = float(native if native is not None else DEFAULT_CONTEXT)
    rule = "%s=%s" % (key, native) if key else "vLLM default %d" % DEFAULT_CONTEXT
    default = None
    if rope is not None and gemma3:
        rule += "; Gemma 3 rope_scaling is not applied by vLLM"
    elif rope is not None:
        rope_type = rope["type"]
        if rope_type not in ("longrope", "llama3"):
            factor = rope["factor"] if rope["factor"] is not None else 1.0
            if rope_type == "yarn":
                original = rope["original_max_position_embeddings"]
                if not isinstance(original, int):
                    raise ModelProfileError("%s: rope_scaling type yarn lacks 'original_max_position_embeddings'" % where)
                derived = float(original)
                rule = "yarn: original_max_position_embeddings=%d" % original
            if factor != 1.0:
                derived *= factor
                rule += " x factor %g" % factor
        elif rope_type == "longrope" and isinstance(text.get("original_max_position_embeddings"), int):
            default = text["original_max_position_embeddings"]
            rule += "; longrope: vLLM defaults to original_max_position_embeddings=%d" % default
        else:
            rule += "; %s scaling already included" % rope_type
    effective = int(derived)
    return native, effective, default if default is not None else effective, rule


def _layer_kinds(text: Dict[str, Any], num_layers: int, model_type: str) -> Tuple[Dict[str, int], Optional[int], str]:
    """Count layers per attention kind and return the sliding window in effect.

    Sources, in order: ``layer_types`` (gpt-oss, Gemma 3n/4, Qwen3-Next);
    ``sliding_window_pattern`` (Gemma 3: every pattern-th layer is global);
    Gemma 2 alternation; then a single ``sliding_window`` that applies to all
    layers unless ``use_sliding_window`` is false (Qwen2/2.5 ship a window of
    131072 that is not used) - with Qwen2's ``max_window_layers`` honoured.
    """
    window = text.get("sliding_window")
    window = window if isinstance(window, int) and not isinstance(window, bool) and window > 0 else None
    types = text.get("layer_types")
    if isinstance(types, list) and types:
        counts = {}  # type: Dict[str, int]
        for kind in types[:num_layers]:
            kind = {"sliding_window": "sliding_attention", "chunked_attention": "sliding_attention"}.get(kind, kind)
            counts[kind] = counts.get(kind, 0) + 1
        if counts.get("sliding_attention") and window is None:
            counts["full_attention"] = counts.get("full_attention", 0) + counts.pop("sliding_attention")
        return counts, window if counts.get("sliding_attention") else None, "layer_types"
    if window is None or text.get("use_sliding_window") is False:
        return {"full_attention": num_layers}, None, "no sliding window in effect"
    pattern = text.get("sliding_window_pattern")
    if isinstance(pattern, int) and pattern > 1:
        full = num_layers // pattern
        return {"full_attention": full, "sliding_attention": num_layers - full}, window, "sliding_window_pattern=%d" % pattern
    if model_type.startswith("gemma2"):
        full = num_layers // 2
        return {"full_attention": full, "sliding_attention": num_layers - full}, window, "gemma2 alternation"
    if text.get("use_sliding_window") is True and isinstance(text.get("max_window_layers"), int):
        full = min(num_layers, text["max_window_layers"])
        if full >= num_layers:
            return {"full_attention": num_layers}, None, "max_window_layers covers all layers"
        return {"full_attention": full, "sliding_attention": num_layers - full}, window, "max_window_layers=%d" % full
    return {"sliding_attention": num_layers}, window, "sliding_window on all layers"


def _attention(text: Dict[str, Any], heads: int, hidden: int, where: str) -> Dict[str, Any]:
    """Attention kind and the per-layer geometry of its KV cache."""
    kv_lora_rank = text.get("kv_lora_rank")
    if isinstance(kv_lora_rank, int) and kv_lora_rank > 0:
        rope_dim = _positive_int(text, ("qk_rope_head_dim",), where)
        nope = text.get("qk_nope_head_dim") or 0
        return {
            "attention": "mla",
            "num_key_value_heads": 1,
            "head_dim": int(nope) + rope_dim,
            "kv_lora_rank": kv_lora_rank,
            "qk_rope_head_dim": rope_dim,
            "qk_nope_head_dim": int(nope),
            "v_head_dim": text.get("v_head_dim"),
            "kv_elements_per_token_layer": kv_lora_rank + rope_dim,
        }
    if text.get("multi_query") is True:
        kv_heads = 1
    else:
        kv_heads = (
            _positive_int(text, ("num_key_value_heads", "num_kv_heads", "n_head_kv", "multi_query_group_num"), where, required=False)
            or heads
        )
    head_dim = _positive_int(text, ("head_dim", "kv_channels"), where, required=False)
    if head_dim is None:
        if hidden % heads:
            raise ModelProfileError(
                "%s: no 'head_dim' and hidden_size %d is not divisible by num_attention_heads %d" % (where, hidden, heads)
            )
        head_dim = hidden // heads
    if kv_heads == 1 and heads > 1:
        kind = "mqa"
    elif kv_heads < heads:
        kind = "gqa"
    else:
        kind = "mha"
    return {
        "attention": kind,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "kv_elements_per_token_layer": 2 * kv_heads * head_dim,
    }


def _moe(text: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Experts, active experts per token and shared experts, where the config has them."""
    experts = _value(text, ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts"))
    if not isinstance(experts, int) or experts <= 1:
        return None
    active = _value(text, ("num_experts_per_tok", "experts_per_token", "num_experts_per_token", "moe_topk"))
    shared = _value(text, ("n_shared_experts", "num_shared_experts"))
    if shared is None and isinstance(text.get("shared_expert_intermediate_size"), int) and text["shared_expert_intermediate_size"] > 0:
        shared = 1
    return {
        "experts": experts,
        "active_experts": active if isinstance(active, int) else None,
        "shared_experts": shared if isinstance(shared, int) else None,
        "expert_intermediate_size": _first(text, ("moe_intermediate_size", "intermediate_size"))[0],
        "dense_layers": text.get("first_k_dense_replace") if isinstance(text.get("first_k_dense_replace"), int) else 0,
    }


def _quantization(config: Dict[str, Any], text: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Pre-quantisation of the weights: method and bits where the config states them."""
    qcfg = _value(text, ("quantization_config", "compression_config"))
    if not isinstance(qcfg, dict):
        qcfg = config.get("quantization_config") if isinstance(config.get("quantization_config"), dict) else None
    if qcfg is None and isinstance(config.get("quantization"), dict):
        qcfg = dict(config["quantization"], quant_method="mlx")
    if qcfg is None:
        return None
    method = qcfg.get("quant_method") or qcfg.get("format") or "unknown"
    bits = _value(qcfg, ("bits", "w_bit", "weight_bits", "num_bits"))
    if bits is None:
        if qcfg.get("load_in_4bit"):
            bits = 4
        elif qcfg.get("load_in_8bit"):
            bits = 8
        else:
            bits = _QUANT_BITS.get(str(method).lower())
    return {"method": str(method), "bits": bits if isinstance(bits, (int, float)) else None}


def _extra_layers(names: Iterable[str], num_layers: int) -> Tuple[List[int], Optional[str], List[int]]:
    """(layer indices >= num_hidden_layers, the name prefix they use, indices < num_layers seen)."""
    extra = set()
    seen = set()
    prefix = None
    for name in names:
        match = _LAYER_NAME.match(name)
        if not match:
            continue
        index = int(match.group(2))
        if index >= num_layers:
            extra.add(index)
            prefix = prefix or match.group(1)
        else:
            seen.add(index)
    return sorted(extra), prefix, sorted(seen)


def _estimate_parameters(
    text: Dict[str, Any], geo: Dict[str, Any], layers: int, hidden: int, heads: int, vocab: Optional[int], moe: Optional[Dict[str, Any]]
) -> int:
    """Language-model parameters from the config shapes (no vision tower, norms ignored).

    Used only when no safetensors header can be read; good to a few percent for
    dense and MoE decoders, which is enough to size weights before a download.
    """
    head_dim = geo["head_dim"]
    if geo["attention"] == "mla":
        rope, nope = geo["qk_rope_head_dim"], geo["qk_nope_head_dim"]
        v_dim = geo.get("v_head_dim") or head_dim
        q_rank = text.get("q_lora_rank")
        q = hidden * q_rank + q_rank * heads * (nope + rope) if q_rank else hidden * heads * (nope + rope)
        kv = hidden * (geo["kv_lora_rank"] + rope) + geo["kv_lora_rank"] * heads * (nope + v_dim)
        attn = q + kv + heads * v_dim * hidden
    else:
        attn = hidden * heads * head_dim * 2 + 2 * hidden * geo["num_key_value_heads"] * head_dim
    inter = text.get("intermediate_size") or 4 * hidden
    dense_mlp = 3 * hidden * inter
    if moe:
        expert_inter = moe["expert_intermediate_size"] or inter
        shared_inter = text.get("shared_expert_intermediate_size") or expert_inter * (moe["shared_experts"] or 0)
        moe_mlp = moe["experts"] * 3 * hidden * expert_inter + 3 * hidden * shared_inter + hidden * moe["experts"]
        dense_layers = min(layers, moe["dense_layers"] or 0)
        mlp_total = dense_layers * dense_mlp + (layers - dense_layers) * moe_mlp
    else:
        mlp_total = layers * dense_mlp
    embeddings = (vocab or 0) * hidden * (1 if text.get("tie_word_embeddings") else 2)
    return int(layers * attn + mlp_total + embeddings)


def _generation_defaults(path: str) -> Optional[Dict[str, Any]]:
    """Sampling defaults vLLM applies from generation_config.json (``--generation-config auto``)."""
    gen = _read_json(os.path.join(path, GENERATION_CONFIG_FILE), required=False)
    if gen is None:
        return None
    keys = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "max_new_tokens", "do_sample", "eos_token_id")
    return dict((k, gen[k]) for k in keys if k in gen)


# --------------------------------------------------------------------------- profile


def profile_model(path: str, dtype: Optional[str] = None) -> Dict[str, Any]:
    """Profile the checkpoint in directory ``path``; see the module docstring.

    ``dtype`` overrides the serving dtype (``--dtype`` of vLLM); the KV cache
    is assumed to use the same dtype (vLLM ``kv_cache_dtype=auto``).
    Raises ModelProfileError naming the file for every unreadable input.
    """
    if not os.path.isdir(path):
        raise ModelProfileError("%s: not a directory" % path)
    config_path = os.path.join(path, CONFIG_FILE)
    if not os.path.isfile(config_path):
        raise ModelProfileError("%s: no %s in the model directory" % (config_path, CONFIG_FILE))
    config = _read_json(config_path)
    text, text_key = _text_config(config)
    where = "%s%s" % (config_path, " (%s)" % text_key if text_key else "")
    warnings = []  # type: List[str]

    layers = _positive_int(text, ("num_hidden_layers", "num_layers", "n_layer"), where)
    heads = _positive_int(text, ("num_attention_heads", "n_head", "num_heads"), where)
    hidden = _positive_int(text, ("hidden_size", "n_embd", "d_model"), where)
    vocab = _positive_int(text, ("vocab_size", "padded_vocab_size"), where, required=False)
    if vocab is None:
        vocab = _positive_int(config, ("vocab_size",), config_path, required=False)
    architectures = config.get("architectures") or text.get("architectures") or []
    architecture = architectures[0] if isinstance(architectures, list) and architectures else None
    model_type = str(config.get("model_type") or text.get("model_type") or "")
    text_model_type = str(text.get("model_type") or model_type)

    serve_dtype, stored_dtype, dtype_source = _serving_dtype(text, dtype)
    geo = _attention(text, heads, hidden, where)
    rope = _rope(text)
    gemma3 = "gemma3" in text_model_type or "gemma3" in model_type
    native, effective, default_len, context_rule = _effective_context(text, gemma3, rope, where, warnings)
    kinds, window, window_source = _layer_kinds(text, layers, text_model_type)
    loops = text.get("num_loops") if isinstance(text.get("num_loops"), int) and text.get("num_loops") > 1 else 1
    moe = _moe(text)
    quant = _quantization(config, text)
    weights = _weights(path, warnings)
    extra, extra_prefix, seen = _extra_layers(weights["names"], layers)

    per_layer = geo["kv_elements_per_token_layer"] * DTYPE_BYTES[serve_dtype]
    full_layers = kinds.get("full_attention", 0) * loops
    sliding_layers = kinds.get("sliding_attention", 0) * loops
    linear_layers = kinds.get("linear_attention", 0)
    mtp, mtp_source = _mtp_layers(text, extra)

    if weights["elements"] is not None:
        parameters, parameters_source = weights["elements"], "safetensors headers (stored elements)"
    else:
        parameters = _estimate_parameters(text, geo, layers, hidden, heads, vocab, moe)
        parameters_source = "estimated from config (language model only)"

    _warn(
        warnings,
        text,
        layers,
        loops,
        window,
        sliding_layers,
        linear_layers,
        kinds,
        quant,
        extra,
        extra_prefix,
        seen,
        mtp,
        weights,
        dtype_source,
        serve_dtype,
    )

    profile = {
        "path": path,
        "architecture": architecture,
        "architectures": architectures if isinstance(architectures, list) else [],
        "model_type": model_type,
        "text_model_type": text_model_type,
        "text_config_used": text_key is not None,
        "text_config_key": text_key,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": geo["num_key_value_heads"],
        "head_dim": geo["head_dim"],
        "hidden_size": hidden,
        "intermediate_size": text.get("intermediate_size"),
        "vocab_size": vocab,
        "tie_word_embeddings": bool(text.get("tie_word_embeddings", False)),
        "max_position_embeddings": native,
        "rope_scaling": rope,
        "effective_context": effective,
        "default_max_model_len": default_len,
        "context_rule": context_rule,
        "dtype": serve_dtype,
        "dtype_bytes": DTYPE_BYTES[serve_dtype],
        "config_dtype": stored_dtype,
        "dtype_source": dtype_source,
        "attention": geo["attention"],
        "kv_lora_rank": geo.get("kv_lora_rank"),
        "qk_rope_head_dim": geo.get("qk_rope_head_dim"),
        "sliding_window": window,
        "sliding_window_source": window_source,
        "layer_types": kinds,
        "num_loops": loops,
        "moe": moe,
        "quantization": quant,
        "weights_format": weights["format"],
        "weights_files": weights["files"],
        "weights_bytes": weights["bytes"],
        "weights_bytes_source": weights["bytes_source"],
        "parameters": parameters,
        "parameters_source": parameters_source,
        "kv_cache_bytes_per_token_per_layer": per_layer,
        "kv_cache_full_layers": full_layers,
        "kv_cache_sliding_layers": sliding_layers,
        "kv_cache_bytes_per_token": per_layer * full_layers,
        "kv_cache_bytes_per_token_all_layers": per_layer * (full_layers + sliding_layers),
        "extra_layers": extra,
        "extra_layers_prefix": extra_prefix,
        "mtp_layers": mtp,
        "mtp_layers_source": mtp_source,
        "generation_defaults": _generation_defaults(path),
        "warnings": warnings,
    }
    return profile


def _mtp_layers(text: Dict[str, Any], extra: List[int]) -> Tuple[int, Optional[str]]:
    """MTP (multi-token prediction) layers: from the config, else from the weights."""
    for key in ("num_nextn_predict_layers", "mtp_num_hidden_layers", "num_mtp_layers"):
        value = text.get(key)
        if isinstance(value, int) and value > 0:
            return value, "config: %s" % key
    if extra:
        return len(extra), "weights"
    return 0, None


def _warn(
    warnings: List[str],
    text: Dict[str, Any],
    layers: int,
    loops: int,
    window: Optional[int],
    sliding: int,
    linear: int,
    kinds: Dict[str, int],
    quant: Optional[Dict[str, Any]],
    extra: List[int],
    extra_prefix: Optional[str],
    seen: List[int],
    mtp: int,
    weights: Dict[str, Any],
    dtype_source: str,
    serve_dtype: str,
) -> None:
    """Turn what the profile found into sentences an operator can act on."""
    if extra:
        declared = text.get("num_nextn_predict_layers")
        first = "%s%d" % (extra_prefix or "model.layers.", extra[0])
        if isinstance(declared, int) and declared >= len(extra):
            warnings.append(
                "weights contain %d layer(s) beyond num_hidden_layers=%d (%s; MTP, num_nextn_predict_layers=%d): vLLM's "
                "DeepSeek-V2/V3 and GLM-4.5 classes skip them, but a class without that skip or the Transformers backend "
                "fails with \"There is no module or parameter named '%s'\"."
                % (len(extra), layers, ", ".join(str(i) for i in extra), declared, first)
            )
        else:
            warnings.append(
                "weights contain layer(s) %s beyond num_hidden_layers=%d (MTP weights?) while the config declares "
                "num_nextn_predict_layers=%s: vLLM's generic loading path cannot load them and fails with "
                "\"There is no module or parameter named '%s'\"; serve with a loader that skips them or with Transformers."
                % (", ".join(str(i) for i in extra), layers, declared if declared is not None else "(unset)", first)
            )
    if seen and len(seen) < layers:
        missing = sorted(set(range(layers)) - set(seen))
        warnings.append(
            "config.json says num_hidden_layers=%d but the weights name no tensors for layer(s) %s." % (layers, _ranges(missing))
        )
    if window:
        warnings.append(
            "sliding window of %d tokens on %d of %d layer(s)%s: vLLM budgets those layers by the window "
            "(SlidingWindowSpec), not by the sequence length." % (window, sliding, layers * loops, " (layer slots)" if loops > 1 else "")
        )
    if linear:
        warnings.append(
            "%d linear-attention layer(s) keep a fixed-size state per sequence, not a per-token KV cache; "
            "that state is not included in the KV arithmetic." % linear
        )
    if loops > 1:
        warnings.append(
            "looped transformer (num_loops=%d): each of the %d layers runs %d times, so the KV cache holds "
            "%d layer slots." % (loops, layers, loops, layers * loops)
        )
    if quant:
        warnings.append(
            "weights are pre-quantized (%s%s): the serving image must support this method on Ascend."
            % (quant["method"], ", %s-bit" % quant["bits"] if quant["bits"] else "")
        )
    if weights["bytes"] is None:
        warnings.append("no weight files found: weights_bytes is unknown and memory fits use the parameter estimate.")
    if not dtype_source.startswith(("config", "override")):
        warnings.append("serving dtype assumed %s: %s." % (serve_dtype, dtype_source))
    other = sorted(k for k in kinds if k not in ("full_attention", "sliding_attention", "linear_attention"))
    if other:
        warnings.append("unrecognised layer_types %s are counted as neither full nor sliding attention." % ", ".join(other))
    if isinstance(text.get("index_topk"), int):
        warnings.append(
            "sparse attention (DSA, index_topk=%d): its indexer keeps an extra per-token key cache that is "
            "not included in the KV arithmetic." % text["index_topk"]
        )
    if mtp and not extra:
        warnings.append(
            "config declares %d MTP layer(s); speculative decoding with MTP adds their KV cache on top of the figures here." % mtp
        )


def _ranges(indices: List[int]) -> str:
    """Compact '3-7, 9' form of a sorted index list."""
    parts = []
    i = 0
    while i < len(indices):
        j = i
        while j + 1 < len(indices) and indices[j + 1] == indices[j] + 1:
            j += 1
        parts.append(str(indices[i]) if i == j else "%d-%d" % (indices[i], indices[j]))
        i = j + 1
    return ", ".join(parts)
