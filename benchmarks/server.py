# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark the Transformers fallback server against model.generate in-process, on the CPU.

Two random Qwen3 checkpoints are built (no downloads): "tiny" (hidden 64,
2 layers) and "mid" (hidden 768, 8 layers, about 70 M parameters). For each:

  * baseline: ``model.generate`` called in this process, greedy, with a
    streamer that timestamps every token: time to first token (TTFT) and the
    decode rate (tokens/s after the first token);
  * server: the real server under gunicorn gthread on loopback, the same
    prompt through the chat template, streamed over HTTP (SSE): TTFT as the
    client sees the first content chunk, and the decode rate between the
    first and the last chunk;
  * 4 and 8 concurrent streams: aggregate tokens/s over the wall time, TTFT p50/p99.

Two servers run side by side in one run: unbatched (NPU_SERVE_BATCH=0, one
``model.generate`` per request, the old path) and batched (concurrent
requests share each forward pass, the default), their measurements
interleaved with each other and with the in-process runs.

First, the per-token steps of the server (guard, detokenizer, SSE chunk) are
timed alone on 20,000 random tokens. Reported then: p50/p90 TTFT of both and the server's added TTFT at p50, the decode
rate of both and the server's overhead in %, and the concurrent throughput.

The checkpoints use a Metaspace (SentencePiece-style) tokenizer, where every
token is whole text: with a byte-level one, random weights emit stray UTF-8
continuation bytes that no server can show until they resolve, which would
be measured as serving latency. Random weights loop quickly, so the server runs with the guard's stop
thresholds switched off (NPU_SERVE_MAX_REPEATED_CHUNKS=0,
NPU_SERVE_REPEAT_BLOCK_COUNT=0): the guard still tracks every token and holds
back repeating text, so its cost is measured, but both sides generate the same
number of tokens. The repetition penalty is 1.0 on both sides (it changes which
tokens are chosen, not the serving overhead).

Run from the repository root (about 8 minutes on 2 cores for both models):
  .venv/bin/python benchmarks/server.py [--runs 20] [--tokens 128] [--models mid]
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER_DIR = os.path.join(ROOT, "roles", "serve", "files", "transformers_server")
sys.path.insert(0, os.path.join(ROOT, "tests", "unit", "transformers_server"))
sys.path.insert(0, SERVER_DIR)

import requests  # noqa: E402  pylint: disable=wrong-import-position
import torch  # noqa: E402  pylint: disable=wrong-import-position
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402  pylint: disable=wrong-import-position
from transformers.generation.streamers import BaseStreamer  # noqa: E402  pylint: disable=wrong-import-position

from tiny_models import build_random_model  # noqa: E402  pylint: disable=wrong-import-position

MODELS = {
    "tiny": {"hidden_size": 64, "layers": 2, "heads": 4, "kv_heads": 2},
    "mid": {"hidden_size": 768, "layers": 8, "heads": 12, "kv_heads": 4},
}
MESSAGES = [{"role": "user", "content": "Write a short story about an NPU fleet that serves models all night."}]


class TimingStreamer(BaseStreamer):
    """Timestamps each generated token (the first put() is the prompt)."""

    def __init__(self):
        self.times = []
        self._prompt_seen = False

    def put(self, value):
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        now = time.perf_counter()
        self.times.extend([now] * value.numel())

    def end(self):
        pass


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


class Baseline:
    """model.generate in this process, with the server's prompt (chat template) and greedy decoding."""

    def __init__(self, path, tokens):
        tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        text = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
        self.input_ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
        self.kwargs = {
            "attention_mask": torch.ones_like(self.input_ids),
            "max_new_tokens": tokens,
            "do_sample": False,
            "pad_token_id": tokenizer.pad_token_id,
        }
        self.model.generate(self.input_ids, **self.kwargs)  # warm-up

    def run(self):
        """(ttft, decode tokens/s, generated tokens)."""
        streamer = TimingStreamer()
        started = time.perf_counter()
        self.model.generate(self.input_ids, streamer=streamer, **self.kwargs)
        times = streamer.times
        return times[0] - started, (len(times) - 1) / (times[-1] - times[0]), len(times)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(path, log, batch):
    port = free_port()
    env = dict(
        os.environ,
        NPU_SERVE_MODEL=path,
        NPU_SERVE_HOST="127.0.0.1",
        NPU_SERVE_PORT=str(port),
        NPU_SERVE_THREADS="12",
        NPU_SERVE_MAX_CONCURRENT="8",
        NPU_SERVE_MAX_QUEUE="2",
        NPU_SERVE_BATCH="1" if batch else "0",
        NPU_SERVE_MAX_REPEATED_CHUNKS="0",
        NPU_SERVE_REPEAT_BLOCK_COUNT="0",
        NPU_SERVE_REPETITION_PENALTY="1.0",
    )
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    process = subprocess.Popen(
        [gunicorn, "-c", "gunicorn.conf.py"],
        cwd=SERVER_DIR,
        env=env,
        stdout=log,  # pylint: disable=consider-using-with
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = "http://127.0.0.1:%d" % port
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("server exited, see its log")
        try:
            if requests.get(base + "/health", timeout=2).status_code == 200:
                return process, base
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not become healthy")


def stream_once(base, tokens):
    """One streamed chat completion: (ttft, decode tokens/s, completion tokens)."""
    body = {"messages": MESSAGES, "max_tokens": tokens, "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    started = time.perf_counter()
    first = last = None
    completion = 0
    with requests.post(base + "/v1/chat/completions", json=body, stream=True, timeout=600) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                continue
            event = json.loads(line[6:])
            if event.get("usage"):
                completion = event["usage"]["completion_tokens"]
            for choice in event["choices"]:
                if choice.get("delta", {}).get("content"):
                    now = time.perf_counter()
                    first = first or now
                    last = now
    return first - started, (completion - 1) / (last - first) if last > first else float("nan"), completion


def concurrent(base, tokens, streams):
    """``streams`` streams released together: (aggregate tokens/s over the wall time, TTFT of each)."""
    results = [None] * streams
    gate = threading.Barrier(streams + 1)

    def run(index):
        gate.wait()
        results[index] = stream_once(base, tokens)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(streams)]
    for thread in threads:
        thread.start()
    gate.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return sum(result[2] for result in results) / wall, [result[0] for result in results]


def measure_servers(path, workdir, name, baseline, runs, tokens, rounds):
    """Both paths at once, measurements interleaved so drift in machine speed hits every side alike:
    single-stream runs (in-process, unbatched, batched in turn), then rounds of 4 and 8 concurrent streams."""
    modes = ("unbatched", "batched")
    processes, bases, logs = [], {}, []
    try:
        for mode in modes:
            log = open(os.path.join(workdir, "%s-%s.log" % (name, mode)), "wb")  # pylint: disable=consider-using-with
            logs.append(log)
            process, base = start_server(path, log, mode == "batched")
            processes.append(process)
            bases[mode] = base
        for base in bases.values():
            stream_once(base, tokens)  # warm-up
            concurrent(base, tokens, 8)
        results = {mode: {"mode": mode, "local": [], "served": [], "streams": {4: ([], []), 8: ([], [])}} for mode in modes}
        for _run in range(runs):
            for mode in modes:
                results[mode]["local"].append(baseline.run())
                results[mode]["served"].append(stream_once(bases[mode], tokens))
        for _round in range(rounds):
            for count in (4, 8):
                for mode in modes:
                    rate, ttft = concurrent(bases[mode], tokens, count)
                    results[mode]["streams"][count][0].append(rate)
                    results[mode]["streams"][count][1].extend(ttft)
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)
        for log in logs:
            log.close()
    for result in results.values():
        result["streams"] = {count: (statistics.median(rates), ttfts) for count, (rates, ttfts) in result["streams"].items()}
    return [results[mode] for mode in modes]


def report(name, params, runs, tokens, results):
    print("\n== %s model: %.1f M parameters, %d runs of up to %d tokens ==" % (name, params / 1e6, runs, tokens))
    for result in results:
        local, served = result["local"], result["served"]
        base_ttft, srv_ttft = [run[0] for run in local], [run[0] for run in served]
        base_p50, srv_p50 = statistics.median(run[1] for run in local), statistics.median(run[1] for run in served)
        pairs = sorted(1 - server[1] / here[1] for here, server in zip(local, served))
        print(
            "-- %s (generated: in-process %s, server %s)" % (result["mode"], sorted({r[2] for r in local}), sorted({r[2] for r in served}))
        )
        print(
            "TTFT  in-process p50 %7.2f ms, server p50 %7.2f ms p90 %7.2f ms: added %5.2f ms"
            % (
                1000 * percentile(base_ttft, 0.5),
                1000 * percentile(srv_ttft, 0.5),
                1000 * percentile(srv_ttft, 0.9),
                1000 * (percentile(srv_ttft, 0.5) - percentile(base_ttft, 0.5)),
            )
        )
        print(
            "decode in-process p50 %7.1f tok/s, server p50 %7.1f tok/s: overhead %5.1f %% (target < 5 %%; pairs p25/p50/p75 %.1f / %.1f / %.1f %%)"
            % (
                base_p50,
                srv_p50,
                100 * (1 - srv_p50 / base_p50),
                100 * percentile(pairs, 0.25),
                100 * percentile(pairs, 0.5),
                100 * percentile(pairs, 0.75),
            )
        )
        result["single"] = srv_p50
    print(
        "\n%-10s %12s | %12s %16s | %12s %16s | %9s"
        % ("path", "1 stream", "4 streams", "TTFT p50/p99", "8 streams", "TTFT p50/p99", "8 vs 1")
    )
    for result in results:
        cells = []
        for count in (4, 8):
            rate, ttfts = result["streams"][count]
            cells.append("%8.1f tok/s %7.0f/%5.0f ms" % (rate, 1000 * percentile(ttfts, 0.5), 1000 * percentile(ttfts, 0.99)))
        print(
            "%-10s %6.1f tok/s | %s | %s | %8.2fx"
            % (result["mode"], result["single"], cells[0], cells[1], result["streams"][8][0] / result["single"])
        )


def bench(name, shape, runs, tokens, workdir, rounds):
    path = os.path.join(workdir, name)
    build_random_model(
        path, hidden_size=shape["hidden_size"], layers=shape["layers"], heads=shape["heads"], kv_heads=shape["kv_heads"], byte_level=False
    )
    baseline = Baseline(path, tokens)
    params = sum(tensor.numel() for tensor in baseline.model.parameters())
    results = measure_servers(path, workdir, name, baseline, runs, tokens, rounds)
    report(name, params, runs, tokens, results)


def pipeline_costs(workdir):
    """Microseconds per token of the server's per-token steps, measured alone."""
    import random  # pylint: disable=import-outside-toplevel
    from npu_fleet_server import protocol  # pylint: disable=import-outside-toplevel
    from npu_fleet_server.detokenizer import IncrementalDetokenizer  # pylint: disable=import-outside-toplevel
    from npu_fleet_server.guards import RepetitionGuard  # pylint: disable=import-outside-toplevel
    from tiny_models import build_tokenizer  # pylint: disable=import-outside-toplevel

    tokenizer = build_tokenizer(os.path.join(workdir, "tokenizer"), byte_level=False)
    rng = random.Random(0)
    ids = [rng.randrange(4, len(tokenizer)) for _index in range(20000)]
    guard, detok = RepetitionGuard(), IncrementalDetokenizer(tokenizer)
    chunk = protocol.text_chunk_formatter("chat", "chatcmpl-x", "model", time.time())
    steps = [
        ("repetition guard (layers 2 and 3)", guard.push),
        ("incremental detokenizer", lambda token: detok.add([token])),
        ("SSE chunk", lambda token: chunk("text")),
    ]
    print("\n== per-token pipeline, %d random tokens ==" % len(ids))
    for label, step in steps:
        started = time.perf_counter()
        for token in ids:
            step(token)
        print("%-36s %6.2f us/token" % (label, (time.perf_counter() - started) / len(ids) * 1e6))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of 4 and of 8 concurrent streams per server")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="intra-op threads for both sides (0: torch's default); 1 leaves a core to the HTTP client",
    )
    args = parser.parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
        os.environ["OMP_NUM_THREADS"] = str(args.torch_threads)
    print("torch %s, %d threads, CPU: %s" % (torch.__version__, torch.get_num_threads(), os.cpu_count()))
    with tempfile.TemporaryDirectory() as workdir:
        pipeline_costs(workdir)
        for name in args.models:
            bench(name, MODELS[name], args.runs, args.tokens, workdir, args.rounds)


if __name__ == "__main__":
    main()
