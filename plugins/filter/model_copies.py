# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: model_copies
short_description: The file copies that bring controller-source models up to date on a host
version_added: 0.3.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - From M(npu.fleet.model_files) results run on the host with C(expected_files) (the controller copy's files and
    checksums; each with the P(npu.fleet.model_sources_here#filter) record as C(item)), the files to copy - missing,
    of another size or checksum, or failing verification - and nothing else.
positional: _input
options:
  _input:
    description: The registered C(results) of that loop.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
---
- name: Copy what differs
  ansible.builtin.copy:
    src: "{{ item.src }}"
    dest: "{{ item.dest }}"
    mode: "0644"
  loop: "{{ compared.results | npu.fleet.model_copies }}"
"""

RETURN = r"""
_value:
  description: One dict per file with C(name) (the model), C(src), C(dest), C(size) and C(reason).
  type: list
  elements: dict
"""

from ansible_collections.npu.fleet.plugins.module_utils._model_sources import copies


def model_copies(comparisons):
    """Thin wrapper over module_utils/_model_sources.py."""
    return copies(comparisons)


class FilterModule:
    """npu.fleet.model_copies"""

    def filters(self):
        return {"model_copies": model_copies}
