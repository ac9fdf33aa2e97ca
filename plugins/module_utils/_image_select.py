# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""Choose the serving backend and image for one model on one host.

Pure function of (model profile, host facts, wishes, compatibility matrix);
the rules are written out in docs/compatibility.md and in :func:`image_select`.

The vLLM candidates are the vllm-ascend images of the host's chip family (and
the wished OS), newest first. An image is rejected for every rule it breaks,
and the reasons are kept: the architecture is unknown, unsupported or needs a
newer release; the weights carry layers the model class cannot load; the chip
family has no (working) image in that release; the host driver is older than
the image's CANN accepts; the host NNAL is older than the image's CANN.

The host NNAL rule and the advice that comes with it are shared with
preflight (``_host_stack``, where the sources are): a host NNAL whose release is
older than the image's CANN rejects the image; the fix installs the CANN
toolkit and NNAL of one release, never NNAL alone ahead of the toolkit, so a
host that follows it passes preflight too. The host CANN toolkit is not
compared: the official ``docker run`` mounts only driver paths.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.npu.fleet.plugins.module_utils._compat_data import (
    VllmVersionError,
    compare_vllm_versions,
    load_matrix,
    vllm_version_key,
)
from ansible_collections.npu.fleet.plugins.module_utils._host_stack import (
    fix_sentence,
    nnal_older,
    older,
    release_line,
    stack_fix,
    stack_mismatch,
)

__all__ = [
    "BACKENDS",
    "ImageSelectError",
    "host_family",
    "image_select",
    "image_selection",
    "list_candidates",
    "refusal",
    "selection_summary",
    "torch_pair",
    "transformers_build",
]

BACKENDS = ("auto", "vllm", "transformers")
ARCH_MINIMUMS = ("strict", "documented")
WISH_KEYS = ("backend", "image", "force", "vllm_min_version", "os", "architecture_minimum")
NUM_NEXTN_SOURCE = "config: num_nextn_predict_layers"

# Rejection codes, grouped by what they say about the model, the hardware or the host.
MODEL_CODES = ("ARCH_UNKNOWN", "ARCH_UNLISTED", "ARCH_UNSUPPORTED", "EXTRA_LAYERS")
HOST_CODES = ("NNAL_OLDER", "DRIVER_TOO_OLD")


class ImageSelectError(ValueError):
    """A wish the rules refuse: a pinned image they reject (without ``force``),
    ``backend: vllm`` with no image that fits, or a host no backend can serve.
    ``rejected`` carries the per-image reasons for the caller to show."""

    def __init__(self, message: str, rejected: Optional[List[Dict[str, Any]]] = None) -> None:
        super().__init__(message)
        self.rejected = rejected or []


# --------------------------------------------------------------------------- inputs


def _wishes(wishes: Optional[Dict[str, Any]], matrix: Dict[str, Any]) -> Dict[str, Any]:
    """Defaults filled in, every value checked; unknown keys are an error (typos must not pass)."""
    wishes = dict(wishes or {})
    unknown = sorted(set(wishes) - set(WISH_KEYS))
    if unknown:
        raise ValueError("unknown wish(es) %s; allowed: %s" % (", ".join(unknown), ", ".join(WISH_KEYS)))
    result = {
        "backend": wishes.get("backend") or "auto",
        "image": wishes.get("image") or None,
        "force": wishes.get("force", False),
        "vllm_min_version": wishes.get("vllm_min_version") or None,
        "os": wishes.get("os") or "ubuntu",
        "architecture_minimum": wishes.get("architecture_minimum") or "strict",
    }
    if result["backend"] not in BACKENDS:
        raise ValueError("backend must be one of %s, got %r" % (", ".join(BACKENDS), result["backend"]))
    if not isinstance(result["force"], bool):
        raise ValueError("force must be true or false, got %r" % (result["force"],))
    if result["image"] is not None and not isinstance(result["image"], str):
        raise ValueError("image must be an image name string, got %r" % (result["image"],))
    if result["vllm_min_version"] is not None:
        try:
            vllm_version_key(result["vllm_min_version"])
        except VllmVersionError as exc:
            raise ValueError("vllm_min_version: %s" % exc)
    if result["os"] not in matrix["os_variants"]:
        raise ValueError("os must be one of %s, got %r" % (", ".join(sorted(matrix["os_variants"])), result["os"]))
    if result["architecture_minimum"] not in ARCH_MINIMUMS:
        raise ValueError("architecture_minimum must be one of %s, got %r" % (", ".join(ARCH_MINIMUMS), result["architecture_minimum"]))
    return result


def _chip_names(host: Dict[str, Any]) -> List[str]:
    chips = host.get("chips") or []
    if not isinstance(chips, list):
        raise ValueError("host.chips must be a list of chips (npu_facts chips), got %r" % (chips,))
    return sorted(set(str(chip.get("name")) for chip in chips if isinstance(chip, dict) and chip.get("name")))


def _family_of_chip(name: str, matrix: Dict[str, Any]) -> Optional[str]:
    for family, row in matrix["hardware"].items():
        if any(re.search(pattern, name) for pattern in row["chips"]):
            return family
    return None


def host_family(host: Dict[str, Any], matrix: Dict[str, Any]) -> Tuple[Optional[str], str]:
    """(chip family or None, the sentence saying how it was decided).

    An explicit ``chip_family`` wins; then the npu-smi table layout (A3 boards
    print plain ``Ascend910``, their layout says ``a3``); then the chip names.
    """
    explicit = host.get("chip_family")
    if explicit:
        if explicit not in matrix["hardware"]:
            raise ValueError("host.chip_family %r is not a known chip family (%s)" % (explicit, ", ".join(matrix["hardware"])))
        return explicit, "chip family %s (%s), as given in host.chip_family." % (explicit, matrix["hardware"][explicit]["label"])
    names = _chip_names(host)
    layout = host.get("npu_smi_layout")
    for family, row in matrix["hardware"].items():
        if layout and layout in (row.get("layouts") or []):
            return family, "chip family %s (%s) from the npu-smi layout %r%s." % (
                family,
                row["label"],
                layout,
                " and chips %s" % ", ".join(names) if names else "",
            )
    if not names:
        return None, "the host facts name no chips and no chip_family, so no chip family is known."
    families = sorted(set(f for f in (_family_of_chip(name, matrix) for name in names) if f))
    unknown = [name for name in names if not _family_of_chip(name, matrix)]
    if len(families) > 1:
        raise ValueError("host has chips of several families (%s: %s); set host.chip_family" % (", ".join(families), ", ".join(names)))
    if unknown or not families:
        return None, "chip(s) %s match no chip family in the compatibility data." % ", ".join(unknown or names)
    family = families[0]
    return family, "chip family %s (%s) from chip(s) %s." % (family, matrix["hardware"][family]["label"], ", ".join(names))


def _architecture(profile: Dict[str, Any], matrix: Dict[str, Any]) -> Optional[str]:
    """The profile's first architecture that the data knows, else its first one."""
    names = [name for name in (profile.get("architectures") or []) if isinstance(name, str)]
    if profile.get("architecture") and profile["architecture"] not in names:
        names.insert(0, profile["architecture"])
    for name in names:
        if name in matrix["architectures"]:
            return name
    return names[0] if names else None


# --------------------------------------------------------------------------- candidates


def list_candidates(matrix: Dict[str, Any], family: Optional[str] = None, os_name: Optional[str] = None) -> List[Dict[str, Any]]:
    """Every known vLLM image (published and custom), newest first, optionally of one family and OS."""
    candidates = []
    for version, release in matrix["releases"].items():
        if release.get("disabled"):
            continue
        for fam, variant in release["images"].items():
            suffix = matrix["hardware"][fam]["image_suffix"]
            for name in variant["os"]:
                candidates.append(
                    {
                        "image": "%s:%s%s%s" % (matrix["registry"], version, suffix, matrix["os_variants"][name]),
                        "version": version,
                        "family": fam,
                        "os": name,
                        "cann": variant["cann"],
                        "custom": False,
                        "unsupported": variant.get("unsupported"),
                        "note": variant.get("note") or release.get("note"),
                        "release": release,
                        "architectures": None,
                        "min_driver": release.get("min_driver"),
                        "min_driver_source": release.get("min_driver_source"),
                    }
                )
    for entry in matrix["custom_images"]:
        if entry.get("disabled"):
            continue
        candidates.append(
            {
                "image": entry["image"],
                "version": entry["version"],
                "family": entry["family"],
                "os": entry.get("os", "ubuntu"),
                "cann": entry["cann"],
                "custom": True,
                "unsupported": None,
                "note": entry.get("note"),
                "release": matrix["releases"].get(entry["version"]) or {},
                "architectures": entry.get("architectures"),
                "min_driver": entry.get("min_driver"),
                "min_driver_source": entry.get("source") if entry.get("min_driver") else None,
                "source": entry["source"],
            }
        )
    candidates = [c for c in candidates if (family is None or c["family"] == family) and (os_name is None or c["os"] == os_name)]
    candidates.sort(key=lambda c: c["image"])
    candidates.sort(key=lambda c: (vllm_version_key(c["version"]), c["custom"]), reverse=True)
    return candidates


def _resolve_pin(pin: str, matrix: Dict[str, Any], family: Optional[str], os_name: str) -> Optional[Dict[str, Any]]:
    """The candidate a pinned image names: its full name, a bare tag, or a vllm-ascend tag under any registry (a mirror)."""
    everything = list_candidates(matrix)
    for candidate in everything:
        if candidate["image"] == pin:
            return candidate
    repo, sep, tag = pin.rpartition(":")
    if not sep or "/" in tag:
        return None
    if repo and not repo.endswith("vllm-ascend"):
        return None
    for candidate in everything:
        if candidate["custom"] or candidate["image"].rpartition(":")[2] != tag:
            continue
        if not repo and (candidate["os"] != os_name or (family and candidate["family"] != family)):
            continue
        return dict(candidate, image=pin if repo else candidate["image"])
    return None


def _resolve_bare_tag(pin: str, matrix: Dict[str, Any], family: Optional[str], os_name: str) -> Optional[Dict[str, Any]]:
    """A pin without registry and colon (``v0.14.0rc1``) means that release for this host's family and OS."""
    if ":" in pin or "/" in pin:
        return None
    for candidate in list_candidates(matrix, family, os_name):
        if not candidate["custom"] and candidate["version"] == pin:
            return candidate
    return None


# --------------------------------------------------------------------------- rules


def _arch_minimum(row: Dict[str, Any], policy: str) -> Tuple[Optional[str], str]:
    """(effective minimum release, the sentence naming both minimums and which one wins)."""
    documented, field = row.get("min_version"), row.get("field_min_version")
    if field and policy == "strict" and (not documented or compare_vllm_versions(field, documented) > 0):
        return field, (
            "needs vllm-ascend %s or newer - the field-reported minimum (%s), stricter than the documented %s (%s)"
            % (field, row["field_source"], documented or "none", row["source"])
        )
    if documented:
        extra = (
            "; a field report asks for %s (%s), ignored with architecture_minimum: documented" % (field, row["field_source"])
            if field and policy != "strict"
            else ""
        )
        return documented, "is supported from vllm-ascend %s (%s)%s" % (documented, row["source"], extra)
    return field, "needs vllm-ascend %s or newer (%s)" % (field, row.get("field_source"))


def _model_problems(profile: Dict[str, Any], arch: Optional[str], matrix: Dict[str, Any]) -> List[Tuple[str, str]]:
    """Version-independent reasons vLLM cannot serve this checkpoint at all."""
    problems = []
    row = matrix["architectures"].get(arch) if arch else None
    if not arch:
        problems.append(
            (
                "ARCH_UNKNOWN",
                "the profile names no architecture (config.json has no 'architectures'), so no "
                "vllm-ascend release can be shown to support it",
            )
        )
    elif row is None:
        problems.append(
            (
                "ARCH_UNLISTED",
                "architecture %s is not listed by any vllm-ascend release in the compatibility data; "
                "add it under %s.architectures (with min_version and source) once tested" % (arch, "npu_fleet_compat_overrides"),
            )
        )
    elif row.get("unsupported"):
        problems.append(
            (
                "ARCH_UNSUPPORTED",
                "architecture %s is not supported by vllm-ascend: %s (source: %s)" % (arch, row["unsupported"], row["source"]),
            )
        )
    layer_problem = _layer_problem(profile, row or {})
    if layer_problem:
        problems.append(("EXTRA_LAYERS", layer_problem))
    return problems


def _layer_problem(profile: Dict[str, Any], row: Dict[str, Any]) -> Optional[str]:
    """Weights beyond num_hidden_layers that the model class would not skip.

    vLLM's DeepSeek-V2/V3, GLM-4.5 and GLM-5 classes skip exactly the layers
    num_hidden_layers .. +num_nextn_predict_layers-1 when that count is > 0
    (vllm/model_executor/models/deepseek_v2.py @ b863fe5b,
    get_spec_layer_idx_from_weight_name); every other class fails to place them.
    """
    extra = [int(i) for i in (profile.get("extra_layers") or [])]
    if not extra:
        return None
    layers = profile.get("num_hidden_layers") or 0
    nextn = (profile.get("mtp_layers") or 0) if profile.get("mtp_layers_source") == NUM_NEXTN_SOURCE else 0
    prefix = profile.get("extra_layers_prefix") or "model.layers."
    if row.get("skips_mtp_layers") and nextn > 0 and all(layers <= i < layers + nextn for i in extra):
        return None
    first = "%s%d" % (prefix, extra[0])
    why = (
        "the class %s has no MTP skip" % profile.get("architecture")
        if nextn > 0 and not row.get("skips_mtp_layers")
        else "num_nextn_predict_layers=%s, so no vLLM class skips them" % (nextn if nextn else "0/unset")
    )
    listed = ", ".join(str(i) for i in extra)
    return (
        "the weights carry layer(s) %s beyond num_hidden_layers=%d (%s%s, MTP weights; %s): vLLM's loader fails with "
        "\"There is no module or parameter named '%s'\"" % (listed, layers, prefix, listed, why, first)
    )


def _arch_problems(candidate: Dict[str, Any], arch: Optional[str], matrix: Dict[str, Any], policy: str) -> List[Tuple[str, str]]:
    """Release-dependent architecture reasons: older than the first release that runs it."""
    row = matrix["architectures"].get(arch) if arch else None
    if candidate.get("architectures") is not None and arch in candidate["architectures"]:
        return []
    if row is None or row.get("unsupported"):
        return []
    problems = []
    version = candidate["version"]
    minimum, sentence = _arch_minimum(row, policy)
    field = row.get("field_min_version")
    field_ok = policy != "strict" or not field or compare_vllm_versions(version, field) >= 0
    backport = version in (row.get("also_in") or []) and field_ok
    if minimum and compare_vllm_versions(version, minimum) < 0 and not backport:
        problems.append(("ARCH_TOO_OLD", "%s is older than %s: %s %s" % (version, minimum, arch, sentence)))
    family_min = (row.get("family_min") or {}).get(candidate["family"])
    if family_min and compare_vllm_versions(version, family_min["version"]) < 0:
        problems.append(
            (
                "ARCH_FAMILY_TOO_OLD",
                "%s is older than %s, the first release that runs %s on %s (%s)"
                % (version, family_min["version"], arch, candidate["family"], family_min["source"]),
            )
        )
    return problems


def _host_problems(candidate: Dict[str, Any], host: Dict[str, Any], matrix: Dict[str, Any], warnings: List[str]) -> List[Tuple[str, str]]:
    """Driver too old for the image's CANN, host NNAL older than it, CPU architecture not built."""
    problems = []
    arch = host.get("arch")
    blocked = (candidate["release"].get("unsupported_platforms") or {}).get(arch) if arch else None
    if arch and arch not in matrix["platforms"]:
        problems.append(("PLATFORM", "vllm-ascend images are built for %s, not %s" % (", ".join(matrix["platforms"]), arch)))
    elif blocked:
        problems.append(("PLATFORM", "%s on %s: %s" % (candidate["version"], arch, blocked)))
    min_driver, source = _min_driver(candidate, matrix)
    driver = host.get("driver_version")
    if older(driver, min_driver):
        problems.append(
            (
                "DRIVER_TOO_OLD",
                "host driver %s is older than %s, the oldest Ascend HDK that CANN %s (in %s) supports (%s)"
                % (driver, min_driver, candidate["cann"], candidate["version"], source),
            )
        )
    elif driver and min_driver and older(driver, min_driver) is None:
        warnings.append("host driver %r could not be compared with %s" % (driver, min_driver))
    nnal = host.get("nnal_version")
    if nnal_older(nnal, candidate["cann"]):
        problems.append(
            (
                "NNAL_OLDER",
                "host NNAL %s is older than CANN %s in %s: ATB fails with `libatb.so: undefined symbol` "
                "when the host NNAL reaches the container (field report, Eva-4B-V2; vllm-ascend issue #750; "
                "installation.md 'NNAL == CANN'); for this image %s"
                % (nnal, candidate["cann"], candidate["version"], fix_sentence(stack_fix(host, candidate["cann"]), host)),
            )
        )
    elif nnal and nnal_older(nnal, candidate["cann"]) is None:
        warnings.append("host NNAL %r could not be compared with CANN %s" % (nnal, candidate["cann"]))
    return problems


def _min_driver(candidate: Dict[str, Any], matrix: Dict[str, Any]) -> Tuple[Optional[str], Optional[str]]:
    """The oldest driver the image runs on and where that comes from: the release's own word, else its CANN's row."""
    cann_row = matrix["cann"].get(candidate["cann"]) or {}
    if candidate.get("min_driver"):
        return candidate["min_driver"], candidate.get("min_driver_source")
    return cann_row.get("min_driver"), cann_row.get("source")


def _host_fix(candidate: Dict[str, Any], problems: List[Tuple[str, str]], context: Dict[str, Any]) -> Optional[Dict[str, str]]:
    """The host change that makes a candidate rejected only for the host stack run (``_host_stack.stack_fix``)."""
    if not problems or any(code not in HOST_CODES for code, _text in problems):
        return None
    return stack_fix(context["host"], candidate["cann"], _min_driver(candidate, context["matrix"])[0]) or None


def _evaluate(candidate: Dict[str, Any], context: Dict[str, Any]) -> List[Tuple[str, str]]:
    """Every rule the candidate breaks, as (code, sentence) pairs, in a fixed order."""
    wishes, matrix = context["wishes"], context["matrix"]
    problems = []
    minimum = wishes["vllm_min_version"]
    if minimum and compare_vllm_versions(candidate["version"], minimum) < 0:
        problems.append(("BELOW_MIN_VERSION", "%s is older than vllm_min_version %s" % (candidate["version"], minimum)))
    if context["family"] and candidate["family"] != context["family"]:
        problems.append(("FAMILY_MISMATCH", "the image is built for %s chips, the host has %s" % (candidate["family"], context["family"])))
    if candidate.get("unsupported"):
        problems.append(("FAMILY_UNSUPPORTED", "%s on %s: %s" % (candidate["version"], candidate["family"], candidate["unsupported"])))
    if not (candidate.get("architectures") is not None and context["arch"] in candidate["architectures"]):
        problems.extend(context["model_problems"])
    problems.extend(_arch_problems(candidate, context["arch"], matrix, wishes["architecture_minimum"]))
    problems.extend(_host_problems(candidate, context["host"], matrix, context["warnings"]))
    return problems


def _rejection(candidate: Dict[str, Any], problems: List[Tuple[str, str]], context: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """One rejected image; ``fix`` (host facts to set) when only the host's driver/NNAL stand in its way."""
    rejection = {
        "image": candidate["image"],
        "version": candidate["version"],
        "codes": [code for code, _text in problems],
        "reason": "; ".join(text for _code, text in problems),
    }
    fix = _host_fix(candidate, problems, context) if context else None
    if fix:
        rejection["fix"] = fix
    return rejection


# --------------------------------------------------------------------------- Transformers


def _python_key(version: Any) -> Tuple[int, ...]:
    """'3.10' -> (3, 10), so that 3.10 sorts after 3.9."""
    return tuple(int(part) for part in re.findall(r"\d+", str(version))[:2])


def _cann_key(cann: str, table: Dict[str, Any]) -> Optional[str]:
    """The key of ``table`` that is the release of ``cann`` (8.0.rc1 is 8.0.RC1, 8.5.0.B110 is 8.5.0)."""
    line = release_line(cann)
    return next((key for key in table if release_line(key) == line), None)


def _installable(pair: Dict[str, Any]) -> bool:
    """Can pip take this torch_npu from PyPI: not marked absent, not a dev or local (+git) build."""
    return pair.get("pypi", True) is not False and "+" not in pair["torch_npu"] and ".dev" not in pair["torch_npu"]


def torch_pair(cann: str, python: Optional[str], matrix: Dict[str, Any]) -> Tuple[Optional[str], Optional[str], Optional[str]]:
    """(torch, torch_npu, where the pair comes from) for a CANN base with this Python; Nones when none fits.

    First the newest pair Ascend publishes for that CANN (``torch_npu.pairs``)
    whose torch supports the Python, then the newest vllm-ascend release built
    on that CANN (any image variant, retired rows left out). Either way the
    torch_npu must be on PyPI, where the server Dockerfile installs it from.
    """
    section = matrix["torch_npu"]

    def fits(pair: Dict[str, Any]) -> bool:
        supported = section["python"].get(pair["torch"])
        return _installable(pair) and (python is None or not supported or python in supported)

    key = _cann_key(cann, section["pairs"])
    for pair in section["pairs"][key] if key else []:
        if fits(pair):
            where = "Ascend/pytorch COMPATIBILITY.en.md: torch_npu %s for CANN %s" % (pair["torch_npu"], key)
            return pair["torch"], pair["torch_npu"], where + (" (branch %s)" % pair["branch"] if pair.get("branch") else "")
    line = release_line(cann)
    for version in sorted(matrix["releases"], key=vllm_version_key, reverse=True):
        release = matrix["releases"][version]
        canns = [release["cann"]] + [variant["cann"] for variant in release["images"].values()]
        if (
            release.get("disabled")
            or not (release.get("torch") and release.get("torch_npu"))
            or line not in [release_line(c) for c in canns]
        ):
            continue
        if fits({"torch": release["torch"], "torch_npu": release["torch_npu"]}):
            return release["torch"], release["torch_npu"], "vllm-ascend %s (built on CANN %s)" % (version, cann)
    return None, None, None


def transformers_build(host: Dict[str, Any], family: Optional[str], matrix: Dict[str, Any], warnings: List[str]) -> Dict[str, Any]:
    """Name the Transformers server image, its base and its torch/torch_npu; nothing is built here.

    The base is the CANN container image of the host's CANN release for this
    chip family: its CANN and NNAL are then the host's release, which the host
    NNAL rule (``_host_stack``) accepts. torch/torch_npu come from
    :func:`torch_pair`; when none is known, or the base cannot take the
    server, a warning says so before the build would fail.
    """
    spec = matrix["transformers"]
    chip = matrix["hardware"][family].get("cann_chip") if family else None
    if not chip:
        raise ImageSelectError(
            "no backend can serve this host: %s"
            % (
                "its chip family is unknown"
                if not family
                else "chip family %s has no CANN container image (cann_chip), %s"
                % (family, matrix["hardware"][family].get("unsupported") or "none is known")
            )
        )
    cann = release_line(host.get("cann_version") or "")
    if not host.get("cann_version"):
        cann = spec["default_cann"]
        warnings.append("the host reports no CANN version; the Transformers image uses CANN %s (transformers.default_cann)" % cann)
    key = _cann_key(cann, matrix["cann"])
    cann_row = matrix["cann"][key] if key else None
    cann = key or cann
    pythons = (cann_row or {}).get("python") or []
    python = spec["python"] if not pythons or spec["python"] in pythons else pythons[-1]
    if cann_row is None:
        warnings.append("the compatibility data has no CANN %s row; check that the base image exists" % cann)
    elif cann_row.get("base_chips") and chip not in cann_row["base_chips"]:
        warnings.append(
            "the CANN %s base image is published for %s chips only, not %s (%s); set serve_transformers_base_image"
            % (cann, ", ".join(cann_row["base_chips"]), chip, cann_row.get("base_source"))
        )
    if spec.get("min_python") and _python_key(python) < _python_key(spec["min_python"]):
        warnings.append(
            "the CANN %s base has Python %s and the Transformers server needs %s or newer (%s), so its Dockerfile stops; "
            "set serve_transformers_base_image to a CANN %s base with Python %s or newer%s, or upgrade the host as advised"
            % (cann, python, spec["min_python"], spec.get("min_python_source"), cann, spec["min_python"], _note(cann_row))
        )
    fields = {"cann": cann.lower(), "chip": chip, "os": spec["os"], "python": python}
    image = spec["image"].format(**fields)
    torch, torch_npu, torch_source = torch_pair(cann, python, matrix)
    if torch_npu is None:
        warnings.append(
            "no torch/torch_npu pair is known for CANN %s with Python %s, so the server image cannot be built; add one under "
            "npu_fleet_compat_overrides.torch_npu.pairs, or set serve_transformers_base_image to a base that has torch, "
            "torch_npu and transformers" % (cann, python)
        )
    return {
        "base_image": spec["base_image"].format(**fields),
        "image": image,
        "tag": image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else "latest",
        "cann": cann,
        "chip": chip,
        "os": spec["os"],
        "python": python,
        "torch": torch,
        "torch_npu": torch_npu,
        "torch_source": torch_source,
    }


def _note(cann_row: Optional[Dict[str, Any]]) -> str:
    return " (%s)" % cann_row["note"] if cann_row and cann_row.get("note") else ""


# --------------------------------------------------------------------------- selection


def _pinned(context: Dict[str, Any]) -> Dict[str, Any]:
    """A pinned vLLM image: used when the rules accept it, or with force; otherwise ImageSelectError."""
    wishes, matrix = context["wishes"], context["matrix"]
    pin = wishes["image"]
    candidate = _resolve_pin(pin, matrix, context["family"], wishes["os"]) or _resolve_bare_tag(
        pin, matrix, context["family"], wishes["os"]
    )
    if candidate is None:
        message = (
            "pinned image %s is not in the compatibility data, so no rule can vouch for it; add it under "
            "npu_fleet_compat_overrides.custom_images (image, version, family, cann, source) or set force: true" % pin
        )
        if not wishes["force"]:
            raise ImageSelectError(message)
        context["warnings"].append("%s - used unchecked because force is true" % message)
        return _result("vllm", pin, None, context, ["image %s was pinned (force: true)." % pin], [])
    problems = _evaluate(candidate, context)
    if any(code == "BELOW_MIN_VERSION" for code, _text in problems):
        raise ImageSelectError(
            "pinned image %s contradicts vllm_min_version: %s"
            % (candidate["image"], "; ".join(text for code, text in problems if code == "BELOW_MIN_VERSION")),
            [_rejection(candidate, problems, context)],
        )
    if problems and not wishes["force"]:
        raise ImageSelectError(
            "pinned image %s is refused: %s" % (candidate["image"], "; ".join(text for _code, text in problems)),
            [_rejection(candidate, problems, context)],
        )
    reasons = ["image %s was pinned%s." % (candidate["image"], " and passes every rule" if not problems else "")]
    if problems:
        context["warnings"].append(
            "pinned image %s breaks the rules and is used because force is true: %s"
            % (candidate["image"], "; ".join(text for _code, text in problems))
        )
    return _result("vllm", candidate["image"], candidate, context, reasons, [_rejection(candidate, problems, context)] if problems else [])


def _result(
    backend: str,
    image: str,
    candidate: Optional[Dict[str, Any]],
    context: Dict[str, Any],
    reasons: List[str],
    rejected: List[Dict[str, Any]],
    build: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    release = (candidate or {}).get("release") or {}
    if candidate and candidate.get("note"):
        context["warnings"].append("%s: %s" % (candidate["image"], candidate["note"]))
    return {
        "backend": backend,
        "image": image,
        "vllm_ascend_version": candidate["version"] if candidate else None,
        "vllm_version": release.get("vllm") if candidate else None,
        "cann": candidate["cann"] if candidate else (build or {}).get("cann"),
        "torch_npu": release.get("torch_npu") if candidate else (build or {}).get("torch_npu"),
        "chip_family": context["family"],
        "architecture": context["arch"],
        "pinned": bool(context["wishes"]["image"]),
        "forced": bool(context["wishes"]["image"] and context["wishes"]["force"]),
        "reasons": [context["family_reason"]] + reasons,
        "warnings": _unique(context["warnings"]),
        "rejected": rejected,
        "build": build,
    }


def _unique(items: List[str]) -> List[str]:
    """Drop repeated sentences (a warning may be raised by several candidates), keeping the first order."""
    result = []  # type: List[str]
    for item in items:
        if item not in result:
            result.append(item)
    return result


def _why_no_vllm(context: Dict[str, Any], evaluated: List[Tuple[Dict[str, Any], List[Tuple[str, str]]]]) -> List[str]:
    """Sentences saying why no vLLM image fits: the model, the hardware, the host stack, the wishes."""
    reasons = ["vLLM cannot serve it: %s." % text for _code, text in context["model_problems"]]
    if context["family"] is None:
        reasons.append("no vLLM image: the host's chip family is unknown.")
        return reasons
    if not evaluated:
        reasons.append(
            "no vLLM image: no vllm-ascend release publishes a %s image for %s chips (%s)."
            % (
                context["wishes"]["os"],
                context["family"],
                context["matrix"]["hardware"][context["family"]].get("unsupported") or "none in the compatibility data",
            )
        )
        return reasons
    if reasons:
        return reasons
    host_only = [(c, p) for c, p in evaluated if p and all(code in HOST_CODES for code, _text in p)]
    if host_only:
        candidate, problems = host_only[0]
        reasons.append(
            "the host's driver/NNAL cannot run any image that supports the model: the newest such image, %s, is "
            "rejected because %s (%d image(s) fail only on the host stack)."
            % (candidate["image"], "; ".join(text for _code, text in problems), len(host_only))
        )
        reasons.append(_host_advice(context, host_only))
        return reasons
    candidate, problems = evaluated[0]
    return ["no vLLM image fits: the newest, %s, is rejected because %s." % (candidate["image"], "; ".join(t for _c, t in problems))]


def _host_advice(context: Dict[str, Any], host_only: List[Tuple[Dict[str, Any], List[Tuple[str, str]]]]) -> str:
    """What to change on the host so that vLLM serves the model: the newest image's fix, and a smaller one.

    Each fix is ``_host_stack.stack_fix``: toolkit and NNAL of one release, so
    preflight accepts the host that follows it. The smaller fix keeps the
    host's CANN toolkit (NNAL and/or driver only) and names the newest image
    that it lets run.
    """
    host = context["host"]
    fixes = [(c, _host_fix(c, p, context)) for c, p in host_only]
    newest, fix = fixes[0]
    advice = "to serve it with vLLM, %s (then %s runs)" % (fix_sentence(fix or {}, host), newest["image"])
    smaller = next(((c, f) for c, f in fixes if f and "cann_version" not in f), None)
    if fix and "cann_version" in fix and smaller:
        advice += ", or keep the CANN toolkit and %s (then %s runs)" % (fix_sentence(smaller[1], host), smaller[0]["image"])
    return advice + "."


def image_select(
    profile: Dict[str, Any], host: Dict[str, Any], wishes: Optional[Dict[str, Any]] = None, matrix: Optional[Dict[str, Any]] = None
) -> Dict[str, Any]:
    """Choose backend and image for ``profile`` (npu.fleet.model_profile) on ``host`` (npu_facts).

    Rules, in order:

    1. ``wishes.image`` pins an image: it is checked like any candidate and
       used if it passes; a rejected pin raises ImageSelectError unless
       ``force`` (then used, the rejection kept in ``warnings``). A pin older
       than ``vllm_min_version`` is always refused.
    2. Otherwise (backend auto or vllm) the newest image of the host's chip
       family and wished OS that breaks no rule is chosen.
    3. With none, ``auto`` falls back to the Transformers backend, naming why
       (architecture, extra layers, hardware, host driver/NNAL); ``vllm``
       raises ImageSelectError.
    4. ``backend: transformers`` skips vLLM. The server image is named after
       the CANN base image for the host's CANN and returned with ``build``.

    ``matrix`` defaults to the shipped data (``load_matrix()``).
    """
    if not isinstance(profile, dict):
        raise ValueError("profile must be a dict (what npu.fleet.model_profile returns), got %s" % type(profile).__name__)
    if not isinstance(host, dict):
        raise ValueError(
            "host must be a dict of host facts (hostvars[host].npu or chip_family, driver_version, cann_version, "
            "nnal_version, arch), got %s" % type(host).__name__
        )
    matrix = matrix if matrix is not None else load_matrix()
    wishes = _wishes(wishes, matrix)
    family, family_reason = host_family(host, matrix)
    arch = _architecture(profile, matrix)
    context = {
        "wishes": wishes,
        "matrix": matrix,
        "host": host,
        "family": family,
        "family_reason": family_reason,
        "arch": arch,
        "warnings": [],
        "model_problems": _model_problems(profile, arch, matrix),
    }
    mismatch = stack_mismatch(host.get("cann_version"), host.get("nnal_version"))
    if mismatch:
        context["warnings"].append("preflight refuses this host (NNAL_CANN_MISMATCH): %s; %s" % (mismatch["message"], mismatch["fix"]))
    if wishes["image"] and wishes["backend"] != "transformers":
        return _pinned(context)
    if wishes["backend"] == "transformers":
        return _transformers(context, ["backend transformers was requested; vLLM images were not considered."], [])
    evaluated = [(c, _evaluate(c, context)) for c in list_candidates(matrix, family, wishes["os"])] if family else []
    accepted = [c for c, problems in evaluated if not problems]
    rejected = [_rejection(c, problems, context) for c, problems in evaluated if problems]
    if accepted:
        chosen = accepted[0]
        reasons = _chosen_reasons(chosen, context, len(accepted))
        return _result("vllm", chosen["image"], chosen, context, reasons, rejected)
    why = _why_no_vllm(context, evaluated)
    if wishes["backend"] == "vllm":
        raise ImageSelectError("backend vllm was requested but no vLLM image fits: %s" % " ".join(why), rejected)
    return _transformers(context, why, rejected)


def _chosen_reasons(chosen: Dict[str, Any], context: Dict[str, Any], count: int) -> List[str]:
    release = chosen["release"]
    row = context["matrix"]["architectures"].get(context["arch"]) or {}
    reasons = []
    if row and not row.get("unsupported") and not (chosen.get("architectures") and context["arch"] in chosen["architectures"]):
        reasons.append("%s %s." % (context["arch"], _arch_minimum(row, context["wishes"]["architecture_minimum"])[1]))
    elif chosen.get("architectures"):
        reasons.append("%s is listed as supported by the custom image %s (%s)." % (context["arch"], chosen["image"], chosen.get("source")))
    reasons.append(
        "selected %s, the newest of %d image(s) that pass every rule (vLLM %s, CANN %s, torch_npu %s)."
        % (chosen["image"], count, release.get("vllm") or "?", chosen["cann"], release.get("torch_npu") or "?")
    )
    return reasons


def _transformers(context: Dict[str, Any], why: List[str], rejected: List[Dict[str, Any]]) -> Dict[str, Any]:
    wishes = context["wishes"]
    build = transformers_build(context["host"], context["family"], context["matrix"], context["warnings"])
    image = build["image"]
    reasons = list(why)
    if wishes["image"]:
        image = wishes["image"]
        build = dict(build, image=image, tag=image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else "latest")
        reasons.append("the Transformers server image name %s was pinned." % image)
    reasons.append(
        "backend transformers: %s built FROM %s (CANN %s for %s chips, torch_npu %s)."
        % (image, build["base_image"], build["cann"], context["family"], build["torch_npu"] or "unknown")
    )
    return _result("transformers", image, None, context, reasons, rejected, build)


# Wishes a catalogue entry may set; the others come from the play (image_select role variables).
ENTRY_WISHES = ("backend", "image", "force", "vllm_min_version")


def image_selection(
    models: List[Dict[str, Any]],
    host: Dict[str, Any],
    defaults: Optional[Dict[str, Any]] = None,
    matrix: Optional[Dict[str, Any]] = None,
    host_name: str = "this host",
    keep_refused: bool = False,
) -> Dict[str, Any]:
    """``image_select`` for every entry of the validated catalogue on one host: model name -> choice.

    An entry's own wish wins over ``defaults`` (backend, vllm_min_version,
    os, architecture_minimum from the play). A refusal names the model and
    the host; with ``keep_refused`` it does not raise but is kept as the
    model's entry (:func:`refusal`), so every model of every host can be
    shown before the refused hosts stop.
    """
    matrix = matrix if matrix is not None else load_matrix()
    base = dict((key, value) for key, value in (defaults or {}).items() if value not in (None, ""))
    selection = {}
    for entry in models or []:
        wishes = dict(base)
        wishes.update((key, entry[key]) for key in ENTRY_WISHES if entry.get(key) not in (None, ""))
        if "profile" not in entry:
            raise ValueError("model %s has no profile; validate the catalogue with npu.fleet.model_catalogue first" % entry.get("name"))
        try:
            selection[entry["name"]] = image_select(entry["profile"], host, wishes, matrix)
        except ImageSelectError as exc:
            if keep_refused:
                selection[entry["name"]] = refusal(str(exc), exc.rejected)
                continue
            raise ImageSelectError("model %s on %s: %s" % (entry["name"], host_name, exc), exc.rejected) from None
        except ValueError as exc:
            raise ValueError("model %s on %s: %s" % (entry["name"], host_name, exc)) from None
    return selection


def refusal(message: str, rejected: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    """A model's entry when its wish is refused: no backend, no image, the reason in ``refused``."""
    return {"backend": None, "image": None, "refused": message, "reasons": [], "warnings": [], "rejected": rejected or []}


# --------------------------------------------------------------------------- what a person reads

SUMMARY_HOSTS = 5


def _hosts_text(hosts: List[str], limit: int) -> str:
    if len(hosts) <= limit:
        return ", ".join(hosts)
    return "%s and %d more" % (", ".join(hosts[:limit]), len(hosts) - limit)


SOURCE_MIN = 25  # a parenthesis at least this long is a source or detail, left to the per-host view


def _short(text: str) -> str:
    """A reason as the summary shows it: without long parentheses (sources, details) and only up to the first "; "."""
    kept = []  # type: List[str]
    depth, start = 0, 0
    for index, char in enumerate(text):
        if char == "(":
            if depth == 0:
                start = index
            depth += 1
        elif char == ")" and depth:
            depth -= 1
            if depth == 0 and index - start < SOURCE_MIN:
                kept.append(text[start : index + 1])
        elif depth == 0:
            kept.append(char)
    short = re.sub(r" +([,;:]|\.(?!\.))", r"\1", re.sub(r" {2,}", " ", "".join(kept))).strip()
    head, sep, _rest = short.partition("; ")
    return head + (" ..." if sep else "")


def _why(choice: Dict[str, Any]) -> str:
    """The one sentence that says why a model is not served by vLLM (the first reason after the chip family)."""
    if choice.get("backend") != "transformers":
        return ""
    reasons = choice.get("reasons") or []
    why = _short(str(reasons[1])) if len(reasons) > 1 else ""
    return why[:-1] if why.endswith(".") and not why.endswith("..") else why


def _outcome_key(choice: Dict[str, Any]) -> Tuple[str, str, str]:
    if choice.get("refused"):
        return ("refused", "", _short(str(choice["refused"])))
    return (str(choice.get("backend")), str(choice.get("image")), _why(choice))


def selection_summary(outcomes: Dict[str, Dict[str, Any]], limit: int = SUMMARY_HOSTS) -> List[str]:
    """One line per model over the whole play: which backend and image on which hosts, or why it is refused.

    ``outcomes`` is host name -> that host's :func:`image_selection` result
    (with ``keep_refused``), in inventory order. Hosts that share a model's
    backend, image and reason share one clause; a model served by the
    Transformers fallback says why vLLM is not used; warnings are counted.
    Reasons are shortened (:func:`_short`: no sources, first clause only);
    the per-host reasons and warnings are the detailed view. At most
    ``limit`` host names are written per clause.
    """
    if not isinstance(outcomes, dict):
        raise ValueError("outcomes must be a dict of host name to that host's image selection, got %s" % type(outcomes).__name__)
    per_model = {}  # type: Dict[str, Dict[Tuple[str, str, str], Dict[str, Any]]]
    for host, selection in outcomes.items():
        if not isinstance(selection, dict):
            raise ValueError("outcomes[%s] must be a dict of model name to its selection, got %s" % (host, type(selection).__name__))
        for model, choice in selection.items():
            if not isinstance(choice, dict):
                raise ValueError("outcomes[%s][%s] must be a selection (a dict), got %s" % (host, model, type(choice).__name__))
            group = per_model.setdefault(str(model), {}).setdefault(_outcome_key(choice), {"hosts": [], "warnings": 0})
            group["hosts"].append(str(host))
            group["warnings"] += len(choice.get("warnings") or [])
    if not per_model:
        return ["no models to select images for"]
    lines = []
    for model, groups in per_model.items():
        clauses = []
        for (backend, image, why), group in groups.items():
            hosts = _hosts_text(group["hosts"], limit)
            if backend == "refused":
                clauses.append("REFUSED on %s: %s" % (hosts, why))
                continue
            clause = "%s %s on %s" % (backend, image, hosts)
            if why:
                clause += " (%s)" % why
            if group["warnings"]:
                clause += " [%d warning(s), -v shows them]" % group["warnings"]
            clauses.append(clause)
        lines.append("%s: %s" % (model, "; ".join(clauses)))
    return lines
