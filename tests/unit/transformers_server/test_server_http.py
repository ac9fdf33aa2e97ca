"""The real server under gunicorn (gthread) on a loopback port, exercised over HTTP.

The checkpoint is the crafted looping Qwen3 from ``tiny_models``: greedy
output is known token by token, and the loops the repetition guard must catch
really happen inside ``model.generate``.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests
from transformers import AutoTokenizer

from conftest import API_KEY
from http_client import final_choice, post, sse_events, streamed_text

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"


@pytest.fixture(scope="module")
def tokenizer(looping_model):
    return AutoTokenizer.from_pretrained(looping_model.path)


def _wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def test_health_models_and_worker(server):
    health = requests.get(server.base_url + "/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    models = requests.get(server.base_url + "/v1/models", headers={"Authorization": "Bearer " + API_KEY}, timeout=10)
    assert models.status_code == 200
    (entry,) = models.json()["data"]
    assert entry["id"] == "tiny-loop" and entry["max_model_len"] == 16384
    log = server.log()
    assert "Using worker: gthread" in log
    assert "model ready" in log and "max_model_len=16384" in log


def test_chat_non_streaming_follows_the_model(server, auth, looping_model, tokenizer):
    messages = [{"role": "user", "content": "hello there"}]
    response = post(server, CHAT, {"model": "tiny-loop", "messages": messages, "max_tokens": 12, "temperature": 0}, auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion" and body["model"] == "tiny-loop"
    (choice,) = body["choices"]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == tokenizer.decode(looping_model.big_cycle[:12])
    assert choice["finish_reason"] == "length"
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    prompt_tokens = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert body["usage"] == {"prompt_tokens": prompt_tokens, "completion_tokens": 12, "total_tokens": prompt_tokens + 12}


def test_chat_streaming_sends_the_same_text_as_sse(server, auth, looping_model, tokenizer):
    body = {
        "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": 30,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = post(server, CHAT, body, auth, stream=True)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events, done = sse_events(response)
    assert done
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(event["object"] == "chat.completion.chunk" and event["id"] == events[0]["id"] for event in events)
    content_chunks = [event for event in events if event["choices"] and event["choices"][0]["delta"].get("content")]
    assert len(content_chunks) >= 10, "tokens should arrive one by one, not in one block"
    assert streamed_text(events) == tokenizer.decode(looping_model.big_cycle[:30])
    assert final_choice(events)["finish_reason"] == "length"
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == 30


def test_completions_stream_and_echo(server, auth, looping_model, tokenizer):
    start = looping_model.big_cycle[5]
    prompt = tokenizer.decode([start])
    expected = tokenizer.decode(looping_model.big_cycle[6:14])
    plain = post(server, COMPLETIONS, {"prompt": [start], "max_tokens": 8, "temperature": 0}, auth).json()
    assert plain["object"] == "text_completion" and plain["choices"][0]["text"] == expected
    echoed = post(server, COMPLETIONS, {"prompt": prompt, "max_tokens": 8, "temperature": 0, "echo": True}, auth).json()
    assert echoed["choices"][0]["text"].startswith(prompt)
    events, done = sse_events(
        post(server, COMPLETIONS, {"prompt": [start], "max_tokens": 8, "temperature": 0, "stream": True}, auth, stream=True)
    )
    assert done and streamed_text(events, kind="completion") == expected
    assert final_choice(events)["finish_reason"] == "length"


def test_stop_string_ends_generation_and_is_not_sent(server, auth, looping_model, tokenizer):
    full = tokenizer.decode(looping_model.big_cycle[:40])
    stop = full[20:23]
    expected = full[: full.find(stop)]
    body = {"messages": [{"role": "user", "content": "x"}], "max_tokens": 40, "temperature": 0, "stop": ["never-there", stop]}
    choice = post(server, CHAT, body, auth).json()["choices"][0]
    assert choice["message"]["content"] == expected
    assert (choice["finish_reason"], choice["stop_reason"]) == ("stop", stop)
    events, done = sse_events(post(server, CHAT, dict(body, stream=True), auth, stream=True))
    assert done and streamed_text(events) == expected
    assert final_choice(events)["stop_reason"] == stop


def test_eos_finishes_with_stop(server, auth, looping_model):
    body = post(server, COMPLETIONS, {"prompt": [looping_model.to_eos], "max_tokens": 20, "temperature": 0}, auth).json()
    choice = body["choices"][0]
    assert (choice["text"], choice["finish_reason"]) == ("", "stop")
    assert body["usage"]["completion_tokens"] == 1


def test_seed_makes_sampling_reproducible(server, auth, looping_model):
    def sample(seed):
        body = {"prompt": [looping_model.runner_up], "max_tokens": 24, "temperature": 1.0, "seed": seed}
        return post(server, COMPLETIONS, body, auth).json()["choices"][0]["text"]

    first = sample(11)
    assert sample(11) == first
    assert sample(12) != first


def test_guard_layer2_repeated_token_stops_and_keeps_one_copy(server, auth, looping_model, tokenizer):
    before = server.metric("npu_serve_guard_stops_total", layer="repeated_chunk")
    body = {"prompt": [looping_model.fixed], "max_tokens": 200, "temperature": 0, "repetition_penalty": 1.0}
    result = post(server, COMPLETIONS, body, auth).json()
    choice = result["choices"][0]
    assert (choice["finish_reason"], choice["stop_reason"]) == ("repetition", "repeated_chunk")
    assert choice["text"] == tokenizer.decode([looping_model.fixed])
    assert result["usage"]["completion_tokens"] == 11  # more than 10 in a row
    events, done = sse_events(post(server, COMPLETIONS, dict(body, stream=True), auth, stream=True))
    assert done and streamed_text(events, kind="completion") == tokenizer.decode([looping_model.fixed])
    assert final_choice(events)["stop_reason"] == "repeated_chunk"
    assert server.metric("npu_serve_guard_stops_total", layer="repeated_chunk") == before + 2


def test_guard_layer3_repeated_block_stops_without_sending_the_loop(server, auth, looping_model, tokenizer):
    block = looping_model.block
    first_copy = tokenizer.decode(block[1:] + block[:1])
    before = server.metric("npu_serve_guard_stops_total", layer="repeated_block")
    body = {"prompt": [block[0]], "max_tokens": 500, "temperature": 0, "stream": True}
    events, done = sse_events(post(server, COMPLETIONS, body, auth, stream=True))
    assert done
    assert streamed_text(events, kind="completion") == first_copy
    choice = final_choice(events)
    assert (choice["finish_reason"], choice["stop_reason"]) == ("repetition", "repeated_block")
    result = post(server, COMPLETIONS, dict(body, stream=False), auth).json()
    assert result["choices"][0]["text"] == first_copy
    assert result["usage"]["completion_tokens"] == 3 * len(block)  # stopped as the third copy completed
    assert server.metric("npu_serve_guard_stops_total", layer="repeated_block") == before + 2


def test_guard_layer1_penalty_breaks_the_loop_and_is_counted(server, auth, looping_model, tokenizer):
    before = server.metric("npu_serve_repetition_penalty_interventions_total")
    body = {"prompt": [looping_model.fixed], "max_tokens": 40, "temperature": 0}  # default penalty 1.2
    choice = post(server, COMPLETIONS, body, auth).json()["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["text"] == tokenizer.decode(looping_model.big_cycle[:40])
    assert server.metric("npu_serve_repetition_penalty_interventions_total") >= before + 1


def test_prompt_longer_than_max_model_len_is_a_400(server, auth, looping_model):
    too_long = [looping_model.big_cycle[i % 300] for i in range(16384)]
    response = post(server, COMPLETIONS, {"prompt": too_long, "max_tokens": 1}, auth)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded" and "16384" in error["message"] and error["param"] == "prompt"
    room = post(server, COMPLETIONS, {"prompt": [looping_model.fixed], "max_tokens": 16384}, auth)
    assert room.status_code == 400 and "at most 16383" in room.json()["error"]["message"]


@pytest.mark.parametrize(
    "raw, param, fragment",
    [
        (b"{not json", None, "not valid JSON"),
        (b"[1, 2]", None, "JSON object"),
        (b'{"messages": "hi"}', "messages", "non-empty list"),
        (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": "5"}', "max_tokens", "integer"),
        (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": true}', "max_tokens", "integer"),
        (b'{"messages": [{"role": "user", "content": "x"}], "temperature": true}', "temperature", "number"),
        (b'{"messages": [{"role": "user", "content": "x"}], "top_p": 0}', "top_p", "(0.0, 1.0]"),
        (b'{"messages": [{"role": "user", "content": "x"}], "stop": 5}', "stop", "string"),
        (b'{"messages": [{"role": "user", "content": "x"}], "stream": "yes"}', "stream", "true or false"),
        (b'{"messages": [{"role": "user", "content": "x"}], "n": 2}', "n", "n=1"),
        (b'{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}', "messages", "text parts"),
    ],
)
def test_bad_input_is_a_400_with_an_openai_error(server, raw, param, fragment):
    headers = {"Authorization": "Bearer " + API_KEY, "Content-Type": "application/json"}
    response = requests.post(server.base_url + CHAT, data=raw, headers=headers, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert fragment in error["message"]


def test_wrong_model_route_method_and_size(server, auth):
    wrong = post(server, CHAT, {"model": "other", "messages": [{"role": "user", "content": "x"}]}, auth)
    assert wrong.status_code == 404 and wrong.json()["error"]["code"] == "model_not_found"
    route = requests.get(server.base_url + "/v1/embeddings", headers=auth, timeout=10)
    assert route.status_code == 404 and "/v1/chat/completions" in route.json()["error"]["message"]
    method = requests.get(server.base_url + CHAT, headers=auth, timeout=10)
    assert method.status_code == 405 and "error" in method.json()
    huge = requests.post(server.base_url + COMPLETIONS, headers=auth, timeout=30, data=b'{"prompt": "' + b"a" * (2 * 1024 * 1024) + b'"}')
    assert huge.status_code == 413 and "NPU_SERVE_MAX_BODY_BYTES" in huge.json()["error"]["message"]


def test_api_key_is_required_and_compared_exactly(server):
    body = {"messages": [{"role": "user", "content": "x"}], "max_tokens": 2}
    missing = post(server, CHAT, body)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    assert missing.json()["error"]["type"] == "authentication_error"
    assert post(server, CHAT, body, {"Authorization": "Bearer " + API_KEY + "x"}).status_code == 401
    assert post(server, CHAT, body, {"Authorization": "Basic " + API_KEY}).status_code == 401
    assert post(server, CHAT, body, {"Authorization": "bearer " + API_KEY}).status_code == 200
    assert requests.get(server.base_url + "/health", timeout=10).status_code == 200
    assert requests.get(server.base_url + "/metrics", timeout=10).status_code == 200


def test_concurrent_streams_each_get_their_own_answer(server, auth, looping_model, tokenizer):
    starts = [looping_model.big_cycle[10], looping_model.big_cycle[100], looping_model.big_cycle[200]]
    results = {}

    def run(start):
        body = {"prompt": [start], "max_tokens": 150, "temperature": 0, "stream": True}
        events, done = sse_events(post(server, COMPLETIONS, body, auth, stream=True))
        results[start] = (streamed_text(events, kind="completion"), done)

    threads = [threading.Thread(target=run, args=(start,)) for start in starts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    cycle = looping_model.big_cycle
    for start in starts:
        index = cycle.index(start)
        expected = tokenizer.decode([cycle[(index + 1 + k) % len(cycle)] for k in range(150)])
        assert results[start] == (expected, True)


def _open_long_stream(server, auth, looping_model, start_index):
    """A stream that would run 15,000 tokens, read up to its third text chunk.

    Returns the response and its line iterator: dropping the iterator closes
    the connection (urllib3 closes a chunked body read early), which the server
    rightly treats as a disconnect.
    """
    body = {"prompt": [looping_model.big_cycle[start_index]], "max_tokens": 15000, "temperature": 0, "stream": True}
    response = post(server, COMPLETIONS, body, auth, stream=True)
    assert response.status_code == 200
    lines = response.iter_lines(decode_unicode=True)
    seen = 0
    for line in lines:
        if line.startswith("data: ") and '"text": "' in line and '"text": ""' not in line:
            seen += 1
            if seen == 3:
                break
    return response, lines


def _cancelled_lines(server):
    return [line for line in server.log().splitlines() if "finish=cancelled" in line]


def test_overload_gets_429_with_retry_after_and_queued_request_still_served(server, auth, looping_model):
    cancelled_before = len(_cancelled_lines(server))
    long_streams = [_open_long_stream(server, auth, looping_model, 1), _open_long_stream(server, auth, looping_model, 2)]
    queued = {}

    def queued_request():
        queued["response"] = post(server, COMPLETIONS, {"prompt": [looping_model.fixed], "max_tokens": 4, "temperature": 0}, auth)

    waiter = threading.Thread(target=queued_request)
    waiter.start()
    _wait_for(lambda: server.metric("npu_serve_requests_waiting") == 1, what="the third request to be queued")
    assert server.metric("npu_serve_requests_in_flight") == 2
    refused = post(server, COMPLETIONS, {"prompt": "x", "max_tokens": 2}, auth)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert "queued" not in queued, "the queued request must wait while both slots are busy"
    for response, _lines in long_streams:
        response.close()
    waiter.join(120)
    assert queued["response"].status_code == 200
    _wait_for(lambda: len(_cancelled_lines(server)) >= cancelled_before + 2, what="both streams to be cancelled")
    for line in _cancelled_lines(server)[cancelled_before:]:
        generated = int(line.split("completion_tokens=")[1].split()[0])
        assert generated < 15000, "a closed stream must stop generating: " + line
    _wait_for(lambda: server.metric("npu_serve_requests_in_flight") == 0, what="slots to free")
    assert server.metric("npu_serve_rejected_total") >= 1


def test_client_disconnect_stops_the_generation(server, auth, looping_model):
    before = server.metric("npu_serve_cancelled_total")
    cancelled_before = len(_cancelled_lines(server))
    response, lines = _open_long_stream(server, auth, looping_model, 3)
    assert server.metric("npu_serve_requests_in_flight") == 1
    response.close()
    del lines
    _wait_for(lambda: server.metric("npu_serve_cancelled_total") == before + 1, what="the cancellation")
    (line,) = _cancelled_lines(server)[cancelled_before:]
    assert int(line.split("completion_tokens=")[1].split()[0]) < 15000
    _wait_for(lambda: server.metric("npu_serve_requests_in_flight") == 0, what="the slot to free")


def test_request_log_line_has_numbers_but_no_prompt(server, auth):
    marker = "secret-marker-4242"
    response = post(server, CHAT, {"messages": [{"role": "user", "content": marker}], "max_tokens": 3}, auth)
    request_id = response.json()["id"]
    (line,) = [line for line in server.log().splitlines() if "id=" + request_id in line]
    for field in ("prompt_tokens=", "completion_tokens=3", "ttft_ms=", "duration_ms=", "finish=length"):
        assert field in line
    assert marker not in server.log()
    assert API_KEY not in server.log()


def test_metrics_are_prometheus_text(server, auth):
    post(server, CHAT, {"messages": [{"role": "user", "content": "m"}], "max_tokens": 2}, auth)
    response = requests.get(server.base_url + "/metrics", timeout=10)
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.text
    for name, kind in [
        ("npu_serve_requests_total", "counter"),
        ("npu_serve_generation_tokens_total", "counter"),
        ("npu_serve_time_to_first_token_seconds", "histogram"),
        ("npu_serve_requests_in_flight", "gauge"),
        ("npu_serve_guard_stops_total", "counter"),
    ]:
        assert "# TYPE %s %s" % (name, kind) in text
    assert server.metric("npu_serve_requests_total", endpoint="/v1/chat/completions", status="200") >= 1
    assert server.metric("npu_serve_time_to_first_token_seconds_count") >= 1
    assert server.metric("npu_serve_time_to_first_token_seconds_bucket", le="+Inf") == server.metric(
        "npu_serve_time_to_first_token_seconds_count"
    )
    assert server.metric("npu_serve_model_ready") == 1


def test_guard_layers_can_be_switched_off_and_debug_logs_prompts(start_server, looping_model, tokenizer):
    relaxed = start_server(
        {
            "NPU_SERVE_MODEL": looping_model.path,
            "NPU_SERVE_MAX_REPEATED_CHUNKS": "0",
            "NPU_SERVE_REPEAT_BLOCK_COUNT": "0",
            "NPU_SERVE_REPETITION_PENALTY": "1.0",
            "NPU_SERVE_DEBUG": "true",
        }
    )
    fixed = post(relaxed, COMPLETIONS, {"prompt": [looping_model.fixed], "max_tokens": 30, "temperature": 0}).json()
    assert fixed["choices"][0]["finish_reason"] == "length"
    assert fixed["choices"][0]["text"] == tokenizer.decode([looping_model.fixed] * 30)
    block = post(relaxed, COMPLETIONS, {"prompt": [looping_model.block[0]], "max_tokens": 80, "temperature": 0}).json()
    assert block["choices"][0]["finish_reason"] == "length"
    post(relaxed, CHAT, {"messages": [{"role": "user", "content": "debug-marker-77"}], "max_tokens": 2})
    assert "debug-marker-77" in relaxed.log()


def test_a_model_that_cannot_load_stops_the_server(start_server, tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "no-such-architecture"}')
    broken = start_server({"NPU_SERVE_MODEL": str(tmp_path)}, wait=False)
    assert broken.wait_exit() == 3
    log = broken.log()
    assert "model load failed" in log and "no-such-architecture" in log


def test_bad_settings_stop_the_server_with_the_variable_named(start_server, looping_model):
    crowded = start_server({"NPU_SERVE_MODEL": looping_model.path, "NPU_SERVE_THREADS": "2"}, wait=False)
    assert crowded.wait_exit() != 0
    assert "NPU_SERVE_THREADS=2 is too few" in crowded.log()
