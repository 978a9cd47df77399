"""Prove that TOA (toa.ko, or its BPF variant with ``--bpf``) shows client
addresses, without a balancer.

Runs in a network namespace of its own (``unshare(CLONE_NEWNET)``, gone
when the process ends), so a real server's network is never touched::

        private namespace
   +------------------------------------------------------+
   | lo: 192.0.2.1, 2001:db8:5::1   (the "real server")   |
   | tun toa0 <- 198.51.100.0/24, 2001:db8:6::/64         |
   |            (the "balancer's" local addresses)        |
   +------------------------------------------------------+

Crafted connections (tools/lvs_tools/toa_craft.py) come from 198.51.100.2 carrying
TOA for 203.0.113.7 (and IPv6 equivalents); the check is what accept()
and getpeername() of real listening sockets return.  Standard library
only.  ``python3 -m lvs_tools.toa_selftest`` prints one line per check and
exits 0 when all passed.

When the module only believes TOA from some peers (its ``trusted``
parameter), the "balancer" takes an address inside the first trusted
prefix of each family instead (a family without one expects the real
peer), and one more check sends TOA from an address outside every
prefix and expects the real peer.
"""

from __future__ import annotations

import ctypes
import dataclasses
import ipaddress
import os
import socket
import subprocess
import sys
from typing import Callable

from lvs_tools import toa_craft as craft

CLONE_NEWNET = 0x40000000
RS4, RS6 = "192.0.2.1", "2001:db8:5::1"
LB4, LB6 = "198.51.100.2", "2001:db8:6::2"
CLIENT4, CLIENT6 = "203.0.113.7", "2001:db8:7::7"
PORT = 8080
TRUSTED_PARAM = "/sys/module/toa/parameters/trusted"
# Candidates for a peer outside every trusted prefix.
OUTSIDERS = ("198.51.100.99", "203.0.113.99", "100.64.0.99", "192.0.2.99")
Net = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclasses.dataclass
class Peers:
    """Where the crafted balancer sends from, and whether toa believes it."""

    lb4: str = LB4
    lb6: str = LB6
    trusted4: bool = True
    trusted6: bool = True
    outsider: str | None = None     # set when the module trusts some peers only


def read_trusted(path: str = TRUSTED_PARAM) -> list[Net]:
    """The module's trusted prefixes ([] = any peer, or an older module)."""
    try:
        text = open(path).read().strip()
    except OSError:
        return []
    return [ipaddress.ip_network(item) for item in text.split(",") if item]


def plan_peers(trusted: list[Net]) -> Peers:
    """Balancer addresses inside the first trusted prefix of each family."""
    if not trusted:
        return Peers()
    peers = Peers(trusted4=False, trusted6=False)
    for net in trusted:
        host = _host_in(net)
        if net.version == 4 and not peers.trusted4 and host:
            peers.lb4, peers.trusted4 = host, True
        elif net.version == 6 and not peers.trusted6 and host:
            peers.lb6, peers.trusted6 = host, True
    peers.outsider = next((a for a in OUTSIDERS
                           if not any(ipaddress.ip_address(a) in n for n in trusted)), None)
    return peers


def _host_in(net: Net) -> str | None:
    """An address of ``net`` that is not one of the "real server's"."""
    first = net.network_address + (1 if net.num_addresses > 2 else 0)
    for offset in range(min(net.num_addresses, 4)):
        addr = str(first + offset) if first + offset in net else None
        if addr and addr not in (RS4, RS6):
            return addr
    return None


@dataclasses.dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def enter_private_netns() -> None:
    """Move this (single-threaded) process into a new network namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWNET): {os.strerror(err)} (needs root)")


def setup(peers: Peers, netns: str | None = None) -> craft.TunPeer:
    """The tun device and addresses of the drawing, in the current namespace:
    each balancer (and outsider) address is routed into the tun."""
    tun = craft.Tun("toa0")
    routed = [f"{peers.lb4}/32", f"{peers.lb6}/128"] + \
        ([f"{peers.outsider}/32"] if peers.outsider else [])
    for cmd in craft.ip_commands(tun.name, [f"{RS4}/32", f"{RS6}/128"], routed, netns):
        subprocess.run(cmd, check=True, capture_output=True)
    return craft.TunPeer(tun)


def listener(family: int, addr: str, port: int = PORT) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6 and addr == "::":
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind((addr, port))
    sock.listen(16)
    sock.settimeout(10)
    return sock


def _peer(addr: tuple) -> tuple[str, int]:
    return addr[0], addr[1]


def connect_and_accept(peer: craft.TunPeer, server: socket.socket, src: str, dst: str,
                       ack_options: bytes = b"", data: bytes = b"",
                       data_options: bytes = b"") -> tuple[tuple, tuple]:
    """One crafted connection; returns (accept()'s peer, getpeername()) after
    the optional first data segment has reached the server."""
    with craft.CraftedConnection(peer, src, dst, server.getsockname()[1]) as conn:
        conn.handshake(ack_options)
        if data:
            conn.send(data, data_options)
            conn.wait_acked()   # processed, so accept() already sees the client
        accepted, addr = server.accept()
        with accepted:
            if data:
                accepted.settimeout(10)
                got = b""
                while len(got) < len(data):
                    got += accepted.recv(len(data) - len(got))
            name = accepted.getpeername()
        conn.reset()
    return _peer(addr), _peer(name)


def _expect(name: str, got: tuple[tuple, tuple], want: tuple[str, int]) -> Check:
    ok = got[0] == want and got[1] == want
    return Check(name, ok, f"accept() {got[0]}, getpeername() {got[1]}, expected {want}")


def _expect_real(name: str, got: tuple[tuple, tuple], real: str) -> Check:
    ok = got[0][0] == real and got[1][0] == real
    return Check(name, ok, f"accept() {got[0]}, getpeername() {got[1]}, expected {real}")


def checks(peer: craft.TunPeer, peers: Peers) -> list[Check]:
    """Each check in turn; servers are made and closed per check."""
    results = []
    plans: list[tuple[str, Callable[[], Check]]] = [
        ("ipv4 TOA on the handshake ACK", lambda: _v4_ack(peer, peers)),
        ("no TOA shows the real peer", lambda: _v4_plain(peer, peers)),
        ("ipv4 TOA on the first data segment", lambda: _v4_data(peer, peers)),
        ("ipv6 TOA on an IPv6 listener", lambda: _v6_ack(peer, peers)),
        ("ipv4 TOA on a dual-stack IPv6 listener", lambda: _mapped(peer, peers)),
    ]
    if peers.outsider:
        plans.append(("TOA from an untrusted peer is ignored",
                      lambda: _untrusted(peer, peers)))
    for name, plan in plans:
        try:
            results.append(plan())
        except (OSError, craft.HandshakeError) as exc:
            results.append(Check(name, False, f"{type(exc).__name__}: {exc}"))
    return results


def _seen(name: str, got: tuple[tuple, tuple], client: tuple[str, int], real: str,
          trusted: bool) -> Check:
    """The client when the balancer is trusted, else the balancer itself."""
    if trusted:
        return _expect(name, got, client)
    return _expect_real(name + " (balancer not trusted: real peer)", got, real)


def _v4_ack(peer: craft.TunPeer, peers: Peers) -> Check:
    with listener(socket.AF_INET, RS4) as server:
        got = connect_and_accept(peer, server, peers.lb4, RS4,
                                 craft.toa_option(CLIENT4, 40001))
    return _seen("ipv4 TOA on the handshake ACK", got, (CLIENT4, 40001), peers.lb4,
                 peers.trusted4)


def _v4_plain(peer: craft.TunPeer, peers: Peers) -> Check:
    with listener(socket.AF_INET, RS4) as server:
        got = connect_and_accept(peer, server, peers.lb4, RS4)
    return _expect_real("no TOA shows the real peer", got, peers.lb4)


def _v4_data(peer: craft.TunPeer, peers: Peers) -> Check:
    with listener(socket.AF_INET, RS4) as server:
        got = connect_and_accept(peer, server, peers.lb4, RS4,
                                 data=b"GET / HTTP/1.0\r\n\r\n",
                                 data_options=craft.toa_option(CLIENT4, 40003))
    return _seen("ipv4 TOA on the first data segment", got, (CLIENT4, 40003), peers.lb4,
                 peers.trusted4)


def _v6_ack(peer: craft.TunPeer, peers: Peers) -> Check:
    with listener(socket.AF_INET6, RS6) as server:
        got = connect_and_accept(peer, server, peers.lb6, RS6,
                                 craft.toa_option(CLIENT6, 40004))
    return _seen("ipv6 TOA on an IPv6 listener", got, (CLIENT6, 40004), peers.lb6,
                 peers.trusted6)


def _mapped(peer: craft.TunPeer, peers: Peers) -> Check:
    with listener(socket.AF_INET6, "::") as server:
        got = connect_and_accept(peer, server, peers.lb4, RS4,
                                 craft.toa_option(CLIENT4, 40005))
    return _seen("ipv4 TOA on a dual-stack IPv6 listener", got,
                 (f"::ffff:{CLIENT4}", 40005), f"::ffff:{peers.lb4}", peers.trusted4)


def _untrusted(peer: craft.TunPeer, peers: Peers) -> Check:
    assert peers.outsider
    with listener(socket.AF_INET, RS4) as server:
        got = connect_and_accept(peer, server, peers.outsider, RS4,
                                 craft.toa_option(CLIENT4, 40006))
    return _expect_real("TOA from an untrusted peer is ignored", got, peers.outsider)


def run(bpf_trusted: list[Net] | None = None) -> list[Check]:
    """All checks, in the current namespace (which they change: use a new
    one).  ``bpf_trusted`` (the BPF variant's trusted prefixes, ``[]`` for
    any peer) checks the BPF variant, else toa.ko."""
    if bpf_trusted is None:
        if not os.path.exists("/proc/net/toa_stats"):
            return [Check("toa.ko is loaded", False, "/proc/net/toa_stats is missing")]
        trusted = read_trusted()
    else:
        trusted = bpf_trusted
    peers = plan_peers(trusted)
    peer = setup(peers)
    try:
        return checks(peer, peers)
    finally:
        peer.close()


def main(argv: list[str] | None = None) -> int:
    """``--bpf [PREFIX,...]``: check the BPF variant (which must be attached
    to this process's cgroup), whose trusted prefixes the caller names."""
    args = sys.argv[1:] if argv is None else argv
    bpf_trusted = None
    if args[:1] == ["--bpf"]:
        bpf_trusted = [ipaddress.ip_network(item) for item in
                       (args[1] if len(args) > 1 else "").split(",") if item]
    elif args:
        print(f"usage: {sys.argv[0]} [--bpf [PREFIX,...]]", file=sys.stderr)
        return 2
    craft.ensure_tun_device()   # before unshare: modprobe needs no namespace
    enter_private_netns()
    results = run(bpf_trusted)
    for check in results:
        print(check.line(), flush=True)
    return 0 if results and all(c.ok for c in results) else 1


if __name__ == "__main__":
    sys.exit(main())
