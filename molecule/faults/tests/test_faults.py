"""The bad day: npu.fleet keeps what runs running, loses nothing and names what is wrong.

Converge deployed llama-3.1-8b with one replica on each of two emulated hosts
(vllm-ascend stand-in, API key set). Each test runs the root playbooks as a
user would and breaks one thing, in this order (pytest keeps the file's order;
each test leaves the fleet as the next one expects):

1. ``--check --diff`` of a change against the running fleet changes nothing and
   shows a readable diff, with the key set;
2. a no-change run at ``-vvv`` changes nothing, and the key is in no output,
   report, plan or ``docker inspect``;
3. a port taken by a process npu.fleet did not start: the new replica gets
   another port and the report says why;
4. a chip in alarm under a running replica: fleet-status.yml names it and fails;
   the next deploy moves that replica and leaves the others where they are;
5. a broken model directory (config.json on the controller, a shard missing on
   a host): one clear error naming the model (and host) and the file, and
   nothing running stops;
6. a host that fails preflight receives nothing while the other deploys; the
   report names it; once fixed, the next run converges it;
7. a host lost mid-run (its emulator killed between two stages): the other host
   completes, the report names the lost host and what may be half-done there;
   once it is back, the next run converges it.

A change whose new container crash-loops is the rolling scenario's
(test_a_crash_looping_change_is_rolled_back_with_zero_failed_requests).
"""

import json
import os
import re
import shutil
import subprocess
import time

import requests

API_KEY = "molecule-test-key"
HOST_A, HOST_B = "molecule-faults-a", "molecule-faults-b"
HOSTS = (HOST_A, HOST_B)
LLAMA, QWEN = "llama-3.1-8b", "qwen3-8b"
PROFILE = "/etc/npu-emulator/profile.yml"
FWKACLLIB = "/usr/local/Ascend/ascend-toolkit/latest/fwkacllib"
# The exact name of the task that opens the serve stage: the fault injector kills a host as it starts.
SERVE_STAGE_TASK = "Record that this host reached the serve stage"


def project():
    return os.environ["MOLECULE_PROJECT_DIRECTORY"]


def llama(max_model_len=16384):
    return {
        "name": LLAMA,
        "path": project() + "/tests/emulator/models/llama-3.1-8b",
        "host_path": "/models/llama-3.1-8b",
        "image": "quay.io/ascend/vllm-ascend:v0.13.0",
        "max_model_len": max_model_len,
        "replicas": 2,
    }


def qwen(path=None):
    return {
        "name": QWEN,
        "path": path or project() + "/tests/emulator/models/qwen3-8b",
        "host_path": "/models/qwen3-8b",
        "replicas": 1,
        "hosts": [HOST_A],
    }


def run(tmp_path, playbook, label, models, *args, env=None, **variables):
    """ansible-playbook <playbook> with the scenario's inventory and ``models`` as the catalogue; the report (if
    written) as ``run.report``, the output without colours and line folding as ``run.flat``."""
    ephemeral = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
    report_dir = tmp_path / ("report-%s" % label)
    variables.update(npu_fleet_models=models, npu_fleet_report_dir=str(report_dir), health_probe_wait=120)
    extra = tmp_path / ("%s.json" % label)
    extra.write_text(json.dumps(variables))
    environment = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(ephemeral, "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=os.path.join(project(), ".cache", "collections"),
        **(env or {}),
    )
    started = time.monotonic()
    done = subprocess.run(
        ["ansible-playbook", "-i", os.path.join(ephemeral, "inventory"), os.path.join(project(), playbook), "-e", "@" + str(extra), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    done.seconds = time.monotonic() - started
    done.text = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)
    done.flat = " ".join(done.text.split())
    done.report_dir = report_dir
    path = report_dir / ("status" if playbook == "fleet-status.yml" else "") / "report.json"
    done.report = json.loads(path.read_text()) if path.exists() else None
    return done


def deploy(tmp_path, label, models, *args, **kwargs):
    return run(tmp_path, "deploy-models.yml", label, models, *args, **kwargs)


def on(host, command):
    """A shell command inside an emulated host; its stdout."""
    return subprocess.check_output(["docker", "exec", host, "sh", "-c", command], text=True)


def containers(host):
    """name -> (id, start time) of every container on the emulated host."""
    found = {}
    for line in on(host, "docker ps -aq | xargs -r docker inspect -f '{{.Name}} {{.Id}} {{.State.StartedAt}}'").splitlines():
        name, ident, started = line.split()
        found[name.lstrip("/")] = (ident, started)
    return found


def fleet():
    return dict((host, containers(host)) for host in HOSTS)


def rows(report):
    return dict(((row["model"], row["replica"]), row) for row in report["rows"])


def devices(host, name):
    """The chips (/dev/davinciN) a container got; the manager nodes left out."""
    mapped = on(host, "docker inspect -f '{{range .HostConfig.Devices}}{{.PathOnHost}} {{end}}' %s" % name).split()
    return [path for path in mapped if re.match(r"^/dev/davinci[0-9]+$", path)]


def address(host):
    return subprocess.check_output(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", host], text=True
    ).strip()


def answers(host, port, model=LLAMA):
    """One greedy chat completion through the replica's published port, with the key."""
    reply = requests.post(
        "http://%s:%d/v1/chat/completions" % (address(host), port),
        headers={"Authorization": "Bearer " + API_KEY},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "temperature": 0},
        timeout=30,
    )
    return reply.status_code


def set_chip_health(host, index, health):
    """The emulated npu-smi reads its profile at every call: a chip's health changes under a running replica."""
    script = (
        "import yaml; p = yaml.safe_load(open('{0}')); o = p.setdefault('chip_overrides', {{}}) or {{}}; "
        "p['chip_overrides'] = o; o.setdefault({1}, {{}})['health'] = '{2}'; yaml.safe_dump(p, open('{0}', 'w'))"
    ).format(PROFILE, index, health)
    subprocess.check_call(["docker", "exec", host, "python3", "-c", script])


def wait_for_engine(host, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if subprocess.run(["docker", "exec", host, "docker", "info"], capture_output=True, check=False).returncode == 0:
            return
        time.sleep(2)
    raise AssertionError("%s: the Docker engine inside did not come back in %d s" % (host, seconds))


# --------------------------------------------------------------------------- 1, 2: check mode and secrets


def test_check_diff_against_the_running_fleet_changes_nothing_and_shows_a_readable_diff(tmp_path):
    before = fleet()
    check = deploy(tmp_path, "check", [llama(8192)], "--check", "--diff")
    assert check.returncode == 0, check.text[-4000:]
    assert fleet() == before
    # The container task is not no_log (the key is a mounted file): its diff is there to read.
    assert "the output has been hidden due to the fact that 'no_log: true'" not in check.flat
    assert re.search(r"--max-model-len.{0,40}8192", check.flat), check.text[-6000:]
    assert API_KEY not in check.text


def test_a_no_change_run_at_vvv_changes_nothing_and_shows_the_key_nowhere(tmp_path):
    before = fleet()
    again = deploy(tmp_path, "vvv", [llama()], "-vvv")
    assert again.returncode == 0, again.text[-4000:]
    assert fleet() == before
    assert len(again.text) > 100000  # -vvv really printed the module arguments and results
    assert API_KEY not in again.text
    for path in again.report_dir.rglob("*"):
        if path.is_file():
            assert API_KEY not in path.read_text(), path
    plan = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "plan.json")
    assert API_KEY not in open(plan, encoding="utf-8").read()
    for host in HOSTS:
        inspected = on(host, "docker ps -aq | xargs -r docker inspect")
        assert '"Name": "/npu-fleet-llama-3.1-8b-' in inspected
        assert API_KEY not in inspected, host
        processes = on(host, "ps -eo args")
        assert API_KEY not in processes, host


# --------------------------------------------------------------------------- 3: a port taken by a stranger


def test_a_port_taken_by_a_stranger_gives_the_new_replica_another_port_and_the_report_says_why(tmp_path):
    # llama-3.1-8b/0 holds davinci0 (port 18000) on HOST_A: qwen3-8b gets davinci1, whose port is 18001.
    assert devices(HOST_A, "npu-fleet-llama-3.1-8b-0") == ["/dev/davinci0"]
    subprocess.check_call(["docker", "exec", "-d", HOST_A, "python3", "-m", "http.server", "18001", "--bind", "0.0.0.0"])
    deadline = time.monotonic() + 30
    while ":18001 " not in on(HOST_A, "ss -Hltn") and time.monotonic() < deadline:
        time.sleep(1)
    assert ":18001 " in on(HOST_A, "ss -Hltn")
    before = fleet()
    done = deploy(tmp_path, "port", [llama(), qwen()])
    assert done.returncode == 0, done.text[-4000:]
    row = rows(done.report)[(QWEN, 0)]
    assert row["host"] == HOST_A and row["chips"] == "1" and row["healthy"], row
    assert row["port"] != 18001
    notes = [item["note"] for item in done.report["notes"] if item["model"] == QWEN]
    assert (
        "port 18001 (range start + davinci1) is in use on %s by a process npu.fleet did not start: took %d" % (HOST_A, row["port"]) in notes
    )
    assert "took %d" % row["port"] in (done.report_dir / "report.md").read_text()
    after = fleet()
    assert after[HOST_B] == before[HOST_B]
    assert after[HOST_A]["npu-fleet-llama-3.1-8b-0"] == before[HOST_A]["npu-fleet-llama-3.1-8b-0"]
    # The stranger still listens: npu.fleet never touched it.
    assert "18001" in on(HOST_A, "ss -Hltn")


# --------------------------------------------------------------------------- 4: a chip in alarm under a replica


def test_a_chip_in_alarm_is_reported_and_the_next_deploy_moves_only_its_replica(tmp_path):
    assert devices(HOST_A, "npu-fleet-llama-3.1-8b-0") == ["/dev/davinci0"]
    set_chip_health(HOST_A, 0, "Alarm")
    try:
        before = fleet()
        status = run(tmp_path, "fleet-status.yml", "alarm", [llama(), qwen()])
        assert status.returncode != 0
        judged = rows(status.report)
        assert judged[(LLAMA, 0)]["status"] == "chip_alarm"
        assert "chip /dev/davinci0 (Alarm) not healthy in npu-smi" in judged[(LLAMA, 0)]["message"]
        assert judged[(LLAMA, 1)]["status"] == "healthy" and judged[(QWEN, 0)]["status"] == "healthy"
        assert "%s/0 on %s (chip_alarm)" % (LLAMA, HOST_A) in status.flat
        assert fleet() == before  # status changes nothing

        moved = deploy(tmp_path, "move", [llama(), qwen()])
        assert moved.returncode == 0, moved.text[-4000:]
        after = fleet()
        assert "/dev/davinci0" not in devices(HOST_A, "npu-fleet-llama-3.1-8b-0")
        assert rows(moved.report)[(LLAMA, 0)]["healthy"]
        notes = [item["note"] for item in moved.report["notes"] if (item["model"], item["replica"]) == (LLAMA, 0)]
        assert any("/dev/davinci0 on %s is not usable: health Alarm" % HOST_A in note for note in notes), notes
        # The others stayed where they were, untouched.
        assert after[HOST_A]["npu-fleet-qwen3-8b-0"] == before[HOST_A]["npu-fleet-qwen3-8b-0"]
        assert after[HOST_B] == before[HOST_B]
    finally:
        set_chip_health(HOST_A, 0, "OK")


# --------------------------------------------------------------------------- 5: a broken model directory


def test_a_broken_model_directory_stops_the_run_before_anything_running_is_touched(tmp_path):
    before = fleet()
    broken = tmp_path / "qwen3-8b-broken-config"
    shutil.copytree(project() + "/tests/emulator/models/qwen3-8b", broken)
    (broken / "config.json").write_text('{"architectures": ["Qwen3ForCausalLM"], "hidden_size": 4096,\n')
    done = deploy(tmp_path, "config", [llama(), qwen(str(broken))])
    assert done.returncode != 0
    assert QWEN in done.flat and str(broken / "config.json") in done.flat, done.text[-3000:]
    assert "Traceback" not in done.text
    assert fleet() == before


def test_a_missing_shard_on_a_host_stops_that_host_before_anything_running_is_touched(tmp_path):
    shard = on(HOST_B, "cd /models/llama-3.1-8b && ls model-*.safetensors | head -1").strip()
    on(HOST_B, "mv /models/llama-3.1-8b/%s /root/%s" % (shard, shard))
    try:
        before = fleet()
        done = deploy(tmp_path, "shard", [llama(), qwen()])
        assert done.returncode != 0
        # One message naming the host, the model directory and the file; the other host is not held up.
        assert HOST_B in done.flat and "/models/llama-3.1-8b" in done.flat and shard in done.flat, done.text[-3000:]
        assert "Traceback" not in done.text
        assert fleet() == before
        assert rows(done.report)[(LLAMA, 0)]["healthy"]
    finally:
        on(HOST_B, "mv /root/%s /models/llama-3.1-8b/%s" % (shard, shard))


# --------------------------------------------------------------------------- 6: a host that fails preflight


def test_a_host_that_fails_preflight_receives_nothing_and_the_other_deploys(tmp_path):
    on(HOST_B, "mv %s /root/fwkacllib.away" % FWKACLLIB)
    try:
        before = fleet()
        done = deploy(tmp_path, "preflight", [llama(8192), qwen()])
        assert done.returncode != 0
        assert "%s failed preflight: FWKACLLIB_MISSING" % HOST_B in done.flat, done.text[-4000:]
        after = fleet()
        assert after[HOST_B] == before[HOST_B]  # received nothing
        assert after[HOST_A]["npu-fleet-llama-3.1-8b-0"] != before[HOST_A]["npu-fleet-llama-3.1-8b-0"]  # replaced
        assert after[HOST_A]["npu-fleet-qwen3-8b-0"] == before[HOST_A]["npu-fleet-qwen3-8b-0"]
        placed = rows(done.report)
        assert placed[(LLAMA, 0)]["healthy"] and placed[(LLAMA, 0)]["max_model_len"] == 8192
        # Its replica runs on there: the plan kept it, and no second copy started on HOST_A.
        assert placed[(LLAMA, 1)]["host"] == HOST_B and placed[(LLAMA, 1)]["status"] == "not probed"
        assert sorted(name for name in after[HOST_A] if name.startswith("npu-fleet-llama")) == ["npu-fleet-llama-3.1-8b-0"]
        assert done.report["hosts"] == [
            {
                "host": HOST_B,
                "state": "failed preflight",
                "detail": "FWKACLLIB_MISSING: it received nothing and what it ran runs on as it was; fix it "
                "(see the preflight report) and run again",
            }
        ]
        assert "**%s**: failed preflight" % HOST_B in (done.report_dir / "report.md").read_text()
    finally:
        on(HOST_B, "mv /root/fwkacllib.away %s" % FWKACLLIB)
    fixed = deploy(tmp_path, "preflight-fixed", [llama(8192), qwen()])
    assert fixed.returncode == 0, fixed.text[-4000:]
    assert all(row["healthy"] for row in fixed.report["rows"]) and fixed.report["hosts"] == []
    assert containers(HOST_B)["npu-fleet-llama-3.1-8b-1"] != before[HOST_B]["npu-fleet-llama-3.1-8b-1"]


# --------------------------------------------------------------------------- 7: a host lost mid-run


def test_a_host_lost_mid_run_is_named_and_the_next_run_converges_it(tmp_path):
    before = fleet()
    lost = deploy(
        tmp_path,
        "lost",
        [llama(16384), qwen()],
        env={
            "ANSIBLE_CALLBACKS_ENABLED": "fault_injector",
            "ANSIBLE_CALLBACK_PLUGINS": os.path.join(project(), "molecule", "faults", "callback_plugins"),
            "NPU_FLEET_FAULT_TASK": SERVE_STAGE_TASK,
            "NPU_FLEET_FAULT_COMMAND": json.dumps(["docker", "kill", HOST_B]),
        },
    )
    try:
        assert "fault_injector: ran docker kill %s" % HOST_B in lost.flat, lost.text[-4000:]
        assert lost.returncode != 0
        assert "UNREACHABLE" in lost.text
        # The rest of the fleet completed.
        after_a = containers(HOST_A)
        assert after_a["npu-fleet-llama-3.1-8b-0"] != before[HOST_A]["npu-fleet-llama-3.1-8b-0"]
        placed = rows(lost.report)
        assert placed[(LLAMA, 0)]["healthy"] and placed[(QWEN, 0)]["healthy"]
        assert placed[(LLAMA, 1)]["status"] == "not probed"
        (state,) = lost.report["hosts"]
        assert state["host"] == HOST_B and state["state"] == "unreachable, stopped during serve", state
        assert state["detail"].endswith("bring it back and run the deploy again: it converges"), state
        assert "**%s**: unreachable, stopped during serve" % HOST_B in (lost.report_dir / "report.md").read_text()
    finally:
        # Back, as after a reboot: its engine keeps its images and restarts its containers (a disk volume here).
        subprocess.check_call(["docker", "start", HOST_B])
        wait_for_engine(HOST_B)
    again = deploy(tmp_path, "converged", [llama(16384), qwen()])
    assert again.returncode == 0, again.text[-4000:]
    placed = rows(again.report)
    assert all(row["healthy"] for row in again.report["rows"]) and again.report["hosts"] == []
    assert placed[(LLAMA, 1)]["host"] == HOST_B
    assert answers(HOST_B, placed[(LLAMA, 1)]["port"]) == 200
