"""OpenAI request validation and response shapes. Pure Python, no torch.

Validation is strict about types (``true`` is not a number, ``"5"`` is not an
integer) because a silently coerced value is how a client bug turns into a
generation that runs to the context limit.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from typing import Any, Dict, List, Optional, Union

CHAT = "chat"
COMPLETION = "completion"


class RequestError(Exception):
    """An OpenAI-style error: HTTP status, message, and the offending parameter."""

    def __init__(
        self, message: str, status: int = 400, param: Optional[str] = None, code: Optional[str] = None, kind: str = "invalid_request_error"
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param
        self.code = code
        self.kind = kind

    def body(self) -> Dict[str, Any]:
        return error_body(self.message, self.kind, self.param, self.code)


def error_body(message: str, kind: str, param: Optional[str] = None, code: Optional[str] = None) -> Dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclasses.dataclass
class GenerationRequest:
    kind: str
    messages: Optional[List[Dict[str, Any]]] = None
    prompt: Optional[Union[str, List[int]]] = None
    max_tokens: Optional[int] = None
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    top_k: Optional[int] = None
    repetition_penalty: Optional[float] = None
    stop: List[str] = dataclasses.field(default_factory=list)
    seed: Optional[int] = None
    stream: bool = False
    include_usage: bool = False
    echo: bool = False
    images: List[str] = dataclasses.field(default_factory=list)  # image URLs, in the order of the image parts


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _optional_int(body, name, minimum=None):
    value = body.get(name)
    if value is None:
        return None
    if not _is_int(value):
        raise RequestError("'%s' must be an integer, got %s" % (name, type(value).__name__), param=name)
    if minimum is not None and value < minimum:
        raise RequestError("'%s' must be at least %d, got %d" % (name, minimum, value), param=name)
    return value


def _optional_number(body, name, low, high, low_open=False):
    value = body.get(name)
    if value is None:
        return None
    if not _is_number(value):
        raise RequestError("'%s' must be a number, got %s" % (name, type(value).__name__), param=name)
    if value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise RequestError("'%s' must be in %s%s, %s], got %s" % (name, bracket, low, high, value), param=name)
    return float(value)


SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1  # what torch.Generator.manual_seed takes


def _seed(body):
    seed = _optional_int(body, "seed")
    if seed is not None and not SEED_MIN <= seed <= SEED_MAX:
        raise RequestError("'seed' must be between %d and %d" % (SEED_MIN, SEED_MAX), param="seed")
    return seed


def _optional_bool(body, name, default=False):
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise RequestError("'%s' must be true or false, got %s" % (name, type(value).__name__), param=name)
    return value


def _stop(body) -> List[str]:
    value = body.get("stop")
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RequestError("'stop' must be a string or a list of strings", param="stop")
    if len(value) > 16:
        raise RequestError("'stop' takes at most 16 strings, got %d" % len(value), param="stop")
    return [item for item in value if item]


IMAGE_PART = {"type": "image"}  # where an image goes, for the model's chat template
PARTS_HELP = (
    'messages[%d].content[%d]: content parts are text parts ({"type": "text", "text": ...}) or image parts '
    '({"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}})'
)


def _image_url(part, index, position) -> str:
    ref = part.get("image_url")
    if isinstance(ref, dict):
        ref = ref.get("url")
    if not isinstance(ref, str) or not ref:
        raise RequestError(PARTS_HELP % (index, position), param="messages")
    return ref


def _content(content, index, images: List[str]):
    """A message's content: a string when it is text only, else parts with image placeholders."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if not isinstance(content, list):
        raise RequestError("messages[%d].content must be a string or a list of content parts" % index, param="messages")
    parts = []
    for position, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            if parts and "text" in parts[-1]:
                parts[-1] = {"type": "text", "text": parts[-1]["text"] + part["text"]}
            else:
                parts.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            images.append(_image_url(part, index, position))
            parts.append(dict(IMAGE_PART))
        else:
            raise RequestError(PARTS_HELP % (index, position), param="messages")
    if all("text" in part for part in parts):
        return "".join(part["text"] for part in parts)
    return parts


def _messages(body, images: List[str]) -> List[Dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list", param="messages")
    out = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise RequestError("messages[%d] must be an object with 'role' and 'content'" % index, param="messages")
        role = message.get("role")
        if not isinstance(role, str) or not role:
            raise RequestError("messages[%d].role must be a non-empty string" % index, param="messages")
        out.append({"role": role, "content": _content(message.get("content"), index, images)})
    return out


def _prompt(body) -> Union[str, List[int]]:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if isinstance(prompt, str):
        if not prompt:
            raise RequestError("'prompt' is empty", param="prompt")
        return prompt
    if isinstance(prompt, list) and prompt and all(_is_int(item) and item >= 0 for item in prompt):
        return prompt
    raise RequestError("'prompt' must be a non-empty string or a list of token ids (one prompt per request)", param="prompt")


def parse(body: Any, kind: str, served_model_name: str) -> GenerationRequest:
    """Validate a decoded JSON body for /v1/chat/completions or /v1/completions."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    model = body.get("model")
    if model is not None and model != served_model_name:
        raise RequestError(
            "The model `%s` does not exist. This server serves `%s`." % (model, served_model_name),
            status=404,
            param="model",
            code="model_not_found",
        )
    n = body.get("n")
    if n is not None and n != 1:
        raise RequestError("only n=1 is supported", param="n")
    if kind == CHAT:
        max_tokens = _optional_int(body, "max_completion_tokens", 1)
        if max_tokens is None:
            max_tokens = _optional_int(body, "max_tokens", 1)
    else:
        max_tokens = _optional_int(body, "max_tokens", 1)
    stream_options = body.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise RequestError("'stream_options' must be an object", param="stream_options")
    request = GenerationRequest(
        kind=kind,
        max_tokens=max_tokens,
        temperature=_optional_number(body, "temperature", 0.0, 2.0),
        top_p=_optional_number(body, "top_p", 0.0, 1.0, low_open=True),
        top_k=_optional_int(body, "top_k", -1),
        repetition_penalty=_optional_number(body, "repetition_penalty", 0.0, 10.0, low_open=True),
        stop=_stop(body),
        seed=_seed(body),
        stream=_optional_bool(body, "stream"),
        include_usage=_optional_bool(stream_options or {}, "include_usage"),
        echo=_optional_bool(body, "echo") if kind == COMPLETION else False,
    )
    if kind == CHAT:
        request.messages = _messages(body, request.images)
    else:
        request.prompt = _prompt(body)
    return request


def new_id(kind: str) -> str:
    return ("chatcmpl-" if kind == CHAT else "cmpl-") + uuid.uuid4().hex


def usage(prompt_tokens: int, completion_tokens: int) -> Dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}


def _choice(kind, text, finish_reason, stop_reason, delta):
    if kind == CHAT:
        key = "delta" if delta else "message"
        body = {"role": "assistant", "content": text} if not delta else ({"content": text} if text is not None else {})
        choice = {"index": 0, key: body, "logprobs": None, "finish_reason": finish_reason}
    else:
        choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish_reason}
    choice["stop_reason"] = stop_reason
    return choice


def response(kind, request_id, model, text, finish_reason, stop_reason, prompt_tokens, completion_tokens, created=None):
    return {
        "id": request_id,
        "object": "chat.completion" if kind == CHAT else "text_completion",
        "created": int(created or time.time()),
        "model": model,
        "choices": [_choice(kind, text, finish_reason, stop_reason, delta=False)],
        "usage": usage(prompt_tokens, completion_tokens),
    }


def chunk(kind, request_id, model, created, text=None, finish_reason=None, stop_reason=None, role=False):
    choice = _choice(kind, text, finish_reason, stop_reason, delta=True)
    if kind == CHAT and role:
        choice["delta"] = {"role": "assistant", "content": ""}
    return {
        "id": request_id,
        "object": "chat.completion.chunk" if kind == CHAT else "text_completion",
        "created": int(created),
        "model": model,
        "choices": [choice],
    }


def usage_chunk(kind, request_id, model, created, prompt_tokens, completion_tokens):
    return {
        "id": request_id,
        "object": "chat.completion.chunk" if kind == CHAT else "text_completion",
        "created": int(created),
        "model": model,
        "choices": [],
        "usage": usage(prompt_tokens, completion_tokens),
    }


def text_chunk_formatter(kind, request_id, model, created):
    """SSE lines for content chunks, with the JSON around the text rendered once per stream.

    Same bytes as ``"data: " + json.dumps(chunk(..., text=t)) + "\\n\\n"``, at a
    fraction of the cost per token.
    """
    marker = "\u0000text\u0000"
    rendered = json.dumps(chunk(kind, request_id, model, created, text=marker), ensure_ascii=False)
    head, tail = rendered.split(json.dumps(marker, ensure_ascii=False))
    head, tail = "data: " + head, tail + "\n\n"

    def format_text(text: str) -> str:
        return head + json.dumps(text, ensure_ascii=False) + tail

    return format_text
