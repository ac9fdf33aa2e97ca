"""Verification of a model directory, the copy plan and the space decision (plugins/module_utils/_model_files.py).

Checkpoints are real: the config of Qwen/Qwen3-8B from tests/unit/fixtures/models, safetensors shards written
byte for byte in the format (tests/unit/model_checkpoints.py), with Qwen3-8B's tensor names at small shapes, and
an index naming them. Damage is done the way it happens: a copy cut short, a header overwritten, a file missing.
"""

import hashlib
import json
import os
import random
import struct

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._model_files import (
    ModelFilesError,
    copy_plan,
    describe_problems,
    free_space,
    human_bytes,
    manifest,
    names_to_hash,
    space_error,
    verify_model_dir,
)
from model_checkpoints import copy_fixture, write_index, write_json, write_safetensors

SHARDS = {
    "model-00001-of-00002.safetensors": {
        "model.embed_tokens.weight": ("BF16", [64, 32]),
        "model.layers.0.self_attn.q_proj.weight": ("BF16", [32, 32]),
    },
    "model-00002-of-00002.safetensors": {
        "model.layers.0.mlp.down_proj.weight": ("BF16", [32, 48]),
        "model.norm.weight": ("BF16", [32]),
        "lm_head.weight": ("BF16", [64, 32]),
    },
}


def checkpoint(tmp_path, name="qwen3-8b"):
    """A complete two-shard checkpoint with index, tokenizer and generation config; returns its path."""
    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / name))
    weight_map = {}
    total = 0
    for shard, tensors in SHARDS.items():
        total += write_safetensors(os.path.join(path, shard), tensors, metadata={"format": "pt"})
        weight_map.update((tensor, shard) for tensor in tensors)
    write_index(path, weight_map, total_size=total)
    write_json(os.path.join(path, "generation_config.json"), {"temperature": 0.6})
    write_json(os.path.join(path, "tokenizer.json"), {"model": {"type": "BPE"}})
    return path


def shard_path(path, number=2):
    return os.path.join(path, "model-0000%d-of-00002.safetensors" % number)


def header_length(shard):
    with open(shard, "rb") as handle:
        return struct.unpack("<Q", handle.read(8))[0]


def only_problem(result):
    assert result["ok"] is False
    assert len(result["problems"]) == 1, result["problems"]
    return result["problems"][0]


# --------------------------------------------------------------------------- a good checkpoint


def test_a_complete_checkpoint_passes_and_lists_its_files(tmp_path):
    path = checkpoint(tmp_path)
    result = verify_model_dir(path)
    assert result["ok"] is True and result["exists"] is True and result["problems"] == []
    names = [item["name"] for item in result["files"]]
    assert names == sorted(
        [
            "config.json",
            "generation_config.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json",
            "tokenizer.json",
        ]
    )
    for item in result["files"]:
        assert item["size"] == os.path.getsize(os.path.join(path, item["name"])) and "sha256" not in item
    assert result["bytes"] == sum(item["size"] for item in result["files"])


def test_checksums_are_the_sha256_of_each_file(tmp_path):
    path = checkpoint(tmp_path)
    result = verify_model_dir(path, checksums=True)
    for item in result["files"]:
        with open(os.path.join(path, item["name"]), "rb") as handle:
            assert item["sha256"] == hashlib.sha256(handle.read()).hexdigest()
    only = verify_model_dir(path, checksums=["config.json"])
    assert [item["name"] for item in only["files"] if "sha256" in item] == ["config.json"]


def test_hidden_directories_of_the_download_clients_are_not_part_of_the_model(tmp_path):
    path = checkpoint(tmp_path)
    os.makedirs(os.path.join(path, ".cache", "huggingface", "download"))
    with open(os.path.join(path, ".cache", "huggingface", "download", "x.safetensors.incomplete"), "wb") as handle:
        handle.write(b"\0" * 10)
    result = verify_model_dir(path)
    assert result["ok"] is True
    assert not any(item["name"].startswith(".cache") for item in result["files"])


def test_files_in_subdirectories_and_symlinked_files_are_followed(tmp_path):
    """A Hugging Face cache snapshot links each file to a blob; repos may keep files in subfolders."""
    path = checkpoint(tmp_path)
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    os.rename(shard_path(path), str(blobs / "abc"))
    os.symlink(str(blobs / "abc"), shard_path(path))
    os.makedirs(os.path.join(path, "original"))
    write_json(os.path.join(path, "original", "params.json"), {"dim": 32})
    result = verify_model_dir(path)
    assert result["ok"] is True
    assert "original/params.json" in [item["name"] for item in result["files"]]
    assert dict((item["name"], item["size"]) for item in result["files"])[os.path.basename(shard_path(path))] == os.path.getsize(
        str(blobs / "abc")
    )


def test_a_checkpoint_without_an_index_is_checked_shard_by_shard(tmp_path):
    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / "single"))
    write_safetensors(os.path.join(path, "model.safetensors"), {"model.norm.weight": ("BF16", [4096])})
    assert verify_model_dir(path)["ok"] is True


# --------------------------------------------------------------------------- what is wrong, by file


def test_a_broken_config_names_the_file_and_the_json_error_position(tmp_path):
    path = checkpoint(tmp_path)
    with open(os.path.join(path, "config.json"), "w", encoding="utf-8") as handle:
        handle.write('{\n  "architectures": ["Qwen3ForCausalLM"],\n  "hidden_size": 4096,,\n}')
    problem = only_problem(verify_model_dir(path))
    assert problem == {
        "file": "config.json",
        "what": "is not valid JSON: line 3 column 23: Expecting property name enclosed in double quotes",
        "fix": "replace it with the published config.json of the checkpoint",
    }


@pytest.mark.parametrize(
    "content, says",
    [
        ("[1, 2]", "is not a JSON object but list"),
        ("[" * 200000 + "]" * 200000, "is JSON nested too deeply to read (a corrupt or hostile file)"),
    ],
)
def test_a_config_that_is_no_object(tmp_path, content, says):
    path = checkpoint(tmp_path)
    with open(os.path.join(path, "config.json"), "w", encoding="utf-8") as handle:
        handle.write(content)
    assert only_problem(verify_model_dir(path))["what"] == says


def test_a_config_that_is_not_text(tmp_path):
    path = checkpoint(tmp_path)
    with open(os.path.join(path, "config.json"), "wb") as handle:
        handle.write(b'{"a": "\xff\xfe"}')
    assert only_problem(verify_model_dir(path))["what"] == "is not UTF-8 text (at byte offset 7): not a JSON file"


def test_a_missing_config(tmp_path):
    path = checkpoint(tmp_path)
    os.remove(os.path.join(path, "config.json"))
    problem = only_problem(verify_model_dir(path))
    assert problem["file"] == "config.json" and problem["what"] == "is missing"


def test_an_index_naming_a_missing_shard(tmp_path):
    path = checkpoint(tmp_path)
    os.remove(shard_path(path, 1))
    problem = only_problem(verify_model_dir(path))
    assert problem == {
        "file": "model-00001-of-00002.safetensors",
        "what": "is named by model.safetensors.index.json but missing",
        "fix": "copy or download the missing shard",
    }


def test_an_index_naming_a_file_outside_the_directory(tmp_path):
    path = checkpoint(tmp_path)
    write_index(path, {"model.norm.weight": "../../etc/passwd"})
    problems = verify_model_dir(path)["problems"]
    assert problems == [
        {
            "file": "model.safetensors.index.json",
            "what": "names '../../etc/passwd', a file outside the model directory",
            "fix": "replace it with the published index",
        }
    ]


def test_an_index_without_weight_map(tmp_path):
    path = checkpoint(tmp_path)
    write_json(os.path.join(path, "model.safetensors.index.json"), {"metadata": {}})
    problem = only_problem(verify_model_dir(path))
    assert problem["file"] == "model.safetensors.index.json"
    assert problem["what"] == "has no 'weight_map' object naming the shard of each tensor"


def test_a_pytorch_index_naming_a_missing_file(tmp_path):
    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / "pt"))
    with open(os.path.join(path, "pytorch_model-00001-of-00002.bin"), "wb") as handle:
        handle.write(b"\0" * 16)
    write_json(
        os.path.join(path, "pytorch_model.bin.index.json"),
        {"weight_map": {"a": "pytorch_model-00001-of-00002.bin", "b": "pytorch_model-00002-of-00002.bin"}},
    )
    problem = only_problem(verify_model_dir(path))
    assert problem["file"] == "pytorch_model-00002-of-00002.bin"
    assert problem["what"] == "is named by pytorch_model.bin.index.json but missing"


def test_a_truncated_shard_names_expected_and_actual_bytes(tmp_path):
    path = checkpoint(tmp_path)
    shard = shard_path(path)
    full = os.path.getsize(shard)
    length = header_length(shard)
    data = full - 8 - length
    with open(shard, "r+b") as handle:
        handle.truncate(full - 1000)
    problem = only_problem(verify_model_dir(path))
    assert problem == {
        "file": "model-00002-of-00002.safetensors",
        "what": "is truncated: {:,} bytes on disk, {:,} bytes expected from its header (8 + {} header + {} data); 1,000 bytes missing".format(
            full - 1000, full, length, data
        ),
        "fix": "copy or download this file again: the transfer was interrupted or damaged",
    }


def test_a_shard_longer_than_its_header_declares(tmp_path):
    path = checkpoint(tmp_path)
    shard = shard_path(path, 1)
    full = os.path.getsize(shard)
    with open(shard, "ab") as handle:
        handle.write(b"\0" * 7)
    what = only_problem(verify_model_dir(path))["what"]
    assert what.startswith("is longer than its header declares: {:,} bytes on disk, {:,} bytes expected".format(full + 7, full))
    assert what.endswith("loaders refuse the extra 7 bytes")


def write_raw(shard, raw, length=None, tail=b""):
    with open(shard, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw) if length is None else length) + raw + tail)


@pytest.mark.parametrize(
    "raw, length, says",
    [
        (b"", 0, "has a header that is not valid JSON"),
        (b"\x89PNG\r\n\x1a\n" * 4, None, "has a header that is not valid JSON"),
        (b'{"a":' * 200000 + b"1" + b"}" * 200000, None, "has a header of JSON nested too deeply to read (a corrupt or hostile file)"),
        (b'["not", "an", "object"]', None, "has a header that is not a JSON object: a corrupt file"),
        (b"{}", 200 * 1000 * 1000, "is not a safetensors file: its first 8 bytes give a header of 200,000,000 bytes"),
        (b"{}", 5000, "is truncated inside its header: the header is 5,000 bytes long but only 2 bytes follow the 8-byte length"),
        (
            json.dumps({"w": {"dtype": "BF16", "shape": [-4, 2], "data_offsets": [0, 16]}}).encode(),
            None,
            "has a corrupt header: tensor 'w' has shape [-4, 2]; every dimension must be a whole number >= 0",
        ),
        (
            json.dumps({"w": {"dtype": "BF16", "shape": [4]}}).encode(),
            None,
            "has a corrupt header: tensor 'w' needs 'shape' and 'data_offsets' [begin, end]",
        ),
    ],
)
def test_garbage_headers_are_problems_not_tracebacks(tmp_path, raw, length, says):
    path = checkpoint(tmp_path)
    shard = shard_path(path)
    write_raw(shard, raw, length)
    problem = only_problem(verify_model_dir(path))
    assert problem["file"] == "model-00002-of-00002.safetensors"
    assert problem["fix"] == "copy or download this file again: the transfer was interrupted or damaged"
    assert problem["what"].startswith(says), problem["what"]


def test_a_shard_shorter_than_the_length_prefix(tmp_path):
    path = checkpoint(tmp_path)
    with open(shard_path(path), "wb") as handle:
        handle.write(b"\x10\x00")
    assert only_problem(verify_model_dir(path))["what"] == (
        "is truncated: 2 bytes, shorter than the 8-byte header length of a safetensors file"
    )


def test_randomly_damaged_shards_never_end_in_a_traceback(tmp_path):
    """Bytes of the length prefix and header overwritten at random, and cuts at random places: always a problem list."""
    path = checkpoint(tmp_path)
    shard = shard_path(path)
    with open(shard, "rb") as handle:
        original = handle.read()
    end = 8 + header_length(shard)
    rng = random.Random(15)
    for _round in range(300):
        data = bytearray(original)
        for _hit in range(rng.randint(1, 4)):
            data[rng.randrange(0, end)] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(0, len(data))]
        with open(shard, "wb") as handle:
            handle.write(bytes(data))
        result = verify_model_dir(path)
        assert isinstance(result["problems"], list)
        assert all(problem["file"] == os.path.basename(shard) for problem in result["problems"])


def test_a_directory_with_only_the_configuration(tmp_path):
    path = copy_fixture("Qwen__Qwen3-8B", str(tmp_path / "conf"))
    problem = only_problem(verify_model_dir(path))
    assert problem["file"] is None and problem["what"] == "holds no weights (no *.safetensors or *.bin file)"


def test_a_missing_directory_and_a_file_instead_of_one(tmp_path):
    missing = verify_model_dir(str(tmp_path / "nowhere"))
    assert missing["exists"] is False and missing["files"] == [] and missing["bytes"] == 0
    assert only_problem(missing)["what"] == "does not exist"
    (tmp_path / "file").write_text("x")
    assert only_problem(verify_model_dir(str(tmp_path / "file")))["what"] == "is not a directory"


def test_a_broken_symbolic_link(tmp_path):
    path = checkpoint(tmp_path)
    os.symlink(str(tmp_path / "gone"), os.path.join(path, "tokenizer_config.json"))
    problem = only_problem(verify_model_dir(path))
    assert problem["file"] == "tokenizer_config.json" and problem["what"] == "is a broken symbolic link"


def test_the_message_names_host_path_and_each_problem_with_its_fix(tmp_path):
    path = checkpoint(tmp_path)
    os.remove(shard_path(path, 1))
    os.remove(os.path.join(path, "config.json"))
    result = verify_model_dir(path)
    assert describe_problems(path, result["problems"], host="npu-a2-01") == (
        "npu-a2-01: %s is not a complete checkpoint, 2 problem(s): config.json is missing (fix: copy or download "
        "the checkpoint's config.json, which says what model this is); model-00001-of-00002.safetensors is named by "
        "model.safetensors.index.json but missing (fix: copy or download the missing shard)" % path
    )
    many = [{"file": "f%d" % number, "what": "is bad", "fix": "x"} for number in range(7)]
    assert describe_problems("/m", many).endswith("f4 is bad (fix: x); and 2 more")
    assert describe_problems("/m", [{"file": None, "what": "does not exist", "fix": "put it there"}]).startswith(
        "/m is not a complete checkpoint, 1 problem(s): /m does not exist (fix: put it there)"
    )


# --------------------------------------------------------------------------- copy plan


def entry(name, size, sha=None):
    item = {"name": name, "size": size}
    if sha:
        item["sha256"] = sha * 64
    return item


def test_copy_plan_copies_what_is_missing_or_different_and_lists_extra_files():
    source = [
        entry("config.json", 10, "a"),
        entry("model-1.safetensors", 100, "b"),
        entry("model-2.safetensors", 100, "c"),
        entry("model-3.safetensors", 100, "d"),
        entry("tokenizer.json", 20, "e"),
    ]
    target = [
        entry("config.json", 10, "a"),  # same
        entry("model-1.safetensors", 40),  # cut short
        entry("model-2.safetensors", 100, "f"),  # same size, other content
        entry("tokenizer.json", 20),  # same size, not hashed here: same
        entry("notes.txt", 3),
    ]
    plan = copy_plan(source, target)
    assert plan["files"] == [
        {"name": "model-1.safetensors", "size": 100, "reason": "size differs: 40 bytes here, 100 bytes at the source"},
        {"name": "model-2.safetensors", "size": 100, "reason": "sha256 differs"},
        {"name": "model-3.safetensors", "size": 100, "reason": "missing"},
    ]
    assert plan["extra"] == ["notes.txt"]
    assert plan["same"] == ["config.json", "tokenizer.json"]
    assert plan["bytes"] == 300


def test_copy_plan_of_an_empty_target_and_of_a_complete_one():
    source = [entry("config.json", 10, "a"), entry("model.safetensors", 100, "b")]
    assert copy_plan(source, [])["bytes"] == 110
    done = copy_plan(source, source)
    assert done["files"] == [] and done["extra"] == [] and done["bytes"] == 0


def test_a_file_that_failed_verification_is_copied_again_unless_its_checksum_matches():
    source = [entry("config.json", 10), entry("model.safetensors", 100, "b")]
    target = [entry("config.json", 10), entry("model.safetensors", 100, "b")]
    plan = copy_plan(source, target, broken=["config.json", "model.safetensors"])
    # Copying model.safetensors again would give the same bytes: the source itself is broken then.
    assert plan["files"] == [{"name": "config.json", "size": 10, "reason": "failed verification"}]


def test_names_to_hash_are_the_same_size_files_the_source_has_a_checksum_for():
    source = [entry("a", 1, "a"), entry("b", 2, "b"), entry("c", 3)]
    target = [entry("a", 1), entry("b", 5), entry("c", 3), entry("d", 4)]
    assert names_to_hash(source, target) == ["a"]


@pytest.mark.parametrize(
    "files, says",
    [
        ({"name": "x"}, "source files must be a list of {name, size, sha256} entries, got dict"),
        (["config.json"], "source files[0] must be a mapping with name and size"),
        ([{"size": 1}], "source files[0] has no name"),
        ([{"name": "../../root/.ssh/authorized_keys", "size": 1}], "is not a plain relative path inside the model directory"),
        ([{"name": "/etc/passwd", "size": 1}], "is not a plain relative path"),
        ([{"name": "a//b", "size": 1}], "is not a plain relative path"),
        ([{"name": "a", "size": -1}], "source files[0] (a): size must be a whole number of bytes, got -1"),
        ([{"name": "a", "size": True}], "size must be a whole number of bytes, got True"),
        ([{"name": "a", "size": 1, "sha256": "xyz"}], "source files[0] (a): sha256 must be 64 hexadecimal digits"),
    ],
)
def test_a_malformed_manifest_is_refused(files, says):
    with pytest.raises(ModelFilesError) as error:
        copy_plan(files, [])
    assert says in str(error.value)


def test_sizes_given_as_text_and_upper_case_checksums_are_accepted():
    plan = copy_plan([{"name": "a", "size": "5", "sha256": "A" * 64}], [{"name": "a", "size": 5, "sha256": "a" * 64}])
    assert plan["same"] == ["a"]


def test_a_manifest_of_a_real_directory_plans_a_copy_of_the_changed_shard_only(tmp_path):
    source_dir = checkpoint(tmp_path, "controller")
    target_dir = checkpoint(tmp_path, "host")
    with open(shard_path(target_dir), "r+b") as handle:  # same size, other bytes in the data section
        handle.seek(-1, os.SEEK_END)
        handle.write(b"\x01")
    source = manifest(source_dir)
    assert all(len(item["sha256"]) == 64 for item in source)
    host = verify_model_dir(target_dir)
    assert host["ok"] is True  # the headers cannot see it ...
    hashed = verify_model_dir(target_dir, checksums=names_to_hash(source, host["files"]))
    plan = copy_plan(source, hashed["files"])  # ... the checksums do
    assert [(item["name"], item["reason"]) for item in plan["files"]] == [("model-00002-of-00002.safetensors", "sha256 differs")]
    assert plan["bytes"] == os.path.getsize(shard_path(source_dir))


def test_manifest_of_a_missing_directory_is_an_error(tmp_path):
    with pytest.raises(ModelFilesError, match=r"nowhere is not a complete checkpoint, 1 problem\(s\)"):
        manifest(str(tmp_path / "nowhere"))


# --------------------------------------------------------------------------- space


@pytest.mark.parametrize(
    "count, text",
    [(0, "0 B"), (512, "512 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"), (16381470720, "15.3 GiB"), (2**41, "2.0 TiB")],
)
def test_human_bytes(count, text):
    assert human_bytes(count) == text


def test_free_space_is_measured_at_the_nearest_existing_parent(tmp_path):
    free, at = free_space(str(tmp_path / "models" / "qwen3-8b"))
    assert at == str(tmp_path)
    statvfs = os.statvfs(str(tmp_path))
    assert free == statvfs.f_bavail * statvfs.f_frsize
    assert free_space(str(tmp_path))[1] == str(tmp_path)


def test_the_space_error_names_host_path_need_and_free():
    assert space_error(100, 100, "/data/models/m") is None
    message = space_error(16381470720, 2 * 1024**3, "/data/models/qwen3-8b", host="npu-a2-01", checked_at="/data")
    assert message == (
        "npu-a2-01: /data/models/qwen3-8b needs 15.3 GiB (16,381,470,720 bytes) but its filesystem (measured at /data) "
        "has 2.0 GiB free (2,147,483,648 bytes); free 13.3 GiB there, or set host_path (or npu_fleet_model_root) to a "
        "filesystem with room"
    )
    assert space_error(2, 1, "/m", checked_at="/m").startswith("/m needs 2 B (2 bytes) but its filesystem has 1 B free")
