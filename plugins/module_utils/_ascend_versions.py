# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""Read the version files an Ascend host carries, and order Ascend versions.

Files (real samples in tests/unit/fixtures/npu-smi, see docs/npu-smi.md):

* ``<ascend>/driver/version.info`` and ``<ascend>/firmware/version.info`` (``key=value``,
  ``Version=`` with a capital V, ``compatible_version_fw=[7.0.0,7.7.99]`` ranges);
* CANN ``ascend_toolkit_install.info`` (also ``ascend_nnae_install.info``),
  ``ascend-toolkit/latest/version.cfg`` (``x_running_version=[<inner>:<release>]``) and
  component ``version.info`` files (``Version=8.2.0.0.201``, ``version_dir=8.2.RC1``);
* NNAL/ATB, MindIE and atb-models ``version.info`` (``key : value``, indented, mixed
  separators, empty values);
* ``/etc/ascend_install.info``, Ascend Docker Runtime ``ascend_docker_runtime_install.info``,
  ``/etc/docker/daemon.json`` and ``docker version``.

Version ordering (:func:`version_key`), chosen from the schemes seen in those files:

1. ``major.minor`` compare as numbers (``8.10`` > ``8.9``).
2. The third field is the stage of the ``major.minor`` line:
   ``T<n>`` test build < ``RC<n>`` release candidate < a number (final release), so
   ``8.0.T63 < 8.0.RC1 < 8.0.RC3 < 8.0.0 < 8.0.1``.  Test builds such as ``7.0.T10``
   carry no compatibility promise and sort lowest on purpose: a minimum-version gate
   accepts one only when the gate itself names a test build.  A version with no
   third field (``24.0``) names the start of its line: ``24.0 < 24.0.rc1``.
3. ``alpha<n>`` / ``beta<n>`` (CANN community editions such as ``8.1.RC1.alpha001``,
   base images such as ``9.1.0-beta.1``) are pre-releases of what they suffix:
   ``8.1.RC1.alpha001 < 8.1.RC1.beta1 < 8.1.RC1``.
4. Further numbers are patch levels of that stage: ``24.1.rc2 < 24.1.rc2.2 < 24.1.rc3``
   (driver hot-fixes), ``23.0.2 < 23.0.2.1``, firmware ``7.7.0.1.231``.  Trailing
   zeros do not count (``23.0.2.0 == 23.0.2``).
5. ``B<n>`` is the build number of the release it suffixes, compared last; a missing
   build counts as ``B0``: ``8.2.RC1 < 8.2.RC1.B150 < 8.2.RC2``, ``23.0.rc2 < 23.0.rc2.b090``.
6. Letters are case-insensitive (``rc1`` == ``RC1``), a leading ``v`` is ignored
   (``v5.0.RC3``), and ``-`` separates fields like ``.``.

Anything else (``V100R001C21SPC002B220`` inner versions, words) raises
:class:`AscendVersionError`.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional, Tuple

__all__ = [
    "AscendVersionError",
    "VersionFileParseError",
    "compare_versions",
    "parse_ascend_install_info",
    "parse_atb_models_version_info",
    "parse_component_version_info",
    "parse_docker_daemon_json",
    "parse_docker_runtime_install_info",
    "parse_docker_version",
    "parse_driver_version_info",
    "parse_firmware_version_info",
    "parse_install_info",
    "parse_mindie_version_info",
    "parse_nnal_version_info",
    "parse_version_cfg",
    "parse_version_list",
    "version_in_range",
    "version_key",
]

Line = Tuple[int, str]

_TEST, _RC, _FINAL, _LINE_ONLY = 0, 1, 2, -1
_ALPHA, _BETA, _RELEASED = 0, 1, 2
_ASCEND_RUNTIME_BINARY = "ascend-docker-runtime"


class VersionFileParseError(ValueError):
    """A version file that cannot be read; names the first offending line when there is one."""

    def __init__(self, message: str, line_number: Optional[int] = None, line: Optional[str] = None) -> None:
        self.message = message
        self.line_number = line_number
        self.line = line
        rendered = message if line_number is None else "%s (line %d: %r)" % (message, line_number, line)
        super().__init__(rendered)


class AscendVersionError(ValueError):
    """A string that is not an Ascend version this module can order."""


# --------------------------------------------------------------------------- helpers


def _content_lines(text: str) -> List[Line]:
    """Numbered non-blank lines; raise on a file that is empty or blank."""
    if text is None or not text.strip():
        raise VersionFileParseError("the file is empty", 1, "")
    return [(n, raw.rstrip("\r")) for n, raw in enumerate(text.split("\n"), 1) if raw.strip()]


def _fail(message: str, line: Optional[Line] = None) -> VersionFileParseError:
    return VersionFileParseError(message) if line is None else VersionFileParseError(message, line[0], line[1])


def _equals_pairs(text: str) -> List[Tuple[Line, str, str]]:
    """``key=value`` lines (``#`` comments allowed); keys keep their case."""
    pairs = []
    for line in _content_lines(text):
        stripped = line[1].strip()
        if stripped.startswith("#"):
            continue
        key, sign, value = stripped.partition("=")
        if not sign or not key.strip():
            raise _fail("expected 'key=value'", line)
        pairs.append((line, key.strip(), value.strip()))
    if not pairs:
        raise _fail("the file has no 'key=value' line", _content_lines(text)[0])
    return pairs


def _colon_pairs(text: str) -> List[Tuple[Line, str, str]]:
    """``key : value`` lines with any spacing around the colon (``key:value`` too)."""
    pairs = []
    for line in _content_lines(text):
        key, colon, value = line[1].strip().partition(":")
        if not colon or not key.strip():
            raise _fail("expected 'key : value'", line)
        pairs.append((line, key.strip(), value.strip()))
    return pairs


def _lower_dict(pairs: List[Tuple[Line, str, str]]) -> Dict[str, str]:
    """Keys folded to lower case: the files mix ``Version=`` and ``version=``."""
    return {key.lower(): value for _line, key, value in pairs}


def _required(values: Dict[str, str], key: str, pairs: List[Tuple[Line, str, str]], what: str) -> str:
    value = values.get(key.lower())
    if not value:
        raise _fail("%s has no %r value" % (what, key), pairs[0][0])
    return value


def _unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def parse_version_list(value: str) -> List[Tuple[str, ...]]:
    """``[a],[b,c]`` -> ``[("a",), ("b", "c")]`` (compatible_version* fields)."""
    value = value.strip()
    if not value:
        return []
    groups = re.findall(r"\[([^\]]*)\]", value)
    if not groups or re.sub(r"\[[^\]]*\]", "", value).strip(", "):
        raise ValueError("not a list of [..] groups: %r" % value)
    return [tuple(part.strip() for part in group.split(",")) for group in groups]


def _version_list(values: Dict[str, str], key: str, pairs: List[Tuple[Line, str, str]]) -> List[Tuple[str, ...]]:
    try:
        return parse_version_list(values.get(key, ""))
    except ValueError as error:
        line = next((line for line, k, _v in pairs if k.lower() == key), pairs[0][0])
        raise _fail(str(error), line) from None


# ------------------------------------------------------------------ driver / firmware


def parse_driver_version_info(text: str) -> Dict[str, Any]:
    """``<ascend>/driver/version.info``: driver ``version`` and firmware compatibility."""
    pairs = _equals_pairs(text)
    values = _lower_dict(pairs)
    return {
        "version": _required(values, "Version", pairs, "driver version.info"),
        "package_version": values.get("package_version"),
        "innerversion": values.get("innerversion"),
        "compatible_version": [group[0] for group in _version_list(values, "compatible_version", pairs)],
        "compatible_version_fw": _version_list(values, "compatible_version_fw", pairs),
        "values": {key: value for _line, key, value in pairs},
    }


def parse_firmware_version_info(text: str) -> Dict[str, Any]:
    """``<ascend>/firmware/version.info``: firmware ``version`` and driver compatibility."""
    pairs = _equals_pairs(text)
    values = _lower_dict(pairs)
    return {
        "version": _required(values, "Version", pairs, "firmware version.info"),
        "package_version": values.get("package_version"),
        "compatible_version_drv": _version_list(values, "compatible_version_drv", pairs),
        "values": {key: value for _line, key, value in pairs},
    }


# ------------------------------------------------------------------------------ CANN


def parse_install_info(text: str) -> Dict[str, Any]:
    """``ascend_toolkit_install.info`` (or nnae's ``ascend_nnae_install.info``)."""
    pairs = _equals_pairs(text)
    values = _lower_dict(pairs)
    return {
        "package_name": values.get("package_name"),
        "version": _required(values, "version", pairs, "install.info"),
        "innerversion": values.get("innerversion"),
        "arch": values.get("arch"),
        "os": values.get("os"),
        "path": values.get("path"),
        "compatible_version": _version_list(values, "compatible_version", pairs),
    }


def parse_version_cfg(text: str) -> Dict[str, Any]:
    """``ascend-toolkit/latest/version.cfg``: ``<component>_<kind>_version=[inner:release]``.

    ``version`` is the release of ``toolkit_running_version`` (else of the first entry).
    """
    pairs = _equals_pairs(text)
    components: Dict[str, Dict[str, Dict[str, str]]] = {}
    for line, key, value in pairs:
        match = re.match(r"^(?P<component>\w+?)_(?P<kind>running|upgrade|installed)_version$", key)
        pair = re.match(r"^\[(?P<inner>[^:\]]+):(?P<release>[^\]]+)\]$", value)
        if not match or not pair:
            raise _fail("expected '<component>_<running|upgrade|installed>_version=[inner:release]'", line)
        slot = components.setdefault(match.group("component"), {})
        slot[match.group("kind")] = {"inner": pair.group("inner"), "release": pair.group("release")}
    toolkit = components.get("toolkit", {}).get("running") or next(iter(components.values()))["running"]
    return {"version": toolkit["release"], "inner_version": toolkit["inner"], "components": components}


def parse_component_version_info(text: str) -> Dict[str, Any]:
    """A CANN component ``version.info`` (toolkit/, opp_kernel/, opp/): inner ``version``,
    release ``version_dir`` and ``required_package_<name>_version`` specs."""
    pairs = _equals_pairs(text)
    values = _lower_dict(pairs)
    required = {}
    for _line, key, value in pairs:
        match = re.match(r"^required_package_(\w+)_version$", key)
        if match:
            required[match.group(1)] = _unquote(value)
    return {
        "version": _required(values, "Version", pairs, "version.info"),
        "version_dir": values.get("version_dir"),
        "required": required,
    }


def parse_nnal_version_info(text: str) -> Dict[str, Any]:
    """``nnal/atb/latest/version.info``: ``Ascend-cann-atb : 8.2.RC1`` plus build details."""
    pairs = _colon_pairs(text)
    values = _lower_dict(pairs)
    return {
        "version": _required(values, "Ascend-cann-atb", pairs, "NNAL version.info"),
        "build_version": values.get("ascend-cann-atb version"),
        "platform": values.get("platform"),
        "branch": values.get("branch"),
        "commit_id": values.get("commit id"),
    }


def parse_mindie_version_info(text: str) -> Dict[str, Any]:
    """``mindie/latest/version.info``: ``Ascend-mindie : MindIE 2.1.RC1.B152`` + components."""
    pairs = _colon_pairs(text)
    values = _lower_dict(pairs)
    product = _required(values, "Ascend-mindie", pairs, "MindIE version.info").split()
    components = {key: value for _line, key, value in pairs if key.lower().startswith("mindie-")}
    return {"version": product[-1], "components": components, "platform": values.get("platform")}


def parse_atb_models_version_info(text: str) -> Dict[str, Any]:
    """``atb-models/version.info``: ``ATB-Models Version`` (may be empty -> None)."""
    pairs = _colon_pairs(text)
    values = _lower_dict(pairs)
    if "atb-models version" not in values:
        raise _fail("atb-models version.info has no 'ATB-Models Version'", pairs[0][0])
    return {
        "version": values["atb-models version"] or None,
        "mindie_atb_version": values.get("mindie-atb version") or None,
        "branch": values.get("mindie-atb tag/branch") or None,
        "commit_id": values.get("commit id") or None,
        "platform": values.get("platform") or None,
        "time": values.get("time") or None,
    }


# -------------------------------------------------------------- install records, docker


def parse_ascend_install_info(text: str) -> Dict[str, Any]:
    """``/etc/ascend_install.info``: who installed driver/firmware, and where."""
    pairs = _equals_pairs(text)
    values = _lower_dict(pairs)
    return {
        "username": values.get("username"),
        "usergroup": values.get("usergroup"),
        "driver_install_path": values.get("driver_install_path_param"),
        "firmware_install_path": values.get("firmware_install_path_param"),
        "values": {key: value for _line, key, value in pairs},
    }


def parse_docker_runtime_install_info(text: str) -> Dict[str, Any]:
    """Ascend Docker Runtime ``ascend_docker_runtime_install.info`` (``version=v5.0.RC3``)."""
    pairs = _equals_pairs(text)
    values = _lower_dict(pairs)
    flags = {key: value.lower() == "y" for key, value in values.items() if value.lower() in ("y", "n")}
    return {
        "version": _required(values, "version", pairs, "ascend_docker_runtime_install.info"),
        "arch": values.get("arch"),
        "path": values.get("path"),
        "build": values.get("build"),
        "install_types": flags,
    }


def parse_docker_daemon_json(text: str) -> Dict[str, Any]:
    """``/etc/docker/daemon.json``: is an Ascend runtime registered, is it the default?

    A runtime counts as Ascend when it is named ``ascend`` or its path ends in
    ``ascend-docker-runtime`` (what the installer's ``ascend-docker-plugin-install-helper``
    writes).
    """
    if text is None or not text.strip():
        raise VersionFileParseError("the file is empty", 1, "")
    try:
        config = json.loads(text)
    except ValueError as error:
        lineno = getattr(error, "lineno", 1)
        lines = text.split("\n")
        raise VersionFileParseError("not valid JSON: %s" % getattr(error, "msg", error), lineno, lines[lineno - 1]) from None
    if not isinstance(config, dict):
        raise VersionFileParseError("daemon.json is not a JSON object", 1, text.split("\n", 1)[0])
    runtimes = config.get("runtimes") or {}
    if not isinstance(runtimes, dict):
        raise VersionFileParseError("'runtimes' is not an object")
    ascend = sorted(name for name, spec in runtimes.items() if _is_ascend_runtime(name, spec))
    default = config.get("default-runtime")
    return {
        "runtimes": sorted(runtimes),
        "ascend_runtimes": ascend,
        "ascend_runtime_registered": bool(ascend),
        "ascend_runtime_path": runtimes[ascend[0]].get("path") if ascend and isinstance(runtimes[ascend[0]], dict) else None,
        "default_runtime": default,
        "ascend_is_default": default in ascend,
    }


def _is_ascend_runtime(name: str, spec: Any) -> bool:
    path = spec.get("path", "") if isinstance(spec, dict) else ""
    return name == "ascend" or str(path).rstrip("/").endswith(_ASCEND_RUNTIME_BINARY)


def parse_docker_version(text: str) -> Dict[str, Any]:
    """``docker version``: client/server versions and server components (``ascend:`` too)."""
    client: Optional[str] = None
    current: Optional[str] = None
    section: Optional[str] = None
    components: Dict[str, str] = {}
    for line in _content_lines(text):
        raw = line[1]
        if not raw.startswith(" "):
            section, current = raw.split(":")[0].strip().lower(), None
            continue
        key, _colon, value = raw.strip().partition(":")
        value = value.strip()
        if not value and raw.startswith(" ") and not raw.startswith("  "):
            current = key.strip()
        elif key.strip() == "Version":
            if section == "client" and current is None:
                client = value
            elif section == "server" and current is not None:
                components[current] = value
    server = components.get("Engine")
    if client is None and server is None:
        raise _fail("not 'docker version' output", _content_lines(text)[0])
    return {"client": client, "server": server, "components": components}


# --------------------------------------------------------------------------- ordering


def _parse_stage(token: str) -> Optional[Tuple[int, int]]:
    match = re.match(r"^(rc|t)(\d+)$", token)
    if match:
        return (_RC if match.group(1) == "rc" else _TEST), int(match.group(2))
    return None


def version_key(version: str) -> Tuple[Any, ...]:
    """Sort key of an Ascend version; the rules are in the module docstring."""
    text = str(version).strip().lower()
    if text.startswith("v"):
        text = text[1:]
    tokens = re.split(r"[.-]", text)
    while tokens and tokens[-1] == "":
        tokens.pop()
    if not tokens or not tokens[0].isdigit() or any(token == "" for token in tokens):
        raise AscendVersionError("not an Ascend version: %r" % version)
    numbers = [int(tokens[0]), int(tokens[1]) if len(tokens) > 1 and tokens[1].isdigit() else 0]
    rest = tokens[2:] if len(tokens) > 1 and tokens[1].isdigit() else tokens[1:]
    stage, pre, patches, build = (_LINE_ONLY, 0), (_RELEASED, 0), [], 0
    for token in rest:
        staged = _parse_stage(token)
        pre_match = re.match(r"^(alpha|beta)(\d*)$", token)
        if token.isdigit() and stage[0] == _LINE_ONLY:
            stage = (_FINAL, int(token))
        elif token.isdigit() and pre[0] != _RELEASED and pre[1] < 0:
            pre = (pre[0], int(token))
        elif token.isdigit():
            patches.append(int(token))
        elif staged and stage[0] == _LINE_ONLY:
            stage = staged
        elif pre_match and stage[0] != _LINE_ONLY:
            pre = (_ALPHA if pre_match.group(1) == "alpha" else _BETA, int(pre_match.group(2)) if pre_match.group(2) else -1)
        elif re.match(r"^b\d+$", token) and stage[0] != _LINE_ONLY:
            build = int(token[1:])
        else:
            raise AscendVersionError("not an Ascend version: %r (field %r)" % (version, token))
    while patches and patches[-1] == 0:
        patches.pop()
    return (numbers[0], numbers[1], stage[0], stage[1], pre[0], max(pre[1], 0), tuple(patches), build)


def compare_versions(left: str, right: str) -> int:
    """-1, 0 or 1 as ``left`` sorts before, with or after ``right``."""
    a, b = version_key(left), version_key(right)
    return (a > b) - (a < b)


def version_in_range(version: str, low: str, high: str) -> bool:
    """Is ``version`` within ``[low, high]`` as the compatible_version_* fields mean it?

    A ``high`` ending in a dot (``[24.1,24.1.]``) means "every version that starts
    with ``24.1.``"; otherwise both bounds are inclusive.
    """
    if compare_versions(version, low) < 0:
        return False
    if high.endswith("."):
        prefix = high.lower().rstrip(".").lstrip("v")
        current = version.lower().lstrip("v")
        return current == prefix or current.startswith(prefix + ".")
    return compare_versions(version, high) <= 0
