"""Helpers of the FULLNAT robustness tests (test_fnat_robust.py), kept apart
so that other tests (the SYNPROXY ones) can run the same scenarios on their
own services.

Everything here works on a ``tools.netlab.Topology`` whose client can reach
the VIP and whose real servers run the servers started here.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import struct
import threading
import time
from typing import Callable

from tools import netlab
from tools.netlab import Topology

BLOCK = 16 * 1024


def _block(index: int) -> bytes:
    """Block ``index`` of every download: reproducible on both ends."""
    return hashlib.sha256(index.to_bytes(4, "big")).digest() * (BLOCK // 32)


class SlowSender:
    """A server that answers a line ``N\\n`` with N blocks, written one at a
    time with a pause between them, then closes: a download that lasts long
    enough for something to happen in its middle."""

    def __init__(self, sock: socket.socket, pause: float = 0.05) -> None:
        self.sock = sock
        self.pause = pause
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._send, args=(conn,), daemon=True).start()

    def _send(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(120)
            try:
                count = int(conn.makefile("rb").readline())
                for index in range(count):
                    conn.sendall(_block(index))
                    time.sleep(self.pause)
            except (OSError, ValueError) as exc:
                self.errors.append(repr(exc))

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=5)


class LineEcho:
    """A server that sends back the first line it reads: what the real
    server's application got first on a connection."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(30)
                try:
                    conn.sendall(conn.makefile("rb").readline())
                except OSError:
                    pass

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=5)


def tcp_segment(family: int, src: str, dst: str, sport: int, dport: int, seq: int,
                ack: int, flags: str, payload: bytes = b"",
                bad_checksum: bool = False) -> bytes:
    """A complete IPv4/IPv6 TCP segment (scapy), optionally with a wrong
    TCP checksum (the right one plus one)."""
    from scapy.all import IP, IPv6, TCP, Raw
    net = IP(src=src, dst=dst) if family == 4 else IPv6(src=src, dst=dst)
    tcp = TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, window=65535)
    packet = net / tcp / Raw(payload) if payload else net / tcp
    packet = packet.__class__(bytes(packet))        # with its checksums
    if bad_checksum:
        packet[TCP].chksum = (packet[TCP].chksum + 1) & 0xFFFF
    return bytes(packet)


def udp_datagram(family: int, src: str, dst: str, sport: int, dport: int) -> bytes:
    """A complete IPv4/IPv6 UDP datagram (scapy) with a short payload."""
    from scapy.all import IP, IPv6, UDP, Raw
    net = IP(src=src, dst=dst) if family == 4 else IPv6(src=src, dst=dst)
    packet = net / UDP(sport=sport, dport=dport) / Raw(b"load\n")
    return bytes(packet.__class__(bytes(packet)))


def download(sock: socket.socket, blocks: int, started: threading.Event | None = None
             ) -> tuple[int, bool]:
    """Ask a SlowSender for ``blocks`` blocks and read them all: (bytes
    received, whether they are exactly the blocks asked for)."""
    sock.sendall(f"{blocks}\n".encode())
    want = hashlib.sha256(b"".join(_block(i) for i in range(blocks))).digest()
    got = hashlib.sha256()
    size = 0
    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            break
        if not data:
            break
        got.update(data)
        size += len(data)
        if started is not None and size >= BLOCK * 4:
            started.set()
    return size, size == blocks * BLOCK and got.digest() == want


def spoofed_syn_during_download(topo: Topology, family: int, vip: str, port: int,
                                blocks: int = 200,
                                after_send: Callable[[], None] | None = None) -> None:
    """A slow download from ``vip:port`` (a SlowSender behind it) survives a
    SYN with the download's exact tuple and another sequence number, sent
    by a third party (a raw socket of the client's namespace spoofing the
    client's address and port) while the data flows.  ``after_send`` runs
    once the SYN is out (to check counters, say)."""
    sock = netlab.connect(topo, topo.client, vip, port, timeout=60)
    cport = sock.getsockname()[1]
    # built before the download starts: scapy is slow the first time
    syn = tcp_segment(family, netlab.client_addr(family), vip, cport, port,
                      random.getrandbits(32), 0, "S")
    started = threading.Event()
    result: dict[str, tuple[int, bool]] = {}

    def reader() -> None:
        result["got"] = download(sock, blocks, started)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        assert started.wait(60), "the download did not start"
        netlab.send_raw(topo, topo.client, syn, family)
        assert thread.is_alive(), "the download ended before the SYN was sent"
        if after_send is not None:
            after_send()
        thread.join(timeout=blocks + 60)
        assert not thread.is_alive(), "the download stalled after the spoofed SYN"
        size, exact = result["got"]
        assert exact, f"got {size} of {blocks * BLOCK} bytes, or other bytes"
    finally:
        sock.close()
        thread.join(timeout=5)


class SynLoad:
    """New flows to ``vip:port`` at a given rate, from a thread (a raw socket
    of the client's namespace): SYNs, or with ``udp`` one datagram each,
    from the client's address and ever new source ports (from
    ``first_port`` up).  The client's kernel answers the SYN/ACKs it gets
    with RSTs, unless they are dropped on the way."""

    def __init__(self, topo: Topology, family: int, vip: str, port: int,
                 rate: float = 400, cpu: int | None = None,
                 first_port: int = 20000, udp: bool = False) -> None:
        self.topo, self.family, self.vip, self.port = topo, family, vip, port
        self.rate = rate
        self.cpu = cpu
        self.first_port = first_port
        self.sent = 0
        self.error: BaseException | None = None
        # built here: scapy is imported in the main thread
        if udp:
            self.template = udp_datagram(family, netlab.client_addr(family), vip, 1, port)
        else:
            self.template = tcp_segment(family, netlab.client_addr(family), vip, 1, port,
                                        1, 0, "S")
        self.csum_off = 6 if udp else 16
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self._send()
        except BaseException as exc:       # reported by __exit__
            self.error = exc

    def _send(self) -> None:
        if self.cpu is not None and self.cpu < (os.cpu_count() or 1):
            os.sched_setaffinity(0, {self.cpu})    # this thread only
        af = socket.AF_INET if self.family == 4 else socket.AF_INET6
        with self.topo.inside(self.topo.client):
            raw = socket.socket(af, socket.SOCK_RAW, socket.IPPROTO_RAW)
        off = 20 if self.family == 4 else 40
        base = struct.unpack_from("!H", self.template, off + self.csum_off)[0]
        sport = self.first_port
        period = 1.0 / self.rate
        with raw:
            while not self.stop.is_set():
                t0 = time.monotonic()
                for _ in range(16):
                    sport = sport + 1 if sport < 65000 else self.first_port
                    packet = bytearray(self.template)
                    struct.pack_into("!H", packet, off, sport)
                    # the checksum follows the port (RFC 1624: ~(~HC + ~m + m'))
                    csum = (~base & 0xFFFF) + (~1 & 0xFFFF) + sport
                    csum = (csum & 0xFFFF) + (csum >> 16)
                    csum = (csum & 0xFFFF) + (csum >> 16)
                    struct.pack_into("!H", packet, off + self.csum_off, ~csum & 0xFFFF)
                    raw.sendto(bytes(packet), (self.vip, 0))
                    self.sent += 1
                time.sleep(max(0.0, 16 * period - (time.monotonic() - t0)))

    def __enter__(self) -> "SynLoad":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        if self.error is not None and exc[0] is None:
            raise RuntimeError(f"the SYN load failed: {self.error!r}") from self.error


def conn_count(topo: Topology) -> int:
    """Sessions in the balancer's table (lines of /proc/net/ip_vs_conn)."""
    lines = topo.sh(topo.lb, "cat /proc/net/ip_vs_conn").stdout.splitlines()
    return max(0, len(lines) - 1)

