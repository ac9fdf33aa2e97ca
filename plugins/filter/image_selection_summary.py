# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: image_selection_summary
short_description: One line per model saying which backend and image it gets on which hosts, or why it is refused
version_added: 0.2.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - Reads the result of P(npu.fleet.image_selection#filter) (with O(npu.fleet.image_selection#filter:keep_refused=true))
    of every host and writes one line per model - the backend and image per group of hosts, why the Transformers
    fallback is used instead of vLLM, how many warnings there are, or the reason a host refuses the model.
  - Hosts that share a model's backend, image and reason share one clause; at most O(limit) host names are written per
    clause.
  - The per-host reasons and warnings are the detailed view; the npu.fleet.image_select role prints them at
    verbosity 1 (C(-v)).
positional: _input
options:
  _input:
    description: Host name to that host's image selection (model name to its selection), in inventory order.
    type: dict
    required: true
  limit:
    description: Host names written per clause before the rest are counted.
    type: int
    default: 5
"""

EXAMPLES = r"""
---
- name: Show the choice per model
  ansible.builtin.debug:
    msg: >-
      {{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'npu_image_selection')))
         | npu.fleet.image_selection_summary }}
  run_once: true
# qwen3-8b: vllm quay.io/ascend/vllm-ascend:v0.14.0rc1 on npu-a2-01, npu-a2-02
# glm-ocr: transformers npu-fleet/transformers-server:cann8.2.rc1-... on npu-a2-01 (vLLM cannot serve it: ...)
"""

RETURN = r"""
_value:
  description: One line per model, in the order the models first appear.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.npu.fleet.plugins.module_utils._image_select import selection_summary


def image_selection_summary(outcomes, limit=5):
    """Thin wrapper over module_utils/_image_select.py."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise AnsibleFilterError("image_selection_summary: limit must be a positive integer, got %r" % (limit,))
    try:
        return selection_summary(outcomes, limit)
    except (ValueError, TypeError) as exc:
        raise AnsibleFilterError("image_selection_summary: %s" % exc) from exc


class FilterModule:
    """npu.fleet.image_selection_summary"""

    def filters(self):
        return {"image_selection_summary": image_selection_summary}
