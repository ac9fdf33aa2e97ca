"""inventory/example stays a valid inventory of a real fleet: groups, catalogue, overrides, ports, the key.

Ansible itself reads and templates the inventory (ansible-inventory, ansible-playbook
on localhost); the catalogue it renders then goes through the collection's own
validation, in Python and as the first task of a play.
"""

import json
import os
import subprocess
import sys

import pytest

from conftest import COLLECTIONS_PATH, REPO_ROOT
from ansible_collections.npu.fleet.plugins.module_utils._catalogue import validate_catalogue
from ansible_collections.npu.fleet.plugins.module_utils._compat_data import load_matrix

INVENTORY = os.path.join(REPO_ROOT, "inventory", "example")
BIN = os.path.dirname(sys.executable)
HARDWARE_GROUPS = ("npu_a2", "npu_a3", "npu_310p")

RENDER = """
- name: Render what the playbooks would read from the inventory
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Validate the catalogue as npu.fleet.plan_models does first
      npu.fleet.model_catalogue:
        models: "{{ npu_fleet_models | default(none) }}"
      register: validated
    - name: Write the rendered catalogue and the validation result
      ansible.builtin.copy:
        content: "{{ {'models': npu_fleet_models, 'validated': validated.catalogue, 'jobs': validated.remote_profiles} | to_json }}"
        dest: "{{ out }}"
        mode: "0600"
"""

KEY = """
- name: Use the serving key
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Read it
      ansible.builtin.assert:
        that: serve_api_key | length > 0
"""


def _env(tmp_path):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_PATH, ANSIBLE_HOME=str(tmp_path / "home"), ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_CONFIG", None)
    return env


def _run(tmp_path, command):
    return subprocess.run(command, cwd=str(tmp_path), env=_env(tmp_path), capture_output=True, text=True, timeout=300, check=False)


def _playbook(tmp_path, text, *extra):
    (tmp_path / "play.yml").write_text(text)
    command = [os.path.join(BIN, "ansible-playbook"), "-i", INVENTORY, "-e", "ansible_python_interpreter=%s" % sys.executable]
    for value in extra:
        command += ["-e", value]
    return _run(tmp_path, command + [str(tmp_path / "play.yml")])


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("example-inventory")
    result = _run(tmp, [os.path.join(BIN, "ansible-inventory"), "-i", INVENTORY, "--list"])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _render(tmp_path, *extra):
    out = tmp_path / "rendered.json"
    result = _playbook(tmp_path, RENDER, "out=%s" % out, *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(out.read_text())


def test_graph_groups_hosts_by_hardware(tmp_path):
    result = _run(tmp_path, [os.path.join(BIN, "ansible-inventory"), "-i", INVENTORY, "--graph"])
    assert result.returncode == 0, result.stderr
    lines = [line.strip(" |-") for line in result.stdout.splitlines()]
    for group in ("@npu_hosts:", "@npu_a2:", "@npu_a3:", "@npu_310p:", "@npu_gateways:"):
        assert group in lines
    # The hardware groups are drawn inside npu_hosts, npu_gateways outside it.
    text = result.stdout
    assert text.index("@npu_hosts:") < text.index("@npu_a2:") < text.index("@npu_gateways:")


def test_every_npu_host_is_in_exactly_one_hardware_group(inventory):
    assert sorted(inventory["npu_hosts"]["children"]) == sorted(HARDWARE_GROUPS)
    members = dict((group, set(inventory[group]["hosts"])) for group in HARDWARE_GROUPS)
    assert all(members.values())
    hosts = [host for group in HARDWARE_GROUPS for host in members[group]]
    assert len(hosts) == len(set(hosts))
    gateways = set(inventory["npu_gateways"]["hosts"])
    assert gateways and not gateways & set(hosts)


def test_per_host_settings(inventory):
    hostvars = inventory["_meta"]["hostvars"]
    npu_hosts = [host for group in HARDWARE_GROUPS for host in inventory[group]["hosts"]]
    gateway_low, gateway_high = (int(part) for part in hostvars[npu_hosts[0]]["npu_fleet_gateway_port_range"].split("-"))
    ranges = set()
    for host in npu_hosts:
        low, high = (int(part) for part in hostvars[host]["fleet_plan_port_range"].split("-"))
        assert 1024 < low < high <= 65535
        assert high < gateway_low or low > gateway_high, host
        ranges.add((low, high))
        assert hostvars[host]["fleet_plan_labels"]["family"] in ("a2", "a3", "310p")
        for device in hostvars[host].get("preflight_reserved_devices", []):
            assert device.startswith("/dev/davinci") and device[len("/dev/davinci") :].isdigit()
    assert len(ranges) > 1  # some hosts override their group's range
    assert any(hostvars[host].get("preflight_reserved_devices") for host in npu_hosts)


def test_registry_mirror_overrides_are_valid(inventory):
    overrides = inventory["_meta"]["hostvars"]["a2-bj-01"]["npu_fleet_compat_overrides"]
    matrix = load_matrix(overrides)
    assert matrix["registry"] == overrides["registry"]
    assert matrix["transformers"]["base_image"] == overrides["transformers"]["base_image"]


def test_catalogue_passes_the_collection_validation(tmp_path, inventory):
    rendered = _render(tmp_path)
    catalogue = validate_catalogue(rendered["models"])
    assert rendered["validated"] == catalogue
    assert [entry["name"] for entry in catalogue] == ["qwen3-8b", "qwen3-32b", "qwen3-30b-a3b", "qwen3-4b"]
    hostvars = inventory["_meta"]["hostvars"]
    npu_hosts = [host for group in HARDWARE_GROUPS for host in inventory[group]["hosts"]]
    for entry in catalogue:
        assert entry["replicas"] > 0
        assert entry["host_path"].startswith("/data/models/"), entry
        # Profiled on a host that holds it (the controller holds no checkpoint), which may also run it.
        assert entry["profile_host"] in npu_hosts
        assert all(hostvars[entry["profile_host"]]["fleet_plan_labels"][key] == value for key, value in entry["labels"].items())
        # Hosts carry its labels; one per replica where it is to spread (the default).
        matching = [host for host in npu_hosts if entry["labels"].items() <= hostvars[host]["fleet_plan_labels"].items()]
        assert len(matching) >= (entry["replicas"] if entry.get("spread", True) else 1), entry["name"]
    assert rendered["jobs"] == [{"name": entry["name"], "path": entry["path"], "host": entry["profile_host"]} for entry in catalogue]


def test_selection_keeps_every_entry_and_stops_the_rest(tmp_path):
    rendered = _render(tmp_path, json.dumps({"npu_fleet_models_selected": ["qwen3-8b", "qwen3-4b"]}))
    replicas = dict((entry["name"], entry["replicas"]) for entry in validate_catalogue(rendered["models"]))
    assert replicas == {"qwen3-8b": 3, "qwen3-4b": 2, "qwen3-32b": 0, "qwen3-30b-a3b": 0}


def test_a_run_without_the_key_stops_with_the_hint(tmp_path):
    result = _playbook(tmp_path, KEY)
    assert result.returncode != 0
    assert "vault_npu_fleet_serve_api_key is not set" in result.stdout + result.stderr
    # Given as AWX's credential gives it (an extra variable), the key is used.
    assert _playbook(tmp_path, KEY, "serve_api_key=from-the-credential").returncode == 0
