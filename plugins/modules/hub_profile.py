#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: hub_profile
short_description: Profile a model on Hugging Face, a mirror or ModelScope before downloading it
version_added: 0.3.0
description:
  - Reads a model repository's file listing at a revision, its C(config.json), C(generation_config.json) and
    safetensors index, and of every weight shard only the 8-byte header length and the JSON header, with HTTP range
    requests (the way C(huggingface_hub.get_safetensors_metadata) reads them). A checkpoint of hundreds of gigabytes is
    profiled from a few megabytes.
  - Returns the serving profile in exactly the shape P(npu.fleet.model_profile#module) returns for a directory (the same
    rules build it), the commit the revision resolved to, and the files a download would take with their sizes and
    checksums, so the plan is made first and the weights then go only to the hosts that serve the model (see
    P(npu.fleet.hub_fetch#module)).
  - Uses the Python standard library only; runs on the controller (delegated to C(localhost)) or on any host that
    reaches the hub.
  - Refuses a selection of files that would leave out C(config.json) or a shard the index names.
  - Read-only; never reports a change.
author:
  - npu.fleet engineers (@npu-fleet)
options:
  hub:
    description:
      - Which hub's HTTP API to speak. V(huggingface) also covers its mirrors (set O(endpoint)).
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
      - The commit to read. Pin the 40-character commit sha so every run plans and downloads the same files; a branch or
        tag name works and gives a warning naming the commit it resolved to.
      - Default V(main) on Hugging Face, V(master) on ModelScope (with a warning).
    type: str
  endpoint:
    description:
      - Address of the hub or of a mirror, such as V(https://hf-mirror.com). Default V(https://huggingface.co) or
        V(https://www.modelscope.cn).
      - No credentials in it; give the token in O(token).
    type: str
  token:
    description:
      - Access token for private or gated repositories. Never logged and never part of a message or of the result.
    type: str
  allow_patterns:
    description:
      - Glob patterns of the files a download takes (the same rules as C(huggingface_hub)'s C(allow_patterns)). Used for
        RV(files) and RV(bytes).
      - Default the weights (C(*.safetensors) and their index), C(config.json), C(generation_config.json), tokenizer
        files, chat templates, processor configs, C(quant_model_description*.json) and the code of C(trust_remote_code)
        models; never the whole repository.
    type: list
    elements: str
  ignore_patterns:
    description:
      - Glob patterns of files to leave out even when O(allow_patterns) takes them.
    type: list
    elements: str
  dtype:
    description:
      - Serving dtype, as P(npu.fleet.model_profile#module)'s O(npu.fleet.model_profile#module:dtype).
    type: str
    choices: [auto, bfloat16, float16, float32]
  timeout:
    description:
      - Seconds to wait for each HTTP request.
    type: int
    default: 30
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
    C(environment)); the trusted certificates from the system store or C(SSL_CERT_FILE).
  - A ModelScope listing names no repository commit, so RV(commit) is null there unless O(revision) is a commit sha;
    every file is still checked by its sha256 when downloaded.
seealso:
  - module: npu.fleet.hub_fetch
  - module: npu.fleet.model_profile
  - name: Hub API endpoints
    description: The Hugging Face Hub HTTP API read here.
    link: https://huggingface.co/docs/hub/api
"""

EXAMPLES = r"""
---
- name: Profile Qwen3-8B on the Hugging Face Hub at a pinned commit, from the controller
  npu.fleet.hub_profile:
    repo: Qwen/Qwen3-8B
    revision: 0123456789abcdef0123456789abcdef01234567
  delegate_to: localhost
  run_once: true
  register: qwen3_hub

- name: Profile through a mirror
  npu.fleet.hub_profile:
    repo: Qwen/Qwen3-8B
    revision: 0123456789abcdef0123456789abcdef01234567
    endpoint: https://hf-mirror.com
  delegate_to: localhost
  run_once: true

- name: Profile a private ModelScope repository
  npu.fleet.hub_profile:
    hub: modelscope
    repo: my-org/my-model
    revision: v1.0.0
    token: "{{ vault_modelscope_token }}"
  delegate_to: localhost
  run_once: true

- name: Size the KV cache before any byte of weights moves
  ansible.builtin.debug:
    msg: "{{ qwen3_hub.profile | npu.fleet.kv_fit(chip_memory_mb=65536, tensor_parallel_size=1) }}"
"""

RETURN = r"""
profile:
  description:
    - The serving profile, with the same keys and rules as P(npu.fleet.model_profile#module)'s RV(npu.fleet.model_profile#module:profile);
      C(path) is V(<endpoint>/<repo>@<commit>).
  returned: success
  type: dict
  sample: {architecture: Qwen3ForCausalLM, num_hidden_layers: 36, kv_cache_bytes_per_token: 147456, weights_bytes: 16381470720}
commit:
  description: The commit the revision resolved to (null for a ModelScope branch or tag). Pass it to P(npu.fleet.hub_fetch#module).
  returned: success
  type: str
  sample: 0123456789abcdef0123456789abcdef01234567
revision:
  description: The revision as given (or the default branch).
  returned: success
  type: str
  sample: main
source:
  description: The source with its defaults filled in (C(hub), C(repo), C(revision), C(endpoint), C(allow_patterns), C(ignore_patterns)); no token.
  returned: success
  type: dict
  sample: {hub: huggingface, repo: Qwen/Qwen3-8B, revision: main, endpoint: "https://huggingface.co", allow_patterns: ["*.safetensors"], ignore_patterns: []}
files:
  description: The files a download takes.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Path in the repository.
      type: str
      sample: model-00001-of-00005.safetensors
    size:
      description: Bytes.
      type: int
      sample: 3996250744
    sha256:
      description: The sha256 the hub gives (LFS files on Hugging Face, every file on ModelScope), else null.
      type: str
      sample: 1f0bd4d1aa6b5b7f4d5d8c9ad01ac1e8e94e0d7c5c4a3b2a1f0e9d8c7b6a5f4e
    git_sha1:
      description: The git blob sha1 of a regular (non-LFS) file on Hugging Face, else null.
      type: str
      sample: 2f9618c3a19b9a61add74f70bfb121335aeef666
    lfs:
      description: Whether the hub stores the file in LFS.
      type: bool
      sample: true
bytes:
  description: Total bytes of RV(files), what a host needs free before downloading.
  returned: success
  type: int
  sample: 16388034560
bytes_read:
  description: Bytes transferred to profile (configs, index and headers).
  returned: success
  type: int
  sample: 2400000
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.npu.fleet.plugins.module_utils._hub_profile import HubProfileError, profile_hub
from ansible_collections.npu.fleet.plugins.module_utils._hub_source import HUB_ARGUMENT_SPEC, redact


def main():
    """Argument spec, one call into module_utils, error mapping."""
    module = AnsibleModule(
        argument_spec={
            **HUB_ARGUMENT_SPEC,
            "dtype": {"type": "str", "choices": ["auto", "bfloat16", "float16", "float32"]},
            "timeout": {"type": "int", "default": 30},
        },
        supports_check_mode=True,
    )
    params = module.params
    token = params["token"]
    try:
        result = profile_hub(
            params["hub"],
            params["repo"],
            revision=params["revision"],
            endpoint=params["endpoint"],
            token=token,
            allow_patterns=params["allow_patterns"],
            ignore_patterns=params["ignore_patterns"],
            dtype=params["dtype"],
            timeout=params["timeout"],
        )
    except HubProfileError as exc:
        module.fail_json(msg=redact(exc, token))
    except Exception as exc:  # pylint: disable=broad-except  # never a traceback that could quote a header
        module.fail_json(
            msg=redact("unexpected error profiling %s: %s: %s" % (params["repo"], type(exc).__name__, exc), token),
            exception=redact(traceback.format_exc(), token),
        )
    for warning in result.pop("warnings") + result["profile"]["warnings"]:
        module.warn(warning)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
