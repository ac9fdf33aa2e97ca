"""Tests of the npu.fleet.fleet_report action plugin and the npu.fleet.report role.

Reading hostvars is tested directly on plain dicts shaped like hostvars; then
the plugin and the role run for real with ansible-playbook on localhost, over
inventory hosts whose ``plan_models_result``, ``npu_fleet_catalogue`` and
``health_probe_results`` are set as deploy_models sets them, through the
Report play that deploy_models runs (REPORT_PLAY).
"""

import json
import os
import subprocess
import sys

import jinja2

from ansible_collections.npu.fleet.plugins.action import fleet_report as action
from ansible_collections.npu.fleet.plugins.module_utils._failure_signatures import diagnose
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import profile_model
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan import plan
from conftest import REPO_ROOT
from model_checkpoints import fixture_dir
from playbook_runner import COLLECTIONS_PATH, local_inventory, run_playbook

ARCH_LINE = (
    "ValueError: Model architectures ['GlmOcrForConditionalGeneration'] are not supported for now. Supported architectures: dict_keys"
)


def chips(count):
    return [
        {
            "npu_id": i,
            "chip_id": 0,
            "logic_id": i,
            "phy_id": i,
            "device": "/dev/davinci%d" % i,
            "name": "910B4",
            "health": "OK",
            "memory_total_mb": 32768,
            "memory_used_mb": 0,
            "processes": [],
        }
        for i in range(count)
    ]


# --------------------------------------------------------------------------- reading hostvars


def test_read_hostvars_keeps_only_what_the_report_reads():
    hostvars = {
        "n1": {
            "ansible_host": "10.0.0.11",
            "serve_bind_address": "0.0.0.0",
            "serve_api_key": "secret",
            "health_probe_results": ({"model": "m", "replica": 0, "healthy": True},),
        },
        "n2": {"ansible_host": None},
    }
    found = action.read_hostvars(hostvars, ["n1", "n2", "ghost"])
    assert found == {
        "n1": {
            "ansible_host": "10.0.0.11",
            "serve_bind_address": "0.0.0.0",
            "health_probe_results": [{"model": "m", "replica": 0, "healthy": True}],
        },
        "n2": {},
        "ghost": {},
    }


# --------------------------------------------------------------------------- the plugin and the role, run by ansible-playbook

# The "Report" play of deploy_models, exactly as shipped.
with open(os.path.join(REPO_ROOT, "playbooks", "deploy_models.yml"), encoding="utf-8") as _handle:
    REPORT_PLAY = "\n" + _handle.read().split("\n- name: Report\n", 1)[1].join(["- name: Report\n", ""])
assert "npu.fleet.report" in REPORT_PLAY

# The facts the earlier plays leave on each NPU host (plan and catalogue on all, probe results where the probe ran).
FACTS_PLAY = """
- name: Facts as plan_models, serve and health_probe leave them
  hosts: npu_hosts
  gather_facts: false
  tasks:
    - name: Plan and catalogue
      ansible.builtin.set_fact:
        plan_models_result: {plan: "{{ fake_plan }}"}
        npu_fleet_catalogue: "{{ fake_catalogue }}"
    - name: Probe results
      ansible.builtin.set_fact:
        health_probe_results: "{{ fake_probes[inventory_hostname] }}"
      when: inventory_hostname in fake_probes
    - name: How far each host got (a host without probe results stopped at the probe)
      ansible.builtin.set_fact:
        npu_fleet_stage: "{{ 'done' if inventory_hostname in fake_probes else 'probe' }}"
"""


def fleet():
    """n1 and n2, 8 chips each: 14 replicas of big and 2 of q8 placed (big first), the third q8 replica does not fit."""
    profile = profile_model(fixture_dir("Qwen__Qwen3-8B"))
    catalogue = [
        {
            "name": "q8",
            "profile": profile,
            "replicas": 3,
            "spread": False,
            "backend": "vllm",
            "image": "quay.io/ascend/vllm-ascend:v0.15.0rc1",
        },
        {"name": "big", "replicas": 14, "spread": False, "tensor_parallel_size": 1, "profile": profile},
    ]
    planned = plan({"n1": {"chips": chips(8)}, "n2": {"chips": chips(8)}}, catalogue)
    return planned, catalogue


def probe_results(planned, failing=None):
    """health_probe_results per host, for n1 only (n2 was unreachable at probe time)."""
    results = []
    for item in planned["placements"]:
        if item["host"] != "n1":
            continue
        entry = {
            "name": "npu-fleet-%s-%d" % (item["model"], item["replica"]),
            "model": item["model"],
            "replica": item["replica"],
            "port": item["port"],
            "image": item["image"],
            "healthy": True,
            "stage": "done",
            "message": "ok",
            "ttft_ms": 42.5,
            "total_ms": 120.0,
            "ready_after_s": 30.2,
            "state": None,
            "log_tail": [],
            "diagnosis": None,
            "rolled_back": False,
        }
        if (item["model"], item["replica"]) == failing:
            entry.update(
                healthy=False,
                stage="container",
                message="container %s is exited (restarts 3, last exit code 1)" % entry["name"],
                ttft_ms=None,
                total_ms=None,
                ready_after_s=None,
                rolled_back=True,
                state={"status": "exited", "exit_code": 1, "oom_killed": False, "restarts": 3, "error": None},
                log_tail=["INFO loading", ARCH_LINE],
                diagnosis=diagnose("INFO loading\n" + ARCH_LINE),
            )
        results.append(entry)
    return {"n1": results}


def report_playbook(tmp_path, plays, extra, extra_args=()):
    """The plays on n1 (10.0.0.11) and n2 (10.0.0.12, bound to fd00::12), local connection."""
    (tmp_path / "play.yml").write_text("---" + "".join(plays))
    inventory = local_inventory(
        ["n1", "n2"], {"n1": {"ansible_host": "10.0.0.11"}, "n2": {"ansible_host": "10.0.0.12", "serve_bind_address": "fd00::12"}}
    )
    return run_playbook(tmp_path, tmp_path / "play.yml", inventory, extra, extra_args)


def test_report_play_writes_markdown_and_json_then_fails_on_the_unhealthy_replica(tmp_path):
    planned, catalogue = fleet()
    failing = ("big", 1)
    assert failing in [(p["model"], p["replica"]) for p in planned["placements"] if p["host"] == "n1"]
    report_dir = tmp_path / "report"
    proc = report_playbook(
        tmp_path,
        [FACTS_PLAY, REPORT_PLAY],
        {
            "fake_plan": planned,
            "fake_catalogue": catalogue,
            "fake_probes": probe_results(planned, failing),
            "npu_fleet_report_dir": str(report_dir),
        },
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    flat = " ".join((proc.stdout + proc.stderr).split())
    assert (
        "1 replica(s) failed their health probe: big/1 on n1 (failed at container, rolled back); see %s/report.md" % report_dir
    ) in flat, flat[-3000:]

    report = json.loads((report_dir / "report.json").read_text())
    assert sorted(report) == [
        "gateways",
        "hosts",
        "kind",
        "notes",
        "open_hosts",
        "rows",
        "sources",
        "totals",
        "unplaced",
    ]  # no markdown in the JSON
    assert report["open_hosts"] == []  # no host served without a key
    assert report["kind"] == "deploy" and report["totals"]["unhealthy"] == sum(1 for row in report["rows"] if not row["healthy"]) > 1
    assert report["gateways"] == {"router": [], "models": {}}  # no gateway in this play
    placed_on = dict((p["host"], 0) for p in planned["placements"])
    for p in planned["placements"]:
        placed_on[p["host"]] += 1
    assert report["totals"] == {
        "replicas": len(planned["placements"]),
        "healthy": placed_on["n1"] - 1,
        "failed": 1,
        # The failed one and n2's, which were not probed.
        "unhealthy": len(planned["placements"]) - (placed_on["n1"] - 1),
        "unplaced": len(planned["unplaced"]),
    }
    assert len(planned["unplaced"]) == 1 and report["unplaced"][0]["model"] == "q8"
    rows = dict(((row["model"], row["replica"]), row) for row in report["rows"])
    assert rows[failing]["status"] == "failed at container, rolled back" and rows[failing]["diagnosis"]["code"] == "architecture"
    for p in planned["placements"]:
        row = rows[(p["model"], p["replica"])]
        if p["host"] == "n1":
            assert row["url"] == "http://10.0.0.11:%d" % p["port"]
            assert row["status"] in ("healthy", "failed at container, rolled back")
        else:  # no health_probe_results on n2; its bind address is IPv6
            assert row["url"] == "http://[fd00::12]:%d" % p["port"] and row["status"] == "not probed"
        assert (row["params"], row["architecture"]) == ("8.2B", "Qwen3ForCausalLM")

    markdown = (report_dir / "report.md").read_text()
    assert markdown.startswith(
        "# npu.fleet deployment report\n\n%d replica(s): %d healthy, 1 failed, 1 unplaced.\n\n## Hosts that did not finish\n\n"
        "- **n2**: failed during probe - the plan changed here: %s; any of these may be half-done; see the failed task in the "
        "run's output, fix it and run again\n\n## n1\n"
        % (
            report["totals"]["replicas"],
            report["totals"]["healthy"],
            ", ".join("add %s/%s" % (c["model"], c["replica"]) for c in planned["changes"] if (c["to"] or {}).get("host") == "n2"),
        )
    )
    assert "| model | params | architecture | backend | image | host | chips | port | url | max_model_len | status | ttft_ms |" in markdown
    assert "| http://[fd00::12]:" in markdown and "## n2" in markdown
    assert (
        "- **big** replica 1 on n1: container npu-fleet-big-1 is exited (restarts 3, last exit code 1). Cause: this vLLM cannot "
        "load the model's architecture. Fix: "
    ) in markdown
    assert "Log: `%s`" % ARCH_LINE in markdown
    assert "## Not placed\n\n- **q8** replica 2: needs 1 chip" in markdown
    assert oct((report_dir / "report.md").stat().st_mode & 0o777) == "0o644"
    # Ansible's template lookup renders exactly what plain Jinja (trim_blocks) renders from the JSON.
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.join(REPO_ROOT, "roles", "report", "templates")), trim_blocks=True
    )
    assert markdown == environment.get_template("report.md.j2").render(report=report)
    # The Markdown is printed too, line by line.
    assert '"## Failures",' in proc.stdout


def test_healthy_fleet_passes_and_a_custom_template_is_used(tmp_path):
    planned, catalogue = fleet()
    (tmp_path / "mine.md.j2").write_text("{% for row in report.rows %}\n{{ row.model }}#{{ row.replica }} {{ row.url }}\n{% endfor %}\n")
    proc = report_playbook(
        tmp_path,
        [FACTS_PLAY, REPORT_PLAY],
        {
            "fake_plan": planned,
            "fake_catalogue": catalogue,
            "fake_probes": probe_results(planned),
            "npu_fleet_report_dir": str(tmp_path / "out"),
            "report_template": str(tmp_path / "mine.md.j2"),
        },
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = (tmp_path / "out" / "report.md").read_text().splitlines()
    assert len(lines) == len(planned["placements"])
    assert "q8#0 http://[fd00::12]:%d" % [p for p in planned["placements"] if p["model"] == "q8"][0]["port"] in lines
    assert "big#0 http://10.0.0.11:%d" % [p for p in planned["placements"] if p["model"] == "big"][0]["port"] in lines


def test_check_mode_reports_the_plan_and_does_not_fail(tmp_path):
    planned, catalogue = fleet()
    proc = report_playbook(
        tmp_path,
        [FACTS_PLAY, REPORT_PLAY],
        {"fake_plan": planned, "fake_catalogue": catalogue, "fake_probes": {}, "npu_fleet_report_dir": str(tmp_path / "out")},
        ["--check"],
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "planned (check mode)" in proc.stdout and "not probed" not in proc.stdout
    assert not (tmp_path / "out").exists()  # check mode writes nothing


def test_report_play_is_skipped_without_a_plan(tmp_path):
    proc = report_playbook(tmp_path, [REPORT_PLAY], {"npu_fleet_report_dir": str(tmp_path / "out")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "failed=0" in proc.stdout and "changed=0" in proc.stdout
    assert not (tmp_path / "out").exists()  # nothing planned, nothing written


def test_module_fails_without_the_action_plugin(tmp_path):
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"plan": {}}}))
    module = os.path.join(REPO_ROOT, "plugins", "modules", "fleet_report.py")
    env = dict(os.environ, PYTHONPATH=COLLECTIONS_PATH)
    proc = subprocess.run([sys.executable, module, str(args)], env=env, capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 1
    assert "runs on the controller as an action plugin" in json.loads(proc.stdout)["msg"]


def test_the_rolling_update_section_tells_surge_in_place_and_rollback_apart():
    from ansible_collections.npu.fleet.plugins.module_utils._report import build_report

    placements = [
        {"model": "solo", "replica": 0, "host": "n1", "devices": ["/dev/davinci0"], "port": 18000},
        {"model": "beside", "replica": 0, "host": "n1", "devices": ["/dev/davinci1"], "port": 18001},
        {"model": "pair", "replica": 0, "host": "n1", "devices": ["/dev/davinci2"], "port": 18002},
        {"model": "pair", "replica": 1, "host": "n2", "devices": ["/dev/davinci2"], "port": 18002},
    ]
    probes = [
        {"model": "solo", "replica": 0, "healthy": True, "rolling": True, "ready_after_s": 12.0},
        {"model": "beside", "replica": 0, "healthy": True, "rolling": True, "surge": True, "devices": ["/dev/davinci5"], "port": 18005},
        {"model": "pair", "replica": 0, "healthy": False, "rolling": True, "stage": "health", "rolled_back": True},
        {"model": "pair", "replica": 1, "healthy": True},
    ]
    report = build_report({"placements": placements}, probes, {})
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.join(REPO_ROOT, "roles", "report", "templates")), trim_blocks=True
    )
    markdown = environment.get_template("report.md.j2").render(report=report)
    section = markdown.split("## Rolling update\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert section == [
        "- **beside** replica 0 on n1: its successor started beside it (chips 5, port 18005) and took over at the gateway "
        "after its probe: no outage.",
        "- **pair** replica 0 on n1: failed at health, rolled back (see Failures); the model's rollout stopped there.",
        "- **solo** has one replica and was replaced in place: it did not answer for about 12.0 s (until its successor passed "
        "the probe). A second replica, or a free chip for a surge, avoids this window.",
    ]
