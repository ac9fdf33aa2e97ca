"""DEMO EQUIPMENT: after `make demo` deployed the fleet, send one chat completion per model through the gateway.

Reads the report the run wrote (npu-fleet-report/report.json) and, for each
model, streams an answer through the router of the first gateway (routed by
the request's "model") and prints the curl command a user would type.
"""

import base64
import io
import json
import os
import sys

import requests
import yaml


def demo_key():
    """The demo inventory's key (inventory/demo/group_vars/all.yml): the demo fleet is not anonymous."""
    path = os.path.join(os.path.dirname(__file__), "..", "..", "inventory", "demo", "group_vars", "all.yml")
    with open(path, encoding="utf-8") as handle:
        return str((yaml.safe_load(handle) or {}).get("npu_fleet_api_key") or "")


def png_data_url():
    """A small generated picture (a red square on white) as a data: URL, as an OpenAI client sends a local file."""
    from PIL import Image, ImageDraw  # pylint: disable=import-outside-toplevel

    image = Image.new("RGB", (64, 48), "white")
    ImageDraw.Draw(image).rectangle((16, 8, 48, 40), fill="red")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_requests(router, models, headers):
    """One image request per model: image-text-to-text models read it (200), text-only ones refuse it (400)."""
    content = [{"type": "text", "text": "What is in this picture?"}, {"type": "image_url", "image_url": {"url": png_data_url()}}]
    read = 0
    for model in models:
        body = {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 8}
        response = requests.post(router + "/v1/chat/completions", json=body, headers=headers, timeout=120)
        if response.status_code == 200:
            read += 1
            print("  image -> %s: HTTP 200: %r" % (model, response.json()["choices"][0]["message"]["content"]))
        elif response.status_code == 400:
            print("  image -> %s: HTTP 400 (%s)" % (model, response.json()["error"]["message"][:100]))
        else:
            print("  image -> %s: HTTP %d: %s" % (model, response.status_code, response.text[:200]))
            return False
    return read > 0


def main(report_path):
    with open(report_path, encoding="utf-8") as handle:
        report = json.load(handle)
    gateways = report.get("gateways") or {}
    if not gateways.get("router"):
        print("no gateway in the report (npu_fleet_gateway is false?)")
        return 0
    router = gateways["router"][0]
    key = os.environ.get("NPU_FLEET_API_KEY") or demo_key()
    headers = {"Authorization": "Bearer " + key} if key else {}
    failures = 0
    for model in sorted(gateways["models"]):
        body = {"model": model, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8}
        print(
            "$ curl -s %s/v1/chat/completions -H \"Authorization: Bearer $NPU_FLEET_API_KEY\" -H 'Content-Type: application/json' -d '%s'"
            % (router, json.dumps(body))
        )
        try:
            response = requests.post(router + "/v1/chat/completions", json=body, headers=headers, timeout=60)
            answer = response.json()["choices"][0]["message"]["content"] if response.status_code == 200 else response.text
            print("  %s -> HTTP %d: %r" % (model, response.status_code, answer))
            failures += response.status_code != 200
        except (requests.RequestException, ValueError, KeyError) as error:
            print("  %s -> %s" % (model, error))
            failures += 1
    print(
        "$ curl -s %s/v1/chat/completions -H \"Authorization: Bearer $NPU_FLEET_API_KEY\" -H 'Content-Type: application/json' "
        '-d \'{"model": ..., "messages": [{"role": "user", "content": [{"type": "text", ...}, '
        '{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}]}]}\'' % router
    )
    if not image_requests(router, sorted(gateways["models"]), headers):
        print("no model read the image")
        failures += 1
    print("each model also has its own port on every gateway: %s" % json.dumps(gateways["models"], indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "npu-fleet-report/report.json"))
