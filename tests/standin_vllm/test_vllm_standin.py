"""Tests for the stand-in ``vllm`` entry point and the option tables it reads.

The entry point runs as a subprocess, as it does in the stand-in image, with a
temporary option table, a temporary directory of fake device nodes
(VLLM_STANDIN_DEV) and VLLM_STANDIN_EXEC pointing at a one-liner that prints
the NPU_SERVE_* variables it was exec'd with.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
STANDIN = HERE / "vllm_standin.py"
FIXTURES = {version: HERE / "fixtures" / f"vllm-{version}-serve-args.json" for version in ("v0.13.0", "v0.15.0")}
PRINT_ENV = "import os,json;print(json.dumps({k:v for k,v in os.environ.items() if k.startswith('NPU_SERVE_')}))"
TYPICAL = [
    "serve",
    "/models/qwen3-8b",
    "--port",
    "8000",
    "--served-model-name",
    "qwen3-8b",
    "--max-model-len",
    "8192",
    "--gpu-memory-utilization",
    "0.9",
    "--tensor-parallel-size",
    "1",
    "--dtype",
    "bfloat16",
    "--api-key",
    "k",
]
SANITY_FLAGS = [
    "--max-model-len",
    "--gpu-memory-utilization",
    "--tensor-parallel-size",
    "--served-model-name",
    "--port",
    "--host",
    "--api-key",
    "--dtype",
    "--trust-remote-code",
    "--enforce-eager",
    "--max-num-seqs",
    "--block-size",
]
NODES_ONE_NPU = ("davinci0", "davinci_manager", "devmm_svm", "hisi_hdc")


def run_standin(tmp_path, args, version="v0.13.0", nodes=NODES_ONE_NPU, **env_extra):
    """Run the entry point with a temp option table and fake /dev; returns the CompletedProcess."""
    table = tmp_path / "opt" / "serve-args.json"
    table.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIXTURES[version], table)
    dev = tmp_path / "dev"
    dev.mkdir(exist_ok=True)
    for node in nodes:
        (dev / node).touch()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("NPU_SERVE_", "VLLM_", "ASCEND_"))}
    env.update(
        {
            "VLLM_STANDIN_ARGS": str(table),
            "VLLM_STANDIN_DEV": str(dev),
            "VLLM_STANDIN_MODEL": "/opt/tiny-model",
            "VLLM_STANDIN_EXEC": f"{shlex.quote(sys.executable)} -c {shlex.quote(PRINT_ENV)}",
        }
    )
    env.update(env_extra)
    return subprocess.run([sys.executable, str(STANDIN), *args], capture_output=True, text=True, env=env, timeout=60, check=False)


def exec_env(proc):
    """The report line, then the JSON the exec'd one-liner printed."""
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("vllm-standin: ")
    report = json.loads(lines[0].removeprefix("vllm-standin: "))
    return report, json.loads(lines[-1])


@pytest.mark.parametrize("version", sorted(FIXTURES))
def test_typical_command_execs_server_with_env(tmp_path, version):
    """The command npu.fleet emits is accepted by both versions and mapped onto NPU_SERVE_*."""
    proc = run_standin(tmp_path, TYPICAL, version=version)
    assert proc.returncode == 0, proc.stderr
    report, env = exec_env(proc)
    assert report["vllm_version"] == version
    assert report["args"]["api_key"] == "<redacted>"
    assert report["npus"] == 1
    assert env == {
        "NPU_SERVE_MODEL": "/opt/tiny-model",
        "NPU_SERVE_SERVED_MODEL_NAME": "qwen3-8b",
        "NPU_SERVE_MAX_MODEL_LEN": "8192",
        "NPU_SERVE_PORT": "8000",
        "NPU_SERVE_HOST": "0.0.0.0",
        "NPU_SERVE_API_KEY": "k",
    }


def test_defaults_when_flags_are_absent(tmp_path):
    """Served name falls back to the model tag, port 8000, host 0.0.0.0, no max len or key."""
    proc = run_standin(tmp_path, ["serve", "/models/qwen3-8b"])
    assert proc.returncode == 0, proc.stderr
    assert exec_env(proc)[1] == {
        "NPU_SERVE_MODEL": "/opt/tiny-model",
        "NPU_SERVE_SERVED_MODEL_NAME": "/models/qwen3-8b",
        "NPU_SERVE_PORT": "8000",
        "NPU_SERVE_HOST": "0.0.0.0",
    }


def test_equals_form_and_short_alias(tmp_path):
    """--flag=value and -tp=N parse like argparse does."""
    args = ["serve", "m", "--port=9001", "--host=127.0.0.1", "--max-model-len=4k", "--served-model-name=tiny", "-tp=1", "--api-key=s3"]
    proc = run_standin(tmp_path, args)
    assert proc.returncode == 0, proc.stderr
    env = exec_env(proc)[1]
    assert env["NPU_SERVE_PORT"] == "9001"
    assert env["NPU_SERVE_HOST"] == "127.0.0.1"
    assert env["NPU_SERVE_MAX_MODEL_LEN"] == "4000"
    assert env["NPU_SERVE_SERVED_MODEL_NAME"] == "tiny"
    assert env["NPU_SERVE_API_KEY"] == "s3"


def test_flexible_parser_rewrites(tmp_path):
    """Underscores, -O3 and dotted JSON keys are rewritten before parsing, as FlexibleArgumentParser does."""
    args = [
        "serve",
        "m",
        "--max_model_len",
        "2048",
        "-O3",
        "--compilation-config.cudagraph_mode",
        "PIECEWISE",
        "--no-enable-prefix-caching",
    ]
    proc = run_standin(tmp_path, args)
    assert proc.returncode == 0, proc.stderr
    report = exec_env(proc)[0]
    assert report["args"]["max_model_len"] == 2048
    assert report["args"]["optimization_level"] == "3"
    assert json.loads(report["args"]["compilation_config"]) == {"cudagraph_mode": "PIECEWISE"}


def test_unknown_flag_is_rejected_like_argparse(tmp_path):
    """argparse reports leftovers from the top-level `vllm` parser, exit 2."""
    proc = run_standin(tmp_path, [*TYPICAL, "--bogus"])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == "vllm: error: unrecognized arguments: --bogus"
    assert proc.stdout == ""


def test_flag_new_in_v0_15_0(tmp_path):
    """--enable-offline-docs (FrontendArgs.enable_offline_docs) exists at v0.15.0 only."""
    flags = {version: set(json.loads(path.read_text(encoding="utf-8"))["flags"]) for version, path in FIXTURES.items()}
    assert "--enable-offline-docs" in flags["v0.15.0"]
    assert "--enable-offline-docs" not in flags["v0.13.0"]
    ok = run_standin(tmp_path, [*TYPICAL, "--enable-offline-docs"], version="v0.15.0")
    assert ok.returncode == 0, ok.stderr
    old = run_standin(tmp_path, [*TYPICAL, "--enable-offline-docs"], version="v0.13.0")
    assert old.returncode == 2
    assert "unrecognized arguments: --enable-offline-docs" in old.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port"], "vllm serve: error: argument --port: expected one argument"),
        (["--api-key"], "vllm serve: error: argument --api-key: expected at least one argument"),
        (["--max-model-len", "--enforce-eager"], "vllm serve: error: argument --max-model-len: expected one argument"),
        (["--dtype", "bf16"], "vllm serve: error: argument --dtype: invalid choice: 'bf16'"),
        (["--port", "http"], "vllm serve: error: argument --port: invalid int value: 'http'"),
        (["--enforce-eager=yes"], "vllm serve: error: argument --enforce-eager/--no-enforce-eager: ignored explicit argument 'yes'"),
    ],
)
def test_bad_values_exit_2(tmp_path, args, message):
    """A flag without its value (or with a value argparse refuses) is a usage error."""
    proc = run_standin(tmp_path, ["serve", "m", *args])
    assert proc.returncode == 2
    assert message in proc.stderr


def test_host_id_as_visible_device(tmp_path):
    """Host NPU 6 mounted alone is device 0 inside; ASCEND_RT_VISIBLE_DEVICES=6 fails as in CANN."""
    proc = run_standin(tmp_path, TYPICAL, ASCEND_RT_VISIBLE_DEVICES="6")
    assert proc.returncode == 1
    assert "set ASCEND_RT_VISIBLE_DEVICES:[6] error, input data rang[0-1)" in proc.stderr.splitlines()


def test_visible_devices_must_list_all_mounted(tmp_path):
    """Logical ids 0..k-1 are accepted; a subset of the mounted NPUs is refused."""
    two = ("davinci0", "davinci1", "davinci_manager", "devmm_svm", "hisi_hdc")
    args = ["serve", "/models/qwen3-8b", "--served-model-name", "qwen3-8b", "--tensor-parallel-size", "2"]
    assert run_standin(tmp_path, args, nodes=two, ASCEND_RT_VISIBLE_DEVICES="0,1").returncode == 0
    proc = run_standin(tmp_path, args, nodes=two, ASCEND_RT_VISIBLE_DEVICES="0")
    assert proc.returncode == 1
    assert "must list exactly 0..1" in proc.stderr


def test_tensor_parallel_mismatch(tmp_path):
    """TP must equal the number of mounted NPUs: more ranks than NPUs, or idle NPUs, both fail."""
    too_many = run_standin(tmp_path, ["serve", "m", "-tp", "2"])
    assert too_many.returncode == 1
    assert "open device 1 failed, runtime result = 107001" in too_many.stderr
    idle = run_standin(tmp_path, ["serve", "m"], nodes=("davinci0", "davinci1", "davinci_manager", "devmm_svm", "hisi_hdc"))
    assert idle.returncode == 1
    assert "--tensor-parallel-size 1 uses 1 NPU(s) but 2 are mounted" in idle.stderr


def test_missing_davinci_manager(tmp_path):
    """Without the control nodes the runtime finds no device."""
    proc = run_standin(tmp_path, TYPICAL, nodes=("davinci0", "devmm_svm", "hisi_hdc"))
    assert proc.returncode == 1
    assert "aclrtGetDeviceCount(&device_count), error code is 207004" in proc.stderr
    assert "davinci_manager" in proc.stderr


def test_no_npu_mounted(tmp_path):
    """Control nodes alone are not an NPU."""
    proc = run_standin(tmp_path, TYPICAL, nodes=("davinci_manager", "devmm_svm", "hisi_hdc"))
    assert proc.returncode == 1
    assert "error code is 207004" in proc.stderr


def test_kv_limit_error(tmp_path):
    """max-model-len above VLLM_STANDIN_KV_LIMIT fails with vLLM V1's message (Qwen3-8B bf16 bytes per token)."""
    proc = run_standin(tmp_path, TYPICAL, VLLM_STANDIN_KV_LIMIT="4096")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "ValueError: To serve at least one request with the models's max seq len (8192), (1.12 GiB KV cache is needed, "
        "which is larger than the available KV cache memory (0.56 GiB). Based on the available memory, the estimated maximum "
        "model length is 4096. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine. "
        "See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details."
    )
    assert run_standin(tmp_path, TYPICAL, VLLM_STANDIN_KV_LIMIT="8192").returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["chat"], "only `vllm serve` is emulated"),
        (["run-batch"], "only `vllm serve` is emulated"),
        (["generate", "m"], "vllm: error: argument subparser: invalid choice: 'generate'"),
    ],
)
def test_other_subcommands_exit_2(tmp_path, args, message):
    """Only `serve` is emulated; real but unemulated subcommands and unknown ones exit 2."""
    proc = run_standin(tmp_path, args)
    assert proc.returncode == 2
    assert message in proc.stderr


@pytest.mark.parametrize("version", sorted(FIXTURES))
def test_fixture_provenance_and_sanity(version):
    """Each table names its tag and commit, the files read, and holds the flags npu.fleet relies on."""
    data = json.loads(FIXTURES[version].read_text(encoding="utf-8"))
    source = data["source"]
    assert data["vllm_version"] == version == source["tag"]
    assert re.fullmatch(r"[0-9a-f]{40}", source["commit"])
    assert set(source["files"]) == {"vllm/engine/arg_utils.py", "vllm/entrypoints/openai/cli_args.py", "vllm/entrypoints/cli/serve.py"}
    assert data["extracted_by"]["script"] == "scripts/extract_vllm_serve_args.py"
    flags = data["flags"]
    assert flags == sorted(set(flags))
    assert set(SANITY_FLAGS) <= set(flags)
    assert all(re.fullmatch(r"--[a-z0-9]+(-[a-z0-9]+)*", flag) for flag in flags)
    assert {"--bogus", "--model-name", "--tp", "--gpu-memory"}.isdisjoint(flags)
    assert set(data["boolean_flags"]) <= set(flags)
    assert {"--trust-remote-code", "--no-trust-remote-code", "--enforce-eager", "--headless"} <= set(data["boolean_flags"])
    assert "--port" not in data["boolean_flags"]
    assert data["positional"]["name"] == "model_tag"
    assert data["aliases"]["-tp"] == "--tensor-parallel-size"
    assert set(data["options"]) == set(flags)
