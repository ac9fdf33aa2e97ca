"""The one catalogue schema: every field, its coercion, and one clear error per mistake."""

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._catalogue import (
    FIELDS,
    SERVE_FIELDS,
    STAGES,
    CatalogueError,
    default_of,
    fields_read_by,
    validate_catalogue,
)


def test_every_field_names_its_readers_and_has_an_example_that_validates():
    for field in FIELDS:
        assert field.stages and set(field.stages) <= set(STAGES), field.name
        assert field.description.endswith("."), field.name
        entry = {"name": "m", "path": "/data/m"}
        entry[field.name] = field.example
        if field.name == "force":
            entry["image"] = "quay.io/ascend/vllm-ascend:v0.15.0rc1"
        validate_catalogue([entry])
    assert [field.name for field in SERVE_FIELDS] == ["extra_args", "env", "dtype", "shm_size"]


def test_text_values_become_their_types_and_absent_fields_stay_absent():
    (entry,) = validate_catalogue(
        [
            {
                "name": " m ",
                "path": "/m",
                "replicas": "2",
                "share_chip": "yes",
                "port": "18080",
                "tensor_parallel_size": "1",
                "gpu_memory_utilization": "0.5",
                "hosts": ["a", 7],
            }
        ]
    )
    assert entry == {
        "name": "m",
        "path": "/m",
        "replicas": 2,
        "share_chip": True,
        "port": 18080,
        "tensor_parallel_size": 1,
        "gpu_memory_utilization": 0.5,
        "hosts": ["a", "7"],
    }
    assert default_of("replicas") == 1 and default_of("tensor_parallel_size") == "auto" and default_of("port") is None


def test_share_chip_is_auto_by_default_and_takes_true_false_or_auto():
    assert default_of("share_chip") == "auto"
    entries = validate_catalogue(
        [
            {"name": "a", "path": "/m", "share_chip": "AUTO"},
            {"name": "b", "path": "/m", "share_chip": "yes"},
            {"name": "c", "path": "/m", "share_chip": "auto", "tensor_parallel_size": 2},
        ]
    )
    assert [entry["share_chip"] for entry in entries] == ["auto", True, "auto"]  # auto with TP 2 simply never shares


def test_the_input_is_not_modified():
    models = [{"name": "m", "path": "/m", "replicas": "2"}]
    validate_catalogue(models)
    assert models == [{"name": "m", "path": "/m", "replicas": "2"}]


def test_the_fields_image_selection_documents_are_accepted():
    """The first wave's defect: force / vllm_min_version / profile_host made the planner refuse the catalogue."""
    (entry,) = validate_catalogue(
        [
            {
                "name": "m",
                "path": "/m",
                "image": "quay.io/ascend/vllm-ascend:v0.13.0",
                "force": True,
                "vllm_min_version": "v0.14.0rc1",
                "profile_host": "storage01",
            }
        ]
    )
    assert entry["force"] is True and entry["profile_host"] == "storage01"
    assert set(fields_read_by("image_select")) >= {"backend", "image", "force", "vllm_min_version"}


@pytest.mark.parametrize(
    "models, fragments",
    [
        (None, ["npu_fleet_models is not set", "docs/catalogue.md"]),
        ({"name": "m"}, ["must be a list"]),
        (["qwen"], ["npu_fleet_models[0] must be a mapping"]),
        ([{"path": "/m"}], ["npu_fleet_models[0]", "'name' is required"]),
        ([{"name": "m"}], ["(m)", "give 'profile'", "or 'path'"]),
        ([{"name": "m", "path": "/m", "replica": 2}], ["(m)", "unknown field(s) replica", "allowed:", "replicas"]),
        ([{"name": "m", "path": "/m", "replicas": -1}], ["(m): replicas", "integer 0..100000", "got -1"]),
        ([{"name": "m", "path": "/m", "tensor_parallel_size": 3}], ["tensor_parallel_size 3", "auto, 1, 2, 4, 8"]),
        ([{"name": "m", "path": "/m", "backend": "mindie"}], ["backend must be one of auto, vllm, transformers"]),
        ([{"name": "m", "path": "/m", "force": True}], ["force only applies to a pinned image"]),
        ([{"name": "m", "path": "/m", "vllm_min_version": "0.14"}], ["vllm_min_version", "not a vllm-ascend version"]),
        ([{"name": "m", "path": "/m", "host_path": "models/m"}], ["host_path must be an absolute path"]),
        ([{"name": "m", "path": "/m", "gpu_memory_utilization": 1.5}], ["gpu_memory_utilization", "(0, 1]"]),
        ([{"name": "m", "path": "/m", "min_model_len": 9000, "max_model_len": 8192}], ["min_model_len 9000 exceeds max_model_len 8192"]),
        ([{"name": "m", "path": "/m", "share_chip": True, "tensor_parallel_size": 2}], ["share_chip needs tensor_parallel_size 1"]),
        ([{"name": "m", "path": "/m", "share_chip": "maybe"}], ["share_chip must be true or false"]),
        ([{"name": "m", "path": "/m", "hosts": "npu-01"}], ["hosts must be a list of strings"]),
        ([{"name": "m", "path": "/m", "labels": {"zone": ["a"]}}], ["labels.zone must be a plain value"]),
        ([{"name": "m", "path": "/m", "serve": {"extra_args": ["--max-model-len=9"]}}], ["serve: extra_args", "--max-model-len"]),
        ([{"name": "m", "path": "/m", "serve": {"extra_arg": []}}], ["serve: unknown field(s) extra_arg"]),
        ([{"name": "m", "path": "/m", "serve": {"dtype": "int4"}}], ["serve: dtype must be one of"]),
        ([{"name": "m", "path": "/m", "profile": "qwen"}], ["profile must be the dict npu.fleet.model_profile returns"]),
        ([{"name": "m", "path": "/m"}, {"name": "m", "path": "/n"}], ["[0] and npu_fleet_models[1] are both named 'm'"]),
    ],
)
def test_each_mistake_gets_one_message_naming_the_entry_the_field_and_the_fix(models, fragments):
    with pytest.raises(CatalogueError) as error:
        validate_catalogue(models)
    for fragment in fragments:
        assert fragment in str(error.value)
