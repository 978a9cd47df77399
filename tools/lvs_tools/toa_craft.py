"""Crafted TCP clients that carry TOA, as a FULLNAT balancer sends them.

Used by the installer's self-test on a real server (so: standard library
only, the project's virtual environment may be absent there) and by the
kernel tests.  A TUN device stands in for the balancer: the kernel routes
the balancer's subnet into it, every segment the server sends comes to this
code, and no second TCP stack answers for those addresses (no RSTs)::

    listening socket on RS_ADDR:PORT          TunPeer (this module)
          |                                      |
          |  <-- SYN, ACK + TOA, data + TOA ---  | written to the tun fd
          |  --- SYN/ACK, ACKs, data ----------> | read from the tun fd
                 route: balancer subnet dev tun

Layers: wire helpers (``toa_option``, ``tcp_segment``, ``ip_packet``,
``parse_packet``), the ``Tun`` device, ``TunPeer`` (one reader thread that
hands segments to the connection they belong to) and ``CraftedConnection``
(one TCP connection driven by hand).
"""

from __future__ import annotations

import dataclasses
import fcntl
import ipaddress
import os
import queue
import random
import select
import socket
import struct
import subprocess
import threading
from typing import Callable

TOA_KIND = 254
TOA_KIND_LEGACY = 253

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


# ---------------------------------------------------------------- wire format

def toa_option(addr: str, port: int, kind: int = TOA_KIND) -> bytes:
    """The TOA option for a client: kind, length, port, address (abi.md)."""
    packed = ipaddress.ip_address(addr).packed
    return struct.pack("!BBH", kind, 2 + 2 + len(packed), port) + packed


def mss_option(mss: int = 1400) -> bytes:
    return struct.pack("!BBH", 2, 4, mss)


def nop_pad(options: bytes) -> bytes:
    """NOPs in front of ``options`` up to a multiple of 4 bytes."""
    return b"\x01" * (-len(options) % 4) + options


def inet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _pseudo_header(src: str, dst: str, length: int) -> bytes:
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if s.version == 4:
        return s.packed + d.packed + struct.pack("!BBH", 0, socket.IPPROTO_TCP, length)
    return s.packed + d.packed + struct.pack("!IxxxB", length, socket.IPPROTO_TCP)


def tcp_segment(src: str, dst: str, sport: int, dport: int, seq: int, ack: int,
                flags: int, options: bytes = b"", payload: bytes = b"",
                window: int = 65535) -> bytes:
    """A TCP segment with a correct checksum.  ``options`` go in verbatim
    (malformed ones too) and must fill whole 32-bit words."""
    if len(options) % 4 or len(options) > 40:
        raise ValueError(f"{len(options)} option bytes: need a multiple of 4, at most 40")
    doff = 5 + len(options) // 4
    header = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                         doff << 4, flags, window, 0, 0) + options
    segment = header + payload
    csum = inet_checksum(_pseudo_header(src, dst, len(segment)) + segment)
    return segment[:16] + struct.pack("!H", csum) + segment[18:]


def ip_packet(src: str, dst: str, payload: bytes, proto: int = socket.IPPROTO_TCP,
              ttl: int = 64) -> bytes:
    """An IPv4 or IPv6 header (by the addresses' family) in front of ``payload``."""
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if s.version == 6:
        return struct.pack("!IHBB", 6 << 28, len(payload), proto, ttl) + s.packed + \
            d.packed + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000, ttl,
                         proto, 0, s.packed, d.packed)
    csum = inet_checksum(header)
    return header[:10] + struct.pack("!H", csum) + header[12:] + payload


def tcp_packet(src: str, dst: str, sport: int, dport: int, seq: int, ack: int,
               flags: int, options: bytes = b"", payload: bytes = b"") -> bytes:
    """IP packet carrying one TCP segment (the default packet builder)."""
    return ip_packet(src, dst, tcp_segment(src, dst, sport, dport, seq, ack, flags,
                                           options, payload))


Builder = Callable[..., bytes]


@dataclasses.dataclass
class Segment:
    src: str
    dst: str
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    options: bytes
    payload: bytes


def parse_packet(data: bytes) -> Segment | None:
    """The TCP segment in an IPv4/IPv6 packet (no extension headers), or None."""
    if not data:
        return None
    version = data[0] >> 4
    if version == 4:
        ihl = (data[0] & 0xF) * 4
        if len(data) < ihl + 20 or data[9] != socket.IPPROTO_TCP:
            return None
        total = struct.unpack("!H", data[2:4])[0]
        src, dst = socket.inet_ntop(socket.AF_INET, data[12:16]), \
            socket.inet_ntop(socket.AF_INET, data[16:20])
        tcp = data[ihl:total]
    elif version == 6:
        if len(data) < 60 or data[6] != socket.IPPROTO_TCP:
            return None
        plen = struct.unpack("!H", data[4:6])[0]
        src, dst = socket.inet_ntop(socket.AF_INET6, data[8:24]), \
            socket.inet_ntop(socket.AF_INET6, data[24:40])
        tcp = data[40:40 + plen]
    else:
        return None
    sport, dport, seq, ack, off, flags = struct.unpack("!HHIIBB", tcp[:14])
    doff = (off >> 4) * 4
    return Segment(src, dst, sport, dport, seq, ack, flags, tcp[20:doff], tcp[doff:])


# ---------------------------------------------------------------- TUN device

class Tun:
    """A TUN device (IP packets, no packet info) in the caller's network namespace."""

    def __init__(self, name: str = "toa0") -> None:
        ensure_tun_device()
        self.fd = os.open("/dev/net/tun", os.O_RDWR)
        ifr = struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI)
        self.name = fcntl.ioctl(self.fd, TUNSETIFF, ifr)[:16].rstrip(b"\0").decode()

    def read(self, timeout: float) -> bytes | None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        return os.read(self.fd, 65536) if ready else None

    def write(self, packet: bytes) -> None:
        os.write(self.fd, packet)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def ensure_tun_device() -> None:
    """Load ``tun`` and create /dev/net/tun if the system has neither yet."""
    if not os.path.exists("/sys/module/tun"):
        subprocess.run(["modprobe", "tun"], capture_output=True)
    if not os.path.exists("/dev/net/tun"):
        os.makedirs("/dev/net", exist_ok=True)
        os.mknod("/dev/net/tun", 0o600 | 0o020000, os.makedev(10, 200))


def ip_commands(tun: str, local: list[str], routed: list[str],
                netns: str | None = None) -> list[list[str]]:
    """``ip`` commands that put ``local`` addresses on the namespace's lo and
    route the ``routed`` prefixes (the balancer's side) into the tun."""
    ns = ["-n", netns] if netns else []
    cmds = [["ip", *ns, "link", "set", "lo", "up"],
            ["ip", *ns, "link", "set", tun, "up"]]
    for addr in local:
        net = ipaddress.ip_network(addr, strict=False)
        cmds.append(["ip", *ns, f"-{net.version}", "addr", "add", addr, "dev", "lo"]
                    + (["nodad"] if net.version == 6 else []))
    for prefix in routed:
        version = ipaddress.ip_network(prefix).version
        cmds.append(["ip", *ns, f"-{version}", "route", "add", prefix, "dev", tun])
    return cmds


# ---------------------------------------------------------------- connections

class TunPeer:
    """The balancer's side of a TUN device: reads every packet the kernel
    routes into it and queues each TCP segment for its connection."""

    def __init__(self, tun: Tun) -> None:
        self.tun = tun
        self.queues: dict[tuple, queue.Queue] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        while not self.stopped.is_set():
            try:
                data = self.tun.read(0.2)
            except OSError:
                return
            seg = parse_packet(data) if data else None
            if seg is None:
                continue
            key = (_norm(seg.dst), seg.dport, _norm(seg.src), seg.sport)
            with self.lock:
                q = self.queues.get(key)
            if q is not None:
                q.put(seg)

    def register(self, key: tuple) -> queue.Queue:
        q: queue.Queue = queue.Queue()
        with self.lock:
            self.queues[key] = q
        return q

    def unregister(self, key: tuple) -> None:
        with self.lock:
            self.queues.pop(key, None)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        self.tun.close()


def _norm(addr: str) -> str:
    return str(ipaddress.ip_address(addr))


class HandshakeError(RuntimeError):
    """The server did not answer as TCP should."""


class CraftedConnection:
    """One TCP connection from ``src:sport`` (the balancer's local address)
    to the server, every segment built by hand so options are ours to choose.
    """

    def __init__(self, peer: TunPeer, src: str, dst: str, dport: int,
                 sport: int | None = None, build: Builder = tcp_packet,
                 timeout: float = 10) -> None:
        self.peer, self.src, self.dst, self.dport = peer, _norm(src), _norm(dst), dport
        self.sport = sport or random.randint(20000, 60000)
        self.build, self.timeout = build, timeout
        self.key = (self.src, self.sport, self.dst, self.dport)
        self.inbox = peer.register(self.key)
        self.snd_nxt = random.randint(0, 2**32 - 1)
        self.rcv_nxt = 0
        self.received = b""

    def _send(self, flags: int, options: bytes = b"", payload: bytes = b"") -> None:
        packet = self.build(self.src, self.dst, self.sport, self.dport, self.snd_nxt,
                            self.rcv_nxt if flags & ACK else 0, flags, options, payload)
        self.peer.tun.write(packet)
        self.snd_nxt = (self.snd_nxt + len(payload) + bool(flags & (SYN | FIN))) % 2**32

    def _expect(self, want: Callable[[Segment], bool], what: str) -> Segment:
        while True:
            try:
                seg = self.inbox.get(timeout=self.timeout)
            except queue.Empty:
                raise HandshakeError(f"{self.src}:{self.sport}: no {what} from "
                                     f"{self.dst}:{self.dport}") from None
            if seg.flags & RST:
                raise HandshakeError(f"{self.src}:{self.sport}: RST while waiting for {what}")
            if want(seg):
                return seg

    def handshake(self, options: bytes = b"", payload: bytes = b"") -> None:
        """SYN, wait for SYN/ACK, then the ACK with ``options`` (and ``payload``)."""
        self._send(SYN, mss_option())
        synack = self._expect(lambda s: s.flags & (SYN | ACK) == SYN | ACK, "SYN/ACK")
        self.rcv_nxt = (synack.seq + 1) % 2**32
        self._send(ACK, options, payload)

    def answer_syn(self) -> None:
        """The other way round: the server connects to us (``src:sport``);
        wait for its SYN and answer with a SYN/ACK."""
        syn = self._expect(lambda s: s.flags & (SYN | ACK) == SYN, "SYN")
        self.rcv_nxt = (syn.seq + 1) % 2**32
        self._send(SYN | ACK, mss_option())

    def send(self, payload: bytes, options: bytes = b"") -> None:
        self._send(ACK | PSH, options, payload)

    def wait_acked(self) -> None:
        """Wait until the server acknowledged everything sent so far: by then
        it has processed those segments (and toa.ko has seen them)."""
        self._expect(lambda s: bool(s.flags & ACK) and s.ack == self.snd_nxt,
                     "ACK of our data")

    def wait_fin(self) -> None:
        """Wait until the server closed its side (a FIN came)."""
        self._expect(lambda s: bool(s.flags & FIN), "FIN")

    def recv(self, size: int) -> bytes:
        """Collect ``size`` bytes the server sent, acknowledging them."""
        while len(self.received) < size:
            seg = self._expect(lambda s: bool(s.payload), f"{size} bytes of data")
            if seg.seq == self.rcv_nxt:
                self.received += seg.payload
                self.rcv_nxt = (self.rcv_nxt + len(seg.payload)) % 2**32
            self._send(ACK)
        data, self.received = self.received[:size], self.received[size:]
        return data

    def reset(self) -> None:
        """Abort the connection (the server's socket sees ECONNRESET)."""
        self._send(RST | ACK)
        self.close()

    def close(self) -> None:
        self.peer.unregister(self.key)

    def __enter__(self) -> "CraftedConnection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
