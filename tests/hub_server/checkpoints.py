"""Tiny Hugging Face repositories for the local hub: real safetensors headers, random bytes, tokenizer files.

TEST EQUIPMENT ONLY. The safetensors files are written by
``tests/unit/model_checkpoints.write_safetensors`` (the same writer the
model-profile tests use) and their data sections are then filled with
seeded random bytes: a resumed download that put one byte at the wrong
offset changes the sha256, which an all-zero file would hide.

Besides what serving needs (config, generation config, sharded weights with
their index, tokenizer files), every repository holds files a provisioning
tool must *not* fetch by default (README, .gitattributes, a pickle copy of
the weights, an ONNX export in a sub-folder), so the allow patterns are tested.
"""

from __future__ import annotations

import json
import os
import random
import struct
import sys
from typing import Dict, List, Tuple

try:
    from model_checkpoints import write_index, write_json, write_safetensors  # tests/unit is on pytest's pythonpath
except ImportError:  # run as `python -m hub_server` from tests/: put tests/unit on the path
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "unit"))
    from model_checkpoints import write_index, write_json, write_safetensors

# Files a default fetch must bring, and files it must leave on the hub.
SERVING_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
)
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
NOT_FETCHED_BY_DEFAULT = ("README.md", ".gitattributes", "pytorch_model.bin", "onnx/model.onnx")


def qwen3_config(layers: int = 2, hidden: int = 64, heads: int = 4, kv_heads: int = 2, vocab: int = 256) -> Dict:
    """A Qwen3 config.json scaled down (the architecture model_profile knows best)."""
    return {
        "architectures": ["Qwen3ForCausalLM"],
        "model_type": "qwen3",
        "hidden_size": hidden,
        "intermediate_size": hidden * 2,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": hidden // heads,
        "vocab_size": vocab,
        "max_position_embeddings": 4096,
        "rope_theta": 1000000,
        "rms_norm_eps": 1e-06,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "bos_token_id": 1,
        "eos_token_id": 2,
    }


def qwen3_tensors(config: Dict) -> List[Tuple[str, Tuple[str, List[int]]]]:
    """Tensor names and shapes of a Qwen3 decoder in checkpoint order."""
    h, inter, vocab = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    q = config["num_attention_heads"] * config["head_dim"]
    kv = config["num_key_value_heads"] * config["head_dim"]
    tensors = [("model.embed_tokens.weight", ("BF16", [vocab, h]))]
    for i in range(config["num_hidden_layers"]):
        p = "model.layers.%d." % i
        tensors += [
            (p + "input_layernorm.weight", ("BF16", [h])),
            (p + "self_attn.q_proj.weight", ("BF16", [q, h])),
            (p + "self_attn.k_proj.weight", ("BF16", [kv, h])),
            (p + "self_attn.v_proj.weight", ("BF16", [kv, h])),
            (p + "self_attn.o_proj.weight", ("BF16", [h, q])),
            (p + "self_attn.q_norm.weight", ("BF16", [config["head_dim"]])),
            (p + "self_attn.k_norm.weight", ("BF16", [config["head_dim"]])),
            (p + "post_attention_layernorm.weight", ("BF16", [h])),
            (p + "mlp.gate_proj.weight", ("BF16", [inter, h])),
            (p + "mlp.up_proj.weight", ("BF16", [inter, h])),
            (p + "mlp.down_proj.weight", ("BF16", [h, inter])),
        ]
    tensors += [("model.norm.weight", ("BF16", [h])), ("lm_head.weight", ("BF16", [vocab, h]))]
    return tensors


def fill_data_section(path: str, seed: int) -> None:
    """Overwrite the data section of a safetensors file with seeded random bytes (the header stays)."""
    with open(path, "r+b") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        size = os.fstat(handle.fileno()).st_size
        handle.seek(8 + length)
        handle.write(random.Random(seed).randbytes(size - 8 - length))


def write_tiny_repo(dest: str, shards: int = 2, seed: int = 0, extras: bool = True, **config_kwargs) -> Dict:
    """Write a tiny sharded Qwen3 repository into ``dest``; return {"config", "weights_bytes", "shards"}."""
    os.makedirs(dest, exist_ok=True)
    config = qwen3_config(**config_kwargs)
    write_json(os.path.join(dest, "config.json"), config)
    write_json(os.path.join(dest, "generation_config.json"), {"do_sample": True, "temperature": 0.6, "top_p": 0.95, "top_k": 20})
    tensors = qwen3_tensors(config)
    per = (len(tensors) + shards - 1) // shards
    names = []
    weight_map = {}
    total = 0
    for index in range(shards):
        part = dict(tensors[index * per : (index + 1) * per])
        name = "model-%05d-of-%05d.safetensors" % (index + 1, shards) if shards > 1 else "model.safetensors"
        total += write_safetensors(os.path.join(dest, name), part, metadata={"format": "pt"})
        fill_data_section(os.path.join(dest, name), seed * 1000 + index)
        weight_map.update((tensor, name) for tensor in part)
        names.append(name)
    if shards > 1:
        write_index(dest, weight_map, total_size=total)
    _write_tokenizer(dest, config["vocab_size"])
    if extras:
        with open(os.path.join(dest, "README.md"), "w", encoding="utf-8") as handle:
            handle.write("# tiny-qwen3\n\nA test checkpoint with random weights.\n")
        with open(os.path.join(dest, ".gitattributes"), "w", encoding="utf-8") as handle:
            handle.write("*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n")
        with open(os.path.join(dest, "pytorch_model.bin"), "wb") as handle:
            handle.write(random.Random(seed + 7).randbytes(4096))
        os.makedirs(os.path.join(dest, "onnx"), exist_ok=True)
        with open(os.path.join(dest, "onnx", "model.onnx"), "wb") as handle:
            handle.write(random.Random(seed + 8).randbytes(2048))
    return {"config": config, "weights_bytes": total, "shards": names}


def _write_tokenizer(dest: str, vocab_size: int) -> None:
    """A byte-level BPE tokenizer.json in the format `tokenizers` writes, with its side files."""
    specials = ["<unk>", "<|endoftext|>", "<|im_end|>"]
    vocab = {token: i for i, token in enumerate(specials)}
    for code in range(33, 127):
        if len(vocab) >= vocab_size:
            break
        vocab.setdefault(chr(code), len(vocab))
    # Every id the model can sample has a token that decodes to text (a random model samples any of them;
    # ids without a token would stream nothing): two-letter tokens fill the rest.
    letters = "abcdefghijklmnopqrstuvwxyz"
    for first in letters:
        for second in letters:
            if len(vocab) >= vocab_size:
                break
            vocab.setdefault(first + second, len(vocab))
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
            for i, t in enumerate(specials)
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": "<unk>",
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": [],
        },
    }
    write_json(os.path.join(dest, "tokenizer.json"), tokenizer)
    write_json(
        os.path.join(dest, "tokenizer_config.json"),
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "eos_token": "<|im_end|>",
            "pad_token": "<|endoftext|>",
            "model_max_length": 4096,
            # ChatML, as Qwen3's own: the served model answers chat completions.
            "chat_template": CHATML_TEMPLATE,
        },
    )
    write_json(os.path.join(dest, "special_tokens_map.json"), {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"})
    with open(os.path.join(dest, "vocab.json"), "w", encoding="utf-8") as handle:
        json.dump(vocab, handle)
    with open(os.path.join(dest, "merges.txt"), "w", encoding="utf-8") as handle:
        handle.write("#version: 0.2\n")
