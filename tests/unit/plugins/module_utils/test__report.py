"""The deployment report from a real plan and probe results, and its Markdown template (roles/report)."""

import os

import jinja2

from ansible_collections.npu.fleet.plugins.module_utils._failure_signatures import diagnose
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import profile_model
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan import plan
from ansible_collections.npu.fleet.plugins.module_utils._report import (
    COLUMNS,
    build_report,
    collect_hosts,
    endpoint_url,
    profiles_by_model,
    gateway_endpoints,
    reach_address,
)
from conftest import REPO_ROOT
from model_checkpoints import fixture_dir

TEMPLATE_DIR = os.path.join(REPO_ROOT, "roles", "report", "templates")
KV_LINE = (
    "ValueError: To serve at least one request with the models's max seq len (40960), (5.63 GiB KV cache is needed, which "
    "is larger than the available KV cache memory (2.10 GiB). Based on the available memory, the estimated maximum model "
    "length is 15232. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine."
)


def chip(number):
    return {
        "npu_id": number,
        "chip_id": 0,
        "logic_id": number,
        "phy_id": number,
        "device": "/dev/davinci%d" % number,
        "name": "910B4",
        "health": "OK",
        "memory_total_mb": 32768,
        "memory_used_mb": 0,
        "memory_kind": "HBM",
        "processes": [],
    }


def real_plan(hosts=("a2",)):
    profile = profile_model(fixture_dir("Qwen__Qwen3-8B"))
    models = [
        {
            "name": "qwen3-8b",
            "profile": profile,
            "replicas": 2,
            "spread": False,
            "image": "quay.io/ascend/vllm-ascend:v0.15.0rc1",
            "backend": "vllm",
        },
        {"name": "too-big", "profile": profile, "replicas": 7 * len(hosts), "spread": False, "tensor_parallel_size": 1},
    ]
    return plan(dict((host, {"chips": [chip(n) for n in range(8)]}) for host in hosts), models), profile


def probes_for(result):
    """One healthy replica (a built image), one failed at health with a KV cache log and rolled back; the rest not probed."""
    placed = sorted(result["placements"], key=lambda item: (item["model"], item["replica"]))
    good, bad = placed[0], placed[1]
    probes = [
        {
            "model": good["model"],
            "replica": good["replica"],
            "healthy": True,
            "ttft_ms": 84.2,
            "message": "ok",
            "image": "npu-fleet/transformers-server:0123456789ab",
        },
        {
            "model": bad["model"],
            "replica": bad["replica"],
            "healthy": False,
            "stage": "health",
            "rolled_back": True,
            "message": "not ready after 600 s (ConnectionRefusedError: [Errno 111] Connection refused)",
            "diagnosis": diagnose("INFO loading\n" + KV_LINE + "\nRuntimeError: Engine core initialization failed."),
        },
    ]
    return placed, good, bad, probes


def test_rows_join_plan_profile_and_probe():
    result, profile = real_plan()
    placed, good, bad, probes = probes_for(result)
    assert len(placed) == 8 and len(result["unplaced"]) == 1  # 9 one-chip replicas, 8 chips
    report = build_report(result, probes, {"qwen3-8b": profile, "too-big": profile}, {"a2": "10.0.0.11"})
    rows = dict(((row["model"], row["replica"]), row) for row in report["rows"])
    assert rows[(good["model"], good["replica"])]["status"] == "healthy"
    assert rows[(good["model"], good["replica"])]["image"] == "npu-fleet/transformers-server:0123456789ab"
    assert rows[(bad["model"], bad["replica"])]["image"] == bad["image"]  # not probed with an image: the plan's
    assert rows[(bad["model"], bad["replica"])]["status"] == "failed at health, rolled back"
    assert rows[(bad["model"], bad["replica"])]["diagnosis"]["code"] == "kv_cache"
    assert sum(1 for row in report["rows"] if row["status"] == "not probed") == 6
    for item in placed:
        row = rows[(item["model"], item["replica"])]
        assert row["chips"] == ",".join(device.replace("/dev/davinci", "") for device in item["devices"])
        assert (row["host"], row["port"], row["max_model_len"], row["params"], row["architecture"]) == (
            "a2",
            item["port"],
            item["max_model_len"],
            "8.2B",
            "Qwen3ForCausalLM",
        )
        assert row["url"] == "http://10.0.0.11:%d" % item["port"]
        assert set(COLUMNS) <= set(row)
    assert report["rows"] == sorted(report["rows"], key=lambda row: (row["host"], row["model"], row["replica"]))
    assert report["unplaced"] == [
        {"model": "too-big", "replica": result["unplaced"][0]["replica"], "reason": result["unplaced"][0]["reason"]}
    ]
    assert report["totals"] == {"replicas": 8, "healthy": 1, "failed": 1, "unhealthy": 7, "unplaced": 1}


def test_check_mode_rows_say_planned():
    result, profile = real_plan()
    report = build_report(result, [], {"qwen3-8b": profile}, check_mode=True)
    assert {row["status"] for row in report["rows"]} == {"planned (check mode)"}
    assert report["totals"] == {"replicas": 8, "healthy": 0, "failed": 0, "unhealthy": 8, "unplaced": 1}
    assert {row["params"] for row in report["rows"] if row["model"] == "too-big"} == {"?"}  # no profile given
    assert all(row["url"] == "http://a2:%d" % row["port"] for row in report["rows"])  # no address: the host name


def test_address_is_the_bind_address_then_ansible_host_then_the_name():
    assert reach_address("n1", {"serve_bind_address": "192.168.5.7", "ansible_host": "10.0.0.11"}) == "192.168.5.7"
    assert reach_address("n1", {"serve_bind_address": "0.0.0.0", "ansible_host": "10.0.0.11"}) == "10.0.0.11"
    assert reach_address("n1", {"serve_bind_address": "::", "ansible_host": "fd00::11"}) == "fd00::11"
    assert reach_address("n1", {}) == "n1"
    facts = {"ansible_default_ipv4": {"address": "172.18.0.4"}, "ansible_host": "npu-fleet-demo-n1"}
    assert reach_address("n1", facts) == "172.18.0.4"
    assert reach_address("n1", dict(facts, npu_fleet_advertise_address="10.9.0.1", serve_bind_address="192.168.5.7")) == "10.9.0.1"
    assert endpoint_url("fd00::11", 18231) == "http://[fd00::11]:18231"
    assert endpoint_url("[fd00::11]", 18231) == "http://[fd00::11]:18231"
    assert endpoint_url("npu-a2-01.example.com", 18231) == "http://npu-a2-01.example.com:18231"


def test_hosts_without_probe_results_leave_their_replicas_not_probed():
    result, profile = real_plan(hosts=("n1", "n2"))
    placed = result["placements"]
    assert {item["host"] for item in placed} == {"n1", "n2"}
    on_n1 = [item for item in placed if item["host"] == "n1"]
    hostvars = {
        "n1": {
            "ansible_host": "fd00::11",
            "health_probe_results": [
                {"model": item["model"], "replica": item["replica"], "healthy": True, "ttft_ms": 50.0} for item in on_n1
            ],
        },
        "n2": {"ansible_host": "10.0.0.12", "serve_bind_address": "10.1.0.12"},  # unreachable at probe time
    }
    probes, addresses = collect_hosts(hostvars, ["n1", "n2", "ghost"])
    assert addresses == {"n1": "fd00::11", "n2": "10.1.0.12", "ghost": "ghost"}
    report = build_report(result, probes, profiles_by_model([{"name": "qwen3-8b", "profile": profile}, {"name": "too-big"}]), addresses)
    for row in report["rows"]:
        if row["host"] == "n1":
            assert row["status"] == "healthy" and row["url"] == "http://[fd00::11]:%d" % row["port"]
        else:
            assert row["status"] == "not probed" and row["url"] == "http://10.1.0.12:%d" % row["port"]
    assert report["totals"]["healthy"] == len(on_n1) and report["totals"]["failed"] == 0


# --------------------------------------------------------------------------- the Markdown template


def render(report):
    """As the role renders it: lookup('ansible.builtin.template') has trim_blocks on."""
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), trim_blocks=True, undefined=jinja2.StrictUndefined)
    return environment.get_template("report.md.j2").render(report=report)


def test_template_renders_tables_failures_and_unplaced():
    result, profile = real_plan()
    placed, good, bad, probes = probes_for(result)
    report = build_report(result, probes, profiles_by_model([{"name": "qwen3-8b", "profile": profile}]), {"a2": "10.0.0.11"})
    markdown = render(report)
    lines = markdown.splitlines()
    assert lines[:4] == ["# npu.fleet deployment report", "", "8 replica(s): 1 healthy, 1 failed, 1 unplaced.", ""]
    assert lines[4:8] == [
        "## a2",
        "",
        "| model | params | architecture | backend | image | host | chips | port | url | max_model_len | status | ttft_ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    assert (
        "| qwen3-8b | 8.2B | Qwen3ForCausalLM | vllm | npu-fleet/transformers-server:0123456789ab | a2 | %s | %d | "
        "http://10.0.0.11:%d | %d | healthy | 84.2 |"
        % (good["devices"][0].replace("/dev/davinci", ""), good["port"], good["port"], good["max_model_len"])
    ) in lines
    assert (
        "| too-big | ? | ? | vllm | ? | a2 | %s | %d | http://10.0.0.11:%d | %d | not probed | - |"
        % (placed[-1]["devices"][0].replace("/dev/davinci", ""), placed[-1]["port"], placed[-1]["port"], placed[-1]["max_model_len"])
    ) in lines
    failure = lines.index("## Failures")
    assert lines[failure + 1] == ""
    assert lines[failure + 2] == (
        "- **qwen3-8b** replica %d on a2: not ready after 600 s (ConnectionRefusedError: [Errno 111] Connection refused). "
        "Cause: the KV cache does not fit the chip memory left after the weights. Fix: lower max_model_len (estimated maximum: "
        "15232) or raise gpu_memory_utilization, or give the model more chips (tensor_parallel_size). Log: `%s`"
        % (bad["replica"], KV_LINE.replace("`", "'"))
    )
    unplaced = lines.index("## Not placed")
    assert lines[unplaced + 2] == "- **too-big** replica %d: %s" % (result["unplaced"][0]["replica"], result["unplaced"][0]["reason"])
    assert markdown.endswith(lines[unplaced + 2] + "\n\n")
    assert sum(1 for line in lines if line.startswith("| ")) == 1 + 8  # header and one line per replica


def test_template_document_is_exact_and_escapes_cells():
    """The whole document for a small report, as render_markdown wrote it (plus the url column), one blank line between sections."""
    report = {
        "totals": {"replicas": 2, "healthy": 1, "failed": 0, "unplaced": 0},
        "unplaced": [],
        "rows": [
            {
                "model": "m",
                "replica": 0,
                "params": "4.0B",
                "architecture": "A|B",
                "backend": "vllm",
                "image": "img:1",
                "host": "h1",
                "chips": "0",
                "port": 18000,
                "url": "http://h1:18000",
                "max_model_len": 4096,
                "status": "healthy",
                "healthy": True,
                "ttft_ms": 0.0,
                "diagnosis": None,
                "message": "line one\nline two",
            },
            {
                "model": "m",
                "replica": 1,
                "params": "4.0B",
                "architecture": "A",
                "backend": "vllm",
                "image": "img:1",
                "host": "h2",
                "chips": "",
                "port": 18000,
                "url": "http://[fd00::2]:18000",
                "max_model_len": None,
                "status": "not probed",
                "healthy": False,
                "ttft_ms": None,
                "diagnosis": None,
                "message": None,
            },
        ],
    }
    header = "| model | params | architecture | backend | image | host | chips | port | url | max_model_len | status | ttft_ms |"
    assert render(report) == "\n".join(
        [
            "# npu.fleet deployment report",
            "",
            "2 replica(s): 1 healthy, 0 failed, 0 unplaced.",
            "",
            "## h1",
            "",
            header,
            "|" + "---|" * 12,
            "| m | 4.0B | A\\|B | vllm | img:1 | h1 | 0 | 18000 | http://h1:18000 | 4096 | healthy | 0.0 |",
            "",
            "## h2",
            "",
            header,
            "|" + "---|" * 12,
            "| m | 4.0B | A | vllm | img:1 | h2 | - | 18000 | http://[fd00::2]:18000 | - | not probed | - |",
            "",
            "",
        ]
    )
    empty = {"totals": {"replicas": 0, "healthy": 0, "failed": 0, "unplaced": 0}, "rows": [], "unplaced": []}
    assert render(empty) == "# npu.fleet deployment report\n\n0 replica(s): 0 healthy, 0 failed, 0 unplaced.\n\n"


def test_gateway_urls_list_every_gateway_host_for_the_router_and_each_model():
    found = {
        "npu-a2-02": {"gateway_endpoint": {"address": "172.18.0.3", "router_port": 8000, "ports": {"qwen3-8b": 9120}}},
        "npu-a2-01": {"gateway_endpoint": {"address": "fd00::2", "router_port": 8000, "ports": {"qwen3-8b": 9120, "tiny": 9007}}},
        "npu-duo-01": {"health_probe_results": []},
    }
    assert gateway_endpoints(found) == {
        "router": ["http://[fd00::2]:8000", "http://172.18.0.3:8000"],
        "models": {"qwen3-8b": ["http://[fd00::2]:9120", "http://172.18.0.3:9120"], "tiny": ["http://[fd00::2]:9007"]},
    }
    assert gateway_endpoints({}) == {"router": [], "models": {}}


def test_a_one_replica_model_replaced_by_a_rolling_update_states_its_outage_window():
    plan_result = {
        "placements": [
            {"model": "solo", "replica": 0, "host": "n1", "devices": ["/dev/davinci0"], "port": 18000},
            {"model": "pair", "replica": 0, "host": "n1", "devices": ["/dev/davinci1"], "port": 18001},
            {"model": "pair", "replica": 1, "host": "n2", "devices": ["/dev/davinci1"], "port": 18001},
        ]
    }
    probes = [
        {"model": "solo", "replica": 0, "healthy": True, "rolling": True, "ready_after_s": 41.27},
        {"model": "pair", "replica": 0, "healthy": True, "rolling": True, "ready_after_s": 40.0},
        {"model": "pair", "replica": 1, "healthy": True, "ready_after_s": 0.1},
    ]
    rows = dict(((row["model"], row["replica"]), row) for row in build_report(plan_result, probes, {})["rows"])
    assert rows[("solo", 0)]["outage_s"] == 41.3 and rows[("solo", 0)]["replaced"] is True
    assert rows[("pair", 0)]["outage_s"] is None and rows[("pair", 0)]["replaced"] is True  # its other replica served
    assert rows[("pair", 1)]["outage_s"] is None and rows[("pair", 1)]["replaced"] is False


def test_a_surge_replacement_has_no_outage_and_shows_where_its_successor_runs():
    plan_result = {"placements": [{"model": "solo", "replica": 0, "host": "n1", "devices": ["/dev/davinci0"], "port": 18000}]}
    probes = [
        {
            "model": "solo",
            "replica": 0,
            "healthy": True,
            "rolling": True,
            "surge": True,
            "ready_after_s": 41.27,
            "devices": ["/dev/davinci3"],
            "port": 18003,
        }
    ]
    [row] = build_report(plan_result, probes, {}, {"n1": "10.0.0.11"})["rows"]
    assert (row["replaced"], row["surge"], row["outage_s"]) == (True, True, None)
    assert (row["chips"], row["port"], row["url"]) == ("3", 18003, "http://10.0.0.11:18003")


def test_hosts_that_serve_without_a_key_are_named_open():
    from ansible_collections.npu.fleet.plugins.module_utils._report import open_hosts

    hosts = {"a2": {"serve_anonymous": True}, "a3": {"serve_anonymous": False}, "duo": {}, "gw": None}
    assert open_hosts(hosts) == ["a2"]


def test_hosts_that_did_not_finish_are_named_with_what_may_be_half_done():
    from ansible_collections.npu.fleet.plugins.module_utils._report import host_states

    result, profile = real_plan(hosts=("a2", "b2", "c2", "d2"))
    one = [p for p in result["placements"] if p["model"] == "qwen3-8b"][0]
    current = [dict(one, host="b2")]
    # qwen3-8b/0 ran on b2 before; it moves, so the plan touches b2 (remove there) and one.host (start there).
    moved = plan(
        dict((host, {"chips": [chip(n) for n in range(8)], "preflight_ok": host != "d2"}) for host in ("a2", "b2", "c2", "d2")),
        [{"name": "qwen3-8b", "profile": profile, "replicas": 1, "hosts": ["a2"]}],
        current=current,
    )
    hostvars = {
        "a2": {"npu_fleet_stage": "done"},
        "b2": {"npu_fleet_stage": "serve"},
        "c2": {"npu_fleet_stage": "probe"},
        "d2": {
            "npu_fleet_stage": "preflight",
            "npu_preflight": {"ok": False, "problems": [{"code": "FWKACLLIB_MISSING", "severity": "error"}]},
        },
        "e2": {},
    }
    states = host_states(hostvars, ["a2", "b2", "c2", "d2", "e2"], moved, unreachable=["b2", "e2"])
    assert states == [
        {
            "host": "b2",
            "state": "unreachable, stopped during serve",
            "detail": "the plan changed here: move qwen3-8b/0; any of these may be half-done; "
            "bring it back and run the deploy again: it converges",
        },
        {
            "host": "c2",
            "state": "failed during probe",
            "detail": "the plan changed nothing here; its replicas run on as they were; "
            "see the failed task in the run's output, fix it and run again",
        },
        {
            "host": "d2",
            "state": "failed preflight",
            "detail": "FWKACLLIB_MISSING: it received nothing and what it ran runs on as it was; fix it (see the preflight report) "
            "and run again",
        },
        {
            "host": "e2",
            "state": "unreachable, stopped before discovery",
            "detail": "it received nothing; bring it back and run the deploy again: it converges",
        },
    ]
    report = build_report(moved, [], profiles_by_model([]), {})
    report["hosts"] = states
    lines = render(report).splitlines()
    section = lines.index("## Hosts that did not finish")
    assert lines[section + 2].startswith("- **b2**: unreachable, stopped during serve - the plan changed here: move qwen3-8b/0")
    assert lines[section + 5].startswith("- **e2**: unreachable, stopped before discovery - it received nothing")
