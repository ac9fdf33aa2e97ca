"""Failure diagnosis on published vLLM / vllm-ascend / CANN failure signatures (message templates filled with example
numbers) and on our own servers' messages."""

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._failure_signatures import diagnose

# Verbatim signatures. Sources: KV_V0 vLLM vllm/worker/worker.py raise_if_cache_size_invalid (V0 engine), KV_V1
# vllm/v1/core/kv_cache_utils.py (V1); ATB vllm-project/vllm-ascend#750; ARCH vLLM's model registry (registry.py);
# MTP vLLM's AutoWeightsLoader (vllm-project/vllm#12783); DEVICE_ID and NO_DEVICE gpustack/gpustack#3352; OPEN_DEVICE
# vllm-project/vllm-ascend#167; BUSY Ascend/cann-container-image#46; OOM vllm-project/vllm-ascend#1993.
KV_V0 = "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine."
KV_V1 = (
    "ValueError: To serve at least one request with the models's max seq len (262144), (36.00 GiB KV cache is needed, which is "
    "larger than the available KV cache memory (10.27 GiB). Based on the available memory, the estimated maximum model length "
    "is 74752. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine."
)
ATB = (
    "OSError: /usr/local/lib/python3.11/site-packages/torch_npu/lib/libop_plugin_atb.so: undefined symbol: "
    "_ZN3atb15CreateOperationINS_5infer14GroupTopkParamEEE"
)
ARCH = "ValueError: Model architectures ['GlmOcrForConditionalGeneration'] are not supported for now. Supported architectures: dict_keys"
MTP = "ValueError: There is no module or parameter named 'model.layers.16' in GlmOcrForConditionalGeneration"
DEVICE_ID = "set ASCEND_RT_VISIBLE_DEVICES:[4] error, input data rang[0-2)"
NO_DEVICE = "aclrtGetDeviceCount(&device_count), error code is 207004"
OPEN_DEVICE = "open device 1 failed, runtime result = 107001"
BUSY = "dcmi model initialized failed, because the device is used. ret is -8020"
ARGS = "vllm: error: unrecognized arguments: --no-such-flag"
OOM = (
    "EE9999: Inner Error! DevMemAllocHugePageManaged:[drv api] halMemAlloc failed drvRetCode=6 ErrCode=207001, "
    "desc=[driver error:out of memory]"
)
LOAD = (
    "2026-11-26 12:13:45,972 ERROR npu_fleet_server model load failed, stopping the server: OSError: /models/x does not appear "
    "to have a file named config.json"
)


@pytest.mark.parametrize(
    "line, code",
    [
        (KV_V0, "kv_cache"),
        (KV_V1, "kv_cache"),
        (ATB, "undefined_symbol"),
        (ARCH, "architecture"),
        (MTP, "architecture"),
        (DEVICE_ID, "device_id"),
        (NO_DEVICE, "no_device"),
        (OPEN_DEVICE, "no_device"),
        (BUSY, "device_busy"),
        (ARGS, "bad_argument"),
        (OOM, "oom"),
        (LOAD, "load_failed"),
    ],
)
def test_known_signatures_name_the_cause(line, code):
    log = "INFO starting\nINFO loading weights\n%s\nINFO shutting down\n" % line
    result = diagnose(log)
    assert result["code"] == code
    assert result["evidence"] == line[:500]
    assert result["cause"] and result["fix"]


def test_kv_fix_quotes_vllms_estimate():
    assert "74752" in diagnose(KV_V1)["fix"]
    assert "see log" in diagnose(KV_V0)["fix"]


def test_unknown_logs_point_at_the_last_line():
    result = diagnose("starting\nsomething odd happened\n")
    assert result["code"] == "unknown" and result["evidence"] == "something odd happened"
    assert diagnose("")["evidence"] == ""
