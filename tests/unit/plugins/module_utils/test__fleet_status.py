"""fleet_status's judgement on a real plan, real container specs and real probe failures.

The plan and specs come from the planner and the replica contract over the
emulated 8 x 910B4 host's npu facts; the containers are what
docker_host_info lists for those specs; the hung replica is a real HTTP server
whose /health answers while its generation never does, probed by the real
stream_chat with a deadline.
"""

import http.server
import threading

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan import plan
from ansible_collections.npu.fleet.plugins.module_utils._fleet_status import (
    STATUSES,
    replica_statuses,
    status_targets,
    status_totals,
)
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import profile_model
from ansible_collections.npu.fleet.plugins.module_utils._openai_probe import ProbeFailed, stream_chat
from ansible_collections.npu.fleet.plugins.module_utils._replica import LABEL_PREFIX, previous_name, replica_changes, replica_specs
from emulated_host import emulated_host, profile_named, run
from model_checkpoints import fixture_dir

IMAGE = "quay.io/ascend/vllm-ascend:v0.13.0"


@pytest.fixture()
def host(tmp_path, monkeypatch, capsys):
    """npu facts of the emulated 8 x 910B4 host, a plan of two models on it and their container specs."""
    facts = run(capsys, emulated_host(tmp_path, monkeypatch, profile_named("a2-910b4-8x32g")))["ansible_facts"]["npu"]
    profile = profile_model(fixture_dir("Qwen__Qwen3-8B"))
    models = [
        {"name": "qwen3-8b", "path": "/m/qwen3-8b", "profile": profile, "replicas": 2, "spread": False, "image": IMAGE, "backend": "vllm"},
        {"name": "qwen3-8b-long", "path": "/m/qwen3-8b", "profile": profile, "replicas": 1, "image": IMAGE, "backend": "vllm"},
    ]
    placed = plan({"a2": {"chips": facts["chips"]}}, models)
    assert not placed["unplaced"]
    specs = replica_specs(
        placed["placements"], "a2", models, facts["driver_mounts"], {"api_key": "k", "api_key_file": "/etc/npu-fleet/secrets/api-key"}
    )
    return facts, models, specs


def container(spec, state="running", status="Up 2 hours", image=None, **labels):
    """A container as docker_host_info(verbose_output=true) lists it."""
    merged = dict(spec["labels"])
    merged.update((LABEL_PREFIX + key.replace("_", "-"), value) for key, value in labels.items())
    return {"Names": ["/" + spec["name"]], "Labels": merged, "State": state, "Status": status, "Image": image or spec["image"]}


def healthy_probe(spec, ttft_ms=80.0):
    return {"name": spec["name"], "model": spec["labels"][LABEL_PREFIX + "model"], "healthy": True, "stage": "done", "ttft_ms": ttft_ms}


def judge(specs, containers, probes, chips=(), slow_ttft_ms=0):
    changes = replica_changes(specs, containers, sorted(set(spec["labels"][LABEL_PREFIX + "model"] for spec in specs)), prune=True)
    return dict(
        (record["name"], record) for record in replica_statuses("a2", specs, changes, containers, probes, list(chips), slow_ttft_ms)
    )


def test_a_fleet_that_runs_its_catalogue_is_healthy_and_every_status_is_counted(host):
    facts, unused, specs = host
    records = judge(specs, [container(spec) for spec in specs], [healthy_probe(spec) for spec in specs], facts["chips"])
    assert sorted(records) == sorted(spec["name"] for spec in specs)
    assert all(record["status"] == "healthy" and record["healthy"] and record["conditions"] == [] for record in records.values())
    totals = status_totals(records.values())
    assert totals["healthy"] == 3 and sum(totals.values()) == 3 and list(totals) == list(STATUSES)


def test_missing_crashed_slow_and_drifted_are_named_with_the_reason(host):
    facts, unused, specs = host
    missing, crashed, slow = specs
    drifted_long = container(slow, max_model_len="4096", spec_hash="0000")
    containers = [container(crashed, state="restarting", status="Restarting (1) 3 seconds ago"), drifted_long]
    probes = [healthy_probe(slow, ttft_ms=9000.0)]
    records = judge(specs, containers, probes, facts["chips"], slow_ttft_ms=2000)
    assert records[missing["name"]]["status"] == "missing"
    assert "no container %s" % missing["name"] in records[missing["name"]]["message"]
    assert records[crashed["name"]]["status"] == "crashed"
    assert "Restarting (1)" in records[crashed["name"]]["message"]
    # Slow and drifted: the worse one names it, both are kept.
    record = records[slow["name"]]
    assert record["status"] == "drifted" and not record["healthy"]
    assert [condition["status"] for condition in record["conditions"]] == ["slow", "drifted"]
    assert "max_model_len 4096, catalogue %s" % slow["labels"][LABEL_PREFIX + "max-model-len"] in record["message"]
    assert "first token after 9000 ms (threshold 2000 ms)" in record["conditions"][0]["reason"]


def test_another_image_or_api_key_is_drift(host):
    facts, unused, specs = host
    first = specs[0]
    old_image = container(first, image="quay.io/ascend/vllm-ascend:v0.11.0")
    old_image["Labels"][LABEL_PREFIX + "spec-hash"] = "0000"
    rekeyed = container(specs[1], auth_digest="pbkdf2-other")
    records = judge(specs, [old_image, rekeyed, container(specs[2])], [healthy_probe(spec) for spec in specs], facts["chips"])
    assert records[first["name"]]["status"] == "drifted"
    assert "image quay.io/ascend/vllm-ascend:v0.11.0, catalogue %s" % IMAGE in records[first["name"]]["message"]
    assert records[specs[1]["name"]]["message"] == "runs another API key"
    assert records[specs[2]["name"]]["status"] == "healthy"


def test_a_chip_in_alarm_under_a_replica_is_reported_and_only_that_replica(host):
    facts, unused, specs = host
    alarmed_device = specs[1]["labels"][LABEL_PREFIX + "devices"].split(",")[0]
    chips = [dict(chip, health="Alarm") if chip["device"] == alarmed_device else chip for chip in facts["chips"]]
    records = judge(specs, [container(spec) for spec in specs], [healthy_probe(spec) for spec in specs], chips)
    assert records[specs[1]["name"]]["status"] == "chip_alarm"
    assert records[specs[1]["name"]]["message"] == "chip %s (Alarm) not healthy in npu-smi" % alarmed_device
    assert [record["status"] for name, record in sorted(records.items()) if name != specs[1]["name"]] == ["healthy", "healthy"]


def test_a_container_outside_the_plan_is_drifted_and_previous_copies_are_ignored(host):
    facts, unused, specs = host
    stray = dict(specs[0], name="npu-fleet-old-model-0")
    stray["labels"] = dict(specs[0]["labels"], **{LABEL_PREFIX + "model": "old-model"})
    kept = container(specs[0])
    previous = dict(kept, Names=["/" + previous_name(specs[0]["name"])])
    containers = [container(spec) for spec in specs] + [container(stray), previous]
    records = judge(specs, containers, [healthy_probe(spec) for spec in specs], facts["chips"])
    assert records["npu-fleet-old-model-0"]["status"] == "drifted" and records["npu-fleet-old-model-0"]["unplanned"]
    assert previous_name(specs[0]["name"]) not in records
    # Only running replicas are probed, each where its labels say it serves; -previous copies never.
    targets = status_targets(containers + [container(specs[1], state="exited")])
    assert previous_name(specs[0]["name"]) not in [target["name"] for target in targets]
    assert [target["port"] for target in targets if target["name"] == specs[0]["name"]] == [int(specs[0]["labels"][LABEL_PREFIX + "port"])]


class _HangingServer(http.server.BaseHTTPRequestHandler):
    """/health answers; a chat completion sends its headers and then nothing (a hung engine)."""

    release = threading.Event()

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.flush()
        self.release.wait(10)

    def log_message(self, *args):
        del args


def test_a_generation_that_never_finishes_is_hung_not_crashed(host):
    facts, unused, specs = host
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HangingServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(ProbeFailed) as failure:
            stream_chat("http://127.0.0.1:%d" % server.server_address[1], "qwen3-8b", max_tokens=1, timeout=0.5)
    finally:
        _HangingServer.release.set()
        server.shutdown()
    probe = {"name": specs[0]["name"], "healthy": False, "stage": failure.value.stage, "message": failure.value.message}
    records = judge(specs, [container(spec) for spec in specs], [probe] + [healthy_probe(spec) for spec in specs[1:]], facts["chips"])
    assert records[specs[0]["name"]]["status"] == "hung"
    assert records[specs[0]["name"]]["message"].startswith("/health answers but a one-token generation did not finish")
    # An error answer is not a hang; no /health at all while the container runs is.
    error = dict(probe, message="POST /v1/chat/completions answered 500: boom")
    silent = dict(probe, stage="health", message="/health did not answer 200 within 5 s")
    assert judge(specs, [container(spec) for spec in specs], [error], facts["chips"])[specs[0]["name"]]["status"] == "error"
    assert judge(specs, [container(spec) for spec in specs], [silent], facts["chips"])[specs[0]["name"]]["status"] == "hung"
