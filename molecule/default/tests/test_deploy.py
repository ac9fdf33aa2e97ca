"""deploy-models.yml on one emulated 8 x 910B4 host: the containers are exactly what the plan says, both stream.

Reads the plan and the report converge wrote on the controller, inspects the
containers inside the emulated host's own Docker engine, and streams a chat
completion from each replica through its published port, as a client would.
"""

import json
import os
import subprocess

import pytest
import requests

API_KEY = "molecule-test-key"
MANAGER_NODES = {"/dev/davinci_manager", "/dev/devmm_svm", "/dev/hisi_hdc"}
# The emulated host's device nodes are HwHiAiUser:HwHiAiUser (1000) 0660, as the driver makes them
# (tests/emulator/emulator_init.py); the Transformers server image's non-root user (_replica.SERVER_UID).
DEVICE_GID = "1000"
SERVER_UID = "10001"
# serve_cap_add is left at its default: no capability is given back.
PLANNED_CAP_ADD = []


def ephemeral(*parts):
    return os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], *parts)


@pytest.fixture(name="plan", scope="module")
def fixture_plan():
    with open(ephemeral("plan.json"), encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(name="report", scope="module")
def fixture_report():
    with open(ephemeral("report", "report.json"), encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(name="placements", scope="module")
def fixture_placements(plan):
    return dict((item["model"], item) for item in plan["placements"])


def inspect(host, name):
    return json.loads(host.check_output("docker inspect %s" % name))[0]


def host_address(host):
    name = host.backend.get_hostname()
    return subprocess.check_output(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name], text=True
    ).strip()


def test_one_vllm_and_one_transformers_replica_are_planned(placements):
    assert set(placements) == {"qwen3-8b", "tiny-mtp"}
    assert placements["qwen3-8b"]["backend"] == "vllm"
    assert placements["qwen3-8b"]["image"].startswith("quay.io/ascend/vllm-ascend:")
    assert placements["tiny-mtp"]["backend"] == "transformers"


@pytest.mark.parametrize("model", ["qwen3-8b", "tiny-mtp"])
def test_container_has_exactly_the_planned_devices_env_mounts_port_and_labels(host, placements, model):
    placed = placements[model]
    container = inspect(host, "npu-fleet-%s-0" % model)
    host_config = container["HostConfig"]
    devices = {item["PathOnHost"] for item in host_config["Devices"]}
    assert devices == set(placed["devices"]) | MANAGER_NODES
    env = dict(item.split("=", 1) for item in container["Config"]["Env"])
    assert env["ASCEND_RT_VISIBLE_DEVICES"] == ",".join(str(index) for index in range(len(placed["devices"])))
    assert host_config["NetworkMode"] == "bridge"
    bindings = host_config["PortBindings"]["8000/tcp"]
    assert [(item["HostIp"], int(item["HostPort"])) for item in bindings] == [("0.0.0.0", placed["port"])]
    mounts = dict((item["Destination"], item) for item in container["Mounts"])
    for path in (
        "/usr/local/Ascend/driver/lib64",
        "/usr/local/Ascend/driver/version.info",
        "/etc/ascend_install.info",
        "/usr/local/dcmi",
        "/usr/local/bin/npu-smi",
    ):
        assert path in mounts and mounts[path]["RW"] is False, path
    assert mounts["/models/%s" % model]["RW"] is False
    labels = container["Config"]["Labels"]
    assert labels["io.npu-fleet.model"] == model and labels["io.npu-fleet.port"] == str(placed["port"])
    assert labels["io.npu-fleet.devices"] == ",".join(placed["devices"])
    assert container["State"]["Running"] and container["RestartCount"] == 0


def test_vllm_command_line_is_the_plan_and_hides_the_key(host, placements):
    placed = placements["qwen3-8b"]
    container = inspect(host, "npu-fleet-qwen3-8b-0")
    command = container["Config"]["Cmd"]
    assert command[:3] == ["vllm", "serve", "/models/qwen3-8b"]
    flags = dict(zip(command[3::2], command[4::2]))
    assert flags["--max-model-len"] == str(placed["max_model_len"])
    assert flags["--tensor-parallel-size"] == str(placed["tensor_parallel_size"])
    assert flags["--served-model-name"] == "qwen3-8b"
    assert API_KEY not in " ".join(command)
    # The stand-in checked every flag against vLLM's own argument list before serving.
    assert "vllm-standin" in host.check_output("docker logs npu-fleet-qwen3-8b-0 2>&1 | head -n 5")


@pytest.mark.parametrize("model, uid", [("qwen3-8b", "0"), ("tiny-mtp", SERVER_UID)])
def test_replica_runs_without_capabilities_as_its_planned_user_with_the_device_group(host, placements, model, uid):
    name = "npu-fleet-%s-0" % model
    container = inspect(host, name)
    host_config = container["HostConfig"]
    assert host_config["CapDrop"] == ["ALL"]
    assert (host_config["CapAdd"] or []) == PLANNED_CAP_ADD
    assert host_config["GroupAdd"] == [DEVICE_GID] and not host_config["Privileged"]
    # vLLM stays its image's root (without capabilities, the group opens the 0660 nodes); the server runs as its user.
    assert container["Config"]["User"] == ("%s:%s" % (uid, uid) if model == "tiny-mtp" else "")
    assert host.check_output("docker exec %s id -u" % name) == uid
    assert DEVICE_GID in host.check_output("docker exec %s id -G" % name).split()
    status = dict(line.split(":", 1) for line in host.check_output("docker exec %s cat /proc/1/status" % name).splitlines() if ":" in line)
    assert int(status["CapEff"].strip(), 16) == 0 and int(status["CapPrm"].strip(), 16) == 0
    # ... and it still serves.
    url = "http://%s:%d/v1/models" % (host_address(host), placements[model]["port"])
    assert requests.get(url, headers={"Authorization": "Bearer " + API_KEY}, timeout=30).status_code == 200


def test_transformers_image_was_built_on_the_host(host, placements):
    container = inspect(host, "npu-fleet-tiny-mtp-0")
    assert container["Config"]["Image"].startswith("npu-fleet/transformers-server:")
    assert "gunicorn" in " ".join(container["Config"]["Cmd"])


@pytest.mark.parametrize("model", ["qwen3-8b", "tiny-mtp"])
def test_replica_streams_through_its_published_port(host, placements, model):
    url = "http://%s:%d" % (host_address(host), placements[model]["port"])
    unauthenticated = requests.post(url + "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}, timeout=30)
    assert unauthenticated.status_code == 401
    # Greedy: random tiny weights may sample the end-of-sequence token first, which is a whole answer without text.
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 12, "stream": True, "temperature": 0}
    with requests.post(
        url + "/v1/chat/completions", json=body, headers={"Authorization": "Bearer " + API_KEY}, stream=True, timeout=120
    ) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines(decode_unicode=True) if line]
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line[6:]) for line in lines[:-1]]
    assert any(choice["delta"].get("content") for event in events for choice in event["choices"])
    models = requests.get(url + "/v1/models", headers={"Authorization": "Bearer " + API_KEY}, timeout=30).json()["data"]
    assert models[0]["id"] == model and models[0]["max_model_len"] == placements[model]["max_model_len"]


def test_report_matches_the_plan(host, report, plan):
    rows = dict((row["model"], row) for row in report["rows"])
    for model, row in rows.items():
        assert row["image"] == inspect(host, "npu-fleet-%s-0" % model)["Config"]["Image"]
    assert set(rows) == {item["model"] for item in plan["placements"]}
    for item in plan["placements"]:
        row = rows[item["model"]]
        assert (row["host"], row["port"], row["backend"], row["max_model_len"]) == (
            item["host"],
            item["port"],
            item["backend"],
            item["max_model_len"],
        )
        assert row["chips"] == ",".join(device.replace("/dev/davinci", "") for device in item["devices"])
        assert row["status"] == "healthy" and row["ttft_ms"] > 0
    assert report["totals"] == {"replicas": 2, "healthy": 2, "failed": 0, "unhealthy": 0, "unplaced": 0}
    with open(ephemeral("report", "report.md"), encoding="utf-8") as handle:
        markdown = handle.read()
    assert "| qwen3-8b |" in markdown and "| tiny-mtp |" in markdown and "healthy" in markdown


def test_the_key_is_a_root_only_file_and_in_no_container_setting_or_log(host):
    key_file = host.file("/etc/npu-fleet/secrets/api-key")
    assert key_file.mode == 0o400 and key_file.user == "root" and key_file.content_string == API_KEY
    assert host.file("/etc/npu-fleet/secrets").mode == 0o700
    # The non-root server reads its own copy, which only its uid may read, in the same root-only directory.
    server_copy = host.file("/etc/npu-fleet/secrets/api-key.server")
    assert server_copy.mode == 0o400 and server_copy.uid == int(SERVER_UID) and server_copy.content_string == API_KEY
    key_mounts = {
        "npu-fleet-qwen3-8b-0": "/etc/npu-fleet/secrets/api-key:/run/secrets/npu-fleet-api-key:ro",
        "npu-fleet-tiny-mtp-0": "/etc/npu-fleet/secrets/api-key.server:/run/secrets/npu-fleet-api-key:ro",
    }
    for name in host.check_output("docker ps -a --format '{{.Names}}'").split():
        inspected = host.check_output("docker inspect %s" % name)
        assert API_KEY not in inspected, name
        assert API_KEY not in host.check_output("docker logs %s 2>&1 | tail -n 200" % name), name
        if name.startswith("npu-fleet-") and name != "npu-fleet-gateway":
            container = json.loads(inspected)[0]
            assert "no-new-privileges" in container["HostConfig"]["SecurityOpt"]
            assert key_mounts[name] in container["HostConfig"]["Binds"], name
    # ... and the replicas still require it (the entrypoint handed it to vLLM, the server read its file).
    address = host_address(host)
    for port in (
        json.loads(host.check_output("docker inspect npu-fleet-%s-0" % model))[0]["Config"]["Labels"]["io.npu-fleet.port"]
        for model in ("qwen3-8b", "tiny-mtp")
    ):
        assert requests.get("http://%s:%s/v1/models" % (address, port), timeout=10).status_code == 401
        answer = requests.get("http://%s:%s/v1/models" % (address, port), headers={"Authorization": "Bearer " + API_KEY}, timeout=10)
        assert answer.status_code == 200
