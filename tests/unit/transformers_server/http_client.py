"""Small HTTP helpers for the server tests: JSON posts and Server-Sent Events."""

from __future__ import annotations

import json

import requests


def post(server, path, body, headers=None, stream=False, timeout=120):
    return requests.post(server.base_url + path, json=body, headers=headers or {}, stream=stream, timeout=timeout)


def sse_events(response):
    """Parse an SSE body into (events, done): the JSON payloads and whether [DONE] ended it."""
    events, done = [], False
    for line in response.iter_lines(decode_unicode=True):
        if not line:
            continue
        assert line.startswith("data: "), "not an SSE data line: %r" % line
        payload = line[len("data: ") :]
        if payload == "[DONE]":
            done = True
            continue
        assert not done, "data after [DONE]"
        events.append(json.loads(payload))
    return events, done


def streamed_text(events, kind="chat"):
    parts = []
    for event in events:
        for choice in event.get("choices", []):
            if kind == "chat":
                parts.append(choice.get("delta", {}).get("content") or "")
            else:
                parts.append(choice.get("text") or "")
    return "".join(parts)


def final_choice(events):
    finals = [choice for event in events for choice in event.get("choices", []) if choice.get("finish_reason")]
    assert len(finals) == 1, "expected exactly one finish_reason, got %r" % finals
    return finals[0]
