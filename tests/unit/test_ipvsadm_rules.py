"""The rules both front ends share (ipvsadm_py.rules): fault codes, in the
order ipvsadm reports them."""

from __future__ import annotations

import pytest
from netaddr import IPAddress

from ipvsadm_py import rules
from ipvsadm_py.model import (AF_INET6, Dest, Forward, Protocol, SchedFlag, Service,
                              TunnelCsum, TunnelType)
from ipvsadm_py.rules import Code, Fault

CSUM, NOCSUM, REMCSUM = TunnelCsum.CSUM, TunnelCsum.NOCSUM, TunnelCsum.REMCSUM


def _codes(faults):
    return [f.code for f in faults]


@pytest.mark.parametrize("svc,codes", [
    (Service(port=0), [Code.ZERO_PORT]),
    (Service(port=0, persistent=True, timeout=360), []),
    (Service(fwmark=3, protocol=0), []),
    (Service(port=80, onepacket=True), [Code.ONEPACKET_NOT_UDP]),
    (Service(protocol=Protocol.UDP, port=53, onepacket=True), []),
    (Service(fwmark=3, protocol=0, onepacket=True), []),
    (Service(protocol=Protocol.UDP, port=53, synproxy=True), [Code.SYNPROXY_NOT_TCP]),
    (Service(port=0, onepacket=True, synproxy=True),
     [Code.ZERO_PORT, Code.ONEPACKET_NOT_UDP]),
])
def test_service_faults(svc, codes):
    assert _codes(rules.service_faults(svc)) == codes


@pytest.mark.parametrize("scheduler,words,flags,fault", [
    ("rr", ["flag-1", "flag-3"], {SchedFlag.FLAG_1, SchedFlag.FLAG_3}, None),
    ("sh", ["sh-port", "sh-fallback"], {SchedFlag.FLAG_1, SchedFlag.FLAG_2}, None),
    ("mh", ["mh-port"], {SchedFlag.FLAG_2}, None),
    ("rr", ["sh-port"], set(), Fault(Code.SCHED_FLAG_NEEDS, "sh-port", "sh")),
    ("sh", ["mh-fallback"], set(), Fault(Code.SCHED_FLAG_NEEDS, "mh-fallback", "mh")),
    ("rr", ["flag-1", "bogus"], {SchedFlag.FLAG_1}, Fault(Code.SCHED_FLAG_UNKNOWN, "bogus")),
])
def test_sched_flags(scheduler, words, flags, fault):
    assert rules.sched_flags(scheduler, words) == (flags, fault)


@pytest.mark.parametrize("tun_type,port,csums,faults", [
    (TunnelType.IPIP, False, [], []),
    (TunnelType.IPIP, True, [CSUM], [Fault(Code.TUN_PORT_ILLEGAL),
                                     Fault(Code.TUN_CSUM_ILLEGAL, "csum")]),
    (TunnelType.GUE, False, [], [Fault(Code.TUN_PORT_MISSING)]),
    (TunnelType.GUE, True, [REMCSUM], []),
    (TunnelType.GUE, True, [REMCSUM, CSUM], [Fault(Code.TUN_CSUM_CONFLICT, "remcsum", "csum")]),
    (TunnelType.GRE, False, [NOCSUM], []),
    (TunnelType.GRE, True, [REMCSUM], [Fault(Code.TUN_PORT_ILLEGAL),
                                       Fault(Code.TUN_CSUM_ILLEGAL, "remcsum")]),
    (TunnelType.GRE, False, [CSUM, REMCSUM], [Fault(Code.TUN_CSUM_ILLEGAL, "remcsum")]),
])
def test_tunnel_faults_in_ipvsadms_order(tun_type, port, csums, faults):
    """The port first, then the checksum modes in the order nocsum, csum,
    remcsum (ipvsadm's columns), whatever order they were given in."""
    assert rules.tunnel_faults(tun_type, port, csums) == faults


def test_real_server_family_and_tunnel_options():
    svc = Service(addr=IPAddress("10.0.0.1"), port=80)
    six = Dest(addr=IPAddress("2001:db8::1"), port=80, af=AF_INET6, forward=Forward.MASQ)
    assert _codes(rules.dest_faults(svc, six, tunnel_options=True)) == \
        [Code.FAMILY_MISMATCH, Code.TUNNEL_WITHOUT_TUNNELING]
    six.forward = Forward.TUNNEL
    assert rules.dest_faults(svc, six, tunnel_options=True) == []


@pytest.mark.parametrize("forward,fwmark,port", [
    (Forward.ROUTE, 0, 80), (Forward.TUNNEL, 0, 80), (Forward.MASQ, 0, None),
    (Forward.FULLNAT, 0, None), (Forward.ROUTE, 7, None),
])
def test_fixed_port(forward, fwmark, port):
    svc = Service(port=80, fwmark=fwmark)
    assert rules.fixed_port(svc, forward) == port


def test_local_addresses():
    svc = Service(addr=IPAddress("10.0.0.1"), port=80)
    assert rules.laddr_faults(svc, [bytes(4), IPAddress("2001:db8::3").packed]) == \
        [Fault(Code.LADDR_FAMILY, "2001:db8::3")]
    assert _codes(rules.laddr_faults(Service(fwmark=1, protocol=0), [bytes(4)])) == \
        [Code.LADDR_OF_FWMARK]
    fullnat = [Dest(addr=bytes(4), forward=Forward.FULLNAT)]
    assert _codes(rules.fullnat_faults(fullnat, has_laddrs=False)) == \
        [Code.FULLNAT_WITHOUT_LADDRS]
    assert rules.fullnat_faults(fullnat, has_laddrs=True) == []


@pytest.mark.parametrize("text,multicast", [
    ("224.0.0.81", True), ("239.255.255.255", True), ("223.255.255.255", False),
    ("240.0.0.1", False), ("ff02::1", True), ("fe80::1", False),
])
def test_is_multicast(text, multicast):
    assert rules.is_multicast(IPAddress(text).packed) == multicast


def test_limits_are_the_kernels():
    assert rules.LIMITS["sync_maxlen"] == (1, 65507)
    assert rules.in_range("weight", 2147483647) and not rules.in_range("weight", -1)
