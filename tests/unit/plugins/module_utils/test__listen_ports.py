"""Listening ports from real ``ss -Hltn`` captures (tests/unit/fixtures/ss/SOURCES.md)."""

import os

import pytest

from ansible_collections.npu.fleet.plugins.module_utils._listen_ports import ListenPortsError, parse_ss_listening

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "ss")


def read(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return handle.read()


def test_ipv4_loopback_and_ipv6_wildcard_listeners():
    assert parse_ss_listening(read("ss-Hltn-iproute2-6.1.0-01.txt")) == [18080, 18123]


def test_a_single_wildcard_listener():
    assert parse_ss_listening(read("ss-Hltn-iproute2-6.1.0-02.txt")) == [2024]


def test_nothing_listening_is_an_empty_list():
    assert parse_ss_listening("") == []


def test_a_header_line_is_tolerated():
    text = "State Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n" + read("ss-Hltn-iproute2-6.1.0-02.txt")
    assert parse_ss_listening(text) == [2024]


def test_duplicates_across_addresses_count_once():
    text = read("ss-Hltn-iproute2-6.1.0-02.txt") + read("ss-Hltn-iproute2-6.1.0-02.txt").replace("0.0.0.0:2024", "[::]:2024")
    assert parse_ss_listening(text) == [2024]


@pytest.mark.parametrize(
    "line",
    [
        "ESTAB 0 0 10.0.0.1:22 10.0.0.2:50000",
        "LISTEN 0 128 0.0.0.0",
        "LISTEN 0 128 0.0.0.0:http 0.0.0.0:*",
        "garbage",
    ],
)
def test_garbled_lines_name_the_line(line):
    with pytest.raises(ListenPortsError) as error:
        parse_ss_listening(read("ss-Hltn-iproute2-6.1.0-02.txt") + line + "\n")
    assert "line 2" in str(error.value) and line in str(error.value)
