# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark the latency the HAProxy gateway adds, against the same replicas reached directly.

The gateway is the real one: its haproxy.cfg, models.json and models.map come
from ``gateway_config`` (plugins/module_utils/_gateway.py), written into a
temp directory used as its ``config_dir``, and run by the real HAProxy binary
(``/usr/sbin/haproxy`` unless ``--haproxy``) on free ports of 127.0.0.1. Behind
it, one model with two replicas: OpenAI-compatible fakes (asyncio, HTTP/1.1
keep-alive, one process each) that stream a chat completion as server-sent
events, ``--chunks`` chunks ``--delay-ms`` apart like token decoding, and
answer a non-streamed request at once.

Three paths reach the very same replicas:

  (a) direct: the client talks to the replicas themselves (alternating
      between the two, so both serve as they do behind the gateway): the baseline;
  (b) model port: through the model's own gateway port (no body inspection);
  (c) router: through the router port, which reads the JSON body and routes
      by its "model" field.

Measured:
  * latency: ``--requests`` streamed requests per path, INTERLEAVED (a, b,
    c, a, b, c...) so drift in machine speed hits all paths alike, each path
    on its own keep-alive connection(s) (http.client): time to the first SSE
    ``data:`` line (TTFT) and to the end of the stream. Printed: p50 and p99
    per path, the p50 time from the first event to the end (which shows
    whether the events arrive as they are sent or all at once), and what (b)
    and (c) add over (a) at p50 and p99;
  * throughput: requests/s of non-streamed requests from ``--concurrency``
    keep-alive clients (asyncio), ``--duration`` seconds per path, split
    into 1-second rounds interleaved the same way.

Client, replicas and HAProxy share this machine's CPUs: on a small machine the
throughput through the gateway includes HAProxy competing with the client and
the replicas for the cores, which a gateway on its own host does not.

Target: the gateway adds under 2 ms to TTFT at p50.

Run from the repository root (about 50 s with the defaults):
  .venv/bin/python benchmarks/gateway.py [--requests 300] [--concurrency 8] [--duration 5] [--chunks 16] [--delay-ms 2]
"""

import argparse
import asyncio
import http.client
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAPROXY = "/usr/sbin/haproxy"
MODEL = "bench-model"
TARGET_MS = 2.0
COMPLETIONS = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "Say hello to the NPU fleet."}]


def _import_collection():
    """Make the tree importable as ansible_collections.npu.fleet, and the HAProxy test harness importable."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from collection_link import link_collection  # pylint: disable=import-outside-toplevel

    link_collection(ROOT)
    sys.path.insert(0, os.path.join(ROOT, "tests", "unit"))


_import_collection()

# pylint: disable=wrong-import-position
from ansible_collections.npu.fleet.plugins.module_utils._gateway import gateway_config  # noqa: E402
from haproxy_harness import HaproxyProcess, check_config, free_ports  # noqa: E402

# pylint: enable=wrong-import-position


# ---------------------------------------------------------------------------
# The fake replica: a child process of this script (--replica NAME).
# ---------------------------------------------------------------------------


def _response_head(status, reason, headers, keep_alive):
    lines = ["HTTP/1.1 %d %s" % (status, reason)] + ["%s: %s" % item for item in headers]
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def _chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


async def _replica_main(name, chunks, delay):
    """An OpenAI-compatible replica on 127.0.0.1: GET /health, POST /v1/chat/completions (streamed or not)."""
    replica_header = ("X-Replica", name)

    async def answer_json(writer, status, reason, payload, keep_alive):
        body = json.dumps(payload).encode("utf-8")
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), replica_header]
        writer.write(_response_head(status, reason, headers, keep_alive) + body)
        await writer.drain()

    async def completion(writer, request, keep_alive):
        model = request.get("model")
        created = int(time.time())
        if not request.get("stream"):
            payload = {
                "id": "chatcmpl-%s" % name,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello " * chunks}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks},
            }
            await answer_json(writer, 200, "OK", payload, keep_alive)
            return
        headers = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"), ("Transfer-Encoding", "chunked"), replica_header]
        writer.write(_response_head(200, "OK", headers, keep_alive))
        for index in range(chunks):
            event = {
                "id": "chatcmpl-%s" % name,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": {"content": "hello "}, "finish_reason": "stop" if index == chunks - 1 else None}],
            }
            writer.write(_chunk(b"data: %s\n\n" % json.dumps(event).encode("utf-8")))
            await writer.drain()
            if index < chunks - 1:
                await asyncio.sleep(delay)
        writer.write(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        await writer.drain()

    async def handle(reader, writer):
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                request_line, _sep, header_block = head[:-4].partition(b"\r\n")
                method, path, version = request_line.split(b" ", 2)
                headers = {}
                for line in header_block.split(b"\r\n"):
                    key, sep, value = line.partition(b":")
                    if sep:
                        headers[key.strip().lower()] = value.strip().lower()
                connection = headers.get(b"connection", b"")
                keep_alive = connection != b"close" if version == b"HTTP/1.1" else connection == b"keep-alive"
                if b"transfer-encoding" in headers:
                    await answer_json(writer, 411, "Length Required", {"error": {"message": "send Content-Length"}}, False)
                    return
                body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
                if method == b"GET" and path == b"/health":
                    writer.write(_response_head(200, "OK", [("Content-Type", "text/plain"), ("Content-Length", "2")], keep_alive) + b"ok")
                    await writer.drain()
                elif method == b"POST" and path == COMPLETIONS.encode("ascii"):
                    try:
                        request = json.loads(body)
                    except ValueError:
                        await answer_json(writer, 400, "Bad Request", {"error": {"message": "body is not JSON"}}, keep_alive)
                    else:
                        await completion(writer, request, keep_alive)
                else:
                    await answer_json(writer, 404, "Not Found", {"error": {"message": "no route"}}, keep_alive)
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def replica_process(name, chunks, delay):
    """Run one replica until the parent closes our stdin (it exited, however it exited)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch_parent():
        sys.stdin.buffer.read()
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    asyncio.run(_replica_main(name, chunks, delay))


class Replica:
    """A replica child process; ``port`` once it listens."""

    def __init__(self, name, chunks, delay):
        self.name = name
        command = [sys.executable, os.path.abspath(__file__), "--replica", name, "--chunks", str(chunks), "--delay-ms", str(delay * 1000)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise SystemExit("fake replica %s did not start (exit %s)" % (name, self.process.returncode))
        self.port = int(line)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            pipe.close()


# ---------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------


def _body(stream):
    return json.dumps({"model": MODEL, "messages": MESSAGES, "max_tokens": 16, "stream": stream}).encode("utf-8")


STREAM_BODY = _body(True)
PLAIN_BODY = _body(False)
JSON_HEADERS = {"Content-Type": "application/json"}


class LatencyPath:
    """One path (a, b or c): keep-alive connections used in turn, and its timings."""

    def __init__(self, label, ports, events):
        self.label = label
        self.ports = ports
        self.connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for port in ports]
        self.events = events
        self.turn = 0
        self.ttft, self.total = [], []
        self.replicas = set()

    def stream_once(self, record=True):
        connection = self.connections[self.turn % len(self.connections)]
        self.turn += 1
        started = time.perf_counter()
        connection.request("POST", COMPLETIONS, body=STREAM_BODY, headers=JSON_HEADERS)
        response = connection.getresponse()
        first, events = None, 0
        while True:
            line = response.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                if first is None:
                    first = time.perf_counter()
                events += 1
        finished = time.perf_counter()
        if response.status != 200 or events != self.events:
            raise SystemExit("%s: status %d, %d SSE events instead of %d" % (self.label, response.status, events, self.events))
        self.replicas.add(response.getheader("X-Replica"))
        if record:
            self.ttft.append(first - started)
            self.total.append(finished - started)

    def close(self):
        for connection in self.connections:
            connection.close()


async def _client(port, request, deadline):
    """Non-streamed requests on one keep-alive connection until ``deadline``: (answered, errors)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answered = errors = 0
    try:
        while time.perf_counter() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if head[9:12] == b"200":
                answered += 1
            else:
                errors += 1
    finally:
        writer.close()
    return answered, errors


async def _throughput_round(ports, concurrency, seconds):
    request = b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        COMPLETIONS.encode("ascii"),
        len(PLAIN_BODY),
        PLAIN_BODY,
    )
    started = time.perf_counter()
    results = await asyncio.gather(*(_client(ports[index % len(ports)], request, started + seconds) for index in range(concurrency)))
    elapsed = time.perf_counter() - started
    return sum(result[0] for result in results), sum(result[1] for result in results), elapsed


def throughput(paths, concurrency, duration):
    """Requests/s per path label, ``duration`` 1-second rounds per path, interleaved."""
    answered = dict((path.label, 0) for path in paths)
    elapsed = dict((path.label, 0.0) for path in paths)
    rounds = max(1, int(round(duration)))
    for _round in range(rounds):
        for path in paths:
            done, errors, seconds = asyncio.run(_throughput_round(path.ports, concurrency, duration / rounds))
            if errors:
                raise SystemExit("%s: %d non-200 answers under load" % (path.label, errors))
            answered[path.label] += done
            elapsed[path.label] += seconds
    return dict((label, answered[label] / elapsed[label]) for label in answered)


# ---------------------------------------------------------------------------
# The gateway
# ---------------------------------------------------------------------------


def write_gateway(workdir, replicas):
    """haproxy.cfg, models.json and models.map from gateway_config into ``workdir``: (config path, ports)."""
    router_port, stats_port, model_port = free_ports(3)
    generated = gateway_config(
        [{"name": MODEL, "gateway_port": model_port, "max_model_len": 4096}],
        [{"model": MODEL, "name": replica.name, "address": "127.0.0.1", "port": replica.port} for replica in replicas],
        {
            "router_port": router_port,
            "stats_port": stats_port,
            "bind_address": "127.0.0.1",
            "port_range": (model_port, model_port),
            "config_dir": workdir,
            "runtime_socket": os.path.join(workdir, "admin.sock"),
        },
    )
    files = {"haproxy.cfg": generated["config"], "models.json": generated["models_json"], "models.map": generated["model_map"]}
    for filename, text in files.items():
        with open(os.path.join(workdir, filename), "w", encoding="utf-8") as handle:
            handle.write(text)
    config = os.path.join(workdir, "haproxy.cfg")
    check_config(config)
    return config, {"router": router_port, "stats": stats_port, "model": generated["ports"][MODEL]}


def haproxy_version(binary):
    output = subprocess.run([binary, "-v"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False, timeout=10).stdout
    return output.decode("utf-8", "replace").splitlines()[0].strip()


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def report(paths, rates, args):
    direct = paths[0]
    width = 14
    header = "%-28s" % "" + "".join("%*s" % (width, path.label) for path in paths)
    print(header)
    print("-" * len(header))

    def row(label, values, fmt="%*.3f"):
        print("%-28s" % label + "".join(("%*s" % (width, "-")) if value is None else (fmt % (width, value)) for value in values))

    for name, attribute in (("TTFT", "ttft"), ("total", "total")):
        for fraction, tag in ((0.5, "p50"), (0.99, "p99")):
            row("%s %s (ms)" % (name, tag), [1000 * percentile(getattr(path, attribute), fraction) for path in paths])
    # Streamed progressively, the rest of the stream comes (chunks - 1) delays after the first event; held back, it comes with it.
    row("first to last event p50 (ms)", [1000 * percentile([t - f for f, t in zip(path.ttft, path.total)], 0.5) for path in paths])
    for name, attribute in (("TTFT", "ttft"), ("total", "total")):
        for fraction, tag in ((0.5, "p50"), (0.99, "p99")):
            base = percentile(getattr(direct, attribute), fraction)
            added = [None] + [1000 * (percentile(getattr(path, attribute), fraction) - base) for path in paths[1:]]
            row("added %s %s (ms)" % (name, tag), added, "%+*.3f")
    row("req/s (%d clients, %gs)" % (args.concurrency, args.duration), [rates[path.label] for path in paths], "%*.0f")
    added = [1000 * (percentile(path.ttft, 0.5) - percentile(direct.ttft, 0.5)) for path in paths[1:]]
    worst = max(added)
    print(
        "\nverdict: %s: added p50 TTFT %s (target: added p50 TTFT under %g ms)"
        % (
            "PASS" if worst < TARGET_MS else "FAIL",
            ", ".join("%s %+.3f ms" % (path.label, value) for path, value in zip(paths[1:], added)),
            TARGET_MS,
        )
    )


def run(args, workdir):
    delay = args.delay_ms / 1000.0
    replicas, haproxy, paths = [], None, []
    try:
        for name in ("replica-a", "replica-b"):
            replicas.append(Replica(name, args.chunks, delay))
        config, ports = write_gateway(workdir, replicas)
        haproxy = HaproxyProcess(config, [ports["router"], ports["model"], ports["stats"]])
        events = args.chunks + 1  # the chunks and [DONE]
        paths = [
            LatencyPath("direct", [replica.port for replica in replicas], events),
            LatencyPath("model port", [ports["model"]], events),
            LatencyPath("router", [ports["router"]], events),
        ]
        for _warm in range(10):
            for path in paths:
                path.stream_once(record=False)
        # leastconn sends one request at a time to the replicas in turn, whichever gateway port it came by.
        reached = set().union(*(path.replicas for path in paths[1:]))
        if len(reached) != len(replicas):
            raise SystemExit("the gateway reached only %s: a replica is down behind it\n%s" % (sorted(reached), haproxy.log()))
        print(
            "gateway: router :%d, model port :%d, 2 replicas; %d streamed requests per path, %d chunks %g ms apart"
            % (ports["router"], ports["model"], args.requests, args.chunks, args.delay_ms)
        )
        started = time.perf_counter()
        for _index in range(args.requests):
            for path in paths:
                path.stream_once()
        latency_seconds = time.perf_counter() - started
        for path in paths:
            path.close()
        rates = throughput(paths, args.concurrency, args.duration)
        print("latency phase %.1f s, throughput phase %.1f s\n" % (latency_seconds, time.perf_counter() - started - latency_seconds))
        report(paths, rates, args)
    finally:
        for path in paths:
            path.close()
        if haproxy is not None:
            haproxy.stop()
        for replica in replicas:
            replica.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="streamed requests per path for the latency figures")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive clients for the requests/s figures")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per path for the requests/s figures")
    parser.add_argument("--chunks", type=int, default=16, help="SSE chunks per streamed completion")
    parser.add_argument("--delay-ms", type=float, default=2.0, help="delay between two chunks, like token decoding")
    parser.add_argument("--haproxy", default=HAPROXY, help="the HAProxy binary (Debian's haproxy package)")
    parser.add_argument("--replica", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    if args.replica:
        replica_process(args.replica, args.chunks, args.delay_ms / 1000.0)
        return
    if args.requests < 1 or args.concurrency < 1 or args.duration <= 0 or args.chunks < 1 or args.delay_ms < 0:
        parser.error("--requests, --concurrency, --duration and --chunks must be positive, --delay-ms not negative")
    if not (os.path.isfile(args.haproxy) and os.access(args.haproxy, os.X_OK)):
        raise SystemExit(
            "haproxy not found at %s: this benchmark runs the real HAProxy 2.6+ binary; install it with "
            "'apt-get install haproxy' or pass --haproxy PATH" % args.haproxy
        )
    # The harness takes $HAPROXY first: the binary measured is the one named here.
    os.environ["HAPROXY"] = args.haproxy

    def terminate(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    # Also when started from a shell that ignores SIGINT in background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print(
        "machine: %d CPUs (%s), %s, python %s" % (os.cpu_count(), platform.machine(), haproxy_version(args.haproxy), sys.version.split()[0])
    )
    # Short, under /tmp: the runtime socket's path must fit in 107 bytes.
    workdir = tempfile.mkdtemp(prefix="npu-gw-", dir="/tmp")
    try:
        run(args, workdir)
    except KeyboardInterrupt:
        print("interrupted; HAProxy and the replicas are stopped", file=sys.stderr)
        sys.exit(130)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
