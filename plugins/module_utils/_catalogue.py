# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""The one schema of a catalogue entry (an item of ``npu_fleet_models``).

Every stage reads the same entries: image selection, the planner, the serve
role. Before this table each defined its own list of fields and they
disagreed (a documented ``force: true`` made the planner refuse the
catalogue). Now the fields, their types, defaults, allowed values and
readers are written down once, here; the catalogue is validated once at the
start of a play (``npu.fleet.model_catalogue``), the role argument specs and
``docs/catalogue.md`` are generated from this table, and a test feeds every
field to every stage.

``validate_catalogue(models)`` returns the entries with values coerced to
their types (extra vars arrive as text) and nothing added: a reader takes
an absent field's default from ``default_of(field)``, so defaults that come
from play variables (``image_select_backend``) keep working.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.npu.fleet.plugins.module_utils._compat_data import VllmVersionError, vllm_version_key
from ansible_collections.npu.fleet.plugins.module_utils._kv_fit import DEFAULT_MIN_MODEL_LEN

__all__ = [
    "BACKENDS",
    "CatalogueError",
    "FIELDS",
    "PLAN_OWNED_FLAGS",
    "SERVE_FIELDS",
    "STAGES",
    "TP_SIZES",
    "default_of",
    "fields_read_by",
    "validate_catalogue",
    "validate_entry",
]

# The stages that read catalogue fields, in the order a deploy runs them.
STAGES = ("profiles", "image_select", "plan", "serve", "probe", "gateway")
BACKENDS = ("auto", "vllm", "transformers")
TP_SIZES = (1, 2, 4, 8)
AUTO = "auto"


class CatalogueError(ValueError):
    """An invalid catalogue; the message names the entry, the field and the fix."""


class Field:
    """One field of a catalogue entry: its type, default, allowed values and readers."""

    __slots__ = ("name", "kind", "default", "choices", "stages", "description", "example", "check", "elements")

    def __init__(
        self,
        name: str,
        kind: str,
        stages: Tuple[str, ...],
        description: str,
        example: Any,
        default: Any = None,
        choices: Optional[Tuple[Any, ...]] = None,
        elements: Optional[str] = None,
        check: Optional[Callable[[Any, str], Any]] = None,
    ) -> None:
        self.name, self.kind, self.stages, self.description = name, kind, stages, description
        self.example, self.default, self.choices, self.elements, self.check = example, default, choices, elements, check


# --------------------------------------------------------------------------- coercions


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_int(value: Any, where: str, minimum: int, maximum: Optional[int] = None) -> int:
    """An integer (digit strings accepted: extra vars and survey answers arrive as text)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not _is_int(value) or value < minimum or (maximum is not None and value > maximum):
        bound = "%d..%d" % (minimum, maximum) if maximum is not None else ">= %d" % minimum
        raise CatalogueError("%s must be an integer %s, got %r" % (where, bound, value))
    return value


def _as_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "false", "no"):
        return value.strip().lower() in ("true", "yes")
    raise CatalogueError("%s must be true or false, got %r" % (where, value))


def _as_str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CatalogueError("%s must be a non-empty string, got %r" % (where, value))
    return value.strip()


def _as_str_list(value: Any, where: str) -> List[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise CatalogueError("%s must be a list of strings, got %r" % (where, value))
    for item in value:
        if not isinstance(item, (str, int, float)) or isinstance(item, bool):
            raise CatalogueError("%s must be a list of strings, got an item %r" % (where, item))
    return [str(item) for item in value]


def _as_str_map(value: Any, where: str) -> Dict[str, str]:
    if not isinstance(value, dict):
        raise CatalogueError("%s must be a mapping of names to values, got %r" % (where, value))
    for key, item in value.items():
        if isinstance(item, (dict, list, tuple)) or item is None:
            raise CatalogueError("%s.%s must be a plain value (text or number), got %r" % (where, key, item))
    return dict((str(key), str(item)) for key, item in value.items())


# --------------------------------------------------------------------------- field checks


def _check_tp(value: Any, where: str) -> Any:
    if value is None or (isinstance(value, str) and value.strip().lower() == AUTO):
        return AUTO
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not _is_int(value) or value not in TP_SIZES:
        raise CatalogueError("%s %r is not one of auto, 1, 2, 4, 8; set auto or one of those" % (where, value))
    return value


def _check_utilization(value: Any, where: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise CatalogueError("%s must be a number in (0, 1], got %r" % (where, value))
    return float(value)


def _check_share(value: Any, where: str) -> Any:
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    try:
        return _as_bool(value, where)
    except CatalogueError:
        raise CatalogueError("%s must be true or false (or auto), got %r" % (where, value)) from None


def _check_vllm_version(value: Any, where: str) -> str:
    text = _as_str(value, where)
    try:
        vllm_version_key(text)
    except VllmVersionError as exc:
        raise CatalogueError("%s: %s" % (where, exc)) from None
    return text


def _check_absolute(value: Any, where: str) -> str:
    text = _as_str(value, where)
    if not text.startswith("/"):
        raise CatalogueError("%s must be an absolute path on the NPU hosts, got %r" % (where, text))
    return text


def _check_profile(value: Any, where: str) -> Dict[str, Any]:
    """Only the shape: the planner's memory arithmetic names a profile field that is missing or wrong."""
    if not isinstance(value, dict):
        raise CatalogueError("%s must be the dict npu.fleet.model_profile returns, got %s" % (where, type(value).__name__))
    return value


# vllm serve flags npu.fleet sets from the plan (or keeps secret); extra_args may not set them.
PLAN_OWNED_FLAGS = (
    "--port",
    "--host",
    "--served-model-name",
    "--api-key",
    "--tensor-parallel-size",
    "-tp",
    "--max-model-len",
    "--gpu-memory-utilization",
)


def _check_extra_args(value: Any, where: str) -> List[str]:
    args = value if isinstance(value, (list, tuple)) else None
    if args is None or any(not isinstance(arg, str) for arg in args):
        raise CatalogueError("%s must be a list of strings such as ['--enforce-eager'], got %r" % (where, value))
    for arg in args:
        flag = arg.split("=", 1)[0]
        if flag in PLAN_OWNED_FLAGS:
            raise CatalogueError(
                "%s sets %s, which npu.fleet sets from the plan; remove it (set the catalogue field "
                "instead where there is one)" % (where, flag)
            )
    return list(args)


SERVE_FIELDS = (
    Field(
        "extra_args",
        "list",
        ("serve",),
        "Extra C(vllm serve) arguments; flags npu.fleet sets from the plan are refused.",
        ["--enforce-eager"],
        elements="str",
        check=_check_extra_args,
    ),
    Field(
        "env",
        "dict",
        ("serve",),
        "Extra container environment; variables npu.fleet sets itself are refused.",
        {"HCCL_BUFFSIZE": "512"},
        check=_as_str_map,
    ),
    Field(
        "dtype",
        "str",
        ("serve",),
        "Weights dtype (C(vllm serve --dtype) / the Transformers server); V(auto) keeps the checkpoint's.",
        "bfloat16",
        default="auto",
        choices=("auto", "bfloat16", "float16", "float32"),
    ),
    Field("shm_size", "str", ("serve",), "Shared memory of the container, over the role's C(serve_shm_size).", "2g"),
)


def _check_serve(value: Any, where: str) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise CatalogueError(
            "%s must be a mapping of container options (%s), got %r" % (where, ", ".join(field.name for field in SERVE_FIELDS), value)
        )
    return _check_fields(value, SERVE_FIELDS, where)


# --------------------------------------------------------------------------- the table

FIELDS = (
    Field("name", "str", STAGES, "Unique name; the served model name, the key of every per-model fact and the container name.", "qwen3-8b"),
    Field(
        "path",
        "str",
        ("profiles", "serve"),
        "Checkpoint directory on the controller, profiled there (config and safetensors headers only); also the "
        "directory on the hosts when C(host_path) is not given.",
        "/data/models/qwen3-8b",
    ),
    Field(
        "host_path",
        "str",
        ("serve",),
        "Absolute model directory on the NPU hosts, mounted read-only into the container; default C(path).",
        "/data/models/qwen3-8b",
        check=_check_absolute,
    ),
    Field(
        "profile",
        "dict",
        ("image_select", "plan"),
        "A profile returned by M(npu.fleet.model_profile); when given, C(path) is not profiled.",
        {},
        check=_check_profile,
    ),
    Field(
        "profile_host", "str", ("profiles",), "Inventory host that holds C(path) and profiles it, instead of the controller.", "storage-01"
    ),
    Field(
        "backend",
        "str",
        ("image_select", "plan"),
        "Backend wish; V(auto) prefers vLLM and falls back to the Transformers server with the reason; "
        "default the image_select role's C(image_select_backend) (V(auto)).",
        "auto",
        choices=BACKENDS,
    ),
    Field(
        "image",
        "str",
        ("image_select", "plan"),
        "Pinned image; refused with the reason when the compatibility rules reject it, unless C(force).",
        "quay.io/ascend/vllm-ascend:v0.15.0rc1",
    ),
    Field("force", "bool", ("image_select",), "Use the pinned C(image) even when the rules reject it.", True, default=False),
    Field(
        "vllm_min_version",
        "str",
        ("image_select",),
        "Oldest vllm-ascend release to choose (for example V(v0.14.0rc1)); default the role's C(image_select_vllm_min_version).",
        "v0.14.0rc1",
        check=_check_vllm_version,
    ),
    Field("replicas", "int", ("plan",), "Copies to run across the fleet; V(0) keeps the entry without running it.", 2, default=1),
    Field(
        "tensor_parallel_size",
        "raw",
        ("plan",),
        "Chips per replica: V(auto) (the fewest that fit) or 1, 2, 4, 8.",
        1,
        default=AUTO,
        check=_check_tp,
    ),
    Field("max_model_len", "int", ("plan",), "Context length wish; the planner caps it to what the KV cache of the chips holds.", 32768),
    Field(
        "min_model_len", "int", ("plan",), "Shortest context accepted when the wish must be capped.", 8192, default=DEFAULT_MIN_MODEL_LEN
    ),
    Field(
        "gpu_memory_utilization",
        "float",
        ("plan",),
        "Share of each chip's memory the replica may use (vLLM's C(--gpu-memory-utilization)); default 0.9, or a "
        "computed slice with C(share_chip).",
        0.85,
        check=_check_utilization,
    ),
    Field(
        "share_chip",
        "raw",
        ("plan",),
        "Several single-chip replicas on one chip, each with a memory slice: V(auto) only when whole chips run out, V(true) "
        "always, V(false) never. Slices of a chip sum below 1 - idle memory / total; shared containers get "
        "C(PYTORCH_NPU_ALLOC_CONF=expandable_segments:True).",
        True,
        default=AUTO,
        check=_check_share,
    ),
    Field("hosts", "list", ("plan",), "Only these inventory hosts may run the model.", ["npu-a2-01"], elements="str"),
    Field(
        "labels",
        "dict",
        ("plan",),
        "Only hosts whose C(fleet_plan_labels) include all these labels may run the model.",
        {"zone": "a"},
        check=_as_str_map,
    ),
    Field("spread", "bool", ("plan",), "Put replicas on different hosts where possible.", False, default=True),
    Field(
        "port",
        "int",
        ("plan",),
        "Host port of replica 0 (the next replicas count up); default a stable port from the host's port range.",
        18080,
    ),
    Field(
        "gateway_port",
        "int",
        ("gateway",),
        "Port of this model's own frontend on every gateway host (all its replicas behind it); default a stable port "
        "from C(npu_fleet_gateway_port_range) derived from the name.",
        9080,
    ),
    Field(
        "serve",
        "dict",
        ("serve",),
        "Per-model container options: %s." % ", ".join("C(%s)" % field.name for field in SERVE_FIELDS),
        {"extra_args": ["--enforce-eager"]},
        check=_check_serve,
    ),
)

_BY_NAME = dict((field.name, field) for field in FIELDS)
_INT_BOUNDS = {
    "replicas": (0, 100000),
    "max_model_len": (1, None),
    "min_model_len": (1, None),
    "port": (1, 65535),
    "gateway_port": (1, 65535),
}


def default_of(name: str) -> Any:
    """The default of a catalogue field (None where it has none or comes from a play variable)."""
    return _BY_NAME[name].default


def fields_read_by(stage: str) -> List[str]:
    """Names of the fields a stage reads."""
    return [field.name for field in FIELDS if stage in field.stages]


def _coerce(field: Field, value: Any, where: str) -> Any:
    where = "%s: %s" % (where, field.name)
    if field.check is not None and field.kind not in ("bool", "int"):
        value = field.check(value, where)
    elif field.kind == "str":
        value = _as_str(value, where)
    elif field.kind == "bool":
        value = _as_bool(value, where)
    elif field.kind == "int":
        low, high = _INT_BOUNDS.get(field.name, (0, None))
        value = _as_int(value, where, low, high)
    elif field.kind == "list":
        value = _as_str_list(value, where)
    elif field.kind == "dict" and not isinstance(value, dict):
        raise CatalogueError("%s must be a mapping, got %r" % (where, value))
    if field.choices is not None and value not in field.choices:
        raise CatalogueError("%s must be one of %s, got %r" % (where, ", ".join(str(choice) for choice in field.choices), value))
    return value


def _check_fields(entry: Dict[str, Any], fields: Tuple[Field, ...], where: str) -> Dict[str, Any]:
    known = dict((field.name, field) for field in fields)
    unknown = sorted(str(key) for key in entry if key not in known)
    if unknown:
        named = []
        for key in unknown:
            close = difflib.get_close_matches(key, list(known), 1)
            named.append("%s (did you mean %s?)" % (key, close[0]) if close else key)
        raise CatalogueError("%s: unknown field(s) %s; allowed: %s (see docs/catalogue.md)" % (where, ", ".join(named), ", ".join(known)))
    return dict((key, _coerce(known[key], value, where)) for key, value in entry.items() if value is not None)


def validate_entry(entry: Any, index: int = 0) -> Dict[str, Any]:
    """One catalogue entry, coerced; CatalogueError names the entry, the field and the fix."""
    if not isinstance(entry, dict):
        raise CatalogueError("npu_fleet_models[%d] must be a mapping with at least 'name' and 'path' or 'profile', got %r" % (index, entry))
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CatalogueError("npu_fleet_models[%d]: 'name' is required (a non-empty string)" % index)
    where = "npu_fleet_models[%d] (%s)" % (index, name.strip())
    clean = _check_fields(entry, FIELDS, where)
    if "profile" not in clean and "path" not in clean:
        raise CatalogueError(
            "%s: give 'profile' (from npu.fleet.model_profile) or 'path' (a checkpoint directory on the controller)" % where
        )
    if clean.get("force") and not clean.get("image"):
        raise CatalogueError("%s: force only applies to a pinned image; set image or remove force" % where)
    low, high = clean.get("min_model_len", DEFAULT_MIN_MODEL_LEN), clean.get("max_model_len")
    if high is not None and low > high:
        raise CatalogueError("%s: min_model_len %d exceeds max_model_len %d; lower min_model_len" % (where, low, high))
    if clean.get("share_chip") is True and clean.get("tensor_parallel_size", AUTO) not in (AUTO, 1):
        raise CatalogueError(
            "%s: share_chip needs tensor_parallel_size 1 (a shared chip holds whole replicas); "
            "set tensor_parallel_size: 1 or share_chip: false" % where
        )
    return clean


def _container_key(name: str) -> str:
    """The model part of the container name the serve role gives a replica (``_replica.container_name``)."""
    # Imported here: _replica imports this module for PLAN_OWNED_FLAGS.
    from ansible_collections.npu.fleet.plugins.module_utils._replica import container_name

    return container_name(name, 0)


def _where(index: int, entry: Dict[str, Any]) -> str:
    return "npu_fleet_models[%d] (%s)" % (index, entry["name"])


def _may_share_a_host(first: Dict[str, Any], second: Dict[str, Any]) -> bool:
    """False only when the entries' hosts lists or labels exclude each other."""
    if first.get("hosts") is not None and second.get("hosts") is not None and not set(first["hosts"]) & set(second["hosts"]):
        return False
    labels, other = first.get("labels") or {}, second.get("labels") or {}
    return all(labels[key] == other[key] for key in set(labels) & set(other))


def _port_block(entry: Dict[str, Any]) -> Tuple[int, int]:
    """Host ports a pinned entry's replicas take: port, port + 1, ... (one per replica)."""
    return entry["port"], entry["port"] + entry.get("replicas", default_of("replicas")) - 1


def _check_between_entries(entries: List[Dict[str, Any]]) -> None:
    """Rules across entries: container names, pinned replica ports and gateway ports do not collide."""
    containers = {}  # type: Dict[str, int]
    gateways = {}  # type: Dict[int, int]
    for index, entry in enumerate(entries):
        key = _container_key(entry["name"])
        if key in containers:
            first = containers[key]
            raise CatalogueError(
                "%s and %s both get the container name %s (characters Docker refuses in a name become '-'), so the "
                "second would replace the first on a host; rename one of them"
                % (_where(first, entries[first]), _where(index, entry), key.rsplit("-", 1)[0] + "-<replica>")
            )
        containers[key] = index
        port = entry.get("gateway_port")
        if port is not None:
            if port in gateways:
                raise CatalogueError(
                    "%s and %s both set gateway_port %d, and every gateway serves every model; change gateway_port "
                    "of one of them (or remove it to get a free one)"
                    % (_where(gateways[port], entries[gateways[port]]), _where(index, entry), port)
                )
            gateways[port] = index
    pinned = [(index, entry) for index, entry in enumerate(entries) if entry.get("port") is not None and entry.get("replicas") != 0]
    for position, (index, entry) in enumerate(pinned):
        low, high = _port_block(entry)
        for other_index, other in pinned[:position]:
            other_low, other_high = _port_block(other)
            if low <= other_high and other_low <= high and _may_share_a_host(entry, other):
                raise CatalogueError(
                    "%s pins %s and %s pins %s (port counts up per replica): they overlap, and two "
                    "replicas on one host cannot listen on one port; change port of %s (or remove it to let the "
                    "planner choose), or keep the two on different hosts with hosts or labels"
                    % (
                        _where(other_index, other),
                        _span(other_low, other_high),
                        _where(index, entry),
                        _span(low, high),
                        entry["name"],
                    )
                )


def _span(low: int, high: int) -> str:
    return "port %d" % low if low == high else "ports %d-%d" % (low, high)


def validate_catalogue(models: Any) -> List[Dict[str, Any]]:
    """Every entry validated; names unique, and entries do not collide (``_check_between_entries``).

    The input is not modified."""
    if models is None:
        raise CatalogueError(
            "npu_fleet_models is not set: give the list of models to serve (inventory group_vars or "
            "-e @catalogue.yml); see docs/catalogue.md"
        )
    if isinstance(models, dict) or isinstance(models, str) or not isinstance(models, (list, tuple)):
        raise CatalogueError(
            "npu_fleet_models must be a list of model entries (name, path or profile, replicas, ...), "
            "got %s; see docs/catalogue.md" % type(models).__name__
        )
    seen = {}  # type: Dict[str, int]
    result = []
    for index, entry in enumerate(models):
        clean = validate_entry(entry, index)
        if clean["name"] in seen:
            raise CatalogueError(
                "npu_fleet_models[%d] and npu_fleet_models[%d] are both named %r; model names must be "
                "unique (use replicas for more copies)" % (seen[clean["name"]], index, clean["name"])
            )
        seen[clean["name"]] = index
        result.append(clean)
    _check_between_entries(result)
    return result
