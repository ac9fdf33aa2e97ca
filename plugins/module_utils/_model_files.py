# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""Is a model directory complete, what must be copied into it, and does the disk hold that.

Three decisions of the model sources stage (docs/model-sources.md), pure
Python so that they run on an NPU host, on the controller and in tests alike:

* ``verify_model_dir``: ``config.json`` parses, every shard the index names
  is there, and every ``*.safetensors`` file is exactly as long as its header
  says (8 bytes + header + the end of the last tensor's data), which catches
  an interrupted copy or download by file name. Only headers are read, never
  tensor data, unless checksums are asked for.
* ``copy_plan``: given the files a source holds (name, size, sha256) and the
  files a host holds, which to copy and which are extra.
* ``free_space`` / ``space_error``: the bytes to copy against the free bytes
  of the filesystem the directory is (or will be) on.

Problems are data (file, what, fix), never exceptions: a garbled file gives a
problem naming it, not a traceback. ``ModelFilesError`` is only for bad
arguments (a manifest that is not one).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import stat
import struct
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from ansible_collections.npu.fleet.plugins.module_utils._safetensors import SAFETENSORS_MAX_HEADER, ModelProfileError, tensor_totals

__all__ = [
    "CONFIG_FILE",
    "INDEX_FILES",
    "ModelFilesError",
    "add_checksums",
    "copy_plan",
    "describe_problems",
    "free_space",
    "human_bytes",
    "manifest",
    "names_to_hash",
    "space_error",
    "verify_model_dir",
]

CONFIG_FILE = "config.json"
# Index files that name the weight shards (safetensors, then the older PyTorch format).
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
# Files a loader can take weights from; a directory with none of them cannot serve.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
HASH_CHUNK = 4 * 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
FIX_TRANSFER = "copy or download this file again: the transfer was interrupted or damaged"


class ModelFilesError(ValueError):
    """An argument is not what the functions take (a malformed manifest); the message names it."""


class _Bad(Exception):
    """One problem of one file, raised inside a check and turned into a problem entry."""


def _problem(name: Optional[str], what: str, fix: str) -> Dict[str, Any]:
    return {"file": name, "what": what, "fix": fix}


def human_bytes(count: int) -> str:
    """Bytes in binary units with one decimal: 512 B, 1.5 KiB, 15.3 GiB."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return "%d B" % count if unit == "B" else "%.1f %s" % (value, unit)
        value /= 1024
    return "%d B" % count  # not reached


def _exact(count: int) -> str:
    return "{:,} bytes".format(count)


# --------------------------------------------------------------------------- the directory


def _list_files(path: str, problems: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Regular files under ``path`` (following file symlinks, as a Hugging Face cache snapshot has them), sorted.

    Hidden directories are skipped: the download clients keep their state there
    (``.cache/huggingface``, ModelScope's ``._____temp``), it is not part of the model.
    """
    files = []

    def walk_error(exc: OSError) -> None:
        problems.append(_problem(_relative(path, exc.filename or path), "cannot be read: %s" % exc.strerror, "fix its permissions"))

    for root, dirs, names in os.walk(path, onerror=walk_error):
        dirs[:] = sorted(name for name in dirs if not name.startswith("."))
        for name in sorted(names):
            full = os.path.join(root, name)
            relative = _relative(path, full)
            try:
                info = os.stat(full)
            except OSError as exc:
                if os.path.islink(full):
                    problems.append(_problem(relative, "is a broken symbolic link", FIX_TRANSFER))
                else:
                    problems.append(_problem(relative, "cannot be read: %s" % exc.strerror, "fix its permissions"))
                continue
            if stat.S_ISREG(info.st_mode):
                files.append({"name": relative, "size": info.st_size})
    return sorted(files, key=lambda item: item["name"])


def _relative(path: str, full: str) -> str:
    return os.path.relpath(full, path).replace(os.sep, "/")


def _load_json(full: str) -> Any:
    """A JSON document, or _Bad naming the position of a syntax error."""
    try:
        with open(full, "r", encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise _Bad("is not UTF-8 text (at byte offset %d): not a JSON file" % exc.start)
    except OSError as exc:
        raise _Bad("cannot be read: %s" % exc.strerror)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _Bad(
            "is not valid JSON: line %s column %s: %s" % (getattr(exc, "lineno", "?"), getattr(exc, "colno", "?"), getattr(exc, "msg", exc))
        )
    except RecursionError:
        raise _Bad("is JSON nested too deeply to read (a corrupt or hostile file)")


def _check_config(path: str, names: Dict[str, int], problems: List[Dict[str, Any]]) -> None:
    if CONFIG_FILE not in names:
        problems.append(_problem(CONFIG_FILE, "is missing", "copy or download the checkpoint's config.json, which says what model this is"))
        return
    try:
        config = _load_json(os.path.join(path, CONFIG_FILE))
        if not isinstance(config, dict):
            raise _Bad("is not a JSON object but %s" % type(config).__name__)
    except _Bad as bad:
        problems.append(_problem(CONFIG_FILE, str(bad), "replace it with the published config.json of the checkpoint"))


def _check_index(path: str, index_name: str, names: Dict[str, int], problems: List[Dict[str, Any]]) -> None:
    """Every shard the index names is a file of the directory."""
    try:
        index = _load_json(os.path.join(path, index_name))
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict):
            raise _Bad("has no 'weight_map' object naming the shard of each tensor")
    except _Bad as bad:
        problems.append(_problem(index_name, str(bad), "replace it with the published %s of the checkpoint" % index_name))
        return
    for shard in sorted(set(str(value) for value in weight_map.values())):
        clean = posixpath.normpath(shard)
        if clean.startswith("../") or clean == ".." or posixpath.isabs(clean):
            problems.append(
                _problem(index_name, "names %r, a file outside the model directory" % shard, "replace it with the published index")
            )
        elif clean not in names:
            problems.append(_problem(clean, "is named by %s but missing" % index_name, "copy or download the missing shard"))


def _safetensors_layout(full: str, size: int) -> Tuple[int, int]:
    """(header length, end of the last tensor's data) of one safetensors file, or _Bad."""
    try:
        with open(full, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise _Bad("is truncated: %s, shorter than the 8-byte header length of a safetensors file" % _exact(len(prefix)))
            (length,) = struct.unpack("<Q", prefix)
            if length > SAFETENSORS_MAX_HEADER:
                raise _Bad(
                    "is not a safetensors file: its first 8 bytes give a header of %s, above the format's limit of %s"
                    % (_exact(length), _exact(SAFETENSORS_MAX_HEADER))
                )
            if length > size - 8:
                raise _Bad(
                    "is truncated inside its header: the header is %s long but only %s follow the 8-byte length"
                    % (_exact(length), _exact(size - 8))
                )
            raw = handle.read(length)
    except OSError as exc:
        raise _Bad("cannot be read: %s" % exc.strerror)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Bad("has a header that is not valid JSON (%s): a corrupt file" % exc)
    except RecursionError:
        raise _Bad("has a header of JSON nested too deeply to read (a corrupt or hostile file)")
    if not isinstance(header, dict):
        raise _Bad("has a header that is not a JSON object: a corrupt file")
    try:
        _total, _elements, end = tensor_totals(full, header)
    except ModelProfileError as exc:
        raise _Bad("has a corrupt header: %s" % str(exc)[len(full) + 2 :])
    return length, end


def _check_safetensors(path: str, name: str, size: int, problems: List[Dict[str, Any]]) -> None:
    """The file is exactly 8 + header + data bytes long, as safetensors loaders require."""
    try:
        length, end = _safetensors_layout(os.path.join(path, name), size)
    except _Bad as bad:
        problems.append(_problem(name, str(bad), FIX_TRANSFER))
        return
    expected = 8 + length + end
    if size < expected:
        problems.append(
            _problem(
                name,
                "is truncated: %s on disk, %s expected from its header (8 + %d header + %d data); %s missing"
                % (_exact(size), _exact(expected), length, end, _exact(expected - size)),
                FIX_TRANSFER,
            )
        )
    elif size > expected:
        problems.append(
            _problem(
                name,
                "is longer than its header declares: %s on disk, %s expected (8 + %d header + %d data); loaders refuse the "
                "extra %s" % (_exact(size), _exact(expected), length, end, _exact(size - expected)),
                FIX_TRANSFER,
            )
        )


def _sha256(full: str) -> str:
    digest = hashlib.sha256()
    with open(full, "rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def add_checksums(path: str, files: List[Dict[str, Any]], names: Iterable[str], problems: List[Dict[str, Any]]) -> None:
    """Add ``sha256`` to the entries of ``files`` named in ``names`` (reading each file whole)."""
    wanted = set(names)
    for item in files:
        if item["name"] in wanted and "sha256" not in item:
            try:
                item["sha256"] = _sha256(os.path.join(path, item["name"]))
            except OSError as exc:
                problems.append(_problem(item["name"], "cannot be read: %s" % exc.strerror, "fix its permissions"))


def verify_model_dir(path: str, checksums: Union[bool, Iterable[str]] = False) -> Dict[str, Any]:
    """Check a checkpoint directory from its headers; nothing is changed.

    ``checksums``: True hashes every file (sha256, slow: every byte is read),
    a list of names hashes those. Returns ``path``, ``exists``, ``ok`` (no
    problem), ``problems`` (file, what, fix; file None for the directory
    itself), ``files`` (name, size[, sha256]; names relative, with /) and
    ``bytes`` (their total).
    """
    problems = []  # type: List[Dict[str, Any]]
    result = {"path": path, "exists": False, "ok": False, "problems": problems, "files": [], "bytes": 0}
    if not os.path.exists(path):
        problems.append(_problem(None, "does not exist", "put the checkpoint there, or point the catalogue at where it is"))
        return result
    if not os.path.isdir(path):
        problems.append(_problem(None, "is not a directory", "point the catalogue at the checkpoint's directory"))
        return result
    result["exists"] = True
    files = _list_files(path, problems)
    names = dict((item["name"], item["size"]) for item in files)
    _check_config(path, names, problems)
    for index_name in INDEX_FILES:
        if index_name in names:
            _check_index(path, index_name, names, problems)
    if not any(name.endswith(WEIGHT_SUFFIXES) for name in names):
        problems.append(
            _problem(
                None,
                "holds no weights (no *.safetensors or *.bin file)",
                "copy or download the weight files; only the configuration is there",
            )
        )
    for name, size in names.items():
        if name.endswith(".safetensors"):
            _check_safetensors(path, name, size, problems)
    if checksums:
        add_checksums(path, files, names if checksums is True else checksums, problems)
    result.update(ok=not problems, files=files, bytes=sum(names.values()))
    return result


def manifest(path: str) -> List[Dict[str, Any]]:
    """Name, size and sha256 of every file of a directory (the source side of ``copy_plan``)."""
    problems = []  # type: List[Dict[str, Any]]
    files = _list_files(path, problems)
    add_checksums(path, files, [item["name"] for item in files], problems)
    if problems or not os.path.isdir(path):
        raise ModelFilesError(describe_problems(path, problems or [_problem(None, "is not a directory", "")]))
    return files


def describe_problems(path: str, problems: List[Dict[str, Any]], host: Optional[str] = None, limit: int = 5) -> str:
    """One message for a failed task: host, path, and each problem with its fix (the first ``limit``)."""
    where = "%s: %s" % (host, path) if host else path
    parts = []
    for problem in problems[:limit]:
        subject = path if problem["file"] is None else problem["file"]
        parts.append("%s %s%s" % (subject, problem["what"], " (fix: %s)" % problem["fix"] if problem["fix"] else ""))
    more = "; and %d more" % (len(problems) - limit) if len(problems) > limit else ""
    return "%s is not a complete checkpoint, %d problem(s): %s%s" % (where, len(problems), "; ".join(parts), more)


# --------------------------------------------------------------------------- what to copy


def _manifest_entries(files: Any, what: str) -> Dict[str, Dict[str, Any]]:
    if not isinstance(files, (list, tuple)):
        raise ModelFilesError("%s must be a list of {name, size, sha256} entries, got %s" % (what, type(files).__name__))
    entries = {}
    for position, item in enumerate(files):
        where = "%s[%d]" % (what, position)
        if not isinstance(item, dict):
            raise ModelFilesError("%s must be a mapping with name and size, got %r" % (where, item))
        name, size, sha = item.get("name"), item.get("size"), item.get("sha256")
        if not isinstance(name, str) or not name:
            raise ModelFilesError("%s has no name" % where)
        clean = posixpath.normpath(name)
        if clean != name or clean.startswith("../") or clean == ".." or posixpath.isabs(clean):
            raise ModelFilesError("%s: name %r is not a plain relative path inside the model directory" % (where, name))
        if isinstance(size, str) and size.isdigit():
            size = int(size)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ModelFilesError("%s (%s): size must be a whole number of bytes, got %r" % (where, name, size))
        entry = {"name": name, "size": size}
        if sha is not None:
            if not isinstance(sha, str) or not _SHA256.match(sha.lower()):
                raise ModelFilesError("%s (%s): sha256 must be 64 hexadecimal digits, got %r" % (where, name, sha))
            entry["sha256"] = sha.lower()
        entries[name] = entry
    return entries


def names_to_hash(source_files: Any, target_files: Any, source_label: str = "source files") -> List[str]:
    """Target files worth hashing for ``copy_plan``: same size as a source file that has a sha256."""
    source = _manifest_entries(source_files, source_label)
    target = _manifest_entries(target_files, "target files")
    return sorted(
        name for name, entry in target.items() if name in source and "sha256" in source[name] and source[name]["size"] == entry["size"]
    )


def copy_plan(source_files: Any, target_files: Any, broken: Iterable[str] = (), source_label: str = "source files") -> Dict[str, Any]:
    """What to copy from a source (controller directory, hub revision) to a target directory.

    A file is copied when the target lacks it, its size differs, or both
    sides have a sha256 and they differ; ``broken`` names target files that
    failed verification, copied again unless their sha256 equals the
    source's (then copying would not change them). Returns ``files`` to copy
    (name, size, reason), ``extra`` (target files the source does not have;
    never deleted here), ``same`` (names) and ``bytes`` (to copy).
    ``source_label`` names the source list in errors (the caller's option name).
    """
    source = _manifest_entries(source_files, source_label)
    target = _manifest_entries(target_files, "target files")
    broken = set(broken)
    copy, same = [], []
    for name in sorted(source):
        want, have = source[name], target.get(name)
        reason = None
        if have is None:
            reason = "missing"
        elif have["size"] != want["size"]:
            reason = "size differs: %s here, %s at the source" % (_exact(have["size"]), _exact(want["size"]))
        elif "sha256" in want and "sha256" in have:
            if want["sha256"] != have["sha256"]:
                reason = "sha256 differs"
        elif name in broken:
            reason = "failed verification"
        if reason is None:
            same.append(name)
        else:
            copy.append({"name": name, "size": want["size"], "reason": reason})
    return {
        "files": copy,
        "extra": sorted(name for name in target if name not in source),
        "same": same,
        "bytes": sum(item["size"] for item in copy),
    }


# --------------------------------------------------------------------------- space


def free_space(path: str) -> Tuple[int, str]:
    """(bytes an unprivileged writer may still use, the directory measured): ``path`` or its nearest existing parent."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    info = os.statvfs(probe)
    return info.f_bavail * info.f_frsize, probe


def space_error(need: int, free: int, path: str, host: Optional[str] = None, checked_at: Optional[str] = None) -> Optional[str]:
    """None when ``need`` bytes fit in ``free``, else the message naming host, path, need and free."""
    if need <= free:
        return None
    where = "%s: %s" % (host, path) if host else path
    at = checked_at if checked_at and checked_at != path else None
    return (
        "%s needs %s (%s) but %s has %s free (%s); free %s there, or set host_path (or npu_fleet_model_root) to a "
        "filesystem with room"
        % (
            where,
            human_bytes(need),
            _exact(need),
            "its filesystem (measured at %s)" % at if at else "its filesystem",
            human_bytes(free),
            _exact(free),
            human_bytes(need - free),
        )
    )
