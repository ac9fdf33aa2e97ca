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


@pytest.mark.parametrize(
    "name, length, key, fragment",
    [
        ("other-model", 16384, API_KEY, "not listed"),
        ("tiny-loop", 8192, API_KEY, "the plan says 8192"),
        ("tiny-loop", 16384, None, "answered 401"),
    ],
)
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


def test_the_module_probes_every_replica_of_a_host_at_once(server, tmp_path):
    """npu.fleet.openai_probe with replicas: the live server is healthy, a dead port fails, both named, in order."""
    import json
    import os
    import subprocess
    import sys
    from urllib.parse import urlparse

    from collection_link import link_collection

    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
    port = urlparse(server.base_url).port
    dead = free_port()
    replicas = [
        {"name": "npu-fleet-tiny-loop-0", "model": "tiny-loop", "port": port, "max_model_len": 16384},
        {"name": "npu-fleet-tiny-loop-1", "model": "tiny-loop", "port": dead, "max_model_len": 16384},
    ]
    args = tmp_path / "args.json"
    args.write_text(
        json.dumps(
            {
                "ANSIBLE_MODULE_ARGS": {
                    "replicas": replicas,
                    "api_key": API_KEY,
                    "wait": 1,
                    "interval": 0.2,
                    "max_tokens": 4,
                    "_ansible_tmpdir": str(tmp_path),
                }
            }
        )
    )
    env = dict(os.environ, PYTHONPATH=link_collection(root), PATH="/nonexistent")  # no docker CLI: no container details
    proc = subprocess.run(
        [sys.executable, os.path.join(root, "plugins", "modules", "openai_probe.py"), str(args)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first, second = json.loads(proc.stdout)["replicas"]
    assert (first["name"], first["healthy"], first["stage"], first["port"]) == ("npu-fleet-tiny-loop-0", True, "done", port)
    assert first["ttft_ms"] > 0 and first["models_entry"]["id"] == "tiny-loop" and first["model"] == "tiny-loop"
    assert (second["name"], second["healthy"], second["stage"]) == ("npu-fleet-tiny-loop-1", False, "health")
    assert second["state"]["error"].startswith("no docker CLI") and API_KEY not in proc.stdout
