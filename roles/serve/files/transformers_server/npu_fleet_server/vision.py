"""Prompts with images for image-text-to-text models (OCR and vision-language families).

The model's own ``AutoProcessor`` does the work: its chat template places the
image tokens (each image part of a message becomes ``{"type": "image"}``),
and calling it with the images expands them to as many tokens as the vision
tower produces and returns the pixel tensors ``generate`` needs
(``pixel_values``, ``image_grid_thw``, ... depending on the family).
"""

from __future__ import annotations

import logging
from typing import Dict, List, Optional, Tuple

from .protocol import RequestError

LOG = logging.getLogger("npu_fleet_server")


def load_processor(path: str, trust_remote_code: bool):
    """The checkpoint's processor when it has an image processor, else None (a text-only model)."""
    from transformers import AutoProcessor  # pylint: disable=import-outside-toplevel

    try:
        processor = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as exc:  # pylint: disable=broad-except  # no processor files, or one this install cannot build
        LOG.warning("no image processor for %s, serving text only: %s: %s", path, type(exc).__name__, exc)
        return None
    return processor if getattr(processor, "image_processor", None) is not None else None


class VisionPrompts:
    def __init__(self, processor, device, dtype):
        self.processor = processor
        self.device = device
        self.dtype = dtype

    def encode_chat(self, messages: List[Dict], images: Optional[list]) -> Tuple[List[int], Dict]:
        """Input ids and the extra tensors for ``generate``; RequestError when the template or processor refuses."""
        processor = self.processor
        try:
            text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # pylint: disable=broad-except
            raise RequestError("the model's chat template rejected these messages: %s" % exc, param="messages") from None
        try:
            inputs = processor(text=[text], images=images or None, return_tensors="pt")
        except Exception as exc:  # pylint: disable=broad-except
            raise RequestError("the model's processor rejected this input: %s" % exc, param="messages") from None
        ids = inputs.pop("input_ids")[0].tolist()
        inputs.pop("attention_mask", None)
        extra = {}
        for name, value in inputs.items():
            if hasattr(value, "to"):
                value = value.to(self.device)
                if value.is_floating_point():
                    value = value.to(self.dtype)
            extra[name] = value
        return ids, extra
