"""Image inputs end to end: a tiny real LLaVA checkpoint (image-text-to-text) under gunicorn, over HTTP."""

from __future__ import annotations

import http.server
import threading

import pytest
import requests

from conftest import API_KEY
from http_client import final_choice, post, sse_events, streamed_text
from image_data import data_url, image_bytes, image_message
from tiny_models import VISION_IMAGE_TOKENS

CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def image_host():
    """A loopback HTTP server with one PNG at /a.png (and a redirect to it at /moved)."""
    png = image_bytes("stripes")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "/a.png")
                self.end_headers()
                return
            if self.path != "/a.png":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d" % httpd.server_address[1]
    httpd.shutdown()


@pytest.fixture(scope="module")
def vl_server(start_server, vision_model):
    return start_server(
        {
            "NPU_SERVE_MODEL": vision_model,
            "NPU_SERVE_SERVED_MODEL_NAME": "tiny-ocr",
            "NPU_SERVE_API_KEY": API_KEY,
            "NPU_SERVE_MAX_IMAGES": "2",
            "NPU_SERVE_MAX_IMAGE_PIXELS": "40000",
            "NPU_SERVE_MAX_IMAGE_BYTES": "60000",
            "NPU_SERVE_MAX_BODY_BYTES": "400000",
            "NPU_SERVE_ALLOW_IMAGE_URLS": "127.0.0.1",
            "NPU_SERVE_REPETITION_PENALTY": "1.0",
        }
    )


def ask(server, auth, messages, **extra):
    body = {"model": "tiny-ocr", "messages": messages, "max_tokens": 12, "temperature": 0}
    body.update(extra)
    return post(server, CHAT, body, auth)


def test_models_lists_the_input_kinds(vl_server, server, auth):
    (entry,) = requests.get(vl_server.base_url + "/v1/models", headers=auth, timeout=10).json()["data"]
    assert entry["input_modalities"] == ["text", "image"]
    (text_only,) = requests.get(server.base_url + "/v1/models", headers=auth, timeout=10).json()["data"]
    assert text_only["input_modalities"] == ["text"]
    assert "inputs=text+image" in vl_server.log() and "runner=solo" in vl_server.log()


def test_the_image_reaches_the_model(vl_server, auth):
    stripes, red = data_url(image_bytes("stripes")), data_url(image_bytes("red"))
    first = ask(vl_server, auth, image_message(stripes))
    assert first.status_code == 200, first.text
    again = ask(vl_server, auth, image_message(stripes)).json()
    other = ask(vl_server, auth, image_message(red)).json()
    two = ask(vl_server, auth, image_message(stripes, red)).json()
    answer = first.json()["choices"][0]["message"]["content"]
    assert answer and again["choices"][0]["message"]["content"] == answer
    assert other["choices"][0]["message"]["content"] != answer, "the output must depend on the pixels"
    assert two["choices"][0]["message"]["content"] not in (answer, other["choices"][0]["message"]["content"])
    # The processor expanded each image part into the vision tower's tokens.
    assert two["usage"]["prompt_tokens"] == first.json()["usage"]["prompt_tokens"] + VISION_IMAGE_TOKENS
    assert vl_server.metric("npu_serve_images_total") >= 3


def test_jpeg_webp_and_an_allowed_url_are_the_same_image_kinds(vl_server, auth, image_host):
    png = ask(vl_server, auth, image_message(data_url(image_bytes("stripes")))).json()["choices"][0]["message"]["content"]
    fetched = ask(vl_server, auth, image_message(image_host + "/a.png"))
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["choices"][0]["message"]["content"] == png
    for fmt, media in (("JPEG", "image/jpeg"), ("WEBP", "image/webp")):
        response = ask(vl_server, auth, image_message(data_url(image_bytes("stripes", fmt=fmt), media)))
        assert response.status_code == 200, response.text


def test_streaming_with_an_image_sends_the_same_text(vl_server, auth):
    messages = image_message(data_url(image_bytes("stripes")))
    whole = ask(vl_server, auth, messages).json()["choices"][0]["message"]["content"]
    body = {"messages": messages, "max_tokens": 12, "temperature": 0, "stream": True}
    events, done = sse_events(post(vl_server, CHAT, body, auth, stream=True))
    assert done and streamed_text(events) == whole
    assert final_choice(events)["finish_reason"] == "length"


@pytest.mark.parametrize(
    "urls, code, fragment",
    [
        ([data_url(image_bytes())] * 3, "too_many_images", "NPU_SERVE_MAX_IMAGES"),
        ([data_url(image_bytes(size=(300, 200)))], "image_too_large", "NPU_SERVE_MAX_IMAGE_PIXELS"),
        ([data_url(image_bytes("noise", size=(190, 190)))], "image_too_large", "NPU_SERVE_MAX_IMAGE_BYTES"),
        (["data:image/png;base64,not*base64"], "invalid_image", "not valid base64"),
        ([data_url(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)], "invalid_image", "cannot be read"),
        ([data_url(image_bytes(fmt="GIF"), "image/gif")], "invalid_image", "PNG, JPEG, WebP"),
        (["data:image/png,raw"], "invalid_image", "must be base64"),
        (["ftp://127.0.0.1/a.png"], "invalid_image", "data: URL or http(s)"),
        (["http://example.invalid/a.png"], "invalid_image", "not in NPU_SERVE_ALLOW_IMAGE_URLS"),
    ],
)
def test_image_limits_and_bad_images_are_400s(vl_server, auth, urls, code, fragment):
    response = ask(vl_server, auth, image_message(*urls))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, "messages") and fragment in error["message"]


def test_fetch_errors_and_redirects_are_400s(vl_server, auth, image_host):
    for path, fragment in (("/missing.png", "answered HTTP 404"), ("/moved", "answered HTTP 302")):
        response = ask(vl_server, auth, image_message(image_host + path))
        assert response.status_code == 400 and fragment in response.json()["error"]["message"], response.text


def test_a_text_only_model_refuses_images_clearly(server, auth):
    response = post(server, CHAT, {"messages": image_message(data_url(image_bytes())), "max_tokens": 2}, auth)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "images_not_supported" and "takes text only" in error["message"]
