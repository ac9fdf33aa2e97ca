"""npu.fleet's health probe (module_utils/_openai_probe.py) against the real Transformers server over HTTP."""

from __future__ import annotations

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._openai_probe import ProbeFailed, check_models, stream_chat, wait_ready
from conftest import API_KEY, free_port


def test_a_healthy_replica_passes_every_stage(server):
    assert wait_ready(server.base_url, 30, interval=0.2) >= 0
    entry = check_models(server.base_url, "tiny-loop", 16384, API_KEY)
    assert entry["id"] == "tiny-loop"
    result = stream_chat(server.base_url, "tiny-loop", API_KEY, max_tokens=8)
    assert result["chunks"] >= 1 and result["text"]
    assert 0 < result["ttft_ms"] <= result["total_ms"]


@pytest.mark.parametrize("name, length, key, fragment", [
    ("other-model", 16384, API_KEY, "not listed"),
    ("tiny-loop", 8192, API_KEY, "the plan says 8192"),
    ("tiny-loop", 16384, None, "answered 401"),
])
def test_models_stage_catches_the_wrong_name_length_or_key(server, name, length, key, fragment):
    with pytest.raises(ProbeFailed) as failure:
        check_models(server.base_url, name, length, key)
    assert failure.value.stage == "models" and fragment in failure.value.message


def test_stream_stage_reports_the_servers_refusal(server):
    with pytest.raises(ProbeFailed) as failure:
        stream_chat(server.base_url, "tiny-loop", "wrong-key")
    assert failure.value.stage == "stream" and "401" in failure.value.message


def test_nothing_listening_times_out_with_the_last_error():
    url = "http://127.0.0.1:%d" % free_port()
    with pytest.raises(ProbeFailed) as failure:
        wait_ready(url, 0.5, interval=0.1)
    assert failure.value.stage == "health" and "ConnectionRefusedError" in failure.value.message


def test_a_dead_container_ends_the_wait_early():
    calls = []

    def still_alive():
        calls.append(1)
        raise ProbeFailed("container", "container x is exited (restarts 0, last exit code 2)")

    with pytest.raises(ProbeFailed) as failure:
        wait_ready("http://127.0.0.1:%d" % free_port(), 600, interval=0.1, still_alive=still_alive)
    assert failure.value.stage == "container" and calls == [1]
