# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: image_selection
short_description: Choose backend and image for every model of the validated catalogue on one Ascend host
version_added: 0.1.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - Applies P(npu.fleet.image_select#filter) to every entry of the catalogue validated by M(npu.fleet.model_catalogue)
    (each carries its C(profile)), with the entry's own C(backend), C(image), C(force) and C(vllm_min_version) over
    O(defaults).
  - A refused pin or a C(backend=vllm) with no fitting image fails with the model, the host and the reason.
positional: _input
options:
  _input:
    description: The validated catalogue (C(npu_fleet_catalogue)).
    type: list
    elements: dict
    required: true
  host:
    description: The host's NPU facts (C(ansible_facts.npu)).
    type: dict
    required: true
  host_name:
    description: Inventory name of the host, for messages.
    type: str
    default: this host
  defaults:
    description: Play-wide wishes - C(backend), C(vllm_min_version), C(os), C(architecture_minimum); empty values are ignored.
    type: dict
    default: {}
  overrides:
    description: Merged over the shipped compatibility data (C(docs/compatibility.md), "Overriding from inventory").
    type: dict
    default: {}
  keep_refused:
    description:
      - Instead of failing on a refused model, keep it as that model's entry - C(backend) and C(image) null, the reason
        in C(refused) - so that every refusal of every host can be shown (P(npu.fleet.image_selection_summary#filter))
        before the hosts stop. The npu.fleet.image_select role does so, then fails each host with a refusal.
    type: bool
    default: false
    version_added: 0.2.0
"""

EXAMPLES = r"""
---
- name: Choose backend and image per model
  ansible.builtin.set_fact:
    npu_image_selection: "{{ npu_fleet_catalogue | npu.fleet.image_selection(host=ansible_facts.npu, host_name=inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description:
    - Model name to the selection (C(backend), C(image), C(vllm_ascend_version), C(reasons), C(warnings), C(rejected), C(build)).
    - With O(keep_refused=true), a refused model's entry has C(refused) (the reason) and null C(backend) and C(image).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.npu.fleet.plugins.module_utils._compat_data import CompatDataError, load_matrix
from ansible_collections.npu.fleet.plugins.module_utils._image_select import ImageSelectError
from ansible_collections.npu.fleet.plugins.module_utils._image_select import image_selection as _image_selection


def image_selection(models, host, host_name="this host", defaults=None, overrides=None, keep_refused=False):
    """Thin wrapper over module_utils/_image_select.py."""
    if not isinstance(keep_refused, bool):
        raise AnsibleFilterError("image_selection: keep_refused must be true or false, got %r" % (keep_refused,))
    try:
        return _image_selection(models, host, defaults, load_matrix(overrides or None), host_name, keep_refused)
    except (ImageSelectError, CompatDataError, ValueError, TypeError) as exc:
        raise AnsibleFilterError("image_selection: %s" % exc) from exc


class FilterModule:
    """npu.fleet.image_selection"""

    def filters(self):
        return {"image_selection": image_selection}
