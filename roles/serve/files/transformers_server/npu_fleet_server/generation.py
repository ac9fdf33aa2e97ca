"""One request's generation: the per-request pipeline every runner feeds token by token.

A runner (``solo.py``: ``model.generate`` per request; ``batching.py``: many
requests per forward pass) calls ``on_token`` for each new token and
``finish`` at the end. ``on_token`` runs the repetition guard, the incremental
detokenizer and the stop-string matcher, and queues only text that is safe to
send on a ``TextIteratorStreamer`` that the request thread iterates;
``should_stop`` tells the runner to end this sequence now (guard, stop string,
or the client went away), so the device is freed at once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent import futures
from typing import Dict, List, Optional

from transformers import LogitsProcessorList, TextIteratorStreamer

from .detokenizer import IncrementalDetokenizer
from .guards import RepetitionGuard
from .protocol import GenerationRequest
from .sampling import CountedRepetitionPenalty, SeededSampler
from .stop_strings import StopStringMatcher

LOG = logging.getLogger("npu_fleet_server")

FINISH_STOP = "stop"
FINISH_LENGTH = "length"
FINISH_REPETITION = "repetition"
FINISH_CANCELLED = "cancelled"
GREEDY_BELOW = 1e-5  # a temperature this low is greedy (as vLLM): dividing by it overflows the logits


class Generation:
    """One request's generation. Iterate it for text deltas; read the result after."""

    def __init__(self, engine, request: GenerationRequest, input_ids: List[int], max_new_tokens: int, extra: Optional[Dict] = None):
        settings = engine.settings
        self.request = request
        self.input_ids = input_ids
        self.extra = extra or {}  # processor outputs besides input_ids (pixel_values, image_grid_thw, ...)
        self.prompt_tokens = len(input_ids)
        self.max_new_tokens = max_new_tokens
        self.completion_tokens = 0
        self.last_token: Optional[int] = None
        self.submitted_at = time.monotonic()
        self.started_at: Optional[float] = None
        self.first_token_at: Optional[float] = None
        self.error: Optional[BaseException] = None
        self.eos_ids = engine.eos_ids
        self.cancel_event = threading.Event()
        self.guard = RepetitionGuard(
            max_chunk_repeats=settings.max_repeated_chunks,
            block_min=settings.repeat_block_min_tokens,
            block_max=settings.repeat_block_max_tokens,
            block_count=settings.repeat_block_count,
        )
        self.detokenizer = IncrementalDetokenizer(engine.tokenizer)
        self.stops = StopStringMatcher(request.stop)
        defaults = engine.sampling_defaults
        temperature = request.temperature if request.temperature is not None else defaults["temperature"]
        top_p = request.top_p if request.top_p is not None else defaults["top_p"]
        top_k = request.top_k if request.top_k is not None else defaults["top_k"]
        penalty = request.repetition_penalty if request.repetition_penalty is not None else defaults["repetition_penalty"]
        processors = []
        self.penalty = CountedRepetitionPenalty(penalty) if penalty != 1.0 else None
        if self.penalty is not None:
            processors.append(self.penalty)
        if temperature >= GREEDY_BELOW:
            processors.append(SeededSampler(temperature, top_p=top_p, top_k=max(top_k, 0), seed=request.seed))
        self.processors = LogitsProcessorList(processors)
        self.streamer = TextIteratorStreamer(engine.tokenizer, timeout=settings.timeout)
        self._ended = False
        self._done: futures.Future = futures.Future()

    # -- called by the runner -------------------------------------------------
    def on_token(self, token: int) -> None:
        """Guard, detokenize and stop-match one generated token; queue the text that is safe to send."""
        self.completion_tokens += 1
        self.last_token = token
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()
        if token in self.eos_ids or self.should_stop():
            return
        released = self.guard.push(token)
        text = self.stops.feed(self.detokenizer.add(released)) if released else ""
        if text:
            self.streamer.on_finalized_text(text)

    def should_stop(self) -> bool:
        return self.cancel_event.is_set() or self.guard.stop_reason is not None or self.stops.matched is not None

    def is_over(self) -> bool:
        """After ``on_token``: whether this sequence ends here (as ``generate`` would decide, plus our stops)."""
        return (
            self.should_stop()
            or (self.last_token is not None and self.last_token in self.eos_ids)
            or self.completion_tokens >= self.max_new_tokens
        )

    def finish(self, error: Optional[BaseException] = None) -> None:
        """The runner is done with this sequence: end the text stream and wake ``wait``."""
        if error is not None:
            self.error = error
            LOG.error("generation failed: %s: %s", type(error).__name__, error)
        try:
            self._end_stream()
        finally:
            if not self._done.done():
                self._done.set_result(None)

    def _end_stream(self) -> None:
        """Release what was held (unless a guard or stop string ended it) and close the queue."""
        if self._ended:
            return
        self._ended = True
        text = ""
        if not self.cancel_event.is_set() and self.guard.stop_reason is None and self.stops.matched is None:
            text = self.stops.feed(self.detokenizer.add(self.guard.flush()) + self.detokenizer.flush())
            text += self.stops.flush()
        self.streamer.on_finalized_text(text, stream_end=True)

    # -- called by the request thread -----------------------------------------
    def __iter__(self):
        """Text as it becomes safe to send; when the reader fell behind, what piled up comes as one piece."""
        pending, stop_signal = self.streamer.text_queue, self.streamer.stop_signal
        for text in self.streamer:
            parts, ended = [text], False
            while True:
                try:
                    more = pending.get_nowait()
                except queue.Empty:
                    break
                if more is stop_signal:
                    ended = True
                    break
                parts.append(more)
            text = "".join(parts)
            if text:
                yield text
            if ended:
                break
        self.wait()
        if self.error is not None:
            raise RuntimeError("generation failed: %s" % self.error) from self.error

    def cancel(self, wait: float = 30.0) -> None:
        """Stop at the next step and wait (bounded) until the device is free."""
        self.cancel_event.set()
        self.wait(wait)

    def wait(self, timeout: Optional[float] = None) -> None:
        futures.wait([self._done], timeout)

    @property
    def queue_seconds(self) -> float:
        return (self.started_at or time.monotonic()) - self.submitted_at

    @property
    def penalty_interventions(self) -> int:
        return self.penalty.interventions if self.penalty is not None else 0

    @property
    def finish_reason(self):
        """(finish_reason, stop_reason) once the generation is over."""
        if self.guard.stop_reason is not None:
            return FINISH_REPETITION, self.guard.stop_reason
        if self.stops.matched is not None:
            return FINISH_STOP, self.stops.matched
        if self.cancel_event.is_set():
            return FINISH_CANCELLED, None
        if self.last_token is not None and self.last_token in self.eos_ids:
            return FINISH_STOP, None
        if self.completion_tokens >= self.max_new_tokens:
            return FINISH_LENGTH, None
        return FINISH_STOP, None
