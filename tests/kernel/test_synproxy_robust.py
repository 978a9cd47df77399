"""SYNPROXY and flood defence against hostile input and a changing world.

::

    far ------ client --------------- lb ----------------------- rs1 rs2
    (PMTU      raw sockets, gen         SYNPROXY services           whoami
     tests)    floods; router for       (NAT and FULLNAT) on VIP,   servers
               far with a 1400-byte     plain services on 10.0.0.101
               route (PMTU tests)       |
                                        sync0
                                        |
                                        peer: a sync daemon, or crafted
                                              sync messages

The lab of test_synproxy.py (Lab, make_topo); the extra namespaces and
addresses are added by the tests that need them.  Crafted segments come
from raw sockets of the client's namespace; floods from the benchmark's C
generator (tools/bench/gen.c) on an AF_PACKET socket there.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

import pytest
from netaddr import IPAddress, IPNetwork

from ipvsadm_py import IPVS, Dest, Forward, LocalAddress, Protocol, Request, Service, Verb
from ipvsadm_py import abi
from ipvsadm_py.errors import IPVSError
from tests.kernel.test_synproxy import (LADDRS, LOCAL_UPORT, PLAIN_PORT, PORT, SPOOF_NET,
                                        SYSCTL, UPORT, Lab, _from_ip, delta, ip_layer,
                                        make_topo, send_all)
from tools import netlab, whoami
from tools.bench.runner import gen_binary
from tools.guest_init import kernel_log_problems
from tools.netlab import Capture, Topology

pytestmark = pytest.mark.kernel

PLAIN_VIP = {4: "10.0.0.101", 6: "2001:db8:100::101"}     # no SYNPROXY service there
FAR = {4: ("10.0.4.2", "10.0.4.1", "10.0.4.0/24"),
       6: ("2001:db8:4::2", "2001:db8:4::1", "2001:db8:4::/64")}
SYNC_LB, SYNC_PEER, SYNC_GROUP, SYNC_PORT, SYNC_ID = "10.0.9.1", "10.0.9.2", "224.0.0.81", 8848, 5
SYNC_SNAPLEN = 2048      # whole sync messages (entries with our parameter are longer)
IP_VS_CONN_F_SEQ_MASK = 0x0600
IPVS_OPT_SEQ_DATA = 1
RANDOM_ACKS = 1_000_000
IPVSADM_PY = str(Path(sys.executable).parent / "ipvsadm-py")
CLIENT_NET = {4: "10.0.1.0/24", 6: "2001:db8:1::/64"}


@pytest.fixture(params=["nat-4", "fnat-4", "nat-6", "fnat-6"])
def any_lab(request):
    mode, family = request.param.split("-")
    yield from _lab(int(family), mode)


@pytest.fixture
def fnat4():
    yield from _lab(4, "fnat")


@pytest.fixture
def nat4():
    yield from _lab(4, "nat")


def _lab(family: int, mode: str):
    topo = make_topo()
    try:
        lab = Lab(topo, family, mode)
        try:
            yield lab
        finally:
            lab.close()
    finally:
        topo.down()


# ---------------------------------------------------------------- helpers

def lb_mac(topo: Topology) -> str:
    link = json.loads(netlab.run(f"ip -n {topo.lb} -j link show eth0").stdout)[0]
    return link["address"]


def established(topo: Topology, port: int) -> int:
    """Established TCP sockets of the real servers on ``port``."""
    return sum(len(topo.sh(ns, f"ss -Htn state established '( sport = :{port} )'")
                   .stdout.splitlines()) for ns in topo.servers)


def conn_line(lab: Lab, cport: int) -> list[str]:
    """The /proc/net/ip_vs_conn fields of the session of client port ``cport``."""
    for line in lab.conns():
        fields = line.split()
        if fields[0] == "TCP" and int(fields[2], 16) == cport:
            return fields
    raise AssertionError(f"no session of client port {cport}: {lab.conns()}")


def hex_to_addr(field: str) -> str:
    return str(IPAddress(field) if ":" in field else IPAddress(int(field, 16)))


class PacedEcho:
    """``blocks`` blocks of 16 KB sent through an echoing connection with a
    pause after each, read back in a thread: a stream that lasts long
    enough for something to happen in its middle."""

    BLOCK = 16 * 1024

    def __init__(self, sock: socket.socket, blocks: int = 80, pause: float = 0.05) -> None:
        self.sock, self.blocks, self.pause = sock, blocks, pause
        self.started = threading.Event()
        self.got = hashlib.sha256()
        self.want = hashlib.sha256()
        self.received = 0
        self.error: str | None = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.writer = threading.Thread(target=self._write, daemon=True)
        self.reader.start()
        self.writer.start()

    def _read(self) -> None:
        try:
            while self.received < self.blocks * self.BLOCK:
                data = self.sock.recv(65536)
                if not data:
                    return
                self.got.update(data)
                self.received += len(data)
                if self.received >= 4 * self.BLOCK:
                    self.started.set()
        except OSError as exc:
            self.error = repr(exc)

    def _write(self) -> None:
        rnd = random.Random(self.blocks)
        try:
            for _ in range(self.blocks):
                block = rnd.randbytes(self.BLOCK)
                self.want.update(block)
                self.sock.sendall(block)
                time.sleep(self.pause)
        except OSError as exc:
            self.error = repr(exc)

    def finish(self, timeout: float) -> bool:
        """Whether every byte came back, the same, within ``timeout`` s."""
        self.writer.join(timeout)
        self.reader.join(timeout)
        return (not self.reader.is_alive() and self.received == self.blocks * self.BLOCK
                and self.got.digest() == self.want.digest())


def survives(lab: Lab, sock: socket.socket, event: Callable[[], None],
             blocks: int = 80) -> None:
    """A paced echo on ``sock`` completes byte-exact although ``event()``
    happens in its middle."""
    stream = PacedEcho(sock, blocks)
    assert stream.started.wait(60), f"the stream did not start\n{lab.diagnose()}"
    event()
    ok = stream.finish(blocks * 2 + 60)
    assert ok, (f"stream stalled or damaged: {stream.received} of "
                f"{blocks * PacedEcho.BLOCK} bytes, {stream.error}\n{lab.diagnose()}")


def tcp_packet(family: int, src: str, dst: str, sport: int, dport: int, flags: str,
               seq: int, ack: int = 0) -> bytes:
    from scapy.all import TCP
    return bytes(ip_layer(family, src, dst) /
                 TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack))


# ---------------------------------------------------------------- cookies

def test_a_million_random_acks_open_nothing(nat4):
    """ACKs with random sequence and acknowledgment numbers from random
    sources (the C generator, each run with its own seed) until the
    balancer has checked at least a million cookies: none passes, so no
    session, no local port and no socket on a real server."""
    lab = nat4
    topo = lab.topo
    gen, mac = gen_binary(), lb_mac(topo)
    before = lab.stats()
    seeds = random.Random().sample(range(1, 1 << 31), 100)
    checked = 0
    for seed in seeds:
        topo.sh(topo.client, f"{gen} flood eth0 {mac} {SPOOF_NET[4]} {lab.vip} {PORT} "
                             f"ack 10 {seed}", timeout=120)
        checked = delta(before, lab.stats()).get("synproxy_bad_ack", 0)
        if checked >= RANDOM_ACKS:
            break
    moved = delta(before, lab.stats())
    spoofed = IPNetwork(SPOOF_NET[4])
    sessions = [c for c in lab.conns() if _from_ip(c) in spoofed]
    if moved.get("synproxy_ok_ack"):
        # what a passed cookie leads to: give the real servers' handshakes time
        netlab.wait_for(lambda: established(topo, PORT) >= moved["synproxy_ok_ack"],
                        timeout=20)
    rs_sockets = established(topo, PORT)
    report = (f"{checked} random ACKs checked: {moved.get('synproxy_ok_ack', 0)} cookies "
              f"passed, {len(sessions)} sessions, {rs_sockets} sockets on the real servers")
    print(report)
    assert checked >= RANDOM_ACKS, report
    assert not moved.get("synproxy_ok_ack") and not sessions and not rs_sockets, report


def test_options_from_a_lost_offer_stay_consistent(nat4, tmp_path):
    """The SYNs' options are kept in a lossy table: 16 clients send their
    SYNs, a flood of as many SYNs as the table has slots follows (each
    offer survives it with a chance of 1/e), then the clients' ACKs.  A
    handshake whose offer is lost still opens its session (counted in
    synproxy_opts_lost): the RS's SYN has the MSS class of the cookie and
    no window scale or SACK, and the RS's windows reach the client scaled
    down by what the client was told; one whose offer is kept gets every
    option the client was told."""
    from scapy.all import TCP
    from tests.kernel.test_synproxy import Handshake
    lab = nat4
    topo = lab.topo
    ports = range(43001, 43017)
    lab.sysctl(synproxy_wscale=7, synproxy_cookie_max_age=128)
    try:
        options = [("MSS", 1460), ("SAckOK", b""), ("NOP", None), ("WScale", 7)]
        clients = [Handshake(lab, port, tmp_path, options) for port in ports]
        bpf = f"tcp and portrange {ports[0]}-{ports[-1]}"
        # no RST from the client's kernel (it has no sockets for these)
        topo.sh(topo.client, "tc qdisc add dev eth0 clsact && tc filter add dev eth0 egress "
                             f"protocol ip flower ip_proto tcp src_port {ports[0]}-{ports[-1]} "
                             "tcp_flags 0x4/0x4 action drop")
        with Capture(topo, "rs1", "eth0", bpf, tmp_path / "r1.pcap") as c1, \
                Capture(topo, "rs2", "eth0", bpf, tmp_path / "r2.pcap") as c2, \
                Capture(topo, topo.client, "eth0", f"src port {PORT} and {bpf}",
                        tmp_path / "c.pcap") as cc:
            cookies = [hs.syn()[TCP].seq for hs in clients]
            before = lab.stats()
            gen, mac = gen_binary(), lb_mac(topo)
            while delta(before, lab.stats()).get("synproxy_syn_cnt", 0) < 65536:
                topo.sh(topo.client, f"{gen} flood eth0 {mac} {SPOOF_NET[4]} {lab.vip} "
                                     f"{PORT} syn 5 {random.getrandbits(31)}", timeout=60)
            for hs, cookie in zip(clients, cookies):
                hs.ack(cookie, b"hello\n")
            # the whoami answers (the client's kernel resets the sessions then)
            netlab.wait_for(lambda: len({p[TCP].dport for p in cc.packets() if TCP in p
                                         and len(bytes(p[TCP].payload))}) == len(ports),
                            timeout=60)
        moved = delta(before, lab.stats())
        assert moved.get("synproxy_ok_ack") == len(ports), moved
        rs = c1.packets() + c2.packets()
        syns = {p[TCP].sport: dict(p[TCP].options) for p in rs
                if TCP in p and p[TCP].flags & 0x12 == 0x02}
        assert sorted(syns) == list(ports), syns
        lost = [port for port, opts in syns.items() if "WScale" not in opts]
        assert len(lost) == moved.get("synproxy_opts_lost", 0) >= 1, (lost, moved)
        for port, opts in syns.items():
            want = {"MSS": 1460} if port in lost else \
                {"MSS": 1460, "WScale": 7, "SAckOK": b""}
            assert {k: v for k, v in opts.items() if k != "NOP"} == want, (port, opts)
        # the RS's window as sent and as the client got it, lost offers
        sent: dict[int, int] = {}
        got: dict[int, int] = {}
        for packets, first in ((rs, sent), (cc.packets(), got)):
            for p in packets:
                if TCP in p and p[TCP].sport == PORT and len(bytes(p[TCP].payload)):
                    first.setdefault(p[TCP].dport, p[TCP].window)
        for port in lost:
            assert got[port] == sent[port] >> 7, (port, sent[port], got[port])
    finally:
        topo.sh(topo.client, "tc qdisc del dev eth0 clsact", check=False)
        lab.sysctl(synproxy_wscale=0, synproxy_cookie_max_age=64)


# ---------------------------------------------------------------- defence

def _udp_delivered(lab: Lab, listener: socket.socket, client: socket.socket,
                   payload: bytes) -> bool:
    client.sendto(payload, (lab.vip, LOCAL_UPORT))
    try:
        while True:
            data, _ = listener.recvfrom(100)
            if data == payload:
                return True
    except socket.timeout:
        return False


def test_udp_defence_follows_the_synproxy_service(nat4):
    """UDP to the address of a SYNPROXY service that no UDP service takes is
    dropped; it reaches the local stack once the address has no SYNPROXY
    service (flag off, or the service deleted), with thousands of other
    services in the table."""
    lab = nat4
    others = [Service(protocol=Protocol.TCP,
                      addr=IPAddress(f"10.200.{i // 250}.{i % 250 + 1}"), port=80,
                      scheduler="rr") for i in range(3000)]
    assert all(err is None for err in lab.ipvs.run([Request(Verb.ADD_SERVICE, s) for s in others]))
    try:
        with lab.local_udp(timeout=2) as (listener, client):
            before = lab.stats()
            assert not _udp_delivered(lab, listener, client, b"a")
            assert delta(before, lab.stats()).get("defence_udp_drop") == 1
            svc = lab.ipvs.set_synproxy(lab.tcp, False)
            assert _udp_delivered(lab, listener, client, b"b")
            lab.tcp = lab.ipvs.set_synproxy(svc, True)
            assert not _udp_delivered(lab, listener, client, b"c")
            lab.ipvs.delete_service(lab.tcp)
            assert _udp_delivered(lab, listener, client, b"d")
            assert delta(before, lab.stats()).get("defence_udp_drop") == 2
    finally:
        lab.ipvs.run([Request(Verb.DELETE_SERVICE, s) for s in others])


def _plain_vip_services(lab: Lab) -> tuple[Service, Service]:
    """A UDP and a TCP NAT service on PLAIN_VIP (no SYNPROXY there)."""
    vip = PLAIN_VIP[lab.family]
    lab.topo.ip_batch(lab.topo.lb, [f"addr add {vip}/{32 if lab.family == 4 else 128} "
                                    f"dev vip0" + (" nodad" if lab.family == 6 else "")])
    made = []
    for proto, port in ((Protocol.UDP, UPORT), (Protocol.TCP, PLAIN_PORT)):
        svc = Service(protocol=proto, addr=IPAddress(vip), port=port, af=lab.af,
                      scheduler="rr", netmask=128 if lab.family == 6 else 0xFFFFFFFF)
        lab.ipvs.add_service(svc)
        for index in (1, 2):
            lab.ipvs.add_dest(svc, Dest(addr=IPAddress(netlab.rs_addr(index, lab.family)),
                                        port=port, af=lab.af, forward=Forward.MASQ))
        made.append(svc)
    return made[0], made[1]


def _big_udp(lab: Lab, vip: str) -> bytes | None:
    """A 3 KB datagram (fragmented by the client's kernel) to vip:UPORT;
    the whoami answer, or None."""
    payload = bytes(random.getrandbits(8) for _ in range(3000))
    with lab.topo.inside(lab.topo.client):
        sock = socket.socket(lab.af, socket.SOCK_DGRAM)
    with sock:
        sock.settimeout(5)
        sock.sendto(payload, (vip, UPORT))
        try:
            reply = sock.recv(65536)
        except socket.timeout:
            return None
    assert reply.endswith(b" | " + payload)
    return reply


def _stray_ack_answer(lab: Lab, vip: str, port: int, tmp_path: Path, name: str) -> list:
    """A non-SYN segment without a session to vip:port; what came back."""
    from scapy.all import TCP
    sport = random.randrange(20000, 30000)
    with Capture(lab.topo, lab.topo.client, "eth0", f"tcp and dst port {sport}",
                 tmp_path / f"{name}.pcap") as cap:
        send_all(lab.topo, lab.family, [tcp_packet(lab.family, netlab.client_addr(lab.family),
                                                   vip, sport, port, "A", 1000, 2000)])
        try:
            netlab.wait_for(lambda: Path(cap.path).stat().st_size > 24, timeout=5)
        except TimeoutError:
            pass
    return [p[TCP] for p in cap.packets() if TCP in p]


@pytest.mark.parametrize("family", [4, 6])
def test_defence_leaves_other_vips_alone(family, tmp_path):
    """Services without SYNPROXY on an address without one behave as
    upstream's: a fragmented 3 KB datagram reaches a UDP real server, a
    stray ACK is answered with a RST by the local stack.  On the address
    of the SYNPROXY service both are still dropped and counted."""
    topo = make_topo()
    try:
        lab = Lab(topo, family, "nat")
        try:
            _plain_vip_services(lab)
            before = lab.stats()
            assert _big_udp(lab, PLAIN_VIP[family]), "3 KB datagram to a plain VIP lost"
            answer = _stray_ack_answer(lab, PLAIN_VIP[family], PLAIN_PORT, tmp_path, "p")
            assert [t for t in answer if t.flags & 0x04], answer          # RST
            moved = delta(before, lab.stats())
            assert not {"defence_ip_frag_drop", "defence_tcp_drop"} & set(moved), moved
            assert _big_udp(lab, lab.vip) is None
            assert not _stray_ack_answer(lab, lab.vip, PLAIN_PORT, tmp_path, "s")
            moved = delta(before, lab.stats())
            assert moved.get("defence_ip_frag_drop") == 1, moved
            assert moved.get("defence_tcp_drop") == 1, moved
        finally:
            lab.close()
    finally:
        topo.down()


# ---------------------------------------------------------------- sync

def sync_peer(topo: Topology) -> str:
    """A namespace ``peer`` linked to the balancer by ``sync0``."""
    peer = topo.prefix + "peer"
    netlab.run(["ip", "netns", "add", peer])
    topo.created.append(peer)
    netlab.run(["ip", "-n", topo.lb, "link", "add", "sync0", "type", "veth", "peer",
                "name", "sync0", "netns", peer])
    topo.ip_batch(topo.lb, ["link set sync0 up", f"addr add {SYNC_LB}/24 dev sync0"])
    topo.ip_batch(peer, ["link set lo up", "link set sync0 up",
                         f"addr add {SYNC_PEER}/24 dev sync0"])
    topo.sh(topo.lb, f"ping -c1 -W5 {SYNC_PEER}")
    return peer


def sync_daemon(topo: Topology, ns: str, state: str) -> None:
    topo.sh(ns, f"ipvsadm --start-daemon {state} --mcast-interface sync0 --syncid {SYNC_ID}")


def stop_sync(topo: Topology, *names: str) -> None:
    """Stop the daemons before their link goes with the namespaces."""
    for ns in (topo.lb, *names):
        for state in ("master", "backup"):
            topo.sh(ns, f"ipvsadm --stop-daemon {state}", check=False)


def sync_message(conns: list[bytes]) -> bytes:
    """A version 1 sync message (ip_vs_sync.c: struct ip_vs_sync_mesg)."""
    body = b"".join(c + b"\0" * (-len(c) % 4) for c in conns)
    return struct.pack("!BBHBbH", 0, SYNC_ID, 8 + len(body), len(conns), 1, 0) + body


def sync_conn_v4(fields: list[str], flags: int, seq: bytes | None) -> bytes:
    """A struct ip_vs_sync_v4 for the session of a /proc/net/ip_vs_conn line,
    ESTABLISHED, with sequence data ``seq`` (24 bytes) as its option."""
    opt = struct.pack("!BB", IPVS_OPT_SEQ_DATA, len(seq)) + seq if seq else b""
    size = 36 + len(opt)
    caddr, cport, vaddr, vport, daddr, dport = (int(f, 16) for f in fields[1:7])
    return struct.pack("!BBHIHHHHIIIII", 0, socket.IPPROTO_TCP, size, flags, 1,
                       cport, vport, dport, 0, 900, caddr, vaddr, daddr) + opt


def parse_sync(payload: bytes) -> list[tuple[int, int, bool]]:
    """(client port, flags, has sequence data) of each connection of a
    version 1 sync message."""
    out = []
    nr, pos = payload[4], 8
    for _ in range(nr):
        size = struct.unpack_from("!H", payload, pos + 2)[0] & 0x0FFF
        ctype = payload[pos]
        flags = struct.unpack_from("!I", payload, pos + 4)[0]
        cport = struct.unpack_from("!H", payload, pos + 10)[0]
        opt, end = pos + (84 if ctype & 1 else 36), pos + size
        seq = False
        while opt + 2 <= end:
            seq |= payload[opt] & 0x7F == IPVS_OPT_SEQ_DATA
            opt += 2 + payload[opt + 1]
        out.append((cport, flags, seq))
        pos += (size + 3) & ~3
    return out


def sync_records(cap: Capture, src: str) -> list[tuple[int, int, bool]]:
    from scapy.all import IP, UDP
    return [rec for p in cap.packets() if UDP in p and p[IP].src == src
            for rec in parse_sync(bytes(p[UDP].payload))]


def send_sync(topo: Topology, peer: str, message: bytes) -> None:
    with topo.inside(peer):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(SYNC_PEER))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.sendto(message, (SYNC_GROUP, SYNC_PORT))


@pytest.mark.parametrize("mode", ["nat", "fnat"])
def test_sync_pair_with_synproxy_sessions(mode, tmp_path):
    """A master/backup pair: streams through SYNPROXY and plain sessions of
    the master complete, no message the master sends announces sequence
    data for them, and the backup learns them (FULLNAT ones with their
    local tuple: tests/kernel/test_sync.py)."""
    topo = make_topo()
    try:
        lab = Lab(topo, 4, mode)
        peer = sync_peer(topo)
        with topo.inside(peer):
            backup = IPVS()
        try:
            fwd = Forward.FULLNAT if mode == "fnat" else Forward.MASQ
            for svc in (lab.tcp, lab.plain):
                backup.add_service(svc)
                for laddr in LADDRS[4] if mode == "fnat" else ():
                    backup.add_laddr(svc, LocalAddress(addr=IPAddress(laddr)))
                for index in (1, 2):
                    backup.add_dest(svc, Dest(addr=IPAddress(netlab.rs_addr(index)),
                                              port=svc.port, forward=fwd))
            sync_daemon(topo, peer, "backup")
            sync_daemon(topo, topo.lb, "master")
            ports = []
            text = lambda: topo.sh(peer, "cat /proc/net/ip_vs_conn").stdout   # noqa: E731
            with Capture(topo, peer, "sync0", f"udp port {SYNC_PORT}", tmp_path / "s.pcap",
                         snaplen=SYNC_SNAPLEN) as cap:
                for port in (PORT, PLAIN_PORT):
                    with lab.connect(port) as sock:
                        ports.append(sock.getsockname()[1])
                        whoami.whoami_tcp(sock)
                        survives(lab, sock, lambda: None, blocks=30)
                records = lambda: [r for r in sync_records(cap, SYNC_LB)   # noqa: E731
                                   if r[0] in ports]
                netlab.wait_for(lambda: {r[0] for r in records()} == set(ports), timeout=30)
            assert not [r for r in records() if r[1] & IP_VS_CONN_F_SEQ_MASK or r[2]], \
                records()
            netlab.wait_for(lambda: all(f" {p:04X} " in text() for p in ports), timeout=30)
        finally:
            stop_sync(topo, peer)
            backup.flush()
            backup.close()
            lab.close()
    finally:
        topo.down()


@pytest.mark.parametrize("mode,port", [("fnat", PORT), ("fnat", PLAIN_PORT), ("nat", PORT)],
                         ids=["fullnat-synproxy", "fullnat", "nat-synproxy"])
def test_crafted_sync_seq_data_leaves_a_session_alone(mode, port, tmp_path):
    """A version 1 sync message naming a live session's exact tuple, with
    sequence data and the flags that announce it, reaches the balancer's
    backup daemon in the middle of a stream: the stream completes, the data
    is counted as ignored, and the balancer's own master never sends the
    session's state as sequence data afterwards."""
    topo = make_topo()
    try:
        lab = Lab(topo, 4, mode)
        try:
            peer = sync_peer(topo)
            sync_daemon(topo, topo.lb, "backup")
            sync_daemon(topo, topo.lb, "master")
            before = lab.stats()
            with lab.connect(port) as sock:
                cport = sock.getsockname()[1]
                whoami.whoami_tcp(sock)
                fields = conn_line(lab, cport)
                fwd = abi.FWD_FULLNAT if mode == "fnat" else abi.FWD_MASQ   # wire flags
                garbage = struct.pack("!6I", *(random.getrandbits(32) for _ in range(6)))
                message = sync_message([sync_conn_v4(fields, fwd | IP_VS_CONN_F_SEQ_MASK,
                                                     garbage)])
                with Capture(topo, peer, "sync0", f"udp port {SYNC_PORT}",
                             tmp_path / "s.pcap", snaplen=SYNC_SNAPLEN) as cap:
                    survives(lab, sock, lambda: send_sync(topo, peer, message))
            moved = delta(before, lab.stats())
            assert moved.get("sync_seq_ignored") == 1, moved
            records = [r for r in sync_records(cap, SYNC_LB) if r[0] == cport]
            assert records, "the master sent nothing about the session"
            assert not [r for r in records if r[1] & IP_VS_CONN_F_SEQ_MASK or r[2]], records
        finally:
            stop_sync(topo)
            lab.close()
    finally:
        topo.down()


# ---------------------------------------------------------------- PMTU

def far_client(topo: Topology, family: int) -> str:
    """A namespace ``far`` behind the client namespace, which routes for it
    with a 1400-byte MTU towards it (and answers too big packets with ICMP
    errors, as a router on the client's path)."""
    far = topo.prefix + "far"
    netlab.run(["ip", "netns", "add", far])
    topo.created.append(far)
    netlab.run(["ip", "-n", topo.client, "link", "add", "eth1", "type", "veth", "peer",
                "name", "eth0", "netns", far])
    topo.sysctl(topo.client, net__ipv4__ip_forward=1, net__ipv6__conf__all__forwarding=1)
    topo.sysctl(far, net__ipv6__conf__all__accept_dad=0, net__ipv6__conf__default__accept_dad=0)
    lines = ["link set eth1 up"]
    far_lines = ["link set lo up", "link set eth0 up"]
    for fam in (4, 6):
        addr, gw, net = FAR[fam]
        plen = net.split("/")[1]
        nodad = " nodad" if fam == 6 else ""
        # (replacing the prefix route the address made: metric 256 on IPv6)
        lines += [f"addr add {gw}/{plen} dev eth1{nodad}",
                  f"route replace {net} dev eth1" + (" metric 256" if fam == 6 else "")
                  + " mtu lock 1400"]
        far_lines += [f"addr add {addr}/{plen} dev eth0{nodad}", f"route add default via {gw}"]
    topo.ip_batch(topo.client, lines)
    topo.ip_batch(far, far_lines)
    topo.ip_batch(topo.lb, [f"route add {FAR[4][2]} via {netlab.CLIENT4}",
                            f"route add {FAR[6][2]} via {netlab.CLIENT6}"])
    topo.sh(far, f"ping -c1 -W5 {netlab.vip(family)}")
    return far


def test_pmtu_through_synproxy(any_lab):
    """A client behind a 1400-byte hop: the hop's "fragmentation needed" /
    "packet too big" errors about the balancer's full-sized segments reach
    the real server with its own sequence numbers, it lowers its path MTU,
    and a 2 MB stream completes."""
    lab = any_lab
    topo = lab.topo
    far = far_client(topo, lab.family)
    sock = netlab.connect(topo, far, lab.vip, PORT, timeout=60)
    with sock:
        whoami.whoami_tcp(sock)
        stream = PacedEcho(sock, blocks=128, pause=0)
        ok = stream.finish(120)
        assert ok, (f"stalled at {stream.received} of {128 * PacedEcho.BLOCK} bytes, "
                    f"{stream.error}\n{lab.diagnose()}")


# ---------------------------------------------------------------- held segments

TRACEFS = Path("/sys/kernel/tracing")
#: kprobe events: the address of each device unregistered, and the input
#: device of each packet IPVS's NAT transmitter sends (skb->dev, 16 bytes
#: into struct sk_buff on both kernel lines)
PROBES = ("p:lvs_sp/unreg unregister_netdevice_queue dev=%di:x64",
          "p:lvs_sp/nat4 ip_vs:ip_vs_nat_xmit dev=+16(%di):x64",
          "p:lvs_sp/nat6 ip_vs:ip_vs_nat_xmit_v6 dev=+16(%di):x64")


def _append(path: Path, lines: Iterable[str]) -> None:
    """Write each line to a tracefs file without truncating it (open(path,
    "a") would seek to its end, which tracefs refuses with EINVAL)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        for line in lines:
            os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


class DeviceTrace:
    """Which input devices the packets IPVS sends to NAT real servers still
    point to, and which devices were unregistered (kprobe events)."""

    def __enter__(self) -> "DeviceTrace":
        if not (TRACEFS / "kprobe_events").exists():
            netlab.run(f"mount -t tracefs nodev {TRACEFS}")
        _append(TRACEFS / "kprobe_events", PROBES)
        (TRACEFS / "trace").write_text("")
        (TRACEFS / "events/lvs_sp/enable").write_text("1")
        return self

    def __exit__(self, *exc: object) -> None:
        (TRACEFS / "events/lvs_sp/enable").write_text("0")
        _append(TRACEFS / "kprobe_events",
                ["-:" + probe.split()[0][2:] for probe in PROBES])

    @staticmethod
    def events(name: str) -> list[str]:
        return [line for line in (TRACEFS / "trace").read_text().splitlines()
                if f" {name}: " in line]

    def gone(self) -> set[str]:
        """Addresses of the devices unregistered since the start."""
        return {line.split("dev=")[1].split()[0] for line in self.events("unreg")}

    def sent_from(self) -> list[str]:
        """skb->dev of every packet sent to a NAT real server, in order."""
        return [line.split("dev=")[1].split()[0]
                for line in self.events("nat4") + self.events("nat6")]


def rewire_client(topo: Topology) -> None:
    """The client's link to the balancer again, as Topology.up() made it."""
    topo._wire_client()
    topo.ip_batch(topo.lb, ["link set eth0 up", f"addr add {netlab.LB_C4}/24 dev eth0",
                            f"addr add {netlab.LB_C6}/64 dev eth0 nodad",
                            f"route add {SPOOF_NET[4]} via {netlab.CLIENT4}",
                            f"route add {SPOOF_NET[6]} via {netlab.CLIENT6}"])
    topo.wait_reachable()


def release_held(topo: Topology, family: int) -> None:
    """The silent real servers answer: the held segments go to them."""
    # the RS's answers need a route towards the client to reach IPVS (in
    # FORWARD): any device will do; the data segments exceed the link
    topo.ip_batch(topo.lb, [f"route add {CLIENT_NET[family]} dev vip0",
                            "link set br0 mtu 1280"])
    silence(topo, False)
    netlab.wait_for(lambda: established(topo, PORT) >= 3, timeout=30)
    topo.ip_batch(topo.lb, [f"route del {CLIENT_NET[family]} dev vip0",
                            "link set br0 mtu 1500"])


def silence(topo: Topology, on: bool) -> None:
    """Every TCP segment the real servers send is lost (or no longer)."""
    for name in topo.servers:
        if on:
            topo.sh(name, "tc qdisc add dev eth0 clsact && " + " && ".join(
                f"tc filter add dev eth0 egress protocol {proto} flower ip_proto tcp "
                f"action drop" for proto in ("ip", "ipv6")))
        else:
            topo.sh(name, "tc qdisc del dev eth0 clsact", check=False)


@pytest.mark.parametrize("rs_answers", [False, True], ids=["retries-end", "rs-answers"])
@pytest.mark.parametrize("family", [4, 6])
def test_input_device_goes_while_segments_are_held(family, rs_answers, kmsg_mark):
    """Clients whose handshakes with a silent real server are pending, with
    segments held, lose their link: the balancer's client-side interface is
    deleted.  Then either the retries run out, or the real server answers
    and the held segments go to it, the data segments too large for the
    real servers' link (so that the balancer sends an ICMP error about
    them, which looks at their input device).  No packet the balancer sends
    still points to the deleted device (kprobe events, which see what a
    use after free would read), the kernel stays clean, and once the link
    is back the balancer serves clients."""
    topo = make_topo()
    try:
        lab = Lab(topo, family, "nat")
        try:
            lab.sysctl(synproxy_syn_retry=6)
            silence(topo, True)
            socks = []
            try:
                for _ in range(3):
                    sock = lab.connect(timeout=20)
                    sock.sendall(b"hello\n" + b"x" * 3000)
                    socks.append(sock)
                netlab.wait_for(lambda: lab.stats().get("synproxy_syn_retry", 0) > 0)
                before = lab.stats()
                with DeviceTrace() as trace:
                    topo.sh(topo.lb, "ip link del eth0")
                    gone = trace.gone()
                    assert gone, trace.events("unreg")
                    if rs_answers:
                        release_held(topo, family)
                        sent = trace.sent_from()
                        assert sent and not gone & set(sent), (gone, sent)
                if not rs_answers:
                    netlab.wait_for(lambda: delta(before, lab.stats())
                                    .get("synproxy_rs_error", 0) >= 3, timeout=30)
            finally:
                silence(topo, False)
                for sock in socks:
                    sock.close()
            rewire_client(topo)
            assert lab.echo(64 * 1024)[0] in ("rs1", "rs2")
        finally:
            lab.close()
    finally:
        topo.down()
    assert kernel_log_problems(kmsg_mark()) == []


# ---------------------------------------------------------------- sysctls

def test_extension_sysctls_hidden_in_user_namespaces():
    """A network namespace owned by a user namespace shows none of our
    sysctls (6.1 shows no IPVS sysctl there at all) and cannot set them;
    the balancer's namespace has them all."""
    topo = Topology(n_rs=1)
    with topo:
        topo.ipvsadm("-Ln")
        ours = topo.sh(topo.lb, f"ls {SYSCTL}").stdout.split()
        assert {"synproxy_defer", "defence_tcp_drop", "fullnat_lport_min"} <= set(ours)
        assert set(ours) <= {p.name for p in Path(SYSCTL).iterdir()}   # the guest's own
        script = (f"ls {SYSCTL} 2>/dev/null; "
                  f"echo 1 > {SYSCTL}/synproxy_defer 2>/dev/null && echo WROTE; true")
        res = netlab.run(["unshare", "--user", "--map-root-user", "--net", "sh", "-c", script])
        names = set(res.stdout.split())
        assert "WROTE" not in names, res.stdout
        extension = {n for n in ours if n.startswith(("synproxy_", "defence_", "fullnat_"))
                     or n == "conn_expire_tcp_rst"}
        assert not names & extension, names & extension
        assert int(topo.sh(topo.lb, f"cat {SYSCTL}/synproxy_defer").stdout) == 0


# ---------------------------------------------------------------- netlink

@pytest.mark.parametrize("forward", [Forward.LOCAL, Forward.BYPASS],
                         ids=["local-node", "bypass"])
def test_synproxy_refuses_local_node_and_bypass(nat4, forward, tmp_path):
    """A SYNPROXY service refuses such a real server (add and edit), a
    service with one refuses SYNPROXY, each with EOPNOTSUPP and nothing
    changed; ipvsadm-py says so."""
    lab = nat4
    snapshot = lambda: (sorted((s.port, s.synproxy) for s in lab.ipvs.services()),   # noqa: E731
                        {s.port: sorted((str(d.addr), d.forward)
                                        for d in lab.ipvs.dests(s))
                         for s in lab.ipvs.services()})
    odd = Dest(addr=IPAddress("10.0.2.60"), port=PORT, af=lab.af, forward=forward)
    before = snapshot()
    with pytest.raises(IPVSError) as err:
        lab.ipvs.add_dest(lab.tcp, odd)
    assert err.value.errno == 95, err.value
    with pytest.raises(IPVSError) as err:
        lab.ipvs.edit_dest(lab.tcp, Dest(addr=IPAddress(netlab.rs_addr(1)), port=PORT,
                                         af=lab.af, forward=forward))
    assert err.value.errno == 95, err.value
    assert snapshot() == before
    lab.ipvs.add_dest(lab.plain, Dest(addr=IPAddress("10.0.2.60"), port=PLAIN_PORT,
                                      af=lab.af, forward=forward))
    before = snapshot()
    with pytest.raises(IPVSError) as err:
        lab.ipvs.set_synproxy(lab.plain, True)
    assert err.value.errno == 95, err.value
    assert snapshot() == before
    # the command line: the same refusal, in words, nothing changed
    res = lab.topo.sh(lab.topo.lb, f"{IPVSADM_PY} -E -t {lab.vip}:{PLAIN_PORT} -s rr "
                                   f"-j enable", check=False)
    assert res.returncode != 0 and "not supported" in res.stderr.lower(), res
    assert snapshot() == before


# ---------------------------------------------------------------- spoofed SYN

@pytest.mark.parametrize("family", [4, 6])
def test_spoofed_syn_leaves_a_synproxy_fullnat_stream_alone(family):
    """A SYN with the exact tuple of an established FULLNAT+SYNPROXY
    session and another sequence number, from a third party, in the middle
    of a stream: the stream completes byte-exact."""
    topo = make_topo()
    try:
        lab = Lab(topo, family, "fnat")
        try:
            with lab.connect() as sock:
                cport = sock.getsockname()[1]
                whoami.whoami_tcp(sock)
                syn = tcp_packet(family, netlab.client_addr(family), lab.vip, cport, PORT, "S",
                                 random.getrandbits(32))
                survives(lab, sock, lambda: netlab.send_raw(topo, topo.client, syn, family))
        finally:
            lab.close()
    finally:
        topo.down()
