# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""Will a model's KV cache fit on an Ascend chip, and with which max_model_len?

Mirrors how vLLM / vllm-ascend budget device memory at start-up
(vllm_ascend/worker/worker.py, vllm/v1/worker/gpu_worker.py)::

    requested    = total_memory x gpu_memory_utilization
    available_kv = requested - (weights + peak activation + non-torch memory)

and then checks that one request of ``max_model_len`` tokens fits
(vllm/v1/core/kv_cache_utils.py ``_check_enough_kv_cache_memory``), summing
each layer's ``max_memory_usage_bytes`` (vllm/v1/kv_cache_interface.py):
full attention ``cdiv(len, block) x page``, sliding window
``(cdiv(min(window - 1 + max_num_batched_tokens, len), block) + 1) x page``,
linear-attention / Mamba state one page per sequence - in vLLM's layer groups,
with the block and page sizes vllm-ascend aligns for hybrid models (``cache_plan``).

Two inputs are not knowable from files and are estimates, named as such in
the result and in docs/memory.md: the activation peak of vLLM's profiling run
and the non-torch memory (CANN runtime, ATB workspace, HCCL buffers). Pass
``reserve_bytes`` measured from a real "Available KV cache memory" log line to
replace both.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.npu.fleet.plugins.module_utils._model_profile import state_shapes, state_tensor_bytes

__all__ = [
    "ASCEND_BLOCK_SIZE",
    "DEFAULT_DEVICE_RESERVED_BYTES",
    "DEFAULT_MAX_NUM_BATCHED_TOKENS",
    "DEFAULT_MAX_NUM_SEQS",
    "DEFAULT_MIN_MODEL_LEN",
    "NON_TORCH_BASE_BYTES",
    "activation_bytes",
    "cache_plan",
    "kv_bytes_for_length",
    "kv_fit",
]

GiB = 1 << 30
MiB = 1 << 20

# vllm-ascend platform default (vllm_ascend/platform.py, utils.refresh_block_size).
ASCEND_BLOCK_SIZE = 128
DEFAULT_MIN_MODEL_LEN = 4096
# vLLM EngineArgs.get_batch_defaults for `vllm serve` on devices under 70 GiB
# (every Ascend chip): max_num_batched_tokens 2048, max_num_seqs 256.
DEFAULT_MAX_NUM_BATCHED_TOKENS = 2048
DEFAULT_MAX_NUM_SEQS = 256
# npu-smi reports the full HBM (65536 MB on a 64 GB 910B) but the runtime sees
# less: torch_npu reports "60.96 GiB total capacity" there (vllm-ascend
# issues #1670, #5020), and an idle 910B4 shows 2849 of 32768 MB in use
# (#5414). 3 GiB covers both; pass 0 when chip memory is the runtime's total.
DEFAULT_DEVICE_RESERVED_BYTES = 3 * GiB
# ENGINEERING ESTIMATE (not measured in this project): CANN runtime context and
# ATB operator workspace outside torch's allocator, per process.
NON_TORCH_BASE_BYTES = 1 * GiB
# CANN docs (HCCL_BUFFSIZE): default 200 MB, each communicator holds 2 x HCCL_BUFFSIZE.
DEFAULT_HCCL_BUFFSIZE_MB = 200
# vLLM builds a world group and a tensor-parallel group once TP > 1.
HCCL_COMMUNICATORS_WITH_TP = 2
# vllm-ascend aligns hybrid attention blocks to 128-token kernel blocks
# (vllm_ascend/patch/platform/patch_mamba_config.py and patch_mamba_config_310.py,
# kernel_block_size = 128).
KERNEL_BLOCK_ALIGNMENT = 128
# vLLM CacheConfig.mamba_cache_mode: "none" without prefix caching (vLLM's and
# the vllm-ascend tutorials' default for hybrid models), "align" with it.
MAMBA_CACHE_MODES = ("none", "align")
# The sampler's dummy run holds logits in the model dtype plus float32 copies
# (logits and probabilities): dtype bytes + 2 x 4 per vocabulary entry and sequence.
SAMPLER_FLOAT32_COPIES = 2

_REQUIRED = (
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "hidden_size",
    "dtype_bytes",
    "attention",
    "kv_cache_bytes_per_token_per_layer",
    "kv_cache_full_layers",
    "kv_cache_sliding_layers",
    "effective_context",
)


def _cdiv(a: int, b: int) -> int:
    """Ceiling division, as vLLM's cdiv."""
    return -(-a // b)


def _gib(value: float) -> str:
    """Bytes as 'x.y GiB' for messages."""
    return "%.1f GiB" % (value / GiB)


def _check_inputs(
    profile: Any, tp: Any, util: Any, block_size: Any, min_model_len: Any, max_num_seqs: Any, max_num_batched_tokens: Any
) -> None:
    """Reject inputs that make the arithmetic meaningless, naming the input."""
    if not isinstance(profile, dict):
        raise ValueError("profile must be a dict as returned by npu.fleet.model_profile, got %s" % type(profile).__name__)
    missing = [k for k in _REQUIRED if k not in profile]
    if missing:
        raise ValueError("profile lacks %s; pass the 'profile' returned by npu.fleet.model_profile" % ", ".join(missing))
    for name, value in (
        ("tensor_parallel_size", tp),
        ("block_size", block_size),
        ("min_model_len", min_model_len),
        ("max_num_seqs", max_num_seqs),
        ("max_num_batched_tokens", max_num_batched_tokens),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError("%s must be a positive integer, got %r" % (name, value))
    if isinstance(util, bool) or not isinstance(util, (int, float)) or not 0 < util <= 1:
        raise ValueError("gpu_memory_utilization must be in (0, 1], got %r" % (util,))


def _chip_bytes(chip_memory_bytes: Any, chip_memory_mb: Any) -> int:
    """Exactly one of bytes / MiB, as a positive integer of bytes."""
    if (chip_memory_bytes is None) == (chip_memory_mb is None):
        raise ValueError("give exactly one of chip_memory_bytes or chip_memory_mb")
    value = chip_memory_bytes if chip_memory_bytes is not None else chip_memory_mb
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError("chip memory must be a positive number, got %r" % (value,))
    return int(value) if chip_memory_bytes is not None else int(value * MiB)


def _version_tuple(version: Optional[str]) -> Optional[Tuple[int, int]]:
    """(major, minor) of 'v0.18.0rc1' / '0.18.0'; None when unknown."""
    if not version:
        return None
    match = re.match(r"v?(\d+)\.(\d+)", str(version))
    return (int(match.group(1)), int(match.group(2))) if match else None


def _halves_budget(chip_family: Optional[str], version: Optional[str]) -> bool:
    """True where the 310P worker halves the KV budget ("halved for workspace").

    Present at vllm-ascend v0.18.0 and v0.23.0, absent at v0.14.0rc1 and
    v0.15.0rc1 (vllm_ascend/_310p/worker_310p.py). Versions in between were not
    checked, so only a known version below 0.16 is treated as not halving.
    """
    if not chip_family or "310p" not in str(chip_family).lower():
        return False
    parsed = _version_tuple(version)
    return parsed is None or parsed >= (0, 16)


def _kv_heads_per_rank(profile: Dict[str, Any], tp: int) -> Tuple[Optional[int], Optional[str]]:
    """KV heads one rank caches, or the reason vLLM refuses this TP size."""
    heads = profile["num_attention_heads"]
    if heads % tp:
        return None, "vLLM requires num_attention_heads (%d) to be divisible by tensor_parallel_size (%d)" % (heads, tp)
    if profile["attention"] == "mla":
        return 1, None  # the latent cache is replicated on every rank
    kv = profile["num_key_value_heads"]
    if (kv >= tp and kv % tp) or (kv < tp and tp % kv):
        return None, ("vLLM requires num_key_value_heads (%d) and tensor_parallel_size (%d) to divide one another" % (kv, tp))
    return max(1, kv // tp), None


def _per_layer_bytes(profile: Dict[str, Any], kv_per_rank: int) -> int:
    """KV bytes per token and layer on one rank (MLA: not split by TP)."""
    if profile["attention"] == "mla":
        return profile["kv_cache_bytes_per_token_per_layer"]
    return 2 * kv_per_rank * profile["head_dim"] * profile["dtype_bytes"]


def _group_layout(counts: List[Tuple[str, int]]) -> Tuple[int, List[Tuple[str, int]]]:
    """vLLM's KV cache groups: (layers per group, [(kind, number of groups)]).

    One kind: one group of all its layers. Several kinds
    (``_get_kv_cache_groups_uniform_page_size``, kv_cache_utils.py): the group
    size is the smallest kind's layer count, or the largest when that is below
    1.5 x the smallest; each kind is split into cdiv(layers, group size) groups,
    the last one padded.
    """
    present = [(kind, n) for kind, n in counts if n > 0]
    if len(present) <= 1:
        return (present[0][1] if present else 0), [(kind, 1) for kind, _n in present]
    low = min(n for _k, n in present)
    high = max(n for _k, n in present)
    size = high if high < low * 1.5 else low
    return size, [(kind, _cdiv(n, size)) for kind, n in present]


def cache_plan(
    profile: Dict[str, Any],
    per_layer: int,
    kv_per_rank: int,
    tp: int = 1,
    block_size: int = ASCEND_BLOCK_SIZE,
    sliding_window_as_full: bool = False,
    chip_family: Optional[str] = None,
    mamba_cache_mode: str = "none",
    num_speculative_tokens: int = 0,
) -> Dict[str, Any]:
    """How vLLM lays out one rank's cache: block size, page, groups, state blocks per sequence.

    Attention-only models: page = block x per_layer bytes. Models with
    per-sequence state (linear attention, Mamba, short convolution) follow
    vllm-ascend's ``HybridAttentionMambaModelConfig.verify_and_update_config``
    patch (vllm_ascend/patch/platform/patch_mamba_config.py @ 182b75ea): the
    attention block is 128 x cdiv(ssm page, 128 x K bytes per token) tokens and
    must make the K page exactly the SSM page ("Cannot align ssm_page_size and
    attn_page_size." otherwise), and every page is block x KV bytes per token +
    conv state; on the 310P (patch_mamba_config_310.py) the block is
    128 x cdiv(state, 128 x KV bytes per token) and the page block x KV bytes.
    A state group needs 1 + num_speculative_tokens pages per sequence ("none")
    or 2 + num_speculative_tokens ("align"; MambaSpec.max_memory_usage_bytes).
    Sets ``refusal`` where vLLM would not start.
    """
    full = profile.get("kv_cache_full_layers", 0)
    sliding = profile.get("kv_cache_sliding_layers", 0)
    if sliding_window_as_full or not profile.get("sliding_window"):
        full, sliding = full + sliding, 0
    state_layers = profile.get("state_layers") or 0
    plan = {
        "block": block_size,
        "page": block_size * per_layer,
        "refusal": None,
        "state_layers": state_layers,
        "state_bytes_per_layer": 0,
        "state_pages_per_sequence": 0,
        "state_tensors": [],
    }  # type: Dict[str, Any]
    if state_layers:
        _state_page(profile, plan, per_layer, kv_per_rank, tp, chip_family, mamba_cache_mode, num_speculative_tokens, full + sliding)
    size, groups = _group_layout([("full", full), ("sliding", sliding), ("state", state_layers)])
    plan.update({"group_size": size, "groups": groups, "full_layers": full, "sliding_layers": sliding})
    return plan


def _state_page(
    profile: Dict[str, Any],
    plan: Dict[str, Any],
    per_layer: int,
    kv_per_rank: int,
    tp: int,
    chip_family: Optional[str],
    mode: str,
    num_spec: int,
    attention_layers: int,
) -> None:
    """Fill the plan's block, page and state figures for a model with per-sequence state."""
    spec = profile.get("state_spec")
    if not spec:
        plan["refusal"] = "the profile has state layers but no state_spec; profile the checkpoint again"
        return
    try:
        tensors = state_tensor_bytes(spec, tp, num_spec)
        shapes = state_shapes(spec, tp, num_spec)
    except ValueError as exc:
        plan["refusal"] = str(exc)
        return
    raw = sum(size for _name, size in tensors)
    plan.update(
        {
            "state_bytes_per_layer": raw,
            "state_tensors": [[name, size] for name, size in tensors],
            "state_pages_per_sequence": (2 if mode == "align" else 1) + num_spec,
        }
    )
    if not attention_layers:  # pure state-space model: no alignment, one state per page
        plan["page"] = raw
        return
    dtype = profile["dtype_bytes"]
    if profile.get("attention") == "mla":
        k_token = profile["kv_lora_rank"] * dtype
    else:
        k_token = profile["head_dim"] * kv_per_rank * dtype
    align = KERNEL_BLOCK_ALIGNMENT
    if chip_family and "310p" in str(chip_family).lower():
        if profile.get("attention") == "mla":
            plan["refusal"] = "vllm-ascend: MLA is not supported on 310P currently (hybrid models)"
            return
        block = max(plan["block"], align * _cdiv(raw, align * per_layer))
        plan.update({"block": block, "page": block * per_layer})
        return
    sizes = [size for _name, size in tensors]
    ssm, conv = max(sizes), min(sizes)
    if len(shapes) == 1 and len(shapes[0][1]) == 3:  # linear attention: SSM state only
        conv = 0
    block = align * _cdiv(ssm, align * k_token)
    if block * k_token != ssm:
        plan["refusal"] = (
            "vllm-ascend cannot align the %d B state page with %d B of K per token in %d-token blocks and stops with "
            "'Cannot align ssm_page_size and attn_page_size.' (patch_mamba_config.py)" % (ssm, k_token, align)
        )
        return
    block = max(plan["block"], block)
    plan.update({"block": block, "page": block * per_layer + conv})


def _plan_need(plan: Dict[str, Any], length: int, window: Optional[int], max_num_batched_tokens: int) -> int:
    """Bytes one request of ``length`` tokens takes: group size x page x pages of every group.

    ``_max_memory_usage_bytes_from_groups`` (kv_cache_utils.py): full attention
    cdiv(len, block) pages, sliding window cdiv(min(window - 1 + T, len), block) + 1
    (SlidingWindowSpec), state the plan's pages per sequence (MambaSpec).
    """
    block = plan["block"]
    pages = 0
    for kind, count in plan["groups"]:
        if kind == "full":
            pages += count * _cdiv(length, block)
        elif kind == "sliding":
            pages += count * (_cdiv(min(window - 1 + max_num_batched_tokens, length), block) + 1)
        else:
            pages += count * plan["state_pages_per_sequence"]
    return plan["group_size"] * plan["page"] * pages


def kv_bytes_for_length(
    profile: Dict[str, Any],
    length: int,
    per_layer: int,
    block_size: int,
    max_num_batched_tokens: int,
    sliding_window_as_full: bool = False,
    kv_per_rank: Optional[int] = None,
    tensor_parallel_size: int = 1,
    chip_family: Optional[str] = None,
    mamba_cache_mode: str = "none",
    num_speculative_tokens: int = 0,
) -> int:
    """KV cache (and state) bytes one request of ``length`` tokens needs on one rank, per vLLM's specs.

    Full-attention layers: ``cdiv(length, block) x page``; sliding-window
    layers: ``(cdiv(min(window - 1 + max_num_batched_tokens, length), block) + 1) x page``
    (SlidingWindowSpec.max_memory_usage_bytes), where page = block x per_layer;
    layers with state: their pages per sequence (see ``cache_plan``). Layers are
    counted in vLLM's groups, so padding layers cost what they cost there. With
    the hybrid KV cache manager disabled vLLM budgets sliding layers as full
    ones; ``sliding_window_as_full`` models that.
    """
    plan = cache_plan(
        profile,
        per_layer,
        kv_per_rank if kv_per_rank is not None else max(1, profile.get("num_key_value_heads", 1) // tensor_parallel_size),
        tensor_parallel_size,
        block_size,
        sliding_window_as_full,
        chip_family,
        mamba_cache_mode,
        num_speculative_tokens,
    )
    if plan["refusal"]:
        raise ValueError(plan["refusal"])
    return _plan_need(plan, length, profile.get("sliding_window"), max_num_batched_tokens)


def activation_bytes(profile: Dict[str, Any], tp: int, max_num_batched_tokens: int, max_num_seqs: int) -> int:
    """ENGINEERING ESTIMATE of the torch peak during vLLM's profile_run, per rank.

    profile_run pushes ``max_num_batched_tokens`` tokens through the model and
    samples ``min(max_num_seqs, max_num_batched_tokens)`` rows of logits.
    Activations are freed layer by layer, so the peak is one layer's widest
    temporaries plus the residual stream, plus the sampler's logits:

    * 4 hidden-size buffers per token (residual, normed input, attention and MLP output);
    * the wider of the fused QKV output and the MLP intermediates
      (gate+up and activation: 3 x intermediate / TP; MoE: top-k copies of
      3 x expert intermediate / TP plus the hidden-size output per copy);
    * logits: sequences x vocab x (dtype + 2 float32 copies).
    """
    act = profile["dtype_bytes"]
    tokens = max_num_batched_tokens
    hidden = profile["hidden_size"]
    heads, head_dim = profile["num_attention_heads"], profile["head_dim"]
    if profile["attention"] == "mla":
        qkv = tokens * heads * 2 * head_dim // tp
    else:
        qkv = tokens * (heads + 2 * profile["num_key_value_heads"]) * head_dim // tp
    inter = profile.get("intermediate_size") or 4 * hidden
    mlp = tokens * 3 * inter // tp
    moe = profile.get("moe")
    if moe:
        top_k = moe.get("active_experts") or 1
        expert_inter = moe.get("expert_intermediate_size") or inter
        mlp = max(mlp if moe.get("dense_layers") else 0, tokens * top_k * (3 * expert_inter // tp + hidden))
    sequences = min(max_num_seqs, tokens)
    sampler = sequences * (profile.get("vocab_size") or 0) * (act + 4 * SAMPLER_FLOAT32_COPIES)
    return 4 * tokens * hidden * act + max(qkv, mlp) * act + sampler


def _non_torch_bytes(tp: int, hccl_buffsize_mb: int) -> int:
    """Memory outside torch's allocator: runtime/workspace estimate plus HCCL buffers (sourced)."""
    hccl = HCCL_COMMUNICATORS_WITH_TP * 2 * hccl_buffsize_mb * MiB if tp > 1 else 0
    return NON_TORCH_BASE_BYTES + hccl


def _weights_per_rank(profile: Dict[str, Any], tp: int, kv_per_rank: int) -> Tuple[int, str]:
    """Weight bytes one rank holds: an even TP split plus replicated K/V projections.

    vLLM shards every linear layer and the vocabulary across TP ranks; when TP
    exceeds the KV head count, QKVParallelLinear replicates K/V heads so each
    rank still holds one head: that surplus is added (attention layers only).
    """
    total = profile.get("weights_bytes")
    source = profile.get("weights_bytes_source") or "profile"
    if not total:
        total = (profile.get("parameters") or 0) * profile["dtype_bytes"]
        source = "estimate: parameters x dtype bytes"
    per_rank = _cdiv(total, tp)
    kv = profile["num_key_value_heads"]
    if profile["attention"] != "mla" and tp > kv:
        per_rank += (
            (profile.get("attention_layers") or profile["num_hidden_layers"])
            * 2
            * profile["hidden_size"]
            * profile["head_dim"]
            * profile["dtype_bytes"]
            * (kv_per_rank * tp - kv)
            // tp
        )
    return per_rank, source


def _budget(profile: Dict[str, Any], tp: int, settings: Dict[str, Any]) -> Dict[str, Any]:
    """Memory arithmetic for one TP size: everything except the verdict."""
    kv_per_rank, refusal = _kv_heads_per_rank(profile, tp)
    usable = settings["chip_bytes"] - settings["device_reserved"]
    requested = int(usable * settings["util"])
    result = {"refusal": refusal, "usable": usable, "requested": requested}
    if refusal:
        return result
    per_layer = _per_layer_bytes(profile, kv_per_rank)
    plan = cache_plan(
        profile,
        per_layer,
        kv_per_rank,
        tp,
        settings["block_size"],
        settings["sliding_as_full"],
        settings["chip_family"],
        settings["mamba_cache_mode"],
        settings["num_spec"],
    )
    if plan["refusal"]:
        result["refusal"] = plan["refusal"]
        return result
    weights, weights_source = _weights_per_rank(profile, tp, kv_per_rank)
    if settings["reserve_bytes"] is not None:
        activation, non_torch, reserve_source = None, None, "given"
        reserve = settings["reserve_bytes"]
    else:
        activation = activation_bytes(profile, tp, settings["mbt"], settings["max_num_seqs"])
        non_torch = _non_torch_bytes(tp, settings["hccl_buffsize_mb"])
        reserve, reserve_source = activation + non_torch, "estimate"
    available = requested - weights - reserve
    if settings["halve"] and available > 0:
        available //= 2
    result.update(
        {
            "kv_per_rank": kv_per_rank,
            "weights": weights,
            "weights_source": weights_source,
            "activation": activation,
            "non_torch": non_torch,
            "reserve": reserve,
            "reserve_source": reserve_source,
            "available": available,
            "per_layer": per_layer,
            "plan": plan,
        }
    )
    return result


def _need(profile: Dict[str, Any], budget: Dict[str, Any], length: int, settings: Dict[str, Any]) -> int:
    """KV (and state) bytes for one request of ``length`` tokens under this budget's TP split."""
    return _plan_need(budget["plan"], length, profile.get("sliding_window"), settings["mbt"])


def _max_fit(profile: Dict[str, Any], budget: Dict[str, Any], settings: Dict[str, Any]) -> int:
    """Largest length that fits: a block multiple, or the whole effective context."""
    block = budget["plan"]["block"]
    context = profile["effective_context"]
    if budget["available"] <= 0:
        return 0
    if _need(profile, budget, context, settings) <= budget["available"]:
        return context
    low, high = 0, context // block  # invariant: low blocks fit (0 trivially), high + 1 do not
    while low < high:
        mid = (low + high + 1) // 2
        if _need(profile, budget, mid * block, settings) <= budget["available"]:
            low = mid
        else:
            high = mid - 1
    return low * block


def _suggest_tp(profile: Dict[str, Any], tp: int, floor: int, settings: Dict[str, Any]) -> Optional[int]:
    """Smallest larger power-of-two TP size (up to 16) at which ``floor`` tokens fit."""
    for candidate in (2, 4, 8, 16):
        if candidate <= tp:
            continue
        budget = _budget(profile, candidate, settings)
        if budget["refusal"]:
            continue
        if budget["available"] > 0 and _need(profile, budget, floor, settings) <= budget["available"]:
            return candidate
    return None


def _where(chip_bytes: int, tp: int, util: float) -> str:
    """'on one 32 GiB chip at 0.90' / 'on each of 2 32 GiB chips at 0.90'."""
    size = chip_bytes / GiB
    size_text = ("%d GiB" % size) if size == int(size) else ("%.1f GiB" % size)
    chips = "one %s chip" % size_text if tp == 1 else "each of %d %s chips" % (tp, size_text)
    return "on %s at %.2f" % (chips, util)


def kv_fit(
    profile: Dict[str, Any],
    chip_memory_bytes: Optional[int] = None,
    chip_memory_mb: Optional[float] = None,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.9,
    block_size: int = ASCEND_BLOCK_SIZE,
    max_model_len: Optional[int] = None,
    min_model_len: int = DEFAULT_MIN_MODEL_LEN,
    max_num_seqs: int = DEFAULT_MAX_NUM_SEQS,
    max_num_batched_tokens: int = DEFAULT_MAX_NUM_BATCHED_TOKENS,
    concurrency_len: Optional[int] = None,
    chip_family: Optional[str] = None,
    vllm_ascend_version: Optional[str] = None,
    device_reserved_bytes: Optional[int] = None,
    reserve_bytes: Optional[int] = None,
    hccl_buffsize_mb: int = DEFAULT_HCCL_BUFFSIZE_MB,
    sliding_window_as_full: bool = False,
    mamba_cache_mode: str = "none",
    num_speculative_tokens: int = 0,
) -> Dict[str, Any]:
    """Decide whether ``profile`` serves ``max_model_len`` tokens on this chip.

    ``chip_memory_*`` is one chip's HBM as npu-smi reports it; the runtime
    sees ``device_reserved_bytes`` less (default DEFAULT_DEVICE_RESERVED_BYTES).
    ``max_model_len`` defaults to what vLLM would use without the flag.
    Linear-attention and Mamba layers add their state once per sequence
    (``mamba_cache_mode`` "none" without prefix caching, "align" with it;
    ``num_speculative_tokens`` for MTP/EAGLE), in vLLM's block groups.
    Returns a dict whose ``verdict`` is ``fits``, ``capped`` (use
    ``recommended_max_model_len``) or ``does_not_fit``, with ``message`` saying
    why in numbers. Raises ValueError for invalid inputs.
    """
    _check_inputs(profile, tensor_parallel_size, gpu_memory_utilization, block_size, min_model_len, max_num_seqs, max_num_batched_tokens)
    for name, value in (
        ("max_model_len", max_model_len),
        ("concurrency_len", concurrency_len),
        ("device_reserved_bytes", device_reserved_bytes),
        ("reserve_bytes", reserve_bytes),
        ("num_speculative_tokens", num_speculative_tokens),
    ):
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < 0
            or (value == 0 and name in ("max_model_len", "concurrency_len"))
        ):
            raise ValueError("%s must be a positive integer, got %r" % (name, value))
    if mamba_cache_mode not in MAMBA_CACHE_MODES:
        raise ValueError("mamba_cache_mode must be one of %s, got %r" % (", ".join(MAMBA_CACHE_MODES), mamba_cache_mode))
    chip = _chip_bytes(chip_memory_bytes, chip_memory_mb)
    tp = tensor_parallel_size
    settings = {
        "chip_bytes": chip,
        "device_reserved": DEFAULT_DEVICE_RESERVED_BYTES if device_reserved_bytes is None else device_reserved_bytes,
        "util": float(gpu_memory_utilization),
        "block_size": block_size,
        "mbt": max_num_batched_tokens,
        "max_num_seqs": max_num_seqs,
        "reserve_bytes": reserve_bytes,
        "hccl_buffsize_mb": hccl_buffsize_mb,
        "halve": _halves_budget(chip_family, vllm_ascend_version),
        "sliding_as_full": bool(sliding_window_as_full),
        "chip_family": chip_family,
        "mamba_cache_mode": mamba_cache_mode,
        "num_spec": num_speculative_tokens,
    }
    if settings["device_reserved"] >= chip:
        raise ValueError("device_reserved_bytes (%d) must be below the chip memory (%d)" % (settings["device_reserved"], chip))
    context = profile["effective_context"]
    requested_len = max_model_len or profile.get("default_max_model_len") or context
    floor = min(min_model_len, context)
    budget = _budget(profile, tp, settings)
    where = _where(chip, tp, settings["util"])
    result = _base_result(profile, tp, settings, budget, requested_len, floor)
    reasons = []  # type: List[str]

    if budget["refusal"]:
        return _finish(result, "does_not_fit", None, budget["refusal"] + ".", [budget["refusal"]])
    target = requested_len
    if requested_len > context:
        reasons.append(
            "max_model_len %d exceeds the model's context of %d tokens (%s); vLLM refuses it unless "
            "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1" % (requested_len, context, profile.get("context_rule", ""))
        )
        target = context
    halved = " (halved by the 310P worker)" if settings["halve"] else ""
    if budget["available"] <= 0:
        return _no_memory(result, profile, budget, settings, tp, floor, where, reasons)
    max_fit = _max_fit(profile, budget, settings)
    need = _need(profile, budget, target, settings)
    need_requested = _need(profile, budget, requested_len, settings)
    result.update({"kv_needed_bytes": need_requested, "max_model_len_fit": max_fit})
    head = "%d tokens need %s of KV cache%s, %s is available%s %s" % (
        requested_len,
        _gib(need_requested),
        _state_clause(profile, budget["plan"]),
        _gib(budget["available"]),
        halved,
        where,
    )
    if need <= budget["available"]:
        verdict = "capped" if target != requested_len else "fits"
        message = head + ("; capped to the model's context, %d." % target if verdict == "capped" else "; fits.")
        recommended = target
    elif max_fit >= floor:
        verdict, recommended = "capped", max_fit
        message = head + "; capped to %d." % max_fit
        reasons.append("%d tokens do not fit; %d is the longest block-aligned length that does" % (target, max_fit))
    else:
        need_floor = _need(profile, budget, floor, settings)
        suggestion = _suggest_tp(profile, tp, floor, settings)
        result["suggested_tensor_parallel_size"] = suggestion
        message = "even min_model_len %d tokens need %s of KV cache, but only %s is available%s %s; the longest that fits is %d%s." % (
            floor,
            _gib(need_floor),
            _gib(budget["available"]),
            halved,
            where,
            max_fit,
            _tp_hint(suggestion),
        )
        reasons.append("below min_model_len %d: only %d tokens fit" % (floor, max_fit))
        return _finish(result, "does_not_fit", None, message, reasons)
    _concurrency(result, profile, budget, settings, concurrency_len or recommended)
    return _finish(result, verdict, recommended, message, reasons)


def _state_clause(profile: Dict[str, Any], plan: Dict[str, Any]) -> str:
    """' (with 3.0 MiB of state per sequence for 36 gated_delta_net layers)' for models with state; '' otherwise."""
    if not plan["state_layers"]:
        return ""
    return " (with %s of state per sequence for %d %s layers)" % (
        _mib(plan["state_bytes_per_layer"] * plan["state_layers"]),
        plan["state_layers"],
        profile.get("state_kind") or "state",
    )


def _mib(value: float) -> str:
    """Bytes as 'x.y MiB' for messages."""
    return "%.1f MiB" % (value / MiB)


def _tp_hint(suggestion: Optional[int]) -> str:
    """Message tail proposing a TP size, if one helps."""
    if suggestion:
        return "; try tensor_parallel_size %d" % suggestion
    return "; no tensor_parallel_size up to 16 helps: use a larger chip or a quantized checkpoint"


def _no_memory(
    result: Dict[str, Any],
    profile: Dict[str, Any],
    budget: Dict[str, Any],
    settings: Dict[str, Any],
    tp: int,
    floor: int,
    where: str,
    reasons: List[str],
) -> Dict[str, Any]:
    """Verdict when nothing is left for the KV cache ("No available memory for the cache blocks")."""
    suggestion = _suggest_tp(profile, tp, floor, settings)
    result["suggested_tensor_parallel_size"] = suggestion
    if budget["weights"] >= budget["requested"]:
        message = "weights alone need %s per chip, more than the %s budget (%.2f of %s usable) %s%s." % (
            _gib(budget["weights"]),
            _gib(budget["requested"]),
            settings["util"],
            _gib(budget["usable"]),
            where,
            _tp_hint(suggestion),
        )
        reasons.append("weights exceed the memory budget")
    else:
        message = (
            "weights (%s) plus the runtime reserve (%s) leave no memory for the KV cache within the %s budget "
            "%s; vLLM stops with 'No available memory for the cache blocks'%s."
            % (_gib(budget["weights"]), _gib(budget["reserve"]), _gib(budget["requested"]), where, _tp_hint(suggestion))
        )
        reasons.append("no available memory for the cache blocks")
    result["max_model_len_fit"] = 0
    return _finish(result, "does_not_fit", None, message, reasons)


def _concurrency(result: Dict[str, Any], profile: Dict[str, Any], budget: Dict[str, Any], settings: Dict[str, Any], length: int) -> None:
    """How many requests of ``length`` tokens the cache holds (vLLM's 'Maximum concurrency')."""
    length = min(length, profile["effective_context"])
    per_request = _need(profile, budget, length, settings)
    ratio = budget["available"] / per_request if per_request else 0.0
    result.update(
        {
            "concurrency_len": length,
            "max_concurrency": round(ratio, 2),
            "concurrent_sequences": min(int(ratio), settings["max_num_seqs"]),
        }
    )


def _base_result(
    profile: Dict[str, Any], tp: int, settings: Dict[str, Any], budget: Dict[str, Any], requested_len: int, floor: int
) -> Dict[str, Any]:
    """Every number of the arithmetic, for users who want to check it.

    ``kv_cache_blocks`` / ``kv_cache_tokens`` are vLLM's own "GPU KV cache size"
    line: the pool's blocks (available // page // layers per group) divided by
    the number of groups, times the block size (``_report_kv_cache_config``).
    """
    per_layer = budget.get("per_layer")
    plan = budget.get("plan")
    available = budget.get("available")
    pool = 0
    if plan and available and available > 0 and plan["page"] and plan["group_size"]:
        pool = available // plan["page"] // plan["group_size"]
    groups = sum(count for _kind, count in plan["groups"]) if plan else 0
    blocks = pool // groups if groups else 0
    block = plan["block"] if plan else settings["block_size"]
    state_groups = sum(count for kind, count in plan["groups"] if kind == "state") if plan else 0
    return {
        "verdict": None,
        "message": None,
        "reasons": [],
        "requested_max_model_len": requested_len,
        "recommended_max_model_len": None,
        "max_model_len_fit": None,
        "min_model_len": floor,
        "effective_context": profile["effective_context"],
        "tensor_parallel_size": tp,
        "gpu_memory_utilization": settings["util"],
        "block_size": block,
        "max_num_batched_tokens": settings["mbt"],
        "max_num_seqs": settings["max_num_seqs"],
        "chip_memory_bytes": settings["chip_bytes"],
        "device_reserved_bytes": settings["device_reserved"],
        "budget_bytes": budget["requested"],
        "weights_bytes_per_chip": budget.get("weights"),
        "weights_bytes_source": budget.get("weights_source"),
        "activation_bytes": budget.get("activation"),
        "non_torch_bytes": budget.get("non_torch"),
        "reserve_bytes": budget.get("reserve"),
        "reserve_source": budget.get("reserve_source"),
        "kv_halved_310p": settings["halve"],
        "kv_available_bytes": available,
        "kv_bytes_per_token_per_layer": per_layer,
        "kv_bytes_per_token": per_layer * profile["kv_cache_full_layers"] if per_layer else None,
        "kv_cache_blocks": blocks,
        "kv_cache_tokens": blocks * block,
        "kv_needed_bytes": None,
        "concurrency_len": None,
        "max_concurrency": None,
        "concurrent_sequences": None,
        "suggested_tensor_parallel_size": None,
        "kv_page_bytes": plan["page"] if plan else None,
        "kv_cache_group_size": plan["group_size"] if plan else None,
        "kv_cache_groups": [[kind, count] for kind, count in plan["groups"]] if plan else None,
        "kv_pool_blocks": pool,
        "state_layers": plan["state_layers"] if plan else profile.get("state_layers") or 0,
        "state_bytes_per_layer": plan["state_bytes_per_layer"] if plan else None,
        "state_bytes_per_sequence": plan["state_bytes_per_layer"] * plan["state_layers"] if plan else None,
        "state_bytes_per_sequence_budgeted": (
            plan["group_size"] * plan["page"] * state_groups * plan["state_pages_per_sequence"] if plan else None
        ),
        "mamba_cache_mode": settings["mamba_cache_mode"],
        "num_speculative_tokens": settings["num_spec"],
        "cache_layout": _layout_sentence(profile, plan, per_layer),
    }


def _layout_sentence(profile: Dict[str, Any], plan: Optional[Dict[str, Any]], per_layer: Optional[int]) -> Optional[str]:
    """Which layers hold what on one rank, in vLLM's blocks and groups."""
    if not plan:
        return None
    parts = []
    if plan["full_layers"]:
        parts.append("%d full-attention layer slot(s) x %d B of KV per token" % (plan["full_layers"], per_layer))
    if plan["sliding_layers"]:
        parts.append(
            "%d sliding-window layer slot(s) bounded by the %s-token window" % (plan["sliding_layers"], profile.get("sliding_window"))
        )
    if plan["state_layers"]:
        tensors = " + ".join("%s %d B" % (name, size) for name, size in plan["state_tensors"])
        parts.append(
            "%d %s layer(s) x one state per sequence (%s), %d page(s) per sequence"
            % (plan["state_layers"], profile.get("state_kind") or "state", tensors, plan["state_pages_per_sequence"])
        )
    groups = ", ".join("%d %s" % (count, kind) for kind, count in plan["groups"])
    return "%s; %d-token blocks, pages of %d B, groups of %d layer(s): %s." % (
        "; ".join(parts) or "no cache",
        plan["block"],
        plan["page"],
        plan["group_size"],
        groups or "none",
    )


def _finish(result: Dict[str, Any], verdict: str, recommended: Optional[int], message: str, reasons: List[str]) -> Dict[str, Any]:
    """Set the verdict fields last, so every return path fills the same keys."""
    result.update({"verdict": verdict, "recommended_max_model_len": recommended, "message": message, "reasons": reasons})
    return result
