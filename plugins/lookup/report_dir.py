# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: report_dir
short_description: The controller directory of npu.fleet's reports
version_added: 0.2.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - C(npu_fleet_report_dir) when set; else C(npu-fleet-report) under the job's artifacts when the run is under
    ansible-runner or AWX (C(AWX_ISOLATED_DATA_DIR), which ansible-runner sets); else C(npu-fleet-report) next to the
    playbook (C(playbook_dir)), or under the working directory when the playbook is inside an installed collection.
  - With a term, that subdirectory of it (the status report goes to C(status)).
options:
  _terms:
    description: An optional subdirectory.
    type: list
    elements: str
    required: false
"""

EXAMPLES = r"""
---
- name: Where the status report goes
  ansible.builtin.debug:
    msg: "{{ lookup('npu.fleet.report_dir', 'status') }}"
"""

RETURN = r"""
_raw:
  description: One absolute or inventory-relative directory path.
  type: list
  elements: path
"""

import os

from ansible.plugins.lookup import LookupBase

from ansible_collections.npu.fleet.plugins.module_utils._report_dir import report_dir


class LookupModule(LookupBase):
    """npu.fleet.report_dir"""

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        explicit = variables.get("npu_fleet_report_dir")
        if explicit is not None and self._templar is not None:
            explicit = self._templar.template(explicit)
        subdir = terms[0] if terms else None
        return [
            report_dir(
                explicit=explicit,
                runner_artifacts=os.environ.get("AWX_ISOLATED_DATA_DIR"),
                playbook_dir=variables.get("playbook_dir"),
                cwd=os.environ.get("PWD") or os.getcwd(),
                subdir=subdir,
            )
        ]
