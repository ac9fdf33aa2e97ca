"""gunicorn's gthread worker, reading each request whole before a thread sees it.

Stock gthread hands a connection to a thread as soon as its socket is
readable; the thread then blocks reading headers and body with no deadline,
so a few clients that send half a request (slow, or half-open) take every
thread, and /health and inference stall. Here the worker's main loop reads
requests itself, non-blocking: a connection reaches the thread pool only
when a whole request (headers and body, by Content-Length or chunked) is
buffered, so reading it never blocks a thread. A request that is not whole
within ``NPU_SERVE_REQUEST_READ_TIMEOUT`` seconds of its first byte gets a
408 and is closed; a body over ``NPU_SERVE_MAX_BODY_BYTES`` (declared, or
counted while chunked) gets a 413 at once and is drained, never buffered.
While the response is written, a client that stops reading for
``NPU_SERVE_SEND_TIMEOUT`` seconds is dropped (the stream is cancelled, its
generation stops).

Same process model as gthread (gevent/eventlet stay banned); the worker logs
as ``gthread+whole-request``.
"""

from __future__ import annotations

import errno
import json
import selectors
import time
from functools import partial

from gunicorn import http
from gunicorn.workers.gthread import ThreadWorker

from .settings import transport_from_env

MAX_HEADER_BYTES = 65536
MAX_CHUNK_LINE = 4096
READ_SIZE = 262144


class BadRequest(Exception):
    pass


class Incoming:
    """Bytes of one request as they arrive, and whether they make a whole request yet."""

    def __init__(self, deadline: float, data: bytes = b""):
        self.deadline = deadline
        self.data = bytearray(data)
        self.header_end = -1
        self.length = None  # body bytes by Content-Length
        self.chunked = False
        self.expect_continue = False
        self.scan = 0  # chunked: where the next chunk-size line starts
        self.body_bytes = 0  # chunked: decoded bytes so far
        self.body_pending = 0  # chunked: size of the chunk still arriving
        self.refused = False  # a 413 was sent; the rest is drained
        self.continued = False

    def _headers(self) -> None:
        end = self.data.find(b"\r\n\r\n")
        if end < 0:
            if len(self.data) > MAX_HEADER_BYTES:
                raise BadRequest("request headers larger than %d bytes" % MAX_HEADER_BYTES)
            return
        self.header_end = end + 4
        self.scan = self.header_end
        lines = bytes(self.data[:end]).split(b"\r\n")
        for line in lines[1:]:
            name, _sep, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                if not value.isdigit() or (self.length is not None and self.length != int(value)):
                    raise BadRequest("bad Content-Length")
                self.length = int(value)
            elif name == b"transfer-encoding":
                self.chunked = value.split(b",")[-1].strip() == b"chunked"
            elif name == b"expect" and value == b"100-continue":
                self.expect_continue = True
        if self.chunked and self.length is not None:
            raise BadRequest("both Content-Length and Transfer-Encoding")

    def _chunks_done(self) -> bool:
        data = self.data
        while True:
            line_end = data.find(b"\r\n", self.scan)
            if line_end < 0:
                if len(data) - self.scan > MAX_CHUNK_LINE:
                    raise BadRequest("chunk size line too long")
                return False
            size_text = bytes(data[self.scan : line_end]).split(b";")[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BadRequest("bad chunk size") from None
            if size == 0:
                # Trailers (usually none) end with an empty line.
                return data.find(b"\r\n\r\n", line_end) >= 0
            if len(data) < line_end + 2 + size + 2:
                self.body_pending = size
                return False
            self.body_bytes += size
            self.scan = line_end + 2 + size + 2

    def body_size(self) -> int:
        """Body bytes seen or declared so far (for the size limit)."""
        if self.length is not None:
            return self.length
        if self.chunked:
            return self.body_bytes + self.body_pending
        return 0

    def complete(self) -> bool:
        if self.header_end < 0:
            self._headers()
            if self.header_end < 0:
                return False
        if self.chunked:
            return self._chunks_done()
        return len(self.data) >= self.header_end + (self.length or 0)


def _response(status: str, message: str) -> bytes:
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}).encode()
    head = "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (status, len(body))
    return head.encode() + body


class WholeRequestThreadWorker(ThreadWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.transport = transport_from_env()
        self.reading = {}  # conn -> Incoming

    @classmethod
    def check_config(cls, cfg, log):
        super().check_config(cfg, log)
        if cfg.is_ssl:
            raise RuntimeError("the npu.fleet server reads plain HTTP; terminate TLS in front of it (the gateway does)")

    # -- counting, through the app's metrics ------------------------------------
    def _dropped(self, reason: str) -> None:
        server = getattr(self.wsgi, "extensions", {}).get("npu_fleet_server") if self.wsgi else None
        if server is not None:
            server.metrics.inc("connections_dropped_total", reason=reason)

    # -- the read stage, on the main loop ---------------------------------------
    def enqueue_req(self, conn):
        """Every path to the thread pool comes here: only a whole request goes on."""
        if getattr(conn, "whole_request", False):
            conn.whole_request = False
            super().enqueue_req(conn)
            return
        leftover = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        incoming = Incoming(time.monotonic() + self.transport.request_read_timeout, leftover)
        conn.sock.setblocking(False)
        self.reading[conn] = incoming
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))
        if leftover:
            self._advance(conn, incoming)

    def _on_readable(self, conn, _sock):
        incoming = self.reading.get(conn)
        if incoming is None:
            return
        while True:
            try:
                chunk = conn.sock.recv(READ_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._close(conn)
                return
            if not chunk:
                self._close(conn)  # the client went away (or half-closed before a whole request)
                return
            if incoming.refused:
                continue  # draining a refused body
            incoming.data.extend(chunk)
            if len(chunk) < READ_SIZE:
                break
        if not incoming.refused:
            self._advance(conn, incoming)

    def _advance(self, conn, incoming):
        try:
            whole = incoming.complete()
        except BadRequest as exc:
            self._refuse(conn, incoming, "400 Bad Request", str(exc), "bad_request")
            return
        limit = self.transport.max_body_bytes
        if incoming.header_end >= 0 and incoming.body_size() > limit:
            message = "request body is larger than %d bytes (NPU_SERVE_MAX_BODY_BYTES)" % limit
            self._refuse(conn, incoming, "413 Request Entity Too Large", message, "too_large")
            return
        if not whole:
            if incoming.expect_continue and not incoming.continued:
                incoming.continued = True
                self._send(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
            return
        self._hand_over(conn, incoming)

    def _hand_over(self, conn, incoming):
        self.poller.unregister(conn.sock)
        del self.reading[conn]
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(bytes(incoming.data))
        conn.data_ready = True
        conn.whole_request = True
        self.enqueue_req(conn)

    def _send(self, conn, data: bytes) -> None:
        try:
            conn.sock.send(data)  # small; fits the socket buffer of a fresh connection
        except OSError:
            pass

    def _refuse(self, conn, incoming, status, message, reason):
        """Answer at once, then drain what the client still sends until the deadline (no reset before it reads the answer)."""
        self._dropped(reason)
        self._send(conn, _response(status, message))
        incoming.refused = True
        incoming.data = bytearray()
        incoming.deadline = min(incoming.deadline, time.monotonic() + 2.0)
        try:
            conn.sock.shutdown(1)  # SHUT_WR: the answer is complete
        except OSError:
            pass

    def _close(self, conn):
        incoming = self.reading.pop(conn, None)
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        self.nr_conns -= 1
        conn.close()
        return incoming

    def murder_pending(self):
        """Runs every loop turn (at most 1 s apart): drop requests not whole by their deadline."""
        super().murder_pending()
        now = time.monotonic()
        for conn, incoming in list(self.reading.items()):
            if incoming.deadline <= now:
                if not incoming.refused:
                    self._dropped("read_timeout")
                    if incoming.data:
                        message = "the request did not arrive whole within %.0f s (NPU_SERVE_REQUEST_READ_TIMEOUT)" % (
                            self.transport.request_read_timeout
                        )
                        self._send(conn, _response("408 Request Timeout", message))
                self._close(conn)

    # -- the write side, in the request thread ------------------------------------
    def handle_request(self, req, conn):
        # Reading is done (the request is buffered); a timeout now bounds each blocked send.
        conn.sock.settimeout(self.transport.send_timeout)
        return super().handle_request(req, conn)

    def handle_error(self, req, client, addr, exc):
        if isinstance(exc, OSError) and getattr(exc, "errno", None) in (None, errno.ETIMEDOUT):
            self.log.info("dropped a client that stopped reading its response: %s", exc)
            return
        super().handle_error(req, client, addr, exc)


# gunicorn logs the class name as the worker type ("Using worker: ...").
WholeRequestThreadWorker.__name__ = "gthread+whole-request"
