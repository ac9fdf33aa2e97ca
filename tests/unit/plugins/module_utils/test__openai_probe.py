"""What a failed replica's container says - docker inspect JSON and docker logs text - as state, log tail and diagnosis.

The module that reads them (plugins/modules/openai_probe.py) is also run for real, with a ``docker`` stand-in on PATH
that answers as the Docker CLI does for a crash-looping vLLM container.
"""

import json
import os
import stat
import subprocess
import sys

from ansible_collections.npu.fleet.plugins.module_utils._openai_probe import LOG_TAIL_LINES, container_state, failure_details
from conftest import COLLECTIONS_PATH, REPO_ROOT

# `docker inspect npu-fleet-qwen3-4b-262k-0` of a vLLM container that failed at start-up and was restarted three times by
# its restart policy (on-failure), trimmed to the fields Docker always prints at these levels.
INSPECT = json.dumps(
    [
        {
            "Id": "4f1c2e9a7b3d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7",
            "Created": "2026-11-26T12:09:58.114502871Z",
            "Path": "vllm",
            "Args": [
                "serve",
                "/models/qwen3-4b-262k",
                "--host",
                "0.0.0.0",
                "--port",
                "8000",
                "--served-model-name",
                "qwen3-4b-262k",
                "--tensor-parallel-size",
                "1",
                "--max-model-len",
                "262144",
                "--gpu-memory-utilization",
                "0.9",
            ],
            "State": {
                "Status": "exited",
                "Running": False,
                "Paused": False,
                "Restarting": False,
                "OOMKilled": False,
                "Dead": False,
                "Pid": 0,
                "ExitCode": 1,
                "Error": "",
                "StartedAt": "2026-11-26T12:14:31.52718366Z",
                "FinishedAt": "2026-11-26T12:16:04.90110227Z",
            },
            "Image": "sha256:9d2be3e1c6a7f0b8e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f7",
            "Name": "/npu-fleet-qwen3-4b-262k-0",
            "RestartCount": 3,
            "Driver": "overlay2",
            "HostConfig": {
                "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
                "ShmSize": 1073741824,
                "PortBindings": {"8000/tcp": [{"HostIp": "0.0.0.0", "HostPort": "18231"}]},
                "Devices": [{"PathOnHost": "/dev/davinci4", "PathInContainer": "/dev/davinci4", "CgroupPermissions": "rwm"}],
            },
            "Config": {
                "Hostname": "4f1c2e9a7b3d",
                "Image": "quay.io/ascend/vllm-ascend:v0.11.0rc3",
                "Env": ["ASCEND_RT_VISIBLE_DEVICES=0", "VLLM_API_KEY=sk-test-not-a-secret-7f3a"],
                "Labels": {"io.npu-fleet.managed": "true", "io.npu-fleet.model": "qwen3-4b-262k", "io.npu-fleet.replica": "0"},
            },
            "NetworkSettings": {"Ports": {}},
        }
    ],
    indent=4,
)

KV_LINE = (
    "(EngineCore_DP0 pid=187) ERROR 11-26 12:16:03 [core.py:712] ValueError: To serve at least one request with the models's "
    "max seq len (262144), (36.00 GiB KV cache is needed, which is larger than the available KV cache memory (10.27 GiB). "
    "Based on the available memory, the estimated maximum model length is 74752. Try increasing `gpu_memory_utilization` "
    "or decreasing `max_model_len` when initializing the engine."
)

# `docker logs --tail 50` of that container: vLLM v1 on Ascend, the engine core dies in KV cache sizing.
VLLM_LOG = (
    """INFO 11-26 12:14:33 [__init__.py:36] Available plugins for group vllm.platform_plugins:
INFO 11-26 12:14:33 [__init__.py:38] - ascend -> vllm_ascend:register
INFO 11-26 12:14:33 [__init__.py:232] Platform plugin ascend is activated
(APIServer pid=1) INFO 11-26 12:14:41 [api_server.py:1839] vLLM API server version 0.11.0rc3
(APIServer pid=1) INFO 11-26 12:14:41 [utils.py:233] non-default args: {'model_tag': '/models/qwen3-4b-262k', 'host': '0.0.0.0', \
'model': '/models/qwen3-4b-262k', 'max_model_len': 262144, 'served_model_name': ['qwen3-4b-262k']}
(APIServer pid=1) INFO 11-26 12:14:52 [model.py:547] Resolved architecture: Qwen3ForCausalLM
(APIServer pid=1) INFO 11-26 12:14:52 [model.py:1510] Using max model len 262144
(EngineCore_DP0 pid=187) INFO 11-26 12:15:02 [core.py:644] Waiting for init message from front-end.
(EngineCore_DP0 pid=187) INFO 11-26 12:15:40 [default_loader.py:267] Loading weights took 31.88 seconds
(EngineCore_DP0 pid=187) INFO 11-26 12:15:41 [model_runner_v1.py:2524] Loading model weights took 7.5812 GB
(EngineCore_DP0 pid=187) INFO 11-26 12:16:02 [worker_v1.py:262] Available memory: 11027010560, total memory: 34359738368
(EngineCore_DP0 pid=187) INFO 11-26 12:16:03 [kv_cache_utils.py:1087] GPU KV cache size: 74,752 tokens
(EngineCore_DP0 pid=187) ERROR 11-26 12:16:03 [core.py:712] EngineCore failed to start.
(EngineCore_DP0 pid=187) ERROR 11-26 12:16:03 [core.py:712] Traceback (most recent call last):
(EngineCore_DP0 pid=187) ERROR 11-26 12:16:03 [core.py:712]   File "/vllm-workspace/vllm/vllm/v1/engine/core.py", line 703, \
in run_engine_core
(EngineCore_DP0 pid=187) ERROR 11-26 12:16:03 [core.py:712]     engine_core = EngineCoreProc(*args, **kwargs)
(EngineCore_DP0 pid=187) ERROR 11-26 12:16:03 [core.py:712]   File "/vllm-workspace/vllm/vllm/v1/core/kv_cache_utils.py", line 700, \
in check_enough_kv_cache_memory
(EngineCore_DP0 pid=187) ERROR 11-26 12:16:03 [core.py:712]     raise ValueError(
"""
    + KV_LINE
    + """
(APIServer pid=1) Traceback (most recent call last):
(APIServer pid=1)   File "/usr/local/python3.11.13/bin/vllm", line 8, in <module>
(APIServer pid=1)     sys.exit(main())
(APIServer pid=1)   File "/vllm-workspace/vllm/vllm/v1/engine/utils.py", line 433, in launch_core_engines
(APIServer pid=1)     wait_for_engine_startup(
(APIServer pid=1)   File "/vllm-workspace/vllm/vllm/v1/engine/utils.py", line 483, in wait_for_engine_startup
(APIServer pid=1)     raise RuntimeError("Engine core initialization failed. "
(APIServer pid=1) RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}
"""
)


def test_crashed_container_state_comes_from_one_inspect():
    assert container_state(INSPECT) == {"status": "exited", "exit_code": 1, "oom_killed": False, "restarts": 3, "error": None}


def test_container_that_cannot_be_inspected_says_why():
    gone = container_state("[]", "Error: No such object: npu-fleet-x-0\n")
    assert gone == {
        "status": None,
        "exit_code": None,
        "oom_killed": None,
        "restarts": None,
        "error": "Error: No such object: npu-fleet-x-0",
    }
    assert container_state("not json")["error"].startswith("docker inspect did not return JSON")
    assert container_state(json.dumps({"State": {"Status": "dead", "Error": "error gathering device information"}}))["error"] == (
        "error gathering device information"
    )


def test_failure_details_keep_the_last_lines_and_name_the_cause():
    details = failure_details(INSPECT, VLLM_LOG)
    lines = VLLM_LOG.splitlines()
    assert len(lines) > LOG_TAIL_LINES == 20
    assert details["log_tail"] == lines[-20:]
    assert details["log_tail"][-1].endswith("Failed core proc(s): {}")
    assert details["state"]["restarts"] == 3 and details["state"]["exit_code"] == 1
    diagnosis = details["diagnosis"]
    assert diagnosis["code"] == "kv_cache"
    assert diagnosis["evidence"] == KV_LINE[:500]
    assert "74752" in diagnosis["fix"]  # vLLM's own estimate, from a line outside the tail too
    assert diagnosis["cause"] == "the KV cache does not fit the chip memory left after the weights"


def test_a_log_without_a_known_signature_points_at_its_last_line():
    details = failure_details(INSPECT, "starting\nsomething odd\n")
    assert details["log_tail"] == ["starting", "something odd"]
    assert details["diagnosis"]["code"] == "unknown" and details["diagnosis"]["evidence"] == "something odd"
    assert failure_details("", "")["log_tail"] == []


# --------------------------------------------------------------------------- the module, with a docker stand-in

DOCKER = """#!%(python)s
import json, sys
args = sys.argv[1:]
with open(%(calls)r, "a") as handle:
    handle.write(json.dumps(args) + "\\n")
if args[:2] == ["inspect", "-f"]:
    print("exited 3 1")
elif args[0] == "inspect":
    print(open(%(inspect)r).read())
elif args[0] == "logs":
    out, err = open(%(log)r).read().split("---SPLIT---\\n")
    sys.stdout.write(out)
    sys.stderr.write(err)
else:
    sys.exit(2)
"""


def run_module(tmp_path, **module_args):
    (tmp_path / "inspect.json").write_text(INSPECT)
    # vLLM's start banner goes to stdout, the engine's traceback to stderr.
    out, err = VLLM_LOG.split("(EngineCore_DP0 pid=187) ERROR", 1)
    (tmp_path / "log.txt").write_text(
        out + "---SPLIT---\n" + "(EngineCore_DP0 pid=187) ERROR" + err + "using key sk-test-not-a-secret-7f3a\n"
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(
        DOCKER
        % {
            "python": sys.executable,
            "calls": str(tmp_path / "calls.txt"),
            "inspect": str(tmp_path / "inspect.json"),
            "log": str(tmp_path / "log.txt"),
        }
    )
    docker.chmod(docker.stat().st_mode | stat.S_IXUSR)
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(module_args, _ansible_tmpdir=str(tmp_path))}))
    module = os.path.join(REPO_ROOT, "plugins", "modules", "openai_probe.py")
    env = dict(os.environ, PYTHONPATH=COLLECTIONS_PATH, PATH="%s:%s" % (bin_dir, os.environ.get("PATH", "")))
    proc = subprocess.run([sys.executable, module, str(args)], env=env, capture_output=True, text=True, check=False, timeout=60)
    calls = [json.loads(line) for line in (tmp_path / "calls.txt").read_text().splitlines()] if (tmp_path / "calls.txt").exists() else []
    return proc, calls


def test_module_returns_state_tail_and_diagnosis_of_the_failed_container(tmp_path):
    proc, calls = run_module(
        tmp_path,
        url="http://127.0.0.1:9",
        served_model_name="qwen3-4b-262k",
        wait=0,
        interval=0.1,
        container="npu-fleet-qwen3-4b-262k-0",
        api_key="sk-test-not-a-secret-7f3a",
        log_lines=30,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["healthy"] is False and result["stage"] == "container"
    assert "exited (restarts 3" in result["message"]
    assert result["state"] == {"status": "exited", "exit_code": 1, "oom_killed": False, "restarts": 3, "error": None}
    assert len(result["log_tail"]) == 20 and result["log_tail"][-2].endswith("Failed core proc(s): {}")
    assert result["diagnosis"]["code"] == "kv_cache" and "74752" in result["diagnosis"]["fix"]
    assert ["logs", "--tail", "30", "npu-fleet-qwen3-4b-262k-0"] in calls
    assert ["inspect", "npu-fleet-qwen3-4b-262k-0"] in calls
    assert "sk-test-not-a-secret-7f3a" not in proc.stdout  # the API key, in the env and the log, is masked


def test_module_without_container_returns_no_details(tmp_path):
    proc, calls = run_module(tmp_path, url="http://127.0.0.1:9", served_model_name="m", wait=0, interval=0.1)
    result = json.loads(proc.stdout)
    assert result["healthy"] is False and result["stage"] == "health"
    assert (result["state"], result["log_tail"], result["diagnosis"]) == (None, [], None)
    assert calls == []


def test_module_rejects_log_lines_below_one(tmp_path):
    proc, unused = run_module(tmp_path, url="http://127.0.0.1:9", served_model_name="m", log_lines=0)
    assert proc.returncode == 1 and "log_lines >= 1" in json.loads(proc.stdout)["msg"]
