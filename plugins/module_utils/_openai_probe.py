# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""Prove an OpenAI-compatible endpoint serves: ready, the right model and length, tokens streaming.

Standard library only (it runs on the NPU host, next to the container), so
the probe sees the endpoint exactly as a client on that host does. When a
replica fails, ``failure_details`` turns what Docker says about its container
(``docker inspect`` JSON, ``docker logs`` text) into the state, the last log
lines and the diagnosis (plugins/module_utils/_failure_signatures.py).
"""

import json
import socket
import time

from ansible_collections.npu.fleet.plugins.module_utils._failure_signatures import diagnose

try:  # Python 3
    import http.client as http_client
    from urllib.parse import urlsplit
except ImportError:  # pragma: no cover - Python 2 targets are not supported by the serve roles
    http_client = None
    urlsplit = None

__all__ = ["ProbeFailed", "wait_ready", "check_models", "stream_chat", "container_state", "failure_details", "LOG_TAIL_LINES"]

LOG_TAIL_LINES = 20  # log lines a failure carries (the diagnosis reads every line collected)


class ProbeFailed(Exception):
    def __init__(self, stage, message):
        super(ProbeFailed, self).__init__(message)
        self.stage = stage
        self.message = message


def _connection(base_url, timeout):
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https"):
        raise ProbeFailed("config", "url %r is not http(s)" % base_url)
    cls = http_client.HTTPSConnection if parts.scheme == "https" else http_client.HTTPConnection
    return cls(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), timeout=timeout)


def _headers(api_key):
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if api_key:
        headers["Authorization"] = "Bearer " + api_key
    return headers


def _request(base_url, method, path, api_key=None, body=None, timeout=30.0):
    connection = _connection(base_url, timeout)
    try:
        connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=_headers(api_key))
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def wait_ready(base_url, deadline_seconds, interval=2.0, still_alive=None, clock=time.monotonic, sleep=time.sleep):
    """Poll /health until 200. ``still_alive()`` may raise ProbeFailed to stop early (the container exited)."""
    started = clock()
    last = "no answer yet"
    while True:
        try:
            status, text = _request(base_url, "GET", "/health", timeout=10.0)
            if status == 200:
                return clock() - started
            last = "/health answered %d: %s" % (status, text.strip()[:200])
        except (socket.error, http_client.HTTPException, OSError) as exc:
            last = "%s: %s" % (type(exc).__name__, exc)
        if still_alive is not None:
            still_alive()
        if clock() - started >= deadline_seconds:
            raise ProbeFailed("health", "not ready after %.0f s (%s)" % (deadline_seconds, last))
        sleep(interval)


def check_models(base_url, served_name, max_model_len=None, api_key=None):
    """/v1/models lists the served name, with the planned max_model_len when given."""
    try:
        status, text = _request(base_url, "GET", "/v1/models", api_key=api_key)
    except (socket.error, http_client.HTTPException, OSError) as exc:
        raise ProbeFailed("models", "GET /v1/models failed: %s" % exc)
    if status != 200:
        raise ProbeFailed("models", "GET /v1/models answered %d: %s" % (status, text.strip()[:300]))
    try:
        data = json.loads(text).get("data") or []
    except (ValueError, AttributeError):
        raise ProbeFailed("models", "GET /v1/models did not return JSON: %s" % text[:200])
    entry = next((item for item in data if item.get("id") == served_name), None)
    if entry is None:
        raise ProbeFailed("models", "served model %r not listed (got %s)" % (served_name, [item.get("id") for item in data]))
    served_len = entry.get("max_model_len")
    if max_model_len and served_len is not None and int(served_len) != int(max_model_len):
        raise ProbeFailed("models", "max_model_len is %s, the plan says %s" % (served_len, max_model_len))
    return entry


def stream_chat(base_url, served_name, api_key=None, prompt="Say hello in five words.", max_tokens=16, timeout=120.0, clock=time.monotonic):
    """One streamed chat completion: time to first token, total time, chunks, text."""
    body = {
        "model": served_name,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
    }
    connection = _connection(base_url, timeout)
    started = clock()
    first = None
    chunks, parts, done = 0, [], False
    try:
        connection.request("POST", "/v1/chat/completions", body=json.dumps(body), headers=_headers(api_key))
        response = connection.getresponse()
        if response.status != 200:
            raise ProbeFailed(
                "stream",
                "POST /v1/chat/completions answered %d: %s" % (response.status, response.read().decode("utf-8", "replace").strip()[:300]),
            )
        while True:
            raw = response.readline()
            if not raw:
                break
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                done = True
                break
            event = json.loads(payload)
            if "error" in event:
                raise ProbeFailed("stream", "the stream reported an error: %s" % event["error"])
            for choice in event.get("choices") or []:
                text = (choice.get("delta") or {}).get("content")
                if text:
                    chunks += 1
                    parts.append(text)
                    if first is None:
                        first = clock()
    except (socket.error, http_client.HTTPException, OSError, ValueError) as exc:
        raise ProbeFailed("stream", "streaming chat completion failed: %s" % exc)
    finally:
        connection.close()
    total = clock() - started
    if not done:
        raise ProbeFailed("stream", "the stream ended without data: [DONE]")
    if first is None:
        raise ProbeFailed("stream", "the stream carried no token")
    return {
        "ttft_ms": round((first - started) * 1000.0, 1),
        "total_ms": round(total * 1000.0, 1),
        "chunks": chunks,
        "text": "".join(parts)[:200],
    }


def container_state(inspect_output, error=None):
    """``docker inspect <name>`` output (a JSON array of one container) -> status, exit_code, oom_killed, restarts, error.

    ``error`` is what to report when the container could not be inspected (the command's stderr); fields Docker did not
    give are None.
    """
    state = {"status": None, "exit_code": None, "oom_killed": None, "restarts": None, "error": None}
    try:
        data = json.loads(inspect_output) if (inspect_output or "").strip() else None
    except ValueError:
        data = None
        error = error or "docker inspect did not return JSON: %s" % inspect_output.strip()[:200]
    if isinstance(data, list):
        data = data[0] if data else None
    if isinstance(data, dict):
        docker_state = data.get("State") or {}
        state.update(
            status=docker_state.get("Status"),
            exit_code=docker_state.get("ExitCode"),
            oom_killed=docker_state.get("OOMKilled"),
            restarts=data.get("RestartCount"),
            error=docker_state.get("Error") or None,
        )
    if error and not state["error"]:
        state["error"] = error.strip()[:500]
    return state


def failure_details(inspect_output, log_text, inspect_error=None, tail_lines=LOG_TAIL_LINES):
    """What a failed replica's container says: ``state`` (container_state), ``log_tail`` (its last ``tail_lines``
    lines) and ``diagnosis`` (cause, fix and evidence from the whole ``log_text``, see _failure_signatures.diagnose)."""
    text = log_text or ""
    return {
        "state": container_state(inspect_output, inspect_error),
        "log_tail": text.splitlines()[-tail_lines:],
        "diagnosis": diagnose(text),
    }
