"""Model sources: weights brought to the host that serves them, verified, and nothing moved twice.

Converge deployed tiny-copied (source controller: copied from the controller)
and tiny-hub (source hub: a private repository of the local hub, profiled on
the hub and downloaded on the host by the real huggingface_hub client) on one
emulated host. In order (each test leaves the host as the next expects):

1. both serve, the report says where each model's weights came from, and the
   hub model was profiled from the host (the controller holds no copy);
2. a re-run at -vvv moves no file body and changes nothing, and the hub token is
   in no output, report, plan, container label or ``docker inspect``;
3. a truncated shard is found and fetched again, a changed file on the
   controller is copied again, alone;
4. the hub dies mid-download: the run fails naming the host and the model, and
   the next run resumes the shard where it stopped (a Range request) and serves;
5. a wrong token: one clear 401 message naming the repository, no token in it;
6. a full disk as the model root: one clear error with host, path, need and free;
   nothing running is touched.
"""

import json
import os
import re
import subprocess
import time

import requests

HOST = "molecule-sources-a"
TOKEN = "hf_molecule_sources_token"
API_KEY = "molecule-test-key"
HUB_DIR = "/data/models/tiny-hub"
COPIED_DIR = "/data/models/tiny-copied"
SHARD = "model-00001-of-00002.safetensors"


def ephemeral():
    return os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]


def hub_url():
    with open(os.path.join(ephemeral(), "hub-endpoint"), encoding="utf-8") as handle:
        return handle.read().strip()


def hub(method, path, body=None):
    reply = requests.request(method, hub_url() + "/_hub/" + path, json=body, timeout=10)
    reply.raise_for_status()
    return reply.json() if reply.content else None


def deploy(tmp_path, label, *args, **variables):
    project = os.environ["MOLECULE_PROJECT_DIRECTORY"]
    report_dir = tmp_path / ("report-%s" % label)
    variables.update(npu_fleet_report_dir=str(report_dir), health_probe_wait=120)
    extra = tmp_path / ("%s.json" % label)
    extra.write_text(json.dumps(variables))
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(ephemeral(), "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=os.path.join(project, ".cache", "collections"),
    )
    done = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            os.path.join(ephemeral(), "inventory"),
            os.path.join(project, "deploy-models.yml"),
            "-e",
            "@" + str(extra),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    done.text = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)
    done.flat = " ".join(done.text.split())
    done.report_dir = report_dir
    path = report_dir / "report.json"
    done.report = json.loads(path.read_text()) if path.exists() else None
    return done


def on(command):
    return subprocess.check_output(["docker", "exec", HOST, "sh", "-c", command], text=True)


def containers():
    found = {}
    for line in on("docker ps -aq | xargs -r docker inspect -f '{{.Name}} {{.Id}} {{.State.StartedAt}}'").splitlines():
        name, ident, started = line.split()
        found[name.lstrip("/")] = (ident, started)
    return found


def sources(report):
    return dict((row["model"], row) for row in report["sources"])


def body_requests(file=None, larger_than=2**20):
    """GETs of file bodies the hub served (the CDN for LFS files, resolve for the others) that sent more than
    ``larger_than`` bytes: the profile's reads of config files and safetensors headers each run are smaller."""
    log = hub("GET", "log")
    records = log["records"] if isinstance(log, dict) else log
    return [
        r
        for r in records
        if r["method"] == "GET"
        and r.get("file")
        and r.get("api") in ("cdn", "hf")
        and (file is None or r["file"] == file)
        and r.get("sent", 0) > larger_than
    ]


def test_both_sources_serve_and_the_report_says_where_the_weights_came_from():
    with open(os.path.join(ephemeral(), "report", "report.json"), encoding="utf-8") as handle:
        report = json.load(handle)
    assert all(row["healthy"] for row in report["rows"]), report["rows"]
    rows = sources(report)
    assert rows["tiny-copied"]["source"] == "controller" and rows["tiny-copied"]["path"] == COPIED_DIR
    assert rows["tiny-hub"]["source"] == "huggingface tiny/big"
    assert rows["tiny-hub"]["revision"] == "7e3a1c9b5d2f8e4a6c0b1d3f5e7a9c2b4d6f8e0a"
    assert rows["tiny-hub"]["bytes"] > 30 * 2**20 and rows["tiny-hub"]["path"] == HUB_DIR
    # On the host: the allowed files only (weights, config, tokenizer), complete.
    listed = on("cd %s && ls" % HUB_DIR).split()
    assert SHARD in listed and "config.json" in listed and "tokenizer.json" in listed
    # The controller holds no copy of the hub model: it was profiled on the hub, from the host.
    assert not os.path.exists(os.path.join(ephemeral(), "tiny-hub"))
    for row in report["rows"]:
        reply = requests.post(
            "http://%s:%d/v1/completions"
            % (
                subprocess.check_output(["docker", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", HOST], text=True).strip(),
                row["port"],
            ),
            headers={"Authorization": "Bearer " + API_KEY},
            json={"model": row["model"], "prompt": "hi", "max_tokens": 2, "temperature": 0},
            timeout=30,
        )
        assert reply.status_code == 200, reply.text


def test_a_rerun_moves_nothing_and_the_token_is_nowhere(tmp_path):
    before = containers()
    hub("POST", "log/clear")
    again = deploy(tmp_path, "again", "-vvv")
    assert again.returncode == 0, again.text[-4000:]
    assert containers() == before
    assert body_requests() == []
    rows = sources(again.report)
    assert rows["tiny-hub"]["fetched_bytes"] == 0 and rows["tiny-copied"]["copied_files"] == 0
    assert len(again.text) > 100000 and TOKEN not in again.text
    for path in again.report_dir.rglob("*"):
        if path.is_file():
            assert TOKEN not in path.read_text(), path
    assert TOKEN not in on("docker ps -aq | xargs -r docker inspect")
    assert TOKEN not in on("ps -eo args")
    assert TOKEN not in on("cat %s/.cache/npu-fleet/progress.json" % HUB_DIR)


def test_a_truncated_shard_is_fetched_again_and_a_changed_controller_file_is_copied_again(tmp_path):
    on("truncate -s 1000000 %s/%s" % (HUB_DIR, SHARD))
    changed = os.path.join(ephemeral(), "controller-models", "tiny-copied", "generation_config.json")
    with open(changed, "w", encoding="utf-8") as handle:
        json.dump({"do_sample": False}, handle)
    hub("POST", "log/clear")
    done = deploy(tmp_path, "repair")
    assert done.returncode == 0, done.text[-4000:]
    rows = sources(done.report)
    assert rows["tiny-hub"]["fetched_bytes"] > 0 and rows["tiny-copied"]["copied_files"] == 1
    assert [r["file"] for r in body_requests()] == [SHARD]
    assert json.loads(on("cat %s/generation_config.json" % COPIED_DIR)) == {"do_sample": False}
    assert all(row["healthy"] for row in done.report["rows"])


def test_the_hub_dies_mid_download_and_the_next_run_resumes(tmp_path):
    before = containers()
    on("rm %s/%s" % (HUB_DIR, SHARD))
    hub("POST", "log/clear")
    hub("POST", "faults", {"cut": [{"file": SHARD, "after": 12 * 2**20, "then_stop": True}]})
    died = deploy(tmp_path, "died")
    assert died.returncode != 0
    assert HOST in died.flat and "tiny/big" in died.flat, died.text[-4000:]
    assert TOKEN not in died.text
    assert containers() == before  # the sources stage failed before serving: nothing running was touched
    subprocess.check_call(["docker", "start", "molecule-sources-hub"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            hub("GET", "repos")
            break
        except requests.RequestException:
            time.sleep(1)
    resumed = deploy(tmp_path, "resumed")
    assert resumed.returncode == 0, resumed.text[-4000:]
    ranges = [r.get("range") for r in body_requests(SHARD)]
    assert ranges and all(ranges) and int(re.match(r"bytes=(\d+)-", ranges[0]).group(1)) >= 10 * 2**20, ranges
    assert sources(resumed.report)["tiny-hub"]["fetched_bytes"] < 30 * 2**20
    assert all(row["healthy"] for row in resumed.report["rows"])


def test_a_wrong_token_is_one_clear_401_without_the_token(tmp_path):
    before = containers()
    wrong = "hf_wrong_token_for_the_test"
    done = deploy(tmp_path, "wrong-token", npu_fleet_hub_token=wrong)
    assert done.returncode != 0
    assert "401" in done.flat and "tiny/big" in done.flat, done.text[-4000:]
    assert wrong not in done.text and TOKEN not in done.text
    assert containers() == before


def test_a_full_disk_is_one_clear_error_and_nothing_running_is_touched(tmp_path):
    before = containers()
    on("mkdir -p /data/small && mount -t tmpfs -o size=2m tmpfs /data/small")
    try:
        done = deploy(tmp_path, "full", npu_fleet_model_root="/data/small")
        assert done.returncode != 0
        assert HOST in done.flat and "/data/small" in done.flat, done.text[-4000:]
        assert re.search(r"need|needs", done.flat) and "free" in done.flat
        assert containers() == before
        # Nothing of the model that did not fit is left where a container would mount it.
        assert on("find /data/small/tiny-hub -name '*.safetensors' 2>/dev/null | wc -l").strip() == "0"
    finally:
        on("umount /data/small")
