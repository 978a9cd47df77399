"""A master/backup pair of balancers for the connection sync tests, and
sync v1 messages built by hand.

::

                 10.0.1.0/24                                10.0.2.0/24
              2001:db8:1::/64      +-------+  c0 / r0    2001:db8:2::/64
   +--------+                      |  lb1  | (master)
   | client | cbr ------+-- c0 ----|  .3   |---- r0 --+------ rbr | rs1 |
   | .2/::2 |           |          +-------+          |   .11/::11 +-----+
   +--------+           |              | s0 10.0.9.1  |
                        |              | (sync link)  |
                        |          +-------+          |
                        +-- c0 ----|  lb2  |---- r0 --+
                                   |  .4   | (backup)
                                   +-------+

The client's bridge (cbr) lives in its own namespace, the real server's
(rbr) in its own.  The client reaches the VIPs through the gateway .1/::1
of 10.0.1.0/24, the real server the local addresses through .1/::1 of
10.0.2.0/24; the active balancer holds those gateway addresses, the VIPs
and the local addresses.  A fail-over moves them by hand (as VRRP would):
the old master's links go down, the backup takes the addresses, the
client and the real server forget the old neighbour entries.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import socket
import struct
import threading
import time

from ipvsadm_py import IPVS
from tools import netlab

CLIENT = {4: "10.0.1.2", 6: "2001:db8:1::2"}
GW_C = {4: "10.0.1.1", 6: "2001:db8:1::1"}
GW_R = {4: "10.0.2.1", 6: "2001:db8:2::1"}
RS = {4: "10.0.2.11", 6: "2001:db8:2::11"}
VIP = {4: netlab.VIP4, 6: netlab.VIP6}
LADDR = {4: "10.0.3.1", 6: "2001:db8:3::1"}
SYNC_ADDR = ("10.0.9.1", "10.0.9.2")
SYNC_GROUP, SYNC_PORT = "224.0.0.81", 8848

# sync v1 (ip_vs_sync.c): an entry's type byte, its option types
OPT_SEQ, OPT_PE_DATA, OPT_PE_NAME, OPT_FNAT = 1, 2, 3, 0x30
FNAT_F_FULLNAT, FNAT_F_SYNPROXY = 0x01, 0x02
# struct ip_vs_fnat_seq flags that travel (their values are on the wire)
SEQ_INIT, SEQ_RS_ISN, SEQ_C_NXT, SP_EST = 0x1, 0x2, 0x4, 0x200
CONN_F_MASQ, CONN_F_FULLNAT, CONN_F_SYNPROXY = 0x0, 0x5, 0x8000
TCP_ESTABLISHED = 1


@dataclasses.dataclass
class Pair(netlab.Namespaces):
    """The namespaces of the drawing, named with ``prefix``."""

    prefix: str = "sy"
    active: str = ""

    def ns(self, name: str) -> str:
        return self.prefix + name

    @property
    def client(self) -> str:
        return self.ns("client")

    @property
    def rs(self) -> str:
        return self.ns("rs1")

    @property
    def lbs(self) -> tuple[str, str]:
        return self.ns("lb1"), self.ns("lb2")

    def ext_stats(self, ns: str) -> dict[str, int]:
        with self.inside(ns):
            return IPVS.ext_stats()

    def conns(self, ns: str) -> list[str]:
        """The lines of /proc/net/ip_vs_conn in ``ns`` (no header)."""
        return self.sh(ns, "cat /proc/net/ip_vs_conn").stdout.splitlines()[1:]

    # ------------------------------------------------------------ life cycle
    def _add_ns(self, name: str) -> None:
        super()._add_ns(name)
        netlab.run(["ip", "netns", "exec", name, "sysctl", "-qw",
             "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
             "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
             "net.ipv6.conf.all.keep_addr_on_down=1",
             "net.ipv6.conf.default.keep_addr_on_down=1"])

    def up(self) -> "Pair":
        for name in (self.client, self.rs, *self.lbs):
            self._add_ns(name)
        self.ip_batch(self.client, [
            "link add cbr type bridge", "link set cbr up",
            f"addr add {CLIENT[4]}/24 dev cbr", f"addr add {CLIENT[6]}/64 dev cbr nodad",
            f"route add {VIP[4]}/32 via {GW_C[4]}", f"route add {VIP[6]}/128 via {GW_C[6]}"])
        self.ip_batch(self.rs, [
            "link add rbr type bridge", "link set rbr up",
            f"addr add {RS[4]}/24 dev rbr", f"addr add {RS[6]}/64 dev rbr nodad",
            f"route add {netlab.LADDR_NET4} via {GW_R[4]}",
            f"route add {netlab.LADDR_NET6} via {GW_R[6]}"])
        for index, lb in enumerate(self.lbs, start=1):
            host = 2 + index
            links = (("c0", self.client, "cbr", "10.0.1", "2001:db8:1"),
                     ("r0", self.rs, "rbr", "10.0.2", "2001:db8:2"))
            for dev, peer, bridge, net4, net6 in links:
                port = f"{dev}l{index}"
                netlab.run(["ip", "-n", lb, "link", "add", dev, "type", "veth", "peer", "name",
                     port, "netns", peer])
                self.ip_batch(peer, [f"link set {port} master {bridge}", f"link set {port} up"])
                self.ip_batch(lb, [f"link set {dev} up", f"addr add {net4}.{host}/24 dev {dev}",
                                f"addr add {net6}::{host}/64 dev {dev} nodad"])
            self.ip_batch(lb, ["link add vip0 type dummy", "link set vip0 up"])
        netlab.run(["ip", "-n", self.lbs[0], "link", "add", "s0", "type", "veth", "peer", "name",
             "s0", "netns", self.lbs[1]])
        for lb, addr in zip(self.lbs, SYNC_ADDR):
            self.ip_batch(lb, ["link set s0 up", f"addr add {addr}/24 dev s0"])
        self.activate(self.lbs[0])
        return self

    @staticmethod
    def _moving(verb: str) -> list[str]:
        """The addresses the active balancer holds, as ``ip addr`` lines."""
        lines = []
        for family in (4, 6):
            nodad = " nodad" if family == 6 and verb == "add" else ""
            plen, host = (24, 32) if family == 4 else (64, 128)
            lines += [f"addr {verb} {GW_C[family]}/{plen} dev c0{nodad}",
                      f"addr {verb} {GW_R[family]}/{plen} dev r0{nodad}",
                      f"addr {verb} {VIP[family]}/{host} dev vip0{nodad}",
                      f"addr {verb} {LADDR[family]}/{host} dev vip0{nodad}"]
        return lines

    def activate(self, lb: str) -> None:
        """``lb`` takes the gateway addresses, the VIPs and the local
        addresses; the client and the real server forget their old
        neighbours (as a VRRP take-over's gratuitous ARP would make them)."""
        self.ip_batch(lb, ["link set c0 up", "link set r0 up", *self._moving("add")])
        for ns in (self.client, self.rs):
            self.sh(ns, "ip neigh flush all; ip -6 neigh flush all", check=False)
        self.active = lb

    def fail_over(self) -> str:
        """The active balancer loses its addresses and drops off both
        networks; the other takes over.  Returns the new active one."""
        old = self.active
        new = self.lbs[1] if old == self.lbs[0] else self.lbs[0]
        self.ip_batch(old, [*self._moving("del"), "link set c0 down", "link set r0 down"])
        self.activate(new)
        return new

    # ------------------------------------------------------------ sync daemons
    def start_daemons(self, backup_args: str = "") -> None:
        """Master on lb1 through ipvsadm-py, backup on lb2 through the stock
        ipvsadm, both on the sync link."""
        import sys
        from pathlib import Path
        ipvsadm_py = str(Path(sys.executable).parent / "ipvsadm-py")
        self.sh(self.lbs[0], f"{ipvsadm_py} --start-daemon master --mcast-interface s0")
        self.sh(self.lbs[1], f"ipvsadm --start-daemon backup --mcast-interface s0 {backup_args}")


# ---------------------------------------------------------------- messages

def _addr(family: int, text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def fnat_option(family: int, *, lport: int, laddr: str | None = None, flags: int = FNAT_F_FULLNAT,
                delta: int = 0, rs_isn: int = 0, c_nxt: int = 0, sp_delta: int = 0,
                seq_flags: int = 0, version: int = 1, extra: bytes = b"") -> bytes:
    """The FULLNAT/SYNPROXY parameter of a sync entry (ip_vs_fnat_sync.c)."""
    data = struct.pack("!BBHIIIII", version, flags, lport, delta, rs_isn, c_nxt, sp_delta,
                       seq_flags)
    if flags & FNAT_F_FULLNAT:
        data += _addr(family, laddr or LADDR[family])
    data += extra
    return bytes([OPT_FNAT, len(data)]) + data


def entry(family: int, *, proto: int, cport: int, vport: int, dport: int,
          caddr: str | None = None, vaddr: str | None = None, daddr: str | None = None,
          flags: int = CONN_F_FULLNAT, state: int = TCP_ESTABLISHED, timeout: int = 600,
          fwmark: int = 0, options: bytes = b"") -> bytes:
    """One sync v1 connection entry (struct ip_vs_sync_v4/v6 and options)."""
    addrs = b"".join(_addr(family, a) for a in (caddr or CLIENT[family], vaddr or VIP[family],
                                                 daddr or RS[family]))
    size = 24 + len(addrs) + len(options)
    head = struct.pack("!BBHIHHHHII", 1 if family == 6 else 0, proto, size & 0x0FFF, flags,
                       state, cport, vport, dport, fwmark, timeout)
    return head + addrs + options


def message(entries: list[bytes], syncid: int = 0) -> bytes:
    """A sync v1 message: its header, then the entries, each padded to 4 bytes."""
    body = b""
    for one in entries:
        body += one + b"\0" * (-len(one) % 4)
    size = 8 + len(body)
    return struct.pack("!BBHBbH", 0, syncid, size, len(entries), 1, 0) + body


def sender(pair: Pair, ns: str) -> socket.socket:
    """A UDP socket of ``ns`` that multicasts on its sync link (s0)."""
    with pair.inside(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    index = pair.lbs.index(ns)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                    socket.inet_aton(SYNC_ADDR[index]))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    return sock


def send(sock: socket.socket, data: bytes) -> None:
    sock.sendto(data, (SYNC_GROUP, SYNC_PORT))


class Recorder:
    """The sync messages that reach ``ns`` on its sync link, as sent."""

    def __init__(self, pair: Pair, ns: str) -> None:
        with pair.inside(ns):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((SYNC_GROUP, SYNC_PORT))
        index = pair.lbs.index(ns)
        mreq = socket.inet_aton(SYNC_GROUP) + socket.inet_aton(SYNC_ADDR[index])
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        self.sock.settimeout(0.5)
        self.messages: list[bytes] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.messages.append(self.sock.recv(65536))
            except TimeoutError:
                continue
            except OSError:
                return

    def close(self) -> list[bytes]:
        self._stop.set()
        self.thread.join(timeout=5)
        self.sock.close()
        return self.messages


def entries_of(msg: bytes) -> list[tuple[int, int, int, bytes]]:
    """The entries of a v1 message: (flags, protocol, cport, options)."""
    out = []
    count, pos = msg[4], 8
    for _ in range(count):
        kind, proto, ver_size = struct.unpack_from("!BBH", msg, pos)
        size = ver_size & 0x0FFF
        flags, = struct.unpack_from("!I", msg, pos + 4)
        cport, = struct.unpack_from("!H", msg, pos + 10)
        fixed = 24 + (48 if kind & 1 else 12)
        out.append((flags, proto, cport, msg[pos + fixed:pos + size]))
        pos += (size + 3) & ~3
    return out


def options_of(raw: bytes) -> dict[int, bytes]:
    out, pos = {}, 0
    while pos + 2 <= len(raw):
        kind, length = raw[pos], raw[pos + 1]
        out[kind] = raw[pos + 2:pos + 2 + length]
        pos += 2 + length
    return out


def echo_stream(sock: socket.socket, at_half, blocks: int = 60) -> None:
    """Stream ``blocks`` blocks to an echoing server on the connected
    ``sock`` (past the whoami line) and check that exactly the same bytes
    come back and the server then closes cleanly; ``at_half()`` runs half
    way through (a fail-over)."""
    reader = sock.makefile("rb")
    sent, got = hashlib.sha256(), hashlib.sha256()
    received: dict = {"n": 0, "error": None}
    total = blocks * 4096

    def read() -> None:
        try:
            while received["n"] < total:
                chunk = reader.read1(65536)
                if not chunk:
                    break
                got.update(chunk)
                received["n"] += len(chunk)
        except OSError as exc:
            received["error"] = exc

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    for index in range(blocks):
        if index == blocks // 2:
            at_half()
        data = block(index)
        sent.update(data)
        sock.sendall(data)
        time.sleep(0.02)
    thread.join(timeout=120)
    assert received["error"] is None, f"the stream broke: {received['error']!r}"
    assert received["n"] == total, f"{received['n']} of {total} bytes came back"
    assert got.hexdigest() == sent.hexdigest(), "the echoed stream differs from what was sent"
    sock.shutdown(socket.SHUT_WR)
    assert reader.read1(1) == b"", "the server should close cleanly (no reset)"


def block(index: int, size: int = 4096) -> bytes:
    """Block ``index`` of a stream: reproducible on both ends."""
    seed = hashlib.sha256(index.to_bytes(4, "big")).digest()
    return (seed * (size // len(seed) + 1))[:size]
