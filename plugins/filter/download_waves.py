# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: download_waves
short_description: Which wave each downloading host fetches its hub models in
version_added: 0.3.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - Hosts of O(hosts) (in that order) that the plan gives a hub-source model are put in waves of O(concurrency) hosts, so
    a fleet does not pull from one mirror on every host at once (C(npu_fleet_download_concurrency)).
positional: _input, catalogue, hosts, concurrency
options:
  _input:
    description: The plan (M(npu.fleet.fleet_plan)'s C(plan)).
    type: dict
    required: true
  catalogue:
    description: The validated catalogue.
    type: list
    elements: dict
    required: true
  hosts:
    description: The inventory hosts, in order.
    type: list
    elements: str
    required: true
  concurrency:
    description: Hosts per wave; 0 or less, all at once.
    type: int
    required: true
"""

EXAMPLES = r"""
---
- name: Plan the download waves
  ansible.builtin.set_fact:
    waves: "{{ plan | npu.fleet.download_waves(npu_fleet_catalogue, ansible_play_hosts_all, 4) }}"
"""

RETURN = r"""
_value:
  description: C(waves) (how many) and C(wave) (host to wave index; hosts with nothing to download are absent).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.npu.fleet.plugins.module_utils._model_sources import download_waves as _download_waves


def download_waves(plan, catalogue, hosts, concurrency):
    """Thin wrapper over module_utils/_model_sources.py."""
    try:
        return _download_waves(plan, catalogue, hosts, concurrency)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    """npu.fleet.download_waves"""

    def filters(self):
        return {"download_waves": download_waves}
