"""A deploy without an API key is an explicit choice: the serve role stops first, naming the fix.

Real ansible-playbook runs of the serve role on a local host with an empty plan (nothing to start, no Docker
needed past the check), then the report of a host that asked for anonymous serving names it as open.
"""

from playbook_runner import local_inventory, run_playbook

PLAY = """---
- name: Serve nothing, with or without a key
  hosts: npu_hosts
  gather_facts: false
  tasks:
    - name: Serve
      ansible.builtin.import_role:
        name: npu.fleet.serve
      vars:
        serve_plan: {placements: []}
        serve_models: []
        serve_containers: []
        serve_images: []
        serve_host_facts: {driver_mounts: {}}
        serve_gateway_hosts: []
"""


def serve(tmp_path, extra):
    (tmp_path / "play.yml").write_text(PLAY)
    return run_playbook(tmp_path, tmp_path / "play.yml", local_inventory(["n1"]), extra)


def test_no_key_stops_with_the_fix(tmp_path):
    proc = serve(tmp_path, {})
    assert proc.returncode != 0
    flat = " ".join(proc.stdout.split())
    assert "n1: no API key is set, and every replica would answer anyone who reaches 0.0.0.0" in flat
    assert "set npu_fleet_api_key" in flat and "npu_fleet_allow_anonymous=true" in flat


def test_a_key_or_an_explicit_choice_passes(tmp_path):
    for extra in ({"npu_fleet_api_key": "k-123"}, {"npu_fleet_allow_anonymous": True}, {"serve_api_key": "k-123"}):
        proc = serve(tmp_path, extra)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "k-123" not in proc.stdout + proc.stderr
