"""Images for the tests, made with Pillow in memory: PNG/JPEG/WebP bytes and data: URLs."""

from __future__ import annotations

import base64
import io
import random


def image_bytes(kind="stripes", size=(64, 48), fmt="PNG") -> bytes:
    from PIL import Image

    if kind == "red":
        image = Image.new("RGB", size, (255, 0, 0))
    elif kind == "noise":  # does not compress: bytes close to width * height * 3
        image = Image.frombytes("RGB", size, random.Random(5).randbytes(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size)
        image.putdata([((x * 37) % 256, (y * 91) % 256, ((x + y) * 53) % 256) for y in range(size[1]) for x in range(size[0])])
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def data_url(data: bytes, media="image/png") -> str:
    return "data:%s;base64,%s" % (media, base64.b64encode(data).decode())


def image_message(*urls, text="Read the text in this image."):
    parts = [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    return [{"role": "user", "content": parts + [{"type": "text", "text": text}]}]
