"""Issue #17, the bad day: bad input is refused with one message that says what is wrong, where and the fix,
and garbled tool output or model files never end in a Python traceback.

One test per case. Inputs are real: npu-smi captures from tests/unit/fixtures/npu-smi, model configs from
tests/unit/fixtures/models (their sources are in the SOURCES.md / SOURCE.md files there), cut or altered here.
Safetensors headers are written with the tensor names and shapes of the real Qwen3-8B config (the corpus has
configs, no weights). Planner hosts are built as npu_facts returns them (tests/unit/builders.py) or parsed
from a capture. A ``source`` without the fields it needs is here; every other source rule is in test__catalogue.py.
"""

import json
import os
import random
import struct

import pytest

from ansible_collections.npu.fleet.plugins.module_utils import _npu_smi as smi
from ansible_collections.npu.fleet.plugins.module_utils._catalogue import CatalogueError, validate_catalogue
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan import PlacementError, plan
from ansible_collections.npu.fleet.plugins.module_utils._image_select import ImageSelectError, image_selection
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import ModelProfileError, profile_model
from ansible_collections.npu.fleet.plugins.module_utils._replica import container_name
from ansible_collections.npu.fleet.plugins.module_utils._safetensors import read_safetensors_header
from builders import chip
from model_checkpoints import FIXTURES as MODEL_FIXTURES
from model_checkpoints import copy_fixture, fixture_dir, write_safetensors

HERE = os.path.dirname(os.path.abspath(__file__))
NPU_SMI = os.path.join(HERE, "..", "..", "fixtures", "npu-smi")
MODELS = sorted(name for name in os.listdir(MODEL_FIXTURES) if os.path.isfile(os.path.join(MODEL_FIXTURES, name, "config.json")))


def capture(name):
    with open(os.path.join(NPU_SMI, name), encoding="utf-8") as handle:
        return handle.read()


@pytest.fixture(scope="module")
def qwen8():
    return profile_model(fixture_dir("Qwen__Qwen3-8B"))


def a2_host(count=8, **fields):
    spec = {"chips": [chip(number) for number in range(count)]}
    spec.update(fields)
    return spec


def captured_host(name):
    """A planner host from a real capture that prints physical ids (A3): its chips have device nodes."""
    table = smi.parse_info(capture(name))
    assert all(item["device"] for item in table["chips"])
    return {"chips": table["chips"], "npu_smi_layout": table["layout"]}


def refused(models):
    with pytest.raises(CatalogueError) as error:
        validate_catalogue(models)
    return str(error.value)


# --------------------------------------------------------------------------- catalogue and role variables


@pytest.mark.parametrize(
    "field, value, says",
    [
        ("replicas", "two", "replicas must be an integer 0..100000, got 'two'"),
        ("hosts", "npu-01", "hosts must be a list of strings, got 'npu-01'"),
        ("spread", "maybe", "spread must be true or false, got 'maybe'"),
        ("labels", ["zone-a"], "labels must be a mapping of names to values, got ['zone-a']"),
        ("port", "http", "port must be an integer 1..65535, got 'http'"),
        ("max_model_len", 0, "max_model_len must be an integer >= 1, got 0"),
        ("gpu_memory_utilization", "most", "gpu_memory_utilization must be a number in (0, 1], got 'most'"),
    ],
)
def test_wrong_type_in_a_catalogue_entry(field, value, says):
    message = refused([{"name": "qwen3-8b", "path": "/m", field: value}])
    assert message == "npu_fleet_models[0] (qwen3-8b): " + says


@pytest.mark.parametrize(
    "field, guess",
    [("replica", "replicas"), ("tensor_paralel_size", "tensor_parallel_size"), ("max_len", "max_model_len")],
)
def test_unknown_catalogue_field_names_the_field_it_resembles(field, guess):
    message = refused([{"name": "qwen3-8b", "path": "/m", field: 2}])
    assert message.startswith(
        "npu_fleet_models[0] (qwen3-8b): unknown field(s) %s (did you mean %s?); allowed: name, path" % (field, guess)
    )


def test_unknown_field_without_a_likely_meaning_lists_what_is_allowed():
    message = refused([{"name": "qwen3-8b", "path": "/m", "colour": "blue"}])
    assert "unknown field(s) colour; allowed:" in message and "did you mean" not in message


@pytest.mark.parametrize(
    "source, says",
    [
        (
            {"type": "hub", "revision": "0" * 40},
            "source: type hub needs repo, the repository id such as Qwen/Qwen3-8B",
        ),
        (
            {"type": "hub", "repo": "Qwen/Qwen3-8B"},
            "source: type hub needs revision, the commit to download: pin the 40-character sha the hub shows under "
            "'Files and versions' (a branch name such as main is accepted, with a warning)",
        ),
        (
            {"type": "controller"},
            "source type controller needs source.path, the checkpoint directory on the controller (or the entry's path)",
        ),
        ({"type": "git"}, "source: type must be one of host, controller, hub, got 'git'"),
    ],
)
def test_a_source_without_the_fields_it_needs(source, says):
    message = refused([{"name": "qwen3-8b", "source": source}])
    assert message == "npu_fleet_models[0] (qwen3-8b): " + says


@pytest.mark.parametrize("replicas", [-1, "-2"])
def test_negative_replicas(replicas):
    assert "npu_fleet_models[0] (qwen3-8b): replicas must be an integer 0..100000" in refused(
        [{"name": "qwen3-8b", "path": "/m", "replicas": replicas}]
    )


def test_zero_replicas_keep_the_entry_without_running_it(qwen8):
    """Documented (docs/catalogue.md): 0 is not an error, it parks a model; nothing is placed or left over."""
    result = plan({"h1": a2_host()}, [{"name": "parked", "profile": qwen8, "replicas": 0}, {"name": "live", "profile": qwen8}])
    assert [p["model"] for p in result["placements"]] == ["live"] and result["unplaced"] == []


@pytest.mark.parametrize("size", [3, 6, 16, 0])
def test_tensor_parallel_size_no_ascend_server_offers(size):
    message = refused([{"name": "qwen3-8b", "path": "/m", "tensor_parallel_size": size}])
    assert (
        message == "npu_fleet_models[0] (qwen3-8b): tensor_parallel_size %d is not one of auto, 1, 2, 4, 8; set auto or one of those" % size
    )


@pytest.mark.parametrize(
    "capture_name, size, says",
    [
        # one A3 module: two dies (tests/unit/fixtures/npu-smi/info-a3-ascend910-2chip-24.1.rc3.7-01.txt)
        (
            "info-a3-ascend910-2chip-24.1.rc3.7-01.txt",
            4,
            "needs 4 chips in one interconnect group of one host, but the hosts it may use have at most 2 "
            "(a3host, a3 chips); set tensor_parallel_size to 1 or 2 or auto",
        ),
        (
            "info-a3-ascend910-4chip-25.2.0-02.txt",
            8,
            "needs 8 chips in one interconnect group of one host, but the hosts it may use have at most 4 "
            "(a3host, a3 chips); set tensor_parallel_size to 1 or 2 or 4 or auto",
        ),
    ],
)
def test_tensor_parallel_size_larger_than_any_host_can_give(qwen8, capture_name, size, says):
    with pytest.raises(PlacementError) as error:
        plan({"a3host": captured_host(capture_name)}, [{"name": "qwen3-8b", "profile": qwen8, "tensor_parallel_size": size}])
    assert str(error.value) == "npu_fleet_models[0] (qwen3-8b): tensor_parallel_size %d %s, or add a larger host" % (size, says)


def test_tensor_parallel_size_beyond_the_planned_hosts_is_unplaced_when_others_are_not_planned(qwen8):
    """With --limit a host outside this run may have the chips: not an input error, but the reason says it."""
    result = plan(
        {"a3host": captured_host("info-a3-ascend910-2chip-24.1.rc3.7-01.txt")},
        [{"name": "qwen3-8b", "profile": qwen8, "tensor_parallel_size": 4}],
        known_hosts=["a3host", "big-a3"],
    )
    assert result["placements"] == []
    assert result["unplaced"][0]["reason"] == (
        "tensor_parallel_size 4 needs 4 chips in one interconnect group of one host; the hosts it may use have at "
        "most 2 (a3host); set tensor_parallel_size: auto or a smaller size"
    )


@pytest.mark.parametrize(
    "spec, argument, says",
    [
        (
            a2_host(port_range="18999-18000"),
            {},
            "host h1: port_range (fleet_plan_port_range) '18999-18000' is reversed (low > high); write it as 18000-18999",
        ),
        (
            a2_host(port_range=[18999, 18000]),
            {},
            "host h1: port_range (fleet_plan_port_range) [18999, 18000] is reversed (low > high); write it as 18000-18999",
        ),
        (a2_host(), {"default_port_range": "19000-18000"}, "port_range '19000-18000' is reversed (low > high); write it as 18000-19000"),
    ],
)
def test_reversed_port_range(qwen8, spec, argument, says):
    with pytest.raises(PlacementError) as error:
        plan({"h1": spec}, [{"name": "qwen3-8b", "profile": qwen8}], **argument)
    assert str(error.value) == says


def test_overlapping_pinned_port_ranges_of_two_models():
    message = refused(
        [{"name": "qwen3-8b", "path": "/a", "port": 18080, "replicas": 3}, {"name": "llama", "path": "/b", "port": 18082, "replicas": 2}]
    )
    assert message == (
        "npu_fleet_models[0] (qwen3-8b) pins ports 18080-18082 and npu_fleet_models[1] (llama) pins ports 18082-18083 "
        "(port counts up per replica): they overlap, and two replicas on one host cannot listen on one port; change "
        "port of llama (or remove it to let the planner choose), or keep the two on different hosts with hosts or labels"
    )


def test_two_models_pinned_to_the_same_port():
    message = refused([{"name": "qwen3-8b", "path": "/a", "port": 18080}, {"name": "llama", "path": "/b", "port": 18080}])
    assert "npu_fleet_models[0] (qwen3-8b) pins port 18080 and npu_fleet_models[1] (llama) pins port 18080" in message


@pytest.mark.parametrize(
    "first, second",
    [
        ({"hosts": ["npu-01"]}, {"hosts": ["npu-02"]}),
        ({"labels": {"zone": "a"}}, {"labels": {"zone": "b"}}),
        ({"replicas": 0}, {}),
    ],
)
def test_the_same_pinned_port_is_fine_where_the_models_never_share_a_host(first, second):
    models = [
        dict({"name": "qwen3-8b", "path": "/a", "port": 18080}, **first),
        dict({"name": "llama", "path": "/b", "port": 18080}, **second),
    ]
    assert [entry["port"] for entry in validate_catalogue(models)] == [18080, 18080]


def test_two_models_pinned_to_the_same_gateway_port():
    message = refused([{"name": "qwen3-8b", "path": "/a", "gateway_port": 9080}, {"name": "llama", "path": "/b", "gateway_port": 9080}])
    assert message == (
        "npu_fleet_models[0] (qwen3-8b) and npu_fleet_models[1] (llama) both set gateway_port 9080, and every gateway "
        "serves every model; change gateway_port of one of them (or remove it to get a free one)"
    )


def test_two_running_replicas_pinned_to_the_same_chip_are_not_both_kept(qwen8):
    """fleet_plan_current (or labels) claiming one chip twice: the second replica moves, and the change says why."""
    current = [
        {"model": "qwen3-8b", "replica": 0, "host": "h1", "devices": ["/dev/davinci0"], "port": 18000},
        {"model": "llama", "replica": 0, "host": "h1", "devices": ["/dev/davinci0"], "port": 18001},
    ]
    result = plan({"h1": a2_host()}, [{"name": "qwen3-8b", "profile": qwen8}, {"name": "llama", "profile": qwen8}], current=current)
    devices = [device for placement in result["placements"] for device in placement["devices"]]
    assert len(devices) == len(set(devices)) == 2
    moved = [change for change in result["changes"] if change["action"] == "move"]
    assert [(change["model"], change["reason"]) for change in moved] == [
        ("qwen3-8b", "/dev/davinci0 on h1 is already given to another replica")
    ]


def test_catalogue_pin_to_an_image_the_host_cannot_run(qwen8):
    """A 300I Duo host (tests/unit/fixtures/npu-smi/info-310p3-duo-2chip-24.1.rc2-01.txt) and an A3 image pinned."""
    table = smi.parse_info(capture("info-310p3-duo-2chip-24.1.rc2-01.txt"))
    host = {
        "chips": table["chips"],
        "npu_smi_layout": table["layout"],
        "driver_version": "25.5.0",
        "cann_version": "9.1.0",
        "nnal_version": "9.1.0",
        "arch": "x86_64",
    }
    (entry,) = validate_catalogue([{"name": "qwen3-8b", "profile": qwen8, "image": "quay.io/ascend/vllm-ascend:v0.15.0rc1-a3"}])
    with pytest.raises(ImageSelectError) as error:
        image_selection([entry], host, host_name="duo-01")
    assert str(error.value) == (
        "model qwen3-8b on duo-01: pinned image quay.io/ascend/vllm-ascend:v0.15.0rc1-a3 is refused: the image is "
        "built for a3 chips, the host has 310p"
    )


@pytest.mark.parametrize("first, second", [("a/b", "a-b"), ("Qwen/Qwen3-8B", "Qwen-Qwen3-8B"), ("qwen 3", "qwen:3"), ("-x-", "x")])
def test_names_that_give_one_container_name_are_refused(first, second):
    assert container_name(first, 0) == container_name(second, 0)  # what the serve role would name both
    message = refused([{"name": first, "path": "/a"}, {"name": second, "path": "/b"}])
    assert message == (
        "npu_fleet_models[0] (%s) and npu_fleet_models[1] (%s) both get the container name %s-<replica> (characters "
        "Docker refuses in a name become '-'), so the second would replace the first on a host; rename one of them"
        % (first, second, container_name(first, 0)[: -len("-0")])
    )


def test_names_docker_keeps_apart_are_accepted():
    assert [entry["name"] for entry in validate_catalogue([{"name": "a_b", "path": "/a"}, {"name": "a-b", "path": "/b"}])] == ["a_b", "a-b"]


# --------------------------------------------------------------------------- model files


def config_with(tmp_path, name, **changes):
    path = copy_fixture(name, str(tmp_path / name))
    with open(os.path.join(path, "config.json"), encoding="utf-8") as handle:
        config = json.load(handle)
    target = config.get("text_config", config)
    target.update(changes)
    with open(os.path.join(path, "config.json"), "w", encoding="utf-8") as handle:
        json.dump(config, handle)
    return path


@pytest.mark.parametrize(
    "model, field, value",
    [
        ("Qwen__Qwen3-8B", "max_position_embeddings", 0),
        ("Qwen__Qwen3-8B", "max_position_embeddings", -40960),
        ("Qwen__Qwen3-VL-8B-Instruct", "max_position_embeddings", -1),
        ("openai__gpt-oss-20b", "max_position_embeddings", 0),
        ("Qwen__Qwen3-8B", "seq_length", -1),
    ],
)
def test_context_length_zero_or_negative(tmp_path, model, field, value):
    path = config_with(tmp_path, model, **{field: value})
    with pytest.raises(ModelProfileError) as error:
        profile_model(path)
    message = str(error.value)
    assert message.startswith(os.path.join(path, "config.json"))  # the model's directory and the file
    assert "field '%s' is %d, but a context length must be a positive number of tokens" % (field, value) in message


def test_rope_factor_zero_makes_no_context(tmp_path):
    path = config_with(
        tmp_path, "openai__gpt-oss-20b", rope_scaling={"rope_type": "yarn", "factor": 0, "original_max_position_embeddings": 4096}
    )
    with pytest.raises(ModelProfileError, match=r"config.json: rope_scaling factor is 0, but it multiplies the context length"):
        profile_model(path)


@pytest.mark.parametrize(
    "value, says",
    [
        (0, "field 'num_hidden_layers' must be a positive integer, found 0"),
        (-36, "field 'num_hidden_layers' must be a positive integer, found -36"),
        (1001, "field 'num_hidden_layers' is 1001, more layers than any served model has (at most 1000 accepted)"),
        (36000000, "field 'num_hidden_layers' is 36000000, more layers than any served model has"),
    ],
)
def test_absurd_layer_count(tmp_path, value, says):
    path = config_with(tmp_path, "Qwen__Qwen3-8B", num_hidden_layers=value)
    with pytest.raises(ModelProfileError) as error:
        profile_model(path)
    assert str(error.value).startswith("%s: %s" % (os.path.join(path, "config.json"), says))


# Tensors of the real Qwen3-8B (config: vocab 151936, hidden 4096, 36 layers).
QWEN3_8B_TENSORS = {"model.embed_tokens.weight": ("BF16", (151936, 4096)), "model.norm.weight": ("BF16", (4096,))}


def shard_with_shape(tmp_path, shape):
    """A Qwen3-8B shard whose embedding has ``shape`` in the header (data offsets of the real one)."""
    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / "qwen"))
    shard = os.path.join(path, "model.safetensors")
    write_safetensors(shard, QWEN3_8B_TENSORS, sparse=True)
    with open(shard, "rb") as handle:
        length = struct.unpack("<Q", handle.read(8))[0]
        header = json.loads(handle.read(length))
    data = os.path.getsize(shard) - 8 - length  # a hole: the sparse data section is never read
    header["model.embed_tokens.weight"]["shape"] = shape
    raw = json.dumps(header).encode()
    with open(shard, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        handle.truncate(8 + len(raw) + data)
    return path, shard


@pytest.mark.parametrize("shape", [[-151936, 4096], [-151936, -4096], [151936, 4096.5], [151936, "4096"]])
def test_negative_or_broken_tensor_shape_in_a_safetensors_header(tmp_path, shape):
    path, shard = shard_with_shape(tmp_path, shape)
    with pytest.raises(ModelProfileError) as error:
        profile_model(path)
    assert str(error.value) == (
        "%s: tensor 'model.embed_tokens.weight' has shape %r; every dimension must be a whole number >= 0 (a corrupt "
        "header: download the shard again)" % (shard, shape)
    )


def test_real_shape_still_reads(tmp_path):
    path, _shard = shard_with_shape(tmp_path, [151936, 4096])
    assert profile_model(path)["parameters"] == 151936 * 4096 + 4096


def test_safetensors_header_nested_deep_enough_to_overflow_the_parser(tmp_path):
    shard = str(tmp_path / "model-00001-of-00004.safetensors")
    raw = b'{"a":' * 200000 + b"1" + b"}" * 200000
    with open(shard, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
    with pytest.raises(ModelProfileError) as error:
        read_safetensors_header(shard)
    assert (
        str(error.value)
        == "%s: safetensors header is JSON nested too deeply to read (a corrupt or hostile file); download the shard again" % shard
    )


def test_config_nested_deep_enough_to_overflow_the_parser(tmp_path):
    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / "qwen"))
    with open(os.path.join(path, "config.json"), "w", encoding="utf-8") as handle:
        handle.write("[" * 200000 + "]" * 200000)
    with pytest.raises(ModelProfileError, match=r"config.json: JSON nested too deeply to read"):
        profile_model(path)


def test_safetensors_length_prefix_larger_than_the_file(tmp_path):
    path, shard = shard_with_shape(tmp_path, [151936, 4096])
    size = os.path.getsize(shard)
    with open(shard, "r+b") as handle:
        handle.write(struct.pack("<Q", size * 1000))
    with pytest.raises(ModelProfileError) as error:
        profile_model(path)
    assert str(error.value).startswith(
        "%s: truncated or corrupt safetensors header: it claims %d bytes, but the file holds %d after the 8-byte length"
        % (shard, size * 1000, size - 8)
    )


# Values a hand-edited or corrupt config puts where a number, a name or a block belongs.
BAD_VALUES = [None, -1, 0, 1.5, "x", [], [1, -1], {}, {"type": "yarn"}, True, 10**30]


@pytest.mark.parametrize("model", MODELS)
def test_garbled_model_config_never_ends_in_a_traceback(tmp_path, model):
    """Every field of every real config set to each bad value: a profile or ModelProfileError, nothing else."""
    path = copy_fixture(model, str(tmp_path / "m"))
    with open(os.path.join(path, "config.json"), encoding="utf-8") as handle:
        original = json.load(handle)
    rng = random.Random(model)
    for key in sorted(original):
        for value in rng.sample(BAD_VALUES, 3):
            with open(os.path.join(path, "config.json"), "w", encoding="utf-8") as handle:
                json.dump(dict(original, **{key: value}), handle)
            try:
                profile_model(path)
            except ModelProfileError:
                pass


# --------------------------------------------------------------------------- npu-smi output


@pytest.mark.parametrize(
    "name, npu, chip_id",
    [
        ("info-a3-ascend910-4chip-25.2.0-02.txt", 1, 0),  # A3: cut after the first die of NPU 1
        ("info-a3-ascend910-16chip-25.2.0-01.txt", 7, 0),
        ("info-310p3-duo-4card-8chip-24.1.0.1-01.txt", 2304, 0),  # Atlas 300I Duo: after the first chip of the last card
    ],
)
def test_info_cut_at_the_border_between_two_chips_of_one_npu(name, npu, chip_id):
    """Today's captures end an NPU with a "=" border; a "-" border promises another chip of the same NPU."""
    lines = capture(name).splitlines()
    chip_rows = [index for index, line in enumerate(lines) if line.startswith("| %d " % npu) and ("Ascend" in line or "310P" in line)]
    cut = chip_rows[0] + 2  # the "-" border after the NPU's first chip
    assert "=" not in lines[cut] and lines[cut].startswith("+-")
    with pytest.raises(smi.NpuSmiParseError) as error:
        smi.parse_info("\n".join(lines[: cut + 1]) + "\n")
    assert error.value.line_number == cut + 1
    assert "chip rows end with the border between two chips of NPU %d (after chip %d): the rest of that NPU is missing" % (
        npu,
        chip_id,
    ) in str(error.value)


def test_info_cut_at_an_npu_border_is_a_smaller_host_only_the_process_table_can_disprove():
    """What the format gives: npu-smi prints the process table after the chips, one line or more per NPU.
    A capture cut at an NPU border parses (it looks like a whole smaller host) but reports no NPU's processes,
    which the module refuses for live output and warns about for saved files (test_npu_facts.py)."""
    lines = capture("info-910b4-8npu-25.0.rc1.1-01.txt").splitlines()
    cut = smi.parse_info("\n".join(lines[:15]))
    assert len(cut["chips"]) == 3 and cut["process_table"] is False
    assert [item["processes"] for item in cut["chips"]] == [None, None, None]


MUTATIONS = ("drop-char", "bar", "plus", "letter", "drop-line", "repeat-line", "swap-lines", "cut-line", "blank")


def mutate(text, rng):
    lines = text.split("\n")
    index = rng.randrange(len(lines))
    line = lines[index]
    kind = rng.choice(MUTATIONS)
    spot = rng.randrange(len(line)) if line else 0
    if kind == "drop-char" and line:
        lines[index] = line[:spot] + line[spot + 1 :]
    elif kind in ("bar", "plus", "letter"):
        lines[index] = line[:spot] + {"bar": "|", "plus": "+", "letter": "O"}[kind] + line[spot + 1 :]
    elif kind == "drop-line":
        del lines[index]
    elif kind == "repeat-line":
        lines.insert(index, line)
    elif kind == "swap-lines" and index + 1 < len(lines):
        lines[index], lines[index + 1] = lines[index + 1], line
    elif kind == "cut-line":
        lines[index] = line[:spot]
    elif kind == "blank":
        lines[index] = ""
    return "\n".join(lines)


NPU_SMI_PARSERS = [
    ("info-h-", smi.parse_info_help),
    ("info-l-", smi.parse_info_l),
    ("info-m-", smi.parse_info_m),
    ("info-", smi.parse_info),
    ("usages-", smi.parse_usages),
    ("memory-", smi.parse_memory),
    ("health-", smi.parse_health),
    ("topo-", smi.parse_topo),
    ("board-", smi.parse_info_type),
    ("common-", smi.parse_info_type),
]
SAMPLES = sorted(name for name in os.listdir(NPU_SMI) if any(name.startswith(prefix) for prefix, _parser in NPU_SMI_PARSERS))


@pytest.mark.parametrize("name", SAMPLES)
def test_garbled_npu_smi_output_never_ends_in_a_traceback(name):
    """100 seeded edits of each real capture (a character, a line, a cut): parsed or NpuSmiParseError, nothing else."""
    parser = next(parser for prefix, parser in NPU_SMI_PARSERS if name.startswith(prefix))
    text = capture(name)
    rng = random.Random(name)
    for _attempt in range(100):
        garbled = text
        for _edit in range(rng.randint(1, 3)):
            garbled = mutate(garbled, rng)
        try:
            parser(garbled)
        except smi.NpuSmiParseError:
            pass
