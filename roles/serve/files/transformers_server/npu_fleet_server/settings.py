"""Server settings, read once from ``NPU_SERVE_*`` environment variables.

Containers are configured through the environment, so every option has one
variable; a wrong value stops the server at start with a message that names
the variable, instead of failing on the first request.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Optional, Tuple

PREFIX = "NPU_SERVE_"
DEVICES = ("auto", "npu", "cuda", "cpu")
DTYPES = ("auto", "bfloat16", "float16", "float32")


def _not_positive(value):
    """True for 0, a negative number and NaN (which compares false with everything)."""
    return value != value or value <= 0  # pylint: disable=comparison-with-itself


class SettingsError(ValueError):
    """A setting is missing or has a value the server cannot use."""


@dataclasses.dataclass(frozen=True)
class Settings:
    model_path: str
    served_model_name: str
    max_model_len: Optional[int] = None
    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False
    api_key: Optional[str] = dataclasses.field(default=None, repr=False)
    host: str = "0.0.0.0"
    port: int = 8000
    threads: int = 4
    timeout: int = 600
    max_concurrent: int = 2
    max_queue: int = 1
    queue_timeout: float = 30.0
    max_body_bytes: int = 1048576
    default_max_tokens: int = 512
    repetition_penalty: Optional[float] = None
    max_repeated_chunks: int = 10
    repeat_block_min_tokens: int = 16
    repeat_block_max_tokens: int = 256
    repeat_block_count: int = 3
    warmup_tokens: int = 4
    debug: bool = False
    batch: bool = True
    request_read_timeout: float = 10.0
    send_timeout: float = 30.0
    max_images: int = 4
    max_image_bytes: int = 8388608
    max_image_pixels: int = 16777216
    allow_image_urls: Tuple[str, ...] = ()
    image_fetch_timeout: float = 10.0

    def check(self) -> "Settings":
        """Reject combinations that would make the server hang or misreport."""
        if self.device not in DEVICES:
            raise SettingsError("%sDEVICE=%r: use one of %s" % (PREFIX, self.device, ", ".join(DEVICES)))
        if self.dtype not in DTYPES:
            raise SettingsError("%sDTYPE=%r: use one of %s" % (PREFIX, self.dtype, ", ".join(DTYPES)))
        positive = (
            "threads",
            "timeout",
            "max_concurrent",
            "max_body_bytes",
            "default_max_tokens",
            "repeat_block_min_tokens",
            "max_image_bytes",
            "max_image_pixels",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise SettingsError("%s%s=%r: must be at least 1" % (PREFIX, name.upper(), getattr(self, name)))
        for name in ("max_queue", "max_repeated_chunks", "warmup_tokens", "max_images"):
            if getattr(self, name) < 0:
                raise SettingsError("%s%s=%r: must be 0 or more" % (PREFIX, name.upper(), getattr(self, name)))
        for name in ("request_read_timeout", "send_timeout", "image_fetch_timeout"):
            if _not_positive(getattr(self, name)):
                raise SettingsError("%s%s=%r: must be above 0 seconds" % (PREFIX, name.upper(), getattr(self, name)))
        if self.max_model_len is not None and self.max_model_len < 2:
            raise SettingsError("%sMAX_MODEL_LEN=%r: must be at least 2" % (PREFIX, self.max_model_len))
        if self.repeat_block_max_tokens < self.repeat_block_min_tokens:
            raise SettingsError(
                "%sREPEAT_BLOCK_MAX_TOKENS=%d is below %sREPEAT_BLOCK_MIN_TOKENS=%d"
                % (PREFIX, self.repeat_block_max_tokens, PREFIX, self.repeat_block_min_tokens)
            )
        if self.repeat_block_count == 1 or self.repeat_block_count < 0:
            raise SettingsError(
                "%sREPEAT_BLOCK_COUNT=%d: use 0 (off) or 2 and more, a block must be seen twice to repeat"
                % (PREFIX, self.repeat_block_count)
            )
        if self.repetition_penalty is not None and self.repetition_penalty <= 0:
            raise SettingsError("%sREPETITION_PENALTY=%r: must be above 0 (1.0 turns it off)" % (PREFIX, self.repetition_penalty))
        # gthread serves one request per thread: generations and queued requests
        # must leave one thread free, or /health stops answering under load.
        needed = self.max_concurrent + self.max_queue + 1
        if self.threads < needed:
            message = (
                "{p}THREADS={threads} is too few for {p}MAX_CONCURRENT={slots} + {p}MAX_QUEUE={queue} + 1 for /health "
                "and /metrics; set {p}THREADS to at least {needed}"
            )
            raise SettingsError(
                message.format(p=PREFIX, threads=self.threads, slots=self.max_concurrent, queue=self.max_queue, needed=needed)
            )
        return self


def _text(env: Mapping[str, str], name: str, default=None):
    value = env.get(PREFIX + name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def _int(env, name, default):
    value = _text(env, name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise SettingsError("%s%s=%r: expected a whole number" % (PREFIX, name, value)) from None


def _float(env, name, default):
    value = _text(env, name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise SettingsError("%s%s=%r: expected a number" % (PREFIX, name, value)) from None


def _bool(env, name, default):
    value = _text(env, name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError("%s%s=%r: expected true or false" % (PREFIX, name, value))


def _api_key(env) -> Optional[str]:
    """The key from ``API_KEY_FILE`` (a mounted secret) or ``API_KEY``; never both."""
    inline = _text(env, "API_KEY")
    path = _text(env, "API_KEY_FILE")
    if inline and path:
        raise SettingsError("set only one of %sAPI_KEY and %sAPI_KEY_FILE" % (PREFIX, PREFIX))
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                key = handle.read().strip()
        except OSError as exc:
            raise SettingsError(
                "%sAPI_KEY_FILE=%s cannot be read by uid %d: %s (the serve role mounts a copy owned by the user the server "
                "runs as)" % (PREFIX, path, os.getuid(), exc.strerror)
            ) from None
        if not key:
            raise SettingsError("%sAPI_KEY_FILE=%s is empty" % (PREFIX, path))
        return key
    return inline


def _unreadable(model_path: str, shown: int = 3) -> list:
    """The first few entries of the model directory this process cannot read (the directory itself, its files and
    subdirectories, one level deep): told at start instead of as a loader error in the middle of loading."""
    if not os.access(model_path, os.R_OK | os.X_OK):
        return [model_path]
    found = []
    for name in sorted(os.listdir(model_path)):
        path = os.path.join(model_path, name)
        wanted = os.R_OK | os.X_OK if os.path.isdir(path) else os.R_OK
        if not os.access(path, wanted):
            found.append(path)
            if len(found) == shown:
                break
    return found


def from_env(env: Optional[Mapping[str, str]] = None) -> Settings:
    env = os.environ if env is None else env
    model_path = _text(env, "MODEL")
    if not model_path:
        raise SettingsError("%sMODEL is not set: give the model directory inside the container" % PREFIX)
    if not os.path.isdir(model_path):
        raise SettingsError("%sMODEL=%s is not a directory: mount the model there (read-only is enough)" % (PREFIX, model_path))
    unreadable = _unreadable(model_path)
    if unreadable:
        raise SettingsError(
            "%sMODEL=%s: %s cannot be read by this server (uid %d, without capabilities, so not even root reads past the "
            "files' modes): make the model directory readable by everyone on the host (chmod -R a+rX), as model files usually are"
            % (PREFIX, model_path, ", ".join(unreadable), os.getuid())
        )
    served = _text(env, "SERVED_MODEL_NAME") or os.path.basename(os.path.normpath(model_path))
    penalty = _float(env, "REPETITION_PENALTY", None)
    return Settings(
        model_path=model_path,
        served_model_name=served,
        max_model_len=_int(env, "MAX_MODEL_LEN", None),
        device=(_text(env, "DEVICE", "auto") or "auto").lower(),
        dtype=(_text(env, "DTYPE", "auto") or "auto").lower(),
        trust_remote_code=_bool(env, "TRUST_REMOTE_CODE", False),
        api_key=_api_key(env),
        host=_text(env, "HOST", "0.0.0.0"),
        port=_int(env, "PORT", 8000),
        threads=_int(env, "THREADS", 4),
        timeout=_int(env, "TIMEOUT", 600),
        max_concurrent=_int(env, "MAX_CONCURRENT", 2),
        max_queue=_int(env, "MAX_QUEUE", 1),
        queue_timeout=_float(env, "QUEUE_TIMEOUT", 30.0),
        max_body_bytes=_int(env, "MAX_BODY_BYTES", 1048576),
        default_max_tokens=_int(env, "DEFAULT_MAX_TOKENS", 512),
        repetition_penalty=penalty,
        max_repeated_chunks=_int(env, "MAX_REPEATED_CHUNKS", 10),
        repeat_block_min_tokens=_int(env, "REPEAT_BLOCK_MIN_TOKENS", 16),
        repeat_block_max_tokens=_int(env, "REPEAT_BLOCK_MAX_TOKENS", 256),
        repeat_block_count=_int(env, "REPEAT_BLOCK_COUNT", 3),
        warmup_tokens=_int(env, "WARMUP_TOKENS", 4),
        debug=_bool(env, "DEBUG", False),
        batch=_bool(env, "BATCH", True),
        request_read_timeout=_float(env, "REQUEST_READ_TIMEOUT", 10.0),
        send_timeout=_float(env, "SEND_TIMEOUT", 30.0),
        max_images=_int(env, "MAX_IMAGES", 4),
        max_image_bytes=_int(env, "MAX_IMAGE_BYTES", 8388608),
        max_image_pixels=_int(env, "MAX_IMAGE_PIXELS", 16777216),
        allow_image_urls=_hosts(env, "ALLOW_IMAGE_URLS"),
        image_fetch_timeout=_float(env, "IMAGE_FETCH_TIMEOUT", 10.0),
    ).check()


def _hosts(env, name) -> Tuple[str, ...]:
    """Host names for image URLs: ``a.example,b.example``; a leading dot allows subdomains."""
    value = _text(env, name)
    if value is None:
        return ()
    hosts = tuple(item.strip().lower() for item in value.split(",") if item.strip())
    for host in hosts:
        if any(char in host for char in "/:@ ") or host == ".":
            raise SettingsError("%s%s=%r: list host names only (no scheme, port or path)" % (PREFIX, name, host))
    return hosts


@dataclasses.dataclass(frozen=True)
class Transport:
    """What the gunicorn worker needs before any request reaches the app."""

    max_body_bytes: int
    request_read_timeout: float
    send_timeout: float


def transport_from_env(env: Optional[Mapping[str, str]] = None) -> Transport:
    env = os.environ if env is None else env
    transport = Transport(
        max_body_bytes=_int(env, "MAX_BODY_BYTES", 1048576),
        request_read_timeout=_float(env, "REQUEST_READ_TIMEOUT", 10.0),
        send_timeout=_float(env, "SEND_TIMEOUT", 30.0),
    )
    if transport.max_body_bytes < 1 or _not_positive(transport.request_read_timeout) or _not_positive(transport.send_timeout):
        raise SettingsError("%sMAX_BODY_BYTES, _REQUEST_READ_TIMEOUT and _SEND_TIMEOUT must be above 0" % PREFIX)
    return transport


DEFAULT_REPETITION_PENALTY = 1.2


def sampling_defaults(generation_config: Mapping, penalty_setting: Optional[float]) -> dict:
    """Per-request defaults from the model's ``generation_config.json`` (the raw file).

    The raw file, not transformers' GenerationConfig object, because the object
    reports 1.0 for a repetition_penalty the file never set, and "the model
    says 1.0" must win over our 1.2 default while "the model says nothing"
    must not. Temperature / top_p / top_k apply only when the model samples.
    """
    penalty = penalty_setting
    if penalty is None:
        configured = generation_config.get("repetition_penalty")
        valid = isinstance(configured, (int, float)) and not isinstance(configured, bool) and configured > 0
        penalty = float(configured) if valid else DEFAULT_REPETITION_PENALTY
    sampled = generation_config.get("do_sample") is True

    def number(name, fallback):
        value = generation_config.get(name)
        return value if sampled and isinstance(value, (int, float)) and not isinstance(value, bool) else fallback

    return {
        "temperature": float(number("temperature", 1.0)),
        "top_p": float(number("top_p", 1.0)),
        "top_k": int(number("top_k", 0)),
        "repetition_penalty": float(penalty),
    }
