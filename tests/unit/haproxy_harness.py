"""A real HAProxy process and fake OpenAI replicas, for tests of the gateway.

The gateway's configuration is only proven by the HAProxy that runs it, so
tests start the real binary (Debian's ``haproxy`` package, which CI installs
too) on free ports, in front of tiny OpenAI-compatible servers that say which
replica served each request. The API, kept small on purpose:

* ``haproxy_binary()``: the binary's path; ``HaproxyMissing`` (not a skip)
  with the install command when it is absent;
* ``check_config(path)``: ``haproxy -c -f path``, its output; ``AssertionError``
  with that output when HAProxy refuses the file;
* ``free_ports(count)``: TCP ports free on 127.0.0.1 right now;
* ``HaproxyProcess(config_path, wait_ports)``: ``haproxy -db -f`` started and
  answering on ``wait_ports``; ``log()``, ``stop()``; a context manager;
* ``FakeReplica(name)``: an OpenAI-like server on 127.0.0.1 (``port``);
  ``health_status`` can be changed at run time; ``stop()``; a context manager;
* ``request(port, method, path, body, headers)``: one HTTP request with the
  standard library, ``(status, headers, body bytes)``.

Standard library only, so any test (or helper) can import it.
"""

import http.client
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

__all__ = ["FakeReplica", "HaproxyMissing", "HaproxyProcess", "check_config", "free_ports", "haproxy_binary", "request"]

# Debian and Ubuntu put it in /usr/sbin, which a non-root PATH often lacks.
_CANDIDATES = ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy", "/usr/bin/haproxy")


class HaproxyMissing(RuntimeError):
    """The haproxy binary is not installed: the gateway tests need the real one."""


def haproxy_binary():
    """Path of the haproxy binary (``$HAPROXY`` first), or ``HaproxyMissing`` saying how to install it."""
    for candidate in (os.environ.get("HAPROXY"), shutil.which("haproxy")) + _CANDIDATES:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise HaproxyMissing(
        "haproxy is not installed (looked in $HAPROXY, PATH and %s): the gateway tests run the real HAProxy 2.6+ "
        "with the Prometheus exporter; install it with 'apt-get install haproxy'" % ", ".join(_CANDIDATES)
    )


def check_config(path):
    """``haproxy -c -f path``: its output, or ``AssertionError`` with the output when the file is refused."""
    result = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30, check=False
    )
    output = result.stdout.decode("utf-8", "replace")
    if result.returncode != 0:
        raise AssertionError("haproxy -c -f %s failed (exit %d):\n%s" % (path, result.returncode, output))
    return output


def free_ports(count, host="127.0.0.1"):
    """``count`` distinct TCP ports nothing listens on now (all held open together, then released)."""
    sockets = []
    try:
        while len(sockets) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _answers(host, port):
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


class HaproxyProcess:
    """``haproxy -db -f config_path``, in the foreground, its output in ``<config>.log``.

    Returns from the constructor once every port of ``wait_ports`` accepts
    connections; raises ``RuntimeError`` with HAProxy's output if it exits or
    does not listen within ``timeout`` seconds.
    """

    def __init__(self, config_path, wait_ports, timeout=10.0, host="127.0.0.1"):
        self.config_path = str(config_path)
        self.log_path = self.config_path + ".log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen([haproxy_binary(), "-db", "-f", self.config_path], stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        waiting = list(wait_ports)
        while waiting:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError("haproxy exited with %s before listening:\n%s" % (self.process.returncode, self.log()))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("haproxy does not answer on ports %s after %ss:\n%s" % (waiting, timeout, self.log()))
            waiting = [port for port in waiting if not _answers(host, port)]
            if waiting:
                time.sleep(0.05)

    def log(self):
        """Everything HAProxy wrote so far (its alerts and the request log)."""
        self._log.flush()
        with open(self.log_path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")

    def stop(self):
        """Stop HAProxy now (SIGTERM: a hard stop, open connections are closed) and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, payload, content_type="application/json"):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        replica = self.server.replica
        if self.path == "/health":
            status = replica.health_status
            self._send(status, b"ok" if status == 200 else b"unhealthy", "text/plain")
        else:
            self._send(404, {"error": {"message": "no route GET %s" % self.path}})

    def _body(self):
        if "chunked" not in (self.headers.get("Transfer-Encoding") or "").lower():
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            if not size:
                while self.rfile.readline().strip():  # trailers
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def do_POST(self):
        replica = self.server.replica
        raw = self._body()
        length = len(raw)
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": {"message": "no route POST %s" % self.path}})
            return
        try:
            request = json.loads(raw.decode("utf-8"))
        except ValueError:
            self._send(400, {"error": {"message": "body is not JSON"}})
            return
        with replica.lock:
            replica.served += 1
        model = request.get("model")
        if not request.get("stream"):
            content = "served by %s" % replica.name
            self._send(
                200,
                {
                    "id": "chatcmpl-%s" % replica.name,
                    "object": "chat.completion",
                    "model": model,
                    "backend": replica.name,
                    "received_bytes": length,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                },
            )
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for index in range(replica.stream_chunks):
            chunk = {"object": "chat.completion.chunk", "model": model, "backend": replica.name, "index": index}
            self._chunk(("data: %s\n\n" % json.dumps(chunk)).encode("utf-8"))
            time.sleep(replica.stream_delay)
        self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """Quiet about connections HAProxy resets (its health checks close that way)."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, socket.timeout)):
            http.server.ThreadingHTTPServer.handle_error(self, request, client_address)


class FakeReplica:
    """A tiny OpenAI-compatible replica on 127.0.0.1, in a thread.

    ``GET /health`` answers ``health_status`` (set it at run time to take the
    replica out of a gateway's rotation). ``POST /v1/chat/completions``
    answers JSON naming the replica (``backend``) and echoing ``model``; with
    ``"stream": true`` it streams ``stream_chunks`` server-sent events,
    ``stream_delay`` seconds apart. ``served`` counts completions.
    """

    def __init__(self, name, health_status=200, stream_chunks=5, stream_delay=0.2):
        self.name = name
        self.health_status = health_status
        self.stream_chunks = stream_chunks
        self.stream_delay = stream_delay
        self.served = 0
        self.lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.replica = self
        self.port = self._server.server_address[1]
        # A short poll interval: stop() returns within 0.1 s.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), name="fake-replica-%s" % name, daemon=True)
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


def request(port, method, path, body=None, headers=None, host="127.0.0.1", timeout=10.0):
    """One request on a new connection: ``(status, lower-cased headers, body bytes)``.

    ``body`` may be bytes, text or any JSON value (sent as JSON).
    """
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode("utf-8")
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        data = response.read()
        return response.status, dict((key.lower(), value) for key, value in response.getheaders()), data
    finally:
        connection.close()
