"""The one catalogue schema: every field, its coercion, and one clear error per mistake."""

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._catalogue import (
    DEFAULT_MODEL_ROOT,
    FIELDS,
    SERVE_FIELDS,
    SOURCE_FIELDS,
    SOURCE_TYPE_FIELDS,
    STAGES,
    CatalogueError,
    catalogue_warnings,
    controller_path_of,
    default_of,
    fields_read_by,
    host_path_of,
    profile_location,
    source_of,
    validate_catalogue,
    with_host_paths,
)


def test_every_field_names_its_readers_and_has_an_example_that_validates():
    for field in FIELDS:
        assert field.stages and set(field.stages) <= set(STAGES), field.name
        assert field.description.endswith("."), field.name
        entry = {"name": "m", "path": "/data/m"}
        entry[field.name] = field.example
        if field.name == "force":
            entry["image"] = "quay.io/ascend/vllm-ascend:v0.15.0rc1"
        if field.name == "source":  # the example is a hub source, which has no controller path
            del entry["path"]
        validate_catalogue([entry])
    assert [field.name for field in SERVE_FIELDS] == ["extra_args", "env", "dtype", "shm_size"]
    for field in SOURCE_FIELDS:
        assert field.stages and set(field.stages) <= set(STAGES), field.name
        assert field.description.endswith("."), field.name
        kind = field.example if field.name == "type" else next(kind for kind, keys in SOURCE_TYPE_FIELDS.items() if field.name in keys)
        source = {"type": kind, field.name: field.example}
        if kind == "hub":
            source = dict({"repo": "Qwen/Qwen3-8B", "revision": "0" * 40}, **source)
        validate_catalogue([{"name": "m", "source": source}])


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


# --------------------------------------------------------------------------- source

SHA = "0123456789abcdef0123456789abcdef01234567"


def hub(**fields):
    source = {"type": "hub", "repo": "Qwen/Qwen3-8B", "revision": SHA}
    source.update(fields)
    return source


def test_entries_without_source_keep_working_as_before(tmp_path):
    """path / host_path only: source host, profiled on the controller when path is there, else on profile_host."""
    (there, elsewhere, pinned) = validate_catalogue(
        [
            {"name": "a", "path": str(tmp_path)},
            {"name": "b", "path": "/not/on/this/controller", "host_path": "/data/models/b"},
            {"name": "c", "path": "/data/models/c", "profile_host": "storage01"},
        ]
    )
    assert "source" not in there and source_of(there) == {"type": "host"}
    assert profile_location(there) == {"where": "controller", "path": str(tmp_path)}
    assert profile_location(elsewhere) == {"where": "host", "host": None, "path": "/data/models/b"}
    assert profile_location(pinned) == {"where": "host", "host": "storage01", "path": "/data/models/c"}
    assert host_path_of(there) == str(tmp_path) and host_path_of(elsewhere) == "/data/models/b"
    assert with_host_paths([there, elsewhere]) == [there, elsewhere]


def test_a_host_source_may_give_only_the_directory_on_the_hosts():
    (entry,) = validate_catalogue([{"name": "m", "host_path": "/data/model/m", "source": {"type": "host"}}])
    assert profile_location(entry) == {"where": "host", "host": None, "path": "/data/model/m"}
    assert profile_location(dict(entry, profile={"architecture": "x"})) == {"where": "given"}


def test_controller_source_path_and_host_directory():
    first, second = validate_catalogue(
        [
            {"name": "qwen3-8b", "source": {"type": "controller", "path": "/srv/models/Qwen3-8B"}},
            {"name": "glm", "path": "/srv/models/glm", "source": {"type": "controller"}, "host_path": "/nvme/glm"},
        ]
    )
    assert controller_path_of(first) == "/srv/models/Qwen3-8B" and controller_path_of(second) == "/srv/models/glm"
    assert host_path_of(first) == DEFAULT_MODEL_ROOT + "/qwen3-8b" == "/data/models/qwen3-8b"
    assert host_path_of(first, "/data/model/") == "/data/model/qwen3-8b"
    assert host_path_of(second, "/elsewhere") == "/nvme/glm"
    assert profile_location(first) == {"where": "controller", "path": "/srv/models/Qwen3-8B"}
    assert with_host_paths([first, second], "/data/model") == [dict(first, host_path="/data/model/qwen3-8b"), second]
    assert "host_path" not in first  # the input is not modified


def test_hub_source_defaults_and_the_profile_comes_from_the_hub():
    (entry,) = validate_catalogue([{"name": "m", "source": hub(endpoint="https://hf-mirror.com", allow_patterns=["*.json"])}])
    assert entry["source"] == hub(endpoint="https://hf-mirror.com", allow_patterns=["*.json"])  # nothing added
    full = source_of(entry)
    assert full["hub"] == "huggingface" and full["token_var"] == "npu_fleet_hub_token"
    assert profile_location(entry) == {"where": "hub", "source": full}
    assert controller_path_of(entry) is None
    assert catalogue_warnings([entry]) == []


def test_a_branch_revision_is_accepted_with_a_warning():
    models = validate_catalogue([{"name": "ok", "source": hub()}, {"name": "moving", "source": hub(hub="modelscope", revision="master")}])
    (warning,) = catalogue_warnings(models)
    assert warning.startswith("npu_fleet_models[1] (moving): source.revision 'master' is a branch or tag name, not a commit")
    assert "Pin the 40-character commit sha" in warning


def test_model_root_must_be_absolute():
    (entry,) = validate_catalogue([{"name": "m", "source": hub()}])
    with pytest.raises(CatalogueError, match=r"npu_fleet_model_root must be an absolute path on the NPU hosts, got 'models'"):
        with_host_paths([entry], "models")


SECRET = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


@pytest.mark.parametrize(
    "entry, fragments",
    [
        ({"source": "hub"}, ["(m): source is a mapping: write source: {type: hub}"]),
        ({"source": ["hub"]}, ["(m): source must be a mapping such as {type: hub", "got list"]),
        ({"source": {"type": "s3"}}, ["(m): source: type must be one of host, controller, hub, got 's3'"]),
        ({"source": {"kind": "hub"}}, ["(m): source: unknown field(s) kind", "allowed: type, path, hub, repo"]),
        ({"source": {"type": "hub", "revision": SHA}}, ["(m): source: type hub needs repo", "Qwen/Qwen3-8B"]),
        ({"source": {"type": "hub", "repo": "Qwen/Qwen3-8B"}}, ["(m): source: type hub needs revision", "40-character sha"]),
        ({"source": hub(hub="civitai")}, ["(m): source: hub must be one of huggingface, modelscope, got 'civitai'"]),
        ({"source": hub(repo="https://huggingface.co/Qwen/Qwen3-8B")}, ["source: repo is the repository id", "source.endpoint"]),
        ({"source": hub(repo="Qwen/Qwen3/8B")}, ["source: repo 'Qwen/Qwen3/8B' is not a repository id", "owner/name"]),
        ({"source": hub(revision="main branch")}, ["source: revision 'main branch' is not a commit, branch or tag name"]),
        ({"source": hub(endpoint="hf-mirror.com")}, ["source: endpoint 'hf-mirror.com' is not an http(s) address"]),
        (
            {"source": hub(endpoint="https://hf-mirror.com/?x=1")},
            ["source: endpoint 'https://hf-mirror.com/?x=1' is not an http(s) address"],
        ),
        ({"source": hub(hub="modelscope", repo="qwen3")}, ["source: repo 'qwen3' is not a ModelScope repository id", "owner/name"]),
        ({"source": hub(allow_patterns=[])}, ["source: allow_patterns must list glob patterns", "remove it to get the default"]),
        ({"source": hub(allow_patterns="*.json")}, ["source: allow_patterns must be a list of strings"]),
        ({"source": {"type": "controller"}}, ["(m): source type controller needs source.path"]),
        ({"path": "/a", "source": {"type": "controller", "path": "/b"}}, ["source.path '/b' and path '/a' differ"]),
        ({"source": {"type": "controller", "path": "/b", "repo": "Qwen/Qwen3-8B"}}, ["source.repo applies to type hub, not controller"]),
        ({"source": {"type": "hub", "path": "/b"}}, ["source.path applies to type controller, not hub"]),
        ({"source": {"type": "host", "revision": SHA}}, ["source.revision applies to type hub, not host; remove it or set type: hub"]),
        ({"path": "/srv/m", "source": hub()}, ["(m): path is a directory on the controller, and a hub source has none", "host_path"]),
        ({"source": hub(), "profile_host": "s1"}, ["profile_host applies to source type host", "from the hub"]),
        ({"source": {"type": "controller", "path": "/b"}, "profile_host": "s1"}, ["profiled on the controller, so remove profile_host"]),
        ({"source": {"type": "host"}}, ["(m): give 'profile'", "or 'host_path'"]),
    ],
)
def test_each_source_mistake_gets_one_message(entry, fragments):
    with pytest.raises(CatalogueError) as error:
        validate_catalogue([dict({"name": "m"}, **entry)])
    for fragment in fragments:
        assert fragment in str(error.value)


def test_a_name_that_is_no_directory_name_needs_host_path():
    models = [{"name": "Qwen/Qwen3-8B", "source": hub()}]
    with pytest.raises(CatalogueError, match=r"'Qwen/Qwen3-8B' is not a plain directory name .*; set host_path"):
        validate_catalogue(models)
    (entry,) = validate_catalogue([dict(models[0], host_path="/data/models/qwen3-8b")])
    assert host_path_of(entry, "/x") == "/data/models/qwen3-8b"


@pytest.mark.parametrize(
    "second",
    [
        {"name": "b", "host_path": "/data/models/a"},
        {"name": "b", "path": "/data/models/a/sub"},
        {"name": "b", "source": {"type": "controller", "path": "/srv/b"}, "host_path": "/data/models"},
    ],
)
def test_a_directory_a_source_writes_is_nobody_elses(second):
    first = {"name": "a", "source": hub(), "host_path": "/data/models/a"}
    with pytest.raises(CatalogueError) as error:
        validate_catalogue([first, second])
    assert str(error.value).startswith("npu_fleet_models[0] (a) and npu_fleet_models[1] (b) share the host directory /data/models")
    assert "give each its own host_path" in str(error.value)


def test_host_sources_may_share_a_directory():
    """Two entries serving one checkpoint (say with different context lengths) only read it."""
    models = [{"name": "a", "path": "/data/models/q"}, {"name": "b", "host_path": "/data/models/q", "source": {"type": "host"}}]
    assert len(validate_catalogue(models)) == 2


@pytest.mark.parametrize(
    "source, says",
    [
        (hub(token=SECRET), "source.token: a token never goes in the catalogue"),
        (hub(hf_token=SECRET), "source.hf_token: a token never goes in the catalogue"),
        (hub(password=SECRET), "source.password: a token never goes in the catalogue"),
        (hub(token_var=SECRET), "source: token_var looks like a Hugging Face token itself"),
        (hub(token_var="4f1c-" + SECRET), "source: token_var must be the name of the variable that holds the token"),
        (hub(endpoint="https://user:%s@hf-mirror.com" % SECRET), "source: endpoint carries credentials"),
        (hub(endpoint="https://hf-mirror.com/?token=%s" % SECRET), "source: endpoint carries credentials"),
    ],
)
def test_a_token_in_the_catalogue_is_refused_without_repeating_it(source, says):
    with pytest.raises(CatalogueError) as error:
        validate_catalogue([{"name": "m", "source": source}])
    assert says in str(error.value)
    assert SECRET not in str(error.value)


def test_token_var_names_the_variable():
    (entry,) = validate_catalogue([{"name": "m", "source": hub(token_var="vault_hf_token")}])
    assert source_of(entry)["token_var"] == "vault_hf_token"
