"""The npu.fleet.gateway_successor module, run through AnsibleModule against a real HAProxy.

The gateway (haproxy -db, two fake replicas, an admin socket) is the harness of
tests/unit/plugins/module_utils/test__haproxy_runtime.py, loaded from that file.
"""

import importlib.util
import json
import os
import threading

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.npu.fleet.plugins.modules import gateway_successor

HERE = os.path.dirname(os.path.abspath(__file__))
_SPEC = importlib.util.spec_from_file_location(
    "_haproxy_gateway_harness_successor", os.path.join(HERE, "..", "module_utils", "test__haproxy_runtime.py")
)
harness = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(harness)

BACKEND, SERVERS = harness.BACKEND, harness.SERVERS


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


@pytest.fixture
def successor():
    server = harness._ReplicaServer(("127.0.0.1", 0), harness._Replica)
    server.replica_name = "successor"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def run(capsys, args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            gateway_successor.main()
    result = json.loads(capsys.readouterr().out)
    result["_exit"] = exit_info.value.code
    return result


def remove(gateway, name):
    gateway.runtime.set_state(BACKEND, name, "maint")
    assert gateway.runtime.command("del server %s/%s" % (BACKEND, name)).strip() == "Server deleted."


def test_check_mode_adds_nothing_then_the_successor_serves_next_to_its_server(gateway, successor, capsys):
    port = successor.server_address[1]
    args = {"socket": gateway.socket, "successors": [{"backend": BACKEND, "server": SERVERS[0], "port": port}], "check_interval_ms": 200}
    planned = run(capsys, dict(args, _ansible_check_mode=True))
    assert planned["_exit"] == 0 and planned["changed"] is True and planned["successors"][0]["added"] is True
    assert [entry["server"] for entry in gateway.runtime.servers(BACKEND)] == list(SERVERS)
    name = "%s:%d" % (SERVERS[0], port)
    try:
        result = run(capsys, args)
        assert result["_exit"] == 0, result.get("msg")
        [entry] = result["successors"]
        assert (entry["name"], entry["added"], entry["up"], entry["check_status"]) == (name, True, True, "L7OK")
        gateway.runtime.set_state(BACKEND, SERVERS[0], "drain")
        gateway.runtime.set_state(BACKEND, SERVERS[1], "drain")
        assert gateway.request("/x")[1].startswith("successor")
        again = run(capsys, args)
        assert again["_exit"] == 0 and again["changed"] is False
    finally:
        remove(gateway, name)


def test_an_unreachable_successor_fails_naming_it_and_is_gone(gateway, capsys):
    port = harness.free_port()
    result = run(
        capsys,
        {
            "socket": gateway.socket,
            "successors": [{"backend": BACKEND, "server": SERVERS[1], "port": port}],
            "wait": 1,
            "check_interval_ms": 200,
        },
    )
    assert result["_exit"] == 1
    assert "cannot reach %s/%s:%d" % (BACKEND, SERVERS[1], port) in result["msg"] and "still serve" in result["msg"]
    assert [entry["server"] for entry in gateway.runtime.servers(BACKEND)] == list(SERVERS)


def test_a_missing_server_fails_or_is_skipped(gateway, tmp_path, capsys):
    wanted = [{"backend": BACKEND, "server": "npu-fleet-demo-7", "port": 18007}]
    failed = run(capsys, {"socket": gateway.socket, "successors": wanted})
    assert failed["_exit"] == 1 and "model_demo/npu-fleet-demo-7" in failed["msg"]
    skipped = run(capsys, {"socket": gateway.socket, "successors": wanted, "missing": "ignore"})
    assert skipped["_exit"] == 0 and skipped["changed"] is False and skipped["successors"][0]["missing"] is True
    absent = run(capsys, {"socket": str(tmp_path / "admin.sock"), "successors": wanted, "missing": "ignore"})
    assert absent["_exit"] == 0 and absent["gateway"] is False
