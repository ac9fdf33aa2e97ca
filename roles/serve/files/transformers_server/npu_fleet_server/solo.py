"""The unbatched runner: one ``model.generate`` per request, on a pool of long-lived threads.

Used for models the batching runner cannot drive (image-text-to-text models,
caches other than a plain dynamic KV cache) and when ``NPU_SERVE_BATCH=0``.
Each new token is taken from a ``StoppingCriteria`` call (``TokenFeed``),
which in every transformers version sees the token before the next step
starts (``streamer.put`` runs after the stop check in 5.x); the same call ends
the generation when the request's pipeline says so.

One thread per generation slot: the NPU is bound once per thread (device
context is per thread in torch_npu), and on the CPU each thread keeps its
OpenMP team instead of creating one per request (~10 % faster decoding on
2 cores, docs/transformers-server.md).
"""

from __future__ import annotations

import time
from concurrent import futures

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from . import device as devices


class TokenFeed(StoppingCriteria):
    """Hands each new token to its generation and says whether to stop now."""

    def __init__(self, generation, prompt_tokens: int, device):
        self._generation = generation
        self._seen = prompt_tokens
        self._answers = {flag: torch.full((1,), flag, dtype=torch.bool, device=device) for flag in (False, True)}

    def __call__(self, input_ids, scores, **kwargs):
        generation = self._generation
        if input_ids.shape[1] > self._seen:
            for token in input_ids[0, self._seen :].tolist():
                generation.on_token(token)
            self._seen = input_ids.shape[1]
        return self._answers[generation.should_stop()]


class SoloRunner:
    name = "solo"

    def __init__(self, engine, slots: int):
        self._engine = engine
        self._pool = futures.ThreadPoolExecutor(max_workers=slots, thread_name_prefix="generate", initializer=self._bind)

    def _bind(self) -> None:
        # The device is known by then: load() picks it before the warm-up submits the first job.
        devices.bind_thread(torch, self._engine.device)

    def submit(self, generation) -> None:
        self._pool.submit(self._run, generation)

    def _run(self, generation) -> None:
        engine = self._engine
        generation.started_at = time.monotonic()
        device = engine.device
        ids = generation.input_ids
        kwargs = {
            "input_ids": torch.tensor([ids], dtype=torch.long, device=device),
            "attention_mask": torch.ones((1, len(ids)), dtype=torch.long, device=device),
            "max_new_tokens": generation.max_new_tokens,
            "do_sample": False,
            "num_beams": 1,
            "repetition_penalty": 1.0,
            "temperature": None,
            "top_p": None,
            "top_k": None,
            "pad_token_id": engine.pad_token_id,
            "eos_token_id": sorted(engine.eos_ids) or None,
            "logits_processor": generation.processors,
            "stopping_criteria": StoppingCriteriaList([TokenFeed(generation, len(ids), device)]),
        }
        kwargs.update(generation.extra)
        try:
            engine.model.generate(**kwargs)
        except BaseException as exc:  # pylint: disable=broad-except
            generation.finish(exc)
            return
        generation.finish()
