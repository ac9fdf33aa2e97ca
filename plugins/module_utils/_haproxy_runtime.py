# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""The HAProxy runtime API of an npu.fleet gateway, spoken from the gateway host.

Each gateway container publishes HAProxy's ``stats socket ... level admin`` as a
UNIX socket in a host directory; the gateway image has no socat, so Python on the
host talks to that socket directly. A rolling update uses it to take one replica
out of every gateway before its container stops: the server goes to DRAIN (no new
requests, in-flight ones finish), the caller waits until its sessions reach 0, and
the server goes back to READY once the replacement passed its probe.

What HAProxy 2.6 does here, checked against the real binary (tests/unit/plugins/
module_utils/test__haproxy_runtime.py), and why the code reads it the way it does:

* one command per connection: HAProxy answers and closes (non-interactive mode),
  so reading to EOF is the whole answer; a success of ``set server ... state`` is
  an empty answer, an error is one line (``No such server.``);
* an empty answer does not prove the state changed: ``state ready`` on a server
  whose maintenance is inherited from a tracked server (``MAINT (via b/s)``) is
  accepted and changes nothing, so callers read the state back;
* the admin state comes from ``show servers state``'s ``srv_admin_state`` bits, not
  from ``show stat``'s ``status`` column, which mixes in health (``DRAIN 1/3``,
  ``MAINT (via ...)``, ``no check``); bit 0x04 (CMAINT) only records that the
  configuration said ``disabled`` and stays set after ``state ready``, so it is not
  maintenance (HAProxy's own SRV_ADMF_MAINT mask is 0x23);
* ``scur`` counts the streams (requests in progress) on the server, not TCP
  connections: an idle keep-alive client or an idle pooled server connection counts
  0, a slow or streaming request counts 1 until its last byte, and health checks
  never count. A drained server is one with ``scur`` and ``qcur`` both 0.
"""

import csv
import errno
import io
import os
import re
import socket
import stat
import time

__all__ = [
    "ADMIN_STATES",
    "DEFAULT_SOCKET",
    "GATEWAY_HINT",
    "HaproxyRuntime",
    "HaproxyRuntimeError",
    "admin_state_of",
    "parse_servers_state",
    "parse_stat",
]

# Where the gateway role publishes the container's /var/run/haproxy/admin.sock on the host.
DEFAULT_SOCKET = "/var/lib/npu-fleet/gateway/run/admin.sock"
GATEWAY_HINT = "is the npu.fleet gateway container running? (docker ps --filter name=npu-fleet-gateway)"
ADMIN_STATES = ("ready", "drain", "maint")

# srv_admin_state bits (HAProxy include/haproxy/server-t.h, enum srv_admin).
_FMAINT, _IMAINT, _CMAINT, _FDRAIN, _IDRAIN, _RMAINT = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_MAINT_BITS = _FMAINT | _IMAINT | _RMAINT
_DRAIN_BITS = _FDRAIN | _IDRAIN
# srv_op_state values.
_OP_STATES = {0: "stopped", 1: "starting", 2: "running", 3: "stopping"}
# What HAProxy accepts in proxy and server names; anything else (spaces, ';', newlines) would
# split or inject runtime commands, so it is refused before it reaches the socket.
_NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")
# check_status of a passed health check (HTTP, TLS or TCP layer).
_CHECK_PASSED = ("L7OK", "L6OK", "L4OK")
# Answers any command may get instead of its output.
_GLOBAL_ERRORS = ("Unknown command", "Permission denied")
# A UNIX socket path holds at most 107 bytes on Linux (sun_path is 108 with the NUL).
_MAX_SOCKET_PATH = 107


class HaproxyRuntimeError(Exception):
    """The runtime API could not be reached or refused a command; the message names the socket, the server and the fix."""

    def __init__(self, message, socket_path=None, backend=None, server=None, reason="error"):
        super(HaproxyRuntimeError, self).__init__(message)
        self.socket_path = socket_path
        self.backend = backend
        self.server = server
        # no_socket, not_socket, refused, permission, timeout, path_too_long, no_backend, no_server,
        # bad_name, bad_state, level, unknown_command, answer, error
        self.reason = reason


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def parse_stat(text):
    """``show stat`` CSV as a list of dicts (all values strings, as HAProxy prints them).

    The header is the first line, prefixed with ``# ``; the answer ends with an empty line.
    """
    if not text.startswith("# "):
        first = text.strip().splitlines()[0] if text.strip() else "(empty answer)"
        raise ValueError("show stat did not answer with a CSV header: %r" % first[:200])
    lines = [line for line in text[2:].splitlines() if line.strip()]
    rows = []
    for row in csv.DictReader(io.StringIO("\n".join(lines) + "\n")):
        # The header ends with a comma, so csv sees one more (empty) column name.
        row.pop("", None)
        rows.append(row)
    return rows


def parse_servers_state(text):
    """``show servers state`` as a list of dicts keyed by its header (``be_name``, ``srv_name``, ``srv_admin_state``...).

    The answer is a format version line (``1``), a ``# `` header, then one space-separated line per server.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2 or not lines[1].startswith("# "):
        first = lines[0] if lines else "(empty answer)"
        raise ValueError("show servers state did not answer with a version line and a header: %r" % first[:200])
    if lines[0].strip() != "1":
        raise ValueError("show servers state answered format version %r; only version 1 is known" % lines[0].strip())
    header = lines[1][2:].split()
    rows = []
    for line in lines[2:]:
        values = line.split()
        rows.append(dict(zip(header, values)))
    return rows


def admin_state_of(admin_bits=None, status=None):
    """``maint``, ``drain`` or ``ready`` from ``srv_admin_state`` bits, else from the ``show stat`` status word.

    Maintenance wins over drain, as in HAProxy: a server both forced to drain and in
    maintenance takes no traffic at all. CMAINT alone (``disabled`` in the
    configuration, then set ready at run time) is ready.
    """
    if admin_bits is not None:
        bits = _int(admin_bits)
        if bits & _MAINT_BITS:
            return "maint"
        if bits & _DRAIN_BITS:
            return "drain"
        return "ready"
    word = (status or "").split(" ", 1)[0].upper()
    if word == "MAINT":
        return "maint"
    if word == "DRAIN":
        return "drain"
    return "ready"


def _status_word(status):
    """``UP``, ``DOWN``, ``MAINT``, ``DRAIN``, ``NOLB`` or ``no check`` from ``UP 1/3``, ``MAINT (via b/s)``..."""
    status = (status or "").strip()
    if status.startswith("no check"):
        return "no check"
    return status.split(" ", 1)[0]


def _check_name(kind, name):
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise HaproxyRuntimeError(
            "%s name %r is not a valid HAProxy name (letters, digits, '_', '.', ':', '-')" % (kind, name),
            reason="bad_name",
        )


class HaproxyRuntime(object):
    """One HAProxy runtime API socket; every command opens its own connection."""

    def __init__(self, socket_path, timeout=5.0):
        self.socket_path = socket_path
        self.timeout = float(timeout)

    # ------------------------------------------------------------------ transport

    def _error(self, message, reason, backend=None, server=None):
        return HaproxyRuntimeError(message, socket_path=self.socket_path, backend=backend, server=server, reason=reason)

    def _connect_error(self, error):
        """Why a connect failed, told apart from the path itself: missing, not a socket, stale, forbidden."""
        path = self.socket_path
        code = getattr(error, "errno", None)
        if code in (errno.ENOENT, errno.ENOTDIR):
            parent = os.path.dirname(path) or "."
            where = "" if os.path.isdir(parent) else " (nor does its directory %s)" % parent
            return self._error("HAProxy runtime socket %s does not exist%s: %s" % (path, where, GATEWAY_HINT), "no_socket")
        if code in (errno.EACCES, errno.EPERM):
            return self._error(
                "permission denied on HAProxy runtime socket %s: run the task with become: true, or as a member of the "
                "socket's group (the gateway creates it mode 660)" % path,
                "permission",
            )
        if code == errno.ECONNREFUSED:
            try:
                mode = os.stat(path).st_mode
            except OSError:
                mode = None
            if mode is not None and not stat.S_ISSOCK(mode):
                kind = "a directory" if stat.S_ISDIR(mode) else "a regular file" if stat.S_ISREG(mode) else "not a socket"
                return self._error(
                    "%s is %s, not a UNIX socket: give the host path of the gateway's HAProxy runtime socket "
                    "(default %s)" % (path, kind, DEFAULT_SOCKET),
                    "not_socket",
                )
            return self._error(
                "nothing listens on HAProxy runtime socket %s (connection refused; a stale socket of a stopped gateway?): %s"
                % (path, GATEWAY_HINT),
                "refused",
            )
        if isinstance(error, socket.timeout):
            return self._error(
                "HAProxy runtime socket %s did not accept a connection within %gs: %s" % (path, self.timeout, GATEWAY_HINT), "timeout"
            )
        return self._error("cannot connect to HAProxy runtime socket %s: %s" % (path, error), "error")

    def command(self, text):
        """Send one runtime command, return HAProxy's whole answer (it closes the connection after it)."""
        if "\n" in text or "\r" in text:
            raise self._error("one runtime command at a time, without newlines: %r" % text, "bad_name")
        if len(self.socket_path.encode("utf-8")) > _MAX_SOCKET_PATH:
            raise self._error(
                "HAProxy runtime socket path %s is longer than the %d bytes a UNIX socket path may have"
                % (self.socket_path, _MAX_SOCKET_PATH),
                "path_too_long",
            )
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.socket_path)
            except (OSError, socket.timeout) as error:
                raise self._connect_error(error)
            chunks = []
            try:
                sock.sendall((text + "\n").encode("utf-8"))
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
            except socket.timeout:
                raise self._error(
                    "HAProxy at %s did not finish answering %r within %gs (raise timeout?)" % (self.socket_path, text, self.timeout),
                    "timeout",
                )
            except OSError as error:
                raise self._error("HAProxy runtime socket %s failed during %r: %s" % (self.socket_path, text, error), "error")
        finally:
            sock.close()
        answer = b"".join(chunks).decode("utf-8", "replace")
        stripped = answer.strip()
        if stripped.startswith("Permission denied"):
            raise self._error(
                "HAProxy at %s answered 'Permission denied' to %r: that socket is not level admin; the gateway's "
                "'stats socket' line needs 'level admin'" % (self.socket_path, text),
                "level",
            )
        if stripped.startswith("Unknown command"):
            raise self._error(
                "HAProxy at %s does not know the command %r (HAProxy older than 2.0?)" % (self.socket_path, text),
                "unknown_command",
            )
        return answer

    # ------------------------------------------------------------------ reading

    def show_stat(self, backend=None):
        """``show stat`` rows (frontends, backends, servers; values as strings); with ``backend`` only its servers."""
        if backend is None:
            text = self.command("show stat")
        else:
            _check_name("backend", backend)
            text = self.command("show stat %s 4 -1" % backend)
            if text.strip().startswith("No such proxy"):
                raise self._no_backend(backend)
        try:
            return parse_stat(text)
        except ValueError as error:
            raise self._error("HAProxy at %s: %s" % (self.socket_path, error), "answer", backend=backend)

    def show_servers_state(self, backend=None):
        """``show servers state`` rows (``be_name``, ``srv_name``, ``srv_op_state``, ``srv_admin_state``...)."""
        if backend is None:
            text = self.command("show servers state")
        else:
            _check_name("backend", backend)
            text = self.command("show servers state %s" % backend)
            if text.strip().startswith("Can't find backend"):
                raise self._no_backend(backend)
        try:
            return parse_servers_state(text)
        except ValueError as error:
            raise self._error("HAProxy at %s: %s" % (self.socket_path, error), "answer", backend=backend)

    def _no_backend(self, backend):
        return self._error(
            "backend %s is not in the running configuration of HAProxy at %s (not reloaded yet, or removed?)" % (backend, self.socket_path),
            "no_backend",
            backend=backend,
        )

    def _no_server(self, backend, server):
        return self._error(
            "server %s/%s is not in the running configuration of HAProxy at %s (not reloaded yet, or removed?)"
            % (backend, server, self.socket_path),
            "no_server",
            backend=backend,
            server=server,
        )

    def servers(self, backend=None):
        """Every server (of ``backend``, or of all backends) with its health, admin state and current sessions.

        Each: ``backend``, ``server``, ``status`` (``UP``, ``DOWN``, ``MAINT``, ``DRAIN``, ``NOLB``, ``no check``),
        ``status_text`` (as HAProxy prints it: ``UP 1/3``, ``MAINT (via b/s)``), ``admin_state`` (``ready``,
        ``drain``, ``maint``), ``op_state`` (``running``, ``stopped``...), ``sessions`` (``scur``), ``queued``
        (``qcur``), ``weight``, ``check_status`` and ``address``.
        """
        rows = self.show_stat(backend)
        states = {}
        for row in self.show_servers_state(backend):
            states[(row.get("be_name"), row.get("srv_name"))] = row
        result = []
        for row in rows:
            if row.get("type") != "2":
                continue
            key = (row.get("pxname"), row.get("svname"))
            state = states.get(key)
            result.append(
                {
                    "backend": key[0],
                    "server": key[1],
                    "status": _status_word(row.get("status")),
                    "status_text": row.get("status") or "",
                    # Read apart, a reload between the two reads may leave a server without its state row.
                    "admin_state": admin_state_of(state.get("srv_admin_state") if state else None, row.get("status")),
                    "op_state": _OP_STATES.get(_int(state.get("srv_op_state")), "unknown") if state else "unknown",
                    "sessions": _int(row.get("scur")),
                    "queued": _int(row.get("qcur")),
                    "weight": _int(row.get("weight")),
                    "check_status": row.get("check_status") or "",
                    "address": row.get("addr") or "",
                }
            )
        return result

    def server(self, backend, server):
        """One server's entry of :meth:`servers`; HaproxyRuntimeError (``no_server``) when it is not configured."""
        _check_name("server", server)
        _check_name("backend", backend)
        # All servers, not `show stat <name>`: a frontend of the same name as the backend would answer instead.
        entries = self.servers()
        for entry in entries:
            if entry["backend"] == backend and entry["server"] == server:
                return entry
        if backend not in set(entry["backend"] for entry in entries):
            raise self._no_backend(backend)
        raise self._no_server(backend, server)

    # ------------------------------------------------------------------ changing

    def set_state(self, backend, server, state):
        """``set server <backend>/<server> state <state>``; ``state`` is ready, drain or maint.

        HAProxy answers nothing on success. It also answers nothing when the state cannot
        change (maintenance inherited from a tracked server): read it back to be sure.
        """
        if state not in ADMIN_STATES:
            raise self._error("state must be one of %s, got %r" % (", ".join(ADMIN_STATES), state), "bad_state", backend, server)
        _check_name("backend", backend)
        _check_name("server", server)
        text = "set server %s/%s state %s" % (backend, server, state)
        answer = self.command(text).strip()
        if not answer:
            return
        if answer.startswith("No such backend"):
            raise self._no_backend(backend)
        if answer.startswith("No such server"):
            raise self._no_server(backend, server)
        raise self._error("HAProxy at %s refused %r: %s" % (self.socket_path, text, answer), "answer", backend, server)

    def wait_drained(self, backend, server, timeout, interval=0.2, clock=time.monotonic, sleep=time.sleep):
        """Wait until no request is in progress on (or queued for) the server, or ``timeout`` seconds passed.

        Returns ``{drained, sessions, waited}``: ``sessions`` is ``scur + qcur`` at the last
        read, ``waited`` the seconds since the call. A timeout is not an error - the caller
        decides whether to stop a container that still serves. The server should be in
        DRAIN or MAINT first, or new requests keep arriving.
        """
        start = clock()
        while True:
            entry = self.server(backend, server)
            sessions = entry["sessions"] + entry["queued"]
            waited = clock() - start
            if sessions == 0:
                return {"drained": True, "sessions": 0, "waited": round(waited, 3)}
            if waited >= timeout:
                return {"drained": False, "sessions": sessions, "waited": round(waited, 3)}
            sleep(max(0.0, min(interval, timeout - waited)))

    # ------------------------------------------------------------------ successors (surge)

    def add_successor(self, backend, server, port, check_args, timeout, interval=0.2, clock=time.monotonic, sleep=time.sleep):
        """Put ``<server>:<port>`` in ``backend`` once its health check passed: the successor of ``server``.

        A surge replacement starts the new container on other chips and another port while the old one still
        serves; the gateway must send to both until the old one is drained. HAProxy 2.6 adds a server at run
        time (``add server``, no reload) in maintenance with health checks off; ``check_args`` are the
        configuration's check timings (default-server does not apply to such a server). Checks run in
        maintenance too, so the server takes traffic (``enable server``) only after a check passed: enabled at
        once it would count as UP before any check. One that does not pass within ``timeout`` seconds is deleted
        again, never having taken a request. The address is ``server``'s (the gateways reach a host the same
        way for every port). The next reload of the gateway replaces it with the configured server.

        Returns ``{name, added, up, check_status, waited}``; an existing successor of that name is not added twice.
        """
        _check_name("backend", backend)
        _check_name("server", server)
        port = int(port)
        if not 0 < port < 65536:
            raise self._error("port %r of the successor of %s/%s is not a TCP port" % (port, backend, server), "bad_name", backend, server)
        name = "%s:%d" % (server, port)
        current = dict(((entry["backend"], entry["server"]), entry) for entry in self.servers())
        added = (backend, name) not in current
        if added:
            entry = current.get((backend, server))
            if entry is None:
                if backend not in set(key[0] for key in current):
                    raise self._no_backend(backend)
                raise self._no_server(backend, server)
            host, _sep, old_port = entry["address"].rpartition(":")
            if not host or not old_port.isdigit():
                raise self._error(
                    "server %s/%s has no address to put its successor next to (HAProxy shows %r); reload the gateway"
                    % (backend, server, entry["address"]),
                    "answer",
                    backend,
                    server,
                )
            self._expect(
                "add server %s/%s %s:%d check %s" % (backend, name, host, port, check_args), "New server registered.", backend, name
            )
            self._expect("enable health %s/%s" % (backend, name), "", backend, name)
        start = clock()
        while True:
            entry = self.server(backend, name)
            waited = round(clock() - start, 3)
            # In maintenance the operational state stays "stopped"; the last check's result is what counts.
            if entry["check_status"].startswith(_CHECK_PASSED):
                self.set_state(backend, name, "ready")
                return {"name": name, "added": added, "up": True, "check_status": entry["check_status"], "waited": waited}
            if waited >= timeout:
                if entry["admin_state"] == "maint":
                    self._expect("del server %s/%s" % (backend, name), "Server deleted.", backend, name)
                return {"name": name, "added": added, "up": False, "check_status": entry["check_status"], "waited": waited}
            sleep(max(0.0, min(interval, timeout - waited)))

    def _expect(self, text, wanted, backend, server):
        answer = self.command(text).strip()
        if answer != wanted:
            raise self._error("HAProxy at %s refused %r: %s" % (self.socket_path, text, answer or "(no answer)"), "answer", backend, server)
