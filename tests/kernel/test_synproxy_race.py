"""SYNPROXY: one session per client tuple when the cookie ACK and the
client's first data segment are processed on two CPUs at once.

The lab of test_synproxy.py.  The client's namespace sends, from raw
sockets, a SYN per flow, reads the balancer's SYN/ACK (its cookie) from an
AF_PACKET socket, then has two threads, pinned to two different CPUs,
send the handshake ACKs (one thread) and the first data segments (the
other), each its list in flow order, starting together.  A veth delivers
a packet on the sending CPU, so both segments of a flow can meet in the
balancer's SYNPROXY code at the same time: both miss the session lookup,
both prove the cookie.  Counted afterwards: sessions per client port
(/proc/net/ip_vs_conn), SYNs at the real servers per flow (FULLNAT:
distinct local address and port per ISN) and synproxy_ok_ack against the
number of flows.

The guests run TCG single-threaded: the two vCPUs take turns on one host
thread and change at QEMU's kick timer (every 100 ms) or an IPI, so the
two segments of a flow overlap only when such a change falls inside the
balancer's lookup-to-hash window.  The threads run through their lists
as fast as they can, so that the running one is often inside that window
when the change comes; the test counts what happened over FLOWS flows
and prints the figures (no timing in the assertions).
"""

from __future__ import annotations

import os
import random
import socket
import struct
import threading
import time
from collections import Counter

import pytest

from tests import tiers
from tests.kernel.test_synproxy import PORT, Lab
from tests.kernel.test_synproxy_robust import _lab
from tools import netlab, whoami
from tools.lvs_tools.toa_craft import mss_option, tcp_packet

pytestmark = pytest.mark.kernel

FLOWS = int(os.environ.get("LVS_RACE_FLOWS", "2000"))   # per lab
SANITIZER_FLOWS = 500     # the debug kernel (lockdep on the flow locks): 4x slower
ROUND = 500             # flows per SYN round: their cookies stay valid
BASE_PORT = 20000
PAYLOAD = b"race\n"
ETH_P_ALL = 0x0003
SO_RCVBUFFORCE = 33
TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x02, 0x04, 0x08, 0x10


@pytest.fixture(params=["fnat-4", "nat-4", "fnat-6", "nat-6"])
def race_lab(request):
    mode, family = request.param.split("-")
    yield from _lab(int(family), mode)


# ---------------------------------------------------------------- packets

def segment(src: str, dst: str, sport: int, seq: int, ack: int, flags: int,
            payload: bytes = b"") -> bytes:
    """An IPv4/IPv6 TCP segment to the VIP's PORT (a SYN with an MSS option)."""
    return tcp_packet(src, dst, sport, PORT, seq, ack, flags,
                      mss_option(1460) if flags & TCP_SYN else b"", payload)


def tcp_of_frame(frame: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(source address, destination address, TCP header) of an Ethernet frame."""
    ethertype = struct.unpack("!H", frame[12:14])[0]
    if ethertype == 0x0800 and len(frame) >= 34 and frame[23] == socket.IPPROTO_TCP:
        ihl = (frame[14] & 0x0F) * 4
        return frame[26:30], frame[30:34], frame[14 + ihl:14 + ihl + 20]
    if ethertype == 0x86DD and len(frame) >= 74 and frame[20] == socket.IPPROTO_TCP:
        return frame[22:38], frame[38:54], frame[54:74]
    return None


def packet_socket(lab: Lab, ns: str) -> socket.socket:
    with lab.topo.inside(ns):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    # room for a whole round's frames: they are read after the sending
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 << 20)
    sock.bind(("eth0", ETH_P_ALL))
    sock.settimeout(0.2)
    return sock


class SynCounter:
    """SYNs to PORT arriving at the real servers: packets, and distinct
    (source address, source port, sequence number), which a retry of the
    same SYN does not add to."""

    def __init__(self, lab: Lab) -> None:
        self.socks = [packet_socket(lab, ns) for ns in lab.topo.servers]
        self.packets = 0
        self.seen: set[tuple[bytes, int, int]] = set()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._read, args=(s,), daemon=True)
                        for s in self.socks]
        for thread in self.threads:
            thread.start()

    def _read(self, sock: socket.socket) -> None:
        while not self.stop.is_set():
            try:
                frame, addr = sock.recvfrom(2048)
            except (socket.timeout, OSError):
                continue
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            got = tcp_of_frame(frame)
            if not got:
                continue
            src, _, th = got
            sport, dport, seq = struct.unpack("!HHI", th[:8])
            if dport == PORT and th[13] & (TCP_SYN | TCP_ACK) == TCP_SYN:
                self.packets += 1
                self.seen.add((src, sport, seq))

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(5)
        for sock in self.socks:
            sock.close()


# ---------------------------------------------------------------- the race

def cookies(lab: Lab, flows: dict[int, int]) -> dict[int, int]:
    """Send a SYN per flow (client port -> ISN); the balancer's cookie per
    client port, read from its SYN/ACKs."""
    src = netlab.client_addr(lab.family)
    af = socket.AF_INET if lab.family == 4 else socket.AF_INET6
    sniff = packet_socket(lab, lab.topo.client)
    with lab.topo.inside(lab.topo.client):
        raw = socket.socket(af, socket.SOCK_RAW, socket.IPPROTO_RAW)
    got: dict[int, int] = {}
    try:
        for sport, isn in flows.items():
            raw.sendto(segment(src, lab.vip, sport, isn, 0, TCP_SYN), (lab.vip, 0))
        deadline = time.monotonic() + 60
        while len(got) < len(flows) and time.monotonic() < deadline:
            try:
                frame, _ = sniff.recvfrom(2048)
            except socket.timeout:
                continue
            parsed = tcp_of_frame(frame)
            if not parsed:
                continue
            sport, dport, seq, ack = struct.unpack("!HHII", parsed[2][:12])
            if (sport == PORT and dport in flows and parsed[2][13] & 0x12 == 0x12
                    and ack == (flows[dport] + 1) % (1 << 32)):
                got[dport] = seq
    finally:
        sniff.close()
        raw.close()
    assert len(got) == len(flows), f"SYN/ACKs for {len(got)} of {len(flows)} SYNs"
    return got


def race(lab: Lab, flows: dict[int, int], cookie: dict[int, int]) -> None:
    """ACKs from a thread on CPU 0, first data segments from one on CPU 1."""
    src = netlab.client_addr(lab.family)
    af = socket.AF_INET if lab.family == 4 else socket.AF_INET6
    lists = [[segment(src, lab.vip, sport, isn + 1, cookie[sport] + 1, flags, payload)
              for sport, isn in flows.items()]
             for flags, payload in ((TCP_ACK, b""), (TCP_ACK | TCP_PSH, PAYLOAD))]
    socks = []
    for _ in lists:
        with lab.topo.inside(lab.topo.client):
            socks.append(socket.socket(af, socket.SOCK_RAW, socket.IPPROTO_RAW))
    start = threading.Barrier(len(lists))
    errors: list[BaseException] = []

    def send(cpu: int, sock: socket.socket, packets: list[bytes]) -> None:
        try:
            os.sched_setaffinity(0, {cpu})
            dst = (lab.vip, 0)
            start.wait(30)
            for packet in packets:
                sock.sendto(packet, dst)
        except BaseException as exc:   # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(cpu, sock, packets))
               for cpu, (sock, packets) in enumerate(zip(socks, lists))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    for sock in socks:
        sock.close()
    assert not errors, errors


def sessions_per_port(lab: Lab, ports: set[int]) -> Counter:
    count: Counter = Counter()
    for line in lab.conns():
        fields = line.split()
        if fields[0] == "TCP" and int(fields[2], 16) in ports:
            count[int(fields[2], 16)] += 1
    return count


def test_racing_ack_and_data_make_one_session(race_lab):
    """Over FLOWS flows whose cookie ACK and first data segment race on two
    CPUs: every client port has exactly one session, synproxy_ok_ack
    counts one proven cookie per flow, and (FULLNAT) as many distinct SYNs
    reach the real servers as there are flows (a second session of a flow
    sends its own, from another local port)."""
    lab = race_lab
    topo = lab.topo
    assert len(os.sched_getaffinity(0)) >= 2, "the race needs a guest with two CPUs"
    # the client's kernel has no socket for these flows: no RSTs from it
    topo.sh(topo.client, "nft add table inet race && "
            "nft add chain inet race out '{ type filter hook output priority 0; }' && "
            f"nft add rule inet race out tcp dport {PORT} tcp flags rst drop")
    # the real servers keep every connection in their accept queues (no
    # thread per connection)
    for server in [s for s in lab.servers if s.sock.type == socket.SOCK_STREAM
                   and s.sock.getsockname()[1] == PORT]:
        lab.servers.remove(server)
        server.close()
    listeners = [whoami.listen(topo.inside, ns, lab.family, socket.SOCK_STREAM, PORT)
                 for ns in topo.servers]
    for listener in listeners:
        listener.listen(4096)
    total = tiers.reduced(FLOWS, SANITIZER_FLOWS)
    rnd = random.Random(total * lab.family + len(lab.mode))
    syns = SynCounter(lab)
    before = lab.stats()
    all_flows: dict[int, int] = {}
    try:
        for first in range(BASE_PORT, BASE_PORT + total, ROUND):
            flows = {sport: rnd.randrange(1 << 32)
                     for sport in range(first, min(first + ROUND, BASE_PORT + total))}
            race(lab, flows, cookies(lab, flows))
            all_flows.update(flows)
        time.sleep(0.5)     # the real servers' SYNs reach the counter
        sessions = sessions_per_port(lab, set(all_flows))
    finally:
        syns.close()
        for listener in listeners:
            listener.close()
    moved = lab.stats()
    ok_ack = moved.get("synproxy_ok_ack", 0) - before.get("synproxy_ok_ack", 0)
    doubled = {port: n for port, n in sessions.items() if n > 1}
    missing = set(all_flows) - set(sessions)
    figures = (f"{lab.mode}-{lab.family}: {len(all_flows)} flows, "
               f"{len(doubled)} client ports with more than one session, "
               f"{len(missing)} without one, synproxy_ok_ack {ok_ack}, "
               f"SYNs at the real servers: {syns.packets} packets, "
               f"{len(syns.seen)} distinct (source, port, ISN)")
    print(figures)
    assert not doubled, f"{figures}; doubled: {sorted(doubled.items())[:20]}"
    assert not missing, f"{figures}; missing: {sorted(missing)[:20]}"
    assert ok_ack == len(all_flows), figures
    if lab.mode == "fnat":
        # each session's SYN has its own local port (NAT: the client's tuple)
        assert len(syns.seen) == len(all_flows), figures
