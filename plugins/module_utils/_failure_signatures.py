# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""Why a serving container failed, from its last log lines: the known traps and what to change.

Signatures come from vLLM / vllm-ascend / CANN messages (vLLM's KV-cache
check in gpu_worker / kv_cache_utils, vllm-ascend issues, CANN error codes)
and a public field report (Feb 2026, five models on 910B servers by hand);
each maps to one cause and one fix a user can act on.
"""

import re

__all__ = ["diagnose"]

_SIGNATURES = (
    (
        "kv_cache",
        re.compile(r"No available memory for the cache blocks|To serve at least one request with the models'?s max seq len"),
        "the KV cache does not fit the chip memory left after the weights",
        "lower max_model_len (estimated maximum: {estimated}) or raise gpu_memory_utilization, or give the model more chips "
        "(tensor_parallel_size)",
    ),
    (
        "undefined_symbol",
        re.compile(r"undefined symbol"),
        "a library of the image does not match the host (typically libatb.so from NNAL vs the image's CANN)",
        "install the NNAL release that matches the image's CANN on the host, pin an image built for the host's CANN, "
        "or serve this model with backend: transformers",
    ),
    (
        "architecture",
        re.compile(
            r"are not supported for now|is not supported|Cannot find model module|No model architectures? (?:are|is) "
            r"(?:supported|found)|KeyError: '[a-z0-9_]+'|There is no module (?:or parameter )?named"
        ),
        "this vLLM cannot load the model's architecture",
        "choose a newer vllm-ascend image (image_select_vllm_min_version) or serve the model with backend: transformers",
    ),
    (
        "device_id",
        re.compile(r"input data rang\[|set ASCEND_RT_VISIBLE_DEVICES:\[|device id error"),
        "ASCEND_RT_VISIBLE_DEVICES names a host device id; inside the container the mapped chips are 0..k-1",
        "let npu.fleet set ASCEND_RT_VISIBLE_DEVICES (remove it from serve_env / serve.env)",
    ),
    (
        "no_device",
        re.compile(r"207004|no valid device|open device \d+ failed"),
        "no NPU is visible inside the container",
        "check that /dev/davinciN, /dev/davinci_manager, /dev/devmm_svm and /dev/hisi_hdc exist on the host and are not "
        "held by another container (npu-smi info)",
    ),
    (
        "device_busy",
        re.compile(r"ret is -80(?:05|20)|because the device is used"),
        "the NPU is already used by another container or process",
        "stop what holds the chip (npu-smi info shows the process) or let the planner avoid it (preflight marks busy chips)",
    ),
    (
        "acl_init",
        re.compile(r"aclInit.*107001|107001"),
        "the CANN runtime could not initialise (aclInit 107001): driver files missing in the container",
        "make sure the host has the driver tree, version.info, /etc/ascend_install.info, dcmi and the toolkit's fwkacllib "
        "(run npu.fleet.preflight and fix what it reports)",
    ),
    (
        "bad_argument",
        re.compile(r"unrecognized arguments?:|error: argument"),
        "the image's vllm serve rejected an argument",
        "check serve_extra_args / serve.extra_args against the vLLM version of the image",
    ),
    (
        "port",
        re.compile(r"[Aa]ddress already in use"),
        "the port is already taken",
        "free the port or let the planner choose another (fleet_plan_used_ports)",
    ),
    (
        "oom",
        re.compile(r"NPU out of memory|out of memory|OutOfMemoryError"),
        "the device ran out of memory",
        "lower gpu_memory_utilization or max_model_len, or use more chips",
    ),
    (
        "load_failed",
        re.compile(r"model load failed"),
        "the Transformers server could not load the model",
        "read the error above; check the model directory (host_path) and NPU_SERVE_TRUST_REMOTE_CODE for custom code",
    ),
)
_ESTIMATED = re.compile(r"estimated maximum model length is (\d+)")


def diagnose(log_text):
    """First matching signature in the log (the last lines are the most telling): code, cause, fix, evidence line."""
    lines = [line for line in (log_text or "").splitlines() if line.strip()]
    estimated = _ESTIMATED.search(log_text or "")
    for code, pattern, cause, fix in _SIGNATURES:
        for line in reversed(lines):
            if pattern.search(line):
                return {
                    "code": code,
                    "cause": cause,
                    "fix": fix.format(estimated=estimated.group(1) if estimated else "see log"),
                    "evidence": line.strip()[:500],
                }
    return {
        "code": "unknown",
        "cause": "no known failure signature in the last log lines",
        "fix": "read the container log (docker logs)",
        "evidence": lines[-1].strip()[:500] if lines else "",
    }
