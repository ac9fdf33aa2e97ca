#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gateway_files
short_description: Write the gateway's HAProxy files on a host, checked by the image's own haproxy -c first
version_added: 0.2.0
description:
  - Makes O(dir) (C(conf/) owned by root and readable by the HAProxy group, C(run/) owned by the HAProxy user for its
    runtime socket) and brings the files in C(conf/) to O(files).
  - When any file differs, the whole new set is written to a staging directory and checked with
    C(docker run --rm --network none <image> haproxy -c) first; only a set HAProxy accepts replaces the files (each
    renamed into place), so the running gateway never reloads a configuration it would refuse. A refused set fails the
    task with HAProxy's message and leaves the running files as they were.
  - One task instead of a directory, copy and validate task per file keeps a no-change re-run fast.
author:
  - npu.fleet engineers (@npu-fleet)
options:
  dir:
    description: The gateway's directory on the host.
    type: path
    required: true
  uid:
    description: uid and gid of the HAProxy user of the image (99 in the official image).
    type: int
    default: 99
  files:
    description: File name in C(conf/) to its content (C(haproxy.cfg) and the files it reads).
    type: dict
    required: true
  image:
    description: The HAProxy image whose C(haproxy -c) checks the files; V(null) skips the check.
    type: str
  config_dir:
    description: Where the image reads its configuration (the directory C(conf/) is mounted on).
    type: str
    default: /usr/local/etc/haproxy
attributes:
  check_mode:
    description: Reports which files would change and writes nothing.
    support: full
  diff_mode:
    description: Shows the change of C(haproxy.cfg).
    support: full
notes:
  - Needs the Docker CLI on the host for the check.
seealso:
  - module: npu.fleet.gateway_layout
"""

EXAMPLES = r"""
---
- name: Write the gateway configuration
  npu.fleet.gateway_files:
    dir: /var/lib/npu-fleet/gateway
    image: haproxy:2.6
    files:
      haproxy.cfg: "{{ layout.config }}"
      models.json: "{{ layout.models_json }}"
      models.map: "{{ layout.model_map }}"
"""

RETURN = r"""
changed_files:
  description: The files that were (or in check mode would be) replaced.
  returned: always
  type: list
  elements: str
  sample: [haproxy.cfg, models.map]
"""

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def _ensure_dir(module, path, owner, group, mode):
    if not os.path.isdir(path):
        if module.check_mode:
            return True
        os.makedirs(path)
    stat = os.stat(path)
    if (stat.st_uid, stat.st_gid, stat.st_mode & 0o7777) == (owner, group, mode):
        return False
    if not module.check_mode:
        os.chown(path, owner, group)
        os.chmod(path, mode)
    return True


def main():
    module = AnsibleModule(
        argument_spec={
            "dir": {"type": "path", "required": True},
            "uid": {"type": "int", "default": 99},
            "files": {"type": "dict", "required": True},
            "image": {"type": "str"},
            "config_dir": {"type": "str", "default": "/usr/local/etc/haproxy"},
        },
        supports_check_mode=True,
    )
    base, uid = module.params["dir"], module.params["uid"]
    conf = os.path.join(base, "conf")
    files = dict((str(name), str(content)) for name, content in module.params["files"].items())
    for name in files:
        if os.path.basename(name) != name or name.startswith("."):
            module.fail_json(msg="gateway file name %r must be a plain file name in %s" % (name, conf))
    changed = _ensure_dir(module, base, 0, 0, 0o755)
    changed = _ensure_dir(module, conf, 0, uid, 0o750) or changed
    changed = _ensure_dir(module, os.path.join(base, "run"), uid, uid, 0o770) or changed
    before = dict((name, _read(os.path.join(conf, name))) for name in files)
    changed_files = sorted(name for name, content in files.items() if before[name] != content)
    diff = {
        "before": before.get("haproxy.cfg") or "",
        "after": files.get("haproxy.cfg", ""),
        "before_header": "haproxy.cfg",
        "after_header": "haproxy.cfg",
    }
    if not changed_files or module.check_mode:
        module.exit_json(changed=changed or bool(changed_files), changed_files=changed_files, diff=diff)

    staging = tempfile.mkdtemp(prefix=".staging-", dir=conf)
    try:
        os.chmod(staging, 0o750)
        os.chown(staging, 0, uid)
        for name, content in files.items():
            path = os.path.join(staging, name)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(content)
            os.chown(path, 0, uid)
            os.chmod(path, 0o640)
        if module.params["image"]:
            docker = module.get_bin_path("docker", required=True)
            command = [
                docker,
                "run",
                "--rm",
                "--network",
                "none",
                "--user",
                "0:0",
                "-v",
                "%s:%s:ro" % (staging, module.params["config_dir"]),
            ]
            command += [module.params["image"], "haproxy", "-c", "-q", "-f", module.params["config_dir"] + "/haproxy.cfg"]
            rc, out, err = module.run_command(command)
            if rc != 0:
                module.fail_json(
                    msg="HAProxy (%s) refuses the new gateway configuration; the running one is unchanged: %s"
                    % (module.params["image"], (err or out).strip()[-2000:]),
                    rc=rc,
                )
        for name in changed_files:
            os.replace(os.path.join(staging, name), os.path.join(conf, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    module.exit_json(changed=True, changed_files=changed_files, diff=diff)


if __name__ == "__main__":
    main()
