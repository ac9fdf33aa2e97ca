"""Prometheus metrics through prometheus_client: vLLM's names where vLLM has the metric, ``npu_serve_*`` for ours.

The ``vllm:*`` series carry the same names, label (``model_name``) and meaning
as vLLM's own ``/metrics``, so one dashboard covers a fleet that mixes vLLM
and this server (``roles/serve/files/grafana/npu-fleet-serving.json``). The
``npu_serve_*`` series are what vLLM has no name for: the repetition guard,
429s, cancellations, batch width, dropped connections. Each ``Server`` has its
own registry, so tests can build several in one process.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
TPOT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5)
TOKEN_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
CONTENT_TYPE = CONTENT_TYPE_LATEST

# name: (kind, help, label names)
OURS = {
    "requests_total": ("counter", "HTTP requests by endpoint and status code.", ("endpoint", "status")),
    "prompt_tokens_total": ("counter", "Prompt tokens of admitted generations.", ()),
    "generation_tokens_total": ("counter", "Tokens generated (including tokens a guard dropped).", ()),
    "finished_total": ("counter", "Finished generations by finish reason.", ("reason",)),
    "guard_stops_total": ("counter", "Generations stopped by a repetition guard layer (repeated_chunk, repeated_block).", ("layer",)),
    "repetition_penalty_interventions_total": (
        "counter",
        "Tokens where the repetition penalty (guard layer 1) changed the most likely token.",
        (),
    ),
    "cancelled_total": ("counter", "Generations cancelled because the client went away.", ()),
    "rejected_total": ("counter", "Requests refused with 429 because every generation slot and queue place was taken.", ()),
    "images_total": ("counter", "Images received in chat requests that were admitted.", ()),
    "connections_dropped_total": (
        "counter",
        "Connections closed before a request reached the app: read_timeout (not whole within NPU_SERVE_REQUEST_READ_TIMEOUT), "
        "too_large (413), bad_request.",
        ("reason",),
    ),
    "requests_in_flight": ("gauge", "Generations running now.", ()),
    "requests_waiting": ("gauge", "Requests waiting for a generation slot.", ()),
    "model_ready": ("gauge", "1 once the model is loaded and the warm-up generation succeeded.", ()),
    "time_to_first_token_seconds": ("histogram", "From request arrival to the first generated text.", TTFT_BUCKETS),
    "request_duration_seconds": ("histogram", "From request arrival to the end of the response.", DURATION_BUCKETS),
    "batch_size": ("histogram", "Sequences in each batched decode step (1 when requests run alone).", BATCH_BUCKETS),
}

# vLLM's finished_reason values: ours map onto them (a guard stop is a stop; see npu_serve_guard_stops_total).
VLLM_FINISHED = {"stop": "stop", "repetition": "stop", "length": "length", "cancelled": "abort", "error": "abort"}


class Metrics:
    def __init__(self, prefix: str = "npu_serve_", model_name: str = ""):
        self.registry = CollectorRegistry()
        self._prefix = prefix
        self._ours = {}
        for name, (kind, text, extra) in OURS.items():
            full = prefix + name
            if kind == "counter":
                metric = Counter(full, text, extra, registry=self.registry)
            elif kind == "gauge":
                metric = Gauge(full, text, extra, registry=self.registry)
            else:
                metric = Histogram(full, text, buckets=extra, registry=self.registry)
            self._ours[name] = metric
        self._vllm_setup(model_name)

    def _vllm_setup(self, model_name):
        labels, registry = ("model_name",), self.registry
        self.model_name = model_name

        def histogram(name, text, buckets):
            return Histogram(name, text, labels, buckets=buckets, registry=registry).labels(model_name)

        self.running = Gauge("vllm:num_requests_running", "Number of requests in model execution batches.", labels, registry=registry)
        self.waiting = Gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", labels, registry=registry)
        self.prompt_tokens = Counter("vllm:prompt_tokens", "Number of prefill tokens processed.", labels, registry=registry)
        self.generation_tokens = Counter("vllm:generation_tokens", "Number of generation tokens processed.", labels, registry=registry)
        self.success = Counter(
            "vllm:request_success", "Count of successfully processed requests.", labels + ("finished_reason",), registry=registry
        )
        self.ttft = histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", TTFT_BUCKETS)
        self.e2e = histogram("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", DURATION_BUCKETS)
        self.queue = histogram("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", DURATION_BUCKETS)
        self.tpot = histogram(
            "vllm:request_time_per_output_token_seconds", "Histogram of time_per_output_token_seconds per request.", TPOT_BUCKETS
        )
        self.request_prompt = histogram("vllm:request_prompt_tokens", "Number of prefill tokens processed.", TOKEN_BUCKETS)
        self.request_generation = histogram("vllm:request_generation_tokens", "Number of generation tokens processed.", TOKEN_BUCKETS)
        self.running.labels(model_name).set(0)
        self.waiting.labels(model_name).set(0)
        self.prompt_tokens.labels(model_name)
        self.generation_tokens.labels(model_name)

    def _metric(self, name, labels):
        metric = self._ours[name]
        return metric.labels(**labels) if labels else metric

    def inc(self, name: str, amount: float = 1, **labels) -> None:
        if amount:
            self._metric(name, labels).inc(amount)
        else:
            self._metric(name, labels)  # the series exists from now on, at 0

    def set(self, name: str, value: float, **labels) -> None:
        self._metric(name, labels).set(value)

    def get(self, name: str, **labels) -> float:
        return self.registry.get_sample_value(self._prefix + name, labels or None) or 0

    def observe(self, name: str, value: float) -> None:
        self._ours[name].observe(value)

    def set_load(self, running: int, waiting: int, ready: bool) -> None:
        self.set("requests_in_flight", running)
        self.set("requests_waiting", waiting)
        self.set("model_ready", 1 if ready else 0)
        self.running.labels(self.model_name).set(running)
        self.waiting.labels(self.model_name).set(waiting)

    def finished(self, prompt_tokens, completion_tokens, finish_reason, ttft, duration, queue_seconds) -> None:
        """The vLLM series for one finished request (ours are counted by the caller)."""
        name = self.model_name
        self.prompt_tokens.labels(name).inc(prompt_tokens)
        self.generation_tokens.labels(name).inc(completion_tokens)
        self.success.labels(name, VLLM_FINISHED.get(finish_reason, "abort")).inc()
        self.e2e.observe(duration)
        self.queue.observe(max(queue_seconds, 0.0))
        self.request_prompt.observe(prompt_tokens)
        self.request_generation.observe(completion_tokens)
        if ttft is not None:
            self.ttft.observe(ttft)
            if completion_tokens > 1:
                self.tpot.observe(max(duration - ttft, 0.0) / (completion_tokens - 1))

    def render(self) -> str:
        return generate_latest(self.registry).decode("utf-8")

    def names(self):
        return [self._prefix + name for name in OURS]
