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
  window, not by the sequence (``SlidingWindowSpec.max_memory_usage_bytes``);
* hybrids: only the layers the config names as attention hold KV; linear-attention,
  Mamba and short-convolution layers hold a state per sequence, shaped as vLLM's
  ``MambaStateShapeCalculator`` shapes it (``_layer_map``, ``state_shapes``).
  What the profiler cannot place is said in a warning and counted as full attention.

Everything returned is JSON-native so the profile can travel through Ansible.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ansible_collections.npu.fleet.plugins.module_utils._safetensors import ModelProfileError, _read_header

__all__ = [
    "CheckpointDirectory",
    "DTYPE_BYTES",
    "ModelProfileError",
    "dtype_bytes",
    "parse_json_object",
    "profile_files",
    "profile_model",
    "state_shapes",
    "state_tensor_bytes",
]

CONFIG_FILE = "config.json"
GENERATION_CONFIG_FILE = "generation_config.json"
SAFETENSORS_INDEX_FILE = "model.safetensors.index.json"
PYTORCH_INDEX_FILE = "pytorch_model.bin.index.json"

# Keys that hold the language model inside multimodal / OCR wrappers.
TEXT_CONFIG_KEYS = ("text_config", "llm_config", "language_config")
# Where multimodal wrappers keep their vision tower's settings (LLaVA, Qwen-VL, GLM-4V / GLM-OCR: vision_config;
# InternVL-style: vision_tower_config).
VISION_CONFIG_KEYS = ("vision_config", "vision_tower_config")

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
# More decoder layers than any published model has (DeepSeek-V3 61, Kimi K2 61, GLM-5 78, Llama 3.1 405B 126):
# a larger num_hidden_layers is a corrupt or wrong config.json, and the KV arithmetic would quietly scale with it.
MAX_LAYERS = 1000

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
    return parse_json_object(path, text)


def parse_json_object(where: str, text: str) -> Dict[str, Any]:
    """Parse the text of a JSON file that must hold an object; errors name ``where`` and the position."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        lineno = getattr(exc, "lineno", "?")
        colno = getattr(exc, "colno", "?")
        msg = getattr(exc, "msg", str(exc))
        raise ModelProfileError("%s: invalid JSON at line %s column %s: %s" % (where, lineno, colno, msg))
    except RecursionError:
        raise ModelProfileError("%s: JSON nested too deeply to read (a corrupt or hostile file); replace it with the published one" % where)
    if not isinstance(data, dict):
        raise ModelProfileError("%s: expected a JSON object, found %s" % (where, type(data).__name__))
    return data


class CheckpointDirectory(object):
    """The files of a checkpoint directory on this host, as the profile reads them.

    The profile never opens a file itself: it asks a checkpoint object for file
    names, sizes, JSON files and safetensors headers. This one reads a
    directory; ``_hub_profile`` gives the same answers from a model hub's file
    listing and HTTP range reads, so both build the profile with the same rules.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def where(self, name: str) -> str:
        """How errors and warnings name file ``name`` of the checkpoint."""
        return os.path.join(self.path, name)

    def names(self) -> List[str]:
        """Names of the files at the top of the checkpoint."""
        return os.listdir(self.path)

    def has(self, name: str) -> bool:
        return os.path.isfile(self.where(name))

    def size(self, name: str) -> int:
        return os.path.getsize(self.where(name))

    def read_json(self, name: str, required: bool = True) -> Optional[Dict[str, Any]]:
        return _read_json(self.where(name), required)

    def header(self, name: str) -> Tuple[Dict[str, Any], int, Tuple[int, int, int]]:
        """(header, header length, (data bytes, elements, end of data)) of one safetensors file."""
        return _read_header(self.where(name))


def _weights(files: CheckpointDirectory, warnings: List[str]) -> Dict[str, Any]:
    """Find the weights: exact bytes, stored element count and tensor names.

    Preference: the safetensors index's ``metadata.total_size`` (what the
    publisher computed), else the sum of tensor sizes from each header. Shard
    headers are still read when present, for the parameter count and to catch
    missing or truncated shards.
    """
    result = {"bytes": None, "bytes_source": None, "elements": None, "names": [], "files": 0, "format": None}
    index_path = files.where(SAFETENSORS_INDEX_FILE)
    index = files.read_json(SAFETENSORS_INDEX_FILE, required=False)
    shards = sorted(f for f in files.names() if f.endswith(".safetensors"))
    complete = True
    if index is not None:
        weight_map = index.get("weight_map")
        if not isinstance(weight_map, dict):
            raise ModelProfileError("%s: missing required field 'weight_map'" % index_path)
        result["names"] = list(weight_map)
        result["format"] = "safetensors"
        listed = sorted(set(str(v) for v in weight_map.values()))
        shards = [f for f in listed if files.has(f)]
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
            _pytorch_weights(files, result, warnings)
        return result
    summed, elements = 0, 0
    names = []  # type: List[str]
    for shard in shards:
        header, _length, (shard_bytes, shard_elements, _end) = files.header(shard)
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


def _pytorch_weights(files: CheckpointDirectory, result: Dict[str, Any], warnings: List[str]) -> None:
    """Fallback for pickle checkpoints: index total_size, else file sizes."""
    index = files.read_json(PYTORCH_INDEX_FILE, required=False)
    bins = sorted(f for f in files.names() if f.endswith(".bin") and f.startswith("pytorch_model"))
    if index is not None:
        result["names"] = list((index.get("weight_map") or {}))
        total = (index.get("metadata") or {}).get("total_size")
        if isinstance(total, (int, float)) and total > 0:
            result.update({"bytes": int(total), "bytes_source": "%s metadata.total_size" % PYTORCH_INDEX_FILE})
    if bins and result["bytes"] is None:
        result["bytes"] = sum(files.size(f) for f in bins)
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
    for value, key in present:
        if value <= 0:
            raise ModelProfileError(
                "%s: field '%s' is %d, but a context length must be a positive number of tokens; set it to the "
                "model's real context (the published config.json has it)" % (where, key, value)
            )
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
                if not isinstance(original, int) or isinstance(original, bool):
                    raise ModelProfileError("%s: rope_scaling type yarn lacks 'original_max_position_embeddings'" % where)
                if original <= 0:
                    raise ModelProfileError(
                        "%s: rope_scaling original_max_position_embeddings is %d, but a context length must be a positive "
                        "number of tokens; fix rope_scaling in the config" % (where, original)
                    )
                derived = float(original)
                rule = "yarn: original_max_position_embeddings=%d" % original
            if factor <= 0:
                raise ModelProfileError(
                    "%s: rope_scaling factor is %r, but it multiplies the context length and must be positive; "
                    "fix rope_scaling in the config (1 means no scaling)" % (where, factor)
                )
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


# --------------------------------------------------------------------------- which layers hold what

# Normalised layer kinds and the cache each one needs in vLLM v1
# (vllm/v1/kv_cache_interface.py): full_attention FullAttentionSpec/MLAAttentionSpec
# (KV per token), sliding_attention SlidingWindowSpec (KV for the window),
# linear_attention / mamba / short_conv MambaSpec (a fixed state per sequence),
# attention+mamba both (Falcon-H1 parallel layers, Zamba2 "hybrid" layers),
# mlp / moe nothing (Nemotron-H MLP-only and MoE-only blocks).
STATE_KINDS = ("linear_attention", "mamba", "short_conv", "attention+mamba")
NO_CACHE_KINDS = ("mlp", "moe")
_KIND_WORDS = {
    "linear_attention": "linear-attention",
    "mamba": "Mamba",
    "short_conv": "short-convolution",
    "attention+mamba": "attention-and-Mamba",
}
_KIND_ALIASES = {
    "full_attention": "full_attention",
    "attention": "full_attention",
    "global_attention": "full_attention",
    "sliding_attention": "sliding_attention",
    "sliding_window": "sliding_attention",
    "chunked_attention": "sliding_attention",
    "linear_attention": "linear_attention",
    "mamba": "mamba",
    "conv": "short_conv",
    "short_conv": "short_conv",
    "hybrid": "attention+mamba",
    "mlp": "mlp",
    "moe": "moe",
}
# Nemotron-H hybrid_override_pattern: one character per layer (vLLM's and the
# model's own NemotronHConfig.layers_block_type: M mamba, * attention, - mlp, E moe).
_PATTERN_KINDS = {"M": "mamba", "*": "full_attention", "-": "mlp", "E": "moe"}
# Per-layer lists that name kinds, in the order they are trusted.
LAYER_LIST_KEYS = ("layer_types", "layers_block_type")
# Config fields that describe per-layer structure; any other field that looks
# like one (see _STRUCTURE_FIELD) is reported as unread instead of ignored.
_KNOWN_STRUCTURE_FIELDS = frozenset(
    LAYER_LIST_KEYS
    + (
        "hybrid_override_pattern",
        "full_attention_interval",
        "attn_layer_period",
        "attn_layer_offset",
        "attn_layer_indices",
        "attn_type_list",
        "mtp_layers_block_type",
        "sliding_window_pattern",
        "max_window_layers",
        "expert_layer_period",
        "expert_layer_offset",
        "mlp_only_layers",
        "decoder_sparse_step",
        "interleave_moe_layer_step",
    )
)
_STRUCTURE_FIELD = re.compile(
    r"(layer_?types?|block_types?|_pattern$|^attn_.*(layers?|list|indices|idxs|period|offset)$|"
    r"^(full|linear|global|local)_attn|_attn_layers$|attention_(layers|pattern|interval)|layer_(kinds|map))"
)
# Attention geometry fields the KV arithmetic does not read; their presence means
# some layers differ from num_key_value_heads x head_dim (e.g. Gemma 4 global layers).
_UNREAD_GEOMETRY_FIELDS = ("global_head_dim", "num_global_key_value_heads", "attention_k_eq_v", "num_kv_shared_layers")


def _normalise_kind(value: Any) -> str:
    """Map one layer_types / layers_block_type entry to a kind; unknown ones keep their name."""
    key = str(value).strip().lower()
    return _KIND_ALIASES.get(key, "unknown:%s" % value)


def _layer_map(text: Dict[str, Any], num_layers: int, model_type: str) -> Tuple[Optional[List[str]], Optional[str], List[str]]:
    """Kind of every decoder layer, the field that said so, and notes on what was odd.

    Every way configs state it is read, most explicit first: a per-layer list
    (``layer_types``, ``layers_block_type``), MiniMax ``attn_type_list`` (0
    linear, 1 full), Nemotron-H ``hybrid_override_pattern``, Qwen3-Next
    ``full_attention_interval`` (layer i is full attention when (i + 1) % k == 0,
    as transformers' Qwen3NextConfig builds layer_types), Jamba
    ``attn_layer_period``/``attn_layer_offset`` (i % period == offset),
    ``attn_layer_indices`` (Bamba), and Falcon-H1, whose every layer runs
    attention and Mamba-2 side by side. None when the config says nothing per layer.
    """
    notes = []  # type: List[str]
    kinds = None  # type: Optional[List[str]]
    source = None  # type: Optional[str]
    for key in LAYER_LIST_KEYS:
        values = text.get(key)
        if isinstance(values, list) and values:
            kinds, source = [_normalise_kind(v) for v in values[:num_layers]], key
            break
    if kinds is None and isinstance(text.get("attn_type_list"), list) and text["attn_type_list"]:
        named = {0: "linear_attention", 1: "full_attention"}
        kinds = [named.get(v, "unknown:%s" % v) for v in text["attn_type_list"][:num_layers]]
        source = "attn_type_list"
    pattern = text.get("hybrid_override_pattern")
    if kinds is None and isinstance(pattern, str) and pattern:
        kinds = [_PATTERN_KINDS.get(c, "unknown:%s" % c) for c in pattern[:num_layers]]
        source = "hybrid_override_pattern"
        if len(pattern) != num_layers:
            notes.append("hybrid_override_pattern has %d characters for %d layers" % (len(pattern), num_layers))
    interval = text.get("full_attention_interval")
    if isinstance(interval, int) and not isinstance(interval, bool) and interval > 0:
        by_interval = ["full_attention" if (i + 1) % interval == 0 else "linear_attention" for i in range(num_layers)]
        if kinds is None:
            kinds, source = by_interval, "full_attention_interval=%d" % interval
        elif kinds != by_interval[: len(kinds)]:
            notes.append("%s disagrees with full_attention_interval=%d; %s is used" % (source, interval, source))
    period, offset = text.get("attn_layer_period"), text.get("attn_layer_offset")
    if kinds is None and isinstance(period, int) and period > 0 and isinstance(offset, int):
        kinds = ["full_attention" if i % period == offset else "mamba" for i in range(num_layers)]
        source = "attn_layer_period=%d, attn_layer_offset=%d" % (period, offset)
    indices = text.get("attn_layer_indices")
    if kinds is None and isinstance(indices, list) and all(isinstance(i, int) for i in indices):
        chosen = set(indices)
        kinds = ["full_attention" if i in chosen else "mamba" for i in range(num_layers)]
        source = "attn_layer_indices"
    if kinds is None and model_type.startswith("falcon_h1"):
        kinds, source = ["attention+mamba"] * num_layers, "model_type falcon_h1 (attention and Mamba-2 in every layer)"
    if kinds is not None and len(kinds) < num_layers:
        notes.append("%s covers %d of %d layers; the rest are treated as full attention" % (source, len(kinds), num_layers))
        kinds = kinds + ["full_attention"] * (num_layers - len(kinds))
    return kinds, source, notes


def _layer_kinds(
    text: Dict[str, Any], num_layers: int, model_type: str
) -> Tuple[Dict[str, int], Optional[int], str, Optional[List[str]], List[str]]:
    """Count layers per kind; return the sliding window in effect, the source, the per-layer map and notes.

    Sources, in order: a per-layer description (``_layer_map``);
    ``sliding_window_pattern`` (Gemma 3: every pattern-th layer is global);
    Gemma 2 alternation; then a single ``sliding_window`` that applies to all
    layers unless ``use_sliding_window`` is false (Qwen2/2.5 ship a window of
    131072 that is not used) - with Qwen2's ``max_window_layers`` honoured.
    """
    window = text.get("sliding_window")
    window = window if isinstance(window, int) and not isinstance(window, bool) and window > 0 else None
    kinds, source, notes = _layer_map(text, num_layers, model_type)
    if kinds is not None:
        if window is None:
            kinds = ["full_attention" if k == "sliding_attention" else k for k in kinds]
        counts = {}  # type: Dict[str, int]
        for kind in kinds:
            name = kind[len("unknown:") :] if kind.startswith("unknown:") else kind
            counts[name] = counts.get(name, 0) + 1
        return counts, window if counts.get("sliding_attention") else None, source or "", kinds, notes
    if window is None or text.get("use_sliding_window") is False:
        return {"full_attention": num_layers}, None, "no sliding window in effect", None, notes
    pattern = text.get("sliding_window_pattern")
    if isinstance(pattern, int) and pattern > 1:
        full = num_layers // pattern
        counts = {"full_attention": full, "sliding_attention": num_layers - full}
        return counts, window, "sliding_window_pattern=%d" % pattern, None, notes
    if model_type.startswith("gemma2"):
        full = num_layers // 2
        return {"full_attention": full, "sliding_attention": num_layers - full}, window, "gemma2 alternation", None, notes
    if text.get("use_sliding_window") is True and isinstance(text.get("max_window_layers"), int):
        full = min(num_layers, text["max_window_layers"])
        if full >= num_layers:
            return {"full_attention": num_layers}, None, "max_window_layers covers all layers", None, notes
        counts = {"full_attention": full, "sliding_attention": num_layers - full}
        return counts, window, "max_window_layers=%d" % full, None, notes
    return {"sliding_attention": num_layers}, window, "sliding_window on all layers", None, notes


def _dtype_or(value: Any, default: str) -> str:
    """A known dtype name from a config field, else the default."""
    name = _normalise_dtype(value)
    return name if name in DTYPE_BYTES else default


def _state_spec(
    text: Dict[str, Any], kinds: Dict[str, int], model_type: str, hidden: int, heads: int, serve_dtype: str
) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """Geometry of the per-sequence state of linear-attention / Mamba / conv layers, or why it is unknown.

    Mirrors each vLLM model's ``get_mamba_state_shape_from_config`` and
    ``get_mamba_state_dtype_from_config`` (vllm/model_executor/models/*.py), whose
    shapes come from ``MambaStateShapeCalculator`` and dtypes from
    ``MambaStateDtypeCalculator`` (vllm/model_executor/layers/mamba/mamba_utils.py):
    conv state at the model dtype, recurrent/SSM state at ``mamba_ssm_cache_dtype``
    (``auto`` = the conv dtype) - except NemotronH (the config's
    ``mamba_ssm_cache_dtype``, default float32) and Qwen3.5 (the config's
    ``mamba_ssm_dtype``), which vLLM's model config classes set.
    """
    needs = [k for k in ("linear_attention", "mamba", "short_conv", "attention+mamba") if kinds.get(k)]
    if not needs:
        return None, None
    conv_dtype = serve_dtype
    ssm_dtype = _dtype_or(_first(text, ("mamba_ssm_cache_dtype", "mamba_ssm_dtype"))[0], conv_dtype)

    def _ints(*keys: str) -> Optional[List[int]]:
        values = [text.get(k) for k in keys]
        ok = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values)
        return [int(v) for v in values] if ok else None

    if "linear_attention" in needs:
        gdn = _ints(
            "linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim", "linear_value_head_dim", "linear_conv_kernel_dim"
        )
        if gdn:
            return {
                "kind": "gated_delta_net",
                "vllm": "MambaStateShapeCalculator.gated_delta_net_state_shape (qwen3_next.py, qwen3_5.py)",
                "num_k_heads": gdn[0],
                "num_v_heads": gdn[1],
                "head_k_dim": gdn[2],
                "head_v_dim": gdn[3],
                "conv_kernel": gdn[4],
                "conv_dtype": conv_dtype,
                "ssm_dtype": ssm_dtype,
            }, None
        if isinstance(text.get("attn_type_list"), list):
            head_dim = text.get("head_dim") if isinstance(text.get("head_dim"), int) else hidden // heads
            return {
                "kind": "linear_attention",
                "vllm": "MambaStateShapeCalculator.linear_attention_state_shape (minimax_text_01.py)",
                "num_heads": heads,
                "head_dim": head_dim,
                "ssm_dtype": conv_dtype,
            }, None
        return None, "linear-attention layers without linear_num_key_heads/linear_num_value_heads/linear_*_head_dim/linear_conv_kernel_dim"
    if "short_conv" in needs:
        conv = _ints("conv_L_cache")
        dim = text.get("conv_dim") if isinstance(text.get("conv_dim"), int) else None
        if conv and dim:
            return {
                "kind": "short_conv",
                "vllm": "MambaStateShapeCalculator.short_conv_state_shape (lfm2.py)",
                "intermediate_size": dim,
                "conv_kernel": conv[0],
                "conv_dtype": conv_dtype,
            }, None
        return None, "short-convolution layers without conv_dim/conv_L_cache"
    nemotron = _ints("mamba_num_heads", "mamba_head_dim", "n_groups", "ssm_state_size", "conv_kernel")
    bamba = _ints("mamba_n_heads", "mamba_d_head", "mamba_n_groups", "mamba_d_state", "mamba_d_conv")
    zamba = _ints("n_mamba_heads", "mamba_headdim", "mamba_ngroups", "mamba_d_state", "mamba_d_conv")
    expand = text.get("mamba_expand")
    if nemotron:
        if model_type.startswith("nemotron_h"):
            ssm_dtype = _dtype_or(text.get("mamba_ssm_cache_dtype"), "float32")
        heads_m, head_dim, groups, state, conv = nemotron
        return _mamba2(heads_m * head_dim, groups, heads_m, head_dim, state, conv, conv_dtype, ssm_dtype, "nemotron_h.py"), None
    if bamba:
        d_ssm = text.get("mamba_d_ssm")
        if isinstance(d_ssm, int) and d_ssm > 0:
            inner = d_ssm
        elif isinstance(expand, (int, float)) and not isinstance(expand, bool):
            inner = int(expand * hidden)
        else:
            return None, "Mamba-2 layers without mamba_expand or mamba_d_ssm"
        heads_m, head_dim, groups, state, conv = bamba
        return _mamba2(
            inner, groups, heads_m, head_dim, state, conv, conv_dtype, ssm_dtype, "bamba.py, granitemoehybrid.py, falcon_h1.py"
        ), None
    if zamba and isinstance(expand, (int, float)):
        heads_m, head_dim, groups, state, conv = zamba
        return _mamba2(int(expand * hidden), groups, heads_m, head_dim, state, conv, conv_dtype, ssm_dtype, "zamba2.py"), None
    mamba1 = _ints("mamba_d_state", "mamba_d_conv")
    if mamba1 and isinstance(expand, (int, float)) and not isinstance(expand, bool):
        return {
            "kind": "mamba1",
            "vllm": "MambaStateShapeCalculator.mamba1_state_shape (jamba.py)",
            "intermediate_size": int(expand * hidden),
            "state_size": mamba1[0],
            "conv_kernel": mamba1[1],
            "conv_dtype": conv_dtype,
            "ssm_dtype": ssm_dtype,
        }, None
    return (
        None,
        "Mamba layers whose state fields are not known (looked for mamba_num_heads, mamba_n_heads, n_mamba_heads, mamba_d_state + mamba_expand)",
    )


def _mamba2(
    inner: int, groups: int, heads: int, head_dim: int, state: int, conv: int, conv_dtype: str, ssm_dtype: str, model_file: str
) -> Dict[str, Any]:
    """Mamba-2 state geometry as vLLM's mamba2_state_shape takes it."""
    return {
        "kind": "mamba2",
        "vllm": "MambaStateShapeCalculator.mamba2_state_shape (%s)" % model_file,
        "intermediate_size": inner,
        "n_groups": groups,
        "num_heads": heads,
        "head_dim": head_dim,
        "state_size": state,
        "conv_kernel": conv,
        "conv_dtype": conv_dtype,
        "ssm_dtype": ssm_dtype,
    }


def _divide(value: int, by: int, what: str) -> int:
    """vLLM's ``divide``: exact, else ValueError naming the dimension."""
    if value % by:
        raise ValueError("vLLM requires %s (%d) to be divisible by tensor_parallel_size (%d)" % (what, value, by))
    return value // by


def state_shapes(spec: Dict[str, Any], tp: int = 1, num_spec: int = 0) -> List[Tuple[str, List[int], str]]:
    """Per-rank state tensors of one layer and sequence: [(name, shape, dtype)], as vLLM sizes them.

    Mirrors ``MambaStateShapeCalculator`` (vllm/model_executor/layers/mamba/mamba_utils.py):
    gated delta net conv (kernel - 1 + num_spec, (2 k_heads k_dim + v_heads v_dim) / tp)
    and recurrent (v_heads / tp, v_dim, k_dim); Mamba-2 conv (kernel - 1 + num_spec,
    (inner + 2 groups' state) / tp), groups' = groups + tp - groups when tp does not
    divide groups, and SSM (heads / tp, head_dim, state); Mamba-1 conv (kernel - 1,
    inner / tp) and SSM (inner / tp, state); short conv (kernel - 1, dim / tp);
    lightning linear attention (heads / tp, head_dim, head_dim). ValueError where
    vLLM's ``divide`` would fail.
    """
    kind = spec["kind"]
    if kind == "gated_delta_net":
        conv_dim = spec["head_k_dim"] * spec["num_k_heads"] * 2 + spec["head_v_dim"] * spec["num_v_heads"]
        return [
            ("conv", [spec["conv_kernel"] - 1 + num_spec, _divide(conv_dim, tp, "the gated delta net conv dimension")], spec["conv_dtype"]),
            (
                "ssm",
                [_divide(spec["num_v_heads"], tp, "linear_num_value_heads"), spec["head_v_dim"], spec["head_k_dim"]],
                spec["ssm_dtype"],
            ),
        ]
    if kind == "mamba2":
        groups = spec["n_groups"]
        if groups % tp:
            groups += tp - groups
        conv_dim = spec["intermediate_size"] + 2 * groups * spec["state_size"]
        return [
            ("conv", [spec["conv_kernel"] - 1 + num_spec, _divide(conv_dim, tp, "the Mamba-2 conv dimension")], spec["conv_dtype"]),
            ("ssm", [_divide(spec["num_heads"], tp, "the Mamba-2 head count"), spec["head_dim"], spec["state_size"]], spec["ssm_dtype"]),
        ]
    if kind == "mamba1":
        inner = _divide(spec["intermediate_size"], tp, "the Mamba intermediate size")
        return [("conv", [spec["conv_kernel"] - 1, inner], spec["conv_dtype"]), ("ssm", [inner, spec["state_size"]], spec["ssm_dtype"])]
    if kind == "short_conv":
        return [("conv", [spec["conv_kernel"] - 1, _divide(spec["intermediate_size"], tp, "conv_dim")], spec["conv_dtype"])]
    if kind == "linear_attention":
        return [("ssm", [spec["num_heads"] // tp, spec["head_dim"], spec["head_dim"]], spec["ssm_dtype"])]
    raise ValueError("unknown state kind %r" % kind)


def state_tensor_bytes(spec: Dict[str, Any], tp: int = 1, num_spec: int = 0) -> List[Tuple[str, int]]:
    """[(name, bytes)] of one layer's state for one sequence on one rank (MambaSpec page before padding)."""
    result = []
    for name, shape, dtype in state_shapes(spec, tp, num_spec):
        size = DTYPE_BYTES[dtype]
        for dim in shape:
            size *= dim
        result.append((name, size))
    return result


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
    head_dim = _positive_int(text, ("head_dim", "kv_channels", "attention_head_dim"), where, required=False)
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


# MoE fields under the names real configs use (first found wins). Routed experts:
# Mixtral/Llama 4 num_local_experts, Qwen/Nemotron 3/Gemma 4 num_experts,
# DeepSeek/GLM/Nemotron n_routed_experts, ERNIE moe_num_experts, DBRX
# ffn_config.moe_num_experts. Active per token: num_experts_per_tok (most),
# experts_per_token (gpt-oss), top_k_experts (Gemma 4), moe_topk (Hunyuan, a
# per-layer list), moe_k (ERNIE 4.5), moe_top_k (DBRX ffn_config), and the
# spellings num_activated_experts / n_activated_experts / num_experts_per_token /
# num_selected_experts / moe_router_topk seen in other configs.
MOE_EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts", "num_routed_experts", "n_experts")
MOE_ACTIVE_KEYS = (
    "num_experts_per_tok",
    "experts_per_token",
    "top_k_experts",
    "num_experts_per_token",
    "moe_topk",
    "moe_k",
    "moe_top_k",
    "num_activated_experts",
    "n_activated_experts",
    "num_selected_experts",
    "moe_router_topk",
)
MOE_SHARED_KEYS = ("n_shared_experts", "num_shared_experts", "moe_num_shared_experts", "num_shared_expert")
MOE_EXPERT_SIZE_KEYS = ("moe_intermediate_size", "expert_intermediate_size", "moe_ffn_hidden_size")
MOE_SHARED_SIZE_KEYS = ("shared_expert_intermediate_size", "moe_shared_expert_intermediate_size", "shared_intermediate_size")
_MOE_FIELD = re.compile(r"(expert|moe)")
_MOE_ROUTING = re.compile(r"(top_?k|per_tok|per_token|activ|select|_k$)")


def _count(value: Any) -> Tuple[Optional[int], Optional[str]]:
    """An int field, or a per-layer list of ints (Hunyuan moe_topk): (value, note on a list)."""
    if isinstance(value, bool):
        return None, None
    if isinstance(value, int):
        return value, None
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        if len(set(value)) == 1:
            return value[0], None
        return max(value), "per-layer values %s, the largest taken" % sorted(set(value))
    return None, None


def _moe_layer_count(text: Dict[str, Any], layers: int, kinds: Optional[List[str]]) -> Tuple[int, str]:
    """How many layers route through experts, and the field that says so."""
    if kinds is not None and "moe" in kinds:
        return kinds.count("moe"), "moe blocks in the layer map"
    period, offset = text.get("expert_layer_period"), text.get("expert_layer_offset")
    if isinstance(period, int) and period > 0 and isinstance(offset, int):
        return sum(1 for i in range(layers) if i % period == offset), "expert_layer_period=%d, expert_layer_offset=%d" % (period, offset)
    for key in ("first_k_dense_replace", "num_dense_layers"):
        if isinstance(text.get(key), int) and text[key] >= 0:
            return max(0, layers - text[key]), "%s=%d" % (key, text[key])
    step = text.get("interleave_moe_layer_step")
    if isinstance(step, int) and step > 1:
        return sum(1 for i in range(layers) if (i + 1) % step == 0), "interleave_moe_layer_step=%d" % step
    step = text.get("decoder_sparse_step")
    only = text.get("mlp_only_layers") if isinstance(text.get("mlp_only_layers"), list) else []
    if isinstance(step, int) and step > 0:
        count = sum(1 for i in range(layers) if i not in only and (i + 1) % step == 0)
        return count, "decoder_sparse_step=%d, mlp_only_layers=%d" % (step, len(only))
    return layers, "every layer"


def _moe(text: Dict[str, Any], layers: int, kinds: Optional[List[str]], warnings: List[str]) -> Optional[Dict[str, Any]]:
    """Experts, active experts per token, shared experts and expert sizes under any of their names.

    A routed-expert count without a top-k field, or a field that looks like
    routing but is not one the profiler reads, is reported, never dropped.
    """
    source = dict(text)
    if isinstance(text.get("ffn_config"), dict):  # DBRX keeps its MoE fields there
        source.update((k, v) for k, v in text["ffn_config"].items() if k not in source)
    experts_raw, experts_key = _first(source, MOE_EXPERT_KEYS)
    experts, unused_note = _count(experts_raw)
    read = set(MOE_EXPERT_KEYS + MOE_ACTIVE_KEYS + MOE_SHARED_KEYS + MOE_EXPERT_SIZE_KEYS + MOE_SHARED_SIZE_KEYS)
    unread = sorted(k for k in source if _MOE_FIELD.search(k) and _MOE_ROUTING.search(k) and k not in read)
    if unread:
        warnings.append(
            "config field(s) %s look like MoE routing but are not read by the profiler: check active_experts by hand." % ", ".join(unread)
        )
    if experts is None or experts <= 1:
        return None
    active_raw, active_key = _first(source, MOE_ACTIVE_KEYS)
    active, active_note = _count(active_raw)
    if active is None:
        warnings.append(
            "MoE with %d experts (%s) but no top-k field (looked for %s): active_experts is unknown and the "
            "activation estimate assumes 1." % (experts, experts_key, ", ".join(MOE_ACTIVE_KEYS))
        )
    elif active_note:
        warnings.append("%s has %s." % (active_key, active_note))
    shared_raw, shared_key = _first(source, MOE_SHARED_KEYS)
    shared, unused_note = _count(shared_raw)
    shared_size, shared_size_key = _first(source, MOE_SHARED_SIZE_KEYS)
    shared_size = shared_size if isinstance(shared_size, int) and not isinstance(shared_size, bool) else None
    if shared is None and shared_size:
        shared, shared_key = 1, shared_size_key
    expert_size, expert_size_key = _first(source, MOE_EXPERT_SIZE_KEYS + ("intermediate_size",))
    moe_layers, moe_layers_source = _moe_layer_count(text, layers, kinds)
    if kinds is not None and "moe" in kinds:
        dense = kinds.count("mlp")
    else:
        dense = layers - moe_layers
    return {
        "experts": experts,
        "active_experts": active,
        "shared_experts": shared,
        "expert_intermediate_size": expert_size,
        "dense_layers": dense,
        "experts_source": experts_key,
        "active_experts_source": active_key,
        "shared_experts_source": shared_key,
        "expert_intermediate_size_source": expert_size_key,
        "shared_expert_intermediate_size": shared_size,
        "moe_layers": moe_layers,
        "moe_layers_source": moe_layers_source,
        "experts_in_weights": None,
    }


_EXPERT_NAME = re.compile(r"\.experts\.(\d+)\.")


def _experts_in_weights(names: Iterable[str]) -> Optional[int]:
    """Routed experts per layer as the tensor names number them (``...experts.N.``), or None."""
    highest = -1
    for name in names:
        match = _EXPERT_NAME.search(name)
        if match:
            highest = max(highest, int(match.group(1)))
    return highest + 1 if highest >= 0 else None


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


def _generation_defaults(files: CheckpointDirectory) -> Optional[Dict[str, Any]]:
    """Sampling defaults vLLM applies from generation_config.json (``--generation-config auto``)."""
    gen = files.read_json(GENERATION_CONFIG_FILE, required=False)
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
    if dtype and _normalise_dtype(dtype) != "auto":
        dtype_bytes(dtype)  # an unknown override is the caller's ValueError, not the config's
    if not os.path.isdir(path):
        raise ModelProfileError("%s: not a directory" % path)
    files = CheckpointDirectory(path)
    if not files.has(CONFIG_FILE):
        raise ModelProfileError("%s: no %s in the model directory" % (files.where(CONFIG_FILE), CONFIG_FILE))
    return profile_files(files, dtype)


def profile_files(files: CheckpointDirectory, dtype: Optional[str] = None) -> Dict[str, Any]:
    """Profile a checkpoint given as an object with CheckpointDirectory's methods; see profile_model.

    ``files.path`` becomes the profile's ``path``; the caller has checked that
    ``config.json`` exists.
    """
    if dtype and _normalise_dtype(dtype) != "auto":
        dtype_bytes(dtype)  # an unknown override is the caller's ValueError, not the config's
    try:
        return _profile_files(files, dtype)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, ZeroDivisionError, OverflowError) as exc:
        # The field checks above name the field; a value of a type no check foresaw (a list where a
        # number belongs, a string in a per-layer list) still ends here, never in a traceback.
        raise ModelProfileError(
            "%s: a field holds a value of an unexpected type or size (%s: %s); compare the config with the "
            "model's published config.json" % (files.where(CONFIG_FILE), type(exc).__name__, exc)
        ) from None


def _profile_files(files: CheckpointDirectory, dtype: Optional[str]) -> Dict[str, Any]:
    config_path = files.where(CONFIG_FILE)
    config = files.read_json(CONFIG_FILE)
    text, text_key = _text_config(config)
    where = "%s%s" % (config_path, " (%s)" % text_key if text_key else "")
    warnings = []  # type: List[str]

    layers = _positive_int(text, ("num_hidden_layers", "num_layers", "n_layer"), where)
    if layers > MAX_LAYERS:
        key = _first(text, ("num_hidden_layers", "num_layers", "n_layer"))[1]
        raise ModelProfileError(
            "%s: field '%s' is %d, more layers than any served model has (at most %d accepted): the config is corrupt "
            "or belongs to another checkpoint; replace it with the published config.json" % (where, key, layers, MAX_LAYERS)
        )
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
    kinds, window, window_source, layer_map, map_notes = _layer_kinds(text, layers, text_model_type)
    loops = text.get("num_loops") if isinstance(text.get("num_loops"), int) and text.get("num_loops") > 1 else 1
    moe = _moe(text, layers, layer_map, warnings)
    quant = _quantization(config, text)
    weights = _weights(files, warnings)
    extra, extra_prefix, seen = _extra_layers(weights["names"], layers)
    if moe is not None:
        moe["experts_in_weights"] = _experts_in_weights(weights["names"])
    state_spec, state_problem = _state_spec(text, kinds, text_model_type, hidden, heads, serve_dtype)
    layout = _cache_layout(layers, kinds, layer_map, state_spec)
    _structure_warnings(warnings, text, layers, window_source, layer_map, map_notes, layout, state_problem, weights["names"])

    per_layer = geo["kv_elements_per_token_layer"] * DTYPE_BYTES[serve_dtype]
    full_layers = layout["full"] * loops
    sliding_layers = layout["sliding"] * loops
    mtp, mtp_source = _mtp_layers(text, extra)
    state_parts = state_tensor_bytes(state_spec) if state_spec and layout["state"] else []
    state_per_layer = sum(size for _name, size in state_parts)
    if state_spec is not None:
        state_spec = dict(state_spec, tensors=[[name, size] for name, size in state_parts])

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
        "path": files.path,
        "architecture": architecture,
        "architectures": architectures if isinstance(architectures, list) else [],
        "model_type": model_type,
        "text_model_type": text_model_type,
        "text_config_used": text_key is not None,
        # Image-text-to-text (VL, OCR): a vision tower beside the language model; the Transformers server then takes
        # image inputs and needs room for them in a request body.
        "vision": any(isinstance(config.get(key), dict) for key in VISION_CONFIG_KEYS),
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
        "layer_types_source": window_source,
        "attention_layers": layout["attention"],
        "cache_layers": layout["indices"],
        "state_layers": layout["state"],
        "state_kind": state_spec["kind"] if state_spec and layout["state"] else None,
        "state_spec": state_spec if layout["state"] else None,
        "state_bytes_per_layer": state_per_layer,
        "state_bytes_per_sequence": state_per_layer * layout["state"],
        "cache_summary": _cache_summary(layout, per_layer, loops, state_spec, state_parts, window),
        "extra_layers": extra,
        "extra_layers_prefix": extra_prefix,
        "mtp_layers": mtp,
        "mtp_layers_source": mtp_source,
        "generation_defaults": _generation_defaults(files),
        "warnings": warnings,
    }
    return profile


def _cache_layout(
    layers: int, kinds: Dict[str, int], layer_map: Optional[List[str]], state_spec: Optional[Dict[str, Any]]
) -> Dict[str, Any]:
    """Which layers hold a KV cache, which a state, which nothing.

    The safe side is explicit: a layer of unknown kind, or a state layer whose
    state geometry is unknown, is counted as full attention (KV per token).
    """
    indices = {"full_attention": [], "sliding_attention": [], "state": [], "none": [], "treated_as_full_attention": []}  # type: Dict[str, List[int]]
    if layer_map is None:
        full = kinds.get("full_attention", 0)
        return {"full": full, "sliding": kinds.get("sliding_attention", 0), "state": 0, "attention": layers, "indices": None}
    for i, kind in enumerate(layer_map):
        if kind in ("full_attention", "attention+mamba"):
            indices["full_attention"].append(i)
        elif kind == "sliding_attention":
            indices["sliding_attention"].append(i)
        elif kind in NO_CACHE_KINDS:
            indices["none"].append(i)
        elif kind in STATE_KINDS and state_spec is not None:
            pass
        else:  # unknown kind, or a state layer whose state size is unknown
            indices["full_attention"].append(i)
            indices["treated_as_full_attention"].append(i)
        if kind in STATE_KINDS and state_spec is not None:
            indices["state"].append(i)
    return {
        "full": len(indices["full_attention"]),
        "sliding": len(indices["sliding_attention"]),
        "state": len(indices["state"]),
        "attention": len(indices["full_attention"]) + len(indices["sliding_attention"]),
        "indices": indices,
    }


def _cache_summary(
    layout: Dict[str, Any],
    per_layer: int,
    loops: int,
    state_spec: Optional[Dict[str, Any]],
    state_parts: List[Tuple[str, int]],
    window: Optional[int],
) -> str:
    """One sentence saying which layers hold what, with the bytes."""
    parts = []
    where = layout["indices"]
    if layout["full"]:
        at = " (layers %s)" % _ranges(where["full_attention"]) if where and layout["full"] < 64 else ""
        parts.append("%d full-attention layer(s)%s hold %d B of KV per token each" % (layout["full"] * loops, at, per_layer))
    if layout["sliding"]:
        parts.append("%d sliding-window layer(s) hold KV for %s tokens" % (layout["sliding"] * loops, window))
    if layout["state"] and state_spec:
        tensors = " + ".join("%s %d B" % (name, size) for name, size in state_parts)
        parts.append(
            "%d %s layer(s) hold a fixed state per sequence (%s = %d B each, TP 1)"
            % (layout["state"], state_spec["kind"], tensors, sum(size for _n, size in state_parts))
        )
    if where and where["none"]:
        parts.append("%d layer(s) hold no cache (MLP/MoE only)" % len(where["none"]))
    if where and where["treated_as_full_attention"]:
        parts.append("layer(s) %s are of unknown kind and treated as full attention" % _ranges(where["treated_as_full_attention"]))
    return "; ".join(parts) + "." if parts else "no layer holds a cache."


_STATE_WEIGHT = re.compile(r"\.(A_log|dt_bias|D|conv1d\.weight|linear_attn\.)")
_WEIGHT_LAYER = re.compile(r"^(?:backbone\.|model\.language_model\.|language_model\.model\.|model\.)layers\.(\d+)\.")


def _state_layers_in_weights(names: Iterable[str], layers: int) -> List[int]:
    """Layer indices whose tensor names carry state-space / linear-attention parameters (A_log, dt_bias, conv1d)."""
    found = set()
    for name in names:
        match = _WEIGHT_LAYER.match(name)
        if match and int(match.group(1)) < layers and _STATE_WEIGHT.search(name):
            found.add(int(match.group(1)))
    return sorted(found)


def _structure_warnings(
    warnings: List[str],
    text: Dict[str, Any],
    layers: int,
    source: str,
    layer_map: Optional[List[str]],
    notes: List[str],
    layout: Dict[str, Any],
    state_problem: Optional[str],
    names: List[str],
) -> None:
    """Say what the layer map could not settle, and which safe side the arithmetic took."""
    for note in notes:
        warnings.append("%s." % note)
    unread = sorted(k for k in text if _STRUCTURE_FIELD.search(k) and k not in _KNOWN_STRUCTURE_FIELDS)
    if unread:
        basis = "the layer kinds come from %s" % source if layer_map is not None else "all %d layers are treated as full attention" % layers
        warnings.append(
            "config field(s) %s describe per-layer structure the profiler does not read; %s (the safe side for memory)."
            % (", ".join(unread), basis)
        )
    geometry = [k for k in _UNREAD_GEOMETRY_FIELDS if text.get(k) not in (None, False, 0)]
    if geometry:
        warnings.append(
            "config field(s) %s give some layers an attention geometry other than num_key_value_heads x head_dim; "
            "the KV figures use num_key_value_heads and head_dim for every attention layer." % ", ".join(geometry)
        )
    where = layout["indices"]
    if where and where["treated_as_full_attention"]:
        unknown = sorted(set(k[len("unknown:") :] for k in layer_map or [] if k.startswith("unknown:")))
        reason = "unknown layer kind(s) %s in %s" % (", ".join(repr(k) for k in unknown), source) if unknown else state_problem
        warnings.append(
            "%s: layer(s) %s treated as full attention (KV per token), the safe side for memory."
            % (reason, _ranges(where["treated_as_full_attention"]))
        )
    from_weights = _state_layers_in_weights(names, layers)
    if from_weights:
        configured = where["state"] if where else []
        if layer_map is None:
            warnings.append(
                "the weights carry state-space/linear-attention tensors in layer(s) %s but the config names no per-layer "
                "kinds: all %d layers are counted as full attention (the safe side)." % (_ranges(from_weights), layers)
            )
        elif from_weights != configured:
            warnings.append(
                "the weights carry state-space/linear-attention tensors in layer(s) %s, the config (%s) puts state in %s."
                % (_ranges(from_weights), source, _ranges(configured) or "none")
            )


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
    state = {k: kinds[k] for k in STATE_KINDS if kinds.get(k)}
    if state:
        what = ", ".join("%d %s layer(s)" % (n, _KIND_WORDS[k]) for k, n in sorted(state.items()))
        warnings.append(
            "%s keep a fixed-size state per sequence, not a per-token KV cache: kv_fit counts it once per concurrent "
            "sequence (state_bytes_per_sequence), next to the KV of the attention layers." % what
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
