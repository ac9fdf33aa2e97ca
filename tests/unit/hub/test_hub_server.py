"""The local hub speaks the API the unmodified clients use: huggingface_hub and ModelScope download through it.

These tests are about the test equipment (tests/hub_server): if a client
release changes what it asks, they fail here first, before the product tests
that rely on the server start to lie.
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.error
import urllib.request

import pytest
from hub_server import NOT_FETCHED_BY_DEFAULT, HubServer
from hub_testing import BIG_SHARD, HF_CHUNK, TOKEN, WRONG_TOKEN, sha256_of, tree
from hub_testing import hub_fixture, isolated_clients_fixture, repos_fixture  # noqa: F401  pylint: disable=unused-import  # fixtures hub, repos, autouse

huggingface_hub = pytest.importorskip("huggingface_hub")
from huggingface_hub import HfApi, hf_hub_download, snapshot_download  # noqa: E402
from huggingface_hub.errors import (  # noqa: E402
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

WEIGHTS_AND_CONFIG = ["*.safetensors", "*.json"]


def _get(url, headers=None, method="GET"):
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


# --------------------------------------------------------------------------- huggingface_hub


def test_snapshot_download_with_allow_patterns_brings_exactly_the_selected_files(hub, repos, tmp_path):
    out = snapshot_download("tiny/qwen3", endpoint=hub.url, local_dir=str(tmp_path / "out"), allow_patterns=WEIGHTS_AND_CONFIG)
    expected = sorted(name for name in tree(repos["small"]) if name.endswith((".safetensors", ".json")))
    assert tree(out) == expected
    for name in expected:
        assert sha256_of(os.path.join(out, name)) == sha256_of(os.path.join(repos["small"], name))
    # what the client asked: the tree listing (huggingface_hub >= 1.x), then HEAD + GET per file
    apis = [(r.method, r.api) for r in hub.records()]
    assert ("GET", "hf") in apis and ("HEAD", "hf") in apis
    assert not set(NOT_FETCHED_BY_DEFAULT) & set(r.file for r in hub.records() if r.method == "GET")


def test_model_info_has_the_commit_and_lfs_sha256_of_every_weight(hub, repos):
    info = HfApi(endpoint=hub.url).model_info("tiny/qwen3", files_metadata=True)
    assert info.sha == hub.repos["tiny/qwen3"].commit
    siblings = dict((s.rfilename, s) for s in info.siblings)
    shard = "model-00001-of-00002.safetensors"
    assert siblings[shard].lfs.sha256 == sha256_of(os.path.join(repos["small"], shard))
    assert siblings[shard].size == os.path.getsize(os.path.join(repos["small"], shard))
    assert siblings["config.json"].lfs is None and len(siblings["config.json"].blob_id) == 40
    files = HfApi(endpoint=hub.url).list_repo_files("tiny/qwen3", revision="v1.0")
    assert "onnx/model.onnx" in files and "config.json" in files


def test_lfs_files_redirect_to_a_cdn_on_another_origin_which_gets_no_token(hub, tmp_path):
    path = hf_hub_download("tiny/private", "model-00002-of-00002.safetensors", endpoint=hub.url, token=TOKEN, local_dir=str(tmp_path))
    assert os.path.getsize(path) > 0
    resolve = hub.records(file="model-00002-of-00002.safetensors", api="hf")
    cdn = hub.records(file="model-00002-of-00002.safetensors", api="cdn")
    assert resolve and all(r.status == 302 and r.auth == "valid" for r in resolve)
    assert cdn and all(r.auth == "none" for r in cdn), "the Authorization header must not leave the hub's origin"
    hub.lfs_redirect = False
    status, headers, _body = _get("%s/tiny/qwen3/resolve/main/model-00002-of-00002.safetensors" % hub.url, method="HEAD")
    assert headers["X-Linked-Etag"].strip('"') == hub.repos["tiny/qwen3"].files["model-00002-of-00002.safetensors"].sha256
    assert headers["X-Repo-Commit"] == hub.repos["tiny/qwen3"].commit


def test_range_requests_206_and_416(hub, repos):
    url = "%s/tiny/qwen3/resolve/main/config.json" % hub.url
    with open(os.path.join(repos["small"], "config.json"), "rb") as handle:
        content = handle.read()
    status, headers, body = _get(url, {"Range": "bytes=10-19"})
    assert (status, body, headers["Content-Range"]) == (206, content[10:20], "bytes 10-19/%d" % len(content))
    status, headers, body = _get(url, {"Range": "bytes=-5"})
    assert (status, body) == (206, content[-5:])
    status, headers, _body = _get(url, {"Range": "bytes=%d-" % len(content)})
    assert status == 416 and headers["Content-Range"] == "bytes */%d" % len(content)
    status, headers, body = _get(url)
    assert status == 200 and body == content and headers["ETag"] == '"%s"' % hub.repos["tiny/qwen3"].files["config.json"].git_sha1


def test_errors_are_the_hubs_and_the_client_classifies_them(hub, tmp_path):
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("tiny/private", "config.json", endpoint=hub.url, token=False, local_dir=str(tmp_path))
    with pytest.raises(HfHubHTTPError) as wrong:
        hf_hub_download("tiny/private", "config.json", endpoint=hub.url, token=WRONG_TOKEN, local_dir=str(tmp_path))
    assert wrong.value.response.status_code == 401 and "Invalid credentials" in str(wrong.value)
    assert WRONG_TOKEN not in str(wrong.value)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("tiny/qwen3", "config.json", revision="no-such-branch", endpoint=hub.url, local_dir=str(tmp_path))
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("tiny/qwen3", "no-such-file.json", endpoint=hub.url, local_dir=str(tmp_path))
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url).model_info("tiny/nothing-here")
    status, headers, body = _get("%s/api/models/tiny/private" % hub.url)
    assert status == 401 and headers["X-Error-Code"] == "RepoNotFound" and json.loads(body)["error"]


def test_get_safetensors_metadata_reads_headers_by_range(hub):
    metadata = HfApi(endpoint=hub.url).get_safetensors_metadata("tiny/qwen3")
    assert metadata.sharded and sorted(metadata.files_metadata) == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    assert sum(metadata.parameter_count.values()) > 0
    assert all(r.range == "bytes=0-100000" for r in hub.records(api="cdn"))


def test_client_resumes_a_cut_body_with_a_range_request(hub, repos, tmp_path):
    """The server drops the connection after 12 MiB; huggingface_hub's http_get retries from the 10 MiB it wrote."""
    hub.cut(BIG_SHARD, 12 * 1024 * 1024)
    path = hf_hub_download("tiny/big", BIG_SHARD, endpoint=hub.url, local_dir=str(tmp_path))
    assert sha256_of(path) == sha256_of(os.path.join(repos["big"], BIG_SHARD))
    gets = [r for r in hub.records(file=BIG_SHARD, api="cdn") if r.method == "GET"]
    assert [(r.range, r.status, r.cut) for r in gets] == [(None, 200, True), ("bytes=%d-" % HF_CHUNK, 206, False)]


def test_stop_and_restart_on_the_same_port(hub):
    port = hub.port
    hub.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen("%s/api/models/tiny/qwen3" % hub.url, timeout=2)
    hub.start()
    assert hub.port == port
    assert _get("%s/api/models/tiny/qwen3" % hub.url)[0] == 200


def test_a_cut_can_stop_the_server_mid_body(hub, repos):
    hub.cut(BIG_SHARD, 1024 * 1024, then_stop=True)
    with pytest.raises(http.client.IncompleteRead):
        _get("%s/_cdn/%s" % (hub.url, hub.repos["tiny/big"].files[BIG_SHARD].sha256))
    assert hub.stopped.wait(5) and not hub.running


def test_the_knobs_work_over_http_for_a_server_in_another_process(hub):
    request = urllib.request.Request(
        "%s/_hub/faults" % hub.url,
        data=json.dumps({"cut": [{"file": "config.json", "after": 5}], "rate_limit": 1000000}).encode(),
        method="POST",
    )
    urllib.request.urlopen(request, timeout=5).read()
    assert hub.rate_limit == 1000000 and hub.cuts[0].after == 5
    with pytest.raises(http.client.IncompleteRead):
        _get("%s/tiny/qwen3/resolve/main/config.json" % hub.url)  # 5 bytes, then the connection drops
    log = json.loads(_get("%s/_hub/log" % hub.url)[2])
    assert any(entry["file"] == "config.json" and entry["cut"] for entry in log)
    urllib.request.urlopen(urllib.request.Request("%s/_hub/reset" % hub.url, data=b"", method="POST"), timeout=5).read()
    assert hub.cuts == [] and hub.rate_limit is None


def test_the_command_line_serves_a_tiny_repo(tmp_path):
    import subprocess  # pylint: disable=import-outside-toplevel
    import sys  # pylint: disable=import-outside-toplevel

    tests_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ready = tmp_path / "ready"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hub_server",
            "--tiny",
            "org/tiny=%s,private,token=%s" % (tmp_path / "repo", TOKEN),
            "--ready-file",
            str(ready),
        ],
        cwd=tests_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        import time  # pylint: disable=import-outside-toplevel

        for _attempt in range(100):
            if ready.exists() and ready.read_text().strip():
                break
            time.sleep(0.1)
        url = ready.read_text().strip()
        status, _headers, body = _get("%s/api/models/org/tiny" % url, {"Authorization": "Bearer %s" % TOKEN})
        assert status == 200 and json.loads(body)["private"] is True
    finally:
        process.terminate()
        process.wait(timeout=10)


# --------------------------------------------------------------------------- ModelScope

modelscope_download = None
try:  # the ModelScope SDK, if installed (requirements-test.txt brings it)
    from modelscope.hub.snapshot_download import snapshot_download as modelscope_download
except ImportError:  # pragma: no cover
    pass

needs_modelscope = pytest.mark.skipif(modelscope_download is None, reason="the modelscope package is not installed")


@needs_modelscope
def test_modelscope_snapshot_download_through_the_local_hub(hub, repos, tmp_path):
    out = modelscope_download(
        "tiny/private", local_dir=str(tmp_path / "out"), allow_patterns=WEIGHTS_AND_CONFIG, endpoint=hub.url, token=TOKEN
    )
    expected = sorted(name for name in tree(repos["small"]) if name.endswith((".safetensors", ".json")))
    assert tree(out) == expected
    assert sha256_of(os.path.join(out, "model-00001-of-00002.safetensors")) == sha256_of(
        os.path.join(repos["small"], "model-00001-of-00002.safetensors")
    )
    assert all(r.api == "ms" for r in hub.records())
    assert any(r.path.startswith("/api/v1/models/tiny/private/repo/files?") for r in hub.records())


@needs_modelscope
def test_modelscope_client_resumes_with_range_and_refuses_a_wrong_token(hub, repos, tmp_path):
    hub.cut("model-00001-of-00002.safetensors", 40000)
    out = modelscope_download("tiny/qwen3", local_dir=str(tmp_path / "out"), allow_patterns=["*.safetensors"], endpoint=hub.url)
    assert sha256_of(os.path.join(out, "model-00001-of-00002.safetensors")) == sha256_of(
        os.path.join(repos["small"], "model-00001-of-00002.safetensors")
    )
    ranges = [r.range for r in hub.records(file="model-00001-of-00002.safetensors")]
    assert ranges == [None, "bytes=40000-"]
    with pytest.raises(Exception) as refused:
        modelscope_download("tiny/private", local_dir=str(tmp_path / "no"), endpoint=hub.url, token=WRONG_TOKEN)
    assert "401" in str(refused.value) or "nauthorized" in str(refused.value)


def test_hub_server_module_runs_without_pytest(tmp_path):
    """HubServer is usable as a library (the product tests and Molecule's helper use it so)."""
    with HubServer() as server:
        assert server.running and server.url.startswith("http://127.0.0.1:")
    assert not server.running
