# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""The compatibility matrix: vllm-ascend releases, architectures, hardware, CANN.

The data lives in ``_compat_matrix.json`` next to this file, not in code, so
that it can be reviewed as data, diffed row by row, rendered into
``docs/compatibility.md`` and extended without touching the selection logic.
JSON (stdlib) rather than YAML keeps module_utils free of third-party imports.
The file is read relative to ``__file__``: that works wherever the collection
is installed as files, which is where its only reader runs - the
``npu.fleet.image_select`` filter, on the controller. A module shipped to a
target in an AnsiballZ payload would not carry the JSON file; none needs it.

Every row names its ``source``. Inventory extends or overrides the data with
``npu_fleet_compat_overrides`` (see :func:`merge_overrides`); the merged result
is validated and errors name the offending key.

vllm-ascend versions (``v0.14.0rc1``, ``v0.9.1``, ``v0.7.3.post1``, ``v0.11.0rc0``)
are PEP 440-like and ordered by :func:`vllm_version_key`; CANN, NNAL and driver
versions are Ascend versions, ordered by ``_ascend_versions.version_key``.
"""

from __future__ import annotations

import copy
import json
import os
import re
import string
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.npu.fleet.plugins.module_utils._ascend_versions import AscendVersionError, version_key

__all__ = [
    "CompatDataError",
    "DATA_FILE",
    "OVERRIDES_NAME",
    "SCHEMA_VERSION",
    "VllmVersionError",
    "compare_vllm_versions",
    "load_matrix",
    "merge_overrides",
    "read_data_file",
    "validate_matrix",
    "vllm_version_key",
]

SCHEMA_VERSION = 1
DATA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_compat_matrix.json")
OVERRIDES_NAME = "npu_fleet_compat_overrides"
BASE_NAME = "the compatibility data (plugins/module_utils/_compat_matrix.json)"

_VLLM_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:\.(\d+))?(?:rc(\d+))?(?:\.post(\d+))?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PATTERN_FIELDS = ("cann", "chip", "os", "python")

_BASE_CACHE = {}  # type: Dict[str, Dict[str, Any]]


class CompatDataError(ValueError):
    """The matrix or the overrides break the schema; the message names the key."""


class VllmVersionError(ValueError):
    """A string that is not a vllm-ascend version such as v0.14.0rc1."""


# --------------------------------------------------------------------------- vllm-ascend versions


def vllm_version_key(version: str) -> Tuple[int, ...]:
    """Sort key of a vllm-ascend release tag.

    ``rcN`` is a pre-release of its version (``rc0`` exists: v0.11.0rc0),
    ``.postN`` a post-release: v0.7.3rc2 < v0.7.3 < v0.7.3.post1 < v0.8.4rc2.
    A fourth number (vLLM's v0.10.1.1) is a patch level.
    """
    match = _VLLM_VERSION.match(str(version).strip()) if version is not None else None
    if not match:
        raise VllmVersionError("not a vllm-ascend version: %r (expected a tag such as v0.14.0rc1, v0.9.1 or v0.7.3.post1)" % (version,))
    major, minor, micro, patch, rc, post = match.groups()
    stage = 0 if rc is not None else 1
    return (int(major), int(minor), int(micro), int(patch or 0), stage, int(rc or 0), int(post or 0))


def compare_vllm_versions(left: str, right: str) -> int:
    """-1, 0 or 1 as vllm-ascend version ``left`` is older than, equal to or newer than ``right``."""
    a, b = vllm_version_key(left), vllm_version_key(right)
    return (a > b) - (a < b)


# --------------------------------------------------------------------------- loading and merging


def read_data_file(path: Optional[str] = None) -> Dict[str, Any]:
    """The shipped matrix as a fresh deep copy (parsed once per path)."""
    path = path or DATA_FILE
    if path not in _BASE_CACHE:
        try:
            with open(path, "r", encoding="utf-8") as handle:
                _BASE_CACHE[path] = json.load(handle)
        except (OSError, ValueError) as exc:
            raise CompatDataError("%s: cannot read the compatibility data: %s" % (path, exc))
    return copy.deepcopy(_BASE_CACHE[path])


def merge_overrides(base: Dict[str, Any], overrides: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Return ``base`` with ``overrides`` merged over it; neither input is changed.

    Mappings merge key by key at every depth, so one field of one release can be
    pinned without restating the row; any other value (string, number, list,
    null) replaces what was there. ``custom_images`` is the exception: the
    override's list is appended, because in-house images add to the published
    ones. Rows are retired with ``disabled: true``, never deleted.
    """
    if overrides is None:
        return copy.deepcopy(base)
    if not isinstance(overrides, dict):
        raise CompatDataError(
            "%s must be a mapping (a dict of the matrix keys to change), got %s" % (OVERRIDES_NAME, type(overrides).__name__)
        )
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if key == "custom_images" and isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = merged[key] + copy.deepcopy(value)
        else:
            merged[key] = _merge_value(merged.get(key), value)
    return merged


def _merge_value(old: Any, new: Any) -> Any:
    if isinstance(old, dict) and isinstance(new, dict):
        result = dict(old)
        for key, value in new.items():
            result[key] = _merge_value(old.get(key), value)
        return result
    return copy.deepcopy(new)


def load_matrix(overrides: Optional[Dict[str, Any]] = None, path: Optional[str] = None) -> Dict[str, Any]:
    """The shipped matrix with ``overrides`` merged in, validated."""
    base = read_data_file(path)
    if (
        overrides
        and isinstance(overrides, dict)
        and "schema_version" in overrides
        and overrides["schema_version"] != base.get("schema_version")
    ):
        raise CompatDataError(
            "%s.schema_version: %r does not match the data's schema_version %r; rewrite the overrides "
            "for schema %r" % (OVERRIDES_NAME, overrides["schema_version"], base.get("schema_version"), base.get("schema_version"))
        )
    matrix = merge_overrides(base, overrides)
    validate_matrix(matrix, overrides)
    return matrix


# --------------------------------------------------------------------------- validation


class _Checker:
    """Builds schema errors that say where the offending key came from."""

    def __init__(self, overrides: Optional[Dict[str, Any]], first_override_image: int) -> None:
        self.overrides = overrides if isinstance(overrides, dict) else {}
        self.first_override_image = first_override_image

    def origin(self, path: List[Any]) -> str:
        """The overrides when the row (first two path levels) comes from them, else the shipped file."""
        if len(path) > 1 and path[0] == "custom_images" and isinstance(path[1], int):
            return OVERRIDES_NAME if path[1] >= self.first_override_image else BASE_NAME
        node = self.overrides  # type: Any
        for part in path[:2]:
            if not (isinstance(node, dict) and part in node):
                return BASE_NAME
            node = node[part]
        return OVERRIDES_NAME if path else BASE_NAME

    def fail(self, path: List[Any], message: str) -> CompatDataError:
        """The error to raise, prefixed with the origin and the key path."""
        return CompatDataError("%s: %s: %s" % (self.origin(path), _render_path(path), message))


def _render_path(path: List[Any]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += "[%d]" % part
        elif re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", str(part)):
            text += ("." if text else "") + str(part)
        else:
            text += '["%s"]' % part
    return text or "(top level)"


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _is_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _check_str(value: Any) -> Optional[str]:
    return None if _is_str(value) else "expected a non-empty string, got %s %r" % (_type_name(value), value)


def _check_opt_str(value: Any) -> Optional[str]:
    return None if value is None else _check_str(value)


def _check_bool(value: Any) -> Optional[str]:
    return None if isinstance(value, bool) else "expected true or false, got %s %r" % (_type_name(value), value)


def _check_vllm_version(value: Any) -> Optional[str]:
    try:
        vllm_version_key(value)
    except VllmVersionError as exc:
        return str(exc)
    return None


def _check_opt_vllm_version(value: Any) -> Optional[str]:
    return None if value is None else _check_vllm_version(value)


def _check_ascend_version(value: Any) -> Optional[str]:
    if not _is_str(value):
        return "expected an Ascend version string such as 8.5.0 or 25.0.rc1, got %s %r" % (_type_name(value), value)
    try:
        version_key(value)
    except AscendVersionError as exc:
        return str(exc)
    return None


def _check_opt_ascend_version(value: Any) -> Optional[str]:
    return None if value is None else _check_ascend_version(value)


def _check_date(value: Any) -> Optional[str]:
    if value is None or (isinstance(value, str) and _DATE.match(value)):
        return None
    return "expected a date YYYY-MM-DD or null, got %r" % (value,)


def _check_str_list(value: Any) -> Optional[str]:
    if isinstance(value, list) and all(_is_str(item) for item in value):
        return None
    return "expected a list of strings, got %r" % (value,)


def _check_regex_list(value: Any) -> Optional[str]:
    problem = _check_str_list(value)
    if problem:
        return problem
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as exc:
            return "%r is not a valid regular expression: %s" % (pattern, exc)
    return None


def _check_pattern(value: Any) -> Optional[str]:
    problem = _check_str(value)
    if problem:
        return problem
    try:
        fields = [name for _text, name, _spec, _conv in string.Formatter().parse(value) if name is not None]
    except ValueError as exc:
        return "%r is not a valid name pattern: %s" % (value, exc)
    unknown = sorted(set(fields) - set(_PATTERN_FIELDS))
    if unknown:
        return "%r uses unknown placeholder(s) %s; allowed: %s" % (
            value,
            ", ".join("{%s}" % name for name in unknown),
            ", ".join("{%s}" % name for name in _PATTERN_FIELDS),
        )
    return None


def _check_platform_map(value: Any) -> Optional[str]:
    if isinstance(value, dict) and all(_is_str(k) and _is_str(v) for k, v in value.items()):
        return None
    return "expected a mapping of CPU architecture (x86_64, aarch64) to the reason, got %r" % (value,)


Field = Tuple[Callable[[Any], Optional[str]], bool]

TOP_FIELDS = {
    "schema_version": (lambda v: None if v == SCHEMA_VERSION else "expected %d, got %r" % (SCHEMA_VERSION, v), True),
    "read_from": (_check_opt_str, False),
    "registry": (_check_str, True),
    "registry_source": (_check_opt_str, False),
    "os_variants": (None, True),
    "platforms": (_check_str_list, True),
    "platforms_source": (_check_opt_str, False),
    "image_nnal_source": (_check_opt_str, False),
    "hardware": (None, True),
    "cann": (None, True),
    "transformers": (None, True),
    "torch_npu": (None, True),
    "releases": (None, True),
    "architectures": (None, True),
    "custom_images": (None, True),
}  # type: Dict[str, Field]

HARDWARE_FIELDS = {
    "label": (_check_str, True),
    "chips": (_check_regex_list, True),
    "layouts": (_check_str_list, False),
    "image_suffix": (lambda v: None if v is None or isinstance(v, str) else "expected a string or null, got %r" % (v,), False),
    "cann_chip": (_check_opt_str, False),
    "unsupported": (_check_opt_str, False),
    "source": (_check_str, True),
}  # type: Dict[str, Field]

CANN_FIELDS = {
    "min_driver": (_check_opt_ascend_version, False),
    "paired_driver": (_check_opt_ascend_version, False),
    "python": (_check_str_list, False),
    "source": (_check_str, True),
    "base_python_source": (_check_opt_str, False),
    "base_chips": (_check_str_list, False),
    "base_source": (_check_opt_str, False),
    "note": (_check_opt_str, False),
}  # type: Dict[str, Field]

TRANSFORMERS_FIELDS = {
    "base_image": (_check_pattern, True),
    "image": (_check_pattern, True),
    "os": (_check_str, True),
    "python": (_check_str, True),
    "default_cann": (_check_ascend_version, True),
    "min_python": (_check_opt_str, False),
    "min_python_source": (_check_opt_str, False),
    "source": (_check_str, True),
}  # type: Dict[str, Field]

TORCH_NPU_FIELDS = {
    "source": (_check_str, True),
    "python_source": (_check_opt_str, False),
    "pypi_source": (_check_opt_str, False),
    "python": (None, True),
    "pairs": (None, True),
}  # type: Dict[str, Field]

TORCH_PAIR_FIELDS = {
    "torch": (_check_str, True),
    "torch_npu": (_check_str, True),
    "branch": (_check_opt_str, False),
    "pypi": (_check_bool, False),
}  # type: Dict[str, Field]

RELEASE_FIELDS = {
    "date": (_check_date, False),
    "vllm": (_check_opt_str, False),
    "cann": (_check_ascend_version, True),
    "torch": (_check_opt_str, False),
    "torch_npu": (_check_opt_str, False),
    "python": (_check_opt_str, False),
    "source": (_check_str, True),
    "images": (None, True),
    "min_driver": (_check_opt_ascend_version, False),
    "min_driver_source": (_check_opt_str, False),
    "unsupported_platforms": (_check_platform_map, False),
    "note": (_check_opt_str, False),
    "disabled": (_check_bool, False),
}  # type: Dict[str, Field]

VARIANT_FIELDS = {
    "cann": (_check_ascend_version, True),
    "os": (_check_str_list, True),
    "base": (_check_opt_str, False),
    "unsupported": (_check_opt_str, False),
    "note": (_check_opt_str, False),
}  # type: Dict[str, Field]

ARCH_FIELDS = {
    "label": (_check_opt_str, False),
    "min_version": (_check_opt_vllm_version, False),
    "source": (_check_str, True),
    "also_in": (lambda v: _check_str_list(v) or next((p for p in map(_check_vllm_version, v) if p), None), False),
    "also_in_source": (_check_opt_str, False),
    "field_min_version": (_check_opt_vllm_version, False),
    "field_source": (_check_opt_str, False),
    "family_min": (None, False),
    "skips_mtp_layers": (_check_bool, False),
    "mtp_source": (_check_opt_str, False),
    "unsupported": (_check_opt_str, False),
}  # type: Dict[str, Field]

CUSTOM_IMAGE_FIELDS = {
    "image": (_check_str, True),
    "version": (_check_vllm_version, True),
    "family": (_check_str, True),
    "cann": (_check_ascend_version, True),
    "os": (_check_str, False),
    "source": (_check_str, True),
    "note": (_check_opt_str, False),
    "architectures": (_check_str_list, False),
    "min_driver": (_check_opt_ascend_version, False),
    "disabled": (_check_bool, False),
}  # type: Dict[str, Field]


def _check_fields(checker: _Checker, row: Any, fields: Dict[str, Field], path: List[Any], what: str) -> None:
    """Known keys only, required keys present, each value of the right kind."""
    if not isinstance(row, dict):
        raise checker.fail(path, "expected a mapping describing %s, got %s %r" % (what, _type_name(row), row))
    for key in row:
        if key not in fields:
            raise checker.fail(path + [key], "unknown key %r for %s; allowed keys: %s" % (key, what, ", ".join(sorted(fields))))
    for key, (check, required) in fields.items():
        if key not in row:
            if required:
                raise checker.fail(path, "missing required key %r for %s" % (key, what))
            continue
        problem = check(row[key]) if check else None
        if problem:
            raise checker.fail(path + [key], problem)


def _check_mapping(checker: _Checker, value: Any, path: List[Any], what: str) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise checker.fail(path, "expected a mapping of %s, got %s %r" % (what, _type_name(value), value))
    return value


def validate_matrix(matrix: Any, overrides: Optional[Dict[str, Any]] = None) -> None:
    """Raise CompatDataError naming the first key that breaks the schema.

    ``overrides`` (the inventory's ``npu_fleet_compat_overrides``) only decides
    whether an error is reported against the overrides or the shipped file.
    """
    added = overrides.get("custom_images") if isinstance(overrides, dict) else None
    images = matrix.get("custom_images") if isinstance(matrix, dict) else None
    first_added = len(images) - len(added) if isinstance(added, list) and isinstance(images, list) else 1 << 30
    checker = _Checker(overrides, first_added)
    _check_fields(checker, matrix, TOP_FIELDS, [], "the compatibility matrix")
    os_variants = _check_mapping(checker, matrix["os_variants"], ["os_variants"], "OS name to image tag suffix")
    for name, suffix in os_variants.items():
        if not isinstance(suffix, str):
            raise checker.fail(["os_variants", name], "expected a tag suffix string such as '-openeuler', got %r" % (suffix,))
    hardware = _check_mapping(checker, matrix["hardware"], ["hardware"], "chip family to its description")
    for family, row in hardware.items():
        _check_fields(checker, row, HARDWARE_FIELDS, ["hardware", family], "a chip family")
    for version, row in _check_mapping(checker, matrix["cann"], ["cann"], "CANN release to its driver needs").items():
        problem = _check_ascend_version(version)
        if problem:
            raise checker.fail(["cann", version], problem)
        _check_fields(checker, row, CANN_FIELDS, ["cann", version], "a CANN release")
    _check_fields(checker, matrix["transformers"], TRANSFORMERS_FIELDS, ["transformers"], "the Transformers backend image")
    _validate_torch_npu(checker, matrix)
    _validate_releases(checker, matrix, hardware, os_variants)
    _validate_architectures(checker, matrix, hardware)
    _validate_custom_images(checker, matrix, hardware, os_variants)


def _validate_torch_npu(checker: _Checker, matrix: Dict[str, Any]) -> None:
    """torch/torch_npu pairs per CANN release; every pair's torch has a Python list, so a base's Python can be matched."""
    section = matrix["torch_npu"]
    _check_fields(checker, section, TORCH_NPU_FIELDS, ["torch_npu"], "the torch/torch_npu pairs")
    pythons = _check_mapping(checker, section["python"], ["torch_npu", "python"], "torch version to the Pythons it supports")
    for torch, supported in pythons.items():
        problem = _check_str_list(supported)
        if problem:
            raise checker.fail(["torch_npu", "python", torch], problem)
    for cann, pairs in _check_mapping(checker, section["pairs"], ["torch_npu", "pairs"], "CANN release to its torch pairs").items():
        path = ["torch_npu", "pairs", cann]
        problem = _check_ascend_version(cann)
        if problem:
            raise checker.fail(path, problem)
        if not isinstance(pairs, list) or not pairs:
            raise checker.fail(path, "expected a non-empty list of {torch, torch_npu} pairs, newest first, got %r" % (pairs,))
        for index, pair in enumerate(pairs):
            _check_fields(checker, pair, TORCH_PAIR_FIELDS, path + [index], "a torch/torch_npu pair")
            if pair["torch"] not in pythons:
                raise checker.fail(path + [index, "torch"], "torch %s has no Python list under torch_npu.python" % pair["torch"])


def _validate_releases(checker: _Checker, matrix: Dict[str, Any], hardware: Dict[str, Any], os_variants: Dict[str, Any]) -> None:
    releases = _check_mapping(checker, matrix["releases"], ["releases"], "vllm-ascend version to its release row")
    for version, row in releases.items():
        path = ["releases", version]
        problem = _check_vllm_version(version)
        if problem:
            raise checker.fail(path, problem)
        _check_fields(checker, row, RELEASE_FIELDS, path, "a vllm-ascend release")
        images = _check_mapping(checker, row["images"], path + ["images"], "chip family to its image variant")
        for family, variant in images.items():
            if family not in hardware:
                raise checker.fail(path + ["images", family], "unknown chip family %r; known: %s" % (family, ", ".join(sorted(hardware))))
            _check_fields(checker, variant, VARIANT_FIELDS, path + ["images", family], "an image variant")
            for name in variant["os"]:
                if name not in os_variants:
                    raise checker.fail(path + ["images", family, "os"], "unknown OS %r; known: %s" % (name, ", ".join(sorted(os_variants))))
            if hardware[family].get("image_suffix") is None:
                raise checker.fail(path + ["images", family], "chip family %r has no image_suffix, so it cannot have images" % family)


def _validate_architectures(checker: _Checker, matrix: Dict[str, Any], hardware: Dict[str, Any]) -> None:
    architectures = _check_mapping(checker, matrix["architectures"], ["architectures"], "architecture class name to its support")
    for name, row in architectures.items():
        path = ["architectures", name]
        _check_fields(checker, row, ARCH_FIELDS, path, "an architecture")
        if row.get("field_min_version") and not row.get("field_source"):
            raise checker.fail(path, "field_min_version needs a field_source naming the report")
        if not row.get("unsupported") and not row.get("min_version") and not row.get("field_min_version"):
            raise checker.fail(path, "give min_version (first release that supports it) or unsupported (the reason)")
        family_min = row.get("family_min") or {}
        for family, entry in _check_mapping(checker, family_min, path + ["family_min"], "chip family to a minimum").items():
            if family not in hardware:
                raise checker.fail(
                    path + ["family_min", family], "unknown chip family %r; known: %s" % (family, ", ".join(sorted(hardware)))
                )
            _check_fields(
                checker,
                entry,
                {"version": (_check_vllm_version, True), "source": (_check_str, True)},
                path + ["family_min", family],
                "a per-family minimum",
            )


def _validate_custom_images(checker: _Checker, matrix: Dict[str, Any], hardware: Dict[str, Any], os_variants: Dict[str, Any]) -> None:
    images = matrix["custom_images"]
    if not isinstance(images, list):
        raise checker.fail(["custom_images"], "expected a list of image entries, got %s %r" % (_type_name(images), images))
    for index, row in enumerate(images):
        path = ["custom_images", index]
        _check_fields(checker, row, CUSTOM_IMAGE_FIELDS, path, "a custom image")
        if row["family"] not in hardware:
            raise checker.fail(path + ["family"], "unknown chip family %r; known: %s" % (row["family"], ", ".join(sorted(hardware))))
        if row.get("os", "ubuntu") not in os_variants:
            raise checker.fail(path + ["os"], "unknown OS %r; known: %s" % (row.get("os"), ", ".join(sorted(os_variants))))
