"""The entry playbooks as a user runs them: the catalogue is checked first, and every tag subset works or says what to run.

Real ``ansible-playbook`` runs over a local inventory (no NPU, no Docker): the
catalogue task fails before anything touches a host, ``--tags plan`` and
``--tags serve`` select the stages they name, and a run that skipped the plan
stops with one line instead of ``'plan_models_result' is undefined``.
"""

import os

from conftest import REPO_ROOT
from playbook_runner import local_inventory, run_playbook


def run(tmp_path, extra, *args):
    return run_playbook(tmp_path, os.path.join(REPO_ROOT, "deploy-models.yml"), local_inventory(["n1"]), extra, args)


def tasks(tmp_path, *args):
    proc = run(tmp_path, {}, "--list-tasks", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_tags_plan_plans_only_and_tags_serve_plans_then_serves(tmp_path):
    plan_only = tasks(tmp_path, "--tags", "plan")
    assert "Validate the catalogue and profile on the controller the models it holds" in plan_only
    assert "Plan every replica over hosts, chips and ports" in plan_only
    assert "Start the new replicas" not in plan_only and "Probe every replica" not in plan_only
    assert "Verify each model directory on this host" not in plan_only
    assert "Run the gateway of this host" not in plan_only
    serve = tasks(tmp_path, "--tags", "serve")
    order = [
        serve.index(name)
        for name in (
            "Validate the catalogue",
            "Discover the NPUs and the Ascend stack",
            "Plan every replica",
            "Verify each model directory on this host",
            "Start the new replicas and the stopped ones",
            "Roll the replacements, one wave at a time",
            "Probe every replica of this host at once",
            "Run the gateway of this host",
            "Build, render and write the report",
        )
    ]
    assert order == sorted(order)


def test_a_run_that_skipped_the_plan_stops_with_one_line_saying_what_to_run(tmp_path):
    proc = run(tmp_path, {"npu_fleet_models": [{"name": "m", "path": "/m"}]}, "--skip-tags", "plan")
    assert proc.returncode != 0
    assert "n1: no plan in this run; serving needs it: run without --tags/--skip-tags" in proc.stdout
    assert "is undefined" not in proc.stdout


def test_a_bad_catalogue_stops_the_run_before_any_host_is_touched(tmp_path):
    proc = run(tmp_path, {"npu_fleet_models": [{"name": "qwen3-8b", "path": "/m", "replica": 2}]})
    assert proc.returncode != 0
    assert "npu_fleet_models[0] (qwen3-8b): unknown field(s) replica (did you mean replicas?); allowed:" in proc.stdout
    assert "Discover the NPUs" not in proc.stdout  # the play ended at the catalogue task
    proc = run(tmp_path, {})
    assert "npu_fleet_models is not set" in proc.stdout and proc.returncode != 0


def listed(tmp_path, playbook, *args):
    proc = run_playbook(tmp_path, os.path.join(REPO_ROOT, playbook), local_inventory(["n1"]), {}, ("--list-tasks",) + args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_fleet_status_plans_then_judges_then_reports_and_starts_nothing(tmp_path):
    status = listed(tmp_path, "fleet-status.yml")
    order = [
        status.index(name)
        for name in (
            "Validate the catalogue",
            "Discover the NPUs and the Ascend stack",
            "Plan every replica",
            "Time a one-token generation on every running replica",
            "Judge every replica of this host",
            "Build, render and write the report",
        )
    ]
    assert order == sorted(order)
    for change in ("Start the new replicas", "Roll the replacements", "Run the gateway of this host", "Remove npu.fleet containers"):
        assert change not in status


def test_undeploy_drains_before_it_removes(tmp_path):
    undeploy = listed(tmp_path, "undeploy-models.yml")
    order = [
        undeploy.index(name) for name in ("Select the containers", "Drain them at every gateway", "Remove their containers", "Report what")
    ]
    assert order == sorted(order)


def test_an_inventory_without_npu_hosts_fails_with_the_fix(tmp_path):
    for playbook in ("deploy-models.yml", "plan-models.yml", "fleet-status.yml"):
        inventory = {"all": {"hosts": {"localhost": local_inventory([])["all"]["hosts"]["localhost"]}}}
        proc = run_playbook(tmp_path, os.path.join(REPO_ROOT, playbook), inventory, {"npu_fleet_models": [{"name": "m", "path": "/m"}]})
        assert proc.returncode != 0, playbook
        assert "the inventory has no host in the group npu_hosts: put the Ascend NPU servers in a group named npu_hosts" in proc.stdout
