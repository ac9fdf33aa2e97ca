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
import os
import posixpath
import re
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.npu.fleet.plugins.module_utils._compat_data import VllmVersionError, vllm_version_key
from ansible_collections.npu.fleet.plugins.module_utils._kv_fit import DEFAULT_MIN_MODEL_LEN

__all__ = [
    "BACKENDS",
    "CatalogueError",
    "DEFAULT_MODEL_ROOT",
    "FIELDS",
    "HUBS",
    "PLAN_OWNED_FLAGS",
    "SERVE_FIELDS",
    "SOURCE_FIELDS",
    "SOURCE_TYPES",
    "SOURCE_TYPE_FIELDS",
    "STAGES",
    "TP_SIZES",
    "catalogue_warnings",
    "controller_path_of",
    "default_of",
    "entry_warnings",
    "fields_read_by",
    "host_path_of",
    "profile_location",
    "source_of",
    "validate_catalogue",
    "validate_entry",
    "with_host_paths",
]

# The stages that read catalogue fields, in the order a deploy runs them
# ("sources": verify, copy or download the weights on the hosts the plan chose).
STAGES = ("profiles", "image_select", "plan", "sources", "serve", "probe", "gateway")
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


# --------------------------------------------------------------------------- where the weights come from

SOURCE_TYPES = ("host", "controller", "hub")
HUBS = ("huggingface", "modelscope")
# Where controller and hub sources land on the hosts (<root>/<name>) unless host_path says otherwise;
# the play variable npu_fleet_model_root overrides it.
DEFAULT_MODEL_ROOT = "/data/models"
DEFAULT_TOKEN_VAR = "npu_fleet_hub_token"

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_REVISION = re.compile(r"^[A-Za-z0-9._/-]+$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Directory names a model may get under npu_fleet_model_root without a host_path.
_DIR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Keys of source that would hold a secret: refused without echoing their value.
_SECRET_WORDS = ("token", "password", "secret", "api_key", "apikey", "credential")


def _check_repo(value: Any, where: str) -> str:
    text = _as_str(value, where)
    if "://" in text or text.lower().startswith(("huggingface.co/", "hf.co/", "modelscope.cn/", "www.")):
        raise CatalogueError(
            "%s is the repository id such as Qwen/Qwen3-8B, not an address; put the address of a mirror in source.endpoint" % where
        )
    if not _REPO_ID.match(text) or ".." in text:
        raise CatalogueError("%s %r is not a repository id; write owner/name as the hub shows it, such as Qwen/Qwen3-8B" % (where, text))
    return text


def _check_revision(value: Any, where: str) -> str:
    text = _as_str(value, where)
    if not _REVISION.match(text) or ".." in text:
        raise CatalogueError("%s %r is not a commit, branch or tag name; pin the commit sha the hub shows for the files" % (where, text))
    return text


def _check_endpoint(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CatalogueError("%s must be the address of the hub or a mirror, such as https://hf-mirror.com" % where)
    text = value.strip()
    scheme, _sep, rest = text.partition("://")
    host = rest.split("/", 1)[0]
    if "@" in host or "token" in text.lower():
        # Never echo it: the address may carry a secret.
        raise CatalogueError(
            "%s carries credentials; a token never goes in the catalogue: give the bare address and put the token in "
            "a vaulted variable (%s, or the one named by source.token_var)" % (where, DEFAULT_TOKEN_VAR)
        )
    if scheme.lower() not in ("http", "https") or not host or any(char.isspace() for char in text) or "?" in text or "#" in text:
        raise CatalogueError("%s %r is not an http(s) address; give one such as https://hf-mirror.com" % (where, text))
    return text


def _check_patterns(value: Any, where: str) -> List[str]:
    patterns = _as_str_list(value, where)
    if not patterns or any(not pattern.strip() for pattern in patterns):
        raise CatalogueError(
            "%s must list glob patterns such as ['*.safetensors', '*.json']; remove it to get the default "
            "(weights, config, tokenizer, generation config)" % where
        )
    return patterns


def _check_token_var(value: Any, where: str) -> str:
    # The value is never echoed: someone may have put the token itself here.
    if not isinstance(value, str) or not _VARIABLE.match(value.strip()):
        raise CatalogueError(
            "%s must be the name of the variable that holds the token (letters, digits and _), not the token "
            "itself; for example token_var: vault_hf_token, with vault_hf_token in a vaulted file" % where
        )
    text = value.strip()
    if text.lower().startswith("hf_") and len(text) >= 30 and text[3:].isalnum() and text[3:].lower() != text[3:]:
        raise CatalogueError(
            "%s looks like a Hugging Face token itself, and a token never goes in the catalogue: put it in a vaulted "
            "variable and give that variable's name here (revoke the token if this file was shared)" % where
        )
    return text


SOURCE_FIELDS = (
    Field(
        "type",
        "str",
        ("profiles", "sources"),
        "Where the weights come from: V(host) - already on the hosts at C(host_path) (verified there, profiled on the "
        "controller when C(path) is there, else on a host that holds them); V(controller) - a directory on the controller, "
        "profiled there and copied to the hosts the plan chose; V(hub) - profiled from the hub, downloaded on the hosts "
        "the plan chose.",
        "hub",
        default="host",
        choices=SOURCE_TYPES,
    ),
    Field(
        "path",
        "str",
        ("profiles", "sources"),
        "V(controller) only: the checkpoint directory on the controller; default the entry's C(path).",
        "/srv/models/Qwen3-8B",
    ),
    Field("hub", "str", ("profiles", "sources"), "V(hub) only: which hub's API to use.", "modelscope", default="huggingface", choices=HUBS),
    Field(
        "repo",
        "str",
        ("profiles", "sources"),
        "V(hub) only, required: the repository id, as the hub shows it.",
        "Qwen/Qwen3-8B",
        check=_check_repo,
    ),
    Field(
        "revision",
        "str",
        ("profiles", "sources"),
        "V(hub) only, required: the commit to download (the 40-character sha), so every run deploys the same files; a "
        "branch or tag name is accepted with a warning, as it can move between runs.",
        "0123456789abcdef0123456789abcdef01234567",
        check=_check_revision,
    ),
    Field(
        "endpoint",
        "str",
        ("profiles", "sources"),
        "V(hub) only: address of the hub or of a mirror (V(https://hf-mirror.com)); default the hub's public address. "
        "No credentials in it.",
        "https://hf-mirror.com",
        check=_check_endpoint,
    ),
    Field(
        "allow_patterns",
        "list",
        ("sources",),
        "V(hub) only: glob patterns of the files to download; default weights, config, tokenizer and generation "
        "config, never the whole repository.",
        ["*.safetensors", "*.json", "tokenizer*"],
        elements="str",
        check=_check_patterns,
    ),
    Field(
        "token_var",
        "str",
        ("profiles", "sources"),
        "V(hub) only: name of the variable holding the hub token (vault it; it is kept out of every output); default "
        "C(npu_fleet_hub_token). A token itself is refused here.",
        "vault_modelscope_token",
        check=_check_token_var,
    ),
)
# The fields each source type takes.
SOURCE_TYPE_FIELDS = {
    "host": ("type",),
    "controller": ("type", "path"),
    "hub": ("type", "hub", "repo", "revision", "endpoint", "allow_patterns", "token_var"),
}


def _check_source(value: Any, where: str) -> Dict[str, Any]:
    if isinstance(value, str) and value.strip() in SOURCE_TYPES:
        raise CatalogueError("%s is a mapping: write source: {type: %s} (docs/model-sources.md)" % (where, value.strip()))
    if not isinstance(value, dict):
        raise CatalogueError(
            "%s must be a mapping such as {type: hub, repo: Qwen/Qwen3-8B, revision: <commit>} (types: %s), got %s"
            % (where, ", ".join(SOURCE_TYPES), type(value).__name__)
        )
    secrets = sorted(str(key) for key in value if key != "token_var" and any(word in str(key).lower() for word in _SECRET_WORDS))
    if secrets:
        raise CatalogueError(
            "%s.%s: a token never goes in the catalogue (it would be in every copy of it and in the run's output); remove "
            "it, put the token in a vaulted variable (%s by default) and name another variable with source.token_var "
            "if needed" % (where, secrets[0], DEFAULT_TOKEN_VAR)
        )
    clean = _check_fields(value, SOURCE_FIELDS, where)
    kind = clean.get("type", "host")
    for key in clean:
        if key not in SOURCE_TYPE_FIELDS[kind]:
            owner = next(name for name, keys in SOURCE_TYPE_FIELDS.items() if key in keys)
            raise CatalogueError("%s.%s applies to type %s, not %s; remove it or set type: %s" % (where, key, owner, kind, owner))
    if kind == "hub":
        if "repo" not in clean:
            raise CatalogueError("%s: type hub needs repo, the repository id such as Qwen/Qwen3-8B" % where)
        if clean.get("hub") == "modelscope" and "/" not in clean["repo"]:
            raise CatalogueError(
                "%s: repo %r is not a ModelScope repository id, which is always owner/name (such as Qwen/Qwen3-8B)" % (where, clean["repo"])
            )
        if "revision" not in clean:
            raise CatalogueError(
                "%s: type hub needs revision, the commit to download: pin the 40-character sha the hub shows under "
                "'Files and versions' (a branch name such as main is accepted, with a warning)" % where
            )
    return clean


# --------------------------------------------------------------------------- the table

FIELDS = (
    Field("name", "str", STAGES, "Unique name; the served model name, the key of every per-model fact and the container name.", "qwen3-8b"),
    Field(
        "path",
        "str",
        ("profiles", "sources", "serve"),
        "Checkpoint directory on the controller, profiled there (config and safetensors headers only); with source "
        "V(host) also the directory on the hosts when C(host_path) is not given, and the checkpoint is profiled on a "
        "host when the controller does not have it; with source V(controller) the directory copied. Not with source V(hub).",
        "/data/models/qwen3-8b",
    ),
    Field(
        "host_path",
        "str",
        ("sources", "serve"),
        "Absolute model directory on the NPU hosts, mounted read-only into the container; default C(path) with source "
        "V(host), C(npu_fleet_model_root)/<name> (V(/data/models)/<name>) with sources V(controller) and V(hub).",
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
        "profile_host",
        "str",
        ("profiles",),
        "Inventory host that holds C(path) (else C(host_path)) and profiles it, instead of the controller; source V(host) only.",
        "storage-01",
    ),
    Field(
        "source",
        "dict",
        ("profiles", "sources"),
        "Where the weights come from and how they reach the hosts: C(type) V(host) (the default: already on the hosts), "
        "V(controller) (copied from the controller) or V(hub) (downloaded on the hosts); its fields are listed in "
        "docs/catalogue.md, how each source works in docs/model-sources.md.",
        {"type": "hub", "repo": "Qwen/Qwen3-8B", "revision": "0123456789abcdef0123456789abcdef01234567"},
        check=_check_source,
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
    _check_source_rules(clean, where)
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


def _check_source_rules(clean: Dict[str, Any], where: str) -> None:
    """Rules between the source and the other fields of one entry."""
    source = clean.get("source") or {}
    kind = source.get("type", "host")
    if kind == "host":
        if "profile" not in clean and "path" not in clean and "host_path" not in clean:
            raise CatalogueError(
                "%s: give 'profile' (from npu.fleet.model_profile) or 'path' (a checkpoint directory on the controller) "
                "or 'host_path' (the directory on the hosts, profiled on a host that holds it), or a source that "
                "brings the weights (docs/model-sources.md)" % where
            )
        return
    if clean.get("profile_host"):
        raise CatalogueError(
            "%s: profile_host applies to source type host; a %s source is profiled %s, so remove profile_host"
            % (where, kind, "on the controller" if kind == "controller" else "from the hub (config and safetensors headers over HTTP)")
        )
    if kind == "controller":
        if "path" not in source and "path" not in clean:
            raise CatalogueError(
                "%s: source type controller needs source.path, the checkpoint directory on the controller (or the entry's path)" % where
            )
        if "path" in source and "path" in clean and source["path"] != clean["path"]:
            raise CatalogueError(
                "%s: source.path %r and path %r differ; give the controller directory once, as source.path (host_path says "
                "where it goes on the hosts)" % (where, source["path"], clean["path"])
            )
    if kind == "hub" and "path" in clean:
        raise CatalogueError(
            "%s: path is a directory on the controller, and a hub source has none (the hosts download it); remove path, "
            "and set host_path for the directory on the hosts (default npu_fleet_model_root/<name>)" % where
        )
    if "host_path" not in clean and not _DIR_NAME.match(clean["name"]):
        raise CatalogueError(
            "%s: a %s source goes to npu_fleet_model_root/<name> on the hosts, and %r is not a plain directory name "
            "(letters, digits, '.', '_', '-'); set host_path" % (where, kind, clean["name"])
        )


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
        _check_shared_directory(entries, index)
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


def _host_dir(entry: Dict[str, Any]) -> str:
    """The entry's directory on the hosts, with npu_fleet_model_root left symbolic (it is a play variable)."""
    path = entry.get("host_path") or (entry.get("path") if source_of(entry)["type"] == "host" else None)
    return posixpath.normpath(path) if path else "<npu_fleet_model_root>/" + entry["name"]


def _check_shared_directory(entries: List[Dict[str, Any]], index: int) -> None:
    """A controller or hub source writes its directory: no other entry may use that directory or one inside it."""
    entry = entries[index]
    mine = _host_dir(entry)
    for other_index in range(index):
        other = entries[other_index]
        if source_of(entry)["type"] == "host" and source_of(other)["type"] == "host":
            continue
        theirs = _host_dir(other)
        if mine == theirs or mine.startswith(theirs + "/") or theirs.startswith(mine + "/"):
            raise CatalogueError(
                "%s and %s share the host directory %s (or one holds the other), and a %s source writes into it; give "
                "each its own host_path"
                % (_where(other_index, other), _where(index, entry), min(mine, theirs, key=len), _writer(entry, other))
            )


def _writer(entry: Dict[str, Any], other: Dict[str, Any]) -> str:
    kind = source_of(entry)["type"]
    return kind if kind != "host" else source_of(other)["type"]


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


# --------------------------------------------------------------------------- readers of source


def source_of(entry: Dict[str, Any]) -> Dict[str, Any]:
    """The entry's source with the defaults of its type filled in (a validated entry)."""
    source = dict(entry.get("source") or {})
    source.setdefault("type", "host")
    if source["type"] == "hub":
        source.setdefault("hub", "huggingface")
        source.setdefault("token_var", DEFAULT_TOKEN_VAR)
    elif source["type"] == "controller":
        source.setdefault("path", entry.get("path"))
    return source


def controller_path_of(entry: Dict[str, Any]) -> Optional[str]:
    """The checkpoint directory on the controller of a controller source, else None."""
    source = source_of(entry)
    return source["path"] if source["type"] == "controller" else None


def _model_root(model_root: Any) -> str:
    if not isinstance(model_root, str) or not posixpath.isabs(model_root.strip()):
        raise CatalogueError(
            "npu_fleet_model_root must be an absolute path on the NPU hosts, got %r; for example /data/models" % (model_root,)
        )
    return posixpath.normpath(model_root.strip())


def host_path_of(entry: Dict[str, Any], model_root: Any = DEFAULT_MODEL_ROOT) -> Optional[str]:
    """The model directory on the hosts: host_path, else path (source host) or <model_root>/<name> (controller, hub)."""
    if entry.get("host_path"):
        return entry["host_path"]
    if source_of(entry)["type"] == "host":
        return entry.get("path")
    return posixpath.join(_model_root(model_root), entry["name"])


def with_host_paths(catalogue: List[Dict[str, Any]], model_root: Any = DEFAULT_MODEL_ROOT) -> List[Dict[str, Any]]:
    """The validated catalogue with host_path set on controller and hub entries that leave it out.

    Readers of host_path that predate sources (``host_path | default(path)``) then find the right directory.
    Source host entries are returned unchanged; the input is not modified.
    """
    return [
        dict(entry, host_path=host_path_of(entry, model_root))
        if source_of(entry)["type"] != "host" and not entry.get("host_path")
        else entry
        for entry in catalogue
    ]


def profile_location(entry: Dict[str, Any], on_controller: Callable[[str], bool] = os.path.isdir) -> Dict[str, Any]:
    """Where an entry is profiled: ``where`` is given, controller, host or hub.

    * given: the entry carries a profile;
    * hub: read config.json and the safetensors headers from the hub (``source``);
    * controller: ``path`` on the controller (a controller source; a host source whose ``path`` the controller holds,
      as before sources existed);
    * host: ``path`` on ``host``, which is profile_host, or None when the role should pick a host that holds the
      directory (one that may run the model).
    """
    source = source_of(entry)
    if entry.get("profile") is not None:
        return {"where": "given"}
    if source["type"] == "hub":
        return {"where": "hub", "source": source}
    if source["type"] == "controller":
        return {"where": "controller", "path": source["path"]}
    if entry.get("profile_host"):
        return {"where": "host", "host": entry["profile_host"], "path": entry.get("path") or entry.get("host_path")}
    if entry.get("path") and on_controller(entry["path"]):
        return {"where": "controller", "path": entry["path"]}
    return {"where": "host", "host": None, "path": host_path_of(entry)}


def entry_warnings(entry: Dict[str, Any], index: int = 0) -> List[str]:
    """What a valid entry should still change: a hub revision that is not a commit."""
    source = source_of(entry)
    warnings = []
    if source["type"] == "hub" and not _COMMIT.match(source["revision"]):
        warnings.append(
            "%s: source.revision %r is a branch or tag name, not a commit: the files can change between two runs, and "
            "hosts that download at different times can serve different weights. Pin the 40-character commit sha "
            "(the hub's 'Files and versions' page)." % (_where(index, entry), source["revision"])
        )
    return warnings


def catalogue_warnings(catalogue: List[Dict[str, Any]]) -> List[str]:
    """``entry_warnings`` of every entry of a validated catalogue."""
    return [warning for index, entry in enumerate(catalogue) for warning in entry_warnings(entry, index)]
