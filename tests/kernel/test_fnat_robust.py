"""FULLNAT against races with the configuration and hostile input.

::

    client --------- lb ------------------- rs1 rs2
    routes: VIPs     VIP on vip0           routes: local-address subnets
    only; raw        LADDRs 10.0.3.1-2,    only (no way back to the client)
    sockets spoof    2001:db8:3::1-2
    its own tuples

The same lab as test_fnat.py.  Crafted segments come from raw sockets of
the client's namespace (a third party that knows the client's address and
port); the configuration changes come from ipvsadm-py in the balancer.
"""

from __future__ import annotations

import errno
import json
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from netaddr import IPAddress

from ipvsadm_py import Dest, LocalAddress, Service
from ipvsadm_py import wire
from ipvsadm_py.errors import InvalidInput, KernelRefused
from tools import netlab, whoami
from tools.guest_init import kernel_log_problems
from tools.netlab import Capture

from tests.kernel import fnat_support as fs
from tests.kernel.test_fnat import LADDRS, PORT, Lab, fnat_topo, toa_off  # noqa: F401

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]
SLOW_PORT = 8000
ECHO_PORT = 8001


def _lport_range(topo, low: int, high: int) -> None:
    topo.sysctl(topo.lb, net__ipv4__vs__fullnat_lport_min=low,
                net__ipv4__vs__fullnat_lport_max=high)


@pytest.fixture(params=[4, 6], ids=["ipv4", "ipv6"])
def lab(request, fnat_topo):
    the_lab = Lab(fnat_topo, request.param, rs_count=1)
    yield the_lab
    the_lab.close()
    _lport_range(fnat_topo, 5000, 65535)


def _rs_service(lab: Lab, port: int, server_cls):
    """A FULLNAT service VIP:port -> rs1:port served by ``server_cls``."""
    svc = lab.service(wire.IPPROTO_TCP, port)
    lab.ipvs.add_dest(svc, Dest(addr=IPAddress(netlab.rs_addr(1, lab.family)), port=port,
                                af=svc.af, forward=wire.FWD_FULLNAT, weight=1))
    server = server_cls(whoami.listen(lab.topo.inside, lab.topo.rs(1), lab.family,
                                      socket.SOCK_STREAM, port))
    lab.servers.append(server)
    return svc


# ------------------------------------------------ method changed under load

TOGGLER = """
import sys, time
from netaddr import IPAddress
from ipvsadm_py import IPVS, Dest, Service, wire
svc = Service(protocol=int(sys.argv[5]), addr=IPAddress(sys.argv[1]), port=int(sys.argv[2]))
dest = Dest(addr=IPAddress(sys.argv[3]), port=int(sys.argv[2]), weight=1)
end, n = time.monotonic() + float(sys.argv[4]), 0
with IPVS() as ipvs:
    while time.monotonic() < end:
        for fwd in (wire.FWD_MASQ, wire.FWD_FULLNAT):
            dest.forward = fwd
            ipvs.edit_dest(svc, dest)
            n += 1
print(n)
"""


def _syn_flood(topo, seconds: float) -> None:
    """SYNs to VIP:80 from random addresses of 10.96.0.0/12 and random ports
    for ``seconds``, as fast as the benchmark's generator sends them (their
    sessions wait in SYN_RECV for 60 s: the answers have no way back)."""
    from tools.bench.runner import gen_binary
    mac = json.loads(topo.sh(topo.lb, "ip -j link show eth0").stdout)[0]["address"]
    topo.sh(topo.client, f"{gen_binary()} flood eth0 {mac} 10.96.0.0/12 {netlab.VIP4} "
                         f"{PORT} syn {seconds}", timeout=300)


def test_method_flips_under_syn_load_leave_no_session_behind(fnat_topo, kmsg_mark):
    """A real server switched between NAT and FULLNAT (as ``ipvsadm -e -m``
    / ``-e -b`` do) while new sessions keep coming and each takes long to
    find its local port (the first local address is full, so every session
    that starts there searches all of it before the second): every session
    expires in the end, and no local address keeps a session count."""
    topo = fnat_topo
    lab = Lab(topo, 4, rs_count=1)
    second = LocalAddress(addr=IPAddress(LADDRS[4][1]))
    svc = lab.tcp
    try:
        lab.ipvs.delete_laddr(svc, second)
        _lport_range(topo, 40000, 44999)
        topo.sysctl(topo.lb, net__ipv4__vs__fullnat_lport_tries=60000)
        # the generator's flows are the same sequence each run: a longer
        # run refreshes the sessions of the shorter ones and adds more
        for seconds in (4, 8, 16, 32):
            _syn_flood(topo, seconds)
            if lab.ipvs.laddrs(svc)[0].conns >= 5000:
                break
        assert lab.ipvs.laddrs(svc)[0].conns >= 5000, lab.ipvs.laddrs(svc)
        lab.ipvs.add_laddr(svc, second)
        cmd = ["ip", "netns", "exec", topo.lb, "taskset", "-c", "1", sys.executable, "-c",
               TOGGLER, netlab.VIP4, str(PORT), netlab.rs_addr(1), "30",
               str(wire.IPPROTO_TCP)]
        with fs.SynLoad(topo, 4, netlab.VIP4, PORT, rate=100, cpu=0) as load:
            flips = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                                   timeout=600, check=True).stdout.strip()
        assert int(flips) > 100 and load.sent > 100, (flips, load.sent)
        # flood sessions and NAT ones wait in SYN_RECV (60 s), FULLNAT ones
        # of the load end with the client's RST (CLOSE, 10 s)
        netlab.wait_for(lambda: fs.conn_count(topo) == 0, timeout=300, interval=2)
        counts = {str(la.addr): la.conns for la in lab.ipvs.laddrs(svc)}
        assert counts == {a: 0 for a in LADDRS[4]}, (counts, topo.ext_stats())
        assert not kernel_log_problems(kmsg_mark())
        # and the service still works
        with lab.connect() as sock:
            assert whoami.whoami_tcp(sock)[0] == "rs1"
    finally:
        topo.sysctl(topo.lb, net__ipv4__vs__fullnat_lport_tries=10000)
        _lport_range(topo, 5000, 65535)
        lab.close()


# ------------------------------------------------ spoofed SYN, established

def test_spoofed_syn_does_not_break_a_download(lab):
    """A SYN on an ESTABLISHED session's exact tuple, with another sequence
    number, leaves the session's sequence translation alone."""
    _rs_service(lab, SLOW_PORT, fs.SlowSender)
    fs.spoofed_syn_during_download(lab.topo, lab.family, lab.vip, SLOW_PORT)


# ------------------------------------------------ checksums

def _handshake_numbers(cap: Capture, cport: int) -> tuple[int, int]:
    """(client ISN, server ISN as the client saw it) of a captured handshake."""
    from scapy.all import TCP
    packets = [p[TCP] for p in cap.packets() if TCP in p]
    syn = next(p for p in packets if p.flags == "S" and p.sport == cport)
    synack = next(p for p in packets if p.flags == "SA" and p.dport == cport)
    return syn.seq, synack.seq


def test_bad_checksum_is_not_laundered_by_toa(lab, tmp_path):
    """The first data segment gets TOA, which changes its length and makes
    the balancer compute a new checksum: one that arrived corrupted must
    not reach the real server with a valid one.  The client's own segment
    after it gets through."""
    topo, fam = lab.topo, lab.family
    _rs_service(lab, ECHO_PORT, fs.LineEcho)
    # veth marks checksum-less packets as checked (CHECKSUM_UNNECESSARY)
    # unless receive offload is off: then the balancer sees CHECKSUM_NONE
    topo.sh(topo.lb, "ethtool -K eth0 rx off")
    try:
        with Capture(topo, topo.client, "eth0", f"tcp port {ECHO_PORT}",
                     tmp_path / "c.pcap") as cap:
            sock = netlab.connect(topo, topo.client, lab.vip, ECHO_PORT)
            cport = sock.getsockname()[1]
        c_isn, s_isn = _handshake_numbers(cap, cport)
        before = topo.ext_stats()
        bad = fs.tcp_segment(fam, netlab.client_addr(fam), lab.vip, cport, ECHO_PORT,
                             c_isn + 1, s_isn + 1, "PA", b"FORGED\n", bad_checksum=True)
        netlab.send_raw(topo, topo.client, bad, fam)
        with sock:
            sock.sendall(b"honest\n")      # same sequence numbers, after it
            sock.settimeout(30)
            assert sock.makefile("rb").readline() == b"honest\n"
        after = topo.ext_stats()
        assert after["fullnat_csum_error"] > before["fullnat_csum_error"]
        assert after["fullnat_add_toa_ok"] > before["fullnat_add_toa_ok"]
    finally:
        topo.sh(topo.lb, "ethtool -K eth0 rx on")


def _icmp_too_big(fam: int, src: str, dst: str, inner_src: str, inner_dst: str,
                  sport: int, dport: int, bad_checksum: bool) -> bytes:
    from scapy.all import ICMP, IP, IPv6, ICMPv6PacketTooBig, TCP
    if fam == 4:
        packet = (IP(src=src, dst=dst) / ICMP(type=3, code=4, nexthopmtu=1300)
                  / IP(src=inner_src, dst=inner_dst, flags="DF")
                  / TCP(sport=sport, dport=dport, flags="A"))
        layer, field = ICMP, "chksum"
    else:
        packet = (IPv6(src=src, dst=dst) / ICMPv6PacketTooBig(mtu=1300)
                  / IPv6(src=inner_src, dst=inner_dst) / TCP(sport=sport, dport=dport,
                                                              flags="A"))
        layer, field = ICMPv6PacketTooBig, "cksum"
    packet = packet.__class__(bytes(packet))
    if bad_checksum:
        setattr(packet[layer], field, (getattr(packet[layer], field) + 1) & 0xFFFF)
    return bytes(packet)


def test_corrupted_icmp_error_from_the_rs_side_is_dropped(lab, tmp_path):
    """An ICMP error about a laddr -> RS packet is translated for the client
    with a new ICMP checksum: a corrupted one is dropped, not made valid;
    an intact one after it gets through."""
    topo, fam = lab.topo, lab.family
    # (veth would mark the crafted error as checked, see above)
    topo.sh(topo.lb, "ethtool -K p1 rx off")
    with lab.connect() as sock:
        name, laddr, lport = whoami.whoami_tcp(sock)
        rs = netlab.rs_addr(1, fam)
        with Capture(topo, topo.client, "eth0", "icmp or icmp6",
                     tmp_path / "e.pcap") as cap:
            for bad in (True, False):
                netlab.send_raw(topo, name, _icmp_too_big(fam, rs, laddr, laddr, rs, lport,
                                                          PORT, bad), fam)
            netlab.wait_for(lambda: _errors(cap))
        assert len(_errors(cap)) == 1, [p.summary() for p in _errors(cap)]


def _errors(cap: Capture) -> list:
    from scapy.all import ICMP, ICMPv6PacketTooBig
    try:
        packets = cap.packets()
    except Exception:   # a partial record at the end of a growing file
        return []
    return [p for p in packets if ICMP in p or ICMPv6PacketTooBig in p]


# ------------------------------------------------ local port exhaustion

def _laddr(lab: Lab) -> LocalAddress:
    return lab.ipvs.laddrs(lab.tcp)[0]


def _connect_or_none(lab: Lab) -> socket.socket | None:
    try:
        sock = netlab.connect(lab.topo, lab.topo.client, lab.vip, PORT, timeout=4)
        whoami.whoami_tcp(sock)
        return sock
    except OSError:
        return None


def test_small_port_range_fills_refuses_cleanly_and_drains(fnat_topo):
    """100 local ports, one address, one real server: 100 sessions fit, the
    next is refused and counted after a bounded number of probes (not one
    per port of the range per SYN), and once sessions expire their ports
    serve new ones."""
    topo = fnat_topo
    lab = Lab(topo, 4, rs_count=1)
    socks: list[socket.socket] = []
    try:
        lab.ipvs.delete_laddr(lab.tcp, LocalAddress(addr=IPAddress(LADDRS[4][1])))
        _lport_range(topo, 41000, 41099)
        topo.sysctl(topo.lb, net__ipv4__vs__fullnat_lport_tries=60000)
        for _ in range(100):
            sock = _connect_or_none(lab)
            assert sock is not None, (len(socks), topo.ext_stats()["fullnat_lport_exhausted"])
            socks.append(sock)
        assert _laddr(lab).conns == 100
        stats0, conflicts0 = topo.ext_stats(), _laddr(lab).port_conflicts
        assert _connect_or_none(lab) is None       # SYN and its retransmissions
        refused = (topo.ext_stats()["fullnat_lport_exhausted"]
                   - stats0["fullnat_lport_exhausted"])
        probes = _laddr(lab).port_conflicts - conflicts0
        assert refused >= 1
        assert probes <= refused * 16, (probes, refused)
        # the sessions all live on
        assert whoami.echo_stream(socks[0], 4096) and whoami.echo_stream(socks[-1], 4096)
        # ten of them end with a RST (CLOSE: expire after 10 s) ...
        for sock in socks[:10]:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        del socks[:10]
        netlab.wait_for(lambda: _laddr(lab).conns == 90, timeout=120, interval=1)
        # ... and their ports serve ten new sessions, not eleven
        for _ in range(10):
            sock = _connect_or_none(lab)
            assert sock is not None
            socks.append(sock)
        assert _connect_or_none(lab) is None
    finally:
        for sock in socks:
            sock.close()
        topo.sysctl(topo.lb, net__ipv4__vs__fullnat_lport_tries=10000)
        _lport_range(topo, 5000, 65535)
        lab.close()


# ------------------------------------------------ local address netlink

NETLINK_EXT_ACK = 11
NLMSGERR_ATTR_MSG = 1


def _raw_laddr_request(cmd: int, svc: Service, laddr_attrs: list | None) -> tuple[int, str]:
    """Send one local-address command with hand-made attributes; (errno, the
    kernel's extack message)."""
    from ipvsadm_py import nl
    attrs: list = [("IPVS_CMD_ATTR_SERVICE", wire.nested(svc.key_attrs()))]
    if laddr_attrs is not None:
        attrs.append(("IPVS_CMD_ATTR_LADDR", wire.nested(laddr_attrs)))
    family = nl.resolve_family()
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, nl.NETLINK_GENERIC)
    with sock:
        sock.setsockopt(nl.SOL_NETLINK, NETLINK_EXT_ACK, 1)
        sock.bind((0, 0))
        sock.send(wire.encode(cmd, attrs, family=family,
                              flags=wire.NLM_F_REQUEST | wire.NLM_F_ACK, seq=1))
        data = sock.recv(65536)
    length, kind, flags = struct.unpack_from("=IHH", data)
    assert kind == 2, kind                                  # NLMSG_ERROR
    err = -struct.unpack_from("=i", data, 16)[0]
    # the request is echoed unless NLM_F_CAPPED; TLVs follow when ACK_TLVS
    off = 20 + (16 if flags & 0x100 else struct.unpack_from("=I", data, 20)[0])
    message = ""
    while flags & 0x200 and off + 4 <= length:
        alen, atype = struct.unpack_from("=HH", data, off)
        if atype == NLMSGERR_ATTR_MSG:
            message = data[off + 4:off + alen].rstrip(b"\0").decode()
        off += (alen + 3) & ~3
    return err, message


@pytest.mark.parametrize("family", [4, 6], ids=["ipv4", "ipv6"])
def test_laddr_commands_refuse_loose_addresses(fnat_topo, family):
    """The address must have the service's family: 4 bytes (or 16 with 12
    zero bytes after them) for IPv4, 16 for IPv6; anything else is refused
    with a message, and nothing is added."""
    topo = fnat_topo
    lab = Lab(topo, family, rs_count=0)
    try:
        svc = lab.tcp
        v4 = socket.inet_aton("10.0.3.9")
        cases = {
            "16 bytes of an IPv6 address": socket.inet_pton(socket.AF_INET6, "2001:db8:3::9"),
            "3 bytes": v4[:3],
            "5 bytes": v4 + b"\0",
            "no LADDR attribute": None,
            "no address in LADDR": [],
        }
        if family == 6:
            cases = {"4 bytes": v4, "15 bytes": bytes(15),
                     "3 bytes": v4[:3], "no LADDR attribute": None,
                     "no address in LADDR": []}
        before = sorted(str(la.addr) for la in lab.ipvs.laddrs(svc))
        with topo.inside(topo.lb):
            for what, raw in cases.items():
                attrs = raw if raw is None or raw == [] else [("IPVS_LADDR_ATTR_ADDR", raw)]
                err, message = _raw_laddr_request(wire.CMD_NEW_LADDR, svc, attrs)
                assert err == errno.EINVAL, (what, err, message)
                assert "address" in message, (what, message)
            # deletion reads addresses the same way
            err, message = _raw_laddr_request(wire.CMD_DEL_LADDR, svc,
                                               [("IPVS_LADDR_ATTR_ADDR", v4[:3])])
            assert err == errno.EINVAL and "address" in message, (err, message)
        assert sorted(str(la.addr) for la in lab.ipvs.laddrs(svc)) == before
        if family == 4:
            # the forms the wire format allows are taken: 4 bytes, 16 zero-padded
            with topo.inside(topo.lb):
                for raw in (v4, v4 + bytes(12)):
                    assert _raw_laddr_request(wire.CMD_NEW_LADDR, svc,
                                              [("IPVS_LADDR_ATTR_ADDR", raw)])[0] == 0
                    assert _raw_laddr_request(wire.CMD_DEL_LADDR, svc,
                                              [("IPVS_LADDR_ATTR_ADDR", raw)])[0] == 0
        if family == 4:
            # ipvsadm-py says what is wrong (an IPv4 address for an IPv6
            # service is on the wire as 16 bytes of an IPv6 address: only
            # ipvsadm-py itself can tell)
            with pytest.raises((InvalidInput, KernelRefused)) as info:
                lab.ipvs.add_laddr(svc, LocalAddress(addr=IPAddress("2001:db8:3::9")))
            assert "local address" in str(info.value) and "family" in str(info.value), \
                str(info.value)
    finally:
        lab.close()

