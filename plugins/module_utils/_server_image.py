# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""Which Transformers server images a host needs, and under which tag.

The server is built on each host FROM the CANN base the image selection
chose. The tag is a content hash of the server's files and the build
arguments, so a host that already has the image for this content builds
nothing and receives no build context (copying it file by file cost 12 s
of a 31 s no-change re-run).
"""

import hashlib
import os

__all__ = ["ServerImageError", "server_builds", "tree_digest"]

_SKIPPED_DIRS = ("__pycache__",)
_SKIPPED_SUFFIXES = (".pyc",)


def tree_digest(root):
    """SHA-256 over the relative paths and contents of the files under ``root``, in sorted order.

    Build byproducts (``__pycache__``, ``*.pyc``) are left out: running the
    tests must not change the image tag. A missing directory is an OSError.
    """
    if not os.path.isdir(root):
        raise FileNotFoundError(2, "not a directory", root)
    digest = hashlib.sha256()
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(name for name in subdirs if name not in _SKIPPED_DIRS)
        for name in sorted(files):
            if name.endswith(_SKIPPED_SUFFIXES):
                continue
            path = os.path.join(directory, name)
            digest.update(os.path.relpath(path, root).encode("utf-8") + b"\0")
            with open(path, "rb") as handle:
                digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()


class ServerImageError(ValueError):
    """A Transformers placement without the build facts image selection should have given it."""


def _repository(image):
    """``registry:5000/npu-fleet/transformers-server:tag`` -> the part before the tag."""
    name, unused, last = image.rpartition("/")
    if ":" in last:
        last = last.rpartition(":")[0]
    return (name + "/" + last) if name else last


def server_builds(placements, host, selection, content, base_override="", present=None):
    """Builds for the Transformers replicas of ``host``.

    ``selection`` is the host's ``npu_image_selection`` (model -> choice with
    ``build``: image, base_image, torch, torch_npu); ``content`` the digest
    of the server's files (``tree_digest``); ``base_override`` replaces every base
    (test rigs, private registries); ``present`` names images the host has.
    Returns ``images`` (model -> tag to run), ``builds`` (one per distinct
    tag: image, base, torch, torch_npu, present) and ``missing`` (whether any
    build must run, so the build context must be on the host).
    """
    fingerprint = str(content)
    have = set(present or [])
    images, builds = {}, {}
    for placement in placements or []:
        if placement.get("host") != host or placement.get("backend") != "transformers":
            continue
        model = placement["model"]
        build = ((selection or {}).get(model) or {}).get("build") or {}
        if not build.get("image") or not (base_override or build.get("base_image")):
            raise ServerImageError(
                "%s: model %s runs on the Transformers server but its image selection has no build "
                "image/base; run the image_select stage (npu.fleet.image_select) before serve, or set "
                "serve_transformers_base_image" % (host, model)
            )
        base = base_override or build["base_image"]
        torch, torch_npu = build.get("torch") or "", build.get("torch_npu") or ""
        digest = hashlib.sha1((fingerprint + base + torch + torch_npu).encode("utf-8")).hexdigest()[:12]
        tag = "%s:%s" % (_repository(build["image"]), digest)
        images[model] = tag
        builds[tag] = {"image": tag, "base": base, "torch": torch, "torch_npu": torch_npu, "present": tag in have}
    ordered = [builds[tag] for tag in sorted(builds)]
    return {"images": images, "builds": ordered, "missing": any(not build["present"] for build in ordered)}
