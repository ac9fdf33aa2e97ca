# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""The HAProxy gateway in front of a fleet's replicas: its ports and its haproxy.cfg.

Clients should not have to know which host and container serves a model, nor
follow replicas as the plan moves them. One HAProxy gives every model:

* its own port (``gateway_ports``), stable from run to run: the port comes
  from the model name (crc32 in a range), not from the catalogue order, so
  adding a model never moves another one's clients;
* a place behind the router port, which reads the OpenAI request's JSON
  ``model`` field and picks the model's backend, so one base URL serves them
  all, and answers ``GET /v1/models`` itself.

``gateway_config`` writes the whole configuration from the plan, so no role
templates HAProxy syntax of its own. The text is byte-identical for the same
inputs: the role compares it to decide whether HAProxy must reload.

HAProxy 2.6 traps decided here, once:

* ``json_query`` unescapes only ``\\u00XX``: a model name with other non-ASCII
  characters routes when the client sends it as UTF-8, not as ``\\u`` escapes
  (the 400 answer says so); each model's own port has no such limit;
* ``option http-buffer-request`` waits for the whole body (or a full buffer)
  before any rule runs, so an oversized body would hang until the request
  timeout: the router checks Content-Length first, then ``wait-for-body``;
* a model name from the client reaches the 404 answer only through the
  ``json`` converter, so quotes in it cannot break the JSON;
* the API key never reaches HAProxy: only the SHA-256 of the whole
  ``Authorization`` value, compared upper-case (the ``hex`` converter's case);
* no log format names a header, so the Authorization header is never logged.
"""

import json
import re
import zlib

__all__ = ["DEFAULTS", "GatewayError", "check_arguments", "gateway_config", "gateway_ports"]

DEFAULTS = {
    "router_port": 8000,
    "port_range": (9000, 9499),
    "bind_address": "0.0.0.0",
    "stats_port": 8404,
    # Where models.json and models.map are, inside the HAProxy container.
    "config_dir": "/usr/local/etc/haproxy",
    "runtime_socket": "/var/run/haproxy/admin.sock",
    # hex SHA-256 of the whole Authorization value, "Bearer <key>"; the key itself never comes here.
    "api_key_sha256": None,
    "check_interval_ms": 1000,
    "fall": 2,
    "rise": 2,
    "connect_timeout_s": 3,
    # A long generation streams for minutes: client and server timeouts.
    "request_timeout_s": 600,
    # A request's headers must arrive whole within this (slowloris), and so must a body the router reads.
    "http_request_timeout_s": 15,
    # The router reads the body to find the model: larger bodies go to the model's own port.
    "max_body_bytes": 262144,
    "maxconn": 4096,
}

# The role variable behind each option, for error messages.
_VARIABLE_PREFIX = "npu_fleet_gateway_"
_PORT_RANGE_VARIABLE = _VARIABLE_PREFIX + "port_range"
# Characters HAProxy accepts in proxy and server names.
_UNSAFE_RE = re.compile(r"[^A-Za-z0-9_.:-]")
_SHA256_RE = re.compile(r"^[0-9A-Fa-f]{64}$")
# Addresses (IPv4, IPv6, host names) and paths go into haproxy.cfg unquoted, paths also into sample arguments.
_ADDRESS_RE = re.compile(r"^[A-Za-z0-9_.:\-]+$|^\[[0-9A-Fa-f:.]+\]$")
_PATH_RE = re.compile(r"^/[A-Za-z0-9_.:/@+\-]*$")
# Headers plus HAProxy's rewrite reserve (tune.maxrewrite, 1024) next to the largest body the router reads.
_HEADER_ROOM = 16384
_MIN_BUFSIZE = 16384
# A model value longer than this is cut in the 404 answer.
_ECHO_BYTES = 256
# Stands for the model in the 404 message until the text is quoted for HAProxy.
_MODEL_SLOT = "@@MODEL@@"
# No header (%hr, %hs), no cookie (%CC, %CS): the Authorization header must never reach a log.
_LOG_FORMAT = "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %{+Q}r"


class GatewayError(ValueError):
    """A model, replica or option the gateway cannot serve; the message names it and the fix."""


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_port(port, what, fix):
    if not _is_int(port) or not 0 < port < 65536:
        raise GatewayError("%s: port %r is not a TCP port (1-65535); %s" % (what, port, fix))
    return port


def _port_range(port_range):
    try:
        low, high = port_range
    except (TypeError, ValueError):
        low = high = None
    if not (_is_int(low) and _is_int(high) and 0 < low <= high < 65536):
        raise GatewayError("%s must be two ports [low, high] with 1 <= low <= high <= 65535, got %r" % (_PORT_RANGE_VARIABLE, port_range))
    return low, high


def _model_names(models):
    """The names of ``models``, checked: strings, each once."""
    names = []
    for entry in models or []:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            raise GatewayError("gateway model %r has no name; every catalogue entry needs a non-empty name" % (entry,))
        if name in names:
            raise GatewayError("model %s is in the catalogue twice; keep one entry" % name)
        names.append(name)
    return names


def gateway_ports(models, port_range=(9000, 9499), reserved=()):
    """Model name -> its gateway port: an explicit ``gateway_port``, else one derived from the name.

    The derived port is ``low + crc32(name) % span``, probing upward (and
    wrapping inside the range) past ports already taken. Explicit ports are
    taken first and the rest go in name order, so the result depends neither
    on the catalogue order nor on other models' explicit ports being listed
    before or after. ``reserved`` are the gateway's own ports (router, stats).
    """
    low, high = _port_range(port_range)
    _model_names(models)
    reserved = set(reserved or ())
    ports, owner = {}, {}
    for entry in sorted(models or [], key=lambda item: item["name"]):
        name, port = entry["name"], entry.get("gateway_port")
        if port is None:
            continue
        _check_port(
            port, "model %s gateway_port" % name, "set gateway_port to a free port or remove it to get one from %s" % _PORT_RANGE_VARIABLE
        )
        if port in reserved:
            raise GatewayError(
                "model %s: gateway_port %d is a port the gateway itself uses (router or stats); change gateway_port of %s"
                % (name, port, name)
            )
        if port in owner:
            raise GatewayError(
                "models %s and %s both ask for gateway_port %d; change gateway_port of one of them" % (owner[port], name, port)
            )
        ports[name], owner[port] = port, name
    span = high - low + 1
    for entry in sorted(models or [], key=lambda item: item["name"]):
        name = entry["name"]
        if name in ports:
            continue
        start = zlib.crc32(name.encode("utf-8")) % span
        for step in range(span):
            port = low + (start + step) % span
            if port not in owner and port not in reserved:
                break
        else:
            raise GatewayError(
                "no free gateway port left for model %s in %s %d-%d (%d ports, taken by other models and the gateway): widen %s"
                % (name, _PORT_RANGE_VARIABLE, low, high, span, _PORT_RANGE_VARIABLE)
            )
        ports[name], owner[port] = port, name
    return dict((name, ports[name]) for name in sorted(ports))


def _options(options):
    merged = dict(DEFAULTS)
    for key, value in (options or {}).items():
        if key not in DEFAULTS:
            raise GatewayError("unknown gateway option %r; known options: %s" % (key, ", ".join(sorted(DEFAULTS))))
        if value is not None:
            merged[key] = value
    for key in ("router_port", "stats_port"):
        _check_port(merged[key], _VARIABLE_PREFIX + key, "set %s%s to a free port" % (_VARIABLE_PREFIX, key))
    if merged["router_port"] == merged["stats_port"]:
        raise GatewayError(
            "%srouter_port and %sstats_port are both %d; give them different ports"
            % (_VARIABLE_PREFIX, _VARIABLE_PREFIX, merged["router_port"])
        )
    merged["port_range"] = _port_range(merged["port_range"])
    for key in (
        "check_interval_ms",
        "fall",
        "rise",
        "connect_timeout_s",
        "request_timeout_s",
        "http_request_timeout_s",
        "max_body_bytes",
        "maxconn",
    ):
        if not _is_int(merged[key]) or merged[key] < 1:
            raise GatewayError("%s%s must be a positive integer, got %r" % (_VARIABLE_PREFIX, key, merged[key]))
    if not isinstance(merged["bind_address"], str) or not _ADDRESS_RE.match(merged["bind_address"]):
        raise GatewayError("%sbind_address %r is not an IP address or host name" % (_VARIABLE_PREFIX, merged["bind_address"]))
    for key in ("config_dir", "runtime_socket"):
        value = merged[key]
        if not isinstance(value, str) or not _PATH_RE.match(value):
            raise GatewayError(
                "%s%s must be an absolute path of letters, digits and . _ - : / @ + (haproxy.cfg takes it unquoted), got %r"
                % (_VARIABLE_PREFIX, key, value)
            )
    merged["config_dir"] = merged["config_dir"].rstrip("/") or "/"
    digest = merged["api_key_sha256"]
    if digest in ("", False):
        digest = None
    if digest is not None and not (isinstance(digest, str) and _SHA256_RE.match(digest)):
        raise GatewayError(
            "%sapi_key_sha256 must be the hex SHA-256 of the whole Authorization value 'Bearer <key>' (64 hex digits), "
            "never the key itself" % _VARIABLE_PREFIX
        )
    # HAProxy's hex converter writes upper-case: compare in its case.
    merged["api_key_sha256"] = digest.upper() if digest else None
    return merged


def _check_model(entry):
    name = entry["name"]
    for char in name:
        if char.isspace() or char == "#" or ord(char) < 32 or ord(char) == 127 or 0x80 <= ord(char) < 0xA0:
            raise GatewayError(
                "model name %s has %r: gateway model names cannot hold whitespace, control characters or '#' "
                "(models.map is whitespace separated); rename the model" % (json.dumps(name), char)
            )
    length = entry.get("max_model_len")
    if length is not None and (not _is_int(length) or length < 1):
        raise GatewayError("model %s: max_model_len must be a positive integer or unset, got %r" % (name, length))


def _unique_names(names, prefix):
    """``prefix`` + each name made safe for HAProxy, unique: ``_2``, ``_3``... on a collision, in sorted order."""
    result, used = {}, set()
    for name in sorted(names):
        base = prefix + _UNSAFE_RE.sub("_", name)
        candidate, number = base, 1
        while candidate in used:
            number += 1
            candidate = "%s_%d" % (base, number)
        used.add(candidate)
        result[name] = candidate
    return result


def _replicas(replicas, names):
    checked = []
    seen = set()
    for replica in replicas or []:
        model, name = replica.get("model"), replica.get("name")
        if model not in names:
            raise GatewayError(
                "replica %s serves model %r, which is not among the gateway's models (%s); re-run the plan with this catalogue"
                % (name, model, ", ".join(sorted(names)) or "none")
            )
        if not isinstance(name, str) or not name:
            raise GatewayError("a replica of model %s has no container name; the plan names every replica" % model)
        if name in seen:
            raise GatewayError("two replicas are named %s; container names must be unique across the fleet" % name)
        seen.add(name)
        address = replica.get("address")
        if not isinstance(address, str) or not _ADDRESS_RE.match(address):
            raise GatewayError("replica %s of model %s: address %r is not an IP address or host name" % (name, model, address))
        _check_port(replica.get("port"), "replica %s of model %s" % (name, model), "fix the port in the plan")
        checked.append({"model": model, "name": name, "address": address, "port": replica["port"]})
    return checked


def _endpoint(address, port):
    """``address:port``, with an IPv6 address in brackets."""
    if ":" in address and not address.startswith("["):
        address = "[%s]" % address
    return "%s:%d" % (address, port)


def _quoted(text):
    """``text`` as a single-quoted haproxy.cfg word: no escape and no ``$`` expansion inside."""
    if "'" in text or "\n" in text:
        raise ValueError("cannot single-quote %r" % text)
    return "'%s'" % text


def _error_json(status_type, message, param=None, code=None):
    """An OpenAI-style error body, ASCII and free of single quotes (so it single-quotes in haproxy.cfg)."""
    body = json.dumps({"error": {"message": message, "type": status_type, "param": param, "code": code}})
    return body.replace("'", "\\u0027")


def _json_reply(status, body, log_format=False):
    kind = "lf-string" if log_format else "string"
    return "return status %d content-type application/json %s %s" % (status, kind, _quoted(body))


def _router(merged, auth):
    """The router frontend: the gateway's own answers, then routing by the body's ``model``."""
    limit = merged["max_body_bytes"]
    config_dir = merged["config_dir"]
    unauthorized = _error_json(
        "invalid_request_error",
        "Incorrect or missing API key: send the header Authorization: Bearer <key>",
        code="invalid_api_key",
    )
    too_big = _error_json(
        "invalid_request_error",
        "The request body is larger than %d bytes, too large for the gateway to read its model field: "
        "send it to the model's own gateway port, which takes any size" % limit,
        code="request_too_large",
    )
    no_model = _error_json(
        "invalid_request_error",
        'The request body must be a JSON object with a string "model" field: the gateway routes by it '
        "(send a non-ASCII model name as UTF-8, not as \\u escapes). GET /v1/models lists the models.",
        param="model",
    )
    unknown = _error_json(
        "invalid_request_error",
        "The model `%s` does not exist on this gateway. GET /v1/models lists the models." % _MODEL_SLOT,
        param="model",
        code="model_not_found",
    )
    if "%" in unknown:
        raise ValueError("a literal %% in the 404 message would be read as a log-format tag")
    unknown = unknown.replace(_MODEL_SLOT, "%%[var(txn.model),bytes(0,%d),json(utf8s)]" % _ECHO_BYTES)
    lines = [
        "frontend router",
        "    bind %s" % _endpoint(merged["bind_address"], merged["router_port"]),
        "    # The gateway's own liveness, answered before any rule.",
        "    monitor-uri /health",
        "    acl models_list path /v1/models",
        "    acl known_model var(txn.backend) -m found",
    ]
    if auth:
        lines.append("    acl authorized req.fhdr(authorization),sha2(256),hex -m str %s" % merged["api_key_sha256"])
        lines.append("    http-request %s if models_list METH_GET !authorized" % _json_reply(401, unauthorized))
    lines += [
        "    http-request return status 200 content-type application/json file %s/models.json if models_list METH_GET" % config_dir,
        "    # Before waiting for the body: a body larger than the buffer would never arrive whole.",
        "    http-request %s if { req.hdr_val(content-length) gt %d }" % (_json_reply(413, too_big), limit),
        "    http-request wait-for-body time %ds" % merged["http_request_timeout_s"],
        "    # A chunked body (no Content-Length) over the limit fills the buffer past it.",
        "    http-request %s if { req.body_size gt %d }" % (_json_reply(413, too_big), limit),
        "    http-request set-var(txn.model) req.body,json_query('$.model')",
        "    http-request set-var(txn.backend) var(txn.model),map(%s/models.map) if { var(txn.model) -m found }" % config_dir,
    ]
    if auth:
        # A known model goes to its replicas, which check the key themselves; every answer of the gateway needs it here.
        lines.append("    http-request %s if !known_model !authorized" % _json_reply(401, unauthorized))
    lines += [
        "    http-request %s if !{ var(txn.model) -m found }" % _json_reply(400, no_model),
        "    http-request %s if !known_model" % _json_reply(404, unknown, log_format=True),
        "    use_backend %[var(txn.backend)] if known_model",
        "",
    ]
    return lines


def check_arguments(options=None):
    """The health-check timing of every replica server: the configuration's default-server line, and what a
    server added at run time gets (HAProxy 2.6 does not apply default-server to those)."""
    merged = dict(DEFAULTS)
    merged.update(options or {})
    inter = int(merged["check_interval_ms"])
    return "inter %d fastinter 500 downinter %d fall %d rise %d" % (inter, inter, int(merged["fall"]), int(merged["rise"]))


def _global_and_defaults(merged):
    bufsize = max(_MIN_BUFSIZE, merged["max_body_bytes"] + _HEADER_ROOM)
    timeouts = [
        "    timeout connect %ds" % merged["connect_timeout_s"],
        "    timeout client %ds" % merged["request_timeout_s"],
        "    timeout server %ds" % merged["request_timeout_s"],
        "    timeout http-request %ds" % merged["http_request_timeout_s"],
        "    timeout http-keep-alive %ds" % merged["http_request_timeout_s"],
    ]
    errors = [
        (502, "A replica of this model answered with an invalid response or closed the connection; retry"),
        (503, "No replica of this model is ready to serve; retry later"),
        (504, "A replica of this model did not answer in time"),
    ]
    lines = [
        "# HAProxy gateway of an npu.fleet LLM fleet, for HAProxy 2.6 or later.",
        "# Generated by npu.fleet from the fleet plan: do not edit, the next run overwrites it.",
        "# Router (OpenAI API, routes by the JSON body's model field): port %d." % merged["router_port"],
        "# Each model also answers on its own port (frontends below), whatever the body size.",
        "# Stats (/stats) and Prometheus metrics (/metrics): port %d, which the role publishes" % merged["stats_port"],
        "# on the host's 127.0.0.1 only.",
        "",
        "global",
        "    log stdout format raw local0",
        "    maxconn %d" % merged["maxconn"],
        "    stats socket %s mode 660 level admin expose-fd listeners" % merged["runtime_socket"],
        "    # The router reads a body of up to %d bytes to find its model." % merged["max_body_bytes"],
        "    tune.bufsize %d" % bufsize,
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    log-format %s" % _quoted(_LOG_FORMAT),
        "    option dontlognull",
        "    maxconn %d" % merged["maxconn"],
    ]
    lines += timeouts
    lines += [
        "    # Send each SSE token chunk at once: without it HAProxy holds small writes (MSG_MORE) until the stream ends.",
        "    option http-no-delay",
        "    option redispatch 1",
        "    retries 2",
        "    retry-on conn-failure empty-response",
        "    default-server %s init-addr libc,none" % check_arguments(merged),
    ]
    lines += [
        "    http-error status %d content-type application/json string %s" % (status, _quoted(_error_json("server_error", text)))
        for status, text in errors
    ]
    lines.append("")
    return lines


def _stats(merged):
    return [
        "frontend stats",
        "    # Published on the host's 127.0.0.1 only: the stats page shows every replica's address.",
        "    bind %s" % _endpoint(merged["bind_address"], merged["stats_port"]),
        "    http-request set-log-level silent",
        "    http-request use-service prometheus-exporter if { path /metrics }",
        "    stats enable",
        "    stats uri /stats",
        "    stats refresh 10s",
        "",
    ]


def gateway_config(models, replicas, options=None):
    """haproxy.cfg, models.json and models.map for ``models`` served by ``replicas``.

    ``models``: ``{name, gateway_port, max_model_len}`` (the last two
    optional); a model without replicas still gets its port and backend, which
    answer 503, so clients see "not ready" rather than "unknown". ``replicas``:
    ``{model, name, address, port}``, ``name`` being the container name.
    ``options``: see DEFAULTS. Returns ``config``, ``models_json``,
    ``model_map`` (texts to write), ``ports`` (model -> gateway port),
    ``backends`` (model -> backend name) and ``servers``.
    """
    merged = _options(options)
    names = _model_names(models)
    for entry in models or []:
        _check_model(entry)
    ports = gateway_ports(models, merged["port_range"], reserved=(merged["router_port"], merged["stats_port"]))
    checked = _replicas(replicas, set(names))
    backends = _unique_names(names, "model_")
    catalogue = dict((entry["name"], entry) for entry in models or [])

    servers = []
    for model in sorted(names):
        own = [replica for replica in checked if replica["model"] == model]
        server_names = _unique_names([replica["name"] for replica in own], "")
        for replica in sorted(own, key=lambda item: server_names[item["name"]]):
            servers.append(
                {
                    "model": model,
                    "backend": backends[model],
                    "server": server_names[replica["name"]],
                    "address": replica["address"],
                    "port": replica["port"],
                }
            )

    auth = merged["api_key_sha256"] is not None
    lines = _global_and_defaults(merged)
    lines += _router(merged, auth)
    lines += _stats(merged)
    for model in sorted(names):
        backend = backends[model]
        # json.dumps: the model name in ASCII, whatever characters it has.
        lines += [
            "# model %s" % json.dumps(model),
            "frontend %s" % backend,
            "    bind %s" % _endpoint(merged["bind_address"], ports[model]),
            "    default_backend %s" % backend,
            "",
            "backend %s" % backend,
            "    balance leastconn",
            "    option httpchk GET /health",
            "    http-check expect status 200",
            "    http-error status 503 content-type application/json string %s"
            % _quoted(_error_json("server_error", "No replica of model `%s` is ready to serve; retry later" % model)),
        ]
        lines += [
            "    server %s %s check" % (server["server"], _endpoint(server["address"], server["port"]))
            for server in servers
            if server["model"] == model
        ]
        lines.append("")

    data = []
    for model in sorted(names):
        item = {"id": model, "object": "model", "owned_by": "npu.fleet"}
        if catalogue[model].get("max_model_len") is not None:
            item["max_model_len"] = catalogue[model]["max_model_len"]
        data.append(item)
    model_map = ["# Generated by npu.fleet from the fleet plan: do not edit. Model name -> HAProxy backend."]
    model_map += ["%s %s" % (model, backends[model]) for model in sorted(names)]
    return {
        "config": "\n".join(lines).rstrip("\n") + "\n",
        "models_json": json.dumps({"object": "list", "data": data}) + "\n",
        "model_map": "\n".join(model_map) + "\n",
        "ports": ports,
        "backends": dict((model, backends[model]) for model in sorted(names)),
        "servers": servers,
    }
