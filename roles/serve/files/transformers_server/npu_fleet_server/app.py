"""HTTP layer: OpenAI routes, auth, admission, SSE streaming, metrics and one log line per request."""

from __future__ import annotations

import hmac
import json
import logging
import time

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from . import images as image_inputs
from . import jsonbody, protocol
from .admission import Admission, Overloaded
from .metrics import CONTENT_TYPE, Metrics
from .protocol import CHAT, COMPLETION, RequestError

LOG = logging.getLogger("npu_fleet_server")
PUBLIC_PATHS = ("/health", "/metrics")


def _json(body, status=200, headers=None):
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json", headers=headers)


def _error(exc: RequestError, headers=None):
    return _json(exc.body(), status=exc.status, headers=headers)


def _sse(payload) -> str:
    return "data: %s\n\n" % json.dumps(payload, ensure_ascii=False)


class Server:
    """Routes bound to one engine; kept as a class so tests can build several."""

    def __init__(self, settings, engine, metrics=None):
        self.settings = settings
        self.engine = engine
        self.metrics = metrics or Metrics(model_name=settings.served_model_name)
        self.admission = Admission(settings.max_concurrent, settings.max_queue, settings.queue_timeout)
        engine.on_batch = lambda rows: self.metrics.observe("batch_size", rows)
        self.app = Flask("npu_fleet_server")
        self.app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
        # The gunicorn worker (worker.py) counts the connections it drops in these metrics.
        self.app.extensions["npu_fleet_server"] = self
        self._routes()

    # -- plumbing -----------------------------------------------------------
    def _routes(self):
        app = self.app
        app.before_request(self._before)
        app.after_request(self._after)
        app.register_error_handler(HTTPException, self._http_error)
        app.register_error_handler(Exception, self._unexpected)
        app.add_url_rule("/health", "health", self.health, methods=["GET"])
        app.add_url_rule("/metrics", "metrics", self.prometheus, methods=["GET"])
        app.add_url_rule("/v1/models", "models", self.models, methods=["GET"])
        app.add_url_rule("/v1/chat/completions", "chat", lambda: self.generate(CHAT), methods=["POST"])
        app.add_url_rule("/v1/completions", "completions", lambda: self.generate(COMPLETION), methods=["POST"])

    def _before(self):
        g.started = time.monotonic()
        key = self.settings.api_key
        if key and request.path not in PUBLIC_PATHS:
            header = request.headers.get("Authorization", "")
            scheme, _sep, token = header.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
                return _error(
                    RequestError(
                        "invalid or missing API key: send 'Authorization: Bearer <key>'",
                        status=401,
                        code="invalid_api_key",
                        kind="authentication_error",
                    ),
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return None

    def _after(self, response):
        if request.path != "/metrics":
            endpoint = request.url_rule.rule if request.url_rule is not None else "other"
            self.metrics.inc("requests_total", endpoint=endpoint, status=str(response.status_code))
        return response

    def _http_error(self, exc: HTTPException):
        if exc.code == 413:
            message = "request body is larger than %d bytes (NPU_SERVE_MAX_BODY_BYTES)" % self.settings.max_body_bytes
        elif exc.code == 404:
            message = "no route %s %s: this server has /health, /metrics, /v1/models, /v1/chat/completions, /v1/completions" % (
                request.method,
                request.path,
            )
        else:
            message = exc.description or exc.name
        return _error(RequestError(message, status=exc.code or 500))

    def _unexpected(self, exc: Exception):
        LOG.exception("unhandled error on %s", request.path)
        return _error(RequestError("internal error: %s" % type(exc).__name__, status=500, kind="server_error"))

    # -- routes ---------------------------------------------------------------
    def health(self):
        engine = self.engine
        if engine.ready:
            return _json({"status": "ok", "model": self.settings.served_model_name})
        body = {"status": engine.state}
        if engine.error:
            body["error"] = engine.error
        return _json(body, status=503)

    def prometheus(self):
        self.metrics.set_load(self.admission.active, self.admission.waiting, self.engine.ready)
        return Response(self.metrics.render(), content_type=CONTENT_TYPE)

    def models(self):
        if not self.engine.ready:
            return _error(RequestError("the model is still loading", status=503, kind="server_error"))
        return _json(
            {
                "object": "list",
                "data": [
                    {
                        "id": self.settings.served_model_name,
                        "object": "model",
                        "created": int(time.time()),
                        "owned_by": "npu.fleet",
                        "root": self.settings.model_path,
                        "max_model_len": self.engine.max_model_len,
                        "input_modalities": self.engine.input_modalities,
                    }
                ],
            }
        )

    def _body(self):
        return jsonbody.parse(request.get_data(cache=False))

    def generate(self, kind):
        if not self.engine.ready:
            return _error(RequestError("the model is still loading", status=503, kind="server_error"), headers={"Retry-After": "5"})
        try:
            parsed = protocol.parse(self._body(), kind, self.settings.served_model_name)
            # Images are fetched and decoded before admission: a slow image URL holds a
            # request thread (bounded by NPU_SERVE_IMAGE_FETCH_TIMEOUT), never a generation slot.
            self.engine.check_images(parsed)
            pictures = image_inputs.load(parsed.images, self.settings) if parsed.images else None
        except RequestError as exc:
            return _error(exc)
        try:
            self.admission.acquire()
        except Overloaded as exc:
            self.metrics.inc("rejected_total")
            return _error(
                RequestError(str(exc), status=429, code="server_overloaded", kind="rate_limit_error"),
                headers={"Retry-After": str(exc.retry_after)},
            )
        try:
            generation = self.engine.start(parsed, pictures)
        except RequestError as exc:
            self.admission.release(0.0)
            return _error(exc)
        except Exception:
            self.admission.release(0.0)
            raise
        if pictures:
            self.metrics.inc("images_total", len(pictures))
        request_id = protocol.new_id(kind)
        if parsed.stream:
            return Response(
                self._stream(generation, kind, request_id, g.started),
                mimetype="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        return self._complete(generation, kind, request_id)

    # -- generation -----------------------------------------------------------
    def _prefix(self, generation, kind):
        parsed = generation.request
        if kind == COMPLETION and parsed.echo:
            if isinstance(parsed.prompt, str):
                return parsed.prompt
            return self.engine.tokenizer.decode(parsed.prompt)
        return ""

    def _complete(self, generation, kind, request_id):
        started = g.started
        ttft = None
        parts = [self._prefix(generation, kind)]
        try:
            for text in generation:
                if ttft is None:
                    ttft = time.monotonic() - started
                parts.append(text)
        except Exception as exc:  # pylint: disable=broad-except
            self._finish(generation, request_id, kind, started, ttft, error=exc)
            return _error(RequestError("generation failed: %s" % exc, status=500, kind="server_error"))
        finish_reason, stop_reason = self._finish(generation, request_id, kind, started, ttft)
        return _json(
            protocol.response(
                kind,
                request_id,
                self.settings.served_model_name,
                "".join(parts),
                finish_reason,
                stop_reason,
                generation.prompt_tokens,
                generation.completion_tokens,
            )
        )

    def _stream(self, generation, kind, request_id, started):
        created = time.time()
        model = self.settings.served_model_name
        ttft = None
        finished = False
        try:
            if kind == CHAT:
                yield _sse(protocol.chunk(kind, request_id, model, created, role=True))
            prefix = self._prefix(generation, kind)
            if prefix:
                yield _sse(protocol.chunk(kind, request_id, model, created, text=prefix))
            text_chunk = protocol.text_chunk_formatter(kind, request_id, model, created)
            try:
                for text in generation:
                    if ttft is None:
                        ttft = time.monotonic() - started
                    yield text_chunk(text)
            except Exception as exc:  # pylint: disable=broad-except
                finished = True
                self._finish(generation, request_id, kind, started, ttft, error=exc)
                yield _sse(protocol.error_body("generation failed: %s" % exc, "server_error"))
                yield "data: [DONE]\n\n"
                return
            finished = True
            finish_reason, stop_reason = self._finish(generation, request_id, kind, started, ttft)
            yield _sse(protocol.chunk(kind, request_id, model, created, finish_reason=finish_reason, stop_reason=stop_reason))
            if generation.request.include_usage:
                yield _sse(protocol.usage_chunk(kind, request_id, model, created, generation.prompt_tokens, generation.completion_tokens))
            yield "data: [DONE]\n\n"
        finally:
            if not finished:
                # The client went away (the WSGI server closed this generator): free the device now.
                generation.cancel()
                self._finish(generation, request_id, kind, started, ttft, cancelled=True)

    def _finish(self, generation, request_id, kind, started, ttft, error=None, cancelled=False):
        """Account for one finished generation exactly once: slot, metrics, log line."""
        generation.wait(self.settings.timeout)
        duration = time.monotonic() - started
        self.admission.release(duration)
        metrics = self.metrics
        finish_reason, stop_reason = generation.finish_reason
        if error is not None:
            finish_reason = "error"
        metrics.finished(generation.prompt_tokens, generation.completion_tokens, finish_reason, ttft, duration, generation.queue_seconds)
        metrics.inc("prompt_tokens_total", generation.prompt_tokens)
        metrics.inc("generation_tokens_total", generation.completion_tokens)
        metrics.inc("finished_total", reason=finish_reason)
        metrics.inc("repetition_penalty_interventions_total", generation.penalty_interventions)
        if finish_reason == "repetition":
            metrics.inc("guard_stops_total", layer=stop_reason)
        if cancelled:
            metrics.inc("cancelled_total")
        if ttft is not None:
            metrics.observe("time_to_first_token_seconds", ttft)
        metrics.observe("request_duration_seconds", duration)
        line = "request id=%s endpoint=%s stream=%s prompt_tokens=%d completion_tokens=%d ttft_ms=%s duration_ms=%.1f finish=%s" % (
            request_id,
            kind,
            str(generation.request.stream).lower(),
            generation.prompt_tokens,
            generation.completion_tokens,
            "%.1f" % (ttft * 1000) if ttft is not None else "-",
            duration * 1000,
            finish_reason,
        )
        if stop_reason:
            line += " stop_reason=%s" % json.dumps(stop_reason)
        if generation.penalty_interventions:
            line += " penalty_interventions=%d" % generation.penalty_interventions
        if error is not None:
            line += " error=%s" % json.dumps(str(error))
        if self.settings.debug:
            parsed = generation.request
            line += " prompt=%s" % json.dumps(parsed.messages if parsed.kind == CHAT else parsed.prompt, ensure_ascii=False)
        LOG.info(line)
        return finish_reason, stop_reason
