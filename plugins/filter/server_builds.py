# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: server_builds
short_description: The Transformers server images a host needs, tagged by content
version_added: 0.1.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - For the Transformers replicas of one host, names the server image to run - the image selection's repository,
    tagged with a hash of the server files, the base image and the torch / torch_npu build arguments - and says which
    of those images the host already has, so the build context is copied and built only when one is missing.
positional: _input
options:
  _input:
    description: The plan's C(placements) (all hosts; only the Transformers ones of O(host) are used).
    type: list
    elements: dict
    required: true
  host:
    description: Inventory name of the host.
    type: str
    required: true
  selection:
    description: The host's C(npu_image_selection) (model to choice, with C(build)).
    type: dict
    required: true
  content:
    description: Digest of the server's files (P(npu.fleet.content_digest#lookup)).
    type: str
    required: true
  base_override:
    description: Base image used instead of every selection's C(build.base_image); empty keeps those.
    type: str
    default: ""
  present:
    description: Image names (C(repository:tag)) the host already has.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
---
- name: Name the server images of this host
  ansible.builtin.set_fact:
    builds: >-
      {{ plan.placements | npu.fleet.server_builds(host=inventory_hostname, selection=npu_image_selection,
         content=lookup('npu.fleet.content_digest', role_path ~ '/files/transformers_server')) }}
"""

RETURN = r"""
_value:
  description: C(images) (model to image), C(builds) (C(image), C(base), C(torch), C(torch_npu), C(present)) and C(missing).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.npu.fleet.plugins.module_utils._server_image import ServerImageError
from ansible_collections.npu.fleet.plugins.module_utils._server_image import server_builds as _server_builds


def server_builds(placements, host, selection, content, base_override="", present=None):
    """Thin wrapper over module_utils/_server_image.py."""
    try:
        return _server_builds(placements, host, selection, content, base_override, present)
    except ServerImageError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """npu.fleet.server_builds"""

    def filters(self):
        return {"server_builds": server_builds}
