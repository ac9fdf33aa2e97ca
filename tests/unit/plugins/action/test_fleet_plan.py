"""Tests of the npu.fleet.fleet_plan action plugin.

Input assembly (hostvars -> planner input) is tested directly on plain
dicts shaped like hostvars; the whole plugin is then run for real by
ansible-playbook on localhost, with hosts whose ``npu`` and
``npu_preflight`` facts are set as the preflight role sets them.
"""

import json
import os
import subprocess
import sys
from collections import OrderedDict

import pytest

from ansible_collections.npu.fleet.plugins.action import fleet_plan as action
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import profile_model
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan import PlacementError
from builders import chips
from conftest import REPO_ROOT
from model_checkpoints import fixture_dir
from playbook_runner import ANSIBLE_PLAYBOOK, COLLECTIONS_PATH, local_inventory, run_playbook


PREFLIGHT_OK = {"ok": True, "problems": [], "excluded_devices": [], "usable_devices": []}


# --------------------------------------------------------------------------- input assembly


def test_host_spec_reads_npu_facts_preflight_and_fleet_plan_vars():
    hostvars = {
        "ansible_facts": {"npu": {"chips": chips(2), "npu_smi_layout": "a2"}},
        "npu_preflight": {
            "ok": True,
            "excluded_devices": ["/dev/davinci1"],
            "problems": [{"code": "CHIP_BUSY", "device": "/dev/davinci1", "usable": False}],
        },
        "fleet_plan_labels": {"zone": "a"},
        "fleet_plan_port_range": "20000-20099",
        "fleet_plan_used_ports": [20001],
        "preflight_reserved_devices": ["/dev/davinci0"],
        "unrelated": "ignored",
    }
    spec = action.host_spec_from_vars(hostvars)
    assert spec == {
        "chips": chips(2),
        "npu_smi_layout": "a2",
        "preflight_ok": True,
        "excluded_devices": ["/dev/davinci1"],
        "problems": [{"code": "CHIP_BUSY", "device": "/dev/davinci1", "usable": False}],
        "labels": {"zone": "a"},
        "port_range": "20000-20099",
        "used_ports": [20001],
        "reserved_devices": ["/dev/davinci0"],
    }


def test_top_level_npu_fact_and_missing_preflight():
    spec = action.host_spec_from_vars({"npu": {"chips": chips(1)}})
    assert spec == {"chips": chips(1), "preflight_ok": False, "notes": [action.NO_PREFLIGHT]}
    assert action.host_spec_from_vars({}) == {"chips": [], "preflight_ok": False, "notes": [action.NO_PREFLIGHT]}


def test_explicit_hosts_override_field_by_field():
    hostvars = {
        "n1": {"npu": {"chips": chips(2)}, "npu_preflight": PREFLIGHT_OK, "fleet_plan_labels": {"zone": "a"}},
        "n2": {"npu": {"chips": chips(1)}},
    }
    hosts = action.assemble_hosts(
        hostvars,
        ["n1", "n2", "ghost"],
        {
            "n1": {"labels": {"zone": "b"}},
            "n2": {"preflight_ok": True},
            "extra": {"chips": chips(4)},
        },
    )
    assert sorted(hosts) == ["extra", "ghost", "n1", "n2"]
    assert hosts["n1"]["labels"] == {"zone": "b"} and hosts["n1"]["chips"] == chips(2)
    assert hosts["n2"] == {"chips": chips(1), "preflight_ok": True}  # the "no npu_preflight" note goes too
    assert hosts["ghost"] == {"chips": [], "preflight_ok": False, "notes": ["not in the inventory"]}
    assert hosts["extra"] == {"chips": chips(4)}
    with pytest.raises(PlacementError, match="hosts.bad must be a mapping"):
        action.assemble_hosts({}, [], {"bad": "x"})


def test_plain_copies_mapping_subclasses_and_string_subclasses():
    class Text(str):
        pass

    value = action.plain(OrderedDict([("a", (1, Text("x"), {"b": True}))]))
    assert value == {"a": [1, "x", {"b": True}]}
    assert value.__class__ is dict and value["a"][1].__class__ is str


def test_image_selector_rules_host_rule_wins():
    select = action.image_selector_from_rules(
        [
            {"model": "q8", "image": "img:any"},
            {"model": "q8", "host": "n2", "backend": "transformers", "image": "img:n2"},
        ]
    )
    assert select({"name": "q8"}, "n1") == {"image": "img:any"}
    assert select({"name": "q8"}, "n2") == {"backend": "transformers", "image": "img:n2"}
    assert select({"name": "other"}, "n1") is None
    assert action.image_selector_from_rules([]) is None
    with pytest.raises(PlacementError, match=r"image_selector\[0\] needs at least 'model'"):
        action.image_selector_from_rules([{"image": "x"}])
    with pytest.raises(PlacementError, match=r"image_selector\[0\]: unknown field\(s\) tag"):
        action.image_selector_from_rules([{"model": "q8", "tag": "x"}])


def test_image_selection_fact_fills_backend_and_image_unless_a_rule_says_otherwise():
    hostvars = {
        "n1": {"npu_image_selection": {"q8": {"backend": "vllm", "image": "quay.io/ascend/vllm-ascend:v0.15.0rc1", "reasons": ["..."]}}},
        "n2": {"npu_image_selection": {"q8": {"backend": "transformers", "image": "npu-fleet/transformers:8.5.0"}}},
        "n3": {},
    }
    selections = action.image_selections(hostvars, ["n1", "n2", "n3", "ghost"])
    assert sorted(selections) == ["n1", "n2"]
    select = action.make_image_selector([{"model": "q8", "host": "n2", "image": "pinned:1"}], selections)
    assert select({"name": "q8"}, "n1") == {"backend": "vllm", "image": "quay.io/ascend/vllm-ascend:v0.15.0rc1"}
    assert select({"name": "q8"}, "n2") == {"image": "pinned:1"}
    assert select({"name": "q8"}, "n3") is None and select({"name": "other"}, "n1") is None
    assert action.make_image_selector([], {}) is None


# --------------------------------------------------------------------------- the plugin, run by ansible-playbook


PLAYBOOK = """
- name: Plan on hosts whose facts are set as the preflight role sets them
  hosts: npu_hosts
  gather_facts: false
  tasks:
    - name: Facts
      ansible.builtin.set_fact:
        npu: "{{ fake_npu }}"
        npu_preflight: "{{ fake_preflight }}"

    - name: Plan
      npu.fleet.fleet_plan:
        models: "{{ catalogue }}"
        current: "{{ running | default([]) }}"
      run_once: true
      register: planned

    - name: Write the plan on the controller
      ansible.builtin.copy:
        content: "{{ {'plan': planned.plan, 'table': planned.table} | to_nice_json }}"
        dest: "{{ output }}"
        mode: "0644"
      delegate_to: localhost
      run_once: true
"""


def plan_playbook(tmp_path, catalogue, running=None, extra_host_vars=None):
    """Inventory: n1 (8 x 32 GiB, preflight ok), n2 (8 x 64 GiB, failed preflight), local connection."""
    q8 = profile_model(fixture_dir("Qwen__Qwen3-8B"))
    host_vars = {
        "n1": {
            "fake_npu": {"chips": chips(8), "npu_smi_layout": "a2"},
            "fake_preflight": PREFLIGHT_OK,
            "fleet_plan_port_range": "19000-19099",
            "npu_image_selection": {"q8": {"backend": "vllm", "image": "quay.io/ascend/vllm-ascend:v0.15.0rc1"}},
        },
        "n2": {"fake_npu": {"chips": chips(8, 65536, "910B3"), "npu_smi_layout": "a2"}, "fake_preflight": dict(PREFLIGHT_OK, ok=False)},
    }
    inventory = local_inventory(["n1", "n2"], host_vars)
    for name, variables in (extra_host_vars or {}).items():
        inventory["all"]["children"]["npu_hosts"]["hosts"][name].update(variables)
    output = tmp_path / "plan.json"
    extra = {"catalogue": [dict(entry, profile=q8) for entry in catalogue], "output": str(output)}
    if running is not None:
        extra["running"] = running
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    proc = run_playbook(tmp_path, tmp_path / "play.yml", inventory, extra)
    result = json.loads(output.read_text()) if output.exists() else None
    return proc, result


def test_plugin_plans_from_hostvars_and_skips_the_failed_host(tmp_path):
    proc, result = plan_playbook(tmp_path, [{"name": "q8", "replicas": 2, "spread": False}])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plan = result["plan"]
    assert [(p["host"], p["devices"]) for p in plan["placements"]] == [("n1", ["/dev/davinci0"]), ("n1", ["/dev/davinci1"])]
    assert all(19000 <= p["port"] <= 19099 for p in plan["placements"])  # fleet_plan_port_range of n1
    assert all(p["image"] == "quay.io/ascend/vllm-ascend:v0.15.0rc1" for p in plan["placements"])
    assert plan["summary"]["hosts"]["n2"]["preflight_ok"] is False
    assert "n2 [910b] receives nothing: failed preflight" in result["table"]
    # the plan comes back sticky when fed back as current
    proc, again = plan_playbook(
        tmp_path,
        [{"name": "q8", "replicas": 2, "spread": False}],
        running=[dict((k, p[k]) for k in ("model", "replica", "host", "devices", "port")) for p in plan["placements"]],
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [c["action"] for c in again["plan"]["changes"]] == ["keep", "keep"]


def test_plugin_turns_bad_input_into_a_failed_task(tmp_path):
    proc, result = plan_playbook(tmp_path, [{"name": "q8", "tensor_parallel_size": 3}])
    assert proc.returncode != 0 and result is None
    assert "models[0] (q8): tensor_parallel_size 3 is not one of auto, 1, 2, 4, 8" in proc.stdout


def test_plan_models_playbooks_pass_syntax_check(tmp_path):
    env = dict(
        os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_PATH, ANSIBLE_HOME=str(tmp_path / "home"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp")
    )
    env.pop("ANSIBLE_CONFIG", None)
    (tmp_path / "inventory.ini").write_text("[npu_hosts]\nn1\n")
    for playbook in ("plan-models.yml", os.path.join("playbooks", "plan_models.yml")):
        proc = subprocess.run(
            [ANSIBLE_PLAYBOOK, "--syntax-check", "-i", str(tmp_path / "inventory.ini"), os.path.join(REPO_ROOT, playbook)],
            cwd=str(tmp_path),
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_module_fails_without_the_action_plugin(tmp_path):
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"models": []}}))
    module = os.path.join(REPO_ROOT, "plugins", "modules", "fleet_plan.py")
    env = dict(os.environ, PYTHONPATH=COLLECTIONS_PATH)
    proc = subprocess.run([sys.executable, module, str(args)], env=env, capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 1
    assert "runs on the controller as an action plugin" in json.loads(proc.stdout)["msg"]


def test_no_npu_host_to_plan_for_names_the_group(tmp_path):
    """An inventory whose npu_hosts group is missing or empty: the planner says which group to fill."""
    inventory = local_inventory([])
    del inventory["all"]["children"]
    (tmp_path / "play.yml").write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - npu.fleet.fleet_plan:\n        models: []\n        inventory_hosts: \"{{ groups['npu_hosts'] | default([]) }}\"\n"
    )
    proc = run_playbook(tmp_path, tmp_path / "play.yml", inventory)
    assert proc.returncode == 2, proc.stdout
    assert "no hosts to plan for: the play runs over no NPU host (is the npu_hosts group missing or empty" in proc.stdout
    assert "add the Ascend hosts to npu_hosts" in proc.stdout
