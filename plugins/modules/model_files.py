#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: model_files
short_description: Verify a model directory, plan a copy into it and check the disk has room
version_added: 0.3.0
description:
  - Checks a checkpoint directory on the host where the module runs - C(config.json) is there and parses, every shard
    C(model.safetensors.index.json) (or C(pytorch_model.bin.index.json)) names is there, and every C(*.safetensors) file
    is exactly as long as its header declares (8 bytes + header + the end of the last tensor's data), which catches an
    interrupted copy or download - and lists its files with their sizes.
  - Only the safetensors headers are read, never tensor data, unless O(checksums) is set (or O(expected_files) needs a
    checksum to compare).
  - With O(expected_files) (the files of the source - the controller's directory, or a hub revision - as
    M(npu.fleet.model_files) with O(checksums=true) lists them there), returns what to copy (RV(copy)) and checks the
    free space for it.
  - Always returns the free space of the filesystem that holds (or will hold) O(path), measured at O(path) or its
    nearest existing parent; fails when O(need_bytes), or the bytes to copy, do not fit.
  - Read-only; never reports a change.
author:
  - npu.fleet engineers (@npu-fleet)
options:
  path:
    description:
      - The model directory on the host where the module runs; it need not exist (then RV(ok) is false and the free
        space is measured at its nearest existing parent).
      - One of O(path) and O(paths) is required.
    type: path
  paths:
    description:
      - Several model directories, each checked as O(path) is, in one run; the result lists them in RV(directories).
      - Exclusive with O(path); takes no O(expected_files) nor O(need_bytes).
    type: list
    elements: path
  checksums:
    description:
      - Add the sha256 of every file to RV(files). Every byte is read, so this takes time on checkpoints of many
        gigabytes; the default checks sizes and headers only.
    type: bool
    default: false
  expected_files:
    description:
      - The files the directory should hold, each with C(name) (relative, with C(/)), C(size) and optionally
        C(sha256) - RV(files) of this module run on the source with O(checksums=true).
      - When given, RV(copy) says which files to copy (missing, size or sha256 different, or failing verification)
        and which are extra, files of the same size are hashed where the source has a sha256, and the free space is
        checked against the bytes to copy (unless O(need_bytes) is given).
    type: list
    elements: dict
  need_bytes:
    description:
      - Bytes about to be written under O(path); the module fails when the filesystem has less free.
    type: int
  fail_on_problems:
    description:
      - Fail, with one message naming the host, the path and each problem with its fix, when the directory is not a
        complete checkpoint.
      - Set V(false) before a copy or download, when an empty or partial directory is expected.
    type: bool
    default: true
  host_name:
    description:
      - The host's name in messages; roles pass C(inventory_hostname). Default the machine's own host name.
    type: str
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
notes:
  - Hidden directories (C(.cache), where the hub clients keep their download state) are not part of the model and are
    not listed.
  - A file is copied when its size differs or both sides have a sha256 that differs; with no sha256 on one side, equal
    sizes count as the same file.
  - The need is the full size of every file to copy (a replaced file exists twice while it is copied); the free space
    is what an unprivileged writer may use (C(f_bavail)).
  - How weights get to the hosts, and where this module runs in that, is in the collection's C(docs/model-sources.md).
seealso:
  - module: npu.fleet.model_profile
"""

EXAMPLES = r"""
---
- name: Verify the weights already on the host
  npu.fleet.model_files:
    path: /data/models/Qwen3-8B
    host_name: "{{ inventory_hostname }}"

- name: List the controller's copy with checksums
  npu.fleet.model_files:
    path: /srv/models/Qwen3-8B
    checksums: true
  delegate_to: localhost
  run_once: true
  become: false
  register: controller_files

- name: Work out what to copy to this host, and check it has room
  npu.fleet.model_files:
    path: /data/models/qwen3-8b
    expected_files: "{{ controller_files.files }}"
    fail_on_problems: false
    host_name: "{{ inventory_hostname }}"
  register: host_files

- name: Copy only what is missing or different
  ansible.builtin.copy:
    src: "/srv/models/Qwen3-8B/{{ item.name }}"
    dest: "/data/models/qwen3-8b/{{ item.name }}"
    mode: "0644"
  loop: "{{ host_files.copy.files }}"
  loop_control:
    label: "{{ item.name }} ({{ item.reason }})"
"""

RETURN = r"""
directories:
  description:
    - With O(paths), one result per directory, in the order given, each with C(directory) and the keys below
      (C(exists), C(ok), C(problems), C(files), C(bytes)); the other keys are not returned then.
  returned: with O(paths)
  type: list
  elements: dict
exists:
  description: Whether O(path) is a directory.
  returned: with O(path)
  type: bool
  sample: true
ok:
  description: Whether the directory is a complete checkpoint (no problem found).
  returned: with O(path)
  type: bool
  sample: false
problems:
  description: What is wrong, one entry per file.
  returned: with O(path)
  type: list
  elements: dict
  contains:
    file:
      description: The file, relative to O(path); null for the directory itself.
      type: str
      sample: model-00002-of-00005.safetensors
    what:
      description: What is wrong with it.
      type: str
      sample: "is truncated: 1,048,576 bytes on disk, 3,963,750,880 bytes expected from its header (8 + 22560 header + 3963728312 data);
        3,962,702,304 bytes missing"
    fix:
      description: What to do about it.
      type: str
      sample: "copy or download this file again: the transfer was interrupted or damaged"
files:
  description: The files of the directory (hidden directories left out), sorted by name.
  returned: with O(path)
  type: list
  elements: dict
  contains:
    name:
      description: Path relative to O(path), with C(/).
      type: str
      sample: model-00001-of-00005.safetensors
    size:
      description: Bytes.
      type: int
      sample: 3963750880
    sha256:
      description: Hex digest; only with O(checksums) or when O(expected_files) needed it.
      type: str
      sample: 4f1a0d2e8b1c5e9d7a3f6b2c8e0d1f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e
bytes:
  description: Total bytes of RV(files).
  returned: with O(path)
  type: int
  sample: 16381470720
free_bytes:
  description: Bytes free for an unprivileged writer on the filesystem of O(path).
  returned: with O(path)
  type: int
  sample: 1099511627776
free_path:
  description: Where the free space was measured - O(path), or its nearest existing parent.
  returned: with O(path)
  type: str
  sample: /data
need_bytes:
  description: The bytes checked against RV(free_bytes) - O(need_bytes), or RV(copy.bytes) - or null.
  returned: with O(path)
  type: int
  sample: 3963750880
copy:
  description: What to copy from the source described by O(expected_files).
  returned: when O(expected_files) is given
  type: dict
  contains:
    files:
      description: Files to copy, with C(name), C(size) and C(reason) (C(missing), C(size differs ...), C(sha256 differs), C(failed verification)).
      type: list
      elements: dict
      sample: [{name: model-00002-of-00005.safetensors, size: 3963750880, reason: "size differs: 1,048,576 bytes here, 3,963,750,880 bytes at the source"}]
    extra:
      description: Files here that the source does not have; nothing deletes them.
      type: list
      elements: str
      sample: [notes.txt]
    same:
      description: Files that need no copy.
      type: list
      elements: str
      sample: [config.json]
    bytes:
      description: Bytes of RV(copy.files).
      type: int
      sample: 3963750880
"""

import platform

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.npu.fleet.plugins.module_utils._model_files import (
    ModelFilesError,
    add_checksums,
    copy_plan,
    describe_problems,
    free_space,
    names_to_hash,
    space_error,
    verify_model_dir,
)


def main():
    """Argument spec, calls into module_utils, error mapping."""
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path"},
            "paths": {"type": "list", "elements": "path"},
            "checksums": {"type": "bool", "default": False},
            "expected_files": {"type": "list", "elements": "dict"},
            "need_bytes": {"type": "int"},
            "fail_on_problems": {"type": "bool", "default": True},
            "host_name": {"type": "str"},
        },
        mutually_exclusive=[("path", "paths")],
        required_one_of=[("path", "paths")],
        supports_check_mode=True,
    )
    host = module.params["host_name"] or platform.node()
    if module.params["paths"] is not None:
        verify_many(module, host)
    path, expected = module.params["path"], module.params["expected_files"]
    result = verify_model_dir(path, checksums=module.params["checksums"])
    # Not returned: a result with 'path' gets the directory's owner, mode and so on added by AnsibleModule.
    del result["path"]
    need = module.params["need_bytes"]
    if need is not None and need < 0:
        module.fail_json(msg="need_bytes must be 0 or more, got %d" % need)
    if expected is not None:
        try:
            add_checksums(path, result["files"], names_to_hash(expected, result["files"], "expected_files"), result["problems"])
            broken = [problem["file"] for problem in result["problems"] if problem["file"]]
            result["copy"] = copy_plan(expected, result["files"], broken=broken, source_label="expected_files")
        except ModelFilesError as exc:
            module.fail_json(msg=str(exc))
        result["ok"] = not result["problems"]
        if need is None:
            need = result["copy"]["bytes"]
    try:
        result["free_bytes"], result["free_path"] = free_space(path)
    except OSError as exc:
        module.fail_json(msg="%s: %s: cannot measure free space: %s" % (host, path, exc), **result)
    result["need_bytes"] = need
    if need is not None:
        message = space_error(need, result["free_bytes"], path, host=host, checked_at=result["free_path"])
        if message:
            module.fail_json(msg=message, changed=False, **result)
    if module.params["fail_on_problems"] and result["problems"]:
        module.fail_json(msg=describe_problems(path, result["problems"], host=host), changed=False, **result)
    module.exit_json(changed=False, **result)


def verify_many(module, host):
    """O(paths): every directory checked in one run (a host serving many models pays one module call)."""
    if module.params["expected_files"] is not None or module.params["need_bytes"] is not None:
        module.fail_json(msg="paths checks directories only: give expected_files and need_bytes with path, one directory")
    directories, messages = [], []
    for path in module.params["paths"]:
        result = verify_model_dir(path, checksums=module.params["checksums"])
        result["directory"] = result.pop("path")
        directories.append(result)
        if result["problems"]:
            messages.append(describe_problems(path, result["problems"], host=host))
    if module.params["fail_on_problems"] and messages:
        module.fail_json(msg="; ".join(messages), changed=False, directories=directories)
    module.exit_json(changed=False, directories=directories)


if __name__ == "__main__":
    main()
