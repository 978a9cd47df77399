"""ipvsadm_py.acl: targets, names, entries, durations and the list rules."""

from __future__ import annotations

import pytest

from ipvsadm_py.acl import (Entry, Kind, entry_faults, format_duration, make_target,
                            parse_duration, parse_name, parse_network)


@pytest.mark.parametrize("target,name", [
    (make_target("10.0.0.100", "tcp", 80), "deny_tcp_10.0.0.100_80"),
    (make_target("10.0.0.100"), "deny_any_10.0.0.100"),
    (make_target("2001:db8:0::1", "sctp", 3868), "deny_sctp_2001:db8::1_3868"),
    (make_target("2001:db8::1"), "deny_any_2001:db8::1"),
])
def test_set_names_round_trip(target, name):
    assert target.name(Kind.DENY) == name
    assert parse_name(name) == (Kind.DENY, target)
    assert parse_name(name.replace("deny", "allow", 1)) == (Kind.ALLOW, target)


@pytest.mark.parametrize("name", ["blocked", "deny_x", "deny_tcp_10.0.0.1", "deny_icmp_1.2.3.4_5",
                                  "allow_any_nothere", "deny_tcp_10.0.0.1_0"])
def test_foreign_set_names_are_not_ours(name):
    assert parse_name(name) is None


@pytest.mark.parametrize("args,message", [
    (("10.0.0.300",), "not an IP address"),
    (("10.0.0.1", "tcp", None), "both protocol and port"),
    (("10.0.0.1", "icmp", 1), "protocol must be"),
    (("10.0.0.1", "tcp", 70000), "port must be 1-65535"),
    (("10.0.0.1", "udp", 0), "port must be 1-65535"),
])
def test_bad_targets(args, message):
    with pytest.raises(ValueError, match=message):
        make_target(*args)


def test_target_describe():
    assert make_target("10.0.0.1", "tcp", 80).describe() == "tcp 10.0.0.1:80"
    assert make_target("2001:db8::1", "udp", 53).describe() == "udp [2001:db8::1]:53"
    assert make_target("2001:db8::1").describe() == "2001:db8::1 (all ports)"


@pytest.mark.parametrize("text,prefix", [("203.0.113.7", 32), ("203.0.113.0/24", 24),
                                         ("2001:db8::/32", 32), ("::1", 128),
                                         (" 0.0.0.0/0 ", 0)])
def test_networks(text, prefix):
    assert parse_network(text).prefixlen == prefix


@pytest.mark.parametrize("text,message", [
    ("203.0.113.7/24", r"host bits set \(did you mean 203.0.113.0/24\?\)"),
    ("203.0.113.0/33", "not an address or prefix"),
    ("example.com", "not an address or prefix"),
    ("10.0.0.1-10.0.0.9", "not an address or prefix"),
])
def test_bad_networks(text, message):
    with pytest.raises(ValueError, match=message):
        parse_network(text)


@pytest.mark.parametrize("value,seconds", [(90, 90), ("90", 90), ("90s", 90), ("30m", 1800),
                                           ("1h", 3600), ("2d", 172800), ("1h30m", 5400)])
def test_durations(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", [0, -1, True, "1w", "h", "", "1.5h", 366 * 86400])
def test_bad_durations(value):
    with pytest.raises(ValueError):
        parse_duration(value)


def test_format_duration():
    assert [format_duration(s) for s in (0, 59, 3600, 5400, 90061)] == \
        ["0s", "59s", "1h", "1h30m", "1d1h1m1s"]


def test_entry_describe():
    assert Entry(parse_network("203.0.113.7")).describe() == "203.0.113.7"
    assert Entry(parse_network("2001:db8::/32"), 3600, 10).describe() == \
        "2001:db8::/32 timeout 1h expires 10s"


def _faults(target_addr: str, *texts: str) -> list[str]:
    return entry_faults(make_target(target_addr), [Entry(parse_network(t)) for t in texts])


def test_entry_faults():
    assert _faults("10.0.0.1", "203.0.113.0/24", "198.51.100.7", "203.0.114.0/24") == []
    assert _faults("10.0.0.1", "2001:db8::/32") == ["2001:db8::/32 is not IPv4 like 10.0.0.1"]
    assert _faults("10.0.0.1", "1.2.3.4", "1.2.3.4") == ["1.2.3.4 is listed twice"]
    assert _faults("10.0.0.1", "203.0.113.9", "203.0.113.0/24") == \
        ["203.0.113.9 overlaps 203.0.113.0/24"]
    assert _faults("2001:db8::1", "2001:db8::/32", "2001:db8:1::/48", "2001:db9::/32") == \
        ["2001:db8:1::/48 overlaps 2001:db8::/32"]
