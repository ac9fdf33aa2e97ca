#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: hub_fetch
short_description: Download a model from Hugging Face, a mirror or ModelScope onto this host, resumable and verified
version_added: 0.3.0
description:
  - Runs on the NPU host. Downloads the files of a hub repository at a pinned revision that O(allow_patterns) select into
    O(dest), with the hub's own client - C(huggingface_hub) (any Hugging Face-compatible O(endpoint), such as a mirror) or
    ModelScope's C(snapshot_download) - and brings O(dest) to hold exactly those files, each verified.
  - "Before downloading: the files in O(dest) are compared with the hub's listing - a file is kept when its size and its
    checksum match (sha256 for LFS files and for every ModelScope file, the git blob sha1 for the Hub's other files);
    a missing, truncated or corrupted one is fetched again. Then free space on O(dest)'s filesystem is checked against
    the bytes still to come, and the module fails naming the host, the path, the bytes needed and the bytes free before
    anything is written."
  - Downloads land under C(<dest>/.cache/npu-fleet/partial) and a file appears at its final path only once complete and
    verified, so nothing half-written is ever visible there. An interrupted download (the hub or the network went away,
    the task was killed) keeps what it received, and the next run resumes it with an HTTP C(Range) request.
  - Progress (bytes done and total, files done and total, the files in flight) is written to a small JSON file,
    O(progress_file), that a play can read while the module runs as an C(async) task.
  - Returns C(changed=false) when every file was present and verified; in check mode it reports what it would fetch and
    fetches nothing.
  - The token is never logged, never written to a file and never part of a message; a refused token gives one message
    naming the repository and the endpoint.
author:
  - npu.fleet engineers (@npu-fleet)
requirements:
  - The Python package C(huggingface_hub) (0.23 or later) on the host for O(hub=huggingface), C(modelscope) (tested with
    1.40) for O(hub=modelscope). Nothing else beyond the standard library.
options:
  hub:
    description:
      - Which hub's client and API to use. V(huggingface) also covers its mirrors (set O(endpoint)).
    type: str
    choices: [huggingface, modelscope]
    default: huggingface
  repo:
    description:
      - The repository id as the hub shows it, such as V(Qwen/Qwen3-8B).
    type: str
    required: true
  revision:
    description:
      - The commit to download. Pin the 40-character commit sha (P(npu.fleet.hub_profile#module) returns the one a branch
        resolved to), so every host gets the files that were profiled; a branch or tag works with a warning.
      - Default V(main) on Hugging Face, V(master) on ModelScope (with a warning).
    type: str
  endpoint:
    description:
      - Address of the hub or of a mirror, such as V(https://hf-mirror.com). Default V(https://huggingface.co) or
        V(https://www.modelscope.cn). No credentials in it.
    type: str
  token:
    description:
      - Access token for private or gated repositories. Never logged.
    type: str
  dest:
    description:
      - Absolute model directory on the host; created when missing. Files of the repository that the patterns do not
        select, and other files already there, are left alone.
    type: path
    required: true
  allow_patterns:
    description:
      - Glob patterns of the files to download (the same rules as C(huggingface_hub)'s C(allow_patterns)).
      - Default the weights (C(*.safetensors) and their index), C(config.json), C(generation_config.json), tokenizer
        files, chat templates, processor configs, C(quant_model_description*.json) and the code of C(trust_remote_code)
        models; never the whole repository.
      - A selection that leaves out C(config.json) or a shard the index names is refused.
    type: list
    elements: str
  ignore_patterns:
    description:
      - Glob patterns of files to leave out even when O(allow_patterns) takes them.
    type: list
    elements: str
  verify:
    description:
      - How files already in O(dest) are checked.
      - V(cached) hashes a file of the right size once and records a stamp (size, modification time, checksum) under
        C(<dest>/.cache/npu-fleet/verified.json); later runs hash it again only when its size or modification time
        changed. A file modified in place is detected; bit rot that keeps the modification time is not.
      - V(full) hashes every file on every run (hundreds of gigabytes take minutes).
      - V(size) compares sizes only.
    type: str
    choices: [cached, full, size]
    default: cached
  max_workers:
    description:
      - Files downloaded at once.
    type: int
    default: 4
  timeout:
    description:
      - Seconds to wait for each HTTP request of the file listing and metadata.
    type: int
    default: 60
  progress_file:
    description:
      - Where to write the progress JSON (C(state), C(bytes_done), C(bytes_total), C(files_done), C(files_total),
        C(current), C(updated)). Default C(<dest>/.cache/npu-fleet/progress.json).
    type: path
  host_label:
    description:
      - How messages name this host (for example the play's C(inventory_hostname)); default its host name.
    type: str
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
notes:
  - Proxies come from the usual C(https_proxy) / C(no_proxy) environment variables (set them with the task's
    C(environment)).
  - C(huggingface_hub) reads the body in 10 MiB chunks, so an interruption loses at most the last 10 MiB of a file;
    the rest is resumed.
  - C(huggingface_hub)'s plain HTTP download refuses single files larger than 50 GB (it wants C(hf_xet) for those);
    safetensors shards are far smaller.
seealso:
  - module: npu.fleet.hub_profile
  - module: npu.fleet.model_profile
"""

EXAMPLES = r"""
---
- name: Download Qwen3-8B at the commit it was profiled at, on the hosts that will serve it
  npu.fleet.hub_fetch:
    repo: Qwen/Qwen3-8B
    revision: "{{ qwen3_hub.commit }}"
    dest: /data/models/qwen3-8b
    host_label: "{{ inventory_hostname }}"
  register: qwen3_fetch

- name: Through a mirror, as an async task whose progress a later task reads
  npu.fleet.hub_fetch:
    repo: Qwen/Qwen3-8B
    revision: 0123456789abcdef0123456789abcdef01234567
    endpoint: https://hf-mirror.com
    dest: /data/models/qwen3-8b
  async: 7200
  poll: 0
  register: qwen3_job

- name: Read the progress file while the download runs
  ansible.builtin.slurp:
    src: /data/models/qwen3-8b/.cache/npu-fleet/progress.json
  register: qwen3_progress

- name: From a private ModelScope repository
  npu.fleet.hub_fetch:
    hub: modelscope
    repo: my-org/my-model
    revision: v1.0.0
    token: "{{ vault_modelscope_token }}"
    dest: /data/models/my-model

- name: What would be fetched, fetching nothing
  npu.fleet.hub_fetch:
    repo: Qwen/Qwen3-8B
    revision: 0123456789abcdef0123456789abcdef01234567
    dest: /data/models/qwen3-8b
  check_mode: true
"""

RETURN = r"""
dest:
  description: The model directory.
  returned: success
  type: str
  sample: /data/models/qwen3-8b
commit:
  description: The commit the revision resolved to (null for a ModelScope branch or tag).
  returned: success
  type: str
  sample: 0123456789abcdef0123456789abcdef01234567
revision:
  description: The revision as given (or the default branch).
  returned: success
  type: str
  sample: 0123456789abcdef0123456789abcdef01234567
source:
  description: The source with its defaults filled in (C(hub), C(repo), C(revision), C(endpoint), C(allow_patterns), C(ignore_patterns)); no token.
  returned: success
  type: dict
  sample: {hub: huggingface, repo: Qwen/Qwen3-8B, endpoint: "https://huggingface.co"}
files:
  description: Every selected file and what happened to it.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Path in the repository and under RV(dest).
      type: str
      sample: model-00001-of-00005.safetensors
    size:
      description: Bytes.
      type: int
      sample: 3996250744
    sha256:
      description: The sha256 the hub gives, or null.
      type: str
      sample: 1f0bd4d1aa6b5b7f4d5d8c9ad01ac1e8e94e0d7c5c4a3b2a1f0e9d8c7b6a5f4e
    status:
      description: V(present) (there and verified), V(fetched), or V(would_fetch) in check mode.
      type: str
      sample: present
    reason:
      description: Why a file was (or would be) fetched - missing, size differs, checksum differs.
      type: str
      returned: when fetched
      sample: "size differs: 1048576 bytes here, 3996250744 on the hub (truncated or interrupted)"
fetched:
  description: Names of the files downloaded by this run.
  returned: success
  type: list
  elements: str
  sample: [model-00003-of-00005.safetensors]
bytes_fetched:
  description: Bytes transferred by this run (not counting those resumed from an earlier run).
  returned: success
  type: int
  sample: 3996250744
bytes_resumed:
  description: Bytes an earlier interrupted run had already received.
  returned: success
  type: int
  sample: 1048576000
bytes_needed:
  description: Free bytes the fetch needed on RV(dest)'s filesystem.
  returned: success
  type: int
  sample: 2948000000
bytes_on_disk:
  description: Bytes of the selected files now in RV(dest) (all of them after a successful run; in check mode, those present).
  returned: success
  type: int
  sample: 16388034560
free_bytes:
  description: Free bytes of RV(dest)'s filesystem before the fetch.
  returned: success
  type: int
  sample: 512000000000
progress_file:
  description: The progress file.
  returned: success
  type: str
  sample: /data/models/qwen3-8b/.cache/npu-fleet/progress.json
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.npu.fleet.plugins.module_utils._hub_fetch import FetchError, fetch_hub
from ansible_collections.npu.fleet.plugins.module_utils._hub_source import HUB_ARGUMENT_SPEC, redact


def main():
    """Argument spec, one call into module_utils, error mapping."""
    module = AnsibleModule(
        argument_spec={
            **HUB_ARGUMENT_SPEC,
            "dest": {"type": "path", "required": True},
            "verify": {"type": "str", "choices": ["cached", "full", "size"], "default": "cached"},
            "max_workers": {"type": "int", "default": 4},
            "timeout": {"type": "int", "default": 60},
            "progress_file": {"type": "path"},
            "host_label": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    token = params["token"]
    try:
        result = fetch_hub(
            params["hub"],
            params["repo"],
            params["dest"],
            revision=params["revision"],
            endpoint=params["endpoint"],
            token=token,
            allow_patterns=params["allow_patterns"],
            ignore_patterns=params["ignore_patterns"],
            verify=params["verify"],
            max_workers=params["max_workers"],
            timeout=params["timeout"],
            progress_file=params["progress_file"],
            host=params["host_label"],
            check_mode=module.check_mode,
        )
    except FetchError as exc:
        module.fail_json(msg=redact(exc, token))
    except Exception as exc:  # pylint: disable=broad-except  # never a traceback that could quote a header
        module.fail_json(
            msg=redact("unexpected error fetching %s: %s: %s" % (params["repo"], type(exc).__name__, exc), token),
            exception=redact(traceback.format_exc(), token),
        )
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
