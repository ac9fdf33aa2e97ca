"""The pure decisions of a hub source: defaults, validation, which files, present or to fetch."""

from __future__ import annotations

import pytest
from ansible_collections.npu.fleet.plugins.module_utils._hub_source import (
    DEFAULT_ALLOW_PATTERNS,
    HubSourceError,
    digest_of,
    fetch_plan,
    matches,
    names_to_hash,
    normalize_source,
    redact,
    revision_warning,
    select_files,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"
SHA = "a" * 64
GIT = "b" * 40

# What real repositories hold (Qwen3-8B, DeepSeek-V3, Llama 3.1, GLM-4V, an msModelSlim W8A8 export, a diffusers layout).
REPO_FILES = [
    ".gitattributes",
    "LICENSE",
    "README.md",
    "config.json",
    "configuration_deepseek.py",
    "figures/benchmark.png",
    "generation_config.json",
    "merges.txt",
    "model-00001-of-00005.safetensors",
    "model.safetensors.index.json",
    "modeling_deepseek.py",
    "onnx/model.onnx",
    "original/consolidated.00.pth",
    "original/params.json",
    "original/tokenizer.model",
    "preprocessor_config.json",
    "pytorch_model.bin",
    "qwen.tiktoken",
    "quant_model_description_w8a8.json",
    "quant_model_weight_w8a8.safetensors",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "chat_template.jinja",
    "vocab.json",
    "model.gguf",
]


def test_defaults_and_warnings_for_an_unpinned_source():
    source, warnings = normalize_source(None, "Qwen/Qwen3-8B")
    assert source == {
        "hub": "huggingface",
        "repo": "Qwen/Qwen3-8B",
        "revision": "main",
        "endpoint": "https://huggingface.co",
        "allow_patterns": list(DEFAULT_ALLOW_PATTERNS),
        "ignore_patterns": [],
        "pinned": False,
    }
    assert "main" in warnings[0] and "pin" in warnings[0]
    source, warnings = normalize_source("modelscope", "Qwen/Qwen3-8B", COMMIT, "https://hf-mirror.com/", ["*.safetensors"])
    assert (source["revision"], source["endpoint"], source["pinned"], warnings) == (COMMIT, "https://hf-mirror.com", True, [])
    assert normalize_source("modelscope", "Qwen/Qwen3-8B")[0]["revision"] == "master"
    assert normalize_source("modelscope", "Qwen/Qwen3-8B")[0]["endpoint"] == "https://www.modelscope.cn"


def test_revision_warning_names_the_commit_a_branch_resolved_to():
    source = normalize_source("huggingface", "a/b", "main")[0]
    assert COMMIT in revision_warning(source, COMMIT) and "pin revision: %s" % COMMIT in revision_warning(source, COMMIT)
    assert revision_warning(normalize_source("huggingface", "a/b", COMMIT)[0], COMMIT) is None


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"hub": "github", "repo": "a/b"}, "hub must be one of"),
        ({"repo": ""}, "repo is required"),
        ({"repo": "https://huggingface.co/Qwen/Qwen3-8B"}, "not an address"),
        ({"repo": "a/b/c"}, "not a repository id"),
        ({"hub": "modelscope", "repo": "qwen3"}, "owner/name"),
        ({"repo": "a/b", "revision": "main; rm -rf /"}, "not a commit, branch or tag"),
        ({"repo": "a/b", "endpoint": "ftp://mirror"}, "not an http(s) address"),
        ({"repo": "a/b", "allow_patterns": []}, "allow_patterns is empty"),
        ({"repo": "a/b", "allow_patterns": ["*.json", ""]}, "list of glob patterns"),
    ],
)
def test_unusable_fields_are_named(kwargs, fragment):
    with pytest.raises(HubSourceError) as error:
        normalize_source(**kwargs)
    assert fragment in str(error.value)


@pytest.mark.parametrize("endpoint", ["https://user:hf_SecretValue123@hf-mirror.com", "https://hf-mirror.com/?token=hf_SecretValue123"])
def test_an_endpoint_with_credentials_is_refused_without_echoing_them(endpoint):
    with pytest.raises(HubSourceError) as error:
        normalize_source("huggingface", "a/b", COMMIT, endpoint)
    assert "SecretValue" not in str(error.value) and "credentials" in str(error.value)


def test_default_patterns_take_what_serving_needs_and_nothing_else():
    taken = sorted(name for name in REPO_FILES if matches(name, DEFAULT_ALLOW_PATTERNS))
    assert taken == sorted(
        [
            "config.json",
            "configuration_deepseek.py",
            "generation_config.json",
            "merges.txt",
            "model-00001-of-00005.safetensors",
            "model.safetensors.index.json",
            "modeling_deepseek.py",
            "preprocessor_config.json",
            "qwen.tiktoken",
            "quant_model_description_w8a8.json",
            "quant_model_weight_w8a8.safetensors",
            "special_tokens_map.json",
            "tokenizer.json",
            "tokenizer.model",
            "tokenizer_config.json",
            "chat_template.jinja",
            "vocab.json",
        ]
    )


@pytest.mark.parametrize(
    "patterns",
    [
        list(DEFAULT_ALLOW_PATTERNS),
        ["*.json"],
        ["original/"],
        ["*.safetensors", "tokenizer*"],
        ["*/*.onnx", "README.md"],
        ["[mp]*.bin", "model-0000?-of-*.safetensors"],
    ],
)
def test_patterns_match_exactly_as_huggingface_hub_matches_them(patterns):
    filter_repo_objects = pytest.importorskip("huggingface_hub.utils").filter_repo_objects
    assert sorted(name for name in REPO_FILES if matches(name, patterns)) == sorted(
        filter_repo_objects(REPO_FILES, allow_patterns=patterns)
    )


def test_select_files_applies_allow_then_ignore():
    files = [{"name": n, "size": 1} for n in REPO_FILES]
    names = [f["name"] for f in select_files(files, ["*.json"], ["original/*", "*_config.json"])]
    assert names == [
        "config.json",
        "model.safetensors.index.json",
        "quant_model_description_w8a8.json",
        "special_tokens_map.json",
        "tokenizer.json",
        "vocab.json",
    ]


def test_digest_prefers_sha256_then_git_sha1():
    assert digest_of({"sha256": SHA.upper(), "git_sha1": GIT}) == "sha256:" + SHA
    assert digest_of({"sha256": None, "git_sha1": GIT}) == "gitsha1:" + GIT
    assert digest_of({"sha256": "not-a-hash"}) is None


WANTED = [
    {"name": "a.safetensors", "size": 100, "sha256": SHA},
    {"name": "config.json", "size": 10, "git_sha1": GIT},
    {"name": "nochecksum.txt", "size": 5},
]


def test_everything_missing_is_fetched():
    plan = fetch_plan(WANTED, {}, {}, {})
    assert [(i["name"], i["reason"]) for i in plan["fetch"]] == [(w["name"], "missing") for w in WANTED]
    assert (plan["bytes"], plan["present"], plan["bytes_present"]) == (115, [], 0)


def test_hash_only_what_the_stamps_do_not_vouch_for():
    local = {"a.safetensors": {"size": 100, "mtime_ns": 7}, "config.json": {"size": 10, "mtime_ns": 8}, "nochecksum.txt": {"size": 5}}
    stamps = {"a.safetensors": {"size": 100, "mtime_ns": 7, "digest": "sha256:" + SHA}}
    assert names_to_hash(WANTED, local, stamps, "cached") == ["config.json"]
    assert names_to_hash(WANTED, local, stamps, "full") == ["a.safetensors", "config.json"]
    assert names_to_hash(WANTED, local, stamps, "size") == []
    touched = dict(local, **{"a.safetensors": {"size": 100, "mtime_ns": 9}})  # modified in place: hashed again
    assert names_to_hash(WANTED, touched, stamps, "cached") == ["a.safetensors", "config.json"]
    with pytest.raises(HubSourceError):
        names_to_hash(WANTED, local, stamps, "sometimes")


def test_truncated_and_corrupted_files_are_fetched_again_with_a_reason():
    local = {
        "a.safetensors": {"size": 40, "mtime_ns": 1},
        "config.json": {"size": 10, "mtime_ns": 2},
        "nochecksum.txt": {"size": 5, "mtime_ns": 3},
    }
    plan = fetch_plan(WANTED, local, {}, {"config.json": "gitsha1:" + "c" * 40})
    reasons = dict((i["name"], i["reason"]) for i in plan["fetch"])
    assert reasons["a.safetensors"].startswith("size differs: 40 bytes here, 100 on the hub (truncated")
    assert reasons["config.json"].startswith("gitsha1 differs")
    assert plan["present"] == ["nochecksum.txt"] and plan["bytes"] == 110


def test_verified_files_are_present_and_stamped():
    local = {
        "a.safetensors": {"size": 100, "mtime_ns": 1},
        "config.json": {"size": 10, "mtime_ns": 2},
        "nochecksum.txt": {"size": 5, "mtime_ns": 3},
    }
    plan = fetch_plan(WANTED, local, {}, {"a.safetensors": "sha256:" + SHA, "config.json": "gitsha1:" + GIT})
    assert plan["fetch"] == [] and plan["bytes_present"] == 115
    assert plan["stamps"] == {
        "a.safetensors": {"size": 100, "mtime_ns": 1, "digest": "sha256:" + SHA},
        "config.json": {"size": 10, "mtime_ns": 2, "digest": "gitsha1:" + GIT},
    }
    # a file of the right size that nobody hashed and no stamp vouches for is not trusted
    assert fetch_plan(WANTED, local, {}, {})["fetch"][0]["reason"] == "not verified"
    # size-only verification trusts sizes
    assert fetch_plan(WANTED, local, {}, {}, "size")["fetch"] == []


def test_redact_removes_every_occurrence_and_ignores_empty_secrets():
    text = "Authorization: Bearer hf_abcdef123 and again hf_abcdef123"
    assert redact(text, "hf_abcdef123") == "Authorization: Bearer ******** and again ********"
    assert redact(text, None, "") == text
    assert redact(ValueError("x hf_abcdef123"), "hf_abcdef123") == "x ********"
