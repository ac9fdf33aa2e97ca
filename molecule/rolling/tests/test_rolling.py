"""Rolling updates lose no request: a client calls both gateways through every change.

Converge deployed llama-3.1-8b (one replica per host, vllm-ascend v0.13.0
stand-in) behind an HAProxy gateway on each host. These tests run
deploy-models.yml again as a user would, while a client thread keeps sending
streamed and non-streamed chat completions to the router of one gateway (by
the request's model) and to the model's own port on the other:

1. the image tag and max_model_len change with surge off: the replicas are
   drained, replaced in place and put back one at a time, and not one request
   fails;
2. max_model_len changes again with surge on (the hosts have free chips): each
   successor starts beside its replica on another chip and port, joins both
   gateways after its probe, the old one is drained and removed; not one
   request fails, and the reloaded gateways know only the new ports;
3. a change whose new container crash-loops (a flag vLLM refuses): the first
   successor fails its probe, its previous container (which never stopped)
   keeps its name back, the second replica is never touched, the report gives
   the cause, and still not one request fails;
4. the good configuration again on the updated fleet changes nothing.
"""

import json
import os
import re
import subprocess
import threading
import time

import pytest
import requests

API_KEY = "molecule-test-key"
MODEL = "llama-3.1-8b"
HOSTS = ("molecule-rolling-a", "molecule-rolling-b")
MODEL_PORT = 9100
ROUTER_PORT = 8000
# Bounded client: at most this many requests per run, one at a time.
MAX_REQUESTS = 3000


def address(name):
    return subprocess.check_output(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name], text=True
    ).strip()


def catalogue(image, max_model_len, extra_args=None):
    project = os.environ["MOLECULE_PROJECT_DIRECTORY"]
    entry = {
        "name": MODEL,
        "path": project + "/tests/emulator/models/llama-3.1-8b",
        "host_path": "/models/llama-3.1-8b",
        "image": image,
        "max_model_len": max_model_len,
        "replicas": 2,
        "gateway_port": MODEL_PORT,
    }
    if extra_args:
        entry["serve"] = {"extra_args": extra_args}
    return [entry]


def deploy(tmp_path, models, label, **variables):
    ephemeral = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
    project = os.environ["MOLECULE_PROJECT_DIRECTORY"]
    extra = tmp_path / ("%s.json" % label)
    report_dir = tmp_path / ("report-%s" % label)
    variables.update(npu_fleet_models=models, npu_fleet_report_dir=str(report_dir), health_probe_wait=120)
    extra.write_text(json.dumps(variables))
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(ephemeral, "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=os.path.join(project, ".cache", "collections"),
    )
    run = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            os.path.join(ephemeral, "inventory"),
            os.path.join(project, "molecule", "rolling", "converge.yml"),
            "-e",
            "@" + str(extra),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    report = json.loads((report_dir / "report.json").read_text()) if (report_dir / "report.json").exists() else None
    # Without colour codes and with the YAML callback's line folding undone.
    run.stdout = re.sub(r"\x1b\[[0-9;]*m", "", run.stdout)
    run.stderr = re.sub(r"\x1b\[[0-9;]*m", "", run.stderr)
    # A failed task's message goes to stderr.
    run.flat = " ".join((run.stdout + run.stderr).split())
    return run, report


def task_results(stdout, task):
    """The result lines (``changed: [host] => (item=...)``, ``ok: ...``) of every run of the serve role's ``task``."""
    lines = []
    for section in stdout.split("TASK [npu.fleet.serve : %s]" % task)[1:]:
        body = section.split("\nTASK [", 1)[0]
        lines += [line.strip() for line in body.splitlines() if re.match(r"^(changed|ok|failed|skipping): ", line.strip())]
    return lines


def changed_results(stdout, task):
    return [line for line in task_results(stdout, task) if line.startswith("changed:")]


class Client(threading.Thread):
    """Streamed and non-streamed chat completions, alternately through the router of gateway A (routed by the
    request's model) and the model's own port on gateway B, one at a time, until stopped or MAX_REQUESTS."""

    def __init__(self):
        super().__init__(daemon=True)
        a, b = (address(name) for name in HOSTS)
        self.targets = ["http://%s:%d" % (a, ROUTER_PORT), "http://%s:%d" % (b, MODEL_PORT)]
        self.stop = threading.Event()
        self.sent = 0
        self.failures = []

    def one(self, base, stream):
        body = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 8, "stream": stream}
        response = requests.post(
            base + "/v1/chat/completions", json=body, headers={"Authorization": "Bearer " + API_KEY}, stream=stream, timeout=60
        )
        if response.status_code != 200:
            return "HTTP %d from %s: %s" % (response.status_code, base, response.text[:200])
        if stream:
            lines = [line for line in response.iter_lines(decode_unicode=True) if line]
            if not lines or lines[-1] != "data: [DONE]":
                return "stream from %s did not end with [DONE]: %r" % (base, lines[-3:])
        else:
            choice = response.json()["choices"][0]
            # Random tiny weights may sample the end-of-sequence token first: an empty answer that *stopped* is
            # a whole answer; one cut short (no finish_reason, or 'length' with nothing) is a lost request.
            if not isinstance(choice["message"]["content"], str) or choice.get("finish_reason") not in ("stop", "length"):
                return "malformed answer from %s: %s" % (base, response.text[:300])
            if not choice["message"]["content"] and choice["finish_reason"] != "stop":
                return "empty answer from %s: %s" % (base, response.text[:300])
        return None

    def run(self):
        while not self.stop.is_set() and self.sent < MAX_REQUESTS:
            base = self.targets[self.sent % 2]
            stream = (self.sent // 2) % 2 == 1
            try:
                failure = self.one(base, stream)
            except requests.RequestException as error:
                failure = "%s from %s" % (type(error).__name__, base)
            self.sent += 1
            if failure:
                self.failures.append(failure)


@pytest.fixture()
def client():
    running = Client()
    # The fleet answers before the change starts.
    assert running.one(running.targets[0], False) is None and running.one(running.targets[1], True) is None
    running.start()
    yield running
    running.stop.set()
    running.join(timeout=120)


def labels(name, host):
    return json.loads(
        subprocess.check_output(["docker", "exec", host, "docker", "inspect", "-f", "{{json .Config.Labels}}", name], text=True)
    )


def image_of(name, host):
    return subprocess.check_output(["docker", "exec", host, "docker", "inspect", "-f", "{{.Config.Image}}", name], text=True).strip()


def replica_hosts():
    """Container name -> emulated host it runs on."""
    found = {}
    for host in HOSTS:
        names = subprocess.check_output(["docker", "exec", host, "docker", "ps", "--format", "{{.Names}}"], text=True).split()
        found.update((name, host) for name in names if name.startswith("npu-fleet-%s-" % MODEL))
    return found


def test_gateways_serve_the_model_on_each_host_and_list_it():
    where = replica_hosts()
    assert sorted(where) == ["npu-fleet-llama-3.1-8b-0", "npu-fleet-llama-3.1-8b-1"]
    assert sorted(where.values()) == sorted(HOSTS)  # spread: one replica per host
    for host in HOSTS:
        base = "http://%s:%d" % (address(host), ROUTER_PORT)
        assert requests.get(base + "/v1/models", timeout=10).status_code == 401
        listed = requests.get(base + "/v1/models", headers={"Authorization": "Bearer " + API_KEY}, timeout=10).json()
        assert [item["id"] for item in listed["data"]] == [MODEL]
        unknown = requests.post(
            base + "/v1/chat/completions",
            json={"model": "no-such-model", "messages": []},
            headers={"Authorization": "Bearer " + API_KEY},
            timeout=10,
        )
        assert unknown.status_code == 404 and "no-such-model" in unknown.json()["error"]["message"]
        # The statistics endpoint is on the host's loopback only.
        inspect = json.loads(subprocess.check_output(["docker", "exec", host, "docker", "inspect", "npu-fleet-gateway"], text=True))[0]
        assert inspect["HostConfig"]["PortBindings"]["8404/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": "8404"}]
        assert inspect["HostConfig"]["NetworkMode"] == "bridge" and not inspect["HostConfig"]["Privileged"]
        assert inspect["HostConfig"]["CapDrop"] == ["ALL"] and inspect["HostConfig"]["ReadonlyRootfs"] is True


def placed(host, name):
    """(devices, port) labels of a replica's container."""
    found = labels(name, host)
    return found["io.npu-fleet.devices"], found["io.npu-fleet.port"]


def gateway_servers(host):
    """Server name -> address of llama's backend in the gateway's running HAProxy (through its runtime socket)."""
    script = (
        "import socket\n"
        "s = socket.socket(socket.AF_UNIX); s.connect('/var/lib/npu-fleet/gateway/run/admin.sock')\n"
        "s.sendall(b'show servers state model_llama-3.1-8b\\n'); data = b''\n"
        "while True:\n    chunk = s.recv(65536)\n    if not chunk: break\n    data += chunk\n"
        "print(data.decode())\n"
    )
    lines = subprocess.check_output(["docker", "exec", host, "python3", "-c", script], text=True).splitlines()
    rows = [line.split() for line in lines if line and line[0].isdigit() and len(line.split()) > 18]
    return dict((row[3], "%s:%s" % (row[4], row[18])) for row in rows)


def test_image_and_max_model_len_change_roll_in_place_with_zero_failed_requests(client, tmp_path):
    # Surge off: each replica is drained, stopped and started again on its own chip.
    run, report = deploy(tmp_path, catalogue("quay.io/ascend/vllm-ascend:v0.15.0rc1", 8192), "update", npu_fleet_surge=False)
    time.sleep(3)  # the client keeps going a little after the last replica is back
    client.stop.set()
    client.join(timeout=120)
    assert run.returncode == 0, run.stdout[-4000:]
    assert client.failures == [], client.failures[:10]
    assert client.sent >= 30, client.sent
    # One replica at a time: two waves, each drained at both gateways first.
    assert len(changed_results(run.stdout, "Stop the container being replaced in place")) == 2
    assert len(changed_results(run.stdout, "Put the wave's in-place replicas in drain at every gateway")) == 4  # 2 waves x 2 gateways
    for name, host in replica_hosts().items():
        assert image_of(name, host) == "quay.io/ascend/vllm-ascend:v0.15.0rc1"
        assert labels(name, host)["io.npu-fleet.max-model-len"] == "8192"
    assert report["totals"] == {"replicas": 2, "healthy": 2, "failed": 0, "unhealthy": 0, "unplaced": 0}
    assert sorted(report["gateways"]["models"][MODEL]) == sorted("http://%s:%d" % (address(host), MODEL_PORT) for host in HOSTS)


def test_with_free_chips_each_successor_starts_beside_its_replica_with_zero_failed_requests(client, tmp_path):
    before = dict((name, placed(host, name)) for name, host in replica_hosts().items())
    run, report = deploy(tmp_path, catalogue("quay.io/ascend/vllm-ascend:v0.15.0rc1", 16384), "surge")
    time.sleep(3)
    client.stop.set()
    client.join(timeout=120)
    assert run.returncode == 0, run.stdout[-4000:]
    assert client.failures == [], client.failures[:10]
    assert client.sent >= 30, client.sent
    # No replica left rotation before its successor was in: nothing stopped or drained in place; each successor joined
    # both gateways (2 waves x 2 gateways), then the container it replaced was removed.
    assert changed_results(run.stdout, "Stop the container being replaced in place") == []
    assert changed_results(run.stdout, "Put the wave's in-place replicas in drain at every gateway") == []
    assert len(changed_results(run.stdout, "Add them to every gateway beside the replicas they replace")) == 4
    assert len(changed_results(run.stdout, "Remove the containers the surge successors replace")) == 2
    after = dict((name, placed(host, name)) for name, host in replica_hosts().items())
    assert sorted(after) == sorted(before)
    for name in after:
        assert after[name][0] != before[name][0] and after[name][1] != before[name][1], (before, after)
        assert labels(name, replica_hosts()[name])["io.npu-fleet.max-model-len"] == "16384"
    # The previous containers are gone; the reloaded gateways know the successors' ports only.
    for host in HOSTS:
        names = subprocess.check_output(["docker", "exec", host, "docker", "ps", "-a", "--format", "{{.Names}}"], text=True).split()
        assert not [name for name in names if name.endswith("-previous")], names
        servers = gateway_servers(host)
        assert sorted(servers) == sorted(after), servers
        assert sorted(address.split(":")[1] for address in servers.values()) == sorted(port for unused, port in after.values())
    rows = dict((row["replica"], row) for row in report["rows"])
    assert all(row["surge"] and row["outage_s"] is None and row["healthy"] for row in rows.values()), rows
    assert sorted(str(row["port"]) for row in rows.values()) == sorted(port for unused, port in after.values())
    assert "took over at the gateway after its probe: no outage" in (tmp_path / "report-surge" / "report.md").read_text()


def test_a_crash_looping_change_is_rolled_back_with_zero_failed_requests(client, tmp_path):
    before = dict((name, labels(name, host)) for name, host in replica_hosts().items())
    run, report = deploy(tmp_path, catalogue("quay.io/ascend/vllm-ascend:v0.15.0rc1", 16384, ["--no-such-flag"]), "crash")
    time.sleep(3)
    client.stop.set()
    client.join(timeout=120)
    assert run.returncode != 0 and "failed their health probe" in run.flat, run.stdout[-4000:]
    assert client.failures == [], client.failures[:10]
    rows = dict((row["replica"], row) for row in report["rows"])
    assert rows[0]["status"].startswith("failed at") and rows[0]["status"].endswith("rolled back")
    assert rows[0]["diagnosis"]["code"] == "bad_argument"
    assert rows[1]["status"] == "healthy"
    # The rollout of the model stopped at its first replica: the second one was never replaced, the first is restored.
    after = dict((name, labels(name, host)) for name, host in replica_hosts().items())
    assert after == before


def test_the_same_configuration_again_changes_nothing(tmp_path):
    run, report = deploy(tmp_path, catalogue("quay.io/ascend/vllm-ascend:v0.15.0rc1", 16384), "again")
    assert run.returncode == 0, run.stdout[-4000:]
    recap = [line for line in run.stdout.splitlines() if re.match(r"^\S+\s+: ok=", line)]
    assert len(recap) == 3, run.stdout[-3000:]  # localhost and the two hosts
    assert recap and all(" changed=0 " in line for line in recap), recap
    assert report["totals"]["healthy"] == 2
