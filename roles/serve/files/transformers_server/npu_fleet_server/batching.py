"""The batching runner: concurrent requests share each forward pass (continuous batching over a dynamic KV cache).

One scheduler thread owns the model. A new request is prefilled alone (its
own cache, its first token), then joins the running batch: its cache rows are
left-padded to the batch's length (or the batch's to its), and a 2-D
attention mask hides the padding. Every decode step runs all sequences as one
``[batch, 1]`` forward pass with explicit position ids (each row's own token
count), so padding never shifts a position. After the step each row goes
through its own request's pipeline: its logits processors (repetition
penalty, seeded sampler: same processors, same order, same float32 logits as
``generate``), then ``Generation.on_token`` (guard, detokenizer, stop
strings). A row that ends (EOS, length, guard, stop string, cancelled) leaves
the batch at once and columns no row needs any more are trimmed.

Only decoder-only models whose cache is a plain ``DynamicCache`` of
``DynamicLayer`` are batched (``supports``); others use ``solo.py``.
transformers' own continuous batching (``generate_batch``) is not used: it
takes one generation config for all requests and no per-request logits
processors or stopping criteria, which the guard, seeds and stop strings need.
"""

from __future__ import annotations

import inspect
import logging
import queue
import threading
import time

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from . import device as devices

LOG = logging.getLogger("npu_fleet_server")


def _cache_argument(model):
    parameters = inspect.signature(model.forward).parameters
    for name in ("cache", "past_key_values"):
        if name in parameters:
            return name
    return None


def supports(model) -> bool:
    """Decoder-only, a ``cache`` argument, and a cache made of plain dynamic layers (checked on a real forward pass)."""
    if getattr(model.config, "is_encoder_decoder", False) or _cache_argument(model) is None:
        return False
    try:
        cache = DynamicCache(config=model.config)
        ids = torch.zeros((1, 2), dtype=torch.long, device=model.device)
        with torch.inference_mode():
            model(input_ids=ids, attention_mask=torch.ones_like(ids), **{_cache_argument(model): cache, "use_cache": True})
    except Exception as exc:  # pylint: disable=broad-except
        LOG.info("batching off for this model: a probe forward pass failed (%s: %s)", type(exc).__name__, exc)
        return False
    # Exactly DynamicLayer: its subclasses (sliding, quantized) keep other state than the scheduler pads.
    return bool(cache.layers) and all(layer.__class__ is DynamicLayer for layer in cache.layers)


def _pad_left(tensor, length, dim):
    missing = length - tensor.shape[dim]
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


class _Batch:
    """The running sequences: their generations, one shared cache, the padding mask and each row's length."""

    def __init__(self):
        self.rows = []
        self.cache = None
        self.mask = None  # [rows, cache length] 1 = real token
        self.lengths = None  # [rows] real tokens per row (the next position id)
        self.tokens = None  # [rows, 1] each row's last token

    def add(self, generation, cache, length, token, device):
        mask = torch.ones((1, length), dtype=torch.long, device=device)
        if not self.rows:
            self.rows, self.cache, self.mask = [generation], cache, mask
            self.lengths = torch.tensor([length], dtype=torch.long, device=device)
            self.tokens = torch.tensor([[token]], dtype=torch.long, device=device)
            return
        width = max(self.mask.shape[1], length)
        for mine, theirs in zip(self.cache.layers, cache.layers):
            mine.keys = torch.cat([_pad_left(mine.keys, width, 2), _pad_left(theirs.keys, width, 2)])
            mine.values = torch.cat([_pad_left(mine.values, width, 2), _pad_left(theirs.values, width, 2)])
        self.mask = torch.cat([_pad_left(self.mask, width, 1), _pad_left(mask, width, 1)])
        self.lengths = torch.cat([self.lengths, self.lengths.new_tensor([length])])
        self.tokens = torch.cat([self.tokens, self.tokens.new_tensor([[token]])])
        self.rows.append(generation)

    def keep(self, keep):
        """Keep only the rows at ``keep`` (indices), then drop columns that are padding in every row left."""
        if len(keep) == len(self.rows):
            return
        if not keep:
            self.__init__()
            return
        index = torch.tensor(keep, dtype=torch.long, device=self.mask.device)
        mask = self.mask.index_select(0, index)
        used = int(mask.any(dim=0).nonzero()[0])  # first column some row still needs
        for layer in self.cache.layers:
            layer.keys = layer.keys.index_select(0, index)[:, :, used:]
            layer.values = layer.values.index_select(0, index)[:, :, used:]
        self.mask = mask[:, used:]
        self.lengths = self.lengths.index_select(0, index)
        self.tokens = self.tokens.index_select(0, index)
        self.rows = [self.rows[position] for position in keep]


class BatchRunner:
    name = "batch"

    def __init__(self, engine, slots: int):
        self._engine = engine
        self._slots = slots
        self._inbox: "queue.SimpleQueue" = queue.SimpleQueue()
        self._cache_argument = _cache_argument(engine.model)
        self._thread = threading.Thread(target=self._loop, name="generate-batch", daemon=True)
        self._thread.start()

    def submit(self, generation) -> None:
        self._inbox.put(generation)

    # -- the scheduler thread -------------------------------------------------
    def _loop(self) -> None:
        devices.bind_thread(torch, self._engine.device)
        batch = _Batch()
        with torch.inference_mode():
            while True:
                waiting = self._take(block=not batch.rows)
                for generation in waiting:
                    self._prefill(batch, generation)
                self._drop_finished(batch)
                if batch.rows:
                    self._step(batch)

    def _take(self, block: bool):
        taken = []
        try:
            if block:
                taken.append(self._inbox.get())
            while len(taken) < self._slots:
                taken.append(self._inbox.get_nowait())
        except queue.Empty:
            pass
        return taken

    def _forward(self, **kwargs):
        kwargs[self._cache_argument] = kwargs.pop("cache")
        return self._engine.model(use_cache=True, logits_to_keep=1, **kwargs)

    def _choose(self, generation, logits):
        """The row's processors on float32 logits (as generate), then the argmax; feed the token to the pipeline."""
        scores = logits.to(dtype=torch.float32)
        if generation.processors:
            ids = torch.tensor([generation.input_ids + generation.output_ids], dtype=torch.long, device=scores.device)
            scores = generation.processors(ids, scores)
        token = int(scores.argmax(dim=-1))
        generation.output_ids.append(token)
        generation.on_token(token)
        return token

    def _prefill(self, batch, generation) -> None:
        engine = self._engine
        generation.started_at = time.monotonic()
        generation.output_ids = []
        if generation.should_stop():
            generation.finish()
            return
        try:
            cache = DynamicCache(config=engine.model.config)
            ids = torch.tensor([generation.input_ids], dtype=torch.long, device=engine.device)
            length = ids.shape[1]
            positions = torch.arange(length, device=engine.device).unsqueeze(0)
            logits = self._forward(input_ids=ids, attention_mask=torch.ones_like(ids), position_ids=positions, cache=cache).logits
            token = self._choose(generation, logits[:, -1, :])
        except BaseException as exc:  # pylint: disable=broad-except
            generation.finish(exc)
            return
        if generation.is_over():
            generation.finish()
            return
        batch.add(generation, cache, length, token, engine.device)

    def _drop_finished(self, batch) -> None:
        keep = [index for index, generation in enumerate(batch.rows) if not generation.should_stop()]
        for index, generation in enumerate(batch.rows):
            if index not in keep:
                generation.finish()
        batch.keep(keep)

    def _step(self, batch) -> None:
        engine = self._engine
        rows = batch.rows
        engine.observe_batch(len(rows))
        mask = torch.cat([batch.mask, batch.mask.new_ones((len(rows), 1))], dim=1)
        try:
            logits = self._forward(
                input_ids=batch.tokens, attention_mask=mask, position_ids=batch.lengths.unsqueeze(1), cache=batch.cache
            ).logits[:, -1, :]
        except BaseException as exc:  # pylint: disable=broad-except
            for generation in rows:
                generation.finish(exc)
            batch.keep([])
            return
        batch.mask = mask
        batch.lengths = batch.lengths + 1
        keep, tokens = [], []
        for index, generation in enumerate(rows):
            token = 0  # placeholder for a row that leaves now
            try:
                token = self._choose(generation, logits[index : index + 1])
            except BaseException as exc:  # pylint: disable=broad-except
                generation.finish(exc)
            else:
                if generation.is_over():
                    generation.finish()
                else:
                    keep.append(index)
            tokens.append(token)
        batch.tokens = torch.tensor(tokens, dtype=torch.long, device=engine.device).unsqueeze(1)
        batch.keep(keep)
