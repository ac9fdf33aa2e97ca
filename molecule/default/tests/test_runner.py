"""The plan and status playbooks under ansible-runner, the engine AWX runs jobs with.

A private data dir laid out as AWX lays one out for a job (project, inventory,
extra vars from survey answers - strings for choice questions -, environment),
run with the real `ansible-runner run`; the test reads what AWX would read:
the artifacts' status and rc, the set_stats data of the stats event, and the
report the run wrote under the job's artifacts (no npu_fleet_report_dir given).
Runs before test_status_undeploy.py (pytest orders the files), on the deployed host.
"""

import glob
import json
import os
import shutil
import subprocess
import sys

import yaml

RUNNER = os.path.join(os.path.dirname(sys.executable), "ansible-runner")


def private_data_dir(tmp_path):
    project = os.environ["MOLECULE_PROJECT_DIRECTORY"]
    ephemeral = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
    root = tmp_path / "job"
    (root / "env").mkdir(parents=True)
    os.symlink(project, root / "project")
    shutil.copytree(os.path.join(ephemeral, "inventory"), root / "inventory")
    # The scenario's inventory names the report directory; an AWX inventory does not.
    for path in glob.glob(str(root / "inventory" / "**" / "*"), recursive=True):
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                data = yaml.safe_load(handle)
            with open(path, "w", encoding="utf-8") as handle:
                yaml.safe_dump(_without(data, ("npu_fleet_report_dir", "fleet_plan_output")), handle)
    # Survey answers as AWX passes them: multiple-choice booleans are strings, integers are numbers.
    (root / "env" / "extravars").write_text(yaml.safe_dump({"preflight_strict": "true", "npu_fleet_status_slow_ttft_ms": 5000}))
    (root / "env" / "envvars").write_text(
        yaml.safe_dump(
            {
                "ANSIBLE_CONFIG": os.path.join(ephemeral, "ansible.cfg"),
                "ANSIBLE_COLLECTIONS_PATH": os.path.join(project, ".cache", "collections"),
            }
        )
    )
    return root


def _without(data, keys):
    if isinstance(data, dict):
        return dict((key, _without(value, keys)) for key, value in data.items() if key not in keys)
    if isinstance(data, list):
        return [_without(item, keys) for item in data]
    return data


def run_job(root, playbook, ident):
    # As AWX launches a job: no PWD of a caller's shell.
    env = dict(os.environ)
    env.pop("PWD", None)
    proc = subprocess.run(
        [RUNNER, "run", str(root), "-p", playbook, "--ident", ident],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    artifacts = root / "artifacts" / ident
    events = []
    for path in sorted(glob.glob(str(artifacts / "job_events" / "*.json"))):
        with open(path, encoding="utf-8") as handle:
            events.append(json.load(handle))
    stats = [event for event in events if event.get("event") == "playbook_on_stats"]
    return proc, artifacts, (stats[-1]["event_data"].get("artifact_data") or {}) if stats else {}


def test_plan_and_status_run_under_ansible_runner_and_publish_their_stats(tmp_path):
    root = private_data_dir(tmp_path)

    proc, artifacts, stats = run_job(root, "plan-models.yml", "plan")
    assert (artifacts / "status").read_text() == "successful", (artifacts / "stdout").read_text()[-3000:]
    assert (artifacts / "rc").read_text() == "0"
    assert sorted(placement["model"] for placement in stats["npu_fleet_plan"]["placements"]) == ["qwen3-8b", "tiny-mtp"]

    proc, artifacts, stats = run_job(root, "fleet-status.yml", "status")
    assert (artifacts / "status").read_text() == "successful", (artifacts / "stdout").read_text()[-3000:]
    assert (artifacts / "rc").read_text() == "0"
    published = stats["npu_fleet_report"]
    assert published["kind"] == "status" and published["totals"]["statuses"]["healthy"] == 2
    assert sorted((row["model"], row["status"]) for row in published["replicas"]) == [("qwen3-8b", "healthy"), ("tiny-mtp", "healthy")]
    # The report went under the job's artifacts, where AWX users look - not into the caller's directory.
    assert published["report_dir"] == str(artifacts / "npu-fleet-report" / "status")
    report = json.loads((artifacts / "npu-fleet-report" / "status" / "report.json").read_text())
    assert report["kind"] == "status" and len(report["rows"]) == 2
    assert not os.path.exists("/npu-fleet-report")
    del proc
