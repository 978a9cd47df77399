"""The lab of the TOA kernel tests: a real server fed by a crafted balancer.

::

        namespace "toars"
   +-------------------------------------------------------------+
   | lo:  10.0.2.11, 2001:db8:2::11            (the real server)  |
   | tun toa0 <- 10.0.3.0/24, 2001:db8:3::/64  (balancer LADDRs)  |
   +-------------------------------------------------------------+
        ^  segments built with scapy, written to / read from the
        |  tun fd by tools/lvs_tools/toa_craft.py (the balancer's side)

Servers are real listening sockets in "toars"; what they see from
accept() and getpeername() is what the tests check, together with the
counters of /proc/net/toa_stats.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import subprocess
import time
from typing import Callable, Iterator

import pytest
from pyroute2 import netns as pyr_netns
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw

from lvs_tools import toa_craft as craft
from lvs_tools.toa_installer import read_stats

NS = "toars"
RS4, RS6 = "10.0.2.11", "2001:db8:2::11"
LB4, LB6 = "10.0.3.1", "2001:db8:3::1"
CLIENT4, CLIENT6 = "198.51.100.7", "2001:db8:c::7"


def scapy_packet(src: str, dst: str, sport: int, dport: int, seq: int, ack: int,
                 flags: int, options: bytes = b"", payload: bytes = b"") -> bytes:
    """The crafted segment, built by scapy.  The option bytes go verbatim
    behind a data offset that covers them, so malformed options survive."""
    if len(options) % 4:
        raise ValueError("options must fill 32-bit words")
    ip = IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)
    tcp = TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, window=65535,
              dataofs=5 + len(options) // 4)
    return bytes(ip / tcp / Raw(options + payload))


@dataclasses.dataclass
class Lab:
    peer: craft.TunPeer
    next_port: int = 30000

    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        pyr_netns.pushns(NS)
        try:
            yield
        finally:
            pyr_netns.popns()

    def listen(self, family: int, addr: str, port: int, v6only: bool = True) -> socket.socket:
        with self.inside():
            sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
        sock.bind((addr, port))
        sock.listen(128)
        sock.settimeout(20)
        return sock

    def connection(self, src: str, dst: str, dport: int) -> craft.CraftedConnection:
        self.next_port += 1
        return craft.CraftedConnection(self.peer, src, dst, dport, sport=self.next_port,
                                       build=scapy_packet, timeout=20)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    _ip("netns", "add", NS)
    try:
        pyr_netns.pushns(NS)
        try:
            tun = craft.Tun("toa0")
        finally:
            pyr_netns.popns()
        for cmd in craft.ip_commands(tun.name, [f"{RS4}/32", f"{RS6}/128"],
                                     ["10.0.3.0/24", "2001:db8:3::/64"], NS):
            subprocess.run(cmd, check=True, capture_output=True)
        peer = craft.TunPeer(tun)
        try:
            yield Lab(peer)
        finally:
            peer.close()
    finally:
        _ip("netns", "del", NS)


def stats() -> dict[str, int]:
    found = read_stats()
    assert found is not None, "/proc/net/toa_stats is missing: toa.ko not loaded"
    return found


class Counters:
    """Counter changes since creation: ``Counters()`` ... ``.delta()``."""

    def __init__(self) -> None:
        self.before = stats()

    def delta(self) -> dict[str, int]:
        after = stats()
        return {k: after[k] - self.before.get(k, 0) for k in after
                if after[k] != self.before.get(k, 0)}


def live(counters: dict[str, int]) -> int:
    """Records alive: made and not yet freed."""
    return counters["entry_alloc"] - counters["entry_free"]


def wait_records_freed(live_at_most: int = 0, timeout: float = 30,
                       live: Callable[[dict[str, int]], int] = live) -> dict[str, int]:
    """Poll until at most ``live_at_most`` records are alive (RCU frees them
    a little after their sockets); returns the counters then."""
    deadline = time.monotonic() + timeout
    while True:
        now = stats()
        if live(now) <= live_at_most or time.monotonic() > deadline:
            return now
        time.sleep(0.2)


def accept_peer(server: socket.socket) -> tuple[socket.socket, tuple[str, int]]:
    conn, addr = server.accept()
    return conn, (addr[0], addr[1])


def peername(sock: socket.socket) -> tuple[str, int]:
    addr = sock.getpeername()
    return addr[0], addr[1]


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    sock.settimeout(20)
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data
