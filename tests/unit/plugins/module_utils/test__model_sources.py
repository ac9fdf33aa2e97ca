"""The sources stage's decisions: which models a host needs and from where, download waves, copies, progress, report rows.

Plans come from the real planner over real model profiles; catalogues from the real schema.
"""

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._catalogue import validate_catalogue, with_host_paths
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan import plan
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import profile_model
from ansible_collections.npu.fleet.plugins.module_utils._model_sources import (
    PROGRESS_FILE,
    copies,
    download_jobs,
    download_waves,
    progress_line,
    source_records,
    sources_here,
)
from builders import chip
from model_checkpoints import fixture_dir

COMMIT = "0123456789abcdef0123456789abcdef01234567"
RESOLVED = "89abcdef0123456789abcdef0123456789abcdef"
HOSTS = ["a2-01", "a2-02", "a2-03"]


@pytest.fixture(scope="module")
def fleet():
    profile = profile_model(fixture_dir("Qwen__Qwen3-8B"))
    hub_profile = dict(profile, hub={"commit": RESOLVED, "files": [{"name": "model.safetensors", "size": 10}], "bytes": 10})
    catalogue = with_host_paths(
        validate_catalogue(
            [
                {"name": "on-hosts", "profile": profile, "host_path": "/data/model/Qwen3-8B", "replicas": 3},
                {"name": "copied", "profile": profile, "source": {"type": "controller", "path": "/srv/ckpt/q8"}, "hosts": ["a2-01"]},
                {
                    "name": "pulled",
                    "profile": hub_profile,
                    "source": {"type": "hub", "repo": "Qwen/Qwen3-8B", "revision": COMMIT, "endpoint": "https://hf-mirror.com"},
                    "replicas": 2,
                    "hosts": ["a2-02", "a2-03"],
                },
                {"name": "unplanned", "profile": profile, "source": {"type": "hub", "repo": "x/y", "revision": COMMIT}, "replicas": 0},
            ]
        )
    )
    hosts = dict((name, {"chips": [chip(n) for n in range(8)]}) for name in HOSTS)
    return plan(hosts, catalogue), catalogue


def test_a_host_needs_each_planned_model_once_with_its_source(fleet):
    placed, catalogue = fleet
    here = sources_here(placed, catalogue, "a2-01")
    assert [(record["name"], record["type"], record["host_path"]) for record in here] == [
        ("copied", "controller", "/data/models/copied"),
        ("on-hosts", "host", "/data/model/Qwen3-8B"),
    ]
    assert here[0]["controller_path"] == "/srv/ckpt/q8"
    (pulled,) = [record for record in sources_here(placed, catalogue, "a2-02") if record["type"] == "hub"]
    # The commit the profile resolved, the endpoint, the token variable and the files to fetch.
    assert pulled["hub"] == {
        "hub": "huggingface",
        "repo": "Qwen/Qwen3-8B",
        "revision": RESOLVED,
        "endpoint": "https://hf-mirror.com",
        "allow_patterns": None,
        "token_var": "npu_fleet_hub_token",
        "files": [{"name": "model.safetensors", "size": 10}],
        "bytes": 10,
    }
    assert "unplanned" not in [record["name"] for record in sources_here(placed, catalogue)]


def test_downloading_hosts_go_in_waves_of_the_concurrency(fleet):
    placed, catalogue = fleet
    assert download_waves(placed, catalogue, HOSTS, 1) == {"waves": 2, "wave": {"a2-02": 0, "a2-03": 1}}
    assert download_waves(placed, catalogue, HOSTS, 0) == {"waves": 1, "wave": {"a2-02": 0, "a2-03": 0}}
    assert download_waves(placed, catalogue, ["a2-01"], 4) == {"waves": 0, "wave": {}}
    with pytest.raises(ValueError, match="npu_fleet_download_concurrency must be a whole number of hosts, got 'two'"):
        download_waves(placed, catalogue, HOSTS, "two")


def test_copies_take_only_what_the_comparison_lists():
    record = {"name": "copied", "controller_path": "/srv/ckpt/q8/", "host_path": "/data/models/copied"}
    comparisons = [
        {"item": record, "copy": {"files": [{"name": "model-00001-of-00002.safetensors", "size": 5, "reason": "missing"}]}},
        {"item": dict(record, name="same"), "copy": {"files": []}},
        {"item": record, "skipped": True},
    ]
    assert copies(comparisons) == [
        {
            "name": "copied",
            "src": "/srv/ckpt/q8/model-00001-of-00002.safetensors",
            "dest": "/data/models/copied/model-00001-of-00002.safetensors",
            "size": 5,
            "reason": "missing",
        }
    ]


def test_jobs_come_from_the_async_loop_and_skipped_items_are_left_out():
    started = [
        {"ansible_job_id": "j1.2", "item": {"name": "pulled", "host_path": "/data/models/pulled/"}},
        {"skipped": True, "item": {"name": "other"}},
    ]
    assert download_jobs(started) == [
        {"jid": "j1.2", "name": "pulled", "progress_file": "/data/models/pulled/" + PROGRESS_FILE, "item": started[0]["item"]}
    ]
    ready = {"jid": 7, "name": "x", "progress_file": "/p"}
    assert download_jobs([ready]) == [{"jid": "7", "name": "x", "progress_file": "/p", "item": None}]


def test_a_progress_line_says_how_far_a_download_is():
    assert progress_line("a2-02", "pulled", None) == "a2-02 pulled: starting"
    progress = {
        "state": "downloading",
        "bytes_done": 3 * 2**30,
        "bytes_total": 12 * 2**30,
        "files_done": 1,
        "files_total": 4,
        "current": ["model-00002-of-00004.safetensors"],
    }
    assert progress_line("a2-02", "pulled", progress) == (
        "a2-02 pulled: 3.00 GiB of 12.00 GiB (25 %), file 1 of 4, model-00002-of-00004.safetensors"
    )
    assert progress_line("a2-02", "pulled", dict(progress, state="verifying", current=[])).endswith("file 1 of 4 [verifying]")


def test_report_rows_join_the_checks_the_downloads_and_the_copies():
    records = [
        {
            "name": "pulled",
            "type": "hub",
            "host_path": "/data/models/pulled",
            "hub": {"hub": "huggingface", "repo": "Qwen/Qwen3-8B", "revision": RESOLVED},
        },
        {"name": "copied", "type": "controller", "host_path": "/data/models/copied", "controller_path": "/srv/q8"},
        {"name": "on-hosts", "type": "host", "host_path": "/data/model/Qwen3-8B"},
    ]
    rows = source_records(
        records,
        verified=[{"directory": "/data/models/pulled", "bytes": 100}, {"directory": "/data/model/Qwen3-8B", "bytes": 300}],
        fetched=[{"item": {"name": "pulled"}, "bytes_fetched": 40, "bytes_on_disk": 100}],
        copied=[{"item": {"name": "copied"}, "changed": True}, {"item": {"name": "copied"}, "changed": False}],
    )
    assert rows == [
        {
            "model": "pulled",
            "source": "huggingface Qwen/Qwen3-8B",
            "revision": RESOLVED,
            "path": "/data/models/pulled",
            "bytes": 100,
            "fetched_bytes": 40,
            "copied_files": 0,
        },
        {
            "model": "copied",
            "source": "controller",
            "revision": None,
            "path": "/data/models/copied",
            "bytes": None,
            "fetched_bytes": 0,
            "copied_files": 1,
        },
        {
            "model": "on-hosts",
            "source": "host",
            "revision": None,
            "path": "/data/model/Qwen3-8B",
            "bytes": 300,
            "fetched_bytes": 0,
            "copied_files": 0,
        },
    ]
