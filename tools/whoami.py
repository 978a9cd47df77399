"""Small servers for the lab (tools/netlab.py), run in threads with sockets
of a namespace.

The "whoami" protocol, TCP: the client sends one line; the server answers
``NAME PEER_ADDR PEER_PORT\\n`` (the peer as the server's accept() saw it)
and then echoes every further byte until the client shuts down its side.
UDP: every datagram is answered with ``NAME PEER_ADDR PEER_PORT | payload``.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from typing import Callable


class _Server:
    def __init__(self, sock: socket.socket, name: str) -> None:
        self.sock = sock
        self.name = name
        self.peers: list[tuple[str, int]] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self) -> None:
        # shutdown() wakes a thread blocked in accept()/recvfrom().
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=5)

    def _serve(self) -> None:
        raise NotImplementedError


class TcpWhoami(_Server):
    """Connections stay open, however long idle, until the client shuts its
    side down or the server is closed: a test may hold a session while a
    slow guest takes minutes between two packets (an idle timeout would make
    the server close it, and the real server's socket then leaves the states
    a test is about)."""

    def __init__(self, sock: socket.socket, name: str) -> None:
        self.conns: list[socket.socket] = []
        super().__init__(sock, name)

    def close(self) -> None:
        super().close()
        for conn in list(self.conns):
            try:    # wakes its handler blocked in a read
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _serve(self) -> None:
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            self.peers.append(peer[:2])
            self.conns.append(conn)
            threading.Thread(target=self._handle, args=(conn, peer), daemon=True).start()

    def _handle(self, conn: socket.socket, peer: tuple) -> None:
        with conn:
            try:
                reader = conn.makefile("rb")
                reader.readline()
                conn.sendall(f"{self.name} {peer[0]} {peer[1]}\n".encode())
                while chunk := reader.read1(65536):
                    conn.sendall(chunk)
            except OSError:
                pass
            finally:
                self.conns.remove(conn)


class UdpWhoami(_Server):
    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(65536)
            except OSError:
                return
            if peer is None or (not data and self.sock.fileno() < 0):
                return      # shut down: recvfrom() returns no sender
            self.peers.append(peer[:2])
            reply = f"{self.name} {peer[0]} {peer[1]} | ".encode() + data
            try:
                self.sock.sendto(reply, peer)
            except OSError:
                return


def listen(inside: Callable, ns: str, family: int, kind: int, port: int,
           addr: str | None = None) -> socket.socket:
    """A bound (and for TCP, listening) socket in namespace ``ns``."""
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    with inside(ns):
        sock = socket.socket(af, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((addr or ("0.0.0.0" if family == 4 else "::"), port))
    if kind == socket.SOCK_STREAM:
        sock.listen(256)
    return sock


def whoami_tcp(sock: socket.socket, line: bytes = b"hello\n") -> tuple[str, str, int]:
    """Ask a connected whoami server who it is and whom it saw."""
    sock.sendall(line)
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    name, addr, port = reply.decode().split()
    return name, addr, int(port)


def echo_stream(sock: socket.socket, size: int, chunk: int = 65536) -> bool:
    """Send ``size`` random bytes through an echoing connection; True if the
    same bytes came back (compared by SHA-256)."""
    sent_hash = hashlib.sha256()
    got_hash = hashlib.sha256()
    received = 0

    def reader() -> None:
        nonlocal received
        while received < size:
            data = sock.recv(chunk)
            if not data:
                return
            got_hash.update(data)
            received += len(data)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    remaining = size
    while remaining:
        block = os.urandom(min(chunk, remaining))
        sent_hash.update(block)
        sock.sendall(block)
        remaining -= len(block)
    thread.join(timeout=300)
    return received == size and sent_hash.digest() == got_hash.digest()
