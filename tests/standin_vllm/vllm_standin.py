#!/usr/bin/env python
"""Stand-in ``vllm`` for npu.fleet tests (no NPUs exist where tests run).

TEST EQUIPMENT ONLY: installed as /usr/local/bin/vllm in the stand-in image
that replaces quay.io/ascend/vllm-ascend. ``vllm serve <model> [flags]`` is
parsed with argparse against the option table of one real vLLM version
(fixtures/vllm-<version>-serve-args.json, made by
scripts/extract_vllm_serve_args.py from vLLM source), so a flag the real
``vllm serve`` rejects is rejected here with argparse's own message. Then the
NPU device nodes, ASCEND_RT_VISIBLE_DEVICES and --tensor-parallel-size are
checked for consistency and failures print the lines real CANN / vLLM print.
When everything fits, the validated configuration is printed and the tiny
server in VLLM_STANDIN_EXEC is exec'd with NPU_SERVE_* variables.
Python 3.11 standard library only.
"""

import argparse
import json
import os
import re
import shlex
import sys

DEFAULT_ARGS_FILE = "/opt/vllm-standin/serve-args.json"
DEFAULT_EXEC = "gunicorn -c /opt/npu-fleet-server/gunicorn.conf.py"
DEFAULT_MODEL_DIR = "/opt/tiny-model"
# ModelConfig.model default; the serve DESCRIPTION says "Defaults to Qwen/Qwen3-0.6B".
DEFAULT_MODEL_TAG = "Qwen/Qwen3-0.6B"
# vllm/entrypoints/cli/main.py registers these subcommands (same at v0.13.0 and v0.15.0).
SUBCOMMANDS = ("chat", "complete", "serve", "bench", "collect-env", "run-batch")
CONTROL_NODES = ("davinci_manager", "devmm_svm", "hisi_hdc")
# Qwen3-8B in bf16: 36 layers x 8 KV heads x 128 head_dim x 2 (K and V) x 2 bytes.
DEFAULT_KV_BYTES_PER_TOKEN = 147456
GIB = 1 << 30
SECRET_DESTS = ("api_key", "hf_token")
NO_DEVICE_LINES = (
    "aclrtGetDeviceCount(&device_count), error code is 207004",
    "rtGetDeviceCount execute failed, reason=[driver error:no valid device]",
)


class StartupError(Exception):
    """A failure the real server reports after parsing: printed line by line, exit 1."""

    def __init__(self, *lines):
        super().__init__(lines[0])
        self.lines = lines


def human_readable_int(value):
    """Same accepted forms as vLLM's human_readable_int: 8192, 8k (8000), 8K (8192)."""
    value = value.strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmMgGtT])", value)
    if not match:
        return int(value)
    number, suffix = match.groups()
    if suffix.islower():
        return int(float(number) * 10 ** (3 * "kmgt".index(suffix) + 3))
    try:
        return int(number) * 2 ** (10 * "KMGT".index(suffix) + 10)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"Decimals are not allowed with binary suffixes like {suffix}. Did you mean to use {number}{suffix.lower()} instead?"
        ) from exc


def json_value(value):
    """Config-dataclass flags take JSON; vLLM rejects text that is not JSON before anything starts."""
    try:
        json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"invalid JSON {value!r}: {exc}") from exc
    return value


def optional_type(return_type):
    """vLLM's optional_type(): '' and 'None' mean None, other text must convert."""

    def _optional_type(val):
        if val in ("", "None"):
            return None
        try:
            return return_type(val)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"Value {val} cannot be converted to {return_type}.") from exc

    return _optional_type


TYPES = {"int": int, "float": float, "human_readable_int": human_readable_int, "json": json_value}


def load_spec(path):
    """Read the fixture; a missing or broken file is a broken image, not a user error."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        raise StartupError(f"vllm-standin: cannot read option table {path}: {exc}") from exc


def argparse_type(entry):
    """Pick the converter argparse would call for this option (None = keep the string)."""
    convert = TYPES.get(entry.get("type"))
    if entry.get("none_ok"):
        return optional_type(convert or str)
    return convert


def add_options(serve, spec):
    """Register every option of the fixture on the serve subparser the way vLLM does."""
    aliases = {}
    for short, long_flag in spec["aliases"].items():
        aliases.setdefault(long_flag, []).append(short)
    for flag, entry in spec["options"].items():
        if flag == "--help" or "negates" in entry:
            continue  # argparse adds -h/--help; BooleanOptionalAction adds the --no- twin
        strings = [flag, *aliases.get(flag, [])]
        kwargs = {"dest": entry["dest"]}
        if entry["arity"] == "none":
            twin = spec["options"].get(f"--no-{flag[2:]}", {})
            kwargs["action"] = argparse.BooleanOptionalAction if twin.get("negates") == flag else "store_true"
        else:
            kwargs["nargs"] = {"one": None, "optional": "?", "many": "+"}.get(entry["arity"], entry["arity"])
            if entry["arity"] == "optional":
                kwargs["const"] = True
            if entry.get("repeatable"):
                kwargs["action"] = "append"
            if argparse_type(entry):
                kwargs["type"] = argparse_type(entry)
            if "choices" in entry:
                kwargs["choices"] = entry["choices"]
        serve.add_argument(*strings, **kwargs)


def build_parser(spec):
    """Top-level `vllm` parser with the real subcommand names; only serve carries options."""
    parser = argparse.ArgumentParser(prog="vllm", description="vLLM CLI (npu.fleet test stand-in)")
    parser.add_argument("-v", "--version", action="version", version=spec["vllm_version"].lstrip("v"))
    subparsers = parser.add_subparsers(required=False, dest="subparser")
    for name in SUBCOMMANDS:
        if name == "serve":
            serve = subparsers.add_parser(name, usage=spec.get("usage") or "vllm serve [model_tag] [options]")
            serve.add_argument(spec["positional"]["name"], nargs=spec["positional"]["nargs"])
            add_options(serve, spec)
        else:
            subparsers.add_parser(name, add_help=False)
    return parser


def dashes_in_key(arg):
    """FlexibleArgumentParser turns underscores into dashes between '--' and the first '.'."""
    key, eq, value = arg.partition("=")
    head, dot, tail = key[2:].partition(".")
    return "--" + head.replace("_", "-") + dot + tail + eq + value


def move_model_option(args):
    """`vllm serve ... --model M` is rewritten to `vllm serve M ...` before parsing (deprecated form)."""
    for index, arg in enumerate(args):
        if arg == "--model" and index + 1 < len(args):
            return [args[0], args[index + 1], *args[1:index], *args[index + 2 :]]
        if arg.startswith("--model="):
            return [args[0], arg.removeprefix("--model="), *args[1:index], *args[index + 1 :]]
    return args


def rewrite_optimization_level(args, target):
    """-O3, -O=3 and -O 3 become --optimization-level 3."""
    out = []
    for index, arg in enumerate(args):
        if arg.startswith("-O") and arg != "-O":
            out += [target, arg[3:] if arg[2] == "=" else arg[2:]]
        elif arg == "-O" and index + 1 < len(args) and args[index + 1] in {"0", "1", "2", "3"}:
            out.append(target)
        else:
            out.append(arg)
    return out


def merge_dotted(args):
    """`--flag.key value` / `--flag.key=value` / `--flag.key+ a,b` are folded into `--flag <json>`."""
    out, merged, skip = [], {}, False
    for index, arg in enumerate(args):
        if skip:
            skip = False
            continue
        key = arg.split("=", 1)[0]
        if not (arg.startswith("-") and "." in key):
            out.append(arg)
            continue
        if "=" in arg:
            key, raw = arg.split("=", 1)
        else:
            raw = args[index + 1] if index + 1 < len(args) else ""
            skip = True
        if key.endswith("+"):
            key, raw = key[:-1], json.dumps(raw.split(","))
        base, *path = key.split(".")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = merged.setdefault(base, {})
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    for base, value in merged.items():
        out += [base, json.dumps(value)]
    return out


def rewrite_argv(args, spec):
    """Apply the argv rewrites FlexibleArgumentParser.parse_args makes before argparse runs."""
    rewrites = spec.get("argv_rewrites", {})
    if args and args[0] == "serve" and rewrites.get("model_option_moved_to_positional"):
        args = move_model_option(args)
    if "--config" in args or any(arg.startswith("--config=") for arg in args):
        print("vllm-standin: --config (YAML options file) is not emulated; pass the options as flags", file=sys.stderr)
        sys.exit(2)
    if rewrites.get("help_search"):
        args = ["--help" if arg.startswith("--help=") else arg for arg in args]
    if rewrites.get("underscores_to_dashes"):
        args = [dashes_in_key(arg) if arg.startswith("--") else arg for arg in args]
    if rewrites.get("short_O"):
        args = rewrite_optimization_level(args, rewrites["short_O"])
    if rewrites.get("dotted_json_keys"):
        args = merge_dotted(args)
    return args


def check_frontend_args(ns):
    """validate_parsed_serve_args(): two flag pairs vLLM refuses before loading anything."""
    if getattr(ns, "enable_auto_tool_choice", False) and not getattr(ns, "tool_call_parser", None):
        raise StartupError("TypeError: Error: --enable-auto-tool-choice requires --tool-call-parser")
    if getattr(ns, "enable_log_outputs", False) and not getattr(ns, "enable_log_requests", False):
        raise StartupError("TypeError: Error: --enable-log-outputs requires --enable-log-requests")


def count_npus(dev_dir):
    """Count /dev/davinciN nodes and require the three control nodes every NPU container needs."""
    missing = [node for node in CONTROL_NODES if not os.path.exists(os.path.join(dev_dir, node))]
    if missing:
        raise StartupError(f"vllm-standin: missing {', '.join(os.path.join(dev_dir, m) for m in missing)}", *NO_DEVICE_LINES)
    try:
        names = os.listdir(dev_dir)
    except OSError:
        names = []
    count = sum(1 for name in names if re.fullmatch(r"davinci\d+", name))
    if count == 0:
        raise StartupError(f"vllm-standin: no {dev_dir}/davinciN node in the container", *NO_DEVICE_LINES)
    return count


def check_visible_devices(value, count):
    """ASCEND_RT_VISIBLE_DEVICES takes container-logical ids 0..k-1, never host ids."""
    if value is None:
        return
    ids = [part.strip() for part in value.split(",")]
    for part in ids:
        if not part.isdigit() or int(part) >= count:
            raise StartupError(
                f"set ASCEND_RT_VISIBLE_DEVICES:[{part}] error, input data rang[0-{count})",
                f"vllm-standin: ASCEND_RT_VISIBLE_DEVICES={value} but the container sees {count} NPU(s), numbered 0..{count - 1}",
            )
    if sorted(int(part) for part in ids) != list(range(count)):
        raise StartupError(
            f"vllm-standin: ASCEND_RT_VISIBLE_DEVICES={value} must list exactly 0..{count - 1} (or be unset) for the {count} mounted NPU(s)"
        )


def check_world_size(ns, count):
    """Each container owns exactly the NPUs its ranks use: tp x pp x dp must equal the mounted count."""
    tensor = ns.tensor_parallel_size or 1
    world = tensor * (getattr(ns, "pipeline_parallel_size", None) or 1) * (getattr(ns, "data_parallel_size", None) or 1)
    if world > count:
        raise StartupError(
            f"open device {count} failed, runtime result = 107001",
            f"vllm-standin: --tensor-parallel-size {tensor} needs {world} NPU(s) but {count} are mounted",
        )
    if world < count:
        raise StartupError(
            f"vllm-standin: --tensor-parallel-size {tensor} uses {world} NPU(s) but {count} are mounted; "
            "mount exactly the NPUs the server uses"
        )


def format_gib(num_bytes, version):
    """v0.13.0 prints f'{x:.2f}', from v0.15.0 on vllm.utils.mem_utils.format_gib rounds to 2 places."""
    parts = tuple(int(p) for p in re.findall(r"\d+", version)[:2])
    return f"{round(num_bytes / GIB, 2)}" if parts >= (0, 15) else f"{num_bytes / GIB:.2f}"


def check_kv_limit(max_model_len, version):
    """VLLM_STANDIN_KV_LIMIT (tokens) plays the KV cache that fits; longer max-model-len fails like vLLM V1."""
    limit = os.environ.get("VLLM_STANDIN_KV_LIMIT")
    if not limit or max_model_len is None or max_model_len <= 0:
        return
    limit = int(limit)
    if max_model_len <= limit:
        return
    per_token = int(os.environ.get("VLLM_STANDIN_KV_BYTES_PER_TOKEN", DEFAULT_KV_BYTES_PER_TOKEN))
    needed = format_gib(max_model_len * per_token, version)
    available = format_gib(limit * per_token, version)
    raise StartupError(
        f"ValueError: To serve at least one request with the models's max seq len ({max_model_len}), ({needed} GiB KV cache is needed, "
        f"which is larger than the available KV cache memory ({available} GiB). Based on the available memory, the estimated maximum "
        f"model length is {limit}. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine. "
        "See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details."
    )


def serve_env(ns, model_tag):
    """NPU_SERVE_* for the tiny server; stale values from the image are dropped first."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NPU_SERVE_")}
    env["NPU_SERVE_MODEL"] = os.environ.get("VLLM_STANDIN_MODEL", DEFAULT_MODEL_DIR)
    env["NPU_SERVE_SERVED_MODEL_NAME"] = (ns.served_model_name or [model_tag])[0]
    env["NPU_SERVE_PORT"] = str(ns.port if ns.port is not None else 8000)
    env["NPU_SERVE_HOST"] = ns.host or "0.0.0.0"
    if ns.max_model_len is not None:
        env["NPU_SERVE_MAX_MODEL_LEN"] = str(ns.max_model_len)
    # api_server.py: `args.api_key or [envs.VLLM_API_KEY]`
    keys = [key for key in (ns.api_key or [os.environ.get("VLLM_API_KEY")]) if key]
    if keys:
        env["NPU_SERVE_API_KEY"] = keys[0]
    return env


def serve(ns, spec):
    """Everything after a successful parse: consistency checks, report, exec."""
    check_frontend_args(ns)
    model_tag = ns.model_tag or DEFAULT_MODEL_TAG
    count = count_npus(os.environ.get("VLLM_STANDIN_DEV", "/dev"))
    check_visible_devices(os.environ.get("ASCEND_RT_VISIBLE_DEVICES"), count)
    check_world_size(ns, count)
    check_kv_limit(ns.max_model_len, spec["vllm_version"])
    command = shlex.split(os.environ.get("VLLM_STANDIN_EXEC", DEFAULT_EXEC))
    if not command:
        raise StartupError("vllm-standin: VLLM_STANDIN_EXEC is empty")
    env = serve_env(ns, model_tag)
    given = {
        key: ("<redacted>" if key in SECRET_DESTS else value)
        for key, value in sorted(vars(ns).items())
        if value not in (None, False) and key not in ("subparser", "model_tag")
    }
    report = {
        "vllm_version": spec["vllm_version"],
        "model_tag": model_tag,
        "npus": count,
        "ascend_rt_visible_devices": os.environ.get("ASCEND_RT_VISIBLE_DEVICES"),
        "args": given,
        "env": {key: value for key, value in sorted(env.items()) if key.startswith("NPU_SERVE_") and key != "NPU_SERVE_API_KEY"},
        "exec": command,
    }
    print("vllm-standin: " + json.dumps(report, sort_keys=True, default=str), flush=True)
    os.execvpe(command[0], command, env)


def main(argv=None):
    """Parse like vLLM, then check the NPU wiring; exit codes follow argparse (2) and a failed start (1)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        spec = load_spec(os.environ.get("VLLM_STANDIN_ARGS", DEFAULT_ARGS_FILE))
        parser = build_parser(spec)
        ns = parser.parse_args(rewrite_argv(argv, spec))
        if ns.subparser is None:
            parser.print_help()
            return 0
        if ns.subparser != "serve":
            print(f"vllm-standin: only `vllm serve` is emulated, not `vllm {ns.subparser}`", file=sys.stderr)
            return 2
        serve(ns, spec)
    except StartupError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
