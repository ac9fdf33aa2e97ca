"""npu.fleet.model_catalogue: profiles on the controller, jobs for profile hosts, and their results merged back."""

import pytest

from ansible_collections.npu.fleet.plugins.action import model_catalogue as action
from ansible_collections.npu.fleet.plugins.module_utils._catalogue import CatalogueError, validate_catalogue
from model_checkpoints import fixture_dir


def test_paths_are_profiled_here_and_profile_hosts_get_jobs():
    catalogue = validate_catalogue(
        [
            {"name": "q8", "path": fixture_dir("Qwen__Qwen3-8B")},
            {"name": "ds", "path": "/data/models/DeepSeek-V3", "profile_host": "storage01"},
            {"name": "given", "profile": {"architecture": "X"}},
        ]
    )
    profiled, jobs = action.profile_catalogue(catalogue, {})
    assert profiled[0]["profile"]["architecture"] == "Qwen3ForCausalLM"
    assert "profile" not in profiled[1] and profiled[2]["profile"] == {"architecture": "X"}
    assert jobs == [{"name": "ds", "path": "/data/models/DeepSeek-V3", "host": "storage01"}]


def test_results_from_profile_hosts_are_merged_by_model_name():
    remote = action._remote_profiles(
        [
            {
                "item": {"name": "ds", "path": "/data/models/DeepSeek-V3", "host": "storage01"},
                "profile": {"architecture": "DeepseekV3ForCausalLM"},
            },
            {"item": {"name": "skipped"}, "skipped": True},
        ]
    )
    catalogue = validate_catalogue([{"name": "ds", "path": "/data/models/DeepSeek-V3", "profile_host": "storage01"}])
    profiled, jobs = action.profile_catalogue(catalogue, remote)
    assert profiled[0]["profile"]["architecture"] == "DeepseekV3ForCausalLM" and jobs == []


def test_a_checkpoint_that_cannot_be_profiled_names_the_model_the_path_and_the_fix(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    catalogue = validate_catalogue([{"name": "broken", "path": str(tmp_path)}])
    with pytest.raises(CatalogueError) as error:
        action.profile_catalogue(catalogue, {})
    assert "model broken: cannot profile path %s on the controller" % tmp_path in str(error.value)
    assert "config.json" in str(error.value) and "profile_host" in str(error.value)
