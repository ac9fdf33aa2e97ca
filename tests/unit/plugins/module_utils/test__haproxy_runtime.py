"""The HAProxy runtime API client against a real HAProxy (the binary the gateway image runs, installed on the test host).

A ``Gateway`` runs ``haproxy -db`` with a temporary configuration: a frontend on a free loopback port, a backend
``model_demo`` whose two servers are Python ``ThreadingHTTPServer`` replicas (``/health`` answers 200, ``/slow?s=N``
answers after N seconds), and the admin socket in a short temporary directory. tests/unit/plugins/modules/
test_gateway_server.py reuses the same harness for the module. Without HAProxy the tests fail: CI installs it.
"""

import http.client
import http.server
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._haproxy_runtime import (
    GATEWAY_HINT,
    HaproxyRuntime,
    HaproxyRuntimeError,
    admin_state_of,
    parse_servers_state,
    parse_stat,
)

BACKEND = "model_demo"
SERVERS = ("npu-fleet-demo-0", "npu-fleet-demo-1")

CONFIG = """\
global
    stats socket {run}/admin.sock mode 600 level admin
    stats socket {run}/operator.sock mode 600 level operator
    stats timeout 10s

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend fe
    bind 127.0.0.1:{port}
    default_backend model_demo

backend model_demo
    balance roundrobin
    option httpchk GET /health
    server npu-fleet-demo-0 127.0.0.1:{port0} check inter 300ms
    server npu-fleet-demo-1 127.0.0.1:{port1} check inter 300ms

# A frontend named like its backend, as npu.fleet's generated configuration has one per model.
frontend model_cfg
    bind 127.0.0.1:{port_cfg}
    default_backend model_cfg

# A replica listed but 'disabled' in the configuration (CMAINT), and one that tracks demo-0 (inherits its state).
backend model_cfg
    server npu-fleet-cfg-0 127.0.0.1:{port0} disabled

backend model_tracked
    server npu-fleet-tracked-0 127.0.0.1:{port0} track model_demo/npu-fleet-demo-0
"""


def haproxy_binary():
    """The haproxy executable, or a test failure that says how to get it (never a skip: CI installs HAProxy)."""
    found = shutil.which("haproxy")
    for candidate in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy"):
        if not found and os.access(candidate, os.X_OK):
            found = candidate
    if not found:
        pytest.fail(
            "HAProxy is not installed (no haproxy on PATH, /usr/sbin or /usr/local/sbin): these tests drive the real "
            "runtime API. Install it (apt-get install haproxy) - the CI machine does.",
            pytrace=False,
        )
    return found


class _Replica(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - the name http.server calls
        if self.path.startswith("/slow"):
            time.sleep(float(self.path.partition("s=")[2] or 1))
        body = ("ok\n" if self.path == "/health" else "%s %s\n" % (self.server.replica_name, self.path)).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _ReplicaServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # HAProxy's HTTP checks close as soon as they have the status line: a reset while answering is normal.
        pass


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Gateway(object):
    """A real HAProxy in front of two fake replicas; ``runtime`` talks to its admin socket."""

    def __init__(self):
        # UNIX socket paths are limited to 107 bytes: pytest's tmp_path can be longer, so a short directory.
        self.run = tempfile.mkdtemp(prefix="npu-hap-")
        self.socket = os.path.join(self.run, "admin.sock")
        self.operator_socket = os.path.join(self.run, "operator.sock")
        self.replicas = {}
        self.process = None
        self.log = os.path.join(self.run, "haproxy.log")

    def start(self):
        binary = haproxy_binary()
        ports = []
        for name in SERVERS:
            server = _ReplicaServer(("127.0.0.1", 0), _Replica)
            server.replica_name = name
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
            self.replicas[name] = server
            ports.append(server.server_address[1])
        self.port = free_port()
        config = os.path.join(self.run, "haproxy.cfg")
        with open(config, "w", encoding="utf-8") as handle:
            handle.write(CONFIG.format(run=self.run, port=self.port, port0=ports[0], port1=ports[1], port_cfg=free_port()))
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([binary, "-db", "-f", config], stdout=log, stderr=subprocess.STDOUT)
        self.runtime = HaproxyRuntime(self.socket, timeout=5.0)
        deadline = time.monotonic() + 10
        while True:
            if self.process.poll() is not None:
                pytest.fail("haproxy exited with %s at start:\n%s" % (self.process.returncode, self.log_text()), pytrace=False)
            try:
                if "Name: HAProxy" in self.runtime.command("show info"):
                    break
            except HaproxyRuntimeError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("haproxy did not answer on %s within 10 s:\n%s" % (self.socket, self.log_text()), pytrace=False)
            time.sleep(0.05)
        self.initial = dict(((entry["backend"], entry["server"]), entry["admin_state"]) for entry in self.runtime.servers())
        return self

    def log_text(self):
        with open(self.log, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for server in self.replicas.values():
            server.shutdown()
            server.server_close()
        shutil.rmtree(self.run, ignore_errors=True)

    def reset(self):
        """Every server back to its configured admin state, with no request in progress."""
        for (backend, server), state in self.initial.items():
            if backend != "model_tracked":  # follows model_demo/npu-fleet-demo-0
                self.runtime.set_state(backend, server, state)
        for backend, server in self.initial:
            assert self.runtime.wait_drained(backend, server, 10)["drained"], "a request of an earlier test is still running"

    def request(self, path, timeout=10):
        """GET ``path`` through the frontend on a new connection: (status, body)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read().decode("utf-8")
        finally:
            connection.close()

    def request_in_background(self, path):
        """Start ``request(path)`` in a thread; returns (thread, result dict filled with status and body)."""
        result = {}

        def run():
            # Any failure of the request is the test's to report, not the thread's.
            try:
                result["status"], result["body"] = self.request(path, timeout=30)
            except Exception as error:  # pylint: disable=broad-except
                result["error"] = repr(error)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread, result

    def slow_request_on(self, server, seconds):
        """A request of ``seconds`` in flight on ``server`` (the other server is held in maint while it is routed)."""
        others = [name for name in SERVERS if name != server]
        for other in others:
            self.runtime.set_state(BACKEND, other, "maint")
        try:
            thread, result = self.request_in_background("/slow?s=%s" % seconds)
            deadline = time.monotonic() + 5
            while self.runtime.server(BACKEND, server)["sessions"] < 1:
                assert time.monotonic() < deadline, "the slow request never reached %s: %s" % (server, result)
                time.sleep(0.02)
        finally:
            for other in others:
                self.runtime.set_state(BACKEND, other, "ready")
        return thread, result


@pytest.fixture(scope="module")
def started_gateway():
    gateway = Gateway()
    try:
        yield gateway.start()
    finally:
        gateway.stop()


@pytest.fixture
def gateway(started_gateway):
    started_gateway.reset()
    return started_gateway


@pytest.fixture
def runtime(gateway):
    return gateway.runtime


# ------------------------------------------------------------------ reading real output


def test_show_stat_parses_frontend_backend_and_server_rows(runtime):
    rows = runtime.show_stat()
    names = [(row["pxname"], row["svname"]) for row in rows]
    assert ("fe", "FRONTEND") in names and (BACKEND, "BACKEND") in names
    assert (BACKEND, SERVERS[0]) in names and (BACKEND, SERVERS[1]) in names
    server = rows[names.index((BACKEND, SERVERS[0]))]
    assert server["type"] == "2" and server["scur"] == "0" and server["status"] == "UP"
    assert "" not in server  # the header's trailing comma is not a column


def test_show_stat_of_one_backend_lists_only_its_servers(runtime):
    rows = runtime.show_stat(BACKEND)
    assert [(row["pxname"], row["svname"]) for row in rows] == [(BACKEND, SERVERS[0]), (BACKEND, SERVERS[1])]


def test_servers_joins_stat_and_servers_state(gateway, runtime):
    demo = runtime.servers(BACKEND)
    assert [entry["server"] for entry in demo] == list(SERVERS)
    first = demo[0]
    assert first["backend"] == BACKEND
    assert (first["status"], first["admin_state"], first["op_state"]) == ("UP", "ready", "running")
    assert (first["sessions"], first["queued"], first["weight"]) == (0, 0, 1)
    assert first["check_status"].startswith("L7OK") or first["check_status"] == "INI"  # INI only before the first check
    assert first["address"] == "127.0.0.1:%d" % gateway.replicas[SERVERS[0]].server_address[1]
    everything = dict(((entry["backend"], entry["server"]), entry) for entry in runtime.servers())
    assert set(everything) == {
        (BACKEND, SERVERS[0]),
        (BACKEND, SERVERS[1]),
        ("model_cfg", "npu-fleet-cfg-0"),
        ("model_tracked", "npu-fleet-tracked-0"),
    }
    assert everything[("model_cfg", "npu-fleet-cfg-0")]["admin_state"] == "maint"  # 'disabled' in the configuration


@pytest.mark.parametrize(
    "state, status, op_state", [("drain", "DRAIN", "running"), ("maint", "MAINT", "stopped"), ("ready", "UP", "running")]
)
def test_set_state_round_trips(runtime, state, status, op_state):
    runtime.set_state(BACKEND, SERVERS[0], state)
    entry = runtime.server(BACKEND, SERVERS[0])
    assert (entry["admin_state"], entry["status"], entry["op_state"]) == (state, status, op_state)
    assert runtime.server(BACKEND, SERVERS[1])["admin_state"] == "ready"
    runtime.set_state(BACKEND, SERVERS[0], "ready")
    assert runtime.server(BACKEND, SERVERS[0])["admin_state"] == "ready"


def test_setting_the_same_state_twice_is_accepted(runtime):
    runtime.set_state(BACKEND, SERVERS[1], "drain")
    runtime.set_state(BACKEND, SERVERS[1], "drain")
    assert runtime.server(BACKEND, SERVERS[1])["admin_state"] == "drain"


def test_a_configured_disabled_server_becomes_ready(runtime):
    # HAProxy keeps bit 0x04 (CMAINT) after 'state ready': it is not maintenance.
    runtime.set_state("model_cfg", "npu-fleet-cfg-0", "ready")
    raw = runtime.show_servers_state("model_cfg")[0]
    assert int(raw["srv_admin_state"]) & 0x04
    assert runtime.server("model_cfg", "npu-fleet-cfg-0")["admin_state"] == "ready"


def test_a_tracking_server_inherits_drain_and_maint_and_cannot_leave_them_alone(runtime):
    runtime.set_state(BACKEND, SERVERS[0], "drain")
    assert runtime.server("model_tracked", "npu-fleet-tracked-0")["admin_state"] == "drain"
    runtime.set_state(BACKEND, SERVERS[0], "maint")
    tracked = runtime.server("model_tracked", "npu-fleet-tracked-0")
    assert tracked["admin_state"] == "maint" and tracked["status_text"].startswith("MAINT (via model_demo/npu-fleet-demo-0)")
    runtime.set_state("model_tracked", "npu-fleet-tracked-0", "ready")  # accepted without a word...
    assert runtime.server("model_tracked", "npu-fleet-tracked-0")["admin_state"] == "maint"  # ...and nothing changed


# ------------------------------------------------------------------ traffic


def test_in_drain_new_requests_go_only_to_the_other_server(gateway, runtime):
    answers = [gateway.request("/x")[1].split()[0] for unused in range(4)]
    assert sorted(set(answers)) == sorted(SERVERS)  # round robin over both
    runtime.set_state(BACKEND, SERVERS[0], "drain")
    answers = [gateway.request("/x%d" % index) for index in range(6)]
    assert answers == [(200, "%s /x%d\n" % (SERVERS[1], index)) for index in range(6)]
    # A keep-alive client connection opened before is balanced per request too: its next request avoids the drained server.
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        runtime.set_state(BACKEND, SERVERS[0], "ready")
        seen = set()
        for unused in range(4):
            connection.request("GET", "/ka")
            seen.add(connection.getresponse().read().decode().split()[0])
        assert seen == set(SERVERS)
        runtime.set_state(BACKEND, SERVERS[0], "drain")
        for unused in range(4):
            connection.request("GET", "/ka")
            assert connection.getresponse().read().decode().split()[0] == SERVERS[1]
    finally:
        connection.close()
    assert runtime.server(BACKEND, SERVERS[0])["sessions"] == 0  # an idle keep-alive client holds no session


def test_wait_drained_waits_for_the_request_in_flight_and_loses_none(gateway, runtime):
    thread, result = gateway.slow_request_on(SERVERS[0], 1.0)
    runtime.set_state(BACKEND, SERVERS[0], "drain")
    # scur counts the one request in progress: exactly 1, not 0 and not 2 (the checks do not count).
    assert runtime.server(BACKEND, SERVERS[0])["sessions"] == 1
    assert gateway.request("/during")[1].startswith(SERVERS[1])
    waited = runtime.wait_drained(BACKEND, SERVERS[0], timeout=10, interval=0.05)
    assert waited["drained"] is True and waited["sessions"] == 0
    assert 0.5 < waited["waited"] < 5
    thread.join(5)
    assert result == {"status": 200, "body": "%s /slow?s=1.0\n" % SERVERS[0]}


def test_wait_drained_times_out_without_failing(gateway, runtime):
    thread, result = gateway.slow_request_on(SERVERS[1], 2.0)
    runtime.set_state(BACKEND, SERVERS[1], "drain")
    waited = runtime.wait_drained(BACKEND, SERVERS[1], timeout=0.6, interval=0.1)
    assert waited["drained"] is False and waited["sessions"] >= 1
    assert 0.6 <= waited["waited"] < 1.5
    thread.join(5)
    assert result == {"status": 200, "body": "%s /slow?s=2.0\n" % SERVERS[1]}  # the drained server still finished it
    assert runtime.wait_drained(BACKEND, SERVERS[1], timeout=1)["drained"] is True


def test_wait_drained_on_an_idle_server_returns_at_once(runtime):
    runtime.set_state(BACKEND, SERVERS[0], "drain")
    assert runtime.wait_drained(BACKEND, SERVERS[0], timeout=5) == {"drained": True, "sessions": 0, "waited": pytest.approx(0, abs=0.5)}


def test_wait_drained_polls_with_the_injected_clock(gateway, runtime):
    thread, unused = gateway.slow_request_on(SERVERS[0], 0.8)
    runtime.set_state(BACKEND, SERVERS[0], "drain")
    now, sleeps = [0.0], []

    def sleep(seconds):
        sleeps.append(seconds)
        now[0] += seconds

    waited = runtime.wait_drained(BACKEND, SERVERS[0], timeout=1.0, interval=0.25, clock=lambda: now[0], sleep=sleep)
    assert waited == {"drained": False, "sessions": 1, "waited": 1.0}
    assert sleeps == [0.25] * 4  # five reads at 0, 0.25, 0.5, 0.75 and 1.0 (fake) seconds, no real waiting
    now[0], sleeps[:] = 0.0, []
    waited = runtime.wait_drained(BACKEND, SERVERS[0], timeout=0.6, interval=0.25, clock=lambda: now[0], sleep=sleep)
    assert sleeps == pytest.approx([0.25, 0.25, 0.1]) and waited["waited"] == 0.6  # the last sleep ends at the timeout, not after it
    thread.join(5)


# ------------------------------------------------------------------ errors


def test_unknown_server_and_backend(runtime, gateway):
    with pytest.raises(HaproxyRuntimeError) as error:
        runtime.set_state(BACKEND, "npu-fleet-demo-9", "drain")
    assert error.value.reason == "no_server" and (error.value.backend, error.value.server) == (BACKEND, "npu-fleet-demo-9")
    assert "server model_demo/npu-fleet-demo-9 is not in the running configuration of HAProxy at %s" % gateway.socket in str(error.value)
    with pytest.raises(HaproxyRuntimeError) as error:
        runtime.set_state("model_nope", SERVERS[0], "drain")
    assert error.value.reason == "no_backend" and "backend model_nope is not in the running configuration" in str(error.value)
    for call in (
        lambda: runtime.servers("model_nope"),
        lambda: runtime.show_stat("model_nope"),
        lambda: runtime.wait_drained("model_nope", "x", 1),
    ):
        with pytest.raises(HaproxyRuntimeError) as error:
            call()
        assert error.value.reason == "no_backend"
    with pytest.raises(HaproxyRuntimeError) as error:
        runtime.wait_drained(BACKEND, "npu-fleet-demo-9", 1)
    assert error.value.reason == "no_server"


def test_bad_state_and_names_never_reach_haproxy(runtime):
    with pytest.raises(HaproxyRuntimeError) as error:
        runtime.set_state(BACKEND, SERVERS[0], "stopped")
    assert error.value.reason == "bad_state" and "ready, drain, maint" in str(error.value)
    for backend, server in ((BACKEND, SERVERS[0] + "; shutdown frontend fe"), ("model_demo\nshow info", SERVERS[0]), (BACKEND, "")):
        with pytest.raises(HaproxyRuntimeError) as error:
            runtime.set_state(backend, server, "maint")
        assert error.value.reason == "bad_name"
    assert runtime.server(BACKEND, SERVERS[0])["admin_state"] == "ready"
    with pytest.raises(HaproxyRuntimeError):
        runtime.command("show info\nshow stat")


def test_a_socket_that_is_not_level_admin(gateway):
    operator = HaproxyRuntime(gateway.operator_socket)
    assert operator.servers(BACKEND)[0]["server"] == SERVERS[0]  # reading is allowed
    with pytest.raises(HaproxyRuntimeError) as error:
        operator.set_state(BACKEND, SERVERS[0], "drain")
    assert error.value.reason == "level" and "level admin" in str(error.value)


def test_unknown_command(runtime):
    with pytest.raises(HaproxyRuntimeError) as error:
        runtime.command("show everything")
    assert error.value.reason == "unknown_command"


def test_missing_socket_names_the_path_and_the_gateway_container(tmp_path):
    path = str(tmp_path / "admin.sock")
    with pytest.raises(HaproxyRuntimeError) as error:
        HaproxyRuntime(path).servers()
    assert error.value.reason == "no_socket" and error.value.socket_path == path
    assert str(error.value) == "HAProxy runtime socket %s does not exist: %s" % (path, GATEWAY_HINT)
    assert "docker ps --filter name=npu-fleet-gateway" in GATEWAY_HINT
    nowhere = str(tmp_path / "run" / "admin.sock")
    with pytest.raises(HaproxyRuntimeError) as error:
        HaproxyRuntime(nowhere).servers()
    assert "(nor does its directory %s)" % (tmp_path / "run") in str(error.value)


def test_plain_file_and_directory_are_not_sockets(tmp_path):
    plain = tmp_path / "admin.sock"
    plain.write_text("not a socket")
    with pytest.raises(HaproxyRuntimeError) as error:
        HaproxyRuntime(str(plain)).command("show info")
    assert error.value.reason == "not_socket" and "%s is a regular file, not a UNIX socket" % plain in str(error.value)
    with pytest.raises(HaproxyRuntimeError) as error:
        HaproxyRuntime(str(tmp_path)).command("show info")
    assert error.value.reason == "not_socket" and "is a directory" in str(error.value)


def test_stale_socket_and_silent_socket():
    directory = tempfile.mkdtemp(prefix="npu-hap-")
    try:
        stale = os.path.join(directory, "stale.sock")
        bound = socket.socket(socket.AF_UNIX)
        bound.bind(stale)  # what a killed HAProxy leaves behind: the file, nobody listening
        bound.close()
        with pytest.raises(HaproxyRuntimeError) as error:
            HaproxyRuntime(stale).command("show info")
        assert error.value.reason == "refused" and stale in str(error.value) and GATEWAY_HINT in str(error.value)
        silent = os.path.join(directory, "silent.sock")
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(silent)
        listener.listen(1)
        try:
            started = time.monotonic()
            with pytest.raises(HaproxyRuntimeError) as error:
                HaproxyRuntime(silent, timeout=0.3).command("show info")
            assert error.value.reason == "timeout" and "within 0.3s" in str(error.value)
            assert time.monotonic() - started < 2
        finally:
            listener.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_socket_path_too_long():
    with pytest.raises(HaproxyRuntimeError) as error:
        HaproxyRuntime("/" + "x" * 120).command("show info")
    assert error.value.reason == "path_too_long"


# ------------------------------------------------------------------ parsers


def test_admin_state_bits():
    assert [admin_state_of(bits) for bits in (0, 1, 2, 4, 5, 8, 16, 9, 32, 64)] == [
        "ready",
        "maint",
        "maint",
        "ready",  # CMAINT alone: disabled in the configuration, then set ready
        "maint",
        "drain",
        "drain",
        "maint",  # maintenance wins over drain
        "maint",  # DNS resolution failure
        "ready",  # HMAINT: FQDN set at run time
    ]
    assert [admin_state_of(status=text) for text in ("UP", "DRAIN 1/3", "MAINT (via b/s)", "DOWN", "no check", "NOLB")] == [
        "ready",
        "drain",
        "maint",
        "ready",
        "ready",
        "ready",
    ]


def test_parsers_reject_answers_that_are_not_tables():
    with pytest.raises(ValueError):
        parse_stat("No such proxy.\n\n")
    with pytest.raises(ValueError):
        parse_servers_state("Can't find backend.\n\n")
    with pytest.raises(ValueError):
        parse_servers_state("2\n# be_id be_name\n")
    assert parse_servers_state("1\n# be_id be_name srv_name\n3 model_x s0\n\n") == [{"be_id": "3", "be_name": "model_x", "srv_name": "s0"}]
    assert parse_stat("# pxname,svname,scur,\nb,s,1,\n\n") == [{"pxname": "b", "svname": "s", "scur": "1"}]


def test_a_server_is_found_in_its_backend_when_a_frontend_has_the_same_name(runtime):
    """The generated configuration names each model's frontend and backend alike; `show stat <name>` would answer
    for the frontend, which has no servers."""
    entry = runtime.server("model_cfg", "npu-fleet-cfg-0")
    assert entry["backend"] == "model_cfg" and entry["server"] == "npu-fleet-cfg-0"
    assert runtime.wait_drained("model_cfg", "npu-fleet-cfg-0", 1)["drained"] is True


# ------------------------------------------------------------------ a successor added at run time (surge)


@pytest.fixture
def successor_replica():
    """A third fake replica on its own port, as a surge successor on other chips of the same host."""
    server = _ReplicaServer(("127.0.0.1", 0), _Replica)
    server.replica_name = "successor"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _delete(runtime, backend, name):
    runtime.set_state(backend, name, "maint")
    assert runtime.wait_drained(backend, name, 10)["drained"]
    assert runtime.command("del server %s/%s" % (backend, name)).strip() == "Server deleted."


def test_a_successor_joins_next_to_its_server_after_its_check_and_takes_all_requests_once_that_one_drains(
    gateway, runtime, successor_replica
):
    port = successor_replica.server_address[1]
    added = runtime.add_successor(BACKEND, SERVERS[0], port, "inter 300ms fall 2 rise 2", timeout=10, interval=0.05)
    name = "%s:%d" % (SERVERS[0], port)
    try:
        assert added["name"] == name and added["added"] is True and added["up"] is True, added
        assert added["check_status"] == "L7OK" and added["waited"] > 0  # one check passed before it took traffic
        entry = runtime.server(BACKEND, name)
        assert entry["address"] == "127.0.0.1:%d" % port and entry["admin_state"] == "ready" and entry["status"] == "UP"
        assert "successor" in set(gateway.request("/s%d" % index)[1].split()[0] for index in range(6))
        # Adding it again changes nothing.
        again = runtime.add_successor(BACKEND, SERVERS[0], port, "inter 300ms fall 2 rise 2", timeout=10)
        assert again["added"] is False and again["up"] is True
        runtime.set_state(BACKEND, SERVERS[0], "drain")
        runtime.set_state(BACKEND, SERVERS[1], "drain")
        assert [gateway.request("/after%d" % index)[1].split()[0] for index in range(4)] == ["successor"] * 4
    finally:
        _delete(runtime, BACKEND, name)


def test_a_successor_that_fails_its_check_never_takes_a_request_and_is_deleted(gateway, runtime):
    port = free_port()
    added = runtime.add_successor(BACKEND, SERVERS[1], port, "inter 200ms fall 1 rise 2", timeout=1.5, interval=0.05)
    assert added["up"] is False and added["check_status"].startswith("L4") and added["waited"] >= 1.5, added
    assert "%s:%d" % (SERVERS[1], port) not in [entry["server"] for entry in runtime.servers(BACKEND)]
    assert all(gateway.request("/ok%d" % index)[0] == 200 for index in range(4))


def test_a_successor_of_an_unknown_server_or_backend_is_refused_by_name(runtime):
    with pytest.raises(HaproxyRuntimeError) as error:
        runtime.add_successor(BACKEND, "npu-fleet-demo-9", 18009, "inter 1000", timeout=1)
    assert error.value.reason == "no_server" and "npu-fleet-demo-9" in str(error.value)
    with pytest.raises(HaproxyRuntimeError) as error:
        runtime.add_successor("model_nope", SERVERS[0], 18009, "inter 1000", timeout=1)
    assert error.value.reason == "no_backend"
    with pytest.raises(HaproxyRuntimeError) as error:
        runtime.add_successor(BACKEND, SERVERS[0], 70000, "inter 1000", timeout=1)
    assert "not a TCP port" in str(error.value)
