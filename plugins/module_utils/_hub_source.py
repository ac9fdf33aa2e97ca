# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""The decisions of a hub source, with no I/O: what to fetch from a model hub and what is already here.

A hub source (docs/model-sources.md, "Hub sources") names a repository on the
Hugging Face Hub, one of its mirrors, or ModelScope, a pinned revision and the
files to take. This module decides, from data only:

* ``normalize_source``: the source with its defaults (endpoint, revision,
  allow patterns) and the warnings an operator should read (a branch instead
  of a commit). Errors never echo a value that may carry a secret.
* ``select_files``: the repository files the patterns take, with the same
  glob semantics as ``huggingface_hub``'s ``allow_patterns``.
* ``names_to_hash`` / ``fetch_plan``: which local files are present and
  verified (size, and the checksum the hub gives: sha256 for LFS files and
  for every ModelScope file, the git blob sha1 for the Hub's regular files),
  which must be fetched and why. A file verified once keeps a stamp (size,
  mtime, digest) so a re-run does not hash hundreds of gigabytes again.
* ``redact``: a message with a token removed, for every error that leaves a module.

The network side is ``_hub_api`` (reads) and ``_hub_fetch`` (downloads).
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Dict, Iterable, List, Optional, Tuple

__all__ = [
    "HUB_ARGUMENT_SPEC",
    "DEFAULT_ALLOW_PATTERNS",
    "DEFAULT_ENDPOINTS",
    "DEFAULT_REVISIONS",
    "HUBS",
    "HubSourceError",
    "digest_of",
    "fetch_plan",
    "is_commit",
    "matches",
    "names_to_hash",
    "normalize_source",
    "redact",
    "revision_warning",
    "select_files",
]

# The options npu.fleet.hub_profile and npu.fleet.hub_fetch share: which repository, where, as whom.
HUB_ARGUMENT_SPEC = {
    "hub": {"type": "str", "choices": ["huggingface", "modelscope"], "default": "huggingface"},
    "repo": {"type": "str", "required": True},
    "revision": {"type": "str"},
    "endpoint": {"type": "str"},
    "token": {"type": "str", "no_log": True},
    "allow_patterns": {"type": "list", "elements": "str"},
    "ignore_patterns": {"type": "list", "elements": "str"},
}

HUBS = ("huggingface", "modelscope")
DEFAULT_ENDPOINTS = {"huggingface": "https://huggingface.co", "modelscope": "https://www.modelscope.cn"}
# What each hub serves when no revision is given: the Hugging Face default branch, ModelScope's.
DEFAULT_REVISIONS = {"huggingface": "main", "modelscope": "master"}

# What serving needs and nothing else: never the whole repository (which may hold a pickle copy of the
# weights, ONNX or GGUF exports, original checkpoints). Same glob rules as huggingface_hub: fnmatch on
# the path, so '*' also crosses '/'; a pattern ending in '/' takes the whole folder.
DEFAULT_ALLOW_PATTERNS = (
    # weights and their index
    "*.safetensors",
    "*.safetensors.index.json",
    # model and generation configuration
    "config.json",
    "generation_config.json",
    # Ascend quantised checkpoints (msModelSlim) describe their quantisation here; vllm-ascend reads it
    "quant_model_description*.json",
    # tokenizer files of every common kind
    "tokenizer*",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.*",
    "merges.txt",
    "*.tiktoken",
    "spiece.model",
    "sentencepiece*.model",
    "chat_template.*",
    # multimodal processors
    "preprocessor_config.json",
    "processor_config.json",
    "video_preprocessor_config.json",
    # code of models that need trust_remote_code (only run when that is enabled)
    "configuration_*.py",
    "modeling_*.py",
    "tokenization_*.py",
    "processing_*.py",
    "image_processing_*.py",
)

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_REVISION = re.compile(r"^[A-Za-z0-9._/-]+$")


class HubSourceError(ValueError):
    """A hub source that cannot be used; the message says which field and how to fix it."""


def is_commit(revision: Optional[str]) -> bool:
    """Whether a revision is a full commit sha (immutable), not a branch or tag name."""
    return bool(revision) and bool(_COMMIT.match(str(revision)))


def normalize_source(
    hub: Optional[str] = None,
    repo: Optional[str] = None,
    revision: Optional[str] = None,
    endpoint: Optional[str] = None,
    allow_patterns: Optional[Iterable[str]] = None,
    ignore_patterns: Optional[Iterable[str]] = None,
) -> Tuple[Dict[str, Any], List[str]]:
    """(the source with defaults filled in, warnings); HubSourceError for a field that cannot be used.

    The returned dict has ``hub``, ``repo``, ``revision``, ``endpoint`` (no
    trailing slash), ``allow_patterns``, ``ignore_patterns`` and ``pinned``
    (whether the revision is a commit sha).
    """
    warnings = []  # type: List[str]
    hub = (hub or "huggingface").strip().lower()
    if hub not in HUBS:
        raise HubSourceError("hub must be one of %s, got %r" % (", ".join(HUBS), hub))
    if not isinstance(repo, str) or not repo.strip():
        raise HubSourceError("repo is required: the repository id as the hub shows it, such as Qwen/Qwen3-8B")
    repo = repo.strip()
    if "://" in repo or repo.lower().startswith(("huggingface.co/", "hf.co/", "modelscope.cn/", "www.")):
        raise HubSourceError("repo is the repository id such as Qwen/Qwen3-8B, not an address; give the address of a mirror as endpoint")
    if not _REPO_ID.match(repo) or ".." in repo or (hub == "modelscope" and "/" not in repo):
        raise HubSourceError("repo %r is not a repository id; write owner/name as the hub shows it, such as Qwen/Qwen3-8B" % repo)
    if revision is None or not str(revision).strip():
        revision = DEFAULT_REVISIONS[hub]
        warnings.append(
            "no revision given for %s: using the %s branch %r, which can move between runs; pin the commit sha the hub "
            "shows for the files" % (repo, hub, revision)
        )
    revision = str(revision).strip()
    if not _REVISION.match(revision) or ".." in revision:
        raise HubSourceError("revision %r is not a commit, branch or tag name; pin the commit sha the hub shows for the files" % revision)
    endpoint = _endpoint(endpoint, hub)
    allow = _patterns(allow_patterns, "allow_patterns") if allow_patterns is not None else list(DEFAULT_ALLOW_PATTERNS)
    ignore = _patterns(ignore_patterns, "ignore_patterns") if ignore_patterns is not None else []
    if not allow:
        raise HubSourceError("allow_patterns is empty: nothing would be fetched; leave it out for the default (weights, config, tokenizer)")
    source = {
        "hub": hub,
        "repo": repo,
        "revision": revision,
        "endpoint": endpoint,
        "allow_patterns": allow,
        "ignore_patterns": ignore,
        "pinned": is_commit(revision),
    }
    return source, warnings


def _endpoint(value: Optional[str], hub: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_ENDPOINTS[hub]
    if not isinstance(value, str):
        raise HubSourceError("endpoint must be the address of the hub or a mirror, such as https://hf-mirror.com")
    text = value.strip().rstrip("/")
    scheme, _sep, rest = text.partition("://")
    host = rest.split("/", 1)[0]
    if "@" in host or "token" in text.lower():
        # Never echo it: the address may carry a secret.
        raise HubSourceError(
            "endpoint carries credentials; give the bare address and the token separately (it is kept out of every output)"
        )
    if scheme.lower() not in ("http", "https") or not host or any(char.isspace() for char in text) or "?" in text or "#" in text:
        raise HubSourceError("endpoint %r is not an http(s) address; give one such as https://hf-mirror.com" % text)
    return text


def _patterns(value: Any, what: str) -> List[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or any(not isinstance(p, str) or not p.strip() for p in value):
        raise HubSourceError("%s must be a list of glob patterns such as ['*.safetensors', '*.json']" % what)
    return [p.strip() for p in value]


def revision_warning(source: Dict[str, Any], commit: Optional[str]) -> Optional[str]:
    """The warning for a revision that is a branch or tag, naming the commit it resolved to."""
    if source["pinned"]:
        return None
    if commit:
        return "revision %r of %s is a branch or tag and resolved to commit %s now; it can move between runs, so pin revision: %s" % (
            source["revision"],
            source["repo"],
            commit,
            commit,
        )
    return "revision %r of %s is a branch or tag, which can move between runs; pin the commit the hub shows for the files" % (
        source["revision"],
        source["repo"],
    )


# --------------------------------------------------------------------------- which files


def matches(name: str, patterns: Iterable[str]) -> bool:
    """huggingface_hub's rule (utils/_paths.py filter_repo_objects): fnmatch, a trailing '/' means the folder."""
    for pattern in patterns:
        if pattern.endswith("/"):
            pattern += "*"
        if fnmatch.fnmatch(name, pattern):
            return True
    return False


def select_files(files: Iterable[Dict[str, Any]], allow: Iterable[str], ignore: Iterable[str] = ()) -> List[Dict[str, Any]]:
    """The files (entries with a ``name``) that an allow pattern takes and no ignore pattern drops, sorted by name."""
    allow, ignore = list(allow), list(ignore)
    return sorted((f for f in files if matches(f["name"], allow) and not matches(f["name"], ignore)), key=lambda f: f["name"])


# --------------------------------------------------------------------------- present or to fetch


def digest_of(entry: Dict[str, Any]) -> Optional[str]:
    """The checksum the hub gives for a file, as 'sha256:<hex>' or 'gitsha1:<hex>', or None."""
    sha256 = entry.get("sha256")
    if isinstance(sha256, str) and _SHA256.match(sha256.lower()):
        return "sha256:" + sha256.lower()
    git_sha1 = entry.get("git_sha1")
    if isinstance(git_sha1, str) and _COMMIT.match(git_sha1.lower()):
        return "gitsha1:" + git_sha1.lower()
    return None


def _stamp_matches(stamp: Optional[Dict[str, Any]], local: Dict[str, Any], digest: str) -> bool:
    return (
        isinstance(stamp, dict)
        and stamp.get("digest") == digest
        and stamp.get("size") == local.get("size")
        and stamp.get("mtime_ns") == local.get("mtime_ns")
    )


def names_to_hash(
    wanted: Iterable[Dict[str, Any]], local: Dict[str, Dict[str, Any]], stamps: Dict[str, Dict[str, Any]], verify: str = "cached"
) -> List[str]:
    """Local files whose checksum must be computed before ``fetch_plan`` can decide.

    ``local`` maps names to ``{size, mtime_ns}`` of the files on disk; ``stamps``
    to ``{size, mtime_ns, digest}`` recorded when a file was last verified.
    ``verify``: ``cached`` hashes a file of the right size unless its stamp
    still matches (size, mtime and digest); ``full`` hashes every such file;
    ``size`` hashes nothing.
    """
    if verify not in ("cached", "full", "size"):
        raise HubSourceError("verify must be cached, full or size, got %r" % verify)
    names = []
    for entry in wanted:
        name, have = entry["name"], local.get(entry["name"])
        digest = digest_of(entry)
        if have is None or have.get("size") != entry["size"] or digest is None or verify == "size":
            continue
        if verify == "full" or not _stamp_matches(stamps.get(name), have, digest):
            names.append(name)
    return sorted(names)


def fetch_plan(
    wanted: Iterable[Dict[str, Any]],
    local: Dict[str, Dict[str, Any]],
    stamps: Dict[str, Dict[str, Any]],
    hashes: Dict[str, str],
    verify: str = "cached",
) -> Dict[str, Any]:
    """Which wanted files are present and verified, which must be fetched, and why.

    ``hashes`` maps the names ``names_to_hash`` returned to the digest computed
    now ('sha256:<hex>' or 'gitsha1:<hex>', whichever the hub gives). Returns
    ``present`` (names), ``fetch`` (``{name, size, reason}``), ``bytes`` (to
    fetch), ``bytes_present`` and ``stamps``: the stamps to keep (those of
    present files, refreshed).
    """
    present, fetch, new_stamps = [], [], {}
    bytes_present = 0
    for entry in sorted(wanted, key=lambda e: e["name"]):
        name, size, have = entry["name"], entry["size"], local.get(entry["name"])
        digest = digest_of(entry)
        reason = None
        if have is None:
            reason = "missing"
        elif have.get("size") != size:
            reason = "size differs: %d bytes here, %d on the hub (%s)" % (
                have.get("size"),
                size,
                "truncated or interrupted" if have.get("size", 0) < size else "not this revision's file",
            )
        elif digest is not None and verify != "size":
            if name in hashes:
                if hashes[name] != digest:
                    reason = "%s differs from the hub's (corrupted, or another revision's file)" % digest.split(":")[0]
            elif not _stamp_matches(stamps.get(name), have, digest):
                reason = "not verified"  # the caller did not hash it: treat as unknown, fetch again
        if reason is None:
            present.append(name)
            bytes_present += size
            if digest is not None and (name in hashes or _stamp_matches(stamps.get(name), have, digest)):
                new_stamps[name] = {"size": size, "mtime_ns": have.get("mtime_ns"), "digest": digest}
        else:
            fetch.append({"name": name, "size": size, "reason": reason})
    return {
        "present": present,
        "fetch": fetch,
        "bytes": sum(item["size"] for item in fetch),
        "bytes_present": bytes_present,
        "stamps": new_stamps,
    }


# --------------------------------------------------------------------------- secrets


def redact(text: Any, *secrets: Optional[str]) -> str:
    """``text`` as a string with every secret replaced by '********' (errors from HTTP clients may quote headers)."""
    out = str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, "********")
    return out
