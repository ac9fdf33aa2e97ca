"""Run a real ``ansible-playbook`` against this checkout, isolated from the developer's Ansible settings.

Shared by the tests that drive playbooks end to end on a local inventory
(no NPU, no Docker): each run gets its own ANSIBLE_HOME and temp directory
under ``tmp_path`` and sees only this checkout as the npu.fleet collection.
"""

import json
import os
import subprocess
import sys

from collection_link import link_collection

COLLECTIONS_PATH = link_collection()

ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def local_inventory(npu_hosts, host_vars=None):
    """npu_hosts (names, with optional variables per host) plus localhost, all on the local connection."""
    hosts = dict((name, dict((host_vars or {}).get(name) or {})) for name in npu_hosts)
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    return {"all": {"children": {"npu_hosts": {"hosts": hosts}}, "hosts": {"localhost": dict(local)}, "vars": local}}


def run_playbook(tmp_path, playbook, inventory, extra=None, args=()):
    """``ansible-playbook -i <inventory> -e @<extra> [args] <playbook>`` in ``tmp_path``; returns the CompletedProcess."""
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    (tmp_path / "extra.json").write_text(json.dumps(extra or {}))
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_PATH,
        ANSIBLE_HOME=str(tmp_path / "home"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_STDOUT_CALLBACK="default",
    )
    env.pop("ANSIBLE_CONFIG", None)
    command = [ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "inventory.json"), "-e", "@%s" % (tmp_path / "extra.json")]
    return subprocess.run(
        command + list(args) + [str(playbook)], cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300, check=False
    )
