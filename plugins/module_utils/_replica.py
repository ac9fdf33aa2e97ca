# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""The replica contract: one placed replica, from its container to its rollout.

One file owns everything the serve and probe stages agree on, so no role
spells a label, a suffix or a condition of its own:

* ``replica_specs`` / ``container_spec``: the container a placement runs in
  (what community.docker.docker_container gets);
* ``LABELS`` and ``replicas_running``: the labels written on a container and
  read back as "what runs now" (the planner's ``current``);
* ``replica_changes``: which containers a run keeps, replaces or removes;
* ``replicas_deployed``: the record of what a host runs after serve;
* ``rollout_steps``: after the probe, which replacements to roll back to their
  ``-previous`` copy, which copies to drop, which replicas failed.

Every trap of running vllm-ascend by hand is decided here, once:

* the container gets exactly the placement's ``/dev/davinciN`` plus the three
  manager nodes, and ``ASCEND_RT_VISIBLE_DEVICES`` counts them ``0..k-1`` (left unset on Atlas 950)
  (inside, the first mapped chip is device 0 whatever its host number);
* the driver paths the host has (``driver/lib64``, ``version.info``,
  ``/etc/ascend_install.info``, dcmi, npu-smi, fwkacllib) are mounted
  read-only, a missing one is never invented (a bind mount of a missing path
  would create an empty directory on the host);
* bridge networking with ``-p <address>:<host port>:8000``, never host networking;
* labels record the placement, so the next run reads back what runs where;
* the API key is a file on the host (``api_key_file``, written by the serve role,
  mode 0400) mounted read-only at ``/run/secrets/npu-fleet-api-key``: never on
  the command line (``ps`` on the host shows it) nor in the container's
  environment (``docker inspect`` and ``-v`` output show that). The Transformers
  server reads ``NPU_SERVE_API_KEY_FILE``; vLLM takes its key only from
  ``--api-key`` or ``VLLM_API_KEY``, so its container starts through a shell
  entrypoint that reads the file into the vLLM process's own environment;
* no privilege escalation inside (``no-new-privileges``) and no capability
  (``cap_drop: [ALL]``): nothing the runtimes do on one host needs one (opening
  the device nodes, mapping device memory, shared memory between workers,
  HCCL over the chips' own links, a port above 1024; docs/security.md). An
  operator adds one back with ``cap_add`` (``serve_cap_add``);
* who the process runs as (``run_as``): root without capabilities opens a
  device node only as its owner, through its group or when everyone may, so
  every container is given the group that owns the host's nodes (HwHiAiUser on
  a real host, mode 0660); the Transformers server runs as its image's
  non-root user (``SERVER_UID``) when that group lets it open every node, else
  as root with the reason; a node nothing but ``CAP_DAC_OVERRIDE`` would open
  (or nodes whose owner is unknown) gets that one capability back, with the
  reason. A non-root server reads its own copy of the key file
  (``server_api_key_file``, owned by its uid, mode 0400).

With the Ascend Docker Runtime (``use_ascend_runtime``) the runtime mounts the
devices and driver paths from ``ASCEND_VISIBLE_DEVICES`` (host ids) instead.
"""

import hashlib
import json
import re

from ansible_collections.npu.fleet.plugins.module_utils._catalogue import PLAN_OWNED_FLAGS
from ansible_collections.npu.fleet.plugins.module_utils._failure_signatures import diagnose

__all__ = [
    "ContainerSpecError",
    "CONTAINER_PORT",
    "SERVER_UID",
    "LABELS",
    "LABEL_PREFIX",
    "MANAGER_DEVICES",
    "PREVIOUS_SUFFIX",
    "container_name",
    "container_spec",
    "previous_name",
    "replica_changes",
    "run_as",
    "replica_specs",
    "replicas_deployed",
    "replicas_running",
    "rollout_steps",
    "rollout_wave",
    "rollout_waves",
    "spec_hash",
]

CONTAINER_PORT = 8000
LABEL_PREFIX = "io.npu-fleet."
MANAGER_DEVICES = ("/dev/davinci_manager", "/dev/devmm_svm", "/dev/hisi_hdc")
MODELS_DIR = "/models"
# Where a replica finds its API key (a read-only bind mount of the serve role's key file).
API_KEY_MOUNT = "/run/secrets/npu-fleet-api-key"
# vLLM reads its key from VLLM_API_KEY; this puts the file's content there for the vLLM process only, then
# execs the command (``"$@"``), so the key is in no container setting and on no command line.
VLLM_KEY_ENTRYPOINT = [
    "/bin/sh",
    "-c",
    'VLLM_API_KEY="$(cat %s)" && export VLLM_API_KEY && exec "$@"' % API_KEY_MOUNT,
    "npu-fleet-vllm",
]
# The non-root user of the npu.fleet Transformers server image (its Dockerfile creates it with this uid and gid).
SERVER_UID = 10001
# The one capability that opens a device node whatever its owner, group and mode: given back only when nothing else can.
_DAC_OVERRIDE = "DAC_OVERRIDE"
_CAPABILITY_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_DEVICE_RE = re.compile(r"^/dev/davinci(\d+)$")
_NAME_RE = re.compile(r"[^a-zA-Z0-9_.-]+")
SHARED_CHIP_ENV = ("PYTORCH_NPU_ALLOC_CONF", "expandable_segments:True")
# A replaced container is kept, stopped, under this suffix until its successor is healthy.
PREVIOUS_SUFFIX = "-previous"
# What each label holds; written by container_spec, read back by replicas_running.
LABELS = {
    "managed": LABEL_PREFIX + "managed",
    "model": LABEL_PREFIX + "model",
    "replica": LABEL_PREFIX + "replica",
    "devices": LABEL_PREFIX + "devices",
    "port": LABEL_PREFIX + "port",
    "backend": LABEL_PREFIX + "backend",
    "max_model_len": LABEL_PREFIX + "max-model-len",
    "spec_hash": LABEL_PREFIX + "spec-hash",
    "auth_digest": LABEL_PREFIX + "auth-digest",
}
# PBKDF2 rounds of the auth digest: cheap per container, slow to guess a key from.
_AUTH_ROUNDS = 20000

DEFAULTS = {
    "bind_address": "0.0.0.0",
    "shm_size": "1g",
    "restart_policy": "unless-stopped",
    # Seconds docker stop waits before SIGKILL: vLLM aborts in-flight requests on SIGTERM unless given time.
    "stop_timeout": 30,
    "log_max_size": "100m",
    "log_max_file": 3,
    "dtype": "auto",
    "extra_args": [],
    "env": {},
    "use_ascend_runtime": False,
    "api_key": None,
    # Host path of the key file the serve role writes; required with api_key.
    "api_key_file": None,
    "transformers_threads": 4,
    "transformers_max_concurrent": 2,
    "transformers_max_queue": 1,
    "transformers_device": "npu",
    # From the model's profile (replica_specs): an image-text-to-text model on the Transformers server.
    "vision": False,
    # Capabilities added back after cap_drop ALL (serve_cap_add); none by default.
    "cap_add": [],
    # npu_facts' device_access of the host: who may open the device nodes.
    "device_access": None,
    # Host path of the copy of the key a non-root server reads (owned by SERVER_UID); required with api_key then.
    "server_api_key_file": None,
}
# A request body of an image model carries base64 images (a third larger than the files): room for a few.
VISION_MAX_BODY_BYTES = 24 * 1024 * 1024


class ContainerSpecError(ValueError):
    """A placement or option the serve role cannot turn into a container."""


def container_name(model, replica):
    """``npu-fleet-<model>-<replica>``, with characters Docker refuses replaced."""
    safe = _NAME_RE.sub("-", str(model)).strip("-.") or "model"
    return "npu-fleet-%s-%d" % (safe, int(replica))


def previous_name(name):
    """The name a replaced container is kept under until its successor is healthy."""
    return str(name) + PREVIOUS_SUFFIX


def _is_previous(name):
    return str(name).endswith(PREVIOUS_SUFFIX)


def _device_ids(placement):
    ids = []
    for device in placement.get("devices") or []:
        match = _DEVICE_RE.match(str(device))
        if not match:
            raise ContainerSpecError(
                "%s replica %s: device %r is not /dev/davinciN" % (placement.get("model"), placement.get("replica"), device)
            )
        ids.append(int(match.group(1)))
    if not ids:
        raise ContainerSpecError("%s replica %s has no devices in the plan" % (placement.get("model"), placement.get("replica")))
    return ids


def _labels(placement, backend, host_ids):
    return {
        LABELS["managed"]: "true",
        LABELS["model"]: str(placement["model"]),
        LABELS["replica"]: str(placement["replica"]),
        LABELS["devices"]: ",".join("/dev/davinci%d" % number for number in host_ids),
        LABELS["port"]: str(placement["port"]),
        LABELS["backend"]: backend,
        LABELS["max_model_len"]: str(placement.get("max_model_len") or ""),
    }


def _vllm_command(placement, model_dir, options):
    command = [
        "vllm",
        "serve",
        model_dir,
        "--host",
        "0.0.0.0",
        "--port",
        str(CONTAINER_PORT),
        "--served-model-name",
        str(placement["model"]),
        "--tensor-parallel-size",
        str(int(placement.get("tensor_parallel_size") or len(placement["devices"]))),
    ]
    if placement.get("max_model_len"):
        command += ["--max-model-len", str(int(placement["max_model_len"]))]
    if placement.get("gpu_memory_utilization"):
        command += ["--gpu-memory-utilization", "%g" % float(placement["gpu_memory_utilization"])]
    if options["dtype"] and options["dtype"] != "auto":
        command += ["--dtype", options["dtype"]]
    extra = options.get("extra_args") or []
    for arg in extra:
        if not isinstance(arg, str):
            raise ContainerSpecError("%s: extra_args must be strings, got %r" % (placement["model"], arg))
        flag = arg.split("=", 1)[0]
        if flag in PLAN_OWNED_FLAGS:
            raise ContainerSpecError("%s: extra_args sets %s, which npu.fleet sets from the plan; remove it" % (placement["model"], flag))
    return command + list(extra)


def _transformers_env(placement, model_dir, options):
    env = {
        "NPU_SERVE_MODEL": model_dir,
        "NPU_SERVE_SERVED_MODEL_NAME": str(placement["model"]),
        "NPU_SERVE_PORT": str(CONTAINER_PORT),
        "NPU_SERVE_DEVICE": options["transformers_device"],
        "NPU_SERVE_THREADS": str(options["transformers_threads"]),
        "NPU_SERVE_MAX_CONCURRENT": str(options["transformers_max_concurrent"]),
        "NPU_SERVE_MAX_QUEUE": str(options["transformers_max_queue"]),
    }
    if placement.get("max_model_len"):
        env["NPU_SERVE_MAX_MODEL_LEN"] = str(int(placement["max_model_len"]))
    if options["dtype"] and options["dtype"] != "auto":
        env["NPU_SERVE_DTYPE"] = options["dtype"]
    if options.get("vision"):
        env["NPU_SERVE_MAX_BODY_BYTES"] = str(VISION_MAX_BODY_BYTES)
    return env


def _opens(node, uid, gids):
    """Whether a process of ``uid`` with groups ``gids`` and no capability opens ``node`` read-write.

    The kernel's order: the owner's bits for the owner, else the group's for a
    member, else everyone's (root is no exception without CAP_DAC_OVERRIDE).
    """
    mode = int(str(node["mode"]), 8)
    if int(node["uid"]) == uid:
        return mode & 0o600 == 0o600
    if int(node["gid"]) in gids:
        return mode & 0o060 == 0o060
    return mode & 0o006 == 0o006


def _group_rw(node):
    return int(str(node["mode"]), 8) & 0o060 == 0o060


def _describe(path, node, names):
    gid = int(node["gid"])
    group = names.get(gid)
    return "%s is %d:%s %s" % (path, int(node["uid"]), "%d (%s)" % (gid, group) if group else gid, node["mode"])


def run_as(backend, device_paths, device_access, server_uid=SERVER_UID):
    """Who a replica's process runs as, the groups it gets for the NPU, and why.

    ``device_paths`` are the host nodes the container is given (its
    ``/dev/davinciN`` and the manager nodes); ``device_access`` is npu_facts'
    fact of the same name. Every container runs without capabilities, so:

    * the groups are the non-root groups that may read and write the nodes
      (on a real host the driver's HwHiAiUser group, mode 0660): with them
      root, and the server's own user, open the nodes as a group member;
    * the Transformers server runs as ``server_uid`` when those groups (or the
      nodes' mode) let it open every node; otherwise as root, with the reason;
    * vLLM runs as its image's user (root);
    * when root still cannot open a node (an owner-only node of another user,
      or nodes whose owner and mode are unknown) the container gets
      ``DAC_OVERRIDE`` back, with the reason.

    Returns ``{"user": "<uid>:<gid>" or None (the image's), "uid", "groups":
    [gid as text], "cap_add": [], "fallback": bool, "reason": text}``;
    ``fallback`` says the container got less isolation than planned (root
    instead of the server's user, or DAC_OVERRIDE).
    """
    nodes = (device_access or {}).get("nodes") or {}
    unknown = [path for path in device_paths if path not in nodes]
    server = backend == "transformers"
    root_user = "0:0" if server else None
    if unknown:
        return {
            "user": root_user,
            "uid": 0,
            "groups": [],
            "cap_add": [_DAC_OVERRIDE],
            "fallback": True,
            "reason": "the owner and mode of %s are not known (npu_facts gave no device_access): runs as root with %s"
            % (", ".join(unknown), _DAC_OVERRIDE),
        }
    names = {}
    if (device_access or {}).get("gid") is not None and device_access.get("group"):
        names[int(device_access["gid"])] = device_access["group"]
    # A node's group is given when it may read and write the node; the root group never (the server would be in it).
    groups = sorted(set(int(nodes[path]["gid"]) for path in device_paths if _group_rw(nodes[path]) and int(nodes[path]["gid"]) != 0))
    given = "group %s" % ", ".join("%d (%s)" % (gid, names[gid]) if gid in names else str(gid) for gid in groups) if groups else "no group"
    reason = None
    if server:
        blocked = [path for path in device_paths if not _opens(nodes[path], server_uid, set(groups) | {server_uid})]
        if not blocked:
            return {
                "user": "%d:%d" % (server_uid, server_uid),
                "uid": server_uid,
                "groups": [str(gid) for gid in groups],
                "cap_add": [],
                "fallback": False,
                "reason": "runs as uid %d with %s: the device nodes let it open them" % (server_uid, given),
            }
        reason = "%s, which uid %d with %s cannot open: runs as root" % (_describe(blocked[0], nodes[blocked[0]], names), server_uid, given)
    blocked = [path for path in device_paths if not _opens(nodes[path], 0, set(groups) | {0})]
    if blocked:
        extra = "%s, which root without capabilities cannot open: gets %s" % (
            _describe(blocked[0], nodes[blocked[0]], names),
            _DAC_OVERRIDE,
        )
        return {
            "user": root_user,
            "uid": 0,
            "groups": [str(gid) for gid in groups],
            "cap_add": [_DAC_OVERRIDE],
            "fallback": True,
            "reason": "%s; %s" % (reason, extra) if reason else extra,
        }
    return {
        "user": root_user,
        "uid": 0,
        "groups": [str(gid) for gid in groups],
        "cap_add": [],
        "fallback": bool(reason),
        "reason": reason or "runs as the image's user (root) without capabilities, with %s" % given,
    }


def _cap_add(placement, wanted):
    """The operator's capabilities (serve_cap_add), as Docker names them: ``NET_RAW``, not ``cap_net_raw``."""
    if isinstance(wanted, str) or not isinstance(wanted or [], (list, tuple)):
        raise ContainerSpecError("%s: cap_add must be a list of capability names, got %r" % (placement["model"], wanted))
    names = []
    for item in wanted or []:
        name = str(item).strip().upper()
        name = name[4:] if name.startswith("CAP_") else name
        if name == "ALL" or not _CAPABILITY_RE.match(name):
            raise ContainerSpecError(
                "%s: cap_add %r is not one capability name (such as SYS_PTRACE); ALL would give back every capability"
                % (placement["model"], item)
            )
        names.append(name)
    return names


def container_spec(placement, model_path, driver_mounts, options=None):
    """docker_container parameters for one placement on its host.

    ``placement`` is one entry of fleet_plan's ``placements``; ``model_path``
    the model directory on the host; ``driver_mounts`` npu_facts'
    ``{host path: exists}``; ``options`` the serve role's settings (see DEFAULTS).
    """
    merged = dict(DEFAULTS)
    merged.update(options or {})
    for key in ("model", "replica", "port", "image", "backend"):
        if placement.get(key) in (None, ""):
            raise ContainerSpecError(
                "%s replica %s: the plan has no %s; run image selection before serving"
                % (placement.get("model"), placement.get("replica"), key)
            )
    backend = placement["backend"]
    if backend not in ("vllm", "transformers"):
        raise ContainerSpecError("%s: unknown backend %r (vllm or transformers)" % (placement["model"], backend))
    if not model_path or not str(model_path).startswith("/"):
        raise ContainerSpecError("%s: the model path on the host must be absolute, got %r" % (placement["model"], model_path))
    host_ids = _device_ids(placement)
    model_dir = "%s/%s" % (MODELS_DIR, _NAME_RE.sub("-", str(placement["model"])))
    visible = ",".join(str(index) for index in range(len(host_ids)))

    # Atlas 950 (A5): with only some of the host's NPUs mounted, ASCEND_RT_VISIBLE_DEVICES must stay unset
    # (vllm-ascend PR #12959: container-local ids such as 0,1 break its endpoint-file mapping there).
    env = {} if placement.get("chip_family") == "950" else {"ASCEND_RT_VISIBLE_DEVICES": visible}
    devices, volumes = [], ["%s:%s:ro" % (model_path, model_dir)]
    runtime = None
    if merged["use_ascend_runtime"]:
        runtime = "ascend"
        env["ASCEND_VISIBLE_DEVICES"] = ",".join(str(number) for number in host_ids)
    else:
        devices = ["/dev/davinci%d:/dev/davinci%d:rwm" % (number, number) for number in host_ids]
        devices += ["%s:%s:rwm" % (node, node) for node in MANAGER_DEVICES]
        volumes += ["%s:%s:ro" % (path, path) for path in sorted(driver_mounts or {}) if (driver_mounts or {})[path]]

    device_paths = ["/dev/davinci%d" % number for number in host_ids] + list(MANAGER_DEVICES)
    who = run_as(backend, device_paths, merged["device_access"])
    cap_add = sorted(set(_cap_add(placement, merged["cap_add"])) | set(who["cap_add"]))
    entrypoint, key_file = None, None
    if merged["api_key"]:
        key_file, option = (
            (merged["api_key_file"], "api_key_file") if who["uid"] == 0 else (merged["server_api_key_file"], "server_api_key_file")
        )
        if not key_file or not str(key_file).startswith("/"):
            raise ContainerSpecError(
                "%s: an API key is set but no absolute %s on the host holds it (the serve role writes one)" % (placement["model"], option)
            )
        volumes.append("%s:%s:ro" % (key_file, API_KEY_MOUNT))
    if backend == "vllm":
        command = _vllm_command(placement, model_dir, merged)
        if merged["api_key"]:
            entrypoint = list(VLLM_KEY_ENTRYPOINT)
    else:
        command = None
        env.update(_transformers_env(placement, model_dir, merged))
        if merged["api_key"]:
            env["NPU_SERVE_API_KEY_FILE"] = API_KEY_MOUNT
    for key, value in (merged["env"] or {}).items():
        if key in ("VLLM_API_KEY", "NPU_SERVE_API_KEY", "NPU_SERVE_API_KEY_FILE"):
            raise ContainerSpecError(
                "%s: env sets %s, which would put the key in the container's settings (docker inspect shows them); "
                "remove it and set npu_fleet_api_key (the serve role mounts it as a file)" % (placement["model"], key)
            )
        if key in env:
            raise ContainerSpecError("%s: env sets %s, which npu.fleet sets itself; remove it" % (placement["model"], key))
        env[str(key)] = str(value)
    if placement.get("share_chip"):
        # Several processes on one chip: the allocator must not hold on to whole segments (the recipe of
        # vllm-ascend issues 5650, 5707 for several models per NPU). A user's own value wins.
        env.setdefault(SHARED_CHIP_ENV[0], SHARED_CHIP_ENV[1])

    spec = {
        "name": container_name(placement["model"], placement["replica"]),
        "image": placement["image"],
        "entrypoint": entrypoint,
        "command": command,
        "env": env,
        "devices": devices,
        "volumes": volumes,
        "published_ports": ["%s:%d:%d" % (merged["bind_address"], int(placement["port"]), CONTAINER_PORT)],
        "network_mode": "bridge",
        "shm_size": merged["shm_size"],
        "restart_policy": merged["restart_policy"],
        "stop_timeout": int(merged["stop_timeout"]),
        "log_driver": "json-file",
        "log_options": {"max-size": str(merged["log_max_size"]), "max-file": str(merged["log_max_file"])},
        "labels": _labels(placement, backend, host_ids),
        "runtime": runtime,
        "security_opts": ["no-new-privileges"],
        "cap_drop": ["ALL"],
        "cap_add": cap_add,
        "user": who["user"],
        "groups": who["groups"],
        # Not a container setting: why it runs as this user, and the key file that user reads (the serve role
        # writes a non-root user's copy); left out of the spec hash.
        "run_as": {
            "uid": who["uid"],
            "reason": who["reason"],
            "fallback": who["fallback"],
            "key_file": key_file,
        },
    }
    spec["labels"][LABELS["spec_hash"]] = spec_hash(spec)
    spec["labels"][LABELS["auth_digest"]] = auth_digest(spec["name"], merged["api_key"])
    return spec


def spec_hash(spec):
    """Short stable hash of everything but the secret: a changed plan changes the label."""
    public = dict((key, value) for key, value in spec.items() if key != "run_as")
    public["env"] = dict((key, "<secret>" if key.endswith("API_KEY") else value) for key, value in spec["env"].items())
    public["labels"] = dict(
        (key, value) for key, value in spec["labels"].items() if key not in (LABELS["spec_hash"], LABELS["auth_digest"])
    )
    return hashlib.sha256(json.dumps(public, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def auth_digest(name, api_key):
    """Whether the API key changed, without the key: PBKDF2 of it, salted with the container name.

    A container that is kept is not handed to docker_container again, so a new
    key must show in a label; the key itself never goes into one.
    """
    if not api_key:
        return "none"
    return hashlib.pbkdf2_hmac("sha256", str(api_key).encode("utf-8"), ("npu-fleet:" + name).encode("utf-8"), _AUTH_ROUNDS).hex()[:16]


def _container_name(container):
    names = container.get("Names") or [container.get("Name") or "?"]
    return (names[0] if isinstance(names, list) else names).lstrip("/")


def _container_labels(container):
    return container.get("Labels") or (container.get("Config") or {}).get("Labels") or {}


def replicas_running(host, containers):
    """fleet_plan's ``current`` entries from the labels of the containers on one host.

    ``containers`` are dicts with a ``Labels`` mapping (docker_host_info's
    container list with verbose output, or ``docker inspect``'s Config).
    Containers without npu.fleet labels are ignored, and so are ``-previous``
    copies (stopped, kept for a rollback); a label that does not parse is an
    error naming the container, because guessing would move or double-book chips.
    """
    current = []
    for container in containers or []:
        labels = _container_labels(container)
        if labels.get(LABELS["managed"]) != "true":
            continue
        name = _container_name(container)
        if _is_previous(name):
            continue
        try:
            entry = {
                "model": labels[LABELS["model"]],
                "replica": int(labels[LABELS["replica"]]),
                "host": host,
                "devices": [device for device in labels[LABELS["devices"]].split(",") if device],
                "port": int(labels[LABELS["port"]]),
            }
        except (KeyError, ValueError) as error:
            raise ContainerSpecError(
                "container %s on %s has npu.fleet labels that do not parse (%s): remove it or fix its labels" % (name, host, error)
            )
        current.append(entry)
    current.sort(key=lambda item: (item["model"], item["replica"]))
    return current


def _int_or_none(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _disjoint(old_labels, new_labels):
    """Whether a successor can run beside the container it replaces: no chip and no port in common."""
    old_devices = set(device for device in (old_labels.get(LABELS["devices"]) or "").split(",") if device)
    new_devices = set(device for device in (new_labels.get(LABELS["devices"]) or "").split(",") if device)
    return not old_devices & new_devices and old_labels.get(LABELS["port"]) != new_labels.get(LABELS["port"])


def replica_changes(specs, containers, catalogue_models, prune=False, rollback=False):
    """Which existing npu.fleet containers a run keeps, replaces, removes and starts.

    ``keep``: wanted containers that run with the same spec hash and API key
    (docker_host_info's ``State``); nothing is done to them.
    ``replace``: ``{name, previous, model, replica, surge, port}`` for
    wanted containers that exist with another spec hash (the serve role keeps
    each under ``previous`` until its successor is healthy: stopped, or still
    serving when ``surge`` - the successor has other chips and another port,
    see replica_specs). ``remove``: containers the plan no longer
    wants here - a replica that moved to another host always goes, one of a
    model dropped from the catalogue only with ``prune`` (someone may still
    use it). ``-previous`` copies are none of these. ``rollback`` (the serve
    role passes ``serve_rollback`` and not check mode) sets the replaced ones
    aside in ``set_aside`` instead of letting docker_container recreate them.
    """
    existing = dict((_container_name(container), _container_labels(container)) for container in containers or [])
    images = dict(
        (_container_name(container), container.get("Image") or (container.get("Config") or {}).get("Image"))
        for container in containers or []
    )
    running = set(_container_name(container) for container in containers or [] if container.get("State") == "running")
    wanted = dict((spec["name"], spec) for spec in specs or [])
    same = dict(
        (name, all(existing[name].get(LABELS[key]) == spec["labels"][LABELS[key]] for key in ("spec_hash", "auth_digest")))
        for name, spec in wanted.items()
        if name in existing
    )
    models = set(catalogue_models or [])
    remove = sorted(
        name
        for name, labels in existing.items()
        if name not in wanted
        and not _is_previous(name)
        and labels.get(LABELS["managed"]) == "true"
        and (labels.get(LABELS["model"]) in models or prune)
    )
    keep = sorted(name for name, equal in same.items() if equal and name in running)
    replace = [
        {
            "name": name,
            "previous": previous_name(name),
            "model": wanted[name]["labels"][LABELS["model"]],
            "replica": int(wanted[name]["labels"][LABELS["replica"]]),
            # Beside the old one only when the old one is set aside (rollback), never on a chip or port it holds.
            "surge": bool(rollback) and name in running and _disjoint(existing[name], wanted[name]["labels"]),
            "port": int(wanted[name]["labels"][LABELS["port"]]),
            # Where the container being replaced runs: where it serves again if its successor fails.
            "from_port": _int_or_none(existing[name].get(LABELS["port"])),
            "from_devices": [device for device in (existing[name].get(LABELS["devices"]) or "").split(",") if device],
            "from_image": images.get(name),
            "from_max_model_len": _int_or_none(existing[name].get(LABELS["max_model_len"])),
        }
        for name in sorted(same)
        if not same[name]
    ]
    start = sorted(name for name in wanted if name not in keep)
    replaced = set(item["name"] for item in replace)
    return {
        "keep": keep,
        "replace": replace,
        "remove": remove,
        # The same, with their model: a gateway drains them before they go.
        "remove_replicas": [{"name": name, "model": existing[name].get(LABELS["model"])} for name in remove],
        # docker_container runs for these only: new, replaced, or ours but not running (it is started again).
        "start": start,
        # Started at once: new replicas and stopped ones; the replaced ones roll, one per model at a time (rollout_waves).
        "start_now": sorted(name for name in start if name not in replaced),
        "start_models": sorted(set(wanted[name]["labels"][LABELS["model"]] for name in start)),
        # With rollback, each replaced container is set aside (renamed; stopped unless surge) until its successor is healthy.
        "set_aside": [dict(item) for item in replace] if rollback else [],
    }


def rollout_waves(changes_by_host):
    """The replacements of the whole fleet in waves: each wave replaces at most one replica of each model.

    ``changes_by_host`` maps a host to its ``replica_changes``. A model's
    replicas are replaced in the order of their replica numbers, whatever host
    they are on, so while one of them is drained, stopped and replaced, the
    others serve through the gateway; different models roll side by side.
    Returns a list of waves, each a list of ``{host, name, previous, model, replica}``.
    """
    by_model = {}
    for host in sorted(changes_by_host or {}):
        for item in (changes_by_host[host] or {}).get("replace") or []:
            by_model.setdefault(item["model"], []).append(dict(item, host=host))
    waves = []
    for model in sorted(by_model):
        for index, item in enumerate(sorted(by_model[model], key=lambda entry: (entry["replica"], entry["host"]))):
            if index == len(waves):
                waves.append([])
            waves[index].append(item)
    return [sorted(wave, key=lambda entry: (entry["host"], entry["name"])) for wave in waves]


def rollout_wave(waves, index, failed_models=(), host=None):
    """Wave ``index`` without the models whose rollout already failed (they stay on their previous containers).

    ``host`` keeps only that host's replicas (what the host itself stops and
    starts); without it, the whole wave (what every gateway drains).
    """
    failed = set(failed_models or [])
    wave = (waves or [])[int(index)] if int(index) < len(waves or []) else []
    return [dict(item) for item in wave if item["model"] not in failed and (host is None or item["host"] == host)]


def _changed(spec, labels):
    return any(labels.get(LABELS[key]) != spec["labels"][LABELS[key]] for key in ("spec_hash", "auth_digest"))


def _surge_spec(placement, spec, running, make):
    """The spec of the replica's successor in the plan's surge room, when the running container must be replaced."""
    room = placement.get("surge")
    labels = running.get(spec["name"])
    if not room or labels is None or not _changed(spec, labels):
        return spec
    successor = make(dict(placement, devices=list(room["devices"]), port=int(room["port"])))
    held = set(labels.get(LABELS["devices"], "").split(","))
    if held & set(successor["labels"][LABELS["devices"]].split(",")) or labels.get(LABELS["port"]) == str(room["port"]):
        return spec  # the room is not free of the running container (a stale plan): in place
    return successor


def replica_specs(placements, host, models, driver_mounts, options=None, images=None, containers=None, surge=False):
    """The containers of one host: each placement of ``host`` joined with its catalogue entry.

    ``models`` is the validated catalogue (npu.fleet.model_catalogue): each
    entry's ``host_path`` (default ``path``) is the model directory on the
    host and its ``serve`` options override ``options``. ``images`` maps a
    model to an image that replaces the plan's (a Transformers image built here).
    With ``surge``, a replica whose running container (``containers``, as
    docker_host_info lists them) must be replaced gets its spec in the plan's
    ``surge`` room instead (other chips, another port), so the old one serves
    until the new one is healthy; the serve role asks for it only behind a
    gateway (clients do not see the port change) and with rollback.
    """
    catalogue = dict((entry.get("name"), entry) for entry in models or [])
    running = dict(
        (_container_name(container), _container_labels(container))
        for container in containers or []
        if container.get("State") == "running" and _container_labels(container).get(LABELS["managed"]) == "true"
    )
    specs = []
    for placement in placements or []:
        if placement.get("host") != host:
            continue
        entry = catalogue.get(placement.get("model"))
        if entry is None:
            raise ContainerSpecError(
                "%s: model %s is in the plan but not in the catalogue; re-run the plan with this catalogue" % (host, placement.get("model"))
            )
        merged = dict(options or {})
        merged.update(entry.get("serve") or {})
        merged["vision"] = bool((entry.get("profile") or {}).get("vision"))
        if placement["model"] in (images or {}):
            placement = dict(placement, image=images[placement["model"]])
        path = entry.get("host_path") or entry.get("path")

        make = _spec_maker(path, driver_mounts, merged)
        spec = make(placement)
        specs.append(_surge_spec(placement, spec, running, make) if surge else spec)
    return sorted(specs, key=lambda spec: spec["name"])


def _spec_maker(path, driver_mounts, options):
    """The container spec of one model at any placement (its own or its surge room)."""
    return lambda where: container_spec(where, path, driver_mounts, options)


def replicas_deployed(specs, started, replaced, surged=(), replacements=()):
    """What a host runs after the serve role: one record per container, for the probe and the report.

    ``started`` is the registered loop over docker_container (``changed``
    per container, in the order of ``specs``); ``replaced`` the names whose
    earlier container is kept as ``-previous`` in this run; ``surged`` the
    ``set_aside`` entries (replica_changes) of those whose earlier container
    still serves beside the new one, with where it runs (``from_port``,
    ``from_devices``: where the replica serves again if its successor fails).
    ``replacements`` are replica_changes' ``replace`` entries: one that was
    not started (its model's rollout stopped at an earlier replica) still
    runs its earlier container, so its record says where that one runs.
    """
    held = dict((item["name"], item) for item in replacements or [])
    changed = dict((((result.get("item") or {}).get("name")), bool(result.get("changed"))) for result in started or [])
    kept = set(replaced or [])
    beside = dict((item["name"], item) for item in surged or [])
    records = []
    for spec in specs or []:
        labels = spec["labels"]
        records.append(
            {
                "name": spec["name"],
                "model": labels[LABELS["model"]],
                "replica": int(labels[LABELS["replica"]]),
                "port": int(labels[LABELS["port"]]),
                "devices": labels[LABELS["devices"]].split(","),
                "backend": labels[LABELS["backend"]],
                "image": spec["image"],
                "max_model_len": int(labels[LABELS["max_model_len"]] or 0),
                "changed": changed.get(spec["name"], False),
                "previous": previous_name(spec["name"]) if spec["name"] in kept else None,
                "surge": spec["name"] in kept and spec["name"] in beside,
            }
        )
        if records[-1]["surge"]:
            records[-1].update(from_port=beside[spec["name"]].get("from_port"), from_devices=beside[spec["name"]].get("from_devices"))
        item = held.get(spec["name"])
        if item is not None and spec["name"] not in changed and item.get("from_port"):
            records[-1].update(
                port=item["from_port"],
                devices=list(item.get("from_devices") or records[-1]["devices"]),
                image=item.get("from_image") or records[-1]["image"],
                max_model_len=item.get("from_max_model_len") or records[-1]["max_model_len"],
            )
    return records


_PROBE_KEYS = ("healthy", "stage", "message", "ttft_ms", "total_ms", "ready_after_s")


def rollout_steps(deployed, probes, rollback=True):
    """What to do after the probe, per replica of one host.

    ``deployed`` is ``replicas_deployed``'s list; ``probes`` what
    npu.fleet.openai_probe returned for them (its ``replicas``, each with the
    container ``name``; empty in check mode). Returns:

    * ``restore``: ``{name, previous}`` of failed replacements whose earlier
      container comes back (only with ``rollback``): remove ``name``, rename
      ``previous`` to ``name``, start it;
    * ``drop_previous``: ``-previous`` copies no longer needed (their
      successor is healthy);
    * ``retire``: ``{name, previous, model, port}`` of healthy surge
      successors whose ``-previous`` container still serves: the rollout adds
      the successor to the gateways, drains the previous one there, then
      removes it (removing it now would cut its requests);
    * ``failed``: names of replicas that failed their probe;
    * ``results``: one record per probed replica for the report (probe
      outcome, container state, log tail, diagnosis, whether it was rolled back).
    """
    by_name = dict((run.get("name"), run) for run in probes or [])
    restore, drop, retire, failed, results = [], [], [], [], []
    for replica in deployed or []:
        run = by_name.get(replica["name"])
        if run is None:
            continue
        healthy = bool(run.get("healthy"))
        previous = replica.get("previous")
        rolled_back = bool(not healthy and rollback and previous)
        if not healthy:
            failed.append(replica["name"])
            if rolled_back:
                restore.append({"name": replica["name"], "previous": previous})
        elif previous and replica.get("surge"):
            retire.append({"name": replica["name"], "previous": previous, "model": replica["model"], "port": replica["port"]})
        elif previous:
            drop.append(previous)
        entry = dict((key, replica.get(key)) for key in ("name", "model", "replica", "port", "devices", "image"))
        entry.update((key, run.get(key)) for key in _PROBE_KEYS)
        entry["healthy"] = healthy
        entry.update(state=None, log_tail=[], diagnosis=None, rolled_back=rolled_back, surge=bool(replica.get("surge")))
        if rolled_back and replica.get("surge") and replica.get("from_port"):
            # The restored container serves where it always did, not in the failed successor's room.
            entry.update(port=replica["from_port"], devices=list(replica.get("from_devices") or []))
        if not healthy:
            entry["state"] = run.get("state")
            entry["log_tail"] = list(run.get("log_tail") or [])
            entry["diagnosis"] = run.get("diagnosis") or (diagnose("\n".join(entry["log_tail"])) if entry["log_tail"] else None)
        results.append(entry)
    return {"restore": restore, "drop_previous": drop, "retire": retire, "failed": failed, "results": results}
