# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: content_digest
short_description: SHA-256 of the contents of a directory tree on the controller
version_added: 0.1.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - Hashes every file under each given directory (relative path and content, in sorted order; C(*.pyc) and
    C(__pycache__) left out), in the controller process - no module runs, so it costs microseconds where a
    M(ansible.builtin.find) with checksums costs a task.
  - The serve role tags the Transformers server image with it, so a host that has the image for this content builds
    nothing and receives no build context.
options:
  _terms:
    description: Directories on the controller.
    required: true
    type: list
    elements: path
"""

EXAMPLES = r"""
---
- name: Fingerprint the server files
  ansible.builtin.set_fact:
    server_digest: "{{ lookup('npu.fleet.content_digest', role_path ~ '/files/transformers_server') }}"
"""

RETURN = r"""
_raw:
  description: One hex SHA-256 per directory.
  type: list
  elements: str
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.npu.fleet.plugins.module_utils._server_image import tree_digest


class LookupModule(LookupBase):
    """npu.fleet.content_digest"""

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        try:
            return [tree_digest(str(term)) for term in terms]
        except OSError as exc:
            raise AnsibleLookupError("content_digest: cannot read %s: %s" % (exc.filename, exc.strerror)) from exc
