"""npu.fleet.model_catalogue: profiles on the controller, jobs for hosts and hubs, and their results merged back."""

import os

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._catalogue import CatalogueError, validate_catalogue, with_host_paths
from ansible_collections.npu.fleet.plugins.module_utils._catalogue_profiles import (
    merge_profiles,
    missing_profiles,
    pick_profile_host,
    profile_catalogue,
)
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import profile_model
from model_checkpoints import fixture_dir

HOSTS = ["a2-01", "a2-02", "duo-01"]
LABELS = {"a2-01": {"chip": "910b"}, "a2-02": {"chip": "910b", "rack": "r2"}, "duo-01": {"chip": "310p"}}
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def profile(catalogue):
    return profile_catalogue(catalogue, HOSTS, LABELS, profile_model, os.path.isdir)


def test_what_the_controller_holds_is_profiled_here_and_the_rest_gets_a_job_on_a_host_or_the_hub():
    catalogue = with_host_paths(
        validate_catalogue(
            [
                {"name": "q8", "path": fixture_dir("Qwen__Qwen3-8B")},
                {"name": "copied", "source": {"type": "controller", "path": fixture_dir("Qwen__Qwen3-8B")}},
                {"name": "ds", "path": "/data/models/DeepSeek-V3", "profile_host": "storage01"},
                {"name": "on-hosts", "host_path": "/data/models/Qwen3-4B", "labels": {"rack": "r2"}},
                {"name": "hub", "source": {"type": "hub", "repo": "Qwen/Qwen3-8B", "revision": COMMIT}, "hosts": ["duo-01"]},
                {"name": "given", "profile": {"architecture": "X"}},
            ]
        )
    )
    profiled, directory_jobs, hub_jobs = profile(catalogue)
    by_name = dict((entry["name"], entry) for entry in profiled)
    assert by_name["q8"]["profile"]["architecture"] == "Qwen3ForCausalLM"
    assert by_name["copied"]["profile"]["architecture"] == "Qwen3ForCausalLM"
    assert by_name["given"]["profile"] == {"architecture": "X"}
    assert directory_jobs == [
        {"name": "ds", "host": "storage01", "path": "/data/models/DeepSeek-V3"},
        # No profile_host: the first host its labels allow.
        {"name": "on-hosts", "host": "a2-02", "path": "/data/models/Qwen3-4B"},
    ]
    assert hub_jobs == [
        {
            "name": "hub",
            "host": "duo-01",
            "token_var": "npu_fleet_hub_token",
            "source": {"hub": "huggingface", "repo": "Qwen/Qwen3-8B", "revision": COMMIT},
        }
    ]
    assert by_name["hub"]["host_path"] == "/data/models/hub"  # npu_fleet_model_root/<name>


def test_no_host_may_run_the_model_is_one_clear_error():
    entry = validate_catalogue([{"name": "lonely", "host_path": "/m", "labels": {"chip": "a3"}}])[0]
    with pytest.raises(CatalogueError) as error:
        pick_profile_host(entry, HOSTS, LABELS)
    assert str(error.value).startswith("model lonely: no host of npu_hosts may run it")
    assert "set profile_host" in str(error.value)


def test_results_are_merged_by_model_name_and_a_hub_profile_keeps_what_to_download():
    catalogue = validate_catalogue(
        [
            {"name": "ds", "path": "/data/models/DeepSeek-V3", "profile_host": "storage01"},
            {"name": "hub", "source": {"type": "hub", "repo": "Qwen/Qwen3-8B", "revision": COMMIT}},
        ]
    )
    files = [{"name": "model.safetensors", "size": 8, "sha256": "ab" * 32}]
    merged = merge_profiles(
        catalogue,
        [
            {"item": {"name": "ds", "path": "/data/models/DeepSeek-V3", "host": "storage01"}, "profile": {"architecture": "DeepseekV3"}},
            {"item": {"name": "skipped"}, "skipped": True},
            {
                "item": {"name": "hub", "host": "a2-01", "source": {"repo": "Qwen/Qwen3-8B"}},
                "profile": {"architecture": "Qwen3ForCausalLM"},
                "commit": COMMIT,
                "revision": COMMIT,
                "files": files,
                "bytes": 8,
            },
        ],
    )
    assert merged[0]["profile"] == {"architecture": "DeepseekV3"}
    assert merged[1]["profile"]["hub"] == {"commit": COMMIT, "revision": COMMIT, "files": files, "bytes": 8}
    assert missing_profiles(merged) is None
    assert missing_profiles(validate_catalogue([{"name": "x", "host_path": "/m"}])) == (
        "no profile for x: its profile job did not run (check the task output above for the host it ran on)"
    )


def test_a_checkpoint_that_cannot_be_profiled_names_the_model_the_path_and_the_fix(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    catalogue = validate_catalogue([{"name": "broken", "path": str(tmp_path)}])
    with pytest.raises(CatalogueError) as error:
        profile(catalogue)
    assert "model broken: cannot profile %s on the controller" % tmp_path in str(error.value)
    assert "config.json" in str(error.value) and "profile_host" in str(error.value)
