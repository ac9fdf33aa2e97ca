# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: model_source_records
short_description: What the report says about each model's weights on a host
version_added: 0.3.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - Joins the P(npu.fleet.model_sources_here#filter) records of a host with the results of the sources stage - the
    final M(npu.fleet.model_files) check, the M(npu.fleet.hub_fetch) downloads and the file copies - into one row per
    model - source, revision, directory, bytes on disk, bytes fetched and files copied by this run.
positional: _input, verified, fetched, copied
options:
  _input:
    description: The records.
    type: list
    elements: dict
    required: true
  verified:
    description: The C(directories) of the final M(npu.fleet.model_files) check (run with C(paths)).
    type: list
    elements: dict
  fetched:
    description: The M(npu.fleet.download_wait) C(results).
    type: list
    elements: dict
  copied:
    description: Registered C(results) of the copy loop.
    type: list
    elements: dict
"""

EXAMPLES = r"""
---
- name: Record the sources for the report
  ansible.builtin.set_fact:
    model_sources_results: "{{ here | npu.fleet.model_source_records(verified.directories, [], copied.results) }}"
"""

RETURN = r"""
_value:
  description: One dict per model with C(model), C(source), C(revision), C(path), C(bytes), C(fetched_bytes), C(copied_files).
  type: list
  elements: dict
"""

from ansible_collections.npu.fleet.plugins.module_utils._model_sources import source_records


def model_source_records(records, verified=None, fetched=None, copied=None):
    """Thin wrapper over module_utils/_model_sources.py."""
    return source_records(records, verified or [], fetched or [], copied or [])


class FilterModule:
    """npu.fleet.model_source_records"""

    def filters(self):
        return {"model_source_records": model_source_records}
