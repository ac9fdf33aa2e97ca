# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""The container one placed replica runs in: what community.docker.docker_container gets.

Every trap of running vllm-ascend by hand is decided here, once:

* the container gets exactly the placement's ``/dev/davinciN`` plus the three
  manager nodes, and ``ASCEND_RT_VISIBLE_DEVICES`` counts them ``0..k-1``
  (inside, the first mapped chip is device 0 whatever its host number);
* the driver paths the host has (``driver/lib64``, ``version.info``,
  ``/etc/ascend_install.info``, dcmi, npu-smi, fwkacllib) are mounted
  read-only, a missing one is never invented (a bind mount of a missing path
  would create an empty directory on the host);
* bridge networking with ``-p <address>:<host port>:8000``, never host networking;
* labels record the placement, so the next run reads back what runs where;
* the API key travels in the environment (``VLLM_API_KEY`` / ``NPU_SERVE_API_KEY``),
  not on the command line where ``ps`` on the host shows it.

With the Ascend Docker Runtime (``use_ascend_runtime``) the runtime mounts the
devices and driver paths from ``ASCEND_VISIBLE_DEVICES`` (host ids) instead.
"""

import hashlib
import json
import re

__all__ = ["ContainerSpecError", "CONTAINER_PORT", "LABEL_PREFIX", "MANAGER_DEVICES", "container_name",
           "container_changes", "container_spec", "current_from_containers", "spec_hash"]

CONTAINER_PORT = 8000
LABEL_PREFIX = "io.npu-fleet."
MANAGER_DEVICES = ("/dev/davinci_manager", "/dev/devmm_svm", "/dev/hisi_hdc")
MODELS_DIR = "/models"
_DEVICE_RE = re.compile(r"^/dev/davinci(\d+)$")
_NAME_RE = re.compile(r"[^a-zA-Z0-9_.-]+")

DEFAULTS = {
    "bind_address": "0.0.0.0",
    "shm_size": "1g",
    "restart_policy": "unless-stopped",
    "log_max_size": "100m",
    "log_max_file": 3,
    "dtype": "auto",
    "extra_args": [],
    "env": {},
    "use_ascend_runtime": False,
    "api_key": None,
    "transformers_threads": 4,
    "transformers_max_concurrent": 2,
    "transformers_max_queue": 1,
    "transformers_device": "npu",
}


class ContainerSpecError(ValueError):
    """A placement or option the serve role cannot turn into a container."""


def container_name(model, replica):
    """``npu-fleet-<model>-<replica>``, with characters Docker refuses replaced."""
    safe = _NAME_RE.sub("-", str(model)).strip("-.") or "model"
    return "npu-fleet-%s-%d" % (safe, int(replica))


def _device_ids(placement):
    ids = []
    for device in placement.get("devices") or []:
        match = _DEVICE_RE.match(str(device))
        if not match:
            raise ContainerSpecError("%s replica %s: device %r is not /dev/davinciN"
                                     % (placement.get("model"), placement.get("replica"), device))
        ids.append(int(match.group(1)))
    if not ids:
        raise ContainerSpecError("%s replica %s has no devices in the plan" % (placement.get("model"), placement.get("replica")))
    return ids


def _labels(placement, backend, host_ids):
    return {
        LABEL_PREFIX + "managed": "true",
        LABEL_PREFIX + "model": str(placement["model"]),
        LABEL_PREFIX + "replica": str(placement["replica"]),
        LABEL_PREFIX + "devices": ",".join("/dev/davinci%d" % number for number in host_ids),
        LABEL_PREFIX + "port": str(placement["port"]),
        LABEL_PREFIX + "backend": backend,
        LABEL_PREFIX + "max-model-len": str(placement.get("max_model_len") or ""),
    }


def _vllm_command(placement, model_dir, options):
    command = ["vllm", "serve", model_dir,
               "--host", "0.0.0.0",
               "--port", str(CONTAINER_PORT),
               "--served-model-name", str(placement["model"]),
               "--tensor-parallel-size", str(int(placement.get("tensor_parallel_size") or len(placement["devices"])))]
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
        if flag in ("--port", "--host", "--served-model-name", "--api-key", "--tensor-parallel-size", "-tp"):
            raise ContainerSpecError("%s: extra_args sets %s, which npu.fleet sets from the plan; remove it"
                                     % (placement["model"], flag))
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
    return env


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
            raise ContainerSpecError("%s replica %s: the plan has no %s; run image selection before serving"
                                     % (placement.get("model"), placement.get("replica"), key))
    backend = placement["backend"]
    if backend not in ("vllm", "transformers"):
        raise ContainerSpecError("%s: unknown backend %r (vllm or transformers)" % (placement["model"], backend))
    if not model_path or not str(model_path).startswith("/"):
        raise ContainerSpecError("%s: the model path on the host must be absolute, got %r" % (placement["model"], model_path))
    host_ids = _device_ids(placement)
    model_dir = "%s/%s" % (MODELS_DIR, _NAME_RE.sub("-", str(placement["model"])))
    visible = ",".join(str(index) for index in range(len(host_ids)))

    env = {"ASCEND_RT_VISIBLE_DEVICES": visible}
    devices, volumes = [], ["%s:%s:ro" % (model_path, model_dir)]
    runtime = None
    if merged["use_ascend_runtime"]:
        runtime = "ascend"
        env["ASCEND_VISIBLE_DEVICES"] = ",".join(str(number) for number in host_ids)
    else:
        devices = ["/dev/davinci%d:/dev/davinci%d:rwm" % (number, number) for number in host_ids]
        devices += ["%s:%s:rwm" % (node, node) for node in MANAGER_DEVICES]
        volumes += ["%s:%s:ro" % (path, path) for path in sorted(driver_mounts or {}) if (driver_mounts or {})[path]]

    if backend == "vllm":
        command = _vllm_command(placement, model_dir, merged)
        if merged["api_key"]:
            env["VLLM_API_KEY"] = merged["api_key"]
    else:
        command = None
        env.update(_transformers_env(placement, model_dir, merged))
        if merged["api_key"]:
            env["NPU_SERVE_API_KEY"] = merged["api_key"]
    for key, value in (merged["env"] or {}).items():
        if key in env:
            raise ContainerSpecError("%s: env sets %s, which npu.fleet sets itself; remove it" % (placement["model"], key))
        env[str(key)] = str(value)

    spec = {
        "name": container_name(placement["model"], placement["replica"]),
        "image": placement["image"],
        "command": command,
        "env": env,
        "devices": devices,
        "volumes": volumes,
        "published_ports": ["%s:%d:%d" % (merged["bind_address"], int(placement["port"]), CONTAINER_PORT)],
        "network_mode": "bridge",
        "shm_size": merged["shm_size"],
        "restart_policy": merged["restart_policy"],
        "log_driver": "json-file",
        "log_options": {"max-size": str(merged["log_max_size"]), "max-file": str(merged["log_max_file"])},
        "labels": _labels(placement, backend, host_ids),
        "runtime": runtime,
    }
    spec["labels"][LABEL_PREFIX + "spec-hash"] = spec_hash(spec)
    return spec


def spec_hash(spec):
    """Short stable hash of everything but the secret: a changed plan changes the label."""
    public = dict(spec)
    public["env"] = dict((key, "<secret>" if key.endswith("API_KEY") else value) for key, value in spec["env"].items())
    public["labels"] = dict((key, value) for key, value in spec["labels"].items() if not key.endswith("spec-hash"))
    return hashlib.sha256(json.dumps(public, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def current_from_containers(host, containers):
    """fleet_plan's ``current`` entries from the labels of the containers on one host.

    ``containers`` are dicts with a ``Labels`` mapping (docker_host_info's
    container list with verbose output, or ``docker inspect``'s Config).
    Containers without npu.fleet labels are ignored; a label that does not
    parse is an error naming the container, because guessing would move or
    double-book chips.
    """
    current = []
    for container in containers or []:
        labels = container.get("Labels") or (container.get("Config") or {}).get("Labels") or {}
        if labels.get(LABEL_PREFIX + "managed") != "true":
            continue
        names = container.get("Names") or [container.get("Name") or "?"]
        name = (names[0] if isinstance(names, list) else names).lstrip("/")
        if name.endswith("-previous"):
            continue  # kept stopped by the serve role for a rollback; not serving
        try:
            entry = {
                "model": labels[LABEL_PREFIX + "model"],
                "replica": int(labels[LABEL_PREFIX + "replica"]),
                "host": host,
                "devices": [device for device in labels[LABEL_PREFIX + "devices"].split(",") if device],
                "port": int(labels[LABEL_PREFIX + "port"]),
            }
        except (KeyError, ValueError) as error:
            raise ContainerSpecError("container %s on %s has npu.fleet labels that do not parse (%s): remove it or fix its labels"
                                     % (name, host, error))
        current.append(entry)
    current.sort(key=lambda item: (item["model"], item["replica"]))
    return current


def container_changes(specs, containers, catalogue_models, prune=False):
    """Which existing npu.fleet containers a run replaces and which it removes.

    ``replace``: names of the wanted containers that exist with another spec
    hash (the serve role keeps them stopped as ``<name>-previous`` until the new
    one is healthy). ``remove``: containers the plan no longer wants here - a
    replica that moved to another host always goes, one of a model dropped from
    the catalogue only with ``prune`` (someone may still use it). Containers
    kept for a rollback (``-previous``) are neither.
    """
    existing = {}
    for container in containers or []:
        names = container.get("Names") or [container.get("Name") or ""]
        name = (names[0] if isinstance(names, list) else names).lstrip("/")
        existing[name] = container.get("Labels") or (container.get("Config") or {}).get("Labels") or {}
    wanted = dict((spec["name"], spec) for spec in specs or [])
    replace = sorted(name for name, spec in wanted.items()
                     if name in existing and existing[name].get(LABEL_PREFIX + "spec-hash") != spec["labels"][LABEL_PREFIX + "spec-hash"])
    models = set(catalogue_models or [])
    remove = sorted(name for name, labels in existing.items()
                    if name not in wanted and not name.endswith("-previous")
                    and (labels.get(LABEL_PREFIX + "model") in models or prune))
    return {"replace": replace, "remove": remove}
