"""What a replica may do: no capability, the group that owns the device nodes, the server as a non-root user.

The device facts come from npu_facts' own ``device_access`` over node owners,
groups and modes as real hosts have them: HwHiAiUser:HwHiAiUser 0660 (driver
install), root-only, world-writable (a udev rule), and unknown.
"""

import os
import stat

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._npu_discovery import device_access
from ansible_collections.npu.fleet.plugins.module_utils._replica import (
    LABEL_PREFIX,
    MANAGER_DEVICES,
    SERVER_UID,
    ContainerSpecError,
    container_spec,
    replica_specs,
    run_as,
    spec_hash,
)

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", ".."))
KEY_FILE = "/etc/npu-fleet/secrets/api-key"
SERVER_KEY_FILE = KEY_FILE + ".server"
CHIPS = ("/dev/davinci3", "/dev/davinci4")
HWHIAIUSER = 1000


def placement(backend, devices=CHIPS):
    image = "quay.io/ascend/vllm-ascend:v0.13.0" if backend == "vllm" else "npu-fleet/transformers-server:abc"
    return {"model": "m", "replica": 0, "host": "a2", "port": 18000, "image": image, "backend": backend, "devices": list(devices)}


def host_nodes(uid=HWHIAIUSER, gid=HWHIAIUSER, mode=0o660, chips=8, overrides=None):
    """device_access of a host with ``chips`` davinci nodes and the manager nodes, as npu_facts reports it."""
    paths = ["/dev/davinci%d" % number for number in range(chips)] + list(MANAGER_DEVICES)
    stats = dict((path, (uid, gid, stat.S_IFCHR | mode)) for path in paths)
    stats.update(overrides or {})
    return device_access(stats, {HWHIAIUSER: "HwHiAiUser", 0: "root"}.get)


def spec_for(backend, access, **options):
    merged = {"api_key": "k", "api_key_file": KEY_FILE, "server_api_key_file": SERVER_KEY_FILE, "device_access": access}
    merged.update(options)
    return container_spec(placement(backend), "/data/m", {}, merged)


# ---------------------------------------------------------------------------------------------- capabilities


@pytest.mark.parametrize("backend", ["vllm", "transformers"])
def test_every_replica_drops_all_capabilities_and_gets_none_back_on_a_real_host(backend):
    spec = spec_for(backend, host_nodes())
    assert spec["cap_drop"] == ["ALL"] and spec["cap_add"] == []
    assert spec["security_opts"] == ["no-new-privileges"]


def test_the_operators_capabilities_are_added_back_by_their_docker_names():
    spec = spec_for("vllm", host_nodes(), cap_add=["cap_sys_ptrace", "NET_RAW", "SYS_PTRACE"])
    assert spec["cap_drop"] == ["ALL"] and spec["cap_add"] == ["NET_RAW", "SYS_PTRACE"]


@pytest.mark.parametrize(
    "wanted, fragment", [(["ALL"], "ALL would give back"), (["SYS PTRACE"], "not one capability"), ("SYS_ADMIN", "a list")]
)
def test_capabilities_that_are_not_one_name_are_refused(wanted, fragment):
    with pytest.raises(ContainerSpecError, match=fragment):
        spec_for("vllm", host_nodes(), cap_add=wanted)


def test_a_changed_capability_set_changes_the_spec_hash_so_the_container_is_replaced():
    before = spec_for("vllm", host_nodes())["labels"][LABEL_PREFIX + "spec-hash"]
    assert spec_for("vllm", host_nodes())["labels"][LABEL_PREFIX + "spec-hash"] == before
    assert spec_for("vllm", host_nodes(), cap_add=["SYS_PTRACE"])["labels"][LABEL_PREFIX + "spec-hash"] != before


def test_the_reason_is_not_part_of_the_hash():
    spec = spec_for("transformers", host_nodes())
    assert spec_hash(dict(spec, run_as=dict(spec["run_as"], reason="reworded"))) == spec_hash(spec)


# ------------------------------------------------------------------------------------------ who it runs as


def test_on_a_real_host_the_server_runs_as_its_user_with_the_device_group():
    """HwHiAiUser:HwHiAiUser 0660 nodes (what the driver install makes): the group opens them."""
    spec = spec_for("transformers", host_nodes())
    assert spec["user"] == "%d:%d" % (SERVER_UID, SERVER_UID) and spec["groups"] == ["1000"]
    assert spec["run_as"]["uid"] == SERVER_UID and spec["run_as"]["fallback"] is False
    assert "1000 (HwHiAiUser)" in spec["run_as"]["reason"]
    # It cannot read the root-only key file: it mounts the copy its uid owns.
    assert "%s:/run/secrets/npu-fleet-api-key:ro" % SERVER_KEY_FILE in spec["volumes"]
    assert not any(item.startswith(KEY_FILE + ":") for item in spec["volumes"])
    assert spec["run_as"]["key_file"] == SERVER_KEY_FILE


def test_on_a_real_host_vllm_stays_root_and_gets_the_device_group_instead_of_dac_override():
    """Root without capabilities is neither owner nor in the group of HwHiAiUser:HwHiAiUser 0660 nodes."""
    spec = spec_for("vllm", host_nodes())
    assert spec["user"] is None and spec["groups"] == ["1000"] and spec["cap_add"] == []
    assert spec["run_as"] == {
        "uid": 0,
        "reason": "runs as the image's user (root) without capabilities, with group 1000 (HwHiAiUser)",
        "fallback": False,
        "key_file": KEY_FILE,
    }
    assert "%s:/run/secrets/npu-fleet-api-key:ro" % KEY_FILE in spec["volumes"]


def test_root_only_nodes_keep_the_server_root_and_say_why():
    spec = spec_for("transformers", host_nodes(uid=0, gid=0, mode=0o600))
    assert spec["user"] == "0:0" and spec["groups"] == [] and spec["cap_add"] == []
    assert spec["run_as"]["fallback"] is True
    assert spec["run_as"]["reason"] == "/dev/davinci3 is 0:0 (root) 0600, which uid %d with no group cannot open: runs as root" % SERVER_UID
    assert spec["run_as"]["key_file"] == KEY_FILE and "%s:/run/secrets/npu-fleet-api-key:ro" % KEY_FILE in spec["volumes"]


def test_nodes_of_the_root_group_are_not_handed_to_the_server():
    spec = spec_for("transformers", host_nodes(uid=0, gid=0, mode=0o660))
    assert spec["user"] == "0:0" and spec["groups"] == [] and spec["run_as"]["fallback"] is True


def test_world_writable_nodes_need_no_group():
    """A udev rule with MODE=0666 (seen on some hosts): anyone opens them."""
    spec = spec_for("transformers", host_nodes(uid=0, gid=0, mode=0o666))
    assert spec["user"] == "%d:%d" % (SERVER_UID, SERVER_UID) and spec["groups"] == [] and spec["cap_add"] == []


@pytest.mark.parametrize("backend", ["vllm", "transformers"])
def test_nodes_only_another_user_opens_get_dac_override_back_with_the_reason(backend):
    spec = spec_for(backend, host_nodes(mode=0o600))
    assert spec["cap_add"] == ["DAC_OVERRIDE"] and spec["run_as"]["uid"] == 0 and spec["run_as"]["fallback"] is True
    assert (
        "/dev/davinci3 is 1000:1000 (HwHiAiUser) 0600, which root without capabilities cannot open: gets DAC_OVERRIDE"
        in (spec["run_as"]["reason"])
    )


@pytest.mark.parametrize("access", [None, {}, host_nodes(chips=2)])
def test_unknown_nodes_get_dac_override_back_with_the_reason(access):
    """No facts (older facts, a saved npu-smi capture) or a planned node the host did not list."""
    spec = spec_for("transformers", access)
    assert spec["user"] == "0:0" and spec["cap_add"] == ["DAC_OVERRIDE"] and spec["run_as"]["fallback"] is True
    assert "/dev/davinci3" in spec["run_as"]["reason"] and "not known" in spec["run_as"]["reason"]


def test_a_manager_node_of_another_group_adds_that_group_too():
    access = host_nodes(overrides={"/dev/devmm_svm": (0, 44, stat.S_IFCHR | 0o660)})
    assert access["gid"] is None
    spec = spec_for("transformers", access)
    assert spec["user"] == "%d:%d" % (SERVER_UID, SERVER_UID) and spec["groups"] == ["44", "1000"]


def test_only_the_nodes_the_container_gets_count():
    """An owner-only node the replica is not given changes nothing."""
    spec = spec_for("transformers", host_nodes(overrides={"/dev/davinci0": (0, 0, stat.S_IFCHR | 0o600)}))
    assert spec["user"] == "%d:%d" % (SERVER_UID, SERVER_UID) and spec["run_as"]["fallback"] is False


def test_the_ascend_runtime_mounts_the_same_nodes_so_the_same_decision_holds():
    spec = spec_for("transformers", host_nodes(), use_ascend_runtime=True)
    assert spec["devices"] == [] and spec["user"] == "%d:%d" % (SERVER_UID, SERVER_UID) and spec["groups"] == ["1000"]


def test_a_non_root_server_with_a_key_needs_its_key_file():
    with pytest.raises(ContainerSpecError, match="server_api_key_file"):
        spec_for("transformers", host_nodes(), server_api_key_file=None)
    anonymous = spec_for("transformers", host_nodes(), api_key=None, server_api_key_file=None)
    assert anonymous["run_as"]["key_file"] is None and not any("npu-fleet-api-key" in item for item in anonymous["volumes"])


def test_run_as_is_pure_and_reads_only_the_given_nodes():
    access = host_nodes()
    decided = run_as("transformers", ["/dev/davinci0"] + list(MANAGER_DEVICES), access, server_uid=4242)
    assert decided["user"] == "4242:4242" and decided["groups"] == ["1000"] and decided["cap_add"] == []
    assert run_as("vllm", ["/dev/davinci0"], access)["user"] is None


def test_replica_specs_pass_the_role_options_through():
    models = [{"name": "m", "path": "/data/m", "serve": {}}]
    options = {"device_access": host_nodes(), "cap_add": ["SYS_PTRACE"], "server_api_key_file": SERVER_KEY_FILE}
    options.update(api_key="k", api_key_file=KEY_FILE)
    (spec,) = replica_specs([placement("transformers")], "a2", models, {}, options)
    assert spec["cap_add"] == ["SYS_PTRACE"] and spec["user"] == "%d:%d" % (SERVER_UID, SERVER_UID)


def test_the_server_image_runs_as_the_uid_the_spec_plans():
    """The Dockerfile's USER and the user it creates are SERVER_UID, and its home is where the caches go."""
    with open(os.path.join(REPO, "roles", "serve", "files", "transformers_server", "Dockerfile"), encoding="utf-8") as handle:
        lines = handle.read().replace("\\\n", "").splitlines()
    assert "USER %d:%d" % (SERVER_UID, SERVER_UID) in lines
    (create,) = [line for line in lines if line.startswith("RUN ") and "useradd" in line]
    assert "useradd -u %d -g %d" % (SERVER_UID, SERVER_UID) in create and "groupadd -g %d" % SERVER_UID in create
    assert "chown %d:0 /home/npu-fleet" % SERVER_UID in create
    assert any(line.startswith("ENV ") and "HOME=/home/npu-fleet" in line for line in lines)
    assert "WORKDIR /home/npu-fleet" in lines
