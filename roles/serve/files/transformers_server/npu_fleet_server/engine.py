"""The loaded model and one generation thread per request.

``model.generate`` runs in its own thread. Each new token is taken from the
``StoppingCriteria`` call (``TokenFeed``), which in every transformers version
sees the token before the next step starts (``streamer.put`` runs after the
stop check in 5.x): the token goes through the repetition guard, the
incremental detokenizer and the stop-string matcher, and only text that is
safe to send is queued on a ``TextIteratorStreamer`` that the request thread
iterates. The same call ends the generation when a guard trips, a stop string
matches, or the client went away, so the device is freed at once.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from concurrent import futures
import time
from typing import List, Optional

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
)
from transformers import __version__ as transformers_version

from . import device as devices
from .detokenizer import IncrementalDetokenizer
from .guards import RepetitionGuard
from .protocol import CHAT, GenerationRequest, RequestError
from .sampling import CountedRepetitionPenalty, SeededSampler
from .settings import Settings, SettingsError, sampling_defaults
from .stop_strings import StopStringMatcher

LOG = logging.getLogger("npu_fleet_server")

FINISH_STOP = "stop"
FINISH_LENGTH = "length"
FINISH_REPETITION = "repetition"
FINISH_CANCELLED = "cancelled"


class TokenFeed(StoppingCriteria):
    """Hands each new token to its generation and says whether to stop now."""

    def __init__(self, generation: "Generation", prompt_tokens: int, device):
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


class Generation:
    """One request's generation. Iterate it for text deltas; read the result after."""

    def __init__(self, engine: "Engine", request: GenerationRequest, input_ids: List[int], max_new_tokens: int):
        settings = engine.settings
        self.request = request
        self.prompt_tokens = len(input_ids)
        self.max_new_tokens = max_new_tokens
        self.completion_tokens = 0
        self.last_token: Optional[int] = None
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
        if temperature > 0:
            processors.append(SeededSampler(temperature, top_p=top_p, top_k=max(top_k, 0), seed=request.seed))
        self.streamer = TextIteratorStreamer(engine.tokenizer, timeout=settings.timeout)
        self._ended = False
        self._kwargs = {
            "input_ids": torch.tensor([input_ids], dtype=torch.long, device=engine.device),
            "attention_mask": torch.ones((1, len(input_ids)), dtype=torch.long, device=engine.device),
            "max_new_tokens": max_new_tokens,
            "do_sample": False,
            "num_beams": 1,
            "repetition_penalty": 1.0,
            "temperature": None,
            "top_p": None,
            "top_k": None,
            "pad_token_id": engine.pad_token_id,
            "eos_token_id": sorted(engine.eos_ids) or None,
            "logits_processor": LogitsProcessorList(processors),
            "stopping_criteria": StoppingCriteriaList([TokenFeed(self, len(input_ids), engine.device)]),
        }
        self._engine = engine
        self._done: Optional[futures.Future] = None

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

    def should_stop(self) -> bool:
        return self.cancel_event.is_set() or self.guard.stop_reason is not None or self.stops.matched is not None

    def start(self) -> "Generation":
        self._done = self._engine.workers.submit(self._run)
        return self

    def _run(self):
        try:
            self._engine.model.generate(**self._kwargs)
        except BaseException as exc:  # pylint: disable=broad-except
            self.error = exc
            LOG.exception("generation failed")
        finally:
            self._end_stream()

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
        if self._done is not None:
            futures.wait([self._done], timeout)

    @property
    def penalty_interventions(self) -> int:
        return self.penalty.interventions if self.penalty is not None else 0

    @property
    def finish(self):
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


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise SettingsError("%s cannot be read: %s" % (path, exc)) from None
    return data if isinstance(data, dict) else {}


def _load_model(settings: Settings, dtype):
    dtype_key = "dtype" if int(transformers_version.split(".")[0]) >= 5 else "torch_dtype"
    kwargs = {dtype_key: dtype, "trust_remote_code": settings.trust_remote_code}
    try:
        return AutoModelForCausalLM.from_pretrained(settings.model_path, **kwargs)
    except ValueError as first:
        # Vision-language checkpoints (e.g. GLM-OCR) have no causal-LM auto class; serve their text path.
        try:
            from transformers import AutoModelForImageTextToText  # pylint: disable=import-outside-toplevel
        except ImportError:
            raise first from None
        return AutoModelForImageTextToText.from_pretrained(settings.model_path, **kwargs)


def _config_max_len(model, tokenizer) -> Optional[int]:
    config = model.config
    for candidate in (config, getattr(config, "text_config", None)):
        value = getattr(candidate, "max_position_embeddings", None) if candidate is not None else None
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and 0 < value < 10**8:
        return value
    return None


class Engine:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.state = "loading"
        self.error: Optional[str] = None
        self.model = None
        self.tokenizer = None
        self.device = "cpu"
        self.dtype = None
        self.max_model_len = settings.max_model_len or 0
        self.eos_ids = set()
        self.pad_token_id = None
        self.sampling_defaults = {}
        self.load_seconds = 0.0
        # Generations run on long-lived worker threads, one per slot: the NPU is
        # bound once per thread (device context is per thread in torch_npu), no
        # thread is started per request, and on the CPU torch's OpenMP team of
        # each worker is reused instead of a new one per request (measured ~10 %
        # faster decoding on 2 cores, docs/transformers-server.md).
        self.workers = futures.ThreadPoolExecutor(
            max_workers=settings.max_concurrent, thread_name_prefix="generate", initializer=self._bind_worker
        )

    def _bind_worker(self) -> None:
        # Runs before the first job of each worker; the device is known by then
        # because load() picks it before the warm-up submits the first job.
        devices.bind_thread(torch, self.device)

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def load(self) -> None:
        """Load tokenizer and model, then prove a generation works (the warm-up)."""
        started = time.monotonic()
        settings = self.settings
        self.device = devices.select_device(torch, settings.device)
        self.dtype = devices.select_dtype(torch, settings.dtype, self.device)
        self.tokenizer = AutoTokenizer.from_pretrained(settings.model_path, trust_remote_code=settings.trust_remote_code)
        model = _load_model(settings, self.dtype)
        self.model = model.to(self.device).eval()
        config_len = _config_max_len(self.model, self.tokenizer)
        if settings.max_model_len is None:
            if config_len is None:
                raise SettingsError("the model config gives no max_position_embeddings: set NPU_SERVE_MAX_MODEL_LEN")
            self.max_model_len = config_len
        elif config_len is not None and settings.max_model_len > config_len:
            LOG.warning("NPU_SERVE_MAX_MODEL_LEN=%d is above the model's max_position_embeddings=%d", settings.max_model_len, config_len)
        self._read_generation_config()
        self._warm_up()
        self.load_seconds = time.monotonic() - started
        self.state = "ready"
        LOG.info(
            "model ready: %s as %s on %s (%s), max_model_len=%d, loaded in %.1f s",
            settings.model_path,
            settings.served_model_name,
            self.device,
            str(self.dtype).replace("torch.", ""),
            self.max_model_len,
            self.load_seconds,
        )

    def _read_generation_config(self) -> None:
        config = getattr(self.model, "generation_config", None)
        eos = getattr(config, "eos_token_id", None)
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, (list, tuple)) else ([eos] if eos is not None else []))
        pad = getattr(config, "pad_token_id", None)
        if pad is None:
            pad = self.tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else (min(self.eos_ids) if self.eos_ids else 0)
        self.sampling_defaults = sampling_defaults(
            _read_json(os.path.join(self.settings.model_path, "generation_config.json")), self.settings.repetition_penalty
        )

    def _warm_up(self) -> None:
        if not self.settings.warmup_tokens:
            return
        request = GenerationRequest(kind="completion", prompt="Hello", max_tokens=self.settings.warmup_tokens, temperature=0.0)
        generation = self.start(request)
        for _text in generation:
            pass
        if generation.completion_tokens == 0:
            raise RuntimeError("the warm-up generation produced no token")

    def encode(self, request: GenerationRequest) -> List[int]:
        tokenizer = self.tokenizer
        if request.kind == CHAT:
            if not getattr(tokenizer, "chat_template", None):
                raise RequestError("this model has no chat template: use /v1/completions with a plain prompt", param="messages")
            try:
                text = tokenizer.apply_chat_template(request.messages, tokenize=False, add_generation_prompt=True)
            except Exception as exc:  # pylint: disable=broad-except
                raise RequestError("the model's chat template rejected these messages: %s" % exc, param="messages") from None
            return tokenizer(text, add_special_tokens=False)["input_ids"]
        if isinstance(request.prompt, list):
            vocab = len(tokenizer)
            if any(token >= vocab for token in request.prompt):
                raise RequestError("'prompt' has a token id outside the vocabulary (size %d)" % vocab, param="prompt")
            return list(request.prompt)
        return tokenizer(request.prompt)["input_ids"]

    def start(self, request: GenerationRequest) -> Generation:
        """Validate lengths and start generating; raises RequestError for a bad request."""
        input_ids = self.encode(request)
        limit = self.max_model_len
        if len(input_ids) >= limit:
            raise RequestError(
                "the prompt is %d tokens but this server's max_model_len is %d: shorten the prompt "
                "(or redeploy with a longer max_model_len if the device memory allows)" % (len(input_ids), limit),
                param="messages" if request.kind == CHAT else "prompt",
                code="context_length_exceeded",
            )
        room = limit - len(input_ids)
        if request.max_tokens is not None:
            if request.max_tokens > room:
                raise RequestError(
                    "max_tokens=%d plus the %d-token prompt exceeds max_model_len=%d: ask for at most %d tokens"
                    % (request.max_tokens, len(input_ids), limit, room),
                    param="max_tokens",
                    code="context_length_exceeded",
                )
            max_new = request.max_tokens
        else:
            max_new = min(self.settings.default_max_tokens, room)
        return Generation(self, request, input_ids, max_new).start()
