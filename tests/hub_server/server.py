"""A local model hub speaking the HTTP API of the Hugging Face Hub and of ModelScope.

TEST EQUIPMENT ONLY: a standard-library ``ThreadingHTTPServer`` that the
unmodified ``huggingface_hub`` and ``modelscope`` clients download through,
so the provisioning code is tested against the real clients and their real
requests, with no network. What it answers is what those clients read
(huggingface_hub 2.4 ``file_download.py``, ``hf_api.py``, ``utils/_http.py``;
modelscope-hub 0.5 ``_legacy_api.py``, ``_download.py``, ``errors.py``):

Hugging Face Hub
  ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}``
      model info: ``sha`` (the commit), ``siblings`` (``rfilename``; with
      ``?blobs=True`` also ``size``, ``blobId`` and for LFS files
      ``lfs {sha256, size, pointerSize}``), ``private``.
  ``GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=&expand=``
      the tree listing ``snapshot_download`` uses since huggingface_hub 1.x:
      ``type``, ``path``, ``size``, ``oid``, ``lfs {oid, size, pointerSize}``.
  ``HEAD|GET /{repo}/resolve/{rev}/{file}``
      regular files: 200, ``ETag`` = git blob sha1; LFS files: 302 to the
      CDN route on another origin (``cdn_host``, by default the request's
      host with 127.0.0.1 and localhost swapped) with ``X-Linked-Etag`` =
      sha256 and ``X-Linked-Size``, as the Hub does (or 200 with the same
      headers when ``lfs_redirect`` is off). Always ``X-Repo-Commit``,
      ``Accept-Ranges``, ``Content-Length``; ``Range`` gives 206 with
      ``Content-Range`` (416 beyond the end).
  ``HEAD|GET /_cdn/{sha256}?file=``
      the CDN: no authentication (a signed URL on the real Hub), Range.
  Errors carry ``X-Error-Code`` / ``X-Error-Message`` and a JSON ``error``
  body: 401 ``RepoNotFound`` without a token on a private repository, 401
  "Invalid credentials in Authorization header" for an unknown token, 404
  ``RepoNotFound`` / ``RevisionNotFound`` / ``EntryNotFound``.

ModelScope (``/api/v1``)
  ``GET /api/v1/models/{repo}`` (repository info), ``.../revisions``
  (branches and tags), ``.../repo/files?Revision=&Recursive=&Root=`` (the file
  listing: ``Path``, ``Name``, ``Type`` blob/tree, ``Size``, ``Sha256``,
  ``IsLFS``, ``Revision``), ``HEAD|GET .../repo?Revision=&FilePath=`` (the
  file, with Range), ``/api/v1/repos/internalAccelerationInfo`` (404: not on
  Alibaba Cloud's network). Errors are ModelScope's JSON envelope
  (``Code``, ``Message``, ``RequestId``, ``Success: false``) with the HTTP
  status the client maps (401, 404).

Test knobs (Python API, and the same over HTTP under ``/_hub/`` for a
server running in another process): ``cut(file, after)`` ends the next
response body for that file after ``after`` bytes and drops the connection
(optionally stopping the whole server: it "dies" mid-download);
``stop()`` / ``start()`` on the same port; ``rate_limit`` in bytes per second;
``log``, the request log (method, path, file, Range, status, body bytes sent,
whether a valid, invalid or no token came; never the token itself).
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .repos import POINTER_SIZE, Repo, RepoFile

EPOCH_ISO = "2025-01-01T00:00:00.000Z"
CHUNK = 64 * 1024


@dataclass
class Cut:
    """Serve only ``after`` bytes of the next ``times`` bodies of ``file``, then drop the connection."""

    file: str
    after: int
    times: int = 1
    then_stop: bool = False
    repo: Optional[str] = None


@dataclass
class Record:
    """One request as the server saw it."""

    method: str
    path: str
    api: str  # hf, cdn, ms, control, unknown
    repo: Optional[str] = None
    file: Optional[str] = None
    range: Optional[str] = None
    auth: str = "none"  # none, valid, invalid
    status: int = 0
    sent: int = 0
    cut: bool = False
    time: float = field(default_factory=time.time)


class HubServer:
    """The local hub. ``with HubServer() as hub:`` starts it on a free loopback port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, cdn_host: Optional[str] = None, lfs_redirect: bool = True):
        self.host = host
        self.port = port
        # The CDN must be another origin than the API (the Hub's is cdn-lfs.hf.co), so that the clients'
        # "drop the Authorization header off the Hub" logic is exercised. Unless given, it is the name the
        # request came in by with 127.0.0.1 and localhost swapped (any other name is kept: same origin).
        self.cdn_host = cdn_host
        self.lfs_redirect = lfs_redirect
        self.repos = {}  # type: Dict[str, Repo]
        self.cuts = []  # type: List[Cut]
        self.rate_limit = None  # type: Optional[int]
        self.log = []  # type: List[Record]
        self._lock = threading.Lock()
        self._httpd = None  # type: Optional[ThreadingHTTPServer]
        self._thread = None  # type: Optional[threading.Thread]
        self._connections = set()  # type: set
        self.stopped = threading.Event()

    # ------------------------------------------------------------------ repositories

    def add_repo(self, repo_id: str, root: str, **kwargs: Any) -> Repo:
        """Serve directory ``root`` as ``repo_id`` (owner/name); see Repo for the keyword arguments."""
        repo = Repo(repo_id, root, **kwargs)
        with self._lock:
            self.repos[repo_id] = repo
        return repo

    @property
    def tokens(self) -> set:
        return set(token for repo in self.repos.values() for token in repo.tokens)

    # ------------------------------------------------------------------ life cycle

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host == "0.0.0.0" else self.host
        return "http://%s:%d" % (host, self.port)

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self) -> "HubServer":
        """Listen (again) on the same port; a first start with port 0 picks a free one."""
        if self._httpd is not None:
            return self
        httpd = _Server((self.host, self.port), _Handler)
        httpd.hub = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self.stopped.clear()
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection, mid-body ones included (the server "dies")."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()
        self.stopped.set()

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ knobs and log

    def cut(self, file: str, after: int, times: int = 1, then_stop: bool = False, repo: Optional[str] = None) -> None:
        """End the next ``times`` bodies of ``file`` after ``after`` bytes (then stop the server if asked)."""
        with self._lock:
            self.cuts.append(Cut(file=file, after=after, times=times, then_stop=then_stop, repo=repo))

    def reset(self) -> None:
        """No faults, no rate limit, an empty log."""
        with self._lock:
            self.cuts = []
            self.rate_limit = None
            self.log = []

    def clear_log(self) -> None:
        with self._lock:
            self.log = []

    def records(self, file: Optional[str] = None, method: Optional[str] = None, api: Optional[str] = None) -> List[Record]:
        """Logged requests, filtered by repository file, method and API."""
        with self._lock:
            found = list(self.log)
        return [
            r
            for r in found
            if (file is None or r.file == file) and (method is None or r.method == method) and (api is None or r.api == api)
        ]

    def body_bytes(self) -> int:
        """Bytes of file content sent since the log was last cleared."""
        return sum(r.sent for r in self.records())

    def _take_cut(self, repo_id: Optional[str], path: str, length: int) -> Optional[Cut]:
        """The cut for a response of ``length`` bytes of ``path``: only a response longer than the cut's
        ``after`` takes it (a short read of the same file, such as a client reading the header, does not)."""
        with self._lock:
            for cut in self.cuts:
                if cut.file == path and cut.times > 0 and cut.after < length and (cut.repo is None or cut.repo == repo_id):
                    cut.times -= 1
                    return Cut(cut.file, cut.after, 1, cut.then_stop, cut.repo)
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    hub = None  # type: HubServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "npu-fleet-test-hub/1"

    # -------------------------------------------------------------- plumbing

    def setup(self) -> None:
        super().setup()
        with self.hub._lock:
            self.hub._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.hub._lock:
                self.hub._connections.discard(self.connection)

    @property
    def hub(self) -> HubServer:
        return self.server.hub  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # the request log is self.hub.log

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_POST(self) -> None:
        self._dispatch(head=False)

    def _dispatch(self, head: bool) -> None:
        split = urlsplit(self.path)
        self.query = dict((k, v[-1]) for k, v in parse_qs(split.query, keep_blank_values=True).items())
        self.segments = [unquote(s) for s in split.path.split("/")[1:]]
        self.record = Record(method=self.command, path=self.path, api="unknown", range=self.headers.get("Range"))
        self.record.auth = self._auth()
        try:
            if self.segments[:1] == ["_hub"]:
                self.record.api = "control"
                self._control()
            elif self.segments[:1] == ["_cdn"]:
                self.record.api = "cdn"
                self._cdn(head)
            elif self.segments[:2] == ["api", "v1"]:
                self.record.api = "ms"
                self._modelscope(head)
            elif self.segments[:2] == ["api", "models"]:
                self.record.api = "hf"
                self._hf_api()
            elif len(self.segments) >= 5 and self.segments[2] == "resolve":
                self.record.api = "hf"
                self._hf_resolve(head)
            else:
                self._json(404, {"error": "Not Found"})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with self.hub._lock:
                self.hub.log.append(self.record)

    # -------------------------------------------------------------- responses

    def _token(self) -> Optional[str]:
        header = self.headers.get("Authorization") or ""
        if header.lower().startswith("bearer "):
            return header[7:].strip() or None
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _sep, value = part.strip().partition("=")
            if name == "m_session_id" and value:
                return value
        return None

    def _auth(self) -> str:
        token = self._token()
        if token is None:
            return "none"
        return "valid" if token in self.hub.tokens else "invalid"

    def _send(self, status: int, body: bytes, headers: Optional[Dict[str, str]] = None, head: bool = False) -> None:
        self.record.status = status
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _json(self, status: int, data: Any, headers: Optional[Dict[str, str]] = None, head: bool = False) -> None:
        all_headers = {"Content-Type": "application/json; charset=utf-8"}
        all_headers.update(headers or {})
        self._send(status, json.dumps(data).encode("utf-8"), all_headers, head)

    def _read_json_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw.decode("utf-8")) if raw else {}

    def _send_file(self, entry: RepoFile, repo_id: Optional[str], head: bool, headers: Dict[str, str]) -> None:
        """The file, whole or the requested range; the cut fault and the rate limit apply to the body."""
        size = entry.size
        start, end, status = 0, size - 1, 200
        wanted = self.headers.get("Range")
        if wanted:
            parsed = _parse_range(wanted, size)
            if parsed is None:
                self._send(416, b"", dict(headers, **{"Content-Range": "bytes */%d" % size}), head)
                return
            start, end = parsed
            status = 206
        length = max(0, end - start + 1)
        self.record.status = status
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        self.end_headers()
        if head or not length:
            return
        cut = self.hub._take_cut(repo_id, entry.path, length)
        limit = length if cut is None else min(length, cut.after)
        sent = 0
        began = time.monotonic()
        with open(entry.local, "rb") as handle:
            handle.seek(start)
            while sent < limit:
                block = handle.read(min(CHUNK, limit - sent))
                if not block:
                    break
                self.wfile.write(block)
                sent += len(block)
                self.record.sent = sent
                rate = self.hub.rate_limit
                if rate:
                    ahead = sent / float(rate) - (time.monotonic() - began)
                    if ahead > 0:
                        time.sleep(ahead)
        if cut is not None and sent < length:
            self.record.cut = True
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            if cut.then_stop:
                threading.Thread(target=self.hub.stop, daemon=True).start()

    # -------------------------------------------------------------- Hugging Face

    def _hf_error(self, status: int, code: Optional[str], message: str, extra: Optional[Dict[str, str]] = None, head: bool = False) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        headers.update(extra or {})
        self._json(status, {"error": message}, headers, head)

    def _hf_repo(self, repo_id: str, head: bool = False) -> Optional[Repo]:
        """The repository if this caller may read it; otherwise the Hub's error is sent and None returned."""
        self.record.repo = repo_id
        auth = self.record.auth
        if auth == "invalid":
            self._hf_error(401, None, "Invalid credentials in Authorization header", head=head)
            return None
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and auth == "none"):
            # The Hub answers 401 to anonymous callers and 404 to authenticated ones, for missing and private alike.
            self._hf_error(401 if auth == "none" else 404, "RepoNotFound", "Repository not found", head=head)
            return None
        if repo.private and self._token() not in repo.tokens:
            self._hf_error(404, "RepoNotFound", "Repository not found", head=head)
            return None
        return repo

    def _hf_api(self) -> None:
        # /api/models/{owner}/{name}[/revision/{rev} | /tree/{rev}[/{path}]]
        seg = self.segments
        if len(seg) < 4:
            self._hf_error(404, None, "Not Found")
            return
        repo = self._hf_repo("%s/%s" % (seg[2], seg[3]))
        if repo is None:
            return
        rest = seg[4:]
        if not rest or rest[0] == "revision":
            revision = rest[1] if len(rest) > 1 else None
            commit = repo.resolve(revision)
            if commit is None:
                self._hf_error(404, "RevisionNotFound", "Invalid rev id: %s" % revision)
                return
            self._json(200, self._model_info(repo, blobs=_true(self.query.get("blobs"))))
        elif rest[0] == "tree" and len(rest) >= 2:
            commit = repo.resolve(rest[1])
            if commit is None:
                self._hf_error(404, "RevisionNotFound", "Invalid rev id: %s" % rest[1])
                return
            under = "/".join(rest[2:]).strip("/")
            self._json(200, self._tree(repo, under, _true(self.query.get("recursive")), _true(self.query.get("expand"))))
        else:
            self._hf_error(404, None, "Not Found")

    def _model_info(self, repo: Repo, blobs: bool) -> Dict[str, Any]:
        siblings = []
        for path in sorted(repo.files):
            entry = repo.files[path]
            sibling = {"rfilename": path}  # type: Dict[str, Any]
            if blobs:
                sibling["blobId"] = entry.git_sha1
                sibling["size"] = entry.size
                if entry.lfs:
                    sibling["lfs"] = {"sha256": entry.sha256, "size": entry.size, "pointerSize": POINTER_SIZE}
            siblings.append(sibling)
        owner = repo.repo_id.split("/")[0]
        return {
            "_id": repo.commit[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": owner,
            "sha": repo.commit,
            "lastModified": EPOCH_ISO,
            "createdAt": EPOCH_ISO,
            "private": repo.private,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": ["safetensors"],
            "library_name": "transformers",
            "siblings": siblings,
            "spaces": [],
            "usedStorage": repo.total_size,
        }

    def _tree(self, repo: Repo, under: str, recursive: bool, expand: bool) -> List[Dict[str, Any]]:
        prefix = under + "/" if under else ""
        out = []  # type: List[Dict[str, Any]]
        for directory in repo.directories():
            if directory.startswith(prefix) and (recursive or "/" not in directory[len(prefix) :]):
                out.append({"type": "directory", "oid": _sha1(directory), "size": 0, "path": directory})
        for path in sorted(repo.files):
            if not path.startswith(prefix) or (not recursive and "/" in path[len(prefix) :]):
                continue
            entry = repo.files[path]
            item = {"type": "file", "oid": entry.git_sha1, "size": entry.size, "path": path}  # type: Dict[str, Any]
            if entry.lfs:
                item["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": POINTER_SIZE}
            if expand:
                item["lastCommit"] = {"id": repo.commit, "title": "tiny checkpoint", "date": EPOCH_ISO}
            out.append(item)
        return out

    def _hf_resolve(self, head: bool) -> None:
        # /{owner}/{name}/resolve/{rev}/{path...}
        seg = self.segments
        repo = self._hf_repo("%s/%s" % (seg[0], seg[1]), head=head)
        if repo is None:
            return
        revision, path = seg[3], "/".join(seg[4:])
        self.record.file = path
        commit = repo.resolve(revision)
        if commit is None:
            self._hf_error(404, "RevisionNotFound", "Invalid rev id: %s" % revision, head=head)
            return
        entry = repo.files.get(path)
        if entry is None:
            self._hf_error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": commit}, head=head)
            return
        headers = {"X-Repo-Commit": commit, "ETag": '"%s"' % entry.etag}
        if entry.lfs:
            headers.update({"X-Linked-Etag": '"%s"' % entry.sha256, "X-Linked-Size": str(entry.size)})
            if self.hub.lfs_redirect:
                location = "http://%s/_cdn/%s?file=%s&repo=%s" % (
                    self._cdn_authority(),
                    entry.sha256,
                    quote(path, safe=""),
                    quote(repo.repo_id, safe=""),
                )
                headers["Location"] = location
                headers["ETag"] = '"%s"' % _sha1("pointer " + entry.sha256)  # the pointer file's ETag, as on the Hub
                self._send(302, b"Found. Redirecting to " + location.encode("utf-8"), headers, head)
                return
        self._send_file(entry, repo.repo_id, head, headers)

    def _cdn_authority(self) -> str:
        if self.hub.cdn_host:
            return "%s:%d" % (self.hub.cdn_host, self.hub.port)
        name, _sep, port = (self.headers.get("Host") or "127.0.0.1:%d" % self.hub.port).rpartition(":")
        if not name or not port.isdigit():  # no port in the Host header
            name, port = self.headers.get("Host") or "127.0.0.1", str(self.hub.port)
        swapped = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}.get(name, name)
        return "%s:%s" % (swapped, port)

    def _cdn(self, head: bool) -> None:
        sha256 = self.segments[1] if len(self.segments) > 1 else ""
        repo_id = self.query.get("repo")
        self.record.repo = repo_id
        self.record.file = self.query.get("file")
        for repo in list(self.hub.repos.values()):
            for entry in repo.files.values():
                if entry.sha256 == sha256 and (repo_id is None or repo.repo_id == repo_id):
                    self.record.file = entry.path
                    self._send_file(entry, repo.repo_id, head, {"ETag": '"%s"' % sha256})
                    return
        self._send(404, b"<Error><Code>NoSuchKey</Code></Error>", {"Content-Type": "application/xml"}, head)

    # -------------------------------------------------------------- ModelScope

    def _ms_error(self, status: int, code: int, message: str, head: bool = False) -> None:
        request_id = uuid.uuid4().hex
        body = {"Code": code, "Message": message, "RequestId": request_id, "Success": False}
        self._json(status, body, {"X-Request-Id": request_id}, head)

    def _ms_ok(self, data: Any) -> None:
        self._json(200, {"Code": 200, "Data": data, "Message": "success", "RequestId": uuid.uuid4().hex, "Success": True})

    def _modelscope(self, head: bool) -> None:
        seg = self.segments
        if seg[2:4] == ["repos", "internalAccelerationInfo"]:
            self._ms_error(404, 10010205001, "not inside an acceleration region", head)
            return
        if len(seg) < 5 or seg[2] != "models":
            self._ms_error(404, 10010205001, "not found", head)
            return
        repo_id = "%s/%s" % (seg[3], seg[4])
        self.record.repo = repo_id
        repo = self.hub.repos.get(repo_id)
        auth = self.record.auth
        if auth == "invalid":
            self._ms_error(401, 10010205002, "Unauthorized: the access token is invalid or expired", head)
            return
        if repo is None or (repo.private and self._token() not in repo.tokens):
            if repo is not None and auth == "none":
                self._ms_error(401, 10010205002, "Unauthorized: log in to access this private model", head)
            else:
                self._ms_error(404, 10010205001, "model %s not found" % repo_id, head)
            return
        rest = seg[5:]
        revision = self.query.get("Revision") or "master"
        if not rest:
            self._ms_ok({"Id": abs(hash(repo_id)) % 100000, "Path": seg[3], "Name": seg[4], "Private": repo.private})
        elif rest == ["revisions"]:
            created = 1735689600
            self._ms_ok(
                {
                    "RevisionMap": {
                        "Branches": [{"Revision": "master", "CommitId": repo.commit, "CreatedAt": created}],
                        "Tags": [
                            {"Revision": ref, "CommitId": repo.commit, "CreatedAt": created}
                            for ref in repo.refs
                            if ref not in ("main", "master")
                        ],
                    }
                }
            )
        elif rest == ["repo", "files"]:
            commit = repo.resolve(revision)
            if commit is None:
                self._ms_error(404, 10010205001, "revision %s not found" % revision)
                return
            self._ms_ok({"Files": self._ms_files(repo, (self.query.get("Root") or "").strip("/"), _true(self.query.get("Recursive")))})
        elif rest == ["repo"]:
            path = self.query.get("FilePath") or ""
            self.record.file = path
            commit = repo.resolve(revision)
            if commit is None:
                self._ms_error(404, 10010205001, "revision %s not found" % revision, head)
                return
            entry = repo.files.get(path)
            if entry is None:
                self._ms_error(404, 10010205001, "file %s not found" % path, head)
                return
            headers = {"ETag": '"%s"' % entry.sha256}
            if entry.lfs:
                headers["X-Linked-ETag"] = entry.sha256
            self._send_file(entry, repo.repo_id, head, headers)
        else:
            self._ms_error(404, 10010205001, "not found", head)

    def _ms_files(self, repo: Repo, root: str, recursive: bool) -> List[Dict[str, Any]]:
        prefix = root + "/" if root else ""
        out = []  # type: List[Dict[str, Any]]
        common = {"Revision": repo.commit, "CommitId": repo.commit, "CommitMessage": "tiny checkpoint", "CommittedDate": 1735689600}
        for directory in repo.directories():
            if directory.startswith(prefix) and (recursive or "/" not in directory[len(prefix) :]):
                out.append(dict(common, Name=directory.split("/")[-1], Path=directory, Type="tree", Size=0, Mode="16384"))
        for path in sorted(repo.files):
            if not path.startswith(prefix) or (not recursive and "/" in path[len(prefix) :]):
                continue
            entry = repo.files[path]
            out.append(
                dict(
                    common,
                    Name=path.split("/")[-1],
                    Path=path,
                    Type="blob",
                    Size=entry.size,
                    Sha256=entry.sha256,
                    IsLFS=entry.lfs,
                    Id=entry.git_sha1,
                    Mode="33188",
                )
            )
        return out

    # -------------------------------------------------------------- control

    def _control(self) -> None:
        action = "/".join(self.segments[1:])
        hub = self.hub
        if action == "log":
            self._json(200, [asdict(r) for r in hub.records()])
        elif action == "log/clear":
            hub.clear_log()
            self._json(200, {"ok": True})
        elif action == "reset":
            hub.reset()
            self._json(200, {"ok": True})
        elif action == "faults" and self.command == "POST":
            body = self._read_json_body()
            for cut in body.get("cut", []):
                hub.cut(cut["file"], int(cut["after"]), int(cut.get("times", 1)), bool(cut.get("then_stop", False)), cut.get("repo"))
            if "rate_limit" in body:
                hub.rate_limit = body["rate_limit"]
            self._json(200, {"ok": True})
        elif action == "repos":
            self._json(200, {rid: {"commit": r.commit, "files": sorted(r.files), "private": r.private} for rid, r in hub.repos.items()})
        else:
            self._json(404, {"error": "unknown control action %r" % action})


def _true(value: Optional[str]) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _parse_range(value: str, size: int) -> Optional[Tuple[int, int]]:
    """(start, end) inclusive of one 'bytes=a-b' / 'bytes=a-' / 'bytes=-n' range; None when unsatisfiable."""
    unit, _sep, spec = value.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, _sep, last = spec.strip().partition("-")
    try:
        if first == "":
            count = int(last)
            if count <= 0 or size == 0:
                return None
            return max(0, size - count), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)
