"""The shipped Grafana dashboard is over series the server really exports.

Grafana itself cannot run here (not on PyPI, Debian or npm), so no screenshot
is rendered; what can rot is the dashboard's queries. Every metric name in
every panel query must be a series in a real /metrics scrape of the running
server after a streamed request, and the vLLM-named ones must carry the
``model_name`` label the dashboard filters on.
"""

from __future__ import annotations

import json
import os
import re

import requests

from http_client import post

CHAT = "/v1/chat/completions"
DASHBOARD = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "serve", "files", "grafana", "npu-fleet-serving.json")
METRIC = re.compile(r"\b(vllm:[a-z0-9_:]+|npu_serve_[a-z0-9_]+)")


def dashboard_metrics():
    with open(DASHBOARD, encoding="utf-8") as handle:
        dashboard = json.load(handle)
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets") or [] if target.get("expr")]
    return queries, sorted(set(name for query in queries for name in METRIC.findall(query)))


def test_every_dashboard_query_reads_a_series_the_server_exports(server, auth):
    post(server, CHAT, {"messages": [{"role": "user", "content": "dashboard"}], "max_tokens": 3, "stream": True}, auth)
    text = requests.get(server.base_url + "/metrics", timeout=10).text
    exported, declared = {}, set()
    for line in text.splitlines():
        declaration = re.match(r"# TYPE (\S+) (counter|gauge|histogram)", line)
        if declaration:
            # A labelled counter has no sample before its first event, but its family is declared.
            declared |= {declaration.group(1), declaration.group(1) + ("_total" if declaration.group(2) == "counter" else "")}
        elif line and not line.startswith("#"):
            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
            exported.setdefault(name, []).append(line)
    queries, names = dashboard_metrics()
    assert len(queries) >= 10 and any(name.startswith("vllm:") for name in names) and any(name.startswith("npu_serve_") for name in names)
    missing = [name for name in names if name not in exported and name not in declared]
    assert missing == [], missing
    for name in names:
        if name.startswith("vllm:") and name in exported:
            assert all('model_name="tiny-loop"' in line for line in exported[name]), exported[name][:2]
