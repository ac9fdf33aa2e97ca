"""The HAProxy gateway: its ports, and its configuration run by the real HAProxy in front of fake replicas."""

import hashlib
import http.client
import json
import random
import re
import socket
import time
import zlib

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._gateway import DEFAULTS, GatewayError, gateway_config, gateway_ports
from haproxy_harness import FakeReplica, HaproxyProcess, check_config, free_ports, haproxy_binary, request

JSON = {"Content-Type": "application/json"}
API_KEY = "sk-npu-fleet-test-key"
DIGEST = hashlib.sha256(("Bearer " + API_KEY).encode("utf-8")).hexdigest()
ODD_NAMES = ["qwen3-8b", "org/Qwen3.5-32B-Instruct", "llama.3/70b:q8", "org/模型.v2", "a_b", "a/b", "ünïcödé", 'quote"and\\slash']


def home(name, low, high):
    """Where a model's port probing starts."""
    return low + zlib.crc32(name.encode("utf-8")) % (high - low + 1)


def names_with_home(port, low, high, count, prefix="m"):
    found = []
    number = 0
    while len(found) < count:
        name = "%s%d" % (prefix, number)
        if home(name, low, high) == port:
            found.append(name)
        number += 1
    return found


def error_of(call, *args, **kwargs):
    with pytest.raises(GatewayError) as error:
        call(*args, **kwargs)
    return str(error.value)


def write_gateway(directory, models, replicas, options=None):
    """gateway_config's three files in ``directory`` (its config_dir): the path of haproxy.cfg and the result."""
    options = dict(options or {})
    options.setdefault("config_dir", str(directory))
    options.setdefault("runtime_socket", str(directory / "admin.sock"))
    result = gateway_config(models, replicas, options)
    (directory / "models.json").write_text(result["models_json"], encoding="utf-8")
    (directory / "models.map").write_text(result["model_map"], encoding="utf-8")
    path = directory / "haproxy.cfg"
    path.write_text(result["config"], encoding="utf-8")
    return path, result


def test_haproxy_is_installed():
    """Absent HAProxy is a failure with the install command, never a skip: CI installs it."""
    assert haproxy_binary()


# --- gateway_ports -------------------------------------------------------------------------------


def test_ports_come_from_the_name_and_do_not_change_between_runs():
    models = [{"name": "qwen3-8b"}, {"name": "llama-3-70b"}, {"name": "deepseek-r1"}]
    ports = gateway_ports(models)
    assert ports == gateway_ports([dict(model) for model in models])
    if len(set(home(name, 9000, 9499) for name in ports)) == 3:  # no collision: each at its home
        assert ports == dict((name, home(name, 9000, 9499)) for name in ports)
    assert all(9000 <= port <= 9499 for port in ports.values())


def test_ports_do_not_depend_on_the_catalogue_order():
    models = [{"name": name} for name in names_with_home(9002, 9000, 9009, 3)] + [{"name": "x%d" % n} for n in range(5)]
    expected = gateway_ports(models, (9000, 9009))
    for seed in range(5):
        shuffled = list(models)
        random.Random(seed).shuffle(shuffled)
        assert gateway_ports(shuffled, (9000, 9009)) == expected


def test_explicit_ports_are_kept_even_outside_the_range():
    ports = gateway_ports([{"name": "a", "gateway_port": 9123}, {"name": "b", "gateway_port": 12000}, {"name": "c", "gateway_port": None}])
    assert ports["a"] == 9123 and ports["b"] == 12000 and 9000 <= ports["c"] <= 9499


def test_collisions_probe_to_the_next_free_port_in_name_order():
    first, second, third = names_with_home(9002, 9000, 9009, 3)
    ports = gateway_ports([{"name": third}, {"name": second}, {"name": first}], (9000, 9009))
    assert [ports[first], ports[second], ports[third]] == [9002, 9003, 9004]


def test_probing_wraps_inside_the_range():
    first, second = names_with_home(9009, 9000, 9009, 2)
    ports = gateway_ports([{"name": first}, {"name": second}], (9000, 9009))
    assert ports == {first: 9009, second: 9000}


def test_a_derived_port_steps_past_explicit_and_reserved_ports():
    (name,) = names_with_home(9004, 9000, 9009, 1)
    ports = gateway_ports([{"name": name}, {"name": "pinned", "gateway_port": 9004}], (9000, 9009), reserved=(9005,))
    assert ports == {name: 9006, "pinned": 9004}


def test_two_models_asking_for_the_same_port_are_both_named():
    message = error_of(gateway_ports, [{"name": "qwen3-8b", "gateway_port": 9100}, {"name": "llama-70b", "gateway_port": 9100}])
    assert "qwen3-8b" in message and "llama-70b" in message and "9100" in message and "gateway_port" in message


def test_an_explicit_port_the_gateway_uses_itself_is_refused():
    message = error_of(gateway_ports, [{"name": "qwen3-8b", "gateway_port": 8000}], reserved=(8000, 8404))
    assert "qwen3-8b" in message and "8000" in message and "change gateway_port" in message


@pytest.mark.parametrize("port", [0, 65536, -1, "9100", 9100.0, True])
def test_an_explicit_port_that_is_no_tcp_port_is_refused(port):
    message = error_of(gateway_ports, [{"name": "qwen3-8b", "gateway_port": port}])
    assert "qwen3-8b" in message and "gateway_port" in message and "1-65535" in message


def test_a_full_range_names_the_model_and_the_variable():
    message = error_of(gateway_ports, [{"name": "a"}, {"name": "b"}, {"name": "c"}], (9000, 9002), reserved=(9001,))
    assert "npu_fleet_gateway_port_range" in message and "widen" in message
    assert "model c" in message  # a and b take the two ports left beside the reserved one


@pytest.mark.parametrize("port_range", [(9500, 9000), (0, 10), (9000,), "9000-9499", None, (9000, 70000)])
def test_a_bad_port_range_is_refused(port_range):
    assert "npu_fleet_gateway_port_range" in error_of(gateway_ports, [{"name": "a"}], port_range)


def test_a_model_listed_twice_is_refused():
    assert "qwen3-8b" in error_of(gateway_ports, [{"name": "qwen3-8b"}, {"name": "qwen3-8b", "gateway_port": 9001}])


# --- gateway_config: errors and text --------------------------------------------------------------


def fleet(models=3, replicas=2):
    entries = [{"name": "model-%d" % index, "max_model_len": 4096 * (index + 1)} for index in range(models)]
    placed = [
        {
            "model": entry["name"],
            "name": "npu-fleet-%s-%d" % (entry["name"], replica),
            "address": "10.0.0.%d" % (replica + 1),
            "port": 8000 + index,
        }
        for index, entry in enumerate(entries)
        for replica in range(replicas)
    ]
    return entries, placed


def test_a_replica_of_a_model_outside_the_catalogue_is_refused():
    models, replicas = fleet(1, 1)
    replicas.append({"model": "ghost", "name": "npu-fleet-ghost-0", "address": "10.0.0.9", "port": 8000})
    message = error_of(gateway_config, models, replicas)
    assert "npu-fleet-ghost-0" in message and "'ghost'" in message and "model-0" in message


@pytest.mark.parametrize("address", ["", "10.0.0.1 ", "10.0.0.0/8", None, "host'name"])
def test_a_replica_address_that_is_no_host_is_refused(address):
    models, replicas = fleet(1, 1)
    replicas[0]["address"] = address
    message = error_of(gateway_config, models, replicas)
    assert replicas[0]["name"] in message and "address" in message


def test_two_replicas_with_one_name_are_refused():
    models, replicas = fleet(2, 1)
    replicas[1]["name"] = replicas[0]["name"]
    assert replicas[0]["name"] in error_of(gateway_config, models, replicas)


@pytest.mark.parametrize("name", ["qwen 8b", "qwen\t8b", "qwen\n8b", "qwen#8b", "qwen\x00", "qwen\x85", "qwen\u20288b", ""])
def test_a_model_name_the_map_cannot_hold_is_refused(name):
    message = error_of(gateway_config, [{"name": name}], [])
    assert "name" in message and (json.dumps(name) in message or not name)


@pytest.mark.parametrize(
    "options, words",
    [
        ({"api_key_sha256": API_KEY}, ["api_key_sha256", "never the key itself"]),
        ({"router_port": 8404}, ["router_port", "stats_port"]),
        ({"routerport": 8000}, ["routerport"]),
        ({"max_body_bytes": 0}, ["max_body_bytes"]),
        ({"config_dir": "etc/haproxy"}, ["config_dir", "absolute"]),
        ({"config_dir": "/etc/my haproxy"}, ["config_dir"]),
        ({"runtime_socket": "/run/it's.sock"}, ["runtime_socket"]),
        ({"bind_address": "10.0.0.0/8"}, ["bind_address"]),
        ({"stats_port": 70000}, ["stats_port"]),
    ],
)
def test_bad_options_are_refused_by_name(options, words):
    message = error_of(gateway_config, [{"name": "m"}], [], options)
    assert all(word in message for word in words), message


def test_a_model_port_on_the_router_port_is_refused():
    assert "change gateway_port of m" in error_of(gateway_config, [{"name": "m", "gateway_port": 8000}], [])


def test_the_text_is_byte_identical_whatever_the_input_order():
    models, replicas = fleet(3, 2)
    expected = gateway_config(models, replicas, {"api_key_sha256": DIGEST})
    for seed in range(5):
        rng = random.Random(seed)
        shuffled_models, shuffled_replicas = list(models), list(replicas)
        rng.shuffle(shuffled_models)
        rng.shuffle(shuffled_replicas)
        assert gateway_config(shuffled_models, shuffled_replicas, {"api_key_sha256": DIGEST}) == expected
    assert expected["config"].startswith("# HAProxy gateway")
    assert "Generated by npu.fleet from the fleet plan: do not edit" in expected["config"].splitlines()[1]
    assert "127.0.0.1 only" in "\n".join(expected["config"].splitlines()[:8])


def test_names_are_made_safe_and_unique():
    models = [{"name": "a/b"}, {"name": "a_b"}, {"name": "a_b_2"}, {"name": "org/模型"}]
    replicas = [{"model": "org/模型", "name": "npu-fleet-模型-0", "address": "::1", "port": 8000}]
    result = gateway_config(models, replicas)
    assert result["backends"] == {"a/b": "model_a_b", "a_b": "model_a_b_2", "a_b_2": "model_a_b_2_2", "org/模型": "model_org___"}
    assert result["servers"] == [
        {"model": "org/模型", "backend": "model_org___", "server": "npu-fleet-__-0", "address": "::1", "port": 8000}
    ]
    assert "    server npu-fleet-__-0 [::1]:8000 check\n" in result["config"]
    assert result["config"].isascii()


def test_models_json_and_the_map():
    models, replicas = fleet(2, 1)
    models.append({"name": "idle"})
    result = gateway_config(models, replicas)
    assert json.loads(result["models_json"]) == {
        "object": "list",
        "data": [
            {"id": "idle", "object": "model", "owned_by": "npu.fleet"},
            {"id": "model-0", "object": "model", "owned_by": "npu.fleet", "max_model_len": 4096},
            {"id": "model-1", "object": "model", "owned_by": "npu.fleet", "max_model_len": 8192},
        ],
    }
    lines = [line for line in result["model_map"].splitlines() if not line.startswith("#")]
    assert lines == ["idle model_idle", "model-0 model_model-0", "model-1 model_model-1"]


def test_the_authorization_header_is_never_logged_and_the_digest_is_upper_case():
    config = gateway_config([{"name": "m"}], [], {"api_key_sha256": DIGEST.lower()})["config"]
    assert DIGEST.upper() in config and DIGEST.lower() not in config
    assert "capture" not in config and "%hr" not in config and "%hs" not in config
    assert [line for line in config.splitlines() if "(authorization)" in line.lower()] == [
        "    acl authorized req.fhdr(authorization),sha2(256),hex -m str %s" % DIGEST.upper()
    ]
    assert "authorized" not in gateway_config([{"name": "m"}], [])["config"]


def test_the_defaults_reach_the_text():
    config = gateway_config([{"name": "m"}], [])["config"]
    for line in (
        "    timeout http-request 15s",
        "    timeout server 600s",
        "    tune.bufsize %d" % (DEFAULTS["max_body_bytes"] + 16384),
        "    default-server inter 1000 fastinter 500 downinter 1000 fall 2 rise 2 init-addr libc,none",
        "    stats socket /var/run/haproxy/admin.sock mode 660 level admin expose-fd listeners",
        "    http-request return status 200 content-type application/json file /usr/local/etc/haproxy/models.json if models_list METH_GET",
        "    bind 0.0.0.0:8000",
        "    bind 0.0.0.0:8404",
    ):
        assert line + "\n" in config
    assert "user " not in config and "group " not in config and "daemon" not in config


# --- haproxy -c ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "models, replicas, options",
    [
        pytest.param([{"name": "qwen3-8b"}], [], {}, id="no-replicas"),
        pytest.param(*fleet(3, 2), {}, id="3-models-x-2-replicas"),
        pytest.param(*fleet(3, 2), {"api_key_sha256": DIGEST}, id="api-key"),
        pytest.param(
            [{"name": name, "max_model_len": 8192} for name in ODD_NAMES],
            [
                {"model": name, "name": "npu-fleet-%s-0" % name, "address": "10.1.0.%d" % index, "port": 8000}
                for index, name in enumerate(ODD_NAMES)
            ],
            {"api_key_sha256": DIGEST, "bind_address": "::", "max_body_bytes": 1024},
            id="odd-names-ipv6-small-buffer",
        ),
    ],
)
def test_haproxy_accepts_the_configuration(tmp_path, models, replicas, options):
    path = write_gateway(tmp_path, models, replicas, options)[0]
    output = check_config(path)
    assert "Configuration file is valid" in output
    assert "WARNING" not in output and "ALERT" not in output, output


# --- a running gateway ----------------------------------------------------------------------------

# The idle model's name has quotes and a backslash: the map finds it, the 503 JSON still parses.
MODEL_A, MODEL_B, MODEL_U, MODEL_IDLE = "qwen3-8b", "llama.3/70b", "org/模型.v2", 'idle/"quoted"\\model'


@pytest.fixture(scope="module")
def replicas():
    started = dict((name, FakeReplica(name)) for name in ("a0", "a1", "b0", "b1", "u0"))
    yield started
    for replica in started.values():
        replica.stop()


def start_gateway(directory, replicas, options=None):
    ports = free_ports(6)
    models = [
        {"name": MODEL_A, "gateway_port": ports[0], "max_model_len": 32768},
        {"name": MODEL_B, "gateway_port": ports[1]},
        {"name": MODEL_U, "gateway_port": ports[2]},
        {"name": MODEL_IDLE, "gateway_port": ports[3]},
    ]
    owners = {"a0": MODEL_A, "a1": MODEL_A, "b0": MODEL_B, "b1": MODEL_B, "u0": MODEL_U}
    placed = [{"model": owners[name], "name": name, "address": "127.0.0.1", "port": replica.port} for name, replica in replicas.items()]
    merged = {"bind_address": "127.0.0.1", "router_port": ports[4], "stats_port": ports[5]}
    merged.update(options or {})
    path, result = write_gateway(directory, models, placed, merged)
    process = HaproxyProcess(path, ports)
    process.ports = dict(result["ports"], router=ports[4], stats=ports[5])
    return process


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, replicas):
    process = start_gateway(tmp_path_factory.mktemp("gateway"), replicas)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def keyed_gateway(tmp_path_factory, replicas):
    process = start_gateway(tmp_path_factory.mktemp("keyed"), replicas, {"api_key_sha256": DIGEST})
    yield process
    process.stop()


def chat(port, model=None, headers=None, **fields):
    body = dict(fields, messages=[{"role": "user", "content": "hi"}])
    if model is not None:
        body["model"] = model
    status, unused_headers, data = request(port, "POST", "/v1/chat/completions", body, dict(JSON, **(headers or {})))
    return status, json.loads(data.decode("utf-8"))


def served_by(port, model, count):
    answers = [chat(port, model) for attempt in range(count)]
    assert all(answer[0] == 200 for answer in answers), answers
    return [answer[1]["backend"] for answer in answers]


def assert_openai_error(body, status_type="invalid_request_error"):
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == status_type
    return body["error"]["message"]


def test_a_model_port_balances_over_its_replicas(gateway):
    backends = served_by(gateway.ports[MODEL_A], MODEL_A, 8)
    assert set(backends) == {"a0", "a1"}
    assert abs(backends.count("a0") - backends.count("a1")) <= 2


def test_the_router_routes_by_the_model_field(gateway):
    router = gateway.ports["router"]
    assert set(served_by(router, MODEL_A, 6)) == {"a0", "a1"}
    assert set(served_by(router, MODEL_B, 6)) == {"b0", "b1"}


def test_the_model_field_after_50_kb_of_messages(gateway):
    # A nested "model" inside the messages must not be taken for the request's.
    messages = [{"role": "user", "content": "x" * 1000 + ' "model": "%s" ' % MODEL_B, "model": MODEL_B} for index in range(50)]
    body = '{"messages": %s, "model": %s}' % (json.dumps(messages), json.dumps(MODEL_A))
    assert len(body) > 50000
    status, unused_headers, data = request(gateway.ports["router"], "POST", "/v1/chat/completions", body, JSON)
    answer = json.loads(data.decode("utf-8"))
    assert status == 200 and answer["backend"] in ("a0", "a1") and answer["model"] == MODEL_A
    assert answer["received_bytes"] == len(body)


def test_a_unicode_model_name_routes_when_sent_as_utf_8(gateway):
    body = json.dumps({"model": MODEL_U, "messages": []}, ensure_ascii=False)
    status, unused_headers, data = request(gateway.ports["router"], "POST", "/v1/chat/completions", body, JSON)
    assert status == 200 and json.loads(data.decode("utf-8"))["backend"] == "u0"


def test_a_unicode_model_name_in_u_escapes_is_a_400_that_says_so(gateway):
    """HAProxy 2.6's json_query does not decode \\uXXXX past \\u00FF: pinned, so a fix shows here."""
    status, unused_headers, data = request(gateway.ports["router"], "POST", "/v1/chat/completions", json.dumps({"model": MODEL_U}), JSON)
    assert status == 400 and "UTF-8" in assert_openai_error(json.loads(data.decode("utf-8")))


@pytest.mark.parametrize("model", ["gpt-4o", 'qu"ote\\back', "{%s}", "模型-unknown"])
def test_an_unknown_model_is_a_404_naming_it(gateway, model):
    body = json.dumps({"model": model, "messages": []}, ensure_ascii=False)
    status, headers, data = request(gateway.ports["router"], "POST", "/v1/chat/completions", body, JSON)
    answer = json.loads(data.decode("utf-8"))
    assert status == 404 and headers["content-type"] == "application/json"
    assert "The model `%s` does not exist" % model in assert_openai_error(answer)
    assert answer["error"]["param"] == "model" and answer["error"]["code"] == "model_not_found"


def test_a_long_unknown_model_is_cut_in_the_answer(gateway):
    status, unused_headers, data = request(gateway.ports["router"], "POST", "/v1/chat/completions", {"model": "m" * 5000}, JSON)
    assert status == 404 and ("m" * 256 + "`") in assert_openai_error(json.loads(data.decode("utf-8")))


@pytest.mark.parametrize(
    "body",
    [b'{"messages": []}', b"not json", b'{"model": null}', b'{"model": ', b"", b'["model"]'],
    ids=["no-model", "not-json", "null", "truncated", "empty", "array"],
)
def test_a_body_without_a_model_is_a_400(gateway, body):
    status, unused_headers, data = request(gateway.ports["router"], "POST", "/v1/chat/completions", body, JSON)
    answer = json.loads(data.decode("utf-8"))
    assert status == 400 and answer["error"]["param"] == "model" and '"model"' in assert_openai_error(answer)


def raw_exchange(port, head, body_parts=(), timeout=5.0):
    """Send ``head`` and ``body_parts`` on a raw socket: the response's status line and body (by its Content-Length)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        for part in body_parts:
            sock.sendall(part)
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(65536)
        header, body = received.split(b"\r\n\r\n", 1)
        length = int(re.search(rb"(?im)^content-length: *(\d+)", header).group(1))
        while len(body) < length:
            body += sock.recv(65536)
        return header.split(b"\r\n")[0], body


def test_a_body_over_the_limit_is_a_413_before_it_is_sent(gateway):
    """Content-Length alone decides: the client does not have to send megabytes to learn."""
    started = time.monotonic()
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
    response = raw_exchange(gateway.ports["router"], head, [b'{"model": "qwen3-8b", "messages": "'])
    assert time.monotonic() - started < 2
    status_line, body = response
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    message = assert_openai_error(json.loads(body.decode("utf-8")))
    assert "262144" in message and "own gateway port" in message


def test_a_chunked_body_over_the_limit_is_a_413(gateway):
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    payload = ('{"model": "qwen3-8b", "messages": "%s"}' % ("x" * 270000)).encode("utf-8")
    status_line, body = raw_exchange(gateway.ports["router"], head, [b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)])
    assert status_line.startswith(b"HTTP/1.1 413 ") and "262144" in assert_openai_error(json.loads(body.decode("utf-8")))


def test_a_chunked_body_under_the_limit_routes(gateway):
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    payload = ('{"messages": "%s", "model": "qwen3-8b"}' % ("x" * 100000)).encode("utf-8")
    parts = [payload[:50000], payload[50000:]]
    status_line, body = raw_exchange(
        gateway.ports["router"], head, [b"%x\r\n%s\r\n" % (len(part), part) for part in parts] + [b"0\r\n\r\n"]
    )
    answer = json.loads(body.decode("utf-8"))
    assert status_line == b"HTTP/1.1 200 OK" and answer["backend"] in ("a0", "a1") and answer["received_bytes"] == len(payload)


def test_a_body_just_under_the_limit_still_routes(gateway):
    body = '{"messages": "%s", "model": "qwen3-8b"}' % ("x" * (262144 - 60))
    assert len(body) <= 262144
    status, unused_headers, data = request(gateway.ports["router"], "POST", "/v1/chat/completions", body, JSON)
    assert status == 200 and json.loads(data.decode("utf-8"))["received_bytes"] == len(body)


def test_a_model_port_takes_bodies_over_the_router_limit(gateway):
    body = json.dumps({"model": MODEL_A, "messages": "x" * 400000})
    status, unused_headers, data = request(gateway.ports[MODEL_A], "POST", "/v1/chat/completions", body, JSON)
    assert status == 200 and json.loads(data.decode("utf-8"))["received_bytes"] == len(body)


def test_v1_models_lists_the_models(gateway):
    status, headers, data = request(gateway.ports["router"], "GET", "/v1/models")
    assert status == 200 and headers["content-type"] == "application/json"
    listing = json.loads(data.decode("utf-8"))
    assert [item["id"] for item in listing["data"]] == sorted([MODEL_A, MODEL_B, MODEL_U, MODEL_IDLE])
    assert dict((item["id"], item.get("max_model_len")) for item in listing["data"])[MODEL_A] == 32768


def test_the_gateway_health(gateway):
    assert request(gateway.ports["router"], "GET", "/health")[0] == 200


def test_a_model_without_replicas_is_a_503_json_on_its_port_and_by_the_router(gateway):
    for port, model in ((gateway.ports[MODEL_IDLE], None), (gateway.ports["router"], MODEL_IDLE)):
        status, answer = chat(port, MODEL_IDLE if model else None)
        assert status == 503 and "No replica of model `%s` is ready" % MODEL_IDLE in assert_openai_error(answer, "server_error")


def read_stream(port, model):
    """Each SSE event with the seconds since the request was sent."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    started = time.monotonic()
    connection.request(
        "POST", "/v1/chat/completions", json.dumps({"model": model, "stream": True}, ensure_ascii=False).encode("utf-8"), JSON
    )
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Type") == "text/event-stream"
    events = []
    for line in response:
        if line.startswith(b"data: "):
            events.append((time.monotonic() - started, line[6:].strip()))
    connection.close()
    return events


@pytest.mark.parametrize("where", ["model-port", "router"])
def test_streaming_passes_through_as_it_is_generated(gateway, where):
    port = gateway.ports[MODEL_U] if where == "model-port" else gateway.ports["router"]
    events = read_stream(port, MODEL_U)
    assert [event[1] for event in events][-1] == b"[DONE]" and len(events) == 6
    # Five events 0.2 s apart: the first arrives long before the last is written.
    assert events[0][0] < 0.5 and events[-1][0] > 0.8


def test_a_replica_failing_its_health_check_leaves_the_rotation_and_comes_back(gateway, replicas):
    port = gateway.ports[MODEL_B]
    assert set(served_by(port, MODEL_B, 4)) == {"b0", "b1"}
    replicas["b0"].health_status = 503
    try:
        started = time.monotonic()
        while set(served_by(port, MODEL_B, 4)) != {"b1"}:
            assert time.monotonic() - started < 4, "b0 still in rotation 4 s after its /health turned 503"
            time.sleep(0.2)
        assert set(served_by(port, MODEL_B, 10)) == {"b1"}
        assert set(served_by(gateway.ports["router"], MODEL_B, 6)) == {"b1"}
    finally:
        replicas["b0"].health_status = 200
    started = time.monotonic()
    while "b0" not in served_by(port, MODEL_B, 4):
        assert time.monotonic() - started < 4, "b0 not back 4 s after its /health answers 200 again"
        time.sleep(0.2)


def test_metrics_and_stats_on_the_stats_port(gateway):
    status, headers, data = request(gateway.ports["stats"], "GET", "/metrics")
    text = data.decode("utf-8")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert "# TYPE haproxy_backend_active_servers gauge" in text
    assert 'haproxy_backend_active_servers{proxy="model_qwen3-8b"} 2' in text
    assert request(gateway.ports["stats"], "GET", "/stats")[0] == 200


def test_with_a_key_v1_models_needs_it(keyed_gateway):
    router = keyed_gateway.ports["router"]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}, {"Authorization": "bearer " + API_KEY}):
        status, unused_headers, data = request(router, "GET", "/v1/models", headers=headers)
        answer = json.loads(data.decode("utf-8"))
        assert status == 401 and answer["error"]["code"] == "invalid_api_key", headers
    status, unused_headers, data = request(router, "GET", "/v1/models", headers={"Authorization": "Bearer " + API_KEY})
    assert status == 200 and len(json.loads(data.decode("utf-8"))["data"]) == 4


def test_with_a_key_the_gateway_answers_only_with_it(keyed_gateway):
    router = keyed_gateway.ports["router"]
    assert chat(router, "gpt-4o")[0] == 401
    assert chat(router, None, {"Authorization": "Bearer wrong"})[0] == 401
    assert chat(router, "gpt-4o", {"Authorization": "Bearer " + API_KEY})[0] == 404
    # A known model goes to its replicas, which check the key themselves.
    status, answer = chat(router, MODEL_A)
    assert status == 200 and answer["backend"] in ("a0", "a1")
    assert request(router, "GET", "/health")[0] == 200
    assert API_KEY not in keyed_gateway.log() and "Bearer" not in keyed_gateway.log()
    assert "router" in keyed_gateway.log()  # requests are logged, their headers are not
