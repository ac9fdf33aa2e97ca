# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""TCP ports a host already listens on, from ``ss -Hltn``.

The planner must never give a replica a host port something else holds:
``docker run -p PORT:8000`` would fail at start, after the plan looked fine.
Every listening address counts (0.0.0.0, ::, a single IP): a port bound on
one address still blocks Docker's wildcard binding.
"""

__all__ = ["ListenPortsError", "parse_ss_listening"]


class ListenPortsError(ValueError):
    """Output of ``ss -Hltn`` that cannot be read."""


def _port_of(local, line_number, line):
    """'127.0.0.1:18080', '[::]:22', '127.0.0.53%lo:53', '*:80' -> the port as an int."""
    address, sep, port = local.rpartition(":")
    if not sep or not address or not port.isdigit() or not 0 < int(port) < 65536:
        raise ListenPortsError("ss -Hltn line %d: no address:port in %r" % (line_number, line))
    return int(port)


def parse_ss_listening(text):
    """Sorted unique listening TCP ports in ``ss -Hltn`` output (no header line)."""
    ports = set()
    for line_number, line in enumerate(str(text).splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "State":
            continue  # a header, when -H was not honoured
        if len(fields) < 5 or fields[0] != "LISTEN":
            raise ListenPortsError("ss -Hltn line %d: expected 'LISTEN recv-q send-q local peer', got %r" % (line_number, line))
        ports.add(_port_of(fields[3], line_number, line))
    return sorted(ports)
