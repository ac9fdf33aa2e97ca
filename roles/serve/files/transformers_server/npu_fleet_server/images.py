"""Images of a chat request, from data: URLs or allowed http(s) hosts, checked before the model sees them.

Every limit is a 400 that names it: how many images (``NPU_SERVE_MAX_IMAGES``),
how many bytes each (``NPU_SERVE_MAX_IMAGE_BYTES``), how many pixels each
(``NPU_SERVE_MAX_IMAGE_PIXELS``, checked from the header before the pixels
are decoded, so a small file cannot expand into gigabytes). http(s) URLs are
fetched only from the hosts in ``NPU_SERVE_ALLOW_IMAGE_URLS``, without
following redirects (a redirect could point anywhere), within
``NPU_SERVE_IMAGE_FETCH_TIMEOUT`` seconds overall.
"""

from __future__ import annotations

import base64
import binascii
import io
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import List

from .protocol import RequestError

FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
DATA_TYPES = {"image/png", "image/jpeg", "image/jpg", "image/webp"}


def _error(message, code="invalid_image"):
    return RequestError(message, param="messages", code=code)


def _from_data_url(url: str, index: int, max_bytes: int) -> bytes:
    header, comma, payload = url.partition(",")
    media = header[len("data:") :].split(";")
    if not comma or "base64" not in media[1:]:
        raise _error("image %d: a data: URL must be base64, e.g. data:image/png;base64,..." % index)
    if media[0].lower() not in DATA_TYPES:
        raise _error("image %d: %r is not an image type this server reads (PNG, JPEG, WebP)" % (index, media[0][:64]))
    if len(payload) * 3 // 4 > max_bytes + 3:
        raise _error("image %d is larger than %d bytes (NPU_SERVE_MAX_IMAGE_BYTES)" % (index, max_bytes), "image_too_large")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise _error("image %d: the data: URL is not valid base64" % index) from None
    if len(data) > max_bytes:
        raise _error("image %d is larger than %d bytes (NPU_SERVE_MAX_IMAGE_BYTES)" % (index, max_bytes), "image_too_large")
    return data


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _host_allowed(host: str, allowed) -> bool:
    host = host.lower().rstrip(".")
    return any(host == entry or (entry.startswith(".") and host.endswith(entry)) for entry in allowed)


def _fetch(url: str, index: int, settings) -> bytes:
    parts = urllib.parse.urlsplit(url)
    if not settings.allow_image_urls:
        raise _error("image %d: this server takes images as data: URLs only (NPU_SERVE_ALLOW_IMAGE_URLS is empty)" % index)
    if not parts.hostname or not _host_allowed(parts.hostname, settings.allow_image_urls):
        raise _error("image %d: host %r is not in NPU_SERVE_ALLOW_IMAGE_URLS" % (index, parts.hostname))
    deadline = time.monotonic() + settings.image_fetch_timeout
    limit = settings.max_image_bytes
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, headers={"Accept": "image/png, image/jpeg, image/webp"})
    try:
        with opener.open(request, timeout=settings.image_fetch_timeout) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > limit:
                raise _error("image %d is larger than %d bytes (NPU_SERVE_MAX_IMAGE_BYTES)" % (index, limit), "image_too_large")
            chunks, size = [], 0
            while True:
                if time.monotonic() > deadline:
                    raise _error("image %d: %s did not arrive within %.0f s" % (index, url, settings.image_fetch_timeout), "image_fetch")
                chunk = response.read(65536)
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > limit:
                    raise _error("image %d is larger than %d bytes (NPU_SERVE_MAX_IMAGE_BYTES)" % (index, limit), "image_too_large")
                chunks.append(chunk)
    except urllib.error.HTTPError as exc:
        raise _error("image %d: %s answered HTTP %d" % (index, url, exc.code), "image_fetch") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _error("image %d: %s cannot be fetched: %s" % (index, url, reason), "image_fetch") from None


def _decode(data: bytes, index: int, max_pixels: int):
    from PIL import Image  # pylint: disable=import-outside-toplevel  # only image models need Pillow

    try:
        image = Image.open(io.BytesIO(data), formats=list(FORMATS))
        width, height = image.size
        if width * height > max_pixels:
            raise _error(
                "image %d is %dx%d = %d pixels, more than %d (NPU_SERVE_MAX_IMAGE_PIXELS)"
                % (index, width, height, width * height, max_pixels),
                "image_too_large",
            )
        image.load()
        return image.convert("RGB")
    except RequestError:
        raise
    except Image.DecompressionBombError:
        raise _error("image %d has more pixels than NPU_SERVE_MAX_IMAGE_PIXELS allows" % index, "image_too_large") from None
    except Exception as exc:  # pylint: disable=broad-except  # Pillow raises many kinds for a broken file
        raise _error("image %d cannot be read as PNG, JPEG or WebP: %s" % (index, exc)) from None


def load(urls: List[str], settings) -> list:
    """RGB PIL images for the request's image URLs, or RequestError (400) naming the limit or the fault."""
    if len(urls) > settings.max_images:
        raise _error("the request has %d images, more than %d (NPU_SERVE_MAX_IMAGES)" % (len(urls), settings.max_images), "too_many_images")
    images = []
    for index, url in enumerate(urls):
        scheme = url.split(":", 1)[0].lower()
        if scheme == "data":
            data = _from_data_url(url, index, settings.max_image_bytes)
        elif scheme in ("http", "https"):
            data = _fetch(url, index, settings)
        else:
            raise _error("image %d: the URL must be a data: URL or http(s)" % index)
        images.append(_decode(data, index, settings.max_image_pixels))
    return images
