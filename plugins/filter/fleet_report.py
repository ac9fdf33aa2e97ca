# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: fleet_report
short_description: The end-of-run deployment report, per host, as data and Markdown
version_added: 0.1.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - Joins the plan (M(npu.fleet.fleet_plan)), the health probe results and the model profiles into one row per replica -
    model, params, architecture, backend, image, host, chips, port, max_model_len, status, TTFT - plus the replicas
    that could not be placed and the diagnosis of each failure.
positional: _input
options:
  _input:
    description: The plan.
    type: dict
    required: true
  probes:
    description: Health probe results of all hosts (C(health_probe_results) of each host, concatenated).
    type: list
    elements: dict
    required: true
  profiles:
    description: Model name to profile (M(npu.fleet.model_profile)).
    type: dict
    required: true
  check_mode:
    description: Whether the run was in check mode (replicas then show as planned).
    type: bool
    default: false
"""

EXAMPLES = r"""
---
- name: Build the report
  ansible.builtin.set_fact:
    report: "{{ plan | npu.fleet.fleet_report(probes, profiles, ansible_check_mode) }}"
"""

RETURN = r"""
_value:
  description: C(rows), C(unplaced), C(totals) and C(markdown).
  type: dict
"""

from ansible_collections.npu.fleet.plugins.module_utils._report import build_report, render_markdown


def fleet_report(plan, probes, profiles, check_mode=False):
    """Thin wrapper over module_utils/_report.py."""
    report = build_report(plan, probes, profiles, check_mode)
    report["markdown"] = render_markdown(report)
    return report


class FilterModule:
    """npu.fleet.fleet_report"""

    def filters(self):
        return {"fleet_report": fleet_report}
