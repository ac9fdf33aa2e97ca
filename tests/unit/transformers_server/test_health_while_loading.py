"""Before the model is loaded, /health and the generation routes answer 503 (in-process Flask client)."""

from __future__ import annotations

from npu_fleet_server.app import Server
from npu_fleet_server.engine import Engine
from npu_fleet_server.settings import from_env


def test_not_ready_until_loaded(tmp_path):
    settings = from_env({"NPU_SERVE_MODEL": str(tmp_path)})
    engine = Engine(settings)
    client = Server(settings, engine).app.test_client()
    health = client.get("/health")
    assert health.status_code == 503 and health.get_json() == {"status": "loading"}
    chat = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})
    assert chat.status_code == 503 and chat.headers["Retry-After"] == "5"
    assert client.get("/v1/models").status_code == 503
    engine.state, engine.error = "failed", "OSError: no config.json"
    failed = client.get("/health")
    assert failed.status_code == 503 and failed.get_json()["error"] == "OSError: no config.json"
