"""The npu.fleet.gateway_server module, run through AnsibleModule against a real HAProxy.

The gateway (haproxy -db, two fake replicas, an admin socket) is the harness of
tests/unit/plugins/module_utils/test__haproxy_runtime.py, loaded from that file.
"""

import importlib.util
import json
import os
import time

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.npu.fleet.plugins.modules import gateway_server

HERE = os.path.dirname(os.path.abspath(__file__))
_SPEC = importlib.util.spec_from_file_location(
    "_haproxy_gateway_harness", os.path.join(HERE, "..", "module_utils", "test__haproxy_runtime.py")
)
harness = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(harness)

BACKEND, SERVERS = harness.BACKEND, harness.SERVERS
DEMO0 = {"backend": BACKEND, "server": SERVERS[0]}
DEMO1 = {"backend": BACKEND, "server": SERVERS[1]}


@pytest.fixture(scope="module")
def started_gateway():
    gateway = harness.Gateway()
    try:
        yield gateway.start()
    finally:
        gateway.stop()


@pytest.fixture
def gateway(started_gateway):
    started_gateway.reset()
    return started_gateway


def run(capsys, args):
    """Run the module with ``args``; return its JSON result with ``_exit`` (0 or 1) and ``_seconds``."""
    started = time.monotonic()
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            gateway_server.main()
    result = json.loads(capsys.readouterr().out)
    result["_exit"] = exit_info.value.code
    result["_seconds"] = time.monotonic() - started
    return result


def admin_state(gateway, server, backend=BACKEND):
    return gateway.runtime.server(backend, server)["admin_state"]


def test_check_mode_reports_the_change_and_changes_nothing(gateway, capsys):
    thread, unused = gateway.slow_request_on(SERVERS[0], 1.0)
    result = run(capsys, {"socket": gateway.socket, "servers": [DEMO0, DEMO1], "state": "drain", "_ansible_check_mode": True})
    assert result["_exit"] == 0, result.get("msg")
    assert result["changed"] is True
    first, second = result["servers"]
    assert (first["state_before"], first["state_after"], first["sessions"], first["drained"], first["waited"]) == (
        "ready",
        "drain",
        1,
        None,
        0.0,
    )
    assert (second["state_before"], second["state_after"], second["missing"]) == ("ready", "drain", False)
    assert result["_seconds"] < 0.5  # no waiting for the request in flight
    assert admin_state(gateway, SERVERS[0]) == admin_state(gateway, SERVERS[1]) == "ready"
    thread.join(5)
    gateway.runtime.set_state(BACKEND, SERVERS[1], "drain")
    result = run(capsys, {"socket": gateway.socket, "servers": [DEMO1], "state": "drain", "_ansible_check_mode": True})
    assert result["changed"] is False


def test_drain_waits_until_the_request_in_flight_finished(gateway, capsys):
    thread, request = gateway.slow_request_on(SERVERS[0], 1.0)
    result = run(capsys, {"socket": gateway.socket, "servers": [DEMO0], "state": "drain", "drain_timeout": 10})
    assert result["_exit"] == 0, result.get("msg")
    assert result["changed"] is True and result["socket"] == gateway.socket
    [entry] = result["servers"]
    assert entry == {
        "backend": BACKEND,
        "server": SERVERS[0],
        "missing": False,
        "state_before": "ready",
        "state_after": "drain",
        "status": "DRAIN",
        "sessions": 0,
        "drained": True,
        "waited": entry["waited"],
    }
    assert 0.5 < entry["waited"] < 5
    thread.join(5)
    assert request == {"status": 200, "body": "%s /slow?s=1.0\n" % SERVERS[0]}
    assert gateway.request("/after")[1].startswith(SERVERS[1])
    again = run(capsys, {"socket": gateway.socket, "servers": [DEMO0], "state": "drain"})
    assert again["changed"] is False and again["servers"][0]["drained"] is True and again["servers"][0]["waited"] < 0.5


def test_drain_timeout_is_not_a_failure(gateway, capsys):
    thread, request = gateway.slow_request_on(SERVERS[1], 1.2)
    result = run(capsys, {"socket": gateway.socket, "servers": [DEMO0, DEMO1], "state": "drain", "drain_timeout": 0})
    assert result["_exit"] == 0 and "failed" not in result
    first, second = result["servers"]
    assert (first["drained"], first["sessions"]) == (True, 0)
    assert (second["drained"], second["state_after"]) == (False, "drain") and second["sessions"] >= 1
    assert result["_seconds"] < 0.5
    thread.join(5)
    assert request["status"] == 200


def test_ready_puts_the_server_back(gateway, capsys):
    gateway.runtime.set_state(BACKEND, SERVERS[0], "drain")
    result = run(capsys, {"socket": gateway.socket, "servers": [DEMO0, DEMO1], "state": "ready"})
    assert result["_exit"] == 0, result.get("msg")
    assert result["changed"] is True
    assert [(e["state_before"], e["state_after"], e["drained"], e["waited"]) for e in result["servers"]] == [
        ("drain", "ready", None, 0.0),
        ("ready", "ready", None, 0.0),
    ]
    assert {gateway.request("/r%d" % index)[1].split()[0] for index in range(4)} == set(SERVERS)
    again = run(capsys, {"socket": gateway.socket, "servers": [DEMO0, DEMO0], "state": "ready"})
    assert again["changed"] is False and len(again["servers"]) == 1  # a duplicate is set once


def test_maint(gateway, capsys):
    result = run(capsys, {"socket": gateway.socket, "servers": [DEMO1], "state": "maint"})
    assert result["changed"] is True
    assert (result["servers"][0]["state_after"], result["servers"][0]["status"]) == ("maint", "MAINT")
    assert admin_state(gateway, SERVERS[1]) == "maint"


def test_missing_fail_names_every_missing_server_and_changes_nothing(gateway, capsys):
    servers = [DEMO0, {"backend": BACKEND, "server": "npu-fleet-demo-7"}, {"backend": "model_new", "server": "npu-fleet-new-0"}]
    result = run(capsys, {"socket": gateway.socket, "servers": servers, "state": "drain"})
    assert result["_exit"] == 1 and result["failed"] is True
    assert result["msg"].startswith(
        "not in the running configuration of the gateway HAProxy at %s: model_demo/npu-fleet-demo-7, model_new/npu-fleet-new-0 "
        "(backends there: model_cfg, model_demo, model_tracked)" % gateway.socket
    )
    assert "missing=ignore" in result["msg"]
    assert admin_state(gateway, SERVERS[0]) == "ready"  # looked up before any change


def test_missing_ignore_skips_them(gateway, capsys):
    servers = [{"backend": "model_new", "server": "npu-fleet-new-0"}, DEMO0]
    result = run(capsys, {"socket": gateway.socket, "servers": servers, "state": "drain", "missing": "ignore"})
    assert result["_exit"] == 0, result.get("msg")
    assert result["changed"] is True
    assert result["servers"][0] == {
        "backend": "model_new",
        "server": "npu-fleet-new-0",
        "missing": True,
        "state_before": None,
        "state_after": None,
        "status": None,
        "sessions": None,
        "drained": None,
        "waited": 0.0,
    }
    assert (result["servers"][1]["state_after"], result["servers"][1]["drained"]) == ("drain", True)
    only_missing = run(capsys, {"socket": gateway.socket, "servers": servers[:1], "state": "ready", "missing": "ignore"})
    assert only_missing["_exit"] == 0 and only_missing["changed"] is False


def test_a_state_haproxy_does_not_take_fails(gateway, capsys):
    gateway.runtime.set_state(BACKEND, SERVERS[0], "maint")
    tracked = {"backend": "model_tracked", "server": "npu-fleet-tracked-0"}
    result = run(capsys, {"socket": gateway.socket, "servers": [tracked], "state": "ready"})
    assert result["_exit"] == 1
    assert result["msg"].startswith("model_tracked/npu-fleet-tracked-0 is maint (MAINT (via model_demo/npu-fleet-demo-0))")
    assert "inherited from a tracked server" in result["msg"]
    assert result["servers"][0]["state_after"] == "maint"


def test_missing_socket_fails_naming_the_host_path(tmp_path, capsys):
    path = str(tmp_path / "admin.sock")
    result = run(capsys, {"socket": path, "servers": [DEMO0], "state": "drain"})
    assert result["_exit"] == 1 and result["socket"] == path
    assert result["msg"] == (
        "HAProxy runtime socket %s does not exist: is the npu.fleet gateway container running? "
        "(docker ps --filter name=npu-fleet-gateway)" % path
    )


def test_the_default_socket_is_the_gateway_host_path():
    assert gateway_server.DEFAULT_SOCKET == "/var/lib/npu-fleet/gateway/run/admin.sock"


@pytest.mark.parametrize(
    "args, message",
    [
        ({"state": "drain"}, "missing required arguments: servers"),
        ({"servers": [DEMO0], "state": "stopped"}, "value of state must be one of: ready, drain, maint"),
        ({"servers": [{"backend": BACKEND}], "state": "drain"}, "missing required arguments: server found in servers"),
        ({"servers": [DEMO0], "state": "drain", "drain_timeout": -1}, "drain_timeout must be >= 0 and timeout > 0"),
    ],
)
def test_bad_arguments(tmp_path, capsys, args, message):
    result = run(capsys, dict(args, socket=str(tmp_path / "admin.sock")))
    assert result["_exit"] == 1 and message in result["msg"]


def test_nothing_to_do_and_no_gateway_yet_are_not_failures(tmp_path, capsys):
    """A wave with no replica, or a host whose gateway has not started yet (the first deploy), is a no-op."""
    absent = str(tmp_path / "run" / "admin.sock")
    result = run(capsys, {"servers": [], "state": "drain", "socket": absent})
    assert result["_exit"] == 0 and result["changed"] is False and result["servers"] == [] and result["gateway"] is False
    result = run(capsys, {"servers": [DEMO0], "state": "drain", "socket": absent, "missing": "ignore"})
    assert result["_exit"] == 0 and result["changed"] is False and result["gateway"] is False
    result = run(capsys, {"servers": [DEMO0], "state": "drain", "socket": absent})
    assert result["_exit"] == 1 and "does not exist" in result["msg"]
