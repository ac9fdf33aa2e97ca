#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: download_wait
short_description: Wait for async model downloads on a host and show how far each one is
version_added: 0.3.0
description:
  - Polls the async jobs of M(npu.fleet.hub_fetch) tasks started with C(poll=0) on the target, and at every round prints
    one line per download - bytes done of total, files done, the file being fetched - from the progress file the
    module writes, until every job finished.
  - Returns each job's final result; fails when a download failed (with its message) or did not finish within
    O(timeout).
  - Runs as an action plugin (it drives C(async_status) and C(slurp) on the target); changes nothing itself.
author:
  - npu.fleet engineers (@npu-fleet)
options:
  jobs:
    description:
      - The downloads to wait for - the registered C(results) of an async M(npu.fleet.hub_fetch) loop over
        P(npu.fleet.model_sources_here#filter) records (C(ansible_job_id), and C(item) with C(name) and C(host_path) - the
        progress file is then the module's default under C(host_path)), or ready jobs with C(jid), C(name),
        C(progress_file). Entries without a job id (skipped) are left out.
    type: list
    elements: dict
    required: true
  interval:
    description: Seconds between two rounds.
    type: int
    default: 10
  timeout:
    description: Seconds to wait for all jobs before failing (the async jobs go on running).
    type: int
    default: 21600
extends_documentation_fragment:
  - action_common_attributes
  - action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: npu.fleet.hub_fetch
  - module: ansible.builtin.async_status
"""

EXAMPLES = r"""
---
- name: Start the download
  npu.fleet.hub_fetch:
    repo: Qwen/Qwen3-8B
    revision: 0123456789abcdef0123456789abcdef01234567
    dest: /data/models/qwen3-8b
    progress_file: /data/models/qwen3-8b/.cache/npu-fleet/progress.json
  async: 21600
  poll: 0
  register: started

- name: Wait for it, one progress line per round
  npu.fleet.download_wait:
    jobs:
      - jid: "{{ started.ansible_job_id }}"
        name: qwen3-8b
        progress_file: /data/models/qwen3-8b/.cache/npu-fleet/progress.json

- name: Wait for the downloads a loop started
  npu.fleet.download_wait:
    jobs: "{{ downloads.results }}"
"""

RETURN = r"""
results:
  description: The final result of each job (what M(npu.fleet.hub_fetch) returned), with C(name) and C(item), sorted by job id.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    """Only reached without the action plugin (the module copied and run by hand): fail and say why."""
    module = AnsibleModule(
        argument_spec={
            "jobs": {"type": "list", "elements": "dict", "required": True},
            "interval": {"type": "int", "default": 10},
            "timeout": {"type": "int", "default": 21600},
        },
        supports_check_mode=True,
    )
    module.fail_json(msg="npu.fleet.download_wait runs as an action plugin on the controller; call it as a task, not as a module on a host")


if __name__ == "__main__":
    main()
