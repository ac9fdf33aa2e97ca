"""Logits processors: per-request seeded sampling and the counted repetition penalty.

Sampling is done here rather than by ``generate(do_sample=True)`` because that
draws from torch's global generator: with several generations running in
threads, a ``seed`` would not reproduce anything. Each request gets its own
``torch.Generator``; ``generate`` runs greedy and this processor leaves only
the sampled token finite, so the argmax is the sample.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor
from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor


class SeededSampler(LogitsProcessor):
    def __init__(self, temperature: float, top_p: float = 1.0, top_k: int = 0, seed=None):
        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k
        self.generator = torch.Generator(device="cpu")
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)

    def __call__(self, input_ids, scores):
        # The draw happens on the CPU so one seed gives one answer on NPU, GPU and CPU alike.
        logits = scores.float().cpu() / self.temperature
        if self.top_k and 0 < self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1.0:
            sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
            cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
            drop = cumulative - torch.softmax(sorted_logits, dim=-1) >= self.top_p
            logits = logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        chosen = torch.multinomial(probs, 1, generator=self.generator).to(scores.device)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter(-1, chosen, 0.0)


class CountedRepetitionPenalty(LogitsProcessor):
    """Guard layer 1: the usual penalty, counting the steps where it changed the top token."""

    def __init__(self, penalty: float):
        self.penalty = penalty
        self._inner = RepetitionPenaltyLogitsProcessor(penalty=penalty)
        self.interventions = 0

    def __call__(self, input_ids, scores):
        before = scores.argmax(dim=-1)
        scores = self._inner(input_ids, scores)
        if not torch.equal(before, scores.argmax(dim=-1)):
            self.interventions += 1
        return scores
