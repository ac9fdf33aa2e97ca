# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: image_select
short_description: Choose the serving backend (vllm-ascend or Transformers) and the container image for a model on an Ascend host
version_added: 0.1.0
author:
  - npu.fleet engineers (@npu-fleet)
description:
  - Takes the profile returned by M(npu.fleet.model_profile) and the host's NPU facts (M(npu.fleet.npu_facts)) and picks
    the newest vllm-ascend image (C(quay.io/ascend/vllm-ascend)) that supports the model's architecture on the host's
    chip family and whose CANN the host's driver and NNAL can run.
  - Every image that is not used is listed in RV(_value.rejected) with the rules it breaks; RV(_value.reasons) says in
    sentences why the result is what it is.
  - Falls back to the Transformers backend when no vLLM image supports the architecture, when the weights carry layers
    (MTP) the model class cannot load, or when the host's driver or NNAL cannot run any image that does. The
    Transformers server image is named after the CANN base image for the host's CANN and returned with RV(_value.build);
    nothing is built or pulled.
  - An O(image) pin that the rules reject fails with the reason, unless O(force=true).
  - The compatibility data (releases, architectures, hardware, CANN driver needs, each row with its source) ships with
    the collection and is rendered in C(docs/compatibility.md); O(overrides) extends or overrides it from inventory.
positional: _input
options:
  _input:
    description: The C(profile) returned by M(npu.fleet.model_profile).
    type: dict
    required: true
  host:
    description:
      - Facts of the host the model will run on, usually C(hostvars[host].ansible_facts.npu) as set by M(npu.fleet.npu_facts).
      - Read keys are C(chips[].name), C(npu_smi_layout), C(driver_version), C(nnal_version), C(cann_version) and C(arch);
        C(chip_family) (V(a2), V(a3), V(310p), V(a5)) may be given instead of C(chips).
    type: dict
    required: true
  backend:
    description:
      - V(auto) prefers vLLM and falls back to Transformers with the reason.
      - V(vllm) fails when no vLLM image fits; V(transformers) does not consider vLLM.
    type: str
    choices: [auto, vllm, transformers]
    default: auto
  image:
    description:
      - Pin an image. A vllm-ascend image is checked like any candidate and refused with the reason when a rule rejects it,
        unless O(force=true). A bare tag (V(v0.14.0rc1)) means that release for the host's chip family and O(os); a
        vllm-ascend tag under another registry (a mirror) is checked as the published tag.
      - With O(backend=transformers), the name of the Transformers server image to use.
    type: str
  force:
    description: Use a pinned O(image) even when the rules reject it or the data does not know it; the rejection is kept in RV(_value.warnings).
    type: bool
    default: false
  vllm_min_version:
    description: Never choose a vllm-ascend image older than this (for example V(v0.14.0rc1)); a pin older than it is refused even with O(force).
    type: str
  os:
    description: Image OS variant; V(openeuler) selects the C(-openeuler) tags.
    type: str
    default: ubuntu
  architecture_minimum:
    description:
      - Which minimum release applies when the data has both a documented and a field-reported one for an architecture.
      - V(strict) uses the newer of the two (Qwen3 - documented v0.8.4rc2, field-reported v0.14.0rc1).
    type: str
    choices: [strict, documented]
    default: strict
  overrides:
    description:
      - The inventory's C(npu_fleet_compat_overrides), merged over the shipped compatibility data.
      - Mappings merge key by key (pin one field of one release); other values replace; C(custom_images) entries are added.
      - Examples - C(registry) for a private mirror of C(quay.io/ascend/vllm-ascend), C(custom_images) for an in-house
        image, C(releases.<version>.disabled), C(architectures.<class>) for a model tested in-house.
      - A malformed key fails with a message that names it.
    type: dict
    default: {}
notes:
  - The rules, the NNAL/CANN rule and its sources, and every table of the data are in C(docs/compatibility.md).
  - Runs on the controller; no host is contacted.
seealso:
  - module: npu.fleet.model_profile
  - module: npu.fleet.npu_facts
"""

EXAMPLES = r"""
---
- name: Choose backend and image for Qwen3-8B on each host
  ansible.builtin.set_fact:
    qwen3_selection: >-
      {{ qwen3.profile | npu.fleet.image_select(host=ansible_facts['npu'],
                                                 overrides=npu_fleet_compat_overrides | default({})) }}

- name: Say why
  ansible.builtin.debug:
    msg: "{{ qwen3_selection.reasons }}"

- name: Pin an image, and accept it even if the rules refuse it
  ansible.builtin.set_fact:
    glm_selection: >-
      {{ glm.profile | npu.fleet.image_select(host=ansible_facts['npu'], image='quay.io/ascend/vllm-ascend:v0.11.0rc0',
                                              force=true) }}

# Inventory: a private mirror and an in-house image
# npu_fleet_compat_overrides:
#   registry: registry.example.com:5000/ascend/vllm-ascend
#   custom_images:
#     - image: registry.example.com:5000/team/vllm-ascend:v0.14.0rc1-nanbeige
#       version: v0.14.0rc1
#       family: a2
#       cann: 8.5.0
#       architectures: [NanbeigeForCausalLM]
#       source: in-house build of v0.14.0rc1 with the Nanbeige model class, tested 2026-03
"""

RETURN = r"""
_value:
  description: The selection.
  type: dict
  contains:
    backend:
      description: V(vllm) or V(transformers).
      type: str
      sample: vllm
    image:
      description: Image to run (for V(transformers), the server image to build from RV(_value.build)).
      type: str
      sample: quay.io/ascend/vllm-ascend:v0.15.0rc1
    vllm_ascend_version:
      description: vllm-ascend release of the image; null for Transformers and for an unknown forced pin.
      type: str
      sample: v0.15.0rc1
    vllm_version:
      description: vLLM version the release is built on.
      type: str
      sample: v0.15.0
    cann:
      description: CANN inside the image (vLLM) or of the base image (Transformers).
      type: str
      sample: 8.5.0
    torch_npu:
      description: torch_npu inside the image, or the one to install for Transformers.
      type: str
      sample: 2.9.0
    chip_family:
      description: Chip family of the host (V(a2), V(a3), V(310p), V(a5)); null when unknown.
      type: str
      sample: a2
    architecture:
      description: Architecture class the decision was made for.
      type: str
      sample: Qwen3ForCausalLM
    pinned:
      description: Whether O(image) was given.
      type: bool
      sample: false
    forced:
      description: Whether a pin was given with O(force=true).
      type: bool
      sample: false
    reasons:
      description: Why this backend and image, in sentences, each with its source.
      type: list
      elements: str
      sample:
        - chip family a2 (Atlas A2 (Ascend 910B ...)) from chip(s) 910B4.
        - selected quay.io/ascend/vllm-ascend:v0.15.0rc1, the newest of 2 image(s) that pass every rule (vLLM v0.15.0, CANN 8.5.0, torch_npu 2.9.0).
    warnings:
      description: Things to know that did not change the choice (a forced rejection, an experimental image, an unreadable version).
      type: list
      elements: str
      sample: []
    rejected:
      description: Images of the host's chip family and OS that break a rule, newest first.
      type: list
      elements: dict
      contains:
        image:
          description: Image name.
          type: str
        version:
          description: vllm-ascend release.
          type: str
        codes:
          description:
            - Rules broken - V(BELOW_MIN_VERSION), V(FAMILY_MISMATCH), V(FAMILY_UNSUPPORTED), V(ARCH_UNKNOWN), V(ARCH_UNLISTED),
              V(ARCH_UNSUPPORTED), V(EXTRA_LAYERS), V(ARCH_TOO_OLD), V(ARCH_FAMILY_TOO_OLD), V(PLATFORM), V(DRIVER_TOO_OLD), V(NNAL_OLDER).
          type: list
          elements: str
        reason:
          description: The broken rules in sentences.
          type: str
        fix:
          description:
            - When only the host stack stands in the image's way, the host versions that make it run - C(driver_version),
              C(cann_version) and C(nnal_version) (the CANN toolkit and NNAL always of one release, which preflight also
              accepts); absent otherwise.
          type: dict
          sample: {"cann_version": "8.5.0", "nnal_version": "8.5.0"}
    build:
      description: For V(transformers), how the server image is made; null for V(vllm).
      type: dict
      contains:
        base_image:
          description: CANN base image for the host's CANN and chip family.
          type: str
          sample: quay.io/ascend/cann:8.5.0-910b-ubuntu22.04-py3.11
        image:
          description: Name of the server image built on it.
          type: str
          sample: npu-fleet/transformers-server:8.5.0-910b-ubuntu22.04-py3.11
        tag:
          description: Tag part of RV(_value.build.image).
          type: str
          sample: 8.5.0-910b-ubuntu22.04-py3.11
        cann:
          description: CANN release of the base image.
          type: str
          sample: 8.5.0
        chip:
          description: Chip token of the CANN image names (V(910b), V(a3), V(310p), V(950)).
          type: str
          sample: 910b
        os:
          description: OS token of the base image.
          type: str
          sample: ubuntu22.04
        python:
          description: Python of the base image.
          type: str
          sample: "3.11"
        torch:
          description: torch to install; null when no release pairs one with this CANN.
          type: str
          sample: 2.9.0
        torch_npu:
          description: torch_npu to install; null when unknown.
          type: str
          sample: 2.9.0
        torch_source:
          description:
            - Where the torch pair comes from - Ascend's table (Ascend/pytorch C(COMPATIBILITY.en.md)) for this CANN, else
              the newest vllm-ascend release built on it.
          type: str
          sample: "Ascend/pytorch COMPATIBILITY.en.md: torch_npu 2.9.0 for CANN 8.5.0"
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.npu.fleet.plugins.module_utils._compat_data import CompatDataError, load_matrix
from ansible_collections.npu.fleet.plugins.module_utils._image_select import ImageSelectError
from ansible_collections.npu.fleet.plugins.module_utils._image_select import image_select as _image_select


def _given(value):
    """None for values Ansible means as 'not given': omit (2.19 passes an _OmitType, older cores a placeholder string)."""
    if type(value).__name__ == "_OmitType" or (isinstance(value, str) and value.startswith("__omit_place_holder__")):
        return None
    return value


def image_select(
    profile,
    host=None,
    backend="auto",
    image=None,
    force=False,
    vllm_min_version=None,
    os="ubuntu",
    architecture_minimum="strict",
    overrides=None,
):
    """Select backend and image for a model profile on a host; see DOCUMENTATION."""
    if _given(host) is None:
        raise AnsibleFilterError("image_select: host is required (the host's npu facts, e.g. hostvars[host].ansible_facts.npu)")
    wishes = {
        "backend": _given(backend) or "auto",
        "image": _given(image),
        "force": False if _given(force) is None else force,
        "vllm_min_version": _given(vllm_min_version),
        "os": _given(os) or "ubuntu",
        "architecture_minimum": _given(architecture_minimum) or "strict",
    }
    try:
        matrix = load_matrix(_given(overrides) or None)
        return _image_select(profile, host, wishes, matrix)
    except (ImageSelectError, CompatDataError, ValueError, TypeError) as exc:
        raise AnsibleFilterError("image_select: %s" % exc) from exc


class FilterModule:
    """npu.fleet backend and image selection filters."""

    def filters(self):
        """Map filter names to functions."""
        return {"image_select": image_select}
