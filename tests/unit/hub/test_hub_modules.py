"""The modules themselves, run by ansible-playbook against the local hub: results, check mode, async progress, no token."""

from __future__ import annotations

import json
import os

import pytest
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import profile_model
from hub_testing import TOKEN, WRONG_TOKEN, all_text
from hub_testing import hub_fixture, isolated_clients_fixture, repos_fixture  # noqa: F401  pylint: disable=unused-import  # fixtures hub, repos, autouse
from playbook_runner import local_inventory, run_playbook

pytest.importorskip("huggingface_hub")

PLAYBOOK = """
- name: Profile, then fetch a hub model the way a role does
  hosts: localhost
  gather_facts: false
  vars:
    source: &source
      repo: tiny/private
      revision: "{{ commit }}"
      endpoint: "{{ endpoint }}"
      token: "{{ hub_token }}"
  tasks:
    - name: Profile from the hub (range reads)
      npu.fleet.hub_profile: *source
      register: profile

    - name: What would be fetched
      npu.fleet.hub_fetch:
        <<: *source
        dest: "{{ dest }}"
        host_label: npu-host-1
      check_mode: true
      register: check

    - name: Fetch as an async task
      npu.fleet.hub_fetch:
        <<: *source
        repo: tiny/big
        revision: "{{ big_commit }}"
        dest: "{{ big_dest }}"
        host_label: npu-host-1
      async: 120
      poll: 0
      register: job

    - name: Read the progress file while it runs
      ansible.builtin.slurp:
        src: "{{ big_dest }}/.cache/npu-fleet/progress.json"
      register: progress
      until: progress is not failed and (progress.content | b64decode | from_json).bytes_done > 0
      retries: 100
      delay: 0.1

    - name: Wait for the download
      ansible.builtin.async_status:
        jid: "{{ job.ansible_job_id }}"
      register: big
      until: big.finished
      retries: 200
      delay: 0.2

    - name: Fetch
      npu.fleet.hub_fetch:
        <<: *source
        dest: "{{ dest }}"
      register: first

    - name: Fetch again
      npu.fleet.hub_fetch:
        <<: *source
        dest: "{{ dest }}"
      register: second

    - name: Fetch with a wrong token
      npu.fleet.hub_fetch:
        <<: *source
        token: "{{ wrong_token }}"
        dest: "{{ dest }}-wrong"
        host_label: npu-host-1
      register: wrong
      ignore_errors: true

    - name: Keep the results for the test
      ansible.builtin.copy:
        content: "{{ {'profile': profile, 'check': check, 'progress': progress.content | b64decode | from_json,
                      'big': big, 'first': first, 'second': second, 'wrong': wrong} | to_json }}"
        dest: "{{ out }}"
        mode: "0600"
"""


def test_the_modules_under_ansible_playbook(hub, repos, tmp_path):
    hub.rate_limit = 16 * 1024 * 1024  # the big repository takes about two seconds: the progress file is read meanwhile
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    extra = {
        "commit": hub.repos["tiny/private"].commit,
        "big_commit": hub.repos["tiny/big"].commit,
        "endpoint": hub.url,
        "hub_token": TOKEN,
        "wrong_token": WRONG_TOKEN,
        "dest": str(tmp_path / "models" / "tiny"),
        "big_dest": str(tmp_path / "models" / "big"),
        "out": str(tmp_path / "out.json"),
    }
    run = run_playbook(tmp_path, tmp_path / "play.yml", local_inventory([]), extra)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())

    profile = dict(out["profile"]["profile"])
    assert profile.pop("path") == "%s/tiny/private@%s" % (hub.url, extra["commit"])
    disk = profile_model(repos["small"])
    disk.pop("path")
    assert profile == disk and out["profile"]["changed"] is False

    assert out["check"]["changed"] is True and set(f["status"] for f in out["check"]["files"]) == {"would_fetch"}
    assert out["progress"]["state"] in ("downloading", "done") and out["progress"]["bytes_total"] > 30 * 1024 * 1024
    assert out["big"]["changed"] is True and out["big"]["bytes_on_disk"] > 30 * 1024 * 1024
    assert out["first"]["changed"] is True and len(out["first"]["fetched"]) == 10
    assert out["second"]["changed"] is False and out["second"]["fetched"] == []

    wrong = out["wrong"]
    assert wrong["failed"] and wrong["msg"].startswith("npu-host-1: %s refused access to tiny/private (HTTP 401)" % hub.url)
    for secret in (TOKEN, WRONG_TOKEN):
        assert secret not in run.stdout and secret not in run.stderr
        assert secret not in (tmp_path / "out.json").read_text()
        assert secret not in all_text(str(tmp_path / "models"))
    assert not os.path.exists(extra["dest"] + "-wrong")
