# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: kv_fit
short_description: Decide whether a model's KV cache fits on an Ascend chip, and with which max_model_len
version_added: 0.1.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - Takes the profile returned by M(npu.fleet.model_profile) and mirrors how vLLM and vllm-ascend budget device memory
    at start-up - total memory times C(gpu_memory_utilization), minus weights, activation peak and non-torch memory -
    then checks that one request of O(max_model_len) tokens fits in the KV cache that remains.
  - Linear-attention, Mamba and short-convolution layers hold a fixed state per sequence instead of KV per token; it is
    sized as vLLM sizes it and counted once per request in vLLM's block groups, with the block and page sizes
    vllm-ascend aligns for such models.
  - Returns a verdict (V(fits), V(capped) or V(does_not_fit)) with a sentence in numbers, the largest block-aligned
    C(max_model_len) that fits and how many sequences of a given length fit at once.
  - Below O(min_model_len) the verdict is V(does_not_fit); the length is never shrunk silently. When the weights alone
    exceed the budget, a larger tensor parallel size is suggested.
  - The activation peak and non-torch memory are engineering estimates (see C(docs/memory.md)); pass O(reserve_bytes)
    measured from a real C(Available KV cache memory) log line to replace them.
positional: _input
options:
  _input:
    description: The C(profile) returned by M(npu.fleet.model_profile).
    type: dict
    required: true
  chip_memory_mb:
    description:
      - HBM of one chip in MiB as C(npu-smi info) reports it (for example V(32768) or V(65536)).
      - Exactly one of O(chip_memory_mb) and O(chip_memory_bytes) is required.
    type: float
  chip_memory_bytes:
    description: HBM of one chip in bytes.
    type: int
  tensor_parallel_size:
    description: Chips one replica is split over (vLLM C(--tensor-parallel-size)).
    type: int
    default: 1
  gpu_memory_utilization:
    description: Fraction of the chip vLLM may use (C(--gpu-memory-utilization)).
    type: float
    default: 0.9
  block_size:
    description: KV cache block size in tokens; vllm-ascend uses 128.
    type: int
    default: 128
  max_model_len:
    description: Requested context. Defaults to what vLLM uses without C(--max-model-len).
    type: int
  min_model_len:
    description: Shortest context worth serving; below it the verdict is V(does_not_fit).
    type: int
    default: 4096
  max_num_seqs:
    description: vLLM C(--max-num-seqs); caps RV(_value.concurrent_sequences) and sizes the sampler's profiling run.
    type: int
    default: 256
  max_num_batched_tokens:
    description: vLLM C(--max-num-batched-tokens); sizes the profiling run and the sliding-window allowance.
    type: int
    default: 2048
  concurrency_len:
    description: Sequence length for RV(_value.max_concurrency). Defaults to the recommended C(max_model_len).
    type: int
  chip_family:
    description: Chip family, for example V(910b) or V(310p). On V(310p) the vllm-ascend worker halves the KV budget.
    type: str
  vllm_ascend_version:
    description: vllm-ascend version, used to decide whether the 310P halving applies (from v0.16 on, conservatively).
    type: str
  device_reserved_bytes:
    description:
      - HBM the driver keeps from the runtime. Defaults to 3 GiB (a 64 GB 910B shows 60.96 GiB total to torch_npu).
      - Set V(0) when O(chip_memory_mb) is already the runtime's total.
    type: int
  reserve_bytes:
    description: Measured non-KV, non-weight memory per chip (activation peak plus non-torch), replacing the estimate.
    type: int
  hccl_buffsize_mb:
    description: C(HCCL_BUFFSIZE) in MB; each HCCL communicator holds twice this much.
    type: int
    default: 200
  sliding_window_as_full:
    description: Budget sliding-window layers as full attention, as vLLM does with the hybrid KV cache manager disabled.
    type: bool
    default: false
  mamba_cache_mode:
    description:
      - vLLM C(--mamba-cache-mode) for models with linear-attention, Mamba or short-convolution layers. V(none) (prefix
        caching off, the default for hybrid models) keeps one state page per sequence and layer group, V(align)
        (prefix caching on) two.
    type: str
    choices: [none, align]
    default: none
  num_speculative_tokens:
    description: Speculative tokens (MTP, EAGLE); each adds a conv-state row and a state page per sequence for those layers.
    type: int
    default: 0
notes:
  - The arithmetic, its sources (vLLM and vllm-ascend files and commits) and worked examples are in C(docs/memory.md).
seealso:
  - module: npu.fleet.model_profile
"""

EXAMPLES = r"""
---
- name: Cap max_model_len to what one 32 GiB 910B4 chip holds
  ansible.builtin.set_fact:
    serve_fit: >-
      {{ qwen3_4b.profile | npu.fleet.kv_fit(chip_memory_mb=32768, tensor_parallel_size=1,
         gpu_memory_utilization=0.9, max_model_len=262144) }}

- name: Fail early with the reason in numbers
  ansible.builtin.assert:
    that:
      - serve_fit.verdict != 'does_not_fit'
    fail_msg: "{{ serve_fit.message }}"

- name: Use the recommended context
  ansible.builtin.debug:
    msg: "--max-model-len {{ serve_fit.recommended_max_model_len }}"
"""

RETURN = r"""
_value:
  description: The fit. Byte figures are per chip.
  type: dict
  contains:
    verdict:
      description: V(fits), V(capped) (use RV(_value.recommended_max_model_len)) or V(does_not_fit).
      type: str
      sample: capped
    message:
      description: The verdict in one sentence with the numbers behind it.
      type: str
      sample: "262144 tokens need 36.0 GiB of KV cache, 17.1 GiB is available on one 32 GiB chip at 0.90; capped to 124416."
    reasons:
      description: Short reasons behind a V(capped) or V(does_not_fit) verdict.
      type: list
      elements: str
      sample: ["262144 tokens do not fit; 124416 is the longest block-aligned length that does"]
    requested_max_model_len:
      description: The length checked.
      type: int
      sample: 262144
    recommended_max_model_len:
      description: The C(--max-model-len) to pass, null when the verdict is V(does_not_fit).
      type: int
      sample: 124416
    max_model_len_fit:
      description: Longest length that fits (a block multiple, or the model's whole context).
      type: int
      sample: 124416
    min_model_len:
      description: The floor applied (O(min_model_len), at most the model's context).
      type: int
      sample: 4096
    effective_context:
      description: The model's context after RoPE scaling.
      type: int
      sample: 262144
    tensor_parallel_size:
      description: TP size used.
      type: int
      sample: 1
    gpu_memory_utilization:
      description: Utilisation used.
      type: float
      sample: 0.9
    block_size:
      description: Block size used; for models with per-sequence state, the one vllm-ascend aligns to the state page.
      type: int
      sample: 128
    max_num_batched_tokens:
      description: Batched tokens used.
      type: int
      sample: 2048
    max_num_seqs:
      description: Sequence limit used.
      type: int
      sample: 256
    chip_memory_bytes:
      description: Chip memory in bytes.
      type: int
      sample: 34359738368
    device_reserved_bytes:
      description: Memory assumed kept by the driver.
      type: int
      sample: 3221225472
    budget_bytes:
      description: (chip memory - device reserved) x utilisation, vLLM's requested memory.
      type: int
      sample: 28024661606
    weights_bytes_per_chip:
      description: Weight bytes per chip after the TP split, plus replicated K/V projections.
      type: int
      sample: 8044544000
    weights_bytes_source:
      description: Where the weight size came from.
      type: str
      sample: "estimate: parameters x dtype bytes"
    activation_bytes:
      description: Estimated activation peak of vLLM's profiling run, null when O(reserve_bytes) is given.
      type: int
      sample: 550436864
    non_torch_bytes:
      description: Estimated non-torch memory (runtime, workspace, HCCL), null when O(reserve_bytes) is given.
      type: int
      sample: 1073741824
    reserve_bytes:
      description: Activation plus non-torch memory, estimated or given.
      type: int
      sample: 1624178688
    reserve_source:
      description: V(estimate) or V(given).
      type: str
      sample: estimate
    kv_halved_310p:
      description: Whether the 310P worker's halving was applied.
      type: bool
      sample: false
    kv_available_bytes:
      description: KV cache memory per chip.
      type: int
      sample: 18355938918
    kv_bytes_per_token_per_layer:
      description: KV bytes per token and layer on one chip.
      type: int
      sample: 4096
    kv_bytes_per_token:
      description: KV bytes per token on one chip, layers that grow with the sequence.
      type: int
      sample: 147456
    kv_cache_blocks:
      description: Blocks the available memory holds across all cache layers (vLLM's pool divided by its groups).
      type: int
      sample: 972
    kv_cache_tokens:
      description: Tokens those blocks hold (vLLM's "KV cache size").
      type: int
      sample: 124416
    kv_needed_bytes:
      description: KV bytes one request of the requested length needs on one chip.
      type: int
      sample: 38654705664
    concurrency_len:
      description: Length used for the concurrency figures.
      type: int
      sample: 124416
    max_concurrency:
      description: Requests of RV(_value.concurrency_len) tokens the cache holds at once (vLLM's "Maximum concurrency").
      type: float
      sample: 1.0
    concurrent_sequences:
      description: Whole requests of that length that fit, at most O(max_num_seqs).
      type: int
      sample: 1
    suggested_tensor_parallel_size:
      description: A larger TP size at which O(min_model_len) fits, when the verdict is V(does_not_fit).
      type: int
      sample: 2
    kv_page_bytes:
      description: Bytes of one block of one layer (with per-sequence state, padded so every layer's page is equal).
      type: int
      sample: 268288
    kv_cache_group_size:
      description: Layers per vLLM KV cache group; the pool holds this many pages per block.
      type: int
      sample: 12
    kv_cache_groups:
      description: vLLM's KV cache groups as [kind, count] pairs (V(full), V(sliding), V(state)).
      type: list
      elements: list
      sample: [[full, 1], [state, 3]]
    kv_pool_blocks:
      description: Blocks in vLLM's pool (its C(num_gpu_blocks)), each one page of every layer of a group.
      type: int
      sample: 741
    state_layers:
      description: Layers that hold a fixed state per sequence (linear attention, Mamba, short convolution).
      type: int
      sample: 36
    state_bytes_per_layer:
      description: State bytes of one such layer for one sequence on one chip (conv plus recurrent/SSM state).
      type: int
      sample: 137216
    state_bytes_per_sequence:
      description: State bytes of all such layers for one sequence on one chip, before vLLM's page padding.
      type: int
      sample: 4939776
    state_bytes_per_sequence_budgeted:
      description: What vLLM sets aside per sequence for that state, in its padded pages and groups.
      type: int
      sample: 9658368
    mamba_cache_mode:
      description: The O(mamba_cache_mode) used.
      type: str
      sample: none
    num_speculative_tokens:
      description: The O(num_speculative_tokens) used.
      type: int
      sample: 0
    cache_layout:
      description: Which layers hold what on one chip, in vLLM's blocks, pages and groups.
      type: str
      sample: "12 full-attention layer slot(s) x 1024 B of KV per token; 36 gated_delta_net layer(s) x one state per sequence
        (conv 6144 B + ssm 131072 B), 1 page(s) per sequence; 256-token blocks, pages of 268288 B, groups of 12 layer(s):
        1 full, 3 state."
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.npu.fleet.plugins.module_utils._kv_fit import kv_fit as _kv_fit


def kv_fit(profile, **kwargs):
    """Apply npu.fleet's KV arithmetic to a model profile; see DOCUMENTATION."""
    try:
        return _kv_fit(profile, **kwargs)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("kv_fit: %s" % exc) from exc


class FilterModule:
    """npu.fleet KV cache filters."""

    def filters(self):
        """Map filter names to functions."""
        return {"kv_fit": kv_fit}
