"""Which device and dtype to run on: NPU through torch_npu, else CUDA, else CPU.

Inside the container the NPU is always index 0: the serve role maps the host's
/dev/davinciN and sets ASCEND_RT_VISIBLE_DEVICES to the container-local ids.
"""

from __future__ import annotations

import importlib

from .settings import SettingsError


def _npu_available(torch) -> bool:
    try:
        importlib.import_module("torch_npu")
    except ImportError:
        return False
    return bool(getattr(torch, "npu", None) and torch.npu.is_available())


def select_device(torch, requested: str) -> str:
    if requested in ("auto", "npu") and _npu_available(torch):
        torch.npu.set_device(0)
        return "npu:0"
    if requested == "npu":
        raise SettingsError(
            "NPU_SERVE_DEVICE=npu but torch_npu cannot be imported or sees no NPU: check that the image "
            "has torch_npu for its CANN, that /dev/davinciN is mapped and ASCEND_RT_VISIBLE_DEVICES is set"
        )
    if requested in ("auto", "cuda") and torch.cuda.is_available():
        return "cuda:0"
    if requested == "cuda":
        raise SettingsError("NPU_SERVE_DEVICE=cuda but torch sees no CUDA device")
    return "cpu"


def select_dtype(torch, requested: str, device: str):
    if requested == "auto":
        return torch.float32 if device == "cpu" else torch.bfloat16
    return getattr(torch, requested)


def bind_thread(torch, device: str) -> None:
    """Device context is per thread in torch_npu: each generation thread sets it."""
    if device.startswith("npu"):
        torch.npu.set_device(0)
