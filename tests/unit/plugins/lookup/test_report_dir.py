"""Where reports go when the user did not say: the runner's artifacts, else next to the playbook, never '/'."""

import os

from ansible_collections.npu.fleet.plugins.module_utils._report_dir import report_dir
from playbook_runner import local_inventory, run_playbook

PLAY = """---
- name: Show the report directory
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Where
      ansible.builtin.debug:
        msg: "REPORT_DIR={{ lookup('npu.fleet.report_dir') }} STATUS_DIR={{ lookup('npu.fleet.report_dir', 'status') }}"
"""


def test_the_explicit_directory_wins_then_the_runner_then_the_playbook():
    assert report_dir("/srv/reports", "/runner/artifacts/7", "/repo", "/home/u") == "/srv/reports"
    assert report_dir(None, "/runner/artifacts/7", "/repo", "/home/u") == "/runner/artifacts/7/npu-fleet-report"
    assert report_dir("", None, "/repo", "/home/u", subdir="status") == "/repo/npu-fleet-report/status"
    # A playbook of an installed collection: not inside site-packages, the working directory instead.
    installed = "/usr/lib/python3/dist-packages/ansible_collections/npu/fleet/playbooks"
    assert report_dir(None, None, installed, "/home/u") == "/home/u/npu-fleet-report"


def test_the_lookup_reads_the_runner_environment_and_the_playbook_dir(tmp_path, monkeypatch):
    (tmp_path / "play.yml").write_text(PLAY)
    monkeypatch.delenv("AWX_ISOLATED_DATA_DIR", raising=False)
    proc = run_playbook(tmp_path, tmp_path / "play.yml", local_inventory([]))
    assert "REPORT_DIR=%s/npu-fleet-report STATUS_DIR=%s/npu-fleet-report/status" % (tmp_path, tmp_path) in proc.stdout, proc.stdout
    monkeypatch.setenv("AWX_ISOLATED_DATA_DIR", str(tmp_path / "artifacts" / "job-1"))
    proc = run_playbook(tmp_path, tmp_path / "play.yml", local_inventory([]))
    assert "REPORT_DIR=%s" % os.path.join(str(tmp_path), "artifacts", "job-1", "npu-fleet-report") in proc.stdout, proc.stdout
    proc = run_playbook(tmp_path, tmp_path / "play.yml", local_inventory([]), {"npu_fleet_report_dir": "/srv/r"})
    assert "REPORT_DIR=/srv/r STATUS_DIR=/srv/r/status" in proc.stdout, proc.stdout
