"""Which Transformers server images a host builds: tag by content, nothing when it has them."""

import pytest

import os

from ansible_collections.npu.fleet.plugins.module_utils._server_image import ServerImageError, server_builds, tree_digest

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
