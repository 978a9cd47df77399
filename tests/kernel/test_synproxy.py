"""SYNPROXY and flood defence in a booted kernel.

::

    client ------------- lb -------------------- rs1 rs2
    real sockets, and     SYNPROXY services       whoami servers
    scapy over raw        (NAT and FULLNAT)
    sockets (floods,
    crafted handshakes)

Crafted handshakes use the client's own address: its kernel answers our
SYN/ACKs with RSTs, which the balancer drops (there is no session), so
they do not disturb the test.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
from netaddr import IPAddress, IPNetwork

from ipvsadm_py import IPVS, Dest, LocalAddress, Service
from ipvsadm_py import Forward, Protocol
from ipvsadm_py.errors import IPVSError
from tools import netlab, whoami
from tools.netlab import Capture, Topology

pytestmark = pytest.mark.kernel

PORT = 80
PLAIN_PORT = 8080       # the same VIP without SYNPROXY
UPORT = 53
LOCAL_UPORT = 9999      # no service: UDP to it goes to the balancer's own stack
LADDRS = {4: ["10.0.3.1", "10.0.3.2"], 6: ["2001:db8:3::1", "2001:db8:3::2"]}
SPOOF_NET = {4: "198.18.0.0/15", 6: "2001:db8:dead::/48"}
SYSCTL = "/proc/sys/net/ipv4/vs"
DEFAULTS = {"synproxy_init_mss": 1452, "synproxy_sack": 1, "synproxy_wscale": 0,
            "synproxy_timestamp": 0, "synproxy_synack_ttl": 63, "synproxy_defer": 0,
            "synproxy_ack_skb_store_thresh": 3, "synproxy_syn_retry": 3,
            "synproxy_cookie_max_age": 64, "defence_tcp_drop": 1,
            "defence_udp_drop": 1, "defence_frag_drop": 1,
            "synproxy_conn_reuse": 1, "synproxy_conn_reuse_close": 1,
            "synproxy_conn_reuse_time_wait": 1, "synproxy_conn_reuse_fin_wait": 0,
            "synproxy_conn_reuse_close_wait": 0, "synproxy_conn_reuse_last_ack": 0,
            "synproxy_ack_storm_thresh": 10}


# ---------------------------------------------------------------- the lab

class Lab:
    """A SYNPROXY TCP service (and a plain one, and a UDP one) on the VIP."""

    def __init__(self, topo: Topology, family: int, mode: str) -> None:
        self.topo, self.family, self.mode = topo, family, mode
        self.vip = netlab.vip(family)
        self.af = socket.AF_INET if family == 4 else socket.AF_INET6
        self.fwd = Forward.FULLNAT if mode == "fnat" else Forward.MASQ
        self.servers: list = []
        with topo.inside(topo.lb):
            self.ipvs = IPVS()
        self.tcp = self.service(Protocol.TCP, PORT, synproxy=True)
        self.plain = self.service(Protocol.TCP, PLAIN_PORT, synproxy=False)
        self.udp = self.service(Protocol.UDP, UPORT, synproxy=False)
        for index in (1, 2):
            addr = IPAddress(netlab.rs_addr(index, family))
            name = topo.rs(index)
            for svc, kind, cls in ((self.tcp, socket.SOCK_STREAM, whoami.TcpWhoami),
                                   (self.plain, socket.SOCK_STREAM, whoami.TcpWhoami),
                                   (self.udp, socket.SOCK_DGRAM, whoami.UdpWhoami)):
                self.ipvs.add_dest(svc, Dest(addr=addr, port=svc.port, af=self.af,
                                             forward=self.fwd))
                self.servers.append(cls(whoami.listen(topo.inside, name, family, kind,
                                                      svc.port), name))

    def service(self, proto: int, port: int, synproxy: bool) -> Service:
        svc = Service(protocol=proto, addr=IPAddress(self.vip), port=port, af=self.af,
                      scheduler="rr", synproxy=synproxy,
                      netmask=128 if self.family == 6 else 0xFFFFFFFF)
        self.ipvs.add_service(svc)
        if self.mode == "fnat":
            for laddr in LADDRS[self.family]:
                self.ipvs.add_laddr(svc, LocalAddress(addr=IPAddress(laddr)))
        return svc

    @contextlib.contextmanager
    def local_udp(self, timeout: float) -> Iterator[tuple[socket.socket, socket.socket]]:
        """(listener, client): a UDP socket on the VIP's LOCAL_UPORT in the
        balancer and one in the client's namespace, closed after the block;
        whether a datagram arrives is what the UDP defence decides."""
        with self.topo.inside(self.topo.lb):
            listener = socket.socket(self.af, socket.SOCK_DGRAM)
        with contextlib.closing(listener):
            listener.bind((self.vip, LOCAL_UPORT))
            listener.settimeout(timeout)
            with self.topo.inside(self.topo.client):
                client = socket.socket(self.af, socket.SOCK_DGRAM)
            with contextlib.closing(client):
                yield listener, client

    def connect(self, port: int = PORT, timeout: float = 20) -> socket.socket:
        return netlab.connect(self.topo, self.topo.client, self.vip, port,
                              timeout=timeout)

    def stats(self) -> dict[str, int]:
        return self.topo.ext_stats()

    def conns(self) -> list[str]:
        text = self.topo.sh(self.topo.lb, "cat /proc/net/ip_vs_conn").stdout
        return [line for line in text.splitlines()[1:] if line.strip()]

    def sysctl(self, **values: int) -> None:
        self.topo.sh(self.topo.lb, " && ".join(
            f"echo {v} > {SYSCTL}/{k}" for k, v in values.items()))

    def diagnose(self) -> str:
        """Sockets of both ends, the balancer's sessions and counters: what a
        stalled connection leaves behind, for the failure message."""
        parts = [f"--- {ns}: ss -tnio\n" + self.topo.sh(ns, "ss -tnio", check=False).stdout
                 for ns in (self.topo.client, *self.topo.servers)]
        parts.append("--- lb: ip_vs_conn\n" + "\n".join(self.conns()))
        parts.append("--- lb: ip_vs_ext_stats (non-zero)\n" + "\n".join(
            f"{k} {v}" for k, v in self.stats().items() if v))
        return "\n".join(parts)

    def echo(self, size: int, timeout: float = 20) -> tuple[str, str, int]:
        """One connection: who answered (whoami_tcp) and ``size`` bytes
        echoed back; a failure carries diagnose() in its message."""
        with self.connect(timeout=timeout) as sock:
            try:
                answer = whoami.whoami_tcp(sock)
                assert whoami.echo_stream(sock, size)
            except (OSError, AssertionError) as exc:
                raise AssertionError(f"{exc!r}\n{self.diagnose()}") from exc
        return answer

    def close(self) -> None:
        for server in self.servers:
            server.close()
        self.ipvs.flush()
        self.ipvs.close()


def make_topo() -> Topology:
    topo = Topology(n_rs=2)
    topo.up()
    try:
        lines = [f"addr add {a}/{32 if f == 4 else 128} dev vip0" + (" nodad" if f == 6 else "")
                 for f, addrs in LADDRS.items() for a in addrs]
        # SYN/ACKs to spoofed sources leave towards the client side
        lines += [f"route add {SPOOF_NET[4]} via {netlab.CLIENT4}",
                  f"route add {SPOOF_NET[6]} via {netlab.CLIENT6}"]
        topo.ip_batch(topo.lb, lines)
    except BaseException:
        topo.down()
        raise
    return topo


@pytest.fixture(params=["nat-4", "fnat-4", "nat-6", "fnat-6"])
def lab(request):
    mode, family = request.param.split("-")
    topo = make_topo()
    try:
        the_lab = Lab(topo, int(family), mode)
        try:
            yield the_lab
        finally:
            the_lab.close()
    finally:
        topo.down()


@pytest.fixture
def lab4(request):
    topo = make_topo()
    try:
        the_lab = Lab(topo, 4, "nat")
        try:
            yield the_lab
        finally:
            the_lab.close()
    finally:
        topo.down()


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


# ---------------------------------------------------------------- packets

def ip_layer(family: int, src: str, dst: str, **kw):
    from scapy.all import IP, IPv6
    return IP(src=src, dst=dst, **kw) if family == 4 else IPv6(src=src, dst=dst)


def _from_ip(conn_line: str) -> IPAddress:
    """The client address of a /proc/net/ip_vs_conn line (hex for IPv4)."""
    field = conn_line.split()[1]
    return IPAddress(field) if ":" in field else IPAddress(int(field, 16))


def random_sources(family: int, count: int) -> list[str]:
    rnd = random.Random(count)
    if family == 4:
        return [f"198.{18 + rnd.randrange(2)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
                for _ in range(count)]
    return [f"2001:db8:dead:{rnd.randrange(65536):x}::{rnd.randrange(1, 65535):x}"
            for _ in range(count)]


class RawSender:
    """One raw socket in a namespace for many crafted IP packets."""

    def __init__(self, topo: Topology, ns: str, family: int) -> None:
        self.family = family
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        with topo.inside(ns):
            self.sock = socket.socket(af, socket.SOCK_RAW, socket.IPPROTO_RAW)

    def send(self, packet) -> None:
        raw = bytes(packet)
        dst = socket.inet_ntop(socket.AF_INET if self.family == 4 else socket.AF_INET6,
                               raw[16:20] if self.family == 4 else raw[24:40])
        self.sock.sendto(raw, (dst, 0))

    def close(self) -> None:
        self.sock.close()


def flood_packets(family: int, dst: str, dport: int, flags: str, count: int) -> list[bytes]:
    from scapy.all import TCP
    rnd = random.Random(dport * 7 + len(flags))
    return [bytes(ip_layer(family, src, dst) /
                  TCP(sport=rnd.randrange(1024, 65535), dport=dport, flags=flags,
                      seq=rnd.randrange(1 << 32), ack=rnd.randrange(1 << 32)))
            for src in random_sources(family, count)]


def send_all(topo: Topology, family: int, packets: list[bytes]) -> None:
    sender = RawSender(topo, topo.client, family)
    try:
        for raw in packets:
            sender.send(raw)
    finally:
        sender.close()


def tcp_opts(packet) -> dict:
    from scapy.all import TCP
    return {name: value for name, value in packet[TCP].options}


class Handshake:
    """A hand-made client on the client's own address (scapy)."""

    def __init__(self, lab: Lab, sport: int, tmp_path: Path, options=None) -> None:
        self.lab, self.sport, self.tmp = lab, sport, tmp_path
        self.src = netlab.client_addr(lab.family)
        self.isn = random.Random(sport).randrange(1 << 32)
        self.options = options if options is not None else [("MSS", 1460)]

    def syn(self):
        """Send the SYN; return the balancer's SYN/ACK as captured."""
        from scapy.all import TCP
        bpf = f"tcp and src port {PORT} and dst port {self.sport}"
        with Capture(self.lab.topo, self.lab.topo.client, "eth0", bpf,
                     self.tmp / f"synack-{self.sport}.pcap") as cap:
            self.send(TCP(sport=self.sport, dport=PORT, flags="S", seq=self.isn,
                          options=self.options))
            netlab.wait_for(lambda: Path(cap.path).stat().st_size > 24 + 16 + 40,
                            timeout=15)
        replies = [p for p in cap.packets() if TCP in p and p[TCP].flags & 0x12 == 0x12]
        assert replies, "no SYN/ACK from the balancer"
        return replies[0]

    def send(self, tcp, sport: int | None = None) -> None:
        if sport is not None:
            tcp.sport = sport
        send_all(self.lab.topo, self.lab.family,
                 [bytes(ip_layer(self.lab.family, self.src, self.lab.vip) / tcp)])

    def ack(self, cookie: int, payload: bytes = b"", sport: int | None = None,
            options=None) -> None:
        from scapy.all import TCP, Raw
        seg = TCP(sport=self.sport, dport=PORT, flags="PA" if payload else "A",
                  seq=self.isn + 1, ack=(cookie + 1) % (1 << 32), options=options or [])
        self.send(seg / Raw(payload) if payload else seg, sport)


# ---------------------------------------------------------------- tests

def test_requests_through_synproxy(lab):
    """Real clients through a SYNPROXY service: each request answered, one
    proven cookie per connection, the real servers see the client (NAT)."""
    before = lab.stats()
    answers = [lab.echo(256 * 1024) for _ in range(20)]
    moved = delta(before, lab.stats())
    assert sorted({name for name, _, _ in answers}) == ["rs1", "rs2"]
    if lab.mode == "nat":
        assert {peer for _, peer, _ in answers} == {netlab.client_addr(lab.family)}
    else:
        # a local address, or the client itself when toa.ko is loaded
        assert {peer for _, peer, _ in answers} <= \
            set(LADDRS[lab.family]) | {netlab.client_addr(lab.family)}
    assert moved.get("synproxy_ok_ack") == 20, moved
    assert moved.get("synproxy_syn_cnt", 0) >= 20, moved
    assert "synproxy_bad_ack" not in moved, moved
    assert "synproxy_ackstorm" not in moved, moved   # honest ACKs are never a storm


def test_stream_through_synproxy_survives_loss(lab):
    """5% loss on the client's and the real servers' links: retransmissions
    and SACK blocks cross the proxied sequence spaces (cookie ISN toward the
    client, the RS's ISN and, in FULLNAT, our own ISN toward the RS)."""
    hosts = (lab.topo.client, *lab.topo.servers)
    for name in hosts:
        lab.topo.sh(name, "tc qdisc add dev eth0 root netem loss 5%")
    try:
        for _ in range(3):
            lab.echo(1024 * 1024, timeout=60)
    finally:
        for name in hosts:
            lab.topo.sh(name, "tc qdisc del dev eth0 root", check=False)


@pytest.mark.parametrize("family", [4, 6])
def test_syn_retry_keeps_the_isn(family, tmp_path):
    """FULLNAT: the RS's SYN/ACKs are lost for a while; each SYN the balancer
    sends again carries the same sequence number (ours), and the connection
    completes once the RS is heard."""
    topo = make_topo()
    try:
        lab = Lab(topo, family, "fnat")
        try:
            lab.sysctl(synproxy_syn_retry=6)
            before = lab.stats()

            # the client's handshake ACK makes the balancer send the SYNs
            sock, syns = netlab.connect_while_servers_silent(
                topo, lambda: lab.connect(timeout=60), PORT, tmp_path / "syns.pcap")
            with sock:
                assert whoami.whoami_tcp(sock)[0] in ("rs1", "rs2")
            assert len(syns) >= 2, syns
            assert len({syn.seq for syn in syns}) == 1, [syn.seq for syn in syns]
            assert delta(before, lab.stats()).get("synproxy_syn_retry", 0) >= 1
        finally:
            lab.sysctl(synproxy_syn_retry=DEFAULTS["synproxy_syn_retry"])
            lab.close()
    finally:
        topo.down()


def test_toa_reaches_rs_through_synproxy(tmp_path):
    """FULLNAT + SYNPROXY: the released handshake ACK carries TOA."""
    topo = make_topo()
    try:
        lab = Lab(topo, 4, "fnat")
        try:
            before = lab.stats()
            with Capture(topo, "rs1", "eth0", f"tcp port {PORT}", tmp_path / "a.pcap") as a, \
                    Capture(topo, "rs2", "eth0", f"tcp port {PORT}", tmp_path / "b.pcap") as b:
                with lab.connect() as sock:
                    cport = sock.getsockname()[1]
                    whoami.whoami_tcp(sock)
            from scapy.all import TCP
            toas = [tcp_opts(p).get(254) for p in a.packets() + b.packets()
                    if TCP in p and 254 in tcp_opts(p)]
            assert toas, delta(before, lab.stats())
            port, addr = struct.unpack("!H", toas[0][:2])[0], socket.inet_ntoa(toas[0][2:6])
            assert (port, addr) == (cport, netlab.CLIENT4)
        finally:
            lab.close()
    finally:
        topo.down()


@pytest.mark.parametrize("mode,family", [("nat", 4), ("fnat", 4), ("nat", 6)])
def test_spoofed_syn_flood_while_clients_work(mode, family, tmp_path):
    """Thousands of spoofed SYNs from random sources while a real client
    completes 200 requests: all succeed, no spoofed SYN reaches a real
    server, no session for a spoofed source, every SYN answered."""
    topo = make_topo()
    lab = Lab(topo, family, mode)
    try:
        flood = flood_packets(family, lab.vip, PORT, "S", 3000)
        before = lab.stats()
        peak = [0]
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                peak[0] = max(peak[0], sum(1 for line in lab.conns() if line.startswith("TCP")))
                time.sleep(0.3)

        # (BPF's tcp[] does not reach into IPv6: SYNs are picked out below)
        bpf = f"tcp dst port {PORT}"
        with Capture(topo, "rs1", "eth0", bpf, tmp_path / "rs1.pcap") as c1, \
                Capture(topo, "rs2", "eth0", bpf, tmp_path / "rs2.pcap") as c2:
            flooder = threading.Thread(target=send_all, args=(topo, family, flood))
            watcher = threading.Thread(target=watch)
            flooder.start()
            watcher.start()
            ok = 0
            try:
                for _ in range(200):
                    with lab.connect() as sock:
                        name, _, _ = whoami.whoami_tcp(sock)
                        ok += name in ("rs1", "rs2")
            finally:
                flooder.join()
                stop.set()
                watcher.join()
        assert ok == 200
        from scapy.all import IP, IPv6, TCP
        syns = [p for p in c1.packets() + c2.packets()
                if TCP in p and p[TCP].flags & 0x12 == 0x02]
        layer = IP if family == 4 else IPv6
        sources = {p[layer].src for p in syns}
        legit = {netlab.client_addr(family)} if mode == "nat" else set(LADDRS[family])
        assert sources <= legit, sources - legit
        # one SYN per real connection (none for the flood)
        assert 200 <= len(syns) <= 200 + 20, len(syns)
        moved = delta(before, lab.stats())
        assert moved.get("synproxy_ok_ack") == 200, moved
        # every SYN that reached the balancer got a cookie: the 3000
        # spoofed ones and the client's
        assert moved.get("synproxy_syn_cnt", 0) >= 3000 + 200, moved
        assert peak[0] <= 200, peak
        # no session from a spoofed source (the client-address column)
        spoofed = IPNetwork(SPOOF_NET[family])
        assert not [c for c in lab.conns() if _from_ip(c) in spoofed]
    finally:
        lab.close()
        topo.down()


def client_ports(lab: Lab) -> set[int]:
    """Client ports of the TCP sessions of the balancer."""
    return {int(c.split()[2], 16) for c in lab.conns() if c.startswith("TCP")}


def test_cookie_checks(lab4, tmp_path):
    """Valid cookies open sessions with the data of the ACK delivered
    byte-exact; wrong, replayed (other tuple) and stale cookies are dropped
    and counted; no session or packet reaches a server for them."""
    lab = lab4
    from scapy.all import IP, TCP
    # within what Capture keeps of a packet (snap length 256)
    payload = b"hello\n" + bytes(range(190))
    with Capture(lab.topo, "rs1", "eth0", f"tcp port {PORT}", tmp_path / "r1.pcap") as c1, \
            Capture(lab.topo, "rs2", "eth0", f"tcp port {PORT}", tmp_path / "r2.pcap") as c2:
        # valid, with data in the ACK
        good = Handshake(lab, 40001, tmp_path)
        synack = good.syn()
        before = lab.stats()
        good.ack(synack[TCP].seq, payload)
        netlab.wait_for(lambda: delta(before, lab.stats()).get("synproxy_ok_ack") == 1)
        assert client_ports(lab) == {40001}
        # wrong cookie
        bad = Handshake(lab, 40002, tmp_path)
        c = bad.syn()[TCP].seq
        bad.ack(c + 12345)
        # the first connection's cookie replayed from another port
        good.ack(synack[TCP].seq, sport=40003)
        netlab.wait_for(lambda: delta(before, lab.stats()).get("synproxy_bad_ack") == 2)
        # stale: older than synproxy_cookie_max_age (1 s here)
        lab.sysctl(synproxy_cookie_max_age=1)
        try:
            old = Handshake(lab, 40004, tmp_path)
            oc = old.syn()[TCP].seq
            time.sleep(3)
            old.ack(oc)
            netlab.wait_for(lambda: delta(before, lab.stats()).get("synproxy_bad_ack") == 3)
        finally:
            lab.sysctl(synproxy_cookie_max_age=64)
        time.sleep(1)
    moved = delta(before, lab.stats())
    assert moved.get("synproxy_stale_ack") == 1, moved
    assert moved.get("synproxy_ok_ack") == 1, moved
    seen = [p for p in c1.packets() + c2.packets() if TCP in p]
    ports = {p[TCP].sport for p in seen if p[TCP].dport == PORT}
    assert ports == {40001}, ports
    data = b"".join(bytes(p[TCP].payload) for p in seen
                    if p[TCP].dport == PORT and len(p[TCP].payload))
    assert data == payload
    assert [p[IP].len - 4 * p[IP].ihl - 4 * p[TCP].dataofs for p in seen
            if p[TCP].dport == PORT and len(p[TCP].payload)] == [len(payload)]
    syn = [p for p in seen if p[TCP].flags & 0x02 and p[TCP].dport == PORT][0]
    assert syn[TCP].seq == good.isn
    # (the session of 40001 may be gone: our kernel resets the RS's answer)
    assert client_ports(lab) <= {40001}


def test_synack_options_follow_sysctls(lab4, tmp_path):
    lab = lab4
    from scapy.all import IP, TCP
    full = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (12345, 0)), ("NOP", None),
            ("WScale", 9)]
    lab.sysctl(synproxy_init_mss=1400, synproxy_wscale=7, synproxy_sack=1,
               synproxy_timestamp=1, synproxy_synack_ttl=50)
    try:
        synack = Handshake(lab, 41001, tmp_path, full).syn()
        opts = tcp_opts(synack)
        assert opts["MSS"] == 1400 and opts["WScale"] == 7, opts
        assert "SAckOK" in opts and opts["Timestamp"] == (0, 12345), opts
        assert synack[IP].ttl == 50
        lab.sysctl(synproxy_wscale=0, synproxy_sack=0, synproxy_timestamp=0)
        synack = Handshake(lab, 41002, tmp_path, full).syn()
        opts = tcp_opts(synack)
        assert opts.get("MSS") == 1400
        assert not {"WScale", "SAckOK", "Timestamp"} & set(opts), opts
    finally:
        lab.sysctl(synproxy_init_mss=1452, synproxy_wscale=0, synproxy_sack=1,
                   synproxy_timestamp=0, synproxy_synack_ttl=63)


@pytest.mark.parametrize("wscale,ts", [(7, 1), (3, 0)])
def test_options_negotiated_end_to_end(lab4, wscale, ts):
    """Window scale / timestamps negotiated through SYNPROXY: 4 MB echoed."""
    lab = lab4
    lab.sysctl(synproxy_wscale=wscale, synproxy_timestamp=ts)
    try:
        with lab.connect() as sock:
            whoami.whoami_tcp(sock)
            assert whoami.echo_stream(sock, 4 * 1024 * 1024)
    finally:
        lab.sysctl(synproxy_wscale=0, synproxy_timestamp=0)


def test_silent_rs_gets_retries_then_client_rst(lab4):
    lab = lab4
    dead = Service(protocol=Protocol.TCP, addr=IPAddress(lab.vip), port=81,
                   af=lab.af, scheduler="rr", synproxy=True, netmask=0xFFFFFFFF)
    lab.ipvs.add_service(dead)
    lab.ipvs.add_dest(dead, Dest(addr=IPAddress("10.0.2.99"), port=81, af=lab.af,
                                 forward=Forward.MASQ))
    before = lab.stats()
    with lab.connect(81, timeout=60) as sock:   # the balancer completes it
        sock.sendall(b"hello\n")
        with pytest.raises(ConnectionResetError):
            sock.recv(100)
    moved = delta(before, lab.stats())
    assert moved.get("synproxy_syn_retry") == 3, moved
    assert moved.get("synproxy_rs_error") == 1, moved
    netlab.wait_for(lambda: not [c for c in lab.conns() if "0051" in c.split()[4:5][0]
                                 if len(c.split()) > 4], timeout=20)


def test_refusing_rs_rst_passed_to_client(lab4):
    lab = lab4
    closed = Service(protocol=Protocol.TCP, addr=IPAddress(lab.vip), port=82,
                     af=lab.af, scheduler="rr", synproxy=True,
                     netmask=0xFFFFFFFF)
    lab.ipvs.add_service(closed)
    lab.ipvs.add_dest(closed, Dest(addr=IPAddress(netlab.rs_addr(1)), port=82, af=lab.af,
                                   forward=Forward.MASQ))
    before = lab.stats()
    # The balancer completes the client's handshake, then the RS's RST
    # comes at once: it may already have reset the socket when connect()
    # asks for its result.
    with pytest.raises(ConnectionResetError):
        with lab.connect(82) as sock:
            sock.sendall(b"hello\n")
            sock.recv(100)
    moved = delta(before, lab.stats())
    assert moved.get("synproxy_rs_error") == 1, moved
    assert "synproxy_syn_retry" not in moved
    netlab.wait_for(lambda: not [c for c in lab.conns() if " 0052 " in c], timeout=20)


def test_session_reused_by_a_new_cookie(lab4):
    """A client that aborts (RST: the session goes to CLOSE) and connects
    again from the same port at once: the new cookie ACK starts a fresh
    session to a real server on the old one."""
    lab = lab4
    before = lab.stats()
    sport = 42001
    for _ in range(2):
        with lab.topo.inside(lab.topo.client):
            sock = socket.socket(lab.af, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((netlab.client_addr(4), sport))
        sock.settimeout(20)
        sock.connect((lab.vip, PORT))
        try:
            assert whoami.whoami_tcp(sock)[0] in ("rs1", "rs2")
            assert whoami.echo_stream(sock, 64 * 1024)
        finally:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        netlab.wait_for(lambda: [c for c in lab.conns()
                                 if f"{sport:04X}" in c and "CLOSE " in c])
    moved = delta(before, lab.stats())
    assert moved.get("synproxy_ok_ack") == 2, moved
    assert moved.get("synproxy_conn_reused") == 1, moved
    assert moved.get("synproxy_conn_reused_close") == 1, moved


def test_defer_waits_for_the_clients_data(lab4):
    """synproxy_defer: the cookie ACK alone opens nothing (counted as a null
    ACK); the first data segment, which carries the cookie again, does."""
    lab = lab4
    lab.sysctl(synproxy_defer=1)
    try:
        before = lab.stats()
        with lab.connect() as sock:
            netlab.wait_for(lambda: delta(before, lab.stats()).get("synproxy_null_ack"))
            assert not [c for c in lab.conns() if c.startswith("TCP")]
            assert "synproxy_ok_ack" not in delta(before, lab.stats())
            assert whoami.whoami_tcp(sock)[0] in ("rs1", "rs2")
            assert whoami.echo_stream(sock, 64 * 1024)
        moved = delta(before, lab.stats())
        assert moved.get("synproxy_ok_ack") == 1, moved
    finally:
        lab.sysctl(synproxy_defer=0)


def test_ack_rst_fin_floods_create_no_session(lab4):
    lab = lab4
    before = lab.stats()
    for flags in ("A", "R", "F"):
        send_all(lab.topo, 4, flood_packets(4, lab.vip, PORT, flags, 300))
        send_all(lab.topo, 4, flood_packets(4, lab.vip, PLAIN_PORT, flags, 300))
    netlab.wait_for(lambda: sum(delta(before, lab.stats()).get(k, 0) for k in
                                ("synproxy_bad_ack", "defence_tcp_drop")) == 1800)
    moved = delta(before, lab.stats())
    assert moved.get("synproxy_bad_ack") == 300, moved
    assert moved.get("defence_tcp_drop") == 1500, moved
    assert not [c for c in lab.conns() if c.startswith("TCP")]
    # defence off: the plain service's strays go to the local stack (which
    # answers them), still without a session
    lab.sysctl(defence_tcp_drop=0)
    try:
        before = lab.stats()
        send_all(lab.topo, 4, flood_packets(4, lab.vip, PLAIN_PORT, "A", 300))
        time.sleep(2)
        assert "defence_tcp_drop" not in delta(before, lab.stats())
        assert not [c for c in lab.conns() if c.startswith("TCP")]
    finally:
        lab.sysctl(defence_tcp_drop=1)


def test_ack_storm_on_a_session_is_cut(lab4, tmp_path):
    """ACKs of data the RS never sent (an ACK storm between two middleboxes,
    or an attacker who knows a session's ports) pass the balancer up to
    synproxy_ack_storm_thresh in a row; the rest are dropped and counted in
    synproxy_ackstorm, and the session itself lives on."""
    from scapy.all import TCP
    lab = lab4
    extra = 5
    with Capture(lab.topo, lab.topo.client, "eth0", f"tcp port {PORT}",
                 tmp_path / "c.pcap") as cap:
        sock = lab.connect()
        whoami.whoami_tcp(sock)
    with sock:
        cport = sock.getsockname()[1]
        segs = [p[TCP] for p in cap.packets() if TCP in p and cport in (p[TCP].sport,
                                                                        p[TCP].dport)]
        synack = next(t for t in segs if t.dport == cport and t.flags & 0x12 == 0x12)
        got = sum(len(bytes(t.payload)) for t in segs if t.dport == cport)
        sent = max((t.seq + len(bytes(t.payload))) % (1 << 32)
                   for t in segs if t.sport == cport and not t.flags & 0x02)
        # a quarter of the sequence space beyond anything the RS sent
        bogus = (synack.seq + 1 + got + (1 << 30)) % (1 << 32)
        before = lab.stats()
        sender = RawSender(lab.topo, lab.topo.client, 4)
        try:
            for _ in range(DEFAULTS["synproxy_ack_storm_thresh"] + extra):
                sender.send(ip_layer(4, netlab.client_addr(4), lab.vip) /
                            TCP(sport=cport, dport=PORT, flags="A", seq=sent, ack=bogus))
        finally:
            sender.close()
        netlab.wait_for(lambda: delta(before, lab.stats()).get("synproxy_ackstorm", 0)
                        >= extra)
        assert delta(before, lab.stats())["synproxy_ackstorm"] == extra
        assert whoami.echo_stream(sock, 64 * 1024)   # the session lives on


def test_udp_to_tcp_vip_per_sysctl(lab4):
    lab = lab4
    with lab.local_udp(timeout=3) as (listener, client):
        try:
            before = lab.stats()
            client.sendto(b"x", (lab.vip, LOCAL_UPORT))
            with pytest.raises(socket.timeout):
                listener.recvfrom(10)
            assert delta(before, lab.stats()).get("defence_udp_drop") == 1
            lab.sysctl(defence_udp_drop=0)
            client.sendto(b"y", (lab.vip, LOCAL_UPORT))
            assert listener.recvfrom(10)[0] == b"y"
        finally:
            lab.sysctl(defence_udp_drop=1)


def test_fragments_per_sysctl(lab4, tmp_path):
    lab = lab4
    from scapy.all import IP, UDP, Raw, fragment

    def send_fragmented(sport: int) -> None:
        dgram = IP(src=netlab.CLIENT4, dst=lab.vip) / UDP(sport=sport, dport=UPORT) / \
            Raw(b"z" * 3000)
        send_all(lab.topo, 4, [bytes(f) for f in fragment(dgram, fragsize=1000)])

    bpf = f"udp and dst port {UPORT}"
    before = lab.stats()
    with Capture(lab.topo, "rs1", "eth0", bpf, tmp_path / "f1.pcap") as c1, \
            Capture(lab.topo, "rs2", "eth0", bpf, tmp_path / "f2.pcap") as c2:
        send_fragmented(45001)
        netlab.wait_for(lambda: delta(before, lab.stats()).get("defence_ip_frag_drop") == 1)
    assert not c1.packets() + c2.packets()
    lab.sysctl(defence_frag_drop=0)
    try:
        with Capture(lab.topo, "rs1", "eth0", bpf, tmp_path / "g1.pcap") as c1, \
                Capture(lab.topo, "rs2", "eth0", bpf, tmp_path / "g2.pcap") as c2:
            send_fragmented(45002)
            time.sleep(2)
        assert c1.packets() + c2.packets()
    finally:
        lab.sysctl(defence_frag_drop=1)


def test_refused_with_dr_or_tunnel(lab4):
    lab = lab4
    with pytest.raises(IPVSError) as err:
        lab.ipvs.add_dest(lab.tcp, Dest(addr=IPAddress("10.0.2.50"), port=PORT, af=lab.af,
                                        forward=Forward.ROUTE))
    assert "not supported" in str(err.value).lower() or err.value.errno == 95
    lab.ipvs.add_dest(lab.plain, Dest(addr=IPAddress("10.0.2.51"), port=PLAIN_PORT,
                                      af=lab.af, forward=Forward.TUNNEL))
    with pytest.raises(IPVSError):
        lab.ipvs.set_synproxy(lab.plain, True)
    # and on/off on a NAT-only service works
    svc = lab.ipvs.set_synproxy(lab.tcp, False)
    assert not [s for s in lab.ipvs.services() if s.port == PORT][0].synproxy
    lab.ipvs.set_synproxy(svc, True)
    assert [s for s in lab.ipvs.services() if s.port == PORT][0].synproxy


def test_defaults_of_abi():
    topo = Topology(n_rs=1)
    with topo:
        topo.ipvsadm("-Ln")
        for name, value in DEFAULTS.items():
            got = topo.sh(topo.lb, f"cat {SYSCTL}/{name}").stdout.strip()
            assert int(got) == value, name
        names = topo.sh(topo.lb, "cat /proc/net/ip_vs_ext_stats").stdout
        for counter in ("synproxy_rs_error", "synproxy_null_ack", "synproxy_bad_ack",
                        "synproxy_ok_ack", "synproxy_syn_cnt", "synproxy_ackstorm",
                        "synproxy_synsend_qlen", "synproxy_conn_reused",
                        "synproxy_conn_reused_close", "synproxy_conn_reused_timewait",
                        "synproxy_conn_reused_finwait", "synproxy_conn_reused_closewait",
                        "synproxy_conn_reused_lastack",
                        "synproxy_no_dest", "defence_ip_frag_drop", "defence_tcp_drop",
                        "defence_udp_drop"):
            assert f"\n{counter} " in names, counter
