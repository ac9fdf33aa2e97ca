# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""Profile a model on a hub before downloading it: config and safetensors headers by HTTP range reads.

The plan decides which hosts serve a model from its profile, so a hub model
is profiled where it lies: ``config.json``, ``generation_config.json`` and the
safetensors index are read whole (they are small), and of each weight shard
only the 8-byte header length and the JSON header, with HTTP ``Range``
requests, the way ``huggingface_hub.get_safetensors_metadata`` reads them. A
700 GB checkpoint is profiled from a few megabytes, and the weights then go
only to the hosts that will serve them.

The profile is built by ``_model_profile.profile_files``, the very rules
``model_profile`` applies to a directory: ``HubCheckpoint`` answers the same
questions (file names, sizes, JSON files, headers) from the hub's file listing
and range reads instead of the disk.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.npu.fleet.plugins.module_utils._hub_api import HEADER_PREFETCH, HubClient, HubError, file_url
from ansible_collections.npu.fleet.plugins.module_utils._hub_source import (
    HubSourceError,
    normalize_source,
    revision_warning,
    select_files,
)
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import (
    CONFIG_FILE,
    SAFETENSORS_INDEX_FILE,
    ModelProfileError,
    parse_json_object,
    profile_files,
)
from ansible_collections.npu.fleet.plugins.module_utils._safetensors import header_length, parse_header

__all__ = ["HubCheckpoint", "HubProfileError", "check_selection", "profile_hub"]

# Shard headers are read this many at a time (a 163-shard checkpoint over a slow mirror).
HEADER_WORKERS = 8


class HubProfileError(Exception):
    """The hub model cannot be profiled or would not be complete as selected; the message says why and what to do."""


class HubCheckpoint(object):
    """A hub revision seen the way ``profile_files`` reads a checkpoint directory (see CheckpointDirectory)."""

    def __init__(self, client: HubClient, files: List[Dict[str, Any]], ref: str) -> None:
        self.client = client
        self.ref = ref
        self.sizes = dict((f["name"], f["size"]) for f in files)
        self.path = "%s/%s@%s" % (client.source["endpoint"], client.source["repo"], ref)
        self._json = {}  # type: Dict[str, Optional[Dict[str, Any]]]
        self._headers = {}  # type: Dict[str, Tuple[Dict[str, Any], int, Tuple[int, int, int]]]
        self.bytes_read = 0

    def where(self, name: str) -> str:
        return file_url(self.client.source, name, self.ref)

    def names(self) -> List[str]:
        return sorted(name for name in self.sizes if "/" not in name)

    def has(self, name: str) -> bool:
        return name in self.sizes

    def size(self, name: str) -> int:
        return self.sizes[name]

    def read_json(self, name: str, required: bool = True) -> Optional[Dict[str, Any]]:
        if name not in self._json:
            if name not in self.sizes:
                if required:
                    raise ModelProfileError("%s: file not found" % self.where(name))
                return None
            raw = self.client.read_file(name, self.ref)
            self.bytes_read += len(raw)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ModelProfileError("%s: cannot read: %s" % (self.where(name), exc))
            self._json[name] = parse_json_object(self.where(name), text)
        return self._json[name]

    def header(self, name: str) -> Tuple[Dict[str, Any], int, Tuple[int, int, int]]:
        if name not in self._headers:
            where, size = self.where(name), self.sizes[name]
            first = self.client.read_range(name, self.ref, 0, min(size, HEADER_PREFETCH) - 1) if size else b""
            length = header_length(where, first, size)
            if 8 + length <= len(first):
                raw = first[8 : 8 + length]
            else:
                raw = self.client.read_range(name, self.ref, 8, 8 + length - 1)
                self.bytes_read += len(raw)
            self.bytes_read += len(first)
            header, totals = parse_header(where, raw, length, size)
            self._headers[name] = (header, length, totals)
        return self._headers[name]

    def prefetch_headers(self, names: List[str], workers: int = HEADER_WORKERS) -> None:
        """Read many shard headers at once; the profile then finds them here (errors surface when it asks)."""
        todo = [name for name in names if name in self.sizes and name not in self._headers]
        if len(todo) < 2:
            return
        with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            for future in [pool.submit(self.header, name) for name in todo]:
                try:
                    future.result()
                except (ModelProfileError, HubError):
                    pass  # raised again, in order, when profile_files reads this shard


def profile_hub(
    hub: Optional[str],
    repo: Optional[str],
    revision: Optional[str] = None,
    endpoint: Optional[str] = None,
    token: Optional[str] = None,
    allow_patterns: Optional[List[str]] = None,
    ignore_patterns: Optional[List[str]] = None,
    dtype: Optional[str] = None,
    timeout: float = 30,
) -> Dict[str, Any]:
    """Profile a hub repository at a revision; raise HubProfileError with a message safe to print.

    Returns ``profile`` (as ``model_profile`` returns it; ``path`` is
    ``<endpoint>/<repo>@<commit>``), ``source`` (normalised, no token),
    ``commit`` (what the revision resolved to; null for a ModelScope branch or
    tag), ``files`` (the files the allow patterns select: name, size, sha256,
    git_sha1, lfs), ``bytes`` (their total), ``bytes_read`` (what profiling
    transferred) and ``warnings``.
    """
    try:
        source, warnings = normalize_source(hub, repo, revision, endpoint, allow_patterns, ignore_patterns)
    except HubSourceError as exc:
        raise HubProfileError(str(exc))
    client = HubClient(source, token, timeout)
    try:
        listing = client.repo_files()
        commit = listing["commit"]
        ref = commit or source["revision"]
        checkpoint = HubCheckpoint(client, listing["files"], ref)
        if not checkpoint.has(CONFIG_FILE):
            raise HubProfileError(
                "%s has no %s at revision %s: it is not a Transformers checkpoint (or the revision is wrong)"
                % (client.label, CONFIG_FILE, source["revision"])
            )
        selected = select_files(listing["files"], source["allow_patterns"], source["ignore_patterns"])
        check_selection(client, checkpoint, selected, source)
        index = checkpoint.read_json(SAFETENSORS_INDEX_FILE, required=False)
        if index is not None and isinstance(index.get("weight_map"), dict):
            shards = sorted(set(str(v) for v in index["weight_map"].values()))
        else:
            shards = [name for name in checkpoint.names() if name.endswith(".safetensors")]
        checkpoint.prefetch_headers(shards)
        profile = profile_files(checkpoint, dtype)
    except HubError as exc:
        raise HubProfileError(str(exc))
    except ModelProfileError as exc:
        raise HubProfileError(str(exc))
    pin = revision_warning(source, commit)
    if pin:
        warnings.append(pin)
    return {
        "profile": profile,
        "source": dict((k, v) for k, v in source.items() if k != "pinned"),
        "revision": source["revision"],
        "commit": commit,
        "files": selected,
        "bytes": sum(f["size"] for f in selected),
        "bytes_read": checkpoint.bytes_read,
        "warnings": warnings,
    }


def check_selection(client: HubClient, checkpoint: HubCheckpoint, selected: List[Dict[str, Any]], source: Dict[str, Any]) -> None:
    """A selection that would leave the hosts with a checkpoint that cannot load is an error now, not at serve time."""
    names = set(f["name"] for f in selected)
    missing = [] if CONFIG_FILE in names else [CONFIG_FILE]
    index = checkpoint.read_json(SAFETENSORS_INDEX_FILE, required=False) if checkpoint.has(SAFETENSORS_INDEX_FILE) else None
    if index is not None and isinstance(index.get("weight_map"), dict):
        if SAFETENSORS_INDEX_FILE not in names:
            missing.append(SAFETENSORS_INDEX_FILE)
        missing += sorted(set(str(v) for v in index["weight_map"].values()) - names)
    elif not any(name.endswith(".safetensors") for name in names) and any(n.endswith(".safetensors") for n in checkpoint.names()):
        missing.append("every *.safetensors file")
    if missing:
        raise HubProfileError(
            "%s: allow_patterns %s (ignore_patterns %s) leave out %s, which the model needs to load; add them to "
            "allow_patterns or leave allow_patterns out for the default"
            % (
                client.label,
                source["allow_patterns"],
                source["ignore_patterns"],
                ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""),
            )
        )
