"""Request validation, settings from the environment, admission and metrics: pure Python."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from npu_fleet_server import protocol
from npu_fleet_server.admission import Admission, Overloaded
from npu_fleet_server.metrics import Metrics
from npu_fleet_server.protocol import CHAT, COMPLETION, RequestError
from npu_fleet_server.settings import SettingsError, from_env


def chat(**extra):
    body = {"messages": [{"role": "user", "content": "hi"}]}
    body.update(extra)
    return protocol.parse(body, CHAT, "m")


def test_chat_defaults_and_content_parts():
    parsed = protocol.parse(
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}, CHAT, "m"
    )
    assert parsed.messages == [{"role": "user", "content": "ab"}]
    assert (parsed.stream, parsed.max_tokens, parsed.temperature, parsed.stop) == (False, None, None, [])


def test_max_completion_tokens_wins_for_chat_and_stop_becomes_a_list():
    parsed = chat(max_tokens=5, max_completion_tokens=7, stop="###", stream=True, stream_options={"include_usage": True})
    assert (parsed.max_tokens, parsed.stop, parsed.stream, parsed.include_usage) == (7, ["###"], True, True)


def test_completion_prompt_forms():
    assert protocol.parse({"prompt": ["one"]}, COMPLETION, "m").prompt == "one"
    assert protocol.parse({"prompt": [1, 2, 3]}, COMPLETION, "m").prompt == [1, 2, 3]
    for bad in ("", [], ["a", "b"], [1, -1], None, 5):
        with pytest.raises(RequestError) as error:
            protocol.parse({"prompt": bad}, COMPLETION, "m")
        assert error.value.param == "prompt"


@pytest.mark.parametrize(
    "extra, param",
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": "0"}, "temperature"),
        ({"top_p": 1.1}, "top_p"),
        ({"seed": "1"}, "seed"),
        ({"stop": ["a", 1]}, "stop"),
        ({"stop": ["x"] * 17}, "stop"),
        ({"repetition_penalty": 0}, "repetition_penalty"),
        ({"stream_options": []}, "stream_options"),
        ({"top_k": -2}, "top_k"),
    ],
)
def test_wrong_values_name_the_parameter(extra, param):
    with pytest.raises(RequestError) as error:
        chat(**extra)
    assert error.value.status == 400 and error.value.param == param
    assert error.value.body()["error"]["type"] == "invalid_request_error"


def test_unknown_model_is_a_404():
    with pytest.raises(RequestError) as error:
        chat(model="other")
    assert error.value.status == 404 and "`m`" in error.value.message


def test_response_shapes():
    body = protocol.response(CHAT, "id1", "m", "text", "repetition", "repeated_block", 3, 4, created=1)
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "text"}
    assert body["choices"][0]["finish_reason"] == "repetition" and body["choices"][0]["stop_reason"] == "repeated_block"
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert protocol.chunk(COMPLETION, "id2", "m", 1, text="x")["choices"][0]["text"] == "x"


def env_for(tmp_path, **values):
    env = {"NPU_SERVE_MODEL": str(tmp_path)}
    env.update({"NPU_SERVE_" + key: value for key, value in values.items()})
    return env


def test_settings_defaults(tmp_path):
    settings = from_env(env_for(tmp_path))
    assert settings.served_model_name == tmp_path.name
    assert (settings.threads, settings.timeout, settings.max_repeated_chunks, settings.repeat_block_count) == (4, 600, 10, 3)
    assert settings.repetition_penalty is None and settings.api_key is None


def test_api_key_from_a_file_and_never_in_repr(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("s3cret\n")
    settings = from_env(env_for(tmp_path, API_KEY_FILE=str(key_file)))
    assert settings.api_key == "s3cret" and "s3cret" not in repr(settings)
    with pytest.raises(SettingsError, match="only one"):
        from_env(env_for(tmp_path, API_KEY_FILE=str(key_file), API_KEY="x"))


@pytest.mark.parametrize(
    "values, fragment",
    [
        ({"THREADS": "3"}, "NPU_SERVE_THREADS=3 is too few"),
        ({"THREADS": "four"}, "NPU_SERVE_THREADS='four'"),
        ({"DEVICE": "tpu"}, "NPU_SERVE_DEVICE='tpu'"),
        ({"TRUST_REMOTE_CODE": "maybe"}, "true or false"),
        ({"REPEAT_BLOCK_COUNT": "1"}, "NPU_SERVE_REPEAT_BLOCK_COUNT=1"),
        ({"REPEAT_BLOCK_MIN_TOKENS": "300"}, "NPU_SERVE_REPEAT_BLOCK_MAX_TOKENS=256"),
        ({"REPETITION_PENALTY": "0"}, "NPU_SERVE_REPETITION_PENALTY"),
    ],
)
def test_bad_settings_name_the_variable(tmp_path, values, fragment):
    with pytest.raises(SettingsError) as error:
        from_env(env_for(tmp_path, **values))
    assert fragment in str(error.value)


def test_missing_model_directory(tmp_path):
    with pytest.raises(SettingsError, match="NPU_SERVE_MODEL is not set"):
        from_env({})
    with pytest.raises(SettingsError, match="is not a directory"):
        from_env({"NPU_SERVE_MODEL": str(tmp_path / "absent")})


def deny(monkeypatch, *denied):
    """The server's view without capabilities: os.access refuses these paths (the tests may run as root, which reads all)."""
    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kwargs: str(path) not in denied and real(path, mode, **kwargs))


def test_a_model_directory_the_server_cannot_read_is_told_at_start(tmp_path, monkeypatch):
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "config.json").chmod(0o600)
    deny(monkeypatch, str(tmp_path / "config.json"))
    with pytest.raises(SettingsError) as error:
        from_env(env_for(tmp_path))
    message = str(error.value)
    assert "%s cannot be read by this server (uid %d" % (tmp_path / "config.json", os.getuid()) in message
    assert "chmod -R a+rX" in message and "model.safetensors" not in message
    deny(monkeypatch, str(tmp_path))
    with pytest.raises(SettingsError, match="NPU_SERVE_MODEL=%s: %s cannot be read" % (tmp_path, tmp_path)):
        from_env(env_for(tmp_path))


def test_a_key_file_the_server_cannot_read_names_its_uid(tmp_path):
    with pytest.raises(SettingsError) as error:
        from_env(env_for(tmp_path, API_KEY_FILE=str(tmp_path / "absent-key")))
    assert "cannot be read by uid %d" % os.getuid() in str(error.value) and "copy owned by the user" in str(error.value)


def test_admission_queues_then_refuses():
    admission = Admission(slots=1, queue=1, queue_timeout=5)
    admission.acquire()
    admitted = threading.Event()

    def waiter():
        admission.acquire()
        admitted.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    deadline = time.monotonic() + 5
    while admission.waiting != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(Overloaded) as refused:
        admission.acquire()
    assert refused.value.retry_after >= 1
    admission.release(2.0)
    thread.join(5)
    assert admitted.is_set() and admission.active == 1 and admission.waiting == 0


def test_admission_queue_timeout():
    admission = Admission(slots=1, queue=1, queue_timeout=0.05)
    admission.acquire()
    with pytest.raises(Overloaded, match="within"):
        admission.acquire()
    assert admission.waiting == 0


def test_metrics_render_counters_labels_and_histograms():
    metrics = Metrics()
    metrics.inc("requests_total", endpoint="/v1/completions", status="200")
    metrics.inc("guard_stops_total", layer="repeated_block")
    metrics.observe("time_to_first_token_seconds", 0.02)
    metrics.observe("time_to_first_token_seconds", 3.0)
    text = metrics.render()
    assert 'npu_serve_requests_total{endpoint="/v1/completions",status="200"} 1' in text
    assert 'npu_serve_guard_stops_total{layer="repeated_block"} 1' in text
    assert 'npu_serve_time_to_first_token_seconds_bucket{le="0.025"} 1' in text
    assert 'npu_serve_time_to_first_token_seconds_bucket{le="5.0"} 2' in text
    assert "npu_serve_time_to_first_token_seconds_count 2" in text
    assert "npu_serve_cancelled_total 0" in text


@pytest.mark.parametrize("kind", [CHAT, COMPLETION])
@pytest.mark.parametrize("text", ["plain", 'quotes " and \\ back', "\u65e5\u672c \U0001f600", "new\nline", ""])
def test_fast_text_chunks_are_the_same_bytes_as_full_rendering(kind, text):
    fast = protocol.text_chunk_formatter(kind, "id-1", "model-a", 1700000000.5)
    full = "data: %s\n\n" % json.dumps(protocol.chunk(kind, "id-1", "model-a", 1700000000.5, text=text), ensure_ascii=False)
    assert fast(text) == full


def test_sampling_defaults_follow_the_models_generation_config():
    from npu_fleet_server.settings import sampling_defaults  # pylint: disable=import-outside-toplevel

    sampling_model = {"do_sample": True, "temperature": 0.6, "top_p": 0.95, "top_k": 20, "eos_token_id": [151645, 151643]}
    assert sampling_defaults(sampling_model, None) == {"temperature": 0.6, "top_p": 0.95, "top_k": 20, "repetition_penalty": 1.2}
    assert sampling_defaults({"repetition_penalty": 1.0}, None)["repetition_penalty"] == 1.0
    assert sampling_defaults({"repetition_penalty": 1.05, "temperature": 0.3}, None) == {
        "temperature": 1.0,
        "top_p": 1.0,
        "top_k": 0,
        "repetition_penalty": 1.05,
    }
    assert sampling_defaults({"repetition_penalty": 1.05}, 1.3)["repetition_penalty"] == 1.3
    assert sampling_defaults({}, None)["repetition_penalty"] == 1.2
