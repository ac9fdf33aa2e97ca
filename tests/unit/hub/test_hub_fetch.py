"""hub_fetch's logic: the unmodified clients download through the local hub; resume, verify, space, tokens, progress."""

from __future__ import annotations

import builtins
import importlib.util
import json
import os
import threading
import time

import pytest
from ansible_collections.npu.fleet.plugins.module_utils import _hub_fetch
from ansible_collections.npu.fleet.plugins.module_utils._hub_fetch import STATE_DIR, FetchError, fetch_hub
from hub_server import NOT_FETCHED_BY_DEFAULT
from hub_testing import BIG_SHARD, HF_CHUNK, TOKEN, WRONG_TOKEN, all_text, sha256_of, tree
from hub_testing import hub_fixture, isolated_clients_fixture, repos_fixture  # noqa: F401  pylint: disable=unused-import  # fixtures hub, repos, autouse

pytest.importorskip("huggingface_hub")

SERVED = [
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


def _fetch(hub, dest, repo="tiny/qwen3", **kwargs):
    kwargs.setdefault("revision", hub.repos[repo].commit)
    kwargs.setdefault("host", "npu-host-1")
    return fetch_hub(kwargs.pop("hub_name", "huggingface"), repo, str(dest), endpoint=hub.url, **kwargs)


def _weight_bodies(hub):
    """File bodies of weights sent (the planning step may read the small index from the hub)."""
    return [body for body in _file_bodies(hub) if body[0].endswith(".safetensors")]


def _read_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _same_as_source(dest, source, names=tuple(SERVED)):
    return all(sha256_of(os.path.join(str(dest), n)) == sha256_of(os.path.join(source, n)) for n in names)


def _file_bodies(hub):
    """GETs that carried file content (resolve or CDN), as (file, range, status)."""
    return [(r.file, r.range, r.status) for r in hub.records(method="GET") if r.sent and r.api in ("hf", "cdn", "ms") and r.file]


def test_check_mode_reports_and_writes_nothing(hub, tmp_path):
    dest = tmp_path / "models" / "qwen3"
    result = _fetch(hub, dest, check_mode=True)
    assert result["changed"] is True and not dest.exists() and not (tmp_path / "models").exists()
    assert [(f["name"], f["status"], f["reason"]) for f in result["files"]] == [(n, "would_fetch", "missing") for n in SERVED]
    assert result["bytes_needed"] == sum(f["size"] for f in result["files"]) and result["fetched"] == []
    assert _weight_bodies(hub) == []


def test_fetch_takes_the_selected_files_verified_and_a_rerun_fetches_nothing(hub, repos, tmp_path):
    dest = tmp_path / "qwen3"
    first = _fetch(hub, dest, max_workers=3)
    assert first["changed"] and first["fetched"] == SERVED and first["bytes_fetched"] == first["bytes_on_disk"]
    assert tree(dest) == SERVED and _same_as_source(dest, repos["small"])
    assert not set(NOT_FETCHED_BY_DEFAULT) & set(tree(dest))
    assert not os.path.exists(os.path.join(str(dest), STATE_DIR, "partial")), "no partial files once everything arrived"
    progress = _read_json(first["progress_file"])
    assert (progress["state"], progress["bytes_done"], progress["files_done"]) == ("done", progress["bytes_total"], len(SERVED))

    hub.clear_log()
    again = _fetch(hub, dest)
    assert again["changed"] is False and again["fetched"] == [] and again["bytes_fetched"] == 0
    assert [f["status"] for f in again["files"]] == ["present"] * len(SERVED)
    assert _file_bodies(hub) == [], "a re-run transfers no file bytes (the listing only)"
    assert [r.path.split("?")[0] for r in hub.records()] == ["/api/models/tiny/qwen3/revision/%s" % hub.repos["tiny/qwen3"].commit]


def test_truncated_and_corrupted_files_are_fetched_again(hub, repos, tmp_path):
    dest = tmp_path / "qwen3"
    _fetch(hub, dest)
    with open(str(dest / "model-00001-of-00002.safetensors"), "r+b") as handle:
        handle.truncate(5000)  # an interrupted copy
    with open(str(dest / "model-00002-of-00002.safetensors"), "r+b") as handle:
        handle.seek(20000)
        handle.write(b"\xff" * 16)  # same size, other bytes
    with open(str(dest / "tokenizer_config.json"), "r+b") as handle:
        handle.seek(3)
        handle.write(b"X")  # a regular (non-LFS) file: checked by its git blob sha1
    hub.clear_log()
    result = _fetch(hub, dest)
    reasons = dict((f["name"], f.get("reason")) for f in result["files"] if f["status"] == "fetched")
    assert reasons == {
        "model-00001-of-00002.safetensors": "size differs: 5000 bytes here, %d on the hub (truncated or interrupted)"
        % os.path.getsize(os.path.join(repos["small"], "model-00001-of-00002.safetensors")),
        "model-00002-of-00002.safetensors": "sha256 differs from the hub's (corrupted, or another revision's file)",
        "tokenizer_config.json": "gitsha1 differs from the hub's (corrupted, or another revision's file)",
    }
    assert _same_as_source(dest, repos["small"])
    assert sorted(f for f, _r, _s in _file_bodies(hub)) == sorted(reasons)


def test_verify_modes(hub, repos, tmp_path):
    dest = tmp_path / "qwen3"
    _fetch(hub, dest)
    shard = str(dest / "model-00002-of-00002.safetensors")
    stat = os.stat(shard)
    with open(shard, "r+b") as handle:
        handle.seek(20000)
        handle.write(b"\x00" * 8)
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # bit rot that keeps the modification time
    assert _fetch(hub, dest)["changed"] is False, "cached trusts the stamp (documented)"
    assert _fetch(hub, dest, verify="size")["changed"] is False
    full = _fetch(hub, dest, verify="full")
    assert full["fetched"] == ["model-00002-of-00002.safetensors"] and _same_as_source(dest, repos["small"])


def test_a_body_cut_mid_file_is_resumed_with_a_range_request(hub, repos, tmp_path):
    hub.cut(BIG_SHARD, 12 * 1024 * 1024)
    dest = tmp_path / "big"
    result = _fetch(hub, dest, repo="tiny/big")
    assert result["changed"] and _same_as_source(dest, repos["big"], [BIG_SHARD])
    assert [(r, s) for f, r, s in _file_bodies(hub) if f == BIG_SHARD] == [(None, 200), ("bytes=%d-" % HF_CHUNK, 206)]


def test_the_hub_dies_mid_download_and_the_next_run_resumes(hub, repos, tmp_path):
    hub.cut(BIG_SHARD, 12 * 1024 * 1024, then_stop=True)
    dest = tmp_path / "big"
    with pytest.raises(FetchError) as died:
        _fetch(hub, dest, repo="tiny/big", max_workers=1)
    message = str(died.value)
    assert "npu-host-1" in message and "stopped at byte %d of" % HF_CHUNK in message and "next run resumes" in message
    assert not (dest / BIG_SHARD).exists(), "nothing half-written at the final path"
    partial = [os.path.join(r, n) for r, _d, names in os.walk(str(dest / STATE_DIR / "partial")) for n in names]
    assert [os.path.getsize(p) for p in partial if BIG_SHARD in p] == [HF_CHUNK]
    assert _read_json(str(dest / STATE_DIR / "progress.json"))["state"] == "failed"

    hub.start()  # the same port
    hub.clear_log()
    result = _fetch(hub, dest, repo="tiny/big", max_workers=1)
    assert result["bytes_resumed"] == HF_CHUNK and BIG_SHARD in result["fetched"]
    assert [(r, s) for f, r, s in _file_bodies(hub) if f == BIG_SHARD] == [("bytes=%d-" % HF_CHUNK, 206)]
    assert _same_as_source(dest, repos["big"], [BIG_SHARD, "model-00002-of-00002.safetensors", "config.json"])
    assert not os.path.exists(str(dest / STATE_DIR / "partial"))


def test_a_wrong_token_is_one_clear_message_and_the_token_is_nowhere(hub, tmp_path):
    dest = tmp_path / "private"
    with pytest.raises(FetchError) as wrong:
        _fetch(hub, dest, repo="tiny/private", token=WRONG_TOKEN)
    message = str(wrong.value)
    assert message.startswith("npu-host-1: %s refused access to tiny/private (HTTP 401)" % hub.url)
    assert "Invalid credentials" in message and WRONG_TOKEN not in message
    with pytest.raises(FetchError, match="no token was given"):
        _fetch(hub, dest, repo="tiny/private")
    result = _fetch(hub, dest, repo="tiny/private", token=TOKEN)
    assert result["changed"] and TOKEN not in json.dumps(result)
    assert TOKEN not in all_text(str(dest)), "no token in the model directory, the progress file or the stamps"


def test_the_space_check_names_host_path_need_and_free_and_writes_nothing(hub, tmp_path, monkeypatch):
    dest = tmp_path / "full" / "qwen3"
    monkeypatch.setattr(_hub_fetch, "free_space", lambda path: (1000, str(tmp_path)))
    with pytest.raises(FetchError) as full:
        _fetch(hub, dest)
    message = str(full.value)
    assert (
        message.startswith("npu-host-1: %s needs " % dest) and "but its filesystem (measured at %s) has 1000 B free" % tmp_path in message
    )
    assert not (tmp_path / "full").exists() and _weight_bodies(hub) == []


def test_interrupted_bytes_count_against_the_space_needed(hub, tmp_path, monkeypatch):
    hub.cut(BIG_SHARD, 12 * 1024 * 1024, then_stop=True)
    dest = tmp_path / "big"
    with pytest.raises(FetchError):
        _fetch(hub, dest, repo="tiny/big", max_workers=1)
    hub.start()
    plan = _fetch(hub, dest, repo="tiny/big", check_mode=True)
    assert plan["bytes_needed"] == sum(f["size"] for f in plan["files"] if f["status"] == "would_fetch") - HF_CHUNK


def test_progress_is_readable_while_the_download_runs(hub, tmp_path):
    hub.rate_limit = 8 * 1024 * 1024  # bytes per second: the 37 MB repository takes a few seconds
    dest = tmp_path / "big"
    progress_file = str(tmp_path / "progress.json")
    seen = []
    worker = threading.Thread(target=lambda: seen.append(_fetch(hub, dest, repo="tiny/big", progress_file=progress_file)))
    worker.start()
    snapshots = []
    while worker.is_alive():
        if os.path.exists(progress_file):
            snapshots.append(_read_json(progress_file))  # replaced atomically: always a whole document
        time.sleep(0.2)
    worker.join()
    assert seen and seen[0]["changed"]
    running = [s for s in snapshots if s["state"] == "downloading" and 0 < s["bytes_done"] < s["bytes_total"]]
    assert running, snapshots[:3]
    assert running[0]["host"] == "npu-host-1" and running[0]["repo"] == "tiny/big" and running[0]["current"]
    assert _read_json(progress_file)["state"] == "done"


def test_a_selection_without_the_shards_is_refused_before_any_download(hub, tmp_path):
    with pytest.raises(FetchError, match="leave out model-00001-of-00002.safetensors"):
        _fetch(hub, tmp_path / "x", allow_patterns=["*.json"])
    assert _weight_bodies(hub) == [] and not (tmp_path / "x").exists()


def test_a_missing_client_says_how_to_install_it(hub, tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_hf(name, *args, **kwargs):
        if name.startswith("huggingface_hub"):
            raise ImportError("No module named 'huggingface_hub'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_hf)
    with pytest.raises(FetchError) as missing:
        _fetch(hub, tmp_path / "x")
    assert "npu-host-1: hub_fetch downloads from huggingface with the Python package huggingface_hub" in str(missing.value)
    assert "-m pip install 'huggingface_hub>=0.23'" in str(missing.value)


def test_a_second_fetch_into_the_same_directory_is_refused_while_one_runs(hub, tmp_path):
    dest = tmp_path / "qwen3"
    run = _hub_fetch._Fetch({"hub": "huggingface"}, None, str(dest), "npu-host-1", 10, 1)
    held = _hub_fetch._lock(run)
    try:
        with pytest.raises(FetchError, match="another hub_fetch is writing"):
            _fetch(hub, dest)
    finally:
        _hub_fetch._unlock(held)
    assert _fetch(hub, dest)["changed"]


def test_other_files_in_the_directory_are_left_alone(hub, tmp_path):
    dest = tmp_path / "qwen3"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    _fetch(hub, dest)
    assert (dest / "notes.txt").read_text() == "mine"


# --------------------------------------------------------------------------- ModelScope

HAVE_MODELSCOPE = importlib.util.find_spec("modelscope") is not None

needs_modelscope = pytest.mark.skipif(not HAVE_MODELSCOPE, reason="the modelscope package is not installed")


@needs_modelscope
def test_modelscope_fetch_resumes_verifies_and_reruns_as_a_no_op(hub, repos, tmp_path):
    dest = tmp_path / "ms"
    hub.cut("model-00001-of-00002.safetensors", 40000)
    result = _fetch(hub, dest, repo="tiny/private", hub_name="modelscope", revision="master", token=TOKEN)
    assert result["changed"] and tree(dest) == SERVED and _same_as_source(dest, repos["small"])
    assert [(r, s) for f, r, s in _file_bodies(hub) if f == "model-00001-of-00002.safetensors"] == [(None, 200), ("bytes=40000-", 206)]
    assert any("master" in w and "branch or tag" in w for w in result["warnings"])
    assert TOKEN not in all_text(str(dest))
    hub.clear_log()
    again = _fetch(hub, dest, repo="tiny/private", hub_name="modelscope", revision="master", token=TOKEN)
    assert again["changed"] is False and _file_bodies(hub) == []
    with open(str(dest / "model-00002-of-00002.safetensors"), "r+b") as handle:
        handle.truncate(100)
    fixed = _fetch(hub, dest, repo="tiny/private", hub_name="modelscope", revision="master", token=TOKEN)
    assert fixed["fetched"] == ["model-00002-of-00002.safetensors"] and _same_as_source(dest, repos["small"])


@needs_modelscope
def test_modelscope_wrong_token(hub, tmp_path):
    with pytest.raises(FetchError) as wrong:
        _fetch(hub, tmp_path / "ms", repo="tiny/private", hub_name="modelscope", revision="master", token=WRONG_TOKEN)
    assert "refused access to tiny/private (HTTP 401)" in str(wrong.value) and WRONG_TOKEN not in str(wrong.value)
