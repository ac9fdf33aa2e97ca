# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""Download a hub model's files into a directory on this host: resumable, verified, space-checked.

``fetch_hub`` runs on the NPU host (module ``hub_fetch``). In order:

1. list the revision's files with sizes and checksums (``_hub_api``, standard
   library) and take those the allow patterns select; refuse a selection that
   would leave out the config or a shard the index names;
2. compare them with what ``dest`` holds (``_hub_source.fetch_plan``): a file
   of the right size whose checksum matches is kept; a missing, truncated or
   corrupted one is fetched again. A verified file keeps a stamp (size, mtime,
   digest) under ``dest/.cache/npu-fleet/verified.json`` so re-runs hash only
   what changed (``verify: full`` hashes everything every time);
3. check free space on ``dest``'s filesystem against the bytes still to come
   (less what interrupted downloads already hold) and stop with a message naming
   host, path, need and free before writing anything;
4. download with the hub's own client: ``huggingface_hub`` (its ``http_get``
   on the file's resolve address, after the same metadata HEAD
   ``hf_hub_download`` makes, so mirrors, CDN redirects and auth behave exactly
   as with the client) or ModelScope's ``snapshot_download``. Bytes land in
   ``dest/.cache/npu-fleet/partial/``; a file appears at its final path only
   once complete and verified (atomic rename), so nothing half-written is ever
   visible there. An interrupted download keeps its partial file and the next
   run resumes it with an HTTP Range request (huggingface_hub >= 1.x deletes its
   own temporary file on failure, hence the collection keeps its own);
5. report progress (bytes done and total) in a small JSON file that a role can
   poll while the module runs as an async task.

The token is passed to the client and never appears in a message, the progress
file or the result.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import shutil
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from ansible_collections.npu.fleet.plugins.module_utils._hub_api import HubClient, HubError, file_url
from ansible_collections.npu.fleet.plugins.module_utils._hub_profile import HubCheckpoint, HubProfileError, check_selection
from ansible_collections.npu.fleet.plugins.module_utils._hub_source import (
    HubSourceError,
    digest_of,
    fetch_plan,
    names_to_hash,
    normalize_source,
    redact,
    revision_warning,
    select_files,
)
from ansible_collections.npu.fleet.plugins.module_utils._model_files import free_space, space_error
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import ModelProfileError, parse_json_object

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

__all__ = ["CLIENTS", "FetchError", "STATE_DIR", "fetch_hub", "hash_file"]

# Book-keeping inside the model directory, hidden from loaders (like huggingface_hub's .cache/huggingface).
STATE_DIR = os.path.join(".cache", "npu-fleet")
HASH_CHUNK = 4 * 1024 * 1024
PROGRESS_INTERVAL = 0.5
# Resumes of one file within a run, as long as each attempt brings new bytes.
RESUME_ATTEMPTS = 5
# The Python package each hub's client comes in, and the requirement to install.
CLIENTS = {
    "huggingface": ("huggingface_hub", "huggingface_hub>=0.23"),
    "modelscope": ("modelscope", "modelscope"),
}


class FetchError(Exception):
    """The fetch cannot proceed or failed; the message names host, path or repository and what to do."""


# --------------------------------------------------------------------------- small helpers


def _atomic_json(path: str, data: Any) -> None:
    tmp = "%s.tmp.%d.%d" % (path, os.getpid(), threading.current_thread().ident or 0)
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _load_json(path: str) -> Dict[str, Any]:
    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _hasher(digest: str, size: int) -> Any:
    """A hash object for a 'sha256:...' or 'gitsha1:...' digest of a file of ``size`` bytes."""
    if digest.startswith("gitsha1:"):
        return hashlib.sha1(b"blob %d\0" % size)
    return hashlib.sha256()


def hash_file(path: str, digest: str, tick: Optional[Callable[[int], None]] = None) -> str:
    """The digest of a file, of the same kind as ``digest`` ('sha256:<hex>' or 'gitsha1:<hex>')."""
    size = os.path.getsize(path)
    hasher = _hasher(digest, size)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(HASH_CHUNK), b""):
            hasher.update(block)
            if tick is not None:
                tick(len(block))
    return "%s:%s" % (digest.split(":")[0], hasher.hexdigest())


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def _partial_key(entry: Dict[str, Any]) -> str:
    digest = digest_of(entry)
    return digest.split(":")[1][:16] if digest else "size%d" % entry["size"]


class Progress(object):
    """The progress file: state, bytes done / total, files done / total, the file being fetched; throttled writes."""

    def __init__(self, path: Optional[str], base: Dict[str, Any]) -> None:
        self.path = path
        self.data = dict(base)
        self.data.update({"state": "planning", "bytes_done": 0, "bytes_total": 0, "files_done": 0, "files_total": 0, "current": []})
        self.data["started"] = time.time()
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one writer at a time: download threads report concurrently
        self._written = 0.0

    def set(self, **values: Any) -> None:
        with self._lock:
            self.data.update(values)
        self.write(force=True)

    def add(self, count: int) -> None:
        with self._lock:
            self.data["bytes_done"] = max(0, self.data["bytes_done"] + count)
        self.write()

    def file_started(self, name: str) -> None:
        with self._lock:
            self.data["current"] = sorted(set(self.data["current"]) | set([name]))
        self.write(force=True)

    def file_done(self, name: str) -> None:
        with self._lock:
            self.data["current"] = [n for n in self.data["current"] if n != name]
            self.data["files_done"] += 1
        self.write(force=True)

    def write(self, force: bool = False) -> None:
        if not self.path:
            return
        now = time.time()
        if not force and now - self._written < PROGRESS_INTERVAL:
            return
        with self._write_lock:
            with self._lock:
                self._written = now
                self.data["updated"] = now
                snapshot = dict(self.data)
            try:
                directory = os.path.dirname(self.path)
                if directory:
                    os.makedirs(directory, exist_ok=True)
                _atomic_json(self.path, snapshot)
            except OSError:
                pass  # progress is a courtesy; the download goes on


class _Tracker(object):
    """File object handed to the HTTP client: counts and hashes what it writes, so no second read is needed.

    The partial file is opened for appending; a resumed download hashes the
    bytes already there first. A client that truncates (a server that ignored
    the Range) restarts the hash.
    """

    def __init__(self, raw: Any, path: str, digest: Optional[str], size: int, progress: Progress) -> None:
        self.raw = raw
        self.path = path
        self.digest = digest
        self.size = size
        self.progress = progress
        self.hasher = None  # type: Any
        self.name = path
        self._rehash(os.path.getsize(path))

    def _rehash(self, upto: int) -> None:
        if self.digest is None:
            return
        self.hasher = _hasher(self.digest, self.size)
        if upto:
            with open(self.path, "rb") as handle:
                left = upto
                while left > 0:
                    block = handle.read(min(HASH_CHUNK, left))
                    if not block:
                        break
                    self.hasher.update(block)
                    left -= len(block)

    def write(self, data: bytes) -> int:
        written = self.raw.write(data)
        if self.hasher is not None:
            self.hasher.update(data)
        self.progress.add(len(data))
        return written

    def tell(self) -> int:
        return self.raw.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def truncate(self, size: Optional[int] = None) -> int:
        before = os.fstat(self.raw.fileno()).st_size
        result = self.raw.truncate(size)
        self.raw.flush()
        after = os.fstat(self.raw.fileno()).st_size
        self.progress.add(after - before)
        self._rehash(after)
        return result

    def flush(self) -> None:
        self.raw.flush()

    def fileno(self) -> int:
        return self.raw.fileno()

    def result(self) -> Optional[str]:
        if self.hasher is None:
            return None
        return "%s:%s" % (self.digest.split(":")[0], self.hasher.hexdigest())


# --------------------------------------------------------------------------- the clients


def _missing_client(hub: str, host: str, exc: Exception) -> FetchError:
    package, requirement = CLIENTS[hub]
    return FetchError(
        "%s: hub_fetch downloads from %s with the Python package %s, which the Python running the module (%s) cannot "
        "import (%s). Install it on the host: %s -m pip install '%s' (or set ansible_python_interpreter to a Python "
        "that has it)" % (host, hub, package, sys.executable, exc, sys.executable, requirement)
    )


def _import_huggingface(host: str) -> Dict[str, Any]:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        from huggingface_hub import file_download  # pylint: disable=import-outside-toplevel
        from huggingface_hub.utils import HfHubHTTPError, build_hf_headers  # pylint: disable=import-outside-toplevel
    except ImportError as exc:
        raise _missing_client("huggingface", host, exc)
    try:
        import huggingface_hub  # pylint: disable=import-outside-toplevel

        version = getattr(huggingface_hub, "__version__", "unknown")
    except ImportError:  # pragma: no cover
        version = "unknown"
    return {
        "get_metadata": file_download.get_hf_file_metadata,
        "http_get": file_download.http_get,
        "build_headers": build_hf_headers,
        "http_error": HfHubHTTPError,
        "version": version,
    }


def _import_modelscope(host: str) -> Dict[str, Any]:
    os.environ.setdefault("TQDM_DISABLE", "1")
    try:
        from modelscope.hub.snapshot_download import snapshot_download  # pylint: disable=import-outside-toplevel
    except ImportError as first:
        try:
            from modelscope_hub.compat.snapshot_download import snapshot_download  # pylint: disable=import-outside-toplevel
        except ImportError:
            raise _missing_client("modelscope", host, first)
    return {"snapshot_download": snapshot_download}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return "%s://%s" % (parts.scheme.lower(), parts.netloc.lower())


# --------------------------------------------------------------------------- the fetch


class _Fetch(object):
    """One run of fetch_hub: the state shared by the planning and the download threads."""

    def __init__(self, source: Dict[str, Any], token: Optional[str], dest: str, host: str, timeout: float, max_workers: int) -> None:
        self.source = source
        self.token = token or None
        self.dest = dest
        self.host = host
        self.timeout = timeout
        self.max_workers = max(1, max_workers)
        self.state = os.path.join(dest, STATE_DIR)
        self.partial = os.path.join(self.state, "partial")
        self.progress = Progress(None, {})
        self.ref = ""
        # digests computed while downloading, by partial path (saves reading a file again to verify it)
        self.computed = {}  # type: Dict[str, str]

    def final(self, name: str) -> str:
        return os.path.join(self.dest, *name.split("/"))

    def partial_path(self, entry: Dict[str, Any]) -> str:
        parts = entry["name"].split("/")
        parts[-1] = "%s.%s.part" % (parts[-1], _partial_key(entry))
        return os.path.join(self.partial, "huggingface", *parts)

    def ms_staging(self) -> str:
        return os.path.join(self.partial, "modelscope")

    def partial_bytes(self, entry: Dict[str, Any]) -> int:
        """Bytes an earlier interrupted run left for this file, usable for a resume."""
        if self.source["hub"] == "modelscope":
            staged = os.path.join(self.ms_staging(), *entry["name"].split("/"))
            for path in (staged, staged + ".incomplete"):
                if os.path.isfile(path) and os.path.getsize(path) <= entry["size"]:
                    return os.path.getsize(path)
            return 0
        path = self.partial_path(entry)
        if os.path.isfile(path) and os.path.getsize(path) <= entry["size"]:
            return os.path.getsize(path)
        return 0

    def message(self, text: str) -> str:
        return redact(text, self.token)

    # ------------------------------------------------------------------ Hugging Face

    def fetch_huggingface(self, items: List[Dict[str, Any]], entries: Dict[str, Dict[str, Any]]) -> Tuple[Dict[str, str], List[str]]:
        """(partial path of each file downloaded completely, error messages of the others)."""
        client = _import_huggingface(self.host)
        results = {}  # type: Dict[str, str]
        errors = []  # type: List[str]
        skipped = []  # type: List[str]
        stop = threading.Event()  # after a failure no new file is started: the hub is likely down for all of them

        def one(item: Dict[str, Any]) -> None:
            if stop.is_set():
                skipped.append(item["name"])
                return
            try:
                results[item["name"]] = self._hf_file(client, entries[item["name"]])
            except FetchError as exc:
                errors.append(str(exc))
                stop.set()

        if self.max_workers == 1 or len(items) == 1:
            for item in items:
                one(item)
        else:
            with ThreadPoolExecutor(max_workers=min(self.max_workers, len(items))) as pool:
                list(pool.map(one, items))
        return results, _summarise(errors, skipped)

    def _hf_file(self, client: Dict[str, Any], entry: Dict[str, Any]) -> str:
        """Download one file into its partial path (resuming), return the path of the complete partial file."""
        name, size = entry["name"], entry["size"]
        url = file_url(self.source, name, self.ref)
        partial = self.partial_path(entry)
        self.progress.file_started(name)
        try:
            meta = client["get_metadata"](url, token=self.token or False, timeout=self.timeout)
        except client["http_error"] as exc:
            raise FetchError(self._hf_http_message(exc, name))
        except Exception as exc:  # pylint: disable=broad-except  # httpx / requests network errors differ by version
            raise FetchError(
                self.message("%s: cannot reach %s for %s of %s: %s" % (self.host, self.source["endpoint"], name, self.source["repo"], exc))
            )
        expected = digest_of(entry)
        etag = (getattr(meta, "etag", None) or "").strip('"').lower()
        if getattr(meta, "size", None) not in (None, size) or (
            expected and expected.startswith("sha256:") and re.match(r"^[0-9a-f]{64}$", etag) and etag != expected.split(":")[1]
        ):
            raise FetchError(
                "%s: the hub's metadata for %s (size %s, etag %s) disagree with its file listing (size %d, %s): the "
                "revision %r moved during the run; pin a commit"
                % (self.host, name, meta.size, etag or "none", size, expected, self.source["revision"])
            )
        location = getattr(meta, "location", None) or url
        headers = client["build_headers"](token=self.token or False)
        if _origin(location) != _origin(url):
            headers = dict((k, v) for k, v in headers.items() if k.lower() != "authorization")
        directory = os.path.dirname(partial)
        os.makedirs(directory, exist_ok=True)
        if os.path.isfile(partial) and os.path.getsize(partial) > size:
            os.remove(partial)
        with open(partial, "ab") as raw:
            tracker = _Tracker(raw, partial, expected, size, self.progress)
            attempt = 0
            while True:
                raw.flush()
                have = os.fstat(raw.fileno()).st_size
                if have >= size:
                    break
                attempt += 1
                try:
                    client["http_get"](location, tracker, resume_size=have, headers=headers, expected_size=size, displayed_filename=name)
                    break
                except client["http_error"] as exc:
                    raise FetchError(self._hf_http_message(exc, name))
                except Exception as exc:  # pylint: disable=broad-except  # httpx / requests errors differ by version
                    raw.flush()
                    now = os.fstat(raw.fileno()).st_size
                    if now > have and attempt < RESUME_ATTEMPTS:
                        # bytes arrived before the connection broke: resume at once (older clients do not retry a
                        # body cut short themselves); an attempt that brings nothing ends the run
                        time.sleep(1)
                        continue
                    raise FetchError(
                        self.message(
                            "%s: the download of %s from %s stopped at byte %d of %d (%s: %s); the bytes received are kept "
                            "in %s and the next run resumes from there"
                            % (self.host, name, self.source["endpoint"], now, size, type(exc).__name__, exc, self.partial)
                        )
                    )
            raw.flush()
            digest = tracker.result()
        self.progress.file_done(name)
        if digest is not None:
            self.computed[partial] = digest
        return partial

    def _hf_http_message(self, exc: Exception, name: str) -> str:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        if status in (401, 403):
            hint = (
                "the token was refused or has no access (it is not shown): check the variable that holds it"
                if self.token
                else "no token was given: a private or gated repository needs one"
            )
            text = "%s: %s refused access to %s (HTTP %s): %s" % (self.host, self.source["endpoint"], self.source["repo"], status, hint)
        else:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            text = "%s: fetching %s of %s from %s failed (HTTP %s): %s" % (
                self.host,
                name,
                self.source["repo"],
                self.source["endpoint"],
                status,
                first,
            )
        return self.message(text)

    # ------------------------------------------------------------------ ModelScope

    def fetch_modelscope(self, items: List[Dict[str, Any]], entries: Dict[str, Dict[str, Any]]) -> Tuple[Dict[str, str], List[str]]:
        """(staged path of each file downloaded completely, error messages); see fetch_huggingface."""
        client = _import_modelscope(self.host)
        download = client["snapshot_download"]
        staging = self.ms_staging()
        os.makedirs(staging, exist_ok=True)
        try:
            params = inspect.signature(download).parameters
        except (TypeError, ValueError):  # pragma: no cover
            params = {}
        patterns = [_glob_escape(item["name"]) for item in items]
        kwargs = {"revision": self.ref, "local_dir": staging}  # type: Dict[str, Any]
        kwargs["allow_patterns" if "allow_patterns" in params else "allow_file_pattern"] = patterns
        if "max_workers" in params:
            kwargs["max_workers"] = self.max_workers
        if "endpoint" in params:
            kwargs["endpoint"] = self.source["endpoint"]
        else:  # SDKs before the endpoint argument read the address from the environment
            os.environ["MODELSCOPE_ENDPOINT"] = self.source["endpoint"]
            os.environ["MODELSCOPE_DOMAIN"] = self.source["endpoint"].split("://", 1)[-1]
        if "token" in params:
            kwargs["token"] = self.token
        elif self.token:
            try:
                from modelscope.hub.api import HubApi  # pylint: disable=import-outside-toplevel

                HubApi().login(self.token)
            except Exception as exc:  # pylint: disable=broad-except
                raise FetchError(self.message("%s: logging in to %s failed: %s" % (self.host, self.source["endpoint"], exc)))
        callbacks = "progress_callbacks" in params
        if callbacks:
            kwargs["progress_callbacks"] = [_modelscope_callback(self.progress)]
        for item in items:
            self.progress.file_started(item["name"])
        errors = []
        try:
            download(self.source["repo"], **kwargs)
        except Exception as exc:  # pylint: disable=broad-except  # the SDK's errors differ by version
            errors.append(self._ms_message(exc))
        done = {}
        for item in items:
            staged = os.path.join(staging, *item["name"].split("/"))
            if os.path.isfile(staged) and os.path.getsize(staged) == item["size"]:
                done[item["name"]] = staged
                if not callbacks:
                    self.progress.add(item["size"])
                self.progress.file_done(item["name"])
            elif not errors:
                errors.append(
                    "%s: ModelScope's client returned without %s of %s; run again" % (self.host, item["name"], self.source["repo"])
                )
        return done, errors

    def _ms_message(self, exc: Exception) -> str:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        status = getattr(getattr(exc, "response", None), "status_code", None) or getattr(exc, "status_code", None)
        lowered = text.lower()
        if status in (401, 403) or "unauthorized" in lowered or "authentication" in lowered or "permission" in lowered:
            hint = (
                "the token was refused or has no access (it is not shown)"
                if self.token
                else "no token was given: a private repository needs one"
            )
            return self.message(
                "%s: %s refused access to %s (HTTP %s): %s (the client said: %s)"
                % (self.host, self.source["endpoint"], self.source["repo"], status or 401, hint, text)
            )
        return self.message(
            "%s: the download of %s from %s failed (%s: %s); files received completely are kept in %s and the next run "
            "resumes the rest" % (self.host, self.source["repo"], self.source["endpoint"], type(exc).__name__, text, self.partial)
        )


def _summarise(errors: List[str], skipped: List[str]) -> List[str]:
    """The distinct errors (at most three) and how many files were not attempted after them."""
    unique = []  # type: List[str]
    for error in errors:
        if error not in unique:
            unique.append(error)
    out = unique[:3]
    if len(unique) > 3:
        out.append("%d more error(s) like these" % (len(unique) - 3))
    if skipped and unique:
        out.append(
            "%d other file(s) not attempted after the first failure (%s)"
            % (len(skipped), ", ".join(sorted(skipped)[:3]) + ("..." if len(skipped) > 3 else ""))
        )
    return out


def _modelscope_callback(progress: Progress) -> Any:
    class _Callback(object):
        """ModelScope's ProgressCallback protocol: built per file with (filename, file_size), update(bytes), end()."""

        def __init__(self, filename: str, file_size: int) -> None:
            self.filename = filename
            self.file_size = file_size

        def update(self, size: int) -> None:
            progress.add(size)

        def end(self) -> None:
            pass

    return _Callback


class _LocalFirst(object):
    """A HubCheckpoint that reads small files from their verified local copy (a re-run transfers no file bytes)."""

    def __init__(self, checkpoint: HubCheckpoint, dest: str, present: List[str]) -> None:
        self.checkpoint = checkpoint
        self.dest = dest
        self.present = set(present)

    def has(self, name: str) -> bool:
        return self.checkpoint.has(name)

    def names(self) -> List[str]:
        return self.checkpoint.names()

    def read_json(self, name: str, required: bool = True) -> Optional[Dict[str, Any]]:
        if name in self.present:
            path = os.path.join(self.dest, *name.split("/"))
            try:
                with open(path, "r", encoding="utf-8") as handle:
                    return parse_json_object(path, handle.read())
            except (OSError, UnicodeDecodeError):
                pass
        return self.checkpoint.read_json(name, required)


def _stat_local(dest: str, wanted: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    local = {}
    for entry in wanted:
        path = os.path.join(dest, *entry["name"].split("/"))
        try:
            info = os.stat(path)
        except OSError:
            continue
        if os.path.isdir(path):
            raise FetchError("%s is a directory, but the repository has a file of that name" % path)
        local[entry["name"]] = {"size": info.st_size, "mtime_ns": info.st_mtime_ns}
    return local


def fetch_hub(
    hub: Optional[str],
    repo: Optional[str],
    dest: str,
    revision: Optional[str] = None,
    endpoint: Optional[str] = None,
    token: Optional[str] = None,
    allow_patterns: Optional[List[str]] = None,
    ignore_patterns: Optional[List[str]] = None,
    verify: str = "cached",
    max_workers: int = 4,
    timeout: float = 60,
    progress_file: Optional[str] = None,
    host: Optional[str] = None,
    check_mode: bool = False,
) -> Dict[str, Any]:
    """Bring ``dest`` to hold exactly-verified copies of the selected files of a hub revision; see the module docstring.

    Raises FetchError with a message safe to print (no token). Returns
    ``changed``, ``dest``, ``source`` (no token), ``revision``, ``commit``,
    ``files`` (name, size, sha256, status present/fetched/would_fetch, reason),
    ``fetched``, ``bytes_fetched`` (transferred now), ``bytes_resumed`` (already
    in partial files), ``bytes_needed``, ``bytes_on_disk``, ``free_bytes``,
    ``progress_file`` and ``warnings``.
    """
    host = host or socket.gethostname()
    try:
        source, warnings = normalize_source(hub, repo, revision, endpoint, allow_patterns, ignore_patterns)
    except HubSourceError as exc:
        raise FetchError(str(exc))
    if not dest or not os.path.isabs(dest):
        raise FetchError("dest must be an absolute directory on %s, got %r" % (host, dest))
    dest = os.path.normpath(dest)
    run = _Fetch(source, token, dest, host, timeout, max_workers)

    # 1. what the revision holds, and what is taken
    client = HubClient(source, token, timeout)
    try:
        listing = client.repo_files()
        commit = listing["commit"]
        run.ref = commit or source["revision"]
        wanted = select_files(listing["files"], source["allow_patterns"], source["ignore_patterns"])
        if not wanted:
            raise FetchError(
                "%s: allow_patterns %s select none of its %d files at %s"
                % (client.label, source["allow_patterns"], len(listing["files"]), source["revision"])
            )
    except HubError as exc:
        raise FetchError(redact("%s: %s" % (host, exc), token))
    pin = revision_warning(source, commit)
    if pin:
        warnings.append(pin)
    entries = dict((e["name"], e) for e in wanted)
    progress_path = progress_file or os.path.join(dest, STATE_DIR, "progress.json")
    base = {"host": host, "hub": source["hub"], "repo": source["repo"], "revision": source["revision"], "commit": commit, "dest": dest}

    # 2. what is here
    local = _stat_local(dest, wanted)
    stamps_path = os.path.join(run.state, "verified.json")
    stamps = _load_json(stamps_path).get("files", {})
    to_hash = names_to_hash(wanted, local, stamps, verify)
    if not check_mode and to_hash:
        run.progress = Progress(progress_path, base)
        run.progress.set(state="verifying", bytes_total=sum(entries[n]["size"] for n in to_hash), files_total=len(to_hash))
    hashes = {}
    for name in to_hash:
        hashes[name] = hash_file(run.final(name), digest_of(entries[name]), run.progress.add)
    plan = fetch_plan(wanted, local, stamps, hashes, verify)
    try:
        # the config and every shard the index names must be taken; the index is read here if verified, else from the hub
        checkpoint = _LocalFirst(HubCheckpoint(client, listing["files"], run.ref), dest, plan["present"])
        check_selection(client, checkpoint, wanted, source)
    except (HubError, HubProfileError, ModelProfileError) as exc:
        raise FetchError(redact("%s: %s" % (host, exc), token))

    # 3. room for it
    resumable = dict((item["name"], run.partial_bytes(entries[item["name"]])) for item in plan["fetch"])
    replaced = sum(local[item["name"]]["size"] for item in plan["fetch"] if item["name"] in local)
    need = max(0, plan["bytes"] - sum(resumable.values()) - replaced)
    free, measured = free_space(dest)
    problem = space_error(need, free, dest, host, measured)

    result = {
        "changed": bool(plan["fetch"]),
        "dest": dest,
        "source": dict((k, v) for k, v in source.items() if k != "pinned"),
        "revision": source["revision"],
        "commit": commit,
        "bytes_needed": need,
        "free_bytes": free,
        "progress_file": progress_path,
        "warnings": warnings,
    }
    reasons = dict((item["name"], item["reason"]) for item in plan["fetch"])

    def file_list(status_of_fetched: str) -> List[Dict[str, Any]]:
        out = []
        for entry in wanted:
            item = {"name": entry["name"], "size": entry["size"], "sha256": entry.get("sha256")}
            if entry["name"] in reasons:
                item.update({"status": status_of_fetched, "reason": reasons[entry["name"]]})
            else:
                item["status"] = "present"
            out.append(item)
        return out

    if problem:
        raise FetchError("%s (to fetch %d file(s) of %s from %s)" % (problem, len(plan["fetch"]), source["repo"], source["endpoint"]))
    if check_mode or not plan["fetch"]:
        if not check_mode and plan["stamps"] != stamps:
            _write_stamps(run, stamps_path, plan["stamps"], source, commit)
        if not check_mode and os.path.isfile(progress_path):
            Progress(progress_path, base).set(state="done", bytes_total=0, bytes_done=0, files_total=0)
        result.update(
            {
                "files": file_list("would_fetch"),
                "fetched": [],
                "bytes_fetched": 0,
                "bytes_resumed": 0,
                "bytes_on_disk": plan["bytes_present"],
            }
        )
        return result

    # 4. fetch, verify, move into place
    lock = _lock(run)
    try:
        run.progress = Progress(progress_path, base)
        resumed = sum(resumable.values())
        # ModelScope's client reports the bytes it resumes from itself; for huggingface_hub they are counted here.
        already = 0 if source["hub"] == "modelscope" else resumed
        run.progress.set(state="downloading", bytes_total=plan["bytes"], bytes_done=already, files_total=len(plan["fetch"]), files_done=0)
        for item in plan["fetch"]:
            path = run.final(item["name"])
            if os.path.lexists(path):
                os.remove(path)  # a truncated or corrupted copy never stays visible
        new_stamps = dict(plan["stamps"])
        try:
            fetched = _download_and_place(run, plan["fetch"], entries, new_stamps)
        except FetchError as exc:
            run.progress.set(state="failed", error=str(exc))
            _write_stamps(run, stamps_path, new_stamps, source, commit)
            raise
        _write_stamps(run, stamps_path, new_stamps, source, commit)
        shutil.rmtree(run.partial, ignore_errors=True)
        run.progress.set(state="done", current=[])
    finally:
        _unlock(lock)
    result.update(
        {
            "files": file_list("fetched"),
            "fetched": fetched,
            "bytes_fetched": max(0, plan["bytes"] - resumed),
            "bytes_resumed": resumed,
            "bytes_on_disk": plan["bytes_present"] + plan["bytes"],
        }
    )
    return result


def _download_and_place(run: _Fetch, items: List[Dict[str, Any]], entries: Dict[str, Dict[str, Any]], stamps: Dict[str, Any]) -> List[str]:
    """Download, verify each file (size and checksum), rename it into place; one retry from scratch on a bad file.

    Files that arrived complete and verified are placed even when others
    failed, so a re-run fetches only the rest; then the failures are raised.
    """
    fetched = []
    todo = list(items)
    for attempt in (1, 2):
        if run.source["hub"] == "modelscope":
            staged, errors = run.fetch_modelscope(todo, entries)
        else:
            staged, errors = run.fetch_huggingface(todo, entries)
        bad = []
        for item in todo:
            if item["name"] not in staged:
                continue
            entry, path = entries[item["name"]], staged[item["name"]]
            problem = _verify_staged(run, entry, path)
            if problem:
                bad.append((item, problem))
                os.remove(path)
                continue
            final = run.final(entry["name"])
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(path, final)
            info = os.stat(final)
            digest = digest_of(entry)
            if digest is not None:
                stamps[entry["name"]] = {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "digest": digest}
            fetched.append(entry["name"])
        if errors:
            raise FetchError(run.message("; ".join(errors)))
        if not bad:
            return sorted(fetched)
        if attempt == 2:
            raise FetchError(
                "%s: %s from %s failed verification after a fresh download: %s; the hub or a proxy serves other bytes "
                "than it lists"
                % (run.host, run.source["repo"], run.source["endpoint"], "; ".join("%s %s" % (i["name"], p) for i, p in bad))
            )
        todo = [item for item, _problem in bad]
    return sorted(fetched)  # pragma: no cover


def _verify_staged(run: _Fetch, entry: Dict[str, Any], path: str) -> Optional[str]:
    size = os.path.getsize(path)
    if size != entry["size"]:
        return "has %d bytes, the hub lists %d" % (size, entry["size"])
    digest = digest_of(entry)
    if digest is None:
        return None
    got = run.computed.pop(path, None) or hash_file(path, digest)
    if got != digest:
        return "has %s %s, the hub lists %s" % (digest.split(":")[0], got.split(":")[1], digest.split(":")[1])
    return None


def _write_stamps(run: _Fetch, path: str, stamps: Dict[str, Any], source: Dict[str, Any], commit: Optional[str]) -> None:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _atomic_json(
            path, {"repo": source["repo"], "hub": source["hub"], "endpoint": source["endpoint"], "commit": commit, "files": stamps}
        )
    except OSError:
        pass  # only a cache: the next run hashes again


def _lock(run: _Fetch) -> Any:
    os.makedirs(run.state, exist_ok=True)
    handle = open(os.path.join(run.state, "lock"), "a")  # pylint: disable=consider-using-with
    if fcntl is not None:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise FetchError(
                "%s: another hub_fetch is writing %s (lock %s held); wait for it to finish"
                % (run.host, run.dest, os.path.join(run.state, "lock"))
            )
    return handle


def _unlock(handle: Any) -> None:
    try:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()
