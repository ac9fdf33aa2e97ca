"""Container settings from real plans and the driver paths npu_facts finds on emulated hosts."""

import json

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._replica import (
    LABEL_PREFIX,
    ContainerSpecError,
    container_name,
    container_spec,
    replica_changes,
    replica_specs,
    replicas_deployed,
    replicas_running,
    rollout_steps,
    rollout_wave,
    rollout_waves,
)
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import profile_model
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan import plan
from builders import chip
from emulated_host import emulated_host, profile_named, run
from model_checkpoints import fixture_dir

KEY_FILE = "/etc/npu-fleet/secrets/api-key"


@pytest.fixture(scope="module")
def placements():
    """A real plan: chips 0-4 busy on an 8 x 910B4 host, Qwen3-8B TP 1 and TP 2."""
    chips = [chip(number) for number in range(8)]
    for item in chips[:5]:
        item["processes"] = [{"pid": 4242, "name": "python3", "memory_mb": 3000}]
    profile = profile_model(fixture_dir("Qwen__Qwen3-8B"))
    models = [
        {"name": "qwen3-8b", "profile": profile, "replicas": 1, "image": "quay.io/ascend/vllm-ascend:v0.13.0", "backend": "vllm"},
        {
            "name": "qwen3 8b/tp2",
            "profile": profile,
            "tensor_parallel_size": 2,
            "image": "npu-fleet/transformers-server:abc",
            "backend": "transformers",
        },
    ]
    result = plan({"a2": {"chips": chips}}, models)
    assert not result["unplaced"]
    return dict((item["model"], item) for item in result["placements"])


@pytest.fixture()
def mounts(tmp_path, monkeypatch, capsys):
    """npu_facts' driver_mounts of the emulated 8 x 910B4 host."""
    facts = run(capsys, emulated_host(tmp_path, monkeypatch, profile_named("a2-910b4-8x32g")))["ansible_facts"]["npu"]
    return facts["driver_mounts"]


def test_vllm_container_gets_exactly_its_chips_counted_from_zero(placements, mounts):
    placed = placements["qwen3-8b"]
    spec = container_spec(
        placed, "/data/models/qwen3-8b", mounts, {"api_key": "s3cret", "api_key_file": KEY_FILE, "bind_address": "10.0.0.5"}
    )
    (device,) = [item for item in spec["devices"] if "davinci" in item and "manager" not in item]
    assert device == "%s:%s:rwm" % (placed["devices"][0], placed["devices"][0])
    assert placed["devices"][0] != "/dev/davinci0"  # chips 0-4 are busy: the host id is not the container id
    assert spec["env"]["ASCEND_RT_VISIBLE_DEVICES"] == "0"
    assert {"/dev/davinci_manager:/dev/davinci_manager:rwm", "/dev/devmm_svm:/dev/devmm_svm:rwm", "/dev/hisi_hdc:/dev/hisi_hdc:rwm"} <= set(
        spec["devices"]
    )
    assert spec["published_ports"] == ["10.0.0.5:%d:8000" % placed["port"]]
    assert spec["network_mode"] == "bridge"
    command = spec["command"]
    assert command[:3] == ["vllm", "serve", "/models/qwen3-8b"]
    flags = dict(zip(command[3::2], command[4::2]))
    assert flags["--served-model-name"] == "qwen3-8b" and flags["--port"] == "8000"
    assert flags["--max-model-len"] == str(placed["max_model_len"])
    assert flags["--tensor-parallel-size"] == "1"
    assert float(flags["--gpu-memory-utilization"]) == placed["gpu_memory_utilization"]
    # The key is a read-only file mount, read into the vLLM process's environment by the entrypoint: it is in
    # no setting docker inspect shows, and not on the command line.
    assert "--api-key" not in command and "s3cret" not in json.dumps(spec)
    assert "%s:/run/secrets/npu-fleet-api-key:ro" % KEY_FILE in spec["volumes"]
    assert spec["entrypoint"][:2] == ["/bin/sh", "-c"] and 'exec "$@"' in spec["entrypoint"][2]
    assert spec["security_opts"] == ["no-new-privileges"]


def test_driver_paths_the_host_has_are_mounted_read_only_and_missing_ones_never(placements, mounts):
    assert any(mounts.values()) and set(mounts)  # the emulator has the driver tree
    spec = container_spec(placements["qwen3-8b"], "/data/models/qwen3-8b", mounts)
    mounted = dict((item.split(":")[0], item) for item in spec["volumes"])
    for path, exists in mounts.items():
        if exists:
            assert mounted[path] == "%s:%s:ro" % (path, path)
        else:
            assert path not in mounted
    assert mounted["/data/models/qwen3-8b"] == "/data/models/qwen3-8b:/models/qwen3-8b:ro"
    assert any(path.endswith("driver/lib64") for path in mounted)


def test_broken_host_without_fwkacllib_gets_no_fwkacllib_mount(placements, tmp_path, monkeypatch, capsys):
    facts = run(capsys, emulated_host(tmp_path, monkeypatch, profile_named("broken-910b4")))["ansible_facts"]["npu"]
    spec = container_spec(placements["qwen3-8b"], "/m", facts["driver_mounts"])
    assert not any("fwkacllib" in item for item in spec["volumes"])


def test_transformers_container_runs_the_server_with_its_settings(placements, mounts):
    placed = placements["qwen3 8b/tp2"]
    spec = container_spec(placed, "/data/m", mounts, {"api_key": "k2", "api_key_file": KEY_FILE, "dtype": "bfloat16"})
    assert spec["name"] == "npu-fleet-qwen3-8b-tp2-0"
    assert spec["command"] is None
    env = spec["env"]
    assert env["NPU_SERVE_MODEL"] == "/models/qwen3-8b-tp2" and env["NPU_SERVE_SERVED_MODEL_NAME"] == "qwen3 8b/tp2"
    assert env["NPU_SERVE_MAX_MODEL_LEN"] == str(placed["max_model_len"]) and env["NPU_SERVE_DTYPE"] == "bfloat16"
    assert env["NPU_SERVE_API_KEY_FILE"] == "/run/secrets/npu-fleet-api-key" and env["ASCEND_RT_VISIBLE_DEVICES"] == "0,1"
    assert "k2" not in json.dumps(spec) and spec["entrypoint"] is None
    assert len([item for item in spec["devices"] if item.split(":")[0] in placed["devices"]]) == 2


def test_ascend_runtime_mode_names_host_ids_and_mounts_nothing_itself(placements, mounts):
    placed = placements["qwen3 8b/tp2"]
    spec = container_spec(placed, "/data/m", mounts, {"use_ascend_runtime": True})
    host_ids = ",".join(device.replace("/dev/davinci", "") for device in placed["devices"])
    assert spec["runtime"] == "ascend" and spec["env"]["ASCEND_VISIBLE_DEVICES"] == host_ids
    assert spec["env"]["ASCEND_RT_VISIBLE_DEVICES"] == "0,1"
    assert spec["devices"] == [] and spec["volumes"] == ["/data/m:/models/qwen3-8b-tp2:ro"]


def test_labels_round_trip_into_the_planners_current_input(placements, mounts):
    containers = []
    for placed in placements.values():
        spec = container_spec(placed, "/m", mounts)
        containers.append({"Names": [spec["name"]], "Labels": spec["labels"]})
    containers.append({"Names": ["someone-else"], "Labels": {"maintainer": "x"}})
    current = replicas_running("a2", containers)
    assert current == sorted(
        (
            {"model": p["model"], "replica": p["replica"], "host": "a2", "devices": p["devices"], "port": p["port"]}
            for p in placements.values()
        ),
        key=lambda item: (item["model"], item["replica"]),
    )


def test_a_changed_plan_changes_the_hash_and_the_secret_does_not(placements, mounts):
    placed = placements["qwen3-8b"]
    first = container_spec(placed, "/m", mounts, {"api_key": "a", "api_key_file": KEY_FILE})["labels"][LABEL_PREFIX + "spec-hash"]
    assert container_spec(placed, "/m", mounts, {"api_key": "b", "api_key_file": KEY_FILE})["labels"][LABEL_PREFIX + "spec-hash"] == first
    moved = dict(placed, port=placed["port"] + 1)
    assert container_spec(moved, "/m", mounts, {"api_key": "a", "api_key_file": KEY_FILE})["labels"][LABEL_PREFIX + "spec-hash"] != first


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"image": None}, "no image"),
        ({"devices": ["/dev/sda"]}, "is not /dev/davinciN"),
        ({"devices": []}, "no devices"),
        ({"backend": "mindie"}, "unknown backend"),
    ],
)
def test_bad_placements_name_the_model(placements, change, fragment):
    with pytest.raises(ContainerSpecError) as error:
        container_spec(dict(placements["qwen3-8b"], **change), "/m", {})
    assert fragment in str(error.value) and "qwen3-8b" in str(error.value)


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"extra_args": ["--port=9000"]}, "--port"),
        ({"extra_args": [5]}, "must be strings"),
        ({"env": {"ASCEND_RT_VISIBLE_DEVICES": "6"}}, "ASCEND_RT_VISIBLE_DEVICES"),
    ],
)
def test_options_that_would_undo_the_plan_are_refused(placements, options, fragment):
    with pytest.raises(ContainerSpecError, match=fragment):
        container_spec(placements["qwen3-8b"], "/m", {}, options)


def test_relative_model_path_and_unparseable_labels():
    with pytest.raises(ContainerSpecError, match="absolute"):
        container_spec(
            {"model": "m", "replica": 0, "port": 1, "image": "i", "backend": "vllm", "devices": ["/dev/davinci0"]}, "models/m", {}
        )
    bad_labels = {
        LABEL_PREFIX + "managed": "true",
        LABEL_PREFIX + "model": "m",
        LABEL_PREFIX + "replica": "zero",
        LABEL_PREFIX + "devices": "",
        LABEL_PREFIX + "port": "1",
    }
    bad = {"Names": ["npu-fleet-m-0"], "Labels": bad_labels}
    with pytest.raises(ContainerSpecError, match="npu-fleet-m-0"):
        replicas_running("h", [bad])
    assert container_name("Qwen/Qwen3 8B", 2) == "npu-fleet-Qwen-Qwen3-8B-2"


def container_changes(specs, running, catalogue, prune=False):
    """replace as names, as the first wave's filter returned them; keep is checked on its own."""
    changes = replica_changes(specs, running, catalogue, prune)
    assert all(item["previous"] == item["name"] + "-previous" for item in changes["replace"])
    return {"replace": [item["name"] for item in changes["replace"]], "remove": changes["remove"]}


def test_changes_replace_only_containers_whose_settings_changed_and_remove_what_moved(placements, mounts):
    specs = [container_spec(placements[model], "/m", mounts) for model in ("qwen3-8b", "qwen3 8b/tp2")]
    running = [{"Names": ["/" + spec["name"]], "Labels": dict(spec["labels"]), "State": "running"} for spec in specs]
    catalogue = ["qwen3-8b", "qwen3 8b/tp2"]
    assert container_changes(specs, running, catalogue) == {"replace": [], "remove": []}
    assert replica_changes(specs, running, catalogue)["keep"] == sorted(spec["name"] for spec in specs)
    assert replica_changes(specs, running, catalogue)["start"] == []

    moved = dict(placements["qwen3-8b"], port=placements["qwen3-8b"]["port"] + 1)
    changed = [container_spec(moved, "/m", mounts)] + specs[1:]
    assert container_changes(changed, running, catalogue) == {"replace": ["npu-fleet-qwen3-8b-0"], "remove": []}

    elsewhere = {"Names": ["/npu-fleet-qwen3-8b-5"], "Labels": dict(specs[0]["labels"], **{LABEL_PREFIX + "replica": "5"})}
    dropped = {"Names": ["/npu-fleet-old-0"], "Labels": dict(specs[0]["labels"], **{LABEL_PREFIX + "model": "old"})}
    kept = {"Names": ["/npu-fleet-qwen3-8b-0-previous"], "Labels": dict(specs[0]["labels"])}
    extra = running + [elsewhere, dropped, kept]
    assert container_changes(specs, extra, catalogue) == {"replace": [], "remove": ["npu-fleet-qwen3-8b-5"]}
    assert container_changes(specs, extra, catalogue, prune=True) == {"replace": [], "remove": ["npu-fleet-old-0", "npu-fleet-qwen3-8b-5"]}
    assert replica_changes(specs, extra, catalogue, prune=True)["remove_replicas"] == [
        {"name": "npu-fleet-old-0", "model": "old"},
        {"name": "npu-fleet-qwen3-8b-5", "model": "qwen3-8b"},
    ]


def _deployed(placements, mounts, replaced=()):
    specs = [container_spec(placements[model], "/m", mounts) for model in ("qwen3-8b", "qwen3 8b/tp2")]
    started = [{"item": spec, "changed": spec["name"] in replaced} for spec in specs]
    return replicas_deployed(specs, started, list(replaced))


def test_the_deployed_record_is_read_from_the_labels_written(placements, mounts):
    deployed = _deployed(placements, mounts, replaced=["npu-fleet-qwen3-8b-0"])
    first = dict((item["model"], item) for item in deployed)["qwen3-8b"]
    placed = placements["qwen3-8b"]
    assert first["port"] == placed["port"] and first["devices"] == placed["devices"] and first["replica"] == 0
    assert first["max_model_len"] == placed["max_model_len"] and first["backend"] == "vllm"
    assert first["changed"] is True and first["previous"] == "npu-fleet-qwen3-8b-0-previous"
    assert dict((item["model"], item) for item in deployed)["qwen3 8b/tp2"]["previous"] is None


KV_LOG = "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine."


def test_rollout_restores_a_failed_replacement_and_drops_the_copy_of_a_healthy_one(placements, mounts):
    deployed = _deployed(placements, mounts, replaced=["npu-fleet-qwen3-8b-0", "npu-fleet-qwen3-8b-tp2-0"])
    by_model = dict((item["model"], item) for item in deployed)
    probes = [
        {
            "name": by_model["qwen3-8b"]["name"],
            "healthy": False,
            "stage": "health",
            "message": "container exited",
            "state": {"status": "exited", "exit_code": 1},
            "log_tail": ["INFO starting", KV_LOG],
        },
        {"name": by_model["qwen3 8b/tp2"]["name"], "healthy": True, "stage": "done", "ttft_ms": 80.5},
    ]
    steps = rollout_steps(deployed, probes, rollback=True)
    assert steps["restore"] == [{"name": "npu-fleet-qwen3-8b-0", "previous": "npu-fleet-qwen3-8b-0-previous"}]
    assert steps["drop_previous"] == ["npu-fleet-qwen3-8b-tp2-0-previous"]
    assert steps["failed"] == ["npu-fleet-qwen3-8b-0"]
    failed, healthy = steps["results"]
    assert failed["rolled_back"] is True and failed["state"]["exit_code"] == 1 and failed["log_tail"][-1] == KV_LOG
    assert failed["diagnosis"]["code"] == "kv_cache"  # diagnosed from the tail when the probe gave no diagnosis
    assert healthy["healthy"] is True and healthy["ttft_ms"] == 80.5 and healthy["rolled_back"] is False
    assert healthy["log_tail"] == [] and healthy["diagnosis"] is None


def test_without_rollback_or_without_a_previous_copy_nothing_is_restored(placements, mounts):
    deployed = _deployed(placements, mounts, replaced=["npu-fleet-qwen3-8b-0"])
    probes = [{"name": item["name"], "healthy": False, "stage": "models", "message": "wrong name"} for item in deployed]
    assert rollout_steps(deployed, probes, rollback=False)["restore"] == []
    steps = rollout_steps(deployed, probes, rollback=True)
    assert [item["name"] for item in steps["restore"]] == ["npu-fleet-qwen3-8b-0"]  # the new tp2 replica had none
    assert sorted(steps["failed"]) == sorted(item["name"] for item in deployed)


def test_check_mode_probes_nothing_and_yields_no_steps(placements, mounts):
    deployed = _deployed(placements, mounts, replaced=["npu-fleet-qwen3-8b-0"])
    assert rollout_steps(deployed, []) == {"restore": [], "drop_previous": [], "retire": [], "failed": [], "results": []}


def test_replica_specs_join_the_catalogue_and_refuse_a_model_it_lacks(placements, mounts):
    placed = [dict(item, host="a2") for item in placements.values()]
    catalogue = [
        {"name": "qwen3-8b", "path": "/ctl/q", "host_path": "/data/q", "serve": {"extra_args": ["--enforce-eager"]}},
        {"name": "qwen3 8b/tp2", "path": "/data/q2"},
    ]
    specs = replica_specs(
        placed + [dict(placed[0], host="elsewhere")],
        "a2",
        catalogue,
        mounts,
        {"extra_args": ["--seed=1"]},
        images={"qwen3 8b/tp2": "npu-fleet/transformers-server:0123"},
    )
    assert [spec["name"] for spec in specs] == ["npu-fleet-qwen3-8b-0", "npu-fleet-qwen3-8b-tp2-0"]
    assert specs[0]["volumes"][0] == "/data/q:/models/qwen3-8b:ro" and specs[0]["command"][-1] == "--enforce-eager"
    assert specs[1]["image"] == "npu-fleet/transformers-server:0123" and specs[1]["volumes"][0].startswith("/data/q2:")
    with pytest.raises(ContainerSpecError, match="a2: model qwen3-8b is in the plan but not in the catalogue"):
        replica_specs(placed, "a2", catalogue[1:], mounts)


def test_a_stopped_container_or_a_new_api_key_is_started_again_without_the_key_in_a_label(placements, mounts):
    specs = [container_spec(placements["qwen3-8b"], "/m", mounts, {"api_key": "key-one", "api_key_file": KEY_FILE})]
    exited = [{"Names": ["/npu-fleet-qwen3-8b-0"], "Labels": dict(specs[0]["labels"]), "State": "exited"}]
    changes = replica_changes(specs, exited, ["qwen3-8b"])
    assert changes["keep"] == [] and changes["replace"] == [] and changes["start"] == ["npu-fleet-qwen3-8b-0"]
    assert changes["start_models"] == ["qwen3-8b"]
    rotated = [container_spec(placements["qwen3-8b"], "/m", mounts, {"api_key": "key-two", "api_key_file": KEY_FILE})]
    running = [dict(exited[0], State="running")]
    changes = replica_changes(rotated, running, ["qwen3-8b"])
    assert [item["name"] for item in changes["replace"]] == ["npu-fleet-qwen3-8b-0"] and changes["start"] == ["npu-fleet-qwen3-8b-0"]
    labels = json.dumps([spec["labels"] for spec in specs + rotated])
    assert "key-one" not in labels and "key-two" not in labels
    assert replica_changes(specs, running, ["qwen3-8b"])["keep"] == ["npu-fleet-qwen3-8b-0"]


def test_an_atlas_950_container_gets_no_visible_devices_variable(placements, mounts):
    """vllm-ascend PR #12959: on A5, with a subset of NPUs mounted, ASCEND_RT_VISIBLE_DEVICES must stay unset."""
    placed = dict(placements["qwen3-8b"], chip_family="950")
    spec = container_spec(placed, "/data/models/qwen3-8b", mounts)
    assert "ASCEND_RT_VISIBLE_DEVICES" not in spec["env"]
    assert "%s:%s:rwm" % (placed["devices"][0], placed["devices"][0]) in spec["devices"]  # still only its own chip
    assert container_spec(placements["qwen3-8b"], "/m", mounts)["env"]["ASCEND_RT_VISIBLE_DEVICES"] == "0"


def test_replaced_containers_are_set_aside_only_with_rollback(placements, mounts):
    running_spec = container_spec(placements["qwen3-8b"], "/m", mounts)
    running = [{"Names": ["/" + running_spec["name"]], "Labels": dict(running_spec["labels"]), "State": "running"}]
    moved = [container_spec(dict(placements["qwen3-8b"], port=placements["qwen3-8b"]["port"] + 1), "/m", mounts)]
    with_rollback = replica_changes(moved, running, ["qwen3-8b"], rollback=True)
    assert with_rollback["set_aside"] == [
        {
            "name": "npu-fleet-qwen3-8b-0",
            "previous": "npu-fleet-qwen3-8b-0-previous",
            "model": "qwen3-8b",
            "replica": 0,
            "surge": False,  # same chip: the successor cannot run beside it
            "port": placements["qwen3-8b"]["port"] + 1,
            "from_port": placements["qwen3-8b"]["port"],
            "from_devices": placements["qwen3-8b"]["devices"],
            "from_image": None,  # the test container lists no image
            "from_max_model_len": placements["qwen3-8b"]["max_model_len"],
        }
    ]
    # A replaced replica rolls (rollout_waves); it is not started with the new ones.
    assert with_rollback["start"] == ["npu-fleet-qwen3-8b-0"] and with_rollback["start_now"] == []
    without = replica_changes(moved, running, ["qwen3-8b"], rollback=False)
    assert without["set_aside"] == [] and without["replace"] == with_rollback["replace"]


def _running(spec, state="running"):
    return {"Names": ["/" + spec["name"]], "Labels": dict(spec["labels"]), "State": state}


def test_a_changed_replica_with_a_surge_room_gets_its_successor_there(placements, mounts):
    placed = dict(placements["qwen3-8b"], surge={"devices": ["/dev/davinci1"], "port": 18001})
    old = container_spec(placements["qwen3-8b"], "/m", mounts, {"dtype": "float16"})
    models = [{"name": "qwen3-8b", "path": "/m"}]

    def specs(containers, surge=True, placement=None):
        return replica_specs([dict(placement or placed, host="h1")], "h1", models, mounts, {}, containers=containers, surge=surge)

    [successor] = specs([_running(old)])
    assert successor["labels"][LABEL_PREFIX + "devices"] == "/dev/davinci1"
    assert successor["published_ports"] == ["0.0.0.0:18001:8000"] and successor["env"]["ASCEND_RT_VISIBLE_DEVICES"] == "0"
    changes = replica_changes([successor], [_running(old)], ["qwen3-8b"], rollback=True)
    assert [(item["name"], item["surge"], item["port"]) for item in changes["set_aside"]] == [("npu-fleet-qwen3-8b-0", True, 18001)]
    assert (changes["set_aside"][0]["from_port"], changes["set_aside"][0]["from_devices"]) == (
        placements["qwen3-8b"]["port"],
        placements["qwen3-8b"]["devices"],
    )
    # Without rollback nothing is set aside, so nothing runs beside: the replacement is in place.
    assert changes["replace"][0]["surge"] is True
    assert replica_changes([successor], [_running(old)], ["qwen3-8b"], rollback=False)["replace"][0]["surge"] is False
    # In place: an unchanged container, a stopped one, surge off, a room that overlaps the running container.
    same = container_spec(placements["qwen3-8b"], "/m", mounts)
    assert specs([_running(same)]) == [same]
    assert specs([_running(old, "exited")]) == [same]
    assert specs([_running(old)], surge=False) == [same]
    stale = dict(placed, surge={"devices": placements["qwen3-8b"]["devices"], "port": 18007})
    assert specs([_running(old)], placement=stale) == [same]
    assert specs([]) == [same]


def test_a_healthy_surge_successor_retires_its_previous_container_a_failed_one_restores_it(placements, mounts):
    specs = [container_spec(placements[model], "/m", mounts) for model in ("qwen3-8b", "qwen3 8b/tp2")]
    started = [{"item": spec, "changed": True} for spec in specs]
    names = [spec["name"] for spec in specs]
    aside = [{"name": names[0], "surge": True, "from_port": 18001, "from_devices": ["/dev/davinci1"]}]
    deployed = replicas_deployed(specs, started, names, surged=aside)
    assert [item["surge"] for item in deployed] == [True, False]
    probes = [{"name": name, "healthy": True} for name in names]
    steps = rollout_steps(deployed, probes)
    assert steps["retire"] == [
        {"name": names[0], "previous": names[0] + "-previous", "model": "qwen3-8b", "port": placements["qwen3-8b"]["port"]}
    ]
    assert steps["drop_previous"] == [names[1] + "-previous"]  # in place: the copy is stopped, dropped at once
    assert [result["surge"] for result in steps["results"]] == [True, False]
    failed = rollout_steps(deployed, [{"name": names[0], "healthy": False, "log_tail": [KV_LOG]}])
    assert failed["restore"] == [{"name": names[0], "previous": names[0] + "-previous"}] and failed["retire"] == []
    # The gateway and the report find the restored replica where it always ran, not in the failed successor's room.
    [result] = failed["results"]
    assert (result["rolled_back"], result["port"], result["devices"]) == (True, 18001, ["/dev/davinci1"])


def _fleet_changes(placements, mounts):
    """Three hosts running qwen3-8b replicas 0-3 and one tp2 replica; the settings of every qwen3-8b replica change."""
    changes = {}
    layout = {"a2-01": [0, 2], "a2-02": [1], "a2-03": [3]}
    for host, replicas in layout.items():
        old = [container_spec(dict(placements["qwen3-8b"], replica=number), "/m", mounts) for number in replicas]
        if host == "a2-01":
            old.append(container_spec(placements["qwen3 8b/tp2"], "/m", mounts))
        running = [{"Names": ["/" + spec["name"]], "Labels": dict(spec["labels"]), "State": "running"} for spec in old]
        new = [container_spec(dict(placements["qwen3-8b"], replica=number, max_model_len=4096), "/m", mounts) for number in replicas]
        if host == "a2-01":
            new.append(container_spec(dict(placements["qwen3 8b/tp2"], image="npu-fleet/transformers-server:def"), "/m", mounts))
        changes[host] = replica_changes(new, running, ["qwen3-8b", "qwen3 8b/tp2"], rollback=True)
    return changes


def test_rollout_waves_replace_one_replica_of_each_model_at_a_time_across_hosts(placements, mounts):
    waves = rollout_waves(_fleet_changes(placements, mounts))
    assert [[(item["host"], item["name"]) for item in wave] for wave in waves] == [
        [("a2-01", "npu-fleet-qwen3-8b-0"), ("a2-01", "npu-fleet-qwen3-8b-tp2-0")],
        [("a2-02", "npu-fleet-qwen3-8b-1")],
        [("a2-01", "npu-fleet-qwen3-8b-2")],
        [("a2-03", "npu-fleet-qwen3-8b-3")],
    ]
    for wave in waves:
        models = [item["model"] for item in wave]
        assert len(models) == len(set(models))  # never two replicas of one model down at once
    assert all(item["previous"] == item["name"] + "-previous" for wave in waves for item in wave)


def test_a_failed_model_leaves_the_later_waves_and_a_host_sees_only_its_replicas(placements, mounts):
    waves = rollout_waves(_fleet_changes(placements, mounts))
    assert [item["name"] for item in rollout_wave(waves, 0, host="a2-02")] == []
    assert [item["name"] for item in rollout_wave(waves, 1, host="a2-02")] == ["npu-fleet-qwen3-8b-1"]
    # qwen3-8b failed in wave 0: replicas 1-3 stay on their previous containers.
    assert rollout_wave(waves, 1, failed_models=["qwen3-8b"]) == []
    assert rollout_wave(waves, 3, failed_models=["qwen3-8b"], host="a2-03") == []
    assert [item["name"] for item in rollout_wave(waves, 3, failed_models=["qwen3 8b/tp2"])] == ["npu-fleet-qwen3-8b-3"]
    assert rollout_wave(waves, 7) == [] and rollout_waves({}) == []


def test_containers_get_a_stop_grace_period_the_drain_can_use(placements, mounts):
    assert container_spec(placements["qwen3-8b"], "/m", mounts)["stop_timeout"] == 30
    longer = container_spec(placements["qwen3-8b"], "/m", mounts, {"stop_timeout": 120})
    assert longer["stop_timeout"] == 120
    assert (
        longer["labels"][LABEL_PREFIX + "spec-hash"]
        != container_spec(placements["qwen3-8b"], "/m", mounts)["labels"][LABEL_PREFIX + "spec-hash"]
    )


def test_a_replacement_its_rollout_never_reached_is_recorded_where_its_container_still_runs(placements, mounts):
    old = container_spec(placements["qwen3-8b"], "/m", mounts, {"dtype": "float16"})
    running = [dict(_running(old), Image="quay.io/ascend/vllm-ascend:v0.13.0")]
    successor = container_spec(dict(placements["qwen3-8b"], devices=["/dev/davinci1"], port=18001), "/m", mounts)
    [item] = replica_changes([successor], running, ["qwen3-8b"], rollback=True)["replace"]
    assert (item["from_port"], item["from_image"]) == (placements["qwen3-8b"]["port"], "quay.io/ascend/vllm-ascend:v0.13.0")
    # Not started (its model failed at an earlier replica): the probe must find the old container, not the room.
    [record] = replicas_deployed([successor], [], [], replacements=[item])
    assert (record["port"], record["devices"], record["image"]) == (
        placements["qwen3-8b"]["port"],
        placements["qwen3-8b"]["devices"],
        "quay.io/ascend/vllm-ascend:v0.13.0",
    )
    [started] = replicas_deployed([successor], [{"item": successor, "changed": True}], [], replacements=[item])
    assert (started["port"], started["devices"]) == (18001, ["/dev/davinci1"])


def test_a_key_without_a_key_file_or_in_env_is_refused(placements, mounts):
    with pytest.raises(ContainerSpecError, match="no absolute api_key_file"):
        container_spec(placements["qwen3-8b"], "/m", mounts, {"api_key": "k"})
    with pytest.raises(ContainerSpecError, match="env sets VLLM_API_KEY, which would put the key in the container's settings"):
        container_spec(placements["qwen3-8b"], "/m", mounts, {"env": {"VLLM_API_KEY": "k"}})


def test_the_vllm_entrypoint_hands_the_file_to_vllm_and_nothing_else(tmp_path):
    """The real shell runs the real entrypoint script (with the mount path pointed at a temporary file)."""
    import subprocess

    from ansible_collections.npu.fleet.plugins.module_utils._replica import API_KEY_MOUNT, VLLM_KEY_ENTRYPOINT

    key = tmp_path / "api-key"
    key.write_text("s3cret-key")
    script = VLLM_KEY_ENTRYPOINT[2].replace(API_KEY_MOUNT, str(key))
    out = subprocess.run(
        VLLM_KEY_ENTRYPOINT[:2] + [script, VLLM_KEY_ENTRYPOINT[3], "sh", "-c", 'echo "key=$VLLM_API_KEY args=$0 $1"', "vllm", "serve"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "key=s3cret-key args=vllm serve"
    key.unlink()
    missing = subprocess.run(
        VLLM_KEY_ENTRYPOINT[:2] + [script, VLLM_KEY_ENTRYPOINT[3], "true"], capture_output=True, text=True, check=False
    )
    assert missing.returncode != 0  # no key file: the container fails instead of serving without a key


def test_an_image_model_on_the_transformers_server_gets_room_for_images(placements, mounts):
    """The profile of the real Qwen3-VL config says vision; its Transformers replica takes image-sized bodies."""
    profile = profile_model(fixture_dir("Qwen__Qwen3-VL-8B-Instruct"))
    assert profile["vision"] is True and profile_model(fixture_dir("Qwen__Qwen3-8B"))["vision"] is False
    placed = dict(placements["qwen3 8b/tp2"], host="a2")
    for vision, expected in ((profile, str(24 * 1024 * 1024)), ({}, None)):
        models = [{"name": "qwen3 8b/tp2", "path": "/m", "profile": vision}]
        [spec] = replica_specs([placed], "a2", models, mounts, {})
        assert spec["env"].get("NPU_SERVE_MAX_BODY_BYTES") == expected
