# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""Read a model hub over HTTP with the Python standard library: file listings, small files, byte ranges.

Profiling a hub model (``hub_profile``) and planning a download
(``hub_fetch``) need three reads, which this client makes with ``urllib``
alone, so the controller needs no hub client library:

* the file listing of a revision, with each file's size and checksum, and
  the commit the revision resolves to;
* a small file (``config.json``, the safetensors index);
* a byte range of a large one (the 8-byte length and JSON header of a
  safetensors shard, as ``huggingface_hub.get_safetensors_metadata`` reads it).

The HTTP API read is the one the official clients use (the test hub under
tests/hub_server implements the same subset):

Hugging Face Hub and its mirrors
  ``GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=True`` -> ``sha``
  and ``siblings`` (``rfilename``, ``size``, ``blobId``, ``lfs.sha256``);
  ``GET {endpoint}/{repo}/resolve/{commit}/{file}`` with ``Range``. Errors carry
  ``X-Error-Code`` (RepoNotFound, RevisionNotFound, EntryNotFound) and
  ``X-Error-Message``.
ModelScope
  ``GET {endpoint}/api/v1/models/{repo}/repo/files?Revision=&Recursive=True``
  -> ``Data.Files`` (``Path``, ``Type``, ``Size``, ``Sha256``, ``IsLFS``);
  ``GET {endpoint}/api/v1/models/{repo}/repo?Revision=&FilePath=`` with ``Range``.
  Errors are a JSON envelope with ``Code`` and ``Message``.

The token goes in an ``Authorization: Bearer`` header (and ModelScope's
``m_session_id`` cookie) that is never forwarded to another origin on a
redirect (the Hub sends weights from a CDN), and never appears in an error.
"""

from __future__ import annotations

import json
import socket
from typing import Any, Dict, Optional, Tuple
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode, urlsplit
from urllib.request import HTTPRedirectHandler, Request, build_opener

from ansible_collections.npu.fleet.plugins.module_utils._hub_source import redact

__all__ = ["HubClient", "HubError", "USER_AGENT", "file_url"]

USER_AGENT = "npu.fleet (+https://github.com/npu-fleet)"
# Large enough for any config.json or safetensors index (DeepSeek-V3's index is about 9 MB).
MAX_SMALL_FILE = 64 * 1024 * 1024
# First range read of a safetensors file: the 8-byte length and, for most shards, the whole header
# (huggingface_hub reads bytes 0-100000 the same way and fetches the rest only when the header is longer).
HEADER_PREFETCH = 100 * 1000
_AUTH_HEADERS = ("Authorization", "Cookie")


class HubError(Exception):
    """A hub read failed; ``kind`` is auth, repo, revision, file, network, server or protocol.

    The message names the endpoint, the repository and what to do; it never
    contains the token.
    """

    def __init__(self, message: str, kind: str, status: Optional[int] = None) -> None:
        super(HubError, self).__init__(message)
        self.kind = kind
        self.status = status


def _origin(url: str) -> Tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class _SameOriginAuthRedirect(HTTPRedirectHandler):
    """Follow redirects; carry the credentials only to the same origin (never to a CDN or another host)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102 - urllib's signature
        new = HTTPRedirectHandler.redirect_request(self, req, fp, code, msg, headers, newurl)
        if new is not None and _origin(newurl) == _origin(req.full_url):
            for name, value in req.unredirected_hdrs.items():
                if name in _AUTH_HEADERS:
                    new.add_unredirected_header(name, value)
        return new


def file_url(source: Dict[str, Any], name: str, ref: str) -> str:
    """The address a file of revision (or commit) ``ref`` is downloaded from."""
    if source["hub"] == "modelscope":
        return "%s/api/v1/models/%s/repo?%s" % (source["endpoint"], source["repo"], urlencode({"Revision": ref, "FilePath": name}))
    return "%s/%s/resolve/%s/%s" % (source["endpoint"], source["repo"], quote(ref, safe=""), quote(name))


class HubClient(object):
    """Reads of one repository on one hub; ``source`` as ``_hub_source.normalize_source`` returns it."""

    def __init__(self, source: Dict[str, Any], token: Optional[str] = None, timeout: float = 30) -> None:
        self.source = source
        self.token = token or None
        self.timeout = timeout
        self._opener = build_opener(_SameOriginAuthRedirect())

    @property
    def label(self) -> str:
        """'<endpoint> repository <repo>' for messages."""
        return "%s repository %s" % (self.source["endpoint"], self.source["repo"])

    # ------------------------------------------------------------------ requests

    def _request(
        self, url: str, headers: Optional[Dict[str, str]] = None, what: str = "", limit: Optional[int] = None
    ) -> Tuple[int, Any, bytes]:
        request = Request(url, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        if self.token:
            request.add_unredirected_header("Authorization", "Bearer %s" % self.token)
            if self.source["hub"] == "modelscope":
                request.add_unredirected_header("Cookie", "m_session_id=%s" % self.token)
        try:
            response = self._opener.open(request, timeout=self.timeout)
        except HTTPError as exc:
            body = b""
            try:
                body = exc.read(65536)
            except (OSError, ValueError):
                pass
            raise self._http_error(exc.code, exc.headers, body, what)
        except (URLError, socket.timeout, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise HubError(
                redact(
                    "cannot reach %s (%s) while reading %s: %s; check the endpoint address, the network and any proxy "
                    "settings (https_proxy) on this machine" % (self.source["endpoint"], self.source["repo"], what or url, reason),
                    self.token,
                ),
                "network",
            )
        with response:
            try:
                body = response.read() if limit is None else response.read(limit + 1)
            except (OSError, socket.timeout) as exc:
                raise HubError(redact("%s: reading %s failed: %s" % (self.label, what or url, exc), self.token), "network")
            return response.status, response.headers, body

    def _http_error(self, status: int, headers: Any, body: bytes, what: str) -> HubError:
        code = headers.get("X-Error-Code") if headers is not None else None
        server = headers.get("X-Error-Message") if headers is not None else None
        if not server:
            try:
                data = json.loads(body.decode("utf-8"))
                server = data.get("error") or data.get("Message") or data.get("message") if isinstance(data, dict) else None
            except (ValueError, UnicodeDecodeError):
                server = None
        said = " (the hub said: %s)" % str(server)[:300] if server else ""
        if status in (401, 403) and code not in ("RevisionNotFound", "EntryNotFound"):
            if self.token:
                hint = (
                    "the token was refused or has no access to it: check that the variable holding the token has the right "
                    "one for this hub (the token is not shown)"
                )
            else:
                hint = "no token was given: a private or gated repository needs one, or the repository id is wrong"
            message = "%s refused access to %s (HTTP %d)%s: %s" % (self.source["endpoint"], self.source["repo"], status, said, hint)
            kind = "auth"
        elif status == 404 or code in ("RepoNotFound", "RevisionNotFound", "EntryNotFound"):
            if code == "RevisionNotFound" or (server and "revision" in str(server).lower()):
                message = "%s has no revision %r%s: give a commit sha, branch or tag the repository has" % (
                    self.label,
                    self.source["revision"],
                    said,
                )
                kind = "revision"
            elif code == "EntryNotFound" or what.startswith("file "):
                message = "%s has no %s at revision %s%s" % (self.label, what or "such file", self.source["revision"], said)
                kind = "file"
            else:
                message = "%s does not exist (HTTP %d)%s: check the repository id and the hub (%s)" % (
                    self.label,
                    status,
                    said,
                    self.source["hub"],
                )
                kind = "repo"
        elif status >= 500:
            message = "%s answered HTTP %d while reading %s%s: the hub or mirror has a problem; try again later" % (
                self.label,
                status,
                what,
                said,
            )
            kind = "server"
        else:
            message = "%s answered HTTP %d while reading %s%s" % (self.label, status, what, said)
            kind = "protocol"
        return HubError(redact(message, self.token), kind, status)

    # ------------------------------------------------------------------ the three reads

    def repo_files(self) -> Dict[str, Any]:
        """{"commit": sha or None, "files": [{name, size, sha256, git_sha1, lfs}]} of the source's revision."""
        if self.source["hub"] == "modelscope":
            return self._modelscope_files()
        return self._huggingface_files()

    def _huggingface_files(self) -> Dict[str, Any]:
        url = "%s/api/models/%s/revision/%s?blobs=True" % (
            self.source["endpoint"],
            self.source["repo"],
            quote(self.source["revision"], safe=""),
        )
        data = self._json(url, "the file listing")
        commit = data.get("sha")
        siblings = data.get("siblings")
        if not isinstance(siblings, list):
            raise HubError(
                "%s: the model info has no file list ('siblings'); is %s a Hugging Face-compatible endpoint?"
                % (self.label, self.source["endpoint"]),
                "protocol",
            )
        files = []  # type: List[Dict[str, Any]]
        for sibling in siblings:
            if not isinstance(sibling, dict) or not isinstance(sibling.get("rfilename"), str):
                continue
            lfs = sibling.get("lfs") if isinstance(sibling.get("lfs"), dict) else None
            size = sibling.get("size")
            if lfs is not None and isinstance(lfs.get("size"), int):
                size = lfs["size"]
            files.append(
                {
                    "name": sibling["rfilename"],
                    "size": size if isinstance(size, int) and not isinstance(size, bool) else None,
                    "sha256": lfs.get("sha256") if lfs else None,
                    "git_sha1": sibling.get("blobId") if not lfs else None,
                    "lfs": lfs is not None,
                }
            )
        if any(f["size"] is None for f in files):
            raise HubError(
                "%s: the file listing gives no sizes (the endpoint ignored ?blobs=True); sizes are needed to check disk "
                "space and verify downloads" % self.label,
                "protocol",
            )
        return {"commit": commit if isinstance(commit, str) and commit else None, "files": sorted(files, key=lambda f: f["name"])}

    def _modelscope_files(self) -> Dict[str, Any]:
        query = urlencode({"Revision": self.source["revision"], "Recursive": "True"})
        url = "%s/api/v1/models/%s/repo/files?%s" % (self.source["endpoint"], self.source["repo"], query)
        data = self._json(url, "the file listing")
        payload = data.get("Data", data)
        entries = payload.get("Files") if isinstance(payload, dict) else payload
        if not isinstance(entries, list):
            raise HubError(
                "%s: the file listing has no 'Files'; is %s a ModelScope endpoint?" % (self.label, self.source["endpoint"]), "protocol"
            )
        files = []
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("Type", "blob") == "tree":
                continue
            name = entry.get("Path") or entry.get("Name")
            size = entry.get("Size")
            if not isinstance(name, str) or not isinstance(size, int) or isinstance(size, bool):
                continue
            sha256 = entry.get("Sha256")
            files.append({"name": name, "size": size, "sha256": sha256 or None, "git_sha1": None, "lfs": bool(entry.get("IsLFS"))})
        # ModelScope's listing names no commit for the repository; a commit sha given as revision is its own answer.
        commit = self.source["revision"] if self.source["pinned"] else None
        return {"commit": commit, "files": sorted(files, key=lambda f: f["name"])}

    def _json(self, url: str, what: str) -> Dict[str, Any]:
        _status, _headers, body = self._request(url, {"Accept": "application/json"}, what)
        try:
            data = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise HubError(
                "%s: %s is not JSON; is %s a %s endpoint?" % (self.label, what, self.source["endpoint"], self.source["hub"]), "protocol"
            )
        if not isinstance(data, dict):
            raise HubError("%s: %s is not a JSON object" % (self.label, what), "protocol")
        if self.source["hub"] == "modelscope" and data.get("Success") is False:
            raise HubError("%s: %s failed: %s" % (self.label, what, str(data.get("Message"))[:300]), "protocol")
        return data

    def read_file(self, name: str, ref: str, limit: int = MAX_SMALL_FILE) -> bytes:
        """The whole content of a small file (a config, an index)."""
        _status, _headers, body = self._request(file_url(self.source, name, ref), what="file %s" % name, limit=limit)
        if len(body) > limit:
            raise HubError("%s: %s is larger than %d bytes; not read as a small file" % (self.label, name, limit), "protocol")
        return body

    def read_range(self, name: str, ref: str, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` (inclusive) of a file; a server that ignores Range is cut to the range."""
        status, headers, body = self._request(
            file_url(self.source, name, ref), {"Range": "bytes=%d-%d" % (start, end)}, "file %s" % name, limit=end + 1
        )
        if status == 206:
            content_range = headers.get("Content-Range") or ""
            if content_range and not content_range.replace(" ", "").lower().startswith("bytes%d-" % start):
                raise HubError("%s: asked %s for bytes %d-%d, got %r" % (self.label, name, start, end, content_range), "protocol")
            return body[: end - start + 1]
        # 200: the whole file from its start (only the first part was read)
        return body[start : end + 1]
