"""hub_profile: the profile read from a hub by range requests equals model_profile's profile of the same files on disk."""

from __future__ import annotations

import os
import socket

import pytest
from ansible_collections.npu.fleet.plugins.module_utils._hub_profile import HubProfileError, profile_hub
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import profile_model
from hub_server import write_tiny_repo
from hub_testing import TOKEN, WRONG_TOKEN
from hub_testing import hub_fixture, isolated_clients_fixture, repos_fixture  # noqa: F401  pylint: disable=unused-import  # fixtures hub, repos, autouse
from model_checkpoints import write_index, write_json, write_safetensors


def _without_path(profile):
    return dict((k, v) for k, v in profile.items() if k != "path")


@pytest.mark.parametrize(
    "hub_name, repo, token",
    [("huggingface", "tiny/qwen3", None), ("huggingface", "tiny/private", TOKEN), ("modelscope", "tiny/private", TOKEN)],
)
def test_range_read_profile_equals_the_profile_on_disk(hub, repos, hub_name, repo, token):
    commit = hub.repos[repo].commit
    result = profile_hub(hub_name, repo, commit, hub.url, token=token)
    assert _without_path(result["profile"]) == _without_path(profile_model(repos["small"]))
    assert result["profile"]["path"] == "%s/%s@%s" % (hub.url, repo, commit)
    assert result["commit"] == commit and result["warnings"] == []
    assert [f["name"] for f in result["files"]] == [
        "config.json",
        "generation_config.json",
        "merges.txt",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.json",
    ]
    assert result["bytes"] == sum(os.path.getsize(os.path.join(repos["small"], f["name"])) for f in result["files"])


def test_only_headers_are_read_from_the_shards(hub, repos):
    result = profile_hub("huggingface", "tiny/big", None, hub.url)
    assert _without_path(result["profile"]) == _without_path(profile_model(repos["big"]))
    shard_bytes = sum(os.path.getsize(os.path.join(repos["big"], n)) for n in os.listdir(repos["big"]) if n.endswith(".safetensors"))
    assert shard_bytes > 30 * 1024 * 1024 and result["bytes_read"] < 250 * 1000
    shard_gets = [r for r in hub.records(method="GET") if r.file and r.file.endswith(".safetensors") and r.api == "cdn"]
    assert shard_gets and all(r.range == "bytes=0-99999" and r.status == 206 for r in shard_gets)
    # a branch is accepted with a warning that names the commit to pin
    assert any("pin revision: %s" % hub.repos["tiny/big"].commit in w for w in result["warnings"])


def test_a_header_longer_than_the_first_range_is_read_with_a_second(hub, tmp_path):
    path = str(tmp_path / "wide")
    write_tiny_repo(path, shards=1, extras=False)
    # 4000 tiny tensors: a header of about 300 KB, longer than the first 100,000-byte read
    tensors = dict(("model.layers.%d.extra.%d.weight" % (i % 2, i), ("BF16", [2])) for i in range(4000))
    write_safetensors(os.path.join(path, "model.safetensors"), dict(tensors, **{"model.norm.weight": ("BF16", [64])}))
    hub.add_repo("tiny/wide", path)
    result = profile_hub("huggingface", "tiny/wide", None, hub.url)
    assert _without_path(result["profile"]) == _without_path(profile_model(path))
    ranges = [r.range for r in hub.records(api="cdn")]
    assert ranges[0] == "bytes=0-99999" and ranges[1].startswith("bytes=8-")


def test_a_truncated_shard_on_the_hub_is_named_by_its_address(hub, tmp_path):
    path = str(tmp_path / "cut")
    write_tiny_repo(path, extras=False)
    shard = os.path.join(path, "model-00002-of-00002.safetensors")
    with open(shard, "r+b") as handle:
        handle.truncate(os.path.getsize(shard) - 100)
    hub.add_repo("tiny/cut", path)
    with pytest.raises(HubProfileError) as error:
        profile_hub("huggingface", "tiny/cut", None, hub.url)
    assert "/tiny/cut/resolve/" in str(error.value) and "model-00002-of-00002.safetensors: truncated" in str(error.value)


def test_a_refused_token_is_one_clear_message_without_the_token(hub):
    with pytest.raises(HubProfileError) as wrong:
        profile_hub("huggingface", "tiny/private", None, hub.url, token=WRONG_TOKEN)
    message = str(wrong.value)
    assert "refused access to tiny/private (HTTP 401)" in message and hub.url in message and WRONG_TOKEN not in message
    with pytest.raises(HubProfileError) as missing:
        profile_hub("huggingface", "tiny/private", None, hub.url)
    assert "no token was given" in str(missing.value)
    with pytest.raises(HubProfileError) as ms:
        profile_hub("modelscope", "tiny/private", "master", hub.url, token=WRONG_TOKEN)
    assert "HTTP 401" in str(ms.value) and WRONG_TOKEN not in str(ms.value)


def test_missing_repo_revision_and_config_are_named(hub, tmp_path):
    with pytest.raises(HubProfileError, match="has no revision 'nope'"):
        profile_hub("huggingface", "tiny/qwen3", "nope", hub.url)
    with pytest.raises(HubProfileError, match="does not exist"):
        profile_hub("huggingface", "tiny/absent", None, hub.url, token=TOKEN)
    bare = tmp_path / "bare"
    bare.mkdir()
    write_json(str(bare / "README.json"), {})
    hub.add_repo("tiny/bare", str(bare))
    with pytest.raises(HubProfileError, match="has no config.json"):
        profile_hub("huggingface", "tiny/bare", None, hub.url)


def test_a_selection_that_leaves_out_shards_is_refused(hub):
    with pytest.raises(HubProfileError) as error:
        profile_hub("huggingface", "tiny/qwen3", None, hub.url, allow_patterns=["*.json"])
    assert "model-00001-of-00002.safetensors, model-00002-of-00002.safetensors" in str(error.value)
    with pytest.raises(HubProfileError, match="leave out config.json"):
        profile_hub("huggingface", "tiny/qwen3", None, hub.url, ignore_patterns=["config.json"])


def test_an_index_naming_a_shard_the_repo_lacks_is_refused(hub, tmp_path):
    path = str(tmp_path / "partial")
    write_tiny_repo(path, extras=False)
    write_index(path, {"model.norm.weight": "model-00001-of-00002.safetensors", "lm_head.weight": "model-00009-of-00009.safetensors"})
    hub.add_repo("tiny/partial", path)
    with pytest.raises(HubProfileError, match="leave out model-00009-of-00009.safetensors"):
        profile_hub("huggingface", "tiny/partial", None, hub.url)  # a download would be incomplete


def test_an_unreachable_endpoint_is_named():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(HubProfileError) as error:
        profile_hub("huggingface", "a/b", None, "http://127.0.0.1:%d" % port, timeout=5)
    assert "cannot reach http://127.0.0.1:%d" % port in str(error.value)
