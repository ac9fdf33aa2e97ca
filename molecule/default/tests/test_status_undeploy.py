"""The day-2 playbooks on the deployed host: fleet-status.yml judges and changes nothing, undeploy-models.yml
removes exactly the models asked for.

Runs the root playbooks as a user would, with the scenario's inventory (qwen3-8b on the vLLM stand-in,
tiny-mtp on the Transformers fallback, a gateway). Runs after test_rollback.py (pytest orders the files).
"""

import json
import os
import re
import subprocess
import time

STRANGER = "npu-fleet-qwen3-8b-9"


def playbook(tmp_path, name, label, *args, **variables):
    project = os.environ["MOLECULE_PROJECT_DIRECTORY"]
    ephemeral = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
    variables.setdefault("npu_fleet_report_dir", str(tmp_path / label))
    extra = tmp_path / ("%s.json" % label)
    extra.write_text(json.dumps(variables))
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(ephemeral, "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=os.path.join(project, ".cache", "collections"),
    )
    started = time.monotonic()
    run = subprocess.run(
        ["ansible-playbook", "-i", os.path.join(ephemeral, "inventory"), os.path.join(project, name), "-e", "@" + str(extra), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    run.seconds = time.monotonic() - started
    run.flat = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", run.stdout + run.stderr).split())
    return run


def status_report(tmp_path, label):
    with open(tmp_path / label / "status" / "report.json", encoding="utf-8") as handle:
        return json.load(handle)


def containers(host):
    """name -> (id, start time) of every container on the emulated host."""
    found = {}
    for line in host.check_output("docker ps -aq | xargs -r docker inspect -f '{{.Name}} {{.Id}} {{.State.StartedAt}}'").splitlines():
        name, ident, started = line.split()
        found[name.lstrip("/")] = (ident, started)
    return found


def catalogue(**changes):
    """The scenario's catalogue with changes to qwen3-8b."""
    project = os.environ["MOLECULE_PROJECT_DIRECTORY"]
    ephemeral = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
    qwen = {"name": "qwen3-8b", "path": project + "/tests/emulator/models/qwen3-8b", "host_path": "/models/qwen3-8b", "replicas": 1}
    qwen.update(changes)
    return [qwen, {"name": "tiny-mtp", "path": ephemeral + "/models/tiny-mtp", "host_path": "/models/tiny-mtp", "replicas": 1}]


def test_status_of_the_deployed_fleet_is_healthy_and_changes_nothing(host, tmp_path):
    before = containers(host)
    run = playbook(tmp_path, "fleet-status.yml", "healthy")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    report = status_report(tmp_path, "healthy")
    assert report["kind"] == "status"
    assert sorted((row["model"], row["status"]) for row in report["rows"]) == [("qwen3-8b", "healthy"), ("tiny-mtp", "healthy")]
    assert all(row["ttft_ms"] for row in report["rows"])
    assert report["totals"]["statuses"]["healthy"] == 2 and report["totals"]["unhealthy"] == 0
    assert "# npu.fleet status report" in (tmp_path / "healthy" / "status" / "report.md").read_text()
    assert containers(host) == before
    print("fleet-status.yml on one host: %.1f s" % run.seconds)


def test_status_names_drift_and_missing_replicas_and_fails(host, tmp_path):
    before = containers(host)
    run = playbook(tmp_path, "fleet-status.yml", "drift", npu_fleet_models=catalogue(replicas=2, spread=False, max_model_len=4096))
    assert run.returncode != 0
    rows = dict(((row["model"], row["replica"]), row) for row in status_report(tmp_path, "drift")["rows"])
    assert rows[("qwen3-8b", 0)]["status"] == "drifted"
    assert "max_model_len" in rows[("qwen3-8b", 0)]["message"] and "catalogue 4096" in rows[("qwen3-8b", 0)]["message"]
    assert rows[("qwen3-8b", 1)]["status"] == "missing"
    assert rows[("tiny-mtp", 0)]["status"] == "healthy"
    assert "2 replica(s) not healthy: qwen3-8b/0 on molecule-deploy-a2 (drifted), qwen3-8b/1 on molecule-deploy-a2 (missing)" in run.flat
    assert containers(host) == before


def test_undeploy_removes_only_the_named_model_and_never_a_stranger(host, tmp_path):
    image = host.check_output("docker inspect -f '{{.Config.Image}}' npu-fleet-qwen3-8b-0")
    # Named like ours and labelled with our model, but not started by npu.fleet (no managed label).
    host.check_output("docker run -d --name %s --label io.npu-fleet.model=qwen3-8b --entrypoint sleep %s 600" % (STRANGER, image))
    before = containers(host)

    check = playbook(tmp_path, "undeploy-models.yml", "check", "--check", npu_fleet_undeploy_models=["qwen3-8b"])
    assert check.returncode == 0, check.stdout[-3000:]
    assert "Would remove 1 container(s) of qwen3-8b" in check.flat
    assert containers(host) == before

    typo = playbook(tmp_path, "undeploy-models.yml", "typo", undeploy_models=["qwen3-8bb"])
    assert typo.returncode != 0
    assert "qwen3-8bb: no npu.fleet container of this model on any host of npu_hosts" in typo.flat
    assert containers(host) == before

    neither = playbook(tmp_path, "undeploy-models.yml", "neither")
    assert neither.returncode != 0 and "nothing to undeploy: give the models" in neither.flat

    run = playbook(tmp_path, "undeploy-models.yml", "qwen", "-e", "undeploy_models=qwen3-8b")
    assert run.returncode == 0, run.stdout[-3000:]
    after = containers(host)
    assert "npu-fleet-qwen3-8b-0" not in after
    assert after[STRANGER] == before[STRANGER] and after["npu-fleet-tiny-mtp-0"] == before["npu-fleet-tiny-mtp-0"]
    assert after["npu-fleet-gateway"] == before["npu-fleet-gateway"]
    summary = json.loads((tmp_path / "qwen" / "undeploy.json").read_text())
    assert summary == {
        "removed": {"molecule-deploy-a2": ["npu-fleet-qwen3-8b-0"]},
        "containers": 1,
        "models": ["qwen3-8b"],
        "not_found": [],
    }

    # The catalogue still lists it: the status says so.
    status = playbook(tmp_path, "fleet-status.yml", "after")
    assert status.returncode != 0
    rows = dict((row["model"], row["status"]) for row in status_report(tmp_path, "after")["rows"])
    assert rows == {"qwen3-8b": "missing", "tiny-mtp": "healthy"}
    host.check_output("docker rm -f %s" % STRANGER)
