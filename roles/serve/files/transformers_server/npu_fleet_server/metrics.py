"""Prometheus text-format metrics without a client library (one less package in the image)."""

from __future__ import annotations

import threading
from typing import Dict, Iterable, Tuple

Labels = Tuple[Tuple[str, str], ...]

TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

_HELP = {
    "requests_total": ("counter", "HTTP requests by endpoint and status code."),
    "prompt_tokens_total": ("counter", "Prompt tokens of admitted generations."),
    "generation_tokens_total": ("counter", "Tokens generated (including tokens a guard dropped)."),
    "finished_total": ("counter", "Finished generations by finish reason."),
    "guard_stops_total": ("counter", "Generations stopped by a repetition guard layer (repeated_chunk, repeated_block)."),
    "repetition_penalty_interventions_total": (
        "counter",
        "Tokens where the repetition penalty (guard layer 1) changed the most likely token.",
    ),
    "cancelled_total": ("counter", "Generations cancelled because the client went away."),
    "rejected_total": ("counter", "Requests refused with 429 because every generation slot and queue place was taken."),
    "requests_in_flight": ("gauge", "Generations running now."),
    "requests_waiting": ("gauge", "Requests waiting for a generation slot."),
    "model_ready": ("gauge", "1 once the model is loaded and the warm-up generation succeeded."),
    "time_to_first_token_seconds": ("histogram", "From request arrival to the first generated text."),
    "request_duration_seconds": ("histogram", "From request arrival to the end of the response."),
}


def _fmt_labels(labels: Labels) -> str:
    if not labels:
        return ""
    body = ",".join('%s="%s"' % (key, str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")) for key, value in labels)
    return "{%s}" % body


def _fmt_value(value: float) -> str:
    if value == int(value):
        return str(int(value))
    return repr(float(value))


class Metrics:
    def __init__(self, prefix: str = "npu_serve_"):
        self._prefix = prefix
        self._lock = threading.Lock()
        self._values: Dict[str, Dict[Labels, float]] = {}
        self._histograms: Dict[str, Tuple[Tuple[float, ...], list, list]] = {
            "time_to_first_token_seconds": (TTFT_BUCKETS, [0] * len(TTFT_BUCKETS), [0, 0.0]),
            "request_duration_seconds": (DURATION_BUCKETS, [0] * len(DURATION_BUCKETS), [0, 0.0]),
        }

    def inc(self, name: str, amount: float = 1, **labels) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._values.setdefault(name, {})
            series[key] = series.get(key, 0) + amount

    def set(self, name: str, value: float, **labels) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values.setdefault(name, {})[key] = value

    def get(self, name: str, **labels) -> float:
        with self._lock:
            return self._values.get(name, {}).get(tuple(sorted(labels.items())), 0)

    def observe(self, name: str, value: float) -> None:
        buckets, counts, total = self._histograms[name]
        with self._lock:
            for index, bound in enumerate(buckets):
                if value <= bound:
                    counts[index] += 1
            total[0] += 1
            total[1] += value

    def render(self) -> str:
        lines = []
        with self._lock:
            for name, (kind, text) in _HELP.items():
                full = self._prefix + name
                lines.append("# HELP %s %s" % (full, text))
                lines.append("# TYPE %s %s" % (full, kind))
                if kind == "histogram":
                    buckets, counts, total = self._histograms[name]
                    for bound, count in zip(buckets, counts):
                        lines.append('%s_bucket{le="%s"} %d' % (full, bound, count))
                    lines.append('%s_bucket{le="+Inf"} %d' % (full, total[0]))
                    lines.append("%s_sum %s" % (full, _fmt_value(total[1])))
                    lines.append("%s_count %d" % (full, total[0]))
                    continue
                series = self._values.get(name) or {(): 0}
                for labels in sorted(series):
                    lines.append("%s%s %s" % (full, _fmt_labels(labels), _fmt_value(series[labels])))
        return "\n".join(lines) + "\n"

    def names(self) -> Iterable[str]:
        return [self._prefix + name for name in _HELP]
