# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""One rule set for a host's CANN toolkit, its NNAL and the images it can run.

Preflight (NNAL_CANN_MISMATCH) and image selection (NNAL_OLDER, the Transformers
base) both decide with these functions, so the advice one of them gives is a
host the other accepts. What the sources say:

* Where torch_npu runs, CANN, NNAL and torch_npu are one set of one release:
  vllm-ascend docs/source/installation.md @ 182b75ea lists "CANN == 9.1.0",
  "NNAL == 9.1.0 - Required for libatb.so" and says "Treat vLLM Ascend, vLLM,
  PyTorch, TorchNPU, CANN ... as one compatibility set"; Ascend/pytorch
  COMPATIBILITY.en.md @ b48e6481 pairs every torch_npu with one CANN.
* An image carries its own CANN and NNAL of one release: installation.md
  @ 182b75ea "The CANN prebuilt image includes NNAL ... No additional
  installation is required"; the quay.io/ascend/cann Dockerfiles install
  toolkit, kernels and NNAL of one version and source both set_env.sh
  (Ascend/cann-container-image cann/9.1.0-910b-ubuntu22.04-py3.12/Dockerfile
  @ 5def6282).
* The documented ``docker run`` (quick_start.md @ 182b75ea) mounts only the
  driver (lib64, version.info), dcmi, npu-smi and /etc/ascend_install.info;
  npu.fleet's container spec (_replica) mounts the same plus the toolkit's
  fwkacllib, never NNAL. The host's NNAL reaches a container only when the
  host's /usr/local/Ascend (or its set_env.sh) is brought in by hand - the
  field report's Eva-4B-V2, whose older host ATB broke the image's torch_npu
  with ``libatb.so: undefined symbol`` (vllm-ascend issue #750).

The rules:

1. Host: NNAL and the CANN toolkit are of one release (the first three fields,
   ``8.5.0.B110`` is ``8.5.0``). Anything that sources the host's set_env.sh
   gets both, so preflight refuses a mismatch (NNAL_CANN_MISMATCH).
2. Image: a host NNAL older than the image's CANN rejects the image (it fails
   exactly when it reaches the container, which npu.fleet cannot see). A host
   without NNAL, or with the same or a newer release, passes: the documented
   rule is equality where ATB runs, but the failure seen was an older host
   NNAL, and rule 1 already keeps a host's NNAL at its own toolkit's release.
3. Advice: to run an image on CANN ``c`` the host needs the toolkit and NNAL of
   one release ``L`` = the newer of its own CANN and ``c`` (and a driver the
   image's CANN supports). Rule 1 holds because both are ``L``, rule 2 because
   ``L`` is not older than ``c``. Advice that moves NNAL alone past the CANN
   toolkit breaks rule 1 and is never given.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Optional

from ansible_collections.npu.fleet.plugins.module_utils._ascend_versions import AscendVersionError, compare_versions

__all__ = [
    "fix_sentence",
    "nnal_older",
    "older",
    "release_line",
    "stack_fix",
    "stack_mismatch",
]

_PRE_RELEASE = re.compile(r"^(\d+\.\d+\.(?:\d+|rc\d+|t\d+)[.-](?:alpha|beta)\.?\d*)", re.IGNORECASE)
TOOLKIT = "Ascend-cann-toolkit"
NNAL = "Ascend-cann-nnal"


def release_line(version: Any) -> str:
    """The release a CANN/NNAL version belongs to: '8.5.0' and '8.5.0.B110' -> '8.5.0', '8.3.rc2' -> '8.3.RC2'.

    Builds of one release differ only after the third field; a pre-release
    stays whole ('9.1.0-beta.1', the 310P images' CANN, is not '9.1.0').
    """
    text = str(version).strip()
    match = _PRE_RELEASE.match(text)
    line = match.group(1) if match else ".".join(text.split(".")[:3])
    return line.upper().replace("ALPHA", "alpha").replace("BETA", "beta")


def older(left: Optional[str], right: Optional[str]) -> Optional[bool]:
    """Is Ascend version ``left`` older than ``right``; None when either is missing or unreadable."""
    if not left or not right:
        return None
    try:
        return compare_versions(str(left), str(right)) < 0
    except AscendVersionError:
        return None


def nnal_older(nnal: Optional[str], image_cann: str) -> Optional[bool]:
    """Rule 2: does the host NNAL's release come before the image's CANN (None: no NNAL or unreadable)."""
    return older(release_line(nnal), image_cann) if nnal else None


def stack_mismatch(cann: Optional[str], nnal: Optional[str]) -> Optional[Dict[str, str]]:
    """Rule 1: None when CANN and NNAL are of one release (or either is missing), else what is wrong and the fix.

    The fix names both ways to one release; neither leaves NNAL ahead of the toolkit.
    """
    if not cann or not nnal or release_line(cann) == release_line(nnal):
        return None
    try:
        order = compare_versions(str(nnal), str(cann))
    except AscendVersionError:
        order = None
    relation = {-1: "older than", 1: "newer than"}.get(order, "a different release from")
    cann_line, nnal_line = release_line(cann), release_line(nnal)
    return {
        "relation": relation,
        "message": "NNAL %s is %s CANN %s: ATB will fail with `libatb.so: undefined symbol`" % (nnal, relation, cann),
        "fix": "make NNAL and the CANN toolkit one release: install %s %s to match the toolkit, or %s (with its kernels) "
        "%s together with %s %s; image selection then accepts every image whose CANN is not newer than that release"
        % (NNAL, cann_line, TOOLKIT, nnal_line, NNAL, nnal_line),
    }


def stack_fix(host: Dict[str, Any], image_cann: str, min_driver: Optional[str] = None) -> Dict[str, str]:
    """Rule 3: the host versions to install so that an image on ``image_cann`` runs there; {} when none.

    Keys are the host facts they replace (``cann_version``, ``nnal_version``,
    ``driver_version``), so applying the fix is ``dict(host, **fix)``; NNAL is
    named whenever the toolkit is, since the two are installed together.
    """
    fix = {}  # type: Dict[str, str]
    if older(host.get("driver_version"), min_driver):
        fix["driver_version"] = str(min_driver)
    cann, nnal = host.get("cann_version"), host.get("nnal_version")
    if nnal_older(nnal, image_cann) or stack_mismatch(cann, nnal):
        target = release_line(cann) if cann and not older(release_line(cann), image_cann) else image_cann
        fix["nnal_version"] = target
        if not cann or release_line(cann) != release_line(target):
            fix["cann_version"] = target
    return fix


def fix_sentence(fix: Dict[str, str], host: Dict[str, Any]) -> str:
    """What to install, in words and in install order (driver first), for a ``stack_fix`` result."""
    parts = []
    if "driver_version" in fix:
        parts.append("upgrade the driver (Ascend HDK) to %s or newer" % fix["driver_version"])
    if "cann_version" in fix:
        parts.append(
            "install %s (with its kernels) and %s %s together (one release, as preflight requires: NNAL_CANN_MISMATCH)"
            % (TOOLKIT, NNAL, fix["cann_version"])
        )
    elif "nnal_version" in fix:
        parts.append("install %s %s, the release of the host's CANN %s" % (NNAL, fix["nnal_version"], host.get("cann_version")))
    return ", then ".join(parts) if parts else "nothing to change on the host"
