"""The loaded model: tokenizer (and image processor), lengths, defaults, and the runner that generates.

Requests become ``Generation`` objects (``generation.py``: the per-request
guard, detokenizer, stop strings and sampling) and are handed to a runner:
``batching.py`` when the model can be batched and ``NPU_SERVE_BATCH`` is on
(the default), else ``solo.py`` (one ``model.generate`` per request).
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import List, Optional

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers import __version__ as transformers_version

from . import batching, vision
from . import device as devices
from .generation import Generation
from .protocol import CHAT, GenerationRequest, RequestError
from .settings import Settings, SettingsError, sampling_defaults
from .solo import SoloRunner

LOG = logging.getLogger("npu_fleet_server")


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
    """(model, takes_images): the causal-LM class, else the image-text-to-text one (GLM-OCR, VL families)."""
    dtype_key = "dtype" if int(transformers_version.split(".")[0]) >= 5 else "torch_dtype"
    kwargs = {dtype_key: dtype, "trust_remote_code": settings.trust_remote_code}
    try:
        return AutoModelForCausalLM.from_pretrained(settings.model_path, **kwargs), False
    except ValueError as first:
        try:
            from transformers import AutoModelForImageTextToText  # pylint: disable=import-outside-toplevel
        except ImportError:
            raise first from None
        return AutoModelForImageTextToText.from_pretrained(settings.model_path, **kwargs), True


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
        self.vision: Optional[vision.VisionPrompts] = None
        self.device = "cpu"
        self.dtype = None
        self.max_model_len = settings.max_model_len or 0
        self.eos_ids = set()
        self.pad_token_id = None
        self.sampling_defaults = {}
        self.load_seconds = 0.0
        self.runner = None
        self.on_batch = None  # callback(rows) for each batched decode step (metrics)

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def input_modalities(self) -> List[str]:
        return ["text", "image"] if self.vision is not None else ["text"]

    def observe_batch(self, rows: int) -> None:
        if self.on_batch is not None:
            self.on_batch(rows)

    def load(self) -> None:
        """Load tokenizer and model, then prove a generation works (the warm-up)."""
        started = time.monotonic()
        settings = self.settings
        self.device = devices.select_device(torch, settings.device)
        self.dtype = devices.select_dtype(torch, settings.dtype, self.device)
        self.tokenizer = AutoTokenizer.from_pretrained(settings.model_path, trust_remote_code=settings.trust_remote_code)
        model, takes_images = _load_model(settings, self.dtype)
        self.model = model.to(self.device).eval()
        if takes_images:
            processor = vision.load_processor(settings.model_path, settings.trust_remote_code)
            if processor is not None:
                self.vision = vision.VisionPrompts(processor, self.device, self.dtype)
        config_len = _config_max_len(self.model, self.tokenizer)
        if settings.max_model_len is None:
            if config_len is None:
                raise SettingsError("the model config gives no max_position_embeddings: set NPU_SERVE_MAX_MODEL_LEN")
            self.max_model_len = config_len
        elif config_len is not None and settings.max_model_len > config_len:
            LOG.warning("NPU_SERVE_MAX_MODEL_LEN=%d is above the model's max_position_embeddings=%d", settings.max_model_len, config_len)
        self._read_generation_config()
        self.runner = self._pick_runner(takes_images)
        self._warm_up()
        self.load_seconds = time.monotonic() - started
        self.state = "ready"
        LOG.info(
            "model ready: %s as %s on %s (%s), max_model_len=%d, inputs=%s, runner=%s, loaded in %.1f s",
            settings.model_path,
            settings.served_model_name,
            self.device,
            str(self.dtype).replace("torch.", ""),
            self.max_model_len,
            "+".join(self.input_modalities),
            self.runner.name,
            self.load_seconds,
        )

    def _pick_runner(self, takes_images: bool):
        slots = self.settings.max_concurrent
        if self.settings.batch and not takes_images and batching.supports(self.model):
            return batching.BatchRunner(self, slots)
        return SoloRunner(self, slots)

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

    def check_images(self, request: GenerationRequest) -> None:
        if request.images and self.vision is None:
            raise RequestError(
                "this model (%s) takes text only: send no image_url parts (GET /v1/models lists its input_modalities)"
                % self.settings.served_model_name,
                param="messages",
                code="images_not_supported",
            )

    def encode(self, request: GenerationRequest, images=None):
        """(input ids, extra tensors for generate)."""
        tokenizer = self.tokenizer
        if request.kind == CHAT:
            if self.vision is not None:
                return self.vision.encode_chat(request.messages, images)
            if not getattr(tokenizer, "chat_template", None):
                raise RequestError("this model has no chat template: use /v1/completions with a plain prompt", param="messages")
            try:
                text = tokenizer.apply_chat_template(request.messages, tokenize=False, add_generation_prompt=True)
            except Exception as exc:  # pylint: disable=broad-except
                raise RequestError("the model's chat template rejected these messages: %s" % exc, param="messages") from None
            return tokenizer(text, add_special_tokens=False)["input_ids"], {}
        if isinstance(request.prompt, list):
            vocab = len(tokenizer)
            if any(token >= vocab for token in request.prompt):
                raise RequestError("'prompt' has a token id outside the vocabulary (size %d)" % vocab, param="prompt")
            return list(request.prompt), {}
        return tokenizer(request.prompt)["input_ids"], {}

    def start(self, request: GenerationRequest, images=None) -> Generation:
        """Validate lengths and start generating; raises RequestError for a bad request."""
        self.check_images(request)
        input_ids, extra = self.encode(request, images)
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
        generation = Generation(self, request, input_ids, max_new, extra)
        self.runner.submit(generation)
        return generation
