"""FULLNAT forwarding in a booted kernel, IPv4 and IPv6, TCP and UDP.

::

    client --------- lb ------------------- rs1 rs2 rs3
    routes: VIPs     VIP on vip0           routes: local-address subnets
    only             LADDRs 10.0.3.1-2,    only (no way back to the client)
                     2001:db8:3::1-2

The real servers can only answer the balancer's local addresses, so every
reply must come back through the balancer's FULLNAT translation.
"""

from __future__ import annotations

import re
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest
from netaddr import IPAddress

from ipvsadm_py import IPVS, Dest, LocalAddress, Service
from ipvsadm_py import Forward, Protocol
from tools import netlab, whoami
from tools.netlab import Capture, Topology

pytestmark = pytest.mark.kernel

PORT = 80
UPORT = 53
LADDRS = {4: ["10.0.3.1", "10.0.3.2"], 6: ["2001:db8:3::1", "2001:db8:3::2"]}
SYSCTL = Path("/proc/sys/net/ipv4/vs")
TOA_ENABLED = Path("/sys/module/toa/parameters/enabled")


class Lab:
    """A FULLNAT service per protocol and family with its real servers."""

    def __init__(self, topo: Topology, family: int, rs_count: int) -> None:
        self.topo = topo
        self.family = family
        self.vip = netlab.vip(family)
        self.servers: list[whoami._Server] = []
        with topo.inside(topo.lb):
            self.ipvs = IPVS()
        self.tcp = self.service(Protocol.TCP, PORT)
        self.udp = self.service(Protocol.UDP, UPORT)
        for index in range(1, rs_count + 1):
            self.add_rs(index)

    def service(self, proto: int, port: int, scheduler: str = "rr") -> Service:
        af = socket.AF_INET if self.family == 4 else socket.AF_INET6
        svc = Service(protocol=proto, addr=IPAddress(self.vip), port=port, af=af,
                      scheduler=scheduler, netmask=128 if self.family == 6 else 0xFFFFFFFF)
        self.ipvs.add_service(svc)
        for laddr in LADDRS[self.family]:
            self.ipvs.add_laddr(svc, LocalAddress(addr=IPAddress(laddr)))
        return svc

    def add_rs(self, index: int, weight: int = 1) -> None:
        name = self.topo.rs(index)
        addr = netlab.rs_addr(index, self.family)
        for svc, kind, cls in ((self.tcp, socket.SOCK_STREAM, whoami.TcpWhoami),
                               (self.udp, socket.SOCK_DGRAM, whoami.UdpWhoami)):
            self.ipvs.add_dest(svc, Dest(addr=IPAddress(addr), port=svc.port,
                                         af=svc.af, forward=Forward.FULLNAT,
                                         weight=weight))
            self.servers.append(cls(whoami.listen(self.topo.inside, name, self.family,
                                                  kind, svc.port), name))

    def connect(self, port: int = PORT, kind: int = socket.SOCK_STREAM) -> socket.socket:
        return netlab.connect(self.topo, self.topo.client, self.vip, port, kind=kind)

    def close(self) -> None:
        for server in self.servers:
            server.close()
        self.ipvs.flush()
        self.ipvs.close()


@pytest.fixture(autouse=True)
def toa_off():
    """The real servers see the local addresses as peers unless a test
    switches toa.ko (loaded by the guest with our other modules) on."""
    if not TOA_ENABLED.exists():
        yield
        return
    before = TOA_ENABLED.read_text().strip()
    TOA_ENABLED.write_text("N")
    yield
    TOA_ENABLED.write_text(before)


@pytest.fixture
def fnat_topo():
    topo = Topology(n_rs=3, rs_routes=[netlab.LADDR_NET4, netlab.LADDR_NET6],
                    client_routes=[f"{netlab.VIP4}/32", f"{netlab.VIP6}/128"])
    with topo:
        topo.ip_batch(topo.lb, [f"addr add {a}/{32 if f == 4 else 128} dev vip0"
                                + (" nodad" if f == 6 else "")
                                for f, addrs in LADDRS.items() for a in addrs])
        yield topo


@pytest.fixture(params=[4, 6], ids=["ipv4", "ipv6"])
def lab(request, fnat_topo):
    the_lab = Lab(fnat_topo, request.param, rs_count=2)
    yield the_lab
    the_lab.close()


def test_tcp_and_udp_through_fullnat(lab):
    """Round robin over the servers; each sees a local address as peer."""
    answers = []
    for _ in range(4):
        with lab.connect() as sock:
            answers.append(whoami.whoami_tcp(sock))
    assert sorted(name for name, _, _ in answers) == ["rs1", "rs1", "rs2", "rs2"]
    assert {peer for _, peer, _ in answers} <= set(LADDRS[lab.family])
    for _ in range(2):
        with lab.connect(UPORT, socket.SOCK_DGRAM) as sock:
            sock.send(b"query")
            name, peer, _, _, payload = sock.recv(4096).decode().split(" ", 4)
        assert name in ("rs1", "rs2") and peer in LADDRS[lab.family]
        assert payload == "query"


def test_ten_megabytes_byte_exact(lab):
    with lab.connect() as sock:
        whoami.whoami_tcp(sock)
        assert whoami.echo_stream(sock, 10 * 1024 * 1024)


def test_local_addresses_listed_with_counters(lab):
    socks = [lab.connect() for _ in range(4)]
    try:
        for sock in socks:
            whoami.whoami_tcp(sock)
        laddrs = lab.ipvs.laddrs(lab.tcp)
        assert sorted(str(la.addr) for la in laddrs) == sorted(LADDRS[lab.family])
        assert sum(la.conns for la in laddrs) == 4
        # round robin over the local addresses too
        assert all(la.conns == 2 for la in laddrs)
    finally:
        for sock in socks:
            sock.close()


def test_proc_files_show_both_tuples(lab):
    with lab.connect() as sock:
        whoami.whoami_tcp(sock)
        conns = lab.topo.sh(lab.topo.lb, "cat /proc/net/ip_vs_conn").stdout
        rules = lab.topo.sh(lab.topo.lb, "cat /proc/net/ip_vs").stdout
        stock = lab.topo.ipvsadm("-Lnc").stdout
    assert rules.count("FullNat") == 4, rules
    fnat_lines = [line for line in conns.splitlines()[1:] if line.startswith("TCP")]
    assert fnat_lines, conns
    # ... PEName PEData LocalIP LPrt: "- -" and the local tuple at the end
    fields = fnat_lines[0].split()
    assert fields[-4:-2] == ["-", "-"]
    local = fields[-2]
    expect = {netlab.hex_addr(a) for a in LADDRS[lab.family]}
    assert local in expect, fnat_lines[0]
    # stock ipvsadm still reads the upstream columns
    assert re.search(r"^TCP\s+\S+\s+ESTABLISHED\s", stock, re.M), stock


def _toa_of(packet) -> tuple[int, str] | None:
    """(port, address) of a TOA option in a scapy TCP packet, if any."""
    from scapy.all import TCP
    for kind, value in packet[TCP].options:
        if kind == 254 and isinstance(value, bytes) and len(value) in (6, 18):
            port = struct.unpack("!H", value[:2])[0]
            raw = value[2:]
            addr = socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)
            return port, addr
    return None


def test_toa_reaches_the_real_server(lab, tmp_path):
    """The handshake-completing ACK carries the client's address and port."""
    with Capture(lab.topo, "rs1", "eth0", f"tcp port {PORT}", tmp_path / "rs1.pcap") as cap, \
            Capture(lab.topo, "rs2", "eth0", f"tcp port {PORT}", tmp_path / "rs2.pcap") as cap2:
        with lab.connect() as sock:
            cport = sock.getsockname()[1]
            whoami.whoami_tcp(sock)
    from scapy.all import TCP
    packets = [p for p in cap.packets() + cap2.packets() if TCP in p]
    toas = [(p, _toa_of(p)) for p in packets if _toa_of(p)]
    assert toas, ("no TOA option reached the real servers",
                  {k: v for k, v in lab.topo.ext_stats().items() if v},
                  [p.summary() + str(p[TCP].options) for p in packets])
    first, (port, addr) = toas[0]
    assert (port, addr) == (cport, netlab.client_addr(lab.family))
    assert first[TCP].flags & 0x10 and not first[TCP].flags & 0x02  # ACK, not SYN
    assert lab.topo.ext_stats()["fullnat_add_toa_ok"] >= 1


@pytest.fixture
def toa_module():
    """toa.ko loaded and switched on in the guest (real servers share it)."""
    if not TOA_ENABLED.exists():
        subprocess.run(["modprobe", "toa"], check=True)
    before = TOA_ENABLED.read_text().strip()
    TOA_ENABLED.write_text("Y")
    yield
    TOA_ENABLED.write_text(before)


def test_real_server_application_sees_the_client_through_toa(lab, toa_module):
    """End to end: FULLNAT balancer adds TOA, toa.ko on the real server
    makes accept() return the client's address and port."""
    seen = []
    for _ in range(2):   # both real servers
        with lab.connect() as sock:
            cport = sock.getsockname()[1]
            name, peer, port = whoami.whoami_tcp(sock)
            seen.append(name)
        assert (peer, port) == (netlab.client_addr(lab.family), cport), (
            Path("/proc/net/toa_stats").read_text(), lab.topo.ext_stats())
    assert sorted(seen) == ["rs1", "rs2"]
    # the servers' own log of peers names the client too
    logged = {peer[0] for server in lab.servers
              if isinstance(server, whoami.TcpWhoami) for peer in server.peers}
    assert logged == {netlab.client_addr(lab.family)}


def test_client_timestamps_removed_and_mss_lowered(lab, tmp_path):
    # (BPF's tcp[] does not reach into IPv6: filter the flags here)
    with Capture(lab.topo, "rs1", "eth0", f"tcp port {PORT}",
                 tmp_path / "rs.pcap") as at_rs, \
            Capture(lab.topo, "rs2", "eth0", f"tcp port {PORT}",
                    tmp_path / "rs2.pcap") as at_rs2, \
            Capture(lab.topo, "client", "eth0", f"tcp port {PORT}",
                    tmp_path / "client.pcap") as at_client:
        with lab.connect() as sock:
            whoami.whoami_tcp(sock)
    from scapy.all import TCP
    syn_at_rs = [p for p in at_rs.packets() + at_rs2.packets()
                 if TCP in p and p[TCP].flags == "S"]
    syn_at_client = [p for p in at_client.packets() if TCP in p and p[TCP].flags == "S"]
    synack_at_client = [p for p in at_client.packets() if TCP in p and p[TCP].flags == "SA"]
    synack_at_rs = [p for p in at_rs.packets() + at_rs2.packets()
                    if TCP in p and p[TCP].flags == "SA"]
    assert syn_at_rs and syn_at_client and synack_at_client and synack_at_rs
    options = lambda p: dict((k, v) for k, v in p[TCP].options)  # noqa: E731
    assert "Timestamp" in options(syn_at_client[0])     # Linux clients send it
    assert "Timestamp" not in options(syn_at_rs[0])     # fullnat_timestamp_remove_entry
    toa_len = 8 if lab.family == 4 else 20
    assert options(synack_at_client[0])["MSS"] == options(synack_at_rs[0])["MSS"] - toa_len
    # and the balancer's own ISN towards the RS
    assert syn_at_rs[0][TCP].seq != syn_at_client[0][TCP].seq


def test_weights_over_three_servers_with_200_connections(fnat_topo):
    lab = Lab(fnat_topo, 4, rs_count=0)
    try:
        for index, weight in ((1, 1), (2, 2), (3, 3)):
            lab.add_rs(index, weight)
        lab.ipvs.edit_service(Service(protocol=Protocol.TCP,
                                      addr=IPAddress(lab.vip), port=PORT,
                                      scheduler="wrr"))
        results: list[str] = []
        lock = threading.Lock()

        def one() -> None:
            with lab.connect() as sock:
                name = whoami.whoami_tcp(sock)[0]
                with lock:
                    results.append(name)
                time.sleep(1)   # keep the 200 connections open together

        threads = [threading.Thread(target=one) for _ in range(200)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        counts = {name: results.count(name) for name in ("rs1", "rs2", "rs3")}
        assert len(results) == 200
        # weighted round robin: 1:2:3 of 200, give or take one round
        assert abs(counts["rs1"] - 33) <= 6 and abs(counts["rs3"] - 100) <= 6, counts
    finally:
        lab.close()


def test_loss_and_sack_stay_byte_exact(lab):
    """5% loss towards the real servers: SACK blocks and retransmissions
    cross the sequence translation both ways."""
    for name in lab.topo.servers:
        lab.topo.sh(name, "tc qdisc add dev eth0 root netem loss 5%")
    try:
        with lab.connect() as sock:
            whoami.whoami_tcp(sock)
            assert whoami.echo_stream(sock, 4 * 1024 * 1024)
    finally:
        for name in lab.topo.servers:
            lab.topo.sh(name, "tc qdisc del dev eth0 root", check=False)


def test_checksum_offload_on_and_off(lab):
    for offload in ("off", "on"):   # ends as a veth starts: on
        for ns in (lab.topo.client, *lab.topo.servers):
            lab.topo.sh(ns, f"ethtool -K eth0 tx {offload} rx {offload}")
        with lab.connect() as sock:
            whoami.whoami_tcp(sock)
            assert whoami.echo_stream(sock, 1024 * 1024)
        with lab.connect(UPORT, socket.SOCK_DGRAM) as sock:
            sock.send(b"x" * 1000)
            assert sock.recv(4096).endswith(b"x" * 1000)


def test_port_exhaustion_is_counted_and_harms_no_session(fnat_topo):
    lab = Lab(fnat_topo, 4, rs_count=1)
    try:
        lab.ipvs.delete_laddr(lab.tcp, LocalAddress(addr=IPAddress(LADDRS[4][1])))
        fnat_topo.sysctl(fnat_topo.lb, net__ipv4__vs__fullnat_lport_min=40000,
                         net__ipv4__vs__fullnat_lport_max=40000)
        first = lab.connect()
        whoami.whoami_tcp(first)
        before = fnat_topo.ext_stats()["fullnat_lport_exhausted"]
        with pytest.raises(OSError):
            lab.connect().close()   # one port, one RS: no tuple left
        assert fnat_topo.ext_stats()["fullnat_lport_exhausted"] > before
        assert whoami.echo_stream(first, 64 * 1024)   # the first one lives on
        first.close()
    finally:
        fnat_topo.sysctl(fnat_topo.lb, net__ipv4__vs__fullnat_lport_min=5000,
                         net__ipv4__vs__fullnat_lport_max=65535)
        lab.close()


def test_deleting_local_address_and_service_with_live_sessions(lab):
    sock = lab.connect()
    whoami.whoami_tcp(sock)
    for laddr in LADDRS[lab.family]:
        lab.ipvs.delete_laddr(lab.tcp, LocalAddress(addr=IPAddress(laddr)))
    assert lab.ipvs.laddrs(lab.tcp) == []
    assert whoami.echo_stream(sock, 64 * 1024)   # drains on the deleted address
    with pytest.raises(OSError):                  # no address: no new session
        lab.connect().close()
    assert lab.topo.ext_stats()["fullnat_no_laddr"] >= 1
    # Deleting the service takes its real servers away: as upstream does
    # for every method, packets of their sessions are dropped from then on
    # (the session holds the local address until it expires).
    lab.ipvs.delete_service(lab.tcp)
    sock.settimeout(3)
    sock.sendall(b"ping\n")
    with pytest.raises(TimeoutError):
        sock.recv(64)
    sock.close()


def test_expired_session_resets_both_ends(lab):
    """conn_expire_tcp_rst: an idle established session times out."""
    lab.topo.ipvsadm("--set 3 3 3")
    try:
        sock = lab.connect()
        name = whoami.whoami_tcp(sock)[0]
        sock.settimeout(120)
        with pytest.raises(ConnectionResetError):
            while sock.recv(1):
                pass
        sock.close()
        assert lab.topo.ext_stats()["conn_expire_tcp_rst"] >= 1
        # and the real server's socket is gone too
        netlab.wait_for(lambda: not lab.topo.sh(
            name, f"ss -tnH state established '( sport = :{PORT} )'").stdout.strip())
    finally:
        lab.topo.ipvsadm("--set 900 120 300")


def test_retransmitted_syn_keeps_our_isn(lab, tmp_path):
    """The RS's SYN/ACKs are lost for a while: the client's SYN, sent again,
    reaches the RS with the sequence number we chose the first time (an RS
    in SYN_RECV answers a SYN of another ISN only with an ACK)."""
    sock, syns = netlab.connect_while_servers_silent(
        lab.topo, lambda: netlab.connect(lab.topo, lab.topo.client, lab.vip, PORT,
                                         timeout=60),
        PORT, tmp_path / "syns.pcap")
    with sock:
        assert len(syns) >= 2, syns
        assert len({syn.seq for syn in syns}) == 1, [syn.seq for syn in syns]
        assert len({syn.sport for syn in syns}) == 1
        assert whoami.whoami_tcp(sock)[0] in ("rs1", "rs2")


def test_client_port_reuse_of_a_closed_session(lab):
    port = None
    for _ in range(3):
        family = socket.AF_INET if lab.family == 4 else socket.AF_INET6
        with lab.topo.inside(lab.topo.client):
            sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # close with RST so the client side keeps no TIME_WAIT of its own
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.bind((netlab.client_addr(lab.family), port or 0))
        port = sock.getsockname()[1]
        sock.settimeout(10)
        sock.connect((lab.vip, PORT))
        assert whoami.whoami_tcp(sock)[0] in ("rs1", "rs2")
        sock.close()
    assert lab.topo.ext_stats()["fullnat_conn_reused"] >= 1


#: When the test connected, per real-server namespace (for _pmtu_state).
_STARTED: dict[str, float] = {}


def _next_seq(cap: Capture, sport: int) -> int:
    """The sequence number after the last data segment sent from ``sport``:
    the sender's snd_una once it is acknowledged, so an error about it is
    in the sender's window."""
    from scapy.all import TCP, Raw
    data = [p for p in cap.packets() if TCP in p and Raw in p and p[TCP].sport == sport]
    assert data, "no data segment captured"
    return (data[-1][TCP].seq + len(data[-1][Raw].load)) & 0xFFFFFFFF


def _too_big(family: int, src: str, dst: str, inner_src: str, inner_dst: str,
             sport: int, dport: int, seq: int) -> bytes:
    from scapy.all import ICMP, IP, IPv6, ICMPv6PacketTooBig, TCP
    if family == 4:
        return bytes(IP(src=src, dst=dst) / ICMP(type=3, code=4, nexthopmtu=1300)
                     / IP(src=inner_src, dst=inner_dst, flags="DF")
                     / TCP(sport=sport, dport=dport, seq=seq, flags="PA"))
    return bytes(IPv6(src=src, dst=dst) / ICMPv6PacketTooBig(mtu=1300)
                 / IPv6(src=inner_src, dst=inner_dst)
                 / TCP(sport=sport, dport=dport, seq=seq, flags="PA"))


def _embedded(packet):
    """(src, dst, sport, dport, seq) of the packet an ICMP error carries."""
    from scapy.all import IPerror, IPerror6, TCPerror
    inner = packet[IPerror] if IPerror in packet else packet[IPerror6]
    return (inner.src, inner.dst, packet[TCPerror].sport, packet[TCPerror].dport,
            packet[TCPerror].seq)


def test_icmp_too_big_from_both_sides(lab, tmp_path):
    """PMTU: "fragmentation needed" / "packet too big" errors about a
    session are translated and delivered, and the receiver takes the MTU."""
    topo, fam = lab.topo, lab.family
    client = netlab.client_addr(fam)
    with Capture(topo, "client", "eth0", f"tcp port {PORT}", tmp_path / "c.pcap") as c_cap, \
            Capture(topo, "rs1", "eth0", f"tcp port {PORT}", tmp_path / "r1.pcap") as r1, \
            Capture(topo, "rs2", "eth0", f"tcp port {PORT}", tmp_path / "r2.pcap") as r2:
        sock = lab.connect()
        name, laddr, lport = whoami.whoami_tcp(sock)
        cport = sock.getsockname()[1]
    _STARTED[name] = time.monotonic()
    rs_cap = r1 if name == "rs1" else r2
    rs = netlab.rs_addr(int(name[2:]), fam)
    # Where each sender stands: the embedded packets of the two errors.
    at_rs = _next_seq(rs_cap, lport)
    at_client = _next_seq(c_cap, PORT)
    client_req = _next_seq(c_cap, cport)

    # 1. From the RS side, about laddr -> RS: reaches the client as an error
    #    about its own client -> VIP packet, in its own sequence space.
    err = _too_big(fam, rs, laddr, laddr, rs, lport, PORT, at_rs)
    with Capture(topo, "client", "eth0", "icmp or icmp6", tmp_path / "ce.pcap") as cap:
        netlab.send_raw(topo, name, err, fam)
        netlab.wait_for(lambda: _icmp_errors(cap))
    got = _icmp_errors(cap)[0]
    assert _embedded(got) == (client, lab.vip, cport, PORT, client_req)
    netlab.wait_for(lambda: "mtu" in topo.sh(topo.client, f"ip route get {lab.vip}").stdout)

    # 2. From the client side, about VIP -> client: reaches the RS as an
    #    error about its RS -> laddr packet.
    # The RS's socket must still be established with nothing unacknowledged
    # since the reply, so at_client (its snd_una = snd_nxt) is in its window.
    before = _pmtu_state(topo, name, lport)
    err = _too_big(fam, client, lab.vip, lab.vip, client, PORT, cport, at_client)
    with Capture(topo, name, "eth0", "icmp or icmp6", tmp_path / "re.pcap") as cap:
        netlab.send_raw(topo, topo.client, err, fam)
        netlab.wait_for(lambda: _icmp_errors(cap))
    got = _icmp_errors(cap)[0]
    assert _embedded(got)[:4] == (rs, laddr, PORT, lport)
    try:
        netlab.wait_for(lambda: "mtu" in topo.sh(name, f"ip route get {laddr}").stdout)
    except TimeoutError as exc:
        raise AssertionError(f"{name} did not take the MTU\n{before}\n"
                             f"{_pmtu_state(topo, name, lport, _embedded(got)[4])}") from exc
    print(f"step 2: {before}")
    sock.close()


def _pmtu_state(topo: Topology, ns: str, lport: int, embedded_seq: int | None = None) -> str:
    """What decides whether TCP in ``ns`` takes a packet-too-big about its
    connection to ``lport`` (the failure message of the PMTU step): the
    socket's state, bytes sent and acknowledged and idle times (an error
    naming a sequence number outside snd_una..snd_nxt, as data sent before
    a FIN that was acknowledged, or for a closed socket is dropped and
    counted), the ICMP and out-of-window counters, and the seconds since the
    connection began."""
    sock = topo.sh(ns, f"ss -tnie state all '( dport = :{lport} )'", check=False).stdout
    counters = topo.sh(ns, "nstat -asz TcpExtOutOfWindowIcmps Icmp6InPktTooBigs "
                           "Icmp6InErrors Icmp6InCsumErrors IcmpInDestUnreachs "
                           "IcmpInErrors IcmpInCsumErrors TcpExtLockDroppedIcmps",
                       check=False).stdout
    seq = "" if embedded_seq is None else f"embedded seq {embedded_seq}; "
    return (f"{seq}{time.monotonic() - _STARTED.get(ns, 0):.0f} s after connect\n"
            f"ss:\n{sock}nstat:\n{counters}")


def test_balancer_reports_its_own_smaller_mtu(lab, tmp_path):
    """The link toward the real servers has a smaller MTU than the client's:
    the balancer answers the client's too-big segments itself ("fragmentation
    needed" / "packet too big" for that MTU), the client takes the MTU, and
    the stream completes in smaller segments."""
    topo = lab.topo
    mtu = 1200 if lab.family == 4 else 1280
    topo.sh(topo.lb, f"ip link set br0 mtu {mtu}")
    with Capture(topo, topo.client, "eth0", "icmp or icmp6", tmp_path / "e.pcap") as cap:
        with lab.connect() as sock:
            whoami.whoami_tcp(sock)
            assert whoami.echo_stream(sock, 256 * 1024)
    from scapy.all import ICMP, ICMPv6PacketTooBig
    told = [p[ICMP].nexthopmtu if ICMP in p else p[ICMPv6PacketTooBig].mtu
            for p in _icmp_errors(cap)]
    assert told and set(told) == {mtu}, told
    assert f"mtu {mtu}" in topo.sh(topo.client, f"ip route get {lab.vip}").stdout


def _icmp_errors(cap: Capture) -> list:
    """ICMP(v6) errors in a running capture (the file grows as it runs)."""
    from scapy.all import ICMP, ICMPv6PacketTooBig
    try:
        packets = cap.packets()
    except Exception:   # the file may end in a partial record meanwhile
        return []
    return [p for p in packets if ICMP in p or ICMPv6PacketTooBig in p]
