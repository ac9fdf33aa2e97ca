"""Batched generation: concurrent requests share forward passes and each keeps its own seed, guard, stops and cancellation."""

from __future__ import annotations

import threading
import time

import pytest
from transformers import AutoTokenizer

from http_client import final_choice, post, sse_events, streamed_text
from tiny_models import build_random_model

COMPLETIONS = "/v1/completions"
STREAMS = 6


@pytest.fixture(scope="module")
def tokenizer(looping_model):
    return AutoTokenizer.from_pretrained(looping_model.path)


@pytest.fixture(scope="module")
def batch_server(start_server, looping_model):
    return start_server(
        {
            "NPU_SERVE_MODEL": looping_model.path,
            "NPU_SERVE_THREADS": str(STREAMS + 4),
            "NPU_SERVE_MAX_CONCURRENT": str(STREAMS),
            "NPU_SERVE_MAX_QUEUE": "2",
            "NPU_SERVE_MAX_MODEL_LEN": "16384",
        }
    )


def _together(server, bodies):
    """Stream every body at once (released together); (text, finish choice, usage) for each."""
    results = [None] * len(bodies)
    gate = threading.Barrier(len(bodies))

    def run(index):
        body = dict(bodies[index], stream=True, stream_options={"include_usage": True})
        gate.wait()
        events, done = sse_events(post(server, COMPLETIONS, body, stream=True))
        assert done
        results[index] = (streamed_text(events, kind="completion"), final_choice(events), events[-1]["usage"])

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    return results


def _batched_steps(server):
    return server.metric("npu_serve_batch_size_count") - server.metric("npu_serve_batch_size_bucket", le="1.0")


def test_concurrent_streams_share_steps_and_match_their_solo_answers(batch_server, looping_model, tokenizer):
    assert "runner=batch" in batch_server.log()
    cycle = looping_model.big_cycle
    bodies = [
        {"prompt": [looping_model.runner_up], "max_tokens": 40, "temperature": 1.0, "seed": 100 + index, "repetition_penalty": 1.0}
        for index in range(3)
    ]
    bodies += [
        {"prompt": [cycle[50]], "max_tokens": 60, "temperature": 0},  # greedy: the cycle, to length
        {"prompt": [looping_model.fixed], "max_tokens": 200, "temperature": 0, "repetition_penalty": 1.0},  # layer 2 trips
        {"prompt": [looping_model.block[0]], "max_tokens": 200, "temperature": 0, "stop": [tokenizer.decode(looping_model.block[5:7])]},
    ]
    alone = [post(batch_server, COMPLETIONS, body).json() for body in bodies]
    steps_before = _batched_steps(batch_server)
    together = _together(batch_server, bodies)
    assert _batched_steps(batch_server) > steps_before + 20, "the streams must have shared decode steps"
    for solo, (text, choice, usage) in zip(alone, together):
        assert text == solo["choices"][0]["text"]
        assert (choice["finish_reason"], choice["stop_reason"]) == (solo["choices"][0]["finish_reason"], solo["choices"][0]["stop_reason"])
        assert usage["completion_tokens"] == solo["usage"]["completion_tokens"]
    assert len({result[0] for result in together[:3]}) == 3, "each seed gives its own sample"
    assert together[3][0] == tokenizer.decode([cycle[51 + k] for k in range(60)])
    assert (together[4][1]["finish_reason"], together[4][1]["stop_reason"]) == ("repetition", "repeated_chunk")
    assert together[4][0] == tokenizer.decode([looping_model.fixed]) and together[4][2]["completion_tokens"] == 11
    assert together[5][1]["finish_reason"] == "stop" and together[5][0] == tokenizer.decode(looping_model.block[1:5])


def test_cancelling_one_stream_leaves_the_others_intact(batch_server, looping_model, tokenizer):
    cycle = looping_model.big_cycle
    starts = [cycle[20], cycle[120], cycle[220]]
    running, others_started = threading.Event(), threading.Event()

    def long_stream_then_close():
        body = {"prompt": [cycle[300]], "max_tokens": 15000, "temperature": 0, "stream": True}
        response = post(batch_server, COMPLETIONS, body, stream=True)
        seen = 0
        for line in response.iter_lines(decode_unicode=True):
            if '"text": "' in line and '"text": ""' not in line:
                seen += 1
                if seen == 3:
                    running.set()
                    others_started.wait(30)
                if seen == 40:
                    break
        response.close()

    before = batch_server.metric("npu_serve_cancelled_total")
    closer = threading.Thread(target=long_stream_then_close)
    closer.start()
    assert running.wait(30)
    results = {}
    runner = threading.Thread(
        target=lambda: results.update(
            enumerate(_together(batch_server, [{"prompt": [start], "max_tokens": 300, "temperature": 0} for start in starts]))
        )
    )
    runner.start()
    others_started.set()
    closer.join(60)
    runner.join(180)
    for index, start in enumerate(starts):
        text, choice, _usage = results[index]
        position = cycle.index(start)
        assert text == tokenizer.decode([cycle[(position + 1 + k) % len(cycle)] for k in range(300)])
        assert choice["finish_reason"] == "length"
    deadline = time.monotonic() + 30
    while batch_server.metric("npu_serve_cancelled_total") != before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert batch_server.metric("npu_serve_cancelled_total") == before + 1
    (line,) = [line for line in batch_server.log().splitlines() if "finish=cancelled" in line]
    assert int(line.split("completion_tokens=")[1].split()[0]) < 15000


@pytest.fixture(scope="module")
def random_model(tmp_path_factory):
    """Random weights where attention matters (the looping model zeroes it): padding and positions must be right."""
    return build_random_model(str(tmp_path_factory.mktemp("random-model")), hidden_size=64, layers=2, heads=4, kv_heads=2, seed=3)


def test_batched_rows_of_different_lengths_match_the_unbatched_path(start_server, random_model):
    common = {
        "NPU_SERVE_MODEL": random_model,
        "NPU_SERVE_THREADS": str(STREAMS + 4),
        "NPU_SERVE_MAX_CONCURRENT": str(STREAMS),
        "NPU_SERVE_MAX_QUEUE": "2",
        "NPU_SERVE_MAX_REPEATED_CHUNKS": "0",  # random weights loop; compare whole outputs
        "NPU_SERVE_REPEAT_BLOCK_COUNT": "0",
    }
    unbatched = start_server(dict(common, NPU_SERVE_BATCH="0"))
    batched = start_server(common)
    assert "runner=solo" in unbatched.log() and "runner=batch" in batched.log()
    bodies = [{"prompt": [10 + (7 * k) % 300 for k in range(length)], "max_tokens": 24, "temperature": 0} for length in (3, 41, 9, 60, 17)]
    bodies.append({"prompt": [11, 12, 13, 14], "max_tokens": 24, "temperature": 0.8, "seed": 5})
    reference = [post(unbatched, COMPLETIONS, body).json() for body in bodies]
    together = _together(batched, bodies)
    for solo, (text, choice, usage) in zip(reference, together):
        assert text == solo["choices"][0]["text"] and usage == solo["usage"]
        assert choice["finish_reason"] == solo["choices"][0]["finish_reason"]
