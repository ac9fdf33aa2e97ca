"""Tiny Qwen3 checkpoints built in the tests: real files, real transformers, no downloads.

``build_looping_model`` writes a checkpoint whose next token depends only on
the current one, with a logit table we choose, so a test can force the exact
loops the repetition guard must catch:

* attention and MLP outputs are zeroed (o_proj, down_proj), so the hidden
  state is the token's embedding;
* embeddings are one-hot (hidden_size >= vocab), the final RMSNorm scales a
  one-hot by sqrt(hidden_size), so ``lm_head[:, x] * sqrt(hidden)`` are the
  logits after token x.

Token roles (ids in the returned ``LoopingModel``): ``fixed`` repeats itself
(layer 2), ``runner_up`` is its second choice (a 1.2 repetition penalty flips
to it: layer 1), ``block`` is a 20-token cycle (layer 3), ``to_eos`` is followed
by EOS, and every other token leads into ``big_cycle``, a cycle longer than
the guard's largest period, i.e. text that never repeats within reach.
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import List

BLOCK_LEN = 20
SPECIALS = ["<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclasses.dataclass
class LoopingModel:
    path: str
    fixed: int
    runner_up: int
    block: List[int]
    to_eos: int
    big_cycle: List[int]
    eos: int
    vocab_size: int


def _training_text(lines: int = 4000) -> List[str]:
    rng = random.Random(7)
    syllables = [
        "an",
        "be",
        "co",
        "de",
        "ed",
        "fo",
        "ga",
        "hi",
        "in",
        "jo",
        "ka",
        "lu",
        "me",
        "no",
        "or",
        "pu",
        "qu",
        "ra",
        "si",
        "to",
        "ur",
        "vi",
        "wo",
        "xe",
        "ya",
        "zo",
        "st",
        "th",
        "er",
        "ng",
    ]
    out = []
    for _line in range(lines):
        words = ["".join(rng.choice(syllables) for _syllable in range(rng.randint(1, 3))) for _word in range(8)]
        out.append(" ".join(words) + rng.choice([".", ",", "!", "?", ";"]))
    return out


def build_tokenizer(path: str, vocab_size: int = 1000, byte_level: bool = True):
    """A BPE tokenizer trained on generated text.

    ``byte_level`` (as GPT-2 / Qwen) has all 256 bytes as tokens, so a random
    model can emit invalid UTF-8; without it (Metaspace, as SentencePiece
    models) every token is whole text, which benchmarks use so that time to
    first token measures serving, not a wait for a character to complete.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    if byte_level:
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        alphabet = []
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, initial_alphabet=alphabet)
    tokenizer.train_from_iterator(_training_text(), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(path)
    return fast


def _special_ids(tokenizer) -> List[int]:
    return sorted(set(tokenizer.all_special_ids) | {tokenizer.convert_tokens_to_ids(token) for token in SPECIALS})


def _printable_tokens(tokenizer) -> List[int]:
    """Tokens that decode to plain printable ASCII on their own (clean text in assertions)."""
    special = set(_special_ids(tokenizer))
    out = []
    for token in range(len(tokenizer)):
        if token in special:
            continue
        text = tokenizer.decode([token])
        if text and text.isascii() and text.isprintable() and text.strip():
            out.append(token)
    return out


def build_looping_model(path: str, max_position_embeddings: int = 32768) -> LoopingModel:
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = build_tokenizer(path)
    vocab = len(tokenizer)
    hidden = vocab + (-vocab % 8)
    tokens = _printable_tokens(tokenizer)
    fixed, runner_up, to_eos = tokens[0], tokens[1], tokens[2]
    block = tokens[3 : 3 + BLOCK_LEN]
    big_cycle = [runner_up] + tokens[3 + BLOCK_LEN :]
    if len(big_cycle) <= 300:
        raise RuntimeError("tokenizer too small for a non-repeating cycle: %d tokens" % len(big_cycle))
    eos = tokenizer.eos_token_id

    specials = _special_ids(tokenizer)
    low = -30.0
    table = torch.full((vocab, vocab), low)
    # Sampling at temperature 1 varies (seed tests), greedy always follows the cycle.
    table[:, :] = 0.0
    table[:, specials] = low
    table[:, big_cycle[0]] = 3.0  # default: enter the big cycle
    for index, token in enumerate(big_cycle):
        table[token] = 0.0
        table[token, specials] = low
        table[token, big_cycle[(index + 1) % len(big_cycle)]] = 3.0
    table[fixed] = 0.0
    table[fixed, specials] = low
    table[fixed, fixed] = 8.0
    table[fixed, runner_up] = 7.5
    for index, token in enumerate(block):
        table[token] = 0.0
        table[token, specials] = low
        table[token, block[(index + 1) % len(block)]] = 8.0
    table[to_eos] = low
    table[to_eos, eos] = 8.0

    config = Qwen3Config(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=False,
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config)
    with torch.no_grad():
        model.model.embed_tokens.weight.zero_()
        model.model.embed_tokens.weight[:, :vocab] = torch.eye(vocab)
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.norm.weight.fill_(1.0)
        model.lm_head.weight.zero_()
        model.lm_head.weight[:, :vocab] = table.t() / math.sqrt(hidden)
    model.save_pretrained(path)
    return LoopingModel(
        path=path, fixed=fixed, runner_up=runner_up, block=block, to_eos=to_eos, big_cycle=big_cycle, eos=eos, vocab_size=vocab
    )


def build_random_model(
    path: str,
    hidden_size: int,
    layers: int,
    heads: int = 8,
    kv_heads: int = 4,
    intermediate_size: int = 0,
    max_position_embeddings: int = 4096,
    seed: int = 0,
    byte_level: bool = True,
):
    """A randomly initialised Qwen3 of a chosen size (benchmarks: a 'mid-size' model on CPU)."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = build_tokenizer(path, byte_level=byte_level)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or hidden_size * 3,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=hidden_size // heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    with torch.no_grad():
        # Special tokens get logit 0, below the best of the random logits: greedy
        # output is text (an <unk> or EOS run would be skipped or end it at once).
        model.lm_head.weight[_special_ids(tokenizer)] = 0.0
    model.save_pretrained(path)
    return path


def build_mtp_model(path: str, seed: int = 0):
    """A tiny random Qwen3 whose checkpoint also carries an MTP layer at ``layers.<num_hidden_layers>``.

    The shape of the GLM-OCR / DeepSeek-V3 trap: vLLM's loader fails on the
    extra layer, so npu.fleet must choose the Transformers backend; Transformers
    loads the model and ignores the unexpected weights.
    """
    import json
    import os

    import torch
    from safetensors.torch import load_file, save_file

    build_random_model(path, hidden_size=64, layers=2, heads=4, kv_heads=2, seed=seed, byte_level=False)
    weights_path = os.path.join(path, "model.safetensors")
    weights = load_file(weights_path)
    with open(os.path.join(path, "config.json"), encoding="utf-8") as handle:
        layers = json.load(handle)["num_hidden_layers"]
    torch.manual_seed(seed + 1)
    hidden = weights["model.norm.weight"].shape[0]
    weights["model.layers.%d.eh_proj.weight" % layers] = torch.randn(hidden, 2 * hidden)
    weights["model.layers.%d.enorm.weight" % layers] = torch.ones(hidden)
    weights["model.layers.%d.hnorm.weight" % layers] = torch.ones(hidden)
    save_file(weights, weights_path, metadata={"format": "pt"})
    return path


VISION_SPECIALS = SPECIALS + ["<image>"]
VISION_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for p in m['content'] %}"
    "{% if p['type'] == 'image' %}<image>{% elif p['type'] == 'text' %}{{ p['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
VISION_IMAGE_SIZE = 28  # pixels after the processor's resize and crop: 2x2 patches of 14, 4 image tokens
VISION_IMAGE_TOKENS = 4


def build_vision_model(path: str, seed: int = 0) -> str:
    """A tiny random LLaVA (CLIP vision tower + Qwen3 text model) with its processor files, as an
    image-text-to-text checkpoint: AutoModelForImageTextToText loads it, AutoModelForCausalLM does not.

    LLaVA because its processor needs no torchvision (a PIL image processor, no video processor),
    which the CPU test environment does not have; GLM-OCR and Qwen-VL go through the same
    AutoProcessor path on the real images.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
        Qwen3Config,
    )
    from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.train_from_iterator(_training_text(), trainers.BpeTrainer(vocab_size=600, special_tokens=VISION_SPECIALS))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="<unk>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<image>"},
    )
    size = VISION_IMAGE_SIZE
    image_processor = LlavaImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=fast,
        patch_size=14,
        vision_feature_select_strategy="default",
        chat_template=VISION_CHAT_TEMPLATE,
        num_additional_image_tokens=1,
    )
    processor.save_pretrained(path)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=size,
            patch_size=14,
            projection_dim=32,
        ),
        text_config=Qwen3Config(
            vocab_size=len(fast),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            max_position_embeddings=4096,
            eos_token_id=fast.eos_token_id,
            pad_token_id=fast.pad_token_id,
            tie_word_embeddings=False,
        ),
        image_token_id=fast.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    with torch.no_grad():
        # Special tokens below every random logit: greedy output is text, not an early EOS.
        specials = sorted(set(fast.all_special_ids) | {fast.convert_tokens_to_ids(token) for token in VISION_SPECIALS})
        model.lm_head.weight[specials] = 0.0
    model.save_pretrained(path)
    return path
