"""A replacement that fails its health probe is rolled back, and the report says why.

Runs deploy-models.yml again (as a user would) with one change: an argument
the image's `vllm serve` does not accept. The serve role replaces the
container, the stand-in refuses the flag as the real vLLM does, the probe sees
the container exit, the previous container comes back under its name, the
report names the cause, and the run fails.
"""

import json
import os
import subprocess
import time

import requests

API_KEY = "molecule-test-key"


def labels(host, name):
    return json.loads(host.check_output("docker inspect -f '{{json .Config.Labels}}' %s" % name))


def test_failed_replacement_is_rolled_back_and_reported(host, tmp_path):
    project = os.environ["MOLECULE_PROJECT_DIRECTORY"]
    ephemeral = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
    before = labels(host, "npu-fleet-qwen3-8b-0")
    models = [
        {
            "name": "qwen3-8b",
            "path": project + "/tests/emulator/models/qwen3-8b",
            "host_path": "/models/qwen3-8b",
            "replicas": 1,
            "serve": {"extra_args": ["--no-such-flag"]},
        },
        {"name": "tiny-mtp", "path": ephemeral + "/models/tiny-mtp", "host_path": "/models/tiny-mtp", "replicas": 1},
    ]
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"npu_fleet_models": models, "npu_fleet_report_dir": str(tmp_path / "report"), "health_probe_wait": 120}))
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(ephemeral, "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=os.path.join(project, ".cache", "collections"),
    )
    run = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            os.path.join(ephemeral, "inventory"),
            os.path.join(project, "molecule", "default", "converge.yml"),
            "-e",
            "@" + str(extra),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode != 0, run.stdout[-3000:]
    assert "failed their health probe" in run.stdout + run.stderr

    report = json.loads((tmp_path / "report" / "report.json").read_text())
    rows = dict((row["model"], row) for row in report["rows"])
    assert rows["qwen3-8b"]["status"].startswith("failed at") and rows["qwen3-8b"]["status"].endswith("rolled back")
    assert rows["qwen3-8b"]["diagnosis"]["code"] == "bad_argument"
    assert "--no-such-flag" in rows["qwen3-8b"]["diagnosis"]["evidence"]
    assert rows["tiny-mtp"]["status"] == "healthy"
    assert "Fix:" in (tmp_path / "report" / "report.md").read_text()

    after = labels(host, "npu-fleet-qwen3-8b-0")
    assert after["io.npu-fleet.spec-hash"] == before["io.npu-fleet.spec-hash"]
    assert host.check_output("docker inspect -f '{{.State.Running}}' npu-fleet-qwen3-8b-0") == "true"
    assert host.run("docker inspect npu-fleet-qwen3-8b-0-previous").rc != 0
    port = int(after["io.npu-fleet.port"])
    address = subprocess.check_output(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", host.backend.get_hostname()], text=True
    ).strip()
    for _attempt in range(60):  # the restored container restarts its server
        try:
            if requests.get("http://%s:%d/health" % (address, port), timeout=5).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(2)
    answer = requests.post(
        "http://%s:%d/v1/chat/completions" % (address, port),
        headers={"Authorization": "Bearer " + API_KEY},
        json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "temperature": 0},
        timeout=60,
    )
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"]
