"""No stalling: half-open and slow clients never hold a thread, bodies are bounded, odd JSON is a 400."""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests

from conftest import API_KEY
from http_client import post

COMPLETIONS = "/v1/completions"
THREADS = 4


def _half_open(port, partial: bytes):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(partial)
    return sock


def _port(server):
    return int(server.base_url.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def patient_server(start_server, looping_model):
    """Few threads, and a read deadline longer than the test holds its half-open connections."""
    return start_server(
        {
            "NPU_SERVE_MODEL": looping_model.path,
            "NPU_SERVE_THREADS": str(THREADS),
            "NPU_SERVE_MAX_CONCURRENT": "2",
            "NPU_SERVE_MAX_QUEUE": "1",
            "NPU_SERVE_REQUEST_READ_TIMEOUT": "60",
        }
    )


def test_half_open_connections_do_not_stall_health_or_generation(patient_server, looping_model):
    port = _port(patient_server)
    partials = [
        b"GET /health HTTP/1.1\r\nHost: x\r\n",  # headers never end
        b'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{"prompt": ',  # body never ends
        b'POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"pro',  # chunks never end
        b"",  # connected, silent
    ]
    held = [_half_open(port, partials[index % len(partials)]) for index in range(2 * THREADS)]
    try:
        body = {"prompt": [looping_model.big_cycle[7]], "max_tokens": 8, "temperature": 0}
        expected = post(patient_server, COMPLETIONS, body).json()["choices"][0]["text"]
        deadline = time.monotonic() + 20
        rounds = 0
        while time.monotonic() < deadline:
            health = requests.get(patient_server.base_url + "/health", timeout=1)
            assert health.status_code == 200
            answer = requests.post(patient_server.base_url + COMPLETIONS, json=body, timeout=1)
            assert answer.status_code == 200 and answer.json()["choices"][0]["text"] == expected
            rounds += 1
            time.sleep(0.25)
        assert rounds >= 20
        for sock in held:  # still open: the server neither answered nor dropped them early
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
    finally:
        for sock in held:
            sock.close()


@pytest.fixture(scope="module")
def strict_server(start_server, looping_model):
    return start_server(
        {
            "NPU_SERVE_MODEL": looping_model.path,
            "NPU_SERVE_API_KEY": API_KEY,
            "NPU_SERVE_REQUEST_READ_TIMEOUT": "2",
            "NPU_SERVE_MAX_BODY_BYTES": "4096",
        }
    )


def test_a_request_not_whole_within_the_deadline_gets_408_and_is_closed(strict_server):
    before = strict_server.metric("npu_serve_connections_dropped_total", reason="read_timeout")
    sock = _half_open(_port(strict_server), b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    started = time.monotonic()
    sock.settimeout(10)
    try:
        for _drip in range(6):  # a byte now and then does not extend the deadline
            time.sleep(0.5)
            try:
                sock.sendall(b" ")
            except OSError:
                break
        answer = b""
        while True:
            piece = sock.recv(65536)
            if not piece:
                break
            answer += piece
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408") and b"NPU_SERVE_REQUEST_READ_TIMEOUT" in answer
    assert time.monotonic() - started < 6
    assert strict_server.metric("npu_serve_connections_dropped_total", reason="read_timeout") == before + 1


def test_bodies_over_the_limit_are_413_declared_or_chunked(strict_server):
    auth = {"Authorization": "Bearer " + API_KEY}
    declared = requests.post(strict_server.base_url + COMPLETIONS, data=b"x" * 8192, headers=auth, timeout=10)

    def pieces():
        for _index in range(16):
            yield b"y" * 1024

    chunked = requests.post(strict_server.base_url + COMPLETIONS, data=pieces(), headers=auth, timeout=10)
    for response in (declared, chunked):
        assert response.status_code == 413
        assert "NPU_SERVE_MAX_BODY_BYTES" in response.json()["error"]["message"]
    small = requests.post(
        strict_server.base_url + COMPLETIONS, data=iter([b'{"prompt": "x",', b' "max_tokens": 2}']), headers=auth, timeout=10
    )
    assert small.status_code == 200, small.text


@pytest.mark.parametrize(
    "raw, fragment",
    [
        (b'{"prompt": "x", "temperature": NaN}', "NaN"),
        (b'{"prompt": "x", "temperature": Infinity}', "Infinity"),
        (b'{"prompt": "x", "temperature": -Infinity}', "Infinity"),
        (b'{"prompt": "x", "top_p": 1e999}', "out of range"),
        (b'{"prompt": "\\ud800 lone"}', "surrogate"),
        (b'{"prompt": "x", "stop": ["\\udfff"]}', "surrogate"),
        (b'{"prompt": "x", "seed": 18446744073709551616}', "'seed' must be between"),
        (b'{"prompt": "x", "seed": -9223372036854775809}', "'seed' must be between"),
        (b'{"prompt": "x", "max_tokens": 1' + b"0" * 5000 + b"}", "not valid JSON"),
        (b'{"prompt": "x", "a": ' + b"[" * 100 + b"]" * 100 + b"}", "deeper than"),
        (b"[" * 100000 + b"]" * 100000, "deeper than"),
        (b'{"prompt": "\xff\xfe"}', "not UTF-8"),
    ],
)
def test_odd_json_is_a_400_never_a_500(server, raw, fragment):
    headers = {"Authorization": "Bearer " + API_KEY, "Content-Type": "application/json"}
    response = requests.post(server.base_url + COMPLETIONS, data=raw, headers=headers, timeout=30)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]["message"]


def test_extreme_but_valid_values_still_answer(server, auth, looping_model):
    body = {"prompt": [looping_model.runner_up], "max_tokens": 4, "seed": 2**64 - 1, "temperature": 1e-300, "top_p": 1e-300}
    response = post(server, COMPLETIONS, body, auth)
    assert response.status_code == 200, response.text
    body = {"prompt": [looping_model.runner_up], "max_tokens": 4, "top_k": 10**30, "seed": -(2**63)}
    assert post(server, COMPLETIONS, body, auth).status_code == 200
    assert json.loads(requests.get(server.base_url + "/health", timeout=5).text)["status"] == "ok"
