"""Which Transformers server images a host builds: tag by content, nothing when it has them; the Dockerfile's guard."""

import os
import stat
import subprocess

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._image_select import image_selection
from ansible_collections.npu.fleet.plugins.module_utils._server_image import ServerImageError, server_builds, tree_digest
from builders import field_report_host, fixture_profile
from conftest import REPO_ROOT

DOCKERFILE = os.path.join(REPO_ROOT, "roles", "serve", "files", "transformers_server", "Dockerfile")
# The field report's host (see test__host_stack.py): 8 x 910B4, NPUs 4-7 busy, CANN and NNAL 8.0.RC1.
FIELD_HOST = field_report_host()

SELECTION = {
    "tiny-mtp": {
        "backend": "transformers",
        "build": {
            "image": "npu-fleet/transformers-server:cann-8.5.0",
            "base_image": "quay.io/ascend/cann:8.5.0-910b-ubuntu22.04-py3.11",
            "torch": "",
            "torch_npu": "",
        },
    },
    "glm-ocr": {
        "backend": "transformers",
        "build": {
            "image": "registry.local:5000/npu-fleet/transformers-server:cann-8.0.rc1",
            "base_image": "ascend/cann:8.0.RC1",
            "torch": "2.1.0",
            "torch_npu": "2.1.0.post3",
        },
    },
}
PLACEMENTS = [
    {"model": "tiny-mtp", "replica": 0, "host": "a", "backend": "transformers"},
    {"model": "tiny-mtp", "replica": 1, "host": "a", "backend": "transformers"},
    {"model": "glm-ocr", "replica": 0, "host": "a", "backend": "transformers"},
    {"model": "qwen3-8b", "replica": 0, "host": "a", "backend": "vllm"},
    {"model": "glm-ocr", "replica": 1, "host": "b", "backend": "transformers"},
]


def test_one_build_per_content_and_base_with_the_registry_port_kept():
    result = server_builds(PLACEMENTS, "a", SELECTION, "c1c2")
    assert sorted(result["images"]) == ["glm-ocr", "tiny-mtp"]
    assert result["images"]["glm-ocr"].startswith("registry.local:5000/npu-fleet/transformers-server:")
    assert result["images"]["tiny-mtp"].startswith("npu-fleet/transformers-server:")
    assert len(result["builds"]) == 2 and result["missing"] is True
    glm = [build for build in result["builds"] if build["base"] == "ascend/cann:8.0.RC1"][0]
    assert glm["torch"] == "2.1.0" and glm["torch_npu"] == "2.1.0.post3"


def test_the_tag_follows_the_content_and_the_build_arguments():
    first = server_builds(PLACEMENTS, "a", SELECTION, "c1c2")["images"]
    assert server_builds(PLACEMENTS, "a", SELECTION, "c1c2")["images"] == first
    assert server_builds(PLACEMENTS, "a", SELECTION, "c1c3")["images"]["tiny-mtp"] != first["tiny-mtp"]
    assert server_builds(PLACEMENTS, "a", SELECTION, "c1c2", base_override="local/base:1")["images"]["tiny-mtp"] != first["tiny-mtp"]


def test_a_host_that_has_every_image_builds_nothing():
    images = server_builds(PLACEMENTS, "a", SELECTION, "c1")["images"]
    result = server_builds(PLACEMENTS, "a", SELECTION, "c1", present=list(images.values()) + ["other:1"])
    assert result["missing"] is False and all(build["present"] for build in result["builds"])
    assert server_builds(PLACEMENTS, "nowhere", SELECTION, "c1") == {"images": {}, "builds": [], "missing": False}


def test_a_transformers_placement_without_build_facts_names_the_model_and_the_fix():
    with pytest.raises(ServerImageError, match="b: model glm-ocr runs on the Transformers server.*image_select"):
        server_builds(PLACEMENTS, "b", {"glm-ocr": {"backend": "transformers"}}, "c1")


def test_tree_digest_follows_content_and_names_not_bytecode(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "app.py").write_text("print(1)\n")
    (tmp_path / "Dockerfile").write_text("FROM base\n")
    first = tree_digest(str(tmp_path))
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "pkg" / "app.pyc").write_bytes(b"\0")
    assert tree_digest(str(tmp_path)) == first
    (tmp_path / "pkg" / "app.py").write_text("print(2)\n")
    assert tree_digest(str(tmp_path)) != first
    (tmp_path / "pkg" / "app.py").write_text("print(1)\n")
    os.rename(tmp_path / "Dockerfile", tmp_path / "Containerfile")
    assert tree_digest(str(tmp_path)) != first
    with pytest.raises(OSError):
        tree_digest(str(tmp_path / "missing"))


# --------------------------------------------------------------------------- the field report's host


def test_field_host_builds_get_complete_build_arguments():
    models = [{"name": "eva-4b-v2", "profile": fixture_profile("jaman21__Qwen3-4B-Instruct")}]
    selection = image_selection(models, FIELD_HOST)
    placements = [{"model": "eva-4b-v2", "replica": 0, "host": "field", "backend": "transformers"}]
    builds = server_builds(placements, "field", selection, "c1")["builds"]
    assert [(b["base"], b["torch"], b["torch_npu"]) for b in builds] == [
        ("quay.io/ascend/cann:8.0.rc1-910b-ubuntu22.04-py3.8", "2.2.0", "2.2.0")
    ]


# --------------------------------------------------------------------------- the Dockerfile's torch step

# A stand-in python3: answers the Dockerfile's three questions from the environment and logs pip calls.
FAKE_PYTHON = """#!/bin/sh
case "$*" in
  *"import torch, transformers"*) exit "$FAKE_HAS_TORCH" ;;
  *"sys.version_info < (3, 9)"*) [ "$FAKE_MINOR" -ge 9 ] ;;
  *"python_version()"*) echo "3.$FAKE_MINOR.18" ;;
  *"-m pip install"*) echo "$*" >> "$FAKE_PIP_LOG" ;;
  *) echo "unexpected python3 call: $*" >&2; exit 99 ;;
esac
"""


def _torch_step():
    """The RUN instruction that installs torch, as /bin/sh -c receives it (continuation lines joined)."""
    with open(DOCKERFILE, "r", encoding="utf-8") as handle:
        text = handle.read().replace("\\\n", "")
    steps = [line[len("RUN ") :] for line in text.splitlines() if line.startswith("RUN ") and "TORCH_VERSION" in line]
    assert len(steps) == 1
    return steps[0]


def _run_step(tmp_path, torch="", torch_npu="", minor=11, has_torch=1):
    fake = tmp_path / "bin" / "python3"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text(FAKE_PYTHON)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "pip.log"
    env = {
        "PATH": "%s:/usr/bin:/bin" % fake.parent,
        "BASE_IMAGE": "quay.io/ascend/cann:8.0.rc1-910b-ubuntu22.04-py3.8",
        "TORCH_VERSION": torch,
        "TORCH_NPU_VERSION": torch_npu,
        "FAKE_MINOR": str(minor),
        "FAKE_HAS_TORCH": str(has_torch),
        "FAKE_PIP_LOG": str(log),
    }
    done = subprocess.run(["/bin/sh", "-c", _torch_step()], env=env, capture_output=True, text=True, timeout=30, check=False)
    return done, (log.read_text() if log.exists() else "")


def test_dockerfile_refuses_empty_build_arguments(tmp_path):
    done, pip = _run_step(tmp_path, torch="", torch_npu="2.2.0")
    assert done.returncode == 1 and pip == ""
    assert "the build args are empty (TORCH_VERSION='', TORCH_NPU_VERSION='2.2.0')" in done.stderr
    assert "npu_fleet_compat_overrides.torch_npu.pairs" in done.stderr and "serve_transformers_base_image" in done.stderr


def test_dockerfile_refuses_a_python_too_old_for_transformers(tmp_path):
    done, pip = _run_step(tmp_path, torch="2.2.0", torch_npu="2.2.0", minor=8)
    assert done.returncode == 1 and pip == ""
    assert "has Python 3.8.18, older than the 3.9 that transformers>=4.51 needs" in done.stderr


def test_dockerfile_installs_the_pair_or_uses_the_base(tmp_path):
    (tmp_path / "bare").mkdir()
    done, pip = _run_step(tmp_path / "bare", torch="2.2.0", torch_npu="2.2.0", minor=10)
    assert done.returncode == 0, done.stderr
    assert "--no-cache-dir torch==2.2.0 torch_npu==2.2.0 transformers>=4.51,<6" in pip
    (tmp_path / "vllm").mkdir()
    done, pip = _run_step(tmp_path / "vllm", has_torch=0)
    assert done.returncode == 0 and "come from the base image" in done.stdout and pip == ""
